/* The --set machinery: "group.key=value" overrides applied to the parsed
 * config before it is validated (see overrides.h). */
#include "config/overrides.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copy src (from a scratch config) as member `name` of parent (name NULL
 * for list/array elements). */
static config_setting_t *copy_setting(config_setting_t *parent, const char *name,
                                      const config_setting_t *src) {
    int type = config_setting_type(src);
    config_setting_t *dst = config_setting_add(parent, name, type);
    if (!dst) return NULL;
    switch (type) {
    case CONFIG_TYPE_INT: config_setting_set_int(dst, config_setting_get_int(src)); break;
    case CONFIG_TYPE_INT64: config_setting_set_int64(dst, config_setting_get_int64(src)); break;
    case CONFIG_TYPE_FLOAT: config_setting_set_float(dst, config_setting_get_float(src)); break;
    case CONFIG_TYPE_BOOL: config_setting_set_bool(dst, config_setting_get_bool(src)); break;
    case CONFIG_TYPE_STRING: config_setting_set_string(dst, config_setting_get_string(src)); break;
    default:
        for (int k = 0; k < config_setting_length(src); k++) {
            const config_setting_t *e = config_setting_get_elem(src, (unsigned)k);
            const char *en = type == CONFIG_TYPE_GROUP ? config_setting_name(e) : NULL;
            if (!copy_setting(dst, en, e)) return NULL;
        }
    }
    return dst;
}

/* The group at `path` (dotted, may contain [i]), created when missing. */
static config_setting_t *group_at(config_t *cfg, const char *path) {
    if (!*path) return config_root_setting(cfg);
    config_setting_t *g = config_lookup(cfg, path);
    if (g) return config_setting_is_group(g) ? g : NULL;
    char parent_path[512];
    snprintf(parent_path, sizeof parent_path, "%s", path);
    char *dot = strrchr(parent_path, '.');
    const char *last = dot ? dot + 1 : parent_path;
    if (dot) *dot = '\0';
    else parent_path[0] = '\0';
    if (last[0] == '[') return NULL; /* list elements are not created */
    config_setting_t *parent = group_at(cfg, dot ? parent_path : "");
    char name[256];
    snprintf(name, sizeof name, "%s", path + (last - parent_path));
    return parent ? config_setting_add(parent, name, CONFIG_TYPE_GROUP) : NULL;
}

ct_status ct__config_apply_override(config_t *cfg, const char *arg, ct_error *err) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return ct_error_set(err, CT_ERR_CONFIG, "--set '%s': expected group.key=value", arg);
    char path[512];
    snprintf(path, sizeof path, "%.*s", (int)(eq - arg), arg);
    const char *value = eq + 1;
    char *dot = strrchr(path, '.');
    const char *key = dot ? dot + 1 : path;
    if (dot) *dot = '\0';
    if (!*key || key[0] == '[')
        return ct_error_set(err, CT_ERR_CONFIG, "--set '%s': the last part must be a key name", arg);
    config_setting_t *parent = group_at(cfg, dot ? path : "");
    if (!parent)
        return ct_error_set(err, CT_ERR_CONFIG, "--set '%s': '%s' is not a group of the config", arg,
                            path);
    /* The value is a libconfig literal (1, 0.5, true, "s", [1, 2]); text
     * that does not parse as one is taken as a bare string. */
    config_t scratch;
    config_init(&scratch);
    size_t len = strlen(value) + 8;
    char *text = malloc(len);
    if (!text) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    snprintf(text, len, "v = %s;", value);
    bool literal = *value && config_read_string(&scratch, text);
    free(text);
    if (!literal) {
        config_destroy(&scratch);
        config_init(&scratch);
        config_setting_t *s = config_setting_add(config_root_setting(&scratch), "v", CONFIG_TYPE_STRING);
        config_setting_set_string(s, value);
    }
    if (config_setting_get_member(parent, key)) config_setting_remove(parent, key);
    config_setting_t *done = copy_setting(parent, key, config_lookup(&scratch, "v"));
    config_destroy(&scratch);
    if (!done) return ct_error_set(err, CT_ERR_CONFIG, "--set '%s': cannot set '%s'", arg, key);
    return CT_OK;
}

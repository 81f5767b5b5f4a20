/* Validation of libconfig groups against parameter schemas, and the
 * validated settings handed to plugins.
 *
 * Every value a plugin reads was either written by the user (checked for
 * type, range and choice, with its file:line kept as its origin) or is the
 * schema's default. Unknown keys are errors with a "did you mean": a
 * misspelled key never silently falls back to a default. */
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/settings.h"

#define ORIGIN_MAX 320

typedef struct ct_value {
    const ct_param_spec *spec;
    int64_t i;
    double f;
    bool b;
    char *s;
    size_t n; /* list length */
    int64_t *ints;
    double *floats;
    char **strs;
    char origin[ORIGIN_MAX];
} ct_value;

struct ct_settings {
    const ct_param_spec *spec;
    size_t n;
    ct_value *vals;
    char owner[128];
    /* The first accessor misuse (ct_settings_status): a plugin asking for a
     * name its schema lacks is its bug, reported by the host like any other
     * plugin error instead of taking the process down. Accessors may run on
     * several threads; misuse_lock guards the record (a rare error path). */
    bool misused;
    char misuse[CT_ERROR_MSG_MAX];
};

const char *ct_ptype_name(ct_ptype t) {
    switch (t) {
    case CT_PT_INT: return "int";
    case CT_PT_FLOAT: return "float";
    case CT_PT_BOOL: return "bool";
    case CT_PT_STRING: return "string";
    case CT_PT_INT_LIST: return "int list";
    case CT_PT_FLOAT_LIST: return "float list";
    case CT_PT_STRING_LIST: return "string list";
    }
    return "unknown type";
}

int ct_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 255 || lb > 255) return (int)(la > lb ? la : lb);
    int row[256];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* ---- locations ------------------------------------------------------------ */

/* Dotted path of a setting ("train.epochs", "pipelines.[0].weight"). */
static void setting_path(const config_setting_t *s, char *buf, size_t n) {
    const config_setting_t *chain[32];
    int depth = 0;
    for (const config_setting_t *p = s; p && !config_setting_is_root(p) && depth < 32;
         p = config_setting_parent(p))
        chain[depth++] = p;
    size_t used = 0;
    buf[0] = '\0';
    for (int k = depth - 1; k >= 0; k--) {
        const char *name = config_setting_name(chain[k]);
        char part[160];
        if (name) snprintf(part, sizeof part, "%s", name);
        else snprintf(part, sizeof part, "[%d]", config_setting_index(chain[k]));
        int w = snprintf(buf + used, n - used, "%s%s", used ? "." : "", part);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
}

/* "file:line", "line N" for text without a file, or "--set path" for a
 * setting created by a command-line override (it has no source line). */
static void setting_where(const config_setting_t *s, char *buf, size_t n) {
    const char *file = s ? config_setting_source_file(s) : NULL;
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (file && line) snprintf(buf, n, "%s:%u", file, line);
    else if (line) snprintf(buf, n, "line %u", line);
    else if (s && !config_setting_is_root(s)) {
        char path[256];
        setting_path(s, path, sizeof path);
        snprintf(buf, n, "--set %s", path);
    } else
        snprintf(buf, n, "%s", "");
}

/* err = "where: owner: message". */
static ct_status fail_at(ct_error *err, ct_status code, const char *where, const char *owner,
                         const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static ct_status fail_at(ct_error *err, ct_status code, const char *where, const char *owner,
                         const char *fmt, ...) {
    char msg[CT_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ct_error_set(err, code, "%s%s%s%s%s", where, where[0] ? ": " : "", owner,
                        owner[0] ? ": " : "", msg);
}

static const char *config_type_name(const config_setting_t *s) {
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "int";
    case CONFIG_TYPE_FLOAT: return "float";
    case CONFIG_TYPE_BOOL: return "bool";
    case CONFIG_TYPE_STRING: return "string";
    case CONFIG_TYPE_GROUP: return "group";
    case CONFIG_TYPE_ARRAY: return "array";
    case CONFIG_TYPE_LIST: return "list";
    }
    return "nothing";
}

/* ---- reading one value ------------------------------------------------------ */

static bool is_int(const config_setting_t *s) {
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static bool is_number(const config_setting_t *s) {
    return is_int(s) || config_setting_type(s) == CONFIG_TYPE_FLOAT;
}

static double number_of(const config_setting_t *s) {
    return is_int(s) ? (double)config_setting_get_int64(s) : config_setting_get_float(s);
}

static void fmt_bound(double v, char *buf, size_t n) {
    if (v == INFINITY) snprintf(buf, n, "inf");
    else if (v == -INFINITY) snprintf(buf, n, "-inf");
    else snprintf(buf, n, "%.15g", v);
}

static ct_status check_range(const ct_param_spec *p, double v, const char *what, const char *where,
                             const char *owner, ct_error *err) {
    if (v >= p->min && v <= p->max) return CT_OK;
    char lo[32], hi[32];
    fmt_bound(p->min, lo, sizeof lo);
    fmt_bound(p->max, hi, sizeof hi);
    return fail_at(err, CT_ERR_CONFIG, where, owner, "%s = %.15g is out of range [%s, %s]", what, v, lo,
                   hi);
}

static bool choice_ok(const char *choices, const char *v) {
    size_t len = strlen(v);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t clen = bar ? (size_t)(bar - c) : strlen(c);
        if (clen == len && strncmp(c, v, len) == 0) return true;
        if (!bar) break;
        c = bar + 1;
    }
    return false;
}

/* Closest '|'-separated choice to v, copied into buf ("" if none close). */
static void nearest_choice(const char *choices, const char *v, char *buf, size_t n) {
    int best = 3;
    buf[0] = '\0';
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t clen = bar ? (size_t)(bar - c) : strlen(c);
        char one[128];
        snprintf(one, sizeof one, "%.*s", (int)(clen < 127 ? clen : 127), c);
        int d = ct_edit_distance(one, v);
        if (d < best) best = d, snprintf(buf, n, "%s", one);
        if (!bar) break;
        c = bar + 1;
    }
}

static ct_status elem_type_ok(ct_ptype list, const config_setting_t *e) {
    if (list == CT_PT_INT_LIST) return is_int(e) ? CT_OK : CT_ERR_CONFIG;
    if (list == CT_PT_FLOAT_LIST) return is_number(e) ? CT_OK : CT_ERR_CONFIG;
    return config_setting_type(e) == CONFIG_TYPE_STRING ? CT_OK : CT_ERR_CONFIG;
}

static ct_status read_list(const ct_param_spec *p, const config_setting_t *s, ct_value *v,
                           const char *where, const char *owner, ct_error *err) {
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return fail_at(err, CT_ERR_CONFIG, where, owner, "'%s' must be a %s like [...], got %s",
                       p->name, ct_ptype_name(p->type), config_type_name(s));
    int n = config_setting_length(s);
    v->n = (size_t)n;
    if (n == 0) return CT_OK;
    if (p->type == CT_PT_INT_LIST) v->ints = calloc((size_t)n, sizeof *v->ints);
    else if (p->type == CT_PT_FLOAT_LIST) v->floats = calloc((size_t)n, sizeof *v->floats);
    else v->strs = calloc((size_t)n, sizeof *v->strs);
    if (!v->ints && !v->floats && !v->strs) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)k);
        char what[160];
        snprintf(what, sizeof what, "'%s'[%d]", p->name, k);
        if (elem_type_ok(p->type, e))
            return fail_at(err, CT_ERR_CONFIG, where, owner, "%s must be a%s %s, got %s", what,
                           p->type == CT_PT_INT_LIST ? "n" : "",
                           p->type == CT_PT_INT_LIST     ? "int"
                           : p->type == CT_PT_FLOAT_LIST ? "float"
                                                         : "string",
                           config_type_name(e));
        if (p->type == CT_PT_STRING_LIST) {
            v->strs[k] = strdup(config_setting_get_string(e));
            if (!v->strs[k]) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
            continue;
        }
        double x = number_of(e);
        ct_status st = check_range(p, x, what, where, owner, err);
        if (st) return st;
        if (p->type == CT_PT_INT_LIST) v->ints[k] = config_setting_get_int64(e);
        else v->floats[k] = x;
    }
    return CT_OK;
}

/* Check setting s against p and store it in v. */
static ct_status read_value(const ct_param_spec *p, const config_setting_t *s, ct_value *v,
                            const char *where, const char *owner, ct_error *err) {
    char what[160];
    snprintf(what, sizeof what, "'%s'", p->name);
    switch (p->type) {
    case CT_PT_INT:
        if (!is_int(s))
            return fail_at(err, CT_ERR_CONFIG, where, owner, "'%s' must be an int, got %s", p->name,
                           config_type_name(s));
        v->i = config_setting_get_int64(s);
        return check_range(p, (double)v->i, what, where, owner, err);
    case CT_PT_FLOAT:
        if (!is_number(s))
            return fail_at(err, CT_ERR_CONFIG, where, owner, "'%s' must be a float, got %s",
                           p->name, config_type_name(s));
        v->f = number_of(s);
        return check_range(p, v->f, what, where, owner, err);
    case CT_PT_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return fail_at(err, CT_ERR_CONFIG, where, owner,
                           "'%s' must be a bool (true/false), got %s", p->name,
                           config_type_name(s));
        v->b = config_setting_get_bool(s) != 0;
        return CT_OK;
    case CT_PT_STRING: {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return fail_at(err, CT_ERR_CONFIG, where, owner, "'%s' must be a string, got %s",
                           p->name, config_type_name(s));
        const char *str = config_setting_get_string(s);
        if (p->choices && !choice_ok(p->choices, str)) {
            char near[128];
            nearest_choice(p->choices, str, near, sizeof near);
            return fail_at(err, CT_ERR_CONFIG, where, owner, "'%s' = \"%s\" is not one of %s%s%s%s",
                           p->name, str, p->choices, near[0] ? " (did you mean '" : "", near,
                           near[0] ? "'?)" : "");
        }
        v->s = strdup(str);
        return v->s ? CT_OK : ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    }
    case CT_PT_INT_LIST:
    case CT_PT_FLOAT_LIST:
    case CT_PT_STRING_LIST: return read_list(p, s, v, where, owner, err);
    }
    return fail_at(err, CT_ERR_PLUGIN, where, owner, "parameter '%s' has an unknown type %d",
                   p->name, (int)p->type);
}

/* Fill v from the schema's default text (a libconfig value). A default that
 * does not parse or fails its own schema is a plugin bug. */
static ct_status read_default(const ct_param_spec *p, ct_value *v, const char *owner,
                              ct_error *err) {
    config_t c;
    config_init(&c);
    size_t len = strlen(p->def) + 16;
    char *text = malloc(len);
    if (!text) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    snprintf(text, len, "v = %s;", p->def);
    ct_status st = CT_OK;
    if (!config_read_string(&c, text)) {
        st = ct_error_set(err, CT_ERR_PLUGIN, "%s: default of '%s' (%s) does not parse: %s", owner,
                          p->name, p->def, config_error_text(&c));
    } else {
        st = read_value(p, config_lookup(&c, "v"), v, "", owner, err);
        if (st) {
            ct_error_prefix(err, "bad default of '%s' (plugin bug): ", p->name);
            err->code = st = CT_ERR_PLUGIN;
        }
    }
    snprintf(v->origin, sizeof v->origin, "default");
    free(text);
    config_destroy(&c);
    return st;
}

/* ---- the settings ----------------------------------------------------------- */

static size_t spec_count(const ct_param_spec *spec) {
    size_t n = 0;
    while (spec && spec[n].name) n++;
    return n;
}

static void value_free(ct_value *v) {
    free(v->s);
    free(v->ints);
    free(v->floats);
    if (v->strs)
        for (size_t k = 0; k < v->n; k++) free(v->strs[k]);
    free(v->strs);
}

void ct_settings_free(ct_settings *s) {
    if (!s) return;
    for (size_t k = 0; k < s->n; k++) value_free(&s->vals[k]);
    free(s->vals);
    free(s);
}

static bool in_list(const char *const *list, const char *name) {
    for (size_t k = 0; list && list[k]; k++)
        if (strcmp(list[k], name) == 0) return true;
    return false;
}

/* "unknown parameter 'x' (did you mean 'y'?)" or the list of known ones. */
static ct_status unknown_key(const ct_param_spec *spec, const char *const *ignore,
                             const char *name, const char *where, const char *owner,
                             ct_error *err) {
    const char *best = NULL;
    int best_d = (int)strlen(name) / 3 < 2 ? 3 : (int)strlen(name) / 3 + 1;
    for (size_t k = 0; spec && spec[k].name; k++) {
        int d = ct_edit_distance(name, spec[k].name);
        if (d < best_d) best_d = d, best = spec[k].name;
    }
    for (size_t k = 0; ignore && ignore[k]; k++) {
        int d = ct_edit_distance(name, ignore[k]);
        if (d < best_d) best_d = d, best = ignore[k];
    }
    if (best)
        return fail_at(err, CT_ERR_CONFIG, where, owner, "unknown parameter '%s' (did you mean '%s'?)",
                       name, best);
    char known[300] = "";
    size_t used = 0;
    for (size_t k = 0; spec && spec[k].name && used + 1 < sizeof known; k++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", spec[k].name);
        if (w < 0) break;
        used += (size_t)w;
    }
    for (size_t k = 0; ignore && ignore[k] && used + 1 < sizeof known; k++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", ignore[k]);
        if (w < 0) break;
        used += (size_t)w;
    }
    return fail_at(err, CT_ERR_CONFIG, where, owner, "unknown parameter '%s' (known: %s)", name,
                   known[0] ? known : "none");
}

/* The schema itself must be sane: names present and unique, types known. */
static ct_status check_spec(const ct_param_spec *spec, const char *owner, ct_error *err) {
    for (size_t k = 0; spec && spec[k].name; k++) {
        if (spec[k].type < CT_PT_INT || spec[k].type > CT_PT_STRING_LIST)
            return ct_error_set(err, CT_ERR_PLUGIN, "%s: parameter '%s' has unknown type %d", owner,
                                spec[k].name, (int)spec[k].type);
        for (size_t j = 0; j < k; j++)
            if (strcmp(spec[j].name, spec[k].name) == 0)
                return ct_error_set(err, CT_ERR_PLUGIN, "%s: parameter '%s' declared twice", owner,
                                    spec[k].name);
    }
    return CT_OK;
}

ct_status ct_settings_from_config(const ct_param_spec *spec, const struct config_setting_t *group,
                                  const char *const *ignore, const char *owner, ct_settings **out,
                                  ct_error *err) {
    *out = NULL;
    if (!owner) owner = "";
    ct_status st = check_spec(spec, owner, err);
    if (st) return st;
    char where[ORIGIN_MAX];
    setting_where(group, where, sizeof where);
    if (group && config_setting_type(group) != CONFIG_TYPE_GROUP)
        return fail_at(err, CT_ERR_CONFIG, where, owner, "must be a group { ... }, got %s",
                       config_type_name(group));
    /* Unknown keys first: a typo explains a "missing required" better. */
    for (int k = 0; group && k < config_setting_length(group); k++) {
        const config_setting_t *c = config_setting_get_elem(group, (unsigned)k);
        const char *name = config_setting_name(c);
        if (in_list(ignore, name)) continue;
        bool known = false;
        for (size_t j = 0; spec && spec[j].name && !known; j++) known = !strcmp(spec[j].name, name);
        if (!known) {
            char cw[ORIGIN_MAX];
            setting_where(c, cw, sizeof cw);
            return unknown_key(spec, ignore, name, cw, owner, err);
        }
    }
    ct_settings *s = calloc(1, sizeof *s);
    size_t n = spec_count(spec);
    if (!s || !(s->vals = calloc(n ? n : 1, sizeof *s->vals))) {
        free(s);
        return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    }
    s->spec = spec;
    s->n = n;
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    for (size_t k = 0; k < n && !st; k++) {
        const ct_param_spec *p = &spec[k];
        ct_value *v = &s->vals[k];
        v->spec = p;
        const config_setting_t *c = group ? config_setting_get_member(group, p->name) : NULL;
        if (c) {
            setting_where(c, v->origin, sizeof v->origin);
            st = read_value(p, c, v, v->origin, owner, err);
        } else if (p->def) {
            st = read_default(p, v, owner, err);
        } else {
            st = fail_at(err, CT_ERR_CONFIG, where, owner,
                         "missing required parameter '%s' (%s%s%s)", p->name,
                         ct_ptype_name(p->type), p->doc ? ": " : "", p->doc ? p->doc : "");
        }
    }
    if (st) {
        ct_settings_free(s);
        return st;
    }
    *out = s;
    return CT_OK;
}

ct_status ct_settings_parse(const ct_param_spec *spec, const char *text, const char *owner,
                            ct_settings **out, ct_error *err) {
    *out = NULL;
    config_t c;
    config_init(&c);
    ct_status st;
    if (!config_read_string(&c, text ? text : ""))
        st = ct_error_set(err, CT_ERR_CONFIG, "line %d: %s: %s", config_error_line(&c),
                          owner ? owner : "settings", config_error_text(&c));
    else
        st = ct_settings_from_config(spec, config_root_setting(&c), NULL, owner, out, err);
    config_destroy(&c);
    return st;
}

const ct_param_spec *ct_settings_spec(const ct_settings *s) { return s ? s->spec : NULL; }

/* Guards every settings object's misuse record (see struct ct_settings). */
static pthread_mutex_t misuse_lock = PTHREAD_MUTEX_INITIALIZER;

/* Record the first misuse (see struct ct_settings). */
static void misuse(const ct_settings *cs, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void misuse(const ct_settings *cs, const char *fmt, ...) {
    if (!cs) return;
    ct_settings *s = (ct_settings *)cs; /* the record is diagnostic state, not a setting */
    pthread_mutex_lock(&misuse_lock);
    if (!s->misused) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->misuse, sizeof s->misuse, fmt, ap);
        va_end(ap);
        s->misused = true;
    }
    pthread_mutex_unlock(&misuse_lock);
}

/* What a misused accessor reads: zero, false, "" and empty lists. */
static const ct_value ct__no_value = {.s = (char *)"", .origin = "(undeclared)"};

/* The value of `name`; a name the schema lacks, or a type the accessor
 * cannot give, is a bug in the plugin: recorded, and the zero value read. */
static const ct_value *find(const ct_settings *s, const char *name, ct_ptype want, ct_ptype alt) {
    for (size_t k = 0; s && name && k < s->n; k++) {
        const ct_value *v = &s->vals[k];
        if (strcmp(v->spec->name, name) != 0) continue;
        if (v->spec->type == want || v->spec->type == alt) return v;
        misuse(s, "%s: setting '%s' is a %s, read as a %s", s->owner, name, ct_ptype_name(v->spec->type),
               ct_ptype_name(want));
        return &ct__no_value;
    }
    misuse(s, "%s: setting '%s' is not declared in its schema", s ? s->owner : "(null settings)",
           name ? name : "(null)");
    return &ct__no_value;
}

ct_status ct_settings_status(const ct_settings *s, ct_error *err) {
    if (!s) return CT_OK;
    pthread_mutex_lock(&misuse_lock);
    ct_status st = s->misused ? ct_error_set(err, CT_ERR_INVALID, "%s", s->misuse) : CT_OK;
    pthread_mutex_unlock(&misuse_lock);
    return st;
}

int64_t ct_settings_int(const ct_settings *s, const char *name) {
    return find(s, name, CT_PT_INT, CT_PT_INT)->i;
}

double ct_settings_float(const ct_settings *s, const char *name) {
    /* Widening an int parameter is harmless, so it is allowed. */
    const ct_value *v = find(s, name, CT_PT_FLOAT, CT_PT_INT);
    return v->spec && v->spec->type == CT_PT_INT ? (double)v->i : v->f;
}

bool ct_settings_bool(const ct_settings *s, const char *name) {
    return find(s, name, CT_PT_BOOL, CT_PT_BOOL)->b;
}

const char *ct_settings_string(const ct_settings *s, const char *name) {
    return find(s, name, CT_PT_STRING, CT_PT_STRING)->s;
}

/* Any list type: the length accessor does not care which. */
static const ct_value *find_list(const ct_settings *s, const char *name) {
    for (size_t k = 0; s && name && k < s->n; k++)
        if (!strcmp(s->vals[k].spec->name, name) && s->vals[k].spec->type >= CT_PT_INT_LIST)
            return &s->vals[k];
    return find(s, name, CT_PT_INT_LIST, CT_PT_INT_LIST); /* records the reason */
}

size_t ct_settings_len(const ct_settings *s, const char *name) { return find_list(s, name)->n; }

/* Whether i indexes v's list; records the misuse when not. */
static bool index_ok(const ct_settings *s, const ct_value *v, size_t i) {
    if (i < v->n) return true;
    if (v != &ct__no_value)
        misuse(s, "%s: index %zu of '%s' out of range (length %zu)", s->owner, i, v->spec->name, v->n);
    return false;
}

int64_t ct_settings_int_at(const ct_settings *s, const char *name, size_t i) {
    const ct_value *v = find(s, name, CT_PT_INT_LIST, CT_PT_INT_LIST);
    return index_ok(s, v, i) ? v->ints[i] : 0;
}

double ct_settings_float_at(const ct_settings *s, const char *name, size_t i) {
    const ct_value *v = find(s, name, CT_PT_FLOAT_LIST, CT_PT_INT_LIST);
    if (!index_ok(s, v, i)) return 0;
    return v->spec->type == CT_PT_INT_LIST ? (double)v->ints[i] : v->floats[i];
}

const char *ct_settings_string_at(const ct_settings *s, const char *name, size_t i) {
    const ct_value *v = find(s, name, CT_PT_STRING_LIST, CT_PT_STRING_LIST);
    return index_ok(s, v, i) ? v->strs[i] : "";
}

const char *ct_settings_origin(const ct_settings *s, const char *name) {
    for (size_t k = 0; s && name && k < s->n; k++)
        if (!strcmp(s->vals[k].spec->name, name)) return s->vals[k].origin;
    misuse(s, "%s: setting '%s' is not declared in its schema", s ? s->owner : "(null settings)",
           name ? name : "(null)");
    return ct__no_value.origin;
}

/* ---- formatting -------------------------------------------------------------- */

typedef struct sbuf {
    char *buf;
    size_t n, len; /* capacity, length the full text has */
} sbuf;

static void put(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->n ? b->n - b->len : 0;
    int w = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (w > 0) b->len += (size_t)w;
}

/* Shortest text that reads back as the same double, always float-looking. */
static void put_float(sbuf *b, double x) {
    char t[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, x);
        if (strtod(t, NULL) == x) break;
    }
    if (!strpbrk(t, ".eEn")) strcat(t, ".0");
    put(b, "%s", t);
}

static void put_string(sbuf *b, const char *s) {
    put(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') put(b, "\\%c", *p);
        else if (*p == '\n') put(b, "\\n");
        else if (*p == '\t') put(b, "\\t");
        else put(b, "%c", *p);
    }
    put(b, "\"");
}

size_t ct_settings_format(const ct_settings *s, char *buf, size_t n) {
    size_t start = (buf && n) ? strnlen(buf, n) : 0;
    sbuf b = {buf, n, start};
    if (start == n && n) b.buf[n - 1] = '\0';
    for (size_t k = 0; s && k < s->n; k++) {
        const ct_value *v = &s->vals[k];
        put(&b, "%s = ", v->spec->name);
        switch (v->spec->type) {
        case CT_PT_INT: put(&b, "%lld", (long long)v->i); break;
        case CT_PT_FLOAT: put_float(&b, v->f); break;
        case CT_PT_BOOL: put(&b, "%s", v->b ? "true" : "false"); break;
        case CT_PT_STRING: put_string(&b, v->s); break;
        case CT_PT_INT_LIST:
        case CT_PT_FLOAT_LIST:
        case CT_PT_STRING_LIST:
            put(&b, "[");
            for (size_t i = 0; i < v->n; i++) {
                if (i) put(&b, ", ");
                if (v->spec->type == CT_PT_INT_LIST) put(&b, "%lld", (long long)v->ints[i]);
                else if (v->spec->type == CT_PT_FLOAT_LIST) put_float(&b, v->floats[i]);
                else put_string(&b, v->strs[i]);
            }
            put(&b, "]");
            break;
        }
        put(&b, ";\n");
    }
    return b.len;
}

/* The experiment: parse a config (with @include and --set overrides),
 * validate every group against its schema, create the plugin instances.
 *
 * Host schemas (the groups the host itself interprets; all optional, every
 * key defaulted; read them with ct_settings_* on ex->optimizer etc.):
 *
 *   top level   name (string, default: the config file's stem),
 *               seed (int >= 0, default 0); the only other keys allowed are
 *               plugins data encoder pipelines architecture optimizer
 *               schedule train evaluation.
 *   plugins     path (string list): plugin directories searched first;
 *               relative ones are relative to the config file's folder.
 *   optimizer   type sgd|adamw|lars ("sgd"), lr (float 0.1), momentum (float
 *               0.9), nesterov (bool false), weight_decay (float 0),
 *               betas (float list [0.9, 0.999]), eps (float 1e-8),
 *               trust_coef (float 0.001, LARS), clip_norm (float 0 = off).
 *   schedule    type constant|cosine|step ("cosine"), warmup_epochs (float
 *               0), warmup_start (float 0: lr at the start of warmup, as a
 *               fraction of optimizer.lr), final_lr (float 0: lr at the end
 *               of cosine, as a fraction of optimizer.lr), step_epochs (int
 *               list []: epochs where step multiplies lr by gamma), gamma
 *               (float 0.1).
 *   train       epochs (int 10), batch_size (int 256), threads (int 0 =
 *               all cores), checkpoint_every (int 1, epochs; 0 = only at the
 *               end), keep (int 3 checkpoints; 0 = all), log_every (int 50
 *               steps), max_steps (int 0 = all; for quick runs), out_dir
 *               (string "runs").
 *   pipelines   a list of { data (string, a data.* name), weight (float 1),
 *               views (int 2) | ( { count = N; transforms = (...); }, ... )
 *               for multi-crop, transforms (list of pretext groups; only
 *               with an int views) }.
 *   evaluation  { train (string), test (string): data.* names; every (int
 *               0 = only at the end, else epochs); transforms; evaluators
 *               (list of evaluator groups) }.
 *
 * Plugin groups (data.*, encoder, architecture, transforms, evaluators)
 * select their implementation with `type`; every other key is validated
 * against that implementation's schema. */
#include "config/experiment.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- host schemas ---------------------------------------------------------- */

static const ct_param_spec top_spec[] = {
    CT_PARAM_STRING("name", "\"\"", "run name: the run directory is <out_dir>/<name>"),
    CT_PARAM_INT("seed", "0", 0, 9.2e18, "seed of initialisation and augmentation"),
    CT_PARAM_END,
};
static const char *const top_groups[] = {"plugins", "data", "encoder", "pipelines",
                                         "architecture", "optimizer", "schedule", "train",
                                         "evaluation", NULL};

static const ct_param_spec plugins_spec[] = {
    CT_PARAM_STRINGS("path", "[]", "plugin directories searched before CONTRAST_PLUGIN_PATH"),
    CT_PARAM_END,
};

static const ct_param_spec ct_optimizer_spec[] = {
    CT_PARAM_CHOICE("type", "\"sgd\"", "sgd|adamw|lars", "optimizer"),
    CT_PARAM_FLOAT("lr", "0.1", 0, 1e3, "base learning rate"),
    CT_PARAM_FLOAT("momentum", "0.9", 0, 1, "SGD/LARS momentum"),
    CT_PARAM_BOOL("nesterov", "false", "Nesterov momentum (SGD)"),
    CT_PARAM_FLOAT("weight_decay", "0.0", 0, 10, "decoupled for AdamW, L2 for SGD/LARS"),
    CT_PARAM_FLOATS("betas", "[0.9, 0.999]", 0, 0.999999, "AdamW betas (beta1, beta2)"),
    CT_PARAM_FLOAT("eps", "1e-8", 0, 1, "AdamW epsilon"),
    CT_PARAM_FLOAT("trust_coef", "0.001", 0, 1, "LARS trust coefficient"),
    CT_PARAM_FLOAT("clip_norm", "0.0", 0, INFINITY, "clip the global gradient norm (0 = off)"),
    CT_PARAM_END,
};

static const ct_param_spec ct_schedule_spec[] = {
    CT_PARAM_CHOICE("type", "\"cosine\"", "constant|cosine|step", "learning-rate schedule"),
    CT_PARAM_FLOAT("warmup_epochs", "0.0", 0, 1e6, "linear warmup length in epochs"),
    CT_PARAM_FLOAT("warmup_start", "0.0", 0, 1, "lr at the start of warmup (fraction of lr)"),
    CT_PARAM_FLOAT("final_lr", "0.0", 0, 1, "cosine: lr at the end (fraction of lr)"),
    CT_PARAM_INTS("step_epochs", "[]", 0, 1e6, "step: epochs where lr is multiplied by gamma"),
    CT_PARAM_FLOAT("gamma", "0.1", 0, 1, "step: the factor"),
    CT_PARAM_END,
};

static const ct_param_spec ct_train_spec[] = {
    CT_PARAM_INT("epochs", "10", 0, 1e6, "passes over the training data"),
    CT_PARAM_INT("batch_size", "256", 1, 1 << 20, "samples per step (per pipeline)"),
    CT_PARAM_INT("threads", "0", 0, 1024, "worker threads (0 = all cores)"),
    CT_PARAM_INT("checkpoint_every", "1", 0, 1e6, "epochs between checkpoints (0 = at the end)"),
    CT_PARAM_INT("keep", "3", 0, 1e6, "checkpoints kept (0 = all)"),
    CT_PARAM_INT("log_every", "50", 1, 1e9, "steps between metric lines"),
    CT_PARAM_INT("max_steps", "0", 0, 9e18, "stop after this many steps (0 = all; quick runs)"),
    CT_PARAM_STRING("out_dir", "\"runs\"", "parent folder of run directories"),
    CT_PARAM_END,
};

static const ct_param_spec pipeline_spec[] = {
    CT_PARAM_STRING("data", NULL, "name of a dataset in the data group"),
    CT_PARAM_FLOAT("weight", "1.0", 0, 1e6, "weight of this pipeline's loss"),
    CT_PARAM_END,
};
static const char *const pipeline_groups[] = {"views", "transforms", NULL};

static const ct_param_spec crop_spec[] = {
    CT_PARAM_INT("count", "1", 1, CT_MAX_VIEWS, "views made with this group's transforms"),
    CT_PARAM_END,
};
static const char *const crop_groups[] = {"transforms", NULL};

static const ct_param_spec evaluation_spec[] = {
    CT_PARAM_STRING("train", NULL, "dataset the evaluators fit on"),
    CT_PARAM_STRING("test", NULL, "dataset the evaluators measure on"),
    CT_PARAM_INT("every", "0", 0, 1e6, "epochs between evaluations (0 = only at the end)"),
    CT_PARAM_END,
};
static const char *const evaluation_groups[] = {"transforms", "evaluators", NULL};

static const char *const type_only[] = {"type", NULL};

/* ---- helpers ------------------------------------------------------------------- */

/* The folder of a file path ("." when none), into buf. */
static void folder_of(const char *path, char *buf, size_t n) {
    char copy[CT_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    snprintf(buf, n, "%s", dirname(copy));
}

static void where_of(const config_setting_t *s, char *buf, size_t n) {
    const char *file = s ? config_setting_source_file(s) : NULL;
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (file && line) snprintf(buf, n, "%s:%u: ", file, line);
    else if (line) snprintf(buf, n, "line %u: ", line);
    else if (s && !config_setting_is_root(s)) {
        /* Made by a --set override: name it by its path. */
        char path[256] = "";
        const char *parts[16];
        int depth = 0;
        for (const config_setting_t *p = s; p && !config_setting_is_root(p) && depth < 16;
             p = config_setting_parent(p))
            parts[depth++] = config_setting_name(p);
        for (int k = depth - 1; k >= 0; k--) {
            size_t used = strlen(path);
            snprintf(path + used, sizeof path - used, "%s%s", used ? "." : "",
                     parts[k] ? parts[k] : "[]");
        }
        snprintf(buf, n, "--set %s: ", path);
    } else
        buf[0] = '\0';
}

static ct_status fail(ct_error *err, ct_status code, const config_setting_t *at, const char *fmt,
                      ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static ct_status fail(ct_error *err, ct_status code, const config_setting_t *at, const char *fmt,
                      ...) {
    char where[CT_PATH_MAX + 32], msg[CT_ERROR_MSG_MAX];
    where_of(at, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ct_error_set(err, code, "%s%s", where, msg);
}

static const ct_role all_roles[] = {CT_ROLE_SOURCE, CT_ROLE_PRETEXT, CT_ROLE_ENCODER,
                                    CT_ROLE_ARCHITECTURE, CT_ROLE_EVALUATOR};

/* Names registered for a role, "a, b, c" (for messages). */
static void list_names(const ct_plugin_set *set, ct_role role, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < ct_registry_count(set->reg); k++) {
        const ct_registry_entry *e = ct_registry_at(set->reg, k);
        if (e->role != role) continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", e->name);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, n, "none found");
}

/* The implementation a plugin group selects with `type`, with a helpful
 * refusal: did you mean, the wrong role, what is available, refused files. */
static ct_status resolve_type(const ct_experiment *ex, const config_setting_t *group, ct_role role,
                              const char *label, const ct_registry_entry **out, ct_error *err) {
    if (config_setting_type(group) != CONFIG_TYPE_GROUP)
        return fail(err, CT_ERR_CONFIG, group, "%s: must be a group { type = \"...\"; ... }", label);
    const config_setting_t *t = config_setting_get_member(group, "type");
    const char *name = t ? config_setting_get_string(t) : NULL;
    char avail[400];
    list_names(ex->plugins, role, avail, sizeof avail);
    if (!name)
        return fail(err, CT_ERR_CONFIG, t ? t : group, "%s: needs type = \"<%s name>\" (available: %s)",
                    label, ct_role_name(role), avail);
    *out = ct_plugins_find(ex->plugins, role, name);
    if (*out) return CT_OK;
    for (size_t k = 0; k < sizeof all_roles / sizeof all_roles[0]; k++)
        if (ct_plugins_find(ex->plugins, all_roles[k], name))
            return fail(err, CT_ERR_CONFIG, t, "%s: '%s' is a%s %s, not a %s (available %ss: %s)",
                        label, name, all_roles[k] == CT_ROLE_ENCODER || all_roles[k] == CT_ROLE_EVALUATOR || all_roles[k] == CT_ROLE_ARCHITECTURE ? "n" : "",
                        ct_role_name(all_roles[k]), ct_role_name(role), ct_role_name(role), avail);
    const char *near = ct_registry_suggest(ex->plugins->reg, role, name);
    char refused[160] = "";
    int nref = ct_plugins_refused(ex->plugins);
    if (nref)
        snprintf(refused, sizeof refused, "; %d plugin file%s refused, see `contrast plugins`", nref,
                 nref == 1 ? " was" : "s were");
    if (near)
        return fail(err, CT_ERR_CONFIG, t, "%s: unknown %s '%s' (did you mean '%s'?)%s", label,
                    ct_role_name(role), name, near, refused);
    return fail(err, CT_ERR_CONFIG, t, "%s: unknown %s '%s' (available: %s)%s", label,
                ct_role_name(role), name, avail, refused);
}

/* Validate a plugin group against its implementation's schema. */
static ct_status plugin_settings(const ct_experiment *ex, const config_setting_t *group,
                                 ct_role role, const char *label, const ct_registry_entry **e,
                                 ct_settings **out, ct_error *err) {
    ct_status st = resolve_type(ex, group, role, label, e, err);
    if (st) return st;
    char owner[160];
    snprintf(owner, sizeof owner, "%.80s (%s %.40s)", label, ct_role_name(role), (*e)->name);
    return ct_settings_from_config(ct_registry_entry_params(*e), group, type_only, owner, out, err);
}

static ct_status host_settings(const config_t *cfg, const char *group, const ct_param_spec *spec,
                               ct_settings **out, ct_error *err) {
    const config_setting_t *g = config_lookup(cfg, group);
    return ct_settings_from_config(spec, g, NULL, group, out, err);
}

static ct_dataset *dataset_named(ct_experiment *ex, const char *name) {
    for (int k = 0; k < ex->n_data; k++)
        if (strcmp(ex->data[k].name, name) == 0) return &ex->data[k];
    return NULL;
}

/* A data.* reference (pipelines.data, evaluation.train/test). */
static ct_status dataset_ref(ct_experiment *ex, const ct_settings *s, const char *key,
                             const char *label, ct_dataset **out, ct_error *err) {
    const char *name = ct_settings_string(s, key);
    *out = dataset_named(ex, name);
    if (*out) return CT_OK;
    char names[300] = "";
    size_t used = 0;
    const char *near = NULL;
    int best = 3;
    for (int k = 0; k < ex->n_data; k++) {
        int w = snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "", ex->data[k].name);
        if (w > 0 && (size_t)w < sizeof names - used) used += (size_t)w;
        int d = ct_edit_distance(name, ex->data[k].name);
        if (d < best) best = d, near = ex->data[k].name;
    }
    char hint[120] = "";
    if (near) snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    return ct_error_set(err, CT_ERR_CONFIG, "%s: %s: %s = \"%s\" is not a dataset of the data group%s; datasets: %s",
                        ct_settings_origin(s, key), label, key, name, hint, used ? names : "none");
}

/* ---- overrides (--set group.key=value) -------------------------------------------- */

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

static ct_status apply_override(config_t *cfg, const char *arg, ct_error *err) {
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

/* ---- chains, datasets, pipelines ---------------------------------------------------- */

static ct_status build_chain(ct_experiment *ex, const config_setting_t *list, const char *label,
                             ct_chain *chain, ct_error *err) {
    if (!list) return CT_OK;
    int type = config_setting_type(list);
    if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && config_setting_length(list) == 0))
        return fail(err, CT_ERR_CONFIG, list, "%s: must be a list ( { type = \"...\"; }, ... )", label);
    int n = config_setting_length(list);
    if (n > CT_MAX_TRANSFORMS)
        return fail(err, CT_ERR_CONFIG, list, "%s: %d transforms, at most %d", label, n,
                    CT_MAX_TRANSFORMS);
    for (int k = 0; k < n; k++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)k);
        char tl[200];
        snprintf(tl, sizeof tl, "%s[%d]", label, k);
        const ct_registry_entry *e;
        ct_settings *s = NULL;
        ct_status st = plugin_settings(ex, g, CT_ROLE_PRETEXT, tl, &e, &s, err);
        if (st) return st;
        ct_transform *t = &chain->t[chain->n++];
        t->ops = e->ops.pretext;
        t->settings = s;
        if (!t->ops->apply)
            return fail(err, CT_ERR_CONFIG, g, "%s: pretext '%s' is a structure, not a transform",
                        tl, e->name);
        st = t->ops->create(s, ct_plugins_host_for(ex->plugins, e), &t->self, err);
        if (st) {
            ct_error_prefix(err, "%s: pretext %s: ", tl, e->name);
            return st;
        }
    }
    return CT_OK;
}

static ct_status load_data(ct_experiment *ex, ct_error *err) {
    const config_setting_t *data = config_lookup(&ex->cfg, "data");
    if (!data) return CT_OK;
    if (!config_setting_is_group(data))
        return fail(err, CT_ERR_CONFIG, data, "data: must be a group of named datasets");
    int n = config_setting_length(data);
    if (n > CT_MAX_DATASETS)
        return fail(err, CT_ERR_CONFIG, data, "data: %d datasets, at most %d", n, CT_MAX_DATASETS);
    for (int k = 0; k < n; k++) {
        const config_setting_t *g = config_setting_get_elem(data, (unsigned)k);
        ct_dataset *d = &ex->data[ex->n_data++];
        snprintf(d->name, sizeof d->name, "%s", config_setting_name(g));
        char label[CT_NAME_MAX + 8];
        snprintf(label, sizeof label, "data.%s", d->name);
        const ct_registry_entry *e;
        ct_status st = plugin_settings(ex, g, CT_ROLE_SOURCE, label, &e, &d->settings, err);
        if (st) return st;
        d->ops = e->ops.source;
        st = d->ops->create(d->settings, ct_plugins_host_for(ex->plugins, e), &d->self, err);
        if (st) {
            char where[CT_PATH_MAX + 32];
            where_of(g, where, sizeof where);
            ct_error_prefix(err, "%s%s (source %s): ", where, label, e->name);
            d->self = NULL;
            return st;
        }
        d->ops->info(d->self, &d->info);
        if (d->info.count <= 0)
            return fail(err, CT_ERR_CONFIG, g, "%s (source %s): has no items", label, e->name);
    }
    return CT_OK;
}

static ct_status load_views(ct_experiment *ex, const config_setting_t *pg, ct_pipeline_spec *p,
                            const char *label, ct_error *err) {
    const config_setting_t *views = config_setting_get_member(pg, "views");
    const config_setting_t *transforms = config_setting_get_member(pg, "transforms");
    char sub[200];
    if (!views || config_setting_type(views) == CONFIG_TYPE_INT) {
        int count = views ? config_setting_get_int(views) : 2;
        if (count < 1 || count > CT_MAX_VIEWS)
            return fail(err, CT_ERR_CONFIG, views, "%s: views = %d is out of range [1, %d]", label,
                        count, CT_MAX_VIEWS);
        p->n_groups = 1;
        p->groups[0].count = count;
        snprintf(sub, sizeof sub, "%s.transforms", label);
        return build_chain(ex, transforms, sub, &p->groups[0].chain, err);
    }
    if (config_setting_type(views) != CONFIG_TYPE_LIST)
        return fail(err, CT_ERR_CONFIG, views,
                    "%s: views must be an int or a list ( { count = 2; transforms = (...); }, ... )",
                    label);
    if (transforms)
        return fail(err, CT_ERR_CONFIG, transforms,
                    "%s: with a multi-crop views list, give transforms inside each crop group", label);
    int n = config_setting_length(views), total = 0;
    if (n < 1 || n > CT_MAX_CROP_GROUPS)
        return fail(err, CT_ERR_CONFIG, views, "%s: %d crop groups, need 1..%d", label, n,
                    CT_MAX_CROP_GROUPS);
    for (int k = 0; k < n; k++) {
        const config_setting_t *cg = config_setting_get_elem(views, (unsigned)k);
        snprintf(sub, sizeof sub, "%s.views[%d]", label, k);
        ct_settings *s = NULL;
        ct_status st = ct_settings_from_config(crop_spec, cg, crop_groups, sub, &s, err);
        if (st) return st;
        p->groups[k].count = (int)ct_settings_int(s, "count");
        ct_settings_free(s);
        total += p->groups[k].count;
        p->n_groups = k + 1;
        char tl[220];
        snprintf(tl, sizeof tl, "%s.transforms", sub);
        st = build_chain(ex, config_setting_get_member(cg, "transforms"), tl, &p->groups[k].chain, err);
        if (st) return st;
    }
    if (total > CT_MAX_VIEWS)
        return fail(err, CT_ERR_CONFIG, views, "%s: %d views in total, at most %d", label, total,
                    CT_MAX_VIEWS);
    return CT_OK;
}

static ct_status load_pipelines(ct_experiment *ex, ct_error *err) {
    const config_setting_t *list = config_lookup(&ex->cfg, "pipelines");
    if (!list) return CT_OK;
    if (config_setting_type(list) != CONFIG_TYPE_LIST)
        return fail(err, CT_ERR_CONFIG, list, "pipelines: must be a list ( { data = \"...\"; }, ... )");
    int n = config_setting_length(list);
    if (n > CT_MAX_PIPELINES)
        return fail(err, CT_ERR_CONFIG, list, "pipelines: %d pipelines, at most %d", n,
                    CT_MAX_PIPELINES);
    for (int k = 0; k < n; k++) {
        const config_setting_t *pg = config_setting_get_elem(list, (unsigned)k);
        char label[64];
        snprintf(label, sizeof label, "pipelines[%d]", k);
        ct_settings *s = NULL;
        ct_status st = ct_settings_from_config(pipeline_spec, pg, pipeline_groups, label, &s, err);
        ct_pipeline_spec *p = &ex->pipelines[ex->n_pipelines++];
        if (!st) st = dataset_ref(ex, s, "data", label, &p->data, err);
        if (!st) p->weight = (float)ct_settings_float(s, "weight");
        ct_settings_free(s);
        if (!st) st = load_views(ex, pg, p, label, err);
        if (st) return st;
    }
    return CT_OK;
}

static ct_status load_evaluation(ct_experiment *ex, ct_error *err) {
    const config_setting_t *g = config_lookup(&ex->cfg, "evaluation");
    if (!g) return CT_OK;
    ct_settings *s = NULL;
    ct_status st = ct_settings_from_config(evaluation_spec, g, evaluation_groups, "evaluation", &s, err);
    if (!st) st = dataset_ref(ex, s, "train", "evaluation", &ex->eval_train, err);
    if (!st) st = dataset_ref(ex, s, "test", "evaluation", &ex->eval_test, err);
    if (!st) ex->eval_every = (int)ct_settings_int(s, "every");
    ct_settings_free(s);
    if (!st)
        st = build_chain(ex, config_setting_get_member(g, "transforms"), "evaluation.transforms",
                         &ex->eval_chain, err);
    const config_setting_t *list = config_setting_get_member(g, "evaluators");
    if (st || !list) return st;
    if (config_setting_type(list) != CONFIG_TYPE_LIST)
        return fail(err, CT_ERR_CONFIG, list, "evaluation.evaluators: must be a list ( { type = \"knn\"; }, ... )");
    int n = config_setting_length(list);
    if (n > CT_MAX_EVALUATORS)
        return fail(err, CT_ERR_CONFIG, list, "evaluation.evaluators: %d, at most %d", n,
                    CT_MAX_EVALUATORS);
    for (int k = 0; k < n; k++) {
        char label[64];
        snprintf(label, sizeof label, "evaluation.evaluators[%d]", k);
        const ct_registry_entry *e;
        ct_evaluator *ev = &ex->evaluators[ex->n_evaluators++];
        st = plugin_settings(ex, config_setting_get_elem(list, (unsigned)k), CT_ROLE_EVALUATOR,
                             label, &e, &ev->settings, err);
        if (st) return st;
        ev->ops = e->ops.evaluator;
        st = ev->ops->create(ev->settings, ct_plugins_host_for(ex->plugins, e), &ev->self, err);
        if (st) {
            ev->self = NULL;
            ct_error_prefix(err, "%s (evaluator %s): ", label, e->name);
            return st;
        }
    }
    return CT_OK;
}

/* ---- plugins and the top level ------------------------------------------------------- */

static ct_status load_plugins(ct_experiment *ex, const ct_experiment_opts *opts, ct_error *err) {
    ct_settings *s = NULL;
    ct_status st = host_settings(&ex->cfg, "plugins", plugins_spec, &s, err);
    if (st) return st;
    size_t n = ct_settings_len(s, "path");
    char **paths = calloc(n ? n : 1, sizeof *paths);
    char dir[CT_PATH_MAX];
    folder_of(ex->path, dir, sizeof dir);
    for (size_t k = 0; paths && k < n && !st; k++) {
        const char *p = ct_settings_string_at(s, "path", k);
        size_t len = strlen(dir) + strlen(p) + 2;
        if (!(paths[k] = malloc(len))) break;
        if (p[0] == '/') snprintf(paths[k], len, "%s", p);
        else snprintf(paths[k], len, "%s/%s", dir, p);
        char real[PATH_MAX];
        if (!realpath(paths[k], real))
            st = ct_error_set(err, CT_ERR_CONFIG,
                              "%s: plugins.path: directory '%s' not found (relative entries are "
                              "relative to the config file's folder)",
                              ct_settings_origin(s, "path"), paths[k]);
    }
    ct_host tmpl;
    ct_host_defaults(&tmpl);
    tmpl.seed = ex->seed;
    ct_loader_opts lo = {0};
    lo.paths = (const char *const *)paths;
    lo.n_paths = (int)n;
    lo.allow_unsafe = opts && opts->allow_unsafe_plugins;
    lo.host = &tmpl;
    if (!paths) st = ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    if (!st) st = ct_plugins_load(&lo, &ex->plugins, err);
    for (size_t k = 0; paths && k < n; k++) free(paths[k]);
    free(paths);
    ct_settings_free(s);
    return st;
}

static ct_status load_top(ct_experiment *ex, ct_error *err) {
    ct_settings *s = NULL;
    ct_status st = ct_settings_from_config(top_spec, config_root_setting(&ex->cfg), top_groups,
                                           "top level", &s, err);
    if (st) return st;
    ex->seed = (uint64_t)ct_settings_int(s, "seed");
    const char *name = ct_settings_string(s, "name");
    if (!*name) {
        /* Default run name: the config file's stem. */
        char copy[CT_PATH_MAX];
        snprintf(copy, sizeof copy, "%s", ex->path);
        const char *base = basename(copy);
        const char *ext = strrchr(base, '.');
        snprintf(ex->name, sizeof ex->name, "%.*s", (int)(ext ? ext - base : (long)strlen(base)), base);
    } else {
        snprintf(ex->name, sizeof ex->name, "%s", name);
    }
    ct_settings_free(s);
    for (const char *p = ex->name; *p; p++)
        if (*p == '/' || (p == ex->name && *p == '.'))
            return ct_error_set(err, CT_ERR_CONFIG, "%s: name '%s' cannot be a run directory name",
                                ex->path, ex->name);
    /* Each host group, when present, must be a group. */
    for (int k = 0; top_groups[k]; k++) {
        const config_setting_t *g = config_lookup(&ex->cfg, top_groups[k]);
        bool list_ok = !strcmp(top_groups[k], "pipelines");
        if (g && !config_setting_is_group(g) && !(list_ok && config_setting_is_list(g)))
            return fail(err, CT_ERR_CONFIG, g, "%s: must be a %s", top_groups[k],
                        list_ok ? "list ( {...}, ... )" : "group { ... }");
    }
    return CT_OK;
}

static ct_status parse_file(ct_experiment *ex, const char *path, ct_error *err) {
    config_init(&ex->cfg);
    snprintf(ex->path, sizeof ex->path, "%s", path);
    char dir[CT_PATH_MAX];
    folder_of(path, dir, sizeof dir);
    /* @include "x.cfg" is relative to the config's folder. */
    config_set_include_dir(&ex->cfg, dir);
    FILE *f = fopen(path, "r");
    if (!f) return ct_error_set(err, CT_ERR_IO, "%s: cannot read config: %s", path, strerror(errno));
    fclose(f);
    if (config_read_file(&ex->cfg, path)) return CT_OK;
    const char *file = config_error_file(&ex->cfg);
    return ct_error_set(err, CT_ERR_CONFIG, "%s:%d: %s", file ? file : path,
                        config_error_line(&ex->cfg), config_error_text(&ex->cfg));
}

ct_status ct_experiment_load(ct_experiment *ex, const char *path, const ct_experiment_opts *opts,
                             ct_error *err) {
    memset(ex, 0, sizeof *ex);
    ct_status st = parse_file(ex, path, err);
    for (int k = 0; !st && opts && k < opts->n_sets; k++) st = apply_override(&ex->cfg, opts->sets[k], err);
    if (!st) st = load_top(ex, err);
    if (!st) st = host_settings(&ex->cfg, "optimizer", ct_optimizer_spec, &ex->optimizer, err);
    if (!st) st = host_settings(&ex->cfg, "schedule", ct_schedule_spec, &ex->schedule, err);
    if (!st) st = host_settings(&ex->cfg, "train", ct_train_spec, &ex->train, err);
    if (!st) st = load_plugins(ex, opts, err);
    if (!st) st = load_data(ex, err);
    const config_setting_t *g;
    if (!st && (g = config_lookup(&ex->cfg, "encoder"))) {
        const ct_registry_entry *e;
        st = plugin_settings(ex, g, CT_ROLE_ENCODER, "encoder", &e, &ex->encoder_settings, err);
        if (!st) ex->encoder_ops = e->ops.encoder;
    }
    if (!st) st = load_pipelines(ex, err);
    if (!st && (g = config_lookup(&ex->cfg, "architecture"))) {
        const ct_registry_entry *e;
        st = plugin_settings(ex, g, CT_ROLE_ARCHITECTURE, "architecture", &e, &ex->arch_settings, err);
        if (!st) ex->arch_ops = e->ops.architecture;
    }
    if (!st) st = load_evaluation(ex, err);
    if (st) ct_experiment_free(ex);
    return st;
}

static void chain_free(ct_chain *c) {
    for (int k = 0; k < c->n; k++) {
        if (c->t[k].self && c->t[k].ops) c->t[k].ops->destroy(c->t[k].self);
        ct_settings_free(c->t[k].settings);
    }
    memset(c, 0, sizeof *c);
}

void ct_experiment_free(ct_experiment *ex) {
    if (!ex) return;
    for (int k = 0; k < ex->n_evaluators; k++) {
        ct_evaluator *ev = &ex->evaluators[k];
        if (ev->self && ev->ops) ev->ops->destroy(ev->self);
        ct_settings_free(ev->settings);
    }
    chain_free(&ex->eval_chain);
    for (int k = 0; k < ex->n_pipelines; k++)
        for (int j = 0; j < ex->pipelines[k].n_groups; j++) chain_free(&ex->pipelines[k].groups[j].chain);
    for (int k = 0; k < ex->n_data; k++) {
        ct_dataset *d = &ex->data[k];
        if (d->self && d->ops) d->ops->destroy(d->self);
        ct_settings_free(d->settings);
    }
    ct_settings_free(ex->encoder_settings);
    ct_settings_free(ex->arch_settings);
    ct_settings_free(ex->optimizer);
    ct_settings_free(ex->schedule);
    ct_settings_free(ex->train);
    ct_plugins_free(ex->plugins);
    if (config_root_setting(&ex->cfg)) config_destroy(&ex->cfg);
    memset(ex, 0, sizeof *ex);
}

/* ---- the chain ------------------------------------------------------------------------- */

ct_status ct_chain_apply(const ct_chain *c, const ct_image *src, ct_image *out, ct_image *scratch,
                         ct_rng *rng, ct_error *err) {
    if (!c || c->n == 0) {
        ct_status st = ct_image_copy(out, src);
        return st ? ct_error_set(err, st, "copying an image: %s", ct_status_str(st)) : CT_OK;
    }
    /* Ping-pong between out and scratch so the last step writes out and
     * no step's output aliases its input. */
    const ct_image *in = src;
    for (int k = 0; k < c->n; k++) {
        ct_image *dst = ((c->n - 1 - k) % 2 == 0) ? out : scratch;
        const ct_transform *t = &c->t[k];
        ct_status st = t->ops->apply(t->self, in, dst, rng, err);
        if (st) {
            ct_error_prefix(err, "transform %s: ", t->ops->name);
            return st;
        }
        in = dst;
    }
    return CT_OK;
}

/* ---- the resolved config ----------------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool oom;
} text;

static void emit(text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void emit(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (w < 0 || t->oom) {
        va_end(ap2);
        return;
    }
    if (t->len + (size_t)w + 1 > t->cap) {
        size_t cap = (t->cap + (size_t)w + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->oom = true;
            va_end(ap2);
            return;
        }
        t->buf = b, t->cap = cap;
    }
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap2);
    va_end(ap2);
    t->len += (size_t)w;
}

/* Settings as indented "key = value;" lines. */
static void emit_settings(text *t, const ct_settings *s, int indent) {
    size_t need = ct_settings_format(s, NULL, 0) + 1;
    char *buf = calloc(1, need);
    if (!buf) {
        t->oom = true;
        return;
    }
    ct_settings_format(s, buf, need);
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        emit(t, "%*s%.*s\n", indent, "", (int)(nl - line), line);
    }
    free(buf);
}

static void emit_plugin_group(text *t, const char *type, const ct_settings *s, int indent) {
    emit(t, "{\n%*stype = \"%s\";\n", indent + 2, "", type);
    emit_settings(t, s, indent + 2);
    emit(t, "%*s}", indent, "");
}

static void emit_chain(text *t, const ct_chain *c, int indent) {
    emit(t, "%*stransforms = (", indent, "");
    for (int k = 0; k < c->n; k++) {
        emit(t, "%s\n%*s", k ? "," : "", indent + 2, "");
        emit_plugin_group(t, c->t[k].ops->name, c->t[k].settings, indent + 2);
    }
    emit(t, "%s);\n", c->n ? "\n" : "");
}

static void emit_pipelines(text *t, const ct_experiment *ex) {
    emit(t, "pipelines = (");
    for (int k = 0; k < ex->n_pipelines; k++) {
        const ct_pipeline_spec *p = &ex->pipelines[k];
        emit(t, "%s\n  {\n    data = \"%s\";\n    weight = %.9g;\n", k ? "," : "", p->data->name,
             (double)p->weight);
        if (p->n_groups == 1) {
            emit(t, "    views = %d;\n", p->groups[0].count);
            emit_chain(t, &p->groups[0].chain, 4);
        } else {
            emit(t, "    views = (");
            for (int j = 0; j < p->n_groups; j++) {
                emit(t, "%s\n      {\n        count = %d;\n", j ? "," : "", p->groups[j].count);
                emit_chain(t, &p->groups[j].chain, 8);
                emit(t, "      }");
            }
            emit(t, "\n    );\n");
        }
        emit(t, "  }");
    }
    emit(t, "%s);\n", ex->n_pipelines ? "\n" : "");
}

static void emit_evaluation(text *t, const ct_experiment *ex) {
    if (!ex->eval_train) return;
    emit(t, "evaluation = {\n  train = \"%s\";\n  test = \"%s\";\n  every = %d;\n",
         ex->eval_train->name, ex->eval_test->name, ex->eval_every);
    emit_chain(t, &ex->eval_chain, 2);
    emit(t, "  evaluators = (");
    for (int k = 0; k < ex->n_evaluators; k++) {
        emit(t, "%s\n    ", k ? "," : "");
        emit_plugin_group(t, ex->evaluators[k].ops->name, ex->evaluators[k].settings, 4);
    }
    emit(t, "%s);\n};\n", ex->n_evaluators ? "\n  " : "");
}

static void emit_all(text *t, const ct_experiment *ex) {
    emit(t, "# resolved by contrast %s from %s: every default filled in\n", ct_version_string(),
         ex->path);
    emit(t, "name = \"%s\";\nseed = %llu;\n", ex->name, (unsigned long long)ex->seed);
    if (ex->plugins && ex->plugins->n_dirs) {
        emit(t, "plugins = {\n  path = [");
        for (int k = 0; k < ex->plugins->n_dirs; k++)
            emit(t, "%s\"%s\"", k ? ", " : "", ex->plugins->dirs[k]);
        emit(t, "];\n};\n");
    }
    emit(t, "data = {\n");
    for (int k = 0; k < ex->n_data; k++) {
        emit(t, "  %s = ", ex->data[k].name);
        emit_plugin_group(t, ex->data[k].ops->name, ex->data[k].settings, 2);
        emit(t, ";\n");
    }
    emit(t, "};\n");
    if (ex->encoder_ops) {
        emit(t, "encoder = ");
        emit_plugin_group(t, ex->encoder_ops->name, ex->encoder_settings, 0);
        emit(t, ";\n");
    }
    if (ex->n_pipelines) emit_pipelines(t, ex);
    if (ex->arch_ops) {
        emit(t, "architecture = ");
        emit_plugin_group(t, ex->arch_ops->name, ex->arch_settings, 0);
        emit(t, ";\n");
    }
    const char *names[] = {"optimizer", "schedule", "train"};
    const ct_settings *groups[] = {ex->optimizer, ex->schedule, ex->train};
    for (int k = 0; k < 3; k++) {
        if (!groups[k]) continue;
        emit(t, "%s = {\n", names[k]);
        emit_settings(t, groups[k], 2);
        emit(t, "};\n");
    }
    emit_evaluation(t, ex);
}

ct_status ct_experiment_write_resolved(const ct_experiment *ex, const char *file, ct_error *err) {
    text t = {0};
    emit_all(&t, ex);
    if (t.oom) {
        free(t.buf);
        return ct_error_set(err, CT_ERR_NOMEM, "out of memory writing %s", file);
    }
    FILE *f = fopen(file, "w");
    if (!f) {
        free(t.buf);
        return ct_error_set(err, CT_ERR_IO, "cannot write %s: %s", file, strerror(errno));
    }
    size_t w = fwrite(t.buf, 1, t.len, f);
    int rc = fclose(f);
    free(t.buf);
    if (w != t.len || rc != 0)
        return ct_error_set(err, CT_ERR_IO, "writing %s: %s", file, strerror(errno));
    return CT_OK;
}

/* ---- host schemas, for documentation ------------------------------------------- */

const ct_param_spec *ct_experiment_host_schema(size_t i, const char **group) {
    static const struct {
        const char *group;
        const ct_param_spec *spec;
    } schemas[] = {
        {"(top level)", top_spec},          {"plugins", plugins_spec},
        {"optimizer", ct_optimizer_spec},   {"schedule", ct_schedule_spec},
        {"train", ct_train_spec},           {"pipelines[]", pipeline_spec},
        {"pipelines[].views[]", crop_spec}, {"evaluation", evaluation_spec},
    };
    if (i >= sizeof schemas / sizeof schemas[0]) return NULL;
    if (group) *group = schemas[i].group;
    return schemas[i].spec;
}

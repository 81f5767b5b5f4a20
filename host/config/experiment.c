/* The experiment: parse a config (with @include and --set overrides),
 * validate every group against its schema (the host's own, host_schema.c,
 * or the selected plugin's), create the plugin instances; and free it all.
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

#include "config/encoder_inputs.h"
#include "config/host_schema.h"
#include "config/overrides.h"

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
                                    CT_ROLE_ARCHITECTURE, CT_ROLE_EVALUATOR, CT_ROLE_STRUCTURE};

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

/* A misuse of `s` (ct_settings_status) with the config line of `at`. */
static ct_status misuse_at(const ct_settings *s, const config_setting_t *at, ct_error *err) {
    ct_status misuse = ct_settings_status(s, err);
    if (misuse == CT_OK) return CT_OK;
    char where[CT_PATH_MAX + 32];
    where_of(at, where, sizeof where);
    if (where[0]) ct_error_prefix(err, "%s", where);
    return misuse;
}

ct_status ct_experiment_settings_status(const ct_experiment *ex, const char *group, const ct_settings *s,
                                        ct_error *err) {
    return misuse_at(s, config_lookup(&ex->cfg, group), err);
}

/* After a plugin's create got its settings `s` and returned *st: a misuse
 * of them is the plugin's error, ahead of create's own (a value read as 0
 * is the likelier cause of that). True when there was one (*st is then its
 * status, err its message). */
static bool settings_misused(const ct_settings *s, const config_setting_t *group, ct_status *st,
                             ct_error *err) {
    ct_status misuse = misuse_at(s, group, err);
    if (misuse == CT_OK) return false;
    *st = misuse;
    return true;
}

/* Validate a plugin group against its implementation's schema; the keys
 * of `host_keys` are the host's (skipped). */
static ct_status plugin_settings_with(const ct_experiment *ex, const config_setting_t *group,
                                      ct_role role, const char *label, const char *const *host_keys,
                                      const ct_registry_entry **e, ct_settings **out, ct_error *err) {
    ct_status st = resolve_type(ex, group, role, label, e, err);
    if (st) return st;
    char owner[160];
    snprintf(owner, sizeof owner, "%.80s (%s %.40s)", label, ct_role_name(role), (*e)->name);
    return ct_settings_from_config(ct_registry_entry_params(*e), group, host_keys, owner, out, err);
}

static ct_status plugin_settings(const ct_experiment *ex, const config_setting_t *group,
                                 ct_role role, const char *label, const ct_registry_entry **e,
                                 ct_settings **out, ct_error *err) {
    return plugin_settings_with(ex, group, role, label, type_only, e, out, err);
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
        st = t->ops->create(s, ct_plugins_host_for(ex->plugins, e), &t->self, err);
        if (st) t->self = NULL;
        if (settings_misused(s, g, &st, err)) return st;
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
        if (st) d->self = NULL;
        if (settings_misused(d->settings, g, &st, err)) return st;
        if (st) {
            char where[CT_PATH_MAX + 32];
            where_of(g, where, sizeof where);
            ct_error_prefix(err, "%s%s (source %s): ", where, label, e->name);
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
        ct_status st = ct_settings_from_config(ct__crop_spec, cg, ct__crop_groups, sub, &s, err);
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

static ct_status load_structure(ct_experiment *ex, const config_setting_t *pg, int k, ct_pipeline_spec *p,
                                const char *label, ct_error *err);

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
        ct_status st = ct_settings_from_config(ct__pipeline_spec, pg, ct__pipeline_groups, label, &s, err);
        ct_pipeline_spec *p = &ex->pipelines[ex->n_pipelines++];
        if (!st) st = dataset_ref(ex, s, "data", label, &p->data, err);
        if (!st) p->weight = (float)ct_settings_float(s, "weight");
        if (!st) {
            p->own_batch = ct_settings_int(s, "batch_size") > 0;
            p->batch_size = p->own_batch ? ct_settings_int(s, "batch_size") : ct_settings_int(ex->train, "batch_size");
            p->label_runs = (int)ct_settings_int(s, "label_runs");
            if (p->label_runs > 1 && p->data->info.count > 0 && !p->data->info.has_labels)
                st = ct_error_set(err, CT_ERR_CONFIG, "%s: %s.label_runs = %d needs labelled data, and data \"%s\" has none",
                                  ct_settings_origin(s, "label_runs"), label, p->label_runs, p->data->name);
        }
        ct_settings_free(s);
        if (!st) st = load_views(ex, pg, p, label, err);
        if (!st) st = load_structure(ex, pg, k, p, label, err);
        if (st) return st;
    }
    return CT_OK;
}

/* ---- structures and their pairing with the architecture ---------------------------- */

const char *ct_experiment_structure_name(const ct_experiment *ex, int k) {
    const ct_structure_ops *ops = ex->pipelines[k].structure.ops;
    return ops ? ops->name : CT_VIEWS_STRUCTURE;
}

/* Prefix of a structure's layers: its name, made unique by the pipeline
 * index when an earlier pipeline has the same structure. */
static void structure_prefix(const ct_experiment *ex, int k, const char *name, char *out, size_t n) {
    bool taken = false;
    for (int j = 0; j < k; j++)
        if (ex->pipelines[j].structure.ops && !strcmp(ex->pipelines[j].structure.ops->name, name)) taken = true;
    if (taken)
        snprintf(out, n, "%s_%d.", name, k);
    else
        snprintf(out, n, "%s.", name);
}

static int total_views(const ct_pipeline_spec *p) {
    int v = 0;
    for (int g = 0; g < p->n_groups; g++) v += p->groups[g].count;
    return v;
}

/* The default: every view a part and an embedding set. */
static void views_info(const ct_pipeline_spec *p, ct_structure_info *info) {
    memset(info, 0, sizeof *info);
    info->n_parts = total_views(p);
    info->n_sets = info->n_parts;
    info->rows_per_sample = 1;
}

/* Counts a structure reports must fit a batch. */
static ct_status check_info(const ct_structure_info *i, const config_setting_t *g, const char *label,
                            const char *name, ct_error *err) {
    if (i->n_parts < 1 || i->n_parts > CT_MAX_VIEWS || i->n_sets < 1 || i->n_sets > CT_MAX_SETS ||
        i->rows_per_sample < 1)
        return fail(err, CT_ERR_PLUGIN, g,
                    "%s (structure %s): reports %d parts, %d sets, %d rows per sample (allowed: 1..%d parts, "
                    "1..%d sets, >= 1 row)",
                    label, name, i->n_parts, i->n_sets, i->rows_per_sample, CT_MAX_VIEWS, CT_MAX_SETS);
    return CT_OK;
}

static ct_status load_structure(ct_experiment *ex, const config_setting_t *pg, int k, ct_pipeline_spec *p,
                                const char *label, ct_error *err) {
    const config_setting_t *g = config_setting_get_member(pg, "structure");
    const char *type = NULL;
    if (g && config_setting_is_group(g)) config_setting_lookup_string(g, "type", &type);
    if (!g || (type && !strcmp(type, CT_VIEWS_STRUCTURE))) {
        if (g && config_setting_length(g) != 1)
            return fail(err, CT_ERR_CONFIG, g, "%s.structure: the default structure \"%s\" takes no settings (its "
                        "views are the pipeline's views)", label, CT_VIEWS_STRUCTURE);
        views_info(p, &p->structure.info);
        return CT_OK;
    }
    char sl[96];
    snprintf(sl, sizeof sl, "%s.structure", label);
    const ct_registry_entry *e;
    ct_structure_inst *si = &p->structure;
    ct_status st = plugin_settings(ex, g, CT_ROLE_STRUCTURE, sl, &e, &si->settings, err);
    if (st) return st;
    int chain_views[CT_MAX_CROP_GROUPS];
    for (int j = 0; j < p->n_groups; j++) chain_views[j] = p->groups[j].count;
    ct_structure_env env = {sizeof env, ct_plugins_host_for(ex->plugins, e), p->n_groups, chain_views,
                            p->data->info.channels, p->data->info.height, p->data->info.width, k};
    st = e->ops.structure->create(si->settings, &env, &si->self, err);
    if (st) si->self = NULL;
    if (settings_misused(si->settings, g, &st, err)) return st;
    if (st) {
        ct_error_prefix(err, "%s: structure %s: ", sl, e->name);
        return st;
    }
    si->ops = e->ops.structure;
    si->ops->info(si->self, &si->info);
    structure_prefix(ex, k, e->name, si->prefix, sizeof si->prefix);
    return check_info(&si->info, g, sl, e->name, err);
}

/* Why architecture `a` cannot train on structure info `i`, or NULL. */
static const char *pairing_problem(const ct_arch_ops *a, const ct_structure_info *i, bool is_default, char *why,
                                   size_t n) {
    const char *rows = i->row_kind ? i->row_kind : "samples";
    int min_sets = a->min_sets > 0 ? a->min_sets : 1;
    if (!(a->caps & CT_ARCH_USES_SEAM) && !is_default)
        snprintf(why, n, "%s forwards views itself (built against ABI 1.1) and cannot use a structure's embeddings",
                 a->name);
    else if ((a->caps & CT_ARCH_NEEDS_ITEM_ROWS) && ((i->flags & CT_STRUCT_ROWS_NOT_ITEMS) || i->rows_per_sample != 1))
        snprintf(why, n, "rows are %s, not dataset items: %s needs one row per item", rows, a->name);
    else if ((i->flags & CT_STRUCT_NEEDS_BATCH_NEGATIVES) && !(a->caps & CT_ARCH_BATCH_NEGATIVES))
        snprintf(why, n, "needs negatives from the same batch; %s takes them from %s", a->name,
                 (a->caps & CT_ARCH_NEEDS_ITEM_ROWS) ? "a memory bank" : "elsewhere (a queue or prototypes)");
    else if (i->n_sets < min_sets)
        snprintf(why, n, "gives %d embedding set%s per row; %s needs %d (e.g. views = %d)", i->n_sets,
                 i->n_sets == 1 ? "" : "s", a->name, min_sets, min_sets);
    else
        return NULL;
    return why;
}

/* Refuse an architecture that cannot train on a pipeline's structure, with
 * one line naming both plugins and the reason (before any data is read). */
static ct_status check_pairings(const ct_experiment *ex, ct_error *err) {
    if (!ex->arch_ops) return CT_OK;
    for (int k = 0; k < ex->n_pipelines; k++) {
        const ct_pipeline_spec *p = &ex->pipelines[k];
        char why[300];
        if (!pairing_problem(ex->arch_ops, &p->structure.info, p->structure.ops == NULL, why, sizeof why)) continue;
        const config_setting_t *at = config_lookup(&ex->cfg, "architecture");
        return fail(err, CT_ERR_CONFIG, at, "pipelines[%d]: structure %s with architecture %s: %s %s", k,
                    ct_experiment_structure_name(ex, k), ex->arch_ops->name, ct_experiment_structure_name(ex, k),
                    why);
    }
    return CT_OK;
}

/* clips > 1 needs video datasets that can give several clips (the
 * evaluation group's `clips`, or an evaluator's: `key` names it). */
static ct_status check_eval_clips(const ct_dataset *train, const ct_dataset *test, int clips, const ct_settings *s,
                                  const char *key, ct_error *err) {
    const ct_dataset *ds[2] = {train, test};
    for (int i = 0; i < 2; i++) {
        const ct_dataset *d = ds[i];
        if (!d || !d->self) continue;
        const ct_video_clips *vc = d->ops->extension ? d->ops->extension(d->self, CT_VIDEO_CLIPS_EXT) : NULL;
        if (!d->info.is_video || !vc || vc->size < sizeof *vc || !vc->clip)
            return ct_error_set(err, CT_ERR_CONFIG,
                                "%s: %s = %d needs video datasets that give several clips per video, but "
                                "data.%s (source %s) does not",
                                ct_settings_origin(s, "clips"), key, clips, d->name, d->ops->name);
    }
    return CT_OK;
}

/* The keys of an evaluator group that are not the host's: its plugin's
 * parameters, "type" and the chains (NULL-terminated, malloc'd). */
static const char **plugin_keys(const ct_registry_entry *e) {
    const ct_param_spec *ps = ct_registry_entry_params(e);
    size_t n = 0;
    while (ps && ps[n].name) n++;
    const char **keys = malloc((n + 4) * sizeof *keys);
    if (!keys) return NULL;
    for (size_t i = 0; i < n; i++) keys[i] = ps[i].name;
    keys[n] = "type", keys[n + 1] = "transforms", keys[n + 2] = "feature_transforms", keys[n + 3] = NULL;
    return keys;
}

/* An evaluator's data: its own train / test / feature_transforms / clips,
 * else the evaluation group's; its metrics' label. */
static ct_status load_evaluator_data(ct_experiment *ex, const config_setting_t *eg, const ct_registry_entry *e,
                                     const char *label, ct_evaluator *ev, ct_error *err) {
    const char **keys = plugin_keys(e);
    if (!keys) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    ct_settings *s = NULL;
    ct_status st = ct_settings_from_config(ct__evaluator_spec, eg, keys, label, &s, err);
    free(keys);
    ct_eval_data *d = &ev->data;
    *d = (ct_eval_data){ex->eval_train, ex->eval_test, &ex->eval_chain, ex->eval_clips};
    if (!st && *ct_settings_string(s, "train")) st = dataset_ref(ex, s, "train", label, &d->train, err);
    if (!st && *ct_settings_string(s, "test")) st = dataset_ref(ex, s, "test", label, &d->test, err);
    if (!st && ct_settings_int(s, "clips") > 0) {
        ev->own_clips = true;
        d->clips = (int)ct_settings_int(s, "clips");
    }
    char key[96];
    snprintf(key, sizeof key, "%s.clips", label);
    if (!st && ev->own_clips && d->clips > 1) st = check_eval_clips(d->train, d->test, d->clips, s, key, err);
    ct_settings_free(s);
    const config_setting_t *fl = config_setting_get_member(eg, "feature_transforms");
    char chain_label[96];
    snprintf(chain_label, sizeof chain_label, "%s.feature_transforms", label);
    if (!st && fl) {
        ev->has_feature_chain = true;
        st = build_chain(ex, fl, chain_label, &ev->feature_chain, err);
        d->chain = &ev->feature_chain;
    }
    ev->own_data = d->train != ex->eval_train || d->test != ex->eval_test;
    const char *at = d->test != ex->eval_test ? d->test->name : d->train->name;
    snprintf(ev->label, sizeof ev->label, "%s%s%s", e->name, ev->own_data ? "@" : "", ev->own_data ? at : "");
    return st;
}

static ct_status load_evaluation(ct_experiment *ex, ct_error *err) {
    const config_setting_t *g = config_lookup(&ex->cfg, "evaluation");
    if (!g) return CT_OK;
    ct_settings *s = NULL;
    ct_status st = ct_settings_from_config(ct__evaluation_spec, g, ct__evaluation_groups, "evaluation", &s, err);
    if (!st) st = dataset_ref(ex, s, "train", "evaluation", &ex->eval_train, err);
    if (!st) st = dataset_ref(ex, s, "test", "evaluation", &ex->eval_test, err);
    if (!st) ex->eval_every = (int)ct_settings_int(s, "every");
    if (!st) ex->eval_clips = (int)ct_settings_int(s, "clips");
    if (!st) ex->eval_shuffle_frames = ct_settings_bool(s, "shuffle_test_frames");
    if (!st) ex->eval_precise_bn = (int)ct_settings_int(s, "precise_bn_batches");
    if (!st && ex->eval_clips > 1)
        st = check_eval_clips(ex->eval_train, ex->eval_test, ex->eval_clips, s, "evaluation.clips", err);
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
        const config_setting_t *eg = config_setting_get_elem(list, (unsigned)k);
        /* An evaluator group may carry its own augmentation chain
         * (`transforms`, for the evaluators that train on batches). */
        static const char *const evaluator_keys[] = {"type", "transforms", "feature_transforms", "train", "test",
                                                     "clips", NULL};
        st = plugin_settings_with(ex, eg, CT_ROLE_EVALUATOR, label, evaluator_keys, &e, &ev->settings, err);
        if (!st) st = load_evaluator_data(ex, eg, e, label, ev, err);
        if (st) return st;
        const config_setting_t *tl = config_setting_get_member(eg, "transforms");
        char chain_label[80];
        snprintf(chain_label, sizeof chain_label, "%s.transforms", label);
        ev->has_chain = tl != NULL;
        st = build_chain(ex, tl, chain_label, &ev->chain, err);
        if (st) return st;
        ev->ops = e->ops.evaluator;
        st = ev->ops->create(ev->settings, ct_plugins_host_for(ex->plugins, e), &ev->self, err);
        if (st) ev->self = NULL;
        if (settings_misused(ev->settings, eg, &st, err)) return st;
        if (st) {
            ct_error_prefix(err, "%s (evaluator %s): ", label, e->name);
            return st;
        }
    }
    return CT_OK;
}

/* ---- plugins and the top level ------------------------------------------------------- */

static ct_status load_plugins(ct_experiment *ex, const ct_experiment_opts *opts, ct_error *err) {
    ct_settings *s = NULL;
    ct_status st = host_settings(&ex->cfg, "plugins", ct__plugins_spec, &s, err);
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
    lo.no_probe = opts && opts->no_plugin_probe;
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
    ct_status st = ct_settings_from_config(ct__top_spec, config_root_setting(&ex->cfg), ct__top_groups,
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
    for (int k = 0; ct__top_groups[k]; k++) {
        const config_setting_t *g = config_lookup(&ex->cfg, ct__top_groups[k]);
        bool list_ok = !strcmp(ct__top_groups[k], "pipelines");
        if (g && !config_setting_is_group(g) && !(list_ok && config_setting_is_list(g)))
            return fail(err, CT_ERR_CONFIG, g, "%s: must be a %s", ct__top_groups[k],
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
    for (int k = 0; !st && opts && k < opts->n_sets; k++) st = ct__config_apply_override(&ex->cfg, opts->sets[k], err);
    if (!st) st = load_top(ex, err);
    if (!st) st = host_settings(&ex->cfg, "optimizer", ct__optimizer_spec, &ex->optimizer, err);
    if (!st) st = host_settings(&ex->cfg, "schedule", ct__schedule_spec, &ex->schedule, err);
    if (!st) st = host_settings(&ex->cfg, "train", ct__train_spec, &ex->train, err);
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
    if (!st) st = check_pairings(ex, err);
    if (!st) st = load_evaluation(ex, err);
    if (!st) st = ct_experiment_check_inputs(ex, err);
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
        chain_free(&ev->chain);
        chain_free(&ev->feature_chain);
    }
    chain_free(&ex->eval_chain);
    for (int k = 0; k < ex->n_pipelines; k++) {
        ct_structure_inst *si = &ex->pipelines[k].structure;
        if (si->self && si->ops) si->ops->destroy(si->self);
        ct_settings_free(si->settings);
        for (int j = 0; j < ex->pipelines[k].n_groups; j++) chain_free(&ex->pipelines[k].groups[j].chain);
    }
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

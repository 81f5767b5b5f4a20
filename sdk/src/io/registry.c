/* The registry of role implementations: size-prefixed registration
 * (OBS-style copy into a zeroed struct of the SDK's size) and lookups. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/registry.h"

struct ct_registry {
    ct_registry_entry **items;
    size_t n, cap;
    /* Attribution of the current plugin's registrations. */
    char plugin[CT_REGISTRY_TEXT_MAX];
    char file[CT_REGISTRY_TEXT_MAX * 4];
    const ct_host *host;
    int errors;
    char first_error[CT_ERROR_MSG_MAX];
};

const char *ct_role_name(ct_role r) {
    switch (r) {
    case CT_ROLE_SOURCE: return "source";
    case CT_ROLE_PRETEXT: return "pretext";
    case CT_ROLE_ENCODER: return "encoder";
    case CT_ROLE_ARCHITECTURE: return "architecture";
    case CT_ROLE_EVALUATOR: return "evaluator";
    case CT_ROLE_STRUCTURE: return "structure";
    }
    return "unknown";
}

ct_registry *ct_registry_new(void) { return calloc(1, sizeof(ct_registry)); }

void ct_registry_free(ct_registry *r) {
    if (!r) return;
    ct_registry_rollback(r, 0);
    free(r->items);
    free(r);
}

void ct_registry_begin(ct_registry *r, const char *plugin, const char *file, const ct_host *host) {
    snprintf(r->plugin, sizeof r->plugin, "%s", plugin ? plugin : "");
    snprintf(r->file, sizeof r->file, "%s", file ? file : "");
    r->host = host;
    r->errors = 0;
    r->first_error[0] = '\0';
}

int ct_registry_errors(const ct_registry *r, const char **first) {
    if (first) *first = r->first_error;
    return r->errors;
}

size_t ct_registry_count(const ct_registry *r) { return r ? r->n : 0; }

void ct_registry_rollback(ct_registry *r, size_t mark) {
    while (r->n > mark) {
        ct_registry_entry *e = r->items[--r->n];
        free((void *)e->ops.any);
        free(e);
    }
}

const ct_registry_entry *ct_registry_at(const ct_registry *r, size_t i) {
    return (r && i < r->n) ? r->items[i] : NULL;
}

const ct_registry_entry *ct_registry_find(const ct_registry *r, ct_role role, const char *name) {
    if (!r || !name) return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i]->role == role && strcmp(r->items[i]->name, name) == 0) return r->items[i];
    return NULL;
}

const char *ct_registry_suggest(const ct_registry *r, ct_role role, const char *name) {
    if (!r || !name) return NULL;
    const char *best = NULL;
    int best_d = (int)strlen(name) / 3;
    if (best_d < 2) best_d = 2;
    best_d++; /* accept distances up to the threshold */
    for (size_t i = 0; i < r->n; i++) {
        if (r->items[i]->role != role) continue;
        int d = ct_edit_distance(name, r->items[i]->name);
        if (d < best_d) best_d = d, best = r->items[i]->name;
    }
    return best;
}

const ct_param_spec *ct_registry_entry_params(const ct_registry_entry *e) {
    if (!e) return NULL;
    switch (e->role) {
    case CT_ROLE_SOURCE: return e->ops.source->params;
    case CT_ROLE_PRETEXT: return e->ops.pretext->params;
    case CT_ROLE_ENCODER: return e->ops.encoder->params;
    case CT_ROLE_ARCHITECTURE: return e->ops.architecture->params;
    case CT_ROLE_EVALUATOR: return e->ops.evaluator->params;
    case CT_ROLE_STRUCTURE: return e->ops.structure->params;
    }
    return NULL;
}

/* Record a refused registration; returns code for `return refuse(...)`. */
static ct_status refuse(ct_registry *r, ct_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static ct_status refuse(ct_registry *r, ct_status code, const char *fmt, ...) {
    if (r->errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Names are what configs write after `type =`: [a-z0-9_], non-empty. */
static int name_ok(const char *name) {
    if (!name || !*name || strlen(name) >= CT_REGISTRY_TEXT_MAX) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return 0;
    return 1;
}

#define CT__END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define CT__CB(type, field) {offsetof(type, field), #field}
#define CT__MAX_REQUIRED 5

/* What registration knows of one role: its ops struct (this SDK's size,
 * and the minimum: every field up to the last required callback) and the
 * callbacks the host calls without checking for NULL, in checking order.
 * `name` is read from the plugin's struct (the field is at the same offset
 * in every role struct: right after struct_size). */
typedef struct role_desc {
    ct_role role;
    size_t host_size, min_size;
    struct {
        size_t offset;
        const char *what;
    } required[CT__MAX_REQUIRED];
    int n_required;
} role_desc;

static const role_desc source_desc = {
    CT_ROLE_SOURCE, sizeof(ct_source_ops), CT__END_OF(ct_source_ops, get),
    {CT__CB(ct_source_ops, create), CT__CB(ct_source_ops, destroy), CT__CB(ct_source_ops, info),
     CT__CB(ct_source_ops, get)},
    4};
/* A pretext is a transform: the host calls apply() on every item
 * (structures register as their own role). */
static const role_desc pretext_desc = {
    CT_ROLE_PRETEXT, sizeof(ct_pretext_ops), CT__END_OF(ct_pretext_ops, apply),
    {CT__CB(ct_pretext_ops, create), CT__CB(ct_pretext_ops, destroy), CT__CB(ct_pretext_ops, apply)},
    3};
static const role_desc encoder_desc = {
    CT_ROLE_ENCODER, sizeof(ct_encoder_ops), CT__END_OF(ct_encoder_ops, forward),
    {CT__CB(ct_encoder_ops, create), CT__CB(ct_encoder_ops, destroy), CT__CB(ct_encoder_ops, out_dim),
     CT__CB(ct_encoder_ops, forward)},
    4};
static const role_desc arch_desc = {
    CT_ROLE_ARCHITECTURE, sizeof(ct_arch_ops), CT__END_OF(ct_arch_ops, loss),
    {CT__CB(ct_arch_ops, create), CT__CB(ct_arch_ops, destroy), CT__CB(ct_arch_ops, loss)},
    3};
static const role_desc evaluator_desc = {
    CT_ROLE_EVALUATOR, sizeof(ct_evaluator_ops), CT__END_OF(ct_evaluator_ops, run),
    {CT__CB(ct_evaluator_ops, create), CT__CB(ct_evaluator_ops, destroy), CT__CB(ct_evaluator_ops, run)},
    3};

/* A structure's host calls: info at set-up, sample in the workers, embed
 * on the graph (ABI 1.2). */
static const role_desc structure_desc = {
    CT_ROLE_STRUCTURE, sizeof(ct_structure_ops), CT__END_OF(ct_structure_ops, embed),
    {CT__CB(ct_structure_ops, create), CT__CB(ct_structure_ops, destroy), CT__CB(ct_structure_ops, info),
     CT__CB(ct_structure_ops, sample), CT__CB(ct_structure_ops, embed)},
    5};

/* Size checks, name, duplicates, the copy into a zeroed struct of the
 * host's size, then the required callbacks (read from the copy). */
static ct_status register_ops(ct_registry *r, const role_desc *d, const void *ops, size_t size) {
    const char *role_name = ct_role_name(d->role);
    if (!r || !ops) return CT_ERR_INVALID;
    if (size > d->host_size)
        return refuse(r, CT_ERR_ABI,
                      "%s struct is %zu bytes but this host (ABI %d.%d) knows %zu: plugin built "
                      "against a newer SDK",
                      role_name, size, CT_ABI_MAJOR, CT_ABI_MINOR, d->host_size);
    if (size < d->min_size)
        return refuse(r, CT_ERR_ABI, "%s struct is %zu bytes, smaller than the %zu of ABI %d.0",
                      role_name, size, d->min_size, CT_ABI_MAJOR);
    const char *name = *(const char *const *)((const char *)ops + sizeof(size_t));
    if (!name_ok(name))
        return refuse(r, CT_ERR_PLUGIN, "%s implementation has a missing or bad name '%s' (use [a-z0-9_])",
                      role_name, name ? name : "(null)");
    const ct_registry_entry *dup = ct_registry_find(r, d->role, name);
    if (dup)
        return refuse(r, CT_ERR_EXISTS, "duplicate %s '%s': already registered by plugin %s (%s)",
                      role_name, name, dup->plugin[0] ? dup->plugin : "(host)",
                      dup->file[0] ? dup->file : "built in");
    void *copy = calloc(1, d->host_size);
    ct_registry_entry *e = calloc(1, sizeof *e);
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 32;
        ct_registry_entry **items = realloc(r->items, cap * sizeof *items);
        if (items) r->items = items, r->cap = cap;
    }
    if (!copy || !e || r->n == r->cap) {
        free(copy);
        free(e);
        return refuse(r, CT_ERR_NOMEM, "out of memory registering %s '%s'", role_name, name);
    }
    memcpy(copy, ops, size);
    *(size_t *)copy = size; /* struct_size: what the plugin knew */
    for (int k = 0; k < d->n_required; k++) {
        void (*fn)(void);
        memcpy(&fn, (const char *)copy + d->required[k].offset, sizeof fn);
        if (!fn) {
            free(copy);
            free(e);
            if (r->plugin[0])
                return refuse(r, CT_ERR_PLUGIN, "%s '%s' of plugin %s has no %s callback", role_name, name,
                              r->plugin, d->required[k].what);
            return refuse(r, CT_ERR_PLUGIN, "%s '%s' has no %s callback", role_name, name, d->required[k].what);
        }
    }
    e->role = d->role;
    e->name = name;
    e->ops.any = copy;
    e->plugin_size = size;
    e->host = r->host;
    snprintf(e->plugin, sizeof e->plugin, "%s", r->plugin);
    snprintf(e->file, sizeof e->file, "%s", r->file);
    r->items[r->n++] = e;
    return CT_OK;
}

ct_status ct__register_source(ct_registry *r, const ct_source_ops *ops, size_t size) {
    return register_ops(r, &source_desc, ops, size);
}
ct_status ct__register_pretext(ct_registry *r, const ct_pretext_ops *ops, size_t size) {
    return register_ops(r, &pretext_desc, ops, size);
}
ct_status ct__register_encoder(ct_registry *r, const ct_encoder_ops *ops, size_t size) {
    return register_ops(r, &encoder_desc, ops, size);
}
ct_status ct__register_architecture(ct_registry *r, const ct_arch_ops *ops, size_t size) {
    return register_ops(r, &arch_desc, ops, size);
}
ct_status ct__register_evaluator(ct_registry *r, const ct_evaluator_ops *ops, size_t size) {
    return register_ops(r, &evaluator_desc, ops, size);
}
ct_status ct__register_structure(ct_registry *r, const ct_structure_ops *ops, size_t size) {
    return register_ops(r, &structure_desc, ops, size);
}

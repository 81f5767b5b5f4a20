/* contrast SDK — the registry of role implementations (host side).
 *
 * Plugins only see `ct_registry *` and the ct_register_*() macros of
 * plugin.h. The host (and programs embedding libcontrast) create a registry,
 * attribute registrations to a plugin with ct_registry_begin(), hand it to
 * each plugin's init(), and look implementations up by role and name.
 *
 * Each registered struct is copied into a zeroed struct of this SDK's size,
 * so fields a plugin built against an older minor does not know read as
 * zero/NULL ("absent"). A struct larger than this SDK knows is refused. */
#ifndef CONTRAST_REGISTRY_H
#define CONTRAST_REGISTRY_H

#include <stddef.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_REGISTRY_TEXT_MAX 256

/* One registered implementation. `ops` points to the registry's own copy
 * (valid until the registry is freed or rolled back past it). */
typedef struct ct_registry_entry {
    ct_role role;
    const char *name;                   /* == the ops' name */
    char plugin[CT_REGISTRY_TEXT_MAX];  /* owning plugin's name ("" when none) */
    char file[CT_REGISTRY_TEXT_MAX * 4]; /* owning plugin's file ("" when none) */
    const ct_host *host;                /* services table the plugin was given */
    union {
        const void *any;
        const ct_source_ops *source;
        const ct_pretext_ops *pretext;
        const ct_encoder_ops *encoder;
        const ct_arch_ops *architecture;
        const ct_evaluator_ops *evaluator;
        const ct_structure_ops *structure;
    } ops;
    size_t plugin_size; /* struct size the plugin passed */
} ct_registry_entry;

/* A new empty registry; NULL on out-of-memory. */
ct_registry *ct_registry_new(void);

/* Free the registry and every copy it holds. NULL is ignored. */
void ct_registry_free(ct_registry *r);

/* Attribute the following registrations to plugin `plugin` from `file`
 * whose init receives `host` (stored as a pointer, must outlive the
 * registry). Also clears the registration error counter. Any may be NULL. */
void ct_registry_begin(ct_registry *r, const char *plugin, const char *file, const ct_host *host);

/* Registrations refused since the last ct_registry_begin(); *first (may be
 * NULL) receives the first refusal's message (owned by the registry). */
int ct_registry_errors(const ct_registry *r, const char **first);

/* Number of entries, and a mark to undo later registrations: the loader
 * rolls back a plugin whose init failed, so none of its parts stay. */
size_t ct_registry_count(const ct_registry *r);
void ct_registry_rollback(ct_registry *r, size_t mark);

/* Entry i (registration order), NULL when out of range. */
const ct_registry_entry *ct_registry_at(const ct_registry *r, size_t i);

/* The implementation `name` of `role`, NULL when absent. */
const ct_registry_entry *ct_registry_find(const ct_registry *r, ct_role role, const char *name);

/* The registered name of `role` closest to `name` (for "did you mean"),
 * NULL when nothing is reasonably close. Owned by the registry. */
const char *ct_registry_suggest(const ct_registry *r, ct_role role, const char *name);

/* The parameter schema of an entry (NULL-safe: NULL gives NULL). */
const ct_param_spec *ct_registry_entry_params(const ct_registry_entry *e);

#ifdef __cplusplus
}
#endif
#endif

/* The plugin loader: discovery over the search path, validation of each
 * file's descriptor, and registration of its role implementations.
 *
 * Search path, in priority order (an earlier directory wins a name clash;
 * the later plugin is refused as a duplicate):
 *   1. the config's `plugins.path` (relative entries are relative to the
 *      config file's folder),
 *   2. CONTRAST_PLUGIN_PATH (colon-separated),
 *   3. the installed plugin directory (found relative to the installed
 *      program, CONTRAST_PLUGIN_INSTALL_REL, else CONTRAST_PLUGIN_INSTALL_DIR),
 *      or, for the uninstalled program living in its build tree, that
 *      build's plugin folder instead (never both, so a build never picks
 *      up an older installed copy).
 * The current directory is never searched implicitly. In a directory the
 * `*.so` files are taken in name order.
 *
 * Crash isolation: before a plugin is loaded into the host, it is probed in
 * a forked child that does the whole load (dlopen, descriptor checks,
 * init). A plugin that crashes (SIGSEGV...) or hangs there is refused with
 * the signal named, and never loaded into the host process. The cost is one
 * fork per plugin file at start-up (about a millisecond each).
 *
 * Safety: a plugin file, or the directory holding it, that is writable by
 * group or others is refused unless allow_unsafe is set. A file is judged
 * by its real path (a symlink is followed to its target): the target, its
 * folder and every folder above (there, sticky ones such as /tmp pass). */
#ifndef CONTRAST_HOST_LOADER_H
#define CONTRAST_HOST_LOADER_H

#include <stdbool.h>

#include "contrast/contrast.h"
#include "contrast/registry.h"

#define CT_PATH_MAX 1024

/* One plugin file found on the search path. */
typedef struct ct_plugin_record {
    char path[CT_PATH_MAX];
    char name[64];       /* descriptor name ("" when the file was not a plugin) */
    char version[32];
    char license[32];
    char description[160];
    uint32_t abi_major, abi_minor;
    uint32_t roles;
    bool loaded;         /* accepted and initialised */
    ct_status status;    /* why it was refused (CT_OK when loaded) */
    char reason[CT_ERROR_MSG_MAX]; /* "file: reason" when refused */
    void *handle;        /* dlopen handle while loaded */
    const ct_plugin_desc *desc;
    ct_host host;        /* this plugin's copy of the services table */
} ct_plugin_record;

/* Everything the loader found. */
typedef struct ct_plugin_set {
    ct_registry *reg;
    int n;
    ct_plugin_record **items; /* every file considered, in load order */
    int n_dirs;
    char **dirs;              /* the search path actually used */
} ct_plugin_set;

typedef struct ct_loader_opts {
    const char *const *paths;  /* extra directories first (config plugins.path) */
    int n_paths;
    bool allow_unsafe;         /* accept group/other-writable files and dirs */
    bool no_env;               /* ignore CONTRAST_PLUGIN_PATH */
    bool no_default_dirs;      /* skip the install and build directories */
    bool no_probe;             /* load in-process without the forked probe */
    const ct_host *host;       /* services template (NULL: ct_host_defaults) */
} ct_loader_opts;

/* Scan the search path and load every valid plugin. One bad plugin never
 * stops the others: each refusal is recorded in its ct_plugin_record.
 * Returns an error only when the scan itself cannot run (out of memory).
 * Free with ct_plugins_free(). */
ct_status ct_plugins_load(const ct_loader_opts *opts, ct_plugin_set **out, ct_error *err);

/* Call every plugin's fini, dlclose, free. NULL is ignored. */
void ct_plugins_free(ct_plugin_set *set);

/* Number of refused plugin files. */
int ct_plugins_refused(const ct_plugin_set *set);

/* Update every plugin's services table from `host` (seed, pool, threads),
 * keeping each plugin's own context. */
void ct_plugins_set_host(ct_plugin_set *set, const ct_host *host);

/* Find a role implementation; NULL when absent. */
const ct_registry_entry *ct_plugins_find(const ct_plugin_set *set, ct_role role, const char *name);

/* The services table to pass to an implementation's create(): its plugin's
 * own copy (falls back to the defaults for entries without a plugin). */
const ct_host *ct_plugins_host_for(const ct_plugin_set *set, const ct_registry_entry *e);

/* ---- host services (host_services.c) ------------------------------------- */

/* Fill a services table: logging to stderr prefixed with the plugin name
 * (DEBUG only with CONTRAST_DEBUG set), malloc-family allocation, settings
 * accessors, RNG; seed 0, no pool, 1 thread. */
void ct_host_defaults(ct_host *h);

/* Name of the plugin a services table belongs to ("host" when none). */
const char *ct_host_owner(const ct_host *h);

/* Where ct_host.metric() lines go: sink(ctx, plugin name, metric name,
 * value), called under a lock; NULL drops them (the default). */
typedef void (*ct_metric_sink)(void *ctx, const char *owner, const char *name, double value);
void ct_host_set_metric_sink(ct_metric_sink sink, void *ctx);

#endif

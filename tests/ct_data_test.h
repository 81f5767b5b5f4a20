/* Helpers for the data-pipeline tests (test_transforms, test_pipeline,
 * test_cifar, test_imagefolder): load a plugin file directly through its
 * entry symbol into an SDK registry (independent of the host loader) and
 * create role instances from libconfig text. Header-only (static). */
#ifndef CT_DATA_TEST_H
#define CT_DATA_TEST_H

#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/contrast.h"
#include "contrast/registry.h"
#include "config/experiment.h"
#include "plugins/loader.h"

/* Open <dir>/<name>.so for the first dir of CONTRAST_PLUGIN_PATH holding it
 * (falling back to $CT_BUILD_DIR/plugins) and register it into reg. */
static inline void dt_load_plugin(ct_registry *reg, const char *name) {
    static ct_host host;
    ct_host_defaults(&host);
    const char *env = getenv("CONTRAST_PLUGIN_PATH");
    char dirs[4096], path[4600];
    const char *bd = getenv("CT_BUILD_DIR");
    snprintf(dirs, sizeof dirs, "%s:%s/plugins", env ? env : "", bd ? bd : "build");
    void *h = NULL;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !h; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/%s.so", d, name);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    ck_assert_msg(h != NULL, "plugin %s not found on CONTRAST_PLUGIN_PATH: %s", name, dlerror());
    ct_plugin_entry_fn entry = (ct_plugin_entry_fn)(uintptr_t)dlsym(h, CT_PLUGIN_ENTRY_SYMBOL);
    ck_assert_msg(entry != NULL, "%s: no entry symbol", path);
    const ct_plugin_desc *desc = entry();
    ct_registry_begin(reg, desc->name, path, &host);
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(desc->init(reg, &host, &err) == CT_OK, "init %s: %s", name, err.msg);
}

static inline const ct_host *dt_host(void) {
    static ct_host host;
    ct_host_defaults(&host);
    return &host;
}

/* A transform instance from its registered name and settings text. */
static inline ct_status dt_transform(ct_registry *reg, const char *name, const char *text, ct_transform *t,
                              ct_error *err) {
    const ct_registry_entry *e = ct_registry_find(reg, CT_ROLE_PRETEXT, name);
    ck_assert_msg(e != NULL, "no pretext %s", name);
    memset(t, 0, sizeof *t);
    t->ops = e->ops.pretext;
    ct_status st = ct_settings_parse(t->ops->params, text, name, &t->settings, err);
    if (st != CT_OK) return st;
    st = t->ops->create(t->settings, dt_host(), &t->self, err);
    if (st != CT_OK) {
        ct_settings_free(t->settings);
        t->settings = NULL;
    }
    return st;
}

static inline void dt_transform_free(ct_transform *t) {
    if (t->self) t->ops->destroy(t->self);
    ct_settings_free(t->settings);
    memset(t, 0, sizeof *t);
}

/* A source instance as a dataset (opened, info filled). */
static inline ct_status dt_dataset(ct_registry *reg, const char *type, const char *text, ct_dataset *d,
                            ct_error *err) {
    const ct_registry_entry *e = ct_registry_find(reg, CT_ROLE_SOURCE, type);
    ck_assert_msg(e != NULL, "no source %s", type);
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", type);
    d->ops = e->ops.source;
    ct_status st = ct_settings_parse(d->ops->params, text, type, &d->settings, err);
    if (st != CT_OK) return st;
    st = d->ops->create(d->settings, dt_host(), &d->self, err);
    if (st != CT_OK) {
        ct_settings_free(d->settings);
        memset(d, 0, sizeof *d);
        return st;
    }
    d->ops->info(d->self, &d->info);
    return CT_OK;
}

static inline void dt_dataset_free(ct_dataset *d) {
    if (d->self) d->ops->destroy(d->self);
    ct_settings_free(d->settings);
    memset(d, 0, sizeof *d);
}

#endif

/* Shared helpers of the libFuzzer harnesses (header-only, static): a
 * scratch folder per process, writing an input to a file there, loading
 * one plugin of the fuzz build once, and driving a source instance the way
 * the host does (create, info, get of a few items, destroy).
 *
 * A harness bug (a plugin not found, settings text that does not parse)
 * aborts with a message: the fuzzer reports it at once instead of running
 * a harness that tests nothing. */
#ifndef CT_FUZZ_UTIL_H
#define CT_FUZZ_UTIL_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contrast/contrast.h"
#include "contrast/registry.h"
#include "plugins/loader.h"

#ifndef CT_FUZZ_PLUGIN_DIR
#error "CT_FUZZ_PLUGIN_DIR (the fuzz build's plugin folder) must be defined"
#endif

static inline void fz_die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz harness: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* The process's scratch folder (made once, under TMPDIR or /tmp). */
static inline const char *fz_dir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/ct_fuzz_XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) fz_die("mkdtemp", dir);
    }
    return dir;
}

/* Write n bytes to <scratch>/<name>, replacing it; its path (static per
 * name slot: at most 4 live paths). */
static inline const char *fz_write(const char *name, const void *data, size_t n) {
    static char paths[4][700];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", fz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f) fz_die("cannot write", p);
    if (n && fwrite(data, 1, n, f) != n) fz_die("short write", p);
    if (fclose(f) != 0) fz_die("cannot close", p);
    return p;
}

static void fz_quiet_log(const ct_host *h, ct_log_level level, const char *fmt, ...) {
    (void)h, (void)level, (void)fmt;
}

/* The host services a plugin is given, with a silent log (a fuzzer makes
 * millions of bad inputs; warnings about them are expected). */
static inline const ct_host *fz_host(void) {
    static ct_host host;
    static int done;
    if (!done) {
        ct_host_defaults(&host);
        host.log = fz_quiet_log;
        done = 1;
    }
    return &host;
}

/* Load <plugin dir>/<name>.so into a new registry, once per process (the
 * handle stays open, so its coverage counters stay registered). */
static inline ct_registry *fz_plugin(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.so", CT_FUZZ_PLUGIN_DIR, name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) fz_die("dlopen", dlerror());
    ct_plugin_entry_fn entry = (ct_plugin_entry_fn)(uintptr_t)dlsym(h, CT_PLUGIN_ENTRY_SYMBOL);
    if (!entry) fz_die("no entry symbol", path);
    const ct_plugin_desc *desc = entry();
    static ct_registry *regs[8]; /* reachable for the process's life (no leak report) */
    static int n_regs;
    if (n_regs == 8) fz_die("too many plugins", name);
    ct_registry *reg = regs[n_regs++] = ct_registry_new();
    if (!reg) fz_die("out of memory", name);
    ct_registry_begin(reg, desc->name, path, fz_host());
    ct_error err = CT_ERROR_INIT;
    if (desc->init(reg, fz_host(), &err) != CT_OK) fz_die("plugin init", err.msg);
    return reg;
}

/* The source `name` of a registry made by fz_plugin. */
static inline const ct_source_ops *fz_source(const ct_registry *reg, const char *name) {
    const ct_registry_entry *e = ct_registry_find(reg, CT_ROLE_SOURCE, name);
    if (!e) fz_die("no such source", name);
    return e->ops.source;
}

/* Create a source from settings text as the host does; when it opens, read
 * its info and its first, middle and last items (pixels must be finite and
 * in [0, 1], the shape what info says when it gives one), then destroy it.
 * An error from create or get is an expected outcome, not a finding
 * (CT_FUZZ_VERBOSE=1 prints create's, to see what a corpus reaches). */
static inline void fz_run_source(const ct_source_ops *ops, const char *text) {
    ct_settings *s = NULL;
    ct_error err = CT_ERROR_INIT;
    if (ct_settings_parse(ops->params, text, ops->name, &s, &err) != CT_OK) fz_die("settings", err.msg);
    void *self = NULL;
    if (ops->create(s, fz_host(), &self, &err) == CT_OK) {
        ct_source_info info;
        ops->info(self, &info);
        if (info.count <= 0) fz_die("a source opened with no items", info.summary);
        int64_t pick[3] = {0, info.count / 2, info.count - 1};
        ct_image img = CT_IMAGE_INIT;
        for (int k = 0; k < 3; k++) {
            int32_t label = 0;
            ct_error_clear(&err);
            if (ops->get(self, pick[k], &img, &label, &err) != CT_OK) continue;
            if (info.height && (img.h != info.height || img.w != info.width || img.c != info.channels))
                fz_die("item shape differs from info", info.summary);
            if (info.has_labels && (label < 0 || (info.num_classes && label >= info.num_classes)))
                fz_die("label out of range", info.summary);
            size_t n = ct_image_numel(&img);
            for (size_t i = 0; i < n; i++)
                if (!(img.data[i] >= 0.0f && img.data[i] <= 1.0f)) fz_die("pixel outside [0, 1]", info.summary);
        }
        ct_image_free(&img);
        ops->destroy(self);
    } else if (getenv("CT_FUZZ_VERBOSE")) {
        fprintf(stderr, "%s: %s\n", ops->name, err.msg);
    }
    ct_settings_free(s);
}

#endif

/* libFuzzer harness: the config loader and validator (host/config):
 * libconfig parsing, the host groups' schemas, plugin settings validation
 * and every plugin instance's creation (sources opened), as `contrast
 * check` does; then the resolved config is written and must load again.
 *
 * Input: the text of a config file. The working folder is a sandbox made
 * at build time by fuzz_seeds (tiny Fashion-MNIST idx files named as in
 * configs/, an image folder `imgs`, a CIFAR batch `batch.bin`); inputs
 * holding '/', ".." or "@include" are skipped, so a config can only name
 * files in the sandbox (not the whole disk, not /dev/zero). */
#include <dirent.h>

#include "config/experiment.h"

#include "fuzz_util.h"

#ifndef CT_FUZZ_SANDBOX
#error "CT_FUZZ_SANDBOX (the folder fuzz_seeds fills) must be defined"
#endif

/* Keep every plugin of the folder loaded for the whole run: the loader's
 * dlopen/dlclose per input then only counts references, and the plugins'
 * coverage counters stay registered. */
static void pin_plugins(void) {
    DIR *d = opendir(CT_FUZZ_PLUGIN_DIR);
    if (!d) fz_die("cannot open the plugin folder", CT_FUZZ_PLUGIN_DIR);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".so") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", CT_FUZZ_PLUGIN_DIR, e->d_name);
        if (!dlopen(path, RTLD_NOW | RTLD_LOCAL)) fz_die("dlopen", dlerror());
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_dir(); /* made before the chdir, so TMPDIR relative or not, it is absolute */
    if (chdir(CT_FUZZ_SANDBOX) != 0) fz_die("chdir (run fuzz_seeds first)", CT_FUZZ_SANDBOX);
    setenv("CONTRAST_PLUGIN_PATH", CT_FUZZ_PLUGIN_DIR, 1);
    pin_plugins();
    return 0;
}

static bool contains(const uint8_t *d, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(d + i, s, k) == 0) return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memchr(data, '/', size) || contains(data, size, "..") || contains(data, size, "@include")) return 0;
    const char *path = fz_write("in.cfg", data, size);
    ct_experiment_opts opts = {0};
    opts.no_plugin_probe = true;
    ct_experiment ex;
    ct_error err = CT_ERROR_INIT;
    if (ct_experiment_load(&ex, path, &opts, &err) != CT_OK) return 0;
    char resolved[700];
    snprintf(resolved, sizeof resolved, "%s/resolved.cfg", fz_dir());
    ct_status st = ct_experiment_write_resolved(&ex, resolved, &err);
    ct_experiment_free(&ex);
    if (st != CT_OK) fz_die("a loaded config cannot be written resolved", err.msg);
    if (ct_experiment_load(&ex, resolved, &opts, &err) != CT_OK) fz_die("the resolved config does not load", err.msg);
    ct_experiment_free(&ex);
    return 0;
}

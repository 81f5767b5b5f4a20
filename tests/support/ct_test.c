/* Shared helpers for the Check test programs. */
#include "ct_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

const char *ct_test_source_dir(void) {
    const char *s = getenv("CT_SOURCE_DIR");
    return s ? s : ".";
}

const char *ct_test_build_dir(void) {
    const char *s = getenv("CT_BUILD_DIR");
    return s ? s : "build";
}

const char *ct_test_tmpdir(void) {
    static char path[256];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/ct_test_XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(path)) return NULL;
    return path;
}

int ct_test_run(const char *cmd, char *out, size_t n) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t used = 0;
    if (out && n) out[0] = '\0';
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && used + 1 < n) {
            size_t take = got < n - 1 - used ? got : n - 1 - used;
            memcpy(out + used, buf, take);
            used += take;
            out[used] = '\0';
        }
    }
    int st = pclose(p);
    if (st == -1) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

int ct_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    int rc = fclose(f);
    return (w == len && rc == 0) ? 0 : -1;
}

int ct_test_step_losses(const char *run_dir, double *loss, int max) {
    char path[1024], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *l = strstr(line, "\"loss\": ");
        if (strstr(line, "\"type\": \"step\"") && l) loss[n++] = atof(l + 8);
    }
    fclose(f);
    return n;
}

#if defined(__SANITIZE_ADDRESS__)
#define CT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CT_TEST_ASAN 1
#endif
#endif

bool ct_test_limit_memory(size_t bytes) {
#ifdef CT_TEST_ASAN
    (void)bytes;
    return false;
#else
    struct rlimit r = {bytes, bytes};
    return setrlimit(RLIMIT_AS, &r) == 0;
#endif
}

static ct_engine_opts ct__test_engine;
static ct_error ct__test_engine_err;
static bool ct__test_engine_read;

const ct_engine_opts *ct_test_engine(void) {
    if (!ct__test_engine_read) {
        ct__test_engine_read = true;
        ct_engine_opts_init(&ct__test_engine);
        memset(&ct__test_engine_err, 0, sizeof ct__test_engine_err);
        ct_engine_opts_from_env(&ct__test_engine, &ct__test_engine_err);
    }
    return &ct__test_engine;
}

ct_graph *ct_test_graph_new(void) {
    ct_graph *g = ct_graph_new(0);
    if (g) ct_graph_set_engine(g, ct_test_engine());
    return g;
}

/* Whether CT_SIMD names a level (well formed) that is not available here. */
static bool ct__simd_missing(void) {
    const char *v = getenv("CT_SIMD");
    for (int l = CT_SIMD_GENERIC; v && l <= CT_SIMD_AVX512; l++)
        if (strcmp(v, ct_simd_name((ct_simd_level)l)) == 0) return !ct_simd_available((ct_simd_level)l);
    return false;
}

int ct_test_main(Suite *s) {
    /* Read before the forks, so every test sees the same options. */
    ct_test_engine();
    if (ct__test_engine_err.code != CT_OK) {
        bool skip = ct__simd_missing();
        fprintf(stderr, "%s: %s\n", skip ? "skipped" : "error", ct__test_engine_err.msg);
        srunner_free(srunner_create(s)); /* frees the suite */
        return skip ? 77 : EXIT_FAILURE;
    }
    printf("kernels: %s\n", ct_simd_name(ct_engine_simd(ct_test_engine())));
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

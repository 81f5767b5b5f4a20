/* `contrast make-dataset moving-fmnist|multiview-fmnist OUT [options]`:
 * render a labelled video set (data/moving_fmnist.h) or a multi-camera
 * sequence set (data/multiview_fmnist.h) and encode it with libavcodec. A
 * folder already made with the same parameters is reused, so demos and
 * benchmarks can call this every time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "data/moving_fmnist.h"
#include "data/multiview_fmnist.h"

#define MAKE_DATASET_USAGE                                                                              \
    "make-dataset moving-fmnist OUT [--videos N] [--test-videos N] [--frames T] [--size S] [--pool P]\n" \
    "       [--fps F] [--speed PX] [--distractor P] [--codec mpeg4|h264|vp9|ffv1] [--seed K] [--fmnist DIR]\n" \
    "       make-dataset multiview-fmnist OUT [--sequences N] [--test-sequences N] [--views V] [--frames T]\n" \
    "       [--size S] [--pool P] [--fps F] [--codec C] [--seed K] [--fmnist DIR]"

static bool parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

static bool parse_f64(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

/* A numeric option of one dataset's parameters. */
typedef struct num_opt {
    const char *name;
    int64_t *i64;
    int *i32;
    double *f64;
} num_opt;

/* The options every set has. */
typedef struct common_opts {
    uint64_t *seed;
    char *codec;
    size_t codec_n;
    char *fmnist;
    size_t fmnist_n;
} common_opts;

/* One "--name value" option; 0 fine, 2 after printing the reason. */
static int apply_option(const num_opt *opts, size_t n_opts, const common_opts *c, const char *name, const char *val) {
    int64_t i = 0;
    double f = 0.0;
    bool is_int = parse_i64(val, &i), is_num = parse_f64(val, &f);
    for (size_t k = 0; k < n_opts; k++) {
        if (strcmp(name, opts[k].name) != 0) continue;
        if (opts[k].f64 ? !is_num : (!is_int || i < -2147483647 || (opts[k].i32 && i > 2147483647)))
            return ct_cli_error("make-dataset: %s '%s' is not a%s number", name, val, opts[k].f64 ? "" : "n integer"), 2;
        if (opts[k].i64) *opts[k].i64 = i;
        else if (opts[k].i32) *opts[k].i32 = (int)i;
        else *opts[k].f64 = f;
        return 0;
    }
    if (strcmp(name, "--seed") == 0) {
        if (!is_int || i < 0) return ct_cli_error("make-dataset: --seed '%s' is not a non-negative integer", val), 2;
        *c->seed = (uint64_t)i;
    } else if (strcmp(name, "--codec") == 0) {
        if (strlen(val) >= c->codec_n) return ct_cli_error("make-dataset: --codec '%s' is unknown", val), 2;
        snprintf(c->codec, c->codec_n, "%s", val);
    } else if (strcmp(name, "--fmnist") == 0) {
        if (strlen(val) >= c->fmnist_n) return ct_cli_error("make-dataset: --fmnist: path too long"), 2;
        snprintf(c->fmnist, c->fmnist_n, "%s", val);
    } else {
        return ct_cli_error("make-dataset: unknown option '%s' (usage: contrast %s)", name, MAKE_DATASET_USAGE), 2;
    }
    return 0;
}

/* "--name value" pairs from argv[3] on. */
static int apply_options(int argc, char **argv, const num_opt *opts, size_t n_opts, const common_opts *c) {
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) return ct_cli_error("make-dataset: option '%s' needs a value", argv[i]), 2;
        int rc = apply_option(opts, n_opts, c, argv[i], argv[i + 1]);
        if (rc) return rc;
    }
    return 0;
}

static int make_moving(int argc, char **argv) {
    ct_mfm_params p;
    ct_mfm_defaults(&p);
    const num_opt opts[] = {
        {"--videos", &p.videos, NULL, NULL},   {"--test-videos", &p.test_videos, NULL, NULL},
        {"--frames", NULL, &p.frames, NULL},   {"--size", NULL, &p.size, NULL},
        {"--pool", NULL, &p.pool, NULL},       {"--fps", NULL, &p.fps, NULL},
        {"--speed", NULL, NULL, &p.speed},     {"--distractor", NULL, NULL, &p.distractor},
    };
    const common_opts c = {&p.seed, p.codec, sizeof p.codec, p.fmnist_dir, sizeof p.fmnist_dir};
    int rc = apply_options(argc, argv, opts, sizeof opts / sizeof opts[0], &c);
    if (rc) return rc;
    ct_error err = CT_ERROR_INIT;
    bool reused = false;
    ct_status st = ct_mfm_make(argv[2], &p, true, &reused, &err);
    if (st != CT_OK) return ct_cli_error("make-dataset: %s", err.msg[0] ? err.msg : ct_status_str(st));
    printf("%s: %s moving-fmnist, %lld train + %lld test videos of %d frames, %dx%d, %s\n", argv[2],
           reused ? "reusing" : "made", (long long)p.videos, (long long)p.test_videos, p.frames, p.size, p.size,
           p.codec);
    return 0;
}

static int make_multiview(int argc, char **argv) {
    ct_mvf_params p;
    ct_mvf_defaults(&p);
    const num_opt opts[] = {
        {"--sequences", &p.sequences, NULL, NULL}, {"--test-sequences", &p.test_sequences, NULL, NULL},
        {"--views", NULL, &p.views, NULL},         {"--frames", NULL, &p.frames, NULL},
        {"--size", NULL, &p.size, NULL},           {"--pool", NULL, &p.pool, NULL},
        {"--fps", NULL, &p.fps, NULL},
    };
    const common_opts c = {&p.seed, p.codec, sizeof p.codec, p.fmnist_dir, sizeof p.fmnist_dir};
    int rc = apply_options(argc, argv, opts, sizeof opts / sizeof opts[0], &c);
    if (rc) return rc;
    ct_error err = CT_ERROR_INIT;
    bool reused = false;
    ct_status st = ct_mvf_make(argv[2], &p, true, &reused, &err);
    if (st != CT_OK) return ct_cli_error("make-dataset: %s", err.msg[0] ? err.msg : ct_status_str(st));
    printf("%s: %s multiview-fmnist, %lld train + %lld test sequences of %d frames x %d cameras, %dx%d, %s\n",
           argv[2], reused ? "reusing" : "made", (long long)p.sequences, (long long)p.test_sequences, p.frames,
           p.views, p.size, p.size, p.codec);
    return 0;
}

int ct_cmd_make_dataset(int argc, char **argv) {
    bool moving = argc >= 2 && strcmp(argv[1], "moving-fmnist") == 0;
    bool multi = argc >= 2 && strcmp(argv[1], "multiview-fmnist") == 0;
    if (argc < 3 || !(moving || multi))
        return ct_cli_error("make-dataset: %s%s (usage: contrast %s)",
                            argc < 2 ? "which dataset? " : (moving || multi) ? "no output folder for " : "unknown dataset ",
                            argc < 2 ? "" : argv[1], MAKE_DATASET_USAGE),
               2;
    return moving ? make_moving(argc, argv) : make_multiview(argc, argv);
}

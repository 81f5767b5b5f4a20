/* The clip_pair structure (CVRL, issue 13): the start-gap distributions
 * (through the plugin's "clip_pair.starts" extension), and training on a
 * moving Fashion-MNIST set made on the fly with every architecture
 * through build/contrast, the clips decoded by the video source. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "plugins/loader.h"

#define OUT_MAX (1 << 16)

typedef void (*starts_fn)(void *self, ct_rng *r, int64_t m, int64_t start[2]);

/* A clip_pair instance with `gap`, and its test hook. */
static void *make_clip_pair(ct_plugin_set **set, const ct_structure_ops **ops, const char *gap, starts_fn *fn) {
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&lo, set, &err), CT_OK);
    const ct_registry_entry *e = ct_plugins_find(*set, CT_ROLE_STRUCTURE, "clip_pair");
    ck_assert_msg(e != NULL, "no clip_pair plugin");
    *ops = e->ops.structure;
    char text[128];
    snprintf(text, sizeof text, "gap = \"%s\";", gap);
    ct_settings *s = NULL;
    ck_assert_msg(ct_settings_parse((*ops)->params, text, "clip_pair", &s, &err) == CT_OK, "%s", err.msg);
    int views[1] = {2};
    ct_structure_env env = {sizeof env, NULL, 1, views, 1, 32, 32, 0};
    void *self = NULL;
    ck_assert_msg((*ops)->create(s, &env, &self, &err) == CT_OK, "%s", err.msg);
    ct_settings_free(s);
    const starts_fn *p = (*ops)->extension(self, "clip_pair.starts");
    ck_assert_ptr_nonnull(p);
    *fn = *p;
    return self;
}

/* Mean gap and share of pairs whose first clip starts later, over many
 * draws with M usable starts; every start in range. */
static void gap_stats(const char *gap, int64_t m, double *mean, double *later) {
    ct_plugin_set *set;
    const ct_structure_ops *ops;
    starts_fn fn;
    void *self = make_clip_pair(&set, &ops, gap, &fn);
    ct_rng r;
    ct_rng_init(&r, 7, 0);
    const int n = 40000;
    double sum = 0;
    int swapped = 0;
    for (int i = 0; i < n; i++) {
        int64_t s[2];
        fn(self, &r, m, s);
        ck_assert_msg(s[0] >= 0 && s[0] < m && s[1] >= 0 && s[1] < m, "%s: starts %lld %lld outside 0..%lld", gap,
                      (long long)s[0], (long long)s[1], (long long)m - 1);
        sum += (double)llabs(s[1] - s[0]);
        swapped += s[0] > s[1];
    }
    *mean = sum / n;
    *later = (double)swapped / n;
    ops->destroy(self);
    ct_plugins_free(set);
}

START_TEST(gap_distributions) {
    double mean, later;
    /* CVRL's decreasing density 2(1 - g/M)/M: mean M/3. */
    gap_stats("decreasing", 90, &mean, &later);
    ck_assert_msg(fabs(mean - 29.7) < 0.8, "decreasing: mean gap %.2f, want about 29.7 (M/3 - 1/2)", mean);
    ck_assert_msg(fabs(later - 0.5) < 0.02, "decreasing: %.3f of pairs swapped", later);
    /* Uniform gap over 0..M-1: mean (M-1)/2. */
    gap_stats("uniform", 90, &mean, &later);
    ck_assert_msg(fabs(mean - 44.5) < 0.8, "uniform: mean gap %.2f, want about 44.5", mean);
    gap_stats("zero", 90, &mean, &later);
    ck_assert_msg(mean == 0.0, "zero: mean gap %.2f", mean);
    /* One usable start: both clips there. */
    gap_stats("decreasing", 1, &mean, &later);
    ck_assert_msg(mean == 0.0, "M = 1: mean gap %.2f", mean);
}
END_TEST

static char g_dir[512];

static void make_videos(void) {
    static char out[OUT_MAX];
    char cmd[2048];
    snprintf(g_dir, sizeof g_dir, "%s", ct_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "%s/contrast make-dataset moving-fmnist %s/mfm --videos 8 --test-videos 4 --pool 10 --size 32 --frames 12 "
             "--codec ffv1 --seed 1",
             ct_test_build_dir(), g_dir);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 0, "%s", out);
}

/* A CVRL config over the made set with architecture `arch`. */
static void write_config(const char *path, const char *arch, const char *gap) {
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "name = \"cvrl_test\";\n"
             "data = {\n"
             "  train = { type = \"video\"; root = \"%s/mfm/train\"; size = [32]; channels = 1; frames = 4;\n"
             "            index_dir = \"%s/index\"; };\n"
             "  test = { type = \"video\"; root = \"%s/mfm/test\"; size = [32]; channels = 1; frames = 4;\n"
             "           index_dir = \"%s/index\"; };\n"
             "};\n"
             "encoder = { type = \"clip_resnet\"; in_channels = 1; stem = \"small\"; stem_width = 8; blocks = [1, 1];\n"
             "            widths = [8, 16]; };\n"
             "pipelines = ( { data = \"train\"; views = 2;\n"
             "  transforms = ( { type = \"random_resized_crop\"; size = [28]; scale = [0.5, 1.0]; } );\n"
             "  structure = { type = \"clip_pair\"; frames = 4; stride = 2; gap = \"%s\"; }; } );\n"
             "architecture = %s;\n"
             "optimizer = { type = \"adamw\"; lr = 0.001; };\n"
             "train = { epochs = 2; batch_size = 4; threads = 1; log_every = 1; keep = 0; };\n",
             g_dir, g_dir, g_dir, g_dir, gap, arch);
    ck_assert_int_eq(ct_test_write_file(path, cfg, strlen(cfg)), 0);
}

/* 4 steps with each architecture: finite losses, a checkpoint. */
START_TEST(trains_with_every_architecture) {
    static const char *const archs[] = {
        "{ type = \"end_to_end\"; }",
        "{ type = \"memory_bank\"; negatives = 4; }",
        "{ type = \"momentum\"; queue_size = 8; shuffle_splits = 2; }",
        "{ type = \"clustering\"; prototypes = 4; }",
    };
    static const char *const gaps[] = {"decreasing", "uniform", "zero", "decreasing"};
    make_videos();
    static char out[OUT_MAX];
    for (int k = 0; k < 4; k++) {
        char cfg[700], cmd[2048], run[700];
        snprintf(cfg, sizeof cfg, "%s/cvrl%d.cfg", g_dir, k);
        snprintf(run, sizeof run, "%s/run%d", g_dir, k);
        write_config(cfg, archs[k], gaps[k]);
        snprintf(cmd, sizeof cmd, "%s/contrast train %s --run-dir %s", ct_test_build_dir(), cfg, run);
        int rc = ct_test_run(cmd, out, sizeof out);
        ck_assert_msg(rc == 0 && strstr(out, "trained 4 steps"), "%s: exit %d\n%s", archs[k], rc, out);
        ck_assert_msg(!strstr(out, "nan") && !strstr(out, "inf "), "%s: %s", archs[k], out);
    }
}
END_TEST

/* An image source has no frames to read: the first batch fails naming it. */
START_TEST(image_source_refused) {
    static char out[OUT_MAX];
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s/contrast train %s/configs/simclr_fmnist.cfg --set data.train.limit=64 --set train.batch_size=16 "
             "--set train.max_steps=1 --set 'evaluation.evaluators=()' --set 'pipelines.[0].structure={ type = "
             "\"clip_pair\"; }' --run-dir %s/img",
             ct_test_build_dir(), ct_test_source_dir(), ct_test_tmpdir());
    ck_assert_int_ne(ct_test_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "clip_pair: the source has no frames to read"), "%s", out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("clip_pair");
    TCase *tc = tcase_create("cvrl");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, gap_distributions);
    tcase_add_test(tc, trains_with_every_architecture);
    tcase_add_test(tc, image_source_refused);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

/* The finetune and semi_supervised evaluators through the CLI on a small
 * ResNet and a few hundred Fashion-MNIST images: class-balanced, nested,
 * reproducible subset lists in the run directory; the evaluated checkpoint
 * left byte-for-byte alone while the fine-tuned weights (saved beside it)
 * moved; fine-tuning learns; config errors name the key; an env without
 * the ABI 1.2 services is refused. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ct_test.h"
#include "plugins/loader.h"
#include "training/sha256.h"

#define FM "/usr/share/datasets/fashion-mnist/"

static char g_out[1 << 16];

static void contrast(int want, const char *fmt, ...) {
    char args[3000], cmd[3600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s/contrast %s", ct_test_build_dir(), args);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == want, "`%s` exited %d, expected %d:\n%s", cmd, rc, want, g_out);
}

/* A small experiment: 400 training images, 200 test images (the other end
 * of the test file), a 3-stage ResNet of width 8; `evaluators` is the list
 * body. */
static void write_config(char *cfg, size_t n, const char *evaluators) {
    snprintf(cfg, n, "%s/ft.cfg", ct_test_tmpdir());
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name = \"ft\";\nseed = 1;\n"
            "data = { train = { type = \"idx\"; limit = 400;\n"
            "    images = \"" FM "t10k-images-idx3-ubyte.gz\"; labels = \"" FM "t10k-labels-idx1-ubyte.gz\"; };\n"
            "  test = { type = \"idx\"; limit = 200;\n"
            "    images = \"" FM "train-images-idx3-ubyte.gz\"; labels = \"" FM "train-labels-idx1-ubyte.gz\"; }; };\n"
            "encoder = { type = \"resnet\"; in_channels = 1; stem = \"small\"; stem_width = 8;\n"
            "  blocks = [1, 1, 1]; widths = [8, 8, 16]; };\n"
            "pipelines = ( { data = \"train\"; views = 2;\n"
            "  transforms = ( { type = \"random_resized_crop\"; size = [28]; }, { type = \"normalize\"; mean = [0.286]; std = [0.353]; } ); } );\n"
            "architecture = { type = \"end_to_end\"; head_hidden = [16]; head_out = 8; };\n"
            "optimizer = { type = \"adamw\"; lr = 1e-3; };\n"
            "train = { epochs = 1; batch_size = 64; max_steps = 2; threads = 2; };\n"
            "evaluation = { train = \"train\"; test = \"test\";\n"
            "  transforms = ( { type = \"normalize\"; mean = [0.286]; std = [0.353]; } );\n"
            "  evaluators = ( %s ); };\n",
            evaluators);
    fclose(f);
}

#define AUG                                                                                                    \
    "transforms = ( { type = \"random_resized_crop\"; size = [28]; scale = [0.6, 1.0]; }, { type = \"hflip\"; }, " \
    "{ type = \"normalize\"; mean = [0.286]; std = [0.353]; } );"

/* "name value" from the eval output, or -1. */
static double metric(const char *name) {
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(g_out, key);
    if (!p && strncmp(g_out, key + 1, strlen(key + 1)) == 0) p = g_out - 1;
    return p ? atof(p + strlen(key)) : -1;
}

/* Indices of an index list file (after its '#' header). */
static int read_list(const char *path, int64_t *idx, int cap) {
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no index list %s", path);
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_msg(line[0] == '#', "no header in %s: %s", path, line);
    int n = 0;
    long long v;
    while (n < cap && fscanf(f, "%lld", &v) == 1) idx[n++] = v;
    fclose(f);
    return n;
}

/* Labels of the first n test-file images (the experiment's train split). */
static void read_labels(int32_t *y, int n) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "zcat " FM "t10k-labels-idx1-ubyte.gz | head -c %d | tail -c %d", 8 + n, n);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < n; i++) y[i] = fgetc(p);
    pclose(p);
}

START_TEST(test_semi_supervised_subsets) {
    char cfg[512], run[600], path[800];
    write_config(cfg, sizeof cfg,
                 "{ type = \"semi_supervised\"; fractions = [0.1, 0.5]; epochs = [1]; batch_size = 16; " AUG " }");
    snprintf(run, sizeof run, "%s/run", ct_test_tmpdir());
    contrast(0, "eval %s --run-dir %s", cfg, run);
    ck_assert_msg(metric("semi_supervised.top1_10pct") >= 0 && metric("semi_supervised.top1_50pct") >= 0, "%s", g_out);
    int64_t a[400], b[400];
    snprintf(path, sizeof path, "%s/semi_supervised-10pct-seed0.txt", run);
    int na = read_list(path, a, 400);
    snprintf(path, sizeof path, "%s/semi_supervised-50pct-seed0.txt", run);
    int nb = read_list(path, b, 400);
    /* 400 images of 10 classes: 4 and 20 per class (every class has 20+). */
    ck_assert_int_eq(na, 40);
    ck_assert_int_eq(nb, 200);
    int32_t y[400];
    read_labels(y, 400);
    int per[10] = {0};
    for (int i = 0; i < na; i++) {
        ck_assert(a[i] >= 0 && a[i] < 400);
        if (i) ck_assert_msg(a[i] > a[i - 1], "list not sorted / has duplicates");
        per[y[a[i]]]++;
    }
    for (int c = 0; c < 10; c++) ck_assert_msg(per[c] == 4, "class %d has %d of the 10%% subset", c, per[c]);
    /* Nested: the 10% subset lies inside the 50% one. */
    for (int i = 0, j = 0; i < na; i++) {
        while (j < nb && b[j] < a[i]) j++;
        ck_assert_msg(j < nb && b[j] == a[i], "item %lld of the 10%% list is not in the 50%% list", (long long)a[i]);
    }
    /* Another run directory, same seed: the same list; another seed: not. */
    char run2[700];
    snprintf(run2, sizeof run2, "%s/run2", ct_test_tmpdir());
    contrast(0, "eval %s --run-dir %s --set evaluation.evaluators.[0].fractions=[0.1] "
                "--set evaluation.evaluators.[0].seed=5", cfg, run2);
    snprintf(path, sizeof path, "%s/semi_supervised-10pct-seed5.txt", run2);
    int64_t c5[400];
    ck_assert_int_eq(read_list(path, c5, 400), 40);
    ck_assert_msg(memcmp(a, c5, sizeof(int64_t) * 40) != 0, "seed 5 drew the seed-0 subset");
    contrast(0, "eval %s --run-dir %s --set evaluation.evaluators.[0].fractions=[0.1]", cfg, run2);
    snprintf(path, sizeof path, "%s/semi_supervised-10pct-seed0.txt", run2);
    ck_assert_int_eq(read_list(path, c5, 400), 40);
    ck_assert_msg(memcmp(a, c5, sizeof(int64_t) * 40) == 0, "seed 0 drew another subset");
}
END_TEST

static void file_sha(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static unsigned char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ct_sha256_hex(buf, n, hex);
}

/* An F32 tensor's first value in a safetensors file. */
static float first_value(const char *path, const char *name) {
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_open(path, &f, &err) == CT_OK, "%s", err.msg);
    const ct_safetensors_tensor *t = ct_safetensors_find(f, name);
    ck_assert_msg(t != NULL, "%s has no %s", path, name);
    float v;
    memcpy(&v, t->data, sizeof v);
    ct_safetensors_close(f);
    return v;
}

START_TEST(test_finetune_leaves_checkpoint_and_learns) {
    char cfg[512], run[600], ckpt[800], before[65], after[65], saved[800];
    write_config(cfg, sizeof cfg, "{ type = \"finetune\"; epochs = 20; batch_size = 32; save = true; " AUG " }");
    snprintf(run, sizeof run, "%s/run", ct_test_tmpdir());
    contrast(0, "train %s --run-dir %s --set 'evaluation.evaluators=()'", cfg, run);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint-s00000002.safetensors", run);
    file_sha(ckpt, before);
    contrast(0, "eval %s --checkpoint %s", cfg, ckpt);
    file_sha(ckpt, after);
    ck_assert_str_eq(before, after);
    /* The fine-tuned weights went beside the checkpoint, and they moved. */
    snprintf(saved, sizeof saved, "%s/finetune.safetensors", run);
    ck_assert_msg(access(saved, F_OK) == 0, "no %s:\n%s", saved, g_out);
    ck_assert(first_value(saved, "encoder.conv1.weight") != first_value(ckpt, "encoder.conv1.weight"));
    snprintf(saved, sizeof saved, "%s/finetune-classifier.safetensors", run);
    ck_assert_msg(access(saved, F_OK) == 0, "no %s", saved);
    /* 20 epochs of 400 images: far above chance (10%) on held-out images. */
    double top1 = metric("finetune.top1");
    ck_assert_msg(top1 > 45.0, "fine-tuned top1 %.2f:\n%s", top1, g_out);
    ck_assert(metric("finetune.top5") >= top1);
}
END_TEST

START_TEST(test_config_errors_name_the_key) {
    char cfg[512];
    /* knn trains on frozen features: its transforms are a mistake. */
    write_config(cfg, sizeof cfg, "{ type = \"knn\"; k = 5; " AUG " }");
    contrast(1, "eval %s --run-dir %s/r1", cfg, ct_test_tmpdir());
    ck_assert_msg(strstr(g_out, "evaluation.evaluators[0] (evaluator knn) has transforms"), "%s", g_out);
    write_config(cfg, sizeof cfg, "{ type = \"semi_supervised\"; fractions = [0.1, 0.2, 0.3]; epochs = [1, 2]; }");
    contrast(1, "eval %s --run-dir %s/r2", cfg, ct_test_tmpdir());
    ck_assert_msg(strstr(g_out, "epochs: give one value or one per fraction (3), got 2"), "%s", g_out);
    write_config(cfg, sizeof cfg, "{ type = \"semi_supervised\"; fractions = [0.0]; }");
    contrast(1, "eval %s --run-dir %s/r3", cfg, ct_test_tmpdir());
    ck_assert_msg(strstr(g_out, "fractions"), "%s", g_out);
    write_config(cfg, sizeof cfg, "{ type = \"finetune\"; transforms = 3; }");
    contrast(1, "eval %s --run-dir %s/r4", cfg, ct_test_tmpdir());
    ck_assert_msg(strstr(g_out, "evaluation.evaluators[0].transforms: must be a list"), "%s", g_out);
}
END_TEST

static ct_status no_features(const ct_eval_env *env, const char *split, float **feats, int32_t **labels,
                             int64_t *n, int64_t *dim, ct_error *err) {
    (void)env, (void)split, (void)feats, (void)labels, (void)n, (void)dim;
    return ct_error_set(err, CT_ERR_INVALID, "not here");
}

/* An env as an ABI 1.1 host made it (ending at host_ctx): refused by name. */
START_TEST(test_old_host_env_refused) {
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_plugin_set *set = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&lo, &set, &err), CT_OK);
    const char *names[] = {"finetune", "semi_supervised"};
    for (int k = 0; k < 2; k++) {
        const ct_registry_entry *e = ct_plugins_find(set, CT_ROLE_EVALUATOR, names[k]);
        ck_assert_msg(e != NULL, "no evaluator %s", names[k]);
        ct_settings *s = NULL;
        ck_assert_int_eq(ct_settings_parse(e->ops.evaluator->params, "", names[k], &s, &err), CT_OK);
        void *self = NULL;
        ck_assert_int_eq(e->ops.evaluator->create(s, ct_plugins_host_for(set, e), &self, &err), CT_OK);
        ct_eval_env env = {.size = offsetof(ct_eval_env, run_dir), .host = ct_plugins_host_for(set, e),
                           .num_classes = 10, .features = no_features};
        ct_metrics m = {0};
        ck_assert_int_eq(e->ops.evaluator->run(self, &env, &m, &err), CT_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(err.msg, names[k]) && strstr(err.msg, "ABI 1.2"), "%s", err.msg);
        e->ops.evaluator->destroy(self);
        ct_settings_free(s);
    }
    ct_plugins_free(set);
}
END_TEST

int main(void) {
    Suite *s = suite_create("finetune");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_semi_supervised_subsets);
    tcase_add_test(tc, test_finetune_leaves_checkpoint_and_learns);
    tcase_add_test(tc, test_config_errors_name_the_key);
    tcase_add_test(tc, test_old_host_env_refused);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

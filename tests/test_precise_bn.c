/* Precise batch norm (evaluation.precise_bn_batches, issue 14): the
 * graph's batch-norm momentum override makes the running statistics the
 * plain mean of the batches' statistics; re-estimated on the evaluated
 * images they do not depend on what the encoder saw before (clip batches
 * of other statistics, as a mixed run's encoder sees), so the features and
 * metrics of a "contaminated" encoder equal a clean one's; an evaluation
 * round puts the checkpoint's buffers back bit for bit; without the
 * setting the contamination shows (so the test can fail). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "config/experiment.h"
#include "ct_test.h"
#include "training/evaluate.h"
#include "training/model.h"
#include "training/precise_bn.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static void fill(float *p, int64_t n, uint64_t seed, float lo, float hi) {
    ct_rng r;
    ct_rng_init(&r, seed, 7);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, lo, hi);
}

/* Channel c's mean and unbiased variance of x (N, C, S) in double. */
static void moments(const float *x, int64_t n, int64_t C, int64_t s, int64_t c, double *mean, double *unbiased) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < s; j++) m += x[(i * C + c) * s + j];
    m /= (double)(n * s);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < s; j++) v += (x[(i * C + c) * s + j] - m) * (x[(i * C + c) * s + j] - m);
    *mean = m, *unbiased = v / (double)(n * s - 1);
}

/* Momentum 1, then 1/2: the running statistics are the two batches' mean,
 * whatever the op's own momentum (0.1) and the buffers' start; the
 * override survives a reset, 0 gives the op's momentum back, eval mode
 * ignores it. */
START_TEST(bn_momentum_override_averages_batches) {
    const int64_t N = 6, C = 3, S = 5;
    float rm[3] = {7, 7, 7}, rv[3] = {9, 9, 9}, xs[2][6 * 3 * 5];
    fill(xs[0], N * C * S, 1, -1.0f, 3.0f);
    fill(xs[1], N * C * S, 2, 2.0f, 8.0f); /* other statistics, as clip frames have */
    ct_graph *g = ct_test_graph_new();
    int64_t shape[3] = {N, C, S}, cs[1] = {C};
    ck_assert(ct_graph_bn_momentum(g) == 0.0f);
    for (int k = 0; k < 2; k++) {
        ck_assert(ct_graph_set_bn_momentum(g, 1.0f / (float)(k + 1)) == (k ? 1.0f : 0.0f));
        ct_tensor *x = ct_tensor_wrap(g, xs[k], 3, shape);
        ct_tensor *y = ct_batchnorm(g, x, NULL, NULL, ct_tensor_wrap(g, rm, 1, cs), ct_tensor_wrap(g, rv, 1, cs),
                                    0.1f, 1e-5f);
        ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
        ct_graph_reset(g);
    }
    ck_assert(ct_graph_bn_momentum(g) == 0.5f); /* kept by reset */
    for (int64_t c = 0; c < C; c++) {
        double m0, v0, m1, v1;
        moments(xs[0], N, C, S, c, &m0, &v0);
        moments(xs[1], N, C, S, c, &m1, &v1);
        ck_assert_msg(fabs(rm[c] - (m0 + m1) / 2) < 1e-5 * (1 + fabs(m1)), "running_mean[%lld] %g, want %g",
                      (long long)c, rm[c], (m0 + m1) / 2);
        ck_assert_msg(fabs(rv[c] - (v0 + v1) / 2) < 1e-5 * (1 + v1), "running_var[%lld] %g, want %g", (long long)c,
                      rv[c], (v0 + v1) / 2);
    }
    /* 0: the op's momentum again (0.1 of the batch) */
    float before = rm[0];
    ct_graph_set_bn_momentum(g, 0.0f);
    ct_tensor *y = ct_batchnorm(g, ct_tensor_wrap(g, xs[0], 3, shape), NULL, NULL, ct_tensor_wrap(g, rm, 1, cs),
                                ct_tensor_wrap(g, rv, 1, cs), 0.1f, 1e-5f);
    ck_assert(y != NULL);
    double m0, v0;
    moments(xs[0], N, C, S, 0, &m0, &v0);
    ck_assert(fabs(rm[0] - (0.9 * before + 0.1 * m0)) < 1e-5 * (1 + fabs(before)));
    /* eval mode reads the buffers and changes nothing */
    ct_graph_set_bn_momentum(g, 1.0f);
    ct_graph_set_train(g, false);
    float frozen[3];
    memcpy(frozen, rm, sizeof frozen);
    ck_assert(ct_batchnorm(g, ct_tensor_wrap(g, xs[1], 3, shape), NULL, NULL, ct_tensor_wrap(g, rm, 1, cs),
                           ct_tensor_wrap(g, rv, 1, cs), 0.1f, 1e-5f) != NULL);
    ck_assert(memcmp(frozen, rm, sizeof frozen) == 0);
    ct_graph_free(g);
}
END_TEST

static char g_cfg[700];

/* 200 Fashion-MNIST train / 40 test images, a small clip encoder (one
 * temporal layer), knn and linear on the images. */
static void write_config(int precise) {
    snprintf(g_cfg, sizeof g_cfg, "%s/pbn.cfg", ct_test_tmpdir());
    char cfg[3000];
    snprintf(cfg, sizeof cfg,
             "name = \"pbn\";\n"
             "data = {\n"
             "  train = { type = \"idx\"; images = \"" FMNIST "train-images-idx3-ubyte.gz\";\n"
             "            labels = \"" FMNIST "train-labels-idx1-ubyte.gz\"; limit = 200; };\n"
             "  test = { type = \"idx\"; images = \"" FMNIST "t10k-images-idx3-ubyte.gz\";\n"
             "           labels = \"" FMNIST "t10k-labels-idx1-ubyte.gz\"; limit = 40; };\n"
             "};\n"
             "encoder = { type = \"clip_resnet\"; in_channels = 1; stem = \"small\"; stem_width = 8; blocks = [1, 1];\n"
             "            widths = [8, 16]; temporal_layers = 1; };\n"
             "evaluation = { train = \"train\"; test = \"test\"; precise_bn_batches = %d;\n"
             "  transforms = ( { type = \"normalize\"; mean = [0.2860]; std = [0.3530]; } );\n"
             "  evaluators = ( { type = \"knn\"; k = 5; }, { type = \"linear\"; epochs = 5; } ); };\n",
             precise);
    ck_assert_int_eq(ct_test_write_file(g_cfg, cfg, strlen(cfg)), 0);
}

static void build(ct_experiment *ex, ct_model *m) {
    ct_experiment_opts opts;
    memset(&opts, 0, sizeof opts);
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_experiment_load(ex, g_cfg, &opts, &err) == CT_OK, "%s", err.msg);
    memset(m, 0, sizeof *m);
    ck_assert_msg(ct_model_build(m, ex, 2, false, &err) == CT_OK, "%s", err.msg);
}

/* What a mixed run's clip pipeline does to the shared running statistics:
 * training-mode forwards of 32x32 clips of other statistics. */
static void contaminate(ct_model *m) {
    static float clips[4 * 4 * 32 * 32];
    int64_t shape[5] = {4, 4, 1, 32, 32};
    bool grad = ct_graph_set_grad(m->graph, false);
    for (int k = 0; k < 5; k++) {
        fill(clips, 4 * 4 * 32 * 32, 10 + k, 1.0f, 4.0f);
        ct_tensor *f = m->encoder.ops->forward(m->encoder.self, m->graph, ct_tensor_wrap(m->graph, clips, 5, shape));
        ck_assert_msg(f != NULL, "%s", ct_graph_error(m->graph));
        ct_graph_reset(m->graph);
    }
    ct_graph_set_grad(m->graph, grad);
}

static float *test_features(ct_model *m, int64_t *count) {
    float *f = NULL;
    int32_t *labels = NULL;
    int64_t dim = 0;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_extract_features(m, "test", &f, &labels, count, &dim, &err) == CT_OK, "%s", err.msg);
    *count *= dim;
    free(labels);
    return f;
}

/* The running means and variances (not the batch counts) of the encoder. */
static size_t running_stats(const ct_model *m, float *out) {
    size_t at = 0;
    for (size_t i = 0; i < ct_params_count(m->store); i++) {
        const char *name;
        ct_tensor *t = ct_params_at(m->store, i, &name, NULL, NULL);
        if (!strstr(name, ".running_")) continue;
        if (out) memcpy(out + at, t->data, (size_t)t->numel * sizeof *out);
        at += (size_t)t->numel;
    }
    return at;
}

/* Re-estimated on the images, the statistics and the test features of an
 * encoder that saw clip batches are those of one that did not. */
START_TEST(image_statistics_ignore_clip_batches) {
    write_config(2);
    ct_experiment ex[2];
    ct_model m[2];
    float *stats[2], *feats[2], *plain[2];
    int64_t n[2];
    for (int k = 0; k < 2; k++) {
        build(&ex[k], &m[k]);
        if (k == 1) contaminate(&m[k]);
        plain[k] = test_features(&m[k], &n[k]); /* the checkpoint's statistics */
        ct_error err = CT_ERROR_INIT;
        ck_assert_msg(ct_precise_bn(&m[k], ex[k].eval_train, &ex[k].eval_chain, 2, 64, &err) == CT_OK, "%s", err.msg);
        stats[k] = malloc(running_stats(&m[k], NULL) * sizeof(float));
        running_stats(&m[k], stats[k]);
        feats[k] = test_features(&m[k], &n[k]);
    }
    size_t ns = running_stats(&m[0], NULL);
    ck_assert(ns > 0);
    ck_assert_msg(memcmp(plain[0], plain[1], (size_t)n[0] * sizeof(float)) != 0,
                  "the clip batches did not change the features: the test shows nothing");
    ck_assert_msg(memcmp(stats[0], stats[1], ns * sizeof(float)) == 0, "re-estimated statistics differ");
    ck_assert_msg(memcmp(feats[0], feats[1], (size_t)n[0] * sizeof(float)) == 0, "features differ");
    /* and they are the images', not the initial ones (mean 0, variance 1) */
    bool moved = false;
    for (size_t i = 0; i < ns; i++) moved |= stats[0][i] != 0.0f && stats[0][i] != 1.0f;
    ck_assert(moved);
    for (int k = 0; k < 2; k++) {
        free(stats[k]);
        free(feats[k]);
        free(plain[k]);
        ct_model_free(&m[k]);
        ct_experiment_free(&ex[k]);
    }
}
END_TEST

static void evaluate(ct_model *m, ct_metrics *out) {
    ct_error err = CT_ERROR_INIT;
    memset(out, 0, sizeof *out);
    ck_assert_msg(ct_evaluate(m, out, &err) == CT_OK, "%s", err.msg);
}

static double metric(const ct_metrics *r, const char *name) {
    for (int k = 0; k < r->n; k++)
        if (strcmp(r->name[k], name) == 0) return r->value[k];
    ck_abort_msg("no metric %s", name);
    return 0;
}

/* A round with precise_bn_batches: the contaminated encoder's metrics are
 * the clean one's, and every buffer (statistics and batch counts) is back
 * as it was afterwards, so training after an evaluation goes on as
 * before. */
START_TEST(evaluation_round_restores_buffers) {
    write_config(1);
    ct_experiment ex[2];
    ct_model m[2];
    ct_metrics r[2];
    for (int k = 0; k < 2; k++) {
        build(&ex[k], &m[k]);
        if (k == 1) contaminate(&m[k]);
        size_t nb = ct_params_buffer_numel(m[k].store);
        float *before = malloc(nb * sizeof *before);
        memcpy(before, ct_params_buffer_data(m[k].store), nb * sizeof *before);
        evaluate(&m[k], &r[k]);
        ck_assert_msg(memcmp(before, ct_params_buffer_data(m[k].store), nb * sizeof *before) == 0,
                      "the evaluation round left the buffers changed");
        free(before);
    }
    ck_assert(metric(&r[0], "knn.top1") == metric(&r[1], "knn.top1"));
    ck_assert(metric(&r[0], "linear.top1") == metric(&r[1], "linear.top1"));
    for (int k = 0; k < 2; k++) {
        ct_model_free(&m[k]);
        ct_experiment_free(&ex[k]);
    }
}
END_TEST

/* A negative count is refused at load, naming the key. */
START_TEST(negative_batches_refused) {
    write_config(-1);
    ct_experiment ex;
    ct_experiment_opts opts;
    memset(&opts, 0, sizeof opts);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_experiment_load(&ex, g_cfg, &opts, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "precise_bn_batches"), "%s", err.msg);
    ct_experiment_free(&ex);
}
END_TEST

int main(void) {
    Suite *s = suite_create("precise_bn");
    TCase *tc = tcase_create("precise_bn");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bn_momentum_override_averages_batches);
    tcase_add_test(tc, image_statistics_ignore_clip_batches);
    tcase_add_test(tc, evaluation_round_restores_buffers);
    tcase_add_test(tc, negative_batches_refused);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

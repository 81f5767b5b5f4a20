/* ct_batchnorm / ct_batchnorm_relu / ct_batchnorm_add_relu: forward against a double-precision
 * reference in training and eval mode, PyTorch's running-statistics update
 * (momentum, unbiased variance), finite-difference gradients in both modes,
 * thread-count independence, argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_gradcheck.h"
#include "ct_test.h"

static void fill(float *p, int64_t n, uint64_t seed, float lo, float hi) {
    ct_rng r;
    ct_rng_init(&r, seed, 3);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, lo, hi);
}

/* Per-channel mean and biased variance of (N,C,S) in double. */
static void stats(const float *x, int64_t n, int64_t c, int64_t s, int64_t ch, double *mean, double *var) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < s; j++) m += x[(i * c + ch) * s + j];
    m /= (double)(n * s);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < s; j++) {
            double d = x[(i * c + ch) * s + j] - m;
            v += d * d;
        }
    *mean = m, *var = v / (double)(n * s);
}

static void check_forward(bool relu, bool train) {
    const int64_t N = 5, C = 3, H = 4, W = 3, S = H * W;
    ct_graph *g = ct_test_graph_new();
    ct_graph_set_train(g, train);
    ct_tensor *x = ct_tensor_new4(g, N, C, H, W);
    ct_tensor *w = ct_tensor_new1(g, C), *b = ct_tensor_new1(g, C);
    ct_tensor *rm = ct_tensor_new1(g, C), *rv = ct_tensor_new1(g, C);
    fill(x->data, x->numel, 1, -2.0f, 3.0f); /* offset mean: exercises the shifted sums */
    for (int64_t i = 0; i < x->numel; i++) x->data[i] += 100.0f;
    fill(w->data, C, 2, 0.5f, 1.5f), fill(b->data, C, 3, -0.5f, 0.5f);
    fill(rm->data, C, 4, 99.0f, 101.0f), fill(rv->data, C, 5, 0.5f, 2.0f);
    float rm0[3], rv0[3];
    memcpy(rm0, rm->data, sizeof rm0), memcpy(rv0, rv->data, sizeof rv0);
    const float mom = 0.1f, eps = 1e-5f;
    ct_tensor *y = relu ? ct_batchnorm_relu(g, x, w, b, rm, rv, mom, eps) : ct_batchnorm(g, x, w, b, rm, rv, mom, eps);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    for (int64_t c = 0; c < C; c++) {
        double mean, var;
        stats(x->data, N, C, S, c, &mean, &var);
        if (train) {
            double unb = var * (double)(N * S) / (double)(N * S - 1);
            ck_assert_msg(fabs(rm->data[c] - (0.9 * rm0[c] + 0.1 * mean)) < 1e-4, "running_mean[%lld]", (long long)c);
            ck_assert_msg(fabs(rv->data[c] - (0.9 * rv0[c] + 0.1 * unb)) < 1e-4, "running_var[%lld]", (long long)c);
        } else {
            mean = rm0[c], var = rv0[c];
            ck_assert(rm->data[c] == rm0[c] && rv->data[c] == rv0[c]); /* eval leaves them alone */
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < S; j++) {
                int64_t i = (n * C + c) * S + j;
                double want = (x->data[i] - mean) / sqrt(var + eps) * w->data[c] + b->data[c];
                if (relu && want < 0) want = 0;
                ck_assert_msg(fabs(y->data[i] - want) < 2e-3, "%s %s: y[%lld] = %g, want %g",
                              relu ? "bn_relu" : "bn", train ? "train" : "eval", (long long)i, y->data[i], want);
            }
    }
    ct_graph_free(g);
}

START_TEST(forward_train_and_eval) {
    check_forward(false, true);
    check_forward(true, true);
    check_forward(false, false);
    check_forward(true, false);
}
END_TEST

/* ---- gradients ---- */

typedef struct bn_ctx {
    bool relu, eval, affine;
    ct_tensor *rm, *rv;
} bn_ctx;

static ct_tensor *b_bn(ct_graph *g, ct_tensor **in, void *ctx) {
    bn_ctx *c = ctx;
    if (c->eval) ct_graph_set_train(g, false);
    ct_tensor *w = c->affine ? in[1] : NULL, *b = c->affine ? in[2] : NULL;
    ct_tensor *y = c->relu ? ct_batchnorm_relu(g, in[0], w, b, c->rm, c->rv, 0.1f, 1e-5f)
                           : ct_batchnorm(g, in[0], w, b, c->rm, c->rv, 0.1f, 1e-5f);
    ct_graph_set_train(g, true);
    return y;
}

static void check_grad_g(int ndim, const int64_t *xs, bool relu, bool eval, bool affine, bool small_gamma) {
    const int64_t C = xs[1];
    ct_tensor *in[3];
    in[0] = ct_gradcheck_input(ndim, xs, 21);
    in[1] = ct_gradcheck_input(1, &C, 22);
    in[2] = ct_gradcheck_input(1, &C, 23);
    /* gamma away from 0, or tiny: backward then reads x instead of
     * recovering xhat from y */
    for (int64_t i = 0; i < C; i++) in[1]->data[i] = small_gamma ? in[1]->data[i] * 1e-4f : in[1]->data[i] + 1.5f;
    ct_tensor *rm = ct_gradcheck_input(1, &C, 24), *rv = ct_gradcheck_input(1, &C, 25);
    for (int64_t i = 0; i < C; i++) rv->data[i] += 1.5f;
    bn_ctx c = {relu, eval, affine, rm, rv};
    char report[2048];
    int bad = ct_gradcheck(b_bn, in, affine ? 3 : 1, &c, 1e-3, 2e-2, report, sizeof report);
    for (int i = 0; i < 3; i++) ct_gradcheck_input_free(in[i]);
    ct_gradcheck_input_free(rm), ct_gradcheck_input_free(rv);
    ck_assert_msg(bad == 0, "%s%s%s: %s", relu ? "bn_relu" : "bn", eval ? " eval" : " train",
                  affine ? "" : " no affine", report);
}

static void check_grad(int ndim, const int64_t *xs, bool relu, bool eval, bool affine) {
    check_grad_g(ndim, xs, relu, eval, affine, false);
}

START_TEST(gradients) {
    const int64_t x4[4] = {3, 2, 3, 4}, x2[2] = {6, 3};
    for (int relu = 0; relu < 2; relu++)
        for (int eval = 0; eval < 2; eval++) {
            check_grad(4, x4, relu, eval, true);
            check_grad(2, x2, relu, eval, true);
        }
    check_grad(4, x4, false, false, false);
    check_grad_g(4, x4, false, false, true, true);
    check_grad_g(4, x4, true, false, true, true);
}
END_TEST

/* ---- the residual join: relu(bn(x) + r) ---- */

static ct_tensor *b_bn_res(ct_graph *g, ct_tensor **in, void *ctx) {
    bn_ctx *c = ctx;
    if (c->eval) ct_graph_set_train(g, false);
    ct_tensor *y = ct_batchnorm_add_relu(g, in[0], in[1], in[2], c->rm, c->rv, 0.1f, 1e-5f, in[3]);
    ct_graph_set_train(g, true);
    return y;
}

START_TEST(residual_join_gradients) {
    const int64_t xs[4] = {3, 2, 3, 4}, C = 2;
    for (int eval = 0; eval < 2; eval++) {
        ct_tensor *in[4] = {ct_gradcheck_input(4, xs, 31), ct_gradcheck_input(1, &C, 32),
                            ct_gradcheck_input(1, &C, 33), ct_gradcheck_input(4, xs, 34)};
        for (int64_t i = 0; i < C; i++) in[1]->data[i] += 1.5f;
        ct_tensor *rm = ct_gradcheck_input(1, &C, 35), *rv = ct_gradcheck_input(1, &C, 36);
        for (int64_t i = 0; i < C; i++) rv->data[i] += 1.5f;
        bn_ctx c = {true, eval != 0, true, rm, rv};
        char report[2048];
        int bad = ct_gradcheck(b_bn_res, in, 4, &c, 1e-3, 2e-2, report, sizeof report);
        for (int i = 0; i < 4; i++) ct_gradcheck_input_free(in[i]);
        ct_gradcheck_input_free(rm), ct_gradcheck_input_free(rv);
        ck_assert_msg(bad == 0, "batchnorm_add_relu%s: %s", eval ? " eval" : " train", report);
    }
}
END_TEST

/* The fused op equals ct_batchnorm + ct_add_relu: bit-identical output,
 * gradients within rounding (sums in another order), including a residual
 * whose gradient accumulates onto an existing one. */
START_TEST(residual_join_matches_separate_ops) {
    float *y[2], *grads[2][4];
    const int64_t n = 5, C = 3, h = 7, w = 7, N = n * C * h * w; /* 49-float rows: masked tails */
    for (int fused = 0; fused < 2; fused++) {
        ct_graph *g = ct_test_graph_new();
        ct_tensor *x = ct_tensor_new4(g, n, C, h, w), *r = ct_tensor_new4(g, n, C, h, w);
        ct_tensor *ga = ct_tensor_new1(g, C), *be = ct_tensor_new1(g, C);
        ct_tensor *rm = ct_tensor_new1(g, C), *rv = ct_tensor_new1(g, C);
        fill(x->data, N, 41, -1, 1), fill(r->data, N, 42, -1, 1), fill(ga->data, C, 43, 0.5f, 1.5f);
        fill(be->data, C, 44, -0.5f, 0.5f), fill(rm->data, C, 45, 0, 0), fill(rv->data, C, 46, 1, 1);
        ct_tensor *t[4] = {x, r, ga, be};
        for (int i = 0; i < 4; i++) t[i]->flags |= CT_TENSOR_REQUIRES_GRAD;
        ct_tensor *yy = fused ? ct_batchnorm_add_relu(g, x, ga, be, rm, rv, 0.1f, 1e-5f, r)
                              : ct_add_relu(g, ct_batchnorm(g, x, ga, be, rm, rv, 0.1f, 1e-5f), r);
        /* r also feeds another op, so its gradient accumulates */
        ct_tensor *loss = ct_add(g, ct_sum(g, ct_mul(g, yy, yy)), ct_sum(g, ct_scale(g, r, 0.5f)));
        ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
        y[fused] = malloc(sizeof(float) * (size_t)N);
        memcpy(y[fused], yy->data, sizeof(float) * (size_t)N);
        for (int i = 0; i < 4; i++) {
            grads[fused][i] = malloc(sizeof(float) * (size_t)t[i]->numel);
            memcpy(grads[fused][i], t[i]->grad, sizeof(float) * (size_t)t[i]->numel);
        }
        if (fused) {
            ck_assert_msg(memcmp(y[0], y[1], sizeof(float) * (size_t)N) == 0, "outputs differ");
            for (int i = 0; i < 4; i++)
                for (int64_t j = 0; j < t[i]->numel; j++)
                    ck_assert_msg(fabsf(grads[0][i][j] - grads[1][i][j]) <= 1e-4f * (1.0f + fabsf(grads[0][i][j])),
                                  "gradient %d[%lld]: %g vs %g", i, (long long)j, grads[0][i][j], grads[1][i][j]);
        }
        ct_graph_free(g);
    }
    free(y[0]), free(y[1]);
    for (int f = 0; f < 2; f++)
        for (int i = 0; i < 4; i++) free(grads[f][i]);
}
END_TEST

START_TEST(thread_count_independent) {
    float *out[2][2];
    for (int run = 0; run < 2; run++) {
        ct_error err = CT_ERROR_INIT;
        ct_threadpool *pool = run ? ct_threadpool_new(2, &err) : NULL;
        ck_assert(!run || pool != NULL);
        ct_graph *g = ct_test_graph_new();
        ct_graph_set_pool(g, pool);
        ct_tensor *x = ct_tensor_new4(g, 64, 8, 12, 12), *w = ct_tensor_new1(g, 8), *b = ct_tensor_new1(g, 8);
        fill(x->data, x->numel, 9, -1, 1), fill(w->data, 8, 10, 0.5f, 1.5f), fill(b->data, 8, 11, -1, 1);
        x->flags |= CT_TENSOR_REQUIRES_GRAD;
        ct_tensor *y = ct_batchnorm_relu(g, x, w, b, NULL, NULL, 0.1f, 1e-5f);
        ck_assert_int_eq(ct_graph_backward(g, ct_sum(g, ct_mul(g, y, y))), CT_OK);
        out[run][0] = malloc(sizeof(float) * (size_t)x->numel);
        out[run][1] = malloc(sizeof(float) * (size_t)x->numel);
        memcpy(out[run][0], y->data, sizeof(float) * (size_t)x->numel);
        memcpy(out[run][1], x->grad, sizeof(float) * (size_t)x->numel);
        if (run) {
            ck_assert(memcmp(out[0][0], out[1][0], sizeof(float) * (size_t)x->numel) == 0);
            ck_assert(memcmp(out[0][1], out[1][1], sizeof(float) * (size_t)x->numel) == 0);
        }
        ct_graph_free(g);
        ct_threadpool_free(pool);
    }
    for (int r = 0; r < 2; r++) free(out[r][0]), free(out[r][1]);
}
END_TEST

START_TEST(argument_errors) {
    ct_graph *g = ct_test_graph_new();
    ct_tensor *x = ct_tensor_new4(g, 2, 3, 2, 2), *w = ct_tensor_new1(g, 4);
    ck_assert_ptr_null(ct_batchnorm(g, x, w, NULL, NULL, NULL, 0.1f, 1e-5f));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "weight"));
    ct_graph_reset(g);
    ct_graph_set_train(g, false);
    x = ct_tensor_new4(g, 2, 3, 2, 2);
    ck_assert_ptr_null(ct_batchnorm_relu(g, x, NULL, NULL, NULL, NULL, 0.1f, 1e-5f));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_INVALID);
    ct_graph_free(g);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("norm");
    TCase *tc = tcase_create("batchnorm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_train_and_eval);
    tcase_add_test(tc, gradients);
    tcase_add_test(tc, residual_join_gradients);
    tcase_add_test(tc, residual_join_matches_separate_ops);
    tcase_add_test(tc, thread_count_independent);
    tcase_add_test(tc, argument_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

/* ct_conv2d: forward against a naive reference, finite-difference
 * gradients (data, weight, bias) for every code path (im2col, grouped
 * images, 1x1 direct, stride 2, C_in = 1 stem, transposed data gradient,
 * accumulation into an existing gradient), thread-count independence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_gradcheck.h"
#include "ct_test.h"

typedef struct conv_case {
    int64_t n, c, h, w, o, k;
    int stride, pad;
    bool bias;
} conv_case;

/* y[n,o,oy,ox] = b[o] + sum_{c,ky,kx} x[n,c,oy*s-p+ky,ox*s-p+kx] w[o,c,ky,kx] */
static void naive_conv(const conv_case *t, const float *x, const float *w, const float *b, double *y) {
    int64_t ho = (t->h + 2 * t->pad - t->k) / t->stride + 1, wo = (t->w + 2 * t->pad - t->k) / t->stride + 1;
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t o = 0; o < t->o; o++)
            for (int64_t oy = 0; oy < ho; oy++)
                for (int64_t ox = 0; ox < wo; ox++) {
                    double s = b ? b[o] : 0.0;
                    for (int64_t c = 0; c < t->c; c++)
                        for (int64_t ky = 0; ky < t->k; ky++)
                            for (int64_t kx = 0; kx < t->k; kx++) {
                                int64_t iy = oy * t->stride - t->pad + ky, ix = ox * t->stride - t->pad + kx;
                                if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) continue;
                                s += (double)x[((n * t->c + c) * t->h + iy) * t->w + ix] *
                                     w[((o * t->c + c) * t->k + ky) * t->k + kx];
                            }
                    y[((n * t->o + o) * ho + oy) * wo + ox] = s;
                }
}

static const conv_case cases[] = {
    {2, 3, 7, 6, 4, 3, 1, 1, true},   /* 3x3 same padding */
    {2, 3, 7, 6, 4, 3, 2, 1, false},  /* stride 2 */
    {2, 5, 6, 6, 3, 1, 1, 0, true},   /* 1x1 direct path */
    {2, 5, 7, 7, 6, 1, 2, 0, false},  /* 1x1 stride 2 (downsample) */
    {3, 1, 8, 8, 4, 3, 1, 1, false},  /* C_in = 1 stem */
    {2, 2, 9, 8, 3, 5, 2, 2, true},   /* 5x5 stride 2 pad 2 */
    {2, 2, 6, 5, 3, 3, 1, 0, false},  /* no padding */
    {2, 2, 11, 11, 3, 7, 2, 3, false}, /* ImageNet-style 7x7/2 */
    {40, 3, 5, 5, 4, 3, 1, 1, true},  /* small maps: several images per GEMM */
    {40, 3, 6, 7, 4, 3, 2, 1, true},  /* stride 2 phase planes, several images per GEMM */
    {2, 2, 7, 7, 3, 3, 2, 0, false},  /* stride 2 no padding: strided im2col (no phase path) */
};

static void fill(float *p, int64_t n, uint64_t seed) {
    ct_rng r;
    ct_rng_init(&r, seed, 7);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, -1.0f, 1.0f);
}

static void check_forward(const conv_case *t) {
    ct_graph *g = ct_test_graph_new();
    int64_t xs[4] = {t->n, t->c, t->h, t->w}, ws[4] = {t->o, t->c, t->k, t->k}, bs[1] = {t->o};
    ct_tensor *x = ct_tensor_new(g, 4, xs), *w = ct_tensor_new(g, 4, ws), *b = ct_tensor_new(g, 1, bs);
    fill(x->data, x->numel, 1), fill(w->data, w->numel, 2), fill(b->data, b->numel, 3);
    ct_tensor *y = ct_conv2d(g, x, w, t->bias ? b : NULL, t->stride, t->pad);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    int64_t ho = (t->h + 2 * t->pad - t->k) / t->stride + 1, wo = (t->w + 2 * t->pad - t->k) / t->stride + 1;
    ck_assert_int_eq(y->shape[0], t->n);
    ck_assert_int_eq(y->shape[1], t->o);
    ck_assert_int_eq(y->shape[2], ho);
    ck_assert_int_eq(y->shape[3], wo);
    double *ref = malloc(sizeof(double) * (size_t)y->numel);
    naive_conv(t, x->data, w->data, t->bias ? b->data : NULL, ref);
    for (int64_t i = 0; i < y->numel; i++)
        ck_assert_msg(fabs(y->data[i] - ref[i]) < 1e-4 * (1 + fabs(ref[i])), "case k%lld s%d p%d: y[%lld] = %g, want %g",
                      (long long)t->k, t->stride, t->pad, (long long)i, y->data[i], ref[i]);
    free(ref);
    ct_graph_free(g);
}

START_TEST(forward_matches_naive) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_forward(&cases[i]);
}
END_TEST

/* ---- gradients ---- */

static ct_tensor *b_conv(ct_graph *g, ct_tensor **in, void *ctx) {
    const conv_case *t = ctx;
    return ct_conv2d(g, in[0], in[1], t->bias ? in[2] : NULL, t->stride, t->pad);
}

/* x feeds two convolutions: the second backward accumulates into x's
 * gradient instead of overwriting it. */
static ct_tensor *b_conv_twice(ct_graph *g, ct_tensor **in, void *ctx) {
    const conv_case *t = ctx;
    ct_tensor *a = ct_conv2d(g, in[0], in[1], NULL, t->stride, t->pad);
    ct_tensor *b = ct_conv2d(g, in[0], in[2], NULL, t->stride, t->pad);
    return ct_mul(g, a, b);
}

static void check_grad(const conv_case *t, ct_gradcheck_fn fn, bool two_weights) {
    int64_t xs[4] = {t->n, t->c, t->h, t->w}, ws[4] = {t->o, t->c, t->k, t->k}, bs[1] = {t->o};
    ct_tensor *in[3];
    in[0] = ct_gradcheck_input(4, xs, 11);
    in[1] = ct_gradcheck_input(4, ws, 12);
    in[2] = two_weights ? ct_gradcheck_input(4, ws, 13) : ct_gradcheck_input(1, bs, 13);
    int n_in = two_weights || t->bias ? 3 : 2;
    char report[2048];
    int bad = ct_gradcheck(fn, in, n_in, (void *)t, 1e-2, 1e-2, report, sizeof report);
    for (int i = 0; i < 3; i++) ct_gradcheck_input_free(in[i]);
    ck_assert_msg(bad == 0, "conv k%lld s%d p%d n%lld: %s", (long long)t->k, t->stride, t->pad,
                  (long long)t->n, report);
}

START_TEST(gradients) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        conv_case t = cases[i];
        if (t.n > 8) t.n = 26, t.c = 2, t.o = 2; /* keep the grouped case small but grouped */
        check_grad(&t, b_conv, false);
    }
}
END_TEST

START_TEST(gradients_accumulate) {
    const conv_case t[3] = {{2, 3, 5, 5, 2, 3, 1, 1, false}, {2, 3, 6, 6, 2, 3, 2, 1, false},
                            {2, 3, 4, 4, 2, 1, 1, 0, false}};
    for (int i = 0; i < 3; i++) check_grad(&t[i], b_conv_twice, true);
}
END_TEST

/* Same results, bit for bit, with 1 and 3 threads. */
START_TEST(thread_count_independent) {
    const conv_case t = {24, 4, 9, 9, 6, 3, 1, 1, true};
    float *res[2][3];
    for (int run = 0; run < 2; run++) {
        ct_error err = CT_ERROR_INIT;
        ct_threadpool *pool = run ? ct_threadpool_new(3, &err) : NULL;
        ck_assert(!run || pool != NULL);
        ct_graph *g = ct_test_graph_new();
        ct_graph_set_pool(g, pool);
        int64_t xs[4] = {t.n, t.c, t.h, t.w}, ws[4] = {t.o, t.c, t.k, t.k}, bs[1] = {t.o};
        ct_tensor *x = ct_tensor_new(g, 4, xs), *w = ct_tensor_new(g, 4, ws), *b = ct_tensor_new(g, 1, bs);
        fill(x->data, x->numel, 1), fill(w->data, w->numel, 2), fill(b->data, b->numel, 3);
        x->flags |= CT_TENSOR_REQUIRES_GRAD, w->flags |= CT_TENSOR_REQUIRES_GRAD;
        ct_tensor *y = ct_conv2d(g, x, w, b, t.stride, t.pad);
        ct_tensor *l = ct_sum(g, ct_mul(g, y, y));
        ck_assert_int_eq(ct_graph_backward(g, l), CT_OK);
        res[run][0] = malloc(sizeof(float) * (size_t)y->numel);
        res[run][1] = malloc(sizeof(float) * (size_t)x->numel);
        res[run][2] = malloc(sizeof(float) * (size_t)w->numel);
        memcpy(res[run][0], y->data, sizeof(float) * (size_t)y->numel);
        memcpy(res[run][1], x->grad, sizeof(float) * (size_t)x->numel);
        memcpy(res[run][2], w->grad, sizeof(float) * (size_t)w->numel);
        int64_t sizes[3] = {y->numel, x->numel, w->numel};
        if (run)
            for (int k = 0; k < 3; k++)
                ck_assert_msg(memcmp(res[0][k], res[1][k], sizeof(float) * (size_t)sizes[k]) == 0,
                              "result %d differs between 1 and 3 threads", k);
        ct_graph_free(g);
        ct_threadpool_free(pool);
    }
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++) free(res[r][k]);
}
END_TEST

START_TEST(bad_shapes_fail) {
    ct_graph *g = ct_test_graph_new();
    ct_tensor *x = ct_tensor_new4(g, 1, 3, 5, 5), *w = ct_tensor_new4(g, 2, 4, 3, 3);
    ck_assert_ptr_null(ct_conv2d(g, x, w, NULL, 1, 1));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "channels"));
    ct_graph_reset(g); /* arena tensors die at reset: make new ones */
    x = ct_tensor_new4(g, 1, 3, 5, 5);
    ct_tensor *w2 = ct_tensor_new4(g, 2, 3, 7, 7);
    ck_assert_ptr_null(ct_conv2d(g, x, w2, NULL, 1, 0));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ct_graph_reset(g);
    x = ct_tensor_new4(g, 1, 3, 5, 5);
    ck_assert_ptr_null(ct_conv2d(g, x, ct_tensor_new4(g, 2, 3, 3, 3), NULL, 0, 1));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_INVALID);
    ct_graph_free(g);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_matches_naive);
    tcase_add_test(tc, gradients);
    tcase_add_test(tc, gradients_accumulate);
    tcase_add_test(tc, thread_count_independent);
    tcase_add_test(tc, bad_shapes_fail);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

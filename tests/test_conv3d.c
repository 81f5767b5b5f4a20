/* ct_conv3d: forward against a naive reference, finite-difference
 * gradients (data, weight, bias) for temporal (kt,1,1), full 3-D, strided
 * and padded kernels, accumulation into an existing gradient,
 * thread-count independence, and shape errors. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_gradcheck.h"
#include "ct_test.h"

typedef struct c3_case {
    int64_t n, c, t, h, w, o, kt, kh, kw;
    int stride[3], pad[3];
    bool bias;
} c3_case;

static const c3_case cases[] = {
    {2, 3, 5, 4, 4, 2, 3, 1, 1, {1, 1, 1}, {1, 0, 0}, false}, /* temporal, the clip encoder's */
    {1, 2, 4, 5, 5, 3, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true},  /* full 3-D */
    {2, 2, 6, 5, 6, 2, 3, 3, 2, {2, 2, 1}, {1, 0, 1}, true},  /* strides and mixed padding */
    {3, 1, 3, 3, 3, 2, 1, 1, 1, {1, 1, 1}, {0, 0, 0}, true},  /* 1x1x1 */
    {9, 2, 3, 2, 2, 2, 3, 1, 1, {1, 1, 1}, {1, 0, 0}, false}, /* more samples than groups */
};

static void out_size(const c3_case *t, int64_t *to, int64_t *ho, int64_t *wo) {
    *to = (t->t + 2 * t->pad[0] - t->kt) / t->stride[0] + 1;
    *ho = (t->h + 2 * t->pad[1] - t->kh) / t->stride[1] + 1;
    *wo = (t->w + 2 * t->pad[2] - t->kw) / t->stride[2] + 1;
}

/* y[n,o,a,b,c] = bias[o] + sum x[n,ci,a*s-p+i,b*s-p+j,c*s-p+k] w[o,ci,i,j,k] */
static void naive(const c3_case *t, const float *x, const float *w, const float *b, double *y) {
    int64_t to, ho, wo;
    out_size(t, &to, &ho, &wo);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t o = 0; o < t->o; o++)
            for (int64_t a = 0; a < to; a++)
                for (int64_t bb = 0; bb < ho; bb++)
                    for (int64_t cc = 0; cc < wo; cc++) {
                        double s = b ? b[o] : 0.0;
                        for (int64_t ci = 0; ci < t->c; ci++)
                            for (int64_t i = 0; i < t->kt; i++)
                                for (int64_t j = 0; j < t->kh; j++)
                                    for (int64_t k = 0; k < t->kw; k++) {
                                        int64_t it = a * t->stride[0] - t->pad[0] + i, ih = bb * t->stride[1] - t->pad[1] + j,
                                                iw = cc * t->stride[2] - t->pad[2] + k;
                                        if (it < 0 || it >= t->t || ih < 0 || ih >= t->h || iw < 0 || iw >= t->w) continue;
                                        s += (double)x[(((n * t->c + ci) * t->t + it) * t->h + ih) * t->w + iw] *
                                             w[(((o * t->c + ci) * t->kt + i) * t->kh + j) * t->kw + k];
                                    }
                        y[(((n * t->o + o) * to + a) * ho + bb) * wo + cc] = s;
                    }
}

static void fill(float *p, int64_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

START_TEST(forward_matches_naive) {
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const c3_case *t = &cases[ci];
        ct_graph *g = ct_graph_new(0);
        int64_t xs[5] = {t->n, t->c, t->t, t->h, t->w}, ws[5] = {t->o, t->c, t->kt, t->kh, t->kw}, bs[1] = {t->o};
        ct_tensor *x = ct_tensor_new(g, 5, xs), *w = ct_tensor_new(g, 5, ws), *b = ct_tensor_new(g, 1, bs);
        fill(x->data, x->numel, 1), fill(w->data, w->numel, 2), fill(b->data, b->numel, 3);
        ct_tensor *y = ct_conv3d(g, x, w, t->bias ? b : NULL, t->stride, t->pad);
        ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
        int64_t to, ho, wo;
        out_size(t, &to, &ho, &wo);
        ck_assert_int_eq(y->ndim, 5);
        ck_assert_int_eq(y->shape[1], t->o);
        ck_assert_int_eq(y->shape[2], to);
        ck_assert_int_eq(y->shape[3], ho);
        ck_assert_int_eq(y->shape[4], wo);
        double *ref = malloc(sizeof(double) * (size_t)y->numel);
        naive(t, x->data, w->data, t->bias ? b->data : NULL, ref);
        for (int64_t i = 0; i < y->numel; i++)
            ck_assert_msg(fabs(y->data[i] - ref[i]) < 1e-4 * (1 + fabs(ref[i])), "case %zu: y[%lld] = %g, want %g", ci,
                          (long long)i, y->data[i], ref[i]);
        free(ref);
        ct_graph_free(g);
    }
}
END_TEST

static ct_tensor *b_conv(ct_graph *g, ct_tensor **in, void *ctx) {
    const c3_case *t = ctx;
    return ct_conv3d(g, in[0], in[1], t->bias ? in[2] : NULL, t->stride, t->pad);
}

/* x feeds two convolutions: the second backward accumulates into x's gradient. */
static ct_tensor *b_conv_twice(ct_graph *g, ct_tensor **in, void *ctx) {
    const c3_case *t = ctx;
    return ct_mul(g, ct_conv3d(g, in[0], in[1], NULL, t->stride, t->pad), ct_conv3d(g, in[0], in[2], NULL, t->stride, t->pad));
}

static void check_grad(const c3_case *t, ct_gradcheck_fn fn, bool two_weights) {
    int64_t xs[5] = {t->n, t->c, t->t, t->h, t->w}, ws[5] = {t->o, t->c, t->kt, t->kh, t->kw}, bs[1] = {t->o};
    ct_tensor *in[3] = {ct_gradcheck_input(5, xs, 11), ct_gradcheck_input(5, ws, 12),
                        two_weights ? ct_gradcheck_input(5, ws, 13) : ct_gradcheck_input(1, bs, 13)};
    int n_in = two_weights || t->bias ? 3 : 2;
    char report[2048];
    int bad = ct_gradcheck(fn, in, n_in, (void *)t, 1e-2, 1e-2, report, sizeof report);
    for (int i = 0; i < 3; i++) ct_gradcheck_input_free(in[i]);
    ck_assert_msg(bad == 0, "conv3d k%lldx%lldx%lld: %s", (long long)t->kt, (long long)t->kh, (long long)t->kw, report);
}

START_TEST(gradients) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_grad(&cases[i], b_conv, false);
}
END_TEST

START_TEST(gradients_accumulate) {
    check_grad(&cases[0], b_conv_twice, true);
    check_grad(&cases[2], b_conv_twice, true);
}
END_TEST

/* Bit-identical results and gradients with 1 and 3 threads (BLAS serial,
 * so the op's own groups run on the pool). */
START_TEST(thread_count_independent) {
    openblas_set_num_threads(1);
    const c3_case t = {11, 4, 6, 5, 5, 6, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true};
    float *res[2][3];
    for (int run = 0; run < 2; run++) {
        ct_error err = CT_ERROR_INIT;
        ct_threadpool *pool = run ? ct_threadpool_new(3, &err) : NULL;
        ck_assert(!run || pool != NULL);
        ct_graph *g = ct_graph_new(0);
        ct_graph_set_pool(g, pool);
        int64_t xs[5] = {t.n, t.c, t.t, t.h, t.w}, ws[5] = {t.o, t.c, t.kt, t.kh, t.kw}, bs[1] = {t.o};
        ct_tensor *x = ct_tensor_new(g, 5, xs), *w = ct_tensor_new(g, 5, ws), *b = ct_tensor_new(g, 1, bs);
        fill(x->data, x->numel, 1), fill(w->data, w->numel, 2), fill(b->data, b->numel, 3);
        x->flags |= CT_TENSOR_REQUIRES_GRAD, w->flags |= CT_TENSOR_REQUIRES_GRAD;
        ct_tensor *y = ct_conv3d(g, x, w, b, t.stride, t.pad);
        ck_assert_int_eq(ct_graph_backward(g, ct_sum(g, ct_mul(g, y, y))), CT_OK);
        int64_t sizes[3] = {y->numel, x->numel, w->numel};
        const float *src[3] = {y->data, x->grad, w->grad};
        for (int k = 0; k < 3; k++) {
            res[run][k] = malloc(sizeof(float) * (size_t)sizes[k]);
            memcpy(res[run][k], src[k], sizeof(float) * (size_t)sizes[k]);
            if (run)
                ck_assert_msg(memcmp(res[0][k], res[1][k], sizeof(float) * (size_t)sizes[k]) == 0,
                              "result %d differs between 1 and 3 threads", k);
        }
        ct_graph_free(g);
        ct_threadpool_free(pool);
    }
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++) free(res[r][k]);
}
END_TEST

START_TEST(bad_shapes_fail) {
    ct_graph *g = ct_graph_new(0);
    const int one[3] = {1, 1, 1}, zero[3] = {0, 0, 0}, neg[3] = {1, -1, 0};
    int64_t xs[5] = {1, 3, 4, 5, 5}, ws[5] = {2, 4, 3, 3, 3}, w4[4] = {2, 3, 3, 3};
    ct_tensor *x = ct_tensor_new(g, 5, xs), *w = ct_tensor_new(g, 5, ws);
    ck_assert_ptr_null(ct_conv3d(g, x, w, NULL, one, zero));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "channels"));
    ct_graph_reset(g);
    x = ct_tensor_new(g, 5, xs);
    ck_assert_ptr_null(ct_conv3d(g, x, ct_tensor_new(g, 4, w4), NULL, one, zero));
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "5-D"));
    ct_graph_reset(g);
    int64_t big[5] = {2, 3, 7, 1, 1};
    x = ct_tensor_new(g, 5, xs);
    ck_assert_ptr_null(ct_conv3d(g, x, ct_tensor_new(g, 5, big), NULL, one, zero));
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "kernel size 7"));
    ct_graph_reset(g);
    int64_t ok[5] = {2, 3, 1, 1, 1};
    x = ct_tensor_new(g, 5, xs);
    ck_assert_ptr_null(ct_conv3d(g, x, ct_tensor_new(g, 5, ok), NULL, one, neg));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_INVALID);
    ct_graph_free(g);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("conv3d");
    TCase *tc = tcase_create("conv3d");
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

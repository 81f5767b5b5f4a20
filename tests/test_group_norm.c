/* ct_group_norm: forward against a double-precision reference (groups 1,
 * 2 and C; affine on and off), finite-difference gradients of x, weight
 * and bias, statistics that never cross samples, thread-count
 * independence, argument errors. */
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

static void check_forward(int groups, bool affine) {
    const int64_t N = 3, C = 4, H = 3, W = 5, S = H * W, cg = C / groups;
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new4(g, N, C, H, W), *w = ct_tensor_new1(g, C), *b = ct_tensor_new1(g, C);
    fill(x->data, x->numel, 1, -2.0f, 3.0f);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] += 50.0f; /* offset mean: the shifted sums */
    fill(w->data, C, 2, 0.5f, 1.5f), fill(b->data, C, 3, -0.5f, 0.5f);
    const float eps = 1e-5f;
    ct_tensor *y = ct_group_norm(g, x, groups, affine ? w : NULL, affine ? b : NULL, eps);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    ck_assert(ct_tensor_same_shape(x, y));
    for (int64_t n = 0; n < N; n++)
        for (int gr = 0; gr < groups; gr++) {
            const float *xs = x->data + (n * C + gr * cg) * S;
            double m = 0, v = 0;
            for (int64_t i = 0; i < cg * S; i++) m += xs[i];
            m /= (double)(cg * S);
            for (int64_t i = 0; i < cg * S; i++) v += (xs[i] - m) * (xs[i] - m);
            v /= (double)(cg * S);
            for (int64_t i = 0; i < cg * S; i++) {
                int64_t c = gr * cg + i / S;
                double want = (xs[i] - m) / sqrt(v + eps);
                if (affine) want = want * w->data[c] + b->data[c];
                float got = y->data[(n * C + gr * cg) * S + i];
                ck_assert_msg(fabs(got - want) < 1e-3, "groups %d: y = %g, want %g", groups, got, want);
            }
        }
    ct_graph_free(g);
}

START_TEST(forward_matches_reference) {
    for (int affine = 0; affine < 2; affine++) {
        check_forward(1, affine);
        check_forward(2, affine);
        check_forward(4, affine);
    }
}
END_TEST

/* ---- gradients ---- */

typedef struct gn_ctx {
    int groups;
    bool affine;
} gn_ctx;

static ct_tensor *b_gn(ct_graph *g, ct_tensor **in, void *ctx) {
    const gn_ctx *c = ctx;
    return ct_group_norm(g, in[0], c->groups, c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, 1e-5f);
}

static void check_grad(int ndim, const int64_t *xs, int groups, bool affine) {
    const int64_t C = xs[1];
    ct_tensor *in[3] = {ct_gradcheck_input(ndim, xs, 21), ct_gradcheck_input(1, &C, 22),
                        ct_gradcheck_input(1, &C, 23)};
    for (int64_t i = 0; i < C; i++) in[1]->data[i] += 1.5f;
    gn_ctx c = {groups, affine};
    char report[2048];
    int bad = ct_gradcheck(b_gn, in, affine ? 3 : 1, &c, 1e-3, 2e-2, report, sizeof report);
    for (int i = 0; i < 3; i++) ct_gradcheck_input_free(in[i]);
    ck_assert_msg(bad == 0, "group_norm groups %d%s: %s", groups, affine ? "" : " no affine", report);
}

START_TEST(gradients) {
    const int64_t x4[4] = {3, 4, 3, 2}, x3[3] = {2, 6, 5}, x2[2] = {4, 6};
    check_grad(4, x4, 2, true);
    check_grad(4, x4, 1, true);
    check_grad(4, x4, 4, true);
    check_grad(4, x4, 2, false);
    check_grad(3, x3, 3, true);
    check_grad(2, x2, 2, true); /* (N, C): groups of channels alone, as LayerNorm over features for groups 1 */
}
END_TEST

/* Changing sample 1 changes nothing of sample 0 (batch norm would). */
START_TEST(samples_are_independent) {
    const int64_t N = 2, C = 4, S = 9;
    float y0[36];
    for (int pass = 0; pass < 2; pass++) {
        ct_graph *g = ct_graph_new(0);
        ct_tensor *x = ct_tensor_new4(g, N, C, 3, 3);
        fill(x->data, x->numel, 7, -1.0f, 1.0f);
        if (pass) fill(x->data + C * S, C * S, 8, -5.0f, 9.0f);
        ct_tensor *y = ct_group_norm(g, x, 2, NULL, NULL, 1e-5f);
        ck_assert_ptr_nonnull(y);
        if (!pass) memcpy(y0, y->data, sizeof y0);
        else ck_assert(memcmp(y0, y->data, sizeof y0) == 0);
        ct_graph_free(g);
    }
}
END_TEST

/* One and four threads give bit-identical outputs and gradients. */
START_TEST(thread_count_independent) {
    const int64_t N = 64, C = 32, H = 16, W = 16; /* big enough to split over the pool */
    float *out[2], *gx[2], *gw[2];
    for (int t = 0; t < 2; t++) {
        ct_error err = {0};
        ct_threadpool *pool = ct_threadpool_new(t ? 4 : 1, &err);
        ck_assert_ptr_nonnull(pool);
        ct_graph *g = ct_graph_new(0);
        ct_graph_set_pool(g, pool);
        ct_tensor *x = ct_tensor_new4(g, N, C, H, W), *w = ct_tensor_new1(g, C), *b = ct_tensor_new1(g, C);
        fill(x->data, x->numel, 11, -1.0f, 2.0f), fill(w->data, C, 12, 0.5f, 1.5f), fill(b->data, C, 13, -1, 1);
        x->flags |= CT_TENSOR_REQUIRES_GRAD, w->flags |= CT_TENSOR_REQUIRES_GRAD, b->flags |= CT_TENSOR_REQUIRES_GRAD;
        ct_tensor *y = ct_group_norm(g, x, 8, w, b, 1e-5f);
        ck_assert_int_eq(ct_graph_backward(g, ct_sum(g, ct_mul(g, y, y))), CT_OK);
        out[t] = malloc((size_t)x->numel * sizeof(float)), gx[t] = malloc((size_t)x->numel * sizeof(float));
        gw[t] = malloc((size_t)C * sizeof(float));
        memcpy(out[t], y->data, (size_t)x->numel * sizeof(float));
        memcpy(gx[t], x->grad, (size_t)x->numel * sizeof(float));
        memcpy(gw[t], w->grad, (size_t)C * sizeof(float));
        ct_graph_free(g);
        ct_threadpool_free(pool);
    }
    const size_t bytes = (size_t)(N * C * H * W) * sizeof(float);
    ck_assert(memcmp(out[0], out[1], bytes) == 0);
    ck_assert(memcmp(gx[0], gx[1], bytes) == 0);
    ck_assert(memcmp(gw[0], gw[1], (size_t)C * sizeof(float)) == 0);
    for (int t = 0; t < 2; t++) free(out[t]), free(gx[t]), free(gw[t]);
}
END_TEST

START_TEST(argument_errors) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_zeros(g, 4, (int64_t[]){2, 6, 2, 2}), *w = ct_tensor_zeros(g, 1, (int64_t[]){5});
    ck_assert_ptr_null(ct_group_norm(g, x, 4, NULL, NULL, 1e-5f));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "6 channels cannot be split into 4 groups"));
    ct_graph_reset(g);
    x = ct_tensor_zeros(g, 4, (int64_t[]){2, 6, 2, 2});
    ck_assert_ptr_null(ct_group_norm(g, x, 0, NULL, NULL, 1e-5f));
    ct_graph_reset(g);
    x = ct_tensor_zeros(g, 4, (int64_t[]){2, 6, 2, 2});
    ck_assert_ptr_null(ct_group_norm(g, x, 3, NULL, NULL, 0.0f));
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "eps"));
    ct_graph_reset(g);
    x = ct_tensor_zeros(g, 4, (int64_t[]){2, 6, 2, 2});
    w = ct_tensor_zeros(g, 1, (int64_t[]){5});
    ck_assert_ptr_null(ct_group_norm(g, x, 3, w, NULL, 1e-5f));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ct_graph_reset(g);
    x = ct_tensor_zeros(g, 1, (int64_t[]){6});
    ck_assert_ptr_null(ct_group_norm(g, x, 3, NULL, NULL, 1e-5f));
    ck_assert_ptr_null(ct_group_norm(g, NULL, 3, NULL, NULL, 1e-5f));
    ct_graph_free(g);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("group_norm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_matches_reference);
    tcase_add_test(tc, gradients);
    tcase_add_test(tc, samples_are_independent);
    tcase_add_test(tc, thread_count_independent);
    tcase_add_test(tc, argument_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

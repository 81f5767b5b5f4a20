/* Pooling ops: forward against naive references (padding, stride, the
 * average divisor without padding), finite-difference gradients. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_gradcheck.h"
#include "ct_test.h"

typedef struct pool_case {
    int k, stride, pad;
} pool_case;

static const pool_case cases[] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {3, 3, 0}};

static void check_forward(const pool_case *pc, bool is_max) {
    const int64_t N = 2, C = 3, H = 7, W = 6;
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new4(g, N, C, H, W);
    ct_rng r;
    ct_rng_init(&r, 5, 0);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = ct_rng_uniform_range(&r, -1, 1);
    ct_tensor *y = is_max ? ct_maxpool2d(g, x, pc->k, pc->stride, pc->pad) : ct_avgpool2d(g, x, pc->k, pc->stride, pc->pad);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    int64_t ho = (H + 2 * pc->pad - pc->k) / pc->stride + 1, wo = (W + 2 * pc->pad - pc->k) / pc->stride + 1;
    ck_assert_int_eq(y->shape[2], ho);
    ck_assert_int_eq(y->shape[3], wo);
    for (int64_t pl = 0; pl < N * C; pl++)
        for (int64_t oy = 0; oy < ho; oy++)
            for (int64_t ox = 0; ox < wo; ox++) {
                double best = -DBL_MAX, sum = 0;
                int cnt = 0;
                for (int ky = 0; ky < pc->k; ky++)
                    for (int kx = 0; kx < pc->k; kx++) {
                        int64_t iy = oy * pc->stride - pc->pad + ky, ix = ox * pc->stride - pc->pad + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        double v = x->data[(pl * H + iy) * W + ix];
                        if (v > best) best = v;
                        sum += v, cnt++;
                    }
                double want = is_max ? best : sum / cnt;
                double got = y->data[(pl * ho + oy) * wo + ox];
                ck_assert_msg(fabs(got - want) < 1e-5, "%s k%d s%d p%d: got %g want %g", is_max ? "max" : "avg",
                              pc->k, pc->stride, pc->pad, got, want);
            }
    ct_graph_free(g);
}

START_TEST(forward_matches_naive) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        check_forward(&cases[i], true);
        check_forward(&cases[i], false);
    }
}
END_TEST

static ct_tensor *b_max(ct_graph *g, ct_tensor **in, void *ctx) {
    const pool_case *pc = ctx;
    return ct_maxpool2d(g, in[0], pc->k, pc->stride, pc->pad);
}
static ct_tensor *b_avg(ct_graph *g, ct_tensor **in, void *ctx) {
    const pool_case *pc = ctx;
    return ct_avgpool2d(g, in[0], pc->k, pc->stride, pc->pad);
}
static ct_tensor *b_gap(ct_graph *g, ct_tensor **in, void *ctx) {
    (void)ctx;
    return ct_global_avgpool(g, in[0]);
}

static void check_grad(ct_gradcheck_fn fn, const pool_case *pc) {
    const int64_t xs[4] = {2, 2, 6, 5};
    ct_tensor *x = ct_gradcheck_input(4, xs, 77);
    char report[2048];
    /* eps well below the gap between distinct random values, so the max
     * does not switch element inside a difference. */
    int bad = ct_gradcheck(fn, &x, 1, (void *)pc, 1e-4, 2e-2, report, sizeof report);
    ct_gradcheck_input_free(x);
    ck_assert_msg(bad == 0, "%s", report);
}

START_TEST(gradients) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        check_grad(b_max, &cases[i]);
        check_grad(b_avg, &cases[i]);
    }
    check_grad(b_gap, NULL);
}
END_TEST

START_TEST(global_avgpool_shape_and_value) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new4(g, 2, 3, 4, 5);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)(i / 20); /* plane index */
    ct_tensor *y = ct_global_avgpool(g, x);
    ck_assert_int_eq(y->ndim, 2);
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[1], 3);
    for (int64_t i = 0; i < 6; i++) ck_assert_float_eq_tol(y->data[i], (float)i, 1e-6f);
    ct_graph_free(g);
}
END_TEST

START_TEST(argument_errors) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new2(g, 4, 4);
    ck_assert_ptr_null(ct_maxpool2d(g, x, 2, 2, 0));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ct_graph_reset(g);
    x = ct_tensor_new4(g, 1, 1, 4, 4);
    ck_assert_ptr_null(ct_avgpool2d(g, x, 2, 0, 0));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_INVALID);
    ct_graph_free(g);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_test(tc, forward_matches_naive);
    tcase_add_test(tc, gradients);
    tcase_add_test(tc, global_avgpool_shape_and_value);
    tcase_add_test(tc, argument_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

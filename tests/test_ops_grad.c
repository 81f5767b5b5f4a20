/* Finite-difference gradient checks for the engine-core ops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_gradcheck.h"
#include "ct_test.h"

#define EPS 1e-3
#define TOL 2e-2

/* Run the checker on freshly made random inputs of the given shapes. */
static void check(ct_gradcheck_fn build, void *ctx, int n_in, const int *ndims, const int64_t (*shapes)[5],
                  float lo_shift) {
    ct_tensor *in[4];
    for (int i = 0; i < n_in; i++) {
        in[i] = ct_gradcheck_input(ndims[i], shapes[i], 100 + (uint64_t)i);
        ck_assert_ptr_nonnull(in[i]);
        for (int64_t k = 0; k < in[i]->numel; k++) in[i]->data[k] += lo_shift;
    }
    char report[2048];
    int bad = ct_gradcheck(build, in, n_in, ctx, EPS, TOL, report, sizeof report);
    for (int i = 0; i < n_in; i++) ct_gradcheck_input_free(in[i]);
    ck_assert_msg(bad == 0, "%s", report);
}

static void check1(ct_gradcheck_fn build, void *ctx, int ndim, const int64_t *shape) {
    int64_t s[1][5] = {{0}};
    memcpy(s[0], shape, (size_t)ndim * sizeof *shape);
    check(build, ctx, 1, &ndim, (const int64_t(*)[5])s, 0.0f);
}

/* ---- elementwise ---- */

static ct_tensor *b_relu(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_relu(g, x[0]); }
static ct_tensor *b_sigmoid(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_sigmoid(g, x[0]); }
static ct_tensor *b_tanh(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_tanh(g, x[0]); }
static ct_tensor *b_exp(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_exp(g, x[0]); }
static ct_tensor *b_ln(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_ln(g, x[0]); }
static ct_tensor *b_scale(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_scale(g, x[0], -2.5f); }
static ct_tensor *b_add(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_add(g, x[0], x[1]); }
static ct_tensor *b_mul(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_mul(g, x[0], x[1]); }
static ct_tensor *b_add_relu(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_add_relu(g, x[0], x[1]); }
static ct_tensor *b_square(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_mul(g, x[0], x[0]); }
static ct_tensor *b_add_bias(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_add_bias(g, x[0], x[1]); }

START_TEST(grad_unary) {
    const int64_t s[] = {3, 7};
    check1(b_relu, NULL, 2, s);
    check1(b_sigmoid, NULL, 2, s);
    check1(b_tanh, NULL, 2, s);
    check1(b_exp, NULL, 2, s);
    check1(b_scale, NULL, 2, s);
    check1(b_square, NULL, 2, s); /* one tensor used twice */
    int nd = 2;
    int64_t sh[1][5] = {{3, 7}};
    check(b_ln, NULL, 1, &nd, (const int64_t(*)[5])sh, 1.5f); /* keep x > 0 */
}
END_TEST

START_TEST(grad_binary) {
    int nd[2] = {3, 3};
    int64_t sh[2][5] = {{2, 3, 4}, {2, 3, 4}};
    check(b_add, NULL, 2, nd, (const int64_t(*)[5])sh, 0.0f);
    check(b_mul, NULL, 2, nd, (const int64_t(*)[5])sh, 0.0f);
    check(b_add_relu, NULL, 2, nd, (const int64_t(*)[5])sh, 0.0f);
    int nb[2] = {4, 1};
    int64_t sb[2][5] = {{2, 3, 2, 2}, {3}};
    check(b_add_bias, NULL, 2, nb, (const int64_t(*)[5])sb, 0.0f);
}
END_TEST

/* ---- linear algebra ---- */

static ct_tensor *b_matmul(ct_graph *g, ct_tensor **x, void *c) {
    const int *t = c;
    return ct_matmul(g, x[0], x[1], t[0], t[1]);
}
static ct_tensor *b_linear(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_linear(g, x[0], x[1], x[2]); }
static ct_tensor *b_linear_nb(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_linear(g, x[0], x[1], NULL); }

START_TEST(grad_matmul) {
    int nd[2] = {2, 2};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int t[2] = {ta, tb};
            int64_t m = 3, k = 4, n = 5;
            int64_t sh[2][5] = {{ta ? k : m, ta ? m : k}, {tb ? n : k, tb ? k : n}};
            check(b_matmul, t, 2, nd, (const int64_t(*)[5])sh, 0.0f);
        }
}
END_TEST

START_TEST(grad_linear) {
    int nd[3] = {2, 2, 1};
    int64_t sh[3][5] = {{4, 5}, {3, 5}, {3}};
    check(b_linear, NULL, 3, nd, (const int64_t(*)[5])sh, 0.0f);
    check(b_linear_nb, NULL, 2, nd, (const int64_t(*)[5])sh, 0.0f);
}
END_TEST

/* ---- shape ---- */

static ct_tensor *b_reshape(ct_graph *g, ct_tensor **x, void *c) {
    (void)c;
    ct_tensor *y = ct_reshape(g, x[0], 2, (const int64_t[]){-1, 6});
    return ct_mul(g, y, y); /* a nonlinear use so the view's gradient matters */
}
static ct_tensor *b_permute(ct_graph *g, ct_tensor **x, void *c) { return ct_permute(g, x[0], (const int *)c); }
static ct_tensor *b_concat(ct_graph *g, ct_tensor **x, void *c) {
    int dim = *(int *)c;
    ct_tensor *xs[5] = {x[0], x[1], x[0], x[1], x[0]}; /* more than the tape's 4 inputs, with repeats */
    return ct_concat(g, xs, 5, dim);
}
static ct_tensor *b_slice(ct_graph *g, ct_tensor **x, void *c) {
    (void)c;
    return ct_slice(g, x[0], 1, 1, 2);
}
static ct_tensor *b_index_select(ct_graph *g, ct_tensor **x, void *c) {
    (void)c;
    const int64_t idx[] = {2, 0, 2, 1};
    return ct_index_select(g, x[0], idx, 4);
}
static ct_tensor *b_gather(ct_graph *g, ct_tensor **x, void *c) {
    (void)c;
    const int64_t idx[] = {3, 0, 4};
    return ct_gather(g, x[0], idx);
}

START_TEST(grad_shape) {
    const int64_t s234[] = {2, 3, 4};
    check1(b_reshape, NULL, 3, s234);
    int perm[3] = {2, 0, 1};
    check1(b_permute, perm, 3, s234);
    const int64_t s5[] = {2, 3, 1, 2, 2};
    int perm5[5] = {4, 2, 0, 3, 1};
    check1(b_permute, perm5, 5, s5);
    int nd[2] = {3, 3};
    for (int dim = 0; dim < 3; dim++) {
        int64_t sh[2][5] = {{2, 3, 2}, {2, 3, 2}};
        sh[1][dim] = 1;
        check(b_concat, &dim, 2, nd, (const int64_t(*)[5])sh, 0.0f);
    }
    const int64_t s43[] = {3, 4, 2};
    check1(b_slice, NULL, 3, s43);
    const int64_t s32[] = {3, 2, 2};
    check1(b_index_select, NULL, 3, s32);
    const int64_t s35[] = {3, 5};
    check1(b_gather, NULL, 2, s35);
}
END_TEST

/* ---- reductions ---- */

static ct_tensor *b_sum(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_sum(g, x[0]); }
static ct_tensor *b_mean(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_mean(g, x[0]); }
static ct_tensor *b_softmax(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_softmax(g, x[0]); }
static ct_tensor *b_log_softmax(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_log_softmax(g, x[0]); }
static ct_tensor *b_logsumexp(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_logsumexp(g, x[0]); }
static ct_tensor *b_l2n(ct_graph *g, ct_tensor **x, void *c) { (void)c; return ct_l2_normalize(g, x[0], 1e-8f); }

START_TEST(grad_reduce) {
    const int64_t s[] = {4, 6};
    check1(b_sum, NULL, 2, s);
    check1(b_mean, NULL, 2, s);
    check1(b_softmax, NULL, 2, s);
    check1(b_log_softmax, NULL, 2, s);
    check1(b_logsumexp, NULL, 2, s);
    check1(b_l2n, NULL, 2, s);
}
END_TEST

/* ---- losses ---- */

static ct_tensor *b_ce(ct_graph *g, ct_tensor **x, void *c) { return ct_cross_entropy(g, x[0], (const int32_t *)c); }
static ct_tensor *b_ce_soft(ct_graph *g, ct_tensor **x, void *c) {
    return ct_cross_entropy_soft(g, x[0], (const float *)c);
}
typedef struct {
    const int32_t *group;
    float t;
} ntx_args;
static ct_tensor *b_ntx(ct_graph *g, ct_tensor **x, void *c) {
    const ntx_args *a = c;
    return ct_nt_xent(g, ct_l2_normalize(g, x[0], 1e-8f), a->group, a->t);
}
static ct_tensor *b_ntx_raw(ct_graph *g, ct_tensor **x, void *c) {
    const ntx_args *a = c;
    return ct_nt_xent(g, x[0], a->group, a->t);
}
typedef struct {
    ct_tensor *neg;
    float t;
} nce_args;
static ct_tensor *b_nce(ct_graph *g, ct_tensor **x, void *c) {
    const nce_args *a = c;
    return ct_info_nce(g, x[0], x[1], a->neg, a->t);
}

START_TEST(grad_losses) {
    const int64_t s[] = {4, 5};
    const int32_t labels[] = {1, -1, 4, 0}; /* one ignored row */
    check1(b_ce, (void *)labels, 2, s);
    const float targets[20] = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 1, 0, 0, 0, 0, 0, 0.5f, 0.5f, 0, 0, 0.1f, 0.2f, 0.3f, 0.4f, 0};
    check1(b_ce_soft, (void *)targets, 2, s);

    const int32_t groups[] = {0, 1, 2, 0, 1, 2, 2}; /* pairs and one triple */
    ntx_args na = {groups, 0.5f};
    const int64_t sz[] = {7, 3};
    check1(b_ntx, &na, 2, sz);
    check1(b_ntx_raw, &na, 2, sz);
    na.t = 0.1f;
    check1(b_ntx, &na, 2, sz);

    ct_tensor *neg = ct_gradcheck_input(2, (const int64_t[]){6, 3}, 7);
    nce_args ca = {neg, 0.2f};
    int nd[2] = {2, 2};
    int64_t sh[2][5] = {{4, 3}, {4, 3}};
    check(b_nce, &ca, 2, nd, (const int64_t(*)[5])sh, 0.0f);
    ca.neg = NULL;
    check(b_nce, &ca, 2, nd, (const int64_t(*)[5])sh, 0.0f);
    ct_gradcheck_input_free(neg);
}
END_TEST

/* The checker itself must catch a wrong gradient: a deliberately broken op. */
static void bad_backward(ct_graph *g, ct_node *node) {
    float *gx = ct_tensor_grad(g, node->in[0]);
    for (int64_t i = 0; i < node->in[0]->numel; i++) gx[i] += 0.5f * node->out->grad[i]; /* should be 2x */
}
static ct_tensor *b_broken(ct_graph *g, ct_tensor **x, void *c) {
    (void)c;
    ct_tensor *y = ct_tensor_new(g, x[0]->ndim, x[0]->shape);
    for (int64_t i = 0; i < y->numel; i++) y->data[i] = 2.0f * x[0]->data[i];
    ct_graph_record(g, "broken", bad_backward, y, &x[0], 1);
    return y;
}

START_TEST(checker_catches_errors) {
    ct_tensor *x = ct_gradcheck_input(1, (const int64_t[]){6}, 1);
    char report[512];
    int bad = ct_gradcheck(b_broken, &x, 1, NULL, EPS, TOL, report, sizeof report);
    ct_gradcheck_input_free(x);
    ck_assert_int_ge(bad, 4); /* an element whose reduction weight is ~0 may pass */
    ck_assert_ptr_nonnull(strstr(report, "differ"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, grad_unary);
    tcase_add_test(tc, grad_binary);
    tcase_add_test(tc, grad_matmul);
    tcase_add_test(tc, grad_linear);
    tcase_add_test(tc, grad_shape);
    tcase_add_test(tc, grad_reduce);
    tcase_add_test(tc, grad_losses);
    tcase_add_test(tc, checker_catches_errors);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

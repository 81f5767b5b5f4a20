/* The per-step graph: arena reuse, tape, backward rules, sticky errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_test.h"

static ct_tensor *leaf(ct_graph *g, int64_t n, const float *v) {
    ct_tensor *t = ct_tensor_new1(g, n);
    memcpy(t->data, v, (size_t)n * sizeof(float));
    t->flags = CT_TENSOR_REQUIRES_GRAD;
    return t;
}

START_TEST(arena_alignment_and_zeros) {
    ct_graph *g = ct_graph_new(1024);
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < 10; i++) {
        void *p = ct_graph_alloc(g, (size_t)(3 + i * 7));
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
    }
    ct_tensor *z = ct_tensor_zeros(g, 2, (const int64_t[]){3, 4});
    ck_assert_int_eq(z->numel, 12);
    ck_assert_int_eq(z->shape[2], 1); /* trailing dims are 1 */
    ck_assert_int_eq(z->node, -1);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(z->data[i], 0.0f);
    char buf[64];
    ck_assert_str_eq(ct_shape_str(z, buf, sizeof buf), "[3, 4]");
    ct_graph_free(g);
}
END_TEST

/* After one reset the arena is a single block: a second identical step
 * must reuse exactly the same addresses (no allocation). */
START_TEST(arena_steady_state_reuses_memory) {
    ct_graph *g = ct_graph_new(4096);
    void *first[3] = {0}, *second[3] = {0};
    for (int step = 0; step < 3; step++) {
        void **rec = step == 1 ? first : second;
        for (int i = 0; i < 3; i++) {
            ct_tensor *t = ct_tensor_new1(g, 100000); /* far beyond the initial block */
            ck_assert_ptr_nonnull(t);
            t->data[99999] = 1.0f;
            rec[i] = t->data;
        }
        ck_assert_uint_ge(ct_graph_arena_used(g), 3 * 400000);
        ct_graph_reset(g);
        ck_assert_uint_eq(ct_graph_arena_used(g), 0);
    }
    for (int i = 0; i < 3; i++) ck_assert_ptr_eq(first[i], second[i]);
    ck_assert_uint_ge(ct_graph_arena_peak(g), 3 * 400000);
    ct_graph_free(g);
}
END_TEST

START_TEST(backward_accumulates_reuse) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = leaf(g, 3, (const float[]){1, 2, 3});
    /* L = sum(x*x + x) -> dL/dx = 2x + 1; x is used three times. */
    ct_tensor *loss = ct_sum(g, ct_add(g, ct_mul(g, x, x), x));
    ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
    ck_assert_float_eq_tol(loss->data[0], 20.0f, 1e-5f);
    for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(x->grad[i], 2.0f * (float)(i + 1) + 1.0f, 1e-6f);
    ct_graph_free(g);
}
END_TEST

START_TEST(no_grad_and_constants) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = leaf(g, 2, (const float[]){1, 2});
    ct_tensor *c = ct_tensor_new1(g, 2); /* constant: no REQUIRES_GRAD */
    c->data[0] = 5;
    c->data[1] = 7;
    ct_tensor *y = ct_mul(g, x, c);
    ck_assert(y->flags & CT_TENSOR_REQUIRES_GRAD);
    ck_assert_int_ge(y->node, 0);
    ct_tensor *loss = ct_sum(g, y);
    ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
    ck_assert_float_eq(x->grad[0], 5.0f);
    ck_assert_float_eq(x->grad[1], 7.0f);
    ck_assert_ptr_null(c->grad); /* no gradient made for constants */

    bool was = ct_graph_set_grad(g, false);
    ck_assert(was);
    ct_tensor *z = ct_mul(g, x, c);
    ck_assert_int_eq(z->node, -1);
    ck_assert(!(z->flags & CT_TENSOR_REQUIRES_GRAD));
    ck_assert_int_eq(ct_graph_backward(g, ct_sum(g, z)), CT_ERR_INVALID); /* nothing recorded */
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "not recorded"));
    ct_graph_free(g);
}
END_TEST

START_TEST(unused_branches_are_skipped) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = leaf(g, 2, (const float[]){1, -2});
    ct_tensor *dead = ct_exp(g, x); /* recorded, never reaches the loss */
    ct_tensor *loss = ct_sum(g, ct_scale(g, x, 3.0f));
    ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
    ck_assert_ptr_null(dead->grad);
    ck_assert_float_eq(x->grad[0], 3.0f);
    ck_assert_float_eq(x->grad[1], 3.0f);
    ct_graph_free(g);
}
END_TEST

START_TEST(sticky_error) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *a = ct_tensor_new1(g, 3), *b = ct_tensor_new1(g, 4);
    ct_tensor *y = ct_add(g, a, b);
    ck_assert_ptr_null(y);
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "add: shapes [3] and [4] differ"));
    /* Later ops given NULL return NULL; the first message stays. */
    ck_assert_ptr_null(ct_relu(g, y));
    ck_assert_ptr_null(ct_sum(g, ct_relu(g, y)));
    ct_graph_fail(g, CT_ERR_INVALID, "second");
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "add:"));
    ck_assert_int_eq(ct_graph_backward(g, NULL), CT_ERR_SHAPE);
    ct_graph_reset(g);
    ck_assert_int_eq(ct_graph_status(g), CT_OK);
    ck_assert_str_eq(ct_graph_error(g), "");
    ct_graph_free(g);
}
END_TEST

START_TEST(backward_needs_scalar) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = leaf(g, 2, (const float[]){1, 2});
    ck_assert_int_eq(ct_graph_backward(g, ct_relu(g, x)), CT_ERR_SHAPE);
    ct_graph_free(g);
}
END_TEST

START_TEST(params_receive_gradients) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(1);
    ct_tensor *w = ct_params_add(p, "w", CT_PARAM_TRAINABLE, 2, (const int64_t[]){2, 3}, CT_INIT_ONES, 0, 0, &err);
    ct_tensor *b = ct_params_add(p, "b", CT_PARAM_TRAINABLE, 1, (const int64_t[]){2}, CT_INIT_ZEROS, 0,
                                 CT_PARAM_NO_DECAY, &err);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ct_graph *g = ct_graph_new(0);
    for (int step = 0; step < 2; step++) { /* gradients accumulate until zero_grad */
        ct_tensor *x = ct_tensor_new2(g, 4, 3);
        for (int i = 0; i < 12; i++) x->data[i] = (float)i;
        ct_tensor *loss = ct_sum(g, ct_linear(g, x, w, b));
        ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
        ct_graph_reset(g);
    }
    /* dL/dw[o][i] = sum_n x[n][i] = (0+3+6+9)+i*4, twice; dL/db = 4 rows, twice. */
    float *gw = ct_params_grad(p);
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(gw[o * 3 + i], 2.0f * (18.0f + 4.0f * (float)i), 1e-4f);
    ck_assert_ptr_eq(b->grad, gw + 6);
    ck_assert_float_eq(b->grad[0], 8.0f);
    ct_params_zero_grad(p);
    ck_assert_float_eq(b->grad[1], 0.0f);
    ct_graph_free(g);
    ct_params_free(p);
}
END_TEST

/* Backward releases the gradients of intermediate tensors once their
 * producer ran and reuses the memory; leaves keep theirs. */
START_TEST(backward_releases_intermediate_grads) {
    ct_graph *g = ct_graph_new(0);
    size_t peaks[3];
    for (int step = 0; step < 3; step++) {
        ct_tensor *x = ct_tensor_new1(g, 100000);
        for (int i = 0; i < 100000; i++) x->data[i] = (float)(i % 7) - 3.0f;
        x->flags = CT_TENSOR_REQUIRES_GRAD;
        ct_tensor *h = x;
        for (int k = 0; k < 6; k++) h = ct_tanh(g, ct_scale(g, h, 0.5f));
        ct_tensor *mid = h;
        ct_tensor *loss = ct_sum(g, ct_relu(g, mid));
        ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
        ck_assert_ptr_null(mid->grad);
        ck_assert_ptr_nonnull(x->grad);
        ck_assert(x->grad[4] > 0.0f); /* x = 1: a positive chain */
        peaks[step] = ct_graph_arena_peak(g);
        ct_graph_reset(g);
    }
    /* 13 activations of 400 KB + a few live gradients, not 13 more. */
    ck_assert_uint_lt(peaks[0], 20u * 400000u);
    ck_assert_uint_eq(peaks[1], peaks[2]);
    ct_graph_free(g);
}
END_TEST

START_TEST(train_flag) {
    ct_graph *g = ct_graph_new(0);
    ck_assert(ct_graph_is_train(g));
    ck_assert(ct_graph_set_train(g, false));
    ck_assert(!ct_graph_is_train(g));
    ct_graph_free(g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, arena_alignment_and_zeros);
    tcase_add_test(tc, arena_steady_state_reuses_memory);
    tcase_add_test(tc, backward_accumulates_reuse);
    tcase_add_test(tc, no_grad_and_constants);
    tcase_add_test(tc, unused_branches_are_skipped);
    tcase_add_test(tc, sticky_error);
    tcase_add_test(tc, backward_needs_scalar);
    tcase_add_test(tc, params_receive_gradients);
    tcase_add_test(tc, backward_releases_intermediate_grads);
    tcase_add_test(tc, train_flag);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

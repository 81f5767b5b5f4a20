/* The parameter store: declaration, flat buffers, initialisers, freezing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_test.h"

static ct_tensor *add(ct_params *p, const char *name, ct_param_kind kind, int ndim, const int64_t *shape,
                      ct_init init, float arg, uint32_t flags) {
    ct_error err = CT_ERROR_INIT;
    ct_tensor *t = ct_params_add(p, name, kind, ndim, shape, init, arg, flags, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    return t;
}

START_TEST(layout_and_lookup) {
    ct_params *p = ct_params_new(0);
    ct_tensor *w = add(p, "conv1.weight", CT_PARAM_TRAINABLE, 4, (const int64_t[]){8, 3, 3, 3},
                       CT_INIT_KAIMING_NORMAL, 0, 0);
    ct_tensor *rm = add(p, "bn1.running_mean", CT_PARAM_BUFFER, 1, (const int64_t[]){8}, CT_INIT_ZEROS, 0, 0);
    ct_tensor *b = add(p, "bn1.bias", CT_PARAM_TRAINABLE, 1, (const int64_t[]){8}, CT_INIT_ZEROS, 0, CT_PARAM_NO_DECAY);
    ck_assert_ptr_null(w->data); /* not before finalize */
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ck_assert_uint_eq(ct_params_numel(p), 216 + 8);
    ck_assert_uint_eq(ct_params_buffer_numel(p), 8);
    ck_assert_ptr_eq(w->data, ct_params_data(p));
    ck_assert_ptr_eq(b->data, ct_params_data(p) + 216);
    ck_assert_ptr_eq(b->grad, ct_params_grad(p) + 216);
    ck_assert_ptr_eq(rm->data, ct_params_buffer_data(p));
    ck_assert_ptr_null(rm->grad);
    ck_assert_uint_eq(ct_params_offset(p, b), 216);
    ck_assert(w->flags & CT_TENSOR_PARAM);
    ck_assert(w->flags & CT_TENSOR_REQUIRES_GRAD);
    ck_assert(rm->flags & CT_TENSOR_BUFFER);
    ck_assert(!(rm->flags & CT_TENSOR_REQUIRES_GRAD));
    ck_assert_ptr_eq(ct_params_find(p, "bn1.bias"), b);
    ck_assert_ptr_null(ct_params_find(p, "bn1"));
    ck_assert_uint_eq(ct_params_count(p), 3);
    const char *name;
    ct_param_kind kind;
    uint32_t flags;
    ck_assert_ptr_eq(ct_params_at(p, 2, &name, &kind, &flags), b);
    ck_assert_str_eq(name, "bn1.bias");
    ck_assert_int_eq(kind, CT_PARAM_TRAINABLE);
    ck_assert_uint_eq(flags, CT_PARAM_NO_DECAY);
    ck_assert_ptr_null(ct_params_at(p, 3, NULL, NULL, NULL));
    ct_params_free(p);
}
END_TEST

START_TEST(declaration_errors) {
    ct_params *p = ct_params_new(0);
    ct_error err = CT_ERROR_INIT;
    add(p, "a", CT_PARAM_TRAINABLE, 1, (const int64_t[]){3}, CT_INIT_ZEROS, 0, 0);
    ck_assert_ptr_null(ct_params_add(p, "a", CT_PARAM_TRAINABLE, 1, (const int64_t[]){3}, CT_INIT_ZEROS, 0, 0, &err));
    ck_assert_int_eq(err.code, CT_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(err.msg, "'a'"));
    ck_assert_ptr_null(ct_params_add(p, "b", CT_PARAM_TRAINABLE, 2, (const int64_t[]){3, 0}, CT_INIT_ZEROS, 0, 0, &err));
    ck_assert_int_eq(err.code, CT_ERR_SHAPE);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ck_assert_ptr_null(ct_params_add(p, "c", CT_PARAM_TRAINABLE, 1, (const int64_t[]){3}, CT_INIT_ZEROS, 0, 0, &err));
    ck_assert_int_eq(err.code, CT_ERR_INVALID);
    ct_params_free(p);
}
END_TEST

static void moments(const ct_tensor *t, double *mean, double *std, double *maxabs) {
    double s = 0, s2 = 0, m = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        s += t->data[i];
        s2 += (double)t->data[i] * t->data[i];
        if (fabs(t->data[i]) > m) m = fabs(t->data[i]);
    }
    *mean = s / (double)t->numel;
    *std = sqrt(s2 / (double)t->numel - *mean * *mean);
    *maxabs = m;
}

START_TEST(initialisers_match_pytorch) {
    ct_params *p = ct_params_new(3);
    /* torchvision ResNet conv: kaiming_normal_(mode=fan_out, relu): std = sqrt(2 / (O*KH*KW)) */
    ct_tensor *conv = add(p, "c", CT_PARAM_TRAINABLE, 4, (const int64_t[]){64, 32, 3, 3}, CT_INIT_KAIMING_NORMAL, 0, 0);
    /* nn.Linear(300, 100).weight: U(+-1/sqrt(300)) */
    ct_tensor *lin = add(p, "l", CT_PARAM_TRAINABLE, 2, (const int64_t[]){100, 300}, CT_INIT_LINEAR_DEFAULT, 0, 0);
    ct_tensor *bias = add(p, "lb", CT_PARAM_TRAINABLE, 1, (const int64_t[]){100}, CT_INIT_FAN_IN_UNIFORM, 300, 0);
    ct_tensor *ones = add(p, "o", CT_PARAM_TRAINABLE, 1, (const int64_t[]){10}, CT_INIT_ONES, 0, 0);
    ct_tensor *nrm = add(p, "n", CT_PARAM_BUFFER, 2, (const int64_t[]){100, 100}, CT_INIT_NORMAL, 0.02f, 0);
    ct_tensor *sph = add(p, "s", CT_PARAM_BUFFER, 2, (const int64_t[]){20, 16}, CT_INIT_UNIFORM_SPHERE, 0, 0);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    double mean, std, mx;
    moments(conv, &mean, &std, &mx);
    ck_assert_double_eq_tol(std, sqrt(2.0 / (64 * 9)), 0.03 * sqrt(2.0 / (64 * 9)));
    ck_assert_double_eq_tol(mean, 0.0, 0.005);
    moments(lin, &mean, &std, &mx);
    double bound = 1.0 / sqrt(300.0);
    ck_assert_double_le(mx, bound);
    ck_assert_double_gt(mx, 0.99 * bound);
    ck_assert_double_eq_tol(std, bound / sqrt(3.0), 0.03 * bound);
    moments(bias, &mean, &std, &mx);
    ck_assert_double_le(mx, bound);
    for (int i = 0; i < 10; i++) ck_assert_float_eq(ones->data[i], 1.0f);
    moments(nrm, &mean, &std, &mx);
    ck_assert_double_eq_tol(std, 0.02, 0.001);
    for (int r = 0; r < 20; r++) {
        double s2 = 0;
        for (int j = 0; j < 16; j++) s2 += (double)sph->data[r * 16 + j] * sph->data[r * 16 + j];
        ck_assert_double_eq_tol(s2, 1.0, 1e-5);
    }
    ct_params_free(p);
}
END_TEST

/* Weights depend on (seed, name), not on declaration order. */
START_TEST(init_is_keyed_by_name) {
    ct_params *a = ct_params_new(11), *b = ct_params_new(11), *c = ct_params_new(12);
    const int64_t s[] = {5, 7};
    add(a, "x", CT_PARAM_TRAINABLE, 2, s, CT_INIT_LINEAR_DEFAULT, 0, 0);
    add(a, "y", CT_PARAM_TRAINABLE, 2, s, CT_INIT_LINEAR_DEFAULT, 0, 0);
    add(b, "extra", CT_PARAM_TRAINABLE, 1, s, CT_INIT_LINEAR_DEFAULT, 0, 0);
    add(b, "y", CT_PARAM_TRAINABLE, 2, s, CT_INIT_LINEAR_DEFAULT, 0, 0);
    add(b, "x", CT_PARAM_TRAINABLE, 2, s, CT_INIT_LINEAR_DEFAULT, 0, 0);
    add(c, "x", CT_PARAM_TRAINABLE, 2, s, CT_INIT_LINEAR_DEFAULT, 0, 0);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_params_finalize(a, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(b, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(c, &err), CT_OK);
    ck_assert_mem_eq(ct_params_find(a, "x")->data, ct_params_find(b, "x")->data, 35 * sizeof(float));
    ck_assert_mem_eq(ct_params_find(a, "y")->data, ct_params_find(b, "y")->data, 35 * sizeof(float));
    ck_assert(memcmp(ct_params_find(a, "x")->data, ct_params_find(a, "y")->data, 35 * sizeof(float)) != 0);
    ck_assert(memcmp(ct_params_find(a, "x")->data, ct_params_find(c, "x")->data, 35 * sizeof(float)) != 0);
    ct_params_free(a);
    ct_params_free(b);
    ct_params_free(c);
}
END_TEST

START_TEST(freezing_by_prefix) {
    ct_params *p = ct_params_new(0);
    ct_tensor *e1 = add(p, "encoder.conv1.weight", CT_PARAM_TRAINABLE, 1, (const int64_t[]){4}, CT_INIT_ONES, 0, 0);
    ct_tensor *e2 = add(p, "encoder.bn1.weight", CT_PARAM_TRAINABLE, 1, (const int64_t[]){4}, CT_INIT_ONES, 0, 0);
    ct_tensor *h = add(p, "head.0.weight", CT_PARAM_TRAINABLE, 1, (const int64_t[]){4}, CT_INIT_ONES, 0, 0);
    add(p, "encoder.bn1.running_var", CT_PARAM_BUFFER, 1, (const int64_t[]){4}, CT_INIT_ONES, 0, 0);
    ck_assert_uint_eq(ct_params_set_trainable(p, "encoder.", false), 2); /* before finalize */
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ck_assert(!(e1->flags & CT_TENSOR_REQUIRES_GRAD));
    ck_assert(!(e2->flags & CT_TENSOR_REQUIRES_GRAD));
    ck_assert(h->flags & CT_TENSOR_REQUIRES_GRAD);
    /* Frozen weights get no gradient from the graph. */
    ct_graph *g = ct_graph_new(0);
    ct_tensor *loss = ct_sum(g, ct_add(g, ct_mul(g, e1, e2), h));
    ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
    ck_assert_float_eq(e1->grad[0], 0.0f);
    ck_assert_float_eq(h->grad[0], 1.0f);
    ck_assert_uint_eq(ct_params_set_trainable(p, "encoder.conv1", true), 1);
    ck_assert(e1->flags & CT_TENSOR_REQUIRES_GRAD);
    ct_graph_free(g);
    ct_params_free(p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, layout_and_lookup);
    tcase_add_test(tc, declaration_errors);
    tcase_add_test(tc, initialisers_match_pytorch);
    tcase_add_test(tc, init_is_keyed_by_name);
    tcase_add_test(tc, freezing_by_prefix);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

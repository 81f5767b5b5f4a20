/* Losses against hand-computed values and a double-precision reference;
 * stability at temperature 0.05 with large logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_test.h"

static ct_tensor *tensor2(ct_graph *g, int64_t r, int64_t c, const float *v, bool grad) {
    ct_tensor *t = ct_tensor_new2(g, r, c);
    memcpy(t->data, v, (size_t)(r * c) * sizeof(float));
    if (grad) t->flags = CT_TENSOR_REQUIRES_GRAD;
    return t;
}

/* Straightforward double reference of ct_nt_xent's formula. */
static double ntx_reference(const float *z, int64_t m, int64_t d, const int32_t *group, double t) {
    double loss = 0;
    int rows = 0;
    for (int64_t i = 0; i < m; i++) {
        double s[64], mx = -INFINITY;
        for (int64_t j = 0; j < m; j++) {
            s[j] = 0;
            for (int64_t k = 0; k < d; k++) s[j] += (double)z[i * d + k] * z[j * d + k];
            s[j] /= t;
            if (j != i && s[j] > mx) mx = s[j];
        }
        double sum = 0, pos = 0;
        int np = 0;
        for (int64_t j = 0; j < m; j++) {
            if (j == i) continue;
            sum += exp(s[j] - mx);
            if (group[j] == group[i]) {
                pos += s[j];
                np++;
            }
        }
        if (!np) continue;
        loss += mx + log(sum) - pos / np;
        rows++;
    }
    return loss / rows;
}

START_TEST(nt_xent_hand_computed) {
    ct_graph *g = ct_graph_new(0);
    const float z[] = {1, 0, 0, 1, 1, 0, 0, 1};
    const int32_t group[] = {0, 1, 0, 1};
    ct_tensor *loss = ct_nt_xent(g, tensor2(g, 4, 2, z, true), group, 0.5f);
    ck_assert_ptr_nonnull(loss);
    /* Every row: positive logit 2, two negatives with logit 0. */
    ck_assert_double_eq_tol(loss->data[0], log(2.0 + exp(2.0)) - 2.0, 1e-6);
    ct_graph_free(g);
}
END_TEST

START_TEST(nt_xent_matches_reference) {
    ct_graph *g = ct_graph_new(0);
    ct_rng r;
    ct_rng_init(&r, 1, 1);
    enum { M = 12, D = 5 };
    float z[M * D];
    for (int i = 0; i < M * D; i++) z[i] = ct_rng_normal(&r);
    const int32_t group[M] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 9}; /* row 5 and 11 have no positive */
    const float temps[] = {0.05f, 0.1f, 0.5f, 1.0f};
    for (int k = 0; k < 4; k++) {
        ct_tensor *zn = ct_l2_normalize(g, tensor2(g, M, D, z, false), 1e-12f);
        ct_tensor *loss = ct_nt_xent(g, zn, group, temps[k]);
        double ref = ntx_reference(zn->data, M, D, group, temps[k]);
        ck_assert_double_eq_tol(loss->data[0], ref, 1e-4 * fmax(1.0, fabs(ref)));
        ct_graph_reset(g);
    }
    ct_graph_free(g);
}
END_TEST

/* T = 0.05 on unnormalised rows of norm ~100: logits ~ 2e5. A naive
 * exp would overflow; the loss and its gradient must stay finite. */
START_TEST(nt_xent_stable_large_logits) {
    ct_graph *g = ct_graph_new(0);
    ct_rng r;
    ct_rng_init(&r, 2, 2);
    enum { M = 8, D = 4 };
    float z[M * D];
    for (int i = 0; i < M * D; i++) z[i] = 50.0f * ct_rng_normal(&r);
    const int32_t group[M] = {0, 1, 2, 3, 0, 1, 2, 3};
    ct_tensor *zt = tensor2(g, M, D, z, true);
    ct_tensor *loss = ct_nt_xent(g, zt, group, 0.05f);
    ck_assert(isfinite(loss->data[0]));
    double ref = ntx_reference(z, M, D, group, 0.05);
    ck_assert_double_eq_tol(loss->data[0], ref, 1e-4 * fabs(ref));
    ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
    for (int i = 0; i < M * D; i++) ck_assert(isfinite(zt->grad[i]));
    ct_graph_free(g);
}
END_TEST

START_TEST(nt_xent_errors) {
    ct_graph *g = ct_graph_new(0);
    const float z[] = {1, 0, 0, 1};
    const int32_t group[] = {0, 1};
    ck_assert_ptr_null(ct_nt_xent(g, tensor2(g, 2, 2, z, true), group, 0.5f));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_INVALID);
    ct_graph_reset(g);
    ck_assert_ptr_null(ct_nt_xent(g, tensor2(g, 2, 2, z, true), (const int32_t[]){0, 0}, 0.0f));
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "temperature"));
    ct_graph_free(g);
}
END_TEST

START_TEST(info_nce_hand_computed) {
    ct_graph *g = ct_graph_new(0);
    const float q[] = {1, 0}, k[] = {1, 0}, neg[] = {0, 1, -1, 0};
    ct_tensor *nt = tensor2(g, 2, 2, neg, false);
    ct_tensor *qt = tensor2(g, 1, 2, q, true), *kt = tensor2(g, 1, 2, k, true);
    ct_tensor *loss = ct_info_nce(g, qt, kt, nt, 1.0f);
    /* logits [1, 0, -1], target 0 */
    ck_assert_double_eq_tol(loss->data[0], log(exp(1.0) + 1.0 + exp(-1.0)) - 1.0, 1e-6);
    ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
    /* dL/dlogits = p - e0; dq = (dl0 k + dl1 n1 + dl2 n2) / T */
    double z = exp(1.0) + 1.0 + exp(-1.0), p0 = exp(1.0) / z, p1 = 1.0 / z, p2 = exp(-1.0) / z;
    ck_assert_double_eq_tol(qt->grad[0], (p0 - 1.0) - p2, 1e-6);
    ck_assert_double_eq_tol(qt->grad[1], p1, 1e-6);
    ck_assert_double_eq_tol(kt->grad[0], p0 - 1.0, 1e-6);
    ck_assert_double_eq_tol(kt->grad[1], 0.0, 1e-6);
    ct_graph_free(g);
}
END_TEST

/* InfoNCE equals cross-entropy on the explicit logits matrix. */
START_TEST(info_nce_matches_cross_entropy) {
    ct_graph *g = ct_graph_new(0);
    ct_rng r;
    ct_rng_init(&r, 3, 3);
    enum { N = 5, D = 4, K = 7 };
    float q[N * D], k[N * D], neg[K * D];
    for (int i = 0; i < N * D; i++) q[i] = ct_rng_normal(&r), k[i] = ct_rng_normal(&r);
    for (int i = 0; i < K * D; i++) neg[i] = ct_rng_normal(&r);
    const float t = 0.07f;
    ct_tensor *loss = ct_info_nce(g, tensor2(g, N, D, q, true), tensor2(g, N, D, k, false),
                                  tensor2(g, K, D, neg, false), t);
    float logits[N * (K + 1)];
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += q[i * D + d] * k[i * D + d];
        logits[i * (K + 1)] = (float)(s / t);
        for (int j = 0; j < K; j++) {
            s = 0;
            for (int d = 0; d < D; d++) s += q[i * D + d] * neg[j * D + d];
            logits[i * (K + 1) + 1 + j] = (float)(s / t);
        }
    }
    const int32_t zeros[N] = {0};
    ct_tensor *ce = ct_cross_entropy(g, tensor2(g, N, K + 1, logits, false), zeros);
    ck_assert_double_eq_tol(loss->data[0], ce->data[0], 1e-4 * fmax(1.0, fabs(ce->data[0])));
    ct_graph_free(g);
}
END_TEST

START_TEST(cross_entropy_values) {
    ct_graph *g = ct_graph_new(0);
    const float x[] = {0, 0, 0, 1000, 0, -1000, 2, 1, 0};
    const int32_t labels[] = {0, 1, -1};
    ct_tensor *loss = ct_cross_entropy(g, tensor2(g, 3, 3, x, true), labels);
    /* row 0: log 3; row 1: lse ~ 1000, minus 0 -> 1000; row 2 ignored */
    ck_assert(isfinite(loss->data[0]));
    ck_assert_double_eq_tol(loss->data[0], (log(3.0) + 1000.0) / 2.0, 1e-3);
    ct_graph_reset(g);
    /* Soft targets with a one-hot row reduce to hard labels. */
    const float y[] = {0.5f, -1.0f, 2.0f, 1.0f, 1.0f, 1.0f};
    const float onehot[] = {0, 0, 1, 1, 0, 0};
    ct_tensor *soft = ct_cross_entropy_soft(g, tensor2(g, 2, 3, y, false), onehot);
    ct_tensor *hard = ct_cross_entropy(g, tensor2(g, 2, 3, y, false), (const int32_t[]){2, 0});
    ck_assert_double_eq_tol(soft->data[0], hard->data[0], 1e-6);
    /* Uniform soft targets on equal logits: log C. */
    const float eq[] = {3, 3, 3, 3}, uni[] = {0.25f, 0.25f, 0.25f, 0.25f};
    ct_tensor *u = ct_cross_entropy_soft(g, tensor2(g, 1, 4, eq, false), uni);
    ck_assert_double_eq_tol(u->data[0], log(4.0), 1e-6);
    ck_assert_ptr_null(ct_cross_entropy(g, tensor2(g, 1, 4, eq, false), (const int32_t[]){4}));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_INVALID);
    ct_graph_free(g);
}
END_TEST

/* The plain-array normalisation agrees with the graph op row for row (to
 * one rounding: its reciprocal is taken in double), and
 * keeps a zero row zero (no NaN from 0/0). */
START_TEST(rows_l2_normalize_matches_graph_op) {
    float x[3 * 4] = {3, 4, 0, 0, 0, 0, 0, 0, -1, 2, -2, 4};
    ct_graph *g = ct_graph_new(0);
    ct_tensor *y = ct_l2_normalize(g, tensor2(g, 3, 4, x, false), 1e-12f);
    ct_rows_l2_normalize(x, 3, 4, 1e-12f);
    for (int i = 0; i < 12; i++) ck_assert_float_eq_tol(x[i], y->data[i], 1e-7f);
    ck_assert_float_eq_tol(x[0], 0.6f, 1e-7f);
    ck_assert_float_eq_tol(x[1], 0.8f, 1e-7f);
    for (int i = 4; i < 8; i++) ck_assert_float_eq(x[i], 0.0f);
    ck_assert_float_eq_tol(x[11], 0.8f, 1e-7f);
    ct_graph_free(g);
}
END_TEST

START_TEST(softmax_family_stable) {
    ct_graph *g = ct_graph_new(0);
    const float x[] = {1e4f, 1e4f - 1.0f, -1e4f};
    ct_tensor *xt = tensor2(g, 1, 3, x, false);
    ct_tensor *lse = ct_logsumexp(g, xt), *ls = ct_log_softmax(g, xt), *sm = ct_softmax(g, xt);
    ck_assert_double_eq_tol(lse->data[0], 1e4 + log(1.0 + exp(-1.0)), 1e-2);
    ck_assert_double_eq_tol(ls->data[1], -1.0 - log(1.0 + exp(-1.0)), 1e-3);
    ck_assert_double_eq_tol(sm->data[0], 1.0 / (1.0 + exp(-1.0)), 1e-6);
    ck_assert_float_eq(sm->data[2], 0.0f);
    ct_graph_free(g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("losses");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, nt_xent_hand_computed);
    tcase_add_test(tc, nt_xent_matches_reference);
    tcase_add_test(tc, nt_xent_stable_large_logits);
    tcase_add_test(tc, nt_xent_errors);
    tcase_add_test(tc, info_nce_hand_computed);
    tcase_add_test(tc, info_nce_matches_cross_entropy);
    tcase_add_test(tc, cross_entropy_values);
    tcase_add_test(tc, softmax_family_stable);
    tcase_add_test(tc, rows_l2_normalize_matches_graph_op);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

/* Optimizers and schedules against hand-computed values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_test.h"

typedef struct {
    ct_params *p;
    ct_tensor *w, *b;
} model;

/* w: 2 floats (decayed), b: 1 float (NO_DECAY). */
static model make(const float *w, const float *b) {
    model m;
    ct_error err = CT_ERROR_INIT;
    m.p = ct_params_new(0);
    m.w = ct_params_add(m.p, "w", CT_PARAM_TRAINABLE, 1, (const int64_t[]){2}, CT_INIT_ZEROS, 0, 0, &err);
    m.b = ct_params_add(m.p, "b", CT_PARAM_TRAINABLE, 1, (const int64_t[]){1}, CT_INIT_ZEROS, 0, CT_PARAM_NO_DECAY, &err);
    ck_assert_int_eq(ct_params_finalize(m.p, &err), CT_OK);
    memcpy(m.w->data, w, 2 * sizeof(float));
    m.b->data[0] = b[0];
    return m;
}

static void set_grads(model *m, float g0, float g1, float gb) {
    m->w->grad[0] = g0;
    m->w->grad[1] = g1;
    m->b->grad[0] = gb;
}

START_TEST(sgd_momentum_and_decay) {
    model m = make((const float[]){1, 1}, (const float[]){1});
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_SGD);
    c.momentum = 0.9f;
    c.weight_decay = 0.01f;
    ct_error err = CT_ERROR_INIT;
    ct_optim *o = ct_optim_new(m.p, &c, &err);
    ck_assert_ptr_nonnull(o);
    set_grads(&m, 0.5f, 0.5f, 0.5f);
    ct_optim_step(o, 0.1f);
    ck_assert_float_eq_tol(m.w->data[0], 0.949f, 1e-6f); /* d = 0.51, buf = 0.51 */
    ct_optim_step(o, 0.1f);
    ck_assert_float_eq_tol(m.w->data[0], 0.852151f, 1e-6f); /* d = 0.50949, buf = 0.96849 */
    ck_assert_int_eq(ct_optim_steps(o), 2);
    size_t n;
    float *st = ct_optim_state(o, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_float_eq_tol(st[0], 0.96849f, 1e-6f);
    ct_optim_free(o);
    ct_params_free(m.p);
}
END_TEST

START_TEST(sgd_nesterov) {
    model m = make((const float[]){1, 1}, (const float[]){1});
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_SGD);
    c.momentum = 0.9f;
    c.nesterov = true;
    c.weight_decay = 0.01f;
    ct_optim *o = ct_optim_new(m.p, &c, NULL);
    set_grads(&m, 0.5f, 0.5f, 0.5f);
    ct_optim_step(o, 0.1f);
    ck_assert_float_eq_tol(m.w->data[0], 1.0f - 0.1f * (0.51f + 0.9f * 0.51f), 1e-6f);
    ct_optim_free(o);
    ct_params_free(m.p);
}
END_TEST

START_TEST(adamw_step) {
    model m = make((const float[]){1, 1}, (const float[]){1});
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_ADAMW);
    c.weight_decay = 0.1f;
    ct_optim *o = ct_optim_new(m.p, &c, NULL);
    set_grads(&m, 0.5f, -0.25f, 0.5f);
    ct_optim_step(o, 0.1f);
    /* decay 1 -> 0.99, then m_hat/sqrt(v_hat) = sign(g) */
    ck_assert_float_eq_tol(m.w->data[0], 0.89f, 1e-6f);
    ck_assert_float_eq_tol(m.w->data[1], 1.09f, 1e-6f);
    ck_assert_float_eq_tol(m.b->data[0], 0.9f, 1e-6f); /* NO_DECAY: no shrink */
    /* step 2 with g = 0.5 again: m = 0.095, v = 0.00049975; bias-corrected ratio */
    set_grads(&m, 0.5f, -0.25f, 0.5f);
    ct_optim_step(o, 0.1f);
    double mh = 0.095 / (1 - 0.81), vh = 0.00049975 / (1 - 0.998001);
    double expect = 0.89 * (1 - 0.01) - 0.1 * mh / (sqrt(vh) + 1e-8);
    ck_assert_double_eq_tol(m.w->data[0], expect, 1e-5);
    size_t n;
    ct_optim_state(o, &n);
    ck_assert_uint_eq(n, 6);
    ct_optim_free(o);
    ct_params_free(m.p);
}
END_TEST

/* torch.optim.Adam's update with weight decay wd on w (double precision):
 * d = g + wd*w joins the moments; returns the new w. */
static double adam_ref(double w, double g, double wd, double lr, double *m, double *v, int step) {
    double d = g + wd * w;
    *m = 0.9 * *m + 0.1 * d;
    *v = 0.999 * *v + 0.001 * d * d;
    double mh = *m / (1 - pow(0.9, step)), vh = *v / (1 - pow(0.999, step));
    return w - lr * mh / (sqrt(vh) + 1e-8);
}

/* Adam: the decay is L2 inside the moments (not AdamW's shrink), skips
 * NO_DECAY tensors unless decay_all, and AdamW's decay_all shrinks them. */
START_TEST(adam_l2_step) {
    model m = make((const float[]){1, 1}, (const float[]){1});
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_ADAM);
    ck_assert_float_eq(c.weight_decay, 0.0f); /* torch.optim.Adam's default */
    c.weight_decay = 0.1f;
    ct_optim *o = ct_optim_new(m.p, &c, NULL);
    ck_assert_ptr_nonnull(o);
    double w[2] = {1, 1}, b = 1, mw[2] = {0}, vw[2] = {0}, mb = 0, vb = 0;
    const double g[3] = {0.5, -0.25, 0.5};
    for (int step = 1; step <= 3; step++) {
        set_grads(&m, (float)g[0], (float)g[1], (float)g[2]);
        ct_optim_step(o, 0.1f);
        for (int i = 0; i < 2; i++) w[i] = adam_ref(w[i], g[i], 0.1, 0.1, &mw[i], &vw[i], step);
        b = adam_ref(b, g[2], 0.0, 0.1, &mb, &vb, step); /* NO_DECAY */
        ck_assert_double_eq_tol(m.w->data[0], w[0], 1e-5);
        ck_assert_double_eq_tol(m.w->data[1], w[1], 1e-5);
        ck_assert_double_eq_tol(m.b->data[0], b, 1e-5);
        /* step 1: m_hat/sqrt(v_hat) = sign(g + wd*w) = 1, so 1 - 0.1 (AdamW: 0.89) */
        if (step == 1) ck_assert_float_eq_tol(m.w->data[0], 0.9f, 1e-6f);
    }
    size_t n;
    ct_optim_state(o, &n);
    ck_assert_uint_eq(n, 6);
    ct_optim_free(o);
    ct_params_free(m.p);

    /* decay_all: the NO_DECAY bias is decayed as well */
    m = make((const float[]){1, 1}, (const float[]){1});
    c.decay_all = true;
    o = ct_optim_new(m.p, &c, NULL);
    b = 1, mb = vb = 0;
    for (int step = 1; step <= 2; step++) {
        set_grads(&m, (float)g[0], (float)g[1], (float)g[2]);
        ct_optim_step(o, 0.1f);
        b = adam_ref(b, g[2], 0.1, 0.1, &mb, &vb, step);
    }
    ck_assert_double_eq_tol(m.b->data[0], b, 1e-5);
    ck_assert_float_eq_tol(m.b->data[0], m.w->data[0], 1e-6f); /* same gradient, same decay */
    ct_optim_free(o);
    ct_params_free(m.p);

    m = make((const float[]){1, 1}, (const float[]){1});
    c = ct_optim_defaults(CT_OPTIM_ADAMW);
    c.weight_decay = 0.1f;
    c.decay_all = true;
    o = ct_optim_new(m.p, &c, NULL);
    set_grads(&m, 0.5f, -0.25f, 0.5f);
    ct_optim_step(o, 0.1f);
    ck_assert_float_eq_tol(m.b->data[0], 0.89f, 1e-6f); /* shrunk by 1 - 0.01, then -0.1 */
    ct_optim_free(o);
    ct_params_free(m.p);
}
END_TEST

START_TEST(lars_trust_ratio) {
    model m = make((const float[]){3, 4}, (const float[]){1});
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_LARS);
    c.momentum = 0.9f;
    c.weight_decay = 0.1f;
    c.trust_coef = 0.001f;
    ct_optim *o = ct_optim_new(m.p, &c, NULL);
    set_grads(&m, 0.6f, 0.8f, 0.5f);
    ct_optim_step(o, 1.0f);
    /* g' = g + 0.1 w = (0.9, 1.2), |g'| = 1.5, |w| = 5, trust = 0.001*5/1.5;
     * update = lr * trust * g' = (0.003, 0.004). Bias: plain lr * g. */
    ck_assert_float_eq_tol(m.w->data[0], 2.997f, 1e-6f);
    ck_assert_float_eq_tol(m.w->data[1], 3.996f, 1e-6f);
    ck_assert_float_eq_tol(m.b->data[0], 0.5f, 1e-6f);
    /* Second step: momentum carries 0.9 * previous update. */
    set_grads(&m, 0.6f, 0.8f, 0.0f);
    ct_optim_step(o, 1.0f);
    ck_assert_float_eq_tol(m.b->data[0], 0.5f - 0.9f * 0.5f, 1e-6f);
    ct_optim_free(o);
    ct_params_free(m.p);
}
END_TEST

START_TEST(global_norm_clipping) {
    model m = make((const float[]){0, 0}, (const float[]){0});
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_SGD);
    c.momentum = 0.0f;
    c.clip_norm = 1.0f;
    ct_optim *o = ct_optim_new(m.p, &c, NULL);
    set_grads(&m, 3.0f, 0.0f, 4.0f);
    ck_assert_float_eq_tol(ct_grad_global_norm(m.p), 5.0f, 1e-6f);
    float norm = ct_optim_step(o, 1.0f);
    ck_assert_float_eq_tol(norm, 5.0f, 1e-6f);
    ck_assert_float_eq_tol(m.w->data[0], -0.6f, 1e-5f);
    ck_assert_float_eq_tol(m.b->data[0], -0.8f, 1e-5f);
    ck_assert_float_eq_tol(ct_grad_global_norm(m.p), 1.0f, 1e-5f);
    size_t n;
    ck_assert_ptr_null(ct_optim_state(o, &n)); /* no momentum, no state */
    ck_assert_uint_eq(n, 0);
    ct_optim_free(o);
    ct_params_free(m.p);
}
END_TEST

START_TEST(frozen_tensors_untouched) {
    model m = make((const float[]){1, 1}, (const float[]){1});
    ct_params_set_trainable(m.p, "w", false);
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_SGD);
    ct_optim *o = ct_optim_new(m.p, &c, NULL);
    set_grads(&m, 1.0f, 1.0f, 1.0f);
    ct_optim_step(o, 0.1f);
    ck_assert_float_eq(m.w->data[0], 1.0f);
    ck_assert_float_eq_tol(m.b->data[0], 0.9f, 1e-6f);
    ct_optim_free(o);
    ct_params_free(m.p);
}
END_TEST

START_TEST(config_errors) {
    model m = make((const float[]){1, 1}, (const float[]){1});
    ct_error err = CT_ERROR_INIT;
    ct_optim_config c = ct_optim_defaults(CT_OPTIM_SGD);
    c.momentum = 1.5f;
    ck_assert_ptr_null(ct_optim_new(m.p, &c, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "momentum"));
    c = ct_optim_defaults(CT_OPTIM_ADAMW);
    c.beta2 = 1.0f;
    ck_assert_ptr_null(ct_optim_new(m.p, &c, &err));
    c = ct_optim_defaults(CT_OPTIM_SGD);
    c.momentum = 0.0f;
    c.nesterov = true;
    ck_assert_ptr_null(ct_optim_new(m.p, &c, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "nesterov"));
    ct_params *unfinished = ct_params_new(0);
    ct_params_add(unfinished, "x", CT_PARAM_TRAINABLE, 1, (const int64_t[]){1}, CT_INIT_ZEROS, 0, 0, &err);
    c = ct_optim_defaults(CT_OPTIM_SGD);
    ck_assert_ptr_null(ct_optim_new(unfinished, &c, &err));
    ct_params_free(unfinished);
    ct_params_free(m.p);
}
END_TEST

START_TEST(schedules) {
    ct_schedule s = {CT_SCHED_COSINE, 1.0f, 10, 0.0f, 0.0f, 0, 0.0f};
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 0, 110), 0.0f, 1e-7f);
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 5, 110), 0.5f, 1e-7f);
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 10, 110), 1.0f, 1e-7f);
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 43, 110), 0.75f, 1e-6f); /* a third of the way: (1+cos(pi/3))/2 */
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 109, 110), 0.0f, 1e-7f);
    s.final_lr = 0.1f;
    s.warmup_start = 0.2f;
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 0, 110), 0.2f, 1e-7f);
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 59, 110), 0.1f + 0.9f * 0.5f * (1.0f + cosf((float)M_PI * 49.0f / 99.0f)), 1e-6f);
    ck_assert_float_eq_tol(ct_schedule_lr(&s, 109, 110), 0.1f, 1e-7f);
    ct_schedule st = {CT_SCHED_STEP, 0.1f, 0, 0.0f, 0.0f, 30, 0.1f};
    ck_assert_float_eq_tol(ct_schedule_lr(&st, 29, 100), 0.1f, 1e-8f);
    ck_assert_float_eq_tol(ct_schedule_lr(&st, 30, 100), 0.01f, 1e-8f);
    ck_assert_float_eq_tol(ct_schedule_lr(&st, 65, 100), 0.001f, 1e-9f);
    ct_schedule k = {CT_SCHED_CONSTANT, 0.3f, 4, 0.0f, 0.0f, 0, 0.0f};
    ck_assert_float_eq_tol(ct_schedule_lr(&k, 1, 10), 0.075f, 1e-7f);
    ck_assert_float_eq_tol(ct_schedule_lr(&k, 7, 10), 0.3f, 1e-7f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sgd_momentum_and_decay);
    tcase_add_test(tc, sgd_nesterov);
    tcase_add_test(tc, adamw_step);
    tcase_add_test(tc, adam_l2_step);
    tcase_add_test(tc, lars_trust_ratio);
    tcase_add_test(tc, global_norm_clipping);
    tcase_add_test(tc, frozen_tensors_untouched);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, schedules);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

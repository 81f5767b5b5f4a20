/* A test plugin that makes training go non-finite on purpose, at a step
 * its config chooses, through the public plugin API only: architecture
 * "nan_probe", a linear head w (1 x D) on the encoder's features with
 * loss = mean((z w^T)^2). From global step index nan_step on, the loss is
 * multiplied by NaN; from nan_grad_step on, the loss stays finite but
 * after_backward() writes a NaN into w's gradient (what a broken gradient
 * hook would do). The host must stop in that step and keep the last good
 * checkpoint.
 *
 * Encoder "nan_rows": the flattened pixels, with every `nan_every`-th row
 * of each forwarded batch (rows 0, k, 2k, ...) made NaN, as broken weights
 * would make some features. Evaluators and `embed` must refuse them,
 * naming how many rows. */
#include <math.h>
#include <stdlib.h>

#include <contrast/contrast.h>

/* ---- architecture "nan_probe" ------------------------------------------- */

typedef struct probe {
    ct_encoder *encoder;
    ct_tensor *w;
    int64_t nan_step, nan_grad_step;
} probe;

static const ct_param_spec probe_params[] = {
    CT_PARAM_INT("nan_step", "-1", -1, 1e9, "from this global step on the loss is NaN (-1: never)"),
    CT_PARAM_INT("nan_grad_step", "-1", -1, 1e9,
                 "from this global step on the head's gradient holds a NaN, the loss stays finite (-1: never)"),
    CT_PARAM_END,
};

static ct_status probe_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    probe *p = calloc(1, sizeof *p);
    if (!p) return ct_error_set(err, CT_ERR_NOMEM, "nan_probe: out of memory");
    p->encoder = env->encoder;
    p->nan_step = ct_settings_int(s, "nan_step");
    p->nan_grad_step = ct_settings_int(s, "nan_grad_step");
    int64_t shape[2] = {1, env->encoder->dim};
    p->w = ct_params_add(env->store, "head.weight", CT_PARAM_TRAINABLE, 2, shape, CT_INIT_LINEAR_DEFAULT, 0, 0, err);
    if (!p->w) {
        free(p);
        return err ? err->code : CT_ERR_INVALID;
    }
    *self = p;
    return CT_OK;
}

static void probe_destroy(void *self) { free(self); }

static bool from(int64_t at, int64_t step) { return at >= 0 && step >= at; }

static ct_tensor *probe_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info) {
    probe *p = self;
    ct_tensor *z = p->encoder->ops->forward(p->encoder->self, g, b->views[0]);
    ct_tensor *y = z ? ct_linear(g, z, p->w, NULL) : NULL;
    ct_tensor *loss = y ? ct_mean(g, ct_mul(g, y, y)) : NULL;
    return loss && from(p->nan_step, info->step) ? ct_scale(g, loss, NAN) : loss;
}

static void probe_after_backward(void *self, const ct_step_info *info) {
    probe *p = self;
    if (from(p->nan_grad_step, info->step) && p->w->grad) p->w->grad[0] = NAN;
}

/* ---- encoder "nan_rows" ---------------------------------------------------- */

typedef struct nan_rows {
    int64_t dim, every;
} nan_rows;

static const ct_param_spec nan_rows_params[] = {
    CT_PARAM_INT("nan_every", "10", 1, 1e9, "rows 0, k, 2k, ... of each batch are NaN"),
    CT_PARAM_END,
};

static ct_status nan_rows_create(const ct_settings *s, const ct_host *host, const ct_encoder_input *in,
                                 ct_params *store, const char *prefix, void **self, ct_error *err) {
    (void)host, (void)store, (void)prefix;
    nan_rows *e = calloc(1, sizeof *e);
    if (!e) return ct_error_set(err, CT_ERR_NOMEM, "nan_rows: out of memory");
    e->dim = (int64_t)in->channels * in->height * in->width;
    e->every = ct_settings_int(s, "nan_every");
    *self = e;
    return CT_OK;
}

static void nan_rows_destroy(void *self) { free(self); }

static int64_t nan_rows_out_dim(void *self) { return ((nan_rows *)self)->dim; }

static ct_tensor *nan_rows_forward(void *self, ct_graph *g, ct_tensor *x) {
    nan_rows *e = self;
    int64_t n = x->shape[0], shape[2] = {n, e->dim};
    ct_tensor *flat = ct_reshape(g, x, 2, shape);
    ct_tensor *mask = flat ? ct_tensor_new(g, 2, shape) : NULL;
    if (!mask) return NULL;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < e->dim; j++) mask->data[i * e->dim + j] = i % e->every == 0 ? NAN : 1.0f;
    return ct_mul(g, flat, mask);
}

/* ---- registration ------------------------------------------------------- */

static ct_status nan_probe_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host, (void)err;
    static const ct_arch_ops arch = {
        .name = "nan_probe",
        .description = "linear probe loss that turns NaN at a chosen step (test)",
        .params = probe_params,
        .create = probe_create,
        .destroy = probe_destroy,
        .loss = probe_loss,
        .after_backward = probe_after_backward,
    };
    static const ct_encoder_ops enc = {
        .name = "nan_rows",
        .description = "pixels with every k-th row of a batch NaN (test)",
        .params = nan_rows_params,
        .create = nan_rows_create,
        .destroy = nan_rows_destroy,
        .out_dim = nan_rows_out_dim,
        .forward = nan_rows_forward,
    };
    ct_status st = ct_register_architecture(reg, &arch);
    return st == CT_OK ? ct_register_encoder(reg, &enc) : st;
}

CT_PLUGIN_DEFINE("nan_probe", "1.0.0", "MIT", "forces a non-finite loss or gradient at a chosen step (test)",
                 CT_ROLE_ARCHITECTURE | CT_ROLE_ENCODER, nan_probe_init)

/* A test plugin that makes training go non-finite on purpose, at a step
 * its config chooses, through the public plugin API only: architecture
 * "nan_probe", a linear head w (1 x D) on the encoder's features with
 * loss = mean((z w^T)^2). From global step index nan_step on, the loss is
 * multiplied by NaN; from nan_grad_step on, the loss stays finite but
 * after_backward() writes a NaN into w's gradient (what a broken gradient
 * hook would do). The host must stop in that step and keep the last good
 * checkpoint. */
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
    return ct_register_architecture(reg, &arch);
}

CT_PLUGIN_DEFINE("nan_probe", "1.0.0", "MIT", "forces a non-finite loss or gradient at a chosen step (test)",
                 CT_ROLE_ARCHITECTURE, nan_probe_init)

/* A test plugin whose code reads settings its schemas never declared, as a
 * plugin with a typo in a key would. The SDK records the first such misuse
 * (ct_settings_status) instead of aborting; the host must check after each
 * call that handed the plugin its settings and fail with one line naming
 * the plugin and the key, never crash. Three roles, one per kind of call:
 *   pretext "bad_settings_transform": create reads "strength"
 *   encoder "bad_settings_encoder": create reads "depth" (a raw-pixel encoder otherwise)
 *   evaluator "bad_settings_evaluator": create is clean, run reads "neighbours" */
#include <stdlib.h>

#include <contrast/contrast.h>

static const ct_param_spec no_params[] = {CT_PARAM_END};

/* ---- pretext: the misuse in create ---------------------------------------- */

static const ct_param_spec transform_params[] = {
    CT_PARAM_FLOAT("p", "1.0", 0, 1, "a declared setting (read correctly)"),
    CT_PARAM_END,
};

static ct_status transform_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host, (void)err;
    (void)ct_settings_float(s, "p");
    (void)ct_settings_float(s, "strength"); /* not declared: recorded, reads 0 */
    *self = NULL;
    return CT_OK;
}

static void nothing(void *self) { (void)self; }

static ct_status transform_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng, ct_error *err) {
    (void)self, (void)rng;
    ct_status st = ct_image_copy(dst, src);
    return st ? ct_error_set(err, st, "out of memory") : CT_OK;
}

/* ---- encoder: the misuse in create ----------------------------------------- */

typedef struct flat {
    int64_t dim;
} flat;

static ct_status encoder_create(const ct_settings *s, const ct_host *host, const ct_encoder_input *in,
                                ct_params *store, const char *prefix, void **self, ct_error *err) {
    (void)host, (void)store, (void)prefix;
    flat *f = malloc(sizeof *f);
    if (!f) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    f->dim = (int64_t)in->channels * in->height * in->width + ct_settings_int(s, "depth");
    *self = f;
    return CT_OK;
}

static void encoder_destroy(void *self) { free(self); }

static int64_t encoder_out_dim(void *self) { return ((flat *)self)->dim; }

static ct_tensor *encoder_forward(void *self, ct_graph *g, ct_tensor *x) {
    int64_t shape[2] = {x->shape[0], ((flat *)self)->dim};
    return ct_reshape(g, x, 2, shape);
}

/* ---- evaluator: the misuse in run ------------------------------------------ */

static const ct_param_spec evaluator_params[] = {
    CT_PARAM_INT("k", "5", 1, 1000, "a declared setting"),
    CT_PARAM_END,
};

typedef struct counter {
    const ct_settings *s; /* kept: read in run */
} counter;

static ct_status evaluator_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    counter *c = malloc(sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    c->s = s;
    (void)ct_settings_int(s, "k");
    *self = c;
    return CT_OK;
}

static void evaluator_destroy(void *self) { free(self); }

static ct_status evaluator_run(void *self, const ct_eval_env *env, ct_metrics *out, ct_error *err) {
    (void)env;
    counter *c = self;
    int64_t n = ct_settings_int(c->s, "neighbours"); /* not declared */
    return ct_metrics_set(out, "neighbours", (double)n) == CT_OK
               ? CT_OK
               : ct_error_set(err, CT_ERR_INVALID, "bad_settings_evaluator: metrics full");
}

/* ---- registration ----------------------------------------------------------- */

static ct_status bad_settings_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host, (void)err;
    static const ct_pretext_ops transform = {
        .name = "bad_settings_transform",
        .description = "copies the image; create reads an undeclared setting (test)",
        .params = transform_params,
        .create = transform_create,
        .destroy = nothing,
        .apply = transform_apply,
    };
    static const ct_encoder_ops encoder = {
        .name = "bad_settings_encoder",
        .description = "flattened pixels; create reads an undeclared setting (test)",
        .params = no_params,
        .create = encoder_create,
        .destroy = encoder_destroy,
        .out_dim = encoder_out_dim,
        .forward = encoder_forward,
    };
    static const ct_evaluator_ops evaluator = {
        .name = "bad_settings_evaluator",
        .description = "reads an undeclared setting in run (test)",
        .params = evaluator_params,
        .create = evaluator_create,
        .destroy = evaluator_destroy,
        .run = evaluator_run,
    };
    ct_status st = ct_register_pretext(reg, &transform);
    if (st == CT_OK) st = ct_register_encoder(reg, &encoder);
    if (st == CT_OK) st = ct_register_evaluator(reg, &evaluator);
    return st;
}

CT_PLUGIN_DEFINE("bad_settings", "1.0.0", "MIT", "reads settings its schemas do not declare (test)",
                 CT_ROLE_PRETEXT | CT_ROLE_ENCODER | CT_ROLE_EVALUATOR, bad_settings_init)

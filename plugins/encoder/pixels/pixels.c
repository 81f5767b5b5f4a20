/* pixels: the identity "encoder". Its features are the input pixels
 * themselves (after the evaluation transform), flattened to C*H*W. It has
 * no parameters; it exists to measure evaluators on raw pixels (the
 * baseline every learned representation should beat). */
#include <stdlib.h>

#include <contrast/contrast.h>

typedef struct pixels {
    int64_t dim;
} pixels;

static const ct_param_spec pixels_params[] = {CT_PARAM_END};

static ct_status pixels_create(const ct_settings *s, const ct_host *host, const ct_encoder_input *in,
                               ct_params *store, const char *prefix, void **self, ct_error *err) {
    (void)s;
    (void)host;
    (void)store;
    (void)prefix;
    if (in->channels <= 0 || in->height <= 0 || in->width <= 0)
        return ct_error_set(err, CT_ERR_CONFIG, "pixels: needs a fixed input size (got %dx%dx%d)",
                            in->channels, in->height, in->width);
    pixels *p = malloc(sizeof *p);
    if (!p) return ct_error_set(err, CT_ERR_NOMEM, "pixels: out of memory");
    p->dim = (int64_t)in->channels * in->height * in->width * (in->frames > 0 ? in->frames : 1);
    *self = p;
    return CT_OK;
}

static void pixels_destroy(void *self) { free(self); }

static int64_t pixels_out_dim(void *self) { return ((pixels *)self)->dim; }

static ct_tensor *pixels_forward(void *self, ct_graph *g, ct_tensor *x) {
    pixels *p = self;
    if (!x) return NULL;
    if (x->numel % p->dim != 0 || x->ndim < 1)
        return ct_graph_fail(g, CT_ERR_SHAPE, "pixels: input of %lld values is not a batch of %lld-pixel images",
                             (long long)x->numel, (long long)p->dim);
    int64_t shape[2] = {x->shape[0], p->dim};
    return ct_reshape(g, x, 2, shape);
}

static const ct_encoder_ops pixels_ops = {
    .name = "pixels",
    .description = "identity encoder: flattened input pixels (raw-pixel baseline)",
    .params = pixels_params,
    .create = pixels_create,
    .destroy = pixels_destroy,
    .out_dim = pixels_out_dim,
    .forward = pixels_forward,
    .inputs = CT_ENCODER_IMAGES | CT_ENCODER_CLIPS,
};

static ct_status pixels_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_encoder(reg, &pixels_ops);
    if (st != CT_OK) ct_error_set(err, st, "pixels: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("pixels", "1.0.0", "MIT", "identity encoder (raw pixels)", CT_ROLE_ENCODER, pixels_init)

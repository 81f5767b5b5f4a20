/* An architecture exactly as a plugin built against ABI 1.1 presents it:
 * its descriptor says 1.1 and it registers the 1.1 size of ct_arch_ops
 * (up to `extension`, so caps and min_sets read 0), and it forwards the
 * batch's views through the encoder itself, as every architecture did
 * before the embedding seam. The host must load it, train it on the
 * default structure, and refuse it with any other structure. */
#include <stddef.h>
#include <stdlib.h>

#include <contrast/contrast.h>

typedef struct abi11 {
    ct_encoder *encoder;
    ct_tensor *w, *b;
} abi11;

static const ct_param_spec abi11_params[] = {CT_PARAM_END};

static ct_status abi11_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    (void)s;
    abi11 *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "abi11_simclr: out of memory");
    a->encoder = env->encoder;
    int64_t ws[2] = {32, env->encoder->dim}, bs[1] = {32};
    a->w = ct_params_add(env->store, "head.weight", CT_PARAM_TRAINABLE, 2, ws, CT_INIT_LINEAR_DEFAULT, 0, 0, err);
    a->b = a->w ? ct_params_add(env->store, "head.bias", CT_PARAM_TRAINABLE, 1, bs, CT_INIT_ZEROS, 0, 0, err) : NULL;
    if (!a->b) {
        free(a);
        return err->code ? err->code : CT_ERR_INVALID;
    }
    *self = a;
    return CT_OK;
}

static void abi11_destroy(void *self) { free(self); }

static ct_tensor *abi11_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info) {
    (void)info;
    abi11 *a = self;
    if (b->n_views < 2) return ct_graph_fail(g, CT_ERR_INVALID, "abi11_simclr: needs 2 views");
    ct_tensor *x = ct_concat(g, (ct_tensor *const *)b->views, 2, 0);
    ct_tensor *f = x ? a->encoder->ops->forward(a->encoder->self, g, x) : NULL;
    ct_tensor *z = f ? ct_l2_normalize(g, ct_linear(g, f, a->w, a->b), 1e-12f) : NULL;
    int32_t *group = ct_graph_alloc(g, 2 * (size_t)b->n * sizeof *group);
    if (!z || !group) return NULL;
    for (int i = 0; i < 2 * b->n; i++) group[i] = i % b->n;
    return ct_nt_xent(g, z, group, 0.5f);
}

static const ct_arch_ops abi11_ops = {
    .name = "abi11_simclr",
    .description = "an ABI 1.1 architecture (forwards views itself)",
    .params = abi11_params,
    .create = abi11_create,
    .destroy = abi11_destroy,
    .loss = abi11_loss,
};

static ct_status abi11_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    (void)err;
    /* The struct a 1.1 plugin passes ends after `extension`. */
    return ct__register_architecture(reg, &abi11_ops, offsetof(ct_arch_ops, extension) + sizeof abi11_ops.extension);
}

CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void);
CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void) {
    static const ct_plugin_desc desc = {CT_ABI_MAJOR, 1, sizeof(ct_plugin_desc), 0, CT_BUILD_TAG, "abi11_arch", "1.1.0",
                                        "MIT", "an ABI 1.1 architecture", CT_ROLE_ARCHITECTURE, abi11_init, NULL,
                                        {NULL, NULL, NULL, NULL, NULL, NULL}};
    return &desc;
}

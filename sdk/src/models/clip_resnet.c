/* The clip ResNet (contrast/models.h): frames through the image trunk,
 * temporal residual blocks of 3-D convolutions over the last stage's maps,
 * then the mean over time and space.
 *
 * Layout: the trunk sees (N*T, C, H, W) (frames are contiguous per clip),
 * its maps (N*T, D, h, w) are viewed as (N, T, D, h, w) and permuted to
 * PyTorch's Conv3d layout (N, D, T, h, w). Batch norm over (N, D, T*h, w)
 * is BatchNorm3d's per-channel statistics over N, T, h, w. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/models.h"
#include "contrast/ops.h"

typedef struct ct__tblock {
    ct_tensor *w, *bn_w, *bn_b, *mean, *var, *count;
} ct__tblock;

struct ct_clip_resnet {
    ct_clip_resnet_config cfg;
    ct_resnet *trunk;
    ct__tblock *blocks;
    int64_t dim;
    float momentum, eps;
};

static ct_tensor *declare(ct_params *p, const char *prefix, int layer, const char *name, ct_param_kind kind,
                          int ndim, const int64_t *shape, ct_init init, uint32_t flags, ct_error *err) {
    char full[256];
    snprintf(full, sizeof full, "%stemporal.%d.%s", prefix, layer, name);
    return ct_params_add(p, full, kind, ndim, shape, init, 0.0f, flags, err);
}

static ct_status declare_block(ct_clip_resnet *m, ct_params *p, const char *prefix, int i, ct_error *err) {
    const int64_t d = m->dim, kt = m->cfg.temporal_kernel, ks = m->cfg.spatial_kernel;
    int64_t ws[5] = {d, d, kt, ks, ks}, cs[1] = {d};
    ct__tblock *b = &m->blocks[i];
    if (!(b->w = declare(p, prefix, i, "conv.weight", CT_PARAM_TRAINABLE, 5, ws, CT_INIT_KAIMING_NORMAL, 0, err)) ||
        !(b->bn_w = declare(p, prefix, i, "bn.weight", CT_PARAM_TRAINABLE, 1, cs, CT_INIT_ONES, CT_PARAM_NO_DECAY, err)) ||
        !(b->bn_b = declare(p, prefix, i, "bn.bias", CT_PARAM_TRAINABLE, 1, cs, CT_INIT_ZEROS, CT_PARAM_NO_DECAY, err)) ||
        !(b->mean = declare(p, prefix, i, "bn.running_mean", CT_PARAM_BUFFER, 1, cs, CT_INIT_ZEROS, 0, err)) ||
        !(b->var = declare(p, prefix, i, "bn.running_var", CT_PARAM_BUFFER, 1, cs, CT_INIT_ONES, 0, err)) ||
        !(b->count = declare(p, prefix, i, "bn.num_batches_tracked", CT_PARAM_BUFFER, 0, cs, CT_INIT_ZEROS, 0, err)))
        return err->code ? err->code : CT_ERR_INVALID;
    return CT_OK;
}

ct_status ct_clip_resnet_new(const ct_clip_resnet_config *cfg, ct_params *store, const char *prefix,
                             ct_clip_resnet **out, ct_error *err) {
    *out = NULL;
    if (!prefix) prefix = "";
    if (cfg->temporal_layers < 0 || cfg->temporal_layers > 16)
        return ct_error_set(err, CT_ERR_CONFIG, "clip_resnet: temporal_layers %d (need 0..16)", cfg->temporal_layers);
    if (cfg->temporal_layers &&
        (cfg->temporal_kernel < 1 || cfg->temporal_kernel % 2 == 0 || cfg->spatial_kernel < 1 || cfg->spatial_kernel % 2 == 0))
        return ct_error_set(err, CT_ERR_CONFIG, "clip_resnet: temporal_kernel %d and spatial_kernel %d must be odd and >= 1",
                            cfg->temporal_kernel, cfg->spatial_kernel);
    ct_clip_resnet *m = calloc(1, sizeof *m);
    if (!m) return ct_error_set(err, CT_ERR_NOMEM, "clip_resnet: out of memory");
    m->cfg = *cfg;
    ct_status st = ct_resnet_new(&cfg->trunk, store, prefix, &m->trunk, err);
    if (st == CT_OK) {
        m->dim = ct_resnet_out_dim(m->trunk);
        m->momentum = cfg->trunk.bn_momentum > 0.0f ? cfg->trunk.bn_momentum : 0.1f;
        m->eps = cfg->trunk.bn_eps > 0.0f ? cfg->trunk.bn_eps : 1e-5f;
        if (cfg->temporal_layers && !(m->blocks = calloc((size_t)cfg->temporal_layers, sizeof *m->blocks)))
            st = ct_error_set(err, CT_ERR_NOMEM, "clip_resnet: out of memory");
    }
    for (int i = 0; st == CT_OK && i < cfg->temporal_layers; i++) st = declare_block(m, store, prefix, i, err);
    if (st != CT_OK) {
        ct_clip_resnet_free(m);
        return st;
    }
    *out = m;
    return CT_OK;
}

void ct_clip_resnet_free(ct_clip_resnet *m) {
    if (!m) return;
    ct_resnet_free(m->trunk);
    free(m->blocks);
    free(m);
}

int64_t ct_clip_resnet_out_dim(const ct_clip_resnet *m) { return m->dim; }

/* relu(bn(conv3d(z)) + z) on z (N, D, T, h, w). */
static ct_tensor *temporal_block(ct_clip_resnet *m, ct_graph *g, const ct__tblock *b, ct_tensor *z) {
    const int stride[3] = {1, 1, 1};
    const int pad[3] = {m->cfg.temporal_kernel / 2, m->cfg.spatial_kernel / 2, m->cfg.spatial_kernel / 2};
    ct_tensor *y = ct_conv3d(g, z, b->w, NULL, stride, pad);
    if (!y) return NULL;
    if (ct_graph_is_train(g) && b->count->data) b->count->data[0] += 1.0f;
    int64_t s4[4] = {z->shape[0], z->shape[1], z->shape[2] * z->shape[3], z->shape[4]};
    ct_tensor *y4 = ct_reshape(g, y, 4, s4), *z4 = ct_reshape(g, z, 4, s4);
    ct_tensor *o = ct_batchnorm_add_relu(g, y4, b->bn_w, b->bn_b, b->mean, b->var, m->momentum, m->eps, z4);
    return o ? ct_reshape(g, o, 5, z->shape) : NULL;
}

ct_tensor *ct_clip_resnet_forward(ct_clip_resnet *m, ct_graph *g, ct_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 4 && x->ndim != 5)
        return ct_graph_fail(g, CT_ERR_SHAPE, "clip_resnet: input must be clips (N,T,C,H,W) or images (N,C,H,W), got %dD",
                             x->ndim);
    const int64_t n = x->shape[0], t = x->ndim == 5 ? x->shape[1] : 1;
    const int64_t *chw = x->shape + (x->ndim == 5 ? 2 : 1);
    int64_t frames[4] = {n * t, chw[0], chw[1], chw[2]};
    ct_tensor *maps = ct_resnet_forward_maps(m->trunk, g, ct_reshape(g, x, 4, frames));
    if (!maps) return NULL;
    const int64_t d = maps->shape[1], h = maps->shape[2], w = maps->shape[3];
    int64_t ntd[5] = {n, t, d, h, w};
    static const int to_ndthw[5] = {0, 2, 1, 3, 4};
    ct_tensor *z = ct_permute(g, ct_reshape(g, maps, 5, ntd), to_ndthw);
    for (int i = 0; z && i < m->cfg.temporal_layers; i++) z = temporal_block(m, g, &m->blocks[i], z);
    if (!z) return NULL;
    int64_t pooled[4] = {n, d, t * h, w};
    return ct_global_avgpool(g, ct_reshape(g, z, 4, pooled));
}

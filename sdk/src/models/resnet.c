/* ResNet (BasicBlock / Bottleneck) with torchvision's parameter names.
 *
 * Layers hold pointers to their tensors in the store; forward is a plain
 * walk. Every batch norm that feeds a ReLU uses the fused
 * ct_batchnorm_relu, and each block's last batch norm is fused with the
 * residual join (ct_batchnorm_add_relu): compared with separate ops this
 * saves several activation-sized passes per block and one activation.
 * With group norm (cfg.norm) every norm is ct_group_norm followed by the
 * ReLU or the residual join as separate ops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/models.h"
#include "contrast/ops.h"

typedef struct ct__bn {
    ct_tensor *weight, *bias, *mean, *var, *count;
} ct__bn;

typedef struct ct__convbn {
    ct_tensor *w;
    int stride, pad;
    ct__bn bn;
} ct__convbn;

typedef struct ct__block {
    ct__convbn c[3]; /* basic: 2 used; bottleneck: 3 */
    bool has_down;
    ct__convbn down;
} ct__block;

struct ct_resnet {
    ct_resnet_config cfg;
    ct__convbn stem;
    ct__block *blocks;
    int n_blocks;
    int64_t out_dim;
};

ct_resnet_config ct_resnet18_config(int in_channels) {
    ct_resnet_config c;
    memset(&c, 0, sizeof c);
    c.block = CT_RESNET_BASIC;
    c.n_stages = 4;
    for (int i = 0; i < 4; i++) c.blocks[i] = 2, c.widths[i] = 64 << i;
    c.in_channels = in_channels;
    c.imagenet_stem = true;
    c.stem_width = 64;
    return c;
}

static ct_tensor *ct__declare(ct_params *p, const char *prefix, const char *name, ct_param_kind kind,
                              int ndim, const int64_t *shape, ct_init init, uint32_t flags,
                              ct_error *err) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return ct_params_add(p, full, kind, ndim, shape, init, 0.0f, flags, err);
}

static ct_status ct__declare_convbn(ct_params *p, const char *prefix, const char *conv_name,
                                    const char *bn_name, int64_t cin, int64_t cout, int k, int stride,
                                    const ct_resnet_config *cfg, ct__convbn *out, ct_error *err) {
    char n[224];
    int64_t ws[4] = {cout, cin, k, k}, cs[1] = {cout};
    const bool group_norm = cfg->norm == CT_RESNET_GROUP_NORM;
    /* KAIMING_UNIFORM with no init_arg: U(+-1/sqrt(fan_in)), fan_in = cin*k*k. */
    const ct_init wi = cfg->init == CT_RESNET_INIT_PYTORCH_DEFAULT ? CT_INIT_KAIMING_UNIFORM : CT_INIT_KAIMING_NORMAL;
    out->stride = stride, out->pad = k / 2;
    snprintf(n, sizeof n, "%s.weight", conv_name);
    if (!(out->w = ct__declare(p, prefix, n, CT_PARAM_TRAINABLE, 4, ws, wi, 0, err)))
        return err->code;
    static const char *fields[5] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    static const ct_init inits[5] = {CT_INIT_ONES, CT_INIT_ZEROS, CT_INIT_ZEROS, CT_INIT_ONES, CT_INIT_ZEROS};
    ct_tensor **dst[5] = {&out->bn.weight, &out->bn.bias, &out->bn.mean, &out->bn.var, &out->bn.count};
    /* GroupNorm has weight and bias only (no running statistics). */
    for (int i = 0; i < (group_norm ? 2 : 5); i++) {
        snprintf(n, sizeof n, "%s.%s", bn_name, fields[i]);
        ct_param_kind kind = i < 2 ? CT_PARAM_TRAINABLE : CT_PARAM_BUFFER;
        /* num_batches_tracked is a 0-d tensor in PyTorch. */
        *dst[i] = ct__declare(p, prefix, n, kind, i == 4 ? 0 : 1, cs, inits[i],
                              i < 2 ? CT_PARAM_NO_DECAY : 0, err);
        if (!*dst[i]) return err->code;
    }
    return CT_OK;
}

ct_status ct_resnet_new(const ct_resnet_config *cfg, ct_params *store, const char *prefix,
                        ct_resnet **out, ct_error *err) {
    *out = NULL;
    if (!prefix) prefix = "";
    if (cfg->n_stages < 1 || cfg->n_stages > CT_RESNET_MAX_STAGES)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: %d stages (need 1..%d)", cfg->n_stages,
                            CT_RESNET_MAX_STAGES);
    if (cfg->in_channels < 1 || cfg->stem_width < 1)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: in_channels %d and stem_width %d must be >= 1",
                            cfg->in_channels, cfg->stem_width);
    if (cfg->block != CT_RESNET_BASIC && cfg->block != CT_RESNET_BOTTLENECK)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: unknown block type %d", (int)cfg->block);
    if (cfg->norm != CT_RESNET_BATCH_NORM && cfg->norm != CT_RESNET_GROUP_NORM)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: unknown norm %d", (int)cfg->norm);
    if (cfg->init != CT_RESNET_INIT_KAIMING_FAN_OUT && cfg->init != CT_RESNET_INIT_PYTORCH_DEFAULT)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: unknown init %d", (int)cfg->init);
    const bool gn = cfg->norm == CT_RESNET_GROUP_NORM;
    const int groups = cfg->norm_groups > 0 ? cfg->norm_groups : 8;
    if (gn && cfg->stem_width % groups != 0)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: stem_width %d is not a multiple of norm_groups %d",
                            cfg->stem_width, groups);
    int total = 0;
    for (int s = 0; s < cfg->n_stages; s++) {
        if (cfg->blocks[s] < 1 || cfg->widths[s] < 1)
            return ct_error_set(err, CT_ERR_CONFIG, "resnet: stage %d has %d blocks of width %d (need >= 1)",
                                s + 1, cfg->blocks[s], cfg->widths[s]);
        if (gn && cfg->widths[s] % groups != 0)
            return ct_error_set(err, CT_ERR_CONFIG, "resnet: stage %d width %d is not a multiple of norm_groups %d",
                                s + 1, cfg->widths[s], groups);
        total += cfg->blocks[s];
    }
    ct_resnet *r = calloc(1, sizeof *r);
    if (r) r->blocks = calloc((size_t)total, sizeof *r->blocks);
    if (!r || !r->blocks) {
        if (r) free(r);
        return ct_error_set(err, CT_ERR_NOMEM, "resnet: out of memory");
    }
    r->cfg = *cfg;
    if (r->cfg.bn_momentum == 0.0f) r->cfg.bn_momentum = 0.1f;
    if (r->cfg.bn_eps == 0.0f) r->cfg.bn_eps = 1e-5f;
    r->cfg.norm_groups = groups;
    r->n_blocks = total;
    const bool bottle = cfg->block == CT_RESNET_BOTTLENECK;
    const int expansion = bottle ? 4 : 1;
    ct_status st = ct__declare_convbn(store, prefix, "conv1", "bn1", cfg->in_channels, cfg->stem_width,
                                      cfg->imagenet_stem ? 7 : 3, cfg->imagenet_stem ? 2 : 1, cfg, &r->stem, err);
    int64_t inplanes = cfg->stem_width;
    int b = 0;
    for (int s = 0; st == CT_OK && s < cfg->n_stages; s++) {
        for (int i = 0; st == CT_OK && i < cfg->blocks[s]; i++, b++) {
            ct__block *blk = &r->blocks[b];
            const int stride = (s > 0 && i == 0) ? 2 : 1;
            const int64_t planes = cfg->widths[s], outc = planes * expansion;
            char pre[96], cn[128], bn[128];
            snprintf(pre, sizeof pre, "layer%d.%d", s + 1, i);
            const int nconv = bottle ? 3 : 2;
            for (int c = 0; st == CT_OK && c < nconv; c++) {
                int64_t cin = c == 0 ? inplanes : planes, cout = (c == nconv - 1) ? outc : planes;
                int k = bottle ? (c == 1 ? 3 : 1) : 3;
                /* torchvision: the stride sits on the 3x3 conv (ResNet v1.5). */
                int cs = (bottle ? c == 1 : c == 0) ? stride : 1;
                snprintf(cn, sizeof cn, "%s.conv%d", pre, c + 1);
                snprintf(bn, sizeof bn, "%s.bn%d", pre, c + 1);
                st = ct__declare_convbn(store, prefix, cn, bn, cin, cout, k, cs, cfg, &blk->c[c], err);
            }
            if (st == CT_OK && (stride != 1 || inplanes != outc)) {
                blk->has_down = true;
                snprintf(cn, sizeof cn, "%s.downsample.0", pre);
                snprintf(bn, sizeof bn, "%s.downsample.1", pre);
                st = ct__declare_convbn(store, prefix, cn, bn, inplanes, outc, 1, stride, cfg, &blk->down, err);
            }
            inplanes = outc;
        }
    }
    if (st != CT_OK) {
        ct_resnet_free(r);
        return st;
    }
    r->out_dim = inplanes;
    *out = r;
    return CT_OK;
}

void ct_resnet_free(ct_resnet *r) {
    if (!r) return;
    free(r->blocks);
    free(r);
}

int64_t ct_resnet_out_dim(const ct_resnet *r) { return r->out_dim; }

/* conv -> batch norm, then ReLU (relu), or the residual join
 * relu(bn + residual) when residual is not NULL. */
static ct_tensor *ct__convbn_forward(const ct_resnet *r, ct_graph *g, const ct__convbn *l, ct_tensor *x,
                                     bool relu, ct_tensor *residual) {
    ct_tensor *y = ct_conv2d(g, x, l->w, NULL, l->stride, l->pad);
    if (r->cfg.norm == CT_RESNET_GROUP_NORM) {
        ct_tensor *n = ct_group_norm(g, y, r->cfg.norm_groups, l->bn.weight, l->bn.bias, r->cfg.bn_eps);
        if (residual) return ct_add_relu(g, n, residual);
        return relu ? ct_relu(g, n) : n;
    }
    if (ct_graph_is_train(g) && l->bn.count && l->bn.count->data) l->bn.count->data[0] += 1.0f;
    if (residual)
        return ct_batchnorm_add_relu(g, y, l->bn.weight, l->bn.bias, l->bn.mean, l->bn.var, r->cfg.bn_momentum,
                                     r->cfg.bn_eps, residual);
    if (relu)
        return ct_batchnorm_relu(g, y, l->bn.weight, l->bn.bias, l->bn.mean, l->bn.var, r->cfg.bn_momentum,
                                 r->cfg.bn_eps);
    return ct_batchnorm(g, y, l->bn.weight, l->bn.bias, l->bn.mean, l->bn.var, r->cfg.bn_momentum,
                        r->cfg.bn_eps);
}

ct_tensor *ct_resnet_forward_maps(ct_resnet *r, ct_graph *g, ct_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 4 || x->shape[1] != r->cfg.in_channels)
        return ct_graph_fail(g, CT_ERR_SHAPE, "resnet: input must be (N,%d,H,W), got %dD with %lld channels",
                             r->cfg.in_channels, x->ndim, (long long)(x->ndim > 1 ? x->shape[1] : 0));
    ct_tensor *h = ct__convbn_forward(r, g, &r->stem, x, true, NULL);
    if (r->cfg.imagenet_stem) h = ct_maxpool2d(g, h, 3, 2, 1);
    const int nconv = r->cfg.block == CT_RESNET_BOTTLENECK ? 3 : 2;
    for (int b = 0; b < r->n_blocks && h; b++) {
        const ct__block *blk = &r->blocks[b];
        ct_tensor *idt = blk->has_down ? ct__convbn_forward(r, g, &blk->down, h, false, NULL) : h;
        ct_tensor *o = h;
        for (int c = 0; c < nconv - 1; c++) o = ct__convbn_forward(r, g, &blk->c[c], o, true, NULL);
        h = idt ? ct__convbn_forward(r, g, &blk->c[nconv - 1], o, true, idt) : NULL;
    }
    return h;
}

ct_tensor *ct_resnet_forward(ct_resnet *r, ct_graph *g, ct_tensor *x) {
    return ct_global_avgpool(g, ct_resnet_forward_maps(r, g, x));
}

/* bench/clip_dump OUT.safetensors: the clip encoder's weights, an input,
 * its outputs (eval and train mode), the gradients of sum(out^2) and the
 * running statistics after the training-mode pass, for
 * bench/clip_crosscheck.py to compare with the same network in PyTorch.
 * The network's shape is written into the file's metadata ("config"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/models.h>

#include "training/checkpoint.h"

enum { N = 3, T = 5, C = 1, H = 16, W = 16 };

static ct_safetensors_tensor entry(const char *name, const ct_tensor *t, const float *data) {
    ct_safetensors_tensor e;
    memset(&e, 0, sizeof e);
    e.name = name;
    e.dtype = CT_SAFETENSORS_F32;
    e.ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) e.shape[d] = t->shape[d];
    e.data = data;
    e.nbytes = (size_t)t->numel * sizeof(float);
    return e;
}

static float *copy(const float *src, int64_t n) {
    float *p = malloc((size_t)n * sizeof *p);
    if (p) memcpy(p, src, (size_t)n * sizeof *p);
    return p;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.safetensors\n", argv[0]);
        return 2;
    }
    ct_clip_resnet_config c;
    memset(&c, 0, sizeof c);
    c.trunk.block = CT_RESNET_BASIC;
    c.trunk.n_stages = 2;
    c.trunk.blocks[0] = c.trunk.blocks[1] = 1;
    c.trunk.widths[0] = 8;
    c.trunk.widths[1] = 16;
    c.trunk.in_channels = C;
    c.trunk.stem_width = 8;
    c.temporal_layers = 2;
    c.temporal_kernel = 3;
    c.spatial_kernel = 3;
    ct_error err = CT_ERROR_INIT;
    ct_params *store = ct_params_new(3);
    ct_clip_resnet *m = NULL;
    if (ct_clip_resnet_new(&c, store, "encoder.", &m, &err) != CT_OK || ct_params_finalize(store, &err) != CT_OK) {
        fprintf(stderr, "clip_dump: %s\n", err.msg);
        return 1;
    }
    size_t np = ct_params_count(store), n = 0;
    /* every entry (initial values), then input, two outputs, grads, post-training stats */
    ct_safetensors_tensor *out = calloc(2 * np + 4, sizeof *out);
    char (*names)[160] = calloc(2 * np + 4, sizeof *names);
    float **owned = calloc(2 * np + 4, sizeof *owned);
    for (size_t i = 0; i < np; i++) {
        const char *name;
        ct_tensor *t = ct_params_at(store, i, &name, NULL, NULL);
        snprintf(names[n], sizeof names[n], "%s", name);
        owned[n] = copy(t->data, t->numel);
        out[n] = entry(names[n], t, owned[n]);
        n++;
    }
    ct_graph *g = ct_graph_new(0);
    int64_t shape[5] = {N, T, C, H, W};
    ct_tensor *x = ct_tensor_new(g, 5, shape);
    ct_rng r;
    ct_rng_init(&r, 1, 0);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = ct_rng_uniform(&r);
    snprintf(names[n], sizeof names[n], "input");
    owned[n] = copy(x->data, x->numel);
    out[n] = entry(names[n], x, owned[n]);
    n++;
    const char *modes[2] = {"out.eval", "out.train"};
    for (int mode = 0; mode < 2; mode++) {
        ct_graph_set_train(g, mode == 1);
        ct_params_zero_grad(store);
        ct_tensor *e = ct_clip_resnet_forward(m, g, x);
        if (!e) {
            fprintf(stderr, "clip_dump: %s\n", ct_graph_error(g));
            return 1;
        }
        snprintf(names[n], sizeof names[n], "%s", modes[mode]);
        owned[n] = copy(e->data, e->numel);
        out[n] = entry(names[n], e, owned[n]);
        n++;
        if (mode == 1 && ct_graph_backward(g, ct_sum(g, ct_mul(g, e, e))) != CT_OK) {
            fprintf(stderr, "clip_dump: backward: %s\n", ct_graph_error(g));
            return 1;
        }
    }
    for (size_t i = 0; i < np; i++) {
        const char *name;
        ct_param_kind kind;
        ct_tensor *t = ct_params_at(store, i, &name, &kind, NULL);
        snprintf(names[n], sizeof names[n], "%s.%s", kind == CT_PARAM_TRAINABLE ? "grad" : "post", name);
        owned[n] = copy(kind == CT_PARAM_TRAINABLE ? t->grad : t->data, t->numel);
        out[n] = entry(names[n], t, owned[n]);
        n++;
    }
    char cfg[256];
    snprintf(cfg, sizeof cfg,
             "{\"in_channels\": %d, \"stem_width\": %d, \"widths\": [%d, %d], \"blocks\": [1, 1], \"temporal_layers\": %d, "
             "\"temporal_kernel\": %d, \"spatial_kernel\": %d}",
             C, c.trunk.stem_width, c.trunk.widths[0], c.trunk.widths[1], c.temporal_layers, c.temporal_kernel,
             c.spatial_kernel);
    ct_st_meta meta[1] = {{"config", cfg}};
    ct_status st = ct_safetensors_write(argv[1], out, n, meta, 1, &err);
    if (st != CT_OK) fprintf(stderr, "clip_dump: %s\n", err.msg);
    else printf("wrote %s (%zu tensors)\n", argv[1], n);
    for (size_t i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(names);
    free(out);
    ct_graph_free(g);
    ct_clip_resnet_free(m);
    ct_params_free(store);
    return st == CT_OK ? 0 : 1;
}

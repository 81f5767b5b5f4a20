/* Shared pieces of the memory_bank, momentum and clustering architectures
 * (header-only: each plugin is its own .so and the SDK has no head API).
 *
 * - The projection head: an MLP with PyTorch nn.Sequential names, the same
 *   layout and parameter names as end_to_end's head ("head.0.weight", ...),
 *   under any prefix ("key_head." for MoCo's key head).
 * - encode_views(): every view of a batch through an encoder, views of equal
 *   size forwarded together (so batch norm sees all of them, and multi-crop
 *   sizes are forwarded per size), with the row offset of each view.
 * - Small helpers for the flat float loops all three need. */
#ifndef CT_ARCH_COMMON_H
#define CT_ARCH_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#define ARCH_MAX_LAYERS 8

/* The head's parameter schema entries (put inside a ct_param_spec array). */
#define ARCH_HEAD_PARAMS(hidden_def, out_def)                                                             \
    CT_PARAM_INTS("head_hidden", hidden_def, 1, 1 << 20,                                                   \
                  "hidden sizes of the projection MLP ([] for a linear head)"),                            \
        CT_PARAM_INT("head_out", out_def, 1, 1 << 20, "projection output size"),                           \
        CT_PARAM_BOOL("head_bn", "false", "batch norm after each hidden linear layer"),                   \
        CT_PARAM_BOOL("head_bias", "true",                                                                 \
                      "biases in the head's linear layers (hidden ones drop it under head_bn)"),           \
        CT_PARAM_FLOAT("bn_momentum", "0.1", 0, 1, "head batch-norm running-average momentum")

typedef struct arch_layer {
    ct_tensor *w, *b;                     /* Linear (b NULL when bias is off) */
    ct_tensor *bn_w, *bn_b, *bn_m, *bn_v; /* BatchNorm1d after it, or NULL */
    bool relu;                            /* ReLU after it (every layer but the last) */
} arch_layer;

typedef struct arch_head {
    int n_layers;
    arch_layer layer[ARCH_MAX_LAYERS];
    float bn_momentum;
    int64_t out_dim;
} arch_head;

static inline ct_tensor *arch_declare(ct_params *store, const char *prefix, int idx, const char *field,
                                      ct_param_kind kind, int ndim, const int64_t *shape, ct_init init,
                                      float arg, uint32_t flags, ct_error *err) {
    char name[160];
    snprintf(name, sizeof name, "%s.%d.%s", prefix, idx, field);
    return ct_params_add(store, name, kind, ndim, shape, init, arg, flags, err);
}

static inline ct_status arch_head_layer(ct_params *store, const char *prefix, int idx, int64_t in, int64_t out,
                                        bool bias, bool bn, arch_layer *L, ct_error *err) {
    int64_t ws[2] = {out, in}, cs[1] = {out};
    L->w = arch_declare(store, prefix, idx, "weight", CT_PARAM_TRAINABLE, 2, ws, CT_INIT_LINEAR_DEFAULT, 0, 0, err);
    if (!L->w) return err ? err->code : CT_ERR_INVALID;
    if (bias) {
        L->b = arch_declare(store, prefix, idx, "bias", CT_PARAM_TRAINABLE, 1, cs, CT_INIT_FAN_IN_UNIFORM,
                            (float)in, CT_PARAM_NO_DECAY, err);
        if (!L->b) return err ? err->code : CT_ERR_INVALID;
    }
    if (!bn) return CT_OK;
    idx++;
    L->bn_w = arch_declare(store, prefix, idx, "weight", CT_PARAM_TRAINABLE, 1, cs, CT_INIT_ONES, 0,
                           CT_PARAM_NO_DECAY, err);
    L->bn_b = L->bn_w ? arch_declare(store, prefix, idx, "bias", CT_PARAM_TRAINABLE, 1, cs, CT_INIT_ZEROS, 0,
                                     CT_PARAM_NO_DECAY, err)
                      : NULL;
    L->bn_m = L->bn_b ? arch_declare(store, prefix, idx, "running_mean", CT_PARAM_BUFFER, 1, cs, CT_INIT_ZEROS,
                                     0, CT_PARAM_NO_DECAY, err)
                      : NULL;
    L->bn_v = L->bn_m ? arch_declare(store, prefix, idx, "running_var", CT_PARAM_BUFFER, 1, cs, CT_INIT_ONES, 0,
                                     CT_PARAM_NO_DECAY, err)
                      : NULL;
    return L->bn_v ? CT_OK : (err ? err->code : CT_ERR_INVALID);
}

/* Declare the head described by the ARCH_HEAD_PARAMS settings under
 * `prefix` ("head"), input size `in`. `owner` names the plugin in errors. */
static inline ct_status arch_head_create(const ct_settings *s, ct_params *store, const char *prefix, int64_t in,
                                         arch_head *h, const char *owner, ct_error *err) {
    size_t n_hidden = ct_settings_len(s, "head_hidden");
    memset(h, 0, sizeof *h);
    if (n_hidden + 1 > ARCH_MAX_LAYERS)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: head_hidden (%s) has %zu layers, at most %d", owner,
                            ct_settings_origin(s, "head_hidden"), n_hidden, ARCH_MAX_LAYERS - 1);
    bool bn = ct_settings_bool(s, "head_bn"), bias = ct_settings_bool(s, "head_bias");
    h->bn_momentum = (float)ct_settings_float(s, "bn_momentum");
    int idx = 0;
    for (size_t i = 0; i <= n_hidden; i++) {
        bool last = i == n_hidden;
        int64_t out = last ? ct_settings_int(s, "head_out") : ct_settings_int_at(s, "head_hidden", i);
        arch_layer *L = &h->layer[h->n_layers++];
        /* A bias before batch norm is redundant (BN removes the mean). */
        ct_status st = arch_head_layer(store, prefix, idx, in, out, bias && (last || !bn), !last && bn, L, err);
        if (st != CT_OK) {
            ct_error_prefix(err, "%s: ", owner);
            return st;
        }
        idx += 1 + (!last && bn) + !last; /* Linear, BatchNorm1d, ReLU each take an index */
        L->relu = !last;
        in = out;
    }
    h->out_dim = in;
    return CT_OK;
}

static inline ct_tensor *arch_head_forward(const arch_head *h, ct_graph *g, ct_tensor *x) {
    for (int i = 0; i < h->n_layers && x; i++) {
        const arch_layer *L = &h->layer[i];
        x = ct_linear(g, x, L->w, L->b);
        if (L->bn_w) x = ct_batchnorm(g, x, L->bn_w, L->bn_b, L->bn_m, L->bn_v, h->bn_momentum, 1e-5f);
        if (L->relu) x = ct_relu(g, x);
    }
    return x;
}

/* encoder -> head -> L2 normalisation. */
static inline ct_tensor *arch_embed(const ct_encoder *enc, const arch_head *h, ct_graph *g, ct_tensor *x) {
    ct_tensor *f = x ? enc->ops->forward(enc->self, g, x) : NULL;
    f = f ? arch_head_forward(h, g, f) : NULL;
    return f ? ct_l2_normalize(g, f, 1e-12f) : NULL;
}

static inline bool arch_same_size(const ct_tensor *x, const ct_tensor *y) {
    return x->ndim == y->ndim && x->shape[1] == y->shape[1] && x->shape[2] == y->shape[2] &&
           x->shape[3] == y->shape[3];
}

/* Check the views of a batch: at least `min_views`, each (n, C, H, W). */
static inline ct_tensor *arch_check_batch(ct_graph *g, const ct_batch *b, int min_views, const char *owner) {
    if (b->n < 1 || b->n_views < min_views)
        return ct_graph_fail(g, CT_ERR_INVALID, "%s: needs at least %d view(s) of at least one sample, got %d x %d",
                             owner, min_views, b->n, b->n_views);
    for (int v = 0; v < b->n_views; v++)
        if (!b->views[v] || b->views[v]->ndim != 4 || b->views[v]->shape[0] != b->n)
            return ct_graph_fail(g, CT_ERR_SHAPE, "%s: view %d is not (%d, C, H, W)", owner, v, b->n);
    return b->views[0];
}

/* Normalised embeddings of every view: views of equal size are forwarded
 * together. Rows come out grouped by size (in order of first appearance),
 * view order within a group; row_of[v] receives the first row of view v
 * (its n rows are contiguous). */
static inline ct_tensor *arch_embed_views(const ct_encoder *enc, const arch_head *h, ct_graph *g, const ct_batch *b,
                                          int64_t row_of[CT_MAX_VIEWS]) {
    bool done[CT_MAX_VIEWS] = {false};
    ct_tensor *parts[CT_MAX_VIEWS];
    int n_parts = 0;
    int64_t row = 0;
    for (int v = 0; v < b->n_views; v++) {
        if (done[v]) continue;
        ct_tensor *same[CT_MAX_VIEWS];
        int n_same = 0;
        for (int u = v; u < b->n_views; u++) {
            if (done[u] || !arch_same_size(b->views[u], b->views[v])) continue;
            done[u] = true;
            same[n_same++] = b->views[u];
            row_of[u] = row;
            row += b->n;
        }
        ct_tensor *x = n_same == 1 ? same[0] : ct_concat(g, same, n_same, 0);
        ct_tensor *z = arch_embed(enc, h, g, x);
        if (!z) return NULL;
        parts[n_parts++] = z;
    }
    return n_parts == 1 ? parts[0] : ct_concat(g, parts, n_parts, 0);
}

/* Grow a malloc'd scratch array to hold n elements of `size` bytes. */
static inline bool arch_reserve(void **p, size_t *cap, size_t n, size_t size) {
    if (n <= *cap) return true;
    void *q = realloc(*p, n * size);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

/* Row-wise L2 normalisation in place (rows of d floats). */
static inline void arch_normalize_rows(float *x, int64_t rows, int64_t d) {
    for (int64_t i = 0; i < rows; i++) {
        float *r = x + i * d;
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)r[j] * r[j];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int64_t j = 0; j < d; j++) r[j] *= inv;
    }
}

#endif

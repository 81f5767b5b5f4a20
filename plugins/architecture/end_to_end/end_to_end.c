/* end_to_end: SimCLR. Negatives are the other samples of the batch.
 *
 * Every view of a batch goes through the shared encoder (views of equal size
 * are concatenated into one forward pass, so batch norm sees all 2N of
 * them, as in SimCLR; multi-crop sizes are forwarded per size), then a
 * projection head MLP, then L2 normalisation and NT-Xent (ct_nt_xent) with
 * group id = sample index: every pair of views of a sample are positives,
 * every view of another sample is a negative.
 *
 * Head parameter names follow PyTorch's nn.Sequential indices, so
 * head_hidden = [128] without batch norm gives
 *   head.0 (Linear), head.1 (ReLU), head.2 (Linear)
 * and with head_bn = true
 *   head.0 (Linear, no bias), head.1 (BatchNorm1d), head.2 (ReLU), head.3 (Linear). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#define E2E_MAX_LAYERS 8

typedef struct head_layer {
    ct_tensor *w, *b;                 /* Linear (b NULL when bias is off) */
    ct_tensor *bn_w, *bn_b, *bn_m, *bn_v; /* BatchNorm1d after it, or NULL */
    bool relu;                        /* ReLU after it (every layer but the last) */
} head_layer;

typedef struct e2e {
    const ct_host *host;
    ct_encoder *encoder;
    float temperature;
    float bn_momentum;
    int n_layers;
    head_layer layer[E2E_MAX_LAYERS];
    int32_t *groups; /* scratch: group id per row */
    size_t groups_cap;
} e2e;

static const ct_param_spec e2e_params[] = {
    CT_PARAM_FLOAT("temperature", "0.5", 1e-4, 100, "NT-Xent temperature"),
    CT_PARAM_INTS("head_hidden", "[128]", 1, 1 << 20, "hidden sizes of the projection MLP ([] for a linear head)"),
    CT_PARAM_INT("head_out", "64", 1, 1 << 20, "projection output size"),
    CT_PARAM_BOOL("head_bn", "false", "batch norm after each hidden linear layer"),
    CT_PARAM_BOOL("head_bias", "true", "biases in the head's linear layers (hidden ones drop it under head_bn)"),
    CT_PARAM_FLOAT("bn_momentum", "0.1", 0, 1, "head batch-norm running-average momentum"),
    CT_PARAM_END,
};

static ct_status declare_linear(ct_params *store, int idx, int64_t in, int64_t out, bool bias,
                                head_layer *L, ct_error *err) {
    char name[64];
    int64_t ws[2] = {out, in}, bs[1] = {out};
    snprintf(name, sizeof name, "head.%d.weight", idx);
    L->w = ct_params_add(store, name, CT_PARAM_TRAINABLE, 2, ws, CT_INIT_LINEAR_DEFAULT, 0, 0, err);
    if (!L->w) return err ? err->code : CT_ERR_INVALID;
    if (bias) {
        snprintf(name, sizeof name, "head.%d.bias", idx);
        L->b = ct_params_add(store, name, CT_PARAM_TRAINABLE, 1, bs, CT_INIT_FAN_IN_UNIFORM,
                             (float)in, CT_PARAM_NO_DECAY, err);
        if (!L->b) return err ? err->code : CT_ERR_INVALID;
    }
    return CT_OK;
}

static ct_status declare_bn(ct_params *store, int idx, int64_t c, head_layer *L, ct_error *err) {
    char name[64];
    int64_t s[1] = {c};
    struct {
        const char *field;
        ct_tensor **dst;
        ct_param_kind kind;
        ct_init init;
    } parts[4] = {{"weight", &L->bn_w, CT_PARAM_TRAINABLE, CT_INIT_ONES},
                  {"bias", &L->bn_b, CT_PARAM_TRAINABLE, CT_INIT_ZEROS},
                  {"running_mean", &L->bn_m, CT_PARAM_BUFFER, CT_INIT_ZEROS},
                  {"running_var", &L->bn_v, CT_PARAM_BUFFER, CT_INIT_ONES}};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "head.%d.%s", idx, parts[i].field);
        *parts[i].dst = ct_params_add(store, name, parts[i].kind, 1, s, parts[i].init, 0,
                                      CT_PARAM_NO_DECAY, err);
        if (!*parts[i].dst) return err ? err->code : CT_ERR_INVALID;
    }
    return CT_OK;
}

static ct_status e2e_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    size_t n_hidden = ct_settings_len(s, "head_hidden");
    if (n_hidden + 1 > E2E_MAX_LAYERS)
        return ct_error_set(err, CT_ERR_CONFIG, "end_to_end: head_hidden (%s) has %zu layers, at most %d",
                            ct_settings_origin(s, "head_hidden"), n_hidden, E2E_MAX_LAYERS - 1);
    if (!env->encoder || env->encoder->dim <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "end_to_end: the encoder has no output size");
    e2e *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "end_to_end: out of memory");
    a->host = env->host;
    a->encoder = env->encoder;
    a->temperature = (float)ct_settings_float(s, "temperature");
    a->bn_momentum = (float)ct_settings_float(s, "bn_momentum");
    bool bn = ct_settings_bool(s, "head_bn"), bias = ct_settings_bool(s, "head_bias");
    int64_t in = env->encoder->dim;
    int idx = 0;
    ct_status st = CT_OK;
    for (size_t i = 0; i <= n_hidden && st == CT_OK; i++) {
        bool last = i == n_hidden;
        int64_t out = last ? ct_settings_int(s, "head_out") : ct_settings_int_at(s, "head_hidden", i);
        head_layer *L = &a->layer[a->n_layers++];
        /* A bias before batch norm is redundant (BN removes the mean). */
        st = declare_linear(env->store, idx++, in, out, bias && (last || !bn), L, err);
        if (st == CT_OK && !last && bn) st = declare_bn(env->store, idx++, out, L, err);
        if (!last) {
            L->relu = true;
            idx++; /* nn.ReLU has no parameters but takes an index */
        }
        in = out;
    }
    if (st != CT_OK) {
        ct_error_prefix(err, "end_to_end: ");
        free(a);
        return st;
    }
    *self = a;
    return CT_OK;
}

static void e2e_destroy(void *self) {
    e2e *a = self;
    if (!a) return;
    free(a->groups);
    free(a);
}

static ct_tensor *head_forward(e2e *a, ct_graph *g, ct_tensor *x) {
    for (int i = 0; i < a->n_layers && x; i++) {
        head_layer *L = &a->layer[i];
        x = ct_linear(g, x, L->w, L->b);
        if (L->bn_w) x = ct_batchnorm(g, x, L->bn_w, L->bn_b, L->bn_m, L->bn_v, a->bn_momentum, 1e-5f);
        if (L->relu) x = ct_relu(g, x);
    }
    return x;
}

static bool same_size(const ct_tensor *x, const ct_tensor *y) {
    return x->ndim == y->ndim && x->shape[1] == y->shape[1] && x->shape[2] == y->shape[2] &&
           x->shape[3] == y->shape[3];
}

/* Encoder features of every view, views of equal size forwarded together.
 * Rows come out grouped by size (in order of first appearance), and view
 * order within a group; groups[] receives the sample index of each row. */
static ct_tensor *encode_views(e2e *a, ct_graph *g, const ct_batch *b, int32_t *groups) {
    bool done[CT_MAX_VIEWS] = {false};
    ct_tensor *feats[CT_MAX_VIEWS];
    int n_feats = 0;
    int64_t row = 0;
    for (int v = 0; v < b->n_views; v++) {
        if (done[v]) continue;
        ct_tensor *same[CT_MAX_VIEWS];
        int n_same = 0;
        for (int u = v; u < b->n_views; u++) {
            if (done[u] || !same_size(b->views[u], b->views[v])) continue;
            done[u] = true;
            same[n_same++] = b->views[u];
            for (int i = 0; i < b->n; i++) groups[row++] = i;
        }
        ct_tensor *x = n_same == 1 ? same[0] : ct_concat(g, same, n_same, 0);
        ct_tensor *f = x ? a->encoder->ops->forward(a->encoder->self, g, x) : NULL;
        if (!f) return NULL;
        feats[n_feats++] = f;
    }
    return n_feats == 1 ? feats[0] : ct_concat(g, feats, n_feats, 0);
}

static ct_tensor *e2e_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info) {
    (void)info;
    e2e *a = self;
    if (b->n_views < 2)
        return ct_graph_fail(g, CT_ERR_INVALID, "end_to_end: needs at least 2 views per sample, got %d",
                             b->n_views);
    for (int v = 0; v < b->n_views; v++)
        if (!b->views[v] || b->views[v]->ndim != 4 || b->views[v]->shape[0] != b->n)
            return ct_graph_fail(g, CT_ERR_SHAPE, "end_to_end: view %d is not (%d, C, H, W)", v, b->n);
    size_t rows = (size_t)b->n * (size_t)b->n_views;
    if (rows > a->groups_cap) {
        int32_t *ng = realloc(a->groups, rows * sizeof *ng);
        if (!ng) return ct_graph_fail(g, CT_ERR_NOMEM, "end_to_end: out of memory");
        a->groups = ng;
        a->groups_cap = rows;
    }
    ct_tensor *h = encode_views(a, g, b, a->groups);
    ct_tensor *z = h ? head_forward(a, g, h) : NULL;
    z = z ? ct_l2_normalize(g, z, 1e-12f) : NULL;
    return z ? ct_nt_xent(g, z, a->groups, a->temperature) : NULL;
}

static const ct_arch_ops e2e_ops = {
    .name = "end_to_end",
    .description = "SimCLR: projection head and NT-Xent with in-batch negatives",
    .params = e2e_params,
    .create = e2e_create,
    .destroy = e2e_destroy,
    .loss = e2e_loss,
};

static ct_status e2e_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_architecture(reg, &e2e_ops);
    if (st != CT_OK) ct_error_set(err, st, "end_to_end: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("end_to_end", "1.0.0", "MIT", "SimCLR end-to-end architecture (NT-Xent)",
                 CT_ROLE_ARCHITECTURE, e2e_init)

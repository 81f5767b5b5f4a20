/* end_to_end: SimCLR. Negatives are the other samples of the batch.
 *
 * Every view of a batch goes through the shared encoder (views of equal size
 * are concatenated into one forward pass, so batch norm sees all 2N of
 * them, as in SimCLR; multi-crop sizes are forwarded per size), then a
 * projection head MLP, then L2 normalisation and NT-Xent (ct_nt_xent) with
 * group id = sample index: every pair of views of a sample are positives,
 * every view of another sample is a negative.
 *
 * The head is the SDK's (contrast/mlp.h, shared with the other
 * architectures); its names follow PyTorch's nn.Sequential indices, so
 * head_hidden = [128] without batch norm gives
 *   head.0 (Linear), head.1 (ReLU), head.2 (Linear)
 * and with head_bn = true
 *   head.0 (Linear, no bias), head.1 (BatchNorm1d), head.2 (ReLU), head.3 (Linear). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

typedef struct e2e {
    const ct_host *host;
    ct_encoder *encoder;
    float temperature;
    ct_mlp *head; /* the SDK's projection head, as every architecture's */
    int32_t *groups; /* scratch: group id per row */
    size_t groups_cap;
} e2e;

static const ct_param_spec e2e_params[] = {
    CT_PARAM_FLOAT("temperature", "0.5", 1e-4, 100, "NT-Xent temperature"),
    CT_MLP_HEAD_PARAMS("[128]", "64"),
    CT_PARAM_END,
};

static ct_status e2e_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    if (!env->encoder || env->encoder->dim <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "end_to_end: the encoder has no output size");
    e2e *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "end_to_end: out of memory");
    a->host = env->host;
    a->encoder = env->encoder;
    a->temperature = (float)ct_settings_float(s, "temperature");
    ct_status st = ct_mlp_from_settings(s, env->store, "head", env->encoder->dim, "end_to_end", &a->head, err);
    if (st != CT_OK) {
        free(a);
        return st;
    }
    *self = a;
    return CT_OK;
}

static void e2e_destroy(void *self) {
    e2e *a = self;
    if (!a) return;
    ct_mlp_free(a->head);
    free(a->groups);
    free(a);
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
    ct_tensor *z = h ? ct_mlp_forward(a->head, g, h) : NULL;
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

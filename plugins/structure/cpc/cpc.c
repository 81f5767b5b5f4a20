/* cpc: contrastive predictive coding on a grid of patches (CPC v2,
 * Henaff et al. 2019), as a structure (contrast/structure.h).
 *
 * Sampling: one part per sample, the pipeline's chain 0 applied to the
 * item (rng keyed (seed, epoch, item, 0)).
 *
 * Embedding, on the graph:
 *   1. the part is cut into a gh x gw grid of overlapping patch x patch
 *      windows at `stride` (default 8 px at stride 4: 6 x 6 on 28 x 28,
 *      which tiles the image exactly, (28 - 8) / 4 + 1 = 6; 8 px still
 *      holds a stroke or an edge of a garment, and the 50 % overlap is
 *      CPC v2's). The windows are a copy: inputs need no gradient.
 *   2. every patch of the batch through the shared encoder in one forward:
 *      z (n * gh * gw, F). Use an encoder without batch norm (resnet
 *      norm = "group"): batch statistics over the patches of one image
 *      tell a patch about its neighbours, a shortcut for the loss.
 *   3. a context network over the grid of z that sees only rows above and
 *      the row itself: PixelCNN-style residual blocks
 *        x + conv1x1(relu(causal3x3(relu(conv1x1(relu(x))))))
 *      where causal3x3 is a 3x3 convolution whose output row r reads input
 *      rows r-2..r (a zero row concatenated on top, symmetric pad 1, the
 *      last output row dropped: ct_conv2d takes one symmetric pad). No
 *      normalisation in the context network: it would mix rows.
 *   4. linear predictors W_k (F x F, no bias) for k rows ahead,
 *      k = min_offset..max_offset. The default min_offset is the nearest
 *      row that shares no pixels with the context's rows:
 *      ceil(patch / stride) = 2 for 8 / 4 (rows r and r+1 overlap by 4 px,
 *      so predicting r+1 would be copying pixels; CPC v2 skips it too).
 * The two sets, aligned row by row: set 0 = the true patch embeddings
 * z(r+k, c), set 1 = the predictions W_k c(r, c). Rows are sample-major,
 * then k, r, c. Groups: rows predicting the same target patch share one
 * (their duplicates of the target are never each other's negatives);
 * group = "image" puts every row of one image in one group instead (with
 * end_to_end they are then positives of each other). The other patches
 * of the batch are the negatives, so the structure needs in-batch
 * negatives and its rows are not dataset items (items = -1).
 *
 * Every acc_every training steps the contrastive accuracy of each offset
 * is recorded (host->metric, "acc_k2", ...): for up to acc_rows
 * predictions of offset k, is the true target the patch of the batch with
 * the highest cosine similarity (ties count: patches of blank background
 * are identical)? Measured on the structure's output
 * (before the architecture's head), so it is a cheap proxy of the loss's
 * task; near 1.0 early in training means a shortcut. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#define CPC_MAX_BLOCKS 16
#define CPC_MAX_OFFSETS 32

typedef struct cpc_block {
    ct_tensor *w[3], *b[3]; /* conv1 (1x1 F->H), conv2 (causal 3x3 H->H), conv3 (1x1 H->F) */
} cpc_block;

/* The layers of one side (query, or a momentum architecture's key copy). */
typedef struct cpc_layers {
    bool declared;
    int64_t dim;
    cpc_block blocks[CPC_MAX_BLOCKS];
    ct_tensor *pred[CPC_MAX_OFFSETS]; /* W_k at index k - k_min */
} cpc_layers;

typedef struct cpc {
    const ct_host *host;
    int channels, height, width;
    int patch, stride, gh, gw;
    int k_min, k_max;
    int n_blocks, ctx_width;
    bool group_image;
    int acc_every, acc_rows;
    int64_t train_steps; /* training query-side embeddings seen (the accuracy's clock) */
    int rows_per_sample;
    cpc_layers side[2];
} cpc;

static const ct_param_spec cpc_params[] = {
    CT_PARAM_INT("patch", "8", 1, 4096, "side of the square patches, px"),
    CT_PARAM_INT("stride", "4", 1, 4096, "step between patches, px (patch / 2: CPC v2's overlap)"),
    CT_PARAM_INT("image_size", "0", 0, 65535,
                 "side of the part chain 0 makes (0: the source's item size; set it when a transform resizes)"),
    CT_PARAM_INT("min_offset", "0", 0, CPC_MAX_OFFSETS,
                 "nearest row predicted (0: the first row sharing no pixels with the context, "
                 "ceil(patch / stride))"),
    CT_PARAM_INT("max_offset", "4", 1, CPC_MAX_OFFSETS, "farthest row predicted"),
    CT_PARAM_INT("context_blocks", "3", 1, CPC_MAX_BLOCKS, "residual blocks of the causal context network"),
    CT_PARAM_INT("context_width", "64", 1, 1 << 16, "channels inside a context block"),
    CT_PARAM_CHOICE("group", "\"target\"", "target|image",
                    "rows sharing a group: those predicting one target patch, or every row of one image"),
    CT_PARAM_INT("acc_every", "25", 0, 1 << 30, "training steps between accuracy metrics (0: never)"),
    CT_PARAM_INT("acc_rows", "256", 1, 1 << 20, "predictions per offset the accuracy looks at"),
    CT_PARAM_END,
};

static int grid_side(int size, int patch, int stride) { return size < patch ? 0 : (size - patch) / stride + 1; }

static ct_status check_chains(const ct_structure_env *env, ct_error *err) {
    if (env->n_chains != 1 || !env->chain_views || env->chain_views[0] != 1)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "cpc: makes one part per sample from one transform chain; set views = 1 (the pipeline "
                            "has %d chain%s, the first with %d views)",
                            env->n_chains, env->n_chains == 1 ? "" : "s", env->chain_views ? env->chain_views[0] : 0);
    return CT_OK;
}

static ct_status cpc_geometry(cpc *c, const ct_settings *s, const ct_structure_env *env, ct_error *err) {
    c->patch = (int)ct_settings_int(s, "patch");
    c->stride = (int)ct_settings_int(s, "stride");
    int size = (int)ct_settings_int(s, "image_size");
    c->channels = env->channels;
    c->height = size ? size : env->height;
    c->width = size ? size : env->width;
    if (c->channels <= 0 || c->height <= 0 || c->width <= 0)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "cpc: the source's items have no fixed size; set image_size (and a transform that "
                            "makes it)");
    c->gh = grid_side(c->height, c->patch, c->stride);
    c->gw = grid_side(c->width, c->patch, c->stride);
    const int overlap_free = (c->patch + c->stride - 1) / c->stride;
    int k_min = (int)ct_settings_int(s, "min_offset");
    c->k_min = k_min ? k_min : overlap_free;
    c->k_max = (int)ct_settings_int(s, "max_offset");
    if (c->k_min < overlap_free)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "cpc: min_offset = %d: rows r and r+%d share pixels (patch %d at stride %d), a "
                            "shortcut; the nearest row sharing none is %d",
                            c->k_min, c->k_min, c->patch, c->stride, overlap_free);
    if (c->k_max < c->k_min)
        return ct_error_set(err, CT_ERR_CONFIG, "cpc: max_offset = %d is below the nearest row predicted, %d",
                            c->k_max, c->k_min);
    if (c->gw < 1 || c->gh <= c->k_max)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "cpc: %dx%d parts give a %dx%d grid of %d px patches at stride %d; predicting %d rows "
                            "ahead needs at least %d rows",
                            c->height, c->width, c->gh, c->gw, c->patch, c->stride, c->k_max, c->k_max + 1);
    if (c->k_max - c->k_min + 1 > CPC_MAX_OFFSETS)
        return ct_error_set(err, CT_ERR_CONFIG, "cpc: at most %d offsets", CPC_MAX_OFFSETS);
    c->rows_per_sample = 0;
    for (int k = c->k_min; k <= c->k_max; k++) c->rows_per_sample += (c->gh - k) * c->gw;
    return CT_OK;
}

static ct_status cpc_create(const ct_settings *s, const ct_structure_env *env, void **self, ct_error *err) {
    ct_status st = check_chains(env, err);
    if (st != CT_OK) return st;
    cpc *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "cpc: out of memory");
    c->host = env->host;
    if ((st = cpc_geometry(c, s, env, err)) != CT_OK) {
        free(c);
        return st;
    }
    c->n_blocks = (int)ct_settings_int(s, "context_blocks");
    c->ctx_width = (int)ct_settings_int(s, "context_width");
    c->group_image = strcmp(ct_settings_string(s, "group"), "image") == 0;
    c->acc_every = (int)ct_settings_int(s, "acc_every");
    c->acc_rows = (int)ct_settings_int(s, "acc_rows");
    *self = c;
    return CT_OK;
}

static void cpc_destroy(void *self) { free(self); }

static void cpc_info(void *self, ct_structure_info *out) {
    const cpc *c = self;
    memset(out, 0, sizeof *out);
    out->n_parts = 1;
    out->n_sets = 2;
    out->rows_per_sample = c->rows_per_sample;
    out->flags = CT_STRUCT_ROWS_NOT_ITEMS | CT_STRUCT_NEEDS_BATCH_NEGATIVES;
    out->row_kind = "patches";
}

/* ---- layers ------------------------------------------------------------------ */

static ct_tensor *add_param(ct_params *store, const char *prefix, const char *name, int ndim, const int64_t *shape,
                            ct_init init, float arg, uint32_t flags, ct_error *err) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return ct_params_add(store, full, CT_PARAM_TRAINABLE, ndim, shape, init, arg, flags, err);
}

/* context.<i>.conv1 (1x1 F->H), conv2 (3x3 causal H->H), conv3 (1x1 H->F,
 * zero: every block starts as the identity, so the context starts as the
 * row's own embedding and the stack trains from there). */
static ct_status declare_block(cpc_block *blk, ct_params *store, const char *prefix, int i, int64_t f, int64_t h,
                               ct_error *err) {
    const int64_t cin[3] = {f, h, h}, cout[3] = {h, h, f}, k[3] = {1, 3, 1};
    for (int j = 0; j < 3; j++) {
        char name[64];
        int64_t ws[4] = {cout[j], cin[j], k[j], k[j]};
        snprintf(name, sizeof name, "context.%d.conv%d.weight", i, j + 1);
        blk->w[j] = add_param(store, prefix, name, 4, ws, j == 2 ? CT_INIT_ZEROS : CT_INIT_KAIMING_NORMAL, 0.0f, 0,
                              err);
        snprintf(name, sizeof name, "context.%d.conv%d.bias", i, j + 1);
        blk->b[j] = add_param(store, prefix, name, 1, &cout[j], CT_INIT_ZEROS, 0.0f, CT_PARAM_NO_DECAY, err);
        if (!blk->w[j] || !blk->b[j]) return err->code;
    }
    return CT_OK;
}

static ct_status cpc_declare(void *self, ct_params *store, const char *prefix, int64_t feature_dim, ct_embed_side side,
                             ct_error *err) {
    cpc *c = self;
    cpc_layers *l = &c->side[side == CT_SIDE_KEY];
    memset(l, 0, sizeof *l);
    if (feature_dim < 1) return ct_error_set(err, CT_ERR_INVALID, "cpc: the encoder has no output size");
    l->dim = feature_dim;
    for (int i = 0; i < c->n_blocks; i++) {
        ct_status st = declare_block(&l->blocks[i], store, prefix, i, feature_dim, c->ctx_width, err);
        if (st != CT_OK) return st;
    }
    for (int k = c->k_min; k <= c->k_max; k++) {
        char name[64];
        int64_t ws[2] = {feature_dim, feature_dim};
        snprintf(name, sizeof name, "predictors.%d.weight", k);
        if (!(l->pred[k - c->k_min] = add_param(store, prefix, name, 2, ws, CT_INIT_LINEAR_DEFAULT, 0.0f, 0, err)))
            return err->code;
    }
    l->declared = true;
    return CT_OK;
}

/* ---- sampling ----------------------------------------------------------------- */

static ct_status cpc_sample(void *self, const ct_sample_ctx *ctx, ct_image *parts, ct_error *err) {
    const cpc *c = self;
    ct_rng rng;
    ct_rng_init_keyed(&rng, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, 0);
    ct_status st = ctx->apply(ctx, 0, ctx->src, &parts[0], &rng, err);
    if (st != CT_OK) return st;
    const ct_image *p = &parts[0];
    if (p->t != 1 || p->c != c->channels || p->h != c->height || p->w != c->width)
        return ct_error_set(err, CT_ERR_SHAPE,
                            "cpc: chain 0 made a %dx%dx%d part (%d frames) but the patch grid was sized for "
                            "%dx%dx%d (set image_size, or a transform that makes that size)",
                            p->c, p->h, p->w, p->t, c->channels, c->height, c->width);
    return CT_OK;
}

/* ---- embedding ------------------------------------------------------------------ */

/* (n, C, H, W) -> (n * gh * gw, C, patch, patch), patches in row-major
 * grid order within each sample. A plain copy: the inputs are data. */
static ct_tensor *extract_patches(const cpc *c, ct_graph *g, const ct_tensor *x) {
    const int64_t n = x->shape[0], C = c->channels, H = c->height, W = c->width, P = c->patch;
    ct_tensor *out = ct_tensor_new4(g, n * c->gh * c->gw, C, P, P);
    if (!out) return NULL;
    float *o = out->data;
    for (int64_t i = 0; i < n; i++)
        for (int r = 0; r < c->gh; r++)
            for (int q = 0; q < c->gw; q++)
                for (int64_t ch = 0; ch < C; ch++) {
                    const float *src = x->data + ((i * C + ch) * H + (int64_t)r * c->stride) * W +
                                       (int64_t)q * c->stride;
                    for (int64_t y = 0; y < P; y++, o += P) memcpy(o, src + y * W, (size_t)P * sizeof *o);
                }
    return out;
}

/* 3x3 convolution whose output row r sees input rows r-2..r only: a zero
 * row on top, symmetric pad 1 (H+1 output rows), the last row dropped. */
static ct_tensor *causal_conv(ct_graph *g, ct_tensor *x, ct_tensor *w, ct_tensor *b) {
    if (!x) return NULL;
    ct_tensor *zero = ct_tensor_zeros(g, 4, (int64_t[]){x->shape[0], x->shape[1], 1, x->shape[3]});
    ct_tensor *parts[2] = {zero, x};
    ct_tensor *padded = zero ? ct_concat(g, parts, 2, 2) : NULL;
    ct_tensor *y = padded ? ct_conv2d(g, padded, w, b, 1, 1) : NULL;
    return y ? ct_slice(g, y, 2, 0, x->shape[2]) : NULL;
}

/* The context network over the grid (n, F, gh, gw) -> same shape. */
static ct_tensor *context_net(const cpc *c, const cpc_layers *l, ct_graph *g, ct_tensor *x) {
    for (int i = 0; i < c->n_blocks && x; i++) {
        const cpc_block *blk = &l->blocks[i];
        ct_tensor *h = ct_conv2d(g, ct_relu(g, x), blk->w[0], blk->b[0], 1, 0);
        h = causal_conv(g, ct_relu(g, h), blk->w[1], blk->b[1]);
        h = h ? ct_conv2d(g, ct_relu(g, h), blk->w[2], blk->b[2], 1, 0) : NULL;
        x = h ? ct_add(g, x, h) : NULL;
    }
    return x;
}

/* Grid (n, F, gh, gw) <-> rows (n * gh * gw, F). */
static ct_tensor *grid_to_rows(ct_graph *g, ct_tensor *x) {
    if (!x) return NULL;
    ct_tensor *p = ct_permute(g, x, (int[]){0, 2, 3, 1});
    return p ? ct_reshape(g, p, 2, (int64_t[]){x->shape[0] * x->shape[2] * x->shape[3], x->shape[1]}) : NULL;
}

static ct_tensor *rows_to_grid(const cpc *c, ct_graph *g, ct_tensor *z, int64_t n) {
    ct_tensor *r = ct_reshape(g, z, 4, (int64_t[]){n, c->gh, c->gw, z->shape[1]});
    return r ? ct_permute(g, r, (int[]){0, 3, 1, 2}) : NULL;
}

/* Row j of the output: target patch and prediction row (in the k-stacked
 * predictions), offset index; and the ids. Sample-major, then k, r, col. */
static bool row_index(const cpc *c, ct_graph *g, int64_t n, int64_t **tgt, int64_t **pred, ct_embeddings *out) {
    const int64_t G = (int64_t)c->gh * c->gw, R = c->rows_per_sample, rows = n * R;
    int64_t *t = ct_graph_alloc(g, (size_t)rows * sizeof *t), *p = ct_graph_alloc(g, (size_t)rows * sizeof *p);
    int64_t *items = ct_graph_alloc(g, (size_t)rows * sizeof *items);
    int32_t *groups = ct_graph_alloc(g, (size_t)rows * sizeof *groups);
    if (!t || !p || !items || !groups) return false;
    int64_t j = 0;
    for (int64_t i = 0; i < n; i++)
        for (int k = c->k_min; k <= c->k_max; k++)
            for (int r = 0; r + k < c->gh; r++)
                for (int q = 0; q < c->gw; q++, j++) {
                    t[j] = i * G + (int64_t)(r + k) * c->gw + q;
                    p[j] = (int64_t)(k - c->k_min) * n * G + i * G + (int64_t)r * c->gw + q;
                    items[j] = -1;
                    groups[j] = (int32_t)(c->group_image ? i : t[j]);
                }
    *tgt = t, *pred = p;
    out->items = items;
    out->groups = groups;
    return true;
}

static bool host_has_metric(const ct_host *h) {
    return h && h->size >= offsetof(ct_host, metric) + sizeof h->metric && h->metric;
}

/* Accuracy of offset k: of up to acc_rows of its predictions (evenly
 * spaced over the batch), the share whose true target is the most
 * cosine-similar patch of the batch (z, every patch), ties included. */
static double offset_accuracy(const cpc *c, const float *z, const float *preds, int64_t n, int64_t f, int k,
                              const float *z_inv) {
    const int64_t G = (int64_t)c->gh * c->gw, per = (int64_t)(c->gh - k) * c->gw, total = n * per;
    const int64_t take = total < c->acc_rows ? total : c->acc_rows;
    int64_t correct = 0;
    for (int64_t s = 0; s < take; s++) {
        int64_t m = s * total / take, i = m / per, r = (m % per) / c->gw, q = m % c->gw;
        const float *p = preds + ((int64_t)(k - c->k_min) * n * G + i * G + r * c->gw + q) * f;
        const int64_t want = i * G + (r + k) * c->gw + q;
        double best = -INFINITY, hit = 0.0;
        for (int64_t j = 0; j < n * G; j++) {
            double d = 0.0;
            for (int64_t e = 0; e < f; e++) d += (double)p[e] * z[j * f + e];
            d *= z_inv[j];
            if (d > best) best = d;
            if (j == want) hit = d;
        }
        /* a tie counts: blank background patches have equal embeddings */
        correct += hit >= best;
    }
    return take ? (double)correct / (double)take : 0.0;
}

static void record_accuracy(const cpc *c, const ct_tensor *z, const ct_tensor *preds, int64_t n) {
    const int64_t f = z->shape[1], rows = z->shape[0];
    float *z_inv = malloc((size_t)rows * sizeof *z_inv);
    if (!z_inv) return; /* a metric, not the training: skip it */
    for (int64_t j = 0; j < rows; j++) {
        double s = 0.0;
        for (int64_t e = 0; e < f; e++) s += (double)z->data[j * f + e] * z->data[j * f + e];
        z_inv[j] = s > 0.0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    }
    for (int k = c->k_min; k <= c->k_max; k++) {
        char name[32];
        snprintf(name, sizeof name, "acc_k%d", k);
        c->host->metric(c->host, name, offset_accuracy(c, z->data, preds->data, n, f, k, z_inv));
    }
    free(z_inv);
}

static ct_status fail(ct_graph *g, ct_status code, const char *msg, const ct_tensor *x) {
    char buf[64];
    ct_graph_fail(g, code, "cpc: %s (got %s)", msg, x ? ct_shape_str(x, buf, sizeof buf) : "none");
    return code;
}

/* The predictions of every offset for every grid position, stacked
 * k-major: (K * n * gh * gw, F). */
static ct_tensor *predictions(const cpc *c, const cpc_layers *l, ct_graph *g, ct_tensor *z, int64_t n) {
    ct_tensor *ctx = grid_to_rows(g, context_net(c, l, g, rows_to_grid(c, g, z, n)));
    ct_tensor *per_k[CPC_MAX_OFFSETS];
    const int nk = c->k_max - c->k_min + 1;
    for (int k = 0; k < nk; k++)
        if (!(per_k[k] = ctx ? ct_linear(g, ctx, l->pred[k], NULL) : NULL)) return NULL;
    return nk == 1 ? per_k[0] : ct_concat(g, per_k, nk, 0);
}

static ct_status cpc_embed(void *self, ct_graph *g, const ct_batch *b, const ct_encoder *enc, ct_embed_side side,
                           uint32_t sets, ct_embeddings *out) {
    cpc *c = self;
    const cpc_layers *l = &c->side[side == CT_SIDE_KEY];
    memset(out, 0, sizeof *out);
    if (!l->declared) {
        ct_graph_fail(g, CT_ERR_INVALID, "cpc: embedding the %s side before its layers were declared",
                      side == CT_SIDE_KEY ? "key" : "query");
        return CT_ERR_INVALID;
    }
    const ct_tensor *x = b->n_views == 1 ? b->views[0] : NULL;
    if (!x || x->ndim != 4 || x->shape[0] != b->n || x->shape[1] != c->channels || x->shape[2] != c->height ||
        x->shape[3] != c->width)
        return fail(g, CT_ERR_SHAPE, "needs one view of (n, C, H, W) parts of the size its grid was made for", x);
    if (x->flags & CT_TENSOR_REQUIRES_GRAD)
        return fail(g, CT_ERR_INVALID, "patches are copied from the input, which must not need a gradient", x);
    const int64_t n = b->n;
    ct_tensor *patches = extract_patches(c, g, x);
    ct_tensor *z = patches ? enc->ops->forward(enc->self, g, patches) : NULL;
    if (!z) return ct_graph_status(g) != CT_OK ? ct_graph_status(g) : fail(g, CT_ERR_INVALID, "encoder failed", x);
    if (z->ndim != 2 || z->shape[1] != l->dim) return fail(g, CT_ERR_SHAPE, "encoder features are not (rows, F)", z);
    int64_t *tgt, *pred;
    if (!row_index(c, g, n, &tgt, &pred, out)) return ct_graph_status(g);
    const int64_t rows = n * c->rows_per_sample;
    out->n_sets = 2;
    out->rows = rows;
    out->rows_per_sample = c->rows_per_sample;
    out->set_group[0] = 0; /* targets and predictions are different kinds of rows: */
    out->set_group[1] = 1; /* a per-group head keeps their batch statistics apart */
    if (sets & CT_SET(0) && !(out->set[0] = ct_index_select(g, z, tgt, rows))) return ct_graph_status(g);
    if (!(sets & CT_SET(1))) return CT_OK;
    ct_tensor *p = predictions(c, l, g, z, n);
    if (!p || !(out->set[1] = ct_index_select(g, p, pred, rows))) return ct_graph_status(g);
    if (side == CT_SIDE_QUERY && ct_graph_is_train(g) && c->acc_every > 0 && host_has_metric(c->host) &&
        c->train_steps++ % c->acc_every == 0)
        record_accuracy(c, z, p, n);
    return CT_OK;
}

static const ct_structure_ops cpc_ops = {
    .name = "cpc",
    .description = "contrastive predictive coding: a grid of overlapping patches, a causal context network and "
                   "predictors of the rows below (CPC v2)",
    .params = cpc_params,
    .create = cpc_create,
    .destroy = cpc_destroy,
    .info = cpc_info,
    .declare = cpc_declare,
    .sample = cpc_sample,
    .embed = cpc_embed,
};

static ct_status cpc_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_structure(reg, &cpc_ops);
    if (st != CT_OK) ct_error_set(err, st, "cpc: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("cpc", "1.0.0", "MIT", "CPC structure (patch grid, causal context, row predictions)",
                 CT_ROLE_STRUCTURE, cpc_init)

/* memory_bank: InstDisc (Wu et al. 2018) and PIRL (Misra & van der Maaten
 * 2020). Negatives come from a bank holding one L2-normalised embedding
 * per item of the (first) training dataset.
 *
 * Per batch: every view goes through the shared encoder, a projection head
 * (same layout and names as end_to_end's) and L2 normalisation. Each query
 * row i gets K negatives sampled uniformly with replacement from the bank,
 * never its own item (a fresh draw per row and step, keyed by (seed, step,
 * pipeline), so a resumed run draws the same ones). Its positive is the
 * bank entry m_I of its own item. Logits s = q.m / temperature.
 *
 * Losses (`loss`):
 *   "infonce" (PIRL):    cross-entropy of [s_pos, s_neg...] with target 0.
 *   "nce"     (InstDisc): binary NCE against the uniform noise distribution
 *       1/n with K noise samples: h = sigmoid(s - log(Z K / n)),
 *       L = -log h(s_pos) - sum log(1 - h(s_neg)). Z = sum_j exp(m_j.f/T)
 *       over all n items is estimated once, as n * mean(exp(s)) over one
 *       batch's negative logits (uniform samples of the bank: the
 *       Monte-Carlo estimate; lemniscate also averages in the positive
 *       column, nearly the same for a random bank), and kept in the buffer
 *       "bank.nce_z" so that a resumed run uses the same constant. The batch
 *       is the first one drawn from a filled bank: the first batch under
 *       init = "random"; under "first_seen", the first once every item has
 *       been seen (before that, each batch uses its own estimate, since a
 *       constant taken from random entries is far off once they fill in).
 *
 * Embedding sets (the batch's structure makes them, contrast/structure.h;
 * by default one per view): with one set, L = L(m_I, q_0) (InstDisc). With
 * two or more, set 0 plays the image v_I and sets 1.. its transformed
 * versions v_I^t (the jigsaw structure: set 1 is its patch aggregate):
 *   L = lambda * mean_{v>=1} L(m_I, q_v) + (1 - lambda) * L(m_I, q_0),
 * PIRL's lambda * L(m_I, g(v_I^t)) + (1-lambda) * L(m_I, f(v_I)); every view
 * shares this architecture's encoder and head (a structure such as jigsaw
 * supplies its own aggregation before the head). The bank always stores
 * set 0's embedding f(v_I). The structure must give one row per dataset
 * item (CT_ARCH_NEEDS_ITEM_ROWS: CPC's patches are refused at check).
 *
 * Positives (`positive`):
 *   "bank" (InstDisc/PIRL, the default): every term's positive is m_I.
 *   "cross_view": the positive of each term is another view of the same
 *       item in the current batch, detached (a stop-gradient target, as
 *       MoCo's key): view 1's embedding for the view-0 term, view 0's for
 *       the terms of views 1.. (with one view, m_I as under "bank"). The
 *       bank then supplies only the K negatives. Why: m_I was written the
 *       last time item I was drawn, i.e. one epoch of training earlier; at
 *       a budget of one or two epochs the network moves so much between
 *       two visits that the stale m_I scores below fresher negatives and
 *       the loss rises (bench/accuracy.md, issue 6). A fresh positive
 *       removes that inconsistency while negatives stay cheap bank reads;
 *       the bank is written exactly as under "bank". A departure from
 *       the published methods, which train 200+ epochs.
 *
 * In-batch negatives (`batch_negatives`, InfoNCE only): each row also gets
 *   as negatives the positives of the batch's other rows (under
 *   "cross_view" the other items' current embeddings, detached; under
 *   "bank" their bank entries), so K + n - 1 negatives per row. Why: with
 *   fresh positives and only bank negatives, the network can lower the
 *   loss by moving every embedding away from where the (older) bank
 *   entries are, which the bank then follows: MoCo's "momentum 0" failure
 *   (He et al. 2020, table 1), seen here as a loss rising to chance.
 *   Negatives from the current encoder, like the positive, cannot be
 *   escaped that way. NCE's noise model (uniform over the bank) does not
 *   cover them, so loss = "nce" refuses this option.
 *
 * Bank update (after_step, i.e. after the optimizer step, with the
 * embeddings computed in loss()): m_I <- beta m_I + (1-beta) f(v_I),
 * renormalised to unit length.
 *
 * Initialisation (`init`):
 *   "random":     every entry uniform on the unit sphere.
 *   "first_seen": the one-encoder-pass initialisation done lazily: the first
 *       time an item is seen, its entry is set to that step's embedding
 *       f(v_I) (instead of the moving average), and within that step its
 *       positive m_I is f(v_I) itself (detached). Until then the entry is
 *       the random unit vector (it may be drawn as a negative). Which items
 *       have been seen is the buffer "bank.seen", so resume keeps it.
 *
 * State in the store (saved in checkpoints): buffers "bank.memory" (n, D),
 * "bank.seen" (n), "bank.nce_z" (1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "../common/arch_common.h"
#include "bank_math.h"

#define MB_PENDING 8 /* pipelines whose embeddings wait for after_step */

/* Embeddings of view 0 from loss(), written into the bank by after_step. */
typedef struct pending {
    float *emb;
    int64_t *items;
    size_t cap;
    int n;
    bool valid;
} pending;

typedef struct mbank {
    const ct_host *host;
    ct_arch_env env; /* a copy: the embedding seam */
    ct_encoder *encoder;
    ct_mlp *head;
    ct_tensor *bank, *seen, *nce_z;
    int64_t n_items, dim, k;
    float inv_t, beta, lambda;
    bool nce, lazy, cross_view, batch_neg;
    pending pend[MB_PENDING];
} mbank;

static const ct_param_spec mb_params[] = {
    CT_PARAM_CHOICE("loss", "\"infonce\"", "infonce|nce", "infonce (PIRL) or nce (InstDisc, Z estimated once)"),
    CT_PARAM_FLOAT("temperature", "0.07", 1e-4, 100, "logit temperature"),
    CT_PARAM_INT("negatives", "4096", 1, 1 << 24, "negatives sampled from the bank per query (K)"),
    CT_PARAM_FLOAT("bank_momentum", "0.5", 0, 1, "beta of the bank update m <- beta m + (1-beta) f"),
    CT_PARAM_CHOICE("init", "\"random\"", "random|first_seen",
                    "bank entries start random on the sphere, or as the item's first embedding"),
    CT_PARAM_CHOICE("positive", "\"bank\"", "bank|cross_view",
                    "positive of each query: its bank entry m_I (InstDisc/PIRL), or another view of the same "
                    "item in the batch, detached (fresh at short budgets; the bank gives the negatives)"),
    CT_PARAM_BOOL("batch_negatives", "false",
                  "InfoNCE only: the other rows' positives of the batch are negatives too (K + n - 1 per row)"),
    CT_PARAM_FLOAT("lambda", "0.5", 0, 1, "PIRL weight of the transformed views (views 1..) against view 0"),
    CT_MLP_HEAD_PARAMS("[128]", "128"),
    CT_PARAM_END,
};

/* ---- op: logits of queries against their positive and bank negatives ------ */

typedef struct logits_ctx {
    const float *q, *pos, *bank;
    const int64_t *idx; /* (n, k) negatives */
    const float *dy;    /* backward: gradient of the logits */
    float *out;         /* forward: logits; backward: dq */
    int64_t k, d;
    float inv_t;
} logits_ctx;

static void logits_rows(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    const logits_ctx *c = ctx;
    for (int64_t i = begin; i < end; i++)
        bank_row_logits(c->q + i * c->d, c->pos + i * c->d, c->bank, c->idx + i * c->k, c->k, c->d, c->inv_t,
                        c->out + i * (c->k + 1));
}

/* dq_i = sum_j dy_ij m_j / T. */
static void logits_grad_rows(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    const logits_ctx *c = ctx;
    for (int64_t i = begin; i < end; i++) {
        float *gq = c->out + i * c->d;
        const float *dy = c->dy + i * (c->k + 1);
        for (int64_t j = 0; j <= c->k; j++) {
            const float *m = j == 0 ? c->pos + i * c->d : c->bank + c->idx[i * c->k + j - 1] * c->d;
            float s = dy[j] * c->inv_t;
            for (int64_t e = 0; e < c->d; e++) gq[e] += s * m[e];
        }
    }
}

static void bank_logits_backward(ct_graph *g, ct_node *node) {
    logits_ctx c = *(const logits_ctx *)node->ctx;
    ct_tensor *q = node->in[0];
    float *gq = ct_tensor_grad(g, q);
    if (!gq || !node->out->grad) return;
    c.dy = node->out->grad;
    c.out = gq;
    ct_parallel_for(ct_graph_pool(g), q->shape[0], 16, logits_grad_rows, &c);
}

/* q (n, d) -> (n, k+1): [q_i.pos_i, q_i.bank[idx_i0], ...] / T. pos and
 * idx are copied into the arena; bank must stay unchanged until backward. */
static ct_tensor *bank_logits(ct_graph *g, ct_tensor *q, const float *pos, const float *bank,
                              const int64_t *idx, int64_t k, float inv_t) {
    if (!q) return NULL;
    int64_t n = q->shape[0], d = q->shape[1];
    ct_tensor *y = ct_tensor_new2(g, n, k + 1);
    float *pos_c = ct_graph_alloc(g, (size_t)(n * d) * sizeof *pos_c);
    int64_t *idx_c = ct_graph_alloc(g, (size_t)(n * k) * sizeof *idx_c);
    logits_ctx *c = ct_graph_alloc(g, sizeof *c);
    if (!y || !pos_c || !idx_c || !c) return NULL;
    memcpy(pos_c, pos, (size_t)(n * d) * sizeof *pos_c);
    memcpy(idx_c, idx, (size_t)(n * k) * sizeof *idx_c);
    *c = (logits_ctx){q->data, pos_c, bank, idx_c, NULL, y->data, k, d, inv_t};
    ct_parallel_for(ct_graph_pool(g), n, 16, logits_rows, c);
    ct_node *node = ct_graph_record(g, "bank_logits", bank_logits_backward, y, &q, 1);
    if (node) node->ctx = c;
    return y;
}

/* ---- op: InstDisc's NCE loss over rows of logits ------------------------------- */

static void bank_nce_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx || !node->out->grad) return;
    const float *saved = node->ctx;
    float dy = node->out->grad[0];
    for (int64_t i = 0; i < x->numel; i++) gx[i] += dy * saved[i];
}

/* logits (n, k+1), positive first -> mean over rows of the NCE loss. */
static ct_tensor *bank_nce(ct_graph *g, ct_tensor *logits, double shift) {
    if (!logits) return NULL;
    int64_t n = logits->shape[0], k = logits->shape[1] - 1;
    ct_tensor *y = ct_tensor_new(g, 0, NULL);
    float *dx = ct_graph_alloc(g, (size_t)logits->numel * sizeof *dx);
    if (!y || !dx) return NULL;
    double loss = 0;
    for (int64_t i = 0; i < n; i++) {
        loss += bank_nce_row(logits->data + i * (k + 1), k, shift, dx + i * (k + 1));
        for (int64_t j = 0; j <= k; j++) dx[i * (k + 1) + j] /= (float)n;
    }
    y->data[0] = (float)(loss / (double)n);
    ct_node *node = ct_graph_record(g, "bank_nce", bank_nce_backward, y, &logits, 1);
    if (node) node->ctx = dx;
    return y;
}

/* ---- the plugin ---------------------------------------------------------------- */

static ct_tensor *declare_buffer(ct_params *store, const char *name, int ndim, const int64_t *shape, ct_init init,
                                 ct_error *err) {
    return ct_params_add(store, name, CT_PARAM_BUFFER, ndim, shape, init, 0, 0, err);
}

static void mb_destroy(void *self);

static ct_status mb_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    if (!env->encoder || env->encoder->dim <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "memory_bank: the encoder has no output size");
    if (env->dataset_size < 2)
        return ct_error_set(err, CT_ERR_CONFIG, "memory_bank: needs a training dataset of at least 2 items (got %lld)",
                            (long long)env->dataset_size);
    mbank *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "memory_bank: out of memory");
    a->host = env->host;
    arch_copy_env(&a->env, env);
    a->encoder = env->encoder;
    a->inv_t = (float)(1.0 / ct_settings_float(s, "temperature"));
    a->k = ct_settings_int(s, "negatives");
    a->beta = (float)ct_settings_float(s, "bank_momentum");
    a->lambda = (float)ct_settings_float(s, "lambda");
    a->nce = strcmp(ct_settings_string(s, "loss"), "nce") == 0;
    a->lazy = strcmp(ct_settings_string(s, "init"), "first_seen") == 0;
    a->cross_view = strcmp(ct_settings_string(s, "positive"), "cross_view") == 0;
    a->batch_neg = ct_settings_bool(s, "batch_negatives");
    if (a->batch_neg && a->nce) {
        mb_destroy(a); /* also frees the head */
        return ct_error_set(err, CT_ERR_CONFIG,
                            "memory_bank: batch_negatives needs loss = \"infonce\" (NCE's noise is the bank)");
    }
    a->n_items = env->dataset_size;
    if (a->k > a->n_items - 1) /* allowed: drawn with replacement, so many repeat */
        ct_log(a->host, CT_LOG_WARN, "negatives = %lld exceeds the %lld other items of the bank: each is drawn about "
               "%.0f times per query", (long long)a->k, (long long)(a->n_items - 1), (double)a->k / (double)(a->n_items - 1));
    ct_status st = ct_mlp_from_settings(s, env->store, "head", env->encoder->dim, "memory_bank", &a->head, err);
    if (st != CT_OK) {
        mb_destroy(a); /* also frees the head */
        return st;
    }
    a->dim = ct_mlp_out_dim(a->head);
    int64_t bs[2] = {a->n_items, a->dim}, one[1] = {1};
    a->bank = declare_buffer(env->store, "bank.memory", 2, bs, CT_INIT_UNIFORM_SPHERE, err);
    a->seen = a->bank ? declare_buffer(env->store, "bank.seen", 1, bs, CT_INIT_ZEROS, err) : NULL;
    a->nce_z = a->seen ? declare_buffer(env->store, "bank.nce_z", 1, one, CT_INIT_ZEROS, err) : NULL;
    if (!a->nce_z) {
        ct_error_prefix(err, "memory_bank: ");
        mb_destroy(a); /* also frees the head */
        return err ? err->code : CT_ERR_INVALID;
    }
    *self = a;
    return CT_OK;
}

static void mb_destroy(void *self) {
    mbank *a = self;
    if (!a) return;
    ct_mlp_free(a->head);
    for (int i = 0; i < MB_PENDING; i++) {
        free(a->pend[i].emb);
        free(a->pend[i].items);
    }
    free(a);
}

/* Positives: the bank entry of each of the n rows' items, or (first_seen,
 * unseen item) the detached embedding q0 itself. */
static void fill_positives(const mbank *a, const int64_t *items, int64_t n, const float *q0, float *pos) {
    for (int64_t i = 0; i < n; i++) {
        int64_t it = items[i];
        const float *src = a->lazy && a->seen->data[it] == 0.0f ? q0 + (int64_t)i * a->dim
                                                               : a->bank->data + it * a->dim;
        memcpy(pos + (int64_t)i * a->dim, src, (size_t)a->dim * sizeof *pos);
    }
}

/* InstDisc's normalisation constant estimated from a batch's negative
 * logits (columns 1..k of each row). */
static double estimate_z(const mbank *a, const ct_tensor *logits) {
    int64_t rows = logits->shape[0], w = logits->shape[1];
    double s = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 1; j < w; j++) s += exp((double)logits->data[i * w + j]);
    return s / (double)(rows * (w - 1)) * (double)a->n_items;
}

/* True when every bank entry holds an embedding (always under "random"). */
static bool bank_filled(const mbank *a) {
    if (!a->lazy) return true;
    for (int64_t i = 0; i < a->n_items; i++)
        if (a->seen->data[i] == 0.0f) return false;
    return true;
}

/* Z for this batch: the stored constant, else this batch's estimate (kept
 * once the bank is filled). */
static double nce_z(mbank *a, const ct_tensor *logits) {
    if (a->nce_z->data[0] > 0.0f) return a->nce_z->data[0];
    double z = estimate_z(a, logits);
    if (bank_filled(a)) {
        a->nce_z->data[0] = (float)z;
        ct_log(a->host, CT_LOG_INFO, "NCE normalisation constant Z = %g", z);
    }
    return z;
}

/* Negatives of the bank plus the batch's other positives: a table of the
 * bank's n_items rows followed by the n positives (in the arena, so it
 * stays as it is until backward), and per row i the K bank indices then
 * n_items + j for every j != i. */
static bool with_batch_negatives(const mbank *a, ct_graph *g, const float *pos, const int64_t *idx, int64_t n,
                                 const float **table, int64_t **idx_out) {
    int64_t d = a->dim, k = a->k + n - 1;
    float *t = ct_graph_alloc(g, (size_t)((a->n_items + n) * d) * sizeof *t);
    int64_t *ix = ct_graph_alloc(g, (size_t)(n * k) * sizeof *ix);
    if (!t || !ix) return false;
    memcpy(t, a->bank->data, (size_t)(a->n_items * d) * sizeof *t);
    memcpy(t + a->n_items * d, pos, (size_t)(n * d) * sizeof *t);
    for (int64_t i = 0; i < n; i++) {
        int64_t *row = ix + i * k;
        memcpy(row, idx + i * a->k, (size_t)a->k * sizeof *row);
        for (int64_t j = 0, c = a->k; j < n; j++)
            if (j != i) row[c++] = a->n_items + j;
    }
    *table = t;
    *idx_out = ix;
    return true;
}

static ct_tensor *term_loss(mbank *a, ct_graph *g, ct_tensor *q, const float *pos, const int64_t *idx,
                            const int32_t *zeros) {
    if (!q) return NULL;
    const float *table = a->bank->data;
    int64_t k = a->k, n = q->shape[0];
    if (a->batch_neg && n > 1) {
        int64_t *ix;
        if (!with_batch_negatives(a, g, pos, idx, n, &table, &ix))
            return ct_graph_fail(g, CT_ERR_NOMEM, "memory_bank: out of memory");
        idx = ix;
        k += n - 1;
    }
    ct_tensor *logits = bank_logits(g, q, pos, table, idx, k, a->inv_t);
    if (!logits) return NULL;
    if (!a->nce) return ct_cross_entropy(g, logits, zeros);
    double shift = log(nce_z(a, logits) * (double)a->k / (double)a->n_items);
    return bank_nce(g, logits, shift);
}

/* The rows' embeddings and items for after_step (the seam's rows: in a
 * data-parallel job every rank's, so every rank updates the same bank). */
static bool stash(mbank *a, const ct_batch *b, const int64_t *items, int64_t rows, const float *q0) {
    pending *p = &a->pend[b->pipeline % MB_PENDING];
    size_t n = (size_t)rows;
    if (n > p->cap) {
        float *e = realloc(p->emb, n * (size_t)a->dim * sizeof *e);
        if (e) p->emb = e;
        int64_t *it = realloc(p->items, n * sizeof *it);
        if (it) p->items = it;
        if (!e || !it) return false;
        p->cap = n;
    }
    memcpy(p->emb, q0, n * (size_t)a->dim * sizeof *q0);
    memcpy(p->items, items, n * sizeof *items);
    p->n = (int)n;
    p->valid = true;
    return true;
}

static ct_tensor *mb_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info) {
    mbank *a = self;
    if (!arch_check_batch(g, b, "memory_bank")) return NULL;
    if (!b->items) return ct_graph_fail(g, CT_ERR_INVALID, "memory_bank: the batch has no item indices");
    for (int i = 0; i < b->n; i++)
        if (b->items[i] < 0 || b->items[i] >= a->n_items)
            return ct_graph_fail(g, CT_ERR_INVALID,
                                 "memory_bank: item %lld of pipeline %d is outside the bank of %lld items "
                                 "(the bank is sized by the first pipeline's dataset)",
                                 (long long)b->items[i], b->pipeline, (long long)a->n_items);
    ct_embeddings e;
    if (arch_features(&a->env, g, b, a->encoder, CT_SIDE_QUERY, CT_ALL_SETS, &e) != CT_OK) return NULL;
    if (e.rows_per_sample != 1)
        return ct_graph_fail(g, CT_ERR_INVALID,
                             "memory_bank: the structure gives %d rows per sample; the bank needs one row per "
                             "dataset item",
                             e.rows_per_sample);
    /* One head forward per head group (the default structure's views of
     * one size), as before the seam. */
    int64_t row_of[CT_MAX_SETS];
    ct_tensor *z = arch_project(a->head, g, &e, CT_ALL_SETS, true, row_of);
    if (!z) return NULL;
    int n_sets = e.n_sets;
    int64_t n = e.rows, d = a->dim; /* rows: the batch's, or every rank's (seam) */
    int64_t *idx = ct_graph_alloc(g, (size_t)(n * a->k) * sizeof *idx);
    float *pos = ct_graph_alloc(g, (size_t)(n * d) * sizeof *pos);
    int32_t *zeros = ct_graph_alloc(g, (size_t)n * sizeof *zeros);
    if (!idx || !pos || !zeros) return NULL;
    memset(zeros, 0, (size_t)n * sizeof *zeros);
    ct_rng r;
    ct_rng_init_keyed(&r, a->host ? a->host->seed : 0, (uint64_t)info->step, (uint64_t)b->pipeline, 0x62616e6bu);
    for (int64_t i = 0; i < n; i++) bank_sample_negatives(&r, e.items[i], a->n_items, a->k, idx + i * a->k);
    const float *q0 = z->data + row_of[0] * d;
    fill_positives(a, e.items, n, q0, pos);
    /* Under "cross_view" (two views or more) the positives are rows of z:
     * bank_logits copies them, so they are constants of the graph. */
    bool cross = a->cross_view && n_sets > 1;
    const float *pos0 = cross ? z->data + row_of[1] * d : pos, *pos_t = cross ? q0 : pos;
    ct_tensor *l0 = term_loss(a, g, ct_slice(g, z, 0, row_of[0], n), pos0, idx, zeros);
    ct_tensor *loss = l0;
    if (n_sets > 1 && l0) {
        ct_tensor *lt = NULL;
        for (int v = 1; v < n_sets; v++) {
            ct_tensor *l = term_loss(a, g, ct_slice(g, z, 0, row_of[v], n), pos_t, idx, zeros);
            lt = lt && l ? ct_add(g, lt, l) : l;
        }
        lt = lt ? ct_scale(g, lt, a->lambda / (float)(n_sets - 1)) : NULL;
        loss = lt ? ct_add(g, lt, ct_scale(g, l0, 1.0f - a->lambda)) : NULL;
    }
    if (loss && !stash(a, b, e.items, n, q0)) return ct_graph_fail(g, CT_ERR_NOMEM, "memory_bank: out of memory");
    return loss;
}

static void mb_after_step(void *self, const ct_batch *b, const ct_step_info *info) {
    (void)info;
    mbank *a = self;
    pending *p = &a->pend[b->pipeline % MB_PENDING];
    if (!p->valid) return;
    for (int i = 0; i < p->n; i++) {
        int64_t it = p->items[i];
        float *m = a->bank->data + it * a->dim;
        const float *f = p->emb + (int64_t)i * a->dim;
        if (a->lazy && a->seen->data[it] == 0.0f)
            memcpy(m, f, (size_t)a->dim * sizeof *m);
        else
            bank_ema_row(m, f, a->dim, a->beta);
        a->seen->data[it] = 1.0f;
    }
    p->valid = false;
}

static const ct_arch_ops mb_ops = {
    .name = "memory_bank",
    .description = "InstDisc/PIRL: negatives sampled from a bank of per-item embeddings (NCE or InfoNCE)",
    .params = mb_params,
    .create = mb_create,
    .destroy = mb_destroy,
    .loss = mb_loss,
    .after_step = mb_after_step,
    .caps = CT_ARCH_USES_SEAM | CT_ARCH_NEEDS_ITEM_ROWS,
    .min_sets = 1,
};

static ct_status mb_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_architecture(reg, &mb_ops);
    if (st != CT_OK) ct_error_set(err, st, "memory_bank: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("memory_bank", "1.0.0", "MIT", "InstDisc/PIRL memory-bank architecture", CT_ROLE_ARCHITECTURE,
                 mb_init)

/* clustering: SwAV (Caron et al. 2020), swapped prediction of cluster
 * assignments between views.
 *
 * Every view goes through the shared encoder (views of equal size
 * together, so multi-crop sizes are forwarded per size), a projection head
 * (end_to_end's layout and names) and L2 normalisation, giving z. K
 * learnable prototypes C ("prototypes.weight", (K, D), trainable) are
 * renormalised to unit rows in place at the start of every loss() (no
 * gradient through that normalisation, as SwAV's torch.no_grad copy), and
 * the scores are z C^T.
 *
 * Codes: for each of the first `n_code_views` views (the full-size crops:
 * put them first in the pipeline's views list) the detached scores go
 * through Sinkhorn-Knopp (sinkhorn.h: epsilon, iterations, max-shifted
 * exponent), optionally with the scores of a queue of past embeddings
 * stacked above them (only the batch's rows of the result are used).
 * Swapped prediction: every other view v predicts those codes,
 *     L = 1/n_code_views sum_i 1/(V-1) sum_{v != i} CE(codes_i, softmax(z_v C^T / T)).
 *
 * Schedules:
 *   - prototypes are frozen for the first `freeze_prototypes_steps` steps:
 *     after_backward zeroes their gradient (SwAV's freeze_prototypes_niters).
 *   - queue (queue_length > 0): the buffer "queue" (n_code_views, L, D)
 *     holds the code views' most recent embeddings, newest first; it is
 *     filled in after_step from epoch `queue_start_epoch` on, and used once
 *     it is full (the buffer "queue_fill" counts filled rows, so a resumed
 *     run continues the same state).
 *   - collapse alarm: when the loss stays within 1% of ln K (what uniform
 *     predictions score whatever the codes) for `collapse_steps`
 *     consecutive steps, a warning is logged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "../common/arch_common.h"
#include "sinkhorn.h"

#define SWAV_PENDING 8

typedef struct pending {
    float *emb; /* (n_code_views, n, D) */
    size_t cap;
    int64_t n;
    bool valid;
} pending;

typedef struct swav {
    const ct_host *host;
    ct_arch_env env; /* a copy: the embedding seam */
    ct_encoder *encoder;
    ct_mlp *head;
    ct_tensor *protos, *queue, *queue_fill;
    int64_t n_protos, dim, queue_len, queue_start_epoch, freeze_steps, collapse_steps;
    int n_code_views, iters;
    float inv_t;
    double eps;
    /* collapse alarm */
    int64_t near_ln_k, last_step;
    bool alarmed;
    pending pend[SWAV_PENDING];
    double *work;
    size_t work_cap;
} swav;

static const ct_param_spec swav_params[] = {
    CT_PARAM_INT("prototypes", "128", 2, 1 << 20, "number of prototypes K"),
    CT_PARAM_FLOAT("temperature", "0.1", 1e-4, 100, "softmax temperature of the predictions"),
    CT_PARAM_FLOAT("epsilon", "0.05", 1e-4, 10, "Sinkhorn-Knopp entropy regularisation"),
    CT_PARAM_INT("sinkhorn_iterations", "3", 1, 1000, "Sinkhorn-Knopp iterations"),
    CT_PARAM_INT("n_code_views", "2", 1, CT_MAX_VIEWS,
                 "views whose codes are computed (the first ones: the full-size crops)"),
    CT_PARAM_INT("freeze_prototypes_steps", "0", 0, INFINITY, "steps during which prototypes get no update"),
    CT_PARAM_INT("queue_length", "0", 0, 1 << 24, "past embeddings per code view stacked into Sinkhorn (0: off)"),
    CT_PARAM_INT("queue_start_epoch", "0", 0, INFINITY, "epoch from which the queue is filled"),
    CT_PARAM_INT("collapse_steps", "200", 1, INFINITY, "consecutive steps near ln K before the collapse warning"),
    CT_MLP_HEAD_PARAMS("[128]", "64"),
    CT_PARAM_END,
};

static void swav_destroy(void *self);

static ct_status swav_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    if (!env->encoder || env->encoder->dim <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "clustering: the encoder has no output size");
    if (env->batch_size < 2) { /* Sinkhorn's equipartition of one sample is the uniform code */
        char what[96];
        arch_batch_setting(env, what, sizeof what);
        return ct_error_set(err, CT_ERR_CONFIG, "clustering: %s gives every sample the uniform Sinkhorn code (nothing "
                            "to predict): use at least 2", what);
    }
    swav *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "clustering: out of memory");
    a->host = env->host;
    arch_copy_env(&a->env, env);
    a->encoder = env->encoder;
    a->n_protos = ct_settings_int(s, "prototypes");
    a->inv_t = (float)(1.0 / ct_settings_float(s, "temperature"));
    a->eps = ct_settings_float(s, "epsilon");
    a->iters = (int)ct_settings_int(s, "sinkhorn_iterations");
    a->n_code_views = (int)ct_settings_int(s, "n_code_views");
    a->freeze_steps = ct_settings_int(s, "freeze_prototypes_steps");
    a->queue_len = ct_settings_int(s, "queue_length");
    a->queue_start_epoch = ct_settings_int(s, "queue_start_epoch");
    a->collapse_steps = ct_settings_int(s, "collapse_steps");
    a->last_step = -1;
    ct_status st = ct_mlp_from_settings(s, env->store, "head", env->encoder->dim, "clustering", &a->head, err);
    if (st != CT_OK) {
        swav_destroy(a); /* also frees the head */
        return st;
    }
    a->dim = ct_mlp_out_dim(a->head);
    int64_t ps[2] = {a->n_protos, a->dim}, qs[3] = {a->n_code_views, a->queue_len, a->dim}, one[1] = {1};
    a->protos = ct_params_add(env->store, "prototypes.weight", CT_PARAM_TRAINABLE, 2, ps, CT_INIT_LINEAR_DEFAULT, 0,
                              0, err);
    if (a->protos && a->queue_len > 0) {
        a->queue = ct_params_add(env->store, "queue", CT_PARAM_BUFFER, 3, qs, CT_INIT_ZEROS, 0, 0, err);
        a->queue_fill = a->queue ? ct_params_add(env->store, "queue_fill", CT_PARAM_BUFFER, 1, one, CT_INIT_ZEROS,
                                                 0, 0, err)
                                 : NULL;
    }
    if (!a->protos || (a->queue_len > 0 && !a->queue_fill)) {
        ct_error_prefix(err, "clustering: ");
        swav_destroy(a); /* also frees the head */
        return err ? err->code : CT_ERR_INVALID;
    }
    *self = a;
    return CT_OK;
}

static void swav_destroy(void *self) {
    swav *a = self;
    if (!a) return;
    ct_mlp_free(a->head);
    for (int i = 0; i < SWAV_PENDING; i++) free(a->pend[i].emb);
    free(a->work);
    free(a);
}

static bool queue_ready(const swav *a) {
    return a->queue && a->queue_fill->data[0] >= (float)a->queue_len;
}

/* Codes (n, K) of code view i: Sinkhorn over [queue scores; batch scores]. */
static float *view_codes(swav *a, ct_graph *g, const float *scores, int64_t n, int i) {
    int64_t rows = n, qn = 0;
    if (queue_ready(a)) qn = a->queue_len;
    rows += qn;
    float *all = ct_graph_alloc(g, (size_t)(rows * a->n_protos) * sizeof *all);
    float *codes = ct_graph_alloc(g, (size_t)(rows * a->n_protos) * sizeof *codes);
    if (!all || !codes) return NULL;
    if (qn) {
        int64_t qs[2] = {qn, a->dim};
        ct_tensor *qz = ct_tensor_wrap(g, a->queue->data + (int64_t)i * qn * a->dim, 2, qs);
        bool grad = ct_graph_set_grad(g, false);
        ct_tensor *qsc = ct_matmul(g, qz, a->protos, false, true);
        ct_graph_set_grad(g, grad);
        if (!qsc) return NULL;
        memcpy(all, qsc->data, (size_t)(qn * a->n_protos) * sizeof *all);
    }
    memcpy(all + qn * a->n_protos, scores, (size_t)(n * a->n_protos) * sizeof *all);
    if (!arch_reserve((void **)&a->work, &a->work_cap, (size_t)(rows * a->n_protos), sizeof *a->work)) {
        ct_graph_fail(g, CT_ERR_NOMEM, "clustering: out of memory");
        return NULL;
    }
    swav_sinkhorn(all, rows, a->n_protos, a->eps, a->iters, a->work, codes);
    return codes + qn * a->n_protos;
}

static void collapse_alarm(swav *a, double loss, const ct_step_info *info) {
    if (info->step == a->last_step) return;
    a->last_step = info->step;
    double ln_k = log((double)a->n_protos);
    /* Written so that a NaN loss counts as out of the band: it is a
     * numerical failure, not predictions collapsed to uniform. */
    if (!(fabs(loss - ln_k) <= 0.01 * ln_k)) {
        a->near_ln_k = 0;
        a->alarmed = false;
        return;
    }
    if (++a->near_ln_k >= a->collapse_steps && !a->alarmed) {
        ct_log(a->host, CT_LOG_WARN,
               "the loss has stayed within 1%% of ln K = %.4f for %lld steps (now %.4f at step %lld): "
               "the predictions look collapsed to uniform; try fewer prototypes, a lower temperature or more "
               "freeze_prototypes_steps",
               ln_k, (long long)a->near_ln_k, loss, (long long)info->step);
        a->alarmed = true;
    }
}

static bool stash(swav *a, const ct_batch *b, const ct_tensor *z, const int64_t *row_of, int64_t rows) {
    if (!a->queue) return true;
    pending *p = &a->pend[b->pipeline % SWAV_PENDING];
    size_t per = (size_t)rows * (size_t)a->dim;
    if (!arch_reserve((void **)&p->emb, &p->cap, per * (size_t)a->n_code_views, sizeof *p->emb)) return false;
    for (int i = 0; i < a->n_code_views; i++)
        memcpy(p->emb + (size_t)i * per, z->data + row_of[i] * a->dim, per * sizeof *p->emb);
    p->n = rows;
    p->valid = true;
    return true;
}

static ct_tensor *swav_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info) {
    swav *a = self;
    if (!arch_check_batch(g, b, "clustering")) return NULL;
    ct_embeddings e;
    if (arch_features(&a->env, g, b, a->encoder, CT_SIDE_QUERY, CT_ALL_SETS, &e) != CT_OK) return NULL;
    if (!arch_need_sets(g, &e, 2, "clustering")) return NULL;
    if (e.n_sets < a->n_code_views)
        return ct_graph_fail(g, CT_ERR_CONFIG,
                             "clustering: n_code_views = %d needs at least that many views (embedding sets) per "
                             "sample (got %d)",
                             a->n_code_views, e.n_sets);
    int n_sets = e.n_sets;
    ct_rows_l2_normalize(a->protos->data, a->n_protos, a->dim, 1e-12f);
    int64_t row_of[CT_MAX_SETS], n = e.rows, kp = a->n_protos;
    /* One head forward per head group (multi-crop sizes apart), as before
     * the seam. */
    ct_tensor *z = arch_project(a->head, g, &e, CT_ALL_SETS, true, row_of);
    ct_tensor *scores = z ? ct_matmul(g, z, a->protos, false, true) : NULL;
    if (!scores) return NULL;
    ct_tensor *loss = NULL;
    for (int i = 0; i < a->n_code_views; i++) {
        const float *codes = view_codes(a, g, scores->data + row_of[i] * kp, n, i);
        if (!codes) return NULL;
        ct_tensor *sub = NULL;
        for (int v = 0; v < n_sets; v++) {
            if (v == i) continue;
            ct_tensor *x = ct_scale(g, ct_slice(g, scores, 0, row_of[v], n), a->inv_t);
            ct_tensor *ce = ct_cross_entropy_soft(g, x, codes);
            sub = sub && ce ? ct_add(g, sub, ce) : ce;
        }
        sub = sub ? ct_scale(g, sub, 1.0f / (float)(n_sets - 1)) : NULL;
        loss = loss && sub ? ct_add(g, loss, sub) : sub;
        if (!loss) return NULL;
    }
    loss = ct_scale(g, loss, 1.0f / (float)a->n_code_views);
    if (!loss) return NULL;
    collapse_alarm(a, loss->data[0], info);
    if (!stash(a, b, z, row_of, n)) return ct_graph_fail(g, CT_ERR_NOMEM, "clustering: out of memory");
    return loss;
}

static void swav_after_backward(void *self, const ct_step_info *info) {
    swav *a = self;
    if (info->step < a->freeze_steps && a->protos->grad)
        memset(a->protos->grad, 0, (size_t)a->protos->numel * sizeof *a->protos->grad);
}

/* Newest embeddings first: shift each code view's queue down by n rows. */
static void swav_after_step(void *self, const ct_batch *b, const ct_step_info *info) {
    swav *a = self;
    if (!a->queue) return;
    pending *p = &a->pend[b->pipeline % SWAV_PENDING];
    if (!p->valid || info->epoch < a->queue_start_epoch) {
        p->valid = false;
        return;
    }
    int64_t n = p->n < a->queue_len ? p->n : a->queue_len, d = a->dim;
    for (int i = 0; i < a->n_code_views; i++) {
        float *q = a->queue->data + (int64_t)i * a->queue_len * d;
        memmove(q + n * d, q, (size_t)((a->queue_len - n) * d) * sizeof *q);
        memcpy(q, p->emb + (int64_t)i * p->n * d, (size_t)(n * d) * sizeof *q);
    }
    float fill = a->queue_fill->data[0] + (float)n;
    a->queue_fill->data[0] = fill > (float)a->queue_len ? (float)a->queue_len : fill;
    p->valid = false;
}

static const ct_arch_ops swav_ops = {
    .name = "clustering",
    .description = "SwAV: prototypes, Sinkhorn-Knopp codes, swapped prediction, multi-crop",
    .params = swav_params,
    .create = swav_create,
    .destroy = swav_destroy,
    .loss = swav_loss,
    .after_backward = swav_after_backward,
    .after_step = swav_after_step,
    .caps = CT_ARCH_USES_SEAM,
    .min_sets = 2,
};

static ct_status swav_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_architecture(reg, &swav_ops);
    if (st != CT_OK) ct_error_set(err, st, "clustering: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("clustering", "1.0.0", "MIT", "SwAV clustering architecture (Sinkhorn-Knopp, swapped prediction)",
                 CT_ROLE_ARCHITECTURE, swav_init)

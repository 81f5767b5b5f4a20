/* Losses: cross-entropy (hard and soft targets), NT-Xent and InfoNCE.
 *
 * All use a max-shifted log-sum-exp, so logits of any size (temperature
 * 0.05 on unit vectors gives 20; unnormalised inputs can give thousands)
 * never overflow. The forward keeps the softmax probabilities in the arena,
 * and backward forms the logit gradient (p - target) from them directly:
 * one fused pass instead of a softmax op followed by a log and a gather. */
#include <cblas.h>
#include <math.h>

#include "ops/ops_internal.h"

/* Turn row x (d logits) into probabilities in place, skipping column `skip`
 * (set to 0; -1 skips none). Returns the row's log-sum-exp. */
static float ct__row_softmax_inplace(float *x, int64_t d, int64_t skip) {
    float m = -INFINITY;
    for (int64_t j = 0; j < d; j++)
        if (j != skip && x[j] > m) m = x[j];
    float s = 0.0f;
    for (int64_t j = 0; j < d; j++) {
        float e = j == skip ? 0.0f : expf(x[j] - m);
        x[j] = e;
        s += e;
    }
    float inv = 1.0f / s;
    for (int64_t j = 0; j < d; j++) x[j] *= inv;
    return m + logf(s);
}

/* ---- cross-entropy with hard labels --------------------------------------- */

typedef struct {
    float *prob;          /* (N,C) softmax of the logits */
    const int32_t *label; /* arena copy */
    int64_t n_valid;
} ct__ce_ctx;

static void ct__ce_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    const ct__ce_ctx *c = node->ctx;
    float *gx = ct_tensor_grad(g, x);
    if (!gx || c->n_valid == 0) return;
    int64_t n = x->shape[0], d = x->shape[1];
    float scale = node->out->grad[0] / (float)c->n_valid;
    for (int64_t i = 0; i < n; i++) {
        if (c->label[i] < 0) continue;
        const float *p = c->prob + i * d;
        float *o = gx + i * d;
        for (int64_t j = 0; j < d; j++) o[j] += scale * p[j];
        o[c->label[i]] -= scale;
    }
}

ct_tensor *ct_cross_entropy(ct_graph *g, ct_tensor *logits, const int32_t *labels) {
    if (!logits) return NULL;
    char sx[64];
    if (logits->ndim != 2)
        return ct_graph_fail(g, CT_ERR_SHAPE, "cross_entropy: logits %s are not (N,C)", CT__SHAPE(logits, sx));
    int64_t n = logits->shape[0], d = logits->shape[1], valid = 0;
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] >= d)
            return ct_graph_fail(g, CT_ERR_INVALID, "cross_entropy: label %d in row %lld is not below %lld classes",
                                 labels[i], (long long)i, (long long)d);
        valid += labels[i] >= 0;
    }
    ct_tensor *y = ct_tensor_new(g, 0, NULL);
    float *prob = ct_graph_alloc(g, (size_t)(n * d) * sizeof(float));
    if (!y || !prob) return NULL;
    memcpy(prob, logits->data, (size_t)(n * d) * sizeof(float));
    double loss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float lse = ct__row_softmax_inplace(prob + i * d, d, -1);
        if (labels[i] >= 0) loss += lse - logits->data[i * d + labels[i]];
    }
    y->data[0] = valid ? (float)(loss / (double)valid) : 0.0f;
    ct_node *node = ct_graph_record(g, "cross_entropy", ct__ce_backward, y, &logits, 1);
    if (node) {
        ct__ce_ctx *c = ct_graph_alloc(g, sizeof *c);
        if (!c) return NULL;
        c->prob = prob;
        c->label = ct__arena_copy(g, labels, (size_t)n * sizeof *labels);
        c->n_valid = valid;
        if (!c->label) return NULL;
        node->ctx = c;
    }
    return y;
}

/* ---- cross-entropy with soft targets ---------------------------------------- */

typedef struct {
    float *prob;
    const float *target;
} ct__ces_ctx;

static void ct__ces_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    const ct__ces_ctx *c = node->ctx;
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    int64_t n = x->shape[0], d = x->shape[1];
    float scale = node->out->grad[0] / (float)n;
    for (int64_t i = 0; i < n; i++) {
        const float *p = c->prob + i * d, *t = c->target + i * d;
        float tsum = 0.0f;
        for (int64_t j = 0; j < d; j++) tsum += t[j];
        float *o = gx + i * d;
        for (int64_t j = 0; j < d; j++) o[j] += scale * (p[j] * tsum - t[j]);
    }
}

ct_tensor *ct_cross_entropy_soft(ct_graph *g, ct_tensor *logits, const float *targets) {
    if (!logits) return NULL;
    char sx[64];
    if (logits->ndim != 2)
        return ct_graph_fail(g, CT_ERR_SHAPE, "cross_entropy_soft: logits %s are not (N,C)", CT__SHAPE(logits, sx));
    int64_t n = logits->shape[0], d = logits->shape[1];
    ct_tensor *y = ct_tensor_new(g, 0, NULL);
    float *prob = ct_graph_alloc(g, (size_t)(n * d) * sizeof(float));
    if (!y || !prob) return NULL;
    memcpy(prob, logits->data, (size_t)(n * d) * sizeof(float));
    double loss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float lse = ct__row_softmax_inplace(prob + i * d, d, -1);
        const float *x = logits->data + i * d, *t = targets + i * d;
        for (int64_t j = 0; j < d; j++) loss += (double)t[j] * (lse - x[j]);
    }
    y->data[0] = (float)(loss / (double)n);
    ct_node *node = ct_graph_record(g, "cross_entropy_soft", ct__ces_backward, y, &logits, 1);
    if (node) {
        ct__ces_ctx *c = ct_graph_alloc(g, sizeof *c);
        if (!c) return NULL;
        c->prob = prob;
        c->target = ct__arena_copy(g, targets, (size_t)(n * d) * sizeof *targets);
        if (!c->target) return NULL;
        node->ctx = c;
    }
    return y;
}

/* ---- NT-Xent ----------------------------------------------------------------- */

typedef struct {
    float *prob;         /* (M,M) softmax of each row over j != i; becomes the gradient */
    const int32_t *group;
    const int32_t *npos; /* positives per row */
    int64_t rows;        /* rows with at least one positive (the mean's divisor) */
} ct__ntx_ctx;

/* dS_ij = (P_ij - [j in pos(i)] / |pos(i)|) / R; S = Z Z^T / T, so
 * dZ = (dS + dS^T) Z / T: one symmetrisation and one sgemm. */
static void ct__ntx_backward(ct_graph *g, ct_node *node) {
    ct_tensor *z = node->in[0];
    const ct__ntx_ctx *c = node->ctx;
    float *gz = ct_tensor_grad(g, z);
    if (!gz) return;
    int64_t m = z->shape[0], d = z->shape[1];
    float scale = node->out->grad[0] / (float)c->rows, inv_t = node->farg[0];
    float *h = c->prob;
    for (int64_t i = 0; i < m; i++) {
        float *row = h + i * m;
        if (c->npos[i] == 0) {
            memset(row, 0, (size_t)m * sizeof(float));
            continue;
        }
        float pw = 1.0f / (float)c->npos[i];
        for (int64_t j = 0; j < m; j++) {
            float t = (j != i && c->group[j] == c->group[i]) ? pw : 0.0f;
            row[j] = scale * (row[j] - t);
        }
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = i + 1; j < m; j++) {
            float s = h[i * m + j] + h[j * m + i];
            h[i * m + j] = s;
            h[j * m + i] = s;
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)m, inv_t, h, (int)m, z->data,
                (int)d, 1.0f, gz, (int)d);
}

ct_tensor *ct_nt_xent(ct_graph *g, ct_tensor *z, const int32_t *group, float temperature) {
    if (!z) return NULL;
    char sz[64];
    if (z->ndim != 2) return ct_graph_fail(g, CT_ERR_SHAPE, "nt_xent: z %s is not (M,D)", CT__SHAPE(z, sz));
    if (!(temperature > 0.0f))
        return ct_graph_fail(g, CT_ERR_INVALID, "nt_xent: temperature %g must be > 0", (double)temperature);
    int64_t m = z->shape[0], d = z->shape[1];
    ct_tensor *y = ct_tensor_new(g, 0, NULL);
    float *s = ct_graph_alloc(g, (size_t)(m * m) * sizeof(float));
    int32_t *npos = ct_graph_alloc(g, (size_t)m * sizeof(int32_t));
    if (!y || !s || !npos) return NULL;
    int64_t rows = 0;
    for (int64_t i = 0; i < m; i++) {
        int32_t c = 0;
        for (int64_t j = 0; j < m; j++) c += j != i && group[j] == group[i];
        npos[i] = c;
        rows += c > 0;
    }
    if (rows == 0) return ct_graph_fail(g, CT_ERR_INVALID, "nt_xent: no row of %lld has a positive", (long long)m);
    float inv_t = 1.0f / temperature;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, (int)d, inv_t, z->data, (int)d, z->data,
                (int)d, 0.0f, s, (int)m);
    double loss = 0.0;
    for (int64_t i = 0; i < m; i++) {
        float *row = s + i * m;
        if (npos[i]) {
            double pos = 0.0;
            for (int64_t j = 0; j < m; j++)
                if (j != i && group[j] == group[i]) pos += row[j];
            loss -= pos / npos[i];
        }
        float lse = ct__row_softmax_inplace(row, m, i);
        if (npos[i]) loss += lse;
    }
    y->data[0] = (float)(loss / (double)rows);
    ct_node *node = ct_graph_record(g, "nt_xent", ct__ntx_backward, y, &z, 1);
    if (node) {
        ct__ntx_ctx *c = ct_graph_alloc(g, sizeof *c);
        if (!c) return NULL;
        c->prob = s;
        c->group = ct__arena_copy(g, group, (size_t)m * sizeof *group);
        c->npos = npos;
        c->rows = rows;
        if (!c->group) return NULL;
        node->ctx = c;
        node->farg[0] = inv_t;
    }
    return y;
}

/* ---- InfoNCE with explicit negatives ------------------------------------------ */

typedef struct {
    float *prob; /* (N, 1+K) softmax of [pos, negs] */
    const ct_tensor *neg;
} ct__nce_ctx;

static void ct__nce_backward(ct_graph *g, ct_node *node) {
    ct_tensor *q = node->in[0], *k = node->in[1];
    const ct__nce_ctx *c = node->ctx;
    int64_t n = q->shape[0], d = q->shape[1], kn = c->neg ? c->neg->shape[0] : 0, w = 1 + kn;
    float scale = node->out->grad[0] / (float)n, inv_t = node->farg[0];
    float *dl = c->prob; /* becomes dLoss/dlogits in place */
    for (int64_t i = 0; i < n; i++) {
        float *row = dl + i * w;
        row[0] -= 1.0f;
        for (int64_t j = 0; j < w; j++) row[j] *= scale;
    }
    if (ct__needs(q)) {
        float *gq = ct_tensor_grad(g, q);
        if (!gq) return;
        for (int64_t i = 0; i < n; i++) {
            float a = dl[i * w] * inv_t;
            const float *ki = k->data + i * d;
            float *o = gq + i * d;
            for (int64_t j = 0; j < d; j++) o[j] += a * ki[j];
        }
        if (kn)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)d, (int)kn, inv_t, dl + 1, (int)w,
                        c->neg->data, (int)d, 1.0f, gq, (int)d);
    }
    if (ct__needs(k)) {
        float *gk = ct_tensor_grad(g, k);
        if (!gk) return;
        for (int64_t i = 0; i < n; i++) {
            float a = dl[i * w] * inv_t;
            const float *qi = q->data + i * d;
            float *o = gk + i * d;
            for (int64_t j = 0; j < d; j++) o[j] += a * qi[j];
        }
    }
}

ct_tensor *ct_info_nce(ct_graph *g, ct_tensor *q, ct_tensor *k, const ct_tensor *neg, float temperature) {
    if (!q || !k) return NULL;
    char sq[64], sk[64];
    if (q->ndim != 2 || !ct_tensor_same_shape(q, k))
        return ct_graph_fail(g, CT_ERR_SHAPE, "info_nce: q %s and k %s must both be (N,D)", CT__SHAPE(q, sq),
                             CT__SHAPE(k, sk));
    int64_t n = q->shape[0], d = q->shape[1];
    if (neg && (neg->ndim != 2 || neg->shape[1] != d))
        return ct_graph_fail(g, CT_ERR_SHAPE, "info_nce: negatives %s do not have D = %lld columns",
                             CT__SHAPE(neg, sk), (long long)d);
    if (!(temperature > 0.0f))
        return ct_graph_fail(g, CT_ERR_INVALID, "info_nce: temperature %g must be > 0", (double)temperature);
    int64_t kn = neg ? neg->shape[0] : 0, w = 1 + kn;
    float inv_t = 1.0f / temperature;
    ct_tensor *y = ct_tensor_new(g, 0, NULL);
    float *l = ct_graph_alloc(g, (size_t)(n * w) * sizeof(float));
    if (!y || !l) return NULL;
    if (kn)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)kn, (int)d, inv_t, q->data, (int)d,
                    neg->data, (int)d, 0.0f, l + 1, (int)w);
    double loss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *qi = q->data + i * d, *ki = k->data + i * d;
        float dot = 0.0f;
        for (int64_t j = 0; j < d; j++) dot += qi[j] * ki[j];
        float *row = l + i * w;
        row[0] = dot * inv_t;
        loss -= row[0];
        loss += ct__row_softmax_inplace(row, w, -1);
    }
    y->data[0] = (float)(loss / (double)n);
    ct_tensor *in[2] = {q, k};
    ct_node *node = ct_graph_record(g, "info_nce", ct__nce_backward, y, in, 2);
    if (node) {
        ct__nce_ctx *c = ct_graph_alloc(g, sizeof *c);
        if (!c) return NULL;
        c->prob = l;
        c->neg = neg;
        node->ctx = c;
        node->farg[0] = inv_t;
    }
    return y;
}

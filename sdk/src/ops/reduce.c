/* Reductions: sum, mean; row-wise softmax, log-softmax, logsumexp and L2
 * normalisation over the last dimension. Row maxima are subtracted before
 * exponentiating, so no op here overflows for large logits. */
#include <math.h>

#include "ops/ops_internal.h"

/* ---- sum / mean ---------------------------------------------------------- */

static void ct__sum_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    const float d = node->out->grad[0] * node->farg[0];
    for (int64_t i = 0; i < x->numel; i++) gx[i] += d;
}

static ct_tensor *ct__sum_scaled(ct_graph *g, ct_tensor *x, float scale, const char *name) {
    if (!x) return NULL;
    ct_tensor *y = ct_tensor_new(g, 0, NULL);
    if (!y) return NULL;
    double acc = 0.0; /* double: sums of 10^7 floats stay accurate */
    for (int64_t i = 0; i < x->numel; i++) acc += x->data[i];
    y->data[0] = (float)(acc * scale);
    ct_node *node = ct_graph_record(g, name, ct__sum_backward, y, &x, 1);
    if (node) node->farg[0] = scale;
    return y;
}

ct_tensor *ct_sum(ct_graph *g, ct_tensor *x) { return ct__sum_scaled(g, x, 1.0f, "sum"); }

ct_tensor *ct_mean(ct_graph *g, ct_tensor *x) {
    return x ? ct__sum_scaled(g, x, 1.0f / (float)x->numel, "mean") : NULL;
}

/* ---- row-wise softmax family ---------------------------------------------- */

static bool ct__rows(ct_graph *g, const ct_tensor *x, const char *op, int64_t *rows, int64_t *d) {
    if (x->ndim < 1) {
        ct_graph_fail(g, CT_ERR_SHAPE, "%s: needs at least one dimension", op);
        return false;
    }
    *d = x->shape[x->ndim - 1];
    *rows = x->numel / *d;
    return true;
}

/* Row max m and log(sum exp(x - m)), kept apart: for logits ~1e4 their
 * float sum would lose the small part that softmax needs. */
static float ct__row_lse_parts(const float *x, int64_t d, float *log_s) {
    float m = x[0];
    for (int64_t j = 1; j < d; j++) m = x[j] > m ? x[j] : m;
    float s = 0.0f;
    for (int64_t j = 0; j < d; j++) s += expf(x[j] - m);
    *log_s = logf(s);
    return m;
}

static float ct__row_lse(const float *x, int64_t d) {
    float ls, m = ct__row_lse_parts(x, d, &ls);
    return m + ls;
}

static void ct__softmax_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    int64_t rows = node->iarg[0], d = node->iarg[1];
    const float *y = node->out->data, *gy = node->out->grad;
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * d, *gr = gy + r * d;
        float dot = 0.0f;
        for (int64_t j = 0; j < d; j++) dot += gr[j] * yr[j];
        float *o = gx + r * d;
        for (int64_t j = 0; j < d; j++) o[j] += yr[j] * (gr[j] - dot);
    }
}

ct_tensor *ct_softmax(ct_graph *g, ct_tensor *x) {
    int64_t rows, d;
    if (!x || !ct__rows(g, x, "softmax", &rows, &d)) return NULL;
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    if (!y) return NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * d;
        float *yr = y->data + r * d;
        float ls, m = ct__row_lse_parts(xr, d, &ls);
        for (int64_t j = 0; j < d; j++) yr[j] = expf((xr[j] - m) - ls);
    }
    ct_node *node = ct_graph_record(g, "softmax", ct__softmax_backward, y, &x, 1);
    if (node) {
        node->iarg[0] = rows;
        node->iarg[1] = d;
    }
    return y;
}

static void ct__log_softmax_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    int64_t rows = node->iarg[0], d = node->iarg[1];
    const float *y = node->out->data, *gy = node->out->grad;
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * d, *gr = gy + r * d;
        float s = 0.0f;
        for (int64_t j = 0; j < d; j++) s += gr[j];
        float *o = gx + r * d;
        for (int64_t j = 0; j < d; j++) o[j] += gr[j] - expf(yr[j]) * s;
    }
}

ct_tensor *ct_log_softmax(ct_graph *g, ct_tensor *x) {
    int64_t rows, d;
    if (!x || !ct__rows(g, x, "log_softmax", &rows, &d)) return NULL;
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    if (!y) return NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * d;
        float *yr = y->data + r * d;
        float ls, m = ct__row_lse_parts(xr, d, &ls);
        for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - m) - ls;
    }
    ct_node *node = ct_graph_record(g, "log_softmax", ct__log_softmax_backward, y, &x, 1);
    if (node) {
        node->iarg[0] = rows;
        node->iarg[1] = d;
    }
    return y;
}

static void ct__logsumexp_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    int64_t rows = node->iarg[0], d = node->iarg[1];
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * d;
        float lse = node->out->data[r], gr = node->out->grad[r];
        float *o = gx + r * d;
        for (int64_t j = 0; j < d; j++) o[j] += gr * expf(xr[j] - lse);
    }
}

ct_tensor *ct_logsumexp(ct_graph *g, ct_tensor *x) {
    int64_t rows, d;
    if (!x || !ct__rows(g, x, "logsumexp", &rows, &d)) return NULL;
    ct_tensor *y = ct_tensor_new(g, x->ndim - 1, x->shape);
    if (!y) return NULL;
    for (int64_t r = 0; r < rows; r++) y->data[r] = ct__row_lse(x->data + r * d, d);
    ct_node *node = ct_graph_record(g, "logsumexp", ct__logsumexp_backward, y, &x, 1);
    if (node) {
        node->iarg[0] = rows;
        node->iarg[1] = d;
    }
    return y;
}

/* ---- L2 normalisation ------------------------------------------------------ */

/* y = x / max(||x||, eps). Where the norm is above eps,
 * dx = (gy - y (gy.y)) / ||x||; below it the map is linear: dx = gy / eps. */
static void ct__l2n_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    int64_t rows = node->iarg[0], d = node->iarg[1];
    const float *norms = node->ctx, eps = node->farg[0];
    const float *y = node->out->data, *gy = node->out->grad;
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * d, *gr = gy + r * d;
        float *o = gx + r * d;
        float n = norms[r];
        if (n > eps) {
            float dot = 0.0f;
            for (int64_t j = 0; j < d; j++) dot += gr[j] * yr[j];
            float inv = 1.0f / n;
            for (int64_t j = 0; j < d; j++) o[j] += (gr[j] - yr[j] * dot) * inv;
        } else {
            for (int64_t j = 0; j < d; j++) o[j] += gr[j] / eps;
        }
    }
}

/* y = x / max(||x||, eps) for one row (y may be x); returns ||x||. */
static float ct__l2n_row(const float *x, float *y, int64_t d, float eps) {
    double ss = 0.0;
    for (int64_t j = 0; j < d; j++) ss += (double)x[j] * x[j];
    float n = (float)sqrt(ss);
    float inv = 1.0f / (n > eps ? n : eps);
    for (int64_t j = 0; j < d; j++) y[j] = x[j] * inv;
    return n;
}

/* The plain-array form takes the reciprocal in double, as the three
 * private copies it replaced did (knn, alignment, SwAV's prototypes), so
 * their numbers stay those recorded before it; it agrees with the graph op
 * to within one rounding. */
void ct_rows_l2_normalize(float *x, int64_t rows, int64_t d, float eps) {
    if (!x) return;
    for (int64_t r = 0; r < rows; r++) {
        float *row = x + r * d;
        double ss = 0.0;
        for (int64_t j = 0; j < d; j++) ss += (double)row[j] * row[j];
        float inv = (float)(1.0 / fmax(sqrt(ss), (double)eps));
        for (int64_t j = 0; j < d; j++) row[j] *= inv;
    }
}

ct_tensor *ct_l2_normalize(ct_graph *g, ct_tensor *x, float eps) {
    int64_t rows, d;
    if (!x || !ct__rows(g, x, "l2_normalize", &rows, &d)) return NULL;
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    float *norms = ct_graph_alloc(g, (size_t)rows * sizeof(float));
    if (!y || !norms) return NULL;
    for (int64_t r = 0; r < rows; r++) norms[r] = ct__l2n_row(x->data + r * d, y->data + r * d, d, eps);
    ct_node *node = ct_graph_record(g, "l2_normalize", ct__l2n_backward, y, &x, 1);
    if (node) {
        node->iarg[0] = rows;
        node->iarg[1] = d;
        node->farg[0] = eps;
        node->ctx = norms;
    }
    return y;
}

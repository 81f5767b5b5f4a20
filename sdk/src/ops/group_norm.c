/* Group normalisation (Wu & He 2018): per sample, the channels are split
 * into `groups` equal groups and each group is normalised over its
 * channels and spatial positions, then scaled and shifted per channel.
 *
 * Why beside batch norm: statistics never cross samples, so a model whose
 * batch holds many patches of one image (CPC) cannot read one patch's
 * content from another's normalisation, and training and evaluation
 * compute the same function (no running statistics).
 *
 * Work is split over (sample, group) units with ct_parallel_for; each
 * unit's sums are taken by one thread in a fixed order (double
 * accumulators, shifted by the unit's first element against
 * cancellation), so results do not depend on the thread count. The
 * per-channel weight/bias gradients are a second pass split over channels. */
#include <math.h>
#include <stdint.h>

#include "ops_internal.h"

typedef struct ct__gn {
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw, *db;
    float *mean, *rstd; /* per (n, group) */
    int64_t N, C, S, G, cg; /* cg = C / G channels per group */
    float eps;
} ct__gn;

static void ct__gn_forward_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__gn *a = ctx;
    const int64_t m = a->cg * a->S;
    for (int64_t u = begin; u < end; u++) {
        const float *xs = a->x + u * m; /* (n, group) units are contiguous in (N, C, S) */
        const double shift = xs[0];
        double sum = 0.0, sq = 0.0;
        for (int64_t i = 0; i < m; i++) {
            double v = (double)xs[i] - shift;
            sum += v;
            sq += v * v;
        }
        double mu = sum / (double)m, var = sq / (double)m - mu * mu;
        if (var < 0.0) var = 0.0;
        float mean = (float)(shift + mu), rstd = (float)(1.0 / sqrt(var + (double)a->eps));
        a->mean[u] = mean, a->rstd[u] = rstd;
        const int64_t c0 = (u % a->G) * a->cg;
        float *ys = a->y + u * m;
        for (int64_t c = 0; c < a->cg; c++) {
            float w = a->w ? a->w[c0 + c] : 1.0f, b = a->b ? a->b[c0 + c] : 0.0f;
            float k = rstd * w, k0 = b - mean * k;
            const float *xr = xs + c * a->S;
            float *yr = ys + c * a->S;
            for (int64_t j = 0; j < a->S; j++) yr[j] = xr[j] * k + k0;
        }
    }
}

/* dx of one (n, group) unit: with xhat = (x - mean) * rstd and
 * g = dy * w, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). */
static void ct__gn_dx_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__gn *a = ctx;
    const int64_t m = a->cg * a->S;
    for (int64_t u = begin; u < end; u++) {
        const float *xs = a->x + u * m, *dys = a->dy + u * m;
        const float mean = a->mean[u], rstd = a->rstd[u];
        const int64_t c0 = (u % a->G) * a->cg;
        double sg = 0.0, sgx = 0.0;
        for (int64_t c = 0; c < a->cg; c++) {
            float w = a->w ? a->w[c0 + c] : 1.0f;
            for (int64_t j = 0; j < a->S; j++) {
                double gv = (double)dys[c * a->S + j] * w;
                sg += gv;
                sgx += gv * ((xs[c * a->S + j] - mean) * rstd);
            }
        }
        const float mg = (float)(sg / (double)m), mgx = (float)(sgx / (double)m);
        float *dxs = a->dx + u * m;
        for (int64_t c = 0; c < a->cg; c++) {
            float w = a->w ? a->w[c0 + c] : 1.0f;
            for (int64_t j = 0; j < a->S; j++) {
                int64_t i = c * a->S + j;
                float xhat = (xs[i] - mean) * rstd;
                dxs[i] += rstd * (dys[i] * w - mg - xhat * mgx);
            }
        }
    }
}

/* dw[c] += sum dy * xhat, db[c] += sum dy over samples and positions. */
static void ct__gn_dwb_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__gn *a = ctx;
    for (int64_t c = begin; c < end; c++) {
        double sw = 0.0, sb = 0.0;
        for (int64_t n = 0; n < a->N; n++) {
            int64_t u = n * a->G + c / a->cg;
            const float *xr = a->x + (n * a->C + c) * a->S, *dyr = a->dy + (n * a->C + c) * a->S;
            const float mean = a->mean[u], rstd = a->rstd[u];
            for (int64_t j = 0; j < a->S; j++) {
                sw += (double)dyr[j] * ((xr[j] - mean) * rstd);
                sb += dyr[j];
            }
        }
        if (a->dw) a->dw[c] += (float)sw;
        if (a->db) a->db[c] += (float)sb;
    }
}

static void ct__gn_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    ct__gn a = *(ct__gn *)node->ctx;
    a.dy = node->out->grad;
    a.dx = ct__needs(x) ? ct_tensor_grad(g, x) : NULL;
    a.dw = ct__needs(w) ? ct_tensor_grad(g, w) : NULL;
    a.db = ct__needs(b) ? ct_tensor_grad(g, b) : NULL;
    if ((ct__needs(x) && !a.dx) || (ct__needs(w) && !a.dw) || (ct__needs(b) && !a.db)) return;
    const int64_t m = a.cg * a.S;
    if (a.dx) ct__parallel(g, a.N * a.G, CT__PAR_GRAIN / m + 1, ct__gn_dx_range, &a);
    if (a.dw || a.db) ct__parallel(g, a.C, CT__PAR_GRAIN / (a.N * a.S) + 1, ct__gn_dwb_range, &a);
}

ct_tensor *ct_group_norm(ct_graph *g, ct_tensor *x, int groups, ct_tensor *weight, ct_tensor *bias, float eps) {
    if (!x) return NULL;
    char sx[64];
    if (x->ndim < 2 || x->shape[1] < 1)
        return ct_graph_fail(g, CT_ERR_SHAPE, "group_norm: x must be (N,C,...), got %s", CT__SHAPE(x, sx));
    const int64_t N = x->shape[0], C = x->shape[1], S = x->numel / (N * C > 0 ? N * C : 1);
    if (groups < 1 || C % groups != 0)
        return ct_graph_fail(g, CT_ERR_INVALID, "group_norm: %lld channels cannot be split into %d groups",
                             (long long)C, groups);
    if (!(eps > 0.0f)) return ct_graph_fail(g, CT_ERR_INVALID, "group_norm: eps must be > 0, got %g", (double)eps);
    const ct_tensor *wb[2] = {weight, bias};
    for (int i = 0; i < 2; i++)
        if (wb[i] && wb[i]->numel != C)
            return ct_graph_fail(g, CT_ERR_SHAPE, "group_norm: %s has %lld elements, x has %lld channels",
                                 i ? "bias" : "weight", (long long)wb[i]->numel, (long long)C);
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    ct__gn *a = ct_graph_alloc(g, sizeof *a);
    const int64_t units = N * groups;
    float *mean = ct_graph_alloc(g, (size_t)(units ? units : 1) * 2 * sizeof(float));
    if (!y || !a || !mean) return NULL;
    *a = (ct__gn){.x = x->data, .w = weight ? weight->data : NULL, .b = bias ? bias->data : NULL, .y = y->data,
                  .mean = mean, .rstd = mean + units, .N = N, .C = C, .S = S, .G = groups, .cg = C / groups,
                  .eps = eps};
    if (units > 0 && S > 0) ct__parallel(g, units, CT__PAR_GRAIN / (a->cg * S) + 1, ct__gn_forward_range, a);
    ct_tensor *in[3] = {x, weight, bias};
    ct_node *node = ct_graph_record(g, "group_norm", ct__gn_backward, y, in, 3);
    if (node) node->ctx = a;
    return y;
}

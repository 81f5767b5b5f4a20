/* Pooling over (N,C,H,W): max and average windows, and the global average.
 *
 * Max pooling saves the flat input index of each output's winner, so the
 * backward is a scatter that needs neither x nor a second search. Average
 * pooling excludes padding from the divisor (PyTorch's
 * count_include_pad=False). Planes (n, c) are independent and split over the
 * thread pool when large. */
#include <float.h>
#include <string.h>

#include "contrast/ops.h"
#include "contrast/threadpool.h"

typedef struct ct__pool_args {
    const float *x;
    float *y;
    int32_t *arg; /* max: winner index within the plane, per output */
    const float *dy;
    float *dx;
    int64_t h, w, ho, wo;
    int k, stride, pad;
} ct__pool_args;

/* The graph's pool for tensors large enough to pay for the fork-join. */
static ct_threadpool *ct__pool_pool(const ct_graph *g, int64_t elems) {
    return elems >= 65536 ? ct_graph_pool(g) : NULL;
}

static bool ct__pool_check(ct_graph *g, const char *op, ct_tensor *x, int k, int stride, int pad) {
    if (!x) return false;
    if (x->ndim != 4) {
        ct_graph_fail(g, CT_ERR_SHAPE, "%s: input must be (N,C,H,W), got %dD", op, x->ndim);
        return false;
    }
    if (k < 1 || stride < 1 || pad < 0 || 2 * pad > k) {
        ct_graph_fail(g, CT_ERR_INVALID, "%s: bad kernel %d / stride %d / padding %d (need pad <= k/2)",
                      op, k, stride, pad);
        return false;
    }
    if (x->shape[2] + 2 * pad < k || x->shape[3] + 2 * pad < k) {
        ct_graph_fail(g, CT_ERR_SHAPE, "%s: window %d larger than padded input %lldx%lld", op, k,
                      (long long)(x->shape[2] + 2 * pad), (long long)(x->shape[3] + 2 * pad));
        return false;
    }
    return true;
}

/* ---- max pool ------------------------------------------------------------ */

static void ct__maxpool_fwd(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__pool_args *a = ctx;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = a->x + pl * a->h * a->w;
        float *y = a->y + pl * a->ho * a->wo;
        int32_t *arg = a->arg + pl * a->ho * a->wo;
        for (int64_t oy = 0; oy < a->ho; oy++)
            for (int64_t ox = 0; ox < a->wo; ox++) {
                float best = -FLT_MAX;
                int32_t at = -1;
                for (int ky = 0; ky < a->k; ky++) {
                    int64_t iy = oy * a->stride - a->pad + ky;
                    if (iy < 0 || iy >= a->h) continue;
                    for (int kx = 0; kx < a->k; kx++) {
                        int64_t ix = ox * a->stride - a->pad + kx;
                        if (ix < 0 || ix >= a->w) continue;
                        float v = x[iy * a->w + ix];
                        if (at < 0 || v > best) best = v, at = (int32_t)(iy * a->w + ix);
                    }
                }
                y[oy * a->wo + ox] = best;
                arg[oy * a->wo + ox] = at;
            }
    }
}

static void ct__maxpool_bwd(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__pool_args *a = ctx;
    const int64_t po = a->ho * a->wo;
    for (int64_t pl = begin; pl < end; pl++) {
        float *dx = a->dx + pl * a->h * a->w;
        const float *dy = a->dy + pl * po;
        const int32_t *arg = a->arg + pl * po;
        for (int64_t i = 0; i < po; i++) dx[arg[i]] += dy[i];
    }
}

static void ct__maxpool_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0], *y = node->out;
    ct__pool_args a = {0};
    a.arg = node->ctx;
    a.dy = y->grad;
    a.h = x->shape[2], a.w = x->shape[3], a.ho = y->shape[2], a.wo = y->shape[3];
    if (!(a.dx = ct_tensor_grad(g, x))) return;
    ct_parallel_for(ct__pool_pool(g, x->numel), x->shape[0] * x->shape[1], 1, ct__maxpool_bwd, &a);
}

ct_tensor *ct_maxpool2d(ct_graph *g, ct_tensor *x, int k, int stride, int pad) {
    if (!g) return NULL;
    if (!ct__pool_check(g, "maxpool2d", x, k, stride, pad)) return NULL;
    int64_t ho = (x->shape[2] + 2 * pad - k) / stride + 1, wo = (x->shape[3] + 2 * pad - k) / stride + 1;
    ct_tensor *y = ct_tensor_new4(g, x->shape[0], x->shape[1], ho, wo);
    int32_t *arg = ct_graph_alloc(g, (size_t)(y ? y->numel : 1) * sizeof(int32_t));
    if (!y || !arg) return NULL;
    ct__pool_args a = {x->data, y->data, arg, NULL, NULL, x->shape[2], x->shape[3], ho, wo, k, stride, pad};
    ct_parallel_for(ct__pool_pool(g, x->numel), x->shape[0] * x->shape[1], 1, ct__maxpool_fwd, &a);
    ct_node *node = ct_graph_record(g, "maxpool2d", ct__maxpool_backward, y, &x, 1);
    if (node) node->ctx = arg;
    return y;
}

/* ---- average pool -------------------------------------------------------- */

/* Window bounds clipped to the image, and the divisor (valid cells only). */
static int64_t ct__avg_window(const ct__pool_args *a, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1,
                              int64_t *x0, int64_t *x1) {
    *y0 = oy * a->stride - a->pad, *x0 = ox * a->stride - a->pad;
    *y1 = *y0 + a->k, *x1 = *x0 + a->k;
    if (*y0 < 0) *y0 = 0;
    if (*x0 < 0) *x0 = 0;
    if (*y1 > a->h) *y1 = a->h;
    if (*x1 > a->w) *x1 = a->w;
    return (*y1 - *y0) * (*x1 - *x0);
}

static void ct__avgpool_fwd(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__pool_args *a = ctx;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = a->x + pl * a->h * a->w;
        float *y = a->y + pl * a->ho * a->wo;
        for (int64_t oy = 0; oy < a->ho; oy++)
            for (int64_t ox = 0; ox < a->wo; ox++) {
                int64_t y0, y1, x0, x1;
                int64_t cnt = ct__avg_window(a, oy, ox, &y0, &y1, &x0, &x1);
                float s = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) s += x[iy * a->w + ix];
                y[oy * a->wo + ox] = cnt > 0 ? s / (float)cnt : 0.0f;
            }
    }
}

static void ct__avgpool_bwd(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__pool_args *a = ctx;
    for (int64_t pl = begin; pl < end; pl++) {
        float *dx = a->dx + pl * a->h * a->w;
        const float *dy = a->dy + pl * a->ho * a->wo;
        for (int64_t oy = 0; oy < a->ho; oy++)
            for (int64_t ox = 0; ox < a->wo; ox++) {
                int64_t y0, y1, x0, x1;
                int64_t cnt = ct__avg_window(a, oy, ox, &y0, &y1, &x0, &x1);
                if (cnt == 0) continue;
                float d = dy[oy * a->wo + ox] / (float)cnt;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) dx[iy * a->w + ix] += d;
            }
    }
}

static void ct__avgpool_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0], *y = node->out;
    ct__pool_args a = {0};
    a.dy = y->grad;
    a.h = x->shape[2], a.w = x->shape[3], a.ho = y->shape[2], a.wo = y->shape[3];
    a.k = (int)node->iarg[0], a.stride = (int)node->iarg[1], a.pad = (int)node->iarg[2];
    if (!(a.dx = ct_tensor_grad(g, x))) return;
    ct_parallel_for(ct__pool_pool(g, x->numel), x->shape[0] * x->shape[1], 1, ct__avgpool_bwd, &a);
}

ct_tensor *ct_avgpool2d(ct_graph *g, ct_tensor *x, int k, int stride, int pad) {
    if (!g) return NULL;
    if (!ct__pool_check(g, "avgpool2d", x, k, stride, pad)) return NULL;
    int64_t ho = (x->shape[2] + 2 * pad - k) / stride + 1, wo = (x->shape[3] + 2 * pad - k) / stride + 1;
    ct_tensor *y = ct_tensor_new4(g, x->shape[0], x->shape[1], ho, wo);
    if (!y) return NULL;
    ct__pool_args a = {x->data, y->data, NULL, NULL, NULL, x->shape[2], x->shape[3], ho, wo, k, stride, pad};
    ct_parallel_for(ct__pool_pool(g, x->numel), x->shape[0] * x->shape[1], 1, ct__avgpool_fwd, &a);
    ct_node *node = ct_graph_record(g, "avgpool2d", ct__avgpool_backward, y, &x, 1);
    if (node) node->iarg[0] = k, node->iarg[1] = stride, node->iarg[2] = pad;
    return y;
}

/* ---- global average pool -------------------------------------------------- */

static void ct__gap_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    const float *dy = node->out->grad;
    /* First writer of x's gradient: assign (no memset, no read). */
    bool fresh = x->grad == NULL;
    if (fresh) x->grad = ct_graph_alloc(g, (size_t)x->numel * sizeof(float));
    float *dx = x->grad;
    if (!dx) return;
    const int64_t planes = x->shape[0] * x->shape[1], s = x->shape[2] * x->shape[3];
    const float inv = 1.0f / (float)s;
    for (int64_t pl = 0; pl < planes; pl++) {
        float d = dy[pl] * inv;
        float *p = dx + pl * s;
        if (fresh) {
            for (int64_t j = 0; j < s; j++) p[j] = d;
        } else {
            for (int64_t j = 0; j < s; j++) p[j] += d;
        }
    }
}

ct_tensor *ct_global_avgpool(ct_graph *g, ct_tensor *x) {
    if (!g || !x) return g ? ct_graph_fail(g, CT_ERR_INVALID, "global_avgpool: NULL input") : NULL;
    if (x->ndim != 4)
        return ct_graph_fail(g, CT_ERR_SHAPE, "global_avgpool: input must be (N,C,H,W), got %dD", x->ndim);
    ct_tensor *y = ct_tensor_new2(g, x->shape[0], x->shape[1]);
    if (!y) return NULL;
    const int64_t planes = x->shape[0] * x->shape[1], s = x->shape[2] * x->shape[3];
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *p = x->data + pl * s;
        float acc = 0.0f;
        for (int64_t j = 0; j < s; j++) acc += p[j];
        y->data[pl] = s > 0 ? acc / (float)s : 0.0f;
    }
    ct_graph_record(g, "global_avgpool", ct__gap_backward, y, &x, 1);
    return y;
}

/* Batch normalisation over (N, C, ...) per channel, optionally fused with
 * the ReLU that follows it in every ResNet (ct_batchnorm_relu).
 *
 * Why fused: batch norm and ReLU are memory-bound passes over the largest
 * activations of the network; fusing them saves one full read and write in
 * forward and one in backward (the ReLU mask is read from the output).
 * Work is split over channels with ct_parallel_for: each channel's
 * statistics are computed by one thread in a fixed order, so results do
 * not depend on the thread count.
 *
 * Statistics: sums of (x - x0) and (x - x0)^2 with a per-channel shift x0
 * (the channel's first element), accumulated in double across rows; this
 * keeps one pass over x without the cancellation of the naive formula. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "contrast/ops.h"
#include "contrast/threadpool.h"

/* Sum of s[0..n) and of squares, 16 float lanes (vectorisable without
 * -ffast-math), returned in double. */
static void ct__sum2_shifted(const float *s, int64_t n, float shift, double *sum, double *sq) {
    float a[16] = {0}, b[16] = {0};
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int k = 0; k < 16; k++) {
            float v = s[j + k] - shift;
            a[k] += v;
            b[k] += v * v;
        }
    double ra = 0.0, rb = 0.0;
    for (; j < n; j++) {
        double v = (double)s[j] - shift;
        ra += v;
        rb += v * v;
    }
    for (int k = 0; k < 16; k++) ra += a[k], rb += b[k];
    *sum += ra;
    *sq += rb;
}

/* y = x*scale + bias (then ReLU) over one row. The output is written with
 * non-temporal stores where AVX-512 is available: it is not read again
 * soon (the next op runs after the whole batch), and bypassing the cache
 * avoids reading the destination lines first and keeps the channel's
 * input, just read for the statistics, in L2 for this second pass. The
 * arithmetic is the same float operations as the scalar path (backward
 * recomputes the ReLU mask from x and relies on that). */
static void ct__bn_norm_row(const float *xs, float *ys, int64_t S, float scale, float bias, bool relu) {
    int64_t j = 0;
#if defined(__AVX512F__)
    int64_t head = (int64_t)(((64 - ((uintptr_t)ys & 63)) & 63) / sizeof(float));
    if ((((uintptr_t)ys) & 3) == 0 && S - head >= 16) {
        for (; j < head; j++) {
            float v = xs[j] * scale + bias;
            ys[j] = relu ? (v > 0.0f ? v : 0.0f) : v;
        }
        const __m512 vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
        for (; j + 16 <= S; j += 16) {
            __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(xs + j), vs), vb);
            if (relu) v = _mm512_max_ps(v, z);
            _mm512_stream_ps(ys + j, v);
        }
    }
#endif
    for (; j < S; j++) {
        float v = xs[j] * scale + bias;
        ys[j] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

/* Order non-temporal stores before the fork-join barrier publishes them. */
static void ct__stream_fence(void) {
#if defined(__AVX512F__)
    _mm_sfence();
#endif
}

/* dx (=|+=) k0*dy' + c1*v + c0 over one row, dy' = dy masked by the ReLU
 * recomputed from v (= x) exactly as forward did. Fresh rows are streamed
 * (non-temporal), as in ct__bn_norm_row. */
static void ct__bn_dx_row(const float *vs, const float *dys, float *dxs, int64_t S, float k0, float c1,
                          float c0, bool relu, float scale, float bias, bool fresh) {
    int64_t j = 0;
#if defined(__AVX512F__)
    int64_t head = (int64_t)(((64 - ((uintptr_t)dxs & 63)) & 63) / sizeof(float));
    if ((((uintptr_t)dxs) & 3) == 0 && S - head >= 16) {
        for (; j < head; j++) {
            float d = dys[j], v = vs[j];
            if (relu && !(v * scale + bias > 0.0f)) d = 0.0f;
            dxs[j] = (fresh ? 0.0f : dxs[j]) + (k0 * d + c1 * v + c0);
        }
        const __m512 vk0 = _mm512_set1_ps(k0), vc1 = _mm512_set1_ps(c1), vc0 = _mm512_set1_ps(c0);
        const __m512 vsc = _mm512_set1_ps(scale), vbi = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
        for (; j + 16 <= S; j += 16) {
            __m512 v = _mm512_loadu_ps(vs + j), d = _mm512_loadu_ps(dys + j);
            if (relu) {
                __mmask16 m = _mm512_cmp_ps_mask(_mm512_add_ps(_mm512_mul_ps(v, vsc), vbi), z, _CMP_GT_OQ);
                d = _mm512_maskz_mov_ps(m, d);
            }
            __m512 r = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(vk0, d), _mm512_mul_ps(vc1, v)), vc0);
            if (fresh) {
                _mm512_stream_ps(dxs + j, r);
            } else {
                _mm512_store_ps(dxs + j, _mm512_add_ps(_mm512_load_ps(dxs + j), r));
            }
        }
    }
#endif
    for (; j < S; j++) {
        float d = dys[j], v = vs[j];
        if (relu && !(v * scale + bias > 0.0f)) d = 0.0f;
        float r = k0 * d + c1 * v + c0;
        dxs[j] = fresh ? r : dxs[j] + r;
    }
}

typedef struct ct__bn_args {
    const float *x, *gamma, *beta;
    float *y;
    float *mean, *invstd; /* per channel, written in training mode */
    const float *rmean, *rvar;
    float *run_mean, *run_var; /* updated in training mode when non-NULL */
    float momentum, eps;
    int64_t n, c, s; /* batch, channels, spatial size */
    bool train, relu;
    /* backward */
    const float *dy;
    float *dx, *dgamma, *dbeta;
    bool dx_fresh; /* dx uninitialised: write instead of accumulate */
} ct__bn_args;

static void ct__bn_fwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__bn_args *a = ctx;
    const int64_t N = a->n, C = a->c, S = a->s, M = N * S;
    for (int64_t c = begin; c < end; c++) {
        float mean, invstd;
        if (a->train) {
            const float shift = a->x[c * S];
            double sum = 0.0, sq = 0.0;
            for (int64_t n = 0; n < N; n++) ct__sum2_shifted(a->x + (n * C + c) * S, S, shift, &sum, &sq);
            double dm = sum / (double)M;
            double var = sq / (double)M - dm * dm;
            if (var < 0.0) var = 0.0;
            mean = (float)(dm + shift);
            invstd = (float)(1.0 / sqrt(var + a->eps));
            a->mean[c] = mean;
            a->invstd[c] = invstd;
            if (a->run_mean) {
                double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
                a->run_mean[c] = (1.0f - a->momentum) * a->run_mean[c] + a->momentum * mean;
                a->run_var[c] = (float)((1.0 - a->momentum) * a->run_var[c] + a->momentum * unbiased);
            }
        } else {
            mean = a->rmean[c];
            invstd = 1.0f / sqrtf(a->rvar[c] + a->eps);
            a->mean[c] = mean;
            a->invstd[c] = invstd;
        }
        const float g = a->gamma ? a->gamma[c] : 1.0f, b = a->beta ? a->beta[c] : 0.0f;
        const float scale = g * invstd, bias = b - mean * scale;
        for (int64_t n = 0; n < N; n++)
            ct__bn_norm_row(a->x + (n * C + c) * S, a->y + (n * C + c) * S, S, scale, bias, a->relu);
    }
    ct__stream_fence();
}

/* Backward reads two activation-sized arrays per pass instead of three.
 * Without ReLU, y = g*xhat + b, so xhat = (y - b)/g and x is not needed.
 * With ReLU, pass 1 only needs xhat where y > 0, where the same holds;
 * pass 2 needs xhat everywhere, so it reads x and recomputes the mask
 * exactly as forward did (x*scale + bias > 0, same float operations) and
 * does not read y. Recovering xhat from y is used only when g is not small
 * against b (at most ~1e-4 relative error); otherwise x is read. */
static bool ct__bn_xhat_from_y(float g, float b) {
    return fabsf(g) >= 1e-3f && fabsf(b) <= 1e3f * fabsf(g);
}

static void ct__bn_bwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__bn_args *a = ctx;
    const int64_t N = a->n, C = a->c, S = a->s, M = N * S;
    const bool relu = a->relu;
    for (int64_t c = begin; c < end; c++) {
        const float mean = a->mean[c], invstd = a->invstd[c];
        const float g = a->gamma ? a->gamma[c] : 1.0f, b = a->beta ? a->beta[c] : 0.0f;
        const float scale = g * invstd, bias = b - mean * scale; /* as in forward */
        const bool from_y = ct__bn_xhat_from_y(g, b);
        /* Pass 1: sum(dy') and sum(dy' * xhat), dy' = dy masked by ReLU;
         * xhat = src * ka + kb. */
        const float *src = from_y ? a->y : a->x;
        const float ka = from_y ? 1.0f / g : invstd, kb = from_y ? -b / g : -mean * invstd;
        double sdy = 0.0, sdx = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const int64_t off = (n * C + c) * S;
            const float *ss = src + off, *dys = a->dy + off;
            float p[16] = {0}, q[16] = {0};
            int64_t j = 0;
            for (; j + 16 <= S; j += 16)
                for (int k = 0; k < 16; k++) {
                    float d = dys[j + k], v = ss[j + k];
                    if (relu && !(from_y ? v > 0.0f : v * scale + bias > 0.0f)) d = 0.0f;
                    p[k] += d;
                    q[k] += d * (v * ka + kb);
                }
            for (; j < S; j++) {
                float d = dys[j], v = ss[j];
                if (relu && !(from_y ? v > 0.0f : v * scale + bias > 0.0f)) d = 0.0f;
                sdy += d;
                sdx += (double)d * (v * ka + kb);
            }
            for (int k = 0; k < 16; k++) sdy += p[k], sdx += q[k];
        }
        if (a->dgamma) a->dgamma[c] += (float)sdx;
        if (a->dbeta) a->dbeta[c] += (float)sdy;
        if (!a->dx) continue;
        /* Pass 2: dx = k0 * (dy' - mean(dy') - xhat * mean(dy' xhat)) in
         * training mode; k0 * dy' with running statistics (k0 = g*invstd).
         * Written as dx = k0*dy' + c1*src + c0 with xhat = src*ka + kb. */
        const bool y2 = from_y && !relu;
        const float *src2 = y2 ? a->y : a->x;
        const float ka2 = y2 ? ka : invstd, kb2 = y2 ? kb : -mean * invstd;
        const float mdy = a->train ? (float)(sdy / (double)M) : 0.0f;
        const float mdx = a->train ? (float)(sdx / (double)M) : 0.0f;
        const float k0 = scale, c1 = -k0 * mdx * ka2, c0 = -k0 * mdy - k0 * mdx * kb2;
        for (int64_t n = 0; n < N; n++) {
            const int64_t off = (n * C + c) * S;
            ct__bn_dx_row(src2 + off, a->dy + off, a->dx + off, S, k0, c1, c0, relu, scale, bias, a->dx_fresh);
        }
    }
    ct__stream_fence();
}

typedef struct ct__bn_ctx {
    float *mean, *invstd;
    float eps;
    bool train, relu;
} ct__bn_ctx;

static ct_threadpool *ct__bn_pool(int64_t elems) {
    /* Below ~64K elements a fork-join costs more than it saves. */
    return elems >= 65536 ? ct_default_pool() : NULL;
}

static void ct__bn_backward(ct_graph *g, ct_node *node) {
    ct__bn_ctx *cx = node->ctx;
    ct_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    ct__bn_args a;
    memset(&a, 0, sizeof a);
    a.x = x->data;
    a.y = node->out->data;
    a.gamma = w ? w->data : NULL;
    a.beta = b ? b->data : NULL;
    a.mean = cx->mean, a.invstd = cx->invstd;
    a.n = x->shape[0], a.c = x->shape[1], a.s = x->numel / (a.n * a.c);
    a.train = cx->train, a.relu = cx->relu;
    a.dy = node->out->grad;
    if (x->flags & CT_TENSOR_REQUIRES_GRAD) {
        /* First writer of x's gradient: overwrite (no memset, no read). */
        a.dx_fresh = x->grad == NULL;
        if (a.dx_fresh) x->grad = ct_graph_alloc(g, (size_t)x->numel * sizeof(float));
        if (!(a.dx = x->grad)) return;
    }
    if (w && (w->flags & CT_TENSOR_REQUIRES_GRAD) && !(a.dgamma = ct_tensor_grad(g, w))) return;
    if (b && (b->flags & CT_TENSOR_REQUIRES_GRAD) && !(a.dbeta = ct_tensor_grad(g, b))) return;
    ct_parallel_for(ct__bn_pool(x->numel), a.c, 1, ct__bn_bwd_range, &a);
}

static ct_tensor *ct__batchnorm(ct_graph *g, const char *op, bool relu, ct_tensor *x, ct_tensor *weight,
                                ct_tensor *bias, ct_tensor *running_mean, ct_tensor *running_var,
                                float momentum, float eps) {
    if (!g || !x) return g ? ct_graph_fail(g, CT_ERR_INVALID, "%s: NULL input", op) : NULL;
    if (x->ndim < 2 || x->shape[0] < 1)
        return ct_graph_fail(g, CT_ERR_SHAPE, "%s: input must be (N,C,...) with N >= 1, got %dD", op,
                             x->ndim);
    const int64_t C = x->shape[1];
    ct_tensor *per_c[4] = {weight, bias, running_mean, running_var};
    static const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++)
        if (per_c[i] && per_c[i]->numel != C)
            return ct_graph_fail(g, CT_ERR_SHAPE, "%s: %s has %lld elements, input has %lld channels", op,
                                 names[i], (long long)per_c[i]->numel, (long long)C);
    bool train = ct_graph_is_train(g);
    if (!train && (!running_mean || !running_var))
        return ct_graph_fail(g, CT_ERR_INVALID, "%s: eval mode needs running_mean and running_var", op);
    if ((running_mean == NULL) != (running_var == NULL))
        return ct_graph_fail(g, CT_ERR_INVALID, "%s: give both running_mean and running_var or neither", op);
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    float *stats = ct_graph_alloc(g, (size_t)(2 * C) * sizeof(float));
    if (!y || !stats) return NULL;
    ct__bn_args a;
    memset(&a, 0, sizeof a);
    a.x = x->data, a.y = y->data;
    a.gamma = weight ? weight->data : NULL, a.beta = bias ? bias->data : NULL;
    a.mean = stats, a.invstd = stats + C;
    a.rmean = running_mean ? running_mean->data : NULL;
    a.rvar = running_var ? running_var->data : NULL;
    if (train && running_mean) a.run_mean = running_mean->data, a.run_var = running_var->data;
    a.momentum = momentum, a.eps = eps;
    a.n = x->shape[0], a.c = C, a.s = x->numel / (a.n * C);
    a.train = train, a.relu = relu;
    ct_parallel_for(ct__bn_pool(x->numel), C, 1, ct__bn_fwd_range, &a);
    ct_tensor *in[3] = {x, weight, bias};
    ct_node *node = ct_graph_record(g, op, ct__bn_backward, y, in, 3);
    if (node) {
        ct__bn_ctx *cx = ct_graph_alloc(g, sizeof *cx);
        if (!cx) return NULL;
        cx->mean = a.mean, cx->invstd = a.invstd, cx->eps = eps;
        cx->train = train, cx->relu = relu;
        node->ctx = cx;
    }
    return y;
}

ct_tensor *ct_batchnorm(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                        ct_tensor *running_mean, ct_tensor *running_var, float momentum, float eps) {
    return ct__batchnorm(g, "batchnorm", false, x, weight, bias, running_mean, running_var, momentum,
                         eps);
}

ct_tensor *ct_batchnorm_relu(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                             ct_tensor *running_mean, ct_tensor *running_var, float momentum,
                             float eps) {
    return ct__batchnorm(g, "batchnorm_relu", true, x, weight, bias, running_mean, running_var,
                         momentum, eps);
}

/* Batch-norm row kernels and channel loops: see ops/norm_kernels.h and,
 * for the method (shifted one-pass statistics, fused ReLU / residual,
 * reading two arrays per backward pass), ops/norm.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ops/norm_kernels.h"

#if defined(__AVX512F__)
/* Lanes [0, n) of a 16-lane mask (n <= 16). */
static inline __mmask16 ct__lanes(int64_t n) {
    return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}
#endif

/* Sum of s[0..n) - shift and of its squares, added to *sum and *sq. Floats
 * in 16 lanes within a row (at most a few thousand elements), double across
 * rows. Written with intrinsics: the compiler's own vectorisation of this
 * loop left scalar subtractions in the hot path (perf), and the masked tail
 * covers the 49- and 196-element rows of 7x7 and 14x14 maps. */
static void ct__sum2_shifted(const float *s, int64_t n, float shift, double *sum, double *sq) {
    int64_t j = 0;
    double ra = 0.0, rb = 0.0;
#if defined(__AVX512F__)
    const __m512 vs = _mm512_set1_ps(shift);
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    for (; j < n; j += 16) {
        __mmask16 m = ct__lanes(n - j);
        __m512 v = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, s + j), vs);
        a = _mm512_add_ps(a, v);
        b = _mm512_fmadd_ps(v, v, b);
    }
    ra = _mm512_reduce_add_ps(a), rb = _mm512_reduce_add_ps(b);
#endif
    for (; j < n; j++) {
        double v = (double)s[j] - shift;
        ra += v;
        rb += v * v;
    }
    *sum += ra;
    *sq += rb;
}

/* Backward pass 1 over one row: *sdy += sum(dy'), *sdx += sum(dy' * xhat),
 * with xhat = v*ka + kb and dy' = dy masked by the ReLU of forward,
 * recomputed from v exactly as forward did (v > 0 when v is y, else
 * v*scale + bias > 0 with a separate multiply and add). */
static void ct__bn_sums_row(const float *v, const float *dy, int64_t S, bool relu, bool from_y, float scale,
                            float bias, float ka, float kb, double *sdy, double *sdx) {
    int64_t j = 0;
    double rp = 0.0, rq = 0.0;
#if defined(__AVX512F__)
    const __m512 vka = _mm512_set1_ps(ka), vkb = _mm512_set1_ps(kb), vsc = _mm512_set1_ps(scale),
                 vbi = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
    __m512 p = z, q = z;
    for (; j < S; j += 16) {
        __mmask16 m = ct__lanes(S - j);
        __m512 x = _mm512_maskz_loadu_ps(m, v + j), d = _mm512_maskz_loadu_ps(m, dy + j);
        if (relu) {
            __m512 pre = from_y ? x : _mm512_add_ps(_mm512_mul_ps(x, vsc), vbi);
            d = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(pre, z, _CMP_GT_OQ), d);
        }
        p = _mm512_add_ps(p, d);
        q = _mm512_fmadd_ps(d, _mm512_fmadd_ps(x, vka, vkb), q);
    }
    rp = _mm512_reduce_add_ps(p), rq = _mm512_reduce_add_ps(q);
#endif
    for (; j < S; j++) {
        float d = dy[j], x = v[j];
        if (relu && !(from_y ? x > 0.0f : x * scale + bias > 0.0f)) d = 0.0f;
        rp += d;
        rq += (double)d * (x * ka + kb);
    }
    *sdy += rp;
    *sdx += rq;
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
    if ((((uintptr_t)ys) & 3) == 0) {
        const __m512 vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
        /* Masked head up to the first 64-byte boundary of ys, streamed
         * body, masked tail: rows of 49 or 196 floats start anywhere. */
        int64_t head = (int64_t)(((64 - ((uintptr_t)ys & 63)) & 63) / sizeof(float));
        while (j < S) {
            int64_t len = j == 0 && head ? (head < S ? head : S) : S - j;
            __mmask16 m = ct__lanes(len);
            __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xs + j), vs), vb);
            if (relu) v = _mm512_max_ps(v, z);
            if (len >= 16 && (((uintptr_t)(ys + j)) & 63) == 0) {
                _mm512_stream_ps(ys + j, v);
                j += 16;
            } else {
                _mm512_mask_storeu_ps(ys + j, m, v);
                j += len < 16 ? len : 16;
            }
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
    if ((((uintptr_t)dxs) & 3) == 0) {
        const __m512 vk0 = _mm512_set1_ps(k0), vc1 = _mm512_set1_ps(c1), vc0 = _mm512_set1_ps(c0);
        const __m512 vsc = _mm512_set1_ps(scale), vbi = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
        int64_t head = (int64_t)(((64 - ((uintptr_t)dxs & 63)) & 63) / sizeof(float));
        while (j < S) { /* masked head, aligned body, masked tail */
            int64_t len = j == 0 && head ? (head < S ? head : S) : S - j;
            __mmask16 m = ct__lanes(len);
            __m512 v = _mm512_maskz_loadu_ps(m, vs + j), d = _mm512_maskz_loadu_ps(m, dys + j);
            if (relu) {
                __mmask16 pos = _mm512_cmp_ps_mask(_mm512_add_ps(_mm512_mul_ps(v, vsc), vbi), z, _CMP_GT_OQ);
                d = _mm512_maskz_mov_ps(pos, d);
            }
            __m512 r = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(vk0, d), _mm512_mul_ps(vc1, v)), vc0);
            if (!fresh) r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dxs + j), r);
            if (len >= 16 && fresh && (((uintptr_t)(dxs + j)) & 63) == 0) {
                _mm512_stream_ps(dxs + j, r);
            } else {
                _mm512_mask_storeu_ps(dxs + j, m, r);
            }
            j += len < 16 ? len : 16;
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

/* ---- the residual join: y = relu(bn(x) + r) --------------------------- */

/* y = max((x*scale + bias) + r, 0) over one row: the float operations of
 * ct_batchnorm followed by ct_add_relu, so the fused op is bit-identical
 * to the pair. Plain stores: rows are short and usually unaligned. */
static void ct__bn_res_row(const float *xs, const float *rs, float *ys, int64_t S, float scale, float bias) {
    int64_t j = 0;
#if defined(__AVX512F__)
    const __m512 vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
    for (; j < S; j += 16) {
        __mmask16 m = ct__lanes(S - j);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xs + j), vs), vb);
        v = _mm512_max_ps(_mm512_add_ps(v, _mm512_maskz_loadu_ps(m, rs + j)), z);
        _mm512_mask_storeu_ps(ys + j, m, v);
    }
#endif
    for (; j < S; j++) {
        float v = xs[j] * scale + bias;
        v = v + rs[j];
        ys[j] = v > 0.0f ? v : 0.0f;
    }
}

/* Backward pass 1 of the residual join over one row: dy' = dy where y > 0
 * (y = relu(z) is positive exactly where z is); *sdy += sum(dy'),
 * *sdx += sum(dy' * xhat), xhat = x*ka + kb. */
static void ct__bn_res_sums_row(const float *x, const float *y, const float *dy, int64_t S, float ka, float kb,
                                double *sdy, double *sdx) {
    int64_t j = 0;
    double rp = 0.0, rq = 0.0;
#if defined(__AVX512F__)
    const __m512 vka = _mm512_set1_ps(ka), vkb = _mm512_set1_ps(kb), z = _mm512_setzero_ps();
    __m512 p = z, q = z;
    for (; j < S; j += 16) {
        __mmask16 m = ct__lanes(S - j);
        __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, y + j), z, _CMP_GT_OQ);
        __m512 d = _mm512_maskz_loadu_ps(pos, dy + j), v = _mm512_maskz_loadu_ps(pos, x + j);
        p = _mm512_add_ps(p, d);
        q = _mm512_fmadd_ps(d, _mm512_fmadd_ps(v, vka, vkb), q);
    }
    rp = _mm512_reduce_add_ps(p), rq = _mm512_reduce_add_ps(q);
#endif
    for (; j < S; j++) {
        float d = y[j] > 0.0f ? dy[j] : 0.0f;
        rp += d;
        rq += (double)d * (x[j] * ka + kb);
    }
    *sdy += rp;
    *sdx += rq;
}

/* Backward pass 2 of the residual join over one row: dx (=|+=) k0*dy' +
 * c1*x + c0 and, when dr is not NULL, dr (=|+=) dy'. */
static void ct__bn_res_dx_row(const float *x, const float *y, const float *dy, float *dx, float *dr, int64_t S,
                              float k0, float c1, float c0, bool dx_fresh, bool dr_fresh) {
    int64_t j = 0;
#if defined(__AVX512F__)
    const __m512 vk0 = _mm512_set1_ps(k0), vc1 = _mm512_set1_ps(c1), vc0 = _mm512_set1_ps(c0);
    const __m512 z = _mm512_setzero_ps();
    for (; j < S; j += 16) {
        __mmask16 m = ct__lanes(S - j);
        __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, y + j), z, _CMP_GT_OQ);
        __m512 d = _mm512_maskz_loadu_ps(pos, dy + j);
        if (dx) {
            __m512 v = _mm512_maskz_loadu_ps(m, x + j);
            __m512 r = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(vk0, d), _mm512_mul_ps(vc1, v)), vc0);
            if (!dx_fresh) r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + j), r);
            _mm512_mask_storeu_ps(dx + j, m, r);
        }
        if (dr) _mm512_mask_storeu_ps(dr + j, m, dr_fresh ? d : _mm512_add_ps(_mm512_maskz_loadu_ps(m, dr + j), d));
    }
#endif
    for (; j < S; j++) {
        float d = y[j] > 0.0f ? dy[j] : 0.0f;
        if (dx) {
            float r = k0 * d + c1 * x[j] + c0;
            dx[j] = dx_fresh ? r : dx[j] + r;
        }
        if (dr) dr[j] = dr_fresh ? d : dr[j] + d;
    }
}

void ct__bn_fwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__bn_args *a = ctx;
    const int64_t N = a->n, C = a->c, S = a->s, M = N * S;
    for (int64_t c = begin; c < end; c++) {
        float mean, invstd;
        if (a->stats_given) {
            mean = a->mean[c];
            invstd = a->invstd[c];
        } else if (a->train) {
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
        for (int64_t n = 0; n < N; n++) {
            const int64_t off = (n * C + c) * S;
            if (a->res) {
                ct__bn_res_row(a->x + off, a->res + off, a->y + off, S, scale, bias);
            } else {
                ct__bn_norm_row(a->x + off, a->y + off, S, scale, bias, a->relu);
            }
        }
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

/* Backward of the residual join for channel c: the ReLU mask comes from y
 * (which holds the residual, so xhat is read from x), and the second pass
 * writes the residual's gradient next to dx. */
static void ct__bn_res_bwd_channel(const ct__bn_args *a, int64_t c) {
    const int64_t N = a->n, C = a->c, S = a->s, M = N * S;
    const float mean = a->mean[c], invstd = a->invstd[c], g = a->gamma ? a->gamma[c] : 1.0f;
    const float ka = invstd, kb = -mean * invstd;
    double sdy = 0.0, sdx = 0.0;
    if (a->bwd_phase == 2) {
        sdy = a->sums[2 * c], sdx = a->sums[2 * c + 1];
    } else {
        for (int64_t n = 0; n < N; n++) {
            const int64_t off = (n * C + c) * S;
            ct__bn_res_sums_row(a->x + off, a->y + off, a->dy + off, S, ka, kb, &sdy, &sdx);
        }
        if (a->dgamma) a->dgamma[c] += (float)sdx;
        if (a->dbeta) a->dbeta[c] += (float)sdy;
        if (a->bwd_phase == 1) {
            a->sums[2 * c] = sdy, a->sums[2 * c + 1] = sdx;
            return;
        }
    }
    if (!a->dx && !a->dres) return;
    const double Mt = a->m_total > 0 ? a->m_total : (double)M;
    const float mdy = a->train ? (float)(sdy / Mt) : 0.0f;
    const float mdx = a->train ? (float)(sdx / Mt) : 0.0f;
    const float k0 = g * invstd, c1 = -k0 * mdx * ka, c0 = -k0 * mdy - k0 * mdx * kb;
    for (int64_t n = 0; n < N; n++) {
        const int64_t off = (n * C + c) * S;
        ct__bn_res_dx_row(a->x + off, a->y + off, a->dy + off, a->dx ? a->dx + off : NULL,
                          a->dres ? a->dres + off : NULL, S, k0, c1, c0, a->dx_fresh, a->dres_fresh);
    }
}

void ct__bn_bwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__bn_args *a = ctx;
    const int64_t N = a->n, C = a->c, S = a->s, M = N * S;
    const bool relu = a->relu;
    for (int64_t c = begin; c < end; c++) {
        if (a->res) {
            ct__bn_res_bwd_channel(a, c);
            continue;
        }
        const float mean = a->mean[c], invstd = a->invstd[c];
        const float g = a->gamma ? a->gamma[c] : 1.0f, b = a->beta ? a->beta[c] : 0.0f;
        const float scale = g * invstd, bias = b - mean * scale; /* as in forward */
        const bool from_y = ct__bn_xhat_from_y(g, b);
        /* Pass 1: sum(dy') and sum(dy' * xhat), dy' = dy masked by ReLU;
         * xhat = src * ka + kb. */
        const float *src = from_y ? a->y : a->x;
        const float ka = from_y ? 1.0f / g : invstd, kb = from_y ? -b / g : -mean * invstd;
        double sdy = 0.0, sdx = 0.0;
        if (a->bwd_phase == 2) {
            sdy = a->sums[2 * c], sdx = a->sums[2 * c + 1];
        } else {
            for (int64_t n = 0; n < N; n++) {
                const int64_t off = (n * C + c) * S;
                ct__bn_sums_row(src + off, a->dy + off, S, relu, from_y, scale, bias, ka, kb, &sdy, &sdx);
            }
            if (a->dgamma) a->dgamma[c] += (float)sdx;
            if (a->dbeta) a->dbeta[c] += (float)sdy;
            if (a->bwd_phase == 1) {
                a->sums[2 * c] = sdy, a->sums[2 * c + 1] = sdx;
                continue;
            }
        }
        if (!a->dx) continue;
        /* Pass 2: dx = k0 * (dy' - mean(dy') - xhat * mean(dy' xhat)) in
         * training mode; k0 * dy' with running statistics (k0 = g*invstd).
         * Written as dx = k0*dy' + c1*src + c0 with xhat = src*ka + kb. */
        const bool y2 = from_y && !relu;
        const float *src2 = y2 ? a->y : a->x;
        const float ka2 = y2 ? ka : invstd, kb2 = y2 ? kb : -mean * invstd;
        const double Mt = a->m_total > 0 ? a->m_total : (double)M;
        const float mdy = a->train ? (float)(sdy / Mt) : 0.0f;
        const float mdx = a->train ? (float)(sdx / Mt) : 0.0f;
        const float k0 = scale, c1 = -k0 * mdx * ka2, c0 = -k0 * mdy - k0 * mdx * kb2;
        for (int64_t n = 0; n < N; n++) {
            const int64_t off = (n * C + c) * S;
            ct__bn_dx_row(src2 + off, a->dy + off, a->dx + off, S, k0, c1, c0, relu, scale, bias, a->dx_fresh);
        }
    }
    ct__stream_fence();
}

/* Synchronised statistics: per channel the shifted sums around the
 * shift in sums[2C + c] (process 0's first element of the channel). */
void ct__bn_sync_sum_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    ct__bn_args *a = ctx;
    const int64_t N = a->n, C = a->c, S = a->s;
    for (int64_t c = begin; c < end; c++) {
        const float shift = (float)a->sums[2 * C + c];
        double sum = 0.0, sq = 0.0;
        for (int64_t n = 0; n < N; n++) ct__sum2_shifted(a->x + (n * C + c) * S, S, shift, &sum, &sq);
        a->sums[2 * c] = sum, a->sums[2 * c + 1] = sq;
    }
}

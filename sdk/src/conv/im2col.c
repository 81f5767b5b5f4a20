/* im2col / col2im kernels of the conv GEMM path: see conv/im2col.h. */
#include "conv/im2col.h"

#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Zero n floats. im2col zeroes short runs (one or two image rows) hundreds
 * of times per image; inline stores avoid a libc call for each. */
static inline void ct__zero(float *p, int64_t n) {
#if defined(__AVX512F__)
    const __m512 z = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(p + j, z);
    if (j < n) _mm512_mask_storeu_ps(p + j, (__mmask16)((1u << (n - j)) - 1u), z);
#else
    memset(p, 0, (size_t)n * sizeof(float));
#endif
}

/* "Same" stride-1 convolutions (2*pad = k-1, output size = input size):
 * each im2col row is the whole input plane shifted by (ky-pad, kx-pad), so
 * it is one contiguous copy plus zeroed border rows and columns, instead of
 * one short copy per output row. This is the shape of every 3x3 conv of a
 * ResNet body and of their transposed (data-gradient) convolutions. */
static void ct__im2col_same(const ct__conv_geom *q, const float *x, float *col, int64_t ld) {
    const int64_t H = q->h, W = q->w, HW = H * W;
    int64_t r = 0;
    for (int64_t c = 0; c < q->c; c++) {
        const float *xc = x + c * HW;
        for (int64_t ky = 0; ky < q->kh; ky++) {
            for (int64_t kx = 0; kx < q->kw; kx++, r++) {
                float *row = col + r * ld;
                const int64_t dy = ky - q->pad, dx = kx - q->pad, shift = dy * W + dx;
                int64_t oy0 = dy < 0 ? -dy : 0, oy1 = dy > 0 ? H - dy : H;
                if (oy1 < oy0) oy1 = oy0;
                int64_t a = oy0 * W, b = oy1 * W;
                int64_t a2 = a < -shift ? -shift : a, b2 = b > HW - shift ? HW - shift : b;
                /* Planes smaller than the kernel reach: a shift can pass the
                 * whole plane, so keep both ends inside [0, HW]. */
                if (a2 > HW) a2 = HW;
                if (b2 < a2) b2 = a2;
                ct__zero(row, a2);
                if (b2 > a2) memcpy(row + a2, xc + a2 + shift, (size_t)(b2 - a2) * sizeof(float));
                ct__zero(row + b2, HW - b2);
                /* Columns that wrapped around a row edge. */
                if (dx > 0) {
                    for (int64_t oy = oy0; oy < oy1; oy++)
                        for (int64_t ox = W - dx; ox < W; ox++) row[oy * W + ox] = 0.0f;
                } else if (dx < 0) {
                    for (int64_t oy = oy0; oy < oy1; oy++)
                        for (int64_t ox = 0; ox < -dx; ox++) row[oy * W + ox] = 0.0f;
                }
            }
        }
    }
}

/* Image x (C,H,W) -> columns col[r*ld + j] for r in [0,K), j in [0,P). */
void ct__im2col(const ct__conv_geom *q, const float *x, float *col, int64_t ld) {
    const int64_t H = q->h, W = q->w, HO = q->ho, WO = q->wo;
    const int s = q->stride, pad = q->pad;
    if (s == 1 && HO == H && WO == W && pad < q->kw && pad < q->kh) {
        ct__im2col_same(q, x, col, ld);
        return;
    }
    int64_t r = 0;
    for (int64_t c = 0; c < q->c; c++) {
        const float *xc = x + c * H * W;
        for (int64_t ky = 0; ky < q->kh; ky++) {
            for (int64_t kx = 0; kx < q->kw; kx++, r++) {
                float *row = col + r * ld;
                /* Valid output columns: 0 <= ox*s - pad + kx < W. */
                int64_t ox0 = pad - kx > 0 ? (pad - kx + s - 1) / s : 0;
                int64_t ox1 = (W - 1 + pad - kx) / s + 1;
                if (W - 1 + pad - kx < 0) ox1 = 0;
                if (ox1 > WO) ox1 = WO;
                if (ox0 > ox1) ox0 = ox1;
                for (int64_t oy = 0; oy < HO; oy++) {
                    float *dst = row + oy * WO;
                    int64_t iy = oy * s - pad + ky;
                    if (iy < 0 || iy >= H) {
                        ct__zero(dst, WO);
                        continue;
                    }
                    const float *src = xc + iy * W - pad + kx;
                    for (int64_t ox = 0; ox < ox0; ox++) dst[ox] = 0.0f;
                    if (s == 1) {
                        memcpy(dst + ox0, src + ox0, (size_t)(ox1 - ox0) * sizeof(float));
                    } else {
                        for (int64_t ox = ox0; ox < ox1; ox++) dst[ox] = src[ox * s];
                    }
                    for (int64_t ox = ox1; ox < WO; ox++) dst[ox] = 0.0f;
                }
            }
        }
    }
}

/* The adjoint of ct__im2col: dx (C,H,W) += scatter of col. */
void ct__col2im(const ct__conv_geom *q, const float *col, int64_t ld, float *dx) {
    const int64_t H = q->h, W = q->w, HO = q->ho, WO = q->wo;
    const int s = q->stride, pad = q->pad;
    int64_t r = 0;
    for (int64_t c = 0; c < q->c; c++) {
        float *xc = dx + c * H * W;
        for (int64_t ky = 0; ky < q->kh; ky++) {
            for (int64_t kx = 0; kx < q->kw; kx++, r++) {
                const float *row = col + r * ld;
                int64_t ox0 = pad - kx > 0 ? (pad - kx + s - 1) / s : 0;
                int64_t ox1 = (W - 1 + pad - kx) / s + 1;
                if (W - 1 + pad - kx < 0) ox1 = 0;
                if (ox1 > WO) ox1 = WO;
                if (ox0 > ox1) ox0 = ox1;
                for (int64_t oy = 0; oy < HO; oy++) {
                    int64_t iy = oy * s - pad + ky;
                    if (iy < 0 || iy >= H) continue;
                    const float *src = row + oy * WO;
                    float *dst = xc + iy * W - pad + kx;
                    if (s == 1) {
                        for (int64_t ox = ox0; ox < ox1; ox++) dst[ox] += src[ox];
                    } else {
                        for (int64_t ox = ox0; ox < ox1; ox++) dst[ox * s] += src[ox];
                    }
                }
            }
        }
    }
}

/* Columns of one image, via its phase planes for stride 2 (ph: scratch of
 * q->ph floats). */
void ct__im2col_img(const ct__conv_geom *q, const float *x, float *col, int64_t ld, float *ph) {
    if (q->s2 && ct__s2_pointwise(&q->s2g)) {
        ct__s2_pointwise_im2col(&q->s2g, x, col, ld);
    } else if (q->s2) {
        ct__s2_split(&q->s2g, x, ph);
        ct__s2_im2col(&q->s2g, ph, col, ld);
    } else {
        ct__im2col(q, x, col, ld);
    }
}

void ct__col2im_img(const ct__conv_geom *q, const float *col, int64_t ld, float *dx, bool fresh, float *ph) {
    if (q->s2 && ct__s2_pointwise(&q->s2g)) {
        ct__s2_pointwise_col2im(&q->s2g, col, ld, dx, fresh);
    } else if (q->s2) {
        memset(ph, 0, (size_t)q->ph * sizeof(float));
        ct__s2_col2im(&q->s2g, col, ld, ph);
        ct__s2_merge(&q->s2g, ph, dx, fresh);
    } else {
        if (fresh) memset(dx, 0, (size_t)(q->c * q->h * q->w) * sizeof(float));
        ct__col2im(q, col, ld, dx);
    }
}

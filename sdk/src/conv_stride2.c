/* Stride-2 convolutions through phase planes: see conv_stride2.h. */
#include "conv_stride2.h"

#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

bool ct__s2_geom_make(ct__s2_geom *g, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pad,
                      int64_t ho, int64_t wo) {
    g->c = c, g->h = h, g->w = w, g->kh = kh, g->kw = kw, g->pad = pad, g->ho = ho, g->wo = wo;
    g->hp = (h + 1) / 2, g->wp = (w + 1) / 2;
    return wo == g->wp && ho <= g->hp && ho > 0;
}

int64_t ct__s2_phase_floats(const ct__s2_geom *g) { return g->c * 4 * g->hp * g->wp; }

/* Phase plane (a, b) of channel c. */
static inline const float *ct__plane(const ct__s2_geom *g, const float *ph, int64_t c, int64_t a, int64_t b) {
    return ph + ((c * 2 + a) * 2 + b) * g->hp * g->wp;
}

#if defined(__AVX512F__)
static inline __mmask16 ct__s2_lanes(int64_t n) {
    return (__mmask16)(n <= 0 ? 0u : n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}
#endif

/* even[i] = src[2i] (i < ne), odd[i] = src[2i+1] (i < no), src has n floats. */
static void ct__deinterleave(const float *src, int64_t n, float *even, int64_t ne, float *odd, int64_t no) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (; i < ne; i += 16) {
        int64_t rem = n - 2 * i; /* source floats from 2i on */
        __m512 lo = _mm512_maskz_loadu_ps(ct__s2_lanes(rem), src + 2 * i);
        __m512 hi = _mm512_maskz_loadu_ps(ct__s2_lanes(rem - 16), src + 2 * i + 16);
        _mm512_mask_storeu_ps(even + i, ct__s2_lanes(ne - i), _mm512_permutex2var_ps(lo, ie, hi));
        _mm512_mask_storeu_ps(odd + i, ct__s2_lanes(no - i), _mm512_permutex2var_ps(lo, io, hi));
    }
#else
    for (; i < ne; i++) even[i] = src[2 * i];
    for (i = 0; i < no; i++) odd[i] = src[2 * i + 1];
#endif
}

/* dst[2i] (+)= even[i] (i < ne), dst[2i+1] (+)= odd[i] (i < no), n = ne + no. */
static void ct__interleave(const float *even, int64_t ne, const float *odd, int64_t no, float *dst, int64_t n,
                           bool fresh) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (; i < ne; i += 16) {
        __m512 e = _mm512_maskz_loadu_ps(ct__s2_lanes(ne - i), even + i);
        __m512 o = _mm512_maskz_loadu_ps(ct__s2_lanes(no - i), odd + i);
        __mmask16 ml = ct__s2_lanes(n - 2 * i), mh = ct__s2_lanes(n - 2 * i - 16);
        __m512 lo = _mm512_permutex2var_ps(e, il, o), hi = _mm512_permutex2var_ps(e, ih, o);
        if (!fresh) {
            lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(ml, dst + 2 * i));
            hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mh, dst + 2 * i + 16));
        }
        _mm512_mask_storeu_ps(dst + 2 * i, ml, lo);
        _mm512_mask_storeu_ps(dst + 2 * i + 16, mh, hi);
    }
#else
    (void)n;
    for (; i < ne; i++) dst[2 * i] = (fresh ? 0.0f : dst[2 * i]) + even[i];
    for (i = 0; i < no; i++) dst[2 * i + 1] = (fresh ? 0.0f : dst[2 * i + 1]) + odd[i];
#endif
}

void ct__s2_split(const ct__s2_geom *g, const float *x, float *ph) {
    const int64_t hp = g->hp, wp = g->wp, no = g->w / 2;
    for (int64_t c = 0; c < g->c; c++) {
        for (int64_t iy = 0; iy < g->h; iy++) {
            const int64_t a = iy & 1, py = iy >> 1;
            float *even = (float *)ct__plane(g, ph, c, a, 0) + py * wp;
            float *odd = (float *)ct__plane(g, ph, c, a, 1) + py * wp;
            ct__deinterleave(x + (c * g->h + iy) * g->w, g->w, even, wp, odd, no);
            if (no < wp) odd[wp - 1] = 0.0f; /* odd width: no pixel there */
        }
        if (g->h & 1) /* odd height: the odd-row phases lack their last row */
            for (int64_t b = 0; b < 2; b++)
                memset((float *)ct__plane(g, ph, c, 1, b) + (hp - 1) * wp, 0, (size_t)wp * sizeof(float));
    }
}

/* Where tap t = k - pad of a stride-2 kernel reads: phase t mod 2, shifted
 * by floor(t / 2) phase pixels. */
static inline void ct__tap(int64_t t, int64_t *phase, int64_t *shift) {
    *phase = t & 1;
    *shift = (t - *phase) / 2;
}

/* Valid output rows [*oy0, *oy1) of a tap shifted by sy rows. */
static inline void ct__rows(const ct__s2_geom *g, int64_t sy, int64_t *oy0, int64_t *oy1) {
    *oy0 = sy < 0 ? -sy : 0;
    *oy1 = g->hp - sy < g->ho ? g->hp - sy : g->ho;
    if (*oy1 < *oy0) *oy1 = *oy0;
}

bool ct__s2_pointwise(const ct__s2_geom *g) { return g->kh == 1 && g->kw == 1 && g->pad == 0; }

void ct__s2_pointwise_im2col(const ct__s2_geom *g, const float *x, float *col, int64_t ld) {
    const int64_t wp = g->wp, no = g->w / 2;
    float odd[64]; /* discarded; rows wider than 128 take the scalar loop */
    for (int64_t c = 0; c < g->c; c++) {
        float *row = col + c * ld;
        for (int64_t oy = 0; oy < g->ho; oy++) {
            const float *src = x + (c * g->h + 2 * oy) * g->w;
            if (no <= 64) {
                ct__deinterleave(src, g->w, row + oy * wp, wp, odd, no);
            } else {
                for (int64_t ox = 0; ox < wp; ox++) row[oy * wp + ox] = src[2 * ox];
            }
        }
    }
}

void ct__s2_pointwise_col2im(const ct__s2_geom *g, const float *col, int64_t ld, float *dx, bool fresh) {
    const int64_t wp = g->wp, no = g->w / 2;
    float zero[64] = {0};
    for (int64_t c = 0; c < g->c; c++) {
        const float *row = col + c * ld;
        for (int64_t iy = 0; iy < g->h; iy++) {
            float *dst = dx + (c * g->h + iy) * g->w;
            if ((iy & 1) || iy / 2 >= g->ho) { /* no output reads this input row */
                if (fresh) memset(dst, 0, (size_t)g->w * sizeof(float));
            } else if (no <= 64) {
                ct__interleave(row + (iy / 2) * wp, wp, zero, no, dst, g->w, fresh);
            } else {
                for (int64_t ix = 0; ix < g->w; ix++)
                    dst[ix] = (fresh ? 0.0f : dst[ix]) + ((ix & 1) ? 0.0f : row[(iy / 2) * wp + ix / 2]);
            }
        }
    }
}

void ct__s2_im2col(const ct__s2_geom *g, const float *ph, float *col, int64_t ld) {
    const int64_t wp = g->wp, plane = g->hp * wp, out = g->ho * wp;
    int64_t r = 0;
    for (int64_t c = 0; c < g->c; c++) {
        for (int64_t ky = 0; ky < g->kh; ky++) {
            int64_t a, sy, oy0, oy1;
            ct__tap(ky - g->pad, &a, &sy);
            ct__rows(g, sy, &oy0, &oy1);
            for (int64_t kx = 0; kx < g->kw; kx++, r++) {
                int64_t b, sx;
                ct__tap(kx - g->pad, &b, &sx);
                const float *src = ct__plane(g, ph, c, a, b);
                float *row = col + r * ld;
                /* One shifted copy of the plane, source kept inside it... */
                const int64_t shift = sy * wp + sx;
                int64_t a2 = oy0 * wp > -shift ? oy0 * wp : -shift;
                int64_t b2 = oy1 * wp < plane - shift ? oy1 * wp : plane - shift;
                if (a2 > out) a2 = out;
                if (b2 < a2) b2 = a2;
                memset(row, 0, (size_t)a2 * sizeof(float));
                memcpy(row + a2, src + a2 + shift, (size_t)(b2 - a2) * sizeof(float));
                memset(row + b2, 0, (size_t)(out - b2) * sizeof(float));
                /* ...then the columns that wrapped around a row edge. */
                for (int64_t oy = oy0; oy < oy1 && sx != 0; oy++) {
                    int64_t x0 = sx > 0 ? wp - sx : 0, x1 = sx > 0 ? wp : -sx;
                    if (x0 < 0) x0 = 0;
                    if (x1 > wp) x1 = wp;
                    for (int64_t ox = x0; ox < x1; ox++) row[oy * wp + ox] = 0.0f;
                }
            }
        }
    }
}

/* d[i] += s[i], i < n (distinct buffers). */
static inline void ct__add(float *restrict d, const float *restrict s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
}

void ct__s2_col2im(const ct__s2_geom *g, const float *col, int64_t ld, float *dph) {
    const int64_t wp = g->wp;
    int64_t r = 0;
    for (int64_t c = 0; c < g->c; c++) {
        for (int64_t ky = 0; ky < g->kh; ky++) {
            int64_t a, sy, oy0, oy1;
            ct__tap(ky - g->pad, &a, &sy);
            ct__rows(g, sy, &oy0, &oy1);
            for (int64_t kx = 0; kx < g->kw; kx++, r++) {
                int64_t b, sx;
                ct__tap(kx - g->pad, &b, &sx);
                float *dst = (float *)ct__plane(g, dph, c, a, b);
                const float *row = col + r * ld;
                if (sx == 0) { /* rows oy0..oy1 are one contiguous run */
                    ct__add(dst + (oy0 + sy) * wp, row + oy0 * wp, (oy1 - oy0) * wp);
                    continue;
                }
                int64_t x0 = sx < 0 ? -sx : 0, x1 = wp - sx < wp ? wp - sx : wp;
                if (x1 <= x0) continue;
                for (int64_t oy = oy0; oy < oy1; oy++)
                    ct__add(dst + (oy + sy) * wp + x0 + sx, row + oy * wp + x0, x1 - x0);
            }
        }
    }
}

void ct__s2_merge(const ct__s2_geom *g, const float *dph, float *dx, bool fresh) {
    const int64_t wp = g->wp, no = g->w / 2;
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t iy = 0; iy < g->h; iy++) {
            const int64_t a = iy & 1, py = iy >> 1;
            ct__interleave(ct__plane(g, dph, c, a, 0) + py * wp, wp, ct__plane(g, dph, c, a, 1) + py * wp, no,
                           dx + (c * g->h + iy) * g->w, g->w, fresh);
        }
}

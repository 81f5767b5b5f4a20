/* Stride-2 convolutions through phase planes: see conv_stride2.h. */
#include "conv/stride2.h"

#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Phase plane (a, b) of channel c. */
static inline const float *ct__plane(const ct__s2_geom *g, const float *ph, int64_t c, int64_t a, int64_t b) {
    return ph + ((c * 2 + a) * 2 + b) * g->hp * g->wp;
}

#if defined(__AVX512F__)
static inline __mmask16 ct__s2_lanes(int64_t n) {
    return (__mmask16)(n <= 0 ? 0u : n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}
#endif

/* even[i] = src[2i] (i < ne), odd[i] = src[2i+1] (i < no; odd may be NULL:
 * odd columns dropped), src has n floats. */
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
        if (odd) _mm512_mask_storeu_ps(odd + i, ct__s2_lanes(no - i), _mm512_permutex2var_ps(lo, io, hi));
    }
#else
    (void)n; /* the vector loop's bound */
    for (; i < ne; i++) even[i] = src[2 * i];
    for (i = 0; odd && i < no; i++) odd[i] = src[2 * i + 1];
#endif
}

/* dst[2i] (+)= even[i] (i < ne), dst[2i+1] (+)= odd[i] (i < no; odd NULL:
 * zeros), n = ne + no. */
static void ct__interleave(const float *even, int64_t ne, const float *odd, int64_t no, float *dst, int64_t n,
                           bool fresh) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (; i < ne; i += 16) {
        __m512 e = _mm512_maskz_loadu_ps(ct__s2_lanes(ne - i), even + i);
        __m512 o = odd ? _mm512_maskz_loadu_ps(ct__s2_lanes(no - i), odd + i) : _mm512_setzero_ps();
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
    for (i = 0; i < no; i++) dst[2 * i + 1] = (fresh ? 0.0f : dst[2 * i + 1]) + (odd ? odd[i] : 0.0f);
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

/* Where im2col row r (channel c, tap ky, kx) reads: tap t = k - pad reads
 * phase t mod 2 shifted by floor(t / 2) phase pixels, in each direction;
 * output rows [oy0, oy1) fall inside the phase plane. */
typedef struct ct__s2_tap {
    int64_t plane;   /* offset of the phase plane in the image's planes */
    int64_t sy, sx;  /* shift in phase pixels */
    int64_t oy0, oy1;
} ct__s2_tap;

static ct__s2_tap ct__s2_tap_at(const ct__s2_geom *g, int64_t r) {
    const int64_t kk = g->kh * g->kw, c = r / kk, ty = (r % kk) / g->kw - g->pad, tx = r % g->kw - g->pad;
    const int64_t a = ty & 1, b = tx & 1;
    ct__s2_tap t;
    t.plane = ((c * 2 + a) * 2 + b) * g->hp * g->wp;
    t.sy = (ty - a) / 2, t.sx = (tx - b) / 2;
    t.oy0 = t.sy < 0 ? -t.sy : 0;
    t.oy1 = g->hp - t.sy < g->ho ? g->hp - t.sy : g->ho;
    if (t.oy1 < t.oy0) t.oy1 = t.oy0;
    return t;
}

void ct__s2_pointwise_im2col(const ct__s2_geom *g, const float *x, float *col, int64_t ld) {
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t oy = 0; oy < g->ho; oy++)
            ct__deinterleave(x + (c * g->h + 2 * oy) * g->w, g->w, col + c * ld + oy * g->wp, g->wp, NULL, 0);
}

void ct__s2_pointwise_col2im(const ct__s2_geom *g, const float *col, int64_t ld, float *dx, bool fresh) {
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t iy = 0; iy < g->h; iy++) {
            float *dst = dx + (c * g->h + iy) * g->w;
            if ((iy & 1) || iy / 2 >= g->ho) { /* no output reads this input row */
                if (fresh) memset(dst, 0, (size_t)g->w * sizeof(float));
            } else {
                ct__interleave(col + c * ld + (iy / 2) * g->wp, g->wp, NULL, g->w / 2, dst, g->w, fresh);
            }
        }
}

void ct__s2_im2col(const ct__s2_geom *g, const float *ph, float *col, int64_t ld) {
    const int64_t wp = g->wp, plane = g->hp * wp, out = g->ho * wp, rows = g->c * g->kh * g->kw;
    for (int64_t r = 0; r < rows; r++) {
        const ct__s2_tap t = ct__s2_tap_at(g, r);
        const float *src = ph + t.plane;
        float *row = col + r * ld;
        /* One shifted copy of the plane, source kept inside it... */
        const int64_t shift = t.sy * wp + t.sx;
        int64_t a2 = t.oy0 * wp > -shift ? t.oy0 * wp : -shift;
        int64_t b2 = t.oy1 * wp < plane - shift ? t.oy1 * wp : plane - shift;
        if (a2 > out) a2 = out;
        if (b2 < a2) b2 = a2;
        memset(row, 0, (size_t)a2 * sizeof(float));
        memcpy(row + a2, src + a2 + shift, (size_t)(b2 - a2) * sizeof(float));
        memset(row + b2, 0, (size_t)(out - b2) * sizeof(float));
        /* ...then the columns that wrapped around a row edge. */
        int64_t x0 = t.sx > 0 ? wp - t.sx : 0, x1 = t.sx > 0 ? wp : -t.sx;
        if (x0 < 0) x0 = 0;
        if (x1 > wp) x1 = wp;
        for (int64_t oy = t.oy0; oy < t.oy1 && t.sx != 0; oy++)
            for (int64_t ox = x0; ox < x1; ox++) row[oy * wp + ox] = 0.0f;
    }
}

/* d[i] += s[i], i < n (distinct buffers). */
static inline void ct__add(float *restrict d, const float *restrict s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
}

void ct__s2_col2im(const ct__s2_geom *g, const float *col, int64_t ld, float *dph) {
    const int64_t wp = g->wp, rows = g->c * g->kh * g->kw;
    for (int64_t r = 0; r < rows; r++) {
        const ct__s2_tap t = ct__s2_tap_at(g, r);
        float *dst = dph + t.plane;
        const float *row = col + r * ld;
        if (t.sx == 0) { /* rows oy0..oy1 are one contiguous run */
            ct__add(dst + (t.oy0 + t.sy) * wp, row + t.oy0 * wp, (t.oy1 - t.oy0) * wp);
            continue;
        }
        int64_t x0 = t.sx < 0 ? -t.sx : 0, x1 = wp - t.sx < wp ? wp - t.sx : wp;
        for (int64_t oy = t.oy0; oy < t.oy1 && x1 > x0; oy++)
            ct__add(dst + (oy + t.sy) * wp + x0 + t.sx, row + oy * wp + x0, x1 - x0);
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

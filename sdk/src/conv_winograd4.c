/* Winograd F(4x4,3x3) tile transforms (Lavin & Gray 2016), interpolation
 * points 0, +-1, +-2, inf. The driver (chunking, GEMMs, threads, weight
 * gradient slots) is conv_winograd.c's; this file only maps planes to and
 * from the 36 transform positions xi = 6*i + j.
 *
 *   B^T = [4  0 -5  0 1 0]   G = [ 1/4     0    0 ]   A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6 ]         [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6 ]         [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]       [1/24 1/12  1/6 ]         [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]       [1/24 -1/12 1/6 ]
 *         [0  4  0 -5 0 1]       [   0     0    1 ]
 *
 * A 4x4 output tile reads a 6x6 input tile; neighbouring input tiles
 * overlap by 2 rows / columns. The 1-D transforms below are shared by
 * the scalar per-tile code (any width) and, written again with AVX-512
 * intrinsics, by the tile-row code for maps up to 32 wide: there one
 * 16-lane vector holds one value per tile of a tile row (tw <= 8), and an
 * image row is split into its 4 column phases (col 4*tx + p in lane tx)
 * by permutes, the F(4,3) analogue of F(2,3)'s even / odd split. */
#include "conv_winograd4.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <string.h>

/* ---- 1-D transforms (scalar) -------------------------------------------- */

/* o = B^T d (6 -> 6). */
static inline void ct__wg4_bt(const float *d, int64_t ds, float *o, int64_t os) {
    float d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
    float t0 = d4 - 4.0f * d2, t1 = d3 - 4.0f * d1, t2 = d4 - d2, t3 = 2.0f * (d3 - d1);
    o[0] = 4.0f * d0 - 5.0f * d2 + d4;
    o[os] = t0 + t1;
    o[2 * os] = t0 - t1;
    o[3 * os] = t2 + t3;
    o[4 * os] = t2 - t3;
    o[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* o = B d (6 -> 6), the adjoint of the above. */
static inline void ct__wg4_b(const float *d, int64_t ds, float *o, int64_t os) {
    float d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
    float p = d1 + d2, mq = d2 - d1, r = d3 + d4, s = d4 - d3;
    o[0] = 4.0f * d0;
    o[os] = 4.0f * (mq + d5) + 2.0f * s;
    o[2 * os] = -(5.0f * d0 + (4.0f * p + r));
    o[3 * os] = -(5.0f * d5 + (2.0f * s + mq));
    o[4 * os] = d0 + p + r;
    o[5 * os] = d5;
}

/* y = A^T m (6 -> 4). */
static inline void ct__wg4_at(const float *m, int64_t ms, float *y, int64_t ys) {
    float a = m[ms] + m[2 * ms], b = m[ms] - m[2 * ms], c = m[3 * ms] + m[4 * ms], d = m[3 * ms] - m[4 * ms];
    y[0] = m[0] + a + c;
    y[ys] = b + 2.0f * d;
    y[2 * ys] = a + 4.0f * c;
    y[3 * ys] = b + 8.0f * d + m[5 * ms];
}

/* m = A y (4 -> 6), the adjoint of the above. */
static inline void ct__wg4_a(const float *y, int64_t ys, float *m, int64_t ms) {
    float y0 = y[0], y1 = y[ys], y2 = y[2 * ys], y3 = y[3 * ys];
    float a = y0 + y2, b = y1 + y3, c = y0 + 4.0f * y2, d = 2.0f * (y1 + 4.0f * y3);
    m[0] = y0;
    m[ms] = a + b;
    m[2 * ms] = a - b;
    m[3 * ms] = c + d;
    m[4 * ms] = c - d;
    m[5 * ms] = y3;
}

/* o = G g (3 -> 6). */
static inline void ct__wg4_g(float g0, float g1, float g2, float *o, int64_t os) {
    float s = g0 + g2, t = g0 * (1.0f / 24) + g2 * (1.0f / 6), u = g1 * (1.0f / 12);
    o[0] = 0.25f * g0;
    o[os] = -(s + g1) * (1.0f / 6);
    o[2 * os] = -(s - g1) * (1.0f / 6);
    o[3 * os] = t + u;
    o[4 * os] = t - u;
    o[5 * os] = g2;
}

/* g = G^T u (6 -> 3). */
static inline void ct__wg4_gt(const float *u, int64_t us, float *g, int64_t gs) {
    float p = u[us] + u[2 * us], m = u[2 * us] - u[us], r = u[3 * us] + u[4 * us], s = u[3 * us] - u[4 * us];
    g[0] = 0.25f * u[0] - p * (1.0f / 6) + r * (1.0f / 24);
    g[gs] = m * (1.0f / 6) + s * (1.0f / 12);
    g[2 * gs] = (r - p) * (1.0f / 6) + u[5 * us];
}

/* ---- weights -------------------------------------------------------------- */

void ct__wg4_weights(const ct__wg *q, const float *w, float *u) {
    const int64_t O = q->o, C = q->c, KC = O * C;
    for (int64_t k = 0; k < O; k++)
        for (int64_t c = 0; c < C; c++) {
            const float *g = w + (k * C + c) * 9;
            float t[6][3]; /* G g */
            for (int j = 0; j < 3; j++) ct__wg4_g(g[j], g[3 + j], g[6 + j], &t[0][j], 3);
            float *dst = u + k * C + c;
            for (int i = 0; i < 6; i++) ct__wg4_g(t[i][0], t[i][1], t[i][2], dst + i * 6 * KC, KC);
        }
}

void ct__wg4_weights_grad(const ct__wg *q, const float *du, float *dw) {
    const int64_t O = q->o, C = q->c, KC = O * C;
    for (int64_t k = 0; k < O; k++)
        for (int64_t c = 0; c < C; c++) {
            const float *s = du + k * C + c;
            float t[6][3]; /* dU G (rows i, cols j) */
            for (int i = 0; i < 6; i++) ct__wg4_gt(s + i * 6 * KC, KC, t[i], 1);
            float r[3][3]; /* G^T (dU G) */
            for (int j = 0; j < 3; j++) ct__wg4_gt(&t[0][j], 3, &r[0][j], 3);
            float *g = dw + (k * C + c) * 9;
            for (int i = 0; i < 9; i++) g[i] += r[i / 3][i % 3];
        }
}

/* ---- scalar plane transforms (any width) ------------------------------- */

static void ct__wg4_in_plane(const ct__wg *q, const float *x, float *pad, float *v, int64_t vs) {
    const int64_t H = q->h, W = q->w, WP = q->wp, TW = q->tw;
    for (int64_t y = 0; y < H; y++) memcpy(pad + (y + 1) * WP + 1, x + y * W, (size_t)W * sizeof(float));
    for (int64_t ty = 0; ty < q->th; ty++)
        for (int64_t tx = 0; tx < TW; tx++) {
            const float *p = pad + 4 * ty * WP + 4 * tx;
            float t[6][6]; /* B^T d */
            for (int j = 0; j < 6; j++) ct__wg4_bt(p + j, WP, &t[0][j], 6);
            float *vt = v + ty * TW + tx;
            for (int i = 0; i < 6; i++) ct__wg4_bt(t[i], 1, vt + i * 6 * vs, vs);
        }
}

static void ct__wg4_out_plane(const ct__wg *q, const float *m, int64_t ms, float *buf, float *y, float bias) {
    const int64_t TW = q->tw, OW = 4 * TW, H = q->h, W = q->w;
    for (int64_t ty = 0; ty < q->th; ty++)
        for (int64_t tx = 0; tx < TW; tx++) {
            const float *mt = m + ty * TW + tx;
            float s[4][6]; /* A^T M */
            for (int j = 0; j < 6; j++) ct__wg4_at(mt + j * ms, 6 * ms, &s[0][j], 6);
            float *o = buf + 4 * ty * OW + 4 * tx;
            for (int i = 0; i < 4; i++) ct__wg4_at(s[i], 1, o + i * OW, 1);
        }
    for (int64_t r = 0; r < H; r++)
        for (int64_t j = 0; j < W; j++) y[r * W + j] = buf[r * OW + j] + bias;
}

static void ct__wg4_dout_plane(const ct__wg *q, const float *dy, float *buf, float *dm, int64_t ms) {
    const int64_t TW = q->tw, OW = 4 * TW, H = q->h, W = q->w;
    for (int64_t r = 0; r < H; r++) memcpy(buf + r * OW, dy + r * W, (size_t)W * sizeof(float));
    for (int64_t ty = 0; ty < q->th; ty++)
        for (int64_t tx = 0; tx < TW; tx++) {
            const float *g = buf + 4 * ty * OW + 4 * tx;
            float t[6][4]; /* A dY */
            for (int j = 0; j < 4; j++) ct__wg4_a(g + j, OW, &t[0][j], 4);
            float *d = dm + ty * TW + tx;
            for (int k = 0; k < 6; k++) ct__wg4_a(t[k], 1, d + k * 6 * ms, ms);
        }
}

static void ct__wg4_din_plane(const ct__wg *q, const float *dv, int64_t vs, float *pad, float *dx, bool fresh) {
    const int64_t H = q->h, W = q->w, WP = q->wp, TW = q->tw;
    memset(pad, 0, (size_t)(q->hp * WP) * sizeof(float));
    for (int64_t ty = 0; ty < q->th; ty++)
        for (int64_t tx = 0; tx < TW; tx++) {
            const float *vt = dv + ty * TW + tx;
            float e[6][6]; /* B dV */
            for (int j = 0; j < 6; j++) ct__wg4_b(vt + j * vs, 6 * vs, &e[0][j], 6);
            float *p = pad + 4 * ty * WP + 4 * tx;
            for (int i = 0; i < 6; i++) {
                float r[6];
                ct__wg4_b(e[i], 1, r, 1);
                for (int l = 0; l < 6; l++) p[i * WP + l] += r[l];
            }
        }
    for (int64_t y = 0; y < H; y++) {
        const float *src = pad + (y + 1) * WP + 1;
        float *dst = dx + y * W;
        if (fresh) {
            memcpy(dst, src, (size_t)W * sizeof(float));
        } else {
            for (int64_t j = 0; j < W; j++) dst[j] += src[j];
        }
    }
}

/* ---- AVX-512 tile-row transforms (maps <= 32 wide) ---------------------- */
#if defined(__AVX512F__)
#define CT__WG4_SIMD_MAX_W 32

#define CT__WG4_V(x) _mm512_set1_ps(x)

static inline void ct__wg4_btv(const __m512 d[6], __m512 o[6]) {
    __m512 t0 = _mm512_fnmadd_ps(CT__WG4_V(4), d[2], d[4]), t1 = _mm512_fnmadd_ps(CT__WG4_V(4), d[1], d[3]);
    __m512 t2 = _mm512_sub_ps(d[4], d[2]), t3 = _mm512_mul_ps(CT__WG4_V(2), _mm512_sub_ps(d[3], d[1]));
    o[0] = _mm512_fmadd_ps(CT__WG4_V(4), d[0], _mm512_fnmadd_ps(CT__WG4_V(5), d[2], d[4]));
    o[1] = _mm512_add_ps(t0, t1);
    o[2] = _mm512_sub_ps(t0, t1);
    o[3] = _mm512_add_ps(t2, t3);
    o[4] = _mm512_sub_ps(t2, t3);
    o[5] = _mm512_fmadd_ps(CT__WG4_V(4), d[1], _mm512_fnmadd_ps(CT__WG4_V(5), d[3], d[5]));
}

static inline void ct__wg4_bv(const __m512 d[6], __m512 o[6]) {
    __m512 p = _mm512_add_ps(d[1], d[2]), mq = _mm512_sub_ps(d[2], d[1]);
    __m512 r = _mm512_add_ps(d[3], d[4]), s = _mm512_sub_ps(d[4], d[3]);
    o[0] = _mm512_mul_ps(CT__WG4_V(4), d[0]);
    o[1] = _mm512_fmadd_ps(CT__WG4_V(4), _mm512_add_ps(mq, d[5]), _mm512_add_ps(s, s));
    o[2] = _mm512_fnmsub_ps(CT__WG4_V(5), d[0], _mm512_fmadd_ps(CT__WG4_V(4), p, r));
    o[3] = _mm512_fnmsub_ps(CT__WG4_V(5), d[5], _mm512_fmadd_ps(CT__WG4_V(2), s, mq));
    o[4] = _mm512_add_ps(_mm512_add_ps(d[0], p), r);
    o[5] = d[5];
}

static inline void ct__wg4_atv(const __m512 m[6], __m512 y[4]) {
    __m512 a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]);
    __m512 c = _mm512_add_ps(m[3], m[4]), d = _mm512_sub_ps(m[3], m[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
    y[1] = _mm512_fmadd_ps(CT__WG4_V(2), d, b);
    y[2] = _mm512_fmadd_ps(CT__WG4_V(4), c, a);
    y[3] = _mm512_add_ps(_mm512_fmadd_ps(CT__WG4_V(8), d, b), m[5]);
}

static inline void ct__wg4_av(const __m512 y[4], __m512 m[6]) {
    __m512 a = _mm512_add_ps(y[0], y[2]), b = _mm512_add_ps(y[1], y[3]);
    __m512 c = _mm512_fmadd_ps(CT__WG4_V(4), y[2], y[0]);
    __m512 d = _mm512_mul_ps(CT__WG4_V(2), _mm512_fmadd_ps(CT__WG4_V(4), y[3], y[1]));
    m[0] = y[0];
    m[1] = _mm512_add_ps(a, b);
    m[2] = _mm512_sub_ps(a, b);
    m[3] = _mm512_add_ps(c, d);
    m[4] = _mm512_sub_ps(c, d);
    m[5] = y[3];
}

/* v[i+1] (lane 15: 0) and v[i-1] (lane 0: 0). */
static inline __m512 ct__wg4_next(__m512 v) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_setzero_si512(), _mm512_castps_si512(v), 1));
}
static inline __m512 ct__wg4_prev(__m512 v) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), _mm512_setzero_si512(), 15));
}

/* Permute indices into an image row held as two vectors (columns 0-15,
 * 16-31); only the low 5 bits count. Column tap k of tile tx in padded
 * coordinates is image column 4tx+k-1. */
#define CT__WG4_L(f)                                                                                                   \
    { f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12), f(13), f(14), f(15) }
#define CT__WG4_TAP0(l) ((4 * (l) - 1) & 31)
#define CT__WG4_TAP1(l) (4 * (l) & 31)
#define CT__WG4_TAP2(l) ((4 * (l) + 1) & 31)
#define CT__WG4_TAP3(l) ((4 * (l) + 2) & 31)
#define CT__WG4_TAP4(l) ((4 * (l) + 3) & 31)
#define CT__WG4_TAP5(l) ((4 * (l) + 4) & 31)
/* Interleave: lane l of a row is phase l%4 of tile l/4 (+4 for the high
 * half); phases 0 / 2 come from the first source, 1 / 3 from the second. */
#define CT__WG4_ILO(l) (((l) & 1) * 16 + (l) / 4)
#define CT__WG4_IHI(l) (((l) & 1) * 16 + 4 + (l) / 4)
static const int32_t ct__wg4_taps[6][16] = {CT__WG4_L(CT__WG4_TAP0), CT__WG4_L(CT__WG4_TAP1),
                                            CT__WG4_L(CT__WG4_TAP2), CT__WG4_L(CT__WG4_TAP3),
                                            CT__WG4_L(CT__WG4_TAP4), CT__WG4_L(CT__WG4_TAP5)};
/* Lanes whose tap column lies in [0, 32) (tiles up to 8). */
static const __mmask16 ct__wg4_tap_mask[6] = {0x1FE, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
static const int32_t ct__wg4_il[2][16] = {CT__WG4_L(CT__WG4_ILO), CT__WG4_L(CT__WG4_IHI)};

typedef struct ct__wg4_mk {
    __mmask16 tile, lo, hi; /* tw lanes; row columns [0,16) and [16,w) */
    __m512i il_lo, il_hi;
} ct__wg4_mk;

static void ct__wg4_mk_init(const ct__wg *q, ct__wg4_mk *s) {
    s->tile = (__mmask16)((1u << q->tw) - 1u);
    s->lo = (__mmask16)(q->w >= 16 ? 0xFFFFu : (1u << q->w) - 1u);
    s->hi = (__mmask16)(q->w > 16 ? (1u << (q->w - 16)) - 1u : 0u);
    s->il_lo = _mm512_loadu_si512(ct__wg4_il[0]);
    s->il_hi = _mm512_loadu_si512(ct__wg4_il[1]);
}

/* Phases p0..p3 (lane tx: column 4tx+p) -> one image row: = or +=. */
static inline void ct__wg4_put_row(const ct__wg4_mk *s, float *row, __m512 p0, __m512 p1, __m512 p2, __m512 p3,
                                   bool add) {
    __m512 lo = _mm512_mask_blend_ps(0xCCCC, _mm512_permutex2var_ps(p0, s->il_lo, p1),
                                     _mm512_permutex2var_ps(p2, s->il_lo, p3));
    if (add) lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(s->lo, row));
    _mm512_mask_storeu_ps(row, s->lo, lo);
    if (s->hi) {
        __m512 hi = _mm512_mask_blend_ps(0xCCCC, _mm512_permutex2var_ps(p0, s->il_hi, p1),
                                         _mm512_permutex2var_ps(p2, s->il_hi, p3));
        if (add) hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(s->hi, row + 16));
        _mm512_mask_storeu_ps(row + 16, s->hi, hi);
    }
}

static void ct__wg4_in_plane_simd(const ct__wg *q, const float *x, float *v, int64_t vs) {
    const int64_t H = q->h, W = q->w, TW = q->tw;
    ct__wg4_mk s;
    ct__wg4_mk_init(q, &s);
    __m512i tap[6];
    for (int k = 0; k < 6; k++) tap[k] = _mm512_loadu_si512(ct__wg4_taps[k]);
    const __m512 z = _mm512_setzero_ps();
    for (int64_t ty = 0; ty < q->th; ty++) {
        __m512 rl[6], rh[6]; /* image rows 4ty-1 .. 4ty+4, columns [0,16) and [16,32) */
        for (int r = 0; r < 6; r++) {
            int64_t y = 4 * ty - 1 + r;
            bool in = y >= 0 && y < H;
            rl[r] = in ? _mm512_maskz_loadu_ps(s.lo, x + y * W) : z;
            rh[r] = in && s.hi ? _mm512_maskz_loadu_ps(s.hi, x + y * W + 16) : z;
        }
        __m512 tl[6], th[6]; /* B^T d on the rows */
        ct__wg4_btv(rl, tl);
        if (s.hi) {
            ct__wg4_btv(rh, th);
        } else {
            for (int r = 0; r < 6; r++) th[r] = z;
        }
        float *vt = v + ty * TW;
        for (int i = 0; i < 6; i++) { /* (B^T d) B: gather the 6 column taps, combine */
            __m512 c[6], o[6];
            for (int k = 0; k < 6; k++) c[k] = _mm512_maskz_permutex2var_ps(ct__wg4_tap_mask[k], tl[i], tap[k], th[i]);
            ct__wg4_btv(c, o);
            for (int l = 0; l < 6; l++) _mm512_mask_storeu_ps(vt + (i * 6 + l) * vs, s.tile, o[l]);
        }
    }
}

static void ct__wg4_out_plane_simd(const ct__wg *q, const float *m, int64_t ms, float *y, float bias) {
    const int64_t H = q->h, W = q->w, TW = q->tw;
    ct__wg4_mk s;
    ct__wg4_mk_init(q, &s);
    const __m512 bv = _mm512_set1_ps(bias);
    for (int64_t ty = 0; ty < q->th; ty++) {
        __m512 t[4][6]; /* A^T M */
        for (int j = 0; j < 6; j++) {
            const float *c = m + ty * TW + j * ms;
            __m512 col[6], r[4];
            for (int i = 0; i < 6; i++) col[i] = _mm512_maskz_loadu_ps(s.tile, c + i * 6 * ms);
            ct__wg4_atv(col, r);
            for (int i = 0; i < 4; i++) t[i][j] = r[i];
        }
        for (int i = 0; i < 4 && 4 * ty + i < H; i++) { /* (A^T M) A */
            __m512 p[4];
            ct__wg4_atv(t[i], p);
            ct__wg4_put_row(&s, y + (4 * ty + i) * W, _mm512_add_ps(p[0], bv), _mm512_add_ps(p[1], bv),
                            _mm512_add_ps(p[2], bv), _mm512_add_ps(p[3], bv), false);
        }
    }
}

static void ct__wg4_dout_plane_simd(const ct__wg *q, const float *dy, float *dm, int64_t ms) {
    const int64_t H = q->h, W = q->w, TW = q->tw;
    ct__wg4_mk s;
    ct__wg4_mk_init(q, &s);
    __m512i ph[4]; /* image columns 4tx+p = taps 1..4 */
    for (int p = 0; p < 4; p++) ph[p] = _mm512_loadu_si512(ct__wg4_taps[p + 1]);
    for (int64_t ty = 0; ty < q->th; ty++) {
        __m512 a[4][4]; /* [phase][row] */
        for (int i = 0; i < 4; i++) {
            int64_t y = 4 * ty + i;
            __m512 lo = _mm512_setzero_ps(), hi = lo;
            if (y < H) {
                lo = _mm512_maskz_loadu_ps(s.lo, dy + y * W);
                if (s.hi) hi = _mm512_maskz_loadu_ps(s.hi, dy + y * W + 16);
            }
            for (int p = 0; p < 4; p++) a[p][i] = _mm512_permutex2var_ps(lo, ph[p], hi);
        }
        __m512 r[6][4]; /* A dY: rows k, column phases p */
        for (int p = 0; p < 4; p++) {
            __m512 o[6];
            ct__wg4_av(a[p], o);
            for (int k = 0; k < 6; k++) r[k][p] = o[k];
        }
        float *d = dm + ty * TW;
        for (int k = 0; k < 6; k++) { /* (A dY) A^T */
            __m512 o[6];
            ct__wg4_av(r[k], o);
            for (int l = 0; l < 6; l++) _mm512_mask_storeu_ps(d + (k * 6 + l) * ms, s.tile, o[l]);
        }
    }
}

/* Padded row pr as phase vectors (lane tx: padded column 4tx+p) -> image
 * row pr-1. Image column 4m+r is padded column 4m+r+1. */
static inline void ct__wg4_emit(const ct__wg *q, const ct__wg4_mk *s, int64_t pr, const __m512 p[4], float *dx,
                                bool fresh) {
    int64_t y = pr - 1;
    if (y < 0 || y >= q->h) return;
    ct__wg4_put_row(s, dx + y * q->w, p[1], p[2], p[3], ct__wg4_next(p[0]), !fresh);
}

static void ct__wg4_din_plane_simd(const ct__wg *q, const float *dv, int64_t vs, float *dx, bool fresh) {
    const int64_t TW = q->tw;
    ct__wg4_mk s;
    ct__wg4_mk_init(q, &s);
    __m512 carry[2][4]; /* rows 4, 5 of the previous tile row = rows 0, 1 of this one */
    for (int r = 0; r < 2; r++)
        for (int p = 0; p < 4; p++) carry[r][p] = _mm512_setzero_ps();
    for (int64_t ty = 0; ty < q->th; ty++) {
        const float *vt = dv + ty * TW;
        __m512 e[6][6]; /* B dV: e[k][j] */
        for (int j = 0; j < 6; j++) {
            __m512 col[6], o[6];
            for (int i = 0; i < 6; i++) col[i] = _mm512_maskz_loadu_ps(s.tile, vt + (i * 6 + j) * vs);
            ct__wg4_bv(col, o);
            for (int k = 0; k < 6; k++) e[k][j] = o[k];
        }
        __m512 pr[6][4]; /* (B dV B^T) rows as column phases; taps 4, 5 overlap the next tile's 0, 1 */
        for (int k = 0; k < 6; k++) {
            __m512 c[6];
            ct__wg4_bv(e[k], c);
            pr[k][0] = _mm512_add_ps(c[0], ct__wg4_prev(c[4]));
            pr[k][1] = _mm512_add_ps(c[1], ct__wg4_prev(c[5]));
            pr[k][2] = c[2];
            pr[k][3] = c[3];
        }
        for (int r = 0; r < 2; r++)
            for (int p = 0; p < 4; p++) pr[r][p] = _mm512_add_ps(pr[r][p], carry[r][p]);
        for (int r = 0; r < 4; r++) ct__wg4_emit(q, &s, 4 * ty + r, pr[r], dx, fresh);
        for (int p = 0; p < 4; p++) carry[0][p] = pr[4][p], carry[1][p] = pr[5][p];
    }
    ct__wg4_emit(q, &s, 4 * q->th, carry[0], dx, fresh);
    ct__wg4_emit(q, &s, 4 * q->th + 1, carry[1], dx, fresh);
}
#endif

/* ---- dispatch ------------------------------------------------------------ */

bool ct__wg4_simd(const ct__wg *q) {
#if defined(__AVX512F__)
    return q->w <= CT__WG4_SIMD_MAX_W;
#else
    (void)q;
    return false;
#endif
}

void ct__wg4_in(const ct__wg *q, bool simd, const float *x, float *pad, float *v, int64_t vs) {
#if defined(__AVX512F__)
    if (simd) {
        ct__wg4_in_plane_simd(q, x, v, vs);
        return;
    }
#else
    (void)simd;
#endif
    ct__wg4_in_plane(q, x, pad, v, vs);
}

void ct__wg4_out(const ct__wg *q, bool simd, const float *m, int64_t ms, float *buf, float *y, float bias) {
#if defined(__AVX512F__)
    if (simd) {
        ct__wg4_out_plane_simd(q, m, ms, y, bias);
        return;
    }
#else
    (void)simd;
#endif
    ct__wg4_out_plane(q, m, ms, buf, y, bias);
}

void ct__wg4_dout(const ct__wg *q, bool simd, const float *dy, float *buf, float *dm, int64_t ms) {
#if defined(__AVX512F__)
    if (simd) {
        ct__wg4_dout_plane_simd(q, dy, dm, ms);
        return;
    }
#else
    (void)simd;
#endif
    ct__wg4_dout_plane(q, dy, buf, dm, ms);
}

void ct__wg4_din(const ct__wg *q, bool simd, const float *dv, int64_t vs, float *pad, float *dx, bool fresh) {
#if defined(__AVX512F__)
    if (simd) {
        ct__wg4_din_plane_simd(q, dv, vs, dx, fresh);
        return;
    }
#else
    (void)simd;
#endif
    ct__wg4_din_plane(q, dv, vs, pad, dx, fresh);
}

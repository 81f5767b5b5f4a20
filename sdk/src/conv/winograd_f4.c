/* Winograd F(4x4,3x3) tile transforms (Lavin & Gray 2016), interpolation
 * points 0, +-1, +-2, inf. The driver (chunking, GEMMs, threads, weight
 * gradient slots) is winograd.c's; this file only maps planes to and
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
#include "conv/winograd_f4.h"

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

/* Both work on blocks of up to CT__WG4_WB input channels of one output
 * channel, transposed so the per-kernel arithmetic runs along the block
 * (the compiler vectorises it); only the 9-tap side is strided. */
#define CT__WG4_WB 64

void ct__wg4_weights(const ct__wg *q, const float *w, float *u) {
    const int64_t O = q->o, C = q->c, KC = O * C;
    for (int64_t k = 0; k < O; k++)
        for (int64_t c0 = 0; c0 < C; c0 += CT__WG4_WB) {
            const int nb = (int)(C - c0 < CT__WG4_WB ? C - c0 : CT__WG4_WB);
            float g[9][CT__WG4_WB], t[6][3][CT__WG4_WB]; /* taps; G g */
            for (int c = 0; c < nb; c++)
                for (int e = 0; e < 9; e++) g[e][c] = w[(k * C + c0 + c) * 9 + e];
            for (int j = 0; j < 3; j++)
                for (int c = 0; c < nb; c++) ct__wg4_g(g[j][c], g[3 + j][c], g[6 + j][c], &t[0][j][c], 3 * CT__WG4_WB);
            float *dst = u + k * C + c0;
            for (int i = 0; i < 6; i++)
                for (int c = 0; c < nb; c++) ct__wg4_g(t[i][0][c], t[i][1][c], t[i][2][c], dst + i * 6 * KC + c, KC);
        }
}

void ct__wg4_weights_grad(const ct__wg *q, const float *du, float *dw) {
    const int64_t O = q->o, C = q->c, KC = O * C;
    for (int64_t k = 0; k < O; k++)
        for (int64_t c0 = 0; c0 < C; c0 += CT__WG4_WB) {
            const int nb = (int)(C - c0 < CT__WG4_WB ? C - c0 : CT__WG4_WB);
            float t[6][3][CT__WG4_WB], r[3][3][CT__WG4_WB]; /* dU G; G^T (dU G) */
            const float *s = du + k * C + c0;
            for (int i = 0; i < 6; i++)
                for (int c = 0; c < nb; c++) ct__wg4_gt(s + i * 6 * KC + c, KC, &t[i][0][c], CT__WG4_WB);
            for (int j = 0; j < 3; j++)
                for (int c = 0; c < nb; c++) ct__wg4_gt(&t[0][j][c], 3 * CT__WG4_WB, &r[0][j][c], 3 * CT__WG4_WB);
            for (int c = 0; c < nb; c++)
                for (int e = 0; e < 9; e++) dw[(k * C + c0 + c) * 9 + e] += r[e / 3][e % 3][c];
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
    ct__wg_unpad(pad, WP, H, W, dx, fresh);
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

/* The tables. A tile row's lanes are its tiles tx; `rows` tile rows are
 * packed into one vector (lane r*tw + tx), as many as fit 16 lanes and 4
 * source vectors. The image rows of packed tile row r sit in the sources
 * at element rs*r (elements 16 s .. 16 s + 15 are source s): rs = 32
 * (two vectors, columns [0,16) and [16,32)) for maps over 16 wide, 16 for
 * up to 16, 8 (half a vector) for up to 8, so 7x7 maps fill 16 lanes.
 * Permutes pick element e & 31 from sources (0,1) or (2,3), then blend. */
void ct__wg4_tx_init(const ct__wg *q, ct__wg4_tx *t) {
    memset(t, 0, sizeof *t);
    t->simd = ct__wg4_simd_width(q->w);
    if (!t->simd) return;
    const int TW = (int)q->tw;
    t->rs = q->w > 16 ? 32 : q->w > 8 ? 16 : 8;
    t->rows = 16 / TW < 64 / t->rs ? 16 / TW : 64 / t->rs;
    t->lo = (uint16_t)(q->w >= 16 ? 0xFFFFu : (1u << q->w) - 1u);
    t->hi = (uint16_t)(q->w > 16 ? (1u << (q->w - 16)) - 1u : 0u);
    for (int r = 0; r < t->rows; r++) {
        t->first |= (uint16_t)(1u << (r * TW));
        t->last |= (uint16_t)(1u << (r * TW + TW - 1));
    }
    for (int k = 0; k < 6; k++)
        for (int l = 0; l < 16; l++) {
            int r = l / TW, tx = l % TW, col = 4 * tx + k - 1, e = t->rs * r + col;
            bool ok = r < t->rows && col >= 0 && col < t->rs;
            t->tap[k][l] = ok ? e & 31 : 0;
            if (ok) t->tap_ok[k] |= (uint16_t)(1u << l);
            if (ok && e >= 32) t->tap_hi[k] |= (uint16_t)(1u << l);
        }
    for (int r = 0; r < t->rows; r++)
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 16; j++) { /* column 16h+j is phase j%4 of tile (16h+j)/4 */
                int tx = (16 * h + j) / 4;
                t->il[r][h][j] = (j & 1) * 16 + ((r * TW + tx) & 15);
            }
}

/* Tile lanes mask of a group of nr tile rows. */
static inline __mmask16 ct__wg4_lanes(const ct__wg *q, int64_t nr) {
    int64_t n = nr * q->tw;
    return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}

/* Column tap k of every packed tile from the 4 sources. */
static inline __m512 ct__wg4_pick(const ct__wg4_tx *t, const __m512 s[4], int k) {
    __m512i idx = _mm512_loadu_si512(t->tap[k]);
    __m512 a = _mm512_maskz_permutex2var_ps(t->tap_ok[k], s[0], idx, s[1]);
    if (!t->tap_hi[k]) return a;
    __m512 b = _mm512_maskz_permutex2var_ps(t->tap_ok[k], s[2], idx, s[3]);
    return _mm512_mask_blend_ps(t->tap_hi[k], a, b);
}

/* Phases p[0..3] (lane r*tw+tx: column 4tx+p of packed tile row r) -> the
 * natural image row of packed row r as two vectors. */
static inline void ct__wg4_unpack(const ct__wg4_tx *t, int r, const __m512 p[4], __m512 *lo, __m512 *hi) {
    __m512i il = _mm512_loadu_si512(t->il[r][0]);
    *lo = _mm512_mask_blend_ps(0xCCCC, _mm512_permutex2var_ps(p[0], il, p[1]), _mm512_permutex2var_ps(p[2], il, p[3]));
    if (t->hi) {
        il = _mm512_loadu_si512(t->il[r][1]);
        *hi = _mm512_mask_blend_ps(0xCCCC, _mm512_permutex2var_ps(p[0], il, p[1]),
                                   _mm512_permutex2var_ps(p[2], il, p[3]));
    } else {
        *hi = _mm512_setzero_ps();
    }
}

/* Image row `row` (NULL: zeros) of packed tile row r into the sources
 * (zero where nothing was loaded). */
static inline void ct__wg4_load_src(const ct__wg4_tx *t, __m512 src[4], int r, const float *row) {
    if (!row) return;
    if (t->rs == 8) { /* odd r: into lanes 8-15 (a shift; expand loads measured slow) */
        __m512 v = _mm512_maskz_loadu_ps(t->lo, row);
        if (r & 1) {
            v = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), _mm512_setzero_si512(), 8));
            src[r / 2] = _mm512_mask_mov_ps(src[r / 2], 0xFF00, v);
        } else {
            src[r / 2] = v;
        }
    } else if (t->rs == 16) {
        src[r] = _mm512_maskz_loadu_ps(t->lo, row);
    } else {
        src[2 * r] = _mm512_maskz_loadu_ps(t->lo, row);
        src[2 * r + 1] = _mm512_maskz_loadu_ps(t->hi, row + 16);
    }
}

static inline void ct__wg4_store_row(const ct__wg4_tx *t, float *row, __m512 lo, __m512 hi, bool add) {
    if (add) lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(t->lo, row));
    _mm512_mask_storeu_ps(row, t->lo, lo);
    if (t->hi) {
        if (add) hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(t->hi, row + 16));
        _mm512_mask_storeu_ps(row + 16, t->hi, hi);
    }
}

/* The vector transforms take np planes (image planes x + i xs), whose
 * tile rows follow one another in v (plane i's tiles at i*tp): packed tile
 * rows may belong to different planes. Tile row g is row g % th of plane
 * g / th. */
static void ct__wg4_in_simd(const ct__wg *q, const ct__wg4_tx *t, const float *x, int64_t xs, int64_t np, float *v,
                            int64_t vs) {
    const int64_t H = q->h, W = q->w, TW = q->tw, TH = q->th, NT = np * TH;
    const __m512 z = _mm512_setzero_ps();
    for (int64_t g0 = 0; g0 < NT; g0 += t->rows) {
        int64_t nr = NT - g0 < t->rows ? NT - g0 : t->rows;
        __m512 raw[6][4], src[6][4]; /* image rows 4ty-1+a; B^T d on them, per row i and source */
        for (int s = 0; s < 4; s++)
            for (int i = 0; i < 6; i++) raw[i][s] = src[i][s] = z;
        for (int64_t r = 0; r < nr; r++) {
            const float *xp = x + (g0 + r) / TH * xs;
            int64_t ty = (g0 + r) % TH;
            for (int a = 0; a < 6; a++) {
                int64_t y = 4 * ty - 1 + a;
                ct__wg4_load_src(t, raw[a], (int)r, y >= 0 && y < H ? xp + y * W : NULL);
            }
        }
        for (int s = 0; s < (nr * t->rs + 15) / 16; s++) {
            __m512 d[6], o[6];
            for (int a = 0; a < 6; a++) d[a] = raw[a][s];
            ct__wg4_btv(d, o);
            for (int i = 0; i < 6; i++) src[i][s] = o[i];
        }
        const __mmask16 lanes = ct__wg4_lanes(q, nr);
        float *vt = v + g0 * TW;
        for (int i = 0; i < 6; i++) { /* (B^T d) B: gather the 6 column taps, combine */
            __m512 c[6], o[6];
            for (int k = 0; k < 6; k++) c[k] = ct__wg4_pick(t, src[i], k);
            ct__wg4_btv(c, o);
            for (int l = 0; l < 6; l++) _mm512_mask_storeu_ps(vt + (i * 6 + l) * vs, lanes, o[l]);
        }
    }
}

static void ct__wg4_out_simd(const ct__wg *q, const ct__wg4_tx *t, const float *m, int64_t ms, float *y,
                             int64_t ys, int64_t np, float bias) {
    const int64_t H = q->h, W = q->w, TW = q->tw, TH = q->th, NT = np * TH;
    const __m512 bv = _mm512_set1_ps(bias);
    for (int64_t g0 = 0; g0 < NT; g0 += t->rows) {
        int64_t nr = NT - g0 < t->rows ? NT - g0 : t->rows;
        const __mmask16 lanes = ct__wg4_lanes(q, nr);
        __m512 s[4][6]; /* A^T M */
        for (int j = 0; j < 6; j++) {
            const float *c = m + g0 * TW + j * ms;
            __m512 col[6], r[4];
            for (int i = 0; i < 6; i++) col[i] = _mm512_maskz_loadu_ps(lanes, c + i * 6 * ms);
            ct__wg4_atv(col, r);
            for (int i = 0; i < 4; i++) s[i][j] = r[i];
        }
        for (int i = 0; i < 4; i++) { /* (A^T M) A, then one image row per packed tile row */
            __m512 p[4];
            ct__wg4_atv(s[i], p);
            for (int k = 0; k < 4; k++) p[k] = _mm512_add_ps(p[k], bv);
            for (int64_t r = 0; r < nr; r++) {
                int64_t row = 4 * ((g0 + r) % TH) + i;
                if (row >= H) continue;
                __m512 lo, hi;
                ct__wg4_unpack(t, (int)r, p, &lo, &hi);
                ct__wg4_store_row(t, y + (g0 + r) / TH * ys + row * W, lo, hi, false);
            }
        }
    }
}

static void ct__wg4_dout_simd(const ct__wg *q, const ct__wg4_tx *t, const float *dy, int64_t ys, int64_t np,
                              float *dm, int64_t ms) {
    const int64_t H = q->h, W = q->w, TW = q->tw, TH = q->th, NT = np * TH;
    const __m512 z = _mm512_setzero_ps();
    for (int64_t g0 = 0; g0 < NT; g0 += t->rows) {
        int64_t nr = NT - g0 < t->rows ? NT - g0 : t->rows;
        const __mmask16 lanes = ct__wg4_lanes(q, nr);
        __m512 a[4][4]; /* [phase][row i]: image column 4tx+p = tap p+1 */
        for (int i = 0; i < 4; i++) {
            __m512 src[4] = {z, z, z, z};
            for (int64_t r = 0; r < nr; r++) {
                int64_t y = 4 * ((g0 + r) % TH) + i;
                ct__wg4_load_src(t, src, (int)r, y < H ? dy + (g0 + r) / TH * ys + y * W : NULL);
            }
            for (int p = 0; p < 4; p++) a[p][i] = ct__wg4_pick(t, src, p + 1);
        }
        __m512 r6[6][4]; /* A dY: rows k, column phases p */
        for (int p = 0; p < 4; p++) {
            __m512 o[6];
            ct__wg4_av(a[p], o);
            for (int k = 0; k < 6; k++) r6[k][p] = o[k];
        }
        float *d = dm + g0 * TW;
        for (int k = 0; k < 6; k++) { /* (A dY) A^T */
            __m512 o[6];
            ct__wg4_av(r6[k], o);
            for (int l = 0; l < 6; l++) _mm512_mask_storeu_ps(d + (k * 6 + l) * ms, lanes, o[l]);
        }
    }
}

/* The last two rows of a plane's last tile row, held back for overlap. */
static inline void ct__wg4_flush(const ct__wg *q, const ct__wg4_tx *t, __m512 carry[2][2], float *dx, bool fresh) {
    for (int k = 0; k < 2; k++) {
        int64_t y = 4 * q->th + k - 1;
        if (y < q->h) ct__wg4_store_row(t, dx + y * q->w, carry[k][0], carry[k][1], !fresh);
        carry[k][0] = carry[k][1] = _mm512_setzero_ps();
    }
}

static void ct__wg4_din_simd(const ct__wg *q, const ct__wg4_tx *t, const float *dv, int64_t vs, float *dx,
                             int64_t xs, int64_t np, bool fresh) {
    const int64_t H = q->h, W = q->w, TW = q->tw, TH = q->th, NT = np * TH;
    const __m512 z = _mm512_setzero_ps();
    __m512 carry[2][2] = {{z, z}, {z, z}}; /* rows 4, 5 of the previous tile row (lo, hi) */
    for (int64_t g0 = 0; g0 < NT; g0 += t->rows) {
        int64_t nr = NT - g0 < t->rows ? NT - g0 : t->rows;
        const __mmask16 lanes = ct__wg4_lanes(q, nr);
        const float *vt = dv + g0 * TW;
        __m512 e[6][6]; /* B dV: e[k][j] */
        for (int j = 0; j < 6; j++) {
            __m512 col[6], o[6];
            for (int i = 0; i < 6; i++) col[i] = _mm512_maskz_loadu_ps(lanes, vt + (i * 6 + j) * vs);
            ct__wg4_bv(col, o);
            for (int k = 0; k < 6; k++) e[k][j] = o[k];
        }
        /* (B dV B^T) rows k as image-column phases: image column 4tx+c is
         * tap c+1 of tile tx, plus for c = 0 tap 5 of tile tx-1 and for
         * c = 3 tap 0 of tile tx+1 (the 2-column overlap). */
        __m512 ph[6][4];
        for (int k = 0; k < 6; k++) {
            __m512 c[6];
            ct__wg4_bv(e[k], c);
            ph[k][0] = _mm512_add_ps(c[1], _mm512_maskz_mov_ps((__mmask16)~t->first, ct__wg4_prev(c[5])));
            ph[k][1] = c[2];
            ph[k][2] = c[3];
            ph[k][3] = _mm512_add_ps(c[4], _mm512_maskz_mov_ps((__mmask16)~t->last, ct__wg4_next(c[0])));
        }
        for (int64_t r = 0; r < nr; r++) {
            int64_t ty = (g0 + r) % TH;
            float *dp = dx + (g0 + r) / TH * xs;
            if (ty == 0 && g0 + r > 0) ct__wg4_flush(q, t, carry, dp - xs, fresh);
            __m512 lo[6], hi[6];
            for (int k = 0; k < 6; k++) ct__wg4_unpack(t, (int)r, ph[k], &lo[k], &hi[k]);
            for (int k = 0; k < 2; k++) lo[k] = _mm512_add_ps(lo[k], carry[k][0]), hi[k] = _mm512_add_ps(hi[k], carry[k][1]);
            for (int k = 0; k < 4; k++) {
                int64_t y = 4 * ty + k - 1; /* padded row 4ty+k */
                if (y >= 0 && y < H) ct__wg4_store_row(t, dp + y * W, lo[k], hi[k], !fresh);
            }
            for (int k = 0; k < 2; k++) carry[k][0] = lo[4 + k], carry[k][1] = hi[4 + k];
        }
    }
    ct__wg4_flush(q, t, carry, dx + (np - 1) * xs, fresh);
}
#else
void ct__wg4_tx_init(const ct__wg *q, ct__wg4_tx *t) {
    (void)q;
    memset(t, 0, sizeof *t);
}
#endif

/* ---- dispatch ------------------------------------------------------------ */

bool ct__wg4_simd_width(int64_t w) {
#if defined(__AVX512F__)
    return w <= CT__WG4_SIMD_MAX_W;
#else
    (void)w;
    return false;
#endif
}

void ct__wg4_in(const ct__wg *q, const ct__wg4_tx *t, const float *x, int64_t xs, int64_t np, float *pad, float *v,
                int64_t vs) {
#if defined(__AVX512F__)
    if (t->simd) {
        ct__wg4_in_simd(q, t, x, xs, np, v, vs);
        return;
    }
#else
    (void)t;
#endif
    for (int64_t i = 0; i < np; i++) ct__wg4_in_plane(q, x + i * xs, pad, v + i * q->tp, vs);
}

void ct__wg4_out(const ct__wg *q, const ct__wg4_tx *t, const float *m, int64_t ms, float *buf, float *y, int64_t ys,
                 int64_t np, float bias) {
#if defined(__AVX512F__)
    if (t->simd) {
        ct__wg4_out_simd(q, t, m, ms, y, ys, np, bias);
        return;
    }
#else
    (void)t;
#endif
    for (int64_t i = 0; i < np; i++) ct__wg4_out_plane(q, m + i * q->tp, ms, buf, y + i * ys, bias);
}

void ct__wg4_dout(const ct__wg *q, const ct__wg4_tx *t, const float *dy, int64_t ys, int64_t np, float *buf, float *dm,
                  int64_t ms) {
#if defined(__AVX512F__)
    if (t->simd) {
        ct__wg4_dout_simd(q, t, dy, ys, np, dm, ms);
        return;
    }
#else
    (void)t;
#endif
    for (int64_t i = 0; i < np; i++) ct__wg4_dout_plane(q, dy + i * ys, buf, dm + i * q->tp, ms);
}

void ct__wg4_din(const ct__wg *q, const ct__wg4_tx *t, const float *dv, int64_t vs, float *pad, float *dx, int64_t xs,
                 int64_t np, bool fresh) {
#if defined(__AVX512F__)
    if (t->simd) {
        ct__wg4_din_simd(q, t, dv, vs, dx, xs, np, fresh);
        return;
    }
#else
    (void)t;
#endif
    for (int64_t i = 0; i < np; i++) ct__wg4_din_plane(q, dv + i * q->tp, vs, pad, dx + i * xs, fresh);
}

/* Winograd F(2x2,3x3) transforms (Lavin & Gray 2016): 4x4 input tiles,
 * 2x2 output tiles, 16 transform positions. The driver (winograd.c) owns
 * chunking, the GEMMs and the thread split; this file maps kernels and
 * image planes to and from the transformed tensors (conventions of
 * winograd_tile.h), scalar through a zero-padded copy and, on AVX-512, one
 * tile row per vector. */
#include "conv/winograd_f2.h"

#include <string.h>

/* ---- weight transforms -------------------------------------------------- */

/* U[xi][k][c] = (G g G^T)[xi] for every kernel g = w[k][c]. */
void ct__wg2_weights(const ct__wg *q, const float *w, float *u) {
    const int64_t O = q->o, C = q->c, KC = O * C;
    for (int64_t k = 0; k < O; k++)
        for (int64_t c = 0; c < C; c++) {
            const float *g = w + (k * C + c) * 9;
            float t[4][3]; /* G g */
            for (int j = 0; j < 3; j++) {
                float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0;
                t[1][j] = 0.5f * (g0 + g1 + g2);
                t[2][j] = 0.5f * (g0 - g1 + g2);
                t[3][j] = g2;
            }
            float *dst = u + k * C + c;
            for (int i = 0; i < 4; i++) {
                float a0 = t[i][0], a1 = t[i][1], a2 = t[i][2];
                dst[(i * 4 + 0) * KC] = a0;
                dst[(i * 4 + 1) * KC] = 0.5f * (a0 + a1 + a2);
                dst[(i * 4 + 2) * KC] = 0.5f * (a0 - a1 + a2);
                dst[(i * 4 + 3) * KC] = a2;
            }
        }
}

/* dw[k][c] += G^T dU[.][k][c] G. */
void ct__wg2_weights_grad(const ct__wg *q, const float *du, float *dw) {
    const int64_t O = q->o, C = q->c, KC = O * C;
    for (int64_t k = 0; k < O; k++)
        for (int64_t c = 0; c < C; c++) {
            const float *s = du + k * C + c;
            float t[4][3]; /* dU G (rows i, cols j) */
            for (int i = 0; i < 4; i++) {
                float m0 = s[(i * 4 + 0) * KC], m1 = s[(i * 4 + 1) * KC];
                float m2 = s[(i * 4 + 2) * KC], m3 = s[(i * 4 + 3) * KC];
                t[i][0] = m0 + 0.5f * (m1 + m2);
                t[i][1] = 0.5f * (m1 - m2);
                t[i][2] = 0.5f * (m1 + m2) + m3;
            }
            float *g = dw + (k * C + c) * 9;
            for (int j = 0; j < 3; j++) {
                g[j] += t[0][j] + 0.5f * (t[1][j] + t[2][j]);
                g[3 + j] += 0.5f * (t[1][j] - t[2][j]);
                g[6 + j] += 0.5f * (t[1][j] + t[2][j]) + t[3][j];
            }
        }
}

/* ---- tile transforms (one image plane at a time) ------------------------ */

/* Input plane x (h, w) -> v[xi*vs + t] for its tiles t (row-major). `pad`
 * is the worker's hp x wp plane whose border is zero; `rows` 4*wp floats. */
static void ct__wg_in_plane(const ct__wg *q, const float *x, float *pad, float *rows, float *v, int64_t vs) {
    const int64_t H = q->h, W = q->w, WP = q->wp, TW = q->tw;
    for (int64_t y = 0; y < H; y++) memcpy(pad + (y + 1) * WP + 1, x + y * W, (size_t)W * sizeof(float));
    float *t0 = rows, *t1 = rows + WP, *t2 = rows + 2 * WP, *t3 = rows + 3 * WP;
    for (int64_t ty = 0; ty < q->th; ty++) {
        const float *r0 = pad + 2 * ty * WP, *r1 = r0 + WP, *r2 = r1 + WP, *r3 = r2 + WP;
        for (int64_t j = 0; j < WP; j++) { /* B^T d: combine the 4 rows */
            t0[j] = r0[j] - r2[j];
            t1[j] = r1[j] + r2[j];
            t2[j] = r2[j] - r1[j];
            t3[j] = r1[j] - r3[j];
        }
        float *vt = v + ty * TW;
        const float *tr[4] = {t0, t1, t2, t3};
        for (int i = 0; i < 4; i++) { /* (B^T d) B: combine columns per tile */
            const float *a = tr[i];
            float *v0 = vt + (i * 4 + 0) * vs, *v1 = vt + (i * 4 + 1) * vs;
            float *v2 = vt + (i * 4 + 2) * vs, *v3 = vt + (i * 4 + 3) * vs;
            for (int64_t tx = 0; tx < TW; tx++) {
                float a0 = a[2 * tx], a1 = a[2 * tx + 1], a2 = a[2 * tx + 2], a3 = a[2 * tx + 3];
                v0[tx] = a0 - a2;
                v1[tx] = a1 + a2;
                v2[tx] = a2 - a1;
                v3[tx] = a1 - a3;
            }
        }
    }
}

/* m[xi*ms + t] of one output plane -> y (h, w): y = A^T M A (+ bias). */
static void ct__wg_out_plane(const ct__wg *q, const float *m, int64_t ms, float *buf, float *y, float bias) {
    const int64_t TW = q->tw, OW = 2 * TW, H = q->h, W = q->w;
    for (int64_t ty = 0; ty < q->th; ty++) {
        const float *mt = m + ty * TW;
        float *o0 = buf + 2 * ty * OW, *o1 = o0 + OW;
        float s[2][4][64];
        for (int64_t x0 = 0; x0 < TW; x0 += 64) {
            int64_t nx = TW - x0 < 64 ? TW - x0 : 64;
            for (int j = 0; j < 4; j++) { /* A^T M: rows */
                const float *c0 = mt + x0 + j * ms, *c1 = c0 + 4 * ms, *c2 = c1 + 4 * ms, *c3 = c2 + 4 * ms;
                for (int64_t tx = 0; tx < nx; tx++) {
                    s[0][j][tx] = c0[tx] + c1[tx] + c2[tx];
                    s[1][j][tx] = c1[tx] - c2[tx] - c3[tx];
                }
            }
            for (int i = 0; i < 2; i++) { /* (A^T M) A: columns */
                float *o = (i ? o1 : o0) + 2 * x0;
                for (int64_t tx = 0; tx < nx; tx++) {
                    o[2 * tx] = s[i][0][tx] + s[i][1][tx] + s[i][2][tx] + bias;
                    o[2 * tx + 1] = s[i][1][tx] - s[i][2][tx] - s[i][3][tx] + bias;
                }
            }
        }
    }
    for (int64_t r = 0; r < H; r++) memcpy(y + r * W, buf + r * OW, (size_t)W * sizeof(float));
}

/* Output-gradient plane dy (h, w) -> dm[xi*ms + t] = A dY A^T per tile.
 * `buf` is a 2*th x 2*tw plane whose cells beyond h, w are zero. */
static void ct__wg_dout_plane(const ct__wg *q, const float *dy, float *buf, float *dm, int64_t ms) {
    const int64_t TW = q->tw, OW = 2 * TW, H = q->h, W = q->w;
    for (int64_t r = 0; r < H; r++) memcpy(buf + r * OW, dy + r * W, (size_t)W * sizeof(float));
    for (int64_t ty = 0; ty < q->th; ty++) {
        const float *g0 = buf + 2 * ty * OW, *g1 = g0 + OW;
        float *d = dm + ty * TW;
        for (int64_t tx = 0; tx < TW; tx++) {
            float a0 = g0[2 * tx], b0 = g0[2 * tx + 1], a1 = g1[2 * tx], b1 = g1[2 * tx + 1];
            /* A dY: rows [g0, g0+g1, g0-g1, -g1]; then each row (a,b) -> [a, a+b, a-b, -b]. */
            float ra[4] = {a0, a0 + a1, a0 - a1, -a1}, rb[4] = {b0, b0 + b1, b0 - b1, -b1};
            for (int i = 0; i < 4; i++) {
                d[(i * 4 + 0) * ms + tx] = ra[i];
                d[(i * 4 + 1) * ms + tx] = ra[i] + rb[i];
                d[(i * 4 + 2) * ms + tx] = ra[i] - rb[i];
                d[(i * 4 + 3) * ms + tx] = -rb[i];
            }
        }
    }
}

/* dv[xi*vs + t] of one input plane -> dx (h, w) (= or +=): B dV B^T per
 * tile, overlapping tiles added. `pad` is an hp x wp scratch plane. */
static void ct__wg_din_plane(const ct__wg *q, const float *dv, int64_t vs, float *pad, float *dx, bool fresh) {
    const int64_t H = q->h, W = q->w, WP = q->wp, TW = q->tw;
    memset(pad, 0, (size_t)(q->hp * WP) * sizeof(float));
    for (int64_t ty = 0; ty < q->th; ty++) {
        const float *vt = dv + ty * TW;
        /* Full 4x4 per tile: B (rows) then B^T (columns). */
        float *p0 = pad + 2 * ty * WP, *p1 = p0 + WP, *p2 = p1 + WP, *p3 = p2 + WP;
        for (int64_t tx = 0; tx < TW; tx++) {
            float e[4][4];
            for (int j = 0; j < 4; j++) { /* B on the row index, per column j */
                float a0 = vt[(0 + j) * vs + tx], a1 = vt[(4 + j) * vs + tx];
                float a2 = vt[(8 + j) * vs + tx], a3 = vt[(12 + j) * vs + tx];
                e[0][j] = a0;
                e[1][j] = a1 - a2 + a3;
                e[2][j] = a1 + a2 - a0;
                e[3][j] = -a3;
            }
            float *pr[4] = {p0, p1, p2, p3};
            for (int i = 0; i < 4; i++) { /* B^T on the column index */
                float *p = pr[i] + 2 * tx;
                p[0] += e[i][0];
                p[1] += e[i][1] - e[i][2] + e[i][3];
                p[2] += e[i][1] + e[i][2] - e[i][0];
                p[3] -= e[i][3];
            }
        }
    }
    ct__wg_unpad(pad, WP, H, W, dx, fresh);
}


/* ---- AVX-512 tile transforms: one tile row per vector ------------------ */
#if defined(__AVX512F__)
/* For maps up to 30 wide (every map of the reference model), a tile row
 * (tw <= 15 tiles) fits one 16-lane vector: each transform handles a whole
 * tile row with a handful of vector ops. Image rows are split into even
 * and odd columns (one permute each), so a tile's 4 columns are lanes tx
 * and tx+1 of two vectors. Lanes past the map are zero (masked loads).
 * CT__WG_SIMD_MAX_W and the state ct__wg_simd are in winograd_f2.h. */

static void ct__wg_simd_init(const ct__wg *q, ct__wg_simd *s) {
    s->tile = (__mmask16)((1u << q->tw) - 1u);
    s->lo = (__mmask16)(q->w >= 16 ? 0xFFFFu : (1u << q->w) - 1u);
    s->hi = (__mmask16)(q->w > 16 ? (1u << (q->w - 16)) - 1u : 0u);
    int ev[16], od[16], lo[16], hi[16];
    for (int i = 0; i < 16; i++) {
        ev[i] = 2 * i, od[i] = 2 * i + 1;
        lo[i] = (i & 1) ? 16 + i / 2 : i / 2;
        hi[i] = (i & 1) ? 24 + i / 2 : 8 + i / 2;
    }
    s->ev = _mm512_loadu_si512(ev), s->od = _mm512_loadu_si512(od);
    s->il_lo = _mm512_loadu_si512(lo), s->il_hi = _mm512_loadu_si512(hi);
}

/* Row r (w floats; NULL: zero row) -> even columns e[m] = r[2m] and odd
 * columns o[m] = r[2m+1]. */
static inline void ct__wg_split(const ct__wg_simd *s, const float *r, __m512 *e, __m512 *o) {
    if (!r) {
        *e = *o = _mm512_setzero_ps();
        return;
    }
    __m512 a = _mm512_maskz_loadu_ps(s->lo, r), b = _mm512_maskz_loadu_ps(s->hi, r + 16);
    *e = _mm512_permutex2var_ps(a, s->ev, b);
    *o = _mm512_permutex2var_ps(a, s->od, b);
}
/* v[i+1] (lane 15: 0) and v[i-1] (lane 0: 0). */
static inline __m512 ct__wg_next(__m512 v) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_setzero_si512(), _mm512_castps_si512(v), 1));
}
static inline __m512 ct__wg_prev(__m512 v) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), _mm512_setzero_si512(), 15));
}

static void ct__wg_in_plane_simd(const ct__wg *q, const ct__wg_simd *s, const float *x, float *v, int64_t vs) {
    const int64_t H = q->h, W = q->w, TW = q->tw;
    for (int64_t ty = 0; ty < q->th; ty++) {
        __m512 e[4], o[4]; /* padded columns 2m and 2m+1 = image columns 2m-1, 2m */
        for (int r = 0; r < 4; r++) {
            int64_t y = 2 * ty - 1 + r;
            __m512 ev, od;
            ct__wg_split(s, y >= 0 && y < H ? x + y * W : NULL, &ev, &od);
            e[r] = ct__wg_prev(od), o[r] = ev;
        }
        __m512 te[4] = {_mm512_sub_ps(e[0], e[2]), _mm512_add_ps(e[1], e[2]), _mm512_sub_ps(e[2], e[1]),
                        _mm512_sub_ps(e[1], e[3])};
        __m512 to[4] = {_mm512_sub_ps(o[0], o[2]), _mm512_add_ps(o[1], o[2]), _mm512_sub_ps(o[2], o[1]),
                        _mm512_sub_ps(o[1], o[3])};
        float *vt = v + ty * TW;
        for (int i = 0; i < 4; i++) {
            __m512 a0 = te[i], a1 = to[i], a2 = ct__wg_next(te[i]), a3 = ct__wg_next(to[i]);
            _mm512_mask_storeu_ps(vt + (i * 4 + 0) * vs, s->tile, _mm512_sub_ps(a0, a2));
            _mm512_mask_storeu_ps(vt + (i * 4 + 1) * vs, s->tile, _mm512_add_ps(a1, a2));
            _mm512_mask_storeu_ps(vt + (i * 4 + 2) * vs, s->tile, _mm512_sub_ps(a2, a1));
            _mm512_mask_storeu_ps(vt + (i * 4 + 3) * vs, s->tile, _mm512_sub_ps(a1, a3));
        }
    }
}

/* Even / odd columns (tile lanes) -> one image row: = or +=. */
static inline void ct__wg_put_row(const ct__wg_simd *s, float *row, __m512 ev, __m512 od, bool add) {
    __m512 lo = _mm512_permutex2var_ps(ev, s->il_lo, od), hi = _mm512_permutex2var_ps(ev, s->il_hi, od);
    if (add) {
        lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(s->lo, row));
        hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(s->hi, row + 16));
    }
    _mm512_mask_storeu_ps(row, s->lo, lo);
    _mm512_mask_storeu_ps(row + 16, s->hi, hi);
}

static void ct__wg_out_plane_simd(const ct__wg *q, const ct__wg_simd *s, const float *m, int64_t ms, float *y,
                                  float bias) {
    const int64_t H = q->h, W = q->w, TW = q->tw;
    const __m512 bv = _mm512_set1_ps(bias);
    for (int64_t ty = 0; ty < q->th; ty++) {
        __m512 s0[4], s1[4];
        for (int j = 0; j < 4; j++) { /* A^T M */
            const float *c = m + ty * TW + j * ms;
            __m512 c0 = _mm512_maskz_loadu_ps(s->tile, c), c1 = _mm512_maskz_loadu_ps(s->tile, c + 4 * ms);
            __m512 c2 = _mm512_maskz_loadu_ps(s->tile, c + 8 * ms), c3 = _mm512_maskz_loadu_ps(s->tile, c + 12 * ms);
            s0[j] = _mm512_add_ps(_mm512_add_ps(c0, c1), c2);
            s1[j] = _mm512_sub_ps(_mm512_sub_ps(c1, c2), c3);
        }
        for (int i = 0; i < 2 && 2 * ty + i < H; i++) { /* (A^T M) A */
            const __m512 *t = i ? s1 : s0;
            __m512 ev = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t[0], t[1]), t[2]), bv);
            __m512 od = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t[1], t[2]), t[3]), bv);
            ct__wg_put_row(s, y + (2 * ty + i) * W, ev, od, false);
        }
    }
}

static void ct__wg_dout_plane_simd(const ct__wg *q, const ct__wg_simd *s, const float *dy, float *dm, int64_t ms) {
    const int64_t H = q->h, W = q->w, TW = q->tw;
    for (int64_t ty = 0; ty < q->th; ty++) {
        __m512 a0, b0, a1, b1; /* rows 2ty, 2ty+1: columns 2tx (a) and 2tx+1 (b) */
        ct__wg_split(s, dy + 2 * ty * W, &a0, &b0);
        ct__wg_split(s, 2 * ty + 1 < H ? dy + (2 * ty + 1) * W : NULL, &a1, &b1);
        __m512 ra[4] = {a0, _mm512_add_ps(a0, a1), _mm512_sub_ps(a0, a1), _mm512_sub_ps(_mm512_setzero_ps(), a1)};
        __m512 rb[4] = {b0, _mm512_add_ps(b0, b1), _mm512_sub_ps(b0, b1), _mm512_sub_ps(_mm512_setzero_ps(), b1)};
        float *d = dm + ty * TW;
        for (int i = 0; i < 4; i++) {
            _mm512_mask_storeu_ps(d + (i * 4 + 0) * ms, s->tile, ra[i]);
            _mm512_mask_storeu_ps(d + (i * 4 + 1) * ms, s->tile, _mm512_add_ps(ra[i], rb[i]));
            _mm512_mask_storeu_ps(d + (i * 4 + 2) * ms, s->tile, _mm512_sub_ps(ra[i], rb[i]));
            _mm512_mask_storeu_ps(d + (i * 4 + 3) * ms, s->tile, _mm512_sub_ps(_mm512_setzero_ps(), rb[i]));
        }
    }
}

/* Padded row pr (even padded columns pe, odd po) -> image row pr-1. */
static inline void ct__wg_emit(const ct__wg *q, const ct__wg_simd *s, int64_t pr, __m512 pe, __m512 po, float *dx,
                               bool fresh) {
    int64_t y = pr - 1;
    if (y < 0 || y >= q->h) return;
    /* Image column 2m is padded column 2m+1 (po[m]); 2m+1 is padded 2m+2. */
    ct__wg_put_row(s, dx + y * q->w, po, ct__wg_next(pe), !fresh);
}

static void ct__wg_din_plane_simd(const ct__wg *q, const ct__wg_simd *s, const float *dv, int64_t vs, float *dx,
                                  bool fresh) {
    const int64_t TW = q->tw;
    __m512 ce[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()}, co[2] = {ce[0], ce[0]};
    for (int64_t ty = 0; ty < q->th; ty++) {
        const float *vt = dv + ty * TW;
        __m512 e[4][4]; /* B dV: e[i][j] */
        for (int j = 0; j < 4; j++) {
            __m512 a0 = _mm512_maskz_loadu_ps(s->tile, vt + j * vs), a1 = _mm512_maskz_loadu_ps(s->tile, vt + (4 + j) * vs);
            __m512 a2 = _mm512_maskz_loadu_ps(s->tile, vt + (8 + j) * vs), a3 = _mm512_maskz_loadu_ps(s->tile, vt + (12 + j) * vs);
            e[0][j] = a0;
            e[1][j] = _mm512_add_ps(_mm512_sub_ps(a1, a2), a3);
            e[2][j] = _mm512_sub_ps(_mm512_add_ps(a1, a2), a0);
            e[3][j] = _mm512_sub_ps(_mm512_setzero_ps(), a3);
        }
        __m512 pe[4], po[4]; /* (B dV B^T) rows, as even / odd padded columns */
        for (int i = 0; i < 4; i++) {
            __m512 c0 = e[i][0], c1 = _mm512_add_ps(_mm512_sub_ps(e[i][1], e[i][2]), e[i][3]);
            __m512 c2 = _mm512_sub_ps(_mm512_add_ps(e[i][1], e[i][2]), e[i][0]);
            __m512 c3 = _mm512_sub_ps(_mm512_setzero_ps(), e[i][3]);
            pe[i] = _mm512_add_ps(c0, ct__wg_prev(c2)); /* tile tx's col 2 is tile tx+1's col 0 */
            po[i] = _mm512_add_ps(c1, ct__wg_prev(c3));
        }
        ct__wg_emit(q, s, 2 * ty, _mm512_add_ps(ce[0], pe[0]), _mm512_add_ps(co[0], po[0]), dx, fresh);
        ct__wg_emit(q, s, 2 * ty + 1, _mm512_add_ps(ce[1], pe[1]), _mm512_add_ps(co[1], po[1]), dx, fresh);
        ce[0] = pe[2], co[0] = po[2], ce[1] = pe[3], co[1] = po[3];
    }
    ct__wg_emit(q, s, 2 * q->th, ce[0], co[0], dx, fresh);
    ct__wg_emit(q, s, 2 * q->th + 1, ce[1], co[1], dx, fresh);
}
#endif

/* ---- over np planes, picking the vector versions where they apply ------- */

void ct__wg2_tx_init(const ct__wg *q, ct__wg2_tx *t) {
    t->simd = false;
#if defined(__AVX512F__)
    t->simd = q->w <= CT__WG_SIMD_MAX_W;
    if (t->simd) ct__wg_simd_init(q, &t->s);
#else
    (void)q;
#endif
}

void ct__wg2_in(const ct__wg *q, const ct__wg2_tx *t, const float *x, int64_t xs, int64_t np, float *pad, float *rows,
                float *v, int64_t vs) {
    for (int64_t i = 0; i < np; i++) {
#if defined(__AVX512F__)
        if (t->simd) {
            ct__wg_in_plane_simd(q, &t->s, x + i * xs, v + i * q->tp, vs);
            continue;
        }
#else
        (void)t;
#endif
        ct__wg_in_plane(q, x + i * xs, pad, rows, v + i * q->tp, vs);
    }
}

void ct__wg2_out(const ct__wg *q, const ct__wg2_tx *t, const float *m, int64_t ms, float *buf, float *y, int64_t ys,
                 int64_t np, float bias) {
    for (int64_t i = 0; i < np; i++) {
#if defined(__AVX512F__)
        if (t->simd) {
            ct__wg_out_plane_simd(q, &t->s, m + i * q->tp, ms, y + i * ys, bias);
            continue;
        }
#else
        (void)t;
#endif
        ct__wg_out_plane(q, m + i * q->tp, ms, buf, y + i * ys, bias);
    }
}

void ct__wg2_dout(const ct__wg *q, const ct__wg2_tx *t, const float *dy, int64_t ys, int64_t np, float *buf, float *dm,
                  int64_t ms) {
    for (int64_t i = 0; i < np; i++) {
#if defined(__AVX512F__)
        if (t->simd) {
            ct__wg_dout_plane_simd(q, &t->s, dy + i * ys, dm + i * q->tp, ms);
            continue;
        }
#else
        (void)t;
#endif
        ct__wg_dout_plane(q, dy + i * ys, buf, dm + i * q->tp, ms);
    }
}

void ct__wg2_din(const ct__wg *q, const ct__wg2_tx *t, const float *dv, int64_t vs, float *pad, float *dx, int64_t xs,
                 int64_t np, bool fresh) {
    for (int64_t i = 0; i < np; i++) {
#if defined(__AVX512F__)
        if (t->simd) {
            ct__wg_din_plane_simd(q, &t->s, dv + i * q->tp, vs, dx + i * xs, fresh);
            continue;
        }
#else
        (void)t;
#endif
        ct__wg_din_plane(q, dv + i * q->tp, vs, pad, dx + i * xs, fresh);
    }
}

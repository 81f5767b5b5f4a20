/* Winograd convolution (Lavin & Gray 2016) for 3x3 stride-1 pad-1 kernels:
 * forward, data gradient and weight gradient, with output tiles of 2x2
 * (F(2x2,3x3), winograd_f2.c) or 4x4 (F(4x4,3x3), winograd_f4.c). This
 * file is the driver: chunking, the GEMMs, the thread split and the choice
 * of tile size; the transforms are the tile sizes' files.
 *
 * With g the 3x3 kernel, d an (m+2)x(m+2) input tile and Y the m x m
 * output tile (m = 2 or 4):
 *   U = G g G^T,  V = B^T d B,  M = U .* V (summed over input channels),
 *   Y = A^T M A.
 * The channel sum at each of the np = (m+2)^2 tile positions xi (16 or
 * 36) is a GEMM:
 *   M[xi] (O x T) = U[xi] (O x C) . V[xi] (C x T)      for T tiles.
 * Backward (adjoints of the same linear maps):
 *   dM = A dY A^T,  dV[xi] = U[xi]^T . dM[xi],  dX += B dV B^T (tiles
 *   overlap by 2, so their contributions are added),
 *   dU[xi] = sum over tiles dM[xi] . V[xi]^T,  dW = G^T dU G.
 *
 * Tile size: F(4,3) needs 36 multiplications per 16 outputs against
 * F(2,3)'s 16 per 4 (0.56x the GEMM work on 28x28 and 7x7 maps, 0.73x on
 * 14x14 where the 4x4 tiles overhang), and its transformed tensors are
 * 2.25 floats per output instead of 4; its transforms are costlier and its
 * fp32 error ~10x larger (~1e-5 of the output scale against ~1e-6). It is
 * the default wherever its AVX-512 transforms apply (maps up to 32 wide).
 * bench/step --profile-cpu, 1 thread, batch 256, fwd+bwd ms, best of 2,
 * F(2,3) as before -> F(4,3) with the transposed weight gradient and the
 * chunk minimum below: 32ch 28x28 ~143 -> ~104-111, 64ch 14x14 ~119 ->
 * ~89, 128ch 7x7 ~187 -> ~100. Wider maps keep F(2,3) (the scalar F(4,3)
 * transforms measured no faster there). The graph's engine options force
 * the tile size (wino_tile, CT_WINO_TILE=2|4) and the weight gradient's
 * layout (wino_du_transposed, CT_WINO_DU_T=0|1, see ct__wg_du_transposed),
 * for A/B tests; programs read those variables once, at start-up.
 *
 * Why this shape:
 *  - Tiles are processed in chunks of whole images, sized so the chunk's
 *    V and M (np x channels x tiles floats) stay near L2: this machine's
 *    memory bandwidth is ~5 GB/s, so the transformed tensors (2.25-4x the
 *    activation) are never materialised in full.
 *  - Transforms work one image plane at a time and write V with the tile
 *    index innermost, so the loops over tiles are contiguous and
 *    vectorise. The scalar versions go through a zero-padded copy
 *    (borders and odd sizes need no special cases); the AVX-512 ones hold
 *    a tile row's tiles in vector lanes (masked loads supply the zeros).
 *  - Chunks run on the thread pool, each worker calling single-threaded
 *    sgemm (as in conv2d.c). Weight gradients go to a fixed number of
 *    partition slots, each a fixed range of chunks, summed in slot order:
 *    results are bit-identical for any thread count.
 *  - The backward pass makes dM once per chunk and uses it for both the
 *    weight gradient and the data gradient (V's buffer is reused for dV). */
#include "conv/winograd.h"
#include "conv/winograd_f2.h"
#include "conv/winograd_f4.h"
#include "conv/winograd_tile.h"

#include <cblas.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "contrast/threadpool.h"
#include "gemm/gemm.h"
#include "graph/graph_note.h"

/* Chunk size: about this many floats of V plus M per chunk (768 KB, well
 * inside the 2 MB L2). Conv time per step, 1 thread, reference model:
 * 96K-192K floats best; 768K 10% and 1.5M 25% slower (noisy machine). */
#ifndef CT__WINO_CHUNK_FLOATS
#define CT__WINO_CHUNK_FLOATS (192 * 1024)
#endif
/* ...but at least this many tiles per chunk, the GEMMs' N (K for the
 * weight gradient): F(4,3) on 7x7 maps has 4 tiles per image, and 20-tile
 * GEMMs (the L2 rule at 128 channels) ran ~8% slower than 64-84-tile ones
 * although V and M then outgrow L2; 14x14 maps: 64 tiles (4 images) ~5%
 * faster forward than 48. */
#ifndef CT__WINO_MIN_TILES
#define CT__WINO_MIN_TILES 64
#endif
/* Weight-gradient partitions (fixed, independent of the thread count). */
#define CT__WINO_PARTS 8

/* Output tile size for this convolution: 4 (F(4x4,3x3)) or 2 (F(2x2,3x3)).
 * The engine option wino_tile (CT_WINO_TILE=2|4, read once by the host)
 * forces it, for A/B tests. */
static int ct__wg_tile(const ct_engine_opts *eo, int64_t c, int64_t o, int64_t h, int64_t w) {
    if (eo->wino_tile == 2 || eo->wino_tile == 4) return eo->wino_tile;
    (void)c, (void)o, (void)h;
    return ct__wg4_simd_width(w) ? 4 : 2;
}

static void ct__wg_make(ct__wg *q, const ct_engine_opts *eo, int64_t n, int64_t c, int64_t h, int64_t w,
                        int64_t o) {
    q->n = n, q->c = c, q->h = h, q->w = w, q->o = o;
    q->m = ct__wg_tile(eo, c, o, h, w), q->np = (q->m + 2) * (q->m + 2);
    q->th = (h + q->m - 1) / q->m, q->tw = (w + q->m - 1) / q->m, q->tp = q->th * q->tw;
    q->hp = q->m * q->th + 2, q->wp = q->m * q->tw + 2;
    int64_t per_img = q->np * (c + o) * q->tp;
    int64_t chunk = CT__WINO_CHUNK_FLOATS;
    bool forced = eo->wino_chunk_floats > 0; /* tuning aid: exactly this size */
    if (forced) chunk = eo->wino_chunk_floats;
    q->gi = (chunk + per_img / 2) / per_img;
    int64_t min_gi = (CT__WINO_MIN_TILES + q->tp - 1) / q->tp;
    if (q->gi < min_gi && !forced) q->gi = min_gi;
    if (q->gi < 1) q->gi = 1;
    if (q->gi > n) q->gi = n;
    q->chunks = (n + q->gi - 1) / q->gi;
    /* V (np C T) + M (np O T) + padded plane + 4 transformed rows + slack */
    q->sf = q->np * (c + o) * q->gi * q->tp + q->hp * q->wp + 4 * q->wp + 64;
}

/* The products' float32 kernel (ct__gemm: our AVX-512 GEMM at kernel
 * level avx512, else OpenBLAS; Winograd stays float32 in precision bf16
 * too) and its packing scratch, appended to each
 * worker's sf floats: the largest of the forward (O x T x C), weight
 * gradient (C x O x T or O x C x T) and data gradient (C x T x O) products
 * of a chunk (T = gi tiles' worth). */
static void ct__wg_gemm_setup(ct__wg *q, const ct_graph *g) {
    const ct__gemm_kind kind = ct__gemm_f32_kind_of(g);
    const int64_t T = q->gi * q->tp, C = q->c, O = q->o;
    size_t b = ct__gemm_pack_bytes(kind, O, T, C), d;
    if ((d = ct__gemm_pack_bytes(kind, C, O, T)) > b) b = d;
    if ((d = ct__gemm_pack_bytes(kind, O, C, T)) > b) b = d;
    if ((d = ct__gemm_pack_bytes(kind, C, T, O)) > b) b = d;
    q->kind = (int)kind;
    q->pf = (int64_t)((b + sizeof(float) - 1) / sizeof(float));
    q->sf += q->pf;
}

/* A worker's packing scratch (its scratch starting at v), stamped; NULL
 * for OpenBLAS. */
static void *ct__wg_pack(const ct__wg *q, float *v) {
    if (!q->pf) return NULL;
    void *p = v + q->sf - q->pf;
    ct__gemm_pack_init(p, (ct__gemm_kind)q->kind);
    return p;
}

static int ct__wg_threads(const ct_graph *g) {
    int t = ct_threadpool_size(ct_graph_pool(g));
    if (t > 1 && openblas_get_num_threads() > 1) return 1;
    return t < 1 ? 1 : t;
}

/* The transforms of this convolution's tile size. */
typedef struct ct__wg_tx {
    int m;
    ct__wg2_tx t2;
    ct__wg4_tx t4;
} ct__wg_tx;

static void ct__wg_tx_init(const ct__wg *q, ct__wg_tx *t) {
    t->m = q->m;
    if (q->m == 4) {
        ct__wg4_tx_init(q, &t->t4);
    } else {
        ct__wg2_tx_init(q, &t->t2);
    }
}

/* Over np planes at once: plane i at x + i*xs (y, dy, dx likewise), its
 * tiles at + i*tp in the transformed tensor. */
static void ct__wg_in(const ct__wg *q, const ct__wg_tx *t, const float *x, int64_t xs, int64_t np, float *pad,
                      float *rows, float *v, int64_t vs) {
    if (t->m == 4) {
        ct__wg4_in(q, &t->t4, x, xs, np, pad, v, vs);
    } else {
        ct__wg2_in(q, &t->t2, x, xs, np, pad, rows, v, vs);
    }
}

static void ct__wg_out(const ct__wg *q, const ct__wg_tx *t, const float *m, int64_t ms, float *buf, float *y,
                       int64_t ys, int64_t np, float bias) {
    if (t->m == 4) {
        ct__wg4_out(q, &t->t4, m, ms, buf, y, ys, np, bias);
    } else {
        ct__wg2_out(q, &t->t2, m, ms, buf, y, ys, np, bias);
    }
}

static void ct__wg_dout(const ct__wg *q, const ct__wg_tx *t, const float *dy, int64_t ys, int64_t np, float *buf,
                        float *dm, int64_t ms) {
    if (t->m == 4) {
        ct__wg4_dout(q, &t->t4, dy, ys, np, buf, dm, ms);
    } else {
        ct__wg2_dout(q, &t->t2, dy, ys, np, buf, dm, ms);
    }
}

static void ct__wg_din(const ct__wg *q, const ct__wg_tx *t, const float *dv, int64_t vs, float *pad, float *dx,
                       int64_t xs, int64_t np, bool fresh) {
    if (t->m == 4) {
        ct__wg4_din(q, &t->t4, dv, vs, pad, dx, xs, np, fresh);
    } else {
        ct__wg2_din(q, &t->t2, dv, vs, pad, dx, xs, np, fresh);
    }
}

static void ct__wg_weights_any(const ct__wg *q, const float *w, float *u) {
    if (q->m == 4) {
        ct__wg4_weights(q, w, u);
    } else {
        ct__wg2_weights(q, w, u);
    }
}

/* ---- forward ------------------------------------------------------------ */

typedef struct ct__wg_fwd {
    const ct__wg *q;
    const float *x, *u, *b;
    float *y, *scratch;
} ct__wg_fwd;

static void ct__wg_fwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    ct__wg_fwd *a = ctx;
    const ct__wg *q = a->q;
    const int64_t C = q->c, O = q->o, HW = q->h * q->w, TP = q->tp;
    float *v = a->scratch + (int64_t)worker * q->sf;
    float *m = v + q->np * C * q->gi * TP;
    float *pad = m + q->np * O * q->gi * TP, *rows = pad + q->hp * q->wp;
    memset(pad, 0, (size_t)(q->hp * q->wp) * sizeof(float));
    void *pack = ct__wg_pack(q, v);
    ct__wg_tx tx;
    ct__wg_tx_init(q, &tx);
    for (int64_t ch = begin; ch < end; ch++) {
        int64_t n0 = ch * q->gi, gn = q->n - n0 < q->gi ? q->n - n0 : q->gi, T = gn * TP;
        for (int64_t c = 0; c < C; c++)
            ct__wg_in(q, &tx, a->x + (n0 * C + c) * HW, C * HW, gn, pad, rows, v + c * T, C * T);
        for (int xi = 0; xi < q->np; xi++)
            ct__gemm(pack, false, false, O, T, C, 1.0f, a->u + xi * O * C, C, v + xi * C * T, T, 0.0f, m + xi * O * T, T);
        for (int64_t k = 0; k < O; k++)
            ct__wg_out(q, &tx, m + k * T, O * T, pad, a->y + (n0 * O + k) * HW, O * HW, gn, a->b ? a->b[k] : 0.0f);
        /* out_plane used pad as its output buffer: restore the zero border
         * the input transform relies on. */
        memset(pad, 0, (size_t)(q->hp * q->wp) * sizeof(float));
    }
}

bool ct__wino_forward(ct_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, const float *x,
                      const float *wt, const float *b, float *y) {
    ct__wg q;
    ct__wg_make(&q, ct_graph_engine(g), n, c, h, w, o);
    ct__wg_gemm_setup(&q, g);
#if defined(__AVX512F__)
    /* The vector transforms hold a tile row in one register: wider maps
     * take the scalar transforms (forward and backward alike). */
    if ((q.m == 2 && w > CT__WG_SIMD_MAX_W) || (q.m == 4 && !ct__wg4_simd_width(w)))
        ct__graph_note(g,
                       "conv2d 3x3 Winograd F(%dx%d,3x3) on %lldx%lldx%lld: scalar tile transforms (the AVX-512 ones "
                       "take maps up to %d wide)",
                       (int)q.m, (int)q.m, (long long)c, (long long)h, (long long)w, q.m == 2 ? CT__WG_SIMD_MAX_W : 32);
#endif
    int threads = ct__wg_threads(g);
    float *u = ct_graph_alloc(g, (size_t)(q.np * o * c) * sizeof(float));
    float *scratch = ct_graph_alloc(g, (size_t)(threads * q.sf) * sizeof(float));
    if (!u || !scratch) return false;
    ct__wg_weights_any(&q, wt, u);
    ct__wg_fwd a = {&q, x, u, b, y, scratch};
    ct_parallel_for(threads > 1 ? ct_graph_pool(g) : NULL, q.chunks, 1, ct__wg_fwd_range, &a);
    return true;
}

/* ---- backward ----------------------------------------------------------- */

/* dst[c*ld + r] = src[r*ls + c] for r < rows, c < cols. */
static void ct__wg_transpose(const float *src, int64_t rows, int64_t cols, int64_t ls, float *dst, int64_t ld) {
#if defined(__AVX512F__)
    /* 16x16 blocks in registers: pairs of rows interleaved (ps), then
     * pairs of pairs (pd), then 128-bit lanes gathered (f32x4). */
    for (int64_t r0 = 0; r0 < rows; r0 += 16)
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int64_t nr = rows - r0 < 16 ? rows - r0 : 16, nc = cols - c0 < 16 ? cols - c0 : 16;
            __mmask16 cm = (__mmask16)((1u << nc) - 1u), rm = (__mmask16)((1u << nr) - 1u);
            __m512 a[16], t[16];
            for (int i = 0; i < 16; i++)
                a[i] = i < nr ? _mm512_maskz_loadu_ps(cm, src + (r0 + i) * ls + c0) : _mm512_setzero_ps();
            for (int i = 0; i < 8; i++) {
                t[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
            }
            for (int i = 0; i < 4; i++) {
                __m512d x0 = _mm512_castps_pd(t[4 * i]), x1 = _mm512_castps_pd(t[4 * i + 1]);
                __m512d x2 = _mm512_castps_pd(t[4 * i + 2]), x3 = _mm512_castps_pd(t[4 * i + 3]);
                a[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(x0, x2));
                a[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x0, x2));
                a[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(x1, x3));
                a[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(x1, x3));
            }
            /* a[4i+j], 128-bit lane L: column 4L+j of rows 4i..4i+3. */
            for (int j = 0; j < 4; j++) {
                __m512 s0 = _mm512_shuffle_f32x4(a[j], a[4 + j], 0x44), s1 = _mm512_shuffle_f32x4(a[j], a[4 + j], 0xEE);
                __m512 s2 = _mm512_shuffle_f32x4(a[8 + j], a[12 + j], 0x44);
                __m512 s3 = _mm512_shuffle_f32x4(a[8 + j], a[12 + j], 0xEE);
                t[j] = _mm512_shuffle_f32x4(s0, s2, 0x88);
                t[4 + j] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
                t[8 + j] = _mm512_shuffle_f32x4(s1, s3, 0x88);
                t[12 + j] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
            }
            for (int i = 0; i < nc; i++) _mm512_mask_storeu_ps(dst + (c0 + i) * ld + r0, rm, t[i]);
        }
#else
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * ld + r] = src[r * ls + c];
#endif
}

typedef struct ct__wg_bwd {
    const ct__wg *q;
    const float *x, *u, *dy;
    float *dx;
    bool dx_fresh;
    float *du_slots; /* parts x np x (O x C, or C x O when du_t), or NULL */
    int64_t parts;
    bool du_t;
    float *scratch;
} ct__wg_bwd;

/* Whether the weight gradient is accumulated transposed, dU^T[xi] (C x O)
 * += V[xi] . dM[xi]^T, through a transposed copy of dM[xi]: for small
 * channel counts OpenBLAS's small-matrix NN kernel runs about twice as fast
 * as the NT one that dU = dM . V^T uses (inner products over the tiles),
 * and the transpose is cheap (28x28 and 14x14 layers' backward 5-10%
 * faster). At 128x128 channels the plain call measured faster. */
static bool ct__wg_du_transposed(const ct__wg *q, const ct_engine_opts *eo) {
    /* tuning aid: 0 or 1 forces the layout */
    if (eo->wino_du_transposed == 0 || eo->wino_du_transposed == 1) return eo->wino_du_transposed == 1;
    return q->o * q->c <= 64 * 64;
}

/* One chunk (see ct__wg_du_transposed for mt). */
static void ct__wg_bwd_chunk(ct__wg_bwd *a, const ct__wg_tx *tx, int64_t ch, float *du, bool first, float *v,
                             float *m, float *pad, float *rows, float *obuf, float *mt, void *pack) {
    const ct__wg *q = a->q;
    const int64_t C = q->c, O = q->o, HW = q->h * q->w, TP = q->tp;
    int64_t n0 = ch * q->gi, gn = q->n - n0 < q->gi ? q->n - n0 : q->gi, T = gn * TP;
    for (int64_t k = 0; k < O; k++) ct__wg_dout(q, tx, a->dy + (n0 * O + k) * HW, O * HW, gn, obuf, m + k * T, O * T);
    if (du) {
        for (int64_t c = 0; c < C; c++)
            ct__wg_in(q, tx, a->x + (n0 * C + c) * HW, C * HW, gn, pad, rows, v + c * T, C * T);
        for (int xi = 0; xi < q->np; xi++) {
            if (a->du_t) {
                ct__wg_transpose(m + xi * O * T, O, T, T, mt, O);
                ct__gemm(pack, false, false, C, O, T, 1.0f, v + xi * C * T, T, mt, O, first ? 0.0f : 1.0f, du + xi * O * C,
                         O);
            } else {
                ct__gemm(pack, false, true, O, C, T, 1.0f, m + xi * O * T, T, v + xi * C * T, T, first ? 0.0f : 1.0f,
                         du + xi * O * C, C);
            }
        }
    }
    if (a->dx) {
        for (int xi = 0; xi < q->np; xi++)
            ct__gemm(pack, true, false, C, T, O, 1.0f, a->u + xi * O * C, C, m + xi * O * T, T, 0.0f, v + xi * C * T, T);
        for (int64_t c = 0; c < C; c++)
            ct__wg_din(q, tx, v + c * T, C * T, rows, a->dx + (n0 * C + c) * HW, C * HW, gn, a->dx_fresh);
    }
}

/* One range of partitions; partition p covers chunks [p*chunks/parts,
 * (p+1)*chunks/parts), its weight gradient going to slot p. */
static void ct__wg_bwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    ct__wg_bwd *a = ctx;
    const ct__wg *q = a->q;
    const int64_t TP = q->tp;
    float *v = a->scratch + (int64_t)worker * q->sf;
    float *m = v + q->np * q->c * q->gi * TP;
    float *pad = m + q->np * q->o * q->gi * TP; /* hp x wp, zero border */
    float *rows = pad + q->hp * q->wp;        /* 4 wp; din_plane's hp x wp plane */
    float *obuf = rows + (q->hp * q->wp > 4 * q->wp ? q->hp * q->wp : 4 * q->wp); /* m th x m tw */
    float *mt = obuf + q->m * q->m * q->tp;                                       /* T x O */
    memset(pad, 0, (size_t)(q->hp * q->wp) * sizeof(float));
    memset(obuf, 0, (size_t)(q->m * q->m * q->tp) * sizeof(float));
    void *pack = ct__wg_pack(q, v);
    ct__wg_tx tx;
    ct__wg_tx_init(q, &tx);
    for (int64_t p = begin; p < end; p++) {
        int64_t c0 = p * q->chunks / a->parts, c1 = (p + 1) * q->chunks / a->parts;
        float *du = a->du_slots ? a->du_slots + p * q->np * q->o * q->c : NULL;
        for (int64_t ch = c0; ch < c1; ch++)
            ct__wg_bwd_chunk(a, &tx, ch, du, ch == c0, v, m, pad, rows, obuf, mt, pack);
    }
}

bool ct__wino_backward(ct_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, const float *x,
                       const float *wt, const float *dy, float *dx, bool dx_fresh, float *dw) {
    if (!dx && !dw) return true;
    ct__wg q;
    ct__wg_make(&q, ct_graph_engine(g), n, c, h, w, o);
    /* Backward scratch: V, M, pad, a second hp x wp plane (>= 4 wp rows),
     * the m th x m tw output-gradient plane and dM[xi]^T. */
    q.sf = q.np * (c + o) * q.gi * q.tp + 2 * q.hp * q.wp + 4 * q.wp + q.m * q.m * q.tp + q.gi * q.tp * o + 64;
    ct__wg_gemm_setup(&q, g);
    int threads = ct__wg_threads(g);
    int64_t parts = q.chunks < CT__WINO_PARTS ? q.chunks : CT__WINO_PARTS;
    float *u = ct_graph_alloc(g, (size_t)(q.np * o * c) * sizeof(float));
    float *scratch = ct_graph_alloc(g, (size_t)(threads * q.sf) * sizeof(float));
    float *slots = dw ? ct_graph_alloc(g, (size_t)(parts * q.np * o * c) * sizeof(float)) : NULL;
    if (!u || !scratch || (dw && !slots)) return false;
    ct__wg_weights_any(&q, wt, u);
    bool du_t = ct__wg_du_transposed(&q, ct_graph_engine(g));
    ct__wg_bwd a = {&q, x, u, dy, dx, dx_fresh, slots, parts, du_t, scratch};
    ct_parallel_for(threads > 1 ? ct_graph_pool(g) : NULL, parts, 1, ct__wg_bwd_range, &a);
    if (dw) {
        /* Sum the slots in slot order (thread-count independent), undo
         * the transpose (into u, no longer needed), then transform back to
         * the 3x3 kernel space once. */
        const int64_t S = q.np * o * c;
        for (int64_t p = 1; p < parts; p++)
            for (int64_t i = 0; i < S; i++) slots[i] += slots[p * S + i];
        float *du = slots;
        if (a.du_t) {
            for (int xi = 0; xi < q.np; xi++) ct__wg_transpose(slots + xi * o * c, c, o, o, u + xi * o * c, c);
            du = u;
        }
        if (q.m == 4) {
            ct__wg4_weights_grad(&q, du, dw);
        } else {
            ct__wg2_weights_grad(&q, du, dw);
        }
    }
    return true;
}

/* Winograd F(2x2,3x3) tile transforms (winograd_f2.c), called by the
 * driver winograd.c. Conventions of winograd_tile.h. Internal. */
#ifndef CT_CONV_WINOGRAD_F2_H
#define CT_CONV_WINOGRAD_F2_H

#include <stdbool.h>
#include <stdint.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "conv/winograd_tile.h"

/* Compiled once per SIMD level (core/kernels.h): the level's names. */
#if defined(CT__SIMD_LEVEL)
#include "core/kernel_level.h"
#define ct__wg2_tx_init CT__LEVEL_NAME(ct__wg2_tx_init)
#define ct__wg2_weights CT__LEVEL_NAME(ct__wg2_weights)
#define ct__wg2_weights_grad CT__LEVEL_NAME(ct__wg2_weights_grad)
#define ct__wg2_in CT__LEVEL_NAME(ct__wg2_in)
#define ct__wg2_out CT__LEVEL_NAME(ct__wg2_out)
#define ct__wg2_dout CT__LEVEL_NAME(ct__wg2_dout)
#define ct__wg2_din CT__LEVEL_NAME(ct__wg2_din)
#endif

#if defined(__AVX512F__)
/* Maps up to this wide get the AVX-512 transforms (a tile row in a vector). */
#define CT__WG_SIMD_MAX_W 30

/* Masks and permutes of the vector transforms for one map width. */
typedef struct ct__wg_simd {
    __mmask16 tile, lo, hi; /* tw lanes; row columns [0,16) and [16,w) */
    __m512i ev, od, il_lo, il_hi;
} ct__wg_simd;
#endif

/* Per-convolution state of the transforms. */
typedef struct ct__wg2_tx {
    bool simd; /* the AVX-512 transforms apply */
#if defined(__AVX512F__)
    ct__wg_simd s;
#endif
} ct__wg2_tx;

void ct__wg2_tx_init(const ct__wg *q, ct__wg2_tx *t);
/* U[xi][k][c] = (G g G^T)[xi] for every kernel g = w[k][c]. */
void ct__wg2_weights(const ct__wg *q, const float *w, float *u);
/* dw[k][c] += G^T dU[.][k][c] G. */
void ct__wg2_weights_grad(const ct__wg *q, const float *du, float *dw);
/* The plane transforms take np planes at once (plane i at x + i*xs, its
 * tiles at + i*tp in the transformed tensor); pad / rows / buf are
 * per-worker scratch as in winograd_f4.h. */
void ct__wg2_in(const ct__wg *q, const ct__wg2_tx *t, const float *x, int64_t xs, int64_t np, float *pad, float *rows,
                float *v, int64_t vs);
void ct__wg2_out(const ct__wg *q, const ct__wg2_tx *t, const float *m, int64_t ms, float *buf, float *y, int64_t ys,
                 int64_t np, float bias);
void ct__wg2_dout(const ct__wg *q, const ct__wg2_tx *t, const float *dy, int64_t ys, int64_t np, float *buf, float *dm,
                  int64_t ms);
void ct__wg2_din(const ct__wg *q, const ct__wg2_tx *t, const float *dv, int64_t vs, float *pad, float *dx, int64_t xs,
                 int64_t np, bool fresh);

#endif

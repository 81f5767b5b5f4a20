/* Winograd F(4x4,3x3) tile transforms (winograd_f4.c), called by the
 * driver winograd.c. Conventions of winograd_tile.h. Internal. */
#ifndef CT_CONV_WINOGRAD_F4_H
#define CT_CONV_WINOGRAD_F4_H

#include <stdbool.h>
#include <stdint.h>

#include "conv/winograd_tile.h"

/* Compiled once per SIMD level (core/kernels.h): the level's names. */
#if defined(CT__SIMD_LEVEL)
#include "core/kernel_level.h"
#define ct__wg4_tx_init CT__LEVEL_NAME(ct__wg4_tx_init)
#define ct__wg4_simd_width CT__LEVEL_NAME(ct__wg4_simd_width)
#define ct__wg4_weights CT__LEVEL_NAME(ct__wg4_weights)
#define ct__wg4_weights_grad CT__LEVEL_NAME(ct__wg4_weights_grad)
#define ct__wg4_in CT__LEVEL_NAME(ct__wg4_in)
#define ct__wg4_out CT__LEVEL_NAME(ct__wg4_out)
#define ct__wg4_dout CT__LEVEL_NAME(ct__wg4_dout)
#define ct__wg4_din CT__LEVEL_NAME(ct__wg4_din)
#endif

/* Per-worker state of the vector transforms: permute tables for a map
 * geometry (plain types, so this header needs no intrinsics). */
typedef struct ct__wg4_tx {
    bool simd;     /* AVX-512 tile-row transforms apply (maps <= 32 wide) */
    int rows;      /* tile rows packed per vector */
    int rs;        /* source elements per packed tile row: 8, 16 or 32 */
    uint16_t lo, hi;                 /* image row columns [0,16), [16,w) */
    uint16_t first, last;            /* lanes of each row's first / last tile */
    uint16_t tap_ok[6], tap_hi[6];   /* column taps: valid lanes, from sources 2-3 */
    int32_t tap[6][16];              /* lane -> source element, low 5 bits */
    int32_t il[8][2][16];            /* packed tile row r -> image row half */
} ct__wg4_tx;

void ct__wg4_tx_init(const ct__wg *q, ct__wg4_tx *t);
/* Whether maps this wide get the AVX-512 transforms. */
bool ct__wg4_simd_width(int64_t w);
/* u[xi][k][c] = (G g G^T)[xi] for every kernel g = w[k][c]. */
void ct__wg4_weights(const ct__wg *q, const float *w, float *u);
/* dw[k][c] += G^T dU[.][k][c] G. */
void ct__wg4_weights_grad(const ct__wg *q, const float *du, float *dw);
/* The plane transforms take np planes at once (plane i at x + i*xs etc.;
 * in the transformed tensor at + i*tp), so that vectors can pack tile rows
 * of several small planes. */
/* Input planes x (h, w) -> v. `pad`: hp x wp plane with a zero border. */
void ct__wg4_in(const ct__wg *q, const ct__wg4_tx *t, const float *x, int64_t xs, int64_t np, float *pad, float *v,
                int64_t vs);
/* m -> output planes y (h, w) = A^T M A + bias. `buf`: m*th x m*tw floats. */
void ct__wg4_out(const ct__wg *q, const ct__wg4_tx *t, const float *m, int64_t ms, float *buf, float *y, int64_t ys,
                 int64_t np, float bias);
/* Output-gradient planes dy -> dm = A dY A^T. `buf`: m*th x m*tw floats
 * whose cells beyond h, w are zero. */
void ct__wg4_dout(const ct__wg *q, const ct__wg4_tx *t, const float *dy, int64_t ys, int64_t np, float *buf, float *dm,
                  int64_t ms);
/* dv -> input-gradient planes dx (= when fresh, else +=): B dV B^T per
 * tile, overlapping tiles added. `pad`: hp x wp scratch plane. */
void ct__wg4_din(const ct__wg *q, const ct__wg4_tx *t, const float *dv, int64_t vs, float *pad, float *dx, int64_t xs,
                 int64_t np, bool fresh);

#endif

/* Winograd tile geometry shared by conv_winograd.c (driver, F(2x2,3x3)
 * transforms) and conv_winograd4.c (F(4x4,3x3) transforms). Internal. */
#ifndef CT_CONV_WINOGRAD4_H
#define CT_CONV_WINOGRAD4_H

#include <stdbool.h>
#include <stdint.h>

/* One convolution's tiling: output tiles m x m (2 or 4) read (m+2)^2 input
 * tiles, giving np = (m+2)^2 transform positions (16 or 36). */
typedef struct ct__wg {
    int64_t n, c, h, w, o;
    int m, np;
    int64_t th, tw, tp; /* tiles per column / row / image */
    int64_t hp, wp;     /* zero-padded input plane: m*th+2 x m*tw+2 */
    int64_t gi;         /* images per chunk */
    int64_t chunks;
    int64_t sf; /* scratch floats per worker */
} ct__wg;

/* F(4x4,3x3) transforms, same conventions as the F(2x2,3x3) ones in
 * conv_winograd.c: transformed tensors are np planes of stride vs/ms with
 * the tile index innermost. */

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

/* Shared by both tile sizes: the interior of a zero-bordered (h+2) x wp
 * padded plane -> dx (h, w), written when fresh, else added. Defined in
 * conv_winograd.c. */
void ct__wg_unpad(const float *pad, int64_t wp, int64_t h, int64_t w, float *dx, bool fresh);

#endif

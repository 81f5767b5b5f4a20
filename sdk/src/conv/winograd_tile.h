/* Winograd tile geometry, shared by the driver (winograd.c) and both tile
 * sizes' transforms (winograd_f2.c: F(2x2,3x3), winograd_f4.c:
 * F(4x4,3x3)). Internal.
 *
 * Conventions of every transform: a transformed tensor is np planes (one
 * per transform position xi) of stride vs / ms floats, with the tile index
 * innermost (tile t = ty*tw + tx of image plane i at + i*tp). */
#ifndef CT_CONV_WINOGRAD_TILE_H
#define CT_CONV_WINOGRAD_TILE_H

#include <stdbool.h>
#include <stdint.h>

/* Compiled once per SIMD level (core/kernels.h): the level's names. */
#if defined(CT__SIMD_LEVEL)
#include "core/kernel_level.h"
#define ct__wg_unpad CT__LEVEL_NAME(ct__wg_unpad)
#endif

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
    int64_t pf; /* of which GEMM packing, at the end (0: OpenBLAS; gemm/gemm.h) */
    int kind;   /* the products' ct__gemm_kind */
} ct__wg;

/* The interior of a zero-bordered (h+2) x wp padded plane -> dx (h, w),
 * written when fresh, else added (the last step of both tile sizes' scalar
 * input-gradient transforms). */
void ct__wg_unpad(const float *pad, int64_t wp, int64_t h, int64_t w, float *dx, bool fresh);

#endif

/* im2col / col2im: lowering one NCHW image to the column matrix of its
 * convolution GEMM and back (internal, used by conv2d.c).
 *
 * Column layout (every function here): col[r*ld + j] with row
 * r = (c*kh + ky)*kw + kx in [0, K), K = C*kh*kw (the weight layout), and
 * column j in [0, P), P = ho*wo (output pixel oy*wo + ox). ld >= P is the
 * row stride, so several images can sit side by side in one matrix (image i
 * of a group at col + i*P, ld = gn*P). Out-of-image taps (padding) are 0.
 *
 * The geometry of a conv (ct__conv_geom) lives here so that the kernels and
 * the op (conv2d.c, which fills it) share it. */
#ifndef CT_CONV_IM2COL_H
#define CT_CONV_IM2COL_H

#include <stdbool.h>
#include <stdint.h>

#include "conv/stride2.h"

/* Compiled once per SIMD level (core/kernels.h): the level's names. */
#if defined(CT__SIMD_LEVEL)
#include "core/kernel_level.h"
#define ct__im2col CT__LEVEL_NAME(ct__im2col)
#define ct__col2im CT__LEVEL_NAME(ct__col2im)
#define ct__im2col_img CT__LEVEL_NAME(ct__im2col_img)
#define ct__col2im_img CT__LEVEL_NAME(ct__col2im_img)
#endif

typedef struct ct__conv_geom {
    int64_t n, c, h, w;  /* input */
    int64_t o, kh, kw;   /* weight */
    int64_t ho, wo;      /* output */
    int stride, pad;
    int64_t k;           /* c*kh*kw: GEMM inner size */
    int64_t p;           /* ho*wo: pixels per image */
    int64_t g;           /* images per group */
    int64_t groups;      /* ceil(n/g) */
    bool direct;         /* 1x1, stride 1, pad 0: no im2col */
    bool s2;             /* stride 2 through phase planes (conv/stride2.h) */
    ct__s2_geom s2g;
    int64_t ph;          /* floats of one image's phase planes (s2), else 0 */
} ct__conv_geom;

/* Image x (C,H,W) -> columns col (K rows of ld, first P used) for the general
 * (any stride/pad) path. "Same" stride-1 convolutions (2*pad = k-1, output
 * size = input size) take a fast path of whole-plane shifted copies. */
void ct__im2col(const ct__conv_geom *q, const float *x, float *col, int64_t ld);

/* The adjoint of ct__im2col: dx (C,H,W) += scatter of col (K rows of ld,
 * first P used). dx must be initialised (zeroed or holding a gradient). */
void ct__col2im(const ct__conv_geom *q, const float *col, int64_t ld, float *dx);

/* Columns of one image x (C,H,W) -> col (K rows of ld, first P used); for
 * stride 2 (q->s2) through its phase planes (conv/stride2.h), using ph as
 * scratch of q->ph floats (unused otherwise). */
void ct__im2col_img(const ct__conv_geom *q, const float *x, float *col, int64_t ld, float *ph);

/* The adjoint of ct__im2col_img: dx (C,H,W) = (fresh) or += the scatter of
 * col (K rows of ld, first P used); for stride 2 through phase planes in
 * ph (q->ph floats of scratch), one interleaving write of dx. */
void ct__col2im_img(const ct__conv_geom *q, const float *col, int64_t ld, float *dx, bool fresh, float *ph);

#endif

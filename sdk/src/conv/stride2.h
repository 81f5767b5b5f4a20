/* Stride-2 convolutions through phase planes (internal, used by conv2d.c and im2col.c).
 *
 * A stride-2 kernel reads every other input pixel, so its im2col is a
 * strided gather and its col2im a strided scatter: one short row operation
 * per (channel, tap, output row), most of the non-GEMM time of the
 * downsampling layers. Splitting the image once into its four phases
 * (even/odd rows x even/odd columns, each ceil(H/2) x ceil(W/2)) turns
 * every kernel tap into a plain shift of one phase plane, so im2col becomes
 * near-contiguous copies, col2im near-contiguous adds into phase planes,
 * and one interleaving pass writes the data gradient (no memset, no
 * scatter). Tap (ky, kx) reads phase ((ky-pad) mod 2, (kx-pad) mod 2)
 * shifted by (floor((ky-pad)/2), floor((kx-pad)/2)).
 *
 * Applies when the output is exactly the phase plane's width and at most its
 * height (every "same"-padded stride-2 ResNet kernel: 3x3 pad 1, 1x1 pad 0,
 * the 7x7 pad 3 stem). */
#ifndef CT_CONV_STRIDE2_H
#define CT_CONV_STRIDE2_H

#include <stdbool.h>
#include <stdint.h>

/* Compiled once per SIMD level (core/kernels.h): the level's names. The
 * geometry helpers are inline (the same at every level, used by conv2d.c). */
#if defined(CT__SIMD_LEVEL)
#include "core/kernel_level.h"
#define ct__s2_split CT__LEVEL_NAME(ct__s2_split)
#define ct__s2_im2col CT__LEVEL_NAME(ct__s2_im2col)
#define ct__s2_col2im CT__LEVEL_NAME(ct__s2_col2im)
#define ct__s2_merge CT__LEVEL_NAME(ct__s2_merge)
#define ct__s2_pointwise_im2col CT__LEVEL_NAME(ct__s2_pointwise_im2col)
#define ct__s2_pointwise_col2im CT__LEVEL_NAME(ct__s2_pointwise_col2im)
#endif

typedef struct ct__s2_geom {
    int64_t c, h, w;   /* input channels and size */
    int64_t kh, kw;    /* kernel */
    int64_t pad;
    int64_t ho, wo;    /* output size */
    int64_t hp, wp;    /* phase plane size: ceil(h/2), ceil(w/2) */
} ct__s2_geom;

/* Fill g for a stride-2 conv; false when the phase path does not apply. */
static inline bool ct__s2_geom_make(ct__s2_geom *g, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                                    int64_t pad, int64_t ho, int64_t wo) {
    g->c = c, g->h = h, g->w = w, g->kh = kh, g->kw = kw, g->pad = pad, g->ho = ho, g->wo = wo;
    g->hp = (h + 1) / 2, g->wp = (w + 1) / 2;
    return wo == g->wp && ho <= g->hp && ho > 0;
}

/* Floats of one image's phase planes (c * 4 * hp * wp). */
static inline int64_t ct__s2_phase_floats(const ct__s2_geom *g) { return g->c * 4 * g->hp * g->wp; }

/* x (C,H,W) -> ph (C,2,2,hp,wp); phase pixels past an odd edge are 0. */
void ct__s2_split(const ct__s2_geom *g, const float *x, float *ph);

/* Columns of one image from its phase planes: col[r*ld + j], r in
 * [0, C*kh*kw) (channel-major, then ky, kx: the weight layout), j in
 * [0, ho*wo). Equal to the strided im2col. */
void ct__s2_im2col(const ct__s2_geom *g, const float *ph, float *col, int64_t ld);

/* The adjoint of ct__s2_im2col: dph (C,2,2,hp,wp) += the scatter of col. */
void ct__s2_col2im(const ct__s2_geom *g, const float *col, int64_t ld, float *dph);

/* dx (C,H,W) = (fresh) or += the interleaving of the phase planes dph. */
void ct__s2_merge(const ct__s2_geom *g, const float *dph, float *dx, bool fresh);

/* 1x1 pad-0 kernels (ResNet downsampling) read only phase (0, 0): their
 * im2col is that phase itself, written straight into the columns, and
 * their col2im writes it back between zeros, without phase buffers. */
static inline bool ct__s2_pointwise(const ct__s2_geom *g) { return g->kh == 1 && g->kw == 1 && g->pad == 0; }
void ct__s2_pointwise_im2col(const ct__s2_geom *g, const float *x, float *col, int64_t ld);
void ct__s2_pointwise_col2im(const ct__s2_geom *g, const float *col, int64_t ld, float *dx, bool fresh);

#endif

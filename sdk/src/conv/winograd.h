/* Winograd F(4x4,3x3) / F(2x2,3x3) convolution for 3x3 stride-1 pad-1
 * kernels (internal).
 *
 * Used by conv2d.c for the 3x3 "same" convolutions of a ResNet body:
 * F(4x4,3x3) needs 36 instead of 144 multiplications per 4x4 output tile
 * and channel pair (4x fewer), F(2x2,3x3) 16 instead of 36 (2.25x), at the
 * cost of cheap transforms. All three passes (forward, data gradient,
 * weight gradient) are Winograd; winograd.c's header says which tile
 * size is used when (the engine option wino_tile, CT_WINO_TILE=2|4,
 * forces it). */
#ifndef CT_CONV_WINOGRAD_H
#define CT_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/tensor.h"

/* Compiled once per SIMD level (core/kernels.h): the level's names. */
#if defined(CT__SIMD_LEVEL)
#include "core/kernel_level.h"
#define ct__wino_forward CT__LEVEL_NAME(ct__wino_forward)
#define ct__wino_backward CT__LEVEL_NAME(ct__wino_backward)
#endif

/* Minimum input channels for Winograd by default: below it the 16 GEMMs
 * have too small an inner dimension and the transforms dominate. */
#ifndef CT__WINO_MIN_C
#define CT__WINO_MIN_C 16
#endif

/* Whether conv2d.c should use Winograd for this convolution: 3x3, stride
 * 1, pad 1, and enough channels (CT__WINO_MIN_C) that the 16 small GEMMs
 * are worth it. The graph's engine option conv_algo (CT_CONV_ALGO in the
 * program's environment) can force the choice (winograd still only for
 * 3x3 stride 1 pad 1), for A/B tests. The same at every SIMD level. */
static inline bool ct__wino_use(const ct_graph *g, int64_t c, int64_t o, int64_t kh, int64_t kw, int stride,
                                int pad) {
    (void)o;
    if (kh != 3 || kw != 3 || stride != 1 || pad != 1) return false;
    ct_conv_algo algo = ct_graph_engine(g)->conv_algo;
    if (algo == CT_CONV_ALGO_IM2COL) return false;
    if (algo == CT_CONV_ALGO_WINOGRAD) return true;
    return c >= CT__WINO_MIN_C;
}

/* y (N,O,H,W) = conv(x (N,C,H,W), w (O,C,3,3)) + b (b may be NULL).
 * Scratch comes from g's arena. Returns false when an allocation failed
 * (the graph's sticky error is then set). */
bool ct__wino_forward(ct_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, const float *x,
                      const float *wt, const float *b, float *y);

/* Gradients of the above, given dy (N,O,H,W):
 *  dx (may be NULL): dx = dX when dx_fresh, else dx += dX;
 *  dw (may be NULL): dw += dW.
 * Results do not depend on the thread count (fixed reduction order). */
bool ct__wino_backward(ct_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, const float *x,
                       const float *wt, const float *dy, float *dx, bool dx_fresh, float *dw);

#endif

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

/* Whether conv2d.c should use Winograd for this convolution: 3x3, stride
 * 1, pad 1, and enough channels (CT__WINO_MIN_C) that the 16 small GEMMs
 * are worth it. The graph's engine option conv_algo (CT_CONV_ALGO in the
 * program's environment) can force the choice (winograd still only for
 * 3x3 stride 1 pad 1), for A/B tests. */
bool ct__wino_use(const ct_graph *g, int64_t c, int64_t o, int64_t kh, int64_t kw, int stride, int pad);

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

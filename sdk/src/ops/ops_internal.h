/* Small helpers shared by the op files of libcontrast (not installed). */
#ifndef CT_OPS_INTERNAL_H
#define CT_OPS_INTERNAL_H

#include <stdio.h>
#include <string.h>

#include "contrast/ops.h"
#include "contrast/threadpool.h"

/* True when backward must produce a gradient for t. */
static inline bool ct__needs(const ct_tensor *t) { return t && (t->flags & CT_TENSOR_REQUIRES_GRAD); }

/* "[2, 3]" formatting into a caller's stack buffer, for error messages. */
#define CT__SHAPE(t, buf) ct_shape_str((t), (buf), sizeof(buf))

/* Split a loop over [0, n) on the graph's pool (ct_graph_pool) when it is
 * big enough to pay for the fork-join (measured: below ~64K floats a serial
 * pass is faster). */
#define CT__PAR_GRAIN ((int64_t)1 << 16)
static inline void ct__parallel(const ct_graph *g, int64_t n, int64_t grain, ct_range_fn fn, void *ctx) {
    if (n < 2 * grain) {
        fn(ctx, 0, n, 0);
        return;
    }
    ct_parallel_for(ct_graph_pool(g), n, grain, fn, ctx);
}

/* Copy a small caller array into the arena (callers may free theirs before
 * backward runs). */
static inline void *ct__arena_copy(ct_graph *g, const void *src, size_t bytes) {
    void *dst = ct_graph_alloc(g, bytes);
    if (dst && bytes) memcpy(dst, src, bytes);
    return dst;
}

#endif

/* contrast SDK — engine options: what a graph's ops may use besides their
 * inputs (ABI 1.2).
 *
 * Ops read no process-wide state: the thread pool for their parallel loops
 * and the algorithm overrides travel with the graph (ct_graph_set_engine in
 * tensor.h). A program reads the overrides from the environment once, at
 * start-up (ct_engine_opts_from_env), and hands the same options to every
 * graph it makes; two graphs of one process can use different pools. */
#ifndef CONTRAST_ENGINE_H
#define CONTRAST_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How 3x3 stride-1 pad-1 convolutions are computed. */
typedef enum ct_conv_algo {
    CT_CONV_ALGO_AUTO = 0,     /* Winograd from 16 input channels, im2col below */
    CT_CONV_ALGO_IM2COL = 1,   /* always im2col + GEMM */
    CT_CONV_ALGO_WINOGRAD = 2, /* always Winograd (where the kernel allows it) */
} ct_conv_algo;

/* Options of a graph's ops. Zero-initialised fields mean "automatic", except
 * wino_du_transposed (use ct_engine_opts_init). The tail is reserved so
 * the struct keeps its size within ABI major 1. */
typedef struct ct_engine_opts {
    ct_threadpool *pool;       /* borrowed; NULL: ops run serially */
    ct_conv_algo conv_algo;    /* CT_CONV_ALGO env: auto | im2col | winograd */
    int wino_tile;             /* CT_WINO_TILE env: 0 per layer, 2 or 4 forced */
    int64_t wino_chunk_floats; /* CT_WINO_CHUNK_FLOATS env: 0 automatic, else exactly this chunk size */
    int wino_du_transposed;    /* CT_WINO_DU_T env: -1 automatic, 0 or 1 forced weight-gradient layout */
    /* Since 1.2 (synchronised batch norm in a data-parallel job): sum n
     * doubles in place over every process of the job, each process
     * getting the same sums; called from the thread that runs the op.
     * When set, batch norm in training mode computes its statistics (and
     * in backward the sums of its gradient) over every process's batch;
     * NULL: over this graph's batch only. A non-CT_OK return fails the op.
     * The host sets it around the encoder's forward only (the heads see
     * rows already gathered from every process). */
    ct_status (*allreduce_sum)(void *ctx, double *values, size_t n);
    void *allreduce_ctx;       /* first argument of allreduce_sum */
    /* This process's index in the job (0: the first). Batch norm centres
     * its sums on process 0's first element of each channel, as one
     * process with the whole batch would, so the statistics match it to
     * the rounding of double sums. */
    int allreduce_rank;
    uint32_t reserved[3];      /* zero */
} ct_engine_opts;

/* Defaults: no pool, every choice automatic. */
void ct_engine_opts_init(ct_engine_opts *o);

/* Read the overrides (CT_CONV_ALGO, CT_WINO_TILE, CT_WINO_CHUNK_FLOATS,
 * CT_WINO_DU_T) from the environment into o, leaving o->pool alone. Unset
 * variables keep o's values. A malformed value is CT_ERR_CONFIG with a
 * message naming the variable and the values it takes. Call once at
 * start-up, not per graph or per op. */
ct_status ct_engine_opts_from_env(ct_engine_opts *o, ct_error *err);

#ifdef __cplusplus
}
#endif
#endif

/* The per-channel loops of batch normalisation (ops/norm.c): statistics,
 * normalisation and the fused ReLU / residual join, forward and backward.
 * A kernel file, compiled once per SIMD level (core/kernels.h); norm.c
 * reaches the three ranges through the graph's kernel table. Internal. */
#ifndef CT_OPS_NORM_KERNELS_H
#define CT_OPS_NORM_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* Compiled once per SIMD level: the level's names. */
#if defined(CT__SIMD_LEVEL)
#include "core/kernel_level.h"
#define ct__bn_fwd_range CT__LEVEL_NAME(ct__bn_fwd_range)
#define ct__bn_bwd_range CT__LEVEL_NAME(ct__bn_bwd_range)
#define ct__bn_sync_sum_range CT__LEVEL_NAME(ct__bn_sync_sum_range)
#endif

typedef struct ct__bn_args {
    const float *x, *gamma, *beta;
    float *y;
    float *mean, *invstd; /* per channel, written in training mode */
    const float *rmean, *rvar;
    float *run_mean, *run_var; /* updated in training mode when non-NULL */
    float momentum, eps;
    int64_t n, c, s; /* batch, channels, spatial size */
    bool train, relu;
    const float *res; /* residual join: y = relu(bn(x) + res); NULL otherwise */
    /* backward */
    const float *dy;
    float *dx, *dgamma, *dbeta;
    bool dx_fresh; /* dx uninitialised: write instead of accumulate */
    float *dres;   /* residual join: the residual's gradient, or NULL */
    bool dres_fresh;
    /* synchronised batch norm */
    bool stats_given;  /* forward: mean/invstd (and running stats) already set */
    int bwd_phase;     /* 0: both passes; 1: pass 1 into sums only; 2: pass 2 from sums */
    double *sums;      /* per channel (sum, second sum): forward statistics or backward sums */
    double m_total;    /* elements per channel over every process (0: this batch's) */
} ct__bn_args;

/* ct_range_fn over channels [begin, end) of the ct__bn_args ctx: forward
 * (statistics in training mode, running ones otherwise; y, mean, invstd,
 * running statistics) and backward (dgamma, dbeta, dx, the residual's
 * gradient). Each channel is one thread's, in a fixed order, so results
 * do not depend on the thread count. */
void ct__bn_fwd_range(void *ctx, int64_t begin, int64_t end, int worker);
void ct__bn_bwd_range(void *ctx, int64_t begin, int64_t end, int worker);

/* Synchronised batch norm (ops/norm.c): for channels [begin, end), the
 * sums of x - shift and of its squares over this process's batch into
 * sums[2c] and sums[2c + 1], the shift being sums[2C + c] (process 0's
 * first element of the channel). */
void ct__bn_sync_sum_range(void *ctx, int64_t begin, int64_t end, int worker);

#endif

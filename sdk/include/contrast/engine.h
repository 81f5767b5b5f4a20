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

#include <stdbool.h>
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

/* Instruction-set level of the kernels whose speed depends on it (the
 * Winograd and im2col convolutions, batch norm). A portable x86-64 build
 * holds all three levels and picks the best one the processor runs, once,
 * at run time; a build made with CONTRAST_NATIVE (-march=native) or for
 * another processor family holds only its own. Every level computes the
 * same functions; results agree to float rounding, not bit for bit (the
 * vector kernels fuse multiply-adds and sum in another order, and where
 * the AVX-512 transforms apply Winograd takes 4x4 tiles by default). */
typedef enum ct_simd_level {
    CT_SIMD_AUTO = 0,    /* the best level available (ct_simd_best) */
    CT_SIMD_GENERIC = 1, /* portable C (x86-64 baseline: SSE2) */
    CT_SIMD_AVX2 = 2,    /* x86-64-v3: AVX2, FMA, BMI2, F16C */
    CT_SIMD_AVX512 = 3,  /* x86-64-v4: AVX-512 F, BW, CD, DQ, VL */
} ct_simd_level;

/* Arithmetic of the convolutions and matrix products (conv2d's im2col and
 * 1x1 paths, conv3d, linear, matmul; forward and both backward products).
 * CT_PRECISION_BF16 rounds their operands to bfloat16 (8 significant bits,
 * float32's exponent range; round to nearest even) and sums the products in
 * float32; weights, activations and gradients stay float32 tensors
 * (float32 master weights), and batch norm, group norm, the losses and the
 * Winograd convolutions (3x3 stride-1 layers with >= 16 channels, already
 * 4x fewer multiplications) stay float32. It runs on AVX512-BF16
 * (vdpbf16ps); AMX tiles are not used (no kernel for them yet). Where the
 * processor, the build or the kernel level (CT_SIMD below avx512) lacks
 * it, ct_engine_precision answers float32 and says so once per process on
 * stderr. */
typedef enum ct_precision {
    CT_PRECISION_FP32 = 0, /* float32 throughout (the default) */
    CT_PRECISION_BF16 = 1, /* bfloat16 products, float32 sums (see above) */
} ct_precision;

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
    ct_simd_level simd;        /* CT_SIMD env: auto | generic | avx2 | avx512 (ABI 1.2; see ct_engine_simd) */
    ct_precision precision;    /* products in float32 or bfloat16 (ABI 1.2; see ct_engine_precision) */
    uint32_t reserved[1];      /* zero */
} ct_engine_opts;

/* Defaults: no pool, every choice automatic. */
void ct_engine_opts_init(ct_engine_opts *o);

/* Read the overrides (CT_CONV_ALGO, CT_WINO_TILE, CT_WINO_CHUNK_FLOATS,
 * CT_WINO_DU_T, CT_SIMD) from the environment into o, leaving o->pool
 * alone. Unset variables keep o's values. A malformed value is
 * CT_ERR_CONFIG with a message naming the variable and the values it
 * takes; so is a CT_SIMD level this library or this processor lacks (the
 * message says which levels are available). Call once at start-up, not
 * per graph or per op. */
ct_status ct_engine_opts_from_env(ct_engine_opts *o, ct_error *err);

/* The kernel level the ops of a graph with options o use: o->simd when it
 * is available (ct_simd_available), the best level for CT_SIMD_AUTO (or o
 * NULL). A level set directly in the struct that is not available falls
 * to the best available level below it (ct_engine_opts_from_env refuses
 * it instead), so no op ever runs instructions the processor lacks. */
ct_simd_level ct_engine_simd(const ct_engine_opts *o);

/* "auto", "generic", "avx2", "avx512" ("?" for other values). Static. */
const char *ct_simd_name(ct_simd_level level);

/* Whether this library holds the kernels of `level` (the portable x86-64
 * build: all three; CONTRAST_NATIVE and other processors: one). */
bool ct_simd_built(ct_simd_level level);

/* Whether this processor and operating system run `level`'s instructions
 * (cpuid, and for the vector registers the state the OS saves, XCR0).
 * CT_SIMD_GENERIC: always. Detected once. */
bool ct_simd_cpu(ct_simd_level level);

/* Built and run by this processor. CT_SIMD_AUTO: true. */
bool ct_simd_available(ct_simd_level level);

/* The highest available level: what CT_SIMD_AUTO means. */
ct_simd_level ct_simd_best(void);

/* Whether bfloat16 products run here: this library holds the AVX512-BF16
 * kernel and the processor and OS run AVX512-BF16 (cpuid leaf 7.1) with
 * the AVX-512 level. Detected once. */
bool ct_bf16_available(void);

/* The precision the ops of a graph with options o compute in: o->precision
 * when it runs here (CT_PRECISION_BF16 needs ct_bf16_available() and the
 * kernel level ct_engine_simd(o) to be avx512), else CT_PRECISION_FP32;
 * the first time bf16 is asked for and cannot run, one line on stderr says
 * why and that float32 is used. NULL: float32. */
ct_precision ct_engine_precision(const ct_engine_opts *o);

/* "fp32", "bf16" ("?" for other values): the names of train.precision.
 * Static. */
const char *ct_precision_name(ct_precision p);

#ifdef __cplusplus
}
#endif
#endif

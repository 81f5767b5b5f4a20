/* The SIMD kernel table (internal): the kernels whose speed depends on the
 * instruction set, compiled once per level and chosen at run time.
 *
 * Why: a build that is compiled with -march=native dies with SIGILL on an
 * older processor and cannot run under valgrind, which lacks AVX-512. As
 * OpenBLAS (DYNAMIC_ARCH) and oneDNN do, the default x86-64 build compiles
 * the kernel files below three times, at the x86-64 baseline,
 * x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512), and the rest of the
 * library at the baseline; each graph's ops take the table of the level its
 * engine options name (ct_engine_simd: the best one the processor runs
 * unless CT_SIMD says otherwise). The kernel files' own `#if
 * defined(__AVX512F__)` paths are thus the AVX-512 kernels in the avx512
 * copy and the portable code in the others, and the compiler vectorises
 * their plain loops for each level as -march=native would: on a given
 * processor the portable build runs the kernels a native build would. With
 * CONTRAST_NATIVE, or off x86-64, the files are compiled once with the
 * build's own flags (one level, named by what those flags enable).
 *
 * The kernel files (sdk/CMakeLists.txt, CONTRAST_KERNEL_SOURCES):
 * conv/winograd.c, winograd_f2.c, winograd_f4.c, winograd_tile.c,
 * conv/im2col.c, conv/stride2.c, ops/norm_kernels.c and core/kernels.c
 * (which fills the table). Each copy is compiled with CT__SIMD_LEVEL set to
 * its level's name; their headers then rename every external function with
 * CT__LEVEL_NAME (ct__im2col_img -> ct__im2col_img_avx2), as zlib's
 * Z_PREFIX renames its symbols, so the copies link into one library. Code
 * outside the kernel files calls them only through the table (the plain
 * names do not exist, so a direct call fails to link).
 *
 * The bfloat16 GEMM (gemm/gemm_bf16.c) is not in this table: it needs
 * AVX512-BF16, which no psABI level includes, so it is compiled once with
 * -mavx512bf16 and chosen by its own cpuid bit (gemm/gemm.c); a graph whose
 * level is below avx512 never runs it. */
#ifndef CT_CORE_KERNELS_H
#define CT_CORE_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/engine.h"
#include "contrast/tensor.h"
#include "contrast/threadpool.h"
#include "conv/im2col.h"

#include "core/kernel_level.h"

/* One level's kernels (signatures and contracts in the named headers). */
typedef struct ct__kernels {
    ct_simd_level level;
    /* conv/winograd.h */
    bool (*wino_forward)(ct_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, const float *x,
                         const float *wt, const float *b, float *y);
    bool (*wino_backward)(ct_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, const float *x,
                          const float *wt, const float *dy, float *dx, bool dx_fresh, float *dw);
    /* conv/im2col.h */
    void (*im2col_img)(const ct__conv_geom *q, const float *x, float *col, int64_t ld, float *ph);
    void (*col2im_img)(const ct__conv_geom *q, const float *col, int64_t ld, float *dx, bool fresh, float *ph);
    /* ops/norm_kernels.h: ranges of channels over a ct__bn_args */
    ct_range_fn bn_forward, bn_backward, bn_sync_sums;
} ct__kernels;

/* The kernels of `level` (ct_engine_simd's answer: an available level). */
const ct__kernels *ct__kernels_at(ct_simd_level level);

/* The kernels g's ops use: those of ct_engine_simd(ct_graph_engine(g)). */
const ct__kernels *ct__kernels_of(const ct_graph *g);

#endif

/* One level's kernel table (core/kernels.h). A kernel file: compiled once
 * per SIMD level, with the level's names and instruction-set flags, so the
 * functions named here are that level's copies. */
#include "core/kernels.h"

#include "conv/im2col.h"
#include "conv/winograd.h"
#include "ops/norm_kernels.h"

/* The level the flags of this copy allow (the portable build's copies are
 * compiled with the baseline, -march=x86-64-v3 and -march=x86-64-v4; a
 * CONTRAST_NATIVE copy with whatever the build machine has). */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512CD__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__)
#define CT__THIS_LEVEL CT_SIMD_AVX512
#elif defined(__AVX2__) && defined(__FMA__) && defined(__BMI2__) && defined(__F16C__)
#define CT__THIS_LEVEL CT_SIMD_AVX2
#else
#define CT__THIS_LEVEL CT_SIMD_GENERIC
#endif

const ct__kernels CT__LEVEL_NAME(ct__kernels) = {
    .level = CT__THIS_LEVEL,
    .wino_forward = ct__wino_forward,
    .wino_backward = ct__wino_backward,
    .im2col_img = ct__im2col_img,
    .col2im_img = ct__col2im_img,
    .bn_forward = ct__bn_fwd_range,
    .bn_backward = ct__bn_bwd_range,
    .bn_sync_sums = ct__bn_sync_sum_range,
};

/* bfloat16 matrix products with float32 accumulation (internal): the
 * kernel behind the engine option precision = CT_PRECISION_BF16
 * (contrast/engine.h), called through ct__gemm (gemm/gemm.h).
 *
 * Inputs and outputs are float32; the operands are rounded to bfloat16
 * (round to nearest, ties to even) while they are packed into panels, the
 * products are summed in float32 (AVX512-BF16 vdpbf16ps: two bf16
 * products added to a float32 lane per instruction), and C is float32.
 * bfloat16 keeps float32's exponent and 8 significant bits (7 stored), so
 * each rounded operand has a relative error of at most 2^-8 and a product
 * of two at most 2^-7 + 2^-16; the float32 sums add what an sgemm adds.
 * Like vdpbf16ps, the conversion treats float32 subnormals as zero.
 *
 * Packed layout (why): vdpbf16ps multiplies pairs of bf16, so the inner
 * dimension k is taken two at a time: a packed A panel holds MR rows as
 * [k/2][MR] 32-bit pairs (A[i][k], A[i][k+1]), one pair broadcast per
 * row; a packed B panel holds NR columns as [k/2][NR] pairs (B[k][j],
 * B[k+1][j]), two vectors per k pair. An odd k is padded with a zero.
 *
 * This file is compiled once, with -mavx512bf16 on top of x86-64-v4 in the
 * portable x86-64 build (sdk/CMakeLists.txt); callers reach the kernel only
 * when ct__bf16_built() and the processor has AVX512-BF16 (gemm.c). */
#ifndef CT_GEMM_GEMM_BF16_H
#define CT_GEMM_GEMM_BF16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CT__BF16_MR 8  /* rows of an A panel (the kernel's rows) */
#define CT__BF16_NR 32 /* columns of a B panel (two 16-float vectors) */

/* Bytes of packing scratch ct__gemm_bf16 needs for an (m x k) (k x n)
 * product: both operands packed whole, plus alignment slack. */
static inline size_t ct__bf16_pack_bytes(int64_t m, int64_t n, int64_t k) {
    const int64_t kp = (k + 1) / 2;
    const int64_t mp = (m + CT__BF16_MR - 1) / CT__BF16_MR * CT__BF16_MR;
    const int64_t np = (n + CT__BF16_NR - 1) / CT__BF16_NR * CT__BF16_NR;
    return (size_t)((mp + np) * kp) * sizeof(uint32_t) + 64;
}

/* The bf16 bits of x, rounded to nearest, ties to even (the portable
 * reference of what the kernel's conversion does; NaN stays a quiet NaN,
 * subnormals become zero of the same sign as in vcvtne2ps2bf16). */
static inline uint16_t ct__bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN */
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);      /* zero, subnormal */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* The float32 value of bf16 bits. */
static inline float ct__bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Whether this library holds the AVX512-BF16 kernel (the compiler took
 * -mavx512bf16, or a CONTRAST_NATIVE build on a processor that has it).
 * Defined in gemm.c. */
bool ct__bf16_built(void);

/* C (m x n, row stride ldc) = alpha * op(A) op(B) + beta * C, row-major as
 * cblas_sgemm: op(A) is m x k (A stored k x m, lda, when ta), op(B) k x n
 * (B stored n x k, ldb, when tb). beta 0 never reads C. pack: scratch of
 * ct__bf16_pack_bytes(m, n, k) bytes, any alignment. Single-threaded.
 * Only call when ct__bf16_built() and the processor has AVX512-BF16. */
void ct__gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *pack);

/* out[i] = the bf16 bits of x[i] as the kernel's packing rounds them (the
 * hardware conversion), for tests of the rounding. Same preconditions. */
void ct__bf16_convert(const float *x, uint16_t *out, int64_t n);

#endif

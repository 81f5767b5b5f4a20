/* float32 GEMM of our own through AVX-512 FMA (internal): what ct__gemm
 * (gemm/gemm.h) runs in float32 when the graph's kernel level is avx512,
 * instead of OpenBLAS, whose kernel choice an explicit OPENBLAS_CORETYPE
 * (e.g. Haswell: AVX2) can hold below what the processor runs.
 *
 * Packed layout (why): both operands are packed once per call into panels
 * so the microkernel reads them with unit stride whatever the transposes:
 * an A panel holds MR rows as [k][MR] floats (one broadcast per row and
 * k), a B panel NR columns as [k][NR] floats (two vectors per k). Tails
 * are padded with zeros and never stored back.
 *
 * This file's kernel is compiled once, with -march=x86-64-v4 in the
 * portable x86-64 build (sdk/CMakeLists.txt); gemm.c calls it only when
 * ct__sgemm_built() and the graph's kernel level is avx512. */
#ifndef CT_GEMM_SGEMM_AVX512_H
#define CT_GEMM_SGEMM_AVX512_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CT__SGEMM_MR 8  /* rows of an A panel (the microkernel's rows) */
#define CT__SGEMM_NR 32 /* columns of a B panel (two 16-float vectors) */

/* Bytes of packing scratch ct__sgemm_avx512 needs for an (m x k)(k x n)
 * product: both operands packed whole, plus alignment slack. */
static inline size_t ct__sgemm_pack_bytes(int64_t m, int64_t n, int64_t k) {
    const int64_t mp = (m + CT__SGEMM_MR - 1) / CT__SGEMM_MR * CT__SGEMM_MR;
    const int64_t np = (n + CT__SGEMM_NR - 1) / CT__SGEMM_NR * CT__SGEMM_NR;
    return (size_t)((mp + np) * (k > 0 ? k : 1)) * sizeof(float) + 64;
}

/* Whether this library holds the kernel (portable x86-64 build with
 * x86-64-v4, or a CONTRAST_NATIVE build whose flags include AVX-512F).
 * Defined in gemm.c. */
bool ct__sgemm_built(void);

/* C (m x n, row stride ldc) = alpha * op(A) op(B) + beta * C, row-major as
 * cblas_sgemm: op(A) is m x k (A stored k x m, lda, when ta), op(B) k x n
 * (B stored n x k, ldb, when tb). beta 0 never reads C. pack: scratch of
 * ct__sgemm_pack_bytes(m, n, k) bytes, any alignment. Single-threaded.
 * Only call when ct__sgemm_built() and the processor runs AVX-512. */
void ct__sgemm_avx512(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *pack);

#endif

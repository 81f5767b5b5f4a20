/* The matrix products of the conv and linear ops (internal): float32
 * OpenBLAS sgemm, or the bfloat16 kernel (gemm/gemm_bf16.h) when the
 * graph's engine options ask for CT_PRECISION_BF16 and it runs here
 * (ct_engine_precision, contrast/engine.h).
 *
 * A caller sizes packing scratch with ct__gemm_pack_bytes for its largest
 * product (0 bytes in float32) and hands it to ct__gemm: NULL scratch means
 * float32, so the precision is decided once per op, not per product. */
#ifndef CT_GEMM_GEMM_H
#define CT_GEMM_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contrast/engine.h"
#include "contrast/tensor.h"
#include "gemm/gemm_bf16.h"

/* The precision g's ops compute their products in (ct_engine_precision of
 * its engine options). */
ct_precision ct__gemm_precision(const ct_graph *g);

/* Packing scratch for an (m x k)(k x n) product in precision p: 0 for
 * float32. */
static inline size_t ct__gemm_pack_bytes(ct_precision p, int64_t m, int64_t n, int64_t k) {
    return p == CT_PRECISION_BF16 ? ct__bf16_pack_bytes(m, n, k) : 0;
}

/* C (m x n, ldc) = alpha op(A) op(B) + beta C, row-major as cblas_sgemm
 * (lda, ldb: the stored row lengths). pack NULL: float32 sgemm (OpenBLAS,
 * its own threads as configured); else the bfloat16 kernel with pack as
 * its scratch of ct__gemm_pack_bytes(CT_PRECISION_BF16, m, n, k) bytes. */
void ct__gemm(void *pack, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif

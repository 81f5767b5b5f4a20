/* The matrix products of the conv and linear ops (internal): the bfloat16
 * kernel (gemm/gemm_bf16.h) when the graph's engine options ask for
 * CT_PRECISION_BF16 and it runs here (ct_engine_precision,
 * contrast/engine.h); else float32, through our AVX-512 kernel
 * (gemm/sgemm_avx512.h) when the graph's kernel level is avx512, through
 * OpenBLAS sgemm otherwise, or always with CT_GEMM=openblas in the
 * environment (read once; for A/B measurements).
 *
 * A caller asks ct__gemm_kind_of(g) once per op, sizes packing scratch with
 * ct__gemm_pack_bytes for its largest product (0 bytes for OpenBLAS),
 * stamps each worker's scratch with ct__gemm_pack_init and hands it to
 * ct__gemm: NULL scratch means OpenBLAS, so the kernel is decided once per
 * op, not per product (ct__gemm may still send a shape our float32 kernel
 * loses on to OpenBLAS). */
#ifndef CT_GEMM_GEMM_H
#define CT_GEMM_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contrast/engine.h"
#include "contrast/tensor.h"
#include "gemm/gemm_bf16.h"
#include "gemm/sgemm_avx512.h"

/* Which kernel runs an op's products (see the header). */
typedef enum ct__gemm_kind {
    CT__GEMM_OPENBLAS = 0, /* float32 cblas_sgemm */
    CT__GEMM_F32_AVX512,   /* float32, gemm/sgemm_avx512.h */
    CT__GEMM_BF16,         /* bfloat16 products, float32 sums, gemm/gemm_bf16.h */
} ct__gemm_kind;

/* The kernel g's ops compute their products with. */
ct__gemm_kind ct__gemm_kind_of(const ct_graph *g);

/* The kernel engine options o select (ct__gemm_kind_of's rule). */
ct__gemm_kind ct__gemm_kind_opts(const ct_engine_opts *o);

/* The float32 kernel of g (of options o): what products that stay float32
 * whatever the precision (Winograd's) run with. */
ct__gemm_kind ct__gemm_f32_kind_of(const ct_graph *g);
ct__gemm_kind ct__gemm_f32_kind_opts(const ct_engine_opts *o);

/* Packing scratch header: the kernel, so ct__gemm needs no other argument. */
#define CT__GEMM_PACK_HEAD 64

/* Packing scratch for an (m x k)(k x n) product with kernel kind: 0 for
 * OpenBLAS. */
static inline size_t ct__gemm_pack_bytes(ct__gemm_kind kind, int64_t m, int64_t n, int64_t k) {
    switch (kind) {
    case CT__GEMM_BF16: return CT__GEMM_PACK_HEAD + ct__bf16_pack_bytes(m, n, k);
    case CT__GEMM_F32_AVX512: return CT__GEMM_PACK_HEAD + ct__sgemm_pack_bytes(m, n, k);
    case CT__GEMM_OPENBLAS: break;
    }
    return 0;
}

/* Stamp scratch of ct__gemm_pack_bytes(kind, ...) bytes (at least 4-byte
 * aligned) with kind before handing it to ct__gemm. */
static inline void ct__gemm_pack_init(void *pack, ct__gemm_kind kind) { *(int32_t *)pack = (int32_t)kind; }

/* Whether ct__gemm gives an (m x k)(k x n) product stamped for our float32
 * kernel to it rather than to OpenBLAS (by measurement, see gemm.c). */
bool ct__sgemm_takes(int64_t m, int64_t n, int64_t k);

/* C (m x n, ldc) = alpha op(A) op(B) + beta C, row-major as cblas_sgemm
 * (lda, ldb: the stored row lengths). pack NULL: float32 sgemm (OpenBLAS,
 * its own threads as configured); else the kernel it was stamped with
 * (ct__gemm_pack_init), pack being its scratch of at least
 * ct__gemm_pack_bytes(kind, m, n, k) bytes. */
void ct__gemm(void *pack, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif

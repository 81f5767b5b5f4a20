/* float32 GEMM through AVX-512 FMA (see gemm/sgemm_avx512.h for the
 * contract and the packed layout).
 *
 * Shape of the work (why):
 *  - Both operands are packed whole, once per call, as gemm_bf16.c does:
 *    the callers' products are small (a conv group's weights 32-128 x
 *    288-1152, its columns 288-1152 x ~800), so packing costs O(k(m+n))
 *    against the product's O(mnk) and the scratch stays under ~2 MB.
 *  - Microkernel 8 x 32: 16 zmm accumulators (4-cycle FMA latency at two
 *    FMAs a cycle needs at least 8 independent chains), per k 2 vector
 *    loads of B and 8 broadcast FMAs from A (embedded {1to16} broadcasts),
 *    which keeps the load ports under their two 512-bit loads a cycle.
 *  - k is cut into blocks of at most CT__SGEMM_KC so that one B panel
 *    (32 x KC floats, 32 KB) stays in the 48 KB L1 while A panels pass it;
 *    C takes beta on the first block and accumulates after it.
 *  - The loop over panels keeps the smaller operand's whole k block (the
 *    one that is swept again for every panel of the other) in L2: A's when
 *    m <= n (the forward and data-gradient products), B's otherwise (the
 *    weight gradients, m = K up to 1152 against n = O).
 *  - An operand whose k runs along memory rows (A not transposed, B
 *    transposed) is packed 16 rows x 16 k at a time through an in-register
 *    16 x 16 transpose; the other kind is copied a row of memory at a time. */
#include "gemm/sgemm_avx512.h"

#include <cblas.h>

#if defined(__AVX512F__)
#include <immintrin.h>

#include "gemm/transpose16.h"

#define MR CT__SGEMM_MR
#define NR CT__SGEMM_NR
#define CT__SGEMM_KC 256

/* First n lanes of 16. */
static inline __mmask16 ct__lanes16(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* Pack an operand whose element (kk, i) is src[kk*ld + i] into `rows`
 * rows of R-row panels ([k][R] floats each, R = 8 or 32). */
static void ct__sg_pack_kmajor(const float *src, int64_t ld, int64_t rows, int64_t k, int R, float *dst) {
    const int64_t panels = (rows + R - 1) / R;
    for (int64_t p = 0; p < panels; p++) {
        float *d = dst + p * k * R;
        for (int h = 0; h < R; h += 16) {
            const int64_t i0 = p * R + h;
            const __mmask16 m = ct__lanes16(rows - i0) & (R == 8 ? 0xff : 0xffff);
            const float *s = src + i0;
            if (R == 8) {
                for (int64_t kk = 0; kk < k; kk++, s += ld)
                    _mm256_storeu_ps(d + kk * 8, _mm512_castps512_ps256(_mm512_maskz_loadu_ps(m, s)));
            } else {
                for (int64_t kk = 0; kk < k; kk++, s += ld) _mm512_storeu_ps(d + kk * R + h, _mm512_maskz_loadu_ps(m, s));
            }
        }
    }
}

/* Transpose 16 x 16 32-bit lanes: r[i] lane j -> r[j] lane i. */
static inline void ct__sg_transpose16(__m512 f[16]) {
    __m512i r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_castps_si512(f[i]);
    ct__transpose16(r);
    for (int i = 0; i < 16; i++) f[i] = _mm512_castsi512_ps(r[i]);
}

/* Store rows i0..i0+15 of column kk of a buffer of R-row panels (i0 a
 * multiple of 16, or of 8 when R is 8), skipping a panel past `panels`. */
static inline void ct__sg_put16(float *dst, int64_t k, int R, int64_t panels, int64_t i0, int64_t kk, __m512 v) {
    if (R == 8) {
        const int64_t p = i0 / 8;
        _mm256_storeu_ps(dst + (p * k + kk) * 8, _mm512_castps512_ps256(v));
        if (p + 1 < panels) _mm256_storeu_ps(dst + ((p + 1) * k + kk) * 8, _mm512_extractf32x8_ps(v, 1));
    } else {
        _mm512_storeu_ps(dst + ((i0 / R) * k + kk) * R + i0 % R, v);
    }
}

/* Pack an operand whose element (kk, i) is src[i*ld + kk] (k along memory
 * rows): 16 rows x 16 k at a time, transposed in registers. */
static void ct__sg_pack_kcontig(const float *src, int64_t ld, int64_t rows, int64_t k, int R, float *dst) {
    const int64_t panels = (rows + R - 1) / R, padded = panels * R;
    for (int64_t i0 = 0; i0 < padded; i0 += 16)
        for (int64_t k0 = 0; k0 < k; k0 += 16) {
            const __mmask16 m = ct__lanes16(k - k0);
            __m512 t[16];
            for (int j = 0; j < 16; j++)
                t[j] = i0 + j < rows ? _mm512_maskz_loadu_ps(m, src + (i0 + j) * ld + k0) : _mm512_setzero_ps();
            ct__sg_transpose16(t);
            const int64_t nq = k - k0 < 16 ? k - k0 : 16;
            for (int64_t q = 0; q < nq; q++) ct__sg_put16(dst, k, R, panels, i0, k0 + q, t[q]);
        }
}

/* One 8 x 32 tile over kc steps of k: C rows [0, mr), columns under masks
 * n0 | n1; C = alpha * sum + beta * C (beta 0 never reads C). */
static inline void ct__sg_tile(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t mr,
                               __mmask16 n0, __mmask16 n1, float alpha, float beta) {
    /* Fully unrolled (whatever -mtune says) so the accumulators stay in
     * registers. */
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < kc; kk++, a += MR, b += NR) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512 ar = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        if (r >= mr) break;
        float *cr = c + r * ldc;
        __m512 y0 = _mm512_mul_ps(acc[r][0], va), y1 = _mm512_mul_ps(acc[r][1], va);
        if (beta != 0.0f) {
            y0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(n0, cr), y0);
            y1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(n1, cr + 16), y1);
        }
        _mm512_mask_storeu_ps(cr, n0, y0);
        _mm512_mask_storeu_ps(cr + 16, n1, y1);
    }
}

/* The tiles of one k block [k0, k0 + kc) of the packed operands. */
static void ct__sg_block(int64_t m, int64_t n, int64_t k, int64_t k0, int64_t kc, float alpha, const float *pa,
                         const float *pb, float beta, float *c, int64_t ldc) {
    const int64_t mpan = (m + MR - 1) / MR, npan = (n + NR - 1) / NR;
    const bool a_inner = m <= n; /* sweep the smaller operand (see the header) */
    const int64_t outer = a_inner ? npan : mpan, inner = a_inner ? mpan : npan;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t u = 0; u < inner; u++) {
            const int64_t ip = a_inner ? u : o, jp = a_inner ? o : u;
            const int64_t i0 = ip * MR, j0 = jp * NR;
            ct__sg_tile(kc, pa + (ip * k + k0) * MR, pb + (jp * k + k0) * NR, c + i0 * ldc + j0, ldc, m - i0,
                        ct__lanes16(n - j0), ct__lanes16(n - j0 - 16), alpha, beta);
        }
}

void ct__sgemm_avx512(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *pack) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta C, as sgemm */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    const int64_t mpan = (m + MR - 1) / MR;
    float *pa = (float *)(((uintptr_t)pack + 63) & ~(uintptr_t)63);
    float *pb = pa + mpan * MR * k;
    /* op(A) (i, kk): A[kk*lda + i] when ta, else A[i*lda + kk]. */
    if (ta) ct__sg_pack_kmajor(a, lda, m, k, MR, pa);
    else ct__sg_pack_kcontig(a, lda, m, k, MR, pa);
    /* op(B) (kk, j): B[j*ldb + kk] when tb, else B[kk*ldb + j]. */
    if (tb) ct__sg_pack_kcontig(b, ldb, n, k, NR, pb);
    else ct__sg_pack_kmajor(b, ldb, n, k, NR, pb);
    /* Even k blocks, none much shorter than the others. */
    const int64_t blocks = (k + CT__SGEMM_KC - 1) / CT__SGEMM_KC, kc = (k + blocks - 1) / blocks;
    for (int64_t k0 = 0; k0 < k; k0 += kc)
        ct__sg_block(m, n, k, k0, k - k0 < kc ? k - k0 : kc, alpha, pa, pb, k0 ? 1.0f : beta, c, ldc);
}

#else /* no AVX-512 in this compilation: never called (ct__sgemm_built) */

void ct__sgemm_avx512(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *pack) {
    (void)pack; /* callers check ct__sgemm_built first; OpenBLAS keeps it correct regardless */
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

#endif

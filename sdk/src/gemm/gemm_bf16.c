/* bfloat16 GEMM with float32 accumulation through AVX512-BF16 (see
 * gemm/gemm_bf16.h for the contract and the packed layout).
 *
 * Shape of the work (why):
 *  - Both operands are packed whole, once per call: the callers' products
 *    are small (a conv group's weights 32-128 x 288-1152, its columns
 *    288-1152 x ~800), so a packed B panel (k/2 x 32 pairs, <= 74 KB) sits
 *    in L1/L2 while every A panel streams past it; no k blocking, so the
 *    accumulators stay in registers for the whole inner dimension.
 *  - Microkernel 8 x 32: 16 zmm accumulators, per k pair 2 vector loads of
 *    B, 8 broadcasts of A and 16 vdpbf16ps (each 32 multiply-adds), enough
 *    independent chains to cover the instruction's latency.
 *  - Packing converts to bf16 with vcvtne2ps2bf16 (round to nearest even in
 *    hardware). An operand whose k pairs lie in two rows of memory (B not
 *    transposed, A transposed) is interleaved with one vpermw; one whose k
 *    runs along memory rows (A not transposed, B transposed: the weight
 *    gradients and linear's weights) is converted in 16 x 32 blocks and
 *    transposed as 16 x 16 32-bit pairs in registers. */
#include "gemm/gemm_bf16.h"

#include <cblas.h>

#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define CT__BF16_KERNEL 1
#include <immintrin.h>

#include "gemm/transpose16.h"
#endif

#define MR CT__BF16_MR
#define NR CT__BF16_NR

#if defined(CT__BF16_KERNEL)

/* First n lanes of 16. */
static inline __mmask16 ct__lanes(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* 16 pairs (lo[i], hi[i]) as bf16, lo in the low half of each 32-bit lane. */
static inline __m512i ct__pairs(__m512 lo, __m512 hi) {
    /* cvtne2ps(hi, lo): words 0-15 = bf16(lo), 16-31 = bf16(hi). */
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, h);
}

/* Store 16 pair lanes of rows i0..i0+15 at pair index kp of a packed
 * buffer of R-row panels (R = 8 or 32; i0 a multiple of 16, or of 8 when
 * R is 8), skipping a panel past `panels`. */
static inline void ct__put16(uint32_t *dst, int64_t kpn, int R, int64_t panels, int64_t i0, int64_t kp, __m512i v) {
    if (R == 8) {
        const int64_t p = i0 / 8;
        _mm256_storeu_si256((__m256i *)(dst + (p * kpn + kp) * 8), _mm512_castsi512_si256(v));
        if (p + 1 < panels)
            _mm256_storeu_si256((__m256i *)(dst + ((p + 1) * kpn + kp) * 8), _mm512_extracti64x4_epi64(v, 1));
    } else {
        _mm512_storeu_si512(dst + ((i0 / R) * kpn + kp) * R + i0 % R, v);
    }
}

/* Pack an operand whose element (k, i) is src[k*ld + i] (pairs from two
 * rows of memory) into `rows` rows of R-row panels. */
static void ct__pack_kmajor(const float *src, int64_t ld, int64_t rows, int64_t k, int R, uint32_t *dst) {
    const int64_t kpn = (k + 1) / 2, panels = (rows + R - 1) / R;
    const int step = R < 16 ? R : 16;
    for (int64_t p = 0; p < panels; p++)
        for (int64_t kp = 0; kp < kpn; kp++) {
            const float *r0 = src + 2 * kp * ld, *r1 = r0 + ld;
            const bool has1 = 2 * kp + 1 < k;
            for (int h = 0; h < R; h += step) {
                const int64_t i0 = p * R + h;
                const __mmask16 m = ct__lanes((rows - i0 < step ? rows - i0 : step));
                const __m512 lo = _mm512_maskz_loadu_ps(m, r0 + i0);
                const __m512 hi = has1 ? _mm512_maskz_loadu_ps(m, r1 + i0) : _mm512_setzero_ps();
                const __m512i v = ct__pairs(lo, hi);
                uint32_t *d = dst + (p * kpn + kp) * R + h;
                if (step == 16) _mm512_storeu_si512(d, v);
                else _mm256_storeu_si256((__m256i *)d, _mm512_castsi512_si256(v));
            }
        }
}

/* Pack an operand whose element (k, i) is src[i*ld + k] (k along memory
 * rows): 16 rows x 32 k at a time, converted to 16 x 16 pairs, transposed. */
static void ct__pack_kcontig(const float *src, int64_t ld, int64_t rows, int64_t k, int R, uint32_t *dst) {
    const int64_t kpn = (k + 1) / 2, panels = (rows + R - 1) / R, padded = panels * R;
    for (int64_t i0 = 0; i0 < padded; i0 += 16) {
        for (int64_t k0 = 0; k0 < k; k0 += 32) {
            const __mmask16 m0 = ct__lanes(k - k0), m1 = ct__lanes(k - k0 - 16);
            __m512i t[16];
            for (int j = 0; j < 16; j++) {
                if (i0 + j >= rows) {
                    t[j] = _mm512_setzero_si512();
                    continue;
                }
                const float *s = src + (i0 + j) * ld + k0;
                t[j] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, s + 16), _mm512_maskz_loadu_ps(m0, s));
            }
            ct__transpose16(t);
            const int64_t nq = kpn - k0 / 2 < 16 ? kpn - k0 / 2 : 16;
            for (int64_t q = 0; q < nq; q++) ct__put16(dst, kpn, R, panels, i0, k0 / 2 + q, t[q]);
        }
    }
}

/* One 8 x 32 tile: C rows [0, mr), columns under masks n0 | n1. */
static inline void ct__tile(int64_t kpn, const uint32_t *a, const uint32_t *b, float *c, int64_t ldc, int64_t mr,
                            __mmask16 n0, __mmask16 n1, float alpha, float beta) {
    /* Fully unrolled (whatever -mtune says) so the accumulators stay in
     * registers. */
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t kp = 0; kp < kpn; kp++, a += MR, b += NR) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
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

void ct__gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *pack) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta C, as sgemm */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    const int64_t kpn = (k + 1) / 2, mpan = (m + MR - 1) / MR, npan = (n + NR - 1) / NR;
    uint32_t *pa = (uint32_t *)(((uintptr_t)pack + 63) & ~(uintptr_t)63);
    uint32_t *pb = pa + mpan * MR * kpn;
    /* op(A) (i, kk): A[kk*lda + i] when ta, else A[i*lda + kk]. */
    if (ta) ct__pack_kmajor(a, lda, m, k, MR, pa);
    else ct__pack_kcontig(a, lda, m, k, MR, pa);
    /* op(B) (kk, j): B[j*ldb + kk] when tb, else B[kk*ldb + j]. */
    if (tb) ct__pack_kcontig(b, ldb, n, k, NR, pb);
    else ct__pack_kmajor(b, ldb, n, k, NR, pb);
    for (int64_t jp = 0; jp < npan; jp++) {
        const int64_t j0 = jp * NR;
        const __mmask16 n0 = ct__lanes(n - j0), n1 = ct__lanes(n - j0 - 16);
        const uint32_t *bp = pb + jp * NR * kpn;
        for (int64_t ip = 0; ip < mpan; ip++) {
            const int64_t i0 = ip * MR;
            ct__tile(kpn, pa + ip * MR * kpn, bp, c + i0 * ldc + j0, ldc, m - i0, n0, n1, alpha, beta);
        }
    }
}

void ct__bf16_convert(const float *x, uint16_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 32) {
        const __mmask16 m0 = ct__lanes(n - i), m1 = ct__lanes(n - i - 16);
        const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + i + 16), _mm512_maskz_loadu_ps(m0, x + i));
        const int64_t left = n - i < 32 ? n - i : 32;
        _mm512_mask_storeu_epi16(out + i, left >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << left) - 1u), h);
    }
}

#else /* no AVX512-BF16 compiler support: never called (ct__bf16_built) */

void ct__gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *pack) {
    (void)pack; /* callers check ct__bf16_built first; float32 keeps it correct regardless */
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void ct__bf16_convert(const float *x, uint16_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = ct__bf16_round(x[i]);
}

#endif

/* The float32 AVX-512 GEMM (sdk/src/gemm/sgemm_avx512.h) against a float64
 * reference on sizes around its 8 x 32 tiles and 256-step k blocks, every
 * transpose, beta 0 / 1 / other, rows longer than the matrix (lda > cols);
 * beta 0 never reading C; and ct__gemm's choice of kernel (kernel level,
 * CT_GEMM=openblas, the shapes it leaves to OpenBLAS where OpenBLAS runs
 * AVX-512 kernels itself).
 *
 * The gradient tests (test_ops_grad, test_conv, ...) run the kernel at the
 * default level and OpenBLAS again at CT_SIMD=avx2 / generic (ctest), so
 * both float32 paths meet the same op checks. Where the processor or the
 * build has no AVX-512 the kernel tests return at once, saying so. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_test.h"
#include "gemm/gemm.h"

static void fill(float *p, int64_t n, uint64_t seed) {
    ct_rng r;
    ct_rng_init(&r, seed, 5);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, -1.0f, 1.0f);
}

static bool have_kernel(void) {
    if (ct__sgemm_built() && ct_simd_available(CT_SIMD_AVX512)) return true;
    printf("no AVX-512 kernel here: sgemm kernel checks skipped\n");
    return false;
}

/* Element (i, q) of op(X) where X is stored transposed when t. */
static double at(const float *x, bool t, int64_t ld, int64_t i, int64_t q) {
    return t ? x[q * ld + i] : x[i * ld + q];
}

/* The float32 error bound of one C element: each of the k products and
 * k - 1 sums rounds once (k u |a||b| summed, u = 2^-24; +2 for alpha's
 * product and a fused add's slack), and beta C adds one rounding of its
 * own and one of the final sum. */
static double bound(double s, int64_t k, float alpha, double bc0) {
    const double u = ldexp(1, -24);
    return fabs(alpha) * s * (double)(k + 2) * u * 1.0001 + 2 * fabs(bc0) * u + 1e-30;
}

static void check_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, float beta, int64_t pad) {
    const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = malloc(sizeof(float) * (size_t)(arows * lda)), *b = malloc(sizeof(float) * (size_t)(brows * ldb));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc)), *c0 = malloc(sizeof(float) * (size_t)(m * ldc));
    void *pack = malloc(ct__sgemm_pack_bytes(m, n, k));
    fill(a, arows * lda, (uint64_t)(m * 131 + k));
    fill(b, brows * ldb, (uint64_t)(n * 71 + k));
    fill(c0, m * ldc, 9);
    memcpy(c, c0, sizeof(float) * (size_t)(m * ldc));
    ct__sgemm_avx512(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pack);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double exact = 0, s = 0;
            for (int64_t q = 0; q < k; q++) {
                const double av = at(a, ta, lda, i, q), bv = at(b, !tb, ldb, j, q);
                exact += av * bv, s += fabs(av * bv);
            }
            const double bc0 = beta * (double)c0[i * ldc + j];
            const double want = alpha * exact + bc0, got = c[i * ldc + j];
            const double lim = bound(s, k, alpha, bc0);
            ck_assert_msg(fabs(got - want) <= lim, "%c%c m%lld n%lld k%lld beta %g: C[%lld][%lld] = %.9g, float64 %.9g, bound %.3g",
                          ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m, (long long)n, (long long)k, beta, (long long)i,
                          (long long)j, got, want, lim);
        }
    /* Columns past n (the row padding) are never written. */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = n; j < ldc; j++) ck_assert(c[i * ldc + j] == c0[i * ldc + j]);
    free(a), free(b), free(c), free(c0), free(pack);
}

START_TEST(kernel_matches_float64_on_tile_edges) {
    if (!have_kernel()) return;
    /* Around MR = 8, NR = 32 (and the 16-row transposes of packing), k = 1,
     * k past one 256-step block (257, 600: uneven blocks), m > n and m <= n
     * (the two panel orders). */
    static const int64_t sizes[][3] = {{1, 1, 1},    {1, 33, 7},    {7, 1, 9},     {8, 32, 1},    {9, 33, 3},
                                       {15, 17, 16}, {16, 16, 17},  {17, 65, 33},  {31, 15, 64},  {64, 48, 5},
                                       {5, 100, 77}, {33, 31, 129}, {40, 70, 257}, {70, 40, 600}, {24, 96, 256}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int t = 0; t < 4; t++) {
            const int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
            check_gemm(t & 1, t & 2, m, n, k, 1.0f, 0.0f, 0);
            check_gemm(t & 1, t & 2, m, n, k, 1.0f, 1.0f, 3);
            check_gemm(t & 1, t & 2, m, n, k, -0.5f, 0.25f, 1);
        }
}
END_TEST

START_TEST(kernel_beta_zero_ignores_c_and_k_zero_scales) {
    if (!have_kernel()) return;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {NAN, NAN, NAN, NAN};
    unsigned char pack[4096];
    ct__sgemm_avx512(false, false, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, pack); /* NaN in C must not leak */
    ck_assert(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
    ct__sgemm_avx512(false, false, 2, 2, 0, 1.0f, a, 3, b, 2, 0.5f, c, 2, pack);
    ck_assert(c[0] == 2 && c[1] == 2.5f && c[2] == 5 && c[3] == 5.5f);
    /* Two k blocks with beta 0: the second block adds to the first, C's
     * NaN never read. */
    enum { K = 300 };
    float *x = malloc(sizeof(float) * K), *y = malloc(sizeof(float) * K), z = NAN;
    void *big = malloc(ct__sgemm_pack_bytes(1, 1, K));
    for (int q = 0; q < K; q++) x[q] = 1.0f, y[q] = (float)(q % 3);
    ct__sgemm_avx512(false, false, 1, 1, K, 1.0f, x, K, y, 1, 0.0f, &z, 1, big);
    ck_assert_msg(z == 300.0f, "got %g", z);
    free(x), free(y), free(big);
}
END_TEST

/* ct__gemm through a stamped scratch gives the kernel's own bits on the
 * shapes it takes, and OpenBLAS's on those it leaves (m or k below 16). */
static void check_dispatch(int64_t m, int64_t n, int64_t k, bool ours) {
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c = malloc(sizeof(float) * (size_t)(m * n)), *d = malloc(sizeof(float) * (size_t)(m * n));
    fill(a, m * k, 3), fill(b, k * n, 4);
    const size_t bytes = ct__gemm_pack_bytes(CT__GEMM_F32_AVX512, m, n, k);
    void *pack = malloc(bytes), *own = malloc(ct__sgemm_pack_bytes(m, n, k));
    ct__gemm_pack_init(pack, CT__GEMM_F32_AVX512);
    ct__gemm(pack, false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    if (ours) ct__sgemm_avx512(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, d, n, own);
    else ct__gemm(NULL, false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, d, n);
    ck_assert_msg(!memcmp(c, d, sizeof(float) * (size_t)(m * n)), "m%lld n%lld k%lld: not the %s result", (long long)m,
                  (long long)n, (long long)k, ours ? "kernel's" : "OpenBLAS");
    free(a), free(b), free(c), free(d), free(pack), free(own);
}

START_TEST(gemm_picks_the_kernel_by_level_and_shape) {
    ct_engine_opts o;
    ct_engine_opts_init(&o);
    o.simd = CT_SIMD_AVX2;
    ck_assert_int_eq(ct__gemm_kind_opts(&o), CT__GEMM_OPENBLAS);
    ck_assert_uint_eq(ct__gemm_pack_bytes(CT__GEMM_OPENBLAS, 64, 64, 64), 0);
    o.simd = CT_SIMD_AVX512;
    if (!have_kernel()) {
        ck_assert_int_eq(ct__gemm_kind_opts(&o), CT__GEMM_OPENBLAS);
        return;
    }
    ck_assert_int_eq(ct__gemm_kind_opts(&o), CT__GEMM_F32_AVX512);
    /* OpenBLAS running several threads: the caller relies on them. */
    openblas_set_num_threads(2);
    if (openblas_get_num_threads() == 2) check_dispatch(64, 100, 40, false);
    openblas_set_num_threads(1);
    ck_assert(ct__sgemm_takes(64, 100, 40) && ct__sgemm_takes(128, 784, 576));
    check_dispatch(64, 100, 40, true);
    /* The stem's k = 9 forward, its m = 9 weight gradient, a 32-channel
     * product: OpenBLAS's where it runs AVX-512 kernels itself. */
    check_dispatch(32, 784, 9, ct__sgemm_takes(32, 784, 9));
    check_dispatch(9, 32, 784, ct__sgemm_takes(9, 32, 784));
    check_dispatch(32, 784, 32, ct__sgemm_takes(32, 784, 32));
    if (!strcmp(openblas_get_corename(), "Cooperlake")) ck_assert(!ct__sgemm_takes(32, 784, 32));
    if (!strcmp(openblas_get_corename(), "Haswell")) ck_assert(ct__sgemm_takes(32, 784, 9));
}
END_TEST

START_TEST(ct_gemm_openblas_forces_openblas) {
    /* Each Check test runs in its own process (ct_test_main forks), and
     * CT_GEMM is read once per process: set it before the first ask. */
    setenv("CT_GEMM", "openblas", 1);
    ct_engine_opts o;
    ct_engine_opts_init(&o);
    o.simd = CT_SIMD_AVX512;
    ck_assert_int_eq(ct__gemm_kind_opts(&o), CT__GEMM_OPENBLAS);
}
END_TEST

static Suite *sgemm_suite(void) {
    Suite *s = suite_create("sgemm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, kernel_matches_float64_on_tile_edges);
    tcase_add_test(tc, kernel_beta_zero_ignores_c_and_k_zero_scales);
    tcase_add_test(tc, gemm_picks_the_kernel_by_level_and_shape);
    tcase_add_test(tc, ct_gemm_openblas_forces_openblas);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(sgemm_suite()); }

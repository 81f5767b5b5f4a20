/* bfloat16 products (engine option precision = CT_PRECISION_BF16;
 * sdk/src/gemm/gemm_bf16.h): the conversion (round to nearest even), the
 * GEMM against a float64 reference on odd sizes and every transpose, each
 * op that uses it (conv2d's im2col, stride-2 and 1x1 paths, conv3d,
 * linear, matmul) forward and backward against float32 within a bound
 * derived from bf16's 8-bit significand, the float32 fallback (kernel
 * level below avx512) with its one log line, and the notes that name an op
 * and shape taking a generic loop (graph/graph_note.h).
 *
 * Where the processor has no AVX512-BF16 the kernel tests return at once
 * (saying so on stdout): only the fallback and the notes can run there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <contrast/contrast.h>

#include "config/experiment.h"
#include "ct_test.h"
#include "gemm/gemm_bf16.h"
#include "training/model.h"

static void fill(float *p, int64_t n, uint64_t seed) {
    ct_rng r;
    ct_rng_init(&r, seed, 5);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, -1.0f, 1.0f);
}

static bool have_bf16(void) {
    if (ct_bf16_available()) return true;
    printf("no AVX512-BF16 here: bf16 kernel checks skipped\n");
    return false;
}

/* ---- stderr capture (the fallback's log line, the notes) ---- */

typedef struct capture {
    int saved;
    char path[64];
} capture;

static void capture_start(capture *c) {
    snprintf(c->path, sizeof c->path, "/tmp/ct_bf16_err_XXXXXX");
    int fd = mkstemp(c->path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    c->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Stop capturing; the text written meanwhile into buf (n bytes). */
static const char *capture_end(capture *c, char *buf, size_t n) {
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    FILE *f = fopen(c->path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t len = fread(buf, 1, n - 1, f);
    buf[len] = '\0';
    fclose(f);
    unlink(c->path);
    return buf;
}

static int count_of(const char *hay, const char *needle) {
    int k = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) k++;
    return k;
}

/* ---- conversion ---- */

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

START_TEST(conversion_rounds_to_nearest_even) {
    /* The portable reference first: ties go to the even bf16. */
    ck_assert_uint_eq(ct__bf16_round(from_bits(0x3f808000u)), 0x3f80u); /* 1 + 2^-8: tie, down to even */
    ck_assert_uint_eq(ct__bf16_round(from_bits(0x3f818000u)), 0x3f82u); /* tie, up to even */
    ck_assert_uint_eq(ct__bf16_round(from_bits(0x3f808001u)), 0x3f81u); /* above the tie */
    ck_assert_uint_eq(ct__bf16_round(from_bits(0x3f807fffu)), 0x3f80u); /* below it */
    ck_assert_uint_eq(ct__bf16_round(from_bits(0x7f7fffffu)), 0x7f80u); /* FLT_MAX rounds to inf */
    ck_assert_uint_eq(ct__bf16_round(-1.0f), 0xbf80u);
    ck_assert_uint_eq(ct__bf16_round(INFINITY), 0x7f80u);
    ck_assert_uint_eq(ct__bf16_round(NAN) & 0x7fc0u, 0x7fc0u);
    ck_assert(ct__bf16_to_float(0x3f80u) == 1.0f);
    if (!have_bf16()) return;
    /* The kernel's (hardware) conversion agrees on ties, edges and 5000
     * random values of all magnitudes; NaN stays NaN. */
    enum { N = 5000 + 11 };
    static float x[N];
    static uint16_t h[N];
    const uint32_t edge[] = {0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu, 0x7f7fffffu, 0xbf80ffffu,
                             0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u, 0x7fc00001u};
    for (int i = 0; i < 11; i++) x[i] = from_bits(edge[i]);
    ct_rng r;
    ct_rng_init(&r, 3, 1);
    for (int i = 11; i < N; i++) {
        uint32_t u = ct_rng_u32(&r);
        if ((u & 0x7f800000u) == 0 || (u & 0x7f800000u) == 0x7f800000u) u ^= 0x40000000u; /* normal numbers */
        x[i] = from_bits(u);
    }
    ct__bf16_convert(x, h, N);
    for (int i = 0; i < N; i++) {
        if (isnan(x[i])) {
            ck_assert_msg(isnan(ct__bf16_to_float(h[i])), "NaN %d converted to %04x", i, h[i]);
            continue;
        }
        ck_assert_msg(h[i] == ct__bf16_round(x[i]), "x[%d] = %a (%08x): kernel %04x, reference %04x", i, x[i],
                      edge[i < 11 ? i : 0], h[i], ct__bf16_round(x[i]));
    }
}
END_TEST

/* ---- the GEMM against float64 ---- */

/* op(A) (m x k), op(B) (k x n) as the kernel reads them. */
static double a_at(const float *a, bool ta, int64_t lda, int64_t i, int64_t k) { return ta ? a[k * lda + i] : a[i * lda + k]; }

static double rounded(double v) { return ct__bf16_to_float(ct__bf16_round((float)v)); }

/* Error bound of one element (derivation):
 *  - each operand is rounded to bf16 with relative error at most u = 2^-8
 *    (8 significant bits, round to nearest), so a product of two rounded
 *    operands is off by at most (2u + u^2) |a b| = (2^-7 + 2^-16) |a b|;
 *  - the k products are summed in float32: at most gamma_k = k 2^-24 (to
 *    first order, on the rounded magnitudes, at most (1 + 2^-7) |a||b|),
 *    plus one rounding each for alpha's product and beta's sum;
 * so |C - C_exact| <= |alpha| S (2^-7 + 2^-16 + (k + 2) 2^-24 (1 + 2^-7))
 * + |beta C0| 2^-23, with S = sum_k |a_ik| |b_kj|. */
static double bound(double s, int64_t k, double alpha, double bc0) {
    return fabs(alpha) * s * (ldexp(1, -7) + ldexp(1, -16) + (double)(k + 2) * ldexp(1, -24) * (1 + ldexp(1, -7))) +
           fabs(bc0) * ldexp(1, -23) + 1e-30;
}

static void check_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, float beta, int64_t pad) {
    const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = malloc(sizeof(float) * (size_t)(arows * lda)), *b = malloc(sizeof(float) * (size_t)(brows * ldb));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc)), *c0 = malloc(sizeof(float) * (size_t)(m * ldc));
    void *pack = malloc(ct__bf16_pack_bytes(m, n, k));
    fill(a, arows * lda, (uint64_t)(m * 131 + k));
    fill(b, brows * ldb, (uint64_t)(n * 71 + k));
    fill(c0, m * ldc, 9);
    memcpy(c, c0, sizeof(float) * (size_t)(m * ldc));
    ct__gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pack);
    double worst = 0, worst_rounded = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double exact = 0, s = 0, exact_r = 0;
            for (int64_t q = 0; q < k; q++) {
                const double av = a_at(a, ta, lda, i, q), bv = a_at(b, !tb, ldb, j, q);
                exact += av * bv, s += fabs(av * bv), exact_r += rounded(av) * rounded(bv);
            }
            const double bc0 = beta * (double)c0[i * ldc + j];
            const double want = alpha * exact + bc0, got = c[i * ldc + j];
            const double lim = bound(s, k, alpha, bc0);
            ck_assert_msg(fabs(got - want) <= lim, "%c%c m%lld n%lld k%lld: C[%lld][%lld] = %.9g, float64 %.9g, bound %.3g",
                          ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m, (long long)n, (long long)k, (long long)i,
                          (long long)j, got, want, lim);
            /* Against the product of the rounded operands only the float32
             * sums remain: (k + 2) 2^-24 of the magnitudes (+ beta's). */
            const double want_r = alpha * exact_r + bc0;
            const double lim_r = fabs(alpha) * s * (1 + ldexp(1, -7)) * (double)(k + 2) * ldexp(1, -24) +
                                 fabs(bc0) * ldexp(1, -23) + 1e-30;
            ck_assert_msg(fabs(got - want_r) <= lim_r, "%c%c m%lld n%lld k%lld: C[%lld][%lld] = %.9g, rounded-operand float64 %.9g",
                          ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m, (long long)n, (long long)k, (long long)i,
                          (long long)j, got, want_r);
            if (s > 0) worst = fmax(worst, fabs(got - want) / s), worst_rounded = fmax(worst_rounded, fabs(got - want_r) / s);
        }
    /* Columns past n (the row padding) are never written. */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = n; j < ldc; j++) ck_assert(c[i * ldc + j] == c0[i * ldc + j]);
    /* bf16 really ran: with k >= 8 random operands some element is off by
     * far more than float32 would be (2^-18 of S, vs at most 2^-7). */
    if (k >= 8 && m * n >= 16) ck_assert_msg(worst > ldexp(1, -18), "error %.3g: float32 ran, not bf16", worst);
    free(a), free(b), free(c), free(c0), free(pack);
}

START_TEST(gemm_matches_float64_on_odd_sizes) {
    if (!have_bf16()) return;
    static const int64_t sizes[][3] = {{1, 1, 1},  {1, 33, 7},  {7, 1, 9},   {8, 32, 2},  {9, 33, 3},   {13, 37, 31},
                                       {17, 65, 33}, {31, 15, 64}, {64, 48, 5}, {5, 100, 77}, {33, 31, 129}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int t = 0; t < 4; t++) {
            const int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
            check_gemm(t & 1, t & 2, m, n, k, 1.0f, 0.0f, 0);
            check_gemm(t & 1, t & 2, m, n, k, -0.5f, 1.0f, 3);
            check_gemm(t & 1, t & 2, m, n, k, 2.0f, 0.25f, 1);
        }
}
END_TEST

START_TEST(gemm_beta_zero_ignores_c_and_k_zero_scales) {
    if (!have_bf16()) return;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {NAN, NAN, NAN, NAN};
    unsigned char pack[4096];
    ct__gemm_bf16(false, false, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, pack); /* NaN in C must not leak */
    ck_assert(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
    ct__gemm_bf16(false, false, 2, 2, 0, 1.0f, a, 3, b, 2, 0.5f, c, 2, pack);
    ck_assert(c[0] == 2 && c[1] == 2.5f && c[2] == 5 && c[3] == 5.5f);
}
END_TEST

/* ---- ops in bf16 against float32 ---- */

typedef ct_tensor *(*op_fn)(ct_graph *g, ct_tensor **in, const void *ctx);

typedef struct op_case {
    const char *name;
    int n_in;
    int ndim[3];
    int64_t shape[3][5];
    op_fn f;
    int arg[6]; /* stride, pad (conv2d); transposes (matmul) */
    bool fp32_only; /* a path that stays float32 in bf16 mode (Winograd) */
} op_case;

static ct_tensor *f_conv2d(ct_graph *g, ct_tensor **in, const void *ctx) {
    const op_case *c = ctx;
    return ct_conv2d(g, in[0], in[1], c->n_in > 2 ? in[2] : NULL, c->arg[0], c->arg[1]);
}

static ct_tensor *f_conv3d(ct_graph *g, ct_tensor **in, const void *ctx) {
    const op_case *c = ctx;
    const int stride[3] = {1, 1, 1}, pad[3] = {c->arg[0], c->arg[1], c->arg[1]};
    return ct_conv3d(g, in[0], in[1], NULL, stride, pad);
}

static ct_tensor *f_linear(ct_graph *g, ct_tensor **in, const void *ctx) {
    (void)ctx;
    return ct_linear(g, in[0], in[1], in[2]);
}

static ct_tensor *f_matmul(ct_graph *g, ct_tensor **in, const void *ctx) {
    const op_case *c = ctx;
    return ct_matmul(g, in[0], in[1], c->arg[0], c->arg[1]);
}

/* The op on copies of its inputs (|values| when `absolute`), loss
 * sum(y * r) with a fixed r (|r|), so dL/dy = r exactly in every run.
 * out[0] = y, out[1 + i] = dL/d input i (malloc'd, numel in len). */
static void run_op(const op_case *c, const ct_engine_opts *eo, bool absolute, float **out, int64_t *len) {
    ct_graph *g = ct_graph_new(0);
    ct_graph_set_engine(g, eo);
    ct_tensor *in[3];
    for (int i = 0; i < c->n_in; i++) {
        in[i] = ct_tensor_new(g, c->ndim[i], c->shape[i]);
        fill(in[i]->data, in[i]->numel, (uint64_t)(i + 1) * 977);
        if (absolute)
            for (int64_t e = 0; e < in[i]->numel; e++) in[i]->data[e] = fabsf(in[i]->data[e]);
        in[i]->flags |= CT_TENSOR_REQUIRES_GRAD;
    }
    ct_tensor *y = c->f(g, in, c);
    ck_assert_msg(y != NULL, "%s: %s", c->name, ct_graph_error(g));
    ct_tensor *r = ct_tensor_new(g, y->ndim, y->shape);
    fill(r->data, r->numel, 4242);
    if (absolute)
        for (int64_t e = 0; e < r->numel; e++) r->data[e] = fabsf(r->data[e]);
    ct_tensor *loss = ct_sum(g, ct_mul(g, y, r));
    ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
    len[0] = y->numel;
    out[0] = malloc(sizeof(float) * (size_t)y->numel);
    memcpy(out[0], y->data, sizeof(float) * (size_t)y->numel);
    for (int i = 0; i < c->n_in; i++) {
        len[1 + i] = in[i]->numel;
        out[1 + i] = malloc(sizeof(float) * (size_t)in[i]->numel);
        ck_assert_ptr_nonnull(in[i]->grad);
        memcpy(out[1 + i], in[i]->grad, sizeof(float) * (size_t)in[i]->numel);
    }
    ct_graph_free(g);
}

static const op_case op_cases[] = {
    /* im2col "same" (C 1: below Winograd's 16), its transposed data gradient */
    {"conv2d 3x3 s1 p1 C1", 2, {4, 4}, {{3, 1, 9, 11}, {8, 1, 3, 3}}, f_conv2d, {1, 1}, false},
    /* stride 2 through phase planes: GEMM + col2im into phases */
    {"conv2d 3x3 s2 p1 C8", 3, {4, 4, 1}, {{2, 8, 9, 10}, {12, 8, 3, 3}, {12}}, f_conv2d, {2, 1}, false},
    /* 1x1 stride 1: no im2col (the direct products) */
    {"conv2d 1x1 s1 C20", 2, {4, 4}, {{2, 20, 5, 7}, {17, 20, 1, 1}}, f_conv2d, {1, 0}, false},
    /* 1x1 stride 2 (the ResNet downsample) */
    {"conv2d 1x1 s2 C16", 2, {4, 4}, {{3, 16, 8, 8}, {9, 16, 1, 1}}, f_conv2d, {2, 0}, false},
    /* general stride-1 im2col (pad 0), groups of several images */
    {"conv2d 3x3 s1 p0 C5", 2, {4, 4}, {{6, 5, 7, 6}, {7, 5, 3, 3}}, f_conv2d, {1, 0}, false},
    /* Winograd: float32 in both modes, so equal */
    {"conv2d 3x3 s1 p1 C16 (Winograd)", 2, {4, 4}, {{2, 16, 6, 6}, {16, 16, 3, 3}}, f_conv2d, {1, 1}, true},
    /* the clip encoder's temporal kernel, and a full 3-D one */
    {"conv3d 3x1x1 p(1,0,0)", 2, {5, 5}, {{2, 9, 5, 3, 4}, {9, 9, 3, 1, 1}}, f_conv3d, {1, 0}, false},
    {"conv3d 3x3x3 p1", 2, {5, 5}, {{2, 3, 4, 5, 5}, {5, 3, 3, 3, 3}}, f_conv3d, {1, 1}, false},
    {"linear 37->19", 3, {2, 2, 1}, {{13, 37}, {19, 37}, {19}}, f_linear, {0}, false},
    {"matmul NN", 2, {2, 2}, {{11, 23}, {23, 9}}, f_matmul, {0, 0}, false},
    {"matmul TN", 2, {2, 2}, {{23, 11}, {23, 9}}, f_matmul, {1, 0}, false},
    {"matmul NT", 2, {2, 2}, {{11, 23}, {9, 23}}, f_matmul, {0, 1}, false},
    {"matmul TT", 2, {2, 2}, {{23, 11}, {9, 23}}, f_matmul, {1, 1}, false},
};

/* Each output and gradient element of the bf16 run against the float32
 * run: both are sums of products of the same operands (dL/dy = r exact),
 * so by the derivation above bound()
 *   |v_bf16 - v_fp32| <= (2^-7 + 2^-16 + 2 (K + 2) 2^-24 (1 + 2^-7)) S
 * with S the same sums over |operands| (the op run in float32 on |x|,
 * |w|, |r|) and K the reduction length (at most the largest tensor's
 * size); the float32 run's own sum errors are the second (K + 2) 2^-24.
 * Biases' gradients are plain sums of r: equal. A bias-free forward in
 * bf16 must differ from float32 somewhere (bf16 really ran). */
START_TEST(ops_in_bf16_within_the_bound) {
    if (!have_bf16()) return;
    ct_engine_opts f32 = *ct_test_engine(), b16 = f32;
    b16.precision = CT_PRECISION_BF16;
    ck_assert_int_eq(ct_engine_precision(&b16), CT_PRECISION_BF16);
    for (size_t ci = 0; ci < sizeof op_cases / sizeof *op_cases; ci++) {
        const op_case *c = &op_cases[ci];
        float *v16[4], *v32[4], *vabs[4];
        int64_t len[4], kmax = 1;
        run_op(c, &b16, false, v16, len);
        run_op(c, &f32, false, v32, len);
        run_op(c, &f32, true, vabs, len);
        for (int i = 0; i <= c->n_in; i++) kmax = len[i] > kmax ? len[i] : kmax;
        const double u = ldexp(1, -7) + ldexp(1, -16) + 2.0 * (double)(kmax + 2) * ldexp(1, -24) * (1 + ldexp(1, -7));
        double differ = 0;
        for (int i = 0; i <= c->n_in; i++)
            for (int64_t e = 0; e < len[i]; e++) {
                const double d = fabs((double)v16[i][e] - v32[i][e]);
                if (c->fp32_only) {
                    ck_assert_msg(d == 0, "%s: %s[%lld] %.9g in bf16, %.9g in float32 (Winograd stays float32)",
                                  c->name, i ? "grad" : "y", (long long)e, v16[i][e], v32[i][e]);
                    continue;
                }
                ck_assert_msg(d <= u * vabs[i][e] * 1.0001 + 1e-30, "%s: %s %d [%lld] = %.9g in bf16, %.9g in float32, bound %.3g",
                              c->name, i ? "gradient of input" : "output", i - 1, (long long)e, v16[i][e], v32[i][e],
                              u * vabs[i][e]);
                if (i == 0 && vabs[i][e] > 0) differ = fmax(differ, d / vabs[i][e]);
            }
        if (!c->fp32_only) ck_assert_msg(differ > ldexp(1, -20), "%s: bf16 output equals float32 (%.3g)", c->name, differ);
        for (int i = 0; i <= c->n_in; i++) free(v16[i]), free(v32[i]), free(vabs[i]);
    }
}
END_TEST

/* The same op results whatever the thread count (the conv groups' slots
 * are summed in order; each worker packs its own panels). */
START_TEST(ops_in_bf16_thread_independent) {
    if (!have_bf16()) return;
    ct_error err = {0};
    ct_threadpool *pool = ct_threadpool_new(3, &err);
    ck_assert_ptr_nonnull(pool);
    ct_engine_opts one = *ct_test_engine();
    one.precision = CT_PRECISION_BF16, one.pool = NULL;
    ct_engine_opts three = one;
    three.pool = pool;
    for (size_t ci = 0; ci < 5; ci++) {
        float *a[4], *b[4];
        int64_t len[4];
        run_op(&op_cases[ci], &one, false, a, len);
        run_op(&op_cases[ci], &three, false, b, len);
        for (int i = 0; i <= op_cases[ci].n_in; i++) {
            ck_assert_msg(memcmp(a[i], b[i], sizeof(float) * (size_t)len[i]) == 0, "%s: 1 and 3 threads differ",
                          op_cases[ci].name);
            free(a[i]), free(b[i]);
        }
    }
    ct_threadpool_free(pool);
}
END_TEST

/* ---- the float32 fallback ---- */

/* bf16 asked for at a kernel level below avx512 (what CT_SIMD=avx2 or
 * generic does; or a processor without AVX512-BF16): exactly float32's
 * results, and one line on stderr, once per process. */
START_TEST(fallback_is_float32_with_one_line) {
    ct_simd_level low = ct_simd_available(CT_SIMD_AVX2) ? CT_SIMD_AVX2 : CT_SIMD_GENERIC;
    ct_engine_opts f32 = *ct_test_engine(), b16;
    f32.simd = low;
    b16 = f32;
    b16.precision = CT_PRECISION_BF16;
    char text[4096];
    capture cap;
    capture_start(&cap);
    ct_precision got = ct_engine_precision(&b16);
    float *v16[4][4], *v32[4];
    int64_t len[4];
    for (int rep = 0; rep < 2; rep++) run_op(&op_cases[1], &b16, false, v16[rep], len);
    run_op(&op_cases[1], &f32, false, v32, len);
    capture_end(&cap, text, sizeof text);
    ck_assert_int_eq(got, CT_PRECISION_FP32);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(memcmp(v16[0][i], v32[i], sizeof(float) * (size_t)len[i]) == 0, "fallback differs from float32 (%d)", i);
    ck_assert_msg(count_of(text, "precision bf16 asked for, but") == 1, "want one line, got: '%s'", text);
    ck_assert_msg(strstr(text, "run in float32") != NULL, "%s", text);
    ck_assert_msg(strstr(text, ct_bf16_available() ? "kernel level is below avx512" : "AVX512-BF16") != NULL, "%s", text);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 4; i++) free(r ? v32[i] : v16[0][i]);
    for (int i = 0; i < 4; i++) free(v16[1][i]);
    /* float32 asked for: float32, no line. */
    ck_assert_int_eq(ct_engine_precision(&f32), CT_PRECISION_FP32);
    ck_assert_int_eq(ct_engine_precision(NULL), CT_PRECISION_FP32);
    ck_assert_str_eq(ct_precision_name(CT_PRECISION_BF16), "bf16");
    ck_assert_str_eq(ct_precision_name(CT_PRECISION_FP32), "fp32");
    ck_assert_str_eq(ct_precision_name((ct_precision)7), "?");
}
END_TEST

/* ---- notes: generic loops are named, fast paths are silent ---- */

static void conv2d_on(ct_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int stride,
                      int pad) {
    ct_tensor *x = ct_tensor_new4(g, n, c, h, w), *wt = ct_tensor_new4(g, o, c, k, k);
    fill(x->data, x->numel, 1), fill(wt->data, wt->numel, 2);
    ck_assert_msg(ct_conv2d(g, x, wt, NULL, stride, pad) != NULL, "%s", ct_graph_error(g));
}

static void conv3d_on(ct_graph *g, const int64_t xs[5], const int64_t ws[5], const int stride[3], const int pad[3]) {
    ct_tensor *x = ct_tensor_new(g, 5, xs), *wt = ct_tensor_new(g, 5, ws);
    fill(x->data, x->numel, 1), fill(wt->data, wt->numel, 2);
    ck_assert_msg(ct_conv3d(g, x, wt, NULL, stride, pad) != NULL, "%s", ct_graph_error(g));
}

START_TEST(generic_loops_say_so_once_per_graph) {
    char text[4096];
    capture cap;
    capture_start(&cap);
    ct_graph *g = ct_test_graph_new();
    conv2d_on(g, 2, 3, 12, 12, 4, 3, 3, 0); /* stride 3: no fast path */
    conv2d_on(g, 2, 3, 12, 12, 4, 3, 3, 0); /* same shape: said already */
    ct_graph_reset(g);
    conv2d_on(g, 2, 3, 12, 12, 4, 3, 3, 0); /* a reset keeps the notes */
    const int s2[3] = {1, 1, 2}, p1[3] = {1, 1, 1};
    conv3d_on(g, (int64_t[]){1, 2, 3, 6, 6}, (int64_t[]){2, 2, 3, 3, 3}, s2, p1);
    ct_graph_free(g);
    g = ct_test_graph_new(); /* a new graph says it again */
    conv2d_on(g, 2, 3, 12, 12, 4, 3, 3, 0);
    ct_graph_free(g);
    capture_end(&cap, text, sizeof text);
    ck_assert_msg(count_of(text, "contrast: note: conv2d 3x3 stride 3 pad 0 on 3x12x12 (-> 4x4): generic strided") == 2,
                  "%s", text);
    ck_assert_msg(count_of(text, "contrast: note: conv3d 3x3x3 stride (1,1,2) on 2x3x6x6") == 1, "%s", text);
    ck_assert_int_eq(count_of(text, "contrast: note:"), 3);
}
END_TEST

/* The shapes of the reference encoder on 28x28 images, on the jigsaw /
 * CPC 8x8 patches (stem, Winograd body, stride-2 3x3 and 1x1 down to 2x2),
 * CPC's context network (1x1, causal 3x3 on the (gh+1) x gw grid) and the
 * clip encoder's temporal (3,1,1) block take fast paths: no note. */
START_TEST(common_shapes_take_fast_paths) {
    char text[4096];
    capture cap;
    capture_start(&cap);
    ct_graph *g = ct_test_graph_new();
    for (int64_t s = 8; s <= 28; s += 20) {
        conv2d_on(g, 2, 1, s, s, 32, 3, 1, 1);
        conv2d_on(g, 2, 32, s, s, 32, 3, 1, 1);
        conv2d_on(g, 2, 32, s, s, 64, 3, 2, 1);
        conv2d_on(g, 2, 32, s, s, 64, 1, 2, 0);
        conv2d_on(g, 2, 64, (s + 1) / 2, (s + 1) / 2, 64, 3, 1, 1);
        conv2d_on(g, 2, 64, (s + 1) / 2, (s + 1) / 2, 128, 3, 2, 1);
        conv2d_on(g, 2, 64, (s + 1) / 2, (s + 1) / 2, 128, 1, 2, 0);
        conv2d_on(g, 2, 128, (s + 3) / 4, (s + 3) / 4, 128, 3, 1, 1);
    }
    conv2d_on(g, 2, 128, 7, 7, 64, 1, 1, 0);
    conv2d_on(g, 2, 64, 8, 7, 64, 3, 1, 1);
    const int s1[3] = {1, 1, 1}, pt[3] = {1, 0, 0};
    conv3d_on(g, (int64_t[]){2, 128, 8, 4, 4}, (int64_t[]){128, 128, 3, 1, 1}, s1, pt);
    ct_graph_free(g);
    capture_end(&cap, text, sizeof text);
    ck_assert_msg(strstr(text, "note:") == NULL, "a common shape took a generic loop: %s", text);
}
END_TEST

/* ---- train.precision reaches every graph of a model ---- */

/* The model's graph after building `precision` (NULL: the default) into a
 * config with the test plugins' 4x4 source and a small ResNet. */
static ct_precision model_precision(const char *precision, const char *simd_env, char *log, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/p.cfg", ct_test_tmpdir());
    char cfg[1536];
    snprintf(cfg, sizeof cfg,
             "plugins = { path = [\"%s/tests/plugins\"]; };\n"
             "name = \"p\";\ndata = { tiny = { type = \"good_source\"; count = 4; }; };\n"
             "encoder = { type = \"resnet\"; stem = \"small\"; stem_width = 4; blocks = [1]; widths = [4]; in_channels = 1; };\n"
             "train = { threads = 1; %s%s%s };\n",
             ct_test_build_dir(), precision ? "precision = \"" : "", precision ? precision : "", precision ? "\";" : "");
    ck_assert_int_eq(ct_test_write_file(path, cfg, strlen(cfg)), 0);
    if (simd_env) setenv("CT_SIMD", simd_env, 1);
    ct_experiment ex;
    ct_experiment_opts opts;
    memset(&opts, 0, sizeof opts);
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_experiment_load(&ex, path, &opts, &err) == CT_OK, "%s", err.msg);
    ct_model m;
    capture cap;
    capture_start(&cap);
    ct_status st = ct_model_build(&m, &ex, 1, false, &err);
    capture_end(&cap, log, n);
    ck_assert_msg(st == CT_OK, "%s", err.msg);
    ct_precision p = ct_graph_engine(m.graph)->precision;
    ct_model_free(&m);
    ct_experiment_free(&ex);
    return p;
}

START_TEST(train_precision_reaches_the_graph) {
    char log[2048];
    ck_assert_int_eq(model_precision(NULL, NULL, log, sizeof log), CT_PRECISION_FP32);
    ck_assert_int_eq(model_precision("fp32", NULL, log, sizeof log), CT_PRECISION_FP32);
    ck_assert_int_eq(model_precision("bf16", NULL, log, sizeof log), CT_PRECISION_BF16);
    ck_assert_msg(strstr(log, "precision bf16") == NULL || !ct_bf16_available(), "%s", log);
    /* Below avx512 the model still asks for bf16; the line comes at build. */
    const char *low = ct_simd_available(CT_SIMD_AVX2) ? "avx2" : "generic";
    ck_assert_int_eq(model_precision("bf16", low, log, sizeof log), CT_PRECISION_BF16);
    ck_assert_msg(strstr(log, "precision bf16 asked for, but") != NULL, "no fallback line at build: '%s'", log);
}
END_TEST

static Suite *bf16_suite(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, conversion_rounds_to_nearest_even);
    tcase_add_test(tc, gemm_matches_float64_on_odd_sizes);
    tcase_add_test(tc, gemm_beta_zero_ignores_c_and_k_zero_scales);
    tcase_add_test(tc, ops_in_bf16_within_the_bound);
    tcase_add_test(tc, ops_in_bf16_thread_independent);
    tcase_add_test(tc, fallback_is_float32_with_one_line);
    tcase_add_test(tc, generic_loops_say_so_once_per_graph);
    tcase_add_test(tc, common_shapes_take_fast_paths);
    tcase_add_test(tc, train_precision_reaches_the_graph);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(bf16_suite()); }

/* Winograd convolution (sdk/src/conv/winograd.c, the driver, and the
 * transforms conv/winograd_f2.c and conv/winograd_f4.c), reached through
 * ct_conv2d with the graph's engine option conv_algo = WINOGRAD, for both
 * tile sizes (wino_tile 2: F(2x2,3x3), 4: F(4x4,3x3)): forward against a naive
 * double reference, data and weight gradients against the im2col path,
 * finite-difference gradients (including accumulation into an existing
 * input gradient, odd map sizes and the scalar paths for maps wider than
 * 32), bit-identical results for 1 and 3 threads, and the default dispatch
 * (by channel count and map width). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_gradcheck.h"
#include "ct_test.h"

typedef struct wcase {
    int64_t n, c, h, w, o;
    bool bias;
} wcase;

/* Even and odd maps, the reference model's sizes, ones that pack 1-8 tile
 * rows (across images) per vector in F(4,3)'s vector path (13x17, 11x11,
 * 30x31, 8x8, 6x5), one wider than the vector paths' 30 / 32 columns. */
static const wcase cases[] = {
    {2, 16, 28, 28, 16, true}, {3, 17, 7, 7, 9, false}, {2, 4, 9, 10, 5, true},
    {2, 8, 14, 14, 12, false}, {1, 3, 5, 33, 4, true},  {2, 2, 1, 1, 3, true},
    {1, 5, 13, 17, 3, false},  {2, 6, 11, 11, 4, true}, {1, 3, 30, 31, 2, true},
    {5, 3, 8, 8, 4, true},     {4, 2, 6, 5, 3, false},
};

static const int tiles[] = {2, 4};
#define NTILES (sizeof tiles / sizeof *tiles)

/* Engine options for a graph: algorithm, tile (0 automatic), weight-gradient
 * layout (-1 automatic), chunk size (0 automatic) and pool (NULL serial). */
static ct_engine_opts engine(ct_conv_algo algo, int tile, int du_t, int64_t chunk, ct_threadpool *pool) {
    ct_engine_opts o = *ct_test_engine(); /* the kernel level of the run (CT_SIMD) */
    o.conv_algo = algo;
    o.wino_tile = tile;
    o.wino_du_transposed = du_t;
    o.wino_chunk_floats = chunk;
    o.pool = pool;
    return o;
}

/* Error bounds relative to the tensor's largest magnitude. F(2,3)'s
 * transforms only add and halve; F(4,3)'s multiply by up to 8 and divide
 * by 6 and 24, which costs roughly 10x more fp32 rounding. Measured on
 * these cases (CT_TEST_VERBOSE=1 prints them): F(2,3) up to 5e-7, F(4,3)
 * up to 8e-6 (the 128-channel layer). */
static double tile_tol(size_t ti) { return ti == 0 ? 1e-5 : 5e-5; }

static void fill(float *p, int64_t n, uint64_t seed) {
    ct_rng r;
    ct_rng_init(&r, seed, 7);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, -1.0f, 1.0f);
}

static void naive_conv3(const wcase *t, const float *x, const float *w, const float *b, double *y) {
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t o = 0; o < t->o; o++)
            for (int64_t oy = 0; oy < t->h; oy++)
                for (int64_t ox = 0; ox < t->w; ox++) {
                    double s = b ? b[o] : 0.0;
                    for (int64_t c = 0; c < t->c; c++)
                        for (int64_t ky = 0; ky < 3; ky++)
                            for (int64_t kx = 0; kx < 3; kx++) {
                                int64_t iy = oy - 1 + ky, ix = ox - 1 + kx;
                                if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) continue;
                                s += (double)x[((n * t->c + c) * t->h + iy) * t->w + ix] *
                                     w[((o * t->c + c) * 3 + ky) * 3 + kx];
                            }
                    y[((n * t->o + o) * t->h + oy) * t->w + ox] = s;
                }
}

static double max_abs_d(const double *p, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(p[i]) > m ? fabs(p[i]) : m;
    return m;
}

/* Forward against the double reference, for the tile size _i, plus a
 * reference-sized layer (128 channels, 7x7). */
START_TEST(forward_matches_naive) {
    const ct_engine_opts eo = engine(CT_CONV_ALGO_WINOGRAD, tiles[_i], -1, 0, NULL);
    const wcase big = {2, 128, 7, 7, 16, true};
    for (size_t k = 0; k <= sizeof cases / sizeof *cases; k++) {
        const wcase *t = k < sizeof cases / sizeof *cases ? &cases[k] : &big;
        ct_graph *g = ct_test_graph_new();
        ct_graph_set_engine(g, &eo);
        ct_tensor *x = ct_tensor_new4(g, t->n, t->c, t->h, t->w), *w = ct_tensor_new4(g, t->o, t->c, 3, 3);
        ct_tensor *b = ct_tensor_new1(g, t->o);
        fill(x->data, x->numel, 1), fill(w->data, w->numel, 2), fill(b->data, b->numel, 3);
        ct_tensor *y = ct_conv2d(g, x, w, t->bias ? b : NULL, 1, 1);
        ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
        double *ref = malloc(sizeof(double) * (size_t)y->numel);
        naive_conv3(t, x->data, w->data, t->bias ? b->data : NULL, ref);
        double scale = max_abs_d(ref, y->numel), worst = 0;
        for (int64_t i = 0; i < y->numel; i++) {
            double e = fabs(y->data[i] - ref[i]) / scale;
            worst = e > worst ? e : worst;
            ck_assert_msg(e <= tile_tol(_i), "tile %d case %zu: y[%lld] = %.7g, want %.7g (scale %.3g)", tiles[_i], k,
                          (long long)i, y->data[i], ref[i], scale);
        }
        if (getenv("CT_TEST_VERBOSE"))
            fprintf(stderr, "tile %d case %zu: max error %.3g of scale\n", tiles[_i], k, worst);
        free(ref);
        ct_graph_free(g);
    }
}
END_TEST

/* Output, dX (dx_fresh or accumulating) and dW of sum(y * r) on a graph
 * with the engine options eo. */
typedef struct run_out {
    float *y, *dx, *dw;
} run_out;

static run_out run_conv(const wcase *t, const ct_engine_opts *eo, bool twice) {
    ct_graph *g = ct_test_graph_new();
    ct_graph_set_engine(g, eo);
    ct_tensor *x = ct_tensor_new4(g, t->n, t->c, t->h, t->w), *w = ct_tensor_new4(g, t->o, t->c, 3, 3);
    ct_tensor *b = ct_tensor_new1(g, t->o);
    fill(x->data, x->numel, 4), fill(w->data, w->numel, 5), fill(b->data, b->numel, 6);
    x->flags |= CT_TENSOR_REQUIRES_GRAD, w->flags |= CT_TENSOR_REQUIRES_GRAD, b->flags |= CT_TENSOR_REQUIRES_GRAD;
    ct_tensor *y = ct_conv2d(g, x, w, t->bias ? b : NULL, 1, 1);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    ct_tensor *r = ct_tensor_new4(g, t->n, t->o, t->h, t->w);
    fill(r->data, r->numel, 7);
    ct_tensor *l = ct_sum(g, ct_mul(g, y, r));
    if (twice) /* x's gradient is written by one conv, accumulated by the other */
        l = ct_add(g, l, ct_sum(g, ct_mul(g, ct_conv2d(g, x, w, NULL, 1, 1), ct_conv2d(g, x, w, NULL, 1, 1))));
    ck_assert_int_eq(ct_graph_backward(g, l), CT_OK);
    run_out o;
    o.y = malloc(sizeof(float) * (size_t)y->numel), o.dx = malloc(sizeof(float) * (size_t)x->numel);
    o.dw = malloc(sizeof(float) * (size_t)w->numel);
    memcpy(o.y, y->data, sizeof(float) * (size_t)y->numel);
    memcpy(o.dx, x->grad, sizeof(float) * (size_t)x->numel);
    memcpy(o.dw, w->grad, sizeof(float) * (size_t)w->numel);
    ct_graph_free(g);
    return o;
}

static void run_free(run_out *o) { free(o->y), free(o->dx), free(o->dw); }

static double max_abs(const float *p, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(p[i]) > m ? fabs(p[i]) : m;
    return m;
}

/* Close to the im2col path relative to the tensor's scale. */
static void expect_close(const char *what, size_t ti, size_t k, const float *a, const float *b, int64_t n) {
    double scale = max_abs(b, n) + 1e-30, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / scale;
        worst = e > worst ? e : worst;
        ck_assert_msg(e <= tile_tol(ti), "tile %d case %zu %s[%lld]: winograd %.7g, im2col %.7g", tiles[ti], k, what,
                      (long long)i, a[i], b[i]);
    }
    if (getenv("CT_TEST_VERBOSE"))
        fprintf(stderr, "tile %d case %zu %s: max error %.3g of scale\n", tiles[ti], k, what, worst);
}

/* Loop index: tile size, and the weight gradient accumulated directly or
 * transposed (wino_du_transposed, the default below 64x64 channels). */
START_TEST(gradients_match_im2col) {
    size_t ti = (size_t)_i % NTILES;
    const ct_engine_opts wo = engine(CT_CONV_ALGO_WINOGRAD, tiles[ti], _i < (int)NTILES ? 0 : 1, 0, NULL);
    const ct_engine_opts io = engine(CT_CONV_ALGO_IM2COL, tiles[ti], _i < (int)NTILES ? 0 : 1, 0, NULL);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const wcase *t = &cases[k];
        for (int twice = 0; twice < 2; twice++) {
            run_out a = run_conv(t, &wo, twice), b = run_conv(t, &io, twice);
            expect_close("y", ti, k, a.y, b.y, t->n * t->o * t->h * t->w);
            expect_close("dx", ti, k, a.dx, b.dx, t->n * t->c * t->h * t->w);
            expect_close("dw", ti, k, a.dw, b.dw, t->o * t->c * 9);
            run_free(&a), run_free(&b);
        }
    }
}
END_TEST

/* ---- finite differences ---- */

/* ctx: the engine options (the checker makes the graph). */
static ct_tensor *b_conv(ct_graph *g, ct_tensor **in, void *ctx) {
    ct_graph_set_engine(g, ctx);
    return ct_conv2d(g, in[0], in[1], in[2], 1, 1);
}

static ct_tensor *b_conv_twice(ct_graph *g, ct_tensor **in, void *ctx) {
    ct_graph_set_engine(g, ctx);
    return ct_mul(g, ct_conv2d(g, in[0], in[1], NULL, 1, 1), ct_conv2d(g, in[0], in[2], NULL, 1, 1));
}

static void gradcheck(const wcase *t, bool twice, const ct_engine_opts *eo) {
    int64_t xs[4] = {t->n, t->c, t->h, t->w}, ws[4] = {t->o, t->c, 3, 3}, bs[1] = {t->o};
    ct_tensor *in[3] = {ct_gradcheck_input(4, xs, 11), ct_gradcheck_input(4, ws, 12),
                        twice ? ct_gradcheck_input(4, ws, 13) : ct_gradcheck_input(1, bs, 13)};
    char report[2048];
    int bad = ct_gradcheck(twice ? b_conv_twice : b_conv, in, 3, (void *)eo, 1e-2, 1e-2, report, sizeof report);
    for (int i = 0; i < 3; i++) ct_gradcheck_input_free(in[i]);
    ck_assert_msg(bad == 0, "winograd %lldx%lld c%lld o%lld: %s", (long long)t->h, (long long)t->w, (long long)t->c,
                  (long long)t->o, report);
}

START_TEST(finite_differences) {
    const ct_engine_opts eo = engine(CT_CONV_ALGO_WINOGRAD, tiles[_i], -1, 0, NULL);
    const wcase t[] = {{2, 3, 6, 6, 2, true}, {1, 2, 5, 7, 3, true}, {1, 2, 3, 34, 2, true}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) gradcheck(&t[i], false, &eo);
    gradcheck(&t[1], true, &eo);
}
END_TEST

/* Bit-identical for 1 and 3 threads, with many chunks per weight-gradient
 * partition (small chunks forced). */
START_TEST(thread_count_independent) {
    const wcase t = {24, 16, 10, 9, 8, true};
    run_out r[2];
    for (int run = 0; run < 2; run++) {
        ct_error err = CT_ERROR_INIT;
        ct_threadpool *pool = run ? ct_threadpool_new(3, &err) : NULL;
        ck_assert(!run || pool != NULL);
        const ct_engine_opts eo = engine(CT_CONV_ALGO_WINOGRAD, tiles[_i], -1, 20000, pool);
        r[run] = run_conv(&t, &eo, true);
        ct_threadpool_free(pool);
    }
    ck_assert(memcmp(r[0].y, r[1].y, sizeof(float) * (size_t)(t.n * t.o * t.h * t.w)) == 0);
    ck_assert(memcmp(r[0].dx, r[1].dx, sizeof(float) * (size_t)(t.n * t.c * t.h * t.w)) == 0);
    ck_assert(memcmp(r[0].dw, r[1].dw, sizeof(float) * (size_t)(t.o * t.c * 9)) == 0);
    run_free(&r[0]), run_free(&r[1]);
}
END_TEST

/* conv_algo AUTO: Winograd from 16 input channels, im2col below;
 * wino_tile 0: F(4,3) where its vector transforms apply (the AVX-512
 * kernels, maps up to 32 wide), F(2,3) otherwise. */
START_TEST(default_dispatch) {
    const wcase wide = {2, 16, 8, 8, 4, false}, narrow = {2, 3, 8, 8, 4, false};
    const ct_engine_opts wino = engine(CT_CONV_ALGO_WINOGRAD, 0, -1, 0, NULL);
    const ct_engine_opts im2col = engine(CT_CONV_ALGO_IM2COL, 0, -1, 0, NULL);
    const ct_engine_opts wino2 = engine(CT_CONV_ALGO_WINOGRAD, 2, -1, 0, NULL);
    const ct_engine_opts wino4 = engine(CT_CONV_ALGO_WINOGRAD, 4, -1, 0, NULL);
    ct_engine_opts dflt = *ct_test_engine();
    ck_assert_int_eq(dflt.conv_algo, CT_CONV_ALGO_AUTO);
    ck_assert_int_eq(dflt.wino_tile, 0);
    run_out f = run_conv(&wide, &wino, false), i = run_conv(&wide, &im2col, false);
    run_out f2 = run_conv(&wide, &wino2, false);
    run_out f4 = run_conv(&wide, &wino4, false);
    run_out d = run_conv(&wide, &dflt, false);
    const size_t ny = sizeof(float) * 2 * 4 * 8 * 8;
    ck_assert(memcmp(d.y, f.y, ny) == 0);
    ck_assert(memcmp(d.y, i.y, ny) != 0);
    ck_assert(memcmp(f2.y, f4.y, ny) != 0);
    if (ct_engine_simd(&dflt) == CT_SIMD_AVX512) {
        ck_assert(memcmp(d.y, f4.y, ny) == 0);
    } else {
        ck_assert(memcmp(d.y, f2.y, ny) == 0);
    }
    run_free(&f), run_free(&i), run_free(&d), run_free(&f2), run_free(&f4);
    i = run_conv(&narrow, &im2col, false);
    d = run_conv(&narrow, &dflt, false);
    ck_assert(memcmp(d.y, i.y, ny) == 0);
    run_free(&i), run_free(&d);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("conv_winograd");
    TCase *tc = tcase_create("conv_winograd");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, forward_matches_naive, 0, NTILES);
    tcase_add_loop_test(tc, gradients_match_im2col, 0, 2 * NTILES);
    tcase_add_loop_test(tc, finite_differences, 0, NTILES);
    tcase_add_loop_test(tc, thread_count_independent, 0, NTILES);
    tcase_add_test(tc, default_dispatch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

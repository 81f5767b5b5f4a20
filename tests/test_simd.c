/* Kernel levels (contrast/engine.h: ct_simd_*, the engine option simd and
 * CT_SIMD; sdk/src/core/kernels.h): which levels the build holds, the
 * choice and its fallbacks, CT_SIMD's parsing and refusals, and every
 * available level's convolutions (Winograd F(2,3) and F(4,3), im2col,
 * stride 2 through phase planes, the 1x1 stride-2 shortcut, the 7x7 stem)
 * and batch norms (plain, ReLU, residual join; training and eval; the
 * synchronised statistics of a data-parallel job), forward
 * and backward, against the generic level to float tolerance. The other
 * kernel tests run whole at each level too (ctest: *_generic, *_avx2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_test.h"

#ifndef CT_TEST_SIMD_LEVELS
#error "CT_TEST_SIMD_LEVELS (the build's CONTRAST_SIMD_LEVELS) must be defined"
#endif

static const ct_simd_level levels[] = {CT_SIMD_GENERIC, CT_SIMD_AVX2, CT_SIMD_AVX512};
#define NLEVELS (sizeof levels / sizeof *levels)

static void fill(float *p, int64_t n, uint64_t seed) {
    ct_rng r;
    ct_rng_init(&r, seed, 11);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, -1.0f, 1.0f);
}

/* ---- levels: built, run, chosen ---- */

START_TEST(names_and_build) {
    ck_assert_str_eq(ct_simd_name(CT_SIMD_AUTO), "auto");
    ck_assert_str_eq(ct_simd_name(CT_SIMD_GENERIC), "generic");
    ck_assert_str_eq(ct_simd_name(CT_SIMD_AVX2), "avx2");
    ck_assert_str_eq(ct_simd_name(CT_SIMD_AVX512), "avx512");
    ck_assert_str_eq(ct_simd_name((ct_simd_level)42), "?");
    int built = 0;
    for (size_t i = 0; i < NLEVELS; i++) built += ct_simd_built(levels[i]);
    ck_assert_int_eq(built, 3); /* the portable x86-64 build holds all three (main skips the others) */
    ck_assert(ct_simd_cpu(CT_SIMD_GENERIC));
    ck_assert(!ct_simd_cpu(CT_SIMD_AUTO) && !ct_simd_built(CT_SIMD_AUTO));
    ck_assert(ct_simd_cpu(CT_SIMD_AVX2) || !ct_simd_cpu(CT_SIMD_AVX512)); /* the levels nest */
    ck_assert(ct_simd_available(CT_SIMD_AUTO));
    ct_simd_level best = ct_simd_best();
    ck_assert(ct_simd_available(best));
    for (size_t i = 0; i < NLEVELS; i++)
        if (ct_simd_available(levels[i])) ck_assert_int_ge(best, levels[i]);
    printf("levels: best %s; built/runs:", ct_simd_name(best));
    for (size_t i = 0; i < NLEVELS; i++)
        printf(" %s %d/%d", ct_simd_name(levels[i]), ct_simd_built(levels[i]), ct_simd_cpu(levels[i]));
    printf("\n");
}
END_TEST

/* A level set in the struct resolves to an available one: itself, the
 * best below it, or (nothing below) the best there is. */
START_TEST(engine_choice) {
    ck_assert_int_eq(ct_engine_simd(NULL), ct_simd_best());
    ct_engine_opts o;
    ct_engine_opts_init(&o);
    ck_assert_int_eq(o.simd, CT_SIMD_AUTO);
    ck_assert_int_eq(ct_engine_simd(&o), ct_simd_best());
    for (size_t i = 0; i < NLEVELS; i++) {
        o.simd = levels[i];
        ct_simd_level got = ct_engine_simd(&o);
        ck_assert(ct_simd_available(got));
        if (ct_simd_available(levels[i])) {
            ck_assert_int_eq(got, levels[i]);
            continue;
        }
        bool below = false;
        for (size_t j = 0; j < i; j++) below |= ct_simd_available(levels[j]);
        if (below) {
            ck_assert_int_lt(got, levels[i]);
        } else {
            ck_assert_int_eq(got, ct_simd_best());
        }
    }
    o.simd = (ct_simd_level)99;
    ck_assert_int_eq(ct_engine_simd(&o), ct_simd_best());
}
END_TEST

/* CT_SIMD=value alone (test_engine covers the other variables). */
static ct_status parse(const char *value, ct_engine_opts *o, ct_error *err) {
    unsetenv("CT_CONV_ALGO"), unsetenv("CT_WINO_TILE"), unsetenv("CT_WINO_CHUNK_FLOATS"), unsetenv("CT_WINO_DU_T");
    setenv("CT_SIMD", value, 1);
    ct_engine_opts_init(o);
    memset(err, 0, sizeof *err);
    ct_status st = ct_engine_opts_from_env(o, err);
    unsetenv("CT_SIMD");
    return st;
}

START_TEST(env_parsing) {
    ct_engine_opts o;
    ct_error err;
    ck_assert_int_eq(parse("auto", &o, &err), CT_OK);
    ck_assert_int_eq(o.simd, CT_SIMD_AUTO);
    int refused = 0;
    for (size_t i = 0; i < NLEVELS; i++) {
        const char *name = ct_simd_name(levels[i]);
        ct_status st = parse(name, &o, &err);
        if (ct_simd_available(levels[i])) {
            ck_assert_msg(st == CT_OK, "CT_SIMD=%s: %s", name, err.msg);
            ck_assert_int_eq(o.simd, levels[i]);
            ck_assert_int_eq(ct_engine_simd(&o), levels[i]);
            continue;
        }
        /* A level the build or the processor lacks: refused, saying which
         * and what is there instead. */
        refused++;
        ck_assert_int_eq(st, CT_ERR_CONFIG);
        ck_assert_msg(strstr(err.msg, "CT_SIMD") && strstr(err.msg, name) && strstr(err.msg, "available: "), "%s",
                      err.msg);
        ck_assert_msg(strstr(err.msg, ct_simd_name(ct_simd_best())), "%s", err.msg);
        ck_assert_int_eq(o.simd, CT_SIMD_AUTO);
    }
    printf("CT_SIMD: %d of 3 levels refused here\n", refused);
    const char *bad[] = {"sse9", "AVX2", "avx-512", " generic", "avx2 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(parse(bad[i], &o, &err), CT_ERR_CONFIG);
        ck_assert_msg(strstr(err.msg, "CT_SIMD") && strstr(err.msg, "auto, generic, avx2 or avx512"), "%s", err.msg);
    }
}
END_TEST

/* ---- every level's kernels against the generic ones ---- */

typedef struct conv_case {
    const char *what;
    int64_t n, c, h, w, o, k;
    int stride, pad;
    ct_conv_algo algo;
    int tile; /* Winograd tile, 0 automatic */
    bool bias;
} conv_case;

static const conv_case conv_cases[] = {
    {"winograd F(2,3)", 2, 16, 14, 14, 8, 3, 1, 1, CT_CONV_ALGO_WINOGRAD, 2, true},
    {"winograd F(4,3)", 2, 16, 12, 13, 8, 3, 1, 1, CT_CONV_ALGO_WINOGRAD, 4, false},
    {"winograd F(4,3) 7x7 maps", 3, 32, 7, 7, 16, 3, 1, 1, CT_CONV_ALGO_WINOGRAD, 4, true},
    {"winograd F(2,3) 35 wide", 1, 4, 6, 35, 3, 3, 1, 1, CT_CONV_ALGO_WINOGRAD, 2, true},
    {"winograd automatic tile", 2, 32, 28, 28, 16, 3, 1, 1, CT_CONV_ALGO_AUTO, 0, true},
    {"im2col 3x3", 2, 5, 9, 9, 4, 3, 1, 1, CT_CONV_ALGO_IM2COL, 0, true},
    {"stride 2 3x3", 2, 6, 14, 14, 8, 3, 2, 1, CT_CONV_ALGO_AUTO, 0, false},
    {"stride 2 3x3 odd map", 2, 3, 13, 11, 5, 3, 2, 1, CT_CONV_ALGO_AUTO, 0, true},
    {"stride 2 1x1", 2, 8, 14, 14, 16, 1, 2, 0, CT_CONV_ALGO_AUTO, 0, false},
    {"stem 7x7 stride 2", 2, 3, 15, 15, 4, 7, 2, 3, CT_CONV_ALGO_AUTO, 0, true},
    {"1x1", 2, 8, 7, 7, 8, 1, 1, 0, CT_CONV_ALGO_AUTO, 0, true},
};
#define NCONV (sizeof conv_cases / sizeof *conv_cases)

/* Outputs of one run: the op's result and the gradients of sum(y * r). */
typedef struct outs {
    int n;
    float *v[5];
    int64_t len[5];
    const char *name[5];
} outs;

static void keep(outs *o, const char *name, const float *p, int64_t n) {
    o->name[o->n] = name, o->len[o->n] = n;
    o->v[o->n] = malloc(sizeof(float) * (size_t)n);
    memcpy(o->v[o->n], p, sizeof(float) * (size_t)n);
    o->n++;
}

static void outs_free(outs *o) {
    for (int i = 0; i < o->n; i++) free(o->v[i]);
}

/* The all-reduce of a job of one process: the sums are already complete. */
static ct_status sum_over_one(void *ctx, double *values, size_t n) {
    (void)ctx, (void)values, (void)n;
    return CT_OK;
}

static ct_graph *level_graph(ct_simd_level level, const conv_case *t, bool sync) {
    ct_engine_opts eo;
    ct_engine_opts_init(&eo);
    eo.simd = level;
    if (t) eo.conv_algo = t->algo, eo.wino_tile = t->tile;
    if (sync) eo.allreduce_sum = sum_over_one; /* the synchronised statistics' kernels */
    ct_graph *g = ct_graph_new(0);
    ck_assert(g != NULL);
    ct_graph_set_engine(g, &eo);
    ck_assert_int_eq(ct_engine_simd(ct_graph_engine(g)), level);
    return g;
}

/* sum(y * r) with r fixed: every output element gets its own weight. */
static ct_tensor *weighted_sum(ct_graph *g, ct_tensor *y, uint64_t seed) {
    ct_tensor *r = ct_tensor_new(g, y->ndim, y->shape);
    fill(r->data, r->numel, seed);
    return ct_sum(g, ct_mul(g, y, r));
}

static outs run_conv_case(const conv_case *t, ct_simd_level level) {
    ct_graph *g = level_graph(level, t, false);
    ct_tensor *x = ct_tensor_new4(g, t->n, t->c, t->h, t->w), *w = ct_tensor_new4(g, t->o, t->c, t->k, t->k);
    ct_tensor *b = ct_tensor_new1(g, t->o);
    fill(x->data, x->numel, 1), fill(w->data, w->numel, 2), fill(b->data, b->numel, 3);
    x->flags |= CT_TENSOR_REQUIRES_GRAD, w->flags |= CT_TENSOR_REQUIRES_GRAD, b->flags |= CT_TENSOR_REQUIRES_GRAD;
    ct_tensor *y = ct_conv2d(g, x, w, t->bias ? b : NULL, t->stride, t->pad);
    ck_assert_msg(y != NULL, "%s: %s", t->what, ct_graph_error(g));
    ck_assert_int_eq(ct_graph_backward(g, weighted_sum(g, y, 4)), CT_OK);
    outs o = {0};
    keep(&o, "y", y->data, y->numel);
    keep(&o, "dx", x->grad, x->numel);
    keep(&o, "dw", w->grad, w->numel);
    if (t->bias) keep(&o, "db", b->grad, b->numel);
    ct_graph_free(g);
    return o;
}

/* Worst |a - b| relative to b's largest magnitude, over every output;
 * *differs counts the elements that are not bit-identical. */
static double worst_error(const outs *a, const outs *b, const char **where, int64_t *differs) {
    double worst = 0;
    for (int i = 0; i < a->n; i++) {
        double scale = 1e-30;
        for (int64_t j = 0; j < b->len[i]; j++) scale = fmax(scale, fabs(b->v[i][j]));
        for (int64_t j = 0; j < a->len[i]; j++) {
            double e = fabs((double)a->v[i][j] - b->v[i][j]) / scale;
            *differs += a->v[i][j] != b->v[i][j];
            if (!(e <= worst)) worst = e, *where = a->name[i]; /* NaN counts as worst */
        }
    }
    return worst;
}

/* Tolerance against the generic level, relative to the output's scale.
 * Measured (CT_TEST_VERBOSE=1, AMD EPYC with AVX-512): avx2 bit-identical
 * to generic (the same C, vectorised without reassociation or fused
 * multiply-adds); avx512 F(4,3) up to 1.6e-6, the automatic tile 6.3e-6
 * (F(4,3) where the AVX-512 transforms apply against generic's F(2,3)),
 * everything else under 1e-7 (batch norm 3e-7). */
static double conv_tol(const conv_case *t) { return t->tile == 4 || t->tile == 0 ? 2e-5 : 1e-6; }

START_TEST(conv_levels_agree) {
    const conv_case *t = &conv_cases[_i];
    outs ref = run_conv_case(t, CT_SIMD_GENERIC);
    for (size_t l = 1; l < NLEVELS; l++) {
        if (!ct_simd_available(levels[l])) continue;
        outs got = run_conv_case(t, levels[l]);
        const char *where = "?";
        int64_t differs = 0;
        double e = worst_error(&got, &ref, &where, &differs);
        if (getenv("CT_TEST_VERBOSE"))
            fprintf(stderr, "%s %s: worst %.3g (%s), %lld elements not bit-identical\n", t->what,
                    ct_simd_name(levels[l]), e, where, (long long)differs);
        ck_assert_msg(e <= conv_tol(t), "%s at %s: %s off the generic kernels by %.3g of scale", t->what,
                      ct_simd_name(levels[l]), where, e);
        outs_free(&got);
    }
    outs_free(&ref);
}
END_TEST

typedef struct bn_case {
    const char *what;
    bool relu, residual, train;
    bool sync; /* synchronised batch norm (engine option allreduce_sum), one process */
} bn_case;

static const bn_case bn_cases[] = {
    {"batchnorm train", false, false, true, false},
    {"batchnorm eval", false, false, false, false},
    {"batchnorm_relu train", true, false, true, false},
    {"batchnorm_relu eval", true, false, false, false},
    {"batchnorm_add_relu train", true, true, true, false},
    {"batchnorm_add_relu eval", true, true, false, false},
    {"batchnorm_relu train synchronised", true, false, true, true},
    {"batchnorm_add_relu train synchronised", true, true, true, true},
};
#define NBN (sizeof bn_cases / sizeof *bn_cases)

/* 7x7 maps (rows of 49: masked vector tails) and 20x20 (400: an aligned
 * streamed body), values off zero so the shifted statistics matter. */
static outs run_bn_case(const bn_case *t, int64_t h, ct_simd_level level, bool *differs_expected) {
    const int64_t N = 4, C = 6;
    ct_graph *g = level_graph(level, NULL, t->sync);
    ct_graph_set_train(g, t->train);
    ct_tensor *x = ct_tensor_new4(g, N, C, h, h), *r = ct_tensor_new4(g, N, C, h, h);
    ct_tensor *gam = ct_tensor_new1(g, C), *bet = ct_tensor_new1(g, C);
    ct_tensor *rm = ct_tensor_new1(g, C), *rv = ct_tensor_new1(g, C);
    fill(x->data, x->numel, 5), fill(r->data, r->numel, 6), fill(gam->data, C, 7), fill(bet->data, C, 8);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 3.0f + 2.0f * x->data[i];
    for (int64_t c = 0; c < C; c++) {
        gam->data[c] += 1.5f, rm->data[c] = 3.0f + 0.1f * (float)c, rv->data[c] = 1.0f + 0.2f * (float)c;
    }
    ct_tensor *leaves[] = {x, r, gam, bet};
    for (int i = 0; i < 4; i++) leaves[i]->flags |= CT_TENSOR_REQUIRES_GRAD;
    const float mom = 0.1f, eps = 1e-5f;
    ct_tensor *y = t->residual ? ct_batchnorm_add_relu(g, x, gam, bet, rm, rv, mom, eps, r)
                   : t->relu   ? ct_batchnorm_relu(g, x, gam, bet, rm, rv, mom, eps)
                               : ct_batchnorm(g, x, gam, bet, rm, rv, mom, eps);
    ck_assert_msg(y != NULL, "%s: %s", t->what, ct_graph_error(g));
    ck_assert_int_eq(ct_graph_backward(g, weighted_sum(g, y, 9)), CT_OK);
    outs o = {0};
    keep(&o, "y", y->data, y->numel);
    keep(&o, "dx", x->grad, x->numel);
    keep(&o, "dgamma", gam->grad, C);
    keep(&o, "dbeta", bet->grad, C);
    if (t->residual) keep(&o, "dresidual", r->grad, r->numel);
    /* Training statistics are float-lane sums at AVX-512, double at the
     * generic level: those outputs cannot all agree to the bit. */
    *differs_expected = t->train;
    ct_graph_free(g);
    return o;
}

START_TEST(batchnorm_levels_agree) {
    const bn_case *t = &bn_cases[_i];
    const int64_t sizes[] = {7, 20};
    for (size_t s = 0; s < 2; s++) {
        bool expect_diff = false;
        outs ref = run_bn_case(t, sizes[s], CT_SIMD_GENERIC, &expect_diff);
        for (size_t l = 1; l < NLEVELS; l++) {
            if (!ct_simd_available(levels[l])) continue;
            outs got = run_bn_case(t, sizes[s], levels[l], &expect_diff);
            const char *where = "?";
            int64_t differs = 0;
            double e = worst_error(&got, &ref, &where, &differs);
            if (getenv("CT_TEST_VERBOSE"))
                fprintf(stderr, "%s %lldx%lld %s: worst %.3g (%s), %lld elements not bit-identical\n", t->what,
                        (long long)sizes[s], (long long)sizes[s], ct_simd_name(levels[l]), e, where,
                        (long long)differs);
            ck_assert_msg(e <= 2e-6, "%s %lldx%lld at %s: %s off the generic kernels by %.3g of scale", t->what,
                          (long long)sizes[s], (long long)sizes[s], ct_simd_name(levels[l]), where, e);
            /* The AVX-512 copy runs its own vector code (not the generic
             * loops again): some bits differ. */
            if (levels[l] == CT_SIMD_AVX512 && expect_diff)
                ck_assert_msg(differs > 0, "%s at avx512: bit-identical to generic", t->what);
            outs_free(&got);
        }
        outs_free(&ref);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("simd");
    TCase *tc = tcase_create("simd");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, names_and_build);
    tcase_add_test(tc, engine_choice);
    tcase_add_test(tc, env_parsing);
    tcase_add_loop_test(tc, conv_levels_agree, 0, (int)NCONV);
    tcase_add_loop_test(tc, batchnorm_levels_agree, 0, (int)NBN);
    suite_add_tcase(s, tc);
    return s;
}

/* Skipped (77) where there is nothing to compare: a one-level build
 * (CONTRAST_NATIVE, or not x86-64; sdk/CMakeLists.txt), or a processor
 * that runs only the generic kernels. A processor with AVX2 but not
 * AVX-512 compares those two; conv_levels_agree and batchnorm_levels_agree
 * pass over a level it lacks. */
int main(void) {
    if (strcmp(CT_TEST_SIMD_LEVELS, "native") == 0) {
        printf("skipped: this build holds one kernel level (%s; CONTRAST_NATIVE=ON or not x86-64), "
               "there is no other level to compare\n",
               ct_simd_name(ct_simd_best()));
        return 77;
    }
    int available = 0;
    for (size_t i = 0; i < NLEVELS; i++) available += ct_simd_available(levels[i]);
    if (available < 2) {
        printf("skipped: this processor runs only the generic kernels (no AVX2 / x86-64-v3), "
               "there is no other level to compare\n");
        return 77;
    }
    for (size_t i = 0; i < NLEVELS; i++)
        if (!ct_simd_cpu(levels[i]))
            printf("the processor lacks the %s kernels: their comparisons are left out\n", ct_simd_name(levels[i]));
    return ct_test_main(suite());
}

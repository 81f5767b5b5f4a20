/* Engine options (engine.h, ct_graph_set_engine): two graphs with different
 * pools driven concurrently from their own threads give results bit-identical
 * to a serial graph; ct_engine_opts_from_env parses each variable, leaves
 * unset ones alone and rejects malformed values; the conv_algo option really
 * selects the convolution path. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <contrast/contrast.h>

#include "ct_test.h"

static void fill(float *p, int64_t n, uint64_t seed, float lo, float hi) {
    ct_rng r;
    ct_rng_init(&r, seed, 5);
    for (int64_t i = 0; i < n; i++) p[i] = ct_rng_uniform_range(&r, lo, hi);
}

/* ---- (a) concurrent graphs with their own pools ---- */

/* The network's results: loss, the last conv's output and every gradient. */
enum { R_LOSS, R_Y, R_DX, R_DW1, R_DB1, R_DG, R_DBETA, R_DW2, R_DB2, NRES };

typedef struct net_out {
    float *r[NRES];
    int64_t n[NRES];
} net_out;

#define NET_ITERS 3

/* x (48,16,14,14) -> conv 3x3 pad 1, 16 -> 16 channels (Winograd under AUTO)
 * -> batchnorm (train, batch statistics) -> relu -> maxpool 3x3 stride 1
 * pad 1 -> conv 3x3 stride 2 pad 1, 16 -> 8 (im2col, phase planes) ->
 * mean(y * y). 48 images make the 150528-float activations large enough
 * that batch norm, relu and the pooling split over the pool too (their
 * serial cut-offs are 64K and 128K floats), not only the convolutions. Fresh tensors after each reset; same values every
 * iteration. Returns a message on failure (Check's assertions are not for
 * worker threads), NULL on success. */
static const char *run_net(ct_graph *g, net_out *o) {
    ct_graph_reset(g);
    ct_tensor *x = ct_tensor_new4(g, 48, 16, 14, 14), *w1 = ct_tensor_new4(g, 16, 16, 3, 3);
    ct_tensor *b1 = ct_tensor_new1(g, 16), *gam = ct_tensor_new1(g, 16), *bet = ct_tensor_new1(g, 16);
    ct_tensor *w2 = ct_tensor_new4(g, 8, 16, 3, 3), *b2 = ct_tensor_new1(g, 8);
    if (!x || !w1 || !b1 || !gam || !bet || !w2 || !b2) return "tensor allocation failed";
    fill(x->data, x->numel, 1, -1, 1), fill(w1->data, w1->numel, 2, -0.3f, 0.3f);
    fill(b1->data, b1->numel, 3, -0.5f, 0.5f), fill(gam->data, gam->numel, 4, 0.5f, 1.5f);
    fill(bet->data, bet->numel, 5, -0.5f, 0.5f), fill(w2->data, w2->numel, 6, -0.3f, 0.3f);
    fill(b2->data, b2->numel, 7, -0.5f, 0.5f);
    ct_tensor *leaves[] = {x, w1, b1, gam, bet, w2, b2};
    for (size_t i = 0; i < sizeof leaves / sizeof *leaves; i++) leaves[i]->flags |= CT_TENSOR_REQUIRES_GRAD;
    ct_tensor *h = ct_conv2d(g, x, w1, b1, 1, 1);
    h = ct_batchnorm(g, h, gam, bet, NULL, NULL, 0.1f, 1e-5f);
    h = ct_relu(g, h);
    h = ct_maxpool2d(g, h, 3, 1, 1);
    ct_tensor *y = ct_conv2d(g, h, w2, b2, 2, 1);
    ct_tensor *l = ct_mean(g, ct_mul(g, y, y));
    if (!l) return "building the network failed";
    if (ct_graph_backward(g, l) != CT_OK) return "backward failed";
    ct_tensor *src[NRES] = {l, y, x, w1, b1, gam, bet, w2, b2};
    for (int k = 0; k < NRES; k++) {
        const float *p = k < 2 ? src[k]->data : src[k]->grad;
        if (!p) return "missing result or gradient";
        if (!o->r[k]) {
            o->n[k] = src[k]->numel;
            o->r[k] = malloc(sizeof(float) * (size_t)o->n[k]);
        }
        if (o->n[k] != src[k]->numel) return "result size changed";
        memcpy(o->r[k], p, sizeof(float) * (size_t)o->n[k]);
    }
    return NULL;
}

static void net_free(net_out *o) {
    for (int k = 0; k < NRES; k++) free(o->r[k]), o->r[k] = NULL;
}

typedef struct worker_arg {
    ct_graph *g;
    ct_threadpool *pool;
    const net_out *ref;
    net_out out;
    const char *fail;
    int mismatch_iter, mismatch_res;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    a->mismatch_iter = a->mismatch_res = -1;
    for (int it = 0; it < NET_ITERS && !a->fail && a->mismatch_iter < 0; it++) {
        if (ct_graph_pool(a->g) != a->pool) {
            a->fail = "the graph lost its pool";
            break;
        }
        a->fail = run_net(a->g, &a->out);
        if (a->fail) break;
        for (int k = 0; k < NRES; k++)
            if (memcmp(a->out.r[k], a->ref->r[k], sizeof(float) * (size_t)a->ref->n[k]) != 0) {
                a->mismatch_iter = it, a->mismatch_res = k;
                break;
            }
    }
    return NULL;
}

START_TEST(concurrent_graphs_own_pools) {
    /* One OpenBLAS thread per caller, as the host and bench/step run it:
     * otherwise the convolutions would not split over the graphs' pools. */
    openblas_set_num_threads(1);
    /* Serial reference. */
    ct_graph *gs = ct_graph_new(0);
    ck_assert_ptr_nonnull(gs);
    ck_assert_ptr_null(ct_graph_pool(gs));
    net_out ref = {0};
    const char *f = run_net(gs, &ref);
    ck_assert_msg(f == NULL, "serial: %s (%s)", f, ct_graph_error(gs));
    ck_assert(isfinite(ref.r[R_LOSS][0]));
    ct_graph_free(gs);

    ct_error err = CT_ERROR_INIT;
    worker_arg w[2];
    memset(w, 0, sizeof w);
    ct_engine_opts o;
    for (int i = 0; i < 2; i++) {
        w[i].pool = ct_threadpool_new(2 + i, &err);
        ck_assert_msg(w[i].pool != NULL, "%s", err.msg);
        ck_assert_int_eq(ct_threadpool_size(w[i].pool), 2 + i);
        w[i].g = ct_graph_new(0);
        ck_assert_ptr_nonnull(w[i].g);
        ct_engine_opts_init(&o);
        o.pool = w[i].pool;
        ct_graph_set_engine(w[i].g, &o);
        w[i].ref = &ref;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(w[i].fail == NULL, "graph with %d threads: %s (%s)", 2 + i, w[i].fail, ct_graph_error(w[i].g));
        ck_assert_msg(w[i].mismatch_iter < 0, "graph with %d threads, iteration %d: result %d differs from serial",
                      2 + i, w[i].mismatch_iter, w[i].mismatch_res);
        net_free(&w[i].out);
        ct_graph_free(w[i].g);
        ct_threadpool_free(w[i].pool);
    }
    net_free(&ref);
}
END_TEST

/* ---- (b) ct_engine_opts_from_env ---- */

static const char *const env_vars[] = {"CT_CONV_ALGO", "CT_WINO_TILE", "CT_WINO_CHUNK_FLOATS", "CT_WINO_DU_T",
                                       "CT_SIMD"};

static void unset_all(void) {
    for (size_t i = 0; i < sizeof env_vars / sizeof *env_vars; i++) unsetenv(env_vars[i]);
}

/* Parse with only `name` set to `value`, starting from defaults. */
static ct_engine_opts parse_one(const char *name, const char *value) {
    unset_all();
    setenv(name, value, 1);
    ct_engine_opts o;
    ct_engine_opts_init(&o);
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_engine_opts_from_env(&o, &err) == CT_OK, "%s=%s: %s", name, value, err.msg);
    ck_assert_int_eq(err.code, CT_OK);
    return o;
}

START_TEST(from_env_parses_each_variable) {
    ck_assert_int_eq(parse_one("CT_CONV_ALGO", "im2col").conv_algo, CT_CONV_ALGO_IM2COL);
    ck_assert_int_eq(parse_one("CT_CONV_ALGO", "winograd").conv_algo, CT_CONV_ALGO_WINOGRAD);
    ck_assert_int_eq(parse_one("CT_CONV_ALGO", "auto").conv_algo, CT_CONV_ALGO_AUTO);
    ck_assert_int_eq(parse_one("CT_WINO_TILE", "2").wino_tile, 2);
    ck_assert_int_eq(parse_one("CT_WINO_TILE", "4").wino_tile, 4);
    ck_assert_int_eq(parse_one("CT_WINO_CHUNK_FLOATS", "20000").wino_chunk_floats, 20000);
    ck_assert_int_eq(parse_one("CT_WINO_DU_T", "0").wino_du_transposed, 0);
    ck_assert_int_eq(parse_one("CT_WINO_DU_T", "1").wino_du_transposed, 1);

    /* One variable set changes only its field. */
    ct_engine_opts o = parse_one("CT_WINO_TILE", "4");
    ck_assert_int_eq(o.conv_algo, CT_CONV_ALGO_AUTO);
    ck_assert_int_eq(o.wino_chunk_floats, 0);
    ck_assert_int_eq(o.wino_du_transposed, -1);
    ck_assert_ptr_null(o.pool);

    /* All set at once. */
    unset_all();
    setenv("CT_CONV_ALGO", "winograd", 1), setenv("CT_WINO_TILE", "2", 1);
    setenv("CT_WINO_CHUNK_FLOATS", "20000", 1), setenv("CT_WINO_DU_T", "1", 1);
    ct_engine_opts_init(&o);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_engine_opts_from_env(&o, &err), CT_OK);
    ck_assert_int_eq(o.conv_algo, CT_CONV_ALGO_WINOGRAD);
    ck_assert_int_eq(o.wino_tile, 2);
    ck_assert_int_eq(o.wino_chunk_floats, 20000);
    ck_assert_int_eq(o.wino_du_transposed, 1);
    unset_all();
}
END_TEST

START_TEST(from_env_unset_leaves_fields) {
    unset_all();
    ct_error err = CT_ERROR_INIT;
    ct_threadpool *p = ct_threadpool_new(2, &err);
    ck_assert_ptr_nonnull(p);
    ct_engine_opts o;
    ct_engine_opts_init(&o);
    o.pool = p;
    o.conv_algo = CT_CONV_ALGO_IM2COL;
    o.wino_tile = 4;
    o.wino_chunk_floats = 777;
    o.wino_du_transposed = 0;
    ck_assert_int_eq(ct_engine_opts_from_env(&o, &err), CT_OK);
    ck_assert_ptr_eq(o.pool, p);
    ck_assert_int_eq(o.conv_algo, CT_CONV_ALGO_IM2COL);
    ck_assert_int_eq(o.wino_tile, 4);
    ck_assert_int_eq(o.wino_chunk_floats, 777);
    ck_assert_int_eq(o.wino_du_transposed, 0);

    /* Setting one variable leaves the others (and the pool) alone. */
    setenv("CT_WINO_DU_T", "1", 1);
    ck_assert_int_eq(ct_engine_opts_from_env(&o, &err), CT_OK);
    ck_assert_ptr_eq(o.pool, p);
    ck_assert_int_eq(o.conv_algo, CT_CONV_ALGO_IM2COL);
    ck_assert_int_eq(o.wino_tile, 4);
    ck_assert_int_eq(o.wino_chunk_floats, 777);
    ck_assert_int_eq(o.wino_du_transposed, 1);
    unset_all();
    ct_threadpool_free(p);
}
END_TEST

START_TEST(from_env_rejects_malformed) {
    static const struct {
        const char *name, *value;
    } bad[] = {{"CT_WINO_TILE", "3"},          {"CT_CONV_ALGO", "fast"}, {"CT_WINO_CHUNK_FLOATS", "-5"},
               {"CT_WINO_CHUNK_FLOATS", "12k"}, {"CT_WINO_DU_T", "2"},    {"CT_WINO_DU_T", "yes"},
               {"CT_SIMD", "sse2"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unset_all();
        setenv(bad[i].name, bad[i].value, 1);
        ct_engine_opts o;
        ct_engine_opts_init(&o);
        ct_error err = CT_ERROR_INIT;
        ck_assert_int_eq(ct_engine_opts_from_env(&o, &err), CT_ERR_CONFIG);
        ck_assert_int_eq(err.code, CT_ERR_CONFIG);
        ck_assert_msg(strstr(err.msg, bad[i].name) != NULL, "%s=%s: message '%s' does not name the variable",
                      bad[i].name, bad[i].value, err.msg);
    }
    unset_all();
}
END_TEST

/* ---- (c) conv_algo selects the path ---- */

static float *conv_with(ct_conv_algo algo, int64_t *n) {
    ct_graph *g = ct_graph_new(0);
    ck_assert_ptr_nonnull(g);
    ct_engine_opts o;
    ct_engine_opts_init(&o);
    o.conv_algo = algo;
    ct_graph_set_engine(g, &o);
    ck_assert_int_eq(ct_graph_engine(g)->conv_algo, algo);
    ct_tensor *x = ct_tensor_new4(g, 2, 16, 12, 12), *w = ct_tensor_new4(g, 8, 16, 3, 3), *b = ct_tensor_new1(g, 8);
    fill(x->data, x->numel, 11, -1, 1), fill(w->data, w->numel, 12, -1, 1), fill(b->data, b->numel, 13, -1, 1);
    ct_tensor *y = ct_conv2d(g, x, w, b, 1, 1);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    *n = y->numel;
    float *out = malloc(sizeof(float) * (size_t)y->numel);
    memcpy(out, y->data, sizeof(float) * (size_t)y->numel);
    ct_graph_free(g);
    return out;
}

START_TEST(conv_algo_option_is_read) {
    int64_t ni, nw;
    float *yi = conv_with(CT_CONV_ALGO_IM2COL, &ni), *yw = conv_with(CT_CONV_ALGO_WINOGRAD, &nw);
    ck_assert_int_eq(ni, nw);
    double scale = 0;
    for (int64_t i = 0; i < ni; i++) scale = fabs(yi[i]) > scale ? fabs(yi[i]) : scale;
    ck_assert(scale > 0);
    for (int64_t i = 0; i < ni; i++)
        ck_assert_msg(fabs(yi[i] - yw[i]) <= 1e-4 * scale, "y[%lld]: im2col %.7g, winograd %.7g", (long long)i, yi[i],
                      yw[i]);
    ck_assert_msg(memcmp(yi, yw, sizeof(float) * (size_t)ni) != 0,
                  "im2col and winograd results are bit-identical: conv_algo was not read");
    free(yi), free(yw);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, concurrent_graphs_own_pools);
    tcase_add_test(tc, from_env_parses_each_variable);
    tcase_add_test(tc, from_env_unset_leaves_fields);
    tcase_add_test(tc, from_env_rejects_malformed);
    tcase_add_test(tc, conv_algo_option_is_read);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

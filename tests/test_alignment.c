/* The alignment evaluator (plugins/evaluator/alignment) on constructed
 * features whose answer is known: cameras with the same embedding per
 * instant align perfectly (error 0, tau 1, retrieval 100), a camera whose
 * time runs backwards gives tau -1 and the exact error and retrieval of
 * t_hat = T-1-t, and independent random features give about 1/3 (the
 * exact expectation (T^2-1)/(3T^2)), tau about 0 and retrieval about
 * (3T-2)/T^2. Items reach the evaluator in a shuffled order, so it must
 * place them by the source's locate(). Refusals: a source without cameras,
 * sequence items, a split whose count disagrees with the layout. And the
 * host's side (ct_eval_env.source_extension): two TCN steps on multi-view
 * Fashion-MNIST made on the fly, then the evaluation through contrast. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_data_test.h"
#include "ct_test.h"
#include "data/multiview_fmnist.h"

#define MAXQ 256
#define D 8

/* The fake source: nq sequences of T frames, nv cameras, items in perm order. */
typedef struct fake {
    int64_t nq, T;
    int nv;
    int64_t n;      /* items */
    int64_t *perm;  /* item i is frame perm[i] of the ordered layout */
    float *feats;   /* n x D, by item */
    bool seq_items; /* locate answers view -1 */
    int64_t extra;  /* items the split has beyond the layout */
    ct_multiview mv;
} fake;

static fake g;

static int64_t f_length(void *self, int64_t q) {
    (void)self;
    return q >= 0 && q < g.nq ? g.T : 0;
}

static void f_locate(void *self, int64_t item, int64_t *q, int *v, int64_t *t) {
    (void)self;
    int64_t k = g.perm[item];
    *q = k / (g.nv * g.T);
    *v = g.seq_items ? -1 : (int)(k / g.T % g.nv);
    *t = g.seq_items ? -1 : k % g.T;
}

static const void *f_source_extension(const ct_eval_env *env, const char *split, const char *id) {
    (void)env;
    if (strcmp(split, "test") || strcmp(id, CT_MULTIVIEW_EXT)) return NULL;
    return g.mv.size ? &g.mv : NULL;
}

static ct_status f_features(const ct_eval_env *env, const char *split, float **feats, int32_t **labels, int64_t *n,
                            int64_t *dim, ct_error *err) {
    (void)env, (void)err;
    ck_assert_str_eq(split, "test");
    *n = g.n + g.extra;
    *dim = D;
    *feats = malloc((size_t)(*n) * D * sizeof **feats);
    *labels = malloc((size_t)(*n) * sizeof **labels);
    memset(*feats, 0, (size_t)(*n) * D * sizeof **feats);
    memcpy(*feats, g.feats, (size_t)g.n * D * sizeof **feats);
    for (int64_t i = 0; i < *n; i++) (*labels)[i] = -1;
    return CT_OK;
}

/* Layout of nq x nv x T with a shuffled item order; fill(q, v, t, out D). */
static void fake_new(int64_t nq, int nv, int64_t T, void (*fill)(int64_t, int, int64_t, float *, ct_rng *)) {
    memset(&g, 0, sizeof g);
    g.nq = nq, g.nv = nv, g.T = T, g.n = nq * nv * T;
    g.perm = malloc((size_t)g.n * sizeof *g.perm);
    g.feats = malloc((size_t)g.n * D * sizeof *g.feats);
    ct_rng r;
    ct_rng_init(&r, 42, 0);
    for (int64_t i = 0; i < g.n; i++) g.perm[i] = i;
    ct_rng_shuffle(&r, g.perm, g.n);
    for (int64_t i = 0; i < g.n; i++) {
        int64_t q, t;
        int v;
        f_locate(NULL, i, &q, &v, &t);
        fill(q, v, t, g.feats + i * D, &r);
    }
    g.mv.size = sizeof g.mv;
    g.mv.views = nv;
    g.mv.sequences = nq;
    g.mv.length = f_length;
    g.mv.locate = f_locate;
}

static void fake_free(void) {
    free(g.perm);
    free(g.feats);
}

/* A fixed random direction per (sequence, instant). */
static void base(int64_t q, int64_t t, float *out) {
    ct_rng r;
    ct_rng_init(&r, 1000 + (uint64_t)q, (uint64_t)t);
    for (int d = 0; d < D; d++) out[d] = ct_rng_normal(&r);
}

static void fill_same(int64_t q, int v, int64_t t, float *out, ct_rng *r) {
    base(q, t, out);
    for (int d = 0; d < D; d++) out[d] += 0.01f * ct_rng_normal(r) + 0.001f * v; /* cameras differ a little */
}

static void fill_reversed(int64_t q, int v, int64_t t, float *out, ct_rng *r) {
    (void)r;
    base(q, v == 1 ? g.T - 1 - t : t, out);
}

static void fill_random(int64_t q, int v, int64_t t, float *out, ct_rng *r) {
    (void)q, (void)v, (void)t;
    for (int d = 0; d < D; d++) out[d] = ct_rng_normal(r);
}

static ct_status run(const char *settings, ct_metrics *m, ct_error *err) {
    ct_registry *reg = ct_registry_new();
    dt_load_plugin(reg, "alignment");
    const ct_registry_entry *e = ct_registry_find(reg, CT_ROLE_EVALUATOR, "alignment");
    ck_assert_ptr_nonnull(e);
    const ct_evaluator_ops *ops = e->ops.evaluator;
    ct_settings *s = NULL;
    ck_assert_msg(ct_settings_parse(ops->params, settings, "alignment", &s, err) == CT_OK, "%s", err->msg);
    void *self = NULL;
    ck_assert(ops->create(s, dt_host(), &self, err) == CT_OK);
    ct_eval_env env;
    memset(&env, 0, sizeof env);
    env.size = sizeof env;
    env.host = dt_host();
    env.features = f_features;
    env.source_extension = f_source_extension;
    memset(m, 0, sizeof *m);
    ct_status st = ops->run(self, &env, m, err);
    ops->destroy(self);
    ct_settings_free(s);
    ct_registry_free(reg);
    return st;
}

static double metric(const ct_metrics *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->name[i], name)) return m->value[i];
    ck_abort_msg("no metric %s", name);
    return NAN;
}

START_TEST(same_embedding_aligns_perfectly) {
    const char *settings[2] = {"", "metric = \"euclidean\";"};
    for (int k = 0; k < 2; k++) {
        fake_new(5, 3, 16, fill_same);
        ct_metrics m;
        ct_error err = CT_ERROR_INIT;
        ck_assert_msg(run(settings[k], &m, &err) == CT_OK, "%s", err.msg);
        ck_assert_double_eq_tol(metric(&m, "error"), 0.0, 1e-12);
        ck_assert_double_eq_tol(metric(&m, "tau"), 1.0, 1e-12);
        ck_assert_double_eq_tol(metric(&m, "retrieval"), 100.0, 1e-9);
        ck_assert_double_eq(metric(&m, "sequences"), 5);
        ck_assert_double_eq(metric(&m, "pairs"), 5 * 3 * 2);
        fake_free();
    }
}
END_TEST

START_TEST(reversed_time_is_measured_exactly) {
    const int64_t T = 10;
    fake_new(4, 2, T, fill_reversed);
    ct_metrics m;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(run("", &m, &err) == CT_OK, "%s", err.msg);
    double want = 0;
    int hits = 0;
    for (int64_t t = 0; t < T; t++) {
        want += (double)llabs(2 * t - (T - 1));
        hits += llabs(2 * t - (T - 1)) <= 1;
    }
    ck_assert_double_eq_tol(metric(&m, "error"), want / (double)(T * T), 1e-12);
    ck_assert_double_eq_tol(metric(&m, "tau"), -1.0, 1e-12);
    ck_assert_double_eq_tol(metric(&m, "retrieval"), 100.0 * hits / T, 1e-9);
    fake_free();
    /* a wider window counts more as retrieved */
    fake_new(4, 2, T, fill_reversed);
    ck_assert(run("window = 3;", &m, &err) == CT_OK);
    ck_assert_double_eq_tol(metric(&m, "retrieval"), 40.0, 1e-9); /* |2t - 9| <= 3: t = 3..6 */
    fake_free();
}
END_TEST

START_TEST(random_embeddings_give_a_third) {
    const int64_t T = 20;
    fake_new(200, 2, T, fill_random);
    ct_metrics m;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(run("", &m, &err) == CT_OK, "%s", err.msg);
    double want = (double)(T * T - 1) / (3.0 * T * T); /* 0.3325 */
    ck_assert_msg(fabs(metric(&m, "error") - want) < 0.015, "error %g, want about %g", metric(&m, "error"), want);
    ck_assert_msg(fabs(metric(&m, "tau")) < 0.03, "tau %g", metric(&m, "tau"));
    double ret = 100.0 * (3.0 * T - 2.0) / (double)(T * T); /* 14.5 % */
    ck_assert_msg(fabs(metric(&m, "retrieval") - ret) < 2.0, "retrieval %g, want about %g", metric(&m, "retrieval"), ret);
    fake_free();
}
END_TEST

START_TEST(refusals) {
    fake_new(2, 2, 6, fill_same);
    ct_metrics m;
    ct_error err = CT_ERROR_INIT;
    g.mv.size = 0; /* the source offers no cameras */
    ck_assert(run("", &m, &err) != CT_OK);
    ck_assert_msg(strstr(err.msg, "no synchronised cameras") && strstr(err.msg, "items = \"frames\""), "%s", err.msg);
    g.mv.size = sizeof g.mv;
    g.seq_items = true;
    ck_assert(run("", &m, &err) != CT_OK);
    ck_assert_msg(strstr(err.msg, "whole sequences"), "%s", err.msg);
    g.seq_items = false;
    g.extra = 3;
    ck_assert(run("", &m, &err) != CT_OK);
    ck_assert_msg(strstr(err.msg, "27 items") && strstr(err.msg, "24"), "%s", err.msg);
    g.extra = 0;
    ck_assert(run("", &m, &err) == CT_OK);
    fake_free();
}
END_TEST

#ifdef CONTRAST_HAVE_FFMPEG
START_TEST(through_the_host) {
    char out[700];
    snprintf(out, sizeof out, "%s/mvf", ct_test_tmpdir());
    ct_mvf_params p;
    ct_mvf_defaults(&p);
    p.sequences = 8;
    p.test_sequences = 3;
    p.frames = 16;
    p.size = 48;
    p.pool = 10;
    ct_error err = CT_ERROR_INIT;
    bool reused;
    ck_assert_msg(ct_mvf_make(out, &p, false, &reused, &err) == CT_OK, "%s", err.msg);
    static char log[1 << 15];
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "%s/contrast train %s/configs/tcn_fmnist.cfg --set data.train.root=\"%s/train\" "
             "--set data.test.root=\"%s/test\" --set data.train.index_dir=\"\" --set data.test.index_dir=\"\" "
             "--set train.batch_size=4 --set train.max_steps=2 --set train.threads=1 --set train.keep=0 --run-dir %s/run",
             ct_test_build_dir(), ct_test_source_dir(), out, out, out);
    int rc = ct_test_run(cmd, log, sizeof log);
    ck_assert_msg(rc == 0, "`%s` exited %d:\n%s", cmd, rc, log);
    const char *line = strstr(log, "alignment.error ");
    ck_assert_msg(line && strstr(line, "alignment.sequences 3") && strstr(line, "alignment.pairs 6"), "%s", log);
    double e = atof(line + strlen("alignment.error "));
    ck_assert_msg(e > 0.0 && e < 0.6, "error %g", e);
}
END_TEST
#endif

int main(void) {
    Suite *s = suite_create("alignment");
    TCase *tc = tcase_create("alignment");
    tcase_add_test(tc, same_embedding_aligns_perfectly);
    tcase_add_test(tc, reversed_time_is_measured_exactly);
    tcase_add_test(tc, random_embeddings_give_a_third);
    tcase_add_test(tc, refusals);
#ifdef CONTRAST_HAVE_FFMPEG
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, through_the_host);
#endif
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

/* The knn and linear evaluator plugins on synthetic features: a separable
 * set is classified (almost) perfectly, shuffled labels give chance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "plugins/loader.h"

enum { CLASSES = 10, DIM = 16, N_TRAIN = 2000, N_TEST = 500 };

/* The synthetic data set an env serves. */
typedef struct synth {
    float tr[N_TRAIN * DIM], te[N_TEST * DIM];
    int32_t ytr[N_TRAIN], yte[N_TEST];
} synth;

static void make_split(float *x, int32_t *y, int n, const float *centers, ct_rng *r, bool shuffle) {
    for (int i = 0; i < n; i++) {
        int c = (int)ct_rng_below(r, CLASSES);
        y[i] = c;
        for (int d = 0; d < DIM; d++) x[i * DIM + d] = centers[c * DIM + d] + 0.3f * ct_rng_normal(r);
    }
    if (shuffle) /* labels no longer tied to the features */
        for (int i = 0; i < n; i++) y[i] = (int32_t)ct_rng_below(r, CLASSES);
}

static synth *make_synth(bool shuffle) {
    synth *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    ct_rng r;
    ct_rng_init(&r, 7, 1);
    float centers[CLASSES * DIM];
    for (int i = 0; i < CLASSES * DIM; i++) centers[i] = 2.0f * ct_rng_normal(&r);
    make_split(s->tr, s->ytr, N_TRAIN, centers, &r, shuffle);
    make_split(s->te, s->yte, N_TEST, centers, &r, shuffle);
    return s;
}

static ct_status synth_features(const ct_eval_env *env, const char *split, float **feats,
                                int32_t **labels, int64_t *n, int64_t *dim, ct_error *err) {
    const synth *s = env->host_ctx;
    bool train = strcmp(split, "train") == 0;
    if (!train && strcmp(split, "test") != 0)
        return ct_error_set(err, CT_ERR_INVALID, "unknown split %s", split);
    *n = train ? N_TRAIN : N_TEST;
    *dim = DIM;
    *feats = malloc((size_t)*n * DIM * sizeof **feats);
    *labels = malloc((size_t)*n * sizeof **labels);
    memcpy(*feats, train ? s->tr : s->te, (size_t)*n * DIM * sizeof **feats);
    memcpy(*labels, train ? s->ytr : s->yte, (size_t)*n * sizeof **labels);
    return CT_OK;
}

/* Run evaluator `name` with settings text on the synthetic set. */
static void run_eval(const char *name, const char *settings, bool shuffle, double *top1, double *top5) {
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_plugin_set *set = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&lo, &set, &err), CT_OK);
    const ct_registry_entry *e = ct_plugins_find(set, CT_ROLE_EVALUATOR, name);
    ck_assert_msg(e != NULL, "evaluator %s not found (CONTRAST_PLUGIN_PATH=%s)", name,
                  getenv("CONTRAST_PLUGIN_PATH"));
    ct_settings *s = NULL;
    ck_assert_msg(ct_settings_parse(e->ops.evaluator->params, settings, name, &s, &err) == CT_OK, "%s",
                  err.msg);
    const ct_host *host = ct_plugins_host_for(set, e);
    void *self = NULL;
    ck_assert_msg(e->ops.evaluator->create(s, host, &self, &err) == CT_OK, "%s", err.msg);
    synth *data = make_synth(shuffle);
    ct_eval_env env = {.size = sizeof env, .host = host, .num_classes = CLASSES, .seed = 3,
                       .features = synth_features, .host_ctx = data};
    ct_metrics m = {0};
    ck_assert_msg(e->ops.evaluator->run(self, &env, &m, &err) == CT_OK, "%s", err.msg);
    *top1 = *top5 = -1;
    for (int i = 0; i < m.n; i++) {
        if (strcmp(m.name[i], "top1") == 0) *top1 = m.value[i];
        if (strcmp(m.name[i], "top5") == 0) *top5 = m.value[i];
    }
    ck_assert(*top1 >= 0 && *top5 >= *top1);
    e->ops.evaluator->destroy(self);
    ct_settings_free(s);
    free(data);
    ct_plugins_free(set);
}

START_TEST(test_knn_separable) {
    double t1, t5;
    run_eval("knn", "k = 20;", false, &t1, &t5);
    ck_assert_msg(t1 >= 99.0, "knn top1 %.2f on separable data", t1);
    ck_assert_msg(t5 >= 99.9, "knn top5 %.2f", t5);
}
END_TEST

START_TEST(test_knn_default_k_separable) {
    double t1, t5;
    run_eval("knn", "", false, &t1, &t5); /* k = 200, T = 0.1 */
    ck_assert_msg(t1 >= 98.0, "knn(k=200) top1 %.2f on separable data", t1);
}
END_TEST

START_TEST(test_knn_shuffled_is_chance) {
    double t1, t5;
    run_eval("knn", "k = 20;", true, &t1, &t5);
    ck_assert_msg(t1 > 4.0 && t1 < 17.0, "knn top1 %.2f on shuffled labels (chance 10)", t1);
    ck_assert_msg(t5 > 38.0 && t5 < 62.0, "knn top5 %.2f on shuffled labels (chance 50)", t5);
}
END_TEST

START_TEST(test_linear_separable) {
    double t1, t5;
    run_eval("linear", "epochs = 20; batch_size = 128;", false, &t1, &t5);
    ck_assert_msg(t1 >= 99.0, "linear top1 %.2f on separable data", t1);
    ck_assert_msg(t5 >= 99.9, "linear top5 %.2f", t5);
}
END_TEST

START_TEST(test_linear_shuffled_is_chance) {
    double t1, t5;
    run_eval("linear", "epochs = 20; batch_size = 128;", true, &t1, &t5);
    ck_assert_msg(t1 > 4.0 && t1 < 17.0, "linear top1 %.2f on shuffled labels (chance 10)", t1);
}
END_TEST

START_TEST(test_knn_bad_settings_refused) {
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_plugin_set *set = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&lo, &set, &err), CT_OK);
    const ct_registry_entry *e = ct_plugins_find(set, CT_ROLE_EVALUATOR, "knn");
    ck_assert_ptr_nonnull(e);
    ct_settings *s = NULL;
    ck_assert_int_eq(ct_settings_parse(e->ops.evaluator->params, "k = 0;", "knn", &s, &err), CT_ERR_CONFIG);
    ck_assert_int_eq(ct_settings_parse(e->ops.evaluator->params, "kk = 3;", "knn", &s, &err), CT_ERR_CONFIG);
    ct_plugins_free(set);
}
END_TEST

int main(void) {
    Suite *s = suite_create("evaluators");
    TCase *tc = tcase_create("synthetic");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_knn_separable);
    tcase_add_test(tc, test_knn_default_k_separable);
    tcase_add_test(tc, test_knn_shuffled_is_chance);
    tcase_add_test(tc, test_linear_separable);
    tcase_add_test(tc, test_linear_shuffled_is_chance);
    tcase_add_test(tc, test_knn_bad_settings_refused);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

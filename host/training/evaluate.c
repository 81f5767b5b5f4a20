/* Evaluation: features, the evaluator environment, the evaluators. */
#include "training/evaluate.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/pipeline.h"
#include "dist/dist.h"
#include "training/clip_features.h"
#include "training/eval_training.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define EVAL_BATCH 256

static ct_dataset *split_data(const ct_model *m, const char *split) {
    if (strcmp(split, "train") == 0) return m->ex->eval_train;
    if (strcmp(split, "test") == 0) return m->ex->eval_test;
    return NULL;
}

/* Forward one batch (view 0) and append its features and labels.
 * `shuffle`: the shuffled-frame control on its clips (items at..). */
static ct_status encode_batch(ct_model *m, const ct_data_batch *b, bool shuffle, float *feats, int32_t *labels,
                              int64_t at, int64_t dim, ct_error *err) {
    ct_graph *g = m->graph;
    const ct_view_buf *v = &b->views[0];
    size_t frame = (size_t)v->c * (size_t)v->h * (size_t)v->w;
    for (int i = 0; shuffle && v->t > 1 && i < b->n; i++)
        ct_clip_shuffle_frames(v->data + (size_t)i * (size_t)v->t * frame, v->t, frame, m->ex->seed,
                               b->items ? b->items[i] : at + i, 0);
    int64_t shape[4] = {b->n, v->c, v->h, v->w}, clip[5] = {b->n, v->t, v->c, v->h, v->w};
    /* clips (t > 1) are (N, T, C, H, W) */
    ct_tensor *x = v->t > 1 ? ct_tensor_wrap(g, v->data, 5, clip) : ct_tensor_wrap(g, v->data, 4, shape);
    ct_tensor *f = x ? m->encoder.ops->forward(m->encoder.self, g, x) : NULL;
    if (!f) {
        ct_status st = ct_graph_status(g) ? ct_graph_status(g) : CT_ERR_INVALID;
        return ct_error_set(err, st, "encoder %s: %s", m->encoder.ops->name, ct_graph_error(g));
    }
    if (f->ndim != 2 || f->shape[0] != b->n || f->shape[1] != dim)
        return ct_error_set(err, CT_ERR_SHAPE, "encoder %s: output is not (%d, %lld)",
                            m->encoder.ops->name, b->n, (long long)dim);
    memcpy(feats + at * dim, f->data, (size_t)b->n * (size_t)dim * sizeof *feats);
    memcpy(labels + at, b->labels, (size_t)b->n * sizeof *labels);
    ct_graph_reset(g);
    return CT_OK;
}

/* Data-parallel training (m->gather_rows): this rank's share of the
 * split, items [r*N/P, (r+1)*N/P) in a malloc'd subset (*n = 0: the whole
 * dataset, one process). */
static ct_status shard_items(const ct_model *m, const ct_dataset *data, int64_t **items, int64_t *n, ct_error *err) {
    *items = NULL;
    *n = 0;
    int64_t count = data->info.count, p = ct_dist_size(), r = ct_dist_rank();
    if (!m->gather_rows || p == 1 || count < p) return CT_OK;
    int64_t lo = count * r / p, hi = count * (r + 1) / p;
    if (!(*items = malloc((size_t)(hi - lo) * sizeof **items)))
        return ct_error_set(err, CT_ERR_NOMEM, "out of memory for %lld item indices", (long long)(hi - lo));
    for (int64_t i = lo; i < hi; i++) (*items)[i - lo] = i;
    *n = hi - lo;
    return CT_OK;
}

/* Every rank's rows in rank (= index) order, replacing this rank's. */
static ct_status gather_shards(float **feats, int32_t **labels, int64_t *n, int64_t dim, ct_error *err) {
    int64_t *counts = malloc((size_t)ct_dist_size() * sizeof *counts);
    int64_t total = counts ? ct_dist_gather_counts(*n, counts, err) : -1;
    free(counts);
    if (total < 0) return err->code ? err->code : CT_ERR_NOMEM;
    float *f = malloc((size_t)(total ? total : 1) * (size_t)dim * sizeof *f);
    int32_t *l = malloc((size_t)(total ? total : 1) * sizeof *l);
    ct_status st = f && l ? CT_OK : ct_error_set(err, CT_ERR_NOMEM, "out of memory for %lld features", (long long)total);
    if (st == CT_OK) st = ct_dist_all_gather(*feats, *n * dim, sizeof *f, f, NULL, err);
    if (st == CT_OK) st = ct_dist_all_gather(*labels, *n, sizeof *l, l, NULL, err);
    if (st != CT_OK) {
        free(f);
        free(l);
        return st;
    }
    free(*feats);
    free(*labels);
    *feats = f, *labels = l, *n = total;
    return CT_OK;
}

int64_t ct_count_non_finite_rows(const float *v, int64_t rows, int64_t dim, int64_t *first) {
    int64_t bad = 0;
    if (first) *first = -1;
    for (int64_t i = 0; i < rows; i++) {
        /* No early exit inside a row: the comparison loop vectorizes. */
        int row_bad = 0;
        for (int64_t j = 0; j < dim; j++) row_bad |= !(fabsf(v[i * dim + j]) <= FLT_MAX);
        if (row_bad && first && *first < 0) *first = i;
        bad += row_bad != 0;
    }
    return bad;
}

ct_status ct_extract_features(ct_model *m, const char *split, float **feats, int32_t **labels,
                              int64_t *n, int64_t *dim, ct_error *err) {
    *feats = NULL;
    *labels = NULL;
    ct_dataset *data = split_data(m, split);
    if (!data)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: the evaluation section names no \"%s\" dataset",
                            m->ex->path, split);
    /* the shuffled-frame control applies to the measured split only */
    bool shuffle = m->ex->eval_shuffle_frames && strcmp(split, "test") == 0;
    if (m->ex->eval_clips > 1) {
        bool prev_grad = ct_graph_set_grad(m->graph, false), prev_train = ct_graph_set_train(m->graph, false);
        ct_status st = ct_extract_clip_features(m, data, m->ex->eval_clips, shuffle, feats, labels, n, dim, err);
        ct_graph_set_grad(m->graph, prev_grad);
        ct_graph_set_train(m->graph, prev_train);
        if (st != CT_OK) ct_error_prefix(err, "features of \"%s\": ", split);
        return st;
    }
    int workers = m->threads > 1 ? m->threads : 1;
    ct_pipeline *p = NULL;
    int64_t *shard = NULL, shard_n = 0;
    ct_status st = shard_items(m, data, &shard, &shard_n, err);
    if (st == CT_OK)
        st = ct_pipeline_new_eval(data, &m->ex->eval_chain, EVAL_BATCH, m->ex->seed, workers, shard, shard_n, &p, err);
    free(shard);
    if (st != CT_OK) return st;
    int64_t total = ct_pipeline_epoch_size(p), d = m->encoder.dim, at = 0;
    *feats = malloc((size_t)(total ? total : 1) * (size_t)d * sizeof **feats);
    *labels = malloc((size_t)(total ? total : 1) * sizeof **labels);
    if (!*feats || !*labels) {
        st = ct_error_set(err, CT_ERR_NOMEM, "out of memory for %lld x %lld features", (long long)total,
                          (long long)d);
        goto done;
    }
    bool prev_grad = ct_graph_set_grad(m->graph, false);
    bool prev_train = ct_graph_set_train(m->graph, false);
    st = ct_pipeline_start_epoch(p, 0, err);
    while (st == CT_OK) {
        const ct_data_batch *b = NULL;
        st = ct_pipeline_next(p, &b, err);
        if (st != CT_OK || !b) break;
        if (at + b->n > total) {
            st = ct_error_set(err, CT_ERR_INVALID, "evaluation pipeline yielded more than %lld items",
                              (long long)total);
        } else {
            st = encode_batch(m, b, shuffle, *feats, *labels, at, d, err);
            at += b->n;
        }
        ct_pipeline_release(p, b);
    }
    ct_graph_reset(m->graph);
    ct_graph_set_grad(m->graph, prev_grad);
    ct_graph_set_train(m->graph, prev_train);
    *n = at;
    *dim = d;
    if (st == CT_OK && m->gather_rows && ct_dist_size() > 1) st = gather_shards(feats, labels, n, d, err);
    at = *n;
    /* A number computed from NaN is not a result: refuse the features
     * before any evaluator or file sees them. */
    int64_t first, bad = st == CT_OK ? ct_count_non_finite_rows(*feats, at, d, &first) : 0;
    if (bad > 0)
        st = ct_error_set(err, CT_ERR_NUMERIC,
                          "encoder %s gave non-finite features (NaN or Inf) for %lld of %lld rows (first: item %lld); "
                          "the weights are broken (a diverged run or a damaged checkpoint)",
                          m->encoder.ops->name, (long long)bad, (long long)at, (long long)first);
done:
    ct_pipeline_free(p);
    if (st != CT_OK) {
        free(*feats);
        free(*labels);
        *feats = NULL;
        *labels = NULL;
        ct_error_prefix(err, "features of \"%s\": ", split);
    }
    return st;
}

/* One evaluation round: features cached per split, shared by evaluators. */
typedef struct eval_ctx {
    ct_model *m;
    float *feats[2];
    int32_t *labels[2];
    int64_t n[2], dim[2];
    double feature_s; /* time spent extracting features */
    ct_eval_training tr; /* the env's ABI 1.2 services (eval_training.c) */
} eval_ctx;

static ct_status env_features(const ct_eval_env *env, const char *split, float **feats,
                              int32_t **labels, int64_t *n, int64_t *dim, ct_error *err) {
    eval_ctx *c = ((ct_eval_training *)env->host_ctx)->owner;
    int s = strcmp(split, "train") == 0 ? 0 : strcmp(split, "test") == 0 ? 1 : -1;
    if (s < 0) return ct_error_set(err, CT_ERR_INVALID, "unknown split \"%s\" (train or test)", split);
    if (!c->feats[s]) {
        double t0 = now_s();
        ct_model_wide_blas(c->m, false); /* the encoder's ops use the pool */
        ct_status st = ct_extract_features(c->m, split, &c->feats[s], &c->labels[s], &c->n[s], &c->dim[s], err);
        ct_model_wide_blas(c->m, true);
        c->feature_s += now_s() - t0;
        if (st != CT_OK) return st;
    }
    size_t fb = (size_t)c->n[s] * (size_t)c->dim[s] * sizeof(float), lb = (size_t)c->n[s] * sizeof(int32_t);
    *feats = env->host->alloc(fb ? fb : 1);
    *labels = env->host->alloc(lb ? lb : 1);
    if (!*feats || !*labels) {
        env->host->free(*feats);
        env->host->free(*labels);
        return ct_error_set(err, CT_ERR_NOMEM, "out of memory copying features");
    }
    memcpy(*feats, c->feats[s], fb);
    memcpy(*labels, c->labels[s], lb);
    *n = c->n[s];
    *dim = c->dim[s];
    return CT_OK;
}

static const void *env_source_extension(const ct_eval_env *env, const char *split, const char *id) {
    eval_ctx *c = ((ct_eval_training *)env->host_ctx)->owner;
    const ct_dataset *d = split && id ? split_data(c->m, split) : NULL;
    return d && d->self && d->ops->extension ? d->ops->extension(d->self, id) : NULL;
}

static int num_classes(const ct_experiment *ex) {
    int c = 0;
    if (ex->eval_train && ex->eval_train->info.num_classes > c) c = ex->eval_train->info.num_classes;
    if (ex->eval_test && ex->eval_test->info.num_classes > c) c = ex->eval_test->info.num_classes;
    return c;
}

static ct_status prefetch_splits(const ct_eval_env *env, ct_error *err) {
    static const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        float *f = NULL;
        int32_t *l = NULL;
        int64_t n, d;
        ct_status st = env_features(env, splits[s], &f, &l, &n, &d, err);
        env->host->free(f);
        env->host->free(l);
        if (st != CT_OK) return st;
    }
    return CT_OK;
}

ct_status ct_evaluate_follow(ct_model *m, ct_error *err) {
    static const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        float *f = NULL;
        int32_t *l = NULL;
        int64_t n, d;
        ct_model_wide_blas(m, false);
        ct_status st = ct_extract_features(m, splits[s], &f, &l, &n, &d, err);
        free(f);
        free(l);
        if (st != CT_OK) return st;
    }
    return CT_OK;
}

ct_status ct_evaluate(ct_model *m, ct_metrics *out, ct_error *err) { return ct_evaluate_in(m, NULL, out, err); }

ct_status ct_evaluate_in(ct_model *m, const char *run_dir, ct_metrics *out, ct_error *err) {
    ct_experiment *ex = m->ex;
    if (ex->n_evaluators == 0 || !ex->eval_train || !ex->eval_test)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: no evaluation section with train/test data and evaluators",
                            ex->path);
    eval_ctx c = {0};
    c.m = m;
    ct_eval_env env = {.size = sizeof env, .host = &m->host, .encoder = &m->encoder, .store = m->store,
                       .num_classes = num_classes(ex), .seed = ex->seed, .features = env_features};
    ct_eval_training_init(&c.tr, &env, m, run_dir, &c);
    env.source_extension = env_source_extension;
    ct_status st = CT_OK;
    /* Data-parallel: both splits now, in the order the other ranks extract
     * their shards (ct_evaluate_follow), whatever the evaluators ask. */
    if (m->gather_rows && ct_dist_size() > 1) st = prefetch_splits(&env, err);
    for (int i = 0; i < ex->n_evaluators && st == CT_OK; i++) {
        const ct_evaluator *e = &ex->evaluators[i];
        ct_metrics r = {0};
        double t0 = now_s(), f0 = c.feature_s;
        /* the evaluator's own host, so its log lines name its plugin */
        const ct_registry_entry *re = ct_plugins_find(ex->plugins, CT_ROLE_EVALUATOR, e->ops->name);
        env.host = re ? ct_plugins_host_for(ex->plugins, re) : &m->host;
        ct_model_wide_blas(m, true);
        ct_eval_training_begin(&c.tr, i, e);
        st = e->ops->run(e->self, &env, &r, err);
        ct_status unused = ct_eval_training_end(&c.tr, st == CT_OK ? err : NULL);
        if (st == CT_OK) st = unused;
        ct_model_wide_blas(m, false);
        /* An evaluator may keep its settings and read them here: a misuse
         * is its error (the message names it and the key), ahead of run's. */
        char group[64];
        snprintf(group, sizeof group, "evaluation.evaluators.[%d]", i);
        ct_status misuse = ct_experiment_settings_status(ex, group, e->settings, err);
        if (misuse != CT_OK) {
            st = misuse;
            break;
        }
        /* Seconds of the evaluator itself, feature extraction excluded. */
        if (st == CT_OK) ct_metrics_set(&r, "seconds", now_s() - t0 - (c.feature_s - f0));
        if (st != CT_OK) {
            ct_error_prefix(err, "evaluator %s: ", e->ops->name);
            break;
        }
        for (int k = 0; k < r.n && st == CT_OK; k++)
            if (!isfinite(r.value[k]))
                st = ct_error_set(err, CT_ERR_NUMERIC, "evaluator %s: metric %s is %g, not a number to report",
                                  e->ops->name, r.name[k], r.value[k]);
        if (st != CT_OK) break;
        for (int k = 0; k < r.n; k++) {
            char name[CT_METRIC_NAME_MAX];
            snprintf(name, sizeof name, "%.20s.%.40s", e->ops->name, r.name[k]);
            if (ct_metrics_set(out, name, r.value[k]) != CT_OK) break;
        }
    }
    if (st == CT_OK) ct_metrics_set(out, "features.seconds", c.feature_s);
    for (int s = 0; s < 2; s++) {
        free(c.feats[s]);
        free(c.labels[s]);
    }
    return st;
}

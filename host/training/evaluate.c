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
#include "training/precise_bn.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define EVAL_BATCH 256

static ct_eval_data group_data(const ct_experiment *ex) {
    return (ct_eval_data){ex->eval_train, ex->eval_test, &ex->eval_chain, ex->eval_clips};
}

static ct_dataset *split_data(const ct_eval_data *d, const char *split) {
    if (strcmp(split, "train") == 0) return d->train;
    if (strcmp(split, "test") == 0) return d->test;
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
    ct_eval_data d = group_data(m->ex);
    return ct_extract_features_of(m, &d, split, feats, labels, n, dim, err);
}

ct_status ct_extract_features_of(ct_model *m, const ct_eval_data *ed, const char *split, float **feats,
                                 int32_t **labels, int64_t *n, int64_t *dim, ct_error *err) {
    *feats = NULL;
    *labels = NULL;
    ct_dataset *data = split_data(ed, split);
    if (!data)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: the evaluation section names no \"%s\" dataset",
                            m->ex->path, split);
    /* the shuffled-frame control applies to the measured split only */
    bool shuffle = m->ex->eval_shuffle_frames && strcmp(split, "test") == 0;
    if (ed->clips > 1) {
        bool prev_grad = ct_graph_set_grad(m->graph, false), prev_train = ct_graph_set_train(m->graph, false);
        ct_status st = ct_extract_clip_features(m, data, ed->chain, ed->clips, shuffle, feats, labels, n, dim, err);
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
        st = ct_pipeline_new_eval(data, ed->chain, EVAL_BATCH, m->ex->seed, workers, shard, shard_n, &p, err);
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
        ct_error_prefix(err, "features of \"%s\" (data \"%s\"): ", split, data->name);
    }
    return st;
}

/* Features of one dataset through one chain, shared by the evaluators
 * that measure the same data (and, with precise batch norm, whose
 * statistics come from the same data). */
typedef struct feature_set {
    const ct_dataset *data;
    const ct_chain *chain;
    int clips;
    bool shuffled; /* the shuffled-frame control (test splits only) */
    const ct_dataset *bn_data; /* precise batch norm's data and chain (NULL: the checkpoint's statistics) */
    const ct_chain *bn_chain;
    float *feats;
    int32_t *labels;
    int64_t n, dim;
} feature_set;

/* One evaluation round: the features cache and the evaluator running. */
typedef struct eval_ctx {
    ct_model *m;
    const ct_eval_data *cur; /* the data of the evaluator running now */
    int n_sets;
    feature_set sets[2 * CT_MAX_EVALUATORS + 2];
    double feature_s; /* time spent extracting features (and re-estimating batch norm) */
    /* Precise batch norm: the data and chain the encoder's statistics are
     * estimated on now (NULL: the checkpoint's), and those to put back. */
    const ct_dataset *bn_data;
    const ct_chain *bn_chain;
    ct_bn_saved bn_saved;
    ct_eval_training tr; /* the env's ABI 1.2 services (eval_training.c) */
} eval_ctx;

/* evaluation.precise_bn_batches: the encoder's batch-norm statistics
 * re-estimated on the current evaluator's train data and feature chain,
 * unless they already are; the checkpoint's are saved the first time. */
static ct_status calibrate(eval_ctx *c, ct_error *err) {
    const ct_experiment *ex = c->m->ex;
    if (ex->eval_precise_bn <= 0 || (c->bn_data == c->cur->train && c->bn_chain == c->cur->chain)) return CT_OK;
    ct_status st = c->bn_saved.values ? CT_OK : ct_bn_save(c->m, &c->bn_saved, err);
    double t0 = now_s();
    ct_model_wide_blas(c->m, false); /* the encoder's ops use the pool */
    if (st == CT_OK) st = ct_precise_bn(c->m, c->cur->train, c->cur->chain, ex->eval_precise_bn, EVAL_BATCH, err);
    c->feature_s += now_s() - t0;
    c->bn_data = st == CT_OK ? c->cur->train : NULL;
    c->bn_chain = st == CT_OK ? c->cur->chain : NULL;
    return st;
}

/* The end of a round: the checkpoint's batch-norm statistics back. */
static void end_round(eval_ctx *c) {
    ct_bn_restore(c->m, &c->bn_saved);
    c->bn_data = NULL;
    c->bn_chain = NULL;
}

/* Split "train" or "test" of the current evaluator's data, extracted once. */
static ct_status features_of(eval_ctx *c, const char *split, const feature_set **out, ct_error *err) {
    const ct_dataset *data = strcmp(split, "train") == 0 || strcmp(split, "test") == 0 ? split_data(c->cur, split)
                                                                                         : NULL;
    if (!data) return ct_error_set(err, CT_ERR_INVALID, "unknown split \"%s\" (train or test)", split);
    const bool precise = c->m->ex->eval_precise_bn > 0;
    feature_set key = {data, c->cur->chain, c->cur->clips, c->m->ex->eval_shuffle_frames && !strcmp(split, "test"),
                       precise ? c->cur->train : NULL, precise ? c->cur->chain : NULL, NULL, NULL, 0, 0};
    for (int i = 0; i < c->n_sets; i++) {
        const feature_set *f = &c->sets[i];
        if (f->data == key.data && f->chain == key.chain && f->clips == key.clips && f->shuffled == key.shuffled &&
            f->bn_data == key.bn_data && f->bn_chain == key.bn_chain) {
            *out = f;
            return CT_OK;
        }
    }
    if (c->n_sets == (int)(sizeof c->sets / sizeof c->sets[0]))
        return ct_error_set(err, CT_ERR_INVALID, "more than %d feature sets in one evaluation", c->n_sets);
    ct_status st = calibrate(c, err);
    if (st != CT_OK) return st;
    double t0 = now_s();
    ct_model_wide_blas(c->m, false); /* the encoder's ops use the pool */
    st = ct_extract_features_of(c->m, c->cur, split, &key.feats, &key.labels, &key.n, &key.dim, err);
    ct_model_wide_blas(c->m, true);
    c->feature_s += now_s() - t0;
    if (st != CT_OK) return st;
    c->sets[c->n_sets] = key;
    *out = &c->sets[c->n_sets++];
    return CT_OK;
}

static void free_sets(eval_ctx *c) {
    for (int i = 0; i < c->n_sets; i++) {
        free(c->sets[i].feats);
        free(c->sets[i].labels);
    }
    c->n_sets = 0;
}

static ct_status env_features(const ct_eval_env *env, const char *split, float **feats,
                              int32_t **labels, int64_t *n, int64_t *dim, ct_error *err) {
    eval_ctx *c = ((ct_eval_training *)env->host_ctx)->owner;
    const feature_set *f = NULL;
    ct_status st = features_of(c, split, &f, err);
    if (st != CT_OK) return st;
    size_t fb = (size_t)f->n * (size_t)f->dim * sizeof(float), lb = (size_t)f->n * sizeof(int32_t);
    *feats = env->host->alloc(fb ? fb : 1);
    *labels = env->host->alloc(lb ? lb : 1);
    if (!*feats || !*labels) {
        env->host->free(*feats);
        env->host->free(*labels);
        return ct_error_set(err, CT_ERR_NOMEM, "out of memory copying features");
    }
    memcpy(*feats, f->feats, fb);
    memcpy(*labels, f->labels, lb);
    *n = f->n;
    *dim = f->dim;
    return CT_OK;
}

static const void *env_source_extension(const ct_eval_env *env, const char *split, const char *id) {
    eval_ctx *c = ((ct_eval_training *)env->host_ctx)->owner;
    const ct_dataset *d = split && id ? split_data(c->cur, split) : NULL;
    return d && d->self && d->ops->extension ? d->ops->extension(d->self, id) : NULL;
}

static int num_classes(const ct_eval_data *d) {
    int c = 0;
    if (d->train && d->train->info.num_classes > c) c = d->train->info.num_classes;
    if (d->test && d->test->info.num_classes > c) c = d->test->info.num_classes;
    return c;
}

/* Every evaluator's train and test features, in evaluator order: what
 * rank 0 extracts first in a data-parallel job, and what every other rank
 * extracts its shards of at the same point (ct_evaluate_follow). */
static ct_status prefetch_all(eval_ctx *c, ct_error *err) {
    static const char *splits[2] = {"train", "test"};
    const ct_experiment *ex = c->m->ex;
    for (int i = 0; i < ex->n_evaluators; i++)
        for (int s = 0; s < 2; s++) {
            const feature_set *f;
            c->cur = &ex->evaluators[i].data;
            ct_status st = features_of(c, splits[s], &f, err);
            if (st != CT_OK) return st;
        }
    return CT_OK;
}

ct_status ct_evaluate_follow(ct_model *m, ct_error *err) {
    eval_ctx *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    c->m = m;
    ct_status st = prefetch_all(c, err);
    end_round(c);
    free_sets(c);
    free(c);
    return st;
}

ct_status ct_evaluate(ct_model *m, ct_metrics *out, ct_error *err) { return ct_evaluate_in(m, NULL, out, err); }

ct_status ct_evaluate_in(ct_model *m, const char *run_dir, ct_metrics *out, ct_error *err) {
    ct_experiment *ex = m->ex;
    if (ex->n_evaluators == 0 || !ex->eval_train || !ex->eval_test)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: no evaluation section with train/test data and evaluators",
                            ex->path);
    eval_ctx *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    c->m = m;
    ct_eval_env env = {.size = sizeof env, .host = &m->host, .encoder = &m->encoder, .store = m->store,
                       .seed = ex->seed, .features = env_features};
    ct_eval_training_init(&c->tr, &env, m, run_dir, c);
    env.source_extension = env_source_extension;
    ct_status st = CT_OK;
    /* Data-parallel: every evaluator's splits now, in the order the other
     * ranks extract their shards (ct_evaluate_follow). */
    if (m->gather_rows && ct_dist_size() > 1) st = prefetch_all(c, err);
    for (int i = 0; i < ex->n_evaluators && st == CT_OK; i++) {
        const ct_evaluator *e = &ex->evaluators[i];
        ct_metrics r = {0};
        double t0 = now_s(), f0 = c->feature_s;
        c->cur = &e->data;
        env.num_classes = num_classes(&e->data);
        /* the evaluator's own host, so its log lines name its plugin */
        const ct_registry_entry *re = ct_plugins_find(ex->plugins, CT_ROLE_EVALUATOR, e->ops->name);
        env.host = re ? ct_plugins_host_for(ex->plugins, re) : &m->host;
        /* an evaluator that copies the encoder copies these statistics */
        if ((st = calibrate(c, err)) != CT_OK) {
            ct_error_prefix(err, "evaluator %s: ", e->label);
            break;
        }
        ct_model_wide_blas(m, true);
        ct_eval_training_begin(&c->tr, i, e);
        st = e->ops->run(e->self, &env, &r, err);
        ct_status unused = ct_eval_training_end(&c->tr, st == CT_OK ? err : NULL);
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
        if (st == CT_OK) ct_metrics_set(&r, "seconds", now_s() - t0 - (c->feature_s - f0));
        if (st != CT_OK) {
            ct_error_prefix(err, "evaluator %s (data \"%s\" -> \"%s\"): ", e->label, e->data.train->name,
                            e->data.test->name);
            break;
        }
        for (int k = 0; k < r.n && st == CT_OK; k++)
            if (!isfinite(r.value[k]))
                st = ct_error_set(err, CT_ERR_NUMERIC, "evaluator %s: metric %s is %g, not a number to report",
                                  e->label, r.name[k], r.value[k]);
        if (st != CT_OK) break;
        for (int k = 0; k < r.n; k++) {
            char name[CT_METRIC_NAME_MAX];
            snprintf(name, sizeof name, "%.40s.%.20s", e->label, r.name[k]);
            if (ct_metrics_set(out, name, r.value[k]) != CT_OK) break;
        }
    }
    if (st == CT_OK) ct_metrics_set(out, "features.seconds", c->feature_s);
    end_round(c);
    free_sets(c);
    free(c);
    return st;
}

const ct_evaluator *ct_evaluator_of_metric(const ct_experiment *ex, const char *metric) {
    const ct_evaluator *best = NULL;
    size_t best_len = 0;
    for (int i = 0; i < ex->n_evaluators; i++) {
        const ct_evaluator *e = &ex->evaluators[i];
        size_t n = strlen(e->label);
        if (n > best_len && strncmp(metric, e->label, n) == 0 && metric[n] == '.') best = e, best_len = n;
    }
    return best;
}

void ct_evaluation_data_text(const ct_experiment *ex, char *buf, size_t n) {
    size_t used = 0;
    if (n) buf[0] = '\0';
    for (int i = 0; i < ex->n_evaluators && used < n; i++) {
        const ct_evaluator *e = &ex->evaluators[i];
        int w = snprintf(buf + used, n - used, "%s%s: %s -> %s", i ? "; " : "", e->label, e->data.train->name,
                         e->data.test->name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

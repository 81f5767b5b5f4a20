/* knn: weighted k-nearest-neighbour classifier on frozen features
 * (Wu et al. 2018, "Unsupervised feature learning via non-parametric
 * instance discrimination"): features are L2-normalised, similarity is the
 * cosine, the k most similar training items vote for their class with
 * weight exp(sim / T), and the class with the largest summed weight wins.
 * Reports top1 and top5 (percent) on the test split.
 *
 * The similarity matrix is computed in chunks of test rows (one GEMM per
 * chunk through the SDK's matmul) so memory stays at chunk x n_train.
 *
 * With a run directory (ct_eval_env.run_dir, ABI 1.2) it also writes the
 * confusion matrix of its top-1 predictions to <run_dir>/knn-confusion.txt
 * (a '#' header line, then one line per true class of whitespace-separated
 * counts per predicted class), which the run's report shows. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

typedef struct knn {
    int64_t k;
    float temperature;
    int64_t chunk;
} knn;

static const ct_param_spec knn_params[] = {
    CT_PARAM_INT("k", "200", 1, 100000, "neighbours that vote"),
    CT_PARAM_FLOAT("temperature", "0.1", 1e-4, 100, "vote weight exp(similarity / temperature)"),
    CT_PARAM_INT("chunk", "256", 1, 1 << 20, "test rows per similarity block"),
    CT_PARAM_END,
};

static ct_status knn_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    knn *e = calloc(1, sizeof *e);
    if (!e) return ct_error_set(err, CT_ERR_NOMEM, "knn: out of memory");
    e->k = ct_settings_int(s, "k");
    e->temperature = (float)ct_settings_float(s, "temperature");
    e->chunk = ct_settings_int(s, "chunk");
    *self = e;
    return CT_OK;
}

static void knn_destroy(void *self) { free(self); }

/* Work shared by the rows of one chunk. */
typedef struct chunk_job {
    const knn *e;
    const float *sim;       /* rows x n_train */
    int64_t n_train;
    const int32_t *train_labels;
    const int32_t *test_labels; /* of this chunk */
    int classes;
    int64_t *hits1, *hits5; /* per worker */
    int64_t *heap_idx;      /* per worker: k */
    float *heap_val;        /* per worker: k */
    double *votes;          /* per worker: classes */
    int64_t *confusion;     /* per worker: classes x classes (true, predicted) */
} chunk_job;

/* Min-heap of the k largest similarities seen so far. */
static void heap_sift_down(float *v, int64_t *ix, int64_t n, int64_t i) {
    while (true) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && v[l] < v[m]) m = l;
        if (r < n && v[r] < v[m]) m = r;
        if (m == i) return;
        float tv = v[i];
        v[i] = v[m];
        v[m] = tv;
        int64_t ti = ix[i];
        ix[i] = ix[m];
        ix[m] = ti;
        i = m;
    }
}

static void classify_row(const chunk_job *j, int64_t r, int w) {
    int64_t k = j->e->k < j->n_train ? j->e->k : j->n_train;
    float *hv = j->heap_val + (size_t)w * (size_t)j->e->k;
    int64_t *hi = j->heap_idx + (size_t)w * (size_t)j->e->k;
    double *votes = j->votes + (size_t)w * (size_t)j->classes;
    const float *s = j->sim + r * j->n_train;
    for (int64_t i = 0; i < k; i++) {
        hv[i] = s[i];
        hi[i] = i;
    }
    for (int64_t i = k / 2 - 1; i >= 0; i--) heap_sift_down(hv, hi, k, i);
    for (int64_t i = k; i < j->n_train; i++)
        if (s[i] > hv[0]) {
            hv[0] = s[i];
            hi[0] = i;
            heap_sift_down(hv, hi, k, 0);
        }
    memset(votes, 0, (size_t)j->classes * sizeof *votes);
    for (int64_t i = 0; i < k; i++) {
        int32_t c = j->train_labels[hi[i]];
        if (c >= 0 && c < j->classes) votes[c] += exp((double)hv[i] / j->e->temperature);
    }
    int32_t truth = j->test_labels[r];
    if (truth < 0 || truth >= j->classes) return;
    /* Rank of the true class: classes with strictly more votes, ties
     * broken toward the lower class index (a deterministic argmax). */
    int better = 0;
    for (int c = 0; c < j->classes; c++)
        if (votes[c] > votes[truth] || (votes[c] == votes[truth] && c < truth)) better++;
    if (better == 0) j->hits1[w]++;
    if (better < 5) j->hits5[w]++;
    int pred = 0; /* the same argmax: most votes, ties to the lower class */
    for (int c = 1; c < j->classes; c++)
        if (votes[c] > votes[pred]) pred = c;
    j->confusion[((size_t)w * (size_t)j->classes + (size_t)truth) * (size_t)j->classes + (size_t)pred]++;
}

static void chunk_rows(void *ctx, int64_t begin, int64_t end, int worker) {
    const chunk_job *j = ctx;
    for (int64_t r = begin; r < end; r++) classify_row(j, r, worker);
}

typedef struct knn_data {
    float *tr, *te;
    int32_t *ytr, *yte;
    int64_t ntr, nte, d, dte;
} knn_data;

static void free_data(const ct_eval_env *env, knn_data *d) {
    env->host->free(d->tr);
    env->host->free(d->te);
    env->host->free(d->ytr);
    env->host->free(d->yte);
}

static int count_classes(const ct_eval_env *env, const knn_data *d) {
    int c = env->num_classes;
    for (int64_t i = 0; i < d->ntr; i++)
        if (d->ytr[i] >= c) c = d->ytr[i] + 1;
    return c;
}

static ct_status run_chunks(const knn *e, const ct_eval_env *env, knn_data *d, int classes,
                            int64_t *top1, int64_t *top5, int64_t *confusion, ct_error *err) {
    int workers = ct_threadpool_size(env->host->pool);
    chunk_job j = {e, NULL, d->ntr, d->ytr, NULL, classes, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t cells = (size_t)classes * (size_t)classes;
    j.confusion = calloc((size_t)workers * cells, sizeof *j.confusion);
    j.hits1 = calloc((size_t)workers, sizeof *j.hits1);
    j.hits5 = calloc((size_t)workers, sizeof *j.hits5);
    j.heap_idx = malloc((size_t)workers * (size_t)e->k * sizeof *j.heap_idx);
    j.heap_val = malloc((size_t)workers * (size_t)e->k * sizeof *j.heap_val);
    j.votes = malloc((size_t)workers * (size_t)classes * sizeof *j.votes);
    ct_graph *g = ct_graph_new(0);
    ct_status st = CT_OK;
    if (!j.hits1 || !j.hits5 || !j.heap_idx || !j.heap_val || !j.votes || !j.confusion || !g) {
        st = ct_error_set(err, CT_ERR_NOMEM, "knn: out of memory");
        goto done;
    }
    ct_graph_set_grad(g, false);
    ct_graph_set_pool(g, env->host->pool);
    int64_t shape_tr[2] = {d->ntr, d->d};
    for (int64_t at = 0; at < d->nte; at += e->chunk) {
        int64_t rows = d->nte - at < e->chunk ? d->nte - at : e->chunk;
        int64_t shape_te[2] = {rows, d->d};
        ct_tensor *a = ct_tensor_wrap(g, d->te + at * d->d, 2, shape_te);
        ct_tensor *b = ct_tensor_wrap(g, d->tr, 2, shape_tr);
        ct_tensor *sim = (a && b) ? ct_matmul(g, a, b, false, true) : NULL;
        if (!sim) {
            st = ct_error_set(err, ct_graph_status(g), "knn: similarity: %s", ct_graph_error(g));
            goto done;
        }
        j.sim = sim->data;
        j.test_labels = d->yte + at;
        ct_parallel_for(env->host->pool, rows, 8, chunk_rows, &j);
        ct_graph_reset(g);
    }
    for (int w = 0; w < workers; w++) {
        *top1 += j.hits1[w];
        *top5 += j.hits5[w];
        for (size_t c = 0; c < cells; c++) confusion[c] += j.confusion[(size_t)w * cells + c];
    }
done:
    free(j.confusion);
    ct_graph_free(g);
    free(j.hits1);
    free(j.hits5);
    free(j.heap_idx);
    free(j.heap_val);
    free(j.votes);
    return st;
}

/* <run_dir>/knn-confusion.txt, written to a temporary name and renamed. */
static ct_status write_confusion(const knn *e, const char *dir, const int64_t *conf, int classes, int64_t n,
                                 ct_error *err) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof path, "%s/knn-confusion.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return ct_error_set(err, CT_ERR_IO, "knn: cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "# knn (k = %lld, T = %g) confusion over %lld test items: rows = true class, columns = predicted\n",
            (long long)e->k, (double)e->temperature, (long long)n);
    for (int t = 0; t < classes; t++)
        for (int p = 0; p < classes; p++)
            fprintf(f, "%lld%c", (long long)conf[(size_t)t * (size_t)classes + (size_t)p], p + 1 < classes ? ' ' : '\n');
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return ct_error_set(err, CT_ERR_IO, "knn: cannot write %s: %s", path, strerror(errno));
    }
    return CT_OK;
}

static ct_status knn_run(void *self, const ct_eval_env *env, ct_metrics *out, ct_error *err) {
    const knn *e = self;
    knn_data d = {0};
    ct_status st = env->features(env, "train", &d.tr, &d.ytr, &d.ntr, &d.d, err);
    if (st == CT_OK) st = env->features(env, "test", &d.te, &d.yte, &d.nte, &d.dte, err);
    if (st != CT_OK) {
        ct_error_prefix(err, "knn: ");
        free_data(env, &d);
        return st;
    }
    if (d.d != d.dte || d.ntr == 0 || d.nte == 0) {
        free_data(env, &d);
        return ct_error_set(err, CT_ERR_SHAPE, "knn: train features (%lld x %lld) and test features (%lld x %lld) do not fit",
                            (long long)d.ntr, (long long)d.d, (long long)d.nte, (long long)d.dte);
    }
    ct_rows_l2_normalize(d.tr, d.ntr, d.d, 1e-12f);
    ct_rows_l2_normalize(d.te, d.nte, d.d, 1e-12f);
    int classes = count_classes(env, &d);
    int64_t top1 = 0, top5 = 0, labelled = 0;
    for (int64_t i = 0; i < d.nte; i++) labelled += d.yte[i] >= 0;
    if (classes <= 0 || labelled == 0) {
        free_data(env, &d);
        return ct_error_set(err, CT_ERR_INVALID, "knn: the evaluation data has no labels");
    }
    int64_t *confusion = calloc((size_t)classes * (size_t)classes, sizeof *confusion);
    st = confusion ? run_chunks(e, env, &d, classes, &top1, &top5, confusion, err)
                   : ct_error_set(err, CT_ERR_NOMEM, "knn: out of memory");
    free_data(env, &d);
    if (st == CT_OK && env->size > offsetof(ct_eval_env, run_dir) && env->run_dir)
        st = write_confusion(e, env->run_dir, confusion, classes, labelled, err);
    free(confusion);
    if (st != CT_OK) return st;
    ct_metrics_set(out, "top1", 100.0 * (double)top1 / (double)labelled);
    ct_metrics_set(out, "top5", 100.0 * (double)top5 / (double)labelled);
    return CT_OK;
}

static const ct_evaluator_ops knn_ops = {
    .name = "knn",
    .description = "weighted kNN on L2-normalised frozen features (Wu et al. 2018)",
    .params = knn_params,
    .create = knn_create,
    .destroy = knn_destroy,
    .run = knn_run,
};

static ct_status knn_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_evaluator(reg, &knn_ops);
    if (st != CT_OK) ct_error_set(err, st, "knn: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("knn", "1.0.0", "MIT", "weighted kNN evaluator", CT_ROLE_EVALUATOR, knn_init)

/* linear: the linear probe. Multinomial logistic regression on frozen
 * features (extracted once, in eval mode), standardised with the training
 * split's per-dimension mean and standard deviation, L2-regularised
 * (weight_decay/2 * ||W||^2 added to the mean cross-entropy; the bias is
 * not regularised), trained with minibatch Adam and a cosine learning-rate
 * decay for a fixed epoch budget (enough to converge on Fashion-MNIST-sized
 * problems). Reports top1 and top5 (percent) on the test split.
 *
 * Everything runs on the SDK's own ops, parameter store and optimizer;
 * minibatch order is drawn from the evaluation seed, so results are
 * reproducible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

typedef struct linear {
    int64_t epochs, batch_size;
    float lr, weight_decay;
} linear;

static const ct_param_spec linear_params[] = {
    CT_PARAM_INT("epochs", "60", 1, 100000, "passes over the training features"),
    CT_PARAM_FLOAT("lr", "0.01", 1e-7, 10, "Adam learning rate (cosine-decayed to 0)"),
    CT_PARAM_FLOAT("weight_decay", "1e-4", 0, 10, "L2 regularisation strength on the weights"),
    CT_PARAM_INT("batch_size", "512", 1, 1 << 24, "minibatch rows"),
    CT_PARAM_END,
};

static ct_status linear_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    linear *e = calloc(1, sizeof *e);
    if (!e) return ct_error_set(err, CT_ERR_NOMEM, "linear: out of memory");
    e->epochs = ct_settings_int(s, "epochs");
    e->batch_size = ct_settings_int(s, "batch_size");
    e->lr = (float)ct_settings_float(s, "lr");
    e->weight_decay = (float)ct_settings_float(s, "weight_decay");
    *self = e;
    return CT_OK;
}

static void linear_destroy(void *self) { free(self); }

typedef struct probe_data {
    float *tr, *te;
    int32_t *ytr, *yte;
    int64_t ntr, nte, d, dte;
} probe_data;

static void free_data(const ct_eval_env *env, probe_data *d) {
    env->host->free(d->tr);
    env->host->free(d->te);
    env->host->free(d->ytr);
    env->host->free(d->yte);
}

/* Standardise both splits with the training split's statistics. */
static void standardise(probe_data *d) {
    for (int64_t j = 0; j < d->d; j++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < d->ntr; i++) s += d->tr[i * d->d + j];
        double mean = s / (double)d->ntr;
        for (int64_t i = 0; i < d->ntr; i++) {
            double x = d->tr[i * d->d + j] - mean;
            s2 += x * x;
        }
        double sd = sqrt(s2 / (double)d->ntr);
        float inv = (float)(sd > 1e-8 ? 1.0 / sd : 1.0);
        for (int64_t i = 0; i < d->ntr; i++) d->tr[i * d->d + j] = (float)(d->tr[i * d->d + j] - mean) * inv;
        for (int64_t i = 0; i < d->nte; i++) d->te[i * d->d + j] = (float)(d->te[i * d->d + j] - mean) * inv;
    }
}

typedef struct model {
    ct_params *store;
    ct_tensor *w, *b;
    ct_optim *opt;
    ct_graph *g;
} model;

static void model_free(model *m) {
    ct_graph_free(m->g);
    if (m->opt) ct_optim_free(m->opt);
    ct_params_free(m->store);
}

/* The classifier, trained on a graph whose ops use the host's pool. */
static ct_status model_new(model *m, int64_t d, int classes, uint64_t seed, float lr, ct_threadpool *pool,
                           ct_error *err) {
    memset(m, 0, sizeof *m);
    int64_t ws[2] = {classes, d}, bs[1] = {classes};
    m->store = ct_params_new(seed);
    if (!m->store) return ct_error_set(err, CT_ERR_NOMEM, "linear: out of memory");
    m->w = ct_params_add(m->store, "weight", CT_PARAM_TRAINABLE, 2, ws, CT_INIT_ZEROS, 0, 0, err);
    m->b = m->w ? ct_params_add(m->store, "bias", CT_PARAM_TRAINABLE, 1, bs, CT_INIT_ZEROS, 0,
                                CT_PARAM_NO_DECAY, err)
                : NULL;
    if (!m->b || ct_params_finalize(m->store, err) != CT_OK) return err->code;
    ct_optim_config oc = ct_optim_defaults(CT_OPTIM_ADAMW);
    oc.lr = lr;
    oc.weight_decay = 0; /* L2 is added to the gradient explicitly */
    m->opt = ct_optim_new(m->store, &oc, err);
    if (!m->opt) return err->code;
    m->g = ct_graph_new(0);
    if (!m->g) return ct_error_set(err, CT_ERR_NOMEM, "linear: out of memory");
    ct_graph_set_pool(m->g, pool);
    return CT_OK;
}

static ct_status train_probe(const linear *e, const ct_eval_env *env, probe_data *d, model *m,
                             ct_error *err) {
    int64_t bs = e->batch_size < d->ntr ? e->batch_size : d->ntr;
    int64_t steps_per_epoch = (d->ntr + bs - 1) / bs, total = steps_per_epoch * e->epochs;
    int64_t *order = malloc((size_t)d->ntr * sizeof *order);
    float *xb = malloc((size_t)bs * (size_t)d->d * sizeof *xb);
    int32_t *yb = malloc((size_t)bs * sizeof *yb);
    ct_status st = CT_OK;
    if (!order || !xb || !yb) {
        st = ct_error_set(err, CT_ERR_NOMEM, "linear: out of memory");
        goto done;
    }
    ct_schedule sched = {CT_SCHED_COSINE, e->lr, 0, 0, 0, 0, 1};
    float *wg = m->w->grad;
    int64_t step = 0;
    for (int64_t i = 0; i < d->ntr; i++) order[i] = i;
    for (int64_t ep = 0; ep < e->epochs; ep++) {
        ct_rng rng;
        ct_rng_init_keyed(&rng, env->seed, (uint64_t)ep, 0x11ea4, 0);
        ct_rng_shuffle(&rng, order, d->ntr);
        for (int64_t at = 0; at < d->ntr; at += bs, step++) {
            int64_t rows = d->ntr - at < bs ? d->ntr - at : bs;
            for (int64_t r = 0; r < rows; r++) {
                memcpy(xb + r * d->d, d->tr + order[at + r] * d->d, (size_t)d->d * sizeof *xb);
                yb[r] = d->ytr[order[at + r]];
            }
            int64_t shape[2] = {rows, d->d};
            ct_tensor *x = ct_tensor_wrap(m->g, xb, 2, shape);
            ct_tensor *logits = x ? ct_linear(m->g, x, m->w, m->b) : NULL;
            ct_tensor *loss = logits ? ct_cross_entropy(m->g, logits, yb) : NULL;
            ct_params_zero_grad(m->store);
            if (!loss || ct_graph_backward(m->g, loss) != CT_OK) {
                st = ct_error_set(err, ct_graph_status(m->g) ? ct_graph_status(m->g) : CT_ERR_INVALID,
                                  "linear: %s", ct_graph_error(m->g));
                goto done;
            }
            if (!isfinite(loss->data[0])) {
                st = ct_error_set(err, CT_ERR_NUMERIC, "linear: loss became %f at epoch %lld; lower lr",
                                  loss->data[0], (long long)ep);
                goto done;
            }
            for (int64_t i = 0; i < m->w->numel; i++) wg[i] += e->weight_decay * m->w->data[i];
            ct_optim_step(m->opt, ct_schedule_lr(&sched, step, total));
            ct_graph_reset(m->g);
        }
    }
done:
    free(order);
    free(xb);
    free(yb);
    return st;
}

static ct_status score(const ct_eval_env *env, probe_data *d, model *m, int classes, double *top1,
                       double *top5, ct_error *err) {
    (void)env;
    bool prev = ct_graph_set_grad(m->g, false);
    int64_t hit1 = 0, hit5 = 0, labelled = 0;
    const int64_t chunk = 4096;
    for (int64_t at = 0; at < d->nte; at += chunk) {
        int64_t rows = d->nte - at < chunk ? d->nte - at : chunk;
        int64_t shape[2] = {rows, d->d};
        ct_tensor *x = ct_tensor_wrap(m->g, d->te + at * d->d, 2, shape);
        ct_tensor *lg = x ? ct_linear(m->g, x, m->w, m->b) : NULL;
        if (!lg) {
            ct_graph_set_grad(m->g, prev);
            return ct_error_set(err, ct_graph_status(m->g), "linear: %s", ct_graph_error(m->g));
        }
        for (int64_t r = 0; r < rows; r++) {
            int32_t y = d->yte[at + r];
            if (y < 0 || y >= classes) continue;
            labelled++;
            const float *l = lg->data + r * classes;
            int better = 0;
            for (int c = 0; c < classes; c++) better += l[c] > l[y] || (l[c] == l[y] && c < y);
            hit1 += better == 0;
            hit5 += better < 5;
        }
        ct_graph_reset(m->g);
    }
    ct_graph_set_grad(m->g, prev);
    if (labelled == 0) return ct_error_set(err, CT_ERR_INVALID, "linear: the test split has no labels");
    *top1 = 100.0 * (double)hit1 / (double)labelled;
    *top5 = 100.0 * (double)hit5 / (double)labelled;
    return CT_OK;
}

static ct_status linear_run(void *self, const ct_eval_env *env, ct_metrics *out, ct_error *err) {
    const linear *e = self;
    probe_data d = {0};
    ct_status st = env->features(env, "train", &d.tr, &d.ytr, &d.ntr, &d.d, err);
    if (st == CT_OK) st = env->features(env, "test", &d.te, &d.yte, &d.nte, &d.dte, err);
    if (st != CT_OK) {
        ct_error_prefix(err, "linear: ");
        free_data(env, &d);
        return st;
    }
    if (d.d != d.dte || d.ntr == 0 || d.nte == 0) {
        free_data(env, &d);
        return ct_error_set(err, CT_ERR_SHAPE, "linear: train features (%lld x %lld) and test features (%lld x %lld) do not fit",
                            (long long)d.ntr, (long long)d.d, (long long)d.nte, (long long)d.dte);
    }
    /* Training rows without a label cannot be fitted: drop them. */
    int64_t kept = 0;
    int classes = env->num_classes;
    for (int64_t i = 0; i < d.ntr; i++) {
        if (d.ytr[i] < 0) continue;
        if (d.ytr[i] >= classes) classes = d.ytr[i] + 1;
        if (kept != i) memcpy(d.tr + kept * d.d, d.tr + i * d.d, (size_t)d.d * sizeof *d.tr);
        d.ytr[kept++] = d.ytr[i];
    }
    d.ntr = kept;
    if (kept == 0 || classes < 2) {
        free_data(env, &d);
        return ct_error_set(err, CT_ERR_INVALID, "linear: the training split has no labels");
    }
    standardise(&d);
    model m;
    double top1 = 0, top5 = 0;
    st = model_new(&m, d.d, classes, env->seed, e->lr, env->host->pool, err);
    if (st == CT_OK) st = train_probe(e, env, &d, &m, err);
    if (st == CT_OK) st = score(env, &d, &m, classes, &top1, &top5, err);
    model_free(&m);
    free_data(env, &d);
    if (st != CT_OK) return st;
    ct_metrics_set(out, "top1", top1);
    ct_metrics_set(out, "top5", top5);
    return CT_OK;
}

static const ct_evaluator_ops linear_ops = {
    .name = "linear",
    .description = "linear probe: L2-regularised logistic regression on frozen features",
    .params = linear_params,
    .create = linear_create,
    .destroy = linear_destroy,
    .run = linear_run,
};

static ct_status linear_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_evaluator(reg, &linear_ops);
    if (st != CT_OK) ct_error_set(err, st, "linear: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("linear", "1.0.0", "MIT", "linear-probe evaluator", CT_ROLE_EVALUATOR, linear_init)

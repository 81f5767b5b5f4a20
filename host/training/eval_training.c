/* The ABI 1.2 services of the evaluator environment (see eval_training.h). */
#include "training/eval_training.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/pipeline.h"
#include "training/checkpoint.h"

/* Fine-tuning draws its augmentation and order from the evaluation seed
 * mixed with this, so its views are not the pre-training views. */
#define EVAL_TRAIN_SALT 0xf1ae7a11e5eedull

static ct_eval_training *state_of(const ct_eval_env *env) { return env->host_ctx; }

/* The data of the evaluator running now (its own, or the group's). */
static ct_eval_data data_of(const ct_eval_training *t) {
    const ct_experiment *ex = t->m->ex;
    if (t->ev) return t->ev->data;
    return (ct_eval_data){ex->eval_train, ex->eval_test, &ex->eval_chain, ex->eval_clips};
}

static ct_dataset *split_dataset(const ct_eval_training *t, const char *split, ct_error *err) {
    ct_eval_data d = data_of(t);
    ct_dataset *ds = !split                        ? NULL
                     : strcmp(split, "train") == 0 ? d.train
                     : strcmp(split, "test") == 0  ? d.test
                                                   : NULL;
    if (!ds)
        ct_error_set(err, CT_ERR_INVALID, "unknown split \"%s\" (train or test)", split ? split : "(null)");
    return ds;
}

/* ---- labels ------------------------------------------------------------ */

static ct_status env_labels(const ct_eval_env *env, const char *split, int32_t **labels, int64_t *n,
                            ct_error *err) {
    *labels = NULL;
    *n = 0;
    ct_dataset *d = split_dataset(state_of(env), split, err);
    if (!d) return CT_ERR_INVALID;
    int64_t count = d->info.count;
    int32_t *y = env->host->alloc((size_t)(count ? count : 1) * sizeof *y);
    if (!y) return ct_error_set(err, CT_ERR_NOMEM, "out of memory for %lld labels", (long long)count);
    /* Sources have no label-only accessor: read each item, drop the image. */
    ct_image img = CT_IMAGE_INIT;
    ct_status st = CT_OK;
    for (int64_t i = 0; i < count && st == CT_OK; i++) {
        st = d->ops->get(d->self, i, &img, &y[i], err);
        if (st != CT_OK) ct_error_prefix(err, "data \"%s\" item %lld: ", d->name, (long long)i);
    }
    ct_image_free(&img);
    if (st != CT_OK) {
        env->host->free(y);
        return st;
    }
    *labels = y;
    *n = count;
    return CT_OK;
}

/* ---- encoder copies ---------------------------------------------------- */

typedef struct eval_copy {
    ct_eval_model pub; /* first: the handle the evaluator holds */
    ct_encoder enc;
} eval_copy;

/* Copy the model's values into the copy's store, entry by entry by name. */
static ct_status copy_values(const ct_params *from, ct_params *to, ct_error *err) {
    for (size_t i = 0; i < ct_params_count(to); i++) {
        const char *name = NULL;
        ct_tensor *dst = ct_params_at(to, i, &name, NULL, NULL);
        const ct_tensor *src = ct_params_find(from, name);
        if (!src || src->numel != dst->numel)
            return ct_error_set(err, CT_ERR_INVALID, "encoder copy: '%s' %s in the model", name,
                                src ? "has another size" : "is missing");
        memcpy(dst->data, src->data, (size_t)dst->numel * sizeof *dst->data);
    }
    return CT_OK;
}

static void free_copy(const ct_eval_env *env, ct_eval_model *pub) {
    if (!pub) return;
    ct_eval_training *t = state_of(env);
    eval_copy *c = (eval_copy *)pub;
    ct_graph_free(c->pub.graph);
    if (c->enc.self) c->enc.ops->destroy(c->enc.self);
    ct_params_free(c->pub.store);
    free(c);
    if (--t->copies == 0) ct_model_wide_blas(t->m, true);
}

static ct_status make_copy(ct_eval_training *t, eval_copy *c, ct_error *err) {
    const ct_experiment *ex = t->m->ex;
    const ct_encoder_ops *ops = ex->encoder_ops;
    const ct_registry_entry *re = ct_plugins_find(ex->plugins, CT_ROLE_ENCODER, ops->name);
    const ct_host *host = re ? ct_plugins_host_for(ex->plugins, re) : &t->m->host;
    c->pub.store = ct_params_new(ex->seed);
    c->pub.graph = ct_graph_new(0);
    if (!c->pub.store || !c->pub.graph) return ct_error_set(err, CT_ERR_NOMEM, "encoder copy: out of memory");
    ct_graph_set_engine(c->pub.graph, ct_graph_engine(t->m->graph));
    ct_status st = ops->create(ex->encoder_settings, host, &t->m->arch_env.input, c->pub.store, "encoder.",
                               &c->enc.self, err);
    if (st != CT_OK) c->enc.self = NULL;
    ct_status misuse = ct_experiment_settings_status(ex, "encoder", ex->encoder_settings, err);
    if (misuse != CT_OK) return misuse;
    if (st != CT_OK) {
        ct_error_prefix(err, "encoder copy: encoder %s: ", ops->name);
        return st;
    }
    c->enc.ops = ops;
    c->enc.dim = ops->out_dim(c->enc.self);
    snprintf(c->enc.prefix, sizeof c->enc.prefix, "encoder.");
    c->pub.encoder = &c->enc;
    st = ct_params_finalize(c->pub.store, err);
    return st == CT_OK ? copy_values(t->m->store, c->pub.store, err) : st;
}

static ct_status copy_encoder(const ct_eval_env *env, ct_eval_model **out, ct_error *err) {
    ct_eval_training *t = state_of(env);
    *out = NULL;
    eval_copy *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "encoder copy: out of memory");
    /* The copy's ops split over the pool, each calling single-threaded
     * BLAS; the evaluators' wide BLAS would oversubscribe the cores. */
    if (t->copies++ == 0) ct_model_wide_blas(t->m, false);
    ct_status st = make_copy(t, c, err);
    if (st != CT_OK) {
        free_copy(env, &c->pub);
        return st;
    }
    *out = &c->pub;
    return CT_OK;
}

/* ---- batches ----------------------------------------------------------- */

struct ct_eval_batches {
    ct_pipeline *p;
    const ct_data_batch *held; /* the batch handed out last */
};

static ct_status check_subset(const ct_eval_batches_opts *o, const ct_dataset *d, ct_error *err) {
    if (o->subset_n < 0 || (o->subset_n > 0 && !o->subset))
        return ct_error_set(err, CT_ERR_INVALID, "batches: subset of %lld items without indices",
                            (long long)o->subset_n);
    for (int64_t i = 0; i < o->subset_n; i++)
        if (o->subset[i] < 0 || o->subset[i] >= d->info.count)
            return ct_error_set(err, CT_ERR_INVALID, "batches: subset index %lld outside data \"%s\" (%lld items)",
                                (long long)o->subset[i], d->name, (long long)d->info.count);
    return CT_OK;
}

static ct_status open_batches(const ct_eval_env *env, const ct_eval_batches_opts *o, ct_eval_batches **out,
                              ct_error *err) {
    ct_eval_training *t = state_of(env);
    const ct_experiment *ex = t->m->ex;
    *out = NULL;
    if (!o || o->size < sizeof(size_t) || o->batch_size <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "batches: options without size or batch_size");
    ct_dataset *d = split_dataset(t, o->split, err);
    if (!d) return CT_ERR_INVALID;
    ct_status st = check_subset(o, d, err);
    if (st != CT_OK) return st;
    ct_eval_batches *it = calloc(1, sizeof *it);
    if (!it) return ct_error_set(err, CT_ERR_NOMEM, "batches: out of memory");
    int workers = t->m->threads > 1 ? t->m->threads : 1;
    if (!o->augment) {
        st = ct_pipeline_new_eval(d, data_of(t).chain, o->batch_size, ex->seed, workers, o->subset, o->subset_n,
                                  &it->p, err);
    } else {
        t->used_chain = true;
        ct_pipeline_spec spec = {0};
        spec.data = d;
        spec.weight = 1.0f;
        spec.n_groups = 1;
        spec.groups[0].count = 1;
        spec.groups[0].chain = t->ev && t->ev->has_chain ? t->ev->chain : *data_of(t).chain;
        ct_pipeline_opts po = ct_pipeline_opts_default(o->batch_size, ex->seed ^ EVAL_TRAIN_SALT);
        int64_t items = o->subset_n > 0 ? o->subset_n : d->info.count;
        po.drop_last = items >= o->batch_size;
        po.workers = workers;
        po.subset = o->subset;
        po.subset_n = o->subset_n;
        st = ct_pipeline_new(&spec, &po, &it->p, err);
    }
    if (st != CT_OK) {
        free(it);
        return st;
    }
    *out = it;
    return CT_OK;
}

static ct_status start_epoch(ct_eval_batches *it, int64_t epoch, ct_error *err) {
    if (!it) return ct_error_set(err, CT_ERR_INVALID, "batches: no iterator");
    ct_pipeline_release(it->p, it->held);
    it->held = NULL;
    return ct_pipeline_start_epoch(it->p, epoch, err);
}

static ct_status next_batch(ct_eval_batches *it, ct_graph *g, ct_tensor **x, const int32_t **labels,
                            ct_error *err) {
    *x = NULL;
    *labels = NULL;
    if (!it || !g) return ct_error_set(err, CT_ERR_INVALID, "batches: no iterator or graph");
    ct_pipeline_release(it->p, it->held);
    it->held = NULL;
    const ct_data_batch *b = NULL;
    ct_status st = ct_pipeline_next(it->p, &b, err);
    if (st != CT_OK || !b) return st;
    it->held = b;
    const ct_view_buf *v = &b->views[0];
    if (v->t != 1)
        return ct_error_set(err, CT_ERR_UNSUPPORTED, "batches: clips (%d frames) are not supported", v->t);
    int64_t shape[4] = {b->n, v->c, v->h, v->w};
    *x = ct_tensor_wrap(g, v->data, 4, shape);
    if (!*x) return ct_error_set(err, ct_graph_status(g) ? ct_graph_status(g) : CT_ERR_NOMEM, "batches: %s",
                                 ct_graph_error(g));
    *labels = b->labels;
    return CT_OK;
}

static void close_batches(ct_eval_batches *it) {
    if (!it) return;
    ct_pipeline_release(it->p, it->held);
    ct_pipeline_free(it->p);
    free(it);
}

/* ---- saving weights ------------------------------------------------------ */

static bool safe_name(const char *name) {
    if (!name || !*name || strncmp(name, "checkpoint", 10) == 0 || name[0] == '.') return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-' || *p == '.'))
            return false;
    return strlen(name) < 128;
}

static ct_status save_params(const ct_eval_env *env, const ct_params *store, const char *name, char *path,
                             size_t n, ct_error *err) {
    ct_eval_training *t = state_of(env);
    if (!t->run_dir) return ct_error_set(err, CT_ERR_INVALID, "save_params: this evaluation has no run directory");
    if (!safe_name(name))
        return ct_error_set(err, CT_ERR_INVALID,
                            "save_params: '%s' is not a file name of [A-Za-z0-9_.-] (nor checkpoint*)",
                            name ? name : "(null)");
    char file[1300];
    snprintf(file, sizeof file, "%s/%s.safetensors", t->run_dir, name);
    size_t count = ct_params_count(store);
    ct_safetensors_tensor *ts = calloc(count ? count : 1, sizeof *ts);
    if (!ts) return ct_error_set(err, CT_ERR_NOMEM, "out of memory saving %s", file);
    for (size_t i = 0; i < count; i++) {
        const ct_tensor *x = ct_params_at(store, i, &ts[i].name, NULL, NULL);
        ts[i].dtype = CT_SAFETENSORS_F32;
        ts[i].ndim = x->ndim;
        for (int d = 0; d < x->ndim; d++) ts[i].shape[d] = x->shape[d];
        ts[i].data = x->data;
        ts[i].nbytes = (size_t)x->numel * sizeof(float);
    }
    ct_st_meta meta[2] = {{"format", "contrast-evaluator-weights-1"},
                          {"evaluator", t->ev ? t->ev->ops->name : ""}};
    ct_status st = ct_safetensors_write(file, ts, count, meta, 2, err);
    free(ts);
    if (st == CT_OK && path) snprintf(path, n, "%s", file);
    return st;
}

/* ---- the round ----------------------------------------------------------- */

void ct_eval_training_init(ct_eval_training *t, ct_eval_env *env, ct_model *m, const char *run_dir,
                           void *owner) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->run_dir = run_dir;
    t->owner = owner;
    env->host_ctx = t;
    env->run_dir = run_dir;
    env->labels = env_labels;
    env->copy_encoder = copy_encoder;
    env->free_copy = free_copy;
    env->open_batches = open_batches;
    env->start_epoch = start_epoch;
    env->next_batch = next_batch;
    env->close_batches = close_batches;
    env->save_params = save_params;
}

void ct_eval_training_begin(ct_eval_training *t, int index, const ct_evaluator *ev) {
    t->ev = ev;
    t->index = index;
    t->used_chain = false;
}

ct_status ct_eval_training_end(ct_eval_training *t, ct_error *err) {
    if (t->copies > 0) {
        /* The evaluator's memory is its own to free; the BLAS setting is ours. */
        fprintf(stderr, "contrast: warning: evaluator %s left %d encoder copies unfreed\n",
                t->ev ? t->ev->ops->name : "?", t->copies);
        t->copies = 0;
        ct_model_wide_blas(t->m, true);
    }
    if (t->ev && t->ev->has_chain && !t->used_chain)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "%s: evaluation.evaluators[%d] (evaluator %s) has transforms, but it never trains on "
                            "augmented batches; remove them",
                            t->m->ex->path, t->index, t->ev->ops->name);
    return CT_OK;
}

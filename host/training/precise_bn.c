/* Precise batch norm (see precise_bn.h). */
#include "training/precise_bn.h"

#include <stdlib.h>
#include <string.h>

#include "data/pipeline.h"

/* The subset's draw, apart from the pipelines' and the evaluators' streams. */
#define PRECISE_BN_SALT 0xb7a7c5e5eedull

/* The floats of every buffer the encoder declared (its prefix), copied out
 * of the store or back into it when `copy` is given. */
static size_t encoder_buffers(const ct_model *m, float *copy, bool to_store) {
    size_t at = 0, plen = strlen(m->encoder.prefix);
    for (size_t i = 0; i < ct_params_count(m->store); i++) {
        const char *name = NULL;
        ct_param_kind kind;
        ct_tensor *t = ct_params_at(m->store, i, &name, &kind, NULL);
        if (kind != CT_PARAM_BUFFER || strncmp(name, m->encoder.prefix, plen) != 0) continue;
        size_t n = (size_t)t->numel;
        if (copy && to_store) memcpy(t->data, copy + at, n * sizeof *copy);
        if (copy && !to_store) memcpy(copy + at, t->data, n * sizeof *copy);
        at += n;
    }
    return at;
}

ct_status ct_bn_save(const ct_model *m, ct_bn_saved *s, ct_error *err) {
    s->n = encoder_buffers(m, NULL, false);
    s->values = malloc((s->n ? s->n : 1) * sizeof *s->values);
    if (!s->values) return ct_error_set(err, CT_ERR_NOMEM, "precise batch norm: out of memory for %zu buffers", s->n);
    encoder_buffers(m, s->values, false);
    return CT_OK;
}

void ct_bn_restore(ct_model *m, ct_bn_saved *s) {
    if (s->values) encoder_buffers(m, s->values, true);
    free(s->values);
    s->values = NULL;
    s->n = 0;
}

/* The first `take` of a seeded permutation of the data's items: batches
 * that sample every class even where a source lists its items by class. */
static int64_t *random_subset(int64_t count, int64_t take, uint64_t seed) {
    int64_t *idx = malloc((size_t)(count ? count : 1) * sizeof *idx);
    if (!idx) return NULL;
    for (int64_t i = 0; i < count; i++) idx[i] = i;
    ct_rng r;
    ct_rng_init(&r, seed ^ PRECISE_BN_SALT, 0);
    for (int64_t i = 0; i < take && i < count - 1; i++) { /* partial Fisher-Yates */
        int64_t j = i + (int64_t)ct_rng_below(&r, (uint32_t)(count - i));
        int64_t x = idx[i];
        idx[i] = idx[j];
        idx[j] = x;
    }
    return idx;
}

/* One batch (view 0) through the encoder; the graph's modes are the caller's. */
static ct_status forward_batch(ct_model *m, const ct_data_batch *b, ct_error *err) {
    const ct_view_buf *v = &b->views[0];
    int64_t image[4] = {b->n, v->c, v->h, v->w}, clip[5] = {b->n, v->t, v->c, v->h, v->w};
    ct_tensor *x = v->t > 1 ? ct_tensor_wrap(m->graph, v->data, 5, clip) : ct_tensor_wrap(m->graph, v->data, 4, image);
    ct_tensor *f = x ? m->encoder.ops->forward(m->encoder.self, m->graph, x) : NULL;
    ct_status st = f ? CT_OK
                     : ct_error_set(err, ct_graph_status(m->graph) ? ct_graph_status(m->graph) : CT_ERR_INVALID,
                                    "encoder %s: %s", m->encoder.ops->name, ct_graph_error(m->graph));
    ct_graph_reset(m->graph);
    return st;
}

static ct_status run_batches(ct_model *m, ct_pipeline *p, ct_error *err) {
    ct_status st = ct_pipeline_start_epoch(p, 0, err);
    for (int k = 0; st == CT_OK; k++) {
        const ct_data_batch *b = NULL;
        if ((st = ct_pipeline_next(p, &b, err)) != CT_OK || !b) break;
        /* batch k weighs 1/(k+1): the running statistics end as the mean */
        ct_graph_set_bn_momentum(m->graph, 1.0f / (float)(k + 1));
        st = forward_batch(m, b, err);
        ct_pipeline_release(p, b);
    }
    return st;
}

ct_status ct_precise_bn(ct_model *m, ct_dataset *data, const ct_chain *chain, int batches, int64_t batch_size,
                        ct_error *err) {
    int64_t count = data->info.count, take = (int64_t)batches * batch_size;
    if (take > count) take = count;
    if (take <= 0) return CT_OK;
    int64_t *subset = random_subset(count, take, m->ex->seed);
    if (!subset) return ct_error_set(err, CT_ERR_NOMEM, "precise batch norm: out of memory for %lld items", (long long)count);
    ct_pipeline *p = NULL;
    int workers = m->threads > 1 ? m->threads : 1;
    ct_status st = ct_pipeline_new_eval(data, chain, batch_size, m->ex->seed, workers, subset, take, &p, err);
    free(subset);
    if (st != CT_OK) return st;
    /* the model's engine without the statistics' sum over ranks */
    ct_engine_opts saved = *ct_graph_engine(m->graph), local = saved;
    local.allreduce_sum = NULL, local.allreduce_ctx = NULL;
    ct_graph_set_engine(m->graph, &local);
    bool prev_grad = ct_graph_set_grad(m->graph, false), prev_train = ct_graph_set_train(m->graph, true);
    float prev_momentum = ct_graph_bn_momentum(m->graph);
    st = run_batches(m, p, err);
    ct_graph_set_bn_momentum(m->graph, prev_momentum);
    ct_graph_set_train(m->graph, prev_train);
    ct_graph_set_grad(m->graph, prev_grad);
    ct_graph_set_engine(m->graph, &saved);
    ct_pipeline_free(p);
    if (st != CT_OK) ct_error_prefix(err, "precise batch norm on data \"%s\": ", data->name);
    return st;
}

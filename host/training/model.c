/* The model builder (see model.h). */
#include "training/model.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/encoder_inputs.h"
#include "dist/dist.h"

static const ct_host *plugin_host(const ct_model *m, ct_role role, const char *name) {
    const ct_registry_entry *e = ct_plugins_find(m->ex->plugins, role, name);
    return e ? ct_plugins_host_for(m->ex->plugins, e) : &m->host;
}

static ct_status make_encoder(ct_model *m, const char *prefix, ct_encoder *enc, ct_error *err) {
    const ct_encoder_ops *ops = m->ex->encoder_ops;
    memset(enc, 0, sizeof *enc);
    ct_status st = ops->create(m->ex->encoder_settings, plugin_host(m, CT_ROLE_ENCODER, ops->name),
                               &m->arch_env.input, m->store, prefix, &enc->self, err);
    if (st != CT_OK) enc->self = NULL;
    /* A misuse of its settings is the encoder's error, ahead of create's
     * own (a value read as 0 is the likelier cause); the message names
     * the group, the plugin and the key. */
    ct_status misuse = ct_experiment_settings_status(m->ex, "encoder", m->ex->encoder_settings, err);
    if (misuse != CT_OK) {
        if (enc->self) ops->destroy(enc->self);
        memset(enc, 0, sizeof *enc);
        return misuse;
    }
    if (st != CT_OK) {
        ct_error_prefix(err, "encoder %s: ", ops->name);
        return st;
    }
    enc->ops = ops;
    enc->dim = ops->out_dim(enc->self);
    snprintf(enc->prefix, sizeof enc->prefix, "%s", prefix);
    return CT_OK;
}

/* The architecture env's make_encoder: another encoder of the experiment's
 * type under `prefix`, owned by the model. */
static ct_status env_make_encoder(const ct_arch_env *env, const char *prefix, ct_encoder **out,
                                  ct_error *err) {
    ct_model *m = env->host_ctx;
    if (m->n_extra >= CT_MODEL_MAX_ENCODERS)
        return ct_error_set(err, CT_ERR_INVALID, "at most %d extra encoders", CT_MODEL_MAX_ENCODERS);
    ct_status st = make_encoder(m, prefix, &m->extra[m->n_extra], err);
    if (st == CT_OK) *out = &m->extra[m->n_extra++];
    return st;
}

/* ---- the embedding seam ------------------------------------------------------------ */

/* A structure's embeddings must be what it declared: n_sets sets, the
 * asked ones there, rows_per_sample rows per sample, encoder features. */
static ct_status check_embeddings(ct_graph *g, const ct_structure_info *info, const char *name, const ct_batch *b,
                                  const ct_encoder *enc, uint32_t sets, const ct_embeddings *e) {
    const char *bad = NULL;
    if (e->n_sets != info->n_sets || e->rows_per_sample != info->rows_per_sample ||
        e->rows != (int64_t)b->n * info->rows_per_sample || !e->items || !e->groups)
        bad = "counts or row ids differ from what it declared";
    for (int s = 0; !bad && s < e->n_sets; s++) {
        if (!(sets & CT_SET(s))) continue;
        const ct_tensor *x = e->set[s];
        if (!x || x->ndim != 2 || x->shape[0] != e->rows || x->shape[1] != enc->dim) bad = "a set is missing or not (rows, encoder features)";
    }
    if (!bad) return CT_OK;
    ct_graph_fail(g, CT_ERR_PLUGIN, "structure %s: embeddings of pipeline %d: %s (%d sets of %lld rows)", name,
                  b->pipeline, bad, e->n_sets, (long long)e->rows);
    return CT_ERR_PLUGIN;
}

/* The batch's pipeline's structure (the default "views" when it has none). */
static ct_status structure_embed(const ct_arch_env *env, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                                 ct_embed_side side, uint32_t sets, ct_embeddings *out) {
    ct_model *m = env->host_ctx;
    if (b->pipeline < 0 || b->pipeline >= m->ex->n_pipelines) return ct_views_embed(g, b, enc, sets, out);
    const ct_structure_inst *si = &m->ex->pipelines[b->pipeline].structure;
    if (!si->ops) return ct_views_embed(g, b, enc, sets, out);
    if (side == CT_SIDE_KEY && si->ops->declare && !m->key_side) {
        ct_graph_fail(g, CT_ERR_PLUGIN,
                      "structure %s: the architecture embeds a key side without asking for its key copies "
                      "(ct_arch_env.make_key_side)",
                      si->ops->name);
        return CT_ERR_PLUGIN;
    }
    memset(out, 0, sizeof *out);
    ct_status st = si->ops->embed(si->self, g, b, enc, side, sets, out);
    if (st == CT_OK && ct_graph_status(g) != CT_OK) st = ct_graph_status(g);
    if (st != CT_OK) {
        if (ct_graph_status(g) == CT_OK) ct_graph_fail(g, st, "structure %s: embedding failed", si->ops->name);
        return st;
    }
    return check_embeddings(g, &si->info, si->ops->name, b, enc, sets, out);
}

/* ct_arch_env.embed: the structure's embeddings, shown to the observer
 * (the trainer's collapse watch) on the query side. Data-parallel
 * (dist.h): the encoder's batch norm over every rank's batch when sync_bn,
 * then every rank's rows, so each architecture's negatives, queue, bank
 * and Sinkhorn see the global batch; the heads then see global rows and
 * need no synchronisation. The observer sees this rank's rows. */
static ct_status env_embed(const ct_arch_env *env, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                           ct_embed_side side, uint32_t sets, ct_embeddings *out) {
    const ct_model *m = env->host_ctx;
    ct_engine_opts saved = *ct_graph_engine(g);
    if (m->sync_bn) {
        ct_engine_opts synced = saved;
        ct_dist_engine_hook(&synced);
        ct_graph_set_engine(g, &synced);
    }
    ct_status st = structure_embed(env, g, b, enc, side, sets, out);
    if (m->sync_bn) ct_graph_set_engine(g, &saved);
    if (st == CT_OK && side == CT_SIDE_QUERY && m->embed_observer) m->embed_observer(m->embed_observer_ctx, out);
    if (st == CT_OK && m->gather_rows) st = ct_dist_gather_embeddings(g, out);
    return st;
}

/* ct_arch_env.embed_local: this rank's rows, batch norm over b alone. */
static ct_status env_embed_local(const ct_arch_env *env, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                                 ct_embed_side side, uint32_t sets, ct_embeddings *out) {
    return structure_embed(env, g, b, enc, side, sets, out);
}

/* ct_arch_env.gather_batch and gather_rows: the communicator's. */
static ct_status env_gather_batch(const ct_arch_env *env, ct_graph *g, const ct_batch *b, ct_batch *out) {
    (void)env;
    return ct_dist_gather_batch(g, b, out);
}

static ct_tensor *env_gather_rows(const ct_arch_env *env, ct_graph *g, ct_tensor *x) {
    (void)env;
    return ct_dist_gather_rows(g, x);
}

/* Declare every structure's layers for `side` ("key_" prefixed). */
static ct_status declare_structures(ct_model *m, ct_embed_side side, ct_error *err) {
    for (int k = 0; k < m->ex->n_pipelines; k++) {
        const ct_structure_inst *si = &m->ex->pipelines[k].structure;
        if (!si->ops || !si->ops->declare) continue;
        char prefix[CT_NAME_MAX + 16];
        snprintf(prefix, sizeof prefix, "%s%s", side == CT_SIDE_KEY ? "key_" : "", si->prefix);
        ct_status st = si->ops->declare(si->self, m->store, prefix, m->encoder.dim, side, err);
        if (st != CT_OK) {
            ct_error_prefix(err, "pipelines[%d]: structure %s: ", k, si->ops->name);
            return st;
        }
        if (side == CT_SIDE_KEY) ct_params_set_trainable(m->store, prefix, false);
    }
    return CT_OK;
}

/* ct_arch_env.make_key_side: the key copies, once. */
static ct_status env_make_key_side(const ct_arch_env *env, ct_error *err) {
    ct_model *m = env->host_ctx;
    if (m->key_side) return CT_OK;
    ct_status st = declare_structures(m, CT_SIDE_KEY, err);
    if (st == CT_OK) m->key_side = true;
    return st;
}

static int resolve_threads(int threads) {
    if (threads > 0) return threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The pipelines as the architecture sees them: batch sizes, datasets and
 * item ids (each training dataset's ids after the previous ones', a
 * dataset met again keeping its first base), structure rows, inputs; and
 * the env's summaries of them. Pipelines of weight 0 are not trained on:
 * their entry is zero and they take no ids. */
static void describe_pipelines(ct_model *m) {
    const ct_experiment *ex = m->ex;
    ct_arch_env *env = &m->arch_env;
    const ct_dataset *seen[CT_MAX_PIPELINES];
    int64_t base_of[CT_MAX_PIPELINES], next = 0;
    int n_seen = 0;
    env->batch_size = ct_settings_int(ex->train, "batch_size");
    env->rows_per_sample = 1;
    bool first = true;
    for (int k = 0; k < ex->n_pipelines; k++) {
        const ct_pipeline_spec *p = &ex->pipelines[k];
        ct_arch_pipeline *ap = &m->pipelines[k];
        memset(ap, 0, sizeof *ap);
        if (p->weight == 0.0f) continue;
        int d = 0;
        while (d < n_seen && seen[d] != p->data) d++;
        if (d == n_seen) {
            seen[n_seen] = p->data;
            base_of[n_seen++] = next;
            next += p->data->info.count;
        }
        ap->batch_size = p->batch_size;
        ap->dataset_size = p->data->info.count;
        ap->item_base = base_of[d];
        ap->rows_per_sample = p->structure.info.rows_per_sample;
        ap->input = ct_experiment_pipeline_input(ex, k);
        if (first || ap->batch_size < env->batch_size) env->batch_size = ap->batch_size;
        if (ap->rows_per_sample > env->rows_per_sample) env->rows_per_sample = ap->rows_per_sample;
        first = false;
    }
    env->dataset_size = next;
    env->n_pipelines = ex->n_pipelines;
    env->pipelines = m->pipelines;
}

ct_status ct_model_batch(const ct_model *m, const ct_data_batch *db, int k, ct_batch *out, ct_error *err) {
    const ct_pipeline_spec *p = &m->ex->pipelines[k];
    ct_status st = ct_pipeline_to_batch(db, m->graph, k, p->weight, out, err);
    int64_t base = k < m->arch_env.n_pipelines ? m->pipelines[k].item_base : 0;
    if (st == CT_OK && base != 0 && out->items) {
        int64_t *ids = ct_graph_alloc(m->graph, (size_t)out->n * sizeof *ids);
        if (!ids) return ct_error_set(err, CT_ERR_NOMEM, "out of memory for %d item ids", out->n);
        for (int i = 0; i < out->n; i++) ids[i] = base + out->items[i];
        out->items = ids;
    }
    return st;
}

static ct_status build_arch(ct_model *m, ct_error *err) {
    const ct_experiment *ex = m->ex;
    ct_status st = ex->arch_ops->create(ex->arch_settings, &m->arch_env, &m->arch, err);
    /* As for the encoder: a misuse of its settings is the error to report
     * (ct_model_free destroys an instance create made). */
    ct_status misuse = ct_experiment_settings_status(ex, "architecture", ex->arch_settings, err);
    if (misuse != CT_OK) return misuse;
    if (st != CT_OK) ct_error_prefix(err, "architecture %s: ", ex->arch_ops->name);
    return st;
}

ct_status ct_model_build(ct_model *m, ct_experiment *ex, int threads, bool with_arch, ct_error *err) {
    memset(m, 0, sizeof *m);
    m->ex = ex;
    if (!ex->encoder_ops)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: no encoder group", ex->path);
    /* The engine overrides, read once per model (per command): a malformed
     * value stops here, before anything is made. */
    ct_engine_opts eo;
    ct_engine_opts_init(&eo);
    ct_status st = ct_engine_opts_from_env(&eo, err);
    if (st != CT_OK) return st;
    /* train.precision: the products of every graph of this model (ct_engine_precision says float32, once, where
     * bf16 cannot run). */
    if (ex->train && strcmp(ct_settings_string(ex->train, "precision"), "bf16") == 0) {
        eo.precision = CT_PRECISION_BF16;
        (void)ct_engine_precision(&eo); /* the float32 line, if any, at start-up rather than in the first step */
    }
    m->threads = resolve_threads(threads);
    m->pool = ct_threadpool_new(m->threads, err);
    if (!m->pool) return err ? err->code : CT_ERR_NOMEM;
    /* The step's ops split their work over the pool, each worker calling
     * single-threaded sgemm (the fast path of ops_conv.c and the Winograd
     * code); OpenBLAS's own threads are used only for the big GEMMs of
     * evaluators (ct_model_wide_blas). */
    openblas_set_num_threads(1);
    ct_host_defaults(&m->host);
    m->host.seed = ex->seed;
    m->host.pool = m->pool;
    m->host.threads = m->threads;
    ct_plugins_set_host(ex->plugins, &m->host);
    m->store = ct_params_new(ex->seed);
    m->graph = ct_graph_new(0);
    if (!m->store || !m->graph) return ct_error_set(err, CT_ERR_NOMEM, "out of memory building the model");
    /* The ops of every step (training, feature extraction) run on the pool. */
    eo.pool = m->pool;
    ct_graph_set_engine(m->graph, &eo);
    m->arch_env.size = sizeof m->arch_env;
    /* The architecture's own host, so its log lines name its plugin. */
    m->arch_env.host = ex->arch_ops ? plugin_host(m, CT_ROLE_ARCHITECTURE, ex->arch_ops->name) : &m->host;
    m->arch_env.store = m->store;
    m->arch_env.encoder = &m->encoder;
    m->arch_env.input = ct_experiment_encoder_input(ex);
    m->arch_env.make_encoder = env_make_encoder;
    m->arch_env.host_ctx = m;
    m->arch_env.embed = env_embed;
    m->arch_env.make_key_side = env_make_key_side;
    describe_pipelines(m);
    m->arch_env.rank = ct_dist_rank();
    m->arch_env.ranks = ct_dist_size();
    m->arch_env.gather_batch = env_gather_batch;
    m->arch_env.embed_local = env_embed_local;
    m->arch_env.gather_rows = env_gather_rows;
    st = make_encoder(m, "encoder.", &m->encoder, err);
    /* The structures' layers: with the architecture's, trained with the
     * encoder (evaluation needs them too, to load a checkpoint). */
    if (st == CT_OK) st = declare_structures(m, CT_SIDE_QUERY, err);
    if (st == CT_OK && with_arch && ex->arch_ops) st = build_arch(m, err);
    if (st == CT_OK) st = ct_params_finalize(m->store, err);
    if (st == CT_OK && m->arch && ex->arch_ops->start) {
        st = ex->arch_ops->start(m->arch, err);
        if (st != CT_OK) ct_error_prefix(err, "architecture %s: ", ex->arch_ops->name);
    }
    return st;
}

void ct_model_wide_blas(const ct_model *m, bool wide) { openblas_set_num_threads(wide ? m->threads : 1); }

void ct_model_free(ct_model *m) {
    if (!m) return;
    if (m->arch && m->ex && m->ex->arch_ops) m->ex->arch_ops->destroy(m->arch);
    for (int i = 0; i < m->n_extra; i++)
        if (m->extra[i].self) m->extra[i].ops->destroy(m->extra[i].self);
    if (m->encoder.self) m->encoder.ops->destroy(m->encoder.self);
    ct_graph_free(m->graph);
    ct_params_free(m->store);
    if (m->pool) {
        /* Plugins must not see the pool after it is gone. */
        m->host.pool = NULL;
        m->host.threads = 1;
        if (m->ex && m->ex->plugins) ct_plugins_set_host(m->ex->plugins, &m->host);
        ct_threadpool_free(m->pool);
    }
    memset(m, 0, sizeof *m);
}

/* The model builder (see model.h). */
#include "training/model.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/chain.h"

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

static int resolve_threads(int threads) {
    if (threads > 0) return threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static ct_encoder_input model_input(const ct_experiment *ex) {
    if (ex->n_pipelines > 0 && ex->pipelines[0].data)
        return ct_chain_input(&ex->pipelines[0].groups[0].chain, ex->pipelines[0].data);
    if (ex->eval_train) return ct_chain_input(&ex->eval_chain, ex->eval_train);
    ct_encoder_input none = {0, 0, 0, 1};
    return none;
}

static ct_status build_arch(ct_model *m, ct_error *err) {
    const ct_experiment *ex = m->ex;
    m->arch_env.batch_size = ct_settings_int(ex->train, "batch_size");
    m->arch_env.dataset_size = ex->n_pipelines > 0 ? ex->pipelines[0].data->info.count : 0;
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
    m->arch_env.input = model_input(ex);
    m->arch_env.make_encoder = env_make_encoder;
    m->arch_env.host_ctx = m;
    st = make_encoder(m, "encoder.", &m->encoder, err);
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

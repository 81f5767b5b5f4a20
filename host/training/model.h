/* The model an experiment builds before training, evaluation or embedding:
 * the parameter store, the shared encoder (declared under "encoder."), the
 * architecture instance (heads, banks, queues, extra encoders), the thread
 * pool, the graph the steps run on (its engine options carry the pool and
 * the conv overrides read from the environment), and the host services
 * table handed to plugins. */
#ifndef CONTRAST_HOST_MODEL_H
#define CONTRAST_HOST_MODEL_H

#include <stdbool.h>

#include "config/experiment.h"
#include "data/pipeline.h"

#define CT_MODEL_MAX_ENCODERS 4

typedef struct ct_model {
    ct_experiment *ex;           /* borrowed */
    ct_host host;                /* services for the host's own calls (evaluator env) */
    ct_threadpool *pool;
    int threads;
    ct_params *store;
    ct_encoder encoder;          /* the shared encoder ("encoder.") */
    int n_extra;
    ct_encoder extra[CT_MODEL_MAX_ENCODERS]; /* made by the architecture (make_encoder) */
    ct_arch_env arch_env;
    ct_arch_pipeline pipelines[CT_MAX_PIPELINES]; /* arch_env.pipelines */
    void *arch;                  /* architecture instance (NULL when none) */
    bool key_side;               /* the structures' key copies are declared */
    /* Shown every query-side embedding an architecture makes through
     * ct_arch_env.embed (the trainer's collapse watch); NULL: none. */
    void (*embed_observer)(void *ctx, const ct_embeddings *e);
    void *embed_observer_ctx;
    ct_graph *graph;             /* engine options: the pool and the environment's overrides */
    /* Data-parallel training (host/dist, set by the trainer): the seam's
     * embeddings are gathered from every rank, and with sync_bn the
     * encoder's batch norm sums its statistics over ranks. */
    bool gather_rows, sync_bn;
} ct_model;

/* Build the model of a loaded experiment: pool with `threads` workers (also
 * the OpenBLAS thread count of wide products), the graph with the engine
 * options (that pool; CT_CONV_ALGO, CT_WINO_* from the environment, a
 * malformed value being CT_ERR_CONFIG), services table with the experiment
 * seed, encoder, architecture (when the experiment has one and with_arch is
 * set), store finalized and initialised, the architecture's start() called.
 * An encoder or architecture create that misused its settings
 * (ct_settings_status) fails the build with that misuse. */
ct_status ct_model_build(ct_model *m, ct_experiment *ex, int threads, bool with_arch, ct_error *err);

/* Pipeline k's batch db as the architecture sees it (ct_batch on the
 * model's graph, no copy of the views): item ids moved by the pipeline's
 * item_base (ct_arch_pipeline) so two datasets' ids never meet. */
ct_status ct_model_batch(const ct_model *m, const ct_data_batch *db, int k, ct_batch *out, ct_error *err);

/* OpenBLAS threads: all of the model's threads (wide, for evaluators'
 * large matrix products) or one (the default: ops parallelise themselves
 * over the pool). */
void ct_model_wide_blas(const ct_model *m, bool wide);

/* Free everything the model made (not the experiment). Safe on zeroed. */
void ct_model_free(ct_model *m);

#endif

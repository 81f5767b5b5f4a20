/* The training loop and the model it trains.
 *
 * A ct_model is what an experiment builds before training, evaluation or
 * embedding: the parameter store, the shared encoder (declared under
 * "encoder."), the architecture instance (heads, banks, queues, extra
 * encoders), the thread pool and the host services table handed to
 * plugins. ct_train_run() is `contrast train`. */
#ifndef CONTRAST_HOST_TRAIN_H
#define CONTRAST_HOST_TRAIN_H

#include <stdbool.h>
#include <stdio.h>

#include "training/checkpoint.h"
#include "config/experiment.h"

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
    void *arch;                  /* architecture instance (NULL when none) */
    ct_graph *graph;
} ct_model;

/* Build the model of a loaded experiment: pool with `threads` workers (also
 * the OpenBLAS thread count and the SDK's default pool), services table
 * with the experiment seed, encoder, architecture (when the experiment has
 * one and with_arch is set), store finalized and initialised, the
 * architecture's start() called. */
ct_status ct_model_build(ct_model *m, ct_experiment *ex, int threads, bool with_arch, ct_error *err);

/* Free everything the model made (not the experiment). Safe on zeroed. */
/* OpenBLAS threads: all of the model's threads (wide, for evaluators'
 * large matrix products) or one (the default: ops parallelise themselves
 * over the pool). */
void ct_model_wide_blas(const ct_model *m, bool wide);

void ct_model_free(ct_model *m);

/* The encoder's input (channels, height, width) after a chain applied to a
 * dataset's items. */
ct_encoder_input ct_chain_input(const ct_chain *chain, const ct_dataset *data);

typedef struct ct_train_opts {
    const char *config;           /* config file */
    const char *const *sets;      /* --set overrides */
    int n_sets;
    bool allow_unsafe_plugins;
    bool resume;                  /* --resume */
    const char *run_dir;          /* run directory; NULL: runs/<name> */
    int64_t stop_after_steps;     /* > 0: checkpoint and stop after this global step
                                     (as an interruption would; for tests and budgets) */
    int threads;                  /* > 0: override train.threads */
} ct_train_opts;

/* `contrast train`: run (or resume) an experiment. Returns CT_OK when the
 * run finished or stopped cleanly (signal, stop_after_steps), CT_ERR_NUMERIC
 * when the loss became NaN/Inf (the last good checkpoint is kept), other
 * statuses for errors (message in err). */
ct_status ct_train_run(const ct_train_opts *o, ct_error *err);

/* Append one JSON line to a metrics file and flush it. */
void ct_metrics_write_line(FILE *f, const char *json);

#endif

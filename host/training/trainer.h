/* The training loop: ct_train_run() is `contrast train`. It loads the
 * experiment, builds its model (model.h) and pipelines, and runs the steps
 * into a run directory: the resolved config, metrics.jsonl (metrics.h),
 * checkpoints (checkpoint.h), summary.txt, the lock file (run_dir.h);
 * evaluations (evaluate.h) at the configured epochs and at the end. */
#ifndef CONTRAST_HOST_TRAIN_H
#define CONTRAST_HOST_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/contrast.h"

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
    bool allow_config_change;     /* --allow-config-change: resume although the
                                     resolved config differs from the checkpoint's */
} ct_train_opts;

/* How a run that returned CT_OK ended. */
typedef struct ct_train_result {
    int signal;            /* SIGINT/SIGTERM that interrupted it (checkpoint saved); 0: none */
    bool already_finished; /* --resume of a finished run: nothing was done */
} ct_train_result;

/* `contrast train`: run (or resume) an experiment.
 *
 * The run directory is locked for the whole run (training/run_dir.h): a
 * second run into it is refused naming the holder's pid. --resume of a run
 * that finished (final checkpoint and summary.txt) changes nothing and
 * sets res->already_finished; --resume with a resolved config other than
 * the checkpoint's is refused unless allow_config_change (then a
 * "config_change" line goes to metrics.jsonl). SIGINT/SIGTERM during the
 * steps checkpoint and stop (res->signal); during an evaluation, whose
 * state is checkpointed before it starts, they end the process at once
 * with 128 + signal. SIGPIPE is ignored: a closed stdout stops the
 * progress lines, never the training (metrics.jsonl goes on).
 *
 * Returns CT_OK when the run finished or stopped cleanly (signal,
 * stop_after_steps, already finished), CT_ERR_NUMERIC when the loss became
 * NaN/Inf or the divergence/collapse watch (training/watch.h) stopped it
 * (the last good checkpoint is kept), other statuses for errors (message
 * in err). res may be NULL. */
ct_status ct_train_run(const ct_train_opts *o, ct_train_result *res, ct_error *err);

#endif

/* The training loop: ct_train_run() is `contrast train`. It loads the
 * experiment, builds its model (model.h) and pipelines, and runs the steps
 * into a run directory: the resolved config, metrics.jsonl (metrics.h),
 * checkpoints (checkpoint.h), summary.txt; evaluations (evaluate.h) at the
 * configured epochs and at the end. */
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
} ct_train_opts;

/* `contrast train`: run (or resume) an experiment. Returns CT_OK when the
 * run finished or stopped cleanly (signal, stop_after_steps), CT_ERR_NUMERIC
 * when the loss became NaN/Inf (the last good checkpoint is kept), other
 * statuses for errors (message in err). */
ct_status ct_train_run(const ct_train_opts *o, ct_error *err);

#endif

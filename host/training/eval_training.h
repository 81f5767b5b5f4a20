/* The evaluator environment's services for evaluators that train (ABI 1.2,
 * the tail of ct_eval_env): the run directory, the labels of a split, a
 * trainable copy of the encoder, labelled batch iterators through the
 * evaluator's own augmentation chain, and saving weights beside the
 * checkpoint. evaluate.c owns the round; this file owns these callbacks. */
#ifndef CONTRAST_HOST_EVAL_TRAINING_H
#define CONTRAST_HOST_EVAL_TRAINING_H

#include <stdbool.h>

#include "training/model.h"

/* The state behind one evaluation round's env (env->host_ctx points here). */
typedef struct ct_eval_training {
    ct_model *m;
    const char *run_dir;      /* may be NULL */
    const ct_evaluator *ev;   /* the evaluator running now */
    int index;                /* its position in evaluation.evaluators */
    bool used_chain;          /* it opened augmented batches */
    int copies;               /* encoder copies alive */
    void *owner;              /* evaluate.c's round (the features cache) */
} ct_eval_training;

/* Fill env's ABI 1.2 fields and point env->host_ctx at t. */
void ct_eval_training_init(ct_eval_training *t, ct_eval_env *env, ct_model *m, const char *run_dir,
                           void *owner);

/* Before evaluator `index` runs. */
void ct_eval_training_begin(ct_eval_training *t, int index, const ct_evaluator *ev);

/* After it ran: CT_ERR_CONFIG when its group has `transforms` that it never
 * used (an evaluator on frozen features), naming the config and the
 * evaluator; copies it did not free are reported and BLAS is restored. */
ct_status ct_eval_training_end(ct_eval_training *t, ct_error *err);

#endif

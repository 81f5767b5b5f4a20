/* Precise batch norm (evaluation.precise_bn_batches): before an evaluator
 * runs, the encoder's batch-norm running statistics are re-estimated on
 * batches of that evaluator's own train data through its feature chain,
 * as pycls's and VISSL's precise BN do, and the checkpoint's statistics
 * are put back when the evaluation round ends.
 *
 * Why: running statistics are an exponential average over every batch the
 * encoder saw in training. When pipelines of different inputs share it
 * (images and clip frames: other sizes, other normalisation) the average
 * mixes their statistics, and evaluation normalises the images with
 * moments that are partly the clips'. Re-estimated on the evaluated data
 * with the final weights, they are the evaluated inputs' own (and no
 * longer lag the weights, as an average over training does). */
#ifndef CONTRAST_HOST_PRECISE_BN_H
#define CONTRAST_HOST_PRECISE_BN_H

#include "training/model.h"

/* The encoder's buffers (its running statistics and batch counts) as they
 * were, for ct_bn_restore. */
typedef struct ct_bn_saved {
    float *values;
    size_t n;
} ct_bn_saved;

ct_status ct_bn_save(const ct_model *m, ct_bn_saved *s, ct_error *err);

/* Copy the saved values back into the encoder's buffers and free them. */
void ct_bn_restore(ct_model *m, ct_bn_saved *s);

/* Re-estimate every batch norm of the encoder: `batches` batches of
 * `batch_size` items of `data` (a seeded random subset, the same on every
 * rank and for every checkpoint; all items when there are fewer), each
 * through `chain` (view 0, as feature extraction sees them) and the
 * encoder in training mode without gradients, the running mean and
 * variance ending as the plain mean of the batches' statistics
 * (ct_graph_set_bn_momentum). The summing of batch statistics over
 * processes (sync_bn) is off meanwhile: every rank sees the same batches.
 * An encoder without batch norm is left as it is. */
ct_status ct_precise_bn(ct_model *m, ct_dataset *data, const ct_chain *chain, int batches, int64_t batch_size,
                        ct_error *err);

#endif

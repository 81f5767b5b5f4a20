/* The batch producer: turns a pipeline spec (a dataset and its crop groups'
 * transform chains) into batches of augmented views, prefetched in the
 * background while the trainer computes.
 *
 * Order. Each epoch visits the dataset (or a subset) once, in an order
 * shuffled by a ct_rng keyed by (seed, epoch) — or in index order when
 * shuffling is off (evaluation). With spec.label_runs = G > 1 (shuffled
 * pipelines only) that order is regrouped: each label's items, in their
 * shuffled order, are cut into runs of up to G, and the runs are laid end
 * to end in an order shuffled by (seed, epoch) stream 1 (hard negatives:
 * a batch holds several samples of one label). Batch b of an epoch holds positions
 * [b*n, (b+1)*n) of that order; the last incomplete batch is dropped when
 * drop_last is set. A shard of a data-parallel job takes its slice of each
 * global batch (ct_pipeline_opts.shard).
 *
 * Views. Sample `item` gets views 0..V-1, numbered across the crop groups
 * in config order (group 0's views first). View v is the group's chain
 * applied to the source image with ct_rng_init_keyed(seed, epoch, item, v),
 * so its bytes depend on nothing else: not the thread count, not the batch
 * size, not which worker made it or when.
 *
 * Prefetching. `workers` threads (owned by the pipeline; they do not use
 * the host's ct_threadpool, whose fork-join loops belong to the trainer)
 * fill a ring of `depth` batch slots, several workers sharing a batch in
 * chunks of samples. Memory is bounded by depth batches. next() waits only
 * when the batch is not ready yet, and records that wait (the data stall).
 *
 * Life cycle:
 *   ct_pipeline_new(spec, &opts, &p, &err);
 *   for each epoch:
 *     ct_pipeline_start_epoch(p, epoch, &err);
 *     while (ct_pipeline_next(p, &b, &err) == CT_OK && b) {
 *         ... use b (views, items, labels) ...
 *         ct_pipeline_release(p, b);
 *     }
 *   ct_pipeline_free(p);
 * start_epoch() and free() may be called at any time, even with a batch
 * still held or workers busy: they cancel what is pending and wait for
 * in-flight work (never deadlock). */
#ifndef CONTRAST_HOST_PIPELINE_H
#define CONTRAST_HOST_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/contrast.h"
#include "config/experiment.h"

typedef struct ct_pipeline ct_pipeline;

typedef struct ct_pipeline_opts {
    int64_t batch_size;      /* samples per batch (> 0) */
    uint64_t seed;           /* the experiment seed */
    bool shuffle;            /* per-epoch shuffled order; false: index order */
    bool drop_last;          /* drop the last incomplete batch of an epoch */
    int workers;             /* augmentation threads (>= 1); 0: 1 */
    int depth;               /* batches buffered ahead (>= 1); 0: 3 */
    const int64_t *subset;   /* optional: visit only these items (copied) */
    int64_t subset_n;        /* length of subset (0: the whole dataset) */
    /* Data-parallel sharding (0 or 1 shards: off): with S shards, batch b
     * of shard k holds positions [(b*S + k)*n, (b*S + k + 1)*n) of the
     * epoch's order, so the S shards' batches b together are the global
     * batch b of S*n samples and the order (and every view's bytes) does
     * not depend on S. Needs drop_last; steps = epoch size / (S*n). */
    int shard, shards;
} ct_pipeline_opts;

/* Defaults for training: shuffle and drop_last on, 1 worker, depth 3. */
ct_pipeline_opts ct_pipeline_opts_default(int64_t batch_size, uint64_t seed);

/* One view of every sample of a batch: data is n*t*c*h*w floats laid out
 * (n, t, c, h, w) (t = 1 for images: then (n, c, h, w)). */
typedef struct ct_view_buf {
    float *data;
    int t, c, h, w;
} ct_view_buf;

/* A batch. Everything it points to belongs to the pipeline and stays valid
 * until ct_pipeline_release(), start_epoch() or free(). */
typedef struct ct_data_batch {
    int64_t epoch;
    int64_t index;            /* batch number within the epoch */
    int n;                    /* samples */
    int n_views;
    ct_view_buf views[CT_MAX_VIEWS];
    const int64_t *items;     /* dataset index of each sample (n) */
    const int32_t *labels;    /* label of each sample or -1 (n) */
    double stall_s;           /* how long next() waited for this batch */
} ct_data_batch;

/* Make a pipeline over `spec` (the spec's dataset must be open; the spec is
 * copied, its dataset and transform instances are borrowed and must outlive
 * the pipeline). Checks the view count (1..CT_MAX_VIEWS) and that each
 * group's chain gives a fixed output shape (CT_ERR_CONFIG naming the
 * dataset otherwise). Starts the workers idle. */
ct_status ct_pipeline_new(const ct_pipeline_spec *spec, const ct_pipeline_opts *opts,
                          ct_pipeline **out, ct_error *err);

/* An evaluation iterator: one view per sample through `chain`, index order
 * (or the subset's order), no shuffling, the last partial batch kept, view
 * rng keyed with epoch 0. For feature extraction (kNN, linear probe,
 * `contrast embed`). Use it like any pipeline (start_epoch(p, 0) first). */
ct_status ct_pipeline_new_eval(ct_dataset *data, const ct_chain *chain, int64_t batch_size,
                               uint64_t seed, int workers, const int64_t *subset,
                               int64_t subset_n, ct_pipeline **out, ct_error *err);

/* Begin epoch `epoch`: cancel anything pending from before, compute the
 * order, and let the workers start on its first batches. */
ct_status ct_pipeline_start_epoch(ct_pipeline *p, int64_t epoch, ct_error *err);

/* The next batch of the epoch, waiting for it if needed; *out = NULL (and
 * CT_OK) at the end of the epoch. At most `depth` batches may be held at
 * once (CT_ERR_INVALID beyond that). On a source or transform failure
 * returns its status with the message (naming the item) and the epoch
 * stops. */
ct_status ct_pipeline_next(ct_pipeline *p, const ct_data_batch **out, ct_error *err);

/* Give a batch's memory back for prefetching. Batches may be released in
 * any order; NULL is ignored. */
void ct_pipeline_release(ct_pipeline *p, const ct_data_batch *b);

/* Batches per epoch (with the pipeline's drop_last). */
int64_t ct_pipeline_steps_per_epoch(const ct_pipeline *p);

/* Samples visited per epoch (dataset size or subset length). */
int64_t ct_pipeline_epoch_size(const ct_pipeline *p);

/* Total seconds next() has waited since the pipeline was made. */
double ct_pipeline_stall_total(const ct_pipeline *p);

/* Shape of view v's samples (t, c, h, w). */
void ct_pipeline_view_shape(const ct_pipeline *p, int v, int *t, int *c, int *h, int *w);

/* Wrap a batch for an architecture: one arena tensor header per view
 * ((n, c, h, w), or (n, t, c, h, w) for clips) over the batch's memory
 * (no copy; valid until the batch is released and the graph reset). */
ct_status ct_pipeline_to_batch(const ct_data_batch *b, ct_graph *g, int pipeline_index, float weight,
                               ct_batch *out, ct_error *err);

/* Stop the workers (finishing in-flight chunks) and free. NULL ignored. */
void ct_pipeline_free(ct_pipeline *p);

#endif

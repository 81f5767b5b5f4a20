/* One sample's parts, made the way the training pipeline makes them: the
 * pipeline's structure (contrast/structure.h; the default "views" when it
 * has none) applied to an item, its transform chains applied through the
 * structure's ctx->apply, randomness keyed (seed, epoch, item, part). Used
 * by the pipeline workers and by `contrast preview`, so the preview shows
 * exactly what training sees. */
#ifndef CONTRAST_HOST_SAMPLE_H
#define CONTRAST_HOST_SAMPLE_H

#include "contrast/contrast.h"
#include "config/experiment.h"

/* The seed of pipeline k's views (distinct per pipeline, stable). */
uint64_t ct_pipeline_seed(uint64_t experiment_seed, int k);

/* Parts per sample of a pipeline (its structure's; the views of its
 * groups for the default). */
int ct_sample_n_parts(const ct_pipeline_spec *spec);

/* The parts of `item` (already read into src) into parts[0..n_parts-1].
 * chains[g] (may be NULL, or hold NULLs) stands in for the spec's chain g
 * (the preview drops a final normalize); tmp is scratch. Thread-safe for
 * distinct parts/tmp. Errors name the structure when there is one. */
ct_status ct_sample_parts(const ct_pipeline_spec *spec, const ct_chain *const *chains, uint64_t seed,
                          int64_t epoch, int64_t item, const ct_image *src, ct_image *parts, ct_image *tmp,
                          ct_error *err);

#endif

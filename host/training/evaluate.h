/* Evaluation: feature extraction with the frozen encoder, the evaluator
 * environment, running the configured evaluators. */
#ifndef CONTRAST_HOST_EVALUATE_H
#define CONTRAST_HOST_EVALUATE_H

#include "training/model.h"

/* Features of the evaluation split "train" or "test": every item of the
 * split's dataset through the evaluation chain (index order), the encoder
 * in eval mode without gradients. Arrays are malloc'd (free()). Features
 * holding a NaN or Inf are refused (CT_ERR_NUMERIC naming how many rows),
 * so no evaluator and no `embed` file ever sees them. */
ct_status ct_extract_features(ct_model *m, const char *split, float **feats, int32_t **labels,
                              int64_t *n, int64_t *dim, ct_error *err);

/* ct_extract_features over an evaluator's data (its train / test
 * datasets, feature chain and clips) instead of the evaluation group's. */
ct_status ct_extract_features_of(ct_model *m, const ct_eval_data *d, const char *split, float **feats,
                                 int32_t **labels, int64_t *n, int64_t *dim, ct_error *err);

/* Rows of a (rows, dim) row-major array holding a NaN or Inf; *first (may
 * be NULL) receives the first such row, or -1. */
int64_t ct_count_non_finite_rows(const float *v, int64_t rows, int64_t dim, int64_t *first);

/* Run every configured evaluator on the model, each on its data
 * (ct_evaluator.data). Results go to out as "<label>.<metric>": the label
 * is the evaluator's name ("knn.top1"), with "@<dataset>" when it measures
 * data of its own ("linear@test_direction.top1"); features are extracted
 * once per dataset and chain and shared by the evaluators. CT_ERR_CONFIG when the experiment
 * has no evaluation section; an evaluator that misused its settings during
 * run (ct_settings_status) fails with that misuse; a metric that is not
 * finite is CT_ERR_NUMERIC naming the evaluator and the metric. */
ct_status ct_evaluate(ct_model *m, ct_metrics *out, ct_error *err);

/* ct_evaluate with a run directory (may be NULL) handed to the evaluators
 * (ct_eval_env.run_dir: subset lists, fine-tuned weights are written there). */
ct_status ct_evaluate_in(ct_model *m, const char *run_dir, ct_metrics *out, ct_error *err);

/* Data-parallel training (m->gather_rows, dist/dist.h): features are
 * extracted in shards, rank r the items [r*N/P, (r+1)*N/P) of each split,
 * and every rank receives all rows in index order. Rank 0 runs
 * ct_evaluate, which extracts every evaluator's "train" then "test" first
 * (each dataset and chain once); every other rank calls this at the same
 * point to extract its shards of the same (and discards them). */
ct_status ct_evaluate_follow(ct_model *m, ct_error *err);

/* The evaluator whose metrics a metric name of ct_evaluate belongs to
 * ("linear@test_direction.top1": that linear evaluator), or NULL. */
const ct_evaluator *ct_evaluator_of_metric(const ct_experiment *ex, const char *metric);

/* Which data each evaluator measured, for the run log: "knn: train ->
 * test; linear@test_direction: train_direction -> test_direction" into
 * buf (n bytes, cut to fit). */
void ct_evaluation_data_text(const ct_experiment *ex, char *buf, size_t n);

#endif

/* The run report: <run_dir>/report.html, one self-contained page (inline
 * CSS and SVG, the preview PNG as a data: URI, no script, no external
 * resource) that shows
 *   - the experiment: resolved config, plugins with versions, machine
 *     (threads, CPU), steps and wall time;
 *   - curves from metrics.jsonl: loss per step (the total and, with
 *     several pipelines, each pipeline's), learning rate, views/s, data
 *     stall, evaluation metrics over epochs; the watch's warnings and a
 *     stop marked on the step curves;
 *   - run safety: the watch's warnings and the stop (a non-finite number,
 *     divergence, collapse) listed with their steps;
 *   - the final metrics beside the baselines of evaluations.jsonl
 *     (`contrast eval --run-dir`: random init, raw pixels);
 *   - the augmentation preview of the first pipeline;
 *   - a PCA map of test-set encoder features coloured by class, and the
 *     kNN confusion matrix (knn-confusion.txt, written by the knn
 *     evaluator);
 *   - architecture health (report/health.h).
 * Written by `contrast report RUN_DIR` and by training (after each
 * evaluation and at the end). */
#ifndef CONTRAST_HOST_REPORT_REPORT_H
#define CONTRAST_HOST_REPORT_REPORT_H

#include "training/model.h"

/* Test images in the embedding map (evenly spaced over the test split). */
#define CT_REPORT_MAP_ITEMS 2000
/* Training items sampled to measure a memory bank's staleness. */
#define CT_REPORT_BANK_ITEMS 500

/* Write <run_dir>/report.html (atomically: a temporary file renamed).
 * m is the run's model with its current weights, or NULL: the sections
 * that need it (preview, map, health measurements, plugins) then say why
 * they are missing, with `why_no_model` (may be NULL). The run directory
 * must hold metrics.jsonl. The written path goes to path (n bytes) when
 * not NULL. */
ct_status ct_report_write(const char *run_dir, ct_model *m, const char *why_no_model, char *path, size_t n,
                          ct_error *err);

/* What training calls: the report of its run, a failure reported as one
 * warning line on stderr (a report never fails training). */
void ct_report_after_training(const char *run_dir, ct_model *m);

/* What training calls after a stop on a number (a NaN, divergence or
 * collapse): the report from the logs and the experiment, without the
 * sections that would measure the stopped model's weights (the map and
 * health measurements say why). A failure is one warning line. */
void ct_report_after_stop(const char *run_dir, ct_model *m);

#endif

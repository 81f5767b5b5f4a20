/* The run's metrics.jsonl: one JSON object a line, flushed as written, each
 * with a "type" ("step", "epoch", "eval", "checkpoint", "watch", "stop",
 * "config_change", "note"). Every line the
 * trainer writes is formatted here, so the file's format is in one place. */
#ifndef CONTRAST_HOST_METRICS_H
#define CONTRAST_HOST_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "contrast/contrast.h"

/* Append one JSON line to a metrics file and flush it (f NULL: nothing). */
void ct_metrics_write_line(FILE *f, const char *json);

/* Format metrics as a JSON object body: "\"knn.top1\": 80.1, ..." into buf. */
void ct_metrics_json(const ct_metrics *m, char *buf, size_t n);

/* s as a quoted JSON string ("\"a\\\"b\"": quotes, backslashes and
 * control characters escaped) into buf; cut short (still quoted) when buf
 * is too small. */
void ct_metrics_json_string(const char *s, char *buf, size_t n);

/* {"type": "step", ...}: one optimizer step (0-based epoch and step).
 * With several pipelines (n_pipes > 1) the line also holds each one's own
 * loss, before its weight: "loss_pipeline_0", "loss_pipeline_1", ...
 * ("loss" is their weighted sum, the loss the step minimised). */
void ct_metrics_log_step(FILE *f, int64_t epoch, int64_t step, double loss, float lr, double views_per_s,
                         double data_stall_ms, const double *pipe_loss, int n_pipes);

/* {"type": "epoch", ...}: an epoch's summary, from its sums (steps, loss,
 * views and data stall in seconds) and its wall time. */
void ct_metrics_log_epoch(FILE *f, int64_t epoch, int64_t steps, double loss_sum, double seconds,
                          int64_t views, double stall_s);

/* {"type": "eval", ...}: an evaluation's metrics after `step` steps. */
void ct_metrics_log_eval(FILE *f, int64_t epoch, int64_t step, double seconds, const ct_metrics *m);

/* {"type": "metric", "step": S, "name": "owner.name", "value": V}: a
 * plugin's own scalar (ct_host.metric), non-finite values as null. */
void ct_metrics_log_value(FILE *f, int64_t step, const char *owner, const char *name, double value);

/* {"type": "checkpoint", ...}: a checkpoint written after `step` steps. */
void ct_metrics_log_checkpoint(FILE *f, int64_t step, const char *path);

/* {"type": "watch", ...}: a divergence or collapse warning (training/watch.h)
 * at 0-based step `step`: kind "divergence" or "collapse", how many steps it
 * has lasted, whether the run stops on it, the symptom in words. */
void ct_metrics_log_watch(FILE *f, int64_t step, const char *kind, int64_t streak, bool stopping, const char *what);

/* {"type": "stop", "step": S, "kind": K, "reason": R}: training stopped
 * in 0-based step S on a number: kind "non_finite" (a NaN or Inf in the
 * loss, a gradient or a weight), "divergence" or "collapse" (the watch
 * with its train.stop_on_*); the reason in words. */
void ct_metrics_log_stop(FILE *f, int64_t step, const char *kind, const char *reason);

/* {"type": "config_change", ...}: a run resumed at `step` from `checkpoint`
 * under another resolved config (--allow-config-change); SHA-256 of both. */
void ct_metrics_log_config_change(FILE *f, int64_t step, const char *checkpoint, const char *old_sha256,
                                  const char *new_sha256);

/* {"type": "note", ...}: something about the run worth keeping beside the
 * numbers (e.g. that stdout closed). */
void ct_metrics_log_note(FILE *f, int64_t step, const char *message);

#endif

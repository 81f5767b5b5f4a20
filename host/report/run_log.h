/* A run's logs read back for the report: metrics.jsonl (steps with each
 * pipeline's loss, epochs, evaluations, checkpoints, watch warnings, stops; training/metrics.h writes it) and
 * evaluations.jsonl (`contrast eval` results appended to the run
 * directory: baselines such as the random-init or raw-pixel encoder).
 *
 * Lines are flat JSON objects ("key": number, "string", true, false or
 * null); a line that is
 * not one, or lacks its "type", is counted in `bad_lines` and skipped, so
 * a truncated last line (a killed run) never stops the report. */
#ifndef CONTRAST_HOST_REPORT_RUN_LOG_H
#define CONTRAST_HOST_REPORT_RUN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contrast/contrast.h"

/* One flat JSON object: up to CT_LOG_FIELDS keys. */
#define CT_LOG_FIELDS 48
#define CT_LOG_KEY_MAX 64
#define CT_LOG_STR_MAX 1024

typedef struct ct_log_obj {
    int n;
    char key[CT_LOG_FIELDS][CT_LOG_KEY_MAX];
    double num[CT_LOG_FIELDS];  /* NaN for strings and null; true 1, false 0 */
    char *str[CT_LOG_FIELDS];   /* malloc'd for strings, else NULL */
} ct_log_obj;

/* Parse one line; CT_ERR_FORMAT when it is not a flat object. Free with
 * ct_log_obj_clear (also after a failure). */
ct_status ct_log_obj_parse(const char *line, ct_log_obj *o);
void ct_log_obj_clear(ct_log_obj *o);
/* A number field (NaN when absent or a string) and a string field (NULL). */
double ct_log_obj_num(const ct_log_obj *o, const char *key);
const char *ct_log_obj_str(const ct_log_obj *o, const char *key);

/* Pipelines whose own losses a step line may hold (CT_MAX_PIPELINES). */
#define CT_LOG_PIPES 8

typedef struct ct_log_step {
    int64_t epoch, step;
    double loss, lr, views_per_s, data_stall_ms; /* loss: the weighted sum over pipelines */
    double pipe_loss[CT_LOG_PIPES];              /* each pipeline's own loss; NaN where not logged */
} ct_log_step;

/* A "watch" line: a divergence or collapse warning (training/watch.h). */
typedef struct ct_log_watch {
    int64_t step, steps; /* 0-based step; how many steps the symptom had lasted */
    bool stopping;       /* the run stopped on it */
    char kind[32];       /* "divergence" or "collapse" */
    char what[CT_LOG_STR_MAX];
} ct_log_watch;

typedef struct ct_log_epoch {
    int64_t epoch, steps;
    double loss_mean, seconds, views_per_s, data_stall_ms;
} ct_log_epoch;

/* An evaluation: its metrics in order ("knn.top1", ...). */
typedef struct ct_log_eval {
    int64_t epoch, step;
    double seconds;
    ct_metrics m;
    /* evaluations.jsonl only: which experiment/encoder/checkpoint. */
    char experiment[64], encoder[64], checkpoint[CT_LOG_STR_MAX];
} ct_log_eval;

typedef struct ct_run_log {
    ct_log_step *steps;
    int64_t n_steps;
    int n_pipe_losses;      /* pipelines with their own loss in the step lines (0: one pipeline) */
    ct_log_epoch *epochs;
    int64_t n_epochs;
    ct_log_eval *evals;     /* metrics.jsonl "eval" lines */
    int64_t n_evals;
    ct_log_eval *baselines; /* evaluations.jsonl lines */
    int64_t n_baselines;
    int64_t n_checkpoints;
    char last_checkpoint[CT_LOG_STR_MAX];
    ct_log_watch *watches;  /* "watch" lines in order */
    int64_t n_watches;
    char stop_reason[CT_LOG_STR_MAX]; /* the last "stop" line's reason ("" when none) */
    char stop_kind[32];               /* its kind: "non_finite", "divergence", "collapse" */
    int64_t stop_step;
    int64_t bad_lines;
} ct_run_log;

/* Read <run_dir>/metrics.jsonl (required: CT_ERR_IO naming it) and
 * <run_dir>/evaluations.jsonl (optional). Free with ct_run_log_free. */
ct_status ct_run_log_read(const char *run_dir, ct_run_log *log, ct_error *err);
void ct_run_log_free(ct_run_log *log);

#endif

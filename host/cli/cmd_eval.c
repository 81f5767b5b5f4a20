/* `contrast eval CONFIG`: run the configured evaluators on a checkpoint
 * (or the initial model) and print "<evaluator>.<metric> value" lines.
 * The evaluators' run directory (semi_supervised's subset lists,
 * fine-tuned weights) is --run-dir, else the checkpoint's folder, else
 * <train.out_dir>/<name>. With --run-dir the results are also appended to
 * <run-dir>/evaluations.jsonl: what the report shows beside the run's own
 * evaluations (the random-init and raw-pixel baselines of a run are
 * `contrast eval` of its config without a checkpoint, and of
 * configs/pixels_fmnist.cfg, both with --run-dir RUN). */
#include <stdio.h>
#include <string.h>

#include "cli/run_opts.h"
#include "training/evaluate.h"
#include "training/metrics.h"
#include "training/run_dir.h"

#define EVAL_USAGE "eval CONFIG [--checkpoint FILE] [--run-dir DIR] [--set k=v]... [--threads N]"

static void eval_run_dir(const ct_run_opts *o, const ct_experiment *ex, char *out, size_t n) {
    if (o->run_dir) {
        snprintf(out, n, "%s", o->run_dir);
    } else if (o->checkpoint) {
        snprintf(out, n, "%s", o->checkpoint);
        char *slash = strrchr(out, '/');
        if (slash) *slash = '\0';
        else snprintf(out, n, ".");
    } else {
        ct_run_dir_default(ex, out, n);
    }
}

/* One line of <run_dir>/evaluations.jsonl. */
static void log_evaluation(const char *run_dir, const ct_run_opts *o, const ct_experiment *ex,
                           const ct_metrics *res) {
    char path[1200], body[2048], line[4608];
    snprintf(path, sizeof path, "%s/evaluations.jsonl", run_dir);
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "contrast: warning: cannot append to %s\n", path);
        return;
    }
    ct_metrics_json(res, body, sizeof body);
    char src[1024], cfg[1024];
    ct_metrics_json_string(o->checkpoint ? o->checkpoint : "", src, sizeof src);
    ct_metrics_json_string(ex->path, cfg, sizeof cfg);
    snprintf(line, sizeof line,
             "{\"type\": \"eval\", \"experiment\": \"%s\", \"encoder\": \"%s\", \"config\": %s, "
             "\"checkpoint\": %s, %s}",
             ex->name, ex->encoder_ops ? ex->encoder_ops->name : "", cfg, src, body);
    ct_metrics_write_line(f, line);
    fclose(f);
}

int ct_cmd_eval(int argc, char **argv) {
    ct_run_opts o;
    int rc = ct_run_opts_parse(&o, argc, argv, EVAL_USAGE);
    if (rc) return rc;
    if (o.resume || o.stop_after || o.split || o.out || o.labels_out || o.force || o.allow_config_change)
        return ct_cli_error("eval: unexpected option (usage: contrast %s)", EVAL_USAGE), 2;
    ct_experiment ex;
    ct_model m;
    memset(&m, 0, sizeof m);
    rc = ct_run_opts_load_model(&o, &ex, &m);
    if (rc == 0) {
        ct_metrics res = {0};
        ct_error err = CT_ERROR_INIT;
        char run_dir[1100];
        eval_run_dir(&o, &ex, run_dir, sizeof run_dir);
        ct_status st = ct_run_dir_make(run_dir, &err);
        if (st == CT_OK) st = ct_evaluate_in(&m, run_dir, &res, &err);
        if (st != CT_OK) {
            rc = ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(st));
        } else {
            char data[2048];
            ct_evaluation_data_text(&ex, data, sizeof data);
            printf("evaluation data: %s\n", data);
            for (int i = 0; i < res.n; i++) printf("%s %.2f\n", res.name[i], res.value[i]);
            if (o.run_dir) log_evaluation(run_dir, &o, &ex, &res);
        }
    }
    ct_model_free(&m);
    ct_experiment_free(&ex);
    return rc;
}

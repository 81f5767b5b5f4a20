/* `contrast report RUN_DIR [--threads N]`: write RUN_DIR/report.html (see
 * report/report.h) from the run's logs, its resolved config and its newest
 * checkpoint. Without a loadable config or checkpoint the page is still
 * written from metrics.jsonl, saying what is missing and why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "report/report.h"
#include "training/checkpoint.h"

#define REPORT_USAGE "report RUN_DIR [--threads N]"

static int parse(int argc, char **argv, const char **run_dir, int *threads) {
    *run_dir = NULL;
    *threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || v < 1 || v > 1024)
                return ct_cli_error("report: --threads needs an integer in [1, 1024]"), 2;
            *threads = (int)v;
            i++;
        } else if (argv[i][0] != '-' && !*run_dir) {
            *run_dir = argv[i];
        } else {
            return ct_cli_error("report: unexpected argument '%s' (usage: contrast %s)", argv[i], REPORT_USAGE), 2;
        }
    }
    if (!*run_dir) return ct_cli_error("report: missing RUN_DIR (usage: contrast %s)", REPORT_USAGE), 2;
    return 0;
}

/* The run's model: its config.cfg and newest checkpoint; *why says what
 * failed (the report then goes without the model). */
static bool load_model(const char *run_dir, int threads, ct_experiment *ex, ct_model *m, char *why, size_t n) {
    char cfg[1200], ckpt[1200];
    snprintf(cfg, sizeof cfg, "%s/config.cfg", run_dir);
    ct_cli_config c;
    ct_cli_config_init(&c);
    ct_error err = CT_ERROR_INIT;
    ct_status st = ct_experiment_load(ex, cfg, &c.opts, &err);
    if (st == CT_OK)
        st = ct_model_build(m, ex, threads > 0 ? threads : (int)ct_settings_int(ex->train, "threads"), true, &err);
    if (st == CT_OK) st = ct_checkpoint_latest(run_dir, ckpt, sizeof ckpt, &err);
    if (st == CT_OK) st = ct_checkpoint_load(ckpt, m->store, NULL, NULL, &err);
    if (st != CT_OK) snprintf(why, n, "%s", err.msg[0] ? err.msg : ct_status_str(st));
    return st == CT_OK;
}

int ct_cmd_report(int argc, char **argv) {
    const char *run_dir;
    int threads;
    int rc = parse(argc, argv, &run_dir, &threads);
    if (rc) return rc;
    char metrics[1200];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run_dir);
    struct stat sb;
    if (stat(metrics, &sb) != 0)
        return ct_cli_error("report: %s is not a run directory (no metrics.jsonl)", run_dir);
    ct_experiment ex;
    ct_model m;
    memset(&ex, 0, sizeof ex);
    memset(&m, 0, sizeof m);
    char why[CT_ERROR_MSG_MAX] = "", path[1300];
    bool have = load_model(run_dir, threads, &ex, &m, why, sizeof why);
    if (!have) fprintf(stderr, "contrast: report: without the model (%s)\n", why);
    ct_error err = CT_ERROR_INIT;
    ct_status st = ct_report_write(run_dir, have ? &m : NULL, why, path, sizeof path, &err);
    if (st == CT_OK) printf("wrote %s\n", path);
    else rc = ct_cli_error("report: %s", err.msg);
    ct_model_free(&m);
    ct_experiment_free(&ex);
    return rc;
}

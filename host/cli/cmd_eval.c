/* `contrast eval CONFIG`: run the configured evaluators on a checkpoint
 * (or the initial model) and print "<evaluator>.<metric> value" lines. */
#include <stdio.h>
#include <string.h>

#include "cli/run_opts.h"
#include "training/evaluate.h"

#define EVAL_USAGE "eval CONFIG [--checkpoint FILE] [--set k=v]... [--threads N]"

int ct_cmd_eval(int argc, char **argv) {
    ct_run_opts o;
    int rc = ct_run_opts_parse(&o, argc, argv, EVAL_USAGE);
    if (rc) return rc;
    if (o.resume || o.run_dir || o.stop_after || o.split || o.out || o.labels_out || o.force || o.allow_config_change)
        return ct_cli_error("eval: unexpected option (usage: contrast %s)", EVAL_USAGE), 2;
    ct_experiment ex;
    ct_model m;
    memset(&m, 0, sizeof m);
    rc = ct_run_opts_load_model(&o, &ex, &m);
    if (rc == 0) {
        ct_metrics res = {0};
        ct_error err = CT_ERROR_INIT;
        ct_status st = ct_evaluate(&m, &res, &err);
        if (st != CT_OK) {
            rc = ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(st));
        } else {
            for (int i = 0; i < res.n; i++) printf("%s %.2f\n", res.name[i], res.value[i]);
        }
    }
    ct_model_free(&m);
    ct_experiment_free(&ex);
    return rc;
}

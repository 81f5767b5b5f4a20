/* `contrast train CONFIG`: train (or resume) an experiment into its run
 * directory (see training/trainer.h). */
#include "cli/run_opts.h"
#include "training/trainer.h"

#define TRAIN_USAGE                                                                     \
    "train CONFIG [--set k=v]... [--resume [RUN_DIR]] [--run-dir DIR] [--threads N] " \
    "[--stop-after STEPS]"

int ct_cmd_train(int argc, char **argv) {
    ct_run_opts o;
    int rc = ct_run_opts_parse(&o, argc, argv, TRAIN_USAGE);
    if (rc) return rc;
    if (o.checkpoint || o.split || o.out)
        return ct_cli_error("train: --checkpoint/--split/--out belong to eval and embed"), 2;
    ct_train_opts to = {o.c.config, o.c.opts.sets, o.c.opts.n_sets, o.c.opts.allow_unsafe_plugins,
                        o.resume, o.run_dir, o.stop_after, (int)o.threads};
    ct_error err = CT_ERROR_INIT;
    ct_status st = ct_train_run(&to, &err);
    if (st == CT_OK) return 0;
    return ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(st));
}

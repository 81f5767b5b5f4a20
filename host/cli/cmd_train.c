/* `contrast train CONFIG`: train (or resume) an experiment into its run
 * directory (see training/trainer.h). Under mpirun/srun every rank runs
 * this (dist/dist.h): rank 0 prints and writes, the others print errors
 * only, and a failure on any rank ends the whole job naming that rank. */
#include <stdio.h>

#include "cli/run_opts.h"
#include "dist/dist.h"
#include "training/trainer.h"

#define TRAIN_USAGE                                                                     \
    "train CONFIG [--set k=v]... [--resume [RUN_DIR] [--allow-config-change]] [--run-dir DIR] " \
    "[--threads N] [--stop-after STEPS]"

/* Exit status: 0 finished (or already finished); 128 + the signal when
 * SIGINT/SIGTERM stopped it after a checkpoint (130, 143), as a shell
 * reports a process the signal killed; 1 for errors. */
int ct_cmd_train(int argc, char **argv) {
    ct_run_opts o;
    int rc = ct_run_opts_parse(&o, argc, argv, TRAIN_USAGE);
    if (rc) return rc;
    if (o.checkpoint || o.split || o.out || o.labels_out || o.force)
        return ct_cli_error("train: --checkpoint/--split/--out/--labels-out/--force belong to eval and embed"), 2;
    if (o.allow_config_change && !o.resume)
        return ct_cli_error("train: --allow-config-change goes with --resume"), 2;
    ct_error err = CT_ERROR_INIT;
    ct_status st = ct_dist_start(&argc, &argv, &err);
    if (st != CT_OK) return ct_cli_error("%s", err.msg);
    /* Rank 0 reports; the others' progress lines would repeat it. */
    if (ct_dist_rank() != 0 && !freopen("/dev/null", "w", stdout))
        return ct_cli_error("rank %d: cannot silence stdout", ct_dist_rank());
    ct_train_opts to = {.config = o.c.config,
                        .sets = o.c.opts.sets,
                        .n_sets = o.c.opts.n_sets,
                        .allow_unsafe_plugins = o.c.opts.allow_unsafe_plugins,
                        .resume = o.resume,
                        .run_dir = o.run_dir,
                        .stop_after_steps = o.stop_after,
                        .threads = (int)o.threads,
                        .allow_config_change = o.allow_config_change};
    ct_train_result res;
    st = ct_train_run(&to, &res, &err);
    /* The other ranks may be waiting in a collective for this one: end
     * the job now (bounded), naming the rank; the checkpoints on disk are
     * whole (they are written to a temporary name and renamed). */
    if (st != CT_OK && ct_dist_size() > 1) ct_dist_abort(1, "%s", err.msg[0] ? err.msg : ct_status_str(st));
    ct_dist_finish();
    if (st == CT_OK) return res.signal ? 128 + res.signal : 0;
    return ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(st));
}

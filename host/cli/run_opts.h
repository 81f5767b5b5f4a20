/* The options of the commands that run a model (train, eval, embed): the
 * shared config options plus --resume, --run-dir, --checkpoint, --split,
 * --out, --labels-out, --threads, --stop-after, --allow-config-change and
 * --force, parsed once for the three; each command refuses the ones that
 * are not its own. */
#ifndef CONTRAST_HOST_RUN_OPTS_H
#define CONTRAST_HOST_RUN_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/commands.h"
#include "training/model.h"

/* Options besides the shared ones; NULL-valued / zero ones stay unset. */
typedef struct ct_run_opts {
    ct_cli_config c;
    bool resume;
    const char *run_dir, *checkpoint, *split, *out, *labels_out;
    int64_t threads, stop_after;
    bool allow_config_change; /* train --resume */
    bool force;               /* embed: overwrite existing files */
} ct_run_opts;

/* Parse "CONFIG [options]..." (argv[0] the command): 0 when fine, else the
 * exit status after printing a one-line reason ("usage: contrast USAGE"). */
int ct_run_opts_parse(ct_run_opts *o, int argc, char **argv, const char *usage);

/* Load the experiment and build its model, with the checkpoint's weights
 * when one is given (else the seed's initialisation, said on stderr).
 * Returns 0 or the exit status 1 (reason printed); free both either way
 * (ct_model_free, ct_experiment_free). */
int ct_run_opts_load_model(const ct_run_opts *o, ct_experiment *ex, ct_model *m);

#endif

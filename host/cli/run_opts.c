/* The options of train, eval and embed (see run_opts.h). */
#include "cli/run_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "training/checkpoint.h"

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int parse_int(const char *cmd, const char *flag, const char *v, int64_t min, int64_t *out) {
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || x < min) {
        ct_cli_error("%s: %s needs an integer >= %lld", cmd, flag, (long long)min);
        return 2;
    }
    *out = x;
    return 0;
}

/* One command-specific option at argv[*i]; 1 consumed, 0 not ours, 2 usage error. */
static int own_option(ct_run_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char *cmd = argv[0];
    const char **str = strcmp(a, "--run-dir") == 0     ? &o->run_dir
                       : strcmp(a, "--checkpoint") == 0 ? &o->checkpoint
                       : strcmp(a, "--split") == 0      ? &o->split
                       : strcmp(a, "--out") == 0        ? &o->out
                       : strcmp(a, "--labels-out") == 0 ? &o->labels_out
                                                        : NULL;
    if (str) {
        if (!next) return ct_cli_error("%s: %s needs a value", cmd, a), 2;
        *str = next;
        *i += 2;
        return 1;
    }
    if (strcmp(a, "--threads") == 0 || strcmp(a, "--stop-after") == 0) {
        int64_t *dst = a[2] == 't' ? &o->threads : &o->stop_after;
        if (parse_int(cmd, a, next, 1, dst)) return 2;
        *i += 2;
        return 1;
    }
    bool *flag = strcmp(a, "--allow-config-change") == 0 ? &o->allow_config_change
                 : strcmp(a, "--force") == 0             ? &o->force
                                                         : NULL;
    if (flag) {
        *flag = true;
        (*i)++;
        return 1;
    }
    if (strcmp(a, "--resume") == 0) {
        o->resume = true;
        (*i)++;
        /* The optional RUN_DIR: the next argument when it is a directory. */
        if (next && next[0] != '-' && is_dir(next)) {
            o->run_dir = next;
            (*i)++;
        }
        return 1;
    }
    return 0;
}

int ct_run_opts_parse(ct_run_opts *o, int argc, char **argv, const char *usage) {
    memset(o, 0, sizeof *o);
    ct_cli_config_init(&o->c);
    for (int i = 1; i < argc;) {
        int r = ct_cli_common_option(&o->c, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        r = own_option(o, argc, argv, &i);
        if (r == 2) return 2;
        if (r == 1) continue;
        if (argv[i][0] == '-' || o->c.config)
            return ct_cli_error("%s: unexpected argument '%s' (usage: contrast %s)", argv[0], argv[i], usage), 2;
        o->c.config = argv[i++];
    }
    if (!o->c.config) return ct_cli_error("%s: missing CONFIG (usage: contrast %s)", argv[0], usage), 2;
    return 0;
}

int ct_run_opts_load_model(const ct_run_opts *o, ct_experiment *ex, ct_model *m) {
    if (ct_cli_load(ex, &o->c)) return 1;
    ct_error err = CT_ERROR_INIT;
    int threads = o->threads > 0 ? (int)o->threads : (int)ct_settings_int(ex->train, "threads");
    ct_status st = ct_model_build(m, ex, threads, true, &err);
    if (st == CT_OK && o->checkpoint) st = ct_checkpoint_load(o->checkpoint, m->store, NULL, NULL, &err);
    if (st != CT_OK) return ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(st));
    if (!o->checkpoint && ct_params_count(m->store) > 0)
        fprintf(stderr, "contrast: no --checkpoint: using the randomly initialised model (seed %llu)\n",
                (unsigned long long)ex->seed);
    return 0;
}

/* The training commands: train, eval, embed. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "training/evaluate.h"
#include "training/trainer.h"

#define TRAIN_USAGE                                                                     \
    "train CONFIG [--set k=v]... [--resume [RUN_DIR]] [--run-dir DIR] [--threads N] " \
    "[--stop-after STEPS]"
#define EVAL_USAGE "eval CONFIG [--checkpoint FILE] [--set k=v]... [--threads N]"
#define EMBED_USAGE \
    "embed CONFIG [--checkpoint FILE] --split train|test --out FEATS.npy [--set k=v]... [--threads N]"

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

/* Options besides the shared ones; NULL-valued ones stay unset. */
typedef struct cmd_opts {
    ct_cli_config c;
    bool resume;
    const char *run_dir, *checkpoint, *split, *out;
    int64_t threads, stop_after;
} cmd_opts;

/* One command-specific option at argv[*i]; 1 consumed, 0 not ours, 2 usage error. */
static int own_option(cmd_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char *cmd = argv[0];
    const char **str = strcmp(a, "--run-dir") == 0     ? &o->run_dir
                       : strcmp(a, "--checkpoint") == 0 ? &o->checkpoint
                       : strcmp(a, "--split") == 0      ? &o->split
                       : strcmp(a, "--out") == 0        ? &o->out
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

static int parse_args(cmd_opts *o, int argc, char **argv, const char *usage) {
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

int ct_cmd_train(int argc, char **argv) {
    cmd_opts o;
    int rc = parse_args(&o, argc, argv, TRAIN_USAGE);
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

/* Load the experiment and build its model, with the checkpoint's weights
 * when one is given (else the seed's initialisation, said on stderr). */
static int load_model(const cmd_opts *o, ct_experiment *ex, ct_model *m) {
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

int ct_cmd_eval(int argc, char **argv) {
    cmd_opts o;
    int rc = parse_args(&o, argc, argv, EVAL_USAGE);
    if (rc) return rc;
    if (o.resume || o.run_dir || o.stop_after || o.split || o.out)
        return ct_cli_error("eval: unexpected option (usage: contrast %s)", EVAL_USAGE), 2;
    ct_experiment ex;
    ct_model m;
    memset(&m, 0, sizeof m);
    rc = load_model(&o, &ex, &m);
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

/* labels.npy in the folder of `out`. */
static void labels_path(const char *out, char *buf, size_t n) {
    const char *slash = strrchr(out, '/');
    if (slash)
        snprintf(buf, n, "%.*s/labels.npy", (int)(slash - out), out);
    else
        snprintf(buf, n, "labels.npy");
}

int ct_cmd_embed(int argc, char **argv) {
    cmd_opts o;
    int rc = parse_args(&o, argc, argv, EMBED_USAGE);
    if (rc) return rc;
    if (!o.split || !o.out || (strcmp(o.split, "train") != 0 && strcmp(o.split, "test") != 0))
        return ct_cli_error("embed: needs --split train|test and --out FILE.npy (usage: contrast %s)", EMBED_USAGE), 2;
    ct_experiment ex;
    ct_model m;
    memset(&m, 0, sizeof m);
    rc = load_model(&o, &ex, &m);
    if (rc == 0) {
        float *feats = NULL;
        int32_t *labels = NULL;
        int64_t n = 0, d = 0;
        ct_error err = CT_ERROR_INIT;
        char lpath[1200];
        labels_path(o.out, lpath, sizeof lpath);
        ct_status st = ct_extract_features(&m, o.split, &feats, &labels, &n, &d, &err);
        if (st == CT_OK) st = ct_write_npy_f32(o.out, feats, n, d, &err);
        if (st == CT_OK) st = ct_write_npy_i32(lpath, labels, n, &err);
        if (st != CT_OK)
            rc = ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(st));
        else
            printf("wrote %s (%lld x %lld float32) and %s\n", o.out, (long long)n, (long long)d, lpath);
        free(feats);
        free(labels);
    }
    ct_model_free(&m);
    ct_experiment_free(&ex);
    return rc;
}

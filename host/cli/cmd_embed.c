/* `contrast embed CONFIG --split S --out F.npy`: the encoder's features of
 * an evaluation split as NumPy files: F.npy and its labels, F.labels.npy
 * (or --labels-out). Existing files are never replaced without --force, so
 * embedding the train split never silently replaces the test split's
 * labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run_opts.h"
#include "training/evaluate.h"
#include "training/npy.h"

#define EMBED_USAGE                                                                                          \
    "embed CONFIG [--checkpoint FILE] --split train|test --out FEATS.npy [--labels-out LABELS.npy] [--force] " \
    "[--set k=v]... [--threads N]"

/* FEATS.npy -> FEATS.labels.npy (FEATS -> FEATS.labels.npy). */
static void labels_path(const char *out, char *buf, size_t n) {
    size_t len = strlen(out);
    if (len > 4 && strcmp(out + len - 4, ".npy") == 0) len -= 4;
    snprintf(buf, n, "%.*s.labels.npy", (int)len, out);
}

/* Refuse up front what the writers would refuse at the end, so that a
 * long extraction is not wasted on a name clash. */
static int check_outputs(const ct_run_opts *o, const char *lpath) {
    if (strcmp(o->out, lpath) == 0)
        return ct_cli_error("embed: --out and --labels-out are the same file %s", lpath), 2;
    if (o->force) return 0;
    const char *paths[2] = {o->out, lpath};
    for (int k = 0; k < 2; k++)
        if (access(paths[k], F_OK) == 0)
            return ct_cli_error("embed: %s already exists (--force overwrites it)", paths[k]);
    return 0;
}

int ct_cmd_embed(int argc, char **argv) {
    ct_run_opts o;
    int rc = ct_run_opts_parse(&o, argc, argv, EMBED_USAGE);
    if (rc) return rc;
    if (!o.split || !o.out || (strcmp(o.split, "train") != 0 && strcmp(o.split, "test") != 0))
        return ct_cli_error("embed: needs --split train|test and --out FILE.npy (usage: contrast %s)", EMBED_USAGE), 2;
    if (o.resume || o.run_dir || o.stop_after || o.allow_config_change)
        return ct_cli_error("embed: unexpected option (usage: contrast %s)", EMBED_USAGE), 2;
    char lpath[1200];
    if (o.labels_out)
        snprintf(lpath, sizeof lpath, "%s", o.labels_out);
    else
        labels_path(o.out, lpath, sizeof lpath);
    if ((rc = check_outputs(&o, lpath))) return rc;
    ct_experiment ex;
    ct_model m;
    memset(&m, 0, sizeof m);
    rc = ct_run_opts_load_model(&o, &ex, &m);
    if (rc == 0) {
        float *feats = NULL;
        int32_t *labels = NULL;
        int64_t n = 0, d = 0;
        ct_error err = CT_ERROR_INIT;
        /* Non-finite features are refused by the extraction itself. */
        ct_status st = ct_extract_features(&m, o.split, &feats, &labels, &n, &d, &err);
        if (st == CT_OK) st = ct_write_npy_f32(o.out, feats, n, d, o.force, &err);
        if (st == CT_OK) st = ct_write_npy_i32(lpath, labels, n, o.force, &err);
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

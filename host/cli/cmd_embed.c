/* `contrast embed CONFIG --split S --out F.npy`: the encoder's features of
 * an evaluation split as NumPy files (features and labels.npy beside). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_opts.h"
#include "training/evaluate.h"
#include "training/npy.h"

#define EMBED_USAGE \
    "embed CONFIG [--checkpoint FILE] --split train|test --out FEATS.npy [--set k=v]... [--threads N]"

/* labels.npy in the folder of `out`. */
static void labels_path(const char *out, char *buf, size_t n) {
    const char *slash = strrchr(out, '/');
    if (slash)
        snprintf(buf, n, "%.*s/labels.npy", (int)(slash - out), out);
    else
        snprintf(buf, n, "labels.npy");
}

int ct_cmd_embed(int argc, char **argv) {
    ct_run_opts o;
    int rc = ct_run_opts_parse(&o, argc, argv, EMBED_USAGE);
    if (rc) return rc;
    if (!o.split || !o.out || (strcmp(o.split, "train") != 0 && strcmp(o.split, "test") != 0))
        return ct_cli_error("embed: needs --split train|test and --out FILE.npy (usage: contrast %s)", EMBED_USAGE), 2;
    ct_experiment ex;
    ct_model m;
    memset(&m, 0, sizeof m);
    rc = ct_run_opts_load_model(&o, &ex, &m);
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

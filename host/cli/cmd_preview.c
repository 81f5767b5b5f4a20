/* `contrast preview CONFIG --out grid.png [--n 8] [--pipeline P] [--epoch E]`
 *
 * Writes the augmentation preview grid (data/preview_grid.h) as a PNG file. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "config/experiment.h"
#include "data/preview_grid.h"

#define PREVIEW_USAGE "preview CONFIG --out grid.png [--n 8] [--pipeline P] [--epoch E] [--set k=v]..."

typedef struct preview_opts {
    const char *out;
    int n, pipeline;
    long epoch;
} preview_opts;

static int parse_int_arg(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        ct_cli_error("preview: %s needs an integer in [%ld, %ld], got '%s'", flag, lo, hi, v ? v : "");
        return 2;
    }
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, ct_cli_config *c, preview_opts *o) {
    ct_cli_config_init(c);
    o->out = NULL;
    o->n = 8;
    o->pipeline = 0;
    o->epoch = 0;
    for (int i = 1; i < argc;) {
        int r = ct_cli_common_option(c, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        int rc = 0;
        if (strcmp(a, "--out") == 0 && !v) {
            ct_cli_error("preview: --out needs a file name");
            return 2;
        }
        if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--n") == 0) rc = parse_int_arg(a, v, 1, 256, &x), o->n = (int)x;
        else if (strcmp(a, "--pipeline") == 0) rc = parse_int_arg(a, v, 0, CT_MAX_PIPELINES - 1, &x), o->pipeline = (int)x;
        else if (strcmp(a, "--epoch") == 0) rc = parse_int_arg(a, v, 0, 1000000000L, &x), o->epoch = x;
        else if (a[0] != '-' && !c->config) {
            c->config = a;
            i++;
            continue;
        } else {
            ct_cli_error("preview: unexpected argument '%s' (usage: %s)", a, PREVIEW_USAGE);
            return 2;
        }
        if (rc) return rc;
        i += 2;
    }
    if (!c->config || !o->out) {
        ct_cli_error("preview: needs CONFIG and --out FILE (usage: %s)", PREVIEW_USAGE);
        return 2;
    }
    return 0;
}

static ct_status write_file(const char *path, const unsigned char *data, size_t n, ct_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return ct_error_set(err, CT_ERR_IO, "preview: %s: cannot write: %s", path, strerror(errno));
    bool ok = fwrite(data, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    return ok ? CT_OK : ct_error_set(err, CT_ERR_IO, "preview: %s: cannot write: %s", path, strerror(errno));
}

int ct_cmd_preview(int argc, char **argv) {
    ct_cli_config c;
    preview_opts o;
    int rc = parse_args(argc, argv, &c, &o);
    if (rc) return rc;
    ct_experiment ex;
    memset(&ex, 0, sizeof ex);
    if (ct_cli_load(&ex, &c) != 0) return 1;
    if (o.pipeline >= ex.n_pipelines) {
        ct_cli_error("preview: %s has %d pipeline(s); --pipeline %d does not exist", c.config, ex.n_pipelines,
                     o.pipeline);
        ct_experiment_free(&ex);
        return 1;
    }
    ct_error err = CT_ERROR_INIT;
    unsigned char *png = NULL;
    size_t bytes = 0;
    int rows = 0, views = 0;
    ct_status st = ct_preview_png(&ex, o.pipeline, o.n, o.epoch, &png, &bytes, &rows, &views, &err);
    if (st == CT_OK) st = write_file(o.out, png, bytes, &err);
    if (st == CT_OK)
        printf("wrote %s: %d samples of data \"%s\", original + %d views each (epoch %ld)\n", o.out, rows,
               ex.pipelines[o.pipeline].data->name, views, o.epoch);
    free(png);
    ct_experiment_free(&ex);
    return st == CT_OK ? 0 : ct_cli_error("%s", err.msg);
}

/* `contrast preview CONFIG --out grid.png [--n 8] [--pipeline P] [--epoch E]`
 *
 * Writes a PNG grid: one row per sample (items 0..n-1 of the pipeline's
 * dataset), the original first, then each part exactly as the training
 * pipeline makes it for that epoch (same seed, same structure: views, or a
 * jigsaw's image and patches), shown before a final `normalize` transform
 * so the colours are the real ones. Cells are
 * upscaled (nearest) to about 96 pixels; clips show their first frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "config/experiment.h"
#include "data/chain.h"
#include "data/sample.h"

#ifdef CONTRAST_HAVE_PNG
#include <png.h>
#endif

#define PREVIEW_USAGE "preview CONFIG --out grid.png [--n 8] [--pipeline P] [--epoch E] [--set k=v]..."
#define PREVIEW_CELL 96
#define PREVIEW_GAP 4

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

/* The grid being drawn: RGB bytes. */
typedef struct grid {
    unsigned char *px;
    int w, h, cell, scale;
} grid;

static unsigned char to_byte(float v) {
    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    return (unsigned char)(v * 255.0f + 0.5f);
}

/* Draw frame 0 of img into cell (row, col), centred, upscaled by g->scale. */
static void draw_cell(grid *g, const ct_image *img, int row, int col) {
    int cw = img->w * g->scale, ch = img->h * g->scale;
    int x0 = PREVIEW_GAP + col * (g->cell + PREVIEW_GAP) + (g->cell - cw) / 2;
    int y0 = PREVIEW_GAP + row * (g->cell + PREVIEW_GAP) + (g->cell - ch) / 2;
    size_t plane = (size_t)img->h * img->w;
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            size_t i = (size_t)(y / g->scale) * img->w + (size_t)(x / g->scale);
            unsigned char *p = g->px + ((size_t)(y0 + y) * g->w + (size_t)(x0 + x)) * 3;
            for (int k = 0; k < 3; k++) p[k] = to_byte(img->data[(img->c >= 3 ? (size_t)k : 0) * plane + i]);
        }
}

/* The chain to display: without a trailing normalize. */
static ct_chain display_chain(const ct_chain *c) {
    ct_chain d = *c;
    if (d.n > 0 && strcmp(d.t[d.n - 1].ops->name, "normalize") == 0) d.n--;
    return d;
}

/* Every image of the grid: n rows of (original + views). */
typedef struct cells {
    ct_image *img;
    int rows, cols;
} cells;

static void cells_free(cells *c) {
    for (int i = 0; c->img && i < c->rows * c->cols; i++) ct_image_free(&c->img[i]);
    free(c->img);
}

static ct_status make_cells(const ct_experiment *ex, const preview_opts *o, cells *out, ct_error *err) {
    const ct_pipeline_spec *spec = &ex->pipelines[o->pipeline];
    const ct_dataset *d = spec->data;
    int views = ct_sample_n_parts(spec);
    /* The chains as shown: each without a trailing normalize. */
    ct_chain shown[CT_MAX_CROP_GROUPS];
    const ct_chain *chains[CT_MAX_CROP_GROUPS];
    for (int g = 0; g < spec->n_groups; g++) {
        shown[g] = display_chain(&spec->groups[g].chain);
        chains[g] = &shown[g];
    }
    int64_t n = d->info.count < o->n ? d->info.count : o->n;
    out->rows = (int)n;
    out->cols = 1 + views;
    out->img = calloc((size_t)out->rows * out->cols, sizeof *out->img);
    if (!out->img) return ct_error_set(err, CT_ERR_NOMEM, "preview: out of memory");
    ct_image scratch = CT_IMAGE_INIT;
    ct_status st = CT_OK;
    for (int r = 0; r < out->rows && st == CT_OK; r++) {
        ct_image *row = &out->img[(size_t)r * out->cols];
        int32_t label;
        st = d->ops->get(d->self, r, &row[0], &label, err);
        /* The parts exactly as the training pipeline makes them (its seed,
         * its structure), shown before a final normalize. */
        if (st == CT_OK)
            st = ct_sample_parts(spec, chains, ct_pipeline_seed(ex->seed, o->pipeline), o->epoch, r, &row[0], &row[1],
                                 &scratch, err);
        if (st != CT_OK) ct_error_prefix(err, "preview: data \"%s\" item %d: ", d->name, r);
    }
    ct_image_free(&scratch);
    return st;
}

static ct_status write_grid(const cells *c, const char *path, ct_error *err) {
#ifdef CONTRAST_HAVE_PNG
    int maxd = 1;
    for (int i = 0; i < c->rows * c->cols; i++) {
        if (c->img[i].h > maxd) maxd = c->img[i].h;
        if (c->img[i].w > maxd) maxd = c->img[i].w;
    }
    grid g;
    g.scale = maxd < PREVIEW_CELL ? PREVIEW_CELL / maxd : 1;
    g.cell = maxd * g.scale;
    g.w = PREVIEW_GAP + c->cols * (g.cell + PREVIEW_GAP);
    g.h = PREVIEW_GAP + c->rows * (g.cell + PREVIEW_GAP);
    g.px = malloc((size_t)g.w * g.h * 3);
    if (!g.px) return ct_error_set(err, CT_ERR_NOMEM, "preview: out of memory");
    memset(g.px, 48, (size_t)g.w * g.h * 3); /* dark grey background */
    for (int r = 0; r < c->rows; r++)
        for (int k = 0; k < c->cols; k++) draw_cell(&g, &c->img[(size_t)r * c->cols + k], r, k);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)g.w;
    img.height = (png_uint_32)g.h;
    img.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&img, path, 0, g.px, 0, NULL);
    free(g.px);
    if (!ok) return ct_error_set(err, CT_ERR_IO, "preview: %s: cannot write PNG: %s", path, img.message);
    return CT_OK;
#else
    (void)c;
    return ct_error_set(err, CT_ERR_UNSUPPORTED, "preview: %s: this build has no libpng", path);
#endif
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
    cells cl;
    memset(&cl, 0, sizeof cl);
    ct_error err = CT_ERROR_INIT;
    ct_status st = make_cells(&ex, &o, &cl, &err);
    if (st == CT_OK) st = write_grid(&cl, o.out, &err);
    if (st == CT_OK)
        printf("wrote %s: %d samples of data \"%s\", original + %d views each (epoch %ld)\n", o.out, cl.rows,
               ex.pipelines[o.pipeline].data->name, cl.cols - 1, o.epoch);
    cells_free(&cl);
    ct_experiment_free(&ex);
    return st == CT_OK ? 0 : ct_cli_error("%s", err.msg);
}

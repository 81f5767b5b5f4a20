/* The augmentation preview grid (see preview_grid.h). */
#include "data/preview_grid.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/chain.h"
#include "data/pipeline.h"
#include "data/sample.h"

#ifdef CONTRAST_HAVE_PNG
#include <png.h>
#endif

#define PREVIEW_CELL 96
#define PREVIEW_GAP 4

/* The grid being drawn: RGB bytes. */
typedef struct grid {
    unsigned char *px;
    int w, h, cell, scale;
} grid;

static unsigned char to_byte(float v) {
    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    return (unsigned char)(v * 255.0f + 0.5f);
}

/* Draw frame f of img into cell (row, col), centred, upscaled by g->scale. */
static void draw_cell(grid *g, const ct_image *img, int f, int row, int col) {
    int cw = img->w * g->scale, ch = img->h * g->scale;
    const float *data = ct_image_frame(img, f);
    int x0 = PREVIEW_GAP + col * (g->cell + PREVIEW_GAP) + (g->cell - cw) / 2;
    int y0 = PREVIEW_GAP + row * (g->cell + PREVIEW_GAP) + (g->cell - ch) / 2;
    size_t plane = (size_t)img->h * img->w;
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            size_t i = (size_t)(y / g->scale) * img->w + (size_t)(x / g->scale);
            unsigned char *p = g->px + ((size_t)(y0 + y) * g->w + (size_t)(x0 + x)) * 3;
            for (int k = 0; k < 3; k++) p[k] = to_byte(data[(img->c >= 3 ? (size_t)k : 0) * plane + i]);
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

static ct_status make_cells(const ct_experiment *ex, int pipeline, int n_items, long epoch, cells *out,
                            ct_error *err) {
    const ct_pipeline_spec *spec = &ex->pipelines[pipeline];
    const ct_dataset *d = spec->data;
    int views = ct_sample_n_parts(spec);
    /* The chains as shown: each without a trailing normalize. */
    ct_chain shown[CT_MAX_CROP_GROUPS];
    const ct_chain *chains[CT_MAX_CROP_GROUPS];
    for (int g = 0; g < spec->n_groups; g++) {
        shown[g] = display_chain(&spec->groups[g].chain);
        chains[g] = &shown[g];
    }
    int64_t n = d->info.count < n_items ? d->info.count : n_items;
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
            st = ct_sample_parts(spec, chains, ct_pipeline_seed(ex->seed, pipeline), epoch, r, &row[0], &row[1], &scratch,
                                 err);
        if (st != CT_OK) ct_error_prefix(err, "preview: data \"%s\" item %d: ", d->name, r);
    }
    ct_image_free(&scratch);
    return st;
}

static ct_status encode_grid(const cells *c, unsigned char **png, size_t *bytes, ct_error *err) {
#ifdef CONTRAST_HAVE_PNG
    int maxd = 1, maxt = 1;
    for (int i = 0; i < c->rows * c->cols; i++) {
        if (c->img[i].h > maxd) maxd = c->img[i].h;
        if (c->img[i].w > maxd) maxd = c->img[i].w;
        if (c->img[i].t > maxt) maxt = c->img[i].t;
    }
    /* Clips: every image (a sample's original, then each part) gets a row
     * of its frames, so motion and per-clip augmentation are visible;
     * still images: one row per sample. */
    bool clips = maxt > 1;
    int grid_cols = clips ? maxt : c->cols, grid_rows = clips ? c->rows * c->cols : c->rows;
    grid g;
    g.scale = maxd < PREVIEW_CELL ? PREVIEW_CELL / maxd : 1;
    g.cell = maxd * g.scale;
    g.w = PREVIEW_GAP + grid_cols * (g.cell + PREVIEW_GAP);
    g.h = PREVIEW_GAP + grid_rows * (g.cell + PREVIEW_GAP);
    g.px = malloc((size_t)g.w * g.h * 3);
    if (!g.px) return ct_error_set(err, CT_ERR_NOMEM, "preview: out of memory");
    memset(g.px, 48, (size_t)g.w * g.h * 3); /* dark grey background */
    for (int r = 0; r < c->rows; r++)
        for (int k = 0; k < c->cols; k++) {
            const ct_image *im = &c->img[(size_t)r * c->cols + k];
            if (!clips) draw_cell(&g, im, 0, r, k);
            for (int f = 0; clips && f < im->t; f++) draw_cell(&g, im, f, r * c->cols + k, f);
        }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)g.w;
    img.height = (png_uint_32)g.h;
    img.format = PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    int ok = png_image_write_to_memory(&img, NULL, &size, 0, g.px, 0, NULL);
    *png = ok ? malloc(size) : NULL;
    ok = *png && png_image_write_to_memory(&img, *png, &size, 0, g.px, 0, NULL);
    free(g.px);
    if (!ok) {
        free(*png);
        *png = NULL;
        return ct_error_set(err, CT_ERR_IO, "preview: cannot encode PNG: %s", img.message);
    }
    *bytes = size;
    return CT_OK;
#else
    (void)c, (void)png, (void)bytes;
    return ct_error_set(err, CT_ERR_UNSUPPORTED, "preview: this build has no libpng");
#endif
}

ct_status ct_preview_png(const ct_experiment *ex, int pipeline, int n, long epoch, unsigned char **png,
                         size_t *bytes, int *rows, int *views, ct_error *err) {
    *png = NULL;
    *bytes = 0;
    if (pipeline < 0 || pipeline >= ex->n_pipelines)
        return ct_error_set(err, CT_ERR_INVALID, "preview: %s has %d pipeline(s); pipeline %d does not exist",
                            ex->path, ex->n_pipelines, pipeline);
    cells cl;
    memset(&cl, 0, sizeof cl);
    ct_status st = make_cells(ex, pipeline, n, epoch, &cl, err);
    if (st == CT_OK) st = encode_grid(&cl, png, bytes, err);
    *rows = cl.rows;
    *views = cl.cols - 1;
    cells_free(&cl);
    return st;
}

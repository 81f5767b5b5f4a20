/* Structure plugin `jigsaw`: the image and its shuffled patches, PIRL's
 * "pretext-invariant" pair (Misra & van der Maaten 2020, after Noroozi &
 * Favaro's jigsaw puzzles). With the memory_bank architecture it is PIRL:
 * set 0 plays f(v_I) (the bank entry), set 1 the patch aggregate g(v_I^t).
 *
 * Sampling (pipeline workers, contrast/structure.h), parts of one sample:
 *   part 0      the pipeline's chain 0 applied to the item (the full view),
 *               rng keyed (seed, epoch, item, 0);
 *   parts 1..G  G = grid x grid patches: a square crop of the item covering
 *               a random share `scale` of its area is resized (bilinear,
 *               half-pixel centres) to `crop` x `crop` pixels and cut into
 *               grid x grid cells of crop / grid pixels; each patch is a
 *               `patch`-pixel window at a random offset inside its cell
 *               (jitter: up to cell - patch pixels, so neighbouring patches
 *               never share an edge the network could match). Patches are
 *               placed in a random permutation of the cells: part 1 + k
 *               comes from cell perm[k]. Each patch is then transformed on
 *               its own by the pipeline's chain 1 when it has a second views
 *               group (PIRL: colour jitter, random grayscale per patch),
 *               else left as cut. The crop and the permutation are drawn
 *               from the stream keyed (seed, epoch, item, 1 + G), a part
 *               index no part uses; patch k's jitter and chain-1 transform
 *               from (seed, epoch, item, 1 + k). The resampling is computed
 *               straight from the item for each patch pixel, so no shared
 *               or cached image exists: only a per-call scratch patch.
 *
 * Embedding (the graph): set 0 = encoder(part 0); set 1 = every patch of
 * the batch through the same encoder in one forward (its batch norm sees
 * all G x N patches), a per-patch linear projection (encoder dim -> proj),
 * the G projections of each sample concatenated in the part order (the
 * shuffled order: the representation must not depend on the permutation),
 * a second linear layer (G x proj -> encoder dim). Both sets are in the
 * encoder's feature space; the architecture applies its head to both.
 * Head groups 0 and 1: a full view and an aggregate of patches are not
 * the same distribution, so an architecture that forwards per group keeps
 * their batch statistics apart. One row per sample (its item, its group).
 *
 * Layers (declare, PyTorch Linear layout): <prefix>patch_proj.{weight,bias}
 * (proj, D), (proj) and <prefix>agg.{weight,bias} (D, G*proj), (D); the key
 * side's copies under "key_" + prefix, which momentum keeps as an EMA of
 * the query side's. */
#include <contrast/contrast.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JIGSAW_MAX_GRID 3 /* 1 + 4 x 4 parts would exceed CT_MAX_VIEWS */
#define JIGSAW_MAX_CELLS (JIGSAW_MAX_GRID * JIGSAW_MAX_GRID)

/* The layers of one side (query or key); NULL until declared. */
typedef struct side_layers {
    ct_tensor *proj_w, *proj_b, *agg_w, *agg_b;
    int64_t feature_dim;
} side_layers;

typedef struct jigsaw {
    int grid, crop, patch, cell;
    float scale_lo, scale_hi;
    int64_t proj;
    bool patch_chain; /* the pipeline has a chain 1 for the patches */
    /* Written by declare() when the model is built, read by embed() on the
     * training thread; sample() never touches them. */
    side_layers side[2];
} jigsaw;

static const ct_param_spec jigsaw_params[] = {
    CT_PARAM_INT("grid", "3", 2, JIGSAW_MAX_GRID, "patches per side (grid x grid patches; 1 + grid^2 parts)"),
    CT_PARAM_INT("crop", "30", 2, 4096, "side (px) of the square crop that is cut into the grid"),
    CT_PARAM_INT("patch", "8", 1, 4096, "side (px) of each patch; at most crop / grid (the rest is jitter)"),
    CT_PARAM_FLOATS("scale", "[0.6, 1.0]", 1e-4, 1,
                    "range [min, max] of the share of the item's area the square crop covers"),
    CT_PARAM_INT("proj", "128", 1, 65536, "output size of the per-patch projection"),
    CT_PARAM_END,
};

/* ---- create / info ------------------------------------------------------------ */

static ct_status read_scale(const ct_settings *s, jigsaw *j, ct_error *err) {
    if (ct_settings_len(s, "scale") != 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: jigsaw: scale must be [min, max]", ct_settings_origin(s, "scale"));
    j->scale_lo = (float)ct_settings_float_at(s, "scale", 0);
    j->scale_hi = (float)ct_settings_float_at(s, "scale", 1);
    if (j->scale_lo > j->scale_hi)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: jigsaw: scale = [%g, %g] has min > max",
                            ct_settings_origin(s, "scale"), (double)j->scale_lo, (double)j->scale_hi);
    return CT_OK;
}

static ct_status jigsaw_create(const ct_settings *s, const ct_structure_env *env, void **self, ct_error *err) {
    jigsaw j = {0};
    j.grid = (int)ct_settings_int(s, "grid");
    j.crop = (int)ct_settings_int(s, "crop");
    j.patch = (int)ct_settings_int(s, "patch");
    j.proj = ct_settings_int(s, "proj");
    j.cell = j.crop / j.grid;
    ct_status st = read_scale(s, &j, err);
    if (st != CT_OK) return st;
    if (j.patch > j.cell)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "%s: jigsaw: patch = %d is larger than a cell (crop %d / grid %d = %d px)",
                            ct_settings_origin(s, "patch"), j.patch, j.crop, j.grid, j.cell);
    if (env->n_chains < 1 || env->n_chains > 2)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "jigsaw: the pipeline has %d views groups; it takes one (the full view's transforms) "
                            "or two (then the second transforms each patch)",
                            env->n_chains);
    j.patch_chain = env->n_chains == 2;
    jigsaw *out = malloc(sizeof *out);
    if (!out) return ct_error_set(err, CT_ERR_NOMEM, "jigsaw: out of memory");
    *out = j;
    *self = out;
    return CT_OK;
}

static void jigsaw_destroy(void *self) { free(self); }

static void jigsaw_info(void *self, ct_structure_info *out) {
    const jigsaw *j = self;
    memset(out, 0, sizeof *out);
    out->n_parts = 1 + j->grid * j->grid;
    out->n_sets = 2;
    out->rows_per_sample = 1;
    out->flags = 0;
    out->row_kind = "samples";
}

/* ---- declare -------------------------------------------------------------------- */

static ct_tensor *linear_part(ct_params *store, const char *prefix, const char *layer, const char *field, int ndim,
                              const int64_t *shape, int64_t fan_in, ct_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s%s.%s", prefix, layer, field);
    bool bias = ndim == 1;
    return ct_params_add(store, name, CT_PARAM_TRAINABLE, ndim, shape,
                         bias ? CT_INIT_FAN_IN_UNIFORM : CT_INIT_LINEAR_DEFAULT, bias ? (float)fan_in : 0.0f,
                         bias ? CT_PARAM_NO_DECAY : 0u, err);
}

static ct_status jigsaw_declare(void *self, ct_params *store, const char *prefix, int64_t feature_dim,
                                ct_embed_side side, ct_error *err) {
    jigsaw *j = self;
    if (side != CT_SIDE_QUERY && side != CT_SIDE_KEY)
        return ct_error_set(err, CT_ERR_INVALID, "jigsaw: unknown embedding side %d", (int)side);
    if (feature_dim <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "jigsaw: encoder features of size %lld", (long long)feature_dim);
    int64_t cat = (int64_t)j->grid * j->grid * j->proj;
    int64_t pw[2] = {j->proj, feature_dim}, pb[1] = {j->proj}, aw[2] = {feature_dim, cat}, ab[1] = {feature_dim};
    side_layers L = {0};
    L.feature_dim = feature_dim;
    L.proj_w = linear_part(store, prefix, "patch_proj", "weight", 2, pw, feature_dim, err);
    if (L.proj_w) L.proj_b = linear_part(store, prefix, "patch_proj", "bias", 1, pb, feature_dim, err);
    if (L.proj_b) L.agg_w = linear_part(store, prefix, "agg", "weight", 2, aw, cat, err);
    if (L.agg_w) L.agg_b = linear_part(store, prefix, "agg", "bias", 1, ab, cat, err);
    if (!L.agg_b) return err && err->code != CT_OK ? err->code : CT_ERR_INVALID;
    j->side[side] = L;
    return CT_OK;
}

/* ---- sampling --------------------------------------------------------------------- */

/* Where the grid lies in the item: a square of side `side` (item pixels)
 * at (y0, x0), and which cell each patch shows. */
typedef struct layout {
    int y0, x0, side;
    int64_t perm[JIGSAW_MAX_CELLS];
} layout;

static void draw_layout(const jigsaw *j, const ct_image *src, ct_rng *r, layout *L) {
    int short_side = src->h < src->w ? src->h : src->w;
    double area = (double)src->h * src->w * ct_rng_uniform_range(r, j->scale_lo, j->scale_hi);
    int side = (int)lround(sqrt(area));
    L->side = side < 1 ? 1 : side > short_side ? short_side : side;
    L->y0 = (int)ct_rng_below(r, (uint32_t)(src->h - L->side + 1));
    L->x0 = (int)ct_rng_below(r, (uint32_t)(src->w - L->side + 1));
    int cells = j->grid * j->grid;
    for (int k = 0; k < cells; k++) L->perm[k] = k;
    ct_rng_shuffle(r, L->perm, cells);
}

/* Item coordinate of crop pixel u along one axis (half-pixel centres), as
 * the lower neighbour i0, upper neighbour i1 and weight f of i1. */
static void source_pos(int u, int crop, int off, int side, int len, int *i0, int *i1, float *f) {
    double s = off + (u + 0.5) * (double)side / crop - 0.5;
    if (s < 0) s = 0;
    if (s > len - 1) s = len - 1;
    int a = (int)s;
    *i0 = a;
    *i1 = a + 1 < len ? a + 1 : a;
    *f = (float)(s - a);
}

/* Pixels [py, py + P) x [px, px + P) of the resized crop into dst (already
 * shaped t x c x P x P), every frame and channel alike. */
static void cut_patch(const jigsaw *j, const ct_image *src, const layout *L, int py, int px, ct_image *dst) {
    int P = j->patch;
    for (int f = 0; f < src->t; f++)
        for (int c = 0; c < src->c; c++) {
            const float *in = ct_image_frame(src, f) + (size_t)c * src->h * src->w;
            float *out = ct_image_frame(dst, f) + (size_t)c * P * P;
            for (int y = 0; y < P; y++) {
                int y0, y1, x0, x1;
                float fy, fx;
                source_pos(py + y, j->crop, L->y0, L->side, src->h, &y0, &y1, &fy);
                for (int x = 0; x < P; x++) {
                    source_pos(px + x, j->crop, L->x0, L->side, src->w, &x0, &x1, &fx);
                    float top = in[y0 * src->w + x0] * (1 - fx) + in[y0 * src->w + x1] * fx;
                    float bot = in[y1 * src->w + x0] * (1 - fx) + in[y1 * src->w + x1] * fx;
                    out[y * P + x] = top * (1 - fy) + bot * fy;
                }
            }
        }
}

/* Patch k (part 1 + k): cell perm[k] at a random offset, then chain 1. */
static ct_status make_patch(const jigsaw *j, const ct_sample_ctx *ctx, const layout *L, int k, ct_image *scratch,
                            ct_image *part, ct_error *err) {
    ct_rng r;
    ct_rng_init_keyed(&r, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, (uint64_t)(1 + k));
    int cell = (int)L->perm[k], jitter = j->cell - j->patch;
    int py = (cell / j->grid) * j->cell + (int)ct_rng_below(&r, (uint32_t)jitter + 1);
    int px = (cell % j->grid) * j->cell + (int)ct_rng_below(&r, (uint32_t)jitter + 1);
    ct_image *raw = j->patch_chain ? scratch : part;
    if (ct_image_reshape(raw, ctx->src->t, ctx->src->c, j->patch, j->patch) != CT_OK)
        return ct_error_set(err, CT_ERR_NOMEM, "jigsaw: out of memory for a patch");
    cut_patch(j, ctx->src, L, py, px, raw);
    if (!j->patch_chain) return CT_OK;
    ct_status st = ctx->apply(ctx, 1, raw, part, &r, err);
    if (st != CT_OK) ct_error_prefix(err, "jigsaw: patch %d (transforms of views group 1): ", k);
    return st;
}

static ct_status jigsaw_sample(void *self, const ct_sample_ctx *ctx, ct_image *parts, ct_error *err) {
    const jigsaw *j = self;
    const ct_image *src = ctx->src;
    if (!src || src->t < 1 || src->c < 1 || src->h < 1 || src->w < 1)
        return ct_error_set(err, CT_ERR_SHAPE, "jigsaw: an empty item");
    ct_rng r;
    ct_rng_init_keyed(&r, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, 0);
    ct_status st = ctx->apply(ctx, 0, src, &parts[0], &r, err);
    if (st != CT_OK) {
        ct_error_prefix(err, "jigsaw: the full view (transforms of views group 0): ");
        return st;
    }
    int cells = j->grid * j->grid;
    layout L;
    ct_rng_init_keyed(&r, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, (uint64_t)(1 + cells));
    draw_layout(j, src, &r, &L);
    ct_image scratch = CT_IMAGE_INIT;
    for (int k = 0; k < cells && st == CT_OK; k++) st = make_patch(j, ctx, &L, k, &scratch, &parts[1 + k], err);
    ct_image_free(&scratch);
    return st;
}

/* ---- embedding ---------------------------------------------------------------------- */

static const char *side_name(ct_embed_side side) { return side == CT_SIDE_KEY ? "key" : "query"; }

static ct_status check_batch(const jigsaw *j, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                             const side_layers *L, ct_embed_side side) {
    int parts = 1 + j->grid * j->grid;
    if (b->n < 1 || b->n_views != parts) {
        ct_graph_fail(g, CT_ERR_INVALID, "jigsaw: a batch of %d samples x %d parts (grid %d needs %d parts)", b->n,
                      b->n_views, j->grid, parts);
        return CT_ERR_INVALID;
    }
    for (int v = 0; v < parts; v++)
        if (!b->views[v] || b->views[v]->ndim < 4 || b->views[v]->shape[0] != b->n) {
            ct_graph_fail(g, CT_ERR_SHAPE, "jigsaw: part %d is not (%d, C, H, W)", v, b->n);
            return CT_ERR_SHAPE;
        }
    if (!L->agg_b) {
        ct_graph_fail(g, CT_ERR_PLUGIN, "jigsaw: the %s side's layers were never declared", side_name(side));
        return CT_ERR_PLUGIN;
    }
    if (L->feature_dim != enc->dim) {
        ct_graph_fail(g, CT_ERR_SHAPE, "jigsaw: the %s side's layers take %lld encoder features, the encoder gives %lld",
                      side_name(side), (long long)L->feature_dim, (long long)enc->dim);
        return CT_ERR_SHAPE;
    }
    return CT_OK;
}

/* Item and group of every row: the sample. */
static ct_status row_ids(ct_graph *g, const ct_batch *b, ct_embeddings *out) {
    int64_t *items = ct_graph_alloc(g, (size_t)b->n * sizeof *items);
    int32_t *groups = ct_graph_alloc(g, (size_t)b->n * sizeof *groups);
    if (!items || !groups) return ct_graph_status(g);
    for (int i = 0; i < b->n; i++) {
        items[i] = b->items ? b->items[i] : i;
        groups[i] = i;
    }
    out->items = items;
    out->groups = groups;
    return CT_OK;
}

/* Set 1: all patches in one encoder forward (rows part-major: k * N + i),
 * projected, regrouped sample-major (i * G + k) and concatenated per
 * sample, then aggregated to (N, D). */
static ct_tensor *patch_aggregate(const jigsaw *j, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                                  const side_layers *L) {
    int cells = j->grid * j->grid;
    int64_t n = b->n;
    ct_tensor *x = ct_concat(g, b->views + 1, cells, 0);
    ct_tensor *f = x ? enc->ops->forward(enc->self, g, x) : NULL;
    ct_tensor *p = f ? ct_linear(g, f, L->proj_w, L->proj_b) : NULL;
    int64_t *rows = ct_graph_alloc(g, (size_t)(n * cells) * sizeof *rows);
    if (!p || !rows) return NULL;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < cells; k++) rows[i * cells + k] = (int64_t)k * n + i;
    ct_tensor *s = ct_index_select(g, p, rows, n * cells);
    int64_t shape[2] = {n, cells * j->proj};
    ct_tensor *cat = s ? ct_reshape(g, s, 2, shape) : NULL;
    return cat ? ct_linear(g, cat, L->agg_w, L->agg_b) : NULL;
}

static ct_status jigsaw_embed(void *self, ct_graph *g, const ct_batch *b, const ct_encoder *enc, ct_embed_side side,
                              uint32_t sets, ct_embeddings *out) {
    const jigsaw *j = self;
    memset(out, 0, sizeof *out);
    if (side != CT_SIDE_QUERY && side != CT_SIDE_KEY) {
        ct_graph_fail(g, CT_ERR_INVALID, "jigsaw: unknown embedding side %d", (int)side);
        return CT_ERR_INVALID;
    }
    const side_layers *L = &j->side[side];
    ct_status st = check_batch(j, g, b, enc, L, side);
    if (st != CT_OK) return st;
    out->n_sets = 2;
    out->rows = b->n;
    out->rows_per_sample = 1;
    out->set_group[0] = 0;
    out->set_group[1] = 1;
    if ((st = row_ids(g, b, out)) != CT_OK) return st;
    if ((sets & CT_SET(0)) && !(out->set[0] = enc->ops->forward(enc->self, g, b->views[0])))
        return ct_graph_status(g) != CT_OK ? ct_graph_status(g) : CT_ERR_INVALID;
    if ((sets & CT_SET(1)) && !(out->set[1] = patch_aggregate(j, g, b, enc, L)))
        return ct_graph_status(g) != CT_OK ? ct_graph_status(g) : CT_ERR_INVALID;
    return CT_OK;
}

/* ---- registration ----------------------------------------------------------------------- */

static const ct_structure_ops jigsaw_ops = {
    .name = "jigsaw",
    .description = "PIRL's jigsaw: the full view and grid x grid shuffled, jittered patches, aggregated by a "
                   "per-patch projection and a second linear layer",
    .params = jigsaw_params,
    .create = jigsaw_create,
    .destroy = jigsaw_destroy,
    .info = jigsaw_info,
    .declare = jigsaw_declare,
    .sample = jigsaw_sample,
    .embed = jigsaw_embed,
};

static ct_status jigsaw_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_structure(reg, &jigsaw_ops);
    if (st != CT_OK) ct_error_set(err, st, "jigsaw: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("jigsaw", "1.0.0", "MIT", "jigsaw structure (PIRL): an image and its shuffled patches",
                 CT_ROLE_STRUCTURE, jigsaw_init)

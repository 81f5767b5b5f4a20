/* Structure plugin `tcn`: multi-view time-contrastive learning (Sermanet
 * et al. 2018, "Time-Contrastive Networks"): the frame of camera a at time
 * t and the frame of camera b at the same t are positives; the other times
 * of the same sequence and the frames of other sequences are negatives.
 *
 * Source: one that offers CT_MULTIVIEW_EXT (contrast/video.h), with items =
 * sequences (the `multiview` source's default).
 *
 * Sampling (pipeline workers). One sample is one sequence of L common
 * frames. Its `times` frames t_1 < ... < t_K are drawn uniformly among the
 * sets whose neighbours are at least `min_gap` frames apart (stars and
 * bars: K sorted draws from 0..L-1-(K-1)*min_gap, the k-th shifted by
 * k*min_gap), from the stream (seed, epoch, item, 2), which also draws the
 * ordered pair of distinct cameras (a, b). Part 0 is camera a at those
 * times, part 1 camera b, each (K, C, H, W); every frame goes through the
 * pipeline's chain p (the last chain when it has fewer) on its own, with
 * the stream (seed, epoch, item, 16 + p*K + k), so the two cameras of one
 * instant are augmented independently.
 *
 * Embedding: the 2 x n x K frames through the encoder in one forward pass
 * (batch norm sees both cameras); set 0 = camera a, set 1 = camera b, row
 * i*K + k = sample i's k-th time, so row r of set 0 is positive with row r
 * of set 1. Every row has its own group: a unique id per (sequence, time)
 * of the batch, so every other row is a negative.
 *
 * Why no frame closer than min_gap is ever a negative: the K times of one
 * sample are min_gap or more apart, and a batch never holds a sequence
 * twice (an epoch visits every item once and full batches are cut from
 * it; embed() refuses a batch that repeats one). So frames of one sequence
 * closer than min_gap to t are neither positives nor negatives: they are
 * never in the batch together. A queue or bank of older rows could hold
 * them, so the structure needs in-batch negatives (end_to_end); its rows
 * are frames, not dataset items, so no per-item bank. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/video.h>

typedef struct tcn {
    int times;   /* K */
    int min_gap; /* frames */
} tcn;

static const ct_param_spec tcn_params[] = {
    CT_PARAM_INT("times", "4", 1, 256, "instants per sequence in one sample (rows per sample)"),
    CT_PARAM_INT("min_gap", "4", 1, 100000,
                 "frames between two instants of one sequence in a batch: closer frames are neither positives nor "
                 "negatives"),
    CT_PARAM_END,
};

static ct_status tcn_create(const ct_settings *s, const ct_structure_env *env, void **self, ct_error *err) {
    if (env->n_chains < 1) return ct_error_set(err, CT_ERR_CONFIG, "tcn: the pipeline has no transform chain");
    tcn *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "tcn: out of memory");
    c->times = (int)ct_settings_int(s, "times");
    c->min_gap = (int)ct_settings_int(s, "min_gap");
    *self = c;
    return CT_OK;
}

static void tcn_destroy(void *self) { free(self); }

static void tcn_info(void *self, ct_structure_info *out) {
    const tcn *c = self;
    memset(out, 0, sizeof *out);
    out->n_parts = 2;
    out->n_sets = 2;
    out->rows_per_sample = c->times;
    out->flags = CT_STRUCT_ROWS_NOT_ITEMS | CT_STRUCT_NEEDS_BATCH_NEGATIVES;
    out->row_kind = "frames (one per sequence and time)";
    out->frames = 1; /* each part is one camera's frame: images to the encoder */
}

/* The source's multi-camera interface, or NULL. */
static const ct_multiview *multiview_of(const ct_sample_ctx *ctx) {
    const ct_source_ops *src = ctx->source;
    const ct_multiview *mv = src && src->extension ? src->extension(ctx->source_self, CT_MULTIVIEW_EXT) : NULL;
    return mv && mv->size >= sizeof *mv && mv->frames && mv->length && mv->locate ? mv : NULL;
}

/* K sorted times of 0..length-1, neighbours >= gap apart (length >=
 * (K-1)*gap + 1), uniform over all such sets. */
static void draw_times(ct_rng *r, int64_t length, int k, int gap, int64_t *t) {
    int64_t span = length - (int64_t)(k - 1) * gap; /* values 0..span-1 for the sorted draws */
    for (int i = 0; i < k; i++) t[i] = (int64_t)ct_rng_below(r, (uint32_t)span);
    for (int i = 1; i < k; i++) /* insertion sort: K is small */
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            int64_t x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    for (int i = 0; i < k; i++) t[i] += (int64_t)i * gap;
}

/* Each frame of `frames` through chain `chain` on its own into out (K, ...). */
static ct_status augment(const tcn *c, const ct_sample_ctx *ctx, int part, const ct_image *frames, ct_image *out,
                         ct_error *err) {
    ct_image one = CT_IMAGE_INIT, done = CT_IMAGE_INIT;
    int chain = part < ctx->n_chains ? part : ctx->n_chains - 1;
    ct_status st = ct_image_reshape(&one, 1, frames->c, frames->h, frames->w);
    for (int k = 0; k < c->times && st == CT_OK; k++) {
        memcpy(one.data, ct_image_frame(frames, k), ct_image_frame_size(frames) * sizeof *one.data);
        ct_rng r;
        ct_rng_init_keyed(&r, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, 16u + (uint64_t)part * c->times + k);
        st = ctx->apply(ctx, chain, &one, &done, &r, err);
        if (st == CT_OK && k == 0) st = ct_image_reshape(out, c->times, done.c, done.h, done.w);
        if (st == CT_OK && (done.t != 1 || done.c != out->c || done.h != out->h || done.w != out->w))
            st = ct_error_set(err, CT_ERR_SHAPE, "tcn: the transform chain gives frames of different sizes");
        if (st == CT_OK) memcpy(ct_image_frame(out, k), done.data, ct_image_frame_size(out) * sizeof *out->data);
    }
    ct_image_free(&one);
    ct_image_free(&done);
    return st;
}

static ct_status tcn_sample(void *self, const ct_sample_ctx *ctx, ct_image *parts, ct_error *err) {
    const tcn *c = self;
    const ct_multiview *mv = multiview_of(ctx);
    if (!mv)
        return ct_error_set(err, CT_ERR_CONFIG, "tcn: the source %s has no synchronised cameras (use the multiview source)",
                            ctx->source ? ctx->source->name : "(none)");
    int64_t seq, t;
    int view;
    mv->locate(mv->self, ctx->item, &seq, &view, &t);
    if (view >= 0)
        return ct_error_set(err, CT_ERR_CONFIG, "tcn: the source's items are single frames; set items = \"sequences\"");
    int64_t length = mv->length(mv->self, seq), need = (int64_t)(c->times - 1) * c->min_gap + 1;
    if (length < need || length > UINT32_MAX)
        return ct_error_set(err, CT_ERR_INVALID,
                            "tcn: sequence %lld has %lld frames; %d times %d frames apart need %lld (lower times or "
                            "min_gap)",
                            (long long)seq, (long long)length, c->times, c->min_gap, (long long)need);
    ct_rng r;
    ct_rng_init_keyed(&r, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, 2);
    int64_t *times = malloc((size_t)c->times * sizeof *times);
    if (!times) return ct_error_set(err, CT_ERR_NOMEM, "tcn: out of memory");
    draw_times(&r, length, c->times, c->min_gap, times);
    int cam[2];
    cam[0] = (int)ct_rng_below(&r, (uint32_t)mv->views);
    cam[1] = (cam[0] + 1 + (int)ct_rng_below(&r, (uint32_t)(mv->views - 1))) % mv->views;
    ct_image frames = CT_IMAGE_INIT;
    ct_status st = CT_OK;
    for (int p = 0; p < 2 && st == CT_OK; p++) {
        st = mv->frames(mv->self, seq, cam[p], times, c->times, &frames, err);
        if (st == CT_OK) st = augment(c, ctx, p, &frames, &parts[p], err);
    }
    ct_image_free(&frames);
    free(times);
    return st;
}

/* A batch repeating a sequence could pair frames closer than min_gap as
 * negatives: refuse it. */
static bool repeats_item(const ct_batch *b) {
    for (int i = 0; b->items && i < b->n; i++)
        for (int j = 0; j < i; j++)
            if (b->items[i] == b->items[j]) return true;
    return false;
}

static ct_status tcn_embed(void *self, ct_graph *g, const ct_batch *b, const ct_encoder *enc, ct_embed_side side,
                           uint32_t sets, ct_embeddings *out) {
    const tcn *c = self;
    (void)side;
    memset(out, 0, sizeof *out);
    if (b->n_views != 2) {
        ct_graph_fail(g, CT_ERR_SHAPE, "tcn: a batch of %d parts; tcn makes 2", b->n_views);
        return CT_ERR_SHAPE;
    }
    for (int p = 0; p < 2; p++) {
        const ct_tensor *v = b->views[p];
        if (!v || v->ndim != 5 || v->shape[0] != b->n || v->shape[1] != c->times) {
            ct_graph_fail(g, CT_ERR_SHAPE, "tcn: part %d is not (%d, %d, C, H, W)", p, b->n, c->times);
            return CT_ERR_SHAPE;
        }
    }
    if (repeats_item(b)) {
        ct_graph_fail(g, CT_ERR_INVALID, "tcn: a batch holds one sequence twice (batch_size above the number of "
                      "sequences?): its frames could be negatives closer than min_gap");
        return CT_ERR_INVALID;
    }
    /* The frames as a batch of n*K single images (sample-major), embedded
     * like two views: groups = row, unique per (sequence, time). */
    int64_t rows = (int64_t)b->n * c->times;
    int64_t *items = ct_graph_alloc(g, (size_t)rows * sizeof *items);
    if (!items) return ct_graph_status(g);
    for (int64_t r = 0; r < rows; r++) items[r] = -1;
    ct_batch flat = *b;
    flat.n = (int)rows;
    flat.items = items;
    flat.labels = NULL;
    for (int p = 0; p < 2; p++) {
        const ct_tensor *v = b->views[p];
        flat.views[p] = ct_reshape(g, b->views[p], 4, (int64_t[]){rows, v->shape[2], v->shape[3], v->shape[4]});
        if (!flat.views[p]) return ct_graph_status(g);
    }
    ct_status st = ct_views_embed(g, &flat, enc, sets, out);
    out->rows_per_sample = c->times;
    return st;
}

static const ct_structure_ops tcn_ops = {
    .name = "tcn",
    .description = "multi-view TCN: two cameras at one time are positives, other times and sequences negatives",
    .params = tcn_params,
    .create = tcn_create,
    .destroy = tcn_destroy,
    .info = tcn_info,
    .sample = tcn_sample,
    .embed = tcn_embed,
};

static ct_status tcn_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_structure(reg, &tcn_ops);
    if (st != CT_OK) ct_error_set(err, st, "tcn: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("tcn", "1.0.0", "MIT", "multi-view time-contrastive networks (two cameras at one time as positives)",
                 CT_ROLE_STRUCTURE, tcn_init)

/* Structure plugin `clip_pair`: two clips of one video are positives
 * (CVRL, Qian et al. 2021: temporally consistent spatiotemporal contrast);
 * clips of other videos are the negatives, as the architecture decides.
 *
 * Sampling (pipeline workers, contrast/structure.h). For a video of L
 * frames and clips of `frames` frames `stride` frames apart, a clip spans
 * (frames - 1) * stride + 1 frames and has M = L - (frames - 1) * stride
 * usable start frames. The gap between the two starts follows `gap`:
 *   "decreasing" (CVRL): gap = floor(M * (1 - sqrt(1 - u))), u ~ U(0, 1),
 *       a density falling linearly from 0 to M (near clips are likelier,
 *       far ones still drawn); the first start is uniform over the
 *       M - gap starts that leave room for the second;
 *   "uniform": gap uniform over 0..M-1 (far pairs as likely as near ones),
 *       the first start uniform over the M - gap that leave room;
 *   "zero": both clips start at the same frame (the ablation: the pair
 *       differs only by its augmentation).
 * The two clips are swapped with probability 1/2 (so neither position
 * means "earlier"). A video of one usable start gives two clips at it.
 * Start frames are drawn from the stream (seed, epoch, item, 2), a part
 * index no part uses; clip p is then decoded (source get_frames at frame
 * times start / fps, stride / fps) and transformed by the pipeline's chain
 * p (the last chain when it has fewer) with the stream (seed, epoch, item,
 * p). A chain draws its random parameters once per clip and applies them
 * to every frame (the pretext contract), so the augmentation is
 * temporally consistent: one crop, one colour draw per clip.
 *
 * A horizontal flip reverses the horizontal part of a motion. Drawn per
 * clip it would pair a left-moving clip with a right-moving copy of itself
 * and teach the encoder that left and right are the same, so direction
 * labels (moving Fashion-MNIST's) would lose their meaning. A clip_pair
 * pipeline should therefore have no horizontal flip (or one applied to
 * both clips alike, which a per-clip chain cannot do): the test config and
 * docs/plugins.md say so.
 *
 * Embedding: the two clips through the encoder (a clip encoder taking
 * (N, T, C, H, W)), both in one forward pass (ct_views_embed): set 0 =
 * clip 0, set 1 = clip 1, one row per video, item = the video, group =
 * the sample. No layers of its own. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

typedef enum gap_kind { GAP_DECREASING, GAP_UNIFORM, GAP_ZERO } gap_kind;

typedef struct clip_pair {
    int frames, stride;
    gap_kind gap;
} clip_pair;

static const ct_param_spec clip_pair_params[] = {
    CT_PARAM_INT("frames", "8", 1, 1024, "frames per clip"),
    CT_PARAM_INT("stride", "2", 1, 10000, "video frames between two frames of a clip"),
    CT_PARAM_CHOICE("gap", "\"decreasing\"", "decreasing|uniform|zero",
                    "distribution of the gap between the two clips' starts: CVRL's decreasing one, uniform "
                    "starts, or 0 (same start: the ablation)"),
    CT_PARAM_END,
};

static ct_status clip_pair_create(const ct_settings *s, const ct_structure_env *env, void **self, ct_error *err) {
    clip_pair *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "clip_pair: out of memory");
    c->frames = (int)ct_settings_int(s, "frames");
    c->stride = (int)ct_settings_int(s, "stride");
    const char *gap = ct_settings_string(s, "gap");
    c->gap = !strcmp(gap, "uniform") ? GAP_UNIFORM : !strcmp(gap, "zero") ? GAP_ZERO : GAP_DECREASING;
    if (env->n_chains < 1) {
        free(c);
        return ct_error_set(err, CT_ERR_CONFIG, "clip_pair: the pipeline has no transform chain");
    }
    *self = c;
    return CT_OK;
}

static void clip_pair_destroy(void *self) { free(self); }

static void clip_pair_info(void *self, ct_structure_info *out) {
    const clip_pair *c = self;
    memset(out, 0, sizeof *out);
    out->n_parts = 2;
    out->n_sets = 2;
    out->rows_per_sample = 1;
    out->row_kind = "clips";
    out->frames = c->frames; /* frames = 1: single frames, images to the encoder */
}

/* Frames of the item: the source's per-item count ("video.frames") when
 * it offers one, else its duration at the source's frame rate. */
static int64_t video_frames(const ct_sample_ctx *ctx, double *fps) {
    const ct_source_ops *src = ctx->source;
    ct_source_info info;
    memset(&info, 0, sizeof info);
    src->info(ctx->source_self, &info);
    double duration = src->duration ? src->duration(ctx->source_self, ctx->item) : 0.0;
    const int64_t *counts = src->extension ? src->extension(ctx->source_self, "video.frames") : NULL;
    int64_t n = counts ? counts[ctx->item] : (int64_t)llround(duration * info.fps);
    *fps = n > 0 && duration > 0 ? (double)n / duration : info.fps;
    return n;
}

/* The two start frames, M usable starts (M >= 1). */
static void draw_starts(const clip_pair *c, ct_rng *r, int64_t m, int64_t start[2]) {
    int64_t gap = 0;
    if (c->gap == GAP_UNIFORM) gap = (int64_t)ct_rng_below(r, (uint32_t)m);
    if (c->gap == GAP_DECREASING) {
        double u = ct_rng_uniform(r);
        gap = (int64_t)floor((double)m * (1.0 - sqrt(1.0 - u)));
        if (gap > m - 1) gap = m - 1;
    }
    start[0] = (int64_t)ct_rng_below(r, (uint32_t)(m - gap));
    start[1] = start[0] + gap;
    if (ct_rng_uniform(r) < 0.5) {
        int64_t t = start[0];
        start[0] = start[1];
        start[1] = t;
    }
}

static ct_status clip_pair_sample(void *self, const ct_sample_ctx *ctx, ct_image *parts, ct_error *err) {
    const clip_pair *c = self;
    if (!ctx->source || !ctx->source->get_frames)
        return ct_error_set(err, CT_ERR_CONFIG, "clip_pair: the source has no frames to read (not a video source)");
    double fps = 0;
    int64_t length = video_frames(ctx, &fps);
    int64_t span = (int64_t)(c->frames - 1) * c->stride + 1, m = length - span + 1;
    if (m < 1 || m > INT32_MAX || !(fps > 0))
        return ct_error_set(err, CT_ERR_INVALID,
                            "clip_pair: item %lld has %lld frames, shorter than one clip of %d frames %d apart (%lld)",
                            (long long)ctx->item, (long long)length, c->frames, c->stride, (long long)span);
    ct_rng r;
    ct_rng_init_keyed(&r, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, 2);
    int64_t start[2];
    draw_starts(c, &r, m, start);
    ct_image clip = CT_IMAGE_INIT;
    ct_status st = CT_OK;
    for (int p = 0; p < 2 && st == CT_OK; p++) {
        st = ctx->source->get_frames(ctx->source_self, ctx->item, (double)start[p] / fps, (double)c->stride / fps,
                                     c->frames, &clip, err);
        if (st != CT_OK) break;
        ct_rng rp;
        ct_rng_init_keyed(&rp, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, (uint64_t)p);
        st = ctx->apply(ctx, p < ctx->n_chains ? p : ctx->n_chains - 1, &clip, &parts[p], &rp, err);
    }
    ct_image_free(&clip);
    return st;
}

static ct_status clip_pair_embed(void *self, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                                 ct_embed_side side, uint32_t sets, ct_embeddings *out) {
    (void)self;
    (void)side;
    return ct_views_embed(g, b, enc, sets, out);
}

/* For tests (extension "clip_pair.starts"): the start frames sample()
 * would draw for M usable starts from a given rng. */
typedef void (*clip_pair_starts_fn)(void *self, ct_rng *r, int64_t m, int64_t start[2]);
static void starts_for_tests(void *self, ct_rng *r, int64_t m, int64_t start[2]) { draw_starts(self, r, m, start); }

static const void *clip_pair_extension(void *self, const char *id) {
    (void)self;
    static const clip_pair_starts_fn fn = starts_for_tests;
    return strcmp(id, "clip_pair.starts") == 0 ? (const void *)&fn : NULL;
}

static const ct_structure_ops clip_pair_ops = {
    .name = "clip_pair",
    .description = "CVRL: two clips of one video are positives (decreasing, uniform or zero start gap)",
    .params = clip_pair_params,
    .create = clip_pair_create,
    .destroy = clip_pair_destroy,
    .info = clip_pair_info,
    .sample = clip_pair_sample,
    .embed = clip_pair_embed,
    .extension = clip_pair_extension,
};

static ct_status clip_pair_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_structure(reg, &clip_pair_ops);
    if (st != CT_OK) ct_error_set(err, st, "clip_pair: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("clip_pair", "1.0.0", "MIT", "CVRL clip pairs (two clips of a video as positives)", CT_ROLE_STRUCTURE,
                 clip_pair_init)

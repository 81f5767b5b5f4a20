/* Clip-level evaluation features (see clip_features.h).
 *
 * Items are taken in batches; the clips of a batch are read and
 * transformed in parallel on the model's pool (the video source keeps one
 * decoder per thread), forwarded as one (B*clips, T, C, H, W) tensor, and
 * each video's rows averaged in clip order, so the result does not depend
 * on the thread count. */
#include "training/clip_features.h"

#include <stdlib.h>
#include <string.h>

#include "data/chain.h"

#define CLIP_BATCH 64 /* clips per forward */

typedef struct clip_job {
    const ct_dataset *data;
    const ct_video_clips *vc;
    const ct_chain *chain;
    uint64_t seed;
    int64_t first; /* item of row 0 */
    int clips;
    bool shuffle; /* the shuffled-frame control */
    size_t clip_floats;
    float *out;    /* rows * clip_floats */
    int32_t *labels;
    ct_image *scratch; /* 3 per worker */
    int t, c, h, w;    /* expected clip shape */
    ct_status *status; /* per row */
    ct_error *errs;    /* per worker */
} clip_job;

static void read_clips(void *ctx, int64_t begin, int64_t end, int worker) {
    clip_job *j = ctx;
    ct_image *src = &j->scratch[3 * worker], *out = src + 1, *tmp = src + 2;
    for (int64_t r = begin; r < end; r++) {
        int64_t item = j->first + r / j->clips;
        int k = (int)(r % j->clips);
        ct_error *err = &j->errs[worker];
        int32_t label = -1;
        ct_status st = j->vc->clip(j->data->self, item, k, j->clips, src, &label, err);
        ct_rng rng;
        ct_rng_init_keyed(&rng, j->seed, 0, (uint64_t)item, (uint64_t)k);
        if (st == CT_OK) st = ct_chain_apply(j->chain, src, out, tmp, &rng, err);
        if (st == CT_OK && (out->t != j->t || out->c != j->c || out->h != j->h || out->w != j->w))
            st = ct_error_set(err, CT_ERR_SHAPE, "clip %d of item %lld is %dx%dx%dx%d, the first was %dx%dx%dx%d", k,
                              (long long)item, out->t, out->c, out->h, out->w, j->t, j->c, j->h, j->w);
        if (st == CT_OK) {
            memcpy(j->out + (size_t)r * j->clip_floats, out->data, j->clip_floats * sizeof(float));
            if (j->shuffle)
                ct_clip_shuffle_frames(j->out + (size_t)r * j->clip_floats, j->t, j->clip_floats / (size_t)j->t,
                                       j->seed, item, k);
            if (k == 0) j->labels[r / j->clips] = label;
        }
        j->status[r] = st;
        if (st != CT_OK) return;
    }
}

/* The first clip's shape after the chain, for the batch buffers. */
static ct_status probe_shape(clip_job *j, ct_error *err) {
    ct_image *s = j->scratch;
    int32_t label;
    ct_rng rng;
    ct_rng_init_keyed(&rng, j->seed, 0, 0, 0);
    ct_status st = j->vc->clip(j->data->self, 0, 0, j->clips, &s[0], &label, err);
    if (st == CT_OK) st = ct_chain_apply(j->chain, &s[0], &s[1], &s[2], &rng, err);
    if (st != CT_OK) return st;
    j->t = s[1].t, j->c = s[1].c, j->h = s[1].h, j->w = s[1].w;
    j->clip_floats = ct_image_numel(&s[1]);
    return CT_OK;
}

/* Forward rows clips and average each video's `clips` rows into feats. */
static ct_status encode(ct_model *m, clip_job *j, int64_t rows, float *feats, int64_t dim, ct_error *err) {
    ct_graph *g = m->graph;
    int64_t s5[5] = {rows, j->t, j->c, j->h, j->w}, s4[4] = {rows, j->c, j->h, j->w};
    ct_tensor *x = j->t == 1 ? ct_tensor_wrap(g, j->out, 4, s4) : ct_tensor_wrap(g, j->out, 5, s5);
    ct_tensor *f = x ? m->encoder.ops->forward(m->encoder.self, g, x) : NULL;
    if (!f || f->ndim != 2 || f->shape[0] != rows || f->shape[1] != dim) {
        ct_status st = !f && ct_graph_status(g) ? ct_graph_status(g) : CT_ERR_SHAPE;
        ct_error_set(err, st, "encoder %s: %s", m->encoder.ops->name,
                     f ? "output is not one row of its dimension per clip" : ct_graph_error(g));
        ct_graph_reset(g);
        return st;
    }
    for (int64_t v = 0; v < rows / j->clips; v++) {
        float *o = feats + v * dim;
        memset(o, 0, (size_t)dim * sizeof *o);
        for (int k = 0; k < j->clips; k++)
            for (int64_t d = 0; d < dim; d++) o[d] += f->data[(v * j->clips + k) * dim + d];
        for (int64_t d = 0; d < dim; d++) o[d] /= (float)j->clips;
    }
    ct_graph_reset(g);
    return CT_OK;
}

void ct_clip_shuffle_frames(float *clip, int t, size_t frame_floats, uint64_t seed, int64_t item, int k) {
    ct_rng r;
    /* epoch 1: a stream apart from the evaluation chain's (epoch 0) */
    ct_rng_init_keyed(&r, seed, 1, (uint64_t)item, (uint64_t)k);
    for (int i = t - 1; i > 0; i--) { /* Fisher-Yates over whole frames */
        int o = (int)ct_rng_below(&r, (uint32_t)(i + 1));
        if (o == i) continue;
        float *a = clip + (size_t)i * frame_floats, *b = clip + (size_t)o * frame_floats;
        for (size_t e = 0; e < frame_floats; e++) {
            float x = a[e];
            a[e] = b[e];
            b[e] = x;
        }
    }
}

ct_status ct_extract_clip_features(ct_model *m, const ct_dataset *data, const ct_chain *chain, int clips, bool shuffle,
                                   float **feats, int32_t **labels, int64_t *n, int64_t *dim, ct_error *err) {
    const ct_video_clips *vc = data->ops->extension ? data->ops->extension(data->self, CT_VIDEO_CLIPS_EXT) : NULL;
    if (!vc || vc->size < sizeof *vc || !vc->clip)
        return ct_error_set(err, CT_ERR_CONFIG, "clips = %d: data.%s (source %s) gives no clips", clips,
                            data->name, data->ops->name);
    int workers = ct_threadpool_size(m->pool);
    int64_t count = data->info.count, d = m->encoder.dim;
    int64_t per = CLIP_BATCH / clips > 0 ? CLIP_BATCH / clips : 1; /* videos per forward */
    clip_job j = {data, vc, chain, m->ex->seed, 0, clips, shuffle, 0, NULL, NULL, NULL, 0, 0, 0, 0,
                  NULL, NULL};
    j.scratch = calloc((size_t)workers * 3, sizeof *j.scratch);
    j.errs = calloc((size_t)workers, sizeof *j.errs);
    j.status = calloc((size_t)(per * clips), sizeof *j.status);
    *feats = malloc((size_t)(count ? count : 1) * (size_t)d * sizeof **feats);
    *labels = malloc((size_t)(count ? count : 1) * sizeof **labels);
    ct_status st = j.scratch && j.errs && j.status && *feats && *labels ? CT_OK
                   : ct_error_set(err, CT_ERR_NOMEM, "out of memory for %lld video features", (long long)count);
    if (st == CT_OK && count > 0) st = probe_shape(&j, err);
    if (st == CT_OK && !(j.out = malloc((size_t)(per * clips) * j.clip_floats * sizeof(float))))
        st = ct_error_set(err, CT_ERR_NOMEM, "out of memory for %lld clips", (long long)(per * clips));
    for (int64_t first = 0; st == CT_OK && first < count; first += per) {
        int64_t videos = count - first < per ? count - first : per, rows = videos * clips;
        j.first = first;
        j.labels = *labels + first;
        for (int64_t r = 0; r < rows; r++) j.status[r] = CT_ERR_INVALID;
        ct_parallel_for(m->pool, rows, 1, read_clips, &j);
        for (int64_t r = 0; st == CT_OK && r < rows; r++)
            if (j.status[r] != CT_OK) {
                /* the worker that failed holds the message: find it */
                st = j.status[r];
                for (int w = 0; w < workers; w++)
                    if (j.errs[w].code != CT_OK) {
                        *err = j.errs[w];
                        break;
                    }
                ct_error_prefix(err, "data.%s: ", data->name);
            }
        if (st == CT_OK) st = encode(m, &j, rows, *feats + first * d, d, err);
    }
    for (int i = 0; j.scratch && i < workers * 3; i++) ct_image_free(&j.scratch[i]);
    free(j.scratch);
    free(j.errs);
    free(j.status);
    free(j.out);
    if (st != CT_OK) {
        free(*feats);
        free(*labels);
        *feats = NULL;
        *labels = NULL;
        return st;
    }
    *n = count;
    *dim = d;
    return CT_OK;
}

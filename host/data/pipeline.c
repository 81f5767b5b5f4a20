/* The batch producer (see pipeline.h for the contract).
 *
 * A ring of `depth` slots; batch b of the epoch lives in slot b % depth.
 * Workers claim chunks of samples from the oldest batch still being filled,
 * or open the next batch when its slot is free; the consumer takes batches
 * in order and frees slots on release. One mutex guards the bookkeeping;
 * sample computation runs unlocked into disjoint parts of the slot. */
#include "data/pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/chain.h"
#include "data/sample.h"

typedef enum slot_state { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY, SLOT_HELD } slot_state;

typedef struct slot {
    slot_state state;
    int64_t batch;
    int n;
    int claimed, done;     /* samples handed out / finished */
    ct_error err;          /* first failure among its samples */
    ct_data_batch b;
    int64_t *items;
    int32_t *labels;
} slot;

struct ct_pipeline {
    ct_pipeline_spec spec;
    ct_pipeline_opts opts;
    char name[CT_NAME_MAX + 16];   /* for messages: data "train" */

    int n_views;                      /* parts per sample (the structure's) */
    ct_view_buf shape[CT_MAX_VIEWS]; /* data unused */

    int64_t *base;        /* subset (copied) or NULL: 0..count-1 */
    int64_t epoch_n;      /* samples per epoch */
    int64_t steps;
    int64_t *order;       /* this epoch's order (epoch_n) */
    int32_t *run_keys;    /* label_runs > 1: every dataset item's label; else NULL */
    int32_t n_keys;       /* labels 0..n_keys-1 */
    int64_t *run_scratch; /* group_runs' buffers: 2 * epoch_n + n_keys + 1 */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* workers wait for work; start_epoch for idleness */
    pthread_cond_t ready_cv;  /* next() waits for a batch */
    slot *slots;
    int depth;
    int chunk;

    bool active;          /* an epoch is running */
    int64_t epoch;
    int64_t next_fill, next_out;
    int inflight;         /* chunks being computed right now */
    bool stop;
    double stall_total;

    int n_threads;
    pthread_t *threads;
};

ct_pipeline_opts ct_pipeline_opts_default(int64_t batch_size, uint64_t seed) {
    ct_pipeline_opts o;
    memset(&o, 0, sizeof o);
    o.batch_size = batch_size;
    o.seed = seed;
    o.shuffle = true;
    o.drop_last = true;
    o.workers = 1;
    o.depth = 3;
    return o;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- one sample ----------------------------------------------------------- */

/* Scratch images of one worker, reused for every sample. */
typedef struct scratch {
    ct_image src, tmp;
    ct_image parts[CT_MAX_VIEWS];
} scratch;

static void scratch_free(scratch *s) {
    ct_image_free(&s->src);
    ct_image_free(&s->tmp);
    for (int v = 0; v < CT_MAX_VIEWS; v++) ct_image_free(&s->parts[v]);
}

static size_t view_numel(const ct_view_buf *v) { return (size_t)v->t * v->c * v->h * v->w; }

/* Every part of `item` (already read into s->src) into s->parts. */
static ct_status make_parts(const ct_pipeline *p, scratch *s, int64_t epoch, int64_t item, ct_error *err) {
    return ct_sample_parts(&p->spec, NULL, p->opts.seed, epoch, item, &s->src, s->parts, &s->tmp, err);
}

/* Sample k of a slot: read the item, make every part, copy into place. */
static ct_status fill_sample(const ct_pipeline *p, slot *sl, int k, int64_t epoch, scratch *s,
                             ct_error *err) {
    const ct_dataset *d = p->spec.data;
    int64_t item = sl->items[k];
    int32_t label = -1;
    ct_status st = d->ops->get(d->self, item, &s->src, &label, err);
    if (st != CT_OK) {
        ct_error_prefix(err, "pipeline (%s): item %lld: ", p->name, (long long)item);
        return st;
    }
    sl->labels[k] = label;
    if ((st = make_parts(p, s, epoch, item, err)) != CT_OK) {
        ct_error_prefix(err, "pipeline (%s): item %lld: ", p->name, (long long)item);
        return st;
    }
    for (int v = 0; v < p->n_views; v++) {
        const ct_view_buf *want = &p->shape[v];
        const ct_image *o = &s->parts[v];
        if (o->t != want->t || o->c != want->c || o->h != want->h || o->w != want->w)
            return ct_error_set(err, CT_ERR_SHAPE,
                                "pipeline (%s): item %lld, view %d has shape %dx%dx%dx%d but the batch's is "
                                "%dx%dx%dx%d (images of varying size need a fixed-size transform such as "
                                "random_resized_crop, resize or center_crop)",
                                p->name, (long long)item, v, o->t, o->c, o->h, o->w, want->t, want->c,
                                want->h, want->w);
        size_t n = view_numel(want);
        memcpy(sl->b.views[v].data + (size_t)k * n, o->data, n * sizeof(float));
    }
    return CT_OK;
}

/* ---- workers ---------------------------------------------------------------- */

/* Shards of the epoch's order (1 when not sharded). */
static int64_t shard_count(const ct_pipeline *p) { return p->opts.shards > 1 ? p->opts.shards : 1; }

/* Open the next batch in its slot if there is one to open (lock held). */
static slot *open_next_batch(ct_pipeline *p) {
    if (!p->active || p->next_fill >= p->steps) return NULL;
    slot *sl = &p->slots[p->next_fill % p->depth];
    if (sl->state != SLOT_FREE) return NULL;
    int64_t b = p->next_fill++;
    int64_t start = (b * shard_count(p) + p->opts.shard) * p->opts.batch_size;
    int64_t n = p->epoch_n - start < p->opts.batch_size ? p->epoch_n - start : p->opts.batch_size;
    sl->state = SLOT_FILLING;
    sl->batch = b;
    sl->n = (int)n;
    sl->claimed = sl->done = 0;
    ct_error_clear(&sl->err);
    memcpy(sl->items, p->order + start, (size_t)n * sizeof *sl->items);
    sl->b.epoch = p->epoch;
    sl->b.index = b;
    sl->b.n = (int)n;
    sl->b.stall_s = 0.0;
    return sl;
}

/* The oldest batch with unclaimed samples, opening one if needed. */
static slot *find_work(ct_pipeline *p) {
    slot *best = NULL;
    for (int i = 0; i < p->depth; i++) {
        slot *sl = &p->slots[i];
        if (sl->state == SLOT_FILLING && sl->claimed < sl->n && (!best || sl->batch < best->batch))
            best = sl;
    }
    return best ? best : open_next_batch(p);
}

static void *worker_main(void *arg) {
    ct_pipeline *p = arg;
    scratch s;
    memset(&s, 0, sizeof s);
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        slot *sl = find_work(p);
        if (!sl) {
            pthread_cond_wait(&p->work_cv, &p->mu);
            continue;
        }
        int begin = sl->claimed, end = begin + p->chunk < sl->n ? begin + p->chunk : sl->n;
        sl->claimed = end;
        int64_t epoch = p->epoch;
        bool failed = sl->err.code != CT_OK;
        p->inflight++;
        pthread_mutex_unlock(&p->mu);

        ct_error err = CT_ERROR_INIT;
        ct_status st = CT_OK;
        for (int k = begin; k < end && st == CT_OK && !failed; k++) st = fill_sample(p, sl, k, epoch, &s, &err);

        pthread_mutex_lock(&p->mu);
        p->inflight--;
        if (st != CT_OK && sl->err.code == CT_OK) sl->err = err;
        sl->done += end - begin;
        if (sl->done == sl->n) {
            sl->state = SLOT_READY;
            pthread_cond_broadcast(&p->ready_cv);
        }
        if (p->inflight == 0) pthread_cond_broadcast(&p->work_cv); /* start_epoch may wait for idle */
    }
    pthread_mutex_unlock(&p->mu);
    scratch_free(&s);
    return NULL;
}

/* ---- set-up ----------------------------------------------------------------- */

/* Make item `probe`'s parts to learn the view shapes. */
static ct_status probe_shapes(ct_pipeline *p, int64_t probe, ct_error *err) {
    scratch s;
    memset(&s, 0, sizeof s);
    const ct_dataset *d = p->spec.data;
    int32_t label;
    ct_status st = d->ops->get(d->self, probe, &s.src, &label, err);
    if (st != CT_OK) ct_error_prefix(err, "pipeline (%s): item %lld: ", p->name, (long long)probe);
    if (st == CT_OK && (st = make_parts(p, &s, 0, probe, err)) != CT_OK)
        ct_error_prefix(err, "pipeline (%s): ", p->name);
    for (int v = 0; v < p->n_views && st == CT_OK; v++) {
        const ct_image *o = &s.parts[v];
        p->shape[v] = (ct_view_buf){NULL, o->t, o->c, o->h, o->w};
        if (view_numel(&p->shape[v]) == 0)
            st = ct_error_set(err, CT_ERR_SHAPE, "pipeline (%s): view %d is empty", p->name, v);
    }
    scratch_free(&s);
    return st;
}

static ct_status alloc_slots(ct_pipeline *p, ct_error *err) {
    p->slots = calloc((size_t)p->depth, sizeof *p->slots);
    if (!p->slots) return ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", p->name);
    size_t n = (size_t)p->opts.batch_size;
    for (int i = 0; i < p->depth; i++) {
        slot *sl = &p->slots[i];
        sl->items = malloc(n * sizeof *sl->items);
        sl->labels = malloc(n * sizeof *sl->labels);
        if (!sl->items || !sl->labels) return ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", p->name);
        sl->b.items = sl->items;
        sl->b.labels = sl->labels;
        sl->b.n_views = p->n_views;
        for (int v = 0; v < p->n_views; v++) {
            sl->b.views[v] = p->shape[v];
            sl->b.views[v].data = malloc(n * view_numel(&p->shape[v]) * sizeof(float));
            if (!sl->b.views[v].data)
                return ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory for %d batches of %lld samples",
                                    p->name, p->depth, (long long)n);
        }
    }
    return CT_OK;
}

static ct_status check_spec(const ct_pipeline_spec *spec, const ct_pipeline_opts *opts, const char *name,
                            int *n_views, ct_error *err) {
    if (!spec->data || !spec->data->ops || !spec->data->self)
        return ct_error_set(err, CT_ERR_INVALID, "pipeline (%s): the dataset is not open", name);
    if (opts->batch_size <= 0 || opts->batch_size > INT32_MAX)
        return ct_error_set(err, CT_ERR_CONFIG, "pipeline (%s): batch size %lld must be positive", name,
                            (long long)opts->batch_size);
    int v = ct_sample_n_parts(spec);
    if (spec->n_groups < 1 || spec->n_groups > CT_MAX_CROP_GROUPS || v < 1 || v > CT_MAX_VIEWS)
        return ct_error_set(err, CT_ERR_CONFIG, "pipeline (%s): %d views in %d groups; 1 to %d views allowed",
                            name, v, spec->n_groups, CT_MAX_VIEWS);
    *n_views = v;
    return CT_OK;
}

/* Order base (subset or all items) and step count. */
static ct_status set_epoch_items(ct_pipeline *p, ct_error *err) {
    int64_t count = p->spec.data->info.count;
    if (count <= 0) {
        ct_source_info info;
        p->spec.data->ops->info(p->spec.data->self, &info);
        count = info.count;
    }
    p->epoch_n = p->opts.subset_n > 0 ? p->opts.subset_n : count;
    if (p->epoch_n <= 0) return ct_error_set(err, CT_ERR_CONFIG, "pipeline (%s): the dataset is empty", p->name);
    if (p->opts.subset_n > 0) {
        p->base = malloc((size_t)p->epoch_n * sizeof *p->base);
        if (!p->base) return ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", p->name);
        for (int64_t i = 0; i < p->epoch_n; i++) {
            if (p->opts.subset[i] < 0 || p->opts.subset[i] >= count)
                return ct_error_set(err, CT_ERR_INVALID, "pipeline (%s): subset item %lld out of range (0..%lld)",
                                    p->name, (long long)p->opts.subset[i], (long long)count - 1);
            p->base[i] = p->opts.subset[i];
        }
    }
    p->order = malloc((size_t)p->epoch_n * sizeof *p->order);
    if (!p->order) return ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", p->name);
    int64_t bs = p->opts.batch_size;
    if (shard_count(p) > 1) {
        if (!p->opts.drop_last || p->opts.shard < 0 || p->opts.shard >= p->opts.shards)
            return ct_error_set(err, CT_ERR_INVALID, "pipeline (%s): shard %d of %d needs drop_last", p->name,
                                p->opts.shard, p->opts.shards);
        bs *= shard_count(p); /* steps count global batches */
    }
    p->steps = p->opts.drop_last ? p->epoch_n / bs : (p->epoch_n + bs - 1) / bs;
    if (p->steps == 0)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "pipeline (%s): %lld samples make no full batch of %lld (lower the batch size)",
                            p->name, (long long)p->epoch_n, (long long)bs);
    return CT_OK;
}

/* The labels label_runs groups by: every item's, read once (sources have
 * no label-only accessor, so each item is read and its image dropped). */
static ct_status load_run_keys(ct_pipeline *p, ct_error *err) {
    const ct_dataset *d = p->spec.data;
    ct_source_info info;
    memset(&info, 0, sizeof info);
    d->ops->info(d->self, &info);
    if (!info.has_labels)
        return ct_error_set(err, CT_ERR_CONFIG, "pipeline (%s): label_runs = %d needs labelled data", p->name,
                            p->spec.label_runs);
    p->run_keys = malloc((size_t)(info.count > 0 ? info.count : 1) * sizeof *p->run_keys);
    if (!p->run_keys) return ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", p->name);
    ct_image img = CT_IMAGE_INIT;
    ct_status st = CT_OK;
    for (int64_t i = 0; i < info.count && st == CT_OK; i++) {
        st = d->ops->get(d->self, i, &img, &p->run_keys[i], err);
        if (st != CT_OK) ct_error_prefix(err, "pipeline (%s): item %lld: ", p->name, (long long)i);
        else if (p->run_keys[i] < 0)
            st = ct_error_set(err, CT_ERR_CONFIG, "pipeline (%s): label_runs: item %lld has no label", p->name,
                              (long long)i);
        else if (p->run_keys[i] >= p->n_keys) p->n_keys = p->run_keys[i] + 1;
    }
    ct_image_free(&img);
    if (st != CT_OK) return st;
    p->run_scratch = malloc((size_t)(2 * p->epoch_n + p->n_keys + 1) * sizeof *p->run_scratch);
    return p->run_scratch ? CT_OK : ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", p->name);
}

/* label_runs: regroup the shuffled order. Each label's items keep their
 * shuffled order and are cut into runs of up to G; the runs are shuffled
 * (their own stream, part 1 of the epoch's) and laid end to end. So every
 * item still comes once per epoch, and a batch of B holds about B / G
 * labels with up to G samples each: for a contrastive loss, negatives
 * that the label's shared features (an item's appearance) cannot tell
 * apart from the anchor. */
static void group_runs(ct_pipeline *p, int64_t epoch) {
    const int64_t n = p->epoch_n, g = p->spec.label_runs;
    int64_t *sorted = p->run_scratch, *runs = sorted + n, *start = runs + n;
    memset(start, 0, (size_t)(p->n_keys + 1) * sizeof *start);
    for (int64_t i = 0; i < n; i++) start[p->run_keys[p->order[i]] + 1]++;
    for (int32_t k = 0; k < p->n_keys; k++) start[k + 1] += start[k];
    int64_t n_runs = 0;
    for (int32_t k = 0; k < p->n_keys; k++) /* run starts, positions in sorted */
        for (int64_t at = start[k]; at < start[k + 1]; at += g) runs[n_runs++] = at;
    for (int64_t i = 0; i < n; i++) sorted[start[p->run_keys[p->order[i]]]++] = p->order[i];
    /* start[k] is now the end of label k's items: a run ends there or g on */
    ct_rng r;
    ct_rng_init_keyed(&r, p->opts.seed, (uint64_t)epoch, UINT64_MAX, 1);
    ct_rng_shuffle(&r, runs, n_runs);
    int64_t at = 0;
    for (int64_t j = 0; j < n_runs; j++) {
        int32_t k = p->run_keys[sorted[runs[j]]];
        int64_t end = runs[j] + g < start[k] ? runs[j] + g : start[k];
        for (int64_t i = runs[j]; i < end; i++) p->order[at++] = sorted[i];
    }
}

ct_status ct_pipeline_new(const ct_pipeline_spec *spec, const ct_pipeline_opts *opts, ct_pipeline **out,
                          ct_error *err) {
    *out = NULL;
    char name[CT_NAME_MAX + 16];
    snprintf(name, sizeof name, "data \"%s\"", spec->data ? spec->data->name : "?");
    int n_views = 0;
    ct_status st = check_spec(spec, opts, name, &n_views, err);
    if (st != CT_OK) return st;
    ct_pipeline *p = calloc(1, sizeof *p);
    if (!p) return ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", name);
    p->spec = *spec;
    p->opts = *opts;
    memcpy(p->name, name, sizeof name);
    p->n_views = n_views;
    p->depth = opts->depth > 0 ? opts->depth : 3;
    p->n_threads = opts->workers > 0 ? opts->workers : 1;
    int64_t per = (opts->batch_size + 2 * p->n_threads - 1) / (2 * p->n_threads);
    p->chunk = (int)(per < 1 ? 1 : (per > 32 ? 32 : per));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->ready_cv, NULL);
    st = set_epoch_items(p, err);
    if (st == CT_OK && spec->label_runs > 1 && opts->shuffle) st = load_run_keys(p, err);
    if (st == CT_OK) st = probe_shapes(p, p->base ? p->base[0] : 0, err);
    if (st == CT_OK) st = alloc_slots(p, err);
    if (st == CT_OK) {
        p->threads = calloc((size_t)p->n_threads, sizeof *p->threads);
        if (!p->threads) st = ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): out of memory", name);
    }
    int started = 0;
    for (; st == CT_OK && started < p->n_threads; started++)
        if (pthread_create(&p->threads[started], NULL, worker_main, p) != 0)
            st = ct_error_set(err, CT_ERR_NOMEM, "pipeline (%s): cannot start worker thread %d", name, started);
    p->n_threads = st == CT_OK ? started : (started > 0 ? started - 1 : 0);
    if (st != CT_OK) {
        ct_pipeline_free(p);
        return st;
    }
    *out = p;
    return CT_OK;
}

ct_status ct_pipeline_new_eval(ct_dataset *data, const ct_chain *chain, int64_t batch_size, uint64_t seed,
                               int workers, const int64_t *subset, int64_t subset_n, ct_pipeline **out,
                               ct_error *err) {
    ct_pipeline_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.data = data;
    spec.weight = 1.0f;
    spec.n_groups = 1;
    spec.groups[0].count = 1;
    if (chain) spec.groups[0].chain = *chain;
    ct_pipeline_opts o = ct_pipeline_opts_default(batch_size, seed);
    o.shuffle = false;
    o.drop_last = false;
    o.workers = workers;
    o.subset = subset;
    o.subset_n = subset_n;
    return ct_pipeline_new(&spec, &o, out, err);
}

/* ---- the consumer side ------------------------------------------------------ */

/* Cancel the running epoch and wait until no worker is computing (lock held). */
static void cancel_epoch(ct_pipeline *p) {
    p->active = false;
    for (int i = 0; i < p->depth; i++) /* unclaimed samples are not started */
        if (p->slots[i].state == SLOT_FILLING) p->slots[i].claimed = p->slots[i].n;
    while (p->inflight > 0) pthread_cond_wait(&p->work_cv, &p->mu);
    for (int i = 0; i < p->depth; i++) p->slots[i].state = SLOT_FREE;
}

ct_status ct_pipeline_start_epoch(ct_pipeline *p, int64_t epoch, ct_error *err) {
    (void)err;
    pthread_mutex_lock(&p->mu);
    cancel_epoch(p);
    for (int64_t i = 0; i < p->epoch_n; i++) p->order[i] = p->base ? p->base[i] : i;
    if (p->opts.shuffle) {
        /* Item UINT64_MAX is no dataset item: this stream is the epoch's own. */
        ct_rng r;
        ct_rng_init_keyed(&r, p->opts.seed, (uint64_t)epoch, UINT64_MAX, 0);
        ct_rng_shuffle(&r, p->order, p->epoch_n);
    }
    if (p->run_keys) group_runs(p, epoch);
    p->epoch = epoch;
    p->next_fill = p->next_out = 0;
    p->active = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return CT_OK;
}

ct_status ct_pipeline_next(ct_pipeline *p, const ct_data_batch **out, ct_error *err) {
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    if (!p->active || p->next_out >= p->steps) {
        pthread_mutex_unlock(&p->mu);
        if (!p->active) return ct_error_set(err, CT_ERR_INVALID, "pipeline (%s): no epoch started", p->name);
        return CT_OK;
    }
    int64_t b = p->next_out;
    slot *sl = &p->slots[b % p->depth];
    if (sl->state == SLOT_HELD && sl->batch != b) {
        pthread_mutex_unlock(&p->mu);
        return ct_error_set(err, CT_ERR_INVALID, "pipeline (%s): %d batches held; release one before next()",
                            p->name, p->depth);
    }
    double t0 = now_s();
    while (!(sl->state == SLOT_READY && sl->batch == b)) pthread_cond_wait(&p->ready_cv, &p->mu);
    double waited = now_s() - t0;
    p->stall_total += waited;
    p->next_out++;
    if (sl->err.code != CT_OK) {
        *err = sl->err;
        ct_status st = sl->err.code;
        cancel_epoch(p);
        pthread_mutex_unlock(&p->mu);
        return st;
    }
    sl->state = SLOT_HELD;
    sl->b.stall_s = waited;
    *out = &sl->b;
    pthread_mutex_unlock(&p->mu);
    return CT_OK;
}

void ct_pipeline_release(ct_pipeline *p, const ct_data_batch *b) {
    if (!b) return;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->depth; i++) {
        slot *sl = &p->slots[i];
        if (&sl->b == b && sl->state == SLOT_HELD) {
            sl->state = SLOT_FREE;
            pthread_cond_broadcast(&p->work_cv);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

int64_t ct_pipeline_steps_per_epoch(const ct_pipeline *p) { return p->steps; }
int64_t ct_pipeline_epoch_size(const ct_pipeline *p) { return p->epoch_n; }

double ct_pipeline_stall_total(const ct_pipeline *p) {
    pthread_mutex_lock((pthread_mutex_t *)&p->mu);
    double s = p->stall_total;
    pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
    return s;
}

void ct_pipeline_view_shape(const ct_pipeline *p, int v, int *t, int *c, int *h, int *w) {
    const ct_view_buf *s = &p->shape[v];
    *t = s->t;
    *c = s->c;
    *h = s->h;
    *w = s->w;
}

ct_status ct_pipeline_to_batch(const ct_data_batch *b, ct_graph *g, int pipeline_index, float weight,
                               ct_batch *out, ct_error *err) {
    memset(out, 0, sizeof *out);
    out->n = b->n;
    out->n_views = b->n_views;
    out->items = b->items;
    out->labels = b->labels;
    out->pipeline = pipeline_index;
    out->weight = weight;
    for (int v = 0; v < b->n_views; v++) {
        const ct_view_buf *vb = &b->views[v];
        int64_t s5[5] = {b->n, vb->t, vb->c, vb->h, vb->w};
        int64_t s4[4] = {b->n, vb->c, vb->h, vb->w};
        out->views[v] = vb->t == 1 ? ct_tensor_wrap(g, vb->data, 4, s4) : ct_tensor_wrap(g, vb->data, 5, s5);
        if (!out->views[v]) return ct_error_set(err, CT_ERR_NOMEM, "pipeline: cannot wrap view %d", v);
    }
    return CT_OK;
}

void ct_pipeline_free(ct_pipeline *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (p->slots) cancel_epoch(p);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    for (int i = 0; p->slots && i < p->depth; i++) {
        free(p->slots[i].items);
        free(p->slots[i].labels);
        for (int v = 0; v < p->n_views; v++) free(p->slots[i].b.views[v].data);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->ready_cv);
    free(p->slots);
    free(p->threads);
    free(p->base);
    free(p->order);
    free(p->run_keys);
    free(p->run_scratch);
    free(p);
}

/* The batch producer: determinism across thread counts, epoch coverage,
 * evaluation order, errors and early shutdown. A synthetic in-test source
 * feeds the real color/geometric transforms. */
#include <math.h>
#include <unistd.h>

#include "ct_data_test.h"
#include "ct_test.h"
#include "data/pipeline.h"

#define N_ITEMS 103
#define SIDE 20

/* ---- a synthetic source: item i is a smooth pattern depending on i ---------- */

typedef struct synth {
    int64_t fail_item; /* get() fails for this item (-1: never) */
    bool vary;         /* odd items are smaller */
    bool unlabelled;   /* info says no labels */
} synth;

static ct_status synth_get(void *self, int64_t index, ct_image *dst, int32_t *label, ct_error *err) {
    const synth *s = self;
    if (index == s->fail_item) return ct_error_set(err, CT_ERR_FORMAT, "synth: item %lld is corrupted", (long long)index);
    int side = s->vary && index % 2 ? SIDE - 3 : SIDE;
    if (ct_image_reshape(dst, 1, 3, side, side) != CT_OK) return ct_error_set(err, CT_ERR_NOMEM, "synth: oom");
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
                dst->data[(c * side + y) * side + x] =
                    0.5f + 0.5f * sinf(0.3f * x + 0.2f * y * (c + 1) + 0.7f * (float)index);
    if (label) *label = (int32_t)(index % 10);
    return CT_OK;
}

static void synth_info(void *self, ct_source_info *info) {
    const synth *s = self;
    memset(info, 0, sizeof *info);
    info->count = N_ITEMS;
    info->channels = 3;
    info->height = info->width = SIDE;
    info->frames = 1;
    info->num_classes = 10;
    info->has_labels = !(s && s->unlabelled);
}

static const ct_source_ops synth_ops = {sizeof(ct_source_ops), "synth", "test source", NULL, NULL, NULL,
                                        synth_info, synth_get, NULL, NULL, NULL};

static ct_registry *reg;
static synth src_state;
static ct_dataset data;
static ct_transform tr[4];
static ct_pipeline_spec spec;

static ct_transform make(const char *name, const char *text) {
    ct_transform t;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(dt_transform(reg, name, text, &t, &err) == CT_OK, "%s: %s", name, err.msg);
    return t;
}

static void setup(void) {
    reg = ct_registry_new();
    dt_load_plugin(reg, "color");
    dt_load_plugin(reg, "geometric");
    src_state.fail_item = -1;
    src_state.vary = false;
    src_state.unlabelled = false;
    memset(&data, 0, sizeof data);
    snprintf(data.name, sizeof data.name, "synth");
    data.ops = &synth_ops;
    data.self = &src_state;
    synth_info(NULL, &data.info);
    tr[0] = make("random_resized_crop", "size = [16]; scale = [0.3, 1.0];");
    tr[1] = make("hflip", "p = 0.5;");
    tr[2] = make("color_jitter", "brightness = 0.4; contrast = 0.4; saturation = 0.4; hue = 0.1; p = 0.8;");
    tr[3] = make("normalize", "mean = [0.5]; std = [0.25];");
    memset(&spec, 0, sizeof spec);
    spec.data = &data;
    spec.weight = 1.0f;
    spec.n_groups = 1;
    spec.groups[0].count = 2;
    spec.groups[0].chain.n = 4;
    for (int i = 0; i < 4; i++) spec.groups[0].chain.t[i] = tr[i];
}

static void teardown(void) {
    for (int i = 0; i < 4; i++) dt_transform_free(&tr[i]);
    ct_registry_free(reg);
}

static ct_pipeline *new_pipeline(int64_t bs, int workers, int depth, bool drop_last, uint64_t seed) {
    ct_pipeline_opts o = ct_pipeline_opts_default(bs, seed);
    o.workers = workers;
    o.depth = depth;
    o.drop_last = drop_last;
    ct_pipeline *p = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_pipeline_new(&spec, &o, &p, &err) == CT_OK, "%s", err.msg);
    return p;
}

/* Every view byte, item and label of an epoch, concatenated. */
typedef struct epoch_dump {
    float *views;
    size_t n_floats;
    int64_t items[N_ITEMS];
    int32_t labels[N_ITEMS];
    int n_items, n_batches;
} epoch_dump;

static epoch_dump run_epoch(ct_pipeline *p, int64_t epoch) {
    epoch_dump d;
    memset(&d, 0, sizeof d);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_pipeline_start_epoch(p, epoch, &err), CT_OK);
    const ct_data_batch *b;
    while (ct_pipeline_next(p, &b, &err) == CT_OK && b) {
        ck_assert_int_eq(b->epoch, epoch);
        ck_assert_int_eq(b->index, d.n_batches);
        ck_assert_int_eq(b->n_views, 2);
        for (int v = 0; v < b->n_views; v++) {
            size_t n = (size_t)b->n * b->views[v].c * b->views[v].h * b->views[v].w;
            d.views = realloc(d.views, (d.n_floats + n) * sizeof(float));
            memcpy(d.views + d.n_floats, b->views[v].data, n * sizeof(float));
            d.n_floats += n;
        }
        for (int i = 0; i < b->n; i++) {
            d.items[d.n_items] = b->items[i];
            d.labels[d.n_items++] = b->labels[i];
        }
        d.n_batches++;
        ct_pipeline_release(p, b);
    }
    ck_assert_msg(err.code == CT_OK, "%s", err.msg);
    return d;
}

START_TEST(same_seed_same_bytes_whatever_threads) {
    ct_pipeline *a = new_pipeline(16, 1, 1, true, 42);
    ct_pipeline *b = new_pipeline(16, 2, 3, true, 42);
    ct_pipeline *c = new_pipeline(16, 2, 2, true, 43);
    for (int64_t e = 0; e < 2; e++) {
        epoch_dump da = run_epoch(a, e), db = run_epoch(b, e), dc = run_epoch(c, e);
        ck_assert_int_eq(da.n_batches, 6);
        ck_assert_uint_eq(da.n_floats, db.n_floats);
        ck_assert_int_eq(memcmp(da.items, db.items, sizeof da.items), 0);
        ck_assert_int_eq(memcmp(da.views, db.views, da.n_floats * sizeof(float)), 0);
        ck_assert_int_ne(memcmp(da.items, dc.items, sizeof da.items), 0); /* another seed */
        free(da.views);
        free(db.views);
        free(dc.views);
    }
    ct_pipeline_free(a);
    ct_pipeline_free(b);
    ct_pipeline_free(c);
}
END_TEST

/* Shard k of S with batch n: its batches b are positions [(b*S+k)*n, +n)
 * of the order, with the same view bytes as one pipeline of batch S*n. */
static ct_pipeline *new_shard(int64_t bs, int shard, int shards, uint64_t seed) {
    ct_pipeline_opts o = ct_pipeline_opts_default(bs, seed);
    o.workers = 2;
    o.shard = shard;
    o.shards = shards;
    ct_pipeline *p = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_pipeline_new(&spec, &o, &p, &err) == CT_OK, "%s", err.msg);
    return p;
}

START_TEST(shards_make_the_global_batch) {
    ct_pipeline *whole = new_pipeline(24, 1, 3, true, 9);
    ct_pipeline *s0 = new_shard(8, 0, 3, 9), *s1 = new_shard(8, 1, 3, 9), *s2 = new_shard(8, 2, 3, 9);
    ct_pipeline *shard[3] = {s0, s1, s2};
    ck_assert_int_eq(ct_pipeline_steps_per_epoch(whole), 4); /* 103 / 24 */
    for (int k = 0; k < 3; k++) ck_assert_int_eq(ct_pipeline_steps_per_epoch(shard[k]), 4);
    epoch_dump w = run_epoch(whole, 1), d[3];
    for (int k = 0; k < 3; k++) d[k] = run_epoch(shard[k], 1);
    size_t per = 3 * 16 * 16; /* floats per view of a sample */
    for (int b = 0; b < 4; b++)
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 8; i++) {
                int gi = b * 24 + k * 8 + i, li = b * 8 + i;
                ck_assert_int_eq(d[k].items[li], w.items[gi]);
                for (int v = 0; v < 2; v++) {
                    const float *gv = w.views + ((size_t)b * 24 * 2 + (size_t)v * 24 + (size_t)(k * 8 + i)) * per;
                    const float *lv = d[k].views + ((size_t)b * 8 * 2 + (size_t)v * 8 + (size_t)i) * per;
                    ck_assert_int_eq(memcmp(gv, lv, per * sizeof(float)), 0);
                }
            }
    free(w.views);
    for (int k = 0; k < 3; k++) {
        free(d[k].views);
        ct_pipeline_free(shard[k]);
    }
    ct_pipeline_free(whole);
    /* Sharding drops the last incomplete global batch: it needs drop_last. */
    ct_pipeline_opts o = ct_pipeline_opts_default(8, 9);
    o.shards = 2;
    o.drop_last = false;
    ct_pipeline *p = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_pipeline_new(&spec, &o, &p, &err), CT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "needs drop_last"));
}
END_TEST

START_TEST(epochs_differ) {
    ct_pipeline *p = new_pipeline(16, 2, 3, true, 1);
    epoch_dump d0 = run_epoch(p, 0), d1 = run_epoch(p, 1), d0b = run_epoch(p, 0);
    ck_assert_int_ne(memcmp(d0.items, d1.items, sizeof d0.items), 0);
    ck_assert_int_ne(memcmp(d0.views, d1.views, d0.n_floats * sizeof(float)), 0);
    /* Re-running epoch 0 reproduces it. */
    ck_assert_int_eq(memcmp(d0.views, d0b.views, d0.n_floats * sizeof(float)), 0);
    free(d0.views);
    free(d1.views);
    free(d0b.views);
    ct_pipeline_free(p);
}
END_TEST

START_TEST(views_of_a_sample_differ) {
    ct_pipeline *p = new_pipeline(8, 1, 2, true, 3);
    ct_error err = CT_ERROR_INIT;
    ct_pipeline_start_epoch(p, 0, &err);
    const ct_data_batch *b;
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_OK);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->views[0].c, 3);
    ck_assert_int_eq(b->views[0].h, 16);
    size_t n = 3 * 16 * 16;
    for (int i = 0; i < b->n; i++) {
        ck_assert_int_ne(memcmp(b->views[0].data + i * n, b->views[1].data + i * n, n * sizeof(float)), 0);
        ck_assert_int_eq(b->labels[i], (int32_t)(b->items[i] % 10));
    }
    ct_pipeline_release(p, b);
    ct_pipeline_free(p);
}
END_TEST

static void check_cover(const epoch_dump *d, int expect) {
    ck_assert_int_eq(d->n_items, expect);
    bool seen[N_ITEMS] = {false};
    for (int i = 0; i < d->n_items; i++) {
        ck_assert(d->items[i] >= 0 && d->items[i] < N_ITEMS);
        ck_assert_msg(!seen[d->items[i]], "item %lld repeated", (long long)d->items[i]);
        seen[d->items[i]] = true;
    }
}

START_TEST(batches_cover_the_epoch_without_repeats) {
    ct_pipeline *keep = new_pipeline(16, 2, 3, false, 5);
    ck_assert_int_eq(ct_pipeline_steps_per_epoch(keep), 7);
    epoch_dump d = run_epoch(keep, 0);
    check_cover(&d, N_ITEMS);
    ck_assert_int_eq(d.n_batches, 7);
    free(d.views);
    ct_pipeline *drop = new_pipeline(16, 2, 3, true, 5);
    ck_assert_int_eq(ct_pipeline_steps_per_epoch(drop), 6);
    d = run_epoch(drop, 0);
    check_cover(&d, 96);
    free(d.views);
    ct_pipeline_free(keep);
    ct_pipeline_free(drop);
}
END_TEST

/* label_runs: the epoch still visits every item once, but in runs of up
 * to G samples sharing a label (synth's label is item % 10: labels 0-2
 * have 11 items, 3-9 have 10, so 3 * 3 + 7 * 3 = 30 runs of 4). */
START_TEST(label_runs_group_samples_sharing_a_label) {
    spec.label_runs = 4;
    ct_pipeline *p = new_pipeline(16, 2, 3, false, 5);
    epoch_dump d = run_epoch(p, 0);
    check_cover(&d, N_ITEMS);
    int changes = 0, stretch = 1, longest = 1;
    for (int i = 1; i < d.n_items; i++) {
        ck_assert_int_eq(d.labels[i], (int32_t)(d.items[i] % 10));
        bool same = d.labels[i] == d.labels[i - 1];
        changes += !same;
        stretch = same ? stretch + 1 : 1;
        if (stretch > longest) longest = stretch;
    }
    /* at most one label change per run boundary; a plain shuffle of 103
     * items over 10 labels changes label about 93 times */
    ck_assert_int_le(changes, 29);
    ck_assert_int_ge(longest, 4);
    /* deterministic: the same order again, with other thread counts */
    ct_pipeline *q = new_pipeline(16, 1, 2, false, 5);
    epoch_dump e = run_epoch(q, 0);
    ck_assert_mem_eq(d.items, e.items, sizeof d.items);
    /* another epoch, another order */
    epoch_dump f = run_epoch(q, 1);
    check_cover(&f, N_ITEMS);
    ck_assert(memcmp(d.items, f.items, sizeof d.items) != 0);
    free(d.views), free(e.views), free(f.views);
    ct_pipeline_free(p);
    ct_pipeline_free(q);
    /* G = 1 is the plain shuffle */
    spec.label_runs = 1;
    p = new_pipeline(16, 2, 3, false, 5);
    spec.label_runs = 0;
    q = new_pipeline(16, 2, 3, false, 5);
    d = run_epoch(p, 0);
    e = run_epoch(q, 0);
    ck_assert_mem_eq(d.items, e.items, sizeof d.items);
    free(d.views), free(e.views);
    ct_pipeline_free(p);
    ct_pipeline_free(q);
}
END_TEST

START_TEST(label_runs_need_labels) {
    src_state.unlabelled = true;
    spec.label_runs = 4;
    ct_pipeline_opts o = ct_pipeline_opts_default(16, 0);
    ct_pipeline *p = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_pipeline_new(&spec, &o, &p, &err), CT_ERR_CONFIG);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.msg, "label_runs") && strstr(err.msg, "synth"), "%s", err.msg);
}
END_TEST

START_TEST(early_free_does_not_deadlock) {
    ct_error err = CT_ERROR_INIT;
    const ct_data_batch *b;
    /* Never started. */
    ct_pipeline_free(new_pipeline(16, 2, 3, true, 0));
    /* Free while a batch is held and workers are busy prefetching. */
    ct_pipeline *p = new_pipeline(4, 2, 3, true, 0);
    ct_pipeline_start_epoch(p, 0, &err);
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_OK);
    ck_assert_ptr_nonnull(b);
    ct_pipeline_free(p);
    /* Restart an epoch in the middle, holding a batch; then finish cleanly. */
    p = new_pipeline(4, 2, 2, true, 0);
    ct_pipeline_start_epoch(p, 0, &err);
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_OK);
    ct_pipeline_start_epoch(p, 1, &err);
    epoch_dump d = run_epoch(p, 1);
    ck_assert_int_eq(d.n_batches, N_ITEMS / 4);
    free(d.views);
    /* Holding more than depth batches is refused, not a hang. */
    const ct_data_batch *held[3];
    ct_pipeline_start_epoch(p, 2, &err);
    ck_assert_int_eq(ct_pipeline_next(p, &held[0], &err), CT_OK);
    ck_assert_int_eq(ct_pipeline_next(p, &held[1], &err), CT_OK);
    ck_assert_int_eq(ct_pipeline_next(p, &held[2], &err), CT_ERR_INVALID);
    ct_pipeline_release(p, held[0]);
    ck_assert_int_eq(ct_pipeline_next(p, &held[2], &err), CT_OK);
    ck_assert_ptr_nonnull(held[2]);
    ct_pipeline_free(p);
}
END_TEST

START_TEST(eval_iterator_is_ordered_and_complete) {
    ct_chain chain;
    memset(&chain, 0, sizeof chain);
    chain.n = 1;
    chain.t[0] = tr[3]; /* normalize only */
    ct_pipeline *p = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_pipeline_new_eval(&data, &chain, 10, 0, 2, NULL, 0, &p, &err), CT_OK);
    ct_pipeline_start_epoch(p, 0, &err);
    const ct_data_batch *b;
    int64_t next_item = 0;
    ct_image ref = CT_IMAGE_INIT;
    while (ct_pipeline_next(p, &b, &err) == CT_OK && b) {
        ck_assert_int_eq(b->n_views, 1);
        for (int i = 0; i < b->n; i++) {
            ck_assert_int_eq(b->items[i], next_item);
            synth_get(&src_state, next_item, &ref, NULL, &err);
            ck_assert_float_eq_tol(b->views[0].data[(size_t)i * 3 * SIDE * SIDE + 5], (ref.data[5] - 0.5f) / 0.25f, 1e-5f);
            next_item++;
        }
        ct_pipeline_release(p, b);
    }
    ck_assert_int_eq(next_item, N_ITEMS); /* the partial last batch is kept */
    ct_pipeline_free(p);
    /* A subset in its own order. */
    int64_t subset[3] = {7, 2, 99};
    ck_assert_int_eq(ct_pipeline_new_eval(&data, NULL, 2, 0, 1, subset, 3, &p, &err), CT_OK);
    ct_pipeline_start_epoch(p, 0, &err);
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_OK);
    ck_assert_int_eq(b->items[0], 7);
    ck_assert_int_eq(b->items[1], 2);
    ck_assert_int_eq(b->views[0].h, SIDE);
    ct_pipeline_release(p, b);
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_OK);
    ck_assert_int_eq(b->n, 1);
    ck_assert_int_eq(b->items[0], 99);
    ct_pipeline_release(p, b);
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_OK);
    ck_assert_ptr_null(b);
    ct_pipeline_free(p);
    ct_image_free(&ref);
}
END_TEST

START_TEST(source_errors_name_the_item) {
    src_state.fail_item = 50;
    ct_pipeline *p = new_pipeline(16, 2, 3, false, 0);
    ct_error err = CT_ERROR_INIT;
    ct_pipeline_start_epoch(p, 0, &err);
    const ct_data_batch *b;
    ct_status st;
    while ((st = ct_pipeline_next(p, &b, &err)) == CT_OK && b) ct_pipeline_release(p, b);
    ck_assert_int_eq(st, CT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "item 50"));
    ck_assert_ptr_nonnull(strstr(err.msg, "synth"));
    ct_pipeline_free(p);
}
END_TEST

START_TEST(multi_crop_groups) {
    ct_transform small = make("random_resized_crop", "size = [8]; scale = [0.05, 0.4];");
    spec.n_groups = 2;
    spec.groups[1].count = 3;
    spec.groups[1].chain.n = 2;
    spec.groups[1].chain.t[0] = small;
    spec.groups[1].chain.t[1] = tr[3];
    ct_pipeline *p = new_pipeline(5, 2, 2, true, 9);
    ct_error err = CT_ERROR_INIT;
    ct_pipeline_start_epoch(p, 0, &err);
    const ct_data_batch *b;
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_OK);
    ck_assert_int_eq(b->n_views, 5);
    ck_assert_int_eq(b->views[1].h, 16);
    ck_assert_int_eq(b->views[2].h, 8);
    ck_assert_int_eq(b->views[4].w, 8);
    /* Wrapped for an architecture without copying. */
    ct_graph *g = ct_graph_new(0);
    ct_batch tb;
    ck_assert_int_eq(ct_pipeline_to_batch(b, g, 0, 1.0f, &tb, &err), CT_OK);
    ck_assert_int_eq(tb.views[3]->ndim, 4);
    ck_assert_int_eq(tb.views[3]->shape[0], 5);
    ck_assert_int_eq(tb.views[3]->shape[2], 8);
    ck_assert_ptr_eq(tb.views[3]->data, b->views[3].data);
    ct_graph_free(g);
    ct_pipeline_release(p, b);
    ct_pipeline_free(p);
    dt_transform_free(&small);
}
END_TEST

START_TEST(bad_specs_are_refused) {
    ct_pipeline *p = NULL;
    ct_error err = CT_ERROR_INIT;
    ct_pipeline_opts o = ct_pipeline_opts_default(200, 0);
    ck_assert_int_eq(ct_pipeline_new(&spec, &o, &p, &err), CT_ERR_CONFIG); /* no full batch */
    ck_assert_ptr_nonnull(strstr(err.msg, "synth"));
    o.batch_size = 0;
    ck_assert_int_eq(ct_pipeline_new(&spec, &o, &p, &err), CT_ERR_CONFIG);
    o.batch_size = 8;
    spec.groups[0].count = 17;
    ck_assert_int_eq(ct_pipeline_new(&spec, &o, &p, &err), CT_ERR_CONFIG);
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(varying_sizes_need_a_fixed_size_transform) {
    src_state.vary = true;
    /* With the crop every view is 16x16: fine. */
    ct_pipeline *p = new_pipeline(16, 2, 3, true, 0);
    epoch_dump d = run_epoch(p, 0);
    ck_assert_int_eq(d.n_batches, 6);
    free(d.views);
    ct_pipeline_free(p);
    /* Without it, the first odd item is refused with a hint. */
    spec.groups[0].chain.n = 1;
    spec.groups[0].chain.t[0] = tr[3];
    p = new_pipeline(16, 1, 3, true, 0);
    ct_error err = CT_ERROR_INIT;
    ct_pipeline_start_epoch(p, 0, &err);
    const ct_data_batch *b;
    ck_assert_int_eq(ct_pipeline_next(p, &b, &err), CT_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "fixed-size transform"));
    ct_pipeline_free(p);
}
END_TEST

/* `contrast preview` end to end: a multi-crop config over Fashion-MNIST's
 * test split (skipped when the data set is absent). */
START_TEST(preview_writes_a_png) {
    const char *images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (access(images, R_OK) != 0) return;
    const char *dir = ct_test_tmpdir();
    char cfg[600], png[600], cmd[2400], out[4096];
    snprintf(cfg, sizeof cfg, "%s/exp.cfg", dir);
    snprintf(png, sizeof png, "%s/grid.png", dir);
    char text[1500];
    snprintf(text, sizeof text,
             "name = \"preview\"; seed = 1;\n"
             "data = { train = { type = \"idx\"; images = \"%s\"; limit = 20; }; };\n"
             "pipelines = ( { data = \"train\"; views = (\n"
             "  { count = 2; transforms = ( { type = \"random_resized_crop\"; size = [28]; },\n"
             "                              { type = \"normalize\"; mean = [0.286]; std = [0.353]; } ); },\n"
             "  { count = 2; transforms = ( { type = \"random_resized_crop\"; size = [14]; scale = [0.05, 0.4]; } ); } ); } );\n",
             images);
    ck_assert_int_eq(ct_test_write_file(cfg, text, strlen(text)), 0);
    snprintf(cmd, sizeof cmd, "%s/contrast preview %s --out %s --n 3", ct_test_build_dir(), cfg, png);
    int rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "original + 4 views"));
    FILE *f = fopen(png, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char sig[8];
    ck_assert_uint_eq(fread(sig, 1, 8, f), 8);
    fclose(f);
    ck_assert_int_eq(memcmp(sig, "\x89PNG\r\n\x1a\n", 8), 0);
    /* Usage errors exit 2 with a reason. */
    snprintf(cmd, sizeof cmd, "%s/contrast preview %s", ct_test_build_dir(), cfg);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--out"));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, same_seed_same_bytes_whatever_threads);
    tcase_add_test(tc, epochs_differ);
    tcase_add_test(tc, shards_make_the_global_batch);
    tcase_add_test(tc, views_of_a_sample_differ);
    tcase_add_test(tc, batches_cover_the_epoch_without_repeats);
    tcase_add_test(tc, label_runs_group_samples_sharing_a_label);
    tcase_add_test(tc, label_runs_need_labels);
    tcase_add_test(tc, early_free_does_not_deadlock);
    tcase_add_test(tc, eval_iterator_is_ordered_and_complete);
    tcase_add_test(tc, source_errors_name_the_item);
    tcase_add_test(tc, multi_crop_groups);
    tcase_add_test(tc, bad_specs_are_refused);
    tcase_add_test(tc, varying_sizes_need_a_fixed_size_transform);
    suite_add_tcase(s, tc);
    TCase *cli = tcase_create("preview");
    tcase_set_timeout(cli, 60);
    tcase_add_test(cli, preview_writes_a_png);
    suite_add_tcase(s, cli);
    return s;
}

int main(void) { return ct_test_main(suite()); }

/* The tcn structure (plugins/structure/tcn) on multi-view Fashion-MNIST
 * made on the fly (FFV1, lossless, so every sampled frame can be found
 * among the decoded ones): the two parts are two distinct cameras at the
 * same instants, sorted and at least min_gap apart, every ordered camera
 * pair and both ends of a sequence are drawn, sampling is determined by
 * (seed, epoch, item); the refusals (too short a sequence, a source
 * without cameras, frame items); info; and the embedding against a hand
 * computation with its row order and ids, and the refusal of a batch that
 * holds a sequence twice. Training through the host is in test_structures
 * (the matrix). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_data_test.h"
#include "ct_test.h"
#include "data/multiview_fmnist.h"

#ifdef CONTRAST_HAVE_FFMPEG

#define L 12 /* frames per sequence */
#define V 3  /* cameras */
#define S 48 /* frame side */

static ct_registry *reg;
static char dir[256];
static ct_dataset data;

static void setup(void) {
    reg = ct_registry_new();
    dt_load_plugin(reg, "multiview");
    dt_load_plugin(reg, "tcn");
    snprintf(dir, sizeof dir, "%s", ct_test_tmpdir());
    ct_mvf_params p;
    ct_mvf_defaults(&p);
    p.sequences = 3;
    p.test_sequences = 0;
    p.views = V;
    p.frames = L;
    p.size = S;
    p.pool = 10;
    snprintf(p.codec, sizeof p.codec, "ffv1");
    char out[600], cfg[1400];
    snprintf(out, sizeof out, "%s/mv", dir);
    ct_error err = CT_ERROR_INIT;
    bool reused;
    ck_assert_msg(ct_mvf_make(out, &p, false, &reused, &err) == CT_OK, "%s", err.msg);
    snprintf(cfg, sizeof cfg, "root = \"%s/train\"; index_dir = \"\"; channels = 1;", out);
    ck_assert_msg(dt_dataset(reg, "multiview", cfg, &data, &err) == CT_OK, "%s", err.msg);
}

static void teardown(void) {
    dt_dataset_free(&data);
    ct_registry_free(reg);
}

typedef struct fixture {
    const ct_structure_ops *ops;
    ct_settings *s;
    void *self;
} fixture;

static ct_status fixture_try(fixture *f, const char *settings, ct_error *err) {
    memset(f, 0, sizeof *f);
    const ct_registry_entry *e = ct_registry_find(reg, CT_ROLE_STRUCTURE, "tcn");
    ck_assert_ptr_nonnull(e);
    f->ops = e->ops.structure;
    ct_status st = ct_settings_parse(f->ops->params, settings, "tcn", &f->s, err);
    if (st != CT_OK) return st;
    int chain_views[2] = {1, 1};
    ct_structure_env env = {sizeof env, NULL, 2, chain_views, 1, S, S, 0};
    return f->ops->create(f->s, &env, &f->self, err);
}

static void fixture_new(fixture *f, const char *settings) {
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(fixture_try(f, settings, &err) == CT_OK, "%s", err.msg);
}

static void fixture_free(fixture *f) {
    if (f->self) f->ops->destroy(f->self);
    ct_settings_free(f->s);
}

/* The chains: a copy (so frames stay findable). */
static ct_status apply_copy(const ct_sample_ctx *c, int chain, const ct_image *in, ct_image *out, ct_rng *rng,
                            ct_error *err) {
    (void)c, (void)chain, (void)rng, (void)err;
    return ct_image_copy(out, in);
}

static ct_sample_ctx ctx_for(const ct_dataset *d, int64_t epoch, int64_t item) {
    static const int chain_views[2] = {1, 1};
    ct_sample_ctx c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.seed = 5;
    c.epoch = epoch;
    c.item = item;
    c.n_chains = 2;
    c.chain_views = chain_views;
    c.apply = apply_copy;
    c.source = d->ops;
    c.source_self = d->self;
    return c;
}

/* All frames of every camera of sequence q: all[v] is (L, 1, S, S). */
static void decode_all(int64_t q, ct_image all[V]) {
    const ct_multiview *mv = data.ops->extension(data.self, CT_MULTIVIEW_EXT);
    int64_t t[L];
    for (int k = 0; k < L; k++) t[k] = k;
    ct_error err = CT_ERROR_INIT;
    for (int v = 0; v < V; v++)
        ck_assert_msg(mv->frames(mv->self, q, v, t, L, &all[v], &err) == CT_OK, "%s", err.msg);
}

/* Camera and time of a frame, by exact match (-1 when not found). */
static void find_frame(const ct_image all[V], const float *px, int *view, int *t) {
    size_t n = ct_image_frame_size(&all[0]);
    *view = *t = -1;
    for (int v = 0; v < V; v++)
        for (int k = 0; k < L; k++)
            if (!memcmp(ct_image_frame(&all[v], k), px, n * sizeof *px)) {
                ck_assert_msg(*view < 0, "two frames of the set are identical");
                *view = v, *t = k;
            }
}

START_TEST(parts_are_two_cameras_at_the_same_instants) {
    fixture f;
    fixture_new(&f, "times = 3; min_gap = 4;");
    bool pair_seen[V][V] = {{false}};
    bool first_seen = false, last_seen = false;
    ct_image all[V] = {CT_IMAGE_INIT, CT_IMAGE_INIT, CT_IMAGE_INIT};
    ct_image parts[2] = {CT_IMAGE_INIT, CT_IMAGE_INIT};
    for (int64_t item = 0; item < 3; item++) {
        decode_all(item, all);
        for (int64_t epoch = 0; epoch < 25; epoch++) {
            ct_sample_ctx c = ctx_for(&data, epoch, item);
            ct_error err = CT_ERROR_INIT;
            ck_assert_msg(f.ops->sample(f.self, &c, parts, &err) == CT_OK, "%s", err.msg);
            int cam[2], times[2][3];
            for (int p = 0; p < 2; p++) {
                ck_assert(parts[p].t == 3 && parts[p].c == 1 && parts[p].h == S && parts[p].w == S);
                for (int k = 0; k < 3; k++) {
                    int v, t;
                    find_frame(all, ct_image_frame(&parts[p], k), &v, &t);
                    ck_assert_msg(v >= 0, "part %d frame %d is no frame of sequence %lld", p, k, (long long)item);
                    if (k == 0) cam[p] = v;
                    ck_assert_int_eq(v, cam[p]); /* one camera per part */
                    times[p][k] = t;
                }
            }
            ck_assert_int_ne(cam[0], cam[1]);
            pair_seen[cam[0]][cam[1]] = true;
            for (int k = 0; k < 3; k++) {
                ck_assert_int_eq(times[0][k], times[1][k]); /* positives: the same instant */
                if (k) ck_assert_int_ge(times[0][k] - times[0][k - 1], 4);
            }
            first_seen |= times[0][0] == 0;
            last_seen |= times[0][2] == L - 1;
            /* the same key gives the same sample */
            ct_image again[2] = {CT_IMAGE_INIT, CT_IMAGE_INIT};
            ck_assert(f.ops->sample(f.self, &c, again, &err) == CT_OK);
            for (int p = 0; p < 2; p++) {
                ck_assert(!memcmp(again[p].data, parts[p].data, ct_image_numel(&parts[p]) * sizeof(float)));
                ct_image_free(&again[p]);
            }
        }
    }
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++)
            if (a != b) ck_assert_msg(pair_seen[a][b], "camera pair (%d, %d) never drawn", a, b);
    ck_assert(first_seen && last_seen);
    for (int v = 0; v < V; v++) ct_image_free(&all[v]);
    for (int p = 0; p < 2; p++) ct_image_free(&parts[p]);
    fixture_free(&f);
}
END_TEST

START_TEST(refusals_and_info) {
    fixture f;
    fixture_new(&f, "times = 4; min_gap = 3;");
    ct_structure_info i;
    f.ops->info(f.self, &i);
    ck_assert(i.n_parts == 2 && i.n_sets == 2 && i.rows_per_sample == 4);
    ck_assert_uint_eq(i.flags, CT_STRUCT_ROWS_NOT_ITEMS | CT_STRUCT_NEEDS_BATCH_NEGATIVES);
    fixture_free(&f);
    /* 4 times 4 apart need 13 frames: the sequences have 12 */
    fixture_new(&f, "times = 4; min_gap = 4;");
    ct_image parts[2] = {CT_IMAGE_INIT, CT_IMAGE_INIT};
    ct_sample_ctx c = ctx_for(&data, 0, 1);
    ct_error err = CT_ERROR_INIT;
    ck_assert(f.ops->sample(f.self, &c, parts, &err) != CT_OK);
    ck_assert_msg(strstr(err.msg, "12 frames") && strstr(err.msg, "need 13"), "%s", err.msg);
    /* a source without cameras */
    ct_source_ops plain = *data.ops;
    plain.name = "plain";
    plain.extension = NULL;
    c.source = &plain;
    ck_assert(f.ops->sample(f.self, &c, parts, &err) != CT_OK);
    ck_assert_msg(strstr(err.msg, "plain") && strstr(err.msg, "no synchronised cameras"), "%s", err.msg);
    fixture_free(&f);
    /* frame items */
    char cfg[1400];
    snprintf(cfg, sizeof cfg, "root = \"%s/mv/train\"; index_dir = \"\"; channels = 1; items = \"frames\";", dir);
    ct_dataset frames;
    ck_assert_msg(dt_dataset(reg, "multiview", cfg, &frames, &err) == CT_OK, "%s", err.msg);
    fixture_new(&f, "times = 2; min_gap = 1;");
    c = ctx_for(&frames, 0, 5);
    ck_assert(f.ops->sample(f.self, &c, parts, &err) != CT_OK);
    ck_assert_msg(strstr(err.msg, "items = \"sequences\""), "%s", err.msg);
    fixture_free(&f);
    dt_dataset_free(&frames);
    /* settings */
    ck_assert(fixture_try(&f, "times = 0;", &err) != CT_OK);
    ct_settings_free(f.s);
    for (int p = 0; p < 2; p++) ct_image_free(&parts[p]);
}
END_TEST

/* features_d = tanh(w_d * mean of the frame + b_d) */
#define TD 2
static float g_w[TD] = {1.5f, -0.8f}, g_b[TD] = {0.1f, 0.2f};

static ct_tensor *tenc_forward(void *self, ct_graph *g, ct_tensor *x) {
    (void)self;
    ck_assert_int_eq(x->ndim, 4); /* frames reach an image encoder as images */
    int64_t ws[2] = {TD, 1}, bs[1] = {TD};
    ct_tensor *m = ct_global_avgpool(g, x);
    ct_tensor *y = m ? ct_linear(g, m, ct_tensor_wrap(g, g_w, 2, ws), ct_tensor_wrap(g, g_b, 1, bs)) : NULL;
    return y ? ct_tanh(g, y) : NULL;
}

static int64_t tenc_dim(void *self) {
    (void)self;
    return TD;
}

static const ct_encoder_ops tenc_ops = {.name = "tenc", .out_dim = tenc_dim, .forward = tenc_forward};
static const ct_encoder tenc = {&tenc_ops, NULL, TD, "encoder."};

START_TEST(embedding_rows) {
    enum { N = 3, K = 2, P = 4 }; /* samples, times, 2x2 frames */
    fixture f;
    fixture_new(&f, "times = 2; min_gap = 1;");
    static float px[2][N * K * P];
    ct_rng r;
    ct_rng_init(&r, 1, 0);
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < N * K * P; i++) px[p][i] = ct_rng_uniform(&r);
    int64_t items[N] = {4, 0, 2};
    ct_graph *g = ct_graph_new(0);
    ct_batch b;
    memset(&b, 0, sizeof b);
    b.n = N;
    b.n_views = 2;
    b.items = items;
    b.weight = 1;
    int64_t shape[5] = {N, K, 1, 2, 2};
    for (int p = 0; p < 2; p++) b.views[p] = ct_tensor_wrap(g, px[p], 5, shape);
    ct_embeddings e;
    ck_assert_int_eq(f.ops->embed(f.self, g, &b, &tenc, CT_SIDE_QUERY, CT_ALL_SETS, &e), CT_OK);
    ck_assert(e.n_sets == 2 && e.rows == N * K && e.rows_per_sample == K);
    for (int64_t row = 0; row < N * K; row++) {
        ck_assert_int_eq(e.items[row], -1);
        for (int64_t other = 0; other < row; other++) ck_assert_int_ne(e.groups[row], e.groups[other]);
        for (int p = 0; p < 2; p++) {
            const float *frame = px[p] + row * P; /* sample row / K, time row % K */
            double mean = (frame[0] + frame[1] + frame[2] + frame[3]) / 4.0;
            for (int d = 0; d < TD; d++)
                ck_assert_double_eq_tol(e.set[p]->data[row * TD + d], tanh(g_w[d] * mean + g_b[d]), 1e-5);
        }
    }
    /* a sequence twice in one batch */
    ct_graph_reset(g);
    items[2] = 4;
    for (int p = 0; p < 2; p++) b.views[p] = ct_tensor_wrap(g, px[p], 5, shape);
    ck_assert_int_ne(f.ops->embed(f.self, g, &b, &tenc, CT_SIDE_QUERY, CT_ALL_SETS, &e), CT_OK);
    ck_assert_msg(strstr(ct_graph_error(g), "one sequence twice"), "%s", ct_graph_error(g));
    ct_graph_free(g);
    fixture_free(&f);
}
END_TEST

#endif

int main(void) {
    Suite *s = suite_create("tcn");
    TCase *tc = tcase_create("tcn");
#ifdef CONTRAST_HAVE_FFMPEG
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, parts_are_two_cameras_at_the_same_instants);
    tcase_add_test(tc, refusals_and_info);
    tcase_add_test(tc, embedding_rows);
#endif
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

/* The jigsaw structure (plugins/structure/jigsaw): sampling (part shapes,
 * each patch an exact window of its own cell, a real permutation, jitter,
 * determinism by the rng key, chain 1 per patch, the crop's resize),
 * refusals of bad settings, info, declared layer names and shapes, the
 * embedding against a hand computation, its gradients (inputs and layers),
 * and 5 training steps with each of the four architectures through
 * build/contrast whose cut-and-resumed run matches the uninterrupted one. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/safetensors.h>

#include "ct_gradcheck.h"
#include "ct_test.h"
#include "plugins/loader.h"

/* ---- the plugin, loaded as the host loads it ----------------------------------- */

typedef struct fixture {
    ct_plugin_set *set;
    const ct_structure_ops *ops;
    ct_settings *s;
    void *self;
} fixture;

static const ct_structure_ops *load_jigsaw(ct_plugin_set **set) {
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_plugins_load(&lo, set, &err) == CT_OK, "%s", err.msg);
    const ct_registry_entry *e = ct_plugins_find(*set, CT_ROLE_STRUCTURE, "jigsaw");
    ck_assert_msg(e != NULL, "no jigsaw structure (CONTRAST_PLUGIN_PATH=%s)",
                  getenv("CONTRAST_PLUGIN_PATH") ? getenv("CONTRAST_PLUGIN_PATH") : "");
    return e->ops.structure;
}

/* Create with `settings` for a pipeline of n_chains views groups; returns
 * create's status (err filled), the fixture usable when CT_OK. */
static ct_status fixture_try(fixture *f, const char *settings, int n_chains, ct_error *err) {
    memset(f, 0, sizeof *f);
    f->ops = load_jigsaw(&f->set);
    ct_status st = ct_settings_parse(f->ops->params, settings, "jigsaw", &f->s, err);
    if (st != CT_OK) return st;
    int chain_views[3] = {1, 1, 1};
    ct_structure_env env = {sizeof env, NULL, n_chains, chain_views, 1, 30, 30, 0};
    return f->ops->create(f->s, &env, &f->self, err);
}

static void fixture_new(fixture *f, const char *settings, int n_chains) {
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(fixture_try(f, settings, n_chains, &err) == CT_OK, "%s", err.msg);
}

static void fixture_free(fixture *f) {
    if (f->self) f->ops->destroy(f->self);
    ct_settings_free(f->s);
    ct_plugins_free(f->set);
}

/* ---- sampling ---------------------------------------------------------------------- */

/* The test's transform chains: chain 0 copies (the full view is the item),
 * chain 1 adds 100 + u, u one uniform draw of the rng it is given (so a
 * patch shows that chain 1 ran, once, with its own stream). The first
 * value chain 0's rng gives is recorded. */
static uint64_t g_chain0_draw;

static ct_status test_apply(const ct_sample_ctx *c, int chain, const ct_image *in, ct_image *out, ct_rng *rng,
                            ct_error *err) {
    (void)c;
    if (ct_image_reshape(out, in->t, in->c, in->h, in->w) != CT_OK) return ct_error_set(err, CT_ERR_NOMEM, "oom");
    float add = 0.0f;
    if (chain == 0)
        g_chain0_draw = ct_rng_u64(rng);
    else
        add = 100.0f + ct_rng_uniform(rng);
    for (size_t i = 0; i < ct_image_numel(in); i++) out->data[i] = in->data[i] + add;
    return CT_OK;
}

/* A 30 x 30 item whose pixel (y, x) holds (30 y + x + 1) / 1024: exact in
 * float, so a value names its position. */
static void ramp_item(ct_image *img) {
    ck_assert_int_eq(ct_image_reshape(img, 1, 1, 30, 30), CT_OK);
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 30; x++) img->data[y * 30 + x] = (float)(30 * y + x + 1) / 1024.0f;
}

static void position_of(float v, int *y, int *x) {
    int idx = (int)lroundf(v * 1024.0f) - 1;
    *y = idx / 30;
    *x = idx % 30;
}

typedef struct sampled {
    ct_image parts[CT_MAX_VIEWS];
    int n;
} sampled;

static void sample_item(fixture *f, const ct_image *src, int n_chains, uint64_t seed, int64_t epoch, int64_t item,
                        sampled *out) {
    ct_structure_info info;
    f->ops->info(f->self, &info);
    int chain_views[2] = {1, 1};
    ct_sample_ctx c = {sizeof c, seed, epoch, item, src, n_chains, chain_views, test_apply, NULL, NULL, NULL};
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(f->ops->sample(f->self, &c, out->parts, &err) == CT_OK, "%s", err.msg);
    out->n = info.n_parts;
}

static void sampled_free(sampled *s) {
    for (int i = 0; i < CT_MAX_VIEWS; i++) ct_image_free(&s->parts[i]);
}

static bool same_parts(const sampled *a, const sampled *b) {
    for (int p = 0; p < a->n; p++) {
        size_t n = ct_image_numel(&a->parts[p]);
        if (n != ct_image_numel(&b->parts[p]) || memcmp(a->parts[p].data, b->parts[p].data, n * sizeof(float)))
            return false;
    }
    return true;
}

/* Where patch k (part 1 + k) was cut from: every pixel must be the item's
 * pixel at (y + r, x + c) for the (y, x) its first pixel names. */
static void patch_origin(const ct_image *patch, const ct_image *src, int *y, int *x) {
    position_of(patch->data[0], y, x);
    for (int r = 0; r < patch->h; r++)
        for (int c = 0; c < patch->w; c++) {
            ck_assert_int_lt(*y + r, src->h);
            ck_assert_int_lt(*x + c, src->w);
            ck_assert_msg(patch->data[r * patch->w + c] == src->data[(*y + r) * src->w + *x + c],
                          "patch pixel (%d, %d) is not the item's pixel (%d, %d)", r, c, *y + r, *x + c);
        }
}

START_TEST(test_parts_shapes_cells_and_permutation) {
    fixture f;
    fixture_new(&f, "grid = 3; crop = 30; patch = 8; scale = [1.0, 1.0];", 1);
    ct_image src = CT_IMAGE_INIT;
    ramp_item(&src);
    int identity = 0, seen_cell_at[9][9] = {{0}}, offsets[3] = {0};
    for (int64_t item = 0; item < 40; item++) {
        sampled s = {0};
        sample_item(&f, &src, 1, 7, 0, item, &s);
        ck_assert_int_eq(s.n, 10);
        /* Part 0 is chain 0 of the item: here the item itself. */
        ck_assert_int_eq(s.parts[0].h, 30);
        ck_assert_int_eq(s.parts[0].w, 30);
        ck_assert_int_eq(memcmp(s.parts[0].data, src.data, 900 * sizeof(float)), 0);
        bool used[9] = {false}, is_identity = true;
        for (int k = 0; k < 9; k++) {
            const ct_image *p = &s.parts[1 + k];
            ck_assert_int_eq(p->t, 1);
            ck_assert_int_eq(p->c, 1);
            ck_assert_int_eq(p->h, 8);
            ck_assert_int_eq(p->w, 8);
            int y, x;
            patch_origin(p, &src, &y, &x);
            /* Inside one 10 px cell, at an offset of 0..2 px (jitter). */
            int cell = (y / 10) * 3 + x / 10;
            ck_assert_int_le(y % 10, 2);
            ck_assert_int_le(x % 10, 2);
            offsets[y % 10]++;
            ck_assert_msg(!used[cell], "item %lld: cell %d cut twice", (long long)item, cell);
            used[cell] = true;
            seen_cell_at[k][cell] = 1;
            if (cell != k) is_identity = false;
        }
        identity += is_identity;
        sampled_free(&s);
    }
    /* A real permutation: at most a stray identity in 40 draws (1/9! each),
     * every part position showing several cells, every jitter offset used. */
    ck_assert_int_le(identity, 1);
    for (int k = 0; k < 9; k++) {
        int distinct = 0;
        for (int c = 0; c < 9; c++) distinct += seen_cell_at[k][c];
        ck_assert_msg(distinct >= 5, "part %d showed only %d different cells in 40 samples", 1 + k, distinct);
    }
    for (int o = 0; o < 3; o++) ck_assert_msg(offsets[o] > 0, "jitter offset %d never drawn", o);
    ct_image_free(&src);
    fixture_free(&f);
}
END_TEST

START_TEST(test_determinism_by_key) {
    fixture f;
    fixture_new(&f, "grid = 3; crop = 30; patch = 8; scale = [0.5, 1.0];", 2);
    ct_image src = CT_IMAGE_INIT;
    ramp_item(&src);
    sampled a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
    sample_item(&f, &src, 2, 11, 3, 5, &a);
    uint64_t draw_a = g_chain0_draw;
    sample_item(&f, &src, 2, 11, 3, 5, &b);
    ck_assert_msg(same_parts(&a, &b), "the same (seed, epoch, item) gave different parts");
    /* Part 0's chain got the stream keyed (seed, epoch, item, 0). */
    ct_rng r;
    ct_rng_init_keyed(&r, 11, 3, 5, 0);
    ck_assert_uint_eq(draw_a, ct_rng_u64(&r));
    sample_item(&f, &src, 2, 11, 4, 5, &c);
    sample_item(&f, &src, 2, 11, 3, 6, &d);
    sample_item(&f, &src, 2, 12, 3, 5, &e);
    ck_assert_msg(!same_parts(&a, &c), "another epoch gave the same parts");
    ck_assert_msg(!same_parts(&a, &d), "another item gave the same parts");
    ck_assert_msg(!same_parts(&a, &e), "another seed gave the same parts");
    /* Chain 1 ran once on every patch with a stream of its own: each patch
     * carries 100 + u, the u differ between patches, and part 0 has none. */
    float u[9];
    for (int k = 0; k < 9; k++) {
        const ct_image *p = &a.parts[1 + k];
        float lo = INFINITY;
        for (size_t i = 0; i < ct_image_numel(p); i++) lo = fminf(lo, p->data[i]);
        ck_assert_msg(lo >= 100.0f && lo < 102.0f, "patch %d: values from %g (chain 1 not applied once)", k,
                      (double)lo);
        u[k] = p->data[0];
    }
    for (int k = 1; k < 9; k++) ck_assert_msg(u[k] != u[0], "patches 0 and %d share a transform draw", k);
    for (size_t i = 0; i < ct_image_numel(&a.parts[0]); i++) ck_assert_float_lt(a.parts[0].data[i], 1.0f);
    sampled_free(&a);
    sampled_free(&b);
    sampled_free(&c);
    sampled_free(&d);
    sampled_free(&e);
    ct_image_free(&src);
    fixture_free(&f);
}
END_TEST

/* A crop of a quarter of the area (15 px) resized to 30 px: inside the
 * crop the ramp's steps halve (1/2 of 30/1024 down, 1/2 of 1/1024 across);
 * only the crop's border rows and columns may differ (edge clamping). */
START_TEST(test_crop_is_resized) {
    fixture f;
    fixture_new(&f, "grid = 2; crop = 30; patch = 12; scale = [0.25, 0.25];", 1);
    ct_image src = CT_IMAGE_INIT;
    ramp_item(&src);
    int64_t steps = 0, exact = 0;
    for (int64_t item = 0; item < 10; item++) {
        sampled s = {0};
        sample_item(&f, &src, 1, 3, 0, item, &s);
        ck_assert_int_eq(s.n, 5);
        for (int k = 0; k < 4; k++) {
            const ct_image *p = &s.parts[1 + k];
            ck_assert_int_eq(p->h, 12);
            for (int r = 0; r + 1 < 12; r++)
                for (int c = 0; c + 1 < 12; c++) {
                    float dy = p->data[(r + 1) * 12 + c] - p->data[r * 12 + c];
                    float dx = p->data[r * 12 + c + 1] - p->data[r * 12 + c];
                    ck_assert(dy >= -1e-6f && dy <= 30.0f / 1024 + 1e-6f);
                    ck_assert(dx >= -1e-6f && dx <= 1.0f / 1024 + 1e-6f);
                    steps++;
                    exact += fabsf(dy - 15.0f / 1024) < 1e-5f && fabsf(dx - 0.5f / 1024) < 1e-5f;
                }
        }
        sampled_free(&s);
    }
    ck_assert_msg(exact > steps * 8 / 10, "only %lld of %lld steps are the resized ramp's", (long long)exact,
                  (long long)steps);
    ct_image_free(&src);
    fixture_free(&f);
}
END_TEST

START_TEST(test_bad_settings_refused) {
    fixture f;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(fixture_try(&f, "patch = 11;", 1, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "patch = 11") && strstr(err.msg, "cell"), "%s", err.msg);
    fixture_free(&f);
    err = (ct_error)CT_ERROR_INIT;
    ck_assert_int_eq(fixture_try(&f, "scale = [0.9, 0.5];", 1, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "scale") && strstr(err.msg, "min > max"), "%s", err.msg);
    fixture_free(&f);
    err = (ct_error)CT_ERROR_INIT;
    ck_assert_int_eq(fixture_try(&f, "scale = [0.5];", 1, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "[min, max]"), "%s", err.msg);
    fixture_free(&f);
    err = (ct_error)CT_ERROR_INIT;
    ck_assert_int_eq(fixture_try(&f, "", 3, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "3 views groups"), "%s", err.msg);
    fixture_free(&f);
    /* 4 x 4 patches + the full view would be 17 parts (at most 16). */
    err = (ct_error)CT_ERROR_INIT;
    ck_assert_int_eq(fixture_try(&f, "grid = 4;", 1, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "grid"), "%s", err.msg);
    fixture_free(&f);
}
END_TEST

START_TEST(test_info) {
    fixture f;
    fixture_new(&f, "", 1);
    ct_structure_info i;
    f.ops->info(f.self, &i);
    ck_assert_int_eq(i.n_parts, 10);
    ck_assert_int_eq(i.n_sets, 2);
    ck_assert_int_eq(i.rows_per_sample, 1);
    ck_assert_uint_eq(i.flags, 0);
    ck_assert_str_eq(i.row_kind, "samples");
    fixture_free(&f);
    fixture_new(&f, "grid = 2; patch = 12;", 2);
    f.ops->info(f.self, &i);
    ck_assert_int_eq(i.n_parts, 5);
    fixture_free(&f);
}
END_TEST

/* ---- layers and embedding ------------------------------------------------------------ */

/* A small smooth encoder for exact checks: features_d = tanh(w_d * mean
 * of the input's pixels + b_d), for inputs of any size. */
#define TD 3
static float g_enc_w[TD] = {1.5f, -0.8f, 0.6f}, g_enc_b[TD] = {0.1f, 0.2f, -0.3f};

static ct_tensor *tenc_forward(void *self, ct_graph *g, ct_tensor *x) {
    (void)self;
    int64_t ws[2] = {TD, 1}, bs[1] = {TD};
    ct_tensor *m = ct_global_avgpool(g, x);
    ct_tensor *y = m ? ct_linear(g, m, ct_tensor_wrap(g, g_enc_w, 2, ws), ct_tensor_wrap(g, g_enc_b, 1, bs)) : NULL;
    return y ? ct_tanh(g, y) : NULL;
}

static int64_t tenc_dim(void *self) {
    (void)self;
    return TD;
}

static const ct_encoder_ops tenc_ops = {.name = "tenc", .out_dim = tenc_dim, .forward = tenc_forward};
static const ct_encoder tenc = {&tenc_ops, NULL, TD, "encoder."};

/* grid 2, proj 5, declared for both sides; layer values random. */
typedef struct model {
    fixture f;
    ct_params *store;
    ct_graph *g;
} model;

static void model_new(model *m, bool key_side) {
    fixture_new(&m->f, "grid = 2; crop = 4; patch = 2; proj = 5;", 1);
    m->store = ct_params_new(5);
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(m->f.ops->declare(m->f.self, m->store, "jigsaw.", TD, CT_SIDE_QUERY, &err) == CT_OK, "%s", err.msg);
    if (key_side)
        ck_assert_msg(m->f.ops->declare(m->f.self, m->store, "key_jigsaw.", TD, CT_SIDE_KEY, &err) == CT_OK, "%s",
                      err.msg);
    ck_assert_msg(ct_params_finalize(m->store, &err) == CT_OK, "%s", err.msg);
    m->g = ct_graph_new(0);
}

static void model_free(model *m) {
    ct_graph_free(m->g);
    ct_params_free(m->store);
    fixture_free(&m->f);
}

START_TEST(test_declared_names) {
    model m;
    model_new(&m, true);
    struct {
        const char *name;
        int ndim;
        int64_t d0, d1;
    } want[] = {{"jigsaw.patch_proj.weight", 2, 5, TD}, {"jigsaw.patch_proj.bias", 1, 5, 0},
                {"jigsaw.agg.weight", 2, TD, 20},       {"jigsaw.agg.bias", 1, TD, 0},
                {"key_jigsaw.patch_proj.weight", 2, 5, TD}, {"key_jigsaw.agg.bias", 1, TD, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ct_tensor *t = ct_params_find(m.store, want[i].name);
        ck_assert_msg(t != NULL, "no %s", want[i].name);
        ck_assert_int_eq(t->ndim, want[i].ndim);
        ck_assert_int_eq(t->shape[0], want[i].d0);
        if (want[i].ndim == 2) ck_assert_int_eq(t->shape[1], want[i].d1);
    }
    ck_assert_uint_eq(ct_params_count(m.store), 8);
    /* Declaring the same side twice in one store is a duplicate name. */
    ct_params *s2 = ct_params_new(1);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(m.f.ops->declare(m.f.self, s2, "jigsaw.", TD, CT_SIDE_QUERY, &err), CT_OK);
    ck_assert_int_ne(m.f.ops->declare(m.f.self, s2, "jigsaw.", TD, CT_SIDE_QUERY, &err), CT_OK);
    ct_params_free(s2);
    model_free(&m);
}
END_TEST

#define EN 3 /* samples */
#define EG 4 /* patches per sample (grid 2) */

/* Parts of EN samples: part 0 (EN, 1, 3, 3), patches (EN, 1, 2, 2). */
static float g_part0[EN * 9], g_patch[EG][EN * 4];
static const int64_t g_items[EN] = {40, 7, 19};

static void fill_parts(void) {
    ct_rng r;
    ct_rng_init(&r, 99, 0);
    for (int i = 0; i < EN * 9; i++) g_part0[i] = ct_rng_uniform_range(&r, -1, 1);
    for (int k = 0; k < EG; k++)
        for (int i = 0; i < EN * 4; i++) g_patch[k][i] = ct_rng_uniform_range(&r, -1, 1);
}

static ct_batch make_batch(ct_graph *g, ct_tensor **parts) {
    ct_batch b;
    memset(&b, 0, sizeof b);
    b.n = EN;
    b.n_views = 1 + EG;
    b.items = g_items;
    b.weight = 1;
    int64_t s0[4] = {EN, 1, 3, 3}, sp[4] = {EN, 1, 2, 2};
    b.views[0] = parts ? parts[0] : ct_tensor_wrap(g, g_part0, 4, s0);
    for (int k = 0; k < EG; k++) b.views[1 + k] = parts ? parts[1 + k] : ct_tensor_wrap(g, g_patch[k], 4, sp);
    return b;
}

static void tenc_by_hand(const float *px, int n, float *out) {
    double s = 0;
    for (int i = 0; i < n; i++) s += px[i];
    for (int d = 0; d < TD; d++) out[d] = tanhf(g_enc_w[d] * (float)(s / n) + g_enc_b[d]);
}

/* Set 1 of sample i by hand: the projections of its patches concatenated
 * in part order, then the aggregation layer. */
static void aggregate_by_hand(const ct_params *store, const char *prefix, int i, float *out) {
    char n[4][64];
    const char *f[4] = {"patch_proj.weight", "patch_proj.bias", "agg.weight", "agg.bias"};
    const ct_tensor *t[4];
    for (int j = 0; j < 4; j++) {
        snprintf(n[j], sizeof n[j], "%s%s", prefix, f[j]);
        t[j] = ct_params_find(store, n[j]);
        ck_assert_ptr_nonnull(t[j]);
    }
    float cat[EG * 5];
    for (int k = 0; k < EG; k++) {
        float feat[TD];
        tenc_by_hand(g_patch[k] + i * 4, 4, feat);
        for (int p = 0; p < 5; p++) {
            float s = t[1]->data[p];
            for (int d = 0; d < TD; d++) s += t[0]->data[p * TD + d] * feat[d];
            cat[k * 5 + p] = s;
        }
    }
    for (int d = 0; d < TD; d++) {
        float s = t[3]->data[d];
        for (int c = 0; c < EG * 5; c++) s += t[2]->data[d * EG * 5 + c] * cat[c];
        out[d] = s;
    }
}

START_TEST(test_embed_matches_hand_computation) {
    model m;
    model_new(&m, true);
    fill_parts();
    /* Different key-side values, to see which side's layers are used. */
    ct_tensor *kw = ct_params_find(m.store, "key_jigsaw.agg.weight");
    for (int64_t i = 0; i < kw->numel; i++) kw->data[i] = 0.01f * (float)(i % 7) - 0.03f;
    for (int side = 0; side < 2; side++) {
        ct_batch b = make_batch(m.g, NULL);
        ct_embeddings e;
        ck_assert_msg(m.f.ops->embed(m.f.self, m.g, &b, &tenc, (ct_embed_side)side, CT_ALL_SETS, &e) == CT_OK, "%s",
                      ct_graph_error(m.g));
        ck_assert_int_eq(e.n_sets, 2);
        ck_assert_int_eq(e.rows, EN);
        ck_assert_int_eq(e.rows_per_sample, 1);
        ck_assert_int_ne(e.set_group[0], e.set_group[1]);
        for (int s = 0; s < 2; s++) {
            ck_assert_int_eq(e.set[s]->ndim, 2);
            ck_assert_int_eq(e.set[s]->shape[0], EN);
            ck_assert_int_eq(e.set[s]->shape[1], TD);
        }
        for (int i = 0; i < EN; i++) {
            ck_assert_int_eq(e.items[i], g_items[i]);
            ck_assert_int_eq(e.groups[i], i);
            float want0[TD], want1[TD];
            tenc_by_hand(g_part0 + i * 9, 9, want0);
            aggregate_by_hand(m.store, side ? "key_jigsaw." : "jigsaw.", i, want1);
            for (int d = 0; d < TD; d++) {
                ck_assert_float_eq_tol(e.set[0]->data[i * TD + d], want0[d], 1e-5);
                ck_assert_float_eq_tol(e.set[1]->data[i * TD + d], want1[d], 1e-5);
            }
        }
        ct_graph_reset(m.g);
    }
    /* Only the sets asked for are made. */
    ct_batch b = make_batch(m.g, NULL);
    ct_embeddings e;
    ck_assert_int_eq(m.f.ops->embed(m.f.self, m.g, &b, &tenc, CT_SIDE_QUERY, CT_SET(1), &e), CT_OK);
    ck_assert_ptr_null(e.set[0]);
    ck_assert_ptr_nonnull(e.set[1]);
    ck_assert_int_eq(m.f.ops->embed(m.f.self, m.g, &b, &tenc, CT_SIDE_QUERY, CT_SET(0), &e), CT_OK);
    ck_assert_ptr_nonnull(e.set[0]);
    ck_assert_ptr_null(e.set[1]);
    ct_graph_reset(m.g);
    model_free(&m);
}
END_TEST

START_TEST(test_embed_refusals) {
    model m;
    model_new(&m, false);
    fill_parts();
    ct_batch b = make_batch(m.g, NULL);
    ct_embeddings e;
    /* The key side was never declared. */
    ck_assert_int_eq(m.f.ops->embed(m.f.self, m.g, &b, &tenc, CT_SIDE_KEY, CT_ALL_SETS, &e), CT_ERR_PLUGIN);
    ck_assert_msg(strstr(ct_graph_error(m.g), "key side"), "%s", ct_graph_error(m.g));
    ct_graph_reset(m.g);
    /* A batch of the wrong number of parts. */
    b = make_batch(m.g, NULL);
    b.n_views = 3;
    ck_assert_int_eq(m.f.ops->embed(m.f.self, m.g, &b, &tenc, CT_SIDE_QUERY, CT_ALL_SETS, &e), CT_ERR_INVALID);
    ck_assert_msg(strstr(ct_graph_error(m.g), "5 parts"), "%s", ct_graph_error(m.g));
    ct_graph_reset(m.g);
    /* An encoder of another width than the layers were declared for. */
    ct_encoder wide = tenc;
    wide.dim = TD + 1;
    b = make_batch(m.g, NULL);
    ck_assert_int_eq(m.f.ops->embed(m.f.self, m.g, &b, &wide, CT_SIDE_QUERY, CT_ALL_SETS, &e), CT_ERR_SHAPE);
    ct_graph_reset(m.g);
    model_free(&m);
}
END_TEST

static model *g_model;

static ct_tensor *embed_both(ct_graph *g, ct_tensor **in, void *ctx) {
    (void)ctx;
    ct_batch b = make_batch(g, in);
    ct_embeddings e;
    if (g_model->f.ops->embed(g_model->f.self, g, &b, &tenc, CT_SIDE_QUERY, CT_ALL_SETS, &e) != CT_OK) return NULL;
    return ct_concat(g, e.set, 2, 0);
}

/* L = sum of c_j * out_j over both sets, c fixed, accumulated in double. */
static double weighted_sum(const ct_tensor *y) {
    double s = 0;
    for (int64_t j = 0; j < y->numel; j++) s += y->data[j] * (0.3 + 0.1 * (double)(j % 5));
    return s;
}

START_TEST(test_gradients) {
    model m;
    model_new(&m, false);
    fill_parts();
    g_model = &m;
    /* Inputs: every part. */
    int64_t s0[4] = {EN, 1, 3, 3}, sp[4] = {EN, 1, 2, 2};
    ct_tensor *in[1 + EG];
    in[0] = ct_gradcheck_input(4, s0, 1);
    for (int k = 0; k < EG; k++) in[1 + k] = ct_gradcheck_input(4, sp, (uint64_t)(2 + k));
    char report[1024];
    int bad = ct_gradcheck(embed_both, in, 1 + EG, NULL, 1e-3, 1e-2, report, sizeof report);
    ck_assert_msg(bad == 0, "%s", report);
    for (int k = 0; k <= EG; k++) ct_gradcheck_input_free(in[k]);

    /* The layers: analytic gradients of L against central differences. */
    ct_batch b = make_batch(m.g, NULL);
    ct_embeddings e;
    ck_assert_int_eq(m.f.ops->embed(m.f.self, m.g, &b, &tenc, CT_SIDE_QUERY, CT_ALL_SETS, &e), CT_OK);
    ct_tensor *y = ct_concat(m.g, e.set, 2, 0);
    ct_tensor *c = ct_tensor_new(m.g, y->ndim, y->shape);
    for (int64_t j = 0; j < y->numel; j++) c->data[j] = (float)(0.3 + 0.1 * (double)(j % 5));
    ct_tensor *l = ct_sum(m.g, ct_mul(m.g, y, c));
    ct_params_zero_grad(m.store);
    ck_assert_msg(l && ct_graph_backward(m.g, l) == CT_OK, "%s", ct_graph_error(m.g));
    ct_graph_reset(m.g);
    const char *names[4] = {"jigsaw.patch_proj.weight", "jigsaw.patch_proj.bias", "jigsaw.agg.weight",
                            "jigsaw.agg.bias"};
    for (int t = 0; t < 4; t++) {
        ct_tensor *w = ct_params_find(m.store, names[t]);
        for (int64_t j = 0; j < w->numel; j++) {
            float keep = w->data[j];
            double lv[2];
            for (int s = 0; s < 2; s++) {
                w->data[j] = keep + (s ? -1e-3f : 1e-3f);
                ct_batch bb = make_batch(m.g, NULL);
                ck_assert_int_eq(m.f.ops->embed(m.f.self, m.g, &bb, &tenc, CT_SIDE_QUERY, CT_ALL_SETS, &e), CT_OK);
                lv[s] = weighted_sum(ct_concat(m.g, e.set, 2, 0));
                ct_graph_reset(m.g);
            }
            w->data[j] = keep;
            double num = (lv[0] - lv[1]) / 2e-3, ana = w->grad[j];
            ck_assert_msg(fabs(num - ana) <= 1e-2 * fmax(1.0, fmax(fabs(num), fabs(ana))), "%s[%lld]: %g vs %g",
                          names[t], (long long)j, ana, num);
        }
    }
    model_free(&m);
}
END_TEST

/* ---- training through build/contrast, each architecture ----------------------------------- */

#define RUN_STEPS 5

static char g_out[1 << 16];

static void cli(int want_rc, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(want_rc ? rc != 0 : rc == 0, "`%s` exited %d:\n%s", cmd, rc, g_out);
}

/* A 64-image jigsaw experiment with a small encoder and `arch` as its
 * architecture group, written to dir/name.cfg. */
static void write_config(const char *dir, const char *name, const char *arch, const char *structure, char *path,
                         size_t n) {
    char text[4096];
    snprintf(text, sizeof text,
             "seed = 0;\n"
             "data = { train = { type = \"idx\";\n"
             "  images = \"/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz\";\n"
             "  labels = \"/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz\"; limit = 64; }; };\n"
             "encoder = { type = \"resnet\"; block = \"basic\"; in_channels = 1; stem = \"small\"; stem_width = 8;\n"
             "  blocks = [1, 1, 1]; widths = [8, 16, 32]; };\n"
             "pipelines = ( { data = \"train\";\n"
             "  views = ( { count = 1; transforms = (\n"
             "      { type = \"random_resized_crop\"; size = [28]; scale = [0.3, 1.0]; },\n"
             "      { type = \"normalize\"; mean = [0.2860]; std = [0.3530]; } ); },\n"
             "    { count = 1; transforms = (\n"
             "      { type = \"color_jitter\"; brightness = 0.4; contrast = 0.4; saturation = 0.0; hue = 0.0; },\n"
             "      { type = \"normalize\"; mean = [0.2860]; std = [0.3530]; } ); } );\n"
             "  structure = %s; } );\n"
             "architecture = %s;\n"
             "optimizer = { type = \"adamw\"; lr = 2e-3; weight_decay = 0.0; };\n"
             "train = { epochs = 2; batch_size = 16; threads = 1; max_steps = %d; log_every = 1; keep = 0; };\n",
             structure, arch, RUN_STEPS);
    snprintf(path, n, "%s/%s.cfg", dir, name);
    ck_assert_int_eq(ct_test_write_file(path, text, strlen(text)), 0);
}

/* Per-step losses from a run's metrics.jsonl (as printed), by step. */
static int read_losses(const char *run, char losses[][32], int max) {
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        long long step;
        if (!strstr(line, "\"type\": \"step\"")) continue;
        const char *s = strstr(line, "\"step\": "), *l = strstr(line, "\"loss\": ");
        ck_assert(s && l);
        ck_assert_int_eq(sscanf(s, "\"step\": %lld", &step), 1);
        ck_assert_msg(step >= 0 && step < max, "step %lld", step);
        ck_assert_int_eq(sscanf(l, "\"loss\": %31[^,}]", losses[step]), 1);
        if (step + 1 > n) n = (int)step + 1;
    }
    fclose(f);
    return n;
}

static ct_safetensors *open_final(const char *run) {
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint-s%08d.safetensors", run, RUN_STEPS);
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_open(path, &f, &err) == CT_OK, "%s", err.msg);
    return f;
}

/* Both checkpoints hold the same tensors byte for byte. */
static void same_checkpoints(const ct_safetensors *a, const ct_safetensors *b) {
    ck_assert_int_eq(ct_safetensors_count(a), ct_safetensors_count(b));
    for (size_t i = 0; i < ct_safetensors_count(a); i++) {
        const ct_safetensors_tensor *x = ct_safetensors_at(a, i), *y = ct_safetensors_find(b, x->name);
        ck_assert_msg(y != NULL && x->nbytes == y->nbytes, "%s missing from the resumed checkpoint", x->name);
        ck_assert_msg(memcmp(x->data, y->data, x->nbytes) == 0, "%s differs after resume", x->name);
    }
}

/* Train RUN_STEPS steps; then the same cut after 3 steps and resumed: the
 * losses are finite and change, both runs agree at every step and in
 * every checkpoint tensor; the jigsaw layers are in the checkpoint and
 * trained (and, for momentum, their key copies, kept apart). */
static void train_and_resume(const char *name, const char *arch, bool key_side) {
    const char *dir = ct_test_tmpdir();
    char cfg[1024];
    write_config(dir, name, arch, "{ type = \"jigsaw\"; }", cfg, sizeof cfg);
    cli(0, "%s/contrast train %s --run-dir %s/full", ct_test_build_dir(), cfg, dir);
    cli(0, "%s/contrast train %s --run-dir %s/cut --stop-after 3", ct_test_build_dir(), cfg, dir);
    cli(0, "%s/contrast train %s --resume %s/cut", ct_test_build_dir(), cfg, dir);
    ck_assert_msg(strstr(g_out, "resuming") && strstr(g_out, "at step 3"), "%s", g_out);
    static char a[16][32], b[16][32];
    char run[1100];
    snprintf(run, sizeof run, "%s/full", dir);
    ck_assert_int_eq(read_losses(run, a, 16), RUN_STEPS);
    snprintf(run, sizeof run, "%s/cut", dir);
    ck_assert_int_eq(read_losses(run, b, 16), RUN_STEPS);
    bool changed = false;
    for (int i = 0; i < RUN_STEPS; i++) {
        ck_assert_msg(isfinite(atof(a[i])), "%s: step %d loss %s", name, i, a[i]);
        ck_assert_msg(strcmp(a[i], b[i]) == 0, "%s: step %d: %s vs %s after resume", name, i, a[i], b[i]);
        if (i && strcmp(a[i], a[0]) != 0) changed = true;
    }
    ck_assert_msg(changed, "%s: the loss never changed (%s)", name, a[0]);
    snprintf(run, sizeof run, "%s/full", dir);
    ct_safetensors *fa = open_final(run);
    snprintf(run, sizeof run, "%s/cut", dir);
    ct_safetensors *fb = open_final(run);
    same_checkpoints(fa, fb);
    ck_assert_ptr_nonnull(ct_safetensors_find(fa, "jigsaw.patch_proj.weight"));
    ck_assert_ptr_nonnull(ct_safetensors_find(fa, "jigsaw.agg.bias"));
    const ct_safetensors_tensor *q = ct_safetensors_find(fa, "jigsaw.agg.weight");
    const ct_safetensors_tensor *k = ct_safetensors_find(fa, "key_jigsaw.agg.weight");
    ck_assert_ptr_nonnull(q);
    if (key_side) {
        /* The key copy is a moving average: present, not the query's. */
        ck_assert_msg(k && k->nbytes == q->nbytes, "%s: no key_jigsaw.agg.weight", name);
        ck_assert_msg(memcmp(k->data, q->data, q->nbytes) != 0, "%s: key layers equal the query layers", name);
    } else {
        ck_assert_ptr_null(k);
    }
    ct_safetensors_close(fa);
    ct_safetensors_close(fb);
}

START_TEST(test_train_end_to_end) {
    train_and_resume("end_to_end", "{ type = \"end_to_end\"; temperature = 0.5; head_hidden = [32]; head_out = 16; }",
                     false);
}
END_TEST

START_TEST(test_train_memory_bank) {
    train_and_resume("memory_bank",
                     "{ type = \"memory_bank\"; loss = \"infonce\"; temperature = 0.2; negatives = 16; "
                     "batch_negatives = true; init = \"first_seen\"; lambda = 0.5; head_hidden = [32]; "
                     "head_out = 16; }",
                     false);
}
END_TEST

START_TEST(test_train_momentum) {
    train_and_resume("momentum",
                     "{ type = \"momentum\"; temperature = 0.2; queue_size = 40; momentum = 0.9; shuffle_splits = 2; "
                     "head_hidden = [32]; head_out = 16; }",
                     true);
}
END_TEST

START_TEST(test_train_clustering) {
    train_and_resume("clustering",
                     "{ type = \"clustering\"; prototypes = 10; n_code_views = 2; freeze_prototypes_steps = 1; "
                     "head_hidden = [32]; head_out = 16; }",
                     false);
}
END_TEST

/* contrast check names the structure, its counts and its plugin file. */
START_TEST(test_check_lists_structure) {
    const char *dir = ct_test_tmpdir();
    char cfg[1024];
    write_config(dir, "ok", "{ type = \"end_to_end\"; }", "{ type = \"jigsaw\"; grid = 2; patch = 12; }", cfg,
                 sizeof cfg);
    cli(0, "%s/contrast check %s", ct_test_build_dir(), cfg);
    ck_assert_msg(strstr(g_out, "structure=jigsaw parts=5 sets=2"), "%s", g_out);
    ck_assert_msg(strstr(g_out, "pipelines[0].structure") && strstr(g_out, "jigsaw.so"), "%s", g_out);
}
END_TEST

/* contrast check refuses a bad jigsaw group by its config path. */
START_TEST(test_check_refuses_bad_group) {
    const char *dir = ct_test_tmpdir();
    char cfg[1024];
    write_config(dir, "bad", "{ type = \"end_to_end\"; }", "{ type = \"jigsaw\"; grid = 3; patch = 11; }", cfg,
                 sizeof cfg);
    cli(1, "%s/contrast check %s", ct_test_build_dir(), cfg);
    ck_assert_msg(strstr(g_out, "pipelines[0].structure") && strstr(g_out, "jigsaw") && strstr(g_out, "patch = 11"),
                  "%s", g_out);
}
END_TEST

static Suite *jigsaw_suite(void) {
    Suite *s = suite_create("jigsaw");
    TCase *tc = tcase_create("sampling");
    tcase_add_test(tc, test_parts_shapes_cells_and_permutation);
    tcase_add_test(tc, test_determinism_by_key);
    tcase_add_test(tc, test_crop_is_resized);
    tcase_add_test(tc, test_bad_settings_refused);
    tcase_add_test(tc, test_info);
    suite_add_tcase(s, tc);
    tc = tcase_create("embedding");
    tcase_add_test(tc, test_declared_names);
    tcase_add_test(tc, test_embed_matches_hand_computation);
    tcase_add_test(tc, test_embed_refusals);
    tcase_add_test(tc, test_gradients);
    suite_add_tcase(s, tc);
    tc = tcase_create("training");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_train_end_to_end);
    tcase_add_test(tc, test_train_memory_bank);
    tcase_add_test(tc, test_train_momentum);
    tcase_add_test(tc, test_train_clustering);
    tcase_add_test(tc, test_check_lists_structure);
    tcase_add_test(tc, test_check_refuses_bad_group);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(jigsaw_suite()); }

/* The clip encoder (ct_clip_resnet, plugin clip_resnet): shapes, PyTorch
 * names, frame order matters (shuffled or reversed frames change a clip's
 * embedding, and only that clip's), the control without a temporal part
 * (order does not matter), images as one-frame clips that reach only the
 * temporal convolutions' centre tap, training mode's
 * gradients reaching the temporal weights, and bad configurations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/models.h>

#include "ct_data_test.h"
#include "ct_test.h"

enum { N = 3, T = 4, C = 1, H = 12, W = 12 };

typedef struct model {
    ct_params *store;
    ct_clip_resnet *m;
    ct_graph *g;
} model;

static void model_new(model *md, int temporal_layers, int ks) {
    ct_clip_resnet_config c;
    memset(&c, 0, sizeof c);
    c.trunk.block = CT_RESNET_BASIC;
    c.trunk.n_stages = 2;
    c.trunk.blocks[0] = c.trunk.blocks[1] = 1;
    c.trunk.widths[0] = 4;
    c.trunk.widths[1] = 8;
    c.trunk.in_channels = C;
    c.trunk.stem_width = 4;
    c.temporal_layers = temporal_layers;
    c.temporal_kernel = 3;
    c.spatial_kernel = ks;
    ct_error err = CT_ERROR_INIT;
    md->store = ct_params_new(7);
    ck_assert_msg(ct_clip_resnet_new(&c, md->store, "encoder.", &md->m, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(ct_params_finalize(md->store, &err), CT_OK);
    md->g = ct_graph_new(0);
}

static void model_free(model *md) {
    ct_graph_free(md->g);
    ct_clip_resnet_free(md->m);
    ct_params_free(md->store);
}

/* Moving bright square: clip n's frame t has it at column 2 + 2t (+n). */
static void make_clips(float *x) {
    memset(x, 0, sizeof(float) * N * T * C * H * W);
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++)
            for (int y = 4; y < 8; y++)
                for (int dx = 0; dx < 3; dx++) x[((n * T + t) * C) * H * W + y * W + 1 + 2 * t + n + dx] = 1.0f;
}

/* Embeddings of x (eval mode) into out (N x dim). */
static void embed(model *md, const float *x, int ndim, const int64_t *shape, float *out) {
    ct_graph_reset(md->g);
    ct_graph_set_train(md->g, false);
    ct_tensor *in = ct_tensor_new(md->g, ndim, shape);
    memcpy(in->data, x, sizeof(float) * (size_t)in->numel);
    ct_tensor *e = ct_clip_resnet_forward(md->m, md->g, in);
    ck_assert_msg(e != NULL, "%s", ct_graph_error(md->g));
    ck_assert_int_eq(e->ndim, 2);
    ck_assert_int_eq(e->shape[0], shape[0]);
    memcpy(out, e->data, sizeof(float) * (size_t)e->numel);
}

static double max_diff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Frames of clip 0 reordered by perm. */
static void reorder(const float *x, const int *perm, float *y) {
    size_t f = (size_t)C * H * W;
    memcpy(y, x, sizeof(float) * N * T * f);
    for (int t = 0; t < T; t++) memcpy(y + t * f, x + perm[t] * f, sizeof(float) * f);
}

START_TEST(names_and_shapes) {
    model md;
    model_new(&md, 2, 3);
    ck_assert_int_eq(ct_clip_resnet_out_dim(md.m), 8);
    const char *names[] = {"encoder.conv1.weight", "encoder.bn1.running_mean", "encoder.layer2.0.downsample.0.weight",
                           "encoder.temporal.0.conv.weight", "encoder.temporal.1.bn.weight",
                           "encoder.temporal.1.bn.running_var", "encoder.temporal.1.bn.num_batches_tracked"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        ck_assert_msg(ct_params_find(md.store, names[i]) != NULL, "no %s", names[i]);
    const ct_tensor *w = ct_params_find(md.store, "encoder.temporal.0.conv.weight");
    ck_assert_int_eq(w->ndim, 5);
    int64_t want[5] = {8, 8, 3, 3, 3};
    for (int d = 0; d < 5; d++) ck_assert_int_eq(w->shape[d], want[d]);
    ck_assert_int_eq(ct_params_find(md.store, "encoder.temporal.1.bn.num_batches_tracked")->ndim, 0);
    model_free(&md);
}
END_TEST

START_TEST(frame_order_changes_the_embedding) {
    model md;
    model_new(&md, 1, 1);
    float *x = malloc(sizeof(float) * N * T * C * H * W), *y = malloc(sizeof(float) * N * T * C * H * W);
    make_clips(x);
    int64_t shape[5] = {N, T, C, H, W};
    float e0[N * 8], e1[N * 8];
    embed(&md, x, 5, shape, e0);
    const int shuffled[T] = {2, 0, 3, 1}, reversed[T] = {3, 2, 1, 0};
    const int *perms[2] = {shuffled, reversed};
    for (int p = 0; p < 2; p++) {
        reorder(x, perms[p], y);
        embed(&md, y, 5, shape, e1);
        double scale = max_diff(e0, e0 + 8, 8) + 1e-6; /* how far two different clips lie */
        ck_assert_msg(max_diff(e0, e1, 8) > 1e-3 * scale && max_diff(e0, e1, 8) > 1e-5,
                      "%s frames: clip 0's embedding moved by only %g", p ? "reversed" : "shuffled", max_diff(e0, e1, 8));
        ck_assert_msg(max_diff(e0 + 8, e1 + 8, 2 * 8) == 0.0, "other clips must not change");
    }
    free(x);
    free(y);
    model_free(&md);
}
END_TEST

/* The control: without temporal layers the embedding is the mean of the
 * frames' maps, so frame order does not matter. */
START_TEST(no_temporal_part_ignores_order) {
    model md;
    model_new(&md, 0, 1);
    float *x = malloc(sizeof(float) * N * T * C * H * W), *y = malloc(sizeof(float) * N * T * C * H * W);
    make_clips(x);
    int64_t shape[5] = {N, T, C, H, W};
    float e0[N * 8], e1[N * 8];
    embed(&md, x, 5, shape, e0);
    const int reversed[T] = {3, 2, 1, 0};
    reorder(x, reversed, y);
    embed(&md, y, 5, shape, e1);
    ck_assert_msg(max_diff(e0, e1, N * 8) < 1e-5, "moved by %g", max_diff(e0, e1, N * 8));
    free(x);
    free(y);
    model_free(&md);
}
END_TEST

START_TEST(images_are_one_frame_clips) {
    model md;
    model_new(&md, 1, 3);
    float *x = malloc(sizeof(float) * N * T * C * H * W);
    make_clips(x);
    /* the first frame of each clip, as images (N,C,H,W) and as clips (N,1,C,H,W) */
    float *img = malloc(sizeof(float) * N * C * H * W);
    for (int n = 0; n < N; n++) memcpy(img + n * C * H * W, x + n * T * C * H * W, sizeof(float) * C * H * W);
    int64_t s4[4] = {N, C, H, W}, s5[5] = {N, 1, C, H, W};
    float a[N * 8], b[N * 8];
    embed(&md, img, 4, s4, a);
    embed(&md, img, 5, s5, b);
    ck_assert_mem_eq(a, b, sizeof a);
    free(x);
    free(img);
    model_free(&md);
}
END_TEST

/* One encoder for images and clips (mixed pipelines): an image reaches
 * only the centre tap of a temporal convolution (the others meet its zero
 * padding), so zeroing the outer taps leaves images' embeddings as they
 * were while clips' change; the image path uses the clips' weights. */
START_TEST(images_use_the_centre_tap) {
    model md;
    model_new(&md, 1, 3);
    float *x = malloc(sizeof(float) * N * T * C * H * W);
    make_clips(x);
    int64_t s4[4] = {N, C, H, W}, s5[5] = {N, T, C, H, W};
    float img0[N * 8], img1[N * 8], clip0[N * 8], clip1[N * 8];
    embed(&md, x, 4, s4, img0); /* the first N frames as images */
    embed(&md, x, 5, s5, clip0);
    ct_tensor *w = ct_params_find(md.store, "encoder.temporal.0.conv.weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->ndim, 5);
    int64_t kt = w->shape[2], taps = w->shape[3] * w->shape[4], per = kt * taps;
    for (int64_t oi = 0; oi < w->shape[0] * w->shape[1]; oi++)
        for (int64_t t = 0; t < kt; t++)
            if (t != kt / 2) memset(w->data + oi * per + t * taps, 0, sizeof(float) * (size_t)taps);
    embed(&md, x, 4, s4, img1);
    embed(&md, x, 5, s5, clip1);
    ck_assert_mem_eq(img0, img1, sizeof img0);
    ck_assert_msg(max_diff(clip0, clip1, N * 8) > 1e-4, "clips ignored the outer taps (%g)", max_diff(clip0, clip1, N * 8));
    free(x);
    model_free(&md);
}
END_TEST

START_TEST(training_reaches_temporal_weights) {
    model md;
    model_new(&md, 1, 3);
    float *x = malloc(sizeof(float) * N * T * C * H * W);
    make_clips(x);
    int64_t shape[5] = {N, T, C, H, W};
    ct_tensor *in = ct_tensor_new(md.g, 5, shape);
    memcpy(in->data, x, sizeof(float) * (size_t)in->numel);
    ct_params_zero_grad(md.store);
    ct_tensor *e = ct_clip_resnet_forward(md.m, md.g, in);
    ck_assert_msg(e != NULL, "%s", ct_graph_error(md.g));
    ct_tensor *l = ct_sum(md.g, ct_mul(md.g, e, e));
    ck_assert_int_eq(ct_graph_backward(md.g, l), CT_OK);
    const ct_tensor *w = ct_params_find(md.store, "encoder.temporal.0.conv.weight");
    double s = 0;
    for (int64_t i = 0; i < w->numel; i++) {
        ck_assert(isfinite(w->grad[i]));
        s += fabs(w->grad[i]);
    }
    ck_assert_msg(s > 0, "no gradient reached the temporal convolution");
    ck_assert_float_eq(ct_params_find(md.store, "encoder.temporal.0.bn.num_batches_tracked")->data[0], 1.0f);
    free(x);
    model_free(&md);
}
END_TEST

START_TEST(bad_configs_and_inputs) {
    ct_clip_resnet_config c;
    memset(&c, 0, sizeof c);
    c.trunk = ct_resnet18_config(1);
    c.temporal_layers = 1;
    c.temporal_kernel = 2;
    c.spatial_kernel = 1;
    ct_params *store = ct_params_new(0);
    ct_clip_resnet *m = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_clip_resnet_new(&c, store, "", &m, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "odd"), "%s", err.msg);
    ct_params_free(store);
    model md;
    model_new(&md, 1, 1);
    ct_tensor *x3 = ct_tensor_new(md.g, 3, (int64_t[]){2, 12, 12});
    ck_assert_ptr_null(ct_clip_resnet_forward(md.m, md.g, x3));
    ck_assert_msg(strstr(ct_graph_error(md.g), "clips (N,T,C,H,W)"), "%s", ct_graph_error(md.g));
    model_free(&md);
    /* through the plugin: even kernels are refused naming the key */
    ct_registry *reg = ct_registry_new();
    dt_load_plugin(reg, "clip_resnet");
    const ct_registry_entry *e = ct_registry_find(reg, CT_ROLE_ENCODER, "clip_resnet");
    ck_assert_ptr_nonnull(e);
    ct_settings *s = NULL;
    ck_assert_int_eq(ct_settings_parse(e->ops.encoder->params, "temporal_kernel = 4;", "clip_resnet", &s, &err), CT_OK);
    ct_encoder_input in = {1, 12, 12, 4};
    store = ct_params_new(0);
    void *self = NULL;
    ck_assert_int_eq(e->ops.encoder->create(s, dt_host(), &in, store, "encoder.", &self, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "temporal_kernel") && strstr(err.msg, "odd"), "%s", err.msg);
    ct_settings_free(s);
    ct_params_free(store);
    ct_registry_free(reg);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("clip_resnet");
    TCase *tc = tcase_create("clip_resnet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, names_and_shapes);
    tcase_add_test(tc, frame_order_changes_the_embedding);
    tcase_add_test(tc, no_temporal_part_ignores_order);
    tcase_add_test(tc, images_are_one_frame_clips);
    tcase_add_test(tc, images_use_the_centre_tap);
    tcase_add_test(tc, training_reaches_temporal_weights);
    tcase_add_test(tc, bad_configs_and_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

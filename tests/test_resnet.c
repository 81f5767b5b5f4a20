/* The ResNet builder (contrast/models.h) and the `resnet` encoder plugin:
 * torchvision parameter names and counts (ResNet-18: 11,176,512 trainable
 * without fc), the reference model of the benchmark, output shapes, train
 * vs eval batch norm, running statistics, gradients reaching every
 * parameter, and the plugin's settings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/models.h>

#include "ct_test.h"
#include "plugins/loader.h"

static size_t count_trainable(const ct_params *p) {
    size_t total = 0;
    for (size_t i = 0; i < ct_params_count(p); i++) {
        ct_param_kind kind;
        ct_tensor *t = ct_params_at(p, i, NULL, &kind, NULL);
        if (kind == CT_PARAM_TRAINABLE) total += (size_t)t->numel;
    }
    return total;
}

static ct_resnet_config reference_config(void) {
    ct_resnet_config c;
    memset(&c, 0, sizeof c);
    c.block = CT_RESNET_BASIC;
    c.n_stages = 3;
    for (int i = 0; i < 3; i++) c.blocks[i] = 1, c.widths[i] = 32 << i;
    c.in_channels = 1, c.stem_width = 32;
    return c;
}

START_TEST(resnet18_count_and_names) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(0);
    ct_resnet *r = NULL;
    ct_resnet_config c = ct_resnet18_config(3);
    ck_assert_int_eq(ct_resnet_new(&c, p, "", &r, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ck_assert_uint_eq(count_trainable(p), 11176512u);
    ck_assert_int_eq(ct_resnet_out_dim(r), 512);
    const char *names[] = {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                           "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.1.bn2.running_var",
                           "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean",
                           "layer4.1.conv2.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        ck_assert_msg(ct_params_find(p, names[i]) != NULL, "missing %s", names[i]);
    ck_assert_ptr_null(ct_params_find(p, "layer1.0.downsample.0.weight")); /* same width, stride 1 */
    ct_tensor *w = ct_params_find(p, "conv1.weight");
    ck_assert_int_eq(w->shape[0], 64);
    ck_assert_int_eq(w->shape[1], 3);
    ck_assert_int_eq(w->shape[2], 7);
    /* kaiming normal, fan_out = 64*49: std sqrt(2/3136) ~ 0.0253 */
    double ss = 0;
    for (int64_t i = 0; i < w->numel; i++) ss += (double)w->data[i] * w->data[i];
    double sd = sqrt(ss / (double)w->numel);
    ck_assert_msg(fabs(sd - sqrt(2.0 / 3136.0)) < 0.003, "conv1 std %g", sd);
    ck_assert_float_eq(ct_params_find(p, "bn1.weight")->data[0], 1.0f);
    ck_assert_float_eq(ct_params_find(p, "bn1.running_var")->data[5], 1.0f);
    ct_resnet_free(r);
    ct_params_free(p);
}
END_TEST

START_TEST(bottleneck_resnet50_count) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(0);
    ct_resnet *r = NULL;
    ct_resnet_config c = ct_resnet18_config(3);
    c.block = CT_RESNET_BOTTLENECK;
    int b[4] = {3, 4, 6, 3};
    memcpy(c.blocks, b, sizeof b);
    ck_assert_int_eq(ct_resnet_new(&c, p, "", &r, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    /* torchvision resnet50: 25,557,032 with fc (2048*1000 + 1000). */
    ck_assert_uint_eq(count_trainable(p), 25557032u - 2049000u);
    ck_assert_int_eq(ct_resnet_out_dim(r), 2048);
    ck_assert_ptr_nonnull(ct_params_find(p, "layer1.0.downsample.0.weight")); /* 64 -> 256 */
    ck_assert_ptr_nonnull(ct_params_find(p, "layer3.5.conv3.weight"));
    ct_resnet_free(r);
    ct_params_free(p);
}
END_TEST

START_TEST(reference_model) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(0);
    ct_resnet *r = NULL;
    ct_resnet_config c = reference_config();
    ck_assert_int_eq(ct_resnet_new(&c, p, "encoder.", &r, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    /* conv1 288 + bn 64; layer1 2*9216 + 2*64; layer2 18432+36864+2048 + 3*128;
     * layer3 73728+147456+8192 + 3*256 */
    size_t want = 288 + 64 + (2 * 9216 + 128) + (18432 + 36864 + 2048 + 384) + (73728 + 147456 + 8192 + 768);
    ck_assert_uint_eq(count_trainable(p), want);
    ck_assert_ptr_nonnull(ct_params_find(p, "encoder.layer3.0.downsample.1.num_batches_tracked"));
    ck_assert_ptr_null(ct_params_find(p, "encoder.layer1.0.downsample.0.weight"));

    ct_graph *g = ct_graph_new(0);
    int64_t xs[4] = {6, 1, 28, 28};
    ct_tensor *x = ct_tensor_new(g, 4, xs);
    ct_rng rng;
    ct_rng_init(&rng, 1, 2);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = ct_rng_uniform(&rng);
    ct_tensor *y = ct_resnet_forward(r, g, x);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    ck_assert_int_eq(y->ndim, 2);
    ck_assert_int_eq(y->shape[0], 6);
    ck_assert_int_eq(y->shape[1], 128);
    float train_out[6 * 128];
    memcpy(train_out, y->data, sizeof train_out);
    /* Training mode updated the running statistics and the counters. */
    ck_assert_float_eq(ct_params_find(p, "encoder.bn1.num_batches_tracked")->data[0], 1.0f);
    ck_assert_float_ne(ct_params_find(p, "encoder.bn1.running_mean")->data[0], 0.0f);
    /* Every trainable tensor gets a gradient. */
    ck_assert_int_eq(ct_graph_backward(g, ct_sum(g, ct_mul(g, y, y))), CT_OK);
    for (size_t i = 0; i < ct_params_count(p); i++) {
        const char *name;
        ct_param_kind kind;
        ct_tensor *t = ct_params_at(p, i, &name, &kind, NULL);
        if (kind != CT_PARAM_TRAINABLE) continue;
        double s = 0;
        for (int64_t k = 0; k < t->numel; k++) s += fabs(t->grad[k]);
        ck_assert_msg(s > 0, "no gradient reached %s", name);
    }
    /* Eval mode uses the running statistics: a different output, and it
     * leaves them alone. */
    ct_graph_reset(g);
    ct_graph_set_train(g, false);
    x = ct_tensor_new(g, 4, xs);
    ct_rng_init(&rng, 1, 2);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = ct_rng_uniform(&rng);
    float rm = ct_params_find(p, "encoder.bn1.running_mean")->data[0];
    y = ct_resnet_forward(r, g, x);
    ck_assert_ptr_nonnull(y);
    double diff = 0;
    for (int i = 0; i < 6 * 128; i++) diff += fabs(y->data[i] - train_out[i]);
    ck_assert_msg(diff > 1e-3, "train and eval outputs agree (diff %g)", diff);
    ck_assert_float_eq(ct_params_find(p, "encoder.bn1.running_mean")->data[0], rm);
    ck_assert_float_eq(ct_params_find(p, "encoder.bn1.num_batches_tracked")->data[0], 1.0f);
    ct_graph_free(g);
    ct_resnet_free(r);
    ct_params_free(p);
}
END_TEST

START_TEST(imagenet_stem_shapes) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(0);
    ct_resnet *r = NULL;
    ct_resnet_config c = reference_config();
    c.imagenet_stem = true, c.in_channels = 3;
    ck_assert_int_eq(ct_resnet_new(&c, p, "", &r, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_zeros(g, 4, (int64_t[]){2, 3, 32, 32});
    ct_tensor *y = ct_resnet_forward(r, g, x);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[1], 128);
    /* wrong channel count is an error, not a crash */
    ct_tensor *bad = ct_tensor_zeros(g, 4, (int64_t[]){2, 1, 32, 32});
    ck_assert_ptr_null(ct_resnet_forward(r, g, bad));
    ck_assert_int_eq(ct_graph_status(g), CT_ERR_SHAPE);
    ct_graph_free(g);
    ct_resnet_free(r);
    ct_params_free(p);
}
END_TEST

/* norm = group: torchvision names with weight and bias only (no running
 * statistics), the same function in training and evaluation, samples
 * that do not see each other, gradients everywhere, widths that the
 * groups must divide. */
START_TEST(group_norm_model) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(0);
    ct_resnet *r = NULL;
    ct_resnet_config c = reference_config();
    c.norm = CT_RESNET_GROUP_NORM, c.norm_groups = 8;
    ck_assert_int_eq(ct_resnet_new(&c, p, "encoder.", &r, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    size_t want = 288 + 64 + (2 * 9216 + 128) + (18432 + 36864 + 2048 + 384) + (73728 + 147456 + 8192 + 768);
    ck_assert_uint_eq(count_trainable(p), want); /* GroupNorm's affine = BatchNorm2d's */
    ck_assert_ptr_nonnull(ct_params_find(p, "encoder.layer3.0.downsample.1.weight"));
    ck_assert_ptr_nonnull(ct_params_find(p, "encoder.layer1.0.bn2.bias"));
    ck_assert_ptr_null(ct_params_find(p, "encoder.bn1.running_mean"));
    ck_assert_ptr_null(ct_params_find(p, "encoder.layer3.0.downsample.1.num_batches_tracked"));
    float out[2][4 * 128];
    for (int pass = 0; pass < 2; pass++) {
        ct_graph *g = ct_graph_new(0);
        ct_graph_set_train(g, pass == 0);
        ct_tensor *x = ct_tensor_new4(g, 4, 1, 12, 12);
        ct_rng rng;
        ct_rng_init(&rng, 1, 2);
        for (int64_t i = 0; i < x->numel; i++) x->data[i] = ct_rng_uniform(&rng);
        /* in evaluation the last sample differs: the others must not see it */
        if (pass) for (int64_t i = 3 * 144; i < 4 * 144; i++) x->data[i] = 5.0f - x->data[i];
        ct_tensor *y = ct_resnet_forward(r, g, x);
        ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
        memcpy(out[pass], y->data, sizeof out[pass]);
        if (pass == 0) {
            ck_assert_int_eq(ct_graph_backward(g, ct_sum(g, ct_mul(g, y, y))), CT_OK);
            for (size_t i = 0; i < ct_params_count(p); i++) {
                const char *name;
                ct_tensor *t = ct_params_at(p, i, &name, NULL, NULL);
                double s = 0;
                for (int64_t k = 0; k < t->numel; k++) s += fabs(t->grad[k]);
                ck_assert_msg(s > 0, "no gradient reached %s", name);
            }
        }
        ct_graph_free(g);
    }
    ck_assert(memcmp(out[0], out[1], 3 * 128 * sizeof(float)) == 0);
    ck_assert(memcmp(out[0] + 3 * 128, out[1] + 3 * 128, 128 * sizeof(float)) != 0);
    ct_resnet_free(r);
    ct_params_free(p);
    p = ct_params_new(0);
    c.norm_groups = 5;
    ck_assert_int_eq(ct_resnet_new(&c, p, "", &r, &err), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "norm_groups 5"));
    ct_params_free(p);
}
END_TEST

/* Mean and variance of a tensor, and its largest magnitude. */
static void moments(const ct_tensor *t, double *mean, double *var, double *maxabs) {
    double s = 0, s2 = 0, mx = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        s += t->data[i];
        s2 += (double)t->data[i] * t->data[i];
        mx = fmax(mx, fabs(t->data[i]));
    }
    *mean = s / (double)t->numel;
    *var = s2 / (double)t->numel - *mean * *mean;
    *maxabs = mx;
}

/* init: kaiming_fan_out is N(0, 2/fan_out); pytorch_default is
 * U(+-1/sqrt(fan_in)), variance 1/(3 fan_in); norms stay 1 and 0. */
START_TEST(conv_init_statistics) {
    static const struct {
        const char *name;
        double fan_in, fan_out;
    } convs[] = {{"conv1.weight", 9, 288},
                 {"layer2.0.conv1.weight", 288, 576},
                 {"layer3.0.conv2.weight", 1152, 1152},
                 {"layer3.0.downsample.0.weight", 64, 128}};
    for (int mode = 0; mode < 2; mode++) {
        ct_error err = CT_ERROR_INIT;
        ct_params *p = ct_params_new(3);
        ct_resnet *r = NULL;
        ct_resnet_config c = reference_config();
        c.init = mode ? CT_RESNET_INIT_PYTORCH_DEFAULT : CT_RESNET_INIT_KAIMING_FAN_OUT;
        ck_assert_int_eq(ct_resnet_new(&c, p, "", &r, &err), CT_OK);
        ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
        for (size_t k = 0; k < sizeof convs / sizeof convs[0]; k++) {
            ct_tensor *w = ct_params_find(p, convs[k].name);
            ck_assert_ptr_nonnull(w);
            double mean, var, mx;
            moments(w, &mean, &var, &mx);
            double want = mode ? 1.0 / (3.0 * convs[k].fan_in) : 2.0 / convs[k].fan_out;
            double bound = 1.0 / sqrt(convs[k].fan_in);
            /* relative sampling error of a variance over n draws: about sqrt(2/n) (normal), less (uniform) */
            double tol = 5.0 * sqrt(2.0 / (double)w->numel);
            ck_assert_msg(fabs(var / want - 1.0) < tol, "%s mode %d: variance %g, expected %g", convs[k].name, mode, var,
                          want);
            ck_assert_double_lt(fabs(mean), 5.0 * sqrt(want / (double)w->numel));
            if (mode) ck_assert_double_le(mx, bound);
            else if (w->numel > 1000) ck_assert_double_gt(mx, bound); /* a normal's tail passes the uniform's bound */
        }
        ck_assert_float_eq(ct_params_find(p, "layer1.0.bn2.weight")->data[5], 1.0f);
        ck_assert_float_eq(ct_params_find(p, "layer1.0.bn2.bias")->data[5], 0.0f);
        ct_resnet_free(r);
        ct_params_free(p);
    }
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(0);
    ct_resnet *r = NULL;
    ct_resnet_config c = reference_config();
    c.init = (ct_resnet_init)7;
    ck_assert_int_eq(ct_resnet_new(&c, p, "", &r, &err), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "init"));
    ct_params_free(p);
}
END_TEST

START_TEST(bad_config) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(0);
    ct_resnet *r = NULL;
    ct_resnet_config c = reference_config();
    c.blocks[1] = 0;
    ck_assert_int_eq(ct_resnet_new(&c, p, "", &r, &err), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "stage 2"));
    ck_assert_ptr_null(r);
    ct_params_free(p);
}
END_TEST

/* The plugin: loads, declares the reference model from its settings. */
START_TEST(plugin_builds_reference_model) {
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_error err = CT_ERROR_INIT;
    ct_plugin_set *set = NULL;
    ck_assert_int_eq(ct_plugins_load(&lo, &set, &err), CT_OK);
    const ct_registry_entry *e = ct_plugins_find(set, CT_ROLE_ENCODER, "resnet");
    ck_assert_msg(e != NULL, "resnet plugin not found on CONTRAST_PLUGIN_PATH");
    ct_settings *s = NULL;
    ck_assert_int_eq(ct_settings_parse(e->ops.encoder->params,
                                       "stem = \"small\"; stem_width = 32; blocks = [1, 1, 1]; widths = [32, 64, 128];",
                                       "resnet", &s, &err),
                     CT_OK);
    ct_params *p = ct_params_new(0);
    ct_encoder_input in = {1, 28, 28, 1};
    void *self = NULL;
    ck_assert_int_eq(e->ops.encoder->create(s, ct_plugins_host_for(set, e), &in, p, "encoder.", &self, &err), CT_OK);
    ck_assert_int_eq(e->ops.encoder->out_dim(self), 128);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ck_assert_ptr_nonnull(ct_params_find(p, "encoder.layer2.0.downsample.0.weight"));
    ct_graph *g = ct_graph_new(0);
    ct_tensor *y = e->ops.encoder->forward(self, g, ct_tensor_zeros(g, 4, (int64_t[]){3, 1, 28, 28}));
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->shape[1], 128);
    ct_graph_free(g);
    e->ops.encoder->destroy(self);
    ct_params_free(p);
    ct_settings_free(s);
    /* norm = "group" reaches the model: no running statistics */
    ck_assert_int_eq(ct_settings_parse(e->ops.encoder->params, "stem = \"small\"; norm = \"group\"; norm_groups = 4;",
                                       "resnet", &s, &err),
                     CT_OK);
    p = ct_params_new(0);
    ck_assert_int_eq(e->ops.encoder->create(s, ct_plugins_host_for(set, e), &in, p, "", &self, &err), CT_OK);
    ck_assert_ptr_nonnull(ct_params_find(p, "bn1.weight"));
    ck_assert_ptr_null(ct_params_find(p, "bn1.running_var"));
    e->ops.encoder->destroy(self);
    ct_params_free(p);
    ct_settings_free(s);
    /* init = "pytorch_default" reaches the model: conv weights within +-1/sqrt(fan_in) */
    ck_assert_int_eq(ct_settings_parse(e->ops.encoder->params, "stem = \"small\"; init = \"pytorch_default\";",
                                       "resnet", &s, &err),
                     CT_OK);
    p = ct_params_new(0);
    ck_assert_int_eq(e->ops.encoder->create(s, ct_plugins_host_for(set, e), &in, p, "", &self, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ct_tensor *w1 = ct_params_find(p, "layer1.0.conv1.weight"); /* 64 x 64 x 3 x 3: fan_in 576 */
    double mean, var, mx;
    moments(w1, &mean, &var, &mx);
    ck_assert_double_le(mx, 1.0 / sqrt(576.0));
    ck_assert_double_lt(fabs(var * 3.0 * 576.0 - 1.0), 0.05);
    e->ops.encoder->destroy(self);
    ct_params_free(p);
    ct_settings_free(s);
    /* in_channels contradicting the data is refused with the key named */
    ck_assert_int_eq(ct_settings_parse(e->ops.encoder->params, "in_channels = 3;", "resnet", &s, &err), CT_OK);
    p = ct_params_new(0);
    ck_assert_int_eq(e->ops.encoder->create(s, ct_plugins_host_for(set, e), &in, p, "", &self, &err), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "in_channels"));
    ct_params_free(p);
    ct_settings_free(s);
    ct_plugins_free(set);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("resnet");
    TCase *tc = tcase_create("resnet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, resnet18_count_and_names);
    tcase_add_test(tc, bottleneck_resnet50_count);
    tcase_add_test(tc, reference_model);
    tcase_add_test(tc, imagenet_stem_shapes);
    tcase_add_test(tc, conv_init_statistics);
    tcase_add_test(tc, bad_config);
    tcase_add_test(tc, group_norm_model);
    tcase_add_test(tc, plugin_builds_reference_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

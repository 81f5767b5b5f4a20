/* The end_to_end (SimCLR) architecture: NT-Xent on a hand-made case and
 * its gradient; a short training run on a Fashion-MNIST subset; resume
 * equality at 1 thread; interruption by SIGINT. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ct_gradcheck.h"
#include "ct_test.h"
#include "training/checkpoint.h"
#include "plugins/loader.h"

/* ---- the architecture on top of the identity encoder ----------------------- */

typedef struct fixture {
    ct_plugin_set *set;
    ct_params *store;
    ct_encoder enc;
    const ct_arch_ops *arch;
    void *self;
    ct_settings *enc_s, *arch_s;
} fixture;

/* pixels encoder over 1 x 1 x dim inputs, end_to_end with a linear head
 * (dim -> dim) set to the identity, so z is the L2-normalised input. */
static void fixture_new(fixture *f, int dim, const char *arch_settings) {
    memset(f, 0, sizeof *f);
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&lo, &f->set, &err), CT_OK);
    const ct_registry_entry *pe = ct_plugins_find(f->set, CT_ROLE_ENCODER, "pixels");
    const ct_registry_entry *ae = ct_plugins_find(f->set, CT_ROLE_ARCHITECTURE, "end_to_end");
    ck_assert_msg(pe && ae, "plugins pixels/end_to_end not found");
    f->store = ct_params_new(1);
    ct_encoder_input in = {1, 1, dim, 1};
    ck_assert_int_eq(ct_settings_parse(pe->ops.encoder->params, "", "pixels", &f->enc_s, &err), CT_OK);
    ck_assert_int_eq(pe->ops.encoder->create(f->enc_s, ct_plugins_host_for(f->set, pe), &in, f->store,
                                             "encoder.", &f->enc.self, &err), CT_OK);
    f->enc.ops = pe->ops.encoder;
    f->enc.dim = pe->ops.encoder->out_dim(f->enc.self);
    ck_assert_int_eq(f->enc.dim, dim);
    f->arch = ae->ops.architecture;
    ck_assert_msg(ct_settings_parse(f->arch->params, arch_settings, "end_to_end", &f->arch_s, &err) == CT_OK,
                  "%s", err.msg);
    ct_arch_env env = {.size = sizeof env,
                       .host = ct_plugins_host_for(f->set, ae),
                       .store = f->store,
                       .encoder = &f->enc,
                       .input = in,
                       .dataset_size = 100,
                       .batch_size = 2};
    ck_assert_msg(f->arch->create(f->arch_s, &env, &f->self, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(ct_params_finalize(f->store, &err) == CT_OK, "%s", err.msg);
}

static void fixture_identity_head(fixture *f, int dim) {
    ct_tensor *w = ct_params_find(f->store, "head.0.weight");
    ct_tensor *b = ct_params_find(f->store, "head.0.bias");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < dim * dim; i++) w->data[i] = (i % (dim + 1) == 0) ? 1.0f : 0.0f;
    memset(b->data, 0, (size_t)dim * sizeof(float));
}

static void fixture_free(fixture *f) {
    f->arch->destroy(f->self);
    f->enc.ops->destroy(f->enc.self);
    ct_params_free(f->store);
    ct_settings_free(f->enc_s);
    ct_settings_free(f->arch_s);
    ct_plugins_free(f->set);
}

/* Loss of n samples x v views of 2-d points (view-major rows of `pts`). */
static double arch_loss(fixture *f, const float *pts, int n, int v) {
    ct_graph *g = ct_graph_new(0);
    ct_batch b;
    memset(&b, 0, sizeof b);
    b.n = n;
    b.n_views = v;
    b.weight = 1;
    for (int k = 0; k < v; k++) {
        int64_t shape[4] = {n, 1, 1, 2};
        b.views[k] = ct_tensor_wrap(g, (float *)pts + k * n * 2, 4, shape);
    }
    ct_step_info info = {0, 0, 1, 1};
    ct_tensor *l = f->arch->loss(f->self, g, &b, &info);
    ck_assert_msg(l != NULL, "%s", ct_graph_error(g));
    ck_assert_int_eq(l->numel, 1);
    double v0 = l->data[0];
    ct_graph_free(g);
    return v0;
}

START_TEST(test_nt_xent_hand_case) {
    fixture f;
    fixture_new(&f, 2, "head_hidden = []; head_out = 2; temperature = 1.0;");
    fixture_identity_head(&f, 2);
    /* Rows: s0v0 (1,0), s1v0 (0,1), s0v1 (2,0), s1v1 (-3,0); after L2
     * normalisation the cosines are 0, +-1. Row by row (T = 1):
     *   s0v0: others 0, 1 (pos), -1 -> log(1 + e + 1/e) - 1
     *   s1v0: others 0, 0, 0 (pos 0) -> log 3
     *   s0v1: others 1 (pos), 0, -1 -> log(e + 1 + 1/e) - 1
     *   s1v1: others -1, 0 (pos), -1 -> log(2/e + 1) */
    const float pts[8] = {1, 0, 0, 1, 2, 0, -3, 0};
    double e = exp(1.0);
    double want = (2 * (log(1 + e + 1 / e) - 1) + log(3.0) + log(2 / e + 1)) / 4;
    double got = arch_loss(&f, pts, 2, 2);
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, hand-computed %.7f", got, want);
    fixture_free(&f);
}
END_TEST

START_TEST(test_nt_xent_temperature_and_three_views) {
    fixture f;
    fixture_new(&f, 2, "head_hidden = []; head_out = 2; temperature = 0.5;");
    fixture_identity_head(&f, 2);
    /* 2 samples x 3 views: every pair of views of a sample is positive. */
    const float pts[12] = {1, 0, 0, 1, 1, 1, 1, -1, 3, 0, 0, -2};
    double z[6][2];
    for (int r = 0; r < 6; r++) {
        double nrm = hypot(pts[2 * r], pts[2 * r + 1]);
        z[r][0] = pts[2 * r] / nrm;
        z[r][1] = pts[2 * r + 1] / nrm;
    }
    double total = 0;
    for (int i = 0; i < 6; i++) {
        double lse = 0, pos = 0;
        int npos = 0;
        for (int j = 0; j < 6; j++) {
            if (j == i) continue;
            double s = (z[i][0] * z[j][0] + z[i][1] * z[j][1]) / 0.5;
            lse += exp(s);
            if (j % 2 == i % 2) {
                pos += s;
                npos++;
            }
        }
        total += log(lse) - pos / npos;
    }
    double want = total / 6, got = arch_loss(&f, pts, 2, 3);
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, expected %.7f", got, want);
    fixture_free(&f);
}
END_TEST

static ct_tensor *build_arch_loss(ct_graph *g, ct_tensor **in, void *ctx) {
    fixture *f = ctx;
    ct_batch b;
    memset(&b, 0, sizeof b);
    b.n = (int)in[0]->shape[0];
    b.n_views = 2;
    b.views[0] = in[0];
    b.views[1] = in[1];
    b.weight = 1;
    ct_step_info info = {0, 0, 1, 1};
    return f->arch->loss(f->self, g, &b, &info);
}

START_TEST(test_arch_gradient) {
    fixture f;
    fixture_new(&f, 4, "head_hidden = [5]; head_out = 3; temperature = 0.3;");
    int64_t shape[4] = {3, 1, 1, 4};
    ct_tensor *in[2] = {ct_gradcheck_input(4, shape, 11), ct_gradcheck_input(4, shape, 12)};
    char report[1024];
    int bad = ct_gradcheck(build_arch_loss, in, 2, &f, 1e-3, 2e-2, report, sizeof report);
    ck_assert_msg(bad == 0, "%s", report);
    ct_gradcheck_input_free(in[0]);
    ct_gradcheck_input_free(in[1]);
    fixture_free(&f);
}
END_TEST

START_TEST(test_head_names) {
    fixture f;
    fixture_new(&f, 4, "head_hidden = [8, 6]; head_out = 3; head_bn = true;");
    const char *want[] = {"head.0.weight", "head.1.weight", "head.1.bias", "head.1.running_mean",
                          "head.1.running_var", "head.3.weight", "head.4.weight", "head.6.weight",
                          "head.6.bias"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(ct_params_find(f.store, want[i]) != NULL, "missing %s", want[i]);
    ck_assert_ptr_null(ct_params_find(f.store, "head.0.bias")); /* BN follows */
    ck_assert_int_eq(ct_params_find(f.store, "head.3.weight")->shape[0], 6);
    fixture_free(&f);
}
END_TEST

/* ---- the SDK's projection head (contrast/mlp.h) on its own ------------------ */

static const ct_param_spec head_spec[] = {
    CT_MLP_HEAD_PARAMS("[128]", "64"),
    CT_PARAM_END,
};

/* The store's entries as "name kind flags d0xd1" lines, declaration order. */
static void store_layout(const ct_params *p, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ct_params_count(p) && len < n; i++) {
        const char *name;
        ct_param_kind kind;
        uint32_t flags;
        ct_tensor *t = ct_params_at(p, i, &name, &kind, &flags);
        len += (size_t)snprintf(buf + len, n - len, "%s %d %u %lldx%lld\n", name, (int)kind, flags,
                                (long long)t->shape[0], t->ndim > 1 ? (long long)t->shape[1] : 0LL);
    }
}

/* Names, order (which fixes the random init), kinds, no-decay flags and
 * shapes are those every architecture had before the head moved into the
 * SDK; the settings-free constructor gives the same store, values included. */
START_TEST(test_mlp_layout_and_settings_free_constructor) {
    ct_error err = CT_ERROR_INIT;
    ct_settings *s;
    ck_assert_int_eq(ct_settings_parse(head_spec, "head_hidden = [8, 6]; head_out = 3; head_bn = true;", "t", &s,
                                       &err), CT_OK);
    ct_params *a = ct_params_new(7), *b = ct_params_new(7);
    ct_mlp *ma, *mb;
    ck_assert_msg(ct_mlp_from_settings(s, a, "head", 5, "t", &ma, &err) == CT_OK, "%s", err.msg);
    const int64_t hidden[] = {8, 6};
    ct_mlp_config cfg = {2, hidden, 3, true, true, 0.1f, {0}};
    ck_assert_msg(ct_mlp_new(b, "head", 5, &cfg, &mb, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(ct_mlp_out_dim(ma), 3);
    ck_assert_int_eq(ct_mlp_out_dim(mb), 3);
    static char la[4096], lb[4096];
    store_layout(a, la, sizeof la);
    store_layout(b, lb, sizeof lb);
    ck_assert_str_eq(la, "head.0.weight 0 0 8x5\n"
                         "head.1.weight 0 1 8x0\n"
                         "head.1.bias 0 1 8x0\n"
                         "head.1.running_mean 1 1 8x0\n"
                         "head.1.running_var 1 1 8x0\n"
                         "head.3.weight 0 0 6x8\n"
                         "head.4.weight 0 1 6x0\n"
                         "head.4.bias 0 1 6x0\n"
                         "head.4.running_mean 1 1 6x0\n"
                         "head.4.running_var 1 1 6x0\n"
                         "head.6.weight 0 0 3x6\n"
                         "head.6.bias 0 1 3x0\n");
    ck_assert_str_eq(la, lb);
    ck_assert_int_eq(ct_params_finalize(a, &err), CT_OK);
    ck_assert_int_eq(ct_params_finalize(b, &err), CT_OK);
    ck_assert_uint_eq(ct_params_numel(a), ct_params_numel(b));
    ck_assert(memcmp(ct_params_data(a), ct_params_data(b), ct_params_numel(a) * sizeof(float)) == 0);
    ck_assert(memcmp(ct_params_buffer_data(a), ct_params_buffer_data(b),
                     ct_params_buffer_numel(a) * sizeof(float)) == 0);
    ct_mlp_free(ma);
    ct_mlp_free(mb);
    ct_params_free(a);
    ct_params_free(b);
    ct_settings_free(s);

    /* Without batch norm every Linear keeps its bias; ReLUs take indices. */
    ct_params *c = ct_params_new(1);
    ct_mlp *mc;
    ct_mlp_config plain = {1, (const int64_t[]){4}, 2, false, true, 0.1f, {0}};
    ck_assert_int_eq(ct_mlp_new(c, "key_head", 3, &plain, &mc, &err), CT_OK);
    store_layout(c, la, sizeof la);
    ck_assert_str_eq(la, "key_head.0.weight 0 0 4x3\nkey_head.0.bias 0 1 4x0\n"
                         "key_head.2.weight 0 0 2x4\nkey_head.2.bias 0 1 2x0\n");
    ct_mlp_free(mc);
    ct_params_free(c);
}
END_TEST

/* Forward: identity weights through a linear head and through one hidden
 * ReLU layer; batch norm in eval mode uses the running statistics. */
START_TEST(test_mlp_forward) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(1);
    ct_mlp *lin, *deep;
    ct_mlp_config c1 = {0, NULL, 2, false, false, 0.1f, {0}};
    ct_mlp_config c2 = {1, (const int64_t[]){2}, 2, true, true, 0.1f, {0}};
    ck_assert_int_eq(ct_mlp_new(p, "lin", 2, &c1, &lin, &err), CT_OK);
    ck_assert_int_eq(ct_mlp_new(p, "deep", 2, &c2, &deep, &err), CT_OK);
    ck_assert_ptr_null(ct_params_find(p, "lin.0.bias"));
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    const char *eye[] = {"lin.0.weight", "deep.0.weight", "deep.3.weight"};
    for (int k = 0; k < 3; k++) {
        float *w = ct_params_find(p, eye[k])->data;
        w[0] = 1, w[1] = 0, w[2] = 0, w[3] = 1;
    }
    memset(ct_params_find(p, "deep.3.bias")->data, 0, 2 * sizeof(float));
    ct_params_find(p, "deep.1.running_mean")->data[0] = 1; /* column 0 shifted by -1 */
    ct_graph *g = ct_graph_new(0);
    ct_graph_set_train(g, false);
    float xs[] = {3, -2, 0.5f, 4};
    int64_t shape[2] = {2, 2};
    ct_tensor *x = ct_tensor_wrap(g, xs, 2, shape);
    ct_tensor *y = ct_mlp_forward(lin, g, x);
    ck_assert_msg(y != NULL, "%s", ct_graph_error(g));
    for (int i = 0; i < 4; i++) ck_assert(fabsf(y->data[i] - xs[i]) < 1e-6f);
    ct_tensor *z = ct_mlp_forward(deep, g, x);
    ck_assert_msg(z != NULL, "%s", ct_graph_error(g));
    ck_assert_int_eq(z->shape[0], 2);
    ck_assert_int_eq(z->shape[1], 2);
    /* bn (x - mean) / sqrt(1 + eps), then ReLU */
    float want[] = {2, 0, 0, 4};
    for (int i = 0; i < 4; i++) ck_assert_msg(fabsf(z->data[i] - want[i]) < 1e-4f, "%d: %g", i, z->data[i]);
    ck_assert_ptr_null(ct_mlp_forward(deep, g, NULL));
    ct_graph_free(g);
    ct_mlp_free(lin);
    ct_mlp_free(deep);
    ct_mlp_free(NULL);
    ct_params_free(p);
}
END_TEST

START_TEST(test_mlp_errors) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(1);
    static char sentinel;
    ct_mlp *m = (ct_mlp *)&sentinel; /* must come back NULL on failure */
    ct_settings *s;
    /* Too many hidden layers: names the setting and where it was set. */
    ck_assert_int_eq(ct_settings_parse(head_spec, "head_hidden = [1, 1, 1, 1, 1, 1, 1, 1];", "t", &s, &err), CT_OK);
    ck_assert_int_eq(ct_mlp_from_settings(s, p, "head", 4, "owner_x", &m, &err), CT_ERR_CONFIG);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "owner_x: head_hidden") && strstr(err.msg, "at most 7"), "%s", err.msg);
    ct_settings_free(s);
    /* A schema without CT_MLP_HEAD_PARAMS: the settings' misuse, naming the key. */
    static const ct_param_spec other[] = {CT_PARAM_FLOAT("temperature", "0.5", 0, 1, "t"), CT_PARAM_END};
    ck_assert_int_eq(ct_settings_parse(other, "", "owner_y", &s, &err), CT_OK);
    ck_assert_int_eq(ct_mlp_from_settings(s, p, "head", 4, "owner_y", &m, &err), CT_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "owner_y") && strstr(err.msg, "'head_hidden' is not declared"), "%s", err.msg);
    ct_settings_free(s);
    ck_assert_uint_eq(ct_params_count(p), 0);
    /* Bad configs for the settings-free constructor declare nothing. */
    const int64_t zero[] = {0}, one[] = {1};
    const ct_mlp_config ok = {1, one, 2, false, true, 0.1f, {0}};
    ct_mlp_config c = ok;
    c.hidden = zero;
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &c, &m, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "hidden size 0 is 0"), "%s", err.msg);
    c = ok, c.hidden = NULL;
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &c, &m, &err), CT_ERR_INVALID);
    c = ok, c.n_hidden = CT_MLP_MAX_LAYERS;
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &c, &m, &err), CT_ERR_CONFIG);
    c = ok, c.out = 0;
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &c, &m, &err), CT_ERR_CONFIG);
    ck_assert_int_eq(ct_mlp_new(p, "head", 0, &ok, &m, &err), CT_ERR_CONFIG);
    c = ok, c.bn_momentum = 1.5f;
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &c, &m, &err), CT_ERR_CONFIG);
    c = ok, c.bn_momentum = NAN;
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &c, &m, &err), CT_ERR_CONFIG);
    c = ok, c.reserved[3] = 1;
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &c, &m, &err), CT_ERR_INVALID);
    ck_assert_int_eq(ct_mlp_new(NULL, "head", 4, &ok, &m, &err), CT_ERR_INVALID);
    ck_assert_int_eq(ct_mlp_new(p, NULL, 4, &ok, &m, &err), CT_ERR_INVALID);
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, NULL, &m, &err), CT_ERR_INVALID);
    ck_assert_ptr_null(m);
    ck_assert_uint_eq(ct_params_count(p), 0);
    /* A name clash is the store's error, prefixed with the owner. */
    ck_assert_int_eq(ct_mlp_new(p, "head", 4, &ok, &m, &err), CT_OK);
    ct_mlp_free(m);
    ck_assert_int_eq(ct_settings_parse(head_spec, "", "t", &s, &err), CT_OK);
    ck_assert_int_ne(ct_mlp_from_settings(s, p, "head", 4, "owner_z", &m, &err), CT_OK);
    ck_assert_ptr_null(m);
    ck_assert_msg(strncmp(err.msg, "owner_z: ", 9) == 0 && strstr(err.msg, "head.0.weight"), "%s", err.msg);
    ct_settings_free(s);
    ct_params_free(p);
}
END_TEST

/* ---- whole runs through the CLI ---------------------------------------------- */

#define SMALL_SETS                                                                      \
    "--set data.train.limit=512 --set data.test.limit=256 --set train.batch_size=16 "  \
    "--set train.threads=1 --set train.log_every=5 --set train.keep=0 "                 \
    "--set encoder.stem_width=8 --set encoder.widths=[8,16,32] "

static void cli(char *out, size_t n, int want_rc, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = ct_test_run(cmd, out, n);
    ck_assert_msg(rc == want_rc, "`%s` exited %d:\n%s", cmd, rc, out);
}

/* Per-step losses of a run's metrics.jsonl, as printed ("%.9g"), by step. */
static int read_losses(const char *run, char losses[][32], int max) {
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        long long step;
        char loss[32];
        if (!strstr(line, "\"type\": \"step\"")) continue;
        const char *s = strstr(line, "\"step\": "), *l = strstr(line, "\"loss\": ");
        ck_assert(s && l);
        ck_assert_int_eq(sscanf(s, "\"step\": %lld", &step), 1);
        ck_assert_int_eq(sscanf(l, "\"loss\": %31[^,]", loss), 1);
        ck_assert_msg(step >= 0 && step < max, "step %lld", step);
        snprintf(losses[step], 32, "%s", loss);
        if (step + 1 > n) n = (int)step + 1;
    }
    fclose(f);
    return n;
}

static char g_out[1 << 16];

START_TEST(test_smoke_run_loss_decreases) {
    const char *dir = ct_test_tmpdir();
    cli(g_out, sizeof g_out, 0, "%s/contrast train %s/configs/simclr_fmnist.cfg " SMALL_SETS
        "--set train.max_steps=20 --set train.epochs=2 --set optimizer.lr=0.002 --run-dir %s/run",
        ct_test_build_dir(), ct_test_source_dir(), dir);
    char run[512];
    snprintf(run, sizeof run, "%s/run", dir);
    static char losses[64][32];
    int n = read_losses(run, losses, 64);
    ck_assert_int_eq(n, 20);
    double first = 0, last = 0;
    for (int i = 0; i < 20; i++) {
        double v = atof(losses[i]);
        ck_assert_msg(isfinite(v), "step %d loss %s", i, losses[i]);
        if (i < 5) first += v / 5;
        if (i >= 15) last += v / 5;
    }
    ck_assert_msg(last < first, "loss did not decrease: first 5 mean %.4f, last 5 mean %.4f", first, last);
    ck_assert_msg(strstr(g_out, "knn.top1") && strstr(g_out, "linear.top1"), "%s", g_out);
    /* The checkpoint loads for eval and embed. */
    char ck[1024];
    snprintf(ck, sizeof ck, "%s/checkpoint-s00000020.safetensors", run);
    cli(g_out, sizeof g_out, 0, "%s/contrast embed %s/configs/simclr_fmnist.cfg " SMALL_SETS
        "--checkpoint %s --split test --out %s/feats.npy", ct_test_build_dir(), ct_test_source_dir(), ck, dir);
    char npy[1024];
    snprintf(npy, sizeof npy, "%s/feats.npy", dir);
    FILE *fp = fopen(npy, "rb");
    ck_assert_ptr_nonnull(fp);
    char head[128] = {0};
    ck_assert_int_eq(fread(head, 1, 127, fp), 127);
    fclose(fp);
    ck_assert_int_eq(memcmp(head, "\x93NUMPY\x01\x00", 8), 0);
    ck_assert_msg(strstr(head + 10, "'shape': (256, 32)"), "%s", head + 10);
    snprintf(npy, sizeof npy, "%s/feats.labels.npy", dir);
    ck_assert_int_eq(access(npy, R_OK), 0);
}
END_TEST

START_TEST(test_resume_identical_losses) {
    const char *dir = ct_test_tmpdir();
    const char *sets = SMALL_SETS "--set train.max_steps=24 --set train.epochs=2 --set evaluation.every=0";
    /* 512/16 = 32 steps per epoch: the stop at 10 is mid-epoch. */
    cli(g_out, sizeof g_out, 0, "%s/contrast train %s/configs/simclr_fmnist.cfg %s --run-dir %s/full",
        ct_test_build_dir(), ct_test_source_dir(), sets, dir);
    cli(g_out, sizeof g_out, 0, "%s/contrast train %s/configs/simclr_fmnist.cfg %s --run-dir %s/cut --stop-after 10",
        ct_test_build_dir(), ct_test_source_dir(), sets, dir);
    ck_assert_msg(strstr(g_out, "stopped after step 10"), "%s", g_out);
    cli(g_out, sizeof g_out, 0, "%s/contrast train %s/configs/simclr_fmnist.cfg %s --resume %s/cut",
        ct_test_build_dir(), ct_test_source_dir(), sets, dir);
    ck_assert_msg(strstr(g_out, "resuming"), "%s", g_out);
    static char a[64][32], b[64][32];
    char run[512];
    snprintf(run, sizeof run, "%s/full", dir);
    int na = read_losses(run, a, 64);
    snprintf(run, sizeof run, "%s/cut", dir);
    int nb = read_losses(run, b, 64);
    ck_assert_int_eq(na, 24);
    ck_assert_int_eq(nb, 24);
    for (int i = 0; i < 24; i++) ck_assert_msg(strcmp(a[i], b[i]) == 0, "step %d: %s vs %s", i, a[i], b[i]);
}
END_TEST

START_TEST(test_sigint_checkpoints_and_exits) {
    const char *dir = ct_test_tmpdir();
    char cmd[4096], metrics[600];
    snprintf(metrics, sizeof metrics, "%s/run/metrics.jsonl", dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        snprintf(cmd, sizeof cmd, "%s/contrast", ct_test_build_dir());
        char cfg[1024], rd[600];
        snprintf(cfg, sizeof cfg, "%s/configs/simclr_fmnist.cfg", ct_test_source_dir());
        snprintf(rd, sizeof rd, "%s/run", dir);
        freopen("/dev/null", "w", stdout);
        execl(cmd, cmd, "train", cfg, "--set", "data.train.limit=512", "--set", "train.batch_size=16",
              "--set", "train.threads=1", "--set", "encoder.widths=[8,16,32]", "--set", "train.epochs=50", "--run-dir", rd, (char *)NULL);
        _exit(127);
    }
    /* Wait until a few steps are logged, then interrupt. */
    for (int tries = 0; tries < 600; tries++) {
        usleep(100000);
        FILE *f = fopen(metrics, "r");
        int lines = 0;
        char line[1024];
        while (f && fgets(line, sizeof line, f)) lines += strstr(line, "\"type\": \"step\"") != NULL;
        if (f) fclose(f);
        if (lines >= 3) break;
    }
    kill(pid, SIGINT);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    /* 128 + SIGINT, after the checkpoint, as a shell reports a killed process. */
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d", status);
    char latest[1024];
    ct_error err = CT_ERROR_INIT;
    snprintf(cmd, sizeof cmd, "%s/run", dir);
    ck_assert_int_eq(ct_checkpoint_latest(cmd, latest, sizeof latest, &err), CT_OK);
}
END_TEST

int main(void) {
    Suite *s = suite_create("end_to_end");
    TCase *unit = tcase_create("architecture");
    tcase_add_test(unit, test_nt_xent_hand_case);
    tcase_add_test(unit, test_nt_xent_temperature_and_three_views);
    tcase_add_test(unit, test_arch_gradient);
    tcase_add_test(unit, test_head_names);
    tcase_add_test(unit, test_mlp_layout_and_settings_free_constructor);
    tcase_add_test(unit, test_mlp_forward);
    tcase_add_test(unit, test_mlp_errors);
    suite_add_tcase(s, unit);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 300);
    tcase_add_test(runs, test_smoke_run_loss_decreases);
    tcase_add_test(runs, test_resume_identical_losses);
    tcase_add_test(runs, test_sigint_checkpoints_and_exits);
    suite_add_tcase(s, runs);
    return ct_test_main(s);
}

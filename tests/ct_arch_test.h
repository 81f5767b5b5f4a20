/* Helpers shared by the architecture tests (test_memory_bank.c,
 * test_momentum.c, test_clustering.c): an architecture plugin on top of a
 * real encoder plugin, loaded through the loader as the host does, with a
 * make_encoder for key encoders; one-batch loss/after_step calls; and the
 * 20-step smoke run through build/contrast. Header-only (static). */
#ifndef CT_ARCH_TEST_H
#define CT_ARCH_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "plugins/loader.h"

#define ARCH_TEST_MAX_ENC 4

typedef struct arch_fixture {
    ct_plugin_set *set;
    const ct_registry_entry *enc_entry;
    ct_params *store;
    ct_encoder enc;
    ct_encoder extra[ARCH_TEST_MAX_ENC];
    int n_extra;
    ct_encoder_input in;
    const ct_arch_ops *arch;
    void *self;
    ct_settings *enc_s, *arch_s;
    ct_arch_env env;
    ct_graph *g;
} arch_fixture;

static ct_status arch_fixture_encoder(arch_fixture *f, const char *prefix, ct_encoder *enc, ct_error *err) {
    const ct_encoder_ops *ops = f->enc_entry->ops.encoder;
    ct_status st = ops->create(f->enc_s, ct_plugins_host_for(f->set, f->enc_entry), &f->in, f->store, prefix,
                               &enc->self, err);
    if (st != CT_OK) return st;
    enc->ops = ops;
    enc->dim = ops->out_dim(enc->self);
    snprintf(enc->prefix, sizeof enc->prefix, "%s", prefix);
    return CT_OK;
}

static ct_status arch_fixture_make_encoder(const ct_arch_env *env, const char *prefix, ct_encoder **out,
                                           ct_error *err) {
    arch_fixture *f = env->host_ctx;
    if (f->n_extra >= ARCH_TEST_MAX_ENC) return ct_error_set(err, CT_ERR_INVALID, "too many encoders");
    ct_status st = arch_fixture_encoder(f, prefix, &f->extra[f->n_extra], err);
    if (st == CT_OK) *out = &f->extra[f->n_extra++];
    return st;
}

/* encoder `enc_type` with settings text over c x h x w inputs, architecture
 * `arch_name` with settings text, a dataset of `items` items. The store is
 * finalized (seed 1) and start() called unless `no_start`. */
static void arch_fixture_new(arch_fixture *f, const char *enc_type, const char *enc_settings, int c, int h, int w,
                             const char *arch_name, const char *arch_settings, int64_t items, bool no_start) {
    memset(f, 0, sizeof *f);
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&lo, &f->set, &err), CT_OK);
    f->enc_entry = ct_plugins_find(f->set, CT_ROLE_ENCODER, enc_type);
    const ct_registry_entry *ae = ct_plugins_find(f->set, CT_ROLE_ARCHITECTURE, arch_name);
    ck_assert_msg(f->enc_entry && ae, "plugins %s/%s not found (CONTRAST_PLUGIN_PATH=%s)", enc_type, arch_name,
                  getenv("CONTRAST_PLUGIN_PATH") ? getenv("CONTRAST_PLUGIN_PATH") : "");
    f->store = ct_params_new(1);
    f->in = (ct_encoder_input){c, h, w, 1};
    ck_assert_msg(ct_settings_parse(f->enc_entry->ops.encoder->params, enc_settings, enc_type, &f->enc_s, &err) ==
                      CT_OK,
                  "%s", err.msg);
    ck_assert_msg(arch_fixture_encoder(f, "encoder.", &f->enc, &err) == CT_OK, "%s", err.msg);
    f->arch = ae->ops.architecture;
    ck_assert_msg(ct_settings_parse(f->arch->params, arch_settings, arch_name, &f->arch_s, &err) == CT_OK, "%s",
                  err.msg);
    f->env = (ct_arch_env){.size = sizeof f->env,
                           .host = ct_plugins_host_for(f->set, ae),
                           .store = f->store,
                           .encoder = &f->enc,
                           .input = f->in,
                           .dataset_size = items,
                           .batch_size = 8,
                           .make_encoder = arch_fixture_make_encoder,
                           .host_ctx = f};
    ck_assert_msg(f->arch->create(f->arch_s, &f->env, &f->self, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(ct_params_finalize(f->store, &err) == CT_OK, "%s", err.msg);
    if (!no_start && f->arch->start) ck_assert_msg(f->arch->start(f->self, &err) == CT_OK, "%s", err.msg);
    f->g = ct_graph_new(0);
    ck_assert_ptr_nonnull(f->g);
}

static void arch_fixture_free(arch_fixture *f) {
    f->arch->destroy(f->self);
    for (int i = 0; i < f->n_extra; i++) f->extra[i].ops->destroy(f->extra[i].self);
    f->enc.ops->destroy(f->enc.self);
    ct_graph_free(f->g);
    ct_params_free(f->store);
    ct_settings_free(f->enc_s);
    ct_settings_free(f->arch_s);
    ct_plugins_free(f->set);
}

/* Set a (out, in) linear weight to the identity and its bias (if any) to 0. */
static void arch_fixture_identity(arch_fixture *f, const char *weight, const char *bias) {
    ct_tensor *w = ct_params_find(f->store, weight);
    ck_assert_msg(w != NULL, "no %s", weight);
    int64_t o = w->shape[0], i = w->shape[1];
    for (int64_t r = 0; r < o; r++)
        for (int64_t c = 0; c < i; c++) w->data[r * i + c] = r == c ? 1.0f : 0.0f;
    ct_tensor *b = bias ? ct_params_find(f->store, bias) : NULL;
    if (b) memset(b->data, 0, (size_t)b->numel * sizeof(float));
}

/* A batch of n samples x v views of c x h x w pixels from `pts` (view-major). */
static ct_batch arch_fixture_batch(arch_fixture *f, const float *pts, int n, int v, const int64_t *items) {
    ct_batch b;
    memset(&b, 0, sizeof b);
    b.n = n;
    b.n_views = v;
    b.weight = 1;
    b.items = items;
    int64_t per = (int64_t)f->in.channels * f->in.height * f->in.width;
    for (int k = 0; k < v; k++) {
        int64_t shape[4] = {n, f->in.channels, f->in.height, f->in.width};
        b.views[k] = ct_tensor_wrap(f->g, (float *)pts + (int64_t)k * n * per, 4, shape);
    }
    return b;
}

/* One training step without the optimizer: loss, backward, after_backward
 * and after_step at global step `step`. Returns the loss; resets the graph. */
static double arch_fixture_step(arch_fixture *f, const float *pts, int n, int v, const int64_t *items, int64_t step,
                                bool after) {
    ct_batch b = arch_fixture_batch(f, pts, n, v, items);
    ct_step_info info = {0, step, 100, 10};
    ct_tensor *l = f->arch->loss(f->self, f->g, &b, &info);
    ck_assert_msg(l != NULL, "%s", ct_graph_error(f->g));
    ck_assert_int_eq(l->numel, 1);
    double loss = l->data[0];
    ct_params_zero_grad(f->store);
    ck_assert_msg(ct_graph_backward(f->g, l) == CT_OK, "%s", ct_graph_error(f->g));
    if (after && f->arch->after_backward) f->arch->after_backward(f->self, &info);
    if (after && f->arch->after_step) f->arch->after_step(f->self, &b, &info);
    ct_graph_reset(f->g);
    return loss;
}

/* ---- the 20-step smoke run through build/contrast ------------------------- */

/* Train `config` for 20 steps on 64 Fashion-MNIST images (batch 32, one
 * thread) with extra --set options; check every step's loss is finite and
 * that the mean of the last 5 is below the mean of steps warm..warm+4
 * (warm = steps during which the architecture's state is still filling:
 * bank or queue), and that the checkpoint was written. */
static void arch_smoke_run(const char *config, const char *extra_sets, int warm) {
    static char out[1 << 16];
    const char *dir = ct_test_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s/contrast train %s/configs/%s --set data.train.limit=64 --set data.test.limit=128 "
             "--set train.batch_size=32 --set train.threads=1 --set train.log_every=5 --set train.keep=0 "
             "--set train.max_steps=20 --set train.epochs=10 --set optimizer.lr=0.002 %s --run-dir %s/run",
             ct_test_build_dir(), ct_test_source_dir(), config, extra_sets, dir);
    int rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "`%s` exited %d:\n%s", cmd, rc, out);
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    double loss[20];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        const char *s = strstr(line, "\"loss\": ");
        if (!strstr(line, "\"type\": \"step\"") || !s) continue;
        ck_assert_int_lt(n, 20);
        loss[n++] = atof(s + 8);
    }
    fclose(fp);
    ck_assert_int_eq(n, 20);
    double early = 0, late = 0;
    for (int i = 0; i < 20; i++) ck_assert_msg(isfinite(loss[i]), "step %d loss %g", i, loss[i]);
    for (int i = 0; i < 5; i++) {
        early += loss[warm + i] / 5;
        late += loss[15 + i] / 5;
    }
    ck_assert_msg(late < early, "%s: loss did not decrease: steps %d-%d mean %.4f, steps 15-19 mean %.4f\n%s", config,
                  warm, warm + 4, early, late, out);
    snprintf(path, sizeof path, "%s/run/checkpoint-s00000020.safetensors", dir);
    FILE *ck = fopen(path, "rb");
    ck_assert_msg(ck != NULL, "no %s", path);
    fclose(ck);
}

#endif

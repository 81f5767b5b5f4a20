/* The `cpc` structure (plugins/structure/cpc): its counts and flags, the
 * patch grid (with an encoder that returns a patch's pixels, set 0 must be
 * the target patches cut from the image), the alignment of targets and
 * predictions, group and item ids, causality of the context network
 * (perturbing the image below a row leaves the predictions made from that
 * row and above unchanged, and changes those below), the accuracy metric,
 * settings refused, and runs through build/contrast: 3 training steps with
 * end_to_end (finite, changing losses; a checkpoint that resumes to the
 * same losses) and `contrast check` refusing cpc with memory_bank. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "ct_test.h"
#include "plugins/loader.h"

enum { IMG = 28, PATCH = 8, STRIDE = 4, GRID = 6, ROWS = 24 + 18 + 12 }; /* offsets 2..4 */

/* ---- an encoder that returns a patch's pixels: (M, 1, 8, 8) -> (M, 64) ---- */

static ct_tensor *pixels_forward(void *self, ct_graph *g, ct_tensor *x) {
    (void)self;
    return ct_reshape(g, x, 2, (int64_t[]){x->shape[0], x->numel / x->shape[0]});
}
static int64_t pixels_dim(void *self) {
    (void)self;
    return PATCH * PATCH;
}
static const ct_encoder_ops pixels_ops = {.name = "pixels", .forward = pixels_forward, .out_dim = pixels_dim};

/* ---- a structure instance from the loaded plugin ---- */

typedef struct fixture {
    ct_plugin_set *set;
    const ct_structure_ops *ops;
    ct_settings *s;
    void *self;
    ct_params *store;
    ct_host host;
    ct_encoder enc;
} fixture;

static double g_metrics[8];
static char g_metric_names[8][32];
static int g_n_metrics;

static void record_metric(const ct_host *h, const char *name, double value) {
    (void)h;
    if (g_n_metrics < 8) {
        snprintf(g_metric_names[g_n_metrics], 32, "%s", name);
        g_metrics[g_n_metrics++] = value;
    }
}

/* create with `settings`; CT_OK or the error (err filled). */
static ct_status fixture_try(fixture *f, const char *settings, int views, ct_error *err) {
    memset(f, 0, sizeof *f);
    ct_loader_opts lo = {0};
    lo.no_default_dirs = true;
    lo.no_probe = true;
    ck_assert_int_eq(ct_plugins_load(&lo, &f->set, err), CT_OK);
    const ct_registry_entry *e = ct_plugins_find(f->set, CT_ROLE_STRUCTURE, "cpc");
    ck_assert_msg(e != NULL, "cpc plugin not found on CONTRAST_PLUGIN_PATH");
    f->ops = e->ops.structure;
    f->host = *ct_plugins_host_for(f->set, e);
    f->host.metric = record_metric;
    ck_assert_int_eq(ct_settings_parse(f->ops->params, settings, "cpc", &f->s, err), CT_OK);
    int chain_views[1] = {views};
    ct_structure_env env = {sizeof env, &f->host, 1, chain_views, 1, IMG, IMG, 0};
    return f->ops->create(f->s, &env, &f->self, err);
}

static void fixture_free(fixture *f) {
    if (f->self) f->ops->destroy(f->self);
    ct_params_free(f->store);
    ct_settings_free(f->s);
    ct_plugins_free(f->set);
}

/* create, declare over the pixel encoder and finalize; with `random` every
 * structure weight drawn in [-0.3, 0.3] (conv3 starts at zero, which
 * would make the context trivially causal). */
static void fixture_new(fixture *f, const char *settings, bool random) {
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(fixture_try(f, settings, 1, &err) == CT_OK, "%s", err.msg);
    f->enc = (ct_encoder){&pixels_ops, NULL, PATCH * PATCH, "encoder."};
    f->store = ct_params_new(3);
    ck_assert_msg(f->ops->declare(f->self, f->store, "cpc.", f->enc.dim, CT_SIDE_QUERY, &err) == CT_OK, "%s",
                  err.msg);
    ck_assert_int_eq(ct_params_finalize(f->store, &err), CT_OK);
    if (!random) return;
    ct_rng r;
    ct_rng_init(&r, 5, 1);
    for (size_t i = 0; i < ct_params_count(f->store); i++) {
        ct_tensor *t = ct_params_at(f->store, i, NULL, NULL, NULL);
        for (int64_t k = 0; k < t->numel; k++) t->data[k] = ct_rng_uniform_range(&r, -0.3f, 0.3f);
    }
}

static void fill_images(ct_tensor *x, uint64_t seed) {
    ct_rng r;
    ct_rng_init(&r, seed, 2);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = ct_rng_uniform(&r);
}

static ct_status embed(fixture *f, ct_graph *g, ct_tensor *x, ct_embeddings *e) {
    ct_batch b = {0};
    b.n = (int)x->shape[0];
    b.n_views = 1;
    b.views[0] = x;
    return f->ops->embed(f->self, g, &b, &f->enc, CT_SIDE_QUERY, CT_ALL_SETS, e);
}

/* Row j's (sample, offset, context row, column), in the documented order. */
static void row_coords(int64_t j, int *i, int *k, int *r, int *c) {
    *i = (int)(j / ROWS);
    int64_t m = j % ROWS;
    for (*k = 2; m >= (GRID - *k) * GRID; (*k)++) m -= (GRID - *k) * GRID;
    *r = (int)(m / GRID), *c = (int)(m % GRID);
}

START_TEST(info_counts_and_flags) {
    fixture f;
    fixture_new(&f, "", false);
    ct_structure_info info;
    f.ops->info(f.self, &info);
    ck_assert_int_eq(info.n_parts, 1);
    ck_assert_int_eq(info.n_sets, 2);
    ck_assert_int_eq(info.rows_per_sample, ROWS);
    ck_assert_uint_eq(info.flags, CT_STRUCT_ROWS_NOT_ITEMS | CT_STRUCT_NEEDS_BATCH_NEGATIVES);
    ck_assert_str_eq(info.row_kind, "patches");
    /* PyTorch-style names under the prefix */
    ck_assert_ptr_nonnull(ct_params_find(f.store, "cpc.context.0.conv1.weight"));
    ck_assert_ptr_nonnull(ct_params_find(f.store, "cpc.context.2.conv2.bias"));
    ck_assert_ptr_nonnull(ct_params_find(f.store, "cpc.predictors.2.weight"));
    ck_assert_ptr_nonnull(ct_params_find(f.store, "cpc.predictors.4.weight"));
    ck_assert_ptr_null(ct_params_find(f.store, "cpc.predictors.1.weight"));
    ck_assert_ptr_null(ct_params_find(f.store, "cpc.context.3.conv1.weight"));
    fixture_free(&f);
    /* offsets 3..5 */
    fixture_new(&f, "min_offset = 3; max_offset = 5;", false);
    f.ops->info(f.self, &info);
    ck_assert_int_eq(info.rows_per_sample, (3 + 2 + 1) * GRID);
    fixture_free(&f);
}
END_TEST

/* Set 0 row j is the target patch (r + k, c) of its sample, cut at stride
 * 4; set 1 has the same rows; ids as documented. */
START_TEST(grid_alignment_and_ids) {
    fixture f;
    fixture_new(&f, "", true);
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new4(g, 3, 1, IMG, IMG);
    fill_images(x, 1);
    ct_embeddings e;
    ck_assert_msg(embed(&f, g, x, &e) == CT_OK, "%s", ct_graph_error(g));
    ck_assert_int_eq(e.n_sets, 2);
    ck_assert_int_eq(e.rows, 3 * ROWS);
    ck_assert_int_eq(e.rows_per_sample, ROWS);
    for (int s = 0; s < 2; s++) {
        ck_assert_int_eq(e.set[s]->ndim, 2);
        ck_assert_int_eq(e.set[s]->shape[0], 3 * ROWS);
        ck_assert_int_eq(e.set[s]->shape[1], PATCH * PATCH);
    }
    for (int64_t j = 0; j < e.rows; j++) {
        int i, k, r, c;
        row_coords(j, &i, &k, &r, &c);
        const float *z = e.set[0]->data + j * PATCH * PATCH;
        for (int y = 0; y < PATCH; y++)
            for (int q = 0; q < PATCH; q++) {
                float want = x->data[((int64_t)i * IMG + (r + k) * STRIDE + y) * IMG + c * STRIDE + q];
                ck_assert_msg(z[y * PATCH + q] == want, "row %lld (image %d, k %d, r %d, c %d) pixel %d,%d",
                              (long long)j, i, k, r, c, y, q);
            }
        ck_assert_int_eq(e.items[j], -1);
        ck_assert_int_eq(e.groups[j], i * GRID * GRID + (r + k) * GRID + c);
    }
    /* Rows predicting the same target share a group: (r=2,k=2), (r=1,k=3), (r=0,k=4) for target row 4. */
    int same = 0;
    for (int64_t j = 0; j < ROWS; j++) same += e.groups[j] == 4 * GRID + 1;
    ck_assert_int_eq(same, 3);
    ct_graph_free(g);
    fixture_free(&f);
    /* group = "image": one group per sample */
    fixture_new(&f, "group = \"image\";", true);
    g = ct_graph_new(0);
    x = ct_tensor_new4(g, 2, 1, IMG, IMG);
    fill_images(x, 2);
    ck_assert(embed(&f, g, x, &e) == CT_OK);
    for (int64_t j = 0; j < e.rows; j++) ck_assert_int_eq(e.groups[j], (int32_t)(j / ROWS));
    ct_graph_free(g);
    fixture_free(&f);
}
END_TEST

/* The k = 2 predictions from context rows 0..3 of sample 1 of a fixed
 * two-image batch; with `cut` >= 0 every pixel below patch row `cut`
 * (pixel rows >= 4 cut + 8, which only patch rows cut+1.. hold) is
 * shifted by 3. */
static void k2_predictions(fixture *f, int cut, float out[4][GRID * PATCH * PATCH]) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new4(g, 2, 1, IMG, IMG);
    fill_images(x, 3);
    if (cut >= 0)
        for (int64_t i = 0; i < 2; i++)
            for (int y = cut * STRIDE + PATCH; y < IMG; y++)
                for (int q = 0; q < IMG; q++) x->data[(i * IMG + y) * IMG + q] += 3.0f;
    ct_embeddings e;
    ck_assert(embed(f, g, x, &e) == CT_OK);
    for (int64_t j = 0; j < e.rows; j++) {
        int i, k, r, c;
        row_coords(j, &i, &k, &r, &c);
        if (i == 1 && k == 2)
            memcpy(out[r] + c * PATCH * PATCH, e.set[1]->data + j * PATCH * PATCH, PATCH * PATCH * sizeof(float));
    }
    ct_graph_free(g);
}

/* Perturbing the image below patch row r leaves the predictions from
 * context rows 0..r unchanged (up to the convolution's rounding: Winograd
 * tiles combine rows linearly) and changes those from row r+1. */
START_TEST(context_is_causal) {
    fixture f;
    fixture_new(&f, "", true);
    static float base[4][GRID * PATCH * PATCH], pert[4][GRID * PATCH * PATCH];
    k2_predictions(&f, -1, base);
    for (int cut = 0; cut < 3; cut++) {
        k2_predictions(&f, cut, pert);
        for (int r = 0; r <= cut; r++)
            for (int m = 0; m < GRID * PATCH * PATCH; m++)
                ck_assert_msg(fabsf(pert[r][m] - base[r][m]) <= 1e-4f * (1.0f + fabsf(base[r][m])),
                              "context row %d changed by the image below patch row %d: %g vs %g", r, cut,
                              pert[r][m], base[r][m]);
        double d = 0;
        for (int m = 0; m < GRID * PATCH * PATCH; m++) d += fabsf(pert[cut + 1][m] - base[cut + 1][m]);
        ck_assert_msg(d > 1e-2, "context row %d did not see its own row change (diff %g)", cut + 1, d);
    }
    fixture_free(&f);
}
END_TEST

/* Gradients reach every structure weight; the accuracy metric is recorded
 * in training mode for each offset, in [0, 1]. */
START_TEST(gradients_and_accuracy_metric) {
    fixture f;
    fixture_new(&f, "acc_every = 2;", true);
    g_n_metrics = 0;
    for (int step = 0; step < 3; step++) {
        ct_graph *g = ct_graph_new(0);
        ct_tensor *x = ct_tensor_new4(g, 2, 1, IMG, IMG);
        fill_images(x, 4);
        ct_embeddings e;
        ck_assert(embed(&f, g, x, &e) == CT_OK);
        ct_tensor *loss = ct_sum(g, ct_mul(g, e.set[1], e.set[1]));
        ck_assert_int_eq(ct_graph_backward(g, loss), CT_OK);
        ct_graph_free(g);
    }
    for (size_t i = 0; i < ct_params_count(f.store); i++) {
        const char *name;
        ct_tensor *t = ct_params_at(f.store, i, &name, NULL, NULL);
        double s = 0;
        for (int64_t k = 0; k < t->numel; k++) s += fabs(t->grad[k]);
        ck_assert_msg(s > 0, "no gradient reached %s", name);
    }
    ck_assert_int_eq(g_n_metrics, 6); /* steps 0 and 2, offsets 2..4 */
    ck_assert_str_eq(g_metric_names[0], "acc_k2");
    ck_assert_str_eq(g_metric_names[2], "acc_k4");
    for (int i = 0; i < g_n_metrics; i++) ck_assert(g_metrics[i] >= 0.0 && g_metrics[i] <= 1.0);
    /* evaluation mode records nothing */
    ct_graph *g = ct_graph_new(0);
    ct_graph_set_train(g, false);
    ct_tensor *x = ct_tensor_new4(g, 2, 1, IMG, IMG);
    fill_images(x, 4);
    ct_embeddings e;
    ck_assert(embed(&f, g, x, &e) == CT_OK);
    ck_assert_int_eq(g_n_metrics, 6);
    ct_graph_free(g);
    fixture_free(&f);
}
END_TEST

/* Settings that would make a shortcut or no prediction, and a batch of
 * the wrong size. */
START_TEST(wrong_inputs_refused) {
    fixture f;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(fixture_try(&f, "min_offset = 1;", 1, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "share pixels"), "%s", err.msg);
    fixture_free(&f);
    ck_assert_int_eq(fixture_try(&f, "max_offset = 6;", 1, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "6x6 grid"), "%s", err.msg);
    fixture_free(&f);
    ck_assert_int_eq(fixture_try(&f, "", 2, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "views = 1"), "%s", err.msg);
    fixture_free(&f);
    /* a batch of the wrong size fails the graph with a message */
    fixture_new(&f, "", false);
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_zeros(g, 4, (int64_t[]){2, 1, 24, 24});
    ct_embeddings e;
    ck_assert_int_eq(embed(&f, g, x, &e), CT_ERR_SHAPE);
    ck_assert_msg(strstr(ct_graph_error(g), "cpc:"), "%s", ct_graph_error(g));
    ct_graph_free(g);
    fixture_free(&f);
}
END_TEST

/* ---- whole runs through the CLI ---- */

static char g_out[1 << 16];

static void cli(int want_rc, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == want_rc, "`%s` exited %d:\n%s", cmd, rc, g_out);
}

#define SMALL_SETS                                                                                       \
    "--set data.train.limit=256 --set data.test.limit=64 --set train.batch_size=8 --set train.threads=1 " \
    "--set train.log_every=1 --set train.keep=0 --set encoder.stem_width=8 --set encoder.widths=[8,16,32] " \
    "--set train.max_steps=3 --set evaluation.every=0 --set 'evaluation.evaluators=()' "

static int read_losses(const char *run, double *losses, int max) {
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        const char *s = strstr(line, "\"step\": "), *l = strstr(line, "\"loss\": ");
        if (!strstr(line, "\"type\": \"step\"") || !s || !l) continue;
        int step;
        ck_assert_int_eq(sscanf(s, "\"step\": %d", &step), 1);
        ck_assert(step >= 0 && step < max);
        losses[step] = atof(l + 8);
        if (step + 1 > n) n = step + 1;
    }
    fclose(fp);
    return n;
}

START_TEST(trains_and_resumes_with_end_to_end) {
    const char *dir = ct_test_tmpdir();
    cli(0, "%s/contrast train %s/configs/cpc_fmnist.cfg " SMALL_SETS "--run-dir %s/full", ct_test_build_dir(),
        ct_test_source_dir(), dir);
    char run[1024];
    snprintf(run, sizeof run, "%s/full", dir);
    double a[8], b[8];
    ck_assert_int_eq(read_losses(run, a, 8), 3);
    for (int i = 0; i < 3; i++) ck_assert_msg(isfinite(a[i]) && a[i] > 0, "step %d loss %g", i, a[i]);
    ck_assert_msg(a[0] != a[1] || a[1] != a[2], "losses do not change: %g %g %g", a[0], a[1], a[2]);
    /* the accuracy metrics reach metrics.jsonl */
    char path[1100], text[1 << 15];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = 0;
    ck_assert_msg(strstr(text, "\"name\": \"cpc.acc_k2\"") && strstr(text, "\"name\": \"cpc.acc_k4\""), "%s", text);
    /* stopped after 2 steps and resumed: the same third loss */
    cli(0, "%s/contrast train %s/configs/cpc_fmnist.cfg " SMALL_SETS "--run-dir %s/cut --stop-after 2",
        ct_test_build_dir(), ct_test_source_dir(), dir);
    cli(0, "%s/contrast train %s/configs/cpc_fmnist.cfg " SMALL_SETS "--resume %s/cut", ct_test_build_dir(),
        ct_test_source_dir(), dir);
    ck_assert_msg(strstr(g_out, "resuming"), "%s", g_out);
    snprintf(run, sizeof run, "%s/cut", dir);
    ck_assert_int_eq(read_losses(run, b, 8), 3);
    for (int i = 0; i < 3; i++) ck_assert_msg(a[i] == b[i], "step %d: %.9g vs %.9g after resuming", i, a[i], b[i]);
    /* the checkpoint holds the structure's layers */
    snprintf(path, sizeof path, "%s/full/checkpoint-s00000003.safetensors", dir);
    fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = 0;
    bool found = false;
    for (size_t i = 0; i + 23 <= n && !found; i++) found = memcmp(text + i, "cpc.predictors.3.weight", 23) == 0;
    ck_assert_msg(found, "the checkpoint has no cpc.predictors.3.weight");
}
END_TEST

/* cpc with memory_bank: refused by contrast check with one line naming
 * both plugins and the reason, before any data is read. */
START_TEST(check_refuses_memory_bank) {
    const char *dir = ct_test_tmpdir();
    char src[1024], cfg[1024];
    snprintf(src, sizeof src, "%s/configs/cpc_fmnist.cfg", ct_test_source_dir());
    FILE *in = fopen(src, "r");
    ck_assert_ptr_nonnull(in);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, in);
    fclose(in);
    text[n] = 0;
    char *a = strstr(text, "architecture = {"), *end = a ? strstr(a, "};") : NULL;
    ck_assert(a && end);
    static char out[1 << 16];
    snprintf(out, sizeof out, "%.*sarchitecture = { type = \"memory_bank\"; };%s", (int)(a - text), text, end + 2);
    snprintf(cfg, sizeof cfg, "%s/cpc_membank.cfg", dir);
    ck_assert_int_eq(ct_test_write_file(cfg, out, strlen(out)), 0);
    cli(1, "%s/contrast check %s", ct_test_build_dir(), cfg);
    ck_assert_msg(strstr(g_out, "structure cpc with architecture memory_bank") &&
                      strstr(g_out, "rows are patches, not dataset items"),
                  "%s", g_out);
    const char *line = strstr(g_out, "structure cpc");
    const char *nl = strchr(line, '\n');
    ck_assert_msg(nl == NULL || nl[1] == 0, "more than one line: %s", g_out);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cpc");
    TCase *tc = tcase_create("structure");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, info_counts_and_flags);
    tcase_add_test(tc, grid_alignment_and_ids);
    tcase_add_test(tc, context_is_causal);
    tcase_add_test(tc, gradients_and_accuracy_metric);
    tcase_add_test(tc, wrong_inputs_refused);
    suite_add_tcase(s, tc);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 600);
    tcase_add_test(runs, trains_and_resumes_with_end_to_end);
    tcase_add_test(runs, check_refuses_memory_bank);
    suite_add_tcase(s, runs);
    return s;
}

int main(void) { return ct_test_main(suite()); }

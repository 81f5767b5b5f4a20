/* Data-parallel training (host/dist): the one-rank collectives and the
 * gather op, synchronised batch norm against the batch it stands for, and
 * end to end under `mpirun -np 2` (skipped, saying so, when mpirun or the
 * MPI build is absent): 2 ranks x batch 64 with train.sync_bn give the
 * per-step losses and final weights of 1 process x batch 128 for SimCLR,
 * MoCo, SwAV and the memory bank; a 2-rank checkpoint resumed in 1 process
 * continues identically; MoCo's shuffled batch norm across ranks equals
 * one process with the same sub-batches, and its key batch norm mixes the
 * ranks' samples; a failing or killed rank ends the job. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "contrast/contrast.h"
#include "ct_test.h"
#include "dist/dist.h"
#include "dist/grad_buckets.h"
#include "training/checkpoint.h"

/* ---- one rank ------------------------------------------------------------------ */

START_TEST(one_rank_collectives_are_identities) {
    ck_assert_int_eq(ct_dist_rank(), 0);
    ck_assert_int_eq(ct_dist_size(), 1);
    ct_error err = CT_ERROR_INIT;
    float v[5] = {1, -2, 3.5f, 4, 1e-9f}, keep[5];
    memcpy(keep, v, sizeof v);
    ck_assert_int_eq(ct_dist_average_floats(v, 5, &err), CT_OK);
    ck_assert_int_eq(ct_dist_broadcast(v, 5, 0, &err), CT_OK);
    ck_assert_int_eq(ct_dist_sum_floats(v, 5, &err), CT_OK);
    ck_assert_int_eq(memcmp(v, keep, sizeof v), 0);
    int64_t items[3] = {7, 8, 9}, out[3] = {0}, counts[1] = {0};
    ck_assert_int_eq(ct_dist_all_gather(items, 3, sizeof *items, out, counts, &err), CT_OK);
    ck_assert_int_eq(counts[0], 3);
    ck_assert_int_eq(memcmp(items, out, sizeof items), 0);
    ck_assert(ct_dist_all_ok(true));
    ck_assert(!ct_dist_all_ok(false));
}
END_TEST

/* The gather op on one rank: the same rows, and the gradient passes through. */
START_TEST(gather_rows_passes_gradients_through) {
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new2(g, 3, 2);
    for (int i = 0; i < 6; i++) x->data[i] = (float)i - 2.5f;
    x->flags |= CT_TENSOR_REQUIRES_GRAD;
    ct_tensor *y = ct_dist_gather_rows(g, x);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->shape[0], 3);
    ck_assert_int_eq(memcmp(x->data, y->data, 6 * sizeof(float)), 0);
    ct_tensor *l = ct_sum(g, ct_mul(g, y, y));
    ck_assert_int_eq(ct_graph_backward(g, l), CT_OK);
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(x->grad[i], 2 * x->data[i], 1e-6);
    ct_tensor *bad = ct_tensor_new1(g, 4);
    ck_assert_ptr_null(ct_dist_gather_rows(g, bad));
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "(n, F)"));
    ct_graph_free(g);
}
END_TEST

/* The backward hook sees every op that ran, last first; the bucketed
 * backward on one rank gives the plain backward's gradients, and the store
 * is cut at tensor boundaries (4 tensors of 6, 10, 3 and 20 floats in
 * buckets of at least 8: [20], [3, 10], [6]). */
static int64_t g_seen[64];
static int g_n_seen;
static void seen(void *ctx, ct_graph *g, int64_t i) {
    (void)ctx, (void)g;
    if (g_n_seen < 64) g_seen[g_n_seen++] = i;
}

static ct_tensor *small_loss(ct_graph *g, ct_tensor *const *w) {
    ct_tensor *x = ct_tensor_new2(g, 2, 3);
    for (int i = 0; i < 6; i++) x->data[i] = 0.25f * (float)i - 0.4f;
    ct_tensor *h = ct_mul(g, ct_add(g, x, ct_reshape(g, w[0], 2, (int64_t[]){2, 3})), x);
    ct_tensor *l = ct_sum(g, ct_mul(g, h, h));
    l = ct_add(g, l, ct_sum(g, ct_mul(g, w[1], w[1])));
    return ct_add(g, l, ct_sum(g, ct_mul(g, w[3], w[3])));
}

START_TEST(bucketed_backward_is_the_plain_one) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(5);
    const int64_t sizes[4] = {6, 10, 3, 20};
    ct_tensor *w[4];
    char name[16];
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "w%d", k);
        w[k] = ct_params_add(p, name, CT_PARAM_TRAINABLE, 1, &sizes[k], CT_INIT_NORMAL, 0.5f, 0, &err);
        ck_assert_ptr_nonnull(w[k]);
    }
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    ct_graph *g = ct_graph_new(0);
    float plain[39];
    ct_params_zero_grad(p);
    ct_tensor *l = small_loss(g, w);
    int64_t nodes = ct_graph_node_count(g);
    ck_assert_int_gt(nodes, 5);
    ck_assert_ptr_null(ct_graph_node_at(g, nodes));
    g_n_seen = 0;
    ct_graph_set_backward_hook(g, seen, NULL);
    ck_assert_int_eq(ct_graph_backward(g, l), CT_OK);
    ct_graph_set_backward_hook(g, NULL, NULL);
    ck_assert_int_eq(g_n_seen, nodes);
    for (int i = 1; i < g_n_seen; i++) ck_assert_int_lt(g_seen[i], g_seen[i - 1]);
    memcpy(plain, ct_params_grad(p), sizeof plain);
    ct_graph_reset(g);

    ct_grad_buckets *b = ct_grad_buckets_new(p, 8, &err);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(ct_grad_buckets_count(b), 3);
    ct_params_zero_grad(p);
    l = small_loss(g, w);
    ck_assert_int_eq(ct_grad_buckets_backward(b, g, l, &err), CT_OK);
    ck_assert_int_eq(memcmp(plain, ct_params_grad(p), sizeof plain), 0);
    ct_grad_buckets_free(b);
    ct_graph_free(g);
    ct_params_free(p);
}
END_TEST

/* ---- synchronised batch norm ---------------------------------------------------- */

/* A hook standing for this process (rank 0) and a second one with the
 * same batch: every sum twice, but the shifts (the C + 1 values of the
 * first call: C shifts and the count) come from rank 0 alone. */
static int g_hook_calls;
static size_t g_channels;
static ct_status twice(void *ctx, double *v, size_t n) {
    (void)ctx;
    g_hook_calls++;
    bool shifts = n == g_channels + 1;
    for (size_t i = shifts ? n - 1 : 0; i < n; i++) v[i] *= 2;
    return CT_OK;
}

static ct_status refuse(void *ctx, double *v, size_t n) {
    (void)ctx, (void)v, (void)n;
    return CT_ERR_IO;
}

/* bn(x) with the hook is the first half of bn([x; x]) without it, forward
 * (outputs, running statistics of 2N elements) and backward with dy
 * duplicated (dx; gamma and beta get this process's share: half). */
static void sync_bn_case(bool relu, bool residual) {
    const int64_t N = 3, C = 4, H = 5, W = 5, per = C * H * W;
    ct_graph *g = ct_graph_new(0);
    ct_tensor *x = ct_tensor_new4(g, N, C, H, W), *xx = ct_tensor_new4(g, 2 * N, C, H, W);
    ct_tensor *r = ct_tensor_new4(g, N, C, H, W), *rr = ct_tensor_new4(g, 2 * N, C, H, W);
    ct_tensor *w[2], *b[2], *rm[2], *rv[2];
    for (int k = 0; k < 2; k++) {
        w[k] = ct_tensor_new1(g, C), b[k] = ct_tensor_new1(g, C);
        rm[k] = ct_tensor_zeros(g, 1, (int64_t[]){C}), rv[k] = ct_tensor_new1(g, C);
        for (int c = 0; c < C; c++) w[k]->data[c] = 0.5f + 0.3f * c, b[k]->data[c] = 0.2f - 0.1f * c, rv[k]->data[c] = 1;
        w[k]->flags |= CT_TENSOR_REQUIRES_GRAD, b[k]->flags |= CT_TENSOR_REQUIRES_GRAD;
    }
    for (int64_t i = 0; i < N * per; i++) {
        x->data[i] = 3.0f + sinf(0.37f * (float)i) * (1.0f + (float)(i % 7));
        r->data[i] = cosf(0.11f * (float)i);
    }
    memcpy(xx->data, x->data, (size_t)(N * per) * sizeof(float));
    memcpy(xx->data + N * per, x->data, (size_t)(N * per) * sizeof(float));
    memcpy(rr->data, r->data, (size_t)(N * per) * sizeof(float));
    memcpy(rr->data + N * per, r->data, (size_t)(N * per) * sizeof(float));
    x->flags |= CT_TENSOR_REQUIRES_GRAD, xx->flags |= CT_TENSOR_REQUIRES_GRAD;

    ct_engine_opts eo;
    ct_engine_opts_init(&eo);
    ct_graph_set_engine(g, &eo);
    ct_tensor *y2 = residual ? ct_batchnorm_add_relu(g, xx, w[1], b[1], rm[1], rv[1], 0.1f, 1e-5f, rr)
                    : relu   ? ct_batchnorm_relu(g, xx, w[1], b[1], rm[1], rv[1], 0.1f, 1e-5f)
                             : ct_batchnorm(g, xx, w[1], b[1], rm[1], rv[1], 0.1f, 1e-5f);
    eo.allreduce_sum = twice;
    ct_graph_set_engine(g, &eo);
    g_hook_calls = 0;
    g_channels = (size_t)C;
    ct_tensor *y1 = residual ? ct_batchnorm_add_relu(g, x, w[0], b[0], rm[0], rv[0], 0.1f, 1e-5f, r)
                    : relu   ? ct_batchnorm_relu(g, x, w[0], b[0], rm[0], rv[0], 0.1f, 1e-5f)
                             : ct_batchnorm(g, x, w[0], b[0], rm[0], rv[0], 0.1f, 1e-5f);
    ck_assert_ptr_nonnull(y1);
    ck_assert_ptr_nonnull(y2);
    ck_assert_int_eq(g_hook_calls, 2); /* the shifts and count, then the sums */
    /* The one-process formula with the same shift: equal to the last bit
     * but for the rounding of double sums. */
    for (int64_t i = 0; i < N * per; i++) ck_assert_float_eq_tol(y1->data[i], y2->data[i], 1e-6);
    for (int c = 0; c < C; c++) {
        ck_assert_float_eq_tol(rm[0]->data[c], rm[1]->data[c], 1e-6);
        ck_assert_float_eq_tol(rv[0]->data[c], rv[1]->data[c], 1e-5);
    }
    /* The loss weights every row alike: dy = a fixed pattern, duplicated. */
    ct_tensor *p1 = ct_tensor_new4(g, N, C, H, W), *p2 = ct_tensor_new4(g, 2 * N, C, H, W);
    for (int64_t i = 0; i < N * per; i++) p1->data[i] = p2->data[i] = p2->data[i + N * per] = sinf(0.05f * (float)i);
    ct_tensor *l = ct_add(g, ct_sum(g, ct_mul(g, y1, p1)), ct_sum(g, ct_mul(g, y2, p2)));
    ck_assert_int_eq(ct_graph_backward(g, l), CT_OK);
    ck_assert_int_eq(g_hook_calls, 3); /* and the two gradient sums, once */
    for (int64_t i = 0; i < N * per; i++) ck_assert_float_eq_tol(x->grad[i], xx->grad[i], 2e-4);
    for (int c = 0; c < C; c++) {
        ck_assert_float_eq_tol(2 * w[0]->grad[c], w[1]->grad[c], 2e-3);
        ck_assert_float_eq_tol(2 * b[0]->grad[c], b[1]->grad[c], 2e-3);
    }
    /* Evaluation mode uses the running statistics and never the hook. */
    ct_graph_set_train(g, false);
    g_hook_calls = 0;
    ck_assert_ptr_nonnull(ct_batchnorm(g, x, w[0], b[0], rm[0], rv[0], 0.1f, 1e-5f));
    ck_assert_int_eq(g_hook_calls, 0);
    /* A failing hook fails the op. */
    ct_graph_set_train(g, true);
    eo.allreduce_sum = refuse;
    ct_graph_set_engine(g, &eo);
    ck_assert_ptr_null(ct_batchnorm(g, x, w[0], b[0], rm[0], rv[0], 0.1f, 1e-5f));
    ck_assert_ptr_nonnull(strstr(ct_graph_error(g), "over processes"));
    ct_graph_free(g);
}

START_TEST(sync_bn_is_the_batch_of_every_process) {
    sync_bn_case(false, false);
    sync_bn_case(true, false);
    sync_bn_case(true, true);
}
END_TEST

/* ---- under mpirun --------------------------------------------------------------- */

static char out[1 << 16];

/* The end of `out` for a failure message: Check refuses messages over
 * about 4 KB (and then reports only an early exit), and a run's log ends
 * with the reason. */
static const char *out_tail(void) {
    size_t n = strlen(out);
    return n > 3000 ? out + n - 3000 : out;
}

/* Whether the suite can run MPI jobs here; says why not once. */
static bool mpi_ready(void) {
    static int ready = -1;
    if (ready >= 0) return ready;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s/contrast' version", ct_test_build_dir());
    bool built = ct_test_run(cmd, out, sizeof out) == 0 && strstr(out, "MPI: built in");
    bool launcher = ct_test_run("command -v mpirun", out, sizeof out) == 0;
    ready = built && launcher;
    if (!ready)
        fprintf(stderr, "test_dist: SKIPPED the mpirun tests: %s\n",
                !built ? "this build has no MPI (install libopenmpi-dev and reconfigure)" : "mpirun is not installed");
    return ready;
}

/* A 5-step experiment of `arch` over 640 Fashion-MNIST images: a small
 * ResNet and a head with batch norm, SGD at `lr`, global batch 128. */
static void write_config_eval(const char *path, const char *arch, double lr, bool eval) {
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "name = \"dist\"; seed = 3;\n"
                     "data = { train = { type = \"idx\"; limit = 640;\n"
                     "  images = \"/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz\"; %s}; %s};\n"
                     "encoder = { type = \"resnet\"; block = \"basic\"; in_channels = 1; stem = \"small\";\n"
                     "  stem_width = 8; blocks = [1, 1]; widths = [8, 16]; };\n"
                     "pipelines = ( { data = \"train\"; views = 2; transforms = (\n"
                     "  { type = \"random_resized_crop\"; size = [16]; scale = [0.3, 1.0]; },\n"
                     "  { type = \"hflip\"; p = 0.5; } ); } );\n"
                     "architecture = { %s head_hidden = [32]; head_out = 16; head_bn = true; };\n"
                     "optimizer = { type = \"sgd\"; lr = %g; momentum = 0.9; };\n"
                     "schedule = { type = \"constant\"; };\n"
                     "train = { epochs = 1; batch_size = 128; threads = 1; max_steps = 5; log_every = 1;\n"
                     "  sync_bn = true; };\n%s",
                     eval ? "labels = \"/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz\"; " : "",
                     eval ? "test = { type = \"idx\"; limit = 301;\n"
                            "  images = \"/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\";\n"
                            "  labels = \"/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\"; }; "
                          : "",
                     arch, lr,
                     eval ? "evaluation = { train = \"train\"; test = \"test\";\n"
                            "  transforms = ( { type = \"resize\"; size = [16]; } );\n"
                            "  evaluators = ( { type = \"knn\"; k = 20; temperature = 0.1; } ); };\n"
                          : "");
    ck_assert_int_eq(ct_test_write_file(path, text, (size_t)n), 0);
}

/* `contrast train CFG --run-dir DIR EXTRA` on `ranks` processes (1: no
 * launcher). im2col convolutions: the automatic choice depends on the
 * batch size, and the two algorithms differ by rounding. */
static void write_config(const char *path, const char *arch, double lr) { write_config_eval(path, arch, lr, false); }

static int train(int ranks, const char *cfg, const char *dir, const char *extra) {
    char cmd[4096], launcher[256] = "";
    if (ranks > 1)
        snprintf(launcher, sizeof launcher,
                 "mpirun --oversubscribe --allow-run-as-root -x ASAN_OPTIONS -x CT_CONV_ALGO -np %d ", ranks);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ASAN_OPTIONS=detect_leaks=0 CT_CONV_ALGO=im2col CONTRAST_PLUGIN_PATH='%s/plugins' "
             "timeout 300 %s'%s/contrast' train '%s' --run-dir '%s' %s",
             ct_test_source_dir(), ct_test_build_dir(), launcher, ct_test_build_dir(), cfg, dir, extra);
    return ct_test_run(cmd, out, sizeof out);
}

/* The per-step losses of a run's metrics.jsonl, by step. */
static int read_losses(const char *dir, double *loss, int max) {
    char path[1200], line[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"type\": \"step\"")) continue;
        long long step;
        double l;
        const char *s = strstr(line, "\"step\": "), *ls = strstr(line, "\"loss\": ");
        ck_assert(s && ls && sscanf(s, "\"step\": %lld", &step) == 1 && sscanf(ls, "\"loss\": %lf", &l) == 1);
        if (step >= 0 && step < max) loss[step] = l, n = (int)step + 1 > n ? (int)step + 1 : n;
    }
    fclose(f);
    return n;
}

static void same_losses(const char *a, const char *b, int steps) {
    double la[16], lb[16];
    ck_assert_int_eq(read_losses(a, la, 16), steps);
    ck_assert_int_eq(read_losses(b, lb, 16), steps);
    for (int s = 0; s < steps; s++)
        ck_assert_msg(fabs(la[s] - lb[s]) <= 1e-5 * fabs(la[s]), "step %d: loss %.9g (%s) vs %.9g (%s)", s, la[s], a,
                      lb[s], b);
}

/* Every float tensor of the newest checkpoints (weights, buffers, optimizer
 * state) within 1e-5 of the largest magnitude of that tensor; with
 * skip_key_stats, not the key side's batch-norm running statistics and
 * counts (each rank's own under MoCo's shuffle across ranks, and never
 * read). */
static void same_weights_but(const char *a, const char *b, bool skip_key_stats) {
    char pa[1200], pb[1200];
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_latest(a, pa, sizeof pa, &err), CT_OK);
    ck_assert_int_eq(ct_checkpoint_latest(b, pb, sizeof pb, &err), CT_OK);
    ct_safetensors *fa = NULL, *fb = NULL;
    ck_assert_msg(ct_safetensors_open(pa, &fa, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(ct_safetensors_open(pb, &fb, &err) == CT_OK, "%s", err.msg);
    ck_assert_uint_eq(ct_safetensors_count(fa), ct_safetensors_count(fb));
    size_t compared = 0;
    for (size_t i = 0; i < ct_safetensors_count(fa); i++) {
        const ct_safetensors_tensor *ta = ct_safetensors_at(fa, i), *tb = ct_safetensors_find(fb, ta->name);
        ck_assert_msg(tb && tb->nbytes == ta->nbytes, "%s differs in size", ta->name);
        if (ta->dtype != CT_SAFETENSORS_F32) continue;
        if (skip_key_stats && strncmp(ta->name, "key_", 4) == 0 &&
            (strstr(ta->name, ".running_") || strstr(ta->name, ".num_batches_tracked")))
            continue;
        size_t n = ta->nbytes / sizeof(float);
        float *va = malloc(ta->nbytes + 4), *vb = malloc(tb->nbytes + 4);
        memcpy(va, ta->data, ta->nbytes);
        memcpy(vb, tb->data, tb->nbytes);
        double top = 0, diff = 0;
        for (size_t k = 0; k < n; k++) {
            top = fmax(top, fabs(va[k]));
            diff = fmax(diff, fabs((double)va[k] - vb[k]));
        }
        ck_assert_msg(diff <= 1e-5 * top, "%s: max difference %g of max magnitude %g", ta->name, diff, top);
        free(va);
        free(vb);
        compared++;
    }
    ck_assert_uint_gt(compared, 10);
    ct_safetensors_close(fa);
    ct_safetensors_close(fb);
}

static void same_weights(const char *a, const char *b) { same_weights_but(a, b, false); }

/* The float tensor `name` of the run's newest checkpoint into v (n floats). */
static void read_tensor(const char *dir, const char *name, float *v, size_t n) {
    char path[1200];
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_latest(dir, path, sizeof path, &err), CT_OK);
    ct_safetensors *f = NULL;
    ck_assert_msg(ct_safetensors_open(path, &f, &err) == CT_OK, "%s", err.msg);
    const ct_safetensors_tensor *t = ct_safetensors_find(f, name);
    ck_assert_msg(t && t->dtype == CT_SAFETENSORS_F32 && t->nbytes == n * sizeof(float), "%s in %s", name, path);
    memcpy(v, t->data, n * sizeof(float));
    ct_safetensors_close(f);
}

/* The architectures and a learning rate each that keeps 5 steps where
 * rounding is not amplified beyond 1e-5: the memory bank's NCE loss here
 * grows a rounding difference ~10x per step at lr 0.01 (1 process with
 * im2col against Winograd convolutions ends 14% apart); at 0.003 the
 * float32 AVX-512 GEMM's rounding (gemm/sgemm_avx512.c) ended 3.3e-5 of
 * bn1.bias's magnitude apart on an AMD EPYC (OpenBLAS's within 1e-5),
 * at 0.001 within 1e-5. Sinkhorn's
 * exp(score / epsilon) at SwAV's epsilon 0.05 amplifies the ranks' other
 * summation order about 1000x over 5 steps (conv1 8.5e-5 relative apart on
 * an AMD EPYC with AVX-512, under 1e-5 on a Xeon); at 0.5 the two runs end
 * 7e-8 apart, as the other architectures do. */
static const struct {
    const char *arch;
    double lr;
} archs[] = {
    {"type = \"end_to_end\"; temperature = 0.5;", 0.01},
    {"type = \"momentum\"; queue_size = 256; shuffle_splits = 1;", 0.01},
    {"type = \"clustering\"; prototypes = 10; queue_length = 256; epsilon = 0.5;", 0.01},
    {"type = \"memory_bank\"; negatives = 64;", 0.001},
};

START_TEST(two_ranks_equal_one_process) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], one[1200], two[1200];
    snprintf(cfg, sizeof cfg, "%s/dist.cfg", tmp);
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(two, sizeof two, "%s/two", tmp);
    write_config(cfg, archs[_i].arch, archs[_i].lr);
    ck_assert_msg(train(1, cfg, one, "") == 0, "%s", out_tail());
    ck_assert_msg(train(2, cfg, two, "") == 0, "%s", out_tail());
    ck_assert_msg(strstr(out, "2 ranks x batch 64") != NULL, "%s", out_tail());
    /* rank 0 alone writes the report (two ranks raced on its temp file) */
    char report[1300];
    snprintf(report, sizeof report, "%s/report.html", two);
    ck_assert_msg(strstr(out, "no report") == NULL && access(report, R_OK) == 0, "%s", out_tail());
    same_losses(one, two, 5);
    same_weights(one, two);
}
END_TEST

/* Stop a 2-rank run after 3 steps, resume it in 1 process (the global
 * batch is the config's): the same 5 steps as 1 process throughout. */
START_TEST(two_rank_checkpoint_resumes_in_one_process) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], one[1200], mixed[1200];
    snprintf(cfg, sizeof cfg, "%s/dist.cfg", tmp);
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(mixed, sizeof mixed, "%s/mixed", tmp);
    write_config(cfg, archs[0].arch, archs[0].lr);
    ck_assert_msg(train(1, cfg, one, "") == 0, "%s", out_tail());
    ck_assert_msg(train(2, cfg, mixed, "--stop-after 3") == 0, "%s", out_tail());
    ck_assert_msg(strstr(out, "stopped after step 3") != NULL, "%s", out_tail());
    ck_assert_msg(train(1, cfg, mixed, "--resume") == 0, "%s", out_tail());
    ck_assert_msg(strstr(out, "resuming") != NULL, "%s", out_tail());
    same_losses(one, mixed, 5);
    same_weights(one, mixed);
    /* and back: a 1-process checkpoint continued on 2 ranks */
    char back[1200];
    snprintf(back, sizeof back, "%s/back", tmp);
    ck_assert_msg(train(1, cfg, back, "--stop-after 2") == 0, "%s", out_tail());
    ck_assert_msg(train(2, cfg, back, "--resume") == 0, "%s", out_tail());
    same_losses(one, back, 5);
    same_weights(one, back);
}
END_TEST

/* MoCo's shuffled batch norm across ranks (shuffle_across_ranks, the
 * default): 2 ranks x 64 forward one (splits 2) or two (splits 4)
 * sub-batches each of one permutation of the global 128, so the keys,
 * losses and weights are those of 1 process with the same shuffle_splits;
 * only the key side's running statistics are each rank's (skipped). */
START_TEST(moco_shuffle_across_ranks_equals_one_process) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], one[1200], two[1200], arch[256];
    snprintf(cfg, sizeof cfg, "%s/dist.cfg", tmp);
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(two, sizeof two, "%s/two", tmp);
    snprintf(arch, sizeof arch, "type = \"momentum\"; queue_size = 256; shuffle_splits = %d;", _i ? 4 : 2);
    write_config(cfg, arch, 0.01);
    ck_assert_msg(train(1, cfg, one, "") == 0, "%s", out_tail());
    ck_assert_msg(train(2, cfg, two, "") == 0, "%s", out_tail());
    same_losses(one, two, 5);
    same_weights_but(one, two, true);
}
END_TEST

/* The key encoder's batch norm on rank 0 sees samples of both ranks: after
 * one step, its first running mean (0.9 x 0 + 0.1 x the mean over its
 * sub-batch) differs from the one of a rank-local shuffle, which sees only
 * rank 0's 64 samples, while the query encoder's (rank-local in both runs,
 * no sync_bn) is the same. */
START_TEST(moco_key_batch_norm_mixes_ranks) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], across[1200], local[1200];
    snprintf(cfg, sizeof cfg, "%s/dist.cfg", tmp);
    snprintf(across, sizeof across, "%s/across", tmp);
    snprintf(local, sizeof local, "%s/local", tmp);
    write_config(cfg, "type = \"momentum\"; queue_size = 256; shuffle_splits = 2;", 0.01);
    const char *one_step = "--set train.max_steps=1 --set train.sync_bn=false";
    char extra[512];
    ck_assert_msg(train(2, cfg, across, one_step) == 0, "%s", out_tail());
    snprintf(extra, sizeof extra, "%s --set architecture.shuffle_across_ranks=false --set architecture.shuffle_splits=1",
             one_step);
    ck_assert_msg(train(2, cfg, local, extra) == 0, "%s", out_tail());
    float ka[8], kl[8], qa[8], ql[8];
    read_tensor(across, "key_encoder.bn1.running_mean", ka, 8);
    read_tensor(local, "key_encoder.bn1.running_mean", kl, 8);
    read_tensor(across, "encoder.bn1.running_mean", qa, 8);
    read_tensor(local, "encoder.bn1.running_mean", ql, 8);
    double top = 0, key_diff = 0, query_diff = 0;
    for (int c = 0; c < 8; c++) {
        top = fmax(top, fabs(ka[c]));
        key_diff = fmax(key_diff, fabs((double)ka[c] - kl[c]));
        query_diff = fmax(query_diff, fabs((double)qa[c] - ql[c]));
    }
    ck_assert_msg(top > 0 && key_diff > 1e-3 * top, "key running mean: max difference %g of %g", key_diff, top);
    ck_assert_msg(query_diff <= 1e-6 * top, "query running mean: max difference %g", query_diff);
}
END_TEST

/* Every tensor of the two runs' newest checkpoints byte for byte. */
static void identical_weights(const char *a, const char *b) {
    char pa[1200], pb[1200];
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_latest(a, pa, sizeof pa, &err), CT_OK);
    ck_assert_int_eq(ct_checkpoint_latest(b, pb, sizeof pb, &err), CT_OK);
    ct_safetensors *fa = NULL, *fb = NULL;
    ck_assert_msg(ct_safetensors_open(pa, &fa, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(ct_safetensors_open(pb, &fb, &err) == CT_OK, "%s", err.msg);
    ck_assert_uint_eq(ct_safetensors_count(fa), ct_safetensors_count(fb));
    for (size_t i = 0; i < ct_safetensors_count(fa); i++) {
        const ct_safetensors_tensor *ta = ct_safetensors_at(fa, i), *tb = ct_safetensors_find(fb, ta->name);
        ck_assert_msg(tb && tb->nbytes == ta->nbytes && memcmp(ta->data, tb->data, ta->nbytes) == 0,
                      "%s differs", ta->name);
    }
    ct_safetensors_close(fa);
    ct_safetensors_close(fb);
}

/* Gradients averaged in buckets during backward (train.grad_overlap,
 * 4 KiB buckets: dozens of them, most started before backward ends) give
 * the blocking average's losses and weights bit for bit: SimCLR and MoCo
 * (frozen key tensors, gathers and sync BN inside backward). */
START_TEST(overlapped_average_is_bitwise_the_blocking_one) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], plain[1200], overlap[1200];
    snprintf(cfg, sizeof cfg, "%s/dist.cfg", tmp);
    snprintf(plain, sizeof plain, "%s/plain", tmp);
    snprintf(overlap, sizeof overlap, "%s/overlap", tmp);
    write_config(cfg, _i ? "type = \"momentum\"; queue_size = 256; shuffle_splits = 2;" : archs[0].arch, 0.01);
    ck_assert_msg(train(2, cfg, plain, "--set train.grad_overlap=false") == 0, "%s", out_tail());
    ck_assert_msg(train(2, cfg, overlap, "--set train.grad_overlap=true --set train.grad_bucket_kb=4") == 0, "%s",
                  out);
    ck_assert_msg(strstr(out, "gradients averaged in buckets during backward") != NULL, "%s", out_tail());
    double la[16], lb[16];
    ck_assert_int_eq(read_losses(plain, la, 16), 5);
    ck_assert_int_eq(read_losses(overlap, lb, 16), 5);
    for (int k = 0; k < 5; k++) ck_assert_msg(la[k] == lb[k], "step %d: %.17g vs %.17g", k, la[k], lb[k]);
    identical_weights(plain, overlap);
}
END_TEST

/* knn.top1 of the run's (last) evaluation line. */
static double eval_top1(const char *dir) {
    char path[1200], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    double top1 = -1;
    while (fgets(line, sizeof line, f)) {
        const char *k = strstr(line, "\"knn.top1\": ");
        if (strstr(line, "\"type\": \"eval\"") && k) ck_assert(sscanf(k, "\"knn.top1\": %lf", &top1) == 1);
    }
    fclose(f);
    return top1;
}

/* Evaluation features in shards (301 test items: 150 + 151), gathered in
 * index order: the same kNN accuracy as one process. */
START_TEST(evaluation_in_shards_equals_one_process) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], one[1200], two[1200];
    snprintf(cfg, sizeof cfg, "%s/dist.cfg", tmp);
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(two, sizeof two, "%s/two", tmp);
    write_config_eval(cfg, archs[0].arch, archs[0].lr, true);
    ck_assert_msg(train(1, cfg, one, "") == 0, "%s", out_tail());
    ck_assert_msg(train(2, cfg, two, "") == 0, "%s", out_tail());
    double a = eval_top1(one), b = eval_top1(two);
    ck_assert_msg(a > 0 && a == b, "knn.top1 %g (1 process) vs %g (2 ranks)", a, b);
}
END_TEST

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A global batch that does not divide over the ranks, a rank whose data
 * is missing, a rank killed mid-run: the job ends non-zero, soon, naming
 * the rank and the reason; the checkpoints written stay whole. */
START_TEST(a_failing_rank_ends_the_job) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], dir[1200], cmd[8192];
    snprintf(cfg, sizeof cfg, "%s/dist.cfg", tmp);
    write_config(cfg, archs[0].arch, archs[0].lr);
    snprintf(dir, sizeof dir, "%s/odd", tmp);
    ck_assert_int_ne(train(3, cfg, dir, ""), 0);
    ck_assert_msg(strstr(out, "does not divide over 3 ranks") && strstr(out, "rank "), "%s", out_tail());
    /* MoCo's shuffle across 3 ranks with 2 sub-batches: refused, saying why. */
    snprintf(dir, sizeof dir, "%s/splits", tmp);
    write_config(cfg, "type = \"momentum\"; queue_size = 256; shuffle_splits = 2;", 0.01);
    ck_assert_int_ne(train(3, cfg, dir, "--set train.batch_size=126"), 0);
    ck_assert_msg(strstr(out, "shuffle_splits = 2 is below the 3 ranks"), "%s", out_tail());
    write_config(cfg, archs[0].arch, archs[0].lr);
    /* Rank 1 alone reads a file that is not there. */
    snprintf(dir, sizeof dir, "%s/missing", tmp);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && CONTRAST_PLUGIN_PATH='%s/plugins' ASAN_OPTIONS=detect_leaks=0 timeout 120 mpirun "
             "--oversubscribe --allow-run-as-root -x ASAN_OPTIONS -np 2 sh -c 'if [ $OMPI_COMM_WORLD_RANK = 1 ]; then "
             "set -- --set data.train.images=/no/such/file.gz; fi; exec \"%s/contrast\" train \"%s\" --run-dir \"%s\" "
             "\"$@\"'",
             ct_test_source_dir(), ct_test_build_dir(), ct_test_build_dir(), cfg, dir);
    double t0 = now_s();
    int rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc != 0 && rc != 124, "rc %d: %s", rc, out_tail());
    ck_assert_msg(strstr(out, "rank 1 of 2") && strstr(out, "/no/such/file.gz"), "%s", out_tail());
    /* Rank 1 killed (SIGKILL) while both continue a run from a checkpoint
     * (a million more steps: it cannot end by itself; 200 took 2.7 s on an
     * AMD EPYC with AVX-512, before rank 1's 4 s): the job ends soon, and the
     * newest checkpoint still opens. */
    snprintf(dir, sizeof dir, "%s/killed", tmp);
    ck_assert_msg(train(2, cfg, dir, "--stop-after 1") == 0, "%s", out_tail());
    const char *more = "--resume --allow-config-change --set train.max_steps=1000000 --set train.epochs=100000";
    snprintf(cmd, sizeof cmd,
             "cd '%s' && CONTRAST_PLUGIN_PATH='%s/plugins' ASAN_OPTIONS=detect_leaks=0 timeout 120 mpirun "
             "--oversubscribe --allow-run-as-root -x ASAN_OPTIONS -np 2 sh -c 'if [ $OMPI_COMM_WORLD_RANK = 1 ]; then "
             "exec timeout -s KILL 4 \"%s/contrast\" train \"%s\" --run-dir \"%s\" %s; fi; "
             "exec \"%s/contrast\" train \"%s\" --run-dir \"%s\" %s'",
             ct_test_source_dir(), ct_test_build_dir(), ct_test_build_dir(), cfg, dir, more, ct_test_build_dir(), cfg,
             dir, more);
    t0 = now_s();
    rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc != 0 && rc != 124, "rc %d: %s", rc, out_tail());
    ck_assert_msg(now_s() - t0 < 90, "the job took %.0f s to end", now_s() - t0);
    ck_assert_msg(strstr(out, "rank 1") || strstr(out, "signal 9") || strstr(out, "Killed"), "%s", out_tail());
    char ck[1200];
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_latest(dir, ck, sizeof ck, &err), CT_OK);
    ct_safetensors *f = NULL;
    ck_assert_msg(ct_safetensors_open(ck, &f, &err) == CT_OK, "%s", err.msg);
    ct_safetensors_close(f);
}
END_TEST

/* A NaN on one rank (rank 1's loss from step index 6 on, nan_probe): the
 * job ends non-zero, naming the rank and the step, and the newest
 * checkpoint is the good one of step 4. */
START_TEST(a_rank_with_a_nan_ends_the_job) {
    if (!mpi_ready()) return;
    const char *tmp = ct_test_tmpdir();
    char cfg[1200], dir[1200], cmd[8192], text[2048];
    snprintf(cfg, sizeof cfg, "%s/nan.cfg", tmp);
    snprintf(dir, sizeof dir, "%s/nan", tmp);
    int n = snprintf(text, sizeof text,
                     "name = \"nan_probe\"; seed = 3;\n"
                     "plugins = { path = [\"%s/tests/plugins/nan_probe\"]; };\n"
                     "data = { train = { type = \"idx\"; limit = 64;\n"
                     "  images = \"/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\"; }; };\n"
                     "encoder = { type = \"pixels\"; };\n"
                     "pipelines = ( { data = \"train\"; views = 1; transforms = (\n"
                     "  { type = \"normalize\"; mean = [0.2860]; std = [0.3530]; } ); } );\n"
                     "architecture = { type = \"nan_probe\"; };\n"
                     "optimizer = { type = \"sgd\"; lr = 0.1; };\n"
                     "train = { epochs = 3; batch_size = 16; threads = 1; checkpoint_every = 1; keep = 0; };\n",
                     ct_test_build_dir());
    ck_assert_int_eq(ct_test_write_file(cfg, text, (size_t)n), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && CONTRAST_PLUGIN_PATH='%s/plugins' ASAN_OPTIONS=detect_leaks=0 timeout 120 mpirun "
             "--oversubscribe --allow-run-as-root -x ASAN_OPTIONS -np 2 sh -c 'if [ $OMPI_COMM_WORLD_RANK = 1 ]; then "
             "set -- --set architecture.nan_step=6; fi; exec \"%s/contrast\" train \"%s\" --run-dir \"%s\" \"$@\"'",
             ct_test_source_dir(), ct_test_build_dir(), ct_test_build_dir(), cfg, dir);
    double t0 = now_s();
    int rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc != 0 && rc != 124, "rc %d: %s", rc, out_tail());
    ck_assert_msg(now_s() - t0 < 90, "the job took %.0f s to end", now_s() - t0);
    ck_assert_msg(strstr(out, "rank 1 of 2") && strstr(out, "loss is nan in step 7 of 12"), "%s", out_tail());
    char ck[1200];
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_latest(dir, ck, sizeof ck, &err), CT_OK);
    ck_assert_msg(strstr(ck, "checkpoint-s00000004.safetensors"), "%s", ck);
    ct_safetensors *f = NULL;
    ck_assert_msg(ct_safetensors_open(ck, &f, &err) == CT_OK, "%s", err.msg);
    ct_safetensors_close(f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("one rank");
    tcase_add_test(tc, one_rank_collectives_are_identities);
    tcase_add_test(tc, gather_rows_passes_gradients_through);
    tcase_add_test(tc, sync_bn_is_the_batch_of_every_process);
    tcase_add_test(tc, bucketed_backward_is_the_plain_one);
    suite_add_tcase(s, tc);
    TCase *mpi = tcase_create("mpirun");
    tcase_set_timeout(mpi, 600);
    tcase_add_loop_test(mpi, two_ranks_equal_one_process, 0, 4);
    tcase_add_loop_test(mpi, moco_shuffle_across_ranks_equals_one_process, 0, 2);
    tcase_add_test(mpi, moco_key_batch_norm_mixes_ranks);
    tcase_add_loop_test(mpi, overlapped_average_is_bitwise_the_blocking_one, 0, 2);
    tcase_add_test(mpi, two_rank_checkpoint_resumes_in_one_process);
    tcase_add_test(mpi, evaluation_in_shards_equals_one_process);
    tcase_add_test(mpi, a_failing_rank_ends_the_job);
    tcase_add_test(mpi, a_rank_with_a_nan_ends_the_job);
    suite_add_tcase(s, mpi);
    return ct_test_main(s);
}

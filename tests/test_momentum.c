/* The momentum architecture (MoCo v2): key weights after one step equal
 * m*key + (1-m)*query exactly, start() copies the query weights, the queue
 * is a FIFO ring with wrap-around, InfoNCE against the queue on a
 * hand-made case, shuffled-BN keys restore the sample order, a 20-step
 * training run, and resume equality at 1 thread (losses, key encoder,
 * queue). */
#include <stdarg.h>

#include <contrast/safetensors.h>

#include "../plugins/architecture/momentum/queue_math.h"
#include "ct_arch_test.h"

START_TEST(test_queue_fifo_wraps) {
    /* Capacity 5 rows of 2; push 3, then 3 more: the 6th row overwrites the
     * oldest (row 0), the pointer ends at 1. */
    float q[10] = {0}, keys[6];
    int64_t ptr = 0;
    for (int i = 0; i < 6; i++) keys[i] = (float)(i + 1); /* rows (1,2) (3,4) (5,6) */
    moco_enqueue(q, 5, 2, &ptr, keys, 3);
    ck_assert_int_eq(ptr, 3);
    for (int i = 0; i < 6; i++) keys[i] = (float)(10 + i); /* rows (10,11) (12,13) (14,15) */
    moco_enqueue(q, 5, 2, &ptr, keys, 3);
    ck_assert_int_eq(ptr, 1);
    const float want[10] = {14, 15, 3, 4, 5, 6, 10, 11, 12, 13};
    for (int i = 0; i < 10; i++) ck_assert_float_eq(q[i], want[i]);
    /* More rows than the capacity: the newest 5 remain, in ring order. */
    float many[14];
    for (int i = 0; i < 14; i++) many[i] = (float)(100 + i);
    moco_enqueue(q, 5, 2, &ptr, many, 7);
    ck_assert_int_eq(ptr, 3);
    const float want2[10] = {108, 109, 110, 111, 112, 113, 104, 105, 106, 107};
    for (int i = 0; i < 10; i++) ck_assert_float_eq(q[i], want2[i]);
}
END_TEST

START_TEST(test_splits_keep_two_samples) {
    ck_assert_int_eq(moco_splits(256, 4), 4);
    ck_assert_int_eq(moco_splits(6, 4), 3);
    ck_assert_int_eq(moco_splits(3, 4), 1);
    ck_assert_int_eq(moco_splits(1, 8), 1);
}
END_TEST

#define TINY_RESNET "stem = \"small\"; stem_width = 4; blocks = [1]; widths = [4];"

/* Every key tensor with its query tensor. */
static int for_each_pair(arch_fixture *f, void (*fn)(ct_tensor *key, ct_tensor *query, void *ctx), void *ctx) {
    int pairs = 0;
    for (size_t i = 0; i < ct_params_count(f->store); i++) {
        const char *name;
        ct_param_kind kind;
        uint32_t flags;
        ct_tensor *k = ct_params_at(f->store, i, &name, &kind, &flags);
        if (kind != CT_PARAM_TRAINABLE || strncmp(name, "key_", 4) != 0) continue;
        ct_tensor *q = ct_params_find(f->store, name + 4);
        ck_assert_msg(q != NULL, "no query tensor for %s", name);
        fn(k, q, ctx);
        pairs++;
    }
    return pairs;
}

static void check_equal(ct_tensor *k, ct_tensor *q, void *ctx) {
    (void)ctx;
    ck_assert_int_eq(k->numel, q->numel);
    ck_assert_msg(memcmp(k->data, q->data, (size_t)k->numel * sizeof(float)) == 0, "key differs from query");
    ck_assert_msg(!(k->flags & CT_TENSOR_REQUIRES_GRAD), "key tensor is trainable");
}

/* Pretend the optimizer moved the query: q += 0.01 * (i % 7 - 3). */
static void move_query(ct_tensor *k, ct_tensor *q, void *ctx) {
    (void)k;
    (void)ctx;
    for (int64_t i = 0; i < q->numel; i++) q->data[i] += 0.01f * (float)(i % 7 - 3);
}

typedef struct saved_keys {
    float *data[64];
    int n;
} saved_keys;

static void save_key(ct_tensor *k, ct_tensor *q, void *ctx) {
    (void)q;
    saved_keys *s = ctx;
    s->data[s->n] = malloc((size_t)k->numel * sizeof(float));
    memcpy(s->data[s->n++], k->data, (size_t)k->numel * sizeof(float));
}

typedef struct check_ema_ctx {
    saved_keys *old;
    int i;
    float m;
} check_ema_ctx;

static void check_ema(ct_tensor *k, ct_tensor *q, void *ctx) {
    check_ema_ctx *c = ctx;
    const float *old = c->old->data[c->i++];
    for (int64_t i = 0; i < k->numel; i++) {
        float want = c->m * old[i] + (1.0f - c->m) * q->data[i];
        ck_assert_msg(k->data[i] == want, "key[%lld] = %.9g, m*key + (1-m)*query = %.9g", (long long)i,
                      (double)k->data[i], (double)want);
    }
}

START_TEST(test_key_ema_exact) {
    arch_fixture f;
    arch_fixture_new(&f, "resnet", TINY_RESNET, 1, 8, 8, "momentum",
                     "momentum = 0.99; queue_size = 16; shuffle_splits = 2; head_hidden = [6]; head_out = 5;", 100,
                     false);
    /* start(): key weights are a copy of the query weights. */
    int pairs = for_each_pair(&f, check_equal, NULL);
    ck_assert_int_ge(pairs, 6); /* conv, bn, fc weights and the head */
    ck_assert_ptr_nonnull(ct_params_find(f.store, "key_encoder.conv1.weight"));
    ck_assert_ptr_nonnull(ct_params_find(f.store, "key_head.2.weight"));
    float pts[2 * 4 * 64];
    for (int i = 0; i < 2 * 4 * 64; i++) pts[i] = (float)((i * 37) % 101) / 101.0f;
    for_each_pair(&f, move_query, NULL);
    saved_keys old = {{NULL}, 0};
    for_each_pair(&f, save_key, &old);
    double loss = arch_fixture_step(&f, pts, 4, 2, NULL, 0, true);
    ck_assert(isfinite(loss));
    check_ema_ctx c = {&old, 0, 0.99f};
    for_each_pair(&f, check_ema, &c);
    for (int i = 0; i < old.n; i++) free(old.data[i]);
    /* The step's 4 keys were enqueued: the pointer moved, the rows are unit. */
    ct_tensor *queue = ct_params_find(f.store, "queue");
    ck_assert_float_eq(ct_params_find(f.store, "queue_ptr")->data[0], 4.0f);
    for (int r = 0; r < 4; r++) {
        double s = 0;
        for (int j = 0; j < 5; j++) s += queue->data[r * 5 + j] * queue->data[r * 5 + j];
        ck_assert_double_eq_tol(s, 1.0, 1e-5);
    }
    arch_fixture_free(&f);
}
END_TEST

/* pixels encoder over 1x1x2 inputs, identity heads: q and k are the views
 * normalised. */
static void moco_fixture(arch_fixture *f, const char *extra) {
    char settings[512];
    snprintf(settings, sizeof settings, "head_hidden = []; head_out = 2; %s", extra);
    arch_fixture_new(f, "pixels", "", 1, 1, 2, "momentum", settings, 10, true);
    arch_fixture_identity(f, "head.0.weight", "head.0.bias");
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(f->arch->start(f->self, &err) == CT_OK, "%s", err.msg);
}

START_TEST(test_loss_hand_case) {
    arch_fixture f;
    moco_fixture(&f, "temperature = 0.5; queue_size = 3; shuffle_splits = 1;");
    ct_tensor *queue = ct_params_find(f.store, "queue");
    const float negs[6] = {1, 0, 0, 1, -1, 0};
    memcpy(queue->data, negs, sizeof negs);
    /* q = (1, 0) and (0, 1); k = (0.6, 0.8) and (0.8, 0.6). */
    const float pts[8] = {2, 0, 0, 5, 3, 4, 8, 6};
    double got = arch_fixture_step(&f, pts, 2, 2, NULL, 0, false);
    double t = 0.5;
    double l0 = log(exp(0.6 / t) + exp(1 / t) + exp(0 / t) + exp(-1 / t)) - 0.6 / t;
    double l1 = log(exp(0.6 / t) + exp(0 / t) + exp(1 / t) + exp(0 / t)) - 0.6 / t;
    double want = (l0 + l1) / 2;
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, hand-computed %.7f", got, want);
    arch_fixture_free(&f);
}
END_TEST

START_TEST(test_symmetric_and_shuffled_keys) {
    /* Shuffled sub-batches restore the order: with identity heads (no batch
     * norm) the loss equals the unshuffled one; symmetric adds the swapped
     * term. */
    const float pts[16] = {2, 0, 0, 5, 1, 1, -1, 2, 3, 4, 8, 6, 1, -1, 0, -2};
    double loss[3];
    const char *cfg[3] = {"shuffle_splits = 1; symmetric = false;", "shuffle_splits = 2; symmetric = false;",
                          "shuffle_splits = 2; symmetric = true;"};
    for (int c = 0; c < 3; c++) {
        arch_fixture f;
        char s[256];
        snprintf(s, sizeof s, "temperature = 0.2; queue_size = 8; %s", cfg[c]);
        moco_fixture(&f, s);
        loss[c] = arch_fixture_step(&f, pts, 4, 2, NULL, 3, false);
        arch_fixture_free(&f);
    }
    ck_assert_msg(fabs(loss[0] - loss[1]) < 1e-5, "shuffled %.7f vs plain %.7f", loss[1], loss[0]);
    ck_assert_msg(fabs(loss[2] - loss[1]) > 1e-4, "symmetric loss %.7f equals the one-sided one", loss[2]);
}
END_TEST

/* The queue starts as random unit vectors: 64 keys (2 steps of 32) make it
 * real, so the comparison starts at step 2. */
START_TEST(test_smoke_run) {
    arch_smoke_run("moco_fmnist.cfg", "--set architecture.queue_size=64", 2);
}
END_TEST

/* ---- resume equality through build/contrast ---------------------------------- */

/* 64 images, batch 16: 4 steps per epoch, 12 steps in all; the stop at 7 is
 * mid-epoch. A queue of 40 keys takes 16 per step and wraps: the stop
 * leaves its pointer at 7 * 16 mod 40 = 32, not at 0, so a resume that
 * lost the pointer (and so overwrote other rows) would change the losses.
 * 2 shuffle splits keep the shuffled key path in play; no evaluators (the
 * comparison is of training state). */
#define RESUME_STEPS 12
#define RESUME_SETS                                                                                         \
    "--set data.train.limit=64 --set data.test.limit=64 --set train.batch_size=16 --set train.threads=1 "   \
    "--set train.log_every=5 --set train.keep=0 --set encoder.stem_width=8 --set encoder.widths=[8,16,32] " \
    "--set architecture.queue_size=40 --set architecture.shuffle_splits=2 --set train.max_steps=12 "        \
    "--set train.epochs=3 --set evaluation.every=0 --set 'evaluation.evaluators=()'"

static char g_out[1 << 16];

static void cli(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "`%s` exited %d:\n%s", cmd, rc, g_out);
}

/* Per-step losses of a run's metrics.jsonl, as printed ("%.9g"), by step;
 * returns one past the last step seen. */
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

static ct_safetensors *open_checkpoint(const char *run, const char *suffix) {
    char path[2200];
    snprintf(path, sizeof path, "%s/checkpoint-s%08d%s", run, RESUME_STEPS, suffix);
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_open(path, &f, &err) == CT_OK, "%s", err.msg);
    return f;
}

/* Every tensor of `a` is in `b` with the same dtype, shape and bytes, and
 * the counts agree. Returns how many tensors have a name starting with
 * `prefix` (NULL: none counted). */
static int same_tensors(const ct_safetensors *a, const ct_safetensors *b, const char *prefix) {
    ck_assert_int_eq(ct_safetensors_count(a), ct_safetensors_count(b));
    int matched = 0;
    for (size_t i = 0; i < ct_safetensors_count(a); i++) {
        const ct_safetensors_tensor *x = ct_safetensors_at(a, i), *y = ct_safetensors_find(b, x->name);
        ck_assert_msg(y != NULL, "%s missing from the resumed checkpoint", x->name);
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_int_eq(x->ndim, y->ndim);
        for (int d = 0; d < x->ndim; d++) ck_assert_int_eq(x->shape[d], y->shape[d]);
        ck_assert_uint_eq(x->nbytes, y->nbytes);
        ck_assert_msg(memcmp(x->data, y->data, x->nbytes) == 0, "%s differs after resume", x->name);
        if (prefix && strncmp(x->name, prefix, strlen(prefix)) == 0) matched++;
    }
    return matched;
}

static float first_float(const ct_safetensors *f, const char *name) {
    const ct_safetensors_tensor *t = ct_safetensors_find(f, name);
    ck_assert_msg(t != NULL && t->dtype == CT_SAFETENSORS_F32, "no F32 tensor %s", name);
    float v;
    memcpy(&v, t->data, sizeof v);
    return v;
}

START_TEST(test_resume_identical) {
    const char *dir = ct_test_tmpdir();
    const char *cfg = "configs/moco_fmnist.cfg";
    cli("%s/contrast train %s/%s " RESUME_SETS " --run-dir %s/full", ct_test_build_dir(), ct_test_source_dir(), cfg,
        dir);
    cli("%s/contrast train %s/%s " RESUME_SETS " --run-dir %s/cut --stop-after 7", ct_test_build_dir(),
        ct_test_source_dir(), cfg, dir);
    ck_assert_msg(strstr(g_out, "stopped after step 7"), "%s", g_out);
    cli("%s/contrast train %s/%s " RESUME_SETS " --resume %s/cut", ct_test_build_dir(), ct_test_source_dir(), cfg,
        dir);
    ck_assert_msg(strstr(g_out, "resuming") && strstr(g_out, "at step 7"), "%s", g_out);

    static char a[64][32], b[64][32];
    char run[1024];
    snprintf(run, sizeof run, "%s/full", dir);
    ck_assert_int_eq(read_losses(run, a, 64), RESUME_STEPS);
    snprintf(run, sizeof run, "%s/cut", dir);
    ck_assert_int_eq(read_losses(run, b, 64), RESUME_STEPS);
    for (int i = 0; i < RESUME_STEPS; i++) ck_assert_msg(strcmp(a[i], b[i]) == 0, "step %d: %s vs %s", i, a[i], b[i]);

    /* The final checkpoints: every tensor byte for byte, the key encoder,
     * key head and queue by name among them. */
    snprintf(run, sizeof run, "%s/full", dir);
    ct_safetensors *fa = open_checkpoint(run, ".safetensors");
    snprintf(run, sizeof run, "%s/cut", dir);
    ct_safetensors *fb = open_checkpoint(run, ".safetensors");
    ck_assert_int_ge(same_tensors(fa, fb, "key_encoder."), 6);
    ck_assert_int_ge(same_tensors(fa, fb, "key_head."), 2);
    ck_assert_int_eq(same_tensors(fa, fb, "queue"), 2); /* queue, queue_ptr */
    const ct_safetensors_tensor *q = ct_safetensors_find(fa, "queue");
    ck_assert_int_eq(q->ndim, 2);
    ck_assert_int_eq(q->shape[0], 40);
    /* 12 steps x 16 keys into a ring of 40. */
    ck_assert_float_eq(first_float(fa, "queue_ptr"), (float)(RESUME_STEPS * 16 % 40));
    /* The key encoder is a moving average, not a copy of the query one:
     * equality above is not equality of the query weights in disguise. */
    const ct_safetensors_tensor *kw = ct_safetensors_find(fa, "key_encoder.conv1.weight"),
                                *qw = ct_safetensors_find(fa, "encoder.conv1.weight");
    ck_assert_msg(kw && qw && kw->nbytes == qw->nbytes, "conv1 weights missing");
    ck_assert_msg(memcmp(kw->data, qw->data, kw->nbytes) != 0, "key encoder equals the query encoder");
    ct_safetensors_close(fa);
    ct_safetensors_close(fb);
    /* The optimizer state (moments, step count, progress) resumes too. */
    snprintf(run, sizeof run, "%s/full", dir);
    fa = open_checkpoint(run, ".state.safetensors");
    snprintf(run, sizeof run, "%s/cut", dir);
    fb = open_checkpoint(run, ".state.safetensors");
    same_tensors(fa, fb, NULL);
    ct_safetensors_close(fa);
    ct_safetensors_close(fb);
}
END_TEST

int main(void) {
    Suite *s = suite_create("momentum");
    TCase *unit = tcase_create("moco");
    tcase_add_test(unit, test_queue_fifo_wraps);
    tcase_add_test(unit, test_splits_keep_two_samples);
    tcase_add_test(unit, test_key_ema_exact);
    tcase_add_test(unit, test_loss_hand_case);
    tcase_add_test(unit, test_symmetric_and_shuffled_keys);
    suite_add_tcase(s, unit);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 300);
    tcase_add_test(runs, test_smoke_run);
    tcase_add_test(runs, test_resume_identical);
    suite_add_tcase(s, runs);
    return ct_test_main(s);
}

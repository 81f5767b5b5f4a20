/* The momentum architecture (MoCo v2): key weights after one step equal
 * m*key + (1-m)*query exactly, start() copies the query weights, the queue
 * is a FIFO ring with wrap-around, InfoNCE against the queue on a
 * hand-made case, shuffled-BN keys restore the sample order, and a
 * 20-step training run. */
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
    suite_add_tcase(s, runs);
    return ct_test_main(s);
}

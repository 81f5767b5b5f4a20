/* The memory_bank architecture (InstDisc/PIRL): the bank update and its
 * renormalisation on known vectors, negative sampling never drawing the
 * positive's own item, the NCE and InfoNCE losses on hand-made cases, the
 * bank's round trip through a checkpoint, and a 20-step training run. */
#include "../plugins/architecture/memory_bank/bank_math.h"
#include "training/checkpoint.h"
#include "ct_arch_test.h"
#include "ct_gradcheck.h"

START_TEST(test_ema_row_known_vectors) {
    /* m = (1, 0), f = (0, 1), beta = 0.5: (0.5, 0.5) renormalised. */
    float m[2] = {1, 0}, f[2] = {0, 1};
    bank_ema_row(m, f, 2, 0.5f);
    ck_assert_float_eq_tol(m[0], (float)M_SQRT1_2, 1e-7f);
    ck_assert_float_eq_tol(m[1], (float)M_SQRT1_2, 1e-7f);
    /* m = (0, 0.6, 0.8), f = (1, 0, 0), beta = 0.75: (0.25, 0.45, 0.6) / 0.79057. */
    float m3[3] = {0, 0.6f, 0.8f}, f3[3] = {1, 0, 0};
    bank_ema_row(m3, f3, 3, 0.75f);
    double nrm = sqrt(0.25 * 0.25 + 0.45 * 0.45 + 0.6 * 0.6);
    ck_assert_float_eq_tol(m3[0], (float)(0.25 / nrm), 1e-6f);
    ck_assert_float_eq_tol(m3[1], (float)(0.45 / nrm), 1e-6f);
    ck_assert_float_eq_tol(m3[2], (float)(0.6 / nrm), 1e-6f);
    /* beta = 1 keeps the entry; beta = 0 replaces it by f (already unit). */
    float keep[2] = {0.6f, 0.8f}, g[2] = {1, 0};
    bank_ema_row(keep, g, 2, 1.0f);
    ck_assert_float_eq_tol(keep[0], 0.6f, 1e-7f);
    bank_ema_row(keep, g, 2, 0.0f);
    ck_assert_float_eq(keep[0], 1.0f);
    ck_assert_float_eq(keep[1], 0.0f);
}
END_TEST

START_TEST(test_negatives_exclude_own_index) {
    ct_rng r;
    ct_rng_init(&r, 7, 1);
    int64_t neg[4096];
    const int64_t n = 10;
    for (int64_t item = 0; item < n; item++) {
        int counts[10] = {0};
        bank_sample_negatives(&r, item, n, 4096, neg);
        for (int j = 0; j < 4096; j++) {
            ck_assert_msg(neg[j] >= 0 && neg[j] < n, "negative %lld out of range", (long long)neg[j]);
            ck_assert_msg(neg[j] != item, "item %lld drew itself", (long long)item);
            counts[neg[j]]++;
        }
        /* Every other item is drawn, about uniformly (4096/9 = 455 each). */
        for (int64_t o = 0; o < n; o++)
            if (o != item) ck_assert_msg(counts[o] > 300 && counts[o] < 610, "item %lld drawn %d times", (long long)o, counts[o]);
    }
    /* Two items: the only negative is the other one. */
    bank_sample_negatives(&r, 1, 2, 64, neg);
    for (int j = 0; j < 64; j++) ck_assert_int_eq(neg[j], 0);
}
END_TEST

START_TEST(test_nce_row_hand_case) {
    /* s = [2, 0.5, -1], shift = 1: softplus(-1) + softplus(-0.5) + softplus(-2). */
    float s[3] = {2.0f, 0.5f, -1.0f}, grad[3];
    double want = log1p(exp(-1.0)) + log1p(exp(-0.5)) + log1p(exp(-2.0));
    ck_assert_double_eq_tol(bank_nce_row(s, 2, 1.0, grad), want, 1e-12);
    ck_assert_float_eq_tol(grad[0], (float)(-1.0 / (1.0 + exp(1.0))), 1e-7f);
    ck_assert_float_eq_tol(grad[1], (float)(1.0 / (1.0 + exp(0.5))), 1e-7f);
    /* Far logits do not overflow. */
    float far[2] = {-300.0f, 300.0f};
    ck_assert(isfinite(bank_nce_row(far, 1, 0.0, NULL)));
}
END_TEST

/* pixels encoder over 1x1x2 inputs, identity head: the embedding of a point
 * is the point normalised. */
static void bank_fixture(arch_fixture *f, const char *extra, int64_t items) {
    char settings[512];
    snprintf(settings, sizeof settings, "head_hidden = []; head_out = 2; %s", extra);
    arch_fixture_new(f, "pixels", "", 1, 1, 2, "memory_bank", settings, items, false);
    arch_fixture_identity(f, "head.0.weight", "head.0.bias");
}

START_TEST(test_infonce_hand_case_and_update) {
    arch_fixture f;
    bank_fixture(&f, "loss = \"infonce\"; temperature = 0.5; negatives = 5; bank_momentum = 0.25;", 4);
    /* Bank: item 0 = (1, 0), every other item (0, 1), so whatever the
     * draw every negative of item 0 is (0, 1). */
    ct_tensor *bank = ct_params_find(f.store, "bank.memory");
    ck_assert_ptr_nonnull(bank);
    const float rows[8] = {1, 0, 0, 1, 0, 1, 0, 1};
    memcpy(bank->data, rows, sizeof rows);
    const float pts[2] = {3, 4}; /* q = (0.6, 0.8) */
    int64_t items[1] = {0};
    double got = arch_fixture_step(&f, pts, 1, 1, items, 0, true);
    double a = 0.6 / 0.5, b = 0.8 / 0.5, want = log(exp(a) + 5 * exp(b)) - a;
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, hand-computed %.7f", got, want);
    /* after_step: m0 <- 0.25 (1, 0) + 0.75 (0.6, 0.8) = (0.7, 0.6), renormalised. */
    double nrm = hypot(0.7, 0.6);
    ck_assert_float_eq_tol(bank->data[0], (float)(0.7 / nrm), 1e-6f);
    ck_assert_float_eq_tol(bank->data[1], (float)(0.6 / nrm), 1e-6f);
    ck_assert_float_eq(bank->data[2], 0.0f); /* other items untouched */
    ck_assert_float_eq(ct_params_find(f.store, "bank.seen")->data[0], 1.0f);
    arch_fixture_free(&f);
}
END_TEST

START_TEST(test_pirl_two_views_lambda) {
    arch_fixture f;
    bank_fixture(&f, "loss = \"infonce\"; temperature = 1.0; negatives = 3; lambda = 0.3;", 4);
    ct_tensor *bank = ct_params_find(f.store, "bank.memory");
    const float rows[8] = {1, 0, 0, 1, 0, 1, 0, 1};
    memcpy(bank->data, rows, sizeof rows);
    /* view 0 (v_I) = (1, 0), view 1 (v_I^t) = (0, 1). */
    const float pts[4] = {1, 0, 0, 1};
    int64_t items[1] = {0};
    double got = arch_fixture_step(&f, pts, 1, 2, items, 0, false);
    double l0 = log(exp(1.0) + 3) - 1, l1 = log(1 + 3 * exp(1.0));
    double want = 0.3 * l1 + 0.7 * l0;
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, expected %.7f", got, want);
    arch_fixture_free(&f);
}
END_TEST

/* positive = "cross_view": each term's positive is the other view (view 1
 * for the view-0 term, view 0 for view 1), not the bank entry; the bank
 * still supplies the negatives and stores view 0. */
START_TEST(test_cross_view_positive) {
    arch_fixture f;
    bank_fixture(&f, "loss = \"infonce\"; positive = \"cross_view\"; temperature = 1.0; negatives = 3; "
                     "lambda = 0.3; bank_momentum = 0.5;", 4);
    ct_tensor *bank = ct_params_find(f.store, "bank.memory");
    /* Item 0's entry (0.6, 0.8) would give other logits if it were used. */
    const float rows[8] = {0.6f, 0.8f, 0, 1, 0, 1, 0, 1};
    memcpy(bank->data, rows, sizeof rows);
    const float pts[4] = {1, 0, 0, 1}; /* view 0 = (1, 0), view 1 = (0, 1) */
    int64_t items[1] = {0};
    double got = arch_fixture_step(&f, pts, 1, 2, items, 0, true);
    /* View-0 term: positive (0, 1) -> s 0, negatives (0, 1) -> s 0.
     * View-1 term: positive (1, 0) -> s 0, negatives -> s 1. */
    double l0 = log(4.0), l1 = log(1 + 3 * exp(1.0));
    double want = 0.3 * l1 + 0.7 * l0;
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, expected %.7f", got, want);
    /* The bank still moves towards view 0: 0.5 (0.6, 0.8) + 0.5 (1, 0). */
    double nrm = hypot(0.8, 0.4);
    ck_assert_float_eq_tol(bank->data[0], (float)(0.8 / nrm), 1e-6f);
    ck_assert_float_eq_tol(bank->data[1], (float)(0.4 / nrm), 1e-6f);
    arch_fixture_free(&f);
}
END_TEST

/* batch_negatives: each row's negatives are its K bank draws plus the
 * other rows' positives. */
START_TEST(test_batch_negatives) {
    arch_fixture f;
    bank_fixture(&f, "loss = \"infonce\"; batch_negatives = true; temperature = 1.0; negatives = 1;", 3);
    ct_tensor *bank = ct_params_find(f.store, "bank.memory");
    /* Item 2's entry is 0, so every bank draw scores 0 for both rows. */
    const float rows[6] = {1, 0, 0, 1, 0, 0};
    memcpy(bank->data, rows, sizeof rows);
    const float pts[4] = {1, 0, 0, 1}; /* item 0 -> (1, 0), item 1 -> (0, 1) */
    int64_t items[2] = {0, 1};
    double got = arch_fixture_step(&f, pts, 2, 1, items, 0, false);
    /* Per row: positive 1, one bank negative 0, the other row's positive 0. */
    double want = log(exp(1.0) + 2) - 1;
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, expected %.7f", got, want);
    arch_fixture_free(&f);
}
END_TEST

START_TEST(test_nce_z_estimated_once) {
    arch_fixture f;
    bank_fixture(&f, "loss = \"nce\"; temperature = 1.0; negatives = 4;", 5);
    ct_tensor *bank = ct_params_find(f.store, "bank.memory"), *z = ct_params_find(f.store, "bank.nce_z");
    for (int i = 0; i < 5; i++) {
        bank->data[2 * i] = 0;
        bank->data[2 * i + 1] = 1;
    }
    bank->data[0] = 1;
    bank->data[1] = 0;
    const float pts[2] = {1, 0};
    int64_t items[1] = {0};
    double got = arch_fixture_step(&f, pts, 1, 1, items, 0, false);
    /* Negatives all (0, 1): s = 0, Z = 5 * e^0, shift = log(5 * 4 / 5). */
    ck_assert_float_eq_tol(z->data[0], 5.0f, 1e-5f);
    double shift = log(4.0), want = log1p(exp(shift - 1)) + 4 * log1p(exp(-shift));
    ck_assert_msg(fabs(got - want) < 1e-5, "loss %.7f, expected %.7f", got, want);
    /* A second batch keeps the constant. */
    bank->data[3] = 0.5f;
    arch_fixture_step(&f, pts, 1, 1, items, 1, false);
    ck_assert_float_eq_tol(z->data[0], 5.0f, 1e-5f);
    arch_fixture_free(&f);
}
END_TEST

START_TEST(test_first_seen_init) {
    arch_fixture f;
    bank_fixture(&f, "init = \"first_seen\"; temperature = 1.0; negatives = 2; bank_momentum = 0.5;", 3);
    ct_tensor *bank = ct_params_find(f.store, "bank.memory");
    const float pts[4] = {0, 2, 4, 0};
    int64_t items[2] = {2, 0};
    arch_fixture_step(&f, pts, 2, 1, items, 0, true);
    /* First sight: the entries are the embeddings themselves. */
    ck_assert_float_eq(bank->data[4], 0.0f);
    ck_assert_float_eq(bank->data[5], 1.0f);
    ck_assert_float_eq(bank->data[0], 1.0f);
    ck_assert_float_eq(bank->data[1], 0.0f);
    /* Second sight: moving average. */
    const float again[4] = {2, 0, 4, 0};
    arch_fixture_step(&f, again, 2, 1, items, 1, true);
    ck_assert_float_eq_tol(bank->data[4], (float)M_SQRT1_2, 1e-6f);
    ck_assert_float_eq_tol(bank->data[5], (float)M_SQRT1_2, 1e-6f);
    arch_fixture_free(&f);
}
END_TEST

START_TEST(test_bank_checkpoint_round_trip) {
    arch_fixture f, h;
    bank_fixture(&f, "loss = \"nce\"; negatives = 4;", 6);
    const float pts[6] = {1, 2, -3, 1, 0.5f, -1};
    int64_t items[3] = {4, 1, 5};
    arch_fixture_step(&f, pts, 3, 1, items, 0, true);
    const char *dir = ct_test_tmpdir();
    char saved[1024];
    ct_error err = CT_ERROR_INIT;
    ct_train_progress pr = {0, 1, 1};
    ck_assert_msg(ct_checkpoint_save(dir, f.store, NULL, &pr, NULL, 0, saved, sizeof saved, &err) == CT_OK, "%s",
                  err.msg);
    bank_fixture(&h, "loss = \"nce\"; negatives = 4;", 6);
    ck_assert_msg(ct_checkpoint_load(saved, h.store, NULL, NULL, &err) == CT_OK, "%s", err.msg);
    const char *names[3] = {"bank.memory", "bank.seen", "bank.nce_z"};
    for (int k = 0; k < 3; k++) {
        ct_tensor *a = ct_params_find(f.store, names[k]), *b = ct_params_find(h.store, names[k]);
        ck_assert(a && b && a->numel == b->numel);
        ck_assert_msg(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0, "%s differs", names[k]);
    }
    ck_assert_float_ne(ct_params_find(h.store, "bank.nce_z")->data[0], 0.0f);
    ck_assert_float_eq(ct_params_find(h.store, "bank.seen")->data[4], 1.0f);
    arch_fixture_free(&f);
    arch_fixture_free(&h);
}
END_TEST

START_TEST(test_refuses_bad_items) {
    arch_fixture f;
    bank_fixture(&f, "", 3);
    const float pts[2] = {1, 0};
    int64_t items[1] = {3};
    ct_batch b = arch_fixture_batch(&f, pts, 1, 1, items);
    ct_step_info info = {0, 0, 1, 1};
    ck_assert_ptr_null(f.arch->loss(f.self, f.g, &b, &info));
    ck_assert_msg(strstr(ct_graph_error(f.g), "outside the bank"), "%s", ct_graph_error(f.g));
    ct_graph_reset(f.g);
    b = arch_fixture_batch(&f, pts, 1, 1, NULL);
    ck_assert_ptr_null(f.arch->loss(f.self, f.g, &b, &info));
    ck_assert_msg(strstr(ct_graph_error(f.g), "item indices"), "%s", ct_graph_error(f.g));
    arch_fixture_free(&f);
}
END_TEST

/* The bank_logits and NCE ops' backward against finite differences,
 * through a head (inputs 1x1x4, two views, items fixed). */
static int64_t g_items[3] = {0, 2, 4};

static ct_tensor *build_bank_loss(ct_graph *g, ct_tensor **in, void *ctx) {
    arch_fixture *f = ctx;
    ct_batch b;
    memset(&b, 0, sizeof b);
    b.n = (int)in[0]->shape[0];
    b.n_views = 2;
    b.views[0] = in[0];
    b.views[1] = in[1];
    b.items = g_items;
    b.weight = 1;
    ct_step_info info = {0, 5, 10, 10};
    return f->arch->loss(f->self, g, &b, &info);
}

static void gradcheck_loss(const char *settings) {
    arch_fixture f;
    arch_fixture_new(&f, "pixels", "", 1, 1, 4, "memory_bank", settings, 6, false);
    int64_t shape[4] = {3, 1, 1, 4};
    ct_tensor *in[2] = {ct_gradcheck_input(4, shape, 21), ct_gradcheck_input(4, shape, 22)};
    char report[1024];
    int bad = ct_gradcheck(build_bank_loss, in, 2, &f, 1e-3, 2e-2, report, sizeof report);
    ck_assert_msg(bad == 0, "%s: %s", settings, report);
    ct_gradcheck_input_free(in[0]);
    ct_gradcheck_input_free(in[1]);
    arch_fixture_free(&f);
}

START_TEST(test_loss_gradients) {
    gradcheck_loss("head_hidden = [5]; head_out = 3; loss = \"infonce\"; temperature = 0.5; negatives = 7;");
    gradcheck_loss("head_hidden = [5]; head_out = 3; loss = \"nce\"; temperature = 0.5; negatives = 7;");
    gradcheck_loss("head_hidden = [5]; head_out = 3; loss = \"infonce\"; temperature = 0.5; negatives = 7; "
                   "batch_negatives = true;");
}
END_TEST

/* PIRL's InfoNCE on 64 images: the bank is filled after 2 steps (one epoch). */
START_TEST(test_smoke_run_infonce) {
    arch_smoke_run("instdisc_fmnist.cfg", "--set 'architecture.loss=\"infonce\"' --set architecture.negatives=256", 2);
}
END_TEST

/* configs/membank_fmnist.cfg as it is (bank positive, InfoNCE, bank and
 * in-batch bank negatives; the 256 negatives are drawn with replacement
 * from the 63 other items). */
START_TEST(test_smoke_run_membank_config) { arch_smoke_run("membank_fmnist.cfg", "", 2); }
END_TEST

/* The cross-view positive with bank and in-batch negatives on 64 images.
 * K is kept below the batch (32): on a 64-item bank every entry is 1-2
 * steps old and many bank negatives let the loss drift up (see
 * memory_bank.c, batch_negatives). */
START_TEST(test_smoke_run_cross_view) {
    arch_smoke_run("instdisc_fmnist.cfg",
                   "--set 'architecture.loss=\"infonce\"' --set 'architecture.positive=\"cross_view\"' "
                   "--set architecture.batch_negatives=true --set architecture.negatives=8",
                   2);
}
END_TEST

int main(void) {
    Suite *s = suite_create("memory_bank");
    TCase *unit = tcase_create("bank");
    tcase_add_test(unit, test_ema_row_known_vectors);
    tcase_add_test(unit, test_negatives_exclude_own_index);
    tcase_add_test(unit, test_nce_row_hand_case);
    tcase_add_test(unit, test_infonce_hand_case_and_update);
    tcase_add_test(unit, test_pirl_two_views_lambda);
    tcase_add_test(unit, test_cross_view_positive);
    tcase_add_test(unit, test_batch_negatives);
    tcase_add_test(unit, test_nce_z_estimated_once);
    tcase_add_test(unit, test_first_seen_init);
    tcase_add_test(unit, test_bank_checkpoint_round_trip);
    tcase_add_test(unit, test_refuses_bad_items);
    tcase_add_test(unit, test_loss_gradients);
    suite_add_tcase(s, unit);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 300);
    tcase_add_test(runs, test_smoke_run_infonce);
    tcase_add_test(runs, test_smoke_run_cross_view);
    tcase_add_test(runs, test_smoke_run_membank_config);
    suite_add_tcase(s, runs);
    return ct_test_main(s);
}

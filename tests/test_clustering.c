/* The clustering architecture (SwAV): Sinkhorn-Knopp marginals and
 * stability, the swapped-prediction loss on a hand-made case, prototypes
 * renormalised every step and frozen early, multi-crop views, the queue,
 * a 20-step training run, and the collapse alarm (fires on a run held at
 * ln K, stays quiet on a learning one). */
#include "../plugins/architecture/clustering/sinkhorn.h"
#include "ct_arch_test.h"

static void random_scores(float *s, int64_t n, uint64_t seed) {
    ct_rng r;
    ct_rng_init(&r, seed, 0);
    for (int64_t i = 0; i < n; i++) s[i] = ct_rng_uniform_range(&r, -1.0f, 1.0f);
}

START_TEST(test_sinkhorn_marginals) {
    enum { B = 32, K = 10 };
    float scores[B * K], codes[B * K];
    double work[B * K];
    random_scores(scores, B * K, 3);
    /* SwAV's 3 iterations end on the sample normalisation: every code sums
     * to 1 exactly; the prototype totals are only approximately B/K. */
    swav_sinkhorn(scores, B, K, 0.05, 3, work, codes);
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            ck_assert(codes[b * K + k] >= 0.0f);
            s += codes[b * K + k];
        }
        ck_assert_msg(fabs(s - 1.0) < 1e-4, "sample %d sums to %.7f", b, s);
    }
    /* Iterated to convergence both marginals hold: samples 1, prototypes B/K. */
    swav_sinkhorn(scores, B, K, 0.05, 500, work, codes);
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int b = 0; b < B; b++) s += codes[b * K + k];
        ck_assert_msg(fabs(s - (double)B / K) < 1e-4, "prototype %d receives %.7f, want %.4f", k, s, (double)B / K);
    }
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += codes[b * K + k];
        ck_assert_msg(fabs(s - 1.0) < 1e-4, "sample %d sums to %.7f", b, s);
    }
}
END_TEST

START_TEST(test_sinkhorn_stable) {
    /* exp(1/0.001) overflows without the max shift. */
    enum { B = 4, K = 3 };
    float scores[B * K] = {1, 0.99f, -1, 1, 1, 1, 0.5f, 0.2f, 0.1f, -1, -1, 1}, codes[B * K];
    double work[B * K];
    swav_sinkhorn(scores, B, K, 0.001, 3, work, codes);
    for (int i = 0; i < B * K; i++) ck_assert_msg(isfinite(codes[i]), "code %d = %f", i, (double)codes[i]);
}
END_TEST

/* pixels encoder over 1x1x2 inputs, identity head, 2 prototypes. */
static void swav_fixture(arch_fixture *f, const char *extra) {
    char settings[512];
    snprintf(settings, sizeof settings, "head_hidden = []; head_out = 2; prototypes = 2; %s", extra);
    arch_fixture_new(f, "pixels", "", 1, 1, 2, "clustering", settings, 10, false);
    arch_fixture_identity(f, "head.0.weight", "head.0.bias");
}

/* -sum_k t_k log softmax(x / T)_k of one row of 2. */
static double ce2(double t0, double t1, double x0, double x1, double temp) {
    double a = x0 / temp, b = x1 / temp, m = a > b ? a : b;
    double lse = m + log(exp(a - m) + exp(b - m));
    return -(t0 * (a - lse) + t1 * (b - lse));
}

START_TEST(test_swapped_loss_hand_case) {
    arch_fixture f;
    swav_fixture(&f, "temperature = 0.1; epsilon = 0.05; sinkhorn_iterations = 3; n_code_views = 2;");
    /* Prototypes (2, 0) and (0, 3): loss() renormalises them to e0, e1. */
    ct_tensor *c = ct_params_find(f.store, "prototypes.weight");
    const float protos[4] = {2, 0, 0, 3};
    memcpy(c->data, protos, sizeof protos);
    /* view 0: (1, 0), (0, 1): scores [[1, 0], [0, 1]]; view 1: (0.6, 0.8),
     * (0.8, 0.6). Each view's score matrix is symmetric with equal row and
     * column sums, so Sinkhorn only normalises rows:
     *   codes0 = [[a, 1-a], [1-a, a]], a = e^20 / (e^20 + 1)
     *   codes1 = [[c, 1-c], [1-c, c]], c = e^12 / (e^12 + e^16). */
    const float pts[8] = {1, 0, 0, 1, 0.6f, 0.8f, 0.8f, 0.6f};
    double got = arch_fixture_step(&f, pts, 2, 2, NULL, 0, false);
    double a = 1.0 / (1.0 + exp(-20.0)), cc = 1.0 / (1.0 + exp(4.0)), t = 0.1;
    /* code view 0 predicted from view 1, and code view 1 from view 0. */
    double l0 = (ce2(a, 1 - a, 0.6, 0.8, t) + ce2(1 - a, a, 0.8, 0.6, t)) / 2;
    double l1 = (ce2(cc, 1 - cc, 1, 0, t) + ce2(1 - cc, cc, 0, 1, t)) / 2;
    double want = (l0 + l1) / 2;
    ck_assert_msg(fabs(got - want) < 1e-4, "loss %.7f, hand-computed %.7f", got, want);
    ck_assert_float_eq_tol(c->data[0], 1.0f, 1e-7f);
    ck_assert_float_eq_tol(c->data[3], 1.0f, 1e-7f);
    arch_fixture_free(&f);
}
END_TEST

static void check_unit_rows(const ct_tensor *c) {
    for (int64_t k = 0; k < c->shape[0]; k++) {
        double s = 0;
        for (int64_t j = 0; j < c->shape[1]; j++) s += (double)c->data[k * c->shape[1] + j] * c->data[k * c->shape[1] + j];
        ck_assert_msg(fabs(s - 1.0) < 1e-5, "prototype %lld has squared norm %.7f", (long long)k, s);
    }
}

START_TEST(test_prototypes_unit_and_frozen) {
    arch_fixture f;
    char settings[256];
    snprintf(settings, sizeof settings,
             "head_hidden = [8]; head_out = 4; prototypes = 6; freeze_prototypes_steps = 2; n_code_views = 2;");
    arch_fixture_new(&f, "pixels", "", 1, 2, 3, "clustering", settings, 10, false);
    ct_tensor *c = ct_params_find(f.store, "prototypes.weight");
    float pts[3 * 6 * 6];
    for (int i = 0; i < 3 * 6 * 6; i++) pts[i] = (float)((i * 29) % 17) / 17.0f - 0.4f;
    /* 3 views: 2 code views, 1 more. Step 1 < 2: the gradient is zeroed. */
    arch_fixture_step(&f, pts, 6, 3, NULL, 1, true);
    check_unit_rows(c);
    for (int64_t i = 0; i < c->numel; i++) ck_assert_float_eq(c->grad[i], 0.0f);
    /* Step 2: prototypes learn; a plain SGD move breaks the norm, the next
     * loss() restores it. */
    arch_fixture_step(&f, pts, 6, 3, NULL, 2, true);
    double g = 0;
    for (int64_t i = 0; i < c->numel; i++) g += fabs(c->grad[i]);
    ck_assert_msg(g > 0, "prototypes got no gradient after the freeze");
    for (int64_t i = 0; i < c->numel; i++) c->data[i] -= 0.5f * c->grad[i] + 0.1f;
    arch_fixture_step(&f, pts, 6, 3, NULL, 3, true);
    check_unit_rows(c);
    arch_fixture_free(&f);
}
END_TEST

START_TEST(test_multicrop_sizes) {
    /* 2 full-size views (1x4x4) and 2 small ones (1x2x2) through the tiny
     * ResNet: codes come from the first two, the loss is finite. */
    arch_fixture f;
    arch_fixture_new(&f, "resnet", "stem = \"small\"; stem_width = 4; blocks = [1]; widths = [4];", 1, 4, 4,
                     "clustering", "prototypes = 5; head_hidden = [6]; head_out = 3; head_bn = true;", 10, false);
    enum { N = 4 };
    float big[2 * N * 16], small[2 * N * 4];
    for (int i = 0; i < 2 * N * 16; i++) big[i] = (float)((i * 13) % 7) / 7.0f;
    for (int i = 0; i < 2 * N * 4; i++) small[i] = (float)((i * 5) % 3) / 3.0f;
    ct_batch b;
    memset(&b, 0, sizeof b);
    b.n = N;
    b.n_views = 4;
    b.weight = 1;
    int64_t sb[4] = {N, 1, 4, 4}, ss[4] = {N, 1, 2, 2};
    b.views[0] = ct_tensor_wrap(f.g, big, 4, sb);
    b.views[1] = ct_tensor_wrap(f.g, small, 4, ss);
    b.views[2] = ct_tensor_wrap(f.g, big + N * 16, 4, sb);
    b.views[3] = ct_tensor_wrap(f.g, small + N * 4, 4, ss);
    ct_step_info info = {0, 0, 10, 10};
    /* The code views must be the first n_code_views = 2: here view 1 is a
     * small crop, which the architecture cannot tell; it still runs. */
    ct_tensor *l = f.arch->loss(f.self, f.g, &b, &info);
    ck_assert_msg(l != NULL, "%s", ct_graph_error(f.g));
    ck_assert(isfinite(l->data[0]));
    ck_assert_int_eq(ct_graph_backward(f.g, l), CT_OK);
    arch_fixture_free(&f);
}
END_TEST

START_TEST(test_queue_fills_then_used) {
    arch_fixture f;
    swav_fixture(&f, "queue_length = 4; queue_start_epoch = 0; n_code_views = 2;");
    ct_tensor *fill = ct_params_find(f.store, "queue_fill"), *queue = ct_params_find(f.store, "queue");
    ck_assert_ptr_nonnull(fill);
    ck_assert_int_eq(queue->shape[0], 2);
    ck_assert_int_eq(queue->shape[1], 4);
    const float pts[8] = {1, 0, 0, 1, 0.6f, 0.8f, 0.8f, 0.6f};
    double first = arch_fixture_step(&f, pts, 2, 2, NULL, 0, true);
    ck_assert_float_eq(fill->data[0], 2.0f);
    /* Newest first: view 0's embeddings (1,0), (0,1) head the queue. */
    ck_assert_float_eq_tol(queue->data[0], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(queue->data[3], 1.0f, 1e-6f);
    double second = arch_fixture_step(&f, pts, 2, 2, NULL, 1, true);
    ck_assert_float_eq(fill->data[0], 4.0f);
    ck_assert_msg(fabs(first - second) < 1e-6, "queue used before it was full");
    /* Full now: the queue's rows join Sinkhorn and change the codes. */
    const float other[8] = {1, 1, 0, 1, 0.6f, 0.8f, 1, 0};
    double with_queue = arch_fixture_step(&f, other, 2, 2, NULL, 2, false);
    arch_fixture f2;
    swav_fixture(&f2, "n_code_views = 2;");
    double without = arch_fixture_step(&f2, other, 2, 2, NULL, 2, false);
    ck_assert_msg(fabs(with_queue - without) > 1e-6, "queue made no difference (%.7f)", without);
    arch_fixture_free(&f);
    arch_fixture_free(&f2);
}
END_TEST

START_TEST(test_refuses_too_few_views) {
    arch_fixture f;
    swav_fixture(&f, "n_code_views = 3;");
    const float pts[8] = {1, 0, 0, 1, 0.6f, 0.8f, 0.8f, 0.6f};
    ct_batch b = arch_fixture_batch(&f, pts, 2, 2, NULL);
    ct_step_info info = {0, 0, 1, 1};
    ck_assert_ptr_null(f.arch->loss(f.self, f.g, &b, &info));
    ck_assert_msg(strstr(ct_graph_error(f.g), "n_code_views"), "%s", ct_graph_error(f.g));
    arch_fixture_free(&f);
}
END_TEST

/* Multi-crop config (2 x 28 px + 2 x 16 px); the prototypes are frozen for
 * the first 2 steps only. */
START_TEST(test_smoke_run) {
    arch_smoke_run("swav_fmnist.cfg", "--set architecture.freeze_prototypes_steps=2", 0);
}
END_TEST

/* ---- the collapse alarm through build/contrast -------------------------------- */

/* 12 steps of batch 16 over 64 images, 100 prototypes (ln K = 4.6052, the
 * 1% band is +-0.0461), the alarm after 5 consecutive steps in the band. */
#define ALARM_SETS                                                                                             \
    "--set data.train.limit=64 --set data.test.limit=64 --set train.batch_size=16 --set train.threads=1 "      \
    "--set train.log_every=100 --set train.keep=0 --set encoder.stem_width=8 --set encoder.widths=[8,16,32] "  \
    "--set train.max_steps=12 --set train.epochs=3 --set evaluation.every=0 --set 'evaluation.evaluators=()' " \
    "--set architecture.prototypes=100 --set architecture.freeze_prototypes_steps=2 "
#define ALARM_TEXT "the predictions look collapsed to uniform"

static char g_out[1 << 16];

/* Train swav_fmnist.cfg with ALARM_SETS and `extra`; the run's output
 * (stdout and stderr) lands in g_out, its per-step losses in loss[12].
 * Returns the longest run of consecutive steps whose loss is within 1% of
 * ln 100, as the metrics show it. */
static int alarm_run(const char *extra, const char *name, double loss[12]) {
    const char *dir = ct_test_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/contrast train %s/configs/swav_fmnist.cfg " ALARM_SETS "%s --run-dir %s/%s",
             ct_test_build_dir(), ct_test_source_dir(), extra, dir, name);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "`%s` exited %d:\n%s", cmd, rc, g_out);
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, name);
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "no %s", path);
    int n = 0, streak = 0, longest = 0;
    double ln_k = log(100.0);
    while (fgets(line, sizeof line, fp)) {
        const char *s = strstr(line, "\"loss\": ");
        if (!strstr(line, "\"type\": \"step\"") || !s) continue;
        ck_assert_int_lt(n, 12);
        loss[n] = atof(s + 8);
        streak = fabs(loss[n] - ln_k) <= 0.01 * ln_k ? streak + 1 : 0;
        if (streak > longest) longest = streak;
        n++;
    }
    fclose(fp);
    ck_assert_int_eq(n, 12);
    return longest;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* At temperature 100 the logits z.C/T of unit z and C lie in [-0.01, 0.01],
 * so every prediction is uniform to within e^0.02 and the swapped loss is
 * ln K +- 0.02 whatever the codes: inside the band from the first step. The
 * alarm fires once, at the 5th step (step 4), and names ln K. */
START_TEST(test_collapse_alarm_fires) {
    double loss[12];
    int longest = alarm_run("--set architecture.temperature=100 --set architecture.collapse_steps=5", "hot", loss);
    ck_assert_msg(longest == 12, "the hot run left the band (longest streak %d, last loss %.4f)", longest, loss[11]);
    ck_assert_msg(count_of(g_out, ALARM_TEXT) == 1, "alarm fired %d times, want once:\n%s", count_of(g_out, ALARM_TEXT),
                  g_out);
    ck_assert_msg(strstr(g_out, "clustering: warning: the loss has stayed within 1% of ln K = 4.6052 for 5 steps"), "the alarm, named after its plugin, is missing:\n%s", g_out);
    ck_assert_msg(strstr(g_out, "at step 4)"), "alarm not at the 5th step:\n%s", g_out);
}
END_TEST

/* The same collapsed run, but the alarm wants more steps than it has. */
START_TEST(test_collapse_alarm_counts_steps) {
    double loss[12];
    int longest = alarm_run("--set architecture.temperature=100 --set architecture.collapse_steps=13", "hot13", loss);
    ck_assert_int_eq(longest, 12);
    ck_assert_msg(!strstr(g_out, ALARM_TEXT), "alarm after 12 of 13 steps:\n%s", g_out);
}
END_TEST

/* Control: the config's temperature (0.1). The loss starts above ln K and
 * falls (5.2 -> 4.7 here); it must not linger in the band, and the alarm
 * must stay quiet at the same 5-step threshold. */
START_TEST(test_collapse_alarm_quiet_when_learning) {
    double loss[12];
    int longest = alarm_run("--set architecture.collapse_steps=5", "normal", loss);
    ck_assert_msg(longest < 5, "control run stayed near ln K for %d steps: not a control", longest);
    ck_assert_msg(!strstr(g_out, ALARM_TEXT), "alarm in a learning run:\n%s", g_out);
    ck_assert_msg(loss[11] < loss[0], "control loss did not fall: %.4f -> %.4f", loss[0], loss[11]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("clustering");
    TCase *unit = tcase_create("swav");
    tcase_add_test(unit, test_sinkhorn_marginals);
    tcase_add_test(unit, test_sinkhorn_stable);
    tcase_add_test(unit, test_swapped_loss_hand_case);
    tcase_add_test(unit, test_prototypes_unit_and_frozen);
    tcase_add_test(unit, test_multicrop_sizes);
    tcase_add_test(unit, test_queue_fills_then_used);
    tcase_add_test(unit, test_refuses_too_few_views);
    suite_add_tcase(s, unit);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 300);
    tcase_add_test(runs, test_smoke_run);
    tcase_add_test(runs, test_collapse_alarm_fires);
    tcase_add_test(runs, test_collapse_alarm_counts_steps);
    tcase_add_test(runs, test_collapse_alarm_quiet_when_learning);
    suite_add_tcase(s, runs);
    return ct_test_main(s);
}

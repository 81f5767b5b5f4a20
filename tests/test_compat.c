/* Checkpoints written by an earlier release load and compute the same
 * features: tests/data/compat-0.2/ holds a tiny SimCLR run's checkpoint
 * written by release 0.2 (commit 8a06306) and the test-split features that
 * release's `contrast embed` wrote from it. Today's build must accept the
 * file (the reader is strict: every tensor name, shape and dtype of the
 * encoder and the projection head must match what the plugins declare) and
 * reproduce the features to float32 rounding. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"

#define FIXTURE "tests/data/compat-0.2"

/* A float32 .npy file (format 1.0, C order): its data, row count and width. */
typedef struct npy {
    float *data;
    int64_t rows, cols;
} npy;

static int npy_read(const char *path, npy *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char head[10];
    int rc = -1;
    if (fread(head, 1, 10, f) == 10 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0) {
        size_t hlen = (size_t)head[8] | (size_t)head[9] << 8;
        char *hdr = calloc(1, hlen + 1);
        if (hdr && fread(hdr, 1, hlen, f) == hlen && strstr(hdr, "'<f4'")) {
            const char *shape = strstr(hdr, "'shape': (");
            long long r = 0, c = 0;
            if (shape && sscanf(shape, "'shape': (%lld, %lld)", &r, &c) == 2 && r > 0 && c > 0) {
                out->rows = r, out->cols = c;
                out->data = malloc((size_t)(r * c) * sizeof(float));
                if (out->data && fread(out->data, sizeof(float), (size_t)(r * c), f) == (size_t)(r * c)) rc = 0;
            }
        }
        free(hdr);
    }
    fclose(f);
    return rc;
}

static int contrast(char *out, size_t n, const char *fmt_args, const char *a, const char *b) {
    char args[2048], cmd[4096];
    snprintf(args, sizeof args, fmt_args, a, b);
    snprintf(cmd, sizeof cmd, "cd '%s' && CONTRAST_PLUGIN_PATH='%s/plugins' '%s/contrast' %s", ct_test_source_dir(),
             ct_test_build_dir(), ct_test_build_dir(), args);
    return ct_test_run(cmd, out, n);
}

START_TEST(release_0_2_checkpoint_gives_the_same_features) {
    const char *dir = ct_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    char feats[600], log[8192];
    snprintf(feats, sizeof feats, "%s/feats.npy", dir);
    int rc = contrast(log, sizeof log,
                      "embed " FIXTURE "/tiny_simclr.cfg --checkpoint " FIXTURE "/checkpoint.safetensors "
                      "--split test --out '%s'%s",
                      feats, "");
    ck_assert_msg(rc == 0, "embed failed (%d): %s", rc, log);

    npy now, then;
    char ref[600];
    snprintf(ref, sizeof ref, "%s/" FIXTURE "/features-test.npy", ct_test_source_dir());
    ck_assert_int_eq(npy_read(feats, &now), 0);
    ck_assert_int_eq(npy_read(ref, &then), 0);
    ck_assert_int_eq(now.rows, 32);
    ck_assert_int_eq(now.rows, then.rows);
    ck_assert_int_eq(now.cols, then.cols);
    /* Bit-identical on the machine that wrote the fixture; elsewhere other
     * SIMD paths round differently, so allow float32 noise relative to the
     * features' scale. */
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < now.rows * now.cols; i++) scale = fmax(scale, fabs(then.data[i]));
    for (int64_t i = 0; i < now.rows * now.cols; i++) {
        ck_assert_msg(isfinite(now.data[i]), "feature %lld is not finite", (long long)i);
        worst = fmax(worst, fabs((double)now.data[i] - then.data[i]));
    }
    ck_assert_msg(scale > 0, "the reference features are all zero");
    ck_assert_msg(worst <= 1e-4 * scale, "features differ from release 0.2's by %g (scale %g)", worst, scale);
    free(now.data);
    free(then.data);
}
END_TEST

/* The same checkpoint through `contrast eval`: the whole model (encoder and
 * head) is restored and the evaluator runs. kNN on 32 test images with
 * k = 5 reported 56.25 top-1 in release 0.2. */
START_TEST(release_0_2_checkpoint_evaluates) {
    char log[8192];
    const char *dir = ct_test_tmpdir(); /* the run's files (evaluations.jsonl, the kNN confusion) go here, */
    ck_assert_ptr_nonnull(dir);         /* not into the fixture's folder in the source tree */
    int rc = contrast(log, sizeof log, "eval " FIXTURE "/tiny_simclr.cfg --checkpoint %s --run-dir %s",
                      FIXTURE "/checkpoint.safetensors", dir);
    ck_assert_msg(rc == 0, "eval failed (%d): %s", rc, log);
    ck_assert_msg(strstr(log, "knn.top1 56.25") != NULL, "unexpected kNN result: %s", log);
}
END_TEST

/* A mismatching model is refused, naming the tensor: the test above would
 * also pass if loading silently ignored the file. */
START_TEST(release_0_2_checkpoint_refused_by_another_model) {
    char log[8192];
    int rc = contrast(log, sizeof log,
                      "eval " FIXTURE "/tiny_simclr.cfg --set architecture.head_out=%s --checkpoint %s", "4",
                      FIXTURE "/checkpoint.safetensors");
    ck_assert_msg(rc != 0, "a head of another size was accepted: %s", log);
    ck_assert_msg(strstr(log, "head.") != NULL, "the refusal does not name the head tensor: %s", log);
}
END_TEST

int main(void) {
    Suite *s = suite_create("compat");
    TCase *tc = tcase_create("release-0.2");
    tcase_add_test(tc, release_0_2_checkpoint_gives_the_same_features);
    tcase_add_test(tc, release_0_2_checkpoint_evaluates);
    tcase_add_test(tc, release_0_2_checkpoint_refused_by_another_model);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

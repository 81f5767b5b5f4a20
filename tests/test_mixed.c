/* Mixed image + video pipelines training one encoder (issue 14): through
 * build/contrast on a Fashion-MNIST subset and a moving Fashion-MNIST set
 * made on the fly. A mixed run trains with finite, changing losses per
 * pipeline, its epoch is the first pipeline's pass (the clips cycle in
 * passes of their own) and a cut-and-resumed run gives the same losses;
 * a memory bank keeps the two datasets' items apart; evaluators measure
 * their own datasets and the output names them; the bad combinations are
 * refused by `contrast check` naming the pipeline or evaluator and its
 * dataset. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/safetensors.h"
#include "ct_test.h"

#define OUT_MAX (1 << 17)
#define FMNIST "/usr/share/datasets/fashion-mnist/"

static char g_dir[512];
static char g_out[OUT_MAX];

/* Run a contrast command line (printf-style), expecting exit status `want`
 * (0, or nonzero when want is 1); the output is in g_out. */
static void contrast(int want, const char *fmt, ...) {
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s/contrast %s", ct_test_build_dir(), args);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    if (want == 0)
        ck_assert_msg(rc == 0, "%s: exit %d\n%s", cmd, rc, g_out);
    else
        ck_assert_msg(rc != 0, "%s: should have failed\n%s", cmd, g_out);
}

/* 8 train + 4 test videos of 12 frames, and the config: 48 images in
 * batches of 8 (6 steps per epoch) and 8 videos in batches of 4 (2 steps
 * per pass, so 3 passes per epoch), one clip encoder. */
static void setup_data(const char *arch) {
    snprintf(g_dir, sizeof g_dir, "%s", ct_test_tmpdir());
    contrast(0, "make-dataset moving-fmnist %s/mfm --videos 8 --test-videos 4 --pool 10 --size 32 --frames 12 "
                "--codec ffv1 --seed 1", g_dir);
    char cfg[12000], path[700];
    const char *video = "type = \"video\"; size = [32]; channels = 1; frames = 4;";
    snprintf(cfg, sizeof cfg,
             "name = \"mixed_test\";\n"
             "data = {\n"
             "  train = { type = \"idx\"; images = \"" FMNIST "train-images-idx3-ubyte.gz\";\n"
             "            labels = \"" FMNIST "train-labels-idx1-ubyte.gz\"; limit = 48; };\n"
             "  test = { type = \"idx\"; images = \"" FMNIST "t10k-images-idx3-ubyte.gz\";\n"
             "           labels = \"" FMNIST "t10k-labels-idx1-ubyte.gz\"; limit = 32; };\n"
             "  clips = { %s root = \"%s/mfm/train\"; index_dir = \"%s/index\"; };\n"
             "  direction = { %s root = \"%s/mfm/train\"; index_dir = \"%s/index\";\n"
             "                class_index = \"%s/mfm/directionInd.txt\"; split_list = \"%s/mfm/trainlist_direction.txt\"; };\n"
             "  test_direction = { %s root = \"%s/mfm/test\"; index_dir = \"%s/index\";\n"
             "                class_index = \"%s/mfm/directionInd.txt\"; split_list = \"%s/mfm/testlist_direction.txt\"; };\n"
             "};\n"
             "encoder = { type = \"clip_resnet\"; in_channels = 1; stem = \"small\"; stem_width = 8; blocks = [1, 1];\n"
             "            widths = [8, 16]; };\n"
             "pipelines = (\n"
             "  { data = \"train\"; batch_size = 8; views = 2;\n"
             "    transforms = ( { type = \"random_resized_crop\"; size = [28]; scale = [0.5, 1.0]; } ); },\n"
             "  { data = \"clips\"; batch_size = 4; views = 2; weight = 0.5;\n"
             "    transforms = ( { type = \"random_resized_crop\"; size = [28]; scale = [0.5, 1.0]; } );\n"
             "    structure = { type = \"clip_pair\"; frames = 4; stride = 2; }; }\n"
             ");\n"
             "architecture = %s;\n"
             "optimizer = { type = \"adamw\"; lr = 0.001; };\n"
             "train = { epochs = 2; max_steps = 8; batch_size = 16; threads = 1; log_every = 1; keep = 0; };\n"
             "evaluation = {\n"
             "  train = \"train\"; test = \"test\";\n"
             "  evaluators = ( { type = \"knn\"; k = 5; },\n"
             "                 { type = \"knn\"; k = 3; train = \"direction\"; test = \"test_direction\";\n"
             "                   feature_transforms = ( { type = \"normalize\"; mean = [0.1]; std = [0.25]; } ); } );\n"
             "};\n",
             video, g_dir, g_dir, video, g_dir, g_dir, g_dir, g_dir, video, g_dir, g_dir, g_dir, g_dir, arch);
    snprintf(path, sizeof path, "%s/mixed.cfg", g_dir);
    ck_assert_int_eq(ct_test_write_file(path, cfg, strlen(cfg)), 0);
}

static const char *config_path(void) {
    static char p[700];
    snprintf(p, sizeof p, "%s/mixed.cfg", g_dir);
    return p;
}

/* The step lines of RUN/metrics.jsonl: their loss and each pipeline's. */
static int step_losses(const char *run, double *loss, double *p0, double *p1, int max) {
    char path[800], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"type\": \"step\"")) continue;
        const char *a = strstr(line, "\"loss\": "), *b = strstr(line, "\"loss_pipeline_0\": "),
                   *c = strstr(line, "\"loss_pipeline_1\": ");
        ck_assert_msg(a && b && c, "%s: a step line without its pipelines' losses: %s", path, line);
        loss[n] = strtod(a + 8, NULL);
        p0[n] = strncmp(b + 19, "null", 4) ? strtod(b + 19, NULL) : NAN; /* null: left out */
        p1[n] = strncmp(c + 19, "null", 4) ? strtod(c + 19, NULL) : NAN;
        n++;
    }
    fclose(f);
    return n;
}

static const char *e2e = "{ type = \"end_to_end\"; temperature = 0.5; head_hidden = [16]; head_out = 8; }";

/* Both pipelines train: finite losses that change, each pipeline's loss
 * logged, the total their weighted sum; the epoch is pipeline 0's pass;
 * a run cut after 3 steps (pipeline 1 mid-pass) and resumed across the
 * epoch boundary gives the same 8 losses. */
START_TEST(trains_and_resumes_exactly) {
    setup_data(e2e);
    char full[700], cut[700];
    snprintf(full, sizeof full, "%s/full", g_dir);
    snprintf(cut, sizeof cut, "%s/cut", g_dir);
    contrast(0, "train %s --run-dir %s", config_path(), full);
    ck_assert_msg(strstr(g_out, "8 steps (6 per epoch)"), "%s", g_out);
    ck_assert_msg(strstr(g_out, "pipeline 1 (data clips, structure clip_pair): batch 4, weight 0.5, 2 steps per pass "
                                "over its data (3.00 passes per epoch)"),
                  "%s", g_out);
    ck_assert_msg(strstr(g_out, "evaluation data: knn: train -> test; knn@test_direction: direction -> "
                                "test_direction"),
                  "%s", g_out);
    ck_assert_msg(strstr(g_out, " knn.top1 ") && strstr(g_out, " knn@test_direction.top1 "), "%s", g_out);
    double l[8], a[8], b[8];
    ck_assert_int_eq(step_losses(full, l, a, b, 8), 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(isfinite(a[i]) && isfinite(b[i]) && a[i] > 0 && b[i] > 0, "step %d: %g %g", i, a[i], b[i]);
        ck_assert_msg(fabs(l[i] - (a[i] + 0.5 * b[i])) < 1e-4 * l[i], "step %d: %g is not %g + 0.5 * %g", i, l[i],
                      a[i], b[i]);
    }
    bool moved0 = false, moved1 = false;
    for (int i = 1; i < 8; i++) moved0 |= a[i] != a[0], moved1 |= b[i] != b[0];
    ck_assert_msg(moved0 && moved1, "a pipeline's loss never changed");
    contrast(0, "train %s --run-dir %s --stop-after 3", config_path(), cut);
    contrast(0, "train %s --resume %s", config_path(), cut);
    ck_assert_msg(strstr(g_out, "resuming") && strstr(g_out, "at step 3"), "%s", g_out);
    double l2[8], a2[8], b2[8];
    ck_assert_int_eq(step_losses(cut, l2, a2, b2, 8), 8);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(l2[i] == l[i] && a2[i] == a[i] && b2[i] == b[i], "step %d after resume: %.9g (%.9g, %.9g) vs "
                      "%.9g (%.9g, %.9g)", i, l2[i], a2[i], b2[i], l[i], a[i], b[i]);
    /* The resolved config keeps the pipelines' batches and the evaluators'
     * data, and is a valid config itself. */
    contrast(0, "check %s/config.cfg", full);
    ck_assert_msg(strstr(g_out, "pipeline 0: data=train batch=8") && strstr(g_out, "pipeline 1: data=clips batch=4") &&
                      strstr(g_out, "knn@test_direction: direction -> test_direction"),
                  "%s", g_out);
}
END_TEST

/* weight 0 leaves a pipeline out: the clips alone define the epoch. */
START_TEST(weight_zero_leaves_a_pipeline_out) {
    setup_data(e2e);
    contrast(0, "train %s --run-dir %s/clips --set pipelines.[0].weight=0 --set train.epochs=4 "
             "--set 'evaluation.evaluators=()'",
             config_path(), g_dir);
    ck_assert_msg(strstr(g_out, "8 steps (2 per epoch)") && strstr(g_out, "pipeline 0 (data train): weight 0, left out"),
                  "%s", g_out);
    char run[700];
    snprintf(run, sizeof run, "%s/clips", g_dir);
    double l[8], a[8], b[8];
    ck_assert_int_eq(step_losses(run, l, a, b, 8), 8);
    for (int i = 0; i < 8; i++) ck_assert_msg(isnan(a[i]) && isfinite(b[i]), "step %d: %g %g", i, a[i], b[i]);
}
END_TEST

/* A memory bank over two pipelines: one row per item of both datasets,
 * the clips' items after the images' (48 + 8 rows); after 2 steps the
 * rows written are 16 image rows and the 8 clip rows, none elsewhere. */
START_TEST(memory_bank_keeps_datasets_apart) {
    setup_data("{ type = \"memory_bank\"; negatives = 8; head_hidden = [16]; head_out = 8; }");
    contrast(0, "train %s --run-dir %s/bank --set train.max_steps=2 --set 'evaluation.evaluators=()'", config_path(),
             g_dir);
    char ckpt[800];
    snprintf(ckpt, sizeof ckpt, "%s/bank/checkpoint-s00000002.safetensors", g_dir);
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_open(ckpt, &f, &err) == CT_OK, "%s", err.msg);
    const ct_safetensors_tensor *bank = ct_safetensors_find(f, "bank.memory"), *seen = ct_safetensors_find(f, "bank.seen");
    ck_assert_ptr_nonnull(bank);
    ck_assert_ptr_nonnull(seen);
    ck_assert_int_eq(bank->shape[0], 56);
    ck_assert_int_eq(seen->shape[0], 56);
    float s[56];
    memcpy(s, seen->data, sizeof s);
    int images = 0, clips = 0;
    for (int i = 0; i < 56; i++) *(i < 48 ? &images : &clips) += s[i] != 0.0f;
    ck_assert_msg(images == 16 && clips == 8, "rows written: %d image rows (16 expected), %d clip rows (8 expected)",
                  images, clips);
    ct_safetensors_close(f);
}
END_TEST

/* Momentum and clustering hold no per-item state: they train on both. */
START_TEST(momentum_and_clustering_train_on_both) {
    static const char *const archs[] = {
        "{ type = \"momentum\"; queue_size = 16; head_hidden = [16]; head_out = 8; }",
        "{ type = \"clustering\"; prototypes = 4; head_hidden = [16]; head_out = 8; }",
    };
    for (int k = 0; k < 2; k++) {
        setup_data(archs[k]);
        contrast(0, "train %s --run-dir %s/arch --set train.max_steps=3 --set 'evaluation.evaluators=()'",
                 config_path(), g_dir);
        char run[700];
        snprintf(run, sizeof run, "%s/arch", g_dir);
        double l[3], a[3], b[3];
        ck_assert_int_eq(step_losses(run, l, a, b, 3), 3);
        for (int i = 0; i < 3; i++) ck_assert_msg(isfinite(a[i]) && isfinite(b[i]), "%s: step %d", archs[k], i);
    }
}
END_TEST

/* `contrast eval` of a checkpoint: each evaluator on its own data. */
START_TEST(evaluators_measure_their_own_datasets) {
    setup_data(e2e);
    contrast(0, "train %s --run-dir %s/run --set train.max_steps=2 --set 'evaluation.evaluators=()'", config_path(),
             g_dir);
    contrast(0, "eval %s --checkpoint %s/run/checkpoint-s00000002.safetensors --run-dir %s/eval", config_path(), g_dir,
             g_dir);
    ck_assert_msg(strstr(g_out, "evaluation data: knn: train -> test; knn@test_direction: direction -> test_direction"),
                  "%s", g_out);
    ck_assert_msg(strstr(g_out, "\nknn.top1 ") && strstr(g_out, "\nknn@test_direction.top1 "), "%s", g_out);
    /* The group's clips default: an evaluator over clips with 4 clips per
     * video (averaged) beside the images' one. */
    contrast(0, "eval %s --checkpoint %s/run/checkpoint-s00000002.safetensors --run-dir %s/eval "
                "--set 'evaluation.evaluators.[1].clips=2'",
             config_path(), g_dir, g_dir);
    ck_assert_msg(strstr(g_out, "\nknn@test_direction.top1 "), "%s", g_out);
    /* an evaluator's unknown dataset is named with the nearest one */
    contrast(1, "check %s --set 'evaluation.evaluators.[1].train=\"directoin\"'", config_path());
    ck_assert_msg(strstr(g_out, "evaluation.evaluators[1]: train = \"directoin\" is not a dataset") &&
                      strstr(g_out, "did you mean 'direction'?"),
                  "%s", g_out);
    /* clips > 1 on image data is refused naming the evaluator's key */
    contrast(1, "check %s --set 'evaluation.evaluators.[0].clips=2'", config_path());
    ck_assert_msg(strstr(g_out, "evaluation.evaluators[0].clips = 2 needs video datasets") && strstr(g_out, "data.train"),
                  "%s", g_out);
}
END_TEST

/* Every tensor of two checkpoints, bit for bit. */
static void same_checkpoints(const char *a, const char *b) {
    ct_safetensors *f = NULL, *g = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_open(a, &f, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(ct_safetensors_open(b, &g, &err) == CT_OK, "%s", err.msg);
    size_t n = 0;
    for (const ct_safetensors_tensor *t; (t = ct_safetensors_at(f, n)) != NULL; n++) {
        const ct_safetensors_tensor *u = ct_safetensors_find(g, t->name);
        ck_assert_msg(u && u->nbytes == t->nbytes && memcmp(u->data, t->data, t->nbytes) == 0, "%s differs in %s",
                      t->name, b);
    }
    ck_assert(n > 0 && ct_safetensors_at(g, n) == NULL);
    ct_safetensors_close(f);
    ct_safetensors_close(g);
}

/* Precise batch norm (evaluation.precise_bn_batches) in a mixed run: an
 * evaluation after every epoch, each evaluator's statistics re-estimated
 * on its own data (images, direction clips), leaves training as it was:
 * the final checkpoint (weights, running statistics, batch counts) is
 * that of the run without evaluation, and `contrast eval` reports both. */
START_TEST(precise_bn_leaves_training_alone) {
    setup_data(e2e);
    contrast(0, "train %s --run-dir %s/plain --set 'evaluation.evaluators=()'", config_path(), g_dir);
    contrast(0, "train %s --run-dir %s/pbn --set evaluation.every=1 --set evaluation.precise_bn_batches=2",
             config_path(), g_dir);
    ck_assert_msg(strstr(g_out, " knn.top1 ") && strstr(g_out, " knn@test_direction.top1 "), "%s", g_out);
    char a[800], b[800];
    snprintf(a, sizeof a, "%s/plain/checkpoint-s00000008.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/pbn/checkpoint-s00000008.safetensors", g_dir);
    same_checkpoints(a, b);
    contrast(0, "eval %s --checkpoint %s --run-dir %s/eval --set evaluation.precise_bn_batches=1", config_path(), a,
             g_dir);
    ck_assert_msg(strstr(g_out, "\nknn.top1 ") && strstr(g_out, "\nknn@test_direction.top1 "), "%s", g_out);
}
END_TEST

static const char *resnet = "--set 'encoder={ type = \"resnet\"; in_channels = 1; stem = \"small\"; stem_width = 8; "
                            "blocks = [1, 1]; widths = [8, 16]; }'";

/* The bad combinations, refused by check with the pipeline or evaluator
 * and its dataset named. */
START_TEST(bad_combinations_refused_at_check) {
    setup_data(e2e);
    /* a clip pipeline feeding an image-only encoder */
    contrast(1, "check %s %s", config_path(), resnet);
    ck_assert_msg(strstr(g_out, "pipelines[1] (data \"clips\"): gives clips of 4 frames, but encoder resnet takes "
                                "images only"),
                  "%s", g_out);
    ck_assert_msg(strstr(g_out, "mixed.cfg:"), "no config line: %s", g_out);
    /* ... or its evaluator's clips, the clip pipeline left out */
    contrast(1, "check %s %s --set pipelines.[1].weight=0", config_path(), resnet);
    ck_assert_msg(strstr(g_out, "evaluation.evaluators[1] (train) (data \"direction\"): gives clips of 4 frames, but "
                                "encoder resnet takes images only"),
                  "%s", g_out);
    /* ... which is fine once the clip evaluator is gone too */
    contrast(0, "check %s %s --set pipelines.[1].weight=0 --set 'evaluation.evaluators=({ type = \"knn\"; })'",
             config_path(), resnet);
    /* two pipelines with conflicting input channels */
    contrast(1, "check %s --set data.clips.channels=3", config_path());
    ck_assert_msg(strstr(g_out, "pipelines[1] (data \"clips\") gives 3-channel inputs, but pipelines[0] (data "
                                "\"train\") gives 1: one encoder takes one channel count"),
                  "%s", g_out);
    /* a pipeline's batch larger than its data */
    contrast(1, "check %s --set pipelines.[1].batch_size=100", config_path());
    ck_assert_msg(strstr(g_out, "pipelines[1] (batch_size = 100): pipeline (data \"clips\"): 8 samples make no full "
                                "batch of 100"),
                  "%s", g_out);
    /* a batch the architecture has no negatives in, named by its pipeline */
    contrast(1, "check %s --set pipelines.[1].batch_size=1", config_path());
    ck_assert_msg(strstr(g_out, "end_to_end: the batch of pipelines[1] = 1 leaves NT-Xent no negatives"), "%s", g_out);
    /* nothing left to train */
    contrast(1, "train %s --run-dir %s/none --set pipelines.[0].weight=0 --set pipelines.[1].weight=0", config_path(),
             g_dir);
    ck_assert_msg(strstr(g_out, "no pipelines to train on (none, or every weight is 0)"), "%s", g_out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("mixed");
    TCase *tc = tcase_create("mixed");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, trains_and_resumes_exactly);
    tcase_add_test(tc, weight_zero_leaves_a_pipeline_out);
    tcase_add_test(tc, memory_bank_keeps_datasets_apart);
    tcase_add_test(tc, momentum_and_clustering_train_on_both);
    tcase_add_test(tc, evaluators_measure_their_own_datasets);
    tcase_add_test(tc, precise_bn_leaves_training_alone);
    tcase_add_test(tc, bad_combinations_refused_at_check);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

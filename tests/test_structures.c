/* Any structure with any architecture (issue 12): every pairing of a
 * structure {views, jigsaw, cpc, tcn} with an architecture {end_to_end,
 * memory_bank, momentum, clustering} either trains 3 steps through
 * build/contrast with finite, changing losses and a checkpoint that
 * resumes, or is refused by `contrast check` with one line naming both
 * plugins and the reason. The table below is the matrix of
 * docs/plugins.md; a pairing that changes verdict must change both.
 *
 * Also: the seam itself on a hand-made structure-less env (the fallback to
 * the default structure) and the refusal of a 1.1-style architecture
 * (caps 0) with a structure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "data/multiview_fmnist.h"

#define OUT_MAX (1 << 16)

/* A structure: the config that uses it (configs/), and extra --set options
 * that make it small. */
typedef struct structure_case {
    const char *name, *config, *sets;
} structure_case;

/* tcn's multi-view sequences, made in main (16 train + 2 test sequences). */
static char g_tcn_sets[2000];

static const structure_case k_structures[] = {
    {"views", "simclr_fmnist.cfg", ""},
    {"jigsaw", "pirl_fmnist.cfg", ""},
    {"cpc", "cpc_fmnist.cfg", ""},
    {"tcn", "tcn_fmnist.cfg", g_tcn_sets},
};

/* An architecture group, sized for 128 items in batches of 16. */
typedef struct arch_case {
    const char *name, *group;
} arch_case;

static const arch_case k_archs[] = {
    {"end_to_end", "{ type = \"end_to_end\"; temperature = 0.5; }"},
    {"memory_bank", "{ type = \"memory_bank\"; negatives = 64; temperature = 0.1; }"},
    {"momentum", "{ type = \"momentum\"; queue_size = 64; shuffle_splits = 2; }"},
    {"clustering", "{ type = \"clustering\"; prototypes = 10; freeze_prototypes_steps = 0; }"},
};

/* The verdict of each pairing: NULL = trains, else a substring of the
 * refusal (after both plugin names). */
static const char *verdict(const char *structure, const char *arch) {
    if (!strcmp(structure, "cpc")) {
        if (!strcmp(arch, "memory_bank")) return "rows are patches, not dataset items";
        if (!strcmp(arch, "momentum") || !strcmp(arch, "clustering")) return "needs negatives from the same batch";
    }
    if (!strcmp(structure, "tcn")) {
        if (!strcmp(arch, "memory_bank")) return "rows are frames (one per sequence and time), not dataset items";
        if (!strcmp(arch, "momentum") || !strcmp(arch, "clustering")) return "needs negatives from the same batch";
    }
    return NULL;
}

static const char *common_sets(void) {
    return "--set data.train.limit=128 --set data.test.limit=64 --set train.batch_size=16 --set train.threads=1 "
           "--set train.log_every=1 --set train.keep=0 --set train.epochs=4 --set 'evaluation.evaluators=()'";
}

static void trains_and_resumes(const structure_case *s, const arch_case *a) {
    static char out[OUT_MAX];
    char cmd[4096], run[600], path[700];
    snprintf(run, sizeof run, "%s/%s-%s", ct_test_tmpdir(), s->name, a->name);
    /* A run of 4 steps stopped after 3 (a checkpoint), then resumed. */
    snprintf(cmd, sizeof cmd, "%s/contrast train %s/configs/%s %s %s --set 'architecture=%s' "
             "--set train.max_steps=4 --stop-after 3 --run-dir %s",
             ct_test_build_dir(), ct_test_source_dir(), s->config, common_sets(), s->sets, a->group, run);
    int rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "%s + %s: `%s` exited %d:\n%s", s->name, a->name, cmd, rc, out);
    double loss[8];
    int n = ct_test_step_losses(run, loss, 8);
    ck_assert_msg(n == 3, "%s + %s: %d step lines", s->name, a->name, n);
    for (int i = 0; i < n; i++) ck_assert_msg(isfinite(loss[i]), "%s + %s: step %d loss %g", s->name, a->name, i, loss[i]);
    ck_assert_msg(loss[0] != loss[1] || loss[1] != loss[2], "%s + %s: the loss does not change (%g)", s->name, a->name,
                  loss[0]);
    /* Resume: the last step from the checkpoint of step 3. */
    snprintf(cmd, sizeof cmd, "%s/contrast train %s/configs/%s %s %s --set 'architecture=%s' "
             "--set train.max_steps=4 --run-dir %s --resume",
             ct_test_build_dir(), ct_test_source_dir(), s->config, common_sets(), s->sets, a->group, run);
    rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "%s + %s: resume exited %d:\n%s", s->name, a->name, rc, out);
    ck_assert_msg(strstr(out, "resuming"), "%s + %s: did not resume:\n%s", s->name, a->name, out);
    n = ct_test_step_losses(run, loss, 8);
    ck_assert_msg(n == 4 && isfinite(loss[3]), "%s + %s: %d step lines after resume", s->name, a->name, n);
    snprintf(path, sizeof path, "%s/checkpoint-s00000004.safetensors", run);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s + %s: no %s", s->name, a->name, path);
    fclose(f);
}

static void refused_by_check(const structure_case *s, const arch_case *a, const char *why) {
    static char out[OUT_MAX];
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/contrast check %s/configs/%s %s %s --set 'architecture=%s'", ct_test_build_dir(),
             ct_test_source_dir(), s->config, common_sets(), s->sets, a->group);
    int rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc != 0, "%s + %s: check accepted it:\n%s", s->name, a->name, out);
    /* One line: structure, architecture, reason. */
    const char *line = strstr(out, "structure ");
    ck_assert_msg(line, "%s + %s: no refusal naming the structure:\n%s", s->name, a->name, out);
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    char one[1024];
    snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), line);
    char want_s[128], want_a[128];
    snprintf(want_s, sizeof want_s, "structure %s", s->name);
    snprintf(want_a, sizeof want_a, "architecture %s", a->name);
    ck_assert_msg(strstr(one, want_s) && strstr(one, want_a) && strstr(one, why),
                  "%s + %s: want one line with '%s', '%s' and '%s':\n%s", s->name, a->name, want_s, want_a, why, out);
}

START_TEST(matrix) {
    const structure_case *s = &k_structures[_i / 4];
    const arch_case *a = &k_archs[_i % 4];
    const char *why = verdict(s->name, a->name);
    if (why)
        refused_by_check(s, a, why);
    else
        trains_and_resumes(s, a);
}
END_TEST

/* A structure group for the default takes no settings; an unknown one is
 * named with what is available. */
START_TEST(structure_group_errors) {
    static char out[OUT_MAX];
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s/contrast check %s/configs/simclr_fmnist.cfg %s --set 'pipelines.[0].structure={ type = \"views\"; "
             "grid = 3; }'",
             ct_test_build_dir(), ct_test_source_dir(), common_sets());
    ck_assert_int_ne(ct_test_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "takes no settings"), "%s", out);
    snprintf(cmd, sizeof cmd,
             "%s/contrast check %s/configs/simclr_fmnist.cfg %s --set 'pipelines.[0].structure={ type = \"jigsw\"; }'",
             ct_test_build_dir(), ct_test_source_dir(), common_sets());
    ck_assert_int_ne(ct_test_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "unknown structure 'jigsw'") && strstr(out, "jigsaw"), "%s", out);
}
END_TEST

/* The tcn cells' data: small multi-view Fashion-MNIST (mpeg4 when
 * FFmpeg is there; without it the cells fail naming the missing source). */
static void make_tcn_data(void) {
    char out[600];
    snprintf(out, sizeof out, "%s/mvf", ct_test_tmpdir());
#ifdef CONTRAST_HAVE_FFMPEG
    ct_mvf_params p;
    ct_mvf_defaults(&p);
    p.sequences = 16;
    p.test_sequences = 2;
    p.frames = 16;
    p.size = 48;
    p.pool = 10;
    ct_error err = CT_ERROR_INIT;
    bool reused;
    if (ct_mvf_make(out, &p, false, &reused, &err) != CT_OK) fprintf(stderr, "multiview-fmnist: %s\n", err.msg);
#endif
    snprintf(g_tcn_sets, sizeof g_tcn_sets,
             "--set data.train.root=\"%s/train\" --set data.test.root=\"%s/test\" --set data.train.index_dir=\"\" "
             "--set data.test.index_dir=\"\"", out, out);
}

int main(void) {
    make_tcn_data();
    Suite *s = suite_create("structures");
    TCase *tc = tcase_create("matrix");
    tcase_set_timeout(tc, 600);
    int n = (int)(sizeof k_structures / sizeof k_structures[0]) * 4;
    tcase_add_loop_test(tc, matrix, 0, n);
    tcase_add_test(tc, structure_group_errors);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

/* The run report: training writes <run>/report.html by itself, `contrast
 * report RUN` rewrites it; the page is self-contained (no script, no
 * external resource, the preview inlined), each chart's polyline holds as
 * many points as it says, the kNN confusion matrix and the health table
 * are there. A run of two pipelines draws each pipeline's loss beside the
 * total; the watch's warnings and a stop (divergence, a NaN loss) are
 * marked on the step curves and listed under Run safety, and training
 * writes the report when it stops. In a real browser (Debian's chromium, when installed; the
 * test says so and skips that part otherwise): the DOM renders, the
 * console has no errors, the screenshot is not blank. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CONTRAST_HAVE_PNG
#include <png.h>
#endif

#include "ct_test.h"

#define FM "/usr/share/datasets/fashion-mnist/"

static char g_out[1 << 18];

static int contrast(const char *fmt, ...) {
    char args[3000], cmd[3600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s/contrast %s", ct_test_build_dir(), args);
    return ct_test_run(cmd, g_out, sizeof g_out);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* A 2-step SimCLR run of a small ResNet on 256 images, kNN evaluation. */
static void train_run(char *run, size_t n) {
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/r.cfg", ct_test_tmpdir());
    snprintf(run, n, "%s/run", ct_test_tmpdir());
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name = \"rep\";\nseed = 2;\n"
            "data = { train = { type = \"idx\"; limit = 256;\n"
            "    images = \"" FM "t10k-images-idx3-ubyte.gz\"; labels = \"" FM "t10k-labels-idx1-ubyte.gz\"; };\n"
            "  test = { type = \"idx\"; limit = 300;\n"
            "    images = \"" FM "train-images-idx3-ubyte.gz\"; labels = \"" FM "train-labels-idx1-ubyte.gz\"; }; };\n"
            "encoder = { type = \"resnet\"; in_channels = 1; stem = \"small\"; stem_width = 8;\n"
            "  blocks = [1, 1, 1]; widths = [8, 8, 16]; };\n"
            "pipelines = ( { data = \"train\"; views = 2;\n"
            "  transforms = ( { type = \"random_resized_crop\"; size = [28]; }, { type = \"normalize\"; mean = [0.286]; std = [0.353]; } ); } );\n"
            "architecture = { type = \"end_to_end\"; head_hidden = [16]; head_out = 8; };\n"
            "optimizer = { type = \"adamw\"; lr = 1e-3; };\n"
            "train = { epochs = 1; batch_size = 64; max_steps = 2; threads = 2; };\n"
            "evaluation = { train = \"train\"; test = \"test\";\n"
            "  transforms = ( { type = \"normalize\"; mean = [0.286]; std = [0.353]; } );\n"
            "  evaluators = ( { type = \"knn\"; k = 10; } ); };\n");
    fclose(f);
    int rc = contrast("train %s --run-dir %s", cfg, run);
    ck_assert_msg(rc == 0, "train failed:\n%s", g_out);
    /* a baseline line for the metrics table: the random initialisation */
    rc = contrast("eval %s --run-dir %s", cfg, run);
    ck_assert_msg(rc == 0, "eval failed:\n%s", g_out);
}

static int check_polylines(const char *html);

/* A 2-pipeline SimCLR run (weights 0.75 / 0.25) with SGD at lr 1000: the
 * weights' norm grows past the watch's bound at once, the watch warns and
 * stops the run after 3 steps (exit 1). */
static void diverging_run(char *run, size_t n) {
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/two.cfg", ct_test_tmpdir());
    snprintf(run, n, "%s/diverged", ct_test_tmpdir());
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name = \"rep2\";\nseed = 2;\n"
            "data = { train = { type = \"idx\"; limit = 256;\n"
            "    images = \"" FM "t10k-images-idx3-ubyte.gz\"; labels = \"" FM "t10k-labels-idx1-ubyte.gz\"; }; };\n"
            "encoder = { type = \"resnet\"; in_channels = 1; stem = \"small\"; stem_width = 8;\n"
            "  blocks = [1, 1, 1]; widths = [8, 8, 16]; };\n"
            "pipelines = ( { data = \"train\"; views = 2; weight = 0.75;\n"
            "  transforms = ( { type = \"random_resized_crop\"; size = [28]; }, { type = \"normalize\"; mean = [0.286]; std = [0.353]; } ); },\n"
            "  { data = \"train\"; views = 2; weight = 0.25;\n"
            "  transforms = ( { type = \"random_resized_crop\"; size = [16]; scale = [0.2, 0.5]; }, { type = \"normalize\"; mean = [0.286]; std = [0.353]; } ); } );\n"
            "architecture = { type = \"end_to_end\"; head_hidden = [16]; head_out = 8; };\n"
            "optimizer = { type = \"sgd\"; lr = 1000.0; };\n"
            "train = { epochs = 20; batch_size = 64; threads = 1; watch_steps = 3; };\n");
    fclose(f);
    int rc = contrast("train %s --run-dir %s", cfg, run);
    ck_assert_msg(rc == 1 && strstr(g_out, "contrast: training diverged"), "train exited %d:\n%s", rc, g_out);
}

/* The labelled series of a page (ours or a browser's DOM dump). */
static bool has_series(const char *html, const char *label) {
    char a[200], b[200];
    snprintf(a, sizeof a, "data-label='%s'", label);
    snprintf(b, sizeof b, "data-label=\"%s\"", label);
    return strstr(html, a) || strstr(html, b);
}

static int count(const char *html, const char *what) {
    int n = 0;
    for (const char *p = strstr(html, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

/* What the diverged run's page must show, in our HTML or the browser's DOM:
 * the total and both pipelines' losses, the two watch warnings (steps 2
 * and 4) and the stop (step 4) on each of the 4 step charts, the list. */
static void check_diverged_page(const char *html) {
    ck_assert_msg(has_series(html, "total (weighted sum)") && has_series(html, "pipeline 0 (train, weight 0.75)") &&
                  has_series(html, "pipeline 1 (train, weight 0.25)"), "no per-pipeline loss series");
    ck_assert_int_eq(check_polylines(html), 6); /* 3 loss lines, lr, views/s, stall (no evaluation here) */
    ck_assert_int_eq(count(html, "class=\"mark watch\"") + count(html, "class='mark watch'"), 4 * 2);
    ck_assert_int_eq(count(html, "class=\"mark stop\"") + count(html, "class='mark stop'"), 4);
    ck_assert(strstr(html, "data-x='4'") || strstr(html, "data-x=\"4\""));
    ck_assert(strstr(html, "Run safety") && strstr(html, "Training stopped in step 4 (divergence)"));
    ck_assert(strstr(html, "class='watch' data-n='2'") || strstr(html, "class=\"watch\" data-n=\"2\""));
    ck_assert(strstr(html, "L2 norm is"));
}

/* Every <polyline ... data-n='N' ... points='...'>: N > 0 pairs, as many
 * as said. Returns how many lines. */
static int check_polylines(const char *html) {
    int lines = 0;
    for (const char *p = strstr(html, "<polyline"); p; p = strstr(p + 1, "<polyline")) {
        /* our single quotes, or the double quotes of a browser's DOM dump */
        const char *dn = strstr(p, "data-n="), *pts = strstr(p, "points=");
        ck_assert(dn && pts);
        long n = strtol(dn + 8, NULL, 10);
        long pairs = 0;
        for (const char *q = pts + 8; *q && *q != '\'' && *q != '"'; q++) pairs += *q == ',';
        ck_assert_msg(n > 0 && pairs == n, "a chart line says %ld points and draws %ld", n, pairs);
        lines++;
    }
    return lines;
}

START_TEST(test_report_written_and_self_contained) {
    char run[600], path[700];
    train_run(run, sizeof run);
    snprintf(path, sizeof path, "%s/report.html", run);
    ck_assert_msg(access(path, F_OK) == 0, "training wrote no %s", path);
    ck_assert_int_eq(contrast("report %s", run), 0);
    ck_assert_msg(strstr(g_out, "report.html"), "%s", g_out);
    const char *html = slurp(path);
    ck_assert_ptr_nonnull(html);
    ck_assert_msg(!strstr(html, "<script") && !strstr(html, "<link") && !strstr(html, "@import"), "external or script");
    /* the only URL is the SVG namespace */
    for (const char *p = strstr(html, "http"); p; p = strstr(p + 1, "http"))
        ck_assert_msg(strncmp(p, "http://www.w3.org/2000/svg", 26) == 0, "a URL in the report: %.60s", p);
    ck_assert(strstr(html, "src='data:image/png;base64,iVBORw0KGgo")); /* the PNG signature */
    ck_assert_int_ge(check_polylines(html), 6); /* loss, lr, views/s, stall, top-1, top-5 */
    ck_assert(strstr(html, "<g class='points' data-n='300'")); /* the PCA map of the 300 test images */
    ck_assert(strstr(html, "data-classes='10'"));                /* the kNN confusion matrix */
    ck_assert(strstr(html, "Architecture health") && strstr(html, "collapse alarm"));
    ck_assert(strstr(html, "rep: resnet, random init")); /* the baseline column */
}
END_TEST

/* Training that stops writes the report by itself: per-pipeline losses,
 * the watch's warnings and the stop on the curves and in the list; the
 * stopped weights are not measured. */
START_TEST(test_report_shows_pipelines_watch_and_stop) {
    char run[600], path[700];
    diverging_run(run, sizeof run);
    snprintf(path, sizeof path, "%s/report.html", run);
    const char *html = slurp(path);
    ck_assert_msg(html, "the stopped run wrote no %s", path);
    check_diverged_page(html);
    ck_assert(strstr(html, "Architecture health") && strstr(html, "stopped at step 4: training diverged"));
    ck_assert(strstr(html, "the stopped model&#39;s weights are not measured"));
    ck_assert(!strstr(html, "<g class='points'")); /* no embedding map of diverged weights */
    /* `contrast report` on the stopped run (it loads the step-4 checkpoint) keeps the marks and the list. */
    ck_assert_int_eq(contrast("report %s", run), 0);
    check_diverged_page(slurp(path));
}
END_TEST

/* A NaN loss (the nan_probe test architecture, step index 6): a "stop"
 * line of kind non_finite, the red mark past the last step drawn (the
 * failed step logs no step line), the reason in the list. */
START_TEST(test_report_shows_a_nan_stop) {
    char cfg[600], run[600], path[700];
    snprintf(cfg, sizeof cfg, "%s/nan.cfg", ct_test_tmpdir());
    snprintf(run, sizeof run, "%s/nan", ct_test_tmpdir());
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name = \"nan_probe\";\nseed = 3;\n"
            "plugins = { path = [\"%s/tests/plugins/nan_probe\"]; };\n"
            "data = { train = { type = \"idx\"; limit = 64; images = \"" FM "t10k-images-idx3-ubyte.gz\"; }; };\n"
            "encoder = { type = \"pixels\"; };\n"
            "pipelines = ( { data = \"train\"; views = 1;\n"
            "  transforms = ( { type = \"normalize\"; mean = [0.2860]; std = [0.3530]; } ); } );\n"
            "architecture = { type = \"nan_probe\"; nan_step = 6; };\n"
            "optimizer = { type = \"sgd\"; lr = 0.1; };\n"
            "train = { epochs = 3; batch_size = 16; threads = 1; checkpoint_every = 1; keep = 0; };\n",
            ct_test_build_dir());
    fclose(f);
    ck_assert_int_eq(contrast("train %s --run-dir %s", cfg, run), 1);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    const char *metrics = slurp(path);
    ck_assert_msg(strstr(metrics, "{\"type\": \"stop\", \"step\": 6, \"kind\": \"non_finite\", \"reason\": \"loss is nan\"}"),
                  "%s", metrics);
    ck_assert(!strstr(metrics, "loss_pipeline_")); /* one pipeline: the total only */
    snprintf(path, sizeof path, "%s/report.html", run);
    const char *html = slurp(path);
    ck_assert_msg(html, "the stopped run wrote no %s", path);
    ck_assert(has_series(html, "loss") && !has_series(html, "total (weighted sum)"));
    ck_assert_int_eq(count(html, "<g class='mark stop' data-x='6'>"), 4);
    /* the probe's weights grow before the NaN: one divergence warning (step 2), no watch stop */
    ck_assert_int_eq(count(html, "<g class='mark watch' data-x='2'>"), 4);
    ck_assert(strstr(html, "class='watch' data-n='1'"));
    ck_assert(strstr(html, "Training stopped in step 6 (non_finite): loss is nan"));
}
END_TEST

START_TEST(test_report_refuses_a_non_run) {
    ck_assert_int_eq(contrast("report %s", ct_test_tmpdir()), 1);
    ck_assert_msg(strstr(g_out, "is not a run directory (no metrics.jsonl)"), "%s", g_out);
    ck_assert_int_eq(contrast("report"), 2);
}
END_TEST

#ifdef CONTRAST_HAVE_PNG
/* Distinct colours among the screenshot's pixels (capped). */
static int colours(const char *png_path) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    ck_assert_msg(png_image_begin_read_from_file(&img, png_path), "cannot read %s", png_path);
    img.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    ck_assert_ptr_nonnull(px);
    ck_assert(png_image_finish_read(&img, NULL, px, 0, NULL));
    static unsigned char seen[1 << 15];
    memset(seen, 0, sizeof seen);
    int distinct = 0;
    for (size_t i = 0; i + 2 < PNG_IMAGE_SIZE(img); i += 3) {
        unsigned key = (unsigned)(px[i] >> 3) << 10 | (unsigned)(px[i + 1] >> 3) << 5 | (unsigned)(px[i + 2] >> 3);
        if (!seen[key]) seen[key] = 1, distinct++;
    }
    free(px);
    return distinct;
}
#endif

START_TEST(test_report_in_a_browser) {
    if (system("command -v chromium > /dev/null 2>&1") != 0) {
        printf("test_report_in_a_browser: SKIPPED: chromium is not installed (scripts/setup installs it)\n");
        return;
    }
    char run[600], cmd[2400], shot[700];
    train_run(run, sizeof run);
    const char *flags = "--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run "
                        "--disable-background-networking --enable-logging=stderr --v=0";
    snprintf(cmd, sizeof cmd, "timeout 120 chromium %s --dump-dom file://%s/report.html", flags, run);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "chromium --dump-dom exited %d:\n%.2000s", rc, g_out);
    ck_assert_msg(strstr(g_out, "</svg>") && strstr(g_out, "Architecture health"), "DOM:\n%.2000s", g_out);
    ck_assert_int_ge(check_polylines(g_out), 6);
    ck_assert_msg(!strstr(g_out, ":CONSOLE(") && !strstr(g_out, "Uncaught"), "console messages:\n%.3000s", g_out);
    snprintf(shot, sizeof shot, "%s/shot.png", ct_test_tmpdir());
    snprintf(cmd, sizeof cmd, "timeout 120 chromium %s --window-size=1400,2400 --screenshot=%s file://%s/report.html",
             flags, shot, run);
    rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 0 && access(shot, F_OK) == 0, "no screenshot (%d):\n%.2000s", rc, g_out);
#ifdef CONTRAST_HAVE_PNG
    int c = colours(shot);
    ck_assert_msg(c > 40, "the screenshot looks blank: %d colours", c);
#endif
    /* The stopped 2-pipeline run's page as the browser sees it. */
    diverging_run(run, sizeof run);
    snprintf(cmd, sizeof cmd, "timeout 120 chromium %s --dump-dom file://%s/report.html", flags, run);
    rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "chromium --dump-dom exited %d:\n%.2000s", rc, g_out);
    ck_assert_msg(!strstr(g_out, ":CONSOLE(") && !strstr(g_out, "Uncaught"), "console messages:\n%.3000s", g_out);
    check_diverged_page(g_out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_report_written_and_self_contained);
    tcase_add_test(tc, test_report_shows_pipelines_watch_and_stop);
    tcase_add_test(tc, test_report_shows_a_nan_stop);
    tcase_add_test(tc, test_report_refuses_a_non_run);
    tcase_add_test(tc, test_report_in_a_browser);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

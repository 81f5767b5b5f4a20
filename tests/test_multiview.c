/* The `multiview` source and `contrast make-dataset multiview-fmnist`
 * (issue 14): the layout and both item kinds, decoded frames against the
 * rendered ones (FFV1), frames matched by timestamp (a camera at twice the
 * frame rate), cameras of different lengths trimmed with a warning naming
 * the sequence, every kind of bad sequence (an error naming it, or left
 * out with skip_bad), and the make-dataset command. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ct_data_test.h"
#include "ct_test.h"
#include "data/fmnist_items.h"
#include "data/multiview_fmnist.h"
#include "data/video_writer.h"

#ifdef CONTRAST_HAVE_FFMPEG

static ct_registry *reg;
static char dir[256];
static char logged[8192]; /* warnings of the last open */

static void capture_log(const ct_host *h, ct_log_level level, const char *fmt, ...) {
    (void)h;
    if (level < CT_LOG_WARN) return;
    va_list ap;
    va_start(ap, fmt);
    size_t used = strlen(logged);
    vsnprintf(logged + used, sizeof logged - used, fmt, ap);
    va_end(ap);
    used = strlen(logged);
    if (used + 1 < sizeof logged) strcat(logged, "\n");
}

static void setup(void) {
    reg = ct_registry_new();
    dt_load_plugin(reg, "multiview");
    const char *t = ct_test_tmpdir();
    ck_assert_ptr_nonnull(t);
    snprintf(dir, sizeof dir, "%s", t);
}

static void teardown(void) { ct_registry_free(reg); }

/* The source on `root` with extra settings, warnings into `logged`. */
static ct_status open_mv(const char *root, const char *extra, ct_dataset *d, ct_error *err) {
    static ct_host host;
    ct_host_defaults(&host);
    host.log = capture_log;
    logged[0] = '\0';
    const ct_registry_entry *e = ct_registry_find(reg, CT_ROLE_SOURCE, "multiview");
    ck_assert_ptr_nonnull(e);
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "multiview");
    d->ops = e->ops.source;
    char cfg[3000];
    snprintf(cfg, sizeof cfg, "root = \"%s\"; index_dir = \"%s/index\"; channels = 1; %s", root, dir, extra);
    ct_status st = ct_settings_parse(d->ops->params, cfg, "multiview", &d->settings, err);
    if (st == CT_OK) st = d->ops->create(d->settings, &host, &d->self, err);
    if (st != CT_OK) {
        ct_settings_free(d->settings);
        memset(d, 0, sizeof *d);
        return st;
    }
    d->ops->info(d->self, &d->info);
    return CT_OK;
}

static void open_ok(const char *root, const char *extra, ct_dataset *d) {
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_mv(root, extra, d, &err) == CT_OK, "open %s: %s", root, err.msg);
}

static void expect_error(const char *root, const char *extra, const char *n1, const char *n2) {
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_mv(root, extra, &d, &err) != CT_OK, "no error for %s %s", root, extra);
    ck_assert_msg(strstr(err.msg, n1), "'%s' not in: %s", n1, err.msg);
    if (n2) ck_assert_msg(strstr(err.msg, n2), "'%s' not in: %s", n2, err.msg);
}

static const ct_multiview *mv_of(const ct_dataset *d) {
    const ct_multiview *mv = d->ops->extension(d->self, CT_MULTIVIEW_EXT);
    ck_assert_ptr_nonnull(mv);
    ck_assert_uint_ge(mv->size, sizeof *mv);
    return mv;
}

/* A small multiview-fmnist set (FFV1: lossless) in dir/<name>. */
static void make_set(const char *name, ct_mvf_params *p) {
    ct_mvf_defaults(p);
    p->sequences = 4;
    p->test_sequences = 2;
    p->views = 3;
    p->frames = 10;
    p->size = 48;
    p->pool = 10;
    p->seed = 3;
    snprintf(p->codec, sizeof p->codec, "ffv1");
    char out[700];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    ct_error err = CT_ERROR_INIT;
    bool reused = true;
    ck_assert_msg(ct_mvf_make(out, p, false, &reused, &err) == CT_OK, "make: %s", err.msg);
    ck_assert(!reused);
}

START_TEST(layout_and_items) {
    ct_mvf_params p;
    make_set("mv", &p);
    char root[800];
    snprintf(root, sizeof root, "%s/mv/train", dir);
    ct_dataset d;
    open_ok(root, "", &d);
    ck_assert_int_eq(d.info.count, 4);
    ck_assert_int_eq(d.info.height, 48);
    ck_assert(d.info.is_video);
    const ct_multiview *mv = mv_of(&d);
    ck_assert_int_eq(mv->views, 3);
    ck_assert_int_eq(mv->sequences, 4);
    for (int64_t q = 0; q < 4; q++) {
        ck_assert_int_eq(mv->length(mv->self, q), 10);
        int64_t s, t;
        int v;
        mv->locate(mv->self, q, &s, &v, &t);
        ck_assert(s == q && v == -1 && t == -1);
    }
    ck_assert_double_eq_tol(d.ops->duration(d.self, 0), 1.0, 1e-9);
    dt_dataset_free(&d);
    /* frames: sequence-major, then camera, then time */
    snprintf(root, sizeof root, "%s/mv/test", dir);
    open_ok(root, "items = \"frames\"; size = [24];", &d);
    ck_assert_int_eq(d.info.count, 2 * 3 * 10);
    ck_assert_int_eq(d.info.height, 24);
    ck_assert(!d.info.is_video);
    mv = mv_of(&d);
    for (int64_t i = 0; i < d.info.count; i++) {
        int64_t s, t;
        int v;
        mv->locate(mv->self, i, &s, &v, &t);
        ck_assert_int_eq(s, i / 30);
        ck_assert_int_eq(v, (int)(i % 30 / 10));
        ck_assert_int_eq(t, i % 10);
    }
    ct_image img = CT_IMAGE_INIT;
    int32_t label = 7;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(d.ops->get(d.self, 45, &img, &label, &err) == CT_OK, "%s", err.msg);
    ck_assert(img.t == 1 && img.c == 1 && img.h == 24 && img.w == 24 && label == -1);
    ck_assert(d.ops->get(d.self, 60, &img, &label, &err) != CT_OK && strstr(err.msg, "out of range"));
    ct_image_free(&img);
    dt_dataset_free(&d);
    /* limit keeps the first sequences */
    snprintf(root, sizeof root, "%s/mv/train", dir);
    open_ok(root, "limit = 3;", &d);
    ck_assert_int_eq(d.info.count, 3);
    dt_dataset_free(&d);
}
END_TEST

/* Sequence q's scene from the split's CSV (the pool is the maker's own). */
static void scene_from_csv(const char *csv, int64_t q, ct_mvf_scene *s) {
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* header */
    for (int64_t i = 0; i <= q; i++) ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    int cls;
    long long item;
    ck_assert_int_eq(sscanf(line, "seq%*d,%lld,%d,%lf,%lf,%lf,%lf,%lf,%d", &item, &cls, &s->x0, &s->y0, &s->x1, &s->y1,
                            &s->wobble, &s->waves),
                     8);
    s->item = item;
}

START_TEST(frames_are_the_rendered_ones) {
    ct_mvf_params p;
    make_set("mvr", &p);
    char root[800], csv[800];
    snprintf(root, sizeof root, "%s/mvr/train", dir);
    snprintf(csv, sizeof csv, "%s/mvr/train.csv", dir);
    ct_fmnist_items items;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_fmnist_items_load(p.fmnist_dir, 0, &items, &err) == CT_OK, "%s", err.msg);
    ct_dataset d;
    open_ok(root, "", &d);
    const ct_multiview *mv = mv_of(&d);
    float *world = malloc(48 * 48 * sizeof *world);
    uint8_t want[48 * 48];
    ct_image img = CT_IMAGE_INIT;
    for (int64_t q = 1; q < 3; q++) {
        ct_mvf_scene s;
        scene_from_csv(csv, q, &s);
        int64_t times[3] = {0, 4, 9};
        for (int v = 0; v < 3; v++) {
            ct_mvf_camera cam;
            ct_mvf_camera_of(&p, v, &cam);
            ck_assert_msg(mv->frames(mv->self, q, v, times, 3, &img, &err) == CT_OK, "%s", err.msg);
            ck_assert(img.t == 3 && img.c == 1 && img.h == 48 && img.w == 48);
            for (int k = 0; k < 3; k++) {
                ct_mvf_render(&p, &s, &cam, items.images, 0, q, v, (int)times[k], world, want);
                const float *got = ct_image_frame(&img, k);
                int worst = 0;
                for (int i = 0; i < 48 * 48; i++) {
                    int diff = abs((int)(got[i] * 255.0f + 0.5f) - want[i]);
                    if (diff > worst) worst = diff;
                }
                /* the studio-range YUV round trip moves a level by at most 1 */
                ck_assert_msg(worst <= 1, "sequence %lld camera %d frame %lld: off by %d levels", (long long)q, v,
                              (long long)times[k], worst);
            }
        }
    }
    /* the cameras differ: the same instant is not the same picture */
    int64_t t5 = 5;
    ct_image other = CT_IMAGE_INIT;
    ck_assert(mv->frames(mv->self, 0, 0, &t5, 1, &img, &err) == CT_OK);
    ck_assert(mv->frames(mv->self, 0, 1, &t5, 1, &other, &err) == CT_OK);
    double diff = 0;
    for (size_t i = 0; i < ct_image_numel(&img); i++) diff += fabsf(img.data[i] - other.data[i]);
    ck_assert_msg(diff / ct_image_numel(&img) > 0.02, "cameras 0 and 1 look alike (%g)", diff / ct_image_numel(&img));
    /* out of range */
    int64_t bad = 10;
    ck_assert(mv->frames(mv->self, 0, 0, &bad, 1, &img, &err) != CT_OK && strstr(err.msg, "outside"));
    ck_assert(mv->frames(mv->self, 0, 3, &t5, 1, &img, &err) != CT_OK && strstr(err.msg, "no camera 3"));
    ct_image_free(&img);
    ct_image_free(&other);
    free(world);
    ct_fmnist_items_free(&items);
    dt_dataset_free(&d);
}
END_TEST

/* A video of `n` 16x16 frames at `fps`; frame k is flat at level(k). */
static void write_video(const char *path, int fps, int n, int (*level)(int)) {
    ct_video_writer *w;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_video_writer_open(path, "ffv1", 16, 16, fps, 8, &w, &err) == CT_OK, "%s", err.msg);
    uint8_t px[256];
    for (int k = 0; k < n; k++) {
        memset(px, level(k), sizeof px);
        ck_assert_msg(ct_video_writer_frame(w, px, &err) == CT_OK, "%s", err.msg);
    }
    ck_assert_msg(ct_video_writer_close(w, false, &err) == CT_OK, "%s", err.msg);
}

static int level_k(int k) { return 20 + 10 * k; }
static int level_half(int k) { return 20 + 10 * (k / 2); } /* twice the rate, each instant twice */

static void mkdirs(const char *a, const char *b) {
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, a);
    mkdir(path, 0755);
    if (b) {
        snprintf(path, sizeof path, "%s/%s/%s", dir, a, b);
        mkdir(path, 0755);
    }
}

static void video_at(const char *rel, int fps, int n, int (*level)(int)) {
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    write_video(path, fps, n, level);
}

START_TEST(timestamps_and_trimming) {
    mkdirs("ts", "a");
    mkdirs("ts", "b");
    video_at("ts/a/view0.mkv", 10, 12, level_k);
    video_at("ts/a/view1.mkv", 20, 24, level_half); /* same instants, twice as many frames */
    video_at("ts/b/view0.mkv", 10, 12, level_k);
    video_at("ts/b/view1.mkv", 10, 9, level_k); /* stops early */
    char root[800];
    snprintf(root, sizeof root, "%s/ts", dir);
    ct_dataset d;
    open_ok(root, "", &d);
    const ct_multiview *mv = mv_of(&d);
    ck_assert_int_eq(mv->length(mv->self, 0), 12);
    ck_assert_int_eq(mv->length(mv->self, 1), 9);
    /* the warning names the trimmed sequence, and only that one */
    ck_assert_msg(strstr(logged, "/ts/b") && strstr(logged, "trimmed to the 9 frames"), "log: %s", logged);
    ck_assert_msg(!strstr(logged, "/ts/a"), "log: %s", logged);
    /* frame k of both cameras shows instant k, by timestamp not by index */
    int64_t times[12];
    for (int k = 0; k < 12; k++) times[k] = k;
    ct_image a = CT_IMAGE_INIT, b = CT_IMAGE_INIT;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(mv->frames(mv->self, 0, 0, times, 12, &a, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(mv->frames(mv->self, 0, 1, times, 12, &b, &err) == CT_OK, "%s", err.msg);
    for (int k = 0; k < 12; k++) {
        int la = (int)(ct_image_frame(&a, k)[37] * 255.0f + 0.5f), lb = (int)(ct_image_frame(&b, k)[37] * 255.0f + 0.5f);
        ck_assert_msg(abs(la - level_k(k)) <= 1 && abs(lb - level_k(k)) <= 1, "instant %d: %d and %d, want %d", k, la,
                      lb, level_k(k));
    }
    /* times in any order give the same frames */
    int64_t back[3] = {11, 2, 7};
    ck_assert(mv->frames(mv->self, 0, 1, back, 3, &b, &err) == CT_OK);
    for (int k = 0; k < 3; k++)
        ck_assert_int_le(abs((int)(ct_image_frame(&b, k)[0] * 255.0f + 0.5f) - level_k((int)back[k])), 1);
    ct_image_free(&a);
    ct_image_free(&b);
    dt_dataset_free(&d);
}
END_TEST

START_TEST(bad_sequences) {
    mkdirs("bad", "good1");
    mkdirs("bad", "good2");
    video_at("bad/good1/view0.mkv", 10, 6, level_k);
    video_at("bad/good1/view1.mkv", 10, 6, level_k);
    video_at("bad/good2/view0.mkv", 10, 6, level_k);
    video_at("bad/good2/view1.mkv", 10, 6, level_k);
    char path[900], root[800];
    snprintf(root, sizeof root, "%s/bad", dir);
    /* each kind alone in a fresh sequence folder, then removed again */
    struct { const char *what; const char *needle; } kinds[] = {
        {"gap", "view1 (camera 1) is missing"},
        {"empty", "view1.mkv"},
        {"single", "only one camera file"},
        {"short", "its cameras share"},
        {"notvideo", "view1.mkv"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char seq[64];
        snprintf(seq, sizeof seq, "x_%s", kinds[k].what);
        mkdirs("bad", seq);
        snprintf(path, sizeof path, "bad/%s/view0.mkv", seq);
        video_at(path, 10, 6, level_k);
        snprintf(path, sizeof path, "%s/bad/%s/view1.mkv", dir, seq);
        if (!strcmp(kinds[k].what, "gap")) {
            snprintf(path, sizeof path, "bad/%s/view2.mkv", seq);
            video_at(path, 10, 6, level_k);
        } else if (!strcmp(kinds[k].what, "empty")) {
            ck_assert_int_eq(ct_test_write_file(path, "", 0), 0);
        } else if (!strcmp(kinds[k].what, "notvideo")) {
            ck_assert_int_eq(ct_test_write_file(path, "not a video at all\n", 19), 0);
        } else if (!strcmp(kinds[k].what, "short")) {
            snprintf(path, sizeof path, "bad/%s/view1.mkv", seq);
            video_at(path, 10, 1, level_k);
        }
        expect_error(root, "", seq, kinds[k].needle);
        expect_error(root, "", "skip_bad", NULL);
        ct_dataset d;
        open_ok(root, "skip_bad = true;", &d);
        ck_assert_int_eq(d.info.count, 2);
        ck_assert_int_eq(*(const int64_t *)d.ops->extension(d.self, "multiview.skipped"), 1);
        ck_assert_msg(strstr(logged, seq), "the warning does not name %s: %s", seq, logged);
        dt_dataset_free(&d);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/bad/%s'", dir, seq);
        ck_assert_int_eq(system(cmd), 0);
    }
    /* a camera count other than the setting's */
    expect_error(root, "views = 3;", "good1", "2 cameras, not the 3");
    expect_error(root, "views = 1;", "views = 1", NULL);
    snprintf(path, sizeof path, "%s/none", dir);
    expect_error(path, "", "none", "cannot open folder");
    mkdirs("emptyroot", NULL);
    snprintf(path, sizeof path, "%s/emptyroot", dir);
    expect_error(path, "", "no sequences", NULL);
}
END_TEST

START_TEST(make_dataset_command) {
    static char out[1 << 14];
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset multiview-fmnist %s/cli/set --sequences 3 --test-sequences 1 "
             "--views 2 --frames 6 --size 48 --pool 10", ct_test_build_dir(), dir);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "made multiview-fmnist, 3 train + 1 test sequences of 6 frames x 2 cameras"), "%s", out);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 0 && strstr(out, "reusing"), "%s", out);
    char path[900];
    snprintf(path, sizeof path, "%s/cli/set/train/seq000002/view1.avi", dir);
    struct stat sb;
    ck_assert_msg(stat(path, &sb) == 0 && sb.st_size > 0, "no %s", path);
    snprintf(path, sizeof path, "%s/cli/set/cameras.csv", dir);
    ck_assert_msg(stat(path, &sb) == 0, "no %s", path);
    /* other parameters: refused, naming the folder */
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset multiview-fmnist %s/cli/set --sequences 4 --views 2 --frames 6 "
             "--size 48 --pool 10", ct_test_build_dir(), dir);
    ck_assert(ct_test_run(cmd, out, sizeof out) != 0 && strstr(out, "not a multiview-fmnist set with these parameters"));
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset multiview-fmnist %s/cli/x --views 1", ct_test_build_dir(), dir);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) != 0 && strstr(out, "--views 1"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset multiview-fmnist %s/cli/x --speed 2", ct_test_build_dir(), dir);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 2 && strstr(out, "unknown option '--speed'"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset multiview-fmnist", ct_test_build_dir());
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 2 && strstr(out, "no output folder"), "%s", out);
}
END_TEST

/* Paths never revisit a position: the projection on p1 - p0 grows. */
START_TEST(paths_never_revisit) {
    ct_mvf_params p;
    ct_mvf_defaults(&p);
    int64_t pool[20];
    for (int i = 0; i < 20; i++) pool[i] = i;
    for (int64_t q = 0; q < 200; q++) {
        ct_mvf_scene s;
        ct_mvf_scene_of(&p, 0, q, pool, &s);
        double px = 0, py = 0, prev = -1e9;
        for (int t = 0; t < p.frames; t++) {
            double x, y;
            ct_mvf_position(&p, &s, t, &x, &y);
            ck_assert(x >= -1e-9 && y >= -1e-9 && x <= p.size - 28 + 1e-9 && y <= p.size - 28 + 1e-9);
            double along = (x - s.x0) * (s.x1 - s.x0) + (y - s.y0) * (s.y1 - s.y0);
            ck_assert_msg(along > prev + 1e-6, "sequence %lld goes back at frame %d", (long long)q, t);
            for (int u = 0; u < t; u++) {
                double ux, uy;
                ct_mvf_position(&p, &s, u, &ux, &uy);
                ck_assert_msg(hypot(ux - x, uy - y) > 0.5, "sequence %lld: frames %d and %d at one place", (long long)q, u, t);
            }
            prev = along;
            px = x, py = y;
        }
        (void)px, (void)py;
    }
}
END_TEST

#endif

int main(void) {
    Suite *s = suite_create("multiview");
    TCase *tc = tcase_create("multiview");
#ifdef CONTRAST_HAVE_FFMPEG
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, layout_and_items);
    tcase_add_test(tc, frames_are_the_rendered_ones);
    tcase_add_test(tc, timestamps_and_trimming);
    tcase_add_test(tc, bad_sequences);
    tcase_add_test(tc, make_dataset_command);
    tcase_add_test(tc, paths_never_revisit);
#endif
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

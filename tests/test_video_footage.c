/* Real camera footage through the video source: the clip of Debian's
 * golang-github-gabriel-vasile-mimetype-dev in eight containers/codecs, and
 * OpenCV's vtest.avi, fetched by scripts/fetch-test-data (ctest runs it
 * first as the fixture fetch_test_data). Without the footage (no archive
 * reachable) every test here skips with a message.
 *
 * Frame counts were measured with a plain libavcodec loop (every packet of
 * the stream sent, every frame received, then the decoder drained) and are
 * recorded below; the test repeats that loop and the source's own full
 * decode (verify) must agree. Seeks must give the pixels that decoding
 * from the start gives. */
#include <sys/stat.h>
#include <unistd.h>

#include "ct_data_test.h"
#include "ct_test.h"

#ifdef CONTRAST_HAVE_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>

typedef struct footage {
    const char *file, *codec;
    int width, height;
    int64_t frames;
} footage;

/* In name order, as the flat folder lists them. */
static const footage clips[] = {
    {"3gp.3gp", "h263", 352, 288, 83},     {"asf.asf", "wmv2", 560, 320, 161},
    {"flv.flv", "flv1", 320, 240, 139},    {"mov.mov", "h264", 560, 320, 166},
    {"mp4.mp4", "h264", 560, 320, 166},    {"ogg.ogv", "theora", 560, 320, 166},
    {"rmvb.rmvb", "rv10", 560, 320, 166},  {"webm.webm", "vp8", 560, 320, 166},
};
#define N_CLIPS (sizeof clips / sizeof clips[0])

static char data_dir[1024];
static ct_registry *reg;
static char idx_dir[512];

/* Where scripts/fetch-test-data put the footage; false when it is not there. */
static bool have_footage(void) {
    const char *env = getenv("CT_TEST_DATA"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && env[0]) snprintf(data_dir, sizeof data_dir, "%s", env);
    else if (xdg && xdg[0]) snprintf(data_dir, sizeof data_dir, "%s/contrast/test-data", xdg);
    else snprintf(data_dir, sizeof data_dir, "%s/.cache/contrast/test-data", home ? home : ".");
    char stamp[1100];
    snprintf(stamp, sizeof stamp, "%s/.complete-1", data_dir);
    struct stat sb;
    return stat(stamp, &sb) == 0;
}

static void setup(void) {
    reg = ct_registry_new();
    dt_load_plugin(reg, "video");
    const char *t = ct_test_tmpdir();
    ck_assert_ptr_nonnull(t);
    snprintf(idx_dir, sizeof idx_dir, "%s", t);
}

static void teardown(void) { ct_registry_free(reg); }

/* The plain decode loop: frames the stream yields. */
static int64_t count_frames(const char *path) {
    AVFormatContext *f = NULL;
    ck_assert_msg(avformat_open_input(&f, path, NULL, NULL) == 0, "%s", path);
    ck_assert_int_ge(avformat_find_stream_info(f, NULL), 0);
    const AVCodec *c = NULL;
    int s = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, &c, 0);
    ck_assert_int_ge(s, 0);
    AVCodecContext *d = avcodec_alloc_context3(c);
    ck_assert_int_ge(avcodec_parameters_to_context(d, f->streams[s]->codecpar), 0);
    d->thread_count = 1;
    ck_assert_int_eq(avcodec_open2(d, c, NULL), 0);
    AVPacket *p = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int64_t n = 0;
    while (av_read_frame(f, p) >= 0) {
        if (p->stream_index == s) {
            ck_assert_msg(avcodec_send_packet(d, p) >= 0, "%s: a packet does not decode", path);
            while (avcodec_receive_frame(d, fr) == 0) n++;
        }
        av_packet_unref(p);
    }
    avcodec_send_packet(d, NULL);
    while (avcodec_receive_frame(d, fr) == 0) n++;
    av_frame_free(&fr);
    av_packet_free(&p);
    avcodec_free_context(&d);
    avformat_close_input(&f);
    return n;
}

START_TEST(mimetype_clips_decode_completely) {
    if (!have_footage()) {
        fprintf(stderr, "test_video_footage: skipped: no footage in %s (scripts/fetch-test-data could not reach the Debian archive)\n", data_dir);
        return;
    }
    av_log_set_level(AV_LOG_QUIET);
    char root[1100], cfg[2400];
    snprintf(root, sizeof root, "%s/mimetype", data_dir);
    for (size_t k = 0; k < N_CLIPS; k++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/%s", root, clips[k].file);
        ck_assert_msg(count_frames(path) == clips[k].frames, "%s: %lld frames decode, recorded %lld", clips[k].file,
                      (long long)count_frames(path), (long long)clips[k].frames);
    }
    snprintf(cfg, sizeof cfg, "root = \"%s\"; channels = 3; size = [80, 140]; index_dir = \"%s\";", root, idx_dir);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(dt_dataset(reg, "video", cfg, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, (int64_t)N_CLIPS);
    const int64_t *frames = d.ops->extension(d.self, "video.frames");
    ct_image img = CT_IMAGE_INIT;
    for (size_t k = 0; k < N_CLIPS; k++) {
        ck_assert_msg(frames[k] == clips[k].frames, "%s: the source counted %lld frames, recorded %lld", clips[k].file,
                      (long long)frames[k], (long long)clips[k].frames);
        /* the centre clip and the last frame decode */
        int32_t label;
        ck_assert_msg(d.ops->get(d.self, (int64_t)k, &img, &label, &err) == CT_OK, "%s", err.msg);
        ck_assert_int_eq(img.t, 8);
        double last = d.ops->duration(d.self, (int64_t)k) - 1e-3;
        ck_assert_msg(d.ops->get_frames(d.self, (int64_t)k, last, 0.0, 1, &img, &err) == CT_OK, "%s", err.msg);
    }
    ck_assert_msg(strstr(d.info.summary, "h264") && strstr(d.info.summary, "8 videos"), "%s", d.info.summary);
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

/* Frames at `n` times: `in_order` from one dataset that never seeks
 * (decodes forward from the start), the others in shuffled order from one
 * that always seeks; all pixels equal. */
static void compare_seeks(const char *root_cfg, int64_t item, const double *times, int n) {
    char a_cfg[2400], b_cfg[2400];
    snprintf(a_cfg, sizeof a_cfg, "%s forward_seconds = 3600.0; index_dir = \"%s\";", root_cfg, idx_dir);
    snprintf(b_cfg, sizeof b_cfg, "%s forward_seconds = 0.0; index_dir = \"%s\";", root_cfg, idx_dir);
    ct_dataset a, b;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(dt_dataset(reg, "video", a_cfg, &a, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(dt_dataset(reg, "video", b_cfg, &b, &err) == CT_OK, "%s", err.msg);
    ct_image *ref = calloc((size_t)n, sizeof *ref);
    for (int i = 0; i < n; i++) /* times ascending: one forward decode */
        ck_assert_msg(a.ops->get_frames(a.self, item, times[i], 0.0, 1, &ref[i], &err) == CT_OK, "%s", err.msg);
    int order[64];
    for (int i = 0; i < n; i++) order[i] = i;
    ct_rng r;
    ct_rng_init(&r, 11, 0);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(ct_rng_u32(&r) % (uint32_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    ct_image one = CT_IMAGE_INIT;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        ck_assert_msg(b.ops->get_frames(b.self, item, times[i], 0.0, 1, &one, &err) == CT_OK, "%s", err.msg);
        ck_assert_msg(memcmp(one.data, ref[i].data, ct_image_numel(&one) * sizeof(float)) == 0,
                      "item %lld: the frame at t = %.4f s after a seek differs from the one decoded from the start",
                      (long long)item, times[i]);
    }
    for (int i = 0; i < n; i++) ct_image_free(&ref[i]);
    free(ref);
    ct_image_free(&one);
    dt_dataset_free(&a);
    dt_dataset_free(&b);
}

/* 20 random times, ascending, inside [0, duration). */
static void random_times(double duration, uint64_t seed, double *t, int n) {
    ct_rng r;
    ct_rng_init(&r, seed, 3);
    for (int i = 0; i < n; i++) t[i] = ct_rng_uniform(&r) * duration;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
}

START_TEST(vtest_seeks_are_frame_exact) {
    if (!have_footage()) {
        fprintf(stderr, "test_video_footage: skipped: no footage in %s (scripts/fetch-test-data could not reach the Debian archive)\n", data_dir);
        return;
    }
    char dir[1100], cfg[1400];
    snprintf(dir, sizeof dir, "%s/vtest", idx_dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    char link[1200], target[1200];
    snprintf(link, sizeof link, "%s/vtest.avi", dir);
    snprintf(target, sizeof target, "%s/vtest.avi", data_dir);
    ck_assert_int_eq(symlink(target, link), 0);
    snprintf(cfg, sizeof cfg, "root = \"%s\"; channels = 3; size = [288, 384];", dir);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    char full[2400];
    snprintf(full, sizeof full, "%s index_dir = \"%s\";", cfg, idx_dir);
    ck_assert_msg(dt_dataset(reg, "video", full, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(((const int64_t *)d.ops->extension(d.self, "video.frames"))[0], 795);
    ck_assert_double_eq_tol(d.info.fps, 10.0, 1e-9);
    ck_assert_double_eq_tol(d.ops->duration(d.self, 0), 79.5, 1e-6);
    dt_dataset_free(&d);
    double t[20];
    random_times(79.5, 1, t, 20);
    compare_seeks(cfg, 0, t, 20);
}
END_TEST

/* The same comparison on the eight codecs of the mimetype clip. */
START_TEST(mimetype_seeks_are_frame_exact) {
    if (!have_footage()) {
        fprintf(stderr, "test_video_footage: skipped: no footage in %s\n", data_dir);
        return;
    }
    av_log_set_level(AV_LOG_QUIET);
    char cfg[1400];
    snprintf(cfg, sizeof cfg, "root = \"%s/mimetype\"; channels = 3; size = [80, 140];", data_dir);
    for (size_t k = 0; k < N_CLIPS; k++) {
        double t[12];
        random_times(clips[k].frames / 30.0 * 0.95, 100 + k, t, 12);
        compare_seeks(cfg, (int64_t)k, t, 12);
    }
}
END_TEST

#endif

static Suite *suite(void) {
    Suite *s = suite_create("video_footage");
    TCase *tc = tcase_create("footage");
    tcase_set_timeout(tc, 300);
#ifdef CONTRAST_HAVE_FFMPEG
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mimetype_clips_decode_completely);
    tcase_add_test(tc, vtest_seeks_are_frame_exact);
    tcase_add_test(tc, mimetype_seeks_are_frame_exact);
#else
    fprintf(stderr, "test_video_footage: skipped: built without FFmpeg\n");
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

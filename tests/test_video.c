/* The video source and the moving Fashion-MNIST maker: small sets made on
 * the fly (make-dataset's own code), read back through the plugin; frame
 * accuracy against the rendered frames (lossless FFV1) and between seeks
 * and sequential decoding (MPEG-4 Part 2); threads; the duration index and
 * its invalidation; split lists; and every kind of bad file. */
#include <math.h>
#include <pthread.h>
#include <zlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ct_data_test.h"
#include "ct_test.h"
#include "data/moving_fmnist.h"
#include "training/clip_features.h"
#include "training/evaluate.h"

#ifdef CONTRAST_HAVE_FFMPEG

static ct_registry *reg;
static char dir[256];

static void setup(void) {
    reg = ct_registry_new();
    dt_load_plugin(reg, "video");
    const char *t = ct_test_tmpdir();
    ck_assert_ptr_nonnull(t);
    snprintf(dir, sizeof dir, "%s", t);
}

static void teardown(void) { ct_registry_free(reg); }

/* A small set in dir/<name>: n train videos of a pool of 10 items, `frames`
 * frames of 32x32, distractors with probability `distractor`. */
static void make_set_d(const char *name, const char *codec, int64_t n, int frames, double distractor,
                       ct_mfm_params *p) {
    ct_mfm_defaults(p);
    p->videos = n;
    p->test_videos = 0;
    p->frames = frames;
    p->size = 32;
    p->pool = 10;
    p->distractor = distractor;
    snprintf(p->codec, sizeof p->codec, "%s", codec);
    char out[700];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    ct_error err = CT_ERROR_INIT;
    bool reused = true;
    ck_assert_msg(ct_mfm_make(out, p, false, &reused, &err) == CT_OK, "make: %s", err.msg);
    ck_assert(!reused);
}

static void make_set(const char *name, const char *codec, int64_t n, int frames, ct_mfm_params *p) {
    make_set_d(name, codec, n, frames, 0.5, p);
}

static ct_status open_video(const char *extra, ct_dataset *d, ct_error *err) {
    char cfg[3000];
    snprintf(cfg, sizeof cfg, "index_dir = \"%s/index\"; %s", dir, extra);
    return dt_dataset(reg, "video", cfg, d, err);
}

static void open_ok(const char *extra, ct_dataset *d) {
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_video(extra, d, &err) == CT_OK, "open: %s", err.msg);
}

static void expect_error(const char *extra, const char *needle1, const char *needle2) {
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_video(extra, &d, &err) != CT_OK, "no error for: %s", extra);
    ck_assert_msg(strstr(err.msg, needle1) != NULL, "'%s' not in: %s", needle1, err.msg);
    if (needle2) ck_assert_msg(strstr(err.msg, needle2) != NULL, "'%s' not in: %s", needle2, err.msg);
}

static void frames_of(ct_dataset *d, int64_t item, double t0, double step, int n, ct_image *img) {
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(d->ops->get_frames(d->self, item, t0, step, n, img, &err) == CT_OK, "get_frames: %s", err.msg);
}

START_TEST(class_folders_and_info) {
    ct_mfm_params p;
    make_set("m", "mpeg4", 20, 12, &p);
    char extra[800];
    snprintf(extra, sizeof extra, "root = \"%s/m/train\"; channels = 1; frames = 4; stride = 2;", dir);
    ct_dataset d;
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 20);
    ck_assert(d.info.is_video && d.info.has_labels);
    ck_assert_int_eq(d.info.num_classes, 10);
    ck_assert_int_eq(d.info.frames, 4);
    ck_assert_int_eq(d.info.height, 32);
    ck_assert_int_eq(d.info.width, 32);
    ck_assert_double_eq_tol(d.info.fps, 10.0, 1e-9);
    ck_assert_msg(strstr(d.info.summary, "20 videos") && strstr(d.info.summary, "mpeg4"), "%s", d.info.summary);
    const int64_t *frames = d.ops->extension(d.self, "video.frames");
    ck_assert_ptr_nonnull(frames);
    for (int64_t i = 0; i < 20; i++) ck_assert_int_eq(frames[i], 12);
    ck_assert_double_eq_tol(d.ops->duration(d.self, 0), 1.2, 1e-9);
    /* get(): the centre clip, frames 2, 4, 6, 8 of 12 ((12 - 7) / 2 = 2). */
    ct_image clip = CT_IMAGE_INIT, ref = CT_IMAGE_INIT;
    int32_t label = -5;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(d.ops->get(d.self, 3, &clip, &label, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(clip.t, 4);
    ck_assert_int_eq(clip.c, 1);
    ck_assert_int_eq(label, 1); /* folder order: videos 0, 10 (class 0), 1, 11 (class 1), ... */
    frames_of(&d, 3, 0.2, 0.2, 4, &ref);
    ck_assert_mem_eq(clip.data, ref.data, ct_image_numel(&ref) * sizeof(float));
    /* RGB output of a gray video: three equal planes. */
    dt_dataset_free(&d);
    snprintf(extra, sizeof extra, "root = \"%s/m/train\"; channels = 3; size = [16, 24];", dir);
    open_ok(extra, &d);
    frames_of(&d, 0, 0.5, 0.0, 2, &ref);
    ck_assert_int_eq(ref.c, 3);
    ck_assert_int_eq(ref.h, 16);
    ck_assert_int_eq(ref.w, 24);
    size_t hw = 16 * 24;
    for (size_t i = 0; i < hw; i++) ck_assert_float_eq_tol(ref.data[i], ref.data[hw + i], 2.0f / 255);
    ck_assert_mem_eq(ref.data, ref.data + 3 * hw, 3 * hw * sizeof(float)); /* step 0: the same frame twice */
    ct_image_free(&clip);
    ct_image_free(&ref);
    dt_dataset_free(&d);
}
END_TEST

/* The label of item 3 above depends on the pool's class-major layout; check it
 * here from the CSV too, so the two cannot drift apart silently. */
START_TEST(csv_and_lists) {
    ct_mfm_params p;
    make_set("m", "mpeg4", 40, 4, &p);
    char path[800], line[512];
    snprintf(path, sizeof path, "%s/m/train.csv", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "file,class,direction,item,distractor_item,distractor_direction,x0,y0\n");
    int rows = 0, dir_count[10][8] = {{0}};
    long long items[40];
    while (fgets(line, sizeof line, f)) {
        char file[256];
        int cls, direction;
        long long item;
        ck_assert_int_eq(sscanf(line, "%255[^,],%d,%d,%lld", file, &cls, &direction, &item), 4);
        ck_assert_int_ge(cls, 0);
        ck_assert_int_lt(cls, 10);
        ck_assert_int_ge(direction, 0);
        ck_assert_int_lt(direction, 8);
        dir_count[cls][direction]++;
        ck_assert_int_lt(rows, 40);
        items[rows] = item;
        char full[1100];
        snprintf(full, sizeof full, "%s/m/%s", dir, file);
        struct stat sb;
        ck_assert_msg(stat(full, &sb) == 0 && sb.st_size > 0, "%s", full);
        rows++;
    }
    fclose(f);
    ck_assert_int_eq(rows, 40);
    /* Pool 10 = one item per class; 40 videos = 4 per item, 4 different directions each. */
    for (int c = 0; c < 10; c++) {
        int distinct = 0;
        for (int k = 0; k < 8; k++) distinct += dir_count[c][k] > 0;
        ck_assert_int_eq(distinct, 4);
    }
    /* The direction lists open as a labelled video set of 8 classes. */
    char extra[1400];
    snprintf(extra, sizeof extra,
             "root = \"%s/m/train\"; class_index = \"%s/m/directionInd.txt\"; split_list = \"%s/m/trainlist_direction.txt\"; frames = 2;",
             dir, dir, dir);
    ct_dataset d;
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 40);
    ck_assert_int_eq(d.info.num_classes, 8);
    dt_dataset_free(&d);
    /* The item lists label each video by its pool slot: two videos share
     * an item label exactly when the CSV gives them the same image. */
    snprintf(extra, sizeof extra,
             "root = \"%s/m/train\"; class_index = \"%s/m/itemInd.txt\"; split_list = \"%s/m/trainlist_item.txt\"; frames = 2;",
             dir, dir, dir);
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 40);
    ck_assert_int_eq(d.info.num_classes, 10);
    int32_t item_label[40];
    ct_image img = CT_IMAGE_INIT;
    for (int v = 0; v < 40; v++) {
        ct_error e = CT_ERROR_INIT;
        ck_assert_msg(d.ops->get(d.self, v, &img, &item_label[v], &e) == CT_OK, "%s", e.msg);
        ck_assert_int_eq(item_label[v], v % 10);
    }
    for (int a = 0; a < 40; a++)
        for (int b = 0; b < 40; b++) ck_assert_int_eq(item_label[a] == item_label[b], items[a] == items[b]);
    ct_image_free(&img);
    dt_dataset_free(&d);
    /* Reuse with the same parameters, refusal with others. */
    char out[700];
    snprintf(out, sizeof out, "%s/m", dir);
    bool reused = false;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_mfm_make(out, &p, false, &reused, &err), CT_OK);
    ck_assert(reused);
    p.seed = 7;
    ck_assert_int_eq(ct_mfm_make(out, &p, false, &reused, &err), CT_ERR_EXISTS);
    ck_assert_msg(strstr(err.msg, "not a moving-fmnist set with these parameters"), "%s", err.msg);
}
END_TEST

START_TEST(maker_validation) {
    ct_mfm_params p;
    ct_error err = CT_ERROR_INIT;
    ct_mfm_defaults(&p);
    ck_assert_int_eq(ct_mfm_validate(&p, &err), CT_OK);
    p.size = 31;
    ck_assert_int_ne(ct_mfm_validate(&p, &err), CT_OK);
    ck_assert_msg(strstr(err.msg, "--size"), "%s", err.msg);
    ct_mfm_defaults(&p);
    p.pool = 15;
    ck_assert_int_ne(ct_mfm_validate(&p, &err), CT_OK);
    ck_assert_msg(strstr(err.msg, "--pool"), "%s", err.msg);
    ct_mfm_defaults(&p);
    snprintf(p.codec, sizeof p.codec, "divx");
    ck_assert_int_ne(ct_mfm_validate(&p, &err), CT_OK);
    ck_assert_msg(strstr(err.msg, "--codec"), "%s", err.msg);
    ct_mfm_defaults(&p);
    snprintf(p.fmnist_dir, sizeof p.fmnist_dir, "%s/nowhere", dir);
    bool reused;
    char out[700];
    snprintf(out, sizeof out, "%s/x", dir);
    ck_assert_int_eq(ct_mfm_make(out, &p, false, &reused, &err), CT_ERR_IO);
    ck_assert_msg(strstr(err.msg, "nowhere/train-images-idx3-ubyte.gz"), "%s", err.msg);
    struct stat sb;
    ck_assert_int_ne(stat(out, &sb), 0); /* nothing left behind under the name */
}
END_TEST

/* Lossless FFV1: every decoded frame equals the rendered one (no
 * distractor, so the CSV row is the whole scene). With pool 10 and 10
 * videos, video v shows class v, which is also its place in folder order. */
START_TEST(frames_match_rendering) {
    ct_mfm_params p;
    make_set_d("f", "ffv1", 10, 9, 0.0, &p);
    char extra[800];
    snprintf(extra, sizeof extra, "root = \"%s/f/train\"; channels = 1;", dir);
    ct_dataset d;
    open_ok(extra, &d);
    char path[800], line[512];
    snprintf(path, sizeof path, "%s/f/train.csv", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    gzFile g = gzopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    ck_assert_ptr_nonnull(g);
    static uint8_t images[60000 * 784];
    uint8_t hdr[16];
    ck_assert_int_eq(gzread(g, hdr, 16), 16);
    ck_assert_int_eq(gzread(g, images, sizeof images), (int)sizeof images);
    gzclose(g);
    uint8_t canvas[32 * 32];
    ct_image img = CT_IMAGE_INIT;
    for (int v = 0; v < 10; v++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        char file[256];
        int cls, direction, ddir;
        long long item, ditem;
        double x0, y0;
        ck_assert_int_eq(sscanf(line, "%255[^,],%d,%d,%lld,%lld,%d,%lf,%lf", file, &cls, &direction, &item, &ditem,
                                &ddir, &x0, &y0),
                         8);
        ck_assert_int_eq(cls, v);
        ck_assert_int_eq(ditem, -1);
        ct_mfm_scene s;
        memset(&s, 0, sizeof s);
        s.item = item;
        s.direction = direction;
        s.x0 = x0;
        s.y0 = y0;
        s.distractor = -1;
        frames_of(&d, v, 0.0, 0.1, 9, &img);
        int mismatched = 0;
        for (int t = 0; t < 9; t++) {
            ct_mfm_render(&p, &s, images, t, canvas);
            const float *fr = ct_image_frame(&img, t);
            for (int i = 0; i < 32 * 32; i++) mismatched += fabsf(fr[i] * 255.0f - canvas[i]) > 1.01f;
        }
        /* lossless but for the studio-range round trip (0..255 -> 16..235 -> 0..255): one level */
        ck_assert_msg(mismatched == 0, "video %d: %d pixels differ by more than one level", v, mismatched);
    }
    fclose(f);
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

/* MPEG-4 Part 2 with a keyframe every 8 frames: frames reached by seeking
 * (in random order, so both forward decoding and backward seeks happen)
 * equal the frames of one sequential decode from the start. */
START_TEST(seek_equals_sequential) {
    ct_mfm_params p;
    make_set("s", "mpeg4", 3, 40, &p);
    char extra[800];
    snprintf(extra, sizeof extra, "root = \"%s/s/train\"; channels = 1; forward_seconds = 0.3;", dir);
    ct_dataset d;
    open_ok(extra, &d);
    ct_image all = CT_IMAGE_INIT, one = CT_IMAGE_INIT;
    frames_of(&d, 1, 0.0, 0.1, 40, &all);
    size_t fs = ct_image_frame_size(&all);
    ct_rng r;
    ct_rng_init(&r, 5, 0);
    for (int k = 0; k < 30; k++) {
        int target = (int)(ct_rng_u32(&r) % 40);
        /* a time inside the frame's display interval, not only its start */
        double t = target * 0.1 + 0.09 * ct_rng_uniform(&r);
        frames_of(&d, 1, t, 0.1, 1, &one);
        ck_assert_msg(memcmp(one.data, ct_image_frame(&all, target), fs * sizeof(float)) == 0, "frame %d at t=%g",
                      target, t);
    }
    /* Past the end the last frame repeats; a clip across the end too. */
    frames_of(&d, 1, 3.95, 0.1, 3, &one);
    for (int i = 0; i < 3; i++) ck_assert_mem_eq(ct_image_frame(&one, i), ct_image_frame(&all, 39), fs * sizeof(float));
    /* Consecutive frames differ (the item moves). */
    ck_assert(memcmp(ct_image_frame(&all, 0), ct_image_frame(&all, 1), fs * sizeof(float)) != 0);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(d.ops->get_frames(d.self, 1, 0.0, -0.1, 2, &one, &err), CT_ERR_INVALID);
    ck_assert_int_eq(d.ops->get_frames(d.self, 3, 0.0, 0.1, 2, &one, &err), CT_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "out of range"), "%s", err.msg);
    ct_image_free(&all);
    ct_image_free(&one);
    dt_dataset_free(&d);
}
END_TEST

typedef struct reader_arg {
    ct_dataset *d;
    int seed;
    int bad;
} reader_arg;

static ct_dataset *ref_d;
static ct_image ref_all[3];

static void *reader(void *p) {
    reader_arg *a = p;
    ct_rng r;
    ct_rng_init(&r, (uint64_t)a->seed, 1);
    ct_image one = CT_IMAGE_INIT;
    for (int k = 0; k < 60; k++) {
        int item = (int)(ct_rng_u32(&r) % 3), f = (int)(ct_rng_u32(&r) % 40);
        ct_error err = CT_ERROR_INIT;
        if (a->d->ops->get_frames(a->d->self, item, f * 0.1, 0.1, 1, &one, &err) != CT_OK ||
            memcmp(one.data, ct_image_frame(&ref_all[item], f), ct_image_frame_size(&one) * sizeof(float)) != 0)
            a->bad++;
    }
    ct_image_free(&one);
    return NULL;
}

/* Three threads reading the same files at random: each has its own decoders. */
START_TEST(threads_read_independently) {
    ct_mfm_params p;
    make_set("t", "mpeg4", 3, 40, &p);
    char extra[800];
    snprintf(extra, sizeof extra, "root = \"%s/t/train\"; channels = 1; open_files = 2;", dir);
    ct_dataset d;
    open_ok(extra, &d);
    ref_d = &d;
    for (int i = 0; i < 3; i++) {
        ref_all[i] = (ct_image)CT_IMAGE_INIT;
        frames_of(&d, i, 0.0, 0.1, 40, &ref_all[i]);
    }
    pthread_t th[3];
    reader_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (reader_arg){&d, i + 1, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].bad, 0);
    }
    for (int i = 0; i < 3; i++) ct_image_free(&ref_all[i]);
    dt_dataset_free(&d);
}
END_TEST

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert(a && b);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    ck_assert_int_eq(fclose(b), 0);
}

/* The index is written once, reused, and a changed file is probed again. */
START_TEST(index_cache_and_invalidation) {
    ct_mfm_params p;
    make_set("a", "mpeg4", 10, 12, &p);
    make_set("b", "mpeg4", 10, 6, &p);
    char extra[800];
    snprintf(extra, sizeof extra, "root = \"%s/a/train\"; frames = 2;", dir);
    ct_dataset d;
    open_ok(extra, &d);
    const int64_t *frames = d.ops->extension(d.self, "video.frames");
    ck_assert_int_eq(frames[0], 12);
    dt_dataset_free(&d);
    char idx[700], cmd[1500], out[4096];
    snprintf(idx, sizeof idx, "%s/index", dir);
    snprintf(cmd, sizeof cmd, "cat %s/*.tsv | grep -c '^ok'", idx);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 0);
    ck_assert_int_eq(atoi(out), 10);
    /* Replace item 0 by a 6-frame video: the entry no longer matches. */
    char from[800], to[800];
    snprintf(from, sizeof from, "%s/b/train/0_tshirt_top/v000000.avi", dir);
    snprintf(to, sizeof to, "%s/a/train/0_tshirt_top/v000000.avi", dir);
    copy_file(from, to);
    open_ok(extra, &d);
    frames = d.ops->extension(d.self, "video.frames");
    ck_assert_int_eq(frames[0], 6);
    ck_assert_int_eq(frames[1], 12);
    dt_dataset_free(&d);
    /* A damaged index is a warning: everything is probed again. */
    snprintf(cmd, sizeof cmd, "for f in %s/*.tsv; do echo garbage > $f; done", idx);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 0);
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 10);
    dt_dataset_free(&d);
    /* The cached entries say what the probe said (frames of item 0 again 6). */
    open_ok(extra, &d);
    frames = d.ops->extension(d.self, "video.frames");
    ck_assert_int_eq(frames[0], 6);
    dt_dataset_free(&d);
}
END_TEST

static void write_at(const char *rel, const void *data, size_t n) {
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    ck_assert_int_eq(ct_test_write_file(p, data, n), 0);
}

/* A 44-byte WAV header and 800 samples of silence: a file without video. */
static void write_wav(const char *rel) {
    unsigned char w[44 + 1600];
    memset(w, 0, sizeof w);
    memcpy(w, "RIFF", 4);
    uint32_t v = sizeof w - 8;
    memcpy(w + 4, &v, 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    v = 16;
    memcpy(w + 16, &v, 4);
    uint16_t s = 1;
    memcpy(w + 20, &s, 2); /* PCM */
    memcpy(w + 22, &s, 2); /* mono */
    v = 8000;
    memcpy(w + 24, &v, 4);
    v = 16000;
    memcpy(w + 28, &v, 4);
    s = 2;
    memcpy(w + 32, &s, 2);
    s = 16;
    memcpy(w + 34, &s, 2);
    memcpy(w + 36, "data", 4);
    v = 1600;
    memcpy(w + 40, &v, 4);
    write_at(rel, w, sizeof w);
}

START_TEST(bad_files_named_or_skipped) {
    ct_mfm_params p;
    make_set("g", "mpeg4", 10, 12, &p);
    char base[700], extra[1200];
    snprintf(base, sizeof base, "root = \"%s/g/train\"; frames = 4; stride = 2;", dir);
    /* empty */
    write_at("g/train/1_trouser/empty.avi", "", 0);
    snprintf(extra, sizeof extra, "%s", base);
    expect_error(extra, "empty.avi", "empty file");
    snprintf(extra, sizeof extra, "%s skip_bad = true;", base);
    ct_dataset d;
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 10);
    ck_assert_int_eq(*(const int64_t *)d.ops->extension(d.self, "video.skipped"), 1);
    ck_assert_msg(strstr(d.info.summary, "1 skipped"), "%s", d.info.summary);
    dt_dataset_free(&d);
    char rm[800];
    snprintf(rm, sizeof rm, "%s/g/train/1_trouser/empty.avi", dir);
    unlink(rm);
    /* not a video */
    write_at("g/train/2_pullover/notes.avi", "just some text, not a video\n", 28);
    expect_error(base, "notes.avi", "not a readable video file");
    snprintf(rm, sizeof rm, "%s/g/train/2_pullover/notes.avi", dir);
    unlink(rm);
    /* no video stream */
    write_wav("g/train/3_dress/sound.wav");
    expect_error(base, "sound.wav", "no video stream");
    snprintf(rm, sizeof rm, "%s/g/train/3_dress/sound.wav", dir);
    unlink(rm);
    /* truncated: half the file (fewer frames, still a clip) decodes or is named */
    char from[800], to[800];
    snprintf(from, sizeof from, "%s/g/train/0_tshirt_top/v000000.avi", dir);
    snprintf(to, sizeof to, "%s/g/train/0_tshirt_top/cut.avi", dir);
    copy_file(from, to);
    ck_assert_int_eq(truncate(to, 300), 0);
    expect_error(base, "cut.avi", NULL);
    unlink(to);
    /* shorter than one clip: 4 frames x stride 2 needs 7 of the 12 */
    snprintf(extra, sizeof extra, "root = \"%s/g/train\"; frames = 7; stride = 2;", dir);
    expect_error(extra, "shorter than one clip", "v000000.avi");
    /* all bad: an error even with skip_bad */
    snprintf(extra, sizeof extra, "root = \"%s/g/train\"; frames = 7; stride = 2; skip_bad = true;", dir);
    expect_error(extra, "no video files", "all were left out");
    /* settings */
    snprintf(extra, sizeof extra, "%s channels = 2;", base);
    expect_error(extra, "channels = 2", NULL);
    snprintf(extra, sizeof extra, "%s size = [1, 2, 3];", base);
    expect_error(extra, "size must be", NULL);
    snprintf(extra, sizeof extra, "%s class_index = \"x\";", base);
    expect_error(extra, "go together", NULL);
    snprintf(extra, sizeof extra, "root = \"%s/nothing\";", dir);
    expect_error(extra, "nothing", "cannot open folder");
    snprintf(extra, sizeof extra, "%s max_pixels = 100;", base);
    expect_error(extra, "max_pixels", "v0000");
}
END_TEST

START_TEST(split_lists) {
    ct_mfm_params p;
    make_set("u", "mpeg4", 10, 6, &p);
    write_at("u/classInd.txt", "1 0_tshirt_top\n2 1_trouser\n", 27);
    /* labels from the line, or from the folder when the line has none; CRLF tolerated */
    const char *list = "0_tshirt_top/v000000.avi 1\r\n1_trouser/v000001.avi\r\n";
    write_at("u/list.txt", list, strlen(list));
    char extra[1400];
    snprintf(extra, sizeof extra,
             "root = \"%s/u/train\"; class_index = \"%s/u/classInd.txt\"; split_list = \"%s/u/list.txt\"; frames = 2;",
             dir, dir, dir);
    ct_dataset d;
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 2);
    ck_assert_int_eq(d.info.num_classes, 2);
    ct_image img = CT_IMAGE_INIT;
    int32_t label = -1;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(d.ops->get(d.self, 1, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 1);
    ct_image_free(&img);
    dt_dataset_free(&d);
    const char *bad_label = "0_tshirt_top/v000000.avi 3\n";
    write_at("u/list.txt", bad_label, strlen(bad_label));
    expect_error(extra, "list.txt:1", "not a class number 1..2");
    const char *wrong_folder = "0_tshirt_top/v000000.avi 2\n";
    write_at("u/list.txt", wrong_folder, strlen(wrong_folder));
    expect_error(extra, "list.txt:1", "lies in folder 0_tshirt_top");
    const char *missing = "1_trouser/nope.avi\n";
    write_at("u/list.txt", missing, strlen(missing));
    expect_error(extra, "nope.avi", "cannot open");
    const char *escape = "../u/train/1_trouser/v000001.avi 2\n";
    write_at("u/list.txt", escape, strlen(escape));
    expect_error(extra, "list.txt:1", "relative to root");
    write_at("u/classInd.txt", "2 a\n", 4);
    expect_error(extra, "classInd.txt:1", "expected \"1 <class name>\"");
}
END_TEST

/* HMDB51's own split files: per class "<video> 0|1|2" lines. */
START_TEST(hmdb_split_files) {
    ct_mfm_params p;
    make_set("h", "mpeg4", 20, 4, &p);
    char cmd[800], out[512];
    snprintf(cmd, sizeof cmd, "mkdir %s/h/splits", dir);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 0);
    const char *a = "v000000.avi 1 \nv000010.avi 2 \n";
    const char *b = "v000001.avi 0\nv000011.avi 1\n";
    write_at("h/splits/0_tshirt_top_test_split1.txt", a, strlen(a));
    write_at("h/splits/1_trouser_test_split1.txt", b, strlen(b));
    write_at("h/splits/1_trouser_test_split2.txt", "v000001.avi 2\n", 14);
    char extra[1400];
    snprintf(extra, sizeof extra, "root = \"%s/h/train\"; hmdb_splits = \"%s/h/splits\"; frames = 2;", dir, dir);
    ct_dataset d;
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 2); /* v000000 (class 0) and v000011 (class 1) */
    ck_assert_int_eq(d.info.num_classes, 2);
    ct_image img = CT_IMAGE_INIT;
    int32_t label = -1;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(d.ops->get(d.self, 1, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 1);
    dt_dataset_free(&d);
    snprintf(extra, sizeof extra, "root = \"%s/h/train\"; hmdb_splits = \"%s/h/splits\"; hmdb_part = \"test\"; frames = 2;",
             dir, dir);
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 1); /* v000010 */
    ck_assert_int_eq(d.ops->get(d.self, 0, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 0);
    dt_dataset_free(&d);
    snprintf(extra, sizeof extra, "root = \"%s/h/train\"; hmdb_splits = \"%s/h/splits\"; hmdb_fold = 2; hmdb_part = \"test\"; frames = 2;",
             dir, dir);
    open_ok(extra, &d);
    ck_assert_int_eq(d.info.count, 1);
    ck_assert_int_eq(d.info.num_classes, 1);
    dt_dataset_free(&d);
    ct_image_free(&img);
    write_at("h/splits/1_trouser_test_split1.txt", "v000001.avi yes\n", 16);
    snprintf(extra, sizeof extra, "root = \"%s/h/train\"; hmdb_splits = \"%s/h/splits\"; frames = 2;", dir, dir);
    expect_error(extra, "1_trouser_test_split1.txt:1", "0|1|2");
    snprintf(extra, sizeof extra, "root = \"%s/h/train\"; hmdb_splits = \"%s/h/splits\"; hmdb_fold = 3; frames = 2;", dir, dir);
    expect_error(extra, "no HMDB51 split files", "_test_split3.txt");
}
END_TEST

START_TEST(flat_folder_unlabelled) {
    ct_mfm_params p;
    make_set("l", "mpeg4", 2, 5, &p);
    char cmd[2000], out[512];
    snprintf(cmd, sizeof cmd, "mkdir %s/flat && cp %s/l/train/0_tshirt_top/*.avi %s/l/train/1_trouser/*.avi %s/flat/",
             dir, dir, dir, dir);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 0);
    char extra[800];
    snprintf(extra, sizeof extra, "root = \"%s/flat\"; frames = 1; index_dir = \"\";", dir);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(dt_dataset(reg, "video", extra, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 2);
    ck_assert(!d.info.has_labels);
    ct_image img = CT_IMAGE_INIT;
    int32_t label = 9;
    ck_assert_int_eq(d.ops->get(d.self, 0, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, -1);
    ck_assert_int_eq(img.t, 1);
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

/* The command: made (its missing parent folders too), then reused; usage
 * errors exit 2 naming the option. */
START_TEST(make_dataset_command) {
    char cmd[1600], out[4096];
    snprintf(cmd, sizeof cmd,
             "%s/contrast make-dataset moving-fmnist %s/new/data/cli --videos 10 --test-videos 2 --pool 10 --size 32 --frames 4 "
             "--codec ffv1 --seed 3",
             ct_test_build_dir(), dir);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "made moving-fmnist, 10 train + 2 test videos of 4 frames, 32x32, ffv1"), "%s", out);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 0 && strstr(out, "reusing"), "%s", out);
    char path[800];
    snprintf(path, sizeof path, "%s/new/data/cli/test/1_trouser/v000001.mkv", dir);
    struct stat sb;
    ck_assert_msg(stat(path, &sb) == 0, "%s", path);
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset moving-fmnist %s/x --frames many", ct_test_build_dir(), dir);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--frames 'many' is not an integer"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset moving-fmnist %s/x --colour red", ct_test_build_dir(), dir);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "unknown option '--colour'"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset cifar %s/x", ct_test_build_dir(), dir);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "unknown dataset cifar"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s/contrast make-dataset moving-fmnist %s/x --size 31 --pool 10 --videos 1", ct_test_build_dir(), dir);
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "--size 31"), "%s", out);
}
END_TEST

static void write_cfg(const char *path, const char *text) {
    ck_assert_int_eq(ct_test_write_file(path, text, strlen(text)), 0);
}

/* contrast preview of clips: one row of frames per clip (the original and
 * each view), checked on the PNG's size. */
START_TEST(preview_shows_clip_rows) {
    ct_mfm_params p;
    make_set("pv", "mpeg4", 4, 8, &p);
    char cfg_path[700], cfg[2000], cmd[2000], out[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/pv.cfg", dir);
    snprintf(cfg, sizeof cfg,
             "data = { v = { type = \"video\"; root = \"%s/pv/train\"; channels = 1; frames = 3; index_dir = \"\"; }; };\n"
             "encoder = { type = \"clip_resnet\"; stem = \"small\"; stem_width = 4; blocks = [1]; widths = [4]; };\n"
             "pipelines = ( { data = \"v\"; views = 2; transforms = ( { type = \"hflip\"; } ); } );\n"
             "architecture = { type = \"end_to_end\"; };\n",
             dir);
    write_cfg(cfg_path, cfg);
    snprintf(cmd, sizeof cmd, "%s/contrast preview %s --out %s/pv.png --n 2", ct_test_build_dir(), cfg_path, dir);
    ck_assert_msg(ct_test_run(cmd, out, sizeof out) == 0, "%s", out);
    char png[700];
    snprintf(png, sizeof png, "%s/pv.png", dir);
    FILE *f = fopen(png, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char h[24];
    ck_assert_uint_eq(fread(h, 1, 24, f), 24);
    fclose(f);
    unsigned w = (unsigned)h[16] << 24 | (unsigned)h[17] << 16 | (unsigned)h[18] << 8 | h[19];
    unsigned ht = (unsigned)h[20] << 24 | (unsigned)h[21] << 16 | (unsigned)h[22] << 8 | h[23];
    /* 32 px frames upscaled x3 to 96 px cells, 4 px gaps: 3 frames wide, 2 samples x 3 clips high */
    ck_assert_uint_eq(w, 4 + 3 * (96 + 4));
    ck_assert_uint_eq(ht, 4 + 6 * (96 + 4));
}
END_TEST

/* evaluation.clips = 3: each video's feature is the mean of the encoder's
 * features of its 3 spread clips (checked against forwarding each clip
 * alone); clips = 1 goes through the evaluation pipeline as (N,T,C,H,W)
 * and gives the centre clip's features. */
START_TEST(clip_features_average_clips) {
    ct_mfm_params p;
    make_set("e", "mpeg4", 6, 12, &p);
    char cfg_path[700], cfg[3000];
    snprintf(cfg_path, sizeof cfg_path, "%s/clips.cfg", dir);
    for (int clips = 3; clips >= 1; clips -= 2) {
        snprintf(cfg, sizeof cfg,
                 "name = \"clips\";\n"
                 "data = { v = { type = \"video\"; root = \"%s/e/train\"; channels = 1; frames = 4; stride = 2;"
                 " index_dir = \"%s/index\"; }; };\n"
                 "encoder = { type = \"clip_resnet\"; stem = \"small\"; stem_width = 4; blocks = [1, 1];"
                 " widths = [4, 8]; temporal_layers = 1; };\n"
                 "evaluation = { train = \"v\"; test = \"v\"; clips = %d; };\n",
                 dir, dir, clips);
        write_cfg(cfg_path, cfg);
        ct_experiment ex;
        ct_experiment_opts opts;
        memset(&opts, 0, sizeof opts);
        ct_error err = CT_ERROR_INIT;
        ck_assert_msg(ct_experiment_load(&ex, cfg_path, &opts, &err) == CT_OK, "%s", err.msg);
        ct_model m;
        memset(&m, 0, sizeof m);
        ck_assert_msg(ct_model_build(&m, &ex, 2, false, &err) == CT_OK, "%s", err.msg);
        float *feats = NULL;
        int32_t *labels = NULL;
        int64_t n = 0, d = 0;
        ck_assert_msg(ct_extract_features(&m, "test", &feats, &labels, &n, &d, &err) == CT_OK, "%s", err.msg);
        ck_assert_int_eq(n, 6);
        ck_assert_int_eq(d, 8);
        const ct_dataset *ds = ex.eval_test;
        const ct_video_clips *vc = ds->ops->extension(ds->self, CT_VIDEO_CLIPS_EXT);
        ck_assert_ptr_nonnull(vc);
        ct_graph_set_train(m.graph, false);
        ct_image img = CT_IMAGE_INIT;
        for (int64_t i = 0; i < n; i++) {
            double want[8] = {0};
            int32_t label = -1;
            for (int k = 0; k < clips; k++) {
                ck_assert_int_eq(vc->clip(ds->self, i, k, clips, &img, &label, &err), CT_OK);
                int64_t shape[5] = {1, img.t, img.c, img.h, img.w};
                ct_tensor *x = ct_tensor_wrap(m.graph, img.data, 5, shape);
                ct_tensor *f = m.encoder.ops->forward(m.encoder.self, m.graph, x);
                ck_assert_msg(f != NULL, "%s", ct_graph_error(m.graph));
                for (int j = 0; j < 8; j++) want[j] += f->data[j] / clips;
                ct_graph_reset(m.graph);
            }
            ck_assert_int_eq(labels[i], label);
            for (int j = 0; j < 8; j++)
                ck_assert_msg(fabs(feats[i * 8 + j] - want[j]) < 1e-4 * (1 + fabs(want[j])),
                              "clips %d, video %lld, feature %d: %g, the clips' mean is %g", clips, (long long)i, j,
                              feats[i * 8 + j], want[j]);
        }
        /* the clips differ, so the mean is not just one of them */
        if (clips == 3) {
            ct_image a = CT_IMAGE_INIT;
            ck_assert_int_eq(vc->clip(ds->self, 0, 0, 3, &a, NULL, &err), CT_OK);
            ck_assert_int_eq(vc->clip(ds->self, 0, 2, 3, &img, NULL, &err), CT_OK);
            ck_assert(memcmp(a.data, img.data, ct_image_numel(&a) * sizeof(float)) != 0);
            ck_assert_int_eq(vc->clip(ds->self, 0, 3, 3, &img, NULL, &err), CT_ERR_INVALID);
            ct_image_free(&a);
        }
        ct_image_free(&img);
        free(feats);
        free(labels);
        ct_model_free(&m);
        ct_experiment_free(&ex);
    }
    /* clips > 1 on a dataset without clips is refused at load, naming the key */
    snprintf(cfg, sizeof cfg,
             "data = { i = { type = \"idx\"; images = \"/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\";"
             " limit = 10; }; };\n"
             "encoder = { type = \"pixels\"; };\n"
             "evaluation = { train = \"i\"; test = \"i\"; clips = 2; };\n");
    write_cfg(cfg_path, cfg);
    ct_experiment ex;
    ct_experiment_opts opts;
        memset(&opts, 0, sizeof opts);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_experiment_load(&ex, cfg_path, &opts, &err), CT_ERR_CONFIG);
    ck_assert_msg(strstr(err.msg, "evaluation.clips = 2") && strstr(err.msg, "data.i"), "%s", err.msg);
    ct_experiment_free(&ex);
}
END_TEST

/* Features of split `split` under a config of the clip_features test
 * with the given temporal layers, clips and shuffle_test_frames. */
static float *control_features(const char *set, int temporal, int clips, bool shuffle, const char *split) {
    char cfg_path[700], cfg[3000];
    snprintf(cfg_path, sizeof cfg_path, "%s/control.cfg", dir);
    snprintf(cfg, sizeof cfg,
             "name = \"control\";\n"
             "data = { v = { type = \"video\"; root = \"%s/%s/train\"; channels = 1; frames = 4; stride = 2;"
             " index_dir = \"%s/index\"; }; };\n"
             "encoder = { type = \"clip_resnet\"; stem = \"small\"; stem_width = 4; blocks = [1, 1];"
             " widths = [4, 8]; temporal_layers = %d; };\n"
             "evaluation = { train = \"v\"; test = \"v\"; clips = %d; shuffle_test_frames = %s; };\n",
             dir, set, dir, temporal, clips, shuffle ? "true" : "false");
    write_cfg(cfg_path, cfg);
    ct_experiment ex;
    ct_experiment_opts opts;
    memset(&opts, 0, sizeof opts);
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_experiment_load(&ex, cfg_path, &opts, &err) == CT_OK, "%s", err.msg);
    ct_model m;
    memset(&m, 0, sizeof m);
    ck_assert_msg(ct_model_build(&m, &ex, 2, false, &err) == CT_OK, "%s", err.msg);
    float *feats = NULL;
    int32_t *labels = NULL;
    int64_t n = 0, d = 0;
    ck_assert_msg(ct_extract_features(&m, split, &feats, &labels, &n, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(n, 6);
    ck_assert_int_eq(d, 8);
    free(labels);
    ct_model_free(&m);
    ct_experiment_free(&ex);
    return feats;
}

static double max_abs_diff(const float *a, const float *b, int n) {
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    return worst;
}

/* evaluation.shuffle_test_frames: a keyed permutation of whole frames; the
 * test split's clips change for a temporal encoder and not for one that
 * only averages frames; the train split is never shuffled. */
START_TEST(shuffled_frames_control) {
    float clip[6 * 5], again[6 * 5];
    for (int i = 0; i < 30; i++) clip[i] = (float)(i / 5) + 0.01f * (float)(i % 5);
    memcpy(again, clip, sizeof clip);
    ct_clip_shuffle_frames(clip, 6, 5, 7, 3, 0);
    ct_clip_shuffle_frames(again, 6, 5, 7, 3, 0);
    ck_assert(memcmp(clip, again, sizeof clip) == 0); /* keyed: the same draw twice */
    int seen[6] = {0}, moved = 0;
    for (int f = 0; f < 6; f++) {
        int from = (int)clip[f * 5];
        ck_assert(from >= 0 && from < 6);
        for (int e = 0; e < 5; e++) ck_assert(clip[f * 5 + e] == (float)from + 0.01f * (float)e); /* whole frames */
        seen[from]++;
        moved += from != f;
    }
    for (int f = 0; f < 6; f++) ck_assert_int_eq(seen[f], 1); /* a permutation */
    ck_assert_int_gt(moved, 0);

    ct_mfm_params p;
    make_set("s", "mpeg4", 6, 12, &p);
    for (int clips = 1; clips <= 3; clips += 2) {
        float *plain = control_features("s", 1, clips, false, "test");
        float *shuffled = control_features("s", 1, clips, true, "test");
        float *train = control_features("s", 1, clips, true, "train");
        ck_assert_msg(max_abs_diff(plain, train, 48) == 0, "clips %d: the train split was shuffled", clips);
        ck_assert_msg(max_abs_diff(plain, shuffled, 48) > 1e-4, "clips %d: shuffling changed no feature", clips);
        free(plain);
        free(shuffled);
        free(train);
        /* without temporal layers the clip is a mean over frames: order-free */
        plain = control_features("s", 0, clips, false, "test");
        shuffled = control_features("s", 0, clips, true, "test");
        ck_assert_msg(max_abs_diff(plain, shuffled, 48) < 1e-5, "clips %d: a frame-mean encoder saw the order",
                      clips);
        free(plain);
        free(shuffled);
    }
}
END_TEST

#endif

static Suite *suite(void) {
    Suite *s = suite_create("video");
    TCase *tc = tcase_create("video");
    tcase_set_timeout(tc, 120);
#ifdef CONTRAST_HAVE_FFMPEG
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, class_folders_and_info);
    tcase_add_test(tc, csv_and_lists);
    tcase_add_test(tc, maker_validation);
    tcase_add_test(tc, frames_match_rendering);
    tcase_add_test(tc, seek_equals_sequential);
    tcase_add_test(tc, threads_read_independently);
    tcase_add_test(tc, index_cache_and_invalidation);
    tcase_add_test(tc, bad_files_named_or_skipped);
    tcase_add_test(tc, split_lists);
    tcase_add_test(tc, flat_folder_unlabelled);
    tcase_add_test(tc, hmdb_split_files);
    tcase_add_test(tc, clip_features_average_clips);
    tcase_add_test(tc, shuffled_frames_control);
    tcase_add_test(tc, make_dataset_command);
    tcase_add_test(tc, preview_shows_clip_rows);
#else
    fprintf(stderr, "test_video: skipped: built without FFmpeg\n");
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }

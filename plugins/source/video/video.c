/* Source plugin `video`: video files decoded with FFmpeg (libavformat,
 * libavcodec, libswscale), random access by time.
 *
 * Layouts: root/<class>/<file> (one sub-folder per class, classes in name
 * order), root/<file> (flat, unlabelled), UCF101-style split lists
 * (class_index = classInd.txt, split_list = trainlist01.txt or
 * testlist01.txt, paths relative to root), or HMDB51's own split files
 * (hmdb_splits = the folder of <class>_test_split<k>.txt, hmdb_fold = k,
 * hmdb_part = train | test).
 *
 * get_frames(item, t0, step, n) seeks to the keyframe before t0 and decodes
 * forward, frame-accurate by pts (decoder.c); get(item) returns the centre
 * clip of `frames` frames `stride` frames apart, so a pipeline without a
 * clip structure and the evaluators see a fixed clip of every video.
 * Frames are gray (channels = 1) or RGB (3) at `size`, values in [0,1].
 *
 * Every file is probed once at open (index.c): with `verify` (default) it
 * is decoded completely, so frame counts and durations are exact even
 * where the container lies; the results are cached in index_dir and
 * reused while a file's size and mtime are unchanged. A missing, empty,
 * truncated or undecodable file, one without a video stream, or one
 * shorter than one clip is an error naming the file, or with skip_bad the
 * item is left out, logged and counted. Each reading thread has its own
 * decoders (worker_cache.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#include "video_internal.h"

typedef struct video {
    vd_item *items;
    int64_t count;
    char **classes;
    int n_classes;
    int channels, rh, rw; /* output channels; fixed size or 0 */
    int frames, stride;   /* get()'s clip */
    int h, w;             /* common output size, 0 when items differ */
    double fps;           /* common frame rate, 0 when items differ */
    double total_s;
    int64_t skipped;
    char codecs[64];
    int64_t *frame_counts; /* per item, for the "video.frames" extension */
    vd_workers *workers;
} video;

static const ct_param_spec video_params[] = {
    CT_PARAM_STRING("root", NULL, "folder: one sub-folder per class, files directly (unlabelled), or the split lists' root"),
    CT_PARAM_STRING("class_index", "\"\"", "UCF101-style classInd.txt (\"1 ClassName\" lines); with split_list"),
    CT_PARAM_STRING("split_list", "\"\"", "UCF101-style list of paths relative to root (trainlist01.txt, testlist01.txt)"),
    CT_PARAM_STRING("hmdb_splits", "\"\"", "HMDB51's split folder (<class>_test_split<k>.txt files); videos at root/<class>/"),
    CT_PARAM_INT("hmdb_fold", "1", 1, 3, "HMDB51 split number k"),
    CT_PARAM_CHOICE("hmdb_part", "\"train\"", "train|test", "HMDB51 videos marked 1 (train) or 2 (test)"),
    CT_PARAM_INTS("size", "[]", 1, 16384, "output frame size: [] native, [s] square, [height, width]"),
    CT_PARAM_INT("channels", "3", 1, 3, "1: gray (luma), 3: RGB"),
    CT_PARAM_INT("frames", "8", 1, 4096, "frames of the clip get() returns (the centre clip of each video)"),
    CT_PARAM_INT("stride", "1", 1, 10000, "frames between the clip frames of get()"),
    CT_PARAM_BOOL("verify", "true", "decode every file once at indexing (exact frame counts and durations)"),
    CT_PARAM_BOOL("skip_bad", "false", "leave out unreadable or too short files (and report how many) instead of failing"),
    VD_DECODER_PARAMS("4"),
    CT_PARAM_END,
};

static void video_destroy(void *self) {
    video *v = self;
    if (!v) return;
    vd_workers_destroy(v->workers);
    for (int64_t i = 0; i < v->count; i++) free(v->items[i].path);
    free(v->items);
    for (int c = 0; c < v->n_classes; c++) free(v->classes[c]);
    free(v->classes);
    free(v->frame_counts);
    free(v);
}

/* 64-bit FNV-1a, for the index file's name. */
static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* index_dir/<hash of the absolute root and list>.tsv, or "" without cache. */
static void index_file(const ct_settings *s, char *out, size_t n) {
    const char *dir = ct_settings_string(s, "index_dir");
    out[0] = '\0';
    if (!dir[0]) return;
    char *abs = realpath(ct_settings_string(s, "root"), NULL);
    uint64_t h = fnv1a(14695981039346656037ull, abs ? abs : ct_settings_string(s, "root"));
    h = fnv1a(h, "\n");
    h = fnv1a(h, ct_settings_string(s, "split_list"));
    h = fnv1a(h, "\n");
    h = fnv1a(h, ct_settings_string(s, "hmdb_splits"));
    if (ct_settings_string(s, "hmdb_splits")[0]) { /* the parts of one folder list different files */
        char part[32];
        snprintf(part, sizeof part, "\n%lld %s", (long long)ct_settings_int(s, "hmdb_fold"), ct_settings_string(s, "hmdb_part"));
        h = fnv1a(h, part);
    }
    free(abs);
    snprintf(out, n, "%s/%016llx.tsv", dir, (unsigned long long)h);
}

static ct_status read_listing(const ct_settings *s, vd_listing *l, ct_error *err) {
    const char *root = ct_settings_string(s, "root");
    const char *ci = ct_settings_string(s, "class_index"), *sl = ct_settings_string(s, "split_list");
    const char *hs = ct_settings_string(s, "hmdb_splits");
    if (!ci[0] != !sl[0])
        return ct_error_set(err, CT_ERR_CONFIG, "%s: video: class_index and split_list go together (set both or neither)",
                            ct_settings_origin(s, ci[0] ? "class_index" : "split_list"));
    if (hs[0] && ci[0])
        return ct_error_set(err, CT_ERR_CONFIG, "%s: video: hmdb_splits and class_index/split_list are two layouts; set one",
                            ct_settings_origin(s, "hmdb_splits"));
    if (hs[0])
        return vd_list_hmdb(root, hs, (int)ct_settings_int(s, "hmdb_fold"),
                            strcmp(ct_settings_string(s, "hmdb_part"), "test") == 0, l, err);
    return ci[0] ? vd_list_split(root, ci, sl, l, err) : vd_list_folder(root, l, err);
}

/* Keep the good items (logging the bad ones) or fail on the first bad one. */
static ct_status keep_good(video *v, vd_listing *l, char **bad, const vd_index_opts *io, bool skip_bad,
                           const ct_host *host, ct_error *err) {
    int64_t min_frames = io->min_frames;
    int64_t kept = 0;
    ct_status st = CT_OK;
    char why[VD_MSG_MAX];
    for (int64_t i = 0; i < l->count; i++) {
        vd_item *it = &l->items[i];
        const char *reason = bad[i];
        if (!reason && it->meta.frames < min_frames) {
            snprintf(why, sizeof why, "shorter than one clip (%lld frames, a clip of frames x stride needs %lld)",
                     (long long)it->meta.frames, (long long)min_frames);
            reason = why;
        }
        /* the limits again: an index entry may come from a cache made under others */
        if (!reason && (int64_t)it->meta.width * it->meta.height > io->limits.max_pixels) {
            snprintf(why, sizeof why, "frame size %dx%d is above max_pixels = %lld", it->meta.width,
                     it->meta.height, (long long)io->limits.max_pixels);
            reason = why;
        }
        if (!reason && it->meta.frames > io->max_frames) {
            snprintf(why, sizeof why, "%lld frames, more than max_frames = %lld", (long long)it->meta.frames,
                     (long long)io->max_frames);
            reason = why;
        }
        if (reason && st == CT_OK && !skip_bad)
            st = ct_error_set(err, CT_ERR_FORMAT, "video: %s: %s (set skip_bad = true to leave such files out)",
                              it->path, reason);
        if (reason) {
            if (skip_bad) ct_log(host, CT_LOG_WARN, "video: skipping %s: %s", it->path, reason);
            v->skipped++;
            free(it->path);
            it->path = NULL;
        } else {
            l->items[kept++] = *it;
        }
    }
    l->count = kept;
    return st;
}

/* Common size, rate, total length and codec names for info(). */
static void summarise(video *v) {
    v->h = v->count ? (v->rh ? v->rh : v->items[0].meta.height) : 0;
    v->w = v->count ? (v->rw ? v->rw : v->items[0].meta.width) : 0;
    v->fps = v->count ? v->items[0].meta.fps : 0.0;
    v->codecs[0] = '\0';
    for (int64_t i = 0; i < v->count; i++) {
        const vd_meta *m = &v->items[i].meta;
        if (!v->rh && (m->height != v->h || m->width != v->w)) v->h = v->w = 0;
        if (fabs(m->fps - v->fps) > 1e-6) v->fps = 0.0;
        v->total_s += m->duration;
        char key[VD_CODEC_MAX + 2];
        snprintf(key, sizeof key, "%s/", m->codec);
        char list[sizeof v->codecs + 2];
        snprintf(list, sizeof list, "%s/", v->codecs);
        if (!strstr(list, key) && strlen(v->codecs) + strlen(m->codec) + 2 < sizeof v->codecs)
            snprintf(v->codecs + strlen(v->codecs), sizeof v->codecs - strlen(v->codecs), "%s%s",
                     v->codecs[0] ? "/" : "", m->codec);
    }
}

static ct_status settings_check(const ct_settings *s, video *v, ct_error *err) {
    size_t ns = ct_settings_len(s, "size");
    if (ns > 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: video: size must be [], [s] or [height, width]",
                            ct_settings_origin(s, "size"));
    if (ns > 0) {
        v->rh = (int)ct_settings_int_at(s, "size", 0);
        v->rw = ns == 2 ? (int)ct_settings_int_at(s, "size", 1) : v->rh;
    }
    v->channels = (int)ct_settings_int(s, "channels");
    if (v->channels == 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: video: channels = 2; use 1 (gray) or 3 (RGB)",
                            ct_settings_origin(s, "channels"));
    v->frames = (int)ct_settings_int(s, "frames");
    v->stride = (int)ct_settings_int(s, "stride");
    return CT_OK;
}

static ct_status video_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    /* Errors are reported by this plugin with the file's name; FFmpeg's own
     * log lines only with CONTRAST_DEBUG. */
    av_log_set_level(getenv("CONTRAST_DEBUG") ? AV_LOG_WARNING : AV_LOG_QUIET);
    video *v = calloc(1, sizeof *v);
    if (!v) return ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
    vd_listing l;
    memset(&l, 0, sizeof l);
    char **bad = NULL;
    char cache[4200];
    vd_index_opts io = {ct_settings_bool(s, "verify"), 1, ct_settings_int(s, "max_frames"), cache,
                        {ct_settings_int(s, "max_pixels"), ct_settings_int(s, "max_decode_frames"),
                         ct_settings_float(s, "forward_seconds")},
                        "video"};
    ct_status st = settings_check(s, v, err);
    if (st == CT_OK) st = read_listing(s, &l, err);
    int64_t n_listed = l.count;
    if (st == CT_OK && l.count && !(bad = calloc((size_t)l.count, sizeof *bad)))
        st = ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
    int64_t reused = 0;
    index_file(s, cache, sizeof cache);
    io.min_frames = (int64_t)(v->frames - 1) * v->stride + 1;
    if (st == CT_OK) st = vd_index_build(l.items, l.count, &io, host, bad, &reused, err);
    if (st == CT_OK) st = keep_good(v, &l, bad, &io, ct_settings_bool(s, "skip_bad"), host, err);
    for (int64_t i = 0; bad && i < n_listed; i++) free(bad[i]);
    free(bad);
    v->items = l.items;
    v->count = l.count;
    v->classes = l.classes;
    v->n_classes = l.n_classes;
    l.items = NULL;
    l.classes = NULL;
    if (st == CT_OK && v->count == 0)
        st = ct_error_set(err, CT_ERR_NOT_FOUND, "video: %s: no video files%s", ct_settings_string(s, "root"),
                          v->skipped ? " (all were left out as bad)" : "");
    if (st == CT_OK && !(v->frame_counts = malloc((size_t)v->count * sizeof *v->frame_counts)))
        st = ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
    for (int64_t i = 0; st == CT_OK && i < v->count; i++) v->frame_counts[i] = v->items[i].meta.frames;
    if (st == CT_OK && vd_workers_new((int)ct_settings_int(s, "open_files"), &io.limits, &v->workers) != CT_OK)
        st = ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
    if (st != CT_OK) {
        video_destroy(v);
        return st;
    }
    summarise(v);
    if (v->skipped)
        ct_log(host, CT_LOG_WARN, "video: %s: left out %lld bad file(s)", ct_settings_string(s, "root"),
               (long long)v->skipped);
    *self = v;
    return CT_OK;
}

static void video_info(void *self, ct_source_info *info) {
    const video *v = self;
    memset(info, 0, sizeof *info);
    info->count = v->count;
    info->channels = v->channels;
    info->height = v->h;
    info->width = v->w;
    info->frames = v->frames;
    info->num_classes = v->n_classes;
    info->has_labels = v->n_classes > 0;
    info->is_video = true;
    info->fps = v->fps;
    char size[32] = "varying size";
    if (v->h) snprintf(size, sizeof size, "%dx%d", v->w, v->h);
    snprintf(info->summary, sizeof info->summary, "%lld videos, %.1f min, %s, %s, %d classes, %lld skipped",
             (long long)v->count, v->total_s / 60.0, size, v->codecs, v->n_classes, (long long)v->skipped);
}

static ct_status check_index(const video *v, int64_t index, ct_error *err) {
    if (index >= 0 && index < v->count) return CT_OK;
    return ct_error_set(err, CT_ERR_INVALID, "video: item %lld out of range (0..%lld)", (long long)index,
                        (long long)v->count - 1);
}

static ct_status video_get_frames(void *self, int64_t index, double t0, double step, int nframes, ct_image *dst,
                                  ct_error *err) {
    video *v = self;
    ct_status st = check_index(v, index, err);
    if (st != CT_OK) return st;
    const vd_item *it = &v->items[index];
    vd_output o = {v->channels, v->rh ? v->rh : it->meta.height, v->rw ? v->rw : it->meta.width};
    char msg[VD_MSG_MAX];
    vd_decoder *d;
    st = vd_workers_get(v->workers, it->path, &d, msg);
    if (st == CT_OK) st = vd_decoder_frames(d, &it->meta, t0, step, nframes, &o, dst, msg);
    if (st == CT_OK) return CT_OK;
    vd_workers_drop(v->workers, it->path); /* a decoder in an unknown state */
    return ct_error_set(err, st, "video: %s: %s", it->path, msg);
}

/* Clip k of n evenly spread clips: frames `stride` apart, starting on a
 * frame time (ct_video_clips in contrast/video.h). */
static ct_status video_clip(void *self, int64_t index, int k, int n, ct_image *dst, int32_t *label, ct_error *err) {
    video *v = self;
    ct_status st = check_index(v, index, err);
    if (st != CT_OK) return st;
    if (n < 1 || k < 0 || k >= n)
        return ct_error_set(err, CT_ERR_INVALID, "video: clip %d of %d does not exist", k, n);
    const vd_meta *m = &v->items[index].meta;
    int64_t need = (int64_t)(v->frames - 1) * v->stride + 1, spare = m->frames - need;
    int64_t first = spare > 0 ? (int64_t)((double)spare * (k + 0.5) / n) : 0;
    st = video_get_frames(self, index, first / m->fps, v->stride / m->fps, v->frames, dst, err);
    if (st == CT_OK && label) *label = v->items[index].label;
    return st;
}

/* The centre clip (clip 0 of 1). */
static ct_status video_get(void *self, int64_t index, ct_image *dst, int32_t *label, ct_error *err) {
    return video_clip(self, index, 0, 1, dst, label, err);
}

static double video_duration(void *self, int64_t index) {
    const video *v = self;
    return index >= 0 && index < v->count ? v->items[index].meta.duration : 0.0;
}

/* Extensions: "video.skipped" (const int64_t *: files left out as bad);
 * "video.frames" (const int64_t *: each item's frame count as indexed,
 * count entries); CT_VIDEO_CLIPS_EXT (const ct_video_clips *). Stable for
 * the instance's life. */
static const void *video_extension(void *self, const char *id) {
    static const ct_video_clips clips = {sizeof clips, video_clip};
    video *v = self;
    if (strcmp(id, CT_VIDEO_CLIPS_EXT) == 0) return &clips;
    if (strcmp(id, "video.skipped") == 0) return &v->skipped;
    if (strcmp(id, "video.frames") == 0) return v->frame_counts;
    return NULL;
}

static const ct_source_ops video_ops = {
    0, "video", "video files (FFmpeg): class sub-folders, a flat folder or UCF101-style split lists", video_params,
    video_create, video_destroy, video_info, video_get, video_get_frames, video_duration, video_extension,
};

static ct_status video_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_source(reg, &video_ops);
    return st == CT_OK ? CT_OK : ct_error_set(err, st, "video: cannot register the source");
}

CT_PLUGIN_DEFINE("video", "1.0.0", "MIT", "video files decoded with FFmpeg (libavformat/libavcodec/libswscale)",
                 CT_ROLE_SOURCE, video_init)

/* Source plugin `multiview`: synchronised multi-camera sequences, decoded
 * with the `video` source's core (video_core.h: the FFmpeg decoder, the
 * per-thread decoder LRUs and the cached duration index).
 *
 * Layout: root/<sequence>/view<k>.<ext>, one video per camera k = 0..V-1
 * (seq0001/view0.mp4, seq0001/view1.mp4, ...); other files in a sequence
 * folder are ignored. Every sequence has the same V >= 2 cameras (`views`,
 * or the first sequence's count).
 *
 * Frames are matched by timestamp, not by index: camera v's first frame is
 * at its stream's start time s_v (start pts x time base) and it covers
 * [s_v, s_v + d_v). A sequence's frames are the instants S + k / fps,
 * k = 0..L-1, over the span every camera covers, S = max s_v to
 * E = min (s_v + d_v), at the lowest of the cameras' frame rates, so
 * L = floor((E - S) * fps); frame k of camera v is the picture it shows at
 * that instant (the decoder's "last frame whose pts is <= t"). Cameras
 * that cover different spans are trimmed to the common one, with a warning
 * naming the sequence.
 *
 * Items (`items`): "sequences" (for training: item = sequence; a structure
 * such as tcn reads its cameras through the CT_MULTIVIEW_EXT interface;
 * get() is camera 0's centre frame, get_frames camera 0's frames) or
 * "frames" (for evaluation: item = one frame of one camera, ordered
 * sequence, camera, time; get() is that frame). Labels are -1: sequences
 * have no classes.
 *
 * Bad input as for `video`: a missing, empty, truncated or undecodable
 * file, one without a video stream, a sequence with a missing or extra
 * camera, or cameras sharing fewer than `min_frames` frames make an error
 * naming the file or sequence, or with skip_bad the sequence is left out,
 * logged and counted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#include "video_core.h"

#define MV_MAX_VIEWS 64

typedef struct mv_seq {
    char *dir;      /* root/<sequence> */
    int64_t first;  /* items[first + v] is camera v */
    int64_t length; /* common frames */
    double fps;     /* the sequence's frame rate */
    double start;   /* S, absolute seconds */
    int64_t base;   /* items = "frames": index of its first item */
} mv_seq;

typedef struct multiview {
    vd_item *items; /* every listed camera file, sequence-major */
    int64_t n_items;
    mv_seq *seqs;   /* the good sequences */
    int64_t n_seqs;
    int views;
    bool frame_items;
    int64_t count;
    int channels, rh, rw, h, w;
    int64_t min_frames, skipped;
    double total_s, fps;
    char codecs[64];
    int64_t *frame_counts; /* per item: "video.frames" */
    vd_workers *workers;
    ct_multiview ext;
} multiview;

static const ct_param_spec multiview_params[] = {
    CT_PARAM_STRING("root", NULL, "folder of sequences: root/<sequence>/view0.mp4, view1.mp4, ... (one video per camera)"),
    CT_PARAM_INT("views", "0", 0, MV_MAX_VIEWS, "cameras per sequence (0: as many as the first sequence has, at least 2)"),
    CT_PARAM_CHOICE("items", "\"sequences\"", "sequences|frames",
                    "what one item is: a sequence (training with tcn) or one frame of one camera (evaluation)"),
    CT_PARAM_INTS("size", "[]", 1, 16384, "output frame size: [] native, [s] square, [height, width]"),
    CT_PARAM_INT("channels", "3", 1, 3, "1: gray (luma), 3: RGB"),
    CT_PARAM_INT("limit", "0", 0, 2147483647, "use only the first N good sequences (0 = all)"),
    CT_PARAM_INT("min_frames", "2", 1, 1e9, "a sequence whose cameras share fewer frames is bad"),
    CT_PARAM_BOOL("verify", "true", "decode every file once at indexing (exact frame counts and durations)"),
    CT_PARAM_BOOL("skip_bad", "false", "leave out sequences with an unreadable, missing or too short camera (and report how many) instead of failing"),
    VD_DECODER_PARAMS("8"),
    CT_PARAM_END,
};

static void multiview_destroy(void *self) {
    multiview *m = self;
    if (!m) return;
    vd_workers_destroy(m->workers);
    for (int64_t i = 0; i < m->n_items; i++) free(m->items[i].path);
    free(m->items);
    for (int64_t s = 0; s < m->n_seqs; s++) free(m->seqs[s].dir);
    free(m->seqs);
    free(m->frame_counts);
    free(m);
}

/* ---- listing ---------------------------------------------------------------- */

/* Camera number of "view<k>.<ext>", or -1 for another name. */
static int view_number(const char *name) {
    if (strncmp(name, "view", 4) != 0) return -1;
    const char *p = name + 4;
    int k = 0, digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++) k = k * 10 + (*p - '0');
    return digits && *p == '.' && p[1] ? k : -1;
}

/* The camera files of one sequence folder into paths[0..*n-1] (by camera
 * number), or a reason why the folder is no sequence. */
static ct_status list_cameras(const char *dir, int want, char **paths, int *n, char *why, ct_error *err) {
    char **names = NULL;
    int nn = 0;
    why[0] = '\0';
    ct_status st = vd_list_names("multiview", dir, false, &names, &nn, err);
    int found = 0;
    for (int i = 0; st == CT_OK && i < nn; i++) {
        int k = view_number(names[i]);
        if (k < 0) continue;
        if (k >= MV_MAX_VIEWS) snprintf(why, VD_MSG_MAX, "%s: camera numbers go up to %d", names[i], MV_MAX_VIEWS - 1);
        else if (paths[k]) snprintf(why, VD_MSG_MAX, "two files for camera %d (%s and another)", k, names[i]);
        else if (!(paths[k] = vd_join(dir, names[i]))) st = ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
        else found = k + 1 > found ? k + 1 : found;
        if (why[0]) break;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    if (st != CT_OK || why[0]) return st;
    for (int k = 0; k < found; k++)
        if (!paths[k]) {
            snprintf(why, VD_MSG_MAX, "view%d (camera %d) is missing", k, k);
            return CT_OK;
        }
    if (found < 2) snprintf(why, VD_MSG_MAX, "%s camera file (view0.<ext>, view1.<ext>, ...): a sequence needs two or more",
                            found ? "only one" : "no");
    else if (want && found != want)
        snprintf(why, VD_MSG_MAX, "%d cameras, not the %d of the other sequences (or the views setting)", found, want);
    *n = found;
    return CT_OK;
}

/* A bad sequence: an error (naming it), or with skip_bad a warning. */
static ct_status bad_sequence(multiview *m, bool skip_bad, const ct_host *host, const char *dir, const char *why,
                              ct_error *err) {
    m->skipped++;
    if (!skip_bad)
        return ct_error_set(err, CT_ERR_FORMAT, "multiview: %s: %s (set skip_bad = true to leave such sequences out)",
                            dir, why);
    ct_log(host, CT_LOG_WARN, "multiview: skipping %s: %s", dir, why);
    return CT_OK;
}

static ct_status add_item(multiview *m, int64_t *cap, char *path, ct_error *err) {
    if (m->n_items == *cap) {
        int64_t nc = *cap ? *cap * 2 : 64;
        vd_item *v = realloc(m->items, (size_t)nc * sizeof *v);
        if (!v) {
            free(path);
            return ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
        }
        m->items = v;
        *cap = nc;
    }
    memset(&m->items[m->n_items], 0, sizeof m->items[0]);
    m->items[m->n_items].path = path;
    m->items[m->n_items++].label = -1;
    return CT_OK;
}

/* Every sequence folder with its camera files (seqs[].first into items). */
static ct_status list_sequences(multiview *m, const char *root, bool skip_bad, const ct_host *host, ct_error *err) {
    char **dirs = NULL;
    int nd = 0;
    int64_t cap = 0;
    ct_status st = vd_list_names("multiview", root, true, &dirs, &nd, err);
    if (st == CT_OK && nd && !(m->seqs = calloc((size_t)nd, sizeof *m->seqs)))
        st = ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
    for (int i = 0; st == CT_OK && i < nd; i++) {
        char *dir = vd_join(root, dirs[i]), why[VD_MSG_MAX];
        char *paths[MV_MAX_VIEWS] = {0};
        int n = 0;
        st = dir ? list_cameras(dir, m->views, paths, &n, why, err) : ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
        if (st == CT_OK && why[0]) st = bad_sequence(m, skip_bad, host, dir, why, err);
        if (st == CT_OK && !why[0]) {
            if (!m->views) m->views = n;
            mv_seq *s = &m->seqs[m->n_seqs++];
            s->dir = dir;
            s->first = m->n_items;
            dir = NULL;
            for (int k = 0; k < n && st == CT_OK; k++) {
                st = add_item(m, &cap, paths[k], err);
                paths[k] = NULL;
            }
        }
        for (int k = 0; k < MV_MAX_VIEWS; k++) free(paths[k]);
        free(dir);
    }
    for (int i = 0; i < nd; i++) free(dirs[i]);
    free(dirs);
    return st;
}

/* ---- spans ------------------------------------------------------------------ */

static double stream_start(const vd_meta *mt) {
    return mt->tb_den ? (double)mt->start_pts * mt->tb_num / mt->tb_den : 0.0;
}

/* The common span of a sequence's cameras; a reason in why when it is
 * unusable, a warning when the cameras had to be trimmed. */
static void sequence_span(multiview *m, mv_seq *s, const ct_host *host, char *why) {
    const vd_item *cam = &m->items[s->first];
    double start = -INFINITY, end = INFINITY, fps = INFINITY;
    for (int v = 0; v < m->views; v++) {
        const vd_meta *mt = &cam[v].meta;
        double s0 = stream_start(mt);
        if (s0 > start) start = s0;
        if (s0 + mt->duration < end) end = s0 + mt->duration;
        if (mt->fps < fps) fps = mt->fps;
    }
    why[0] = '\0';
    s->start = start;
    s->fps = fps;
    s->length = fps > 0 && end > start ? (int64_t)floor((end - start) * fps + 1e-6) : 0;
    if (s->length < m->min_frames) {
        snprintf(why, VD_MSG_MAX, "its cameras share %lld frame(s) (min_frames = %lld)", (long long)s->length,
                 (long long)m->min_frames);
        return;
    }
    char list[VD_MSG_MAX] = "";
    bool trimmed = false;
    for (int v = 0; v < m->views; v++) {
        const vd_meta *mt = &cam[v].meta;
        double s0 = stream_start(mt);
        /* a camera sticking out by half a frame or more at either end */
        if (start - s0 > 0.5 / fps || s0 + mt->duration - end > 0.5 / fps) trimmed = true;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%sview%d %lld frames at %.3g fps from %.3f s", v ? ", " : "", v,
                 (long long)mt->frames, mt->fps, s0);
    }
    if (trimmed)
        ct_log(host, CT_LOG_WARN, "multiview: %s: the cameras cover different spans (%s): trimmed to the %lld frames "
               "(%.3f s) all of them show", s->dir, list, (long long)s->length, s->length / fps);
}

/* Keep the sequences whose files index well and whose span is long enough. */
static ct_status keep_good(multiview *m, char **bad, const vd_limits *lim, int64_t max_frames, bool skip_bad,
                           const ct_host *host, ct_error *err) {
    int64_t kept = 0, i = 0;
    ct_status st = CT_OK;
    for (; i < m->n_seqs; i++) {
        mv_seq *s = &m->seqs[i];
        char why[VD_MSG_MAX] = "";
        for (int v = 0; v < m->views && !why[0]; v++) {
            const vd_item *it = &m->items[s->first + v];
            const char *name = strrchr(it->path, '/') ? strrchr(it->path, '/') + 1 : it->path;
            if (bad[s->first + v]) snprintf(why, sizeof why, "%s: %s", name, bad[s->first + v]);
            else if ((int64_t)it->meta.width * it->meta.height > lim->max_pixels)
                snprintf(why, sizeof why, "%s: frame size %dx%d is above max_pixels = %lld", name, it->meta.width,
                         it->meta.height, (long long)lim->max_pixels);
            else if (it->meta.frames > max_frames)
                snprintf(why, sizeof why, "%s: %lld frames, more than max_frames = %lld", name,
                         (long long)it->meta.frames, (long long)max_frames);
        }
        if (!why[0]) sequence_span(m, s, host, why);
        if (why[0]) {
            st = bad_sequence(m, skip_bad, host, s->dir, why, err);
            free(s->dir);
            s->dir = NULL;
            if (st != CT_OK) break;
        } else {
            m->seqs[kept++] = *s;
        }
    }
    /* After an error at sequence `i`, those after it are still owned here
     * (slots kept..i hold freed or moved entries). */
    for (int64_t j = i + 1; st != CT_OK && j < m->n_seqs; j++) m->seqs[kept++] = m->seqs[j];
    m->n_seqs = kept;
    return st;
}

/* ---- creation ------------------------------------------------------------------ */

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* index_dir/<hash of "multiview" and the absolute root>.tsv, or "". */
static void index_file(const ct_settings *s, char *out, size_t n) {
    const char *dir = ct_settings_string(s, "index_dir");
    out[0] = '\0';
    if (!dir[0]) return;
    char *abs = realpath(ct_settings_string(s, "root"), NULL);
    uint64_t h = fnv1a(fnv1a(14695981039346656037ull, "multiview\n"), abs ? abs : ct_settings_string(s, "root"));
    free(abs);
    snprintf(out, n, "%s/%016llx.tsv", dir, (unsigned long long)h);
}

static ct_status settings_check(const ct_settings *s, multiview *m, ct_error *err) {
    size_t ns = ct_settings_len(s, "size");
    if (ns > 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: multiview: size must be [], [s] or [height, width]",
                            ct_settings_origin(s, "size"));
    if (ns > 0) {
        m->rh = (int)ct_settings_int_at(s, "size", 0);
        m->rw = ns == 2 ? (int)ct_settings_int_at(s, "size", 1) : m->rh;
    }
    m->channels = (int)ct_settings_int(s, "channels");
    if (m->channels == 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: multiview: channels = 2; use 1 (gray) or 3 (RGB)",
                            ct_settings_origin(s, "channels"));
    m->views = (int)ct_settings_int(s, "views");
    if (m->views == 1)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: multiview: views = 1; a sequence needs two or more cameras (0: "
                            "as many as the first sequence has)", ct_settings_origin(s, "views"));
    m->frame_items = strcmp(ct_settings_string(s, "items"), "frames") == 0;
    m->min_frames = ct_settings_int(s, "min_frames");
    return CT_OK;
}

/* Item numbering, sizes and the summary fields. */
static ct_status summarise(multiview *m, ct_error *err) {
    int64_t base = 0;
    m->h = m->rh ? m->rh : m->items[m->seqs[0].first].meta.height;
    m->w = m->rw ? m->rw : m->items[m->seqs[0].first].meta.width;
    m->fps = m->seqs[0].fps;
    for (int64_t i = 0; i < m->n_seqs; i++) {
        mv_seq *s = &m->seqs[i];
        s->base = base;
        base += m->frame_items ? s->length * m->views : 1;
        m->total_s += s->length / s->fps;
        if (fabs(s->fps - m->fps) > 1e-6) m->fps = 0.0;
        for (int v = 0; v < m->views; v++) {
            const vd_meta *mt = &m->items[s->first + v].meta;
            if (!m->rh && (mt->height != m->h || mt->width != m->w)) m->h = m->w = 0;
            size_t used = strlen(m->codecs);
            if (!strstr(m->codecs, mt->codec) && used + strlen(mt->codec) + 2 < sizeof m->codecs)
                snprintf(m->codecs + used, sizeof m->codecs - used, "%s%s", used ? "/" : "", mt->codec);
        }
    }
    m->count = base;
    if (!(m->frame_counts = malloc((size_t)m->count * sizeof *m->frame_counts)))
        return ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
    for (int64_t i = 0, j = 0; i < m->n_seqs; i++)
        for (int64_t k = 0; k < (m->frame_items ? m->seqs[i].length * m->views : 1); k++)
            m->frame_counts[j++] = m->frame_items ? 1 : m->seqs[i].length;
    return CT_OK;
}

static void fill_ext(multiview *m);

static ct_status multiview_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    av_log_set_level(getenv("CONTRAST_DEBUG") ? AV_LOG_WARNING : AV_LOG_QUIET);
    multiview *m = calloc(1, sizeof *m);
    if (!m) return ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
    bool skip_bad = ct_settings_bool(s, "skip_bad");
    char cache[4200];
    vd_index_opts io = {ct_settings_bool(s, "verify"), 1, ct_settings_int(s, "max_frames"), cache,
                        {ct_settings_int(s, "max_pixels"), ct_settings_int(s, "max_decode_frames"),
                         ct_settings_float(s, "forward_seconds")},
                        "multiview"};
    index_file(s, cache, sizeof cache);
    char **bad = NULL;
    int64_t reused = 0;
    ct_status st = settings_check(s, m, err);
    if (st == CT_OK) st = list_sequences(m, ct_settings_string(s, "root"), skip_bad, host, err);
    if (st == CT_OK && m->n_items && !(bad = calloc((size_t)m->n_items, sizeof *bad)))
        st = ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
    if (st == CT_OK) st = vd_index_build(m->items, m->n_items, &io, host, bad, &reused, err);
    if (st == CT_OK) st = keep_good(m, bad, &io.limits, io.max_frames, skip_bad, host, err);
    for (int64_t i = 0; bad && i < m->n_items; i++) free(bad[i]);
    free(bad);
    if (st == CT_OK && m->n_seqs == 0)
        st = ct_error_set(err, CT_ERR_NOT_FOUND, "multiview: %s: no sequences (sub-folders with view0.<ext>, view1.<ext>, ...)%s",
                          ct_settings_string(s, "root"), m->skipped ? " that are usable: all were left out as bad" : "");
    int64_t limit = ct_settings_int(s, "limit");
    for (int64_t q = limit; st == CT_OK && limit > 0 && q < m->n_seqs; q++) free(m->seqs[q].dir);
    if (st == CT_OK && limit > 0 && limit < m->n_seqs) m->n_seqs = limit;
    if (st == CT_OK) st = summarise(m, err);
    if (st == CT_OK && vd_workers_new((int)ct_settings_int(s, "open_files"), &io.limits, &m->workers) != CT_OK)
        st = ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory");
    if (st != CT_OK) {
        multiview_destroy(m);
        return st;
    }
    if (m->skipped)
        ct_log(host, CT_LOG_WARN, "multiview: %s: left out %lld bad sequence(s)", ct_settings_string(s, "root"),
               (long long)m->skipped);
    fill_ext(m);
    *self = m;
    return CT_OK;
}

static void multiview_info(void *self, ct_source_info *info) {
    const multiview *m = self;
    memset(info, 0, sizeof *info);
    info->count = m->count;
    info->channels = m->channels;
    info->height = m->h;
    info->width = m->w;
    info->frames = 1;
    info->is_video = !m->frame_items;
    info->fps = m->fps;
    char size[32] = "varying size";
    if (m->h) snprintf(size, sizeof size, "%dx%d", m->w, m->h);
    snprintf(info->summary, sizeof info->summary, "%lld sequences x %d cameras (%s), %.1f min each camera, %s, %s, %lld skipped",
             (long long)m->n_seqs, m->views, m->frame_items ? "items: frames" : "items: sequences", m->total_s / 60.0,
             size, m->codecs, (long long)m->skipped);
}

/* ---- reading ------------------------------------------------------------------ */

/* Sequence, camera and frame of an item (camera 0's centre frame for a
 * sequence item). */
static void locate(const multiview *m, int64_t item, int64_t *seq, int *view, int64_t *t) {
    int64_t lo = 0, hi = m->n_seqs - 1;
    while (lo < hi) { /* the last sequence whose base is <= item */
        int64_t mid = (lo + hi + 1) / 2;
        if (m->seqs[mid].base <= item) lo = mid;
        else hi = mid - 1;
    }
    const mv_seq *s = &m->seqs[lo];
    *seq = lo;
    if (m->frame_items) {
        *view = (int)((item - s->base) / s->length);
        *t = (item - s->base) % s->length;
    } else {
        *view = -1;
        *t = -1;
    }
}

static ct_status check_item(const multiview *m, int64_t index, ct_error *err) {
    if (index >= 0 && index < m->count) return CT_OK;
    return ct_error_set(err, CT_ERR_INVALID, "multiview: item %lld out of range (0..%lld)", (long long)index,
                        (long long)m->count - 1);
}

/* n frames of camera `view` at camera-relative times t0 + i * step into
 * frame slots first.. of dst (already shaped). */
static ct_status decode_at(multiview *m, const mv_seq *s, int view, double t0, double step, int n, ct_image *dst,
                           int first, ct_image *tmp, ct_error *err) {
    const vd_item *it = &m->items[s->first + view];
    vd_output o = {m->channels, m->rh ? m->rh : it->meta.height, m->rw ? m->rw : it->meta.width};
    char msg[VD_MSG_MAX];
    vd_decoder *d;
    /* seconds since the camera's own first frame */
    double rel = s->start - stream_start(&it->meta) + t0;
    ct_status st = vd_workers_get(m->workers, it->path, &d, msg);
    if (st == CT_OK) st = vd_decoder_frames(d, &it->meta, rel, step, n, &o, tmp, msg);
    if (st != CT_OK) {
        vd_workers_drop(m->workers, it->path);
        return ct_error_set(err, st, "multiview: %s: %s", it->path, msg);
    }
    memcpy(ct_image_frame(dst, first), tmp->data, ct_image_numel(tmp) * sizeof *tmp->data);
    return CT_OK;
}

static ct_status mv_frames(void *self, int64_t seq, int view, const int64_t *times, int n, ct_image *dst,
                           ct_error *err) {
    multiview *m = self;
    if (seq < 0 || seq >= m->n_seqs || view < 0 || view >= m->views || n < 1)
        return ct_error_set(err, CT_ERR_INVALID, "multiview: no camera %d of sequence %lld (%lld sequences x %d cameras)",
                            view, (long long)seq, (long long)m->n_seqs, m->views);
    const mv_seq *s = &m->seqs[seq];
    const vd_meta *mt = &m->items[s->first + view].meta;
    for (int i = 0; i < n; i++)
        if (times[i] < 0 || times[i] >= s->length)
            return ct_error_set(err, CT_ERR_INVALID, "multiview: %s: frame %lld is outside its %lld common frames",
                                s->dir, (long long)times[i], (long long)s->length);
    if (ct_image_reshape(dst, n, m->channels, m->rh ? m->rh : mt->height, m->rw ? m->rw : mt->width) != CT_OK)
        return ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory for %d frames", n);
    ct_image tmp = CT_IMAGE_INIT;
    ct_status st = CT_OK;
    for (int i = 0; i < n && st == CT_OK; i++)
        st = decode_at(m, s, view, (double)times[i] / s->fps, 0.0, 1, dst, i, &tmp, err);
    ct_image_free(&tmp);
    return st;
}

static ct_status multiview_get(void *self, int64_t index, ct_image *dst, int32_t *label, ct_error *err) {
    multiview *m = self;
    ct_status st = check_item(m, index, err);
    if (st != CT_OK) return st;
    int64_t seq, t;
    int view;
    locate(m, index, &seq, &view, &t);
    if (view < 0) {
        view = 0;
        t = m->seqs[seq].length / 2;
    }
    *label = -1;
    return mv_frames(self, seq, view, &t, 1, dst, err);
}

/* Frames at seconds t0 + i * step from the sequence's common start, of
 * camera 0 (sequence items) or the item's camera (frame items). */
static ct_status multiview_get_frames(void *self, int64_t index, double t0, double step, int nframes, ct_image *dst,
                                      ct_error *err) {
    multiview *m = self;
    ct_status st = check_item(m, index, err);
    if (st != CT_OK) return st;
    if (nframes < 1) return ct_error_set(err, CT_ERR_INVALID, "multiview: %d frames asked for", nframes);
    int64_t seq, t;
    int view;
    locate(m, index, &seq, &view, &t);
    const mv_seq *s = &m->seqs[seq];
    const vd_meta *mt = &m->items[s->first + (view < 0 ? 0 : view)].meta;
    if (ct_image_reshape(dst, nframes, m->channels, m->rh ? m->rh : mt->height, m->rw ? m->rw : mt->width) != CT_OK)
        return ct_error_set(err, CT_ERR_NOMEM, "multiview: out of memory for %d frames", nframes);
    ct_image tmp = CT_IMAGE_INIT;
    st = decode_at(m, s, view < 0 ? 0 : view, t0, step, nframes, dst, 0, &tmp, err);
    ct_image_free(&tmp);
    return st;
}

static double multiview_duration(void *self, int64_t index) {
    const multiview *m = self;
    if (index < 0 || index >= m->count) return 0.0;
    int64_t seq, t;
    int view;
    locate(m, index, &seq, &view, &t);
    return view < 0 ? m->seqs[seq].length / m->seqs[seq].fps : 1.0 / m->seqs[seq].fps;
}

static int64_t mv_length(void *self, int64_t seq) {
    const multiview *m = self;
    return seq >= 0 && seq < m->n_seqs ? m->seqs[seq].length : 0;
}

static void mv_locate(void *self, int64_t item, int64_t *seq, int *view, int64_t *t) {
    const multiview *m = self;
    if (item < 0 || item >= m->count) {
        *seq = -1, *view = -1, *t = -1;
        return;
    }
    locate(m, item, seq, view, t);
}

static void fill_ext(multiview *m) {
    m->ext.size = sizeof m->ext;
    m->ext.self = m;
    m->ext.views = m->views;
    m->ext.sequences = m->n_seqs;
    m->ext.length = mv_length;
    m->ext.frames = mv_frames;
    m->ext.locate = mv_locate;
}

/* Extensions: CT_MULTIVIEW_EXT (const ct_multiview *); "multiview.skipped"
 * (const int64_t *: sequences left out as bad); "video.frames" (const
 * int64_t *: per item, the frames get_frames can reach: a sequence's
 * length, or 1 for frame items). Stable for the instance's life. */
static const void *multiview_extension(void *self, const char *id) {
    multiview *m = self;
    if (strcmp(id, CT_MULTIVIEW_EXT) == 0) return &m->ext;
    if (strcmp(id, "multiview.skipped") == 0) return &m->skipped;
    if (strcmp(id, "video.frames") == 0) return m->frame_counts;
    return NULL;
}

static const ct_source_ops multiview_ops = {
    0, "multiview",
    "synchronised multi-camera sequences (FFmpeg): root/<sequence>/view0.mp4, view1.mp4, ..., frames matched by timestamp",
    multiview_params, multiview_create, multiview_destroy, multiview_info, multiview_get, multiview_get_frames,
    multiview_duration, multiview_extension,
};

static ct_status multiview_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_source(reg, &multiview_ops);
    return st == CT_OK ? CT_OK : ct_error_set(err, st, "multiview: cannot register the source");
}

CT_PLUGIN_DEFINE("multiview", "1.0.0", "MIT", "synchronised multi-camera video sequences (FFmpeg, the video source's core)",
                 CT_ROLE_SOURCE, multiview_init)

/* The video sources' shared core (static library ct_video_core, linked
 * into the `video` and `multiview` plugins; nothing here is exported from
 * either .so):
 *   folder.c        sorted folder listings
 *   decoder.c       one open file: seek by time, decode forward, convert frames
 *   worker_cache.c  per-thread LRUs of open decoders (never one shared context)
 *   index.c         the duration index: probing every file, the cache file
 * Names are prefixed vd_. */
#ifndef CONTRAST_VIDEO_CORE_H
#define CONTRAST_VIDEO_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <contrast/contrast.h>

#define VD_MSG_MAX 384
#define VD_CODEC_MAX 32

/* What the index knows about one file (probed once, then cached). */
typedef struct vd_meta {
    int64_t size;          /* file size in bytes, for cache invalidation */
    int64_t mtime_ns;      /* modification time */
    int64_t frames;        /* decoded frames (verified) or the container's count */
    double duration;       /* seconds from the first frame to the end of the last */
    double fps;            /* nominal frame rate */
    int64_t start_pts;     /* pts of the first decoded frame (stream time base) */
    int tb_num, tb_den;    /* the stream's time base */
    int width, height;     /* coded frame size */
    bool verified;         /* frames and duration come from a full decode */
    char codec[VD_CODEC_MAX];
} vd_meta;

/* One item: a file, its label and what the index says about it. */
typedef struct vd_item {
    char *path;
    int32_t label;
    vd_meta meta;
} vd_item;

/* ---- folder.c ------------------------------------------------------------- */

/* "a/b" (malloc'd; NULL when out of memory). */
char *vd_join(const char *a, const char *b);

/* Sorted non-hidden entry names of `dir` (malloc'd array of malloc'd
 * names) that are folders (want_dirs) or regular files. Errors start with
 * `who` (the source) and name the folder. */
ct_status vd_list_names(const char *who, const char *dir, bool want_dirs, char ***names, int *n, ct_error *err);

/* ---- decoder.c ------------------------------------------------------------ */

typedef struct vd_decoder vd_decoder;

/* Limits of one decoder, from the source's settings. */
typedef struct vd_limits {
    int64_t max_pixels;        /* refuse frames larger than this (w*h) */
    int64_t max_decode_frames; /* frames decoded per request before giving up */
    double forward_s;          /* without an index: decode forward when the target is this close ahead; 0: always seek */
} vd_limits;

/* Open `path` and its best video stream (one decoding thread). msg gets the
 * reason on failure (no stream, no decoder, unreadable, too large). */
ct_status vd_decoder_open(const char *path, const vd_limits *lim, vd_decoder **out, char *msg);
void vd_decoder_close(vd_decoder *d);
const char *vd_decoder_path(const vd_decoder *d);

/* Probe from the start: fills codec, size, time base, start pts, container
 * frame rate/duration/count; with `full`, decodes every frame and sets
 * frames, duration and verified from the decode (the fallback where the
 * container gives no duration is also a full decode). max_frames bounds
 * the count. Leaves the decoder past what it read (close it after). */
ct_status vd_decoder_probe(vd_decoder *d, bool full, int64_t max_frames, vd_meta *meta, char *msg);

/* Output format of vd_decoder_frames. */
typedef struct vd_output {
    int channels;      /* 1 (gray) or 3 (RGB) */
    int height, width; /* output size */
} vd_output;

/* n frames at times t0, t0+step, ... (seconds from the first frame;
 * step >= 0) into dst (n, C, H, W), values in [0,1]. The frame shown at
 * time t is the last frame whose pts is <= t. Seeks to the keyframe before
 * t0 unless the decoder is already just before it; past the end the last
 * frame is repeated. msg names the time on a decode error. */
ct_status vd_decoder_frames(vd_decoder *d, const vd_meta *meta, double t0, double step, int n,
                            const vd_output *o, ct_image *dst, char *msg);

/* ---- worker_cache.c ---------------------------------------------------------- */

/* Per-thread LRUs of open decoders: each thread that reads gets its own
 * (thread-specific data), so no decoder context is ever shared between
 * threads. All LRUs are freed by vd_workers_destroy (or at thread exit). */
typedef struct vd_workers vd_workers;

ct_status vd_workers_new(int files_per_thread, const vd_limits *lim, vd_workers **out);
void vd_workers_destroy(vd_workers *w);

/* The calling thread's decoder for `path` (opened on first use, the least
 * recently used one closed when the LRU is full). */
ct_status vd_workers_get(vd_workers *w, const char *path, vd_decoder **out, char *msg);

/* Forget the calling thread's decoder for `path` (after an error). */
void vd_workers_drop(vd_workers *w, const char *path);

/* Decoders open now over all threads (for tests). */
int vd_workers_open_count(vd_workers *w);

/* ---- index.c -------------------------------------------------------------- */

typedef struct vd_index_opts {
    bool verify;            /* decode every file to count its frames */
    int64_t min_frames;     /* a file with fewer frames is bad ("shorter than one clip") */
    int64_t max_frames;
    const char *cache_file; /* NULL or "": no cache */
    vd_limits limits;
    const char *who;        /* the source's name for log lines and errors (NULL: "video") */
} vd_index_opts;

/* Fill every item's meta, from the cache file where its size and mtime
 * still match, else by probing (cache rewritten when anything changed).
 * A bad file's reason goes to bad[i] (malloc'd, NULL for good files; the
 * caller frees). Returns an error only for I/O on the listing itself or
 * out-of-memory; *reused counts entries taken from the cache. */
ct_status vd_index_build(vd_item *items, int64_t n, const vd_index_opts *o, const ct_host *host, char **bad,
                         int64_t *reused, ct_error *err);

/* The decoder settings every source on this core declares, in this order
 * (index cache, open decoders, the bounds on hostile files); `open_files`
 * is the source's default for the per-thread LRU of open decoders. */
#define VD_DECODER_PARAMS(open_files)                                                                            \
    CT_PARAM_STRING("index_dir", "\"runs/.video-index\"", "folder of the cached duration index (\"\": no cache)"), \
    CT_PARAM_INT("open_files", open_files, 1, 256, "decoders kept open per reading thread (LRU)"),                 \
    CT_PARAM_INT("max_pixels", "33554432", 1, 1e12, "refuse videos whose frames have more pixels"),              \
    CT_PARAM_INT("max_frames", "10000000", 1, 1e12, "refuse videos with more frames"),                           \
    CT_PARAM_INT("max_decode_frames", "100000", 1, 1e12,                                                         \
                 "frames one request may decode before failing (keyframe distance bound)"),                      \
    CT_PARAM_FLOAT("forward_seconds", "2.0", 0.0, 3600.0,                                                        \
                   "without a keyframe index, decode forward instead of seeking when the target is this close "  \
                   "ahead (0: always seek)")

#endif

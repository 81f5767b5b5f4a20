/* contrast SDK — optional interfaces of video sources (ABI 1.2).
 *
 * A video source implements get_frames()/duration() of ct_source_ops and
 * may offer the interfaces below through its extension(id) callback (NULL
 * when absent, like every extension). The bundled `video` source offers
 * ct_video_clips; `multiview` offers ct_multiview. */
#ifndef CONTRAST_VIDEO_H
#define CONTRAST_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* extension(CT_VIDEO_CLIPS_EXT) -> const ct_video_clips *: several clips of
 * one video at fixed places, for evaluations that average a video's clips. */
#define CT_VIDEO_CLIPS_EXT "video.clips"

typedef struct ct_video_clips {
    size_t size; /* sizeof(ct_video_clips) as the source saw it */
    /* Clip k (0 <= k < n) of n clips spread evenly over item `index`: the
     * source's own clip (what get() returns: its length, frame stride, size
     * and channels), starting at frame floor((F - L) * (k + 0.5) / n) for a
     * video of F frames and a clip spanning L, so n = 1 is get()'s centre
     * clip. dst is reshaped to (T, C, H, W); *label = the item's class or -1
     * (label may be NULL). Thread-safe like get(). */
    ct_status (*clip)(void *self, int64_t index, int k, int n, ct_image *dst, int32_t *label, ct_error *err);
} ct_video_clips;

/* extension(CT_MULTIVIEW_EXT) -> const ct_multiview *: sources of
 * synchronised multi-camera sequences (the bundled `multiview` source), for
 * structures that pair cameras at one time (tcn) and evaluators that align
 * them (alignment). A sequence's frames are numbered 0..length-1 over the
 * span every camera covers (frames matched by timestamp); frame k of every
 * camera is the picture shown at the same instant. */
#define CT_MULTIVIEW_EXT "multiview"

typedef struct ct_multiview {
    size_t size;   /* sizeof(ct_multiview) as the source saw it */
    void *self;    /* the source instance: the first argument of the callbacks below */
    int views;     /* cameras of every sequence (>= 2) */
    int64_t sequences;
    /* Common frames of sequence seq (0 <= seq < sequences). */
    int64_t (*length)(void *self, int64_t seq);
    /* Frames times[0..n-1] (each 0 <= t < length) of camera `view` of
     * sequence seq into dst, reshaped to (n, C, H, W) at the source's size
     * and channels, values in [0,1]. Thread-safe like get(); cheapest with
     * times in increasing order. Errors name the file and the time. */
    ct_status (*frames)(void *self, int64_t seq, int view, const int64_t *times, int n, ct_image *dst,
                        ct_error *err);
    /* What item `item` of the source is: *seq always; *view and *t the
     * camera and frame when items are single frames, else -1 (items are
     * whole sequences). */
    void (*locate)(void *self, int64_t item, int64_t *seq, int *view, int64_t *t);
} ct_multiview;

#ifdef __cplusplus
}
#endif
#endif

/* contrast SDK — optional interfaces of video sources (ABI 1.2).
 *
 * A video source implements get_frames()/duration() of ct_source_ops and
 * may offer the interfaces below through its extension(id) callback (NULL
 * when absent, like every extension). The bundled `video` source offers
 * all of them. */
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

#ifdef __cplusplus
}
#endif
#endif

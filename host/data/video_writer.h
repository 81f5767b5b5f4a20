/* Writing gray videos with libavcodec/libavformat (make-dataset).
 *
 * Frames are 8-bit luma planes; they are encoded as YUV 4:2:0 with neutral
 * chroma. Codecs by name: "mpeg4" (MPEG-4 Part 2 in .avi, the default),
 * "h264" (libx264, .mp4), "vp9" (libvpx-vp9, .webm), "ffv1" (lossless,
 * .mkv), where Debian's libavcodec has them. A build without FFmpeg
 * (CONTRAST_HAVE_FFMPEG unset) keeps these functions and has them fail
 * with CT_ERR_UNSUPPORTED and a message saying so. */
#ifndef CONTRAST_HOST_VIDEO_WRITER_H
#define CONTRAST_HOST_VIDEO_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/contrast.h"

typedef struct ct_video_writer ct_video_writer;

/* File extension of a codec's container ("avi"), NULL for an unknown codec. */
const char *ct_video_codec_ext(const char *codec);

/* CT_OK when `codec` is known and its encoder is in this libavcodec, else
 * an error saying which codecs are. */
ct_status ct_video_codec_check(const char *codec, ct_error *err);

/* Create `path` for w x h (even) frames at `fps`; keyframes every `gop`
 * frames. */
ct_status ct_video_writer_open(const char *path, const char *codec, int w, int h, int fps, int gop,
                               ct_video_writer **out, ct_error *err);

/* Encode one frame of w*h luma bytes (row-major). */
ct_status ct_video_writer_frame(ct_video_writer *v, const uint8_t *luma, ct_error *err);

/* Flush, write the trailer and close; frees v (NULL is ignored). With
 * `abandon`, only frees (after an error) and removes nothing. */
ct_status ct_video_writer_close(ct_video_writer *v, bool abandon, ct_error *err);

#endif

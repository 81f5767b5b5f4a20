/* contrast SDK — images and clips as plain float buffers.
 *
 * A ct_image holds T frames of C x H x W floats (T = 1 for still images),
 * values in [0, 1] as produced by sources, until a normalising transform
 * maps them. It owns its buffer and grows it on demand, so a worker can
 * reuse one image for every sample without allocating in steady state. */
#ifndef CONTRAST_IMAGE_H
#define CONTRAST_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_image {
    float *data;     /* t*c*h*w floats, frame-major then channel-major (T,C,H,W) */
    int t, c, h, w;  /* frames, channels, height, width */
    size_t capacity; /* floats allocated */
} ct_image;

#define CT_IMAGE_INIT {NULL, 0, 0, 0, 0, 0}

/* Set the shape, growing the buffer when needed (contents undefined).
 * CT_ERR_NOMEM on failure, image unchanged. */
ct_status ct_image_reshape(ct_image *img, int t, int c, int h, int w);

/* Copy src into dst (reshaping dst). */
ct_status ct_image_copy(ct_image *dst, const ct_image *src);

/* Floats per frame (c*h*w) and in total. */
size_t ct_image_frame_size(const ct_image *img);
size_t ct_image_numel(const ct_image *img);

/* Pointer to frame f. */
float *ct_image_frame(const ct_image *img, int f);

/* Free the buffer and zero the struct. */
void ct_image_free(ct_image *img);

#ifdef __cplusplus
}
#endif
#endif

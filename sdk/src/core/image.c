/* Images and clips as plain, reusable float buffers. */
#include <stdlib.h>
#include <string.h>

#include "contrast/image.h"

ct_status ct_image_reshape(ct_image *img, int t, int c, int h, int w) {
    if (t <= 0 || c <= 0 || h <= 0 || w <= 0) return CT_ERR_INVALID;
    size_t n = (size_t)t * (size_t)c * (size_t)h * (size_t)w;
    if (n > img->capacity) {
        float *d = realloc(img->data, n * sizeof(float));
        if (!d) return CT_ERR_NOMEM;
        img->data = d;
        img->capacity = n;
    }
    img->t = t;
    img->c = c;
    img->h = h;
    img->w = w;
    return CT_OK;
}

ct_status ct_image_copy(ct_image *dst, const ct_image *src) {
    if (dst == src) return CT_OK;
    ct_status st = ct_image_reshape(dst, src->t, src->c, src->h, src->w);
    if (st != CT_OK) return st;
    memcpy(dst->data, src->data, ct_image_numel(src) * sizeof(float));
    return CT_OK;
}

size_t ct_image_frame_size(const ct_image *img) {
    return (size_t)img->c * (size_t)img->h * (size_t)img->w;
}

size_t ct_image_numel(const ct_image *img) { return (size_t)img->t * ct_image_frame_size(img); }

float *ct_image_frame(const ct_image *img, int f) { return img->data + (size_t)f * ct_image_frame_size(img); }

void ct_image_free(ct_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

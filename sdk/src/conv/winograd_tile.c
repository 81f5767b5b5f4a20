/* Winograd helpers shared by both tile sizes: see winograd_tile.h. */
#include "conv/winograd_tile.h"

#include <string.h>

void ct__wg_unpad(const float *pad, int64_t wp, int64_t h, int64_t w, float *dx, bool fresh) {
    for (int64_t y = 0; y < h; y++) {
        const float *src = pad + (y + 1) * wp + 1;
        float *dst = dx + y * w;
        if (fresh) {
            memcpy(dst, src, (size_t)w * sizeof(float));
        } else {
            for (int64_t j = 0; j < w; j++) dst[j] += src[j];
        }
    }
}

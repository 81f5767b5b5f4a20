/* The augmentation preview grid: one row per sample (items 0..n-1 of a
 * pipeline's dataset), the original first, then each part exactly as the
 * training pipeline makes it for that epoch (same seed, same structure:
 * views, or a jigsaw's image and patches), shown before a final
 * `normalize` transform so the colours are the real ones.
 * Cells are upscaled (nearest) to about 96 pixels. Clips (frames > 1)
 * are shown as rows of frames: a sample's original clip, then each of its
 * parts, one row each. Encoded as PNG in memory, for `contrast preview` (a file) and the
 * report (embedded). */
#ifndef CONTRAST_HOST_PREVIEW_GRID_H
#define CONTRAST_HOST_PREVIEW_GRID_H

#include <stddef.h>

#include "config/experiment.h"

/* The grid of pipeline `pipeline` (0 <= pipeline < ex->n_pipelines) for
 * up to n samples at `epoch`, as PNG bytes in *png (malloc'd, *bytes
 * long); *rows samples, *views views each. CT_ERR_UNSUPPORTED in a build
 * without libpng. */
ct_status ct_preview_png(const ct_experiment *ex, int pipeline, int n, long epoch, unsigned char **png,
                         size_t *bytes, int *rows, int *views, ct_error *err);

#endif

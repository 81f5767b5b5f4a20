/* Clip-level evaluation features: each video's embedding is the mean of
 * the encoder's embeddings of several clips spread over it (the video
 * source's ct_video_clips interface), each clip through the evaluation
 * chain with one draw per clip. Used by ct_extract_features when
 * evaluation.clips > 1. */
#ifndef CONTRAST_HOST_CLIP_FEATURES_H
#define CONTRAST_HOST_CLIP_FEATURES_H

#include "training/model.h"

/* Features (n x dim, index order) and labels of `data`, `clips` clips per
 * video averaged; the encoder in eval mode without gradients (the caller
 * sets the graph's modes). Arrays are malloc'd (free()). */
ct_status ct_extract_clip_features(ct_model *m, const ct_dataset *data, int clips, float **feats, int32_t **labels,
                                   int64_t *n, int64_t *dim, ct_error *err);

#endif

/* Clip-level evaluation features: each video's embedding is the mean of
 * the encoder's embeddings of several clips spread over it (the video
 * source's ct_video_clips interface), each clip through the evaluation
 * chain with one draw per clip. Used by ct_extract_features when
 * evaluation.clips > 1. */
#ifndef CONTRAST_HOST_CLIP_FEATURES_H
#define CONTRAST_HOST_CLIP_FEATURES_H

#include "training/model.h"

/* Features (n x dim, index order) and labels of `data` through `chain`,
 * `clips` clips per video averaged; the encoder in eval mode without gradients (the caller
 * sets the graph's modes). `shuffle`: every clip's frames permuted first
 * (ct_clip_shuffle_frames). Arrays are malloc'd (free()). */
ct_status ct_extract_clip_features(ct_model *m, const ct_dataset *data, const ct_chain *chain, int clips, bool shuffle,
                                   float **feats, int32_t **labels, int64_t *n, int64_t *dim, ct_error *err);

/* The shuffled-frame control (evaluation.shuffle_test_frames): permutes
 * the t frames of one clip (t x frame_floats floats) in place, a uniform
 * permutation keyed by (seed, item, clip k), so the control is the same at
 * any thread count and for every checkpoint it is compared on. */
void ct_clip_shuffle_frames(float *clip, int t, size_t frame_floats, uint64_t seed, int64_t item, int k);

#endif

/* What the one encoder of an experiment is fed: the input of each
 * training pipeline (channels, size, frames: images or clips), the input
 * the encoder is built for, and the refusals at load of what it cannot
 * take (a clip pipeline or dataset for an image-only encoder, pipelines
 * that disagree on channels), each naming the pipeline or evaluator and
 * its dataset, so `contrast check` says it before any data is read. */
#ifndef CONTRAST_HOST_ENCODER_INPUTS_H
#define CONTRAST_HOST_ENCODER_INPUTS_H

#include "config/experiment.h"

/* Frames of each part pipeline k gives the encoder: its structure's
 * (ct_structure_info.frames), else its dataset's items' (1: images;
 * T > 1, or 0 for a video source of varying length: clips). A structure's
 * clips over an image source count as the source's images: the structure
 * refuses that source itself, with the better message. */
int ct_experiment_pipeline_frames(const ct_experiment *ex, int k);

/* Pipeline k's encoder input: its first view group's chain applied to its
 * dataset's items, with the frames above. */
ct_encoder_input ct_experiment_pipeline_input(const ct_experiment *ex, int k);

/* The input the encoder is built for (ct_encoder_input): the pipelines of
 * nonzero weight together, a field 0 where they differ; without such a
 * pipeline, the evaluation chain on the evaluation's train split; zeros
 * (frames 1) without either. */
ct_encoder_input ct_experiment_encoder_input(const ct_experiment *ex);

/* CT_ERR_CONFIG, with the config line, when the encoder does not take
 * the input kind (ct_encoder_ops.inputs) of a pipeline of nonzero weight
 * or of an evaluator's dataset, or when two of them disagree on channels. */
ct_status ct_experiment_check_inputs(const ct_experiment *ex, ct_error *err);

#endif

/* The encoder's inputs over every pipeline and evaluator (see
 * encoder_inputs.h). */
#include "config/encoder_inputs.h"

#include <stdio.h>
#include <string.h>

#include "data/chain.h"

/* Clips: more than one frame, or a video source of varying length. */
static bool is_clips(int frames, const ct_dataset *d) { return frames > 1 || (frames == 0 && d->info.is_video); }

int ct_experiment_pipeline_frames(const ct_experiment *ex, int k) {
    const ct_pipeline_spec *p = &ex->pipelines[k];
    /* Clips are read from a video source; over images such a structure
     * refuses the source itself, which names the real cause. */
    bool clips_from_images = p->structure.info.frames > 1 && !p->data->info.is_video;
    if (p->structure.info.frames > 0 && !clips_from_images) return p->structure.info.frames;
    return p->data->info.frames;
}

ct_encoder_input ct_experiment_pipeline_input(const ct_experiment *ex, int k) {
    const ct_pipeline_spec *p = &ex->pipelines[k];
    ct_encoder_input in = ct_chain_input(&p->groups[0].chain, p->data);
    in.frames = ct_experiment_pipeline_frames(ex, k);
    return in;
}

/* a, with each field that differs in b set to 0. */
static ct_encoder_input common_input(ct_encoder_input a, ct_encoder_input b) {
    if (a.channels != b.channels) a.channels = 0;
    if (a.height != b.height) a.height = 0;
    if (a.width != b.width) a.width = 0;
    if (a.frames != b.frames) a.frames = 0;
    return a;
}

ct_encoder_input ct_experiment_encoder_input(const ct_experiment *ex) {
    ct_encoder_input in = {0, 0, 0, 1};
    bool any = false;
    for (int k = 0; k < ex->n_pipelines; k++) {
        if (ex->pipelines[k].weight == 0.0f) continue;
        ct_encoder_input pk = ct_experiment_pipeline_input(ex, k);
        in = any ? common_input(in, pk) : pk;
        any = true;
    }
    if (!any && ex->eval_train) in = ct_chain_input(&ex->eval_chain, ex->eval_train);
    return in;
}

/* "file:line: " of a config setting (or the config's path). */
static void where(const ct_experiment *ex, const char *path, char *buf, size_t n) {
    const config_setting_t *s = config_lookup(&ex->cfg, path);
    const char *file = s ? config_setting_source_file(s) : NULL;
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (file && line)
        snprintf(buf, n, "%s:%u: ", file, line);
    else
        snprintf(buf, n, "%s: ", ex->path);
}

/* One thing that feeds the encoder, for the checks and their messages. */
typedef struct feeder {
    char label[96];    /* "pipelines[1]", "evaluation.evaluators[2] (test)" */
    char path[64];     /* its libconfig path, for the line */
    const ct_dataset *data;
    int frames, channels;
} feeder;

/* f gives a kind of input (clips when `clips`) the encoder does not take. */
static ct_status refuse_kind(const ct_experiment *ex, const feeder *f, bool clips, ct_error *err) {
    char at[CT_PATH_MAX + 32], kind[48];
    where(ex, f->path, at, sizeof at);
    if (!clips)
        return ct_error_set(err, CT_ERR_CONFIG, "%s%s (data \"%s\"): gives images, but encoder %s takes clips only",
                            at, f->label, f->data->name, ex->encoder_ops->name);
    if (f->frames > 1)
        snprintf(kind, sizeof kind, "clips of %d frames", f->frames);
    else
        snprintf(kind, sizeof kind, "clips (a video source of varying length)");
    return ct_error_set(err, CT_ERR_CONFIG,
                        "%s%s (data \"%s\"): gives %s, but encoder %s takes images only; use an encoder that takes "
                        "clips (clip_resnet takes images and clips, one set of weights for both)",
                        at, f->label, f->data->name, kind, ex->encoder_ops->name);
}

static ct_status refuse_channels(const ct_experiment *ex, const feeder *f, const feeder *first, ct_error *err) {
    char at[CT_PATH_MAX + 32];
    where(ex, f->path, at, sizeof at);
    return ct_error_set(err, CT_ERR_CONFIG,
                        "%s%s (data \"%s\") gives %d-channel inputs, but %s (data \"%s\") gives %d: one encoder takes "
                        "one channel count (set the sources' channels, or a transform that converts, to agree)",
                        at, f->label, f->data->name, f->channels, first->label, first->data->name, first->channels);
}

/* The evaluators' datasets, each split once per evaluator. */
static int eval_feeders(const ct_experiment *ex, feeder *out, int max) {
    int n = 0;
    for (int i = 0; i < ex->n_evaluators && n + 2 <= max; i++) {
        const ct_eval_data *d = &ex->evaluators[i].data;
        const ct_dataset *split[2] = {d->train, d->test};
        for (int s = 0; s < 2; s++) {
            feeder *f = &out[n++];
            snprintf(f->label, sizeof f->label, "evaluation.evaluators[%d] (%s)", i, s ? "test" : "train");
            snprintf(f->path, sizeof f->path, "evaluation.evaluators.[%d]", i);
            f->data = split[s];
            f->frames = split[s]->info.frames;
            f->channels = ct_chain_input(d->chain, split[s]).channels;
        }
    }
    return n;
}

ct_status ct_experiment_check_inputs(const ct_experiment *ex, ct_error *err) {
    if (!ex->encoder_ops) return CT_OK;
    feeder fs[CT_MAX_PIPELINES + 2 * CT_MAX_EVALUATORS];
    int n = 0;
    for (int k = 0; k < ex->n_pipelines; k++) {
        if (ex->pipelines[k].weight == 0.0f) continue;
        feeder *f = &fs[n++];
        snprintf(f->label, sizeof f->label, "pipelines[%d]", k);
        snprintf(f->path, sizeof f->path, "pipelines.[%d]", k);
        f->data = ex->pipelines[k].data;
        ct_encoder_input in = ct_experiment_pipeline_input(ex, k);
        f->frames = in.frames;
        f->channels = in.channels;
    }
    n += eval_feeders(ex, fs + n, (int)(sizeof fs / sizeof fs[0]) - n);
    uint32_t takes = ex->encoder_ops->inputs ? ex->encoder_ops->inputs : CT_ENCODER_IMAGES;
    const feeder *first = NULL;
    for (int i = 0; i < n; i++) {
        const feeder *f = &fs[i];
        bool clips = is_clips(f->frames, f->data);
        if (!(takes & (clips ? CT_ENCODER_CLIPS : CT_ENCODER_IMAGES))) return refuse_kind(ex, f, clips, err);
        if (f->channels <= 0) continue; /* items of differing channels: the source says so per item */
        if (!first)
            first = f;
        else if (f->channels != first->channels)
            return refuse_channels(ex, f, first, err);
    }
    return CT_OK;
}

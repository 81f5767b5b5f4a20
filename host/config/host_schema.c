/* The host's own schemas: the groups the host itself interprets.
 *
 * Host schemas (the groups the host itself interprets; all optional, every
 * key defaulted; read them with ct_settings_* on ex->optimizer etc.):
 *
 *   top level   name (string, default: the config file's stem),
 *               seed (int >= 0, default 0); the only other keys allowed are
 *               plugins data encoder pipelines architecture optimizer
 *               schedule train evaluation.
 *   plugins     path (string list): plugin directories searched first;
 *               relative ones are relative to the config file's folder.
 *   optimizer   type sgd|adamw|adam|lars ("sgd"), lr (float 0.1), momentum
 *               (float 0.9), nesterov (bool false), weight_decay (float 0),
 *               decay_all (bool false: norm weights and biases undecayed),
 *               betas (float list [0.9, 0.999]), eps (float 1e-8),
 *               trust_coef (float 0.001, LARS), clip_norm (float 0 = off).
 *   schedule    type constant|cosine|step ("cosine"), warmup_epochs (float
 *               0), warmup_start (float 0: lr at the start of warmup, as a
 *               fraction of optimizer.lr), final_lr (float 0: lr at the end
 *               of cosine, as a fraction of optimizer.lr), step_epochs (int
 *               list []: epochs where step multiplies lr by gamma), gamma
 *               (float 0.1).
 *   train       epochs (int 10), batch_size (int 256), threads (int 0 =
 *               all cores), checkpoint_every (int 1, epochs; 0 = only at the
 *               end), keep (int 3 checkpoints; 0 = all), log_every (int 50
 *               steps), max_steps (int 0 = all; for quick runs), out_dir
 *               (string "runs"); the divergence and collapse watch
 *               (training/watch.h): watch_steps (int 20), stop_on_divergence
 *               (bool true), stop_on_collapse (bool true),
 *               watch_weight_growth (float 100), watch_min_std (float 0.01).
 *   pipelines   a list of { data (string, a data.* name), weight (float 1;
 *               0 leaves the pipeline out), batch_size (int 0 =
 *               train.batch_size), views (int 2) | ( { count = N;
 *               transforms = (...); }, ... ) for multi-crop, transforms
 *               (list of pretext groups; only with an int views) }. The
 *               first pipeline of nonzero weight defines the epoch; the
 *               others cycle through their own data (trainer.c).
 *   evaluation  { train (string), test (string): data.* names; every (int
 *               0 = only at the end, else epochs); transforms; evaluators
 *               (list of evaluator groups; a group may hold its own
 *               `transforms`, the augmentation of evaluators that train,
 *               e.g. finetune, and its own data: train, test,
 *               feature_transforms, clips) }.
 *
 * Plugin groups (data.*, encoder, architecture, transforms, evaluators)
 * select their implementation with `type`; every other key is validated
 * against that implementation's schema. */
#include "config/host_schema.h"

#include <math.h>


const ct_param_spec ct__top_spec[] = {
    CT_PARAM_STRING("name", "\"\"", "run name: the run directory is <out_dir>/<name>"),
    CT_PARAM_INT("seed", "0", 0, 9.2e18, "seed of initialisation and augmentation"),
    CT_PARAM_END,
};
const char *const ct__top_groups[] = {"plugins", "data", "encoder", "pipelines",
                                      "architecture", "optimizer", "schedule", "train",
                                      "evaluation", NULL};

const ct_param_spec ct__plugins_spec[] = {
    CT_PARAM_STRINGS("path", "[]", "plugin directories searched before CONTRAST_PLUGIN_PATH"),
    CT_PARAM_END,
};

const ct_param_spec ct__optimizer_spec[] = {
    CT_PARAM_CHOICE("type", "\"sgd\"", "sgd|adamw|adam|lars",
                    "optimizer (adam: torch.optim.Adam, weight decay added to the gradient; adamw: decoupled)"),
    CT_PARAM_FLOAT("lr", "0.1", 0, 1e3, "base learning rate"),
    CT_PARAM_FLOAT("momentum", "0.9", 0, 1, "SGD/LARS momentum"),
    CT_PARAM_BOOL("nesterov", "false", "Nesterov momentum (SGD)"),
    CT_PARAM_FLOAT("weight_decay", "0.0", 0, 10, "decoupled for AdamW, L2 for SGD/Adam/LARS"),
    CT_PARAM_BOOL("decay_all", "false",
                  "weight decay on every tensor, norm weights and biases too (torch.optim with one parameter group)"),
    CT_PARAM_FLOATS("betas", "[0.9, 0.999]", 0, 0.999999, "AdamW/Adam betas (beta1, beta2)"),
    CT_PARAM_FLOAT("eps", "1e-8", 0, 1, "AdamW/Adam epsilon"),
    CT_PARAM_FLOAT("trust_coef", "0.001", 0, 1, "LARS trust coefficient"),
    CT_PARAM_FLOAT("clip_norm", "0.0", 0, INFINITY, "clip the global gradient norm (0 = off)"),
    CT_PARAM_END,
};

const ct_param_spec ct__schedule_spec[] = {
    CT_PARAM_CHOICE("type", "\"cosine\"", "constant|cosine|step", "learning-rate schedule"),
    CT_PARAM_FLOAT("warmup_epochs", "0.0", 0, 1e6, "linear warmup length in epochs"),
    CT_PARAM_FLOAT("warmup_start", "0.0", 0, 1, "lr at the start of warmup (fraction of lr)"),
    CT_PARAM_FLOAT("final_lr", "0.0", 0, 1, "cosine: lr at the end (fraction of lr)"),
    CT_PARAM_INTS("step_epochs", "[]", 0, 1e6, "step: epochs where lr is multiplied by gamma"),
    CT_PARAM_FLOAT("gamma", "0.1", 0, 1, "step: the factor"),
    CT_PARAM_END,
};

const ct_param_spec ct__train_spec[] = {
    CT_PARAM_INT("epochs", "10", 0, 1e6, "passes over the training data"),
    CT_PARAM_INT("batch_size", "256", 1, 1 << 20, "samples per step (per pipeline; over all ranks of an mpirun job)"),
    CT_PARAM_INT("threads", "0", 0, 1024, "worker threads (0 = all cores)"),
    CT_PARAM_INT("checkpoint_every", "1", 0, 1e6, "epochs between checkpoints (0 = at the end)"),
    CT_PARAM_INT("keep", "3", 0, 1e6, "checkpoints kept (0 = all)"),
    CT_PARAM_INT("log_every", "50", 1, 1e9, "steps between metric lines"),
    CT_PARAM_INT("max_steps", "0", 0, 9e18, "stop after this many steps (0 = all; quick runs)"),
    CT_PARAM_STRING("out_dir", "\"runs\"", "parent folder of run directories"),
    CT_PARAM_INT("watch_steps", "20", 1, 1e9,
                 "steps a divergence or collapse symptom must last before the run stops (see stop_on_*)"),
    CT_PARAM_BOOL("stop_on_divergence", "true",
                  "stop when the loss or the weights' norm has diverged for watch_steps steps (false: warn only)"),
    CT_PARAM_BOOL("stop_on_collapse", "true",
                  "stop when the embeddings or the loss have collapsed for watch_steps steps (false: warn only)"),
    CT_PARAM_FLOAT("watch_weight_growth", "100", 1, INFINITY,
                   "divergence: the trainable weights' L2 norm above this multiple of its first value"),
    CT_PARAM_FLOAT("watch_min_std", "0.01", 0, 1,
                   "collapse: embeddings' std across the batch, relative to their RMS, below this"),
    CT_PARAM_BOOL("sync_bn", "false",
                  "data-parallel runs (mpirun): the encoder's batch norm uses every rank's batch"),
    CT_PARAM_BOOL("grad_overlap", "false",
                  "data-parallel runs: average the gradients in buckets started during backward (nonblocking MPI; "
                  "the same values bit for bit)"),
    CT_PARAM_INT("grad_bucket_kb", "256", 1, 1 << 20, "data-parallel runs with grad_overlap: gradient bucket size in KiB"),
    CT_PARAM_CHOICE("precision", "\"fp32\"", "fp32|bf16",
                    "bf16: convolutions (im2col and 1x1 paths; Winograd layers stay float32) and matrix products in "
                    "bfloat16 with float32 sums and float32 weights, batch norm and losses in float32 (AVX512-BF16; "
                    "float32 and a log line where the processor lacks it); also read by contrast eval"),
    CT_PARAM_END,
};

const ct_param_spec ct__pipeline_spec[] = {
    CT_PARAM_STRING("data", NULL, "name of a dataset in the data group"),
    CT_PARAM_FLOAT("weight", "1.0", 0, 1e6, "weight of this pipeline's loss (0: left out of training, its data unread)"),
    CT_PARAM_INT("batch_size", "0", 0, 1 << 20,
                 "samples per step of this pipeline, over all ranks (0: train.batch_size)"),
    CT_PARAM_INT("label_runs", "0", 0, 1 << 20,
                 "hard negatives: each epoch's shuffled order is regrouped into runs of up to this many samples "
                 "sharing their dataset label, the runs in random order, so a batch holds several samples of one "
                 "label (label the pipeline's data by what must not tell negatives apart, e.g. moving "
                 "Fashion-MNIST's itemInd.txt; needs a labelled dataset; 0 or 1: plain shuffle)"),
    CT_PARAM_END,
};
const char *const ct__pipeline_groups[] = {"views", "transforms", "structure", NULL};

const ct_param_spec ct__crop_spec[] = {
    CT_PARAM_INT("count", "1", 1, CT_MAX_VIEWS, "views made with this group's transforms"),
    CT_PARAM_END,
};
const char *const ct__crop_groups[] = {"transforms", NULL};

const ct_param_spec ct__evaluation_spec[] = {
    CT_PARAM_STRING("train", NULL, "dataset the evaluators fit on"),
    CT_PARAM_STRING("test", NULL, "dataset the evaluators measure on"),
    CT_PARAM_INT("every", "0", 0, 1e6, "epochs between evaluations (0 = only at the end)"),
    CT_PARAM_INT("clips", "1", 1, 64,
                 "video datasets: features are the mean over this many clips spread over each video (1: the centre clip)"),
    CT_PARAM_BOOL("shuffle_test_frames", "false",
                  "control: the frames of every test clip in a random (seeded) order, so a probe that reads motion "
                  "drops towards chance while one that reads appearance does not"),
    CT_PARAM_INT("precise_bn_batches", "0", 0, 100000,
                 "precise batch norm: before each evaluator, the encoder's batch-norm running statistics are "
                 "re-estimated on this many batches of 256 items of its own train data through its feature "
                 "transforms (the plain mean of the batches' statistics, the final weights; the checkpoint's are "
                 "put back after the round); 0: the checkpoint's statistics. For encoders shared by pipelines "
                 "of different inputs, whose running statistics mix theirs"),
    CT_PARAM_END,
};
const char *const ct__evaluation_groups[] = {"transforms", "evaluators", NULL};

const ct_param_spec ct__evaluator_spec[] = {
    CT_PARAM_STRING("train", "\"\"", "dataset this evaluator fits on (\"\": evaluation.train)"),
    CT_PARAM_STRING("test", "\"\"", "dataset this evaluator measures on (\"\": evaluation.test)"),
    CT_PARAM_INT("clips", "0", 0, 64, "video datasets: clips averaged per video (0: evaluation.clips)"),
    CT_PARAM_END,
};

/* ---- for documentation ------------------------------------------------------------ */

const ct_param_spec *ct_experiment_host_schema(size_t i, const char **group) {
    static const struct {
        const char *group;
        const ct_param_spec *spec;
    } schemas[] = {
        {"(top level)", ct__top_spec},          {"plugins", ct__plugins_spec},
        {"optimizer", ct__optimizer_spec},      {"schedule", ct__schedule_spec},
        {"train", ct__train_spec},              {"pipelines[]", ct__pipeline_spec},
        {"pipelines[].views[]", ct__crop_spec}, {"evaluation", ct__evaluation_spec},
        {"evaluation.evaluators[]", ct__evaluator_spec},
    };
    if (i >= sizeof schemas / sizeof schemas[0]) return NULL;
    if (group) *group = schemas[i].group;
    return schemas[i].spec;
}

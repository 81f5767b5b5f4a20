/* The experiment: a validated config with every plugin instance it names.
 *
 * Config layout (libconfig; every plugin group selects its implementation
 * with `type`, every other key is validated against that implementation's
 * schema; host groups are validated against the host's own schemas):
 *
 *   name = "simclr_fmnist";            # run directory runs/<name>/
 *   seed = 0;
 *   plugins = { path = ["../build/plugins"]; };  # optional, relative to this file
 *   data = {                                            # named datasets
 *     train = { type = "idx"; images = "..."; labels = "..."; };
 *     test  = { type = "idx"; images = "..."; labels = "..."; };
 *   };
 *   encoder = { type = "resnet"; in_channels = 1; ... };
 *   pipelines = ( {
 *       data = "train"; weight = 1.0; batch_size = 256;  # default train.batch_size
 *       views = 2;                                      # or a multi-crop list
 *       transforms = ( { type = "random_resized_crop"; size = 28; }, ... );
 *       structure = { type = "jigsaw"; };           # optional; default "views"
 *   } );
 *   architecture = { type = "end_to_end"; temperature = 0.5; };
 *   optimizer = { type = "sgd"; lr = 0.3; momentum = 0.9; weight_decay = 1e-6; };
 *   schedule  = { type = "cosine"; warmup_epochs = 1; };
 *   train = { epochs = 10; batch_size = 256; threads = 2; };
 *   evaluation = {
 *     train = "train"; test = "test"; every = 0;
 *     transforms = ( { type = "normalize"; mean = [0.2860]; std = [0.3530]; } );
 *     evaluators = ( { type = "knn"; }, { type = "linear"; },
 *                    { type = "finetune"; transforms = ( ... ); },   # own augmentation
 *                    { type = "linear"; train = "clips_train"; test = "clips_test";  # own data
 *                      feature_transforms = ( ... ); clips = 1; } );
 *   };
 *
 * The host groups' schemas are in config/host_schema.h; applying a chain to
 * an image is data/chain.h. */
#ifndef CONTRAST_HOST_EXPERIMENT_H
#define CONTRAST_HOST_EXPERIMENT_H

#include <libconfig.h>

#include "contrast/contrast.h"
#include "plugins/loader.h"

#define CT_NAME_MAX 64
#define CT_MAX_TRANSFORMS 32
#define CT_MAX_PIPELINES 8
#define CT_MAX_DATASETS 16
#define CT_MAX_EVALUATORS 8
#define CT_MAX_CROP_GROUPS 4

/* A named dataset: one source instance. */
typedef struct ct_dataset {
    char name[CT_NAME_MAX];
    const ct_source_ops *ops;
    void *self;           /* NULL until opened (contrast check opens them too) */
    ct_settings *settings;
    ct_source_info info;
} ct_dataset;

/* One transform instance of a chain. */
typedef struct ct_transform {
    const ct_pretext_ops *ops;
    void *self;
    ct_settings *settings;
} ct_transform;

/* A chain of transforms applied in order. */
typedef struct ct_chain {
    int n;
    ct_transform t[CT_MAX_TRANSFORMS];
} ct_chain;

/* A group of views sharing one chain (multi-crop has several groups). */
typedef struct ct_crop_group {
    int count;
    ct_chain chain;
} ct_crop_group;

/* A pipeline's structure (contrast/structure.h): how a sample's parts are
 * made from an item and embedded. ops NULL: the default "views". */
typedef struct ct_structure_inst {
    const ct_structure_ops *ops;
    void *self;
    ct_settings *settings;
    ct_structure_info info;    /* the default's too */
    char prefix[CT_NAME_MAX + 8]; /* of its layers: "jigsaw." */
} ct_structure_inst;

typedef struct ct_pipeline_spec {
    ct_dataset *data;
    float weight;        /* 0: left out of training (its data is not read) */
    int64_t batch_size;  /* global batch: pipelines[].batch_size, else train.batch_size */
    bool own_batch;      /* the pipeline gave batch_size */
    int label_runs;      /* > 1: batches made of runs of samples sharing a label (pipeline.h) */
    int n_groups;
    ct_crop_group groups[CT_MAX_CROP_GROUPS];
    ct_structure_inst structure;
} ct_pipeline_spec;

/* The data one evaluator measures: its train/test datasets and the
 * transforms features are extracted with (its own `train`, `test`,
 * `feature_transforms` and `clips`, else the evaluation group's). */
typedef struct ct_eval_data {
    ct_dataset *train, *test;
    const ct_chain *chain; /* the evaluator's feature_transforms or &ex->eval_chain */
    int clips;             /* clips averaged per video */
} ct_eval_data;

typedef struct ct_evaluator {
    const ct_evaluator_ops *ops;
    void *self;
    ct_settings *settings;
    bool has_chain;  /* the group gave `transforms` (its own augmentation) */
    ct_chain chain;  /* those transforms, for ct_eval_env.open_batches(augment) */
    ct_eval_data data;
    bool own_data;   /* train or test differ from the evaluation group's */
    bool has_feature_chain;
    ct_chain feature_chain; /* feature_transforms, when given (data.chain points here) */
    bool own_clips;  /* the group gave clips */
    /* Its metrics' prefix: the evaluator's name, with "@<dataset>" when it
     * measures data of its own ("linear@test_direction"). */
    char label[CT_NAME_MAX * 2];
} ct_evaluator;

typedef struct ct_experiment {
    config_t cfg;                 /* the parsed, overridden config */
    char path[1024];              /* config file */
    char name[CT_NAME_MAX];
    uint64_t seed;
    ct_plugin_set *plugins;

    int n_data;
    ct_dataset data[CT_MAX_DATASETS];

    const ct_encoder_ops *encoder_ops;
    ct_settings *encoder_settings;

    int n_pipelines;
    ct_pipeline_spec pipelines[CT_MAX_PIPELINES];

    const ct_arch_ops *arch_ops;
    ct_settings *arch_settings;

    ct_settings *optimizer;       /* host schemas (see host_schema.c) */
    ct_settings *schedule;
    ct_settings *train;

    ct_dataset *eval_train, *eval_test; /* may be NULL without evaluation */
    ct_chain eval_chain;
    int eval_every;
    int eval_clips;               /* clips averaged per video (evaluation.clips) */
    bool eval_shuffle_frames;     /* test clips' frames permuted (evaluation.shuffle_test_frames) */
    int eval_precise_bn;          /* batches batch norm is re-estimated on per evaluator (evaluation.precise_bn_batches) */
    int n_evaluators;
    ct_evaluator evaluators[CT_MAX_EVALUATORS];
} ct_experiment;

/* Options from the command line. */
typedef struct ct_experiment_opts {
    const char *const *sets; /* "group.key=value" overrides */
    int n_sets;
    bool allow_unsafe_plugins;
    bool no_plugin_probe; /* load plugins in-process without the forked crash probe
                             (tests/fuzz: a probe per plugin per input is too slow) */
} ct_experiment_opts;

/* Parse `path`, apply overrides, load plugins, validate every group against
 * its schema and create every plugin instance (sources opened). On error
 * returns the status with "file:line: ..." in err and frees what it made.
 * A plugin whose create misused its settings (read an undeclared key, a
 * key with the wrong type: ct_settings_status) fails the load with that
 * misuse, naming the group, the role, the plugin and the key. */
ct_status ct_experiment_load(ct_experiment *ex, const char *path, const ct_experiment_opts *opts,
                             ct_error *err);

/* The first misuse a plugin made of its settings `s` (an undeclared key, a
 * wrong type, an index past a list's end: ct_settings_status) during host
 * calls that handed them over: CT_OK when none, else its status with err
 * naming the config line of the plugin's group, the group, the role, the
 * plugin and the key. `group` is the group's libconfig path ("encoder",
 * "evaluation.evaluators.[0]"), for the line. Checked after each such call;
 * a misuse is reported ahead of the call's own error, its likelier cause. */
ct_status ct_experiment_settings_status(const ct_experiment *ex, const char *group, const ct_settings *s,
                                        ct_error *err);

/* The name of pipeline k's structure ("views" for the default). */
const char *ct_experiment_structure_name(const ct_experiment *ex, int k);

/* Destroy every instance, unload plugins. Safe on a zeroed or failed struct. */
void ct_experiment_free(ct_experiment *ex);

/* Write the fully resolved config (every default filled in) to `file`
 * (resolved.c). */
ct_status ct_experiment_write_resolved(const ct_experiment *ex, const char *file, ct_error *err);

#endif

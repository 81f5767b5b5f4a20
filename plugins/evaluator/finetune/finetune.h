/* The fine-tuning loop shared by the finetune and semi_supervised
 * evaluators, and the class-balanced subsets of semi_supervised. Internal
 * to this plugin. */
#ifndef CONTRAST_PLUGIN_FINETUNE_H
#define CONTRAST_PLUGIN_FINETUNE_H

#include <stdbool.h>
#include <stdint.h>

#include <contrast/contrast.h>

/* How to fine-tune: the encoder copy and a linear classifier on its
 * features, every layer trainable, batch norm in train mode. */
typedef struct finetune_cfg {
    int64_t epochs, batch_size;
    float lr, head_lr;     /* encoder and classifier learning rates (cosine-decayed to 0) */
    float weight_decay;
    bool adamw;            /* AdamW (decoupled decay) or SGD with Nesterov momentum 0.9 */
    bool save;             /* write the fine-tuned weights to the run directory */
} finetune_cfg;

/* The settings both evaluators share (a schema fragment). */
#define FINETUNE_PARAMS                                                                        \
    CT_PARAM_INT("batch_size", "64", 1, 1 << 20, "training minibatch (per step)"),                        \
        CT_PARAM_CHOICE("optimizer", "\"adamw\"", "adamw|sgd", "adamw, or sgd with Nesterov momentum 0.9"), \
        CT_PARAM_FLOAT("lr", "1e-3", 0, 100, "encoder learning rate (cosine to 0)"),                     \
        CT_PARAM_FLOAT("head_lr", "1e-2", 0, 100, "classifier learning rate (cosine to 0)"),             \
        CT_PARAM_FLOAT("weight_decay", "5e-4", 0, 10, "AdamW: decoupled decay; SGD: L2"),               \
        CT_PARAM_BOOL("save", "false", "save the fine-tuned weights in the run directory")

/* Read the shared settings (the evaluator's own `epochs` aside). */
void finetune_cfg_read(const ct_settings *s, finetune_cfg *c);

/* The result of one fine-tune. */
typedef struct finetune_result {
    double top1, top5, final_loss;
    int64_t steps, train_items;
} finetune_result;

/* Fine-tune a copy of env's encoder on the training items `subset`
 * (labelled, n of them) with cfg, then score top-1/top-5 (percent) on
 * every labelled test item. The evaluated model is untouched. With
 * cfg->save, the weights go to <run_dir>/<save_name>.safetensors and the
 * classifier to <run_dir>/<save_name>-classifier.safetensors. `who` names
 * the evaluator in messages. */
ct_status finetune_run(const finetune_cfg *cfg, const ct_eval_env *env, const int64_t *subset, int64_t n,
                       const char *save_name, const char *who, finetune_result *out, ct_error *err);

/* The env's ABI 1.2 services are there (CT_ERR_UNSUPPORTED naming `who`
 * otherwise). */
ct_status finetune_check_env(const ct_eval_env *env, const char *who, ct_error *err);

/* Labels of the training split (host->alloc'd; free with host->free). */
ct_status finetune_train_labels(const ct_eval_env *env, int32_t **labels, int64_t *n, ct_error *err);

/* The labelled items (label >= 0) of labels[0..n), malloc'd, index order. */
ct_status finetune_labelled(const int32_t *labels, int64_t n, int64_t **items, int64_t *count, ct_error *err);

/* A class-balanced subset: per class, round(fraction * labelled / classes)
 * items (all of a smaller class) drawn from a per-class permutation keyed
 * by `seed` alone, so a smaller fraction's subset is inside a larger one's;
 * sorted by index, malloc'd. */
ct_status finetune_balanced_subset(const int32_t *labels, int64_t n, int classes, double fraction,
                                   uint64_t seed, int64_t **items, int64_t *count, ct_error *err);

/* Write the indices, one per line after a '#' header line, atomically to
 * <dir>/<name>. */
ct_status finetune_write_indices(const char *dir, const char *name, const char *header, const int64_t *items,
                                 int64_t count, char *path, size_t path_n, ct_error *err);

#endif

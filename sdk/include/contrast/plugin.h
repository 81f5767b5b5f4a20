/* contrast SDK — the plugin ABI (version 1).
 *
 * A plugin is a shared object exporting one symbol, made by
 * CT_PLUGIN_DEFINE(), that returns its descriptor. The host dlopen()s it,
 * checks the descriptor (ABI major equal, minor not newer, struct size,
 * build tag), then calls init() with a registry and the host services
 * table. init() registers role implementations with ct_register_*(), which
 * pass the size of the plugin's struct so that structs can grow at the end
 * within a major version (the host copies into a zeroed struct of its own
 * size and refuses a larger one).
 *
 * Rules within ABI major 1: structs only grow at their end; a new field is
 * zero for older plugins and must mean "absent/default" when zero;
 * callbacks may be NULL where documented. */
#ifndef CONTRAST_PLUGIN_H
#define CONTRAST_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "params.h"
#include "rng.h"
#include "settings.h"
#include "status.h"
#include "structure.h"
#include "tensor.h"
#include "threadpool.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CT_EXPORT __declspec(dllexport)
#else
#define CT_EXPORT __attribute__((visibility("default")))
#endif

/* ---- roles ------------------------------------------------------------- */

typedef enum ct_role {
    CT_ROLE_SOURCE = 1u << 0,       /* yields samples */
    CT_ROLE_PRETEXT = 1u << 1,      /* makes views (transforms, structures) */
    CT_ROLE_ENCODER = 1u << 2,      /* the backbone */
    CT_ROLE_ARCHITECTURE = 1u << 3, /* turns views into a loss; owns negatives */
    CT_ROLE_EVALUATOR = 1u << 4,    /* measures a trained encoder */
    CT_ROLE_STRUCTURE = 1u << 5,    /* since 1.2: a sample's parts and their embedding (structure.h) */
} ct_role;
#define CT_ROLE_ALL 0x3fu

/* "source", "pretext", ...; "unknown" for others. Static. */
const char *ct_role_name(ct_role r);

/* ---- host services ------------------------------------------------------ */

typedef enum ct_log_level { CT_LOG_DEBUG = 0, CT_LOG_INFO, CT_LOG_WARN, CT_LOG_ERROR } ct_log_level;

/* The services table the host hands to plugins. Starts with its size: a
 * plugin must check `size > offsetof(ct_host, field)` before using a field
 * added after the ABI minor it was built against. */
typedef struct ct_host {
    size_t size;
    uint32_t abi_major, abi_minor;
    /* Logging, prefixed by the host with the plugin's name. */
    void (*log)(const struct ct_host *h, ct_log_level level, const char *fmt, ...);
    /* Allocation (malloc-compatible; memory crossing the boundary uses these). */
    void *(*alloc)(size_t bytes);
    void *(*calloc)(size_t n, size_t bytes);
    void *(*realloc)(void *p, size_t bytes);
    void (*free)(void *p);
    /* Config access (same as the settings.h functions, for plugins that
     * prefer not to link them directly). */
    int64_t (*settings_int)(const ct_settings *s, const char *name);
    double (*settings_float)(const ct_settings *s, const char *name);
    bool (*settings_bool)(const ct_settings *s, const char *name);
    const char *(*settings_string)(const ct_settings *s, const char *name);
    /* Randomness: the experiment seed and a keyed stream maker. */
    uint64_t seed;
    void (*rng_init)(ct_rng *r, uint64_t seed, uint64_t stream);
    /* The host's thread pool (may be NULL: serial) and its size. */
    ct_threadpool *pool;
    int threads;
    void *host_ctx; /* private to the host */
    void *reserved[8];
    /* Since 1.2: record a named scalar with the current training step in
     * metrics.jsonl (e.g. "cpc.acc_k2"); names are prefixed by the host
     * with the plugin's name. May be absent (check size) or a no-op. */
    void (*metric)(const struct ct_host *h, const char *name, double value);
} ct_host;

/* Log through the host (safe with h == NULL: goes to stderr). */
void ct_log(const ct_host *h, ct_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- role: source --------------------------------------------------------- */

typedef struct ct_source_info {
    int64_t count;          /* items */
    int channels, height, width; /* 0 where items differ */
    int frames;             /* 1 for images; 0 for videos of varying length */
    int num_classes;        /* 0 when unlabelled */
    bool has_labels;
    bool is_video;
    double fps;             /* videos: nominal frame rate, else 0 */
    char summary[192];      /* one human line: "60000 images 1x28x28, 10 classes" */
} ct_source_info;

typedef struct ct_source_ops {
    size_t struct_size;            /* set by ct_register_source() */
    const char *name;              /* unique, [a-z0-9_] */
    const char *description;       /* one line */
    const ct_param_spec *params;   /* schema, CT_PARAM_END-terminated */
    /* Open the data described by `s`. Validate everything here. */
    ct_status (*create)(const ct_settings *s, const ct_host *host, void **self, ct_error *err);
    void (*destroy)(void *self);
    void (*info)(void *self, ct_source_info *info);
    /* Item `index` (0 <= index < count) into dst (reshaped by the source),
     * pixels in [0,1]; *label = class or -1. Must be thread-safe. */
    ct_status (*get)(void *self, int64_t index, ct_image *dst, int32_t *label, ct_error *err);
    /* Videos (may be NULL): `nframes` frames from time t0 (seconds) every
     * `step` seconds; duration_s gives the item's length. */
    ct_status (*get_frames)(void *self, int64_t index, double t0, double step, int nframes,
                            ct_image *dst, ct_error *err);
    double (*duration)(void *self, int64_t index);
    /* Optional interfaces by id; NULL when absent. */
    const void *(*extension)(void *self, const char *id);
} ct_source_ops;

/* ---- role: pretext ------------------------------------------------------ */

/* A pretext transform: apply() is required (registration refuses a pretext
 * without it, since ABI 1.2). Structures (jigsaw, CPC, clip pairs: how a
 * sample's parts are made and embedded) are registered separately with
 * ct_register_structure (structure.h). */
typedef struct ct_pretext_ops {
    size_t struct_size;
    const char *name;
    const char *description;
    const ct_param_spec *params;
    ct_status (*create)(const ct_settings *s, const ct_host *host, void **self, ct_error *err);
    void (*destroy)(void *self);
    /* Transform src into dst (dst is reshaped as needed; never aliases src).
     * Draw every random parameter once from rng and apply it to all
     * src->t frames, so a clip is augmented consistently. Thread-safe:
     * called concurrently with different images and rngs. */
    ct_status (*apply)(void *self, const ct_image *src, ct_image *dst, ct_rng *rng, ct_error *err);
    /* Output size for an input size (may be NULL: same size). */
    void (*out_shape)(void *self, int c, int h, int w, int *oc, int *oh, int *ow);
    const void *(*extension)(void *self, const char *id);
} ct_pretext_ops;

/* ---- role: encoder ------------------------------------------------------ */

/* What the encoder is built for: the inputs of every training pipeline
 * (the evaluation's when there is none). A field that differs between
 * pipelines is 0 (say image pipelines at 28x28 and clips at 32x32: height
 * and width 0; images and 8-frame clips: frames 0); channels never differ
 * (the host refuses that at load). */
typedef struct ct_encoder_input {
    int channels, height, width;
    int frames; /* 1 for images; 0 where pipelines differ */
} ct_encoder_input;

/* Input kinds an encoder takes (ct_encoder_ops.inputs). */
typedef enum ct_encoder_inputs {
    CT_ENCODER_IMAGES = 1u << 0, /* (N, C, H, W) */
    CT_ENCODER_CLIPS = 1u << 1,  /* (N, T, C, H, W), T > 1 */
} ct_encoder_inputs;

typedef struct ct_encoder_ops {
    size_t struct_size;
    const char *name;
    const char *description;
    const ct_param_spec *params;
    /* Declare parameters and buffers in `store` under `prefix` ("encoder."),
     * with torchvision-style names. The store is finalized by the caller. */
    ct_status (*create)(const ct_settings *s, const ct_host *host, const ct_encoder_input *in,
                        ct_params *store, const char *prefix, void **self, ct_error *err);
    void (*destroy)(void *self);
    /* Feature dimension of forward()'s output. */
    int64_t (*out_dim)(void *self);
    /* x (N,C,H,W), or (N,T,C,H,W) clips when `inputs` says so -> (N,D).
     * Batch norm follows ct_graph_is_train(g). */
    ct_tensor *(*forward)(void *self, ct_graph *g, ct_tensor *x);
    const void *(*extension)(void *self, const char *id);
    /* Since 1.2: the input kinds forward() takes (CT_ENCODER_*), checked
     * by the host against every pipeline and evaluator dataset at load
     * (`contrast check` names the pipeline or evaluator and its dataset).
     * 0 (an older plugin): images only. */
    uint32_t inputs;
} ct_encoder_ops;

/* An encoder instance: its ops, state and output size. */
typedef struct ct_encoder {
    const ct_encoder_ops *ops;
    void *self;
    int64_t dim;
    char prefix[64];
} ct_encoder;

/* ---- role: architecture ------------------------------------------------- */

#define CT_MAX_VIEWS 16

/* One training batch from one pipeline: view v of all n samples is the
 * tensor views[v], (n, C, H, W) or (n, T, C, H, W) for clips; views may
 * differ in size (multi-crop). Views are the parts the pipeline's
 * structure made (structure.h); turn them into embeddings with
 * ct_arch_env.embed rather than forwarding them directly. */
typedef struct ct_batch {
    int n;
    int n_views;
    ct_tensor *views[CT_MAX_VIEWS];
    /* Item id of each sample (n): its dataset index plus its dataset's
     * ct_arch_pipeline.item_base, so ids of two training datasets never
     * meet (one dataset: the dataset index itself). */
    const int64_t *items;
    const int32_t *labels; /* class of each sample or -1; never needed for training */
    int pipeline;          /* which pipeline produced it */
    float weight;          /* that pipeline's loss weight */
} ct_batch;

/* Progress, for schedules inside architectures (momentum ramps, freezes). */
typedef struct ct_step_info {
    int64_t epoch, step, total_steps, steps_per_epoch;
} ct_step_info;

/* One training pipeline, as an architecture may size per-pipeline or
 * per-item state by it (ABI 1.2, ct_arch_env.pipelines). */
typedef struct ct_arch_pipeline {
    int64_t batch_size;      /* its global batch (pipelines[].batch_size or train.batch_size) */
    int64_t dataset_size;    /* items of its dataset */
    int64_t item_base;       /* its batches' item ids are item_base + dataset index */
    int rows_per_sample;     /* of its structure */
    ct_encoder_input input;  /* what its views give the encoder (frames > 1: clips) */
} ct_arch_pipeline;

/* What the host gives an architecture at creation. */
typedef struct ct_arch_env {
    size_t size;
    const ct_host *host;
    ct_params *store;          /* declare heads, banks, queues (as buffers) here */
    ct_encoder *encoder;       /* the shared encoder, declared under "encoder." */
    ct_encoder_input input;
    /* Item ids in use: the items of every training dataset, each dataset
     * once (two pipelines over one dataset share its ids), so a per-item
     * state of dataset_size rows (a memory bank) never mixes two sources. */
    int64_t dataset_size;
    int64_t batch_size;        /* the smallest pipeline batch (global, over ranks) */
    /* Make another encoder of the experiment's type and settings under
     * `prefix` (e.g. "key_encoder."); the env owns it. */
    ct_status (*make_encoder)(const struct ct_arch_env *env, const char *prefix, ct_encoder **out,
                              ct_error *err);
    void *host_ctx;
    /* Since 1.2 (check size; ct_arch_embed() in arch helpers falls back to
     * ct_views_embed without them). The embedding seam: the feature sets
     * `sets` of a batch through `enc` (the shared encoder, or a key encoder
     * with side = CT_SIDE_KEY) as the batch's pipeline's structure makes
     * them (structure.h). Fails the graph and returns its code on error. */
    ct_status (*embed)(const struct ct_arch_env *env, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                       ct_embed_side side, uint32_t sets, ct_embeddings *out);
    /* Declare the key-side copies of every pipeline's structure layers
     * under "key_" + their prefix ("key_jigsaw."), frozen like a key
     * encoder; a momentum architecture calls it in create(). */
    ct_status (*make_key_side)(const struct ct_arch_env *env, ct_error *err);
    /* Since 1.2: the pipelines' structures, for architectures that size
     * per-row state (the largest rows per sample of any pipeline). */
    int rows_per_sample;
    /* Since 1.2, data-parallel jobs (docs/cluster.md): this process's rank
     * and the number of processes (ranks 0 reads as a process alone). The
     * seam above already gathers every rank's rows; these are for work
     * that must see other ranks' samples before the encoder (MoCo's
     * shuffled batch norm across ranks). */
    int rank, ranks;
    /* Every rank's samples of b as one batch, rank 0's first: views,
     * items and labels all-gathered (no gradient flows back through the
     * views); tensors and arrays in g. Every rank must call it at the same
     * point. Fails the graph and returns its code on error. */
    ct_status (*gather_batch)(const struct ct_arch_env *env, ct_graph *g, const ct_batch *b, ct_batch *out);
    /* The seam for this rank alone: b's rows only (no gather across
     * ranks) and batch norm over b only (train.sync_bn not applied). */
    ct_status (*embed_local)(const struct ct_arch_env *env, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                             ct_embed_side side, uint32_t sets, ct_embeddings *out);
    /* Every rank's rows of x (n_r, F), rank 0's first, as a graph op whose
     * backward hands each rank its rows of the gradient summed over ranks
     * (PyTorch's GatherLayer). Ranks may give different n_r. */
    ct_tensor *(*gather_rows)(const struct ct_arch_env *env, ct_graph *g, ct_tensor *x);
    /* Since 1.2 (mixed pipelines): each training pipeline's batch size,
     * dataset, item ids and input, indexed like ct_batch.pipeline. */
    int n_pipelines;
    const ct_arch_pipeline *pipelines;
} ct_arch_env;

typedef struct ct_arch_ops {
    size_t struct_size;
    const char *name;
    const char *description;
    const ct_param_spec *params;
    /* Declare heads and state in env->store (finalized by the host after). */
    ct_status (*create)(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err);
    void (*destroy)(void *self);
    /* Called once after the store is finalized and initialised (copy query
     * weights into a key encoder, fill a bank). May be NULL. */
    ct_status (*start)(void *self, ct_error *err);
    /* Build the loss graph for one batch; returns a scalar or NULL with the
     * graph's error set. */
    ct_tensor *(*loss)(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info);
    /* After backward, before the optimizer (freeze prototypes). May be NULL. */
    void (*after_backward)(void *self, const ct_step_info *info);
    /* After the optimizer step (EMA, queue, bank updates). May be NULL. */
    void (*after_step)(void *self, const ct_batch *b, const ct_step_info *info);
    const void *(*extension)(void *self, const char *id);
    /* Since 1.2: what it needs of a structure and gives it (CT_ARCH_*),
     * checked by the host against every pipeline's structure before
     * training. 0 (a 1.1 plugin, which forwards views itself): only the
     * default "views" structure is allowed. */
    uint32_t caps;
    int min_sets; /* aligned sets it needs per row (0: 1) */
} ct_arch_ops;

/* Architecture capabilities (ct_arch_ops.caps). */
typedef enum ct_arch_cap {
    CT_ARCH_USES_SEAM = 1u << 0,       /* embeds through ct_arch_env.embed: any structure */
    CT_ARCH_NEEDS_ITEM_ROWS = 1u << 1, /* keeps per-item state: one row per dataset item */
    CT_ARCH_BATCH_NEGATIVES = 1u << 2, /* the batch's other rows are negatives */
} ct_arch_cap;

/* ---- role: evaluator ----------------------------------------------------- */

/* Batches for a trainable evaluator (ABI 1.2): an iterator over one split,
 * opened with ct_eval_env.open_batches. Opaque; owned by the host. */
typedef struct ct_eval_batches ct_eval_batches;

/* What to iterate (ABI 1.2). Set `size` to sizeof(ct_eval_batches_opts);
 * fields added later are zero for an older plugin. */
typedef struct ct_eval_batches_opts {
    size_t size;
    const char *split;       /* "train" or "test" */
    /* true: the evaluator's own augmentation (the `transforms` list of its
     * config group; the evaluation transforms when it has none), the order
     * shuffled per epoch from the evaluation seed, the last partial batch
     * dropped (kept when the split has fewer items than batch_size).
     * false: the evaluation transforms, index order, every item. */
    bool augment;
    int64_t batch_size;      /* > 0 */
    const int64_t *subset;   /* only these item indices (copied; in [0, count)); NULL: all */
    int64_t subset_n;
} ct_eval_batches_opts;

/* An encoder copy for training inside an evaluator (ABI 1.2), made by
 * ct_eval_env.copy_encoder: a new instance of the experiment's encoder type
 * and settings declared under "encoder." in a store of its own (finalized,
 * its values copied from the evaluated model's encoder, parameters and
 * batch-norm buffers alike), and a graph with the host's engine options
 * (pool, convolution overrides). Training the copy never touches the
 * model's weights, so the checkpoint being evaluated stays as it was. */
typedef struct ct_eval_model {
    ct_encoder *encoder;
    ct_params *store;
    ct_graph *graph;
} ct_eval_model;

/* What the host gives an evaluator. */
typedef struct ct_eval_env {
    size_t size;
    const ct_host *host;
    ct_encoder *encoder;
    ct_params *store;
    int num_classes;
    uint64_t seed;
    /* Features of split "train" or "test": the frozen encoder in eval mode
     * over the evaluation transform. Arrays are malloc'd; the caller frees
     * them with host->free. */
    ct_status (*features)(const struct ct_eval_env *env, const char *split, float **feats,
                          int32_t **labels, int64_t *n, int64_t *dim, ct_error *err);
    void *host_ctx;

    /* ---- ABI 1.2: trainable evaluators (fine-tuning). An older host's env
     * ends before these: use them only when
     * env->size > offsetof(ct_eval_env, field) and the field is not NULL. */

    /* The run directory (the evaluated checkpoint's folder, the run being
     * trained, or `contrast eval --run-dir`), existing; evaluators may write
     * files there (subset index lists, fine-tuned weights). NULL: none. */
    const char *run_dir;
    /* Labels of every item of split "train" or "test", index order, -1 for
     * unlabelled items, without decoding images. *labels is host->alloc'd
     * (free with host->free). */
    ct_status (*labels)(const struct ct_eval_env *env, const char *split, int32_t **labels, int64_t *n,
                        ct_error *err);
    /* A trainable copy of the encoder (see ct_eval_model); free it with
     * free_copy. While a copy exists, the host's BLAS runs single-threaded
     * (the copy's ops split their work over the pool themselves). */
    ct_status (*copy_encoder)(const struct ct_eval_env *env, ct_eval_model **out, ct_error *err);
    void (*free_copy)(const struct ct_eval_env *env, ct_eval_model *m);
    /* Iterate a split in batches (see ct_eval_batches_opts): open, then per
     * epoch start_epoch(it, epoch) and next_batch until *x is NULL. x is a
     * (n, C, H, W) tensor of graph g over the host's batch memory (no copy),
     * labels its n labels; both stay valid until the next call on the
     * iterator and g's reset. close_batches(NULL) is a no-op. */
    ct_status (*open_batches)(const struct ct_eval_env *env, const ct_eval_batches_opts *opts,
                              ct_eval_batches **out, ct_error *err);
    ct_status (*start_epoch)(ct_eval_batches *it, int64_t epoch, ct_error *err);
    ct_status (*next_batch)(ct_eval_batches *it, ct_graph *g, ct_tensor **x, const int32_t **labels,
                            ct_error *err);
    void (*close_batches)(ct_eval_batches *it);
    /* Save every entry of `store` as <run_dir>/<name>.safetensors (written
     * atomically; never a training checkpoint's name); the path written
     * goes to path (n bytes) when not NULL. CT_ERR_INVALID without a
     * run_dir or with a name that is not [A-Za-z0-9_.-] or starts with
     * "checkpoint". */
    ct_status (*save_params)(const struct ct_eval_env *env, const ct_params *store, const char *name,
                             char *path, size_t n, ct_error *err);
    /* Since 1.2 (multi-view): the extension `id` of split "train" or
     * "test"'s source (its extension callback), so an evaluator can learn
     * what the items are, e.g. CT_MULTIVIEW_EXT's sequence, camera and
     * frame of each item (contrast/video.h). NULL when the source has none
     * or the split is unknown. Item i of the source is row i of features(). */
    const void *(*source_extension)(const struct ct_eval_env *env, const char *split, const char *id);
} ct_eval_env;

#define CT_METRIC_NAME_MAX 64
#define CT_METRICS_MAX 32

typedef struct ct_metrics {
    int n;
    char name[CT_METRICS_MAX][CT_METRIC_NAME_MAX];
    double value[CT_METRICS_MAX];
} ct_metrics;

/* Add (or overwrite) a named metric; CT_ERR_INVALID when full. */
ct_status ct_metrics_set(ct_metrics *m, const char *name, double value);

typedef struct ct_evaluator_ops {
    size_t struct_size;
    const char *name;
    const char *description;
    const ct_param_spec *params;
    ct_status (*create)(const ct_settings *s, const ct_host *host, void **self, ct_error *err);
    void (*destroy)(void *self);
    /* Measure; metric names are short ("top1", "top5"); the host prefixes
     * the evaluator's name. */
    ct_status (*run)(void *self, const ct_eval_env *env, ct_metrics *out, ct_error *err);
    const void *(*extension)(void *self, const char *id);
} ct_evaluator_ops;

/* ---- registration -------------------------------------------------------- */

typedef struct ct_registry ct_registry;

/* Register a role implementation. The macros pass sizeof(*ops); the registry
 * copies the struct into a zeroed one of its own size, refuses a larger one
 * (CT_ERR_ABI), a missing name or required callback (CT_ERR_PLUGIN) and a
 * duplicate name within the role (CT_ERR_EXISTS). */
ct_status ct__register_source(ct_registry *r, const ct_source_ops *ops, size_t size);
ct_status ct__register_pretext(ct_registry *r, const ct_pretext_ops *ops, size_t size);
ct_status ct__register_encoder(ct_registry *r, const ct_encoder_ops *ops, size_t size);
ct_status ct__register_architecture(ct_registry *r, const ct_arch_ops *ops, size_t size);
ct_status ct__register_evaluator(ct_registry *r, const ct_evaluator_ops *ops, size_t size);
ct_status ct__register_structure(ct_registry *r, const ct_structure_ops *ops, size_t size);

#define ct_register_source(r, ops) ct__register_source((r), (ops), sizeof *(ops))
#define ct_register_pretext(r, ops) ct__register_pretext((r), (ops), sizeof *(ops))
#define ct_register_encoder(r, ops) ct__register_encoder((r), (ops), sizeof *(ops))
#define ct_register_architecture(r, ops) ct__register_architecture((r), (ops), sizeof *(ops))
#define ct_register_evaluator(r, ops) ct__register_evaluator((r), (ops), sizeof *(ops))
#define ct_register_structure(r, ops) ct__register_structure((r), (ops), sizeof *(ops))

/* ---- the descriptor ------------------------------------------------------- */

typedef ct_status (*ct_plugin_init_fn)(ct_registry *reg, const ct_host *host, ct_error *err);

/* Static description of a plugin file. The first three fields never move. */
typedef struct ct_plugin_desc {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size; /* sizeof(ct_plugin_desc) as the plugin saw it */
    uint32_t flags;       /* reserved, 0 */
    const char *build_tag; /* CT_BUILD_TAG */
    const char *name;
    const char *version;
    const char *license;     /* SPDX id */
    const char *description;
    uint32_t roles;          /* CT_ROLE_* it registers */
    ct_plugin_init_fn init;
    void (*fini)(void);      /* may be NULL; called before dlclose */
    void *reserved[6];
} ct_plugin_desc;

/* Name of the one exported symbol. */
#define CT_PLUGIN_ENTRY_SYMBOL "contrast_plugin_entry"
typedef const ct_plugin_desc *(*ct_plugin_entry_fn)(void);

/* Define the plugin's entry point. Use once per .so:
 *   CT_PLUGIN_DEFINE("idx", "1.0.0", "MIT", "IDX image files", CT_ROLE_SOURCE, idx_init)
 */
#define CT_PLUGIN_DEFINE(name_, version_, license_, description_, roles_, init_)                     \
    CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void);                                  \
    CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void) {                                 \
        static const ct_plugin_desc desc = {CT_ABI_MAJOR, CT_ABI_MINOR, sizeof(ct_plugin_desc),   \
                                            0, CT_BUILD_TAG, name_, version_, license_,            \
                                            description_, (roles_), (init_), NULL,                 \
                                            {NULL, NULL, NULL, NULL, NULL, NULL}};                \
        return &desc;                                                                              \
    }

#ifdef __cplusplus
}
#endif
#endif

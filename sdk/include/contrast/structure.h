/* contrast SDK — structures: the seam where views become embeddings (ABI 1.2).
 *
 * A structure is the pretext capability that decides what one training
 * sample is made of and how those parts become embeddings:
 *
 *   source item --sample(), in the pipeline workers--> the sample's parts
 *   parts (a batch) --embed(encoder), on the graph--> aligned sets of rows
 *   rows --architecture (batch | bank | queue | prototypes)--> loss
 *
 * The default structure, "views", is "N transformed views of one sample":
 * part v is the pipeline's transform chain of view v applied to the item,
 * and set v of the embeddings is the encoder's features of part v. Others
 * (jigsaw patches, a CPC grid, two clips of a video, several cameras at one
 * time) cut and combine parts as they need, and may own layers (declared in
 * the parameter store under their own prefix, checkpointed with the rest).
 *
 * An architecture never forwards raw parts itself: it calls the host's
 * ct_arch_env.embed() (or, without a host, ct_views_embed()) with the query
 * encoder or its key encoder, gets the feature sets below, applies its head
 * and keeps owning its negatives, updates and loss. A pipeline has at most
 * one structure (config: `structure = { type = "jigsaw"; ... };` inside the
 * pipeline group; absent: "views"). */
#ifndef CONTRAST_STRUCTURE_H
#define CONTRAST_STRUCTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "params.h"
#include "rng.h"
#include "settings.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ct_host;
struct ct_batch;
struct ct_encoder;
struct ct_source_ops;

/* Aligned embedding sets a structure may return. */
#define CT_MAX_SETS 8

/* The name of the default structure. */
#define CT_VIEWS_STRUCTURE "views"

/* ---- what a structure declares -------------------------------------------- */

/* Properties of a structure's rows, checked against the architecture's
 * needs before training (contrast check refuses an impossible pair). */
typedef enum ct_structure_flag {
    /* Rows are not dataset items (CPC: patches), so no per-item state such
     * as a memory bank can be kept for them. */
    CT_STRUCT_ROWS_NOT_ITEMS = 1u << 0,
    /* Its negatives must come from the same batch (CPC: the other patches
     * of the batch); a queue or bank of older rows cannot stand in. */
    CT_STRUCT_NEEDS_BATCH_NEGATIVES = 1u << 1,
} ct_structure_flag;

typedef struct ct_structure_info {
    int n_parts;         /* parts per sample: 1..CT_MAX_VIEWS (a batch's views) */
    int n_sets;          /* aligned sets embed() returns: 1..CT_MAX_SETS */
    int rows_per_sample; /* rows of every set per sample (>= 1) */
    uint32_t flags;      /* CT_STRUCT_* */
    const char *row_kind; /* for messages: "patches", "clips"; NULL: "samples" */
    /* Frames of each part: T > 1 clips (N, T, C, H, W), 1 images; 0: as
     * the source's items (ct_source_info.frames). The host checks it
     * against the encoder's input kinds (ct_encoder_ops.inputs) at load. */
    int frames;
} ct_structure_info;

/* What the host gives a structure at creation (when the config is loaded,
 * so `contrast check` sees its counts and flags; layers come later, in
 * declare()). */
typedef struct ct_structure_env {
    size_t size;
    const struct ct_host *host;
    int n_chains;          /* the pipeline's transform chains (its view groups) */
    const int *chain_views; /* views each chain was given in the config (n_chains) */
    int channels, height, width; /* the source's item size (0 where items differ) */
    int pipeline;          /* index of the pipeline */
} ct_structure_env;

/* ---- sampling (pipeline workers) -------------------------------------------- */

/* One sample being made. Everything is owned by the host and valid for the
 * duration of the sample() call; several workers call sample() at once
 * with different contexts. */
typedef struct ct_sample_ctx {
    size_t size;
    uint64_t seed;         /* the pipeline's seed */
    int64_t epoch, item;   /* randomness: ct_rng_init_keyed(seed, epoch, item, part) */
    const ct_image *src;   /* the item as the source returned it (pixels in [0,1]) */
    int n_chains;          /* transform chains of the pipeline (config order) */
    const int *chain_views;
    /* Apply transform chain `chain` to `in`, giving `out` (reshaped; never
     * aliases in). Draws from rng. */
    ct_status (*apply)(const struct ct_sample_ctx *c, int chain, const ct_image *in, ct_image *out, ct_rng *rng,
                       ct_error *err);
    const struct ct_source_ops *source; /* for get_frames/duration/extension */
    void *source_self;
    void *host_ctx;
} ct_sample_ctx;

/* ---- embedding (the graph) ------------------------------------------------ */

/* The side an embedding is computed for: the query side (the trainable
 * encoder and the structure's own layers) or the key side of a momentum
 * architecture (its key encoder and the structure's key copies, made by
 * ct_arch_env.make_key_side). */
typedef enum ct_embed_side { CT_SIDE_QUERY = 0, CT_SIDE_KEY = 1 } ct_embed_side;

/* The result of embed(): n_sets sets of `rows` rows each, encoder feature
 * space (the architecture applies its head). Row r of every set is the same
 * instance: set s row r and set t row r are positives. Rows are sample-major:
 * rows [i * rows_per_sample, (i + 1) * rows_per_sample) come from sample i,
 * so an architecture may permute samples (MoCo's shuffled batch norm) and
 * restore rows in blocks. Arrays live in the graph's arena. */
typedef struct ct_embeddings {
    int n_sets;
    int64_t rows;
    int rows_per_sample;
    ct_tensor *set[CT_MAX_SETS]; /* (rows, F); NULL for sets not asked for */
    /* Head groups: sets of one group may share a head forward (its batch
     * norm statistics), e.g. the default structure's views of one size. */
    int set_group[CT_MAX_SETS];
    const int64_t *items;  /* per row: dataset item, or -1 (CT_STRUCT_ROWS_NOT_ITEMS) */
    const int32_t *groups; /* per row: rows of one group are never each other's negatives */
} ct_embeddings;

/* Bit of set s in a `sets` mask. */
#define CT_SET(s) (1u << (s))
#define CT_ALL_SETS 0xffffffffu

/* ---- the role ------------------------------------------------------------- */

typedef struct ct_structure_ops {
    size_t struct_size;
    const char *name;
    const char *description;
    const ct_param_spec *params;
    /* Make an instance from its validated settings (no layers yet). */
    ct_status (*create)(const ct_settings *s, const ct_structure_env *env, void **self, ct_error *err);
    void (*destroy)(void *self);
    /* Counts and flags (fixed after create). Required. */
    void (*info)(void *self, ct_structure_info *out);
    /* Declare its layers for `side` in `store` under `prefix` ("jigsaw."
     * for the query side when the model is built; "key_jigsaw." for the key
     * side, when a momentum architecture asks, which keeps it an EMA of the
     * query side), over encoder features of feature_dim. The store is
     * finalized by the host after. NULL when the structure has no layers. */
    ct_status (*declare)(void *self, ct_params *store, const char *prefix, int64_t feature_dim, ct_embed_side side,
                         ct_error *err);
    /* Make the n_parts parts of one sample into parts[0..n_parts-1]
     * (reshaped as needed; every sample's parts must have the same shapes).
     * Thread-safe: called concurrently with different contexts. Required. */
    ct_status (*sample)(void *self, const ct_sample_ctx *ctx, ct_image *parts, ct_error *err);
    /* The feature sets in `sets` (mask of CT_SET bits) of a batch whose
     * views are the parts, through `enc` and the layers of `side`; fills
     * out (CT_OK) or fails the graph (ct_graph_fail) and returns its code.
     * Batch norm follows ct_graph_is_train(g). Required. */
    ct_status (*embed)(void *self, ct_graph *g, const struct ct_batch *b, const struct ct_encoder *enc,
                       ct_embed_side side, uint32_t sets, ct_embeddings *out);
    const void *(*extension)(void *self, const char *id);
} ct_structure_ops;

/* ---- the default structure, for hosts and tests -------------------------------- */

/* "views": part v of the sample is chain c(v) applied to the item, where
 * views are numbered across the chains in order (chain 0's views first),
 * with the rng keyed (seed, epoch, item, v). */
ct_status ct_views_sample(const ct_sample_ctx *ctx, int n_parts, ct_image *parts, ct_error *err);

/* "views" embedding: set v = encoder features of view v (n rows each, item
 * and group = the sample). Views of equal size in `sets` are forwarded
 * together (so batch norm sees all of them, as SimCLR's 2N), sizes in order
 * of first appearance; set_group[v] is the size class of view v. */
ct_status ct_views_embed(ct_graph *g, const struct ct_batch *b, const struct ct_encoder *enc, uint32_t sets,
                         ct_embeddings *out);

#ifdef __cplusplus
}
#endif
#endif

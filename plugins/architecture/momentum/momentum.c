/* momentum: MoCo v2 (He et al. 2020; Chen et al. 2020).
 *
 * Query path: shared encoder ("encoder.") -> projection head ("head.", the
 * end_to_end layout) -> L2 normalisation. Key path: a key encoder
 * ("key_encoder.", made with env->make_encoder) and key head ("key_head."),
 * run without gradient, whose weights are an exponential moving average
 * of the query ones: after every optimizer step,
 *     key <- m * key + (1 - m) * query          (trainable tensors)
 * and start() copies the query weights (and batch-norm buffers) into the
 * key ones. The key tensors are frozen in the store (no gradient, skipped
 * by the optimizer) but saved in checkpoints with everything else.
 *
 * Negatives: a FIFO queue of K past keys, the buffer "queue" (K, D)
 * (random unit vectors at the start, as in MoCo), with its write pointer
 * in the buffer "queue_ptr" so that resume continues the same ring. Loss:
 * InfoNCE of query view 0 against the key of view 1 (positive) and the
 * queue (negatives), temperature T. The queue is updated after the loss:
 * after_step writes this step's keys at the pointer, wrapping around.
 *
 * Shuffling BN emulated on one process: keys are computed over
 * `shuffle_splits` sub-batches of a randomly permuted batch (permutation
 * keyed by (seed, step, pipeline)), each sub-batch with its own batch-norm
 * statistics, and the original order is restored; so a query and its
 * positive key never share batch statistics in the same way, and the
 * model cannot cheat through them. Sub-batches keep at least 2 samples.
 *
 * In a data-parallel job (shuffle_across_ranks = true, the default) the
 * shuffle spans the ranks, as MoCo's own DDP code does: every rank gathers
 * the key-side batch of all ranks (ct_arch_env.gather_batch), draws the
 * same permutation of the global batch (the key has no rank in it), cuts
 * it into shuffle_splits sub-batches, forwards only its share of them
 * (sub-batch s on rank s * ranks / shuffle_splits) with batch norm over
 * that sub-batch alone (embed_local: no sync_bn), then the keys of every
 * rank are gathered and put back in the global batch order. So the keys,
 * the loss and the queue are those of one process with the whole batch and
 * the same shuffle_splits, whatever the number of ranks (only the key
 * encoder's running statistics, which nothing reads, are each rank's own).
 * shuffle_splits must be at least the number of ranks. With
 * shuffle_across_ranks = false each rank shuffles its own samples into
 * shuffle_splits sub-batches (the seam gathers every rank's keys; with
 * train.sync_bn sub-batch s's statistics are over sub-batch s of every
 * rank): cheaper (no batch gather) but the result depends on the number of
 * ranks. Either way the queue gets every rank's keys.
 *
 * symmetric = true: loss = (L(q0, k1) + L(q1, k0)) / 2, and both key views
 * are enqueued (MoCo's symmetrised CIFAR variant). With more than two
 * views, views 0 and 1 are used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "../common/arch_common.h"
#include "queue_math.h"

#define MOCO_PENDING 8

typedef struct pending {
    float *keys;
    size_t cap;
    int64_t n;
    bool valid;
} pending;

/* A key tensor and the query tensor it follows. */
typedef struct ema_pair {
    ct_tensor *key, *query;
} ema_pair;

typedef struct moco {
    const ct_host *host;
    ct_arch_env env; /* a copy: the embedding seam */
    ct_params *store;
    ct_encoder *encoder, *key_encoder;
    ct_mlp *head, *key_head;
    ct_tensor *queue, *queue_ptr;
    int64_t k, dim;
    float temperature, momentum;
    int splits;
    bool symmetric;
    bool across; /* shuffle over every rank's samples (ranks > 1) */
    ema_pair *pairs;
    size_t n_pairs;
    int64_t last_ema_step;
    bool warned_views;
    pending pend[MOCO_PENDING];
    int64_t *perm; /* scratch for the shuffle */
    size_t perm_cap;
} moco;

static const ct_param_spec moco_params[] = {
    CT_PARAM_FLOAT("temperature", "0.2", 1e-4, 100, "InfoNCE temperature"),
    CT_PARAM_INT("queue_size", "4096", 1, 1 << 24, "keys in the FIFO queue (K)"),
    CT_PARAM_FLOAT("momentum", "0.99", 0, 1, "key encoder EMA momentum m (key <- m key + (1-m) query)"),
    CT_PARAM_INT("shuffle_splits", "4", 1, 1024, "sub-batches of the shuffled key forward (1: no shuffling BN)"),
    CT_PARAM_BOOL("symmetric", "false", "also contrast query view 1 against key view 0 (loss averaged)"),
    CT_PARAM_BOOL("shuffle_across_ranks", "true",
                  "data-parallel: shuffle the key batch over every rank's samples, shuffle_splits sub-batches of the "
                  "global batch (as one process); false: each rank shuffles its own samples"),
    CT_MLP_HEAD_PARAMS("[128]", "128"),
    CT_PARAM_END,
};

static void moco_destroy(void *self);

static ct_status moco_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    if (!env->encoder || env->encoder->dim <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "momentum: the encoder has no output size");
    if (!env->make_encoder || env->size < sizeof *env)
        return ct_error_set(err, CT_ERR_INVALID, "momentum: the host cannot make a key encoder (no make_encoder)");
    moco *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "momentum: out of memory");
    a->host = env->host;
    arch_copy_env(&a->env, env);
    a->store = env->store;
    a->encoder = env->encoder;
    a->temperature = (float)ct_settings_float(s, "temperature");
    a->momentum = (float)ct_settings_float(s, "momentum");
    a->k = ct_settings_int(s, "queue_size");
    a->splits = (int)ct_settings_int(s, "shuffle_splits");
    a->symmetric = ct_settings_bool(s, "symmetric");
    bool has_ranks = env->size >= offsetof(ct_arch_env, gather_rows) + sizeof env->gather_rows &&
                     env->gather_batch && env->embed_local && env->gather_rows;
    a->across = ct_settings_bool(s, "shuffle_across_ranks") && a->splits > 1 && has_ranks && env->ranks > 1;
    if (a->across && a->splits < env->ranks) {
        int splits = a->splits;
        free(a);
        return ct_error_set(err, CT_ERR_CONFIG,
                            "momentum: shuffle_splits = %d is below the %d ranks: with shuffle_across_ranks each "
                            "rank forwards at least one sub-batch of the global batch (use shuffle_splits >= %d, "
                            "or shuffle_across_ranks = false)",
                            splits, env->ranks, env->ranks);
    }
    a->last_ema_step = -1;
    ct_status st = ct_mlp_from_settings(s, env->store, "head", env->encoder->dim, "momentum", &a->head, err);
    if (st == CT_OK) st = env->make_encoder(env, "key_encoder.", &a->key_encoder, err);
    if (st == CT_OK)
        st = ct_mlp_from_settings(s, env->store, "key_head", a->key_encoder->dim, "momentum", &a->key_head, err);
    /* The structures' own layers get key copies too ("key_jigsaw."). */
    if (st == CT_OK && env->size >= offsetof(ct_arch_env, make_key_side) + sizeof env->make_key_side &&
        env->make_key_side)
        st = env->make_key_side(env, err);
    if (st == CT_OK) {
        a->dim = ct_mlp_out_dim(a->head);
        int64_t qs[2] = {a->k, a->dim}, one[1] = {1};
        a->queue = ct_params_add(env->store, "queue", CT_PARAM_BUFFER, 2, qs, CT_INIT_UNIFORM_SPHERE, 0, 0, err);
        a->queue_ptr = a->queue ? ct_params_add(env->store, "queue_ptr", CT_PARAM_BUFFER, 1, one, CT_INIT_ZEROS, 0,
                                                0, err)
                                : NULL;
        st = a->queue_ptr ? CT_OK : (err ? err->code : CT_ERR_INVALID);
    }
    if (st != CT_OK) {
        /* The heads' errors already name this plugin (ct_mlp's owner). */
        if (err && strncmp(err->msg, "momentum: ", 10) != 0) ct_error_prefix(err, "momentum: ");
        moco_destroy(a); /* also frees the head */
        return st;
    }
    /* The key side learns only through the moving average. */
    ct_params_set_trainable(env->store, "key_", false);
    *self = a;
    return CT_OK;
}

static void moco_destroy(void *self) {
    moco *a = self;
    if (!a) return;
    ct_mlp_free(a->head);
    ct_mlp_free(a->key_head);
    for (int i = 0; i < MOCO_PENDING; i++) free(a->pend[i].keys);
    free(a->pairs);
    free(a->perm);
    free(a);
}

/* The query entry a key entry follows: key_encoder.X -> encoder.X,
 * key_head.X -> head.X, a structure's key_jigsaw.X -> jigsaw.X; NULL for
 * other names. */
static const char *query_name(const char *key, char *buf, size_t n) {
    if (strncmp(key, "key_", 4) == 0 && strchr(key, '.')) {
        snprintf(buf, n, "%s", key + 4);
        return buf;
    }
    return NULL;
}

/* Pair every key tensor with its query tensor, copy the query values over
 * (weights and batch-norm buffers alike) and keep the trainable pairs for
 * the moving average. */
static ct_status moco_start(void *self, ct_error *err) {
    moco *a = self;
    size_t n = ct_params_count(a->store);
    a->pairs = calloc(n ? n : 1, sizeof *a->pairs);
    if (!a->pairs) return ct_error_set(err, CT_ERR_NOMEM, "momentum: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name;
        ct_param_kind kind;
        uint32_t flags;
        ct_tensor *kt = ct_params_at(a->store, i, &name, &kind, &flags);
        char buf[256];
        const char *qn = query_name(name, buf, sizeof buf);
        if (!qn) continue;
        ct_tensor *qt = ct_params_find(a->store, qn);
        if (!qt || qt->numel != kt->numel)
            return ct_error_set(err, CT_ERR_INVALID, "momentum: key tensor %s has no query tensor %s of %lld values",
                                name, qn, (long long)kt->numel);
        memcpy(kt->data, qt->data, (size_t)kt->numel * sizeof *kt->data);
        if (kind == CT_PARAM_TRAINABLE) a->pairs[a->n_pairs++] = (ema_pair){kt, qt};
    }
    return CT_OK;
}

/* The keys k of the shuffled sub-batches (concatenated) back in batch
 * order: sample i's rows are the block of its position inv[i] in the
 * shuffle. In a data-parallel job the seam gives each sub-batch's rows of
 * every rank (ranks > 1, rank blocks in rank order within a sub-batch),
 * and the result is every rank's samples in rank order, as the query rows. */
static ct_tensor *unshuffle(ct_graph *g, ct_tensor *k, const int64_t *inv, int64_t n, int splits, int rps,
                            int64_t ranks) {
    int64_t *rows = ct_graph_alloc(g, (size_t)(ranks * n * rps) * sizeof *rows);
    int *split_of = ct_graph_alloc(g, (size_t)n * sizeof *split_of);
    if (!rows || !split_of) return NULL;
    for (int s = 0; s < splits; s++)
        for (int64_t j = s * n / splits; j < (s + 1) * n / splits; j++) split_of[j] = s;
    for (int64_t r = 0; r < ranks; r++)
        for (int64_t i = 0; i < n; i++) {
            int s = split_of[inv[i]];
            int64_t lo = s * n / splits, hi = (s + 1) * n / splits;
            int64_t at = (ranks * lo + r * (hi - lo) + (inv[i] - lo)) * rps;
            for (int q = 0; q < rps; q++) rows[(r * n + i) * rps + q] = at + q;
        }
    return ct_index_select(g, k, rows, ranks * n * rps);
}

/* The shuffle of n samples for one set: perm (position -> sample) and inv
 * (sample -> position) in a->perm, keyed by (seed, step, pipeline, set)
 * only, so every rank draws the same one. False on out of memory. */
static bool draw_perm(moco *a, int64_t n, int splits, const ct_step_info *info, int pipeline, int set) {
    if (!arch_reserve((void **)&a->perm, &a->perm_cap, 2 * (size_t)n, sizeof *a->perm)) return false;
    int64_t *perm = a->perm, *inv = a->perm + n;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    if (splits > 1) {
        ct_rng r;
        ct_rng_init_keyed(&r, a->host ? a->host->seed : 0, (uint64_t)info->step, (uint64_t)pipeline,
                          0x73687566u + (uint64_t)set);
        ct_rng_shuffle(&r, perm, n);
    }
    for (int64_t j = 0; j < n; j++) inv[perm[j]] = j;
    return true;
}

/* Keys of one set over the shuffled global batch `all` (every rank's
 * samples, gather_batch): this rank forwards its share of the sub-batches,
 * each with batch norm over itself alone; the keys of every rank are
 * gathered (sub-batches in order, as rank r's follow rank r-1's) and put
 * back in the global batch order. */
static ct_tensor *keys_across_ranks(moco *a, ct_graph *g, const ct_batch *all, const ct_step_info *info, int set) {
    int64_t n = all->n;
    int splits = moco_splits(n, a->splits), ranks = a->env.ranks, me = a->env.rank;
    if (splits < ranks)
        return ct_graph_fail(g, CT_ERR_INVALID,
                             "momentum: a global batch of %lld samples gives %d shuffled sub-batches of at least 2, "
                             "fewer than the %d ranks (shuffle_across_ranks)",
                             (long long)n, splits, ranks);
    if (!draw_perm(a, n, splits, info, all->pipeline, set))
        return ct_graph_fail(g, CT_ERR_NOMEM, "momentum: out of memory");
    ct_tensor *parts[1024];
    int n_parts = 0, rps = 1;
    for (int s = 0; s < splits; s++) {
        if ((int64_t)s * ranks / splits != me) continue;
        int64_t lo = s * n / splits, hi = (s + 1) * n / splits;
        ct_batch sub;
        ct_embeddings e;
        if (!arch_sub_batch(g, all, a->perm + lo, hi - lo, &sub)) return NULL;
        if (a->env.embed_local(&a->env, g, &sub, a->key_encoder, CT_SIDE_KEY, CT_SET(set), &e) != CT_OK) return NULL;
        if (!arch_has_sets(&e, CT_SET(set)))
            return ct_graph_fail(g, CT_ERR_INVALID, "the structure gave no embedding set %d (it has %d)", set,
                                 e.n_sets);
        int64_t row_of[CT_MAX_SETS];
        if (!(parts[n_parts++] = arch_project(a->key_head, g, &e, CT_SET(set), true, row_of))) return NULL;
        rps = e.rows_per_sample;
    }
    ct_tensor *mine = n_parts == 1 ? parts[0] : ct_concat(g, parts, n_parts, 0);
    ct_tensor *k = mine ? a->env.gather_rows(&a->env, g, mine) : NULL;
    return k ? unshuffle(g, k, a->perm + n, n, splits, rps, 1) : NULL;
}

/* Keys of one embedding set: the key path over shuffled sub-batches (each
 * sample's rows stay together), order restored. */
static ct_tensor *shuffled_keys(moco *a, ct_graph *g, const ct_batch *b, const ct_step_info *info, int set) {
    int64_t n = b->n;
    int splits = moco_splits(n, a->splits);
    if (!draw_perm(a, n, splits, info, b->pipeline, set))
        return ct_graph_fail(g, CT_ERR_NOMEM, "momentum: out of memory");
    int64_t *perm = a->perm, *inv = a->perm + n;
    ct_tensor *parts[1024];
    int rps = 1;
    for (int s = 0; s < splits; s++) {
        int64_t lo = s * n / splits, hi = (s + 1) * n / splits;
        ct_batch sub;
        if (splits > 1 && !arch_sub_batch(g, b, perm + lo, hi - lo, &sub)) return NULL;
        ct_embeddings e;
        parts[s] = arch_embed_set(&a->env, a->key_encoder, a->key_head, g, splits == 1 ? b : &sub, CT_SIDE_KEY, set, &e);
        if (!parts[s]) return NULL;
        rps = e.rows_per_sample;
    }
    if (splits == 1) return parts[0];
    ct_tensor *k = ct_concat(g, parts, splits, 0);
    if (!k) return NULL;
    return unshuffle(g, k, inv, n, splits, rps, parts[0]->shape[0] / ((n / splits) * rps));
}

static bool stash(moco *a, const ct_batch *b, ct_tensor *const *keys, int n_keys) {
    pending *p = &a->pend[b->pipeline % MOCO_PENDING];
    size_t per = (size_t)keys[0]->shape[0];
    size_t rows = per * (size_t)n_keys;
    if (!arch_reserve((void **)&p->keys, &p->cap, rows * (size_t)a->dim, sizeof *p->keys)) return false;
    for (int i = 0; i < n_keys; i++)
        memcpy(p->keys + (size_t)i * per * (size_t)a->dim, keys[i]->data, per * (size_t)a->dim * sizeof *p->keys);
    p->n = (int64_t)rows;
    p->valid = true;
    return true;
}

static ct_tensor *moco_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info) {
    moco *a = self;
    if (!arch_check_batch(g, b, "momentum")) return NULL;
    int n_q = a->symmetric ? 2 : 1;
    ct_tensor *q[2] = {NULL, NULL}, *k[2] = {NULL, NULL};
    /* Each query set forwarded on its own (its own batch statistics). */
    ct_embeddings e;
    for (int v = 0; v < n_q; v++) {
        q[v] = arch_embed_set(&a->env, a->encoder, a->head, g, b, CT_SIDE_QUERY, v, &e);
        if (!q[v]) return NULL;
    }
    if (!arch_need_sets(g, &e, 2, "momentum")) return NULL;
    if (e.n_sets > 2 && !a->warned_views) {
        ct_log(a->host, CT_LOG_WARN, "the structure gives %d embedding sets; MoCo uses sets 0 and 1 only",
               e.n_sets);
        a->warned_views = true;
    }
    bool grad = ct_graph_set_grad(g, false);
    ct_batch all;
    if (a->across && a->env.gather_batch(&a->env, g, b, &all) != CT_OK) {
        ct_graph_set_grad(g, grad);
        return NULL;
    }
    for (int v = 0; v < n_q; v++)
        k[v] = a->across ? keys_across_ranks(a, g, &all, info, 1 - v) : shuffled_keys(a, g, b, info, 1 - v);
    ct_graph_set_grad(g, grad);
    if (!k[0] || (a->symmetric && !k[1])) return NULL;
    ct_tensor *loss = ct_info_nce(g, q[0], k[0], a->queue, a->temperature);
    if (a->symmetric && loss) {
        ct_tensor *l1 = ct_info_nce(g, q[1], k[1], a->queue, a->temperature);
        loss = l1 ? ct_scale(g, ct_add(g, loss, l1), 0.5f) : NULL;
    }
    if (loss && !stash(a, b, k, n_q)) return ct_graph_fail(g, CT_ERR_NOMEM, "momentum: out of memory");
    return loss;
}

static void moco_after_step(void *self, const ct_batch *b, const ct_step_info *info) {
    moco *a = self;
    /* The moving average once per optimizer step (after_step runs once per
     * pipeline). */
    if (info->step != a->last_ema_step) {
        for (size_t i = 0; i < a->n_pairs; i++)
            moco_ema(a->pairs[i].key->data, a->pairs[i].query->data, a->pairs[i].key->numel, a->momentum);
        a->last_ema_step = info->step;
    }
    pending *p = &a->pend[b->pipeline % MOCO_PENDING];
    if (!p->valid) return;
    int64_t ptr = (int64_t)a->queue_ptr->data[0];
    if (ptr < 0 || ptr >= a->k) ptr = 0; /* a damaged buffer restarts the ring */
    moco_enqueue(a->queue->data, a->k, a->dim, &ptr, p->keys, p->n);
    a->queue_ptr->data[0] = (float)ptr;
    p->valid = false;
}

static const ct_arch_ops moco_ops = {
    .name = "momentum",
    .description = "MoCo v2: momentum key encoder, FIFO queue of negatives, shuffling BN",
    .params = moco_params,
    .create = moco_create,
    .destroy = moco_destroy,
    .start = moco_start,
    .loss = moco_loss,
    .after_step = moco_after_step,
    .caps = CT_ARCH_USES_SEAM,
    .min_sets = 2,
};

static ct_status moco_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_architecture(reg, &moco_ops);
    if (st != CT_OK) ct_error_set(err, st, "momentum: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("momentum", "1.0.0", "MIT", "MoCo v2 momentum-encoder architecture", CT_ROLE_ARCHITECTURE, moco_init)

/* Shared pieces of the four architectures (header-only: each plugin is its
 * own .so). The projection head itself is the SDK's (contrast/mlp.h).
 *
 * - arch_features(): the embedding seam (the batch's structure turns its
 *   parts into aligned feature sets, contrast/structure.h); arch_project():
 *   those sets through the head and L2 normalisation; arch_sub_batch(): a
 *   permuted sub-batch (MoCo's shuffled batch norm).
 * - Small helpers for the flat float loops they need. */
#ifndef CT_ARCH_COMMON_H
#define CT_ARCH_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

/* Keep a copy of the host's env (a host may hand a temporary): as much of
 * it as both sides know, the rest zero ("absent"). */
static inline void arch_copy_env(ct_arch_env *dst, const ct_arch_env *src) {
    memset(dst, 0, sizeof *dst);
    size_t n = src->size < sizeof *dst ? src->size : sizeof *dst;
    memcpy(dst, src, n);
    dst->size = n;
}

/* The setting behind env->batch_size (the smallest pipeline batch), for
 * messages: "train.batch_size = 1", or with several pipelines "the batch
 * of pipelines[1] = 1" (its batch_size, or train.batch_size). */
static inline void arch_batch_setting(const ct_arch_env *env, char *buf, size_t n) {
    int k = -1;
    bool known = env->size >= offsetof(ct_arch_env, pipelines) + sizeof env->pipelines && env->pipelines;
    for (int i = 0; known && env->n_pipelines > 1 && i < env->n_pipelines && k < 0; i++)
        if (env->pipelines[i].batch_size == env->batch_size) k = i;
    if (k >= 0)
        snprintf(buf, n, "the batch of pipelines[%d] = %lld", k, (long long)env->batch_size);
    else
        snprintf(buf, n, "train.batch_size = %lld", (long long)env->batch_size);
}

/* The feature sets `sets` of a batch through `enc` (side: query encoder or
 * key encoder): the host's embedding seam, which knows the batch's
 * pipeline's structure (contrast/structure.h), or the default structure
 * ("views") when there is no seam (a unit test's hand-made env). Fails the
 * graph and returns its code on error. */
static inline ct_status arch_features(const ct_arch_env *env, ct_graph *g, const ct_batch *b, const ct_encoder *enc,
                                      ct_embed_side side, uint32_t sets, ct_embeddings *e) {
    if (env && env->size >= offsetof(ct_arch_env, embed) + sizeof env->embed && env->embed)
        return env->embed(env, g, b, enc, side, sets, e);
    return ct_views_embed(g, b, enc, sets, e);
}

/* True when every set in `sets` is there. */
static inline bool arch_has_sets(const ct_embeddings *e, uint32_t sets) {
    for (int s = 0; s < CT_MAX_SETS; s++)
        if ((sets & CT_SET(s)) && (s >= e->n_sets || !e->set[s])) return false;
    return true;
}

/* head -> L2 normalisation of the sets in `sets`, concatenated by head
 * group (groups in order of first appearance, sets in order within one):
 * with per_group one head forward per group (its batch norm sees that
 * group: the default structure's views of one size, as before the seam),
 * else one forward over all of them (SimCLR's head over all 2N rows).
 * row_of[s] receives the first row of set s (its e->rows rows are
 * contiguous). */
static inline ct_tensor *arch_project(const ct_mlp *h, ct_graph *g, const ct_embeddings *e, uint32_t sets,
                                      bool per_group, int64_t row_of[CT_MAX_SETS]) {
    bool done[CT_MAX_SETS] = {false};
    ct_tensor *groups[CT_MAX_SETS], *all[CT_MAX_SETS];
    int n_groups = 0, n_all = 0;
    int64_t row = 0;
    for (int s = 0; s < e->n_sets; s++) {
        if (done[s] || !(sets & CT_SET(s))) continue;
        ct_tensor *same[CT_MAX_SETS];
        int n_same = 0;
        for (int u = s; u < e->n_sets; u++) {
            if (done[u] || !(sets & CT_SET(u)) || e->set_group[u] != e->set_group[s]) continue;
            done[u] = true;
            same[n_same++] = all[n_all++] = e->set[u];
            row_of[u] = row;
            row += e->rows;
        }
        if (per_group) {
            ct_tensor *x = n_same == 1 ? same[0] : ct_concat(g, same, n_same, 0);
            ct_tensor *z = x ? ct_mlp_forward(h, g, x) : NULL;
            groups[n_groups] = z ? ct_l2_normalize(g, z, 1e-12f) : NULL;
            if (!groups[n_groups++]) return NULL;
        }
    }
    if (n_all == 0) return ct_graph_fail(g, CT_ERR_INVALID, "no embedding sets to project");
    if (per_group) return n_groups == 1 ? groups[0] : ct_concat(g, groups, n_groups, 0);
    ct_tensor *x = n_all == 1 ? all[0] : ct_concat(g, all, n_all, 0);
    ct_tensor *z = x ? ct_mlp_forward(h, g, x) : NULL;
    return z ? ct_l2_normalize(g, z, 1e-12f) : NULL;
}

/* Normalised head output of one set (a set alone through the head). */
static inline ct_tensor *arch_embed_set(const ct_arch_env *env, const ct_encoder *enc, const ct_mlp *h, ct_graph *g,
                                        const ct_batch *b, ct_embed_side side, int set, ct_embeddings *e) {
    if (arch_features(env, g, b, enc, side, CT_SET(set), e) != CT_OK) return NULL;
    if (!arch_has_sets(e, CT_SET(set)))
        return ct_graph_fail(g, CT_ERR_INVALID, "the structure gave no embedding set %d (it has %d)", set, e->n_sets);
    int64_t row_of[CT_MAX_SETS];
    return arch_project(h, g, e, CT_SET(set), true, row_of);
}

/* The batch's samples perm[0..m-1] as a batch of their own: every part
 * index-selected (no copy of the order's meaning: items and labels
 * follow). */
static inline bool arch_sub_batch(ct_graph *g, const ct_batch *b, const int64_t *perm, int64_t m, ct_batch *sub) {
    *sub = *b;
    sub->n = (int)m;
    int64_t *items = b->items ? ct_graph_alloc(g, (size_t)m * sizeof *items) : NULL;
    int32_t *labels = b->labels ? ct_graph_alloc(g, (size_t)m * sizeof *labels) : NULL;
    if ((b->items && !items) || (b->labels && !labels)) return false;
    for (int64_t j = 0; j < m; j++) {
        if (items) items[j] = b->items[perm[j]];
        if (labels) labels[j] = b->labels[perm[j]];
    }
    sub->items = items;
    sub->labels = labels;
    for (int v = 0; v < b->n_views; v++)
        if (!(sub->views[v] = ct_index_select(g, b->views[v], perm, m))) return false;
    return true;
}

/* Check the views of a batch: at least one sample and one view, each
 * (n, ...). */
static inline ct_tensor *arch_check_batch(ct_graph *g, const ct_batch *b, const char *owner) {
    if (b->n < 1 || b->n_views < 1)
        return ct_graph_fail(g, CT_ERR_INVALID, "%s: needs at least one view of at least one sample, got %d x %d",
                             owner, b->n, b->n_views);
    for (int v = 0; v < b->n_views; v++)
        if (!b->views[v] || b->views[v]->ndim < 4 || b->views[v]->shape[0] != b->n)
            return ct_graph_fail(g, CT_ERR_SHAPE, "%s: view %d is not (%d, C, H, W)", owner, v, b->n);
    return b->views[0];
}

/* Fail the graph unless the structure gave at least `min_sets` sets. */
static inline bool arch_need_sets(ct_graph *g, const ct_embeddings *e, int min_sets, const char *owner) {
    if (e->n_sets >= min_sets) return true;
    ct_graph_fail(g, CT_ERR_INVALID, "%s: needs at least %d embedding sets (views) per sample, the structure gives %d",
                  owner, min_sets, e->n_sets);
    return false;
}

/* Grow a malloc'd scratch array to hold n elements of `size` bytes. */
static inline bool arch_reserve(void **p, size_t *cap, size_t n, size_t size) {
    if (n <= *cap) return true;
    void *q = realloc(*p, n * size);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

#endif

/* Shared pieces of the memory_bank, momentum and clustering architectures
 * (header-only: each plugin is its own .so). The projection head itself is
 * the SDK's (contrast/mlp.h), shared with end_to_end.
 *
 * - arch_embed_views(): every view of a batch through an encoder, views of equal
 *   size forwarded together (so batch norm sees all of them, and multi-crop
 *   sizes are forwarded per size), with the row offset of each view.
 * - Small helpers for the flat float loops all three need. */
#ifndef CT_ARCH_COMMON_H
#define CT_ARCH_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

/* encoder -> head -> L2 normalisation. */
static inline ct_tensor *arch_embed(const ct_encoder *enc, const ct_mlp *h, ct_graph *g, ct_tensor *x) {
    ct_tensor *f = x ? enc->ops->forward(enc->self, g, x) : NULL;
    f = f ? ct_mlp_forward(h, g, f) : NULL;
    return f ? ct_l2_normalize(g, f, 1e-12f) : NULL;
}

static inline bool arch_same_size(const ct_tensor *x, const ct_tensor *y) {
    return x->ndim == y->ndim && x->shape[1] == y->shape[1] && x->shape[2] == y->shape[2] &&
           x->shape[3] == y->shape[3];
}

/* Check the views of a batch: at least `min_views`, each (n, C, H, W). */
static inline ct_tensor *arch_check_batch(ct_graph *g, const ct_batch *b, int min_views, const char *owner) {
    if (b->n < 1 || b->n_views < min_views)
        return ct_graph_fail(g, CT_ERR_INVALID, "%s: needs at least %d view(s) of at least one sample, got %d x %d",
                             owner, min_views, b->n, b->n_views);
    for (int v = 0; v < b->n_views; v++)
        if (!b->views[v] || b->views[v]->ndim != 4 || b->views[v]->shape[0] != b->n)
            return ct_graph_fail(g, CT_ERR_SHAPE, "%s: view %d is not (%d, C, H, W)", owner, v, b->n);
    return b->views[0];
}

/* Normalised embeddings of every view: views of equal size are forwarded
 * together. Rows come out grouped by size (in order of first appearance),
 * view order within a group; row_of[v] receives the first row of view v
 * (its n rows are contiguous). */
static inline ct_tensor *arch_embed_views(const ct_encoder *enc, const ct_mlp *h, ct_graph *g, const ct_batch *b,
                                          int64_t row_of[CT_MAX_VIEWS]) {
    bool done[CT_MAX_VIEWS] = {false};
    ct_tensor *parts[CT_MAX_VIEWS];
    int n_parts = 0;
    int64_t row = 0;
    for (int v = 0; v < b->n_views; v++) {
        if (done[v]) continue;
        ct_tensor *same[CT_MAX_VIEWS];
        int n_same = 0;
        for (int u = v; u < b->n_views; u++) {
            if (done[u] || !arch_same_size(b->views[u], b->views[v])) continue;
            done[u] = true;
            same[n_same++] = b->views[u];
            row_of[u] = row;
            row += b->n;
        }
        ct_tensor *x = n_same == 1 ? same[0] : ct_concat(g, same, n_same, 0);
        ct_tensor *z = arch_embed(enc, h, g, x);
        if (!z) return NULL;
        parts[n_parts++] = z;
    }
    return n_parts == 1 ? parts[0] : ct_concat(g, parts, n_parts, 0);
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

/* Row-wise L2 normalisation in place (rows of d floats). */
static inline void arch_normalize_rows(float *x, int64_t rows, int64_t d) {
    for (int64_t i = 0; i < rows; i++) {
        float *r = x + i * d;
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)r[j] * r[j];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int64_t j = 0; j < d; j++) r[j] *= inv;
    }
}

#endif

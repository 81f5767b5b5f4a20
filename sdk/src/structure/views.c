/* The default structure, "views" (structure.h): N transformed views of one
 * sample. Sampling is the pipeline's chains applied view by view; the
 * embedding is the encoder over the views, equal sizes forwarded together.
 * Kept byte for byte what the pipeline and the architectures did before
 * the seam (ABI 1.1), so SimCLR, MoCo, SwAV and the memory bank train as
 * they did. */
#include <string.h>

#include "contrast/ops.h"
#include "contrast/plugin.h"

ct_status ct_views_sample(const ct_sample_ctx *ctx, int n_parts, ct_image *parts, ct_error *err) {
    int chain = 0, first = 0;
    for (int v = 0; v < n_parts; v++) {
        while (chain < ctx->n_chains - 1 && v >= first + ctx->chain_views[chain]) first += ctx->chain_views[chain++];
        ct_rng rng;
        ct_rng_init_keyed(&rng, ctx->seed, (uint64_t)ctx->epoch, (uint64_t)ctx->item, (uint64_t)v);
        ct_status st = ctx->apply(ctx, chain, ctx->src, &parts[v], &rng, err);
        if (st != CT_OK) {
            ct_error_prefix(err, "view %d: ", v);
            return st;
        }
    }
    return CT_OK;
}

static bool same_shape(const ct_tensor *x, const ct_tensor *y) {
    if (x->ndim != y->ndim) return false;
    for (int d = 1; d < x->ndim; d++)
        if (x->shape[d] != y->shape[d]) return false;
    return true;
}

/* Item and group of every row: the sample. */
static ct_status row_ids(ct_graph *g, const ct_batch *b, ct_embeddings *out) {
    int64_t *items = ct_graph_alloc(g, (size_t)b->n * sizeof *items);
    int32_t *groups = ct_graph_alloc(g, (size_t)b->n * sizeof *groups);
    if (!items || !groups) return ct_graph_status(g);
    for (int i = 0; i < b->n; i++) {
        items[i] = b->items ? b->items[i] : i;
        groups[i] = i;
    }
    out->items = items;
    out->groups = groups;
    return CT_OK;
}

ct_status ct_views_embed(ct_graph *g, const ct_batch *b, const ct_encoder *enc, uint32_t sets, ct_embeddings *out) {
    memset(out, 0, sizeof *out);
    if (b->n < 1 || b->n_views < 1 || b->n_views > CT_MAX_SETS) {
        ct_graph_fail(g, CT_ERR_INVALID, "views: a batch of %d samples x %d views (1..%d views)", b->n, b->n_views,
                      CT_MAX_SETS);
        return CT_ERR_INVALID;
    }
    for (int v = 0; v < b->n_views; v++)
        if (!b->views[v] || b->views[v]->ndim < 4 || b->views[v]->shape[0] != b->n) {
            ct_graph_fail(g, CT_ERR_SHAPE, "views: view %d is not (%d, C, H, W)", v, b->n);
            return CT_ERR_SHAPE;
        }
    out->n_sets = b->n_views;
    out->rows = b->n;
    out->rows_per_sample = 1;
    ct_status st = row_ids(g, b, out);
    if (st != CT_OK) return st;
    bool done[CT_MAX_VIEWS] = {false};
    int size_class = 0;
    for (int v = 0; v < b->n_views; v++) {
        if (done[v] || !(sets & CT_SET(v))) continue;
        int same[CT_MAX_VIEWS], n_same = 0;
        ct_tensor *xs[CT_MAX_VIEWS];
        for (int u = v; u < b->n_views; u++) {
            if (done[u] || !(sets & CT_SET(u)) || !same_shape(b->views[u], b->views[v])) continue;
            done[u] = true;
            xs[n_same] = b->views[u];
            same[n_same++] = u;
        }
        ct_tensor *x = n_same == 1 ? xs[0] : ct_concat(g, xs, n_same, 0);
        ct_tensor *f = x ? enc->ops->forward(enc->self, g, x) : NULL;
        if (!f) return ct_graph_status(g) != CT_OK ? ct_graph_status(g) : CT_ERR_INVALID;
        for (int k = 0; k < n_same; k++) {
            out->set[same[k]] = n_same == 1 ? f : ct_slice(g, f, 0, (int64_t)k * b->n, b->n);
            out->set_group[same[k]] = size_class;
            if (!out->set[same[k]]) return ct_graph_status(g);
        }
        size_class++;
    }
    return CT_OK;
}

/* Shape ops: reshape (a view), permute, concat, slice, index_select, gather. */
#include "ops/ops_internal.h"

/* ---- reshape ----------------------------------------------------------- */

static void ct__reshape_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad;
    for (int64_t i = 0; i < x->numel; i++) gx[i] += gy[i];
}

/* One dimension may be -1 (inferred). */
ct_tensor *ct_reshape(ct_graph *g, ct_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return NULL;
    if (ndim < 0 || ndim > CT_MAX_DIMS)
        return ct_graph_fail(g, CT_ERR_SHAPE, "reshape: %d dimensions (at most %d)", ndim, CT_MAX_DIMS);
    int64_t s[CT_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0)
            infer = i;
        else if (s[i] <= 0)
            return ct_graph_fail(g, CT_ERR_SHAPE, "reshape: dimension %d has size %lld", i, (long long)s[i]);
        else
            known *= s[i];
    }
    if (infer >= 0) s[infer] = known > 0 && x->numel % known == 0 ? x->numel / known : -1;
    char sx[64];
    if ((infer >= 0 && s[infer] <= 0) || ct_shape_numel(ndim, s) != x->numel)
        return ct_graph_fail(g, CT_ERR_SHAPE, "reshape: cannot view %s (%lld elements) with another count",
                             CT__SHAPE(x, sx), (long long)x->numel);
    ct_tensor *y = ct_tensor_wrap(g, x->data, ndim, s);
    if (!y) return NULL;
    ct_graph_record(g, "reshape", ct__reshape_backward, y, &x, 1);
    return y;
}

/* ---- permute ----------------------------------------------------------- */

/* dst[out index] = src[x index] (or += when accumulate), where out dim i
 * walks x dim perm[i]. All tensors are padded to 5 dims. */
static void ct__permute_copy(const float *src, const int64_t *xshape, const int *perm, int ndim, float *dst,
                             bool accumulate, bool reverse) {
    int64_t xstride[CT_MAX_DIMS], os[CT_MAX_DIMS] = {1, 1, 1, 1, 1}, st[CT_MAX_DIMS] = {0, 0, 0, 0, 0};
    xstride[CT_MAX_DIMS - 1] = 1;
    int64_t xs[CT_MAX_DIMS] = {1, 1, 1, 1, 1};
    for (int i = 0; i < ndim; i++) xs[i] = xshape[i];
    for (int i = ndim - 1; i >= 0; i--) xstride[i] = i == ndim - 1 ? 1 : xstride[i + 1] * xs[i + 1];
    for (int i = 0; i < ndim; i++) {
        os[i] = xs[perm[i]];
        st[i] = xstride[perm[i]];
    }
    int64_t o = 0;
    for (int64_t i0 = 0; i0 < os[0]; i0++)
        for (int64_t i1 = 0; i1 < os[1]; i1++)
            for (int64_t i2 = 0; i2 < os[2]; i2++)
                for (int64_t i3 = 0; i3 < os[3]; i3++) {
                    int64_t base = i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3];
                    for (int64_t i4 = 0; i4 < os[4]; i4++, o++) {
                        int64_t xi = base + i4 * st[4];
                        if (reverse) /* scatter y-order values back to x order */
                            dst[xi] += src[o];
                        else if (accumulate)
                            dst[o] += src[xi];
                        else
                            dst[o] = src[xi];
                    }
                }
}

static void ct__permute_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    int perm[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) perm[i] = (int)node->iarg[i];
    ct__permute_copy(node->out->grad, x->shape, perm, x->ndim, gx, true, true);
}

ct_tensor *ct_permute(ct_graph *g, ct_tensor *x, const int *perm) {
    if (!x) return NULL;
    int seen[CT_MAX_DIMS] = {0};
    int64_t s[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]++)
            return ct_graph_fail(g, CT_ERR_INVALID, "permute: entry %d (%d) is not a permutation of %d dims", i,
                                 perm[i], x->ndim);
        s[i] = x->shape[perm[i]];
    }
    ct_tensor *y = ct_tensor_new(g, x->ndim, s);
    if (!y) return NULL;
    ct__permute_copy(x->data, x->shape, perm, x->ndim, y->data, false, false);
    ct_node *node = ct_graph_record(g, "permute", ct__permute_backward, y, &x, 1);
    if (node)
        for (int i = 0; i < x->ndim; i++) node->iarg[i] = perm[i];
    return y;
}

/* ---- concat / slice: both are block copies over (outer, dim*inner) --- */

static void ct__dims_around(const ct_tensor *t, int dim, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < dim; i++) *outer *= t->shape[i];
    for (int i = dim + 1; i < t->ndim; i++) *inner *= t->shape[i];
}

typedef struct {
    ct_tensor **xs;
    int n;
    int dim;
} ct__concat_ctx;

static void ct__concat_backward(ct_graph *g, ct_node *node) {
    const ct__concat_ctx *c = node->ctx;
    int64_t outer, inner;
    ct__dims_around(node->out, c->dim, &outer, &inner);
    int64_t orow = node->out->shape[c->dim] * inner, off = 0;
    for (int k = 0; k < c->n; k++) {
        ct_tensor *x = c->xs[k];
        int64_t row = x->shape[c->dim] * inner;
        if (ct__needs(x)) {
            float *gx = ct_tensor_grad(g, x);
            if (!gx) return;
            for (int64_t o = 0; o < outer; o++) {
                const float *src = node->out->grad + o * orow + off;
                float *dst = gx + o * row;
                for (int64_t i = 0; i < row; i++) dst[i] += src[i];
            }
        }
        off += row;
    }
}

ct_tensor *ct_concat(ct_graph *g, ct_tensor *const *xs, int n, int dim) {
    if (n <= 0) return ct_graph_fail(g, CT_ERR_INVALID, "concat: no tensors");
    for (int k = 0; k < n; k++)
        if (!xs[k]) return NULL;
    const ct_tensor *x0 = xs[0];
    if (dim < 0 || dim >= x0->ndim)
        return ct_graph_fail(g, CT_ERR_INVALID, "concat: dim %d out of range for %d dims", dim, x0->ndim);
    int64_t s[CT_MAX_DIMS];
    for (int i = 0; i < x0->ndim; i++) s[i] = x0->shape[i];
    s[dim] = 0;
    ct_tensor *first_req = NULL;
    for (int k = 0; k < n; k++) {
        bool ok = xs[k]->ndim == x0->ndim;
        for (int i = 0; ok && i < x0->ndim; i++) ok = i == dim || xs[k]->shape[i] == x0->shape[i];
        if (!ok) {
            char a[64], b[64];
            return ct_graph_fail(g, CT_ERR_SHAPE, "concat: tensor %d %s does not fit tensor 0 %s along dim %d", k,
                                 CT__SHAPE(xs[k], b), CT__SHAPE(x0, a), dim);
        }
        s[dim] += xs[k]->shape[dim];
        if (!first_req && ct__needs(xs[k])) first_req = xs[k];
    }
    ct_tensor *y = ct_tensor_new(g, x0->ndim, s);
    if (!y) return NULL;
    int64_t outer, inner;
    ct__dims_around(y, dim, &outer, &inner);
    int64_t orow = s[dim] * inner, off = 0;
    for (int k = 0; k < n; k++) {
        int64_t row = xs[k]->shape[dim] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(y->data + o * orow + off, xs[k]->data + o * row, (size_t)row * sizeof(float));
        off += row;
    }
    if (!first_req) return y;
    /* The tape node holds one input (any that needs a gradient) so that any
     * number of tensors can be joined; the full list lives in ctx. */
    ct_node *node = ct_graph_record(g, "concat", ct__concat_backward, y, &first_req, 1);
    if (!node) return ct_graph_status(g) == CT_OK ? y : NULL;
    ct__concat_ctx *c = ct_graph_alloc(g, sizeof *c);
    if (!c) return NULL;
    c->xs = ct__arena_copy(g, xs, (size_t)n * sizeof *xs);
    if (!c->xs) return NULL;
    c->n = n;
    c->dim = dim;
    node->ctx = c;
    return y;
}

static void ct__slice_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    int dim = (int)node->iarg[0];
    int64_t start = node->iarg[1], len = node->iarg[2], outer, inner;
    ct__dims_around(x, dim, &outer, &inner);
    int64_t xrow = x->shape[dim] * inner, row = len * inner;
    for (int64_t o = 0; o < outer; o++) {
        const float *src = node->out->grad + o * row;
        float *dst = gx + o * xrow + start * inner;
        for (int64_t i = 0; i < row; i++) dst[i] += src[i];
    }
}

ct_tensor *ct_slice(ct_graph *g, ct_tensor *x, int dim, int64_t start, int64_t len) {
    if (!x) return NULL;
    if (dim < 0 || dim >= x->ndim)
        return ct_graph_fail(g, CT_ERR_INVALID, "slice: dim %d out of range for %d dims", dim, x->ndim);
    if (start < 0 || len <= 0 || start + len > x->shape[dim]) {
        char sx[64];
        return ct_graph_fail(g, CT_ERR_SHAPE, "slice: [%lld, %lld) out of range of dim %d of %s", (long long)start,
                             (long long)(start + len), dim, CT__SHAPE(x, sx));
    }
    int64_t s[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) s[i] = i == dim ? len : x->shape[i];
    ct_tensor *y = ct_tensor_new(g, x->ndim, s);
    if (!y) return NULL;
    int64_t outer, inner;
    ct__dims_around(x, dim, &outer, &inner);
    int64_t xrow = x->shape[dim] * inner, row = len * inner;
    for (int64_t o = 0; o < outer; o++)
        memcpy(y->data + o * row, x->data + o * xrow + start * inner, (size_t)row * sizeof(float));
    ct_node *node = ct_graph_record(g, "slice", ct__slice_backward, y, &x, 1);
    if (node) {
        node->iarg[0] = dim;
        node->iarg[1] = start;
        node->iarg[2] = len;
    }
    return y;
}

/* ---- index_select / gather --------------------------------------------- */

static void ct__index_select_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    const int64_t *idx = node->ctx;
    int64_t m = node->iarg[0], row = x->numel / x->shape[0];
    for (int64_t i = 0; i < m; i++) {
        const float *src = node->out->grad + i * row;
        float *dst = gx + idx[i] * row;
        for (int64_t j = 0; j < row; j++) dst[j] += src[j];
    }
}

ct_tensor *ct_index_select(ct_graph *g, ct_tensor *x, const int64_t *idx, int64_t m) {
    if (!x) return NULL;
    if (x->ndim < 1 || m <= 0)
        return ct_graph_fail(g, CT_ERR_SHAPE, "index_select: needs a tensor with rows and m > 0 (m = %lld)",
                             (long long)m);
    for (int64_t i = 0; i < m; i++)
        if (idx[i] < 0 || idx[i] >= x->shape[0])
            return ct_graph_fail(g, CT_ERR_INVALID, "index_select: index %lld at %lld outside [0, %lld)",
                                 (long long)idx[i], (long long)i, (long long)x->shape[0]);
    int64_t s[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) s[i] = x->shape[i];
    s[0] = m;
    ct_tensor *y = ct_tensor_new(g, x->ndim, s);
    if (!y) return NULL;
    int64_t row = x->numel / x->shape[0];
    for (int64_t i = 0; i < m; i++)
        memcpy(y->data + i * row, x->data + idx[i] * row, (size_t)row * sizeof(float));
    ct_node *node = ct_graph_record(g, "index_select", ct__index_select_backward, y, &x, 1);
    if (node) {
        node->iarg[0] = m;
        node->ctx = ct__arena_copy(g, idx, (size_t)m * sizeof *idx);
        if (!node->ctx) return NULL;
    }
    return y;
}

static void ct__gather_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    const int64_t *idx = node->ctx;
    int64_t n = x->shape[0], d = x->shape[1];
    for (int64_t i = 0; i < n; i++) gx[i * d + idx[i]] += node->out->grad[i];
}

ct_tensor *ct_gather(ct_graph *g, ct_tensor *x, const int64_t *idx) {
    if (!x) return NULL;
    char sx[64];
    if (x->ndim != 2) return ct_graph_fail(g, CT_ERR_SHAPE, "gather: x %s is not (N,D)", CT__SHAPE(x, sx));
    int64_t n = x->shape[0], d = x->shape[1];
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= d)
            return ct_graph_fail(g, CT_ERR_INVALID, "gather: index %lld in row %lld outside [0, %lld)",
                                 (long long)idx[i], (long long)i, (long long)d);
    ct_tensor *y = ct_tensor_new1(g, n);
    if (!y) return NULL;
    for (int64_t i = 0; i < n; i++) y->data[i] = x->data[i * d + idx[i]];
    ct_node *node = ct_graph_record(g, "gather", ct__gather_backward, y, &x, 1);
    if (node) {
        node->ctx = ct__arena_copy(g, idx, (size_t)n * sizeof *idx);
        if (!node->ctx) return NULL;
    }
    return y;
}

/* Matrix products: matmul and linear, forward and both backward products
 * through ct__gemm (gemm/gemm.h): float32 (our AVX-512 kernel or OpenBLAS
 * sgemm), or bfloat16 products with float32 sums when the graph's engine
 * options say precision bf16. */
#include "gemm/gemm.h"
#include "ops/ops_internal.h"

/* C (m,n) = alpha * op(A) op(B) + beta * C, row-major, with op chosen by
 * the transpose flags (dense operands). The packing scratch comes from g's
 * arena; false when that allocation failed (g's error is
 * then set). */
static bool ct__mm(ct_graph *g, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   const float *b, float beta, float *c) {
    const ct__gemm_kind kind = ct__gemm_kind_of(g);
    const size_t bytes = ct__gemm_pack_bytes(kind, m, n, k);
    void *pack = bytes ? ct_graph_alloc(g, bytes) : NULL;
    if (bytes && !pack) return false;
    if (pack) ct__gemm_pack_init(pack, kind);
    ct__gemm(pack, ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
    return true;
}

/* ---- matmul ------------------------------------------------------------ */

static void ct__matmul_backward(ct_graph *g, ct_node *node) {
    ct_tensor *a = node->in[0], *b = node->in[1];
    bool ta = node->iarg[0], tb = node->iarg[1];
    int64_t m = node->iarg[2], k = node->iarg[3], n = node->iarg[4];
    const float *gc = node->out->grad;
    if (ct__needs(a)) {
        float *ga = ct_tensor_grad(g, a);
        if (!ga) return;
        if (!ta) /* dA (m,k) = dC op(B)^T */
            ct__mm(g, false, !tb, m, k, n, 1.0f, gc, b->data, 1.0f, ga);
        else /* dA (k,m) = op(B) dC^T */
            ct__mm(g, tb, true, k, m, n, 1.0f, b->data, gc, 1.0f, ga);
    }
    if (ct__needs(b)) {
        float *gb = ct_tensor_grad(g, b);
        if (!gb) return;
        if (!tb) /* dB (k,n) = op(A)^T dC */
            ct__mm(g, !ta, false, k, n, m, 1.0f, a->data, gc, 1.0f, gb);
        else /* dB (n,k) = dC^T op(A) */
            ct__mm(g, true, ta, n, k, m, 1.0f, gc, a->data, 1.0f, gb);
    }
}

ct_tensor *ct_matmul(ct_graph *g, ct_tensor *a, ct_tensor *b, bool trans_a, bool trans_b) {
    if (!a || !b) return NULL;
    char sa[64], sb[64];
    if (a->ndim != 2 || b->ndim != 2)
        return ct_graph_fail(g, CT_ERR_SHAPE, "matmul: needs 2-D operands, got %s and %s", CT__SHAPE(a, sa),
                             CT__SHAPE(b, sb));
    int64_t m = trans_a ? a->shape[1] : a->shape[0], k = trans_a ? a->shape[0] : a->shape[1];
    int64_t kb = trans_b ? b->shape[1] : b->shape[0], n = trans_b ? b->shape[0] : b->shape[1];
    if (k != kb)
        return ct_graph_fail(g, CT_ERR_SHAPE, "matmul: inner dimensions differ: %s%s x %s%s",
                             CT__SHAPE(a, sa), trans_a ? "^T" : "", CT__SHAPE(b, sb), trans_b ? "^T" : "");
    ct_tensor *c = ct_tensor_new2(g, m, n);
    if (!c) return NULL;
    if (!ct__mm(g, trans_a, trans_b, m, n, k, 1.0f, a->data, b->data, 0.0f, c->data)) return NULL;
    ct_tensor *in[2] = {a, b};
    ct_node *node = ct_graph_record(g, "matmul", ct__matmul_backward, c, in, 2);
    if (node) {
        node->iarg[0] = trans_a;
        node->iarg[1] = trans_b;
        node->iarg[2] = m;
        node->iarg[3] = k;
        node->iarg[4] = n;
    }
    return c;
}

/* ---- linear ------------------------------------------------------------ */

static void ct__linear_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    int64_t n = x->shape[0], in = w->shape[1], out = w->shape[0];
    const float *gy = node->out->grad;
    if (ct__needs(x)) { /* dx (n,in) = dy (n,out) W (out,in) */
        float *gx = ct_tensor_grad(g, x);
        if (!gx) return;
        ct__mm(g, false, false, n, in, out, 1.0f, gy, w->data, 1.0f, gx);
    }
    if (ct__needs(w)) { /* dW (out,in) = dy^T x */
        float *gw = ct_tensor_grad(g, w);
        if (!gw) return;
        ct__mm(g, true, false, out, in, n, 1.0f, gy, x->data, 1.0f, gw);
    }
    if (ct__needs(b)) { /* db = column sums of dy */
        float *gb = ct_tensor_grad(g, b);
        if (!gb) return;
        for (int64_t i = 0; i < n; i++) {
            const float *row = gy + i * out;
            for (int64_t j = 0; j < out; j++) gb[j] += row[j];
        }
    }
}

ct_tensor *ct_linear(ct_graph *g, ct_tensor *x, ct_tensor *w, ct_tensor *b) {
    if (!x || !w) return NULL;
    char sx[64], sw[64], sb[64];
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1])
        return ct_graph_fail(g, CT_ERR_SHAPE, "linear: x %s does not fit weight %s (expects (N,IN) and (OUT,IN))",
                             CT__SHAPE(x, sx), CT__SHAPE(w, sw));
    int64_t n = x->shape[0], in = x->shape[1], out = w->shape[0];
    if (b && b->numel != out)
        return ct_graph_fail(g, CT_ERR_SHAPE, "linear: bias %s does not match weight %s", CT__SHAPE(b, sb),
                             CT__SHAPE(w, sw));
    ct_tensor *y = ct_tensor_new2(g, n, out);
    if (!y) return NULL;
    if (b)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < out; j++) y->data[i * out + j] = b->data[j];
    if (!ct__mm(g, false, true, n, out, in, 1.0f, x->data, w->data, b ? 1.0f : 0.0f, y->data)) return NULL;
    ct_tensor *inputs[3] = {x, w, b};
    ct_graph_record(g, "linear", ct__linear_backward, y, inputs, b ? 3 : 2);
    return y;
}

/* Matrix products through OpenBLAS sgemm: matmul and linear. */
#include <cblas.h>

#include "ops/ops_internal.h"

/* C (m,n) = alpha * op(A) op(B) + beta * C, row-major, with op chosen by
 * the transpose flags; lda/ldb are the stored row lengths. */
static void ct__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     const float *b, float beta, float *c) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
                (int)n, (int)k, alpha, a, ta ? (int)m : (int)k, b, tb ? (int)k : (int)n, beta, c, (int)n);
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
            ct__gemm(false, !tb, m, k, n, 1.0f, gc, b->data, 1.0f, ga);
        else /* dA (k,m) = op(B) dC^T */
            ct__gemm(tb, true, k, m, n, 1.0f, b->data, gc, 1.0f, ga);
    }
    if (ct__needs(b)) {
        float *gb = ct_tensor_grad(g, b);
        if (!gb) return;
        if (!tb) /* dB (k,n) = op(A)^T dC */
            ct__gemm(!ta, false, k, n, m, 1.0f, a->data, gc, 1.0f, gb);
        else /* dB (n,k) = dC^T op(A) */
            ct__gemm(true, ta, n, k, m, 1.0f, gc, a->data, 1.0f, gb);
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
    ct__gemm(trans_a, trans_b, m, n, k, 1.0f, a->data, b->data, 0.0f, c->data);
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
        ct__gemm(false, false, n, in, out, 1.0f, gy, w->data, 1.0f, gx);
    }
    if (ct__needs(w)) { /* dW (out,in) = dy^T x */
        float *gw = ct_tensor_grad(g, w);
        if (!gw) return;
        ct__gemm(true, false, out, in, n, 1.0f, gy, x->data, 1.0f, gw);
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
    ct__gemm(false, true, n, out, in, 1.0f, x->data, w->data, b ? 1.0f : 0.0f, y->data);
    ct_tensor *inputs[3] = {x, w, b};
    ct_graph_record(g, "linear", ct__linear_backward, y, inputs, b ? 3 : 2);
    return y;
}

/* Elementwise ops: activations, exp/log, add/mul, the fused residual
 * add+ReLU, scaling and per-channel bias.
 *
 * Each forward and backward is one flat loop chosen by a switch outside
 * the loop, so the compiler vectorises it; loops over large tensors are
 * split over the graph's thread pool. */
#include <math.h>

#include "ops/ops_internal.h"

typedef enum {
    CT__EW_RELU,
    CT__EW_SIGMOID,
    CT__EW_TANH,
    CT__EW_EXP,
    CT__EW_LOG,
    CT__EW_SCALE,
    CT__EW_ADD,
    CT__EW_MUL,
    CT__EW_ADD_RELU,
} ct__ew_op;

typedef struct {
    ct__ew_op op;
    const float *a, *b; /* inputs (b for binary ops) */
    const float *y;     /* forward output (backward) */
    const float *gy;    /* output gradient (backward) */
    float *out;         /* forward result, or the gradient to accumulate into */
    float s;
    bool fresh;         /* backward: out is uninitialised, assign instead of add */
} ct__ew;

static void ct__ew_forward(void *c, int64_t lo, int64_t hi, int worker) {
    (void)worker;
    const ct__ew *k = c;
    const float *restrict a = k->a, *restrict b = k->b;
    float *restrict y = k->out;
    const float s = k->s;
    switch (k->op) {
    case CT__EW_RELU:
        for (int64_t i = lo; i < hi; i++) y[i] = a[i] > 0.0f ? a[i] : 0.0f;
        break;
    case CT__EW_SIGMOID:
        for (int64_t i = lo; i < hi; i++) y[i] = 1.0f / (1.0f + expf(-a[i]));
        break;
    case CT__EW_TANH:
        for (int64_t i = lo; i < hi; i++) y[i] = tanhf(a[i]);
        break;
    case CT__EW_EXP:
        for (int64_t i = lo; i < hi; i++) y[i] = expf(a[i]);
        break;
    case CT__EW_LOG:
        for (int64_t i = lo; i < hi; i++) y[i] = logf(a[i]);
        break;
    case CT__EW_SCALE:
        for (int64_t i = lo; i < hi; i++) y[i] = a[i] * s;
        break;
    case CT__EW_ADD:
        for (int64_t i = lo; i < hi; i++) y[i] = a[i] + b[i];
        break;
    case CT__EW_MUL:
        for (int64_t i = lo; i < hi; i++) y[i] = a[i] * b[i];
        break;
    case CT__EW_ADD_RELU:
        for (int64_t i = lo; i < hi; i++) {
            float v = a[i] + b[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
        break;
    }
}

/* gx (op)= f(gy, y, x): OP is += normally, = when gx is a fresh buffer
 * (the first gradient for x), which saves zero-filling it. `b` is the
 * other operand of mul. */
#define CT__EW_BACKWARD_LOOPS(OP)                                                   \
    switch (k->op) {                                                                \
    case CT__EW_RELU:                                                               \
    case CT__EW_ADD_RELU:                                                           \
        for (int64_t i = lo; i < hi; i++) gx[i] OP(y[i] > 0.0f ? gy[i] : 0.0f);     \
        break;                                                                      \
    case CT__EW_SIGMOID:                                                            \
        for (int64_t i = lo; i < hi; i++) gx[i] OP gy[i] * y[i] * (1.0f - y[i]);    \
        break;                                                                      \
    case CT__EW_TANH:                                                               \
        for (int64_t i = lo; i < hi; i++) gx[i] OP gy[i] * (1.0f - y[i] * y[i]);    \
        break;                                                                      \
    case CT__EW_EXP:                                                                \
        for (int64_t i = lo; i < hi; i++) gx[i] OP gy[i] * y[i];                    \
        break;                                                                      \
    case CT__EW_LOG:                                                                \
        for (int64_t i = lo; i < hi; i++) gx[i] OP gy[i] / a[i];                    \
        break;                                                                      \
    case CT__EW_SCALE:                                                              \
        for (int64_t i = lo; i < hi; i++) gx[i] OP gy[i] * s;                       \
        break;                                                                      \
    case CT__EW_ADD:                                                                \
        for (int64_t i = lo; i < hi; i++) gx[i] OP gy[i];                           \
        break;                                                                      \
    case CT__EW_MUL:                                                                \
        for (int64_t i = lo; i < hi; i++) gx[i] OP gy[i] * b[i];                    \
        break;                                                                      \
    }

static void ct__ew_backward(void *c, int64_t lo, int64_t hi, int worker) {
    (void)worker;
    const ct__ew *k = c;
    const float *restrict gy = k->gy, *restrict y = k->y, *restrict a = k->a, *restrict b = k->b;
    float *restrict gx = k->out;
    const float s = k->s;
    if (k->fresh) {
        CT__EW_BACKWARD_LOOPS(=)
    } else {
        CT__EW_BACKWARD_LOOPS(+=)
    }
}

/* The gradient buffer of x and whether it is fresh (uninitialised, to be
 * overwritten rather than accumulated into). */
static float *ct__ew_grad(ct_graph *g, ct_tensor *x, bool *fresh) {
    *fresh = x->grad == NULL;
    if (*fresh) x->grad = ct_graph_alloc(g, (size_t)x->numel * sizeof(float));
    return x->grad;
}

static void ct__ew_accumulate(ct_graph *g, ct_node *node, ct_tensor *x, const float *other) {
    if (!ct__needs(x)) return;
    bool fresh;
    float *gx = ct__ew_grad(g, x, &fresh);
    if (!gx) return;
    ct__ew k = {(ct__ew_op)node->iarg[0], x->data, other, node->out->data, node->out->grad, gx, node->farg[0], fresh};
    ct__parallel(g, x->numel, CT__PAR_GRAIN, ct__ew_backward, &k);
}

static void ct__ew_unary_backward(ct_graph *g, ct_node *node) {
    ct__ew_accumulate(g, node, node->in[0], NULL);
}

static void ct__ew_binary_backward(ct_graph *g, ct_node *node) {
    ct__ew_op op = (ct__ew_op)node->iarg[0];
    ct_tensor *a = node->in[0], *b = node->in[1];
    ct__ew_accumulate(g, node, a, op == CT__EW_MUL ? b->data : NULL);
    ct__ew_accumulate(g, node, b, op == CT__EW_MUL ? a->data : NULL);
}

static const char *const ct__ew_names[] = {"relu", "sigmoid", "tanh", "exp", "log",
                                           "scale", "add", "mul", "add_relu"};

static ct_tensor *ct__ew_unary(ct_graph *g, ct_tensor *x, ct__ew_op op, float s) {
    if (!x) return NULL;
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    if (!y) return NULL;
    ct__ew k = {op, x->data, NULL, NULL, NULL, y->data, s, false};
    ct__parallel(g, x->numel, CT__PAR_GRAIN, ct__ew_forward, &k);
    ct_node *node = ct_graph_record(g, ct__ew_names[op], ct__ew_unary_backward, y, &x, 1);
    if (node) {
        node->iarg[0] = op;
        node->farg[0] = s;
    }
    return y;
}

static ct_tensor *ct__ew_binary(ct_graph *g, ct_tensor *a, ct_tensor *b, ct__ew_op op) {
    if (!a || !b) return NULL;
    if (!ct_tensor_same_shape(a, b)) {
        char sa[64], sb[64];
        return ct_graph_fail(g, CT_ERR_SHAPE, "%s: shapes %s and %s differ", ct__ew_names[op],
                             CT__SHAPE(a, sa), CT__SHAPE(b, sb));
    }
    ct_tensor *y = ct_tensor_new(g, a->ndim, a->shape);
    if (!y) return NULL;
    ct__ew k = {op, a->data, b->data, NULL, NULL, y->data, 0.0f, false};
    ct__parallel(g, a->numel, CT__PAR_GRAIN, ct__ew_forward, &k);
    ct_tensor *in[2] = {a, b};
    ct_node *node = ct_graph_record(g, ct__ew_names[op], ct__ew_binary_backward, y, in, 2);
    if (node) node->iarg[0] = op;
    return y;
}

ct_tensor *ct_relu(ct_graph *g, ct_tensor *x) { return ct__ew_unary(g, x, CT__EW_RELU, 0.0f); }
ct_tensor *ct_sigmoid(ct_graph *g, ct_tensor *x) { return ct__ew_unary(g, x, CT__EW_SIGMOID, 0.0f); }
ct_tensor *ct_tanh(ct_graph *g, ct_tensor *x) { return ct__ew_unary(g, x, CT__EW_TANH, 0.0f); }
ct_tensor *ct_exp(ct_graph *g, ct_tensor *x) { return ct__ew_unary(g, x, CT__EW_EXP, 0.0f); }
ct_tensor *ct_ln(ct_graph *g, ct_tensor *x) { return ct__ew_unary(g, x, CT__EW_LOG, 0.0f); }
ct_tensor *ct_scale(ct_graph *g, ct_tensor *x, float s) { return ct__ew_unary(g, x, CT__EW_SCALE, s); }
ct_tensor *ct_add(ct_graph *g, ct_tensor *a, ct_tensor *b) { return ct__ew_binary(g, a, b, CT__EW_ADD); }
ct_tensor *ct_mul(ct_graph *g, ct_tensor *a, ct_tensor *b) { return ct__ew_binary(g, a, b, CT__EW_MUL); }
ct_tensor *ct_add_relu(ct_graph *g, ct_tensor *a, ct_tensor *b) {
    return ct__ew_binary(g, a, b, CT__EW_ADD_RELU);
}

/* ---- per-channel bias -------------------------------------------------- */

/* x viewed as (outer=N, C, inner=prod of dims 2..). */
static void ct__bias_dims(const ct_tensor *x, int64_t *outer, int64_t *c, int64_t *inner) {
    *outer = x->shape[0];
    *c = x->ndim > 1 ? x->shape[1] : 1;
    *inner = x->numel / (*outer * *c);
}

static void ct__add_bias_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0], *bias = node->in[1];
    const float *gy = node->out->grad;
    if (ct__needs(x)) {
        bool fresh;
        float *gx = ct__ew_grad(g, x, &fresh);
        if (!gx) return;
        ct__ew k = {CT__EW_ADD, NULL, NULL, NULL, gy, gx, 0.0f, fresh};
        ct__parallel(g, x->numel, CT__PAR_GRAIN, ct__ew_backward, &k);
    }
    if (ct__needs(bias)) {
        float *gb = ct_tensor_grad(g, bias);
        if (!gb) return;
        int64_t outer, c, inner;
        ct__bias_dims(x, &outer, &c, &inner);
        for (int64_t n = 0; n < outer; n++)
            for (int64_t j = 0; j < c; j++) {
                const float *row = gy + (n * c + j) * inner;
                float acc = 0.0f;
                for (int64_t i = 0; i < inner; i++) acc += row[i];
                gb[j] += acc;
            }
    }
}

ct_tensor *ct_add_bias(ct_graph *g, ct_tensor *x, ct_tensor *bias) {
    if (!x || !bias) return NULL;
    int64_t outer, c, inner;
    if (x->ndim < 1) return ct_graph_fail(g, CT_ERR_SHAPE, "add_bias: x is a scalar");
    ct__bias_dims(x, &outer, &c, &inner);
    if (bias->numel != c) {
        char sx[64], sb[64];
        return ct_graph_fail(g, CT_ERR_SHAPE, "add_bias: bias %s does not match channels of x %s",
                             CT__SHAPE(bias, sb), CT__SHAPE(x, sx));
    }
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    if (!y) return NULL;
    for (int64_t n = 0; n < outer; n++)
        for (int64_t j = 0; j < c; j++) {
            const float *src = x->data + (n * c + j) * inner;
            float *dst = y->data + (n * c + j) * inner;
            const float b = bias->data[j];
            for (int64_t i = 0; i < inner; i++) dst[i] = src[i] + b;
        }
    ct_tensor *in[2] = {x, bias};
    ct_graph_record(g, "add_bias", ct__add_bias_backward, y, in, 2);
    return y;
}

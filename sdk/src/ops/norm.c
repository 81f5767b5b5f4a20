/* Batch normalisation over (N, C, ...) per channel, optionally fused with
 * the ReLU that follows it in every ResNet (ct_batchnorm_relu), or with the
 * residual join of a ResNet block, relu(bn(x) + r) (ct_batchnorm_add_relu).
 *
 * Why fused: batch norm and ReLU are memory-bound passes over the largest
 * activations of the network; fusing them saves one full read and write in
 * forward and one in backward (the ReLU mask is read from the output).
 * Work is split over channels with ct_parallel_for: each channel's
 * statistics are computed by one thread in a fixed order, so results do
 * not depend on the thread count.
 *
 * Statistics: sums of (x - x0) and (x - x0)^2 with a per-channel shift x0
 * (the channel's first element), accumulated in double across rows; this
 * keeps one pass over x without the cancellation of the naive formula.
 *
 * Synchronised batch norm (engine option allreduce_sum, set by a
 * data-parallel host): the statistics are those of every process's batch.
 * Every process shifts by process 0's first element of the channel (one
 * sum over processes, with the element count), then the shifted sums are
 * summed over processes: the one-process formula, one pass over x, equal
 * to one process's statistics of the whole batch up to the rounding of
 * the double sums. Backward sums its two per-channel gradient sums over
 * processes between its passes. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "contrast/ops.h"
#include "contrast/threadpool.h"
#include "core/kernels.h"
#include "ops/norm_kernels.h"

typedef struct ct__bn_ctx {
    float *mean, *invstd;
    float eps;
    bool train, relu;
    /* synchronised: the hook of forward and the global element count */
    ct_status (*sync)(void *ctx, double *values, size_t n);
    void *sync_ctx;
    double m_total;
} ct__bn_ctx;

static ct_threadpool *ct__bn_pool(const ct_graph *g, int64_t elems) {
    /* Below ~64K elements a fork-join costs more than it saves. */
    return elems >= 65536 ? ct_graph_pool(g) : NULL;
}

static void ct__bn_backward(ct_graph *g, ct_node *node) {
    ct__bn_ctx *cx = node->ctx;
    ct_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    ct__bn_args a;
    memset(&a, 0, sizeof a);
    a.x = x->data;
    a.y = node->out->data;
    a.gamma = w ? w->data : NULL;
    a.beta = b ? b->data : NULL;
    a.mean = cx->mean, a.invstd = cx->invstd;
    a.n = x->shape[0], a.c = x->shape[1], a.s = x->numel / (a.n * a.c);
    a.train = cx->train, a.relu = cx->relu;
    a.dy = node->out->grad;
    if (x->flags & CT_TENSOR_REQUIRES_GRAD) {
        /* First writer of x's gradient: overwrite (no memset, no read). */
        a.dx_fresh = x->grad == NULL;
        if (a.dx_fresh) x->grad = ct_graph_alloc(g, (size_t)x->numel * sizeof(float));
        if (!(a.dx = x->grad)) return;
    }
    if (w && (w->flags & CT_TENSOR_REQUIRES_GRAD) && !(a.dgamma = ct_tensor_grad(g, w))) return;
    if (b && (b->flags & CT_TENSOR_REQUIRES_GRAD) && !(a.dbeta = ct_tensor_grad(g, b))) return;
    ct_tensor *r = node->n_in > 3 ? node->in[3] : NULL;
    if (r) {
        a.res = r->data;
        if (r->flags & CT_TENSOR_REQUIRES_GRAD) {
            a.dres_fresh = r->grad == NULL;
            if (a.dres_fresh) r->grad = ct_graph_alloc(g, (size_t)r->numel * sizeof(float));
            if (!(a.dres = r->grad)) return;
        }
    }
    if (!cx->sync || !cx->train) {
        ct_parallel_for(ct__bn_pool(g, x->numel), a.c, 1, ct__kernels_of(g)->bn_backward, &a);
        return;
    }
    /* Synchronised: pass 1 here, its sums over every process, pass 2. */
    if (!(a.sums = ct_graph_alloc(g, (size_t)(2 * a.c) * sizeof *a.sums))) return;
    a.bwd_phase = 1;
    ct_parallel_for(ct__bn_pool(g, x->numel), a.c, 1, ct__kernels_of(g)->bn_backward, &a);
    if (cx->sync(cx->sync_ctx, a.sums, (size_t)(2 * a.c)) != CT_OK) {
        ct_graph_fail(g, CT_ERR_IO, "%s backward: summing the statistics over processes failed", node->op);
        return;
    }
    a.bwd_phase = 2;
    a.m_total = cx->m_total;
    a.dgamma = a.dbeta = NULL; /* this process's share is added once, in pass 1 */
    ct_parallel_for(ct__bn_pool(g, x->numel), a.c, 1, ct__kernels_of(g)->bn_backward, &a);
}

/* Mean and inverse std of every process's batch into a->mean/invstd, the
 * running statistics updated; *m_total = elements per channel over all. */
static bool ct__bn_sync_stats(ct_graph *g, ct__bn_args *a, const ct_engine_opts *eo, double *m_total) {
    const int64_t C = a->c;
    double *sh = ct_graph_alloc(g, (size_t)(3 * C + 1) * sizeof *sh);
    if (!(a->sums = sh)) return false;
    /* The shifts (process 0's) and the element count, in one sum. */
    for (int64_t c = 0; c < C; c++) sh[2 * C + c] = eo->allreduce_rank == 0 ? (double)a->x[c * a->s] : 0.0;
    sh[3 * C] = (double)(a->n * a->s);
    if (eo->allreduce_sum(eo->allreduce_ctx, sh + 2 * C, (size_t)C + 1) != CT_OK) return false;
    const double M = sh[3 * C];
    ct_parallel_for(ct__bn_pool(g, a->n * a->c * a->s), C, 1, ct__kernels_of(g)->bn_sync_sums, a);
    if (eo->allreduce_sum(eo->allreduce_ctx, sh, (size_t)(2 * C)) != CT_OK) return false;
    for (int64_t c = 0; c < C; c++) {
        /* As the one-process formula (ct__bn_fwd_range). */
        double dm = sh[2 * c] / M, var = sh[2 * c + 1] / M - dm * dm;
        if (var < 0.0) var = 0.0;
        const float mean = (float)(dm + (float)sh[2 * C + c]);
        a->mean[c] = mean;
        a->invstd[c] = (float)(1.0 / sqrt(var + a->eps));
        if (a->run_mean) {
            double unbiased = M > 1 ? var * M / (M - 1) : var;
            a->run_mean[c] = (1.0f - a->momentum) * a->run_mean[c] + a->momentum * mean;
            a->run_var[c] = (float)((1.0 - a->momentum) * a->run_var[c] + a->momentum * unbiased);
        }
    }
    *m_total = M;
    a->stats_given = true;
    return true;
}

static ct_tensor *ct__batchnorm(ct_graph *g, const char *op, bool relu, ct_tensor *x, ct_tensor *weight,
                                ct_tensor *bias, ct_tensor *running_mean, ct_tensor *running_var,
                                float momentum, float eps, ct_tensor *res) {
    if (!g || !x) return g ? ct_graph_fail(g, CT_ERR_INVALID, "%s: NULL input", op) : NULL;
    if (x->ndim < 2 || x->shape[0] < 1)
        return ct_graph_fail(g, CT_ERR_SHAPE, "%s: input must be (N,C,...) with N >= 1, got %dD", op,
                             x->ndim);
    const int64_t C = x->shape[1];
    ct_tensor *per_c[4] = {weight, bias, running_mean, running_var};
    static const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++)
        if (per_c[i] && per_c[i]->numel != C)
            return ct_graph_fail(g, CT_ERR_SHAPE, "%s: %s has %lld elements, input has %lld channels", op,
                                 names[i], (long long)per_c[i]->numel, (long long)C);
    bool train = ct_graph_is_train(g);
    if (!train && (!running_mean || !running_var))
        return ct_graph_fail(g, CT_ERR_INVALID, "%s: eval mode needs running_mean and running_var", op);
    if ((running_mean == NULL) != (running_var == NULL))
        return ct_graph_fail(g, CT_ERR_INVALID, "%s: give both running_mean and running_var or neither", op);
    if (res && !ct_tensor_same_shape(res, x))
        return ct_graph_fail(g, CT_ERR_SHAPE, "%s: the residual's shape differs from the input's", op);
    ct_tensor *y = ct_tensor_new(g, x->ndim, x->shape);
    float *stats = ct_graph_alloc(g, (size_t)(2 * C) * sizeof(float));
    if (!y || !stats) return NULL;
    ct__bn_args a;
    memset(&a, 0, sizeof a);
    a.x = x->data, a.y = y->data;
    a.gamma = weight ? weight->data : NULL, a.beta = bias ? bias->data : NULL;
    a.mean = stats, a.invstd = stats + C;
    a.rmean = running_mean ? running_mean->data : NULL;
    a.rvar = running_var ? running_var->data : NULL;
    if (train && running_mean) a.run_mean = running_mean->data, a.run_var = running_var->data;
    /* the graph's override (precise batch norm's running mean of batches) */
    const float over = ct_graph_bn_momentum(g);
    a.momentum = train && over > 0.0f ? over : momentum, a.eps = eps;
    a.n = x->shape[0], a.c = C, a.s = x->numel / (a.n * C);
    a.train = train, a.relu = relu;
    a.res = res ? res->data : NULL;
    const ct_engine_opts *eo = ct_graph_engine(g);
    bool sync = train && eo && eo->allreduce_sum;
    double m_total = 0;
    if (sync && !ct__bn_sync_stats(g, &a, eo, &m_total))
        return ct_graph_status(g) != CT_OK
                   ? NULL
                   : ct_graph_fail(g, CT_ERR_IO, "%s: summing the statistics over processes failed", op);
    ct_parallel_for(ct__bn_pool(g, x->numel), C, 1, ct__kernels_of(g)->bn_forward, &a);
    ct_tensor *in[4] = {x, weight, bias, res};
    ct_node *node = ct_graph_record(g, op, ct__bn_backward, y, in, res ? 4 : 3);
    if (node) {
        ct__bn_ctx *cx = ct_graph_alloc(g, sizeof *cx);
        if (!cx) return NULL;
        cx->mean = a.mean, cx->invstd = a.invstd, cx->eps = eps;
        cx->train = train, cx->relu = relu;
        cx->sync = sync ? eo->allreduce_sum : NULL;
        cx->sync_ctx = sync ? eo->allreduce_ctx : NULL;
        cx->m_total = m_total;
        node->ctx = cx;
    }
    return y;
}

ct_tensor *ct_batchnorm(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                        ct_tensor *running_mean, ct_tensor *running_var, float momentum, float eps) {
    return ct__batchnorm(g, "batchnorm", false, x, weight, bias, running_mean, running_var, momentum,
                         eps, NULL);
}

ct_tensor *ct_batchnorm_relu(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                             ct_tensor *running_mean, ct_tensor *running_var, float momentum,
                             float eps) {
    return ct__batchnorm(g, "batchnorm_relu", true, x, weight, bias, running_mean, running_var,
                         momentum, eps, NULL);
}

ct_tensor *ct_batchnorm_add_relu(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                                 ct_tensor *running_mean, ct_tensor *running_var, float momentum, float eps,
                                 ct_tensor *residual) {
    if (g && !residual) return ct_graph_fail(g, CT_ERR_INVALID, "batchnorm_add_relu: NULL residual");
    return ct__batchnorm(g, "batchnorm_add_relu", true, x, weight, bias, running_mean, running_var,
                         momentum, eps, residual);
}

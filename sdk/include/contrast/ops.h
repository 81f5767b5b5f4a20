/* contrast SDK — differentiable ops.
 *
 * Every op takes the graph first, returns a new arena tensor (or NULL after
 * setting the graph's sticky error), and records a tape node when an input
 * requires a gradient. Shapes are given in the comment above each op.
 * Inputs are never modified, except where an op says "in place". */
#ifndef CONTRAST_OPS_H
#define CONTRAST_OPS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear algebra ---------------------------------------------------- */

/* a (M,K) x b (K,N) -> (M,N); trans_a/trans_b read a/b transposed. */
ct_tensor *ct_matmul(ct_graph *g, ct_tensor *a, ct_tensor *b, bool trans_a, bool trans_b);

/* x (N,IN), w (OUT,IN) (PyTorch layout), b (OUT) or NULL -> (N,OUT). */
ct_tensor *ct_linear(ct_graph *g, ct_tensor *x, ct_tensor *w, ct_tensor *b);

/* x (N,C,H,W), w (O,C/groups... groups=1 only,KH,KW), b (O) or NULL.
 * -> (N,O,HO,WO) with HO = (H + 2*pad - KH)/stride + 1. */
ct_tensor *ct_conv2d(ct_graph *g, ct_tensor *x, ct_tensor *w, ct_tensor *b, int stride, int pad);

/* x (N,C,T,H,W), w (O,C,KT,KH,KW) (PyTorch's Conv3d layout), b (O) or NULL;
 * stride and pad per dimension {t, h, w}. -> (N,O,TO,HO,WO) with
 * TO = (T + 2*pad[0] - KT)/stride[0] + 1 (likewise HO, WO). A (KT,1,1)
 * kernel is a temporal convolution, the temporal part of clip encoders.
 * Results do not depend on the graph pool's size. Since ABI 1.2. */
ct_tensor *ct_conv3d(ct_graph *g, ct_tensor *x, ct_tensor *w, ct_tensor *b, const int stride[3], const int pad[3]);

/* ---- normalisation ----------------------------------------------------- */

/* Batch norm over (N,C) or (N,C,H,W), per channel C. weight/bias (C) may be
 * NULL (affine off). In training mode (ct_graph_is_train) uses the batch
 * statistics and updates running_mean/running_var in place with
 * `momentum` (PyTorch convention: new = (1-m)*old + m*batch, unbiased var);
 * in eval mode uses the running statistics. running_* may be NULL in
 * training mode (no tracking). */
ct_tensor *ct_batchnorm(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                        ct_tensor *running_mean, ct_tensor *running_var, float momentum, float eps);

/* Row-wise L2 normalisation of (N,D): x / max(||x||, eps). */
ct_tensor *ct_l2_normalize(ct_graph *g, ct_tensor *x, float eps);

/* Since 1.2. The same rule on a plain row-major array in place, outside any
 * graph (evaluator features, cluster prototypes): each of the `rows` rows of
 * d floats becomes row / max(||row||, eps); a zero row stays zero. The norm
 * is summed in double, as ct_l2_normalize does, and the reciprocal taken in
 * double too, so a row may differ from the graph op's by one rounding. */
void ct_rows_l2_normalize(float *x, int64_t rows, int64_t d, float eps);

/* ---- activations and elementwise -------------------------------------- */

ct_tensor *ct_relu(ct_graph *g, ct_tensor *x);
ct_tensor *ct_sigmoid(ct_graph *g, ct_tensor *x);
ct_tensor *ct_tanh(ct_graph *g, ct_tensor *x);
ct_tensor *ct_exp(ct_graph *g, ct_tensor *x);
ct_tensor *ct_ln(ct_graph *g, ct_tensor *x); /* natural log, x > 0 (named ct_ln: ct_log is the logging call of plugin.h) */

/* Same-shape elementwise a + b, a * b; and a + b followed by ReLU (the
 * residual join, fused to save a pass over memory). */
ct_tensor *ct_add(ct_graph *g, ct_tensor *a, ct_tensor *b);
ct_tensor *ct_mul(ct_graph *g, ct_tensor *a, ct_tensor *b);
ct_tensor *ct_add_relu(ct_graph *g, ct_tensor *a, ct_tensor *b);

/* x * s (scalar constant). */
ct_tensor *ct_scale(ct_graph *g, ct_tensor *x, float s);

/* x (N,C,...) + bias (C) broadcast over all but dim 1. */
ct_tensor *ct_add_bias(ct_graph *g, ct_tensor *x, ct_tensor *bias);

/* ---- pooling ----------------------------------------------------------- */

/* (N,C,H,W) -> (N,C,HO,WO); padding counts as -inf for max, excluded for avg. */
ct_tensor *ct_maxpool2d(ct_graph *g, ct_tensor *x, int k, int stride, int pad);
ct_tensor *ct_avgpool2d(ct_graph *g, ct_tensor *x, int k, int stride, int pad);

/* (N,C,H,W) -> (N,C). */
ct_tensor *ct_global_avgpool(ct_graph *g, ct_tensor *x);

/* ---- shape ------------------------------------------------------------- */

/* Same data, new shape with the same numel (a copy-free view in the arena). */
ct_tensor *ct_reshape(ct_graph *g, ct_tensor *x, int ndim, const int64_t *shape);

/* Permute dimensions: out.shape[i] = x.shape[perm[i]]. */
ct_tensor *ct_permute(ct_graph *g, ct_tensor *x, const int *perm);

/* Concatenate n tensors along `dim` (other dims equal). */
ct_tensor *ct_concat(ct_graph *g, ct_tensor *const *xs, int n, int dim);

/* x[..., start:start+len, ...] along `dim`. */
ct_tensor *ct_slice(ct_graph *g, ct_tensor *x, int dim, int64_t start, int64_t len);

/* Rows of x (N,...) chosen by idx[0..m) -> (m,...). Backward scatters-adds. */
ct_tensor *ct_index_select(ct_graph *g, ct_tensor *x, const int64_t *idx, int64_t m);

/* x (N,D), idx (N): out[i] = x[i, idx[i]] -> (N). */
ct_tensor *ct_gather(ct_graph *g, ct_tensor *x, const int64_t *idx);

/* ---- reductions -------------------------------------------------------- */

ct_tensor *ct_sum(ct_graph *g, ct_tensor *x);  /* -> scalar */
ct_tensor *ct_mean(ct_graph *g, ct_tensor *x); /* -> scalar */

/* Row-wise over the last dim of (N,D): -> (N,D) / (N,D) / (N). */
ct_tensor *ct_softmax(ct_graph *g, ct_tensor *x);
ct_tensor *ct_log_softmax(ct_graph *g, ct_tensor *x);
ct_tensor *ct_logsumexp(ct_graph *g, ct_tensor *x);

/* ---- losses (scalar outputs, mean over rows) --------------------------- */

/* logits (N,C), labels (N) in [0,C); rows with label < 0 are ignored. */
ct_tensor *ct_cross_entropy(ct_graph *g, ct_tensor *logits, const int32_t *labels);

/* logits (N,C), targets (N,C) rows summing to 1: mean_i -sum_c t log softmax. */
ct_tensor *ct_cross_entropy_soft(ct_graph *g, ct_tensor *logits, const float *targets);

/* The InfoNCE building block. z (M,D) rows (usually L2-normalised), logits
 * s_ij = z_i.z_j / temperature with the diagonal excluded; positive mask by
 * group: rows i != j with group[i] == group[j] are positives of each other.
 * loss = mean_i mean_{p in pos(i)} [ logsumexp_{j != i} s_ij - s_ip ].
 * With 2N views grouped as (k, k) this is SimCLR's NT-Xent. Computed with a
 * max-shifted log-sum-exp, so it is stable at temperature 0.05. */
ct_tensor *ct_nt_xent(ct_graph *g, ct_tensor *z, const int32_t *group, float temperature);

/* InfoNCE with explicit positives and negatives: q (N,D), k (N,D) positive
 * keys, neg (K,D) negatives (constant, no gradient) or NULL.
 * logits_i = [q_i.k_i, q_i.neg_j...] / T; loss = mean CE with target 0. */
ct_tensor *ct_info_nce(ct_graph *g, ct_tensor *q, ct_tensor *k, const ct_tensor *neg, float temperature);

/* ---- fused ops (added for the engine's speed; add-only) ----------------- */

/* relu(batchnorm(x)) in one pass: same arguments and semantics as
 * ct_batchnorm followed by ct_relu, one fewer activation-sized read and
 * write in forward and backward. */
ct_tensor *ct_batchnorm_relu(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                             ct_tensor *running_mean, ct_tensor *running_var, float momentum,
                             float eps);

/* relu(batchnorm(x) + residual) in one pass: a ResNet block's last batch
 * norm and its residual join, same results as ct_batchnorm followed by
 * ct_add_relu (bit-identical), without materialising batchnorm(x); the
 * backward writes x's and the residual's gradients in one pass. residual
 * has x's shape and may be any tensor (it gets a gradient when it requires
 * one). Since ABI 1.1. */
ct_tensor *ct_batchnorm_add_relu(ct_graph *g, ct_tensor *x, ct_tensor *weight, ct_tensor *bias,
                                 ct_tensor *running_mean, ct_tensor *running_var, float momentum, float eps,
                                 ct_tensor *residual);

/* Group norm (Wu & He, PyTorch's nn.GroupNorm): x (N,C,...) with C a
 * multiple of `groups`; for every sample the channels are split into
 * `groups` consecutive groups, each normalised over its channels and
 * positions with its own mean and biased variance, then
 * y = xhat * weight[c] + bias[c] (weight/bias (C) may be NULL: affine
 * off). Statistics never cross samples and there are no running
 * statistics, so training and evaluation compute the same function
 * (groups = 1 is layer norm over (C,...), groups = C instance norm).
 * eps > 0. Since ABI 1.2. */
ct_tensor *ct_group_norm(ct_graph *g, ct_tensor *x, int groups, ct_tensor *weight, ct_tensor *bias, float eps);

#ifdef __cplusplus
}
#endif
#endif

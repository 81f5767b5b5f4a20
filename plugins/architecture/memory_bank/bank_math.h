/* The memory bank's arithmetic, without graph or plugin state, so that
 * tests/test_memory_bank.c checks it on known vectors directly.
 *
 *   bank_ema_row          m <- beta*m + (1-beta)*f, then m <- m/||m||
 *   bank_sample_negatives K indices uniform over [0, n) minus the positive
 *   bank_row_logits       s_j = q . bank[idx_j] / T for one query
 *   bank_nce_row          InstDisc's NCE loss of one row of logits and its
 *                         gradient (noise distribution uniform 1/n) */
#ifndef CT_BANK_MATH_H
#define CT_BANK_MATH_H

#include <math.h>
#include <stdint.h>

#include <contrast/rng.h>

/* Exponential moving average of one bank row towards the embedding f,
 * renormalised to unit length (as InstDisc's lemniscate code). */
static inline void bank_ema_row(float *m, const float *f, int64_t d, float beta) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
        m[j] = beta * m[j] + (1.0f - beta) * f[j];
        s += (double)m[j] * m[j];
    }
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int64_t j = 0; j < d; j++) m[j] *= inv;
}

/* k negatives for `item` among n items (n >= 2), uniform with replacement
 * over every index but `item`: draw from [0, n-1) and skip over item. */
static inline void bank_sample_negatives(ct_rng *r, int64_t item, int64_t n, int64_t k, int64_t *out) {
    for (int64_t j = 0; j < k; j++) {
        int64_t v = (int64_t)ct_rng_below(r, (uint32_t)(n - 1));
        out[j] = v >= item ? v + 1 : v;
    }
}

/* Logits of one query q (d) against `pos` (d) then bank rows idx[0..k):
 * out[0] = q.pos / T, out[1+j] = q.bank[idx[j]] / T. */
static inline void bank_row_logits(const float *q, const float *pos, const float *bank, const int64_t *idx,
                                   int64_t k, int64_t d, float inv_t, float *out) {
    for (int64_t j = 0; j <= k; j++) {
        const float *m = j == 0 ? pos : bank + idx[j - 1] * d;
        float s = 0;
        for (int64_t c = 0; c < d; c++) s += q[c] * m[c];
        out[j] = s * inv_t;
    }
}

/* softplus(x) = log(1 + e^x), without overflow. */
static inline double bank_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static inline double bank_sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* NCE of one row s[0..k] (s[0] the positive, already divided by T) with
 * P(i|v) = exp(s)/Z and noise P_n = 1/n, k noise samples:
 *   h(s) = P / (P + k/n) = sigmoid(s - shift), shift = log(Z k / n);
 *   loss = -log h(s_0) - sum_j log(1 - h(s_j)) = softplus(shift - s_0) + sum_j softplus(s_j - shift).
 * Writes dloss/ds into grad (may be NULL); returns the loss. */
static inline double bank_nce_row(const float *s, int64_t k, double shift, float *grad) {
    double loss = bank_softplus(shift - s[0]);
    if (grad) grad[0] = (float)-bank_sigmoid(shift - s[0]);
    for (int64_t j = 1; j <= k; j++) {
        loss += bank_softplus(s[j] - shift);
        if (grad) grad[j] = (float)bank_sigmoid(s[j] - shift);
    }
    return loss;
}

#endif

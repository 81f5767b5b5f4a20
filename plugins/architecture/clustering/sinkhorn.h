/* Sinkhorn-Knopp for SwAV's codes, without plugin state, so that
 * tests/test_clustering.c checks it directly.
 *
 * scores (B, K) row-major (sample b against prototype k). As SwAV's
 * distributed_sinkhorn with one process: Q = exp(scores / eps) viewed as
 * K x B, Q /= sum(Q), then `iters` times: every prototype row to total
 * 1/K, every sample column to total 1/B; finally Q *= B, so each sample's
 * code sums to 1 and each prototype receives about B/K of the mass (exactly
 * after enough iterations). The exponent is shifted by the global maximum
 * first (the normalisation removes the constant), so eps = 0.05 with
 * scores in [-1, 1] never overflows; sums are accumulated in double. */
#ifndef CT_SINKHORN_H
#define CT_SINKHORN_H

#include <math.h>
#include <stdint.h>

/* codes (B, K) from scores (B, K); work holds B*K doubles. */
static inline void swav_sinkhorn(const float *scores, int64_t B, int64_t K, double eps, int iters, double *work,
                                 float *codes) {
    double mx = -INFINITY, total = 0;
    for (int64_t i = 0; i < B * K; i++)
        if (scores[i] > mx) mx = scores[i];
    for (int64_t i = 0; i < B * K; i++) {
        work[i] = exp(((double)scores[i] - mx) / eps);
        total += work[i];
    }
    for (int64_t i = 0; i < B * K; i++) work[i] /= total;
    for (int it = 0; it < iters; it++) {
        for (int64_t k = 0; k < K; k++) {
            double s = 0;
            for (int64_t b = 0; b < B; b++) s += work[b * K + k];
            double f = s > 0 ? 1.0 / (s * (double)K) : 0.0;
            for (int64_t b = 0; b < B; b++) work[b * K + k] *= f;
        }
        for (int64_t b = 0; b < B; b++) {
            double s = 0, *row = work + b * K;
            for (int64_t k = 0; k < K; k++) s += row[k];
            double f = s > 0 ? 1.0 / (s * (double)B) : 0.0;
            for (int64_t k = 0; k < K; k++) row[k] *= f;
        }
    }
    for (int64_t i = 0; i < B * K; i++) codes[i] = (float)(work[i] * (double)B);
}

#endif

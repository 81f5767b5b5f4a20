/* MoCo's flat updates, without plugin state, so that tests/test_momentum.c
 * checks them directly:
 *   moco_ema       k <- m k + (1 - m) q, elementwise over a flat range
 *   moco_enqueue   FIFO ring of K rows: write n rows at *ptr with
 *                  wrap-around, advance *ptr by n modulo K (the oldest
 *                  rows are the ones overwritten)
 *   moco_split     sub-batch sizes of the shuffled key forward */
#ifndef CT_QUEUE_MATH_H
#define CT_QUEUE_MATH_H

#include <stdint.h>
#include <string.h>

/* Written as one expression so that a test computing m*k + (1-m)*q in
 * float gets the same bits (C11 without extensions does not contract
 * it into an FMA). */
static inline void moco_ema(float *k, const float *q, int64_t n, float m) {
    float one_m = 1.0f - m;
    for (int64_t i = 0; i < n; i++) k[i] = m * k[i] + one_m * q[i];
}

static inline void moco_enqueue(float *queue, int64_t cap, int64_t d, int64_t *ptr, const float *keys, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        memcpy(queue + ((*ptr + i) % cap) * d, keys + i * d, (size_t)d * sizeof *queue);
    *ptr = (*ptr + n) % cap;
}

/* Number of key sub-batches for n samples and `splits` requested: each
 * needs at least 2 samples (batch-norm statistics of one sample are
 * degenerate), so fewer are used for small batches. Sub-batch s covers
 * [s*n/S, (s+1)*n/S). */
static inline int moco_splits(int64_t n, int splits) {
    int s = splits < 1 ? 1 : splits;
    while (s > 1 && n / s < 2) s--;
    return s;
}

#endif

/* contrast SDK — counter-based random numbers (Philox4x32-10).
 *
 * A stream is keyed by (seed, stream id) and advanced by a counter, so the
 * numbers for (seed, epoch, item, view) are the same whatever thread draws
 * them and in whatever order. ct_rng is a small value type: copy it freely. */
#ifndef CONTRAST_RNG_H
#define CONTRAST_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_rng {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int have; /* unused words left in buf */
} ct_rng;

/* Seed a stream. Different (seed, stream) pairs give independent sequences. */
void ct_rng_init(ct_rng *r, uint64_t seed, uint64_t stream);

/* Stream for one augmentation draw: keyed by seed and (epoch, item, view). */
void ct_rng_init_keyed(ct_rng *r, uint64_t seed, uint64_t epoch, uint64_t item, uint64_t view);

/* The raw Philox4x32-10 block function: four 32-bit outputs for a counter. */
void ct_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

uint32_t ct_rng_u32(ct_rng *r);
uint64_t ct_rng_u64(ct_rng *r);
float ct_rng_uniform(ct_rng *r);                  /* [0, 1) */
float ct_rng_uniform_range(ct_rng *r, float lo, float hi); /* [lo, hi) */
float ct_rng_normal(ct_rng *r);                   /* N(0,1), Box-Muller */
uint32_t ct_rng_below(ct_rng *r, uint32_t n);     /* [0, n), unbiased; n > 0 */
int ct_rng_bernoulli(ct_rng *r, float p);         /* 1 with probability p */

/* Fisher-Yates shuffle of idx[0..n). */
void ct_rng_shuffle(ct_rng *r, int64_t *idx, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11, the
 * Random123 generator). A stream is (key, counter high words); each block
 * call yields four 32-bit words and bumps the low counter words, so any
 * position of any stream can be computed without the ones before it. */
#include <math.h>

#include "contrast/rng.h"

#define CT__PHILOX_M0 0xD2511F53u
#define CT__PHILOX_M1 0xCD9E8D57u
#define CT__PHILOX_W0 0x9E3779B9u
#define CT__PHILOX_W1 0xBB67AE85u

void ct_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]) {
    uint32_t k0 = key[0], k1 = key[1];
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)CT__PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)CT__PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += CT__PHILOX_W0;
        k1 += CT__PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void ct_rng_init(ct_rng *r, uint64_t seed, uint64_t stream) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    r->have = 0;
}

void ct_rng_init_keyed(ct_rng *r, uint64_t seed, uint64_t epoch, uint64_t item, uint64_t view) {
    /* Hash (epoch, item, view) through Philox itself under a key derived
     * from the seed; the 128-bit result becomes the stream's key and high
     * counter words. A distinct domain constant keeps these streams apart
     * from ct_rng_init's. */
    uint32_t key[2] = {(uint32_t)seed ^ 0x6b657965u, (uint32_t)(seed >> 32)};
    uint32_t in[4] = {(uint32_t)item, (uint32_t)(item >> 32), (uint32_t)epoch,
                      ((uint32_t)(epoch >> 32) * 0x10001u) ^ ((uint32_t)view << 8) ^ 0x5eedu};
    uint32_t h[4];
    ct_philox4x32(key, in, h);
    if (view >> 24) { /* very large view ids: fold the rest in */
        uint32_t in2[4] = {h[0], h[1], (uint32_t)(view >> 24), (uint32_t)(view >> 56)};
        ct_philox4x32(key, in2, h);
    }
    r->key[0] = h[0];
    r->key[1] = h[1];
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = h[2];
    r->ctr[3] = h[3];
    r->have = 0;
}

uint32_t ct_rng_u32(ct_rng *r) {
    if (r->have <= 0) {
        ct_philox4x32(r->key, r->ctr, r->buf);
        if (++r->ctr[0] == 0) ++r->ctr[1];
        r->have = 4;
    }
    return r->buf[4 - r->have--];
}

uint64_t ct_rng_u64(ct_rng *r) {
    uint64_t hi = ct_rng_u32(r);
    return (hi << 32) | ct_rng_u32(r);
}

float ct_rng_uniform(ct_rng *r) { return (float)(ct_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float ct_rng_uniform_range(ct_rng *r, float lo, float hi) {
    float x = lo + (hi - lo) * ct_rng_uniform(r);
    return x < hi ? x : lo; /* rounding could reach hi; keep the interval half-open */
}

float ct_rng_normal(ct_rng *r) {
    /* Box-Muller with u1 in (0, 1] so the log is finite. Only the cosine
     * half is used so the stream stays a plain value without a cache. */
    double u1 = ((double)ct_rng_u32(r) + 1.0) * (1.0 / 4294967296.0);
    double u2 = (double)ct_rng_u32(r) * (1.0 / 4294967296.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t ct_rng_below(ct_rng *r, uint32_t n) {
    /* Lemire's multiply-and-reject: unbiased, usually one draw. */
    uint64_t m = (uint64_t)ct_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)ct_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int ct_rng_bernoulli(ct_rng *r, float p) { return ct_rng_uniform(r) < p; }

static uint64_t ct__rng_below64(ct_rng *r, uint64_t n) {
    if (n <= UINT32_MAX) return ct_rng_below(r, (uint32_t)n);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = ct_rng_u64(r);
    while (x >= limit);
    return x % n;
}

void ct_rng_shuffle(ct_rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ct__rng_below64(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

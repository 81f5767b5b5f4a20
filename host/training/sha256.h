/* SHA-256 (FIPS 180-4), small and dependency-free: used to fingerprint the
 * resolved config stored in checkpoint metadata. */
#ifndef CONTRAST_HOST_SHA256_H
#define CONTRAST_HOST_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct ct_sha256 {
    uint32_t h[8];
    uint64_t len;        /* bytes hashed so far */
    uint8_t block[64];
    size_t used;         /* bytes pending in block */
} ct_sha256;

/* Start a new hash. */
void ct_sha256_init(ct_sha256 *s);

/* Feed n bytes. */
void ct_sha256_update(ct_sha256 *s, const void *data, size_t n);

/* Finish; writes the 32-byte digest. The state must be re-initialised
 * before reuse. */
void ct_sha256_final(ct_sha256 *s, uint8_t digest[32]);

/* One-shot: the lowercase hex digest of data (65 bytes with the NUL). */
void ct_sha256_hex(const void *data, size_t n, char hex[65]);

#endif

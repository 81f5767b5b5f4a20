/* Fashion-MNIST items (fmnist_items.h). */
#include "data/fmnist_items.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const char *const ct_fmnist_class_names[10] = {"0_tshirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat",
                                               "5_sandal",     "6_shirt",   "7_sneaker",  "8_bag",   "9_ankle_boot"};

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

/* An IDX file (gzipped): magic, dims, then bytes; `dims` 3 (images) or 1. */
static ct_status read_idx(const char *path, int dims, uint8_t **data, int64_t *n, ct_error *err) {
    gzFile f = gzopen(path, "rb");
    if (!f) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t hdr[16];
    int hn = 4 + 4 * dims;
    ct_status st = CT_OK;
    if (gzread(f, hdr, (unsigned)hn) != hn || be32(hdr) != 0x800u + (uint32_t)dims ||
        (dims == 3 && (be32(hdr + 8) != CT_FMNIST_ITEM || be32(hdr + 12) != CT_FMNIST_ITEM)) || be32(hdr + 4) > 1000000)
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: not a Fashion-MNIST IDX file", path);
    size_t per = dims == 3 ? CT_FMNIST_ITEM * CT_FMNIST_ITEM : 1;
    if (st == CT_OK) {
        *n = be32(hdr + 4);
        size_t bytes = (size_t)*n * per;
        if (!(*data = malloc(bytes ? bytes : 1))) st = ct_error_set(err, CT_ERR_NOMEM, "out of memory");
        else if (gzread(f, *data, (unsigned)bytes) != (int)bytes)
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: truncated", path);
    }
    gzclose(f);
    return st;
}

ct_status ct_fmnist_items_load(const char *dir, int split, ct_fmnist_items *d, ct_error *err) {
    char ip[700], lp[700];
    const char *pre = split == 0 ? "train" : "t10k";
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, pre);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, pre);
    memset(d, 0, sizeof *d);
    int64_t nl = 0;
    ct_status st = read_idx(ip, 3, &d->images, &d->n, err);
    if (st == CT_OK) st = read_idx(lp, 1, &d->labels, &nl, err);
    if (st == CT_OK && nl != d->n) st = ct_error_set(err, CT_ERR_FORMAT, "%s and %s hold different counts", ip, lp);
    for (int64_t i = 0; st == CT_OK && i < d->n; i++)
        if (d->labels[i] > 9) st = ct_error_set(err, CT_ERR_FORMAT, "%s: label %d is not a class 0..9", lp, d->labels[i]);
    return st;
}

void ct_fmnist_items_free(ct_fmnist_items *d) {
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

ct_status ct_fmnist_items_pool(const ct_fmnist_items *d, uint64_t seed, uint64_t key, int pool, int64_t *out,
                               ct_error *err) {
    int64_t *perm = malloc((size_t)(d->n ? d->n : 1) * sizeof *perm);
    if (!perm) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < d->n; i++) perm[i] = i;
    ct_rng r;
    ct_rng_init_keyed(&r, seed, key, 0, 0);
    for (int64_t i = d->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(ct_rng_u64(&r) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int per = pool / 10, taken[10] = {0}, filled = 0;
    for (int64_t i = 0; i < d->n && filled < pool; i++) {
        int c = d->labels[perm[i]];
        if (taken[c] == per) continue;
        out[c * per + taken[c]++] = perm[i];
        filled++;
    }
    free(perm);
    if (filled < pool) return ct_error_set(err, CT_ERR_INVALID, "--pool %d: the split has too few items of some class", pool);
    return CT_OK;
}

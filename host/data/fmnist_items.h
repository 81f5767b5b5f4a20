/* Fashion-MNIST items for the synthetic video sets of `contrast
 * make-dataset` (moving-fmnist, multiview-fmnist): the gzipped IDX files
 * read whole, and class-balanced pools of items drawn from a seed. */
#ifndef CONTRAST_HOST_FMNIST_ITEMS_H
#define CONTRAST_HOST_FMNIST_ITEMS_H

#include <stdint.h>

#include "contrast/contrast.h"

#define CT_FMNIST_ITEM 28 /* item side in pixels */

extern const char *const ct_fmnist_class_names[10]; /* "0_tshirt_top", ... */

typedef struct ct_fmnist_items {
    uint8_t *images; /* n x 28 x 28 bytes */
    uint8_t *labels; /* n classes 0..9 */
    int64_t n;
} ct_fmnist_items;

/* Split 0 (train-*) or 1 (t10k-*) from dir's four .gz files; errors name
 * the file. Free with ct_fmnist_items_free. */
ct_status ct_fmnist_items_load(const char *dir, int split, ct_fmnist_items *d, ct_error *err);
void ct_fmnist_items_free(ct_fmnist_items *d);

/* `pool` items (a multiple of 10), pool/10 of each class drawn without
 * replacement by the stream (seed, key), class-major: slot c * pool/10 + k.
 * The error names --pool when a class has too few items. */
ct_status ct_fmnist_items_pool(const ct_fmnist_items *d, uint64_t seed, uint64_t key, int pool, int64_t *out,
                               ct_error *err);

#endif

/* Which training items a fine-tune sees: the labelled ones, or a
 * class-balanced fraction of them drawn from a seed, and the index lists
 * written for other tools (see finetune.h). */
#include "finetune.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ct_status finetune_labelled(const int32_t *labels, int64_t n, int64_t **items, int64_t *count, ct_error *err) {
    *items = malloc((size_t)(n ? n : 1) * sizeof **items);
    if (!*items) return ct_error_set(err, CT_ERR_NOMEM, "out of memory for %lld indices", (long long)n);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] >= 0) (*items)[k++] = i;
    *count = k;
    return CT_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The per-class share of a fraction: round(fraction * labelled / classes),
 * at least one item. */
static int64_t per_class(int64_t labelled, int classes, double fraction) {
    int64_t k = (int64_t)llround(fraction * (double)labelled / (double)classes);
    return k > 0 ? k : 1;
}

ct_status finetune_balanced_subset(const int32_t *labels, int64_t n, int classes, double fraction,
                                   uint64_t seed, int64_t **items, int64_t *count, ct_error *err) {
    *items = NULL;
    *count = 0;
    if (classes < 1 || !(fraction > 0 && fraction <= 1))
        return ct_error_set(err, CT_ERR_INVALID, "subset: fraction %g of %d classes", fraction, classes);
    int64_t *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    int64_t *out = malloc((size_t)(n ? n : 1) * sizeof *out);
    if (!order || !out) {
        free(order);
        free(out);
        return ct_error_set(err, CT_ERR_NOMEM, "subset: out of memory");
    }
    int64_t labelled = 0;
    for (int64_t i = 0; i < n; i++) labelled += labels[i] >= 0 && labels[i] < classes;
    int64_t want = per_class(labelled, classes, fraction), k = 0;
    for (int c = 0; c < classes; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (labels[i] == c) order[m++] = i;
        /* Keyed by (seed, class) only: every fraction reads a prefix of the
         * same permutation, so 1% of the images lie inside the 10%. */
        ct_rng rng;
        ct_rng_init_keyed(&rng, seed, 0x5e111ull, (uint64_t)c, 0);
        ct_rng_shuffle(&rng, order, m);
        int64_t take = want < m ? want : m;
        memcpy(out + k, order, (size_t)take * sizeof *out);
        k += take;
    }
    free(order);
    qsort(out, (size_t)k, sizeof *out, cmp_i64);
    *items = out;
    *count = k;
    return CT_OK;
}

ct_status finetune_write_indices(const char *dir, const char *name, const char *header, const int64_t *items,
                                 int64_t count, char *path, size_t path_n, ct_error *err) {
    char tmp[1300];
    snprintf(path, path_n, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return ct_error_set(err, CT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "# %s\n", header);
    for (int64_t i = 0; i < count; i++) fprintf(f, "%lld\n", (long long)items[i]);
    bool ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        ct_status st = ct_error_set(err, CT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return st;
    }
    return CT_OK;
}

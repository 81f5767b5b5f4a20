/* Embeddings for the report: encoder features (and the projection head's
 * outputs, when the architecture has the SDK's head) of chosen items of a
 * dataset through the evaluation transforms, the model in eval mode; and
 * their 2-D PCA map. */
#ifndef CONTRAST_HOST_REPORT_EMBEDDING_H
#define CONTRAST_HOST_REPORT_EMBEDDING_H

#include <stdint.h>

#include "training/model.h"

typedef struct ct_embedding {
    int64_t n, dim, zdim;
    float *h;        /* n x dim encoder features */
    float *z;        /* n x zdim projection-head outputs; NULL without a head */
    int32_t *labels; /* n */
    int64_t *items;  /* n dataset indices */
} ct_embedding;

/* about `max` items of `count`, evenly spaced (malloc'd; *n of them). */
int64_t *ct_spread_items(int64_t count, int64_t max, int64_t *n);

/* Embed items[0..n) of `data` (copied). The head is the architecture's
 * "head" (a CT_MLP_HEAD_PARAMS schema), rebuilt from its settings with the
 * model's weights; an architecture without one gives z = NULL. */
ct_status ct_embed_items(ct_model *m, ct_dataset *data, const int64_t *items, int64_t n, ct_embedding *e,
                         ct_error *err);
void ct_embedding_free(ct_embedding *e);

/* The rows of x (n x d) centred and projected on their two leading
 * principal axes (power iteration with deflation on the covariance) into
 * px, py (n each); the share of variance those two axes hold and the
 * participation ratio (sum of eigenvalues)^2 / (sum of their squares), an
 * effective dimensionality (1 = collapsed onto a line, d = isotropic). */
ct_status ct_pca2(const float *x, int64_t n, int64_t d, float *px, float *py, double *share2,
                  double *participation, ct_error *err);

#endif

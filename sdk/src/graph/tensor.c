/* Shape helpers shared by the graph, the parameter store and the ops. */
#include <stdio.h>

#include "contrast/tensor.h"

int64_t ct_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

bool ct_tensor_same_shape(const ct_tensor *a, const ct_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

char *ct_shape_str(const ct_tensor *t, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    size_t used = 0;
    int w = snprintf(buf, n, "[");
    used = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < t->ndim && used < n; i++) {
        w = snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)t->shape[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

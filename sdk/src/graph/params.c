/* The parameter store: declare, finalize, then one flat buffer each for
 * trainable data, their gradients, and persistent buffers.
 *
 * Initialisation is counter-based: entry e draws from the Philox stream
 * keyed by (seed, hash of its name), so weights do not depend on the order
 * or timing of declarations, only on the names and the seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/params.h"

typedef struct ct__param_entry {
    char *name;
    ct_tensor *t;
    ct_param_kind kind;
    ct_init init;
    float init_arg;
    uint32_t flags;
    bool frozen;
    size_t offset; /* floats into the kind's flat buffer */
} ct__param_entry;

struct ct_params {
    uint64_t seed;
    ct__param_entry *e;
    size_t n, cap;
    bool finalized;
    float *data, *grad, *buffers;
    size_t n_train, n_buffer;
};

ct_params *ct_params_new(uint64_t seed) {
    ct_params *p = calloc(1, sizeof *p);
    if (p) p->seed = seed;
    return p;
}

void ct_params_free(ct_params *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->e[i].name);
        free(p->e[i].t);
    }
    free(p->e);
    free(p->data);
    free(p->grad);
    free(p->buffers);
    free(p);
}

ct_tensor *ct_params_add(ct_params *p, const char *name, ct_param_kind kind, int ndim,
                         const int64_t *shape, ct_init init, float init_arg, uint32_t flags,
                         ct_error *err) {
    if (p->finalized) {
        ct_error_set(err, CT_ERR_INVALID, "params: cannot declare '%s' after finalize", name);
        return NULL;
    }
    if (!name || !*name) {
        ct_error_set(err, CT_ERR_INVALID, "params: empty parameter name");
        return NULL;
    }
    if (ct_params_find(p, name)) {
        ct_error_set(err, CT_ERR_EXISTS, "params: duplicate name '%s'", name);
        return NULL;
    }
    if (ndim < 0 || ndim > CT_MAX_DIMS) {
        ct_error_set(err, CT_ERR_SHAPE, "params: '%s' has %d dimensions (at most %d)", name, ndim,
                     CT_MAX_DIMS);
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            ct_error_set(err, CT_ERR_SHAPE, "params: '%s' dimension %d has size %lld", name, i,
                         (long long)shape[i]);
            return NULL;
        }
    }
    if (kind != CT_PARAM_TRAINABLE && kind != CT_PARAM_BUFFER) {
        ct_error_set(err, CT_ERR_INVALID, "params: '%s' has an unknown kind %d", name, (int)kind);
        return NULL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        ct__param_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) {
            ct_error_set(err, CT_ERR_NOMEM, "params: out of memory declaring '%s'", name);
            return NULL;
        }
        p->e = e;
        p->cap = cap;
    }
    ct_tensor *t = calloc(1, sizeof *t);
    char *copy = strdup(name);
    if (!t || !copy) {
        free(t);
        free(copy);
        ct_error_set(err, CT_ERR_NOMEM, "params: out of memory declaring '%s'", name);
        return NULL;
    }
    for (int i = 0; i < CT_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->ndim = ndim;
    t->numel = ct_shape_numel(ndim, shape);
    t->node = -1;
    t->flags = kind == CT_PARAM_TRAINABLE ? (CT_TENSOR_PARAM | CT_TENSOR_REQUIRES_GRAD)
                                          : CT_TENSOR_BUFFER;
    p->e[p->n++] = (ct__param_entry){copy, t, kind, init, init_arg, flags, false, 0};
    return t;
}

/* fan_in / fan_out as torch.nn.init computes them: dim 1 / dim 0 times the
 * receptive field (product of dims 2..). 1-D tensors use their length. */
static void ct__fans(const ct_tensor *t, double *fan_in, double *fan_out) {
    if (t->ndim < 2) {
        *fan_in = *fan_out = (double)(t->ndim ? t->shape[0] : 1);
        return;
    }
    double rf = 1;
    for (int i = 2; i < t->ndim; i++) rf *= (double)t->shape[i];
    *fan_in = (double)t->shape[1] * rf;
    *fan_out = (double)t->shape[0] * rf;
}

static uint64_t ct__fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void ct__fill_uniform(ct_rng *r, float *x, int64_t n, float bound) {
    for (int64_t i = 0; i < n; i++) x[i] = ct_rng_uniform_range(r, -bound, bound);
}

static void ct__fill_normal(ct_rng *r, float *x, int64_t n, float std) {
    for (int64_t i = 0; i < n; i++) x[i] = std * ct_rng_normal(r);
}

static void ct__fill_sphere(ct_rng *r, float *x, const ct_tensor *t) {
    int64_t rows = t->ndim ? t->shape[0] : 1, d = t->numel / rows;
    for (int64_t i = 0; i < rows; i++) {
        float *row = x + i * d;
        double ss = 0;
        do {
            ss = 0;
            for (int64_t j = 0; j < d; j++) {
                row[j] = ct_rng_normal(r);
                ss += (double)row[j] * row[j];
            }
        } while (ss == 0);
        float inv = (float)(1.0 / sqrt(ss));
        for (int64_t j = 0; j < d; j++) row[j] *= inv;
    }
}

static ct_status ct__init_entry(const ct_params *p, const ct__param_entry *e, ct_error *err) {
    ct_tensor *t = e->t;
    ct_rng r;
    ct_rng_init(&r, p->seed, ct__fnv1a(e->name));
    double fan_in, fan_out;
    ct__fans(t, &fan_in, &fan_out);
    switch (e->init) {
    case CT_INIT_ZEROS:
        memset(t->data, 0, (size_t)t->numel * sizeof(float));
        return CT_OK;
    case CT_INIT_ONES:
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = 1.0f;
        return CT_OK;
    case CT_INIT_KAIMING_NORMAL: /* mode=fan_out, nonlinearity=relu: gain sqrt(2) */
        ct__fill_normal(&r, t->data, t->numel, (float)sqrt(2.0 / fan_out));
        return CT_OK;
    case CT_INIT_KAIMING_UNIFORM: /* init_arg > 0 overrides fan_in (a bias's layer fan-in) */
    case CT_INIT_LINEAR_DEFAULT:  /* kaiming_uniform(a=sqrt(5)): bound = 1/sqrt(fan_in) */
        if (e->init_arg > 0) fan_in = e->init_arg;
        ct__fill_uniform(&r, t->data, t->numel, (float)(1.0 / sqrt(fan_in)));
        return CT_OK;
    case CT_INIT_NORMAL:
        ct__fill_normal(&r, t->data, t->numel, e->init_arg);
        return CT_OK;
    case CT_INIT_UNIFORM_SPHERE:
        ct__fill_sphere(&r, t->data, t);
        return CT_OK;
    case CT_INIT_FAN_IN_UNIFORM:
        if (!(e->init_arg > 0))
            return ct_error_set(err, CT_ERR_INVALID,
                                "params: '%s' uses FAN_IN_UNIFORM with fan_in %g (must be > 0)", e->name,
                                (double)e->init_arg);
        ct__fill_uniform(&r, t->data, t->numel, (float)(1.0 / sqrt((double)e->init_arg)));
        return CT_OK;
    }
    return ct_error_set(err, CT_ERR_INVALID, "params: '%s' has an unknown initialiser %d", e->name,
                        (int)e->init);
}

static float *ct__alloc_floats(size_t n) {
    void *mem = NULL;
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    if (posix_memalign(&mem, 64, bytes) != 0) return NULL;
    memset(mem, 0, bytes);
    return mem;
}

ct_status ct_params_finalize(ct_params *p, ct_error *err) {
    if (p->finalized) return ct_error_set(err, CT_ERR_INVALID, "params: finalize called twice");
    size_t nt = 0, nb = 0;
    for (size_t i = 0; i < p->n; i++) {
        ct__param_entry *e = &p->e[i];
        size_t *acc = e->kind == CT_PARAM_TRAINABLE ? &nt : &nb;
        e->offset = *acc;
        *acc += (size_t)e->t->numel;
    }
    p->data = ct__alloc_floats(nt);
    p->grad = ct__alloc_floats(nt);
    p->buffers = ct__alloc_floats(nb);
    if (!p->data || !p->grad || !p->buffers) {
        free(p->data);
        free(p->grad);
        free(p->buffers);
        p->data = p->grad = p->buffers = NULL;
        return ct_error_set(err, CT_ERR_NOMEM, "params: cannot allocate %zu + %zu floats", nt, nb);
    }
    p->n_train = nt;
    p->n_buffer = nb;
    for (size_t i = 0; i < p->n; i++) {
        ct__param_entry *e = &p->e[i];
        if (e->kind == CT_PARAM_TRAINABLE) {
            e->t->data = p->data + e->offset;
            e->t->grad = p->grad + e->offset;
            if (e->frozen) e->t->flags &= ~(uint32_t)CT_TENSOR_REQUIRES_GRAD;
        } else {
            e->t->data = p->buffers + e->offset;
        }
        ct_status st = ct__init_entry(p, e, err);
        if (st != CT_OK) return st;
    }
    p->finalized = true;
    return CT_OK;
}

ct_tensor *ct_params_find(const ct_params *p, const char *name) {
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->e[i].name, name) == 0) return p->e[i].t;
    return NULL;
}

size_t ct_params_count(const ct_params *p) { return p->n; }

ct_tensor *ct_params_at(const ct_params *p, size_t i, const char **name, ct_param_kind *kind,
                        uint32_t *flags) {
    if (i >= p->n) return NULL;
    if (name) *name = p->e[i].name;
    if (kind) *kind = p->e[i].kind;
    if (flags) *flags = p->e[i].flags;
    return p->e[i].t;
}

float *ct_params_data(const ct_params *p) { return p->data; }
float *ct_params_grad(const ct_params *p) { return p->grad; }
size_t ct_params_numel(const ct_params *p) { return p->n_train; }
float *ct_params_buffer_data(const ct_params *p) { return p->buffers; }
size_t ct_params_buffer_numel(const ct_params *p) { return p->n_buffer; }

size_t ct_params_offset(const ct_params *p, const ct_tensor *t) {
    for (size_t i = 0; i < p->n; i++)
        if (p->e[i].t == t) return p->e[i].offset;
    return (size_t)-1;
}

void ct_params_zero_grad(ct_params *p) {
    if (p->grad) memset(p->grad, 0, p->n_train * sizeof(float));
}

size_t ct_params_set_trainable(ct_params *p, const char *prefix, bool trainable) {
    size_t len = strlen(prefix), count = 0;
    for (size_t i = 0; i < p->n; i++) {
        ct__param_entry *e = &p->e[i];
        if (e->kind != CT_PARAM_TRAINABLE || strncmp(e->name, prefix, len) != 0) continue;
        e->frozen = !trainable;
        if (trainable)
            e->t->flags |= CT_TENSOR_REQUIRES_GRAD;
        else
            e->t->flags &= ~(uint32_t)CT_TENSOR_REQUIRES_GRAD;
        count++;
    }
    return count;
}

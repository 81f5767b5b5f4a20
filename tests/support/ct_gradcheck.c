/* Finite-difference gradient checker (see ct_gradcheck.h). */
#include "ct_gradcheck.h"
#include "ct_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/rng.h>

#define CT__GC_WORST 5

/* Weights of the scalar reduction: a fixed function of the element index. */
static float ct__gc_weight(int64_t k) {
    uint32_t key[2] = {0x67726164u, 0x63686b21u}, ctr[4] = {(uint32_t)k, (uint32_t)(k >> 32), 0, 0}, o[4];
    ct_philox4x32(key, ctr, o);
    return (float)((double)o[0] / 2147483648.0 - 1.0);
}

static void ct__gc_wsum_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0];
    float gy = node->out->grad[0];
    float *gx = ct_tensor_grad(g, x);
    if (!gx) return;
    for (int64_t k = 0; k < x->numel; k++) gx[k] += gy * ct__gc_weight(k);
}

/* L = sum_k w_k y_k, recorded so that backward seeds y's gradient with w. */
static ct_tensor *ct__gc_wsum(ct_graph *g, ct_tensor *y, double *value) {
    double acc = 0;
    for (int64_t k = 0; k < y->numel; k++) acc += (double)ct__gc_weight(k) * y->data[k];
    *value = acc;
    ct_tensor *loss = ct_tensor_new(g, 0, NULL);
    if (!loss) return NULL;
    loss->data[0] = (float)acc;
    ct_graph_record(g, "gradcheck_wsum", ct__gc_wsum_backward, loss, &y, 1);
    return loss;
}

/* Build once from `vals`; *value gets L in double. Leaves go to leaf[]. */
static ct_tensor *ct__gc_run(ct_graph *g, ct_gradcheck_fn build, ct_tensor **inputs, float **vals,
                             int n_in, void *ctx, ct_tensor **leaf, double *value) {
    ct_graph_reset(g);
    for (int i = 0; i < n_in; i++) {
        leaf[i] = ct_tensor_new(g, inputs[i]->ndim, inputs[i]->shape);
        if (!leaf[i]) return NULL;
        memcpy(leaf[i]->data, vals[i], (size_t)inputs[i]->numel * sizeof(float));
        leaf[i]->flags = CT_TENSOR_REQUIRES_GRAD;
    }
    ct_tensor *y = build(g, leaf, ctx);
    if (!y) return NULL;
    return ct__gc_wsum(g, y, value);
}

typedef struct {
    int input;
    int64_t index;
    double analytic, numeric, err;
} ct__gc_bad;

static void ct__gc_keep_worst(ct__gc_bad *worst, int *n_worst, ct__gc_bad b) {
    if (*n_worst < CT__GC_WORST) {
        worst[(*n_worst)++] = b;
        return;
    }
    int lo = 0;
    for (int i = 1; i < *n_worst; i++)
        if (worst[i].err < worst[lo].err) lo = i;
    if (b.err > worst[lo].err) worst[lo] = b;
}

int ct_gradcheck(ct_gradcheck_fn build, ct_tensor **inputs, int n_inputs, void *ctx, double eps,
                 double tol, char *report, size_t n) {
    char dummy[8];
    if (!report || n == 0) {
        report = dummy;
        n = sizeof dummy;
    }
    report[0] = '\0';
    ct_graph *g = ct_test_graph_new();
    ct_tensor **leaf = calloc((size_t)n_inputs, sizeof *leaf);
    float **vals = calloc((size_t)n_inputs, sizeof *vals);
    float **ana = calloc((size_t)n_inputs, sizeof *ana);
    int result = -1;
    if (!g || !leaf || !vals || !ana) {
        snprintf(report, n, "gradcheck: out of memory");
        goto done;
    }
    for (int i = 0; i < n_inputs; i++) {
        size_t bytes = (size_t)inputs[i]->numel * sizeof(float);
        vals[i] = malloc(bytes);
        ana[i] = calloc(1, bytes);
        if (!vals[i] || !ana[i]) {
            snprintf(report, n, "gradcheck: out of memory");
            goto done;
        }
        memcpy(vals[i], inputs[i]->data, bytes);
    }

    /* Analytic pass. */
    double l0;
    ct_tensor *loss = ct__gc_run(g, build, inputs, vals, n_inputs, ctx, leaf, &l0);
    if (!loss || ct_graph_backward(g, loss) != CT_OK) {
        snprintf(report, n, "gradcheck: build/backward failed: %s", ct_graph_error(g));
        goto done;
    }
    for (int i = 0; i < n_inputs; i++)
        if (leaf[i]->grad) memcpy(ana[i], leaf[i]->grad, (size_t)inputs[i]->numel * sizeof(float));

    /* Numeric pass: central differences, no tape needed. */
    ct_graph_set_grad(g, false);
    ct__gc_bad worst[CT__GC_WORST];
    int n_worst = 0, bad = 0;
    double max_err = 0;
    int64_t total = 0;
    for (int i = 0; i < n_inputs; i++) {
        for (int64_t k = 0; k < inputs[i]->numel; k++, total++) {
            float x0 = vals[i][k];
            float xp = (float)(x0 + eps), xm = (float)(x0 - eps);
            double lp, lm;
            vals[i][k] = xp;
            ct_tensor *a = ct__gc_run(g, build, inputs, vals, n_inputs, ctx, leaf, &lp);
            vals[i][k] = xm;
            ct_tensor *b = ct__gc_run(g, build, inputs, vals, n_inputs, ctx, leaf, &lm);
            vals[i][k] = x0;
            if (!a || !b) {
                snprintf(report, n, "gradcheck: build failed at input %d element %lld: %s", i,
                         (long long)k, ct_graph_error(g));
                goto done;
            }
            double num = (lp - lm) / ((double)xp - (double)xm);
            double an = ana[i][k];
            double scale = fmax(1.0, fmax(fabs(an), fabs(num)));
            double err = fabs(an - num) / scale;
            if (!(err <= max_err)) max_err = err; /* NaN propagates as a failure below */
            if (!(err <= tol)) {
                bad++;
                ct__gc_keep_worst(worst, &n_worst, (ct__gc_bad){i, k, an, num, isnan(err) ? INFINITY : err});
            }
        }
    }
    int used = snprintf(report, n, "gradcheck: %d of %lld elements differ (max rel err %.3g, tol %.3g)", bad,
                        (long long)total, max_err, tol);
    for (int w = 0; w < n_worst && used > 0 && (size_t)used < n; w++)
        used += snprintf(report + used, n - (size_t)used, "; in%d[%lld] analytic %.6g numeric %.6g",
                         worst[w].input, (long long)worst[w].index, worst[w].analytic, worst[w].numeric);
    result = bad;
done:
    for (int i = 0; i < n_inputs; i++) {
        if (vals) free(vals[i]);
        if (ana) free(ana[i]);
    }
    free(vals);
    free(ana);
    free(leaf);
    ct_graph_free(g);
    return result;
}

ct_tensor *ct_gradcheck_input(int ndim, const int64_t *shape, uint64_t seed) {
    ct_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    for (int i = 0; i < CT_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->ndim = ndim;
    t->numel = ct_shape_numel(ndim, shape);
    t->node = -1;
    t->data = malloc((size_t)t->numel * sizeof(float));
    if (!t->data) {
        free(t);
        return NULL;
    }
    ct_rng r;
    ct_rng_init(&r, seed, 0x6763);
    for (int64_t k = 0; k < t->numel; k++) t->data[k] = ct_rng_uniform_range(&r, -1.0f, 1.0f);
    return t;
}

void ct_gradcheck_input_free(ct_tensor *t) {
    if (!t) return;
    free(t->data);
    free(t);
}

/* Architecture health rows (see health.h). */
#include "report/health.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ct_health_row *add(ct_health *h, const char *what, ct_health_level level, const char *how) {
    if (h->n >= CT_HEALTH_ROWS) return NULL;
    ct_health_row *r = &h->row[h->n++];
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->how, sizeof r->how, "%s", how);
    r->level = level;
    r->value[0] = '\0';
    return r;
}

static void value(ct_health_row *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void value(ct_health_row *r, const char *fmt, ...) {
    if (!r) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->value, sizeof r->value, fmt, ap);
    va_end(ap);
}

static void normalise_row(float *v, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)v[j] * v[j];
    float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
    for (int64_t j = 0; j < d; j++) v[j] *= inv;
}

/* Mean per-dimension std of the L2-normalised rows, times sqrt(d). */
static double spread(const float *x, int64_t n, int64_t d) {
    float *row = malloc((size_t)d * sizeof *row);
    double *s = calloc((size_t)d, sizeof *s), *s2 = calloc((size_t)d, sizeof *s2), total = 0;
    if (!row || !s || !s2 || n < 2) {
        free(row), free(s), free(s2);
        return NAN;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(row, x + i * d, (size_t)d * sizeof *row);
        normalise_row(row, d);
        for (int64_t j = 0; j < d; j++) s[j] += row[j], s2[j] += (double)row[j] * row[j];
    }
    for (int64_t j = 0; j < d; j++) {
        double m = s[j] / (double)n, var = s2[j] / (double)n - m * m;
        total += sqrt(var > 0 ? var : 0);
    }
    free(row), free(s), free(s2);
    return total / (double)d * sqrt((double)d);
}

static void collapse_row(ct_health *h, const ct_embedding *e) {
    bool head = e->z != NULL;
    double v = head ? spread(e->z, e->n, e->zdim) : spread(e->h, e->n, e->dim);
    if (!isfinite(v)) return;
    ct_health_row *r = add(h, "collapse alarm", v < 0.1 ? CT_HEALTH_BAD : v < 0.3 ? CT_HEALTH_WARN : CT_HEALTH_OK,
                           head ? "spread of the L2-normalised projection-head outputs of the test sample: mean "
                                  "per-dimension std x sqrt(D); 1 = spread over the sphere, 0 = one point"
                                : "spread of the L2-normalised encoder features of the test sample: mean "
                                  "per-dimension std x sqrt(D); 1 = spread over the sphere, 0 = one point");
    value(r, "%.3f%s", v, v < 0.1 ? " (collapsed)" : v < 0.3 ? " (low)" : "");
}

static void prototype_row(ct_health *h, const ct_model *m, const ct_embedding *e) {
    const ct_tensor *p = ct_params_find(m->store, "prototypes.weight");
    if (!p || p->ndim != 2 || !e->z || p->shape[1] != e->zdim) return;
    int64_t k = p->shape[0], d = p->shape[1];
    float *protos = malloc((size_t)(k * d) * sizeof *protos), *z = malloc((size_t)d * sizeof *z);
    int64_t *count = calloc((size_t)k, sizeof *count);
    if (!protos || !z || !count) goto done;
    memcpy(protos, p->data, (size_t)(k * d) * sizeof *protos);
    for (int64_t c = 0; c < k; c++) normalise_row(protos + c * d, d);
    for (int64_t i = 0; i < e->n; i++) {
        memcpy(z, e->z + i * d, (size_t)d * sizeof *z);
        normalise_row(z, d);
        int64_t best = 0;
        double bs = -INFINITY;
        for (int64_t c = 0; c < k; c++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++) s += (double)z[j] * protos[c * d + j];
            if (s > bs) bs = s, best = c;
        }
        count[best]++;
    }
    int64_t used = 0;
    double ent = 0;
    for (int64_t c = 0; c < k; c++) {
        if (!count[c]) continue;
        used++;
        double q = (double)count[c] / (double)e->n;
        ent -= q * log(q);
    }
    ct_health_row *r = add(h, "prototype usage", used * 10 < k && used < e->n / 2 ? CT_HEALTH_WARN : CT_HEALTH_OK,
                           "prototypes that are the nearest (cosine) of at least one test embedding; perplexity = "
                           "exp(entropy) of that assignment");
    value(r, "%lld of %lld used (perplexity %.1f) over %lld test images", (long long)used, (long long)k, exp(ent),
          (long long)e->n);
done:
    free(protos), free(z), free(count);
}

static void queue_rows(ct_health *h, const ct_model *m, const ct_run_log *log, int64_t batch) {
    const ct_tensor *q = ct_params_find(m->store, "queue");
    if (!q) return;
    const ct_tensor *fill = ct_params_find(m->store, "queue_fill");
    if (fill && q->ndim == 3) { /* SwAV: (views, length, dim) */
        int64_t len = q->shape[1];
        ct_health_row *r = add(h, "queue fill", CT_HEALTH_INFO, "the clustering architecture's queue_fill buffer "
                                                                 "(rows written) against its length");
        value(r, "%.0f of %lld rows (%.0f%%)", fill->data[0], (long long)len, 100.0 * fill->data[0] / (double)len);
        return;
    }
    if (q->ndim == 2) { /* MoCo: (K, dim), a FIFO of one batch of keys per step */
        int64_t k = q->shape[0], steps = log->n_steps ? log->steps[log->n_steps - 1].step + 1 : 0;
        double filled = fmin((double)k, (double)steps * (double)batch);
        ct_health_row *r = add(h, "queue fill", filled < k ? CT_HEALTH_WARN : CT_HEALTH_OK,
                               "keys enqueued (steps x batch, one batch per step) against the queue length; until "
                               "full, part of the negatives are the random initial keys");
        value(r, "%.0f of %lld keys (%.0f%%)", filled, (long long)k, 100.0 * filled / (double)k);
    }
}

static void bank_rows(ct_health *h, const ct_model *m, const ct_embedding *sample) {
    const ct_tensor *bank = ct_params_find(m->store, "bank.memory"), *seen = ct_params_find(m->store, "bank.seen");
    if (!bank || bank->ndim != 2) return;
    int64_t n = bank->shape[0], d = bank->shape[1], written = 0;
    for (int64_t i = 0; seen && i < seen->numel; i++) written += seen->data[i] > 0;
    ct_health_row *r = add(h, "memory bank entries", written < n ? CT_HEALTH_WARN : CT_HEALTH_OK,
                           "entries of bank.memory written at least once (bank.seen)");
    value(r, "%lld of %lld", (long long)written, (long long)n);
    if (!sample || !sample->z || sample->zdim != d || sample->n == 0) return;
    float *a = malloc((size_t)d * sizeof *a), *b = malloc((size_t)d * sizeof *b);
    double cos_sum = 0;
    int64_t k = 0;
    for (int64_t i = 0; a && b && i < sample->n; i++) {
        int64_t item = sample->items[i];
        if (item < 0 || item >= n || (seen && seen->data[item] <= 0)) continue;
        memcpy(a, bank->data + item * d, (size_t)d * sizeof *a);
        memcpy(b, sample->z + i * d, (size_t)d * sizeof *b);
        normalise_row(a, d);
        normalise_row(b, d);
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)a[j] * b[j];
        cos_sum += s;
        k++;
    }
    free(a), free(b);
    if (!k) return;
    double stale = 1 - cos_sum / (double)k;
    r = add(h, "memory bank staleness", stale > 0.5 ? CT_HEALTH_WARN : CT_HEALTH_OK,
            "1 - mean cosine between the bank entries of sampled training items and their embeddings by the model "
            "now (evaluation transforms); 0 = the bank matches the model");
    value(r, "%.3f over %lld items", stale, (long long)k);
}

void ct_health_collect(const ct_model *m, const ct_run_log *log, const ct_embedding *test,
                       const ct_embedding *bank_sample, double participation, int64_t batch, ct_health *out) {
    memset(out, 0, sizeof *out);
    ct_health_row *r = add(out, "numeric stops", log->stop_reason[0] ? CT_HEALTH_BAD : CT_HEALTH_OK,
                           "a non-finite loss, gradient or weight stops training (metrics.jsonl \"stop\" line)");
    if (log->stop_reason[0]) value(r, "stopped at step %lld: %s", (long long)log->stop_step, log->stop_reason);
    else value(r, "none in %lld logged steps", (long long)log->n_steps);
    if (test) collapse_row(out, test);
    if (participation >= 0 && test) {
        r = add(out, "effective dimensionality", participation < 2 ? CT_HEALTH_WARN : CT_HEALTH_OK,
                "participation ratio (sum of eigenvalues)^2 / sum of squares of the test sample's encoder-feature "
                "covariance: 1 = a line, D = isotropic");
        value(r, "%.1f of %lld dimensions", participation, (long long)test->dim);
    }
    if (!m) return;
    if (test) prototype_row(out, m, test);
    queue_rows(out, m, log, batch);
    bank_rows(out, m, bank_sample);
}

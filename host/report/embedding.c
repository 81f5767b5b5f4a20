/* Embeddings and the PCA map (see embedding.h). */
#include "report/embedding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/pipeline.h"

#define EMBED_BATCH 256

int64_t *ct_spread_items(int64_t count, int64_t max, int64_t *n) {
    *n = count < max ? count : max;
    int64_t *it = malloc((size_t)(*n ? *n : 1) * sizeof *it);
    for (int64_t i = 0; it && i < *n; i++) it[i] = (int64_t)((double)i * (double)count / (double)*n);
    return it;
}

void ct_embedding_free(ct_embedding *e) {
    free(e->h);
    free(e->z);
    free(e->labels);
    free(e->items);
    memset(e, 0, sizeof *e);
}

static bool has_param(const ct_settings *s, const char *name) {
    const ct_param_spec *p = s ? ct_settings_spec(s) : NULL;
    for (; p && p->name; p++)
        if (strcmp(p->name, name) == 0) return true;
    return false;
}

/* The architecture's projection head with the model's weights, or NULL
 * (no head in its schema, or weights that do not fit: the map then uses
 * the encoder features only). */
static ct_mlp *head_copy(const ct_model *m, ct_params **store) {
    const ct_settings *s = m->ex->arch_settings;
    *store = NULL;
    if (!m->arch || !has_param(s, "head_out") || !has_param(s, "head_hidden")) return NULL;
    ct_params *p = ct_params_new(0);
    ct_mlp *h = NULL;
    ct_error err = CT_ERROR_INIT;
    bool ok = p && ct_mlp_from_settings(s, p, "head", m->encoder.dim, "report", &h, &err) == CT_OK &&
              ct_params_finalize(p, &err) == CT_OK;
    for (size_t i = 0; ok && i < ct_params_count(p); i++) {
        const char *name;
        ct_tensor *dst = ct_params_at(p, i, &name, NULL, NULL);
        const ct_tensor *src = ct_params_find(m->store, name);
        ok = src && src->numel == dst->numel;
        if (ok) memcpy(dst->data, src->data, (size_t)dst->numel * sizeof(float));
    }
    if (!ok) {
        ct_mlp_free(h);
        ct_params_free(p);
        return NULL;
    }
    *store = p;
    return h;
}

static ct_status graph_failed(ct_graph *g, ct_error *err) {
    return ct_error_set(err, ct_graph_status(g) ? ct_graph_status(g) : CT_ERR_INVALID, "embedding: %s",
                        ct_graph_error(g));
}

/* Forward one batch into rows [at, at + n) of e. */
static ct_status embed_batch(ct_model *m, const ct_mlp *head, const ct_data_batch *b, ct_embedding *e, int64_t at,
                             ct_error *err) {
    ct_graph *g = m->graph;
    const ct_view_buf *v = &b->views[0];
    int64_t shape[4] = {b->n, v->c, v->h, v->w};
    ct_tensor *x = ct_tensor_wrap(g, v->data, 4, shape);
    ct_tensor *f = x ? m->encoder.ops->forward(m->encoder.self, g, x) : NULL;
    if (!f || f->numel != b->n * e->dim) return graph_failed(g, err);
    memcpy(e->h + at * e->dim, f->data, (size_t)f->numel * sizeof(float));
    if (head) {
        ct_tensor *z = ct_mlp_forward(head, g, f);
        if (!z || z->numel != b->n * e->zdim) return graph_failed(g, err);
        memcpy(e->z + at * e->zdim, z->data, (size_t)z->numel * sizeof(float));
    }
    memcpy(e->labels + at, b->labels, (size_t)b->n * sizeof *e->labels);
    memcpy(e->items + at, b->items, (size_t)b->n * sizeof *e->items);
    return CT_OK;
}

static ct_status embed_all(ct_model *m, const ct_mlp *head, ct_pipeline *p, ct_embedding *e, int64_t n,
                           ct_error *err) {
    int64_t at = 0;
    ct_status st = ct_pipeline_start_epoch(p, 0, err);
    while (st == CT_OK) {
        const ct_data_batch *b = NULL;
        st = ct_pipeline_next(p, &b, err);
        if (st != CT_OK || !b) break;
        st = at + b->n <= n ? embed_batch(m, head, b, e, at, err)
                            : ct_error_set(err, CT_ERR_INVALID, "embedding: more items than asked for");
        at += b->n;
        ct_pipeline_release(p, b);
        ct_graph_reset(m->graph);
    }
    e->n = at;
    return st;
}

ct_status ct_embed_items(ct_model *m, ct_dataset *data, const int64_t *items, int64_t n, ct_embedding *e,
                         ct_error *err) {
    memset(e, 0, sizeof *e);
    ct_params *hstore = NULL;
    ct_mlp *head = head_copy(m, &hstore);
    e->dim = m->encoder.dim;
    e->zdim = head ? ct_mlp_out_dim(head) : 0;
    size_t rows = (size_t)(n ? n : 1);
    e->h = malloc(rows * (size_t)e->dim * sizeof *e->h);
    e->z = head ? malloc(rows * (size_t)e->zdim * sizeof *e->z) : NULL;
    e->labels = malloc(rows * sizeof *e->labels);
    e->items = malloc(rows * sizeof *e->items);
    ct_pipeline *p = NULL;
    ct_status st = (!e->h || (head && !e->z) || !e->labels || !e->items)
                       ? ct_error_set(err, CT_ERR_NOMEM, "embedding: out of memory for %lld items", (long long)n)
                       : ct_pipeline_new_eval(data, &m->ex->eval_chain, EMBED_BATCH, m->ex->seed,
                                              m->threads > 1 ? m->threads : 1, items, n, &p, err);
    if (st == CT_OK) {
        bool grad = ct_graph_set_grad(m->graph, false), train = ct_graph_set_train(m->graph, false);
        st = embed_all(m, head, p, e, n, err);
        ct_graph_reset(m->graph);
        ct_graph_set_grad(m->graph, grad);
        ct_graph_set_train(m->graph, train);
    }
    ct_pipeline_free(p);
    ct_mlp_free(head);
    ct_params_free(hstore);
    if (st != CT_OK) ct_embedding_free(e);
    return st;
}

/* ---- PCA ------------------------------------------------------------------ */

/* The leading eigenvector of the symmetric d x d matrix c into v (power
 * iteration from a fixed start); returns its eigenvalue. */
static double leading(const double *c, int64_t d, double *v, double *tmp) {
    for (int64_t i = 0; i < d; i++) v[i] = 1.0 / sqrt((double)d) * (1.0 + 0.01 * (double)(i % 7));
    double lambda = 0;
    for (int it = 0; it < 300; it++) {
        double norm = 0;
        for (int64_t i = 0; i < d; i++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++) s += c[i * d + j] * v[j];
            tmp[i] = s;
            norm += s * s;
        }
        norm = sqrt(norm);
        if (norm <= 0) return 0;
        double change = 0;
        for (int64_t i = 0; i < d; i++) {
            double nv = tmp[i] / norm;
            change += fabs(nv - v[i]);
            v[i] = nv;
        }
        lambda = norm;
        if (change < 1e-9 * (double)d) break;
    }
    return lambda;
}

ct_status ct_pca2(const float *x, int64_t n, int64_t d, float *px, float *py, double *share2, double *participation,
                  ct_error *err) {
    double *mean = calloc((size_t)d, sizeof *mean), *c = calloc((size_t)(d * d), sizeof *c);
    double *v1 = malloc((size_t)d * sizeof *v1), *v2 = malloc((size_t)d * sizeof *v2);
    double *tmp = malloc((size_t)d * sizeof *tmp);
    ct_status st = CT_OK;
    if (!mean || !c || !v1 || !v2 || !tmp || n < 2) {
        st = ct_error_set(err, n < 2 ? CT_ERR_INVALID : CT_ERR_NOMEM, "pca: %s",
                          n < 2 ? "needs at least 2 points" : "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) mean[j] += x[i * d + j] / (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t a = 0; a < d; a++) {
            double xa = x[i * d + a] - mean[a];
            for (int64_t b = a; b < d; b++) c[a * d + b] += xa * (x[i * d + b] - mean[b]) / (double)(n - 1);
        }
    double trace = 0, frob = 0;
    for (int64_t a = 0; a < d; a++)
        for (int64_t b = a; b < d; b++) {
            c[b * d + a] = c[a * d + b];
            frob += (a == b ? 1 : 2) * c[a * d + b] * c[a * d + b];
            if (a == b) trace += c[a * d + a];
        }
    double l1 = leading(c, d, v1, tmp);
    for (int64_t a = 0; a < d; a++) /* deflate: remove the first axis */
        for (int64_t b = 0; b < d; b++) c[a * d + b] -= l1 * v1[a] * v1[b];
    double l2 = leading(c, d, v2, tmp);
    for (int64_t i = 0; i < n; i++) {
        double s1 = 0, s2 = 0;
        for (int64_t j = 0; j < d; j++) {
            double xc = x[i * d + j] - mean[j];
            s1 += xc * v1[j];
            s2 += xc * v2[j];
        }
        px[i] = (float)s1;
        py[i] = (float)s2;
    }
    *share2 = trace > 0 ? (l1 + l2) / trace : 0;
    *participation = frob > 0 ? trace * trace / frob : 0;
done:
    free(mean);
    free(c);
    free(v1);
    free(v2);
    free(tmp);
    return st;
}

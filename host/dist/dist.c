/* The communicator and the training collectives (see dist.h). The MPI
 * calls themselves are in dist_mpi.c (dist_serial.c without MPI); this file
 * holds what does not depend on the backend: the one-rank paths, the
 * fixed-order average, the gather op and its backward. */
#include "dist/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0, g_size = 1;
static bool g_started = false;
/* Seconds in the training collectives (waiting for peers included). */
static ct_dist_times g_times;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

ct_dist_times ct_dist_time_spent(void) { return g_times; }

void ct__dist_count_average(double s) { g_times.average_s += s; }

ct_status ct_dist_start(int *argc, char ***argv, ct_error *err) {
    if (g_started || !ct__dist_mpi_wanted()) return CT_OK;
    ct_status st = ct__dist_mpi_start(argc, argv, &g_rank, &g_size, err);
    g_started = true;
    if (st != CT_OK) {
        g_rank = 0, g_size = 1;
        ct__dist_mpi_finish();
    }
    return st;
}

void ct_dist_finish(void) {
    if (!g_started) return;
    ct__dist_mpi_finish();
    g_started = false;
    g_rank = 0, g_size = 1;
}

int ct_dist_rank(void) { return g_rank; }
int ct_dist_size(void) { return g_size; }

bool ct_dist_built_with_mpi(void) {
#ifdef CONTRAST_HAVE_MPI
    return true;
#else
    return false;
#endif
}

const char *ct_dist_backend(void) { return ct__dist_mpi_version(); }

void ct_dist_abort(int code, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "contrast: rank %d of %d: %s\n", g_rank, g_size, msg);
    fflush(stderr);
    if (g_size > 1) ct__dist_mpi_abort(code);
}

bool ct_dist_all_ok(bool ok) {
    if (g_size == 1) return ok;
    double bad = ok ? 0.0 : 1.0;
    ct_error err = CT_ERROR_INIT;
    if (ct__dist_mpi_sum(&bad, 1, true, &err) != CT_OK) return false;
    return bad == 0.0;
}

ct_status ct_dist_sum_doubles(double *v, size_t n, ct_error *err) {
    return g_size == 1 ? CT_OK : ct__dist_mpi_sum(v, n, true, err);
}

ct_status ct_dist_sum_floats(float *v, size_t n, ct_error *err) {
    return g_size == 1 ? CT_OK : ct__dist_mpi_sum(v, n, false, err);
}

/* Slice r of n values over p ranks: [n*r/p, n*(r+1)/p). */
static size_t slice_at(size_t n, int r, int p) { return (size_t)((uint64_t)n * (uint64_t)r / (uint64_t)p); }

ct_status ct_dist_average_floats(float *v, size_t n, ct_error *err) {
    if (g_size == 1 || n == 0) return CT_OK;
    int p = g_size, me = g_rank;
    size_t lo = slice_at(n, me, p), len = slice_at(n, me + 1, p) - lo;
    int64_t *bytes = malloc(3 * (size_t)p * sizeof *bytes);
    float *recv = malloc((len ? len : 1) * (size_t)p * sizeof *recv);
    if (!bytes || !recv) {
        free(bytes);
        free(recv);
        return ct_error_set(err, CT_ERR_NOMEM, "averaging %zu gradients: out of memory", n);
    }
    int64_t *send_b = bytes, *recv_b = bytes + p, *gather_b = bytes + 2 * p;
    for (int r = 0; r < p; r++) {
        send_b[r] = (int64_t)((slice_at(n, r + 1, p) - slice_at(n, r, p)) * sizeof(float));
        recv_b[r] = (int64_t)(len * sizeof(float));
        gather_b[r] = send_b[r];
    }
    /* Reduce-scatter by hand: rank r receives slice r of every rank, in
     * rank order, and sums it in that order. */
    ct_status st = ct__dist_mpi_alltoallv(v, send_b, recv, recv_b, err);
    if (st == CT_OK) {
        const double inv = 1.0 / (double)p;
        for (size_t i = 0; i < len; i++) {
            double s = 0.0;
            for (int r = 0; r < p; r++) s += (double)recv[(size_t)r * len + i];
            v[lo + i] = (float)(s * inv);
        }
        st = ct__dist_mpi_allgatherv(v + lo, len * sizeof(float), v, gather_b, err);
    }
    free(bytes);
    free(recv);
    return st;
}

ct_status ct_dist_broadcast(float *v, size_t n, int root, ct_error *err) {
    return g_size == 1 ? CT_OK : ct__dist_mpi_bcast(v, n, root, err);
}

int64_t ct_dist_gather_counts(int64_t n, int64_t *counts, ct_error *err) {
    if (g_size == 1) {
        counts[0] = n;
        return n;
    }
    int64_t small[64] = {0}, *b = g_size <= 64 ? small : malloc((size_t)g_size * sizeof *b);
    if (!b) return ct_error_set(err, CT_ERR_NOMEM, "out of memory"), -1;
    for (int r = 0; r < g_size; r++) b[r] = (int64_t)sizeof(int64_t);
    int64_t total = -1;
    if (ct__dist_mpi_allgatherv(&n, sizeof n, counts, b, err) == CT_OK) {
        total = 0;
        for (int r = 0; r < g_size; r++) total += counts[r];
    }
    if (b != small) free(b);
    return total;
}

ct_status ct_dist_all_gather(const void *in, int64_t n, size_t bytes, void *out, int64_t *counts, ct_error *err) {
    if (g_size == 1) {
        if (counts) counts[0] = n;
        if (out != in) memcpy(out, in, (size_t)n * bytes);
        return CT_OK;
    }
    int64_t *c = malloc(2 * (size_t)g_size * sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    ct_status st = ct_dist_gather_counts(n, c, err) < 0 ? (err->code ? err->code : CT_ERR_IO) : CT_OK;
    for (int r = 0; r < g_size; r++) c[g_size + r] = c[r] * (int64_t)bytes;
    if (st == CT_OK) st = ct__dist_mpi_allgatherv(in, (size_t)n * bytes, out, c + g_size, err);
    if (st == CT_OK && counts) memcpy(counts, c, (size_t)g_size * sizeof *c);
    free(c);
    return st;
}

ct_status ct_dist_barrier(ct_error *err) { return g_size == 1 ? CT_OK : ct__dist_mpi_barrier(err); }

/* ---- training helpers -------------------------------------------------------- */

ct_status ct_dist_average_grads(ct_params *store, ct_error *err) {
    if (g_size == 1) return CT_OK;
    double t0 = now_s();
    ct_status st = ct_dist_average_floats(ct_params_grad(store), ct_params_numel(store), err);
    g_times.average_s += now_s() - t0;
    if (st != CT_OK) ct_error_prefix(err, "averaging the gradients over %d ranks: ", g_size);
    return st;
}

ct_status ct_dist_broadcast_store(ct_params *store, ct_error *err) {
    if (g_size == 1) return CT_OK;
    ct_status st = ct_dist_broadcast(ct_params_data(store), ct_params_numel(store), 0, err);
    if (st == CT_OK) st = ct_dist_broadcast(ct_params_buffer_data(store), ct_params_buffer_numel(store), 0, err);
    if (st != CT_OK) ct_error_prefix(err, "broadcasting rank 0's parameters: ");
    return st;
}

/* Backward of the gather: this rank's rows of the output's gradient
 * summed over ranks (a reduce-scatter; ctx: every rank's row count) into
 * the input's gradient. */
static void gather_backward(ct_graph *g, ct_node *node) {
    ct_tensor *x = node->in[0], *y = node->out;
    const int64_t *rows = node->ctx, f = node->iarg[2];
    int64_t *counts = ct_graph_alloc(g, (size_t)g_size * sizeof *counts);
    float *mine = ct_graph_alloc(g, (size_t)(x->numel ? x->numel : 1) * sizeof *mine);
    float *dx = ct_tensor_grad(g, x);
    if (!counts || !mine || !dx) return;
    for (int r = 0; r < g_size; r++) counts[r] = rows[r] * f;
    ct_error err = CT_ERROR_INIT;
    double t0 = now_s();
    ct_status st = g_size == 1 ? CT_OK : ct__dist_mpi_reduce_scatter(y->grad, mine, counts, &err);
    g_times.gather_s += now_s() - t0;
    if (st != CT_OK) {
        ct_graph_fail(g, err.code, "dist_gather backward: %s", err.msg);
        return;
    }
    const float *dy = g_size == 1 ? y->grad : mine;
    for (int64_t i = 0; i < x->numel; i++) dx[i] += dy[i];
}

ct_tensor *ct_dist_gather_rows(ct_graph *g, ct_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 2) return ct_graph_fail(g, CT_ERR_SHAPE, "dist_gather: rows must be (n, F), got %dD", x->ndim);
    int64_t f = x->shape[1];
    int64_t *counts = ct_graph_alloc(g, (size_t)g_size * sizeof *counts); /* kept for backward */
    if (!counts) return NULL;
    ct_error err = CT_ERROR_INIT;
    double t0 = now_s();
    int64_t total = ct_dist_gather_counts(x->shape[0], counts, &err);
    if (total < 0) return ct_graph_fail(g, err.code ? err.code : CT_ERR_IO, "dist_gather: %s", err.msg);
    ct_tensor *y = ct_tensor_new2(g, total, f);
    if (!y) return NULL;
    ct_status st = ct_dist_all_gather(x->data, x->numel, sizeof(float), y->data, NULL, &err);
    g_times.gather_s += now_s() - t0;
    if (st != CT_OK) return ct_graph_fail(g, err.code, "dist_gather: %s", err.msg);
    ct_node *node = ct_graph_record(g, "dist_gather", gather_backward, y, &x, 1);
    if (node) {
        int64_t off = 0;
        for (int r = 0; r < g_rank; r++) off += counts[r];
        node->iarg[0] = off;
        node->iarg[1] = x->shape[0];
        node->iarg[2] = f;
        node->ctx = counts;
    }
    return y;
}

ct_status ct_dist_gather_embeddings(ct_graph *g, ct_embeddings *e) {
    if (g_size == 1) return CT_OK;
    ct_error err = CT_ERROR_INIT;
    int64_t local = e->rows, *counts = ct_graph_alloc(g, (size_t)g_size * sizeof *counts);
    if (!counts) return ct_graph_status(g);
    for (int s = 0; s < e->n_sets; s++)
        if (e->set[s] && !(e->set[s] = ct_dist_gather_rows(g, e->set[s]))) return ct_graph_status(g);
    int64_t total = ct_dist_gather_counts(local, counts, &err);
    int64_t *items = total > 0 ? ct_graph_alloc(g, (size_t)total * sizeof *items) : NULL;
    int32_t *groups = total > 0 ? ct_graph_alloc(g, (size_t)total * sizeof *groups) : NULL;
    if (!items || !groups) {
        if (ct_graph_status(g) == CT_OK) ct_graph_fail(g, err.code ? err.code : CT_ERR_IO, "dist_gather: %s", err.msg);
        return ct_graph_status(g);
    }
    /* Groups: rank r's ids shifted past every earlier rank's largest. */
    int32_t top = -1;
    for (int64_t i = 0; i < local; i++)
        if (e->groups[i] > top) top = e->groups[i];
    double *tops = ct_graph_alloc(g, (size_t)g_size * sizeof *tops);
    if (!tops) return ct_graph_status(g);
    memset(tops, 0, (size_t)g_size * sizeof *tops);
    tops[g_rank] = (double)top + 1.0;
    ct_status st = ct_dist_all_gather(e->items, local, sizeof *items, items, NULL, &err);
    if (st == CT_OK) st = ct_dist_all_gather(e->groups, local, sizeof *groups, groups, NULL, &err);
    if (st == CT_OK) st = ct_dist_sum_doubles(tops, (size_t)g_size, &err);
    if (st != CT_OK) {
        ct_graph_fail(g, st, "dist_gather: %s", err.msg);
        return st;
    }
    int64_t row = 0;
    double shift = 0;
    for (int r = 0; r < g_size; r++) {
        for (int64_t i = 0; i < counts[r]; i++, row++) groups[row] += (int32_t)shift;
        shift += tops[r];
    }
    e->items = items;
    e->groups = groups;
    e->rows = total;
    return CT_OK;
}

/* One view of every rank, rank order, as a new leaf tensor (the sample
 * shape is the same on every rank: one pipeline, one chain). */
static ct_tensor *gather_view(ct_graph *g, const ct_tensor *x, int64_t total, ct_error *err) {
    int64_t shape[CT_MAX_DIMS];
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
    shape[0] = total;
    ct_tensor *y = ct_tensor_new(g, x->ndim, shape);
    if (!y) return NULL;
    return ct_dist_all_gather(x->data, x->numel, sizeof(float), y->data, NULL, err) == CT_OK ? y : NULL;
}

ct_status ct_dist_gather_batch(ct_graph *g, const ct_batch *b, ct_batch *out) {
    *out = *b;
    if (g_size == 1) return CT_OK;
    double t0 = now_s();
    ct_error err = CT_ERROR_INIT;
    int64_t *counts = ct_graph_alloc(g, (size_t)g_size * sizeof *counts);
    if (!counts) return ct_graph_status(g);
    int64_t total = ct_dist_gather_counts(b->n, counts, &err);
    if (total < 0 || total > INT_MAX) {
        ct_graph_fail(g, err.code ? err.code : CT_ERR_INVALID, "gathering the batch over %d ranks: %s", g_size,
                      total < 0 ? err.msg : "more than INT_MAX samples");
        return ct_graph_status(g);
    }
    ct_status st = CT_OK;
    for (int v = 0; v < b->n_views && st == CT_OK; v++)
        if (!(out->views[v] = gather_view(g, b->views[v], total, &err))) st = CT_ERR_IO;
    int64_t *items = b->items && st == CT_OK ? ct_graph_alloc(g, (size_t)total * sizeof *items) : NULL;
    int32_t *labels = b->labels && st == CT_OK ? ct_graph_alloc(g, (size_t)total * sizeof *labels) : NULL;
    if (st == CT_OK && ((b->items && !items) || (b->labels && !labels))) return ct_graph_status(g);
    if (st == CT_OK && items) st = ct_dist_all_gather(b->items, b->n, sizeof *items, items, NULL, &err);
    if (st == CT_OK && labels) st = ct_dist_all_gather(b->labels, b->n, sizeof *labels, labels, NULL, &err);
    g_times.gather_s += now_s() - t0;
    if (st != CT_OK) {
        if (ct_graph_status(g) == CT_OK)
            ct_graph_fail(g, err.code ? err.code : st, "gathering the batch over %d ranks: %s", g_size, err.msg);
        return ct_graph_status(g);
    }
    out->n = (int)total;
    out->items = items;
    out->labels = labels;
    return CT_OK;
}

/* ct_engine_opts.allreduce_sum over the communicator. */
static ct_status engine_sum(void *ctx, double *v, size_t n) {
    (void)ctx;
    ct_error err = CT_ERROR_INIT;
    double t0 = now_s();
    ct_status st = ct_dist_sum_doubles(v, n, &err);
    g_times.batchnorm_s += now_s() - t0;
    return st;
}

void ct_dist_engine_hook(ct_engine_opts *o) {
    o->allreduce_sum = g_size > 1 ? engine_sum : NULL;
    o->allreduce_ctx = NULL;
    o->allreduce_rank = g_rank;
}

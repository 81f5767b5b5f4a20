/* The bucketed, overlapped gradient average (see grad_buckets.h). */
#include "dist/grad_buckets.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"

enum { IDLE, SCATTERING, SUMMED, GATHERING, DONE };

typedef struct bucket {
    size_t lo, n;        /* floats [lo, lo + n) of the gradient buffer */
    size_t mine, len;    /* this rank's slice [lo + mine, lo + mine + len) */
    int64_t ready_at;    /* final once backward has run this tape node (INT64_MAX: at once) */
    int64_t *bytes;      /* 3 P: send, receive and gather bytes per rank */
    float *recv;         /* P x len: slice `mine` of every rank */
    ct__dist_req *req;
    int state;
} bucket;

struct ct_grad_buckets {
    ct_params *store;
    float *grad;
    size_t numel;
    int p, me;
    bucket *b; /* b[0] ends the buffer, b[n-1] starts it */
    size_t n;
    size_t next_start, next_gather; /* fixed order: buckets issued in index order */
    ct_status st;
    ct_error err;
    double busy_s; /* in the hook and the final wait */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Slice r of n values over p ranks: [n*r/p, n*(r+1)/p), as
 * ct_dist_average_floats cuts its buffer. */
static size_t slice_at(size_t n, int r, int p) { return (size_t)((uint64_t)n * (uint64_t)r / (uint64_t)p); }

typedef struct span {
    size_t lo, n;
} span;

static int by_offset_desc(const void *a, const void *b) {
    size_t x = ((const span *)a)->lo, y = ((const span *)b)->lo;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The trainable tensors' spans of the buffer, last first. */
static span *tensor_spans(ct_params *store, size_t *n_out) {
    size_t n = ct_params_count(store), k = 0;
    span *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return NULL;
    const float *grad = ct_params_grad(store);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        ct_param_kind kind;
        uint32_t flags;
        ct_tensor *t = ct_params_at(store, i, &name, &kind, &flags);
        if (kind == CT_PARAM_TRAINABLE && t->numel > 0) s[k++] = (span){(size_t)(t->grad - grad), (size_t)t->numel};
    }
    qsort(s, k, sizeof *s, by_offset_desc);
    *n_out = k;
    return s;
}

static bool init_bucket(ct_grad_buckets *gb, bucket *q) {
    int p = gb->p;
    q->mine = slice_at(q->n, gb->me, p);
    q->len = slice_at(q->n, gb->me + 1, p) - q->mine;
    q->bytes = malloc(3 * (size_t)p * sizeof *q->bytes);
    q->recv = malloc((q->len ? q->len : 1) * (size_t)p * sizeof *q->recv);
    if (!q->bytes || !q->recv) return false;
    for (int r = 0; r < p; r++) {
        q->bytes[r] = (int64_t)((slice_at(q->n, r + 1, p) - slice_at(q->n, r, p)) * sizeof(float));
        q->bytes[p + r] = (int64_t)(q->len * sizeof(float));
        q->bytes[2 * p + r] = q->bytes[r];
    }
    return true;
}

ct_grad_buckets *ct_grad_buckets_new(ct_params *store, size_t bucket_floats, ct_error *err) {
    ct_grad_buckets *gb = calloc(1, sizeof *gb);
    size_t n_spans = 0;
    span *s = gb ? tensor_spans(store, &n_spans) : NULL;
    if (gb) gb->b = calloc(n_spans ? n_spans : 1, sizeof *gb->b);
    if (!gb || !s || !gb->b) {
        free(s);
        ct_grad_buckets_free(gb);
        ct_error_set(err, CT_ERR_NOMEM, "gradient buckets: out of memory");
        return NULL;
    }
    gb->store = store;
    gb->grad = ct_params_grad(store);
    gb->numel = ct_params_numel(store);
    gb->p = ct_dist_size();
    gb->me = ct_dist_rank();
    if (bucket_floats == 0) bucket_floats = 1;
    /* Spans are adjacent (the buffer is the tensors back to back): a
     * bucket grows downwards until it holds bucket_floats values. */
    for (size_t i = 0; i < n_spans; i++) {
        bucket *q = gb->n > 0 && gb->b[gb->n - 1].n < bucket_floats ? &gb->b[gb->n - 1] : &gb->b[gb->n++];
        if (q->n == 0) q->lo = s[i].lo + s[i].n;
        q->lo -= s[i].n;
        q->n += s[i].n;
    }
    free(s);
    for (size_t k = 0; k < gb->n; k++)
        if (!init_bucket(gb, &gb->b[k])) {
            ct_grad_buckets_free(gb);
            ct_error_set(err, CT_ERR_NOMEM, "gradient buckets: out of memory");
            return NULL;
        }
    return gb;
}

void ct_grad_buckets_free(ct_grad_buckets *gb) {
    if (!gb) return;
    for (size_t k = 0; gb->b && k < gb->n; k++) {
        free(gb->b[k].bytes);
        free(gb->b[k].recv);
    }
    free(gb->b);
    free(gb);
}

size_t ct_grad_buckets_count(const ct_grad_buckets *gb) { return gb ? gb->n : 0; }

/* The bucket holding buffer offset `off` (buckets run downwards). */
static bucket *bucket_of(ct_grad_buckets *gb, size_t off) {
    size_t lo = 0, hi = gb->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (off >= gb->b[mid].lo + gb->b[mid].n) hi = mid;
        else if (off < gb->b[mid].lo) lo = mid + 1;
        else return &gb->b[mid];
    }
    return NULL;
}

/* When each bucket's gradients are final: the first tape node (in
 * recording order, backward's last) that reads one of its tensors. */
static void find_ready(ct_grad_buckets *gb, const ct_graph *g) {
    for (size_t k = 0; k < gb->n; k++) {
        gb->b[k].ready_at = INT64_MAX;
        gb->b[k].state = IDLE;
        gb->b[k].req = NULL;
    }
    int64_t nodes = ct_graph_node_count(g);
    for (int64_t i = 0; i < nodes; i++) {
        const ct_node *node = ct_graph_node_at(g, i);
        for (int j = 0; j < node->n_in; j++) {
            const ct_tensor *t = node->in[j];
            if (!t || !(t->flags & CT_TENSOR_PARAM) || !(t->flags & CT_TENSOR_REQUIRES_GRAD)) continue;
            if (t->grad < gb->grad || t->grad >= gb->grad + gb->numel) continue; /* another store's */
            bucket *q = bucket_of(gb, (size_t)(t->grad - gb->grad));
            if (q && q->ready_at == INT64_MAX) q->ready_at = i;
        }
    }
    gb->next_start = gb->next_gather = 0;
}

static void fail(ct_grad_buckets *gb, ct_status st) {
    if (gb->st == CT_OK) gb->st = st;
}

static void start_scatter(ct_grad_buckets *gb, bucket *q) {
    int p = gb->p;
    ct_status st = ct__dist_mpi_ialltoallv(gb->grad + q->lo, q->bytes, q->recv, q->bytes + p, &q->req, &gb->err);
    q->state = SCATTERING;
    if (st != CT_OK) fail(gb, st);
}

/* This rank's slice: every rank's values summed in rank order in double,
 * then scaled, exactly as ct_dist_average_floats does. */
static void sum_slice(ct_grad_buckets *gb, bucket *q) {
    const double inv = 1.0 / (double)gb->p;
    float *v = gb->grad + q->lo + q->mine;
    for (size_t i = 0; i < q->len; i++) {
        double s = 0.0;
        for (int r = 0; r < gb->p; r++) s += (double)q->recv[(size_t)r * q->len + i];
        v[i] = (float)(s * inv);
    }
    q->state = SUMMED;
}

static void start_gather(ct_grad_buckets *gb, bucket *q) {
    float *v = gb->grad + q->lo;
    ct_status st = ct__dist_mpi_iallgatherv(v + q->mine, q->len * sizeof(float), v, q->bytes + 2 * gb->p, &q->req,
                                            &gb->err);
    q->state = GATHERING;
    if (st != CT_OK) fail(gb, st);
}

/* Drive the requests in flight: a finished reduce-scatter is summed; the
 * all-gathers start in bucket order; finished all-gathers are done. */
static void progress(ct_grad_buckets *gb) {
    for (size_t k = gb->next_gather; k < gb->next_start && gb->st == CT_OK; k++) {
        bucket *q = &gb->b[k];
        bool done = false;
        if (q->state != SCATTERING) continue;
        ct_status st = ct__dist_mpi_test(q->req, &done, &gb->err);
        if (st != CT_OK) fail(gb, st);
        if (done) {
            q->req = NULL;
            sum_slice(gb, q);
        }
    }
    while (gb->st == CT_OK && gb->next_gather < gb->next_start && gb->b[gb->next_gather].state == SUMMED)
        start_gather(gb, &gb->b[gb->next_gather++]);
    for (size_t k = 0; k < gb->next_gather && gb->st == CT_OK; k++) {
        bucket *q = &gb->b[k];
        bool done = false;
        if (q->state != GATHERING) continue;
        ct_status st = ct__dist_mpi_test(q->req, &done, &gb->err);
        if (st != CT_OK) fail(gb, st);
        if (done) q->req = NULL, q->state = DONE;
    }
}

/* The backward hook: tape node i is done. */
static void on_node(void *ctx, ct_graph *g, int64_t i) {
    (void)g;
    ct_grad_buckets *gb = ctx;
    if (gb->st != CT_OK) return;
    double t0 = now_s();
    while (gb->st == CT_OK && gb->next_start < gb->n && i <= gb->b[gb->next_start].ready_at)
        start_scatter(gb, &gb->b[gb->next_start++]);
    progress(gb);
    gb->busy_s += now_s() - t0;
}

/* After backward: start what is left, then wait for everything, the
 * all-gathers still in bucket order. */
static void finish(ct_grad_buckets *gb) {
    while (gb->st == CT_OK && gb->next_start < gb->n) start_scatter(gb, &gb->b[gb->next_start++]);
    for (size_t k = gb->next_gather; k < gb->n && gb->st == CT_OK; k++) {
        bucket *q = &gb->b[k];
        if (q->state == SCATTERING) {
            ct_status st = ct__dist_mpi_wait(q->req, &gb->err);
            q->req = NULL;
            if (st != CT_OK) {
                fail(gb, st);
                break;
            }
            sum_slice(gb, q);
        }
        start_gather(gb, q);
        gb->next_gather = k + 1;
    }
    for (size_t k = 0; k < gb->n && gb->st == CT_OK; k++) {
        bucket *q = &gb->b[k];
        if (q->state != GATHERING) continue;
        ct_status st = ct__dist_mpi_wait(q->req, &gb->err);
        q->req = NULL;
        q->state = DONE;
        if (st != CT_OK) fail(gb, st);
    }
}

ct_status ct_grad_buckets_backward(ct_grad_buckets *gb, ct_graph *g, ct_tensor *loss, ct_error *err) {
    gb->st = CT_OK;
    gb->err = (ct_error)CT_ERROR_INIT;
    gb->busy_s = 0;
    find_ready(gb, g);
    ct_graph_set_backward_hook(g, on_node, gb);
    ct_status st = ct_graph_backward(g, loss);
    ct_graph_set_backward_hook(g, NULL, NULL);
    if (st != CT_OK) {
        /* Requests already started must end before their buffers go: the
         * other ranks' backward may have succeeded, so finish them all
         * (every rank fails the step after, through the trainer's checks). */
        finish(gb);
        return ct_error_set(err, st, "backward: %s", ct_graph_error(g));
    }
    double t0 = now_s();
    finish(gb);
    gb->busy_s += now_s() - t0;
    ct__dist_count_average(gb->busy_s);
    if (gb->st != CT_OK) {
        if (err) *err = gb->err;
        ct_error_prefix(err, "averaging the gradients over %d ranks: ", gb->p);
        return gb->st;
    }
    return CT_OK;
}

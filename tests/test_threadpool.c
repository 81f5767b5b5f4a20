/* The thread pool: fork-join coverage, nesting, background jobs. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <contrast/contrast.h>

#include "ct_test.h"

typedef struct {
    int *hits;
    _Atomic int workers_seen;
    int max_worker;
} cover_ctx;

static void cover(void *c, int64_t b, int64_t e, int worker) {
    cover_ctx *x = c;
    /* Check's assertions are not for worker threads: record, assert later. */
    if (worker < 0 || worker >= x->max_worker) worker = 30;
    atomic_fetch_or(&x->workers_seen, 1 << worker);
    for (int64_t i = b; i < e; i++) x->hits[i]++;
}

START_TEST(parallel_for_covers_every_index_once) {
    ct_error err = CT_ERROR_INIT;
    for (int threads = 1; threads <= 4; threads++) {
        ct_threadpool *p = ct_threadpool_new(threads, &err);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(ct_threadpool_size(p), threads);
        const int64_t sizes[] = {1, 2, 3, 17, 1000, 100003};
        for (int rep = 0; rep < 50; rep++)
            for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
                int64_t n = sizes[k];
                cover_ctx c = {calloc((size_t)n, sizeof(int)), 0, threads};
                ct_parallel_for(p, n, 1, cover, &c);
                int64_t wrong = 0;
                for (int64_t i = 0; i < n; i++) wrong += c.hits[i] != 1;
                ck_assert_int_eq(wrong, 0);
                ck_assert_int_eq(atomic_load(&c.workers_seen) >> 30, 0);
                free(c.hits);
            }
        ct_threadpool_free(p);
    }
    /* NULL pool runs serially on the caller. */
    cover_ctx c = {calloc(10, sizeof(int)), 0, 1};
    ct_parallel_for(NULL, 10, 1, cover, &c);
    ck_assert_int_eq(c.hits[9], 1);
    free(c.hits);
    ck_assert_int_eq(ct_threadpool_size(NULL), 1);
}
END_TEST

typedef struct {
    ct_threadpool *p;
    _Atomic int64_t total;
} nest_ctx;

static void inner(void *c, int64_t b, int64_t e, int worker) {
    (void)worker;
    nest_ctx *x = c;
    atomic_fetch_add(&x->total, e - b);
}

static void outer(void *c, int64_t b, int64_t e, int worker) {
    (void)worker;
    nest_ctx *x = c;
    for (int64_t i = b; i < e; i++) ct_parallel_for(x->p, 100, 1, inner, x); /* runs serially inside */
}

START_TEST(nested_calls_run_serially) {
    ct_error err = CT_ERROR_INIT;
    ct_threadpool *p = ct_threadpool_new(3, &err);
    nest_ctx c = {p, 0};
    ct_parallel_for(p, 30, 1, outer, &c);
    ck_assert_int_eq(atomic_load(&c.total), 3000);
    ct_threadpool_free(p);
}
END_TEST

static void slow_job(void *arg) {
    usleep(20000);
    atomic_fetch_add((_Atomic int *)arg, 1);
}

/* A loop completes while a worker is busy with a background job. */
START_TEST(jobs_and_loops_together) {
    ct_error err = CT_ERROR_INIT;
    ct_threadpool *p = ct_threadpool_new(2, &err);
    _Atomic int done = 0;
    ct_job *jobs[5];
    for (int i = 0; i < 5; i++) jobs[i] = ct_threadpool_submit(p, slow_job, (void *)&done);
    cover_ctx c = {calloc(5000, sizeof(int)), 0, 2};
    for (int rep = 0; rep < 20; rep++) ct_parallel_for(p, 5000, 1, cover, &c);
    int wrong = 0;
    for (int i = 0; i < 5000; i++) wrong += c.hits[i] != 20;
    ck_assert_int_eq(wrong, 0);
    free(c.hits);
    for (int i = 0; i < 5; i++) ct_job_wait(jobs[i]);
    ck_assert_int_eq(atomic_load(&done), 5);
    /* Jobs on a single-thread pool run at submit. */
    ct_threadpool *one = ct_threadpool_new(1, &err);
    ct_job *j = ct_threadpool_submit(one, slow_job, (void *)&done);
    ck_assert_int_eq(atomic_load(&done), 6);
    ct_job_wait(j);
    ct_threadpool_free(one);
    /* Free waits for jobs still queued. */
    for (int i = 0; i < 3; i++) jobs[i] = ct_threadpool_submit(p, slow_job, (void *)&done);
    for (int i = 0; i < 3; i++) ct_job_wait(jobs[i]);
    ck_assert_int_eq(atomic_load(&done), 9);
    ct_threadpool_free(p);
}
END_TEST

/* A graph's engine options: defaults, set/get round trip, and
 * ct_graph_set_pool replacing only the pool. */
START_TEST(graph_pool_and_engine) {
    ct_graph *g = ct_graph_new(0);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_null(ct_graph_pool(g));
    const ct_engine_opts *e = ct_graph_engine(g);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_null(e->pool);
    ck_assert_int_eq(e->conv_algo, CT_CONV_ALGO_AUTO);
    ck_assert_int_eq(e->wino_tile, 0);
    ck_assert_int_eq(e->wino_chunk_floats, 0);
    ck_assert_int_eq(e->wino_du_transposed, -1);

    ct_error err = CT_ERROR_INIT;
    ct_threadpool *p = ct_threadpool_new(2, &err), *q = ct_threadpool_new(3, &err);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ct_graph_set_pool(g, p);
    ck_assert_ptr_eq(ct_graph_pool(g), p);
    ck_assert_ptr_eq(ct_graph_engine(g)->pool, p);
    ck_assert_int_eq(ct_graph_engine(g)->wino_du_transposed, -1);

    ct_engine_opts o;
    ct_engine_opts_init(&o);
    o.pool = q;
    o.conv_algo = CT_CONV_ALGO_WINOGRAD;
    o.wino_tile = 4;
    o.wino_chunk_floats = 12345;
    o.wino_du_transposed = 1;
    ct_graph_set_engine(g, &o);
    o.wino_tile = 2; /* the graph keeps a copy */
    e = ct_graph_engine(g);
    ck_assert_ptr_eq(e->pool, q);
    ck_assert_ptr_eq(ct_graph_pool(g), q);
    ck_assert_int_eq(e->conv_algo, CT_CONV_ALGO_WINOGRAD);
    ck_assert_int_eq(e->wino_tile, 4);
    ck_assert_int_eq(e->wino_chunk_floats, 12345);
    ck_assert_int_eq(e->wino_du_transposed, 1);

    ct_graph_set_pool(g, p); /* keeps the other options */
    e = ct_graph_engine(g);
    ck_assert_ptr_eq(e->pool, p);
    ck_assert_int_eq(e->conv_algo, CT_CONV_ALGO_WINOGRAD);
    ck_assert_int_eq(e->wino_tile, 4);
    ck_assert_int_eq(e->wino_chunk_floats, 12345);
    ck_assert_int_eq(e->wino_du_transposed, 1);
    ct_graph_set_pool(g, NULL);
    ck_assert_ptr_null(ct_graph_pool(g));
    ck_assert_int_eq(ct_graph_engine(g)->wino_tile, 4);

    ct_graph_free(g);
    ct_threadpool_free(p);
    ct_threadpool_free(q);
}
END_TEST

int main(void) {
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parallel_for_covers_every_index_once);
    tcase_add_test(tc, nested_calls_run_serially);
    tcase_add_test(tc, jobs_and_loops_together);
    tcase_add_test(tc, graph_pool_and_engine);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}

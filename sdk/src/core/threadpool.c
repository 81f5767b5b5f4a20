/* The thread pool: low-latency fork-join loops and background jobs.
 *
 * Fork-join: the caller publishes a loop descriptor and a 64-bit "ticket"
 * word packing (generation, next chunk, chunk count). Every participant
 * (the caller included) claims chunks by compare-and-swap on the ticket,
 * and only reads the descriptor after a successful claim; a claim can
 * only succeed while its generation's loop is unfinished, so the
 * descriptor is stable whenever it is read. The caller waits until all
 * chunks are done, not until all workers showed up, so a worker busy with
 * a background job never delays a loop. Chunk boundaries depend only on
 * (n, grain, thread count), never on timing.
 *
 * Idle workers spin briefly (a step issues loops back to back) and then
 * sleep on a condition variable, so an idle pool costs no CPU. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "contrast/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CT__PAUSE() _mm_pause()
#else
#define CT__PAUSE() ((void)0)
#endif

#define CT__CHUNKS_PER_THREAD 4
#define CT__SPIN_ITERS 4000 /* ~50-250 us of pause: covers the gap between two ops */

struct ct_job {
    void (*fn)(void *arg);
    void *arg;
    struct ct_job *next;
    bool done;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
};

struct ct_threadpool {
    int threads; /* workers + the caller */
    pthread_t *workers;
    int n_workers;

    /* fork-join */
    _Atomic uint64_t ticket; /* gen:32 | next:16 | count:16 */
    _Atomic int64_t done;    /* chunks finished in the current loop */
    ct_range_fn fn;
    void *ctx;
    int64_t n;
    pthread_mutex_t run_lock; /* one loop at a time; others run serially */

    /* sleeping and background jobs */
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* workers wait here */
    pthread_cond_t job_done;
    _Atomic int sleepers;
    struct ct_job *head, *tail;
    _Atomic int queued;
    int running_jobs;
    bool stop;
};

static _Thread_local int ct__in_parallel; /* > 0 inside a worker or a loop body */
static ct_threadpool *_Atomic ct__default;

static inline uint64_t ct__tk(uint32_t gen, uint32_t next, uint32_t count) {
    return ((uint64_t)gen << 32) | ((uint64_t)next << 16) | count;
}

/* Claim and run chunks of the current loop until none are left. */
static void ct__work_loop(ct_threadpool *p, int worker) {
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        uint32_t next = (uint32_t)(t >> 16) & 0xffffu, count = (uint32_t)t & 0xffffu;
        if (next >= count) return;
        uint64_t want = ct__tk((uint32_t)(t >> 32), next + 1, count);
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, want, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        int64_t b = p->n * (int64_t)next / count, e = p->n * (int64_t)(next + 1) / count;
        p->fn(p->ctx, b, e, worker);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

static bool ct__has_loop(ct_threadpool *p) {
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    return ((uint32_t)(t >> 16) & 0xffffu) < ((uint32_t)t & 0xffffu);
}

static void ct__run_jobs(ct_threadpool *p) {
    /* called with p->mu held */
    while (p->head) {
        struct ct_job *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        atomic_fetch_sub(&p->queued, 1);
        p->running_jobs++;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        pthread_mutex_lock(&p->mu);
        p->running_jobs--;
        j->done = true;
        pthread_cond_broadcast(&p->job_done);
    }
}

typedef struct {
    ct_threadpool *p;
    int id;
} ct__worker_arg;

static void *ct__worker_main(void *argp) {
    ct__worker_arg a = *(ct__worker_arg *)argp;
    free(argp);
    ct_threadpool *p = a.p;
    ct__in_parallel = 1;
    for (;;) {
        int spins = 0;
        while (!ct__has_loop(p) && !atomic_load(&p->queued) && spins < CT__SPIN_ITERS) {
            CT__PAUSE();
            spins++;
        }
        if (ct__has_loop(p)) {
            ct__work_loop(p, a.id);
            continue;
        }
        pthread_mutex_lock(&p->mu);
        ct__run_jobs(p);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        atomic_fetch_add(&p->sleepers, 1); /* seq_cst: pairs with the poster's check */
        while (!p->stop && !p->head && !ct__has_loop(p)) pthread_cond_wait(&p->wake, &p->mu);
        atomic_fetch_sub(&p->sleepers, 1);
        pthread_mutex_unlock(&p->mu);
    }
}

ct_threadpool *ct_threadpool_new(int threads, ct_error *err) {
    if (threads < 1) threads = 1;
    if (threads > 1024) {
        ct_error_set(err, CT_ERR_INVALID, "threadpool: %d threads is too many (at most 1024)", threads);
        return NULL;
    }
    ct_threadpool *p = calloc(1, sizeof *p);
    if (!p) {
        ct_error_set(err, CT_ERR_NOMEM, "threadpool: out of memory");
        return NULL;
    }
    p->threads = threads;
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->queued, 0);
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->job_done, NULL);
    p->workers = calloc((size_t)threads, sizeof *p->workers);
    if (!p->workers) {
        ct_threadpool_free(p);
        ct_error_set(err, CT_ERR_NOMEM, "threadpool: out of memory");
        return NULL;
    }
    for (int i = 1; i < threads; i++) {
        ct__worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        a->p = p;
        a->id = i;
        if (pthread_create(&p->workers[p->n_workers], NULL, ct__worker_main, a) != 0) {
            free(a);
            break;
        }
        p->n_workers++;
    }
    if (p->n_workers != threads - 1) {
        int made = p->n_workers;
        ct_threadpool_free(p);
        ct_error_set(err, CT_ERR_NOMEM, "threadpool: could only start %d of %d worker threads", made,
                     threads - 1);
        return NULL;
    }
    return p;
}

void ct_threadpool_free(ct_threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    /* Jobs already submitted still run: their owners wait on them. */
    while (p->head || p->running_jobs) {
        if (p->n_workers == 0) {
            ct__run_jobs(p);
            continue;
        }
        pthread_cond_broadcast(&p->wake);
        pthread_cond_wait(&p->job_done, &p->mu);
    }
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->run_lock);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->job_done);
    if (atomic_load(&ct__default) == p) atomic_store(&ct__default, NULL);
    free(p);
}

int ct_threadpool_size(const ct_threadpool *p) { return p ? p->threads : 1; }

void ct_parallel_for(ct_threadpool *p, int64_t n, int64_t grain, ct_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    /* Up to CT__CHUNKS_PER_THREAD chunks per thread, claimed dynamically:
     * when one thread is slowed (another program, an interrupt, uneven
     * work) the others take more chunks instead of waiting at the join. */
    int64_t chunks = (n + grain - 1) / grain;
    if (p && chunks > (int64_t)p->threads * CT__CHUNKS_PER_THREAD) chunks = (int64_t)p->threads * CT__CHUNKS_PER_THREAD;
    if (chunks > 0xffff) chunks = 0xffff;
    if (!p || p->n_workers == 0 || chunks <= 1 || ct__in_parallel ||
        pthread_mutex_trylock(&p->run_lock) != 0) {
        ct__in_parallel++;
        fn(ctx, 0, n, 0);
        ct__in_parallel--;
        return;
    }
    ct__in_parallel++;
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint32_t gen = (uint32_t)(atomic_load(&p->ticket) >> 32) + 1;
    atomic_store(&p->ticket, ct__tk(gen, 0, (uint32_t)chunks)); /* seq_cst: publishes the loop */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    ct__work_loop(p, 0);
    while (atomic_load_explicit(&p->done, memory_order_acquire) < chunks) CT__PAUSE();
    ct__in_parallel--;
    pthread_mutex_unlock(&p->run_lock);
}

ct_job *ct_threadpool_submit(ct_threadpool *p, void (*fn)(void *arg), void *arg) {
    ct_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->fn = fn;
    j->arg = arg;
    if (!p || p->n_workers == 0) { /* nobody to hand it to: run it now */
        fn(arg);
        j->done = true;
        return j;
    }
    j->mu = &p->mu;
    j->cv = &p->job_done;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    atomic_fetch_add(&p->queued, 1);
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    return j;
}

void ct_job_wait(ct_job *j) {
    if (!j) return;
    if (j->mu) {
        pthread_mutex_lock(j->mu);
        while (!j->done) pthread_cond_wait(j->cv, j->mu);
        pthread_mutex_unlock(j->mu);
    }
    free(j);
}

void ct_set_default_pool(ct_threadpool *p) { atomic_store(&ct__default, p); }

ct_threadpool *ct_default_pool(void) { return atomic_load(&ct__default); }

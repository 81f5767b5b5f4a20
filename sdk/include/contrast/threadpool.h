/* contrast SDK — the thread pool.
 *
 * One pool, owned by the host, serves two uses: fork-join loops inside ops
 * (ct_parallel_for) and background jobs such as batch prefetching
 * (ct_threadpool_submit). Work is split by index ranges that do not depend
 * on timing, so results never depend on the thread count. */
#ifndef CONTRAST_THREADPOOL_H
#define CONTRAST_THREADPOOL_H

#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_threadpool ct_threadpool;

/* A pool with `threads` workers in total, counting the caller of
 * ct_parallel_for (threads <= 1: everything runs on the caller). */
ct_threadpool *ct_threadpool_new(int threads, ct_error *err);

/* Wait for submitted jobs, stop the workers and free. NULL is ignored. */
void ct_threadpool_free(ct_threadpool *p);

/* Total threads (>= 1). NULL pool gives 1. */
int ct_threadpool_size(const ct_threadpool *p);

/* fn(ctx, begin, end, worker) over [0, n) in chunks of at least `grain`.
 * Blocks until all chunks are done. `p` NULL runs serially. Reentrant calls
 * from inside a worker run serially. */
typedef void (*ct_range_fn)(void *ctx, int64_t begin, int64_t end, int worker);
void ct_parallel_for(ct_threadpool *p, int64_t n, int64_t grain, ct_range_fn fn, void *ctx);

/* A background job: fn(arg) runs on some worker; ct_job_wait() blocks until
 * it finished and frees the handle. NULL on OOM. */
typedef struct ct_job ct_job;
ct_job *ct_threadpool_submit(ct_threadpool *p, void (*fn)(void *arg), void *arg);
void ct_job_wait(ct_job *j);

/* Deprecated since ABI 1.2, kept so 1.1 plugins still link: a process-wide
 * pool slot that no op reads any more (ops use the graph's pool,
 * ct_graph_pool in tensor.h) and the host no longer sets, so
 * ct_default_pool() returns NULL unless a program set it itself. */
void ct_set_default_pool(ct_threadpool *p);
ct_threadpool *ct_default_pool(void);

#ifdef __cplusplus
}
#endif
#endif

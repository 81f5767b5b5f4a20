/* Data-parallel training across processes (`mpirun -np P contrast train`).
 *
 * The process-wide communicator: MPI's world when the program was started
 * by a launcher (mpirun, mpiexec, srun) and built with MPI, else a serial
 * one (rank 0 of 1) whose collectives are copies or no-ops, so callers do
 * not branch on the backend. Only the main thread calls these.
 *
 * What crosses ranks during training, and how (docs/cluster.md):
 *  - the gradient buffer of the store, averaged in a fixed order
 *    (ct_dist_average_grads);
 *  - the embeddings of the seam, all-gathered with gradients flowing back
 *    to each rank's own rows (ct_dist_gather_embeddings);
 *  - batch-norm statistics under train.sync_bn (ct_dist_engine_hook);
 *  - MoCo's key batch, for its shuffled batch norm across ranks
 *    (ct_dist_gather_batch);
 *  - the parameters once at start (ct_dist_broadcast from rank 0). */
#ifndef CONTRAST_HOST_DIST_H
#define CONTRAST_HOST_DIST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contrast/contrast.h"

/* Start the communicator: MPI when built with it and the environment shows
 * a launcher (or CONTRAST_MPI=1), serial otherwise. Idempotent. A failure
 * to start MPI is CT_ERR_IO with MPI's message. */
ct_status ct_dist_start(int *argc, char ***argv, ct_error *err);

/* Finish (MPI_Finalize when it was started). Idempotent. */
void ct_dist_finish(void);

/* This process's rank and the number of ranks (0 and 1 when serial or
 * before start). */
int ct_dist_rank(void);
int ct_dist_size(void);

/* "Open MPI v4.1.4 ..." when built with MPI, "none" otherwise (static). */
const char *ct_dist_backend(void);

/* Whether MPI is built in. */
bool ct_dist_built_with_mpi(void);

/* Print "contrast: rank R of P: MESSAGE" on stderr and end the whole job
 * with exit status `code` (MPI_Abort: the launcher stops every rank), or
 * return when serial. */
void ct_dist_abort(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Whether every rank passes ok = true (a logical and over ranks). */
bool ct_dist_all_ok(bool ok);

/* ---- collectives (all ranks call them in the same order) ------------------ */

/* Sum n doubles in place over ranks (every rank gets the same sums). */
ct_status ct_dist_sum_doubles(double *v, size_t n, ct_error *err);

/* Sum n floats in place over ranks (MPI's own algorithm: fast, the order
 * of additions is MPI's). */
ct_status ct_dist_sum_floats(float *v, size_t n, ct_error *err);

/* Average n floats in place over ranks in a fixed order: each rank sums
 * one slice of the buffer over ranks 0..P-1 in rank order (in double),
 * then the slices are all-gathered; so every rank gets bit-identical
 * values whatever MPI's algorithms (a reduce-scatter + all-gather, the
 * same traffic as a ring all-reduce). */
ct_status ct_dist_average_floats(float *v, size_t n, ct_error *err);

/* Copy root's n floats to every rank. */
ct_status ct_dist_broadcast(float *v, size_t n, int root, ct_error *err);

/* Every rank's `n` values of `bytes` bytes each, rank order, into out
 * (room for the sum of every rank's n); counts[r] receives rank r's n
 * (ct_dist_size() entries, may be NULL). Ranks may give different n. */
ct_status ct_dist_all_gather(const void *in, int64_t n, size_t bytes, void *out, int64_t *counts, ct_error *err);

/* The number of values every rank would give ct_dist_all_gather: counts[r]
 * = rank r's n; returns their sum. */
int64_t ct_dist_gather_counts(int64_t n, int64_t *counts, ct_error *err);

/* Wait for every rank. */
ct_status ct_dist_barrier(ct_error *err);

/* ---- training helpers -------------------------------------------------------- */

/* Average the store's gradient buffer over ranks (ct_dist_average_floats).
 * No-op on one rank. */
ct_status ct_dist_average_grads(ct_params *store, ct_error *err);

/* Make every rank hold rank 0's parameters and buffers (after initialising
 * or resuming). No-op on one rank. */
ct_status ct_dist_broadcast_store(ct_params *store, ct_error *err);

/* x (n_r, F) on rank r -> (sum of n_r, F) rows, rank 0's first, as a graph
 * op: backward sums the output's gradient over ranks (every rank computed
 * the same loss over the same rows) and gives each rank its own rows'
 * part, what PyTorch's GatherLayer does, as one reduce-scatter (each rank
 * receives only its rows of the sum); the trainer's average of gradients
 * then gives the one-process gradient. Fails the graph on a communication
 * error. */
ct_tensor *ct_dist_gather_rows(ct_graph *g, ct_tensor *x);

/* The seam's embeddings of every rank as one batch: each set gathered with
 * ct_dist_gather_rows, items gathered, group ids renumbered so that rank
 * r's groups follow rank r-1's (rank 0's unchanged), rows = the global
 * rows. Arrays in the graph's arena. */
ct_status ct_dist_gather_embeddings(ct_graph *g, ct_embeddings *e);

/* Every rank's samples of b as one batch, rank order: each view
 * all-gathered into a new leaf tensor of g (no gradient), items and
 * labels (when b has them) too; n = the global count. Serial: *out = *b.
 * Fails the graph on a communication error. */
ct_status ct_dist_gather_batch(ct_graph *g, const ct_batch *b, ct_batch *out);

/* Batch-norm statistics across ranks (train.sync_bn): sets o's all-reduce
 * hook to the communicator's double sum. */
void ct_dist_engine_hook(ct_engine_opts *o);

/* Seconds spent in the training collectives since start (waiting for the
 * slowest rank included): the gradient average, the gathers (the seam's,
 * forward and backward, and ct_dist_gather_batch), synchronised batch
 * norm. */
typedef struct ct_dist_times {
    double average_s, gather_s, batchnorm_s;
} ct_dist_times;
ct_dist_times ct_dist_time_spent(void);

/* Internal: seconds the bucketed average (grad_buckets.c) spent. */
void ct__dist_count_average(double s);

/* ---- backend (dist_mpi.c when built with MPI, else serial stubs) ---------- */

/* Internal: each returns CT_OK with nothing done when the backend is not
 * running. */
bool ct__dist_mpi_wanted(void);
ct_status ct__dist_mpi_start(int *argc, char ***argv, int *rank, int *size, ct_error *err);
void ct__dist_mpi_finish(void);
const char *ct__dist_mpi_version(void);
void ct__dist_mpi_abort(int code);
ct_status ct__dist_mpi_sum(void *v, size_t n, bool dbl, ct_error *err);
ct_status ct__dist_mpi_bcast(float *v, size_t n, int root, ct_error *err);
ct_status ct__dist_mpi_allgatherv(const void *in, size_t in_bytes, void *out, const int64_t *bytes_of,
                                  ct_error *err);
ct_status ct__dist_mpi_alltoallv(const void *in, const int64_t *send_bytes, void *out, const int64_t *recv_bytes,
                                 ct_error *err);
ct_status ct__dist_mpi_reduce_scatter(const float *in, float *out, const int64_t *counts, ct_error *err);
ct_status ct__dist_mpi_barrier(ct_error *err);
/* Nonblocking: the reduce-scatter and all-gather phases of the bucketed
 * gradient average, each on a communicator of its own; a request ends in
 * test (done: freed) or wait (freed). NULL requests are finished ones. */
typedef struct ct__dist_req ct__dist_req;
ct_status ct__dist_mpi_ialltoallv(const void *in, const int64_t *send_bytes, void *out, const int64_t *recv_bytes,
                                  ct__dist_req **req, ct_error *err);
ct_status ct__dist_mpi_iallgatherv(const void *in, size_t in_bytes, void *out, const int64_t *bytes_of,
                                   ct__dist_req **req, ct_error *err);
ct_status ct__dist_mpi_test(ct__dist_req *req, bool *done, ct_error *err);
ct_status ct__dist_mpi_wait(ct__dist_req *req, ct_error *err);

#endif

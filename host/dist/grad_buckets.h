/* The gradient average over ranks in buckets, overlapped with backward
 * (train.grad_overlap; docs/cluster.md).
 *
 * The store's gradient buffer is cut, at tensor boundaries, into buckets
 * of about `bucket_floats` values, numbered from the end of the buffer
 * (the heads, whose gradients backward finishes first) to its start.
 * During backward, a hook on the graph (ct_graph_set_backward_hook) sees
 * each op done; once backward has passed every op that reads a bucket's
 * tensors their gradients are final and the bucket's average starts with
 * nonblocking MPI: the reduce-scatter phase (MPI_Ialltoallv: rank r
 * receives slice r of the bucket from every rank), the sum of each value
 * over ranks 0..P-1 in rank order in double (done by the hook as soon as
 * the phase is seen finished), then the all-gather phase
 * (MPI_Iallgatherv). Buckets start in their fixed order on every rank,
 * each phase on a communicator of its own; what remains is finished after
 * backward. Every value is summed exactly as ct_dist_average_floats sums
 * it, so the averaged gradients are bitwise those of the blocking path,
 * whatever the bucket size. */
#ifndef CONTRAST_HOST_GRAD_BUCKETS_H
#define CONTRAST_HOST_GRAD_BUCKETS_H

#include <stddef.h>

#include "contrast/contrast.h"

typedef struct ct_grad_buckets ct_grad_buckets;

/* Buckets over `store`'s gradient buffer (finalised) for the job's ranks.
 * NULL on out of memory (err set). */
ct_grad_buckets *ct_grad_buckets_new(ct_params *store, size_t bucket_floats, ct_error *err);
void ct_grad_buckets_free(ct_grad_buckets *b);

/* How many buckets the buffer was cut into. */
size_t ct_grad_buckets_count(const ct_grad_buckets *b);

/* ct_graph_backward(g, loss) with the gradient average of every bucket
 * started during it; on return the store's gradients are averaged over
 * ranks. A backward or communication failure is returned with its
 * message in err. */
ct_status ct_grad_buckets_backward(ct_grad_buckets *b, ct_graph *g, ct_tensor *loss, ct_error *err);

#endif

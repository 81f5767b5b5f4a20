/* contrast SDK — tensors and the per-step graph (tape + arena).
 *
 * A ct_tensor is a contiguous float32 array of up to 5 dimensions, laid out
 * row-major (N, T, C, H, W). Tensors made by ops during a step live in the
 * graph's arena and die at ct_graph_reset(); parameters and buffers live in
 * a ct_params store (params.h) and persist.
 *
 * Autograd: every op that has an input requiring a gradient records a node
 * on the graph's tape (its backward function, inputs, output and saved
 * context). ct_graph_backward() walks the tape in reverse. Adding an op is a
 * local change: one forward function that calls ct_graph_record(), one
 * backward function, one gradient test (see ops.h and docs in graph.c). */
#ifndef CONTRAST_TENSOR_H
#define CONTRAST_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_MAX_DIMS 5

enum {
    CT_TENSOR_REQUIRES_GRAD = 1u << 0, /* gradients flow into .grad */
    CT_TENSOR_PARAM = 1u << 1,         /* owned by a ct_params store */
    CT_TENSOR_BUFFER = 1u << 2,        /* persistent, not trained (running stats) */
};

typedef struct ct_tensor {
    float *data;                   /* numel floats, contiguous */
    float *grad;                   /* numel floats or NULL; lazily made for arena tensors */
    int64_t shape[CT_MAX_DIMS];    /* unused trailing dims are 1 */
    int ndim;                      /* 0 (scalar) .. CT_MAX_DIMS */
    int64_t numel;                 /* product of shape[0..ndim) */
    uint32_t flags;                /* CT_TENSOR_* */
    int32_t node;                  /* tape index of the producing op; -1 for leaves */
} ct_tensor;

/* Number of elements of a shape. */
int64_t ct_shape_numel(int ndim, const int64_t *shape);

/* True when both tensors have the same ndim and shape. */
bool ct_tensor_same_shape(const ct_tensor *a, const ct_tensor *b);

/* Write "[2, 3, 28, 28]" into buf (at most n bytes); returns buf. */
char *ct_shape_str(const ct_tensor *t, char *buf, size_t n);

/* ------------------------------------------------------------------ */
/* The per-step graph: an arena for intermediates and a tape for autograd. */

typedef struct ct_graph ct_graph;
typedef struct ct_node ct_node;

/* Backward function of an op: reads node->out->grad and accumulates into the
 * inputs' gradients (ct_tensor_grad() makes them on first use). */
typedef void (*ct_backward_fn)(ct_graph *g, ct_node *node);

#define CT_NODE_MAX_INPUTS 4

/* One recorded op. `ctx` points to op-private saved state in the arena;
 * `iarg`/`farg` hold small scalar arguments so most ops need no ctx. */
struct ct_node {
    ct_backward_fn backward;
    const char *op;                       /* static op name, for errors/profiles */
    ct_tensor *out;
    ct_tensor *in[CT_NODE_MAX_INPUTS];
    int n_in;
    void *ctx;
    int64_t iarg[8];
    float farg[4];
};

/* Create a graph whose arena starts with `arena_bytes` (0: a default) and
 * grows as needed; after the first step's reset the arena is one block, so
 * a steady-state step performs no allocation. Returns NULL on OOM.
 * With CT_ARENA_POISON=1 in the environment every arena allocation is
 * filled with NaN bytes (slower; the test suite runs this way), so an op
 * that reads memory it did not write shows up as NaN. */
ct_graph *ct_graph_new(size_t arena_bytes);

/* Free the graph and its arena. NULL is ignored. */
void ct_graph_free(ct_graph *g);

/* Forget all nodes and arena tensors (keeps the memory). Call after the
 * optimizer step. Also clears the sticky error. */
void ct_graph_reset(ct_graph *g);

/* The engine options of the graph's ops (ABI 1.2): the thread pool their
 * parallel loops run on and the algorithm overrides (engine.h). A new
 * graph has ct_engine_opts_init's defaults, i.e. serial ops. The options
 * are copied; the pool is borrowed and must outlive the graph's steps.
 * Results never depend on the pool's size. */
void ct_graph_set_engine(ct_graph *g, const ct_engine_opts *o);
const ct_engine_opts *ct_graph_engine(const ct_graph *g);

/* The pool alone: set it (keeping the other options) / read it (NULL:
 * serial). Ops pass ct_graph_pool(g) to ct_parallel_for. */
void ct_graph_set_pool(ct_graph *g, ct_threadpool *pool);
ct_threadpool *ct_graph_pool(const ct_graph *g);

/* Enable or disable recording (no_grad for evaluation and EMA encoders).
 * Returns the previous setting. */
bool ct_graph_set_grad(ct_graph *g, bool enabled);

/* Training mode flag read by ops such as batch norm (true: batch statistics
 * and running-average updates; false: running statistics). Default true.
 * Returns the previous setting. */
bool ct_graph_set_train(ct_graph *g, bool train);
bool ct_graph_is_train(const ct_graph *g);

/* Since ABI 1.2: the momentum every batch norm of this graph updates its
 * running statistics with in training mode, in place of the momentum the
 * op was given (0, the default, or a value outside (0, 1]: each op's
 * own). Kept across ct_graph_reset. Precise batch norm (evaluation.
 * precise_bn_batches) sets 1/(k+1) for its k-th batch, so the running
 * statistics end as the plain mean of the batches' statistics whatever
 * momentum the encoder was built with. Returns the previous setting. */
float ct_graph_set_bn_momentum(ct_graph *g, float momentum);
float ct_graph_bn_momentum(const ct_graph *g);

/* Sticky error: the first failing op stores its status and message, returns
 * NULL, and every later op given a NULL input returns NULL. Check once after
 * building the loss. */
ct_status ct_graph_status(const ct_graph *g);
const char *ct_graph_error(const ct_graph *g);

/* Record a failure (used by ops); returns NULL for `return ct_graph_fail()`. */
ct_tensor *ct_graph_fail(ct_graph *g, ct_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Allocate `bytes` from the arena, 64-byte aligned, uninitialised. NULL on OOM
 * (and the graph's sticky error is set). */
void *ct_graph_alloc(ct_graph *g, size_t bytes);

/* A new arena tensor of the given shape (uninitialised / zero-filled).
 * Its flags are 0 and node -1. Owned by the graph until reset. */
ct_tensor *ct_tensor_new(ct_graph *g, int ndim, const int64_t *shape);
ct_tensor *ct_tensor_zeros(ct_graph *g, int ndim, const int64_t *shape);

/* Convenience constructors: ct_tensor_new4(g, n, c, h, w) etc. */
ct_tensor *ct_tensor_new1(ct_graph *g, int64_t d0);
ct_tensor *ct_tensor_new2(ct_graph *g, int64_t d0, int64_t d1);
ct_tensor *ct_tensor_new4(ct_graph *g, int64_t d0, int64_t d1, int64_t d2, int64_t d3);

/* Wrap caller-owned memory as an arena tensor header (data is not copied;
 * the caller keeps it alive until reset). Used for input batches. */
ct_tensor *ct_tensor_wrap(ct_graph *g, float *data, int ndim, const int64_t *shape);

/* The gradient buffer of t, allocated and zeroed on first use (for arena
 * tensors; parameters already have one). Used by backward functions. */
float *ct_tensor_grad(ct_graph *g, ct_tensor *t);

/* For op authors: true when the op's output must be recorded (grad mode is
 * on and some input requires a gradient). */
bool ct_graph_needs_grad(const ct_graph *g, ct_tensor *const *inputs, int n);

/* For op authors: record `out` as produced by an op with backward `fn` and
 * the given inputs; sets out->node and CT_TENSOR_REQUIRES_GRAD when
 * recording is needed, otherwise does nothing and returns NULL. Returns the
 * node so the caller can fill ctx/iarg/farg. */
ct_node *ct_graph_record(ct_graph *g, const char *op, ct_backward_fn fn, ct_tensor *out,
                         ct_tensor *const *inputs, int n);

/* Run reverse-mode autodiff from a scalar `loss` (its gradient is seeded to
 * 1). Parameter gradients accumulate into their store's grad buffer.
 * Leaf tensors (made by ct_tensor_new/wrap, not by an op) keep their .grad;
 * the gradients of op outputs are released (set to NULL) as soon as their
 * producing op's backward ran, and the memory is reused within the pass. */
ct_status ct_graph_backward(ct_graph *g, ct_tensor *loss);

/* Since 1.2: the recorded ops, in recording order (backward visits them
 * from the last to the first): their count, and the i-th (NULL out of
 * range). Valid until the graph is reset. */
int64_t ct_graph_node_count(const ct_graph *g);
const ct_node *ct_graph_node_at(const ct_graph *g, int64_t i);

/* Since 1.2: fn(ctx, g, i) is called by ct_graph_backward after the
 * backward of tape node i ran (nodes whose output got no gradient are
 * skipped, and so is their call), from the thread that runs backward.
 * Once every node that reads a tensor has been called, that tensor's
 * gradient is final: a data-parallel host starts reducing a bucket of
 * parameter gradients then, while the rest of backward runs. fn = NULL
 * removes it; it stays set across resets. */
typedef void (*ct_backward_hook_fn)(void *ctx, ct_graph *g, int64_t node);
void ct_graph_set_backward_hook(ct_graph *g, ct_backward_hook_fn fn, void *ctx);

/* Bytes of arena in use now / at the high-water mark (for memory reports). */
size_t ct_graph_arena_used(const ct_graph *g);
size_t ct_graph_arena_peak(const ct_graph *g);

#ifdef __cplusplus
}
#endif
#endif

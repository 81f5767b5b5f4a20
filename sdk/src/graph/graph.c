/* The per-step graph: an arena for intermediates and a tape for autograd.
 *
 * Arena: a list of 64-byte aligned blocks used as bump allocators. During a
 * step new blocks are added when one runs out; at ct_graph_reset() several
 * blocks are coalesced into one block big enough for the high-water mark,
 * so from the second step on a step of the same shape allocates nothing.
 *
 * Tape: an array of node pointers (nodes live in the arena). The array keeps
 * its capacity across resets, so it also stops growing after one step.
 *
 * Writing an op (see ops_elementwise.c for short examples):
 *   1. check inputs (NULL means an earlier op failed: return NULL);
 *   2. out = ct_tensor_new(g, ...); compute the forward;
 *   3. node = ct_graph_record(g, "name", backward_fn, out, inputs, n);
 *      when node is non-NULL, save what backward needs in node->iarg/farg
 *      or node->ctx (allocated with ct_graph_alloc);
 *   4. backward_fn(g, node) reads node->out->grad and, for every input
 *      with CT_TENSOR_REQUIRES_GRAD, adds into ct_tensor_grad(g, input).
 * Gradients always accumulate (+=), so a tensor used twice is correct. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/tensor.h"
#include "graph/graph_note.h"

#define CT__ARENA_ALIGN 64
#define CT__GRAPH_NOTES 64 /* distinct notes remembered per graph */
#define CT__ARENA_DEFAULT ((size_t)4 << 20)
#define CT__ARENA_MAX_BLOCKS 64

/* A released gradient buffer, linked through its own first bytes. */
typedef struct ct__free {
    size_t bytes;
    struct ct__free *next;
} ct__free;

typedef struct ct__block {
    char *mem;
    size_t cap;
    size_t used;
} ct__block;

struct ct_graph {
    ct__block blocks[CT__ARENA_MAX_BLOCKS];
    int n_blocks;
    size_t used_total; /* bytes handed out this step, alignment included */
    size_t peak;       /* high-water mark of used_total over all steps */
    ct__free *free_list; /* gradients released during backward, for reuse */
    ct_node **tape;
    int64_t n_nodes;
    int64_t cap_nodes;
    bool grad_enabled;
    bool train;
    float bn_momentum; /* ct_graph_set_bn_momentum (0: each batch norm's own) */
    bool poison; /* CT_ARENA_POISON: fill every allocation with NaN bytes */
    ct_engine_opts engine; /* pool and algorithm choices of this graph's ops */
    ct_backward_hook_fn backward_hook; /* after each tape position in backward */
    void *backward_hook_ctx;
    ct_status status;
    char error[CT_ERROR_MSG_MAX];
    uint64_t notes[CT__GRAPH_NOTES]; /* hashes of the notes said (graph/graph_note.h); kept by reset */
    int n_notes;
};

static size_t ct__round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static bool ct__block_make(ct__block *b, size_t cap) {
    void *mem = NULL;
    cap = ct__round_up(cap, CT__ARENA_ALIGN);
    if (posix_memalign(&mem, CT__ARENA_ALIGN, cap) != 0) return false;
    b->mem = mem;
    b->cap = cap;
    b->used = 0;
    return true;
}

ct_graph *ct_graph_new(size_t arena_bytes) {
    ct_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    if (!ct__block_make(&g->blocks[0], arena_bytes ? arena_bytes : CT__ARENA_DEFAULT)) {
        free(g);
        return NULL;
    }
    g->n_blocks = 1;
    g->grad_enabled = true;
    g->train = true;
    g->status = CT_OK;
    ct_engine_opts_init(&g->engine);
    /* A debugging aid for op authors (the test suite sets it): an op that
     * reads scratch or a "fresh" gradient before writing it then produces
     * NaN instead of silently reading zeros from untouched pages. */
    const char *e = getenv("CT_ARENA_POISON");
    g->poison = e && *e && strcmp(e, "0") != 0;
    return g;
}

void ct_graph_free(ct_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_blocks; i++) free(g->blocks[i].mem);
    free(g->tape);
    free(g);
}

void ct_graph_reset(ct_graph *g) {
    if (!g) return;
    if (g->n_blocks > 1) {
        /* Coalesce: one block sized for the worst step seen (plus slack so
         * a slightly larger step does not spill). If that allocation fails
         * keep the old blocks; they still work. */
        ct__block big;
        if (ct__block_make(&big, g->peak + g->peak / 16 + CT__ARENA_ALIGN)) {
            for (int i = 0; i < g->n_blocks; i++) free(g->blocks[i].mem);
            g->blocks[0] = big;
            g->n_blocks = 1;
        }
    }
    for (int i = 0; i < g->n_blocks; i++) g->blocks[i].used = 0;
    g->used_total = 0;
    g->free_list = NULL;
    g->n_nodes = 0;
    g->status = CT_OK;
    g->error[0] = '\0';
}

void ct_graph_set_engine(ct_graph *g, const ct_engine_opts *o) { g->engine = *o; }

/* FNV-1a: notes are told apart by their text. */
static uint64_t ct__note_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

bool ct__graph_note(ct_graph *g, const char *fmt, ...) {
    if (!g) return false;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const uint64_t h = ct__note_hash(msg);
    for (int i = 0; i < g->n_notes; i++)
        if (g->notes[i] == h) return false;
    if (g->n_notes == CT__GRAPH_NOTES) return false; /* the 64 said are the ones to fix first */
    g->notes[g->n_notes++] = h;
    fprintf(stderr, "contrast: note: %s\n", msg);
    return true;
}

const ct_engine_opts *ct_graph_engine(const ct_graph *g) { return &g->engine; }

void ct_graph_set_pool(ct_graph *g, ct_threadpool *pool) { g->engine.pool = pool; }

ct_threadpool *ct_graph_pool(const ct_graph *g) { return g ? g->engine.pool : NULL; }

bool ct_graph_set_grad(ct_graph *g, bool enabled) {
    bool old = g->grad_enabled;
    g->grad_enabled = enabled;
    return old;
}

bool ct_graph_set_train(ct_graph *g, bool train) {
    bool old = g->train;
    g->train = train;
    return old;
}

bool ct_graph_is_train(const ct_graph *g) { return g->train; }

float ct_graph_set_bn_momentum(ct_graph *g, float momentum) {
    float old = g->bn_momentum;
    g->bn_momentum = momentum > 0.0f && momentum <= 1.0f ? momentum : 0.0f;
    return old;
}

float ct_graph_bn_momentum(const ct_graph *g) { return g->bn_momentum; }

ct_status ct_graph_status(const ct_graph *g) { return g->status; }

const char *ct_graph_error(const ct_graph *g) { return g->error; }

ct_tensor *ct_graph_fail(ct_graph *g, ct_status code, const char *fmt, ...) {
    if (g->status != CT_OK) return NULL; /* keep the first error: it is the cause */
    g->status = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    return NULL;
}

/* Best fit among released buffers, accepting up to 1.5x the request. */
static void *ct__reuse(ct_graph *g, size_t need) {
    ct__free **best = NULL;
    for (ct__free **f = &g->free_list; *f; f = &(*f)->next) {
        size_t b = (*f)->bytes;
        if (b >= need && b <= need + need / 2 && (!best || b < (*best)->bytes)) {
            best = f;
            if (b == need) break;
        }
    }
    if (!best) return NULL;
    ct__free *hit = *best;
    *best = hit->next;
    return hit;
}

void *ct_graph_alloc(ct_graph *g, size_t bytes) {
    size_t need = ct__round_up(bytes ? bytes : 1, CT__ARENA_ALIGN);
    if (g->free_list) {
        void *p = ct__reuse(g, need);
        if (p) {
            if (g->poison) memset(p, 0xFF, need);
            return p;
        }
    }
    /* Only the last block has room worth looking at: earlier ones were full
     * when it was added. */
    ct__block *b = &g->blocks[g->n_blocks - 1];
    if (b->cap - b->used < need) {
        if (g->n_blocks == CT__ARENA_MAX_BLOCKS) {
            ct_graph_fail(g, CT_ERR_NOMEM, "graph arena: more than %d blocks", CT__ARENA_MAX_BLOCKS);
            return NULL;
        }
        size_t total = 0;
        for (int i = 0; i < g->n_blocks; i++) total += g->blocks[i].cap;
        /* Geometric growth keeps the block count logarithmic; untouched
         * pages of a big block cost no resident memory. */
        size_t cap = need > total ? need : total;
        ct__block nb;
        if (!ct__block_make(&nb, cap)) {
            ct_graph_fail(g, CT_ERR_NOMEM, "graph arena: cannot allocate %zu bytes", cap);
            return NULL;
        }
        g->blocks[g->n_blocks++] = nb;
        b = &g->blocks[g->n_blocks - 1];
    }
    void *p = b->mem + b->used;
    if (g->poison) memset(p, 0xFF, need);
    b->used += need;
    g->used_total += need;
    if (g->used_total > g->peak) g->peak = g->used_total;
    return p;
}

size_t ct_graph_arena_used(const ct_graph *g) { return g->used_total; }

size_t ct_graph_arena_peak(const ct_graph *g) { return g->peak; }

/* ------------------------------------------------------------------ */
/* Tensors */

static ct_tensor *ct__tensor_header(ct_graph *g, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > CT_MAX_DIMS)
        return ct_graph_fail(g, CT_ERR_SHAPE, "tensor: %d dimensions (at most %d)", ndim, CT_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0)
            return ct_graph_fail(g, CT_ERR_SHAPE, "tensor: dimension %d has size %lld", i,
                                 (long long)shape[i]);
    ct_tensor *t = ct_graph_alloc(g, sizeof *t);
    if (!t) return NULL;
    t->data = NULL;
    t->grad = NULL;
    for (int i = 0; i < CT_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->ndim = ndim;
    t->numel = ct_shape_numel(ndim, shape);
    t->flags = 0;
    t->node = -1;
    return t;
}

ct_tensor *ct_tensor_new(ct_graph *g, int ndim, const int64_t *shape) {
    ct_tensor *t = ct__tensor_header(g, ndim, shape);
    if (!t) return NULL;
    t->data = ct_graph_alloc(g, (size_t)t->numel * sizeof(float));
    return t->data ? t : NULL;
}

ct_tensor *ct_tensor_zeros(ct_graph *g, int ndim, const int64_t *shape) {
    ct_tensor *t = ct_tensor_new(g, ndim, shape);
    if (t) memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

ct_tensor *ct_tensor_new1(ct_graph *g, int64_t d0) { return ct_tensor_new(g, 1, &d0); }

ct_tensor *ct_tensor_new2(ct_graph *g, int64_t d0, int64_t d1) {
    int64_t s[2] = {d0, d1};
    return ct_tensor_new(g, 2, s);
}

ct_tensor *ct_tensor_new4(ct_graph *g, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t s[4] = {d0, d1, d2, d3};
    return ct_tensor_new(g, 4, s);
}

ct_tensor *ct_tensor_wrap(ct_graph *g, float *data, int ndim, const int64_t *shape) {
    if (!data) return ct_graph_fail(g, CT_ERR_INVALID, "tensor_wrap: NULL data");
    ct_tensor *t = ct__tensor_header(g, ndim, shape);
    if (t) t->data = data;
    return t;
}

float *ct_tensor_grad(ct_graph *g, ct_tensor *t) {
    if (!t->grad) {
        t->grad = ct_graph_alloc(g, (size_t)t->numel * sizeof(float));
        if (t->grad) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    }
    return t->grad;
}

/* ------------------------------------------------------------------ */
/* Tape */

bool ct_graph_needs_grad(const ct_graph *g, ct_tensor *const *inputs, int n) {
    if (!g->grad_enabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && (inputs[i]->flags & CT_TENSOR_REQUIRES_GRAD)) return true;
    return false;
}

ct_node *ct_graph_record(ct_graph *g, const char *op, ct_backward_fn fn, ct_tensor *out,
                         ct_tensor *const *inputs, int n) {
    if (!out || !ct_graph_needs_grad(g, inputs, n)) return NULL;
    CT_ASSERT(n >= 0 && n <= CT_NODE_MAX_INPUTS);
    if (g->n_nodes == g->cap_nodes) {
        int64_t cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        ct_node **tape = realloc(g->tape, (size_t)cap * sizeof *tape);
        if (!tape) {
            ct_graph_fail(g, CT_ERR_NOMEM, "%s: cannot grow the tape", op);
            return NULL;
        }
        g->tape = tape;
        g->cap_nodes = cap;
    }
    ct_node *node = ct_graph_alloc(g, sizeof *node);
    if (!node) return NULL;
    memset(node, 0, sizeof *node);
    node->backward = fn;
    node->op = op;
    node->out = out;
    node->n_in = n;
    for (int i = 0; i < n; i++) node->in[i] = inputs[i];
    out->node = (int32_t)g->n_nodes;
    out->flags |= CT_TENSOR_REQUIRES_GRAD;
    g->tape[g->n_nodes++] = node;
    return node;
}

void ct_graph_set_backward_hook(ct_graph *g, ct_backward_hook_fn fn, void *ctx) {
    if (!g) return;
    g->backward_hook = fn;
    g->backward_hook_ctx = ctx;
}

int64_t ct_graph_node_count(const ct_graph *g) { return g ? g->n_nodes : 0; }

const ct_node *ct_graph_node_at(const ct_graph *g, int64_t i) {
    return g && i >= 0 && i < g->n_nodes ? g->tape[i] : NULL;
}

ct_status ct_graph_backward(ct_graph *g, ct_tensor *loss) {
    if (g->status != CT_OK) return g->status;
    if (!loss) {
        ct_graph_fail(g, CT_ERR_INVALID, "backward: NULL loss");
        return g->status;
    }
    if (loss->numel != 1) {
        ct_graph_fail(g, CT_ERR_SHAPE, "backward: loss has %lld elements, expected a scalar",
                      (long long)loss->numel);
        return g->status;
    }
    if (loss->node < 0 || loss->node >= g->n_nodes || g->tape[loss->node]->out != loss) {
        ct_graph_fail(g, CT_ERR_INVALID,
                      "backward: the loss was not recorded (grad mode off or no input needs a gradient)");
        return g->status;
    }
    float *seed = ct_tensor_grad(g, loss);
    if (!seed) return g->status;
    seed[0] += 1.0f;
    for (int64_t i = loss->node; i >= 0; i--) {
        ct_node *node = g->tape[i];
        ct_tensor *out = node->out;
        if (!out->grad) continue; /* nothing downstream used this output */
        node->backward(g, node);
        if (g->status != CT_OK) return g->status;
        if (g->backward_hook) g->backward_hook(g->backward_hook_ctx, g, i);
        /* Every consumer of `out` comes later on the tape and has already
         * run, so its gradient is dead: hand the buffer to later
         * allocations of this backward pass. This keeps the number of live
         * activation-sized gradients small (peak memory), like PyTorch
         * freeing non-leaf .grad. Leaves and parameters keep theirs. */
        if (out != loss && !(out->flags & CT_TENSOR_PARAM) && out->numel * sizeof(float) >= sizeof(ct__free)) {
            ct__free *f = (ct__free *)out->grad;
            f->bytes = ct__round_up((size_t)out->numel * sizeof(float), CT__ARENA_ALIGN);
            f->next = g->free_list;
            g->free_list = f;
            out->grad = NULL;
        }
    }
    g->free_list = NULL; /* released buffers stay unused until reset */
    return CT_OK;
}

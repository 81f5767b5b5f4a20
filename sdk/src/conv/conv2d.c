/* 2-D convolution (NCHW, groups = 1): forward, data gradient, weight and
 * bias gradients.
 *
 * Strategy (why): the step's time is almost all convolution, and OpenBLAS
 * sgemm is the fastest matrix engine we have, so every conv is a GEMM.
 *  - General kernels: im2col into a per-worker scratch matrix and one sgemm
 *    per *group* of G images, with G chosen so that the GEMM has about
 *    CT__CONV_COLS columns. Small late layers (7x7 maps) would otherwise
 *    give GEMMs with N = 49, far below sgemm's efficient range.
 *  - 1x1 stride 1 pad 0: the input already is the column matrix; no im2col.
 *  - Images are split over the thread pool (ct_parallel_for), each worker
 *    calling single-threaded sgemm on its own images. For the small GEMMs
 *    of 28x28 inputs this scales better than OpenBLAS's internal threads.
 *    When OpenBLAS itself runs several threads we let it, and loop serially.
 *  - Backward recomputes im2col instead of keeping the column matrix (9x
 *    the input size) alive between forward and backward. For stride-1
 *    kernels the data gradient is itself a forward convolution (dY with
 *    the flipped kernel), done in the same pass over each image group as
 *    the weight gradient; strided kernels use GEMM + col2im.
 *  - The first writer of an input gradient overwrites it (no memset).
 *  - Weight gradients of each group go to their own slot and are summed in
 *    group order, so results do not depend on the thread count.
 *  - 3x3 stride-1 pad-1 kernels with >= 16 input channels go to Winograd
 *    F(2x2,3x3) (winograd.c: 2.25x fewer multiplications; measured
 *    about 2x faster per layer on the reference model's 28x28 and 14x14
 *    layers); the graph's engine option conv_algo (CT_CONV_ALGO=im2col|
 *    winograd, read once at start-up) forces the choice.
 *  - The products go through ct__gemm (gemm/gemm.h): float32 (our AVX-512
 *    kernel at kernel level avx512, else OpenBLAS sgemm), or with the
 *    engine option precision bf16 the bfloat16 kernel; their packing
 *    scratch sits at the end of each worker's scratch (Winograd layers
 *    stay float32 OpenBLAS).
 *  - A strided kernel outside the phase-plane path takes the generic
 *    strided im2col/col2im loops and says so once per graph (graph_note.h).
 * All scratch memory comes from the graph arena: no malloc in a step.
 * The lowering and Winograd kernels come from the graph's SIMD level
 * (core/kernels.h); this file's own loops are the same at every level. */
#include <cblas.h>
#include <string.h>

#include "contrast/ops.h"
#include "contrast/threadpool.h"
#include "conv/im2col.h"
#include "core/kernels.h"
#include "conv/stride2.h"
#include "conv/winograd.h"
#include "gemm/gemm.h"
#include "graph/graph_note.h"

/* Target GEMM columns per group (images x output pixels). Measured on the
 * reference model (conv time per step, 1 thread): 384 and 768 equal, 1536
 * 14% slower (cache reuse of the column matrix lost). */
#ifndef CT__CONV_COLS
#define CT__CONV_COLS 768
#endif

static void ct__conv_geom_make(ct__conv_geom *q, const ct_tensor *x, const ct_tensor *w, int stride,
                               int pad) {
    q->n = x->shape[0], q->c = x->shape[1], q->h = x->shape[2], q->w = x->shape[3];
    q->o = w->shape[0], q->kh = w->shape[2], q->kw = w->shape[3];
    q->stride = stride, q->pad = pad;
    q->ho = (q->h + 2 * pad - q->kh) / stride + 1;
    q->wo = (q->w + 2 * pad - q->kw) / stride + 1;
    q->k = q->c * q->kh * q->kw;
    q->p = q->ho * q->wo;
    q->direct = q->kh == 1 && q->kw == 1 && stride == 1 && pad == 0;
    q->g = q->p >= CT__CONV_COLS ? 1 : (CT__CONV_COLS + q->p - 1) / q->p;
    if (q->g > q->n) q->g = q->n;
    if (q->g < 1) q->g = 1;
    q->groups = (q->n + q->g - 1) / q->g;
    q->s2 = !q->direct && stride == 2 &&
            ct__s2_geom_make(&q->s2g, q->c, q->h, q->w, q->kh, q->kw, pad, q->ho, q->wo);
    q->ph = q->s2 ? ct__s2_phase_floats(&q->s2g) : 0;
}

/* Per-worker scratch floats of the im2col path: the column matrix and the
 * GEMM result / gathered dY (K + O rows of g*P), one image's phase planes. */
static int64_t ct__conv_scratch(const ct__conv_geom *q) {
    return q->direct ? 16 : (q->k + q->o) * q->g * q->p + q->ph + 16;
}

static size_t ct__max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Floats of packing scratch (gemm/gemm.h) for the largest of q's products
 * with kernel p (0 for OpenBLAS): forward, 1x1 weight and data
 * gradients, im2col weight gradient (dW^T) and column gradient. */
static int64_t ct__conv_pack_floats(const ct__conv_geom *q, ct__gemm_kind p) {
    if (p == CT__GEMM_OPENBLAS) return 0;
    const int64_t K = q->k, O = q->o, P = q->p, L = q->g * q->p;
    size_t m = ct__gemm_pack_bytes(p, O, q->direct ? P : L, K);
    if (q->direct) {
        m = ct__max_size(m, ct__gemm_pack_bytes(p, O, K, P));
        m = ct__max_size(m, ct__gemm_pack_bytes(p, K, P, O));
    } else {
        m = ct__max_size(m, ct__gemm_pack_bytes(p, K, O, L));
        m = ct__max_size(m, ct__gemm_pack_bytes(p, K, L, O));
    }
    return (int64_t)((m + sizeof(float) - 1) / sizeof(float));
}

/* Threads to split images over, and whether to do so (see the header). */
static int ct__conv_threads(const ct_graph *g) {
    int t = ct_threadpool_size(ct_graph_pool(g));
    if (t > 1 && openblas_get_num_threads() > 1) return 1;
    return t;
}

/* ---- forward ------------------------------------------------------------ */

typedef struct ct__conv_fwd {
    const ct__kernels *k;
    const ct__conv_geom *q;
    const float *x, *w, *b;
    float *y;
    float *scratch; /* per worker: col (K x GP) + tmp (O x GP) + phases, then bf16 packing */
    int64_t scratch_floats;
    int64_t pack_off; /* floats into a worker's scratch of its GEMM packing; -1: OpenBLAS */
    float beta; /* 0: y = conv; 1: y += conv (data gradients) */
    ct__gemm_kind kind; /* the products' kernel (gemm/gemm.h) */
} ct__conv_fwd;

/* Convolve gn images starting at x0 into y0 (y = conv, or y += conv when
 * beta is 1). `col` is scratch of ct__conv_scratch(q) floats; pack the
 * products' bf16 packing scratch (NULL: float32, gemm/gemm.h). */
static void ct__conv_fwd_group(const ct__kernels *k, const ct__conv_geom *q, const float *x0, const float *w,
                               float *y0, int64_t gn, float *col, void *pack, float beta) {
    const int64_t K = q->k, P = q->p, O = q->o;
    if (q->direct) {
        for (int64_t i = 0; i < gn; i++)
            ct__gemm(pack, false, false, O, P, K, 1.0f, w, K, x0 + i * K * P, P, beta, y0 + i * O * P, P);
    } else if (gn == 1) {
        k->im2col_img(q, x0, col, P, col + (K + O) * q->g * P);
        ct__gemm(pack, false, false, O, P, K, 1.0f, w, K, col, P, beta, y0, P);
    } else {
        const int64_t ld = gn * P;
        float *tmp = col + K * q->g * P;
        float *ph = col + (K + O) * q->g * P;
        for (int64_t i = 0; i < gn; i++) k->im2col_img(q, x0 + i * q->c * q->h * q->w, col + i * P, ld, ph);
        ct__gemm(pack, false, false, O, ld, K, 1.0f, w, K, col, ld, 0.0f, tmp, ld);
        /* (O, gn*P) -> gn images of (O, P). */
        for (int64_t i = 0; i < gn; i++)
            for (int64_t o = 0; o < O; o++) {
                float *dst = y0 + (i * O + o) * P;
                const float *src = tmp + o * ld + i * P;
                if (beta != 0.0f) {
                    for (int64_t j = 0; j < P; j++) dst[j] += src[j];
                } else {
                    memcpy(dst, src, (size_t)P * sizeof(float));
                }
            }
    }
}

static void ct__conv_fwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    ct__conv_fwd *a = ctx;
    const ct__conv_geom *q = a->q;
    const int64_t P = q->p, O = q->o;
    float *col = a->scratch + (int64_t)worker * a->scratch_floats;
    void *pack = a->pack_off >= 0 ? col + a->pack_off : NULL;
    if (pack) ct__gemm_pack_init(pack, a->kind);
    for (int64_t grp = begin; grp < end; grp++) {
        int64_t n0 = grp * q->g, gn = q->n - n0 < q->g ? q->n - n0 : q->g;
        float *y0 = a->y + n0 * O * P;
        ct__conv_fwd_group(a->k, q, a->x + n0 * q->c * q->h * q->w, a->w, y0, gn, col, pack, a->beta);
        if (a->b) {
            for (int64_t i = 0; i < gn; i++)
                for (int64_t o = 0; o < O; o++) {
                    float *yo = y0 + (i * O + o) * P, bo = a->b[o];
                    for (int64_t j = 0; j < P; j++) yo[j] += bo;
                }
        }
    }
}

/* ---- backward ----------------------------------------------------------- */

typedef struct ct__conv_bwd {
    const ct__kernels *k;
    const ct__conv_geom *q;
    const float *x, *w, *dy;
    float *dx;     /* NULL: input needs no gradient (or done elsewhere) */
    bool dx_fresh; /* dx is uninitialised: overwrite instead of accumulate */
    float *dw_slots; /* groups x dW (O x K; im2col path: dW^T, K x O) or NULL */
    const ct__conv_geom *tq; /* non-NULL: data gradient as a transposed conv */
    const float *wt;         /* its kernel (C, O, kh, kw), flipped */
    float *dx_t;
    float *scratch;
    int64_t scratch_floats;
    int64_t pack_off; /* as in ct__conv_fwd */
    ct__gemm_kind kind;
} ct__conv_bwd;

static void ct__conv_bwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    ct__conv_bwd *a = ctx;
    const ct__conv_geom *q = a->q;
    const int64_t K = q->k, P = q->p, O = q->o, CHW = q->c * q->h * q->w;
    float *col = a->scratch + (int64_t)worker * a->scratch_floats; /* K x GP */
    float *dyg = col + K * q->g * P;                                  /* O x GP */
    float *ph = dyg + O * q->g * P;                                   /* q->ph */
    void *pack = a->pack_off >= 0 ? col + a->pack_off : NULL;
    if (pack) ct__gemm_pack_init(pack, a->kind);
    for (int64_t grp = begin; grp < end; grp++) {
        int64_t n0 = grp * q->g, gn = q->n - n0 < q->g ? q->n - n0 : q->g;
        const float *x0 = a->x + n0 * CHW;
        const float *dy0 = a->dy + n0 * O * P;
        float *dwg = a->dw_slots ? a->dw_slots + grp * O * K : NULL;
        if (q->direct) {
            /* dW = sum_i dY_i (O,P) x X_i^T (P,C); dX_i = W^T (C,O) x dY_i. */
            for (int64_t i = 0; i < gn; i++) {
                if (dwg)
                    ct__gemm(pack, false, true, O, K, P, 1.0f, dy0 + i * O * P, P, x0 + i * CHW, P, i ? 1.0f : 0.0f,
                             dwg, K);
                if (a->dx)
                    ct__gemm(pack, true, false, K, P, O, 1.0f, a->w, K, dy0 + i * O * P, P, a->dx_fresh ? 0.0f : 1.0f,
                             a->dx + (n0 + i) * CHW, P);
            }
            continue;
        }
        const int64_t ld = gn * P;
        const float *dym = dy0;
        if (gn > 1) {
            /* Gather the group's output gradient into (O, gn*P). */
            for (int64_t i = 0; i < gn; i++)
                for (int64_t o = 0; o < O; o++)
                    memcpy(dyg + o * ld + i * P, dy0 + (i * O + o) * P, (size_t)P * sizeof(float));
            dym = dyg;
        }
        if (dwg) {
            for (int64_t i = 0; i < gn; i++) a->k->im2col_img(q, x0 + i * CHW, col + i * P, ld, ph);
            /* dW^T (K,O) = col (K,L) x dY^T (L,O): measured 10-40% faster
             * in OpenBLAS than dW = dY x col^T for these shapes. */
            ct__gemm(pack, false, true, K, O, ld, 1.0f, col, ld, dym, ld, 0.0f, dwg, O);
        }
        if (a->tq) /* same images, while their dY is still in cache */
            ct__conv_fwd_group(a->k, a->tq, dy0, a->wt, a->dx_t + n0 * CHW, gn, col, pack, a->dx_fresh ? 0.0f : 1.0f);
        if (a->dx) {
            /* dcol (K, gn*P) = W^T (K,O) x dY (O, gn*P); reuse col. */
            ct__gemm(pack, true, false, K, ld, O, 1.0f, a->w, K, dym, ld, 0.0f, col, ld);
            for (int64_t i = 0; i < gn; i++)
                a->k->col2im_img(q, col + i * P, ld, a->dx + (n0 + i) * CHW, a->dx_fresh, ph);
        }
    }
}

typedef struct ct__conv_ctx {
    ct__conv_geom q;
    bool winograd; /* 3x3 stride 1 pad 1 done by winograd.c */
} ct__conv_ctx;

static void ct__conv_backward(ct_graph *g, ct_node *node) {
    ct__conv_ctx *c = node->ctx;
    const ct__conv_geom *q = &c->q;
    ct_tensor *x = node->in[0], *w = node->in[1], *b = node->n_in > 2 ? node->in[2] : NULL;
    const float *dy = node->out->grad;
    const int64_t O = q->o, P = q->p, K = q->k;
    bool need_dx = x->flags & CT_TENSOR_REQUIRES_GRAD;
    bool need_dw = w->flags & CT_TENSOR_REQUIRES_GRAD;
    if (b && (b->flags & CT_TENSOR_REQUIRES_GRAD)) {
        float *db = ct_tensor_grad(g, b);
        if (!db) return;
        for (int64_t n = 0; n < q->n; n++)
            for (int64_t o = 0; o < O; o++) {
                const float *d = dy + (n * O + o) * P;
                float s = 0.0f;
                for (int64_t j = 0; j < P; j++) s += d[j];
                db[o] += s;
            }
    }
    if (!need_dx && !need_dw) return;
    if (c->winograd) {
        float *dxw = NULL, *dww = NULL;
        bool fresh = false;
        if (need_dx) {
            fresh = x->grad == NULL; /* overwrite, as below */
            if (fresh) x->grad = ct_graph_alloc(g, (size_t)x->numel * sizeof(float));
            if (!(dxw = x->grad)) return;
        }
        if (need_dw && !(dww = ct_tensor_grad(g, w))) return;
        ct__kernels_of(g)->wino_backward(g, q->n, q->c, q->h, q->w, q->o, x->data, w->data, dy, dxw, fresh, dww);
        return;
    }
    ct__conv_bwd a = {ct__kernels_of(g), q, x->data, w->data, dy, NULL, false, NULL, NULL, NULL, NULL, NULL, 0, -1, CT__GEMM_OPENBLAS};
    if (need_dx) {
        /* A gradient nobody wrote yet is overwritten, not zeroed then
         * accumulated: saves a memset and a read of an activation. */
        a.dx_fresh = x->grad == NULL;
        if (a.dx_fresh) x->grad = ct_graph_alloc(g, (size_t)x->numel * sizeof(float));
        if (!(a.dx = x->grad)) return;
    }
    float *dw = NULL;
    if (need_dw) {
        if (!(dw = ct_tensor_grad(g, w))) return;
        if (!(a.dw_slots = ct_graph_alloc(g, (size_t)(q->groups * O * K) * sizeof(float)))) return;
    }
    int threads = ct__conv_threads(g);
    ct_threadpool *pool = threads > 1 ? ct_graph_pool(g) : NULL;
    /* Stride-1 kernels: the data gradient is the convolution of dY with the
     * flipped, transposed kernel (padding k-1-pad). That is a forward conv
     * (im2col + GEMM with a long inner dimension O*k*k) instead of a GEMM
     * with inner dimension O followed by a scatter (col2im). */
    bool transposed = need_dx && !q->direct && q->stride == 1 && q->kh == q->kw && q->pad <= q->kh - 1;
    ct__conv_geom tq;
    float *wt = NULL;
    if (transposed) {
        tq = *q;
        tq.c = O, tq.h = q->ho, tq.w = q->wo, tq.o = q->c, tq.pad = (int)q->kh - 1 - q->pad;
        tq.ho = q->h, tq.wo = q->w, tq.k = O * q->kh * q->kw, tq.p = q->h * q->w;
        /* Same image groups as the weight gradient (one pass over dY). */
        tq.g = q->g, tq.groups = q->groups;
        const int64_t kk = q->kh * q->kw, C = q->c;
        if (!(wt = ct_graph_alloc(g, (size_t)(C * O * kk) * sizeof(float)))) return;
        for (int64_t o = 0; o < O; o++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t t = 0; t < kk; t++) wt[(c * O + o) * kk + (kk - 1 - t)] = w->data[(o * C + c) * kk + t];
    }
    int64_t sf = ct__conv_scratch(q);
    if (transposed && (tq.k + tq.o) * tq.g * tq.p + 16 > sf) sf = (tq.k + tq.o) * tq.g * tq.p + 16;
    const ct__gemm_kind prec = a.kind = ct__gemm_kind_of(g);
    int64_t pf = ct__conv_pack_floats(q, prec);
    if (transposed && ct__conv_pack_floats(&tq, prec) > pf) pf = ct__conv_pack_floats(&tq, prec);
    if (pf) a.pack_off = sf, sf += pf;
    a.scratch_floats = sf;
    if (!(a.scratch = ct_graph_alloc(g, (size_t)(threads * sf) * sizeof(float)))) return;
    if (transposed) a.tq = &tq, a.wt = wt, a.dx_t = a.dx, a.dx = NULL;
    ct_parallel_for(pool, q->groups, 1, ct__conv_bwd_range, &a);
    if (dw) {
        /* Sum the groups' slots in a fixed order (thread-count independent). */
        for (int64_t grp = 0; grp < q->groups; grp++) {
            const float *s = a.dw_slots + grp * O * K;
            if (q->direct) { /* slots hold dW (O,K) */
                for (int64_t i = 0; i < O * K; i++) dw[i] += s[i];
            } else { /* slots hold dW^T (K,O) */
                for (int64_t o = 0; o < O; o++)
                    for (int64_t k = 0; k < K; k++) dw[o * K + k] += s[k * O + o];
            }
        }
    }
}

/* The im2col + GEMM forward (every kernel shape). False on OOM. */
static bool ct__conv_forward_im2col(ct_graph *g, const ct__conv_geom *q, const ct_tensor *x, const ct_tensor *w,
                                    const ct_tensor *b, ct_tensor *y) {
    int threads = ct__conv_threads(g);
    ct__conv_fwd a = {ct__kernels_of(g), q, x->data, w->data, b ? b->data : NULL, y->data, NULL, 0, -1, 0.0f, CT__GEMM_OPENBLAS};
    a.scratch_floats = ct__conv_scratch(q);
    a.kind = ct__gemm_kind_of(g);
    const int64_t pf = ct__conv_pack_floats(q, a.kind);
    if (pf) a.pack_off = a.scratch_floats, a.scratch_floats += pf;
    /* Scratch is taken from the arena; it is dead after this call but the
     * arena only frees at reset, so keep it small relative to activations. */
    if (!(a.scratch = ct_graph_alloc(g, (size_t)(threads * a.scratch_floats) * sizeof(float)))) return false;
    ct_parallel_for(threads > 1 ? ct_graph_pool(g) : NULL, q->groups, 1, ct__conv_fwd_range, &a);
    return true;
}

ct_tensor *ct_conv2d(ct_graph *g, ct_tensor *x, ct_tensor *w, ct_tensor *b, int stride, int pad) {
    if (!g || !x || !w) return g ? ct_graph_fail(g, CT_ERR_INVALID, "conv2d: NULL input") : NULL;
    if (x->ndim != 4 || w->ndim != 4)
        return ct_graph_fail(g, CT_ERR_SHAPE, "conv2d: x and w must be 4-D, got %dD and %dD", x->ndim,
                             w->ndim);
    if (x->shape[1] != w->shape[1])
        return ct_graph_fail(g, CT_ERR_SHAPE, "conv2d: x has %lld channels, weight expects %lld",
                             (long long)x->shape[1], (long long)w->shape[1]);
    if (stride < 1 || pad < 0)
        return ct_graph_fail(g, CT_ERR_INVALID, "conv2d: bad stride %d or padding %d", stride, pad);
    if (b && (b->numel != w->shape[0]))
        return ct_graph_fail(g, CT_ERR_SHAPE, "conv2d: bias has %lld elements, expected %lld",
                             (long long)b->numel, (long long)w->shape[0]);
    if (x->shape[2] + 2 * pad < w->shape[2] || x->shape[3] + 2 * pad < w->shape[3])
        return ct_graph_fail(g, CT_ERR_SHAPE, "conv2d: kernel %lldx%lld larger than padded input %lldx%lld",
                             (long long)w->shape[2], (long long)w->shape[3],
                             (long long)(x->shape[2] + 2 * pad), (long long)(x->shape[3] + 2 * pad));
    ct__conv_geom q;
    ct__conv_geom_make(&q, x, w, stride, pad);
    ct_tensor *y = ct_tensor_new4(g, q.n, q.o, q.ho, q.wo);
    if (!y) return NULL;
    if (q.n == 0) return y;
    bool wino = ct__wino_use(g, q.c, q.o, q.kh, q.kw, stride, pad);
    if (!wino && !q.direct && !q.s2 && stride > 1)
        ct__graph_note(g,
                       "conv2d %lldx%lld stride %d pad %d on %lldx%lldx%lld (-> %lldx%lld): generic strided im2col/col2im "
                       "loops (the phase-plane path takes stride 2 with an output of ceil(input/2) columns)",
                       (long long)q.kh, (long long)q.kw, stride, pad, (long long)q.c, (long long)q.h, (long long)q.w,
                       (long long)q.ho, (long long)q.wo);
    if (wino) {
        if (!ct__kernels_of(g)->wino_forward(g, q.n, q.c, q.h, q.w, q.o, x->data, w->data, b ? b->data : NULL, y->data))
            return NULL;
    } else if (!ct__conv_forward_im2col(g, &q, x, w, b, y)) {
        return NULL;
    }
    ct_tensor *in[3] = {x, w, b};
    ct_node *node = ct_graph_record(g, "conv2d", ct__conv_backward, y, in, b ? 3 : 2);
    if (node) {
        ct__conv_ctx *c = ct_graph_alloc(g, sizeof *c);
        if (!c) return NULL;
        c->q = q;
        c->winograd = wino;
        node->ctx = c;
    }
    return y;
}

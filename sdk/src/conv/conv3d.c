/* conv3d: 3-D convolution over (N, C, T, H, W), the temporal part of clip
 * encoders (a (kt,1,1) kernel is a temporal convolution; (kt,kh,kw) a full
 * spatio-temporal one).
 *
 * Per sample: vol2col unfolds the padded volume into columns (K, P) with
 * K = C*kt*kh*kw and P = TO*HO*WO, then one GEMM Y (O,P) = W (O,K) x col.
 * Backward: dW += dY col^T and dcol = W^T dY folded back by col2vol.
 * Samples are split into a fixed number of groups (not one per thread),
 * each with its own columns and weight-gradient slot, summed in group
 * order: results do not depend on the thread count. The products go
 * through ct__gemm (gemm/gemm.h): float32 (our AVX-512 kernel or OpenBLAS
 * sgemm) or, with the engine option precision bf16, bfloat16 products
 * with float32 sums.
 *
 * Unit width stride (every clip encoder's kernel: (3,1,1) temporal,
 * (3,3,3) spatio-temporal) unfolds each output row as a zeroed border and
 * one contiguous copy (its adjoint as one contiguous add); a strided width
 * takes a per-element loop, and says so once per graph (graph_note.h). */
#include <cblas.h>
#include <string.h>

#include "contrast/ops.h"
#include "contrast/threadpool.h"
#include "gemm/gemm.h"
#include "graph/graph_note.h"

typedef struct ct__c3 {
    int64_t n, c, t, h, w;    /* input */
    int64_t o, kt, kh, kw;    /* kernel */
    int64_t st, sh, sw, pt, ph, pw;
    int64_t to, ho, wo;       /* output */
    int64_t k, p;             /* GEMM sizes: C*kt*kh*kw, TO*HO*WO */
    int64_t groups;
    int64_t pack;             /* floats of packing scratch per group (0: OpenBLAS, gemm/gemm.h) */
    ct__gemm_kind kind;       /* the products' kernel */
} ct__c3;

/* Output columns [*lo, *hi) of tap j whose input column ow*sw - pw + j
 * lies inside [0, w). */
static void ct__c3_cols(const ct__c3 *q, int64_t j, int64_t *lo, int64_t *hi) {
    const int64_t d = q->pw - j; /* iw = ow*sw - d */
    int64_t a = d > 0 ? (d + q->sw - 1) / q->sw : 0;
    int64_t b = q->w - 1 + d < 0 ? 0 : (q->w - 1 + d) / q->sw + 1;
    if (b > q->wo) b = q->wo;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

#define CT__C3_MAX_GROUPS 8

/* A purely temporal kernel (kt,1,1), unit spatial stride, no spatial
 * padding: each column row is whole frames (H*W contiguous floats). */
static bool ct__c3_temporal(const ct__c3 *q) {
    return q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
}

/* Columns of one sample x (C,T,H,W) -> col (K,P), zeros in the padding. */
static void ct__vol2col(const ct__c3 *q, const float *x, float *col) {
    const int64_t hw = q->h * q->w;
    if (ct__c3_temporal(q)) {
        for (int64_t c = 0; c < q->c; c++)
            for (int64_t a = 0; a < q->kt; a++)
                for (int64_t ot = 0; ot < q->to; ot++) {
                    float *r = col + (c * q->kt + a) * q->p + ot * hw;
                    const int64_t it = ot * q->st - q->pt + a;
                    if (it < 0 || it >= q->t) memset(r, 0, (size_t)hw * sizeof *r);
                    else memcpy(r, x + (c * q->t + it) * hw, (size_t)hw * sizeof *r);
                }
        return;
    }
    for (int64_t c = 0; c < q->c; c++)
        for (int64_t a = 0; a < q->kt; a++)
            for (int64_t i = 0; i < q->kh; i++)
                for (int64_t j = 0; j < q->kw; j++) {
                    float *row = col + (((c * q->kt + a) * q->kh + i) * q->kw + j) * q->p;
                    int64_t lo, hi;
                    ct__c3_cols(q, j, &lo, &hi);
                    for (int64_t ot = 0; ot < q->to; ot++) {
                        int64_t it = ot * q->st - q->pt + a;
                        for (int64_t oh = 0; oh < q->ho; oh++) {
                            int64_t ih = oh * q->sh - q->ph + i;
                            float *r = row + (ot * q->ho + oh) * q->wo;
                            if (it < 0 || it >= q->t || ih < 0 || ih >= q->h) {
                                memset(r, 0, (size_t)q->wo * sizeof *r);
                                continue;
                            }
                            const float *src = x + ((c * q->t + it) * q->h + ih) * q->w - q->pw + j;
                            for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0.0f;
                            if (q->sw == 1) {
                                memcpy(r + lo, src + lo, (size_t)(hi - lo) * sizeof *r);
                            } else {
                                for (int64_t ow = lo; ow < hi; ow++) r[ow] = src[ow * q->sw];
                            }
                            for (int64_t ow = hi; ow < q->wo; ow++) r[ow] = 0.0f;
                        }
                    }
                }
}

/* The adjoint of vol2col: dx (C,T,H,W) += fold(dcol (K,P)). */
static void ct__col2vol(const ct__c3 *q, const float *col, float *dx) {
    const int64_t hw = q->h * q->w;
    if (ct__c3_temporal(q)) {
        for (int64_t c = 0; c < q->c; c++)
            for (int64_t a = 0; a < q->kt; a++)
                for (int64_t ot = 0; ot < q->to; ot++) {
                    const int64_t it = ot * q->st - q->pt + a;
                    if (it < 0 || it >= q->t) continue;
                    const float *r = col + (c * q->kt + a) * q->p + ot * hw;
                    float *d = dx + (c * q->t + it) * hw;
                    for (int64_t e = 0; e < hw; e++) d[e] += r[e];
                }
        return;
    }
    for (int64_t c = 0; c < q->c; c++)
        for (int64_t a = 0; a < q->kt; a++)
            for (int64_t i = 0; i < q->kh; i++)
                for (int64_t j = 0; j < q->kw; j++) {
                    const float *row = col + (((c * q->kt + a) * q->kh + i) * q->kw + j) * q->p;
                    int64_t lo, hi;
                    ct__c3_cols(q, j, &lo, &hi);
                    for (int64_t ot = 0; ot < q->to; ot++) {
                        int64_t it = ot * q->st - q->pt + a;
                        if (it < 0 || it >= q->t) continue;
                        for (int64_t oh = 0; oh < q->ho; oh++) {
                            int64_t ih = oh * q->sh - q->ph + i;
                            if (ih < 0 || ih >= q->h) continue;
                            const float *r = row + (ot * q->ho + oh) * q->wo;
                            float *dst = dx + ((c * q->t + it) * q->h + ih) * q->w - q->pw + j;
                            if (q->sw == 1) {
                                for (int64_t ow = lo; ow < hi; ow++) dst[ow] += r[ow];
                            } else {
                                for (int64_t ow = lo; ow < hi; ow++) dst[ow * q->sw] += r[ow];
                            }
                        }
                    }
                }
}

/* Floats of packing scratch for q's three products with kernel p. */
static int64_t ct__c3_pack_floats(const ct__c3 *q, ct__gemm_kind p) {
    size_t m = ct__gemm_pack_bytes(p, q->o, q->p, q->k), b = ct__gemm_pack_bytes(p, q->o, q->k, q->p),
           d = ct__gemm_pack_bytes(p, q->k, q->p, q->o);
    if (b > m) m = b;
    if (d > m) m = d;
    return (int64_t)((m + sizeof(float) - 1) / sizeof(float));
}

/* Samples of group `grp`: [lo, hi). */
static void ct__c3_group(const ct__c3 *q, int64_t grp, int64_t *lo, int64_t *hi) {
    *lo = grp * q->n / q->groups;
    *hi = (grp + 1) * q->n / q->groups;
}

typedef struct ct__c3_args {
    const ct__c3 *q;
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw_slots, *scratch;
    bool need_dw;
} ct__c3_args;

static void ct__c3_fwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    const ct__c3_args *a = ctx;
    const ct__c3 *q = a->q;
    for (int64_t grp = begin; grp < end; grp++) {
        float *col = a->scratch + grp * (q->k * q->p + q->pack);
        void *pack = q->pack ? col + q->k * q->p : NULL;
        if (pack) ct__gemm_pack_init(pack, q->kind);
        int64_t lo, hi;
        ct__c3_group(q, grp, &lo, &hi);
        for (int64_t n = lo; n < hi; n++) {
            float *y = a->y + n * q->o * q->p;
            ct__vol2col(q, a->x + n * q->c * q->t * q->h * q->w, col);
            ct__gemm(pack, false, false, q->o, q->p, q->k, 1.0f, a->w, q->k, col, q->p, 0.0f, y, q->p);
            for (int64_t o = 0; a->b && o < q->o; o++)
                for (int64_t j = 0; j < q->p; j++) y[o * q->p + j] += a->b[o];
        }
    }
}

static void ct__c3_bwd_range(void *ctx, int64_t begin, int64_t end, int worker) {
    (void)worker;
    const ct__c3_args *a = ctx;
    const ct__c3 *q = a->q;
    for (int64_t grp = begin; grp < end; grp++) {
        float *col = a->scratch + grp * (2 * q->k * q->p + q->pack), *dcol = col + q->k * q->p;
        void *pack = q->pack ? dcol + q->k * q->p : NULL;
        if (pack) ct__gemm_pack_init(pack, q->kind);
        float *dw = a->need_dw ? a->dw_slots + grp * q->o * q->k : NULL;
        if (dw) memset(dw, 0, (size_t)(q->o * q->k) * sizeof *dw);
        int64_t lo, hi;
        ct__c3_group(q, grp, &lo, &hi);
        for (int64_t n = lo; n < hi; n++) {
            const float *dy = a->dy + n * q->o * q->p;
            if (dw) {
                ct__vol2col(q, a->x + n * q->c * q->t * q->h * q->w, col);
                ct__gemm(pack, false, true, q->o, q->k, q->p, 1.0f, dy, q->p, col, q->p, 1.0f, dw, q->k);
            }
            if (a->dx) {
                ct__gemm(pack, true, false, q->k, q->p, q->o, 1.0f, a->w, q->k, dy, q->p, 0.0f, dcol, q->p);
                ct__col2vol(q, dcol, a->dx + n * q->c * q->t * q->h * q->w);
            }
        }
    }
}

/* Threads for the groups: the graph's pool, unless BLAS is threaded itself. */
static ct_threadpool *ct__c3_pool(const ct_graph *g) {
    ct_threadpool *p = ct_graph_pool(g);
    return ct_threadpool_size(p) > 1 && openblas_get_num_threads() == 1 ? p : NULL;
}

static void ct__conv3d_backward(ct_graph *g, ct_node *node) {
    const ct__c3 *q = node->ctx;
    ct_tensor *x = node->in[0], *w = node->in[1], *b = node->n_in > 2 ? node->in[2] : NULL;
    const float *dy = node->out->grad;
    if (b && (b->flags & CT_TENSOR_REQUIRES_GRAD)) {
        float *db = ct_tensor_grad(g, b);
        if (!db) return;
        for (int64_t n = 0; n < q->n; n++)
            for (int64_t o = 0; o < q->o; o++) {
                const float *d = dy + (n * q->o + o) * q->p;
                float s = 0.0f;
                for (int64_t j = 0; j < q->p; j++) s += d[j];
                db[o] += s;
            }
    }
    ct__c3_args a = {q, x->data, w->data, NULL, dy, NULL, NULL, NULL, NULL, false};
    a.need_dw = (w->flags & CT_TENSOR_REQUIRES_GRAD) != 0;
    if ((x->flags & CT_TENSOR_REQUIRES_GRAD) && !(a.dx = ct_tensor_grad(g, x))) return;
    if (!a.need_dw && !a.dx) return;
    float *dw = NULL;
    if (a.need_dw && (!(dw = ct_tensor_grad(g, w)) ||
                      !(a.dw_slots = ct_graph_alloc(g, (size_t)(q->groups * q->o * q->k) * sizeof(float)))))
        return;
    if (!(a.scratch = ct_graph_alloc(g, (size_t)(q->groups * (2 * q->k * q->p + q->pack)) * sizeof(float)))) return;
    ct_parallel_for(ct__c3_pool(g), q->groups, 1, ct__c3_bwd_range, &a);
    for (int64_t grp = 0; dw && grp < q->groups; grp++) {
        const float *s = a.dw_slots + grp * q->o * q->k;
        for (int64_t i = 0; i < q->o * q->k; i++) dw[i] += s[i];
    }
}

ct_tensor *ct_conv3d(ct_graph *g, ct_tensor *x, ct_tensor *w, ct_tensor *b, const int stride[3], const int pad[3]) {
    if (!g || !x || !w || !stride || !pad) return g ? ct_graph_fail(g, CT_ERR_INVALID, "conv3d: NULL input") : NULL;
    if (x->ndim != 5 || w->ndim != 5)
        return ct_graph_fail(g, CT_ERR_SHAPE, "conv3d: x (N,C,T,H,W) and w (O,C,KT,KH,KW) must be 5-D, got %dD and %dD",
                             x->ndim, w->ndim);
    if (x->shape[1] != w->shape[1])
        return ct_graph_fail(g, CT_ERR_SHAPE, "conv3d: x has %lld channels, weight expects %lld",
                             (long long)x->shape[1], (long long)w->shape[1]);
    for (int d = 0; d < 3; d++) {
        if (stride[d] < 1 || pad[d] < 0)
            return ct_graph_fail(g, CT_ERR_INVALID, "conv3d: bad stride %d or padding %d in dimension %d", stride[d],
                                 pad[d], d);
        if (x->shape[2 + d] + 2 * pad[d] < w->shape[2 + d])
            return ct_graph_fail(g, CT_ERR_SHAPE, "conv3d: kernel size %lld above the padded input's %lld in dimension %d",
                                 (long long)w->shape[2 + d], (long long)(x->shape[2 + d] + 2 * pad[d]), d);
    }
    if (b && b->numel != w->shape[0])
        return ct_graph_fail(g, CT_ERR_SHAPE, "conv3d: bias has %lld elements, expected %lld", (long long)b->numel,
                             (long long)w->shape[0]);
    ct__c3 q = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], x->shape[4], w->shape[0], w->shape[2],
                w->shape[3], w->shape[4], stride[0], stride[1], stride[2], pad[0], pad[1], pad[2], 0, 0, 0, 0, 0, 0, 0, CT__GEMM_OPENBLAS};
    q.to = (q.t + 2 * q.pt - q.kt) / q.st + 1;
    q.ho = (q.h + 2 * q.ph - q.kh) / q.sh + 1;
    q.wo = (q.w + 2 * q.pw - q.kw) / q.sw + 1;
    q.k = q.c * q.kt * q.kh * q.kw;
    q.p = q.to * q.ho * q.wo;
    q.groups = q.n < CT__C3_MAX_GROUPS ? q.n : CT__C3_MAX_GROUPS;
    q.kind = ct__gemm_kind_of(g);
    q.pack = ct__c3_pack_floats(&q, q.kind);
    if (q.sw > 1)
        ct__graph_note(g,
                       "conv3d %lldx%lldx%lld stride (%lld,%lld,%lld) on %lldx%lldx%lldx%lld: a per-element vol2col/col2vol "
                       "loop (strided width; unit width stride copies whole rows)",
                       (long long)q.kt, (long long)q.kh, (long long)q.kw, (long long)q.st, (long long)q.sh,
                       (long long)q.sw, (long long)q.c, (long long)q.t, (long long)q.h, (long long)q.w);
    int64_t shape[5] = {q.n, q.o, q.to, q.ho, q.wo};
    ct_tensor *y = ct_tensor_new(g, 5, shape);
    if (!y) return NULL;
    if (q.n == 0) return y;
    ct__c3_args a = {&q, x->data, w->data, b ? b->data : NULL, NULL, y->data, NULL, NULL, NULL, false};
    if (!(a.scratch = ct_graph_alloc(g, (size_t)(q.groups * (q.k * q.p + q.pack)) * sizeof(float)))) return NULL;
    ct_parallel_for(ct__c3_pool(g), q.groups, 1, ct__c3_fwd_range, &a);
    ct_tensor *in[3] = {x, w, b};
    ct_node *node = ct_graph_record(g, "conv3d", ct__conv3d_backward, y, in, b ? 3 : 2);
    if (node) {
        ct__c3 *saved = ct_graph_alloc(g, sizeof *saved);
        if (!saved) return NULL;
        *saved = q;
        node->ctx = saved;
    }
    return y;
}

/* alignment: how well frozen features align the cameras of held-out
 * multi-camera sequences in time (the TCN paper's alignment measures).
 *
 * The test split must be a source offering CT_MULTIVIEW_EXT with one item
 * per frame (`multiview` with items = "frames"); its features are the
 * encoder's, over the evaluation transform. For every sequence of T
 * frames and every ordered pair of cameras (i, j), i != j, each frame t of
 * camera i is matched to its nearest frame t_hat(t) of camera j in feature
 * space (cosine similarity of L2-normalised features, or Euclidean
 * distance; ties to the earliest frame). Per pair:
 *   error     = mean_t |t - t_hat(t)| / T   (0 perfect; independent
 *               uniform guesses give (T^2 - 1) / (3 T^2), about 1/3)
 *   tau       = Kendall's tau-b between t and t_hat(t) (1: the aligned
 *               indices keep the order; 0 when t_hat is constant)
 *   retrieval = share of t with |t - t_hat(t)| <= window (default 1)
 * Each is averaged over the pairs of a sequence, then over sequences
 * (every sequence weighs the same). Also reported: the sequences and the
 * camera pairs measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/video.h>

typedef struct alignment {
    bool euclidean;
    int64_t window;
} alignment;

static const ct_param_spec alignment_params[] = {
    CT_PARAM_CHOICE("metric", "\"cosine\"", "cosine|euclidean", "nearest frame by cosine similarity or Euclidean distance"),
    CT_PARAM_INT("window", "1", 0, 1000000, "retrieval counts a match within this many frames as correct"),
    CT_PARAM_END,
};

static ct_status alignment_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    alignment *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "alignment: out of memory");
    a->euclidean = strcmp(ct_settings_string(s, "metric"), "euclidean") == 0;
    a->window = ct_settings_int(s, "window");
    *self = a;
    return CT_OK;
}

static void alignment_destroy(void *self) { free(self); }

/* Kendall's tau-b of (x[k], y[k]), k < n: (concordant - discordant) over
 * sqrt of the pairs untied in x times those untied in y; 0 when either is
 * constant. */
static double kendall_tau_b(const int64_t *x, const int64_t *y, int64_t n) {
    double con = 0, dis = 0, untied_x = 0, untied_y = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            int64_t dx = x[i] - x[j], dy = y[i] - y[j];
            if (dx) untied_x++;
            if (dy) untied_y++;
            if ((dx > 0 && dy > 0) || (dx < 0 && dy < 0)) con++;
            else if ((dx > 0 && dy < 0) || (dx < 0 && dy > 0)) dis++;
        }
    return untied_x > 0 && untied_y > 0 ? (con - dis) / sqrt(untied_x * untied_y) : 0.0;
}

/* t_hat for every row of a against the rows of b (T x d each). */
static void nearest(const alignment *e, const float *a, const float *b, int64_t T, int64_t d, int64_t *hat) {
    for (int64_t t = 0; t < T; t++) {
        double best = INFINITY;
        for (int64_t u = 0; u < T; u++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++) {
                double x = a[t * d + k], y = b[u * d + k];
                s += e->euclidean ? (x - y) * (x - y) : -x * y;
            }
            if (s < best) best = s, hat[t] = u;
        }
    }
}

/* Per sequence: offset of its first frame item in the gathered layout
 * (camera-major, then time) and its length. */
typedef struct layout {
    int64_t *offset, *length;
    int64_t n_seq;
    int views;
} layout;

/* Where each item goes: feats row i -> (seq, view, t), checked complete. */
static ct_status build_layout(const ct_multiview *mv, void *src, int64_t n, int64_t *slot, layout *l, ct_error *err) {
    l->n_seq = mv->sequences;
    l->views = mv->views;
    l->offset = calloc((size_t)l->n_seq + 1, sizeof *l->offset);
    l->length = calloc((size_t)l->n_seq + 1, sizeof *l->length);
    if (!l->offset || !l->length) return ct_error_set(err, CT_ERR_NOMEM, "alignment: out of memory");
    int64_t total = 0;
    for (int64_t q = 0; q < l->n_seq; q++) {
        l->length[q] = mv->length(src, q);
        l->offset[q] = total;
        total += l->length[q] * l->views;
    }
    if (total != n)
        return ct_error_set(err, CT_ERR_INVALID,
                            "alignment: the test split has %lld items, but its %lld sequences x %d cameras hold %lld "
                            "frames (a limit cut a sequence?)", (long long)n, (long long)l->n_seq, l->views,
                            (long long)total);
    for (int64_t i = 0; i < n; i++) {
        int64_t q, t;
        int v;
        mv->locate(src, i, &q, &v, &t);
        if (v < 0)
            return ct_error_set(err, CT_ERR_CONFIG,
                                "alignment: the test split's items are whole sequences; its multiview source needs "
                                "items = \"frames\"");
        if (q < 0 || q >= l->n_seq || v >= l->views || t < 0 || t >= l->length[q])
            return ct_error_set(err, CT_ERR_INVALID, "alignment: item %lld is at sequence %lld camera %d frame %lld, "
                                "outside the source's layout", (long long)i, (long long)q, v, (long long)t);
        slot[i] = l->offset[q] + (int64_t)v * l->length[q] + t;
    }
    return CT_OK;
}

typedef struct totals {
    double error, tau, retrieval;
    int64_t sequences, pairs;
} totals;

/* The three measures of one sequence, averaged over its camera pairs. */
static ct_status measure_sequence(const alignment *e, const float *x, int64_t T, int views, int64_t d, totals *tot,
                                  ct_error *err) {
    int64_t *hat = malloc((size_t)T * sizeof *hat), *idx = malloc((size_t)T * sizeof *idx);
    if (!hat || !idx) {
        free(hat);
        free(idx);
        return ct_error_set(err, CT_ERR_NOMEM, "alignment: out of memory");
    }
    for (int64_t t = 0; t < T; t++) idx[t] = t;
    double er = 0, ta = 0, re = 0;
    int pairs = 0;
    for (int i = 0; i < views; i++)
        for (int j = 0; j < views; j++) {
            if (i == j) continue;
            nearest(e, x + (size_t)i * T * d, x + (size_t)j * T * d, T, d, hat);
            double sum = 0, hits = 0;
            for (int64_t t = 0; t < T; t++) {
                int64_t off = llabs(t - hat[t]);
                sum += (double)off;
                hits += off <= e->window;
            }
            er += sum / (double)T / (double)T;
            re += hits / (double)T;
            ta += kendall_tau_b(idx, hat, T);
            pairs++;
        }
    tot->error += er / pairs;
    tot->tau += ta / pairs;
    tot->retrieval += re / pairs;
    tot->sequences++;
    tot->pairs += pairs;
    free(hat);
    free(idx);
    return CT_OK;
}

static bool env_has_source_ext(const ct_eval_env *env) {
    return env->size >= offsetof(ct_eval_env, source_extension) + sizeof env->source_extension && env->source_extension;
}

static ct_status alignment_run(void *self, const ct_eval_env *env, ct_metrics *out, ct_error *err) {
    const alignment *e = self;
    const ct_multiview *mv = env_has_source_ext(env) ? env->source_extension(env, "test", CT_MULTIVIEW_EXT) : NULL;
    if (!mv || mv->size < sizeof *mv || !mv->length || !mv->locate)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "alignment: the test split's source has no synchronised cameras (use the multiview source "
                            "with items = \"frames\" for evaluation.test)");
    float *feats = NULL, *x = NULL;
    int32_t *labels = NULL;
    int64_t n = 0, d = 0, *slot = NULL;
    layout l = {0};
    ct_status st = env->features(env, "test", &feats, &labels, &n, &d, err);
    if (st == CT_OK && !(slot = malloc((size_t)(n ? n : 1) * sizeof *slot)))
        st = ct_error_set(err, CT_ERR_NOMEM, "alignment: out of memory");
    if (st == CT_OK) st = build_layout(mv, mv->self, n, slot, &l, err);
    if (st == CT_OK && !(x = malloc((size_t)(n ? n : 1) * (size_t)d * sizeof *x)))
        st = ct_error_set(err, CT_ERR_NOMEM, "alignment: out of memory");
    for (int64_t i = 0; st == CT_OK && i < n; i++) memcpy(x + (size_t)slot[i] * d, feats + (size_t)i * d, (size_t)d * sizeof *x);
    if (st == CT_OK && !e->euclidean) ct_rows_l2_normalize(x, n, d, 1e-12f);
    totals tot = {0};
    for (int64_t q = 0; st == CT_OK && q < l.n_seq; q++)
        st = measure_sequence(e, x + (size_t)l.offset[q] * d, l.length[q], l.views, d, &tot, err);
    if (st == CT_OK && tot.sequences == 0) st = ct_error_set(err, CT_ERR_INVALID, "alignment: no sequences to align");
    if (st == CT_OK) {
        ct_metrics_set(out, "error", tot.error / (double)tot.sequences);
        ct_metrics_set(out, "tau", tot.tau / (double)tot.sequences);
        ct_metrics_set(out, "retrieval", 100.0 * tot.retrieval / (double)tot.sequences);
        ct_metrics_set(out, "sequences", (double)tot.sequences);
        ct_metrics_set(out, "pairs", (double)tot.pairs);
    }
    env->host->free(feats);
    env->host->free(labels);
    free(slot);
    free(x);
    free(l.offset);
    free(l.length);
    return st;
}

static const ct_evaluator_ops alignment_ops = {
    0, "alignment",
    "multi-camera time alignment of held-out sequences: error, Kendall's tau, cross-view retrieval within +-window",
    alignment_params, alignment_create, alignment_destroy, alignment_run, NULL,
};

static ct_status alignment_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_evaluator(reg, &alignment_ops);
    return st == CT_OK ? CT_OK : ct_error_set(err, st, "alignment: cannot register the evaluator");
}

CT_PLUGIN_DEFINE("alignment", "1.0.0", "MIT", "time alignment of multi-camera sequences (TCN's measures)",
                 CT_ROLE_EVALUATOR, alignment_init)

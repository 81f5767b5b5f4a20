/* The finetune plugin: two evaluators on one fine-tuning loop (finetune.c).
 *
 * finetune: the evaluated encoder plus a linear classifier, every layer
 * trainable (batch norm in train mode), trained on every labelled training
 * item through the evaluator's own `transforms` (its config group's list;
 * the evaluation transforms when absent) for `epochs`, with separate
 * encoder and classifier learning rates on one cosine schedule. Reports
 * top1/top5 on the test split. From a checkpoint it measures fine-tuning;
 * from the random initialisation (no checkpoint) it is the supervised
 * from-scratch baseline.
 *
 * semi_supervised: the same on class-balanced fractions of the training
 * labels (default 1% and 10%), drawn from `seed` alone so every experiment
 * sees the same images; each subset's indices are written to the run
 * directory (semi_supervised-<p>pct-seed<s>.txt) so other tools can reuse
 * them. Reports top1_<p>pct and top5_<p>pct per fraction.
 *
 * Neither touches the evaluated model: the host hands out a copy of the
 * encoder (ct_eval_env.copy_encoder, ABI 1.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune.h"

#define MAX_FRACTIONS 8

/* ---- finetune ----------------------------------------------------------- */

static const ct_param_spec finetune_params[] = {
    CT_PARAM_INT("epochs", "10", 1, 100000, "passes over the labelled training items"),
    FINETUNE_PARAMS,
    CT_PARAM_END,
};

typedef struct finetune_eval {
    finetune_cfg cfg;
} finetune_eval;

static ct_status finetune_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    finetune_eval *e = calloc(1, sizeof *e);
    if (!e) return ct_error_set(err, CT_ERR_NOMEM, "finetune: out of memory");
    finetune_cfg_read(s, &e->cfg);
    e->cfg.epochs = ct_settings_int(s, "epochs");
    *self = e;
    return CT_OK;
}

static void plain_destroy(void *self) { free(self); }

static ct_status finetune_eval_run(void *self, const ct_eval_env *env, ct_metrics *out, ct_error *err) {
    const finetune_eval *e = self;
    ct_status st = finetune_check_env(env, "finetune", err);
    int32_t *labels = NULL;
    int64_t n = 0, *items = NULL, count = 0;
    if (st == CT_OK) st = finetune_train_labels(env, &labels, &n, err);
    if (st == CT_OK) st = finetune_labelled(labels, n, &items, &count, err);
    finetune_result r;
    if (st == CT_OK) st = finetune_run(&e->cfg, env, items, count, "finetune", "finetune", &r, err);
    if (labels) env->host->free(labels);
    free(items);
    if (st != CT_OK) return st;
    ct_metrics_set(out, "top1", r.top1);
    ct_metrics_set(out, "top5", r.top5);
    ct_metrics_set(out, "loss", r.final_loss);
    return CT_OK;
}

/* ---- semi_supervised ---------------------------------------------------- */

static const ct_param_spec semi_params[] = {
    CT_PARAM_FLOATS("fractions", "[0.01, 0.1]", 1e-6, 1, "fractions of the training labels, class-balanced"),
    CT_PARAM_INTS("epochs", "[60, 20]", 1, 100000, "epochs per fraction (one value: the same for all)"),
    CT_PARAM_INT("seed", "0", 0, 9.2e18, "seed of the subsets (independent of the experiment's)"),
    FINETUNE_PARAMS,
    CT_PARAM_END,
};

typedef struct semi_eval {
    finetune_cfg cfg;
    int n;
    double fraction[MAX_FRACTIONS];
    int64_t epochs[MAX_FRACTIONS];
    uint64_t seed;
} semi_eval;

static ct_status semi_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    size_t nf = ct_settings_len(s, "fractions"), ne = ct_settings_len(s, "epochs");
    if (nf < 1 || nf > MAX_FRACTIONS)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: semi_supervised: fractions: give 1 to %d values, got %zu",
                            ct_settings_origin(s, "fractions"), MAX_FRACTIONS, nf);
    if (ne != 1 && ne != nf)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "%s: semi_supervised: epochs: give one value or one per fraction (%zu), got %zu",
                            ct_settings_origin(s, "epochs"), nf, ne);
    semi_eval *e = calloc(1, sizeof *e);
    if (!e) return ct_error_set(err, CT_ERR_NOMEM, "semi_supervised: out of memory");
    finetune_cfg_read(s, &e->cfg);
    e->n = (int)nf;
    for (size_t i = 0; i < nf; i++) {
        e->fraction[i] = ct_settings_float_at(s, "fractions", i);
        e->epochs[i] = ct_settings_int_at(s, "epochs", ne == 1 ? 0 : i);
    }
    e->seed = (uint64_t)ct_settings_int(s, "seed");
    *self = e;
    return CT_OK;
}

/* "1pct", "10pct", "0p5pct": the fraction as a metric/file-name tag. */
static void fraction_tag(double f, char *buf, size_t n) {
    snprintf(buf, n, "%gpct", f * 100.0);
    for (char *p = buf; *p; p++)
        if (*p == '.') *p = 'p';
}

/* One fraction: draw, write the list, fine-tune, record. */
static ct_status semi_one(const semi_eval *e, int i, const ct_eval_env *env, const int32_t *labels, int64_t n,
                          ct_metrics *out, ct_error *err) {
    char tag[32], name[96], who[96], path[1300], header[300];
    fraction_tag(e->fraction[i], tag, sizeof tag);
    snprintf(who, sizeof who, "semi_supervised %s", tag);
    int64_t *items = NULL, count = 0;
    ct_status st = finetune_balanced_subset(labels, n, env->num_classes, e->fraction[i], e->seed, &items, &count, err);
    if (st == CT_OK && env->run_dir) {
        snprintf(name, sizeof name, "semi_supervised-%s-seed%llu.txt", tag, (unsigned long long)e->seed);
        snprintf(header, sizeof header,
                 "semi_supervised: %lld of the %lld training items (fraction %g, class-balanced over %d classes), "
                 "seed %llu; 0-based item indices",
                 (long long)count, (long long)n, e->fraction[i], env->num_classes, (unsigned long long)e->seed);
        st = finetune_write_indices(env->run_dir, name, header, items, count, path, sizeof path, err);
        if (st == CT_OK) ct_log(env->host, CT_LOG_INFO, "%s: %lld items, list in %s", who, (long long)count, path);
    }
    finetune_cfg cfg = e->cfg;
    cfg.epochs = e->epochs[i];
    finetune_result r;
    snprintf(name, sizeof name, "semi_supervised-%s", tag);
    if (st == CT_OK) st = finetune_run(&cfg, env, items, count, name, who, &r, err);
    free(items);
    if (st != CT_OK) return st;
    char key[CT_METRIC_NAME_MAX];
    snprintf(key, sizeof key, "top1_%s", tag);
    ct_metrics_set(out, key, r.top1);
    snprintf(key, sizeof key, "top5_%s", tag);
    ct_metrics_set(out, key, r.top5);
    return CT_OK;
}

static ct_status semi_run(void *self, const ct_eval_env *env, ct_metrics *out, ct_error *err) {
    const semi_eval *e = self;
    ct_status st = finetune_check_env(env, "semi_supervised", err);
    int32_t *labels = NULL;
    int64_t n = 0;
    if (st == CT_OK) st = finetune_train_labels(env, &labels, &n, err);
    for (int i = 0; i < e->n && st == CT_OK; i++) st = semi_one(e, i, env, labels, n, out, err);
    if (labels) env->host->free(labels);
    return st;
}

/* ---- registration ------------------------------------------------------- */

static const ct_evaluator_ops finetune_ops = {
    .name = "finetune",
    .description = "fine-tune every layer with a linear classifier on all training labels",
    .params = finetune_params,
    .create = finetune_create,
    .destroy = plain_destroy,
    .run = finetune_eval_run,
};

static const ct_evaluator_ops semi_ops = {
    .name = "semi_supervised",
    .description = "fine-tune on class-balanced fractions of the training labels (1%, 10%)",
    .params = semi_params,
    .create = semi_create,
    .destroy = plain_destroy,
    .run = semi_run,
};

static ct_status finetune_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_evaluator(reg, &finetune_ops);
    if (st == CT_OK) st = ct_register_evaluator(reg, &semi_ops);
    if (st != CT_OK) ct_error_set(err, st, "finetune: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("finetune", "1.0.0", "MIT", "fine-tuning and semi-supervised evaluators", CT_ROLE_EVALUATOR,
                 finetune_init)

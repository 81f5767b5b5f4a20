/* The fine-tuning loop (see finetune.h): a trainable copy of the encoder
 * from the host (ct_eval_env.copy_encoder, ABI 1.2), a linear classifier
 * in a store of its own (so the two get their own optimizers and learning
 * rates), augmented labelled batches through the evaluator's transforms,
 * cross-entropy, a cosine schedule over the whole budget; then top-1/top-5
 * on the test split with the copy in eval mode (batch-norm running
 * statistics from the fine-tune). */
#include "finetune.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCORE_BATCH 256

void finetune_cfg_read(const ct_settings *s, finetune_cfg *c) {
    c->batch_size = ct_settings_int(s, "batch_size");
    c->adamw = strcmp(ct_settings_string(s, "optimizer"), "adamw") == 0;
    c->lr = (float)ct_settings_float(s, "lr");
    c->head_lr = (float)ct_settings_float(s, "head_lr");
    c->weight_decay = (float)ct_settings_float(s, "weight_decay");
    c->save = ct_settings_bool(s, "save");
}

ct_status finetune_check_env(const ct_eval_env *env, const char *who, ct_error *err) {
    if (env->size <= offsetof(ct_eval_env, save_params) || !env->labels || !env->copy_encoder ||
        !env->free_copy || !env->open_batches || !env->start_epoch || !env->next_batch || !env->close_batches ||
        !env->save_params)
        return ct_error_set(err, CT_ERR_UNSUPPORTED,
                            "%s: the host gives no trainable encoder (needs ct_eval_env of ABI 1.2)", who);
    return CT_OK;
}

ct_status finetune_train_labels(const ct_eval_env *env, int32_t **labels, int64_t *n, ct_error *err) {
    return env->labels(env, "train", labels, n, err);
}

/* The classifier: weight (classes, dim), bias (classes), PyTorch's nn.Linear
 * initialisation. */
typedef struct head {
    ct_params *store;
    ct_tensor *w, *b;
} head;

static ct_status head_new(head *h, int64_t dim, int classes, uint64_t seed, ct_error *err) {
    int64_t ws[2] = {classes, dim}, bs[1] = {classes};
    h->store = ct_params_new(seed ^ 0xc1a551f1e4ull);
    if (!h->store) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    h->w = ct_params_add(h->store, "classifier.weight", CT_PARAM_TRAINABLE, 2, ws, CT_INIT_LINEAR_DEFAULT, 0, 0,
                         err);
    h->b = h->w ? ct_params_add(h->store, "classifier.bias", CT_PARAM_TRAINABLE, 1, bs, CT_INIT_FAN_IN_UNIFORM,
                                (float)dim, CT_PARAM_NO_DECAY, err)
                : NULL;
    if (!h->b) return err->code;
    return ct_params_finalize(h->store, err);
}

static ct_optim *optim_new(ct_params *p, const finetune_cfg *c, float lr, ct_error *err) {
    ct_optim_config oc = ct_optim_defaults(c->adamw ? CT_OPTIM_ADAMW : CT_OPTIM_SGD);
    oc.lr = lr;
    oc.weight_decay = c->weight_decay;
    if (!c->adamw) {
        oc.momentum = 0.9f;
        oc.nesterov = true;
    }
    return ct_optim_new(p, &oc, err);
}

/* Everything one fine-tune holds. */
typedef struct run {
    const finetune_cfg *cfg;
    const ct_eval_env *env;
    const char *who;
    ct_eval_model *copy;
    head h;
    ct_optim *enc_opt, *head_opt;
    ct_eval_batches *train, *test;
    int classes;
} run;

static void run_free(run *r) {
    r->env->close_batches(r->train);
    r->env->close_batches(r->test);
    if (r->enc_opt) ct_optim_free(r->enc_opt);
    if (r->head_opt) ct_optim_free(r->head_opt);
    ct_params_free(r->h.store);
    if (r->copy) r->env->free_copy(r->env, r->copy);
}

static ct_status graph_error(const run *r, ct_error *err) {
    ct_graph *g = r->copy->graph;
    return ct_error_set(err, ct_graph_status(g) ? ct_graph_status(g) : CT_ERR_INVALID, "%s: %s", r->who,
                        ct_graph_error(g));
}

/* Encoder then classifier: the logits of x. */
static ct_tensor *logits_of(run *r, ct_tensor *x) {
    ct_encoder *enc = r->copy->encoder;
    ct_tensor *f = enc->ops->forward(enc->self, r->copy->graph, x);
    return f ? ct_linear(r->copy->graph, f, r->h.w, r->h.b) : NULL;
}

/* Labels outside [0, classes) cannot be trained on: the subset holds only
 * labelled items, so one here is a broken source. */
static ct_status check_labels(const run *r, const int32_t *y, int64_t n, ct_error *err) {
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= r->classes)
            return ct_error_set(err, CT_ERR_INVALID, "%s: training label %d outside [0, %d)", r->who, y[i],
                                r->classes);
    return CT_OK;
}

static ct_status train_step(run *r, ct_tensor *x, const int32_t *y, float lr_scale, double *loss_out,
                            ct_error *err) {
    ct_graph *g = r->copy->graph;
    ct_status st = check_labels(r, y, x->shape[0], err);
    if (st != CT_OK) return st;
    ct_tensor *lg = logits_of(r, x);
    ct_tensor *loss = lg ? ct_cross_entropy(g, lg, y) : NULL;
    if (!loss) return graph_error(r, err);
    *loss_out = loss->data[0];
    if (!isfinite(*loss_out))
        return ct_error_set(err, CT_ERR_NUMERIC, "%s: the fine-tuning loss became %f; lower lr / head_lr", r->who,
                            *loss_out);
    ct_params_zero_grad(r->copy->store);
    ct_params_zero_grad(r->h.store);
    if (ct_graph_backward(g, loss) != CT_OK) return graph_error(r, err);
    ct_optim_step(r->enc_opt, r->cfg->lr * lr_scale);
    ct_optim_step(r->head_opt, r->cfg->head_lr * lr_scale);
    return CT_OK;
}

static ct_status train(run *r, int64_t n_items, finetune_result *out, ct_error *err) {
    const finetune_cfg *c = r->cfg;
    int64_t bs = c->batch_size < n_items ? c->batch_size : n_items;
    int64_t spe = n_items / bs, total = spe * c->epochs, step = 0;
    /* The schedule's shape on a unit learning rate; each optimizer scales it. */
    ct_schedule sched = {CT_SCHED_COSINE, 1.0f, 0, 0, 0, 0, 1};
    ct_graph *g = r->copy->graph;
    ct_graph_set_train(g, true);
    ct_graph_set_grad(g, true);
    ct_status st = CT_OK;
    double loss_sum = 0;
    for (int64_t ep = 0; ep < c->epochs && st == CT_OK; ep++) {
        st = r->env->start_epoch(r->train, ep, err);
        loss_sum = 0;
        int64_t steps = 0;
        while (st == CT_OK) {
            ct_tensor *x = NULL;
            const int32_t *y = NULL;
            st = r->env->next_batch(r->train, g, &x, &y, err);
            if (st != CT_OK || !x) break;
            double loss = 0;
            st = train_step(r, x, y, ct_schedule_lr(&sched, step < total ? step : total - 1, total), &loss, err);
            ct_graph_reset(g);
            loss_sum += loss;
            steps++;
            step++;
        }
        if (st == CT_OK && steps > 0) {
            out->final_loss = loss_sum / (double)steps;
            ct_log(r->env->host, CT_LOG_DEBUG, "%s: epoch %lld/%lld loss %.4f", r->who, (long long)ep + 1,
                   (long long)c->epochs, out->final_loss);
        }
    }
    out->steps = step;
    return st;
}

static bool all_finite(const ct_params *p) {
    const float *v = ct_params_data(p);
    size_t n = ct_params_numel(p);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= !isfinite(v[i]);
    const float *b = ct_params_buffer_data(p);
    for (size_t i = 0; b && i < ct_params_buffer_numel(p); i++) bad |= !isfinite(b[i]);
    return bad == 0;
}

/* Rank of class y among the logits (0 = top-1); ties go to the lower class. */
static int rank_of(const float *l, int classes, int32_t y) {
    int better = 0;
    for (int c = 0; c < classes; c++) better += l[c] > l[y] || (l[c] == l[y] && c < y);
    return better;
}

static ct_status score(run *r, finetune_result *out, ct_error *err) {
    ct_graph *g = r->copy->graph;
    ct_graph_set_train(g, false);
    ct_graph_set_grad(g, false);
    int64_t hit1 = 0, hit5 = 0, labelled = 0;
    ct_status st = r->env->start_epoch(r->test, 0, err);
    while (st == CT_OK) {
        ct_tensor *x = NULL;
        const int32_t *y = NULL;
        st = r->env->next_batch(r->test, g, &x, &y, err);
        if (st != CT_OK || !x) break;
        ct_tensor *lg = logits_of(r, x);
        if (!lg) {
            st = graph_error(r, err);
            break;
        }
        for (int64_t i = 0; i < x->shape[0]; i++) {
            if (y[i] < 0 || y[i] >= r->classes) continue;
            int k = rank_of(lg->data + i * r->classes, r->classes, y[i]);
            labelled++;
            hit1 += k == 0;
            hit5 += k < 5;
        }
        ct_graph_reset(g);
    }
    if (st != CT_OK) return st;
    if (labelled == 0) return ct_error_set(err, CT_ERR_INVALID, "%s: the test split has no labels", r->who);
    out->top1 = 100.0 * (double)hit1 / (double)labelled;
    out->top5 = 100.0 * (double)hit5 / (double)labelled;
    return CT_OK;
}

static ct_status save(run *r, const char *name, ct_error *err) {
    char path[1300], hname[200];
    ct_status st = r->env->save_params(r->env, r->copy->store, name, path, sizeof path, err);
    if (st != CT_OK) return st;
    ct_log(r->env->host, CT_LOG_INFO, "%s: fine-tuned encoder saved to %s", r->who, path);
    snprintf(hname, sizeof hname, "%s-classifier", name);
    return r->env->save_params(r->env, r->h.store, hname, NULL, 0, err);
}

static ct_status setup(run *r, const int64_t *subset, int64_t n, ct_error *err) {
    const finetune_cfg *c = r->cfg;
    ct_status st = r->env->copy_encoder(r->env, &r->copy, err);
    if (st == CT_OK) st = head_new(&r->h, r->copy->encoder->dim, r->classes, r->env->seed, err);
    if (st == CT_OK && !(r->enc_opt = optim_new(r->copy->store, c, c->lr, err))) st = err->code;
    if (st == CT_OK && !(r->head_opt = optim_new(r->h.store, c, c->head_lr, err))) st = err->code;
    ct_eval_batches_opts to = {sizeof to, "train", true, c->batch_size < n ? c->batch_size : n, subset, n};
    if (st == CT_OK) st = r->env->open_batches(r->env, &to, &r->train, err);
    ct_eval_batches_opts so = {sizeof so, "test", false, SCORE_BATCH, NULL, 0};
    if (st == CT_OK) st = r->env->open_batches(r->env, &so, &r->test, err);
    return st;
}

ct_status finetune_run(const finetune_cfg *cfg, const ct_eval_env *env, const int64_t *subset, int64_t n,
                       const char *save_name, const char *who, finetune_result *out, ct_error *err) {
    memset(out, 0, sizeof *out);
    ct_status st = finetune_check_env(env, who, err);
    if (st != CT_OK) return st;
    if (env->num_classes < 2) return ct_error_set(err, CT_ERR_INVALID, "%s: needs at least 2 classes", who);
    if (n <= 0) return ct_error_set(err, CT_ERR_INVALID, "%s: no labelled training items", who);
    run r = {0};
    r.cfg = cfg;
    r.env = env;
    r.who = who;
    r.classes = env->num_classes;
    out->train_items = n;
    st = setup(&r, subset, n, err);
    if (st == CT_OK) st = train(&r, n, out, err);
    if (st == CT_OK && (!all_finite(r.copy->store) || !all_finite(r.h.store)))
        st = ct_error_set(err, CT_ERR_NUMERIC, "%s: the fine-tuned weights are not finite; lower lr / head_lr", who);
    if (st == CT_OK) st = score(&r, out, err);
    if (st == CT_OK && cfg->save) st = save(&r, save_name, err);
    run_free(&r);
    return st;
}

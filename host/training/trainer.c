/* The training loop (`contrast train`, see trainer.h). */
#include "training/trainer.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/experiment.h"
#include "data/pipeline.h"
#include "data/sample.h"
#include "training/checkpoint.h"
#include "training/evaluate.h"
#include "training/metrics.h"
#include "training/model.h"

/* Plugins' own metrics (ct_host.metric) into metrics.jsonl with the step. */
static void metric_sink(void *ctx, const char *owner, const char *name, double value);

/* ---- optimizer and schedule from the experiment ------------------------- */

static ct_optim_config optim_config(const ct_settings *s) {
    const char *type = ct_settings_string(s, "type");
    ct_optim_kind kind = strcmp(type, "adamw") == 0 ? CT_OPTIM_ADAMW
                         : strcmp(type, "lars") == 0 ? CT_OPTIM_LARS
                                                     : CT_OPTIM_SGD;
    ct_optim_config c = ct_optim_defaults(kind);
    c.lr = (float)ct_settings_float(s, "lr");
    c.momentum = (float)ct_settings_float(s, "momentum");
    c.nesterov = ct_settings_bool(s, "nesterov");
    c.weight_decay = (float)ct_settings_float(s, "weight_decay");
    if (ct_settings_len(s, "betas") >= 2) {
        c.beta1 = (float)ct_settings_float_at(s, "betas", 0);
        c.beta2 = (float)ct_settings_float_at(s, "betas", 1);
    }
    c.eps = (float)ct_settings_float(s, "eps");
    c.trust_coef = (float)ct_settings_float(s, "trust_coef");
    c.clip_norm = (float)ct_settings_float(s, "clip_norm");
    return c;
}

typedef struct lr_plan {
    const ct_settings *s;
    float base;
    int64_t spe, total, warmup;
} lr_plan;

static float plan_lr(const lr_plan *p, int64_t step) {
    const char *type = ct_settings_string(p->s, "type");
    float warm_start = (float)ct_settings_float(p->s, "warmup_start");
    if (strcmp(type, "step") == 0) {
        /* Step epochs are a list, which ct_schedule's uniform step cannot say. */
        if (step < p->warmup)
            return p->base * (warm_start + (1 - warm_start) * (float)step / (float)p->warmup);
        int64_t epoch = step / (p->spe > 0 ? p->spe : 1);
        float lr = p->base;
        for (size_t i = 0; i < ct_settings_len(p->s, "step_epochs"); i++)
            if (epoch >= ct_settings_int_at(p->s, "step_epochs", i)) lr *= (float)ct_settings_float(p->s, "gamma");
        return lr;
    }
    ct_schedule sc = {strcmp(type, "cosine") == 0 ? CT_SCHED_COSINE : CT_SCHED_CONSTANT,
                      p->base, p->warmup, warm_start,
                      p->base * (float)ct_settings_float(p->s, "final_lr"), 0, 1};
    return ct_schedule_lr(&sc, step, p->total);
}

/* ---- run directory ----------------------------------------------------- */

static ct_status mkdirs(const char *path, ct_error *err) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return ct_error_set(err, CT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return ct_error_set(err, CT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
    return CT_OK;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- signals ------------------------------------------------------------ */

static volatile sig_atomic_t g_stop_signal = 0;

static void on_signal(int sig) {
    g_stop_signal = sig;
    /* A second signal takes the default action (a user's hard stop). */
    signal(sig, SIG_DFL);
}

static void install_signals(struct sigaction *old_int, struct sigaction *old_term) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop_signal = 0;
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

static void restore_signals(const struct sigaction *old_int, const struct sigaction *old_term) {
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGTERM, old_term, NULL);
}

/* ---- the trainer ----------------------------------------------------- */

typedef struct trainer {
    const ct_train_opts *o;
    ct_experiment ex;
    ct_model m;
    ct_optim *opt;
    lr_plan plan;
    int n_pipes;
    ct_pipeline *pipes[CT_MAX_PIPELINES];
    char run_dir[1024];
    char *config_text;
    FILE *metrics;
    bool tty;
    int64_t epochs, spe, total, step, log_every, keep, ckpt_every;
    char last_ckpt[1200];
    double t_start, step_ema, last_loss;
    int64_t steps_this_session;
    bool line_open; /* a \r progress line is on the terminal, unterminated */
    ct_metrics last_eval;
} trainer;

static ct_status setup_run_dir(trainer *t, ct_error *err) {
    if (t->o->run_dir)
        snprintf(t->run_dir, sizeof t->run_dir, "%s", t->o->run_dir);
    else
        snprintf(t->run_dir, sizeof t->run_dir, "%s/%s", ct_settings_string(t->ex.train, "out_dir"),
                 t->ex.name);
    ct_status st = mkdirs(t->run_dir, err);
    if (st != CT_OK) return st;
    char path[1200];
    if (!t->o->resume) {
        ct_error probe = CT_ERROR_INIT;
        if (ct_checkpoint_latest(t->run_dir, path, sizeof path, &probe) == CT_OK)
            return ct_error_set(err, CT_ERR_EXISTS,
                                "%s already holds checkpoints (%s): continue it with --resume, or remove it",
                                t->run_dir, path);
    }
    snprintf(path, sizeof path, "%s/config.cfg", t->run_dir);
    char fresh[1200];
    snprintf(fresh, sizeof fresh, "%s/config.cfg.new", t->run_dir);
    st = ct_experiment_write_resolved(&t->ex, fresh, err);
    if (st != CT_OK) return st;
    t->config_text = slurp(fresh);
    if (!t->config_text) return ct_error_set(err, CT_ERR_IO, "cannot read back %s", fresh);
    if (rename(fresh, path) != 0)
        return ct_error_set(err, CT_ERR_IO, "cannot rename %s: %s", fresh, strerror(errno));
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
    t->metrics = fopen(path, t->o->resume ? "a" : "w");
    if (!t->metrics) return ct_error_set(err, CT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    return CT_OK;
}

static ct_status setup_pipelines(trainer *t, ct_error *err) {
    int64_t bs = ct_settings_int(t->ex.train, "batch_size");
    if (t->ex.n_pipelines == 0) return ct_error_set(err, CT_ERR_CONFIG, "%s: no pipelines to train on", t->ex.path);
    t->spe = -1;
    for (int i = 0; i < t->ex.n_pipelines; i++) {
        ct_pipeline_opts po = ct_pipeline_opts_default(bs, ct_pipeline_seed(t->ex.seed, i));
        ct_status st = ct_pipeline_new(&t->ex.pipelines[i], &po, &t->pipes[i], err);
        if (st != CT_OK) return st;
        t->n_pipes++;
        int64_t s = ct_pipeline_steps_per_epoch(t->pipes[i]);
        if (t->spe < 0 || s < t->spe) t->spe = s;
    }
    if (t->spe <= 0)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: a pipeline has fewer items than train.batch_size = %lld",
                            t->ex.path, (long long)bs);
    return CT_OK;
}

static ct_status setup(trainer *t, ct_error *err) {
    ct_experiment_opts eo = {.sets = t->o->sets, .n_sets = t->o->n_sets, .allow_unsafe_plugins = t->o->allow_unsafe_plugins};
    ct_status st = ct_experiment_load(&t->ex, t->o->config, &eo, err);
    if (st != CT_OK) return st;
    if (!t->ex.arch_ops)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: training needs an architecture group", t->ex.path);
    int threads = t->o->threads > 0 ? t->o->threads : (int)ct_settings_int(t->ex.train, "threads");
    st = ct_model_build(&t->m, &t->ex, threads, true, err);
    if (st == CT_OK) st = setup_pipelines(t, err);
    if (st != CT_OK) return st;
    ct_optim_config oc = optim_config(t->ex.optimizer);
    t->opt = ct_optim_new(t->m.store, &oc, err);
    if (!t->opt) return err->code ? err->code : CT_ERR_NOMEM;
    t->epochs = ct_settings_int(t->ex.train, "epochs");
    t->total = t->epochs * t->spe;
    int64_t max_steps = ct_settings_int(t->ex.train, "max_steps");
    if (max_steps > 0 && max_steps < t->total) t->total = max_steps;
    t->log_every = ct_settings_int(t->ex.train, "log_every");
    t->keep = ct_settings_int(t->ex.train, "keep");
    t->ckpt_every = ct_settings_int(t->ex.train, "checkpoint_every");
    t->plan.s = t->ex.schedule;
    t->plan.base = oc.lr;
    t->plan.spe = t->spe;
    t->plan.total = t->total;
    t->plan.warmup = (int64_t)llround(ct_settings_float(t->ex.schedule, "warmup_epochs") * (double)t->spe);
    t->tty = isatty(STDOUT_FILENO);
    return setup_run_dir(t, err);
}

static ct_status save(trainer *t, ct_error *err) {
    ct_train_progress pr = {t->step / t->spe, t->step, t->ex.seed};
    ct_status st = ct_checkpoint_save(t->run_dir, t->m.store, t->opt, &pr, t->config_text, (int)t->keep,
                                      t->last_ckpt, sizeof t->last_ckpt, err);
    if (st == CT_OK) ct_metrics_log_checkpoint(t->metrics, t->step, t->last_ckpt);
    return st;
}

static ct_status resume(trainer *t, ct_error *err) {
    char path[1200];
    ct_status st = ct_checkpoint_latest(t->run_dir, path, sizeof path, err);
    if (st != CT_OK) return st;
    ct_train_progress pr;
    st = ct_checkpoint_load(path, t->m.store, t->opt, &pr, err);
    if (st != CT_OK) return st;
    if (pr.seed != t->ex.seed)
        return ct_error_set(err, CT_ERR_CONFIG, "%s was trained with seed %llu, the config says %llu",
                            path, (unsigned long long)pr.seed, (unsigned long long)t->ex.seed);
    char *old = ct_checkpoint_meta(path, "config", err);
    if (old && strcmp(old, t->config_text) != 0)
        fprintf(stderr, "contrast: warning: the resolved config differs from the one %s was trained with\n", path);
    free(old);
    t->step = pr.step;
    snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", path);
    printf("resuming %s at step %lld (epoch %lld)\n", path, (long long)t->step, (long long)(t->step / t->spe));
    return CT_OK;
}

/* Whether v holds a NaN or Inf. No early exit inside: the comparison
 * loop vectorizes (about 4 ms for 7.7M floats, a 60k x 128 memory bank,
 * against 13 ms for an isfinite() loop). */
static bool any_non_finite(const float *v, int64_t n) {
    int bad = 0;
    for (int64_t k = 0; k < n; k++) bad |= !(fabsf(v[k]) <= FLT_MAX);
    return bad != 0;
}

/* The first entry of the store holding a NaN or Inf in its values (or,
 * with grads, in its gradient); NULL when all are finite. One pass over
 * the floats: cheap next to the step that made them. */
static const char *non_finite_entry(const ct_params *p, bool grads) {
    for (size_t i = 0; i < ct_params_count(p); i++) {
        const char *name = NULL;
        ct_param_kind kind = CT_PARAM_BUFFER;
        const ct_tensor *x = ct_params_at(p, i, &name, &kind, NULL);
        const float *v = !grads ? x->data : kind == CT_PARAM_TRAINABLE ? x->grad : NULL;
        if (v && any_non_finite(v, x->numel)) return name;
    }
    return NULL;
}

/* Stop on a non-finite number: nothing is saved after it, so the newest
 * checkpoint on disk is the last good state; say which and what to try. */
static ct_status numeric_stop(const trainer *t, int64_t epoch, const char *what, ct_error *err) {
    char at[128];
    snprintf(at, sizeof at, "in step %lld of %lld (epoch %lld, 0-based step index %lld)", (long long)t->step + 1,
             (long long)t->total, (long long)epoch + 1, (long long)t->step);
    if (!t->last_ckpt[0])
        return ct_error_set(err, CT_ERR_NUMERIC,
                            "%s %s; stopping. No checkpoint was saved yet: try a lower optimizer.lr or a "
                            "longer schedule.warmup_epochs and train again",
                            what, at);
    return ct_error_set(err, CT_ERR_NUMERIC,
                        "%s %s; stopping. The last good checkpoint is %s: try a lower optimizer.lr or a "
                        "longer schedule.warmup_epochs and continue it with --resume",
                        what, at, t->last_ckpt);
}

/* Stop when an entry of the store is not finite: its gradient (grads) or
 * its values. */
static ct_status check_store(const trainer *t, int64_t epoch, bool grads, ct_error *err) {
    const char *bad = non_finite_entry(t->m.store, grads);
    if (!bad) return CT_OK;
    char what[300];
    if (grads)
        snprintf(what, sizeof what, "the gradient of '%s' is not finite", bad);
    else
        snprintf(what, sizeof what, "'%s' is not finite after the update", bad);
    return numeric_stop(t, epoch, what, err);
}

/* Pipeline i's batch as the architecture sees it, on the model's graph;
 * a failure names the pipeline by its index and dataset. */
static ct_status to_batch(trainer *t, int i, const ct_data_batch *db, ct_batch *b, ct_error *err) {
    ct_status st = ct_pipeline_to_batch(db, t->m.graph, i, t->ex.pipelines[i].weight, b, err);
    if (st != CT_OK) ct_error_prefix(err, "pipeline %d (data \"%s\"): ", i, t->ex.pipelines[i].data->name);
    return st;
}

/* One optimizer step over one batch of every pipeline. */
static ct_status train_step(trainer *t, int64_t epoch, double *loss_out, int64_t *views,
                            double *stall, ct_error *err) {
    ct_graph *g = t->m.graph;
    const ct_data_batch *db[CT_MAX_PIPELINES] = {NULL};
    ct_step_info info = {epoch, t->step, t->total, t->spe};
    ct_tensor *total = NULL;
    ct_status st = CT_OK;
    *views = 0;
    *stall = 0;
    for (int i = 0; i < t->n_pipes && st == CT_OK; i++) {
        st = ct_pipeline_next(t->pipes[i], &db[i], err);
        if (st == CT_OK && !db[i])
            st = ct_error_set(err, CT_ERR_INVALID, "pipeline %d (data \"%s\") ended early in epoch %lld", i,
                              t->ex.pipelines[i].data->name, (long long)epoch);
        if (st != CT_OK) break;
        *stall += db[i]->stall_s;
        *views += (int64_t)db[i]->n * db[i]->n_views;
        ct_batch b;
        st = to_batch(t, i, db[i], &b, err);
        if (st != CT_OK) break;
        ct_tensor *l = t->ex.arch_ops->loss(t->m.arch, g, &b, &info);
        if (l && b.weight != 1.0f) l = ct_scale(g, l, b.weight);
        total = (l && total) ? ct_add(g, total, l) : l;
        if (!total) st = ct_error_set(err, ct_graph_status(g) ? ct_graph_status(g) : CT_ERR_INVALID,
                                      "architecture %s: %s", t->ex.arch_ops->name, ct_graph_error(g));
    }
    if (st == CT_OK) {
        *loss_out = total->data[0];
        if (!isfinite(*loss_out)) {
            char what[64];
            snprintf(what, sizeof what, "loss is %f", *loss_out);
            st = numeric_stop(t, epoch, what, err);
        }
    }
    if (st == CT_OK) {
        ct_params_zero_grad(t->m.store);
        st = ct_graph_backward(g, total);
        if (st != CT_OK) st = ct_error_set(err, st, "backward: %s", ct_graph_error(g));
    }
    if (st == CT_OK) {
        if (t->ex.arch_ops->after_backward) t->ex.arch_ops->after_backward(t->m.arch, &info);
        /* A finite loss can still have non-finite gradients (0 * inf in a
         * backward, a hook); the optimizer would spread them into weights. */
        st = check_store(t, epoch, true, err);
    }
    if (st == CT_OK) {
        ct_optim_step(t->opt, plan_lr(&t->plan, t->step));
        if (t->ex.arch_ops->after_step) {
            for (int i = 0; i < t->n_pipes && st == CT_OK; i++) {
                ct_batch b;
                st = to_batch(t, i, db[i], &b, err);
                if (st == CT_OK) t->ex.arch_ops->after_step(t->m.arch, &b, &info);
            }
        }
        /* Updates outside the optimizer (EMA encoders, banks, queues). */
        if (st == CT_OK) st = check_store(t, epoch, false, err);
    }
    ct_graph_reset(g);
    for (int i = 0; i < t->n_pipes; i++) ct_pipeline_release(t->pipes[i], db[i]);
    return st;
}

static void fmt_eta(double s, char *buf, size_t n) {
    long v = (long)(s + 0.5);
    if (v >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", v / 3600, (v / 60) % 60, v % 60);
    else
        snprintf(buf, n, "%ld:%02ld", v / 60, v % 60);
}

static void report_step(trainer *t, int64_t epoch, double loss, float lr, double vps, double stall_ms) {
    ct_metrics_log_step(t->metrics, epoch, t->step, loss, lr, vps, stall_ms);
    char eta[32];
    fmt_eta(t->step_ema * (double)(t->total - t->step - 1), eta, sizeof eta);
    bool last = t->step + 1 == t->total;
    long long epochs = (long long)((t->total + t->spe - 1) / t->spe); /* max_steps may cut the run */
    if (t->tty) {
        printf("\repoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f views/s  ETA %s   ", (long long)epoch + 1,
               epochs, (long long)t->step + 1, (long long)t->total, loss, vps, eta);
        if (last) printf("\n");
        t->line_open = !last;
        fflush(stdout);
    } else if ((t->step + 1) % t->log_every == 0 || last || t->steps_this_session == 1) {
        printf("epoch %lld/%lld step %lld/%lld loss %.4f lr %.3g %.0f views/s stall %.1f ms ETA %s\n",
               (long long)epoch + 1, epochs, (long long)t->step + 1, (long long)t->total, loss,
               lr, vps, stall_ms, eta);
        fflush(stdout);
    }
}

static ct_status evaluate_now(trainer *t, int64_t epoch, ct_error *err) {
    ct_metrics m = {0};
    double t0 = now_s();
    ct_status st = ct_evaluate(&t->m, &m, err);
    if (st != CT_OK) return st;
    ct_metrics_log_eval(t->metrics, epoch, t->step, now_s() - t0, &m);
    t->last_eval = m;
    if (t->line_open) printf("\n");
    t->line_open = false;
    printf("evaluation after %lld steps (%.0f s):", (long long)t->step, now_s() - t0);
    for (int i = 0; i < m.n; i++) printf(" %s %.2f", m.name[i], m.value[i]);
    printf("\n");
    fflush(stdout);
    return CT_OK;
}

typedef struct epoch_acc {
    double loss_sum, stall_s, t0;
    int64_t steps, views;
} epoch_acc;

static void epoch_summary(trainer *t, int64_t epoch, const epoch_acc *a) {
    ct_metrics_log_epoch(t->metrics, epoch, a->steps, a->loss_sum, now_s() - a->t0, a->views, a->stall_s);
}

/* Why the loop stopped. */
typedef enum stop_reason { RUN_DONE = 0, RUN_SIGNAL, RUN_STOP_AFTER } stop_reason;

static ct_status run_epoch(trainer *t, int64_t epoch, stop_reason *why, ct_error *err) {
    ct_status st = CT_OK;
    for (int i = 0; i < t->n_pipes && st == CT_OK; i++) st = ct_pipeline_start_epoch(t->pipes[i], epoch, err);
    /* Resuming mid-epoch: the data order is a function of (seed, epoch),
     * so skipping the batches already trained on gives the same stream. */
    for (int64_t skip = t->step - epoch * t->spe; st == CT_OK && skip > 0; skip--)
        for (int i = 0; i < t->n_pipes && st == CT_OK; i++) {
            const ct_data_batch *b;
            st = ct_pipeline_next(t->pipes[i], &b, err);
            ct_pipeline_release(t->pipes[i], b);
        }
    epoch_acc acc = {0, 0, now_s(), 0, 0};
    while (st == CT_OK && t->step < (epoch + 1) * t->spe && t->step < t->total) {
        double t0 = now_s(), loss = 0, stall = 0;
        int64_t views;
        float lr = plan_lr(&t->plan, t->step);
        st = train_step(t, epoch, &loss, &views, &stall, err);
        if (st != CT_OK) break;
        double dt = now_s() - t0;
        t->steps_this_session++;
        t->step_ema = t->steps_this_session == 1 ? dt : 0.9 * t->step_ema + 0.1 * dt;
        report_step(t, epoch, loss, lr, dt > 0 ? (double)views / dt : 0, stall * 1e3);
        t->last_loss = loss;
        t->step++;
        acc.loss_sum += loss;
        acc.steps++;
        acc.views += views;
        acc.stall_s += stall;
        if (g_stop_signal) *why = RUN_SIGNAL;
        if (t->o->stop_after_steps > 0 && t->step >= t->o->stop_after_steps) *why = RUN_STOP_AFTER;
        if (*why != RUN_DONE) return CT_OK;
    }
    if (st == CT_OK && acc.steps > 0) epoch_summary(t, epoch, &acc);
    return st;
}

/* summary.txt: the run in a few human lines. */
static void write_summary(const trainer *t, double secs) {
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.txt", t->run_dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "experiment   %s (%s)\n", t->ex.name, t->ex.path);
    fprintf(f, "steps        %lld of %lld (%lld per epoch, batch %lld)\n", (long long)t->step,
            (long long)t->total, (long long)t->spe, (long long)ct_settings_int(t->ex.train, "batch_size"));
    fprintf(f, "this session %lld steps in %.1f s, %d threads\n", (long long)t->steps_this_session, secs,
            t->m.threads);
    fprintf(f, "final loss   %.4f\n", t->last_loss);
    fprintf(f, "checkpoint   %s\n", t->last_ckpt);
    for (int i = 0; i < t->last_eval.n; i++)
        fprintf(f, "%-12s %.2f\n", t->last_eval.name[i], t->last_eval.value[i]);
    fclose(f);
}

static ct_status train_loop(trainer *t, ct_error *err) {
    stop_reason why = RUN_DONE;
    ct_status st = CT_OK;
    t->t_start = now_s();
    for (int64_t epoch = t->step / t->spe; st == CT_OK && t->step < t->total; epoch++) {
        st = run_epoch(t, epoch, &why, err);
        if (st != CT_OK) return st;
        if (why != RUN_DONE) {
            if (t->line_open) printf("\n");
            t->line_open = false;
            st = save(t, err);
            if (st == CT_OK)
                printf("%s after step %lld: checkpoint %s; continue with --resume\n",
                       why == RUN_SIGNAL ? "interrupted" : "stopped", (long long)t->step, t->last_ckpt);
            return st;
        }
        bool epoch_end = t->step == (epoch + 1) * t->spe && t->step < t->total;
        if (epoch_end && t->ckpt_every > 0 && (epoch + 1) % t->ckpt_every == 0) st = save(t, err);
        if (st == CT_OK && epoch_end && t->ex.eval_every > 0 && (epoch + 1) % t->ex.eval_every == 0 &&
            t->ex.n_evaluators > 0)
            st = evaluate_now(t, epoch, err);
    }
    if (st == CT_OK) st = save(t, err);
    if (st != CT_OK) return st;
    double secs = now_s() - t->t_start;
    printf("trained %lld steps in %.1f s; checkpoint %s\n", (long long)t->steps_this_session, secs, t->last_ckpt);
    if (t->ex.n_evaluators > 0) st = evaluate_now(t, t->step / t->spe, err);
    if (st == CT_OK) write_summary(t, secs);
    return st;
}

static void teardown(trainer *t) {
    for (int i = 0; i < t->n_pipes; i++) ct_pipeline_free(t->pipes[i]);
    if (t->opt) ct_optim_free(t->opt);
    ct_model_free(&t->m);
    ct_experiment_free(&t->ex);
    if (t->metrics) fclose(t->metrics);
    free(t->config_text);
}

static void metric_sink(void *ctx, const char *owner, const char *name, double value) {
    const trainer *t = ctx;
    ct_metrics_log_value(t->metrics, t->step, owner, name, value);
}

ct_status ct_train_run(const ct_train_opts *o, ct_error *err) {
    trainer *t = calloc(1, sizeof *t);
    if (!t) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    t->o = o;
    ct_status st = setup(t, err);
    if (st == CT_OK && o->resume) st = resume(t, err);
    if (st == CT_OK) {
        printf("run %s: %lld steps (%lld per epoch), %d threads, %lld parameters\n", t->run_dir,
               (long long)t->total, (long long)t->spe, t->m.threads, (long long)ct_params_numel(t->m.store));
        fflush(stdout);
        struct sigaction old_int, old_term;
        install_signals(&old_int, &old_term);
        ct_host_set_metric_sink(metric_sink, t);
        st = train_loop(t, err);
        ct_host_set_metric_sink(NULL, NULL);
        restore_signals(&old_int, &old_term);
    }
    teardown(t);
    free(t);
    return st;
}

/* The training loop (`contrast train`, see trainer.h). */
#include "training/trainer.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/experiment.h"
#include "data/pipeline.h"
#include "data/sample.h"
#include "dist/dist.h"
#include "dist/grad_buckets.h"
#include "training/checkpoint.h"
#include "training/evaluate.h"
#include "training/metrics.h"
#include "training/model.h"
#include "training/run_dir.h"
#include "report/report.h"
#include "training/sha256.h"
#include "training/watch.h"

/* Plugins' own metrics (ct_host.metric) into metrics.jsonl with the step. */
static void metric_sink(void *ctx, const char *owner, const char *name, double value);

/* ---- optimizer and schedule from the experiment ------------------------- */

static ct_optim_config optim_config(const ct_settings *s) {
    const char *type = ct_settings_string(s, "type");
    ct_optim_kind kind = strcmp(type, "adamw") == 0 ? CT_OPTIM_ADAMW
                         : strcmp(type, "adam") == 0 ? CT_OPTIM_ADAM
                         : strcmp(type, "lars") == 0 ? CT_OPTIM_LARS
                                                     : CT_OPTIM_SGD;
    ct_optim_config c = ct_optim_defaults(kind);
    c.lr = (float)ct_settings_float(s, "lr");
    c.momentum = (float)ct_settings_float(s, "momentum");
    c.nesterov = ct_settings_bool(s, "nesterov");
    c.weight_decay = (float)ct_settings_float(s, "weight_decay");
    c.decay_all = ct_settings_bool(s, "decay_all");
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

/* While an evaluation runs. Its state is checkpointed before it starts and
 * evaluator plugins have no way to be interrupted, so a signal then ends
 * the process at once with this line (formatted beforehand: a handler may
 * only write and _exit). */
static volatile sig_atomic_t g_in_eval = 0;
static char g_eval_msg[1600];
static size_t g_eval_msg_len;

static void on_signal(int sig) {
    if (g_in_eval) {
        ssize_t w = write(STDERR_FILENO, g_eval_msg, g_eval_msg_len);
        (void)w;
        _exit(128 + sig);
    }
    g_stop_signal = sig;
    /* A second signal takes the default action (a user's hard stop). */
    signal(sig, SIG_DFL);
}

typedef struct saved_signals {
    struct sigaction sint, sterm, spipe;
} saved_signals;

/* SIGINT/SIGTERM stop the loop at the next step; SIGPIPE is ignored, so a
 * closed stdout (`contrast train CFG | head -1`) is a failed write that
 * say() notices, not the end of the training. */
static void install_signals(saved_signals *old) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop_signal = 0;
    g_in_eval = 0;
    sigaction(SIGINT, &sa, &old->sint);
    sigaction(SIGTERM, &sa, &old->sterm);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old->spipe);
}

static void restore_signals(const saved_signals *old) {
    g_in_eval = 0;
    sigaction(SIGINT, &old->sint, NULL);
    sigaction(SIGTERM, &old->sterm, NULL);
    sigaction(SIGPIPE, &old->spipe, NULL);
}

/* ---- the trainer ----------------------------------------------------- */

typedef struct trainer {
    const ct_train_opts *o;
    ct_experiment ex;
    ct_model m;
    ct_optim *opt;
    lr_plan plan;
    int n_pipes;                        /* ex.n_pipelines */
    ct_pipeline *pipes[CT_MAX_PIPELINES]; /* NULL: weight 0, left out */
    int64_t pipe_spe[CT_MAX_PIPELINES];   /* each pipeline's own batches per pass over its data */
    int64_t pipe_epoch[CT_MAX_PIPELINES]; /* the pass it is in (-1: not started) */
    int first_pipe;                       /* the first trained pipeline: it defines the epoch */
    double pipe_loss[CT_MAX_PIPELINES]; /* the last step's loss of each pipeline, before its weight */
    char run_dir[1024];
    char *config_text;
    FILE *metrics;
    bool tty;
    int64_t epochs, spe, total, step, log_every, keep, ckpt_every;
    char last_ckpt[1200];
    double t_start, step_ema, last_loss;
    int64_t steps_this_session;
    bool line_open; /* a \r progress line is on the terminal, unterminated */
    bool out_dead;  /* a write to stdout failed: no more progress lines there */
    ct_metrics last_eval;
    int lock_fd;          /* the run directory's lock (run_dir.h); -1: none */
    int64_t saved_step;   /* step of the newest checkpoint saved or resumed; -1: none */
    bool finished;        /* --resume of a finished run: nothing to do */
    int64_t latest_step;  /* --resume: the step of the newest checkpoint */
    bool config_changed;  /* --allow-config-change took a new config */
    char old_sha[65], new_sha[65];
    ct_watch *watch;
    ct_grad_buckets *buckets; /* train.grad_overlap on P > 1 ranks; NULL: average after backward */
} trainer;

/* A progress line on stdout while it lives. Once a write fails (a closed
 * pipe; SIGPIPE is ignored) nothing more goes there and metrics.jsonl says
 * so once; the run itself goes on. */
static void say(trainer *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void say(trainer *t, const char *fmt, ...) {
    if (t->out_dead) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        t->out_dead = true;
        ct_metrics_log_note(t->metrics, t->step, "stdout is closed: progress lines stop there, training goes on");
    }
}

/* The first line where two config texts differ, for the refusal. */
static void first_difference(const char *a, const char *b, char *out, size_t n) {
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') line++, la = a + 1, lb = b + 1;
        a++, b++;
    }
    int wa = (int)strcspn(la, "\n"), wb = (int)strcspn(lb, "\n");
    snprintf(out, n, "line %d was \"%.*s\", now \"%.*s\"", line, wa > 120 ? 120 : wa, la, wb > 120 ? 120 : wb, lb);
}

static bool file_exists(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* --resume, before anything in the run directory changes: the newest
 * checkpoint's config against the fresh one (refused when it differs,
 * unless allowed), and whether the run has already finished. */
static ct_status resume_check(trainer *t, ct_error *err) {
    char path[1200];
    ct_status st = ct_checkpoint_latest(t->run_dir, path, sizeof path, err);
    if (st != CT_OK) return st;
    char *old = ct_checkpoint_meta(path, "config", err);
    char *step_text = ct_checkpoint_meta(path, "step", err);
    int64_t step = step_text ? strtoll(step_text, NULL, 10) : 0;
    free(step_text);
    if (old && strcmp(old, t->config_text) != 0) {
        if (!t->o->allow_config_change) {
            char diff[400];
            first_difference(old, t->config_text, diff, sizeof diff);
            free(old);
            return ct_error_set(err, CT_ERR_CONFIG,
                                "%s: the resolved config differs from the one %s was trained with (%s); resume "
                                "with --allow-config-change to continue under the new config",
                                t->ex.path, path, diff);
        }
        ct_sha256_hex(old, strlen(old), t->old_sha);
        ct_sha256_hex(t->config_text, strlen(t->config_text), t->new_sha);
        t->config_changed = true;
    }
    free(old);
    /* Finished: the final checkpoint is there and so is the summary the
     * end of a run writes after its last evaluation. */
    t->latest_step = step;
    t->finished = step >= t->total && file_exists(t->run_dir, "summary.txt");
    return CT_OK;
}

static ct_status setup_run_dir(trainer *t, ct_error *err) {
    if (t->o->run_dir)
        snprintf(t->run_dir, sizeof t->run_dir, "%s", t->o->run_dir);
    else
        ct_run_dir_default(&t->ex, t->run_dir, sizeof t->run_dir);
    /* Rank 0 writes the run directory and holds its lock; the others only
     * read checkpoints (and follow rank 0's verdicts, agree_setup). */
    if (ct_dist_rank() != 0) return CT_OK;
    ct_status st = ct_run_dir_make(t->run_dir, err);
    if (st == CT_OK) st = ct_run_dir_lock(t->run_dir, &t->lock_fd, err);
    if (st != CT_OK) return st;
    ct_run_dir_clean_stale(t->run_dir, stderr);
    char path[1200];
    if (!t->o->resume) {
        ct_error probe = CT_ERROR_INIT;
        if (ct_checkpoint_latest(t->run_dir, path, sizeof path, &probe) == CT_OK)
            return ct_error_set(err, CT_ERR_EXISTS,
                                "%s already holds checkpoints (%s): continue it with --resume, or remove it",
                                t->run_dir, path);
    }
    /* The fresh config goes to a temp file named like the other atomic
     * writers' (cleaned by the next run if this one is killed). */
    char fresh[1200];
    snprintf(fresh, sizeof fresh, "%s/config.cfg.tmp.%ld", t->run_dir, (long)getpid());
    st = ct_experiment_write_resolved(&t->ex, fresh, err);
    if (st == CT_OK && !(t->config_text = slurp(fresh)))
        st = ct_error_set(err, CT_ERR_IO, "cannot read back %s", fresh);
    if (st == CT_OK && t->o->resume) st = resume_check(t, err);
    if (st != CT_OK || t->finished) {
        unlink(fresh);
        return st;
    }
    snprintf(path, sizeof path, "%s/config.cfg", t->run_dir);
    if (rename(fresh, path) != 0)
        return ct_error_set(err, CT_ERR_IO, "cannot rename %s: %s", fresh, strerror(errno));
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
    t->metrics = fopen(path, t->o->resume ? "a" : "w");
    if (!t->metrics) return ct_error_set(err, CT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    return CT_OK;
}

/* Pipeline i's pipeline (its own batch size, each rank its slice of
 * every global batch, dist.h) and its batches per pass. */
static ct_status setup_pipeline(trainer *t, int i, ct_error *err) {
    const ct_pipeline_spec *spec = &t->ex.pipelines[i];
    int64_t bs = spec->batch_size;
    int ranks = ct_dist_size();
    const char *key = spec->own_batch ? "batch_size" : "train.batch_size";
    if (bs % ranks != 0)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: pipelines[%d] (data \"%s\"): %s = %lld (the global batch) does "
                            "not divide over %d ranks", t->ex.path, i, spec->data->name, key, (long long)bs, ranks);
    ct_pipeline_opts po = ct_pipeline_opts_default(bs / ranks, ct_pipeline_seed(t->ex.seed, i));
    po.shard = ct_dist_rank();
    po.shards = ranks;
    ct_status st = ct_pipeline_new(spec, &po, &t->pipes[i], err);
    if (st != CT_OK) {
        ct_error_prefix(err, "%s: pipelines[%d] (%s = %lld): ", t->ex.path, i, key, (long long)bs);
        return st;
    }
    t->pipe_spe[i] = ct_pipeline_steps_per_epoch(t->pipes[i]);
    if (t->pipe_spe[i] <= 0)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: pipelines[%d] (data \"%s\") has %lld items, fewer than its "
                            "batch (%s = %lld)", t->ex.path, i, spec->data->name,
                            (long long)ct_pipeline_epoch_size(t->pipes[i]), key, (long long)bs);
    return CT_OK;
}

/* Every pipeline of nonzero weight. The epoch is the first one's pass
 * over its data: the schedule, checkpoint_every and evaluation.every
 * count its passes; every other pipeline cycles through its own data
 * meanwhile, in passes of its own (pipeline_at). */
static ct_status setup_pipelines(trainer *t, ct_error *err) {
    t->n_pipes = t->ex.n_pipelines;
    t->first_pipe = -1;
    for (int i = 0; i < t->n_pipes; i++) {
        t->pipe_epoch[i] = -1;
        if (t->ex.pipelines[i].weight == 0.0f) continue;
        ct_status st = setup_pipeline(t, i, err);
        if (st != CT_OK) return st;
        if (t->first_pipe < 0) t->first_pipe = i;
    }
    if (t->first_pipe < 0)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: no pipelines to train on (none, or every weight is 0)", t->ex.path);
    t->spe = t->pipe_spe[t->first_pipe];
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
    t->m.gather_rows = ct_dist_size() > 1;
    t->m.sync_bn = t->m.gather_rows && ct_settings_bool(t->ex.train, "sync_bn");
    if (st == CT_OK) st = setup_pipelines(t, err);
    if (st != CT_OK) return st;
    ct_optim_config oc = optim_config(t->ex.optimizer);
    t->opt = ct_optim_new(t->m.store, &oc, err);
    if (!t->opt) return err->code ? err->code : CT_ERR_NOMEM;
    if (ct_dist_size() > 1 && ct_settings_bool(t->ex.train, "grad_overlap")) {
        size_t floats = (size_t)ct_settings_int(t->ex.train, "grad_bucket_kb") * 1024 / sizeof(float);
        if (!(t->buckets = ct_grad_buckets_new(t->m.store, floats, err))) return err->code ? err->code : CT_ERR_NOMEM;
    }
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
    ct_watch_opts wo = {ct_settings_int(t->ex.train, "watch_steps"), ct_settings_bool(t->ex.train, "stop_on_divergence"),
                        ct_settings_bool(t->ex.train, "stop_on_collapse"),
                        ct_settings_float(t->ex.train, "watch_weight_growth"),
                        ct_settings_float(t->ex.train, "watch_min_std")};
    if (!(t->watch = ct_watch_new(&wo))) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    /* Collapse is judged on the embeddings each step makes (the seam). */
    t->m.embed_observer = ct_watch_on_embed;
    t->m.embed_observer_ctx = t->watch;
    return setup_run_dir(t, err);
}

static ct_status save(trainer *t, ct_error *err) {
    if (ct_dist_rank() != 0) return CT_OK; /* rank 0 writes */
    ct_train_progress pr = {t->step / t->spe, t->step, t->ex.seed};
    ct_status st = ct_checkpoint_save(t->run_dir, t->m.store, t->opt, &pr, t->config_text, (int)t->keep,
                                      t->last_ckpt, sizeof t->last_ckpt, err);
    if (st == CT_OK) {
        t->saved_step = t->step;
        ct_metrics_log_checkpoint(t->metrics, t->step, t->last_ckpt);
    }
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
    t->step = pr.step;
    t->saved_step = pr.step;
    snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", path);
    if (t->config_changed) {
        ct_metrics_log_config_change(t->metrics, t->step, path, t->old_sha, t->new_sha);
        fprintf(stderr, "contrast: resuming %s under a changed config (--allow-config-change; config.cfg is the new "
                "one, metrics.jsonl records the change)\n", path);
    }
    say(t, "resuming %s at step %lld (epoch %lld)\n", path, (long long)t->step, (long long)(t->step / t->spe));
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

/* Stop on a non-finite number (kind "non_finite") or the watch's verdict
 * ("divergence", "collapse"): nothing is saved after it, so the newest
 * checkpoint on disk is the last good state; say which and what to try.
 * metrics.jsonl gets a "stop" line, so the report can say why. */
static ct_status numeric_stop(const trainer *t, int64_t epoch, const char *kind, const char *what, ct_error *err) {
    char at[128];
    snprintf(at, sizeof at, "in step %lld of %lld (epoch %lld, 0-based step index %lld)", (long long)t->step + 1,
             (long long)t->total, (long long)epoch + 1, (long long)t->step);
    ct_metrics_log_stop(t->metrics, t->step, kind, what);
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
    return numeric_stop(t, epoch, "non_finite", what, err);
}

/* Pipeline i's batch as the architecture sees it (ct_model_batch); a
 * failure names the pipeline by its index and dataset. */
static ct_status to_batch(trainer *t, int i, const ct_data_batch *db, ct_batch *b, ct_error *err) {
    ct_status st = ct_model_batch(&t->m, db, i, b, err);
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
        t->pipe_loss[i] = NAN;
        if (!t->pipes[i]) continue; /* weight 0 */
        st = ct_pipeline_next(t->pipes[i], &db[i], err);
        if (st == CT_OK && !db[i])
            st = ct_error_set(err, CT_ERR_INVALID, "pipeline %d (data \"%s\") ended early in its pass %lld", i,
                              t->ex.pipelines[i].data->name, (long long)t->pipe_epoch[i]);
        if (st != CT_OK) break;
        *stall += db[i]->stall_s;
        *views += (int64_t)db[i]->n * db[i]->n_views * ct_dist_size(); /* every rank's */
        ct_batch b;
        st = to_batch(t, i, db[i], &b, err);
        if (st != CT_OK) break;
        ct_tensor *l = t->ex.arch_ops->loss(t->m.arch, g, &b, &info);
        t->pipe_loss[i] = l ? l->data[0] : NAN;
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
            st = numeric_stop(t, epoch, "non_finite", what, err);
        }
    }
    if (st == CT_OK) {
        ct_params_zero_grad(t->m.store);
        if (t->buckets) {
            st = ct_grad_buckets_backward(t->buckets, g, total, err);
        } else {
            st = ct_graph_backward(g, total);
            if (st != CT_OK) st = ct_error_set(err, st, "backward: %s", ct_graph_error(g));
            if (st == CT_OK) st = ct_dist_average_grads(t->m.store, err);
        }
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
                if (!t->pipes[i]) continue;
                ct_batch b;
                st = to_batch(t, i, db[i], &b, err);
                if (st == CT_OK) t->ex.arch_ops->after_step(t->m.arch, &b, &info);
            }
        }
        /* Updates outside the optimizer (EMA encoders, banks, queues). */
        if (st == CT_OK) st = check_store(t, epoch, false, err);
    }
    ct_graph_reset(g);
    for (int i = 0; i < t->n_pipes; i++)
        if (t->pipes[i]) ct_pipeline_release(t->pipes[i], db[i]);
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
    ct_metrics_log_step(t->metrics, epoch, t->step, loss, lr, vps, stall_ms, t->pipe_loss, t->n_pipes);
    char eta[32];
    fmt_eta(t->step_ema * (double)(t->total - t->step - 1), eta, sizeof eta);
    bool last = t->step + 1 == t->total;
    long long epochs = (long long)((t->total + t->spe - 1) / t->spe); /* max_steps may cut the run */
    if (t->tty) {
        say(t, "\repoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f views/s  ETA %s   %s", (long long)epoch + 1,
            epochs, (long long)t->step + 1, (long long)t->total, loss, vps, eta, last ? "\n" : "");
        t->line_open = !last;
    } else if ((t->step + 1) % t->log_every == 0 || last || t->steps_this_session == 1) {
        say(t, "epoch %lld/%lld step %lld/%lld loss %.4f lr %.3g %.0f views/s stall %.1f ms ETA %s\n",
            (long long)epoch + 1, epochs, (long long)t->step + 1, (long long)t->total, loss, lr, vps, stall_ms, eta);
    }
}

static void end_line(trainer *t) {
    if (t->line_open) say(t, "\n");
    t->line_open = false;
}

/* A stop signal, on any rank: every rank stops at the same point (the
 * launcher forwards the signal, but it may arrive between two ranks'
 * checks, and they must not part ways between collectives). */
static bool stop_signalled(void) { return ct_dist_size() > 1 ? !ct_dist_all_ok(!g_stop_signal) : g_stop_signal != 0; }

/* An evaluation of the current state: checkpointed first, so that a
 * signal during it may end the process at once (see on_signal). */
static ct_status evaluate_now(trainer *t, int64_t epoch, ct_error *err) {
    ct_status st = t->saved_step == t->step ? CT_OK : save(t, err);
    if (st != CT_OK) return st;
    int n = snprintf(g_eval_msg, sizeof g_eval_msg,
                     "\ncontrast: interrupted during the evaluation after step %lld; checkpoint %s holds the "
                     "trained state: continue with --resume\n",
                     (long long)t->step, t->last_ckpt);
    g_eval_msg_len = n < 0 ? 0 : (size_t)n < sizeof g_eval_msg ? (size_t)n : sizeof g_eval_msg - 1;
    if (stop_signalled()) return CT_OK; /* a signal in the checkpoint's write: stop as after a step */
    /* Rank 0 evaluates; the others extract their shards of the features. */
    if (ct_dist_rank() != 0) return ct_evaluate_follow(&t->m, err);
    ct_metrics m = {0};
    double t0 = now_s();
    g_in_eval = 1;
    st = ct_evaluate_in(&t->m, t->run_dir, &m, err);
    g_in_eval = 0;
    if (st != CT_OK) return st;
    ct_metrics_log_eval(t->metrics, epoch, t->step, now_s() - t0, &m);
    t->last_eval = m;
    end_line(t);
    char line[2400];
    int used = snprintf(line, sizeof line, "evaluation after %lld steps (%.0f s):", (long long)t->step, now_s() - t0);
    for (int i = 0; i < m.n && used > 0 && (size_t)used < sizeof line; i++)
        used += snprintf(line + used, sizeof line - (size_t)used, " %s %.2f", m.name[i], m.value[i]);
    say(t, "%s\n", line);
    ct_evaluation_data_text(&t->ex, line, sizeof line);
    say(t, "evaluation data: %s\n", line);
    ct_report_after_training(t->run_dir, &t->m); /* the report after each evaluation */
    return CT_OK;
}

typedef struct epoch_acc {
    double loss_sum, stall_s, t0;
    int64_t steps, views;
} epoch_acc;

static void epoch_summary(trainer *t, int64_t epoch, const epoch_acc *a) {
    ct_metrics_log_epoch(t->metrics, epoch, a->steps, a->loss_sum, now_s() - a->t0, a->views, a->stall_s);
}

static const char *watch_name(ct_watch_kind k) { return k == CT_WATCH_DIVERGENCE ? "divergence" : "collapse"; }

/* The divergence and collapse watch after a step: warnings to stderr and
 * metrics.jsonl, and the stop when a symptom has lasted train.watch_steps
 * steps with its train.stop_on_* on. Nothing is saved after a stop, as
 * after a non-finite loss. */
static ct_status watch_look(trainer *t, int64_t epoch, double loss, ct_error *err) {
    ct_watch_event ev[2];
    int n = ct_watch_step(t->watch, loss, t->m.store, ev);
    int64_t steps = ct_settings_int(t->ex.train, "watch_steps");
    for (int k = 0; k < n; k++) {
        const char *kind = watch_name(ev[k].kind);
        if (ev[k].warn) {
            ct_metrics_log_watch(t->metrics, t->step, kind, ev[k].streak, ev[k].stop, ev[k].what);
            end_line(t);
            if (!ev[k].stop && ev[k].streak < steps)
                fprintf(stderr, "contrast: warning: step %lld: %s: %s; the run stops if this lasts %lld steps "
                        "(train.watch_steps)\n", (long long)t->step + 1, kind, ev[k].what, (long long)steps);
            else if (!ev[k].stop)
                fprintf(stderr, "contrast: warning: step %lld: %s for %lld steps: %s; going on as "
                        "train.stop_on_%s = false\n", (long long)t->step + 1, kind, (long long)ev[k].streak,
                        ev[k].what, kind);
        }
        if (ev[k].stop) {
            char what[600];
            snprintf(what, sizeof what,
                     "training %s (%s) for %lld steps (train.watch_steps; train.stop_on_%s = false would only warn)",
                     ev[k].kind == CT_WATCH_DIVERGENCE ? "diverged" : "collapsed", ev[k].what, (long long)ev[k].streak,
                     kind);
            return numeric_stop(t, epoch, kind, what, err);
        }
    }
    return CT_OK;
}

/* Why the loop stopped. */
typedef enum stop_reason { RUN_DONE = 0, RUN_SIGNAL, RUN_STOP_AFTER } stop_reason;

/* Pipeline i positioned for global step `step`: one batch per step, so it
 * is in its pass step / pipe_spe[i] at batch step % pipe_spe[i]. A new
 * pass starts its own shuffled order (keyed by its pass number); resuming
 * mid-pass skips the batches already trained on, which gives the same
 * stream (the order and every view are functions of seed, pass, item). */
static ct_status pipeline_at(trainer *t, int i, int64_t step, ct_error *err) {
    int64_t pass = step / t->pipe_spe[i];
    if (t->pipe_epoch[i] == pass) return CT_OK;
    ct_status st = ct_pipeline_start_epoch(t->pipes[i], pass, err);
    if (st == CT_OK) t->pipe_epoch[i] = pass;
    for (int64_t skip = step % t->pipe_spe[i]; st == CT_OK && skip > 0; skip--) {
        const ct_data_batch *b;
        st = ct_pipeline_next(t->pipes[i], &b, err);
        ct_pipeline_release(t->pipes[i], b);
    }
    return st;
}

static ct_status run_epoch(trainer *t, int64_t epoch, stop_reason *why, ct_error *err) {
    ct_status st = CT_OK;
    epoch_acc acc = {0, 0, now_s(), 0, 0};
    while (st == CT_OK && t->step < (epoch + 1) * t->spe && t->step < t->total) {
        double t0 = now_s(), loss = 0, stall = 0;
        int64_t views;
        float lr = plan_lr(&t->plan, t->step);
        for (int i = 0; i < t->n_pipes && st == CT_OK; i++)
            if (t->pipes[i]) st = pipeline_at(t, i, t->step, err);
        if (st == CT_OK) st = train_step(t, epoch, &loss, &views, &stall, err);
        if (st != CT_OK) break;
        double dt = now_s() - t0;
        t->steps_this_session++;
        t->step_ema = t->steps_this_session == 1 ? dt : 0.9 * t->step_ema + 0.1 * dt;
        report_step(t, epoch, loss, lr, dt > 0 ? (double)views / dt : 0, stall * 1e3);
        st = watch_look(t, epoch, loss, err);
        if (st != CT_OK) break;
        t->last_loss = loss;
        t->step++;
        acc.loss_sum += loss;
        acc.steps++;
        acc.views += views;
        acc.stall_s += stall;
        if (stop_signalled()) *why = RUN_SIGNAL;
        if (t->o->stop_after_steps > 0 && t->step >= t->o->stop_after_steps) *why = RUN_STOP_AFTER;
        if (*why != RUN_DONE) return CT_OK;
    }
    if (st == CT_OK && acc.steps > 0) epoch_summary(t, epoch, &acc);
    return st;
}

/* summary.txt: the run in a few human lines. */
static void write_summary(const trainer *t, double secs) {
    if (ct_dist_rank() != 0) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.txt", t->run_dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "experiment   %s (%s)\n", t->ex.name, t->ex.path);
    fprintf(f, "steps        %lld of %lld (%lld per epoch, batch %lld)\n", (long long)t->step, (long long)t->total,
            (long long)t->spe, (long long)t->ex.pipelines[t->first_pipe].batch_size);
    for (int i = 0; t->n_pipes > 1 && i < t->n_pipes; i++)
        if (t->pipes[i])
            fprintf(f, "pipeline %d   data %s, batch %lld, %lld steps per pass, weight %g\n", i,
                    t->ex.pipelines[i].data->name, (long long)t->ex.pipelines[i].batch_size,
                    (long long)t->pipe_spe[i], (double)t->ex.pipelines[i].weight);
    fprintf(f, "this session %lld steps in %.1f s, %d threads\n", (long long)t->steps_this_session, secs,
            t->m.threads);
    fprintf(f, "final loss   %.4f\n", t->last_loss);
    fprintf(f, "checkpoint   %s\n", t->last_ckpt);
    for (int i = 0; i < t->last_eval.n; i++)
        fprintf(f, "%-12s %.2f\n", t->last_eval.name[i], t->last_eval.value[i]);
    fclose(f);
}

/* A stop between steps (signal, --stop-after): checkpoint and say how to go on. */
static ct_status stop_here(trainer *t, stop_reason why, ct_error *err) {
    end_line(t);
    ct_status st = t->saved_step == t->step ? CT_OK : save(t, err);
    if (st == CT_OK)
        say(t, "%s after step %lld: checkpoint %s; continue with --resume\n",
            why == RUN_SIGNAL ? "interrupted" : "stopped", (long long)t->step, t->last_ckpt);
    return st;
}

static ct_status train_loop(trainer *t, ct_error *err) {
    stop_reason why = RUN_DONE;
    ct_status st = CT_OK;
    t->t_start = now_s();
    for (int64_t epoch = t->step / t->spe; st == CT_OK && t->step < t->total; epoch++) {
        st = run_epoch(t, epoch, &why, err);
        if (st != CT_OK) return st;
        if (why != RUN_DONE) return stop_here(t, why, err);
        bool epoch_end = t->step == (epoch + 1) * t->spe && t->step < t->total;
        if (epoch_end && t->ckpt_every > 0 && (epoch + 1) % t->ckpt_every == 0) st = save(t, err);
        if (st == CT_OK && epoch_end && t->ex.eval_every > 0 && (epoch + 1) % t->ex.eval_every == 0 &&
            t->ex.n_evaluators > 0)
            st = evaluate_now(t, epoch, err);
        if (st == CT_OK && stop_signalled()) return stop_here(t, RUN_SIGNAL, err);
    }
    /* The final checkpoint, unless the run resumed from it (an evaluation
     * interrupted at the end is all that is left to do then). */
    if (st == CT_OK && t->saved_step != t->step) st = save(t, err);
    if (st != CT_OK) return st;
    double secs = now_s() - t->t_start;
    say(t, "trained %lld steps in %.1f s; checkpoint %s\n", (long long)t->steps_this_session, secs, t->last_ckpt);
    if (ct_dist_size() > 1) {
        ct_dist_times c = ct_dist_time_spent();
        say(t, "rank 0 in collectives: %.2f s gradient average, %.2f s embedding gathers, %.2f s batch norm (%.1f%%)\n",
            c.average_s, c.gather_s, c.batchnorm_s, 100 * (c.average_s + c.gather_s + c.batchnorm_s) / secs);
    }
    if (t->ex.n_evaluators > 0) st = evaluate_now(t, t->step / t->spe, err);
    if (st == CT_OK && stop_signalled()) return stop_here(t, RUN_SIGNAL, err);
    if (st == CT_OK) write_summary(t, secs);
    /* The report at the end, also without evaluators (after an evaluation
     * evaluate_now wrote it); rank 0 writes it, as everything else in the
     * run directory (two ranks would race on report.html.tmp). */
    if (st == CT_OK && t->ex.n_evaluators == 0 && ct_dist_rank() == 0) ct_report_after_training(t->run_dir, &t->m);
    return st;
}

static void teardown(trainer *t) {
    for (int i = 0; i < t->n_pipes; i++) ct_pipeline_free(t->pipes[i]);
    if (t->opt) ct_optim_free(t->opt);
    ct_grad_buckets_free(t->buckets);
    ct_model_free(&t->m);
    ct_experiment_free(&t->ex);
    if (t->metrics) fclose(t->metrics);
    free(t->config_text);
    ct_watch_free(t->watch);
    /* Last: the lock covers everything the run writes. */
    ct_run_dir_unlock(t->lock_fd);
}

/* Set-up is rank 0's to judge where it writes (the lock, the config check
 * of --resume, an already finished run): every rank learns whether all
 * set up, and rank 0's verdict on a finished run, so none waits alone in a
 * collective. */
static ct_status agree_setup(trainer *t, ct_status st, ct_error *err) {
    if (ct_dist_size() == 1) return st;
    /* The reason first: once the others learn of the failure they end the
     * job, and this rank with it. */
    if (st != CT_OK) {
        fprintf(stderr, "contrast: rank %d of %d: %s\n", ct_dist_rank(), ct_dist_size(), err->msg);
        fflush(stderr);
    }
    if (!ct_dist_all_ok(st == CT_OK) && st == CT_OK)
        st = ct_error_set(err, CT_ERR_INVALID, "another rank failed to set up (its reason is above)");
    float finished = t->finished ? 1.0f : 0.0f;
    ct_error ignore = CT_ERROR_INIT;
    if (st == CT_OK && ct_dist_broadcast(&finished, 1, 0, &ignore) == CT_OK) t->finished = finished != 0.0f;
    return st;
}

/* With several pipelines: what each trains on and how often it passes
 * over its data in one epoch (the first trained pipeline's pass). */
static void say_pipelines(trainer *t) {
    for (int i = 0; t->n_pipes > 1 && i < t->n_pipes; i++) {
        const ct_pipeline_spec *p = &t->ex.pipelines[i];
        if (!t->pipes[i]) {
            say(t, "pipeline %d (data %s): weight 0, left out\n", i, p->data->name);
            continue;
        }
        say(t, "pipeline %d (data %s, structure %s): batch %lld, weight %g, %lld steps per pass over its data (%.2f "
            "passes per epoch)%s\n", i, p->data->name, ct_experiment_structure_name(&t->ex, i), (long long)p->batch_size,
            (double)p->weight, (long long)t->pipe_spe[i], (double)t->spe / (double)t->pipe_spe[i],
            i == t->first_pipe ? ": defines the epoch" : "");
    }
}

static void metric_sink(void *ctx, const char *owner, const char *name, double value) {
    const trainer *t = ctx;
    ct_metrics_log_value(t->metrics, t->step, owner, name, value);
}

ct_status ct_train_run(const ct_train_opts *o, ct_train_result *res, ct_error *err) {
    ct_train_result none;
    if (!res) res = &none;
    memset(res, 0, sizeof *res);
    trainer *t = calloc(1, sizeof *t);
    if (!t) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    t->o = o;
    t->lock_fd = -1;
    t->saved_step = -1;
    /* After setup: a signal while the data loads ends the process as usual. */
    ct_status st = agree_setup(t, setup(t, err), err);
    saved_signals old;
    install_signals(&old);
    if (st == CT_OK && t->finished) {
        say(t, "run %s already finished (step %lld of %lld, see its summary.txt); nothing to do\n", t->run_dir,
            (long long)t->latest_step, (long long)t->total);
        res->already_finished = true;
    } else {
        if (st == CT_OK && o->resume) st = resume(t, err);
        /* Every rank starts from rank 0's weights (a check more than a
         * need: they initialise and resume alike). */
        if (st == CT_OK) st = ct_dist_broadcast_store(t->m.store, err);
        if (st == CT_OK) {
            say(t, "run %s: %lld steps (%lld per epoch), %d threads, %s kernels, %lld parameters\n", t->run_dir,
                (long long)t->total, (long long)t->spe, t->m.threads,
                ct_simd_name(ct_engine_simd(ct_graph_engine(t->m.graph))), (long long)ct_params_numel(t->m.store));
            say_pipelines(t);
            if (ct_dist_size() > 1)
                say(t, "data-parallel: %d ranks x batch %lld (global batch %lld)%s%s\n", ct_dist_size(),
                    (long long)(t->ex.pipelines[t->first_pipe].batch_size / ct_dist_size()),
                    (long long)t->ex.pipelines[t->first_pipe].batch_size,
                    t->m.sync_bn ? ", batch norm synchronised" : "",
                    t->buckets ? ", gradients averaged in buckets during backward" : "");
            ct_watch_begin(t->watch, t->m.store);
            ct_host_set_metric_sink(metric_sink, t);
            st = train_loop(t, err);
            /* A stop on a number: the report says why (its curves, the
             * watch lines, the stop) without measuring the bad weights. */
            if (st == CT_ERR_NUMERIC && ct_dist_rank() == 0) ct_report_after_stop(t->run_dir, &t->m);
            ct_host_set_metric_sink(NULL, NULL);
        }
        if (st == CT_OK) res->signal = g_stop_signal;
    }
    restore_signals(&old);
    teardown(t);
    free(t);
    return st;
}

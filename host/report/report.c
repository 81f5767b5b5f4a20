/* The run report page (see report.h): the driver and the sections. */
#include "report/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data/preview_grid.h"
#include "report/embedding.h"
#include "report/health.h"
#include "report/run_log.h"
#include "report/svg_chart.h"
#include "report/text_buf.h"
#include "training/evaluate.h"

#define PREVIEW_ROWS 6

/* Everything the sections read. */
typedef struct report {
    const char *run_dir;
    ct_model *m;              /* may be NULL */
    const ct_experiment *ex;  /* m->ex or NULL; set without m after a stop */
    int threads;              /* the model's threads (0: unknown) */
    const char *why_no_model;
    ct_run_log log;
    char *config_text;        /* <run_dir>/config.cfg */
    ct_embedding test, bank;  /* empty without a model */
    float *map_x, *map_y;
    double share2, participation;
    char embed_error[CT_ERROR_MSG_MAX];
    ct_chart_mark *marks;     /* the watch's warnings and the stop on the step axis */
    char (*mark_label)[CT_LOG_STR_MAX + 200];
    int64_t n_marks;
} report;

static char *slurp(const char *path, size_t max) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = malloc(max + 1);
    size_t n = s ? fread(s, 1, max, f) : 0;
    fclose(f);
    if (s) s[n] = '\0';
    return s;
}

/* ---- page frame -------------------------------------------------------------- */

static const char *const CSS =
    "body{font-family:sans-serif;margin:24px auto;max-width:1360px;color:#222;background:#fafafa}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;"
    "text-align:left}th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff;border:1px solid #ddd}"
    ".chart .title{font-size:13px;font-weight:bold}.chart .tick{font-size:10px;fill:#555}"
    ".chart .label{font-size:11px;fill:#333}pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:12px;"
    "max-height:420px;overflow:auto}.note{color:#666;font-size:13px}.ok{color:#1a7f37}.warn{color:#b35900}"
    ".bad{color:#c00;font-weight:bold}.info{color:#333}img.preview{image-rendering:pixelated;border:1px solid #ddd}"
    ".conf td{width:34px;text-align:right;font-size:12px}";

static void page_start(ct_text *o, const report *r) {
    ct_text_printf(o, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>contrast report: ");
    ct_text_html(o, r->ex ? r->ex->name : r->run_dir);
    ct_text_printf(o, "</title><style>%s</style></head><body>\n<h1>contrast run report: ", CSS);
    ct_text_html(o, r->ex ? r->ex->name : r->run_dir);
    ct_text_printf(o, "</h1>\n<p class='note'>Run directory <code>");
    ct_text_html(o, r->run_dir);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    ct_text_printf(o, "</code>, written %s by contrast %s. One file, no external resources.</p>\n", when,
                   ct_version_string());
}

static void missing(ct_text *o, const report *r, const char *what) {
    ct_text_printf(o, "<p class='note'>No %s: ", what);
    ct_text_html(o, r->why_no_model ? r->why_no_model : "the run's model could not be loaded");
    ct_text_printf(o, ".</p>\n");
}

/* ---- the experiment ------------------------------------------------------------ */

static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(out, n, "%s", c + 2);
                out[strcspn(out, "\n")] = '\0';
            }
            break;
        }
    fclose(f);
}

static void row(ct_text *o, const char *k, const char *v) {
    ct_text_printf(o, "<tr><th>");
    ct_text_html(o, k);
    ct_text_printf(o, "</th><td>");
    ct_text_html(o, v);
    ct_text_printf(o, "</td></tr>");
}

static double wall_seconds(const ct_run_log *l) {
    double s = 0;
    for (int64_t i = 0; i < l->n_epochs; i++) s += isfinite(l->epochs[i].seconds) ? l->epochs[i].seconds : 0;
    for (int64_t i = 0; i < l->n_evals; i++) s += isfinite(l->evals[i].seconds) ? l->evals[i].seconds : 0;
    return s;
}

/* One used implementation: role, name, its plugin and version. */
static void plugin_row(ct_text *o, const ct_experiment *ex, ct_role role, const char *name, const char *used_by) {
    const ct_registry_entry *e = ct_plugins_find(ex->plugins, role, name);
    const char *version = "?";
    for (int i = 0; e && i < ex->plugins->n; i++)
        if (ex->plugins->items[i]->loaded && strcmp(ex->plugins->items[i]->name, e->plugin) == 0)
            version = ex->plugins->items[i]->version;
    ct_text_printf(o, "<tr><td>%s</td><td>", ct_role_name(role));
    ct_text_html(o, name);
    ct_text_printf(o, "</td><td>");
    ct_text_html(o, e ? e->plugin : "?");
    ct_text_printf(o, "</td><td>");
    ct_text_html(o, version);
    ct_text_printf(o, "</td><td>");
    ct_text_html(o, used_by);
    ct_text_printf(o, "</td></tr>");
}

static void plugins_table(ct_text *o, const ct_experiment *ex) {
    ct_text_printf(o, "<table><tr><th>role</th><th>implementation</th><th>plugin</th><th>version</th><th>used by</th></tr>");
    for (int k = 0; k < ex->n_data; k++) plugin_row(o, ex, CT_ROLE_SOURCE, ex->data[k].ops->name, ex->data[k].name);
    for (int p = 0; p < ex->n_pipelines; p++)
        for (int g = 0; g < ex->pipelines[p].n_groups; g++)
            for (int k = 0; k < ex->pipelines[p].groups[g].chain.n; k++) {
                char by[64];
                snprintf(by, sizeof by, "pipelines[%d] transform %d", p, k);
                plugin_row(o, ex, CT_ROLE_PRETEXT, ex->pipelines[p].groups[g].chain.t[k].ops->name, by);
            }
    if (ex->encoder_ops) plugin_row(o, ex, CT_ROLE_ENCODER, ex->encoder_ops->name, "encoder");
    if (ex->arch_ops) plugin_row(o, ex, CT_ROLE_ARCHITECTURE, ex->arch_ops->name, "architecture");
    for (int k = 0; k < ex->n_evaluators; k++)
        plugin_row(o, ex, CT_ROLE_EVALUATOR, ex->evaluators[k].ops->name, "evaluation");
    ct_text_printf(o, "</table>\n");
}

static void section_experiment(ct_text *o, const report *r) {
    char buf[1600], cpu[256];
    ct_text_printf(o, "<h2>Experiment</h2><table>");
    if (r->ex) {
        row(o, "config", r->ex->path);
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->ex->seed);
        row(o, "seed", buf);
        const char *enc = r->ex->encoder_ops ? r->ex->encoder_ops->name : "-";
        if (r->m) snprintf(buf, sizeof buf, "%s (%lld parameters in the model)", enc, (long long)ct_params_numel(r->m->store));
        else snprintf(buf, sizeof buf, "%s", enc);
        row(o, "encoder", buf);
        row(o, "architecture", r->ex->arch_ops ? r->ex->arch_ops->name : "-");
    }
    const ct_run_log *l = &r->log;
    int64_t steps = l->n_steps ? l->steps[l->n_steps - 1].step + 1 : 0;
    snprintf(buf, sizeof buf, "%lld steps logged, %lld epochs completed, %lld checkpoints (last %s)", (long long)steps,
             (long long)l->n_epochs, (long long)l->n_checkpoints, l->last_checkpoint[0] ? l->last_checkpoint : "none");
    row(o, "progress", buf);
    snprintf(buf, sizeof buf, "%.1f s (%.1f min): training epochs and evaluations as logged", wall_seconds(l),
             wall_seconds(l) / 60);
    row(o, "wall time", buf);
    cpu_model(cpu, sizeof cpu);
    snprintf(buf, sizeof buf, "%s; %ld cores online; %d threads used", cpu, sysconf(_SC_NPROCESSORS_ONLN),
             r->threads);
    row(o, "machine", buf);
    if (l->bad_lines) {
        snprintf(buf, sizeof buf, "%lld unreadable lines skipped", (long long)l->bad_lines);
        row(o, "metrics.jsonl", buf);
    }
    ct_text_printf(o, "</table>\n");
    if (r->ex) plugins_table(o, r->ex);
    else missing(o, r, "plugin list");
    ct_text_printf(o, "<details><summary>resolved config (config.cfg)</summary><pre>");
    ct_text_html(o, r->config_text ? r->config_text : "(no config.cfg in the run directory)");
    ct_text_printf(o, "</pre></details>\n");
}

/* ---- curves ---------------------------------------------------------------------- */

/* Field f of a step line: 0 loss (the weighted sum), 1 lr, 2 views/s,
 * 3 data stall, 4 + i pipeline i's own loss. */
static double step_field(const ct_log_step *s, int f) {
    return f == 0 ? s->loss : f == 1 ? s->lr : f == 2 ? s->views_per_s : f == 3 ? s->data_stall_ms : s->pipe_loss[f - 4];
}

/* A chart of step fields, one series each (labels[k] for fields[k]), with
 * the run's watch and stop markers. */
static void step_chart(ct_text *o, const report *r, const int *fields, const char *const *labels, int n,
                       const char *title, const char *ylabel) {
    const ct_run_log *l = &r->log;
    size_t len = (size_t)(l->n_steps ? l->n_steps : 1);
    ct_chart c = {title, "step", ylabel, false, 0, {{0}}, r->marks, r->n_marks};
    double *x = malloc(len * sizeof *x), *y[CT_CHART_MAX_SERIES] = {0};
    bool ok = x != NULL;
    for (int k = 0; k < n && k < CT_CHART_MAX_SERIES && ok; k++) ok = (y[k] = malloc(len * sizeof **y)) != NULL;
    if (ok) {
        for (int64_t i = 0; i < l->n_steps; i++) x[i] = (double)l->steps[i].step;
        for (int k = 0; k < n && k < CT_CHART_MAX_SERIES; k++) {
            for (int64_t i = 0; i < l->n_steps; i++) y[k][i] = step_field(&l->steps[i], fields[k]);
            c.s[c.n_series++] = (ct_chart_series){labels[k], x, y[k], l->n_steps, false};
        }
        ct_svg_line_chart(o, &c);
    } else {
        o->oom = true;
    }
    free(x);
    for (int k = 0; k < CT_CHART_MAX_SERIES; k++) free(y[k]);
}

/* The loss: the total and, with several pipelines, each one's own loss
 * (before its weight; the total is their weighted sum). */
static void loss_chart(ct_text *o, const report *r) {
    int fields[1 + CT_LOG_PIPES] = {0}, n = 1;
    char names[CT_LOG_PIPES][200];
    const char *labels[1 + CT_LOG_PIPES] = {r->log.n_pipe_losses > 1 ? "total (weighted sum)" : "loss"};
    for (int i = 0; i < r->log.n_pipe_losses && r->log.n_pipe_losses > 1 && i < CT_LOG_PIPES; i++) {
        const ct_pipeline_spec *p = r->ex && i < r->ex->n_pipelines ? &r->ex->pipelines[i] : NULL;
        if (p) snprintf(names[i], sizeof names[i], "pipeline %d (%s, weight %g)", i, p->data->name, p->weight);
        else snprintf(names[i], sizeof names[i], "pipeline %d", i);
        fields[n] = 4 + i;
        labels[n++] = names[i];
    }
    step_chart(o, r, fields, labels, n, n > 1 ? "training loss per step: total and per pipeline" : "training loss per step",
               "loss");
}

static void one_step_chart(ct_text *o, const report *r, int f, const char *title, const char *ylabel) {
    const char *label[1] = {ylabel};
    step_chart(o, r, &f, label, 1, title, ylabel);
}

static int64_t steps_per_epoch(const ct_run_log *l) {
    return l->n_epochs > 0 && l->epochs[0].steps > 0 ? l->epochs[0].steps : 0;
}

/* Metrics of the evaluations over epochs: one series per name holding `part`. */
static void eval_chart(ct_text *o, const ct_run_log *l, const char *part, const char *title) {
    ct_chart c = {title, "epoch", "percent", false, 0, {{0}}, NULL, 0};
    double *xs[CT_CHART_MAX_SERIES] = {0}, *ys[CT_CHART_MAX_SERIES] = {0};
    char names[CT_CHART_MAX_SERIES][CT_METRIC_NAME_MAX];
    int64_t spe = steps_per_epoch(l);
    for (int64_t e = 0; e < l->n_evals; e++)
        for (int k = 0; k < l->evals[e].m.n; k++) {
            const char *name = l->evals[e].m.name[k];
            if (!strstr(name, part)) continue;
            int s = 0;
            while (s < c.n_series && strcmp(names[s], name) != 0) s++;
            if (s == c.n_series) {
                if (s == CT_CHART_MAX_SERIES) continue;
                snprintf(names[s], sizeof names[s], "%s", name);
                xs[s] = malloc((size_t)l->n_evals * sizeof **xs);
                ys[s] = malloc((size_t)l->n_evals * sizeof **ys);
                if (!xs[s] || !ys[s]) {
                    free(xs[s]), free(ys[s]);
                    o->oom = true;
                    goto done;
                }
                c.s[s] = (ct_chart_series){names[s], xs[s], ys[s], 0, true};
                c.n_series++;
            }
            double x = spe > 0 ? (double)l->evals[e].step / (double)spe : (double)l->evals[e].epoch;
            xs[s][c.s[s].n] = x;
            ys[s][c.s[s].n++] = l->evals[e].m.value[k];
        }
    ct_svg_line_chart(o, &c);
done:
    for (int s = 0; s < CT_CHART_MAX_SERIES; s++) free(xs[s]), free(ys[s]);
}

static void section_curves(ct_text *o, const report *r) {
    const ct_run_log *l = &r->log;
    ct_text_printf(o, "<h2>Curves</h2><div class='charts'>");
    loss_chart(o, r);
    one_step_chart(o, r, 1, "learning rate", "lr");
    one_step_chart(o, r, 2, "throughput", "views/s");
    one_step_chart(o, r, 3, "data stall (time the step waited for its batch)", "ms");
    eval_chart(o, l, "top1", "evaluation top-1 over epochs");
    eval_chart(o, l, "top5", "evaluation top-5 over epochs");
    ct_text_printf(o, "</div>\n<p class='note'>Series longer than %d points are drawn as bucket means (data-bucket on "
                      "each line). %lld step lines, %lld evaluations in metrics.jsonl.%s</p>\n",
                   CT_CHART_MAX_POINTS, (long long)l->n_steps, (long long)l->n_evals,
                   r->n_marks ? " Dashed lines on the step charts: the watch's warnings (orange) and the stop (red); "
                                "hover for the reason, listed under Run safety." : "");
}

/* ---- run safety ------------------------------------------------------------------ */

/* The watch's warnings and the stop as step markers (built once). */
static void build_marks(report *r) {
    const ct_run_log *l = &r->log;
    int64_t n = l->n_watches + (l->stop_reason[0] ? 1 : 0);
    if (n == 0) return;
    r->marks = calloc((size_t)n, sizeof *r->marks);
    r->mark_label = calloc((size_t)n, sizeof *r->mark_label);
    if (!r->marks || !r->mark_label) {
        free(r->marks), free(r->mark_label);
        r->marks = NULL, r->mark_label = NULL;
        return;
    }
    for (int64_t i = 0; i < l->n_watches; i++) {
        const ct_log_watch *w = &l->watches[i];
        snprintf(r->mark_label[i], sizeof r->mark_label[i], "step %lld: %s for %lld steps%s: %s", (long long)w->step,
                 w->kind, (long long)w->steps, w->stopping ? " (stops the run)" : "", w->what);
        r->marks[i] = (ct_chart_mark){(double)w->step, "watch", r->mark_label[i]};
    }
    if (l->stop_reason[0]) {
        snprintf(r->mark_label[n - 1], sizeof r->mark_label[n - 1], "stopped in step %lld (%s): %s",
                 (long long)l->stop_step, l->stop_kind[0] ? l->stop_kind : "stop", l->stop_reason);
        r->marks[n - 1] = (ct_chart_mark){(double)l->stop_step, "stop", r->mark_label[n - 1]};
    }
    r->n_marks = n;
}

static void section_safety(ct_text *o, const report *r) {
    const ct_run_log *l = &r->log;
    ct_text_printf(o, "<h2>Run safety</h2>");
    if (l->stop_reason[0]) {
        ct_text_printf(o, "<p class='bad stop-reason' data-step='%lld'>Training stopped in step %lld (%s): ",
                       (long long)l->stop_step, (long long)l->stop_step, l->stop_kind[0] ? l->stop_kind : "stop");
        ct_text_html(o, l->stop_reason);
        ct_text_printf(o, ". Nothing was saved after it: the newest checkpoint is the last good state.</p>");
    } else {
        ct_text_printf(o, "<p class='ok'>No stop: training was not stopped on a non-finite number, divergence or "
                          "collapse.</p>");
    }
    if (l->n_watches == 0) {
        ct_text_printf(o, "<p class='note'>No warning of the divergence and collapse watch (train.watch_steps, "
                          "train.stop_on_divergence, train.stop_on_collapse).</p>\n");
        return;
    }
    ct_text_printf(o, "<table class='watch' data-n='%lld'><tr><th>step</th><th>kind</th><th>lasted (steps)</th>"
                      "<th>stops the run</th><th>what the watch saw</th></tr>", (long long)l->n_watches);
    for (int64_t i = 0; i < l->n_watches; i++) {
        const ct_log_watch *w = &l->watches[i];
        ct_text_printf(o, "<tr><td class='num'>%lld</td><td class='%s'>", (long long)w->step, w->stopping ? "bad" : "warn");
        ct_text_html(o, w->kind);
        ct_text_printf(o, "</td><td class='num'>%lld</td><td>%s</td><td>", (long long)w->steps, w->stopping ? "yes" : "no");
        ct_text_html(o, w->what);
        ct_text_printf(o, "</td></tr>");
    }
    ct_text_printf(o, "</table><p class='note'>The watch's warnings from metrics.jsonl (\"watch\" lines); 0-based "
                      "steps.</p>\n");
}

/* ---- metrics table --------------------------------------------------------------- */

static bool is_timing(const char *name) {
    const char *dot = strrchr(name, '.');
    return (dot && strcmp(dot, ".seconds") == 0) || strcmp(name, "seconds") == 0;
}

static double metric_of(const ct_metrics *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) return m->value[i];
    return NAN;
}

static void baseline_label(const ct_log_eval *b, char *out, size_t n) {
    const char *ck = b->checkpoint;
    const char *slash = strrchr(ck, '/');
    if (!ck[0]) snprintf(out, n, "%s: %s, random init", b->experiment, b->encoder);
    else snprintf(out, n, "%s: %s, %s", b->experiment, b->encoder, slash ? slash + 1 : ck);
}

static void cell(ct_text *o, double v) {
    if (isfinite(v)) ct_text_printf(o, "<td class='num'>%.2f</td>", v);
    else ct_text_printf(o, "<td class='num'>-</td>");
}

/* The datasets a metric was measured on (its evaluator's), from the
 * experiment; "-" when it is not one of its evaluators' metrics. */
static void data_cell(ct_text *o, const report *r, const char *metric) {
    const ct_evaluator *e = r->ex ? ct_evaluator_of_metric(r->ex, metric) : NULL;
    ct_text_printf(o, "<td>");
    if (e) {
        ct_text_html(o, e->data.train->name);
        ct_text_printf(o, " &rarr; ");
        ct_text_html(o, e->data.test->name);
    } else {
        ct_text_printf(o, "-");
    }
    ct_text_printf(o, "</td>");
}

static void section_metrics(ct_text *o, const report *r) {
    const ct_run_log *l = &r->log;
    ct_text_printf(o, "<h2>Final metrics</h2>");
    if (l->n_evals == 0) {
        ct_text_printf(o, "<p class='note'>No evaluation in metrics.jsonl yet.</p>\n");
        return;
    }
    const ct_log_eval *last = &l->evals[l->n_evals - 1];
    const ct_log_eval *random = NULL;
    for (int64_t b = 0; b < l->n_baselines; b++)
        if (!l->baselines[b].checkpoint[0] && r->ex && strcmp(l->baselines[b].experiment, r->ex->name) == 0)
            random = &l->baselines[b];
    ct_text_printf(o, "<table><tr><th>metric</th><th>data (train &rarr; test)</th><th>this run (step %lld)</th>",
                   (long long)last->step);
    for (int64_t b = 0; b < l->n_baselines; b++) {
        char label[1200];
        baseline_label(&l->baselines[b], label, sizeof label);
        ct_text_printf(o, "<th>");
        ct_text_html(o, label);
        ct_text_printf(o, "</th>");
    }
    if (random) ct_text_printf(o, "<th>this run - random init</th>");
    ct_text_printf(o, "</tr>");
    for (int k = 0; k < last->m.n; k++) {
        const char *name = last->m.name[k];
        if (is_timing(name)) continue;
        ct_text_printf(o, "<tr><th>");
        ct_text_html(o, name);
        ct_text_printf(o, "</th>");
        data_cell(o, r, name);
        cell(o, last->m.value[k]);
        for (int64_t b = 0; b < l->n_baselines; b++) cell(o, metric_of(&l->baselines[b].m, name));
        if (random) cell(o, last->m.value[k] - metric_of(&random->m, name));
        ct_text_printf(o, "</tr>");
    }
    ct_text_printf(o, "</table><p class='note'>Baselines are the lines of evaluations.jsonl (<code>contrast eval CONFIG "
                      "--run-dir RUN</code>: without --checkpoint, the random initialisation).</p>\n");
}

/* ---- preview, map, confusion ---------------------------------------------------- */

static void section_preview(ct_text *o, const report *r) {
    ct_text_printf(o, "<h2>Augmentation preview</h2>");
    if (!r->ex) {
        missing(o, r, "preview");
        return;
    }
    if (r->ex->n_pipelines == 0) {
        ct_text_printf(o, "<p class='note'>The experiment has no pipelines.</p>\n");
        return;
    }
    unsigned char *png = NULL;
    size_t bytes = 0;
    int rows = 0, views = 0;
    ct_error err = CT_ERROR_INIT;
    if (ct_preview_png(r->ex, 0, PREVIEW_ROWS, 0, &png, &bytes, &rows, &views, &err) != CT_OK) {
        ct_text_printf(o, "<p class='note'>No preview: ");
        ct_text_html(o, err.msg);
        ct_text_printf(o, "</p>\n");
        return;
    }
    ct_text_printf(o, "<p class='note'>Pipeline 0, epoch 0: each row an original, then its %d views as training "
                      "makes them (<code>contrast preview</code>).</p><img class='preview' alt='augmentation preview' "
                      "src='data:image/png;base64,", views);
    ct_text_base64(o, png, bytes);
    ct_text_printf(o, "'>\n");
    free(png);
}

static void section_map(ct_text *o, const report *r) {
    ct_text_printf(o, "<h2>Test-set embeddings</h2><div class='charts'>");
    if (!r->m) {
        ct_text_printf(o, "</div>");
        missing(o, r, "embedding map");
        return;
    }
    if (!r->map_x) {
        ct_text_printf(o, "</div><p class='note'>No embedding map: ");
        ct_text_html(o, r->embed_error[0] ? r->embed_error : "the experiment has no evaluation test split");
        ct_text_printf(o, "</p>\n");
        return;
    }
    char title[160];
    snprintf(title, sizeof title, "PCA of %lld test encoder features (%lld-d): %.0f%% of the variance", (long long)r->test.n,
             (long long)r->test.dim, 100 * r->share2);
    ct_svg_scatter(o, title, r->map_x, r->map_y, r->test.labels, r->test.n, r->ex->eval_test->info.num_classes);
    ct_text_printf(o, "</div>\n");
}

/* knn-confusion.txt: rows of counts after a '#' line; *classes of them. */
static int64_t *read_confusion(const char *run_dir, int *classes, char *header, size_t hn) {
    char path[1200];
    snprintf(path, sizeof path, "%s/knn-confusion.txt", run_dir);
    char *text = slurp(path, 1 << 20);
    *classes = 0;
    if (!text) return NULL;
    char *nl = text[0] == '#' ? strchr(text, '\n') : NULL;
    if (nl) snprintf(header, hn, "%.*s", (int)(nl - text - 2 > 0 ? nl - text - 2 : 0), text + 2);
    char *body = text[0] == '#' ? (nl ? nl + 1 : NULL) : text;
    int c = 0;
    for (char *p = body; p && *p; p++) c += *p == '\n';
    int64_t *m = c > 0 && c <= 1000 ? calloc((size_t)c * (size_t)c, sizeof *m) : NULL;
    char *p = body;
    for (int i = 0; m && i < c * c; i++) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0) {
            free(m);
            m = NULL;
            break;
        }
        m[i] = v;
        p = end;
    }
    free(text);
    if (m) *classes = c;
    return m;
}

static void section_confusion(ct_text *o, const report *r) {
    char header[300] = "";
    int c = 0;
    int64_t *m = read_confusion(r->run_dir, &c, header, sizeof header);
    ct_text_printf(o, "<h2>kNN confusion matrix</h2>");
    if (!m) {
        ct_text_printf(o, "<p class='note'>No knn-confusion.txt in the run directory: the knn evaluator writes it "
                          "when the run is evaluated with it.</p>\n");
        return;
    }
    int64_t max = 1;
    for (int i = 0; i < c * c; i++) max = m[i] > max ? m[i] : max;
    ct_text_printf(o, "<p class='note'>");
    ct_text_html(o, header);
    ct_text_printf(o, "</p><table class='conf' data-classes='%d'><tr><th>true \\ predicted</th>", c);
    for (int p = 0; p < c; p++) ct_text_printf(o, "<th>%d</th>", p);
    ct_text_printf(o, "<th>recall</th></tr>");
    for (int t = 0; t < c; t++) {
        int64_t total = 0;
        for (int p = 0; p < c; p++) total += m[t * c + p];
        ct_text_printf(o, "<tr><th>%d</th>", t);
        for (int p = 0; p < c; p++) {
            double a = (double)m[t * c + p] / (double)max;
            ct_text_printf(o, "<td style='background:rgba(%s,%.2f)'>%lld</td>", t == p ? "31,119,180" : "214,39,40",
                           t == p ? a : fmin(1, 3 * a), (long long)m[t * c + p]);
        }
        ct_text_printf(o, "<td class='num'>%.1f%%</td></tr>", total ? 100.0 * (double)m[t * c + t] / (double)total : 0);
    }
    ct_text_printf(o, "</table>\n");
    free(m);
}

static void section_health(ct_text *o, const report *r) {
    ct_health h;
    int64_t batch = r->ex ? ct_settings_int(r->ex->train, "batch_size") : 0;
    ct_health_collect(r->m, &r->log, r->test.n ? &r->test : NULL, r->bank.n ? &r->bank : NULL,
                      r->map_x ? r->participation : -1, batch, &h);
    static const char *const cls[] = {"ok", "warn", "bad", "info"};
    ct_text_printf(o, "<h2>Architecture health</h2><table><tr><th>check</th><th>value</th><th>how it is measured</th></tr>");
    for (int i = 0; i < h.n; i++) {
        ct_text_printf(o, "<tr><th>");
        ct_text_html(o, h.row[i].what);
        ct_text_printf(o, "</th><td class='%s'>", cls[h.row[i].level]);
        ct_text_html(o, h.row[i].value);
        ct_text_printf(o, "</td><td class='note'>");
        ct_text_html(o, h.row[i].how);
        ct_text_printf(o, "</td></tr>");
    }
    ct_text_printf(o, "</table>\n");
    if (!r->m) missing(o, r, "measurements of the model");
}

/* ---- gathering --------------------------------------------------------------------- */

/* Test-set map and, for a memory bank, the sampled training items. */
static void gather_embeddings(report *r) {
    ct_error err = CT_ERROR_INIT;
    ct_model *m = r->m;
    if (!m || !r->ex->eval_test) return;
    int64_t n = 0, *items = ct_spread_items(r->ex->eval_test->info.count, CT_REPORT_MAP_ITEMS, &n);
    ct_status st = items ? ct_embed_items(m, r->ex->eval_test, items, n, &r->test, &err)
                         : ct_error_set(&err, CT_ERR_NOMEM, "out of memory");
    free(items);
    if (st == CT_OK) {
        r->map_x = malloc((size_t)(r->test.n ? r->test.n : 1) * sizeof *r->map_x);
        r->map_y = malloc((size_t)(r->test.n ? r->test.n : 1) * sizeof *r->map_y);
        st = r->map_x && r->map_y ? ct_pca2(r->test.h, r->test.n, r->test.dim, r->map_x, r->map_y, &r->share2,
                                            &r->participation, &err)
                                  : ct_error_set(&err, CT_ERR_NOMEM, "out of memory");
    }
    if (st != CT_OK) {
        snprintf(r->embed_error, sizeof r->embed_error, "%s", err.msg);
        free(r->map_x), free(r->map_y);
        r->map_x = r->map_y = NULL;
        return;
    }
    if (ct_params_find(m->store, "bank.memory") && r->ex->n_pipelines > 0) {
        ct_dataset *d = r->ex->pipelines[0].data;
        items = ct_spread_items(d->info.count, CT_REPORT_BANK_ITEMS, &n);
        if (!items || ct_embed_items(m, d, items, n, &r->bank, &err) != CT_OK) memset(&r->bank, 0, sizeof r->bank);
        free(items);
    }
}

static ct_status write_page(const char *run_dir, const ct_text *o, char *out_path, size_t n, ct_error *err) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof path, "%s/report.html", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return ct_error_set(err, CT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    bool ok = fwrite(o->buf, 1, o->len, f) == o->len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return ct_error_set(err, CT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    if (out_path) snprintf(out_path, n, "%s", path);
    return CT_OK;
}

/* The page of run_dir: m may be NULL (ex and threads still shown when given). */
static ct_status write_report(const char *run_dir, ct_model *m, const ct_experiment *ex, int threads,
                              const char *why_no_model, char *path, size_t n, ct_error *err) {
    report r;
    memset(&r, 0, sizeof r);
    r.run_dir = run_dir;
    r.m = m;
    r.ex = ex;
    r.threads = threads;
    r.why_no_model = why_no_model;
    ct_status st = ct_run_log_read(run_dir, &r.log, err);
    if (st != CT_OK) return st;
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/config.cfg", run_dir);
    r.config_text = slurp(cfg, 1 << 20);
    gather_embeddings(&r);
    build_marks(&r);
    ct_text o = {0};
    page_start(&o, &r);
    section_experiment(&o, &r);
    section_curves(&o, &r);
    section_safety(&o, &r);
    section_metrics(&o, &r);
    section_preview(&o, &r);
    section_map(&o, &r);
    section_confusion(&o, &r);
    section_health(&o, &r);
    ct_text_printf(&o, "</body></html>\n");
    st = o.oom ? ct_error_set(err, CT_ERR_NOMEM, "out of memory writing the report of %s", run_dir)
               : write_page(run_dir, &o, path, n, err);
    ct_text_free(&o);
    ct_embedding_free(&r.test);
    ct_embedding_free(&r.bank);
    free(r.map_x), free(r.map_y);
    free(r.marks), free(r.mark_label);
    free(r.config_text);
    ct_run_log_free(&r.log);
    return st;
}

ct_status ct_report_write(const char *run_dir, ct_model *m, const char *why_no_model, char *path, size_t n,
                          ct_error *err) {
    return write_report(run_dir, m, m ? m->ex : NULL, m ? m->threads : 0, why_no_model, path, n, err);
}

void ct_report_after_training(const char *run_dir, ct_model *m) {
    ct_error err = CT_ERROR_INIT;
    if (ct_report_write(run_dir, m, NULL, NULL, 0, &err) != CT_OK)
        fprintf(stderr, "contrast: warning: no report: %s\n", err.msg);
}

void ct_report_after_stop(const char *run_dir, ct_model *m) {
    ct_error err = CT_ERROR_INIT;
    if (write_report(run_dir, NULL, m ? m->ex : NULL, m ? m->threads : 0,
                     "training stopped on a number (see Run safety), so the stopped model's weights are not measured",
                     NULL, 0, &err) != CT_OK)
        fprintf(stderr, "contrast: warning: no report: %s\n", err.msg);
}

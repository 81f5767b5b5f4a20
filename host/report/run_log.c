/* Reading metrics.jsonl and evaluations.jsonl (see run_log.h). */
#include "report/run_log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- one flat JSON object ------------------------------------------------ */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return p;
}

/* A JSON string at p (after its opening quote) into out (n bytes, cut
 * short when longer); returns the position after the closing quote or
 * NULL when malformed. \uXXXX escapes outside ASCII become '?'. */
static const char *parse_string(const char *p, char *out, size_t n) {
    size_t k = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++, p++) {
                    if (!isxdigit((unsigned char)*p)) return NULL;
                    v = v * 16 + (unsigned)(isdigit((unsigned char)*p) ? *p - '0' : (tolower(*p) - 'a' + 10));
                }
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            case '"': case '\\': case '/': break;
            default: return NULL;
            }
        }
        if (k + 1 < n) out[k++] = c;
    }
    if (*p != '"') return NULL;
    if (n) out[k] = '\0';
    return p + 1;
}

void ct_log_obj_clear(ct_log_obj *o) {
    for (int i = 0; i < o->n; i++) free(o->str[i]);
    memset(o, 0, sizeof *o);
}

/* One "key": value pair at p; the position after it, or NULL. */
static const char *parse_pair(const char *p, ct_log_obj *o) {
    if (*p != '"' || o->n >= CT_LOG_FIELDS) return NULL;
    int i = o->n;
    p = parse_string(p + 1, o->key[i], CT_LOG_KEY_MAX);
    if (!p) return NULL;
    p = skip_ws(p);
    if (*p++ != ':') return NULL;
    p = skip_ws(p);
    o->num[i] = NAN;
    o->str[i] = NULL;
    if (*p == '"') {
        char buf[CT_LOG_STR_MAX];
        p = parse_string(p + 1, buf, sizeof buf);
        if (!p || !(o->str[i] = strdup(buf))) return NULL;
    } else if (strncmp(p, "null", 4) == 0 || strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        /* null (a non-finite value) stays NaN; booleans as 1 / 0 */
        o->num[i] = *p == 'n' ? NAN : *p == 't' ? 1 : 0;
        p += *p == 'f' ? 5 : 4;
    } else {
        char *end;
        o->num[i] = strtod(p, &end); /* also takes the "nan"/"inf" a C printf may write */
        if (end == p) return NULL;
        p = end;
    }
    o->n++;
    return p;
}

ct_status ct_log_obj_parse(const char *line, ct_log_obj *o) {
    memset(o, 0, sizeof *o);
    const char *p = skip_ws(line);
    if (*p++ != '{') return CT_ERR_FORMAT;
    p = skip_ws(p);
    if (*p == '}') return *skip_ws(p + 1) ? CT_ERR_FORMAT : CT_OK;
    for (;;) {
        p = parse_pair(p, o);
        if (!p) return CT_ERR_FORMAT;
        p = skip_ws(p);
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p != '}') return CT_ERR_FORMAT;
        return *skip_ws(p + 1) ? CT_ERR_FORMAT : CT_OK;
    }
}

static int field(const ct_log_obj *o, const char *key) {
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0) return i;
    return -1;
}

double ct_log_obj_num(const ct_log_obj *o, const char *key) {
    int i = field(o, key);
    return i >= 0 ? o->num[i] : NAN;
}

const char *ct_log_obj_str(const ct_log_obj *o, const char *key) {
    int i = field(o, key);
    return i >= 0 ? o->str[i] : NULL;
}

/* ---- the run's files ------------------------------------------------------ */

/* Append one element to a growing array. */
static void *grow(void *arr, int64_t n, size_t elem) {
    if (n & (n - 1)) return arr; /* capacity doubles at powers of two */
    void *p = realloc(arr, (size_t)(n ? 2 * n : 16) * elem);
    if (!p) free(arr);
    return p;
}

static int64_t num_i(const ct_log_obj *o, const char *key) {
    double v = ct_log_obj_num(o, key);
    return isfinite(v) ? (int64_t)v : -1;
}

/* A step line's "loss_pipeline_<i>" fields (several pipelines): NaN where
 * absent; n_pipe_losses grows to the most pipelines seen. */
static void step_pipeline_losses(ct_run_log *l, const ct_log_obj *o, ct_log_step *s) {
    for (int i = 0; i < CT_LOG_PIPES; i++) {
        char key[32];
        snprintf(key, sizeof key, "loss_pipeline_%d", i);
        s->pipe_loss[i] = ct_log_obj_num(o, key);
        bool present = false;
        for (int k = 0; k < o->n && !present; k++) present = strcmp(o->key[k], key) == 0;
        if (present && i + 1 > l->n_pipe_losses) l->n_pipe_losses = i + 1;
    }
}

/* The metrics of an eval line: every numeric field but the bookkeeping. */
static void eval_metrics(const ct_log_obj *o, ct_log_eval *e) {
    static const char *const skip[] = {"epoch", "step", "seconds", NULL};
    memset(e, 0, sizeof *e);
    e->epoch = num_i(o, "epoch");
    e->step = num_i(o, "step");
    e->seconds = ct_log_obj_num(o, "seconds");
    for (int i = 0; i < o->n; i++) {
        bool book = o->str[i] != NULL;
        for (int k = 0; skip[k] && !book; k++) book = strcmp(o->key[i], skip[k]) == 0;
        if (!book) ct_metrics_set(&e->m, o->key[i], o->num[i]);
    }
    const char *s;
    if ((s = ct_log_obj_str(o, "experiment"))) snprintf(e->experiment, sizeof e->experiment, "%s", s);
    if ((s = ct_log_obj_str(o, "encoder"))) snprintf(e->encoder, sizeof e->encoder, "%s", s);
    if ((s = ct_log_obj_str(o, "checkpoint"))) snprintf(e->checkpoint, sizeof e->checkpoint, "%s", s);
}

static ct_status add_metrics_line(ct_run_log *l, const ct_log_obj *o) {
    const char *type = ct_log_obj_str(o, "type");
    if (!type) return CT_ERR_FORMAT;
    if (strcmp(type, "step") == 0) {
        if (!(l->steps = grow(l->steps, l->n_steps, sizeof *l->steps))) return CT_ERR_NOMEM;
        ct_log_step *s = &l->steps[l->n_steps++];
        *s = (ct_log_step){num_i(o, "epoch"), num_i(o, "step"), ct_log_obj_num(o, "loss"), ct_log_obj_num(o, "lr"),
                           ct_log_obj_num(o, "views_per_s"), ct_log_obj_num(o, "data_stall_ms"), {0}};
        step_pipeline_losses(l, o, s);
    } else if (strcmp(type, "epoch") == 0) {
        if (!(l->epochs = grow(l->epochs, l->n_epochs, sizeof *l->epochs))) return CT_ERR_NOMEM;
        l->epochs[l->n_epochs++] = (ct_log_epoch){num_i(o, "epoch"), num_i(o, "steps"), ct_log_obj_num(o, "loss_mean"),
                                                  ct_log_obj_num(o, "seconds"), ct_log_obj_num(o, "views_per_s"),
                                                  ct_log_obj_num(o, "data_stall_ms")};
    } else if (strcmp(type, "eval") == 0) {
        if (!(l->evals = grow(l->evals, l->n_evals, sizeof *l->evals))) return CT_ERR_NOMEM;
        eval_metrics(o, &l->evals[l->n_evals++]);
    } else if (strcmp(type, "checkpoint") == 0) {
        const char *p = ct_log_obj_str(o, "path");
        l->n_checkpoints++;
        snprintf(l->last_checkpoint, sizeof l->last_checkpoint, "%s", p ? p : "");
    } else if (strcmp(type, "watch") == 0) {
        if (!(l->watches = grow(l->watches, l->n_watches, sizeof *l->watches))) return CT_ERR_NOMEM;
        ct_log_watch *w = &l->watches[l->n_watches++];
        const char *kind = ct_log_obj_str(o, "kind"), *what = ct_log_obj_str(o, "what");
        w->step = num_i(o, "step");
        w->steps = num_i(o, "steps");
        w->stopping = ct_log_obj_num(o, "stopping") == 1;
        snprintf(w->kind, sizeof w->kind, "%s", kind ? kind : "?");
        snprintf(w->what, sizeof w->what, "%s", what ? what : "");
    } else if (strcmp(type, "stop") == 0) {
        const char *r = ct_log_obj_str(o, "reason"), *kind = ct_log_obj_str(o, "kind");
        snprintf(l->stop_reason, sizeof l->stop_reason, "%s", r ? r : "stopped");
        snprintf(l->stop_kind, sizeof l->stop_kind, "%s", kind ? kind : "");
        l->stop_step = num_i(o, "step");
    }
    return CT_OK;
}

static ct_status add_baseline_line(ct_run_log *l, const ct_log_obj *o) {
    if (!ct_log_obj_str(o, "type")) return CT_ERR_FORMAT;
    if (!(l->baselines = grow(l->baselines, l->n_baselines, sizeof *l->baselines))) return CT_ERR_NOMEM;
    eval_metrics(o, &l->baselines[l->n_baselines++]);
    return CT_OK;
}

/* Every line of path through add(); a missing optional file is fine. */
static ct_status read_lines(const char *path, bool required, ct_run_log *l,
                            ct_status (*add)(ct_run_log *, const ct_log_obj *), ct_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT) return CT_OK;
        return ct_error_set(err, CT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ct_status st = CT_OK;
    while (st == CT_OK && getline(&line, &cap, f) >= 0) {
        if (!*skip_ws(line)) continue;
        ct_log_obj o;
        ct_status ps = ct_log_obj_parse(line, &o);
        if (ps == CT_OK) ps = add(l, &o);
        if (ps == CT_ERR_NOMEM) st = ct_error_set(err, CT_ERR_NOMEM, "out of memory reading %s", path);
        else if (ps != CT_OK) l->bad_lines++;
        ct_log_obj_clear(&o);
    }
    free(line);
    fclose(f);
    return st;
}

ct_status ct_run_log_read(const char *run_dir, ct_run_log *l, ct_error *err) {
    memset(l, 0, sizeof *l);
    l->stop_step = -1;
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    ct_status st = read_lines(path, true, l, add_metrics_line, err);
    snprintf(path, sizeof path, "%s/evaluations.jsonl", run_dir);
    if (st == CT_OK) st = read_lines(path, false, l, add_baseline_line, err);
    if (st != CT_OK) ct_run_log_free(l);
    return st;
}

void ct_run_log_free(ct_run_log *l) {
    free(l->steps);
    free(l->epochs);
    free(l->evals);
    free(l->baselines);
    free(l->watches);
    memset(l, 0, sizeof *l);
}

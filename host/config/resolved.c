/* The resolved config: the experiment written back as libconfig text with
 * every default filled in (the run directory's config.cfg, also stored in
 * each checkpoint). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/experiment.h"

typedef struct text {
    char *buf;
    size_t len, cap;
    bool oom;
} text;

static void emit(text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void emit(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (w < 0 || t->oom) {
        va_end(ap2);
        return;
    }
    if (t->len + (size_t)w + 1 > t->cap) {
        size_t cap = (t->cap + (size_t)w + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->oom = true;
            va_end(ap2);
            return;
        }
        t->buf = b, t->cap = cap;
    }
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap2);
    va_end(ap2);
    t->len += (size_t)w;
}

/* Settings as indented "key = value;" lines. */
static void emit_settings(text *t, const ct_settings *s, int indent) {
    size_t need = ct_settings_format(s, NULL, 0) + 1;
    char *buf = calloc(1, need);
    if (!buf) {
        t->oom = true;
        return;
    }
    ct_settings_format(s, buf, need);
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        emit(t, "%*s%.*s\n", indent, "", (int)(nl - line), line);
    }
    free(buf);
}

static void emit_plugin_group(text *t, const char *type, const ct_settings *s, int indent) {
    emit(t, "{\n%*stype = \"%s\";\n", indent + 2, "", type);
    emit_settings(t, s, indent + 2);
    emit(t, "%*s}", indent, "");
}

static void emit_named_chain(text *t, const char *key, const ct_chain *c, int indent) {
    emit(t, "%*s%s = (", indent, "", key);
    for (int k = 0; k < c->n; k++) {
        emit(t, "%s\n%*s", k ? "," : "", indent + 2, "");
        emit_plugin_group(t, c->t[k].ops->name, c->t[k].settings, indent + 2);
    }
    emit(t, "%s);\n", c->n ? "\n" : "");
}

static void emit_chain(text *t, const ct_chain *c, int indent) { emit_named_chain(t, "transforms", c, indent); }

static void emit_pipelines(text *t, const ct_experiment *ex) {
    emit(t, "pipelines = (");
    for (int k = 0; k < ex->n_pipelines; k++) {
        const ct_pipeline_spec *p = &ex->pipelines[k];
        emit(t, "%s\n  {\n    data = \"%s\";\n    weight = %.9g;\n", k ? "," : "", p->data->name,
             (double)p->weight);
        /* Only when given, so the resolved config of a run from before
         * per-pipeline batches is unchanged (its --resume still matches). */
        if (p->own_batch) emit(t, "    batch_size = %lld;\n", (long long)p->batch_size);
        if (p->n_groups == 1) {
            emit(t, "    views = %d;\n", p->groups[0].count);
            emit_chain(t, &p->groups[0].chain, 4);
        } else {
            emit(t, "    views = (");
            for (int j = 0; j < p->n_groups; j++) {
                emit(t, "%s\n      {\n        count = %d;\n", j ? "," : "", p->groups[j].count);
                emit_chain(t, &p->groups[j].chain, 8);
                emit(t, "      }");
            }
            emit(t, "\n    );\n");
        }
        if (p->structure.ops) {
            emit(t, "    structure = ");
            emit_plugin_group(t, p->structure.ops->name, p->structure.settings, 4);
            emit(t, ";\n");
        }
        emit(t, "  }");
    }
    emit(t, "%s);\n", ex->n_pipelines ? "\n" : "");
}

static void emit_evaluation(text *t, const ct_experiment *ex) {
    if (!ex->eval_train) return;
    emit(t, "evaluation = {\n  train = \"%s\";\n  test = \"%s\";\n  every = %d;\n",
         ex->eval_train->name, ex->eval_test->name, ex->eval_every);
    emit_chain(t, &ex->eval_chain, 2);
    emit(t, "  evaluators = (");
    for (int k = 0; k < ex->n_evaluators; k++) {
        const ct_evaluator *ev = &ex->evaluators[k];
        emit(t, "%s\n    {\n      type = \"%s\";\n", k ? "," : "", ev->ops->name);
        emit_settings(t, ev->settings, 6);
        if (ev->has_chain) emit_chain(t, &ev->chain, 6);
        /* An evaluator's own data, only when given (as batch_size above). */
        if (ev->data.train != ex->eval_train) emit(t, "      train = \"%s\";\n", ev->data.train->name);
        if (ev->data.test != ex->eval_test) emit(t, "      test = \"%s\";\n", ev->data.test->name);
        if (ev->own_clips) emit(t, "      clips = %d;\n", ev->data.clips);
        if (ev->has_feature_chain) emit_named_chain(t, "feature_transforms", &ev->feature_chain, 6);
        emit(t, "    }");
    }
    emit(t, "%s);\n};\n", ex->n_evaluators ? "\n  " : "");
}

static void emit_all(text *t, const ct_experiment *ex) {
    emit(t, "# resolved by contrast %s from %s: every default filled in\n", ct_version_string(),
         ex->path);
    emit(t, "name = \"%s\";\nseed = %llu;\n", ex->name, (unsigned long long)ex->seed);
    if (ex->plugins && ex->plugins->n_dirs) {
        emit(t, "plugins = {\n  path = [");
        for (int k = 0; k < ex->plugins->n_dirs; k++)
            emit(t, "%s\"%s\"", k ? ", " : "", ex->plugins->dirs[k]);
        emit(t, "];\n};\n");
    }
    emit(t, "data = {\n");
    for (int k = 0; k < ex->n_data; k++) {
        emit(t, "  %s = ", ex->data[k].name);
        emit_plugin_group(t, ex->data[k].ops->name, ex->data[k].settings, 2);
        emit(t, ";\n");
    }
    emit(t, "};\n");
    if (ex->encoder_ops) {
        emit(t, "encoder = ");
        emit_plugin_group(t, ex->encoder_ops->name, ex->encoder_settings, 0);
        emit(t, ";\n");
    }
    if (ex->n_pipelines) emit_pipelines(t, ex);
    if (ex->arch_ops) {
        emit(t, "architecture = ");
        emit_plugin_group(t, ex->arch_ops->name, ex->arch_settings, 0);
        emit(t, ";\n");
    }
    const char *names[] = {"optimizer", "schedule", "train"};
    const ct_settings *groups[] = {ex->optimizer, ex->schedule, ex->train};
    for (int k = 0; k < 3; k++) {
        if (!groups[k]) continue;
        emit(t, "%s = {\n", names[k]);
        emit_settings(t, groups[k], 2);
        emit(t, "};\n");
    }
    emit_evaluation(t, ex);
}

ct_status ct_experiment_write_resolved(const ct_experiment *ex, const char *file, ct_error *err) {
    text t = {0};
    emit_all(&t, ex);
    if (t.oom) {
        free(t.buf);
        return ct_error_set(err, CT_ERR_NOMEM, "out of memory writing %s", file);
    }
    FILE *f = fopen(file, "w");
    if (!f) {
        free(t.buf);
        return ct_error_set(err, CT_ERR_IO, "cannot write %s: %s", file, strerror(errno));
    }
    size_t w = fwrite(t.buf, 1, t.len, f);
    int rc = fclose(f);
    free(t.buf);
    if (w != t.len || rc != 0)
        return ct_error_set(err, CT_ERR_IO, "writing %s: %s", file, strerror(errno));
    return CT_OK;
}

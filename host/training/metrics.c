/* The metrics.jsonl lines (see metrics.h). */
#include "training/metrics.h"

#include <math.h>
#include <string.h>

void ct_metrics_write_line(FILE *f, const char *json) {
    if (!f) return;
    fputs(json, f);
    fputc('\n', f);
    fflush(f);
}

void ct_metrics_json(const ct_metrics *m, char *buf, size_t n) {
    size_t used = 0;
    if (n) buf[0] = '\0';
    for (int i = 0; i < m->n && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s\"%s\": %.4f", i ? ", " : "", m->name[i], m->value[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
}

void ct_metrics_json_string(const char *s, char *buf, size_t n) {
    if (n < 3) {
        if (n) buf[0] = '\0';
        return;
    }
    size_t k = 0;
    buf[k++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        int w = *p == '"' || *p == '\\' ? snprintf(esc, sizeof esc, "\\%c", *p)
                : *p < 0x20              ? snprintf(esc, sizeof esc, "\\u%04x", *p)
                                         : snprintf(esc, sizeof esc, "%c", *p);
        if (k + (size_t)w + 2 > n) break;
        memcpy(buf + k, esc, (size_t)w);
        k += (size_t)w;
    }
    buf[k++] = '"';
    buf[k] = '\0';
}

void ct_metrics_log_step(FILE *f, int64_t epoch, int64_t step, double loss, float lr, double views_per_s,
                         double data_stall_ms, const double *pipe_loss, int n_pipes) {
    char line[1024];
    int k = snprintf(line, sizeof line,
                     "{\"type\": \"step\", \"epoch\": %lld, \"step\": %lld, \"loss\": %.9g, \"lr\": %.6g, "
                     "\"views_per_s\": %.1f, \"data_stall_ms\": %.3f",
                     (long long)epoch, (long long)step, loss, lr, views_per_s, data_stall_ms);
    /* 8 pipelines at most (CT_MAX_PIPELINES), ~40 bytes each: always fits. */
    for (int i = 0; n_pipes > 1 && i < n_pipes && k > 0 && (size_t)k < sizeof line - 64; i++)
        k += isfinite(pipe_loss[i]) ? snprintf(line + k, sizeof line - (size_t)k, ", \"loss_pipeline_%d\": %.9g", i,
                                               pipe_loss[i])
                                    : snprintf(line + k, sizeof line - (size_t)k, ", \"loss_pipeline_%d\": null", i);
    snprintf(line + k, sizeof line - (size_t)k, "}");
    ct_metrics_write_line(f, line);
}

void ct_metrics_log_epoch(FILE *f, int64_t epoch, int64_t steps, double loss_sum, double seconds,
                          int64_t views, double stall_s) {
    char line[512];
    snprintf(line, sizeof line,
             "{\"type\": \"epoch\", \"epoch\": %lld, \"steps\": %lld, \"loss_mean\": %.6f, \"seconds\": %.2f, "
             "\"views_per_s\": %.1f, \"data_stall_ms\": %.1f}",
             (long long)epoch, (long long)steps, steps ? loss_sum / (double)steps : 0.0, seconds,
             seconds > 0 ? (double)views / seconds : 0.0, stall_s * 1e3);
    ct_metrics_write_line(f, line);
}

void ct_metrics_log_eval(FILE *f, int64_t epoch, int64_t step, double seconds, const ct_metrics *m) {
    char body[2048], line[2300];
    ct_metrics_json(m, body, sizeof body);
    snprintf(line, sizeof line, "{\"type\": \"eval\", \"epoch\": %lld, \"step\": %lld, \"seconds\": %.1f, %s}",
             (long long)epoch, (long long)step, seconds, body);
    ct_metrics_write_line(f, line);
}

/* s as the inside of a JSON string (quotes, backslashes and control
 * characters escaped), cut to fit n. */
static void json_text(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; s && *s && k + 7 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out[k++] = '\\', out[k++] = (char)c;
        else if (c < 0x20)
            k += (size_t)snprintf(out + k, n - k, "\\u%04x", c);
        else
            out[k++] = (char)c;
    }
    out[k] = '\0';
}

void ct_metrics_log_checkpoint(FILE *f, int64_t step, const char *path) {
    char line[2600], p[2200];
    json_text(path, p, sizeof p);
    snprintf(line, sizeof line, "{\"type\": \"checkpoint\", \"step\": %lld, \"path\": \"%s\"}", (long long)step, p);
    ct_metrics_write_line(f, line);
}

void ct_metrics_log_watch(FILE *f, int64_t step, const char *kind, int64_t streak, bool stopping, const char *what) {
    char line[1400], w[1100];
    json_text(what, w, sizeof w);
    snprintf(line, sizeof line,
             "{\"type\": \"watch\", \"step\": %lld, \"kind\": \"%s\", \"steps\": %lld, \"stopping\": %s, "
             "\"what\": \"%s\"}",
             (long long)step, kind, (long long)streak, stopping ? "true" : "false", w);
    ct_metrics_write_line(f, line);
}

void ct_metrics_log_stop(FILE *f, int64_t step, const char *kind, const char *reason) {
    char line[2400], r[2200];
    json_text(reason, r, sizeof r);
    snprintf(line, sizeof line, "{\"type\": \"stop\", \"step\": %lld, \"kind\": \"%s\", \"reason\": \"%s\"}",
             (long long)step, kind, r);
    ct_metrics_write_line(f, line);
}

void ct_metrics_log_config_change(FILE *f, int64_t step, const char *checkpoint, const char *old_sha256,
                                  const char *new_sha256) {
    char line[2800], p[2200];
    json_text(checkpoint, p, sizeof p);
    snprintf(line, sizeof line,
             "{\"type\": \"config_change\", \"step\": %lld, \"checkpoint\": \"%s\", \"old_config_sha256\": "
             "\"%.64s\", \"new_config_sha256\": \"%.64s\"}",
             (long long)step, p, old_sha256, new_sha256);
    ct_metrics_write_line(f, line);
}

void ct_metrics_log_note(FILE *f, int64_t step, const char *message) {
    char line[1400], m[1100];
    json_text(message, m, sizeof m);
    snprintf(line, sizeof line, "{\"type\": \"note\", \"step\": %lld, \"message\": \"%s\"}", (long long)step, m);
    ct_metrics_write_line(f, line);
}

void ct_metrics_log_value(FILE *f, int64_t step, const char *owner, const char *name, double value) {
    char line[512], v[32];
    if (isfinite(value))
        snprintf(v, sizeof v, "%.9g", value);
    else
        snprintf(v, sizeof v, "null");
    /* Names are plugin-chosen: keep them to a JSON-safe alphabet. */
    char safe[160];
    snprintf(safe, sizeof safe, "%s.%s", owner, name);
    for (char *c = safe; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '_';
    snprintf(line, sizeof line, "{\"type\": \"metric\", \"step\": %lld, \"name\": \"%s\", \"value\": %s}",
             (long long)step, safe, v);
    ct_metrics_write_line(f, line);
}

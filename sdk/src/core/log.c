/* Logging through the host services table, and the metrics set. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/plugin.h"

static const char *level_name(ct_log_level level) {
    switch (level) {
    case CT_LOG_DEBUG: return "debug";
    case CT_LOG_INFO: return "info";
    case CT_LOG_WARN: return "warning";
    case CT_LOG_ERROR: return "error";
    }
    return "log";
}

/* CONTRAST_DEBUG, read once per process (the first fallback log call), not
 * per message. */
static pthread_once_t ct__log_once = PTHREAD_ONCE_INIT;
static bool ct__log_debug;

static void ct__log_read_env(void) { ct__log_debug = getenv("CONTRAST_DEBUG") != NULL; }

void ct_log(const ct_host *h, ct_log_level level, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The table may come from an older host: check the field is there. */
    if (h && h->size >= offsetof(ct_host, log) + sizeof h->log && h->log) {
        h->log(h, level, "%s", msg);
        return;
    }
    if (level == CT_LOG_DEBUG) {
        pthread_once(&ct__log_once, ct__log_read_env);
        if (!ct__log_debug) return;
    }
    fprintf(stderr, "contrast: %s: %s\n", level_name(level), msg);
}

ct_status ct_metrics_set(ct_metrics *m, const char *name, double value) {
    if (!m || !name || !*name || strlen(name) >= CT_METRIC_NAME_MAX) return CT_ERR_INVALID;
    for (int i = 0; i < m->n; i++) {
        if (strcmp(m->name[i], name) == 0) {
            m->value[i] = value;
            return CT_OK;
        }
    }
    if (m->n >= CT_METRICS_MAX) return CT_ERR_INVALID;
    snprintf(m->name[m->n], CT_METRIC_NAME_MAX, "%s", name);
    m->value[m->n++] = value;
    return CT_OK;
}

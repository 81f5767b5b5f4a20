/* The services table (ct_host) the host hands to plugins. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/loader.h"

const char *ct_host_owner(const ct_host *h) {
    const ct_plugin_record *rec = h ? h->host_ctx : NULL;
    return (rec && rec->name[0]) ? rec->name : "host";
}

/* CONTRAST_DEBUG, read once per process rather than per debug line. */
static pthread_once_t debug_once = PTHREAD_ONCE_INIT;
static bool debug_on;
static void read_debug_env(void) { debug_on = getenv("CONTRAST_DEBUG") != NULL; }

static void host_log(const ct_host *h, ct_log_level level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (level == CT_LOG_DEBUG) {
        pthread_once(&debug_once, read_debug_env);
        if (!debug_on) return;
    }
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *lv = (unsigned)level <= CT_LOG_ERROR ? names[level] : "log";
    /* One fprintf per line so lines from threads do not interleave. */
    fprintf(stderr, "contrast: %s: %s: %s\n", ct_host_owner(h), lv, msg);
}

/* Where plugins' metrics go (the trainer's metrics.jsonl while it runs). */
static pthread_mutex_t metric_mu = PTHREAD_MUTEX_INITIALIZER;
static ct_metric_sink metric_sink;
static void *metric_ctx;

void ct_host_set_metric_sink(ct_metric_sink sink, void *ctx) {
    pthread_mutex_lock(&metric_mu);
    metric_sink = sink;
    metric_ctx = ctx;
    pthread_mutex_unlock(&metric_mu);
}

static void host_metric(const ct_host *h, const char *name, double value) {
    pthread_mutex_lock(&metric_mu);
    if (metric_sink && name) metric_sink(metric_ctx, ct_host_owner(h), name, value);
    pthread_mutex_unlock(&metric_mu);
}

void ct_host_defaults(ct_host *h) {
    memset(h, 0, sizeof *h);
    h->size = sizeof *h;
    h->abi_major = CT_ABI_MAJOR;
    h->abi_minor = CT_ABI_MINOR;
    h->log = host_log;
    h->alloc = malloc;
    h->calloc = calloc;
    h->realloc = realloc;
    h->free = free;
    h->settings_int = ct_settings_int;
    h->settings_float = ct_settings_float;
    h->settings_bool = ct_settings_bool;
    h->settings_string = ct_settings_string;
    h->seed = 0;
    h->rng_init = ct_rng_init;
    h->pool = NULL;
    h->threads = 1;
    h->metric = host_metric;
}

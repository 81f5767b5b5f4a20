/* Status codes, error messages and the invariant check. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/status.h"
#include "contrast/version.h"

const char *ct_status_str(ct_status s) {
    switch (s) {
#define CT__STATUS_STR(name, value, desc) \
    case CT_##name:                       \
        return desc;
        CT_STATUS_MAP(CT__STATUS_STR)
#undef CT__STATUS_STR
    }
    return "unknown status";
}

const char *ct_status_name(ct_status s) {
    switch (s) {
#define CT__STATUS_NAME(name, value, desc) \
    case CT_##name:                        \
        return #name;
        CT_STATUS_MAP(CT__STATUS_NAME)
#undef CT__STATUS_NAME
    }
    return "UNKNOWN";
}

ct_status ct_error_set(ct_error *err, ct_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void ct_error_prefix(ct_error *err, const char *fmt, ...) {
    if (!err) return;
    char head[CT_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    /* Keep as much of the original message as fits after the prefix. */
    char tail[CT_ERROR_MSG_MAX];
    memcpy(tail, err->msg, sizeof tail);
    size_t hl = strlen(head);
    if (hl >= sizeof err->msg) hl = sizeof err->msg - 1;
    memcpy(err->msg, head, hl);
    size_t room = sizeof err->msg - 1 - hl;
    size_t tl = strnlen(tail, sizeof tail);
    if (tl > room) tl = room;
    memcpy(err->msg + hl, tail, tl);
    err->msg[hl + tl] = '\0';
}

void ct_error_clear(ct_error *err) {
    if (!err) return;
    err->code = CT_OK;
    err->msg[0] = '\0';
}

void ct__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "contrast: internal error: %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

unsigned ct_version(void) { return ((unsigned)CT_ABI_MAJOR << 16) | (unsigned)CT_ABI_MINOR; }

const char *ct_version_string(void) { return CT_VERSION_STRING; }

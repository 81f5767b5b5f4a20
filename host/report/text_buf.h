/* A growing text buffer for the report's HTML and SVG: printf-style
 * appends, HTML escaping, base64. An allocation failure sets `oom` and
 * later appends do nothing, so callers check once at the end. */
#ifndef CONTRAST_HOST_REPORT_TEXT_BUF_H
#define CONTRAST_HOST_REPORT_TEXT_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ct_text {
    char *buf; /* NUL-terminated once anything was appended */
    size_t len, cap;
    bool oom;
} ct_text;

void ct_text_printf(ct_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Append bytes as they are. */
void ct_text_put(ct_text *t, const char *s, size_t n);
/* Append s with &, <, >, " and ' escaped for HTML text and attributes. */
void ct_text_html(ct_text *t, const char *s);
/* Append the base64 encoding (RFC 4648, padded) of n bytes. */
void ct_text_base64(ct_text *t, const void *data, size_t n);
void ct_text_free(ct_text *t);

#endif

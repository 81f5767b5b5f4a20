/* contrast SDK — status codes and error messages.
 *
 * Every fallible SDK or plugin function returns a ct_status and, where it
 * has one, fills a ct_error with a human-readable message. Codes are only
 * ever appended to CT_STATUS_MAP, never renumbered or removed. */
#ifndef CONTRAST_STATUS_H
#define CONTRAST_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) — append only. */
#define CT_STATUS_MAP(X)                                             \
    X(OK, 0, "success")                                              \
    X(ERR_INVALID, 1, "invalid argument")                            \
    X(ERR_NOMEM, 2, "out of memory")                                 \
    X(ERR_IO, 3, "input/output error")                               \
    X(ERR_FORMAT, 4, "malformed or corrupted data")                  \
    X(ERR_CONFIG, 5, "configuration error")                          \
    X(ERR_PLUGIN, 6, "plugin error")                                 \
    X(ERR_ABI, 7, "incompatible ABI")                                \
    X(ERR_SHAPE, 8, "tensor shape mismatch")                         \
    X(ERR_NOT_FOUND, 9, "not found")                                 \
    X(ERR_UNSUPPORTED, 10, "unsupported operation")                  \
    X(ERR_NUMERIC, 11, "numerical failure (NaN or Inf)")             \
    X(ERR_INTERRUPTED, 12, "interrupted")                            \
    X(ERR_EXISTS, 13, "already exists")                              \
    X(ERR_UNSAFE, 14, "refused for safety")

typedef enum ct_status {
#define CT__STATUS_ENUM(name, value, desc) CT_##name = value,
    CT_STATUS_MAP(CT__STATUS_ENUM)
#undef CT__STATUS_ENUM
} ct_status;

/* Short description of a status code ("out of memory"). Static string;
 * unknown codes give "unknown status". */
const char *ct_status_str(ct_status s);

/* Symbolic name of a status code ("ERR_NOMEM"). Static string. */
const char *ct_status_name(ct_status s);

#define CT_ERROR_MSG_MAX 512

/* An error out-parameter: the code and a message saying what went wrong,
 * written by the innermost function that knew. Callers add context with
 * ct_error_prefix(). Zero-initialise before use (CT_ERROR_INIT). */
typedef struct ct_error {
    ct_status code;
    char msg[CT_ERROR_MSG_MAX];
} ct_error;

#define CT_ERROR_INIT {CT_OK, {0}}

/* Set err (may be NULL) to code and a printf-style message; returns code so
 * that `return ct_error_set(err, CT_ERR_IO, "...");` reads naturally. */
ct_status ct_error_set(ct_error *err, ct_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepend context ("plugin idx (x.so): ") to an existing message. */
void ct_error_prefix(ct_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Reset err to CT_OK with an empty message. */
void ct_error_clear(ct_error *err);

/* Abort with file:line for a broken internal invariant. Never for bad input,
 * bad configuration, I/O errors or out-of-memory: those return a status. */
#define CT_ASSERT(cond)                                                  \
    do {                                                                 \
        if (!(cond)) ct__assert_fail(#cond, __FILE__, __LINE__);         \
    } while (0)
void ct__assert_fail(const char *expr, const char *file, int line)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif

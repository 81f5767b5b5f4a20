/* contrast SDK — parameter schemas and validated settings.
 *
 * Each role implementation declares its parameters as an array of
 * ct_param_spec ended by CT_PARAM_END. The host validates the config group
 * that selects the implementation against it (unknown keys with a "did you
 * mean", wrong types, out-of-range values, bad choices: errors with
 * file:line) and hands the plugin a ct_settings holding every parameter,
 * defaults filled in. Asking a ct_settings for a name the schema does not
 * declare is a plugin bug and aborts with the name. */
#ifndef CONTRAST_SETTINGS_H
#define CONTRAST_SETTINGS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ct_ptype {
    CT_PT_INT = 1,
    CT_PT_FLOAT,
    CT_PT_BOOL,
    CT_PT_STRING,
    CT_PT_INT_LIST,
    CT_PT_FLOAT_LIST,
    CT_PT_STRING_LIST,
} ct_ptype;

/* One parameter. `def` is the default written as a libconfig value
 * ("0.5", "[1, 1, 1]", "\"small\"", "true"); NULL means required.
 * `min`/`max` bound numbers and list elements (-INFINITY/INFINITY: none).
 * `choices` restricts strings: "small|imagenet" (NULL: any). */
typedef struct ct_param_spec {
    const char *name;
    ct_ptype type;
    const char *def;
    double min, max;
    const char *choices;
    const char *doc;
} ct_param_spec;

#define CT_PARAM_INT(n, d, lo, hi, doc) {n, CT_PT_INT, d, lo, hi, NULL, doc}
#define CT_PARAM_FLOAT(n, d, lo, hi, doc) {n, CT_PT_FLOAT, d, lo, hi, NULL, doc}
#define CT_PARAM_BOOL(n, d, doc) {n, CT_PT_BOOL, d, 0, 1, NULL, doc}
#define CT_PARAM_STRING(n, d, doc) {n, CT_PT_STRING, d, -INFINITY, INFINITY, NULL, doc}
#define CT_PARAM_CHOICE(n, d, choices, doc) {n, CT_PT_STRING, d, -INFINITY, INFINITY, choices, doc}
#define CT_PARAM_INTS(n, d, lo, hi, doc) {n, CT_PT_INT_LIST, d, lo, hi, NULL, doc}
#define CT_PARAM_FLOATS(n, d, lo, hi, doc) {n, CT_PT_FLOAT_LIST, d, lo, hi, NULL, doc}
#define CT_PARAM_STRINGS(n, d, doc) {n, CT_PT_STRING_LIST, d, -INFINITY, INFINITY, NULL, doc}
#define CT_PARAM_END {NULL, 0, NULL, 0, 0, NULL, NULL}

/* Name of a type ("int", "float list"). Static. */
const char *ct_ptype_name(ct_ptype t);

typedef struct ct_settings ct_settings;

/* Validate the libconfig group `group` (a config_setting_t*, may be NULL for
 * "all defaults") against `spec`. Keys listed in `ignore` (NULL-terminated,
 * e.g. {"type", NULL}) are skipped. `owner` names the plugin for messages.
 * On error returns CT_ERR_CONFIG with "file:line: owner: ..." in err. The
 * result is freed with ct_settings_free(). */
struct config_setting_t;
ct_status ct_settings_from_config(const ct_param_spec *spec, const struct config_setting_t *group,
                                  const char *const *ignore, const char *owner,
                                  ct_settings **out, ct_error *err);

/* Same from libconfig text ("temperature = 0.2; blocks = [1, 1];"), for
 * tests, benchmarks and embedding programs. */
ct_status ct_settings_parse(const ct_param_spec *spec, const char *text, const char *owner,
                            ct_settings **out, ct_error *err);

void ct_settings_free(ct_settings *s);

/* CT_OK, or the first accessor misuse since the settings were made
 * (CT_ERR_INVALID; err's message names the owner given at validation and
 * the key). The host checks this after each plugin call that received the
 * settings and reports it like the plugin's own errors. ABI 1.2. */
ct_status ct_settings_status(const ct_settings *s, ct_error *err);

/* The schema these settings were validated against. */
const ct_param_spec *ct_settings_spec(const ct_settings *s);

/* Typed accessors (the name must be declared with that type). Asking for a
 * name the schema lacks, with the wrong type, or past a list's end is a bug
 * in the caller: the accessor returns 0 / false / "" / an empty list and
 * the first such misuse is kept for ct_settings_status (since ABI 1.2;
 * earlier SDKs aborted). */
int64_t ct_settings_int(const ct_settings *s, const char *name);
double ct_settings_float(const ct_settings *s, const char *name);
bool ct_settings_bool(const ct_settings *s, const char *name);
const char *ct_settings_string(const ct_settings *s, const char *name); /* owned by s */
size_t ct_settings_len(const ct_settings *s, const char *name);        /* list length */
int64_t ct_settings_int_at(const ct_settings *s, const char *name, size_t i);
double ct_settings_float_at(const ct_settings *s, const char *name, size_t i);
const char *ct_settings_string_at(const ct_settings *s, const char *name, size_t i);

/* Where the value came from: "exp.cfg:12", "--set", or "default". Static or
 * owned by s. Use it in error messages about a value. */
const char *ct_settings_origin(const ct_settings *s, const char *name);

/* Append "name = value;" lines for every parameter to buf (resolved config). */
size_t ct_settings_format(const ct_settings *s, char *buf, size_t n);

/* Levenshtein distance, for "did you mean" suggestions. */
int ct_edit_distance(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif

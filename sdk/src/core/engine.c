/* Engine options (engine.h): defaults and the one-time environment read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/engine.h"

void ct_engine_opts_init(ct_engine_opts *o) {
    memset(o, 0, sizeof *o);
    o->conv_algo = CT_CONV_ALGO_AUTO;
    o->wino_du_transposed = -1;
}

/* The value of an environment variable, NULL when unset or empty. */
static const char *env_value(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static ct_status bad_value(ct_error *err, const char *name, const char *value, const char *expected) {
    return ct_error_set(err, CT_ERR_CONFIG, "environment variable %s='%s': expected %s", name, value, expected);
}

ct_status ct_engine_opts_from_env(ct_engine_opts *o, ct_error *err) {
    const char *v;
    if ((v = env_value("CT_CONV_ALGO"))) {
        if (strcmp(v, "auto") == 0) o->conv_algo = CT_CONV_ALGO_AUTO;
        else if (strcmp(v, "im2col") == 0) o->conv_algo = CT_CONV_ALGO_IM2COL;
        else if (strcmp(v, "winograd") == 0) o->conv_algo = CT_CONV_ALGO_WINOGRAD;
        else return bad_value(err, "CT_CONV_ALGO", v, "auto, im2col or winograd");
    }
    if ((v = env_value("CT_WINO_TILE"))) {
        if (strcmp(v, "2") == 0 || strcmp(v, "4") == 0) o->wino_tile = v[0] - '0';
        else if (strcmp(v, "0") == 0 || strcmp(v, "auto") == 0) o->wino_tile = 0;
        else return bad_value(err, "CT_WINO_TILE", v, "2, 4 or auto");
    }
    if ((v = env_value("CT_WINO_CHUNK_FLOATS"))) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || *end || n < 0) return bad_value(err, "CT_WINO_CHUNK_FLOATS", v, "a count of floats (0: automatic)");
        o->wino_chunk_floats = n;
    }
    if ((v = env_value("CT_WINO_DU_T"))) {
        if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0) o->wino_du_transposed = v[0] - '0';
        else if (strcmp(v, "auto") == 0) o->wino_du_transposed = -1;
        else return bad_value(err, "CT_WINO_DU_T", v, "0, 1 or auto");
    }
    return CT_OK;
}

/* The options keep their size within ABI major 1 (fields take the reserved
 * tail); on LP64 that size is 64 bytes. */
_Static_assert(sizeof(void *) != 8 || sizeof(ct_engine_opts) == 64, "ct_engine_opts must stay 64 bytes");

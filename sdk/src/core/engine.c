/* Engine options (engine.h): defaults and the one-time environment read. */
#include <errno.h>
#include <stdio.h>
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

/* "generic, avx2" into buf: the levels ct_simd_available says yes to. */
static const char *available_levels(char *buf, size_t n) {
    buf[0] = '\0';
    size_t len = 0;
    for (int l = CT_SIMD_GENERIC; l <= CT_SIMD_AVX512; l++)
        if (ct_simd_available((ct_simd_level)l) && len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", ct_simd_name((ct_simd_level)l));
    return buf;
}

/* CT_SIMD: a level name; one this library or this processor lacks is an
 * error that says why and what is available, never a silent fallback. */
static ct_status parse_simd(const char *v, ct_engine_opts *o, ct_error *err) {
    ct_simd_level l = CT_SIMD_AUTO;
    while (l <= CT_SIMD_AVX512 && strcmp(v, ct_simd_name(l)) != 0) l++;
    if (l > CT_SIMD_AVX512) return bad_value(err, "CT_SIMD", v, "auto, generic, avx2 or avx512");
    char avail[64];
    if (!ct_simd_built(l) && l != CT_SIMD_AUTO)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "environment variable CT_SIMD='%s': this build has no %s kernels (a CONTRAST_NATIVE "
                            "or non-x86-64 build holds one level); available: %s",
                            v, v, available_levels(avail, sizeof avail));
    if (!ct_simd_available(l))
        return ct_error_set(err, CT_ERR_CONFIG,
                            "environment variable CT_SIMD='%s': this processor does not run the %s kernels "
                            "(%s); available: %s",
                            v, v, l == CT_SIMD_AVX2 ? "x86-64-v3: AVX2, FMA, BMI2, F16C" : "x86-64-v4: AVX-512 F, BW, CD, DQ, VL",
                            available_levels(avail, sizeof avail));
    o->simd = l;
    return CT_OK;
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
    if ((v = env_value("CT_SIMD"))) return parse_simd(v, o, err);
    return CT_OK;
}

/* The options keep their size within ABI major 1 (fields take the reserved
 * tail); on LP64 that size is 64 bytes. */
_Static_assert(sizeof(void *) != 8 || sizeof(ct_engine_opts) == 64, "ct_engine_opts must stay 64 bytes");

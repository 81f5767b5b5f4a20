/* BLAS kernel selection: see contrast/blas.h for why this exists. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contrast/blas.h"

const char *ct_blas_corename(void) {
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

/* OpenBLAS's names for the pre-AVX2 generic fallbacks it picks for CPUs it
 * does not know. */
static int ct__blas_is_generic(const char *core) {
    static const char *const generic[] = {"Prescott", "Core2", "Nehalem", "Sandybridge"};
    for (size_t i = 0; i < sizeof generic / sizeof *generic; i++)
        if (!strcmp(core, generic[i])) return 1;
    return 0;
}

const char *ct_blas_better_coretype(void) {
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core || !ct__blas_is_generic(core)) return NULL;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "SKYLAKEX";
    if (__builtin_cpu_supports("avx2")) return "HASWELL";
#endif
    return NULL;
}

void ct_blas_reexec_if_generic(char **argv) {
    const char *want = ct_blas_better_coretype();
    if (!want || !argv || !argv[0]) return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the generic kernels. */
}

/* `contrast version`: the program, SDK and plugin ABI versions, the SIMD
 * kernels this run would use (the level CT_SIMD or the processor chooses,
 * what the processor runs, what the build holds), the OpenBLAS kernels
 * (after main's re-execution, contrast/blas.h), and whether data-parallel
 * training (MPI) is built in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "dist/dist.h"

/* The levels for which `has` says yes, space-separated, into buf. */
static const char *level_list(bool (*has)(ct_simd_level), char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (int l = CT_SIMD_GENERIC; l <= CT_SIMD_AVX512; l++)
        if (has((ct_simd_level)l) && len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? " " : "", ct_simd_name((ct_simd_level)l));
    return buf;
}

int ct_cmd_version(int argc, char **argv) {
    (void)argv;
    if (argc > 1) return ct_cli_error("version takes no arguments"), 2;
    /* The engine options as a training would read them: a CT_SIMD level
     * this processor lacks is the same error here. */
    ct_engine_opts eo;
    ct_engine_opts_init(&eo);
    ct_error err = {0};
    if (ct_engine_opts_from_env(&eo, &err) != CT_OK) return ct_cli_error("%s", err.msg), 1;
    unsigned v = ct_version();
    printf("contrast %s\nplugin ABI %d.%d (libcontrast %s, ABI %u.%u), build tag %s\n",
           CT_VERSION_STRING, CT_ABI_MAJOR, CT_ABI_MINOR, ct_version_string(), v >> 16, v & 0xffffu,
           CT_BUILD_TAG);
    char cpu[64], built[64];
    printf("kernels %s (%s; processor runs: %s; build holds: %s)\n", ct_simd_name(ct_engine_simd(&eo)),
           eo.simd == CT_SIMD_AUTO ? "the best available" : "forced by CT_SIMD", level_list(ct_simd_cpu, cpu, sizeof cpu),
           level_list(ct_simd_built, built, sizeof built));
    const char *forced = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS kernels %s%s%s\n", ct_blas_corename(), forced ? ", OPENBLAS_CORETYPE=" : "", forced ? forced : "");
    if (ct_dist_built_with_mpi())
        printf("MPI: built in (%s): mpirun -np P contrast train CONFIG trains data-parallel\n", ct_dist_backend());
    else
        printf("MPI: not built in (data-parallel training needs libopenmpi-dev at build time)\n");
    return 0;
}

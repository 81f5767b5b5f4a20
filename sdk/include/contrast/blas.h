/* contrast SDK — BLAS kernel selection.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise some newer x86
 * CPUs and falls back to its generic SSE3 ("Prescott") kernels, 3-5x slower
 * than the AVX2/AVX-512 ones. The kernel set is chosen when the library
 * loads, so a program can only fix it by setting OPENBLAS_CORETYPE and
 * re-executing itself. The `contrast` host does this for every command;
 * embedding programs and benchmarks can call the same function. */
#ifndef CONTRAST_BLAS_H
#define CONTRAST_BLAS_H

#ifdef __cplusplus
extern "C" {
#endif

/* The kernels OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", ...). Static. */
const char *ct_blas_corename(void);

/* The OPENBLAS_CORETYPE that fits this CPU when OpenBLAS fell back to a
 * generic kernel and the variable is not already set ("SKYLAKEX" or
 * "HASWELL"); NULL when nothing needs fixing. Static string. */
const char *ct_blas_better_coretype(void);

/* When ct_blas_better_coretype() is non-NULL: set OPENBLAS_CORETYPE and
 * re-execute the running program with `argv` (NULL-terminated, argv[0]
 * included). Returns only when nothing needed doing or exec failed (the
 * program then carries on with the generic kernels). The variable being set
 * afterwards prevents a second re-execution. */
void ct_blas_reexec_if_generic(char **argv);

#ifdef __cplusplus
}
#endif
#endif

/* Shared helpers for the Check test programs. */
#ifndef CT_TEST_H
#define CT_TEST_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include <contrast/engine.h>
#include <contrast/tensor.h>

/* Source and build directories (from the environment ctest sets; fall back
 * to the compile-time guesses "." and "build"). */
const char *ct_test_source_dir(void);
const char *ct_test_build_dir(void);

/* A fresh temporary directory (mkdtemp); the path is static per call site
 * until the next call. Removed by the OS's tmp cleaning, not by the test. */
const char *ct_test_tmpdir(void);

/* Run a shell command, capturing stdout+stderr into out (n bytes, NUL
 * terminated); returns the exit status (or 128+signal). */
int ct_test_run(const char *cmd, char *out, size_t n);

/* Write `len` bytes to path; returns 0 on success. */
int ct_test_write_file(const char *path, const void *data, size_t len);

/* The losses of the "step" lines of a run's metrics.jsonl (run_dir/
 * metrics.jsonl), in file order, at most max; returns how many, or -1 when
 * the file cannot be read. */
int ct_test_step_losses(const char *run_dir, double *loss, int max);

/* Cap this process's address space at `bytes` (RLIMIT_AS), so a reader
 * that allocates what a lying header declares fails with out-of-memory
 * instead of succeeding by overcommit. Call it inside a test (fork mode:
 * the cap dies with the test's process). Returns false, capping nothing,
 * in AddressSanitizer builds, whose shadow memory already exceeds any cap. */
bool ct_test_limit_memory(size_t bytes);

/* Run a suite in fork mode; returns the exit status for main: 0 when
 * every test passed, 1 otherwise, and 77 (ctest's skip, SKIP_RETURN_CODE)
 * when CT_SIMD names a kernel level this build or processor lacks. */
int ct_test_main(Suite *s);

/* The engine options of the suite's graphs: ct_engine_opts_init's with
 * the environment's overrides (ct_engine_opts_from_env), read once. ctest
 * runs the kernel tests again with CT_SIMD=generic and avx2 so that every
 * level's kernels meet the same checks. */
const ct_engine_opts *ct_test_engine(void);

/* ct_graph_new(0) with ct_test_engine()'s options (NULL on OOM). */
ct_graph *ct_test_graph_new(void);

#endif

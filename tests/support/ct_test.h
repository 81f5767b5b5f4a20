/* Shared helpers for the Check test programs. */
#ifndef CT_TEST_H
#define CT_TEST_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

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

/* Run a suite in fork mode and return the failure count (main helper). */
int ct_test_main(Suite *s);

#endif

/* Guards of a run directory, so that runs never clobber each other:
 *
 *   - an exclusive lock: `train` (and `train --resume`) hold a POSIX
 *     record lock (fcntl F_SETLK) on <run>/lock for their whole life; the
 *     kernel drops it when the process ends, however it ends, so a killed
 *     run never leaves the directory locked. A second run is refused with
 *     the holder's pid (from F_GETLK, so it is right even when the pid
 *     written into the file is stale).
 *   - stale temporary files: the atomic writers (checkpoints, the resolved
 *     config) write "<name>.tmp.<pid>" and rename it; a run killed between
 *     the two leaves the temp file behind. The next run, holding the lock,
 *     removes those whose pid no longer exists.
 * And where it is: made with its parents (`contrast eval` makes the
 * evaluators' run directory), <train.out_dir>/<name> by default. */
#ifndef CONTRAST_HOST_RUN_DIR_H
#define CONTRAST_HOST_RUN_DIR_H

#include <stdio.h>

#include "contrast/contrast.h"
#include "config/experiment.h"

/* Take the lock of run_dir (which must exist): *fd receives the open lock
 * file, to be given to ct_run_dir_unlock. CT_ERR_EXISTS naming the holder's
 * pid when another process holds it; CT_ERR_IO when the file cannot be
 * made. */
ct_status ct_run_dir_lock(const char *run_dir, int *fd, ct_error *err);

/* Release the lock (closes fd; a negative fd is ignored). */
void ct_run_dir_unlock(int fd);

/* Remove run_dir's "*.tmp.<pid>" files whose pid is not a live process,
 * saying so on `log` (may be NULL); returns how many were removed. Call it
 * with the lock held. */
int ct_run_dir_clean_stale(const char *run_dir, FILE *log);

/* mkdir -p: create path and its missing parents (0755). CT_ERR_IO naming
 * the folder that could not be made. */
ct_status ct_run_dir_make(const char *path, ct_error *err);

/* The experiment's default run directory, <train.out_dir>/<name>, into out. */
void ct_run_dir_default(const ct_experiment *ex, char *out, size_t n);

#endif

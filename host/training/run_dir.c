/* The run directory's lock and its stale temporary files (see run_dir.h). */
#include "training/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The whole file, write-locked. */
static struct flock whole_file(void) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    return fl;
}

/* The pid a refused locker names: the kernel's answer, else what the
 * holder wrote into the file (0 when neither is known). */
static long holder_pid(int fd) {
    struct flock q = whole_file();
    if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK) return (long)q.l_pid;
    char buf[32] = {0};
    if (pread(fd, buf, sizeof buf - 1, 0) <= 0) return 0;
    return strtol(buf, NULL, 10);
}

ct_status ct_run_dir_lock(const char *run_dir, int *fd, ct_error *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/lock", run_dir);
    *fd = -1;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) return ct_error_set(err, CT_ERR_IO, "cannot open the run lock %s: %s", path, strerror(errno));
    struct flock fl = whole_file();
    if (fcntl(f, F_SETLK, &fl) != 0) {
        int e = errno;
        long pid = (e == EACCES || e == EAGAIN) ? holder_pid(f) : 0;
        close(f);
        if (e == EACCES || e == EAGAIN)
            return ct_error_set(err, CT_ERR_EXISTS,
                                "run directory %s is in use by another run (pid %ld holds %s): wait for it to "
                                "end or stop it, or train into another --run-dir",
                                run_dir, pid, path);
        return ct_error_set(err, CT_ERR_IO, "cannot lock %s: %s", path, strerror(e));
    }
    /* For people looking at the directory; the lock itself is the truth. */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
        /* harmless: refusals ask the kernel for the pid first */
    }
    *fd = f;
    return CT_OK;
}

void ct_run_dir_unlock(int fd) {
    if (fd >= 0) close(fd);
}

/* The pid of a "<name>.tmp.<digits>" file name, or 0 when it is not one. */
static long tmp_pid(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return 0;
    const char *d = t + 5;
    while (strstr(d, ".tmp.")) d = strstr(d, ".tmp.") + 5; /* the last one */
    if (!*d) return 0;
    for (const char *p = d; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    long pid = strtol(d, NULL, 10);
    return pid > 0 ? pid : 0;
}

static bool pid_alive(long pid) { return kill((pid_t)pid, 0) == 0 || errno == EPERM; }

int ct_run_dir_clean_stale(const char *run_dir, FILE *log) {
    DIR *d = opendir(run_dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = tmp_pid(e->d_name);
        if (pid <= 0 || pid_alive(pid)) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
        if (unlink(path) == 0) {
            removed++;
            if (log) fprintf(log, "contrast: removed %s, left by a run that was killed (pid %ld is gone)\n", path, pid);
        }
    }
    closedir(d);
    return removed;
}

ct_status ct_run_dir_make(const char *path, ct_error *err) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ct_error_set(err, CT_ERR_IO, "run directory path too long: %.80s...", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return ct_error_set(err, CT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return ct_error_set(err, CT_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
    return CT_OK;
}

void ct_run_dir_default(const ct_experiment *ex, char *out, size_t n) {
    snprintf(out, n, "%s/%s", ct_settings_string(ex->train, "out_dir"), ex->name);
}

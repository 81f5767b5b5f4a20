/* The MPI backend of dist.h (built when CMake finds MPI; dist_serial.c
 * otherwise). Every call is on MPI_COMM_WORLD; errors return instead of
 * aborting (MPI_ERRORS_RETURN), so the host can name the rank and reason
 * before ending the job with ct_dist_abort. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

static bool g_started;
/* The gradient buckets' two phases run on communicators of their own, so
 * their nonblocking collectives never match the blocking ones that
 * backward issues meanwhile (gathers, sync BN) nor each other. */
static MPI_Comm g_comm_scatter = MPI_COMM_NULL, g_comm_gather = MPI_COMM_NULL;

/* The environment a launcher leaves: Open MPI's mpirun, MPICH's hydra,
 * PMIx (Slurm's srun --mpi=pmix, Open MPI 4+), PMI-2 (srun --mpi=pmi2). */
bool ct__dist_mpi_wanted(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"};
    const char *force = getenv("CONTRAST_MPI");
    if (force && *force) return strcmp(force, "0") != 0;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

static ct_status mpi_fail(int rc, const char *what, ct_error *err) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return ct_error_set(err, CT_ERR_IO, "MPI %s failed: %s", what, msg);
}

ct_status ct__dist_mpi_start(int *argc, char ***argv, int *rank, int *size, ct_error *err) {
    /* Only the main thread calls MPI (the pools' workers never do). */
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return ct_error_set(err, CT_ERR_IO, "MPI_Init_thread failed (error %d)", rc);
    g_started = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return mpi_fail(rc, "Comm_rank", err);
    if ((rc = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS) return mpi_fail(rc, "Comm_size", err);
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &g_comm_scatter)) != MPI_SUCCESS ||
        (rc = MPI_Comm_dup(MPI_COMM_WORLD, &g_comm_gather)) != MPI_SUCCESS)
        return mpi_fail(rc, "Comm_dup", err);
    MPI_Comm_set_errhandler(g_comm_scatter, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(g_comm_gather, MPI_ERRORS_RETURN);
    return CT_OK;
}

void ct__dist_mpi_finish(void) {
    if (!g_started) return;
    int done = 0;
    MPI_Finalized(&done);
    if (!done) {
        if (g_comm_scatter != MPI_COMM_NULL) MPI_Comm_free(&g_comm_scatter);
        if (g_comm_gather != MPI_COMM_NULL) MPI_Comm_free(&g_comm_gather);
        MPI_Finalize();
    }
    g_started = false;
}

const char *ct__dist_mpi_version(void) {
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!v[0]) {
        int len = 0;
        MPI_Get_library_version(v, &len);
        /* The first line is enough ("Open MPI v4.1.4, package: ..."). */
        char *nl = strpbrk(v, "\n,");
        if (nl) *nl = '\0';
    }
    return v;
}

void ct__dist_mpi_abort(int code) {
    if (g_started) MPI_Abort(MPI_COMM_WORLD, code);
}

ct_status ct__dist_mpi_sum(void *v, size_t n, bool dbl, ct_error *err) {
    if (!g_started || n == 0) return CT_OK;
    /* In pieces: MPI counts are int. */
    size_t step = (size_t)INT_MAX / 2, elem = dbl ? sizeof(double) : sizeof(float);
    for (size_t off = 0; off < n; off += step) {
        int cnt = (int)(n - off < step ? n - off : step);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)v + off * elem, cnt, dbl ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
                               MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "Allreduce", err);
    }
    return CT_OK;
}

ct_status ct__dist_mpi_bcast(float *v, size_t n, int root, ct_error *err) {
    if (!g_started || n == 0) return CT_OK;
    size_t step = (size_t)INT_MAX / 2;
    for (size_t off = 0; off < n; off += step) {
        int cnt = (int)(n - off < step ? n - off : step);
        int rc = MPI_Bcast(v + off, cnt, MPI_FLOAT, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "Bcast", err);
    }
    return CT_OK;
}

/* Byte counts as MPI's int counts and displacements. */
static ct_status int_counts(const int64_t *bytes, int p, int *cnt, int *disp, ct_error *err) {
    int64_t at = 0;
    for (int r = 0; r < p; r++) {
        if (bytes[r] < 0 || bytes[r] > INT_MAX || at > INT_MAX)
            return ct_error_set(err, CT_ERR_INVALID, "MPI: a message of %lld bytes is beyond MPI's int counts",
                                (long long)bytes[r]);
        cnt[r] = (int)bytes[r];
        disp[r] = (int)at;
        at += bytes[r];
    }
    return at > INT_MAX ? ct_error_set(err, CT_ERR_INVALID, "MPI: %lld bytes gathered is beyond MPI's int counts",
                                       (long long)at)
                        : CT_OK;
}

ct_status ct__dist_mpi_allgatherv(const void *in, size_t in_bytes, void *out, const int64_t *bytes_of,
                                  ct_error *err) {
    int p = 1, me = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    int *cnt = malloc(2 * (size_t)p * sizeof *cnt);
    if (!cnt) return ct_error_set(err, CT_ERR_NOMEM, "MPI: out of memory");
    int *disp = cnt + p;
    ct_status st = int_counts(bytes_of, p, cnt, disp, err);
    if (st == CT_OK) {
        const void *src = in == (const char *)out + disp[me] ? MPI_IN_PLACE : in;
        int rc = MPI_Allgatherv(src, (int)in_bytes, MPI_BYTE, out, cnt, disp, MPI_BYTE, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "Allgatherv", err);
    }
    free(cnt);
    return st;
}

ct_status ct__dist_mpi_alltoallv(const void *in, const int64_t *send_bytes, void *out, const int64_t *recv_bytes,
                                 ct_error *err) {
    int p = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    int *c = malloc(4 * (size_t)p * sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "MPI: out of memory");
    ct_status st = int_counts(send_bytes, p, c, c + p, err);
    if (st == CT_OK) st = int_counts(recv_bytes, p, c + 2 * p, c + 3 * p, err);
    if (st == CT_OK) {
        int rc = MPI_Alltoallv(in, c, c + p, MPI_BYTE, out, c + 2 * p, c + 3 * p, MPI_BYTE, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "Alltoallv", err);
    }
    free(c);
    return st;
}

ct_status ct__dist_mpi_reduce_scatter(const float *in, float *out, const int64_t *counts, ct_error *err) {
    int p = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    int *c = malloc((size_t)p * sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "MPI: out of memory");
    ct_status st = CT_OK;
    int64_t total = 0;
    for (int r = 0; r < p && st == CT_OK; r++) {
        total += counts[r];
        if (counts[r] < 0 || counts[r] > INT_MAX || total > INT_MAX)
            st = ct_error_set(err, CT_ERR_INVALID, "MPI: %lld values to reduce is beyond MPI's int counts",
                              (long long)total);
        else
            c[r] = (int)counts[r];
    }
    if (st == CT_OK) {
        int rc = MPI_Reduce_scatter(in, out, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "Reduce_scatter", err);
    }
    free(c);
    return st;
}

ct_status ct__dist_mpi_barrier(ct_error *err) {
    if (!g_started) return CT_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CT_OK : mpi_fail(rc, "Barrier", err);
}

/* A nonblocking collective and the count arrays MPI reads until it ends. */
struct ct__dist_req {
    MPI_Request r;
    int counts[];
};

static ct__dist_req *req_new(int n_ints) {
    ct__dist_req *q = malloc(sizeof *q + (size_t)n_ints * sizeof(int));
    if (q) q->r = MPI_REQUEST_NULL;
    return q;
}

ct_status ct__dist_mpi_ialltoallv(const void *in, const int64_t *send_bytes, void *out, const int64_t *recv_bytes,
                                  ct__dist_req **req, ct_error *err) {
    *req = NULL;
    if (!g_started) { /* one process: the copy of its own slice */
        if (out != in) memcpy(out, in, (size_t)send_bytes[0]);
        return CT_OK;
    }
    int p = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    ct__dist_req *q = req_new(4 * p);
    if (!q) return ct_error_set(err, CT_ERR_NOMEM, "MPI: out of memory");
    int *c = q->counts;
    ct_status st = int_counts(send_bytes, p, c, c + p, err);
    if (st == CT_OK) st = int_counts(recv_bytes, p, c + 2 * p, c + 3 * p, err);
    if (st == CT_OK) {
        int rc = MPI_Ialltoallv(in, c, c + p, MPI_BYTE, out, c + 2 * p, c + 3 * p, MPI_BYTE, g_comm_scatter, &q->r);
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "Ialltoallv", err);
    }
    if (st != CT_OK) {
        free(q);
        q = NULL;
    }
    *req = q;
    return st;
}

ct_status ct__dist_mpi_iallgatherv(const void *in, size_t in_bytes, void *out, const int64_t *bytes_of,
                                   ct__dist_req **req, ct_error *err) {
    *req = NULL;
    if (!g_started) {
        if (out != in) memcpy(out, in, in_bytes);
        return CT_OK;
    }
    int p = 1, me = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    ct__dist_req *q = req_new(2 * p);
    if (!q) return ct_error_set(err, CT_ERR_NOMEM, "MPI: out of memory");
    int *cnt = q->counts, *disp = q->counts + p;
    ct_status st = int_counts(bytes_of, p, cnt, disp, err);
    if (st == CT_OK) {
        const void *src = in == (const char *)out + disp[me] ? MPI_IN_PLACE : in;
        int rc = MPI_Iallgatherv(src, (int)in_bytes, MPI_BYTE, out, cnt, disp, MPI_BYTE, g_comm_gather, &q->r);
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "Iallgatherv", err);
    }
    if (st != CT_OK) {
        free(q);
        q = NULL;
    }
    *req = q;
    return st;
}

ct_status ct__dist_mpi_test(ct__dist_req *req, bool *done, ct_error *err) {
    int flag = 1;
    int rc = req ? MPI_Test(&req->r, &flag, MPI_STATUS_IGNORE) : MPI_SUCCESS;
    *done = flag != 0;
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "Test", err);
    if (*done) free(req);
    return CT_OK;
}

ct_status ct__dist_mpi_wait(ct__dist_req *req, ct_error *err) {
    if (!req) return CT_OK;
    int rc = MPI_Wait(&req->r, MPI_STATUS_IGNORE);
    free(req);
    return rc == MPI_SUCCESS ? CT_OK : mpi_fail(rc, "Wait", err);
}

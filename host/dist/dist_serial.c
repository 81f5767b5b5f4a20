/* The serial backend of dist.h, built when CMake finds no MPI: nothing is
 * ever started, so dist.c's collectives take their one-rank paths. */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

/* Under a launcher this build can only run every rank alone: say so. */
bool ct__dist_mpi_wanted(void) {
    const char *force = getenv("CONTRAST_MPI");
    if (force && *force) return strcmp(force, "0") != 0;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

ct_status ct__dist_mpi_start(int *argc, char ***argv, int *rank, int *size, ct_error *err) {
    (void)argc, (void)argv;
    *rank = 0, *size = 1;
    return ct_error_set(err, CT_ERR_CONFIG,
                        "started by an MPI launcher, but this contrast was built without MPI (`contrast version` "
                        "says so): install libopenmpi-dev and rebuild, or run it without mpirun/srun");
}

void ct__dist_mpi_finish(void) {}
const char *ct__dist_mpi_version(void) { return "none"; }
void ct__dist_mpi_abort(int code) { (void)code; }

ct_status ct__dist_mpi_sum(void *v, size_t n, bool dbl, ct_error *err) {
    (void)v, (void)n, (void)dbl, (void)err;
    return CT_OK;
}

ct_status ct__dist_mpi_bcast(float *v, size_t n, int root, ct_error *err) {
    (void)v, (void)n, (void)root, (void)err;
    return CT_OK;
}

ct_status ct__dist_mpi_allgatherv(const void *in, size_t in_bytes, void *out, const int64_t *bytes_of,
                                  ct_error *err) {
    (void)bytes_of, (void)err;
    if (out != in) memcpy(out, in, in_bytes);
    return CT_OK;
}

ct_status ct__dist_mpi_alltoallv(const void *in, const int64_t *send_bytes, void *out, const int64_t *recv_bytes,
                                 ct_error *err) {
    (void)recv_bytes, (void)err;
    if (out != in) memcpy(out, in, (size_t)send_bytes[0]);
    return CT_OK;
}

ct_status ct__dist_mpi_reduce_scatter(const float *in, float *out, const int64_t *counts, ct_error *err) {
    (void)err;
    if (out != in) memcpy(out, in, (size_t)counts[0] * sizeof *out);
    return CT_OK;
}

ct_status ct__dist_mpi_barrier(ct_error *err) {
    (void)err;
    return CT_OK;
}

/* Nonblocking collectives end at once (a NULL request is a finished one). */
ct_status ct__dist_mpi_ialltoallv(const void *in, const int64_t *send_bytes, void *out, const int64_t *recv_bytes,
                                  ct__dist_req **req, ct_error *err) {
    *req = NULL;
    return ct__dist_mpi_alltoallv(in, send_bytes, out, recv_bytes, err);
}

ct_status ct__dist_mpi_iallgatherv(const void *in, size_t in_bytes, void *out, const int64_t *bytes_of,
                                   ct__dist_req **req, ct_error *err) {
    *req = NULL;
    return ct__dist_mpi_allgatherv(in, in_bytes, out, bytes_of, err);
}

ct_status ct__dist_mpi_test(ct__dist_req *req, bool *done, ct_error *err) {
    (void)req, (void)err;
    *done = true;
    return CT_OK;
}

ct_status ct__dist_mpi_wait(ct__dist_req *req, ct_error *err) {
    (void)req, (void)err;
    return CT_OK;
}

/* bench/allreduce: the time of one gradient average over ranks
 * (ct_dist_average_floats, what every data-parallel step does after
 * backward) with every rank arriving together (a barrier first), so the
 * figure is the transfer and the sums alone, without the wait for a slower
 * rank: the most that overlapping it with backward could hide.
 *
 *   mpirun -np 2 build/bench/allreduce [--floats N] [--reps R]
 *
 * Defaults: 331,552 floats (the SimCLR reference model of
 * configs/simclr_fmnist.cfg), 50 repetitions. Rank 0 prints one JSON line:
 * the median and the minimum milliseconds of one average, and the same for
 * MPI's own MPI_Allreduce of the buffer (ct_dist_sum_floats) beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median and minimum of R timings of `run` on buf, each after a barrier. */
static int time_it(bool fixed_order, float *buf, size_t n, int reps, double *median_ms, double *min_ms) {
    double *t = malloc((size_t)reps * sizeof *t);
    if (!t) return 1;
    ct_error err = CT_ERROR_INIT;
    for (int r = 0; r < reps; r++) {
        if (ct_dist_barrier(&err) != CT_OK) break;
        double t0 = now_s();
        ct_status st = fixed_order ? ct_dist_average_floats(buf, n, &err) : ct_dist_sum_floats(buf, n, &err);
        t[r] = 1e3 * (now_s() - t0);
        if (st != CT_OK) {
            fprintf(stderr, "allreduce: %s\n", err.msg);
            free(t);
            return 1;
        }
    }
    qsort(t, (size_t)reps, sizeof *t, by_value);
    *median_ms = t[reps / 2];
    *min_ms = t[0];
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    size_t n = 331552;
    int reps = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--floats") == 0 && i + 1 < argc) n = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: mpirun -np P %s [--floats N] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    if (n == 0 || reps < 1) {
        fprintf(stderr, "allreduce: --floats and --reps must be positive\n");
        return 2;
    }
    ct_error err = CT_ERROR_INIT;
    if (ct_dist_start(&argc, &argv, &err) != CT_OK) {
        fprintf(stderr, "allreduce: %s\n", err.msg);
        return 1;
    }
    float *buf = malloc(n * sizeof *buf);
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++) buf[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    double avg_med = 0, avg_min = 0, mpi_med = 0, mpi_min = 0;
    int bad = time_it(true, buf, n, reps, &avg_med, &avg_min) || time_it(false, buf, n, reps, &mpi_med, &mpi_min);
    if (!bad && ct_dist_rank() == 0)
        printf("{\"ranks\": %d, \"floats\": %zu, \"reps\": %d, \"average_median_ms\": %.3f, \"average_min_ms\": %.3f, "
               "\"mpi_allreduce_median_ms\": %.3f, \"mpi_allreduce_min_ms\": %.3f}\n",
               ct_dist_size(), n, reps, avg_med, avg_min, mpi_med, mpi_min);
    free(buf);
    ct_dist_finish();
    return bad;
}

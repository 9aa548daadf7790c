/*
 * dist_wait.c -- what the deadline on usagi's collectives costs (see
 * usagi/dist.h, "Timeouts"): the time of one allreduce, broadcast and
 * barrier between 2 ranks, through MPI's blocking calls, through the
 * nonblocking call and MPI_Wait (how usg_dist_allreduce waited before the
 * timeout), and through libusagi_dist (the default 300 s timeout:
 * notices, polling, naps while a rank is missing).
 *
 *     mpirun -np 2 build/bench/dist_wait [--reps R]
 *
 * Rank 0 prints one line per operation and size: microseconds per call,
 * the median of 9 blocks of calls (fewer calls per block as the message
 * grows), the four ways taking turns within each block. Not for: correctness (tests/c/test_dist.c), or more ranks.
 *
 * Built by hand against a build tree:
 *     mpicc -O2 -Ihost/include scripts/bench/dist_wait.c -Lbuild -lusagi_dist -lusagi \
 *           -Wl,-rpath,$PWD/build -o build/bench/dist_wait
 */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usagi/dist.h"

#define BLOCKS 9

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum way { MPI_BLOCKING, MPI_NB_WAIT, USG_ON, WAYS };
enum op { ALLREDUCE, BROADCAST, BARRIER };
static const char *op_name[] = {"allreduce", "broadcast", "barrier"};

static void one(enum op op, enum way way, usg_tensor *t)
{
    void *x = usg_tensor_data(t);
    int n = (int)usg_tensor_numel(t);
    MPI_Request req;
    if (way == USG_ON) {
        /* a 1-byte bucket: reduced in place, as the MPI ways do (usg_dist_allreduce
         * would copy a tensor under 25 MiB into its bucket and back) */
        usg_status s = op == ALLREDUCE ? usg_dist_allreduce_many(&t, 1, USG_DIST_SUM, 1)
                     : op == BROADCAST ? usg_dist_broadcast(t, 0) : usg_dist_barrier();
        if (s != USG_OK) { fprintf(stderr, "dist_wait: %s\n", usg_errmsg()); MPI_Abort(MPI_COMM_WORLD, 1); }
    } else if (op == ALLREDUCE) {
        if (way == MPI_BLOCKING) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    } else if (op == BROADCAST) {
        if (way == MPI_BLOCKING) MPI_Bcast(x, n, MPI_FLOAT, 0, MPI_COMM_WORLD);
        else MPI_Ibcast(x, n, MPI_FLOAT, 0, MPI_COMM_WORLD, &req);
    } else {
        if (way == MPI_BLOCKING) MPI_Barrier(MPI_COMM_WORLD);
        else MPI_Ibarrier(MPI_COMM_WORLD, &req);
    }
    if (way == MPI_NB_WAIT) MPI_Wait(&req, MPI_STATUS_IGNORE);
}

/* us[w] <- microseconds per call of way w: the median over BLOCKS blocks
 * of `calls` calls, the ways taking turns within each block so that a
 * change in the machine's load falls on all of them alike */
static void time_all(enum op op, usg_tensor *t, int calls, double us[WAYS])
{
    double per[WAYS][BLOCKS];
    for (int b = 0; b < BLOCKS; b++) {
        for (int w = 0; w < WAYS; w++) {
            one(op, w, t);                             /* warm-up */
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            for (int i = 0; i < calls; i++) one(op, w, t);
            per[w][b] = (now() - t0) * 1e6 / calls;
        }
    }
    for (int w = 0; w < WAYS; w++) {
        qsort(per[w], BLOCKS, sizeof per[w][0], cmp);
        us[w] = per[w][BLOCKS / 2];
    }
}

int main(int argc, char **argv)
{
    int reps = 400;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else { fprintf(stderr, "dist_wait: usage: dist_wait [--reps R]\n"); return 2; }
    }
    if (usg_dist_init() != USG_OK || usg_dist_size() != 2) {
        fprintf(stderr, "dist_wait: run me as mpirun -np 2 (%s)\n", usg_errmsg());
        return 1;
    }
    int me = usg_dist_rank();
    static const int64_t sizes[] = {1, 1024, 65536, 1 << 20, 25 << 18};   /* floats; 25 MiB last */
    if (me == 0) printf("%-10s %10s  %14s %14s %14s   us per call\n", "op", "floats",
                        "MPI blocking", "MPI nb + Wait", "usagi");
    for (int op = ALLREDUCE; op <= BARRIER; op++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            if (op == BARRIER && s > 0) break;
            usg_tensor *t = NULL;
            if (usg_tensor_full(&t, USG_F32, 1, (int64_t[]){sizes[s]}, 1.0) != USG_OK) return 1;
            int calls = (int)(reps / (1 + sizes[s] / 4096));
            if (calls < 3) calls = 3;
            double us[WAYS];
            time_all(op, t, calls, us);
            if (me == 0)
                printf("%-10s %10lld  %14.1f %14.1f %14.1f\n", op_name[op],
                       op == BARRIER ? 0LL : (long long)sizes[s], us[0], us[1], us[2]);
            usg_tensor_release(t);
        }
    }
    return 0;
}

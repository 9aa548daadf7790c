/*
 * watch.h -- private to libusagi_dist: the deadline on its collectives
 * (watch.c). dist.c numbers each collective with usg_dist_watch_arrive and
 * waits for its requests with usg_dist_watch_wait, which ends the job when
 * another rank stays silent past usg_dist_timeout(). The design is in
 * usagi/dist.h, "Timeouts".
 */
#ifndef USAGI_DIST_WATCH_H
#define USAGI_DIST_WATCH_H

#include <mpi.h>
#include <stdint.h>

#include "usagi/dist.h"

/* After MPI_Init: a private communicator for the notices and a receive
 * posted on it. USG_IO with MPI's message on failure. */
usg_status usg_dist_watch_start(void);
/* Before MPI_Finalize: withdraws the posted receive. */
void usg_dist_watch_stop(void);
/* What a collective is, in the notices and the messages. */
typedef enum usg_dist_kind {
    USG_DIST_BARRIER, USG_DIST_BROADCAST, USG_DIST_ALLREDUCE, USG_DIST_GRADIENTS,
    USG_DIST_FINAL, USG_DIST_KINDS
} usg_dist_kind;

/* This rank enters the next collective, of the given kind: numbers it
 * (1, 2, ... the same on every rank, since every rank calls the
 * collectives in the same order) and tells the other ranks it got here.
 * A rank known to have called another kind as the same number ends the
 * job (MPI_Abort), saying so. Returns the number. */
int64_t usg_dist_watch_arrive(usg_dist_kind kind);
/* MPI_Waitall of req[0..n) for the collective last arrived at, polling
 * until usg_dist_timeout() seconds have passed; then it prints which
 * ranks are silent and calls MPI_Abort. With a timeout of 0 it polls the
 * same way without end. Returns MPI's code. */
int usg_dist_watch_wait(int n, MPI_Request *req);

#endif

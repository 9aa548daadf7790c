/*
 * watch.c -- the deadline on libusagi_dist's collectives: a rank that
 * waits longer than usg_dist_timeout() for the others says which ranks are
 * silent and ends the job (MPI_Abort), instead of waiting forever for a
 * rank that was stopped, hung or swapped out. It is not a failure detector
 * for MPI in general: only the waits of dist.c go through it.
 *
 * Blocking MPI collectives cannot time out, so dist.c issues nonblocking
 * ones and waits here, testing them against a deadline. To name the silent
 * ranks, every rank entering collective #k sends each other rank a notice,
 * an empty message whose tag is k, on a communicator of its own, and
 * while it waits it repeats that notice every quarter of the timeout (a
 * heartbeat). A rank that times out in #k drains its notices and knows,
 * for every other rank p, the last collective p reached and when p last
 * spoke: p did not reach #k, or reached it but has been silent for more
 * than half the timeout (stopped inside it). The tag also says which
 * collective the rank called as #k, so ranks that called different ones
 * (a bug of the program: MPI would hang or mix their data) end the job at
 * once, saying so. The notices are the only extra traffic: R - 1 empty
 * messages per rank and collective, and a heartbeat per quarter timeout
 * while waiting.
 *
 * Waiting: the first SPIN seconds of a wait test the requests in a tight
 * loop, as MPI_Wait does (OpenMPI moves data only inside MPI calls here,
 * and most waits of a training step end within that time). After that,
 * the notices tell the two kinds of wait apart. While some rank has not
 * reached the collective, there is nothing to move until it comes, so the
 * rank naps between tests, from NAP_MIN doubling up to NAP_MAX, and a rank
 * waiting for a slow one (a checkpoint being written on rank 0) leaves the
 * core to others. Once every rank is there, the data is moving and needs
 * this rank's MPI calls to move on: it polls without naps for up to
 * BUSY seconds, then with naps of at most NAP_BUSY (a rank stopped inside
 * the collective should not cost a core for the whole timeout). Built
 * without MPI, this file is empty.
 */
#ifdef USAGI_HAVE_MPI
#include "watch.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SPIN 0.005          /* seconds of tight polling before the naps */
#define BUSY 1.0            /* seconds of it once every rank is there */
#define NAP_MIN 20000L      /* nanoseconds */
#define NAP_MAX 1000000L
#define NAP_BUSY 100000L
#define KINDS 8             /* room in the tag for USG_DIST_KINDS */

static const char *const kind_name[USG_DIST_KINDS] = {
    "barrier", "broadcast", "allreduce", "gradient allreduce", "the final barrier"};

static MPI_Comm comm = MPI_COMM_NULL;   /* the notices travel here only */
static MPI_Request inbox = MPI_REQUEST_NULL;
static int me, ranks;
static int64_t seq;                     /* collectives this rank entered */
static usg_dist_kind kind;              /* what #seq is */
static unsigned char mine[64];          /* what #k was, for the last 64 k (at k % 64) */
static double said_at;                  /* when this rank last sent its notices */
static int64_t modulus;                 /* tags are (seq mod this) * KINDS + kind */
static int64_t *heard_seq;              /* per rank: the last collective it reached */
static usg_dist_kind *heard_kind;       /* and what that one is */
static double *heard_at;                /* per rank: when it last spoke (monotonic s) */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

usg_status usg_dist_watch_start(void)
{
    int *ub = NULL, flag = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
    /* 32767: the least MPI_TAG_UB the standard allows */
    modulus = ((flag && ub ? (int64_t)*ub : 32767) + 1) / KINDS;
    heard_seq = usg_alloc((size_t)ranks * sizeof *heard_seq);
    heard_kind = usg_alloc((size_t)ranks * sizeof *heard_kind);
    heard_at = usg_alloc((size_t)ranks * sizeof *heard_at);
    if (!heard_seq || !heard_kind || !heard_at) return USG_NOMEM;
    double t = now();
    for (int p = 0; p < ranks; p++) heard_seq[p] = 0, heard_kind[p] = 0, heard_at[p] = t;
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    if (rc == MPI_SUCCESS) MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Irecv(NULL, 0, MPI_BYTE, MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &inbox);
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) strcpy(msg, "unknown error");
        return usg_fail(USG_IO, "dist.init: MPI failed: %s", msg);
    }
    return USG_OK;
}

void usg_dist_watch_stop(void)
{
    if (inbox != MPI_REQUEST_NULL) {
        MPI_Cancel(&inbox);
        MPI_Wait(&inbox, MPI_STATUS_IGNORE);
    }
    usg_free(heard_seq), usg_free(heard_kind), usg_free(heard_at);
    heard_seq = NULL, heard_kind = NULL, heard_at = NULL;
}

/* The empty message "I am at collective #k, a <kind>" to every other rank. The
 * request is freed at once: an empty send has no buffer to keep alive,
 * and nobody waits for it (a stopped rank never receives it). */
static void notify(void)
{
    said_at = now();
    int tag = (int)(seq % modulus * KINDS + kind);
    for (int p = 0; p < ranks; p++) {
        if (p == me) continue;
        MPI_Request r;
        if (MPI_Isend(NULL, 0, MPI_BYTE, p, tag, comm, &r) == MPI_SUCCESS) MPI_Request_free(&r);
    }
}

/* The collective number a tag stands for: the one nearest to ours with
 * that remainder (ranks are never modulus / 2 collectives apart). */
static int64_t unwrap(int tag)
{
    int64_t d = ((int64_t)(tag / KINDS) - seq % modulus) % modulus;
    if (d < 0) d += modulus;
    if (d >= modulus / 2) d -= modulus;
    return seq + d;
}

/* Rank p called `theirs` as collective #k, which this rank called as
 * another: the program's bug, which no waiting cures (MPI would hang, or
 * mix the data of the two). */
static void mismatch(int p, int64_t k, int theirs, int ours)
{
    usg_fail(USG_ARG, "usagi.dist: rank %d called %s as collective #%lld where rank %d called "
             "%s: every rank must call the same collectives in the same order", p,
             kind_name[theirs], (long long)k, me, kind_name[ours]);
    fprintf(stderr, "%s; rank %d aborts the job\n", usg_errmsg(), me);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Read every notice that has come in; a notice for a collective this rank
 * has entered (one of the last 64) must name the same kind. */
static void drain(void)
{
    int flag = 0;
    MPI_Status st;
    while (inbox != MPI_REQUEST_NULL && MPI_Test(&inbox, &flag, &st) == MPI_SUCCESS && flag) {
        int p = st.MPI_SOURCE;
        if (p >= 0 && p < ranks) {
            int64_t k = unwrap(st.MPI_TAG);
            int theirs = st.MPI_TAG % KINDS;
            if (theirs >= USG_DIST_KINDS) theirs = USG_DIST_BARRIER;
            if (k >= heard_seq[p]) heard_seq[p] = k, heard_kind[p] = theirs;
            heard_at[p] = now();
            if (k > 0 && k <= seq && k > seq - 64 && theirs != mine[k % 64])
                mismatch(p, k, theirs, mine[k % 64]);
        }
        if (MPI_Irecv(NULL, 0, MPI_BYTE, MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &inbox) != MPI_SUCCESS)
            inbox = MPI_REQUEST_NULL;
    }
}

/* Every other rank said it reached the collective this rank waits in. */
static bool everyone_here(void)
{
    for (int p = 0; p < ranks; p++)
        if (p != me && heard_seq[p] < seq) return false;
    return true;
}

/* A rank whose notice for #seq came before this rank got there. */
static void check_early(void)
{
    for (int p = 0; p < ranks; p++)
        if (p != me && heard_seq[p] == seq && heard_kind[p] != kind)
            mismatch(p, seq, heard_kind[p], kind);
}

int64_t usg_dist_watch_arrive(usg_dist_kind k)
{
    seq++;
    kind = k >= 0 && k < USG_DIST_KINDS ? k : USG_DIST_BARRIER;
    mine[seq % 64] = (unsigned char)kind;
    check_early();
    notify();
    drain();
    return seq;
}

/* "rank 1", "ranks 1 and 3", "ranks 1, 2 and 3" for the ranks p with
 * pick[p], into buf; the count comes back. */
static int list_ranks(char *buf, size_t size, const bool *pick)
{
    int n = 0, total = 0;
    for (int p = 0; p < ranks; p++) total += pick[p];
    size_t used = (size_t)snprintf(buf, size, "%s", total == 1 ? "rank " : "ranks ");
    for (int p = 0; p < ranks && used < size; p++) {
        if (!pick[p]) continue;
        n++;
        const char *sep = n == 1 ? "" : n == total ? " and " : ", ";
        used += (size_t)snprintf(buf + used, size - used, "%s%d", sep, p);
    }
    return total;
}

/* The end of a wait that lasted past the timeout: the message, then the
 * end of every rank. A collective cannot be cancelled in MPI, so this rank
 * could not go on talking to the others even if a caller wanted to. */
static void give_up(double waited)
{
    const char *what = kind_name[kind];
    drain();
    double t = now(), limit = usg_dist_timeout();
    bool *missing = usg_alloc((size_t)ranks * sizeof *missing);
    bool *silent = usg_alloc((size_t)ranks * sizeof *silent);
    char a[512] = "", b[512] = "", msg[1200] = "";
    double quiet = 0;
    if (missing && silent) {
        for (int p = 0; p < ranks; p++) {
            missing[p] = p != me && heard_seq[p] < seq;
            silent[p] = p != me && !missing[p] && t - heard_at[p] > limit / 2;
            if (silent[p] && t - heard_at[p] > quiet) quiet = t - heard_at[p];
        }
        size_t used = 0;
        if (list_ranks(a, sizeof a, missing))
            used = (size_t)snprintf(msg, sizeof msg, "%s did not reach %s #%lld within %g s "
                                    "(stopped or too slow?)", a, what, (long long)seq, limit);
        if (list_ranks(b, sizeof b, silent) && used < sizeof msg)
            snprintf(msg + used, sizeof msg - used, "%s%s reached %s #%lld but gave no sign of "
                     "life for %.0f s since (stopped inside it?)", used ? "; " : "", b, what,
                     (long long)seq, quiet);
    }
    if (!msg[0])
        snprintf(msg, sizeof msg, "%s #%lld did not complete within %.0f s, though every rank "
                 "reached it and answers", what, (long long)seq, waited);
    usg_free(missing), usg_free(silent);
    fprintf(stderr, "usagi.dist: %s; rank %d aborts the job\n", msg, me);
    fflush(stderr);
    usg_fail(USG_IO, "usagi.dist: %s", msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int usg_dist_watch_wait(int n, MPI_Request *req)
{
    double limit = usg_dist_timeout();
    if (n <= 0) return MPI_SUCCESS;
    /* without a deadline of its own, a rank still tells the others it is
     * alive, at the pace of the default one */
    double t0 = now(), beat = (limit > 0 ? limit : 300) / 4;
    long nap = 0;
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        double t = now() - t0;
        if (t < SPIN) continue;
        drain();
        if (limit > 0 && t >= limit) {
            give_up(t);
            return MPI_ERR_OTHER;          /* MPI_Abort does not return */
        }
        if (now() - said_at >= beat) notify();      /* still here, waiting in #seq */
        bool all = everyone_here();
        if (all && t < BUSY) continue;
        long cap = all ? NAP_BUSY : NAP_MAX;
        nap = nap ? (nap * 2 < cap ? nap * 2 : cap) : NAP_MIN;
        if (nap > cap) nap = cap;
        struct timespec d = {0, nap};
        nanosleep(&d, NULL);
    }
}
#endif

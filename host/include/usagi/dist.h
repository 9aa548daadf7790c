/*
 * usagi/dist.h -- data-parallel communication for tensors over MPI
 * (Debian's OpenMPI): rank, size, barrier, broadcast and allreduce (sum or
 * mean) of contiguous tensors, and a bucketed allreduce of many tensors
 * (the gradients of a model) in few large messages. libusagi_dist; no Lua.
 *
 * MPI starts lazily, at the first call of any function here, and only when
 * the process was started by an MPI launcher (mpirun sets
 * OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE): a plain process is rank 0
 * of 1 and every operation is the identity, without touching MPI. The
 * environment variable USAGI_DIST=off makes any process rank 0 of 1 (a
 * sweep's child runs); USAGI_DIST=on starts MPI even without a launcher.
 * Built without MPI (USAGI_MPI=OFF), the same functions work for one
 * process and refuse to run under a launcher with more than one rank.
 *
 * Collectives must be called by every rank in the same order with the same
 * shapes and dtypes (MPI's rule). Ranks that call different collectives
 * (an allreduce on one, a barrier on another) as the same one end the job
 * with a message saying so, as soon as a notice (below) shows it; other
 * mismatches (shapes, dtypes, roots) are not detected here.
 *
 * Timeouts. A rank that waits in a collective (barrier, broadcast,
 * allreduce, the reducer's finish, and the barrier before MPI_Finalize)
 * longer than usg_dist_timeout() seconds -- 300 by default, the variable
 * USAGI_DIST_TIMEOUT or usg_dist_set_timeout otherwise, 0 for never --
 * prints which ranks are silent and ends the job with MPI_Abort (exit code
 * 1), instead of waiting forever for a rank that was stopped or hangs:
 *
 *   usagi.dist: rank 1 did not reach allreduce #1234 within 300 s (stopped
 *   or too slow?); rank 0 aborts the job
 *
 * How a rank knows who is silent: the collectives are issued nonblocking
 * and tested against the deadline; every rank entering collective #k
 * (numbered alike on every rank, as they are called in the same order)
 * sends each other rank an empty notice tagged k, and repeats it every
 * quarter of the timeout while it waits. At the deadline a rank names the
 * ranks whose last notice is older than #k (they did not reach it) and
 * those that reached #k but sent nothing for half the timeout (stopped
 * inside it). A notice's tag also holds the kind of collective #k (the
 * mismatch check above). Notices take a communicator of their own; they
 * are the only extra traffic (R - 1 empty messages per rank and
 * collective). While a rank is missing, a waiting one naps between its
 * tests, so it leaves the core to others (host/dist/watch.c). A rank
 * with a timeout of 0 waits without end but still sends its notices (at
 * the default's pace while it waits); every rank should use the same
 * timeout, since a rank judges the others' silence by its own.
 */
#ifndef USAGI_DIST_H
#define USAGI_DIST_H

#include "usagi/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum usg_dist_op { USG_DIST_SUM = 0, USG_DIST_MEAN = 1 } usg_dist_op;

/* Start MPI if launched by mpirun (idempotent). Fails with USG_IO and the
 * MPI library's message, or USG_ARG when built without MPI under a
 * launcher of several ranks. Every function below calls it first. */
USG_API usg_status usg_dist_init(void);
/* true when built with MPI (whether or not this process uses it). */
USG_API bool usg_dist_compiled(void);
/* true when this process talks to other ranks through MPI. */
USG_API bool usg_dist_active(void);
/* This process's rank (0-based) and the number of ranks; 0 and 1 when
 * usg_dist_init failed. */
USG_API int usg_dist_rank(void);
USG_API int usg_dist_size(void);
USG_API usg_status usg_dist_barrier(void);
/* t (contiguous, any dtype) takes rank `root`'s values on every rank. */
USG_API usg_status usg_dist_broadcast(usg_tensor *t, int root);
/* The n bytes at p take rank `root`'s bytes on every rank (every rank
 * passes the same n; any size: sent in pieces of 1 GiB). */
USG_API usg_status usg_dist_broadcast_bytes(void *p, size_t n, int root);
/* t (contiguous) becomes the elementwise sum (or mean: f32/f64 only) over
 * the ranks, in place. */
USG_API usg_status usg_dist_allreduce(usg_tensor *t, usg_dist_op op);
/* The same for n tensors at once, packed into buckets of up to
 * bucket_bytes (0: 25 MiB) of one dtype: bucket k's nonblocking allreduce
 * is in flight while bucket k+1 is packed; a tensor of bucket_bytes or
 * more is reduced in place as its own bucket. A NULL entry is skipped. */
USG_API usg_status usg_dist_allreduce_many(usg_tensor *const *ts, int n, usg_dist_op op,
                                           size_t bucket_bytes);
/* The buckets usg_dist_allreduce_many used in its last call (a test and
 * the benchmark report it). */
USG_API int usg_dist_last_buckets(void);
/* ==== Overlapped gradient averaging =======================================
 *
 * A reducer averages the gradients of a fixed list of parameters over the
 * ranks, starting while the backward still runs: the parameters are cut
 * into buckets in reverse order (the backward finishes the last layers
 * first), and when autograd's gradient-ready hook (usagi/autograd.h) says
 * that every parameter of the next bucket has its gradient, that bucket's
 * nonblocking allreduce starts, in bucket order on every rank. finish()
 * starts what is left (a parameter the backward did not reach gets zeros),
 * waits, and writes the means back. PyTorch's DDP works the same way.
 *
 *   usg_dist_reducer_begin(r);            // arms the hook for one backward
 *   usg_backward(loss, NULL, false);
 *   usg_dist_reducer_finish(r);           // grads now hold the means
 */
typedef struct usg_dist_reducer usg_dist_reducer;
/* params (f32/f64, retained by the reducer), buckets of up to bucket_bytes
 * (0: 25 MiB); a parameter of bucket_bytes or more is a bucket alone and
 * is reduced where its gradient lies. */
USG_API usg_status usg_dist_reducer_new(usg_dist_reducer **out, usg_tensor *const *params, int n,
                                        size_t bucket_bytes);
USG_API void usg_dist_reducer_free(usg_dist_reducer *r);
USG_API usg_status usg_dist_reducer_begin(usg_dist_reducer *r);
USG_API usg_status usg_dist_reducer_finish(usg_dist_reducer *r);
/* The number of buckets, and how many of them the last step started
 * before the backward returned. */
USG_API int usg_dist_reducer_buckets(const usg_dist_reducer *r);
USG_API int usg_dist_reducer_early(const usg_dist_reducer *r);

/* The timeout of every collective, in seconds (see Timeouts above); 0:
 * wait forever. USG_ARG for a negative, infinite or NaN value. */
USG_API usg_status usg_dist_set_timeout(double seconds);
USG_API double usg_dist_timeout(void);

/* Stop every rank (MPI_Abort) with exit code `code`: what a rank that
 * failed must do, since the others would wait forever in a collective.
 * Without MPI it returns and the caller exits as usual. */
USG_API void usg_dist_abort(int code);
/* MPI_Finalize, if MPI was started (also registered with atexit). */
USG_API void usg_dist_finalize(void);

#ifdef __cplusplus
}
#endif
#endif

/*
 * dist.c -- tensors over MPI for data-parallel training (see usagi/dist.h).
 *
 * What it is for: the few collectives data-parallel SGD needs -- broadcast
 * the parameters from rank 0 once, then average the gradients of every
 * step -- on contiguous usagi tensors. What it is not: a scheduler or a
 * communication library of its own; OpenMPI chooses the algorithms (ring,
 * recursive doubling, ...) and the transport (shared memory, TCP).
 *
 * Data-parallel SGD with R ranks, each holding B/R of a batch of B samples:
 *
 *   g = 1/B sum_{b<B} grad l_b = 1/R sum_{r<R} g_r,   g_r = R/B sum_{b in r} grad l_b
 *
 * so the mean of the ranks' batch-mean gradients is the gradient of the
 * whole batch, and every rank applies the same update to the same
 * parameters. Built without MPI (no USAGI_HAVE_MPI) the file gives one rank.
 */
#include "usagi/dist.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usagi/autograd.h"

#ifdef USAGI_HAVE_MPI
#include <mpi.h>
#include <dlfcn.h>
#include "watch.h"
#endif

#define DEFAULT_BUCKET ((size_t)25 << 20)   /* 25 MiB, PyTorch DDP's default */

/* Five minutes: long enough for what a healthy rank can make the others
 * wait for -- a slow first step (allocations, page faults, OpenBLAS
 * warming up), rank 0 writing a large checkpoint or results.h5 while the
 * others wait in the next collective, a loaded shared machine -- and short
 * enough that a stopped rank costs minutes of the job, not its whole
 * allocation. */
#define DEFAULT_TIMEOUT 300.0

static int initialized;        /* 0 not yet, 1 done, -1 failed */
static int world_rank, world_size = 1;
static bool using_mpi;
static int last_buckets;
static double timeout_s = DEFAULT_TIMEOUT;

/* ==== Start and stop ====================================================== */

/* Started by a launcher: mpirun (OpenMPI, PMIx) or a PMI-1 one (MPICH's). */
static int launched_size(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v) v = getenv("PMI_SIZE");
    if (v) return atoi(v);
    return getenv("PMIX_RANK") ? 2 : 0;   /* PMIx alone: MPI will say */
}

bool usg_dist_compiled(void)
{
#ifdef USAGI_HAVE_MPI
    return true;
#else
    return false;
#endif
}

#ifdef USAGI_HAVE_MPI
static usg_status mpi_fail(int rc, const char *fn)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) { strcpy(msg, "unknown error"); }
    return usg_fail(USG_IO, "%s: MPI failed: %s", fn, msg);
}

static void at_exit(void) { usg_dist_finalize(); }

static usg_status start_mpi(void)
{
    int flag = 0, provided;
    /* Lua loads this library with RTLD_LOCAL; OpenMPI's own components,
     * which it dlopens, need libmpi's symbols global. */
    void *h = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    (void)h;                                  /* kept open for the process */
    MPI_Initialized(&flag);
    if (!flag) {
        /* OpenMPI's progress loop spins on the core while a rank waits
         * for a message. Between machines, over TCP, that spinning steals
         * the time the kernel and the other processes on the core need:
         * between two network namespaces on 2 loaded vCPUs an allreduce of
         * 4 floats took 9.1 ms spinning and 0.14 ms yielding, 1 MiB 25.9
         * against 1.7 ms (scripts/usagi/RUNS.md, "Several machines"), and
         * against a TCP round trip a yield costs nothing. On one machine,
         * over shared memory, spinning is the faster (0.003 against 0.016
         * ms) and OpenMPI yields by itself when the ranks outnumber the
         * slots; so usagi asks for the yield only when the job spans
         * machines (fewer ranks here than in all), and a value the user
         * gave (mpirun --mca, the variable) wins. */
        const char *all = getenv("OMPI_COMM_WORLD_SIZE"), *here = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        if (all && here && atoi(here) > 0 && atoi(here) < atoi(all))
            setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.init");
        atexit(at_exit);
    }
    /* errors come back as codes (and then as usagi errors), not exits */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    usg_status s = usg_dist_watch_start();
    if (s != USG_OK) return s;
    using_mpi = true;
    return USG_OK;
}
#endif

/* ==== Timeout ============================================================= */

static usg_status check_timeout(double seconds, const char *fn, const char *arg)
{
    if (!(seconds >= 0) || isinf(seconds))
        return usg_fail(USG_ARG, "%s: %s must be a number of seconds >= 0 (0: wait forever), "
                        "got %g", fn, arg, seconds);
    return USG_OK;
}

/* USAGI_DIST_TIMEOUT, if set, replaces the default (before MPI starts, so
 * a typo is an error on every rank at once). */
static usg_status timeout_from_env(void)
{
    const char *v = getenv("USAGI_DIST_TIMEOUT");
    if (!v || !*v) return USG_OK;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0) || isinf(x))
        return usg_fail(USG_ARG, "dist.init: USAGI_DIST_TIMEOUT must be a number of seconds "
                        ">= 0 (0: wait forever), got '%.40s'", v);
    timeout_s = x;
    return USG_OK;
}

/* Both start with usg_dist_init, so that the variable is read before a
 * value set here, which then wins. */
usg_status usg_dist_set_timeout(double seconds)
{
    usg_status s = check_timeout(seconds, "dist.set_timeout", "seconds");
    if (s == USG_OK) s = usg_dist_init();
    if (s == USG_OK) timeout_s = seconds;
    return s;
}

double usg_dist_timeout(void)
{
    usg_dist_init();
    return timeout_s;
}

usg_status usg_dist_init(void)
{
    if (initialized == 1) return USG_OK;
    if (initialized == -1) return usg_fail(USG_IO, "dist.init: MPI failed to start before");
    const char *mode = getenv("USAGI_DIST");
    int launched = launched_size();
    bool off = mode && strcmp(mode, "off") == 0, on = mode && strcmp(mode, "on") == 0;
    usg_status s = timeout_from_env();
    if (s != USG_OK) {
        initialized = -1;
        return s;
    }
    if (off || (!on && launched == 0)) {
        world_rank = 0, world_size = 1;
    } else {
#ifdef USAGI_HAVE_MPI
        s = start_mpi();
#else
        if (launched > 1)
            s = usg_fail(USG_ARG, "dist.init: started by an MPI launcher with %d ranks, but this "
                         "usagi was built without MPI (USAGI_MPI=OFF); rebuild with "
                         "libopenmpi-dev installed, or set USAGI_DIST=off to run each rank alone",
                         launched);
#endif
    }
    initialized = s == USG_OK ? 1 : -1;
    if (s != USG_OK) world_rank = 0, world_size = 1;
    return s;
}

bool usg_dist_active(void) { return usg_dist_init() == USG_OK && using_mpi; }
int usg_dist_rank(void) { return usg_dist_init() == USG_OK ? world_rank : 0; }
int usg_dist_size(void) { return usg_dist_init() == USG_OK ? world_size : 1; }
int usg_dist_last_buckets(void) { return last_buckets; }

void usg_dist_finalize(void)
{
#ifdef USAGI_HAVE_MPI
    int started = 0, done = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&done);
    if (!started || done) return;
    if (using_mpi) {
        /* MPI_Finalize waits for every rank and cannot time out: a barrier
         * that can comes first, so a rank stopped before its end does not
         * keep the others here forever */
        MPI_Request req;
        usg_dist_watch_arrive(USG_DIST_FINAL);
        if (MPI_Ibarrier(MPI_COMM_WORLD, &req) == MPI_SUCCESS) usg_dist_watch_wait(1, &req);
        usg_dist_watch_stop();
    }
    MPI_Finalize();
#endif
}

void usg_dist_abort(int code)
{
#ifdef USAGI_HAVE_MPI
    if (using_mpi) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    (void)code;
}

/* ==== Checks ============================================================== */

static usg_status check_tensor(const usg_tensor *t, const char *fn)
{
    if (!t) return usg_fail(USG_ARG, "%s: the tensor is NULL", fn);
    if (!usg_tensor_is_contiguous(t))
        return usg_fail(USG_ARG, "%s: the tensor must be contiguous (use t:contiguous())", fn);
    if (usg_tensor_numel(t) > INT32_MAX)
        return usg_fail(USG_ARG, "%s: %lld elements, more than one message holds (%d)", fn,
                        (long long)usg_tensor_numel(t), INT32_MAX);
    return USG_OK;
}

static usg_status check_op(const usg_tensor *t, usg_dist_op op, const char *fn)
{
    if (op != USG_DIST_SUM && op != USG_DIST_MEAN)
        return usg_fail(USG_ARG, "%s: op must be sum or mean, got %d", fn, (int)op);
    if (op == USG_DIST_MEAN && !usg_dtype_is_float(t->dtype))
        return usg_fail(USG_TYPE, "%s: mean needs an f32 or f64 tensor, got %s", fn,
                        usg_dtype_name(t->dtype));
    return USG_OK;
}

#ifdef USAGI_HAVE_MPI
/* x[0..n) *= 1/R, the mean from the sum (R a power of two: exact) */
static void scale(void *x, usg_dtype dt, int64_t n, int R)
{
    if (dt == USG_F32) {
        float *p = x, k = 1.0f / (float)R;
        for (int64_t i = 0; i < n; i++) p[i] *= k;
    } else if (dt == USG_F64) {
        double *p = x, k = 1.0 / (double)R;
        for (int64_t i = 0; i < n; i++) p[i] *= k;
    }
}

static MPI_Datatype mpi_type(usg_dtype dt)
{
    return dt == USG_F32 ? MPI_FLOAT : dt == USG_F64 ? MPI_DOUBLE : MPI_INT32_T;
}
#endif

/* ==== Collectives ========================================================= */

usg_status usg_dist_barrier(void)
{
    usg_status s = usg_dist_init();
    if (s != USG_OK || !using_mpi) return s;
#ifdef USAGI_HAVE_MPI
    MPI_Request req;
    usg_dist_watch_arrive(USG_DIST_BARRIER);
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS) rc = usg_dist_watch_wait(1, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.barrier");
#endif
    return USG_OK;
}

usg_status usg_dist_broadcast(usg_tensor *t, int root)
{
    usg_status s = usg_dist_init();
    if (s == USG_OK) s = check_tensor(t, "dist.broadcast");
    if (s != USG_OK) return s;
    if (root < 0 || root >= world_size)
        return usg_fail(USG_ARG, "dist.broadcast: root must be a rank 0..%d, got %d",
                        world_size - 1, root);
    if (!using_mpi) return USG_OK;
#ifdef USAGI_HAVE_MPI
    MPI_Request req;
    usg_dist_watch_arrive(USG_DIST_BROADCAST);
    int rc = MPI_Ibcast(usg_tensor_data(t), (int)usg_tensor_numel(t), mpi_type(t->dtype), root,
                        MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS) rc = usg_dist_watch_wait(1, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.broadcast");
    t->storage->version++;
#endif
    return USG_OK;
}

/* Bytes go in pieces of 1 GiB: MPI counts in int, and a checkpoint or a
 * run directory shipped to rank 0 may be larger than one message holds. */
#define BYTES_PIECE ((size_t)1 << 30)

usg_status usg_dist_broadcast_bytes(void *p, size_t n, int root)
{
    usg_status s = usg_dist_init();
    if (s != USG_OK) return s;
    if (!p && n > 0) return usg_fail(USG_ARG, "dist.broadcast_bytes: the buffer is NULL");
    if (root < 0 || root >= world_size)
        return usg_fail(USG_ARG, "dist.broadcast_bytes: root must be a rank 0..%d, got %d",
                        world_size - 1, root);
    if (!using_mpi) return USG_OK;
#ifdef USAGI_HAVE_MPI
    for (size_t at = 0; at < n; at += BYTES_PIECE) {
        size_t k = n - at < BYTES_PIECE ? n - at : BYTES_PIECE;
        MPI_Request req;
        usg_dist_watch_arrive(USG_DIST_BROADCAST);
        int rc = MPI_Ibcast((char *)p + at, (int)k, MPI_BYTE, root, MPI_COMM_WORLD, &req);
        if (rc == MPI_SUCCESS) rc = usg_dist_watch_wait(1, &req);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.broadcast_bytes");
    }
#endif
    return USG_OK;
}

usg_status usg_dist_allreduce(usg_tensor *t, usg_dist_op op)
{
    usg_tensor *one[1] = {t};
    usg_status s = check_tensor(t, "dist.allreduce");
    if (s != USG_OK) return s;
    return usg_dist_allreduce_many(one, 1, op, 0);
}

/* ==== Bucketed allreduce ================================================== */

/* Buckets: runs of consecutive tensors of one dtype whose bytes add up to
 * at most bucket_bytes, packed into one region of a scratch buffer that
 * lives as long as the process (so a training step allocates nothing); a
 * tensor of bucket_bytes or more is a bucket alone, reduced where it is.
 * Each bucket's MPI_Iallreduce starts as soon as it is packed, so the
 * network works on bucket k while the CPU packs bucket k+1; the unpacking
 * (with the 1/R of the mean) waits for each in turn. */
#ifdef USAGI_HAVE_MPI
typedef struct bucket {
    int first, last;        /* tensors [first, last) */
    usg_dtype dtype;
    int64_t count;          /* elements */
    size_t offset;          /* bytes into the scratch, or SIZE_MAX: in place */
} bucket;

static void *scratch;
static size_t scratch_bytes;

static usg_status plan(bucket **out, int *nb, usg_tensor *const *ts, int n, size_t cap,
                       size_t *total)
{
    bucket *b = usg_alloc((size_t)(n > 0 ? n : 1) * sizeof *b);
    if (!b) return USG_NOMEM;
    int k = -1;
    size_t packed = 0;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        size_t bytes = (size_t)usg_tensor_numel(ts[i]) * usg_dtype_size(ts[i]->dtype);
        bool alone = bytes >= cap;
        bool join = k >= 0 && !alone && b[k].offset != SIZE_MAX && b[k].dtype == ts[i]->dtype &&
                    (size_t)b[k].count * usg_dtype_size(b[k].dtype) + bytes <= cap;
        if (join) {
            b[k].last = i + 1;
            b[k].count += usg_tensor_numel(ts[i]);
        } else {
            k++;
            b[k] = (bucket){i, i + 1, ts[i]->dtype, usg_tensor_numel(ts[i]),
                            alone ? SIZE_MAX : packed};
        }
        if (!alone) packed += (bytes + 63) & ~(size_t)63;
    }
    *out = b, *nb = k + 1, *total = packed;
    return USG_OK;
}

static void pack(const bucket *b, usg_tensor *const *ts, char *dst, bool in)
{
    for (int i = b->first; i < b->last; i++) {
        if (!ts[i]) continue;
        size_t bytes = (size_t)usg_tensor_numel(ts[i]) * usg_dtype_size(ts[i]->dtype);
        if (in) memcpy(dst, usg_tensor_data(ts[i]), bytes);
        else memcpy(usg_tensor_data(ts[i]), dst, bytes);
        dst += bytes;
    }
}
#endif

usg_status usg_dist_allreduce_many(usg_tensor *const *ts, int n, usg_dist_op op,
                                   size_t bucket_bytes)
{
    usg_status s = usg_dist_init();
    if (s != USG_OK) return s;
    if (n < 0 || (n > 0 && !ts)) return usg_fail(USG_ARG, "dist.allreduce: bad tensor list");
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if ((s = check_tensor(ts[i], "dist.allreduce")) != USG_OK) return s;
        if ((s = check_op(ts[i], op, "dist.allreduce")) != USG_OK) return s;
    }
    last_buckets = 0;
    if (!using_mpi || world_size == 1) return USG_OK;   /* the sum and mean of one */
#ifdef USAGI_HAVE_MPI
    bucket *b;
    int nb;
    size_t total;
    if ((s = plan(&b, &nb, ts, n, bucket_bytes ? bucket_bytes : DEFAULT_BUCKET, &total)) != USG_OK)
        return s;
    if (total > scratch_bytes) {
        usg_free(scratch);
        scratch_bytes = 0;
        if (!(scratch = usg_alloc(total))) { usg_free(b); return USG_NOMEM; }
        scratch_bytes = total;
    }
    MPI_Request *req = usg_alloc((size_t)(nb > 0 ? nb : 1) * sizeof *req);
    if (!req) { usg_free(b); return USG_NOMEM; }
    usg_dist_watch_arrive(USG_DIST_ALLREDUCE);
    int rc = MPI_SUCCESS, started = 0;
    for (int k = 0; k < nb && rc == MPI_SUCCESS; k++, started++) {
        void *buf = b[k].offset == SIZE_MAX ? usg_tensor_data(ts[b[k].first])
                                            : (char *)scratch + b[k].offset;
        if (b[k].offset != SIZE_MAX) pack(&b[k], ts, buf, true);
        rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)b[k].count, mpi_type(b[k].dtype), MPI_SUM,
                            MPI_COMM_WORLD, &req[k]);
        int done;   /* let the earlier buckets progress while this one is packed */
        if (rc == MPI_SUCCESS && k > 0) MPI_Testall(k, req, &done, MPI_STATUSES_IGNORE);
    }
    if (rc != MPI_SUCCESS) started--;
    for (int k = 0; k < started; k++) {
        int w = usg_dist_watch_wait(1, &req[k]);
        if (rc == MPI_SUCCESS) rc = w;
        if (rc != MPI_SUCCESS) continue;
        void *buf = b[k].offset == SIZE_MAX ? usg_tensor_data(ts[b[k].first])
                                            : (char *)scratch + b[k].offset;
        if (op == USG_DIST_MEAN) scale(buf, b[k].dtype, b[k].count, world_size);
        if (b[k].offset != SIZE_MAX) pack(&b[k], ts, buf, false);
        for (int i = b[k].first; i < b[k].last; i++)
            if (ts[i]) ts[i]->storage->version++;
    }
    last_buckets = nb;
    usg_free(req);
    usg_free(b);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.allreduce");
#endif
    return USG_OK;
}

/* ==== The reducer: averaging overlapped with the backward ================= */

typedef struct rbucket {
    int first, last;        /* members[first..last) */
    usg_dtype dtype;
    int64_t count;          /* elements */
    size_t offset;          /* bytes into buf, or SIZE_MAX: alone, in place */
    int pending;            /* members whose gradient is not complete yet */
} rbucket;

typedef struct addr { const usg_tensor *t; int i; } addr;

struct usg_dist_reducer {
    int n;                  /* parameters, retained, in the caller's order */
    usg_tensor **params;
    addr *by_addr;          /* sorted by address: the hook's lookup */
    int *bucket_of;         /* param -> bucket */
    bool *ready;            /* this step */
    int nb;
    rbucket *b;             /* in launch order: the last parameters first */
    int *members;           /* param indices, bucket after bucket */
    void *buf;              /* the packed buckets */
    size_t bytes;
    int next;               /* the next bucket to start */
    int early;              /* started during the backward */
    bool armed;
    usg_status error;
#ifdef USAGI_HAVE_MPI
    MPI_Request *req;
#endif
};

static int cmp_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const addr *)a)->t, y = (uintptr_t)((const addr *)b)->t;
    return x < y ? -1 : x > y;
}

void usg_dist_reducer_free(usg_dist_reducer *r)
{
    if (!r) return;
    if (r->armed) usg_set_grad_ready_hook(NULL, NULL);
    for (int i = 0; i < r->n; i++) usg_tensor_release(r->params[i]);
    usg_free(r->params), usg_free(r->by_addr), usg_free(r->bucket_of), usg_free(r->ready);
    usg_free(r->b), usg_free(r->members), usg_free(r->buf);
#ifdef USAGI_HAVE_MPI
    usg_free(r->req);
#endif
    usg_free(r);
}

/* Buckets over the parameters in reverse order, as plan() cuts them. */
static void plan_reducer(usg_dist_reducer *r, size_t cap)
{
    int k = -1, m = 0;
    size_t packed = 0;
    for (int i = r->n - 1; i >= 0; i--, m++) {
        const usg_tensor *p = r->params[i];
        size_t bytes = (size_t)usg_tensor_numel(p) * usg_dtype_size(p->dtype);
        bool alone = bytes >= cap;
        bool join = k >= 0 && !alone && r->b[k].offset != SIZE_MAX && r->b[k].dtype == p->dtype &&
                    (size_t)r->b[k].count * usg_dtype_size(p->dtype) + bytes <= cap;
        if (join) r->b[k].last = m + 1, r->b[k].count += usg_tensor_numel(p);
        else r->b[++k] = (rbucket){m, m + 1, p->dtype, usg_tensor_numel(p), alone ? SIZE_MAX : packed, 0};
        r->members[m] = i;
        r->bucket_of[i] = k;
        if (!alone) packed += (bytes + 63) & ~(size_t)63;
    }
    r->nb = k + 1, r->bytes = packed;
}

usg_status usg_dist_reducer_new(usg_dist_reducer **out, usg_tensor *const *params, int n,
                                size_t bucket_bytes)
{
    *out = NULL;
    usg_status s = usg_dist_init();
    if (s != USG_OK) return s;
    if (n < 0 || (n > 0 && !params)) return usg_fail(USG_ARG, "dist.reducer: bad parameter list");
    for (int i = 0; i < n; i++) {
        if (!params[i]) return usg_fail(USG_ARG, "dist.reducer: params[%d] is NULL", i + 1);
        if (!usg_dtype_is_float(params[i]->dtype))
            return usg_fail(USG_TYPE, "dist.reducer: params[%d] is %s; parameters are f32 or f64",
                            i + 1, usg_dtype_name(params[i]->dtype));
        if (usg_tensor_numel(params[i]) > INT32_MAX)
            return usg_fail(USG_ARG, "dist.reducer: params[%d] has more elements than one "
                            "message holds", i + 1);
    }
    usg_dist_reducer *r = usg_alloc(sizeof *r);
    if (!r) return USG_NOMEM;
    memset(r, 0, sizeof *r);
    size_t m = (size_t)(n > 0 ? n : 1);
    r->params = usg_alloc(m * sizeof *r->params);
    r->by_addr = usg_alloc(m * sizeof *r->by_addr);
    r->bucket_of = usg_alloc(m * sizeof *r->bucket_of);
    r->ready = usg_alloc(m * sizeof *r->ready);
    r->b = usg_alloc(m * sizeof *r->b);
    r->members = usg_alloc(m * sizeof *r->members);
#ifdef USAGI_HAVE_MPI
    r->req = usg_alloc(m * sizeof *r->req);
    if (!r->req) { usg_dist_reducer_free(r); return USG_NOMEM; }
#endif
    if (!r->params || !r->by_addr || !r->bucket_of || !r->ready || !r->b || !r->members) {
        usg_dist_reducer_free(r);
        return USG_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        usg_tensor_retain(params[i]);
        r->params[r->n++] = params[i];
        r->by_addr[i] = (addr){params[i], i};
    }
    qsort(r->by_addr, (size_t)n, sizeof *r->by_addr, cmp_addr);
    for (int i = 1; i < n; i++)
        if (r->by_addr[i].t == r->by_addr[i - 1].t) {
            int a = r->by_addr[i - 1].i, b = r->by_addr[i].i;
            usg_dist_reducer_free(r);
            return usg_fail(USG_ARG, "dist.reducer: params[%d] is params[%d] again",
                            (a > b ? a : b) + 1, (a < b ? a : b) + 1);
        }
    plan_reducer(r, bucket_bytes ? bucket_bytes : DEFAULT_BUCKET);
    if (r->bytes && !(r->buf = usg_alloc(r->bytes))) { usg_dist_reducer_free(r); return USG_NOMEM; }
    *out = r;
    return USG_OK;
}

int usg_dist_reducer_buckets(const usg_dist_reducer *r) { return r->nb; }
int usg_dist_reducer_early(const usg_dist_reducer *r) { return r->early; }

static void reset(usg_dist_reducer *r)
{
    for (int i = 0; i < r->n; i++) r->ready[i] = false;
    for (int k = 0; k < r->nb; k++) r->b[k].pending = r->b[k].last - r->b[k].first;
    r->next = 0, r->early = 0, r->error = USG_OK;
}

#ifdef USAGI_HAVE_MPI
static void *bucket_data(usg_dist_reducer *r, int k)
{
    return r->b[k].offset == SIZE_MAX ? usg_tensor_data(r->params[r->members[r->b[k].first]]->grad)
                                      : (char *)r->buf + r->b[k].offset;
}

/* Start bucket k: a parameter without a gradient gets zeros; pack; Iallreduce. */
static usg_status launch(usg_dist_reducer *r, int k)
{
    rbucket *b = &r->b[k];
    char *dst = b->offset == SIZE_MAX ? NULL : (char *)r->buf + b->offset;
    for (int m = b->first; m < b->last; m++) {
        usg_tensor *p = r->params[r->members[m]];
        usg_status s;
        if (!p->grad && (s = usg_tensor_zeros(&p->grad, p->dtype, p->ndim, p->shape)) != USG_OK)
            return s;
        if (!usg_tensor_is_contiguous(p->grad))     /* autograd makes them contiguous */
            return usg_fail(USG_ARG, "dist.reducer: a gradient is not contiguous");
        size_t bytes = (size_t)usg_tensor_numel(p) * usg_dtype_size(p->dtype);
        if (dst) memcpy(dst, usg_tensor_data(p->grad), bytes), dst += bytes;
    }
    int rc = MPI_Iallreduce(MPI_IN_PLACE, bucket_data(r, k), (int)b->count, mpi_type(b->dtype),
                            MPI_SUM, MPI_COMM_WORLD, &r->req[k]);
    return rc == MPI_SUCCESS ? USG_OK : mpi_fail(rc, "dist.reducer");
}

/* Start every bucket, in order, whose members are all done. */
static void launch_ready(usg_dist_reducer *r, bool all)
{
    while (r->error == USG_OK && r->next < r->nb && (all || r->b[r->next].pending == 0)) {
        r->error = launch(r, r->next);
        if (r->error == USG_OK) r->next++;
    }
}

static void on_ready(usg_tensor *leaf, void *ud)
{
    usg_dist_reducer *r = ud;
    addr key = {leaf, 0};
    addr *a = bsearch(&key, r->by_addr, (size_t)r->n, sizeof key, cmp_addr);
    if (!a || r->ready[a->i]) return;             /* not ours, or seen */
    r->ready[a->i] = true;
    if (--r->b[r->bucket_of[a->i]].pending > 0) return;
    int before = r->next;
    launch_ready(r, false);
    r->early += r->next - before;
    int done;                                      /* let the started ones progress */
    if (r->next > 0) MPI_Testall(r->next, r->req, &done, MPI_STATUSES_IGNORE);
}
#endif

usg_status usg_dist_reducer_begin(usg_dist_reducer *r)
{
    if (!r) return usg_fail(USG_ARG, "dist.reducer: NULL reducer");
    reset(r);
    if (!using_mpi || world_size == 1) return USG_OK;
#ifdef USAGI_HAVE_MPI
    usg_set_grad_ready_hook(on_ready, r);
    r->armed = true;
#endif
    return USG_OK;
}

usg_status usg_dist_reducer_finish(usg_dist_reducer *r)
{
    if (!r) return usg_fail(USG_ARG, "dist.reducer: NULL reducer");
    if (r->armed) usg_set_grad_ready_hook(NULL, NULL);
    else reset(r);                                 /* not begun: all at once */
    r->armed = false;
    if (!using_mpi || world_size == 1) return USG_OK;
#ifdef USAGI_HAVE_MPI
    usg_dist_watch_arrive(USG_DIST_GRADIENTS);
    launch_ready(r, true);
    int rc = MPI_SUCCESS;
    for (int k = 0; k < r->next; k++) {           /* all started ones, even after an error */
        int w = usg_dist_watch_wait(1, &r->req[k]);
        if (rc == MPI_SUCCESS) rc = w;
        if (rc != MPI_SUCCESS || r->error != USG_OK) continue;
        rbucket *b = &r->b[k];
        void *data = bucket_data(r, k);
        scale(data, b->dtype, b->count, world_size);
        const char *src = data;
        for (int m = b->first; m < b->last; m++) {
            usg_tensor *g = r->params[r->members[m]]->grad;
            size_t bytes = (size_t)usg_tensor_numel(g) * usg_dtype_size(g->dtype);
            if (b->offset != SIZE_MAX) memcpy(usg_tensor_data(g), src, bytes), src += bytes;
            g->storage->version++;
        }
    }
    last_buckets = r->nb;
    if (r->error != USG_OK) return r->error;
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.reducer");
#endif
    return USG_OK;
}

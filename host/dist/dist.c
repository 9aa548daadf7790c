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

#include <stdlib.h>
#include <string.h>

#ifdef USAGI_HAVE_MPI
#include <mpi.h>
#include <dlfcn.h>
#endif

#define DEFAULT_BUCKET ((size_t)25 << 20)   /* 25 MiB, PyTorch DDP's default */

static int initialized;        /* 0 not yet, 1 done, -1 failed */
static int world_rank, world_size = 1;
static bool using_mpi;
static int last_buckets;

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
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.init");
        atexit(at_exit);
    }
    /* errors come back as codes (and then as usagi errors), not exits */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    using_mpi = true;
    return USG_OK;
}
#endif

usg_status usg_dist_init(void)
{
    if (initialized == 1) return USG_OK;
    if (initialized == -1) return usg_fail(USG_IO, "dist.init: MPI failed to start before");
    const char *mode = getenv("USAGI_DIST");
    int launched = launched_size();
    bool off = mode && strcmp(mode, "off") == 0, on = mode && strcmp(mode, "on") == 0;
    usg_status s = USG_OK;
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
    if (started && !done) MPI_Finalize();
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
    int rc = MPI_Barrier(MPI_COMM_WORLD);
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
    int rc = MPI_Bcast(usg_tensor_data(t), (int)usg_tensor_numel(t), mpi_type(t->dtype), root,
                       MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "dist.broadcast");
    t->storage->version++;
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
        int w = MPI_Wait(&req[k], MPI_STATUS_IGNORE);
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

/*
 * usagi/core.h -- the tensor core of libusagi: status codes, dtypes,
 * storage, tensors and their views.
 *
 * This header is public: plugins include it. It never includes lua.h; the
 * core knows nothing of Lua, HDF5 or stdout.
 *
 * Layout rule: element (i0, ..., i{n-1}) of a tensor lives at
 *   storage->data + (offset + sum_k i_k * stride[k]) * usg_dtype_size(dtype)
 * with 0-based indices; strides are in elements and may be 0 (expand) but
 * never negative. A tensor is contiguous when its strides are the row-major
 * strides of its shape.
 *
 * Ownership: tensors and storages are reference counted. A function that
 * returns a tensor through `usg_tensor **out` hands the caller one reference,
 * which the caller gives back with usg_tensor_release(). Views retain the
 * storage they look at, so a view outlives its parent safely.
 *
 * Errors: every entry point that user input can reach returns usg_status;
 * on failure *out is left NULL and usg_errmsg() says what went wrong, naming
 * the function and the argument. Nothing aborts.
 */
#ifndef USAGI_CORE_H
#define USAGI_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USG_VERSION "0.1.0"
#define USG_ABI_VERSION 2    /* bump when a public struct or signature changes */
#define USG_MAX_DIMS 8
#define USG_ALIGN 64         /* storage alignment in bytes */

/* USG_API marks what libusagi, libusagi_store, libusagi_dist and the binding
 * export: they are built with hidden visibility, so a function without it
 * stays inside its library (tests/cli/exports.sh holds the two lists equal). */
#if defined(__GNUC__)
#define USG_API __attribute__((visibility("default")))
#define USG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define USG_API
#define USG_PRINTF(f, a)
#endif

/* ==== Status ============================================================ */

typedef enum usg_status {
    USG_OK = 0,
    USG_NOMEM,   /* allocation failed or size absurd */
    USG_SHAPE,   /* shapes do not fit */
    USG_TYPE,    /* wrong dtype */
    USG_ARG,     /* any other bad argument (index out of range, ...) */
    USG_IO,      /* file system */
    USG_HDF5,    /* the HDF5 library said no */
    USG_ABI      /* plugin built against another ABI */
} usg_status;

/* The message of the last failure on this thread ("" when none). */
USG_API const char *usg_errmsg(void);
/* Set the message and return `s`, so failures read `return usg_fail(...)`. */
USG_API usg_status usg_fail(usg_status s, const char *fmt, ...) USG_PRINTF(2, 3);
USG_API const char *usg_status_name(usg_status s);

/* ==== Threads =========================================================== */

/* The core's threads (--threads; default: what OpenBLAS would start with,
 * OPENBLAS_NUM_THREADS or all cores): large products and the loops below
 * are split over them, OpenBLAS running single-threaded inside each
 * (parallel.c). USG_ARG outside 1..1024. */
USG_API usg_status usg_set_num_threads(int n);
USG_API int usg_get_num_threads(void);
/* The BLAS this process runs on, for provenance: OpenBLAS's build
 * configuration ("OpenBLAS 0.3.21 DYNAMIC_ARCH ...") and the kernel set it
 * chose for this CPU ("Haswell"). The strings belong to OpenBLAS. */
USG_API const char *usg_blas_config(void);
USG_API const char *usg_blas_core(void);

/* fn(ctx, lo, hi) over parts of [0, n) that together cover it once, on up
 * to usg_get_num_threads() threads (the caller's and the core's workers),
 * each part at least `grain` iterations; returns when all are done. The
 * parts depend on n, grain and the thread count alone (a call made while
 * another runs runs the same parts one after another), so a loop whose
 * iterations write disjoint elements and combine nothing gives the same
 * bits on any count, and any loop the same bits on a given count. */
typedef void (*usg_range_fn)(void *ctx, int64_t lo, int64_t hi);
USG_API void usg_parallel_for(int64_t n, int64_t grain, usg_range_fn fn, void *ctx);

/* ==== Memory ============================================================ */

/* 64-byte aligned allocation; NULL (with USG_NOMEM set) on failure or on a
 * size past USG_MAX_BYTES. Freed with usg_free. */
#define USG_MAX_BYTES ((size_t)1 << 40)
USG_API void *usg_alloc(size_t nbytes);
USG_API void usg_free(void *p);
/* Fault injection for tests: make the n-th allocation from now fail
 * (n = 1: the next one); 0 turns it off. */
USG_API void usg_alloc_fail_after(long n);
/* Lower the cap on one allocation from USG_MAX_BYTES to nbytes (0 puts it
 * back); returns the previous cap. For sandboxes and fuzzers, which must
 * not ask the system for gigabytes: past the cap usg_alloc fails with
 * USG_NOMEM as it does for an absurd size. */
USG_API size_t usg_set_alloc_limit(size_t nbytes);
/* Bytes currently held by usagi allocations (for leak tests and the GC). */
USG_API size_t usg_alloc_live_bytes(void);

/* ==== Dtypes ============================================================ */

typedef enum usg_dtype { USG_F32 = 0, USG_F64 = 1, USG_I32 = 2 } usg_dtype;

USG_API size_t usg_dtype_size(usg_dtype dt);
USG_API const char *usg_dtype_name(usg_dtype dt);        /* "f32", "f64", "i32" */
USG_API bool usg_dtype_parse(const char *name, usg_dtype *dt);
USG_API bool usg_dtype_is_float(usg_dtype dt);
/* The dtype a binary op between a and b computes in: f64 > f32 > i32. */
USG_API usg_dtype usg_dtype_promote(usg_dtype a, usg_dtype b);

/* ==== Storage and tensor ================================================ */

typedef struct usg_storage {
    void *data;          /* USG_ALIGN-aligned, owned */
    size_t nbytes;
    long refcount;
    long version;        /* bumped by every in-place write (autograd checks it) */
} usg_storage;

struct usg_node;

typedef struct usg_tensor {
    usg_storage *storage;
    usg_dtype dtype;
    int ndim;                        /* 0 = a scalar with one element */
    int64_t shape[USG_MAX_DIMS];
    int64_t stride[USG_MAX_DIMS];    /* in elements, >= 0 */
    int64_t offset;                  /* in elements */
    long refcount;
    /* autograd (see autograd.h); views and new tensors start with none */
    bool requires_grad;
    struct usg_tensor *grad;         /* accumulated gradient of a leaf, or NULL */
    struct usg_node *grad_fn;        /* the op that made this tensor; NULL for a leaf */
    int output_nr;                   /* which output of grad_fn this is */
} usg_tensor;

USG_API void usg_tensor_retain(usg_tensor *t);
USG_API void usg_tensor_release(usg_tensor *t);   /* NULL is fine */

/* A new contiguous tensor; `empty` leaves the values undefined. */
USG_API usg_status usg_tensor_empty(usg_tensor **out, usg_dtype dt, int ndim,
                                    const int64_t *shape);
USG_API usg_status usg_tensor_zeros(usg_tensor **out, usg_dtype dt, int ndim,
                                    const int64_t *shape);
USG_API usg_status usg_tensor_full(usg_tensor **out, usg_dtype dt, int ndim,
                                   const int64_t *shape, double value);
/* The shape of `like` and dtype `dt`, values undefined. */
USG_API usg_status usg_tensor_empty_like(usg_tensor **out, const usg_tensor *like,
                                         usg_dtype dt);
/* From a C array of doubles (n = product of shape), converted to dt. */
USG_API usg_status usg_tensor_from_doubles(usg_tensor **out, usg_dtype dt, int ndim,
                                           const int64_t *shape, const double *v);
/* A tensor of shape (ndim, shape) from n = numel unsigned bytes b[0..n),
 * each times scale, in dtype dt (how IDX images become tensors). The
 * caller guarantees n bytes. */
USG_API usg_status usg_tensor_from_bytes(usg_tensor **out, usg_dtype dt, int ndim,
                                         const int64_t *shape, const unsigned char *b,
                                         double scale);
USG_API usg_status usg_arange(usg_tensor **out, usg_dtype dt, double start,
                              double stop, double step);     /* [start, stop) */
USG_API usg_status usg_linspace(usg_tensor **out, usg_dtype dt, double start,
                                double stop, int64_t n);      /* both ends */
USG_API usg_status usg_eye(usg_tensor **out, usg_dtype dt, int64_t n, int64_t m);

USG_API int64_t usg_tensor_numel(const usg_tensor *t);
USG_API bool usg_tensor_is_contiguous(const usg_tensor *t);
/* Pointer to element 0 of the view (storage data + offset). */
USG_API void *usg_tensor_data(const usg_tensor *t);
/* Element at a 0-based index, as a double; no bounds check. */
USG_API double usg_tensor_get(const usg_tensor *t, const int64_t *idx);
USG_API void usg_tensor_set(usg_tensor *t, const int64_t *idx, double v);
/* Element at a flat row-major position of the logical shape (any strides). */
USG_API double usg_tensor_get_flat(const usg_tensor *t, int64_t i);

/* Typed loads and stores by dtype, one switch each: element i (counted in
 * elements, offset and strides already applied as the layout rule says) of
 * a storage's data, as a double. Inline, since printing and the binding's
 * table conversions call them once per element. */
static inline double usg_load(usg_dtype dt, const void *base, int64_t i)
{
    switch (dt) {
    case USG_F32: return ((const float *)base)[i];
    case USG_F64: return ((const double *)base)[i];
    default:      return ((const int32_t *)base)[i];
    }
}

/* Stores to i32 round toward zero, as PyTorch's .int(), and saturate at the
 * i32 range (NaN stores 0) so that no conversion is undefined. */
static inline int32_t usg_to_i32(double v)
{
    if (v != v) return 0;
    if (v >= 2147483647.0) return INT32_MAX;
    if (v <= -2147483648.0) return INT32_MIN;
    return (int32_t)v;
}

/* Does v, rounded toward zero, fit in i32 (NaN does not)? i32 arithmetic and conversions check
 * it and fail with usg_fail_i32 rather than wrap or saturate: a count or an
 * id that silently became another number is worse than an error. */
static inline bool usg_fits_i32(double v) { return v > -2147483649.0 && v < 2147483648.0; }

static inline void usg_store(usg_dtype dt, void *base, int64_t i, double v)
{
    switch (dt) {
    case USG_F32: ((float *)base)[i] = (float)v; break;
    case USG_F64: ((double *)base)[i] = v; break;
    default:      ((int32_t *)base)[i] = usg_to_i32(v); break;
    }
}

/* Shape as "(2, 3)" into buf; returns buf. */
USG_API char *usg_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);
USG_API bool usg_same_shape(const usg_tensor *a, const usg_tensor *b);

/* ==== Views (share storage, O(1)) ======================================= */
/* Dims are 0-based here; the Lua binding converts from 1-based. A negative
 * dim counts from the end (-1 = last) in every function taking a dim. */

/* New shape with the same numel; one entry may be -1. Fails with USG_SHAPE
 * when the strides cannot express it (use usg_reshape then). */
USG_API usg_status usg_view(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape);
/* As view, copying when it must. */
USG_API usg_status usg_reshape(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape);
USG_API usg_status usg_transpose(usg_tensor **out, usg_tensor *t, int d0, int d1);
USG_API usg_status usg_permute(usg_tensor **out, usg_tensor *t, const int *perm);
/* Elements start .. start+len-1 of dim (0-based start). */
USG_API usg_status usg_narrow(usg_tensor **out, usg_tensor *t, int dim, int64_t start, int64_t len);
/* Index i of dim, removing that dim. */
USG_API usg_status usg_select(usg_tensor **out, usg_tensor *t, int dim, int64_t i);
USG_API usg_status usg_unsqueeze(usg_tensor **out, usg_tensor *t, int dim);
/* dim = USG_ALL_DIMS removes every size-1 dim. */
#define USG_ALL_DIMS (-1000)
USG_API usg_status usg_squeeze(usg_tensor **out, usg_tensor *t, int dim);
/* Broadcast to `shape` (NumPy rules, size-1 dims get stride 0). */
USG_API usg_status usg_expand(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape);

/* ==== Copies and conversion ============================================= */

/* t itself (retained) when contiguous, else a contiguous copy. */
USG_API usg_status usg_contiguous(usg_tensor **out, usg_tensor *t);
USG_API usg_status usg_clone(usg_tensor **out, const usg_tensor *t);
/* t itself (retained) when already dt and contiguous, else a converted copy. */
USG_API usg_status usg_to_dtype(usg_tensor **out, usg_tensor *t, usg_dtype dt);
/* dst[...] = src, src broadcast to dst's shape, converting dtype. dst may be
 * a view; overlapping src and dst are handled by copying src first. */
USG_API usg_status usg_copy_(usg_tensor *dst, const usg_tensor *src);
/* USG_ARG, naming fn, when several elements of t share memory (a stride of
 * 0 on a dim of size > 1, as expand makes, or strides that alias): a write
 * into such a tensor lands on one memory cell several times, so copy_ would
 * keep only the last value and exp_ would apply exp twice. Every in-place
 * entry point of the core calls it before writing, as PyTorch refuses. */
USG_API usg_status usg_check_writable(const usg_tensor *t, const char *fn);
USG_API usg_status usg_fill_(usg_tensor *t, double v);

/* Broadcast shape of a and b into shape/ndim (NumPy rules). */
USG_API usg_status usg_broadcast_shape(int *ndim, int64_t *shape,
                                       int na, const int64_t *sa,
                                       int nb, const int64_t *sb);

#ifdef __cplusplus
}
#endif
#endif

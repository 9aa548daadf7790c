/*
 * tensor.c -- storage, tensors, views and copies: the data structure every
 * other part of usagi stands on.
 *
 * A tensor is a header (dtype, shape, strides, offset) over a reference-
 * counted storage; views make a new header over the same storage. Nothing
 * here computes math beyond element copies; see elementwise.c and friends.
 *
 * This file is the bottom of the core: it calls no other core source, and
 * every other one calls it. A tensor's grad_fn is dropped through the
 * release function the node carries (internal.h, usg_node_head), so the
 * tape in autograd.c stays above the tensors it records.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ==== Errors ============================================================ */

static _Thread_local char errbuf[512];

const char *usg_errmsg(void) { return errbuf; }

usg_status usg_fail(usg_status s, const char *fmt, ...)
{
    /* format into a local buffer first: callers prefix their name with
     * usg_fail(s, "%s: %s", fn, usg_errmsg()), reading errbuf as an argument */
    char tmp[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(errbuf, tmp, sizeof errbuf);
    return s;
}

const char *usg_status_name(usg_status s)
{
    static const char *names[] = {"ok", "out of memory", "shape", "type",
                                  "argument", "i/o", "hdf5", "abi"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}

/* ==== Memory ============================================================ */

/* The fault-injection counter and the live-byte count are process-wide;
 * atomics keep them right when plugins allocate from several threads. */
static long fail_after;
static size_t live_bytes;

void usg_alloc_fail_after(long n) { __atomic_store_n(&fail_after, n, __ATOMIC_SEQ_CST); }

static size_t alloc_limit = USG_MAX_BYTES;

size_t usg_set_alloc_limit(size_t nbytes)
{
    if (nbytes == 0 || nbytes > USG_MAX_BYTES) nbytes = USG_MAX_BYTES;
    return __atomic_exchange_n(&alloc_limit, nbytes, __ATOMIC_SEQ_CST);
}
size_t usg_alloc_live_bytes(void) { return __atomic_load_n(&live_bytes, __ATOMIC_SEQ_CST); }

/* Blocks come from plain malloc, over-asked by USG_ALIGN + 16 bytes and
 * aligned by hand: glibc's aligned_alloc bypasses its fast per-thread
 * cache, and a small op's five allocations then cost more than its math.
 * The two words in front of the aligned pointer hold the size (for the
 * live-byte count) and the distance back to what malloc gave. */
void *usg_alloc(size_t nbytes)
{
    if (__atomic_load_n(&fail_after, __ATOMIC_SEQ_CST) > 0 &&
        __atomic_sub_fetch(&fail_after, 1, __ATOMIC_SEQ_CST) == 0) {
        usg_fail(USG_NOMEM, "out of memory (injected failure, %zu bytes)", nbytes);
        return NULL;
    }
    size_t limit = __atomic_load_n(&alloc_limit, __ATOMIC_SEQ_CST);
    if (nbytes > limit) {
        usg_fail(USG_NOMEM, "out of memory: %zu bytes asked, the limit is %zu", nbytes, limit);
        return NULL;
    }
    char *base = malloc(nbytes + USG_ALIGN + 2 * sizeof(size_t));
    if (!base) {
        usg_fail(USG_NOMEM, "out of memory: %zu bytes", nbytes);
        return NULL;
    }
    uintptr_t first = (uintptr_t)(base + 2 * sizeof(size_t));
    char *p = (char *)((first + USG_ALIGN - 1) & ~(uintptr_t)(USG_ALIGN - 1));
    ((size_t *)p)[-1] = (size_t)(p - base);
    ((size_t *)p)[-2] = nbytes;
    __atomic_add_fetch(&live_bytes, nbytes, __ATOMIC_SEQ_CST);
    return p;
}

void usg_free(void *p)
{
    if (!p) return;
    __atomic_sub_fetch(&live_bytes, ((size_t *)p)[-2], __ATOMIC_SEQ_CST);
    free((char *)p - ((size_t *)p)[-1]);
}

/* ==== Dtypes ============================================================ */

size_t usg_dtype_size(usg_dtype dt) { return dt == USG_F64 ? 8 : 4; }
bool usg_dtype_is_float(usg_dtype dt) { return dt == USG_F32 || dt == USG_F64; }

const char *usg_dtype_name(usg_dtype dt)
{
    switch (dt) {
    case USG_F32: return "f32";
    case USG_F64: return "f64";
    case USG_I32: return "i32";
    }
    return "?";
}

bool usg_dtype_parse(const char *name, usg_dtype *dt)
{
    static const struct { const char *s; usg_dtype dt; } names[] = {
        {"f32", USG_F32}, {"float32", USG_F32}, {"float", USG_F32},
        {"f64", USG_F64}, {"float64", USG_F64}, {"double", USG_F64},
        {"i32", USG_I32}, {"int32", USG_I32}, {"int", USG_I32},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(name, names[i].s) == 0) { *dt = names[i].dt; return true; }
    return false;
}

usg_dtype usg_dtype_promote(usg_dtype a, usg_dtype b)
{
    if (a == USG_F64 || b == USG_F64) return USG_F64;
    if (a == USG_F32 || b == USG_F32) return USG_F32;
    return USG_I32;
}

/* ==== Shapes ============================================================ */

char *usg_shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
    return buf;
}

/* numel with sign and overflow checks: NUMEL_BAD for a negative size,
 * NUMEL_HUGE when the product of the nonzero sizes does not fit in int64 --
 * even if another size is 0, since strides are such products. */
#define NUMEL_BAD (-1)
#define NUMEL_HUGE (-2)
static int64_t shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    bool empty = false;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) return NUMEL_BAD;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) { empty = true; continue; }
        if (n > INT64_MAX / shape[d]) return NUMEL_HUGE;
        n *= shape[d];
    }
    return empty ? 0 : n;
}

int64_t usg_tensor_numel(const usg_tensor *t) { return shape_numel(t->ndim, t->shape); }

static void contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d] ? shape[d] : 1;
    }
}

bool usg_tensor_is_contiguous(const usg_tensor *t)
{
    int64_t s = 1;
    /* no elements: any strides will do (as PyTorch), and the strides that
     * contiguous_strides gives an empty shape must count as contiguous */
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0) return true;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

bool usg_same_shape(const usg_tensor *a, const usg_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

/* A 0-based index as the 1-based one users see, without overflow at the
 * top of the range (messages only). */
static long long one_based(int64_t i) { return i < INT64_MAX ? (long long)i + 1 : (long long)i; }

usg_status usg_check_dim(int *dim, int ndim, int ndim_plus, const char *fn)
{
    int d = usg_dim_norm(*dim, ndim, ndim_plus);
    if (d < 0)
        return usg_fail(USG_ARG, "%s: dim %lld out of range for a %d-D tensor", fn,
                        *dim >= 0 ? one_based(*dim) : (long long)*dim, ndim);
    *dim = d;
    return USG_OK;
}

usg_status usg_broadcast_shape(int *ndim, int64_t *shape, int na, const int64_t *sa,
                               int nb, const int64_t *sb)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t x = i < n - na ? 1 : sa[i - (n - na)];
        int64_t y = i < n - nb ? 1 : sb[i - (n - nb)];
        if (x != y && x != 1 && y != 1) {
            char b1[128], b2[128];
            return usg_fail(USG_SHAPE, "shapes %s and %s do not broadcast (dim %d: %lld vs %lld)",
                            usg_shape_str(b1, sizeof b1, na, sa),
                            usg_shape_str(b2, sizeof b2, nb, sb), i + 1,
                            (long long)x, (long long)y);
        }
        shape[i] = x == 1 ? y : x;
    }
    *ndim = n;
    return USG_OK;
}

/* ==== Lifetime ========================================================== */

static usg_storage *storage_new(size_t nbytes)
{
    usg_storage *s = usg_alloc(sizeof *s);
    if (!s) return NULL;
    s->data = usg_alloc(nbytes ? nbytes : 1);
    if (!s->data) { usg_free(s); return NULL; }
    s->nbytes = nbytes;
    s->refcount = 1;
    s->version = 0;
    return s;
}

static void storage_release(usg_storage *s)
{
    if (s && __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        usg_free(s->data);
        usg_free(s);
    }
}

void usg_tensor_retain(usg_tensor *t) { __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED); }

void usg_tensor_release(usg_tensor *t)
{
    if (t && __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        usg_tensor_release(t->grad);
        if (t->grad_fn) ((usg_node_head *)t->grad_fn)->release(t->grad_fn);
        storage_release(t->storage);
        usg_free(t);
    }
}

/* A header over `s` (retained) with the given geometry. */
static usg_status header_new(usg_tensor **out, usg_storage *s, usg_dtype dt, int ndim,
                             const int64_t *shape, const int64_t *stride, int64_t offset)
{
    usg_tensor *t = usg_alloc(sizeof *t);
    if (!t) return USG_NOMEM;
    memset(t, 0, sizeof *t);
    t->storage = s;
    __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
    t->dtype = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) { t->shape[d] = shape[d]; t->stride[d] = stride[d]; }
    t->offset = offset;
    t->refcount = 1;
    *out = t;
    return USG_OK;
}

/* usg_tensor_empty, with messages naming `fn` (the user-facing creator). */
static usg_status new_tensor(const char *fn, usg_tensor **out, usg_dtype dt, int ndim,
                             const int64_t *shape)
{
    *out = NULL;
    if (dt != USG_F32 && dt != USG_F64 && dt != USG_I32)
        return usg_fail(USG_TYPE, "%s: unknown dtype %d", fn, (int)dt);
    if (ndim < 0 || ndim > USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "%s: %d dims asked, at most %d allowed", fn, ndim,
                        USG_MAX_DIMS);
    int64_t n = shape_numel(ndim, shape);
    if (n == NUMEL_BAD || n == NUMEL_HUGE ||
        (uint64_t)n > USG_MAX_BYTES / usg_dtype_size(dt)) {
        char b[256];
        return usg_fail(n == NUMEL_BAD ? USG_SHAPE : USG_NOMEM,
                        "%s: shape %s is %s", fn, usg_shape_str(b, sizeof b, ndim, shape),
                        n == NUMEL_BAD ? "not valid (sizes must be >= 0)" : "too large to allocate");
    }
    usg_storage *s = storage_new((size_t)n * usg_dtype_size(dt));
    if (!s) return USG_NOMEM;
    int64_t stride[USG_MAX_DIMS];
    contiguous_strides(ndim, shape, stride);
    usg_status st = header_new(out, s, dt, ndim, shape, stride, 0);
    storage_release(s);
    return st;
}

usg_status usg_tensor_empty(usg_tensor **out, usg_dtype dt, int ndim, const int64_t *shape)
{
    return new_tensor("tensor", out, dt, ndim, shape);
}

usg_status usg_tensor_zeros(usg_tensor **out, usg_dtype dt, int ndim, const int64_t *shape)
{
    usg_status s = new_tensor("zeros", out, dt, ndim, shape);
    if (s == USG_OK) memset((*out)->storage->data, 0, (*out)->storage->nbytes);
    return s;
}

usg_status usg_fail_i32(const char *fn, const char *what, double v)
{
    return usg_fail(USG_ARG, "%s: the %s %.17g does not fit in i32 (-2147483648 .. 2147483647); "
                    "compute in f64 instead (usagi has no int64)", fn, what, v);
}

usg_status usg_tensor_full(usg_tensor **out, usg_dtype dt, int ndim, const int64_t *shape,
                           double value)
{
    *out = NULL;
    if (dt == USG_I32 && !usg_fits_i32(value)) return usg_fail_i32("full", "value", value);
    usg_status s = new_tensor("full", out, dt, ndim, shape);
    if (s == USG_OK) usg_fill_(*out, value);
    return s;
}

usg_status usg_tensor_empty_like(usg_tensor **out, const usg_tensor *like, usg_dtype dt)
{
    return usg_tensor_empty(out, dt, like->ndim, like->shape);
}

usg_status usg_tensor_from_doubles(usg_tensor **out, usg_dtype dt, int ndim,
                                   const int64_t *shape, const double *v)
{
    usg_status s = usg_tensor_empty(out, dt, ndim, shape);
    if (s != USG_OK) return s;
    int64_t n = usg_tensor_numel(*out);
    void *p = (*out)->storage->data;
    for (int64_t i = 0; i < n; i++) {
        if (dt == USG_I32 && !usg_fits_i32(v[i])) {
            usg_tensor_release(*out);
            *out = NULL;
            return usg_fail_i32("tensor", "value", v[i]);
        }
        usg_store(dt, p, i, v[i]);
    }
    return USG_OK;
}

usg_status usg_tensor_from_bytes(usg_tensor **out, usg_dtype dt, int ndim,
                                 const int64_t *shape, const unsigned char *b, double scale)
{
    *out = NULL;
    if (dt == USG_I32 && (!usg_fits_i32(255 * scale) || !usg_fits_i32(-255 * scale)))
        return usg_fail_i32("frombytes", "value 255 * scale =", 255 * scale);
    usg_status s = usg_tensor_empty(out, dt, ndim, shape);
    if (s != USG_OK) return s;
    int64_t n = usg_tensor_numel(*out);
    void *p = (*out)->storage->data;
    for (int64_t i = 0; i < n; i++) {
        if (dt == USG_F32) ((float *)p)[i] = (float)(b[i] * scale);
        else if (dt == USG_F64) ((double *)p)[i] = b[i] * scale;
        else ((int32_t *)p)[i] = (int32_t)(b[i] * scale);
    }
    return USG_OK;
}

usg_status usg_arange(usg_tensor **out, usg_dtype dt, double start, double stop, double step)
{
    *out = NULL;
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
        return usg_fail(USG_ARG, "arange: step must be non-zero and bounds finite, got "
                        "start=%g stop=%g step=%g", start, stop, step);
    double len = ceil((stop - start) / step);
    if (len < 0) len = 0;
    if (len > (double)(USG_MAX_BYTES / 4))
        return usg_fail(USG_NOMEM, "arange: %g elements is too many", len);
    int64_t n = (int64_t)len;
    /* the ends are enough: the values run monotonically between them */
    if (dt == USG_I32 && n > 0 && !usg_fits_i32(start))
        return usg_fail_i32("arange", "value", start);
    if (dt == USG_I32 && n > 0 && !usg_fits_i32(start + (double)(n - 1) * step))
        return usg_fail_i32("arange", "value", start + (double)(n - 1) * step);
    usg_status s = new_tensor("arange", out, dt, 1, &n);
    if (s != USG_OK) return s;
    for (int64_t i = 0; i < n; i++) usg_store(dt, (*out)->storage->data, i, start + (double)i * step);
    return USG_OK;
}

usg_status usg_linspace(usg_tensor **out, usg_dtype dt, double start, double stop, int64_t n)
{
    *out = NULL;
    if (n < 0)
        return usg_fail(USG_ARG, "linspace: steps must be >= 0, got %lld", (long long)n);
    if (dt == USG_I32 && n > 0 && (!usg_fits_i32(start) || (n > 1 && !usg_fits_i32(stop))))
        return usg_fail_i32("linspace", "value", usg_fits_i32(start) ? stop : start);
    usg_status s = new_tensor("linspace", out, dt, 1, &n);
    if (s != USG_OK) return s;
    double step = n > 1 ? (stop - start) / (double)(n - 1) : 0;
    for (int64_t i = 0; i < n; i++)
        usg_store(dt, (*out)->storage->data, i, i == n - 1 && n > 1 ? stop : start + (double)i * step);
    return USG_OK;
}

usg_status usg_eye(usg_tensor **out, usg_dtype dt, int64_t n, int64_t m)
{
    int64_t shape[2] = {n, m};
    usg_status s = new_tensor("eye", out, dt, 2, shape);
    if (s != USG_OK) return s;
    memset((*out)->storage->data, 0, (*out)->storage->nbytes);
    for (int64_t i = 0; i < n && i < m; i++) usg_store(dt, (*out)->storage->data, i * m + i, 1);
    return USG_OK;
}

/* ==== Element access ==================================================== */

void *usg_tensor_data(const usg_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)usg_dtype_size(t->dtype);
}

static int64_t elem_offset(const usg_tensor *t, const int64_t *idx)
{
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    return off;
}

double usg_tensor_get(const usg_tensor *t, const int64_t *idx)
{
    return usg_load(t->dtype, t->storage->data, elem_offset(t, idx));
}

void usg_tensor_set(usg_tensor *t, const int64_t *idx, double v)
{
    usg_store(t->dtype, t->storage->data, elem_offset(t, idx), v);
}

double usg_tensor_get_flat(const usg_tensor *t, int64_t i)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return usg_load(t->dtype, t->storage->data, off);
}

/* ==== Views ============================================================= */

static usg_status view_of(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape,
                          const int64_t *stride, int64_t offset)
{
    return header_new(out, t->storage, t->dtype, ndim, shape, stride, offset);
}

/* Resolve one -1 entry and check the element count; fills `shape`. */
static usg_status infer_shape(const char *fn, const usg_tensor *t, int ndim,
                              const int64_t *in, int64_t *shape)
{
    char b1[256], b2[256];
    if (ndim < 0 || ndim > USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "%s: %d dims asked, at most %d allowed", fn, ndim, USG_MAX_DIMS);
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = in[d];
        if (in[d] == -1 && infer < 0) { infer = d; shape[d] = 1; continue; }
        if (in[d] < 0)
            return usg_fail(USG_SHAPE, "%s: bad size %lld in shape %s", fn, (long long)in[d],
                            usg_shape_str(b1, sizeof b1, ndim, in));
    }
    /* the product of the given sizes, checked: (2^40, 2^40) must not wrap */
    int64_t known = shape_numel(ndim, shape);
    if (known == NUMEL_HUGE)
        return usg_fail(USG_SHAPE, "%s: shape %s has too many elements", fn,
                        usg_shape_str(b1, sizeof b1, ndim, in));
    int64_t n = usg_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known)
            return usg_fail(USG_SHAPE, "%s: cannot infer -1 in shape %s for %lld elements", fn,
                            usg_shape_str(b1, sizeof b1, ndim, in), (long long)n);
        shape[infer] = n / known;
        known = n;
    }
    if (known != n)
        return usg_fail(USG_SHAPE, "%s: shape %s has %lld elements, the tensor %s has %lld", fn,
                        usg_shape_str(b1, sizeof b1, ndim, in), (long long)known,
                        usg_shape_str(b2, sizeof b2, t->ndim, t->shape), (long long)n);
    return USG_OK;
}

/* Strides for viewing t as `shape` without a copy, when the memory allows
 * it: old dims are taken from the back in chunks that are contiguous among
 * themselves, and each chunk must be covered exactly by a run of new dims
 * (the rule of PyTorch's computeStride). */
static bool view_strides(const usg_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    if (usg_tensor_numel(t) == 0 || usg_tensor_is_contiguous(t)) {
        contiguous_strides(ndim, shape, stride);
        return true;
    }
    int nd = ndim - 1;
    int64_t base = t->stride[t->ndim - 1], tensor_n = 1, view_n = 1;
    for (int od = t->ndim - 1; od >= 0; od--) {
        tensor_n *= t->shape[od];
        bool chunk_ends = od == 0 || (t->shape[od - 1] != 1 &&
                                      t->stride[od - 1] != tensor_n * base);
        if (!chunk_ends) continue;
        while (nd >= 0 && (view_n < tensor_n || shape[nd] == 1)) {
            stride[nd] = view_n * base;
            view_n *= shape[nd];
            nd--;
        }
        if (view_n != tensor_n) return false;
        if (od > 0) { base = t->stride[od - 1]; tensor_n = 1; view_n = 1; }
    }
    return nd == -1;
}

usg_status usg_view(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *in)
{
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    *out = NULL;
    usg_status s = infer_shape("view", t, ndim, in, shape);
    if (s != USG_OK) return s;
    if (!view_strides(t, ndim, shape, stride)) {
        char b1[256], b2[256];
        return usg_fail(USG_SHAPE, "view: the strides of this %s view cannot be viewed as %s; "
                        "use reshape (which copies) or contiguous() first",
                        usg_shape_str(b1, sizeof b1, t->ndim, t->shape),
                        usg_shape_str(b2, sizeof b2, ndim, shape));
    }
    return view_of(out, t, ndim, shape, stride, t->offset);
}

usg_status usg_reshape(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *in)
{
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    *out = NULL;
    usg_status s = infer_shape("reshape", t, ndim, in, shape);
    if (s != USG_OK) return s;
    if (view_strides(t, ndim, shape, stride))
        return view_of(out, t, ndim, shape, stride, t->offset);
    usg_tensor *c;
    if ((s = usg_contiguous(&c, t)) != USG_OK) return s;
    s = usg_view(out, c, ndim, shape);
    usg_tensor_release(c);
    return s;
}

usg_status usg_transpose(usg_tensor **out, usg_tensor *t, int d0, int d1)
{
    *out = NULL;
    if (t->ndim == 0 && (d0 == 0 || d0 == -1) && (d1 == 0 || d1 == -1))
        return view_of(out, t, 0, t->shape, t->stride, t->offset);
    usg_status s;
    if ((s = usg_check_dim(&d0, t->ndim, 0, "transpose")) != USG_OK) return s;
    if ((s = usg_check_dim(&d1, t->ndim, 0, "transpose")) != USG_OK) return s;
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(stride, t->stride, sizeof stride);
    shape[d0] = t->shape[d1]; shape[d1] = t->shape[d0];
    stride[d0] = t->stride[d1]; stride[d1] = t->stride[d0];
    return view_of(out, t, t->ndim, shape, stride, t->offset);
}

usg_status usg_permute(usg_tensor **out, usg_tensor *t, const int *perm)
{
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    bool seen[USG_MAX_DIMS] = {false};
    *out = NULL;
    for (int d = 0; d < t->ndim; d++) {
        int p = usg_dim_norm(perm[d], t->ndim, 0);
        if (p < 0 || seen[p])
            return usg_fail(USG_ARG, "permute: dims must be a permutation of 1..%d, "
                            "got %lld at position %d", t->ndim, one_based(perm[d]), d + 1);
        seen[p] = true;
        shape[d] = t->shape[p];
        stride[d] = t->stride[p];
    }
    return view_of(out, t, t->ndim, shape, stride, t->offset);
}

usg_status usg_narrow(usg_tensor **out, usg_tensor *t, int dim, int64_t start, int64_t len)
{
    *out = NULL;
    usg_status s = usg_check_dim(&dim, t->ndim, 0, "narrow");
    if (s != USG_OK) return s;
    /* start + len could overflow: compare len with what is left instead */
    if (start < 0 || len < 0 || start > t->shape[dim] || len > t->shape[dim] - start)
        return usg_fail(USG_ARG, "narrow: %lld elements from %lld are outside dim %d of size %lld",
                        (long long)len, one_based(start), dim + 1, (long long)t->shape[dim]);
    int64_t shape[USG_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[dim] = len;
    return view_of(out, t, t->ndim, shape, t->stride, t->offset + start * t->stride[dim]);
}

usg_status usg_select(usg_tensor **out, usg_tensor *t, int dim, int64_t i)
{
    *out = NULL;
    usg_status s = usg_check_dim(&dim, t->ndim, 0, "select");
    if (s != USG_OK) return s;
    if (i < 0 || i >= t->shape[dim])
        return usg_fail(USG_ARG, "select: index %lld is outside dim %d of size %lld",
                        one_based(i), dim + 1, (long long)t->shape[dim]);
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < t->ndim; d++)
        if (d != dim) { shape[n] = t->shape[d]; stride[n] = t->stride[d]; n++; }
    return view_of(out, t, n, shape, stride, t->offset + i * t->stride[dim]);
}

usg_status usg_unsqueeze(usg_tensor **out, usg_tensor *t, int dim)
{
    *out = NULL;
    if (t->ndim >= USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "unsqueeze: a tensor has at most %d dims", USG_MAX_DIMS);
    usg_status s = usg_check_dim(&dim, t->ndim, 1, "unsqueeze");
    if (s != USG_OK) return s;
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    for (int d = 0, k = 0; d <= t->ndim; d++) {
        if (d == dim) {
            shape[d] = 1;
            stride[d] = k < t->ndim ? t->stride[k] * t->shape[k] : 1;
        } else {
            shape[d] = t->shape[k]; stride[d] = t->stride[k]; k++;
        }
    }
    return view_of(out, t, t->ndim + 1, shape, stride, t->offset);
}

usg_status usg_squeeze(usg_tensor **out, usg_tensor *t, int dim)
{
    *out = NULL;
    if (dim != USG_ALL_DIMS) {
        usg_status s = usg_check_dim(&dim, t->ndim, 0, "squeeze");
        if (s != USG_OK) return s;
    }
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < t->ndim; d++) {
        bool drop = t->shape[d] == 1 && (dim == USG_ALL_DIMS || dim == d);
        if (!drop) { shape[n] = t->shape[d]; stride[n] = t->stride[d]; n++; }
    }
    return view_of(out, t, n, shape, stride, t->offset);
}

usg_status usg_expand(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *in)
{
    char b1[256], b2[256];
    *out = NULL;
    if (ndim < t->ndim || ndim > USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "expand: cannot expand %s to %s",
                        usg_shape_str(b1, sizeof b1, t->ndim, t->shape),
                        usg_shape_str(b2, sizeof b2, ndim, in));
    int64_t shape[USG_MAX_DIMS], stride[USG_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int64_t want = in[d], have = d < lead ? 1 : t->shape[d - lead];
        if (want == -1 && d >= lead) want = have;
        if (want < 0 || (have != want && have != 1))
            return usg_fail(USG_SHAPE, "expand: cannot expand %s to %s (dim %d: %lld to %lld)",
                            usg_shape_str(b1, sizeof b1, t->ndim, t->shape),
                            usg_shape_str(b2, sizeof b2, ndim, in), d + 1,
                            (long long)have, (long long)want);
        shape[d] = want;
        stride[d] = (d < lead || have != want) ? 0 : t->stride[d - lead];
    }
    /* a view whose numel does not fit in int64 would break every loop bound */
    if (shape_numel(ndim, shape) == NUMEL_HUGE)
        return usg_fail(USG_SHAPE, "expand: %s has too many elements",
                        usg_shape_str(b2, sizeof b2, ndim, shape));
    return view_of(out, t, ndim, shape, stride, t->offset);
}

/* ==== Copies ============================================================ */

/* The dims of size > 1 sorted by stride must each step past all the
 * elements the smaller strides reach: stride[k] > sum_{j<k} stride[j]
 * (shape[j] - 1). That holds for every view narrow, select, transpose,
 * permute and view make of a fresh tensor, and fails for a 0 stride. It is
 * sufficient for no overlap, not necessary: an exotic non-overlapping
 * layout is refused too, which only costs a clone(). */
usg_status usg_check_writable(const usg_tensor *t, const char *fn)
{
    int64_t st[USG_MAX_DIMS], sz[USG_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) return USG_OK;          /* no elements, nothing to alias */
        if (t->shape[d] == 1) continue;
        int k = n++;
        for (; k > 0 && st[k - 1] > t->stride[d]; k--) { st[k] = st[k - 1]; sz[k] = sz[k - 1]; }
        st[k] = t->stride[d];
        sz[k] = t->shape[d];
    }
    int64_t reach = 0;                                /* the largest offset the smaller dims reach */
    for (int k = 0; k < n; k++) {
        if (st[k] <= reach || __builtin_mul_overflow(st[k], sz[k] - 1, &st[k]) ||
            __builtin_add_overflow(reach, st[k], &reach))
            return usg_fail(USG_ARG, "%s: the tensor's elements overlap in memory (an expanded "
                            "view); clone() it first", fn);
    }
    return USG_OK;
}

/* Every value of float tensor t fits in i32 (checked before a conversion
 * writes anything, so a refused copy_ leaves its target as it was). */
static usg_status check_fits_i32(const usg_tensor *t, const char *fn)
{
    int64_t n = usg_tensor_numel(t);
    usg_walk w;
    usg_walk_init(&w, t);
    for (int64_t i = 0; i < n; i++, usg_walk_next(&w)) {
        double v = usg_load(t->dtype, t->storage->data, w.off);
        if (!usg_fits_i32(v)) return usg_fail_i32(fn, "value", v);
    }
    return USG_OK;
}

/* Do dst and src possibly share memory? (same storage is enough to say yes) */
static bool may_overlap(const usg_tensor *a, const usg_tensor *b) { return a->storage == b->storage; }

usg_status usg_copy_(usg_tensor *dst, const usg_tensor *src)
{
    int64_t n = usg_tensor_numel(dst);
    usg_tensor *from = NULL, *tmp = NULL;
    usg_status s = usg_check_writable(dst, "copy_");
    if (s != USG_OK) return s;
    s = usg_expand(&from, (usg_tensor *)src, dst->ndim, dst->shape);
    if (s == USG_NOMEM) return s;
    if (s != USG_OK) {
        char b1[256], b2[256];
        return usg_fail(USG_SHAPE, "copy: source %s does not broadcast to destination %s",
                        usg_shape_str(b1, sizeof b1, src->ndim, src->shape),
                        usg_shape_str(b2, sizeof b2, dst->ndim, dst->shape));
    }
    if (dst->dtype == USG_I32 && from->dtype != USG_I32 &&
        (s = check_fits_i32(from, "copy_")) != USG_OK) {
        usg_tensor_release(from);
        return s;
    }
    if (may_overlap(dst, src) && n > 0) {
        if ((s = usg_clone(&tmp, from)) != USG_OK) { usg_tensor_release(from); return s; }
        usg_tensor_release(from);
        from = tmp;
    }
    dst->storage->version++;
    if (dst->dtype == from->dtype && usg_tensor_is_contiguous(dst) &&
        usg_tensor_is_contiguous(from)) {
        memcpy(usg_tensor_data(dst), usg_tensor_data(from), (size_t)n * usg_dtype_size(dst->dtype));
    } else {
        usg_walk wd, ws;
        usg_walk_init(&wd, dst);
        usg_walk_init(&ws, from);
        for (int64_t i = 0; i < n; i++) {
            usg_store(dst->dtype, dst->storage->data, wd.off,
                      usg_load(from->dtype, from->storage->data, ws.off));
            usg_walk_next(&wd);
            usg_walk_next(&ws);
        }
    }
    usg_tensor_release(from);
    return USG_OK;
}

usg_status usg_fill_(usg_tensor *t, double v)
{
    int64_t n = usg_tensor_numel(t);
    usg_status s = usg_check_writable(t, "fill_");
    if (s != USG_OK) return s;
    if (t->dtype == USG_I32 && !usg_fits_i32(v)) return usg_fail_i32("fill_", "value", v);
    t->storage->version++;
    if (t->dtype == USG_F32 && usg_tensor_is_contiguous(t)) {
        float *p = usg_tensor_data(t), f = (float)v;
        for (int64_t i = 0; i < n; i++) p[i] = f;
        return USG_OK;
    }
    usg_walk w;
    usg_walk_init(&w, t);
    for (int64_t i = 0; i < n; i++) {
        usg_store(t->dtype, t->storage->data, w.off, v);
        usg_walk_next(&w);
    }
    return USG_OK;
}

static usg_status copy_as(usg_tensor **out, const usg_tensor *t, usg_dtype dt)
{
    usg_status s = usg_tensor_empty(out, dt, t->ndim, t->shape);
    if (s == USG_OK && (s = usg_copy_(*out, t)) != USG_OK) {
        usg_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

usg_status usg_clone(usg_tensor **out, const usg_tensor *t) { return copy_as(out, t, t->dtype); }

usg_status usg_contiguous(usg_tensor **out, usg_tensor *t)
{
    if (usg_tensor_is_contiguous(t)) {
        usg_tensor_retain(t);
        *out = t;
        return USG_OK;
    }
    return copy_as(out, t, t->dtype);
}

usg_status usg_to_dtype(usg_tensor **out, usg_tensor *t, usg_dtype dt)
{
    usg_status s;
    *out = NULL;
    if (dt == USG_I32 && t->dtype != USG_I32 && (s = check_fits_i32(t, "to")) != USG_OK)
        return s;
    if (t->dtype == dt) return usg_contiguous(out, t);
    return copy_as(out, t, dt);
}

/*
 * testutil.h -- helpers shared by the cmocka tests in tests/c: making
 * tensors, checking shapes and values, checking error messages and the
 * allocation-failure sweeps. Not for anything a single test file needs on its
 * own; those stay in that file. Everything is static inline so a test that
 * uses only part of it compiles without unused-function warnings.
 */
#ifndef USAGI_TEST_TESTUTIL_H
#define USAGI_TEST_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"

/* Compound-literal shapes and values: SHAPE(2, 3), VALS(1, 2, 3). */
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define VALS(...) ((const double[]){__VA_ARGS__})

/* A failing call must leave *out NULL: start from a sentinel to see it. */
static inline usg_tensor *tu_sentinel(void)
{
    static usg_tensor sentinel;
    return &sentinel;
}
#define SENT (tu_sentinel())

/* A new contiguous tensor of dtype dt holding v (row-major). */
static inline usg_tensor *mk(usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_from_doubles(&t, dt, ndim, shape, v), USG_OK);
    return t;
}

/* t's dims 0 and 1 swapped (a view); consumes the caller's reference to t. */
static inline usg_tensor *transposed(usg_tensor *t)
{
    usg_tensor *v = NULL;
    assert_int_equal(usg_transpose(&v, t, 0, 1), USG_OK);
    usg_tensor_release(t);
    return v;
}

/* The call returned `want` and the message contains `needle`. */
static inline void expect_err(usg_status got, usg_status want, const char *needle)
{
    assert_int_equal(got, want);
    if (!strstr(usg_errmsg(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", usg_errmsg(), needle);
}

/* |got - want| <= tol (1 + |want|): relative for large values, absolute
 * near zero. */
static inline void near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * (1 + fabs(want))))
        fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

/* near, except that a NaN want matches NaN and an infinite want must be
 * hit exactly. */
static inline void near_nan(double got, double want, double tol)
{
    bool ok = isnan(want) ? isnan(got)
            : isinf(want) ? got == want
            : fabs(got - want) <= tol * (1 + fabs(want));
    if (!ok) fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

/* t is non-NULL with dtype dt and shape (ndim, shape). */
static inline void check_shape(const usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape)
{
    assert_non_null(t);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    for (int d = 0; d < ndim; d++) assert_int_equal(t->shape[d], shape[d]);
}

/* t has dtype dt and shape (ndim, shape), is contiguous and holds v within
 * tol (near_nan). Releases t. */
static inline void expect_tol(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape,
                              const double *v, double tol)
{
    check_shape(t, dt, ndim, shape);
    assert_true(usg_tensor_is_contiguous(t));
    for (int64_t i = 0; i < usg_tensor_numel(t); i++)
        near_nan(usg_tensor_get_flat(t, i), v[i], tol);
    usg_tensor_release(t);
}

/* t has n elements (flat, any layout) equal to v within 1e-12 absolute. */
static inline void expect_values(const usg_tensor *t, int64_t n, const double *v)
{
    assert_non_null(t);
    assert_int_equal(usg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        if (fabs(usg_tensor_get_flat(t, i) - v[i]) > 1e-12)
            fail_msg("element %lld: got %.17g, want %.17g", (long long)i,
                     usg_tensor_get_flat(t, i), v[i]);
}

/* Run `call` (writes `out`) with the k-th allocation failing, k = 1, 2, ...
 * up to limit - 1, until it succeeds; `out` starts at SENT each time. On
 * success ON_OK runs (it releases `out`) and the live bytes must be as
 * before; on each failure ON_FAIL runs (it checks the status s_ and `out`),
 * the live bytes must be as before and nfail counts it. The hooks may use
 * k_ (the failing allocation) and s_ (the status). Each test file defines
 * its NOMEM_LOOP on top of this with the checks it wants. */
#define NOMEM_LOOP_CORE(nfail, out, call, limit, ON_OK, ON_FAIL)             \
    do {                                                                       \
        (nfail) = 0;                                                           \
        for (long k_ = 1; k_ < (limit); k_++) {                                \
            size_t live_ = usg_alloc_live_bytes();                             \
            (out) = SENT;                                                      \
            usg_alloc_fail_after(k_);                                          \
            usg_status s_ = (call);                                            \
            usg_alloc_fail_after(0);                                           \
            if (s_ == USG_OK) {                                                \
                ON_OK;                                                         \
                assert_int_equal(usg_alloc_live_bytes(), live_);               \
                break;                                                         \
            }                                                                  \
            ON_FAIL;                                                           \
            assert_int_equal(usg_alloc_live_bytes(), live_);                   \
            (nfail)++;                                                         \
        }                                                                      \
    } while (0)

/* An operation under test for nomem_sweep: writes *out, ctx is its input. */
typedef usg_status (*op_fn)(usg_tensor **out, void *ctx);

/* Run op with the k-th allocation failing, k = 1, 2, ... until it succeeds:
 * each failure must be USG_NOMEM, leave *out NULL and leak nothing. */
static inline void nomem_sweep(op_fn op, void *ctx)
{
    size_t before = usg_alloc_live_bytes();
    for (long k = 1; k < 100; k++) {
        usg_tensor *out = (usg_tensor *)0x1;
        usg_alloc_fail_after(k);
        usg_status s = op(&out, ctx);
        usg_alloc_fail_after(0);
        if (s == USG_OK) {
            assert_true(k > 1);          /* the op allocates at least once */
            usg_tensor_release(out);
            assert_int_equal(usg_alloc_live_bytes(), before);
            return;
        }
        assert_int_equal(s, USG_NOMEM);
        assert_null(out);
        assert_int_equal(usg_alloc_live_bytes(), before);
    }
    fail_msg("op never succeeded");
}

/* ---- autograd helpers (need usagi/autograd.h) ---- */
#include "usagi/autograd.h"

/* Backward of sum(out) (out released), leaving the leaves' .grad. */
static inline void backward_sum(usg_tensor *out)
{
    usg_tensor *loss = NULL;
    assert_int_equal(usg_ad_sum(&loss, out, USG_ALL_DIMS, false), USG_OK);
    assert_int_equal(usg_backward(loss, NULL, false), USG_OK);
    usg_tensor_release(loss);
    usg_tensor_release(out);
}

/* Backward from y with a gradient of ones (y kept). */
static inline void backward_ones(usg_tensor *y)
{
    usg_tensor *g = NULL;
    assert_int_equal(usg_tensor_full(&g, y->dtype, y->ndim, y->shape, 1), USG_OK);
    assert_int_equal(usg_backward(y, g, false), USG_OK);
    usg_tensor_release(g);
}

/* Release a leaf together with its .grad (NULL is fine). */
static inline void drop(usg_tensor *t)
{
    if (!t) return;
    usg_tensor_release(t->grad);
    t->grad = NULL;
    usg_tensor_release(t);
}

#endif

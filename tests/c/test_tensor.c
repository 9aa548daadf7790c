/*
 * test_tensor.c -- cmocka tests of host/core/tensor.c: creation, dtypes,
 * storage alignment and refcounts, every view, copies and conversion, flat
 * access on strided views, shape helpers, limits (too many dims, negative and
 * absurd sizes) and allocation failure at every allocation of every function.
 *
 * Values are written out by hand; a view is checked through its shape,
 * strides and offset (the layout is the point of a view) and through the
 * values usg_tensor_get_flat reads from it.
 */
#include "testutil.h"

#define PERM(...) ((const int[]){__VA_ARGS__})

/* ==== Helpers =========================================================== */

/* 0, 1, 2, ... as f32 in the given shape */
static usg_tensor *iota(int ndim, const int64_t *shape)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, USG_F32, ndim, shape), USG_OK);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) ((float *)usg_tensor_data(t))[i] = (float)i;
    return t;
}

static void same(double got, double want)
{
    bool ok = isnan(want) ? isnan(got) : got == want;
    if (!ok) fail_msg("got %.17g, want %.17g", got, want);
}

/* t has dtype dt, the given shape and the values v (row-major, exact). */
static void check(const usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape,
                  const double *v)
{
    check_shape(t, dt, ndim, shape);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) same(usg_tensor_get_flat(t, i), v[i]);
}

static void check_strides(const usg_tensor *t, const int64_t *stride, int64_t offset)
{
    for (int d = 0; d < t->ndim; d++)
        if (t->stride[d] != stride[d])
            fail_msg("stride[%d] is %lld, want %lld", d, (long long)t->stride[d],
                     (long long)stride[d]);
    assert_int_equal(t->offset, offset);
}

/* check, then contiguous, then release */
static void expect(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    check(t, dt, ndim, shape, v);
    assert_true(usg_tensor_is_contiguous(t));
    usg_tensor_release(t);
}

/* Run `call` (writes `out`) with the k-th allocation failing, k = 1, 2, ...
 * until it succeeds: each failure must be USG_NOMEM with out NULL and the
 * live bytes as before. `nfail` receives how many allocations the call made. */
#define NOMEM_LOOP(nfail, out, call)                                           \
    NOMEM_LOOP_CORE(nfail, out, call, 64,                                      \
                    { assert_ptr_not_equal((out), SENT); usg_tensor_release(out); }, \
                    { assert_int_equal(s_, USG_NOMEM); assert_null(out); })

/* ==== Status, errors, dtypes ============================================ */

static void test_status_and_errmsg(void **state)
{
    assert_string_equal(usg_status_name(USG_OK), "ok");
    assert_string_equal(usg_status_name(USG_NOMEM), "out of memory");
    assert_string_equal(usg_status_name(USG_SHAPE), "shape");
    assert_string_equal(usg_status_name(USG_ABI), "abi");
    assert_string_equal(usg_status_name((usg_status)99), "unknown");
    assert_int_equal(usg_fail(USG_ARG, "f: x must be %d, got %s", 3, "four"), USG_ARG);
    assert_string_equal(usg_errmsg(), "f: x must be 3, got four");
    /* callers prefix their name to a message from below:
     * usg_fail(s, "%s: %s", fn, usg_errmsg()) reads the buffer it writes */
    usg_fail(USG_SHAPE, "shapes (3,) and (4,) do not broadcast");
    usg_fail(USG_SHAPE, "%s: %s", "add", usg_errmsg());
    assert_string_equal(usg_errmsg(), "add: shapes (3,) and (4,) do not broadcast");
    /* a long message is cut, not overflowed */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    usg_fail(USG_ARG, "%s", big);
    assert_true(strlen(usg_errmsg()) > 100 && strlen(usg_errmsg()) < sizeof big - 1);
}

static void test_dtypes(void **state)
{
    usg_dtype dt;
    assert_int_equal(usg_dtype_size(USG_F32), 4);
    assert_int_equal(usg_dtype_size(USG_F64), 8);
    assert_int_equal(usg_dtype_size(USG_I32), 4);
    assert_string_equal(usg_dtype_name(USG_F32), "f32");
    assert_string_equal(usg_dtype_name(USG_F64), "f64");
    assert_string_equal(usg_dtype_name(USG_I32), "i32");
    assert_string_equal(usg_dtype_name((usg_dtype)7), "?");
    assert_true(usg_dtype_is_float(USG_F32));
    assert_true(usg_dtype_is_float(USG_F64));
    assert_false(usg_dtype_is_float(USG_I32));

    static const struct { const char *s; usg_dtype dt; } ok[] = {
        {"f32", USG_F32}, {"float32", USG_F32}, {"float", USG_F32},
        {"f64", USG_F64}, {"float64", USG_F64}, {"double", USG_F64},
        {"i32", USG_I32}, {"int32", USG_I32}, {"int", USG_I32},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        dt = (usg_dtype)99;
        assert_true(usg_dtype_parse(ok[i].s, &dt));
        assert_int_equal(dt, ok[i].dt);
    }
    dt = USG_F64;
    assert_false(usg_dtype_parse("f16", &dt));
    assert_false(usg_dtype_parse("", &dt));
    assert_false(usg_dtype_parse("F32", &dt));
    assert_false(usg_dtype_parse("f32 ", &dt));
    assert_int_equal(dt, USG_F64);                    /* untouched on failure */

    /* promote: f64 > f32 > i32, symmetric */
    const usg_dtype all[] = {USG_F32, USG_F64, USG_I32};
    const usg_dtype want[3][3] = {{USG_F32, USG_F64, USG_F32},
                                  {USG_F64, USG_F64, USG_F64},
                                  {USG_F32, USG_F64, USG_I32}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            assert_int_equal(usg_dtype_promote(all[i], all[j]), want[i][j]);
}

/* ==== Creation ========================================================== */

static void test_empty_zeros_full(void **state)
{
    usg_tensor *t;
    assert_int_equal(usg_tensor_empty(&t, USG_F32, 3, SHAPE(2, 3, 4)), USG_OK);
    assert_int_equal(t->ndim, 3);
    assert_int_equal(usg_tensor_numel(t), 24);
    check_strides(t, SHAPE(12, 4, 1), 0);
    assert_true(usg_tensor_is_contiguous(t));
    assert_int_equal(t->refcount, 1);
    assert_int_equal(t->storage->refcount, 1);
    assert_int_equal(t->storage->nbytes, 96);
    assert_int_equal(t->storage->version, 0);
    assert_false(t->requires_grad);
    assert_null(t->grad);
    assert_null(t->grad_fn);
    usg_tensor_release(t);

    assert_int_equal(usg_tensor_zeros(&t, USG_F64, 2, SHAPE(2, 2)), USG_OK);
    expect(t, USG_F64, 2, SHAPE(2, 2), VALS(0, 0, 0, 0));
    assert_int_equal(usg_tensor_zeros(&t, USG_I32, 1, SHAPE(3)), USG_OK);
    expect(t, USG_I32, 1, SHAPE(3), VALS(0, 0, 0));

    assert_int_equal(usg_tensor_full(&t, USG_F32, 2, SHAPE(2, 1), 0.1), USG_OK);
    expect(t, USG_F32, 2, SHAPE(2, 1), VALS((float)0.1, (float)0.1));
    assert_int_equal(usg_tensor_full(&t, USG_F64, 1, SHAPE(2), 0.1), USG_OK);
    expect(t, USG_F64, 1, SHAPE(2), VALS(0.1, 0.1));
    assert_int_equal(usg_tensor_full(&t, USG_I32, 1, SHAPE(2), -2.7), USG_OK);
    expect(t, USG_I32, 1, SHAPE(2), VALS(-2, -2));          /* toward zero */

    /* 0-dim: one element, no shape */
    assert_int_equal(usg_tensor_full(&t, USG_F32, 0, NULL, 5), USG_OK);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(usg_tensor_numel(t), 1);
    assert_true(usg_tensor_is_contiguous(t));
    same(usg_tensor_get(t, NULL), 5);
    usg_tensor_release(t);

    /* empty dims: no elements, still a valid aligned tensor */
    assert_int_equal(usg_tensor_zeros(&t, USG_F32, 3, SHAPE(2, 0, 3)), USG_OK);
    assert_int_equal(usg_tensor_numel(t), 0);
    assert_int_equal(t->storage->nbytes, 0);
    assert_non_null(t->storage->data);
    assert_true(usg_tensor_is_contiguous(t));
    usg_tensor_release(t);

    usg_tensor *like;
    assert_int_equal(usg_tensor_zeros(&like, USG_F64, 2, SHAPE(3, 5)), USG_OK);
    assert_int_equal(usg_tensor_empty_like(&t, like, USG_I32), USG_OK);
    assert_int_equal(t->dtype, USG_I32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 3);
    assert_int_equal(t->shape[1], 5);
    assert_ptr_not_equal(t->storage, like->storage);
    usg_tensor_release(t);
    usg_tensor_release(like);
}

static void test_alignment(void **state)
{
    /* every storage, whatever its size, starts on a 64-byte boundary */
    for (int64_t n = 0; n < 70; n++) {
        usg_tensor *t;
        usg_dtype dt = n % 3 == 0 ? USG_F32 : n % 3 == 1 ? USG_F64 : USG_I32;
        assert_int_equal(usg_tensor_empty(&t, dt, 1, &n), USG_OK);
        assert_int_equal((uintptr_t)t->storage->data % USG_ALIGN, 0);
        assert_int_equal((uintptr_t)usg_tensor_data(t) % USG_ALIGN, 0);
        usg_tensor_release(t);
    }
    for (size_t n = 0; n < 200; n += 7) {
        void *p = usg_alloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % USG_ALIGN, 0);
        usg_free(p);
    }
    usg_free(NULL);
    /* usg_tensor_data applies the offset of a view */
    usg_tensor *t = iota(2, SHAPE(3, 4)), *v;
    assert_int_equal(usg_narrow(&v, t, 0, 1, 2), USG_OK);
    assert_ptr_equal(usg_tensor_data(v), (float *)t->storage->data + 4);
    usg_tensor_release(v);
    usg_tensor_release(t);
}

static void test_live_bytes(void **state)
{
    size_t live = usg_alloc_live_bytes();
    void *p = usg_alloc(1000);
    assert_int_equal(usg_alloc_live_bytes(), live + 1000);
    usg_free(p);
    assert_int_equal(usg_alloc_live_bytes(), live);
    usg_alloc_fail_after(2);
    p = usg_alloc(8);
    assert_non_null(p);
    assert_null(usg_alloc(8));
    assert_true(strstr(usg_errmsg(), "out of memory") != NULL);
    void *q = usg_alloc(8);                  /* only one failure */
    assert_non_null(q);
    usg_free(p);
    usg_free(q);
    assert_null(usg_alloc(USG_MAX_BYTES + 1));
    assert_true(strstr(usg_errmsg(), "out of memory") != NULL);
    assert_int_equal(usg_alloc_live_bytes(), live);
}

static void test_from_doubles(void **state)
{
    usg_tensor *t = mk(USG_F32, 2, SHAPE(2, 2), VALS(0.1, -1.5, 1e-50, 3e38));
    check(t, USG_F32, 2, SHAPE(2, 2), VALS((float)0.1, -1.5, 0, (float)3e38));
    usg_tensor_release(t);
    t = mk(USG_F64, 1, SHAPE(3), VALS(0.1, 1e-300, -INFINITY));
    expect(t, USG_F64, 1, SHAPE(3), VALS(0.1, 1e-300, -INFINITY));
    /* i32 stores round toward zero; a value out of the i32 range (NaN and
     * inf included) is refused, whatever the path: from doubles, full,
     * fill_, copy_ and conversion */
    t = mk(USG_I32, 1, SHAPE(5), VALS(2.9, -2.9, 2147483647.5, -2147483648.5, -0.5));
    expect(t, USG_I32, 1, SHAPE(5), VALS(2, -2, INT32_MAX, INT32_MIN, 0));
    usg_tensor *u = NULL, *f = mk(USG_F32, 1, SHAPE(2), VALS(1, 3e9));
    expect_err(usg_tensor_from_doubles(&u, USG_I32, 1, SHAPE(1), VALS(3e9)), USG_ARG,
               "tensor: the value 3000000000 does not fit in i32");
    assert_null(u);
    expect_err(usg_tensor_from_doubles(&u, USG_I32, 1, SHAPE(1), VALS(NAN)), USG_ARG, "nan");
    expect_err(usg_tensor_full(&u, USG_I32, 1, SHAPE(2), -3e9), USG_ARG, "full: the value");
    expect_err(usg_to_dtype(&u, f, USG_I32), USG_ARG, "to: the value 3000000000");
    assert_int_equal(usg_tensor_zeros(&u, USG_I32, 1, SHAPE(2)), USG_OK);
    expect_err(usg_copy_(u, f), USG_ARG, "copy_: the value 3000000000");
    expect_err(usg_fill_(u, INFINITY), USG_ARG, "fill_: the value inf");
    expect(u, USG_I32, 1, SHAPE(2), VALS(0, 0));
    expect_err(usg_arange(&t, USG_I32, 2147483640, 2147483650.0, 1), USG_ARG,
               "arange: the value 2147483649 does not fit in i32");
    assert_int_equal(usg_arange(&t, USG_I32, 2147483645, 2147483648.0, 1), USG_OK);
    expect(t, USG_I32, 1, SHAPE(3), VALS(2147483645, 2147483646, 2147483647));
    usg_tensor_release(f);
    t = mk(USG_F32, 0, NULL, VALS(7));
    expect(t, USG_F32, 0, NULL, VALS(7));
    t = mk(USG_F32, 1, SHAPE(0), NULL);
    expect(t, USG_F32, 1, SHAPE(0), NULL);
}

static void test_arange(void **state)
{
    usg_tensor *t;
    assert_int_equal(usg_arange(&t, USG_F32, 0, 5, 1), USG_OK);
    expect(t, USG_F32, 1, SHAPE(5), VALS(0, 1, 2, 3, 4));
    assert_int_equal(usg_arange(&t, USG_F64, 1, 2, 0.25), USG_OK);
    expect(t, USG_F64, 1, SHAPE(4), VALS(1, 1.25, 1.5, 1.75));
    assert_int_equal(usg_arange(&t, USG_F64, 0, 1.1, 0.5), USG_OK);    /* ceil(2.2) = 3 */
    expect(t, USG_F64, 1, SHAPE(3), VALS(0, 0.5, 1));
    /* negative step counts down, stop excluded */
    assert_int_equal(usg_arange(&t, USG_F64, 5, 0, -1.5), USG_OK);
    expect(t, USG_F64, 1, SHAPE(4), VALS(5, 3.5, 2, 0.5));
    assert_int_equal(usg_arange(&t, USG_I32, 3, -3, -2), USG_OK);
    expect(t, USG_I32, 1, SHAPE(3), VALS(3, 1, -1));
    /* empty ranges: the wrong direction and start == stop */
    assert_int_equal(usg_arange(&t, USG_F32, 0, 5, -1), USG_OK);
    expect(t, USG_F32, 1, SHAPE(0), NULL);
    assert_int_equal(usg_arange(&t, USG_F32, 5, 0, 1), USG_OK);
    expect(t, USG_F32, 1, SHAPE(0), NULL);
    assert_int_equal(usg_arange(&t, USG_F32, 3, 3, 1), USG_OK);
    expect(t, USG_F32, 1, SHAPE(0), NULL);

    t = SENT;
    expect_err(usg_arange(&t, USG_F32, 0, 5, 0), USG_ARG, "arange: step");
    assert_null(t);
    expect_err(usg_arange(&t, USG_F32, NAN, 5, 1), USG_ARG, "arange:");
    expect_err(usg_arange(&t, USG_F32, 0, INFINITY, 1), USG_ARG, "arange:");
    expect_err(usg_arange(&t, USG_F32, 0, 1, NAN), USG_ARG, "arange:");
    expect_err(usg_arange(&t, USG_F32, 0, 1e300, 1), USG_NOMEM, "arange:");
    expect_err(usg_arange(&t, USG_F32, -1e308, 1e308, 1), USG_NOMEM, "arange:");
    assert_null(t);
}

static void test_linspace(void **state)
{
    usg_tensor *t;
    assert_int_equal(usg_linspace(&t, USG_F64, 0, 1, 5), USG_OK);
    expect(t, USG_F64, 1, SHAPE(5), VALS(0, 0.25, 0.5, 0.75, 1));
    assert_int_equal(usg_linspace(&t, USG_F32, 1, -1, 3), USG_OK);
    expect(t, USG_F32, 1, SHAPE(3), VALS(1, 0, -1));
    /* the last value is stop exactly, not start + (n-1) * step */
    assert_int_equal(usg_linspace(&t, USG_F64, 0, 0.3, 4), USG_OK);
    same(usg_tensor_get_flat(t, 3), 0.3);
    same(usg_tensor_get_flat(t, 1), 0.3 / 3);
    usg_tensor_release(t);
    assert_int_equal(usg_linspace(&t, USG_F64, -1, 0.9, 20), USG_OK);  /* -1 + 19 * 0.1 != 0.9 */
    same(usg_tensor_get_flat(t, 19), 0.9);
    same(usg_tensor_get_flat(t, 0), -1);
    usg_tensor_release(t);
    assert_int_equal(usg_linspace(&t, USG_F64, 2, 9, 1), USG_OK);      /* n = 1: start */
    expect(t, USG_F64, 1, SHAPE(1), VALS(2));
    assert_int_equal(usg_linspace(&t, USG_F64, 2, 9, 0), USG_OK);      /* n = 0: empty */
    expect(t, USG_F64, 1, SHAPE(0), NULL);
    assert_int_equal(usg_linspace(&t, USG_I32, 0, 10, 4), USG_OK);     /* 0 3.33 6.67 10 */
    expect(t, USG_I32, 1, SHAPE(4), VALS(0, 3, 6, 10));
    t = SENT;
    expect_err(usg_linspace(&t, USG_F32, 0, 1, -1), USG_ARG, "linspace: steps");
    assert_null(t);
    t = SENT;
    expect_err(usg_linspace(&t, USG_F32, 0, 1, (int64_t)1 << 45), USG_NOMEM, "linspace:");
    assert_null(t);
}

static void test_eye(void **state)
{
    usg_tensor *t;
    assert_int_equal(usg_eye(&t, USG_F32, 2, 3), USG_OK);
    expect(t, USG_F32, 2, SHAPE(2, 3), VALS(1, 0, 0, 0, 1, 0));
    assert_int_equal(usg_eye(&t, USG_I32, 3, 2), USG_OK);
    expect(t, USG_I32, 2, SHAPE(3, 2), VALS(1, 0, 0, 1, 0, 0));
    assert_int_equal(usg_eye(&t, USG_F64, 3, 3), USG_OK);
    expect(t, USG_F64, 2, SHAPE(3, 3), VALS(1, 0, 0, 0, 1, 0, 0, 0, 1));
    assert_int_equal(usg_eye(&t, USG_F64, 0, 3), USG_OK);
    expect(t, USG_F64, 2, SHAPE(0, 3), NULL);
    t = SENT;
    expect_err(usg_eye(&t, USG_F32, -1, 3), USG_SHAPE, "eye:");
    assert_null(t);
    expect_err(usg_eye(&t, USG_F32, (int64_t)1 << 40, (int64_t)1 << 40), USG_NOMEM, "eye:");
    assert_null(t);
}

/* ==== Limits ============================================================ */

static void test_limits(void **state)
{
    size_t live = usg_alloc_live_bytes();
    usg_tensor *t = SENT;
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    expect_err(usg_tensor_empty(&t, USG_F32, 9, nine), USG_SHAPE, "at most 8");
    assert_null(t);
    expect_err(usg_tensor_zeros(&t, USG_F32, -1, nine), USG_SHAPE, "zeros:");
    expect_err(usg_tensor_empty(&t, USG_F32, 2, SHAPE(3, -1)), USG_SHAPE, "(3, -1)");
    expect_err(usg_tensor_full(&t, USG_F32, 2, SHAPE(-3, 0), 1), USG_SHAPE, "full:");
    expect_err(usg_tensor_zeros(&t, USG_F32, 1, SHAPE(-3)), USG_SHAPE, "zeros:");
    expect_err(usg_tensor_empty(&t, (usg_dtype)5, 1, SHAPE(3)), USG_TYPE, "dtype");
    /* absurd sizes are an allocation failure, including products that
     * overflow int64 */
    int64_t big = (int64_t)1 << 40;
    expect_err(usg_tensor_empty(&t, USG_F32, 2, SHAPE(big, big)), USG_NOMEM, "too large");
    expect_err(usg_tensor_zeros(&t, USG_F64, 3, SHAPE(big, big, big)), USG_NOMEM, "zeros:");
    expect_err(usg_tensor_empty(&t, USG_F32, 2, SHAPE(INT64_MAX, 2)), USG_NOMEM, "too large");
    expect_err(usg_tensor_empty(&t, USG_F32, 1, SHAPE(big)), USG_NOMEM, "too large");
    expect_err(usg_tensor_empty(&t, USG_I32, 1, SHAPE(INT64_MAX)), USG_NOMEM, "too large");
    expect_err(usg_tensor_from_doubles(&t, USG_F32, 2, SHAPE(big, big), NULL), USG_NOMEM,
               "tensor:");
    assert_null(t);
    assert_int_equal(usg_alloc_live_bytes(), live);
    /* a zero does not excuse the others: strides are their products */
    expect_err(usg_tensor_empty(&t, USG_F32, 3, SHAPE(big, big, 0)), USG_NOMEM, "too large");
    assert_null(t);
    assert_int_equal(usg_tensor_empty(&t, USG_F32, 3, SHAPE(big, 0, 5)), USG_OK);
    assert_int_equal(usg_tensor_numel(t), 0);
    assert_true(usg_tensor_is_contiguous(t));
    usg_tensor_release(t);
    /* 8 dims is fine */
    assert_int_equal(usg_tensor_zeros(&t, USG_F32, 8, SHAPE(1, 2, 1, 2, 1, 2, 1, 2)), USG_OK);
    assert_int_equal(usg_tensor_numel(t), 16);
    usg_tensor_release(t);
    assert_int_equal(usg_alloc_live_bytes(), live);
}

/* ==== Lifetime ========================================================== */

static void test_refcounts(void **state)
{
    size_t live = usg_alloc_live_bytes();
    usg_tensor *t = iota(2, SHAPE(3, 4)), *v, *w;
    usg_storage *s = t->storage;
    usg_tensor_retain(t);
    assert_int_equal(t->refcount, 2);
    usg_tensor_release(t);
    assert_int_equal(t->refcount, 1);

    assert_int_equal(usg_narrow(&v, t, 1, 1, 2), USG_OK);
    assert_int_equal(usg_transpose(&w, v, 0, 1), USG_OK);
    assert_ptr_equal(v->storage, s);
    assert_ptr_equal(w->storage, s);
    assert_int_equal(s->refcount, 3);
    assert_int_equal(v->refcount, 1);       /* a view is a new header */
    /* the parent goes; its views still see the values */
    usg_tensor_release(t);
    assert_int_equal(s->refcount, 2);
    check(w, USG_F32, 2, SHAPE(2, 3), VALS(1, 5, 9, 2, 6, 10));
    usg_tensor_release(v);
    assert_int_equal(s->refcount, 1);
    check(w, USG_F32, 2, SHAPE(2, 3), VALS(1, 5, 9, 2, 6, 10));
    usg_tensor_release(w);
    assert_int_equal(usg_alloc_live_bytes(), live);
    usg_tensor_release(NULL);
}

/* ==== Element access ==================================================== */

static void test_get_set_flat(void **state)
{
    usg_tensor *t = iota(3, SHAPE(2, 3, 4)), *p, *n, *e, *s;
    same(usg_tensor_get(t, SHAPE(1, 2, 3)), 23);
    usg_tensor_set(t, SHAPE(1, 0, 2), -5);
    same(usg_tensor_get_flat(t, 14), -5);
    usg_tensor_set(t, SHAPE(1, 0, 2), 14);

    /* permuted (4, 2, 3): element (i, j, k) is t[j][k][i] */
    assert_int_equal(usg_permute(&p, t, PERM(2, 0, 1)), USG_OK);
    same(usg_tensor_get_flat(p, 0), 0);
    same(usg_tensor_get_flat(p, 1), 4);
    same(usg_tensor_get_flat(p, 3), 12);
    same(usg_tensor_get_flat(p, 6), 1);
    same(usg_tensor_get_flat(p, 23), 23);
    same(usg_tensor_get(p, SHAPE(2, 1, 0)), 14);
    /* narrowed in the middle dim of the permuted view: (4, 2, 2) */
    assert_int_equal(usg_narrow(&n, p, 2, 1, 2), USG_OK);
    check(n, USG_F32, 3, SHAPE(4, 2, 2),
          VALS(4, 8, 16, 20, 5, 9, 17, 21, 6, 10, 18, 22, 7, 11, 19, 23));
    usg_tensor_set(n, SHAPE(3, 1, 1), 100);                 /* writes t[1][2][3] */
    same(usg_tensor_get_flat(t, 23), 100);
    /* expanded: stride 0 repeats */
    assert_int_equal(usg_select(&s, t, 0, 0), USG_OK);      /* (3, 4) */
    assert_int_equal(usg_select(&e, s, 0, 1), USG_OK);      /* (4,): 4 5 6 7 */
    usg_tensor_release(s);
    assert_int_equal(usg_expand(&s, e, 2, SHAPE(2, 4)), USG_OK);
    check(s, USG_F32, 2, SHAPE(2, 4), VALS(4, 5, 6, 7, 4, 5, 6, 7));
    usg_tensor_release(s);
    usg_tensor_release(e);
    usg_tensor_release(n);
    usg_tensor_release(p);
    usg_tensor_release(t);
}

/* ==== Shape helpers ===================================================== */

static void test_shape_str(void **state)
{
    char b[64];
    assert_string_equal(usg_shape_str(b, sizeof b, 0, NULL), "()");
    assert_string_equal(usg_shape_str(b, sizeof b, 1, SHAPE(3)), "(3,)");
    assert_string_equal(usg_shape_str(b, sizeof b, 2, SHAPE(2, 3)), "(2, 3)");
    assert_string_equal(usg_shape_str(b, sizeof b, 3, SHAPE(0, -1, 7)), "(0, -1, 7)");
    assert_string_equal(usg_shape_str(b, sizeof b, 8, SHAPE(1, 2, 3, 4, 5, 6, 7, 8)),
                        "(1, 2, 3, 4, 5, 6, 7, 8)");
    assert_string_equal(usg_shape_str(b, sizeof b, 1, SHAPE(INT64_MAX)),
                        "(9223372036854775807,)");
    /* a short buffer is cut and terminated, never overrun */
    char s[8];
    memset(s, 'Z', sizeof s);
    assert_ptr_equal(usg_shape_str(s, 6, 3, SHAPE(1000, 2000, 3000)), s);
    assert_int_equal(strlen(s), 5);
    assert_string_equal(s, "(1000");
    assert_int_equal(s[6], 'Z');
    assert_int_equal(s[7], 'Z');
    usg_shape_str(s, 3, 2, SHAPE(4, 5));
    assert_string_equal(s, "(4");
}

static void bcast(int na, const int64_t *sa, int nb, const int64_t *sb, int nw,
                  const int64_t *want)
{
    int nd = -1;
    int64_t shape[USG_MAX_DIMS];
    assert_int_equal(usg_broadcast_shape(&nd, shape, na, sa, nb, sb), USG_OK);
    assert_int_equal(nd, nw);
    for (int d = 0; d < nw; d++) assert_int_equal(shape[d], want[d]);
}

static void test_broadcast_shape(void **state)
{
    bcast(2, SHAPE(3, 1), 2, SHAPE(1, 4), 2, SHAPE(3, 4));
    bcast(3, SHAPE(2, 1, 3), 2, SHAPE(4, 1), 3, SHAPE(2, 4, 3));
    bcast(0, NULL, 2, SHAPE(2, 3), 2, SHAPE(2, 3));
    bcast(2, SHAPE(2, 3), 0, NULL, 2, SHAPE(2, 3));
    bcast(0, NULL, 0, NULL, 0, NULL);
    bcast(1, SHAPE(0), 1, SHAPE(1), 1, SHAPE(0));
    bcast(2, SHAPE(1, 0), 2, SHAPE(5, 1), 2, SHAPE(5, 0));
    int nd;
    int64_t shape[USG_MAX_DIMS];
    expect_err(usg_broadcast_shape(&nd, shape, 1, SHAPE(3), 1, SHAPE(4)), USG_SHAPE,
               "(3,) and (4,)");
    expect_err(usg_broadcast_shape(&nd, shape, 2, SHAPE(2, 3), 3, SHAPE(3, 2, 2)), USG_SHAPE,
               "(2, 3) and (3, 2, 2)");
    expect_err(usg_broadcast_shape(&nd, shape, 1, SHAPE(0), 1, SHAPE(2)), USG_SHAPE,
               "do not broadcast");
}

static void test_contiguity(void **state)
{
    usg_tensor t = {0};
    t.ndim = 3;
    memcpy(t.shape, SHAPE(2, 1, 3), sizeof(int64_t[3]));
    memcpy(t.stride, SHAPE(3, 99, 1), sizeof(int64_t[3]));   /* a size-1 dim's stride is free */
    assert_true(usg_tensor_is_contiguous(&t));
    memcpy(t.stride, SHAPE(4, 3, 1), sizeof(int64_t[3]));
    assert_false(usg_tensor_is_contiguous(&t));
    memcpy(t.stride, SHAPE(0, 3, 1), sizeof(int64_t[3]));
    assert_false(usg_tensor_is_contiguous(&t));

    usg_tensor *a, *b;
    assert_int_equal(usg_tensor_zeros(&a, USG_F32, 2, SHAPE(2, 3)), USG_OK);
    assert_int_equal(usg_tensor_zeros(&b, USG_I32, 2, SHAPE(2, 3)), USG_OK);
    assert_true(usg_same_shape(a, b));
    usg_tensor_release(b);
    assert_int_equal(usg_tensor_zeros(&b, USG_F32, 2, SHAPE(3, 2)), USG_OK);
    assert_false(usg_same_shape(a, b));
    usg_tensor_release(b);
    assert_int_equal(usg_tensor_zeros(&b, USG_F32, 3, SHAPE(1, 2, 3)), USG_OK);
    assert_false(usg_same_shape(a, b));
    usg_tensor_release(b);
    usg_tensor_release(a);
}

/* ==== view and reshape ================================================== */

static void test_view(void **state)
{
    usg_tensor *t = iota(3, SHAPE(2, 3, 4)), *v, *w;
    assert_int_equal(usg_view(&v, t, 2, SHAPE(6, 4)), USG_OK);
    assert_ptr_equal(v->storage, t->storage);
    check_strides(v, SHAPE(4, 1), 0);
    usg_tensor_release(v);
    /* -1 is inferred, anywhere */
    assert_int_equal(usg_view(&v, t, 2, SHAPE(-1, 4)), USG_OK);
    assert_int_equal(v->shape[0], 6);
    usg_tensor_release(v);
    assert_int_equal(usg_view(&v, t, 3, SHAPE(4, -1, 3)), USG_OK);
    assert_int_equal(v->shape[1], 2);
    check_strides(v, SHAPE(6, 3, 1), 0);
    usg_tensor_release(v);
    assert_int_equal(usg_view(&v, t, 1, SHAPE(-1)), USG_OK);
    expect(v, USG_F32, 1, SHAPE(24), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                          15, 16, 17, 18, 19, 20, 21, 22, 23));
    assert_int_equal(usg_view(&v, t, 5, SHAPE(1, 2, 1, 12, 1)), USG_OK);
    usg_tensor_release(v);

    /* a single element to 0-dim and back */
    usg_tensor *one = mk(USG_F64, 1, SHAPE(1), VALS(9));
    assert_int_equal(usg_view(&v, one, 0, NULL), USG_OK);
    assert_int_equal(v->ndim, 0);
    assert_int_equal(usg_view(&w, v, 3, SHAPE(1, -1, 1)), USG_OK);
    check(w, USG_F64, 3, SHAPE(1, 1, 1), VALS(9));
    usg_tensor_release(w);
    usg_tensor_release(v);
    usg_tensor_release(one);

    /* non-contiguous but viewable: rows narrowed out of a wider matrix */
    usg_tensor *m = iota(2, SHAPE(4, 6)), *n;
    assert_int_equal(usg_narrow(&n, m, 1, 1, 3), USG_OK);            /* (4, 3) strides (6, 1) */
    assert_int_equal(usg_view(&v, n, 3, SHAPE(2, 2, 3)), USG_OK);
    check_strides(v, SHAPE(12, 6, 1), 1);
    check(v, USG_F32, 3, SHAPE(2, 2, 3), VALS(1, 2, 3, 7, 8, 9, 13, 14, 15, 19, 20, 21));
    usg_tensor_release(v);
    /* ... but its rows cannot be merged */
    v = SENT;
    expect_err(usg_view(&v, n, 1, SHAPE(12)), USG_SHAPE, "view:");
    assert_null(v);
    usg_tensor_release(n);

    /* a transpose cannot be flattened by a view; splitting a dim works */
    usg_tensor *tt;
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);           /* (6, 4) strides (1, 6) */
    v = SENT;
    expect_err(usg_view(&v, tt, 1, SHAPE(24)), USG_SHAPE, "use reshape");
    assert_null(v);
    expect_err(usg_view(&v, tt, 2, SHAPE(4, 6)), USG_SHAPE, "(6, 4) view");
    assert_int_equal(usg_view(&v, tt, 3, SHAPE(3, 2, 4)), USG_OK);
    check_strides(v, SHAPE(2, 1, 6), 0);
    same(usg_tensor_get(v, SHAPE(2, 1, 3)), usg_tensor_get(tt, SHAPE(5, 3)));
    usg_tensor_release(v);
    assert_int_equal(usg_view(&v, tt, 3, SHAPE(6, 1, 4)), USG_OK);  /* size-1 dim inserted */
    assert_int_equal(v->stride[0], 1);
    assert_int_equal(v->stride[2], 6);
    same(usg_tensor_get(v, SHAPE(5, 0, 3)), 23);
    usg_tensor_release(v);
    usg_tensor_release(tt);

    /* errors */
    v = SENT;
    expect_err(usg_view(&v, t, 2, SHAPE(-1, -1)), USG_SHAPE, "view: bad size -1");
    expect_err(usg_view(&v, t, 2, SHAPE(5, 5)), USG_SHAPE, "has 25 elements");
    expect_err(usg_view(&v, t, 2, SHAPE(5, -1)), USG_SHAPE, "cannot infer");
    expect_err(usg_view(&v, t, 2, SHAPE(-2, -12)), USG_SHAPE, "view: bad size");
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 24};
    expect_err(usg_view(&v, t, 9, nine), USG_SHAPE, "view: 9 dims");
    /* sizes whose product overflows int64 are refused, not wrapped */
    int64_t big = (int64_t)1 << 40;
    expect_err(usg_view(&v, t, 3, SHAPE(big, big, 0)), USG_SHAPE, "view:");
    expect_err(usg_view(&v, t, 3, SHAPE(big, big, -1)), USG_SHAPE, "view:");
    assert_null(v);
    /* -1 over an empty tensor is ambiguous */
    usg_tensor *z;
    assert_int_equal(usg_tensor_zeros(&z, USG_F32, 2, SHAPE(0, 4)), USG_OK);
    expect_err(usg_view(&v, z, 2, SHAPE(-1, 0)), USG_SHAPE, "cannot infer");
    expect_err(usg_view(&v, z, 3, SHAPE(2, 0, -1)), USG_SHAPE, "cannot infer");
    assert_null(v);
    assert_int_equal(usg_view(&v, z, 2, SHAPE(4, 0)), USG_OK);
    usg_tensor_release(v);
    usg_tensor_release(z);
    usg_tensor_release(m);
    usg_tensor_release(t);
}

static void test_reshape(void **state)
{
    usg_tensor *m = iota(2, SHAPE(2, 3)), *tt, *r;
    /* contiguous: a view */
    assert_int_equal(usg_reshape(&r, m, 2, SHAPE(3, -1)), USG_OK);
    assert_ptr_equal(r->storage, m->storage);
    expect(r, USG_F32, 2, SHAPE(3, 2), VALS(0, 1, 2, 3, 4, 5));
    /* a transpose: copied, in the transposed order */
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_reshape(&r, tt, 1, SHAPE(-1)), USG_OK);
    assert_ptr_not_equal(r->storage, m->storage);
    expect(r, USG_F32, 1, SHAPE(6), VALS(0, 3, 1, 4, 2, 5));
    /* a transpose split without merging: still a view */
    assert_int_equal(usg_reshape(&r, tt, 3, SHAPE(3, 1, 2)), USG_OK);
    assert_ptr_equal(r->storage, m->storage);
    check(r, USG_F32, 3, SHAPE(3, 1, 2), VALS(0, 3, 1, 4, 2, 5));
    usg_tensor_release(r);
    r = SENT;
    expect_err(usg_reshape(&r, tt, 2, SHAPE(4, -1)), USG_SHAPE, "reshape: cannot infer");
    expect_err(usg_reshape(&r, tt, 1, SHAPE(7)), USG_SHAPE, "reshape: shape (7,)");
    assert_null(r);
    usg_tensor_release(tt);
    usg_tensor_release(m);
}

/* ==== transpose, permute ================================================ */

static void test_transpose_permute(void **state)
{
    usg_tensor *m = iota(2, SHAPE(2, 3)), *v, *w;
    assert_int_equal(usg_transpose(&v, m, 0, 1), USG_OK);
    check_strides(v, SHAPE(1, 3), 0);
    check(v, USG_F32, 2, SHAPE(3, 2), VALS(0, 3, 1, 4, 2, 5));
    assert_false(usg_tensor_is_contiguous(v));
    assert_int_equal(usg_transpose(&w, v, -1, -2), USG_OK);       /* back */
    assert_true(usg_tensor_is_contiguous(w));
    check(w, USG_F32, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
    usg_tensor_release(w);
    usg_tensor_release(v);
    assert_int_equal(usg_transpose(&v, m, 1, 1), USG_OK);         /* same dim: identity */
    check(v, USG_F32, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
    usg_tensor_release(v);
    v = SENT;
    expect_err(usg_transpose(&v, m, 0, 2), USG_ARG, "transpose: dim");
    expect_err(usg_transpose(&v, m, -3, 0), USG_ARG, "transpose: dim");
    assert_null(v);
    usg_tensor *s = mk(USG_F32, 0, NULL, VALS(4));
    assert_int_equal(usg_transpose(&v, s, 0, -1), USG_OK);
    check(v, USG_F32, 0, NULL, VALS(4));
    usg_tensor_release(v);
    expect_err(usg_transpose(&v, s, 0, 1), USG_ARG, "transpose:");

    /* permute (2, 3, 4) -> (4, 2, 3) */
    usg_tensor *t = iota(3, SHAPE(2, 3, 4));
    assert_int_equal(usg_permute(&v, t, PERM(2, 0, 1)), USG_OK);
    assert_int_equal(v->shape[0], 4);
    assert_int_equal(v->shape[1], 2);
    assert_int_equal(v->shape[2], 3);
    check_strides(v, SHAPE(1, 12, 4), 0);
    usg_tensor_release(v);
    assert_int_equal(usg_permute(&v, t, PERM(-1, 0, -2)), USG_OK);  /* = (2, 0, 1) */
    check_strides(v, SHAPE(1, 12, 4), 0);
    usg_tensor_release(v);
    assert_int_equal(usg_permute(&v, t, PERM(0, 1, 2)), USG_OK);
    assert_true(usg_tensor_is_contiguous(v));
    usg_tensor_release(v);
    assert_int_equal(usg_permute(&v, s, NULL), USG_OK);               /* 0-dim: nothing */
    usg_tensor_release(v);
    v = SENT;
    expect_err(usg_permute(&v, t, PERM(0, 0, 1)), USG_ARG, "permute: dims must be");
    expect_err(usg_permute(&v, t, PERM(0, 1, 3)), USG_ARG, "permute:");
    expect_err(usg_permute(&v, t, PERM(0, 1, -4)), USG_ARG, "permute:");
    expect_err(usg_permute(&v, t, PERM(2, -1, 0)), USG_ARG, "permute:");   /* -1 is 2 */
    expect_err(usg_permute(&v, t, PERM(0, 1, INT32_MAX)), USG_ARG, "got 2147483648 at position 3");
    assert_null(v);
    usg_tensor_release(t);
    usg_tensor_release(s);
    usg_tensor_release(m);
}

/* ==== narrow, select ==================================================== */

static void test_narrow_select(void **state)
{
    usg_tensor *m = iota(2, SHAPE(3, 4)), *v, *w;
    assert_int_equal(usg_narrow(&v, m, 1, 1, 2), USG_OK);
    check_strides(v, SHAPE(4, 1), 1);
    check(v, USG_F32, 2, SHAPE(3, 2), VALS(1, 2, 5, 6, 9, 10));
    assert_false(usg_tensor_is_contiguous(v));
    /* narrow of a narrow adds offsets */
    assert_int_equal(usg_narrow(&w, v, 0, 2, 1), USG_OK);
    check_strides(w, SHAPE(4, 1), 9);
    check(w, USG_F32, 2, SHAPE(1, 2), VALS(9, 10));
    usg_tensor_release(w);
    usg_tensor_release(v);
    assert_int_equal(usg_narrow(&v, m, -2, 1, 2), USG_OK);          /* rows 1..2 */
    assert_true(usg_tensor_is_contiguous(v));
    check(v, USG_F32, 2, SHAPE(2, 4), VALS(4, 5, 6, 7, 8, 9, 10, 11));
    usg_tensor_release(v);
    assert_int_equal(usg_narrow(&v, m, 1, 4, 0), USG_OK);           /* empty at the end */
    assert_int_equal(usg_tensor_numel(v), 0);
    usg_tensor_release(v);
    v = SENT;
    expect_err(usg_narrow(&v, m, 1, 3, 2), USG_ARG, "narrow: 2 elements from 4");
    expect_err(usg_narrow(&v, m, 1, -1, 2), USG_ARG, "narrow:");
    expect_err(usg_narrow(&v, m, 1, 0, -1), USG_ARG, "narrow:");
    expect_err(usg_narrow(&v, m, 1, INT64_MAX, 2), USG_ARG, "narrow:");   /* no overflow */
    expect_err(usg_narrow(&v, m, 1, 2, INT64_MAX), USG_ARG, "narrow:");
    expect_err(usg_narrow(&v, m, 2, 0, 1), USG_ARG, "narrow: dim");
    assert_null(v);

    assert_int_equal(usg_select(&v, m, 0, 2), USG_OK);              /* row 2 */
    check_strides(v, SHAPE(1), 8);
    check(v, USG_F32, 1, SHAPE(4), VALS(8, 9, 10, 11));
    assert_int_equal(usg_select(&w, v, 0, 3), USG_OK);              /* to 0-dim */
    check(w, USG_F32, 0, NULL, VALS(11));
    assert_int_equal(w->offset, 11);
    usg_tensor_release(w);
    usg_tensor_release(v);
    assert_int_equal(usg_select(&v, m, -1, 1), USG_OK);             /* column 1 */
    check_strides(v, SHAPE(4), 1);
    check(v, USG_F32, 1, SHAPE(3), VALS(1, 5, 9));
    usg_tensor_release(v);
    v = SENT;
    expect_err(usg_select(&v, m, 0, 3), USG_ARG, "select: index 4");
    expect_err(usg_select(&v, m, 0, -1), USG_ARG, "select:");
    expect_err(usg_select(&v, m, 0, INT64_MAX), USG_ARG, "select: index 9223372036854775807");
    expect_err(usg_select(&v, m, INT32_MAX, 0), USG_ARG, "select: dim 2147483648 out of range");
    expect_err(usg_transpose(&v, m, INT32_MIN, 0), USG_ARG, "transpose: dim");
    expect_err(usg_unsqueeze(&v, m, INT32_MAX), USG_ARG, "unsqueeze: dim");
    expect_err(usg_select(&v, m, 2, 0), USG_ARG, "select: dim");
    assert_null(v);
    usg_tensor_release(m);
}

/* ==== unsqueeze, squeeze ================================================ */

static void test_unsqueeze(void **state)
{
    usg_tensor *m = iota(2, SHAPE(2, 3)), *v;
    static const struct { int dim; int64_t shape[3], stride[3]; } cases[] = {
        {0, {1, 2, 3}, {6, 3, 1}}, {1, {2, 1, 3}, {3, 3, 1}}, {2, {2, 3, 1}, {3, 1, 1}},
        {-1, {2, 3, 1}, {3, 1, 1}}, {-2, {2, 1, 3}, {3, 3, 1}}, {-3, {1, 2, 3}, {6, 3, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(usg_unsqueeze(&v, m, cases[i].dim), USG_OK);
        check(v, USG_F32, 3, cases[i].shape, VALS(0, 1, 2, 3, 4, 5));
        check_strides(v, cases[i].stride, 0);
        assert_true(usg_tensor_is_contiguous(v));
        usg_tensor_release(v);
    }
    /* of a transpose (3, 2) strides (1, 3) */
    usg_tensor *tt;
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_unsqueeze(&v, tt, 1), USG_OK);
    check_strides(v, SHAPE(1, 6, 3), 0);
    check(v, USG_F32, 3, SHAPE(3, 1, 2), VALS(0, 3, 1, 4, 2, 5));
    usg_tensor_release(v);
    assert_int_equal(usg_unsqueeze(&v, tt, 2), USG_OK);
    check(v, USG_F32, 3, SHAPE(3, 2, 1), VALS(0, 3, 1, 4, 2, 5));
    usg_tensor_release(v);
    usg_tensor_release(tt);
    /* 0-dim */
    usg_tensor *s = mk(USG_I32, 0, NULL, VALS(7));
    assert_int_equal(usg_unsqueeze(&v, s, 0), USG_OK);
    check(v, USG_I32, 1, SHAPE(1), VALS(7));
    usg_tensor_release(v);
    assert_int_equal(usg_unsqueeze(&v, s, -1), USG_OK);
    check(v, USG_I32, 1, SHAPE(1), VALS(7));
    usg_tensor_release(v);
    v = SENT;
    expect_err(usg_unsqueeze(&v, s, 1), USG_ARG, "unsqueeze: dim");
    expect_err(usg_unsqueeze(&v, m, 3), USG_ARG, "unsqueeze: dim");
    expect_err(usg_unsqueeze(&v, m, -4), USG_ARG, "unsqueeze: dim");
    usg_tensor *e8;
    assert_int_equal(usg_tensor_zeros(&e8, USG_F32, 8, SHAPE(1, 1, 1, 1, 1, 1, 1, 2)), USG_OK);
    expect_err(usg_unsqueeze(&v, e8, 0), USG_SHAPE, "unsqueeze: a tensor has at most 8");
    assert_null(v);
    usg_tensor_release(e8);
    usg_tensor_release(s);
    usg_tensor_release(m);
}

static void test_squeeze(void **state)
{
    usg_tensor *t = iota(4, SHAPE(1, 2, 1, 3)), *v;
    assert_int_equal(usg_squeeze(&v, t, USG_ALL_DIMS), USG_OK);
    check(v, USG_F32, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
    check_strides(v, SHAPE(3, 1), 0);
    usg_tensor_release(v);
    assert_int_equal(usg_squeeze(&v, t, 0), USG_OK);
    check(v, USG_F32, 3, SHAPE(2, 1, 3), VALS(0, 1, 2, 3, 4, 5));
    usg_tensor_release(v);
    assert_int_equal(usg_squeeze(&v, t, -2), USG_OK);
    check(v, USG_F32, 3, SHAPE(1, 2, 3), VALS(0, 1, 2, 3, 4, 5));
    usg_tensor_release(v);
    assert_int_equal(usg_squeeze(&v, t, 1), USG_OK);                /* size 2: no-op */
    check(v, USG_F32, 4, SHAPE(1, 2, 1, 3), VALS(0, 1, 2, 3, 4, 5));
    usg_tensor_release(v);
    v = SENT;
    expect_err(usg_squeeze(&v, t, 4), USG_ARG, "squeeze: dim");
    expect_err(usg_squeeze(&v, t, -5), USG_ARG, "squeeze: dim");
    assert_null(v);
    usg_tensor_release(t);
    /* all ones: 0-dim */
    t = mk(USG_F64, 2, SHAPE(1, 1), VALS(3));
    assert_int_equal(usg_squeeze(&v, t, USG_ALL_DIMS), USG_OK);
    check(v, USG_F64, 0, NULL, VALS(3));
    usg_tensor_release(v);
    usg_tensor_release(t);
    /* squeeze of a 0-dim: itself */
    t = mk(USG_F64, 0, NULL, VALS(3));
    assert_int_equal(usg_squeeze(&v, t, USG_ALL_DIMS), USG_OK);
    check(v, USG_F64, 0, NULL, VALS(3));
    usg_tensor_release(v);
    usg_tensor_release(t);
}

/* ==== expand ============================================================ */

static void test_expand(void **state)
{
    usg_tensor *c = mk(USG_F32, 2, SHAPE(3, 1), VALS(1, 2, 3)), *v;
    assert_int_equal(usg_expand(&v, c, 2, SHAPE(3, 4)), USG_OK);
    check_strides(v, SHAPE(1, 0), 0);
    check(v, USG_F32, 2, SHAPE(3, 4), VALS(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
    assert_false(usg_tensor_is_contiguous(v));
    usg_tensor_release(v);
    assert_int_equal(usg_expand(&v, c, 3, SHAPE(2, -1, 2)), USG_OK);  /* -1 keeps */
    check_strides(v, SHAPE(0, 1, 0), 0);
    check(v, USG_F32, 3, SHAPE(2, 3, 2), VALS(1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3));
    usg_tensor_release(v);
    assert_int_equal(usg_expand(&v, c, 2, SHAPE(3, 1)), USG_OK);      /* same shape */
    assert_true(usg_tensor_is_contiguous(v));
    usg_tensor_release(v);
    assert_int_equal(usg_expand(&v, c, 2, SHAPE(3, 0)), USG_OK);      /* 1 -> 0 */
    assert_int_equal(usg_tensor_numel(v), 0);
    usg_tensor_release(v);

    usg_tensor *r = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 3));
    assert_int_equal(usg_expand(&v, r, 2, SHAPE(2, 3)), USG_OK);
    check_strides(v, SHAPE(0, 1), 0);
    check(v, USG_F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 1, 2, 3));
    usg_tensor_release(v);
    usg_tensor *s = mk(USG_I32, 0, NULL, VALS(5));
    assert_int_equal(usg_expand(&v, s, 2, SHAPE(2, 2)), USG_OK);
    check_strides(v, SHAPE(0, 0), 0);
    check(v, USG_I32, 2, SHAPE(2, 2), VALS(5, 5, 5, 5));
    usg_tensor_release(v);
    /* a huge but valid view costs nothing */
    int64_t h = (int64_t)1 << 31;
    assert_int_equal(usg_expand(&v, s, 2, SHAPE(h, h)), USG_OK);
    assert_int_equal(usg_tensor_numel(v), h * h);
    usg_tensor *big = SENT;
    expect_err(usg_clone(&big, v), USG_NOMEM, "too large");
    assert_null(big);
    usg_tensor_release(v);

    v = SENT;
    expect_err(usg_expand(&v, r, 1, SHAPE(4)), USG_SHAPE, "expand: cannot expand (3,) to (4,)");
    expect_err(usg_expand(&v, c, 1, SHAPE(3)), USG_SHAPE, "expand:");      /* fewer dims */
    expect_err(usg_expand(&v, c, 3, SHAPE(-1, 3, 4)), USG_SHAPE, "expand:"); /* -1 in a new dim */
    expect_err(usg_expand(&v, c, 2, SHAPE(3, -2)), USG_SHAPE, "expand:");
    expect_err(usg_expand(&v, c, 2, SHAPE(6, 4)), USG_SHAPE, "dim 1: 3 to 6");
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 3, 1};
    expect_err(usg_expand(&v, c, 9, nine), USG_SHAPE, "expand:");
    /* a view with more elements than int64 holds is refused */
    int64_t big40 = (int64_t)1 << 40;
    expect_err(usg_expand(&v, s, 2, SHAPE(big40, big40)), USG_SHAPE, "expand:");
    expect_err(usg_expand(&v, s, 3, SHAPE(big40, big40, 0)), USG_SHAPE, "expand:");
    assert_null(v);
    usg_tensor_release(s);
    usg_tensor_release(r);
    usg_tensor_release(c);
}

/* ==== Copies and conversion ============================================= */

static void test_contiguous_clone(void **state)
{
    usg_tensor *m = iota(2, SHAPE(2, 3)), *c, *tt;
    assert_int_equal(usg_contiguous(&c, m), USG_OK);
    assert_ptr_equal(c, m);                              /* itself, retained */
    assert_int_equal(m->refcount, 2);
    usg_tensor_release(c);
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_contiguous(&c, tt), USG_OK);
    assert_ptr_not_equal(c->storage, m->storage);
    check_strides(c, SHAPE(2, 1), 0);
    expect(c, USG_F32, 2, SHAPE(3, 2), VALS(0, 3, 1, 4, 2, 5));
    /* clone always copies */
    assert_int_equal(usg_clone(&c, m), USG_OK);
    assert_ptr_not_equal(c->storage, m->storage);
    ((float *)usg_tensor_data(c))[0] = 42;
    same(usg_tensor_get_flat(m, 0), 0);
    expect(c, USG_F32, 2, SHAPE(2, 3), VALS(42, 1, 2, 3, 4, 5));
    /* clone of an expanded view materialises it */
    usg_tensor *e;
    usg_tensor *row = mk(USG_I32, 1, SHAPE(2), VALS(7, 8));
    assert_int_equal(usg_expand(&e, row, 2, SHAPE(3, 2)), USG_OK);
    assert_int_equal(usg_clone(&c, e), USG_OK);
    expect(c, USG_I32, 2, SHAPE(3, 2), VALS(7, 8, 7, 8, 7, 8));
    assert_int_equal(usg_contiguous(&c, e), USG_OK);
    assert_ptr_not_equal(c, e);
    expect(c, USG_I32, 2, SHAPE(3, 2), VALS(7, 8, 7, 8, 7, 8));
    usg_tensor_release(e);
    usg_tensor_release(row);
    /* a contiguous view at an offset is contiguous: no copy */
    usg_tensor *n;
    assert_int_equal(usg_narrow(&n, m, 0, 1, 1), USG_OK);
    assert_int_equal(usg_contiguous(&c, n), USG_OK);
    assert_ptr_equal(c, n);
    usg_tensor_release(c);
    usg_tensor_release(n);
    usg_tensor_release(tt);
    usg_tensor_release(m);
}

static void test_to_dtype(void **state)
{
    usg_tensor *f = mk(USG_F64, 2, SHAPE(2, 2), VALS(2.7, -2.7, 1e10, 0.1)), *c, *tt;
    assert_int_equal(usg_to_dtype(&c, f, USG_F64), USG_OK);
    assert_ptr_equal(c, f);
    usg_tensor_release(c);
    /* 1e10 does not fit in i32: refused, not saturated */
    expect_err(usg_to_dtype(&c, f, USG_I32), USG_ARG, "to: the value 10000000000 does not fit");
    usg_tensor_set(f, (const int64_t[]){1, 0}, 2147483647.9);
    assert_int_equal(usg_to_dtype(&c, f, USG_I32), USG_OK);
    expect(c, USG_I32, 2, SHAPE(2, 2), VALS(2, -2, INT32_MAX, 0));
    assert_int_equal(usg_to_dtype(&c, f, USG_F32), USG_OK);
    expect(c, USG_F32, 2, SHAPE(2, 2), VALS((float)2.7, (float)-2.7, (float)2147483647.9, (float)0.1));
    assert_int_equal(usg_transpose(&tt, f, 0, 1), USG_OK);
    assert_int_equal(usg_to_dtype(&c, tt, USG_F64), USG_OK);     /* same dtype, not contiguous */
    assert_ptr_not_equal(c, tt);
    expect(c, USG_F64, 2, SHAPE(2, 2), VALS(2.7, 2147483647.9, -2.7, 0.1));
    assert_int_equal(usg_to_dtype(&c, tt, USG_I32), USG_OK);
    expect(c, USG_I32, 2, SHAPE(2, 2), VALS(2, INT32_MAX, -2, 0));
    usg_tensor *i = mk(USG_I32, 1, SHAPE(2), VALS(16777217, -3));
    assert_int_equal(usg_to_dtype(&c, i, USG_F64), USG_OK);
    expect(c, USG_F64, 1, SHAPE(2), VALS(16777217, -3));
    assert_int_equal(usg_to_dtype(&c, i, USG_F32), USG_OK);
    expect(c, USG_F32, 1, SHAPE(2), VALS(16777216, -3));         /* f32 rounds */
    usg_tensor_release(i);
    usg_tensor_release(tt);
    usg_tensor_release(f);
}

static void test_copy(void **state)
{
    usg_tensor *dst, *src;
    /* broadcast src */
    assert_int_equal(usg_tensor_zeros(&dst, USG_F32, 2, SHAPE(2, 3)), USG_OK);
    src = mk(USG_F32, 1, SHAPE(3), VALS(1, 2, 3));
    long v0 = dst->storage->version;
    assert_int_equal(usg_copy_(dst, src), USG_OK);
    assert_true(dst->storage->version > v0);           /* an in-place write */
    check(dst, USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 1, 2, 3));
    usg_tensor_release(src);
    src = mk(USG_F64, 2, SHAPE(2, 1), VALS(-1.5, 2.5));   /* and convert */
    assert_int_equal(usg_copy_(dst, src), USG_OK);
    check(dst, USG_F32, 2, SHAPE(2, 3), VALS(-1.5, -1.5, -1.5, 2.5, 2.5, 2.5));
    usg_tensor_release(src);
    src = mk(USG_F64, 0, NULL, VALS(9));
    assert_int_equal(usg_copy_(dst, src), USG_OK);
    check(dst, USG_F32, 2, SHAPE(2, 3), VALS(9, 9, 9, 9, 9, 9));
    usg_tensor_release(src);
    /* f64 -> i32 truncates; a value past the i32 range is refused before
     * anything is written */
    usg_tensor *i;
    assert_int_equal(usg_tensor_zeros(&i, USG_I32, 1, SHAPE(3)), USG_OK);
    src = mk(USG_F64, 1, SHAPE(3), VALS(1.9, -1.9, 1e12));
    expect_err(usg_copy_(i, src), USG_ARG, "copy_: the value 1000000000000 does not fit in i32");
    check(i, USG_I32, 1, SHAPE(3), VALS(0, 0, 0));
    usg_tensor_release(src);
    src = mk(USG_F64, 1, SHAPE(3), VALS(1.9, -1.9, 2147483647.5));
    assert_int_equal(usg_copy_(i, src), USG_OK);
    check(i, USG_I32, 1, SHAPE(3), VALS(1, -1, INT32_MAX));
    usg_tensor_release(src);
    usg_tensor_release(i);

    /* into a view: only the view's elements change */
    usg_tensor *col;
    assert_int_equal(usg_select(&col, dst, 1, 1), USG_OK);       /* (2,), stride 3 */
    src = mk(USG_I32, 1, SHAPE(2), VALS(-4, -5));
    assert_int_equal(usg_copy_(col, src), USG_OK);
    check(dst, USG_F32, 2, SHAPE(2, 3), VALS(9, -4, 9, 9, -5, 9));
    usg_tensor_release(src);
    usg_tensor_release(col);

    /* errors */
    src = mk(USG_F32, 1, SHAPE(2), VALS(1, 2));
    expect_err(usg_copy_(dst, src), USG_SHAPE, "copy: source (2,) does not broadcast to "
               "destination (2, 3)");
    usg_tensor_release(src);
    src = mk(USG_F32, 3, SHAPE(1, 2, 3), VALS(1, 2, 3, 4, 5, 6));
    expect_err(usg_copy_(dst, src), USG_SHAPE, "copy:");
    check(dst, USG_F32, 2, SHAPE(2, 3), VALS(9, -4, 9, 9, -5, 9));   /* unchanged */
    usg_tensor_release(src);
    usg_tensor_release(dst);

    /* empty */
    usg_tensor *e1, *e2;
    assert_int_equal(usg_tensor_zeros(&e1, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    assert_int_equal(usg_tensor_zeros(&e2, USG_F64, 1, SHAPE(3)), USG_OK);
    assert_int_equal(usg_copy_(e1, e2), USG_OK);
    usg_tensor_release(e1);
    usg_tensor_release(e2);
}

/* Writes into a tensor whose elements share memory are refused by every
 * in-place entry point, and nothing is written; views that do not alias
 * (transposed, narrowed, a new size-1 dim) stay writable. */
static void test_check_writable(void **state)
{
    (void)state;
    usg_tensor *col = iota(2, SHAPE(3, 1)), *e, *t, *n, *u, *src = iota(2, SHAPE(3, 4));
    assert_int_equal(usg_expand(&e, col, 2, SHAPE(3, 4)), USG_OK);
    expect_err(usg_check_writable(e, "f"), USG_ARG, "f: the tensor's elements overlap in memory");
    expect_err(usg_copy_(e, src), USG_ARG, "copy_: the tensor's elements overlap");
    expect_err(usg_fill_(e, 7), USG_ARG, "fill_: the tensor's elements overlap");
    expect_err(usg_clamp_(e, 0, 1), USG_ARG, "clamp_: the tensor's elements overlap");
    check(col, USG_F32, 2, SHAPE(3, 1), VALS(0, 1, 2));
    assert_int_equal(usg_transpose(&t, src, 0, 1), USG_OK);
    assert_int_equal(usg_narrow(&n, t, 1, 1, 2), USG_OK);
    assert_int_equal(usg_unsqueeze(&u, n, 0), USG_OK);
    assert_int_equal(usg_check_writable(t, "f"), USG_OK);
    assert_int_equal(usg_check_writable(n, "f"), USG_OK);
    assert_int_equal(usg_check_writable(u, "f"), USG_OK);
    /* a hand-made view whose rows overlap: (2, 3) with strides (1, 1) */
    usg_tensor bad = *src;
    bad.ndim = 2; bad.shape[0] = 2; bad.shape[1] = 3; bad.stride[0] = 1; bad.stride[1] = 1;
    expect_err(usg_check_writable(&bad, "g"), USG_ARG, "g: the tensor's elements overlap");
    usg_tensor_release(u); usg_tensor_release(n); usg_tensor_release(t);
    usg_tensor_release(e); usg_tensor_release(col); usg_tensor_release(src);
}

/* A lower cap on one allocation fails like an absurd size, and 0 puts
 * the default back. */
static void test_alloc_limit(void **state)
{
    (void)state;
    usg_tensor *t = NULL;
    assert_int_equal(usg_set_alloc_limit(4096), USG_MAX_BYTES);
    expect_err(usg_tensor_zeros(&t, USG_F32, 1, SHAPE(1025)), USG_NOMEM, "the limit is 4096");
    assert_null(t);
    assert_int_equal(usg_tensor_zeros(&t, USG_F32, 1, SHAPE(1024)), USG_OK);
    usg_tensor_release(t);
    assert_int_equal(usg_set_alloc_limit(0), 4096);
    assert_int_equal(usg_set_alloc_limit(0), USG_MAX_BYTES);
}

static void test_copy_overlap(void **state)
{
    /* a square matrix := its own transpose, in the same storage */
    usg_tensor *m = iota(2, SHAPE(3, 3)), *tt;
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_copy_(m, tt), USG_OK);
    check(m, USG_F32, 2, SHAPE(3, 3), VALS(0, 3, 6, 1, 4, 7, 2, 5, 8));
    /* and the other way round (dst strided) */
    assert_int_equal(usg_copy_(tt, m), USG_OK);
    check(m, USG_F32, 2, SHAPE(3, 3), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8));
    usg_tensor_release(tt);
    /* shifted windows of one vector, both directions */
    usg_tensor *x = iota(1, SHAPE(6)), *a, *b;
    assert_int_equal(usg_narrow(&a, x, 0, 1, 5), USG_OK);
    assert_int_equal(usg_narrow(&b, x, 0, 0, 5), USG_OK);
    assert_int_equal(usg_copy_(a, b), USG_OK);                  /* x[1:6] = x[0:5] */
    check(x, USG_F32, 1, SHAPE(6), VALS(0, 0, 1, 2, 3, 4));
    assert_int_equal(usg_copy_(b, a), USG_OK);                  /* x[0:5] = x[1:6] */
    check(x, USG_F32, 1, SHAPE(6), VALS(0, 1, 2, 3, 4, 4));
    /* a row broadcast over its own matrix */
    usg_tensor *row;
    assert_int_equal(usg_select(&row, m, 0, 2), USG_OK);
    assert_int_equal(usg_copy_(m, row), USG_OK);
    check(m, USG_F32, 2, SHAPE(3, 3), VALS(6, 7, 8, 6, 7, 8, 6, 7, 8));
    /* itself */
    assert_int_equal(usg_copy_(x, x), USG_OK);
    check(x, USG_F32, 1, SHAPE(6), VALS(0, 1, 2, 3, 4, 4));
    usg_tensor_release(row);
    usg_tensor_release(a);
    usg_tensor_release(b);
    usg_tensor_release(x);
    usg_tensor_release(m);
}

static void test_fill(void **state)
{
    usg_tensor *m = iota(2, SHAPE(3, 4)), *v, *tt;
    assert_int_equal(usg_narrow(&v, m, 1, 1, 2), USG_OK);
    long v0 = m->storage->version;
    assert_int_equal(usg_fill_(v, -1), USG_OK);
    assert_true(m->storage->version > v0);
    check(m, USG_F32, 2, SHAPE(3, 4), VALS(0, -1, -1, 3, 4, -1, -1, 7, 8, -1, -1, 11));
    usg_tensor_release(v);
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_narrow(&v, tt, 0, 3, 1), USG_OK);       /* column 3 of m */
    assert_int_equal(usg_fill_(v, 0.5), USG_OK);
    check(m, USG_F32, 2, SHAPE(3, 4), VALS(0, -1, -1, 0.5, 4, -1, -1, 0.5, 8, -1, -1, 0.5));
    usg_tensor_release(v);
    usg_tensor_release(tt);
    assert_int_equal(usg_fill_(m, 2), USG_OK);                   /* contiguous f32 path */
    check(m, USG_F32, 2, SHAPE(3, 4), VALS(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2));
    usg_tensor_release(m);

    usg_tensor *i, *d, *e;
    assert_int_equal(usg_tensor_zeros(&i, USG_I32, 2, SHAPE(2, 2)), USG_OK);
    assert_int_equal(usg_select(&v, i, 1, 0), USG_OK);
    assert_int_equal(usg_fill_(v, 3.9), USG_OK);
    check(i, USG_I32, 2, SHAPE(2, 2), VALS(3, 0, 3, 0));
    usg_tensor_release(v);
    usg_tensor_release(i);
    assert_int_equal(usg_tensor_zeros(&d, USG_F64, 1, SHAPE(3)), USG_OK);
    assert_int_equal(usg_fill_(d, 0.1), USG_OK);
    check(d, USG_F64, 1, SHAPE(3), VALS(0.1, 0.1, 0.1));
    /* an expanded view: its positions share one element, so it is refused
     * as every in-place write is (usg_check_writable), and nothing changes */
    assert_int_equal(usg_narrow(&v, d, 0, 1, 1), USG_OK);
    assert_int_equal(usg_expand(&e, v, 2, SHAPE(4, 5)), USG_OK);
    expect_err(usg_fill_(e, 7), USG_ARG, "fill_: the tensor's elements overlap in memory");
    check(d, USG_F64, 1, SHAPE(3), VALS(0.1, 0.1, 0.1));
    usg_tensor_release(e);
    usg_tensor_release(v);
    usg_tensor_release(d);
}

/* ==== Allocation failure ================================================ */

static void test_nomem_creation(void **state)
{
    usg_tensor *t;
    int n;
    NOMEM_LOOP(n, t, usg_tensor_empty(&t, USG_F32, 2, SHAPE(3, 4)));
    assert_int_equal(n, 3);                    /* storage, data, header */
    NOMEM_LOOP(n, t, usg_tensor_zeros(&t, USG_F32, 2, SHAPE(3, 4)));
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, t, usg_tensor_full(&t, USG_I32, 1, SHAPE(3), 2));
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, t, usg_tensor_from_doubles(&t, USG_F64, 1, SHAPE(2), VALS(1, 2)));
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, t, usg_arange(&t, USG_F32, 0, 10, 1));
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, t, usg_linspace(&t, USG_F32, 0, 1, 10));
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, t, usg_eye(&t, USG_F32, 3, 2));
    assert_int_equal(n, 3);
    usg_tensor *like = iota(1, SHAPE(4));
    NOMEM_LOOP(n, t, usg_tensor_empty_like(&t, like, USG_F64));
    assert_int_equal(n, 3);
    usg_tensor_release(like);
}

static void test_nomem_views(void **state)
{
    usg_tensor *m = iota(3, SHAPE(2, 3, 4)), *tt, *e, *t;
    usg_tensor *row = iota(1, SHAPE(4));
    assert_int_equal(usg_transpose(&tt, m, 0, 2), USG_OK);
    assert_int_equal(usg_expand(&e, row, 2, SHAPE(3, 4)), USG_OK);
    int n;
    NOMEM_LOOP(n, t, usg_view(&t, m, 2, SHAPE(6, -1)));
    assert_int_equal(n, 1);                    /* a header only */
    NOMEM_LOOP(n, t, usg_reshape(&t, m, 1, SHAPE(24)));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_reshape(&t, tt, 1, SHAPE(24)));    /* copies */
    assert_true(n >= 4);
    NOMEM_LOOP(n, t, usg_transpose(&t, m, 0, 1));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_permute(&t, m, PERM(1, 2, 0)));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_narrow(&t, m, 2, 1, 2));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_select(&t, m, 1, 2));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_unsqueeze(&t, m, 3));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_squeeze(&t, m, USG_ALL_DIMS));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_expand(&t, row, 3, SHAPE(2, 3, 4)));
    assert_int_equal(n, 1);
    NOMEM_LOOP(n, t, usg_contiguous(&t, m));                /* itself: nothing */
    assert_int_equal(n, 0);
    NOMEM_LOOP(n, t, usg_contiguous(&t, tt));
    assert_true(n >= 3);
    NOMEM_LOOP(n, t, usg_contiguous(&t, e));
    assert_true(n >= 3);
    NOMEM_LOOP(n, t, usg_clone(&t, m));
    assert_true(n >= 3);
    NOMEM_LOOP(n, t, usg_to_dtype(&t, m, USG_F64));
    assert_true(n >= 3);
    NOMEM_LOOP(n, t, usg_to_dtype(&t, tt, USG_I32));
    assert_true(n >= 3);
    usg_tensor_release(e);
    usg_tensor_release(row);
    usg_tensor_release(tt);
    usg_tensor_release(m);
}

static void test_nomem_copy(void **state)
{
    /* copy_ allocates (a broadcast header, a copy of an overlapping source)
     * before it writes: on failure dst is untouched */
    usg_tensor *m = iota(2, SHAPE(3, 3)), *tt, *d;
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_tensor_zeros(&d, USG_F32, 2, SHAPE(3, 3)), USG_OK);
    int fails = 0;
    for (long k = 1; k < 64; k++) {
        size_t live = usg_alloc_live_bytes();
        usg_alloc_fail_after(k);
        usg_status s = usg_copy_(m, tt);
        usg_alloc_fail_after(0);
        assert_int_equal(usg_alloc_live_bytes(), live);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
        check(m, USG_F32, 2, SHAPE(3, 3), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8));
        fails++;
    }
    assert_true(fails >= 4);                     /* the header, then the copy */
    check(m, USG_F32, 2, SHAPE(3, 3), VALS(0, 3, 6, 1, 4, 7, 2, 5, 8));
    fails = 0;
    for (long k = 1; k < 64; k++) {
        usg_alloc_fail_after(k);
        usg_status s = usg_copy_(d, tt);          /* no overlap: one header */
        usg_alloc_fail_after(0);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
        fails++;
    }
    assert_int_equal(fails, 1);
    check(d, USG_F32, 2, SHAPE(3, 3), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8));
    usg_tensor_release(d);
    usg_tensor_release(tt);
    usg_tensor_release(m);
}

/* Bytes as unsigned values, scaled, into each dtype. */
static void test_from_bytes(void **state)
{
    (void)state;
    const unsigned char b[4] = {0, 1, 128, 255};
    usg_tensor *t;
    assert_int_equal(usg_tensor_from_bytes(&t, USG_I32, 2, SHAPE(2, 2), b, 1), USG_OK);
    assert_int_equal(((int32_t *)usg_tensor_data(t))[3], 255);
    usg_tensor_release(t);
    assert_int_equal(usg_tensor_from_bytes(&t, USG_F32, 1, SHAPE(4), b, 1.0 / 255), USG_OK);
    assert_true(((float *)usg_tensor_data(t))[3] == 1.0f && ((float *)usg_tensor_data(t))[0] == 0.0f);
    usg_tensor_release(t);
    assert_int_equal(usg_tensor_from_bytes(&t, USG_F64, 1, SHAPE(4), b, 2), USG_OK);
    assert_true(((double *)usg_tensor_data(t))[2] == 256.0);
    usg_tensor_release(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_and_errmsg),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_empty_zeros_full),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_live_bytes),
        cmocka_unit_test(test_from_doubles),
        cmocka_unit_test(test_arange),
        cmocka_unit_test(test_linspace),
        cmocka_unit_test(test_eye),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_refcounts),
        cmocka_unit_test(test_get_set_flat),
        cmocka_unit_test(test_shape_str),
        cmocka_unit_test(test_broadcast_shape),
        cmocka_unit_test(test_contiguity),
        cmocka_unit_test(test_view),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_transpose_permute),
        cmocka_unit_test(test_narrow_select),
        cmocka_unit_test(test_unsqueeze),
        cmocka_unit_test(test_squeeze),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_contiguous_clone),
        cmocka_unit_test(test_to_dtype),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_copy_overlap),
        cmocka_unit_test(test_check_writable),
        cmocka_unit_test(test_alloc_limit),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_nomem_creation),
        cmocka_unit_test(test_nomem_views),
        cmocka_unit_test(test_nomem_copy),
        cmocka_unit_test(test_from_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_reduce.c -- cmocka tests of host/core/reduce.c: hand-computed values
 * for every reduction, on contiguous tensors and on views (transposed,
 * narrowed, permuted, expanded), every dim, every dtype, keepdim shapes,
 * ties, NaN and inf, empty tensors, each error path, and allocation failure
 * at every allocation. A naive reference (element by element through
 * usg_tensor_get_flat) cross-checks the blocked kernels on larger shapes.
 */
#include "testutil.h"

/* ==== Helpers =========================================================== */

static double tol_of(usg_dtype dt) { return dt == USG_F64 ? 1e-12 : dt == USG_F32 ? 2e-6 : 0; }

/* t has dtype dt, shape (ndim, shape), is contiguous and holds v. Releases t. */
static void expect(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    expect_tol(t, dt, ndim, shape, v, tol_of(dt));
}

/* (2, 3) f32/f64/i32: [[1, 5, 3], [4, 2, 6]] */
static usg_tensor *m23(usg_dtype dt) { return mk(dt, 2, SHAPE(2, 3), VALS(1, 5, 3, 4, 2, 6)); }

static const usg_dtype DTYPES[] = {USG_F32, USG_F64, USG_I32};

/* ==== Shape helpers ===================================================== */

static void test_shape_helpers(void **state)
{
    usg_tensor *t;
    int64_t shape[USG_MAX_DIMS], outer, n, inner;
    assert_int_equal(usg_tensor_zeros(&t, USG_F32, 3, SHAPE(2, 3, 4)), USG_OK);
    assert_int_equal(usg_reduced_shape(shape, t, 1, false), 2);
    assert_int_equal(shape[0], 2); assert_int_equal(shape[1], 4);
    assert_int_equal(usg_reduced_shape(shape, t, 1, true), 3);
    assert_int_equal(shape[1], 1); assert_int_equal(shape[2], 4);
    assert_int_equal(usg_reduced_shape(shape, t, USG_ALL_DIMS, false), 0);
    assert_int_equal(usg_reduced_shape(shape, t, USG_ALL_DIMS, true), 3);
    assert_int_equal(shape[0] * shape[1] * shape[2], 1);
    usg_outer_inner(t, 0, &outer, &n, &inner);
    assert_true(outer == 1 && n == 2 && inner == 12);
    usg_outer_inner(t, 1, &outer, &n, &inner);
    assert_true(outer == 2 && n == 3 && inner == 4);
    usg_outer_inner(t, 2, &outer, &n, &inner);
    assert_true(outer == 6 && n == 4 && inner == 1);
    usg_outer_inner(t, USG_ALL_DIMS, &outer, &n, &inner);
    assert_true(outer == 1 && n == 24 && inner == 1);
    usg_tensor_release(t);
}

/* ==== sum, mean, prod =================================================== */

static void test_sum_every_dim_and_dtype(void **state)
{
    for (int k = 0; k < 3; k++) {
        usg_dtype dt = DTYPES[k];
        usg_tensor *a = m23(dt), *o;
        assert_int_equal(usg_sum(&o, a, 0, false), USG_OK);
        expect(o, dt, 1, SHAPE(3), VALS(5, 7, 9));
        assert_int_equal(usg_sum(&o, a, 1, false), USG_OK);
        expect(o, dt, 1, SHAPE(2), VALS(9, 12));
        assert_int_equal(usg_sum(&o, a, -1, true), USG_OK);
        expect(o, dt, 2, SHAPE(2, 1), VALS(9, 12));
        assert_int_equal(usg_sum(&o, a, -2, true), USG_OK);
        expect(o, dt, 2, SHAPE(1, 3), VALS(5, 7, 9));
        assert_int_equal(usg_sum(&o, a, USG_ALL_DIMS, false), USG_OK);
        expect(o, dt, 0, NULL, VALS(21));
        assert_int_equal(usg_sum(&o, a, USG_ALL_DIMS, true), USG_OK);
        expect(o, dt, 2, SHAPE(1, 1), VALS(21));
        usg_tensor_release(a);
    }
}

static void test_mean_prod(void **state)
{
    for (int k = 0; k < 3; k++) {
        usg_dtype dt = DTYPES[k], fdt = dt == USG_I32 ? USG_F32 : dt;
        usg_tensor *a = m23(dt), *o;
        assert_int_equal(usg_mean(&o, a, 0, false), USG_OK);
        expect(o, fdt, 1, SHAPE(3), VALS(2.5, 3.5, 4.5));
        assert_int_equal(usg_mean(&o, a, 1, true), USG_OK);
        expect(o, fdt, 2, SHAPE(2, 1), VALS(3, 4));
        assert_int_equal(usg_mean(&o, a, USG_ALL_DIMS, false), USG_OK);
        expect(o, fdt, 0, NULL, VALS(3.5));
        assert_int_equal(usg_prod(&o, a, 0, false), USG_OK);
        expect(o, dt, 1, SHAPE(3), VALS(4, 10, 18));
        assert_int_equal(usg_prod(&o, a, 1, false), USG_OK);
        expect(o, dt, 1, SHAPE(2), VALS(15, 48));
        assert_int_equal(usg_prod(&o, a, USG_ALL_DIMS, false), USG_OK);
        expect(o, dt, 0, NULL, VALS(720));
        usg_tensor_release(a);
    }
}

/* i32 sums and products are exact, and a result out of the i32 range is
 * an error rather than a number wrapped modulo 2^32; i32 means are f32. */
static void test_i32_wrap(void **state)
{
    usg_tensor *a = mk(USG_I32, 1, SHAPE(2), VALS(INT32_MAX, 1)), *o;
    expect_err(usg_sum(&o, a, 0, false), USG_ARG, "sum: the result 2147483648 does not fit in i32");
    assert_null(o);
    assert_int_equal(usg_mean(&o, a, 0, false), USG_OK);
    expect(o, USG_F32, 0, NULL, VALS(1073741824.0));
    usg_tensor_release(a);
    a = mk(USG_I32, 1, SHAPE(3), VALS(INT32_MAX, INT32_MAX, -INT32_MAX));
    assert_int_equal(usg_sum(&o, a, USG_ALL_DIMS, false), USG_OK);   /* exact on the way */
    expect(o, USG_I32, 0, NULL, VALS(INT32_MAX));
    usg_tensor_release(a);
    a = mk(USG_I32, 1, SHAPE(2), VALS(65536, 65536));
    expect_err(usg_prod(&o, a, 0, false), USG_ARG, "prod: the result does not fit in i32");
    usg_tensor_release(a);
    /* past the range on the way, but a 0 makes the product 0 */
    a = mk(USG_I32, 1, SHAPE(4), VALS(65536, 65536, 65536, 0));
    assert_int_equal(usg_prod(&o, a, 0, false), USG_OK);
    expect(o, USG_I32, 0, NULL, VALS(0));
    usg_tensor_release(a);
    a = mk(USG_I32, 1, SHAPE(2), VALS(-65536, 32768));
    assert_int_equal(usg_prod(&o, a, 0, false), USG_OK);
    expect(o, USG_I32, 0, NULL, VALS(INT32_MIN));
    usg_tensor_release(a);
}

/* Views: the reductions read logical elements, whatever the strides. */
static void test_views(void **state)
{
    usg_tensor *a = m23(USG_F32), *t, *o;
    assert_int_equal(usg_transpose(&t, a, 0, 1), USG_OK);     /* (3, 2) [[1,4],[5,2],[3,6]] */
    assert_int_equal(usg_sum(&o, t, 0, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(9, 12));
    assert_int_equal(usg_prod(&o, t, 1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(4, 10, 18));
    usg_tensor *v = NULL, *i = NULL;
    assert_int_equal(usg_max(&v, &i, t, USG_ALL_DIMS, false, 0), USG_OK);   /* flat 1 4 5 2 3 6 */
    expect(v, USG_F32, 0, NULL, VALS(6));
    expect(i, USG_I32, 0, NULL, VALS(5));
    assert_int_equal(usg_min(&v, &i, t, USG_ALL_DIMS, false, 1), USG_OK);
    expect(v, USG_F32, 0, NULL, VALS(1));
    expect(i, USG_I32, 0, NULL, VALS(1));
    usg_tensor_release(t);

    assert_int_equal(usg_narrow(&t, a, 1, 1, 2), USG_OK);       /* [[5,3],[2,6]] */
    assert_int_equal(usg_mean(&o, t, 0, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(3.5, 4.5));
    assert_int_equal(usg_max(&v, &i, t, 1, true, 1), USG_OK);
    expect(v, USG_F32, 2, SHAPE(2, 1), VALS(5, 6));
    expect(i, USG_I32, 2, SHAPE(2, 1), VALS(1, 2));
    usg_tensor_release(t);

    usg_tensor *row;
    assert_int_equal(usg_select(&row, a, 0, 1), USG_OK);        /* [4, 2, 6] */
    assert_int_equal(usg_expand(&t, row, 2, SHAPE(4, 3)), USG_OK);
    assert_int_equal(usg_sum(&o, t, 0, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(16, 8, 24));
    assert_int_equal(usg_var(&o, t, 0, false, 1), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(0, 0, 0));
    assert_int_equal(usg_min(NULL, &i, t, 1, false, 0), USG_OK);
    expect(i, USG_I32, 1, SHAPE(4), VALS(1, 1, 1, 1));
    usg_tensor_release(t);
    usg_tensor_release(row);
    usg_tensor_release(a);
}

/* ==== max, min ========================================================== */

static void test_max_min_values_indices(void **state)
{
    for (int k = 0; k < 3; k++) {
        usg_dtype dt = DTYPES[k];
        usg_tensor *a = m23(dt), *v, *i;
        assert_int_equal(usg_max(&v, &i, a, 1, false, 0), USG_OK);
        expect(v, dt, 1, SHAPE(2), VALS(5, 6));
        expect(i, USG_I32, 1, SHAPE(2), VALS(1, 2));
        assert_int_equal(usg_max(&v, &i, a, 0, true, 1), USG_OK);
        expect(v, dt, 2, SHAPE(1, 3), VALS(4, 5, 6));
        expect(i, USG_I32, 2, SHAPE(1, 3), VALS(2, 1, 2));
        assert_int_equal(usg_min(&v, &i, a, -1, false, 1), USG_OK);
        expect(v, dt, 1, SHAPE(2), VALS(1, 2));
        expect(i, USG_I32, 1, SHAPE(2), VALS(1, 2));
        assert_int_equal(usg_min(&v, &i, a, USG_ALL_DIMS, true, 0), USG_OK);
        expect(v, dt, 2, SHAPE(1, 1), VALS(1));
        expect(i, USG_I32, 2, SHAPE(1, 1), VALS(0));
        /* one output only */
        assert_int_equal(usg_max(&v, NULL, a, USG_ALL_DIMS, false, 0), USG_OK);
        expect(v, dt, 0, NULL, VALS(6));
        assert_int_equal(usg_max(NULL, &i, a, USG_ALL_DIMS, false, 1), USG_OK);
        expect(i, USG_I32, 0, NULL, VALS(6));
        usg_tensor_release(a);
    }
}

static void test_max_ties_inf_nan(void **state)
{
    usg_tensor *a = mk(USG_F32, 2, SHAPE(4, 3),
                       VALS(2, 7, 7,  -INFINITY, -INFINITY, -INFINITY,
                            1, NAN, 9,  NAN, 3, NAN)), *v, *i;
    assert_int_equal(usg_max(&v, &i, a, 1, false, 0), USG_OK);
    expect(v, USG_F32, 1, SHAPE(4), VALS(7, -INFINITY, NAN, NAN));
    expect(i, USG_I32, 1, SHAPE(4), VALS(1, 0, 1, 0));
    assert_int_equal(usg_min(&v, &i, a, 1, false, 0), USG_OK);
    expect(v, USG_F32, 1, SHAPE(4), VALS(2, -INFINITY, NAN, NAN));
    expect(i, USG_I32, 1, SHAPE(4), VALS(0, 0, 1, 0));
    assert_int_equal(usg_max(&v, &i, a, 0, false, 1), USG_OK);
    expect(v, USG_F32, 1, SHAPE(3), VALS(NAN, NAN, NAN));
    expect(i, USG_I32, 1, SHAPE(3), VALS(4, 3, 4));
    assert_int_equal(usg_max(&v, &i, a, USG_ALL_DIMS, false, 0), USG_OK);
    expect(v, USG_F32, 0, NULL, VALS(NAN));
    expect(i, USG_I32, 0, NULL, VALS(7));
    usg_tensor_release(a);
}

static void test_max_empty(void **state)
{
    usg_tensor *a, *v = (usg_tensor *)1, *i = (usg_tensor *)1;
    assert_int_equal(usg_tensor_zeros(&a, USG_F32, 2, SHAPE(3, 0)), USG_OK);
    expect_err(usg_max(&v, &i, a, 1, false, 0), USG_ARG, "max: cannot reduce over an empty dim");
    assert_null(v); assert_null(i);
    expect_err(usg_min(&v, NULL, a, USG_ALL_DIMS, false, 0), USG_ARG,
               "min: cannot reduce over an empty dim");
    assert_null(v);
    /* reducing a non-empty dim of an empty tensor is fine and empty */
    assert_int_equal(usg_max(&v, &i, a, 0, false, 0), USG_OK);
    expect(v, USG_F32, 1, SHAPE(0), NULL);
    expect(i, USG_I32, 1, SHAPE(0), NULL);
    usg_tensor_release(a);
}

/* ==== var, std ========================================================== */

static void test_var_std(void **state)
{
    for (int k = 0; k < 3; k++) {
        usg_dtype dt = DTYPES[k], fdt = dt == USG_I32 ? USG_F32 : dt;
        usg_tensor *a = mk(dt, 2, SHAPE(2, 4), VALS(1, 2, 3, 4, 2, 4, 6, 8)), *o;
        assert_int_equal(usg_var(&o, a, 1, false, 1), USG_OK);
        expect(o, fdt, 1, SHAPE(2), VALS(5.0 / 3, 20.0 / 3));
        assert_int_equal(usg_var(&o, a, 1, true, 0), USG_OK);
        expect(o, fdt, 2, SHAPE(2, 1), VALS(1.25, 5));
        assert_int_equal(usg_std(&o, a, 0, false, 1), USG_OK);
        expect(o, fdt, 1, SHAPE(4), VALS(sqrt(0.5), sqrt(2), sqrt(4.5), sqrt(8)));
        /* mean 3.75, sum of squares of deviations 37.5 */
        assert_int_equal(usg_var(&o, a, USG_ALL_DIMS, false, 1), USG_OK);
        expect(o, fdt, 0, NULL, VALS(37.5 / 7));
        assert_int_equal(usg_std(&o, a, USG_ALL_DIMS, false, 0), USG_OK);
        expect(o, fdt, 0, NULL, VALS(sqrt(37.5 / 8)));
        usg_tensor_release(a);
    }
}

static void test_var_edge_cases(void **state)
{
    /* a large offset: a one-pass sum of squares would lose every digit */
    usg_tensor *a = mk(USG_F64, 1, SHAPE(4), VALS(1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4)), *o;
    assert_int_equal(usg_var(&o, a, 0, false, 1), USG_OK);
    expect(o, USG_F64, 0, NULL, VALS(5.0 / 3));
    usg_tensor_release(a);
    /* n = 1 with correction 1 is 0/0; n = 0 is NaN; correction > n too */
    a = mk(USG_F32, 2, SHAPE(2, 1), VALS(3, 4));
    assert_int_equal(usg_var(&o, a, 1, false, 1), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(NAN, NAN));
    assert_int_equal(usg_std(&o, a, 1, false, 0), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(0, 0));
    assert_int_equal(usg_var(&o, a, 0, false, 5), USG_OK);
    expect(o, USG_F32, 1, SHAPE(1), VALS(INFINITY));
    usg_tensor_release(a);
    assert_int_equal(usg_tensor_zeros(&a, USG_F32, 1, SHAPE(0)), USG_OK);
    assert_int_equal(usg_var(&o, a, 0, false, 0), USG_OK);
    expect(o, USG_F32, 0, NULL, VALS(NAN));
    usg_tensor_release(a);
}

/* ==== logsumexp ========================================================= */

static void test_logsumexp(void **state)
{
    double l123 = 3.4076059644443806;   /* log(e + e^2 + e^3) */
    for (int k = 0; k < 3; k++) {
        usg_dtype dt = DTYPES[k], fdt = dt == USG_I32 ? USG_F32 : dt;
        usg_tensor *a = mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 3, 2, 1)), *o;
        assert_int_equal(usg_logsumexp(&o, a, 1, false), USG_OK);
        expect(o, fdt, 1, SHAPE(2), VALS(l123, l123));
        assert_int_equal(usg_logsumexp(&o, a, 0, true), USG_OK);
        double l13 = 3 + log1p(exp(-2)), l22 = 2 + log(2);
        expect(o, fdt, 2, SHAPE(1, 3), VALS(l13, l22, l13));
        usg_tensor_release(a);
    }
    usg_tensor *a = mk(USG_F32, 2, SHAPE(4, 2),
                       VALS(1000, 1000, -INFINITY, -INFINITY, INFINITY, 1, NAN, 1)), *o;
    assert_int_equal(usg_logsumexp(&o, a, 1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(4), VALS(1000 + log(2), -INFINITY, INFINITY, NAN));
    usg_tensor_release(a);
    assert_int_equal(usg_tensor_zeros(&a, USG_F64, 2, SHAPE(2, 0)), USG_OK);
    assert_int_equal(usg_logsumexp(&o, a, 1, false), USG_OK);
    expect(o, USG_F64, 1, SHAPE(2), VALS(-INFINITY, -INFINITY));
    usg_tensor_release(a);
}

/* ==== norm ============================================================== */

static void test_norm(void **state)
{
    for (int k = 0; k < 3; k++) {
        usg_dtype dt = DTYPES[k], fdt = dt == USG_I32 ? USG_F32 : dt;
        usg_tensor *a = mk(dt, 2, SHAPE(2, 2), VALS(3, -4, 0, 0)), *o;
        assert_int_equal(usg_norm(&o, a, 2, 1, false), USG_OK);
        expect(o, fdt, 1, SHAPE(2), VALS(5, 0));
        assert_int_equal(usg_norm(&o, a, 1, 1, true), USG_OK);
        expect(o, fdt, 2, SHAPE(2, 1), VALS(7, 0));
        assert_int_equal(usg_norm(&o, a, INFINITY, 1, false), USG_OK);
        expect(o, fdt, 1, SHAPE(2), VALS(4, 0));
        assert_int_equal(usg_norm(&o, a, 3, USG_ALL_DIMS, false), USG_OK);
        expect(o, fdt, 0, NULL, VALS(cbrt(91)));
        assert_int_equal(usg_norm(&o, a, 0.5, 0, false), USG_OK);
        expect(o, fdt, 1, SHAPE(2), VALS(3, 4));
        usg_tensor_release(a);
    }
    /* no overflow or underflow in the squares, thanks to scaling */
    usg_tensor *a = mk(USG_F64, 2, SHAPE(2, 2), VALS(3e200, 4e200, 3e-200, 4e-200)), *o;
    assert_int_equal(usg_norm(&o, a, 2, 1, false), USG_OK);
    expect(o, USG_F64, 1, SHAPE(2), VALS(5e200, 5e-200));
    usg_tensor_release(a);
    a = mk(USG_F32, 2, SHAPE(3, 2), VALS(NAN, 1, INFINITY, 1, -INFINITY, NAN));
    assert_int_equal(usg_norm(&o, a, 2, 1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(NAN, INFINITY, NAN));
    assert_int_equal(usg_norm(&o, a, INFINITY, 1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(NAN, INFINITY, NAN));
    usg_tensor_release(a);
}

/* ==== Empty reductions and 0-dim tensors ================================ */

static void test_empty_and_scalar(void **state)
{
    usg_tensor *a, *o;
    assert_int_equal(usg_tensor_zeros(&a, USG_F32, 2, SHAPE(2, 0)), USG_OK);
    assert_int_equal(usg_sum(&o, a, 1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(0, 0));
    assert_int_equal(usg_sum(&o, a, USG_ALL_DIMS, false), USG_OK);
    expect(o, USG_F32, 0, NULL, VALS(0));
    assert_int_equal(usg_mean(&o, a, 1, true), USG_OK);
    expect(o, USG_F32, 2, SHAPE(2, 1), VALS(NAN, NAN));
    assert_int_equal(usg_prod(&o, a, 1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(1, 1));
    assert_int_equal(usg_norm(&o, a, 2, 1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(0, 0));
    assert_int_equal(usg_sum(&o, a, 0, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(0), NULL);
    usg_tensor_release(a);

    a = mk(USG_F64, 0, NULL, VALS(-2.5));
    assert_int_equal(usg_sum(&o, a, 0, false), USG_OK);
    expect(o, USG_F64, 0, NULL, VALS(-2.5));
    usg_tensor *v, *i;
    assert_int_equal(usg_max(&v, &i, a, -1, true, 1), USG_OK);
    expect(v, USG_F64, 0, NULL, VALS(-2.5));
    expect(i, USG_I32, 0, NULL, VALS(1));
    expect_err(usg_sum(&o, a, 1, false), USG_ARG, "sum: dim");
    usg_tensor_release(a);
}

/* ==== Errors ============================================================ */

static void test_bad_args(void **state)
{
    usg_tensor *a = m23(USG_F32), *o = (usg_tensor *)1, *i = (usg_tensor *)1;
    expect_err(usg_sum(&o, a, 2, false), USG_ARG, "sum: dim");
    assert_null(o);
    expect_err(usg_mean(&o, a, -3, false), USG_ARG, "mean: dim");
    expect_err(usg_prod(&o, a, 5, false), USG_ARG, "prod: dim");
    expect_err(usg_max(&o, &i, a, 2, false, 1), USG_ARG, "max: dim");
    assert_null(o); assert_null(i);
    expect_err(usg_min(NULL, &i, a, -3, false, 1), USG_ARG, "min: dim");
    expect_err(usg_var(&o, a, 7, false, 1), USG_ARG, "var: dim");
    expect_err(usg_std(&o, a, 2, false, 1), USG_ARG, "std: dim");
    expect_err(usg_logsumexp(&o, a, 2, false), USG_ARG, "logsumexp: dim");
    expect_err(usg_norm(&o, a, 2, 2, false), USG_ARG, "norm: dim");
    expect_err(usg_var(&o, a, 0, false, -1), USG_ARG, "var: correction must be >= 0");
    expect_err(usg_std(&o, a, 0, false, -2), USG_ARG, "std: correction must be >= 0");
    expect_err(usg_norm(&o, a, 0, 0, false), USG_ARG, "norm: p must be > 0");
    expect_err(usg_norm(&o, a, -1, 0, false), USG_ARG, "norm: p must be > 0");
    expect_err(usg_norm(&o, a, NAN, 0, false), USG_ARG, "norm: p must be > 0");
    expect_err(usg_max(NULL, NULL, a, 0, false, 0), USG_ARG, "max: no output");
    expect_err(usg_sum(&o, NULL, 0, false), USG_ARG, "sum: input");
    assert_null(o);
    usg_tensor_release(a);
}

/* Indices are i32: a dim longer than INT32_MAX + 1 - base is refused before
 * anything is allocated (an expanded scalar costs no memory). */
static void test_index_overflow(void **state)
{
    usg_tensor *s = mk(USG_F32, 1, SHAPE(1), VALS(1)), *big, *v = NULL, *i = NULL;
    assert_int_equal(usg_expand(&big, s, 1, SHAPE((int64_t)INT32_MAX + 1)), USG_OK);
    size_t live = usg_alloc_live_bytes();
    expect_err(usg_max(&v, &i, big, 0, false, 1), USG_ARG, "max:");
    expect_err(usg_min(NULL, &i, big, USG_ALL_DIMS, false, 1), USG_ARG, "i32 indices");
    assert_null(v); assert_null(i);
    assert_int_equal(usg_alloc_live_bytes(), live);
    usg_tensor_release(big);
    usg_tensor_release(s);
}

/* ==== Allocation failure ================================================ */

typedef usg_status (*call_fn)(usg_tensor **o1, usg_tensor **o2, const usg_tensor *a);
static usg_status c_sum(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_sum(o, a, 0, false); }
static usg_status c_mean(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_mean(o, a, 1, true); }
static usg_status c_prod(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_prod(o, a, USG_ALL_DIMS, false); }
static usg_status c_max(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_max(o, x, a, 0, false, 1); }
static usg_status c_min(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_min(o, x, a, 1, true, 0); }
static usg_status c_var(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_var(o, a, 0, false, 1); }
static usg_status c_std(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_std(o, a, 1, false, 0); }
static usg_status c_lse(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_logsumexp(o, a, 1, false); }
static usg_status c_norm(usg_tensor **o, usg_tensor **x, const usg_tensor *a) { return usg_norm(o, a, 2, 0, false); }

/* Fail the 1st, 2nd, ... allocation until the call gets through; every
 * failure must be USG_NOMEM with NULL outputs and no bytes left behind. The
 * input is a transposed view, so the contiguous copy is tested as well. */
static void test_nomem(void **state)
{
    static const call_fn calls[] = {c_sum, c_mean, c_prod, c_max, c_min, c_var, c_std,
                                    c_lse, c_norm};
    usg_tensor *a = m23(USG_F32), *t;
    assert_int_equal(usg_transpose(&t, a, 0, 1), USG_OK);
    for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) {
        int failures = 0;
        for (long k = 1; k < 50; k++) {
            usg_tensor *o1 = (usg_tensor *)1, *o2 = (usg_tensor *)1;
            size_t live = usg_alloc_live_bytes();
            usg_alloc_fail_after(k);
            usg_status s = calls[c](&o1, &o2, t);
            usg_alloc_fail_after(0);
            if (s == USG_OK) {
                usg_tensor_release(o1);
                if (o2 != (usg_tensor *)1) usg_tensor_release(o2);
                break;
            }
            if (s != USG_NOMEM)
                fail_msg("call %zu, allocation %ld failed: status %s, \"%s\"; want NOMEM",
                         c, k, usg_status_name(s), usg_errmsg());
            assert_null(o1);
            assert_true(o2 == NULL || o2 == (usg_tensor *)1);
            assert_int_equal(usg_alloc_live_bytes(), live);
            failures++;
        }
        assert_true(failures >= 4);    /* the copy (3 allocations) and an output */
    }
    usg_tensor_release(t);
    usg_tensor_release(a);
}

/* A sum over a dim with many lanes (inner >= 64, f32) takes its own path:
 * the same bits as adding each lane's column in order in double, and
 * allocation failure of its buffer gives NOMEM without leaks. */
static void test_sum_wide_f32(void **state)
{
    enum { R = 5, C = 70 };
    double v[R * C];
    for (int i = 0; i < R * C; i++) v[i] = sin(0.77 * i) * (1 + i % 9) * 1e3;
    usg_tensor *a = mk(USG_F32, 2, SHAPE(R, C), v), *y = NULL;
    assert_int_equal(usg_sum(&y, a, 0, false), USG_OK);
    for (int j = 0; j < C; j++) {
        double acc = 0;
        for (int r = 0; r < R; r++) acc += (double)(float)v[r * C + j];
        assert_true(usg_tensor_get_flat(y, j) == (double)(float)acc);
    }
    usg_tensor_release(y);
    int failures = 0;
    for (long k = 1; k < 20; k++) {
        size_t live = usg_alloc_live_bytes();
        usg_alloc_fail_after(k);
        usg_status s = usg_sum(&y, a, 0, false);
        usg_alloc_fail_after(0);
        if (s == USG_OK) { usg_tensor_release(y); break; }
        assert_int_equal(s, USG_NOMEM);
        assert_null(y);
        assert_int_equal(usg_alloc_live_bytes(), live);
        failures++;
    }
    assert_true(failures >= 2);    /* the output and the buffer */
    usg_tensor_release(a);
}

/* ==== Cross-check with a naive reference ================================ */

enum { R_SUM, R_MEAN, R_PROD, R_MAX, R_MIN, R_VAR, R_STD, R_LSE, R_NORM2, R_NORM3, R_COUNT };

/* Result o of reducing t over dim (all dims when USG_ALL_DIMS), element by
 * element in the logical order; *arg gets the argmax/argmin. */
static double naive(const usg_tensor *t, int dim, int op, int64_t o, int64_t *arg)
{
    int64_t outer, n, inner;
    usg_outer_inner(t, dim, &outer, &n, &inner);
    int64_t oo = o / inner, ii = o % inner;
    double acc = op == R_PROD ? 1 : 0, best = NAN, mu = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t k = 0; k < n; k++) {
            double x = usg_tensor_get_flat(t, (oo * n + k) * inner + ii);
            if (pass == 0) mu += x / n;
            if (pass == 0 && (op == R_MAX || op == R_MIN) &&
                (k == 0 || (op == R_MAX ? x > best : x < best))) { best = x; *arg = k; }
            if (pass == 1) {
                switch (op) {
                case R_SUM: case R_MEAN: acc += x; break;
                case R_PROD: acc *= x; break;
                case R_VAR: case R_STD: acc += (x - mu) * (x - mu); break;
                case R_LSE: acc += exp(x); break;
                case R_NORM2: acc += x * x; break;
                case R_NORM3: acc += fabs(x * x * x); break;
                }
            }
        }
    switch (op) {
    case R_MEAN: return acc / n;
    case R_MAX: case R_MIN: return best;
    case R_VAR: return acc / (n - 1);
    case R_STD: return sqrt(acc / (n - 1));
    case R_LSE: return log(acc);
    case R_NORM2: return sqrt(acc);
    case R_NORM3: return cbrt(acc);
    default: return acc;
    }
}

static void check_against_naive(const usg_tensor *t, int dim)
{
    for (int op = 0; op < R_COUNT; op++) {
        usg_tensor *o = NULL, *ix = NULL;
        usg_status s;
        switch (op) {
        case R_SUM: s = usg_sum(&o, t, dim, false); break;
        case R_MEAN: s = usg_mean(&o, t, dim, false); break;
        case R_PROD: s = usg_prod(&o, t, dim, false); break;
        case R_MAX: s = usg_max(&o, &ix, t, dim, false, 0); break;
        case R_MIN: s = usg_min(&o, &ix, t, dim, false, 0); break;
        case R_VAR: s = usg_var(&o, t, dim, false, 1); break;
        case R_STD: s = usg_std(&o, t, dim, false, 1); break;
        case R_LSE: s = usg_logsumexp(&o, t, dim, false); break;
        case R_NORM2: s = usg_norm(&o, t, 2, dim, false); break;
        default: s = usg_norm(&o, t, 3, dim, false); break;
        }
        assert_int_equal(s, USG_OK);
        for (int64_t q = 0; q < usg_tensor_numel(o); q++) {
            int64_t arg = -1;
            double want = naive(t, dim, op, q, &arg);
            near_nan(usg_tensor_get_flat(o, q), want, o->dtype == USG_F64 ? 1e-10 : 1e-5);
            if (ix) assert_int_equal((int64_t)usg_tensor_get_flat(ix, q), arg);
        }
        usg_tensor_release(o);
        usg_tensor_release(ix);
    }
}

/* Shapes past one lane group (inner > 64) and one block of rows, as
 * contiguous tensors and as a permuted, narrowed view. */
static void test_against_naive(void **state)
{
    usg_dtype dts[] = {USG_F32, USG_F64};
    for (int k = 0; k < 2; k++) {
        int64_t shape[3] = {3, 37, 130}, n = 3 * 37 * 130;
        usg_tensor *a, *p, *v;
        assert_int_equal(usg_tensor_empty(&a, dts[k], 3, shape), USG_OK);
        for (int64_t i = 0; i < n; i++)   /* values near 1 keep prod finite */
            usg_store(a->dtype, usg_base(a), i, 1 + 0.01 * sin(0.37 * (double)i) + (i % 7 == 0) * 0.003);
        assert_int_equal(usg_permute(&p, a, (const int[]){2, 0, 1}), USG_OK);  /* (130, 3, 37) */
        assert_int_equal(usg_narrow(&v, p, 0, 5, 100), USG_OK);                /* (100, 3, 37) */
        for (int dim = 0; dim < 3; dim++) {
            check_against_naive(a, dim);
            check_against_naive(v, dim);
        }
        check_against_naive(a, USG_ALL_DIMS);
        check_against_naive(v, USG_ALL_DIMS);
        usg_tensor_release(v);
        usg_tensor_release(p);
        usg_tensor_release(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_helpers),
        cmocka_unit_test(test_sum_every_dim_and_dtype),
        cmocka_unit_test(test_mean_prod),
        cmocka_unit_test(test_i32_wrap),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_max_min_values_indices),
        cmocka_unit_test(test_max_ties_inf_nan),
        cmocka_unit_test(test_max_empty),
        cmocka_unit_test(test_var_std),
        cmocka_unit_test(test_var_edge_cases),
        cmocka_unit_test(test_logsumexp),
        cmocka_unit_test(test_norm),
        cmocka_unit_test(test_empty_and_scalar),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_index_overflow),
        cmocka_unit_test(test_sum_wide_f32),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_against_naive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

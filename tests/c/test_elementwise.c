/*
 * test_elementwise.c -- cmocka tests of host/core/elementwise.c: every
 * binary and unary op on f32, f64 and i32 against hand-computed values and
 * result dtypes, broadcasting, strided inputs (which must give the same bits
 * as contiguous ones), scalar forms in both orders, in-place forms and their
 * refusals and aliasing, NaN and overflow edge cases, clamp, where, allclose,
 * every error path and allocation failure at every allocation.
 */
#include <fenv.h>
#include "testutil.h"

/* ==== Helpers =========================================================== */

/* f32 values are compared after rounding the wanted double to f32; `tol` is
 * relative and 0 means exact (NaN matches NaN, inf matches inf). */
static void near_rel(double got, double want, double tol)
{
    bool ok = isnan(want) ? isnan(got)
            : isinf(want) ? got == want
            : fabs(got - want) <= tol * fabs(want);
    if (!ok) fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

static void check_tol(const usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape,
                      const double *v, double tol)
{
    assert_non_null(t);
    if (t->dtype != dt)
        fail_msg("dtype %s, want %s", usg_dtype_name(t->dtype), usg_dtype_name(dt));
    assert_int_equal(t->ndim, ndim);
    for (int d = 0; d < ndim; d++) assert_int_equal(t->shape[d], shape[d]);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) {
        double want = dt == USG_F32 ? (double)(float)v[i] : v[i];
        near_rel(usg_tensor_get_flat(t, i), want, tol);
    }
}

static void check(const usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape,
                  const double *v)
{
    check_tol(t, dt, ndim, shape, v, 0);
}

/* check, then contiguous, then release */
static void expect(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    check(t, dt, ndim, shape, v);
    assert_true(usg_tensor_is_contiguous(t));
    usg_tensor_release(t);
}

/* a and b hold the same values bit for bit (NaN payloads included) */
static void same_bits(const usg_tensor *a, const usg_tensor *b)
{
    assert_int_equal(a->dtype, b->dtype);
    assert_true(usg_same_shape(a, b));
    for (int64_t i = 0; i < usg_tensor_numel(a); i++) {
        double x = usg_tensor_get_flat(a, i), y = usg_tensor_get_flat(b, i);
        if (memcmp(&x, &y, sizeof x) != 0)
            fail_msg("element %lld: %a vs %a", (long long)i, x, y);
    }
}


static const usg_dtype FLOATS[] = {USG_F32, USG_F64};

/* ==== Names ============================================================= */

static void test_names(void **state)
{
    static const char *bn[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                               "eq", "ne", "lt", "le", "gt", "ge"};
    for (int op = USG_ADD; op <= USG_GE; op++) assert_string_equal(usg_binop_name(op), bn[op]);
    static const char *un[] = {"neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "relu",
                               "sign", "floor", "ceil", "round", "log1p", "sin", "cos",
                               "square", "reciprocal"};
    for (int op = USG_NEG; op <= USG_RECIPROCAL; op++)
        assert_string_equal(usg_unop_name(op), un[op]);
    assert_string_equal(usg_binop_name((usg_binop)13), "?");
    assert_string_equal(usg_unop_name((usg_unop)17), "?");
    assert_string_equal(usg_binop_name((usg_binop)-1), "?");
}

/* ==== Binary ops ======================================================== */

/* a = (1, -2, 3.5, 0, 2), b = (2, 4, -1, 0.5, 2) */
static const double BIN_WANT[13][5] = {
    [USG_ADD] = {3, 2, 2.5, 0.5, 4},
    [USG_SUB] = {-1, -6, 4.5, -0.5, 0},
    [USG_MUL] = {2, -8, -3.5, 0, 4},
    [USG_DIV] = {0.5, -0.5, -3.5, 0, 1},
    [USG_POW] = {1, 16, 0.2857142857142857, 0, 4},
    [USG_MAXIMUM] = {2, 4, 3.5, 0.5, 2},
    [USG_MINIMUM] = {1, -2, -1, 0, 2},
    [USG_EQ] = {0, 0, 0, 0, 1},
    [USG_NE] = {1, 1, 1, 1, 0},
    [USG_LT] = {1, 1, 0, 1, 0},
    [USG_LE] = {1, 1, 0, 1, 1},
    [USG_GT] = {0, 0, 1, 0, 0},
    [USG_GE] = {0, 0, 1, 0, 1},
};

static void test_binary_float(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a = mk(dt, 1, SHAPE(5), VALS(1, -2, 3.5, 0, 2));
        usg_tensor *b = mk(dt, 1, SHAPE(5), VALS(2, 4, -1, 0.5, 2));
        for (int op = USG_ADD; op <= USG_GE; op++) {
            usg_tensor *o = SENT;
            assert_int_equal(usg_binary(&o, op, a, b), USG_OK);
            usg_dtype want = op >= USG_EQ ? USG_I32 : dt;
            check_tol(o, want, 1, SHAPE(5), BIN_WANT[op], op == USG_POW ? 1e-15 : 0);
            assert_true(usg_tensor_is_contiguous(o));
            usg_tensor_release(o);
        }
        usg_tensor_release(a);
        usg_tensor_release(b);
    }
}

static void test_binary_i32(void **state)
{
    usg_tensor *a = mk(USG_I32, 1, SHAPE(5), VALS(1, -2, 3, 0, 2));
    usg_tensor *b = mk(USG_I32, 1, SHAPE(5), VALS(2, 4, -1, 5, 2));
    static const double want[13][5] = {
        [USG_ADD] = {3, 2, 2, 5, 4},       [USG_SUB] = {-1, -6, 4, -5, 0},
        [USG_MUL] = {2, -8, -3, 0, 4},     [USG_DIV] = {0.5, -0.5, -3, 0, 1},
        [USG_POW] = {1, 16, 0, 0, 4},      /* 3^-1 = 0.33 truncated */
        [USG_MAXIMUM] = {2, 4, 3, 5, 2},   [USG_MINIMUM] = {1, -2, -1, 0, 2},
        [USG_EQ] = {0, 0, 0, 0, 1},        [USG_NE] = {1, 1, 1, 1, 0},
        [USG_LT] = {1, 1, 0, 1, 0},        [USG_LE] = {1, 1, 0, 1, 1},
        [USG_GT] = {0, 0, 1, 0, 0},        [USG_GE] = {0, 0, 1, 0, 1},
    };
    for (int op = USG_ADD; op <= USG_GE; op++) {
        usg_tensor *o;
        assert_int_equal(usg_binary(&o, op, a, b), USG_OK);
        /* true division of integers gives f32, as in PyTorch */
        expect(o, op == USG_DIV ? USG_F32 : USG_I32, 1, SHAPE(5), want[op]);
    }
    /* an i32 result out of range is an error naming the op; in place, the
     * target keeps its values (a dry run finds it before any write) */
    usg_tensor *big = mk(USG_I32, 1, SHAPE(2), VALS(2147483647, -2147483647)), *o;
    usg_tensor *one = mk(USG_I32, 1, SHAPE(2), VALS(1, -10));
    expect_err(usg_binary(&o, USG_ADD, big, one), USG_ARG,
               "add: the result 2147483648 does not fit in i32");
    assert_null(o);
    expect_err(usg_binary_scalar(&o, USG_SUB, big, -1, false), USG_ARG, "sub: the result");
    expect_err(usg_binary(&o, USG_MUL, big, one), USG_ARG, "mul: the result 21474836470 does");
    expect_err(usg_binary_scalar(&o, USG_POW, one, 40, false), USG_ARG, "pow: the result");
    usg_tensor *edge = mk(USG_I32, 1, SHAPE(2), VALS(5, 2147483647));
    expect_err(usg_binary_scalar_(edge, USG_ADD, 1), USG_ARG, "add_: the result 2147483648");
    expect(edge, USG_I32, 1, SHAPE(2), VALS(5, 2147483647));
    usg_tensor *lo = mk(USG_I32, 1, SHAPE(2), VALS(3, -2147483648.0));
    expect_err(usg_unary(&o, USG_NEG, lo), USG_ARG, "neg: the result 2147483648");
    expect_err(usg_unary(&o, USG_ABS, lo), USG_ARG, "abs: the result 2147483648");
    expect_err(usg_unary_(lo, USG_SQUARE), USG_ARG, "square_: the result");
    expect_err(usg_clamp(&o, lo, 3e9, NAN), USG_ARG, "clamp: the min 3000000000 does not fit");
    expect(lo, USG_I32, 1, SHAPE(2), VALS(3, -2147483648.0));
    /* the edges themselves fit */
    assert_int_equal(usg_binary_scalar(&o, USG_SUB, big, 1, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(2), VALS(2147483646, -2147483648.0));
    /* 1 / 0 in i32 is a float division */
    usg_tensor *z = mk(USG_I32, 1, SHAPE(2), VALS(0, 0));
    assert_int_equal(usg_binary(&o, USG_DIV, one, z), USG_OK);
    expect(o, USG_F32, 1, SHAPE(2), VALS(INFINITY, -INFINITY));
    usg_tensor_release(z);
    usg_tensor_release(one);
    usg_tensor_release(big);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

static void test_binary_mixed_dtypes(void **state)
{
    usg_tensor *f = mk(USG_F32, 1, SHAPE(2), VALS(1.5, 0.1));
    usg_tensor *d = mk(USG_F64, 1, SHAPE(2), VALS(0.1, 0.2));
    usg_tensor *i = mk(USG_I32, 1, SHAPE(2), VALS(3, -1));
    usg_tensor *o;
    assert_int_equal(usg_binary(&o, USG_ADD, f, d), USG_OK);          /* f32 + f64 -> f64 */
    expect(o, USG_F64, 1, SHAPE(2), VALS(1.5 + 0.1, (double)0.1f + 0.2));
    assert_int_equal(usg_binary(&o, USG_MUL, i, f), USG_OK);          /* i32 * f32 -> f32 */
    expect(o, USG_F32, 1, SHAPE(2), VALS(4.5, -0.1));
    assert_int_equal(usg_binary(&o, USG_SUB, d, i), USG_OK);          /* f64 - i32 -> f64 */
    expect(o, USG_F64, 1, SHAPE(2), VALS(0.1 - 3, 1.2));
    assert_int_equal(usg_binary(&o, USG_LT, i, f), USG_OK);           /* comparisons: i32 */
    expect(o, USG_I32, 1, SHAPE(2), VALS(0, 1));
    assert_int_equal(usg_binary(&o, USG_GE, d, f), USG_OK);
    expect(o, USG_I32, 1, SHAPE(2), VALS(0, 1));
    assert_int_equal(usg_binary(&o, USG_DIV, i, d), USG_OK);          /* i32 / f64 -> f64 */
    expect(o, USG_F64, 1, SHAPE(2), VALS(30, -5));
    usg_tensor_release(f);
    usg_tensor_release(d);
    usg_tensor_release(i);
}

static void test_broadcast(void **state)
{
    usg_tensor *a = mk(USG_F32, 2, SHAPE(3, 1), VALS(0, 10, 20));
    usg_tensor *b = mk(USG_F32, 2, SHAPE(1, 4), VALS(1, 2, 3, 4));
    usg_tensor *o;
    assert_int_equal(usg_binary(&o, USG_ADD, a, b), USG_OK);
    expect(o, USG_F32, 2, SHAPE(3, 4), VALS(1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24));
    assert_int_equal(usg_binary(&o, USG_SUB, b, a), USG_OK);
    expect(o, USG_F32, 2, SHAPE(3, 4), VALS(1, 2, 3, 4, -9, -8, -7, -6, -19, -18, -17, -16));
    assert_int_equal(usg_binary(&o, USG_GT, a, b), USG_OK);
    expect(o, USG_I32, 2, SHAPE(3, 4), VALS(0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    /* 0-dim on either side, and with itself */
    usg_tensor *s = mk(USG_F64, 0, NULL, VALS(5));
    usg_tensor *m = mk(USG_I32, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
    assert_int_equal(usg_binary(&o, USG_MUL, s, m), USG_OK);
    expect(o, USG_F64, 2, SHAPE(2, 3), VALS(0, 5, 10, 15, 20, 25));
    assert_int_equal(usg_binary(&o, USG_SUB, m, s), USG_OK);
    expect(o, USG_F64, 2, SHAPE(2, 3), VALS(-5, -4, -3, -2, -1, 0));
    assert_int_equal(usg_binary(&o, USG_ADD, s, s), USG_OK);
    expect(o, USG_F64, 0, NULL, VALS(10));
    /* (2, 1, 3) with (4, 1): (2, 4, 3) */
    usg_tensor *c = mk(USG_F32, 3, SHAPE(2, 1, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *r = mk(USG_F32, 2, SHAPE(4, 1), VALS(0, 10, 20, 30));
    assert_int_equal(usg_binary(&o, USG_ADD, c, r), USG_OK);
    expect(o, USG_F32, 3, SHAPE(2, 4, 3),
           VALS(1, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33,
                4, 5, 6, 14, 15, 16, 24, 25, 26, 34, 35, 36));
    /* empty */
    usg_tensor *e;
    assert_int_equal(usg_tensor_zeros(&e, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    assert_int_equal(usg_binary(&o, USG_ADD, e, m), USG_SHAPE);      /* 0 vs 2 */
    usg_tensor *row = mk(USG_F32, 2, SHAPE(1, 3), VALS(1, 2, 3));
    assert_int_equal(usg_binary(&o, USG_ADD, e, row), USG_OK);
    expect(o, USG_F32, 2, SHAPE(0, 3), NULL);
    /* errors: the message names the op once and both shapes */
    o = SENT;
    usg_tensor *v4 = mk(USG_F32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    expect_err(usg_binary(&o, USG_ADD, m, v4), USG_SHAPE, "add: shapes (2, 3) and (4,)");
    assert_null(o);
    expect_err(usg_binary(&o, USG_GE, v4, m), USG_SHAPE, "ge: shapes (4,) and (2, 3)");
    expect_err(usg_binary(&o, (usg_binop)42, m, m), USG_ARG, "unknown binary op");
    assert_null(o);
    usg_tensor_release(v4);
    usg_tensor_release(row);
    usg_tensor_release(e);
    usg_tensor_release(c);
    usg_tensor_release(r);
    usg_tensor_release(s);
    usg_tensor_release(m);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

/* Strided inputs (transposed, narrowed, expanded) give the same bits as
 * their contiguous copies, for every op and dtype. */
static void test_strided_inputs(void **state)
{
    const usg_dtype dts[] = {USG_F32, USG_F64, USG_I32};
    for (int k = 0; k < 3; k++) {
        usg_dtype dt = dts[k];
        usg_tensor *base_a, *base_b, *ta, *nb, *ca, *cb, *col, *ec, *cc;
        assert_int_equal(usg_tensor_empty(&base_a, dt, 2, SHAPE(4, 3)), USG_OK);
        assert_int_equal(usg_tensor_empty(&base_b, dt, 2, SHAPE(3, 6)), USG_OK);
        for (int64_t i = 0; i < 12; i++)
            usg_store(dt, usg_base(base_a), i, dt == USG_I32 ? (double)(i % 5) - 2 : 0.37 * (double)i - 1.1);
        for (int64_t i = 0; i < 18; i++)
            usg_store(dt, usg_base(base_b), i, dt == USG_I32 ? (double)(i % 4) + 1 : 0.5 - 0.21 * (double)i);
        assert_int_equal(usg_transpose(&ta, base_a, 0, 1), USG_OK);     /* (3, 4) strides (1, 3) */
        assert_int_equal(usg_narrow(&nb, base_b, 1, 1, 4), USG_OK);     /* (3, 4) strides (6, 1) */
        assert_int_equal(usg_select(&col, base_b, 1, 5), USG_OK);       /* (3,) stride 6 */
        usg_tensor *col2;
        assert_int_equal(usg_unsqueeze(&col2, col, 1), USG_OK);         /* (3, 1) */
        assert_int_equal(usg_expand(&ec, col2, 2, SHAPE(3, 4)), USG_OK);/* (3, 4) strides (6, 0) */
        assert_int_equal(usg_clone(&ca, ta), USG_OK);
        assert_int_equal(usg_clone(&cb, nb), USG_OK);
        assert_int_equal(usg_clone(&cc, ec), USG_OK);
        for (int op = USG_ADD; op <= USG_GE; op++) {
            usg_tensor *o1, *o2, *o3, *o4;
            assert_int_equal(usg_binary(&o1, op, ta, nb), USG_OK);
            assert_int_equal(usg_binary(&o2, op, ca, cb), USG_OK);
            assert_int_equal(usg_binary(&o3, op, nb, ec), USG_OK);
            assert_int_equal(usg_binary(&o4, op, cb, cc), USG_OK);
            same_bits(o1, o2);
            same_bits(o3, o4);
            /* and one element by hand */
            double x = usg_tensor_get(ta, SHAPE(2, 3)), y = usg_tensor_get(nb, SHAPE(2, 3));
            if (op == USG_ADD)
                near_rel(usg_tensor_get(o1, SHAPE(2, 3)), dt == USG_F32 ? (float)(x + y) : x + y, 0);
            usg_tensor_release(o1); usg_tensor_release(o2);
            usg_tensor_release(o3); usg_tensor_release(o4);
        }
        for (int op = USG_NEG; op <= USG_RECIPROCAL; op++) {
            usg_tensor *o1, *o2;
            assert_int_equal(usg_unary(&o1, op, ta), USG_OK);
            assert_int_equal(usg_unary(&o2, op, ca), USG_OK);
            same_bits(o1, o2);
            usg_tensor_release(o1); usg_tensor_release(o2);
        }
        usg_tensor_release(col2);
        usg_tensor_release(col);
        usg_tensor_release(ec); usg_tensor_release(cc);
        usg_tensor_release(ta); usg_tensor_release(nb);
        usg_tensor_release(ca); usg_tensor_release(cb);
        usg_tensor_release(base_a); usg_tensor_release(base_b);
    }
}

/* f32 transcendental functions give the same bits on the fast (contiguous)
 * path and the strided one, over many values. */
static void test_unary_f32_paths_agree(void **state)
{
    usg_tensor *x, *x2;
    int64_t n = 4096;
    assert_int_equal(usg_tensor_empty(&x, USG_F32, 2, SHAPE(n, 1)), USG_OK);
    for (int64_t i = 0; i < n; i++) ((float *)usg_tensor_data(x))[i] = (float)((double)(i - n / 2) * 0.00731);
    assert_int_equal(usg_tensor_empty(&x2, USG_F32, 2, SHAPE(n, 2)), USG_OK);
    usg_tensor *left;
    assert_int_equal(usg_narrow(&left, x2, 1, 0, 1), USG_OK);          /* (n, 1) stride 2 */
    assert_int_equal(usg_copy_(left, x), USG_OK);
    assert_false(usg_tensor_is_contiguous(left));
    for (int op = USG_NEG; op <= USG_RECIPROCAL; op++) {
        usg_tensor *o1, *o2;
        assert_int_equal(usg_unary(&o1, op, x), USG_OK);
        assert_int_equal(usg_unary(&o2, op, left), USG_OK);
        same_bits(o1, o2);
        usg_tensor_release(o1); usg_tensor_release(o2);
    }
    usg_tensor_release(left);
    usg_tensor_release(x2);
    usg_tensor_release(x);
}

/* ==== Scalar forms ====================================================== */

static void test_binary_scalar(void **state)
{
    usg_tensor *t = mk(USG_F32, 1, SHAPE(3), VALS(1, 2, 4)), *o;
    assert_int_equal(usg_binary_scalar(&o, USG_SUB, t, 1, false), USG_OK);     /* t - 1 */
    expect(o, USG_F32, 1, SHAPE(3), VALS(0, 1, 3));
    assert_int_equal(usg_binary_scalar(&o, USG_SUB, t, 1, true), USG_OK);      /* 1 - t */
    expect(o, USG_F32, 1, SHAPE(3), VALS(0, -1, -3));
    assert_int_equal(usg_binary_scalar(&o, USG_DIV, t, 2, true), USG_OK);      /* 2 / t */
    expect(o, USG_F32, 1, SHAPE(3), VALS(2, 1, 0.5));
    assert_int_equal(usg_binary_scalar(&o, USG_DIV, t, 2, false), USG_OK);     /* t / 2 */
    expect(o, USG_F32, 1, SHAPE(3), VALS(0.5, 1, 2));
    assert_int_equal(usg_binary_scalar(&o, USG_POW, t, 2, true), USG_OK);      /* 2 ^ t */
    expect(o, USG_F32, 1, SHAPE(3), VALS(2, 4, 16));
    assert_int_equal(usg_binary_scalar(&o, USG_POW, t, 2, false), USG_OK);     /* t ^ 2 */
    expect(o, USG_F32, 1, SHAPE(3), VALS(1, 4, 16));
    assert_int_equal(usg_binary_scalar(&o, USG_MAXIMUM, t, 2, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(2, 2, 4));
    assert_int_equal(usg_binary_scalar(&o, USG_GT, t, 3, true), USG_OK);       /* 3 > t */
    expect(o, USG_I32, 1, SHAPE(3), VALS(1, 1, 0));
    assert_int_equal(usg_binary_scalar(&o, USG_GT, t, 3, false), USG_OK);      /* t > 3 */
    expect(o, USG_I32, 1, SHAPE(3), VALS(0, 0, 1));
    assert_int_equal(usg_binary_scalar(&o, USG_ADD, t, 1e10, false), USG_OK);  /* stays f32 */
    expect(o, USG_F32, 1, SHAPE(3), VALS(1e10 + 1, 1e10 + 2, 1e10 + 4));
    usg_tensor_release(t);

    /* the scalar takes the tensor's float type: an f32 0.1 equals 0.1 */
    t = mk(USG_F32, 1, SHAPE(3), VALS(0.1, 0.2, 0.3));
    assert_int_equal(usg_binary_scalar(&o, USG_EQ, t, 0.1, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(1, 0, 0));
    assert_int_equal(usg_binary_scalar(&o, USG_LE, t, 0.2, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(1, 1, 0));
    assert_int_equal(usg_binary_scalar(&o, USG_NE, t, 0.3, true), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(1, 1, 0));
    assert_int_equal(usg_binary_scalar(&o, USG_SUB, t, 0.1, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(0, 0.1f, 0.3f - 0.1f));
    usg_tensor_release(t);

    /* f64 keeps f64 */
    t = mk(USG_F64, 1, SHAPE(1), VALS(0.1));
    assert_int_equal(usg_binary_scalar(&o, USG_ADD, t, 0.2, false), USG_OK);
    expect(o, USG_F64, 1, SHAPE(1), VALS(0.30000000000000004));
    assert_int_equal(usg_binary_scalar(&o, USG_EQ, t, 0.1, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(1), VALS(1));
    usg_tensor_release(t);

    /* i32: integral scalars stay i32, others and division give f32 */
    t = mk(USG_I32, 1, SHAPE(3), VALS(1, 2, 5));
    assert_int_equal(usg_binary_scalar(&o, USG_ADD, t, 2, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(3, 4, 7));
    assert_int_equal(usg_binary_scalar(&o, USG_MUL, t, -2.0, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(-2, -4, -10));
    assert_int_equal(usg_binary_scalar(&o, USG_SUB, t, 7, true), USG_OK);      /* 7 - t */
    expect(o, USG_I32, 1, SHAPE(3), VALS(6, 5, 2));
    assert_int_equal(usg_binary_scalar(&o, USG_ADD, t, 0.5, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(1.5, 2.5, 5.5));
    assert_int_equal(usg_binary_scalar(&o, USG_DIV, t, 2, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(0.5, 1, 2.5));
    assert_int_equal(usg_binary_scalar(&o, USG_DIV, t, 10, true), USG_OK);     /* 10 / t */
    expect(o, USG_F32, 1, SHAPE(3), VALS(10, 5, 2));
    assert_int_equal(usg_binary_scalar(&o, USG_LT, t, 1.5, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(1, 0, 0));
    assert_int_equal(usg_binary_scalar(&o, USG_EQ, t, 2, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(0, 1, 0));
    assert_int_equal(usg_binary_scalar(&o, USG_ADD, t, 3e9, false), USG_OK);   /* past i32 */
    expect(o, USG_F32, 1, SHAPE(3), VALS(3e9 + 1, 3e9 + 2, 3e9 + 5));
    assert_int_equal(usg_binary_scalar(&o, USG_MUL, t, NAN, false), USG_OK);
    expect(o, USG_F32, 1, SHAPE(3), VALS(NAN, NAN, NAN));
    assert_int_equal(usg_binary_scalar(&o, USG_POW, t, 2, false), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(1, 4, 25));
    o = SENT;
    expect_err(usg_binary_scalar(&o, (usg_binop)99, t, 1, false), USG_ARG, "unknown binary op");
    assert_null(o);
    usg_tensor_release(t);

    /* on a view and on a 0-dim */
    usg_tensor *m = mk(USG_F64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)), *tt;
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_binary_scalar(&o, USG_SUB, tt, 10, true), USG_OK);
    expect(o, USG_F64, 2, SHAPE(2, 2), VALS(9, 7, 8, 6));
    usg_tensor_release(tt);
    usg_tensor_release(m);
    usg_tensor *s = mk(USG_F32, 0, NULL, VALS(3));
    assert_int_equal(usg_binary_scalar(&o, USG_MUL, s, 2, false), USG_OK);
    expect(o, USG_F32, 0, NULL, VALS(6));
    usg_tensor_release(s);
}

/* ==== In-place ========================================================== */

static void test_inplace(void **state)
{
    usg_tensor *a = mk(USG_F32, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
    usg_tensor *b = mk(USG_F32, 1, SHAPE(3), VALS(10, 20, 30));
    long v0 = a->storage->version;
    assert_int_equal(usg_binary_(a, USG_ADD, b), USG_OK);               /* b broadcast into a */
    assert_true(a->storage->version > v0);
    check(a, USG_F32, 2, SHAPE(2, 3), VALS(10, 21, 32, 13, 24, 35));
    usg_tensor *c = mk(USG_F64, 2, SHAPE(2, 1), VALS(1, 2));
    assert_int_equal(usg_binary_(a, USG_SUB, c), USG_OK);               /* keeps a's dtype */
    check(a, USG_F32, 2, SHAPE(2, 3), VALS(9, 20, 31, 11, 22, 33));
    usg_tensor *s = mk(USG_I32, 0, NULL, VALS(2));
    assert_int_equal(usg_binary_(a, USG_MUL, s), USG_OK);
    check(a, USG_F32, 2, SHAPE(2, 3), VALS(18, 40, 62, 22, 44, 66));
    assert_int_equal(usg_binary_scalar_(a, USG_DIV, 2), USG_OK);
    check(a, USG_F32, 2, SHAPE(2, 3), VALS(9, 20, 31, 11, 22, 33));
    assert_int_equal(usg_binary_scalar_(a, USG_GT, 20), USG_OK);        /* 0/1 in a's dtype */
    check(a, USG_F32, 2, SHAPE(2, 3), VALS(0, 0, 1, 0, 1, 1));
    usg_tensor_release(s);
    usg_tensor_release(c);

    /* into a view: the parent sees it */
    usg_tensor *m = mk(USG_F64, 2, SHAPE(3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9)), *col;
    assert_int_equal(usg_select(&col, m, 1, 1), USG_OK);
    assert_int_equal(usg_binary_scalar_(col, USG_MUL, -1), USG_OK);
    check(m, USG_F64, 2, SHAPE(3, 3), VALS(1, -2, 3, 4, -5, 6, 7, -8, 9));
    usg_tensor_release(col);
    usg_tensor_release(m);

    /* the f32 scalar rule holds in place too */
    usg_tensor *f = mk(USG_F32, 1, SHAPE(2), VALS(0.1, 0.7));
    assert_int_equal(usg_binary_scalar_(f, USG_EQ, 0.1), USG_OK);
    check(f, USG_F32, 1, SHAPE(2), VALS(1, 0));
    usg_tensor_release(f);

    /* i32 in place stays i32: division truncates toward zero */
    usg_tensor *i = mk(USG_I32, 1, SHAPE(3), VALS(7, -7, 6));
    assert_int_equal(usg_binary_scalar_(i, USG_DIV, 2), USG_OK);
    check(i, USG_I32, 1, SHAPE(3), VALS(3, -3, 3));
    assert_int_equal(usg_binary_scalar_(i, USG_ADD, 10), USG_OK);
    check(i, USG_I32, 1, SHAPE(3), VALS(13, 7, 13));
    usg_tensor_release(i);

    /* refusals: b not broadcastable to a's shape, an expanded target */
    usg_tensor *big = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *col1 = mk(USG_F32, 2, SHAPE(2, 1), VALS(1, 2));
    expect_err(usg_binary_(b, USG_ADD, big), USG_SHAPE,
               "add_: (2, 3) does not broadcast to the in-place target (3,)");
    expect_err(usg_binary_(col1, USG_MUL, big), USG_SHAPE, "mul_:");
    usg_tensor *v4 = mk(USG_F32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    expect_err(usg_binary_(b, USG_SUB, v4), USG_SHAPE, "sub_:");
    expect_err(usg_binary_(b, (usg_binop)77, b), USG_ARG, "unknown binary op");
    check(b, USG_F32, 1, SHAPE(3), VALS(10, 20, 30));                    /* untouched */
    check(col1, USG_F32, 2, SHAPE(2, 1), VALS(1, 2));
    usg_tensor *e;
    assert_int_equal(usg_expand(&e, col1, 2, SHAPE(2, 3)), USG_OK);
    expect_err(usg_binary_(e, USG_ADD, big), USG_ARG, "add_: the tensor's elements overlap in memory");
    expect_err(usg_binary_scalar_(e, USG_MUL, 2), USG_ARG, "mul_:");
    check(col1, USG_F32, 2, SHAPE(2, 1), VALS(1, 2));
    usg_tensor_release(e);
    /* expanded along a size-1 dim only (stride 0, size 1) is fine */
    usg_tensor *one = mk(USG_F32, 1, SHAPE(1), VALS(5));
    assert_int_equal(usg_expand(&e, one, 2, SHAPE(1, 1)), USG_OK);
    assert_int_equal(usg_binary_scalar_(e, USG_ADD, 1), USG_OK);
    check(one, USG_F32, 1, SHAPE(1), VALS(6));
    usg_tensor_release(e);
    usg_tensor_release(one);
    usg_tensor_release(v4);
    usg_tensor_release(col1);
    usg_tensor_release(big);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

/* a += a^T must read the old a: the same as a + a^T out of place */
static void test_inplace_aliasing(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a = mk(dt, 2, SHAPE(3, 3), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8)), *at, *want;
        assert_int_equal(usg_transpose(&at, a, 0, 1), USG_OK);
        assert_int_equal(usg_binary(&want, USG_ADD, a, at), USG_OK);
        check(want, dt, 2, SHAPE(3, 3), VALS(0, 4, 8, 4, 8, 12, 8, 12, 16));
        assert_int_equal(usg_binary_(a, USG_ADD, at), USG_OK);
        check(a, dt, 2, SHAPE(3, 3), VALS(0, 4, 8, 4, 8, 12, 8, 12, 16));
        usg_tensor_release(want);
        /* the other way: the transposed view is the target */
        usg_tensor *b = mk(dt, 2, SHAPE(3, 3), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8)), *bt;
        assert_int_equal(usg_transpose(&bt, b, 0, 1), USG_OK);
        assert_int_equal(usg_binary_(bt, USG_SUB, b), USG_OK);   /* b^T - b, antisymmetric */
        check(b, dt, 2, SHAPE(3, 3), VALS(0, -2, -4, 2, 0, -2, 4, 2, 0));
        /* a row of the matrix broadcast over the matrix itself */
        usg_tensor *row;
        assert_int_equal(usg_select(&row, b, 0, 2), USG_OK);     /* (4, 2, 0) */
        assert_int_equal(usg_binary_(b, USG_MUL, row), USG_OK);
        check(b, dt, 2, SHAPE(3, 3), VALS(0, -4, 0, 8, 0, 0, 16, 4, 0));
        /* a += a (same header) */
        assert_int_equal(usg_binary_(b, USG_ADD, b), USG_OK);
        check(b, dt, 2, SHAPE(3, 3), VALS(0, -8, 0, 16, 0, 0, 32, 8, 0));
        usg_tensor_release(row);
        usg_tensor_release(bt);
        usg_tensor_release(b);
        usg_tensor_release(at);
        usg_tensor_release(a);
    }
    /* overlapping shifted windows: x[1:] += x[:-1] reads the old x */
    usg_tensor *x = mk(USG_F32, 1, SHAPE(5), VALS(1, 2, 3, 4, 5)), *hi, *lo;
    assert_int_equal(usg_narrow(&hi, x, 0, 1, 4), USG_OK);
    assert_int_equal(usg_narrow(&lo, x, 0, 0, 4), USG_OK);
    assert_int_equal(usg_binary_(hi, USG_ADD, lo), USG_OK);
    check(x, USG_F32, 1, SHAPE(5), VALS(1, 3, 5, 7, 9));
    usg_tensor_release(hi);
    usg_tensor_release(lo);
    usg_tensor_release(x);
}

/* ==== Unary ops ========================================================= */

/* x = (-1.5, -0.5, 0, 0.5, 2.5) */
static const double UN_WANT[17][5] = {
    [USG_NEG] = {1.5, 0.5, 0, -0.5, -2.5},
    [USG_ABS] = {1.5, 0.5, 0, 0.5, 2.5},
    [USG_EXP] = {0.22313016014842982, 0.6065306597126334, 1, 1.6487212707001282,
                 12.182493960703473},
    [USG_LOG] = {NAN, NAN, -INFINITY, -0.6931471805599453, 0.9162907318741551},
    [USG_SQRT] = {NAN, NAN, 0, 0.7071067811865476, 1.5811388300841898},
    [USG_TANH] = {-0.9051482536448664, -0.46211715726000974, 0, 0.46211715726000974,
                  0.9866142981514303},
    [USG_SIGMOID] = {0.18242552380635635, 0.3775406687981454, 0.5, 0.6224593312018546,
                     0.9241418199787566},
    [USG_RELU] = {0, 0, 0, 0.5, 2.5},
    [USG_SIGN] = {-1, -1, 0, 1, 1},
    [USG_FLOOR] = {-2, -1, 0, 0, 2},
    [USG_CEIL] = {-1, 0, 0, 1, 3},
    [USG_ROUND] = {-2, 0, 0, 0, 2},                 /* half to even */
    [USG_LOG1P] = {NAN, -0.6931471805599453, 0, 0.4054651081081644, 1.252762968495368},
    [USG_SIN] = {-0.9974949866040544, -0.479425538604203, 0, 0.479425538604203,
                 0.5984721441039565},
    [USG_COS] = {0.0707372016677029, 0.8775825618903728, 1, 0.8775825618903728,
                 -0.8011436155469337},
    [USG_SQUARE] = {2.25, 0.25, 0, 0.25, 6.25},
    [USG_RECIPROCAL] = {-0.6666666666666666, -2, INFINITY, 2, 0.4},
};

static void test_unary_float(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *x = mk(dt, 1, SHAPE(5), VALS(-1.5, -0.5, 0, 0.5, 2.5));
        for (int op = USG_NEG; op <= USG_RECIPROCAL; op++) {
            usg_tensor *o = SENT;
            assert_int_equal(usg_unary(&o, op, x), USG_OK);
            /* f32 results are the f64 ones rounded once */
            check_tol(o, dt, 1, SHAPE(5), UN_WANT[op], dt == USG_F64 ? 4e-16 : 0);
            usg_tensor_release(o);
        }
        usg_tensor_release(x);
    }
    /* signs of zero: neg(0) = -0, ceil(-0.5) = -0, round(-0.5) = -0 */
    usg_tensor *x = mk(USG_F64, 1, SHAPE(2), VALS(0, -0.5)), *o;
    assert_int_equal(usg_unary(&o, USG_NEG, x), USG_OK);
    assert_true(signbit(usg_tensor_get_flat(o, 0)));
    usg_tensor_release(o);
    assert_int_equal(usg_unary(&o, USG_ROUND, x), USG_OK);
    assert_true(signbit(usg_tensor_get_flat(o, 1)));
    usg_tensor_release(o);
    usg_tensor_release(x);
    o = SENT;
    x = mk(USG_F32, 1, SHAPE(1), VALS(1));
    expect_err(usg_unary(&o, (usg_unop)17, x), USG_ARG, "unknown op");
    assert_null(o);
    expect_err(usg_unary_(x, (usg_unop)-1), USG_ARG, "unknown op");
    usg_tensor_release(x);
}

static void test_unary_i32(void **state)
{
    usg_tensor *x = mk(USG_I32, 1, SHAPE(4), VALS(-3, 0, 2, 5));
    static const double want[17][4] = {
        [USG_NEG] = {3, 0, -2, -5},      [USG_ABS] = {3, 0, 2, 5},
        [USG_EXP] = {0.049787068367863944, 1, 7.38905609893065, 148.4131591025766},
        [USG_LOG] = {NAN, -INFINITY, 0.6931471805599453, 1.6094379124341003},
        [USG_SQRT] = {NAN, 0, 1.4142135623730951, 2.23606797749979},
        [USG_TANH] = {-0.9950547536867305, 0, 0.9640275800758169, 0.9999092042625951},
        [USG_SIGMOID] = {0.04742587317756678, 0.5, 0.8807970779778823, 0.9933071490757153},
        [USG_RELU] = {0, 0, 2, 5},        [USG_SIGN] = {-1, 0, 1, 1},
        [USG_FLOOR] = {-3, 0, 2, 5},      [USG_CEIL] = {-3, 0, 2, 5},
        [USG_ROUND] = {-3, 0, 2, 5},
        [USG_LOG1P] = {NAN, 0, 1.0986122886681096, 1.791759469228055},
        [USG_SIN] = {-0.1411200080598672, 0, 0.9092974268256817, -0.9589242746631385},
        [USG_COS] = {-0.9899924966004454, 1, -0.4161468365471424, 0.28366218546322625},
        [USG_SQUARE] = {9, 0, 4, 25},
        [USG_RECIPROCAL] = {-0.3333333333333333, INFINITY, 0.5, 0.2},
    };
    static const bool keeps[17] = {[USG_NEG] = 1, [USG_ABS] = 1, [USG_RELU] = 1, [USG_SIGN] = 1,
                                   [USG_FLOOR] = 1, [USG_CEIL] = 1, [USG_ROUND] = 1,
                                   [USG_SQUARE] = 1};
    for (int op = USG_NEG; op <= USG_RECIPROCAL; op++) {
        usg_tensor *o;
        assert_int_equal(usg_unary(&o, op, x), USG_OK);
        check_tol(o, keeps[op] ? USG_I32 : USG_F32, 1, SHAPE(4), want[op], 0);
        usg_tensor_release(o);
        /* in place only where an i32 can hold the result */
        usg_tensor *c;
        assert_int_equal(usg_clone(&c, x), USG_OK);
        if (keeps[op]) {
            assert_int_equal(usg_unary_(c, op), USG_OK);
            check(c, USG_I32, 1, SHAPE(4), want[op]);
        } else {
            char needle[64];
            snprintf(needle, sizeof needle, "%s_: an i32 tensor", usg_unop_name(op));
            expect_err(usg_unary_(c, op), USG_TYPE, needle);
            check(c, USG_I32, 1, SHAPE(4), VALS(-3, 0, 2, 5));
        }
        usg_tensor_release(c);
    }
    usg_tensor_release(x);
}

static void test_unary_inplace(void **state)
{
    usg_tensor *m = mk(USG_F32, 2, SHAPE(2, 3), VALS(-1, 2, -3, 4, -5, 6)), *v;
    assert_int_equal(usg_narrow(&v, m, 1, 1, 2), USG_OK);
    long v0 = m->storage->version;
    assert_int_equal(usg_unary_(v, USG_NEG), USG_OK);
    assert_true(m->storage->version > v0);
    check(m, USG_F32, 2, SHAPE(2, 3), VALS(-1, -2, 3, 4, 5, -6));
    assert_int_equal(usg_unary_(m, USG_RELU), USG_OK);
    check(m, USG_F32, 2, SHAPE(2, 3), VALS(0, 0, 3, 4, 5, 0));
    assert_int_equal(usg_unary_(m, USG_SQRT), USG_OK);
    check(m, USG_F32, 2, SHAPE(2, 3), VALS(0, 0, sqrt(3), 2, sqrt(5), 0));
    usg_tensor_release(v);
    /* an expanded target would apply the op once per alias: refused */
    usg_tensor *one = mk(USG_F64, 1, SHAPE(1), VALS(1)), *e;
    assert_int_equal(usg_expand(&e, one, 1, SHAPE(3)), USG_OK);
    expect_err(usg_unary_(e, USG_EXP), USG_ARG, "exp_: the tensor's elements overlap in memory");
    expect_err(usg_unary_(e, USG_NEG), USG_ARG, "neg_:");
    check(one, USG_F64, 1, SHAPE(1), VALS(1));
    usg_tensor_release(e);
    usg_tensor_release(one);
    usg_tensor_release(m);
}

/* ==== NaN and overflow ================================================== */

static void test_nan_propagation(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a = mk(dt, 1, SHAPE(4), VALS(NAN, 1, NAN, -INFINITY));
        usg_tensor *b = mk(dt, 1, SHAPE(4), VALS(1, NAN, NAN, NAN));
        usg_tensor *o;
        assert_int_equal(usg_binary(&o, USG_MAXIMUM, a, b), USG_OK);
        expect(o, dt, 1, SHAPE(4), VALS(NAN, NAN, NAN, NAN));
        assert_int_equal(usg_binary(&o, USG_MINIMUM, a, b), USG_OK);
        expect(o, dt, 1, SHAPE(4), VALS(NAN, NAN, NAN, NAN));
        assert_int_equal(usg_binary_scalar(&o, USG_MAXIMUM, a, 0, false), USG_OK);
        expect(o, dt, 1, SHAPE(4), VALS(NAN, 1, NAN, 0));
        assert_int_equal(usg_binary_scalar(&o, USG_MINIMUM, a, NAN, true), USG_OK);
        expect(o, dt, 1, SHAPE(4), VALS(NAN, NAN, NAN, NAN));
        assert_int_equal(usg_binary(&o, USG_EQ, a, a), USG_OK);          /* NaN != NaN */
        expect(o, USG_I32, 1, SHAPE(4), VALS(0, 1, 0, 1));
        assert_int_equal(usg_binary(&o, USG_NE, a, b), USG_OK);
        expect(o, USG_I32, 1, SHAPE(4), VALS(1, 1, 1, 1));
        usg_tensor *r = mk(dt, 1, SHAPE(4), VALS(NAN, -1, 0, INFINITY));
        assert_int_equal(usg_unary(&o, USG_RELU, r), USG_OK);
        expect(o, dt, 1, SHAPE(4), VALS(NAN, 0, 0, INFINITY));
        assert_int_equal(usg_unary(&o, USG_SIGN, r), USG_OK);
        expect(o, dt, 1, SHAPE(4), VALS(NAN, -1, 0, 1));
        assert_int_equal(usg_unary_(r, USG_RELU), USG_OK);
        check(r, dt, 1, SHAPE(4), VALS(NAN, 0, 0, INFINITY));
        usg_tensor_release(r);
        usg_tensor_release(a);
        usg_tensor_release(b);
    }
}

static void test_sigmoid_extremes(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *x = mk(dt, 1, SHAPE(6), VALS(1000, -1000, 30, -30, INFINITY, -INFINITY)), *o;
        assert_int_equal(usg_unary(&o, USG_SIGMOID, x), USG_OK);
        check_tol(o, dt, 1, SHAPE(6), VALS(1, 0, 1 - 9.357622968839299e-14, 9.357622968839299e-14,
                                           1, 0), dt == USG_F64 ? 1e-15 : 0);
        usg_tensor_release(o);
        /* strided path too */
        usg_tensor *e;
        usg_tensor *one = mk(dt, 1, SHAPE(1), VALS(-1000));
        assert_int_equal(usg_expand(&e, one, 1, SHAPE(3)), USG_OK);
        assert_int_equal(usg_unary(&o, USG_SIGMOID, e), USG_OK);
        expect(o, dt, 1, SHAPE(3), VALS(0, 0, 0));
        usg_tensor_release(e);
        usg_tensor_release(one);
        /* and without overflow on the way: 1 / (1 + e^1000) would give 0 too,
         * through an e^1000 that overflows (the flag tells) */
        feclearexcept(FE_ALL_EXCEPT);
        assert_int_equal(usg_unary(&o, USG_SIGMOID, x), USG_OK);
        assert_false(fetestexcept(FE_OVERFLOW | FE_INVALID));
        usg_tensor_release(o);
        assert_int_equal(usg_unary(&o, USG_EXP, x), USG_OK);
        check(o, dt, 1, SHAPE(6), VALS(INFINITY, 0, exp(30), exp(-30), INFINITY, 0));
        usg_tensor_release(o);
        usg_tensor_release(x);
    }
}

static void test_round_half_even(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_tensor *x = mk(FLOATS[k], 1, SHAPE(9), VALS(0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5,
                                                      2.4999, 2.5001)), *o;
        assert_int_equal(usg_unary(&o, USG_ROUND, x), USG_OK);
        expect(o, FLOATS[k], 1, SHAPE(9), VALS(0, 2, 2, 4, 0, -2, -2, 2, 3));
        usg_tensor_release(x);
    }
}

/* ==== clamp ============================================================= */

static void test_clamp(void **state)
{
    usg_tensor *x = mk(USG_F32, 1, SHAPE(4), VALS(-2, 0.5, 3, NAN)), *o;
    assert_int_equal(usg_clamp(&o, x, 0, NAN), USG_OK);                 /* min only */
    expect(o, USG_F32, 1, SHAPE(4), VALS(0, 0.5, 3, NAN));
    assert_int_equal(usg_clamp(&o, x, NAN, 1), USG_OK);                 /* max only */
    expect(o, USG_F32, 1, SHAPE(4), VALS(-2, 0.5, 1, NAN));
    assert_int_equal(usg_clamp(&o, x, 0, 1), USG_OK);
    expect(o, USG_F32, 1, SHAPE(4), VALS(0, 0.5, 1, NAN));
    assert_int_equal(usg_clamp(&o, x, NAN, NAN), USG_OK);
    expect(o, USG_F32, 1, SHAPE(4), VALS(-2, 0.5, 3, NAN));
    assert_int_equal(usg_clamp(&o, x, 0.5, 0.5), USG_OK);
    expect(o, USG_F32, 1, SHAPE(4), VALS(0.5, 0.5, 0.5, NAN));
    assert_int_equal(usg_clamp(&o, x, -INFINITY, INFINITY), USG_OK);
    expect(o, USG_F32, 1, SHAPE(4), VALS(-2, 0.5, 3, NAN));
    o = SENT;
    expect_err(usg_clamp(&o, x, 2, 1), USG_ARG, "clamp: min 2 is greater than max 1");
    assert_null(o);
    expect_err(usg_clamp_(x, 2, 1), USG_ARG, "clamp_:");
    check(x, USG_F32, 1, SHAPE(4), VALS(-2, 0.5, 3, NAN));
    usg_tensor_release(x);

    usg_tensor *i = mk(USG_I32, 1, SHAPE(3), VALS(-5, 0, 5));
    assert_int_equal(usg_clamp(&o, i, -1, 1), USG_OK);
    expect(o, USG_I32, 1, SHAPE(3), VALS(-1, 0, 1));
    usg_tensor_release(i);

    /* on views: a transposed input, an in-place narrowed target */
    usg_tensor *m = mk(USG_F64, 2, SHAPE(2, 3), VALS(-3, -2, -1, 1, 2, 3)), *tt, *v;
    assert_int_equal(usg_transpose(&tt, m, 0, 1), USG_OK);
    assert_int_equal(usg_clamp(&o, tt, -1.5, 1.5), USG_OK);
    expect(o, USG_F64, 2, SHAPE(3, 2), VALS(-1.5, 1, -1.5, 1.5, -1, 1.5));
    assert_int_equal(usg_narrow(&v, m, 1, 0, 2), USG_OK);
    long v0 = m->storage->version;
    assert_int_equal(usg_clamp_(v, NAN, -2.5), USG_OK);
    assert_true(m->storage->version > v0);
    check(m, USG_F64, 2, SHAPE(2, 3), VALS(-3, -2.5, -1, -2.5, -2.5, 3));
    usg_tensor_release(v);
    usg_tensor_release(tt);
    usg_tensor_release(m);
}

/* ==== where ============================================================= */

static void test_where(void **state)
{
    usg_tensor *cond = mk(USG_I32, 2, SHAPE(3, 1), VALS(1, 0, 1));
    usg_tensor *a = mk(USG_F32, 2, SHAPE(1, 4), VALS(1, 2, 3, 4));
    usg_tensor *b = mk(USG_F64, 0, NULL, VALS(-1));
    usg_tensor *o;
    assert_int_equal(usg_where(&o, cond, a, b), USG_OK);
    expect(o, USG_F64, 2, SHAPE(3, 4), VALS(1, 2, 3, 4, -1, -1, -1, -1, 1, 2, 3, 4));
    /* a float condition: nonzero (NaN included) is true */
    usg_tensor *fc = mk(USG_F32, 1, SHAPE(4), VALS(0, 0.5, NAN, -0.0));
    usg_tensor *ia = mk(USG_I32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    usg_tensor *ib = mk(USG_I32, 1, SHAPE(1), VALS(9));
    assert_int_equal(usg_where(&o, fc, ia, ib), USG_OK);
    expect(o, USG_I32, 1, SHAPE(4), VALS(9, 2, 3, 9));
    /* cond broadcast against a strided a */
    usg_tensor *m = mk(USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)), *mt;
    usg_tensor *c2 = mk(USG_I32, 1, SHAPE(2), VALS(0, 1));
    assert_int_equal(usg_transpose(&mt, m, 0, 1), USG_OK);
    assert_int_equal(usg_where(&o, c2, mt, b), USG_OK);
    expect(o, USG_F64, 2, SHAPE(2, 2), VALS(-1, 3, -1, 4));
    o = SENT;
    usg_tensor *v3 = mk(USG_F32, 1, SHAPE(3), VALS(1, 2, 3));
    expect_err(usg_where(&o, cond, a, v3), USG_SHAPE, "where: shapes (3, 4) and (3,)");
    expect_err(usg_where(&o, fc, v3, b), USG_SHAPE, "where: shapes (4,) and (3,)");
    assert_null(o);
    usg_tensor_release(v3);
    usg_tensor_release(c2);
    usg_tensor_release(mt);
    usg_tensor_release(m);
    usg_tensor_release(fc);
    usg_tensor_release(ia);
    usg_tensor_release(ib);
    usg_tensor_release(cond);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

/* ==== allclose ========================================================== */

static void test_allclose(void **state)
{
    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 3));
    usg_tensor *b = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 3 + 1e-9));
    bool r = true;
    assert_int_equal(usg_allclose(&r, a, a, 0, 0), USG_OK);
    assert_true(r);
    assert_int_equal(usg_allclose(&r, a, b, 0, 1e-8), USG_OK);
    assert_true(r);
    assert_int_equal(usg_allclose(&r, a, b, 0, 1e-10), USG_OK);
    assert_false(r);
    assert_int_equal(usg_allclose(&r, a, b, 1e-9, 0), USG_OK);          /* 1e-9 <= 3e-9 */
    assert_true(r);
    assert_int_equal(usg_allclose(&r, a, b, 1e-10, 0), USG_OK);
    assert_false(r);
    /* NaN never matches; inf matches the same inf only */
    usg_tensor *n = mk(USG_F32, 1, SHAPE(2), VALS(NAN, INFINITY));
    usg_tensor *n2 = mk(USG_F64, 1, SHAPE(2), VALS(NAN, INFINITY));
    usg_tensor *n3 = mk(USG_F64, 1, SHAPE(2), VALS(0, -INFINITY));
    assert_int_equal(usg_allclose(&r, n, n2, 1, 1), USG_OK);
    assert_false(r);
    usg_tensor *i1 = mk(USG_F32, 1, SHAPE(1), VALS(INFINITY)), *i2;
    assert_int_equal(usg_select(&i2, n2, 0, 1), USG_OK);
    assert_int_equal(usg_allclose(&r, i1, i2, 0, 0), USG_OK);
    assert_true(r);
    usg_tensor *i3;
    assert_int_equal(usg_select(&i3, n3, 0, 1), USG_OK);
    assert_int_equal(usg_allclose(&r, i1, i3, 1e10, 1e10), USG_OK);
    assert_false(r);
    usg_tensor *fin = mk(USG_F64, 1, SHAPE(1), VALS(1));          /* finite vs inf */
    assert_int_equal(usg_allclose(&r, fin, i1, 1, 1e10), USG_OK);
    assert_false(r);
    assert_int_equal(usg_allclose(&r, i1, fin, 1, 1e10), USG_OK);
    assert_false(r);
    usg_tensor_release(fin);
    /* broadcasting, mixed dtypes, strided */
    usg_tensor *m = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 1, 2, 3)), *mt;
    assert_int_equal(usg_allclose(&r, m, a, 0, 0), USG_OK);
    assert_true(r);
    assert_int_equal(usg_transpose(&mt, m, 0, 1), USG_OK);               /* (3, 2) */
    usg_tensor *colv = mk(USG_I32, 2, SHAPE(3, 1), VALS(1, 2, 3));
    assert_int_equal(usg_allclose(&r, mt, colv, 0, 0), USG_OK);
    assert_true(r);
    /* empty: vacuously true */
    usg_tensor *e;
    assert_int_equal(usg_tensor_zeros(&e, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    r = false;
    assert_int_equal(usg_allclose(&r, e, a, 0, 0), USG_OK);
    assert_true(r);
    /* shape error: result false */
    usg_tensor *v4 = mk(USG_F32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    r = true;
    expect_err(usg_allclose(&r, a, v4, 0, 0), USG_SHAPE, "allclose: shapes (3,) and (4,)");
    assert_false(r);
    usg_tensor_release(v4);
    usg_tensor_release(e);
    usg_tensor_release(colv);
    usg_tensor_release(mt);
    usg_tensor_release(m);
    usg_tensor_release(i1); usg_tensor_release(i2); usg_tensor_release(i3);
    usg_tensor_release(n); usg_tensor_release(n2); usg_tensor_release(n3);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

/* ==== Allocation failure ================================================ */

/* Run `call` with the k-th allocation failing, k = 1, 2, ... until it
 * succeeds: each failure is USG_NOMEM, leaves `out` NULL (when given) and the
 * live bytes as they were, and `unchanged` holds (in-place targets keep their
 * values). Returns the number of failures. */
#define NOMEM_LOOP(nfail, out, call, unchanged)                                \
    NOMEM_LOOP_CORE(nfail, out, call, 64,                                      \
                    { if ((out) != SENT) usg_tensor_release(out); },           \
                    { assert_int_equal(s_, USG_NOMEM);                         \
                      assert_true((out) == NULL || (out) == SENT);             \
                      unchanged; })

static void test_nomem(void **state)
{
    usg_tensor *a = mk(USG_F32, 2, SHAPE(3, 1), VALS(1, 2, 3));
    usg_tensor *b = mk(USG_F64, 2, SHAPE(1, 4), VALS(1, 2, 3, 4));
    usg_tensor *sq = mk(USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)), *sqt;
    assert_int_equal(usg_transpose(&sqt, sq, 0, 1), USG_OK);
    usg_tensor *o;
    bool r;
    int n;
    NOMEM_LOOP(n, o, usg_binary(&o, USG_ADD, a, b), (void)0);
    assert_true(n >= 4);          /* output (3) and a broadcast header (operands of the
                                     output's shape are used as they are) */
    NOMEM_LOOP(n, o, usg_binary_scalar(&o, USG_SUB, a, 1, true), (void)0);
    assert_true(n >= 4);
    NOMEM_LOOP(n, o, usg_unary(&o, USG_EXP, b), (void)0);
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, o, usg_clamp(&o, b, 0, 2), (void)0);
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, o, usg_where(&o, a, a, b), (void)0);
    assert_true(n >= 6);
    o = NULL;
    NOMEM_LOOP(n, o, usg_allclose(&r, a, b, 0, 0), (void)0);
    assert_int_equal(n, 2);
    /* in place, with an aliased b that must be copied first */
    NOMEM_LOOP(n, o, usg_binary_(sq, USG_ADD, sqt),
               check(sq, USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)));
    assert_true(n >= 3);
    check(sq, USG_F32, 2, SHAPE(2, 2), VALS(2, 5, 5, 8));
    NOMEM_LOOP(n, o, usg_binary_scalar_(sq, USG_MUL, 2),
               check(sq, USG_F32, 2, SHAPE(2, 2), VALS(2, 5, 5, 8)));
    assert_true(n >= 1);                          /* the scalar's broadcast header */
    check(sq, USG_F32, 2, SHAPE(2, 2), VALS(4, 10, 10, 16));
    usg_tensor_release(sqt);
    usg_tensor_release(sq);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_binary_float),
        cmocka_unit_test(test_binary_i32),
        cmocka_unit_test(test_binary_mixed_dtypes),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_strided_inputs),
        cmocka_unit_test(test_unary_f32_paths_agree),
        cmocka_unit_test(test_binary_scalar),
        cmocka_unit_test(test_inplace),
        cmocka_unit_test(test_inplace_aliasing),
        cmocka_unit_test(test_unary_float),
        cmocka_unit_test(test_unary_i32),
        cmocka_unit_test(test_unary_inplace),
        cmocka_unit_test(test_nan_propagation),
        cmocka_unit_test(test_sigmoid_extremes),
        cmocka_unit_test(test_round_half_even),
        cmocka_unit_test(test_clamp),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_allclose),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

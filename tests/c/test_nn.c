/*
 * test_nn.c -- cmocka tests of host/core/nn.c: linear, softmax and
 * log_softmax, and the losses (nll, cross-entropy, mse, bce, bce with
 * logits) against hand-computed values, with every reduction, ignore_index
 * and mask, views that are not contiguous, f32 and f64, each error path and
 * allocation failure at every allocation (no leak, *out left NULL).
 */
#include "testutil.h"

/* ==== Helpers =========================================================== */

static double tol_of(usg_dtype dt) { return dt == USG_F64 ? 1e-12 : 2e-6; }

/* t has dtype dt and the given shape, is contiguous and holds v. Releases t. */
static void expect(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    expect_tol(t, dt, ndim, shape, v, tol_of(dt));
}

/* A 0-dim result holding v. */
static void expect_scalar(usg_tensor *t, usg_dtype dt, double v)
{
    expect(t, dt, 0, NULL, VALS(v));
}

static const usg_dtype FLOATS[] = {USG_F32, USG_F64};

/* ==== linear ============================================================ */

/* x [[1,2,3],[4,5,6]], w [[1,0,-1],[.5,.5,.5]], b [.1,-.2]:
 * x w^T = [[-2, 3], [-2, 7.5]], + b = [[-1.9, 2.8], [-1.9, 7.3]] */
static void test_linear_values(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *x = mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
        usg_tensor *w = mk(dt, 2, SHAPE(2, 3), VALS(1, 0, -1, .5, .5, .5));
        usg_tensor *b = mk(dt, 1, SHAPE(2), VALS(.1, -.2)), *y = NULL;
        assert_int_equal(usg_linear(&y, x, w, b), USG_OK);
        expect(y, dt, 2, SHAPE(2, 2), VALS(-1.9, 2.8, -1.9, 7.3));
        assert_int_equal(usg_linear(&y, x, w, NULL), USG_OK);
        expect(y, dt, 2, SHAPE(2, 2), VALS(-2, 3, -2, 7.5));
        usg_tensor_release(x); usg_tensor_release(w); usg_tensor_release(b);
    }
}

/* Leading dims are kept: (2, 1, 3) -> (2, 1, 2); a 1-D x (3) -> (2). */
static void test_linear_shapes(void **state)
{
    usg_tensor *x = mk(USG_F32, 3, SHAPE(2, 1, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *w = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 0, -1, .5, .5, .5));
    usg_tensor *b = mk(USG_F32, 1, SHAPE(2), VALS(.1, -.2)), *y = NULL, *x1 = NULL;
    assert_int_equal(usg_linear(&y, x, w, b), USG_OK);
    expect(y, USG_F32, 3, SHAPE(2, 1, 2), VALS(-1.9, 2.8, -1.9, 7.3));
    x1 = mk(USG_F32, 1, SHAPE(3), VALS(4, 5, 6));
    assert_int_equal(usg_linear(&y, x1, w, b), USG_OK);
    expect(y, USG_F32, 1, SHAPE(2), VALS(-1.9, 7.3));
    usg_tensor_release(x); usg_tensor_release(x1); usg_tensor_release(w); usg_tensor_release(b);
}

/* x and w as transposed views of their transposes give the same numbers. */
static void test_linear_views(void **state)
{
    usg_tensor *x = transposed(mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 4, 2, 5, 3, 6)));
    usg_tensor *w = transposed(mk(USG_F32, 2, SHAPE(3, 2), VALS(1, .5, 0, .5, -1, .5)));
    usg_tensor *bb = mk(USG_F32, 2, SHAPE(2, 2), VALS(.1, 9, -.2, 9)), *b = NULL, *y = NULL;
    assert_int_equal(usg_select(&b, bb, 1, 0), USG_OK);              /* stride 2 */
    assert_false(usg_tensor_is_contiguous(x));
    assert_int_equal(usg_linear(&y, x, w, b), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 2), VALS(-1.9, 2.8, -1.9, 7.3));
    usg_tensor_release(x); usg_tensor_release(w); usg_tensor_release(b); usg_tensor_release(bb);
}

/* No rows, no outputs, no inputs: the result is b (or 0) broadcast. */
static void test_linear_empty(void **state)
{
    usg_tensor *x = NULL, *w = NULL, *y = NULL, *b = mk(USG_F32, 1, SHAPE(2), VALS(1, 2));
    assert_int_equal(usg_tensor_zeros(&x, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    assert_int_equal(usg_tensor_zeros(&w, USG_F32, 2, SHAPE(2, 3)), USG_OK);
    assert_int_equal(usg_linear(&y, x, w, b), USG_OK);
    expect(y, USG_F32, 2, SHAPE(0, 2), NULL);
    usg_tensor_release(x); usg_tensor_release(w);
    assert_int_equal(usg_tensor_zeros(&x, USG_F32, 2, SHAPE(2, 0)), USG_OK);
    assert_int_equal(usg_tensor_zeros(&w, USG_F32, 2, SHAPE(2, 0)), USG_OK);
    assert_int_equal(usg_linear(&y, x, w, b), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 1, 2));
    assert_int_equal(usg_linear(&y, x, w, NULL), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 2), VALS(0, 0, 0, 0));
    usg_tensor_release(x); usg_tensor_release(w); usg_tensor_release(b);
}

static void test_linear_errors(void **state)
{
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *xi = mk(USG_I32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *w = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 0, -1, .5, .5, .5));
    usg_tensor *wd = mk(USG_F64, 2, SHAPE(2, 3), VALS(1, 0, -1, .5, .5, .5));
    usg_tensor *w4 = mk(USG_F32, 2, SHAPE(2, 4), VALS(1, 0, -1, .5, .5, .5, 0, 0));
    usg_tensor *b3 = mk(USG_F32, 1, SHAPE(3), VALS(1, 2, 3));
    usg_tensor *s = mk(USG_F32, 0, NULL, VALS(1)), *y = (usg_tensor *)0x1;
    expect_err(usg_linear(&y, xi, w, NULL), USG_TYPE, "linear: x must be f32 or f64, got i32");
    assert_null(y);
    expect_err(usg_linear(&y, x, wd, NULL), USG_TYPE, "linear: w and b must have x's dtype");
    expect_err(usg_linear(&y, x, w4, NULL), USG_SHAPE, "got x (2, 3) and w (2, 4)");
    expect_err(usg_linear(&y, x, w, b3), USG_SHAPE, "linear: b must be (2,) to match w (2, 3), got (3,)");
    expect_err(usg_linear(&y, s, w, NULL), USG_SHAPE, "linear: w must be (out, in)");
    assert_null(y);
    usg_tensor_release(x); usg_tensor_release(xi); usg_tensor_release(w);
    usg_tensor_release(wd); usg_tensor_release(w4); usg_tensor_release(b3);
    usg_tensor_release(s);
}

static usg_tensor *g_x, *g_w, *g_b, *g_t, *g_m;

static usg_status op_linear(usg_tensor **out, void *ctx) { return usg_linear(out, g_x, g_w, g_b); }

static void test_linear_nomem(void **state)
{
    g_x = transposed(mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 4, 2, 5, 3, 6)));
    g_w = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 0, -1, .5, .5, .5));
    g_b = mk(USG_F32, 1, SHAPE(2), VALS(.1, -.2));
    nomem_sweep(op_linear, NULL);
    usg_tensor_release(g_x); usg_tensor_release(g_w); usg_tensor_release(g_b);
}

/* ==== softmax and log_softmax =========================================== */

/* softmax([1, 2, 3]) = e^x / sum e^x = [0.0900306, 0.2447285, 0.6652410];
 * log_softmax = x - log sum e^x = [-2.4076060, -1.4076060, -0.4076060].
 * Shifted by 1000 nothing changes (and nothing overflows). */
static void test_softmax_1d(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *x = mk(dt, 1, SHAPE(3), VALS(1, 2, 3));
        usg_tensor *big = mk(dt, 1, SHAPE(3), VALS(1001, 1002, 1003)), *y = NULL;
        const double *sm = VALS(0.09003057317038046, 0.24472847105479764, 0.6652409557748218);
        const double *lsm = VALS(-2.4076059644443806, -1.4076059644443804, -0.4076059644443804);
        assert_int_equal(usg_softmax(&y, x, 0), USG_OK);
        expect(y, dt, 1, SHAPE(3), sm);
        assert_int_equal(usg_softmax(&y, big, -1), USG_OK);
        expect(y, dt, 1, SHAPE(3), sm);
        assert_int_equal(usg_log_softmax(&y, x, -1), USG_OK);
        expect(y, dt, 1, SHAPE(3), lsm);
        assert_int_equal(usg_log_softmax(&y, big, 0), USG_OK);
        expect(y, dt, 1, SHAPE(3), lsm);
        usg_tensor_release(x); usg_tensor_release(big);
    }
}

/* X = [[1, 2, 3], [4, 6, 8]] along each dim, contiguous and transposed. */
static void test_softmax_dims(void **state)
{
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 6, 8)), *y = NULL;
    usg_tensor *xt = transposed(mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 4, 2, 6, 3, 8)));
    const double *d1 = VALS(0.09003057317038046, 0.24472847105479764, 0.6652409557748218,
                            0.015876239976466765, 0.11731042782619838, 0.8668133321973349);
    const double *d0 = VALS(0.04742587317756679, 0.017986209962091555, 0.006692850924284856,
                            0.9525741268224334, 0.9820137900379085, 0.9933071490757153);
    const double *l0 = VALS(-3.048587351573742, -4.0181499279178094, -5.006715348489118,
                            -0.04858735157374196, -0.01814992791780978, -0.006715348489117967);
    for (int k = 0; k < 2; k++) {
        usg_tensor *in = k ? xt : x;
        assert_int_equal(usg_softmax(&y, in, 1), USG_OK);
        expect(y, USG_F32, 2, SHAPE(2, 3), d1);
        assert_int_equal(usg_softmax(&y, in, -2), USG_OK);
        expect(y, USG_F32, 2, SHAPE(2, 3), d0);
        assert_int_equal(usg_log_softmax(&y, in, 0), USG_OK);
        expect(y, USG_F32, 2, SHAPE(2, 3), l0);
    }
    usg_tensor_release(x); usg_tensor_release(xt);
}

/* -inf gets probability 0; a NaN poisons its own slice only; a 0-dim x is
 * one slice of one (softmax 1, log_softmax 0); empty stays empty. */
static void test_softmax_special(void **state)
{
    usg_tensor *x = mk(USG_F64, 2, SHAPE(2, 2), VALS(-INFINITY, 0, NAN, 1)), *y = NULL;
    assert_int_equal(usg_softmax(&y, x, 1), USG_OK);
    expect(y, USG_F64, 2, SHAPE(2, 2), VALS(0, 1, NAN, NAN));
    assert_int_equal(usg_log_softmax(&y, x, 1), USG_OK);
    expect(y, USG_F64, 2, SHAPE(2, 2), VALS(-INFINITY, 0, NAN, NAN));
    usg_tensor_release(x);
    x = mk(USG_F32, 0, NULL, VALS(7));
    assert_int_equal(usg_softmax(&y, x, 0), USG_OK);
    expect_scalar(y, USG_F32, 1);
    assert_int_equal(usg_log_softmax(&y, x, -1), USG_OK);
    expect_scalar(y, USG_F32, 0);
    usg_tensor_release(x);
    assert_int_equal(usg_tensor_zeros(&x, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    assert_int_equal(usg_softmax(&y, x, 1), USG_OK);
    expect(y, USG_F32, 2, SHAPE(0, 3), NULL);
    usg_tensor_release(x);
}

static void test_softmax_errors(void **state)
{
    usg_tensor *xi = mk(USG_I32, 1, SHAPE(3), VALS(1, 2, 3));
    usg_tensor *x = mk(USG_F32, 1, SHAPE(3), VALS(1, 2, 3)), *y = (usg_tensor *)0x1;
    expect_err(usg_softmax(&y, xi, 0), USG_TYPE, "softmax: x must be f32 or f64, got i32");
    assert_null(y);
    expect_err(usg_log_softmax(&y, xi, 0), USG_TYPE, "log_softmax: x must be f32 or f64");
    expect_err(usg_softmax(&y, x, 1), USG_ARG, "softmax: dim");
    expect_err(usg_log_softmax(&y, x, -2), USG_ARG, "log_softmax: dim");
    assert_null(y);
    usg_tensor_release(xi); usg_tensor_release(x);
}

static usg_status op_softmax(usg_tensor **out, void *ctx) { return usg_softmax(out, g_x, 0); }

static void test_softmax_nomem(void **state)
{
    g_x = transposed(mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 4, 2, 6, 3, 8)));
    nomem_sweep(op_softmax, NULL);
    usg_tensor_release(g_x);
}

/* ==== nll_loss ========================================================== */

/* logp rows [-1 -2 -3 -4], [-.5 -1.5 -2.5 -3.5], [-.1 -.2 -.3 -.4] with
 * targets (0-based) 3, 0, 1: losses 4, 0.5, 0.2; mean 4.7 / 3, sum 4.7. */
static usg_tensor *logp34(usg_dtype dt)
{
    return mk(dt, 2, SHAPE(3, 4), VALS(-1, -2, -3, -4, -.5, -1.5, -2.5, -3.5, -.1, -.2, -.3, -.4));
}

static void test_nll_reductions(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *lp = logp34(dt), *t0 = mk(USG_I32, 1, SHAPE(3), VALS(3, 0, 1));
        usg_tensor *t1 = mk(USG_I32, 1, SHAPE(3), VALS(4, 1, 2)), *y = NULL;
        assert_int_equal(usg_nll_loss(&y, lp, t0, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_OK);
        expect_scalar(y, dt, 4.7 / 3);
        assert_int_equal(usg_nll_loss(&y, lp, t0, NULL, USG_NO_IGNORE, USG_REDUCE_SUM, 0), USG_OK);
        expect_scalar(y, dt, 4.7);
        assert_int_equal(usg_nll_loss(&y, lp, t0, NULL, USG_NO_IGNORE, USG_REDUCE_NONE, 0), USG_OK);
        expect(y, dt, 1, SHAPE(3), VALS(4, .5, .2));
        assert_int_equal(usg_nll_loss(&y, lp, t1, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 1), USG_OK);
        expect_scalar(y, dt, 4.7 / 3);
        usg_tensor_release(lp); usg_tensor_release(t0); usg_tensor_release(t1);
    }
}

/* ignore_index 0 drops item 1: (4 + .2) / 2. mask [1, 1, 0] drops item 2:
 * (4 + .5) / 2. Both: only item 0 is left. All dropped: NaN mean, 0 sum. */
static void test_nll_ignore_mask(void **state)
{
    usg_tensor *lp = logp34(USG_F32), *t = mk(USG_I32, 1, SHAPE(3), VALS(3, 0, 1));
    usg_tensor *m = mk(USG_F32, 1, SHAPE(3), VALS(1, 1, 0)), *y = NULL;
    usg_tensor *mi = mk(USG_I32, 1, SHAPE(3), VALS(0, 0, 0));
    assert_int_equal(usg_nll_loss(&y, lp, t, NULL, 0, USG_REDUCE_MEAN, 0), USG_OK);
    expect_scalar(y, USG_F32, 2.1);
    assert_int_equal(usg_nll_loss(&y, lp, t, NULL, 0, USG_REDUCE_SUM, 0), USG_OK);
    expect_scalar(y, USG_F32, 4.2);
    assert_int_equal(usg_nll_loss(&y, lp, t, NULL, 0, USG_REDUCE_NONE, 0), USG_OK);
    expect(y, USG_F32, 1, SHAPE(3), VALS(4, 0, .2));
    assert_int_equal(usg_nll_loss(&y, lp, t, m, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_OK);
    expect_scalar(y, USG_F32, 2.25);
    assert_int_equal(usg_nll_loss(&y, lp, t, m, USG_NO_IGNORE, USG_REDUCE_NONE, 0), USG_OK);
    expect(y, USG_F32, 1, SHAPE(3), VALS(4, .5, 0));
    assert_int_equal(usg_nll_loss(&y, lp, t, m, 0, USG_REDUCE_MEAN, 0), USG_OK);
    expect_scalar(y, USG_F32, 4);
    assert_int_equal(usg_nll_loss(&y, lp, t, mi, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_OK);
    expect_scalar(y, USG_F32, NAN);
    assert_int_equal(usg_nll_loss(&y, lp, t, mi, USG_NO_IGNORE, USG_REDUCE_SUM, 0), USG_OK);
    expect_scalar(y, USG_F32, 0);
    usg_tensor_release(lp); usg_tensor_release(t); usg_tensor_release(m); usg_tensor_release(mi);
}

/* A masked-out target is padding and may hold any id (0 in base 1 here). */
static void test_nll_masked_padding(void **state)
{
    usg_tensor *lp = logp34(USG_F32), *t = mk(USG_I32, 1, SHAPE(3), VALS(4, 1, 0));
    usg_tensor *m = mk(USG_I32, 1, SHAPE(3), VALS(1, 1, 0)), *y = NULL;
    assert_int_equal(usg_nll_loss(&y, lp, t, m, USG_NO_IGNORE, USG_REDUCE_SUM, 1), USG_OK);
    expect_scalar(y, USG_F32, 4.5);
    expect_err(usg_nll_loss(&y, lp, t, NULL, USG_NO_IGNORE, USG_REDUCE_SUM, 1), USG_ARG,
               "nll_loss: target[3] must be a class in [1, 4], got 0");
    usg_tensor_release(lp); usg_tensor_release(t); usg_tensor_release(m);
}

/* logp as a transposed view, target and mask as strided views; a (C) row
 * with a 0-dim target. */
static void test_nll_views(void **state)
{
    usg_tensor *lp = transposed(mk(USG_F64, 2, SHAPE(4, 3),
                                   VALS(-1, -.5, -.1, -2, -1.5, -.2, -3, -2.5, -.3, -4, -3.5, -.4)));
    usg_tensor *tt = mk(USG_I32, 2, SHAPE(3, 2), VALS(3, 9, 0, 9, 1, 9)), *t = NULL, *y = NULL;
    assert_int_equal(usg_select(&t, tt, 1, 0), USG_OK);
    assert_false(usg_tensor_is_contiguous(lp));
    assert_false(usg_tensor_is_contiguous(t));
    assert_int_equal(usg_nll_loss(&y, lp, t, NULL, USG_NO_IGNORE, USG_REDUCE_NONE, 0), USG_OK);
    expect(y, USG_F64, 1, SHAPE(3), VALS(4, .5, .2));
    usg_tensor *row = NULL, *t0 = mk(USG_I32, 0, NULL, VALS(2));
    assert_int_equal(usg_select(&row, lp, 0, 1), USG_OK);          /* (4) */
    assert_int_equal(usg_nll_loss(&y, row, t0, NULL, USG_NO_IGNORE, USG_REDUCE_NONE, 0), USG_OK);
    expect_scalar(y, USG_F64, 2.5);
    assert_int_equal(usg_nll_loss(&y, row, t0, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_OK);
    expect_scalar(y, USG_F64, 2.5);
    usg_tensor_release(lp); usg_tensor_release(tt); usg_tensor_release(t);
    usg_tensor_release(row); usg_tensor_release(t0);
}

static void test_nll_errors(void **state)
{
    usg_tensor *lp = logp34(USG_F32), *t = mk(USG_I32, 1, SHAPE(3), VALS(3, 0, 1));
    usg_tensor *tf = mk(USG_F32, 1, SHAPE(3), VALS(3, 0, 1));
    usg_tensor *t2 = mk(USG_I32, 1, SHAPE(2), VALS(3, 0));
    usg_tensor *tbad = mk(USG_I32, 1, SHAPE(3), VALS(3, 4, 1));
    usg_tensor *tneg = mk(USG_I32, 1, SHAPE(3), VALS(3, -1, 1));
    usg_tensor *m2 = mk(USG_F32, 1, SHAPE(2), VALS(1, 1));
    usg_tensor *lpi = mk(USG_I32, 2, SHAPE(3, 1), VALS(0, 0, 0));
    usg_tensor *lp3 = NULL, *y = (usg_tensor *)0x1;
    assert_int_equal(usg_tensor_zeros(&lp3, USG_F32, 3, SHAPE(3, 4, 1)), USG_OK);
    expect_err(usg_nll_loss(&y, lp, tf, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_TYPE,
               "nll_loss: target must be i32, got f32");
    assert_null(y);
    expect_err(usg_nll_loss(&y, lpi, t, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_TYPE,
               "nll_loss: logp must be f32 or f64");
    expect_err(usg_nll_loss(&y, lp, t2, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_SHAPE,
               "nll_loss: target must be (3,) for logp (3, 4), got (2,)");
    expect_err(usg_nll_loss(&y, lp3, t, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_SHAPE,
               "nll_loss: logp must be (N, C) or (C), got (3, 4, 1)");
    expect_err(usg_nll_loss(&y, lp, t, m2, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_SHAPE,
               "nll_loss: mask must have target's shape (3,), got (2,)");
    expect_err(usg_nll_loss(&y, lp, tbad, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_ARG,
               "nll_loss: target[2] must be a class in [0, 3], got 4");
    expect_err(usg_nll_loss(&y, lp, tneg, NULL, 7, USG_REDUCE_MEAN, 0), USG_ARG,
               "target[2] must be a class in [0, 3] or ignore_index, got -1");
    expect_err(usg_nll_loss(&y, lp, t, NULL, USG_NO_IGNORE, (usg_reduction)7, 0), USG_ARG,
               "nll_loss: reduction must be mean, sum or none, got 7");
    assert_null(y);
    usg_tensor_release(lp); usg_tensor_release(t); usg_tensor_release(tf); usg_tensor_release(t2);
    usg_tensor_release(tbad); usg_tensor_release(tneg); usg_tensor_release(m2);
    usg_tensor_release(lpi); usg_tensor_release(lp3);
}

/* ==== cross_entropy ===================================================== */

/* logits [1 2 3], [1 1 1], [0 0 10], targets 2, 0, 2 (0-based):
 *   loss_i = log sum_c e^{x_ic} - x_{i t_i}
 *          = 0.40760596, log 3 = 1.09861229, log(1 + 2e^-10) = 9.0796e-5 */
static void test_cross_entropy_values(void **state)
{
    const double *l = VALS(0.4076059644443804, 1.0986122886681098, 9.079573746725622e-05);
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *x = mk(dt, 2, SHAPE(3, 3), VALS(1, 2, 3, 1, 1, 1, 0, 0, 10));
        usg_tensor *t = mk(USG_I32, 1, SHAPE(3), VALS(3, 1, 3)), *y = NULL;
        assert_int_equal(usg_cross_entropy(&y, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_NONE, 1),
                         USG_OK);
        expect(y, dt, 1, SHAPE(3), l);
        assert_int_equal(usg_cross_entropy(&y, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 1),
                         USG_OK);
        expect_scalar(y, dt, (l[0] + l[1] + l[2]) / 3);
        assert_int_equal(usg_cross_entropy(&y, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_SUM, 1),
                         USG_OK);
        expect_scalar(y, dt, l[0] + l[1] + l[2]);
        assert_int_equal(usg_cross_entropy(&y, x, t, NULL, 1, USG_REDUCE_MEAN, 1), USG_OK);
        expect_scalar(y, dt, (l[0] + l[2]) / 2);
        usg_tensor_release(x); usg_tensor_release(t);
    }
}

/* cross_entropy(x) = nll_loss(log_softmax(x, 1)), also for huge logits,
 * views and masks. */
static void test_cross_entropy_matches_nll(void **state)
{
    usg_tensor *x = transposed(mk(USG_F32, 2, SHAPE(3, 4),
                                  VALS(1000, -5, 0.5, 3, 1001, 2, -1, 3, 999, 7, 2, 3)));
    usg_tensor *t = mk(USG_I32, 1, SHAPE(4), VALS(2, 0, 1, 2));
    usg_tensor *m = mk(USG_F64, 1, SHAPE(4), VALS(1, 0, 1, 1)), *lsm = NULL, *a = NULL, *b = NULL;
    assert_int_equal(usg_log_softmax(&lsm, x, 1), USG_OK);
    for (int r = 0; r < 3; r++) {
        usg_reduction red = (usg_reduction)r;
        assert_int_equal(usg_cross_entropy(&a, x, t, m, USG_NO_IGNORE, red, 0), USG_OK);
        assert_int_equal(usg_nll_loss(&b, lsm, t, m, USG_NO_IGNORE, red, 0), USG_OK);
        assert_int_equal(usg_tensor_numel(a), usg_tensor_numel(b));
        for (int64_t i = 0; i < usg_tensor_numel(a); i++) {
            assert_true(isfinite(usg_tensor_get_flat(a, i)));
            near_nan(usg_tensor_get_flat(a, i), usg_tensor_get_flat(b, i), 1e-5);
        }
        usg_tensor_release(a); usg_tensor_release(b);
    }
    /* row 0 is (1000, 1001, 999, 3), target 2: 1001 + log(e^-1 + 1 + e^-2) - 999 */
    assert_int_equal(usg_cross_entropy(&a, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_NONE, 0), USG_OK);
    near_nan(usg_tensor_get_flat(a, 0), 2 + log(exp(-1) + 1 + exp(-2)), 1e-6);
    usg_tensor_release(a);
    usg_tensor_release(x); usg_tensor_release(t); usg_tensor_release(m); usg_tensor_release(lsm);
}

static void test_cross_entropy_errors(void **state)
{
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *t = mk(USG_I32, 1, SHAPE(2), VALS(1, 4)), *y = (usg_tensor *)0x1;
    usg_tensor *tf = mk(USG_F64, 1, SHAPE(2), VALS(1, 2));
    expect_err(usg_cross_entropy(&y, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 1), USG_ARG,
               "cross_entropy: target[2] must be a class in [1, 3], got 4");
    assert_null(y);
    expect_err(usg_cross_entropy(&y, x, tf, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 1), USG_TYPE,
               "cross_entropy: target must be i32");
    expect_err(usg_cross_entropy(&y, t, t, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 1), USG_TYPE,
               "cross_entropy: logits must be f32 or f64");
    assert_null(y);
    usg_tensor_release(x); usg_tensor_release(t); usg_tensor_release(tf);
}

static usg_status op_ce_mean(usg_tensor **out, void *ctx)
{
    return usg_cross_entropy(out, g_x, g_t, g_m, USG_NO_IGNORE, USG_REDUCE_MEAN, 0);
}

static usg_status op_nll_none(usg_tensor **out, void *ctx)
{
    return usg_nll_loss(out, g_x, g_t, g_m, USG_NO_IGNORE, USG_REDUCE_NONE, 0);
}

static void test_class_loss_nomem(void **state)
{
    g_x = logp34(USG_F32);
    g_t = mk(USG_I32, 1, SHAPE(3), VALS(3, 0, 1));
    g_m = mk(USG_I32, 1, SHAPE(3), VALS(1, 0, 1));
    nomem_sweep(op_ce_mean, NULL);
    nomem_sweep(op_nll_none, NULL);
    usg_tensor_release(g_x); usg_tensor_release(g_t); usg_tensor_release(g_m);
}

/* ==== mse, bce, bce_with_logits ========================================= */

/* a [1 2 3], b [1.5 2 1]: (a - b)^2 = [.25 0 4], mean 4.25 / 3, sum 4.25. */
static void test_mse(void **state)
{
    usg_tensor *a = mk(USG_F32, 1, SHAPE(3), VALS(1, 2, 3)), *y = NULL;
    usg_tensor *b = mk(USG_F64, 1, SHAPE(3), VALS(1.5, 2, 1));
    usg_tensor *bi = mk(USG_I32, 1, SHAPE(3), VALS(2, 2, 2));
    assert_int_equal(usg_mse_loss(&y, a, b, USG_REDUCE_NONE), USG_OK);
    expect(y, USG_F64, 1, SHAPE(3), VALS(.25, 0, 4));
    assert_int_equal(usg_mse_loss(&y, a, b, USG_REDUCE_MEAN), USG_OK);
    expect_scalar(y, USG_F64, 4.25 / 3);
    assert_int_equal(usg_mse_loss(&y, a, b, USG_REDUCE_SUM), USG_OK);
    expect_scalar(y, USG_F64, 4.25);
    assert_int_equal(usg_mse_loss(&y, a, bi, USG_REDUCE_SUM), USG_OK);     /* i32 target */
    expect_scalar(y, USG_F32, 2);
    usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(bi);

    /* transposed views: a (2, 2) [[1 2] [3 4]] vs b = a^T: diff^2 [0 1 1 0] */
    a = mk(USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    b = transposed(mk(USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)));
    assert_int_equal(usg_mse_loss(&y, a, b, USG_REDUCE_NONE), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 2), VALS(0, 1, 1, 0));
    usg_tensor_release(a); usg_tensor_release(b);

    /* empty: mean of nothing is NaN, sum 0 */
    assert_int_equal(usg_tensor_zeros(&a, USG_F32, 1, SHAPE(0)), USG_OK);
    assert_int_equal(usg_mse_loss(&y, a, a, USG_REDUCE_MEAN), USG_OK);
    expect_scalar(y, USG_F32, NAN);
    assert_int_equal(usg_mse_loss(&y, a, a, USG_REDUCE_SUM), USG_OK);
    expect_scalar(y, USG_F32, 0);
    usg_tensor_release(a);
}

/* p [.2 .9 0 1], y [0 1 1 0]: -log .8, -log .9, and 100 twice (log clamped). */
static void test_bce(void **state)
{
    usg_tensor *p = mk(USG_F32, 1, SHAPE(4), VALS(.2, .9, 0, 1));
    usg_tensor *t = mk(USG_F32, 1, SHAPE(4), VALS(0, 1, 1, 0)), *y = NULL;
    const double *l = VALS(0.2231435513142097, 0.10536051565782628, 100, 100);
    assert_int_equal(usg_bce_loss(&y, p, t, USG_REDUCE_NONE), USG_OK);
    expect(y, USG_F32, 1, SHAPE(4), l);
    assert_int_equal(usg_bce_loss(&y, p, t, USG_REDUCE_MEAN), USG_OK);
    expect_scalar(y, USG_F32, (l[0] + l[1] + 200) / 4);
    assert_int_equal(usg_bce_loss(&y, p, t, USG_REDUCE_SUM), USG_OK);
    expect_scalar(y, USG_F32, l[0] + l[1] + 200);
    usg_tensor_release(p); usg_tensor_release(t);
}

/* x [0 2 -3 100 -1000], y [1 0 1 .5 0]:
 *   max(x,0) - x y + log(1 + e^-|x|) = log 2, 2 + log(1 + e^-2),
 *   3 + log(1 + e^-3), 50, 0 (no overflow at -1000). */
static void test_bce_with_logits(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *x = mk(dt, 1, SHAPE(5), VALS(0, 2, -3, 100, -1000));
        usg_tensor *t = mk(dt, 1, SHAPE(5), VALS(1, 0, 1, .5, 0)), *y = NULL;
        const double *l = VALS(0.6931471805599453, 2.1269280110429727, 3.048587351573742, 50, 0);
        assert_int_equal(usg_bce_with_logits(&y, x, t, USG_REDUCE_NONE), USG_OK);
        expect(y, dt, 1, SHAPE(5), l);
        assert_int_equal(usg_bce_with_logits(&y, x, t, USG_REDUCE_SUM), USG_OK);
        expect_scalar(y, dt, l[0] + l[1] + l[2] + 50);
        assert_int_equal(usg_bce_with_logits(&y, x, t, USG_REDUCE_MEAN), USG_OK);
        expect_scalar(y, dt, (l[0] + l[1] + l[2] + 50) / 5);
        usg_tensor_release(x); usg_tensor_release(t);
    }
}

static void test_pointwise_errors(void **state)
{
    usg_tensor *a = mk(USG_F32, 1, SHAPE(3), VALS(.1, .2, .3));
    usg_tensor *b = mk(USG_F32, 2, SHAPE(3, 1), VALS(0, 1, 0));
    usg_tensor *ai = mk(USG_I32, 1, SHAPE(3), VALS(0, 1, 0));
    usg_tensor *pbad = mk(USG_F32, 1, SHAPE(3), VALS(.1, 1.5, .3));
    usg_tensor *pnan = mk(USG_F32, 1, SHAPE(3), VALS(.1, .2, NAN)), *y = (usg_tensor *)0x1;
    expect_err(usg_mse_loss(&y, a, b, USG_REDUCE_MEAN), USG_SHAPE,
               "mse_loss: b must have a's shape (3,), got (3, 1)");
    assert_null(y);
    expect_err(usg_mse_loss(&y, ai, a, USG_REDUCE_MEAN), USG_TYPE, "mse_loss: a must be f32 or f64");
    expect_err(usg_mse_loss(&y, a, a, (usg_reduction)-1), USG_ARG, "mse_loss: reduction");
    expect_err(usg_bce_loss(&y, a, b, USG_REDUCE_MEAN), USG_SHAPE, "bce_loss: y must have p's shape");
    expect_err(usg_bce_loss(&y, pbad, a, USG_REDUCE_MEAN), USG_ARG,
               "bce_loss: p must be in [0, 1], got 1.5 at flat position 2");
    expect_err(usg_bce_loss(&y, pnan, a, USG_REDUCE_MEAN), USG_ARG, "got nan at flat position 3");
    expect_err(usg_bce_with_logits(&y, ai, a, USG_REDUCE_SUM), USG_TYPE,
               "bce_with_logits: x must be f32 or f64, got i32");
    expect_err(usg_bce_with_logits(&y, a, b, USG_REDUCE_SUM), USG_SHAPE, "bce_with_logits: y");
    assert_null(y);
    usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(ai);
    usg_tensor_release(pbad); usg_tensor_release(pnan);
}

static usg_status op_mse_none(usg_tensor **out, void *ctx)
{
    return usg_mse_loss(out, g_x, g_t, USG_REDUCE_NONE);
}

static usg_status op_bce_mean(usg_tensor **out, void *ctx)
{
    return usg_bce_loss(out, g_x, g_t, USG_REDUCE_MEAN);
}

static usg_status op_bcel_sum(usg_tensor **out, void *ctx)
{
    return usg_bce_with_logits(out, g_x, g_t, USG_REDUCE_SUM);
}

static void test_pointwise_nomem(void **state)
{
    g_x = transposed(mk(USG_F32, 2, SHAPE(2, 2), VALS(.1, .2, .3, .4)));
    g_t = transposed(mk(USG_F32, 2, SHAPE(2, 2), VALS(0, 1, 1, 0)));
    nomem_sweep(op_mse_none, NULL);
    nomem_sweep(op_bce_mean, NULL);
    nomem_sweep(op_bcel_sum, NULL);
    usg_tensor_release(g_x); usg_tensor_release(g_t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_values),
        cmocka_unit_test(test_linear_shapes),
        cmocka_unit_test(test_linear_views),
        cmocka_unit_test(test_linear_empty),
        cmocka_unit_test(test_linear_errors),
        cmocka_unit_test(test_linear_nomem),
        cmocka_unit_test(test_softmax_1d),
        cmocka_unit_test(test_softmax_dims),
        cmocka_unit_test(test_softmax_special),
        cmocka_unit_test(test_softmax_errors),
        cmocka_unit_test(test_softmax_nomem),
        cmocka_unit_test(test_nll_reductions),
        cmocka_unit_test(test_nll_ignore_mask),
        cmocka_unit_test(test_nll_masked_padding),
        cmocka_unit_test(test_nll_views),
        cmocka_unit_test(test_nll_errors),
        cmocka_unit_test(test_cross_entropy_values),
        cmocka_unit_test(test_cross_entropy_matches_nll),
        cmocka_unit_test(test_cross_entropy_errors),
        cmocka_unit_test(test_class_loss_nomem),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_bce),
        cmocka_unit_test(test_bce_with_logits),
        cmocka_unit_test(test_pointwise_errors),
        cmocka_unit_test(test_pointwise_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

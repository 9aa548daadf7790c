/*
 * test_sequence.c -- cmocka tests of host/core/sequence.c and of the
 * recorded reversal in ad_index.c: reverse_padded against hand-written
 * results (with and without lengths, on a transposed view, i32 too), its
 * gradient by finite differences, topk's order (NaN last, ties to the lower
 * index, base 0 and 1), every error message, and allocation failure at
 * every allocation (no leak, *out left NULL).
 */
#include "testutil.h"
#include "gradcheck.h"

/* t has dtype dt, the given shape, and holds v exactly. Releases t. */
static void expect(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    check_shape(t, dt, ndim, shape);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++)
        if (usg_tensor_get_flat(t, i) != v[i])
            fail_msg("element %lld: got %g, want %g", (long long)i, usg_tensor_get_flat(t, i), v[i]);
    usg_tensor_release(t);
}

/* ==== reverse_padded ==================================================== */

/* x (T=4, B=2, n=1): x[t, b] = 10 b + t */
static usg_tensor *seq42(usg_dtype dt)
{
    return mk(dt, 3, SHAPE(4, 2, 1), VALS(0, 10, 1, 11, 2, 12, 3, 13));
}

static void test_reverse(void **state)
{
    usg_tensor *x = seq42(USG_F32), *y = NULL;
    assert_int_equal(usg_reverse_padded(&y, x, NULL, NULL), USG_OK);
    expect(y, USG_F32, 3, SHAPE(4, 2, 1), VALS(3, 13, 2, 12, 1, 11, 0, 10));
    /* lengths 4 and 2: the second sequence's padding (t = 2, 3) stays put */
    usg_tensor *len = mk(USG_I32, 1, SHAPE(2), VALS(4, 2));
    assert_int_equal(usg_reverse_padded(&y, x, len, NULL), USG_OK);
    expect(y, USG_F32, 3, SHAPE(4, 2, 1), VALS(3, 11, 2, 10, 1, 12, 0, 13));
    /* it is its own inverse */
    usg_tensor *z = NULL;
    assert_int_equal(usg_reverse_padded(&y, x, len, NULL), USG_OK);
    assert_int_equal(usg_reverse_padded(&z, y, len, NULL), USG_OK);
    usg_tensor_release(y);
    expect(z, USG_F32, 3, SHAPE(4, 2, 1), VALS(0, 10, 1, 11, 2, 12, 3, 13));
    usg_tensor_release(x);
    /* an i32 input, and a view that is not contiguous: (B, T, n) transposed */
    x = seq42(USG_I32);
    assert_int_equal(usg_reverse_padded(&y, x, len, NULL), USG_OK);
    expect(y, USG_I32, 3, SHAPE(4, 2, 1), VALS(3, 11, 2, 10, 1, 12, 0, 13));
    usg_tensor_release(x);
    x = transposed(mk(USG_F64, 3, SHAPE(2, 4, 1), VALS(0, 1, 2, 3, 10, 11, 12, 13)));
    assert_int_equal(usg_reverse_padded(&y, x, len, NULL), USG_OK);
    expect(y, USG_F64, 3, SHAPE(4, 2, 1), VALS(3, 11, 2, 10, 1, 12, 0, 13));
    usg_tensor_release(x);
    usg_tensor_release(len);
}

static void test_reverse_errors(void **state)
{
    usg_tensor *x = seq42(USG_F32), *y = SENT;
    usg_tensor *flat = mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6));
    expect_err(usg_reverse_padded(&y, flat, NULL, "birnn.reverse"), USG_SHAPE,
               "birnn.reverse: input must be 3-D (T, B, n), got (3, 2)");
    assert_null(y);
    usg_tensor *big = mk(USG_I32, 1, SHAPE(2), VALS(5, 1));
    expect_err(usg_reverse_padded(&y, x, big, NULL), USG_ARG,
               "reverse_padded: lengths must be in 1..4 (the input's T), got 5 for sequence 1");
    usg_tensor *zero = mk(USG_I32, 1, SHAPE(2), VALS(1, 0));
    expect_err(usg_reverse_padded(&y, x, zero, "f"), USG_ARG, "got 0 for sequence 2");
    usg_tensor *wrong = mk(USG_F32, 1, SHAPE(2), VALS(1, 1));
    expect_err(usg_reverse_padded(&y, x, wrong, "f"), USG_SHAPE,
               "f: lengths must be an i32 tensor of shape (2,) (one per sequence), got f32 (2,)");
    usg_tensor *three = mk(USG_I32, 1, SHAPE(3), VALS(1, 1, 1));
    expect_err(usg_reverse_padded(&y, x, three, "f"), USG_SHAPE, "got i32 (3,)");
    assert_null(y);
    usg_tensor_release(x); usg_tensor_release(flat); usg_tensor_release(big);
    usg_tensor_release(zero); usg_tensor_release(wrong); usg_tensor_release(three);
}

static usg_tensor *g_x, *g_len;

static usg_status op_reverse(usg_tensor **out, void *ctx)
{
    return usg_reverse_padded(out, g_x, g_len, NULL);
}

static usg_status op_ad_reverse(usg_tensor **out, void *ctx)
{
    return usg_ad_reverse_padded(out, g_x, g_len, NULL);
}

static void test_reverse_nomem(void **state)
{
    g_x = transposed(mk(USG_F32, 3, SHAPE(2, 4, 1), VALS(0, 1, 2, 3, 10, 11, 12, 13)));
    g_len = mk(USG_I32, 1, SHAPE(2), VALS(4, 2));
    nomem_sweep(op_reverse, NULL);
    g_x->requires_grad = true;
    nomem_sweep(op_ad_reverse, NULL);
    usg_tensor_release(g_x); usg_tensor_release(g_len);
}

/* ==== the recorded reversal ============================================= */

static usg_status f_reverse(usg_tensor **out, usg_tensor **in, void *ctx)
{
    usg_tensor *y = NULL;
    usg_status s = usg_ad_reverse_padded(&y, in[0], ctx, NULL);
    /* times x, so that the gradient depends on where each element went */
    if (s == USG_OK) s = usg_ad_binary(out, USG_MUL, y, in[0]);
    usg_tensor_release(y);
    return s;
}

static void test_ad_reverse(void **state)
{
    usg_tensor *x = mk(USG_F64, 3, SHAPE(3, 2, 2),
                       VALS(0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.9, 1.0, -1.1, 1.2));
    x->requires_grad = true;
    usg_tensor *len = mk(USG_I32, 1, SHAPE(2), VALS(3, 2));
    assert_true(gradcheck(f_reverse, 1, &x, len, 1e-6, 1e-7));
    assert_true(gradcheck(f_reverse, 1, &x, NULL, 1e-6, 1e-7));
    /* the recorded op's name, and the gradient of a plain sum: all ones */
    usg_tensor *y = NULL;
    assert_int_equal(usg_ad_reverse_padded(&y, x, len, "birnn.reverse"), USG_OK);
    assert_string_equal(usg_node_name(y->grad_fn), "reverse_padded");
    usg_tensor_release(x->grad);
    x->grad = NULL;
    backward_sum(y);
    for (int64_t i = 0; i < 12; i++) assert_true(usg_tensor_get_flat(x->grad, i) == 1);
    /* no gradient wanted: nothing recorded */
    x->requires_grad = false;
    assert_int_equal(usg_ad_reverse_padded(&y, x, NULL, NULL), USG_OK);
    assert_null(y->grad_fn);
    usg_tensor_release(y);
    drop(x);
    usg_tensor_release(len);
}

/* ==== topk ============================================================== */

static void test_topk(void **state)
{
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 6), VALS(1, 5, 3, 5, NAN, 2, -1, -2, -3, -4, -5, -6));
    usg_tensor *v = NULL, *i = NULL;
    assert_int_equal(usg_topk(&v, &i, x, 3, 1), USG_OK);
    expect(v, USG_F32, 2, SHAPE(2, 3), VALS(5, 5, 3, -1, -2, -3));
    expect(i, USG_I32, 2, SHAPE(2, 3), VALS(2, 4, 3, 1, 2, 3));    /* ties: lower index first */
    assert_int_equal(usg_topk(&v, &i, x, 6, 0), USG_OK);
    check_shape(v, USG_F32, 2, SHAPE(2, 6));
    assert_true(isnan(usg_tensor_get_flat(v, 5)));                     /* NaN ranks last */
    expect(i, USG_I32, 2, SHAPE(2, 6), VALS(1, 3, 2, 5, 0, 4, 0, 1, 2, 3, 4, 5));
    usg_tensor_release(v);
    usg_tensor_release(x);
    /* f64 keeps its dtype; a transposed view reads its logical rows */
    x = transposed(mk(USG_F64, 2, SHAPE(3, 2), VALS(0.5, 9, 0.25, 8, 0.75, 7)));
    assert_int_equal(usg_topk(&v, &i, x, 2, 0), USG_OK);
    expect(v, USG_F64, 2, SHAPE(2, 2), VALS(0.75, 0.5, 9, 8));
    expect(i, USG_I32, 2, SHAPE(2, 2), VALS(2, 0, 0, 1));
    usg_tensor_release(x);
}

static void test_topk_errors(void **state)
{
    usg_tensor *v = SENT, *i = SENT;
    usg_tensor *x1 = mk(USG_F32, 1, SHAPE(2), VALS(1, 2));
    expect_err(usg_topk(&v, &i, x1, 1, 1), USG_SHAPE,
               "topk: x must be a 2-D f32 or f64 tensor (N, C), got f32 (2,)");
    assert_null(v);
    assert_null(i);
    usg_tensor *xi = mk(USG_I32, 2, SHAPE(1, 2), VALS(1, 2));
    expect_err(usg_topk(&v, &i, xi, 1, 1), USG_SHAPE, "got i32 (1, 2)");
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    expect_err(usg_topk(&v, &i, x, 4, 1), USG_ARG,
               "topk: k must be in [1, 3] (the row length, at most 4096), got 4");
    expect_err(usg_topk(&v, &i, x, 0, 1), USG_ARG, "got 0");
    usg_tensor_release(x1); usg_tensor_release(xi); usg_tensor_release(x);
}

static void test_topk_nomem(void **state)
{
    usg_tensor *x = transposed(mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6)));
    size_t before = usg_alloc_live_bytes();
    for (long k = 1;; k++) {
        assert_true(k < 100);
        usg_tensor *v = SENT, *i = SENT;
        usg_alloc_fail_after(k);
        usg_status s = usg_topk(&v, &i, x, 2, 1);
        usg_alloc_fail_after(0);
        if (s == USG_OK) {
            assert_true(k > 1);
            usg_tensor_release(v);
            usg_tensor_release(i);
            assert_int_equal(usg_alloc_live_bytes(), before);
            break;
        }
        assert_int_equal(s, USG_NOMEM);
        assert_null(v);
        assert_null(i);
        assert_int_equal(usg_alloc_live_bytes(), before);
    }
    usg_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reverse),
        cmocka_unit_test(test_reverse_errors),
        cmocka_unit_test(test_reverse_nomem),
        cmocka_unit_test(test_ad_reverse),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_topk_errors),
        cmocka_unit_test(test_topk_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

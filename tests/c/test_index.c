/*
 * test_index.c -- cmocka tests of host/core/index.c: embedding, one_hot,
 * gather, index_select, scatter_add_, cat, stack, split and chunk against
 * hand-written results, in base 0 and base 1, on views that are not
 * contiguous, with every dtype where it matters, each error path (ids out
 * of range with their position, wrong dtypes, mismatched shapes) and
 * allocation failure at every allocation (no leak, *out left NULL).
 */
#include "testutil.h"

/* ==== Helpers =========================================================== */

/* t has dtype dt and the given shape and holds v (exactly: these ops only
 * move values). Releases t. */
static void expect(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    check_shape(t, dt, ndim, shape);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++)
        if (usg_tensor_get_flat(t, i) != v[i])
            fail_msg("element %lld: got %g, want %g", (long long)i, usg_tensor_get_flat(t, i), v[i]);
    usg_tensor_release(t);
}

static usg_tensor *g_a, *g_b, *g_c;

/* ==== embedding ========================================================= */

/* weight rows r -> [10 r, 10 r + 1] */
static usg_tensor *weight42(usg_dtype dt)
{
    return mk(dt, 2, SHAPE(4, 2), VALS(0, 1, 10, 11, 20, 21, 30, 31));
}

static void test_embedding(void **state)
{
    usg_tensor *w = weight42(USG_F32), *y = NULL;
    usg_tensor *ids = mk(USG_I32, 2, SHAPE(2, 3), VALS(0, 3, 1, 2, 2, 0));
    usg_tensor *ids1 = mk(USG_I32, 2, SHAPE(2, 3), VALS(1, 4, 2, 3, 3, 1));
    const double *want = VALS(0, 1, 30, 31, 10, 11, 20, 21, 20, 21, 0, 1);
    assert_int_equal(usg_embedding(&y, w, ids, 0), USG_OK);
    expect(y, USG_F32, 3, SHAPE(2, 3, 2), want);
    assert_int_equal(usg_embedding(&y, w, ids1, 1), USG_OK);
    expect(y, USG_F32, 3, SHAPE(2, 3, 2), want);
    usg_tensor_release(w);
    /* i32 and f64 weights, a transposed weight view, transposed ids */
    usg_tensor *wi = weight42(USG_I32);
    assert_int_equal(usg_embedding(&y, wi, ids, 0), USG_OK);
    expect(y, USG_I32, 3, SHAPE(2, 3, 2), want);
    usg_tensor *wt = transposed(mk(USG_F64, 2, SHAPE(2, 4), VALS(0, 10, 20, 30, 1, 11, 21, 31)));
    usg_tensor *idt = transposed(mk(USG_I32, 2, SHAPE(3, 2), VALS(0, 2, 3, 2, 1, 0)));
    assert_int_equal(usg_embedding(&y, wt, idt, 0), USG_OK);
    expect(y, USG_F64, 3, SHAPE(2, 3, 2), want);
    usg_tensor_release(wi); usg_tensor_release(wt); usg_tensor_release(idt);
    usg_tensor_release(ids); usg_tensor_release(ids1);
}

/* A 0-dim id gives one row (D); no ids give (0, D). */
static void test_embedding_shapes(void **state)
{
    usg_tensor *w = weight42(USG_F32), *id = mk(USG_I32, 0, NULL, VALS(2)), *none = NULL, *y = NULL;
    assert_int_equal(usg_embedding(&y, w, id, 0), USG_OK);
    expect(y, USG_F32, 1, SHAPE(2), VALS(20, 21));
    assert_int_equal(usg_tensor_zeros(&none, USG_I32, 1, SHAPE(0)), USG_OK);
    assert_int_equal(usg_embedding(&y, w, none, 0), USG_OK);
    expect(y, USG_F32, 2, SHAPE(0, 2), NULL);
    usg_tensor_release(w); usg_tensor_release(id); usg_tensor_release(none);
}

static void test_embedding_errors(void **state)
{
    usg_tensor *w = weight42(USG_F32), *y = (usg_tensor *)0x1;
    usg_tensor *ids = mk(USG_I32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    usg_tensor *idf = mk(USG_F32, 1, SHAPE(2), VALS(1, 2));
    usg_tensor *w1 = mk(USG_F32, 1, SHAPE(2), VALS(1, 2));
    usg_tensor *big = NULL;
    expect_err(usg_embedding(&y, w, ids, 0), USG_ARG, "embedding: ids[2, 2] must be in [0, 3], got 4");
    assert_null(y);
    expect_err(usg_embedding(&y, w, ids, -1), USG_ARG, "ids[2, 1] must be in [-1, 2], got 3");
    expect_err(usg_embedding(&y, w, idf, 0), USG_TYPE, "embedding: ids must be i32, got f32");
    expect_err(usg_embedding(&y, w1, ids, 1), USG_SHAPE, "embedding: weight must be (V, D), got (2,)");
    assert_int_equal(usg_tensor_zeros(&big, USG_I32, 8, SHAPE(1, 1, 1, 1, 1, 1, 1, 1)), USG_OK);
    expect_err(usg_embedding(&y, w, big, 0), USG_SHAPE, "embedding: ids may have at most 7 dims");
    assert_null(y);
    usg_tensor_release(w); usg_tensor_release(ids); usg_tensor_release(idf);
    usg_tensor_release(w1); usg_tensor_release(big);
}

static usg_status op_embedding(usg_tensor **out, void *ctx)
{
    return usg_embedding(out, g_a, g_b, 1);
}

static void test_embedding_nomem(void **state)
{
    g_a = transposed(mk(USG_F32, 2, SHAPE(2, 4), VALS(0, 10, 20, 30, 1, 11, 21, 31)));
    g_b = mk(USG_I32, 1, SHAPE(3), VALS(4, 1, 2));
    nomem_sweep(op_embedding, NULL);
    usg_tensor_release(g_a); usg_tensor_release(g_b);
}

/* ==== one_hot =========================================================== */

static void test_one_hot(void **state)
{
    usg_tensor *ids = mk(USG_I32, 2, SHAPE(2, 2), VALS(0, 2, 1, 0)), *y = NULL;
    usg_tensor *ids1 = mk(USG_I32, 1, SHAPE(2), VALS(3, 1));
    assert_int_equal(usg_one_hot(&y, ids, 3, 0), USG_OK);
    expect(y, USG_F32, 3, SHAPE(2, 2, 3), VALS(1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0));
    assert_int_equal(usg_one_hot(&y, ids1, 4, 1), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 4), VALS(0, 0, 1, 0, 1, 0, 0, 0));
    usg_tensor *idt = transposed(mk(USG_I32, 2, SHAPE(2, 2), VALS(0, 1, 2, 0)));
    assert_int_equal(usg_one_hot(&y, idt, 3, 0), USG_OK);
    expect(y, USG_F32, 3, SHAPE(2, 2, 3), VALS(1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0));
    expect_err(usg_one_hot(&y, ids, 2, 0), USG_ARG, "one_hot: ids[1, 2] must be in [0, 1], got 2");
    assert_null(y);
    expect_err(usg_one_hot(&y, ids, -1, 0), USG_ARG, "one_hot: classes must be >= 0, got -1");
    usg_tensor *idf = mk(USG_F64, 1, SHAPE(1), VALS(0));
    expect_err(usg_one_hot(&y, idf, 3, 0), USG_TYPE, "one_hot: ids must be i32, got f64");
    assert_null(y);
    usg_tensor_release(ids); usg_tensor_release(ids1); usg_tensor_release(idt);
    usg_tensor_release(idf);
}

static usg_status op_one_hot(usg_tensor **out, void *ctx) { return usg_one_hot(out, g_a, 2, 0); }

static void test_one_hot_nomem(void **state)
{
    g_a = mk(USG_I32, 1, SHAPE(2), VALS(0, 1));
    nomem_sweep(op_one_hot, NULL);
    usg_tensor_release(g_a);
}

/* ==== gather ============================================================ */

/* x [[1 2 3] [4 5 6]]:
 *   dim 1, index [[2 0] [1 1]] -> [[3 1] [5 5]]
 *   dim 0, index [[1 0 1]]     -> [[4 2 6]] */
static void test_gather(void **state)
{
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6)), *y = NULL;
    usg_tensor *i1 = mk(USG_I32, 2, SHAPE(2, 2), VALS(2, 0, 1, 1));
    usg_tensor *i0 = mk(USG_I32, 2, SHAPE(1, 3), VALS(1, 0, 1));
    usg_tensor *i0b = mk(USG_I32, 2, SHAPE(1, 3), VALS(2, 1, 2));
    assert_int_equal(usg_gather(&y, x, 1, i1, 0), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 2), VALS(3, 1, 5, 5));
    assert_int_equal(usg_gather(&y, x, -1, i1, 0), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 2), VALS(3, 1, 5, 5));
    assert_int_equal(usg_gather(&y, x, 0, i0, 0), USG_OK);
    expect(y, USG_F32, 2, SHAPE(1, 3), VALS(4, 2, 6));
    assert_int_equal(usg_gather(&y, x, 0, i0b, 1), USG_OK);
    expect(y, USG_F32, 2, SHAPE(1, 3), VALS(4, 2, 6));
    /* x transposed, i32 */
    usg_tensor *xt = transposed(mk(USG_I32, 2, SHAPE(3, 2), VALS(1, 4, 2, 5, 3, 6)));
    assert_int_equal(usg_gather(&y, xt, 1, i1, 0), USG_OK);
    expect(y, USG_I32, 2, SHAPE(2, 2), VALS(3, 1, 5, 5));
    usg_tensor_release(x); usg_tensor_release(xt); usg_tensor_release(i1);
    usg_tensor_release(i0); usg_tensor_release(i0b);
}

static void test_gather_errors(void **state)
{
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6)), *y = (usg_tensor *)0x1;
    usg_tensor *bad = mk(USG_I32, 2, SHAPE(2, 2), VALS(2, 0, 3, 1));
    usg_tensor *r1 = mk(USG_I32, 1, SHAPE(2), VALS(0, 1));
    usg_tensor *tall = mk(USG_I32, 2, SHAPE(3, 1), VALS(0, 1, 0));
    usg_tensor *fl = mk(USG_F32, 2, SHAPE(1, 1), VALS(0));
    expect_err(usg_gather(&y, x, 1, bad, 0), USG_ARG, "gather: index[2, 1] must be in [0, 2], got 3");
    assert_null(y);
    expect_err(usg_gather(&y, x, 1, r1, 0), USG_SHAPE, "gather: index (2,) must have x's rank");
    expect_err(usg_gather(&y, x, 1, tall, 0), USG_SHAPE, "gather: index (3, 1)");
    expect_err(usg_gather(&y, x, 1, fl, 0), USG_TYPE, "gather: index must be i32, got f32");
    expect_err(usg_gather(&y, x, 2, r1, 0), USG_ARG, "gather: dim");
    assert_null(y);
    usg_tensor_release(x); usg_tensor_release(bad); usg_tensor_release(r1);
    usg_tensor_release(tall); usg_tensor_release(fl);
}

/* ==== index_select ====================================================== */

/* x [[1 2] [3 4] [5 6]]: rows 2, 0, 2 -> [[5 6] [1 2] [5 6]]; column 1 -> [[2] [4] [6]] */
static void test_index_select(void **state)
{
    usg_tensor *x = mk(USG_F64, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6)), *y = NULL;
    usg_tensor *xt = transposed(mk(USG_F64, 2, SHAPE(2, 3), VALS(1, 3, 5, 2, 4, 6)));
    usg_tensor *rows = mk(USG_I32, 1, SHAPE(3), VALS(2, 0, 2));
    usg_tensor *col = mk(USG_I32, 1, SHAPE(1), VALS(2)), *one = mk(USG_I32, 0, NULL, VALS(1));
    usg_tensor *strided = NULL, *base = mk(USG_I32, 2, SHAPE(3, 2), VALS(2, 9, 0, 9, 2, 9));
    assert_int_equal(usg_select(&strided, base, 1, 0), USG_OK);
    for (int k = 0; k < 2; k++) {
        usg_tensor *in = k ? xt : x;
        assert_int_equal(usg_index_select(&y, in, 0, rows, 0), USG_OK);
        expect(y, USG_F64, 2, SHAPE(3, 2), VALS(5, 6, 1, 2, 5, 6));
        assert_int_equal(usg_index_select(&y, in, 0, strided, 0), USG_OK);
        expect(y, USG_F64, 2, SHAPE(3, 2), VALS(5, 6, 1, 2, 5, 6));
        assert_int_equal(usg_index_select(&y, in, -1, col, 1), USG_OK);
        expect(y, USG_F64, 2, SHAPE(3, 1), VALS(2, 4, 6));
        assert_int_equal(usg_index_select(&y, in, 1, one, 0), USG_OK);  /* 0-dim index */
        expect(y, USG_F64, 2, SHAPE(3, 1), VALS(2, 4, 6));
    }
    expect_err(usg_index_select(&y, x, 1, col, 0), USG_ARG,
               "index_select: index[1] must be in [0, 1], got 2");
    assert_null(y);
    expect_err(usg_index_select(&y, x, 0, base, 0), USG_SHAPE,
               "index_select: index must be 1-D, got (3, 2)");
    expect_err(usg_index_select(&y, rows, 0, x, 0), USG_TYPE, "index_select: index must be i32");
    usg_tensor_release(x); usg_tensor_release(xt); usg_tensor_release(rows);
    usg_tensor_release(col); usg_tensor_release(one); usg_tensor_release(strided);
    usg_tensor_release(base);
}

static usg_status op_index_select(usg_tensor **out, void *ctx)
{
    return usg_index_select(out, g_a, 1, g_b, 0);
}

static usg_status op_gather(usg_tensor **out, void *ctx) { return usg_gather(out, g_a, 0, g_c, 0); }

static void test_select_gather_nomem(void **state)
{
    g_a = transposed(mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6)));
    g_b = mk(USG_I32, 1, SHAPE(2), VALS(2, 0));
    g_c = mk(USG_I32, 2, SHAPE(1, 2), VALS(1, 0));
    nomem_sweep(op_index_select, NULL);
    nomem_sweep(op_gather, NULL);
    usg_tensor_release(g_a); usg_tensor_release(g_b); usg_tensor_release(g_c);
}

/* ==== scatter_add_ ====================================================== */

/* 1-D: index [0 1 0 2 0], src [1 2 3 4 5] -> [1+3+5, 2, 4] = [9 2 4].
 * 2-D dim 1: index [[0 1 0] [2 2 2]], src [[1 2 3] [4 5 6]] -> [[4 2 0] [0 0 15]].
 * 2-D dim 0: index [[1 0 1]], src [[1 2 3] [..]] -> [[0 2 0] [1 0 3]]. */
static void test_scatter_add(void **state)
{
    usg_tensor *d = NULL, *i = mk(USG_I32, 1, SHAPE(5), VALS(0, 1, 0, 2, 0));
    usg_tensor *s = mk(USG_F32, 1, SHAPE(5), VALS(1, 2, 3, 4, 5));
    assert_int_equal(usg_tensor_zeros(&d, USG_F32, 1, SHAPE(3)), USG_OK);
    assert_int_equal(usg_scatter_add_(d, 0, i, s, 0), USG_OK);
    expect(d, USG_F32, 1, SHAPE(3), VALS(9, 2, 4));
    usg_tensor_release(i); usg_tensor_release(s);

    usg_tensor *i1 = mk(USG_I32, 2, SHAPE(2, 3), VALS(1, 2, 1, 3, 3, 3));
    usg_tensor *i0 = mk(USG_I32, 2, SHAPE(1, 3), VALS(1, 0, 1));
    usg_dtype dts[3] = {USG_F32, USG_F64, USG_I32};
    for (int k = 0; k < 3; k++) {
        s = mk(dts[k], 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
        assert_int_equal(usg_tensor_zeros(&d, dts[k], 2, SHAPE(2, 3)), USG_OK);
        assert_int_equal(usg_scatter_add_(d, 1, i1, s, 1), USG_OK);
        expect(d, dts[k], 2, SHAPE(2, 3), VALS(4, 2, 0, 0, 0, 15));
        assert_int_equal(usg_tensor_zeros(&d, dts[k], 2, SHAPE(2, 3)), USG_OK);
        assert_int_equal(usg_scatter_add_(d, -2, i0, s, 0), USG_OK);
        expect(d, dts[k], 2, SHAPE(2, 3), VALS(0, 2, 0, 1, 0, 3));
        usg_tensor_release(s);
    }
    usg_tensor_release(i1); usg_tensor_release(i0);
}

/* dst as a transposed view adds through its strides; src = dst aliasing
 * (doubling) reads the values from before the op. */
static void test_scatter_add_views(void **state)
{
    usg_tensor *dd = NULL, *d = NULL, *s = mk(USG_F32, 2, SHAPE(1, 2), VALS(5, 7));
    usg_tensor *i = mk(USG_I32, 2, SHAPE(1, 2), VALS(1, 0));
    assert_int_equal(usg_tensor_zeros(&dd, USG_F32, 2, SHAPE(2, 2)), USG_OK);
    assert_int_equal(usg_transpose(&d, dd, 0, 1), USG_OK);
    assert_int_equal(usg_scatter_add_(d, 0, i, s, 0), USG_OK);   /* d[1][0] += 5, d[0][1] += 7 */
    expect(d, USG_F32, 2, SHAPE(2, 2), VALS(0, 7, 5, 0));
    expect(dd, USG_F32, 2, SHAPE(2, 2), VALS(0, 5, 7, 0));
    usg_tensor_release(s); usg_tensor_release(i);

    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 3));
    usg_tensor *rev = mk(USG_I32, 1, SHAPE(3), VALS(2, 1, 0));
    assert_int_equal(usg_scatter_add_(a, 0, rev, a, 0), USG_OK);  /* a[2-j] += old a[j] */
    expect(a, USG_F64, 1, SHAPE(3), VALS(4, 4, 4));
    usg_tensor_release(rev);

    /* an i32 sum out of range is refused and dst keeps its values, even
     * when the adds before the overflowing one were fine */
    usg_tensor *m = mk(USG_I32, 1, SHAPE(2), VALS(5, 2147483647));
    usg_tensor *one = mk(USG_I32, 1, SHAPE(2), VALS(1, 1)), *z = mk(USG_I32, 1, SHAPE(2), VALS(0, 1));
    expect_err(usg_scatter_add_(m, 0, z, one, 0), USG_ARG,
               "scatter_add_: the result 2147483648 does not fit in i32");
    expect(m, USG_I32, 1, SHAPE(2), VALS(5, 2147483647));
    usg_tensor_release(one); usg_tensor_release(z);
}

/* Errors leave dst untouched, even when some index entries were fine. */
static void test_scatter_add_errors(void **state)
{
    usg_tensor *d = mk(USG_F32, 1, SHAPE(3), VALS(1, 1, 1));
    usg_tensor *i = mk(USG_I32, 1, SHAPE(3), VALS(1, 2, 4)), *s = mk(USG_F32, 1, SHAPE(3), VALS(1, 1, 1));
    usg_tensor *sd = mk(USG_F64, 1, SHAPE(3), VALS(1, 1, 1));
    usg_tensor *i2 = mk(USG_I32, 2, SHAPE(1, 1), VALS(1)), *fi = mk(USG_F32, 1, SHAPE(1), VALS(1));
    usg_tensor *ilong = mk(USG_I32, 1, SHAPE(4), VALS(1, 1, 1, 1));
    usg_tensor *one = mk(USG_F32, 1, SHAPE(1), VALS(1)), *e = NULL;
    expect_err(usg_scatter_add_(d, 0, i, s, 1), USG_ARG,
               "scatter_add: index[3] must be in [1, 3], got 4");
    expect(d, USG_F32, 1, SHAPE(3), VALS(1, 1, 1));
    d = mk(USG_F32, 1, SHAPE(3), VALS(1, 1, 1));
    expect_err(usg_scatter_add_(d, 0, i, sd, 1), USG_TYPE,
               "scatter_add: src must have dst's dtype f32, got f64");
    expect_err(usg_scatter_add_(d, 0, i2, s, 1), USG_SHAPE, "scatter_add: index (1, 1)");
    expect_err(usg_scatter_add_(d, 0, fi, s, 1), USG_TYPE, "scatter_add: index must be i32");
    expect_err(usg_scatter_add_(d, 0, ilong, ilong, 1), USG_TYPE, "src must have dst's dtype");
    expect_err(usg_scatter_add_(s, 0, ilong, d, 1), USG_SHAPE, "than src (3,)");
    expect_err(usg_scatter_add_(d, 1, i, s, 1), USG_ARG, "scatter_add: dim");
    assert_int_equal(usg_expand(&e, one, 1, SHAPE(3)), USG_OK);
    usg_tensor *i1 = mk(USG_I32, 1, SHAPE(1), VALS(1));
    expect_err(usg_scatter_add_(e, 0, i1, s, 1), USG_ARG, "scatter_add_: the tensor's elements overlap");
    expect(d, USG_F32, 1, SHAPE(3), VALS(1, 1, 1));
    usg_tensor_release(i); usg_tensor_release(s); usg_tensor_release(sd); usg_tensor_release(i2);
    usg_tensor_release(fi); usg_tensor_release(ilong); usg_tensor_release(one);
    usg_tensor_release(e); usg_tensor_release(i1);
}

/* The only allocation is the copy of a src that aliases dst. */
static void test_scatter_add_nomem(void **state)
{
    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 3));
    usg_tensor *rev = mk(USG_I32, 1, SHAPE(3), VALS(2, 1, 0));
    size_t before = usg_alloc_live_bytes();
    for (long k = 1;; k++) {
        usg_alloc_fail_after(k);
        usg_status s = usg_scatter_add_(a, 0, rev, a, 0);
        usg_alloc_fail_after(0);
        assert_int_equal(usg_alloc_live_bytes(), before);
        if (s == USG_OK) { assert_true(k > 1); break; }
        assert_int_equal(s, USG_NOMEM);
        for (int j = 0; j < 3; j++) assert_true(usg_tensor_get_flat(a, j) == j + 1);
    }
    expect(a, USG_F64, 1, SHAPE(3), VALS(4, 4, 4));
    usg_tensor_release(rev);
}

/* ==== cat and stack ===================================================== */

static void test_cat(void **state)
{
    usg_tensor *a = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *b = mk(USG_F32, 2, SHAPE(1, 3), VALS(7, 8, 9));
    usg_tensor *c = transposed(mk(USG_F32, 2, SHAPE(1, 2), VALS(-1, -2)));   /* (2, 1) */
    usg_tensor *y = NULL;
    assert_int_equal(usg_cat(&y, 2, (usg_tensor *[]){a, b}, 0), USG_OK);
    expect(y, USG_F32, 2, SHAPE(3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    assert_int_equal(usg_cat(&y, 3, (usg_tensor *[]){c, a, c}, -1), USG_OK);
    expect(y, USG_F32, 2, SHAPE(2, 5), VALS(-1, 1, 2, 3, -1, -2, 4, 5, 6, -2));
    assert_int_equal(usg_cat(&y, 1, (usg_tensor *[]){b}, 1), USG_OK);
    expect(y, USG_F32, 2, SHAPE(1, 3), VALS(7, 8, 9));
    usg_tensor *e = NULL, *ai = mk(USG_I32, 1, SHAPE(2), VALS(1, 2));
    assert_int_equal(usg_tensor_zeros(&e, USG_I32, 1, SHAPE(0)), USG_OK);
    assert_int_equal(usg_cat(&y, 3, (usg_tensor *[]){e, ai, ai}, 0), USG_OK);
    expect(y, USG_I32, 1, SHAPE(4), VALS(1, 2, 1, 2));
    usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(c);
    usg_tensor_release(e); usg_tensor_release(ai);
}

static void test_stack(void **state)
{
    usg_tensor *a = mk(USG_F64, 1, SHAPE(2), VALS(1, 2)), *b = mk(USG_F64, 1, SHAPE(2), VALS(3, 4));
    usg_tensor *s0 = mk(USG_F64, 0, NULL, VALS(5)), *y = NULL;
    assert_int_equal(usg_stack(&y, 2, (usg_tensor *[]){a, b}, 0), USG_OK);
    expect(y, USG_F64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    assert_int_equal(usg_stack(&y, 2, (usg_tensor *[]){a, b}, 1), USG_OK);
    expect(y, USG_F64, 2, SHAPE(2, 2), VALS(1, 3, 2, 4));
    assert_int_equal(usg_stack(&y, 3, (usg_tensor *[]){a, b, a}, -1), USG_OK);
    expect(y, USG_F64, 2, SHAPE(2, 3), VALS(1, 3, 1, 2, 4, 2));
    assert_int_equal(usg_stack(&y, 2, (usg_tensor *[]){s0, s0}, 0), USG_OK);
    expect(y, USG_F64, 1, SHAPE(2), VALS(5, 5));
    usg_tensor *m = transposed(mk(USG_F64, 2, SHAPE(2, 2), VALS(1, 3, 2, 4)));
    assert_int_equal(usg_stack(&y, 2, (usg_tensor *[]){m, m}, 1), USG_OK);
    expect(y, USG_F64, 3, SHAPE(2, 2, 2), VALS(1, 2, 1, 2, 3, 4, 3, 4));
    usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(s0); usg_tensor_release(m);
}

static void test_cat_stack_errors(void **state)
{
    usg_tensor *a = mk(USG_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *b = mk(USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    usg_tensor *ad = mk(USG_F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    usg_tensor *v = mk(USG_F32, 1, SHAPE(3), VALS(1, 2, 3)), *s = mk(USG_F32, 0, NULL, VALS(1));
    usg_tensor *y = (usg_tensor *)0x1;
    expect_err(usg_cat(&y, 2, (usg_tensor *[]){a, b}, 0), USG_SHAPE,
               "cat: tensor #2 has shape (2, 2), which does not fit tensor #1's (2, 3)");
    assert_null(y);
    expect_err(usg_cat(&y, 2, (usg_tensor *[]){a, ad}, 0), USG_TYPE, "cat: tensor #2 is f64 but");
    expect_err(usg_cat(&y, 2, (usg_tensor *[]){a, v}, 0), USG_SHAPE, "cat: tensor #2 has shape (3,)");
    expect_err(usg_cat(&y, 2, (usg_tensor *[]){s, s}, 0), USG_SHAPE, "cat: 0-dim tensors");
    expect_err(usg_cat(&y, 0, (usg_tensor *[]){a}, 0), USG_ARG, "cat: needs at least one tensor");
    expect_err(usg_cat(&y, 2, (usg_tensor *[]){a, NULL}, 0), USG_ARG, "cat: tensor #2 is missing");
    expect_err(usg_cat(&y, 1, (usg_tensor *[]){a}, 2), USG_ARG, "cat: dim");
    expect_err(usg_stack(&y, 2, (usg_tensor *[]){a, b}, 1), USG_SHAPE, "stack needs equal shapes");
    expect_err(usg_stack(&y, 1, (usg_tensor *[]){a}, 3), USG_ARG, "stack: dim");
    assert_null(y);
    usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(ad);
    usg_tensor_release(v); usg_tensor_release(s);
}

static usg_status op_cat(usg_tensor **out, void *ctx)
{
    return usg_cat(out, 3, (usg_tensor *[]){g_a, g_b, g_a}, 1);
}

static usg_status op_stack(usg_tensor **out, void *ctx)
{
    return usg_stack(out, 2, (usg_tensor *[]){g_a, g_a}, 0);
}

static void test_cat_stack_nomem(void **state)
{
    g_a = transposed(mk(USG_F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)));
    g_b = mk(USG_F32, 2, SHAPE(2, 1), VALS(5, 6));
    nomem_sweep(op_cat, NULL);
    nomem_sweep(op_stack, NULL);
    usg_tensor_release(g_a); usg_tensor_release(g_b);
}

/* ==== split and chunk =================================================== */

static void release_all(usg_tensor **ts, int n)
{
    for (int i = 0; i < n; i++) usg_tensor_release(ts[i]);
    usg_free(ts);
}

/* Pieces are views: they share x's storage and have the given lengths. */
static void expect_pieces(usg_tensor **ts, int n, const usg_tensor *x, int dim, int want_n,
                          const int64_t *lens)
{
    assert_int_equal(n, want_n);
    for (int i = 0; i < n; i++) {
        assert_ptr_equal(ts[i]->storage, x->storage);
        assert_int_equal(ts[i]->shape[dim], lens[i]);
    }
}

static void test_split(void **state)
{
    usg_tensor *x = mk(USG_F32, 2, SHAPE(2, 5), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)), **ts = NULL;
    int n = 0;
    assert_int_equal(usg_split(&ts, &n, x, 2, 1), USG_OK);
    expect_pieces(ts, n, x, 1, 3, SHAPE(2, 2, 1));
    assert_true(usg_tensor_get_flat(ts[1], 0) == 2 && usg_tensor_get_flat(ts[1], 3) == 8);
    assert_true(usg_tensor_get_flat(ts[2], 1) == 9);
    release_all(ts, n);
    assert_int_equal(usg_split(&ts, &n, x, 5, -1), USG_OK);
    expect_pieces(ts, n, x, 1, 1, SHAPE(5));
    release_all(ts, n);
    assert_int_equal(usg_split(&ts, &n, x, 7, 0), USG_OK);
    expect_pieces(ts, n, x, 0, 1, SHAPE(2));
    release_all(ts, n);
    usg_tensor *e = NULL;
    assert_int_equal(usg_tensor_zeros(&e, USG_F32, 1, SHAPE(0)), USG_OK);
    assert_int_equal(usg_split(&ts, &n, e, 3, 0), USG_OK);         /* one empty piece */
    expect_pieces(ts, n, e, 0, 1, SHAPE(0));
    release_all(ts, n);
    assert_int_equal(usg_split(&ts, &n, e, 0, 0), USG_OK);
    expect_pieces(ts, n, e, 0, 1, SHAPE(0));
    release_all(ts, n);
    expect_err(usg_split(&ts, &n, x, 0, 1), USG_ARG, "split: size must be >= 1, got 0");
    assert_null(ts);
    assert_int_equal(n, 0);
    expect_err(usg_split(&ts, &n, x, 1, 2), USG_ARG, "split: dim");
    usg_tensor_release(x); usg_tensor_release(e);
}

/* torch.chunk: 5 in 3 -> 2 2 1; 6 in 4 -> 2 2 2 (only 3); 0 in 3 -> 0 0 0. */
static void test_chunk(void **state)
{
    usg_tensor *x5 = NULL, *x6 = NULL, *e = NULL, **ts = NULL;
    int n = 0;
    assert_int_equal(usg_arange(&x5, USG_F32, 0, 5, 1), USG_OK);
    assert_int_equal(usg_arange(&x6, USG_I32, 0, 6, 1), USG_OK);
    assert_int_equal(usg_tensor_zeros(&e, USG_F32, 2, SHAPE(2, 0)), USG_OK);
    assert_int_equal(usg_chunk(&ts, &n, x5, 3, 0), USG_OK);
    expect_pieces(ts, n, x5, 0, 3, SHAPE(2, 2, 1));
    assert_true(usg_tensor_get_flat(ts[2], 0) == 4);
    release_all(ts, n);
    assert_int_equal(usg_chunk(&ts, &n, x6, 4, -1), USG_OK);
    expect_pieces(ts, n, x6, 0, 3, SHAPE(2, 2, 2));
    release_all(ts, n);
    assert_int_equal(usg_chunk(&ts, &n, x6, 1, 0), USG_OK);
    expect_pieces(ts, n, x6, 0, 1, SHAPE(6));
    release_all(ts, n);
    assert_int_equal(usg_chunk(&ts, &n, e, 3, 1), USG_OK);
    expect_pieces(ts, n, e, 1, 3, SHAPE(0, 0, 0));
    release_all(ts, n);
    expect_err(usg_chunk(&ts, &n, x5, 0, 0), USG_ARG, "chunk: chunks must be >= 1, got 0");
    assert_null(ts);
    expect_err(usg_chunk(&ts, &n, x5, 2, 1), USG_ARG, "chunk: dim");
    usg_tensor_release(x5); usg_tensor_release(x6); usg_tensor_release(e);
}

static void test_split_nomem(void **state)
{
    usg_tensor *x = NULL, **ts = NULL;
    int n = 0;
    assert_int_equal(usg_arange(&x, USG_F32, 0, 7, 1), USG_OK);
    size_t before = usg_alloc_live_bytes();
    for (int which = 0; which < 2; which++) {
        for (long k = 1;; k++) {
            usg_alloc_fail_after(k);
            usg_status s = which ? usg_chunk(&ts, &n, x, 3, 0) : usg_split(&ts, &n, x, 2, 0);
            usg_alloc_fail_after(0);
            if (s == USG_OK) { assert_true(k > 1); release_all(ts, n); break; }
            assert_int_equal(s, USG_NOMEM);
            assert_null(ts);
            assert_int_equal(n, 0);
            assert_int_equal(usg_alloc_live_bytes(), before);
        }
        assert_int_equal(usg_alloc_live_bytes(), before);
    }
    usg_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_embedding_shapes),
        cmocka_unit_test(test_embedding_errors),
        cmocka_unit_test(test_embedding_nomem),
        cmocka_unit_test(test_one_hot),
        cmocka_unit_test(test_one_hot_nomem),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_gather_errors),
        cmocka_unit_test(test_index_select),
        cmocka_unit_test(test_select_gather_nomem),
        cmocka_unit_test(test_scatter_add),
        cmocka_unit_test(test_scatter_add_views),
        cmocka_unit_test(test_scatter_add_errors),
        cmocka_unit_test(test_scatter_add_nomem),
        cmocka_unit_test(test_cat),
        cmocka_unit_test(test_stack),
        cmocka_unit_test(test_cat_stack_errors),
        cmocka_unit_test(test_cat_stack_nomem),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_chunk),
        cmocka_unit_test(test_split_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_blas.c -- cmocka tests of host/core/blas.c: mm, bmm, matmul, addmm
 * and gemm against a naive triple loop, on odd shapes and on every layout
 * an operand can have (contiguous, transposed, narrowed with ld > cols,
 * inside a much larger storage, expanded), empty sizes, every matmul case,
 * every error path and allocation failure at every allocation.
 *
 * Operands hold small multiples of 1/4, so every product and sum is exact
 * in f32 and the results are compared for equality, not closeness.
 *
 * Whether an operand was copied is seen through the allocator: mm makes
 * exactly 3 allocations for its output (storage, data, header), so an mm
 * that succeeds when the 4th allocation fails copied nothing.
 */
#include "testutil.h"

#define PERM(...) ((const int[]){__VA_ARGS__})

static const usg_dtype FLOATS[] = {USG_F32, USG_F64};

/* ==== Helpers =========================================================== */

/* A contiguous tensor of multiples of 1/4 in [-1.25, 1.25], varied by seed. */
static usg_tensor *filled(usg_dtype dt, int ndim, const int64_t *shape, int seed)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, dt, ndim, shape), USG_OK);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++)
        usg_store(dt, usg_base(t), i, (double)((i * 7 + seed * 3) % 11 - 5) * 0.25);
    return t;
}

static void check(const usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape,
                  const double *v)
{
    check_shape(t, dt, ndim, shape);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) {
        double got = usg_tensor_get_flat(t, i);
        if (!(got == v[i] || (isnan(got) && isnan(v[i]))))
            fail_msg("element %lld: got %.17g, want %.17g", (long long)i, got, v[i]);
    }
}

static void expect(usg_tensor *t, usg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    check(t, dt, ndim, shape, v);
    usg_tensor_release(t);
}

/* out (n, m) == beta * c0 + alpha * a b, by a triple loop in double over the
 * logical elements (any layout); c0 (n, m) row-major or NULL. */
static void check_product(const usg_tensor *out, const usg_tensor *a, const usg_tensor *b,
                          double alpha, double beta, const double *c0)
{
    int64_t n = a->shape[0], k = a->shape[1], m = b->shape[1];
    assert_int_equal(b->shape[0], k);
    assert_int_equal(out->ndim, 2);
    assert_int_equal(out->shape[0], n);
    assert_int_equal(out->shape[1], m);
    assert_true(usg_tensor_is_contiguous(out));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += usg_tensor_get(a, (int64_t[]){i, p}) * usg_tensor_get(b, (int64_t[]){p, j});
            double want = alpha * s + (c0 ? beta * c0[i * m + j] : 0);
            double got = usg_tensor_get(out, (int64_t[]){i, j});
            if (got != want)
                fail_msg("(%lld, %lld): got %.17g, want %.17g", (long long)i, (long long)j,
                         got, want);
        }
}

/* mm(a, b) is right, and copied no operand when `no_copy` (see the top). */
static void check_mm(const usg_tensor *a, const usg_tensor *b, bool no_copy)
{
    usg_tensor *o = NULL;
    assert_int_equal(usg_mm(&o, a, b), USG_OK);
    assert_int_equal(o->dtype, a->dtype);
    check_product(o, a, b, 1, 0, NULL);
    usg_tensor_release(o);
    size_t live = usg_alloc_live_bytes();
    usg_alloc_fail_after(4);
    usg_status s = usg_mm(&o, a, b);
    usg_alloc_fail_after(0);
    if (no_copy) {
        assert_int_equal(s, USG_OK);
        check_product(o, a, b, 1, 0, NULL);
        usg_tensor_release(o);
    } else {
        assert_int_equal(s, USG_NOMEM);
        assert_null(o);
    }
    assert_int_equal(usg_alloc_live_bytes(), live);
}

static usg_tensor *transposed_view(usg_tensor *t)
{
    usg_tensor *v;
    assert_int_equal(usg_transpose(&v, t, 0, 1), USG_OK);
    return v;
}

static usg_tensor *narrowed(usg_tensor *t, int dim, int64_t start, int64_t len)
{
    usg_tensor *v;
    assert_int_equal(usg_narrow(&v, t, dim, start, len), USG_OK);
    return v;
}

/* ==== mm ================================================================ */

static void test_mm_hand(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a = mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
        usg_tensor *b = mk(dt, 2, SHAPE(3, 2), VALS(7, 8, 9, 10, 11, 12));
        usg_tensor *o = SENT;
        assert_int_equal(usg_mm(&o, a, b), USG_OK);
        expect(o, dt, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
        assert_int_equal(usg_mm(&o, b, a), USG_OK);
        expect(o, dt, 2, SHAPE(3, 3), VALS(39, 54, 69, 49, 68, 87, 59, 82, 105));
        usg_tensor_release(a);
        usg_tensor_release(b);
    }
}

static void test_mm_odd_shapes(void **state)
{
    static const int64_t shapes[][3] = {{7, 5, 3}, {1, 1, 1}, {1, 9, 1}, {5, 1, 4},
                                        {13, 17, 11}, {3, 64, 2}, {65, 3, 33}};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            usg_tensor *a = filled(FLOATS[k], 2, SHAPE(shapes[i][0], shapes[i][1]), 1);
            usg_tensor *b = filled(FLOATS[k], 2, SHAPE(shapes[i][1], shapes[i][2]), 2);
            check_mm(a, b, true);
            usg_tensor_release(a);
            usg_tensor_release(b);
        }
}

static void test_mm_transposed(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a0 = filled(dt, 2, SHAPE(7, 5), 1), *b0 = filled(dt, 2, SHAPE(5, 3), 2);
        usg_tensor *as = filled(dt, 2, SHAPE(5, 7), 3), *bs = filled(dt, 2, SHAPE(3, 5), 4);
        usg_tensor *at = transposed_view(as), *bt = transposed_view(bs);         /* (7, 5), (5, 3) */
        check_mm(at, b0, true);
        check_mm(a0, bt, true);
        check_mm(at, bt, true);
        /* a transposed view inside a much larger storage: ld is the big row */
        usg_tensor *big = filled(dt, 2, SHAPE(300, 40), 5);
        usg_tensor *rows = narrowed(big, 0, 10, 5), *win = narrowed(rows, 1, 2, 7);  /* (5, 7) */
        usg_tensor *at2 = transposed_view(win);                  /* (7, 5) strides (1, 40) */
        assert_int_equal(at2->stride[1], 40);
        assert_int_equal(at2->offset, 402);
        check_mm(at2, b0, true);
        usg_tensor *big2 = filled(dt, 2, SHAPE(60, 50), 6);
        usg_tensor *r2 = narrowed(big2, 0, 50, 3), *w2 = narrowed(r2, 1, 45, 5);     /* (3, 5) */
        usg_tensor *bt2 = transposed_view(w2);                   /* (5, 3) strides (1, 50) */
        check_mm(a0, bt2, true);
        check_mm(at2, bt2, true);
        /* the product of a transposed pair is the transposed product */
        usg_tensor *o1, *o2, *o2t;
        assert_int_equal(usg_mm(&o1, at2, bt2), USG_OK);
        assert_int_equal(usg_mm(&o2, w2, win), USG_OK);     /* (3, 5) x (5, 7) */
        o2t = transposed_view(o2);
        for (int64_t i = 0; i < 21; i++)
            assert_true(usg_tensor_get_flat(o1, i) == usg_tensor_get_flat(o2t, i));
        usg_tensor_release(o1); usg_tensor_release(o2); usg_tensor_release(o2t);
        usg_tensor_release(bt2); usg_tensor_release(w2); usg_tensor_release(r2);
        usg_tensor_release(big2);
        usg_tensor_release(at2); usg_tensor_release(win); usg_tensor_release(rows);
        usg_tensor_release(big);
        usg_tensor_release(at); usg_tensor_release(bt);
        usg_tensor_release(as); usg_tensor_release(bs);
        usg_tensor_release(a0); usg_tensor_release(b0);
    }
}

static void test_mm_narrowed(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *wa = filled(dt, 2, SHAPE(7, 20), 1);
        usg_tensor *a = narrowed(wa, 1, 3, 5);                     /* (7, 5), ld 20 */
        usg_tensor *wb = filled(dt, 2, SHAPE(9, 8), 2);
        usg_tensor *rb = narrowed(wb, 0, 2, 5), *b = narrowed(rb, 1, 1, 3);  /* (5, 3), ld 8 */
        assert_int_equal(a->stride[0], 20);
        assert_int_equal(b->stride[0], 8);
        check_mm(a, b, true);
        /* single rows and columns of bigger matrices, in every orientation */
        usg_tensor *col, *row, *c2, *r2;
        assert_int_equal(usg_select(&col, wb, 1, 6), USG_OK);      /* (9,) stride 8 */
        assert_int_equal(usg_unsqueeze(&r2, col, 0), USG_OK);      /* (1, 9) strides (72, 8) */
        assert_int_equal(usg_unsqueeze(&c2, col, 1), USG_OK);      /* (9, 1) strides (8, 1) */
        usg_tensor *m9 = filled(dt, 2, SHAPE(9, 4), 7), *m4 = filled(dt, 2, SHAPE(4, 9), 8);
        check_mm(r2, m9, true);
        check_mm(m4, c2, true);
        check_mm(c2, r2, true);                                    /* outer product (9, 9) */
        check_mm(r2, c2, true);                                    /* inner product (1, 1) */
        assert_int_equal(usg_select(&row, wa, 0, 4), USG_OK);      /* (20,) stride 1 */
        usg_tensor *rr, *rc;
        assert_int_equal(usg_unsqueeze(&rr, row, 0), USG_OK);
        assert_int_equal(usg_unsqueeze(&rc, row, 1), USG_OK);      /* (20, 1) strides (1, 1) */
        usg_tensor *m20 = filled(dt, 2, SHAPE(20, 2), 9);
        check_mm(rr, m20, true);
        check_mm(rr, rc, true);
        usg_tensor_release(m20);
        usg_tensor_release(rr); usg_tensor_release(rc); usg_tensor_release(row);
        usg_tensor_release(m9); usg_tensor_release(m4);
        usg_tensor_release(col); usg_tensor_release(r2); usg_tensor_release(c2);
        usg_tensor_release(a); usg_tensor_release(wa);
        usg_tensor_release(b); usg_tensor_release(rb); usg_tensor_release(wb);
    }
}

static void test_mm_expanded(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a = filled(dt, 2, SHAPE(7, 5), 1);
        usg_tensor *r = mk(dt, 2, SHAPE(1, 3), VALS(1, -2, 0.5)), *b;
        assert_int_equal(usg_expand(&b, r, 2, SHAPE(5, 3)), USG_OK);   /* strides (0, 1) */
        check_mm(a, b, false);
        usg_tensor *c = mk(dt, 2, SHAPE(7, 1), VALS(1, 2, 3, 4, 5, 6, 7)), *ae;
        assert_int_equal(usg_expand(&ae, c, 2, SHAPE(7, 5)), USG_OK);  /* strides (1, 0) */
        usg_tensor *b0 = filled(dt, 2, SHAPE(5, 3), 2);
        check_mm(ae, b0, false);
        check_mm(ae, b, false);
        usg_tensor *s = mk(dt, 0, NULL, VALS(0.75)), *se;
        assert_int_equal(usg_expand(&se, s, 2, SHAPE(7, 5)), USG_OK);  /* strides (0, 0) */
        check_mm(se, b0, false);
        /* a row expanded along rows, then transposed: (3, 5) strides (1, 0) */
        usg_tensor *et = transposed_view(b), *b52 = filled(dt, 2, SHAPE(5, 2), 5);
        check_mm(et, b52, false);
        usg_tensor_release(et);
        usg_tensor_release(b52);
        usg_tensor_release(se); usg_tensor_release(s);
        usg_tensor_release(b0);
        usg_tensor_release(ae); usg_tensor_release(c);
        usg_tensor_release(b); usg_tensor_release(r);
        usg_tensor_release(a);
    }
}

static void test_mm_empty(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a, *b, *o;
        /* k = 0: an empty sum is 0, whatever the fresh output held */
        assert_int_equal(usg_tensor_empty(&a, dt, 2, SHAPE(3, 0)), USG_OK);
        assert_int_equal(usg_tensor_empty(&b, dt, 2, SHAPE(0, 4)), USG_OK);
        for (int rep = 0; rep < 3; rep++) {      /* reuse of freed blocks holding garbage */
            usg_tensor *junk;
            assert_int_equal(usg_tensor_full(&junk, dt, 2, SHAPE(3, 4), NAN), USG_OK);
            usg_tensor_release(junk);
            assert_int_equal(usg_mm(&o, a, b), USG_OK);
            expect(o, dt, 2, SHAPE(3, 4), VALS(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        }
        usg_tensor *at, *bt;
        assert_int_equal(usg_tensor_empty(&at, dt, 2, SHAPE(0, 3)), USG_OK);
        usg_tensor *att = transposed_view(at);
        assert_int_equal(usg_mm(&o, att, b), USG_OK);
        expect(o, dt, 2, SHAPE(3, 4), VALS(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        usg_tensor_release(att); usg_tensor_release(at);
        usg_tensor_release(a); usg_tensor_release(b);
        /* n = 0 and m = 0 */
        a = filled(dt, 2, SHAPE(0, 5), 1);
        b = filled(dt, 2, SHAPE(5, 3), 2);
        assert_int_equal(usg_mm(&o, a, b), USG_OK);
        expect(o, dt, 2, SHAPE(0, 3), NULL);
        usg_tensor_release(a);
        a = filled(dt, 2, SHAPE(7, 5), 1);
        bt = filled(dt, 2, SHAPE(5, 0), 2);
        assert_int_equal(usg_mm(&o, a, bt), USG_OK);
        expect(o, dt, 2, SHAPE(7, 0), NULL);
        usg_tensor *z = filled(dt, 2, SHAPE(0, 0), 1);
        usg_tensor *z2 = filled(dt, 2, SHAPE(0, 7), 1);
        assert_int_equal(usg_mm(&o, z2, a), USG_OK);
        expect(o, dt, 2, SHAPE(0, 5), NULL);
        assert_int_equal(usg_mm(&o, z, z), USG_OK);
        expect(o, dt, 2, SHAPE(0, 0), NULL);
        usg_tensor_release(z); usg_tensor_release(z2);
        usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(bt);
    }
}

static void test_mm_errors(void **state)
{
    usg_tensor *f = filled(USG_F32, 2, SHAPE(2, 3), 1), *d = filled(USG_F64, 2, SHAPE(3, 2), 2);
    usg_tensor *i = filled(USG_I32, 2, SHAPE(3, 2), 3), *f42 = filled(USG_F32, 2, SHAPE(4, 2), 4);
    usg_tensor *v = filled(USG_F32, 1, SHAPE(3), 5), *f3 = filled(USG_F32, 3, SHAPE(1, 3, 2), 6);
    usg_tensor *o = SENT;
    size_t live = usg_alloc_live_bytes();
    expect_err(usg_mm(&o, f, i), USG_TYPE, "mm: b must be f32 or f64, got i32");
    expect_err(usg_mm(&o, i, f), USG_TYPE, "mm: a must be f32 or f64, got i32");
    expect_err(usg_mm(&o, f, d), USG_TYPE, "mm: b is f64 but the other operand is f32");
    expect_err(usg_mm(&o, f, f42), USG_SHAPE, "mm: inner sizes differ: (2, 3) x (4, 2)");
    expect_err(usg_mm(&o, v, f), USG_SHAPE, "mm: a must be 2-D, got (3,)");
    expect_err(usg_mm(&o, f, f3), USG_SHAPE, "mm: b must be 2-D, got (1, 3, 2)");
    assert_null(o);
    assert_int_equal(usg_alloc_live_bytes(), live);
    usg_tensor_release(f); usg_tensor_release(d); usg_tensor_release(i);
    usg_tensor_release(f42); usg_tensor_release(v); usg_tensor_release(f3);
}

/* ==== bmm =============================================================== */

/* out (B, n, m) == a[i] b[i] for every i, by check_product on 2-D slices */
static void check_bmm(const usg_tensor *out, usg_tensor *a, usg_tensor *b)
{
    assert_int_equal(out->ndim, 3);
    assert_int_equal(out->shape[0], a->shape[0]);
    for (int64_t i = 0; i < a->shape[0]; i++) {
        usg_tensor *ai, *bi, *oi;
        assert_int_equal(usg_select(&ai, a, 0, i), USG_OK);
        assert_int_equal(usg_select(&bi, b, 0, i), USG_OK);
        assert_int_equal(usg_select(&oi, (usg_tensor *)out, 0, i), USG_OK);
        check_product(oi, ai, bi, 1, 0, NULL);
        usg_tensor_release(ai); usg_tensor_release(bi); usg_tensor_release(oi);
    }
}

static void test_bmm(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a = mk(dt, 3, SHAPE(2, 2, 3), VALS(1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0));
        usg_tensor *b = mk(dt, 3, SHAPE(2, 3, 2), VALS(7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6));
        usg_tensor *o = SENT;
        assert_int_equal(usg_bmm(&o, a, b), USG_OK);
        expect(o, dt, 3, SHAPE(2, 2, 2), VALS(58, 64, 139, 154, 1, 2, 3, 4));
        usg_tensor_release(a); usg_tensor_release(b);

        /* views: batch not outermost in memory, per-batch transposes, a
         * broadcast batch (stride 0) */
        usg_tensor *ap = filled(dt, 3, SHAPE(4, 3, 5), 1), *pa;         /* -> (3, 4, 5) */
        assert_int_equal(usg_permute(&pa, ap, PERM(1, 0, 2)), USG_OK);
        usg_tensor *bs = filled(dt, 3, SHAPE(3, 2, 5), 2), *tb;         /* -> (3, 5, 2) */
        assert_int_equal(usg_transpose(&tb, bs, 1, 2), USG_OK);
        assert_int_equal(usg_bmm(&o, pa, tb), USG_OK);
        check_bmm(o, pa, tb);
        usg_tensor_release(o);
        usg_tensor *one = filled(dt, 3, SHAPE(1, 5, 2), 3), *eb;
        assert_int_equal(usg_expand(&eb, one, 3, SHAPE(3, 5, 2)), USG_OK);
        assert_int_equal(usg_bmm(&o, pa, eb), USG_OK);
        check_bmm(o, pa, eb);
        usg_tensor_release(o);
        usg_tensor *c = filled(dt, 3, SHAPE(3, 4, 5), 4);
        assert_int_equal(usg_bmm(&o, c, tb), USG_OK);
        check_bmm(o, c, tb);
        usg_tensor_release(o);
        /* inner dim expanded (stride 0 inside a slice): copied */
        usg_tensor *col = filled(dt, 3, SHAPE(3, 5, 1), 5), *ec;
        assert_int_equal(usg_expand(&ec, col, 3, SHAPE(3, 5, 2)), USG_OK);
        assert_int_equal(usg_bmm(&o, c, ec), USG_OK);
        check_bmm(o, c, ec);
        usg_tensor_release(o);
        usg_tensor_release(ec); usg_tensor_release(col);
        usg_tensor_release(c);
        usg_tensor_release(eb); usg_tensor_release(one);
        usg_tensor_release(pa); usg_tensor_release(ap);
        usg_tensor_release(tb); usg_tensor_release(bs);

        /* empty sizes */
        usg_tensor *k0a = filled(dt, 3, SHAPE(2, 3, 0), 1), *k0b = filled(dt, 3, SHAPE(2, 0, 4), 1);
        assert_int_equal(usg_bmm(&o, k0a, k0b), USG_OK);
        check(o, dt, 3, SHAPE(2, 3, 4), (double[24]){0});
        usg_tensor_release(o);
        usg_tensor *b0a = filled(dt, 3, SHAPE(0, 3, 2), 1), *b0b = filled(dt, 3, SHAPE(0, 2, 4), 1);
        assert_int_equal(usg_bmm(&o, b0a, b0b), USG_OK);
        expect(o, dt, 3, SHAPE(0, 3, 4), NULL);
        usg_tensor_release(k0a); usg_tensor_release(k0b);
        usg_tensor_release(b0a); usg_tensor_release(b0b);
    }
    usg_tensor *a = filled(USG_F32, 3, SHAPE(2, 3, 4), 1), *b = filled(USG_F32, 3, SHAPE(3, 4, 5), 2);
    usg_tensor *b2 = filled(USG_F32, 3, SHAPE(2, 5, 5), 3), *d = filled(USG_F64, 3, SHAPE(2, 4, 5), 4);
    usg_tensor *i = filled(USG_I32, 3, SHAPE(2, 4, 5), 5), *m = filled(USG_F32, 2, SHAPE(4, 5), 6);
    usg_tensor *o = SENT;
    expect_err(usg_bmm(&o, a, b), USG_SHAPE, "bmm: expected (B, n, k) x (B, k, m), got (2, 3, 4) x (3, 4, 5)");
    expect_err(usg_bmm(&o, a, b2), USG_SHAPE, "bmm: expected");
    expect_err(usg_bmm(&o, a, d), USG_TYPE, "bmm: b is f64");
    expect_err(usg_bmm(&o, i, d), USG_TYPE, "bmm: a must be f32 or f64");
    expect_err(usg_bmm(&o, a, m), USG_SHAPE, "bmm: b must be 3-D");
    expect_err(usg_bmm(&o, m, a), USG_SHAPE, "bmm: a must be 3-D");
    assert_null(o);
    usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(b2);
    usg_tensor_release(d); usg_tensor_release(i); usg_tensor_release(m);
}

/* ==== matmul ============================================================ */

static void test_matmul_vectors(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *u = mk(dt, 1, SHAPE(3), VALS(1, 2, 3)), *w = mk(dt, 1, SHAPE(3), VALS(4, 5, 6));
        usg_tensor *m32 = mk(dt, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6));
        usg_tensor *m23 = mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
        usg_tensor *o = SENT;
        assert_int_equal(usg_matmul(&o, u, w), USG_OK);                /* 1-D . 1-D -> 0-dim */
        expect(o, dt, 0, NULL, VALS(32));
        assert_int_equal(usg_matmul(&o, u, m32), USG_OK);              /* (3) (3, 2) -> (2) */
        expect(o, dt, 1, SHAPE(2), VALS(22, 28));
        usg_tensor *x = mk(dt, 1, SHAPE(3), VALS(1, 0, -1));
        assert_int_equal(usg_matmul(&o, m23, x), USG_OK);              /* (2, 3) (3) -> (2) */
        expect(o, dt, 1, SHAPE(2), VALS(-2, -2));
        assert_int_equal(usg_matmul(&o, m23, m32), USG_OK);            /* 2-D . 2-D */
        expect(o, dt, 2, SHAPE(2, 2), VALS(22, 28, 49, 64));
        /* strided vectors */
        usg_tensor *col;
        assert_int_equal(usg_select(&col, m32, 1, 1), USG_OK);         /* (2, 4, 6), stride 2 */
        assert_int_equal(usg_matmul(&o, col, u), USG_OK);
        expect(o, dt, 0, NULL, VALS(28));
        assert_int_equal(usg_matmul(&o, m23, col), USG_OK);
        expect(o, dt, 1, SHAPE(2), VALS(28, 64));
        usg_tensor_release(col);
        /* empty inner size: 0 */
        usg_tensor *e = filled(dt, 1, SHAPE(0), 1);
        assert_int_equal(usg_matmul(&o, e, e), USG_OK);
        expect(o, dt, 0, NULL, VALS(0));
        usg_tensor_release(e);
        usg_tensor_release(x);
        usg_tensor_release(u); usg_tensor_release(w);
        usg_tensor_release(m32); usg_tensor_release(m23);
    }
}

/* out (..., n, m) against a[idx] b[idx] with NumPy batch broadcasting: the
 * batch index of an operand with size 1 there is 0. */
static void check_batched(const usg_tensor *out, const usg_tensor *a, const usg_tensor *b)
{
    int nd = out->ndim, nbatch = nd - 2;
    int64_t n = out->shape[nd - 2], m = out->shape[nd - 1], k = a->shape[a->ndim - 1];
    int64_t B = 1;
    for (int d = 0; d < nbatch; d++) B *= out->shape[d];
    for (int64_t bi = 0; bi < B; bi++) {
        int64_t idx[USG_MAX_DIMS], rem = bi;
        for (int d = nbatch - 1; d >= 0; d--) { idx[d] = rem % out->shape[d]; rem /= out->shape[d]; }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < m; j++) {
                int64_t ia[USG_MAX_DIMS], ib[USG_MAX_DIMS], io[USG_MAX_DIMS];
                int la = a->ndim - 2, lb = b->ndim - 2;
                for (int d = 0; d < la; d++) {
                    int64_t x = idx[nbatch - la + d];
                    ia[d] = a->shape[d] == 1 ? 0 : x;
                }
                for (int d = 0; d < lb; d++) {
                    int64_t x = idx[nbatch - lb + d];
                    ib[d] = b->shape[d] == 1 ? 0 : x;
                }
                double s = 0;
                for (int64_t p = 0; p < k; p++) {
                    ia[la] = i; ia[la + 1] = p;
                    ib[lb] = p; ib[lb + 1] = j;
                    s += usg_tensor_get(a, ia) * usg_tensor_get(b, ib);
                }
                memcpy(io, idx, sizeof(int64_t) * (size_t)nbatch);
                io[nbatch] = i; io[nbatch + 1] = j;
                double got = usg_tensor_get(out, io);
                if (got != s) fail_msg("batch %lld (%lld, %lld): got %.17g, want %.17g",
                                       (long long)bi, (long long)i, (long long)j, got, s);
            }
    }
}

static void test_matmul_batched(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *o = SENT;
        /* 3-D . 2-D: batch folded into rows, one gemm */
        usg_tensor *a = filled(dt, 3, SHAPE(2, 3, 4), 1), *b = filled(dt, 2, SHAPE(4, 5), 2);
        assert_int_equal(usg_matmul(&o, a, b), USG_OK);
        assert_int_equal(o->ndim, 3);
        assert_int_equal(o->shape[0], 2); assert_int_equal(o->shape[1], 3); assert_int_equal(o->shape[2], 5);
        assert_true(usg_tensor_is_contiguous(o));
        check_batched(o, a, b);
        usg_tensor_release(o);
        /* the same with a non-contiguous 3-D operand and a transposed 2-D one */
        usg_tensor *ap = filled(dt, 3, SHAPE(3, 2, 4), 3), *pa, *bs = filled(dt, 2, SHAPE(5, 4), 4);
        assert_int_equal(usg_permute(&pa, ap, PERM(1, 0, 2)), USG_OK);   /* (2, 3, 4) */
        usg_tensor *bt = transposed_view(bs);
        assert_int_equal(usg_matmul(&o, pa, bt), USG_OK);
        check_batched(o, pa, bt);
        usg_tensor_release(o);
        /* 3-D . 1-D and 1-D . 3-D */
        usg_tensor *v4 = filled(dt, 1, SHAPE(4), 5), *v3 = filled(dt, 1, SHAPE(3), 6);
        assert_int_equal(usg_matmul(&o, a, v4), USG_OK);                /* (2, 3) */
        assert_int_equal(o->ndim, 2);
        for (int64_t bi = 0; bi < 2; bi++)
            for (int64_t i = 0; i < 3; i++) {
                double s = 0;
                for (int64_t p = 0; p < 4; p++)
                    s += usg_tensor_get(a, (int64_t[]){bi, i, p}) * usg_tensor_get_flat(v4, p);
                assert_true(usg_tensor_get(o, (int64_t[]){bi, i}) == s);
            }
        usg_tensor_release(o);
        assert_int_equal(usg_matmul(&o, v3, a), USG_OK);                /* (2, 4) */
        assert_int_equal(o->ndim, 2);
        assert_int_equal(o->shape[0], 2); assert_int_equal(o->shape[1], 4);
        for (int64_t bi = 0; bi < 2; bi++)
            for (int64_t j = 0; j < 4; j++) {
                double s = 0;
                for (int64_t p = 0; p < 3; p++)
                    s += usg_tensor_get_flat(v3, p) * usg_tensor_get(a, (int64_t[]){bi, p, j});
                assert_true(usg_tensor_get(o, (int64_t[]){bi, j}) == s);
            }
        usg_tensor_release(o);
        /* 2-D . 3-D: a broadcast over b's batch */
        usg_tensor *m = filled(dt, 2, SHAPE(5, 3), 7);
        assert_int_equal(usg_matmul(&o, m, a), USG_OK);                 /* (2, 5, 4) */
        assert_int_equal(o->shape[0], 2); assert_int_equal(o->shape[1], 5); assert_int_equal(o->shape[2], 4);
        check_batched(o, m, a);
        usg_tensor_release(o);
        /* broadcast batch: (2, 1, 3, 4) x (5, 4, 2) -> (2, 5, 3, 2) */
        usg_tensor *a4 = filled(dt, 4, SHAPE(2, 1, 3, 4), 8), *b3 = filled(dt, 3, SHAPE(5, 4, 2), 9);
        assert_int_equal(usg_matmul(&o, a4, b3), USG_OK);
        assert_int_equal(o->ndim, 4);
        assert_int_equal(o->shape[0], 2); assert_int_equal(o->shape[1], 5);
        assert_int_equal(o->shape[2], 3); assert_int_equal(o->shape[3], 2);
        assert_true(usg_tensor_is_contiguous(o));
        check_batched(o, a4, b3);
        usg_tensor_release(o);
        /* 4-D . 4-D with size-1 batch dims on both sides */
        usg_tensor *x = filled(dt, 4, SHAPE(1, 3, 2, 4), 10), *y = filled(dt, 4, SHAPE(2, 1, 4, 3), 11);
        assert_int_equal(usg_matmul(&o, x, y), USG_OK);                 /* (2, 3, 2, 3) */
        check_batched(o, x, y);
        usg_tensor_release(o);
        usg_tensor_release(x); usg_tensor_release(y);
        usg_tensor_release(a4); usg_tensor_release(b3);
        usg_tensor_release(m); usg_tensor_release(v4); usg_tensor_release(v3);
        usg_tensor_release(bt); usg_tensor_release(bs);
        usg_tensor_release(pa); usg_tensor_release(ap);
        usg_tensor_release(a); usg_tensor_release(b);
    }
}

static void test_matmul_errors(void **state)
{
    usg_tensor *s = mk(USG_F32, 0, NULL, VALS(1)), *v3 = filled(USG_F32, 1, SHAPE(3), 1);
    usg_tensor *v4 = filled(USG_F32, 1, SHAPE(4), 2), *m23 = filled(USG_F32, 2, SHAPE(2, 3), 3);
    usg_tensor *a = filled(USG_F32, 3, SHAPE(2, 3, 4), 4), *b = filled(USG_F32, 3, SHAPE(3, 4, 5), 5);
    usg_tensor *i = filled(USG_I32, 2, SHAPE(3, 2), 6), *d = filled(USG_F64, 2, SHAPE(3, 2), 7);
    usg_tensor *o = SENT;
    size_t live = usg_alloc_live_bytes();
    expect_err(usg_matmul(&o, s, v3), USG_SHAPE, "matmul: both operands need at least 1 dim");
    expect_err(usg_matmul(&o, v3, s), USG_SHAPE, "matmul:");
    expect_err(usg_matmul(&o, v3, v4), USG_SHAPE, "matmul: inner sizes differ: (3,) x (4,)");
    expect_err(usg_matmul(&o, m23, v4), USG_SHAPE, "matmul: inner sizes differ: (2, 3) x (4,)");
    expect_err(usg_matmul(&o, v4, m23), USG_SHAPE, "matmul: inner sizes differ");
    expect_err(usg_matmul(&o, a, m23), USG_SHAPE, "matmul: inner sizes differ: (2, 3, 4) x (2, 3)");
    expect_err(usg_matmul(&o, a, b), USG_SHAPE,
               "matmul: batch dims do not broadcast: shapes (2,) and (3,)");
    expect_err(usg_matmul(&o, m23, i), USG_TYPE, "matmul: b must be f32 or f64, got i32");
    expect_err(usg_matmul(&o, i, m23), USG_TYPE, "matmul: a must be f32 or f64, got i32");
    expect_err(usg_matmul(&o, m23, d), USG_TYPE, "matmul: b is f64");
    assert_null(o);
    assert_int_equal(usg_alloc_live_bytes(), live);
    usg_tensor_release(s); usg_tensor_release(v3); usg_tensor_release(v4);
    usg_tensor_release(m23); usg_tensor_release(a); usg_tensor_release(b);
    usg_tensor_release(i); usg_tensor_release(d);
}

/* ==== addmm ============================================================= */

static void test_addmm(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        usg_tensor *a = mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
        usg_tensor *b = mk(dt, 2, SHAPE(3, 2), VALS(7, 8, 9, 10, 11, 12));   /* a b = 58 64 139 154 */
        usg_tensor *c1 = mk(dt, 1, SHAPE(2), VALS(1, -1));
        usg_tensor *c2 = mk(dt, 2, SHAPE(2, 1), VALS(10, 20));
        usg_tensor *c0 = mk(dt, 0, NULL, VALS(4));
        usg_tensor *c22 = mk(dt, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
        usg_tensor *o = SENT;
        assert_int_equal(usg_addmm(&o, c1, a, b, 0.5, 2), USG_OK);       /* bias row */
        expect(o, dt, 2, SHAPE(2, 2), VALS(116.5, 127.5, 278.5, 307.5));
        assert_int_equal(usg_addmm(&o, c2, a, b, 1, 1), USG_OK);         /* bias column */
        expect(o, dt, 2, SHAPE(2, 2), VALS(68, 74, 159, 174));
        assert_int_equal(usg_addmm(&o, c0, a, b, -1, 0.5), USG_OK);      /* 0-dim */
        expect(o, dt, 2, SHAPE(2, 2), VALS(25, 28, 65.5, 73));
        assert_int_equal(usg_addmm(&o, c22, a, b, 2, -1), USG_OK);
        expect(o, dt, 2, SHAPE(2, 2), VALS(-56, -60, -133, -146));
        assert_int_equal(usg_addmm(&o, c22, a, b, 1, 0), USG_OK);        /* alpha 0: c */
        expect(o, dt, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
        /* beta 0 ignores c, NaN included (as BLAS and PyTorch) */
        usg_tensor *cn = mk(dt, 1, SHAPE(2), VALS(NAN, INFINITY));
        assert_int_equal(usg_addmm(&o, cn, a, b, 0, 1), USG_OK);
        expect(o, dt, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
        usg_tensor_release(cn);
        /* transposed operands and a transposed c */
        usg_tensor *at = transposed_view(b), *bt = transposed_view(a), *ct = transposed_view(c22);
        assert_int_equal(usg_addmm(&o, ct, at, bt, 1, 1), USG_OK);       /* b^T a^T + c^T */
        expect(o, dt, 2, SHAPE(2, 2), VALS(59, 142, 66, 158));
        usg_tensor_release(at); usg_tensor_release(bt); usg_tensor_release(ct);
        /* k = 0: beta * c */
        usg_tensor *k0a = filled(dt, 2, SHAPE(2, 0), 1), *k0b = filled(dt, 2, SHAPE(0, 2), 2);
        assert_int_equal(usg_addmm(&o, c22, k0a, k0b, 3, 5), USG_OK);
        expect(o, dt, 2, SHAPE(2, 2), VALS(3, 6, 9, 12));
        assert_int_equal(usg_addmm(&o, c22, k0a, k0b, 0, 5), USG_OK);
        expect(o, dt, 2, SHAPE(2, 2), VALS(0, 0, 0, 0));
        usg_tensor_release(k0a); usg_tensor_release(k0b);

        /* errors */
        usg_tensor *c3 = mk(dt, 1, SHAPE(3), VALS(1, 2, 3)), *c322 = filled(dt, 3, SHAPE(2, 2, 2), 3);
        usg_tensor *ci = mk(USG_I32, 1, SHAPE(2), VALS(1, 2));
        usg_tensor *cx = mk(dt == USG_F32 ? USG_F64 : USG_F32, 1, SHAPE(2), VALS(1, 2));
        usg_tensor *v = mk(dt, 1, SHAPE(3), VALS(1, 2, 3));
        size_t live = usg_alloc_live_bytes();
        o = SENT;
        expect_err(usg_addmm(&o, c3, a, b, 1, 1), USG_SHAPE,
                   "addmm: c (3,) does not broadcast to the product's (2, 2)");
        expect_err(usg_addmm(&o, c322, a, b, 1, 1), USG_SHAPE, "addmm: c (2, 2, 2)");
        expect_err(usg_addmm(&o, ci, a, b, 1, 1), USG_TYPE, "addmm: c must be f32 or f64, got i32");
        expect_err(usg_addmm(&o, cx, a, b, 1, 1), USG_TYPE, "addmm: c is");
        expect_err(usg_addmm(&o, c1, v, b, 1, 1), USG_SHAPE, "addmm: a must be 2-D");
        expect_err(usg_addmm(&o, c1, a, a, 1, 1), USG_SHAPE, "addmm: inner sizes differ");
        assert_null(o);
        assert_int_equal(usg_alloc_live_bytes(), live);
        usg_tensor_release(c3); usg_tensor_release(c322); usg_tensor_release(ci);
        usg_tensor_release(cx); usg_tensor_release(v);
        usg_tensor_release(c1); usg_tensor_release(c2); usg_tensor_release(c0);
        usg_tensor_release(c22);
        usg_tensor_release(a); usg_tensor_release(b);
    }
}

/* ==== gemm ============================================================== */

static void test_gemm(void **state)
{
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = FLOATS[k];
        /* every flag combination: op(a) (4, 3), op(b) (3, 5), c (4, 5) */
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                usg_tensor *a = filled(dt, 2, ta ? SHAPE(3, 4) : SHAPE(4, 3), 1 + ta);
                usg_tensor *b = filled(dt, 2, tb ? SHAPE(5, 3) : SHAPE(3, 5), 3 + tb);
                usg_tensor *c = filled(dt, 2, SHAPE(4, 5), 5);
                double c0[20];
                for (int i = 0; i < 20; i++) c0[i] = usg_tensor_get_flat(c, i);
                usg_tensor *opa = ta ? transposed_view(a) : (usg_tensor_retain(a), a);
                usg_tensor *opb = tb ? transposed_view(b) : (usg_tensor_retain(b), b);
                long v0 = c->storage->version;
                assert_int_equal(usg_gemm(c, a, ta, b, tb, 2, 0.5), USG_OK);
                assert_true(c->storage->version > v0);
                check_product(c, opa, opb, 2, 0.5, c0);
                /* beta = 1 accumulates */
                for (int i = 0; i < 20; i++) c0[i] = usg_tensor_get_flat(c, i);
                assert_int_equal(usg_gemm(c, a, ta, b, tb, 1, 1), USG_OK);
                check_product(c, opa, opb, 1, 1, c0);
                /* a transposed view with the flag set is the stored matrix again */
                usg_tensor *av = transposed_view(opa), *bv = transposed_view(opb);   /* (3, 4), (5, 3) */
                for (int i = 0; i < 20; i++) c0[i] = usg_tensor_get_flat(c, i);
                assert_int_equal(usg_gemm(c, av, true, bv, true, -1, 1), USG_OK);
                check_product(c, opa, opb, -1, 1, c0);
                usg_tensor_release(av); usg_tensor_release(bv);
                usg_tensor_release(opa); usg_tensor_release(opb);
                usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(c);
            }
        /* beta 0 overwrites whatever c holds, NaN included */
        usg_tensor *a = mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
        usg_tensor *b = mk(dt, 2, SHAPE(3, 2), VALS(7, 8, 9, 10, 11, 12));
        usg_tensor *c;
        assert_int_equal(usg_tensor_full(&c, dt, 2, SHAPE(2, 2), NAN), USG_OK);
        assert_int_equal(usg_gemm(c, a, false, b, false, 1, 0), USG_OK);
        check(c, dt, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
        /* k = 0: c = beta c */
        usg_tensor *k0a = filled(dt, 2, SHAPE(2, 0), 1), *k0b = filled(dt, 2, SHAPE(0, 2), 2);
        assert_int_equal(usg_gemm(c, k0a, false, k0b, false, 7, 0.5), USG_OK);
        check(c, dt, 2, SHAPE(2, 2), VALS(29, 32, 69.5, 77));
        assert_int_equal(usg_fill_(c, NAN), USG_OK);
        assert_int_equal(usg_gemm(c, k0a, false, k0b, false, 7, 0), USG_OK);
        check(c, dt, 2, SHAPE(2, 2), VALS(0, 0, 0, 0));
        usg_tensor_release(k0a); usg_tensor_release(k0b);
        /* m = 0: nothing to do */
        usg_tensor *e = filled(dt, 2, SHAPE(0, 2), 1), *b0 = filled(dt, 2, SHAPE(3, 0), 1);
        usg_tensor *ce = filled(dt, 2, SHAPE(2, 0), 1);
        assert_int_equal(usg_gemm(ce, a, false, b0, false, 1, 1), USG_OK);
        usg_tensor_release(e); usg_tensor_release(b0); usg_tensor_release(ce);

        /* errors leave c untouched */
        usg_tensor *i = mk(USG_I32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
        usg_tensor *ci = mk(USG_I32, 2, SHAPE(2, 2), VALS(0, 0, 0, 0));
        usg_tensor *x = filled(dt == USG_F32 ? USG_F64 : USG_F32, 2, SHAPE(3, 2), 1);
        usg_tensor *v = mk(dt, 1, SHAPE(3), VALS(1, 2, 3)), *ct = transposed_view(c);
        usg_tensor *c23 = filled(dt, 2, SHAPE(2, 3), 1);
        assert_int_equal(usg_fill_(c, 1), USG_OK);
        expect_err(usg_gemm(ci, i, false, i, false, 1, 0), USG_TYPE, "gemm: c must be f32 or f64, got i32");
        expect_err(usg_gemm(ci, a, false, b, false, 1, 0), USG_TYPE, "gemm: c must be f32 or f64");
        expect_err(usg_gemm(c, i, false, b, false, 1, 0), USG_TYPE, "gemm: a must be f32 or f64, got i32");
        expect_err(usg_gemm(c, a, false, x, false, 1, 0), USG_TYPE, "gemm: b is");
        expect_err(usg_gemm(c, a, false, a, false, 1, 0), USG_SHAPE, "gemm: inner sizes differ");
        expect_err(usg_gemm(c, a, true, b, false, 1, 0), USG_SHAPE, "gemm: inner sizes differ");
        expect_err(usg_gemm(c, v, false, b, false, 1, 0), USG_SHAPE, "gemm: a must be 2-D");
        expect_err(usg_gemm(c, a, false, v, false, 1, 0), USG_SHAPE, "gemm: b must be 2-D");
        expect_err(usg_gemm(v, a, false, b, false, 1, 0), USG_SHAPE, "gemm: c must be 2-D");
        expect_err(usg_gemm(c23, a, false, b, false, 1, 0), USG_SHAPE,
                   "gemm: c must be a contiguous (2, 2), got (2, 3)");
        expect_err(usg_gemm(ct, a, false, b, false, 1, 0), USG_SHAPE, "(not contiguous)");
        check(c, dt, 2, SHAPE(2, 2), VALS(1, 1, 1, 1));
        usg_tensor_release(i); usg_tensor_release(ci); usg_tensor_release(x);
        usg_tensor_release(v); usg_tensor_release(ct); usg_tensor_release(c23);
        usg_tensor_release(c);
        usg_tensor_release(a); usg_tensor_release(b);
    }
}

/* ==== Allocation failure ================================================ */

#define NOMEM_LOOP(nfail, out, call)                                           \
    NOMEM_LOOP_CORE(nfail, out, call, 200, usg_tensor_release(out),            \
                    { if (s_ != USG_NOMEM)                                     \
                          fail_msg("allocation %ld failed: status %s (%s)", k_, \
                                   usg_status_name(s_), usg_errmsg());         \
                      assert_null(out); })

static void test_nomem(void **state)
{
    usg_tensor *a = filled(USG_F32, 2, SHAPE(4, 3), 1), *b = filled(USG_F32, 2, SHAPE(3, 5), 2);
    usg_tensor *r = filled(USG_F32, 2, SHAPE(1, 5), 3), *e;
    assert_int_equal(usg_expand(&e, r, 2, SHAPE(3, 5)), USG_OK);
    usg_tensor *a3 = filled(USG_F32, 3, SHAPE(2, 4, 3), 4), *b3 = filled(USG_F32, 3, SHAPE(2, 3, 5), 5);
    usg_tensor *a4 = filled(USG_F32, 4, SHAPE(2, 1, 4, 3), 6);
    usg_tensor *v = filled(USG_F32, 1, SHAPE(3), 7), *c = filled(USG_F32, 1, SHAPE(5), 8);
    usg_tensor *o;
    int n;
    NOMEM_LOOP(n, o, usg_mm(&o, a, b));
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, o, usg_mm(&o, a, e));                 /* the expanded operand is copied */
    assert_true(n >= 7);
    NOMEM_LOOP(n, o, usg_bmm(&o, a3, b3));
    assert_int_equal(n, 3);
    NOMEM_LOOP(n, o, usg_matmul(&o, a, b));
    assert_true(n >= 3);
    NOMEM_LOOP(n, o, usg_matmul(&o, v, b));
    assert_true(n >= 5);
    NOMEM_LOOP(n, o, usg_matmul(&o, a3, b));
    assert_true(n >= 5);
    NOMEM_LOOP(n, o, usg_matmul(&o, a4, b3));           /* broadcast batch: copies */
    assert_true(n >= 10);
    NOMEM_LOOP(n, o, usg_matmul(&o, a, b3));           /* 2-D a over b's batch */
    assert_true(n >= 5);
    NOMEM_LOOP(n, o, usg_addmm(&o, c, a, b, 1, 1));
    assert_true(n >= 4);
    NOMEM_LOOP(n, o, usg_addmm(&o, c, a, e, 1, 1));
    assert_true(n >= 8);

    /* gemm in place: on failure c keeps its values */
    usg_tensor *cc = filled(USG_F32, 2, SHAPE(4, 5), 9), *k0a = filled(USG_F32, 2, SHAPE(4, 0), 1);
    usg_tensor *k0b = filled(USG_F32, 2, SHAPE(0, 5), 1), *keep;
    assert_int_equal(usg_clone(&keep, cc), USG_OK);
    bool same;
    int fails = 0;
    for (long k = 1; k < 64; k++) {
        size_t live = usg_alloc_live_bytes();
        usg_alloc_fail_after(k);
        usg_status s = usg_gemm(cc, a, false, e, false, 1, 1);
        usg_alloc_fail_after(0);
        assert_int_equal(usg_alloc_live_bytes(), live);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
        assert_int_equal(usg_allclose(&same, cc, keep, 0, 0), USG_OK);
        assert_true(same);
        fails++;
    }
    assert_true(fails >= 4);
    assert_int_equal(usg_copy_(keep, cc), USG_OK);
    fails = 0;
    for (long k = 1; k < 64; k++) {                     /* k = 0 scales c by beta */
        size_t live = usg_alloc_live_bytes();
        usg_alloc_fail_after(k);
        usg_status s = usg_gemm(cc, k0a, false, k0b, false, 1, 2);
        usg_alloc_fail_after(0);
        assert_int_equal(usg_alloc_live_bytes(), live);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
        assert_int_equal(usg_allclose(&same, cc, keep, 0, 0), USG_OK);
        assert_true(same);
        fails++;
    }
    assert_true(fails >= 1);
    usg_tensor *twice;
    assert_int_equal(usg_binary_scalar(&twice, USG_MUL, keep, 2, false), USG_OK);
    assert_int_equal(usg_allclose(&same, cc, twice, 0, 0), USG_OK);
    assert_true(same);
    usg_tensor_release(twice);
    usg_tensor_release(keep); usg_tensor_release(cc);
    usg_tensor_release(k0a); usg_tensor_release(k0b);
    usg_tensor_release(a); usg_tensor_release(b); usg_tensor_release(r); usg_tensor_release(e);
    usg_tensor_release(a3); usg_tensor_release(b3); usg_tensor_release(a4);
    usg_tensor_release(v); usg_tensor_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mm_hand),
        cmocka_unit_test(test_mm_odd_shapes),
        cmocka_unit_test(test_mm_transposed),
        cmocka_unit_test(test_mm_narrowed),
        cmocka_unit_test(test_mm_expanded),
        cmocka_unit_test(test_mm_empty),
        cmocka_unit_test(test_mm_errors),
        cmocka_unit_test(test_bmm),
        cmocka_unit_test(test_matmul_vectors),
        cmocka_unit_test(test_matmul_batched),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_addmm),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_ad_view.c -- cmocka tests of host/core/ad_view.c: a finite-difference
 * check (gradcheck.h) of every differentiable view and copy (view, reshape
 * with and without its copy, transpose, permute, narrow and select on each
 * dim, unsqueeze, squeeze, expand, contiguous, clone, to_dtype), chains of
 * views on non-contiguous tensors, the cases that record nothing
 * (contiguous and to_dtype returning the input itself, conversion to i32,
 * no-grad mode), gradients of two views of one g kept apart, forward
 * errors passing through, and allocation failure at every allocation of a
 * forward and a backward leaking nothing.
 */
#include "gradcheck.h"

/* ==== Helpers =========================================================== */

/* An f64 leaf requiring grad holding 0.5, 1.5, 2.5, ... */
static usg_tensor *leaf(int ndim, const int64_t *shape)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, USG_F64, ndim, shape), USG_OK);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) ((double *)t->storage->data)[i] = i + 0.5;
    t->requires_grad = true;
    return t;
}

/* ==== One forward function for every case =============================== */

typedef enum kind {
    VIEW, RESHAPE, TRANSPOSE, PERMUTE, NARROW, SELECT, UNSQUEEZE, SQUEEZE, EXPAND,
    CONTIGUOUS, CLONE, TO_F32_AND_BACK
} kind;

typedef struct view_case {
    kind k;
    int pre_transpose;         /* transpose the input's first two dims first */
    int ndim;                  /* view, reshape, expand: the shape */
    int64_t shape[4];
    int a, b;                  /* dims (transpose, narrow, select, ...) */
    int64_t start, len;
    int perm[4];
} view_case;

static usg_status run_case(usg_tensor **out, usg_tensor *x, const view_case *c)
{
    usg_tensor *tmp = NULL;
    usg_status s;
    switch (c->k) {
    case VIEW: return usg_ad_view(out, x, c->ndim, c->shape);
    case RESHAPE: return usg_ad_reshape(out, x, c->ndim, c->shape);
    case TRANSPOSE: return usg_ad_transpose(out, x, c->a, c->b);
    case PERMUTE: return usg_ad_permute(out, x, c->perm);
    case NARROW: return usg_ad_narrow(out, x, c->a, c->start, c->len);
    case SELECT: return usg_ad_select(out, x, c->a, c->start);
    case UNSQUEEZE: return usg_ad_unsqueeze(out, x, c->a);
    case SQUEEZE: return usg_ad_squeeze(out, x, c->a);
    case EXPAND: return usg_ad_expand(out, x, c->ndim, c->shape);
    case CONTIGUOUS: return usg_ad_contiguous(out, x);
    case CLONE: return usg_ad_clone(out, x);
    case TO_F32_AND_BACK:
        *out = NULL;
        if ((s = usg_ad_to_dtype(&tmp, x, USG_F32)) != USG_OK) return s;
        s = usg_ad_to_dtype(out, tmp, USG_F64);
        usg_tensor_release(tmp);
        return s;
    }
    return USG_ARG;
}

static usg_status f_view(usg_tensor **out, usg_tensor **in, void *vc)
{
    const view_case *c = vc;
    usg_tensor *x = in[0], *t = NULL;
    *out = NULL;
    if (c->pre_transpose) {
        usg_status s = usg_ad_transpose(&t, x, 0, 1);
        if (s != USG_OK) return s;
        x = t;
    }
    usg_status s = run_case(out, x, c);
    usg_tensor_release(t);
    return s;
}

/* The input for a case: (2, 3, 4), or (3, 1, 4) for squeeze and expand. */
static usg_tensor *input_for(const view_case *c)
{
    if (c->k == SQUEEZE || c->k == EXPAND) return leaf(3, SHAPE(3, 1, 4));
    return leaf(3, SHAPE(2, 3, 4));
}

static const view_case CASES[] = {
    {.k = VIEW, .ndim = 2, .shape = {6, 4}},
    {.k = VIEW, .ndim = 3, .shape = {4, -1, 3}},
    {.k = VIEW, .pre_transpose = 1, .ndim = 4, .shape = {3, 2, 2, 2}}, /* the strides allow it */
    {.k = RESHAPE, .ndim = 1, .shape = {24}},
    {.k = RESHAPE, .pre_transpose = 1, .ndim = 4, .shape = {3, 1, 2, 4}},
    {.k = RESHAPE, .pre_transpose = 1, .ndim = 2, .shape = {4, 6}}, /* must copy */
    {.k = TRANSPOSE, .a = 0, .b = 2},
    {.k = TRANSPOSE, .a = -1, .b = 1},
    {.k = TRANSPOSE, .pre_transpose = 1, .a = 1, .b = 2},
    {.k = PERMUTE, .perm = {2, 0, 1}},
    {.k = PERMUTE, .perm = {-1, 1, 0}},
    {.k = PERMUTE, .pre_transpose = 1, .perm = {1, 2, 0}},
    {.k = NARROW, .a = 0, .start = 1, .len = 1},
    {.k = NARROW, .a = 1, .start = 1, .len = 2},
    {.k = NARROW, .a = -1, .start = 0, .len = 3},
    {.k = NARROW, .pre_transpose = 1, .a = 1, .start = 0, .len = 1},
    {.k = NARROW, .a = 2, .start = 2, .len = 0},                     /* empty */
    {.k = SELECT, .a = 0, .start = 1},
    {.k = SELECT, .a = 1, .start = 2},
    {.k = SELECT, .a = -1, .start = 0},
    {.k = SELECT, .pre_transpose = 1, .a = 0, .start = 2},
    {.k = UNSQUEEZE, .a = 0},
    {.k = UNSQUEEZE, .a = 2},
    {.k = UNSQUEEZE, .a = -1},
    {.k = UNSQUEEZE, .pre_transpose = 1, .a = 1},
    {.k = SQUEEZE, .a = 1},
    {.k = SQUEEZE, .a = 0},                                          /* size 3: no-op */
    {.k = SQUEEZE, .a = USG_ALL_DIMS},
    {.k = EXPAND, .ndim = 3, .shape = {3, 5, 4}},
    {.k = EXPAND, .ndim = 4, .shape = {2, 3, -1, 4}},
    {.k = EXPAND, .ndim = 4, .shape = {2, 3, 5, 4}},
    {.k = EXPAND, .pre_transpose = 1, .ndim = 3, .shape = {2, 3, 4}},
    {.k = CONTIGUOUS, .pre_transpose = 1},
    {.k = CLONE},
    {.k = CLONE, .pre_transpose = 1},
};

static void test_gradcheck(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        usg_tensor *in[1] = {input_for(&CASES[i])};
        if (!gradcheck(f_view, 1, in, (void *)&CASES[i], 1e-6, 1e-6)) fail_msg("case %zu", i);
        usg_tensor_release(in[0]);
    }
}

/* through f32: the forward rounds to f32, so a wider step and tolerance */
static void test_to_dtype(void **state)
{
    (void)state;
    view_case c = {.k = TO_F32_AND_BACK, .pre_transpose = 1};
    usg_tensor *in[1] = {leaf(2, SHAPE(2, 3))};
    assert_true(gradcheck(f_view, 1, in, &c, 1e-2, 1e-4));
    assert_int_equal(in[0]->grad->dtype, USG_F64);
    /* the same dtype, contiguous: the input itself, nothing recorded */
    usg_tensor *y = NULL;
    assert_int_equal(usg_ad_to_dtype(&y, in[0], USG_F64), USG_OK);
    assert_ptr_equal(y, in[0]);
    assert_null(y->grad_fn);
    usg_tensor_release(y);
    /* to i32: no gradient can flow */
    assert_int_equal(usg_ad_to_dtype(&y, in[0], USG_I32), USG_OK);
    assert_false(y->requires_grad);
    assert_null(y->grad_fn);
    usg_tensor_release(y);
    /* f32 leaf, f64 result: the gradient comes back f32 */
    usg_tensor *a = NULL, *b = NULL;
    assert_int_equal(usg_tensor_from_doubles(&a, USG_F32, 1, SHAPE(2), VALS(1, 2)), USG_OK);
    a->requires_grad = true;
    assert_int_equal(usg_ad_to_dtype(&b, a, USG_F64), USG_OK);
    assert_non_null(b->grad_fn);
    backward_ones(b);
    assert_int_equal(a->grad->dtype, USG_F32);
    expect_values(a->grad, 2, VALS(1, 1));
    usg_tensor_release(b);
    usg_tensor_release(a);
    usg_tensor_release(in[0]);
}

/* contiguous of a contiguous tensor is the tensor: no node, its own history */
static void test_contiguous_identity(void **state)
{
    (void)state;
    usg_tensor *x = leaf(2, SHAPE(2, 3)), *y = NULL, *z = NULL;
    assert_int_equal(usg_ad_contiguous(&y, x), USG_OK);
    assert_ptr_equal(y, x);
    assert_null(x->grad_fn);
    usg_tensor_release(y);
    /* a non-leaf keeps the node it had */
    assert_int_equal(usg_ad_view(&y, x, 2, SHAPE(3, 2)), USG_OK);
    usg_node *n = y->grad_fn;
    assert_non_null(n);
    assert_int_equal(usg_ad_contiguous(&z, y), USG_OK);
    assert_ptr_equal(z, y);
    assert_ptr_equal(z->grad_fn, n);
    usg_tensor_release(z);
    usg_tensor_release(y);
    usg_tensor_release(x);
}

/* narrow and select put g into their part of a zero tensor */
static void test_slice_values(void **state)
{
    (void)state;
    usg_tensor *x = leaf(2, SHAPE(3, 2)), *y = NULL;
    assert_int_equal(usg_ad_narrow(&y, x, 0, 1, 2), USG_OK);
    backward_ones(y);
    usg_tensor_release(y);
    expect_values(x->grad, 6, VALS(0, 0, 1, 1, 1, 1));
    assert_int_equal(usg_ad_select(&y, x, 1, 0), USG_OK);
    backward_ones(y);
    usg_tensor_release(y);
    expect_values(x->grad, 6, VALS(1, 0, 2, 1, 2, 1));
    usg_tensor_release(x);
}

/* p:view(6) + q:view(6): add hands one g to both views; the two gradients
 * must not share memory, or a later in-place accumulation into one leaf's
 * .grad would change the other's. */
static void test_views_of_one_gradient(void **state)
{
    (void)state;
    static const kind kinds[] = {VIEW, TRANSPOSE, PERMUTE, UNSQUEEZE};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        usg_tensor *p = leaf(2, SHAPE(1, 3)), *q = leaf(2, SHAPE(1, 3));
        view_case c = {.k = kinds[k], .ndim = 1, .shape = {3}, .a = 0, .b = 1, .perm = {1, 0}};
        for (int round = 1; round <= 2; round++) {
            usg_tensor *pv = NULL, *qv = NULL, *y = NULL;
            assert_int_equal(run_case(&pv, p, &c), USG_OK);
            assert_int_equal(run_case(&qv, q, &c), USG_OK);
            assert_int_equal(usg_ad_binary(&y, USG_ADD, pv, qv), USG_OK);
            backward_ones(y);
            expect_values(p->grad, 3, VALS(round, round, round));
            expect_values(q->grad, 3, VALS(round, round, round));
            assert_ptr_not_equal(p->grad->storage, q->grad->storage);
            usg_tensor_release(pv); usg_tensor_release(qv); usg_tensor_release(y);
        }
        usg_tensor_release(p);
        usg_tensor_release(q);
    }
}

static void test_no_record(void **state)
{
    (void)state;
    usg_tensor *x = leaf(3, SHAPE(2, 3, 4)), *y = NULL;
    bool was = usg_set_grad_enabled(false);
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        if (CASES[i].k == SQUEEZE || CASES[i].k == EXPAND) continue;
        assert_int_equal(f_view(&y, &x, (void *)&CASES[i]), USG_OK);
        assert_null(y->grad_fn);
        assert_false(y->requires_grad && y != x);
        usg_tensor_release(y);
    }
    usg_set_grad_enabled(was);
    x->requires_grad = false;
    assert_int_equal(usg_ad_narrow(&y, x, 0, 0, 1), USG_OK);
    assert_null(y->grad_fn);
    usg_tensor_release(y);
    usg_tensor_release(x);
}

static void test_errors(void **state)
{
    (void)state;
    usg_tensor *x = leaf(2, SHAPE(2, 3)), *t = NULL, *y = x;
    assert_int_equal(usg_ad_view(&y, x, 1, SHAPE(5)), USG_SHAPE);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "view"));
    assert_int_equal(usg_ad_transpose(&t, x, 0, 1), USG_OK);
    y = x;
    assert_int_equal(usg_ad_view(&y, t, 1, SHAPE(6)), USG_SHAPE);
    assert_null(y);
    y = x;
    assert_int_equal(usg_ad_narrow(&y, x, 1, 2, 2), USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "narrow"));
    y = x;
    assert_int_equal(usg_ad_select(&y, x, 2, 0), USG_ARG);
    assert_null(y);
    y = x;
    assert_int_equal(usg_ad_permute(&y, x, (const int[]){0, 0}), USG_ARG);
    assert_null(y);
    y = x;
    assert_int_equal(usg_ad_expand(&y, x, 2, SHAPE(3, 3)), USG_SHAPE);
    assert_null(y);
    y = x;
    assert_int_equal(usg_ad_reshape(&y, x, 1, SHAPE(7)), USG_SHAPE);
    assert_null(y);
    usg_tensor_release(t);
    usg_tensor_release(x);
}

/* ==== Allocation failure ================================================ */

static void view_nomem_sweep(const view_case *c)
{
    usg_tensor *x = input_for(c);
    size_t base = usg_alloc_live_bytes();
    long k;
    for (k = 1; k < 1000; k++) {
        usg_tensor *out = x;
        usg_alloc_fail_after(k);
        usg_status s = f_view(&out, &x, (void *)c);
        usg_alloc_fail_after(0);
        if (s == USG_OK) { usg_tensor_release(out); break; }
        assert_int_equal(s, USG_NOMEM);
        assert_null(out);
        assert_int_equal(usg_alloc_live_bytes(), base);
    }
    assert_int_equal(usg_alloc_live_bytes(), base);
    for (k = 1; k < 1000; k++) {
        usg_tensor *out = NULL, *g = NULL;
        assert_int_equal(f_view(&out, &x, (void *)c), USG_OK);
        assert_int_equal(usg_tensor_full(&g, out->dtype, out->ndim, out->shape, 1), USG_OK);
        usg_alloc_fail_after(k);
        usg_status s = usg_backward(out, g, false);
        usg_alloc_fail_after(0);
        usg_tensor_release(out);
        usg_tensor_release(g);
        usg_tensor_release(x->grad);
        x->grad = NULL;
        assert_int_equal(usg_alloc_live_bytes(), base);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
    }
    assert_true(k > 1);
    usg_tensor_release(x);
}

static void test_nomem(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) view_nomem_sweep(&CASES[i]);
    view_case c = {.k = TO_F32_AND_BACK, .pre_transpose = 1};
    view_nomem_sweep(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_to_dtype),
        cmocka_unit_test(test_contiguous_identity),
        cmocka_unit_test(test_slice_values),
        cmocka_unit_test(test_views_of_one_gradient),
        cmocka_unit_test(test_no_record),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

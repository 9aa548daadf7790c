/*
 * test_ad_index.c -- cmocka tests of host/core/ad_index.c: embedding,
 * gather, index_select, cat, stack, split and chunk against central
 * differences (gradcheck.h): repeated ids (gradients add), each dim, base 0
 * and 1, transposed (non-contiguous) inputs and indices, inputs that do not
 * require grad, pieces no gradient reaches, and calls with more inputs or
 * pieces than one node records (the grouped trees, two levels deep); no
 * recording without requires_grad or in no-grad mode; accumulation;
 * allocation failure in the forward's recording and in the backward.
 */
#include "gradcheck.h"

/* ==== Helpers =========================================================== */

static usg_tensor *input(int ndim, const int64_t *shape, double phase)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, USG_F64, ndim, shape), USG_OK);
    double *p = usg_tensor_data(t);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) p[i] = sin(1.3 * (double)i + phase);
    t->requires_grad = true;
    return t;
}

static usg_tensor *ids(int ndim, const int64_t *shape, const double *v)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_from_doubles(&t, USG_I32, ndim, shape, v), USG_OK);
    return t;
}

/* n inputs of `shape`, each requiring grad (an array to free with drop_all). */
static usg_tensor **inputs(int n, int ndim, const int64_t *shape)
{
    usg_tensor **v = test_malloc((size_t)n * sizeof *v);
    for (int k = 0; k < n; k++) v[k] = input(ndim, shape, 0.37 * k);
    return v;
}

static void drop_all(usg_tensor **v, int n)
{
    for (int k = 0; k < n; k++) drop(v[k]);
    test_free(v);
}

/* ==== The ops as gradcheck functions ==================================== */

enum { EMBEDDING, GATHER, INDEX_SELECT, CAT, STACK, SPLIT, CHUNK, NOPS };

typedef struct icase {
    int op, dim, base, n;     /* n: inputs of cat/stack */
    bool trans;               /* transpose the (first) input inside f */
    usg_tensor *index;        /* ids / index */
    int64_t size;             /* split size, chunk count */
    int skip;                 /* split/chunk: leave out every skip-th piece (0: none) */
} icase;

/* Split or chunk in[0], then cat the pieces kept back together along dim
 * (so a piece left out gets no gradient). */
static usg_status pieces_then_cat(usg_tensor **out, usg_tensor *x, const icase *c)
{
    usg_tensor **p = NULL, *keep[256];
    int n = 0, k = 0;
    usg_status s = c->op == SPLIT ? usg_ad_split(&p, &n, x, c->size, c->dim)
                                  : usg_ad_chunk(&p, &n, x, (int)c->size, c->dim);
    if (s != USG_OK) return s;
    for (int i = 0; i < n; i++)
        if (!c->skip || i % c->skip != 1) keep[k++] = p[i];
    s = usg_ad_cat(out, k, keep, c->dim);
    for (int i = 0; i < n; i++) usg_tensor_release(p[i]);
    usg_free(p);
    return s;
}

static usg_status f_index(usg_tensor **out, usg_tensor **in, void *ctx)
{
    const icase *c = ctx;
    usg_tensor *x = in[0], *t = NULL;
    usg_status s = USG_OK;
    *out = NULL;
    if (c->trans && (s = usg_ad_transpose(&t, x, 0, 1)) != USG_OK) return s;
    if (t) x = t;
    switch (c->op) {
    case EMBEDDING: s = usg_ad_embedding(out, x, c->index, c->base); break;
    case GATHER: s = usg_ad_gather(out, x, c->dim, c->index, c->base); break;
    case INDEX_SELECT: s = usg_ad_index_select(out, x, c->dim, c->index, c->base); break;
    case CAT: case STACK: {
        usg_tensor *first = in[0];
        in[0] = x;        /* the transposed first input, when asked */
        s = c->op == CAT ? usg_ad_cat(out, c->n, in, c->dim) : usg_ad_stack(out, c->n, in, c->dim);
        in[0] = first;
        break;
    }
    default: s = pieces_then_cat(out, x, c);
    }
    usg_tensor_release(t);
    return s;
}

static void check(icase c, int n, usg_tensor **in)
{
    if (!gradcheck(f_index, n, in, &c, 1e-6, 1e-7))
        fail_msg("op %d dim %d base %d n %d trans %d size %lld skip %d", c.op, c.dim, c.base,
                 c.n, c.trans, (long long)c.size, c.skip);
}

/* ==== embedding, gather, index_select ================================== */

static void test_embedding(void **state)
{
    usg_tensor *ix0 = ids(2, SHAPE(2, 3), VALS(1, 4, 1, 0, 1, 3));   /* 1 three times */
    usg_tensor *ix1 = ids(2, SHAPE(3, 2), VALS(2, 1, 5, 2, 2, 4));   /* base 1, read as its transpose */
    usg_tensor *ixt = NULL;
    assert_int_equal(usg_transpose(&ixt, ix1, 0, 1), USG_OK);
    for (int tr = 0; tr < 2; tr++) {
        usg_tensor *w = input(2, tr ? SHAPE(3, 5) : SHAPE(5, 3), 0.2);
        check((icase){.op = EMBEDDING, .index = ix0, .trans = tr}, 1, &w);
        check((icase){.op = EMBEDDING, .index = ixt, .base = 1, .trans = tr}, 1, &w);
        drop(w);
    }
    /* by hand: the rows read add up */
    usg_tensor *w = input(2, SHAPE(5, 2), 0), *y = NULL;
    assert_int_equal(usg_ad_embedding(&y, w, ix0, 0), USG_OK);
    assert_string_equal(usg_node_name(y->grad_fn), "embedding");
    backward_sum(y);
    expect_values(w->grad, 10, VALS(1, 1, 3, 3, 0, 0, 1, 1, 1, 1));
    drop(w);
    usg_tensor_release(ix0);
    usg_tensor_release(ix1);
    usg_tensor_release(ixt);
}

static void test_gather(void **state)
{
    usg_tensor *i0 = ids(2, SHAPE(2, 4), VALS(0, 2, 2, 1, 2, 2, 0, 0));   /* dim 0 of (3, 4) */
    usg_tensor *i1 = ids(2, SHAPE(3, 2), VALS(3, 3, 0, 1, 2, 0));         /* dim 1 of (3, 4) */
    usg_tensor *i1b = ids(2, SHAPE(3, 2), VALS(4, 4, 1, 2, 3, 1));        /* the same, base 1 */
    for (int tr = 0; tr < 2; tr++) {
        usg_tensor *x = input(2, tr ? SHAPE(4, 3) : SHAPE(3, 4), 0.4);
        check((icase){.op = GATHER, .dim = 0, .index = i0, .trans = tr}, 1, &x);
        check((icase){.op = GATHER, .dim = 1, .index = i1, .trans = tr}, 1, &x);
        check((icase){.op = GATHER, .dim = -1, .index = i1b, .base = 1, .trans = tr}, 1, &x);
        drop(x);
    }
    usg_tensor *x = input(2, SHAPE(3, 4), 0), *y = NULL;
    assert_int_equal(usg_ad_gather(&y, x, 1, i1, 0), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 12, VALS(0, 0, 0, 2, 1, 1, 0, 0, 1, 0, 1, 0));
    drop(x);
    usg_tensor_release(i0);
    usg_tensor_release(i1);
    usg_tensor_release(i1b);
}

static void test_index_select(void **state)
{
    usg_tensor *i = ids(1, SHAPE(4), VALS(2, 0, 2, 2)), *ib = ids(1, SHAPE(3), VALS(3, 1, 3));
    usg_tensor *i0 = ids(0, NULL, VALS(1));
    for (int tr = 0; tr < 2; tr++) {
        usg_tensor *x = input(2, SHAPE(3, 3), 0.1);
        for (int d = -1; d <= 1; d++) {
            check((icase){.op = INDEX_SELECT, .dim = d, .index = i, .trans = tr}, 1, &x);
            check((icase){.op = INDEX_SELECT, .dim = d, .index = ib, .base = 1, .trans = tr}, 1, &x);
            check((icase){.op = INDEX_SELECT, .dim = d, .index = i0, .trans = tr}, 1, &x);
        }
        drop(x);
    }
    usg_tensor *x = input(3, SHAPE(2, 3, 2), 0.6), *y = NULL;
    check((icase){.op = INDEX_SELECT, .dim = 1, .index = i}, 1, &x);
    usg_tensor_release(x->grad);
    x->grad = NULL;
    assert_int_equal(usg_ad_index_select(&y, x, 1, i, 0), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 12, VALS(1, 1, 0, 0, 3, 3, 1, 1, 0, 0, 3, 3));
    drop(x);
    usg_tensor_release(i);
    usg_tensor_release(ib);
    usg_tensor_release(i0);
}

/* ==== cat and stack ===================================================== */

static void test_cat_stack_dims(void **state)
{
    for (int op = CAT; op <= STACK; op++)
        for (int d = -1; d <= 2; d++) {
            if (op == CAT && d == 2) continue;
            usg_tensor **in = inputs(3, 2, SHAPE(2, 3));
            check((icase){.op = op, .dim = d, .n = 3}, 3, in);
            drop(in[0]);
            in[0] = input(2, SHAPE(3, 2), 0.5);                 /* used as its transpose */
            check((icase){.op = op, .dim = d, .n = 3, .trans = true}, 3, in);
            drop_all(in, 3);
        }
    /* cat of unequal lengths along dim 1; only the middle input requires grad */
    usg_tensor *in[3] = {input(2, SHAPE(2, 1), 0), input(2, SHAPE(2, 3), 1), input(2, SHAPE(2, 2), 2)};
    in[0]->requires_grad = in[2]->requires_grad = false;
    check((icase){.op = CAT, .dim = 1, .n = 3}, 3, in);
    assert_null(in[0]->grad);
    assert_null(in[2]->grad);
    usg_tensor *y = NULL;
    assert_int_equal(usg_ad_cat(&y, 3, in, 1), USG_OK);
    assert_string_equal(usg_node_name(y->grad_fn), "cat");
    usg_tensor_release(y);
    for (int k = 0; k < 3; k++) drop(in[k]);
}

/* More inputs than a node records: groups of 16 (20 inputs), and groups of
 * groups (300 inputs, 19 groups). */
static void test_cat_stack_many(void **state)
{
    const int counts[] = {17, 20, 300};
    for (int op = CAT; op <= STACK; op++)
        for (int i = 0; i < 3; i++) {
            int n = counts[i];
            usg_tensor **in = inputs(n, 1, SHAPE(2));
            in[3]->requires_grad = false;
            check((icase){.op = op, .dim = 0, .n = n}, n, in);
            assert_null(in[3]->grad);
            drop_all(in, n);
        }
    usg_tensor **in = inputs(40, 2, SHAPE(2, 1));
    check((icase){.op = STACK, .dim = 1, .n = 40}, 40, in);
    check((icase){.op = CAT, .dim = -1, .n = 40}, 40, in);
    drop_all(in, 40);
}

/* ==== split and chunk =================================================== */

static void test_split_chunk(void **state)
{
    for (int op = SPLIT; op <= CHUNK; op++)
        for (int skip = 0; skip <= 3; skip += 3)
            for (int tr = 0; tr < 2; tr++) {
                usg_tensor *x = input(2, SHAPE(7, 5), 0.8);     /* transposed: (5, 7) */
                check((icase){.op = op, .dim = 0, .size = op == SPLIT ? 2 : 3, .skip = skip,
                              .trans = tr}, 1, &x);
                check((icase){.op = op, .dim = -1, .size = 3, .skip = skip, .trans = tr}, 1, &x);
                drop(x);
            }
    /* a piece no gradient reaches leaves zeros */
    usg_tensor *x = input(1, SHAPE(5), 0), **p = NULL;
    int n = 0;
    assert_int_equal(usg_ad_split(&p, &n, x, 2, 0), USG_OK);
    assert_int_equal(n, 3);
    assert_string_equal(usg_node_name(p[0]->grad_fn), "split");
    usg_tensor_retain(p[1]);
    backward_sum(p[1]);
    expect_values(x->grad, 5, VALS(0, 0, 1, 1, 0));
    for (int i = 0; i < n; i++) usg_tensor_release(p[i]);
    usg_free(p);
    drop(x);
}

/* More pieces than a node records: 20 pieces (3 groups of 8), 70 pieces
 * (9 groups, grouped again), some left out. */
static void test_split_many(void **state)
{
    const int lens[] = {9, 20, 70};
    for (int i = 0; i < 3; i++)
        for (int skip = 0; skip <= 4; skip += 4) {
            usg_tensor *x = input(2, SHAPE(lens[i], 2), 0.3);
            check((icase){.op = SPLIT, .dim = 0, .size = 1, .skip = skip}, 1, &x);
            check((icase){.op = CHUNK, .dim = 0, .size = lens[i], .skip = skip}, 1, &x);
            drop(x);
        }
}

/* ==== Recording ========================================================= */

/* index: (2, 2) of 0 and 1; index_select takes its first row. */
static icase case_of(int op, usg_tensor *index, usg_tensor *row)
{
    switch (op) {
    case EMBEDDING: return (icase){.op = op, .index = index};
    case GATHER: return (icase){.op = op, .dim = 1, .index = index};
    case INDEX_SELECT: return (icase){.op = op, .dim = 1, .index = row};
    case CAT: case STACK: return (icase){.op = op, .dim = 0, .n = 20};
    default: return (icase){.op = op, .dim = 0, .size = op == SPLIT ? 1 : 20, .skip = 3};
    }
}

static void test_no_node_without_grad(void **state)
{
    usg_tensor *index = ids(2, SHAPE(2, 2), VALS(1, 0, 1, 1)), *row = ids(1, SHAPE(2), VALS(1, 1));
    for (int op = 0; op < NOPS; op++) {
        usg_tensor **in = inputs(20, 2, SHAPE(20, 2)), *y = NULL;
        icase c = case_of(op, index, row);
        int n = op == CAT || op == STACK ? 20 : 1;
        for (int k = 0; k < n; k++) in[k]->requires_grad = false;
        assert_int_equal(f_index(&y, in, &c), USG_OK);
        assert_null(y->grad_fn);
        assert_false(y->requires_grad);
        usg_tensor_release(y);
        for (int k = 0; k < n; k++) in[k]->requires_grad = true;
        bool was = usg_set_grad_enabled(false);
        assert_int_equal(f_index(&y, in, &c), USG_OK);
        assert_null(y->grad_fn);
        usg_tensor_release(y);
        usg_set_grad_enabled(was);
        assert_int_equal(f_index(&y, in, &c), USG_OK);
        assert_non_null(y->grad_fn);
        usg_tensor_release(y);
        drop_all(in, 20);
    }
    usg_tensor_release(index);
    usg_tensor_release(row);
}

static void test_gradients_accumulate(void **state)
{
    usg_tensor *w = input(2, SHAPE(3, 1), 0), *y = NULL;
    usg_tensor *ix = ids(1, SHAPE(3), VALS(2, 2, 0));
    for (int k = 0; k < 2; k++) {
        assert_int_equal(usg_ad_embedding(&y, w, ix, 0), USG_OK);
        backward_sum(y);
    }
    expect_values(w->grad, 3, VALS(2, 0, 4));
    usg_tensor_release(ix);
    drop(w);
}

static void test_errors_pass_through(void **state)
{
    usg_tensor *x = input(2, SHAPE(2, 3), 0), *y = (usg_tensor *)1, **p = (usg_tensor **)1;
    usg_tensor *bad = ids(1, SHAPE(2), VALS(0, 9)), *in[2] = {x, NULL};
    int n = 5;
    assert_int_equal(usg_ad_embedding(&y, x, bad, 0), USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "embedding"));
    assert_int_equal(usg_ad_index_select(&y, x, 1, bad, 0), USG_ARG);
    assert_null(y);
    assert_int_equal(usg_ad_gather(&y, x, 2, bad, 0), USG_ARG);
    assert_null(y);
    assert_int_equal(usg_ad_cat(&y, 2, in, 0), USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "cat"));
    assert_int_equal(usg_ad_stack(&y, 1, in, 3), USG_ARG);
    assert_null(y);
    assert_int_equal(usg_ad_split(&p, &n, x, 0, 0), USG_ARG);
    assert_null(p);
    assert_int_equal(n, 0);
    assert_non_null(strstr(usg_errmsg(), "split"));
    assert_int_equal(usg_ad_chunk(&p, &n, x, 2, 5), USG_ARG);
    assert_null(p);
    usg_tensor_release(bad);
    drop(x);
}

/* ==== Allocation failure ================================================ */

static void test_nomem(void **state)
{
    usg_tensor *index = ids(2, SHAPE(2, 2), VALS(1, 0, 1, 1)), *row = ids(1, SHAPE(2), VALS(1, 1));
    for (int op = 0; op < NOPS; op++) {
        usg_tensor **in = inputs(20, 2, SHAPE(20, 2));
        icase c = case_of(op, index, row);
        c.trans = op == INDEX_SELECT;
        ad_nomem_sweep(f_index, in, 20, &c);
        drop_all(in, 20);
    }
    usg_tensor_release(index);
    usg_tensor_release(row);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_index_select),
        cmocka_unit_test(test_cat_stack_dims),
        cmocka_unit_test(test_cat_stack_many),
        cmocka_unit_test(test_split_chunk),
        cmocka_unit_test(test_split_many),
        cmocka_unit_test(test_no_node_without_grad),
        cmocka_unit_test(test_gradients_accumulate),
        cmocka_unit_test(test_errors_pass_through),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

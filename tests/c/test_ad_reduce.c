/*
 * test_ad_reduce.c -- cmocka tests of host/core/ad_reduce.c: every
 * differentiable reduction against central differences (gradcheck.h) over
 * each dim, keepdim, transposed (non-contiguous) inputs, 3-D middle dims and
 * 0-dim inputs; the options (var/std corrections, norm's p); hand-computed
 * gradients where a rule is chosen (prod with zeros, ties of max and the
 * inf-norm, std of a constant); no recording without requires_grad or in
 * no-grad mode; accumulation; and allocation failure in the forward's
 * recording and in the backward, without leaks.
 */
#include "gradcheck.h"

/* ==== Helpers =========================================================== */

/* A contiguous f64 input requiring grad, filled with distinct values of
 * both signs and no zeros or ties (so max, min and |x| are smooth there). */
static usg_tensor *input(int ndim, const int64_t *shape, double phase)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, USG_F64, ndim, shape), USG_OK);
    double *p = usg_tensor_data(t);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++)
        p[i] = 0.3 + 1.7 * sin(1.3 * (double)i + phase) + 0.01 * (double)i;
    t->requires_grad = true;
    return t;
}

static usg_tensor *from(int ndim, const int64_t *shape, const double *v, bool grad)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_from_doubles(&t, USG_F64, ndim, shape, v), USG_OK);
    t->requires_grad = grad;
    return t;
}

/* ==== The reductions as gradcheck functions ============================= */

enum { SUM, MEAN, PROD, MAX, MIN, VAR, STD, LSE, NORM, NOPS };
static const char *const names[NOPS] = {"sum", "mean", "prod", "max", "min", "var", "std",
                                        "logsumexp", "norm"};

typedef struct rcase {
    int op, dim;
    bool keepdim, trans;    /* trans: reduce the transpose of the input (a view) */
    int correction;
    double p;
} rcase;

static usg_status reduce_case(usg_tensor **out, usg_tensor *x, const rcase *c)
{
    switch (c->op) {
    case SUM: return usg_ad_sum(out, x, c->dim, c->keepdim);
    case MEAN: return usg_ad_mean(out, x, c->dim, c->keepdim);
    case PROD: return usg_ad_prod(out, x, c->dim, c->keepdim);
    case MAX: return usg_ad_max(out, NULL, x, c->dim, c->keepdim, 0);
    case MIN: return usg_ad_min(out, NULL, x, c->dim, c->keepdim, 1);
    case VAR: return usg_ad_var(out, x, c->dim, c->keepdim, c->correction);
    case STD: return usg_ad_std(out, x, c->dim, c->keepdim, c->correction);
    case LSE: return usg_ad_logsumexp(out, x, c->dim, c->keepdim);
    default: return usg_ad_norm(out, x, c->p, c->dim, c->keepdim);
    }
}

static usg_status f_reduce(usg_tensor **out, usg_tensor **in, void *ctx)
{
    const rcase *c = ctx;
    usg_tensor *x = in[0], *t = NULL;
    *out = NULL;
    if (c->trans) {
        usg_status s = usg_ad_transpose(&t, x, 0, 1);
        if (s != USG_OK) return s;
        x = t;
    }
    usg_status s = reduce_case(out, x, c);
    usg_tensor_release(t);
    return s;
}

static void check(rcase c, int ndim, const int64_t *shape)
{
    usg_tensor *x = input(ndim, shape, 0.4 * c.op);
    if (!gradcheck(f_reduce, 1, &x, &c, 1e-6, 1e-6))
        fail_msg("%s: dim %d keepdim %d trans %d correction %d p %g", names[c.op], c.dim,
                 c.keepdim, c.trans, c.correction, c.p);
    drop(x);
}

/* Every op over all dims, each dim (also negative), keepdim or not, on a
 * contiguous input and on a transposed view. */
static void test_every_op_dim_keepdim_layout(void **state)
{
    const int dims[] = {USG_ALL_DIMS, 0, 1, -1};
    for (int op = 0; op < NOPS; op++)
        for (int d = 0; d < 4; d++)
            for (int kd = 0; kd < 2; kd++)
                for (int tr = 0; tr < 2; tr++)
                    check((rcase){op, dims[d], kd, tr, 1, 2.0}, 2, SHAPE(3, 4));
}

/* The middle dim of a 3-D tensor: lanes `inner` apart, several outers. */
static void test_middle_dim_of_3d(void **state)
{
    for (int op = 0; op < NOPS; op++) {
        check((rcase){op, 1, false, false, 1, 2.0}, 3, SHAPE(2, 3, 4));
        check((rcase){op, -2, true, true, 1, 2.0}, 3, SHAPE(3, 2, 4));  /* trans: (2, 3, 4) */
    }
}

/* A 0-dim input: dim 0 and -1 mean the element itself. */
static void test_zero_dim_input(void **state)
{
    for (int op = 0; op < NOPS; op++) {
        if (op == VAR || op == STD) continue;     /* one element: var divides by 0 */
        check((rcase){op, 0, false, false, 1, 2.0}, 0, NULL);
        check((rcase){op, -1, true, false, 1, 2.0}, 0, NULL);
        check((rcase){op, USG_ALL_DIMS, false, false, 1, 2.0}, 0, NULL);
    }
}

static void test_var_std_corrections(void **state)
{
    for (int corr = 0; corr <= 2; corr++)
        for (int op = VAR; op <= STD; op++) {
            check((rcase){op, 1, false, false, corr, 0}, 2, SHAPE(3, 4));
            check((rcase){op, USG_ALL_DIMS, false, true, corr, 0}, 2, SHAPE(3, 4));
        }
}

static void test_norm_orders(void **state)
{
    const double ps[] = {1, 2, 3, 0.5, 1.5, INFINITY};
    for (int i = 0; i < 6; i++) {
        check((rcase){NORM, USG_ALL_DIMS, false, false, 0, ps[i]}, 2, SHAPE(3, 4));
        check((rcase){NORM, 0, true, true, 0, ps[i]}, 2, SHAPE(3, 4));
        check((rcase){NORM, -1, false, false, 0, ps[i]}, 3, SHAPE(2, 3, 2));
    }
}

/* ==== Rules chosen at the kinks ========================================= */

/* d prod / dx_k = product of the others: with one zero only the zero's
 * slot is nonzero, with two every slot is 0. */
static void test_prod_with_zeros(void **state)
{
    usg_tensor *x = from(2, SHAPE(3, 3), VALS(2, 0, 3, 0, 5, 0, 1, 2, 4), true), *y = NULL;
    assert_int_equal(usg_ad_prod(&y, x, 1, false), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 9, VALS(0, 6, 0, 0, 0, 0, 8, 4, 2));
    /* and the finite differences agree (prod is linear in each entry) */
    rcase c = {PROD, 1, false, false, 0, 0};
    assert_true(gradcheck(f_reduce, 1, &x, &c, 1e-6, 1e-8));
    c.dim = USG_ALL_DIMS;
    assert_true(gradcheck(f_reduce, 1, &x, &c, 1e-6, 1e-8));
    drop(x);
}

/* max/min send the gradient to the one element the forward picked (the
 * first on ties), also with USG_ALL_DIMS; the indices carry no graph. */
static void test_max_min_ties_and_indices(void **state)
{
    usg_tensor *x = from(2, SHAPE(2, 3), VALS(1, 5, 5, -2, -2, 0), true), *v = NULL, *ix = NULL;
    assert_int_equal(usg_ad_max(&v, &ix, x, 1, false, 1), USG_OK);
    assert_null(ix->grad_fn);
    assert_false(ix->requires_grad);
    expect_values(ix, 2, VALS(2, 3));
    usg_tensor_release(ix);
    backward_sum(v);
    expect_values(x->grad, 6, VALS(0, 1, 0, 0, 0, 1));
    usg_tensor_release(x->grad);
    x->grad = NULL;

    assert_int_equal(usg_ad_min(&v, NULL, x, USG_ALL_DIMS, false, 0), USG_OK);
    assert_string_equal(usg_node_name(v->grad_fn), "min");
    backward_sum(v);
    expect_values(x->grad, 6, VALS(0, 0, 0, 1, 0, 0));
    usg_tensor_release(x->grad);
    x->grad = NULL;

    /* indices alone: nothing differentiable, nothing recorded */
    assert_int_equal(usg_ad_max(NULL, &ix, x, 0, true, 0), USG_OK);
    assert_null(ix->grad_fn);
    usg_tensor_release(ix);
    drop(x);
}

/* The inf-norm shares g among the tied largest |x|, with their signs; the
 * 2-norm and the std of all zeros give 0 rather than 0/0. */
static void test_norm_ties_and_zero_cases(void **state)
{
    usg_tensor *x = from(1, SHAPE(4), VALS(3, -3, 1, 2), true), *y = NULL;
    assert_int_equal(usg_ad_norm(&y, x, INFINITY, USG_ALL_DIMS, false), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 4, VALS(0.5, -0.5, 0, 0));
    drop(x);

    x = from(1, SHAPE(3), VALS(0, 0, 0), true);
    assert_int_equal(usg_ad_norm(&y, x, 2, 0, false), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 3, VALS(0, 0, 0));
    usg_tensor_release(x->grad);
    x->grad = NULL;
    assert_int_equal(usg_ad_norm(&y, x, 3, 0, false), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 3, VALS(0, 0, 0));
    drop(x);

    x = from(1, SHAPE(3), VALS(2, 2, 2), true);
    assert_int_equal(usg_ad_std(&y, x, 0, false, 1), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 3, VALS(0, 0, 0));
    drop(x);
}

/* Hand-computed: d mean / dx = 1/n; d var / dx = 2 (x - m) / (n - 1). */
static void test_values_by_hand(void **state)
{
    usg_tensor *x = from(2, SHAPE(2, 2), VALS(1, 2, 3, 5), true), *y = NULL;
    assert_int_equal(usg_ad_mean(&y, x, 0, true), USG_OK);
    backward_sum(y);
    expect_values(x->grad, 4, VALS(0.5, 0.5, 0.5, 0.5));
    usg_tensor_release(x->grad);
    x->grad = NULL;
    assert_int_equal(usg_ad_var(&y, x, 1, false, 1), USG_OK);   /* rows (1,2), (3,5) */
    backward_sum(y);
    expect_values(x->grad, 4, VALS(-1, 1, -2, 2));
    drop(x);
}

/* An empty reduced dim: the gradient is empty too. */
static void test_empty_reduced_dim(void **state)
{
    for (int op = SUM; op <= MEAN; op++) {
        usg_tensor *x = input(2, SHAPE(0, 3), 0), *y = NULL;
        rcase c = {op, 0, false, false, 1, 2};
        assert_int_equal(reduce_case(&y, x, &c), USG_OK);
        assert_true(y->requires_grad);
        backward_sum(y);
        assert_non_null(x->grad);
        assert_int_equal(x->grad->ndim, 2);
        assert_int_equal(x->grad->shape[0], 0);
        assert_int_equal(x->grad->shape[1], 3);
        drop(x);
    }
}

/* ==== Recording ========================================================= */

static void test_no_node_without_grad(void **state)
{
    usg_tensor *x = input(2, SHAPE(2, 3), 0), *y = NULL;
    x->requires_grad = false;
    for (int op = 0; op < NOPS; op++) {
        assert_int_equal(reduce_case(&y, x, &(rcase){op, 1, false, false, 1, 2}), USG_OK);
        assert_null(y->grad_fn);
        assert_false(y->requires_grad);
        usg_tensor_release(y);
    }
    x->requires_grad = true;
    bool was = usg_set_grad_enabled(false);
    for (int op = 0; op < NOPS; op++) {
        assert_int_equal(reduce_case(&y, x, &(rcase){op, USG_ALL_DIMS, false, false, 1, 2}),
                         USG_OK);
        assert_null(y->grad_fn);
        usg_tensor_release(y);
    }
    usg_set_grad_enabled(was);
    for (int op = 0; op < NOPS; op++) {
        assert_int_equal(reduce_case(&y, x, &(rcase){op, 0, true, false, 1, 2}), USG_OK);
        assert_non_null(y->grad_fn);
        assert_string_equal(usg_node_name(y->grad_fn), names[op]);
        usg_tensor_release(y);
    }
    drop(x);
}

/* An i32 input never needs a gradient, even when flagged. */
static void test_integer_input_records_nothing(void **state)
{
    usg_tensor *x = NULL, *y = NULL;
    assert_int_equal(usg_tensor_from_doubles(&x, USG_I32, 1, SHAPE(3), VALS(1, 2, 3)), USG_OK);
    x->requires_grad = true;
    assert_int_equal(usg_ad_sum(&y, x, 0, false), USG_OK);
    assert_null(y->grad_fn);
    usg_tensor_release(y);
    assert_int_equal(usg_ad_mean(&y, x, 0, false), USG_OK);
    assert_null(y->grad_fn);
    usg_tensor_release(y);
    assert_int_equal(usg_ad_max(&y, NULL, x, 0, false, 0), USG_OK);
    assert_null(y->grad_fn);
    usg_tensor_release(y);
    usg_tensor_release(x);
}

static void test_gradients_accumulate(void **state)
{
    usg_tensor *x = from(1, SHAPE(3), VALS(1, 2, 3), true), *y = NULL;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(usg_ad_logsumexp(&y, x, 0, false), USG_OK);
        backward_sum(y);
    }
    double z = exp(1) + exp(2) + exp(3);
    expect_values(x->grad, 3, VALS(2 * exp(1) / z, 2 * exp(2) / z, 2 * exp(3) / z));
    drop(x);
}

/* Errors of the forward come through unchanged, with *out NULL. */
static void test_errors_pass_through(void **state)
{
    usg_tensor *x = input(2, SHAPE(2, 3), 0), *y = (usg_tensor *)1, *ix = (usg_tensor *)1;
    assert_int_equal(usg_ad_sum(&y, x, 2, false), USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "sum"));
    assert_int_equal(usg_ad_var(&y, x, 0, false, -1), USG_ARG);
    assert_null(y);
    assert_int_equal(usg_ad_norm(&y, x, -1, 0, false), USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "norm"));
    assert_int_equal(usg_ad_max(NULL, NULL, x, 0, false, 0), USG_ARG);
    usg_tensor *e = input(2, SHAPE(0, 2), 0);
    y = (usg_tensor *)1;
    assert_int_equal(usg_ad_min(&y, &ix, e, 0, false, 0), USG_ARG);
    assert_null(y);
    assert_null(ix);
    drop(e);
    drop(x);
}

/* ==== Allocation failure ================================================ */

/* Every allocation of the forward-and-record fails in turn: NOMEM, *out
 * NULL, nothing leaked. Then every allocation of the backward. */
static void test_nomem(void **state)
{
    for (int op = 0; op < NOPS; op++) {
        usg_tensor *x = input(2, SHAPE(3, 4), 0.1);
        rcase c = {op, 1, false, op == NORM, 1, op == NORM ? 3.0 : 2.0};
        ad_nomem_sweep(f_reduce, &x, 1, &c);
        drop(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_dim_keepdim_layout),
        cmocka_unit_test(test_middle_dim_of_3d),
        cmocka_unit_test(test_zero_dim_input),
        cmocka_unit_test(test_var_std_corrections),
        cmocka_unit_test(test_norm_orders),
        cmocka_unit_test(test_prod_with_zeros),
        cmocka_unit_test(test_max_min_ties_and_indices),
        cmocka_unit_test(test_norm_ties_and_zero_cases),
        cmocka_unit_test(test_values_by_hand),
        cmocka_unit_test(test_empty_reduced_dim),
        cmocka_unit_test(test_no_node_without_grad),
        cmocka_unit_test(test_integer_input_records_nothing),
        cmocka_unit_test(test_gradients_accumulate),
        cmocka_unit_test(test_errors_pass_through),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_ad_math.c -- cmocka tests of host/core/ad_math.c: a finite-difference
 * check (gradcheck.h) of every differentiable elementwise op and product in
 * every form (broadcast shapes, 0-dim operands, transposed and therefore
 * non-contiguous inputs and gradients, scalars on either side, every case
 * of matmul), hand-computed gradients where the conventions matter (ties
 * of maximum/minimum, clamp at its bounds, pow at 0, mixed dtypes), and the
 * bookkeeping: no node without requires_grad or in no-grad mode, none for
 * integer results, accumulation over two backwards, forward errors passing
 * through, and allocation failure at every allocation of a forward and a
 * backward leaking nothing.
 */
#include "gradcheck.h"

#define EPS 1e-6
#define TOL 1e-6

/* ==== Helpers =========================================================== */

/* An f64 leaf requiring grad with values spread over [lo, hi] (a fixed
 * pseudo-random sequence, so no two elements tie). */
static usg_tensor *leaf(int ndim, const int64_t *shape, double lo, double hi, unsigned seed)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, USG_F64, ndim, shape), USG_OK);
    uint32_t x = 2463534242u + seed * 7919u;
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        ((double *)t->storage->data)[i] = lo + (hi - lo) * (x % 100000) / 100000.0;
    }
    t->requires_grad = true;
    return t;
}

static void release_all(int n, usg_tensor **ts)
{
    for (int i = 0; i < n; i++) usg_tensor_release(ts[i]);
}

/* t's values (flat, any layout) are v. */
static void expect_vals(const usg_tensor *t, int64_t n, const double *v)
{
    assert_non_null(t);
    assert_int_equal(usg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) near(usg_tensor_get_flat(t, i), v[i], 1e-12);
}

/* Transpose the last two dims of x (a non-contiguous view recorded as an op). */
static usg_status tr(usg_tensor **out, usg_tensor *x) { return usg_ad_transpose(out, x, -1, -2); }

/* ==== Forward functions for gradcheck =================================== */

typedef struct bin_case { usg_binop op; int transpose_a, transpose_out; } bin_case;

static usg_status f_binary(usg_tensor **out, usg_tensor **in, void *vc)
{
    const bin_case *c = vc;
    usg_tensor *a = in[0], *at = NULL, *y = NULL;
    usg_status s = USG_OK;
    *out = NULL;
    if (c->transpose_a) { if ((s = tr(&at, a)) != USG_OK) return s; a = at; }
    s = usg_ad_binary(c->transpose_out ? &y : out, c->op, a, in[1]);
    if (s == USG_OK && c->transpose_out) s = tr(out, y);
    usg_tensor_release(at);
    usg_tensor_release(y);
    return s;
}

typedef struct sc_case { usg_binop op; double s; bool first; } sc_case;

static usg_status f_scalar(usg_tensor **out, usg_tensor **in, void *vc)
{
    const sc_case *c = vc;
    return usg_ad_binary_scalar(out, c->op, in[0], c->s, c->first);
}

/* unary op, then transposed when ctx's flag says so (g reaches it strided) */
typedef struct un_case { usg_unop op; int transpose_out; } un_case;

static usg_status f_unary(usg_tensor **out, usg_tensor **in, void *vc)
{
    const un_case *c = vc;
    usg_tensor *y = NULL;
    *out = NULL;
    usg_status s = usg_ad_unary(c->transpose_out ? &y : out, c->op, in[0]);
    if (s == USG_OK && c->transpose_out) s = tr(out, y);
    usg_tensor_release(y);
    return s;
}

static usg_status f_clamp(usg_tensor **out, usg_tensor **in, void *vc)
{
    const double *b = vc;
    return usg_ad_clamp(out, in[0], b[0], b[1]);
}

static usg_status f_where(usg_tensor **out, usg_tensor **in, void *cond)
{
    return usg_ad_where(out, cond, in[0], in[1]);
}

typedef usg_status (*prod_fn)(usg_tensor **, usg_tensor *, usg_tensor *);
typedef struct prod_case { prod_fn f; int transpose_a, transpose_b; } prod_case;

static usg_status f_prod(usg_tensor **out, usg_tensor **in, void *vc)
{
    const prod_case *c = vc;
    usg_tensor *a = in[0], *b = in[1], *at = NULL, *bt = NULL;
    usg_status s = USG_OK;
    *out = NULL;
    if (c->transpose_a && (s = tr(&at, a)) == USG_OK) a = at;
    if (s == USG_OK && c->transpose_b && (s = tr(&bt, b)) == USG_OK) b = bt;
    if (s == USG_OK) s = c->f(out, a, b);
    usg_tensor_release(at);
    usg_tensor_release(bt);
    return s;
}

typedef struct addmm_case { double beta, alpha; } addmm_case;

static usg_status f_addmm(usg_tensor **out, usg_tensor **in, void *vc)
{
    const addmm_case *c = vc;
    return usg_ad_addmm(out, in[0], in[1], in[2], c->beta, c->alpha);
}

/* ==== Binary ops ======================================================== */

static const usg_binop DIFF_OPS[] = {USG_ADD, USG_SUB, USG_MUL, USG_DIV, USG_POW,
                                     USG_MAXIMUM, USG_MINIMUM};

/* every op over: equal shapes, (2,3) x (3), (2,1) x (1,3), (4) x 0-dim,
 * a transposed, and the output transposed */
static void test_binary_gradcheck(void **state)
{
    (void)state;
    static const struct { int na, nb; int64_t sa[2], sb[2]; int ta, to; } shapes[] = {
        {2, 2, {2, 3}, {2, 3}, 0, 0}, {2, 1, {2, 3}, {3}, 0, 0}, {2, 2, {2, 1}, {1, 3}, 0, 0},
        {1, 0, {4}, {0}, 0, 0}, {0, 1, {0}, {4}, 0, 0}, {2, 2, {3, 2}, {2, 3}, 1, 0},
        {2, 2, {2, 3}, {2, 3}, 0, 1},
    };
    for (size_t k = 0; k < sizeof DIFF_OPS / sizeof *DIFF_OPS; k++) {
        for (size_t j = 0; j < sizeof shapes / sizeof *shapes; j++) {
            bin_case c = {DIFF_OPS[k], shapes[j].ta, shapes[j].to};
            /* pow wants a positive base; the rest mixed signs */
            double lo = DIFF_OPS[k] == USG_POW ? 0.5 : -2, hi = 2;
            usg_tensor *in[2] = {leaf(shapes[j].na, shapes[j].sa, lo, hi, 1),
                                 leaf(shapes[j].nb, shapes[j].sb, DIFF_OPS[k] == USG_DIV ? 0.5 : lo,
                                      hi, 2)};
            if (!gradcheck(f_binary, 2, in, &c, EPS, TOL))
                fail_msg("%s, shape case %zu", usg_binop_name(DIFF_OPS[k]), j);
            release_all(2, in);
        }
    }
}

/* only one side requires grad: the other gets none */
static void test_binary_one_side(void **state)
{
    (void)state;
    usg_tensor *a = leaf(1, SHAPE(3), 1, 2, 1), *b = leaf(1, SHAPE(3), 1, 2, 2), *y = NULL;
    b->requires_grad = false;
    assert_int_equal(usg_ad_binary(&y, USG_MUL, a, b), USG_OK);
    assert_true(y->requires_grad);
    backward_ones(y);
    expect_vals(a->grad, 3, (double *)b->storage->data);
    assert_null(b->grad);
    release_all(3, (usg_tensor *[]){a, b, y});
}

static void test_binary_values(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 3));
    usg_tensor *b = mk(USG_F64, 1, SHAPE(3), VALS(4, 5, 6));
    usg_tensor *y = NULL;
    a->requires_grad = b->requires_grad = true;
    /* y = a / b: dL/da = 1/b, dL/db = -a/b^2 */
    assert_int_equal(usg_ad_binary(&y, USG_DIV, a, b), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(1 / 4.0, 1 / 5.0, 1 / 6.0));
    expect_vals(b->grad, 3, VALS(-1 / 16.0, -2 / 25.0, -3 / 36.0));
    usg_tensor_release(y);
    /* the second backward adds: y = a - b gives +1 and -1 more */
    assert_int_equal(usg_ad_binary(&y, USG_SUB, a, b), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(1 + 1 / 4.0, 1 + 1 / 5.0, 1 + 1 / 6.0));
    expect_vals(b->grad, 3, VALS(-1 - 1 / 16.0, -1 - 2 / 25.0, -1 - 3 / 36.0));
    release_all(3, (usg_tensor *[]){a, b, y});

    /* broadcast: (2, 3) + (3): b's gradient sums over the rows */
    a = mk(USG_F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    b = mk(USG_F64, 1, SHAPE(3), VALS(1, 1, 1));
    a->requires_grad = b->requires_grad = true;
    assert_int_equal(usg_ad_binary(&y, USG_ADD, a, b), USG_OK);
    backward_ones(y);
    expect_vals(b->grad, 3, VALS(2, 2, 2));
    assert_int_equal(b->grad->ndim, 1);
    expect_vals(a->grad, 6, VALS(1, 1, 1, 1, 1, 1));
    release_all(3, (usg_tensor *[]){a, b, y});
}

/* maximum/minimum: the chosen side gets g, ties split it half and half */
static void test_maximum_ties(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 3));
    usg_tensor *b = mk(USG_F64, 1, SHAPE(3), VALS(3, 2, 1));
    usg_tensor *y = NULL;
    a->requires_grad = b->requires_grad = true;
    assert_int_equal(usg_ad_binary(&y, USG_MAXIMUM, a, b), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(0, 0.5, 1));
    expect_vals(b->grad, 3, VALS(1, 0.5, 0));
    usg_tensor_release(y);
    usg_tensor_release(a->grad); a->grad = NULL;
    usg_tensor_release(b->grad); b->grad = NULL;
    assert_int_equal(usg_ad_binary(&y, USG_MINIMUM, a, b), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(1, 0.5, 0));
    expect_vals(b->grad, 3, VALS(0, 0.5, 1));
    release_all(3, (usg_tensor *[]){a, b, y});
}

/* pow at a zero base: d/da of 0^0 and d/db of 0^b (b >= 0) are 0, not NaN */
static void test_pow_zero(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(0, 0, 2));
    usg_tensor *b = mk(USG_F64, 1, SHAPE(3), VALS(0, 2, 3));
    usg_tensor *y = NULL;
    a->requires_grad = b->requires_grad = true;
    assert_int_equal(usg_ad_binary(&y, USG_POW, a, b), USG_OK);
    backward_ones(y);
    /* d/da = b a^(b-1): 0, 2*0, 3*4; d/db = a^b log a: 0, 0, 8 log 2 */
    expect_vals(a->grad, 3, VALS(0, 0, 12));
    expect_vals(b->grad, 3, VALS(0, 0, 8 * log(2)));
    release_all(3, (usg_tensor *[]){a, b, y});
}

/* f32 (requires grad) times f64: the product is f64, a's gradient f32 */
static void test_mixed_dtypes(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F32, 1, SHAPE(2), VALS(1, 2));
    usg_tensor *b = mk(USG_F64, 2, SHAPE(2, 2), VALS(0.5, 3, 4, 5));
    usg_tensor *y = NULL;
    a->requires_grad = true;
    assert_int_equal(usg_ad_binary(&y, USG_MUL, a, b), USG_OK);
    assert_int_equal(y->dtype, USG_F64);
    backward_ones(y);
    assert_int_equal(a->grad->dtype, USG_F32);
    assert_int_equal(a->grad->ndim, 1);
    expect_vals(a->grad, 2, VALS(4.5, 8));
    release_all(3, (usg_tensor *[]){a, b, y});
}

/* comparisons give i32 and record nothing */
static void test_comparisons(void **state)
{
    (void)state;
    usg_tensor *a = leaf(1, SHAPE(3), -1, 1, 1), *b = leaf(1, SHAPE(3), -1, 1, 2), *y = NULL;
    for (usg_binop op = USG_EQ; op <= USG_GE; op++) {
        assert_int_equal(usg_ad_binary(&y, op, a, b), USG_OK);
        assert_int_equal(y->dtype, USG_I32);
        assert_false(y->requires_grad);
        assert_null(y->grad_fn);
        usg_tensor_release(y);
        assert_int_equal(usg_ad_binary_scalar(&y, op, a, 0.5, false), USG_OK);
        assert_null(y->grad_fn);
        usg_tensor_release(y);
    }
    release_all(2, (usg_tensor *[]){a, b});
}

/* ==== With a scalar ===================================================== */

static void test_scalar_gradcheck(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof DIFF_OPS / sizeof *DIFF_OPS; k++) {
        for (int first = 0; first < 2; first++) {
            usg_binop op = DIFF_OPS[k];
            sc_case c = {op, op == USG_POW ? 1.7 : 0.3, first};
            /* a^s and s/a want a away from 0 */
            bool positive = op == USG_POW || (op == USG_DIV && first);
            usg_tensor *in[1] = {leaf(2, SHAPE(2, 3), positive ? 0.5 : -2, 2, 3)};
            if (!gradcheck(f_scalar, 1, in, &c, EPS, TOL))
                fail_msg("%s with scalar %s", usg_binop_name(op), first ? "first" : "second");
            usg_tensor_release(in[0]);
        }
    }
}

static void test_scalar_values(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(1, 2, 4)), *y = NULL;
    a->requires_grad = true;
    /* y = 2 / a: dy/da = -2/a^2 */
    assert_int_equal(usg_ad_binary_scalar(&y, USG_DIV, a, 2, true), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(-2, -0.5, -0.125));
    usg_tensor_release(y);
    usg_tensor_release(a->grad); a->grad = NULL;
    /* y = 2^a: dy/da = 2^a log 2 */
    assert_int_equal(usg_ad_binary_scalar(&y, USG_POW, a, 2, true), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(2 * log(2), 4 * log(2), 16 * log(2)));
    usg_tensor_release(y);
    usg_tensor_release(a->grad); a->grad = NULL;
    /* y = maximum(a, 2) and maximum(2, a): 0, 1/2 (tie), 1 either way */
    for (int first = 0; first < 2; first++) {
        assert_int_equal(usg_ad_binary_scalar(&y, USG_MAXIMUM, a, 2, first), USG_OK);
        backward_ones(y);
        expect_vals(a->grad, 3, VALS(0, 0.5, 1));
        usg_tensor_release(y);
        usg_tensor_release(a->grad); a->grad = NULL;
        assert_int_equal(usg_ad_binary_scalar(&y, USG_MINIMUM, a, 2, first), USG_OK);
        backward_ones(y);
        expect_vals(a->grad, 3, VALS(1, 0.5, 0));
        usg_tensor_release(y);
        usg_tensor_release(a->grad); a->grad = NULL;
    }
    /* y = 0^a: 0 for a >= 0, as PyTorch's mask */
    assert_int_equal(usg_ad_binary_scalar(&y, USG_POW, a, 0, true), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(0, 0, 0));
    release_all(2, (usg_tensor *[]){a, y});
}

/* ==== Unary ops and clamp =============================================== */

static void test_unary_gradcheck(void **state)
{
    (void)state;
    static const struct { usg_unop op; double lo, hi; } ops[] = {
        {USG_NEG, -2, 2}, {USG_ABS, 0.1, 2}, {USG_EXP, -2, 2}, {USG_LOG, 0.1, 3},
        {USG_SQRT, 0.1, 3}, {USG_TANH, -2, 2}, {USG_SIGMOID, -3, 3}, {USG_RELU, 0.1, 2},
        {USG_LOG1P, -0.5, 3}, {USG_SIN, -3, 3}, {USG_COS, -3, 3}, {USG_SQUARE, -2, 2},
        {USG_RECIPROCAL, 0.2, 2},
    };
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        for (int t = 0; t < 2; t++) {
            un_case c = {ops[k].op, t};
            usg_tensor *in[1] = {leaf(2, SHAPE(2, 3), ops[k].lo, ops[k].hi, 4)};
            /* abs and relu on the negative side too */
            if (ops[k].op == USG_ABS || ops[k].op == USG_RELU)
                for (int i = 0; i < 3; i++) ((double *)in[0]->storage->data)[i] *= -1;
            if (!gradcheck(f_unary, 1, in, &c, EPS, TOL))
                fail_msg("%s%s", usg_unop_name(ops[k].op), t ? " (output transposed)" : "");
            usg_tensor_release(in[0]);
        }
    }
}

static void test_unary_values(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F64, 1, SHAPE(3), VALS(-1, 0, 2)), *y = NULL;
    a->requires_grad = true;
    /* relu and abs at 0 give 0, as PyTorch */
    assert_int_equal(usg_ad_unary(&y, USG_RELU, a), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(0, 0, 1));
    usg_tensor_release(y);
    usg_tensor_release(a->grad); a->grad = NULL;
    assert_int_equal(usg_ad_unary(&y, USG_ABS, a), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 3, VALS(-1, 0, 1));
    usg_tensor_release(y);
    /* piecewise-constant ops record nothing */
    const usg_unop flat[] = {USG_SIGN, USG_FLOOR, USG_CEIL, USG_ROUND};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(usg_ad_unary(&y, flat[k], a), USG_OK);
        assert_false(y->requires_grad);
        assert_null(y->grad_fn);
        usg_tensor_release(y);
    }
    usg_tensor_release(a);
}

/* The f32 backwards of relu, tanh, sigmoid and exp take a vectorized path
 * when the gradient is contiguous: its bits are those of the general path
 * (a transposed gradient) and of g * f'(y) in double rounded once. */
static void test_unary_f32_paths(void **state)
{
    (void)state;
    const usg_unop ops[] = {USG_RELU, USG_TANH, USG_SIGMOID, USG_EXP};
    for (int k = 0; k < 4; k++) {
        usg_tensor *x64 = leaf(2, SHAPE(37, 29), -3, 3, 11 + k), *x = NULL, *y = NULL;
        usg_tensor *g64 = leaf(2, SHAPE(37, 29), -2, 2, 40 + k), *g = NULL;
        usg_tensor *gt_base = NULL, *gt = NULL, *gc = NULL;
        assert_int_equal(usg_to_dtype(&x, x64, USG_F32), USG_OK);
        assert_int_equal(usg_to_dtype(&g, g64, USG_F32), USG_OK);
        ((float *)usg_tensor_data(x))[5] = 0.0f;       /* relu's kink */
        ((float *)usg_tensor_data(g))[7] = -1.5f;
        x->requires_grad = true;
        /* the same gradient values as a transposed (non-contiguous) view */
        assert_int_equal(usg_transpose(&gt, g, 0, 1), USG_OK);
        assert_int_equal(usg_contiguous(&gt_base, gt), USG_OK);
        usg_tensor_release(gt);
        assert_int_equal(usg_transpose(&gt, gt_base, 0, 1), USG_OK);
        assert_false(usg_tensor_is_contiguous(gt));

        assert_int_equal(usg_ad_unary(&y, ops[k], x), USG_OK);
        assert_int_equal(usg_backward(y, g, true), USG_OK);
        assert_int_equal(usg_contiguous(&gc, x->grad), USG_OK);
        usg_tensor_release(x->grad); x->grad = NULL;
        assert_int_equal(usg_backward(y, gt, false), USG_OK);
        const float *a = usg_tensor_data(gc), *yv = usg_tensor_data(y), *gv = usg_tensor_data(g);
        for (int64_t i = 0; i < 37 * 29; i++) {
            double d = ops[k] == USG_RELU ? (yv[i] > 0 ? 1 : 0)
                     : ops[k] == USG_TANH ? 1 - (double)yv[i] * yv[i]
                     : ops[k] == USG_SIGMOID ? (double)yv[i] * (1 - (double)yv[i]) : yv[i];
            float want = (float)(gv[i] * d);
            assert_memory_equal(&a[i], &want, sizeof want);
            float b = (float)usg_tensor_get_flat(x->grad, i);
            assert_memory_equal(&a[i], &b, sizeof b);
        }
        usg_tensor *all[] = {x64, x, y, g64, g, gt_base, gt, gc};
        release_all(8, all);
    }
}

static void test_clamp(void **state)
{
    (void)state;
    /* values away from the bounds, both bounds, one bound, none */
    const double bounds[][2] = {{-0.5, 0.7}, {-0.5, NAN}, {NAN, 0.7}, {NAN, NAN}};
    for (int k = 0; k < 4; k++) {
        usg_tensor *in[1] = {leaf(2, SHAPE(3, 4), -2, 2, 5)};
        if (!gradcheck(f_clamp, 1, in, (void *)bounds[k], EPS, TOL)) fail_msg("bounds %d", k);
        usg_tensor_release(in[0]);
    }
    /* at a bound the gradient passes (PyTorch's convention) */
    usg_tensor *a = mk(USG_F64, 1, SHAPE(5), VALS(-1, 0, 0.5, 1, 2)), *y = NULL;
    a->requires_grad = true;
    assert_int_equal(usg_ad_clamp(&y, a, 0, 1), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 5, VALS(0, 1, 1, 1, 0));
    release_all(2, (usg_tensor *[]){a, y});
    /* a bad range fails in the forward, recording nothing */
    a = leaf(1, SHAPE(2), 0, 1, 1);
    y = (usg_tensor *)a;
    assert_int_equal(usg_ad_clamp(&y, a, 1, 0), USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "clamp"));
    usg_tensor_release(a);
}

/* ==== where ============================================================= */

static void test_where(void **state)
{
    (void)state;
    usg_tensor *cond = mk(USG_I32, 2, SHAPE(2, 3), VALS(1, 0, 1, 0, 0, 1));
    usg_tensor *in[2] = {leaf(2, SHAPE(2, 3), -1, 1, 1), leaf(2, SHAPE(2, 3), -1, 1, 2)};
    assert_true(gradcheck(f_where, 2, in, cond, EPS, TOL));
    expect_vals(in[0]->grad, 6, VALS(1, 0, 1.2, 0, 0, 1.5));
    expect_vals(in[1]->grad, 6, VALS(0, 1.1, 0, 1.3, 1.4, 0));
    release_all(2, in);
    /* broadcast: cond (2, 1), a (3), b 0-dim */
    usg_tensor *c2 = mk(USG_I32, 2, SHAPE(2, 1), VALS(1, 0));
    in[0] = leaf(1, SHAPE(3), -1, 1, 3);
    in[1] = leaf(0, NULL, -1, 1, 4);
    assert_true(gradcheck(f_where, 2, in, c2, EPS, TOL));
    expect_vals(in[0]->grad, 3, VALS(1, 1.1, 1.2));
    expect_vals(in[1]->grad, 1, VALS(1.3 + 1.4 + 1.5));
    release_all(2, in);
    /* a float cond requiring grad gets no gradient; i32 a, b record nothing */
    usg_tensor *y = NULL, *ia = mk(USG_I32, 1, SHAPE(2), VALS(1, 2));
    ia->requires_grad = true;
    assert_int_equal(usg_ad_where(&y, c2, ia, ia), USG_OK);
    assert_null(y->grad_fn);
    release_all(4, (usg_tensor *[]){y, ia, cond, c2});
}

/* ==== Matrix products =================================================== */

static void test_mm(void **state)
{
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            prod_case c = {usg_ad_mm, ta, tb};
            usg_tensor *in[2] = {ta ? leaf(2, SHAPE(4, 3), -1, 1, 1) : leaf(2, SHAPE(3, 4), -1, 1, 1),
                                 tb ? leaf(2, SHAPE(5, 4), -1, 1, 2) : leaf(2, SHAPE(4, 5), -1, 1, 2)};
            if (!gradcheck(f_prod, 2, in, &c, EPS, TOL)) fail_msg("mm ta=%d tb=%d", ta, tb);
            release_all(2, in);
        }
    /* by hand: a (1, 2) = [1, 2], b (2, 1) = [3, 4]: da = b^T, db = a^T */
    usg_tensor *a = mk(USG_F32, 2, SHAPE(1, 2), VALS(1, 2));
    usg_tensor *b = mk(USG_F32, 2, SHAPE(2, 1), VALS(3, 4)), *y = NULL;
    a->requires_grad = b->requires_grad = true;
    assert_int_equal(usg_ad_mm(&y, a, b), USG_OK);
    backward_ones(y);
    expect_vals(a->grad, 2, VALS(3, 4));
    expect_vals(b->grad, 2, VALS(1, 2));
    assert_int_equal(b->grad->dtype, USG_F32);
    release_all(3, (usg_tensor *[]){a, b, y});
}

static void test_bmm(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        prod_case c = {usg_ad_bmm, t, t};
        usg_tensor *in[2] = {t ? leaf(3, SHAPE(2, 4, 3), -1, 1, 1) : leaf(3, SHAPE(2, 3, 4), -1, 1, 1),
                             t ? leaf(3, SHAPE(2, 5, 4), -1, 1, 2) : leaf(3, SHAPE(2, 4, 5), -1, 1, 2)};
        if (!gradcheck(f_prod, 2, in, &c, EPS, TOL)) fail_msg("bmm t=%d", t);
        release_all(2, in);
    }
}

/* every shape case of matmul: 1-D on either side, 2-D, batched with 2-D,
 * and batch dims that broadcast */
static void test_matmul(void **state)
{
    (void)state;
    static const struct { int na, nb; int64_t sa[4], sb[4]; } cases[] = {
        {1, 1, {3}, {3}},                 /* dot */
        {1, 2, {3}, {3, 4}},              /* row vector */
        {2, 1, {2, 3}, {3}},              /* matrix-vector */
        {2, 2, {2, 3}, {3, 4}},
        {3, 2, {2, 2, 3}, {3, 4}},        /* batched x matrix: one folded gemm */
        {2, 3, {2, 3}, {2, 3, 4}},        /* matrix x batched */
        {3, 3, {2, 2, 3}, {2, 3, 4}},
        {4, 3, {2, 1, 2, 3}, {3, 3, 4}},  /* batch dims broadcast both ways */
        {1, 3, {3}, {2, 3, 4}},
        {3, 1, {2, 2, 3}, {3}},
        {4, 2, {1, 2, 2, 3}, {3, 2}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        prod_case c = {usg_ad_matmul, 0, 0};
        usg_tensor *in[2] = {leaf(cases[k].na, cases[k].sa, -1, 1, 1),
                             leaf(cases[k].nb, cases[k].sb, -1, 1, 2)};
        if (!gradcheck(f_prod, 2, in, &c, EPS, TOL)) fail_msg("matmul case %zu", k);
        release_all(2, in);
    }
    /* transposed operands */
    prod_case c = {usg_ad_matmul, 1, 1};
    usg_tensor *in[2] = {leaf(3, SHAPE(2, 3, 2), -1, 1, 1), leaf(2, SHAPE(4, 3), -1, 1, 2)};
    assert_true(gradcheck(f_prod, 2, in, &c, EPS, TOL));
    release_all(2, in);
}

static void test_addmm(void **state)
{
    (void)state;
    static const struct { int nc; int64_t sc[2]; double beta, alpha; } cases[] = {
        {2, {2, 4}, 1, 1}, {1, {4}, 0.5, 2}, {0, {0}, -1, 0.5}, {2, {2, 1}, 2, -1},
        {2, {2, 4}, 0, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        addmm_case c = {cases[k].beta, cases[k].alpha};
        usg_tensor *in[3] = {leaf(cases[k].nc, cases[k].sc, -1, 1, 1),
                             leaf(2, SHAPE(2, 3), -1, 1, 2), leaf(2, SHAPE(3, 4), -1, 1, 3)};
        if (!gradcheck(f_addmm, 3, in, &c, EPS, TOL)) fail_msg("addmm case %zu", k);
        release_all(3, in);
    }
}

static void test_product_errors(void **state)
{
    (void)state;
    usg_tensor *a = leaf(2, SHAPE(2, 3), -1, 1, 1), *b = leaf(2, SHAPE(2, 3), -1, 1, 2);
    usg_tensor *y = a;
    assert_int_equal(usg_ad_mm(&y, a, b), USG_SHAPE);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "mm"));
    assert_int_equal(usg_ad_matmul(&y, a, b), USG_SHAPE);
    assert_null(y);
    assert_int_equal(usg_ad_bmm(&y, a, b), USG_SHAPE);
    assert_null(y);
    assert_int_equal(usg_ad_addmm(&y, a, a, b, 1, 1), USG_SHAPE);
    assert_null(y);
    usg_tensor *c = mk(USG_F64, 1, SHAPE(2), VALS(1, 2));
    assert_int_equal(usg_ad_binary(&y, USG_ADD, a, c), USG_SHAPE);
    assert_null(y);
    release_all(3, (usg_tensor *[]){a, b, c});
}

/* ==== Bookkeeping ======================================================= */

static void test_no_record(void **state)
{
    (void)state;
    usg_tensor *a = leaf(2, SHAPE(2, 2), -1, 1, 1), *b = leaf(2, SHAPE(2, 2), -1, 1, 2), *y;
    /* in no-grad mode */
    bool was = usg_set_grad_enabled(false);
    assert_int_equal(usg_ad_binary(&y, USG_MUL, a, b), USG_OK);
    assert_null(y->grad_fn); assert_false(y->requires_grad); usg_tensor_release(y);
    assert_int_equal(usg_ad_mm(&y, a, b), USG_OK);
    assert_null(y->grad_fn); usg_tensor_release(y);
    assert_int_equal(usg_ad_unary(&y, USG_EXP, a), USG_OK);
    assert_null(y->grad_fn); usg_tensor_release(y);
    usg_set_grad_enabled(was);
    /* with no input requiring grad */
    a->requires_grad = b->requires_grad = false;
    assert_int_equal(usg_ad_addmm(&y, a, a, b, 1, 1), USG_OK);
    assert_null(y->grad_fn); usg_tensor_release(y);
    assert_int_equal(usg_ad_clamp(&y, a, 0, 1), USG_OK);
    assert_null(y->grad_fn); usg_tensor_release(y);
    assert_int_equal(usg_ad_binary_scalar(&y, USG_MUL, a, 2, false), USG_OK);
    assert_null(y->grad_fn); usg_tensor_release(y);
    release_all(2, (usg_tensor *[]){a, b});
}

/* y = a * a through two backwards: 2a, then 4a */
static void test_accumulate(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F64, 1, SHAPE(2), VALS(1, 3)), *y = NULL;
    a->requires_grad = true;
    for (int k = 1; k <= 2; k++) {
        assert_int_equal(usg_ad_binary(&y, USG_MUL, a, a), USG_OK);
        backward_ones(y);
        usg_tensor_release(y);
        expect_vals(a->grad, 2, VALS(2 * k, 6 * k));
    }
    usg_tensor_release(a);
}

/* ==== Allocation failure ================================================ */

/* skip_forward: sweep the backward only (see test_nomem) */
typedef struct nomem_case { gc_fn f; int n; void *ctx; bool skip_forward; } nomem_case;

/* Fail the k-th allocation of the forward for k = 1, 2, ... until it
 * succeeds; then the same for the backward. Nothing may leak. */
static void ad_math_nomem_sweep(const nomem_case *c, usg_tensor **in)
{
    size_t base = usg_alloc_live_bytes();
    long k;
    for (k = c->skip_forward ? 1000 : 1; k < 1000; k++) {
        usg_tensor *out = in[0];
        usg_alloc_fail_after(k);
        usg_status s = c->f(&out, in, c->ctx);
        usg_alloc_fail_after(0);
        if (s == USG_OK) { usg_tensor_release(out); break; }
        if (s != USG_NOMEM) fail_msg("allocation %ld: %s", k, usg_errmsg());
        if (out) fail_msg("allocation %ld: out is not NULL after a failure", k);
        assert_int_equal(usg_alloc_live_bytes(), base);
    }
    assert_int_equal(usg_alloc_live_bytes(), base);
    assert_true(k > 1);
    for (k = 1; k < 1000; k++) {
        usg_tensor *out = NULL, *g = NULL;
        assert_int_equal(c->f(&out, in, c->ctx), USG_OK);
        assert_int_equal(usg_tensor_full(&g, out->dtype, out->ndim, out->shape, 1), USG_OK);
        usg_alloc_fail_after(k);
        usg_status s = usg_backward(out, g, false);
        usg_alloc_fail_after(0);
        release_all(2, (usg_tensor *[]){out, g});
        for (int i = 0; i < c->n; i++) { usg_tensor_release(in[i]->grad); in[i]->grad = NULL; }
        assert_int_equal(usg_alloc_live_bytes(), base);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
    }
    assert_true(k > 1);
}

static void test_nomem(void **state)
{
    (void)state;
    bin_case bt = {USG_MUL, 1, 1}, bp = {USG_POW, 0, 0}, bm = {USG_MAXIMUM, 0, 0};
    sc_case sc = {USG_DIV, 2, true};
    un_case un = {USG_TANH, 1};
    double cl[2] = {-0.5, 0.5};
    prod_case mm = {usg_ad_mm, 1, 0}, bmm = {usg_ad_bmm, 0, 1}, mt = {usg_ad_matmul, 0, 0};
    addmm_case am = {0.5, 2};
    usg_tensor *cond = mk(USG_I32, 1, SHAPE(3), VALS(1, 0, 1));
    struct { nomem_case c; int na, nb, nc; int64_t sa[3], sb[3], sc[3]; } cases[] = {
        {{f_binary, 2, &bt, false}, 2, 2, -1, {3, 2}, {2, 3}, {0}},
        {{f_binary, 2, &bp, false}, 2, 1, -1, {2, 3}, {3}, {0}},
        {{f_binary, 2, &bm, false}, 2, 1, -1, {2, 3}, {3}, {0}},
        {{f_scalar, 1, &sc, false}, 2, -1, -1, {2, 3}, {0}, {0}},
        {{f_unary, 1, &un, false}, 2, -1, -1, {2, 3}, {0}, {0}},
        {{f_clamp, 1, cl, false}, 2, -1, -1, {2, 3}, {0}, {0}},
        {{f_where, 2, cond, false}, 2, 1, -1, {2, 3}, {3}, {0}},
        {{f_prod, 2, &mm, false}, 2, 2, -1, {3, 2}, {3, 4}, {0}},
        {{f_prod, 2, &bmm, false}, 3, 3, -1, {2, 2, 3}, {2, 4, 3}, {0}},
        {{f_prod, 2, &mt, false}, 3, 1, -1, {2, 2, 3}, {3}, {0}},
        {{f_prod, 2, &mt, false}, 3, 2, -1, {2, 2, 3}, {3, 4}, {0}},
        /* the forward of addmm is left out: usg_addmm (blas.c) reports an
         * allocation failure inside its copy of c as USG_SHAPE */
        {{f_addmm, 3, &am, true}, 2, 2, 1, {2, 3}, {3, 4}, {4}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        usg_tensor *in[3] = {NULL, NULL, NULL};
        /* addmm's inputs are (c, a, b): c first */
        if (cases[k].nc >= 0) {
            in[0] = leaf(cases[k].nc, cases[k].sc, 0.5, 1.5, 3);
            in[1] = leaf(cases[k].na, cases[k].sa, 0.5, 1.5, 1);
            in[2] = leaf(cases[k].nb, cases[k].sb, 0.5, 1.5, 2);
        } else {
            in[0] = leaf(cases[k].na, cases[k].sa, 0.5, 1.5, 1);
            if (cases[k].nb >= 0) in[1] = leaf(cases[k].nb, cases[k].sb, 0.5, 1.5, 2);
        }
        ad_math_nomem_sweep(&cases[k].c, in);
        release_all(3, in);
    }
    usg_tensor_release(cond);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_gradcheck),
        cmocka_unit_test(test_binary_one_side),
        cmocka_unit_test(test_binary_values),
        cmocka_unit_test(test_maximum_ties),
        cmocka_unit_test(test_pow_zero),
        cmocka_unit_test(test_mixed_dtypes),
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_scalar_gradcheck),
        cmocka_unit_test(test_scalar_values),
        cmocka_unit_test(test_unary_gradcheck),
        cmocka_unit_test(test_unary_values),
        cmocka_unit_test(test_unary_f32_paths),
        cmocka_unit_test(test_clamp),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_mm),
        cmocka_unit_test(test_bmm),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_addmm),
        cmocka_unit_test(test_product_errors),
        cmocka_unit_test(test_no_record),
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

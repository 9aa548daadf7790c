/*
 * test_ad_nn.c -- cmocka tests of host/core/ad_nn.c: linear, softmax,
 * log_softmax, the losses and dropout against central differences
 * (gradcheck.h) with every option: bias or none, batched and transposed
 * (non-contiguous) operands, each dim, every reduction, ignore_index and
 * masks, both sides of the pointwise losses, 1-based ids; hand-computed
 * gradients where a rule is chosen (bce's clamp, items that do not count,
 * dropout's mask); dtypes of gradients; no recording without requires_grad
 * or in no-grad mode; accumulation; allocation failure without leaks.
 */
#include "gradcheck.h"

/* ==== Helpers =========================================================== */

/* A contiguous f64 tensor of distinct values in [lo, hi], requiring grad. */
static usg_tensor *input(int ndim, const int64_t *shape, double phase, double lo, double hi)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, USG_F64, ndim, shape), USG_OK);
    double *p = usg_tensor_data(t);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++)
        p[i] = lo + (hi - lo) * (0.5 + 0.49 * sin(1.3 * (double)i + phase));
    t->requires_grad = true;
    return t;
}

static usg_tensor *from(usg_dtype dt, int ndim, const int64_t *shape, const double *v, bool grad)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_from_doubles(&t, dt, ndim, shape, v), USG_OK);
    t->requires_grad = grad;
    return t;
}

static void expect_values_tol(const usg_tensor *t, int64_t n, const double *v, double tol)
{
    assert_non_null(t);
    assert_int_equal(usg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        if (fabs(usg_tensor_get_flat(t, i) - v[i]) > tol * (1 + fabs(v[i])))
            fail_msg("element %lld: got %.17g, want %.17g", (long long)i,
                     usg_tensor_get_flat(t, i), v[i]);
}

/* in[k] transposed (dims 0, 1) when bit k of mask is set, else in[k]
 * retained; into t[k]. */
static usg_status maybe_transposed(usg_tensor **t, usg_tensor **in, int n, unsigned mask)
{
    for (int k = 0; k < n; k++) t[k] = NULL;
    for (int k = 0; k < n; k++) {
        if (!in[k]) continue;
        if (mask & (1u << k)) {
            usg_status s = usg_ad_transpose(&t[k], in[k], 0, 1);
            if (s != USG_OK) return s;
        } else {
            usg_tensor_retain(in[k]);
            t[k] = in[k];
        }
    }
    return USG_OK;
}

/* ==== The ops as gradcheck functions ==================================== */

enum { LINEAR, SOFTMAX, LOG_SOFTMAX, NLL, CE, MSE, BCE, BCEL, DROPOUT, NOPS };

typedef struct ncase {
    int op;
    unsigned trans;           /* inputs to transpose inside f */
    int dim;                  /* softmax */
    usg_tensor *target, *mask;   /* class losses */
    int32_t ignore;
    usg_reduction red;
    int base;
    double p;                 /* dropout */
    uint64_t seed;
} ncase;

/* in: LINEAR (x, w, b or NULL); SOFTMAX.. (x); NLL/CE (scores); MSE.. (a, b);
 * DROPOUT (x). */
static usg_status f_nn(usg_tensor **out, usg_tensor **in, void *ctx)
{
    const ncase *c = ctx;
    usg_tensor *t[3] = {NULL, NULL, NULL};
    *out = NULL;
    int n = c->op == LINEAR ? 3 : c->op >= MSE && c->op <= BCEL ? 2 : 1;
    usg_status s = maybe_transposed(t, in, n, c->trans);
    if (s == USG_OK) switch (c->op) {
    case LINEAR: s = usg_ad_linear(out, t[0], t[1], t[2]); break;
    case SOFTMAX: s = usg_ad_softmax(out, t[0], c->dim); break;
    case LOG_SOFTMAX: s = usg_ad_log_softmax(out, t[0], c->dim); break;
    case NLL: s = usg_ad_nll_loss(out, t[0], c->target, c->mask, c->ignore, c->red, c->base); break;
    case CE: s = usg_ad_cross_entropy(out, t[0], c->target, c->mask, c->ignore, c->red, c->base); break;
    case MSE: s = usg_ad_mse_loss(out, t[0], t[1], c->red); break;
    case BCE: s = usg_ad_bce_loss(out, t[0], t[1], c->red); break;
    case BCEL: s = usg_ad_bce_with_logits(out, t[0], t[1], c->red); break;
    default: {
        usg_rng r;
        usg_rng_seed(&r, c->seed, 0);       /* the same mask at every call */
        s = usg_ad_dropout(out, &r, t[0], c->p);
    }
    }
    for (int k = 0; k < 3; k++) usg_tensor_release(t[k]);
    return s;
}

static void check(ncase *c, int n, usg_tensor **in)
{
    if (!gradcheck(f_nn, n, in, c, 1e-6, 1e-6))
        fail_msg("op %d trans %u dim %d red %d ignore %d mask %d", c->op, c->trans, c->dim,
                 (int)c->red, c->ignore, c->mask != NULL);
}

/* ==== linear ============================================================ */

static void test_linear(void **state)
{
    for (unsigned tr = 0; tr < 4; tr++)
        for (int bias = 0; bias < 2; bias++) {
            /* x (4, 3) or its transpose; w (2, 3) or its transpose */
            usg_tensor *x = input(2, tr & 1 ? SHAPE(3, 4) : SHAPE(4, 3), 0.1, -2, 2);
            usg_tensor *w = input(2, tr & 2 ? SHAPE(3, 2) : SHAPE(2, 3), 0.7, -1, 1);
            usg_tensor *b = bias ? input(1, SHAPE(2), 1.9, -1, 1) : NULL;
            usg_tensor *in[3] = {x, w, b};
            check(&(ncase){.op = LINEAR, .trans = tr}, bias ? 3 : 2, in);
            drop(x); drop(w); drop(b);
        }
    /* batched rows (2, 3, 3) -> (2, 3, 2), and only some inputs requiring grad */
    usg_tensor *x = input(3, SHAPE(2, 3, 3), 0.2, -2, 2), *w = input(2, SHAPE(2, 3), 0.5, -1, 1);
    usg_tensor *b = input(1, SHAPE(2), 1.0, -1, 1);
    usg_tensor *in[3] = {x, w, b};
    check(&(ncase){.op = LINEAR}, 3, in);
    w->requires_grad = false;
    check(&(ncase){.op = LINEAR}, 3, in);
    assert_null(w->grad);
    x->requires_grad = false;
    w->requires_grad = true;
    b->requires_grad = false;
    check(&(ncase){.op = LINEAR}, 3, in);
    assert_null(x->grad);
    assert_null(b->grad);
    drop(x); drop(w); drop(b);
}

/* No rows: dW and db are empty sums (0), dx is empty. */
static void test_linear_empty_rows(void **state)
{
    usg_tensor *x = input(2, SHAPE(0, 3), 0, -1, 1), *w = input(2, SHAPE(2, 3), 0, -1, 1);
    usg_tensor *b = input(1, SHAPE(2), 0, -1, 1), *y = NULL;
    assert_int_equal(usg_ad_linear(&y, x, w, b), USG_OK);
    backward_sum(y);
    expect_values_tol(w->grad, 6, VALS(0, 0, 0, 0, 0, 0), 0);
    expect_values_tol(b->grad, 2, VALS(0, 0), 0);
    assert_int_equal(usg_tensor_numel(x->grad), 0);
    drop(x); drop(w); drop(b);
}

/* ==== softmax, log_softmax ============================================== */

static void test_softmax_every_dim(void **state)
{
    const int dims[] = {0, 1, -1};
    for (int op = SOFTMAX; op <= LOG_SOFTMAX; op++) {
        for (int d = 0; d < 3; d++)
            for (unsigned tr = 0; tr < 2; tr++) {
                usg_tensor *x = input(2, SHAPE(3, 4), 0.3, -3, 3);
                check(&(ncase){.op = op, .dim = dims[d], .trans = tr}, 1, &x);
                drop(x);
            }
        usg_tensor *x = input(3, SHAPE(2, 3, 4), 0.9, -3, 3);
        check(&(ncase){.op = op, .dim = 1}, 1, &x);
        drop(x);
        x = input(1, SHAPE(5), 0.9, -3, 3);
        check(&(ncase){.op = op, .dim = 0}, 1, &x);
        drop(x);
        x = input(0, NULL, 0.9, -3, 3);             /* 0-dim: dim -1 is the element */
        check(&(ncase){.op = op, .dim = -1}, 1, &x);
        drop(x);
    }
}

/* ==== nll_loss, cross_entropy =========================================== */

static void test_class_losses_every_option(void **state)
{
    usg_tensor *target = from(USG_I32, 1, SHAPE(4), VALS(1, 0, 4, 2), false);
    usg_tensor *target1 = from(USG_I32, 1, SHAPE(4), VALS(2, 1, 5, 3), false);   /* base 1 */
    usg_tensor *mask = from(USG_F32, 1, SHAPE(4), VALS(1, 0, 1, 1), false);
    const usg_reduction reds[] = {USG_REDUCE_MEAN, USG_REDUCE_SUM, USG_REDUCE_NONE};
    for (int op = NLL; op <= CE; op++)
        for (int r = 0; r < 3; r++)
            for (int variant = 0; variant < 5; variant++) {
                ncase c = {.op = op, .red = reds[r], .target = target, .ignore = USG_NO_IGNORE};
                if (variant == 1) c.ignore = 4;                   /* item 3 ignored */
                if (variant == 2) c.mask = mask;                  /* item 2 masked */
                if (variant == 3) { c.target = target1; c.base = 1; c.ignore = 2; }
                if (variant == 4) c.trans = 1;                    /* scores transposed */
                usg_tensor *x = input(2, variant == 4 ? SHAPE(5, 4) : SHAPE(4, 5), 0.4, -3, 1);
                check(&c, 1, &x);
                drop(x);
            }
    /* one row (C) with a 0-dim target */
    usg_tensor *t0 = from(USG_I32, 0, NULL, VALS(3), false);
    for (int op = NLL; op <= CE; op++)
        for (int r = 0; r < 3; r++) {
            usg_tensor *x = input(1, SHAPE(5), 0.2, -2, 0);
            check(&(ncase){.op = op, .red = reds[r], .target = t0, .ignore = USG_NO_IGNORE}, 1, &x);
            drop(x);
        }
    usg_tensor_release(t0);
    usg_tensor_release(target);
    usg_tensor_release(target1);
    usg_tensor_release(mask);
}

/* By hand: nll puts -1/count at the counted targets; an ignored or masked
 * row gets nothing; nothing counted gives a zero gradient (not NaN). */
static void test_class_losses_by_hand(void **state)
{
    usg_tensor *x = from(USG_F64, 2, SHAPE(3, 2), VALS(-1, -2, -3, -4, -5, -6), true), *y = NULL;
    usg_tensor *t = from(USG_I32, 1, SHAPE(3), VALS(1, 0, 1), false);
    usg_tensor *m = from(USG_I32, 1, SHAPE(3), VALS(1, 1, 0), false);
    assert_int_equal(usg_ad_nll_loss(&y, x, t, m, USG_NO_IGNORE, USG_REDUCE_MEAN, 0), USG_OK);
    backward_sum(y);
    expect_values_tol(x->grad, 6, VALS(0, -0.5, -0.5, 0, 0, 0), 1e-15);
    usg_tensor_release(x->grad);
    x->grad = NULL;

    /* cross-entropy of equal logits: softmax 1/2, so (1/2 - onehot) / 2 */
    usg_tensor *z = from(USG_F64, 2, SHAPE(3, 2), VALS(0, 0, 0, 0, 0, 0), true);
    assert_int_equal(usg_ad_cross_entropy(&y, z, t, NULL, 1, USG_REDUCE_MEAN, 0), USG_OK);
    backward_sum(y);
    expect_values_tol(z->grad, 6, VALS(0, 0, -0.5, 0.5, 0, 0), 1e-15);
    drop(z);

    usg_tensor *all = from(USG_I32, 1, SHAPE(3), VALS(0, 0, 0), false);
    assert_int_equal(usg_ad_cross_entropy(&y, x, t, all, USG_NO_IGNORE, USG_REDUCE_MEAN, 0),
                     USG_OK);
    assert_true(isnan(usg_tensor_get_flat(y, 0)));
    backward_sum(y);
    expect_values_tol(x->grad, 6, VALS(0, 0, 0, 0, 0, 0), 0);
    usg_tensor_release(all);
    usg_tensor_release(t);
    usg_tensor_release(m);
    drop(x);
}

/* The f32 rows (vectorized, AVX2 or SSE2 as the CPU allows) against the
 * f64 path on the same values; a NaN or +inf score makes its own row's loss
 * and gradient NaN and leaves the others alone. 19 classes: two blocks of
 * eight and a tail. */
static void test_cross_entropy_f32_rows(void **state)
{
    enum { N = 3, C = 19 };
    double v[N * C];
    for (int i = 0; i < N * C; i++) v[i] = 4.0 * sin(0.7 * i + 0.3);
    usg_tensor *t = from(USG_I32, 1, SHAPE(N), VALS(2, 17, 9), false), *y = NULL, *y64 = NULL;
    usg_tensor *x64 = from(USG_F64, 2, SHAPE(N, C), v, true);
    v[C + 10] = NAN;
    v[2 * C + 4] = INFINITY;
    usg_tensor *x = from(USG_F32, 2, SHAPE(N, C), v, true);
    assert_int_equal(usg_ad_cross_entropy(&y, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_NONE, 0),
                     USG_OK);
    assert_int_equal(usg_ad_cross_entropy(&y64, x64, t, NULL, USG_NO_IGNORE, USG_REDUCE_NONE, 0),
                     USG_OK);
    assert_true(fabs(usg_tensor_get_flat(y, 0) - usg_tensor_get_flat(y64, 0)) < 1e-6);
    assert_true(isnan(usg_tensor_get_flat(y, 1)) && isnan(usg_tensor_get_flat(y, 2)));
    backward_sum(y);
    backward_sum(y64);
    for (int c = 0; c < C; c++) {
        double want = usg_tensor_get_flat(x64->grad, c), got = usg_tensor_get_flat(x->grad, c);
        if (fabs(got - want) > 1e-6) fail_msg("row 0, class %d: got %.9g, want %.9g", c, got, want);
        assert_true(isnan(usg_tensor_get_flat(x->grad, C + c)));
        assert_true(isnan(usg_tensor_get_flat(x->grad, 2 * C + c)));
    }
    usg_tensor_release(t);
    drop(x);
    drop(x64);
}

/* bce_with_logits in f32 takes its own path (fastmath's exp, log1p and
 * sigmoid): against the f64 path on the same values, every reduction, loss
 * and gradient, logits from -60 to 60. 21 elements: two blocks of eight and
 * a tail. */
static void test_bce_with_logits_f32(void **state)
{
    enum { N = 21 };
    double xv[N], yv[N];
    for (int i = 0; i < N; i++) xv[i] = -60 + 120.0 * i / (N - 1) * (i % 3 ? 0.1 : 1), yv[i] = (i % 4) / 3.0;
    const usg_reduction reds[] = {USG_REDUCE_MEAN, USG_REDUCE_SUM, USG_REDUCE_NONE};
    for (int r = 0; r < 3; r++) {
        usg_tensor *x = from(USG_F32, 1, SHAPE(N), xv, true), *x64 = from(USG_F64, 1, SHAPE(N), xv, true);
        usg_tensor *y = from(USG_F32, 1, SHAPE(N), yv, false), *y64 = from(USG_F64, 1, SHAPE(N), yv, false);
        usg_tensor *l = NULL, *l64 = NULL;
        assert_int_equal(usg_ad_bce_with_logits(&l, x, y, reds[r]), USG_OK);
        assert_int_equal(usg_ad_bce_with_logits(&l64, x64, y64, reds[r]), USG_OK);
        for (int64_t i = 0; i < usg_tensor_numel(l64); i++) {
            double want = usg_tensor_get_flat(l64, i), got = usg_tensor_get_flat(l, i);
            if (fabs(got - want) > 1e-6 * (1 + fabs(want))) fail_msg("loss %lld: got %.9g, want %.9g", (long long)i, got, want);
        }
        backward_sum(l);
        backward_sum(l64);
        for (int i = 0; i < N; i++) {
            double want = usg_tensor_get_flat(x64->grad, i), got = usg_tensor_get_flat(x->grad, i);
            if (fabs(got - want) > 1e-6) fail_msg("grad %d: got %.9g, want %.9g", i, got, want);
        }
        usg_tensor_release(y);
        usg_tensor_release(y64);
        drop(x);
        drop(x64);
    }
}

/* ==== Pointwise losses ================================================== */

static void test_point_losses_both_sides(void **state)
{
    const usg_reduction reds[] = {USG_REDUCE_MEAN, USG_REDUCE_SUM, USG_REDUCE_NONE};
    for (int op = MSE; op <= BCEL; op++)
        for (int r = 0; r < 3; r++)
            for (unsigned tr = 0; tr < 2; tr++) {
                double lo = op == BCEL ? -3 : 0.05, hi = op == BCEL ? 3 : 0.95;
                usg_tensor *a = input(2, SHAPE(3, 4), 0.3, lo, hi);
                usg_tensor *b = input(2, SHAPE(3, 4), 2.1, 0.02, 0.98);
                usg_tensor *in[2] = {a, b};
                check(&(ncase){.op = op, .red = reds[r], .trans = tr ? 3 : 0}, 2, in);
                b->requires_grad = false;                   /* the usual case */
                check(&(ncase){.op = op, .red = reds[r]}, 2, in);
                assert_null(b->grad);
                drop(a); drop(b);
            }
}

/* A target of a lower dtype (never differentiated here: i32) or a higher
 * one (f64 with an f32 prediction): each gradient has its input's dtype. */
static void test_point_loss_dtypes(void **state)
{
    usg_tensor *a = from(USG_F32, 1, SHAPE(2), VALS(1, 3), true), *y = NULL;
    usg_tensor *b = from(USG_F64, 1, SHAPE(2), VALS(0, 1), true);
    usg_tensor *bi = from(USG_I32, 1, SHAPE(2), VALS(0, 1), false);
    bi->requires_grad = true;                 /* an integer side is never recorded */
    assert_int_equal(usg_ad_mse_loss(&y, a, b, USG_REDUCE_MEAN), USG_OK);
    assert_int_equal(y->dtype, USG_F64);
    backward_sum(y);
    assert_int_equal(a->grad->dtype, USG_F32);
    assert_int_equal(b->grad->dtype, USG_F64);
    expect_values_tol(a->grad, 2, VALS(1, 2), 1e-7);       /* 2 (a - b) / 2 */
    expect_values_tol(b->grad, 2, VALS(-1, -2), 1e-12);
    usg_tensor_release(a->grad);
    a->grad = NULL;
    assert_int_equal(usg_ad_mse_loss(&y, a, bi, USG_REDUCE_SUM), USG_OK);
    backward_sum(y);
    expect_values_tol(a->grad, 2, VALS(2, 4), 1e-7);
    assert_null(bi->grad);
    drop(a); drop(b);
    usg_tensor_release(bi);
}

/* bce at p = 0 and 1: the loss is clamped; d/dp follows PyTorch's
 * (p - y) / max(p (1 - p), 1e-12), d/dy the clamped logs. */
static void test_bce_edges(void **state)
{
    usg_tensor *p = from(USG_F64, 1, SHAPE(3), VALS(0, 1, 0.5), true), *y = NULL;
    usg_tensor *t = from(USG_F64, 1, SHAPE(3), VALS(1, 0, 1), true);
    assert_int_equal(usg_ad_bce_loss(&y, p, t, USG_REDUCE_SUM), USG_OK);
    backward_sum(y);
    expect_values_tol(p->grad, 3, VALS(-1e12, 1e12, -2), 1e-12);
    expect_values_tol(t->grad, 3, VALS(100, -100, 0), 1e-12);
    drop(p); drop(t);
}

/* ==== Dropout =========================================================== */

static void test_dropout(void **state)
{
    for (int i = 0; i < 2; i++) {
        usg_tensor *x = input(2, SHAPE(6, 5), 0.3, -1, 1);
        check(&(ncase){.op = DROPOUT, .p = i ? 0.4 : 0.0, .seed = 7}, 1, &x);
        drop(x);
    }
    /* the gradient is mask / (1 - p), the mask being the forward's */
    usg_tensor *x = input(1, SHAPE(40), 0.3, -1, 1), *y = NULL;
    usg_rng r;
    usg_rng_seed(&r, 3, 0);
    assert_int_equal(usg_ad_dropout(&y, &r, x, 0.5), USG_OK);
    assert_string_equal(usg_node_name(y->grad_fn), "dropout");
    double out[40];
    int kept = 0;
    for (int i = 0; i < 40; i++) out[i] = usg_tensor_get_flat(y, i);
    backward_sum(y);
    for (int i = 0; i < 40; i++) {
        double g = usg_tensor_get_flat(x->grad, i);
        assert_true(g == 0 || g == 2);
        assert_true(fabs(out[i] - g * usg_tensor_get_flat(x, i)) < 1e-15);
        kept += g == 2;
    }
    assert_true(kept > 5 && kept < 35);
    /* requires_grad does not change the draws */
    usg_tensor *y2 = NULL;
    x->requires_grad = false;
    usg_rng_seed(&r, 3, 0);
    assert_int_equal(usg_ad_dropout(&y2, &r, x, 0.5), USG_OK);
    assert_null(y2->grad_fn);
    for (int i = 0; i < 40; i++) assert_true(usg_tensor_get_flat(y2, i) == out[i]);
    usg_tensor_release(y2);
    drop(x);
}

/* ==== Recording ========================================================= */

/* Inputs for op: scores/x and a second tensor where the op takes one. */
static void make_inputs(int op, usg_tensor **in, int *n, ncase *c, usg_tensor *target)
{
    *c = (ncase){.op = op, .target = target, .ignore = USG_NO_IGNORE, .p = 0.3, .seed = 1};
    in[1] = in[2] = NULL;
    in[0] = input(2, SHAPE(4, 3), 0.5, op == BCEL ? -2 : 0.1, op == BCEL ? 2 : 0.9);
    *n = 1;
    if (op == LINEAR) { in[1] = input(2, SHAPE(2, 3), 0.1, -1, 1); in[2] = input(1, SHAPE(2), 0, -1, 1); *n = 3; }
    if (op >= MSE && op <= BCEL) { in[1] = input(2, SHAPE(4, 3), 1.5, 0.1, 0.9); *n = 2; }
}

static void test_no_node_without_grad(void **state)
{
    usg_tensor *target = from(USG_I32, 1, SHAPE(4), VALS(0, 2, 1, 2), false);
    for (int op = 0; op < NOPS; op++) {
        usg_tensor *in[3], *y = NULL;
        int n;
        ncase c;
        make_inputs(op, in, &n, &c, target);
        for (int k = 0; k < n; k++) in[k]->requires_grad = false;
        assert_int_equal(f_nn(&y, in, &c), USG_OK);
        assert_null(y->grad_fn);
        assert_false(y->requires_grad);
        usg_tensor_release(y);
        for (int k = 0; k < n; k++) in[k]->requires_grad = true;
        bool was = usg_set_grad_enabled(false);
        assert_int_equal(f_nn(&y, in, &c), USG_OK);
        assert_null(y->grad_fn);
        usg_tensor_release(y);
        usg_set_grad_enabled(was);
        assert_int_equal(f_nn(&y, in, &c), USG_OK);
        assert_non_null(y->grad_fn);
        usg_tensor_release(y);
        for (int k = 0; k < n; k++) drop(in[k]);
    }
    usg_tensor_release(target);
}

static void test_gradients_accumulate(void **state)
{
    usg_tensor *x = from(USG_F64, 2, SHAPE(1, 2), VALS(0, 0), true), *y = NULL;
    usg_tensor *t = from(USG_I32, 1, SHAPE(1), VALS(1), false);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(usg_ad_cross_entropy(&y, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_SUM, 0),
                         USG_OK);
        backward_sum(y);
    }
    expect_values_tol(x->grad, 2, VALS(1, -1), 1e-15);
    usg_tensor_release(t);
    drop(x);
}

static void test_errors_pass_through(void **state)
{
    usg_tensor *x = input(2, SHAPE(2, 3), 0, -1, 1), *w = input(2, SHAPE(2, 4), 0, -1, 1);
    usg_tensor *t = from(USG_I32, 1, SHAPE(2), VALS(0, 7), false), *y = (usg_tensor *)1;
    assert_int_equal(usg_ad_linear(&y, x, w, NULL), USG_SHAPE);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "linear"));
    assert_int_equal(usg_ad_cross_entropy(&y, x, t, NULL, USG_NO_IGNORE, USG_REDUCE_MEAN, 0),
                     USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "cross_entropy"));
    assert_int_equal(usg_ad_softmax(&y, x, 2), USG_ARG);
    assert_null(y);
    assert_int_equal(usg_ad_mse_loss(&y, x, w, USG_REDUCE_MEAN), USG_SHAPE);
    assert_null(y);
    usg_rng r;
    usg_rng_seed(&r, 1, 0);
    assert_int_equal(usg_ad_dropout(&y, &r, x, 1.0), USG_ARG);
    assert_null(y);
    assert_non_null(strstr(usg_errmsg(), "dropout"));
    usg_tensor_release(t);
    drop(x); drop(w);
}

/* ==== Allocation failure ================================================ */

static void test_nomem(void **state)
{
    usg_tensor *target = from(USG_I32, 1, SHAPE(4), VALS(0, 2, 1, 2), false);
    usg_tensor *mask = from(USG_F32, 1, SHAPE(4), VALS(1, 1, 0, 1), false);
    for (int op = 0; op < NOPS; op++) {
        usg_tensor *in[3];
        int n;
        ncase c;
        make_inputs(op, in, &n, &c, target);
        c.mask = op == CE ? mask : NULL;
        c.trans = op == SOFTMAX || op == DROPOUT ? 1 : op == MSE ? 3 : 0;
        ad_nomem_sweep(f_nn, in, n, &c);
        for (int k = 0; k < n; k++) drop(in[k]);
    }
    usg_tensor_release(target);
    usg_tensor_release(mask);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_empty_rows),
        cmocka_unit_test(test_softmax_every_dim),
        cmocka_unit_test(test_class_losses_every_option),
        cmocka_unit_test(test_class_losses_by_hand),
        cmocka_unit_test(test_cross_entropy_f32_rows),
        cmocka_unit_test(test_bce_with_logits_f32),
        cmocka_unit_test(test_point_losses_both_sides),
        cmocka_unit_test(test_point_loss_dtypes),
        cmocka_unit_test(test_bce_edges),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_no_node_without_grad),
        cmocka_unit_test(test_gradients_accumulate),
        cmocka_unit_test(test_errors_pass_through),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

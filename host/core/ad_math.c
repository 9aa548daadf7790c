/*
 * ad_math.c -- the differentiable forms of the elementwise ops and the
 * matrix products: usg_ad_binary, _binary_scalar, _unary, _clamp, _where,
 * _mm, _bmm, _matmul, _addmm. The views and copies are in ad_view.c.
 *
 * Each usg_ad_X runs the plain X of elementwise.c / blas.c and, when an
 * input requires grad in grad mode and the result is a float tensor,
 * records a node whose backward is written out beside it. Ops with an i32
 * result (comparisons, integer arithmetic) record nothing, as do the
 * piecewise-constant unary ops sign, floor, ceil and round: their result
 * does not require grad (PyTorch gives it zero gradients instead; either
 * way no gradient reaches the input).
 *
 * The elementwise backwards share one kernel: gin = g * f'(x, y, out),
 * read through strided walks, with x, y and out broadcast to g's shape, so
 * the derivative is one line per op and no temporaries are made; a
 * broadcast input then gets its gradient summed back (usg_sum_to). The
 * products call gemm with transpose flags: no transposed copies.
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "usagi/fastmath.h"

/* ==== Helpers =========================================================== */

/* gin = g summed over the dims broadcasting added, in input i's shape and
 * dtype. Consumes g (also on failure). */
static usg_status to_input(const usg_node *n, int i, usg_tensor *g, usg_tensor **gin)
{
    int nd;
    const int64_t *shape = usg_node_input_shape(n, i, &nd);
    usg_tensor *r = NULL;
    usg_status s = usg_sum_to(&r, g, nd, shape);
    usg_tensor_release(g);
    if (s == USG_OK) s = usg_to_dtype(gin, r, usg_node_input_dtype(n, i));
    usg_tensor_release(r);
    return s;
}

/* ==== The pointwise backward kernel ===================================== */

/* f'(x, y, o) for an elementwise op with operands x, y and result o. */
typedef double (*deriv_fn)(const void *ctx, double x, double y, double o);

static double load_or_0(const usg_tensor *t, int64_t off)
{
    return t ? usg_load(t->dtype, t->storage->data, off) : 0;
}

/* gin = g .* f'(x, y, o) over g's shape, in dtype dt. x, y, o (each may be
 * NULL, read as 0) broadcast to g's shape; g may have any layout. */
static usg_status pointwise_grad(usg_tensor **gin, usg_dtype dt, const usg_tensor *g,
                                 usg_tensor *x, usg_tensor *y, usg_tensor *o, deriv_fn f,
                                 const void *ctx)
{
    usg_tensor *in[3] = {x, y, o}, *e[3] = {NULL, NULL, NULL};
    usg_status s = USG_OK;
    for (int k = 0; k < 3 && s == USG_OK; k++)
        if (in[k]) s = usg_expand(&e[k], in[k], g->ndim, g->shape);
    if (s == USG_OK) s = usg_tensor_empty(gin, dt, g->ndim, g->shape);
    if (s == USG_OK) {
        usg_walk wg, w[3];
        usg_walk_init(&wg, g);
        for (int k = 0; k < 3; k++) if (e[k]) usg_walk_init(&w[k], e[k]);
        int64_t n = usg_tensor_numel(g);
        for (int64_t i = 0; i < n; i++) {
            double d = f(ctx, load_or_0(e[0], w[0].off), load_or_0(e[1], w[1].off),
                         load_or_0(e[2], w[2].off));
            usg_store(dt, (*gin)->storage->data, i,
                      usg_load(g->dtype, g->storage->data, wg.off) * d);
            usg_walk_next(&wg);
            for (int k = 0; k < 3; k++) if (e[k]) usg_walk_next(&w[k]);
        }
    }
    for (int k = 0; k < 3; k++) usg_tensor_release(e[k]);
    return s;
}

/* ==== Binary ops ======================================================== */

/* Weight of x in out = maximum(x, y) (is_max) or minimum(x, y): the
 * forward takes x when x is NaN or wins; a tie splits the gradient half and
 * half, as PyTorch does. The weight of y is 1 minus it. */
static double x_weight(double x, double y, bool is_max)
{
    if (x != x) return 1;
    if (x == y) return 0.5;
    return (is_max ? x > y : x < y) ? 1 : 0;
}

/* d out / d x (wrt_y false) or d out / d y of out = x op y. */
static double binary_deriv(usg_binop op, bool wrt_y, double x, double y, double o)
{
    switch (op) {
    case USG_ADD: return 1;
    case USG_SUB: return wrt_y ? -1 : 1;
    case USG_MUL: return wrt_y ? x : y;
    case USG_DIV: return wrt_y ? -o / y : 1 / y;     /* d(x/y)/dy = -x/y^2 = -o/y */
    case USG_POW:
        /* d(x^y)/dx = y x^(y-1), 0 where y = 0 (so 0^0 does not give 0 * inf);
         * d(x^y)/dy = x^y log x, 0 where x = 0 and y >= 0 (PyTorch's masks) */
        if (!wrt_y) return y == 0 ? 0 : y * pow(x, y - 1);
        return (x == 0 && y >= 0) ? 0 : o * log(x);
    case USG_MAXIMUM: case USG_MINIMUM: {
        double w = x_weight(x, y, op == USG_MAXIMUM);
        return wrt_y ? 1 - w : w;
    }
    default: return 0;
    }
}

/* Saved per op: a, b and the result, those the derivative reads. */
enum { SAVE_A = 1, SAVE_B = 2, SAVE_OUT = 4 };

static unsigned binary_saves(usg_binop op)
{
    switch (op) {
    case USG_ADD: case USG_SUB: return 0;
    case USG_DIV: return SAVE_B | SAVE_OUT;
    case USG_POW: return SAVE_A | SAVE_B | SAVE_OUT;
    default: return SAVE_A | SAVE_B;                  /* mul, maximum, minimum */
    }
}

/* The saved tensors back in the order a, b, out (NULL where not saved). */
static void load_saved(const usg_node *n, unsigned mask, usg_tensor **a, usg_tensor **b,
                       usg_tensor **o)
{
    int k = 0;
    *a = (mask & SAVE_A) ? usg_node_saved(n, k++) : NULL;
    *b = (mask & SAVE_B) ? usg_node_saved(n, k++) : NULL;
    *o = (mask & SAVE_OUT) ? usg_node_saved(n, k++) : NULL;
}

typedef struct binary_deriv_ctx { usg_binop op; bool wrt_y; } binary_deriv_ctx;

static double binary_deriv_cb(const void *vc, double x, double y, double o)
{
    const binary_deriv_ctx *c = vc;
    return binary_deriv(c->op, c->wrt_y, x, y, o);
}

/* y = a op b (broadcast): dL/da = sum_to(g .* d op/da), dL/db = sum_to(g .* d op/db);
 * for + and - the derivative is +-1, so g passes as it is (or negated). */
static usg_status binary_backward(usg_node *n, usg_binop op, usg_tensor *const *gout,
                                  usg_tensor **gin)
{
    usg_tensor *g = gout[0], *a, *b, *o;
    usg_status s = USG_OK;
    load_saved(n, binary_saves(op), &a, &b, &o);
    for (int i = 0; i < 2 && s == USG_OK; i++) {
        if (!usg_node_needs_grad(n, i)) continue;
        usg_tensor *full = NULL;
        binary_deriv_ctx c = {op, i == 1};
        if (op == USG_ADD || (op == USG_SUB && i == 0)) {
            usg_tensor_retain(g);
            full = g;
        } else if (op == USG_SUB) {
            s = usg_unary(&full, USG_NEG, g);
        } else {
            s = pointwise_grad(&full, g->dtype, g, a, b, o, binary_deriv_cb, &c);
        }
        if (s == USG_OK) s = to_input(n, i, full, &gin[i]);
    }
    return s;
}

#define BINARY_OP(NAME, OP)                                                          \
    static usg_status NAME##_backward(usg_node *n, usg_tensor *const *gout,        \
                                      usg_tensor **gin)                            \
    { return binary_backward(n, OP, gout, gin); }                                    \
    static const usg_op NAME##_op = {#NAME, NAME##_backward, NULL};

BINARY_OP(add, USG_ADD)
BINARY_OP(sub, USG_SUB)
BINARY_OP(mul, USG_MUL)
BINARY_OP(div, USG_DIV)
BINARY_OP(pow, USG_POW)
BINARY_OP(maximum, USG_MAXIMUM)
BINARY_OP(minimum, USG_MINIMUM)

static const usg_op *binary_op(usg_binop op)
{
    switch (op) {
    case USG_ADD: return &add_op;
    case USG_SUB: return &sub_op;
    case USG_MUL: return &mul_op;
    case USG_DIV: return &div_op;
    case USG_POW: return &pow_op;
    case USG_MAXIMUM: return &maximum_op;
    case USG_MINIMUM: return &minimum_op;
    default: return NULL;                             /* comparisons: i32, no gradient */
    }
}

/* ---- with a scalar ---- */

typedef struct scalar_ctx { usg_binop op; double s; bool first; } scalar_ctx;

/* d out / d a of out = a op s (or s op a when `first`), from a and out. */
static double scalar_deriv(const void *vc, double a, double unused, double o)
{
    const scalar_ctx *c = vc;
    (void)unused;
    return c->first ? binary_deriv(c->op, true, c->s, a, o) : binary_deriv(c->op, false, a, c->s, o);
}

/* y = a op s: dL/da = g .* d(a op s)/da (s is a constant). */
static usg_status scalar_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const scalar_ctx *c = usg_node_ctx(n);
    usg_tensor *a = usg_node_saved(n, 0), *o = usg_node_saved(n, 1);
    return pointwise_grad(&gin[0], usg_node_input_dtype(n, 0), gout[0], a, NULL, o,
                          scalar_deriv, c);
}

/* one op per binop, for the names in messages */
static const usg_op scalar_ops[] = {
    {"add", scalar_backward, NULL}, {"sub", scalar_backward, NULL},
    {"mul", scalar_backward, NULL}, {"div", scalar_backward, NULL},
    {"pow", scalar_backward, NULL}, {"maximum", scalar_backward, NULL},
    {"minimum", scalar_backward, NULL},
};

/* ==== Unary ops and clamp =============================================== */

/* d op(x) / dx, from x or from y = op(x), whichever is cheaper. */
static double unary_deriv(const void *vc, double x, double unused, double y)
{
    (void)unused;
    switch (*(const usg_unop *)vc) {
    case USG_NEG: return -1;
    case USG_ABS: return x > 0 ? 1 : x < 0 ? -1 : 0;     /* sign(x); 0 at 0, as PyTorch */
    case USG_EXP: return y;                              /* (e^x)' = e^x */
    case USG_LOG: return 1 / x;
    case USG_SQRT: return 1 / (2 * y);                   /* (x^1/2)' = 1 / (2 sqrt x) */
    case USG_TANH: return 1 - y * y;
    case USG_SIGMOID: return y * (1 - y);
    case USG_RELU: return y > 0 ? 1 : 0;                 /* y > 0 exactly where x > 0 */
    case USG_LOG1P: return 1 / (1 + x);
    case USG_SIN: return cos(x);
    case USG_COS: return -sin(x);
    case USG_SQUARE: return 2 * x;
    case USG_RECIPROCAL: return -y * y;                  /* (1/x)' = -1/x^2 */
    default: return 0;
    }
}

/* What a unary backward reads: x, y, both or neither; -1 for the ops that
 * record nothing (zero gradient almost everywhere). */
static int unary_saves(usg_unop op)
{
    switch (op) {
    case USG_NEG: return 0;
    case USG_EXP: case USG_SQRT: case USG_TANH: case USG_SIGMOID: case USG_RELU:
    case USG_RECIPROCAL:
        return SAVE_OUT;
    case USG_SIGN: case USG_FLOOR: case USG_CEIL: case USG_ROUND: return -1;
    default: return SAVE_A;
    }
}

/* The backwards of relu, tanh, sigmoid and exp (which read y alone) over
 * contiguous f32 tensors of one shape, in loops that vectorize: the same
 * double arithmetic as unary_deriv and pointwise_grad, so the same bits.
 * false when the operands are of another kind. */
USG_CLONES static bool unary_grad_f32(usg_tensor **gin, usg_unop op, usg_dtype dt,
                                      const usg_tensor *g, const usg_tensor *y)
{
    if (dt != USG_F32 || g->dtype != USG_F32 || !y || y->dtype != USG_F32 ||
        !usg_tensor_is_contiguous(g) || !usg_tensor_is_contiguous(y) || g->ndim != y->ndim ||
        memcmp(g->shape, y->shape, (size_t)g->ndim * sizeof *g->shape) != 0)
        return false;
    if (op != USG_RELU && op != USG_TANH && op != USG_SIGMOID && op != USG_EXP) return false;
    if (usg_tensor_empty(gin, dt, g->ndim, g->shape) != USG_OK) return false;
    const float *restrict gv = usg_tensor_data(g), *restrict yv = usg_tensor_data(y);
    float *restrict o = usg_tensor_data(*gin);
    int64_t n = usg_tensor_numel(g);
    switch (op) {
    case USG_RELU:
        /* g * 1 and g * 0 are exact in f32 as in f64: the product in f32 */
        for (int64_t i = 0; i < n; i++) o[i] = gv[i] * (yv[i] > 0 ? 1.0f : 0.0f);
        break;
    case USG_TANH:
        for (int64_t i = 0; i < n; i++)
            o[i] = (float)((double)gv[i] * (1.0 - (double)yv[i] * (double)yv[i]));
        break;
    case USG_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            o[i] = (float)((double)gv[i] * ((double)yv[i] * (1.0 - (double)yv[i])));
        break;
    default:    /* USG_EXP */
        for (int64_t i = 0; i < n; i++) o[i] = (float)((double)gv[i] * (double)yv[i]);
        break;
    }
    return true;
}

/* y = op(x): dL/dx = g .* op'(x) (see unary_deriv for each op) */
static usg_status unary_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const usg_unop *op = usg_node_ctx(n);
    usg_tensor *x, *unused, *y;
    load_saved(n, (unsigned)unary_saves(*op), &x, &unused, &y);
    if (unary_grad_f32(&gin[0], *op, usg_node_input_dtype(n, 0), gout[0], y)) return USG_OK;
    return pointwise_grad(&gin[0], usg_node_input_dtype(n, 0), gout[0], x, NULL, y,
                          unary_deriv, op);
}

/* indexed by usg_unop; the piecewise-constant ones are never recorded */
static const usg_op unary_ops[] = {
    {"neg", unary_backward, NULL}, {"abs", unary_backward, NULL},
    {"exp", unary_backward, NULL}, {"log", unary_backward, NULL},
    {"sqrt", unary_backward, NULL}, {"tanh", unary_backward, NULL},
    {"sigmoid", unary_backward, NULL}, {"relu", unary_backward, NULL},
    {"sign", NULL, NULL}, {"floor", NULL, NULL}, {"ceil", NULL, NULL}, {"round", NULL, NULL},
    {"log1p", unary_backward, NULL}, {"sin", unary_backward, NULL},
    {"cos", unary_backward, NULL}, {"square", unary_backward, NULL},
    {"reciprocal", unary_backward, NULL},
};

typedef struct clamp_ctx { double lo, hi; } clamp_ctx;

/* 1 inside [lo, hi], bounds included (PyTorch's convention), 0 outside;
 * a NaN bound is absent. */
static double clamp_deriv(const void *vc, double x, double unused1, double unused2)
{
    const clamp_ctx *c = vc;
    (void)unused1; (void)unused2;
    return (c->lo == c->lo && x < c->lo) || (c->hi == c->hi && x > c->hi) ? 0 : 1;
}

/* y = clamp(x, lo, hi): dL/dx = g where lo <= x <= hi, else 0 */
static usg_status clamp_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    return pointwise_grad(&gin[0], usg_node_input_dtype(n, 0), gout[0], usg_node_saved(n, 0),
                          NULL, NULL, clamp_deriv, usg_node_ctx(n));
}

/* ==== where ============================================================= */

/* y = cond ? a : b: dL/da = sum_to(where(cond, g, 0)), dL/db = sum_to(where(cond, 0, g)) */
static usg_status where_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    usg_tensor *g = gout[0], *cond = usg_node_saved(n, 0), *zero = NULL;
    usg_status s = usg_tensor_zeros(&zero, g->dtype, 0, NULL);
    for (int i = 0; i < 2 && s == USG_OK; i++) {
        if (!usg_node_needs_grad(n, i)) continue;
        usg_tensor *full = NULL;
        s = usg_where(&full, cond, i == 0 ? g : zero, i == 0 ? zero : g);
        if (s == USG_OK) s = to_input(n, i, full, &gin[i]);
    }
    usg_tensor_release(zero);
    return s;
}

/* ==== Matrix products =================================================== */

/* gin = alpha op(x) op(y) as a new (rows, cols) tensor of input i's dtype. */
static usg_status gemm_new(usg_tensor **gin, const usg_node *n, int i, const usg_tensor *x,
                           bool tx, const usg_tensor *y, bool ty, double alpha)
{
    int nd;
    const int64_t *shape = usg_node_input_shape(n, i, &nd);
    usg_status s = usg_tensor_empty(gin, usg_node_input_dtype(n, i), nd, shape);
    if (s == USG_OK && (s = usg_gemm(*gin, x, tx, y, ty, alpha, 0)) != USG_OK) {
        usg_tensor_release(*gin);
        *gin = NULL;
    }
    return s;
}

/* y = a b: dL/da = g b^T, dL/db = a^T g, the transposes being gemm's flags.
 * Saved: a, b. */
static usg_status mm_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    usg_tensor *g = gout[0], *a = usg_node_saved(n, 0), *b = usg_node_saved(n, 1);
    usg_status s = USG_OK;
    if (usg_node_needs_grad(n, 0)) s = gemm_new(&gin[0], n, 0, g, false, b, true, 1);
    if (s == USG_OK && usg_node_needs_grad(n, 1)) s = gemm_new(&gin[1], n, 1, a, true, g, false, 1);
    return s;
}

typedef struct addmm_ctx { double beta, alpha; } addmm_ctx;

/* y = beta c + alpha a b: dL/dc = beta sum_to(g), dL/da = alpha g b^T,
 * dL/db = alpha a^T g. Inputs are (c, a, b); saved a, b. */
static usg_status addmm_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const addmm_ctx *c = usg_node_ctx(n);
    usg_tensor *g = gout[0], *gc = NULL;
    usg_status s = USG_OK;
    if (usg_node_needs_grad(n, 0)) {
        if ((s = usg_binary_scalar(&gc, USG_MUL, g, c->beta, false)) == USG_OK)
            s = to_input(n, 0, gc, &gin[0]);
    }
    if (s == USG_OK && usg_node_needs_grad(n, 1))
        s = gemm_new(&gin[1], n, 1, g, false, usg_node_saved(n, 1), true, c->alpha);
    if (s == USG_OK && usg_node_needs_grad(n, 2))
        s = gemm_new(&gin[2], n, 2, usg_node_saved(n, 0), true, g, false, c->alpha);
    return s;
}

/* y = a b batched over dim 0: dL/da = g b^T, dL/db = a^T g per batch (bmm
 * takes the transposed views as gemm flags). */
static usg_status bmm_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    usg_tensor *g = gout[0], *a = usg_node_saved(n, 0), *b = usg_node_saved(n, 1), *t = NULL;
    usg_status s = USG_OK;
    if (usg_node_needs_grad(n, 0) && (s = usg_transpose(&t, b, 1, 2)) == USG_OK) {
        s = usg_bmm(&gin[0], g, t);
        usg_tensor_release(t);
    }
    if (s == USG_OK && usg_node_needs_grad(n, 1) && (s = usg_transpose(&t, a, 1, 2)) == USG_OK) {
        s = usg_bmm(&gin[1], t, g);
        usg_tensor_release(t);
    }
    return s;
}

/* NumPy matmul through its 2-D-or-more form: a1 = a as (1, k) when a is
 * 1-D, b1 = b as (k, 1) when b is 1-D, and y1 = a1 b1 with the batch dims
 * broadcast holds y's elements with the removed dims put back. Then
 *   dL/da1 = sum_to(g1 b1^T),  dL/db1 = sum_to(a1^T g1)
 * reshaped to a's and b's shapes. */

/* gin = full summed to x1's shape, then in input i's shape (x1 is input i
 * with the dim matmul added to a 1-D operand). Consumes full. */
static usg_status matmul_grad_in(const usg_node *n, int i, const usg_tensor *x1,
                                 usg_tensor *full, usg_tensor **gin)
{
    int nd;
    const int64_t *shape = usg_node_input_shape(n, i, &nd);
    usg_tensor *r = NULL;
    usg_status s = usg_sum_to(&r, full, x1->ndim, x1->shape);
    usg_tensor_release(full);
    if (s == USG_OK) s = usg_reshape(gin, r, nd, shape);
    usg_tensor_release(r);
    return s;
}

/* a1^T g1 for b1 2-D and a1 batched: the batch sum folds into one gemm,
 * (rows, k)^T (rows, m) with rows = every batch's rows (as in a linear layer). */
static usg_status matmul_grad_b_folded(usg_tensor **full, usg_tensor *a1, usg_tensor *g1)
{
    int64_t ak[2] = {-1, a1->shape[a1->ndim - 1]}, gm[2] = {-1, g1->shape[g1->ndim - 1]};
    usg_tensor *ar = NULL, *gr = NULL, *at = NULL;
    usg_status s;
    if ((s = usg_reshape(&ar, a1, 2, ak)) == USG_OK && (s = usg_reshape(&gr, g1, 2, gm)) == USG_OK &&
        (s = usg_transpose(&at, ar, 0, 1)) == USG_OK)
        s = usg_mm(full, at, gr);
    usg_tensor_release(ar); usg_tensor_release(gr); usg_tensor_release(at);
    return s;
}

static usg_status matmul_grads(usg_node *n, usg_tensor *g1, usg_tensor *a1, usg_tensor *b1,
                               usg_tensor **gin)
{
    usg_tensor *t = NULL, *full = NULL;
    usg_status s = USG_OK;
    if (usg_node_needs_grad(n, 0) && (s = usg_transpose(&t, b1, -1, -2)) == USG_OK) {
        s = usg_matmul(&full, g1, t);                    /* g1 b1^T */
        usg_tensor_release(t);
        if (s == USG_OK) s = matmul_grad_in(n, 0, a1, full, &gin[0]);
    }
    if (s != USG_OK || !usg_node_needs_grad(n, 1)) return s;
    if (b1->ndim == 2 && a1->ndim > 2) {
        s = matmul_grad_b_folded(&full, a1, g1);
    } else if ((s = usg_transpose(&t, a1, -1, -2)) == USG_OK) {
        s = usg_matmul(&full, t, g1);                    /* a1^T g1 */
        usg_tensor_release(t);
    }
    if (s == USG_OK) s = matmul_grad_in(n, 1, b1, full, &gin[1]);
    return s;
}

static usg_status matmul_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    usg_tensor *a = usg_node_saved(n, 0), *b = usg_node_saved(n, 1);
    usg_tensor *a1 = NULL, *b1 = NULL, *g1 = NULL;
    int nbatch;
    int64_t shape[USG_MAX_DIMS];
    usg_status s = USG_OK;
    if (a->ndim == 1) s = usg_unsqueeze(&a1, a, 0);
    else { usg_tensor_retain(a); a1 = a; }
    if (s == USG_OK && b->ndim == 1) s = usg_unsqueeze(&b1, b, 1);
    else if (s == USG_OK) { usg_tensor_retain(b); b1 = b; }
    /* g1: g with y1's shape, batch + (n, m) */
    if (s == USG_OK)
        s = usg_broadcast_shape(&nbatch, shape, a1->ndim - 2, a1->shape, b1->ndim - 2, b1->shape);
    if (s == USG_OK) {
        shape[nbatch] = a1->shape[a1->ndim - 2];
        shape[nbatch + 1] = b1->shape[b1->ndim - 1];
        s = usg_reshape(&g1, gout[0], nbatch + 2, shape);
    }
    if (s == USG_OK) s = matmul_grads(n, g1, a1, b1, gin);
    usg_tensor_release(a1); usg_tensor_release(b1); usg_tensor_release(g1);
    return s;
}


/* ==== The entry points ================================================== */

/* usg_ad_binary, _binary_scalar, _unary, _clamp, _where, _mm, _bmm, _matmul
 * and _addmm run their kernels and record the backwards above, as the
 * records of host/ops/math.lua declare them (host/ops/gen_ad.lua writes
 * them at build time). */
#include "ad_math.inc"

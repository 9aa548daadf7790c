/*
 * ad_reduce.c -- the differentiable reductions: sum, mean, prod, max / min
 * (their values), var, std, logsumexp and the p-norm.
 *
 * Each usg_ad_X runs the plain reduction of reduce.c and, when its input
 * requires grad in grad mode, records a node. All their backwards share one
 * shape: the input gradient is a new tensor of the input's shape, written
 * lane by lane. A lane is the n input elements that were reduced into one
 * result, `inner` apart in the contiguous input (reduce.c's blocks); one
 * small kernel per op fills a lane from the lane's output gradient g, its
 * saved result y (or argmax index) and the input values, with the
 * derivative written beside it. One pass, one allocation for the result,
 * and the arithmetic in double whatever the dtype.
 *
 * Not here: the forward math (reduce.c) and the engine (autograd.c). An
 * integer input never needs a gradient, so an i32 reduction records nothing.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

/* ==== Node context and recording ======================================== */

typedef struct rctx {
    int dim;          /* normalised: 0 .. ndim-1, or USG_ALL_DIMS */
    int ix, iy;       /* saved slots of the input and of the result/indices; -1: none */
    int correction;   /* var, std */
    int base;         /* max, min: the base of the saved indices */
    double p;         /* norm */
} rctx;

/* The dim a reduction used, as reduce.c resolves it (the forward has
 * already checked it): negative dims count from the end, and a 0-dim
 * tensor's dim 0 / -1 is all of it. */
static int resolved_dim(int dim, const usg_tensor *a)
{
    if (dim == USG_ALL_DIMS || a->ndim == 0) return USG_ALL_DIMS;
    return dim < 0 ? dim + a->ndim : dim;
}

/* The node's context: the dim as the forward resolved it, and the slots
 * where the input (ix) and the result or indices (iy) are saved, which the
 * lane kernels read. */
static rctx red_ctx(int dim, const usg_tensor *a, int ix, int iy, int correction, double p)
{
    rctx c = {resolved_dim(dim, a), ix, iy, correction, 0, p};
    return c;
}

/* ==== Lanes ============================================================= */

/* One lane of a backward: element k is x[at + k inner] of the input and
 * gx[at + k inner] of its gradient. */
typedef struct lane {
    usg_dtype xdt, gdt;
    const void *x;      /* the contiguous input, or NULL when the op saved none */
    void *gx;           /* the gradient being written (starts at zero) */
    int64_t at, n, inner;
    double g, y;        /* the lane's output gradient and saved result */
} lane;

static inline double lx(const lane *l, int64_t k)
{
    return usg_load(l->xdt, l->x, l->at + k * l->inner);
}

static inline void lset(const lane *l, int64_t k, double v)
{
    usg_store(l->gdt, l->gx, l->at + k * l->inner, v);
}

typedef void (*lane_fn)(const lane *l, const rctx *c);

/* gx (the input's shape, zeros) filled by fn lane by lane; g and y are
 * contiguous in the result's shape, so lane (o, i) reads element
 * o inner + i of both, keepdim or not. */
static void run_lanes(usg_tensor *gx, const usg_tensor *g, const usg_tensor *x,
                      const usg_tensor *y, const rctx *c, lane_fn fn)
{
    int64_t outer, n, inner;
    usg_outer_inner(gx, c->dim, &outer, &n, &inner);
    lane l = {x ? x->dtype : gx->dtype, gx->dtype, x ? usg_tensor_data(x) : NULL,
              usg_tensor_data(gx), 0, n, inner, 0, 0};
    const void *pg = usg_tensor_data(g), *py = y ? usg_tensor_data(y) : NULL;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t r = o * inner + i;
            l.at = o * n * inner + i;
            l.g = usg_load(g->dtype, pg, r);
            l.y = py ? usg_load(y->dtype, py, r) : 0.0;
            fn(&l, c);
        }
}

/* The backward of every reduction: gin[0] = a new tensor of the input's
 * shape and dtype, written by fn. */
static usg_status lanes_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin,
                                 lane_fn fn)
{
    if (!usg_node_needs_grad(n, 0)) return USG_OK;
    const rctx *c = usg_node_ctx(n);
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    usg_tensor *gx = NULL, *g = NULL, *x = NULL, *y = NULL;
    usg_status s = usg_tensor_zeros(&gx, usg_node_input_dtype(n, 0), nd, shape);
    if (s == USG_OK) s = usg_contiguous(&g, gout[0]);
    if (s == USG_OK && c->ix >= 0) s = usg_contiguous(&x, usg_node_saved(n, c->ix));
    if (s == USG_OK && c->iy >= 0) s = usg_contiguous(&y, usg_node_saved(n, c->iy));
    if (s == USG_OK) run_lanes(gx, g, x, y, c, fn);
    usg_tensor_release(g);
    usg_tensor_release(x);
    usg_tensor_release(y);
    if (s != USG_OK) usg_tensor_release(gx);
    else gin[0] = gx;
    return s;
}

/* ==== The derivatives, one lane each ==================================== */

/* y = sum_k x_k:  dL/dx_k = g */
static void k_sum(const lane *l, const rctx *c)
{
    for (int64_t k = 0; k < l->n; k++) lset(l, k, l->g);
}

/* y = (1/n) sum_k x_k:  dL/dx_k = g / n */
static void k_mean(const lane *l, const rctx *c)
{
    for (int64_t k = 0; k < l->n; k++) lset(l, k, l->g / (double)l->n);
}

/* y = prod_k x_k:  dL/dx_k = g prod_{j != k} x_j.
 * Without zeros that is g y / x_k (as PyTorch computes it). With one zero,
 * at z, only x_z gets g times the product of the others; with two or more
 * every product of others holds a zero, so the gradient is 0. */
static void k_prod(const lane *l, const rctx *c)
{
    int64_t zeros = 0, z = 0;
    double others = 1.0;       /* product of the nonzero x_k */
    for (int64_t k = 0; k < l->n; k++) {
        double v = lx(l, k);
        if (v == 0.0) { zeros++; z = k; }
        else others *= v;
    }
    if (zeros == 0)
        for (int64_t k = 0; k < l->n; k++) lset(l, k, l->g * others / lx(l, k));
    else if (zeros == 1)
        lset(l, z, l->g * others);
}

/* y = x_m with m the saved argmax / argmin:  dL/dx_m = g, 0 elsewhere (one
 * element even on ties, the one the forward picked). */
static void k_pick(const lane *l, const rctx *c)
{
    lset(l, (int64_t)l->y - c->base, l->g);
}

/* var = sum_k (x_k - m)^2 / (n - c), m = mean(x):
 *   dL/dx_k = g 2 (x_k - m) / (n - c)
 * (m's own derivative drops out: sum_k (x_k - m) = 0). n - c <= 0 divides
 * by zero, as the forward does. */
static void var_lane(const lane *l, int correction, double g)
{
    double m = 0.0;
    for (int64_t k = 0; k < l->n; k++) m += lx(l, k);
    m /= (double)l->n;
    double dof = l->n > correction ? (double)(l->n - correction) : 0.0;
    for (int64_t k = 0; k < l->n; k++) lset(l, k, g * 2.0 * (lx(l, k) - m) / dof);
}

static void k_var(const lane *l, const rctx *c) { var_lane(l, c->correction, l->g); }

/* std = sqrt(var):  dL/dvar = g / (2 std), then var's rule. Where std = 0
 * the gradient is 0, as in PyTorch, instead of 0/0. */
static void k_std(const lane *l, const rctx *c)
{
    var_lane(l, c->correction, l->y == 0.0 ? 0.0 : l->g / (2.0 * l->y));
}

/* y = log sum_k exp(x_k):  dL/dx_k = g exp(x_k - y) = g softmax(x)_k */
static void k_logsumexp(const lane *l, const rctx *c)
{
    for (int64_t k = 0; k < l->n; k++) lset(l, k, l->g * exp(lx(l, k) - l->y));
}

static double sgn(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : v; }   /* NaN stays */

/* y = max_k |x_k|:  the gradient goes to the elements reaching the max
 * (or NaN), shared evenly among ties, with x's sign (PyTorch's rule):
 *   dL/dx_k = g sgn(x_k) / #ties  for |x_k| = y */
static void norm_inf(const lane *l)
{
    int64_t ties = 0;
    for (int64_t k = 0; k < l->n; k++) {
        double a = fabs(lx(l, k));
        ties += a == l->y || isnan(a);
    }
    for (int64_t k = 0; k < l->n; k++) {
        double v = lx(l, k), a = fabs(v);
        if (a == l->y || isnan(a)) lset(l, k, l->g * sgn(v) / (double)ties);
    }
}

/* y = (sum_k |x_k|^p)^(1/p):
 *   dL/dx_k = g sgn(x_k) |x_k|^(p-1) / y^(p-1)
 * p = 1: g sgn(x_k);  p = 2: g x_k / y. Where y = 0 (all x zero) the
 * gradient is 0, and for p < 1 the term of an x_k = 0 is 0, as PyTorch. */
static void k_norm(const lane *l, const rctx *c)
{
    double p = c->p, g = l->g, y = l->y;
    if (isinf(p)) { norm_inf(l); return; }
    double scale = y == 0.0 ? 0.0 : g / pow(y, p - 1.0);     /* g / y^(p-1) */
    for (int64_t k = 0; k < l->n; k++) {
        double v = lx(l, k), d;
        if (p == 1.0) d = g * sgn(v);
        else if (p == 2.0) d = y == 0.0 ? 0.0 : g * v / y;
        else if (p < 1.0) d = v == 0.0 ? 0.0 : sgn(v) * pow(fabs(v), p - 1.0) * g * pow(y, 1.0 - p);
        else d = sgn(v) * pow(fabs(v), p - 1.0) * scale;
        lset(l, k, d);
    }
}

/* ==== Ops =============================================================== */

#define LANE_BACKWARD(name, fn)                                                          \
    static usg_status name(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)       \
    {                                                                                    \
        return lanes_backward(n, gout, gin, fn);                                         \
    }

LANE_BACKWARD(sum_backward, k_sum)
LANE_BACKWARD(mean_backward, k_mean)
LANE_BACKWARD(prod_backward, k_prod)
LANE_BACKWARD(pick_backward, k_pick)
LANE_BACKWARD(var_backward, k_var)
LANE_BACKWARD(std_backward, k_std)
LANE_BACKWARD(logsumexp_backward, k_logsumexp)
LANE_BACKWARD(norm_backward, k_norm)

static const usg_op max_op = {"max", pick_backward, NULL};
static const usg_op min_op = {"min", pick_backward, NULL};
/* max and min: the values are differentiable, the indices are not. The
 * node needs the indices even when the caller does not ask for them, so
 * these two entry points are written here rather than declared as records
 * (host/ops/reduce.lua): a record has one result. */
static usg_status extreme(usg_tensor **values, usg_tensor **indices, usg_tensor *a, int dim,
                          bool keepdim, int base, const usg_op *op)
{
    bool is_max = op == &max_op;
    usg_tensor *in = usg_diff_in(a), *own = NULL;
    bool record_it = values && usg_grad_needed(1, &in);
    usg_tensor **ix = indices ? indices : record_it ? &own : NULL;
    usg_status s = is_max ? usg_max(values, ix, a, dim, keepdim, base)
                          : usg_min(values, ix, a, dim, keepdim, base);
    if (s != USG_OK || !record_it) return s;
    rctx c = red_ctx(dim, a, -1, 0, 0, 0);
    c.base = base;
    s = usg_record(op, 1, &in, 1, values, 1, ix, &c, sizeof c);
    usg_tensor_release(own);
    if (s != USG_OK && indices) {
        usg_tensor_release(*indices);
        *indices = NULL;
    }
    return s;
}

usg_status usg_ad_max(usg_tensor **values, usg_tensor **indices, usg_tensor *a, int dim,
                      bool keepdim, int base)
{
    return extreme(values, indices, a, dim, keepdim, base, &max_op);
}

usg_status usg_ad_min(usg_tensor **values, usg_tensor **indices, usg_tensor *a, int dim,
                      bool keepdim, int base)
{
    return extreme(values, indices, a, dim, keepdim, base, &min_op);
}

/* ==== The entry points ================================================== */

/* usg_ad_sum, _mean, _prod, _var, _std, _logsumexp and _norm run their
 * kernels and record the backwards above, as the records of
 * host/ops/reduce.lua declare them (host/ops/gen_ad.lua writes them). */
#include "ad_reduce.inc"

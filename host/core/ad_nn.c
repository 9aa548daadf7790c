/*
 * ad_nn.c -- the differentiable neural-net primitives: linear, softmax and
 * log_softmax, the losses (nll, cross-entropy, mse, bce, bce with logits),
 * and dropout. (The stacking of recurrent layers is in host/recurrent/.)
 *
 * Each usg_ad_X runs the forward of nn.c (random.c for dropout) and, when
 * an input requires grad in grad mode, records a node whose backward is
 * written below it with its equation. Backwards built from whole-tensor
 * steps call the core's ops (gemm for linear, binary ops and sums for
 * softmax); the losses, whose gradients are per item or per row, have small
 * kernels that read the saved inputs and write the gradient in one pass.
 * Targets, masks and ids are never differentiated; they are saved, not
 * recorded as inputs.
 *
 * Not here: the forward math (nn.c), the reductions (ad_reduce.c), the index
 * ops (ad_index.c), the engine (autograd.c).
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "usagi/fastmath.h"

/* ==== Linear ============================================================ */

/* y = x W^T + b, over the rows of x folded to X (M, in), with G (M, out):
 *   dL/dX = G W      (M, out) x (out, in)
 *   dL/dW = G^T X    (out, M) x (M, in)
 *   dL/db = sum_m G[m]                                                  */
static usg_status linear_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    usg_tensor *x = usg_node_saved(n, 0), *w = usg_node_saved(n, 1);
    int64_t O = w->shape[0], in = w->shape[1], M = 1;
    for (int d = 0; d < x->ndim - 1; d++) M *= x->shape[d];
    int64_t gshape[2] = {M, O}, xshape[2] = {M, in};
    bool any = M > 0 && O > 0 && in > 0;       /* else the products are empty sums: 0 */
    /* with beta = 0 gemm writes every element of its output: no zeroing first */
    usg_status (*fresh)(usg_tensor **, usg_dtype, int, const int64_t *) =
        any ? usg_tensor_empty : usg_tensor_zeros;
    usg_tensor *gc = NULL, *G = NULL, *X = NULL, *dx = NULL, *dx2 = NULL, *dw = NULL;
    usg_status s = usg_to_dtype(&gc, gout[0], x->dtype);
    if (s == USG_OK) s = usg_view(&G, gc, 2, gshape);                       /* (M, out) */
    if (s == USG_OK && usg_node_needs_grad(n, 0)) {
        s = fresh(&dx, x->dtype, x->ndim, x->shape);                       /* (..., in) */
        if (s == USG_OK) s = usg_view(&dx2, dx, 2, xshape);                 /* (M, in) */
        if (s == USG_OK && any) s = usg_gemm(dx2, G, false, w, false, 1.0, 0.0);
    }
    if (s == USG_OK && usg_node_needs_grad(n, 1)) {
        s = fresh(&dw, w->dtype, 2, w->shape);                             /* (out, in) */
        if (s == USG_OK) s = usg_reshape(&X, x, 2, xshape);                 /* (M, in) */
        if (s == USG_OK && any) s = usg_gemm(dw, G, true, X, false, 1.0, 0.0);
    }
    if (s == USG_OK && usg_node_needs_grad(n, 2)) s = usg_sum(&gin[2], G, 0, false);  /* (out) */
    usg_tensor_release(gc);
    usg_tensor_release(G);
    usg_tensor_release(X);
    usg_tensor_release(dx2);
    if (s != USG_OK) {
        usg_tensor_release(dx);
        usg_tensor_release(dw);
        return s;
    }
    gin[0] = dx;
    gin[1] = dw;
    return USG_OK;
}

/* ==== Softmax =========================================================== */

/* y = softmax(x) along dim:  dL/dx = y (g - sum_dim(g y)) */
static usg_status softmax_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    int dim = *(const int *)usg_node_ctx(n);
    usg_tensor *y = usg_node_saved(n, 0), *gy = NULL, *sgy = NULL, *d = NULL;
    usg_status s = usg_binary(&gy, USG_MUL, gout[0], y);
    if (s == USG_OK) s = usg_sum(&sgy, gy, dim, true);
    if (s == USG_OK) s = usg_binary(&d, USG_SUB, gout[0], sgy);
    if (s == USG_OK) s = usg_binary(&gin[0], USG_MUL, y, d);
    usg_tensor_release(gy);
    usg_tensor_release(sgy);
    usg_tensor_release(d);
    return s;
}

/* y = log_softmax(x) along dim:  dL/dx = g - exp(y) sum_dim(g) */
static usg_status log_softmax_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    int dim = *(const int *)usg_node_ctx(n);
    usg_tensor *y = usg_node_saved(n, 0), *sg = NULL, *p = NULL, *t = NULL;
    usg_status s = usg_sum(&sg, gout[0], dim, true);
    if (s == USG_OK) s = usg_unary(&p, USG_EXP, y);
    if (s == USG_OK) s = usg_binary(&t, USG_MUL, p, sg);
    if (s == USG_OK) s = usg_binary(&gin[0], USG_SUB, gout[0], t);
    usg_tensor_release(sg);
    usg_tensor_release(p);
    usg_tensor_release(t);
    return s;
}

/* Both save their output; the dim goes to the backward as the user gave it
 * (usg_sum resolves it as softmax did, 0-dim tensors included). */
/* ==== nll_loss and cross_entropy ======================================== */

typedef struct class_ctx {
    int32_t ignore;
    usg_reduction red;
    int base;
    bool mask;          /* a mask was saved (slot 2) */
    bool stats;         /* cross-entropy: each row's (m, z) was saved (after the mask) */
    bool exps;          /* and the rows' exps, f32 (N, C) (after the stats) */
} class_ctx;

/* Element i of a 0-dim or 1-D view, whatever its stride. */
static double at1(const usg_tensor *t, int64_t i)
{
    return usg_load(t->dtype, usg_base(t), t->offset + (t->ndim ? i * t->stride[0] : 0));
}

/* Item i counts unless its target is ignore_index or its mask is 0 (the
 * forward's rule, nn.c). */
static bool counts(const usg_tensor *target, const usg_tensor *mask, int32_t ignore, int64_t i)
{
    return (int32_t)at1(target, i) != ignore && (!mask || at1(mask, i) != 0.0);
}

/* Row i's gradient into the contiguous (C) row gx: nll puts -g_i at the
 * target and 0 elsewhere; cross-entropy writes g_i (softmax(x_i) -
 * onehot(t_i)), the softmax exp(x_ic - m) / z from the row's max m and sum z
 * that the forward kept (mz) and, in f32, its exps (ex, the row's). */
static void class_row(usg_dtype dt, void *gx, const void *x, int64_t row, int64_t C, int64_t t,
                      double gi, const double *mz, const float *ex)
{
    if (!mz) {
        memset((char *)gx + row * usg_dtype_size(dt), 0, C * usg_dtype_size(dt));
        usg_store(dt, gx, row + t, -gi);
        return;
    }
    if (ex) {                             /* the common case: f32 */
        float *g = (float *)gx + row;                     /* NaN rows stay NaN (z = NaN) */
        usg_scale_row_f32(g, ex, C, (float)(gi / mz[1]));
        g[t] -= (float)gi;
        return;
    }
    for (int64_t c = 0; c < C; c++)
        usg_store(dt, gx, row + c, gi * (exp(usg_load(dt, x, row + c) - mz[0]) / mz[1] - (c == t)));
}

/* Rows lo..hi of class_backward's gradient. */
typedef struct class_job {
    const struct class_ctx *c;
    const usg_tensor *target, *mask, *g;
    usg_dtype dt;
    void *gx;
    const void *x;
    const double *mz;
    const float *ex;
    int64_t C;
    size_t row_bytes;
    double count;
} class_job;

static void class_rows(void *ctx, int64_t lo, int64_t hi)
{
    const class_job *j = ctx;
    const class_ctx *c = j->c;
    for (int64_t i = lo; i < hi; i++) {
        if (!counts(j->target, j->mask, c->ignore, i)) {
            memset((char *)j->gx + i * j->row_bytes, 0, j->row_bytes);
            continue;
        }
        double gi = c->red == USG_REDUCE_NONE ? usg_tensor_get_flat(j->g, i)
                  : c->red == USG_REDUCE_MEAN ? usg_tensor_get_flat(j->g, 0) / j->count
                  : usg_tensor_get_flat(j->g, 0);
        class_row(j->dt, j->gx, j->x, i * j->C, j->C, (int32_t)at1(j->target, i) - c->base, gi,
                  j->mz ? j->mz + 2 * i : NULL, j->ex ? j->ex + i * j->C : NULL);
    }
}

/* loss = sum over counted items i of l_i, divided by the count for MEAN:
 *   nll:  l_i = -logp[i][t_i]          dL/dlogp[i][c] = -g_i [c = t_i]
 *   ce:   l_i = -log softmax(x_i)[t_i]  dL/dx[i][c] = g_i (softmax(x_i)_c - [c = t_i])
 * with g_i = g / #counted (MEAN), g (SUM) or g[i] (NONE); rows that do not
 * count get 0. */
static usg_status class_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    if (!usg_node_needs_grad(n, 0)) return USG_OK;
    const class_ctx *c = usg_node_ctx(n);
    usg_tensor *x = usg_node_saved(n, 0), *target = usg_node_saved(n, 1);
    usg_tensor *mask = c->mask ? usg_node_saved(n, 2) : NULL, *xc = NULL, *gx = NULL;
    int slot = c->mask ? 3 : 2;
    const double *mz = c->stats ? usg_tensor_data(usg_node_saved(n, slot)) : NULL;
    const float *ex = c->exps ? usg_tensor_data(usg_node_saved(n, slot + 1)) : NULL;
    int64_t N = x->ndim == 1 ? 1 : x->shape[0], C = x->shape[x->ndim - 1];
    size_t row_bytes = C * usg_dtype_size(x->dtype);
    usg_status s = usg_tensor_empty(&gx, x->dtype, x->ndim, x->shape);      /* (N, C) */
    if (s == USG_OK && mz && !ex) s = usg_contiguous(&xc, x);
    if (s != USG_OK) {
        usg_tensor_release(gx);
        return s;
    }
    class_job j = {c, target, mask, gout[0], x->dtype, usg_tensor_data(gx),
                   xc ? usg_tensor_data(xc) : NULL, mz, ex, C, row_bytes, 0.0};
    for (int64_t i = 0; i < N; i++) j.count += counts(target, mask, c->ignore, i);
    /* rows are independent: split over the core's threads (same bits) */
    usg_parallel_for(N, usg_grain(C), class_rows, &j);
    usg_tensor_release(xc);
    gin[0] = gx;
    return USG_OK;
}

static const usg_op ce_op = {"cross_entropy", class_backward, NULL};

/* cross_entropy is written here rather than declared as a record
 * (host/ops/nn.lua): its forward keeps the row statistics and the exps for
 * the backward only when a node will be made, and the node owns them. */
usg_status usg_ad_cross_entropy(usg_tensor **out, usg_tensor *logits, usg_tensor *target,
                                usg_tensor *mask, int32_t ignore_index, usg_reduction red,
                                int base)
{
    usg_tensor *stats = NULL, *exps = NULL;
    bool grad = usg_grad_needed(1, &logits);
    usg_status s = usg_cross_entropy_stats(out, grad ? &stats : NULL, grad ? &exps : NULL, logits,
                                           target, mask, ignore_index, red, base);
    if (s == USG_OK) {
        class_ctx c = {ignore_index, red, base, mask != NULL, stats != NULL, exps != NULL};
        usg_tensor *save[5] = {logits, target, mask, stats, exps};   /* NULLs are skipped */
        s = usg_record(&ce_op, 1, &logits, 1, out, 5, save, &c, sizeof c);
    }
    usg_tensor_release(stats);
    usg_tensor_release(exps);
    return s;
}

/* ==== Pointwise losses ================================================== */

/* The derivatives of loss_i = f(a_i, b_i) with respect to a_i and b_i. */
typedef void (*point_grad_fn)(double a, double b, double *da, double *db);

/* (a - b)^2:  d/da = 2 (a - b),  d/db = -2 (a - b) */
static void mse_grad(double a, double b, double *da, double *db)
{
    *da = 2.0 * (a - b);
    *db = -*da;
}

/* -(y clog(p) + (1 - y) clog(1 - p)), clog = max(log, -100):
 *   d/dp = (p - y) / max(p (1 - p), 1e-12)   (PyTorch's formula, which
 *                                            ignores the clamp)
 *   d/dy = clog(1 - p) - clog(p)             (= -logit(p) inside the clamp) */
static void bce_grad(double p, double y, double *dp, double *dy)
{
    *dp = (p - y) / fmax(p * (1.0 - p), 1e-12);
    *dy = fmax(log1p(-p), -100.0) - fmax(log(p), -100.0);
}

/* max(x, 0) - x y + log(1 + exp(-|x|)) = -(y log s + (1 - y) log(1 - s)),
 * s = sigmoid(x):  d/dx = s - y,  d/dy = -x.  s computed without overflow. */
static void bcel_grad(double x, double y, double *dx, double *dy)
{
    double s = x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    *dx = s - y;
    *dy = -x;
}

/* A loss's f32 kernel for dL/da when only a needs it (usg_bcel_grad_f32's
 * signature), or NULL: then every dtype goes through f. */
typedef void (*point_f32_fn)(float *restrict ga, const float *restrict a, const float *restrict b,
                             const float *restrict g, bool scalar, double scale, int64_t n);

typedef struct point_ctx {
    usg_reduction red;
    point_grad_fn f;
    point_f32_fn f32;
} point_ctx;

/* dL/da_i = g_i f_a(a_i, b_i), dL/db_i = g_i f_b(a_i, b_i), with g_i = g / n
 * (MEAN), g (SUM) or g[i] (NONE); each in its own input's dtype. */
USG_CLONES static void bcel_grad_f32(float *restrict gx, const float *restrict x,
                                     const float *restrict y, const float *restrict g,
                                     bool scalar, double scale, int64_t n)
{
    float s0 = (float)(g[0] * scale), sc = (float)scale;
    if (scalar)
        for (int64_t i = 0; i < n; i++) gx[i] = s0 * (usg_sigmoidf(x[i]) - y[i]);
    else
        for (int64_t i = 0; i < n; i++) gx[i] = g[i] * sc * (usg_sigmoidf(x[i]) - y[i]);
}

/* The cloned loop stays static: GCC exports the dispatcher of a non-static
 * target_clones function whatever its visibility. */
void usg_bcel_grad_f32(float *restrict gx, const float *restrict x, const float *restrict y,
                       const float *restrict g, bool scalar, double scale, int64_t n)
{
    bcel_grad_f32(gx, x, y, g, scalar, scale, n);
}

static usg_status point_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const point_ctx *c = usg_node_ctx(n);
    usg_tensor *a = NULL, *b = NULL, *g = NULL, *ga = NULL, *gb = NULL;
    usg_status s = usg_contiguous(&a, usg_node_saved(n, 0));
    if (s == USG_OK) s = usg_contiguous(&b, usg_node_saved(n, 1));
    if (s == USG_OK) s = usg_contiguous(&g, gout[0]);
    if (s == USG_OK && usg_node_needs_grad(n, 0)) s = usg_tensor_empty_like(&ga, a, a->dtype);
    if (s == USG_OK && usg_node_needs_grad(n, 1)) s = usg_tensor_empty_like(&gb, b, b->dtype);
    bool fast = s == USG_OK && c->f32 && ga && !gb && a->dtype == USG_F32 &&
                b->dtype == USG_F32 && g->dtype == USG_F32;
    if (fast) {                               /* the loss's own f32 kernel */
        int64_t N = usg_tensor_numel(a);
        c->f32(usg_tensor_data(ga), usg_tensor_data(a), usg_tensor_data(b), usg_tensor_data(g),
               c->red != USG_REDUCE_NONE, c->red == USG_REDUCE_MEAN ? 1.0 / (double)N : 1.0, N);
    } else if (s == USG_OK) {
        int64_t N = usg_tensor_numel(a);
        const void *pa = usg_tensor_data(a), *pb = usg_tensor_data(b), *pg = usg_tensor_data(g);
        double scale = c->red == USG_REDUCE_MEAN ? 1.0 / (double)N : 1.0;
        for (int64_t i = 0; i < N; i++) {
            double da, db, gi = usg_load(g->dtype, pg, c->red == USG_REDUCE_NONE ? i : 0) * scale;
            c->f(usg_load(a->dtype, pa, i), usg_load(b->dtype, pb, i), &da, &db);
            if (ga) usg_store(ga->dtype, usg_tensor_data(ga), i, gi * da);
            if (gb) usg_store(gb->dtype, usg_tensor_data(gb), i, gi * db);
        }
    }
    usg_tensor_release(a);
    usg_tensor_release(b);
    usg_tensor_release(g);
    if (s != USG_OK) {
        usg_tensor_release(ga);
        usg_tensor_release(gb);
        return s;
    }
    gin[0] = ga;
    gin[1] = gb;
    return USG_OK;
}

/* ==== Dropout =========================================================== */

/* y = x m / (1 - p), m the saved 0/1 mask:  dL/dx = g m / (1 - p) */
static usg_status dropout_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    double scale = *(const double *)usg_node_ctx(n);
    usg_tensor *gm = NULL;
    usg_status s = usg_binary(&gm, USG_MUL, gout[0], usg_node_saved(n, 0));
    if (s == USG_OK) s = usg_binary_scalar_(gm, USG_MUL, scale);    /* gm is ours: in place */
    if (s != USG_OK) {
        usg_tensor_release(gm);
        return s;
    }
    gin[0] = gm;
    return USG_OK;
}

static const usg_op dropout_op = {"dropout", dropout_backward, NULL};

/* Written here rather than declared as a record (host/ops/nn.lua): the
 * mask is made only when the node needs it; the draws from r are the
 * same either way, so requires_grad never changes the random stream. The
 * mask is the node's first saved tensor: the Lua binding hands it out. */
usg_status usg_ad_dropout(usg_tensor **out, usg_rng *r, usg_tensor *x, double p)
{
    usg_tensor *mask = NULL;
    bool need = usg_grad_needed(1, &x);
    usg_status s = usg_dropout(out, need ? &mask : NULL, r, x, p);
    if (s != USG_OK || !need) return s;
    double scale = 1.0 / (1.0 - p);
    s = usg_record(&dropout_op, 1, &x, 1, out, 1, &mask, &scale, sizeof scale);
    usg_tensor_release(mask);
    return s;
}

/* ==== The entry points ================================================== */

/* usg_ad_linear, _softmax, _log_softmax, _nll_loss, _mse_loss, _bce_loss
 * and _bce_with_logits run their kernels and record the backwards above, as
 * the records of host/ops/nn.lua declare them (host/ops/gen_ad.lua writes
 * them). */
#include "ad_nn.inc"

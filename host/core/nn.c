/*
 * nn.c -- the math primitives of neural nets: the linear layer, softmax and
 * log-softmax along any dim, and the losses (nll, cross-entropy, mse, bce,
 * bce with logits) with PyTorch's reductions.
 *
 * These are forward passes only, on plain tensors; autograd attaches their
 * gradients one layer up. The index ops (embedding, gather, cat, ...) live in
 * index.c, the matrix product in blas.c, dropout in random.c.
 *
 * Numerics: every sum runs in double, whatever the dtype; softmax and the
 * cross-entropy subtract the row maximum before exp, so large logits neither
 * overflow nor lose the small terms.
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "usagi/fastmath.h"

/* ==== Helpers =========================================================== */

/* outer (dims before dim), n (dim itself), inner (dims after) of a shape. A
 * 0-dim tensor is taken as one dim of size 1. */
static void blocks(const usg_tensor *t, int dim, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *n = *inner = 1;
    if (t->ndim == 0) return;
    for (int d = 0; d < dim; d++) *outer *= t->shape[d];
    *n = t->shape[dim];
    for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
}

/* Element i of a 0-dim or 1-D view, whatever its stride. */
static double at1(const usg_tensor *t, int64_t i)
{
    return usg_load(t->dtype, usg_base(t), t->offset + (t->ndim ? i * t->stride[0] : 0));
}

static usg_status check_float(const usg_tensor *t, const char *fn, const char *arg)
{
    if (!usg_dtype_is_float(t->dtype))
        return usg_fail(USG_TYPE, "%s: %s must be f32 or f64, got %s", fn, arg,
                        usg_dtype_name(t->dtype));
    return USG_OK;
}

static usg_status check_reduction(usg_reduction red, const char *fn)
{
    if (red != USG_REDUCE_MEAN && red != USG_REDUCE_SUM && red != USG_REDUCE_NONE)
        return usg_fail(USG_ARG, "%s: reduction must be mean, sum or none, got %d", fn, (int)red);
    return USG_OK;
}

/* A 0-dim tensor holding a MEAN or SUM reduction: sum / count for the mean
 * (0 / 0 = NaN when nothing counted, as PyTorch), sum for the sum. */
static usg_status reduced_scalar(usg_tensor **out, usg_dtype dt, usg_reduction red,
                                 double sum, double count)
{
    usg_status s = usg_tensor_empty(out, dt, 0, NULL);
    if (s != USG_OK) return s;
    usg_store(dt, usg_tensor_data(*out), 0, red == USG_REDUCE_MEAN ? sum / count : sum);
    return USG_OK;
}

/* ==== Linear ============================================================ */

static usg_status linear_check(const usg_tensor *x, const usg_tensor *w, const usg_tensor *b)
{
    char s1[128], s2[128], s3[128];
    usg_status s;
    if ((s = check_float(x, "linear", "x")) != USG_OK) return s;
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return usg_fail(USG_TYPE, "linear: w and b must have x's dtype %s, got %s and %s",
                        usg_dtype_name(x->dtype), usg_dtype_name(w->dtype),
                        b ? usg_dtype_name(b->dtype) : "none");
    if (x->ndim < 1 || w->ndim != 2 || w->shape[1] != x->shape[x->ndim - 1])
        return usg_fail(USG_SHAPE, "linear: w must be (out, in) with in = x's last size, "
                        "got x %s and w %s", usg_shape_str(s1, sizeof s1, x->ndim, x->shape),
                        usg_shape_str(s2, sizeof s2, w->ndim, w->shape));
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return usg_fail(USG_SHAPE, "linear: b must be %s to match w %s, got %s",
                        usg_shape_str(s1, sizeof s1, 1, w->shape),
                        usg_shape_str(s3, sizeof s3, 2, w->shape),
                        usg_shape_str(s2, sizeof s2, b->ndim, b->shape));
    return USG_OK;
}

/* Every row of the (M, out) matrix y gets the bias b: y[m][o] = b[o]. */
typedef struct rows_copy { char *p; size_t row; } rows_copy;

static void copy_row0(void *ctx, int64_t lo, int64_t hi)     /* rows lo..hi <- row 0 */
{
    const rows_copy *j = ctx;
    for (int64_t m = lo > 0 ? lo : 1; m < hi; m++) memcpy(j->p + m * j->row, j->p, j->row);
}

static void fill_rows(usg_tensor *y, const usg_tensor *b)
{
    int64_t M = y->shape[0], O = y->shape[1];
    if (M == 0) return;
    void *p = usg_tensor_data(y);
    for (int64_t o = 0; o < O; o++) usg_store(y->dtype, p, o, at1(b, o));
    rows_copy j = {p, (size_t)O * usg_dtype_size(y->dtype)};
    usg_parallel_for(M, usg_grain(O), copy_row0, &j);
}

/* y = x w^T + b, with x seen as the matrix (M, in) of its rows:
 *   Y (M, out) = X (M, in) W^T (in, out) + 1 b^T
 * Y is filled with b first and gemm adds the product into it (beta = 1). */
usg_status usg_linear(usg_tensor **out, const usg_tensor *x, const usg_tensor *w,
                      const usg_tensor *b)
{
    *out = NULL;
    usg_status s = linear_check(x, w, b);
    if (s != USG_OK) return s;
    int64_t in = w->shape[1], O = w->shape[0], M = 1;
    for (int d = 0; d < x->ndim - 1; d++) M *= x->shape[d];
    int64_t xshape[2] = {M, in}, yshape[2] = {M, O}, oshape[USG_MAX_DIMS];
    memcpy(oshape, x->shape, sizeof oshape);
    oshape[x->ndim - 1] = O;

    usg_tensor *y = NULL, *y2 = NULL, *x2 = NULL;
    /* b's rows or gemm with beta = 0 write every element; zeros otherwise */
    bool written = b || (M > 0 && O > 0 && in > 0);
    if ((s = (written ? usg_tensor_empty : usg_tensor_zeros)(&y, x->dtype, x->ndim, oshape)) != USG_OK)
        return s;
    if ((s = usg_view(&y2, y, 2, yshape)) != USG_OK) goto done;       /* (M, out) */
    if (b) fill_rows(y2, b);
    if (M == 0 || O == 0 || in == 0) goto done;    /* nothing to multiply; BLAS wants ld >= 1 */
    /* gemm takes any 2-D layout (a transposed w is passed as a flag, others
     * are made contiguous there), so x2 and w go in as they are. */
    if ((s = usg_reshape(&x2, (usg_tensor *)x, 2, xshape)) != USG_OK) goto done; /* (M, in) */
    s = usg_gemm(y2, x2, false, w, true, 1.0, b ? 1.0 : 0.0);
done:
    usg_tensor_release(x2);
    usg_tensor_release(y2);
    if (s != USG_OK) usg_tensor_release(y);
    else *out = y;
    return s;
}

/* ==== Softmax =========================================================== */

/* One slice x[k * inner], k < n, of a contiguous tensor:
 *   m = max_k x_k,  Z = sum_k exp(x_k - m)
 *   softmax_k = exp(x_k - m) / Z,  log_softmax_k = x_k - m - log Z
 * Subtracting m changes nothing mathematically and keeps exp <= 1. */
static void softmax_slice(usg_dtype dt, void *y, const void *x, int64_t base, int64_t n,
                          int64_t inner, bool log_space)
{
    double m = -INFINITY, z = 0.0;
    for (int64_t k = 0; k < n; k++) {
        double v = usg_load(dt, x, base + k * inner);
        if (isnan(v)) { m = v; break; }    /* NaN in, NaN out */
        if (v > m) m = v;
    }
    for (int64_t k = 0; k < n; k++) z += exp(usg_load(dt, x, base + k * inner) - m);
    double logz = log(z);
    for (int64_t k = 0; k < n; k++) {
        double d = usg_load(dt, x, base + k * inner) - m;
        usg_store(dt, y, base + k * inner, log_space ? d - logz : exp(d) / z);
    }
}

static usg_status softmax_any(usg_tensor **out, const usg_tensor *x, int dim, bool log_space)
{
    const char *fn = log_space ? "log_softmax" : "softmax";
    usg_status s;
    *out = NULL;
    if ((s = check_float(x, fn, "x")) != USG_OK) return s;
    /* A 0-dim tensor takes dim 0 or -1, as in PyTorch. */
    if ((s = usg_check_dim(&dim, x->ndim ? x->ndim : 1, 0, fn)) != USG_OK) return s;

    usg_tensor *xc = NULL;
    if ((s = usg_contiguous(&xc, (usg_tensor *)x)) != USG_OK) return s;
    if ((s = usg_tensor_empty(out, x->dtype, x->ndim, x->shape)) != USG_OK) {
        usg_tensor_release(xc);
        return s;
    }
    int64_t outer, n, inner;
    blocks(x, dim, &outer, &n, &inner);
    const void *px = usg_tensor_data(xc);
    void *py = usg_tensor_data(*out);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            softmax_slice(x->dtype, py, px, o * n * inner + i, n, inner, log_space);
    usg_tensor_release(xc);
    return USG_OK;
}

usg_status usg_softmax(usg_tensor **out, const usg_tensor *x, int dim)
{
    return softmax_any(out, x, dim, false);
}

usg_status usg_log_softmax(usg_tensor **out, const usg_tensor *x, int dim)
{
    return softmax_any(out, x, dim, true);
}

/* ==== Negative log-likelihood and cross-entropy ========================= */

/* The (N, C) scores with (N) targets, or one (C) row with a 0-dim target. */
static usg_status class_check(const usg_tensor *x, const usg_tensor *target,
                              const usg_tensor *mask, usg_reduction red, const char *fn,
                              const char *xname)
{
    char s1[128], s2[128], s3[128];
    usg_status s;
    if ((s = check_float(x, fn, xname)) != USG_OK) return s;
    if ((s = check_reduction(red, fn)) != USG_OK) return s;
    if (target->dtype != USG_I32)
        return usg_fail(USG_TYPE, "%s: target must be i32, got %s", fn,
                        usg_dtype_name(target->dtype));
    if (x->ndim != 1 && x->ndim != 2)
        return usg_fail(USG_SHAPE, "%s: %s must be (N, C) or (C), got %s", fn, xname,
                        usg_shape_str(s1, sizeof s1, x->ndim, x->shape));
    if (target->ndim != x->ndim - 1 || (x->ndim == 2 && target->shape[0] != x->shape[0]))
        return usg_fail(USG_SHAPE, "%s: target must be %s for %s %s, got %s", fn,
                        usg_shape_str(s1, sizeof s1, x->ndim - 1, x->shape), xname,
                        usg_shape_str(s2, sizeof s2, x->ndim, x->shape),
                        usg_shape_str(s3, sizeof s3, target->ndim, target->shape));
    if (mask && (mask->ndim != target->ndim || (mask->ndim && mask->shape[0] != target->shape[0])))
        return usg_fail(USG_SHAPE, "%s: mask must have target's shape %s, got %s", fn,
                        usg_shape_str(s1, sizeof s1, target->ndim, target->shape),
                        usg_shape_str(s2, sizeof s2, mask->ndim, mask->shape));
    return USG_OK;
}

/* Does item i count? Not when its target is ignore_index or its mask is 0. */
static bool counts(const usg_tensor *target, const usg_tensor *mask, int32_t ignore, int64_t i)
{
    return (int32_t)at1(target, i) != ignore && (!mask || at1(mask, i) != 0.0);
}

/* Every counted target must name a class: base <= t < base + C. Items that
 * do not count are not checked, so padding may hold any id under a mask. */
static usg_status targets_check(const usg_tensor *target, const usg_tensor *mask,
                                int32_t ignore, int64_t N, int64_t C, int base, const char *fn)
{
    for (int64_t i = 0; i < N; i++) {
        if (!counts(target, mask, ignore, i)) continue;
        int64_t t = (int32_t)at1(target, i);
        if (t < base || t >= base + C)
            return usg_fail(USG_ARG, "%s: target[%lld] must be a class in [%d, %lld]%s, got %lld",
                            fn, (long long)i + 1, base, (long long)base + C - 1,
                            ignore != USG_NO_IGNORE ? " or ignore_index" : "", (long long)t);
    }
    return USG_OK;
}

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

USG_CLONES static double softmax_row_f32(const float *p, int64_t C, float *max, float *e)
{
    /* eight lanes of partial maxima and sums. The max is written with
     * vector types (a compare and a select): -O3 left the plain loop
     * scalar. A NaN score is passed over by the max (NaN > m is false) and
     * makes its exp, and so z, NaN. */
    float acc[8] = {0}, m = -INFINITY;
    v8f mk = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
              -INFINITY};
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
        v8f x;
        memcpy(&x, p + c, sizeof x);
        v8i gt = x > mk;
        mk = (v8f)((gt & (v8i)x) | (~gt & (v8i)mk));
    }
    for (int k = 0; k < 8; k++) m = mk[k] > m ? mk[k] : m;
    for (; c < C; c++) m = p[c] > m ? p[c] : m;
    *max = m;
    if (e) {                           /* the same sums, each exp kept */
        for (c = 0; c + 8 <= C; c += 8)
            for (int k = 0; k < 8; k++) acc[k] += e[c + k] = usg_expf(p[c + k] - m);
    } else {
        for (c = 0; c + 8 <= C; c += 8)
            for (int k = 0; k < 8; k++) acc[k] += usg_expf(p[c + k] - m);
    }
    double z = 0.0;
    for (int k = 0; k < 8; k++) z += acc[k];
    for (; c < C; c++) {
        float v = usg_expf(p[c] - m);
        if (e) e[c] = v;
        z += v;
    }
    return z;
}

/* The cloned loop stays static: GCC exports the dispatcher of a non-static
 * target_clones function whatever its visibility. */
double usg_softmax_row_f32(const float *p, int64_t C, float *max, float *e)
{
    return softmax_row_f32(p, C, max, e);
}

USG_CLONES static void scale_row_f32(float *g, const float *e, int64_t C, float scale)
{
    for (int64_t c = 0; c < C; c++) g[c] = scale * e[c];
}

/* A plain wrapper, as for usg_softmax_row_f32. */
void usg_scale_row_f32(float *g, const float *e, int64_t C, float scale)
{
    scale_row_f32(g, e, C, scale);
}

/* The loss of row i from its (C) scores x at element offset `row`; a
 * softmax loss also leaves the row's max and sum in mz, and its exps in e
 * when e is not NULL (see ce_row). */
typedef double (*row_loss_fn)(usg_dtype dt, const void *x, int64_t row, int64_t cstride,
                              int64_t C, int64_t t, double *mz, float *e);

/* nll: loss_i = -logp[i][t_i] */
static double nll_row(usg_dtype dt, const void *x, int64_t row, int64_t cstride, int64_t C,
                      int64_t t, double *mz, float *e)
{
    (void)C, (void)mz, (void)e;
    return -usg_load(dt, x, row + t * cstride);
}

/* cross-entropy: loss_i = -log softmax(x_i)[t_i] = log z + m - x_{i t_i} with
 * m = max_c x_ic and z = sum_c exp(x_ic - m), which go to mz[0], mz[1] for
 * the backward (softmax(x_i)_c = exp(x_ic - m) / z); e, when given (f32
 * rows of stride 1 only), gets the exp(x_ic - m) themselves. */
static double ce_row(usg_dtype dt, const void *x, int64_t row, int64_t cstride, int64_t C,
                     int64_t t, double *mz, float *e)
{
    if (dt == USG_F32 && cstride == 1) {   /* the common case: see usg_softmax_row_f32 */
        const float *p = (const float *)x + row;
        float m;
        double z = usg_softmax_row_f32(p, C, &m, e);
        mz[0] = m, mz[1] = z;
        return log(z) + m - p[t];
    }
    double m = -INFINITY, z = 0.0;
    for (int64_t c = 0; c < C; c++) {
        double v = usg_load(dt, x, row + c * cstride);
        if (isnan(v) || v > m) m = v;
        if (isnan(v)) break;
    }
    if (!isnan(m))
        for (int64_t c = 0; c < C; c++) z += exp(usg_load(dt, x, row + c * cstride) - m);
    mz[0] = m, mz[1] = isnan(m) ? m : z;
    return log(mz[1]) + m - usg_load(dt, x, row + t * cstride);
}

/* Rows lo..hi of class_loss: loss[i] and the row's (m, z) into mz + 2 i. */
typedef struct rows_job {
    const usg_tensor *x, *target, *mask;
    int32_t ignore;
    int base;
    int64_t rstride, cstride, C;
    row_loss_fn f;
    double *loss, *mz;
    float *e;                /* (N, C) exps, or NULL */
} rows_job;

static void loss_rows(void *ctx, int64_t lo, int64_t hi)
{
    const rows_job *j = ctx;
    for (int64_t i = lo; i < hi; i++)
        if (counts(j->target, j->mask, j->ignore, i))
            j->loss[i] = j->f(j->x->dtype, usg_base(j->x), j->x->offset + i * j->rstride,
                              j->cstride, j->C, (int32_t)at1(j->target, i) - j->base,
                              j->mz + 2 * i, j->e ? j->e + i * j->C : NULL);
}

/* The shared body of nll_loss and cross_entropy. x is read through its
 * strides (row i at offset + i * stride[0], class c at + c * stride[1]), so
 * no copy is made whatever its layout.
 *   MEAN = sum_{i counted} loss_i / #counted,  SUM = sum_{i counted} loss_i,
 *   NONE = (N) with loss_i where counted and 0 elsewhere. */
static usg_status class_loss(usg_tensor **out, usg_tensor **stats, usg_tensor **exps,
                             const usg_tensor *x,
                             const usg_tensor *target, const usg_tensor *mask, int32_t ignore,
                             usg_reduction red, int base, const char *fn, const char *xname,
                             row_loss_fn f)
{
    usg_status s;
    *out = NULL;
    if (stats) *stats = NULL;
    if (exps) *exps = NULL;
    if ((s = class_check(x, target, mask, red, fn, xname)) != USG_OK) return s;
    bool one = x->ndim == 1;
    int64_t N = one ? 1 : x->shape[0], C = x->shape[x->ndim - 1];
    int64_t rstride = one ? 0 : x->stride[0], cstride = x->stride[x->ndim - 1];
    if ((s = targets_check(target, mask, ignore, N, C, base, fn)) != USG_OK) return s;
    if (stats && (s = usg_tensor_zeros(stats, USG_F64, 2, (int64_t[]){N, 2})) != USG_OK)
        return s;
    if (stats && exps && x->dtype == USG_F32 && cstride == 1 &&
        (s = usg_tensor_empty(exps, USG_F32, 2, (int64_t[]){N, C})) != USG_OK)
        goto fail;
    if (red == USG_REDUCE_NONE &&
        (s = usg_tensor_zeros(out, x->dtype, target->ndim, target->shape)) != USG_OK)
        goto fail;

    /* each row's loss (rows are independent: split over the core's threads),
     * then their sum in row order, so the bits do not depend on the split */
    double sum = 0.0, count = 0.0;
    double *l = usg_alloc((size_t)N * (stats ? 1 : 3) * sizeof *l);   /* + (m, z) without stats */
    if (!l) {
        s = usg_fail(USG_NOMEM, "%s: out of memory for %lld row losses", fn, (long long)N);
        usg_tensor_release(*out);
        *out = NULL;
        goto fail;
    }
    rows_job j = {x, target, mask, ignore, base, rstride, cstride, C, f, l,
                  stats ? usg_tensor_data(*stats) : l + N,
                  exps && *exps ? usg_tensor_data(*exps) : NULL};
    usg_parallel_for(N, usg_grain(C), loss_rows, &j);
    for (int64_t i = 0; i < N; i++) {
        if (!counts(target, mask, ignore, i)) continue;
        if (red == USG_REDUCE_NONE) usg_store(x->dtype, usg_tensor_data(*out), i, l[i]);
        sum += l[i];
        count += 1.0;
    }
    usg_free(l);
    if (red == USG_REDUCE_NONE ||
        (s = reduced_scalar(out, x->dtype, red, sum, count)) == USG_OK)
        return USG_OK;
fail:
    if (stats) {
        usg_tensor_release(*stats);
        *stats = NULL;
    }
    if (exps) {
        usg_tensor_release(*exps);
        *exps = NULL;
    }
    return s;
}

usg_status usg_nll_loss(usg_tensor **out, const usg_tensor *logp, const usg_tensor *target,
                        const usg_tensor *mask, int32_t ignore_index, usg_reduction red, int base)
{
    return class_loss(out, NULL, NULL, logp, target, mask, ignore_index, red, base, "nll_loss",
                      "logp", nll_row);
}

usg_status usg_cross_entropy(usg_tensor **out, const usg_tensor *logits,
                             const usg_tensor *target, const usg_tensor *mask,
                             int32_t ignore_index, usg_reduction red, int base)
{
    return usg_cross_entropy_stats(out, NULL, NULL, logits, target, mask, ignore_index, red,
                                   base);
}

usg_status usg_cross_entropy_stats(usg_tensor **out, usg_tensor **stats, usg_tensor **exps,
                                   const usg_tensor *logits, const usg_tensor *target,
                                   const usg_tensor *mask, int32_t ignore_index,
                                   usg_reduction red, int base)
{
    return class_loss(out, stats, exps, logits, target, mask, ignore_index, red, base,
                      "cross_entropy", "logits", ce_row);
}

/* ==== Pointwise losses ================================================== */

typedef double (*point_loss_fn)(double a, double b);

/* mse: (a - b)^2 */
static double mse_point(double a, double b) { return (a - b) * (a - b); }

/* bce: -(y log p + (1 - y) log(1 - p)), each log clamped at -100 as PyTorch
 * does, so p = 0 or 1 gives a large finite loss instead of inf. */
static double bce_point(double p, double y)
{
    return -(y * fmax(log(p), -100.0) + (1.0 - y) * fmax(log1p(-p), -100.0));
}

/* bce with logits, p = sigmoid(x):
 *   -(y log p + (1 - y) log(1 - p)) = max(x, 0) - x y + log(1 + exp(-|x|))
 * the right side never overflows exp. */
static double bcel_point(double x, double y)
{
    return fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
}

/* a is the prediction (float), b the target (any dtype, same shape); the
 * result has dtype promote(a, b). */
static usg_status point_check(const usg_tensor *a, const usg_tensor *b, usg_reduction red,
                              const char *fn, const char *an, const char *bn)
{
    char s1[128], s2[128];
    usg_status s;
    if ((s = check_float(a, fn, an)) != USG_OK) return s;
    if ((s = check_reduction(red, fn)) != USG_OK) return s;
    if (!usg_same_shape(a, b))
        return usg_fail(USG_SHAPE, "%s: %s must have %s's shape %s, got %s", fn, bn, an,
                        usg_shape_str(s1, sizeof s1, a->ndim, a->shape),
                        usg_shape_str(s2, sizeof s2, b->ndim, b->shape));
    return USG_OK;
}

/* loss_i = f(a_i, b_i), then MEAN = sum / n, SUM = sum, NONE = the loss_i. */
static usg_status point_loss(usg_tensor **out, const usg_tensor *a, const usg_tensor *b,
                             usg_reduction red, point_loss_fn f)
{
    usg_dtype dt = usg_dtype_promote(a->dtype, b->dtype);
    usg_tensor *ac = NULL, *bc = NULL;
    usg_status s;
    if ((s = usg_contiguous(&ac, (usg_tensor *)a)) != USG_OK) return s;
    if ((s = usg_contiguous(&bc, (usg_tensor *)b)) != USG_OK) goto done;
    if (red == USG_REDUCE_NONE && (s = usg_tensor_empty(out, dt, a->ndim, a->shape)) != USG_OK)
        goto done;
    int64_t n = usg_tensor_numel(a);
    const void *pa = usg_tensor_data(ac), *pb = usg_tensor_data(bc);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double l = f(usg_load(a->dtype, pa, i), usg_load(b->dtype, pb, i));
        if (red == USG_REDUCE_NONE) usg_store(dt, usg_tensor_data(*out), i, l);
        sum += l;
    }
    if (red != USG_REDUCE_NONE) s = reduced_scalar(out, dt, red, sum, (double)n);
done:
    usg_tensor_release(ac);
    usg_tensor_release(bc);
    return s;
}

usg_status usg_mse_loss(usg_tensor **out, const usg_tensor *a, const usg_tensor *b,
                        usg_reduction red)
{
    *out = NULL;
    usg_status s = point_check(a, b, red, "mse_loss", "a", "b");
    return s != USG_OK ? s : point_loss(out, a, b, red, mse_point);
}

/* PyTorch refuses p outside [0, 1] (NaN included) rather than return NaN. */
static usg_status probs_check(const usg_tensor *p)
{
    int64_t n = usg_tensor_numel(p);
    usg_walk w;
    usg_walk_init(&w, p);
    for (int64_t i = 0; i < n; i++, usg_walk_next(&w)) {
        double v = usg_load(p->dtype, usg_base(p), w.off);
        if (!(v >= 0.0 && v <= 1.0))
            return usg_fail(USG_ARG, "bce_loss: p must be in [0, 1], got %g at flat "
                            "position %lld", v, (long long)i + 1);
    }
    return USG_OK;
}

usg_status usg_bce_loss(usg_tensor **out, const usg_tensor *p, const usg_tensor *y,
                        usg_reduction red)
{
    *out = NULL;
    usg_status s = point_check(p, y, red, "bce_loss", "p", "y");
    if (s == USG_OK) s = probs_check(p);
    return s != USG_OK ? s : point_loss(out, p, y, red, bce_point);
}

/* bcel_point over n contiguous f32 in f32 arithmetic (usagi/fastmath.h's exp
 * and log1p, within 2e-7 of libm's), eight double partial sums: the common
 * case of a VAE's Bernoulli likelihood, in a loop that vectorizes. Each
 * element's loss goes to l when l is not NULL. */
USG_CLONES static double bcel_f32(float *l, const float *x, const float *y, int64_t n)
{
    double lane[8] = {0}, sum = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float v = x[i + k], a = v < 0 ? -v : v;
            float e = (v > 0 ? v : 0) - v * y[i + k] + usg_log1pf(usg_expf(-a));
            if (l) l[i + k] = e;
            lane[k] += e;
        }
    for (; i < n; i++) {
        float v = x[i], a = v < 0 ? -v : v;
        float e = (v > 0 ? v : 0) - v * y[i] + usg_log1pf(usg_expf(-a));
        if (l) l[i] = e;
        sum += e;
    }
    for (int k = 0; k < 8; k++) sum += lane[k];
    return sum;
}

/* A plain wrapper, as for usg_softmax_row_f32. */
double usg_bcel_f32(float *l, const float *x, const float *y, int64_t n)
{
    return bcel_f32(l, x, y, n);
}

usg_status usg_bce_with_logits(usg_tensor **out, const usg_tensor *x, const usg_tensor *y,
                               usg_reduction red)
{
    *out = NULL;
    usg_status s = point_check(x, y, red, "bce_with_logits", "x", "y");
    if (s != USG_OK) return s;
    if (x->dtype == USG_F32 && y->dtype == USG_F32 && usg_tensor_is_contiguous(x) &&
        usg_tensor_is_contiguous(y)) {
        int64_t n = usg_tensor_numel(x);
        if (red == USG_REDUCE_NONE) {
            if ((s = usg_tensor_empty(out, USG_F32, x->ndim, x->shape)) != USG_OK) return s;
            usg_bcel_f32(usg_tensor_data(*out), usg_tensor_data(x), usg_tensor_data(y), n);
            return USG_OK;
        }
        double sum = usg_bcel_f32(NULL, usg_tensor_data(x), usg_tensor_data(y), n);
        return reduced_scalar(out, USG_F32, red, sum, (double)n);
    }
    return point_loss(out, x, y, red, bcel_point);
}

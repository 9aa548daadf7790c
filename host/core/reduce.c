/*
 * reduce.c -- reductions over one dim or over every dim: sum, mean, prod,
 * max / min with their indices, var / std, logsumexp and the p-norm.
 *
 * Every reduction reads usg_contiguous(a) as (outer, n, inner) blocks: the
 * reduced dim has n elements `inner` apart, and the `inner` neighbours of
 * an element are independent results ("lanes"). Lanes are processed in
 * groups of up to LANES at a time, reading rows of the group into a small
 * double buffer, so a reduction over dim 0 of an (N, C) matrix walks memory
 * forward instead of jumping C elements per read, and a reduction over the
 * last dim reads whole runs of the row at once. Float math is done in
 * double whatever the dtype.
 *
 * Not here: elementwise ops (elementwise.c), softmax and losses (nn.c), and
 * reductions with autograd (the binding's tape records these as ops).
 *
 * A kernel: it calls tensor.c and parallel.c only; the tape (autograd.c)
 * calls it to sum gradients down to a shape, never the other way.
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "usagi/fastmath.h"

#define LANES 64     /* results computed side by side */
#define BUF 512      /* doubles in a block of rows (4 KiB on the stack) */

/* ==== Shapes ============================================================ */

int usg_reduced_shape(int64_t *shape, const usg_tensor *a, int dim, bool keepdim)
{
    int nd = 0;
    for (int d = 0; d < a->ndim; d++) {
        bool reduced = dim == USG_ALL_DIMS || d == dim;
        if (!reduced) shape[nd++] = a->shape[d];
        else if (keepdim) shape[nd++] = 1;
    }
    return nd;
}

void usg_outer_inner(const usg_tensor *a, int dim, int64_t *outer, int64_t *n,
                     int64_t *inner)
{
    *outer = 1; *inner = 1;
    if (dim == USG_ALL_DIMS) {
        *n = usg_tensor_numel(a);
        return;
    }
    for (int d = 0; d < dim; d++) *outer *= a->shape[d];
    for (int d = dim + 1; d < a->ndim; d++) *inner *= a->shape[d];
    *n = a->shape[dim];
}

/* ==== Lane groups ======================================================= */

/* A group of m lanes: element k of lane j is x[start + k*inner + j].
 * lanes_next() loads the next r rows (rows k .. k+r-1) into buf as (r, m). */
typedef struct lanes {
    usg_dtype dt;
    const void *x;
    int64_t start, n, inner;
    int m;
    int64_t k;        /* first row of the block in buf */
    int r;            /* rows in buf */
    double buf[BUF];  /* (r, m) */
} lanes;

static void lanes_rewind(lanes *g) { g->k = 0; g->r = 0; }

/* Convert `cnt` elements from x[off] into dst; the switch sits outside the loop. */
static void load_run(double *dst, usg_dtype dt, const void *x, int64_t off, int cnt)
{
    if (dt == USG_F64) {
        memcpy(dst, (const double *)x + off, (size_t)cnt * sizeof *dst);
    } else if (dt == USG_F32) {
        const float *p = (const float *)x + off;
        for (int i = 0; i < cnt; i++) dst[i] = p[i];
    } else {
        const int32_t *p = (const int32_t *)x + off;
        for (int i = 0; i < cnt; i++) dst[i] = p[i];
    }
}

static bool lanes_next(lanes *g)
{
    g->k += g->r;
    if (g->k >= g->n) return false;
    int64_t left = g->n - g->k;
    int rows = BUF / g->m;
    g->r = left < rows ? (int)left : rows;
    int64_t off = g->start + g->k * g->inner;
    if (g->inner == g->m) {           /* rows are adjacent: one run */
        load_run(g->buf, g->dt, g->x, off, g->r * g->m);
    } else {
        for (int q = 0; q < g->r; q++)
            load_run(g->buf + q * g->m, g->dt, g->x, off + q * g->inner, g->m);
    }
    return true;
}

/* A kernel fills res[j] (and arg[j], the row of the answer, when it has
 * one) for every lane j of g. */
typedef void (*kernel)(lanes *g, double *res, int64_t *arg, const void *p);

/* ==== Kernels =========================================================== */

/* Sum of v[0 .. n) with eight partial sums: a lone lane (a reduction over
 * the last dim) would otherwise wait on one add after another, and the
 * rounding error grows more slowly too. */
static double sum8(const double *v, int n)
{
    double p[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) p[u] += v[i + u];
    for (; i < n; i++) p[0] += v[i];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

/* Plain sums in double, for the ops whose result is float. */
static void lane_sum(lanes *g, double *res)
{
    int m = g->m;
    for (int j = 0; j < m; j++) res[j] = 0;
    for (lanes_rewind(g); lanes_next(g);) {
        if (m == 1) { res[0] += sum8(g->buf, g->r); continue; }
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++) res[j] += g->buf[q * m + j];
    }
}

/* i32 sums and products stay i32. They are computed exactly in int64 and
 * a result outside the i32 range is an error (reduce_run finds it), not a
 * number wrapped modulo 2^32. A partial product past the range is held at
 * +-(2^31 + 1): every later factor but 0 keeps it out of range, and the
 * next multiplication cannot overflow int64. A sum that leaves int64 (more
 * than 2^32 elements near the limits) is held out of range likewise. */
#define I32_OUT ((int64_t)INT32_MAX + 2)
static void k_sum(lanes *g, double *res, int64_t *arg, const void *p)
{
    int m = g->m;
    if (g->dt != USG_I32) { lane_sum(g, res); return; }
    int64_t acc[LANES] = {0};
    bool lost[LANES] = {false};
    for (lanes_rewind(g); lanes_next(g);)
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++)
                lost[j] |= __builtin_add_overflow(acc[j], (int64_t)g->buf[q * m + j], &acc[j]);
    for (int j = 0; j < m; j++) res[j] = lost[j] ? (double)I32_OUT : (double)acc[j];
}

static void k_prod(lanes *g, double *res, int64_t *arg, const void *p)
{
    int m = g->m;
    if (g->dt == USG_I32) {
        int64_t acc[LANES];
        for (int j = 0; j < m; j++) acc[j] = 1;
        for (lanes_rewind(g); lanes_next(g);)
            for (int q = 0; q < g->r; q++)
                for (int j = 0; j < m; j++) {
                    acc[j] *= (int64_t)g->buf[q * m + j];
                    if (acc[j] > I32_OUT) acc[j] = I32_OUT;
                    if (acc[j] < -I32_OUT) acc[j] = -I32_OUT;
                }
        for (int j = 0; j < m; j++) res[j] = (double)acc[j];
        return;
    }
    for (int j = 0; j < m; j++) res[j] = 1;
    for (lanes_rewind(g); lanes_next(g);)
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++) res[j] *= g->buf[q * m + j];
}

/* mean = sum / n; the mean of nothing is NaN (0/0), as in PyTorch. */
static void k_mean(lanes *g, double *res, int64_t *arg, const void *p)
{
    lane_sum(g, res);
    for (int j = 0; j < g->m; j++) res[j] = g->n ? res[j] / (double)g->n : NAN;
}

/* max (sign > 0) or min (sign < 0). Ties keep the first row; the first NaN
 * wins and stays, so a row with a NaN gives NaN and the NaN's index. */
static void k_extreme(lanes *g, double *res, int64_t *arg, const void *p)
{
    int sign = *(const int *)p, m = g->m;
    for (int j = 0; j < m; j++) { res[j] = sign > 0 ? -INFINITY : INFINITY; arg[j] = 0; }
    for (lanes_rewind(g); lanes_next(g);)
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++) {
                double x = g->buf[q * m + j];
                if (isnan(res[j])) continue;
                if (isnan(x) || (sign > 0 ? x > res[j] : x < res[j])) {
                    res[j] = x;
                    arg[j] = g->k + q;
                }
            }
}

/* *sd += sum_i (v_i - mu), *ss += sum_i (v_i - mu)^2 for one lane, with
 * four partial sums of each (as sum8). */
static void dev_sums(const double *v, int n, double mu, double *sd, double *ss)
{
    double a[4] = {0}, b[4] = {0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int u = 0; u < 4; u++) {
            double d = v[i + u] - mu;
            a[u] += d;
            b[u] += d * d;
        }
    for (; i < n; i++) { double d = v[i] - mu; a[0] += d; b[0] += d * d; }
    *sd += (a[0] + a[1]) + (a[2] + a[3]);
    *ss += (b[0] + b[1]) + (b[2] + b[3]);
}

/* Corrected two-pass variance (Chan, Golub & LeVeque):
 *   mu = sum(x) / n,  d_k = x_k - mu,
 *   var = (sum d_k^2 - (sum d_k)^2 / n) / max(0, n - correction)
 * The second term cancels the rounding error of mu. n - correction <= 0
 * divides by zero (NaN or inf), as PyTorch does. */
static void k_var(lanes *g, double *res, int64_t *arg, const void *p)
{
    int correction = *(const int *)p, m = g->m;
    double mu[LANES], sd[LANES] = {0}, ss[LANES] = {0};
    k_mean(g, mu, arg, NULL);
    for (lanes_rewind(g); lanes_next(g);) {
        if (m == 1) { dev_sums(g->buf, g->r, mu[0], sd, ss); continue; }
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++) {
                double d = g->buf[q * m + j] - mu[j];
                sd[j] += d;
                ss[j] += d * d;
            }
    }
    double dof = g->n > correction ? (double)(g->n - correction) : 0.0;
    for (int j = 0; j < m; j++) {
        double s2 = ss[j] - sd[j] * sd[j] / (double)g->n;
        if (s2 < 0) s2 = 0;         /* rounding; a NaN stays NaN */
        res[j] = g->n ? s2 / dof : NAN;
    }
}

static void k_std(lanes *g, double *res, int64_t *arg, const void *p)
{
    k_var(g, res, arg, p);
    for (int j = 0; j < g->m; j++) res[j] = sqrt(res[j]);
}

/* Largest |x| (when magnitude) or largest x of each lane, NaN winning;
 * with no rows, 0 (magnitude) or -inf. */
static void lane_max(lanes *g, double *mx, bool magnitude)
{
    int m = g->m;
    for (int j = 0; j < m; j++) mx[j] = magnitude ? 0.0 : -INFINITY;
    for (lanes_rewind(g); lanes_next(g);)
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++) {
                double x = magnitude ? fabs(g->buf[q * m + j]) : g->buf[q * m + j];
                if (!isnan(mx[j]) && (isnan(x) || x > mx[j])) mx[j] = x;
            }
}

/* logsumexp(x) = c + log(sum_k exp(x_k - c)) with c = max_k x_k, so no exp
 * overflows and the largest term is exactly 1. When c is not finite the
 * answer is c itself: all -inf (or no rows) gives -inf, a +inf gives +inf,
 * a NaN gives NaN. */
static void k_logsumexp(lanes *g, double *res, int64_t *arg, const void *p)
{
    int m = g->m;
    double c[LANES], s[LANES] = {0};
    lane_max(g, c, false);
    for (lanes_rewind(g); lanes_next(g);)
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++) s[j] += exp(g->buf[q * m + j] - c[j]);
    for (int j = 0; j < m; j++) res[j] = isfinite(c[j]) ? c[j] + log(s[j]) : c[j];
}

/* ||x||_p = (sum_k |x_k|^p)^(1/p), computed as s * (sum_k (|x_k|/s)^p)^(1/p)
 * with s = max_k |x_k| so that neither x^p overflows nor underflows (the
 * scaling of LAPACK's dnrm2). p = 1 needs no scale; p = inf is s itself. */
static void k_norm(lanes *g, double *res, int64_t *arg, const void *p)
{
    double pw = *(const double *)p;
    int m = g->m;
    if (pw == 1) {
        for (int j = 0; j < m; j++) res[j] = 0;
        for (lanes_rewind(g); lanes_next(g);)
            for (int q = 0; q < g->r; q++)
                for (int j = 0; j < m; j++) res[j] += fabs(g->buf[q * m + j]);
        return;
    }
    double s[LANES], acc[LANES] = {0};
    lane_max(g, s, true);
    if (isinf(pw)) { memcpy(res, s, (size_t)m * sizeof *res); return; }
    for (lanes_rewind(g); lanes_next(g);)
        for (int q = 0; q < g->r; q++)
            for (int j = 0; j < m; j++) {
                if (s[j] == 0 || !isfinite(s[j])) continue;
                double t = fabs(g->buf[q * m + j]) / s[j];
                acc[j] += pw == 2 ? t * t : pow(t, pw);
            }
    for (int j = 0; j < m; j++) {
        bool plain = s[j] == 0 || !isfinite(s[j]);   /* 0, inf or NaN is the answer */
        res[j] = plain ? s[j] : s[j] * (pw == 2 ? sqrt(acc[j]) : pow(acc[j], 1.0 / pw));
    }
}

/* ==== The driver ======================================================== */

typedef struct reduce_op {
    const char *name;   /* user-facing, for messages */
    kernel fn;
    bool keep_i32;      /* i32 in gives i32 out (else f32) */
    bool nonempty;      /* the reduced dim must have elements (max, min) */
} reduce_op;

/* Run op's kernel over every lane group of contiguous c into the
 * contiguous results vals and/or idx (indices stored + base). */
/* Returns false when a result does not fit an i32 vals (*bad: the first). */
static bool reduce_run(const reduce_op *op, const void *p, const usg_tensor *c, int dim,
                       usg_tensor *vals, usg_tensor *idx, int base, double *bad)
{
    bool fits = true;
    int64_t outer, n, inner;
    usg_outer_inner(c, dim, &outer, &n, &inner);
    lanes g;
    double res[LANES];
    int64_t arg[LANES];
    g.dt = c->dtype; g.x = usg_tensor_data(c); g.n = n; g.inner = inner;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i0 = 0; i0 < inner; i0 += LANES) {
            g.m = inner - i0 < LANES ? (int)(inner - i0) : LANES;
            g.start = o * n * inner + i0;
            op->fn(&g, res, arg, p);
            int64_t at = o * inner + i0;    /* where lane 0 lands in the result */
            for (int j = 0; j < g.m; j++) {
                if (vals && vals->dtype == USG_I32 && fits && !usg_fits_i32(res[j])) {
                    fits = false;
                    *bad = res[j];
                }
                if (vals) usg_store(vals->dtype, usg_tensor_data(vals), at + j, res[j]);
                if (idx) ((int32_t *)usg_tensor_data(idx))[at + j] = (int32_t)(arg[j] + base);
            }
        }
    return fits;
}

/* acc[j] += x[j] for the j < m of one f32 row: the lanes of a wide sum,
 * added in the same order as lane_sum, a whole row at a time. */
USG_CLONES static void add_row_f32(double *restrict acc, const float *restrict x, int64_t m)
{
    for (int64_t j = 0; j < m; j++) acc[j] += x[j];
}

/* The f32 sum over a dim with many lanes (a bias gradient: (N, C) summed
 * over dim 0): the same sums as reduce_run, row after row into an inner-long
 * double buffer instead of LANES columns at a time. USG_NOMEM when the
 * buffer cannot be had; vals is then untouched. */
typedef struct wide_job {
    const float *x;
    float *y;
    double *acc;
    int64_t outer, n, inner;
} wide_job;

/* Columns lo..hi of sum_wide_f32: each column is summed in the same order
 * whatever the split, so the columns can go to different threads. */
static void sum_wide_cols(void *ctx, int64_t lo, int64_t hi)
{
    const wide_job *j = ctx;
    int64_t inner = j->inner;
    for (int64_t o = 0; o < j->outer; o++) {
        memset(j->acc + lo, 0, (size_t)(hi - lo) * sizeof *j->acc);
        for (int64_t k = 0; k < j->n; k++)
            add_row_f32(j->acc + lo, j->x + (o * j->n + k) * inner + lo, hi - lo);
        for (int64_t c = lo; c < hi; c++) j->y[o * inner + c] = (float)j->acc[c];
    }
}

static usg_status sum_wide_f32(const usg_tensor *c, int dim, usg_tensor *vals)
{
    int64_t outer, n, inner;
    usg_outer_inner(c, dim, &outer, &n, &inner);
    double *acc = usg_alloc((size_t)inner * sizeof *acc);
    if (!acc) return USG_NOMEM;
    wide_job j = {usg_tensor_data(c), usg_tensor_data(vals), acc, outer, n, inner};
    int64_t cols = usg_grain(outer * n);                 /* at least 64 columns a part */
    usg_parallel_for(inner, cols > 64 ? cols : 64, sum_wide_cols, &j);
    usg_free(acc);
    return USG_OK;
}

/* A 0-dim tensor accepts dim 0 and -1 (its one element), as PyTorch does. */
static usg_status reduce_dim(int *dim, const usg_tensor *a, const char *fn)
{
    if (*dim == USG_ALL_DIMS) return USG_OK;
    if (a->ndim == 0 && (*dim == 0 || *dim == -1)) { *dim = USG_ALL_DIMS; return USG_OK; }
    return usg_check_dim(dim, a->ndim, 0, fn);
}

static usg_status check_reduce(const reduce_op *op, const usg_tensor *a, int *dim,
                               bool want_idx, int base)
{
    char b[256];
    if (!a) return usg_fail(USG_ARG, "%s: input must be a tensor, got NULL", op->name);
    usg_status s = reduce_dim(dim, a, op->name);
    if (s != USG_OK) return s;
    int64_t outer, n, inner;
    usg_outer_inner(a, *dim, &outer, &n, &inner);
    usg_shape_str(b, sizeof b, a->ndim, a->shape);
    if (op->nonempty && n == 0) {
        if (*dim == USG_ALL_DIMS)
            return usg_fail(USG_ARG, "%s: cannot reduce over an empty dim: the tensor of "
                            "shape %s has no elements", op->name, b);
        return usg_fail(USG_ARG, "%s: cannot reduce over an empty dim: dim %d of shape %s "
                        "has size 0", op->name, *dim + 1, b);
    }
    if (want_idx && (n - 1) + (int64_t)base > INT32_MAX)
        return usg_fail(USG_ARG, "%s: %lld elements along the reduced dim of shape %s do "
                        "not fit i32 indices", op->name, (long long)n, b);
    return USG_OK;
}

static usg_status reduce(usg_tensor **vals, usg_tensor **idx, const usg_tensor *a, int dim,
                         bool keepdim, int base, const reduce_op *op, const void *p)
{
    if (vals) *vals = NULL;
    if (idx) *idx = NULL;
    if (!vals && !idx)
        return usg_fail(USG_ARG, "%s: no output asked for (the out pointers are NULL)",
                        op->name);
    usg_status s = check_reduce(op, a, &dim, idx != NULL, base);
    if (s != USG_OK) return s;
    int64_t shape[USG_MAX_DIMS];
    int nd = usg_reduced_shape(shape, a, dim, keepdim);
    usg_dtype odt = a->dtype == USG_I32 && !op->keep_i32 ? USG_F32 : a->dtype;
    usg_tensor *c = NULL, *v = NULL, *ix = NULL;
    /* usg_contiguous only retains (or copies) a; it never writes to it. */
    if ((s = usg_contiguous(&c, (usg_tensor *)a)) != USG_OK) goto fail;
    if (vals && (s = usg_tensor_empty(&v, odt, nd, shape)) != USG_OK) goto fail;
    if (idx && (s = usg_tensor_empty(&ix, USG_I32, nd, shape)) != USG_OK) goto fail;
    int64_t outer, n, inner;
    usg_outer_inner(c, dim, &outer, &n, &inner);
    if (op->fn == k_sum && c->dtype == USG_F32 && inner >= LANES && vals && !idx) {
        if ((s = sum_wide_f32(c, dim, v)) != USG_OK) goto fail;
    } else {
        double bad = 0;
        if (!reduce_run(op, p, c, dim, v, ix, base, &bad)) {
            /* the exact value, unless it left int64 on the way (I32_OUT) */
            s = bad == (double)I32_OUT || bad == -(double)I32_OUT
                ? usg_fail(USG_ARG, "%s: the result does not fit in i32 (-2147483648 .. "
                           "2147483647); compute in f64 instead (usagi has no int64)", op->name)
                : usg_fail_i32(op->name, "result", bad);
            goto fail;
        }
    }
    usg_tensor_release(c);
    if (vals) *vals = v;
    if (idx) *idx = ix;
    return USG_OK;
fail:
    usg_tensor_release(c);
    usg_tensor_release(v);
    usg_tensor_release(ix);
    return s;
}

/* ==== Entry points ====================================================== */

static const reduce_op OP_SUM = {"sum", k_sum, true, false};
static const reduce_op OP_MEAN = {"mean", k_mean, false, false};
static const reduce_op OP_PROD = {"prod", k_prod, true, false};
static const reduce_op OP_MAX = {"max", k_extreme, true, true};
static const reduce_op OP_MIN = {"min", k_extreme, true, true};
static const reduce_op OP_VAR = {"var", k_var, false, false};
static const reduce_op OP_STD = {"std", k_std, false, false};
static const reduce_op OP_LSE = {"logsumexp", k_logsumexp, false, false};
static const reduce_op OP_NORM = {"norm", k_norm, false, false};

usg_status usg_sum(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim)
{
    return reduce(out, NULL, a, dim, keepdim, 0, &OP_SUM, NULL);
}

usg_status usg_mean(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim)
{
    return reduce(out, NULL, a, dim, keepdim, 0, &OP_MEAN, NULL);
}

usg_status usg_prod(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim)
{
    return reduce(out, NULL, a, dim, keepdim, 0, &OP_PROD, NULL);
}

usg_status usg_max(usg_tensor **values, usg_tensor **indices, const usg_tensor *a, int dim,
                   bool keepdim, int base)
{
    int sign = 1;
    return reduce(values, indices, a, dim, keepdim, base, &OP_MAX, &sign);
}

usg_status usg_min(usg_tensor **values, usg_tensor **indices, const usg_tensor *a, int dim,
                   bool keepdim, int base)
{
    int sign = -1;
    return reduce(values, indices, a, dim, keepdim, base, &OP_MIN, &sign);
}

static usg_status var_std(const reduce_op *op, usg_tensor **out, const usg_tensor *a,
                          int dim, bool keepdim, int correction)
{
    if (out) *out = NULL;
    if (correction < 0)
        return usg_fail(USG_ARG, "%s: correction must be >= 0, got %d", op->name, correction);
    return reduce(out, NULL, a, dim, keepdim, 0, op, &correction);
}

usg_status usg_var(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim, int correction)
{
    return var_std(&OP_VAR, out, a, dim, keepdim, correction);
}

usg_status usg_std(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim, int correction)
{
    return var_std(&OP_STD, out, a, dim, keepdim, correction);
}

usg_status usg_logsumexp(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim)
{
    return reduce(out, NULL, a, dim, keepdim, 0, &OP_LSE, NULL);
}

usg_status usg_norm(usg_tensor **out, const usg_tensor *a, double p, int dim, bool keepdim)
{
    if (out) *out = NULL;
    if (!(p > 0))   /* also catches NaN */
        return usg_fail(USG_ARG, "norm: p must be > 0 (inf allowed), got %g", p);
    return reduce(out, NULL, a, dim, keepdim, 0, &OP_NORM, &p);
}

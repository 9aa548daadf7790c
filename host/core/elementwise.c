/*
 * elementwise.c -- unary and binary elementwise ops with NumPy broadcasting,
 * clamp, where and allclose.
 *
 * Two paths: a tight loop when every operand is contiguous and already in
 * the compute dtype (the common case in training), and a strided walk that
 * loads each element as a double otherwise. Both give the same bits: for
 * + - * / a float result computed in double and rounded once equals the
 * float operation (double has more than 2p + 2 bits). i32 + - * of
 * contiguous operands have a loop of their own in int64.
 *
 * i32 results never wrap or saturate: one outside the i32 range is an
 * error naming the op (usg_fail_i32), found before an in-place op writes
 * anything.
 *
 * A kernel: it calls tensor.c (and parallel.c) only; the tape
 * (autograd.c) calls it to add gradients, never the other way.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* ==== Scalar semantics ================================================== */

const char *usg_binop_name(usg_binop op)
{
    static const char *names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                  "eq", "ne", "lt", "le", "gt", "ge"};
    return (unsigned)op < sizeof names / sizeof *names ? names[op] : "?";
}

const char *usg_unop_name(usg_unop op)
{
    static const char *names[] = {"neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid",
                                  "relu", "sign", "floor", "ceil", "round", "log1p", "sin",
                                  "cos", "square", "reciprocal"};
    return (unsigned)op < sizeof names / sizeof *names ? names[op] : "?";
}

static inline double bin(usg_binop op, double x, double y)
{
    switch (op) {
    case USG_ADD: return x + y;
    case USG_SUB: return x - y;
    case USG_MUL: return x * y;
    case USG_DIV: return x / y;
    case USG_POW: return pow(x, y);
    case USG_MAXIMUM: return (x != x || x > y) ? x : y;      /* NaN propagates */
    case USG_MINIMUM: return (x != x || x < y) ? x : y;
    case USG_EQ: return x == y;
    case USG_NE: return x != y;
    case USG_LT: return x < y;
    case USG_LE: return x <= y;
    case USG_GT: return x > y;
    case USG_GE: return x >= y;
    }
    return 0;
}

/* sigmoid(x) = 1 / (1 + e^-x), written so that neither branch overflows */
static inline double sigmoid(double x)
{
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

static inline double un(usg_unop op, double x)
{
    switch (op) {
    case USG_NEG: return -x;
    case USG_ABS: return fabs(x);
    case USG_EXP: return exp(x);
    case USG_LOG: return log(x);
    case USG_SQRT: return sqrt(x);
    case USG_TANH: return tanh(x);
    case USG_SIGMOID: return sigmoid(x);
    case USG_RELU: return x > 0 ? x : (x != x ? x : 0);
    case USG_SIGN: return x > 0 ? 1 : x < 0 ? -1 : x;      /* sign(NaN) = NaN, sign(-0) = -0 */
    case USG_FLOOR: return floor(x);
    case USG_CEIL: return ceil(x);
    case USG_ROUND: return nearbyint(x);                     /* half to even, as PyTorch */
    case USG_LOG1P: return log1p(x);
    case USG_SIN: return sin(x);
    case USG_COS: return cos(x);
    case USG_SQUARE: return x * x;
    case USG_RECIPROCAL: return 1 / x;
    }
    return 0;
}

static bool is_comparison(usg_binop op) { return op >= USG_EQ; }
static bool keeps_int(usg_unop op)
{
    return op == USG_NEG || op == USG_ABS || op == USG_RELU || op == USG_SIGN ||
           op == USG_FLOOR || op == USG_CEIL || op == USG_ROUND || op == USG_SQUARE;
}

static usg_status check_binop(const char *fn, usg_binop op)
{
    if ((unsigned)op > USG_GE) return usg_fail(USG_ARG, "%s: unknown binary op %d", fn, (int)op);
    return USG_OK;
}

/* An in-place target must not have elements that share memory (an
 * expanded view): the op would see its own output (exp_ would apply exp
 * twice). The message names the method, e.g. "exp_". */
static usg_status check_target(const char *fn, const usg_tensor *a)
{
    char name[32];
    snprintf(name, sizeof name, "%s_", fn);
    return usg_check_writable(a, name);
}

/* ==== Kernels =========================================================== */

/* i32 + - * over contiguous x and either contiguous y or one value yv for
 * all (y NULL): each result exact in int64, the range tracked by one flag
 * so the loop stays a plain vector loop; the first result out of range is
 * looked for again only when there is one. Returns whether all fit. */
#define I32_LOOP(expr)                                                          \
    for (int64_t i = 0; i < n; i++) {                                           \
        int64_t r = (expr);                                                     \
        over |= r != (int32_t)r;                                                \
        if (write) o[i] = (int32_t)r;                                           \
    }
static bool i32_kernel(int32_t *o, const int32_t *x, const int32_t *y, int64_t yv,
                       usg_binop op, int64_t n, bool write, double *bad)
{
    bool over = false;
    if (y) {
        if (op == USG_ADD) I32_LOOP((int64_t)x[i] + y[i])
        else if (op == USG_SUB) I32_LOOP((int64_t)x[i] - y[i])
        else I32_LOOP((int64_t)x[i] * y[i])
    } else {
        if (op == USG_ADD) I32_LOOP((int64_t)x[i] + yv)
        else if (op == USG_SUB) I32_LOOP((int64_t)x[i] - yv)
        else I32_LOOP((int64_t)x[i] * yv)
    }
    for (int64_t i = 0; over && i < n; i++) {
        int64_t b = y ? y[i] : yv;
        int64_t r = op == USG_ADD ? x[i] + b : op == USG_SUB ? x[i] - b : x[i] * b;
        if (r != (int32_t)r) { *bad = (double)r; break; }
    }
    return !over;
}
#undef I32_LOOP

/* Whether binary_kernel can take i32_kernel, and with what y: b contiguous
 * i32, or one integral value that fits (a scalar, broadcast with stride 0). */
static bool i32_fast(const usg_tensor *out, usg_binop op, const usg_tensor *a,
                     const usg_tensor *b, usg_dtype cdt, const int32_t **y, int64_t *yv)
{
    if (cdt != USG_I32 || out->dtype != USG_I32 || a->dtype != USG_I32 ||
        (op != USG_ADD && op != USG_SUB && op != USG_MUL) ||
        !usg_tensor_is_contiguous(a) || !usg_tensor_is_contiguous(out))
        return false;
    if (b->dtype == USG_I32 && usg_tensor_is_contiguous(b)) {
        *y = usg_tensor_data(b);
        return true;
    }
    for (int d = 0; d < b->ndim; d++)
        if (b->stride[d] != 0) return false;
    double v = usg_load(b->dtype, b->storage->data, b->offset);
    if (v != floor(v) || !usg_fits_i32(v)) return false;
    *y = NULL;
    *yv = (int64_t)v;
    return true;
}

/* out = a op b where a and b already have out's shape (possibly stride 0).
 * `cdt` is the dtype the op computes in. Into an i32 out, a result outside
 * the i32 range makes it return false (after writing all of out, saturated
 * there); with write false it only computes, for an in-place op to learn
 * that before it changes anything. The f32 loop is untouched by this. */
static bool binary_kernel(usg_tensor *out, usg_binop op, const usg_tensor *a,
                          const usg_tensor *b, usg_dtype cdt, bool write, double *bad)
{
    int64_t n = usg_tensor_numel(out);
    if (cdt == USG_F32 && out->dtype == USG_F32 && a->dtype == USG_F32 &&
        b->dtype == USG_F32 && usg_tensor_is_contiguous(a) && usg_tensor_is_contiguous(b) &&
        usg_tensor_is_contiguous(out)) {
        float *o = usg_tensor_data(out);
        const float *x = usg_tensor_data(a), *y = usg_tensor_data(b);
        switch (op) {
        case USG_ADD: for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i]; return true;
        case USG_SUB: for (int64_t i = 0; i < n; i++) o[i] = x[i] - y[i]; return true;
        case USG_MUL: for (int64_t i = 0; i < n; i++) o[i] = x[i] * y[i]; return true;
        case USG_DIV: for (int64_t i = 0; i < n; i++) o[i] = x[i] / y[i]; return true;
        default: for (int64_t i = 0; i < n; i++) o[i] = (float)bin(op, x[i], y[i]); return true;
        }
    }
    const int32_t *yi;
    int64_t yv = 0;
    if (i32_fast(out, op, a, b, cdt, &yi, &yv))
        return i32_kernel(usg_tensor_data(out), usg_tensor_data(a), yi, yv, op, n, write, bad);
    usg_walk wo, wa, wb;
    usg_walk_init(&wo, out);
    usg_walk_init(&wa, a);
    usg_walk_init(&wb, b);
    bool to_int = cdt == USG_I32 && !is_comparison(op);
    bool check = out->dtype == USG_I32 && !is_comparison(op), fits = true;
    for (int64_t i = 0; i < n; i++) {
        double x = usg_load(a->dtype, a->storage->data, wa.off);
        double y = usg_load(b->dtype, b->storage->data, wb.off);
        double r = bin(op, x, y);
        if (to_int && op == USG_POW) r = trunc(r);
        if (cdt == USG_F32 && !is_comparison(op)) r = (float)r;
        if (check && fits && !usg_fits_i32(r)) {
            fits = false;
            *bad = r;
            if (!write) return false;
        }
        if (write) usg_store(out->dtype, out->storage->data, wo.off, r);
        usg_walk_next(&wo);
        usg_walk_next(&wa);
        usg_walk_next(&wb);
    }
    return fits;
}

/* out = op(a); the i32 range as in binary_kernel (neg and abs of
 * -2147483648 and square overflow). */
static bool unary_kernel(usg_tensor *out, usg_unop op, const usg_tensor *a, bool write,
                         double *bad)
{
    int64_t n = usg_tensor_numel(out);
    if (out->dtype == USG_F32 && a->dtype == USG_F32 && usg_tensor_is_contiguous(a) &&
        usg_tensor_is_contiguous(out)) {
        float *o = usg_tensor_data(out);
        const float *x = usg_tensor_data(a);
        /* no expf/tanhf here: they differ from the double functions rounded
         * once (tanhf on ~15% of inputs), and a result must not depend on
         * whether its input was contiguous */
        switch (op) {
        case USG_NEG: for (int64_t i = 0; i < n; i++) o[i] = -x[i]; return true;
        case USG_RELU: for (int64_t i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : (x[i] != x[i] ? x[i] : 0); return true;
        default: for (int64_t i = 0; i < n; i++) o[i] = (float)un(op, x[i]); return true;
        }
    }
    usg_walk wo, wa;
    usg_walk_init(&wo, out);
    usg_walk_init(&wa, a);
    bool check = out->dtype == USG_I32, fits = true;
    for (int64_t i = 0; i < n; i++) {
        double r = un(op, usg_load(a->dtype, a->storage->data, wa.off));
        if (check && fits && !usg_fits_i32(r)) {
            fits = false;
            *bad = r;
            if (!write) return false;
        }
        if (write) usg_store(out->dtype, out->storage->data, wo.off, r);
        usg_walk_next(&wo);
        usg_walk_next(&wa);
    }
    return fits;
}

/* ==== Binary ops ======================================================== */

static usg_dtype binary_dtype(usg_binop op, usg_dtype a, usg_dtype b)
{
    usg_dtype c = usg_dtype_promote(a, b);
    return (c == USG_I32 && op == USG_DIV) ? USG_F32 : c;
}

/* x itself (retained) when it has out's shape already -- the common case,
 * saving an allocation per operand -- else an expanded view. */
static usg_status broadcast_to(usg_tensor **r, const usg_tensor *x, const usg_tensor *out)
{
    if (usg_same_shape(x, out)) {
        usg_tensor_retain((usg_tensor *)x);
        *r = (usg_tensor *)x;
        return USG_OK;
    }
    return usg_expand(r, (usg_tensor *)x, out->ndim, out->shape);
}

/* Expand a and b to out's shape and run the kernel; releases nothing of the
 * caller's. */
static usg_status run_binary(usg_tensor *out, usg_binop op, const usg_tensor *a,
                             const usg_tensor *b, usg_dtype cdt, bool in_place)
{
    usg_tensor *ae = NULL, *be = NULL, *bc = NULL;
    double bad = 0;
    usg_status s = broadcast_to(&ae, a, out);
    if (s == USG_OK) s = broadcast_to(&be, b, out);
    /* in place with b aliasing out: read from a copy of b */
    if (s == USG_OK && be->storage == out->storage && out != b) {
        if ((s = usg_clone(&bc, be)) == USG_OK) { usg_tensor_release(be); be = bc; }
    }
    /* an i32 result out of range is an error; in place, found by a dry run
     * before anything is written */
    char name[32];
    snprintf(name, sizeof name, in_place ? "%s_" : "%s", usg_binop_name(op));
    if (s == USG_OK && in_place && out->dtype == USG_I32 &&
        !binary_kernel(out, op, ae, be, cdt, false, &bad))
        s = usg_fail_i32(name, "result", bad);
    if (s == USG_OK && !binary_kernel(out, op, ae, be, cdt, true, &bad))
        s = usg_fail_i32(name, "result", bad);
    usg_tensor_release(ae);
    usg_tensor_release(be);
    return s;
}

usg_status usg_binary(usg_tensor **out, usg_binop op, const usg_tensor *a, const usg_tensor *b)
{
    const char *fn = usg_binop_name(op);
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    *out = NULL;
    usg_status s = check_binop(fn, op);
    if (s != USG_OK) return s;
    if ((s = usg_broadcast_shape(&ndim, shape, a->ndim, a->shape, b->ndim, b->shape)) != USG_OK)
        return usg_fail(s, "%s: %s", fn, usg_errmsg());
    usg_dtype cdt = binary_dtype(op, a->dtype, b->dtype);
    if ((s = usg_tensor_empty(out, is_comparison(op) ? USG_I32 : cdt, ndim, shape)) != USG_OK)
        return s;
    if ((s = run_binary(*out, op, a, b, cdt, false)) != USG_OK) {
        usg_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

usg_status usg_binary_(usg_tensor *a, usg_binop op, const usg_tensor *b)
{
    const char *fn = usg_binop_name(op);
    usg_status s = check_binop(fn, op);
    if (s != USG_OK) return s;
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    char b1[256], b2[256];
    if (usg_broadcast_shape(&ndim, shape, a->ndim, a->shape, b->ndim, b->shape) != USG_OK ||
        ndim != a->ndim || memcmp(shape, a->shape, (size_t)ndim * sizeof *shape) != 0)
        return usg_fail(USG_SHAPE, "%s_: %s does not broadcast to the in-place target %s", fn,
                        usg_shape_str(b1, sizeof b1, b->ndim, b->shape),
                        usg_shape_str(b2, sizeof b2, a->ndim, a->shape));
    if ((s = check_target(fn, a)) != USG_OK) return s;
    usg_dtype cdt = a->dtype == USG_I32 && op == USG_DIV ? USG_F32 : a->dtype;
    if ((s = run_binary(a, op, a, b, cdt, true)) == USG_OK) a->storage->version++;
    return s;
}

/* A 0-dim tensor on the stack holding one double: no allocation, so the
 * scalar forms cost the same as a broadcast. */
static void scalar_view(usg_tensor *t, usg_storage *st, double *v)
{
    memset(t, 0, sizeof *t);
    st->data = v; st->nbytes = sizeof *v; st->refcount = 1 << 30;
    t->storage = st; t->dtype = USG_F64; t->refcount = 1 << 30;
}

usg_status usg_binary_scalar(usg_tensor **out, usg_binop op, const usg_tensor *a, double v,
                             bool scalar_first)
{
    const char *fn = usg_binop_name(op);
    *out = NULL;
    usg_status s = check_binop(fn, op);
    if (s != USG_OK) return s;
    usg_tensor st;
    usg_storage ss;
    scalar_view(&st, &ss, &v);
    /* an i32 tensor and an integral scalar stay i32 (except true division) */
    usg_dtype sdt = (a->dtype == USG_I32 && v == floor(v) && fabs(v) < 2147483648.0) ? USG_I32
                    : USG_F32;
    usg_dtype cdt = usg_dtype_is_float(a->dtype) ? a->dtype : binary_dtype(op, a->dtype, sdt);
    /* the scalar takes the compute type first (PyTorch's rule): an f32
     * tensor holding 0.1f must compare equal to 0.1 */
    if (cdt == USG_F32) v = (float)v;
    if ((s = usg_tensor_empty(out, is_comparison(op) ? USG_I32 : cdt, a->ndim, a->shape)) != USG_OK)
        return s;
    s = scalar_first ? run_binary(*out, op, &st, a, cdt, false)
                     : run_binary(*out, op, a, &st, cdt, false);
    if (s != USG_OK) { usg_tensor_release(*out); *out = NULL; }
    return s;
}

usg_status usg_binary_scalar_(usg_tensor *a, usg_binop op, double v)
{
    usg_tensor st;
    usg_storage ss;
    if (a->dtype == USG_F32) v = (float)v;     /* as in usg_binary_scalar */
    scalar_view(&st, &ss, &v);
    return usg_binary_(a, op, &st);
}

/* ==== Unary ops ========================================================= */

usg_status usg_unary(usg_tensor **out, usg_unop op, const usg_tensor *a)
{
    *out = NULL;
    if ((unsigned)op > USG_RECIPROCAL) return usg_fail(USG_ARG, "unary: unknown op %d", (int)op);
    usg_dtype dt = (a->dtype == USG_I32 && !keeps_int(op)) ? USG_F32 : a->dtype;
    usg_status s = usg_tensor_empty(out, dt, a->ndim, a->shape);
    double bad = 0;
    if (s == USG_OK && !unary_kernel(*out, op, a, true, &bad)) {
        usg_tensor_release(*out);
        *out = NULL;
        s = usg_fail_i32(usg_unop_name(op), "result", bad);
    }
    return s;
}

usg_status usg_unary_(usg_tensor *a, usg_unop op)
{
    if ((unsigned)op > USG_RECIPROCAL) return usg_fail(USG_ARG, "unary: unknown op %d", (int)op);
    if (a->dtype == USG_I32 && !keeps_int(op))
        return usg_fail(USG_TYPE, "%s_: an i32 tensor cannot hold the result in place; "
                        "use %s() (gives f32)", usg_unop_name(op), usg_unop_name(op));
    usg_status s = check_target(usg_unop_name(op), a);
    if (s != USG_OK) return s;
    /* elementwise on the same offsets, so aliasing is harmless; an i32
     * result out of range is found by a dry run before anything changes */
    double bad = 0;
    char name[32];
    snprintf(name, sizeof name, "%s_", usg_unop_name(op));
    if (a->dtype == USG_I32 && !unary_kernel(a, op, a, false, &bad))
        return usg_fail_i32(name, "result", bad);
    unary_kernel(a, op, a, true, &bad);
    a->storage->version++;
    return USG_OK;
}

/* ==== clamp, where, allclose ============================================ */

static void clamp_kernel(usg_tensor *out, const usg_tensor *a, double lo, double hi)
{
    int64_t n = usg_tensor_numel(a);
    usg_walk wo, wa;
    usg_walk_init(&wo, out);
    usg_walk_init(&wa, a);
    for (int64_t i = 0; i < n; i++) {
        double x = usg_load(a->dtype, a->storage->data, wa.off);
        if (lo == lo && x < lo) x = lo;
        if (hi == hi && x > hi) x = hi;
        usg_store(out->dtype, out->storage->data, wo.off, x);
        usg_walk_next(&wo);
        usg_walk_next(&wa);
    }
}

/* For an i32 tensor a bound past the i32 range would become every value
 * of the result; such a bound is refused as the other i32 overflows are. */
static usg_status check_clamp(const char *fn, const usg_tensor *a, double lo, double hi)
{
    if (lo == lo && hi == hi && lo > hi)
        return usg_fail(USG_ARG, "%s: min %g is greater than max %g", fn, lo, hi);
    if (a->dtype == USG_I32 && lo == lo && lo > 2147483647.0) return usg_fail_i32(fn, "min", lo);
    if (a->dtype == USG_I32 && hi == hi && hi < -2147483648.0) return usg_fail_i32(fn, "max", hi);
    return USG_OK;
}

usg_status usg_clamp(usg_tensor **out, const usg_tensor *a, double lo, double hi)
{
    *out = NULL;
    usg_status s = check_clamp("clamp", a, lo, hi);
    if (s == USG_OK) s = usg_tensor_empty(out, a->dtype, a->ndim, a->shape);
    if (s == USG_OK) clamp_kernel(*out, a, lo, hi);
    return s;
}

usg_status usg_clamp_(usg_tensor *a, double lo, double hi)
{
    usg_status s = check_clamp("clamp_", a, lo, hi);
    if (s == USG_OK) s = usg_check_writable(a, "clamp_");
    if (s == USG_OK) { clamp_kernel(a, a, lo, hi); a->storage->version++; }
    return s;
}

usg_status usg_where(usg_tensor **out, const usg_tensor *cond, const usg_tensor *a,
                     const usg_tensor *b)
{
    int n1, n2;
    int64_t s1[USG_MAX_DIMS], s2[USG_MAX_DIMS];
    *out = NULL;
    usg_status s = usg_broadcast_shape(&n1, s1, cond->ndim, cond->shape, a->ndim, a->shape);
    if (s == USG_OK) s = usg_broadcast_shape(&n2, s2, n1, s1, b->ndim, b->shape);
    if (s != USG_OK) return usg_fail(s, "where: %s", usg_errmsg());
    usg_tensor *ce = NULL, *ae = NULL, *be = NULL;
    if ((s = usg_tensor_empty(out, usg_dtype_promote(a->dtype, b->dtype), n2, s2)) == USG_OK &&
        (s = usg_expand(&ce, (usg_tensor *)cond, n2, s2)) == USG_OK &&
        (s = usg_expand(&ae, (usg_tensor *)a, n2, s2)) == USG_OK &&
        (s = usg_expand(&be, (usg_tensor *)b, n2, s2)) == USG_OK) {
        int64_t n = usg_tensor_numel(*out);
        usg_walk wc, wa, wb;
        usg_walk_init(&wc, ce); usg_walk_init(&wa, ae); usg_walk_init(&wb, be);
        for (int64_t i = 0; i < n; i++) {
            double v = usg_load(ce->dtype, ce->storage->data, wc.off) != 0
                ? usg_load(ae->dtype, ae->storage->data, wa.off)
                : usg_load(be->dtype, be->storage->data, wb.off);
            usg_store((*out)->dtype, (*out)->storage->data, i, v);
            usg_walk_next(&wc); usg_walk_next(&wa); usg_walk_next(&wb);
        }
    }
    usg_tensor_release(ce); usg_tensor_release(ae); usg_tensor_release(be);
    if (s != USG_OK) { usg_tensor_release(*out); *out = NULL; }
    return s;
}

usg_status usg_allclose(bool *result, const usg_tensor *a, const usg_tensor *b, double rtol,
                        double atol)
{
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    *result = false;
    usg_status s = usg_broadcast_shape(&ndim, shape, a->ndim, a->shape, b->ndim, b->shape);
    if (s != USG_OK) return usg_fail(s, "allclose: %s", usg_errmsg());
    usg_tensor *ae = NULL, *be = NULL;
    if ((s = usg_expand(&ae, (usg_tensor *)a, ndim, shape)) == USG_OK &&
        (s = usg_expand(&be, (usg_tensor *)b, ndim, shape)) == USG_OK) {
        int64_t n = usg_tensor_numel(ae);
        usg_walk wa, wb;
        usg_walk_init(&wa, ae); usg_walk_init(&wb, be);
        bool ok = true;
        for (int64_t i = 0; i < n && ok; i++) {
            double x = usg_load(ae->dtype, ae->storage->data, wa.off);
            double y = usg_load(be->dtype, be->storage->data, wb.off);
            /* an inf is close to the same inf only (rtol * inf would
             * accept anything, as PyTorch's isclose does not) */
            ok = x == y || (isfinite(x) && isfinite(y) && fabs(x - y) <= atol + rtol * fabs(y));
            usg_walk_next(&wa); usg_walk_next(&wb);
        }
        *result = ok;
    }
    usg_tensor_release(ae);
    usg_tensor_release(be);
    return s;
}

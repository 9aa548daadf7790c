/*
 * optim.c -- the update loops of SGD, Adam / AdamW, Adagrad and RMSprop,
 * and the global gradient norm with clipping.
 *
 * One call updates one parameter in place from its gradient and its state
 * tensors; the optimizer objects (param groups, state, step counts, schedules)
 * live in scripts/usagi/optim.lua. Each rule is written once, as a function
 * of one element in double (p, g and up to three state values), and a single
 * driver runs it over the contiguous f32 or f64 buffers. The equations are
 * those of PyTorch 1.13's torch.optim (the single-tensor path), with the
 * names of its code: d_p, exp_avg, exp_avg_sq, square_avg, ...
 *
 * Not here: allocating state (the caller gives zeros or the initial
 * accumulator), learning-rate schedules, anything that loops over
 * parameters.
 */
#include <math.h>

#include "internal.h"
#include "usagi/fastmath.h"
#include "usagi/optim.h"

/* ==== Checks ============================================================ */

static usg_status check_param(const usg_tensor *p, const char *fn)
{
    if (!usg_dtype_is_float(p->dtype))
        return usg_fail(USG_TYPE, "%s: param must be f32 or f64, got %s", fn,
                        usg_dtype_name(p->dtype));
    if (!usg_tensor_is_contiguous(p))
        return usg_fail(USG_ARG, "%s: param must be contiguous (a leaf tensor, not a view)", fn);
    return USG_OK;
}

/* t (grad or state) must have p's shape and dtype; state must also be
 * contiguous, since it is written in place. */
static usg_status check_like(const usg_tensor *t, const usg_tensor *p, const char *fn,
                             const char *arg, bool state)
{
    char s1[128], s2[128];
    if (!t)
        return usg_fail(USG_ARG, "%s: %s is required with these options, got none", fn, arg);
    if (t->dtype != p->dtype || !usg_same_shape(t, p))
        return usg_fail(usg_same_shape(t, p) ? USG_TYPE : USG_SHAPE,
                        "%s: %s must be %s %s like the param, got %s %s", fn, arg,
                        usg_dtype_name(p->dtype), usg_shape_str(s1, sizeof s1, p->ndim, p->shape),
                        usg_dtype_name(t->dtype), usg_shape_str(s2, sizeof s2, t->ndim, t->shape));
    if (state && !usg_tensor_is_contiguous(t))
        return usg_fail(USG_ARG, "%s: %s must be contiguous", fn, arg);
    if (state && t->storage == p->storage)
        return usg_fail(USG_ARG, "%s: %s must not share memory with the param", fn, arg);
    return USG_OK;
}

/* A hyper-parameter that must be a finite number >= lo (and < hi when hi > lo). */
static usg_status check_num(double v, double lo, double hi, const char *fn, const char *name)
{
    if (!isfinite(v) || v < lo || (hi > lo && v >= hi)) {
        if (hi > lo)
            return usg_fail(USG_ARG, "%s: %s must be in [%g, %g), got %g", fn, name, lo, hi, v);
        return usg_fail(USG_ARG, "%s: %s must be a finite number >= %g, got %g", fn, name, lo, v);
    }
    return USG_OK;
}

static usg_status check_step(int64_t step, const char *fn)
{
    if (step < 1)
        return usg_fail(USG_ARG, "%s: step must be >= 1 (the count including this step), "
                        "got %lld", fn, (long long)step);
    return USG_OK;
}

/* ==== The driver ======================================================== */

/* One element of an update rule: returns the new parameter value; s holds
 * the element's state values (read and written). */
typedef double (*elem_fn)(double p, double g, double *s, const void *k);

/* Inlined into each step function, so the compiler sees the constant rule
 * f and inlines it into the loop too (an indirect call per element costs
 * more than the arithmetic). */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* p[i] = f(p[i], g[i], s[.][i]) over n contiguous elements of dtype dt. */
static ALWAYS_INLINE void drive(usg_dtype dt, int64_t n, void *p, const void *g, void *const st[3],
                  elem_fn f, const void *k)
{
    if (dt == USG_F32) {
        float *P = p, *S0 = st[0], *S1 = st[1], *S2 = st[2];
        const float *G = g;
        for (int64_t i = 0; i < n; i++) {
            double s[3] = {S0 ? S0[i] : 0, S1 ? S1[i] : 0, S2 ? S2[i] : 0};
            P[i] = (float)f(P[i], G[i], s, k);
            if (S0) S0[i] = (float)s[0];
            if (S1) S1[i] = (float)s[1];
            if (S2) S2[i] = (float)s[2];
        }
    } else {
        double *P = p, *S0 = st[0], *S1 = st[1], *S2 = st[2];
        const double *G = g;
        for (int64_t i = 0; i < n; i++) {
            double s[3] = {S0 ? S0[i] : 0, S1 ? S1[i] : 0, S2 ? S2[i] : 0};
            P[i] = f(P[i], G[i], s, k);
            if (S0) S0[i] = s[0];
            if (S1) S1[i] = s[1];
            if (S2) S2[i] = s[2];
        }
    }
}

/* Run f over param with grad made contiguous (the only allocation) and the
 * state tensors st (NULL entries unused). The param's storage version is
 * bumped: it was written in place. */
static ALWAYS_INLINE usg_status apply(usg_tensor *param, usg_tensor *grad, usg_tensor *const st[3],
                        elem_fn f, const void *k)
{
    usg_tensor *g;
    usg_status s = usg_contiguous(&g, grad);
    if (s != USG_OK) return s;
    void *sd[3];
    for (int j = 0; j < 3; j++) sd[j] = st[j] ? usg_tensor_data(st[j]) : NULL;
    drive(param->dtype, usg_tensor_numel(param), usg_tensor_data(param), usg_tensor_data(g),
          sd, f, k);
    param->storage->version++;
    usg_tensor_release(g);
    return USG_OK;
}

/* ==== SGD =============================================================== */

typedef struct sgd_k { usg_sgd_opts o; bool first; } sgd_k;

/*   d_p = g + wd p
 *   b   = d_p                              on the first step
 *   b   = mu b + (1 - dampening) d_p       after it
 *   d_p = d_p + mu b  (Nesterov)  or  b    (when mu != 0)
 *   p   = p - lr d_p                                              */
static double sgd_elem(double p, double g, double *s, const void *kv)
{
    const sgd_k *k = kv;
    double d = k->o.weight_decay != 0 ? g + k->o.weight_decay * p : g;
    if (k->o.momentum != 0) {
        s[0] = k->first ? d : k->o.momentum * s[0] + (1 - k->o.dampening) * d;
        d = k->o.nesterov ? d + k->o.momentum * s[0] : s[0];
    }
    return p - k->o.lr * d;
}

/* plain SGD in f32, p = p - lr g, as sgd_elem computes it (in f64, rounded
 * once), in a loop the compiler vectorizes */
USG_CLONES static void sgd_plain_f32(float *p, const float *g, double lr, int64_t n)
{
    for (int64_t i = 0; i < n; i++) p[i] = (float)((double)p[i] - lr * (double)g[i]);
}

/* The plain SGD and Adam loops over ranges of elements, for usg_parallel_for:
 * every element's update is its own, so any split gives the same bits. */
typedef struct plain_job {
    float *p, *m, *v;
    const float *g;
    double lr, b1, b2, step_size, inv_bc2_sqrt, eps;
} plain_job;

static void sgd_range(void *ctx, int64_t lo, int64_t hi)
{
    const plain_job *j = ctx;
    sgd_plain_f32(j->p + lo, j->g + lo, j->lr, hi - lo);
}

usg_status usg_sgd_step(usg_tensor *param, usg_tensor *grad, usg_tensor *buf, int64_t step,
                        const usg_sgd_opts *o)
{
    const char *fn = "SGD";
    usg_status s;
    if ((s = check_num(o->lr, 0, 0, fn, "lr")) != USG_OK ||
        (s = check_num(o->momentum, 0, 0, fn, "momentum")) != USG_OK ||
        (s = check_num(o->dampening, 0, 0, fn, "dampening")) != USG_OK ||
        (s = check_num(o->weight_decay, 0, 0, fn, "weight_decay")) != USG_OK)
        return s;
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return usg_fail(USG_ARG, "SGD: nesterov needs momentum > 0 and dampening = 0, got "
                        "momentum %g and dampening %g", o->momentum, o->dampening);
    if ((s = check_step(step, fn)) != USG_OK || (s = check_param(param, fn)) != USG_OK ||
        (s = check_like(grad, param, fn, "grad", false)) != USG_OK)
        return s;
    if (o->momentum != 0 && (s = check_like(buf, param, fn, "momentum_buffer", true)) != USG_OK)
        return s;
    if (o->momentum == 0 && o->weight_decay == 0 && param->dtype == USG_F32 &&
        grad->dtype == USG_F32 && usg_tensor_is_contiguous(grad)) {
        plain_job j = {.p = usg_tensor_data(param), .g = usg_tensor_data(grad), .lr = o->lr};
        usg_parallel_for(usg_tensor_numel(param), usg_grain(1), sgd_range, &j);
        param->storage->version++;
        return USG_OK;
    }
    sgd_k k = {*o, step == 1};
    return apply(param, grad, (usg_tensor *[3]){o->momentum != 0 ? buf : NULL, NULL, NULL},
                 sgd_elem, &k);
}

/* ==== Adam and AdamW ==================================================== */

/* step_size = lr / (1 - b1^t), inv_bc2_sqrt = 1 / sqrt(1 - b2^t): once per call,
 * leaving one sqrt and one division per element */
typedef struct adam_k { usg_adam_opts o; double step_size, inv_bc2_sqrt; } adam_k;

/*   AdamW: p = p (1 - lr wd)          Adam: g = g + wd p
 *   m = b1 m + (1 - b1) g                         (exp_avg)
 *   v = b2 v + (1 - b2) g^2                       (exp_avg_sq)
 *   amsgrad: v_max = max(v_max, v), use v_max for v below
 *   denom = sqrt(v) / sqrt(1 - b2^t) + eps
 *   p = p - lr / (1 - b1^t) * m / denom                              */
static double adam_elem(double p, double g, double *s, const void *kv)
{
    const adam_k *k = kv;
    const usg_adam_opts *o = &k->o;
    if (o->decoupled) p *= 1 - o->lr * o->weight_decay;
    else if (o->weight_decay != 0) g += o->weight_decay * p;
    s[0] = o->beta1 * s[0] + (1 - o->beta1) * g;
    s[1] = o->beta2 * s[1] + (1 - o->beta2) * g * g;
    double v = s[1];
    if (o->amsgrad) v = s[2] = fmax(s[2], s[1]);
    double denom = sqrt(v) * k->inv_bc2_sqrt + o->eps;
    return p - k->step_size * s[0] / denom;
}

/* Adam without weight decay or amsgrad over contiguous f32, as adam_elem
 * computes it (in f64, each result rounded once), in a loop that
 * vectorizes: the common case, where the indirect rule costs more than the
 * arithmetic. */
USG_CLONES static void adam_plain_f32(float *restrict p, const float *restrict g, float *restrict m,
                                      float *restrict v, int64_t n,
                                      double b1, double b2, double step_size, double inv_bc2_sqrt,
                                      double eps)
{
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i];
        double mi = b1 * m[i] + (1 - b1) * gi;
        double vi = b2 * v[i] + (1 - b2) * gi * gi;
        double denom = sqrt(vi) * inv_bc2_sqrt + eps;
        p[i] = (float)(p[i] - step_size * mi / denom);
        m[i] = (float)mi;
        v[i] = (float)vi;
    }
}

static void adam_range(void *ctx, int64_t lo, int64_t hi)
{
    const plain_job *j = ctx;
    adam_plain_f32(j->p + lo, j->g + lo, j->m + lo, j->v + lo, hi - lo, j->b1, j->b2,
                   j->step_size, j->inv_bc2_sqrt, j->eps);
}

usg_status usg_adam_step(usg_tensor *param, usg_tensor *grad, usg_tensor *exp_avg,
                         usg_tensor *exp_avg_sq, usg_tensor *max_exp_avg_sq, int64_t step,
                         const usg_adam_opts *o)
{
    const char *fn = o->decoupled ? "AdamW" : "Adam";
    usg_status s;
    if ((s = check_num(o->lr, 0, 0, fn, "lr")) != USG_OK ||
        (s = check_num(o->beta1, 0, 1, fn, "betas[1]")) != USG_OK ||
        (s = check_num(o->beta2, 0, 1, fn, "betas[2]")) != USG_OK ||
        (s = check_num(o->eps, 0, 0, fn, "eps")) != USG_OK ||
        (s = check_num(o->weight_decay, 0, 0, fn, "weight_decay")) != USG_OK ||
        (s = check_step(step, fn)) != USG_OK || (s = check_param(param, fn)) != USG_OK ||
        (s = check_like(grad, param, fn, "grad", false)) != USG_OK ||
        (s = check_like(exp_avg, param, fn, "exp_avg", true)) != USG_OK ||
        (s = check_like(exp_avg_sq, param, fn, "exp_avg_sq", true)) != USG_OK)
        return s;
    if (o->amsgrad && (s = check_like(max_exp_avg_sq, param, fn, "max_exp_avg_sq", true)) != USG_OK)
        return s;
    adam_k k = {*o, o->lr / (1 - pow(o->beta1, (double)step)),
                1 / sqrt(1 - pow(o->beta2, (double)step))};
    if (o->weight_decay == 0 && !o->amsgrad && param->dtype == USG_F32 &&
        grad->dtype == USG_F32 && usg_tensor_is_contiguous(grad)) {
        plain_job j = {usg_tensor_data(param), usg_tensor_data(exp_avg),
                       usg_tensor_data(exp_avg_sq), usg_tensor_data(grad), 0, o->beta1,
                       o->beta2, k.step_size, k.inv_bc2_sqrt, o->eps};
        usg_parallel_for(usg_tensor_numel(param), usg_grain(1), adam_range, &j);
        param->storage->version++;
        return USG_OK;
    }
    return apply(param, grad,
                 (usg_tensor *[3]){exp_avg, exp_avg_sq, o->amsgrad ? max_exp_avg_sq : NULL},
                 adam_elem, &k);
}

/* ==== Adagrad =========================================================== */

typedef struct adagrad_k { usg_adagrad_opts o; double clr; } adagrad_k;

/*   g = g + wd p
 *   clr = lr / (1 + (t - 1) lr_decay)
 *   sum = sum + g^2
 *   p = p - clr g / (sqrt(sum) + eps)                                 */
static double adagrad_elem(double p, double g, double *s, const void *kv)
{
    const adagrad_k *k = kv;
    if (k->o.weight_decay != 0) g += k->o.weight_decay * p;
    s[0] += g * g;
    return p - k->clr * g / (sqrt(s[0]) + k->o.eps);
}

usg_status usg_adagrad_step(usg_tensor *param, usg_tensor *grad, usg_tensor *sum, int64_t step,
                            const usg_adagrad_opts *o)
{
    const char *fn = "Adagrad";
    usg_status s;
    if ((s = check_num(o->lr, 0, 0, fn, "lr")) != USG_OK ||
        (s = check_num(o->lr_decay, 0, 0, fn, "lr_decay")) != USG_OK ||
        (s = check_num(o->weight_decay, 0, 0, fn, "weight_decay")) != USG_OK ||
        (s = check_num(o->eps, 0, 0, fn, "eps")) != USG_OK ||
        (s = check_step(step, fn)) != USG_OK || (s = check_param(param, fn)) != USG_OK ||
        (s = check_like(grad, param, fn, "grad", false)) != USG_OK ||
        (s = check_like(sum, param, fn, "sum", true)) != USG_OK)
        return s;
    adagrad_k k = {*o, o->lr / (1 + (double)(step - 1) * o->lr_decay)};
    return apply(param, grad, (usg_tensor *[3]){sum, NULL, NULL}, adagrad_elem, &k);
}

/* ==== RMSprop =========================================================== */

/*   g = g + wd p
 *   sq = alpha sq + (1 - alpha) g^2                      (square_avg)
 *   centered: ga = alpha ga + (1 - alpha) g, avg = sqrt(sq - ga^2) + eps
 *   else:     avg = sqrt(sq) + eps
 *   momentum: b = mu b + g / avg, p = p - lr b
 *   else:     p = p - lr g / avg                                        */
static double rmsprop_elem(double p, double g, double *s, const void *kv)
{
    const usg_rmsprop_opts *o = kv;
    if (o->weight_decay != 0) g += o->weight_decay * p;
    s[0] = o->alpha * s[0] + (1 - o->alpha) * g * g;
    double avg;
    if (o->centered) {
        s[1] = o->alpha * s[1] + (1 - o->alpha) * g;
        avg = sqrt(s[0] - s[1] * s[1]) + o->eps;
    } else {
        avg = sqrt(s[0]) + o->eps;
    }
    if (o->momentum > 0) {
        s[2] = o->momentum * s[2] + g / avg;
        return p - o->lr * s[2];
    }
    return p - o->lr * g / avg;
}

usg_status usg_rmsprop_step(usg_tensor *param, usg_tensor *grad, usg_tensor *square_avg,
                            usg_tensor *grad_avg, usg_tensor *buf, const usg_rmsprop_opts *o)
{
    const char *fn = "RMSprop";
    usg_status s;
    if ((s = check_num(o->lr, 0, 0, fn, "lr")) != USG_OK ||
        (s = check_num(o->alpha, 0, 0, fn, "alpha")) != USG_OK ||
        (s = check_num(o->eps, 0, 0, fn, "eps")) != USG_OK ||
        (s = check_num(o->weight_decay, 0, 0, fn, "weight_decay")) != USG_OK ||
        (s = check_num(o->momentum, 0, 0, fn, "momentum")) != USG_OK ||
        (s = check_param(param, fn)) != USG_OK ||
        (s = check_like(grad, param, fn, "grad", false)) != USG_OK ||
        (s = check_like(square_avg, param, fn, "square_avg", true)) != USG_OK)
        return s;
    if (o->centered && (s = check_like(grad_avg, param, fn, "grad_avg", true)) != USG_OK)
        return s;
    if (o->momentum > 0 && (s = check_like(buf, param, fn, "momentum_buffer", true)) != USG_OK)
        return s;
    return apply(param, grad, (usg_tensor *[3]){square_avg, o->centered ? grad_avg : NULL,
                                                o->momentum > 0 ? buf : NULL},
                 rmsprop_elem, o);
}

/* ==== Gradient norm and clipping ======================================== */

/* sum |x|^p over the elements of any view (p = INFINITY: max |x|), in
 * double. Walking the strides (instead of making the view contiguous) means
 * clipping allocates nothing, so it cannot fail halfway. */
/* sum_i x_i^2 over n contiguous f32, in double, eight partial sums (so
 * the loop vectorizes instead of waiting on one chain of additions). */
USG_CLONES static double sum_squares_f32(const float *x, int64_t n)
{
    double lane[8] = {0}, acc = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lane[k] += (double)x[i + k] * x[i + k];
    for (; i < n; i++) acc += (double)x[i] * x[i];
    for (int k = 0; k < 8; k++) acc += lane[k];
    return acc;
}

static double pow_sum(const usg_tensor *t, double p)
{
    int64_t n = usg_tensor_numel(t);
    double acc = 0;
    if (p == 2 && usg_tensor_is_contiguous(t)) {         /* the common case, typed */
        if (t->dtype == USG_F32) return sum_squares_f32(usg_tensor_data(t), n);
        const double *x = usg_tensor_data(t);
        for (int64_t i = 0; i < n; i++) acc += x[i] * x[i];
        return acc;
    }
    usg_walk w;
    usg_walk_init(&w, t);
    for (int64_t i = 0; i < n; i++, usg_walk_next(&w)) {
        double a = fabs(usg_load(t->dtype, usg_base(t), w.off));
        if (isinf(p)) acc = (a > acc || a != a) ? a : acc;   /* NaN wins, as in max */
        else acc += p == 2 ? a * a : p == 1 ? a : pow(a, p);
    }
    return acc;
}

/* t *= c in place, through its strides */
static void scale_(usg_tensor *t, double c)
{
    int64_t n = usg_tensor_numel(t);
    if (usg_tensor_is_contiguous(t)) {
        void *x = usg_tensor_data(t);
        if (t->dtype == USG_F32) for (int64_t i = 0; i < n; i++) ((float *)x)[i] *= (float)c;
        else for (int64_t i = 0; i < n; i++) ((double *)x)[i] *= c;
        t->storage->version++;
        return;
    }
    usg_walk w;
    usg_walk_init(&w, t);
    for (int64_t i = 0; i < n; i++, usg_walk_next(&w))
        usg_store(t->dtype, usg_base(t), w.off, c * usg_load(t->dtype, usg_base(t), w.off));
    t->storage->version++;
}

static bool is_expanded(const usg_tensor *t)
{
    for (int d = 0; d < t->ndim; d++)
        if (t->stride[d] == 0 && t->shape[d] > 1) return true;
    return false;
}

usg_status usg_grad_norm(double *total, int n, usg_tensor *const *grads, double p)
{
    *total = 0;
    if (!(p > 0))
        return usg_fail(USG_ARG, "clip_grad_norm: norm_type must be > 0 (or inf), got %g", p);
    if (n < 0) return usg_fail(USG_ARG, "clip_grad_norm: the number of grads must be >= 0, got %d", n);
    for (int i = 0; i < n; i++) {
        if (!grads[i] || !usg_dtype_is_float(grads[i]->dtype))
            return usg_fail(USG_TYPE, "clip_grad_norm: grad %d must be an f32 or f64 tensor, "
                            "got %s", i + 1, grads[i] ? usg_dtype_name(grads[i]->dtype) : "none");
        if (is_expanded(grads[i]))
            return usg_fail(USG_ARG, "clip_grad_norm: grad %d is an expanded view (elements "
                            "share memory); give it a gradient of its own", i + 1);
    }
    double acc = 0;
    for (int i = 0; i < n; i++) {
        double part = pow_sum(grads[i], p);
        if (isinf(p)) acc = (part > acc || part != part) ? part : acc;
        else acc += part;
    }
    *total = isinf(p) ? acc : p == 2 ? sqrt(acc) : p == 1 ? acc : pow(acc, 1 / p);
    return USG_OK;
}

/* c = max_norm / (total + 1e-6); PyTorch clamps c at 1 and multiplies
 * always, which changes nothing when c >= 1, so we scale only below 1. A
 * NaN total leaves the grads as they are (the caller sees the NaN). */
usg_status usg_clip_grad_norm(double *total, int n, usg_tensor *const *grads, double max_norm,
                              double p)
{
    *total = 0;
    usg_status s;
    if (!(max_norm >= 0))
        return usg_fail(USG_ARG, "clip_grad_norm: max_norm must be >= 0, got %g", max_norm);
    if ((s = usg_grad_norm(total, n, grads, p)) != USG_OK) return s;
    double c = max_norm / (*total + 1e-6);
    if (!(c < 1)) return USG_OK;
    for (int i = 0; i < n; i++) scale_(grads[i], c);
    return USG_OK;
}

/*
 * vae.c -- the Gaussian latent code of a VAE (and of VHRED), as one fused
 * op with autograd: from the encoder's mean and log-variance, a sample by
 * the reparameterization trick and the analytic KL divergence to a prior,
 *
 *   z  = mu + exp(logvar / 2) * eps                      eps ~ N(0, I), given
 *   KL = 1/2 sum_d [ lv_p - lv + (exp(lv) + (mu - mu_p)^2) / exp(lv_p) - 1 ]
 *
 * per row (the last dim is the latent's), with lv = logvar and the prior
 * N(mu_p, exp(lv_p)) -- a learned one (VHRED's prior network) or, when
 * mu_p and lv_p are absent, N(0, I), where the KL is
 * -1/2 sum_d (1 + lv - mu^2 - exp(lv)) (Kingma & Welling, appendix B).
 *
 * Backward, with gz = dL/dz and gk = dL/dKL of the row, s = exp(lv_p):
 *   dmu   = gz + gk (mu - mu_p) / s
 *   dlv   = gz eps exp(lv / 2) / 2 + gk (exp(lv) / s - 1) / 2
 *   dmu_p = -gk (mu - mu_p) / s
 *   dlv_p = gk (1 - (exp(lv) + (mu - mu_p)^2) / s) / 2
 * eps is not differentiated. Math in double per element, stored in the
 * inputs' dtype.
 */
#include <math.h>
#include <string.h>

#include "usagi/autograd.h"
#include "vae.h"

enum { IN_MU, IN_LV, IN_MUP, IN_LVP, N_IN };
enum { SAVED_MU, SAVED_LV, SAVED_EPS, SAVED_MUP, SAVED_LVP };

typedef struct gauss_ctx {
    bool prior;                   /* mu_p and lv_p were given */
} gauss_ctx;

/* element i of a contiguous f32 or f64 tensor, in double, and back */
static double ld(const usg_tensor *t, int64_t i)
{
    return t->dtype == USG_F32 ? ((const float *)usg_tensor_data(t))[i]
                               : ((const double *)usg_tensor_data(t))[i];
}

static void st(usg_tensor *t, int64_t i, double v)
{
    if (t->dtype == USG_F32) ((float *)usg_tensor_data(t))[i] = (float)v;
    else ((double *)usg_tensor_data(t))[i] = v;
}

static usg_status gauss_backward(usg_node *n, usg_tensor *const *grad_out, usg_tensor **grad_in)
{
    const gauss_ctx *c = usg_node_ctx(n);
    usg_tensor *mu = usg_node_saved(n, SAVED_MU), *lv = usg_node_saved(n, SAVED_LV);
    usg_tensor *eps = usg_node_saved(n, SAVED_EPS);
    usg_tensor *mup = c->prior ? usg_node_saved(n, SAVED_MUP) : NULL;
    usg_tensor *lvp = c->prior ? usg_node_saved(n, SAVED_LVP) : NULL;
    usg_tensor *gz = NULL, *gk = NULL, *g[N_IN] = {NULL};
    usg_status s = usg_grad_for_kernel(&gz, grad_out[0], mu->dtype);
    if (s == USG_OK) s = usg_grad_for_kernel(&gk, grad_out[1], mu->dtype);
    for (int i = 0; i < N_IN && s == USG_OK; i++) s = usg_node_zero_grad(&g[i], n, i);
    int64_t D = mu->shape[mu->ndim - 1], N = usg_tensor_numel(mu);
    for (int64_t i = 0; s == USG_OK && i < N; i++) {
        double m = ld(mu, i), v = ld(lv, i), e = ld(eps, i);
        double m0 = mup ? ld(mup, i) : 0, s0 = lvp ? exp(ld(lvp, i)) : 1;
        double dz = gz ? ld(gz, i) : 0, dk = gk ? ld(gk, i / D) : 0;
        double dm = dz + dk * (m - m0) / s0;
        double dv = dz * e * exp(v / 2) / 2 + dk * (exp(v) / s0 - 1) / 2;
        if (g[IN_MU]) st(g[IN_MU], i, dm);
        if (g[IN_LV]) st(g[IN_LV], i, dv);
        if (g[IN_MUP]) st(g[IN_MUP], i, -dk * (m - m0) / s0);
        if (g[IN_LVP])
            st(g[IN_LVP], i, dk * (1 - (exp(v) + (m - m0) * (m - m0)) / s0) / 2);
    }
    usg_tensor_release(gz);
    usg_tensor_release(gk);
    for (int i = 0; i < N_IN; i++) {
        if (s == USG_OK) grad_in[i] = g[i];
        else usg_tensor_release(g[i]);
    }
    return s;
}

static const usg_op gauss_op = {"gaussian", gauss_backward, NULL};

static usg_status check(const char *arg, const usg_tensor *t, const usg_tensor *like)
{
    char b1[256], b2[256];
    if (!usg_dtype_is_float(t->dtype) || t->dtype != like->dtype)
        return usg_fail(USG_TYPE, "gaussian: %s must be %s like mu, got %s", arg,
                        usg_dtype_name(like->dtype), usg_dtype_name(t->dtype));
    bool same = t->ndim == like->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == like->shape[d];
    if (!same)
        return usg_fail(USG_SHAPE, "gaussian: %s must have mu's shape %s, got %s", arg,
                        usg_shape_str(b1, sizeof b1, like->ndim, like->shape),
                        usg_shape_str(b2, sizeof b2, t->ndim, t->shape));
    return USG_OK;
}

usg_status usg_ad_gaussian(usg_tensor **z, usg_tensor **kl, usg_tensor *mu, usg_tensor *lv,
                           usg_tensor *eps, usg_tensor *mup, usg_tensor *lvp)
{
    char b[256];
    *z = *kl = NULL;
    usg_status s;
    if (!usg_dtype_is_float(mu->dtype))
        return usg_fail(USG_TYPE, "gaussian: mu must be f32 or f64, got %s", usg_dtype_name(mu->dtype));
    if (mu->ndim < 1 || mu->shape[mu->ndim - 1] < 1)
        return usg_fail(USG_SHAPE, "gaussian: mu must have a latent dim last (..., D), got %s",
                        usg_shape_str(b, sizeof b, mu->ndim, mu->shape));
    if ((mup == NULL) != (lvp == NULL))
        return usg_fail(USG_ARG, "gaussian: give the prior's mean and log-variance both, or neither");
    if ((s = check("logvar", lv, mu)) != USG_OK || (s = check("eps", eps, mu)) != USG_OK ||
        (mup && (s = check("prior mean", mup, mu)) != USG_OK) ||
        (lvp && (s = check("prior logvar", lvp, mu)) != USG_OK))
        return s;
    usg_tensor *in[N_IN] = {mu, lv, mup, lvp}, *cont[N_IN] = {NULL}, *e = NULL;
    for (int i = 0; i < N_IN && s == USG_OK; i++)
        if (in[i]) s = usg_contiguous(&cont[i], in[i]);
    if (s == USG_OK) s = usg_contiguous(&e, eps);
    if (s == USG_OK) s = usg_tensor_empty(z, mu->dtype, mu->ndim, mu->shape);
    if (s == USG_OK) s = usg_tensor_zeros(kl, mu->dtype, mu->ndim - 1, mu->shape);
    if (s == USG_OK) {
        int64_t D = mu->shape[mu->ndim - 1], N = usg_tensor_numel(mu);
            for (int64_t r = 0; r < N / D; r++) {
            double k = 0;
            for (int64_t j = r * D; j < (r + 1) * D; j++) {
                double m = ld(cont[IN_MU], j), v = ld(cont[IN_LV], j);
                double m0 = mup ? ld(cont[IN_MUP], j) : 0, v0 = lvp ? ld(cont[IN_LVP], j) : 0;
                st(*z, j, m + exp(v / 2) * ld(e, j));
                k += v0 - v + (exp(v) + (m - m0) * (m - m0)) / exp(v0) - 1;
            }
            st(*kl, r, k / 2);
        }
    }
    if (s == USG_OK) {
        gauss_ctx c = {mup != NULL};
        usg_tensor *saved[] = {cont[IN_MU], cont[IN_LV], e, cont[IN_MUP], cont[IN_LVP]};
        usg_tensor *outs[2] = {*z, *kl};      /* released and NULL on failure */
        s = usg_record(&gauss_op, N_IN, in, 2, outs, 5, saved, &c, sizeof c);
        *z = outs[0], *kl = outs[1];
    }
    for (int i = 0; i < N_IN; i++) usg_tensor_release(cont[i]);
    usg_tensor_release(e);
    if (s != USG_OK) {
        usg_tensor_release(*z);
        usg_tensor_release(*kl);
        *z = *kl = NULL;
    }
    return s;
}

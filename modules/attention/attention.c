/*
 * attention.c -- the kernels of the attention op: scores, masked softmax
 * over the keys and the weighted sum of the values, forward and backward,
 * written out by hand (the equations are in attention.h and below). No
 * Lua, no autograd here (attention_ad.c records the op, attention_lua.c
 * binds it).
 *
 * Per batch b the products are gemms over (Lq, Lk) blocks: E = scale Q K^T
 * and C = W V forward; dW = G_c V^T, dV = W^T G_c, dQ = scale dE K and
 * dK = scale dE^T Q backward. The additive score has no product form; its
 * loops run over (i, j, a) and recompute tanh in the backward rather than
 * keep a (B, Lq, Lk, D) tensor.
 */
#include <math.h>
#include <string.h>

#include "attention.h"
#include "usagi/fastmath.h"
#include "usagi/recurrent.h"

#define at usg_rec_at            /* the data of a tensor from element k on */
#define mat usg_rec_mat          /* a (rows, cols) header over contiguous data */

/* ==== Rows ==============================================================
 * One query's row of scores e (Lk) -> its weights, in place:
 *   e_j += mask_j (when there is a mask row);  e_j = -inf for j > limit
 *   w_j = exp(e_j - m) / sum exp(e - m),  m = max_j e_j
 * A row with every e_j = -inf has no softmax: w = 0.
 *
 * The additive score of one (i, j): e = sum_a u_a tanh(q_a + k_a). */
#define ROWS(SUF, FT, EXP, TANH)                                                   \
    static void softmax_row_##SUF(FT *e, const FT *mask, int64_t Lk, int64_t limit) \
    {                                                                              \
        FT m = -INFINITY;                                                          \
        for (int64_t j = 0; j < Lk; j++) {                                         \
            if (mask) e[j] += mask[j];                                             \
            if (j > limit) e[j] = -INFINITY;                                       \
            if (e[j] > m) m = e[j];                                                \
        }                                                                          \
        if (m == -INFINITY) {                                                      \
            memset(e, 0, (size_t)Lk * sizeof *e);                                  \
            return;                                                                \
        }                                                                          \
        double z = 0;                                                              \
        for (int64_t j = 0; j < Lk; j++) z += e[j] = EXP(e[j] - m);                \
        for (int64_t j = 0; j < Lk; j++) e[j] = (FT)(e[j] / z);                    \
    }                                                                              \
    static FT additive_##SUF(const FT *restrict q, const FT *restrict k,           \
                             const FT *restrict u, int64_t D)                      \
    {                                                                              \
        FT e = 0;                                                                  \
        for (int64_t a = 0; a < D; a++) e += u[a] * TANH(q[a] + k[a]);             \
        return e;                                                                  \
    }                                                                              \
    /* the additive score's backward for one (i, j) with s = dL/de_ij:         \
     *   dq_a += s u_a (1 - t_a^2),  dk_a += the same,  du_a += s t_a          \
     * with t_a = tanh(q_a + k_a) */                                               \
    static void additive_back_##SUF(FT *restrict dq, FT *restrict dk, FT *restrict du, \
                                    const FT *restrict q, const FT *restrict k,    \
                                    const FT *restrict u, FT s, int64_t D)         \
    {                                                                              \
        for (int64_t a = 0; a < D; a++) {                                          \
            FT t = TANH(q[a] + k[a]), g = s * u[a] * (1 - t * t);                  \
            if (dq) dq[a] += g;                                                    \
            if (dk) dk[a] += g;                                                    \
            if (du) du[a] += s * t;                                                \
        }                                                                          \
    }
ROWS(f32, float, expf, usg_tanhf)
ROWS(f64, double, exp, tanh)

/* ==== Forward =========================================================== */

usg_status usg_attn_forward(usg_tensor *c, usg_tensor *w, const usg_tensor *q,
                            const usg_tensor *k, const usg_tensor *v, const usg_tensor *u,
                            const usg_tensor *mask, double scale, bool causal)
{
    int64_t B = q->shape[0], Lq = q->shape[1], D = q->shape[2];
    int64_t Lk = k->shape[1], Dv = v->shape[2];
    int64_t Bm = mask ? mask->shape[0] : 1, Lqm = mask ? mask->shape[1] : 1;
    bool f32 = q->dtype == USG_F32;
    usg_status s = USG_OK;
    for (int64_t b = 0; b < B && s == USG_OK; b++) {
        usg_tensor W = mat(w, b * Lq * Lk, Lq, Lk);
        if (!u) {                                            /* E = scale Q K^T */
            usg_tensor Q = mat(q, b * Lq * D, Lq, D), K = mat(k, b * Lk * D, Lk, D);
            if ((s = usg_gemm(&W, &Q, false, &K, true, scale, 0)) != USG_OK) break;
        } else {                                             /* e_ij = scale u . tanh(q_i + k_j) */
            for (int64_t i = 0; i < Lq; i++)
                for (int64_t j = 0; j < Lk; j++) {
                    int64_t qi = (b * Lq + i) * D, kj = (b * Lk + j) * D, ij = (b * Lq + i) * Lk + j;
                    if (f32)
                        ((float *)at(w, 0))[ij] = (float)scale *
                            additive_f32(at(q, qi), at(k, kj), at(u, 0), D);
                    else
                        ((double *)at(w, 0))[ij] = scale *
                            additive_f64(at(q, qi), at(k, kj), at(u, 0), D);
                }
        }
        for (int64_t i = 0; i < Lq; i++) {
            int64_t row = (b * Lq + i) * Lk, limit = causal ? i : Lk;
            const void *mrow = mask ? at(mask, ((b / (B / Bm)) * Lqm + (Lqm > 1 ? i : 0)) * Lk)
                                    : NULL;
            if (f32) softmax_row_f32(at(w, row), mrow, Lk, limit);
            else softmax_row_f64(at(w, row), mrow, Lk, limit);
        }
        usg_tensor C = mat(c, b * Lq * Dv, Lq, Dv), V = mat(v, b * Lk * Dv, Lk, Dv);
        s = usg_gemm(&C, &W, false, &V, false, 1, 0);        /* C = W V */
    }
    return s;
}

/* ==== Backward ==========================================================
 * With G_c = dL/dc and G_w = dL/dw (what reached the outputs):
 *   dW = G_c V^T + G_w                         (B, Lq, Lk)
 *   dV = W^T G_c
 *   dE_ij = w_ij (dW_ij - sum_j' w_ij' dW_ij')  (the softmax's backward;
 *            masked keys have w = 0, so they get nothing)
 *   dot:      dQ = scale dE K,  dK = scale dE^T Q
 *   additive: see additive_back, with s = scale dE_ij                      */
usg_status usg_attn_backward(const usg_attn_grads *d, const usg_tensor *g_c, const usg_tensor *g_w,
                             const usg_tensor *q, const usg_tensor *k, const usg_tensor *v,
                             const usg_tensor *u, const usg_tensor *w, double scale)
{
    int64_t B = q->shape[0], Lq = q->shape[1], D = q->shape[2];
    int64_t Lk = k->shape[1], Dv = v->shape[2];
    bool f32 = q->dtype == USG_F32;
    usg_tensor *dw = NULL;
    usg_status s = usg_tensor_zeros(&dw, q->dtype, 3, (int64_t[]){B, Lq, Lk});
    if (s != USG_OK) return s;
    if (g_w) usg_rec_add(at(dw, 0), at(g_w, 0), B * Lq * Lk, q->dtype);
    bool need_e = d->dq || d->dk || d->du;
    for (int64_t b = 0; b < B && s == USG_OK; b++) {
        usg_tensor W = mat(w, b * Lq * Lk, Lq, Lk), dW = mat(dw, b * Lq * Lk, Lq, Lk);
        usg_tensor V = mat(v, b * Lk * Dv, Lk, Dv);
        if (g_c) {
            usg_tensor Gc = mat(g_c, b * Lq * Dv, Lq, Dv);
            if (need_e && (s = usg_gemm(&dW, &Gc, false, &V, true, 1, 1)) != USG_OK) break;
            if (d->dv) {
                usg_tensor dV = mat(d->dv, b * Lk * Dv, Lk, Dv);
                if ((s = usg_gemm(&dV, &W, true, &Gc, false, 1, 1)) != USG_OK) break;
            }
        }
        if (!need_e) continue;
        for (int64_t i = 0; i < Lq; i++) {                   /* dW -> dE in place */
            int64_t row = (b * Lq + i) * Lk;
            if (f32) {
                float *e = at(dw, row);
                const float *p = at(w, row);
                double dot = 0;
                for (int64_t j = 0; j < Lk; j++) dot += (double)p[j] * e[j];
                for (int64_t j = 0; j < Lk; j++) e[j] = (float)(p[j] * (e[j] - dot));
            } else {
                double *e = at(dw, row);
                const double *p = at(w, row);
                double dot = 0;
                for (int64_t j = 0; j < Lk; j++) dot += p[j] * e[j];
                for (int64_t j = 0; j < Lk; j++) e[j] = p[j] * (e[j] - dot);
            }
        }
        if (!u) {
            usg_tensor Q = mat(q, b * Lq * D, Lq, D), K = mat(k, b * Lk * D, Lk, D);
            if (d->dq) {
                usg_tensor dQ = mat(d->dq, b * Lq * D, Lq, D);
                if ((s = usg_gemm(&dQ, &dW, false, &K, false, scale, 1)) != USG_OK) break;
            }
            if (d->dk) {
                usg_tensor dK = mat(d->dk, b * Lk * D, Lk, D);
                s = usg_gemm(&dK, &dW, true, &Q, false, scale, 1);
            }
            continue;
        }
        for (int64_t i = 0; i < Lq; i++)
            for (int64_t j = 0; j < Lk; j++) {
                int64_t qi = (b * Lq + i) * D, kj = (b * Lk + j) * D, ij = (b * Lq + i) * Lk + j;
                if (f32) {
                    float e = (float)scale * ((float *)at(dw, 0))[ij];
                    if (e != 0)
                        additive_back_f32(at(d->dq, qi), at(d->dk, kj), at(d->du, 0),
                                          at(q, qi), at(k, kj), at(u, 0), e, D);
                } else {
                    double e = scale * ((double *)at(dw, 0))[ij];
                    if (e != 0)
                        additive_back_f64(at(d->dq, qi), at(d->dk, kj), at(d->du, 0),
                                          at(q, qi), at(k, kj), at(u, 0), e, D);
                }
            }
    }
    usg_tensor_release(dw);
    return s;
}

/* ==== Checks ============================================================ */

static usg_status expect_3d(const char *arg, const usg_tensor *t, const char *layout)
{
    char b[256];
    if (t->ndim == 3 && t->shape[0] > 0 && t->shape[1] > 0 && t->shape[2] > 0) return USG_OK;
    return usg_fail(USG_SHAPE, "attention: %s must be 3-D %s with no empty dim, got %s", arg,
                    layout, usg_shape_str(b, sizeof b, t->ndim, t->shape));
}

static usg_status same_dtype(const char *arg, const usg_tensor *t, usg_dtype dt)
{
    if (!t || t->dtype == dt) return USG_OK;
    return usg_fail(USG_TYPE, "attention: %s must be %s like q, got %s", arg, usg_dtype_name(dt),
                    usg_dtype_name(t->dtype));
}

usg_status usg_attn_check(const usg_tensor *q, const usg_tensor *k, const usg_tensor *v,
                          const usg_tensor *u, const usg_tensor *mask, double scale)
{
    char b1[256], b2[256];
    usg_status s;
    if (!usg_dtype_is_float(q->dtype))
        return usg_fail(USG_TYPE, "attention: q must be f32 or f64, got %s", usg_dtype_name(q->dtype));
    if ((s = expect_3d("q", q, "(B, Lq, D)")) != USG_OK || (s = expect_3d("k", k, "(B, Lk, D)")) != USG_OK ||
        (s = expect_3d("v", v, "(B, Lk, Dv)")) != USG_OK)
        return s;
    if ((s = same_dtype("k", k, q->dtype)) != USG_OK || (s = same_dtype("v", v, q->dtype)) != USG_OK ||
        (s = same_dtype("score weight u", u, q->dtype)) != USG_OK ||
        (s = same_dtype("mask", mask, q->dtype)) != USG_OK)
        return s;
    if (k->shape[0] != q->shape[0] || k->shape[2] != q->shape[2])
        return usg_fail(USG_SHAPE, "attention: k must be (B, Lk, D) with q's B and D, q %s, got k %s",
                        usg_shape_str(b1, sizeof b1, q->ndim, q->shape),
                        usg_shape_str(b2, sizeof b2, k->ndim, k->shape));
    if (v->shape[0] != k->shape[0] || v->shape[1] != k->shape[1])
        return usg_fail(USG_SHAPE, "attention: v must be (B, Lk, Dv) with k's B and Lk, k %s, got v %s",
                        usg_shape_str(b1, sizeof b1, k->ndim, k->shape),
                        usg_shape_str(b2, sizeof b2, v->ndim, v->shape));
    if (u && (u->ndim != 1 || u->shape[0] != q->shape[2]))
        return usg_fail(USG_SHAPE, "attention: the additive score's weight u must be (%lld,), q's "
                        "last size, got %s", (long long)q->shape[2],
                        usg_shape_str(b1, sizeof b1, u->ndim, u->shape));
    if (mask && (mask->ndim != 3 || mask->shape[0] < 1 || q->shape[0] % mask->shape[0] != 0 ||
                 (mask->shape[1] != 1 && mask->shape[1] != q->shape[1]) ||
                 mask->shape[2] != k->shape[1]))
        return usg_fail(USG_SHAPE, "attention: mask must be (Bm, 1 or Lq, Lk) with Bm dividing "
                        "B = %lld, Lq = %lld, Lk = %lld, got %s", (long long)q->shape[0],
                        (long long)q->shape[1], (long long)k->shape[1],
                        usg_shape_str(b1, sizeof b1, mask->ndim, mask->shape));
    if (!isfinite(scale))
        return usg_fail(USG_ARG, "attention: scale must be a finite number, got %g", scale);
    return USG_OK;
}

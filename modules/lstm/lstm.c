/*
 * lstm.c -- the kernels of the LSTM: one layer's forward over a whole
 * sequence and its backward through time, written out by hand, and the
 * shape checks. No Lua, no autograd here (lstm_ad.c records the op,
 * lstm_lua.c binds it). The equations are in lstm.h.
 *
 * The plan is cuDNN's, as in modules/rnn: the input projection of all T
 * steps is one gemm into the gate buffer (T, B, 4H); each step adds one
 * recurrent gemm and one pass over (B, H) that applies the gates. The
 * backward sweeps t = T..1 making the pre-activation deltas with one gemm
 * per step, then every weight gradient is one gemm over all steps.
 *
 * Row layout: a batch is a (B, n) matrix, one example per row, so the
 * column equation a = W h becomes a = h W^T; row b of the gate buffer holds
 * [a_i | a_f | a_g | a_o], H each.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lstm.h"
#include "usagi/fastmath.h"
#include "usagi/recurrent.h"

#define at usg_rec_at            /* the data of a tensor from element k on */


/* ==== One step of the cell ==============================================
 * In: gates (B, 4H) holding a^t = W_ih x^t + W_hh h^{t-1} + b; cp (B, H) =
 * c^{t-1} (zeros at t = 1 without c0); peepholes pi, pf, po (H; zeros
 * without peepholes). Out: gates <- (i, f, g, o), c (B, H) <- c^t, h (B, H)
 * <- h^t. No branch and no aliasing in the inner loop, so the f32 version
 * (fastmath's tanh and sigmoid) vectorizes; the f64 one uses libm. */
#define CELL_FORWARD(NAME, FT, TANH, SIGM)                                         \
    USG_CLONES                                                                     \
    static void NAME##_row(FT *restrict ai, FT *restrict af, FT *restrict ag,      \
                           FT *restrict ao, FT *restrict cb, FT *restrict hb,      \
                           const FT *restrict cpb, const FT *restrict pi,          \
                           const FT *restrict pf, const FT *restrict po, int64_t H) \
    {                                                                              \
        for (int64_t j = 0; j < H; j++) {                                          \
            FT cprev = cpb[j];                                                     \
            FT i = SIGM(ai[j] + pi[j] * cprev);                                    \
            FT f = SIGM(af[j] + pf[j] * cprev);                                    \
            FT g = TANH(ag[j]);                                                    \
            FT cn = f * cprev + i * g;                      /* the CEC */          \
            FT o = SIGM(ao[j] + po[j] * cn);                                       \
            ai[j] = i, af[j] = f, ag[j] = g, ao[j] = o;                            \
            cb[j] = cn;                                                            \
            hb[j] = o * TANH(cn);                                                  \
        }                                                                          \
    }                                                                              \
    static void NAME(FT *gates, FT *c, FT *h, const FT *cp, const FT *pi,          \
                     const FT *pf, const FT *po, int64_t B, int64_t H)             \
    {   /* a row at a time, its pointers restrict: then the loop vectorizes */     \
        for (int64_t b = 0; b < B; b++) {                                          \
            FT *a = gates + b * 4 * H;                                             \
            NAME##_row(a, a + H, a + 2 * H, a + 3 * H, c + b * H, h + b * H,       \
                       cp + b * H, pi, pf, po, H);                                 \
        }                                                                          \
    }
CELL_FORWARD(cell_forward_f32, float, usg_tanhf, usg_sigmoidf)
CELL_FORWARD(cell_forward_f64, double, tanh, usg_rec_sigmoid)

/* ==== One step back =====================================================
 * With dh = dL/dh^t (from above and from step t+1) and dc = dL/dc^t from
 * step t+1 (through c^{t+1} = f^{t+1} ⊙ c^t + ...), in: the gates (i, f, g,
 * o) and c^t, c^{t-1} of the step. Out: da (B, 4H) <- the pre-activation
 * deltas, dc <- dL/dc^{t-1}; the peephole gradients add into acc (3 x H).
 *
 *   δo = dh ⊙ tanh(c^t) ⊙ o(1 - o)
 *   dc^t = dc + dh ⊙ o ⊙ (1 - tanh²(c^t)) + p_o ⊙ δo
 *   δi = dc^t ⊙ g ⊙ i(1 - i)        δf = dc^t ⊙ c^{t-1} ⊙ f(1 - f)
 *   δg = dc^t ⊙ i ⊙ (1 - g²)
 *   dc^{t-1} = dc^t ⊙ f + p_i ⊙ δi + p_f ⊙ δf
 *   dp_i += δi ⊙ c^{t-1}   dp_f += δf ⊙ c^{t-1}   dp_o += δo ⊙ c^t
 */
#define CELL_BACKWARD(NAME, FT, TANH)                                              \
    USG_CLONES                                                                     \
    static void NAME##_row(FT *restrict d, FT *restrict dcb, const FT *restrict hb, \
                           const FT *restrict gb, const FT *restrict cb,           \
                           const FT *restrict cpb, const FT *restrict pi,          \
                           const FT *restrict pf, const FT *restrict po, int64_t H) \
    {                                                                              \
        for (int64_t j = 0; j < H; j++) {                                          \
            FT i = gb[j], f = gb[H + j], g = gb[2 * H + j], o = gb[3 * H + j];     \
            FT cn = cb[j], cprev = cpb[j], tc = TANH(cn);                          \
            FT d_o = hb[j] * tc * o * (1 - o);                                     \
            FT dct = dcb[j] + hb[j] * o * (1 - tc * tc) + po[j] * d_o;             \
            FT d_i = dct * g * i * (1 - i);                                        \
            FT d_f = dct * cprev * f * (1 - f);                                    \
            FT d_g = dct * i * (1 - g * g);                                        \
            d[j] = d_i, d[H + j] = d_f, d[2 * H + j] = d_g, d[3 * H + j] = d_o;    \
            dcb[j] = dct * f + (pi[j] * d_i + pf[j] * d_f);                        \
        }                                                                          \
    }                                                                              \
    static void NAME(FT *da, FT *dc, const FT *dh, const FT *gates,     \
                                const FT *c, const FT *cp, const FT *pi,           \
                                const FT *pf, const FT *po, double *acc,           \
                                const int32_t *len, int64_t t, int64_t B, int64_t H) \
    {   /* as the forward: a row at a time, zeros for absent c^0 and peepholes */ \
        for (int64_t b = 0; b < B; b++) {                                          \
            FT *d = da + b * 4 * H;                                                \
            if (usg_rec_ended(len, b, t)) {   /* the identity: dc passes, δa = 0 */ \
                memset(d, 0, 4 * (size_t)H * sizeof *d);                           \
                continue;                                                          \
            }                                                                      \
            const FT *cb = c + b * H, *cpb = cp + b * H;                           \
            NAME##_row(d, dc + b * H, dh + b * H, gates + b * 4 * H, cb, cpb, pi,  \
                       pf, po, H);                                                 \
            for (int64_t j = 0; acc && j < H; j++) {                               \
                acc[j] += (double)d[j] * cpb[j];                                   \
                acc[H + j] += (double)d[H + j] * cpb[j];                           \
                acc[2 * H + j] += (double)d[3 * H + j] * cb[j];                    \
            }                                                                      \
        }                                                                          \
    }
CELL_BACKWARD(cell_backward_f32, float, usg_tanhf)
CELL_BACKWARD(cell_backward_f64, double, tanh)

/* ==== Forward =========================================================== */

usg_status usg_lstm_layer_forward(usg_tensor *h, usg_tensor *c, usg_tensor *gates,
                                  const usg_tensor *x, const usg_tensor *h0,
                                  const usg_tensor *c0, const usg_lstm_weights *w,
                                  const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], I = x->shape[2], H = w->w_hh->shape[1];
    int64_t G = 4 * H, BH = B * H;
    /* zeros standing in for c0 and the peepholes when there are none, so
     * the cell's loop has no branch */
    usg_tensor *zero = NULL;
    usg_status s = USG_OK;
    if (!c0 || !w->p_i) s = usg_tensor_zeros(&zero, x->dtype, 1, (int64_t[]){BH > H ? BH : H});
    if (s != USG_OK) return s;
    void *c_init = c0 ? at(c0, 0) : at(zero, 0);
    void *pi = w->p_i ? at(w->p_i, 0) : at(zero, 0), *pf = w->p_f ? at(w->p_f, 0) : at(zero, 0);
    void *po = w->p_o ? at(w->p_o, 0) : at(zero, 0);
    /* A = X W_ih^T + (b_ih + b_hh) for all T steps at once: (T*B, I) x (I, 4H) */
    usg_tensor A = usg_rec_mat(gates, 0, T * B, G), X = usg_rec_mat(x, 0, T * B, I);
    bool bias = w->b_ih || w->b_hh;
    if (bias) usg_rec_fill_bias(&A, T * B, G, w->b_ih, w->b_hh);
    s = usg_gemm(&A, &X, false, w->w_ih, true, 1, bias ? 1 : 0);
    for (int64_t t = 0; t < T && s == USG_OK; t++) {
        usg_tensor a = usg_rec_mat(gates, t * B * G, B, G);                  /* (B, 4H) */
        /* a^t += W_hh h^{t-1}, with h^0 = h0; without h0 the term is 0 at t = 1 */
        if (t > 0 || h0) {
            usg_tensor hp = t > 0 ? usg_rec_mat(h, (t - 1) * BH, B, H) : usg_rec_mat(h0, 0, B, H);
            if ((s = usg_gemm(&a, &hp, false, w->w_hh, true, 1, 1)) != USG_OK) break;
        }
        void *cp = t > 0 ? at(c, (t - 1) * BH) : c_init;
        if (x->dtype == USG_F32)
            cell_forward_f32(at(&a, 0), at(c, t * BH), at(h, t * BH), cp, pi, pf, po, B, H);
        else
            cell_forward_f64(at(&a, 0), at(c, t * BH), at(h, t * BH), cp, pi, pf, po, B, H);
        if (t > 0) {                          /* ended sequences keep (h, c) (recurrent.h) */
            size_t es = usg_dtype_size(x->dtype);
            usg_rec_freeze(at(h, t * BH), at(h, (t - 1) * BH), len, t, B, H, es);
            usg_rec_freeze(at(c, t * BH), at(c, (t - 1) * BH), len, t, B, H, es);
        }
    }
    usg_tensor_release(zero);
    return s;
}

/* ==== Backward through time =============================================
 * dH (T, B, H) starts as the gradient from above (g_out, plus g_hn at T);
 * the sweep adds each step's recurrent term into the step before:
 * dL/dh^{t-1} += W_hh^T δa^t, i.e. dH[t-1] += DA[t] W_hh (one gemm). Then,
 * with DA (T*B, 4H) the deltas stacked over time:
 *
 *   dW_ih = DA^T X      dW_hh = DA[2..T]^T H[1..T-1] + DA[1]^T h0
 *   db    = Σ_t δa^t    dx    = DA W_ih      dh0 = DA[1] W_hh
 *   dc0   = dL/dc^0 from the sweep
 */
usg_status usg_lstm_layer_backward(const usg_lstm_grads *d, const usg_tensor *g_out,
                                   const usg_tensor *g_hn, const usg_tensor *g_cn,
                                   const usg_tensor *x, const usg_tensor *h0,
                                   const usg_tensor *c0, const usg_lstm_weights *w,
                                   const usg_tensor *h, const usg_tensor *c,
                                   const usg_tensor *gates, const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], I = x->shape[2], H = w->w_hh->shape[1];
    int64_t G = 4 * H, BH = B * H;
    usg_dtype dt = x->dtype;
    size_t es = usg_dtype_size(dt);
    bool peep = w->p_i != NULL;
    usg_tensor *dH = NULL, *DA = NULL, *dC = NULL, *acc = NULL, *zero = NULL;
    usg_status s = usg_tensor_empty(&dH, dt, 3, (int64_t[]){T, B, H});
    if (s == USG_OK && (!c0 || !peep))        /* stands in for c0 and the peepholes */
        s = usg_tensor_zeros(&zero, dt, 1, (int64_t[]){BH > H ? BH : H});
    if (s == USG_OK) s = usg_tensor_empty(&DA, dt, 3, (int64_t[]){T, B, G});
    if (s == USG_OK) s = usg_tensor_zeros(&dC, dt, 2, (int64_t[]){B, H});
    if (s == USG_OK) s = usg_tensor_zeros(&acc, USG_F64, 1, (int64_t[]){G});
    if (s != USG_OK) goto done;
    usg_rec_seed(dH, g_out, g_hn, T, BH);                  /* dC <- g_cn (or 0) */
    if (g_cn) memcpy(at(dC, 0), at(g_cn, 0), (size_t)BH * es);

    double *pacc = peep && (d->dp_i || d->dp_f || d->dp_o) ? at(acc, 0) : NULL;
    void *pi = peep ? at(w->p_i, 0) : at(zero, 0), *pf = peep ? at(w->p_f, 0) : at(zero, 0);
    void *po = peep ? at(w->p_o, 0) : at(zero, 0);
    for (int64_t t = T - 1; t >= 0 && s == USG_OK; t--) {
        void *cp = t > 0 ? at(c, (t - 1) * BH) : c0 ? at(c0, 0) : at(zero, 0);
        /* an ended sequence's step is the identity: its dh passes to h^{t-1} */
        if (t > 0) usg_rec_pass_ended(at(dH, (t - 1) * BH), at(dH, t * BH), len, t, B, H, dt);
        if (dt == USG_F32)
            cell_backward_f32(at(DA, t * B * G), at(dC, 0), at(dH, t * BH), at(gates, t * B * G),
                              at(c, t * BH), cp, pi, pf, po, pacc, len, t, B, H);
        else
            cell_backward_f64(at(DA, t * B * G), at(dC, 0), at(dH, t * BH), at(gates, t * B * G),
                              at(c, t * BH), cp, pi, pf, po, pacc, len, t, B, H);
        if (t == 0) break;
        usg_tensor prev = usg_rec_mat(dH, (t - 1) * BH, B, H), da = usg_rec_mat(DA, t * B * G, B, G);
        s = usg_gemm(&prev, &da, false, w->w_hh, false, 1, 1);
    }
    /* dp_i, dp_f, dp_o += the sums of the sweep (before db reuses acc) */
    usg_tensor *dp[3] = {d->dp_i, d->dp_f, d->dp_o};
    for (int k = 0; pacc && s == USG_OK && k < 3; k++) {
        for (int64_t j = 0; dp[k] && j < H; j++) {
            if (dt == USG_F32) ((float *)at(dp[k], 0))[j] += (float)pacc[k * H + j];
            else ((double *)at(dp[k], 0))[j] += pacc[k * H + j];
        }
    }
    usg_tensor Dall = usg_rec_mat(DA, 0, T * B, G), d1 = usg_rec_mat(DA, 0, B, G);
    if (s == USG_OK && d->dh0) {                                     /* dh0 += δa^1 W_hh */
        usg_tensor dh = usg_rec_mat(d->dh0, 0, B, H);
        s = usg_gemm(&dh, &d1, false, w->w_hh, false, 1, 1);
    }
    if (s == USG_OK && d->dc0) usg_rec_add(at(d->dc0, 0), at(dC, 0), BH, dt);   /* dc0 += dL/dc^0 */
    if (s == USG_OK && d->dw_hh) {          /* dW_hh += Σ_{t>1} δa^t h^{t-1 T} + δa^1 h0^T */
        if (T > 1) {
            usg_tensor Dn = usg_rec_mat(DA, B * G, (T - 1) * B, G);
            usg_tensor Hp = usg_rec_mat(h, 0, (T - 1) * B, H);
            s = usg_gemm(d->dw_hh, &Dn, true, &Hp, false, 1, 1);
        }
        if (s == USG_OK && h0) {
            usg_tensor hz = usg_rec_mat(h0, 0, B, H);
            s = usg_gemm(d->dw_hh, &d1, true, &hz, false, 1, 1);
        }
    }
    if (s == USG_OK && d->dw_ih) {                                   /* dW_ih += DA^T X */
        usg_tensor X = usg_rec_mat(x, 0, T * B, I);
        s = usg_gemm(d->dw_ih, &Dall, true, &X, false, 1, 1);
    }
    if (s == USG_OK && d->db) usg_rec_add_col_sums(d->db, &Dall, at(acc, 0), T * B, G);
    if (s == USG_OK && d->dx) {                                      /* dx += DA W_ih */
        usg_tensor DX = usg_rec_mat(d->dx, 0, T * B, I);
        s = usg_gemm(&DX, &Dall, false, w->w_ih, false, 1, 1);
    }
done:
    usg_tensor_release(dH);
    usg_tensor_release(DA);
    usg_tensor_release(dC);
    usg_tensor_release(acc);
    usg_tensor_release(zero);
    return s;
}

/* ==== Checks ============================================================ */

usg_status usg_lstm_check_layer(const usg_tensor *x, const usg_tensor *h0, const usg_tensor *c0,
                                const usg_lstm_weights *w, int layer)
{
    char b1[256];
    usg_status s;
    if (!usg_dtype_is_float(x->dtype))
        return usg_fail(USG_TYPE, "lstm: input must be f32 or f64, got %s", usg_dtype_name(x->dtype));
    if (x->ndim != 3)
        return usg_fail(USG_SHAPE, "lstm: input must be 3-D (T, B, I), time-major, got %s",
                        usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    if (x->shape[0] < 1 || x->shape[1] < 1)
        return usg_fail(USG_SHAPE, "lstm: input must have T >= 1 steps and B >= 1 sequences, "
                        "got %s", usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    const usg_tensor *wi = w->w_ih;
    if (wi->ndim != 2 || wi->shape[0] < 4 || wi->shape[0] % 4 != 0 || wi->shape[1] < 1)
        return usg_fail(USG_SHAPE, "lstm: weight_ih_l%d must be (4H, I) with H, I >= 1, got %s",
                        layer, usg_shape_str(b1, sizeof b1, wi->ndim, wi->shape));
    int64_t H = wi->shape[0] / 4, I = wi->shape[1], G = 4 * H, B = x->shape[1];
    if ((s = usg_rec_same_dtype("lstm", "weight_ih", layer, w->w_ih, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "weight_hh", layer, w->w_hh, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "bias_ih", layer, w->b_ih, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "bias_hh", layer, w->b_hh, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "weight_ci", layer, w->p_i, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "weight_cf", layer, w->p_f, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "weight_co", layer, w->p_o, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "h0", -1, h0, x->dtype)) ||
        (s = usg_rec_same_dtype("lstm", "c0", -1, c0, x->dtype)))
        return s;
    if (x->shape[2] != I)
        return usg_fail(USG_SHAPE, "lstm: input must be (T, B, %lld), got %s", (long long)I,
                        usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    if (!w->p_i != !w->p_f || !w->p_i != !w->p_o)
        return usg_fail(USG_ARG, "lstm: the peephole weights of layer %d must be all three "
                        "(weight_ci, weight_cf, weight_co) or none", layer);
    if ((s = usg_rec_expect("lstm", "weight_hh", layer, w->w_hh, 2, (int64_t[]){G, H}, "")) ||
        (w->b_ih && (s = usg_rec_expect("lstm", "bias_ih", layer, w->b_ih, 1, &G, ""))) ||
        (w->b_hh && (s = usg_rec_expect("lstm", "bias_hh", layer, w->b_hh, 1, &G, ""))) ||
        (w->p_i && (s = usg_rec_expect("lstm", "weight_ci", layer, w->p_i, 1, &H, ""))) ||
        (w->p_f && (s = usg_rec_expect("lstm", "weight_cf", layer, w->p_f, 1, &H, ""))) ||
        (w->p_o && (s = usg_rec_expect("lstm", "weight_co", layer, w->p_o, 1, &H, ""))) ||
        (h0 && (s = usg_rec_expect("lstm", "h0", -1, h0, 2, (int64_t[]){B, H}, " (B, H)"))) ||
        (c0 && (s = usg_rec_expect("lstm", "c0", -1, c0, 2, (int64_t[]){B, H}, " (B, H)"))))
        return s;
    return USG_OK;
}

/*
 * gru.c -- the kernels of the GRU: one layer's forward over a whole
 * sequence and its backward through time, written out by hand, and the
 * shape checks. No Lua, no autograd here (gru_ad.c records the op,
 * gru_lua.c binds it). The equations are in gru.h.
 *
 * The plan of modules/rnn and lstm, with one difference the reset gate
 * forces: r multiplies the recurrent term of n after its bias, so the
 * recurrent product W_hh h^{t-1} + b_hh (B, 3H) of each step goes to its
 * own buffer instead of adding into the gates. Forward: one gemm for the
 * input projection of all T steps into the gate buffer (T, B, 3H), then per
 * step one recurrent gemm and one pass over (B, H). Backward: one sweep
 * t = T..1 with one gemm per step, then every weight gradient is one gemm
 * over all steps.
 *
 * Row layout: a batch is a (B, n) matrix, one example per row; row b of
 * a gate buffer holds [r | z | n], H each.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gru.h"
#include "usagi/fastmath.h"
#include "usagi/recurrent.h"

#define at usg_rec_at            /* the data of a tensor from element k on */


/* ==== One step of the cell ==============================================
 * In: a (B, 3H) = W_ih x^t + b_ih, hh (B, 3H) = W_hh h^{t-1} + b_hh, hp
 * (B, H) = h^{t-1} (zeros at t = 1 without h0). Out: a <- (r, z, n), hn
 * (B, H) <- hh's n-slice (kept for the backward), h (B, H) <- h^t. No
 * branch and no aliasing in the inner loop: the f32 version vectorizes. */
#define CELL_FORWARD(NAME, FT, TANH, SIGM)                                         \
    USG_CLONES                                                                     \
    static void NAME##_row(FT *restrict ar, FT *restrict az, FT *restrict an,      \
                           FT *restrict hnb, FT *restrict hb, const FT *restrict hr, \
                           const FT *restrict hz, const FT *restrict hnn,          \
                           const FT *restrict hpb, int64_t H)                      \
    {                                                                              \
        for (int64_t j = 0; j < H; j++) {                                          \
            FT r = SIGM(ar[j] + hr[j]);                                            \
            FT z = SIGM(az[j] + hz[j]);                                            \
            FT n = TANH(an[j] + r * hnn[j]);                                       \
            ar[j] = r, az[j] = z, an[j] = n;                                       \
            hnb[j] = hnn[j];                                                       \
            hb[j] = (1 - z) * n + z * hpb[j];                                      \
        }                                                                          \
    }                                                                              \
    static void NAME(FT *a, FT *hn, FT *h, const FT *hh, const FT *hp, int64_t B,  \
                     int64_t H)                                                    \
    {   /* a row at a time, its pointers restrict: then the loop vectorizes */     \
        for (int64_t b = 0; b < B; b++) {                                          \
            FT *ab = a + b * 3 * H;                                                \
            const FT *hhb = hh + b * 3 * H;                                        \
            NAME##_row(ab, ab + H, ab + 2 * H, hn + b * H, h + b * H, hhb, hhb + H, \
                       hhb + 2 * H, hp + b * H, H);                                \
        }                                                                          \
    }
CELL_FORWARD(cell_forward_f32, float, usg_tanhf, usg_sigmoidf)
CELL_FORWARD(cell_forward_f64, double, tanh, usg_rec_sigmoid)

/* ==== One step back =====================================================
 * With dh = dL/dh^t, the gates (r, z, n), hn = W_hn h^{t-1} + b_hn and
 * h^{t-1}:
 *
 *   δn = dh ⊙ (1 - z) ⊙ (1 - n²)          (at n's pre-activation)
 *   δz = dh ⊙ (h^{t-1} - n) ⊙ z(1 - z)
 *   δr = δn ⊙ hn ⊙ r(1 - r)
 *
 * The input side sees (δr, δz, δn), the recurrent side (δr, δz, δn ⊙ r):
 * da and dhh (B, 3H) get those. carry (B, H) <- dh ⊙ z, the direct part of
 * dL/dh^{t-1}; the rest is dhh W_hh (a gemm, by the caller). */
#define CELL_BACKWARD(NAME, FT)                                                    \
    USG_CLONES                                                                     \
    static void NAME##_row(FT *restrict d, FT *restrict e, FT *restrict cb,        \
                           const FT *restrict dhb, const FT *restrict gb,          \
                           const FT *restrict hnb, const FT *restrict hpb, int64_t H) \
    {                                                                              \
        for (int64_t j = 0; j < H; j++) {                                          \
            FT r = gb[j], z = gb[H + j], n = gb[2 * H + j];                        \
            FT d_n = dhb[j] * (1 - z) * (1 - n * n);                               \
            FT d_z = dhb[j] * (hpb[j] - n) * z * (1 - z);                          \
            FT d_r = d_n * hnb[j] * r * (1 - r);                                   \
            d[j] = d_r, d[H + j] = d_z, d[2 * H + j] = d_n;                        \
            e[j] = d_r, e[H + j] = d_z, e[2 * H + j] = d_n * r;                    \
            cb[j] = dhb[j] * z;                                                    \
        }                                                                          \
    }                                                                              \
    static void NAME(FT *da, FT *dhh, FT *carry, const FT *dh,          \
                                const FT *g, const FT *hn, const FT *hp,           \
                                const int32_t *len, int64_t t, int64_t B, int64_t H) \
    {   /* a row at a time, as the forward; hp is zeros at t = 1 without h0 */     \
        for (int64_t b = 0; b < B; b++) {                                          \
            FT *d = da + b * 3 * H, *e = dhh + b * 3 * H, *cb = carry + b * H;     \
            const FT *dhb = dh + b * H;                                            \
            if (usg_rec_ended(len, b, t)) {   /* the identity: dh passes whole */   \
                memset(d, 0, 3 * (size_t)H * sizeof *d);                           \
                memset(e, 0, 3 * (size_t)H * sizeof *e);                           \
                memcpy(cb, dhb, (size_t)H * sizeof *cb);                           \
                continue;                                                          \
            }                                                                      \
            NAME##_row(d, e, cb, dhb, g + b * 3 * H, hn + b * H, hp + b * H, H);   \
        }                                                                          \
    }
CELL_BACKWARD(cell_backward_f32, float)
CELL_BACKWARD(cell_backward_f64, double)

/* ==== Forward =========================================================== */

usg_status usg_gru_layer_forward(usg_tensor *h, usg_tensor *gates, usg_tensor *hn,
                                 const usg_tensor *x, const usg_tensor *h0,
                                 const usg_tensor *w_ih, const usg_tensor *w_hh,
                                 const usg_tensor *b_ih, const usg_tensor *b_hh,
                                 const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], I = x->shape[2], H = w_hh->shape[1];
    int64_t G = 3 * H, BH = B * H;
    usg_tensor *hh = NULL;
    /* hh: one step's W_hh h^{t-1} + b_hh; zero: h^0 when there is no h0 */
    usg_tensor *zero = NULL;
    usg_status s = usg_tensor_empty(&hh, x->dtype, 2, (int64_t[]){B, G});
    if (s == USG_OK && !h0) s = usg_tensor_zeros(&zero, x->dtype, 2, (int64_t[]){B, H});
    if (s != USG_OK) {
        usg_tensor_release(hh);
        return s;
    }
    /* A = X W_ih^T + b_ih for all T steps at once: (T*B, I) x (I, 3H) */
    usg_tensor A = usg_rec_mat(gates, 0, T * B, G), X = usg_rec_mat(x, 0, T * B, I);
    if (b_ih) usg_rec_fill_bias(&A, T * B, G, b_ih, NULL);
    s = usg_gemm(&A, &X, false, w_ih, true, 1, b_ih ? 1 : 0);
    for (int64_t t = 0; t < T && s == USG_OK; t++) {
        /* hh = W_hh h^{t-1} + b_hh, with h^0 = h0 (or zeros: then hh = b_hh) */
        usg_tensor HH = usg_rec_mat(hh, 0, B, G);
        if (b_hh) usg_rec_fill_bias(&HH, B, G, b_hh, NULL);
        else memset(at(hh, 0), 0, (size_t)(B * G) * usg_dtype_size(x->dtype));
        const usg_tensor *prev = t > 0 ? h : h0;
        if (prev) {
            usg_tensor hp = usg_rec_mat(prev, t > 0 ? (t - 1) * BH : 0, B, H);
            if ((s = usg_gemm(&HH, &hp, false, w_hh, true, 1, 1)) != USG_OK) break;
        }
        void *hp = t > 0 ? at(h, (t - 1) * BH) : h0 ? at(h0, 0) : at(zero, 0);
        if (x->dtype == USG_F32)
            cell_forward_f32(at(gates, t * B * G), at(hn, t * BH), at(h, t * BH), at(hh, 0), hp, B, H);
        else
            cell_forward_f64(at(gates, t * B * G), at(hn, t * BH), at(h, t * BH), at(hh, 0), hp, B, H);
        if (t > 0)                            /* ended sequences keep h (recurrent.h) */
            usg_rec_freeze(at(h, t * BH), hp, len, t, B, H, usg_dtype_size(x->dtype));
    }
    usg_tensor_release(hh);
    usg_tensor_release(zero);
    return s;
}

/* ==== Backward through time =============================================
 * dH (T, B, H) starts as the gradient from above (g_out, plus g_hn at T);
 * step t adds into dH[t-1] its direct part dh ⊙ z and DH[t] W_hh. Then,
 * with DA, DH (T*B, 3H) the input-side and recurrent-side deltas:
 *
 *   dW_ih = DA^T X     dW_hh = DH[2..T]^T H[1..T-1] + DH[1]^T h0
 *   db_ih = Σ_t DA^t   db_hh = Σ_t DH^t    dx = DA W_ih
 *   dh0   = dh^1 ⊙ z^1 + DH[1] W_hh
 */
usg_status usg_gru_layer_backward(const usg_gru_grads *d, const usg_tensor *g_out,
                                  const usg_tensor *g_hn, const usg_tensor *x,
                                  const usg_tensor *h0, const usg_tensor *w_ih,
                                  const usg_tensor *w_hh, const usg_tensor *h,
                                  const usg_tensor *gates, const usg_tensor *hn,
                                  const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], I = x->shape[2], H = w_hh->shape[1];
    int64_t G = 3 * H, BH = B * H;
    usg_dtype dt = x->dtype;
    usg_tensor *dH = NULL, *DA = NULL, *DH = NULL, *carry = NULL, *acc = NULL, *zero = NULL;
    usg_status s = usg_tensor_empty(&dH, dt, 3, (int64_t[]){T, B, H});
    if (s == USG_OK && !h0) s = usg_tensor_zeros(&zero, dt, 2, (int64_t[]){B, H});   /* h^0 */
    if (s == USG_OK) s = usg_tensor_empty(&DA, dt, 3, (int64_t[]){T, B, G});
    if (s == USG_OK) s = usg_tensor_empty(&DH, dt, 3, (int64_t[]){T, B, G});
    if (s == USG_OK) s = usg_tensor_empty(&carry, dt, 2, (int64_t[]){B, H});
    if (s == USG_OK) s = usg_tensor_empty(&acc, USG_F64, 1, (int64_t[]){G});
    if (s != USG_OK) goto done;
    usg_rec_seed(dH, g_out, g_hn, T, BH);
    for (int64_t t = T - 1; t >= 0 && s == USG_OK; t--) {
        void *hp = t > 0 ? at(h, (t - 1) * BH) : h0 ? at(h0, 0) : at(zero, 0);
        void *da = at(DA, t * B * G), *dhh = at(DH, t * B * G);
        void *g = at(gates, t * B * G), *hnt = at(hn, t * BH);
        void *dht = at(dH, t * BH), *cy = at(carry, 0);
        if (dt == USG_F32) cell_backward_f32(da, dhh, cy, dht, g, hnt, hp, len, t, B, H);
        else cell_backward_f64(da, dhh, cy, dht, g, hnt, hp, len, t, B, H);
        if (t == 0 && !d->dh0) break;                     /* dL/dh^0 is not wanted */
        /* dL/dh^{t-1} += dh ⊙ z + DH[t] W_hh */
        usg_tensor prev = t > 0 ? usg_rec_mat(dH, (t - 1) * BH, B, H) : usg_rec_mat(d->dh0, 0, B, H);
        usg_rec_add(at(&prev, 0), cy, BH, dt);
        usg_tensor dhm = usg_rec_mat(DH, t * B * G, B, G);
        s = usg_gemm(&prev, &dhm, false, w_hh, false, 1, 1);
    }
    usg_tensor DAall = usg_rec_mat(DA, 0, T * B, G), DHall = usg_rec_mat(DH, 0, T * B, G);
    if (s == USG_OK && d->dw_hh) {          /* dW_hh += Σ_{t>1} DH^t h^{t-1 T} + DH^1 h0^T */
        if (T > 1) {
            usg_tensor Dn = usg_rec_mat(DH, B * G, (T - 1) * B, G);
            usg_tensor Hp = usg_rec_mat(h, 0, (T - 1) * B, H);
            s = usg_gemm(d->dw_hh, &Dn, true, &Hp, false, 1, 1);
        }
        if (s == USG_OK && h0) {
            usg_tensor d1 = usg_rec_mat(DH, 0, B, G), hz = usg_rec_mat(h0, 0, B, H);
            s = usg_gemm(d->dw_hh, &d1, true, &hz, false, 1, 1);
        }
    }
    if (s == USG_OK && d->dw_ih) {                                   /* dW_ih += DA^T X */
        usg_tensor X = usg_rec_mat(x, 0, T * B, I);
        s = usg_gemm(d->dw_ih, &DAall, true, &X, false, 1, 1);
    }
    if (s == USG_OK && d->db_ih) usg_rec_add_col_sums(d->db_ih, &DAall, at(acc, 0), T * B, G);
    if (s == USG_OK && d->db_hh) usg_rec_add_col_sums(d->db_hh, &DHall, at(acc, 0), T * B, G);
    if (s == USG_OK && d->dx) {                                      /* dx += DA W_ih */
        usg_tensor DX = usg_rec_mat(d->dx, 0, T * B, I);
        s = usg_gemm(&DX, &DAall, false, w_ih, false, 1, 1);
    }
done:
    usg_tensor_release(dH);
    usg_tensor_release(DA);
    usg_tensor_release(DH);
    usg_tensor_release(carry);
    usg_tensor_release(acc);
    usg_tensor_release(zero);
    return s;
}

/* ==== Checks ============================================================ */

usg_status usg_gru_check_layer(const usg_tensor *x, const usg_tensor *h0,
                               const usg_tensor *w_ih, const usg_tensor *w_hh,
                               const usg_tensor *b_ih, const usg_tensor *b_hh, int layer)
{
    char b1[256];
    usg_status s;
    if (!usg_dtype_is_float(x->dtype))
        return usg_fail(USG_TYPE, "gru: input must be f32 or f64, got %s", usg_dtype_name(x->dtype));
    if (x->ndim != 3)
        return usg_fail(USG_SHAPE, "gru: input must be 3-D (T, B, I), time-major, got %s",
                        usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    if (x->shape[0] < 1 || x->shape[1] < 1)
        return usg_fail(USG_SHAPE, "gru: input must have T >= 1 steps and B >= 1 sequences, "
                        "got %s", usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    if (w_ih->ndim != 2 || w_ih->shape[0] < 3 || w_ih->shape[0] % 3 != 0 || w_ih->shape[1] < 1)
        return usg_fail(USG_SHAPE, "gru: weight_ih_l%d must be (3H, I) with H, I >= 1, got %s",
                        layer, usg_shape_str(b1, sizeof b1, w_ih->ndim, w_ih->shape));
    int64_t H = w_ih->shape[0] / 3, I = w_ih->shape[1], G = 3 * H, B = x->shape[1];
    if ((s = usg_rec_same_dtype("gru", "weight_ih", layer, w_ih, x->dtype)) ||
        (s = usg_rec_same_dtype("gru", "weight_hh", layer, w_hh, x->dtype)) ||
        (s = usg_rec_same_dtype("gru", "bias_ih", layer, b_ih, x->dtype)) ||
        (s = usg_rec_same_dtype("gru", "bias_hh", layer, b_hh, x->dtype)) ||
        (s = usg_rec_same_dtype("gru", "h0", -1, h0, x->dtype)))
        return s;
    if (x->shape[2] != I)
        return usg_fail(USG_SHAPE, "gru: input must be (T, B, %lld), got %s", (long long)I,
                        usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    if ((s = usg_rec_expect("gru", "weight_hh", layer, w_hh, 2, (int64_t[]){G, H}, "")) ||
        (b_ih && (s = usg_rec_expect("gru", "bias_ih", layer, b_ih, 1, &G, ""))) ||
        (b_hh && (s = usg_rec_expect("gru", "bias_hh", layer, b_hh, 1, &G, ""))) ||
        (h0 && (s = usg_rec_expect("gru", "h0", -1, h0, 2, (int64_t[]){B, H}, " (B, H)"))))
        return s;
    return USG_OK;
}

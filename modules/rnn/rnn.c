/*
 * rnn.c -- the kernels of the Elman RNN: one layer's forward over a whole
 * sequence and its backward through time (BPTT), written out by hand, and
 * the shape checks of the op. No Lua, no autograd here: rnn_ad.c records
 * these as one op, rnn_lua.c binds it.
 *
 * The plan is cuDNN's. Forward: the input projection of all T steps is one
 * gemm, each step adds one recurrent gemm and one pass of f in place; the
 * output buffer z doubles as u's, so the forward needs no work memory.
 * Backward: one sweep from t = T down to 1 makes the deltas with one gemm
 * per step; then every weight gradient is one gemm over all T steps at
 * once, because the deltas (T, B, H), the inputs (T, B, I) and the states
 * (T, B, H) are contiguous in time.
 *
 * Row layout: a batch of vectors is a (B, H) matrix with one example per
 * row, so the column-vector equation u = W z becomes u = z W^T.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rnn.h"
#include "usagi/fastmath.h"
#include "usagi/recurrent.h"

const char *usg_rnn_act_name(usg_rnn_act f)
{
    switch (f) {
    case USG_RNN_TANH: return "tanh";
    case USG_RNN_RELU: return "relu";
    case USG_RNN_SIGMOID: return "sigmoid";
    }
    return "?";
}

bool usg_rnn_act_parse(const char *name, usg_rnn_act *f)
{
    for (int k = USG_RNN_TANH; k <= USG_RNN_SIGMOID; k++)
        if (strcmp(name, usg_rnn_act_name((usg_rnn_act)k)) == 0) {
            *f = (usg_rnn_act)k;
            return true;
        }
    return false;
}

/* ==== Helpers =========================================================== */

/* f and f' in terms of the output z = f(u), which is what the forward
 * keeps: tanh' = 1 - z^2, sigmoid' = z (1 - z), relu' = [z > 0]. */
static inline double act_f64(double u, usg_rnn_act f)
{
    switch (f) {
    case USG_RNN_TANH: return tanh(u);
    case USG_RNN_RELU: return u < 0 ? 0 : u;      /* NaN stays NaN */
    default:           return 1 / (1 + exp(-u));
    }
}

static inline double dact(double z, usg_rnn_act f)
{
    switch (f) {
    case USG_RNN_TANH: return 1 - z * z;
    case USG_RNN_RELU: return z > 0 ? 1 : 0;
    default:           return z * (1 - z);
    }
}

/* z = f(u) in place over n elements; one loop per f, so each is a plain
 * loop the compiler can vectorize */
USG_CLONES static void activate(void *u, int64_t n, usg_dtype dt, usg_rnn_act f)
{
    if (dt == USG_F32) {
        float *p = u;
        switch (f) {
        case USG_RNN_TANH: for (int64_t i = 0; i < n; i++) p[i] = usg_tanhf(p[i]); break;
        case USG_RNN_RELU: for (int64_t i = 0; i < n; i++) p[i] = p[i] < 0 ? 0 : p[i]; break;
        default:           for (int64_t i = 0; i < n; i++) p[i] = 1 / (1 + expf(-p[i])); break;
        }
    } else {
        double *p = u;
        for (int64_t i = 0; i < n; i++) p[i] = act_f64(p[i], f);
    }
}

/* d = d ⊙ f'(u), f' read from z = f(u), over n elements */
USG_CLONES static void mul_dact(void *d, const void *z, int64_t n, usg_dtype dt, usg_rnn_act f)
{
    if (dt == USG_F32) {
        float *p = d;
        const float *q = z;
        switch (f) {
        case USG_RNN_TANH: for (int64_t i = 0; i < n; i++) p[i] *= 1 - q[i] * q[i]; break;
        case USG_RNN_RELU: for (int64_t i = 0; i < n; i++) p[i] = q[i] > 0 ? p[i] : 0; break;
        default:           for (int64_t i = 0; i < n; i++) p[i] *= q[i] * (1 - q[i]); break;
        }
    } else {
        double *p = d;
        const double *q = z;
        for (int64_t i = 0; i < n; i++) p[i] *= dact(q[i], f);
    }
}

/* ==== Forward =========================================================== */

usg_status usg_rnn_layer_forward(usg_tensor *z, const usg_tensor *x, const usg_tensor *h0,
                                 const usg_tensor *w_ih, const usg_tensor *w_hh,
                                 const usg_tensor *b_ih, const usg_tensor *b_hh, usg_rnn_act f,
                                 const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], I = x->shape[2], H = w_hh->shape[0];
    usg_status s;
    /* U = X W_in^T + (b_ih + b_hh) for all T steps at once: (T*B, I) x (I, H) */
    usg_tensor U = usg_rec_mat(z, 0, T * B, H), X = usg_rec_mat(x, 0, T * B, I);
    bool bias = b_ih || b_hh;
    if (bias) usg_rec_fill_bias(&U, T * B, H, b_ih, b_hh);
    if ((s = usg_gemm(&U, &X, false, w_ih, true, 1, bias ? 1 : 0)) != USG_OK) return s;
    for (int64_t t = 0; t < T; t++) {
        usg_tensor u = usg_rec_mat(z, t * B * H, B, H);                          /* (B, H) */
        /* u^t += W z^{t-1}, with z^0 = h0; without h0 the term is 0 at t = 1 */
        if (t > 0 || h0) {
            usg_tensor zp = t > 0 ? usg_rec_mat(z, (t - 1) * B * H, B, H)
                                  : usg_rec_mat(h0, 0, B, H);
            if ((s = usg_gemm(&u, &zp, false, w_hh, true, 1, 1)) != USG_OK) return s;
        }
        activate(usg_tensor_data(&u), B * H, z->dtype, f);              /* z^t = f(u^t) */
        if (t > 0)                            /* ended sequences keep z^{t-1} (recurrent.h) */
            usg_rec_freeze(usg_tensor_data(&u), (const char *)usg_tensor_data(&u) -
                           (size_t)(B * H) * usg_dtype_size(z->dtype), len, t, B, H,
                           usg_dtype_size(z->dtype));
    }
    return USG_OK;
}

/* ==== Backward through time =============================================
 * With g^t = dL/dz^t arriving from above (the next layer or the loss; for
 * t = T also the final state's gradient), the delta of step t is
 *
 *   δ^t = dL/du^t = (g^t + W^T δ^{t+1}) ⊙ f'(u^t),       δ^{T+1} = 0
 *
 * and the gradients are sums over steps:
 *
 *   dL/dW    = Σ_t δ^t z^{t-1 T}    dL/dW_in = Σ_t δ^t x^{t T}
 *   dL/db    = Σ_t δ^t              dL/dx^t  = W_in^T δ^t
 *   dL/dh0   = W^T δ^1
 *
 * In row layout, with D (T*B, H) the deltas stacked over time:
 * dW = D[2..T]^T Z[1..T-1] + D[1]^T h0, dW_in = D^T X, dx = D W_in.
 */

/* The sweep t = T..1: δ^t = D[t] ⊙ f'(u^t), then D[t-1] += δ^t W (one gemm,
 * beta = 1 adds W^T δ^t to the gradient already there). For a sequence
 * that has ended by step t the step is the identity: its D[t] row passes
 * to D[t-1] whole and its δ^t is 0. */
static usg_status sweep(usg_tensor *D, const usg_tensor *z, const usg_tensor *w_hh,
                        int64_t T, int64_t B, int64_t H, usg_rnn_act f, const int32_t *len)
{
    usg_status s;
    for (int64_t t = T - 1; t >= 0; t--) {
        usg_tensor d = usg_rec_mat(D, t * B * H, B, H);                        /* (B, H) */
        if (t > 0)
            usg_rec_pass_ended((char *)usg_tensor_data(&d) - (size_t)(B * H) * usg_dtype_size(D->dtype),
                               usg_tensor_data(&d), len, t, B, H, D->dtype);
        mul_dact(usg_tensor_data(&d), (const char *)usg_tensor_data(z) +
                 (size_t)(t * B * H) * usg_dtype_size(z->dtype), B * H, z->dtype, f);
        if (t == 0) break;
        usg_tensor prev = usg_rec_mat(D, (t - 1) * B * H, B, H);
        if ((s = usg_gemm(&prev, &d, false, w_hh, false, 1, 1)) != USG_OK) return s;
    }
    return USG_OK;
}

usg_status usg_rnn_layer_backward(usg_tensor *dx, usg_tensor *dh0, usg_tensor *dw_ih,
                                  usg_tensor *dw_hh, usg_tensor *db,
                                  const usg_tensor *g_out, const usg_tensor *g_hn,
                                  const usg_tensor *x, const usg_tensor *h0,
                                  const usg_tensor *w_ih, const usg_tensor *w_hh,
                                  const usg_tensor *z, usg_rnn_act f, const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], I = x->shape[2], H = w_hh->shape[0];
    usg_tensor *D = NULL, *acc = NULL;
    usg_status s = usg_tensor_empty(&D, z->dtype, 3, z->shape);                /* (T, B, H) */
    if (s == USG_OK && db) s = usg_tensor_empty(&acc, USG_F64, 1, &H);          /* (H) */
    if (s != USG_OK) { usg_tensor_release(D); return s; }
    usg_rec_seed(D, g_out, g_hn, T, B * H);
    s = sweep(D, z, w_hh, T, B, H, f, len);
    usg_tensor Dall = usg_rec_mat(D, 0, T * B, H);                                   /* (T*B, H) */
    /* dh0 += W^T δ^1 */
    if (s == USG_OK && dh0) {
        usg_tensor d1 = usg_rec_mat(D, 0, B, H), dh = usg_rec_mat(dh0, 0, B, H);
        s = usg_gemm(&dh, &d1, false, w_hh, false, 1, 1);
    }
    /* dW += Σ_{t>1} δ^t z^{t-1 T} (one gemm over T-1 steps) + δ^1 h0^T */
    if (s == USG_OK && dw_hh) {
        usg_tensor Dn = usg_rec_mat(D, B * H, (T - 1) * B, H);
        usg_tensor Zp = usg_rec_mat(z, 0, (T - 1) * B, H);
        s = usg_gemm(dw_hh, &Dn, true, &Zp, false, 1, 1);
        if (s == USG_OK && h0) {
            usg_tensor d1 = usg_rec_mat(D, 0, B, H), hz = usg_rec_mat(h0, 0, B, H);
            s = usg_gemm(dw_hh, &d1, true, &hz, false, 1, 1);
        }
    }
    /* dW_in += Σ_t δ^t x^{t T} = D^T X: (H, T*B) x (T*B, I) */
    if (s == USG_OK && dw_ih) {
        usg_tensor X = usg_rec_mat(x, 0, T * B, I);
        s = usg_gemm(dw_ih, &Dall, true, &X, false, 1, 1);
    }
    /* db += Σ_t δ^t */
    if (s == USG_OK && db) usg_rec_add_col_sums(db, &Dall, usg_tensor_data(acc), T * B, H);
    /* dx^t += W_in^T δ^t for all t: (T*B, H) x (H, I) */
    if (s == USG_OK && dx) {
        usg_tensor DX = usg_rec_mat(dx, 0, T * B, I);
        s = usg_gemm(&DX, &Dall, false, w_ih, false, 1, 1);
    }
    usg_tensor_release(D);
    usg_tensor_release(acc);
    return s;
}

/* ==== Checks ============================================================ */

usg_status usg_rnn_check_layer(const usg_tensor *x, const usg_tensor *h0,
                               const usg_tensor *w_ih, const usg_tensor *w_hh,
                               const usg_tensor *b_ih, const usg_tensor *b_hh, int layer)
{
    char b1[256], b2[256];
    usg_status s;
    if (!usg_dtype_is_float(x->dtype))
        return usg_fail(USG_TYPE, "rnn: input must be f32 or f64, got %s", usg_dtype_name(x->dtype));
    if (x->ndim != 3)
        return usg_fail(USG_SHAPE, "rnn: input must be 3-D (T, B, I), time-major, got %s",
                        usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    if (x->shape[0] < 1 || x->shape[1] < 1)
        return usg_fail(USG_SHAPE, "rnn: input must have T >= 1 steps and B >= 1 sequences, "
                        "got %s", usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    if (w_ih->ndim != 2 || w_ih->shape[0] < 1 || w_ih->shape[1] < 1)
        return usg_fail(USG_SHAPE, "rnn: weight_ih_l%d must be (H, I) with H, I >= 1, got %s",
                        layer, usg_shape_str(b1, sizeof b1, w_ih->ndim, w_ih->shape));
    int64_t H = w_ih->shape[0], I = w_ih->shape[1];
    if ((s = usg_rec_same_dtype("rnn", "weight_ih", layer, w_ih, x->dtype)) ||
        (s = usg_rec_same_dtype("rnn", "weight_hh", layer, w_hh, x->dtype)) ||
        (b_ih && (s = usg_rec_same_dtype("rnn", "bias_ih", layer, b_ih, x->dtype))) ||
        (b_hh && (s = usg_rec_same_dtype("rnn", "bias_hh", layer, b_hh, x->dtype))))
        return s;
    if (x->shape[2] != I)
        return usg_fail(USG_SHAPE, "rnn: input must be (T, B, %lld), got %s", (long long)I,
                        usg_shape_str(b2, sizeof b2, x->ndim, x->shape));
    if ((s = usg_rec_expect("rnn", "weight_hh", layer, w_hh, 2, (int64_t[]){H, H}, "")) ||
        (b_ih && (s = usg_rec_expect("rnn", "bias_ih", layer, b_ih, 1, &H, ""))) ||
        (b_hh && (s = usg_rec_expect("rnn", "bias_hh", layer, b_hh, 1, &H, ""))))
        return s;
    if (h0) {
        if (h0->dtype != x->dtype)
            return usg_fail(USG_TYPE, "rnn: h0 must be %s like the input, got %s",
                            usg_dtype_name(x->dtype), usg_dtype_name(h0->dtype));
        if ((s = usg_rec_expect("rnn", "h0", -1, h0, 2, (int64_t[]){x->shape[1], H}, " (B, H)"))) return s;
    }
    return USG_OK;
}

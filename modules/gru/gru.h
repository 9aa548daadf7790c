/*
 * gru.h -- the GRU plugin's C interface, shared by its kernels (gru.c), its
 * autograd op (gru_ad.c) and its binding (gru_lua.c). Not installed.
 *
 * One layer over t = 1..T with PyTorch's (and cuDNN's) equations and gate
 * order (r, z, n), so that its weights load; ⊙ is the elementwise product:
 *
 *   r^t = σ(W_ir x^t + b_ir + W_hr h^{t-1} + b_hr)          reset gate
 *   z^t = σ(W_iz x^t + b_iz + W_hz h^{t-1} + b_hz)          update gate
 *   n^t = tanh(W_in x^t + b_in + r^t ⊙ (W_hn h^{t-1} + b_hn))   candidate
 *   h^t = (1 - z^t) ⊙ n^t + z^t ⊙ h^{t-1}
 *
 * with h^0 = h0 (zeros when absent). The reset gate multiplies the
 * recurrent term after its bias, which is why the two biases are not one
 * (b_hn sits inside r ⊙ (...)). Shapes: W_ih (3H, I), W_hh (3H, H), b_ih,
 * b_hh (3H), x (T, B, I), h (T, B, H).
 */
#ifndef USAGI_GRU_H
#define USAGI_GRU_H

#include "usagi/core.h"
#include "usagi/ops.h"
#include "usagi/random.h"
#include "usagi/autograd.h"
#include "usagi/recurrent.h"

/* ==== Kernels (gru.c) ====================================================
 * Contiguous tensors of one float dtype, shapes checked. */

/* h (T, B, H) <- the outputs; gates (T, B, 3H) <- (r, z, n) after their
 * nonlinearities and hn (T, B, H) <- W_hn h^{t-1} + b_hn, which the backward
 * reads. h0 (B, H), b_ih, b_hh (3H) may be NULL. len (B) or NULL: the
 * sequences' lengths in 1..T; an ended sequence keeps its h (recurrent.h). */
usg_status usg_gru_layer_forward(usg_tensor *h, usg_tensor *gates, usg_tensor *hn,
                                 const usg_tensor *x, const usg_tensor *h0,
                                 const usg_tensor *w_ih, const usg_tensor *w_hh,
                                 const usg_tensor *b_ih, const usg_tensor *b_hh,
                                 const int32_t *len);

/* BPTT of one layer. ADDS into the gradient buffers given (each may be
 * NULL): dx (T, B, I), dh0 (B, H), dw_ih, dw_hh (3H, ...), db_ih, db_hh
 * (3H). g_out (T, B, H) and g_hn (B, H) arrive from above; either may be
 * NULL (zeros). */
typedef struct usg_gru_grads {
    usg_tensor *dx, *dh0, *dw_ih, *dw_hh, *db_ih, *db_hh;
} usg_gru_grads;

usg_status usg_gru_layer_backward(const usg_gru_grads *d, const usg_tensor *g_out,
                                  const usg_tensor *g_hn, const usg_tensor *x,
                                  const usg_tensor *h0, const usg_tensor *w_ih,
                                  const usg_tensor *w_hh, const usg_tensor *h,
                                  const usg_tensor *gates, const usg_tensor *hn,
                                  const int32_t *len);

/* Layer `layer` (0-based, as weight_ih_l0) reading x (T, B, I): messages
 * name "gru", the argument, what was expected and what came. */
usg_status usg_gru_check_layer(const usg_tensor *x, const usg_tensor *h0,
                               const usg_tensor *w_ih, const usg_tensor *w_hh,
                               const usg_tensor *b_ih, const usg_tensor *b_hh, int layer);

/* ==== Autograd ops (gru_ad.c) ============================================ */

/* One layer as ONE recorded op: outputs out (T, B, H) and h_n (B, H).
 * lengths: NULL or i32 (B) in 1..T (out repeats an ended sequence's last
 * state; usg_ad_gru zeroes it). */
usg_status usg_ad_gru_layer(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                            usg_tensor *w_ih, usg_tensor *w_hh, usg_tensor *b_ih,
                            usg_tensor *b_hh, int layer, usg_tensor *lengths);

/* The stacked GRU: `layers` layers of 4 weights (w_ih, w_hh, b_ih, b_hh;
 * biases may be NULL), h0 (L, B, H) or NULL; out are the last layer's
 * outputs, h_n (L, B, H) every layer's final state. Dropout p in [0, 1)
 * on the output of every layer but the last. lengths: NULL or i32 (B) in
 * 1..T: out is zero past each length, h_n each sequence's own last state. */
usg_status usg_ad_gru(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                      int layers, usg_tensor *const *weights, double dropout, usg_rng *rng,
                      usg_tensor *lengths);

#endif

/*
 * lstm.h -- the LSTM plugin's C interface, shared by its kernels (lstm.c),
 * its autograd op (lstm_ad.c) and its binding (lstm_lua.c). Not installed.
 *
 * One layer over t = 1..T, gates in PyTorch's order (i, f, g, o) so that
 * its weights load; ⊙ is the elementwise product, σ the logistic sigmoid:
 *
 *   a^t = W_ih x^t + W_hh h^{t-1} + b_ih + b_hh       (4H: a_i, a_f, a_g, a_o)
 *   i^t = σ(a_i + p_i ⊙ c^{t-1})                      input gate
 *   f^t = σ(a_f + p_f ⊙ c^{t-1})                      forget gate
 *   g^t = tanh(a_g)                                   cell input
 *   c^t = f^t ⊙ c^{t-1} + i^t ⊙ g^t                   the CEC
 *   o^t = σ(a_o + p_o ⊙ c^t)                          output gate
 *   h^t = o^t ⊙ tanh(c^t)
 *
 * with h^0 = h0, c^0 = c0 (zeros when absent). p_i, p_f, p_o (H each) are
 * the peephole weights of Gers & Schmidhuber (2000): the input and forget
 * gates see the previous cell, the output gate the new one. Without
 * peepholes they are absent (PyTorch's LSTM). Shapes: W_ih (4H, I),
 * W_hh (4H, H), b_ih, b_hh (4H), x (T, B, I), h and c (T, B, H).
 */
#ifndef USAGI_LSTM_H
#define USAGI_LSTM_H

#include "usagi/core.h"
#include "usagi/ops.h"
#include "usagi/random.h"
#include "usagi/autograd.h"
#include "usagi/recurrent.h"

/* A layer's weights, PyTorch's first: the peepholes are all three or none. */
typedef struct usg_lstm_weights {
    const usg_tensor *w_ih, *w_hh, *b_ih, *b_hh;   /* biases may be NULL */
    const usg_tensor *p_i, *p_f, *p_o;             /* NULL: no peepholes */
} usg_lstm_weights;

/* ==== Kernels (lstm.c) ===================================================
 * Contiguous tensors of one float dtype, shapes checked. */

/* h (T, B, H) <- the outputs, c (T, B, H) <- the cells, gates (T, B, 4H)
 * <- (i, f, g, o) after their nonlinearities, which the backward reads.
 * h0, c0 (B, H) may be NULL. len (B) or NULL: the sequences' lengths in
 * 1..T; an ended sequence keeps its (h, c) (usagi/recurrent.h). */
usg_status usg_lstm_layer_forward(usg_tensor *h, usg_tensor *c, usg_tensor *gates,
                                  const usg_tensor *x, const usg_tensor *h0,
                                  const usg_tensor *c0, const usg_lstm_weights *w,
                                  const int32_t *len);

/* BPTT of one layer. ADDS into the gradient buffers given (each may be
 * NULL): dx (T, B, I), dh0, dc0 (B, H), dw_ih, dw_hh, db (4H, the gradient
 * of both biases), dp_i, dp_f, dp_o (H). g_out (T, B, H), g_hn and g_cn
 * (B, H) arrive from above; each may be NULL (zeros). */
typedef struct usg_lstm_grads {
    usg_tensor *dx, *dh0, *dc0, *dw_ih, *dw_hh, *db, *dp_i, *dp_f, *dp_o;
} usg_lstm_grads;

usg_status usg_lstm_layer_backward(const usg_lstm_grads *d, const usg_tensor *g_out,
                                   const usg_tensor *g_hn, const usg_tensor *g_cn,
                                   const usg_tensor *x, const usg_tensor *h0,
                                   const usg_tensor *c0, const usg_lstm_weights *w,
                                   const usg_tensor *h, const usg_tensor *c,
                                   const usg_tensor *gates, const int32_t *len);

/* Layer `layer` (0-based, as weight_ih_l0) reading x (T, B, I): messages
 * name "lstm", the argument, what was expected and what came. */
usg_status usg_lstm_check_layer(const usg_tensor *x, const usg_tensor *h0, const usg_tensor *c0,
                                const usg_lstm_weights *w, int layer);

/* ==== Autograd ops (lstm_ad.c) =========================================== */

/* One layer as ONE recorded op: outputs out (T, B, H), h_n and c_n (B, H).
 * lengths: NULL or i32 (B) in 1..T (out repeats an ended sequence's last
 * state; usg_ad_lstm zeroes it). */
usg_status usg_ad_lstm_layer(usg_tensor **out, usg_tensor **h_n, usg_tensor **c_n,
                             usg_tensor *x, usg_tensor *h0, usg_tensor *c0,
                             usg_tensor *const *w, int layer, usg_tensor *lengths);

/* The stacked LSTM: `layers` layers of 7 weights each, in the order
 * (w_ih, w_hh, b_ih, b_hh, p_i, p_f, p_o), NULL where absent; h0, c0
 * (L, B, H) or NULL. out are the last layer's outputs, h_n and c_n
 * (L, B, H) every layer's final states. Dropout p in [0, 1) on the output
 * of every layer but the last. lengths: NULL or i32 (B) in 1..T: out is
 * zero past each length, h_n and c_n each sequence's own last states. */
#define USG_LSTM_WEIGHTS 7
usg_status usg_ad_lstm(usg_tensor **out, usg_tensor **h_n, usg_tensor **c_n, usg_tensor *x,
                       usg_tensor *h0, usg_tensor *c0, int layers, usg_tensor *const *weights,
                       double dropout, usg_rng *rng, usg_tensor *lengths);

#endif

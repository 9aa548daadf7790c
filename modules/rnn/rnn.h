/*
 * rnn.h -- the Elman RNN plugin's C interface, shared by its kernels
 * (rnn.c), its autograd op (rnn_ad.c), its binding (rnn_lua.c) and the C
 * test (tests/c/test_rnn.c). Not installed: other plugins do not build on it.
 *
 * The model, in the course's notation, for one layer over t = 1..T:
 *
 *   u^t = W_in x^t + W z^{t-1} + b        z^0 = h0 (zeros when none)
 *   z^t = f(u^t)                          f in {tanh, relu, sigmoid}
 *
 * with PyTorch's names and shapes so that its weights load:
 *   W_in = weight_ih (H, I), W = weight_hh (H, H), b = bias_ih + bias_hh (H).
 * Layer l > 1 reads layer l-1's z as its input. Sequences are time-major:
 * x (T, B, I), z (T, B, H); initial and final states are (L, B, H).
 */
#ifndef USAGI_RNN_H
#define USAGI_RNN_H

#include "usagi/core.h"
#include "usagi/ops.h"
#include "usagi/random.h"
#include "usagi/autograd.h"
#include "usagi/recurrent.h"

typedef enum usg_rnn_act { USG_RNN_TANH, USG_RNN_RELU, USG_RNN_SIGMOID } usg_rnn_act;

const char *usg_rnn_act_name(usg_rnn_act f);                 /* "tanh", "relu", "sigmoid" */
bool usg_rnn_act_parse(const char *name, usg_rnn_act *f);

/* ==== Kernels (rnn.c) ====================================================
 * Plain tensors, no autograd. All arguments contiguous and of one float
 * dtype, shapes already checked (usg_rnn_check does it); NULL where marked
 * optional. They allocate nothing inside the time loop. */

/* z (T, B, H) <- the layer's hidden states. h0 (B, H), b_ih, b_hh (H) optional.
 * len (B) or NULL: the sequences' lengths, 1..T; an ended sequence keeps
 * its state (usagi/recurrent.h), so z^T holds each one's own last state. */
usg_status usg_rnn_layer_forward(usg_tensor *z, const usg_tensor *x, const usg_tensor *h0,
                                 const usg_tensor *w_ih, const usg_tensor *w_hh,
                                 const usg_tensor *b_ih, const usg_tensor *b_hh,
                                 usg_rnn_act f, const int32_t *len);

/* BPTT of one layer. ADDS into the gradient buffers given (each may be NULL
 * when not wanted): dx (T, B, I), dh0 (B, H), dw_ih (H, I), dw_hh (H, H),
 * db (H, the gradient of both biases). g_out (T, B, H) and g_hn (B, H) are
 * dL/dz^t from above and dL/dz^T from the final state; either may be NULL
 * (zeros). z is the forward's output. Allocates its work buffers once. */
usg_status usg_rnn_layer_backward(usg_tensor *dx, usg_tensor *dh0, usg_tensor *dw_ih,
                                  usg_tensor *dw_hh, usg_tensor *db,
                                  const usg_tensor *g_out, const usg_tensor *g_hn,
                                  const usg_tensor *x, const usg_tensor *h0,
                                  const usg_tensor *w_ih, const usg_tensor *w_hh,
                                  const usg_tensor *z, usg_rnn_act f, const int32_t *len);

/* ==== Checks (rnn.c) =====================================================
 * Layer `layer` (0-based, as PyTorch's weight_ih_l0) of an RNN whose input
 * x is (T, B, I): weights of one float dtype, w_ih (H, I), w_hh (H, H),
 * biases (H) or NULL; h0 (B, H) or NULL. Messages name "rnn", the argument,
 * what was expected and what came ("rnn: input must be (T, B, 8), got
 * (5, 3, 7)"). */
usg_status usg_rnn_check_layer(const usg_tensor *x, const usg_tensor *h0,
                               const usg_tensor *w_ih, const usg_tensor *w_hh,
                               const usg_tensor *b_ih, const usg_tensor *b_hh, int layer);

/* ==== Autograd ops (rnn_ad.c) ============================================ */

/* One layer as ONE recorded op with inputs (x, h0, w_ih, w_hh, b_ih, b_hh)
 * and outputs out (T, B, H) and h_n (B, H) = z^T. h0, b_ih, b_hh may be
 * NULL; inputs may be any views. lengths: NULL or i32 (B) in 1..T; an
 * ended sequence keeps its state (its out rows past the length repeat the
 * last state: usg_ad_rnn zeroes them). */
usg_status usg_ad_rnn_layer(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                            usg_tensor *w_ih, usg_tensor *w_hh, usg_tensor *b_ih,
                            usg_tensor *b_hh, usg_rnn_act f, int layer, usg_tensor *lengths);

/* The stacked RNN: `layers` layers, weights 4 per layer in PyTorch's order
 * (w_ih, w_hh, b_ih, b_hh; the biases may be NULL), h0 (L, B, H) or NULL.
 * out (T, B, H) are the last layer's states, h_n (L, B, H) the final state
 * of every layer. dropout p in [0, 1) is applied to the outputs of every
 * layer but the last (rng may be NULL when p = 0). lengths: NULL or i32
 * (B) in 1..T: out is zero past each length and h_n holds each sequence's
 * state at its own last step. */
usg_status usg_ad_rnn(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                      int layers, usg_tensor *const *weights, usg_rnn_act f, double dropout,
                      usg_rng *rng, usg_tensor *lengths);

#endif

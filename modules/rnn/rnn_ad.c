/*
 * rnn_ad.c -- the Elman RNN as autograd ops: one layer over the whole
 * sequence is ONE recorded node whose backward is the BPTT of rnn.c, and
 * the stacked RNN chains layers (with dropout between them) and gathers
 * their final states. No Lua here, so the C tests gradcheck it directly;
 * rnn_lua.c only binds it.
 *
 * What a layer's node keeps for its backward: x, W_in, W, h0 and its own
 * output z (T, B, H). f'(u^t) is read from z^t (tanh' = 1 - z^2, ...), so u
 * is not stored: the forward's memory is the output alone.
 */
#include <string.h>

#include "rnn.h"

/* ==== One layer ========================================================= */

typedef struct rnn_ctx {
    usg_rnn_act f;
    bool has_h0;
    int len_at;              /* where the lengths were saved, or -1 */
} rnn_ctx;

/* saved tensors, in order of usg_node_save */
enum { SAVED_X, SAVED_W_IH, SAVED_W_HH, SAVED_Z, SAVED_H0 };
/* inputs of the node */
enum { IN_X, IN_H0, IN_W_IH, IN_W_HH, IN_B_IH, IN_B_HH, N_IN };

/* y = (out, h_n) = RNN(x, h0; W_in, W, b_ih, b_hh), with h_n = z^T.
 * Outputs' gradients g_out = dL/dz^t, g_hn = dL/dz^T (either may be NULL);
 * BPTT (rnn.c) gives dx, dh0, dW_in, dW, and db_ih = db_hh = Σ_t δ^t. */
static usg_status rnn_backward(usg_node *n, usg_tensor *const *grad_out, usg_tensor **grad_in)
{
    const rnn_ctx *c = usg_node_ctx(n);
    usg_tensor *x = usg_node_saved(n, SAVED_X), *z = usg_node_saved(n, SAVED_Z);
    usg_tensor *h0 = c->has_h0 ? usg_node_saved(n, SAVED_H0) : NULL;
    usg_tensor *len = c->len_at < 0 ? NULL : usg_node_saved(n, c->len_at);
    usg_tensor *g_out = NULL, *g_hn = NULL, *g[N_IN] = {NULL};
    usg_status s = usg_grad_for_kernel(&g_out, grad_out[0], z->dtype);
    if (s == USG_OK) s = usg_grad_for_kernel(&g_hn, grad_out[1], z->dtype);
    for (int i = IN_X; i <= IN_B_IH && s == USG_OK; i++) s = usg_node_zero_grad(&g[i], n, i);
    /* both biases have the one gradient Σ_t δ^t: compute it once */
    bool need_b = usg_node_needs_grad(n, IN_B_IH) || usg_node_needs_grad(n, IN_B_HH);
    if (s == USG_OK && !g[IN_B_IH] && need_b) {
        int nd;
        const int64_t *shape = usg_node_input_shape(n, IN_B_HH, &nd);
        s = usg_tensor_zeros(&g[IN_B_IH], usg_node_input_dtype(n, IN_B_HH), nd, shape);
    }
    if (s == USG_OK)
        s = usg_rnn_layer_backward(g[IN_X], g[IN_H0], g[IN_W_IH], g[IN_W_HH], g[IN_B_IH],
                                   g_out, g_hn, x, h0, usg_node_saved(n, SAVED_W_IH),
                                   usg_node_saved(n, SAVED_W_HH), z, c->f,
                                   len ? usg_tensor_data(len) : NULL);
    if (s == USG_OK && usg_node_needs_grad(n, IN_B_HH)) {
        if (usg_node_needs_grad(n, IN_B_IH)) s = usg_clone(&g[IN_B_HH], g[IN_B_IH]);
        else { g[IN_B_HH] = g[IN_B_IH]; g[IN_B_IH] = NULL; }
    }
    usg_tensor_release(g_out);
    usg_tensor_release(g_hn);
    for (int i = 0; i < N_IN; i++) {
        if (s == USG_OK) grad_in[i] = g[i];
        else usg_tensor_release(g[i]);
    }
    return s;
}

static const usg_op rnn_op = {"rnn", rnn_backward, NULL};

usg_status usg_ad_rnn_layer(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                            usg_tensor *w_ih, usg_tensor *w_hh, usg_tensor *b_ih,
                            usg_tensor *b_hh, usg_rnn_act f, int layer, usg_tensor *lengths)
{
    *out = *h_n = NULL;
    usg_status s = usg_rnn_check_layer(x, h0, w_ih, w_hh, b_ih, b_hh, layer);
    if (s == USG_OK) s = usg_rec_check_lengths("rnn", lengths, x);
    if (s != USG_OK) return s;
    usg_tensor *len = NULL;
    if (lengths && (s = usg_contiguous(&len, lengths)) != USG_OK) return s;
    usg_tensor *in[N_IN] = {x, h0, w_ih, w_hh, b_ih, b_hh}, *cont[N_IN] = {NULL};
    for (int i = 0; i < N_IN && s == USG_OK; i++)
        if (in[i]) s = usg_contiguous(&cont[i], in[i]);
    int64_t T = x->shape[0], B = x->shape[1], H = w_hh->shape[0];
    usg_tensor *z = NULL, *hn = NULL;
    if (s == USG_OK) s = usg_tensor_empty(&z, x->dtype, 3, (int64_t[]){T, B, H});
    if (s == USG_OK) s = usg_tensor_empty(&hn, x->dtype, 2, (int64_t[]){B, H});
    if (s == USG_OK)
        s = usg_rnn_layer_forward(z, cont[IN_X], cont[IN_H0], cont[IN_W_IH], cont[IN_W_HH],
                                  cont[IN_B_IH], cont[IN_B_HH], f,
                                  len ? usg_tensor_data(len) : NULL);
    if (s == USG_OK) {
        /* h_n = z^T, a copy: the two outputs are separate tensors, as PyTorch's */
        size_t bytes = (size_t)(B * H) * usg_dtype_size(x->dtype);
        memcpy(usg_tensor_data(hn), (char *)usg_tensor_data(z) + (size_t)(T - 1) * bytes, bytes);
        /* inputs are the caller's tensors (the graph's edges), saved are
         * their contiguous forms (what the kernel read) */
        rnn_ctx c = {f, h0 != NULL, len ? SAVED_H0 + (h0 != NULL) : -1};
        usg_tensor *saved[] = {cont[IN_X], cont[IN_W_IH], cont[IN_W_HH], z, cont[IN_H0], len};
        usg_tensor *outs[2] = {z, hn};        /* released and NULL on failure */
        s = usg_record(&rnn_op, N_IN, in, 2, outs, 6, saved, &c, sizeof c);
        z = outs[0], hn = outs[1];
    }
    for (int i = 0; i < N_IN; i++) usg_tensor_release(cont[i]);
    usg_tensor_release(len);
    if (s != USG_OK) {
        usg_tensor_release(z);
        usg_tensor_release(hn);
        return s;
    }
    *out = z;
    *h_n = hn;
    return USG_OK;
}

/* ==== The stacked RNN =================================================== */

/* one layer's checks, for usg_rec_check_weights (h0 is usg_ad_rec_stack's) */
static usg_status check_layer(const usg_tensor *x, usg_tensor *const *w, int layer)
{
    return usg_rnn_check_layer(x, NULL, w[0], w[1], w[2], w[3], layer);
}

typedef struct stack_ctx {
    usg_tensor *const *w;
    usg_rnn_act f;
} stack_ctx;

static usg_status stack_layer(void *ctx, int l, usg_tensor *x, usg_tensor *const *s0,
                              usg_tensor *lengths, usg_tensor **y, usg_tensor **finals)
{
    const stack_ctx *c = ctx;
    usg_tensor *const *w = c->w + 4 * l;
    return usg_ad_rnn_layer(y, &finals[0], x, s0[0], w[0], w[1], w[2], w[3], c->f, l, lengths);
}

usg_status usg_ad_rnn(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                      int layers, usg_tensor *const *weights, usg_rnn_act f, double dropout,
                      usg_rng *rng, usg_tensor *lengths)
{
    *out = *h_n = NULL;
    usg_status s = usg_rec_check_weights("rnn", x, layers, 4, 1, weights, check_layer);
    if (s != USG_OK) return s;
    stack_ctx c = {weights, f};
    return usg_ad_rec_stack(out, h_n, x, &h0, 1, (const char *[]){"h0"}, "rnn", layers,
                            weights[0]->shape[0], lengths, stack_layer, &c, dropout, rng);
}

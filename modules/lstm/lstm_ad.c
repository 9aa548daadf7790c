/*
 * lstm_ad.c -- the LSTM as autograd ops: one layer over the whole sequence
 * is ONE recorded node whose backward is the BPTT of lstm.c, and the
 * stacked LSTM chains layers (dropout between them) and gathers their
 * final states. No Lua here; lstm_lua.c binds it.
 *
 * What a layer's node keeps for its backward: x, the weights it reads
 * (W_ih, W_hh, the peepholes), h0, c0, its output h (T, B, H), the cells
 * c (T, B, H) and the activated gates (T, B, 4H) -- the forward's own
 * buffers, so the backward recomputes nothing but tanh(c).
 */
#include <string.h>

#include "lstm.h"

/* inputs of the node */
enum { IN_X, IN_H0, IN_C0, IN_W_IH, IN_W_HH, IN_B_IH, IN_B_HH, IN_P_I, IN_P_F, IN_P_O, N_IN };
/* saved tensors: these first, then h0, c0, the peepholes and the lengths
 * when present */
enum { SAVED_X, SAVED_W_IH, SAVED_W_HH, SAVED_H, SAVED_C, SAVED_GATES, N_SAVED_FIXED };

typedef struct lstm_ctx {
    int saved_at[N_IN];          /* where input i was saved, or -1 */
    int len_at;                  /* where the lengths were saved, or -1 */
} lstm_ctx;

static usg_tensor *saved_input(const usg_node *n, int i)
{
    const lstm_ctx *c = usg_node_ctx(n);
    return c->saved_at[i] < 0 ? NULL : usg_node_saved(n, c->saved_at[i]);
}

/* (out, h_n, c_n) = LSTM(x, h0, c0; W_ih, W_hh, b_ih, b_hh, p_i, p_f, p_o).
 * Gradients of the outputs (each may be NULL) go through lstm.c's BPTT;
 * both biases get the one gradient Σ_t δa^t. */
static usg_status lstm_backward(usg_node *n, usg_tensor *const *grad_out, usg_tensor **grad_in)
{
    usg_tensor *x = usg_node_saved(n, SAVED_X);
    usg_tensor *g_out = NULL, *g_hn = NULL, *g_cn = NULL, *g[N_IN] = {NULL};
    usg_status s = usg_grad_for_kernel(&g_out, grad_out[0], x->dtype);
    if (s == USG_OK) s = usg_grad_for_kernel(&g_hn, grad_out[1], x->dtype);
    if (s == USG_OK) s = usg_grad_for_kernel(&g_cn, grad_out[2], x->dtype);
    for (int i = 0; i < N_IN && s == USG_OK; i++)
        if (i != IN_B_HH) s = usg_node_zero_grad(&g[i], n, i);
    bool need_b = usg_node_needs_grad(n, IN_B_IH) || usg_node_needs_grad(n, IN_B_HH);
    if (s == USG_OK && !g[IN_B_IH] && need_b) {
        int nd;
        const int64_t *shape = usg_node_input_shape(n, IN_B_HH, &nd);
        s = usg_tensor_zeros(&g[IN_B_IH], usg_node_input_dtype(n, IN_B_HH), nd, shape);
    }
    if (s == USG_OK) {
        usg_lstm_weights w = {usg_node_saved(n, SAVED_W_IH), usg_node_saved(n, SAVED_W_HH),
                              NULL, NULL, saved_input(n, IN_P_I), saved_input(n, IN_P_F),
                              saved_input(n, IN_P_O)};
        usg_lstm_grads d = {g[IN_X], g[IN_H0], g[IN_C0], g[IN_W_IH], g[IN_W_HH], g[IN_B_IH],
                            g[IN_P_I], g[IN_P_F], g[IN_P_O]};
        const lstm_ctx *c = usg_node_ctx(n);
        usg_tensor *len = c->len_at < 0 ? NULL : usg_node_saved(n, c->len_at);
        s = usg_lstm_layer_backward(&d, g_out, g_hn, g_cn, x, saved_input(n, IN_H0),
                                    saved_input(n, IN_C0), &w, usg_node_saved(n, SAVED_H),
                                    usg_node_saved(n, SAVED_C), usg_node_saved(n, SAVED_GATES),
                                    len ? usg_tensor_data(len) : NULL);
    }
    if (s == USG_OK && usg_node_needs_grad(n, IN_B_HH)) {
        if (usg_node_needs_grad(n, IN_B_IH)) s = usg_clone(&g[IN_B_HH], g[IN_B_IH]);
        else { g[IN_B_HH] = g[IN_B_IH]; g[IN_B_IH] = NULL; }
    }
    usg_tensor_release(g_out);
    usg_tensor_release(g_hn);
    usg_tensor_release(g_cn);
    for (int i = 0; i < N_IN; i++) {
        if (s == USG_OK) grad_in[i] = g[i];
        else usg_tensor_release(g[i]);
    }
    return s;
}

static const usg_op lstm_op = {"lstm", lstm_backward, NULL};

/* The node's ctx and what it saves: the fixed tensors, then those of h0,
 * c0 and the peepholes that are present, then the lengths; ctx tells the
 * backward where each landed (usg_record skips the NULL entries). Inputs
 * are the caller's tensors (the graph's edges), saved their contiguous
 * forms (what the kernels read) and the forward's buffers. */
static int plan_saves(lstm_ctx *ctx, usg_tensor **saved, usg_tensor *const *outs, usg_tensor *c,
                      usg_tensor *gates, usg_tensor *const *cont, usg_tensor *len)
{
    usg_tensor *fixed[N_SAVED_FIXED] = {cont[IN_X], cont[IN_W_IH], cont[IN_W_HH], outs[0], c,
                                        gates};
    int next = 0;
    for (int k = 0; k < N_SAVED_FIXED; k++) saved[next++] = fixed[k];
    for (int i = 0; i < N_IN; i++) ctx->saved_at[i] = -1;
    const int optional[] = {IN_H0, IN_C0, IN_P_I, IN_P_F, IN_P_O};
    for (int k = 0; k < 5; k++) {
        int i = optional[k];
        if (!cont[i]) continue;
        ctx->saved_at[i] = next;
        saved[next++] = cont[i];
    }
    ctx->len_at = len ? next : -1;
    if (len) saved[next++] = len;
    return next;
}

usg_status usg_ad_lstm_layer(usg_tensor **out, usg_tensor **h_n, usg_tensor **c_n,
                             usg_tensor *x, usg_tensor *h0, usg_tensor *c0,
                             usg_tensor *const *w, int layer, usg_tensor *lengths)
{
    *out = *h_n = *c_n = NULL;
    usg_lstm_weights lw = {w[0], w[1], w[2], w[3], w[4], w[5], w[6]};
    if (!w[0] || !w[1])
        return usg_fail(USG_ARG, "lstm: weight_%s_l%d is missing", w[0] ? "hh" : "ih", layer);
    usg_status s = usg_lstm_check_layer(x, h0, c0, &lw, layer);
    if (s == USG_OK) s = usg_rec_check_lengths("lstm", lengths, x);
    if (s != USG_OK) return s;
    usg_tensor *len = NULL;
    if (lengths && (s = usg_contiguous(&len, lengths)) != USG_OK) return s;
    usg_tensor *in[N_IN] = {x, h0, c0, w[0], w[1], w[2], w[3], w[4], w[5], w[6]};
    usg_tensor *cont[N_IN] = {NULL};
    for (int i = 0; i < N_IN && s == USG_OK; i++)
        if (in[i]) s = usg_contiguous(&cont[i], in[i]);
    int64_t T = x->shape[0], B = x->shape[1], H = w[1]->shape[1];
    usg_tensor *h = NULL, *c = NULL, *gates = NULL, *hn = NULL, *cn = NULL;
    if (s == USG_OK) s = usg_tensor_empty(&h, x->dtype, 3, (int64_t[]){T, B, H});
    if (s == USG_OK) s = usg_tensor_empty(&c, x->dtype, 3, (int64_t[]){T, B, H});
    if (s == USG_OK) s = usg_tensor_empty(&gates, x->dtype, 3, (int64_t[]){T, B, 4 * H});
    if (s == USG_OK) s = usg_tensor_empty(&hn, x->dtype, 2, (int64_t[]){B, H});
    if (s == USG_OK) s = usg_tensor_empty(&cn, x->dtype, 2, (int64_t[]){B, H});
    if (s == USG_OK) {
        usg_lstm_weights cw = {cont[IN_W_IH], cont[IN_W_HH], cont[IN_B_IH], cont[IN_B_HH],
                               cont[IN_P_I], cont[IN_P_F], cont[IN_P_O]};
        s = usg_lstm_layer_forward(h, c, gates, cont[IN_X], cont[IN_H0], cont[IN_C0], &cw,
                                   len ? usg_tensor_data(len) : NULL);
    }
    if (s == USG_OK) {
        /* h_n = h^T and c_n = c^T, copies: separate outputs, as PyTorch's */
        size_t bytes = (size_t)(B * H) * usg_dtype_size(x->dtype), last = (size_t)(T - 1) * bytes;
        memcpy(usg_tensor_data(hn), (char *)usg_tensor_data(h) + last, bytes);
        memcpy(usg_tensor_data(cn), (char *)usg_tensor_data(c) + last, bytes);
        usg_tensor *outs[3] = {h, hn, cn}, *saved[N_SAVED_FIXED + 6];
        lstm_ctx ctx;
        int n_saved = plan_saves(&ctx, saved, outs, c, gates, cont, len);
        s = usg_record(&lstm_op, N_IN, in, 3, outs, n_saved, saved, &ctx, sizeof ctx);
        h = outs[0], hn = outs[1], cn = outs[2];      /* released and NULL on failure */
    }
    for (int i = 0; i < N_IN; i++) usg_tensor_release(cont[i]);
    usg_tensor_release(len);
    usg_tensor_release(c);                  /* the node keeps its own references */
    usg_tensor_release(gates);
    if (s != USG_OK) {
        usg_tensor_release(h);
        usg_tensor_release(hn);
        usg_tensor_release(cn);
        return s;
    }
    *out = h;
    *h_n = hn;
    *c_n = cn;
    return USG_OK;
}

/* ==== The stacked LSTM ================================================== */

/* one layer's checks, for usg_rec_check_weights (h0, c0 are usg_ad_rec_stack's) */
static usg_status check_layer(const usg_tensor *x, usg_tensor *const *w, int layer)
{
    usg_lstm_weights lw = {w[0], w[1], w[2], w[3], w[4], w[5], w[6]};
    return usg_lstm_check_layer(x, NULL, NULL, &lw, layer);
}

/* layer l of the stack: states (h, c) */
static usg_status stack_layer(void *ctx, int l, usg_tensor *x, usg_tensor *const *s0,
                              usg_tensor *lengths, usg_tensor **y, usg_tensor **finals)
{
    usg_tensor *const *w = (usg_tensor *const *)ctx + USG_LSTM_WEIGHTS * l;
    return usg_ad_lstm_layer(y, &finals[0], &finals[1], x, s0[0], s0[1], w, l, lengths);
}

usg_status usg_ad_lstm(usg_tensor **out, usg_tensor **h_n, usg_tensor **c_n, usg_tensor *x,
                       usg_tensor *h0, usg_tensor *c0, int layers, usg_tensor *const *weights,
                       double dropout, usg_rng *rng, usg_tensor *lengths)
{
    *out = *h_n = *c_n = NULL;
    usg_status s = usg_rec_check_weights("lstm", x, layers, USG_LSTM_WEIGHTS, 4, weights, check_layer);
    if (s != USG_OK) return s;
    usg_tensor *finals[2];
    s = usg_ad_rec_stack(out, finals, x, (usg_tensor *[]){h0, c0}, 2,
                         (const char *[]){"h0", "c0"}, "lstm", layers, weights[1]->shape[1],
                         lengths, stack_layer, (void *)weights, dropout, rng);
    *h_n = finals[0];
    *c_n = finals[1];
    return s;
}

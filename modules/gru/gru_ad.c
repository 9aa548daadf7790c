/*
 * gru_ad.c -- the GRU as autograd ops: one layer over the whole sequence
 * is ONE recorded node whose backward is the BPTT of gru.c; the stacked
 * GRU is usg_ad_rec_stack over it. No Lua here; gru_lua.c binds it.
 *
 * What a layer's node keeps for its backward: x, W_ih, W_hh, h0, its
 * output h (T, B, H), the activated gates (T, B, 3H) and W_hn h^{t-1} + b_hn
 * (T, B, H): the forward's own buffers, so the backward recomputes nothing.
 */
#include <string.h>

#include "gru.h"

/* inputs of the node */
enum { IN_X, IN_H0, IN_W_IH, IN_W_HH, IN_B_IH, IN_B_HH, N_IN };
/* saved tensors, then h0 and the lengths when there are */
enum { SAVED_X, SAVED_W_IH, SAVED_W_HH, SAVED_H, SAVED_GATES, SAVED_HN, SAVED_H0 };

typedef struct gru_ctx {
    bool has_h0;
    int len_at;              /* where the lengths were saved, or -1 */
} gru_ctx;

/* (out, h_n) = GRU(x, h0; W_ih, W_hh, b_ih, b_hh): gradients of the
 * outputs (either may be NULL) through gru.c's BPTT. */
static usg_status gru_backward(usg_node *n, usg_tensor *const *grad_out, usg_tensor **grad_in)
{
    const gru_ctx *c = usg_node_ctx(n);
    usg_tensor *x = usg_node_saved(n, SAVED_X);
    usg_tensor *g_out = NULL, *g_hn = NULL, *g[N_IN] = {NULL};
    usg_status s = usg_grad_for_kernel(&g_out, grad_out[0], x->dtype);
    if (s == USG_OK) s = usg_grad_for_kernel(&g_hn, grad_out[1], x->dtype);
    for (int i = 0; i < N_IN && s == USG_OK; i++) s = usg_node_zero_grad(&g[i], n, i);
    if (s == USG_OK) {
        usg_gru_grads d = {g[IN_X], g[IN_H0], g[IN_W_IH], g[IN_W_HH], g[IN_B_IH], g[IN_B_HH]};
        usg_tensor *h0 = c->has_h0 ? usg_node_saved(n, SAVED_H0) : NULL;
        usg_tensor *len = c->len_at < 0 ? NULL : usg_node_saved(n, c->len_at);
        s = usg_gru_layer_backward(&d, g_out, g_hn, x, h0, usg_node_saved(n, SAVED_W_IH),
                                   usg_node_saved(n, SAVED_W_HH), usg_node_saved(n, SAVED_H),
                                   usg_node_saved(n, SAVED_GATES), usg_node_saved(n, SAVED_HN),
                                   len ? usg_tensor_data(len) : NULL);
    }
    usg_tensor_release(g_out);
    usg_tensor_release(g_hn);
    for (int i = 0; i < N_IN; i++) {
        if (s == USG_OK) grad_in[i] = g[i];
        else usg_tensor_release(g[i]);
    }
    return s;
}

static const usg_op gru_op = {"gru", gru_backward, NULL};

usg_status usg_ad_gru_layer(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                            usg_tensor *w_ih, usg_tensor *w_hh, usg_tensor *b_ih,
                            usg_tensor *b_hh, int layer, usg_tensor *lengths)
{
    *out = *h_n = NULL;
    usg_status s = usg_gru_check_layer(x, h0, w_ih, w_hh, b_ih, b_hh, layer);
    if (s == USG_OK) s = usg_rec_check_lengths("gru", lengths, x);
    if (s != USG_OK) return s;
    usg_tensor *len = NULL;
    if (lengths && (s = usg_contiguous(&len, lengths)) != USG_OK) return s;
    usg_tensor *in[N_IN] = {x, h0, w_ih, w_hh, b_ih, b_hh}, *cont[N_IN] = {NULL};
    for (int i = 0; i < N_IN && s == USG_OK; i++)
        if (in[i]) s = usg_contiguous(&cont[i], in[i]);
    int64_t T = x->shape[0], B = x->shape[1], H = w_hh->shape[1];
    usg_tensor *h = NULL, *gates = NULL, *hn = NULL, *last = NULL;
    if (s == USG_OK) s = usg_tensor_empty(&h, x->dtype, 3, (int64_t[]){T, B, H});
    if (s == USG_OK) s = usg_tensor_empty(&gates, x->dtype, 3, (int64_t[]){T, B, 3 * H});
    if (s == USG_OK) s = usg_tensor_empty(&hn, x->dtype, 3, (int64_t[]){T, B, H});
    if (s == USG_OK) s = usg_tensor_empty(&last, x->dtype, 2, (int64_t[]){B, H});
    if (s == USG_OK)
        s = usg_gru_layer_forward(h, gates, hn, cont[IN_X], cont[IN_H0], cont[IN_W_IH],
                                  cont[IN_W_HH], cont[IN_B_IH], cont[IN_B_HH],
                                  len ? usg_tensor_data(len) : NULL);
    if (s == USG_OK) {
        /* h_n = h^T, a copy: a separate output, as PyTorch's */
        size_t bytes = (size_t)(B * H) * usg_dtype_size(x->dtype);
        memcpy(usg_tensor_data(last), (char *)usg_tensor_data(h) + (size_t)(T - 1) * bytes, bytes);
        /* inputs are the caller's tensors (the graph's edges), saved are
         * their contiguous forms and the forward's buffers */
        gru_ctx c = {h0 != NULL, len ? SAVED_H0 + (h0 != NULL) : -1};
        usg_tensor *saved[] = {cont[IN_X], cont[IN_W_IH], cont[IN_W_HH], h, gates, hn,
                               cont[IN_H0], len};
        usg_tensor *outs[2] = {h, last};      /* released and NULL on failure */
        s = usg_record(&gru_op, N_IN, in, 2, outs, 8, saved, &c, sizeof c);
        h = outs[0], last = outs[1];
    }
    for (int i = 0; i < N_IN; i++) usg_tensor_release(cont[i]);
    usg_tensor_release(len);
    usg_tensor_release(gates);              /* the node keeps its own references */
    usg_tensor_release(hn);
    if (s != USG_OK) {
        usg_tensor_release(h);
        usg_tensor_release(last);
        return s;
    }
    *out = h;
    *h_n = last;
    return USG_OK;
}

/* ==== The stacked GRU =================================================== */

/* one layer's checks, for usg_rec_check_weights (h0 is usg_ad_rec_stack's) */
static usg_status check_layer(const usg_tensor *x, usg_tensor *const *w, int layer)
{
    return usg_gru_check_layer(x, NULL, w[0], w[1], w[2], w[3], layer);
}

static usg_status stack_layer(void *ctx, int l, usg_tensor *x, usg_tensor *const *s0,
                              usg_tensor *lengths, usg_tensor **y, usg_tensor **finals)
{
    usg_tensor *const *w = (usg_tensor *const *)ctx + 4 * l;
    return usg_ad_gru_layer(y, &finals[0], x, s0[0], w[0], w[1], w[2], w[3], l, lengths);
}

usg_status usg_ad_gru(usg_tensor **out, usg_tensor **h_n, usg_tensor *x, usg_tensor *h0,
                      int layers, usg_tensor *const *weights, double dropout, usg_rng *rng,
                      usg_tensor *lengths)
{
    *out = *h_n = NULL;
    usg_status s = usg_rec_check_weights("gru", x, layers, 4, 3, weights, check_layer);
    if (s != USG_OK) return s;
    return usg_ad_rec_stack(out, h_n, x, &h0, 1, (const char *[]){"h0"}, "gru", layers,
                            weights[1]->shape[1], lengths, stack_layer, (void *)weights, dropout,
                            rng);
}

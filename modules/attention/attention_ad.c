/*
 * attention_ad.c -- the attention op with autograd: one recorded node per
 * call, whose backward is attention.c's. It keeps q, k, v, u (contiguous)
 * and the weights w; the mask is not differentiated (it is baked into w:
 * a masked key has w = 0).
 */
#include "attention.h"

enum { IN_Q, IN_K, IN_V, IN_U, N_IN };
enum { SAVED_Q, SAVED_K, SAVED_V, SAVED_W, SAVED_U };

typedef struct attn_ctx {
    double scale;
    bool has_u;
} attn_ctx;

static usg_status attn_backward(usg_node *n, usg_tensor *const *grad_out, usg_tensor **grad_in)
{
    const attn_ctx *c = usg_node_ctx(n);
    usg_tensor *q = usg_node_saved(n, SAVED_Q);
    usg_tensor *g_c = NULL, *g_w = NULL, *g[N_IN] = {NULL};
    usg_status s = usg_grad_for_kernel(&g_c, grad_out[0], q->dtype);
    if (s == USG_OK) s = usg_grad_for_kernel(&g_w, grad_out[1], q->dtype);
    for (int i = 0; i < N_IN && s == USG_OK; i++) s = usg_node_zero_grad(&g[i], n, i);
    if (s == USG_OK) {
        usg_attn_grads d = {g[IN_Q], g[IN_K], g[IN_V], g[IN_U]};
        s = usg_attn_backward(&d, g_c, g_w, q, usg_node_saved(n, SAVED_K),
                              usg_node_saved(n, SAVED_V), c->has_u ? usg_node_saved(n, SAVED_U) : NULL,
                              usg_node_saved(n, SAVED_W), c->scale);
    }
    usg_tensor_release(g_c);
    usg_tensor_release(g_w);
    for (int i = 0; i < N_IN; i++) {
        if (s == USG_OK) grad_in[i] = g[i];
        else usg_tensor_release(g[i]);
    }
    return s;
}

static const usg_op attn_op = {"attention", attn_backward, NULL};

usg_status usg_ad_attention(usg_tensor **c, usg_tensor **w, usg_tensor *q, usg_tensor *k,
                            usg_tensor *v, usg_tensor *u, usg_tensor *mask, double scale,
                            bool causal)
{
    *c = *w = NULL;
    usg_status s = usg_attn_check(q, k, v, u, mask, scale);
    if (s != USG_OK) return s;
    usg_tensor *in[N_IN] = {q, k, v, u}, *cont[N_IN] = {NULL}, *m = NULL;
    for (int i = 0; i < N_IN && s == USG_OK; i++)
        if (in[i]) s = usg_contiguous(&cont[i], in[i]);
    if (s == USG_OK && mask) s = usg_contiguous(&m, mask);
    int64_t B = q->shape[0], Lq = q->shape[1], Lk = k->shape[1], Dv = v->shape[2];
    if (s == USG_OK) s = usg_tensor_empty(c, q->dtype, 3, (int64_t[]){B, Lq, Dv});
    if (s == USG_OK) s = usg_tensor_empty(w, q->dtype, 3, (int64_t[]){B, Lq, Lk});
    if (s == USG_OK)
        s = usg_attn_forward(*c, *w, cont[IN_Q], cont[IN_K], cont[IN_V], cont[IN_U], m, scale,
                             causal);
    if (s == USG_OK) {
        /* inputs are the caller's tensors (the graph's edges), saved their
         * contiguous forms (u's is NULL when there is none) */
        attn_ctx ctx = {scale, u != NULL};
        usg_tensor *saved[] = {cont[IN_Q], cont[IN_K], cont[IN_V], *w, cont[IN_U]};
        usg_tensor *outs[2] = {*c, *w};       /* released and NULL on failure */
        s = usg_record(&attn_op, N_IN, in, 2, outs, 5, saved, &ctx, sizeof ctx);
        *c = outs[0], *w = outs[1];
    }
    for (int i = 0; i < N_IN; i++) usg_tensor_release(cont[i]);
    usg_tensor_release(m);
    if (s != USG_OK) {
        usg_tensor_release(*c);
        usg_tensor_release(*w);
        *c = *w = NULL;
    }
    return s;
}

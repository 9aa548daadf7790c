/*
 * attention.h -- the attention plugin's kernels (attention.c) and autograd
 * op (attention_ad.c): one fused op from scores to context,
 *
 *   e_bij = scale * score(q_bi, k_bj) + mask_bij     (-inf: not allowed)
 *   w_bij = exp(e_bij) / sum_j' exp(e_bij')          (softmax over the keys)
 *   c_bi  = sum_j w_bij v_bj
 *
 * with two scores: dot, q_bi . k_bj (Luong's dot; scaled dot-product with
 * scale = 1/sqrt(D); Luong's general and multi-head attention once q or k
 * went through a linear map), and additive (Bahdanau), sum_a u_a tanh(q_bia
 * + k_bja) where q and k are already projected (W_a q, U_a k + b). Shapes,
 * batch first: q (B, Lq, D), k (B, Lk, D), v (B, Lk, Dv), u (D); out c (B,
 * Lq, Dv) and w (B, Lq, Lk). A row whose keys are all masked gets w = 0 and
 * c = 0 (PyTorch gives NaN there).
 */
#ifndef USAGI_ATTENTION_H
#define USAGI_ATTENTION_H

#include "usagi/autograd.h"

/* Gradients the backward adds into (NULL: not wanted), shaped as q, k, v, u. */
typedef struct usg_attn_grads {
    usg_tensor *dq, *dk, *dv, *du;
} usg_attn_grads;

/* The shapes and dtypes of a call; mask is (Bm, Lqm, Lk) of q's dtype with
 * Bm dividing B (query batch b uses mask batch b / (B / Bm)) and Lqm 1 or
 * Lq. u NULL means the dot score. */
usg_status usg_attn_check(const usg_tensor *q, const usg_tensor *k, const usg_tensor *v,
                          const usg_tensor *u, const usg_tensor *mask, double scale);

/* c and w preallocated, every tensor contiguous (checked by the caller). */
usg_status usg_attn_forward(usg_tensor *c, usg_tensor *w, const usg_tensor *q,
                            const usg_tensor *k, const usg_tensor *v, const usg_tensor *u,
                            const usg_tensor *mask, double scale, bool causal);

/* From the gradients of c and w (either may be NULL) and the forward's w. */
usg_status usg_attn_backward(const usg_attn_grads *d, const usg_tensor *g_c, const usg_tensor *g_w,
                             const usg_tensor *q, const usg_tensor *k, const usg_tensor *v,
                             const usg_tensor *u, const usg_tensor *w, double scale);

/* The op with autograd: *c, *w new tensors; records one node. */
usg_status usg_ad_attention(usg_tensor **c, usg_tensor **w, usg_tensor *q, usg_tensor *k,
                            usg_tensor *v, usg_tensor *u, usg_tensor *mask, double scale,
                            bool causal);

#endif

/*
 * usagi/ops.h -- the math of libusagi: elementwise ops with broadcasting,
 * reductions, linear algebra over cblas, and the primitives of neural nets.
 *
 * Conventions (see core.h for ownership and errors):
 * - outputs first, then inputs, then parameters;
 * - results are new contiguous tensors; in-place variants end in `_`;
 * - dims are 0-based and may be negative (-1 = last); USG_ALL_DIMS reduces
 *   over every dim to a 0-dim tensor;
 * - index tensors are i32. Functions that read or write indices take `base`
 *   (0 from C, 1 from Lua) so that the Lua binding never copies to convert;
 * - inputs may be any view; a kernel that needs contiguous memory makes it.
 */
#ifndef USAGI_OPS_H
#define USAGI_OPS_H

#include "usagi/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Elementwise ======================================================= */

typedef enum usg_binop {
    USG_ADD, USG_SUB, USG_MUL, USG_DIV, USG_POW, USG_MAXIMUM, USG_MINIMUM,
    USG_EQ, USG_NE, USG_LT, USG_LE, USG_GT, USG_GE   /* comparisons give i32 0/1 */
} usg_binop;

typedef enum usg_unop {
    USG_NEG, USG_ABS, USG_EXP, USG_LOG, USG_SQRT, USG_TANH, USG_SIGMOID,
    USG_RELU, USG_SIGN, USG_FLOOR, USG_CEIL, USG_ROUND, USG_LOG1P, USG_SIN, USG_COS,
    USG_SQUARE, USG_RECIPROCAL
} usg_unop;

USG_API const char *usg_binop_name(usg_binop op);
USG_API const char *usg_unop_name(usg_unop op);

/* out = a op b with NumPy broadcasting, computed in usg_dtype_promote(a, b)
 * (true division of two i32 tensors gives f32, as in PyTorch). */
USG_API usg_status usg_binary(usg_tensor **out, usg_binop op, const usg_tensor *a,
                              const usg_tensor *b);
/* out = a op s (or s op a when `scalar_first`); an i32 tensor with a
 * non-integral scalar computes in f32. */
USG_API usg_status usg_binary_scalar(usg_tensor **out, usg_binop op, const usg_tensor *a,
                                     double s, bool scalar_first);
/* a = a op b in place; b must broadcast to a's shape; keeps a's dtype. */
USG_API usg_status usg_binary_(usg_tensor *a, usg_binop op, const usg_tensor *b);
USG_API usg_status usg_binary_scalar_(usg_tensor *a, usg_binop op, double s);
/* Unary ops; i32 input gives f32 for the transcendental ones. */
USG_API usg_status usg_unary(usg_tensor **out, usg_unop op, const usg_tensor *a);
USG_API usg_status usg_unary_(usg_tensor *a, usg_unop op);
/* Clamp to [lo, hi]; NAN for a missing bound. */
USG_API usg_status usg_clamp(usg_tensor **out, const usg_tensor *a, double lo, double hi);
USG_API usg_status usg_clamp_(usg_tensor *a, double lo, double hi);
/* out = cond != 0 ? a : b, all three broadcast together. */
USG_API usg_status usg_where(usg_tensor **out, const usg_tensor *cond, const usg_tensor *a,
                             const usg_tensor *b);
/* max |a - b| <= atol + rtol * |b| elementwise (broadcasting); NaN != NaN. */
USG_API usg_status usg_allclose(bool *result, const usg_tensor *a, const usg_tensor *b,
                                double rtol, double atol);

/* ==== Reductions ======================================================== */
/* All take dim (or USG_ALL_DIMS) and keepdim. Float inputs accumulate in
 * double; i32 sums stay i32, i32 means give f32. */

USG_API usg_status usg_sum(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim);
USG_API usg_status usg_mean(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim);
USG_API usg_status usg_prod(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim);
/* values and/or indices (either may be NULL); indices are i32 in `base`,
 * the first one on ties. With USG_ALL_DIMS the index is into the flat tensor. */
USG_API usg_status usg_max(usg_tensor **values, usg_tensor **indices, const usg_tensor *a,
                           int dim, bool keepdim, int base);
USG_API usg_status usg_min(usg_tensor **values, usg_tensor **indices, const usg_tensor *a,
                           int dim, bool keepdim, int base);
/* Variance with `correction` (1 = unbiased, as PyTorch's default; 0 = biased). */
USG_API usg_status usg_var(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim,
                           int correction);
USG_API usg_status usg_std(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim,
                           int correction);
/* log(sum(exp(a))) computed stably (max subtracted). */
USG_API usg_status usg_logsumexp(usg_tensor **out, const usg_tensor *a, int dim, bool keepdim);
/* p-norm, p > 0 (p = INFINITY: max |a|). */
USG_API usg_status usg_norm(usg_tensor **out, const usg_tensor *a, double p, int dim,
                            bool keepdim);

/* ==== Linear algebra (cblas) ============================================ */
/* f32 and f64 only. A transposed view is passed to gemm as a flag with its
 * leading dimension, never copied; other layouts are made contiguous. */

/* (n, k) x (k, m) -> (n, m) */
USG_API usg_status usg_mm(usg_tensor **out, const usg_tensor *a, const usg_tensor *b);
/* (b, n, k) x (b, k, m) -> (b, n, m) */
USG_API usg_status usg_bmm(usg_tensor **out, const usg_tensor *a, const usg_tensor *b);
/* NumPy matmul: 1-D operands are promoted and the added dim removed, batch
 * dims broadcast. */
USG_API usg_status usg_matmul(usg_tensor **out, const usg_tensor *a, const usg_tensor *b);
/* out = beta * c + alpha * (a x b), c broadcast to (n, m). */
USG_API usg_status usg_addmm(usg_tensor **out, const usg_tensor *c, const usg_tensor *a,
                             const usg_tensor *b, double beta, double alpha);
/* The kernel face for plugins: c = alpha * op(a) op(b) + beta * c, in place,
 * all 2-D, c contiguous, op(x) = x^T when the flag is set. */
USG_API usg_status usg_gemm(usg_tensor *c, const usg_tensor *a, bool trans_a,
                            const usg_tensor *b, bool trans_b, double alpha, double beta);

/* ==== Neural-net primitives ============================================= */

typedef enum usg_reduction { USG_REDUCE_MEAN, USG_REDUCE_SUM, USG_REDUCE_NONE } usg_reduction;
#define USG_NO_IGNORE INT32_MIN

/* y = x w^T + b; x (..., in), w (out, in), b (out) or NULL -> (..., out) */
USG_API usg_status usg_linear(usg_tensor **out, const usg_tensor *x, const usg_tensor *w,
                              const usg_tensor *b);
USG_API usg_status usg_softmax(usg_tensor **out, const usg_tensor *x, int dim);
USG_API usg_status usg_log_softmax(usg_tensor **out, const usg_tensor *x, int dim);
/* Negative log-likelihood of log-probabilities logp (N, C) for targets (N)
 * (i32 in `base`). Targets equal to ignore_index, or where mask (N, any
 * dtype, may be NULL) is 0, count neither in the sum nor in the mean's
 * denominator. REDUCE_NONE gives (N) with zeros there. A target outside
 * [base, base + C) other than ignore_index is USG_ARG. */
USG_API usg_status usg_nll_loss(usg_tensor **out, const usg_tensor *logp,
                                const usg_tensor *target, const usg_tensor *mask,
                                int32_t ignore_index, usg_reduction red, int base);
/* log_softmax over dim 1 followed by nll_loss, fused and stable. */
USG_API usg_status usg_cross_entropy(usg_tensor **out, const usg_tensor *logits,
                                     const usg_tensor *target, const usg_tensor *mask,
                                     int32_t ignore_index, usg_reduction red, int base);
USG_API usg_status usg_mse_loss(usg_tensor **out, const usg_tensor *a, const usg_tensor *b,
                                usg_reduction red);
/* p in [0, 1] (clamped log as PyTorch: log >= -100), y targets in [0, 1]. */
USG_API usg_status usg_bce_loss(usg_tensor **out, const usg_tensor *p, const usg_tensor *y,
                                usg_reduction red);
/* Stable: max(x,0) - x*y + log(1 + exp(-|x|)). */
USG_API usg_status usg_bce_with_logits(usg_tensor **out, const usg_tensor *x,
                                       const usg_tensor *y, usg_reduction red);
/* weight (V, D), ids i32 of any shape -> (..., D); an id out of range is USG_ARG. */
USG_API usg_status usg_embedding(usg_tensor **out, const usg_tensor *weight,
                                 const usg_tensor *ids, int base);
/* out[i][j] = x[i][index[i][j]] along dim (PyTorch gather). */
USG_API usg_status usg_gather(usg_tensor **out, const usg_tensor *x, int dim,
                              const usg_tensor *index, int base);
/* Slices of x along dim at the positions of the 1-D index. */
USG_API usg_status usg_index_select(usg_tensor **out, const usg_tensor *x, int dim,
                                    const usg_tensor *index, int base);
/* dst[index[i][j]][j] += src[i][j] along dim (PyTorch scatter_add_). */
USG_API usg_status usg_scatter_add_(usg_tensor *dst, int dim, const usg_tensor *index,
                                    const usg_tensor *src, int base);
/* *out = a copy of dst with src added at index along dim (PyTorch scatter_add). */
USG_API usg_status usg_scatter_add(usg_tensor **out, const usg_tensor *dst, int dim,
                                   const usg_tensor *index, const usg_tensor *src, int base);
USG_API usg_status usg_cat(usg_tensor **out, int n, usg_tensor *const *ts, int dim);
USG_API usg_status usg_stack(usg_tensor **out, int n, usg_tensor *const *ts, int dim);
/* Views of x of `size` along dim (the last may be smaller). *outs is an
 * array of *n tensors allocated with usg_alloc, released by the caller
 * (each tensor, then usg_free the array). */
USG_API usg_status usg_split(usg_tensor ***outs, int *n, usg_tensor *x, int64_t size, int dim);
/* `chunks` nearly equal views (as torch.chunk). */
USG_API usg_status usg_chunk(usg_tensor ***outs, int *n, usg_tensor *x, int chunks, int dim);
/* ids (...) in `base` -> (..., classes) f32 of 0/1. */
USG_API usg_status usg_one_hot(usg_tensor **out, const usg_tensor *ids, int64_t classes,
                               int base);

/* ==== Sequences and decoding ============================================ */

/* Each sequence of x (T, B, n), any dtype, reversed within its own length:
 * out[t, b] = x[len_b - 1 - t, b] for t < len_b, and out[t, b] = x[t, b]
 * past it (the padding stays put). lengths is NULL (every sequence has all
 * T steps) or an i32 (B) of values in 1..T. It is its own inverse. Errors
 * name fn (the caller's name for it; NULL gives "reverse_padded"). */
USG_API usg_status usg_reverse_padded(usg_tensor **out, const usg_tensor *x,
                                      const usg_tensor *lengths, const char *fn);
/* The k largest entries of each row of x (N, C), f32 or f64, best first:
 * values (N, k) in x's dtype and their column indices (N, k) i32 in
 * `base`. NaN ranks below every number; ties go to the lower index.
 * 1 <= k <= min(C, 4096). O(N C k): meant for beam widths, not sorting. */
USG_API usg_status usg_topk(usg_tensor **values, usg_tensor **indices, const usg_tensor *x,
                            int64_t k, int base);

/* lengths is NULL, or an i32 (B) of values in 1..T for the sequences x
 * (T, B, ...); errors name fn. */
USG_API usg_status usg_check_lengths(const char *fn, const usg_tensor *lengths, const usg_tensor *x);

#ifdef __cplusplus
}
#endif
#endif

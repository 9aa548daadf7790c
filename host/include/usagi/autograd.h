/*
 * usagi/autograd.h -- reverse-mode automatic differentiation on a tape, with
 * PyTorch's semantics, and the C API through which an op (the core's own
 * or a plugin's) records itself.
 *
 * A tensor made by a recorded op points to its node (grad_fn); the node
 * points to the nodes of its inputs (edges) or, for inputs that are leaves
 * requiring grad, to the leaf itself, whose .grad it accumulates into.
 * Tensors a backward needs are saved as detached aliases (a new header on
 * the same storage, with no grad_fn), so the graph holds no cycles and is
 * freed by reference counting when the last tensor of it goes away.
 *
 * Writing an op with a backward (see elementwise ops in ad_*.c for models):
 *
 *   static usg_status mul_backward(usg_node *n, usg_tensor *const *gout,
 *                                  usg_tensor **gin)
 *   {   // y = a * b:  dL/da = g * b,  dL/db = g * a
 *       if (usg_node_needs_grad(n, 0)) usg_binary(&gin[0], USG_MUL, gout[0], usg_node_saved(n, 1));
 *       ...
 *   }
 *   static const usg_op mul_op = {"mul", mul_backward, NULL};
 *
 *   usg_status s = usg_binary(out, USG_MUL, a, b);         // the forward
 *   if (s == USG_OK)                                       // then one call records it
 *       s = usg_record(&mul_op, 2, (usg_tensor *[]){a, b}, 1, out,
 *                      2, (usg_tensor *[]){a, b}, NULL, 0);
 *
 * usg_record makes no node when no input needs a gradient (grad mode off,
 * or no input requires grad) or when an output is not a float tensor; on
 * failure it releases the outputs and sets them to NULL, so the caller
 * returns its status as it is. An op with a context for its backward
 * passes a struct and its size (the node keeps a copy, made only when a
 * node is made), or a usg_alloc'd pointer and size 0 (the node takes it,
 * and it is freed at once when no node is made). usg_node_begin, _save and
 * _finish are the steps usg_record is made of, for a recording that does
 * not fit it.
 *
 * Backward functions receive one gradient per output (NULL for an output
 * no gradient reached: treat as zeros) and set gin[i] to a NEW tensor of
 * input i's shape for each input that needs it; they may leave gin[i] NULL
 * when the gradient is zero. The engine sums gradients that reach a tensor
 * by several paths, and reduces nothing: a backward whose forward
 * broadcast must sum back to the input's shape (usg_sum_to).
 */
#ifndef USAGI_AUTOGRAD_H
#define USAGI_AUTOGRAD_H

#include "usagi/core.h"
#include "usagi/ops.h"
#include "usagi/random.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USG_NODE_MAX_INPUTS 16
#define USG_NODE_MAX_OUTPUTS 8
#define USG_NODE_MAX_SAVED 16

typedef struct usg_node usg_node;

typedef struct usg_op {
    const char *name;
    usg_status (*backward)(usg_node *n, usg_tensor *const *grad_out, usg_tensor **grad_in);
    void (*free_ctx)(void *ctx);       /* may be NULL: ctx is then freed with usg_free */
} usg_op;

/* ---- grad mode (per thread) ---- */

USG_API bool usg_grad_enabled(void);
/* Returns the previous mode, so callers restore it. */
USG_API bool usg_set_grad_enabled(bool on);

/* ---- recording an op ---- */

/* Whether any input requires grad while grad mode is on. */
USG_API bool usg_grad_needed(int n, usg_tensor *const *inputs);
/* Start a node for an op whose forward has run; *node is NULL (and the
 * status OK) when no input needs a gradient -- then record nothing. ctx
 * (may be NULL) passes to the node, which frees it with op->free_ctx. */
USG_API usg_status usg_node_begin(usg_node **node, const usg_op *op, int n_in,
                                  usg_tensor *const *inputs, void *ctx);
/* Record op for a forward that has made out[0..n_out) from in[0..n_in)
 * (NULL inputs are not differentiated): when grad mode is on, an input
 * requires grad and every output is a float tensor, a node with a copy of
 * ctx (ctx_size bytes; ctx_size 0: ctx itself, a usg_alloc'd pointer or
 * NULL, which the node takes) that saves save[0..n_save) (NULL entries are
 * skipped: a later tensor takes the next index of usg_node_saved) and
 * becomes the outputs' grad_fn. When no node is made, nothing is allocated
 * and a ctx handed over (ctx_size 0) is freed (op->free_ctx, else
 * usg_free). On failure every out[i] is released and set to NULL. */
USG_API usg_status usg_record(const usg_op *op, int n_in, usg_tensor *const *in, int n_out,
                              usg_tensor **out, int n_save, usg_tensor *const *save,
                              void *ctx, size_t ctx_size);
/* Save a tensor for the backward (a detached alias; its storage version is
 * checked when the backward runs). Index = order of the calls. */
USG_API usg_status usg_node_save(usg_node *n, usg_tensor *t);
/* Attach the node to the outputs (they become non-leaves requiring grad),
 * or, when status is not OK, drop the node. Returns status (or NOMEM). */
USG_API usg_status usg_node_finish(usg_node *n, int n_out, usg_tensor *const *outputs,
                                   usg_status status);

/* ---- inside a backward ---- */

USG_API void *usg_node_ctx(const usg_node *n);
USG_API usg_tensor *usg_node_saved(const usg_node *n, int i);
USG_API bool usg_node_needs_grad(const usg_node *n, int input);
USG_API const char *usg_node_name(const usg_node *n);
/* Shape of input i as it was at the forward. */
USG_API const int64_t *usg_node_input_shape(const usg_node *n, int i, int *ndim);
USG_API usg_dtype usg_node_input_dtype(const usg_node *n, int i);
/* *g <- zeros of input i's forward shape and dtype, for a backward that
 * adds into its gradients; NULL (and OK) when input i needs no gradient. */
USG_API usg_status usg_node_zero_grad(usg_tensor **g, const usg_node *n, int i);
/* *out <- g as a kernel reads it: contiguous and of dtype dt (a new
 * reference); NULL stays NULL (no gradient reached that output). */
USG_API usg_status usg_grad_for_kernel(usg_tensor **out, usg_tensor *g, usg_dtype dt);
/* g summed over broadcast dims down to `shape` (a new tensor). */
USG_API usg_status usg_sum_to(usg_tensor **out, const usg_tensor *g, int ndim, const int64_t *shape);

/* ---- running it ---- */

/* Back-propagate from root. grad: dL/droot, or NULL for a one-element root
 * (taken as 1). Leaves' .grad accumulate. Unless retain_graph, the saved
 * tensors are freed as the walk passes, and a second backward through the
 * same nodes is an error. */
USG_API usg_status usg_backward(usg_tensor *root, usg_tensor *grad, bool retain_graph);
/* A function called during usg_backward when a leaf's gradient for this
 * backward is complete: after the last node that feeds it has run (whether
 * or not it gave a gradient), with leaf->grad as it stands (possibly NULL).
 * Data-parallel training (usagi/dist.h) starts the leaf's allreduce there,
 * while the rest of the backward runs. One hook per process; NULL removes
 * it. The hook must not run autograd itself. */
typedef void (*usg_grad_ready_fn)(usg_tensor *leaf, void *ud);
USG_API void usg_set_grad_ready_hook(usg_grad_ready_fn fn, void *ud);
USG_API void usg_node_retain(usg_node *n);
USG_API void usg_node_release(usg_node *n);
/* A tensor sharing t's data with no autograd history (t:detach()). */
USG_API usg_status usg_detach(usg_tensor **out, usg_tensor *t);
/* Refuse an in-place write into t while it is part of a graph. fn names
 * the op for the message. */
USG_API usg_status usg_check_inplace(const usg_tensor *t, const char *fn);

/* ==== The differentiable forms of the core's ops =======================
 * Same arguments and results as the functions of ops.h / core.h / random.h
 * of the same name without `ad_`; they run the forward and, when an input
 * requires grad in grad mode, record a node whose backward is written out
 * beside it (host/core/ad_*.c). The Lua binding calls these. */

/* elementwise, blas, views (ad_math.c) */
USG_API usg_status usg_ad_binary(usg_tensor **out, usg_binop op, usg_tensor *a, usg_tensor *b);
USG_API usg_status usg_ad_binary_scalar(usg_tensor **out, usg_binop op, usg_tensor *a,
                                        double s, bool scalar_first);
USG_API usg_status usg_ad_unary(usg_tensor **out, usg_unop op, usg_tensor *a);
USG_API usg_status usg_ad_clamp(usg_tensor **out, usg_tensor *a, double lo, double hi);
USG_API usg_status usg_ad_where(usg_tensor **out, usg_tensor *cond, usg_tensor *a, usg_tensor *b);
USG_API usg_status usg_ad_mm(usg_tensor **out, usg_tensor *a, usg_tensor *b);
USG_API usg_status usg_ad_bmm(usg_tensor **out, usg_tensor *a, usg_tensor *b);
USG_API usg_status usg_ad_matmul(usg_tensor **out, usg_tensor *a, usg_tensor *b);
USG_API usg_status usg_ad_addmm(usg_tensor **out, usg_tensor *c, usg_tensor *a, usg_tensor *b,
                                double beta, double alpha);
USG_API usg_status usg_ad_view(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape);
USG_API usg_status usg_ad_reshape(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape);
USG_API usg_status usg_ad_transpose(usg_tensor **out, usg_tensor *t, int d0, int d1);
USG_API usg_status usg_ad_permute(usg_tensor **out, usg_tensor *t, const int *perm);
USG_API usg_status usg_ad_narrow(usg_tensor **out, usg_tensor *t, int dim, int64_t start, int64_t len);
USG_API usg_status usg_ad_select(usg_tensor **out, usg_tensor *t, int dim, int64_t i);
USG_API usg_status usg_ad_unsqueeze(usg_tensor **out, usg_tensor *t, int dim);
USG_API usg_status usg_ad_squeeze(usg_tensor **out, usg_tensor *t, int dim);
USG_API usg_status usg_ad_expand(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape);
USG_API usg_status usg_ad_contiguous(usg_tensor **out, usg_tensor *t);
USG_API usg_status usg_ad_clone(usg_tensor **out, usg_tensor *t);
USG_API usg_status usg_ad_to_dtype(usg_tensor **out, usg_tensor *t, usg_dtype dt);

/* reductions, nn, indexing, dropout (ad_nn.c) */
USG_API usg_status usg_ad_sum(usg_tensor **out, usg_tensor *a, int dim, bool keepdim);
USG_API usg_status usg_ad_mean(usg_tensor **out, usg_tensor *a, int dim, bool keepdim);
USG_API usg_status usg_ad_prod(usg_tensor **out, usg_tensor *a, int dim, bool keepdim);
USG_API usg_status usg_ad_max(usg_tensor **values, usg_tensor **indices, usg_tensor *a, int dim,
                              bool keepdim, int base);
USG_API usg_status usg_ad_min(usg_tensor **values, usg_tensor **indices, usg_tensor *a, int dim,
                              bool keepdim, int base);
USG_API usg_status usg_ad_var(usg_tensor **out, usg_tensor *a, int dim, bool keepdim, int correction);
USG_API usg_status usg_ad_std(usg_tensor **out, usg_tensor *a, int dim, bool keepdim, int correction);
USG_API usg_status usg_ad_logsumexp(usg_tensor **out, usg_tensor *a, int dim, bool keepdim);
USG_API usg_status usg_ad_norm(usg_tensor **out, usg_tensor *a, double p, int dim, bool keepdim);
USG_API usg_status usg_ad_linear(usg_tensor **out, usg_tensor *x, usg_tensor *w, usg_tensor *b);
USG_API usg_status usg_ad_softmax(usg_tensor **out, usg_tensor *x, int dim);
USG_API usg_status usg_ad_log_softmax(usg_tensor **out, usg_tensor *x, int dim);
USG_API usg_status usg_ad_nll_loss(usg_tensor **out, usg_tensor *logp, usg_tensor *target,
                                   usg_tensor *mask, int32_t ignore_index, usg_reduction red, int base);
USG_API usg_status usg_ad_cross_entropy(usg_tensor **out, usg_tensor *logits, usg_tensor *target,
                                        usg_tensor *mask, int32_t ignore_index, usg_reduction red,
                                        int base);
USG_API usg_status usg_ad_mse_loss(usg_tensor **out, usg_tensor *a, usg_tensor *b, usg_reduction red);
USG_API usg_status usg_ad_bce_loss(usg_tensor **out, usg_tensor *p, usg_tensor *y, usg_reduction red);
USG_API usg_status usg_ad_bce_with_logits(usg_tensor **out, usg_tensor *x, usg_tensor *y,
                                          usg_reduction red);
USG_API usg_status usg_ad_embedding(usg_tensor **out, usg_tensor *weight, usg_tensor *ids, int base);
USG_API usg_status usg_ad_gather(usg_tensor **out, usg_tensor *x, int dim, usg_tensor *index, int base);
USG_API usg_status usg_ad_index_select(usg_tensor **out, usg_tensor *x, int dim, usg_tensor *index,
                                       int base);
USG_API usg_status usg_ad_cat(usg_tensor **out, int n, usg_tensor *const *ts, int dim);
USG_API usg_status usg_ad_stack(usg_tensor **out, int n, usg_tensor *const *ts, int dim);
USG_API usg_status usg_ad_split(usg_tensor ***outs, int *n, usg_tensor *x, int64_t size, int dim);
USG_API usg_status usg_ad_chunk(usg_tensor ***outs, int *n, usg_tensor *x, int chunks, int dim);
USG_API usg_status usg_ad_dropout(usg_tensor **out, usg_rng *r, usg_tensor *x, double p);
/* usg_reverse_padded, recorded: the gradient is the same reversal of the
 * output's gradient. */
USG_API usg_status usg_ad_reverse_padded(usg_tensor **out, usg_tensor *x, usg_tensor *lengths,
                                         const char *fn);

#ifdef __cplusplus
}
#endif
#endif

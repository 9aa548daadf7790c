/*
 * usagi/optim.h -- the update loops of the optimizers (SGD, Adam / AdamW,
 * Adagrad, RMSprop) and gradient clipping by global norm, over one
 * parameter's contiguous data at a time.
 *
 * These are kernels, not optimizers: the caller (scripts/usagi/optim.lua)
 * owns the per-parameter state tensors and step counts, allocates the state
 * with the parameter's shape and dtype, and calls one step function per
 * parameter that has a gradient. Each step writes the parameter and its
 * state in place and allocates nothing except, when the gradient is a
 * non-contiguous view, a contiguous copy of it.
 *
 * The equations are PyTorch 1.13's (torch.optim, foreach=False), written
 * beside each loop in host/core/optim.c; element arithmetic is done in
 * double and rounded once when stored, so f32 results can differ from
 * PyTorch's f32 in the last bit.
 *
 * Parameters must be contiguous f32 or f64 tensors; gradients and state
 * tensors must have the parameter's shape and dtype. A failure (USG_TYPE,
 * USG_SHAPE, USG_ARG, USG_NOMEM) leaves parameter and state untouched.
 * Writing bumps the parameter storage's version, so a backward that saved
 * the old values refuses to run.
 */
#ifndef USAGI_OPTIM_H
#define USAGI_OPTIM_H

#include "usagi/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usg_sgd_opts {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
} usg_sgd_opts;

typedef struct usg_adam_opts {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad;
    bool decoupled;      /* AdamW: p *= 1 - lr wd instead of g += wd p */
} usg_adam_opts;

typedef struct usg_adagrad_opts {
    double lr, lr_decay, weight_decay, eps;
} usg_adagrad_opts;

typedef struct usg_rmsprop_opts {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered;
} usg_rmsprop_opts;

/* step: this parameter's step count including the current one (1 on the
 * first call). SGD: buf is the momentum buffer (NULL when momentum == 0);
 * on step 1 it is set to the gradient, as PyTorch's clone. */
USG_API usg_status usg_sgd_step(usg_tensor *param, usg_tensor *grad, usg_tensor *buf,
                                int64_t step, const usg_sgd_opts *o);
/* exp_avg, exp_avg_sq: first and second moments (zeros before step 1);
 * max_exp_avg_sq: the running maximum, only with amsgrad (else NULL). */
USG_API usg_status usg_adam_step(usg_tensor *param, usg_tensor *grad, usg_tensor *exp_avg,
                                 usg_tensor *exp_avg_sq, usg_tensor *max_exp_avg_sq,
                                 int64_t step, const usg_adam_opts *o);
/* sum: the accumulated squared gradients (initial_accumulator_value before
 * step 1). */
USG_API usg_status usg_adagrad_step(usg_tensor *param, usg_tensor *grad, usg_tensor *sum,
                                    int64_t step, const usg_adagrad_opts *o);
/* square_avg always; grad_avg only when centered; buf only when momentum > 0
 * (all zeros before step 1). */
USG_API usg_status usg_rmsprop_step(usg_tensor *param, usg_tensor *grad, usg_tensor *square_avg,
                                    usg_tensor *grad_avg, usg_tensor *buf,
                                    const usg_rmsprop_opts *o);

/* The norm of all n tensors taken together as one vector,
 * (sum_k ||g_k||_p^p)^(1/p); p = INFINITY gives max |g|. p > 0. */
USG_API usg_status usg_grad_norm(double *total, int n, usg_tensor *const *grads, double p);
/* torch.nn.utils.clip_grad_norm_: total = usg_grad_norm(grads, p); when
 * c = max_norm / (total + 1e-6) < 1, every gradient is scaled by c in place.
 * *total is the norm before clipping. Gradients may be views (not expanded
 * ones); neither function allocates, so a failure changes nothing. */
USG_API usg_status usg_clip_grad_norm(double *total, int n, usg_tensor *const *grads,
                                      double max_norm, double p);

#ifdef __cplusplus
}
#endif
#endif

/*
 * hello.c -- the smallest usagi plugin with a differentiable op: its
 * backward is here (its kernel is the core's a * x), the Lua binding and
 * the recorded entry point are generated from the op table (ops.lua), and
 * the Lua face (hello.lua) builds on both.
 * modules/README.md walks through it.
 *
 *   y = a x          dL/dx = a dL/dy
 */
#include "usagi/autograd.h"
#include "hello.h"

static usg_status scale_backward(usg_node *n, usg_tensor *const *grad_out, usg_tensor **grad_in)
{
    const double *a = usg_node_ctx(n);
    if (!usg_node_needs_grad(n, 0)) return USG_OK;
    return usg_binary_scalar(&grad_in[0], USG_MUL, grad_out[0], *a, false);
}

/* hello_scale: the kernel recorded with the backward above, as the
 * record in ops.lua declares it (usagi_add_plugin runs gen_ad.lua on it). */
#include "hello_ad.inc"

/*
 * hello.c -- the smallest usagi plugin with a differentiable op: the
 * kernel and its backward are here, the Lua binding is generated from the
 * op table (ops.lua), and the Lua face (hello.lua) builds on both.
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

static const usg_op scale_op = {"hello.scale", scale_backward, NULL};

usg_status hello_scale(usg_tensor **y, usg_tensor *x, double a)
{
    usg_status s = usg_binary_scalar(y, USG_MUL, x, a, false);
    if (s == USG_OK)              /* a node only when x requires grad; keeps a copy of a */
        s = usg_record(&scale_op, 1, &x, 1, y, 0, NULL, &a, sizeof a);
    return s;
}

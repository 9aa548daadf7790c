/*
 * ad_view.c -- the differentiable forms of the views and copies: view,
 * reshape, transpose, permute, narrow, select, unsqueeze, squeeze, expand,
 * contiguous, clone, to_dtype. The elementwise ops and products are in
 * ad_math.c.
 *
 * A view's backward moves the gradient back to the input's geometry and
 * needs nothing saved: the inverse reshape, transpose or permutation; a
 * zero tensor of the input's shape with g copied into the narrowed or
 * selected part; a sum over what expand broadcast. The copies pass g on
 * (converted back to the input's dtype for to_dtype). contiguous and
 * to_dtype hand back the input itself when there is nothing to do, as
 * PyTorch does, and then record nothing: the result IS the input.
 */
#include <string.h>

#include "internal.h"

/* ==== Helpers ========================================================== */

/* A backward may return a view of its g only when nothing else holds g's
 * memory (g is released right after the backward). Otherwise the view is
 * copied: the engine may let a leaf adopt a gradient as its .grad and add
 * into it in place later, so two gradients must never share a buffer (as
 * they would after p:view(n) + q:view(n), whose g reaches both views). */
static bool is_private(const usg_tensor *g)
{
    return g->refcount == 1 && g->storage->refcount == 1;
}

/* gin = v (made from g), or a copy of v when it shares memory with a g
 * that was not private; consumes v. */
static usg_status own_view(usg_tensor **gin, usg_tensor *v, const usg_tensor *g, bool private_g)
{
    if (private_g || v->storage != g->storage) { *gin = v; return USG_OK; }
    usg_status s = usg_clone(gin, v);
    usg_tensor_release(v);
    return s;
}

/* ==== Reshaping views =================================================== */

/* y = x seen with another shape (view, reshape, unsqueeze, squeeze):
 * dL/dx = g reshaped to x's shape (a view of g when its layout allows). */
static usg_status reshape_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    bool priv = is_private(gout[0]);
    usg_tensor *v = NULL;
    usg_status s = usg_reshape(&v, gout[0], nd, shape);
    return s == USG_OK ? own_view(&gin[0], v, gout[0], priv) : s;
}

/* ==== Transpose and permute ============================================= */

typedef struct transpose_ctx { int d0, d1; } transpose_ctx;

/* y = x with dims d0, d1 swapped: dL/dx = g with them swapped back */
static usg_status transpose_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const transpose_ctx *c = usg_node_ctx(n);
    bool priv = is_private(gout[0]);
    usg_tensor *v = NULL;
    usg_status s = usg_transpose(&v, gout[0], c->d0, c->d1);
    return s == USG_OK ? own_view(&gin[0], v, gout[0], priv) : s;
}

typedef struct permute_ctx { int inv[USG_MAX_DIMS]; } permute_ctx;

/* The inverse of a permutation usg_permute accepted: every entry
 * normalises to a distinct dim, and inv[perm[d]] = d. */
static permute_ctx inverse(const usg_tensor *t, const int *perm)
{
    permute_ctx c = {{0}};
    for (int d = 0; d < t->ndim; d++) c.inv[usg_dim_norm(perm[d], t->ndim, 0)] = d;
    return c;
}

/* y = x permuted, y dim d = x dim perm[d]: dL/dx = g permuted by the
 * inverse, inv[perm[d]] = d */
static usg_status permute_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const permute_ctx *c = usg_node_ctx(n);
    bool priv = is_private(gout[0]);
    usg_tensor *v = NULL;
    usg_status s = usg_permute(&v, gout[0], c->inv);
    return s == USG_OK ? own_view(&gin[0], v, gout[0], priv) : s;
}

/* ==== Narrow and select ================================================= */

typedef struct slice_ctx { int dim; int64_t start, len; bool select; } slice_ctx;

/* y = a slice of x: dL/dx = zeros of x's shape with g in that slice */
static usg_status slice_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const slice_ctx *c = usg_node_ctx(n);
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    usg_tensor *z = NULL, *part = NULL;
    usg_status s = usg_tensor_zeros(&z, usg_node_input_dtype(n, 0), nd, shape);
    if (s == USG_OK)
        s = c->select ? usg_select(&part, z, c->dim, c->start)
                      : usg_narrow(&part, z, c->dim, c->start, c->len);
    if (s == USG_OK) s = usg_copy_(part, gout[0]);
    usg_tensor_release(part);
    if (s == USG_OK) gin[0] = z;
    else usg_tensor_release(z);
    return s;
}

/* ==== Expand ============================================================ */

/* y = x broadcast to a larger shape: dL/dx = g summed over the broadcast dims */
static usg_status expand_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    return usg_sum_to(&gin[0], gout[0], nd, shape);
}

/* ==== Copies and conversion ============================================= */

/* y = a copy of x, maybe in another dtype: dL/dx = g in x's dtype */
static usg_status copy_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    return usg_to_dtype(&gin[0], gout[0], usg_node_input_dtype(n, 0));
}

/* ==== The entry points ================================================== */

/* usg_ad_view, _reshape, _unsqueeze, _squeeze, _transpose, _permute,
 * _narrow, _select, _expand, _contiguous, _clone and _to_dtype run their
 * kernels and record the backwards above, as the records of
 * host/ops/view.lua declare them (host/ops/gen_ad.lua writes them). */
#include "ad_view.inc"

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

/* ==== Recording ========================================================= */

/* A view or copy has one input and nothing to save: only the op and its
 * ctx differ. usg_record skips an integer result (to_dtype to i32). */
static usg_status record_view(usg_tensor **out, const usg_op *op, usg_tensor *t, void *ctx,
                              size_t size)
{
    return usg_record(op, 1, &t, 1, out, 0, NULL, ctx, size);
}

/* Whether a forward that succeeded with status s should be recorded. */
static bool wanted(usg_status s, usg_tensor *t) { return s == USG_OK && usg_grad_needed(1, &t); }

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

static const usg_op view_op = {"view", reshape_backward, NULL};
static const usg_op reshape_op = {"reshape", reshape_backward, NULL};
static const usg_op unsqueeze_op = {"unsqueeze", reshape_backward, NULL};
static const usg_op squeeze_op = {"squeeze", reshape_backward, NULL};

usg_status usg_ad_view(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape)
{
    usg_status s = usg_view(out, t, ndim, shape);
    return wanted(s, t) ? record_view(out, &view_op, t, NULL, 0) : s;
}

usg_status usg_ad_reshape(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape)
{
    usg_status s = usg_reshape(out, t, ndim, shape);
    return wanted(s, t) ? record_view(out, &reshape_op, t, NULL, 0) : s;
}

usg_status usg_ad_unsqueeze(usg_tensor **out, usg_tensor *t, int dim)
{
    usg_status s = usg_unsqueeze(out, t, dim);
    return wanted(s, t) ? record_view(out, &unsqueeze_op, t, NULL, 0) : s;
}

usg_status usg_ad_squeeze(usg_tensor **out, usg_tensor *t, int dim)
{
    usg_status s = usg_squeeze(out, t, dim);
    return wanted(s, t) ? record_view(out, &squeeze_op, t, NULL, 0) : s;
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

static const usg_op transpose_op = {"transpose", transpose_backward, NULL};

usg_status usg_ad_transpose(usg_tensor **out, usg_tensor *t, int d0, int d1)
{
    usg_status s = usg_transpose(out, t, d0, d1);
    if (!wanted(s, t)) return s;
    transpose_ctx c = {d0, d1};
    return record_view(out, &transpose_op, t, &c, sizeof c);
}

typedef struct permute_ctx { int inv[USG_MAX_DIMS]; } permute_ctx;

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

static const usg_op permute_op = {"permute", permute_backward, NULL};

usg_status usg_ad_permute(usg_tensor **out, usg_tensor *t, const int *perm)
{
    usg_status s = usg_permute(out, t, perm);
    if (!wanted(s, t)) return s;
    permute_ctx c = {{0}};
    /* usg_permute accepted perm: every entry normalises to a distinct dim */
    for (int d = 0; d < t->ndim; d++) c.inv[usg_dim_norm(perm[d], t->ndim, 0)] = d;
    return record_view(out, &permute_op, t, &c, sizeof c);
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

static const usg_op narrow_op = {"narrow", slice_backward, NULL};
static const usg_op select_op = {"select", slice_backward, NULL};

static usg_status record_slice(usg_tensor **out, usg_tensor *t, int dim, int64_t start,
                               int64_t len, bool select)
{
    slice_ctx c = {dim, start, len, select};
    return record_view(out, select ? &select_op : &narrow_op, t, &c, sizeof c);
}

usg_status usg_ad_narrow(usg_tensor **out, usg_tensor *t, int dim, int64_t start, int64_t len)
{
    usg_status s = usg_narrow(out, t, dim, start, len);
    return wanted(s, t) ? record_slice(out, t, dim, start, len, false) : s;
}

usg_status usg_ad_select(usg_tensor **out, usg_tensor *t, int dim, int64_t i)
{
    usg_status s = usg_select(out, t, dim, i);
    return wanted(s, t) ? record_slice(out, t, dim, i, 1, true) : s;
}

/* ==== Expand ============================================================ */

/* y = x broadcast to a larger shape: dL/dx = g summed over the broadcast dims */
static usg_status expand_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    return usg_sum_to(&gin[0], gout[0], nd, shape);
}

static const usg_op expand_op = {"expand", expand_backward, NULL};

usg_status usg_ad_expand(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape)
{
    usg_status s = usg_expand(out, t, ndim, shape);
    return wanted(s, t) ? record_view(out, &expand_op, t, NULL, 0) : s;
}

/* ==== Copies and conversion ============================================= */

/* y = a copy of x, maybe in another dtype: dL/dx = g in x's dtype */
static usg_status copy_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    return usg_to_dtype(&gin[0], gout[0], usg_node_input_dtype(n, 0));
}

static const usg_op contiguous_op = {"contiguous", copy_backward, NULL};
static const usg_op clone_op = {"clone", copy_backward, NULL};
static const usg_op to_dtype_op = {"to_dtype", copy_backward, NULL};

usg_status usg_ad_contiguous(usg_tensor **out, usg_tensor *t)
{
    usg_status s = usg_contiguous(out, t);
    /* already contiguous: *out is t itself, whose history stays its own */
    return wanted(s, t) && *out != t ? record_view(out, &contiguous_op, t, NULL, 0)
                                     : s;
}

usg_status usg_ad_clone(usg_tensor **out, usg_tensor *t)
{
    usg_status s = usg_clone(out, t);
    return wanted(s, t) ? record_view(out, &clone_op, t, NULL, 0) : s;
}

usg_status usg_ad_to_dtype(usg_tensor **out, usg_tensor *t, usg_dtype dt)
{
    usg_status s = usg_to_dtype(out, t, dt);
    /* to i32 records nothing (usg_record skips integer results) */
    return wanted(s, t) && *out != t ? record_view(out, &to_dtype_op, t, NULL, 0) : s;
}

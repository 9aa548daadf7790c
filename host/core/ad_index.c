/*
 * ad_index.c -- the differentiable index ops: embedding, gather,
 * index_select, cat, stack, split and chunk, and the per-length reversal
 * of sequences (reverse_padded).
 *
 * Their backwards move gradients back to where the forward took the
 * elements from: scatter-adds for the ops that read by index (an id read
 * twice gets both gradients), slices of g for cat and stack, and for split
 * and chunk each piece's gradient placed at its slice of zeros.
 *
 * The engine records at most USG_NODE_MAX_INPUTS inputs and
 * USG_NODE_MAX_OUTPUTS outputs per node, while a sequence model cats or
 * splits T = 35 steps without thinking. Larger calls are recorded as a
 * small tree of nodes over views of the one result the forward computed:
 * no extra copies in the forward, and the same gradients.
 *
 * Not here: the forward math (index.c), the engine (autograd.c).
 */
#include <string.h>

#include "internal.h"

typedef struct index_ctx {
    int dim;          /* resolved, 0-based */
    int base;         /* of the saved indices */
} index_ctx;

/* One node of the trees below: like usg_record, but the outputs are
 * borrowed (the caller's result, or views of it that the caller releases),
 * so a failure leaves them to the caller instead of releasing them. */
static usg_status record_borrowed(const usg_op *op, int n_in, usg_tensor *const *ins, int n_out,
                                  usg_tensor *const *outs, const void *ctx, size_t size)
{
    usg_tensor *own[USG_NODE_MAX_OUTPUTS];
    for (int i = 0; i < n_out; i++) {
        usg_tensor_retain(outs[i]);
        own[i] = outs[i];
    }
    usg_status s = usg_record(op, n_in, ins, n_out, own, 0, NULL, (void *)ctx, size);
    if (s == USG_OK)
        for (int i = 0; i < n_out; i++) usg_tensor_release(own[i]);
    return s;
}

/* ==== embedding, index_select ============================================ */

/* Seen as (outer, L, inner) and g as (outer, len, inner), both contiguous:
 *   gx[o][ix_j][:] += g[o][j][:]
 * for the len positions ix_j (i32 in `base`, `stride` apart). Adds in
 * double, rounding once per add. */
static void index_add(usg_tensor *gx, const usg_tensor *g, const int32_t *ix, int64_t stride,
                      int64_t len, int64_t outer, int64_t L, int64_t inner, int base)
{
    usg_dtype dt = gx->dtype, gdt = g->dtype;
    void *px = usg_tensor_data(gx);
    const void *pg = usg_tensor_data(g);
    if (dt == USG_F32 && gdt == USG_F32) {
        /* f32 + f32 in f64 rounded once is the f32 sum (53 >= 2 * 24 + 2 bits) */
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < len; j++) {
                float *d = (float *)px + (o * L + ix[j * stride] - base) * inner;
                const float *a = (const float *)pg + (o * len + j) * inner;
                for (int64_t i = 0; i < inner; i++) d[i] += a[i];
            }
        return;
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < len; j++) {
            int64_t dst = (o * L + ix[j * stride] - base) * inner, src = (o * len + j) * inner;
            for (int64_t i = 0; i < inner; i++)
                usg_store(dt, px, dst + i, usg_load(dt, px, dst + i) + usg_load(gdt, pg, src + i));
        }
}

/* The backward of embedding and index_select:
 *   out[k] = W[ids_k - base]:  dL/dW[v] = sum_{k: ids_k = v} g[k]
 *   along dim, out[o][j] = x[o][ix_j]:  dL/dx[o][v] = sum_{j: ix_j = v} g[o][j]
 * (an embedding is index_select along dim 0 with the ids flattened):
 * gx = zeros of input 0's shape, then g's blocks added at the saved
 * positions (flattened to 1-D) along dim. */
static usg_status index_add_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    if (!usg_node_needs_grad(n, 0)) return USG_OK;
    const index_ctx *c = usg_node_ctx(n);
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    usg_tensor *gx = NULL, *g = NULL, *ix = NULL;
    usg_status s = usg_tensor_zeros(&gx, usg_node_input_dtype(n, 0), nd, shape);
    if (s == USG_OK) s = usg_contiguous(&g, gout[0]);
    if (s == USG_OK) s = usg_contiguous(&ix, usg_node_saved(n, 0));
    if (s == USG_OK) {
        int64_t outer = 1, inner = 1, len = usg_tensor_numel(ix);
        for (int d = 0; d < c->dim; d++) outer *= shape[d];
        for (int d = c->dim + 1; d < nd; d++) inner *= shape[d];
        index_add(gx, g, usg_tensor_data(ix), 1, len, outer, shape[c->dim], inner, c->base);
    }
    usg_tensor_release(g);
    usg_tensor_release(ix);
    if (s != USG_OK) usg_tensor_release(gx);
    else gin[0] = gx;
    return s;
}

/* ==== gather ============================================================ */

/* out[i][j][k] = x[i][index[i][j][k]][k] (dim 1):
 *   dL/dx = scatter_add(zeros, dim, index, g)  -- PyTorch's rule */
static usg_status gather_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    if (!usg_node_needs_grad(n, 0)) return USG_OK;
    const index_ctx *c = usg_node_ctx(n);
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    usg_tensor *gx = NULL, *g = NULL;
    usg_status s = usg_tensor_zeros(&gx, usg_node_input_dtype(n, 0), nd, shape);
    if (s == USG_OK) s = usg_to_dtype(&g, gout[0], gx->dtype);
    if (s == USG_OK) s = usg_scatter_add_(gx, c->dim, usg_node_saved(n, 0), g, c->base);
    usg_tensor_release(g);
    if (s != USG_OK) usg_tensor_release(gx);
    else gin[0] = gx;
    return s;
}

/* ==== cat and stack ===================================================== */

typedef struct concat_ctx {
    int dim;          /* resolved, of the output */
    int n;            /* inputs of this node */
} concat_ctx;

/* y = cat_dim(x_1, ..., x_n):  dL/dx_k = g narrowed to x_k's slice of dim
 * (the lengths come from the input shapes the node kept). */
static usg_status cat_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const concat_ctx *c = usg_node_ctx(n);
    usg_status s = USG_OK;
    int64_t start = 0;
    for (int k = 0; k < c->n && s == USG_OK; k++) {
        int nd;
        int64_t len = usg_node_input_shape(n, k, &nd)[c->dim];
        if (usg_node_needs_grad(n, k)) {
            usg_tensor *v = NULL;
            s = usg_narrow(&v, gout[0], c->dim, start, len);
            if (s == USG_OK) s = usg_clone(&gin[k], v);
            usg_tensor_release(v);
        }
        start += len;
    }
    return s;
}

/* y = stack_dim(x_1, ..., x_n):  dL/dx_k = g selected at k along dim */
static usg_status stack_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const concat_ctx *c = usg_node_ctx(n);
    usg_status s = USG_OK;
    for (int k = 0; k < c->n && s == USG_OK; k++) {
        if (!usg_node_needs_grad(n, k)) continue;
        usg_tensor *v = NULL;
        s = usg_select(&v, gout[0], c->dim, k);
        if (s == USG_OK) s = usg_clone(&gin[k], v);
        usg_tensor_release(v);
    }
    return s;
}

static const usg_op cat_op = {"cat", cat_backward, NULL};
static const usg_op stack_op = {"stack", stack_backward, NULL};

#define MAX_IN USG_NODE_MAX_INPUTS

/* Record out = cat (or stack) of ts[0..n) along dim, out already computed.
 * Up to MAX_IN inputs make one node. More are taken in groups of MAX_IN:
 * each group's node outputs its slice of out (a view), and the views are
 * catted by a node of their own, recursively, so any n is recorded. */
static usg_status link_concat(usg_tensor *out, int n, usg_tensor *const *ts, int dim, bool stack)
{
    if (n <= MAX_IN) {
        concat_ctx c = {dim, n};
        return record_borrowed(stack ? &stack_op : &cat_op, n, ts, 1, &out, &c, sizeof c);
    }
    if (!usg_grad_needed(n, ts)) return USG_OK;
    int groups = (n + MAX_IN - 1) / MAX_IN;
    usg_tensor **views = usg_alloc((size_t)groups * sizeof *views);
    if (!views) return USG_NOMEM;
    memset(views, 0, (size_t)groups * sizeof *views);
    usg_status s = USG_OK;
    int64_t start = 0;
    for (int j = 0; j < groups && s == USG_OK; j++) {
        int first = j * MAX_IN, k = n - first < MAX_IN ? n - first : MAX_IN;
        int64_t len = 0;
        for (int i = first; i < first + k; i++) len += stack ? 1 : ts[i]->shape[dim];
        s = usg_narrow(&views[j], out, dim, start, len);
        if (s == USG_OK) s = link_concat(views[j], k, ts + first, dim, stack);
        start += len;
    }
    if (s == USG_OK) s = link_concat(out, groups, views, dim, false);
    for (int j = 0; j < groups; j++) usg_tensor_release(views[j]);
    usg_free(views);
    return s;
}

static usg_status concat(usg_tensor **out, int n, usg_tensor *const *ts, int dim, bool stack)
{
    usg_status s = stack ? usg_stack(out, n, ts, dim) : usg_cat(out, n, ts, dim);
    if (s != USG_OK || !usg_dtype_is_float(ts[0]->dtype)) return s;
    int nd = ts[0]->ndim + (stack ? 1 : 0);
    s = link_concat(*out, n, ts, dim < 0 ? dim + nd : dim, stack);
    if (s != USG_OK) {
        usg_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

usg_status usg_ad_cat(usg_tensor **out, int n, usg_tensor *const *ts, int dim)
{
    return concat(out, n, ts, dim, false);
}

usg_status usg_ad_stack(usg_tensor **out, int n, usg_tensor *const *ts, int dim)
{
    return concat(out, n, ts, dim, true);
}

/* ==== split and chunk =================================================== */

#define MAX_OUT USG_NODE_MAX_OUTPUTS

typedef struct split_ctx {
    int dim, n;
    int64_t start[MAX_OUT], len[MAX_OUT];
} split_ctx;

/* pieces y_i = x[start_i, start_i + len_i) along dim:
 *   dL/dx = zeros of x's shape with each g_i copied into its slice; a piece
 *   no gradient reached (g_i NULL) leaves its slice 0. */
static usg_status split_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    if (!usg_node_needs_grad(n, 0)) return USG_OK;
    const split_ctx *c = usg_node_ctx(n);
    int nd;
    const int64_t *shape = usg_node_input_shape(n, 0, &nd);
    usg_tensor *gx = NULL;
    usg_status s = usg_tensor_zeros(&gx, usg_node_input_dtype(n, 0), nd, shape);
    for (int i = 0; i < c->n && s == USG_OK; i++) {
        if (!gout[i]) continue;
        usg_tensor *v = NULL;
        s = usg_narrow(&v, gx, c->dim, c->start[i], c->len[i]);
        if (s == USG_OK) s = usg_copy_(v, gout[i]);
        usg_tensor_release(v);
    }
    if (s != USG_OK) usg_tensor_release(gx);
    else gin[0] = gx;
    return s;
}

static const usg_op split_op = {"split", split_backward, NULL};
static const usg_op chunk_op = {"chunk", split_backward, NULL};

/* Record that pieces[0..n) are the slices (start_i, len_i) of src along
 * dim. Up to MAX_OUT pieces make one node; more are grouped as in
 * link_concat: src splits into group views (recursively), each of which
 * splits into its pieces. */
static usg_status link_pieces(const usg_op *op, usg_tensor *src, int n, usg_tensor *const *pieces,
                              const int64_t *start, const int64_t *len, int dim)
{
    if (n <= MAX_OUT) {
        split_ctx c = {dim, n, {0}, {0}};
        memcpy(c.start, start, (size_t)n * sizeof *start);
        memcpy(c.len, len, (size_t)n * sizeof *len);
        return record_borrowed(op, 1, &src, n, pieces, &c, sizeof c);
    }
    int groups = (n + MAX_OUT - 1) / MAX_OUT;
    /* one block: the group views, then their starts and lengths */
    size_t bytes = (size_t)groups * (sizeof(usg_tensor *) + 2 * sizeof(int64_t));
    usg_tensor **views = usg_alloc(bytes);
    if (!views) return USG_NOMEM;
    memset(views, 0, bytes);
    int64_t *gstart = (int64_t *)(views + groups), *glen = gstart + groups, rel[MAX_OUT];
    usg_status s = USG_OK;
    for (int j = 0; j < groups && s == USG_OK; j++) {
        int first = j * MAX_OUT, last = (n - first < MAX_OUT ? n : first + MAX_OUT) - 1;
        gstart[j] = start[first];
        glen[j] = start[last] + len[last] - start[first];
        s = usg_narrow(&views[j], src, dim, gstart[j], glen[j]);
    }
    if (s == USG_OK) s = link_pieces(op, src, groups, views, gstart, glen, dim);
    for (int j = 0; j < groups && s == USG_OK; j++) {
        int first = j * MAX_OUT, k = n - first < MAX_OUT ? n - first : MAX_OUT;
        for (int i = 0; i < k; i++) rel[i] = start[first + i] - gstart[j];
        s = link_pieces(op, views[j], k, pieces + first, rel, len + first, dim);
    }
    for (int j = 0; j < groups; j++) usg_tensor_release(views[j]);
    usg_free(views);
    return s;
}

/* After the plain split or chunk made *outs: record them when x needs a
 * gradient; on failure release every piece and the array. */
static usg_status record_pieces(usg_tensor ***outs, int *n, usg_tensor *x, int dim,
                                const usg_op *op, usg_status s)
{
    if (s != USG_OK || !usg_dtype_is_float(x->dtype) || !usg_grad_needed(1, &x)) return s;
    dim = dim < 0 ? dim + x->ndim : dim;
    int64_t *start = usg_alloc(2 * (size_t)*n * sizeof *start), *len = start + *n;
    if (!start) s = USG_NOMEM;
    for (int i = 0; s == USG_OK && i < *n; i++) {
        len[i] = (*outs)[i]->shape[dim];
        start[i] = i ? start[i - 1] + len[i - 1] : 0;
    }
    if (s == USG_OK) s = link_pieces(op, x, *n, *outs, start, len, dim);
    usg_free(start);
    if (s != USG_OK) {
        for (int i = 0; i < *n; i++) usg_tensor_release((*outs)[i]);
        usg_free(*outs);
        *outs = NULL;
        *n = 0;
    }
    return s;
}

usg_status usg_ad_split(usg_tensor ***outs, int *n, usg_tensor *x, int64_t size, int dim)
{
    return record_pieces(outs, n, x, dim, &split_op, usg_split(outs, n, x, size, dim));
}

usg_status usg_ad_chunk(usg_tensor ***outs, int *n, usg_tensor *x, int chunks, int dim)
{
    return record_pieces(outs, n, x, dim, &chunk_op, usg_chunk(outs, n, x, chunks, dim));
}

/* ==== reverse_padded ===================================================== */

typedef struct reverse_ctx {
    bool has_len;     /* lengths saved as input 0's companion */
} reverse_ctx;

/* dL/dx = reverse(dL/dy): the reversal is its own inverse. */
static usg_status reverse_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const reverse_ctx *c = usg_node_ctx(n);
    if (!gout[0] || !usg_node_needs_grad(n, 0)) return USG_OK;
    return usg_reverse_padded(&gin[0], gout[0], c->has_len ? usg_node_saved(n, 0) : NULL, NULL);
}

/* ==== The entry points ================================================== */

/* usg_ad_embedding, _index_select, _gather and _reverse_padded run their
 * kernels and record the backwards above, as the records of
 * host/ops/index.lua declare them (host/ops/gen_ad.lua writes them). cat,
 * stack, split and chunk, above, take or give lists of tensors. */
#include "ad_index.inc"

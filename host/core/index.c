/*
 * index.c -- the ops that move elements by index or by block without doing
 * arithmetic on them (scatter_add aside): embedding, gather, index_select,
 * scatter_add_, one_hot, cat, stack, split and chunk.
 *
 * Every index tensor is i32 in a `base` (0 from C, 1 from Lua) and is
 * checked completely before anything is allocated or written, so a bad id
 * leaves no half-done result behind and an in-place scatter either happens
 * whole or not at all. Positions in messages are 1-based, as the user of the
 * Lua binding counts them. The losses and softmax live in nn.c.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* ==== Helpers =========================================================== */

/* A multi-index as "[2, 3]", 1-based. */
static char *pos_str(char *buf, size_t n, int ndim, const int64_t *idx)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)idx[d] + 1);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static usg_status check_i32(const usg_tensor *t, const char *fn, const char *arg)
{
    if (t->dtype != USG_I32)
        return usg_fail(USG_TYPE, "%s: %s must be i32, got %s", fn, arg, usg_dtype_name(t->dtype));
    return USG_OK;
}

/* Every element of ids must lie in [base, base + n). */
static usg_status check_range(const usg_tensor *ids, int64_t n, int base, const char *fn,
                              const char *arg)
{
    int64_t count = usg_tensor_numel(ids);
    usg_walk w;
    usg_walk_init(&w, ids);
    for (int64_t k = 0; k < count; k++, usg_walk_next(&w)) {
        int64_t v = ((const int32_t *)usg_base(ids))[w.off];
        if (v < base || v - base >= n) {              /* not base + n: no overflow */
            char p[160];
            return usg_fail(USG_ARG, "%s: %s%s must be in [%d, %lld], got %lld", fn, arg,
                            pos_str(p, sizeof p, w.ndim, w.idx), base,
                            (long long)(n - 1) + base, (long long)v);
        }
    }
    return USG_OK;
}

/* outer (dims before dim) and inner (dims from `from` on) element counts. */
static void outer_inner(const usg_tensor *t, int dim, int from, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= t->shape[d];
    for (int d = from; d < t->ndim; d++) *inner *= t->shape[d];
}

/* The storage offset of element idx of t, with dim's index replaced by j. */
static int64_t offset_with(const usg_tensor *t, const int64_t *idx, int dim, int64_t j)
{
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += (d == dim ? j : idx[d]) * t->stride[d];
    return off;
}

/* ==== Embedding and one_hot ============================================= */

/* out[..., :] = weight[ids[...] - base, :], a row copy per id. */
usg_status usg_embedding(usg_tensor **out, const usg_tensor *weight, const usg_tensor *ids,
                         int base)
{
    char b[128];
    usg_status s;
    *out = NULL;
    if ((s = check_i32(ids, "embedding", "ids")) != USG_OK) return s;
    if (weight->ndim != 2)
        return usg_fail(USG_SHAPE, "embedding: weight must be (V, D), got %s",
                        usg_shape_str(b, sizeof b, weight->ndim, weight->shape));
    if (ids->ndim + 1 > USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "embedding: ids may have at most %d dims, got %d",
                        USG_MAX_DIMS - 1, ids->ndim);
    int64_t V = weight->shape[0], D = weight->shape[1], shape[USG_MAX_DIMS];
    if ((s = check_range(ids, V, base, "embedding", "ids")) != USG_OK) return s;

    usg_tensor *wc = NULL;
    if ((s = usg_contiguous(&wc, (usg_tensor *)weight)) != USG_OK) return s; /* (V, D) */
    memcpy(shape, ids->shape, sizeof shape);
    shape[ids->ndim] = D;
    if ((s = usg_tensor_empty(out, weight->dtype, ids->ndim + 1, shape)) != USG_OK) {
        usg_tensor_release(wc);
        return s;
    }
    size_t row = (size_t)D * usg_dtype_size(weight->dtype);
    const char *src = usg_tensor_data(wc);
    char *dst = usg_tensor_data(*out);                                   /* (..., D) */
    int64_t n = usg_tensor_numel(ids);
    usg_walk w;
    usg_walk_init(&w, ids);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w)) {
        int64_t v = ((const int32_t *)usg_base(ids))[w.off] - base;
        memcpy(dst + k * row, src + v * row, row);
    }
    usg_tensor_release(wc);
    return USG_OK;
}

/* out[..., c] = 1 if c = ids[...] - base else 0, f32. */
usg_status usg_one_hot(usg_tensor **out, const usg_tensor *ids, int64_t classes, int base)
{
    usg_status s;
    *out = NULL;
    if ((s = check_i32(ids, "one_hot", "ids")) != USG_OK) return s;
    if (classes < 0)
        return usg_fail(USG_ARG, "one_hot: classes must be >= 0, got %lld", (long long)classes);
    if (ids->ndim + 1 > USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "one_hot: ids may have at most %d dims, got %d",
                        USG_MAX_DIMS - 1, ids->ndim);
    if ((s = check_range(ids, classes, base, "one_hot", "ids")) != USG_OK) return s;
    int64_t shape[USG_MAX_DIMS];
    memcpy(shape, ids->shape, sizeof shape);
    shape[ids->ndim] = classes;
    if (classes > 0 && usg_tensor_numel(ids) > (int64_t)(USG_MAX_BYTES / sizeof(float)) / classes) {
        char b[256];
        return usg_fail(USG_NOMEM, "one_hot: a result of shape %s is too large",
                        usg_shape_str(b, sizeof b, ids->ndim + 1, shape));
    }
    if ((s = usg_tensor_zeros(out, USG_F32, ids->ndim + 1, shape)) != USG_OK) return s;
    float *p = usg_tensor_data(*out);                                    /* (..., classes) */
    int64_t n = usg_tensor_numel(ids);
    usg_walk w;
    usg_walk_init(&w, ids);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w))
        p[k * classes + ((const int32_t *)usg_base(ids))[w.off] - base] = 1.0f;
    return USG_OK;
}

/* ==== Gather, index_select, scatter_add_ ================================ */

/* PyTorch's rule for gather and scatter: index has x's rank, and no size of
 * index passes x's, except along dim (where index holds positions). */
static usg_status index_fits(const usg_tensor *x, const usg_tensor *index, int dim,
                             bool check_dim_too, const char *fn, const char *xname)
{
    char s1[128], s2[128];
    bool ok = index->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++)
        if ((d != dim || check_dim_too) && index->shape[d] > x->shape[d]) ok = false;
    if (!ok)
        return usg_fail(USG_SHAPE, "%s: index %s must have %s's rank and no larger size%s "
                        "than %s %s", fn, usg_shape_str(s1, sizeof s1, index->ndim, index->shape),
                        xname, check_dim_too ? "" : " outside dim", xname,
                        usg_shape_str(s2, sizeof s2, x->ndim, x->shape));
    return USG_OK;
}

/* out[i][j][k] = x[i][index[i][j][k] - base][k] for dim = 1 (any dim alike);
 * out has index's shape. */
usg_status usg_gather(usg_tensor **out, const usg_tensor *x, int dim, const usg_tensor *index,
                      int base)
{
    usg_status s;
    *out = NULL;
    if ((s = check_i32(index, "gather", "index")) != USG_OK) return s;
    if ((s = usg_check_dim(&dim, x->ndim, 0, "gather")) != USG_OK) return s;
    if ((s = index_fits(x, index, dim, false, "gather", "x")) != USG_OK) return s;
    if ((s = check_range(index, x->shape[dim], base, "gather", "index")) != USG_OK) return s;
    if ((s = usg_tensor_empty(out, x->dtype, index->ndim, index->shape)) != USG_OK) return s;

    size_t el = usg_dtype_size(x->dtype);
    char *dst = usg_tensor_data(*out);
    const char *src = usg_base(x);
    int64_t n = usg_tensor_numel(index);
    usg_walk w;
    usg_walk_init(&w, index);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w)) {
        int64_t j = ((const int32_t *)usg_base(index))[w.off] - base;
        memcpy(dst + k * el, src + offset_with(x, w.idx, dim, j) * el, el);
    }
    return USG_OK;
}

/* out = x with dim replaced by the positions in the 1-D index:
 *   out[o][j][i] = x[o][index[j] - base][i]  (outer o, inner i). */
usg_status usg_index_select(usg_tensor **out, const usg_tensor *x, int dim,
                            const usg_tensor *index, int base)
{
    char b[128];
    usg_status s;
    *out = NULL;
    if ((s = check_i32(index, "index_select", "index")) != USG_OK) return s;
    if ((s = usg_check_dim(&dim, x->ndim, 0, "index_select")) != USG_OK) return s;
    if (index->ndim > 1)
        return usg_fail(USG_SHAPE, "index_select: index must be 1-D, got %s",
                        usg_shape_str(b, sizeof b, index->ndim, index->shape));
    if ((s = check_range(index, x->shape[dim], base, "index_select", "index")) != USG_OK)
        return s;

    int64_t len = usg_tensor_numel(index), outer, inner, shape[USG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = len;
    usg_tensor *xc = NULL;
    if ((s = usg_contiguous(&xc, (usg_tensor *)x)) != USG_OK) return s;
    if ((s = usg_tensor_empty(out, x->dtype, x->ndim, shape)) != USG_OK) {
        usg_tensor_release(xc);
        return s;
    }
    outer_inner(x, dim, dim + 1, &outer, &inner);
    size_t blk = (size_t)inner * usg_dtype_size(x->dtype);
    const char *src = usg_tensor_data(xc);
    char *dst = usg_tensor_data(*out);
    int64_t stride0 = index->ndim ? index->stride[0] : 0;
    const int32_t *ix = (const int32_t *)usg_base(index) + index->offset;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < len; j++)
            memcpy(dst + (o * len + j) * blk,
                   src + (o * x->shape[dim] + ix[j * stride0] - base) * blk, blk);
    usg_tensor_release(xc);
    return USG_OK;
}

static usg_status scatter_check(const usg_tensor *dst, int *dim, const usg_tensor *index,
                                const usg_tensor *src, int base)
{
    usg_status s;
    if ((s = check_i32(index, "scatter_add", "index")) != USG_OK) return s;
    if (src->dtype != dst->dtype)
        return usg_fail(USG_TYPE, "scatter_add: src must have dst's dtype %s, got %s",
                        usg_dtype_name(dst->dtype), usg_dtype_name(src->dtype));
    if ((s = usg_check_dim(dim, dst->ndim, 0, "scatter_add")) != USG_OK) return s;
    if ((s = index_fits(dst, index, *dim, false, "scatter_add", "dst")) != USG_OK) return s;
    if ((s = index_fits(src, index, *dim, true, "scatter_add", "src")) != USG_OK) return s;
    if ((s = usg_check_writable(dst, "scatter_add_")) != USG_OK) return s;
    return check_range(index, dst->shape[*dim], base, "scatter_add", "index");
}

/* The adds of scatter_add_ into T (dst or a copy of it). An i32 sum that
 * leaves the i32 range stops the loop and returns false with *bad set. */
static bool scatter_run(usg_tensor *T, int dim, const usg_tensor *I, const usg_tensor *S,
                        int base, double *bad)
{
    int64_t n = usg_tensor_numel(I);
    usg_walk w;
    usg_walk_init(&w, I);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w)) {
        int64_t j = ((const int32_t *)usg_base(I))[w.off] - base;
        int64_t od = offset_with(T, w.idx, dim, j), os = offset_with(S, w.idx, -1, 0);
        if (T->dtype == USG_I32) {
            int32_t *p = (int32_t *)usg_base(T) + od;
            int64_t v = (int64_t)*p + ((const int32_t *)usg_base(S))[os];
            if (!usg_fits_i32((double)v)) { *bad = (double)v; return false; }
            *p = (int32_t)v;
        } else {
            usg_store(T->dtype, usg_base(T), od, usg_load(T->dtype, usg_base(T), od) +
                      usg_load(S->dtype, usg_base(S), os));
        }
    }
    return true;
}

/* dst[i][index[i][j][k] - base][k] += src[i][j][k] for dim = 1 (any dim
 * alike), over the positions of index. Floats add in double then round.
 * An i32 sum out of range is an error, as in all i32 arithmetic; the adds
 * then go to a copy first, so that a refused call leaves dst as it was. */
usg_status usg_scatter_add_(usg_tensor *dst, int dim, const usg_tensor *index,
                            const usg_tensor *src, int base)
{
    usg_status s = scatter_check(dst, &dim, index, src, base);
    if (s != USG_OK) return s;
    /* src or index in dst's memory would change under our writes: copy first. */
    usg_tensor *sc = NULL, *ic = NULL, *tc = NULL;
    if (src->storage == dst->storage && (s = usg_clone(&sc, src)) != USG_OK) return s;
    if (index->storage == dst->storage && (s = usg_clone(&ic, index)) != USG_OK) {
        usg_tensor_release(sc);
        return s;
    }
    if (dst->dtype == USG_I32) s = usg_clone(&tc, dst);
    double bad = 0;
    if (s == USG_OK && !scatter_run(tc ? tc : dst, dim, ic ? ic : index, sc ? sc : src, base, &bad))
        s = usg_fail_i32("scatter_add_", "result", bad);
    if (s == USG_OK && tc) s = usg_copy_(dst, tc);
    usg_tensor_release(sc);
    usg_tensor_release(ic);
    usg_tensor_release(tc);
    return s;
}

/* ==== cat and stack ===================================================== */

/* cat: the same dtype and rank, equal sizes outside dim. stack: equal shapes. */
static usg_status concat_check(int n, usg_tensor *const *ts, int *dim, bool stack,
                               const char *fn)
{
    char s1[128], s2[128];
    usg_status s;
    if (n < 1 || !ts) return usg_fail(USG_ARG, "%s: needs at least one tensor, got %d", fn, n);
    for (int k = 0; k < n; k++)
        if (!ts[k]) return usg_fail(USG_ARG, "%s: tensor #%d is missing", fn, k + 1);
    const usg_tensor *t0 = ts[0];
    if (!stack && t0->ndim == 0)
        return usg_fail(USG_SHAPE, "cat: 0-dim tensors cannot be concatenated (stack them)");
    if (stack && t0->ndim + 1 > USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "stack: tensors may have at most %d dims, got %d",
                        USG_MAX_DIMS - 1, t0->ndim);
    if ((s = usg_check_dim(dim, t0->ndim, stack ? 1 : 0, fn)) != USG_OK) return s;
    for (int k = 1; k < n; k++) {
        const usg_tensor *t = ts[k];
        if (t->dtype != t0->dtype)
            return usg_fail(USG_TYPE, "%s: tensor #%d is %s but tensor #1 is %s", fn, k + 1,
                            usg_dtype_name(t->dtype), usg_dtype_name(t0->dtype));
        bool ok = t->ndim == t0->ndim;
        for (int d = 0; ok && d < t0->ndim; d++)
            ok = t->shape[d] == t0->shape[d] || (!stack && d == *dim);
        if (!ok)
            return usg_fail(USG_SHAPE, "%s: tensor #%d has shape %s, which does not fit "
                            "tensor #1's %s%s", fn, k + 1,
                            usg_shape_str(s1, sizeof s1, t->ndim, t->shape),
                            usg_shape_str(s2, sizeof s2, t0->ndim, t0->shape),
                            stack ? " (stack needs equal shapes)" : " outside the cat dim");
    }
    return USG_OK;
}

/* Both are one copy loop: seen as (outer, len_k * inner) blocks, tensor k
 * goes to columns [start_k, start_k + len_k * inner) of every out row, where
 * out is (outer, sum_k len_k * inner). For stack len_k = 1. */
static usg_status concat(usg_tensor **out, int n, usg_tensor *const *ts, int dim, bool stack)
{
    const char *fn = stack ? "stack" : "cat";
    usg_status s;
    *out = NULL;
    if ((s = concat_check(n, ts, &dim, stack, fn)) != USG_OK) return s;
    const usg_tensor *t0 = ts[0];
    int64_t shape[USG_MAX_DIMS], outer, inner;
    int ndim = t0->ndim + (stack ? 1 : 0);
    for (int d = 0, e = 0; d < ndim; d++)
        shape[d] = stack && d == dim ? n : t0->shape[e++];
    if (!stack)
        for (int k = 1; k < n; k++) shape[dim] += ts[k]->shape[dim];
    if ((s = usg_tensor_empty(out, t0->dtype, ndim, shape)) != USG_OK) return s;

    outer_inner(t0, dim, stack ? dim : dim + 1, &outer, &inner);
    size_t el = usg_dtype_size(t0->dtype);
    int64_t row = (stack ? n : shape[dim]) * inner, start = 0;   /* elements per out row */
    char *dst = usg_tensor_data(*out);
    for (int k = 0; k < n; k++) {
        usg_tensor *tc = NULL;
        if ((s = usg_contiguous(&tc, ts[k])) != USG_OK) {
            usg_tensor_release(*out);
            *out = NULL;
            return s;
        }
        int64_t blk = (stack ? 1 : ts[k]->shape[dim]) * inner;
        const char *src = usg_tensor_data(tc);
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + (o * row + start) * el, src + o * blk * el, (size_t)blk * el);
        start += blk;
        usg_tensor_release(tc);
    }
    return USG_OK;
}

usg_status usg_cat(usg_tensor **out, int n, usg_tensor *const *ts, int dim)
{
    return concat(out, n, ts, dim, false);
}

usg_status usg_stack(usg_tensor **out, int n, usg_tensor *const *ts, int dim)
{
    return concat(out, n, ts, dim, true);
}

/* ==== split and chunk =================================================== */

/* `count` views of x along dim, the i-th at start i * size with length
 * min(size, L - start): narrow() views share x's storage. */
static usg_status views(usg_tensor ***outs, int *n, usg_tensor *x, int dim, int64_t count,
                        int64_t size)
{
    usg_tensor **v = usg_alloc((size_t)count * sizeof *v);
    if (!v) return USG_NOMEM;
    int64_t L = x->shape[dim];
    for (int64_t i = 0; i < count; i++) {
        int64_t start = i * size < L ? i * size : L;
        int64_t len = L - start < size ? L - start : size;
        usg_status s = usg_narrow(&v[i], x, dim, start, len);
        if (s != USG_OK) {
            while (i-- > 0) usg_tensor_release(v[i]);
            usg_free(v);
            return s;
        }
    }
    *outs = v;
    *n = (int)count;
    return USG_OK;
}

/* A dim of size 0 still gives one (empty) piece, as torch.split. */
usg_status usg_split(usg_tensor ***outs, int *n, usg_tensor *x, int64_t size, int dim)
{
    usg_status s;
    *outs = NULL;
    *n = 0;
    if ((s = usg_check_dim(&dim, x->ndim, 0, "split")) != USG_OK) return s;
    int64_t L = x->shape[dim];
    if (size < 1 && !(size == 0 && L == 0))
        return usg_fail(USG_ARG, "split: size must be >= 1, got %lld", (long long)size);
    int64_t count = L == 0 ? 1 : (L - 1) / size + 1;   /* ceil(L / size), no overflow */
    if (count > INT_MAX)
        return usg_fail(USG_ARG, "split: %lld pieces are too many", (long long)count);
    return views(outs, n, x, dim, count, size);
}

/* torch.chunk: pieces of ceil(L / chunks), so there may be fewer than
 * `chunks` of them; a dim of size 0 gives `chunks` empty pieces. */
usg_status usg_chunk(usg_tensor ***outs, int *n, usg_tensor *x, int chunks, int dim)
{
    usg_status s;
    *outs = NULL;
    *n = 0;
    if ((s = usg_check_dim(&dim, x->ndim, 0, "chunk")) != USG_OK) return s;
    if (chunks < 1) return usg_fail(USG_ARG, "chunk: chunks must be >= 1, got %d", chunks);
    int64_t L = x->shape[dim], size = (L + chunks - 1) / chunks;
    if (L == 0) return views(outs, n, x, dim, chunks, 0);
    return views(outs, n, x, dim, (L + size - 1) / size, size);
}

usg_status usg_scatter_add(usg_tensor **out, const usg_tensor *dst, int dim, const usg_tensor *index,
                           const usg_tensor *src, int base)
{
    usg_status s = usg_clone(out, dst);
    if (s == USG_OK && (s = usg_scatter_add_(*out, dim, index, src, base)) != USG_OK) {
        usg_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

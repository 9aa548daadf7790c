/*
 * internal.h -- helpers shared by the core's own sources; not installed.
 *
 * Dim normalisation, and a strided walker over the logical elements of a view.
 */
#ifndef USAGI_INTERNAL_H
#define USAGI_INTERNAL_H

#include "usagi/core.h"
#include "usagi/ops.h"
#include "usagi/random.h"
#include "usagi/autograd.h"

/* The one message for an i32 value out of range: USG_ARG, "fn: the result
 * 4294967294 does not fit in i32 ...". `what` is "result" or "value". */
usg_status usg_fail_i32(const char *fn, const char *what, double v);

/* What every tape node starts with. A tensor owns its grad_fn and a node
 * owns its saved tensors, so freeing one may free the other; the node
 * carries its own release function (autograd.c puts usg_node_release
 * there) so that tensor.c can drop a grad_fn without calling into
 * autograd.c. The core's sources then depend one way: tensor.c on nothing,
 * the kernels (elementwise.c, reduce.c, ...) on tensor.c, autograd.c on
 * the kernels, and the ad_*.c derivatives on autograd.c. */
typedef struct usg_node_head {
    void (*release)(struct usg_node *n);
} usg_node_head;

/* t when it is a float tensor, which may be differentiated, else NULL: the
 * form of an input to usg_record for ops that take integer tensors too. */
static inline usg_tensor *usg_diff_in(usg_tensor *t)
{
    return t && usg_dtype_is_float(t->dtype) ? t : NULL;
}

/* Normalise a possibly negative dim against ndim (ndim_plus: allow one past
 * the end, for unsqueeze and stack). Returns -1 when out of range. */
static inline int usg_dim_norm(int dim, int ndim, int ndim_plus)
{
    int n = ndim + ndim_plus;
    if (dim < 0) dim += n;
    return (dim < 0 || dim >= n) ? -1 : dim;
}


/* Check a dim and fail with a message naming the function. */
usg_status usg_check_dim(int *dim, int ndim, int ndim_plus, const char *fn);

/* Walk the logical elements of a view in row-major order:
 *   usg_walk w; usg_walk_init(&w, t);
 *   for (int64_t k = 0; k < n; k++) { use(w.off); usg_walk_next(&w); }
 * w.off is the element offset into storage data (includes t->offset). */
typedef struct usg_walk {
    int ndim;
    int64_t off;
    int64_t idx[USG_MAX_DIMS];
    int64_t shape[USG_MAX_DIMS];
    int64_t stride[USG_MAX_DIMS];
} usg_walk;

static inline void usg_walk_init(usg_walk *w, const usg_tensor *t)
{
    w->ndim = t->ndim;
    w->off = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        w->idx[d] = 0;
        w->shape[d] = t->shape[d];
        w->stride[d] = t->stride[d];
    }
}

static inline void usg_walk_next(usg_walk *w)
{
    for (int d = w->ndim - 1; d >= 0; d--) {
        w->off += w->stride[d];
        if (++w->idx[d] < w->shape[d]) return;
        w->off -= w->stride[d] * w->shape[d];
        w->idx[d] = 0;
    }
}

/* The raw storage base of a tensor (offset NOT applied), for use with walk. */
static inline void *usg_base(const usg_tensor *t) { return t->storage->data; }

/* The shape of a reduction over dim (USG_ALL_DIMS: none left). */
int usg_reduced_shape(int64_t *shape, const usg_tensor *a, int dim, bool keepdim);

/* Sizes of the outer (before dim), reduced and inner (after dim) blocks of a
 * contiguous tensor. */
void usg_outer_inner(const usg_tensor *a, int dim, int64_t *outer, int64_t *n,
                     int64_t *inner);

/* The grain to give usg_parallel_for when each iteration touches `per`
 * elements: parts of about USG_PART_ELEMS elements (at least one
 * iteration), below which a split costs more than it saves. */
#define USG_PART_ELEMS 65536
static inline int64_t usg_grain(int64_t per)
{
    return per >= USG_PART_ELEMS ? 1 : USG_PART_ELEMS / (per > 0 ? per : 1);
}

/* Σ_c exp(p[c] - m) over a contiguous f32 row of C scores, m = max_c p[c]
 * into *max; NaN when a score is NaN. Each exp(p[c] - m) into e[c] unless
 * e is NULL. The softmax losses' common case (nn.c, ad_nn.c), with
 * usagi/fastmath.h's exp and eight partial sums. */
double usg_softmax_row_f32(const float *p, int64_t C, float *max, float *e);

/* g[c] = scale * e[c] over a row of C: the softmax, scaled, from the exps
 * and z that usg_softmax_row_f32 gave (scale = s / z). */
void usg_scale_row_f32(float *g, const float *e, int64_t C, float scale);

/* The f32 bce_with_logits of n contiguous logits x and targets y: the sum,
 * and each element's loss into l unless NULL (nn.c). */
double usg_bcel_f32(float *l, const float *x, const float *y, int64_t n);

/* d/dx of it, times the incoming gradient g (one value when scalar, else
 * per element) times scale: gx[i] = g_i scale (sigmoid(x_i) - y_i). */
void usg_bcel_grad_f32(float *restrict gx, const float *restrict x, const float *restrict y,
                       const float *restrict g, bool scalar, double scale, int64_t n);

/* usg_cross_entropy that also gives, when stats is not NULL, each row's
 * max m and sum z = sum_c exp(x_c - m) as an (N, 2) f64 tensor (rows that
 * do not count hold 0, 0), and when exps is not NULL too and the logits
 * are f32 with classes of stride 1, the exp(x_c - m) themselves (N, C; rows
 * that do not count are left unwritten): the backward's softmax is then a
 * scaling of what the forward computed. */
usg_status usg_cross_entropy_stats(usg_tensor **out, usg_tensor **stats, usg_tensor **exps,
                                   const usg_tensor *logits, const usg_tensor *target,
                                   const usg_tensor *mask, int32_t ignore_index,
                                   usg_reduction red, int base);

#endif

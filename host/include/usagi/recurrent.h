/*
 * usagi/recurrent.h -- the support library of the sequence plugins
 * (modules/rnn, lstm, gru, birnn), libusagi_recurrent, in one header:
 *
 *   - for the fused kernels, inline helpers: a matrix header over one time
 *     step of a contiguous sequence, a bias broadcast into rows, column
 *     sums into a bias gradient, variable lengths, and the shape and dtype
 *     checks of their arguments;
 *   - for the autograd op, the stacking of layers (initial states sliced
 *     per layer, dropout between layers, final states stacked, output
 *     masked past each length) and the checks of a stack's weights;
 *   - for the binding, the weights list and the options table of a
 *     recurrent op (the op tables' `layers` and `recopts` kinds).
 *
 * Its Lua half, shared by the plugins' faces (nn.RNN, nn.LSTM, nn.GRU), is
 * usagi.recurrent (scripts/usagi/recurrent.lua). host/recurrent/README.md
 * says what is where.
 */
#ifndef USAGI_RECURRENT_H
#define USAGI_RECURRENT_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "usagi/core.h"
#include "usagi/random.h"

#ifdef __cplusplus
extern "C" {
#endif

struct lua_State;

/* A (rows, cols) matrix header over t's contiguous data from element
 * `start`: lives on the stack, takes no reference and allocates nothing,
 * which is how the time loops hand one step's slice to gemm. */
static inline usg_tensor usg_rec_mat(const usg_tensor *t, int64_t start, int64_t rows, int64_t cols)
{
    usg_tensor m = *t;
    m.ndim = 2;
    m.shape[0] = rows;
    m.shape[1] = cols;
    m.stride[0] = cols;
    m.stride[1] = 1;
    m.offset = t->offset + start;
    m.requires_grad = false;
    m.grad = NULL;
    m.grad_fn = NULL;
    return m;
}

/* The logistic sigmoid in f64, for the kernels' f64 paths (their f32 paths
 * use usagi/fastmath.h). */
static inline double usg_rec_sigmoid(double x) { return 1 / (1 + exp(-x)); }

/* The data of contiguous t from element k on, or NULL for no tensor. */
static inline void *usg_rec_at(const usg_tensor *t, int64_t k)
{
    if (!t) return NULL;
    return (char *)usg_tensor_data(t) + (size_t)k * usg_dtype_size(t->dtype);
}

/* y[k] += x[k] for n elements of float dtype dt. */
static inline void usg_rec_add(void *y, const void *x, int64_t n, usg_dtype dt)
{
    if (dt == USG_F32)
        for (int64_t k = 0; k < n; k++) ((float *)y)[k] += ((const float *)x)[k];
    else
        for (int64_t k = 0; k < n; k++) ((double *)y)[k] += ((const double *)x)[k];
}

/* The gradient reaching each output h^t of a layer from above, for its
 * BPTT: D (T, B, H) <- g_out (or 0), D[T] += g_hn (the final state's). The
 * gradients are contiguous and of D's dtype (or NULL: none arrived). */
static inline void usg_rec_seed(usg_tensor *D, const usg_tensor *g_out, const usg_tensor *g_hn,
                                int64_t T, int64_t BH)
{
    size_t es = usg_dtype_size(D->dtype);
    if (g_out) memcpy(usg_tensor_data(D), usg_tensor_data(g_out), (size_t)(T * BH) * es);
    else memset(usg_tensor_data(D), 0, (size_t)(T * BH) * es);
    if (g_hn) usg_rec_add(usg_rec_at(D, (T - 1) * BH), usg_tensor_data(g_hn), BH, D->dtype);
}

/* Every row of u (rows, n), contiguous, <- b1 + b2 (either may be NULL). */
static inline void usg_rec_fill_bias(usg_tensor *u, int64_t rows, int64_t n,
                                     const usg_tensor *b1, const usg_tensor *b2)
{
    usg_dtype dt = u->dtype;
    void *p = usg_tensor_data(u);
    for (int64_t j = 0; j < n; j++) {
        double b = (b1 ? usg_tensor_get_flat(b1, j) : 0) + (b2 ? usg_tensor_get_flat(b2, j) : 0);
        if (dt == USG_F32) ((float *)p)[j] = (float)b;
        else ((double *)p)[j] = b;
    }
    size_t row = (size_t)n * usg_dtype_size(dt);
    for (int64_t r = 1; r < rows; r++) memcpy((char *)p + (size_t)r * row, p, row);
}

/* db (n) += the column sums of d (rows, n), both contiguous, summed in
 * f64 in acc (n, scratch). */
static inline void usg_rec_add_col_sums(usg_tensor *db, const usg_tensor *d, double *acc,
                                        int64_t rows, int64_t n)
{
    memset(acc, 0, (size_t)n * sizeof *acc);
    if (d->dtype == USG_F32) {
        const float *p = usg_tensor_data(d);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) acc[j] += p[r * n + j];
    } else {
        const double *p = usg_tensor_data(d);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) acc[j] += p[r * n + j];
    }
    void *q = usg_tensor_data(db);
    for (int64_t j = 0; j < n; j++) {
        if (db->dtype == USG_F32) ((float *)q)[j] += (float)acc[j];
        else ((double *)q)[j] += acc[j];
    }
}

/* ==== Variable lengths ==================================================
 * With lengths len[b] (1..T, NULL: all T), sequence b has ended at step t
 * (0-based) when len[b] <= t. An ended sequence keeps its state: the step
 * is the identity for it, so the final state is the one at its own last
 * step, and in the backward the gradient passes the step unchanged and
 * its deltas are zero (no gradient to the weights or the input there). */

static inline bool usg_rec_ended(const int32_t *len, int64_t b, int64_t t)
{
    return len && len[b] <= t;
}

/* The rows of ended sequences of state (B, n) at step t <- the previous
 * step's rows (prev, (B, n)); es is the element size. */
static inline void usg_rec_freeze(void *state, const void *prev, const int32_t *len, int64_t t,
                                  int64_t B, int64_t n, size_t es)
{
    if (!len || t == 0) return;
    for (int64_t b = 0; b < B; b++)
        if (len[b] <= t)
            memcpy((char *)state + (size_t)(b * n) * es, (const char *)prev + (size_t)(b * n) * es,
                   (size_t)n * es);
}

/* In the backward of step t: for ended rows, dst (B, n) += g (B, n) (the
 * identity's gradient passed to the step before) and g <- 0. */
static inline void usg_rec_pass_ended(void *dst, void *g, const int32_t *len, int64_t t,
                                      int64_t B, int64_t n, usg_dtype dt)
{
    if (!len) return;
    size_t es = usg_dtype_size(dt), row = (size_t)n * es;
    for (int64_t b = 0; b < B; b++) {
        if (len[b] > t) continue;
        usg_rec_add((char *)dst + (size_t)b * row, (char *)g + (size_t)b * row, n, dt);
        memset((char *)g + (size_t)b * row, 0, row);
    }
}

/* The name of a layer's argument as PyTorch spells it: "weight_ih_l0", or
 * the argument alone for layer < 0 ("h0"). */
static inline const char *usg_rec_arg_name(char *buf, size_t size, const char *arg, int layer)
{
    if (layer >= 0) snprintf(buf, size, "%s_l%d", arg, layer);
    else snprintf(buf, size, "%s", arg);
    return buf;
}

/* OK when t has the shape wanted, else the error "op: arg_lN must be
 * (..)hint, got (..)". */
static inline usg_status usg_rec_expect(const char *op, const char *arg, int layer,
                                        const usg_tensor *t, int ndim, const int64_t *shape,
                                        const char *hint)
{
    char name[64], want[256], got[256];
    bool ok = t->ndim == ndim;
    for (int k = 0; ok && k < ndim; k++) ok = t->shape[k] == shape[k];
    if (ok) return USG_OK;
    return usg_fail(USG_SHAPE, "%s: %s must be %s%s, got %s", op,
                    usg_rec_arg_name(name, sizeof name, arg, layer),
                    usg_shape_str(want, sizeof want, ndim, shape), hint,
                    usg_shape_str(got, sizeof got, t->ndim, t->shape));
}

/* OK when t is NULL or of dtype dt (the input's), else "op: arg_lN must
 * be f32 like the input, got f64". */
static inline usg_status usg_rec_same_dtype(const char *op, const char *arg, int layer,
                                            const usg_tensor *t, usg_dtype dt)
{
    char name[64];
    if (!t || t->dtype == dt) return USG_OK;
    return usg_fail(USG_TYPE, "%s: %s must be %s like the input, got %s", op,
                    usg_rec_arg_name(name, sizeof name, arg, layer), usg_dtype_name(dt),
                    usg_dtype_name(t->dtype));
}

/* ==== The stack of layers (host/recurrent/recurrent.c) ================ */

/* One layer of a stacked recurrent net: from the sequence x (T, B, n) and
 * n_states initial states s0[k] (B, H; NULL for zeros), its output
 * sequence *y and its final states finals[k] (B, H), all recorded ops.
 * lengths is NULL or the sequences' lengths, a contiguous i32 (B) of 1..T:
 * the layer keeps an ended sequence's state (usg_rec_ended, above). */
typedef usg_status (*usg_rec_layer_fn)(void *ctx, int layer, usg_tensor *x, usg_tensor *const *s0,
                                       usg_tensor *lengths, usg_tensor **y, usg_tensor **finals);

/* One layer's own checks (its weights w, `per` of them, against its input
 * x), for usg_rec_check_weights. */
typedef usg_status (*usg_rec_check_fn)(const usg_tensor *x, usg_tensor *const *w, int layer);

/* The weights of a stack: `layers` >= 1 layers of `per` tensors, the first
 * two (weight_ih, weight_hh) present in each; layer 0 checked by check
 * against x (T, B, I), layer l > 0 against what it reads, (T, B, H), with
 * weight_ih_l (gates * H, H), H being weight_hh_l0's second dim. Errors
 * name op. */
USG_API usg_status usg_rec_check_weights(const char *op, const usg_tensor *x, int layers, int per,
                                         int64_t gates, usg_tensor *const *w,
                                         usg_rec_check_fn check);

/* lengths is NULL, or an i32 (B) of values in 1..T for the input x
 * (T, B, n); the error names op. */
USG_API usg_status usg_rec_check_lengths(const char *op, const usg_tensor *lengths,
                                         const usg_tensor *x);

/* Runs `layers` layers, layer l > 0 reading layer l-1's output with
 * dropout p in [0, 1) between them (rng may be NULL when p = 0). s0[k] is
 * NULL or (L, B, H) and is checked first (errors name `op` and
 * state_names[k], e.g. "lstm: c0 must be (2, 3, 16) (num_layers, B, H), got
 * ..."), and so is lengths (NULL, or an i32 (B) of values in 1..T). *out
 * <- the last layer's output, zero past each sequence's length;
 * finals[k] <- (L, B, H), the final states of every layer (with lengths,
 * each sequence's state at its own last step). */
USG_API usg_status usg_ad_rec_stack(usg_tensor **out, usg_tensor **finals, usg_tensor *x,
                                    usg_tensor *const *s0, int n_states,
                                    const char *const *state_names, const char *op, int layers,
                                    int64_t H, usg_tensor *lengths, usg_rec_layer_fn fn, void *ctx,
                                    double dropout, usg_rng *rng);

/* ==== The binding's side (host/recurrent/recurrent_lua.c) ============= */

/* The weights of a layered op (rnn.rnn, lstm.lstm, ...) from the list at
 * idx, { {w1, w2, ...}, ... }: `per` tensors per layer into w[per * l + k],
 * the first `required` of them mandatory, the others tensors or nil (NULL).
 * names[k] name them in errors. Returns the number of layers, 1..max. The
 * tensors stay referenced by the caller's table during the call. */
USG_API int usg_lua_check_layers(struct lua_State *L, int idx, int per, int required,
                                 const char *const *names, usg_tensor **w, int max);
/* The options table of a recurrent op at idx (none or nil: defaults):
 * dropout (a number; 0 when absent) into *p, lengths (a tensor; NULL when
 * absent) into *lengths. Other keys must be among `extra` (NULL-ended, or
 * NULL for none); the caller reads those. Errors name op. */
USG_API void usg_lua_rec_opts(struct lua_State *L, int idx, const char *op, const char *const *extra,
                              double *p, usg_tensor **lengths);
#ifdef __cplusplus
}
#endif

#endif

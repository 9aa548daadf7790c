/*
 * recurrent.c -- the stacking of recurrent layers that the sequence
 * plugins share (libusagi_recurrent, usagi/recurrent.h):
 *
 *   out, finals = layer_L(... dropout(layer_1(x, s0[.][0])) ..., s0[.][L-1])
 *
 * the plumbing every recurrent plugin needs around its fused layer op --
 * the initial states sliced per layer, dropout between layers, the final
 * states stacked, the output masked past each sequence's length --
 * composed of the core's recorded ops, so the gradients flow through it
 * with no backward of its own. It uses the core's public API only.
 */
#include <string.h>

#include "usagi/autograd.h"
#include "usagi/recurrent.h"

#define REC_MAX_STATES 4

static usg_status check_rec_state(const char *op, const char *name, const usg_tensor *s0,
                                  const usg_tensor *x, int layers, int64_t H)
{
    char b1[256], b2[256];
    if (!s0) return USG_OK;
    if (s0->dtype != x->dtype)
        return usg_fail(USG_TYPE, "%s: %s must be %s like the input, got %s", op, name,
                        usg_dtype_name(x->dtype), usg_dtype_name(s0->dtype));
    int64_t want[3] = {layers, x->ndim == 3 ? x->shape[1] : 0, H};
    if (s0->ndim != 3 || s0->shape[0] != want[0] || s0->shape[1] != want[1] || s0->shape[2] != H)
        return usg_fail(USG_SHAPE, "%s: %s must be %s (num_layers, B, H), got %s", op, name,
                        usg_shape_str(b1, sizeof b1, 3, want),
                        usg_shape_str(b2, sizeof b2, s0->ndim, s0->shape));
    return USG_OK;
}

usg_status usg_rec_check_weights(const char *op, const usg_tensor *x, int layers, int per,
                                 int64_t gates, usg_tensor *const *w, usg_rec_check_fn check)
{
    char b1[256];
    usg_status s;
    if (layers < 1) return usg_fail(USG_ARG, "%s: num_layers must be >= 1, got %d", op, layers);
    for (int l = 0; l < layers; l++)
        if (!w[per * l] || !w[per * l + 1])
            return usg_fail(USG_ARG, "%s: weight_%s_l%d is missing", op, w[per * l] ? "hh" : "ih", l);
    if ((s = check(x, w, 0)) != USG_OK) return s;
    int64_t H = w[1]->shape[1], G = gates * H;
    usg_tensor xl = *x;                      /* what layer l > 0 reads: (T, B, H) */
    xl.shape[2] = H;
    for (int l = 1; l < layers; l++) {
        const usg_tensor *wi = w[per * l];
        if (wi->ndim != 2 || wi->shape[0] != G || wi->shape[1] != H)
            return usg_fail(USG_SHAPE, "%s: weight_ih_l%d must be (%lld, %lld) (it reads layer "
                            "%d's %lld outputs), got %s", op, l, (long long)G, (long long)H, l - 1,
                            (long long)H, usg_shape_str(b1, sizeof b1, wi->ndim, wi->shape));
        if ((s = check(&xl, w + per * l, l)) != USG_OK) return s;
    }
    return USG_OK;
}

usg_status usg_rec_check_lengths(const char *op, const usg_tensor *len, const usg_tensor *x)
{
    return usg_check_lengths(op, len, x);
}

/* out * mask, mask (T, B, 1) = [t < lengths[b]]: zeros past each length,
 * and no gradient there. */
static usg_status mask_lengths(usg_tensor **masked, usg_tensor *out, const usg_tensor *len)
{
    int64_t T = out->shape[0], B = out->shape[1];
    usg_tensor *mask;
    usg_status s = usg_tensor_zeros(&mask, out->dtype, 3, (int64_t[]){T, B, 1});
    if (s != USG_OK) return s;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++)
            if (t < (int64_t)usg_tensor_get_flat(len, b))
                usg_tensor_set(mask, (int64_t[]){t, b, 0}, 1);
    s = usg_ad_binary(masked, USG_MUL, out, mask);
    usg_tensor_release(mask);
    return s;
}

usg_status usg_ad_rec_stack(usg_tensor **out, usg_tensor **finals, usg_tensor *x,
                            usg_tensor *const *s0, int n_states, const char *const *state_names,
                            const char *op, int layers, int64_t H, usg_tensor *lengths,
                            usg_rec_layer_fn fn, void *ctx, double dropout, usg_rng *rng)
{
    *out = NULL;
    for (int k = 0; k < n_states; k++) finals[k] = NULL;
    if (n_states < 1 || n_states > REC_MAX_STATES)
        return usg_fail(USG_ARG, "%s: a recurrent layer has 1 to %d states, got %d", op,
                        REC_MAX_STATES, n_states);
    if (layers < 1) return usg_fail(USG_ARG, "%s: num_layers must be >= 1, got %d", op, layers);
    if (!(dropout >= 0 && dropout < 1))
        return usg_fail(USG_ARG, "%s: dropout must be in [0, 1), got %g", op, dropout);
    if (dropout > 0 && !rng) return usg_fail(USG_ARG, "%s: dropout > 0 needs a generator", op);
    usg_status s = USG_OK;
    for (int k = 0; k < n_states && s == USG_OK; k++)
        s = check_rec_state(op, state_names[k], s0 ? s0[k] : NULL, x, layers, H);
    if (s == USG_OK && lengths) s = usg_rec_check_lengths(op, lengths, x);
    usg_tensor *len = NULL;                       /* lengths, contiguous, for the kernels */
    if (s == USG_OK && lengths) s = usg_contiguous(&len, lengths);
    if (s != USG_OK) return s;
    usg_tensor **fin = usg_alloc((size_t)(n_states * layers) * sizeof *fin);   /* [k * L + l] */
    if (!fin) {
        usg_tensor_release(len);
        return USG_NOMEM;
    }
    memset(fin, 0, (size_t)(n_states * layers) * sizeof *fin);
    usg_tensor *cur = x;
    usg_tensor_retain(cur);
    for (int l = 0; l < layers && s == USG_OK; l++) {
        usg_tensor *init[REC_MAX_STATES] = {NULL}, *lf[REC_MAX_STATES] = {NULL}, *y = NULL;
        for (int k = 0; k < n_states && s == USG_OK; k++)      /* s0[k][l] (B, H) */
            if (s0 && s0[k]) s = usg_ad_select(&init[k], s0[k], 0, l);
        if (s == USG_OK) s = fn(ctx, l, cur, init, len, &y, lf);
        for (int k = 0; k < n_states; k++) {
            usg_tensor_release(init[k]);
            fin[k * layers + l] = lf[k];
        }
        usg_tensor_release(cur);
        cur = NULL;
        if (s != USG_OK) break;
        if (l == layers - 1 || dropout == 0) cur = y;
        else {
            s = usg_ad_dropout(&cur, rng, y, dropout);
            usg_tensor_release(y);
        }
    }
    for (int k = 0; k < n_states && s == USG_OK; k++)
        s = usg_ad_stack(&finals[k], layers, fin + k * layers, 0);
    for (int k = 0; k < n_states * layers; k++) usg_tensor_release(fin[k]);
    usg_free(fin);
    if (s == USG_OK && len) {                     /* the output is zero past each length */
        usg_tensor *masked = NULL;
        s = mask_lengths(&masked, cur, len);
        usg_tensor_release(cur);
        cur = masked;
    }
    usg_tensor_release(len);
    if (s != USG_OK) {
        usg_tensor_release(cur);
        for (int k = 0; k < n_states; k++) {
            usg_tensor_release(finals[k]);
            finals[k] = NULL;
        }
        return s;
    }
    *out = cur;
    return USG_OK;
}

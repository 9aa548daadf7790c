/*
 * sequence.c -- kernels over batches of sequences and rows that decoding
 * and bidirectional nets need: each sequence reversed within its own
 * length, the check of a lengths tensor, and the k largest entries of each
 * row (beam search ranks its candidates with it).
 *
 * Sequences are time-major, x (T, B, n), and sequence b ends at
 * lengths[b] (an i32 (B) of values in 1..T; NULL means all T). Padding past
 * a length stays where it is.
 *
 * A kernel file: it calls tensor.c only. The autograd twin of the
 * reversal is in ad_index.c; topk is not differentiated (decoding only).
 */
#include <math.h>
#include <string.h>

#include "internal.h"

/* ==== lengths =========================================================== */

usg_status usg_check_lengths(const char *fn, const usg_tensor *len, const usg_tensor *x)
{
    char b1[256];
    if (!len) return USG_OK;
    int64_t T = x->shape[0], B = x->shape[1];
    if (len->dtype != USG_I32 || len->ndim != 1 || len->shape[0] != B)
        return usg_fail(USG_SHAPE, "%s: lengths must be an i32 tensor of shape (%lld,) (one per "
                        "sequence), got %s %s", fn, (long long)B, usg_dtype_name(len->dtype),
                        usg_shape_str(b1, sizeof b1, len->ndim, len->shape));
    for (int64_t b = 0; b < B; b++) {
        double v = usg_tensor_get_flat(len, b);
        if (v < 1 || v > (double)T)
            return usg_fail(USG_ARG, "%s: lengths must be in 1..%lld (the input's T), got %g for "
                            "sequence %lld", fn, (long long)T, v, (long long)b + 1);
    }
    return USG_OK;
}

/* ==== reverse_padded ==================================================== */

/* y (T, B, n) <- x reversed per sequence; both contiguous, len NULL or (B):
 *   y[t, b] = x[len_b - 1 - t, b]  for t < len_b,  y[t, b] = x[t, b] after. */
static void reverse_rows(usg_tensor *y, const usg_tensor *x, const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], n = x->shape[2];
    size_t row = (size_t)n * usg_dtype_size(x->dtype);
    const char *src = usg_tensor_data(x);
    char *dst = usg_tensor_data(y);
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) {
            int64_t lb = len ? len[b] : T, from = t < lb ? lb - 1 - t : t;
            memcpy(dst + (size_t)(t * B + b) * row, src + (size_t)(from * B + b) * row, row);
        }
}

usg_status usg_reverse_padded(usg_tensor **out, const usg_tensor *x, const usg_tensor *lengths,
                              const char *fn)
{
    char b1[256];
    *out = NULL;
    if (!fn) fn = "reverse_padded";
    if (x->ndim != 3)
        return usg_fail(USG_SHAPE, "%s: input must be 3-D (T, B, n), got %s", fn,
                        usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    usg_status s = usg_check_lengths(fn, lengths, x);
    usg_tensor *xc = NULL, *len = NULL;
    if (s == USG_OK) s = usg_contiguous(&xc, (usg_tensor *)x);
    if (s == USG_OK && lengths) s = usg_contiguous(&len, (usg_tensor *)lengths);
    if (s == USG_OK) s = usg_tensor_empty(out, x->dtype, 3, x->shape);
    if (s == USG_OK) reverse_rows(*out, xc, len ? usg_tensor_data(len) : NULL);
    usg_tensor_release(xc);
    usg_tensor_release(len);
    if (s != USG_OK) {
        usg_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

/* ==== topk ============================================================== */

/* Larger first; NaN counts as the smallest; equal values by lower index. */
static bool before(double a, int64_t ia, double b, int64_t ib)
{
    if (isnan(a)) return false;
    if (isnan(b)) return true;
    return a > b || (a == b && ia < ib);
}

/* vals[0..k), idx[0..k) <- the k best of row x[0..C) (k <= C), best first:
 * an insertion into a sorted list of k, O(C k), which for beam widths
 * (k <= 64) beats sorting the row. */
static void top_row(const usg_tensor *x, int64_t row, int64_t C, int64_t k, double *vals,
                    int64_t *idx)
{
    int64_t n = 0;
    for (int64_t c = 0; c < C; c++) {
        double v = usg_tensor_get_flat(x, row * C + c);
        if (n == k && !before(v, c, vals[k - 1], idx[k - 1])) continue;
        int64_t p = n < k ? n++ : k - 1;
        while (p > 0 && before(v, c, vals[p - 1], idx[p - 1])) {
            vals[p] = vals[p - 1];
            idx[p] = idx[p - 1];
            p--;
        }
        vals[p] = v;
        idx[p] = c;
    }
}

usg_status usg_topk(usg_tensor **values, usg_tensor **indices, const usg_tensor *x, int64_t k,
                    int base)
{
    char b[256];
    *values = *indices = NULL;
    if (!usg_dtype_is_float(x->dtype) || x->ndim != 2)
        return usg_fail(USG_SHAPE, "topk: x must be a 2-D f32 or f64 tensor (N, C), got %s %s",
                        usg_dtype_name(x->dtype), usg_shape_str(b, sizeof b, x->ndim, x->shape));
    int64_t N = x->shape[0], C = x->shape[1];
    if (k < 1 || k > C || k > 4096)
        return usg_fail(USG_ARG, "topk: k must be in [1, %lld] (the row length, at most 4096), got %lld",
                        (long long)(C < 4096 ? C : 4096), (long long)k);
    usg_tensor *xc = NULL;
    usg_status s = usg_contiguous(&xc, (usg_tensor *)x);
    if (s == USG_OK) s = usg_tensor_empty(values, x->dtype, 2, (int64_t[]){N, k});
    if (s == USG_OK) s = usg_tensor_empty(indices, USG_I32, 2, (int64_t[]){N, k});
    double *vals = s == USG_OK ? usg_alloc((size_t)k * sizeof *vals) : NULL;
    int64_t *idx = vals ? usg_alloc((size_t)k * sizeof *idx) : NULL;
    if (s == USG_OK && !idx) s = USG_NOMEM;
    for (int64_t r = 0; s == USG_OK && r < N; r++) {
        top_row(xc, r, C, k, vals, idx);
        for (int64_t j = 0; j < k; j++) {
            if (x->dtype == USG_F32) ((float *)usg_tensor_data(*values))[r * k + j] = (float)vals[j];
            else ((double *)usg_tensor_data(*values))[r * k + j] = vals[j];
            ((int32_t *)usg_tensor_data(*indices))[r * k + j] = (int32_t)(idx[j] + base);
        }
    }
    usg_free(vals);
    usg_free(idx);
    usg_tensor_release(xc);
    if (s != USG_OK) {
        usg_tensor_release(*values);
        usg_tensor_release(*indices);
        *values = *indices = NULL;
    }
    return s;
}

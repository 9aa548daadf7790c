/*
 * seq2seq.c -- the decoding kernel of the seq2seq plugin: the k largest
 * entries of each row, as beam search needs them (over the K x V scores of
 * every beam's extensions, flattened). Not differentiated: decoding only.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "usagi/lua.h"

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

usg_status usg_topk(usg_tensor **values, usg_tensor **indices, const usg_tensor *x, int64_t k)
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
            ((int32_t *)usg_tensor_data(*indices))[r * k + j] = (int32_t)(idx[j] + 1);
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

/*
 * usagi/recurrent.h -- small helpers that the fused recurrent kernels
 * (modules/rnn, lstm, gru) share: a matrix header over one time step of a
 * contiguous sequence, a bias broadcast into rows, column sums into a
 * bias gradient. Header-only (static inline), so a plugin links nothing
 * more for them.
 */
#ifndef USAGI_RECURRENT_H
#define USAGI_RECURRENT_H

#include <string.h>

#include "usagi/core.h"

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

#endif

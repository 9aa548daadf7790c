/*
 * gradcheck.h -- finite-difference check of a recorded op, for the C tests.
 *
 * f maps inputs (f64 tensors, some with requires_grad) to one output. The
 * check forms L = sum(out .* R) with fixed weights R (so every output
 * element matters and no symmetry hides an error), runs usg_backward, and
 * compares each input's .grad with the central difference
 *   (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)
 * element by element. Prints the first mismatch; returns 1 when all agree.
 */
#ifndef USAGI_TEST_GRADCHECK_H
#define USAGI_TEST_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include "usagi/autograd.h"
#include "testutil.h"

typedef usg_status (*gc_fn)(usg_tensor **out, usg_tensor **in, void *ctx);

/* L = sum(out .* R), R[i] = 1 + 0.1 * (i mod 7) */
static double gc_loss(usg_tensor *out)
{
    double L = 0;
    for (int64_t i = 0; i < usg_tensor_numel(out); i++)
        L += usg_tensor_get_flat(out, i) * (1 + 0.1 * (double)(i % 7));
    return L;
}

static int gradcheck(gc_fn f, int n, usg_tensor **in, void *ctx, double eps, double tol)
{
    usg_tensor *out = NULL, *w = NULL, *prod = NULL, *loss = NULL;
    for (int k = 0; k < n; k++) { usg_tensor_release(in[k]->grad); in[k]->grad = NULL; }
    if (f(&out, in, ctx) != USG_OK) { printf("gradcheck: forward failed: %s\n", usg_errmsg()); return 0; }
    if (usg_tensor_empty(&w, out->dtype, out->ndim, out->shape) != USG_OK) return 0;
    for (int64_t i = 0; i < usg_tensor_numel(w); i++)
        usg_store(w->dtype, w->storage->data, i, 1 + 0.1 * (double)(i % 7));
    int ok = usg_ad_binary(&prod, USG_MUL, out, w) == USG_OK &&
             usg_ad_sum(&loss, prod, USG_ALL_DIMS, false) == USG_OK &&
             usg_backward(loss, NULL, false) == USG_OK;
    if (!ok) printf("gradcheck: backward failed: %s\n", usg_errmsg());
    usg_tensor_release(out); usg_tensor_release(w); usg_tensor_release(prod); usg_tensor_release(loss);
    bool mode = usg_set_grad_enabled(false);
    for (int k = 0; k < n && ok; k++) {
        if (!in[k]->requires_grad) continue;
        usg_tensor *x = in[k];
        for (int64_t i = 0; i < usg_tensor_numel(x) && ok; i++) {
            int64_t off = x->offset;   /* inputs are contiguous */
            double *p = (double *)x->storage->data + off + i, x0 = *p, lp, lm;
            *p = x0 + eps; f(&out, in, ctx); lp = gc_loss(out); usg_tensor_release(out);
            *p = x0 - eps; f(&out, in, ctx); lm = gc_loss(out); usg_tensor_release(out);
            *p = x0;
            double num = (lp - lm) / (2 * eps);
            double ana = x->grad ? usg_tensor_get_flat(x->grad, i) : 0;
            if (fabs(num - ana) > tol * (1 + fabs(num))) {
                printf("gradcheck: input %d element %lld: analytic %.9g, numeric %.9g\n",
                       k, (long long)i, ana, num);
                ok = 0;
            }
        }
    }
    usg_set_grad_enabled(mode);
    return ok;
}

/* Allocation failure at every allocation of f's forward (each must be
 * USG_NOMEM with *out NULL) and then of the backward of sum(f(in)) (each
 * USG_NOMEM), leaking nothing either way; in[0..n) get their .grad cleared. */
static inline void ad_nomem_sweep(gc_fn f, usg_tensor **in, int n, void *ctx)
{
    size_t before = usg_alloc_live_bytes();
    for (long k = 1;; k++) {
        usg_tensor *y = (usg_tensor *)1;
        usg_alloc_fail_after(k);
        usg_status s = f(&y, in, ctx);
        usg_alloc_fail_after(0);
        if (s == USG_OK) { usg_tensor_release(y); break; }
        assert_int_equal(s, USG_NOMEM);
        assert_null(y);
        assert_int_equal(usg_alloc_live_bytes(), before);
    }
    assert_int_equal(usg_alloc_live_bytes(), before);
    for (long k = 1;; k++) {
        usg_tensor *y = NULL, *loss = NULL;
        assert_int_equal(f(&y, in, ctx), USG_OK);
        assert_int_equal(usg_ad_sum(&loss, y, USG_ALL_DIMS, false), USG_OK);
        usg_alloc_fail_after(k);
        usg_status s = usg_backward(loss, NULL, false);
        usg_alloc_fail_after(0);
        usg_tensor_release(loss);
        usg_tensor_release(y);
        for (int i = 0; i < n; i++) { usg_tensor_release(in[i]->grad); in[i]->grad = NULL; }
        assert_int_equal(usg_alloc_live_bytes(), before);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
    }
}

#endif

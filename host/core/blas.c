/*
 * blas.c -- matrix products through cblas (OpenBLAS): mm, bmm, matmul,
 * addmm and the in-place gemm that plugins call, and which BLAS that is.
 *
 * The one idea here: a 2-D operand whose rows are contiguous goes to gemm
 * as it is (NoTrans, ld = stride[0]); one whose columns are contiguous -- a
 * transposed view -- goes as Trans with ld = stride[1]. Only other layouts
 * (expanded, sliced in both dims) are copied. Results are row-major.
 */
#include <limits.h>
#include <string.h>
#include <cblas.h>

#include "internal.h"

/* One operand as gemm wants it: base pointer, trans flag and ld; `tmp` holds
 * a contiguous copy when the layout does not fit (release it after). */
typedef struct operand {
    const void *p;
    bool trans;
    int ld;
    usg_tensor *tmp;
} operand;

static usg_status operand_of(operand *o, const usg_tensor *x, bool trans)
{
    int64_t r = x->shape[0], c = x->shape[1];
    int64_t s0 = r == 1 ? (c > 0 ? c : 1) : x->stride[0];
    int64_t s1 = c == 1 ? 1 : x->stride[1];
    o->tmp = NULL;
    if (s1 == 1 && s0 >= (c > 1 ? c : 1) && s0 <= INT_MAX) {
        o->p = usg_tensor_data(x); o->trans = trans; o->ld = (int)s0;
        return USG_OK;
    }
    /* a transposed view: column j of x is contiguous in memory */
    s0 = r == 1 ? 1 : x->stride[0];
    s1 = c == 1 ? (r > 0 ? r : 1) : x->stride[1];
    if (s0 == 1 && s1 >= (r > 1 ? r : 1) && s1 <= INT_MAX) {
        o->p = usg_tensor_data(x); o->trans = !trans; o->ld = (int)s1;
        return USG_OK;
    }
    usg_status s = usg_contiguous(&o->tmp, (usg_tensor *)x);
    if (s != USG_OK) return s;
    o->p = usg_tensor_data(o->tmp); o->trans = trans; o->ld = (int)(c > 0 ? c : 1);
    return USG_OK;
}

/* c (M, N), row-major with leading dimension ldc: one cblas call. */
static void gemm_call(usg_dtype dt, const operand *a, const operand *b, int M, int N, int K,
                      double alpha, double beta, void *c, int ldc)
{
    enum CBLAS_TRANSPOSE ta = a->trans ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = b->trans ? CblasTrans : CblasNoTrans;
    if (dt == USG_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, (float)alpha, a->p, a->ld, b->p, b->ld,
                    (float)beta, c, ldc);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, a->p, a->ld, b->p, b->ld,
                    beta, c, ldc);
}

/* A product cut for the core's threads (parallel.c): blocks of BLOCK rows
 * of c (from a's rows) or BLOCK columns (from b's columns), whichever
 * dimension is longer; every block keeps the whole inner dimension K, so
 * each element is summed as the whole product would sum it. A part gets at
 * least PART_MNK multiply-adds, below which a split costs more than it
 * saves. */
#define BLOCK 16
#define PART_MNK (1 << 20)

typedef struct gemm_job {
    usg_dtype dt;
    operand a, b;
    int M, N, K, ldc;
    double alpha, beta;
    char *c;
    size_t es;
    bool rows;
} gemm_job;

static void gemm_part(void *ctx, int64_t lo, int64_t hi)
{
    const gemm_job *j = ctx;
    operand a = j->a, b = j->b;
    int first = (int)lo * BLOCK, end = (int)hi * BLOCK, len;
    char *c = j->c;
    if (j->rows) {                          /* rows first..end of c and of op(a) */
        if (end > j->M) end = j->M;
        len = end - first;
        a.p = (const char *)a.p + (a.trans ? (size_t)first : (size_t)first * a.ld) * j->es;
        c += (size_t)first * j->ldc * j->es;
        gemm_call(j->dt, &a, &b, len, j->N, j->K, j->alpha, j->beta, c, j->ldc);
    } else {                                /* columns first..end of c and of op(b) */
        if (end > j->N) end = j->N;
        len = end - first;
        b.p = (const char *)b.p + (b.trans ? (size_t)first * b.ld : (size_t)first) * j->es;
        c += (size_t)first * j->es;
        gemm_call(j->dt, &a, &b, j->M, len, j->K, j->alpha, j->beta, c, j->ldc);
    }
}

/* c (M, N), row-major with leading dimension ldc, on the core's threads. */
static void gemm_raw(usg_dtype dt, const operand *a, const operand *b, int M, int N, int K,
                     double alpha, double beta, void *c, int ldc)
{
    if (M == 0 || N == 0) return;
    gemm_job j = {dt, *a, *b, M, N, K, ldc, alpha, beta, c, usg_dtype_size(dt), M >= N};
    int64_t blocks = ((j.rows ? M : N) + BLOCK - 1) / BLOCK;
    int64_t block_mnk = (int64_t)BLOCK * (j.rows ? N : M) * (K > 0 ? K : 1);
    usg_parallel_for(blocks, (PART_MNK + block_mnk - 1) / block_mnk, gemm_part, &j);
}

static usg_status check_float(const char *fn, const char *arg, const usg_tensor *t, usg_dtype dt)
{
    if (!usg_dtype_is_float(t->dtype))
        return usg_fail(USG_TYPE, "%s: %s must be f32 or f64, got %s", fn, arg,
                        usg_dtype_name(t->dtype));
    if (t->dtype != dt)
        return usg_fail(USG_TYPE, "%s: %s is %s but the other operand is %s", fn, arg,
                        usg_dtype_name(t->dtype), usg_dtype_name(dt));
    return USG_OK;
}

static usg_status check_rank(const char *fn, const char *arg, const usg_tensor *t, int ndim)
{
    char b[256];
    if (t->ndim != ndim)
        return usg_fail(USG_SHAPE, "%s: %s must be %d-D, got %s", fn, arg, ndim,
                        usg_shape_str(b, sizeof b, t->ndim, t->shape));
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] > INT_MAX)
            return usg_fail(USG_SHAPE, "%s: %s is too large for BLAS (%s)", fn, arg,
                            usg_shape_str(b, sizeof b, t->ndim, t->shape));
    return USG_OK;
}

static usg_status inner_mismatch(const char *fn, const usg_tensor *a, const usg_tensor *b)
{
    char b1[256], b2[256];
    return usg_fail(USG_SHAPE, "%s: inner sizes differ: %s x %s", fn,
                    usg_shape_str(b1, sizeof b1, a->ndim, a->shape),
                    usg_shape_str(b2, sizeof b2, b->ndim, b->shape));
}

usg_status usg_gemm(usg_tensor *c, const usg_tensor *a, bool trans_a, const usg_tensor *b,
                    bool trans_b, double alpha, double beta)
{
    usg_status s;
    if ((s = check_rank("gemm", "a", a, 2)) || (s = check_rank("gemm", "b", b, 2)) ||
        (s = check_rank("gemm", "c", c, 2)))
        return s;
    if ((s = check_float("gemm", "c", c, c->dtype)) || (s = check_float("gemm", "a", a, c->dtype)) ||
        (s = check_float("gemm", "b", b, c->dtype)))
        return s;
    int64_t M = trans_a ? a->shape[1] : a->shape[0], K = trans_a ? a->shape[0] : a->shape[1];
    int64_t Kb = trans_b ? b->shape[1] : b->shape[0], N = trans_b ? b->shape[0] : b->shape[1];
    if (K != Kb) return inner_mismatch("gemm", a, b);
    if (c->shape[0] != M || c->shape[1] != N || !usg_tensor_is_contiguous(c)) {
        char b1[256];
        return usg_fail(USG_SHAPE, "gemm: c must be a contiguous (%lld, %lld), got %s%s",
                        (long long)M, (long long)N, usg_shape_str(b1, sizeof b1, c->ndim, c->shape),
                        usg_tensor_is_contiguous(c) ? "" : " (not contiguous)");
    }
    operand oa, ob;
    if ((s = operand_of(&oa, a, trans_a)) != USG_OK) return s;
    if ((s = operand_of(&ob, b, trans_b)) != USG_OK) { usg_tensor_release(oa.tmp); return s; }
    if (K == 0 && beta == 0) usg_fill_(c, 0);        /* an empty sum: 0, whatever c held */
    else if (K == 0) s = usg_binary_scalar_(c, USG_MUL, beta);   /* allocates: may fail */
    else {
        gemm_raw(c->dtype, &oa, &ob, (int)M, (int)N, (int)K, alpha, beta,
                 usg_tensor_data(c), N > 0 ? (int)N : 1);
        c->storage->version++;
    }
    usg_tensor_release(oa.tmp);
    usg_tensor_release(ob.tmp);
    return s;
}

usg_status usg_mm(usg_tensor **out, const usg_tensor *a, const usg_tensor *b)
{
    usg_status s;
    *out = NULL;
    if ((s = check_rank("mm", "a", a, 2)) || (s = check_rank("mm", "b", b, 2))) return s;
    if ((s = check_float("mm", "a", a, a->dtype)) || (s = check_float("mm", "b", b, a->dtype)))
        return s;
    if (a->shape[1] != b->shape[0]) return inner_mismatch("mm", a, b);
    int64_t shape[2] = {a->shape[0], b->shape[1]};
    if ((s = usg_tensor_empty(out, a->dtype, 2, shape)) != USG_OK) return s;
    if ((s = usg_gemm(*out, a, false, b, false, 1, 0)) != USG_OK) {
        usg_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

usg_status usg_bmm(usg_tensor **out, const usg_tensor *a, const usg_tensor *b)
{
    usg_status s;
    *out = NULL;
    if ((s = check_rank("bmm", "a", a, 3)) || (s = check_rank("bmm", "b", b, 3))) return s;
    if ((s = check_float("bmm", "a", a, a->dtype)) || (s = check_float("bmm", "b", b, a->dtype)))
        return s;
    if (a->shape[0] != b->shape[0] || a->shape[2] != b->shape[1]) {
        char b1[256], b2[256];
        return usg_fail(USG_SHAPE, "bmm: expected (B, n, k) x (B, k, m), got %s x %s",
                        usg_shape_str(b1, sizeof b1, a->ndim, a->shape),
                        usg_shape_str(b2, sizeof b2, b->ndim, b->shape));
    }
    int64_t B = a->shape[0], n = a->shape[1], m = b->shape[2];
    int64_t shape[3] = {B, n, m};
    if ((s = usg_tensor_zeros(out, a->dtype, 3, shape)) != USG_OK) return s;
    size_t es = usg_dtype_size(a->dtype);
    for (int64_t i = 0; i < B; i++) {
        /* 2-D headers on the stack: views without allocation */
        usg_tensor ai = *a, bi = *b;
        ai.ndim = bi.ndim = 2;
        ai.offset += i * a->stride[0];
        bi.offset += i * b->stride[0];
        memmove(ai.shape, a->shape + 1, 2 * sizeof *ai.shape);
        memmove(ai.stride, a->stride + 1, 2 * sizeof *ai.stride);
        memmove(bi.shape, b->shape + 1, 2 * sizeof *bi.shape);
        memmove(bi.stride, b->stride + 1, 2 * sizeof *bi.stride);
        operand oa, ob;
        if ((s = operand_of(&oa, &ai, false)) != USG_OK) break;
        if ((s = operand_of(&ob, &bi, false)) != USG_OK) { usg_tensor_release(oa.tmp); break; }
        gemm_raw(a->dtype, &oa, &ob, (int)n, (int)m, (int)a->shape[2], 1, 0,
                 (char *)usg_tensor_data(*out) + (size_t)(i * n * m) * es, m > 0 ? (int)m : 1);
        usg_tensor_release(oa.tmp);
        usg_tensor_release(ob.tmp);
    }
    if (s != USG_OK) { usg_tensor_release(*out); *out = NULL; }
    return s;
}

/* Batched matmul of a (..., n, k) and b (..., k, m) with broadcast batch
 * dims. When b is 2-D and a's batch dims fold into rows, it is one gemm. */
static usg_status matmul_nd(usg_tensor **out, usg_tensor *a, usg_tensor *b)
{
    usg_status s;
    int na = a->ndim, nb = b->ndim;
    int64_t n = a->shape[na - 2], k = a->shape[na - 1], m = b->shape[nb - 1];
    if (b->shape[nb - 2] != k) return inner_mismatch("matmul", a, b);
    int nbatch;
    int64_t batch[USG_MAX_DIMS], shape[USG_MAX_DIMS];
    if ((s = usg_broadcast_shape(&nbatch, batch, na - 2, a->shape, nb - 2, b->shape)) != USG_OK)
        return usg_fail(s, "matmul: batch dims do not broadcast: %s", usg_errmsg());
    int64_t B = 1;
    for (int d = 0; d < nbatch; d++) B *= batch[d];
    memcpy(shape, batch, (size_t)nbatch * sizeof *shape);
    shape[nbatch] = n; shape[nbatch + 1] = m;
    usg_tensor *a3 = NULL, *b3 = NULL, *r = NULL;
    if (nb == 2) {
        int64_t rows[2] = {B * n, k};
        usg_tensor *ae = NULL;
        int64_t ashape[USG_MAX_DIMS];
        memcpy(ashape, batch, (size_t)nbatch * sizeof *ashape);
        ashape[nbatch] = n; ashape[nbatch + 1] = k;
        if ((s = usg_expand(&ae, a, nbatch + 2, ashape)) == USG_OK &&
            (s = usg_reshape(&a3, ae, 2, rows)) == USG_OK &&
            (s = usg_mm(&r, a3, b)) == USG_OK)
            s = usg_view(out, r, nbatch + 2, shape);
        usg_tensor_release(ae);
    } else {
        int64_t ashape[USG_MAX_DIMS], bshape[USG_MAX_DIMS];
        usg_tensor *ae = NULL, *be = NULL;
        memcpy(ashape, batch, (size_t)nbatch * sizeof *ashape);
        memcpy(bshape, batch, (size_t)nbatch * sizeof *bshape);
        ashape[nbatch] = n; ashape[nbatch + 1] = k;
        bshape[nbatch] = k; bshape[nbatch + 1] = m;
        int64_t a3s[3] = {B, n, k}, b3s[3] = {B, k, m};
        if ((s = usg_expand(&ae, a, nbatch + 2, ashape)) == USG_OK &&
            (s = usg_expand(&be, b, nbatch + 2, bshape)) == USG_OK &&
            (s = usg_reshape(&a3, ae, 3, a3s)) == USG_OK &&
            (s = usg_reshape(&b3, be, 3, b3s)) == USG_OK &&
            (s = usg_bmm(&r, a3, b3)) == USG_OK)
            s = usg_view(out, r, nbatch + 2, shape);
        usg_tensor_release(ae);
        usg_tensor_release(be);
    }
    usg_tensor_release(a3);
    usg_tensor_release(b3);
    usg_tensor_release(r);
    return s;
}

usg_status usg_matmul(usg_tensor **out, const usg_tensor *a, const usg_tensor *b)
{
    usg_status s;
    *out = NULL;
    if (a->ndim == 0 || b->ndim == 0)
        return usg_fail(USG_SHAPE, "matmul: both operands need at least 1 dim, got %d-D and %d-D",
                        a->ndim, b->ndim);
    if ((s = check_float("matmul", "a", a, a->dtype)) || (s = check_float("matmul", "b", b, a->dtype)))
        return s;
    /* 1-D operands: a row vector on the left, a column vector on the right;
     * the added dim is removed from the result. */
    usg_tensor *a2 = NULL, *b2 = NULL, *r = NULL;
    if (a->ndim == 1) s = usg_unsqueeze(&a2, (usg_tensor *)a, 0);
    else { usg_tensor_retain((usg_tensor *)a); a2 = (usg_tensor *)a; }
    if (s == USG_OK) {
        if (b->ndim == 1) s = usg_unsqueeze(&b2, (usg_tensor *)b, 1);
        else { usg_tensor_retain((usg_tensor *)b); b2 = (usg_tensor *)b; }
    }
    if (s == USG_OK) {
        if (a2->ndim == 2 && b2->ndim == 2) {
            s = a2->shape[1] == b2->shape[0] ? usg_mm(&r, a2, b2) : inner_mismatch("matmul", a, b);
        } else {
            s = matmul_nd(&r, a2, b2);
        }
    }
    if (s == USG_OK) {
        usg_tensor *t = NULL;
        if (a->ndim == 1) { s = usg_squeeze(&t, r, r->ndim - 2); usg_tensor_release(r); r = t; }
        if (s == USG_OK && b->ndim == 1) {
            s = usg_squeeze(&t, r, r->ndim - 1); usg_tensor_release(r); r = t;
        }
    }
    usg_tensor_release(a2);
    usg_tensor_release(b2);
    if (s == USG_OK) *out = r;
    else usg_tensor_release(r);
    return s;
}

usg_status usg_addmm(usg_tensor **out, const usg_tensor *c, const usg_tensor *a,
                     const usg_tensor *b, double beta, double alpha)
{
    usg_status s;
    *out = NULL;
    if ((s = check_rank("addmm", "a", a, 2)) || (s = check_rank("addmm", "b", b, 2))) return s;
    if ((s = check_float("addmm", "a", a, a->dtype)) || (s = check_float("addmm", "b", b, a->dtype)) ||
        (s = check_float("addmm", "c", c, a->dtype)))
        return s;
    if (a->shape[1] != b->shape[0]) return inner_mismatch("addmm", a, b);
    int64_t shape[2] = {a->shape[0], b->shape[1]}, bshape[USG_MAX_DIMS];
    int bnd;
    /* check c before allocating, so that a failure of copy_ below can only
     * be an allocation failure and is reported as one */
    if (usg_broadcast_shape(&bnd, bshape, c->ndim, c->shape, 2, shape) != USG_OK || bnd != 2 ||
        bshape[0] != shape[0] || bshape[1] != shape[1]) {
        char b1[256];
        return usg_fail(USG_SHAPE, "addmm: c %s does not broadcast to the product's (%lld, %lld)",
                        usg_shape_str(b1, sizeof b1, c->ndim, c->shape),
                        (long long)shape[0], (long long)shape[1]);
    }
    if ((s = usg_tensor_empty(out, a->dtype, 2, shape)) != USG_OK) return s;
    if ((s = usg_copy_(*out, c)) == USG_OK)
        s = usg_gemm(*out, a, false, b, false, alpha, beta);
    if (s != USG_OK) { usg_tensor_release(*out); *out = NULL; }
    return s;
}

/* The binding reports these in usagi.blas_info() and a run's provenance; it
 * asks here so that only the core links OpenBLAS. */
const char *usg_blas_config(void) { return openblas_get_config(); }
const char *usg_blas_core(void) { return openblas_get_corename(); }

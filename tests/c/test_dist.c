/*
 * test_dist.c -- cmocka tests of host/dist/dist.c, written for any number of
 * ranks: ctest runs it alone (rank 0 of 1: every collective is the identity)
 * and under `mpirun -np 2` (tests/mpi/mpirun.sh). Rank r contributes values
 * made from r, so the expected sums are sum_{r<R} f(r), computed here.
 * Also: the bucketed allreduce of many tensors of mixed dtypes and sizes
 * (some packed together, some alone), and every error path.
 */
#include <stdlib.h>

#include "testutil.h"
#include "usagi/dist.h"
#include "usagi/autograd.h"

static int R, r;

static int setup(void **state)
{
    (void)state;
    if (usg_dist_init() != USG_OK) return -1;
    R = usg_dist_size(), r = usg_dist_rank();
    return 0;
}

static usg_tensor *filled(usg_dtype dt, int64_t n, double v)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_full(&t, dt, 1, SHAPE(n), v), USG_OK);
    return t;
}

static void all_equal(const usg_tensor *t, double v)
{
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) near(usg_tensor_get_flat(t, i), v, 0);
}

static void test_rank_size(void **state)
{
    (void)state;
    assert_true(R >= 1 && r >= 0 && r < R);
    assert_int_equal(usg_dist_barrier(), USG_OK);
    if (R > 1) assert_true(usg_dist_active());
    assert_true(usg_dist_compiled() || R == 1);
}

static void test_allreduce(void **state)
{
    (void)state;
    usg_tensor *a = filled(USG_F32, 5, r + 1), *b = filled(USG_F64, 3, 2 * r),
               *c = filled(USG_I32, 4, r);
    assert_int_equal(usg_dist_allreduce(a, USG_DIST_SUM), USG_OK);
    all_equal(a, R * (R + 1) / 2.0);
    assert_int_equal(usg_dist_allreduce(b, USG_DIST_MEAN), USG_OK);
    all_equal(b, R - 1.0);                             /* mean of 2r over r < R */
    assert_int_equal(usg_dist_allreduce(c, USG_DIST_SUM), USG_OK);
    all_equal(c, R * (R - 1) / 2.0);
    drop(a), drop(b), drop(c);
}

static void test_broadcast(void **state)
{
    (void)state;
    usg_tensor *a = filled(USG_F32, 7, 10 + r);
    assert_int_equal(usg_dist_broadcast(a, R - 1), USG_OK);
    all_equal(a, 10 + R - 1);
    drop(a);
}

/* 6 tensors of f32, f64 and f32 with a 64-byte cap: the first two f32 of
 * 8 bytes share a bucket, the f64 starts another, the 400-byte f32 is alone
 * (in place), the last two f32 share one: 4 buckets with 2 ranks. */
static void test_allreduce_many(void **state)
{
    (void)state;
    usg_tensor *t[7] = {filled(USG_F32, 2, r), filled(USG_F32, 2, 2 * r), filled(USG_F64, 3, r),
                        filled(USG_F32, 100, 3 * r), NULL, filled(USG_F32, 1, r + 0.5),
                        filled(USG_F32, 4, 1)};
    assert_int_equal(usg_dist_allreduce_many(t, 7, USG_DIST_MEAN, 64), USG_OK);
    double m = (R - 1) / 2.0;                          /* mean of r over r < R */
    all_equal(t[0], m), all_equal(t[1], 2 * m), all_equal(t[2], m), all_equal(t[3], 3 * m);
    all_equal(t[5], m + 0.5), all_equal(t[6], 1);
    assert_int_equal(usg_dist_last_buckets(), R > 1 ? 4 : 0);
    for (int i = 0; i < 7; i++) drop(t[i]);
}

/* The reducer over w (4 f32) and v (300 f32: 1200 bytes, alone with a
 * 1 KiB cap): loss = sum(w * (r + 1)) + sum(v * v) gives
 * dw = r + 1, dv = 2v = 2; averaged: dw = (R + 1) / 2, dv = 2. Both
 * buckets start inside the backward on R > 1 ranks. */
static void test_reducer(void **state)
{
    (void)state;
    usg_tensor *w = filled(USG_F32, 4, 1), *v = filled(USG_F32, 300, 1);
    w->requires_grad = v->requires_grad = true;
    usg_dist_reducer *red = NULL;
    assert_int_equal(usg_dist_reducer_new(&red, (usg_tensor *[]){w, v}, 2, 1024), USG_OK);
    assert_int_equal(usg_dist_reducer_buckets(red), 2);
    for (int step = 0; step < 2; step++) {
        usg_tensor *a = NULL, *b = NULL, *c = NULL, *sa = NULL, *sb = NULL, *loss = NULL;
        assert_int_equal(usg_ad_binary_scalar(&a, USG_MUL, w, r + 1, false), USG_OK);
        assert_int_equal(usg_ad_binary(&b, USG_MUL, v, v), USG_OK);
        assert_int_equal(usg_ad_sum(&sa, a, USG_ALL_DIMS, false), USG_OK);
        assert_int_equal(usg_ad_sum(&sb, b, USG_ALL_DIMS, false), USG_OK);
        assert_int_equal(usg_ad_binary(&c, USG_ADD, sa, sb), USG_OK);
        assert_int_equal(usg_ad_binary_scalar(&loss, USG_MUL, c, 1, false), USG_OK);
        usg_tensor_release(w->grad), usg_tensor_release(v->grad);
        w->grad = v->grad = NULL;
        assert_int_equal(usg_dist_reducer_begin(red), USG_OK);
        assert_int_equal(usg_backward(loss, NULL, false), USG_OK);
        assert_int_equal(usg_dist_reducer_finish(red), USG_OK);
        all_equal(w->grad, (R + 1) / 2.0);
        all_equal(v->grad, 2);
        assert_int_equal(usg_dist_reducer_early(red), R > 1 ? 2 : 0);
        drop(a), drop(b), drop(c), drop(sa), drop(sb), drop(loss);
    }
    /* finish without begin: everything at once; a parameter without a
     * gradient gets zeros (on R > 1) */
    usg_tensor_release(v->grad);
    v->grad = NULL;
    assert_int_equal(usg_dist_reducer_finish(red), USG_OK);
    all_equal(w->grad, (R + 1) / 2.0);
    if (R > 1) all_equal(v->grad, 0);
    usg_dist_reducer_free(red);
    expect_err(usg_dist_reducer_new(&red, (usg_tensor *[]){w, v, w}, 3, 0), USG_ARG,
               "params[3] is params[1] again");
    usg_tensor *i = filled(USG_I32, 2, 1);
    expect_err(usg_dist_reducer_new(&red, (usg_tensor *[]){w, i}, 2, 0), USG_TYPE,
               "params[2] is i32");
    expect_err(usg_dist_reducer_new(&red, NULL, 2, 0), USG_ARG, "bad parameter list");
    assert_null(red);
    drop(i), drop(w), drop(v);
}

static void test_errors(void **state)
{
    (void)state;
    usg_tensor *a = filled(USG_F32, 3, 0), *i = filled(USG_I32, 2, 1), *b = NULL;
    assert_int_equal(usg_tensor_zeros(&b, USG_F32, 2, SHAPE(2, 3)), USG_OK);
    usg_tensor *at = transposed(b);
    expect_err(usg_dist_allreduce(at, USG_DIST_SUM), USG_ARG, "dist.allreduce: the tensor must be contiguous");
    expect_err(usg_dist_broadcast(at, 0), USG_ARG, "must be contiguous");
    expect_err(usg_dist_allreduce(i, USG_DIST_MEAN), USG_TYPE, "mean needs an f32 or f64 tensor, got i32");
    expect_err(usg_dist_allreduce(a, (usg_dist_op)7), USG_ARG, "op must be sum or mean, got 7");
    expect_err(usg_dist_broadcast(a, R), USG_ARG, "root must be a rank");
    expect_err(usg_dist_broadcast(a, -1), USG_ARG, "root must be a rank");
    expect_err(usg_dist_broadcast(NULL, 0), USG_ARG, "the tensor is NULL");
    expect_err(usg_dist_allreduce_many(NULL, 2, USG_DIST_SUM, 0), USG_ARG, "bad tensor list");
    assert_int_equal(usg_dist_allreduce_many(NULL, 0, USG_DIST_SUM, 0), USG_OK);
    drop(at), drop(a), drop(i);
}

/* The timeout: 300 s unless USAGI_DIST_TIMEOUT says otherwise; 0 means
 * none; the barriers pass at once with any (every rank is there). */
static void test_timeout(void **state)
{
    (void)state;
    double before = usg_dist_timeout();
    const char *env = getenv("USAGI_DIST_TIMEOUT");
    if (!env) near(before, 300, 0);
    assert_int_equal(usg_dist_set_timeout(0.25), USG_OK);
    near(usg_dist_timeout(), 0.25, 0);
    assert_int_equal(usg_dist_barrier(), USG_OK);
    assert_int_equal(usg_dist_set_timeout(0), USG_OK);
    assert_int_equal(usg_dist_barrier(), USG_OK);
    expect_err(usg_dist_set_timeout(-1), USG_ARG,
               "dist.set_timeout: seconds must be a number of seconds >= 0 (0: wait forever), got -1");
    expect_err(usg_dist_set_timeout(NAN), USG_ARG, "got nan");
    expect_err(usg_dist_set_timeout(INFINITY), USG_ARG, "got inf");
    near(usg_dist_timeout(), 0, 0);
    assert_int_equal(usg_dist_set_timeout(before), USG_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_size), cmocka_unit_test(test_allreduce),
        cmocka_unit_test(test_broadcast), cmocka_unit_test(test_allreduce_many),
        cmocka_unit_test(test_reducer), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_timeout),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

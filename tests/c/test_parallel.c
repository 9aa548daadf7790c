/*
 * test_parallel.c -- cmocka tests of host/core/parallel.c: every iteration
 * runs exactly once for any length, grain and thread count; parts are never
 * smaller than the grain; a loop started inside a running one runs on its
 * caller; the thread count is checked and read back; an optimizer step,
 * cross-entropy and column sums split over threads give the bits of one
 * thread; a product cut over threads gives the same bits on its count.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <cblas.h>

#include "testutil.h"
#include "usagi/autograd.h"
#include "usagi/optim.h"

typedef struct count_job {
    _Atomic int *hits;
    atomic_int parts;
    atomic_llong smallest;
    int64_t grain, n;
} count_job;

static void count_range(void *ctx, int64_t lo, int64_t hi)
{
    count_job *j = ctx;
    for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
    atomic_fetch_add(&j->parts, 1);
    long long len = hi - lo, cur = atomic_load(&j->smallest);
    while (len < cur && !atomic_compare_exchange_weak(&j->smallest, &cur, len)) {}
}

static void test_covers_once(void **state)
{
    (void)state;
    const int64_t lens[] = {1, 2, 3, 7, 100, 4097, 100003};
    const int64_t grains[] = {1, 5, 1000, 1 << 20};
    for (int threads = 1; threads <= 4; threads++) {
        assert_int_equal(usg_set_num_threads(threads), USG_OK);
        assert_int_equal(usg_get_num_threads(), threads);
        for (size_t a = 0; a < sizeof lens / sizeof *lens; a++)
            for (size_t b = 0; b < sizeof grains / sizeof *grains; b++) {
                int64_t n = lens[a];
                count_job j = {.grain = grains[b], .n = n};
                j.hits = calloc((size_t)n, sizeof *j.hits);
                atomic_init(&j.parts, 0);
                atomic_init(&j.smallest, (long long)n);
                usg_parallel_for(n, grains[b], count_range, &j);
                for (int64_t i = 0; i < n; i++) assert_int_equal(j.hits[i], 1);
                int parts = atomic_load(&j.parts);
                assert_true(parts >= 1 && parts <= threads);
                if (parts > 1) assert_true(atomic_load(&j.smallest) >= grains[b]);
                if (n >= 4 * grains[b] * threads) assert_int_equal(parts, threads);
                free(j.hits);
            }
    }
    usg_parallel_for(0, 1, count_range, NULL);     /* nothing to do: fn is not called */
}

/* A loop inside a part: run by the caller alone, still complete. */
typedef struct nest_job { _Atomic int *hits; } nest_job;

static void inner_range(void *ctx, int64_t lo, int64_t hi)
{
    nest_job *j = ctx;
    for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
}

static void outer_range(void *ctx, int64_t lo, int64_t hi)
{
    for (int64_t k = lo; k < hi; k++) usg_parallel_for(1000, 1, inner_range, ctx);
}

static void test_nested(void **state)
{
    (void)state;
    assert_int_equal(usg_set_num_threads(2), USG_OK);
    nest_job j = {calloc(1000, sizeof(_Atomic int))};
    usg_parallel_for(8, 1, outer_range, &j);
    for (int i = 0; i < 1000; i++) assert_int_equal(j.hits[i], 8);
    free(j.hits);
}

static void test_thread_count_checked(void **state)
{
    (void)state;
    assert_int_equal(usg_set_num_threads(2), USG_OK);
    assert_int_equal(usg_set_num_threads(0), USG_ARG);
    assert_non_null(strstr(usg_errmsg(), "set_num_threads: threads must be in 1..1024, got 0"));
    assert_int_equal(usg_set_num_threads(5000), USG_ARG);
    assert_int_equal(usg_get_num_threads(), 2);
    assert_int_equal(openblas_get_num_threads(), 1);     /* OpenBLAS runs inside our threads */
}

/* Adam and SGD over 300,001 parameters (split when threads > 1): the same
 * bits on 1, 2 and 3 threads. */
static void test_optim_same_bits(void **state)
{
    (void)state;
    const int64_t n = 300001;
    float *want = NULL;
    for (int threads = 1; threads <= 3; threads++) {
        assert_int_equal(usg_set_num_threads(threads), USG_OK);
        usg_tensor *p, *g, *m, *v;
        assert_int_equal(usg_tensor_empty(&p, USG_F32, 1, SHAPE(n)), USG_OK);
        assert_int_equal(usg_tensor_empty(&g, USG_F32, 1, SHAPE(n)), USG_OK);
        assert_int_equal(usg_tensor_zeros(&m, USG_F32, 1, SHAPE(n)), USG_OK);
        assert_int_equal(usg_tensor_zeros(&v, USG_F32, 1, SHAPE(n)), USG_OK);
        float *pv = usg_tensor_data(p), *gv = usg_tensor_data(g);
        for (int64_t i = 0; i < n; i++) {
            pv[i] = sinf((float)i);
            gv[i] = cosf((float)i * 0.37f);
        }
        usg_adam_opts ao = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
        usg_sgd_opts so = {.lr = 0.5};
        for (int64_t step = 1; step <= 3; step++) {
            assert_int_equal(usg_adam_step(p, g, m, v, NULL, step, &ao), USG_OK);
            assert_int_equal(usg_sgd_step(p, g, NULL, step, &so), USG_OK);
        }
        if (!want) {
            want = malloc((size_t)n * sizeof *want);
            memcpy(want, pv, (size_t)n * sizeof *want);
        } else {
            assert_memory_equal(pv, want, (size_t)n * sizeof *want);
        }
        usg_tensor_release(p);
        usg_tensor_release(g);
        usg_tensor_release(m);
        usg_tensor_release(v);
    }
    free(want);
}

/* cross_entropy's rows split over threads (C large enough for one row a
 * part): loss and gradient with the bits of one thread, with an ignored row. */
static void test_cross_entropy_same_bits(void **state)
{
    (void)state;
    const int64_t N = 9, C = 70001;
    float want_loss = 0, *want_grad = malloc((size_t)(N * C) * sizeof(float));
    for (int threads = 1; threads <= 3; threads++) {
        assert_int_equal(usg_set_num_threads(threads), USG_OK);
        usg_tensor *x, *t, *loss = NULL;
        assert_int_equal(usg_tensor_empty(&x, USG_F32, 2, SHAPE(N, C)), USG_OK);
        assert_int_equal(usg_tensor_empty(&t, USG_I32, 1, SHAPE(N)), USG_OK);
        float *xv = usg_tensor_data(x);
        for (int64_t i = 0; i < N * C; i++) xv[i] = 3 * sinf((float)i * 0.013f);
        for (int64_t i = 0; i < N; i++) ((int32_t *)usg_tensor_data(t))[i] = (int32_t)(i * 7919 % C);
        ((int32_t *)usg_tensor_data(t))[4] = -100;
        x->requires_grad = true;
        assert_int_equal(usg_ad_cross_entropy(&loss, x, t, NULL, -100, USG_REDUCE_MEAN, 0), USG_OK);
        assert_int_equal(usg_backward(loss, NULL, false), USG_OK);
        float l = *(float *)usg_tensor_data(loss);
        const float *g = usg_tensor_data(x->grad);
        if (threads == 1) {
            want_loss = l;
            memcpy(want_grad, g, (size_t)(N * C) * sizeof(float));
        } else {
            assert_memory_equal(&l, &want_loss, sizeof l);
            assert_memory_equal(g, want_grad, (size_t)(N * C) * sizeof(float));
        }
        usg_tensor_release(loss);
        usg_tensor_release(x);
        usg_tensor_release(t);
    }
    free(want_grad);
}

/* A bias gradient's column sums ((400, 10001) over dim 0), columns split
 * over threads: the bits of one thread. */
static void test_column_sums_same_bits(void **state)
{
    (void)state;
    float *want = malloc(10001 * sizeof *want);
    usg_tensor *x;
    assert_int_equal(usg_tensor_empty(&x, USG_F32, 2, SHAPE(400, 10001)), USG_OK);
    float *xv = usg_tensor_data(x);
    for (int64_t i = 0; i < 400 * 10001; i++) xv[i] = sinf((float)i * 0.7f) * 1e3f;
    for (int threads = 1; threads <= 3; threads++) {
        assert_int_equal(usg_set_num_threads(threads), USG_OK);
        usg_tensor *y;
        assert_int_equal(usg_sum(&y, x, 0, false), USG_OK);
        if (threads == 1) memcpy(want, usg_tensor_data(y), 10001 * sizeof *want);
        else assert_memory_equal(usg_tensor_data(y), want, 10001 * sizeof *want);
        usg_tensor_release(y);
    }
    usg_tensor_release(x);
    free(want);
}

/* Products cut over threads (blas.c): the parts depend on the thread count
 * alone, so a product gives the same bits every time on a count -- also
 * when it runs inside another loop, its parts then one after another --
 * and on another count the same values up to the last bits. Shapes of PTB
 * small: a step (20x200 times 200x800, cut by columns) and the decoder's
 * input gradient (400x1000 times 1000x200, cut by rows). */
typedef struct mm_job { usg_tensor *c, *a, *b; bool tb; } mm_job;

static void mm_inside(void *ctx, int64_t lo, int64_t hi)
{
    mm_job *j = ctx;
    (void)hi;
    if (lo == 0)          /* one part computes; the other keeps the loop running */
        assert_int_equal(usg_gemm(j->c, j->a, false, j->b, j->tb, 1, 0), USG_OK);
}

static void fill_sin(usg_tensor *t, float f)
{
    float *v = usg_tensor_data(t);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) v[i] = sinf((float)i * f);
}

static void test_product_bits(void **state)
{
    (void)state;
    const int64_t shapes[2][3] = {{20, 200, 800}, {400, 1000, 200}};   /* M, K, N */
    for (int k = 0; k < 2; k++) {
        int64_t M = shapes[k][0], K = shapes[k][1], N = shapes[k][2];
        bool tb = k == 0;                   /* the step reads W (N, K) transposed */
        usg_tensor *a, *b, *c1, *c2, *c3;
        assert_int_equal(usg_tensor_empty(&a, USG_F32, 2, SHAPE(M, K)), USG_OK);
        assert_int_equal(usg_tensor_empty(&b, USG_F32, 2, tb ? SHAPE(N, K) : SHAPE(K, N)), USG_OK);
        fill_sin(a, 0.37f);
        fill_sin(b, 0.11f);
        usg_tensor **cs[3] = {&c1, &c2, &c3};
        for (int i = 0; i < 3; i++)
            assert_int_equal(usg_tensor_zeros(cs[i], USG_F32, 2, SHAPE(M, N)), USG_OK);
        assert_int_equal(usg_set_num_threads(2), USG_OK);
        assert_int_equal(usg_gemm(c1, a, false, b, tb, 1, 0), USG_OK);
        mm_job j = {c2, a, b, tb};
        usg_parallel_for(2, 1, mm_inside, &j);       /* nested: its parts in a row */
        assert_memory_equal(usg_tensor_data(c1), usg_tensor_data(c2), (size_t)(M * N) * 4);
        assert_int_equal(usg_set_num_threads(1), USG_OK);
        assert_int_equal(usg_gemm(c3, a, false, b, tb, 1, 0), USG_OK);
        const float *x = usg_tensor_data(c1), *y = usg_tensor_data(c3);
        for (int64_t i = 0; i < M * N; i++)
            assert_true(fabsf(x[i] - y[i]) <= 1e-5f * (1 + fabsf(y[i])));
        for (int i = 0; i < 3; i++) usg_tensor_release(*cs[i]);
        usg_tensor_release(a);
        usg_tensor_release(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_covers_once),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_thread_count_checked),
        cmocka_unit_test(test_optim_same_bits),
        cmocka_unit_test(test_cross_entropy_same_bits),
        cmocka_unit_test(test_column_sums_same_bits),
        cmocka_unit_test(test_product_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

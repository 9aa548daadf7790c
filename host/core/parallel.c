/*
 * parallel.c -- the core's own threads, for the loops OpenBLAS does not
 * run: usg_parallel_for splits a range of independent iterations (each
 * writes only its own elements: an optimizer's update, the rows of a
 * softmax) between the calling thread and a small pool of workers.
 *
 * Results never depend on the number of threads: a part [lo, hi) is
 * computed exactly as the one-thread loop computes those iterations, and
 * loops whose iterations combine (a sum over all elements) are not split.
 * So the determinism contract (same seed and thread count, same bits) holds
 * with any count, and a run on 2 threads repeats a run on 1.
 *
 * The thread count is the one OpenBLAS uses (usg_set_num_threads sets
 * both); the workers start on the first loop that needs them and sleep on a
 * condition variable in between (they never spin: the cores are OpenBLAS's
 * while a product runs). A loop started while another runs, or from a
 * worker, runs on its caller alone.
 */
#include <pthread.h>
#include <stdbool.h>
#include <cblas.h>

#include "internal.h"

#define MAX_THREADS 64

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    int threads;             /* threads a loop may use (the caller's included); 0: not yet read */
    int workers;             /* workers started */
    bool busy;               /* a loop is running */
    uint64_t gen;            /* bumped for each loop handed to the workers */
    usg_range_fn fn;         /* the current loop: fn(ctx, lo, hi) over parts of [0, n) */
    void *ctx;
    int64_t n;
    int parts, pending;      /* parts of the loop; those not finished yet */
    uint64_t born[MAX_THREADS];  /* gen when each worker was started */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

/* Part k of [0, n) cut in `parts` near-equal contiguous ranges. */
static int64_t cut(int64_t n, int parts, int k) { return n / parts * k + (n % parts) * k / parts; }

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;     /* 1 .. MAX_THREADS - 1; the caller runs part 0 */
    pthread_mutex_lock(&pool.mu);
    uint64_t seen = pool.born[id];   /* loops after it are this worker's, the next included */
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.gen;
        if (id >= pool.parts) continue;
        usg_range_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int64_t lo = cut(pool.n, pool.parts, id), hi = cut(pool.n, pool.parts, id + 1);
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, lo, hi);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* A child of fork() has none of the workers: it starts its own. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.work, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.workers = 0;
    pool.busy = false;
}

/* Start workers up to want - 1 (mutex held); the number running after. */
static int start_workers(int want)
{
    static bool registered;
    if (!registered) { pthread_atfork(NULL, NULL, after_fork_child); registered = true; }
    if (want > MAX_THREADS) want = MAX_THREADS;
    while (pool.workers < want - 1) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pool.born[pool.workers + 1] = pool.gen;
        int rc = pthread_create(&t, &a, worker, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&a);
        if (rc != 0) break;          /* run with the workers there are */
        pool.workers++;
    }
    return pool.workers + 1;
}

int usg_get_num_threads(void)
{
    pthread_mutex_lock(&pool.mu);
    if (pool.threads == 0) pool.threads = openblas_get_num_threads();
    int t = pool.threads;
    pthread_mutex_unlock(&pool.mu);
    return t;
}

usg_status usg_set_num_threads(int n)
{
    if (n < 1 || n > 1024)
        return usg_fail(USG_ARG, "set_num_threads: threads must be in 1..1024, got %d", n);
    openblas_set_num_threads(n);
    pthread_mutex_lock(&pool.mu);
    pool.threads = n < MAX_THREADS ? n : MAX_THREADS;
    pthread_mutex_unlock(&pool.mu);
    return USG_OK;
}

void usg_parallel_for(int64_t n, int64_t grain, usg_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t most = n / grain;    /* parts of at least `grain` iterations */
    pthread_mutex_lock(&pool.mu);
    if (pool.threads == 0) pool.threads = openblas_get_num_threads();
    int parts = pool.threads < most ? pool.threads : (int)most;
    if (parts > 1 && !pool.busy) {
        int have = start_workers(parts);
        if (have < parts) parts = have;
    }
    if (parts <= 1 || pool.busy) {
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, 0, n);
        return;
    }
    pool.busy = true;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.parts = parts;
    pool.pending = parts - 1;
    pool.gen++;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);

    fn(ctx, 0, cut(n, parts, 1));

    pthread_mutex_lock(&pool.mu);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = false;
    pthread_mutex_unlock(&pool.mu);
}

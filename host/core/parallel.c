/*
 * parallel.c -- the core's threads. There are usg_get_num_threads() of them
 * (the caller's and workers started on first need), and OpenBLAS runs
 * single-threaded inside them: usg_gemm cuts a large product into blocks
 * of rows or columns, one part per thread (blas.c), and usg_parallel_for
 * splits any loop of independent iterations the same way (an optimizer's
 * update, the rows of a softmax).
 *
 * Why not OpenBLAS's own threads: between products its idle threads spin
 * on the other core, so no thread of ours could run beside them, and on
 * the products of a recurrent step its two threads are no faster than one.
 * Measured on 2 cores (PTB small's shapes, OpenBLAS 0.3.21, ms a product,
 * OpenBLAS on 2 threads against two 1-thread halves here): 400x200 times
 * 200x10000 8.5 -> 8.0; 400x10000 times 10000x200 10.3 -> 8.7; 10000x400
 * times 400x200 9.7 -> 8.3; 20x200 times 200x800 0.104 -> 0.050.
 *
 * Results depend on the thread count and on nothing else: the parts of a
 * loop are fixed by (n, grain, threads) alone -- not by which thread runs
 * which part, nor by whether the workers could start -- so the
 * determinism contract (same seed and thread count, same bits) holds.
 * Loops of independent iterations give the same bits for any count. A
 * product does not quite: OpenBLAS's kernels sum an element of a block of
 * columns in a slightly different order than the same element of the
 * whole, so its last bits change with the count (tests/c/test_parallel.c
 * checks both facts).
 *
 * Waiting: a worker spins for a while after its last part (a training
 * step's next product usually comes within microseconds), then sleeps on
 * a condition variable until the next loop. Parts are claimed from a
 * counter, so the caller takes the parts of a worker that is still waking
 * up, and a part is never run twice. A loop started while another runs (a
 * nested call, or another thread's) runs its parts one after another on
 * its caller, the same parts.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <cblas.h>

#include "internal.h"

#define MAX_THREADS 64
#define SPIN_NS 200000          /* a worker's spin before it sleeps: 0.2 ms */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_int threads;          /* threads a loop may use, the caller's included; 0: not read */
    int workers;                 /* workers started (mu held) */
    atomic_bool busy;            /* a loop is running */
    atomic_int sleepers;         /* workers asleep on `wake` */
    /* the current loop, fn(ctx, lo, hi) over parts of [0, n), and one word
     * that claims its parts: generation << 32 | parts << 16 | next part. A
     * claim is a compare-and-swap of the whole word, so it can only take a
     * part of the loop it read, and each part once. */
    usg_range_fn fn;
    void *ctx;
    int64_t n;
    atomic_ullong job;
    atomic_int finished;         /* parts done */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Part k of [0, n) cut in `parts` near-equal contiguous ranges. */
static int64_t cut(int64_t n, int parts, int k) { return n / parts * k + (n % parts) * k / parts; }

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Claim and run parts of the current loop until none is left. */
static void run_parts(void)
{
    unsigned long long c = atomic_load_explicit(&pool.job, memory_order_acquire);
    for (;;) {
        int parts = (int)(c >> 16 & 0xffff), k = (int)(c & 0xffff);
        if (k >= parts) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.job, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;                                   /* c now holds the word seen */
        pool.fn(pool.ctx, cut(pool.n, parts, k), cut(pool.n, parts, k + 1));
        atomic_fetch_add_explicit(&pool.finished, 1, memory_order_release);
        c = atomic_load_explicit(&pool.job, memory_order_acquire);
    }
}

/* The next loop's generation after `seen`: spin SPIN_NS, then sleep. */
static unsigned long long wait_work(unsigned long long seen)
{
    int64_t until = now_ns() + SPIN_NS;
    for (unsigned i = 1;; i++) {
        unsigned long long g = atomic_load_explicit(&pool.job, memory_order_acquire) >> 32;
        if (g != seen) return g;
        cpu_relax();
        if (i % 256 == 0 && now_ns() > until) break;
    }
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add(&pool.sleepers, 1);
    unsigned long long g;
    while ((g = atomic_load(&pool.job) >> 32) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.mu);
    return g;
}

static void *worker(void *arg)
{
    unsigned long long seen = (unsigned long long)(uintptr_t)arg;   /* gen at its start */
    for (;;) {
        seen = wait_work(seen);
        run_parts();
    }
    return NULL;
}

/* A child of fork() has none of the workers: it starts its own. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.workers = 0;
    atomic_store(&pool.busy, false);
    atomic_store(&pool.sleepers, 0);
}

/* Start workers up to want - 1 (the caller runs the parts of those that
 * could not start). */
static void start_workers(int want)
{
    static bool registered;
    pthread_mutex_lock(&pool.mu);
    if (!registered) { pthread_atfork(NULL, NULL, after_fork_child); registered = true; }
    if (want > MAX_THREADS) want = MAX_THREADS;
    while (pool.workers < want - 1) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        uintptr_t gen = (uintptr_t)(atomic_load(&pool.job) >> 32);
        int rc = pthread_create(&t, &a, worker, (void *)gen);
        pthread_attr_destroy(&a);
        if (rc != 0) break;          /* run with the workers there are */
        pool.workers++;
    }
    pthread_mutex_unlock(&pool.mu);
}

/* The first call reads OpenBLAS's count (OPENBLAS_NUM_THREADS, or all
 * cores) as ours and sets OpenBLAS to one thread. */
int usg_get_num_threads(void)
{
    int t = atomic_load(&pool.threads);
    if (t == 0) {
        int ob = openblas_get_num_threads();
        t = ob < 1 ? 1 : ob < MAX_THREADS ? ob : MAX_THREADS;
        int zero = 0;
        if (atomic_compare_exchange_strong(&pool.threads, &zero, t)) openblas_set_num_threads(1);
        else t = atomic_load(&pool.threads);
    }
    return t;
}

usg_status usg_set_num_threads(int n)
{
    if (n < 1 || n > 1024)
        return usg_fail(USG_ARG, "set_num_threads: threads must be in 1..1024, got %d", n);
    atomic_store(&pool.threads, n < MAX_THREADS ? n : MAX_THREADS);
    openblas_set_num_threads(1);
    return USG_OK;
}

void usg_parallel_for(int64_t n, int64_t grain, usg_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t most = n / grain;    /* parts of at least `grain` iterations */
    int threads = usg_get_num_threads();
    int parts = threads < most ? threads : most > 1 ? (int)most : 1;
    bool idle = false;
    if (parts == 1 || !atomic_compare_exchange_strong(&pool.busy, &idle, true)) {
        for (int k = 0; k < parts; k++) fn(ctx, cut(n, parts, k), cut(n, parts, k + 1));
        return;
    }
    start_workers(parts);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    unsigned long long gen = (atomic_load(&pool.job) >> 32) + 1;
    atomic_store(&pool.job, (gen & 0xffffffff) << 32 | (unsigned long long)parts << 16);
    if (atomic_load(&pool.sleepers) > 0) {            /* seq_cst: see the sleepers */
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    run_parts();
    /* a worker still on a part: wait, yielding now and then in case it
     * shares our core (more threads than cores, say under mpirun) */
    for (unsigned i = 1; atomic_load_explicit(&pool.finished, memory_order_acquire) < parts; i++) {
        cpu_relax();
        if (i % 1024 == 0) sched_yield();
    }
    atomic_store(&pool.busy, false);
}

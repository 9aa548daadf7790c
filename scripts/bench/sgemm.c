/*
 * sgemm.c -- the reference side of scripts/bench/ops: cblas_sgemm called
 * directly from C on the shapes ops.lua gives usagi.mm, timed the same way
 * (same calls per repetition, one warm-up repetition, median of R), printed
 * in the same line format.
 *
 *     sgemm [--threads N] [--reps R] [--shapes MxKxN,...] [--fresh-c]
 *
 * C (M, N) = A (M, K) B (K, N), row-major, no transposes; one product is
 * 2 M K N flop. The output buffer is allocated once and reused, as a C
 * program calling BLAS directly would do. --fresh-c allocates it (64-byte
 * aligned, like usagi's storage) before and frees it after every call
 * instead, to show what a fresh output costs; usagi.mm pays that.
 *
 * Not for: testing correctness, or timing anything but sgemm.
 *
 * Built by scripts/bench/ops:
 *     gcc -O2 sgemm.c $(pkg-config --cflags --libs openblas) -o build/bench/sgemm
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <cblas.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values; sorts them. */
static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

/* Calls per repetition: about 2e10 flop, between 1 and 20000 (ops.lua:
 * gemm_calls). */
static long gemm_calls(long M, long K, long N)
{
    double c = ceil(2e10 / (2.0 * (double)M * (double)K * (double)N));
    return c < 1 ? 1 : c > 20000 ? 20000 : (long)c;
}

/* Uniform in [-1, 1) from a small LCG: the values do not matter, only that
 * they are ordinary floats (no denormals, no NaN). */
static void fill(float *x, size_t n, unsigned *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = (float)(*state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
}

static float *alloc_floats(size_t n)
{
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "sgemm: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* One repetition: `calls` products into c, or into a fresh buffer each
 * call when c is NULL. */
static void run(const float *a, const float *b, float *c, long M, long K, long N, long calls)
{
    for (long i = 0; i < calls; i++) {
        float *out = c ? c : alloc_floats((size_t)M * (size_t)N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K,
                    1.0f, a, (int)K, b, (int)N, 0.0f, out, (int)N);
        if (!c) free(out);
    }
}

static void bench(long M, long K, long N, int reps, int fresh)
{
    unsigned state = 1;
    float *a = alloc_floats((size_t)M * (size_t)K);    /* (M, K) */
    float *b = alloc_floats((size_t)K * (size_t)N);    /* (K, N) */
    float *c = fresh ? NULL : alloc_floats((size_t)M * (size_t)N);   /* (M, N) */
    fill(a, (size_t)M * (size_t)K, &state);
    fill(b, (size_t)K * (size_t)N, &state);
    long calls = gemm_calls(M, K, N);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!t) { fprintf(stderr, "sgemm: out of memory\n"); exit(1); }
    run(a, b, c, M, K, N, calls);                     /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        run(a, b, c, M, K, N, calls);
        t[r] = (now() - t0) / (double)calls;
    }
    double med = median(t, reps), flop = 2.0 * (double)M * (double)K * (double)N;
    char name[64];
    snprintf(name, sizeof name, "%ldx%ldx%ld", M, K, N);
    /* t is sorted now: t[reps-1] is the slowest, t[0] the fastest */
    printf("gemm  %-16s %9.2f GFLOP/s  min %.2f  max %.2f  reps %dx%ld\n", name,
           flop / med * 1e-9, flop / t[reps - 1] * 1e-9, flop / t[0] * 1e-9, reps, calls);
    fflush(stdout);
    free(t);
    free(a);
    free(b);
    free(c);
}

static void usage(void)
{
    fprintf(stderr, "usage: sgemm [--threads N] [--reps R] [--shapes MxKxN,...] [--fresh-c]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int reps = 7, threads = 0, fresh = 0;
    const char *shapes = "20x200x800,400x200x10000,1024x1024x1024";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fresh-c")) fresh = 1;
        else if (i + 1 >= argc) usage();
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shapes")) shapes = argv[++i];
        else usage();
    }
    if (reps < 1) usage();
    if (threads > 0) openblas_set_num_threads(threads);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("# cblas_sgemm: %s | core %s | threads %d | OPENBLAS_CORETYPE=%s%s\n",
           openblas_get_config(), openblas_get_corename(), openblas_get_num_threads(),
           ct ? ct : "(unset)", fresh ? " | fresh output per call" : "");
    for (const char *p = shapes; *p;) {
        long M, K, N;
        int used;
        if (sscanf(p, "%ldx%ldx%ld%n", &M, &K, &N, &used) != 3 || M < 1 || K < 1 || N < 1)
            usage();
        bench(M, K, N, reps, fresh);
        p += used;
        if (*p == ',') p++;
    }
    return 0;
}

/*
 * random.c -- Philox 4x32-10 and the random tensors drawn from it.
 *
 * Every random number in usagi comes from here: weight init, dropout masks,
 * shuffles, sampling, negative samples. The generator is counter-based
 * (Salmon et al., SC 2011): block b of a stream is Philox(key, (b, stream)),
 * so a state is eleven words that a checkpoint can store, and the same seed
 * gives the same bits on every machine.
 *
 * Not here: a global generator (the caller owns one; the Lua binding keeps
 * the run's), and distributions no model in usagi needs.
 *
 * Word use, so that sequences are easy to reason about: f32 tensors draw one
 * 32-bit word per uniform (24 bits), f64 and i32 ones two (53 bits); a normal
 * takes two 53-bit uniforms (Box-Muller, one value kept).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "usagi/fastmath.h"

#define TWO_PI 6.283185307179586476925286766559

/* ==== Philox 4x32-10 ===================================================== */

#define PHILOX_M0 0xD2511F53u   /* multipliers chosen by Salmon et al. */
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u   /* key schedule: golden ratio */
#define PHILOX_W1 0xBB67AE85u   /* sqrt(3) - 1 */

/* One round: two 32x32 -> 64 multiplies; the high halves are mixed with the
 * other two words and the key, the low halves carried over:
 *   (c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)) */
static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t c1 = c[1], c3 = c[3];
    c[0] = (uint32_t)(p1 >> 32) ^ c1 ^ k[0];
    c[1] = (uint32_t)p1;
    c[2] = (uint32_t)(p0 >> 32) ^ c3 ^ k[1];
    c[3] = (uint32_t)p0;
}

/* out = Philox4x32-10(ctr, key): ten rounds, the key bumped by the Weyl
 * constants between them. A pure function; the whole generator rests on it. */
static void philox_block(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2])
{
    uint32_t k[2] = {key[0], key[1]};
    memcpy(out, ctr, 4 * sizeof *out);
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k[0] += PHILOX_W0; k[1] += PHILOX_W1; }
        philox_round(out, k);
    }
}

/* ==== Generator state ==================================================== */

/* The seed is the key, the stream the upper half of the counter; the block
 * number (lower half) starts at 0 and pos = 4 says no block is buffered. */
void usg_rng_seed(usg_rng *r, uint64_t seed, uint64_t stream)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    memset(r->buf, 0, sizeof r->buf);
    r->pos = 4;
}

/* Word order: key[0..1], ctr[0..3], buf[0..3], pos. */
void usg_rng_get_state(const usg_rng *r, uint32_t s[USG_RNG_STATE_WORDS])
{
    memcpy(s, r->key, 2 * sizeof *s);
    memcpy(s + 2, r->ctr, 4 * sizeof *s);
    memcpy(s + 6, r->buf, 4 * sizeof *s);
    s[10] = r->pos;
}

/* A state whose buffer still holds unused words must hold the block just
 * before the counter (the counter moves on when a block is made); anything
 * else did not come from get_state, and accepting it would give numbers no
 * seed ever gives. */
usg_status usg_rng_set_state(usg_rng *r, const uint32_t s[USG_RNG_STATE_WORDS])
{
    if (!r || !s) return usg_fail(USG_ARG, "set_rng_state: generator and state must not be NULL");
    if (s[10] > 4)
        return usg_fail(USG_ARG, "set_rng_state: word 11 (position) must be in 0..4, got %lu",
                        (unsigned long)s[10]);
    if (s[10] < 4) {
        uint32_t prev[4] = {s[2] - 1, s[3] - (s[2] == 0), s[4], s[5]}, blk[4];
        philox_block(blk, prev, s);
        if (memcmp(blk, s + 6, sizeof blk) != 0)
            return usg_fail(USG_ARG, "set_rng_state: words 7..10 (buffer) do not match the "
                            "key and counter; the state is corrupt");
    }
    memcpy(r->key, s, 2 * sizeof *s);
    memcpy(r->ctr, s + 2, 4 * sizeof *s);
    memcpy(r->buf, s + 6, 4 * sizeof *s);
    r->pos = s[10];
    return USG_OK;
}

/* ==== Scalars ============================================================ */

uint32_t usg_rng_u32(usg_rng *r)
{
    if (r->pos >= 4) {
        philox_block(r->buf, r->ctr, r->key);
        /* the 64-bit block number; the stream words never change */
        if (++r->ctr[0] == 0) ++r->ctr[1];
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

/* Blocks n, n+1, ..., n+7 of the stream (n = the counter's block number)
 * into w[0..32) in stream order: philox_block eight times, or the same
 * rounds with the eight counters in the lanes of AVX2 registers. */
static void philox_blocks8_scalar(uint32_t *w, const usg_rng *r)
{
    for (uint32_t j = 0; j < 8; j++) {
        uint32_t ctr[4] = {r->ctr[0] + j, r->ctr[1] + (r->ctr[0] + j < r->ctr[0]), r->ctr[2],
                           r->ctr[3]};
        philox_block(w + 4 * j, ctr, r->key);
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define PHILOX_AVX2 1

/* lo and hi halves of the eight products m * x (32 x 32 -> 64 bits):
 * vpmuludq multiplies the even lanes; the odd ones are shifted down first. */
__attribute__((target("avx2")))
static inline void mul_hilo8(__m256i m, __m256i x, __m256i *lo, __m256i *hi)
{
    __m256i pe = _mm256_mul_epu32(m, x);
    __m256i po = _mm256_mul_epu32(m, _mm256_srli_epi64(x, 32));
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

__attribute__((target("avx2")))
static void philox_blocks8_avx2(uint32_t *w, const usg_rng *r)
{
    uint32_t c1[8];
    for (uint32_t j = 0; j < 8; j++) c1[j] = r->ctr[1] + (r->ctr[0] + j < r->ctr[0]);
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32((int)r->ctr[0]),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i x1 = _mm256_loadu_si256((const __m256i *)c1);
    __m256i x2 = _mm256_set1_epi32((int)r->ctr[2]), x3 = _mm256_set1_epi32((int)r->ctr[3]);
    const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    uint32_t k0 = r->key[0], k1 = r->key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += PHILOX_W0; k1 += PHILOX_W1; }
        __m256i lo0, hi0, lo1, hi1;
        mul_hilo8(m0, x0, &lo0, &hi0);
        mul_hilo8(m1, x2, &lo1, &hi1);
        x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32((int)k0));
        x1 = lo1;
        x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32((int)k1));
        x3 = lo0;
    }
    uint32_t v[4][8];
    _mm256_storeu_si256((__m256i *)v[0], x0);
    _mm256_storeu_si256((__m256i *)v[1], x1);
    _mm256_storeu_si256((__m256i *)v[2], x2);
    _mm256_storeu_si256((__m256i *)v[3], x3);
    for (int j = 0; j < 8; j++)
        for (int k = 0; k < 4; k++) w[4 * j + k] = v[k][j];
}
#endif

static void philox_blocks8(uint32_t *w, const usg_rng *r)
{
#ifdef PHILOX_AVX2
    if (__builtin_cpu_supports("avx2")) { philox_blocks8_avx2(w, r); return; }
#endif
    philox_blocks8_scalar(w, r);
}

/* The next n words: the words of n calls of usg_rng_u32, the whole blocks
 * in between made eight at a time. */
void usg_rng_fill_u32(usg_rng *r, uint32_t *w, int64_t n)
{
    while (n > 0 && r->pos < 4) { *w++ = r->buf[r->pos++]; n--; }
    for (; n >= 32; n -= 32, w += 32) {
        philox_blocks8(w, r);
        uint32_t lo = r->ctr[0];
        r->ctr[0] += 8;
        if (r->ctr[0] < lo) ++r->ctr[1];
        memcpy(r->buf, w + 28, sizeof r->buf);   /* the state words usg_rng_u32 leaves */
    }
    while (n-- > 0) *w++ = usg_rng_u32(r);
}

/* u = (a * 2^26 + b) / 2^53 from the top 27 bits of a and 26 of b, as
 * Matsumoto and Nishimura's genrand_res53: every double in [0, 1) on the
 * 2^-53 grid is equally likely. */
double usg_rng_uniform(usg_rng *r)
{
    uint32_t a = usg_rng_u32(r) >> 5, b = usg_rng_u32(r) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* u = top 24 bits / 2^24: exact in a float, never 1. */
static inline float word_to_unit_f(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

float usg_rng_uniform_f(usg_rng *r) { return word_to_unit_f(usg_rng_u32(r)); }

/* z = sqrt(-2 ln u1) cos(2 pi u2), u1 in (0, 1] so the log stays finite. */
double usg_rng_normal(usg_rng *r)
{
    double u1 = 1.0 - usg_rng_uniform(r);
    double u2 = usg_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

/* x mod n is biased when 2^32 is not a multiple of n; rejecting the
 * 2^32 mod n smallest words removes the bias (at most half are rejected).
 * n = 0 is outside the contract; it gives 0 rather than a division trap. */
uint32_t usg_rng_below(usg_rng *r, uint32_t n)
{
    if (n <= 1) return 0;
    uint32_t threshold = (uint32_t)(-n) % n;   /* = 2^32 mod n */
    for (;;) {
        uint32_t x = usg_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

/* A uniform with the resolution of the dtype it will be stored in. */
static double unit(usg_rng *r, usg_dtype dt)
{
    return dt == USG_F32 ? (double)usg_rng_uniform_f(r) : usg_rng_uniform(r);
}

/* The next n f32 uniforms (n <= USG_RNG_CHUNK), the values unit(r, USG_F32)
 * gives one by one. */
#define USG_RNG_CHUNK 1024
static void uniform_f32_chunk(usg_rng *r, float *u, int64_t n)
{
    uint32_t w[USG_RNG_CHUNK];
    usg_rng_fill_u32(r, w, n);
    for (int64_t i = 0; i < n; i++) u[i] = word_to_unit_f(w[i]);
}

/* ==== Argument checks ==================================================== */

static usg_status check_rng(const char *fn, const usg_rng *r)
{
    return r ? USG_OK : usg_fail(USG_ARG, "%s: generator must not be NULL", fn);
}

static usg_status check_float_tensor(const char *fn, const char *arg, const usg_tensor *t)
{
    if (!t) return usg_fail(USG_ARG, "%s: %s must be a tensor, got NULL", fn, arg);
    if (!usg_dtype_is_float(t->dtype))
        return usg_fail(USG_TYPE, "%s: %s must be f32 or f64, got %s", fn, arg,
                        usg_dtype_name(t->dtype));
    return USG_OK;
}

/* A shape for a new tensor of dtype dt: 0..USG_MAX_DIMS sizes, each >= 0,
 * and a byte size the allocator may be asked for. */
static usg_status check_shape(const char *fn, usg_dtype dt, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > USG_MAX_DIMS)
        return usg_fail(USG_SHAPE, "%s: shape must have 0..%d dims, got %d", fn,
                        USG_MAX_DIMS, ndim);
    if (ndim > 0 && !shape) return usg_fail(USG_ARG, "%s: shape must not be NULL", fn);
    char b[256];
    uint64_t n = 1, limit = USG_MAX_BYTES / usg_dtype_size(dt);
    bool big = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return usg_fail(USG_SHAPE, "%s: sizes must be >= 0, got shape %s", fn,
                            usg_shape_str(b, sizeof b, ndim, shape));
        if (shape[d] == 0) return USG_OK;
        if (big || (uint64_t)shape[d] > limit / n) big = true;
        else n *= (uint64_t)shape[d];
    }
    if (big)
        return usg_fail(USG_NOMEM, "%s: shape %s is too large to allocate", fn,
                        usg_shape_str(b, sizeof b, ndim, shape));
    return USG_OK;
}

static usg_status check_dtype_float(const char *fn, usg_dtype dt)
{
    if (dt == USG_F32 || dt == USG_F64) return USG_OK;
    return usg_fail(USG_TYPE, "%s: dtype must be f32 or f64, got %s", fn,
                    dt == USG_I32 ? "i32" : "an unknown dtype");
}

/* lo <= hi, both finite and (for f32) representable, hi - lo finite. */
static usg_status check_range(const char *fn, usg_dtype dt, double lo, double hi)
{
    double big = dt == USG_F32 ? FLT_MAX : DBL_MAX;
    if (!(fabs(lo) <= big) || !(fabs(hi) <= big) || !isfinite(hi - lo))
        return usg_fail(USG_ARG, "%s: lo and hi must be finite %s values, got lo = %g, hi = %g",
                        fn, usg_dtype_name(dt), lo, hi);
    if (lo > hi)
        return usg_fail(USG_ARG, "%s: lo must be <= hi, got lo = %g, hi = %g", fn, lo, hi);
    return USG_OK;
}

static usg_status check_normal(const char *fn, double mean, double std)
{
    if (!isfinite(mean)) return usg_fail(USG_ARG, "%s: mean must be finite, got %g", fn, mean);
    if (!(std >= 0) || !isfinite(std))
        return usg_fail(USG_ARG, "%s: std must be finite and >= 0, got %g", fn, std);
    return USG_OK;
}

/* ==== Fills ============================================================== */

/* x = lo + (hi - lo) u. Rounding (to float, or of the product) can land on
 * hi itself; step back below it so the interval stays half-open. */
static double draw_uniform(usg_rng *r, usg_dtype dt, double lo, double hi)
{
    double x = lo + (hi - lo) * unit(r, dt);
    if (dt == USG_F32) {
        float f = (float)x, fh = (float)hi;
        if (f >= fh && fh > (float)lo) f = nextafterf(fh, -INFINITY);
        return f;
    }
    if (x >= hi && hi > lo) x = nextafter(hi, -INFINITY);
    return x;
}

/* Fill every logical element of the view t (row-major order, so the same
 * state fills a contiguous tensor and a transposed view in the same order). */
static void fill_uniform(usg_tensor *t, usg_rng *r, double lo, double hi)
{
    int64_t n = usg_tensor_numel(t);
    usg_walk w;
    usg_walk_init(&w, t);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w))
        usg_store(t->dtype, usg_base(t), w.off, draw_uniform(r, t->dtype, lo, hi));
}

/* x = mean + std z, z ~ N(0, 1), computed in double whatever the dtype. */
static void fill_normal(usg_tensor *t, usg_rng *r, double mean, double std)
{
    int64_t n = usg_tensor_numel(t);
    usg_walk w;
    usg_walk_init(&w, t);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w))
        usg_store(t->dtype, usg_base(t), w.off, mean + std * usg_rng_normal(r));
}

usg_status usg_uniform_(usg_tensor *t, usg_rng *r, double lo, double hi)
{
    usg_status s;
    if ((s = check_float_tensor("uniform_", "tensor", t)) != USG_OK ||
        (s = usg_check_writable(t, "uniform_")) != USG_OK ||
        (s = check_rng("uniform_", r)) != USG_OK ||
        (s = check_range("uniform_", t->dtype, lo, hi)) != USG_OK)
        return s;
    fill_uniform(t, r, lo, hi);
    return USG_OK;
}

usg_status usg_normal_(usg_tensor *t, usg_rng *r, double mean, double std)
{
    usg_status s;
    if ((s = check_float_tensor("normal_", "tensor", t)) != USG_OK ||
        (s = usg_check_writable(t, "normal_")) != USG_OK ||
        (s = check_rng("normal_", r)) != USG_OK ||
        (s = check_normal("normal_", mean, std)) != USG_OK)
        return s;
    fill_normal(t, r, mean, std);
    return USG_OK;
}

usg_status usg_rand(usg_tensor **out, usg_rng *r, usg_dtype dt, int ndim,
                    const int64_t *shape, double lo, double hi)
{
    usg_status s;
    if (!out) return usg_fail(USG_ARG, "rand: out must not be NULL");
    *out = NULL;
    if ((s = check_rng("rand", r)) != USG_OK || (s = check_dtype_float("rand", dt)) != USG_OK ||
        (s = check_shape("rand", dt, ndim, shape)) != USG_OK ||
        (s = check_range("rand", dt, lo, hi)) != USG_OK ||
        (s = usg_tensor_empty(out, dt, ndim, shape)) != USG_OK)
        return s;
    fill_uniform(*out, r, lo, hi);
    return USG_OK;
}

usg_status usg_randn(usg_tensor **out, usg_rng *r, usg_dtype dt, int ndim,
                     const int64_t *shape, double mean, double std)
{
    usg_status s;
    if (!out) return usg_fail(USG_ARG, "randn: out must not be NULL");
    *out = NULL;
    if ((s = check_rng("randn", r)) != USG_OK || (s = check_dtype_float("randn", dt)) != USG_OK ||
        (s = check_shape("randn", dt, ndim, shape)) != USG_OK ||
        (s = check_normal("randn", mean, std)) != USG_OK ||
        (s = usg_tensor_empty(out, dt, ndim, shape)) != USG_OK)
        return s;
    fill_normal(*out, r, mean, std);
    return USG_OK;
}

/* ==== Bernoulli ========================================================== */

/* x = [u < p]: P(x = 1) = p, exactly on the uniform's grid. */
usg_status usg_bernoulli(usg_tensor **out, usg_rng *r, const usg_tensor *p)
{
    usg_status s;
    if (!out) return usg_fail(USG_ARG, "bernoulli: out must not be NULL");
    *out = NULL;
    if ((s = check_rng("bernoulli", r)) != USG_OK ||
        (s = check_float_tensor("bernoulli", "p", p)) != USG_OK)
        return s;
    int64_t n = usg_tensor_numel(p);
    bool fast = p->dtype == USG_F32 && usg_tensor_is_contiguous(p);
    const float *pv = fast ? usg_tensor_data(p) : NULL;
    int bad = 0;
    if (fast)
        for (int64_t k = 0; k < n; k++) bad |= !(pv[k] >= 0 && pv[k] <= 1);
    usg_walk w;
    usg_walk_init(&w, p);
    for (int64_t k = 0; (!fast || bad) && k < n; k++, usg_walk_next(&w)) {
        double v = usg_load(p->dtype, usg_base(p), w.off);
        if (!(v >= 0 && v <= 1))
            return usg_fail(USG_ARG, "bernoulli: p must hold probabilities in [0, 1], "
                            "got %g at flat index %lld", v, (long long)k);
    }
    if ((s = usg_tensor_empty_like(out, p, p->dtype)) != USG_OK) return s;
    if (fast) {
        /* the same draws in chunks: u < p compared as floats, as below */
        float *o = usg_base(*out), u[USG_RNG_CHUNK];
        for (int64_t k0 = 0; k0 < n; k0 += USG_RNG_CHUNK) {
            int64_t m = n - k0 < USG_RNG_CHUNK ? n - k0 : USG_RNG_CHUNK;
            uniform_f32_chunk(r, u, m);
            for (int64_t i = 0; i < m; i++) o[k0 + i] = u[i] < pv[k0 + i] ? 1.0f : 0.0f;
        }
        return USG_OK;
    }
    usg_walk_init(&w, p);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w)) {
        double v = usg_load(p->dtype, usg_base(p), w.off);
        usg_store(p->dtype, usg_base(*out), k, unit(r, p->dtype) < v ? 1.0 : 0.0);
    }
    return USG_OK;
}

usg_status usg_bernoulli_p(usg_tensor **out, usg_rng *r, usg_dtype dt, int ndim,
                           const int64_t *shape, double p)
{
    usg_status s;
    if (!out) return usg_fail(USG_ARG, "bernoulli: out must not be NULL");
    *out = NULL;
    if ((s = check_rng("bernoulli", r)) != USG_OK) return s;
    if (dt != USG_F32 && dt != USG_F64 && dt != USG_I32)
        return usg_fail(USG_TYPE, "bernoulli: dtype must be f32, f64 or i32, got %d", (int)dt);
    if (!(p >= 0 && p <= 1))
        return usg_fail(USG_ARG, "bernoulli: p must be in [0, 1], got %g", p);
    if ((s = check_shape("bernoulli", dt, ndim, shape)) != USG_OK ||
        (s = usg_tensor_empty(out, dt, ndim, shape)) != USG_OK)
        return s;
    int64_t n = usg_tensor_numel(*out);
    if (dt == USG_F32) {
        float *o = usg_base(*out), u[USG_RNG_CHUNK];
        for (int64_t k0 = 0; k0 < n; k0 += USG_RNG_CHUNK) {
            int64_t m = n - k0 < USG_RNG_CHUNK ? n - k0 : USG_RNG_CHUNK;
            uniform_f32_chunk(r, u, m);
            for (int64_t i = 0; i < m; i++) o[k0 + i] = (double)u[i] < p ? 1.0f : 0.0f;
        }
        return USG_OK;
    }
    for (int64_t k = 0; k < n; k++)
        usg_store(dt, usg_base(*out), k, unit(r, dt) < p ? 1.0 : 0.0);
    return USG_OK;
}

/* ==== Multinomial ======================================================== */

/* Every weight finite and >= 0, every row with a positive finite sum and,
 * without replacement, at least n categories that can be drawn. Checked in
 * full before anything is allocated or drawn. */
static usg_status check_weights(const usg_tensor *w, int64_t R, int64_t C, int64_t n,
                                bool replacement, int base)
{
    usg_walk it;
    usg_walk_init(&it, w);
    for (int64_t i = 0; i < R; i++) {
        double sum = 0;
        int64_t positive = 0;
        for (int64_t j = 0; j < C; j++, usg_walk_next(&it)) {
            double v = usg_load(w->dtype, usg_base(w), it.off);
            if (!(v >= 0) || !isfinite(v))
                return usg_fail(USG_ARG, "multinomial: weights must be finite and >= 0, got %g "
                                "at row %lld, column %lld", v, (long long)(i + base),
                                (long long)(j + base));
            sum += v;
            positive += v > 0;
        }
        if (!(sum > 0) || !isfinite(sum))
            return usg_fail(USG_ARG, "multinomial: each row of weights must have a positive "
                            "finite sum, row %lld sums to %g", (long long)(i + base), sum);
        if (!replacement && positive < n)
            return usg_fail(USG_ARG, "multinomial: row %lld has %lld categories with positive "
                            "weight, fewer than n = %lld draws without replacement",
                            (long long)(i + base), (long long)positive, (long long)n);
    }
    return USG_OK;
}

/* With replacement: cdf_j = w_0 + ... + w_j; a draw is the first j with
 * cdf_j > u * cdf_{C-1} (binary search), which never picks a zero weight. */
static void draw_with(int32_t *o, usg_rng *r, double *cdf, int64_t C, int64_t n, int base)
{
    int64_t last = 0;   /* the last positive weight, when rounding puts u*total at the end */
    for (int64_t j = 0; j < C; j++)
        if (cdf[j] > (j ? cdf[j - 1] : 0)) last = j;
    for (int64_t k = 0; k < n; k++) {
        double x = usg_rng_uniform(r) * cdf[C - 1];
        int64_t lo = 0, hi = C;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] > x) hi = mid; else lo = mid + 1;
        }
        o[k] = (int32_t)((lo < C ? lo : last) + base);
    }
}

typedef struct race { double key; int64_t j; } race;

/* Zero weights never win; otherwise smaller key first, ties by index so the
 * order is total and qsort gives the same answer everywhere. */
static int race_cmp(const void *pa, const void *pb)
{
    const race *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

/* Without replacement, the exponential race (Efraimidis and Spirakis):
 * key_j = E_j / w_j with E_j ~ Exp(1); the categories in increasing key order
 * are distributed as successive draws proportional to the remaining weights.
 * Compared as log E_j - log w_j so tiny weights cannot overflow. */
static void draw_without(int32_t *o, usg_rng *r, const double *wrow, race *rc, int64_t C,
                         int64_t n, int base)
{
    for (int64_t j = 0; j < C; j++) {
        double e = -log(1.0 - usg_rng_uniform(r));          /* E ~ Exp(1) */
        rc[j].key = wrow[j] > 0 ? log(e) - log(wrow[j]) : INFINITY;
        rc[j].j = j;
    }
    qsort(rc, (size_t)C, sizeof *rc, race_cmp);
    for (int64_t k = 0; k < n; k++) o[k] = (int32_t)(rc[k].j + base);
}

usg_status usg_multinomial(usg_tensor **out, usg_rng *r, const usg_tensor *w,
                           int64_t n, bool replacement, int base)
{
    usg_status s;
    char b[256];
    if (!out) return usg_fail(USG_ARG, "multinomial: out must not be NULL");
    *out = NULL;
    if ((s = check_rng("multinomial", r)) != USG_OK) return s;
    if (!w) return usg_fail(USG_ARG, "multinomial: weights must be a tensor, got NULL");
    if (w->ndim != 1 && w->ndim != 2)
        return usg_fail(USG_SHAPE, "multinomial: weights must be (C) or (R, C), got %s",
                        usg_shape_str(b, sizeof b, w->ndim, w->shape));
    int64_t R = w->ndim == 2 ? w->shape[0] : 1, C = w->shape[w->ndim - 1];
    if (C < 1 || C - 1 > (int64_t)INT32_MAX - base)
        return usg_fail(USG_SHAPE, "multinomial: weights must have 1..%lld categories, got %s",
                        (long long)INT32_MAX - base + 1,
                        usg_shape_str(b, sizeof b, w->ndim, w->shape));
    if (n < 0) return usg_fail(USG_ARG, "multinomial: n must be >= 0, got %lld", (long long)n);
    if (!replacement && n > C)
        return usg_fail(USG_ARG, "multinomial: n must be <= %lld (the number of categories) "
                        "without replacement, got %lld", (long long)C, (long long)n);
    if ((s = check_weights(w, R, C, n, replacement, base)) != USG_OK) return s;

    int64_t oshape[2] = {R, n};
    if ((s = check_shape("multinomial", USG_I32, w->ndim, oshape + 2 - w->ndim)) != USG_OK ||
        (s = usg_tensor_empty(out, USG_I32, w->ndim, oshape + 2 - w->ndim)) != USG_OK)
        return s;
    double *row = usg_alloc((size_t)C * sizeof *row);             /* (C) */
    race *rc = replacement ? NULL : usg_alloc((size_t)C * sizeof *rc);  /* (C) */
    if (!row || (!replacement && !rc)) {
        usg_free(row);
        usg_free(rc);
        usg_tensor_release(*out);
        *out = NULL;
        return usg_fail(USG_NOMEM, "multinomial: out of memory for %lld categories",
                        (long long)C);
    }
    int32_t *o = usg_tensor_data(*out);                            /* (R, n) */
    usg_walk it;
    usg_walk_init(&it, w);
    for (int64_t i = 0; i < R; i++) {
        double acc = 0;
        for (int64_t j = 0; j < C; j++, usg_walk_next(&it)) {
            double v = usg_load(w->dtype, usg_base(w), it.off);
            row[j] = replacement ? (acc += v) : v;
        }
        if (replacement) draw_with(o + i * n, r, row, C, n, base);
        else draw_without(o + i * n, r, row, rc, C, n, base);
    }
    usg_free(row);
    usg_free(rc);
    return USG_OK;
}

/* ==== Permutations and dropout =========================================== */

/* Fisher-Yates: for i = n-1 .. 1 swap x_i with x_j, j uniform in [0, i]. */
usg_status usg_randperm(usg_tensor **out, usg_rng *r, int64_t n, int base)
{
    usg_status s;
    if (!out) return usg_fail(USG_ARG, "randperm: out must not be NULL");
    *out = NULL;
    if ((s = check_rng("randperm", r)) != USG_OK) return s;
    if (n < 0 || (n > 0 && n - 1 > (int64_t)INT32_MAX - base))
        return usg_fail(USG_ARG, "randperm: n must be in 0..%lld, got %lld",
                        (long long)INT32_MAX - base + 1, (long long)n);
    int64_t shape[1] = {n};
    if ((s = usg_tensor_empty(out, USG_I32, 1, shape)) != USG_OK) return s;
    int32_t *x = usg_tensor_data(*out);
    for (int64_t i = 0; i < n; i++) x[i] = (int32_t)(i + base);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = usg_rng_below(r, (uint32_t)(i + 1));
        int32_t t = x[i]; x[i] = x[j]; x[j] = t;
    }
    return USG_OK;
}

/* Inverted dropout: out = x m / (1 - p), m = [u >= p] ~ Bernoulli(1 - p), so
 * E[out] = x and evaluation needs no rescaling. p = 0 draws nothing. */
usg_status usg_dropout(usg_tensor **out, usg_tensor **mask, usg_rng *r,
                       const usg_tensor *x, double p)
{
    usg_status s;
    if (mask) *mask = NULL;
    if (!out) return usg_fail(USG_ARG, "dropout: out must not be NULL");
    *out = NULL;
    if ((s = check_rng("dropout", r)) != USG_OK ||
        (s = check_float_tensor("dropout", "input", x)) != USG_OK)
        return s;
    if (!(p >= 0 && p < 1))
        return usg_fail(USG_ARG, "dropout: p must be in [0, 1), got %g", p);
    if ((s = usg_tensor_empty_like(out, x, x->dtype)) != USG_OK) return s;
    if (mask && (s = usg_tensor_empty_like(mask, x, x->dtype)) != USG_OK) {
        usg_tensor_release(*out);
        *out = NULL;
        return s;
    }
    double scale = 1.0 / (1.0 - p);
    int64_t n = usg_tensor_numel(x);
    if (p > 0 && x->dtype == USG_F32 && usg_tensor_is_contiguous(x)) {
        /* the loop below in chunks of draws */
        const float *xv = usg_tensor_data(x);
        float *o = usg_base(*out), *mk = mask ? usg_base(*mask) : NULL, u[USG_RNG_CHUNK];
        for (int64_t k0 = 0; k0 < n; k0 += USG_RNG_CHUNK) {
            int64_t m = n - k0 < USG_RNG_CHUNK ? n - k0 : USG_RNG_CHUNK;
            uniform_f32_chunk(r, u, m);
            for (int64_t i = 0; i < m; i++)
                o[k0 + i] = (double)u[i] >= p ? (float)(xv[k0 + i] * scale) : 0.0f;
            if (mk)
                for (int64_t i = 0; i < m; i++) mk[k0 + i] = (double)u[i] >= p ? 1.0f : 0.0f;
        }
        return USG_OK;
    }
    usg_walk w;
    usg_walk_init(&w, x);
    for (int64_t k = 0; k < n; k++, usg_walk_next(&w)) {
        bool keep = p == 0 || unit(r, x->dtype) >= p;
        double v = usg_load(x->dtype, usg_base(x), w.off);
        usg_store(x->dtype, usg_base(*out), k, keep ? v * scale : 0.0);
        if (mask) usg_store(x->dtype, usg_base(*mask), k, keep ? 1.0 : 0.0);
    }
    return USG_OK;
}

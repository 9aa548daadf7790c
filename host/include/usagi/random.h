/*
 * usagi/random.h -- the counter-based random number generator and the
 * random tensors drawn from it.
 *
 * Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011): a 64-bit key (from the seed) and a 128-bit counter; every
 * block of four 32-bit outputs is a pure function of (key, counter), so the
 * same seed gives the same numbers on every machine and a stream can be
 * saved and restored as a few integers. Independent streams share the seed
 * and differ in the upper half of the counter.
 *
 * There is no global generator in the core: the caller owns a usg_rng and
 * passes it in (the Lua binding keeps the run's generator).
 */
#ifndef USAGI_RANDOM_H
#define USAGI_RANDOM_H

#include "usagi/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usg_rng {
    uint32_t key[2];
    uint32_t ctr[4];    /* ctr[0..1]: block number, ctr[2..3]: stream */
    uint32_t buf[4];    /* the current block of output */
    uint32_t pos;       /* next unused word of buf; 4 = none left */
} usg_rng;

/* The state as plain words, for saving in a checkpoint. */
#define USG_RNG_STATE_WORDS 11

USG_API void usg_rng_seed(usg_rng *r, uint64_t seed, uint64_t stream);
USG_API void usg_rng_get_state(const usg_rng *r, uint32_t state[USG_RNG_STATE_WORDS]);
/* USG_ARG when the words are not a state (pos > 4). */
USG_API usg_status usg_rng_set_state(usg_rng *r, const uint32_t state[USG_RNG_STATE_WORDS]);

USG_API uint32_t usg_rng_u32(usg_rng *r);
/* The next n words into w: the same words as n calls of usg_rng_u32, faster. */
USG_API void usg_rng_fill_u32(usg_rng *r, uint32_t *w, int64_t n);
/* Uniform in [0, 1): 53 random bits for the double, 24 for the float. */
USG_API double usg_rng_uniform(usg_rng *r);
USG_API float usg_rng_uniform_f(usg_rng *r);
/* Standard normal by Box-Muller (one value per two uniforms, no caching,
 * so the state stays 11 words). */
USG_API double usg_rng_normal(usg_rng *r);
/* Uniform integer in [0, n), unbiased (rejection), n >= 1. */
USG_API uint32_t usg_rng_below(usg_rng *r, uint32_t n);

/* Uniform on [lo, hi) and normal (mean, std) tensors, f32 or f64. */
USG_API usg_status usg_rand(usg_tensor **out, usg_rng *r, usg_dtype dt, int ndim,
                            const int64_t *shape, double lo, double hi);
USG_API usg_status usg_randn(usg_tensor **out, usg_rng *r, usg_dtype dt, int ndim,
                             const int64_t *shape, double mean, double std);
/* In-place fills of any float view. */
USG_API usg_status usg_uniform_(usg_tensor *t, usg_rng *r, double lo, double hi);
USG_API usg_status usg_normal_(usg_tensor *t, usg_rng *r, double mean, double std);
/* 0/1 draws with probabilities p (any float tensor, values in [0,1]);
 * out has p's shape and dtype. */
USG_API usg_status usg_bernoulli(usg_tensor **out, usg_rng *r, const usg_tensor *p);
/* Same, with one probability for a new tensor of `shape` and dtype dt. */
USG_API usg_status usg_bernoulli_p(usg_tensor **out, usg_rng *r, usg_dtype dt, int ndim,
                                   const int64_t *shape, double p);
/* Draw `n` category indices (i32, in `base`) from each row of the
 * non-negative weights w, (C) -> (n) or (R, C) -> (R, n); without
 * replacement n <= C. Rows need not sum to 1 but must have a positive sum. */
USG_API usg_status usg_multinomial(usg_tensor **out, usg_rng *r, const usg_tensor *w,
                                   int64_t n, bool replacement, int base);
/* A random permutation of base .. base+n-1 (i32), Fisher-Yates. */
USG_API usg_status usg_randperm(usg_tensor **out, usg_rng *r, int64_t n, int base);
/* Inverted dropout: out = x * m / (1 - p), m ~ Bernoulli(1 - p); the mask
 * m (x's shape and dtype, 0/1) is returned too when `mask` is not NULL, for
 * the backward pass. p in [0, 1); p = 0 copies. */
USG_API usg_status usg_dropout(usg_tensor **out, usg_tensor **mask, usg_rng *r,
                               const usg_tensor *x, double p);

#ifdef __cplusplus
}
#endif
#endif

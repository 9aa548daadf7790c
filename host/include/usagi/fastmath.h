/*
 * usagi/fastmath.h -- f32 exp, tanh and sigmoid for the fused kernels
 * (the recurrent plugins, the softmax losses), and USG_CLONES for loops
 * over long rows. The functions are branch-free, so a loop over them
 * vectorizes,
 * and about five times faster than glibc's tanhf, which spent a fifth of
 * an RNN's forward + backward in expm1f. f64 code keeps libm's functions,
 * so gradient checks see the exact ones.
 */
#ifndef USAGI_FASTMATH_H
#define USAGI_FASTMATH_H

#include <stdint.h>

/* USG_CLONES before a function over long rows: GCC builds it twice, for
 * AVX2 and for the x86-64 baseline (SSE2), and the loader picks the one the
 * CPU runs. The two give the same bits: AVX2 without FMA does the same IEEE
 * operations in wider registers, and the loops keep their own lanes (no
 * reassociation). Elsewhere it is empty. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__ELF__) && !defined(__clang__)
#define USG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define USG_CLONES
#endif

/* tanh as x p(x^2) / q(x^2) on [-7.905, 7.905] (tanh rounds to +-1 in f32
 * past it), the minimax fit Eigen uses for its fast float tanh; within
 * 4e-7 of tanh everywhere. */
static inline float usg_tanhf(float x)
{
    const float c = 7.90531110763549805f;
    float xc = x < -c ? -c : x;
    xc = xc > c ? c : xc;
    float x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return xc * p / q;
}

/* e^x in f32 (Cody and Waite's reduction, Cephes's polynomial): x = n ln 2
 * + r with |r| <= ln 2 / 2, e^r by a degree-6 polynomial, 2^n put into the
 * exponent bits. Within 2 ulp of expf on [-87.3, 88.7] (clamped there, so
 * never inf, never a subnormal), branch-free: a loop over it vectorizes,
 * where glibc's expf is a call per element. */
static inline float usg_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round(x / ln 2) */
    n = n == n ? n : 0.0f;      /* NaN in: p below is NaN whatever the scale; no int of NaN */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* ln x in f32 for a positive normal x (Cephes's logf): x = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), ln m = f - f^2/2 + f^3 P(f) with f = m - 1, and e ln 2
 * added in two parts. Within 2 ulp of logf; branch-free, so it vectorizes. */
static inline float usg_logf(float x)
{
    union { float f; int32_t i; } u = {x};
    int32_t e = ((u.i >> 23) & 0xff) - 127;
    u.i = (u.i & 0x007fffff) | 0x3f800000;                   /* m in [1, 2) */
    int32_t big = u.f > 1.41421356237f;
    float m = big ? 0.5f * u.f : u.f, ef = (float)(e + big);
    float f = m - 1.0f, z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    float y = p * f * z - 2.12194440e-4f * ef - 0.5f * z;
    return (f + y) + 0.693359375f * ef;
}

/* ln(1 + t) for t > -1 without losing small t: with u = 1 + t rounded,
 * ln u * t / (u - 1) (Goldberg's trick), and t itself where u rounds to 1. */
static inline float usg_log1pf(float t)
{
    float u = 1.0f + t, d = u - 1.0f;
    float r = usg_logf(u) * (t / (d == 0.0f ? 1.0f : d));
    return d == 0.0f ? t : r;
}

/* sigmoid(x) = (1 + tanh(x / 2)) / 2, within 2e-7 of 1 / (1 + e^-x). */
static inline float usg_sigmoidf(float x)
{
    return 0.5f + 0.5f * usg_tanhf(0.5f * x);
}

#endif

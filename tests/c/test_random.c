/*
 * test_random.c -- cmocka tests of host/core/random.c: Philox 4x32-10
 * against the Random123 known-answer vectors, seeding and the state words,
 * reproducibility (same seed, streams, save and restore mid-block), the
 * exact bits of each scalar draw, distribution sanity over 100k draws
 * (uniform, normal, bernoulli, multinomial with and without replacement,
 * randperm), fills of strided views, dropout, every error path (with the
 * generator left untouched), and allocation failure at every allocation.
 */
#include "testutil.h"

#define BIG 100000

/* ==== Helpers =========================================================== */

static void within(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("%s: got %.6f, want %.6f +- %g", what, got, want, tol);
}

/* Mean and (biased) variance of all elements of t, in double. */
static void moments(const usg_tensor *t, double *mean, double *var)
{
    int64_t n = usg_tensor_numel(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += usg_tensor_get_flat(t, i);
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double d = usg_tensor_get_flat(t, i) - *mean;
        s2 += d * d;
    }
    *var = s2 / (double)n;
}

static bool same_state(const usg_rng *a, const usg_rng *b)
{
    uint32_t sa[USG_RNG_STATE_WORDS], sb[USG_RNG_STATE_WORDS];
    usg_rng_get_state(a, sa);
    usg_rng_get_state(b, sb);
    return memcmp(sa, sb, sizeof sa) == 0;
}

/* ==== Philox and the state ============================================== */

/* The first block of a (key, counter) set through the state words. */
static void kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4])
{
    usg_rng r;
    uint32_t s[USG_RNG_STATE_WORDS] = {key[0], key[1], ctr[0], ctr[1], ctr[2], ctr[3],
                                       0, 0, 0, 0, 4};
    assert_int_equal(usg_rng_set_state(&r, s), USG_OK);
    for (int i = 0; i < 4; i++)
        if (usg_rng_u32(&r) != want[i])
            fail_msg("word %d: want %08x", i, want[i]);
}

/* Random123's kat_vectors for philox4x32_10. */
static void test_philox_known_answers(void **state)
{
    kat((uint32_t[]){0, 0, 0, 0}, (uint32_t[]){0, 0},
        (uint32_t[]){0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    kat((uint32_t[]){0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
        (uint32_t[]){0xffffffff, 0xffffffff},
        (uint32_t[]){0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    kat((uint32_t[]){0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
        (uint32_t[]){0xa4093822, 0x299f31d0},
        (uint32_t[]){0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});

    /* seed 0, stream 0 is key 0, counter 0: the first vector again */
    usg_rng r;
    usg_rng_seed(&r, 0, 0);
    assert_int_equal(usg_rng_u32(&r), 0x6627e8d5);
    assert_int_equal(usg_rng_u32(&r), 0xe169c58d);
}

static void test_seed_and_state_words(void **state)
{
    usg_rng r;
    uint32_t s[USG_RNG_STATE_WORDS];
    usg_rng_seed(&r, 0x0123456789abcdefULL, 0xfedcba9876543210ULL);
    usg_rng_get_state(&r, s);
    uint32_t want[USG_RNG_STATE_WORDS] = {0x89abcdef, 0x01234567, 0, 0, 0x76543210,
                                          0xfedcba98, 0, 0, 0, 0, 4};
    assert_memory_equal(s, want, sizeof s);

    /* one word: the block number moves to 1, three words stay buffered */
    usg_rng_u32(&r);
    usg_rng_get_state(&r, s);
    assert_int_equal(s[2], 1);
    assert_int_equal(s[3], 0);
    assert_int_equal(s[4], 0x76543210);
    assert_int_equal(s[10], 1);

    /* the block number carries into its upper word and never into the stream */
    uint32_t c[USG_RNG_STATE_WORDS] = {1, 2, 0xffffffff, 0xffffffff, 7, 8, 0, 0, 0, 0, 4};
    assert_int_equal(usg_rng_set_state(&r, c), USG_OK);
    usg_rng_u32(&r);
    usg_rng_get_state(&r, s);
    assert_int_equal(s[2], 0);
    assert_int_equal(s[3], 0);
    assert_int_equal(s[4], 7);
    assert_int_equal(s[5], 8);
    /* and a buffered state across that wrap is still accepted */
    usg_rng r2;
    assert_int_equal(usg_rng_set_state(&r2, s), USG_OK);
    assert_int_equal(usg_rng_u32(&r2), usg_rng_u32(&r));

    c[2] = 0;  c[3] = 5;   /* borrow: the block before (0, 5) is (ffffffff, 4) */
    assert_int_equal(usg_rng_set_state(&r, c), USG_OK);
    for (int i = 0; i < 6; i++) usg_rng_u32(&r);
    usg_rng_get_state(&r, s);
    assert_int_equal(s[2], 2);
    assert_int_equal(s[3], 5);
    assert_int_equal(usg_rng_set_state(&r2, s), USG_OK);
}

static void test_reproducible(void **state)
{
    usg_rng a, b;
    usg_rng_seed(&a, 42, 0);
    usg_rng_seed(&b, 42, 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(usg_rng_u32(&a), usg_rng_u32(&b));

    /* another stream or another seed: a different sequence */
    int same_stream = 0, same_seed = 0;
    usg_rng_seed(&a, 42, 0);
    usg_rng_seed(&b, 42, 1);
    usg_rng c;
    usg_rng_seed(&c, 43, 0);
    for (int i = 0; i < 1000; i++) {
        uint32_t x = usg_rng_u32(&a);
        same_stream += x == usg_rng_u32(&b);
        same_seed += x == usg_rng_u32(&c);
    }
    assert_true(same_stream < 3);
    assert_true(same_seed < 3);

    /* save at every position in a block, draw, restore, draw again */
    for (int skip = 0; skip < 9; skip++) {
        uint32_t s[USG_RNG_STATE_WORDS], first[10];
        usg_rng_seed(&a, 7, 3);
        for (int i = 0; i < skip; i++) usg_rng_u32(&a);
        usg_rng_get_state(&a, s);
        for (int i = 0; i < 10; i++) first[i] = usg_rng_u32(&a);
        assert_int_equal(usg_rng_set_state(&b, s), USG_OK);
        for (int i = 0; i < 10; i++) assert_int_equal(usg_rng_u32(&b), first[i]);
    }
}

static void test_set_state_rejects(void **state)
{
    usg_rng r, before;
    usg_rng_seed(&r, 5, 0);
    usg_rng_u32(&r);
    before = r;
    uint32_t s[USG_RNG_STATE_WORDS];
    usg_rng_get_state(&r, s);

    s[10] = 5;
    expect_err(usg_rng_set_state(&r, s), USG_ARG, "set_rng_state: word 11");
    s[10] = 1;
    s[7] ^= 1;   /* a buffer that no counter made */
    expect_err(usg_rng_set_state(&r, s), USG_ARG, "do not match");
    s[7] ^= 1;
    s[2] += 1;   /* a counter the buffer does not belong to */
    expect_err(usg_rng_set_state(&r, s), USG_ARG, "set_rng_state");
    assert_true(same_state(&r, &before));
    expect_err(usg_rng_set_state(&r, NULL), USG_ARG, "set_rng_state");
    expect_err(usg_rng_set_state(NULL, s), USG_ARG, "set_rng_state");
}

/* ==== Scalar draws ====================================================== */

static void test_scalar_bits(void **state)
{
    usg_rng r;
    /* uniform: (a >> 5) 2^26 + (b >> 6), over 2^53 */
    usg_rng_seed(&r, 0, 0);
    double want = ((0x6627e8d5u >> 5) * 67108864.0 + (0xe169c58du >> 6)) / 9007199254740992.0;
    assert_true(usg_rng_uniform(&r) == want);
    /* uniform_f: the top 24 bits of the next word */
    assert_true(usg_rng_uniform_f(&r) == (float)((0xbc57ac4cu >> 8) / 16777216.0));

    /* normal = sqrt(-2 ln(1 - u1)) cos(2 pi u2) of the next two uniforms */
    usg_rng a, b;
    usg_rng_seed(&a, 9, 0);
    usg_rng_seed(&b, 9, 0);
    for (int i = 0; i < 5; i++) {
        double u1 = usg_rng_uniform(&a), u2 = usg_rng_uniform(&a);
        double z = sqrt(-2 * log(1 - u1)) * cos(6.283185307179586 * u2);
        within(usg_rng_normal(&b), z, 1e-15, "normal");
    }

    /* below: in range, 0 for n <= 1 without drawing */
    usg_rng_seed(&r, 1, 0);
    usg_rng before = r;
    assert_int_equal(usg_rng_below(&r, 1), 0);
    assert_int_equal(usg_rng_below(&r, 0), 0);
    assert_true(same_state(&r, &before));
    for (int i = 0; i < 1000; i++) assert_true(usg_rng_below(&r, 7) < 7);

    /* n = 2^31 + 1: words below 2^32 mod n = 2^31 - 1 are rejected (about
     * half), the rest give x mod n; replay the raw words to check both */
    const uint32_t n = 0x80000001u, threshold = 0x7fffffffu;
    usg_rng raw = r;
    int rejected = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x;
        while ((x = usg_rng_u32(&raw)) < threshold) rejected++;
        assert_int_equal(usg_rng_below(&r, n), x % n);
    }
    assert_true(same_state(&r, &raw));
    assert_true(rejected > 400 && rejected < 2500);
}

static void test_scalar_distributions(void **state)
{
    usg_rng r;
    usg_rng_seed(&r, 2024, 0);
    double s = 0, s2 = 0, sf = 0, sn = 0, sn2 = 0, inside = 0;
    for (int i = 0; i < BIG; i++) {
        double u = usg_rng_uniform(&r);
        float f = usg_rng_uniform_f(&r);
        double z = usg_rng_normal(&r);
        assert_true(u >= 0 && u < 1);
        assert_true(f >= 0 && f < 1);
        s += u; s2 += u * u; sf += f;
        sn += z; sn2 += z * z; inside += fabs(z) < 1;
    }
    /* sd of a mean of 1e5 uniforms is 0.00091, of normals 0.0032 */
    within(s / BIG, 0.5, 0.004, "uniform mean");
    within(s2 / BIG - (s / BIG) * (s / BIG), 1.0 / 12, 0.002, "uniform var");
    within(sf / BIG, 0.5, 0.004, "uniform_f mean");
    within(sn / BIG, 0, 0.015, "normal mean");
    within(sn2 / BIG, 1, 0.02, "normal var");
    within(inside / BIG, 0.682689, 0.006, "P(|z| < 1)");

    int count[3] = {0};
    for (int i = 0; i < 30000; i++) count[usg_rng_below(&r, 3)]++;
    for (int k = 0; k < 3; k++) within(count[k] / 30000.0, 1.0 / 3, 0.012, "below(3)");
}

/* ==== Tensors =========================================================== */

static void test_rand_randn(void **state)
{
    usg_rng r, ref;
    usg_tensor *t;
    double m, v;

    /* f32: lo + (hi - lo) u from one word per element, in order */
    usg_rng_seed(&r, 3, 1);
    ref = r;
    assert_int_equal(usg_rand(&t, &r, USG_F32, 2, SHAPE(2, 3), -2, 4), USG_OK);
    assert_int_equal(t->dtype, USG_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    for (int i = 0; i < 6; i++)
        assert_true(usg_tensor_get_flat(t, i) == (float)(-2 + 6 * (double)usg_rng_uniform_f(&ref)));
    assert_true(same_state(&r, &ref));
    usg_tensor_release(t);

    /* f64: two words per element */
    assert_int_equal(usg_rand(&t, &r, USG_F64, 1, SHAPE(4), 1, 3), USG_OK);
    for (int i = 0; i < 4; i++)
        assert_true(usg_tensor_get_flat(t, i) == 1 + 2 * usg_rng_uniform(&ref));
    usg_tensor_release(t);

    /* randn: mean + std z in double, rounded once */
    assert_int_equal(usg_randn(&t, &r, USG_F32, 1, SHAPE(5), 1, 0.5), USG_OK);
    for (int i = 0; i < 5; i++)
        assert_true(usg_tensor_get_flat(t, i) == (float)(1 + 0.5 * usg_rng_normal(&ref)));
    usg_tensor_release(t);

    /* large draws: moments and bounds, both dtypes */
    for (int k = 0; k < 2; k++) {
        usg_dtype dt = k ? USG_F64 : USG_F32;
        assert_int_equal(usg_rand(&t, &r, dt, 2, SHAPE(1000, 100), -1, 1), USG_OK);
        for (int64_t i = 0; i < BIG; i++) {
            double x = usg_tensor_get_flat(t, i);
            assert_true(x >= -1 && x < 1);
        }
        moments(t, &m, &v);
        within(m, 0, 0.008, "rand mean");
        within(v, 1.0 / 3, 0.004, "rand var");
        usg_tensor_release(t);
        assert_int_equal(usg_randn(&t, &r, dt, 1, SHAPE(BIG), 2, 3), USG_OK);
        moments(t, &m, &v);
        within(m, 2, 0.045, "randn mean");
        within(v, 9, 0.2, "randn var");
        usg_tensor_release(t);
    }

    /* lo == hi, std = 0, a scalar, an empty shape (no draws) */
    assert_int_equal(usg_rand(&t, &r, USG_F32, 1, SHAPE(3), 5, 5), USG_OK);
    for (int i = 0; i < 3; i++) assert_true(usg_tensor_get_flat(t, i) == 5);
    usg_tensor_release(t);
    assert_int_equal(usg_randn(&t, &r, USG_F64, 0, NULL, -1, 0), USG_OK);
    assert_int_equal(t->ndim, 0);
    assert_true(usg_tensor_get_flat(t, 0) == -1);
    usg_tensor_release(t);
    ref = r;
    assert_int_equal(usg_rand(&t, &r, USG_F32, 2, SHAPE(0, 4), 0, 1), USG_OK);
    assert_int_equal(usg_tensor_numel(t), 0);
    assert_true(same_state(&r, &ref));
    usg_tensor_release(t);
}

/* Rounding can put lo + (hi - lo) u on hi; it must stay below. In f32,
 * 1 + u with u = 1 - 2^-24 (the largest uniform_f) rounds to 2. */
static void test_rand_half_open(void **state)
{
    usg_rng r, at;
    usg_tensor *t;
    uint32_t x;
    usg_rng_seed(&r, 11, 0);
    long guard = 0;
    do {   /* find a word whose top 24 bits are all ones (1 in 2^24) */
        at = r;
        x = usg_rng_u32(&r);
        assert_true(++guard < (1L << 28));
    } while ((x >> 8) != 0xffffff);
    r = at;
    assert_true(usg_rng_uniform_f(&r) == 1.0f - 1.0f / 16777216.0f);
    assert_true((float)(1.0 + (double)(1.0f - 1.0f / 16777216.0f)) == 2.0f);
    r = at;
    assert_int_equal(usg_rand(&t, &r, USG_F32, 0, NULL, 1, 2), USG_OK);
    assert_true(usg_tensor_get_flat(t, 0) == 2.0f - 1.0f / 8388608.0f);   /* the float below 2 */
    usg_tensor_release(t);
    r = at;
    assert_int_equal(usg_rand(&t, &r, USG_F32, 0, NULL, 0, 1), USG_OK);
    assert_true(usg_tensor_get_flat(t, 0) == 1.0f - 1.0f / 16777216.0f);  /* no step needed */
    usg_tensor_release(t);
}

/* In-place fills walk a view in logical row-major order. */
static void test_fill_views(void **state)
{
    usg_rng r, ref;
    usg_tensor *base, *tv, *want;
    assert_int_equal(usg_tensor_zeros(&base, USG_F64, 2, SHAPE(3, 4)), USG_OK);
    assert_int_equal(usg_transpose(&tv, base, 0, 1), USG_OK);   /* (4, 3) */
    usg_rng_seed(&r, 5, 5);
    ref = r;
    assert_int_equal(usg_uniform_(tv, &r, -1, 1), USG_OK);
    assert_int_equal(usg_rand(&want, &ref, USG_F64, 2, SHAPE(4, 3), -1, 1), USG_OK);
    for (int i = 0; i < 12; i++)
        assert_true(usg_tensor_get_flat(tv, i) == usg_tensor_get_flat(want, i));
    usg_tensor_release(want);
    assert_int_equal(usg_normal_(tv, &r, 3, 2), USG_OK);
    assert_int_equal(usg_randn(&want, &ref, USG_F64, 2, SHAPE(4, 3), 3, 2), USG_OK);
    for (int i = 0; i < 12; i++)
        assert_true(usg_tensor_get_flat(tv, i) == usg_tensor_get_flat(want, i));
    usg_tensor_release(want);
    usg_tensor_release(tv);

    /* a narrowed view: the rest stays untouched */
    usg_tensor *row;
    assert_int_equal(usg_fill_(base, 7), USG_OK);
    assert_int_equal(usg_narrow(&row, base, 0, 1, 1), USG_OK);
    assert_int_equal(usg_uniform_(row, &r, 0, 1), USG_OK);
    for (int i = 0; i < 12; i++) {
        double x = usg_tensor_get_flat(base, i);
        if (i / 4 == 1) assert_true(x >= 0 && x < 1);
        else assert_true(x == 7);
    }
    usg_tensor_release(row);
    usg_tensor_release(base);
}

static void test_bernoulli(void **state)
{
    usg_rng r;
    usg_tensor *p, *t;
    usg_rng_seed(&r, 8, 0);
    p = mk(USG_F64, 2, SHAPE(2, 2), (const double[]){0, 1, 0, 1});
    for (int rep = 0; rep < 20; rep++) {
        assert_int_equal(usg_bernoulli(&t, &r, p), USG_OK);
        assert_int_equal(t->dtype, USG_F64);
        assert_int_equal(t->ndim, 2);
        for (int i = 0; i < 4; i++) assert_true(usg_tensor_get_flat(t, i) == (i % 2));
        usg_tensor_release(t);
    }
    usg_tensor_release(p);

    /* frequency of a p tensor (f32) and of a scalar p (i32 out) */
    double m, v;
    assert_int_equal(usg_tensor_full(&p, USG_F32, 1, SHAPE(BIG), 0.3), USG_OK);
    assert_int_equal(usg_bernoulli(&t, &r, p), USG_OK);
    assert_int_equal(t->dtype, USG_F32);
    moments(t, &m, &v);
    within(m, 0.3, 0.006, "bernoulli(p tensor)");
    usg_tensor_release(t);
    usg_tensor_release(p);
    assert_int_equal(usg_bernoulli_p(&t, &r, USG_I32, 2, SHAPE(1000, 100), 0.7), USG_OK);
    assert_int_equal(t->dtype, USG_I32);
    for (int64_t i = 0; i < BIG; i++) {
        double x = usg_tensor_get_flat(t, i);
        assert_true(x == 0 || x == 1);
    }
    moments(t, &m, &v);
    within(m, 0.7, 0.006, "bernoulli_p");
    usg_tensor_release(t);
}

/* usg_rng_fill_u32 gives the words of usg_rng_u32, from every position in
 * a block, over lengths around the eight-block batches, across the carry of
 * the 64-bit block number; and the batched draws of bernoulli and dropout
 * (contiguous f32) give the bits of the element-by-element ones (a
 * transposed view of the same values). */
static void test_batched_draws(void **state)
{
    uint32_t want[300], got[300];
    const uint32_t starts[3][2] = {{0, 0}, {0xFFFFFFFAu, 0}, {0xFFFFFFFFu, 7}};
    for (int s = 0; s < 3; s++)
        for (int skip = 0; skip < 5; skip++)
            for (int n = 0; n <= 300; n += (n < 70 ? 1 : 37)) {
                usg_rng a, b;
                usg_rng_seed(&a, 0x1234567890abcdefULL, 99);
                a.ctr[0] = starts[s][0];
                a.ctr[1] = starts[s][1];
                for (int k = 0; k < skip; k++) usg_rng_u32(&a);
                b = a;
                for (int k = 0; k < n; k++) want[k] = usg_rng_u32(&a);
                usg_rng_fill_u32(&b, got, n);
                assert_memory_equal(got, want, n * sizeof *got);
                assert_true(same_state(&a, &b));
                assert_int_equal(usg_rng_u32(&a), usg_rng_u32(&b));
            }

    /* p (50, 41) and the same values as a transposed view of (41, 50) */
    usg_rng r, ref;
    usg_tensor *p, *pt_base, *pt, *x, *y, *mx, *my;
    assert_int_equal(usg_tensor_empty(&pt_base, USG_F32, 2, SHAPE(41, 50)), USG_OK);
    for (int i = 0; i < 50; i++)
        for (int j = 0; j < 41; j++)
            ((float *)usg_tensor_data(pt_base))[j * 50 + i] = (float)((i * 41 + j) % 101) / 100.0f;
    assert_int_equal(usg_transpose(&pt, pt_base, 0, 1), USG_OK);
    assert_int_equal(usg_contiguous(&p, pt), USG_OK);
    usg_rng_seed(&r, 21, 3);
    usg_rng_u32(&r);                    /* start mid-block */
    ref = r;
    assert_int_equal(usg_bernoulli(&x, &r, p), USG_OK);
    assert_int_equal(usg_bernoulli(&y, &ref, pt), USG_OK);
    for (int64_t i = 0; i < 2050; i++)
        assert_true(usg_tensor_get_flat(x, i) == usg_tensor_get_flat(y, i));
    assert_true(same_state(&r, &ref));
    usg_tensor_release(x);
    usg_tensor_release(y);
    assert_int_equal(usg_dropout(&x, &mx, &r, p, 0.3), USG_OK);
    assert_int_equal(usg_dropout(&y, &my, &ref, pt, 0.3), USG_OK);
    for (int64_t i = 0; i < 2050; i++) {
        assert_true(usg_tensor_get_flat(x, i) == usg_tensor_get_flat(y, i));
        assert_true(usg_tensor_get_flat(mx, i) == usg_tensor_get_flat(my, i));
    }
    assert_true(same_state(&r, &ref));
    usg_tensor_release(x);
    usg_tensor_release(y);
    usg_tensor_release(mx);
    usg_tensor_release(my);
    /* bernoulli_p: f32 (batched) against f64 (one by one) on the same draws */
    usg_rng_u32(&r);
    ref = r;
    assert_int_equal(usg_bernoulli_p(&x, &r, USG_F32, 1, SHAPE(3001), 0.37), USG_OK);
    for (int64_t i = 0; i < 3001; i++)
        assert_true(usg_tensor_get_flat(x, i) == (usg_rng_uniform_f(&ref) < 0.37 ? 1.0 : 0.0));
    assert_true(same_state(&r, &ref));
    usg_tensor_release(x);
    usg_tensor_release(p);
    usg_tensor_release(pt);
    usg_tensor_release(pt_base);
}

static void test_multinomial_with_replacement(void **state)
{
    usg_rng r;
    usg_tensor *w, *t;
    usg_rng_seed(&r, 12, 0);
    w = mk(USG_F32, 1, SHAPE(4), (const double[]){1, 2, 0, 7});
    assert_int_equal(usg_multinomial(&t, &r, w, BIG, true, 0), USG_OK);
    assert_int_equal(t->dtype, USG_I32);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], BIG);
    int count[4] = {0};
    for (int64_t i = 0; i < BIG; i++) count[(int)usg_tensor_get_flat(t, i)]++;
    assert_int_equal(count[2], 0);
    within(count[0] / (double)BIG, 0.1, 0.006, "w=1");
    within(count[1] / (double)BIG, 0.2, 0.008, "w=2");
    within(count[3] / (double)BIG, 0.7, 0.009, "w=7");
    usg_tensor_release(t);
    usg_tensor_release(w);

    /* rows, base 1, a transposed (strided) weight view, n = 0 */
    usg_tensor *wt, *wv;
    wt = mk(USG_F64, 2, SHAPE(3, 2), (const double[]){0, 1, 5, 0, 0, 0});
    assert_int_equal(usg_transpose(&wv, wt, 0, 1), USG_OK);  /* (2, 3): {0,5,0}, {1,0,0} */
    assert_int_equal(usg_multinomial(&t, &r, wv, 6, true, 1), USG_OK);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 6);
    for (int k = 0; k < 6; k++) {
        assert_true(usg_tensor_get(t, SHAPE(0, k)) == 2);
        assert_true(usg_tensor_get(t, SHAPE(1, k)) == 1);
    }
    usg_tensor_release(t);
    assert_int_equal(usg_multinomial(&t, &r, wv, 0, false, 1), USG_OK);
    assert_int_equal(t->shape[1], 0);
    usg_tensor_release(t);
    usg_tensor_release(wv);
    usg_tensor_release(wt);
}

static void test_multinomial_without_replacement(void **state)
{
    usg_rng r;
    usg_tensor *w, *t;
    usg_rng_seed(&r, 13, 0);

    /* n = C: each row a permutation of the categories */
    w = mk(USG_F64, 2, SHAPE(2, 5), (const double[]){1, 1, 1, 1, 1, 5, 4, 3, 2, 1});
    assert_int_equal(usg_multinomial(&t, &r, w, 5, false, 1), USG_OK);
    for (int i = 0; i < 2; i++) {
        int seen[6] = {0};
        for (int k = 0; k < 5; k++) seen[(int)usg_tensor_get(t, SHAPE(i, k))]++;
        for (int c = 1; c <= 5; c++) assert_int_equal(seen[c], 1);
    }
    usg_tensor_release(t);
    usg_tensor_release(w);

    /* zero weights are never drawn */
    w = mk(USG_F32, 1, SHAPE(4), (const double[]){0, 1, 0, 1});
    for (int rep = 0; rep < 50; rep++) {
        assert_int_equal(usg_multinomial(&t, &r, w, 2, false, 0), USG_OK);
        double a = usg_tensor_get_flat(t, 0), b = usg_tensor_get_flat(t, 1);
        assert_true((a == 1 && b == 3) || (a == 3 && b == 1));
        usg_tensor_release(t);
    }
    usg_tensor_release(w);

    /* successive draws: w = (1, 2, 3), P(first = 2) = 1/2 and
     * P(second = 0) = (2/6)(1/4) + (3/6)(1/3) = 1/4 */
    enum { R = 30000 };
    usg_tensor *w1, *we;
    w1 = mk(USG_F64, 2, SHAPE(1, 3), (const double[]){1, 2, 3});
    assert_int_equal(usg_expand(&we, w1, 2, SHAPE(R, 3)), USG_OK);
    assert_int_equal(usg_multinomial(&t, &r, we, 2, false, 0), USG_OK);
    int first2 = 0, second0 = 0;
    for (int i = 0; i < R; i++) {
        first2 += usg_tensor_get(t, SHAPE(i, 0)) == 2;
        second0 += usg_tensor_get(t, SHAPE(i, 1)) == 0;
        assert_true(usg_tensor_get(t, SHAPE(i, 0)) != usg_tensor_get(t, SHAPE(i, 1)));
    }
    within(first2 / (double)R, 0.5, 0.012, "P(first = 2)");
    within(second0 / (double)R, 0.25, 0.01, "P(second = 0)");
    usg_tensor_release(t);
    usg_tensor_release(we);
    usg_tensor_release(w1);
}

static void test_randperm(void **state)
{
    usg_rng r;
    usg_tensor *t;
    usg_rng_seed(&r, 14, 0);
    assert_int_equal(usg_randperm(&t, &r, 1000, 1), USG_OK);
    assert_int_equal(t->dtype, USG_I32);
    assert_int_equal(t->shape[0], 1000);
    static int seen[1001];
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        int x = (int)usg_tensor_get_flat(t, i);
        assert_true(x >= 1 && x <= 1000);
        seen[x]++;
        moved += x != i + 1;
    }
    for (int x = 1; x <= 1000; x++) assert_int_equal(seen[x], 1);
    assert_true(moved > 900);
    usg_tensor_release(t);

    /* n = 0 and n = 1 */
    assert_int_equal(usg_randperm(&t, &r, 0, 0), USG_OK);
    assert_int_equal(t->shape[0], 0);
    usg_tensor_release(t);
    assert_int_equal(usg_randperm(&t, &r, 1, 0), USG_OK);
    assert_true(usg_tensor_get_flat(t, 0) == 0);
    usg_tensor_release(t);

    /* all 6 orders of 3 equally likely */
    int count[6] = {0};
    for (int rep = 0; rep < 60000; rep++) {
        assert_int_equal(usg_randperm(&t, &r, 3, 0), USG_OK);
        int a = (int)usg_tensor_get_flat(t, 0), b = (int)usg_tensor_get_flat(t, 1);
        count[a * 2 + (b > (a == 0 ? 1 : 0))]++;
        usg_tensor_release(t);
    }
    for (int k = 0; k < 6; k++) within(count[k] / 60000.0, 1.0 / 6, 0.01, "randperm(3)");
}

static void test_dropout(void **state)
{
    usg_rng r, before;
    usg_tensor *x, *out, *mask;
    usg_rng_seed(&r, 15, 0);

    /* p = 0 copies, the mask is all ones, nothing is drawn */
    x = mk(USG_F32, 2, SHAPE(2, 3), (const double[]){1, -2, 3, -4, 5, -6});
    before = r;
    assert_int_equal(usg_dropout(&out, &mask, &r, x, 0), USG_OK);
    assert_true(same_state(&r, &before));
    for (int i = 0; i < 6; i++) {
        assert_true(usg_tensor_get_flat(out, i) == usg_tensor_get_flat(x, i));
        assert_true(usg_tensor_get_flat(mask, i) == 1);
    }
    usg_tensor_release(out);
    usg_tensor_release(mask);
    usg_tensor_release(x);

    /* out = x m / (1 - p) on a transposed f64 view; frequency of m */
    usg_tensor *base, *xt;
    assert_int_equal(usg_tensor_full(&base, USG_F64, 2, SHAPE(100, 1000), 3), USG_OK);
    assert_int_equal(usg_transpose(&xt, base, 0, 1), USG_OK);
    assert_int_equal(usg_dropout(&out, &mask, &r, xt, 0.25), USG_OK);
    assert_int_equal(out->shape[0], 1000);
    assert_int_equal(mask->shape[1], 100);
    assert_int_equal(mask->dtype, USG_F64);
    double kept = 0;
    for (int64_t i = 0; i < BIG; i++) {
        double m = usg_tensor_get_flat(mask, i);
        assert_true(m == 0 || m == 1);
        assert_true(usg_tensor_get_flat(out, i) == m * 3 / 0.75);
        kept += m;
    }
    within(kept / BIG, 0.75, 0.006, "dropout keep rate");
    usg_tensor_release(out);
    usg_tensor_release(mask);

    /* without a mask: the same draws give the same output */
    usg_tensor *o2;
    usg_rng_seed(&r, 16, 0);
    before = r;
    assert_int_equal(usg_dropout(&out, &mask, &r, xt, 0.5), USG_OK);
    assert_int_equal(usg_dropout(&o2, NULL, &before, xt, 0.5), USG_OK);
    for (int64_t i = 0; i < BIG; i++)
        assert_true(usg_tensor_get_flat(out, i) == usg_tensor_get_flat(o2, i));
    usg_tensor_release(o2);
    usg_tensor_release(out);
    usg_tensor_release(mask);
    usg_tensor_release(xt);
    usg_tensor_release(base);
}

/* ==== Errors ============================================================ */

static void test_bad_args_tensors(void **state)
{
    usg_rng r, before;
    usg_tensor *t = (usg_tensor *)&r;   /* must come back NULL */
    usg_rng_seed(&r, 1, 0);
    before = r;

    expect_err(usg_rand(&t, NULL, USG_F32, 1, SHAPE(2), 0, 1), USG_ARG, "rand: generator");
    assert_null(t);
    expect_err(usg_rand(NULL, &r, USG_F32, 1, SHAPE(2), 0, 1), USG_ARG, "rand: out");
    expect_err(usg_rand(&t, &r, USG_I32, 1, SHAPE(2), 0, 1), USG_TYPE, "rand: dtype must be f32 or f64, got i32");
    expect_err(usg_rand(&t, &r, (usg_dtype)9, 1, SHAPE(2), 0, 1), USG_TYPE, "rand: dtype");
    expect_err(usg_rand(&t, &r, USG_F32, 2, SHAPE(2, -1), 0, 1), USG_SHAPE, "rand: sizes must be >= 0, got shape (2, -1)");
    expect_err(usg_rand(&t, &r, USG_F32, 9, SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1), 0, 1), USG_SHAPE, "rand: shape must have 0..8 dims, got 9");
    expect_err(usg_rand(&t, &r, USG_F32, -1, NULL, 0, 1), USG_SHAPE, "rand: shape");
    expect_err(usg_rand(&t, &r, USG_F32, 1, NULL, 0, 1), USG_ARG, "rand: shape must not be NULL");
    expect_err(usg_rand(&t, &r, USG_F32, 3, SHAPE(1 << 20, 1 << 20, 1 << 20), 0, 1), USG_NOMEM, "rand: shape (1048576, 1048576, 1048576) is too large");
    expect_err(usg_rand(&t, &r, USG_F64, 2, SHAPE(INT64_MAX, 2), 0, 1), USG_NOMEM, "rand: shape");
    expect_err(usg_rand(&t, &r, USG_F32, 1, SHAPE(2), 1, 0), USG_ARG, "rand: lo must be <= hi, got lo = 1, hi = 0");
    expect_err(usg_rand(&t, &r, USG_F32, 1, SHAPE(2), NAN, 1), USG_ARG, "rand: lo and hi must be finite");
    expect_err(usg_rand(&t, &r, USG_F64, 1, SHAPE(2), 0, INFINITY), USG_ARG, "rand: lo and hi");
    expect_err(usg_rand(&t, &r, USG_F64, 1, SHAPE(2), -1e308, 1e308), USG_ARG, "rand: lo and hi");
    expect_err(usg_rand(&t, &r, USG_F32, 1, SHAPE(2), 0, 1e300), USG_ARG, "finite f32 values");
    assert_null(t);

    expect_err(usg_randn(&t, &r, USG_I32, 1, SHAPE(2), 0, 1), USG_TYPE, "randn: dtype");
    expect_err(usg_randn(&t, &r, USG_F32, 1, SHAPE(-2), 0, 1), USG_SHAPE, "randn: sizes");
    expect_err(usg_randn(&t, &r, USG_F32, 1, SHAPE(2), 0, -1), USG_ARG, "randn: std must be finite and >= 0, got -1");
    expect_err(usg_randn(&t, &r, USG_F32, 1, SHAPE(2), 0, NAN), USG_ARG, "randn: std");
    expect_err(usg_randn(&t, &r, USG_F32, 1, SHAPE(2), INFINITY, 1), USG_ARG, "randn: mean must be finite");
    expect_err(usg_randn(&t, NULL, USG_F32, 1, SHAPE(2), 0, 1), USG_ARG, "randn: generator");
    expect_err(usg_randn(NULL, &r, USG_F32, 1, SHAPE(2), 0, 1), USG_ARG, "randn: out");
    assert_null(t);

    usg_tensor *i32 = mk(USG_I32, 1, SHAPE(2), (const double[]){1, 2});
    usg_tensor *f = mk(USG_F32, 1, SHAPE(3), (const double[]){0.5, 0.5, 0.5});
    expect_err(usg_uniform_(i32, &r, 0, 1), USG_TYPE, "uniform_: tensor must be f32 or f64, got i32");
    expect_err(usg_uniform_(NULL, &r, 0, 1), USG_ARG, "uniform_: tensor");
    expect_err(usg_uniform_(f, NULL, 0, 1), USG_ARG, "uniform_: generator");
    expect_err(usg_uniform_(f, &r, 2, 1), USG_ARG, "uniform_: lo must be <= hi");
    expect_err(usg_uniform_(f, &r, -1e39, 0), USG_ARG, "uniform_: lo and hi must be finite f32");
    expect_err(usg_normal_(i32, &r, 0, 1), USG_TYPE, "normal_: tensor");
    expect_err(usg_normal_(f, &r, 0, -0.5), USG_ARG, "normal_: std");
    expect_err(usg_normal_(f, &r, NAN, 1), USG_ARG, "normal_: mean");
    expect_err(usg_normal_(NULL, &r, 0, 1), USG_ARG, "normal_: tensor");
    for (int i = 0; i < 3; i++) assert_true(usg_tensor_get_flat(f, i) == 0.5);

    /* bernoulli: the bad value is last, so nothing may be drawn before the check */
    usg_tensor *pbad = mk(USG_F64, 1, SHAPE(3), (const double[]){0.5, 0.5, 1.5});
    usg_tensor *pnan = mk(USG_F32, 1, SHAPE(2), (const double[]){0.5, NAN});
    expect_err(usg_bernoulli(&t, &r, pbad), USG_ARG, "bernoulli: p must hold probabilities in [0, 1], got 1.5 at flat index 2");
    expect_err(usg_bernoulli(&t, &r, pnan), USG_ARG, "bernoulli: p must hold");
    expect_err(usg_bernoulli(&t, &r, i32), USG_TYPE, "bernoulli: p must be f32 or f64");
    expect_err(usg_bernoulli(&t, &r, NULL), USG_ARG, "bernoulli: p must be a tensor");
    expect_err(usg_bernoulli(&t, NULL, f), USG_ARG, "bernoulli: generator");
    expect_err(usg_bernoulli(NULL, &r, f), USG_ARG, "bernoulli: out");
    expect_err(usg_bernoulli_p(&t, &r, USG_F32, 1, SHAPE(2), -0.1), USG_ARG, "bernoulli: p must be in [0, 1], got -0.1");
    expect_err(usg_bernoulli_p(&t, &r, USG_F32, 1, SHAPE(2), NAN), USG_ARG, "bernoulli: p must be in");
    expect_err(usg_bernoulli_p(&t, &r, (usg_dtype)7, 1, SHAPE(2), 0.5), USG_TYPE, "bernoulli: dtype");
    expect_err(usg_bernoulli_p(&t, &r, USG_F32, 1, SHAPE(-1), 0.5), USG_SHAPE, "bernoulli: sizes");
    expect_err(usg_bernoulli_p(&t, NULL, USG_F32, 1, SHAPE(1), 0.5), USG_ARG, "bernoulli: generator");
    expect_err(usg_bernoulli_p(NULL, &r, USG_F32, 1, SHAPE(1), 0.5), USG_ARG, "bernoulli: out");
    assert_null(t);
    assert_true(same_state(&r, &before));

    usg_tensor_release(pbad);
    usg_tensor_release(pnan);
    usg_tensor_release(f);
    usg_tensor_release(i32);
}

static void test_bad_args_sampling(void **state)
{
    usg_rng r, before;
    usg_tensor *t = (usg_tensor *)&r;
    usg_rng_seed(&r, 1, 0);
    before = r;

    usg_tensor *w = mk(USG_F32, 1, SHAPE(3), (const double[]){1, 2, 3});
    usg_tensor *w3 = mk(USG_F32, 3, SHAPE(1, 1, 3), (const double[]){1, 2, 3});
    usg_tensor *w0 = mk(USG_F32, 2, SHAPE(2, 0), NULL);
    usg_tensor *neg = mk(USG_F64, 2, SHAPE(2, 2), (const double[]){1, 1, 1, -1});
    usg_tensor *nan = mk(USG_F64, 1, SHAPE(2), (const double[]){1, NAN});
    usg_tensor *inf = mk(USG_F64, 1, SHAPE(2), (const double[]){1, INFINITY});
    usg_tensor *zero = mk(USG_F32, 2, SHAPE(2, 2), (const double[]){1, 0, 0, 0});
    usg_tensor *sparse = mk(USG_F32, 1, SHAPE(3), (const double[]){0, 1, 0});
    usg_tensor *over = mk(USG_F64, 1, SHAPE(2), (const double[]){1e308, 1e308});

    expect_err(usg_multinomial(&t, &r, w3, 1, true, 1), USG_SHAPE, "multinomial: weights must be (C) or (R, C), got (1, 1, 3)");
    expect_err(usg_multinomial(&t, &r, w0, 1, true, 1), USG_SHAPE, "multinomial: weights must have 1..");
    expect_err(usg_multinomial(&t, &r, neg, 1, true, 1), USG_ARG, "multinomial: weights must be finite and >= 0, got -1 at row 2, column 2");
    expect_err(usg_multinomial(&t, &r, nan, 1, true, 0), USG_ARG, "multinomial: weights must be finite");
    expect_err(usg_multinomial(&t, &r, inf, 1, true, 0), USG_ARG, "multinomial: weights must be finite");
    expect_err(usg_multinomial(&t, &r, zero, 1, true, 1), USG_ARG, "multinomial: each row of weights must have a positive finite sum, row 2 sums to 0");
    expect_err(usg_multinomial(&t, &r, over, 1, true, 1), USG_ARG, "row 1 sums to inf");
    expect_err(usg_multinomial(&t, &r, w, -1, true, 1), USG_ARG, "multinomial: n must be >= 0, got -1");
    expect_err(usg_multinomial(&t, &r, w, 4, false, 1), USG_ARG, "multinomial: n must be <= 3 (the number of categories) without replacement, got 4");
    expect_err(usg_multinomial(&t, &r, sparse, 2, false, 1), USG_ARG, "multinomial: row 1 has 1 categories with positive weight, fewer than n = 2");
    expect_err(usg_multinomial(&t, &r, NULL, 1, true, 1), USG_ARG, "multinomial: weights must be a tensor");
    expect_err(usg_multinomial(&t, NULL, w, 1, true, 1), USG_ARG, "multinomial: generator");
    expect_err(usg_multinomial(NULL, &r, w, 1, true, 1), USG_ARG, "multinomial: out");
    expect_err(usg_multinomial(&t, &r, w, INT64_MAX / 2, true, 1), USG_NOMEM, "multinomial: shape");
    assert_null(t);

    expect_err(usg_randperm(&t, &r, -1, 1), USG_ARG, "randperm: n must be in 0..2147483647, got -1");
    expect_err(usg_randperm(&t, &r, (int64_t)1 << 31, 1), USG_ARG, "randperm: n must be in");
    expect_err(usg_randperm(&t, NULL, 3, 1), USG_ARG, "randperm: generator");
    expect_err(usg_randperm(NULL, &r, 3, 1), USG_ARG, "randperm: out");
    assert_null(t);

    usg_tensor *m = (usg_tensor *)&r;
    usg_tensor *i32 = mk(USG_I32, 1, SHAPE(2), (const double[]){1, 2});
    expect_err(usg_dropout(&t, &m, &r, w, 1), USG_ARG, "dropout: p must be in [0, 1), got 1");
    assert_null(t);
    assert_null(m);
    expect_err(usg_dropout(&t, &m, &r, w, -0.5), USG_ARG, "dropout: p must be in [0, 1)");
    expect_err(usg_dropout(&t, &m, &r, w, NAN), USG_ARG, "dropout: p must be in [0, 1)");
    expect_err(usg_dropout(&t, &m, &r, i32, 0.5), USG_TYPE, "dropout: input must be f32 or f64, got i32");
    expect_err(usg_dropout(&t, &m, &r, NULL, 0.5), USG_ARG, "dropout: input must be a tensor");
    expect_err(usg_dropout(&t, &m, NULL, w, 0.5), USG_ARG, "dropout: generator");
    expect_err(usg_dropout(NULL, &m, &r, w, 0.5), USG_ARG, "dropout: out");
    assert_null(t);
    assert_true(same_state(&r, &before));

    usg_tensor *all[] = {w, w3, w0, neg, nan, inf, zero, sparse, over, i32};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) usg_tensor_release(all[k]);
}

/* ==== Allocation failure ================================================ */

/* Make the k-th allocation fail for k = 1, 2, ... until the call succeeds:
 * each failure is NOMEM with nothing returned and nothing leaked. */
#define NOMEM_SWEEP(call, outp)                                              \
    do {                                                                     \
        for (long k = 1;; k++) {                                             \
            size_t live = usg_alloc_live_bytes();                            \
            usg_alloc_fail_after(k);                                         \
            usg_status s_ = (call);                                          \
            usg_alloc_fail_after(0);                                         \
            if (s_ == USG_OK) { usg_tensor_release(outp); assert_true(k > 1); break; } \
            assert_int_equal(s_, USG_NOMEM);                                 \
            assert_null(outp);                                               \
            assert_int_equal(usg_alloc_live_bytes(), live);                  \
            assert_true(k < 20);                                             \
        }                                                                    \
    } while (0)

static void test_nomem(void **state)
{
    usg_rng r;
    usg_tensor *t, *m = NULL;
    usg_rng_seed(&r, 2, 0);
    size_t live0 = usg_alloc_live_bytes();
    usg_tensor *w = mk(USG_F32, 2, SHAPE(2, 3), (const double[]){1, 2, 3, 0, 1, 1});
    usg_tensor *p = mk(USG_F64, 1, SHAPE(4), (const double[]){0.1, 0.2, 0.3, 0.4});

    NOMEM_SWEEP(usg_rand(&t, &r, USG_F32, 2, SHAPE(3, 4), 0, 1), t);
    NOMEM_SWEEP(usg_randn(&t, &r, USG_F64, 1, SHAPE(5), 0, 1), t);
    NOMEM_SWEEP(usg_bernoulli(&t, &r, p), t);
    NOMEM_SWEEP(usg_bernoulli_p(&t, &r, USG_I32, 1, SHAPE(5), 0.5), t);
    NOMEM_SWEEP(usg_multinomial(&t, &r, w, 5, true, 1), t);
    NOMEM_SWEEP(usg_multinomial(&t, &r, w, 2, false, 1), t);
    NOMEM_SWEEP(usg_randperm(&t, &r, 10, 1), t);
    NOMEM_SWEEP(usg_dropout(&t, NULL, &r, w, 0.5), t);
    /* with a mask: the mask is the last allocation, so a failure there
     * must give back the output already made */
    for (long k = 1;; k++) {
        size_t live = usg_alloc_live_bytes();
        usg_alloc_fail_after(k);
        usg_status s = usg_dropout(&t, &m, &r, w, 0.5);
        usg_alloc_fail_after(0);
        if (s == USG_OK) { usg_tensor_release(t); usg_tensor_release(m); break; }
        assert_int_equal(s, USG_NOMEM);
        assert_null(t);
        assert_null(m);
        assert_int_equal(usg_alloc_live_bytes(), live);
        assert_true(k < 20);
    }
    usg_tensor_release(w);
    usg_tensor_release(p);
    assert_int_equal(usg_alloc_live_bytes(), live0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_seed_and_state_words),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_set_state_rejects),
        cmocka_unit_test(test_scalar_bits),
        cmocka_unit_test(test_scalar_distributions),
        cmocka_unit_test(test_rand_randn),
        cmocka_unit_test(test_rand_half_open),
        cmocka_unit_test(test_fill_views),
        cmocka_unit_test(test_bernoulli),
        cmocka_unit_test(test_batched_draws),
        cmocka_unit_test(test_multinomial_with_replacement),
        cmocka_unit_test(test_multinomial_without_replacement),
        cmocka_unit_test(test_randperm),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_bad_args_tensors),
        cmocka_unit_test(test_bad_args_sampling),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

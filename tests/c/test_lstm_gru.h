/*
 * test_lstm_gru.h -- the allocation-failure sweep that test_lstm.c and
 * test_gru.c share: a small stacked net (2 layers, with initial states,
 * lengths and dropout) run with the k-th allocation failing, k = 1, 2, ...,
 * forward and then backward: every failure is USG_NOMEM, leaves the outputs
 * NULL and leaks nothing. Each test file includes its plugin's sources and
 * defines RUN (the stacked op on the fixture below) before including this.
 */
#include "testutil.h"

typedef struct fixture {
    usg_tensor *x, *s0[2], *len, *w[14];   /* s0: h0 (and c0); w: per layer, NULL where absent */
    int nw;
} fixture;

static usg_tensor *leaf(usg_rng *r, int ndim, const int64_t *shape)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_randn(&t, r, USG_F32, ndim, shape, 0, 0.5), USG_OK);
    t->requires_grad = true;
    return t;
}

/* T = 4, B = 3, I = 3, H = 4, 2 layers; `gates` rows per unit, `per`
 * weights per layer of which the last `peep` are (H) peepholes. */
static void fixture_make(fixture *f, int states, int64_t gates, int per, int peep)
{
    usg_rng r;
    usg_rng_seed(&r, 7, 0);
    memset(f, 0, sizeof *f);
    int64_t T = 4, B = 3, I = 3, H = 4, G = gates * H;
    f->x = leaf(&r, 3, (int64_t[]){T, B, I});
    for (int k = 0; k < states; k++) f->s0[k] = leaf(&r, 3, (int64_t[]){2, B, H});
    assert_int_equal(usg_tensor_empty(&f->len, USG_I32, 1, (int64_t[]){B}), USG_OK);
    int32_t *len = usg_tensor_data(f->len);
    len[0] = 4, len[1] = 2, len[2] = 1;
    f->nw = 2 * per;
    for (int l = 0; l < 2; l++) {
        usg_tensor **w = f->w + per * l;
        w[0] = leaf(&r, 2, (int64_t[]){G, l == 0 ? I : H});
        w[1] = leaf(&r, 2, (int64_t[]){G, H});
        w[2] = leaf(&r, 1, &G);
        w[3] = leaf(&r, 1, &G);
        for (int k = 0; k < peep; k++) w[4 + k] = leaf(&r, 1, &H);
    }
}

static void fixture_each(fixture *f, void (*fn)(usg_tensor *))
{
    fn(f->x);
    fn(f->s0[0]);
    fn(f->s0[1]);
    fn(f->len);
    for (int i = 0; i < f->nw; i++) fn(f->w[i]);
}

static void drop_grad(usg_tensor *t)
{
    if (!t) return;
    usg_tensor_release(t->grad);
    t->grad = NULL;
}

static void release_one(usg_tensor *t) { usg_tensor_release(t); }

/* RUN(f, out, fin, p, rng) -> status: the op under test, writing out and
 * the final states fin[0] (and fin[1]). */
static void nomem_sweep_stack(int states, int64_t gates, int per, int peep)
{
    for (int dropout = 0; dropout < 2; dropout++) {
        fixture f;
        fixture_make(&f, states, gates, per, peep);
        usg_rng r;
        usg_rng_seed(&r, 1, 0);
        double p = dropout ? 0.3 : 0;
        size_t live = usg_alloc_live_bytes();
        usg_status s = USG_NOMEM;
        for (long k = 1; k < 600 && s != USG_OK; k++) {           /* the forward */
            usg_tensor *out = NULL, *fin[2] = {NULL, NULL};
            usg_alloc_fail_after(k);
            s = RUN(&f, &out, fin, p, &r);
            usg_alloc_fail_after(0);
            if (s == USG_OK) {
                usg_tensor_release(out);
                for (int i = 0; i < states; i++) usg_tensor_release(fin[i]);
            } else {
                assert_int_equal(s, USG_NOMEM);
                assert_null(out);
                assert_null(fin[0]);
                assert_null(fin[1]);
            }
            assert_int_equal(usg_alloc_live_bytes(), live);
        }
        assert_int_equal(s, USG_OK);
        s = USG_NOMEM;
        for (long k = 1; k < 600 && s != USG_OK; k++) {           /* the backward */
            usg_tensor *out = NULL, *fin[2] = {NULL, NULL}, *L = NULL;
            assert_int_equal(RUN(&f, &out, fin, p, &r), USG_OK);
            assert_int_equal(usg_ad_sum(&L, out, USG_ALL_DIMS, false), USG_OK);
            for (int i = 0; i < states; i++) {
                usg_tensor *b = NULL, *c = NULL;
                assert_int_equal(usg_ad_sum(&b, fin[i], USG_ALL_DIMS, false), USG_OK);
                assert_int_equal(usg_ad_binary(&c, USG_ADD, L, b), USG_OK);
                usg_tensor_release(b);
                usg_tensor_release(L);
                L = c;
            }
            usg_alloc_fail_after(k);
            s = usg_backward(L, NULL, false);
            usg_alloc_fail_after(0);
            if (s != USG_OK) assert_int_equal(s, USG_NOMEM);
            usg_tensor_release(L);
            usg_tensor_release(out);
            for (int i = 0; i < states; i++) usg_tensor_release(fin[i]);
            fixture_each(&f, drop_grad);
            assert_int_equal(usg_alloc_live_bytes(), live);
        }
        assert_int_equal(s, USG_OK);
        fixture_each(&f, release_one);
    }
}

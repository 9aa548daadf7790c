/*
 * test_rnn.c -- cmocka tests of the RNN plugin's C side (modules/rnn/rnn.c,
 * the kernels, and rnn_ad.c, the autograd op): values against numbers
 * worked out by hand; f32 (its fast tanh) against f64; the fused op against
 * the same RNN composed of autograd ops step by step (f64, 1e-10);
 * central-difference gradient checks for every activation, 1 and 2 layers,
 * with and without h0 and biases, gradient on out only, on h_n only and on
 * both, dropout between layers, non-contiguous inputs; every error message;
 * nothing recorded without grad; gradients accumulating; allocation failure
 * at every allocation of the forward and the backward, leaking nothing.
 *
 * The plugin's sources are compiled into this test (it links libusagi
 * alone, as every tests/c/test_*.c), so the glob in tests/CMakeLists.txt
 * builds it unchanged.
 */
#include "testutil.h"
#include "gradcheck.h"
#include "../../modules/rnn/rnn.c"
#include "../../modules/rnn/rnn_ad.c"

/* ==== Helpers =========================================================== */

/* A contiguous tensor of normal draws times `scale`. */
static usg_tensor *rnd(usg_rng *r, usg_dtype dt, int ndim, const int64_t *shape, double scale)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_randn(&t, r, dt, ndim, shape, 0, scale), USG_OK);
    return t;
}

static void all_near(const usg_tensor *a, const usg_tensor *b, double tol)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_true(usg_same_shape(a, b));
    for (int64_t i = 0; i < usg_tensor_numel(a); i++)
        near(usg_tensor_get_flat(a, i), usg_tensor_get_flat(b, i), tol);
}

static void has_msg(const char *want)
{
    if (!strstr(usg_errmsg(), want)) fail_msg("message '%s' lacks '%s'", usg_errmsg(), want);
}

/* An RNN's tensors: in[0] = x, then h0 when present, then 4 per layer
 * (w_ih, w_hh, b_ih, b_hh; the biases NULL without bias). */
typedef struct net {
    int layers, n;
    bool has_h0, bias;
    usg_tensor *in[2 + 4 * 2];
} net;

static void net_make(net *m, usg_dtype dt, int64_t T, int64_t B, int64_t I, int64_t H,
                     int layers, bool has_h0, bool bias, uint64_t seed)
{
    usg_rng r;
    usg_rng_seed(&r, seed, 0);
    memset(m, 0, sizeof *m);
    m->layers = layers;
    m->has_h0 = has_h0;
    m->bias = bias;
    m->in[m->n++] = rnd(&r, dt, 3, SHAPE(T, B, I), 1);
    if (has_h0) m->in[m->n++] = rnd(&r, dt, 3, SHAPE(layers, B, H), 0.5);
    for (int l = 0; l < layers; l++) {
        m->in[m->n++] = rnd(&r, dt, 2, SHAPE(H, l ? H : I), 0.6);
        m->in[m->n++] = rnd(&r, dt, 2, SHAPE(H, H), 0.6);
        m->in[m->n++] = bias ? rnd(&r, dt, 1, &H, 0.3) : NULL;
        m->in[m->n++] = bias ? rnd(&r, dt, 1, &H, 0.3) : NULL;
    }
    for (int k = 0; k < m->n; k++)
        if (m->in[k]) m->in[k]->requires_grad = true;
}

static void net_free(net *m)
{
    for (int k = 0; k < m->n; k++) {
        if (!m->in[k]) continue;
        usg_tensor_release(m->in[k]->grad);
        m->in[k]->grad = NULL;
        usg_tensor_release(m->in[k]);
    }
}

static usg_tensor *net_x(net *m) { return m->in[0]; }
static usg_tensor *net_h0(net *m) { return m->has_h0 ? m->in[1] : NULL; }
static usg_tensor **net_w(net *m) { return m->in + (m->has_h0 ? 2 : 1); }

/* ==== Values by hand ==================================================== */

/* T = 2, B = 1, I = H = 1: u^1 = 0.5 x^1 - 0.3 h0 + (0.1 + 0.2),
 * u^2 = 0.5 x^2 - 0.3 z^1 + 0.3, z = f(u). */
static void test_values_by_hand(void **state)
{
    (void)state;
    usg_rnn_act acts[3] = {USG_RNN_TANH, USG_RNN_RELU, USG_RNN_SIGMOID};
    for (int a = 0; a < 3; a++) {
        usg_tensor *x = mk(USG_F64, 3, SHAPE(2, 1, 1), (double[]){1, -2});
        usg_tensor *h0 = mk(USG_F64, 3, SHAPE(1, 1, 1), (double[]){0.4});
        usg_tensor *w[4] = {mk(USG_F64, 2, SHAPE(1, 1), (double[]){0.5}),
                            mk(USG_F64, 2, SHAPE(1, 1), (double[]){-0.3}),
                            mk(USG_F64, 1, SHAPE(1), (double[]){0.1}),
                            mk(USG_F64, 1, SHAPE(1), (double[]){0.2})};
        usg_tensor *out, *hn;
        assert_int_equal(usg_ad_rnn(&out, &hn, x, h0, 1, w, acts[a], 0, NULL, NULL), USG_OK);
        double u1 = 0.5 - 0.3 * 0.4 + 0.3, z1, u2, z2;
        if (a == 0) { z1 = tanh(u1); u2 = -1 - 0.3 * z1 + 0.3; z2 = tanh(u2); }
        else if (a == 1) { z1 = u1 > 0 ? u1 : 0; u2 = -1 - 0.3 * z1 + 0.3; z2 = u2 > 0 ? u2 : 0; }
        else { z1 = 1 / (1 + exp(-u1)); u2 = -1 - 0.3 * z1 + 0.3; z2 = 1 / (1 + exp(-u2)); }
        assert_int_equal(out->ndim, 3);
        assert_int_equal(hn->ndim, 3);
        near(usg_tensor_get_flat(out, 0), z1, 1e-15);
        near(usg_tensor_get_flat(out, 1), z2, 1e-15);
        near(usg_tensor_get_flat(hn, 0), z2, 1e-15);
        assert_null(out->grad_fn);                     /* no input required grad */
        usg_tensor_release(out); usg_tensor_release(hn);
        usg_tensor_release(x); usg_tensor_release(h0);
        for (int k = 0; k < 4; k++) usg_tensor_release(w[k]);
    }
}

/* B = 2, I = 3, H = 2, one step, no bias: z = tanh(x W_in^T + h0 W^T), row by row. */
static void test_values_orientation(void **state)
{
    (void)state;
    usg_tensor *x = mk(USG_F32, 3, SHAPE(1, 2, 3), (double[]){1, 2, 3, -1, 0, 1});
    usg_tensor *h0 = mk(USG_F32, 3, SHAPE(1, 2, 2), (double[]){0.5, -0.5, 1, 0});
    usg_tensor *w[4] = {mk(USG_F32, 2, SHAPE(2, 3), (double[]){0.1, 0.2, 0.3, -0.1, 0, 0.1}),
                        mk(USG_F32, 2, SHAPE(2, 2), (double[]){0.4, -0.2, 0.3, 0.5}), NULL, NULL};
    usg_tensor *out, *hn;
    assert_int_equal(usg_ad_rnn(&out, &hn, x, h0, 1, w, USG_RNN_TANH, 0, NULL, NULL), USG_OK);
    /* row 1: W_in x = (1.4, 0.2), W h0 = (0.3, -0.1); row 2: (0.2, 0.2), (0.4, 0.3) */
    double want[4] = {tanh(1.7), tanh(0.1), tanh(0.6), tanh(0.5)};
    for (int i = 0; i < 4; i++) near(usg_tensor_get_flat(out, i), want[i], 1e-6);
    assert_int_equal(out->dtype, USG_F32);
    usg_tensor_release(out); usg_tensor_release(hn);
    usg_tensor_release(x); usg_tensor_release(h0);
    usg_tensor_release(w[0]); usg_tensor_release(w[1]);
}

/* The f32 kernels (tanh by a rational approximation, gemm in f32) follow
 * the f64 ones to 1e-5, values and gradients, for every activation. */
static void test_f32_follows_f64(void **state)
{
    (void)state;
    usg_rnn_act acts[3] = {USG_RNN_TANH, USG_RNN_RELU, USG_RNN_SIGMOID};
    for (int a = 0; a < 3; a++) {
        net m64, m32;
        net_make(&m64, USG_F64, 8, 3, 5, 6, 2, true, true, 21);
        net_make(&m32, USG_F64, 8, 3, 5, 6, 2, true, true, 21);
        for (int k = 0; k < m32.n; k++) {                  /* the same numbers, in f32 */
            usg_tensor *t;
            assert_int_equal(usg_to_dtype(&t, m32.in[k], USG_F32), USG_OK);
            usg_tensor_release(m32.in[k]);
            t->requires_grad = true;
            m32.in[k] = t;
        }
        usg_tensor *o64, *h64, *o32, *h32;
        assert_int_equal(usg_ad_rnn(&o64, &h64, net_x(&m64), net_h0(&m64), 2, net_w(&m64),
                                    acts[a], 0, NULL, NULL), USG_OK);
        assert_int_equal(usg_ad_rnn(&o32, &h32, net_x(&m32), net_h0(&m32), 2, net_w(&m32),
                                    acts[a], 0, NULL, NULL), USG_OK);
        assert_int_equal(o32->dtype, USG_F32);
        all_near(o32, o64, 1e-5);
        all_near(h32, h64, 1e-5);
        usg_tensor *g64, *g32;
        assert_int_equal(usg_tensor_full(&g64, USG_F64, 3, o64->shape, 1), USG_OK);
        assert_int_equal(usg_tensor_full(&g32, USG_F32, 3, o32->shape, 1), USG_OK);
        assert_int_equal(usg_backward(o64, g64, false), USG_OK);
        assert_int_equal(usg_backward(o32, g32, false), USG_OK);
        for (int k = 0; k < m32.n; k++) all_near(m32.in[k]->grad, m64.in[k]->grad, 1e-5);
        usg_tensor *ts[] = {o64, h64, o32, h32, g64, g32};
        for (int i = 0; i < 6; i++) usg_tensor_release(ts[i]);
        net_free(&m64);
        net_free(&m32);
    }
}

/* ==== The same RNN from autograd ops, step by step ====================== */

static usg_unop unop_of(usg_rnn_act f)
{
    return f == USG_RNN_TANH ? USG_TANH : f == USG_RNN_RELU ? USG_RELU : USG_SIGMOID;
}

/* a <- a + b (both consumed into the new a); NULL b leaves a */
static usg_status add_into(usg_tensor **a, usg_tensor *b, bool release_b)
{
    if (!b) return USG_OK;
    usg_tensor *c;
    usg_status s = usg_ad_binary(&c, USG_ADD, *a, b);
    usg_tensor_release(*a);
    if (release_b) usg_tensor_release(b);
    *a = s == USG_OK ? c : NULL;
    return s;
}

/* z^t = f(x^t W_in^T + z^{t-1} W^T + b_ih + b_hh), one op at a time */
static void composed_layer(usg_tensor **out, usg_tensor **hn, usg_tensor *x, usg_tensor *h0,
                           usg_tensor *const *w, usg_rnn_act f)
{
    int64_t T = x->shape[0];
    usg_tensor *wiT, *whT, *z = h0, *zs[64];
    assert_true(T <= 64);
    assert_int_equal(usg_ad_transpose(&wiT, w[0], 0, 1), USG_OK);
    assert_int_equal(usg_ad_transpose(&whT, w[1], 0, 1), USG_OK);
    if (z) usg_tensor_retain(z);
    for (int64_t t = 0; t < T; t++) {
        usg_tensor *xt, *u, *r = NULL;
        assert_int_equal(usg_ad_select(&xt, x, 0, t), USG_OK);
        assert_int_equal(usg_ad_mm(&u, xt, wiT), USG_OK);
        usg_tensor_release(xt);
        if (z) assert_int_equal(usg_ad_mm(&r, z, whT), USG_OK);
        assert_int_equal(add_into(&u, r, true), USG_OK);
        assert_int_equal(add_into(&u, w[2], false), USG_OK);
        assert_int_equal(add_into(&u, w[3], false), USG_OK);
        usg_tensor_release(z);
        assert_int_equal(usg_ad_unary(&z, unop_of(f), u), USG_OK);
        usg_tensor_release(u);
        zs[t] = z;
        usg_tensor_retain(z);
    }
    assert_int_equal(usg_ad_stack(out, (int)T, zs, 0), USG_OK);
    *hn = z;
    for (int64_t t = 0; t < T; t++) usg_tensor_release(zs[t]);
    usg_tensor_release(wiT);
    usg_tensor_release(whT);
}

static void composed(usg_tensor **out, usg_tensor **hn, net *m, usg_rnn_act f)
{
    usg_tensor *cur = net_x(m), *hs[2];
    usg_tensor_retain(cur);
    for (int l = 0; l < m->layers; l++) {
        usg_tensor *h0l = NULL, *o;
        if (m->has_h0) assert_int_equal(usg_ad_select(&h0l, net_h0(m), 0, l), USG_OK);
        composed_layer(&o, &hs[l], cur, h0l, net_w(m) + 4 * l, f);
        usg_tensor_release(h0l);
        usg_tensor_release(cur);
        cur = o;
    }
    *out = cur;
    assert_int_equal(usg_ad_stack(hn, m->layers, hs, 0), USG_OK);
    for (int l = 0; l < m->layers; l++) usg_tensor_release(hs[l]);
}

/* L = sum(out .* R1) + sum(h_n .* R2), backward; the grads stay in m */
static void backward_both(usg_tensor *out, usg_tensor *hn)
{
    usg_tensor *r1, *r2, *p1, *p2, *s1, *s2, *L;
    usg_rng r;
    usg_rng_seed(&r, 99, 0);
    r1 = rnd(&r, out->dtype, out->ndim, out->shape, 1);
    r2 = rnd(&r, hn->dtype, hn->ndim, hn->shape, 1);
    assert_int_equal(usg_ad_binary(&p1, USG_MUL, out, r1), USG_OK);
    assert_int_equal(usg_ad_binary(&p2, USG_MUL, hn, r2), USG_OK);
    assert_int_equal(usg_ad_sum(&s1, p1, USG_ALL_DIMS, false), USG_OK);
    assert_int_equal(usg_ad_sum(&s2, p2, USG_ALL_DIMS, false), USG_OK);
    assert_int_equal(usg_ad_binary(&L, USG_ADD, s1, s2), USG_OK);
    assert_int_equal(usg_backward(L, NULL, false), USG_OK);
    usg_tensor *ts[] = {r1, r2, p1, p2, s1, s2, L};
    for (int i = 0; i < 7; i++) usg_tensor_release(ts[i]);
}

static void test_matches_composed(void **state)
{
    (void)state;
    usg_rnn_act acts[3] = {USG_RNN_TANH, USG_RNN_RELU, USG_RNN_SIGMOID};
    for (int a = 0; a < 3; a++)
        for (int layers = 1; layers <= 2; layers++)
            for (int h = 0; h < 2; h++) {
                net m1, m2;
                net_make(&m1, USG_F64, 6, 3, 4, 5, layers, h, true, 7 + a);
                net_make(&m2, USG_F64, 6, 3, 4, 5, layers, h, true, 7 + a);
                usg_tensor *o1, *h1, *o2, *h2;
                assert_int_equal(usg_ad_rnn(&o1, &h1, net_x(&m1), net_h0(&m1), layers,
                                            net_w(&m1), acts[a], 0, NULL, NULL), USG_OK);
                composed(&o2, &h2, &m2, acts[a]);
                all_near(o1, o2, 1e-10);
                all_near(h1, h2, 1e-10);
                backward_both(o1, h1);
                backward_both(o2, h2);
                for (int k = 0; k < m1.n; k++) {
                    if (!m1.in[k]) continue;
                    all_near(m1.in[k]->grad, m2.in[k]->grad, 1e-10);
                }
                usg_tensor_release(o1); usg_tensor_release(h1);
                usg_tensor_release(o2); usg_tensor_release(h2);
                net_free(&m1);
                net_free(&m2);
            }
}

/* ==== Gradient checks =================================================== */

enum { ON_OUT, ON_HN, ON_BOTH };

typedef struct gc_cfg {
    net *m;
    usg_rnn_act f;
    int on;
    double dropout;
    bool transpose;      /* feed x and W_in as transposed views */
} gc_cfg;

/* The RNN of cfg->m on the gradcheck's inputs (in = m->in without NULLs),
 * reduced to the output(s) the check puts its gradient on. */
static usg_status gc_rnn(usg_tensor **y, usg_tensor **in, void *ctx)
{
    gc_cfg *c = ctx;
    net *m = c->m;
    usg_tensor *all[2 + 4 * 2] = {NULL}, *out, *hn, *extra[2 * 2 + 1] = {NULL};
    int j = 0, ne = 0;
    for (int k = 0; k < m->n; k++) all[k] = m->in[k] ? in[j++] : NULL;
    usg_tensor *x = all[0];
    usg_tensor **w = all + (m->has_h0 ? 2 : 1);
    usg_tensor *wv[4 * 2];
    memcpy(wv, w, sizeof wv);
    if (c->transpose) {
        /* x (T, B, I) read through a (B, T, I) -> (T, B, I) double transpose
         * would be contiguous again; use a permuted copy's view instead */
        usg_tensor *xt, *xtt;
        assert_int_equal(usg_ad_transpose(&xt, x, 0, 1), USG_OK);
        assert_int_equal(usg_ad_contiguous(&xtt, xt), USG_OK);
        usg_tensor_release(xt);
        assert_int_equal(usg_ad_transpose(&x, xtt, 0, 1), USG_OK);  /* a strided view */
        usg_tensor_release(xtt);
        extra[ne++] = x;
        for (int l = 0; l < m->layers; l++) {
            usg_tensor *a, *b;
            assert_int_equal(usg_ad_transpose(&a, w[4 * l], 0, 1), USG_OK);
            assert_int_equal(usg_ad_contiguous(&b, a), USG_OK);
            usg_tensor_release(a);
            assert_int_equal(usg_ad_transpose(&wv[4 * l], b, 0, 1), USG_OK);
            usg_tensor_release(b);
            extra[ne++] = wv[4 * l];
        }
    }
    usg_rng r;
    usg_rng_seed(&r, 5, 0);             /* the same dropout mask at every call */
    usg_status s = usg_ad_rnn(&out, &hn, x, m->has_h0 ? all[1] : NULL, m->layers, wv, c->f,
                              c->dropout, &r, NULL);
    for (int k = 0; k < ne; k++) usg_tensor_release(extra[k]);
    if (s != USG_OK) return s;
    if (c->on == ON_OUT) { usg_tensor_release(hn); *y = out; return USG_OK; }
    if (c->on == ON_HN) { usg_tensor_release(out); *y = hn; return USG_OK; }
    usg_tensor *a, *b;
    assert_int_equal(usg_ad_reshape(&a, out, 1, SHAPE(-1)), USG_OK);
    assert_int_equal(usg_ad_reshape(&b, hn, 1, SHAPE(-1)), USG_OK);
    s = usg_ad_cat(y, 2, (usg_tensor *[]){a, b}, 0);
    usg_tensor *ts[] = {a, b, out, hn};
    for (int i = 0; i < 4; i++) usg_tensor_release(ts[i]);
    return s;
}

static void check(usg_rnn_act f, int layers, bool has_h0, bool bias, int on, double dropout,
                  bool transpose)
{
    net m;
    net_make(&m, USG_F64, 4, 2, 3, 4, layers, has_h0, bias, 11 + (uint64_t)layers);
    usg_tensor *in[2 + 4 * 2];
    int n = 0;
    for (int k = 0; k < m.n; k++) if (m.in[k]) in[n++] = m.in[k];
    gc_cfg c = {&m, f, on, dropout, transpose};
    if (!gradcheck(gc_rnn, n, in, &c, 1e-6, 1e-6))
        fail_msg("gradcheck: %s, %d layers, h0 %d, bias %d, on %d, dropout %g, transposed %d",
                 usg_rnn_act_name(f), layers, has_h0, bias, on, dropout, transpose);
    net_free(&m);
}

static void test_gradcheck_all_options(void **state)
{
    (void)state;
    usg_rnn_act acts[3] = {USG_RNN_TANH, USG_RNN_RELU, USG_RNN_SIGMOID};
    for (int a = 0; a < 3; a++)
        for (int layers = 1; layers <= 2; layers++)
            for (int h = 0; h < 2; h++)
                for (int on = ON_OUT; on <= ON_BOTH; on++)
                    check(acts[a], layers, h, true, on, 0, false);
}

static void test_gradcheck_no_bias_dropout_views(void **state)
{
    (void)state;
    check(USG_RNN_TANH, 2, true, false, ON_BOTH, 0, false);
    check(USG_RNN_SIGMOID, 1, false, false, ON_HN, 0, false);
    check(USG_RNN_TANH, 2, true, true, ON_BOTH, 0.4, false);
    check(USG_RNN_TANH, 2, true, true, ON_BOTH, 0, true);
    check(USG_RNN_RELU, 1, false, true, ON_OUT, 0, true);
}

/* T = 1 and B = 1: the sums over t > 1 are empty. */
static void test_gradcheck_one_step(void **state)
{
    (void)state;
    for (int h = 0; h < 2; h++) {
        net m;
        net_make(&m, USG_F64, 1, 1, 2, 3, 2, h, true, 3);
        usg_tensor *in[10];
        int n = 0;
        for (int k = 0; k < m.n; k++) if (m.in[k]) in[n++] = m.in[k];
        gc_cfg c = {&m, USG_RNN_TANH, ON_BOTH, 0, false};
        assert_true(gradcheck(gc_rnn, n, in, &c, 1e-6, 1e-6));
        net_free(&m);
    }
}

/* ==== Recording ========================================================= */

static void test_records_only_with_grad(void **state)
{
    (void)state;
    net m;
    net_make(&m, USG_F32, 3, 2, 3, 4, 2, true, true, 1);
    usg_tensor *out, *hn;
    assert_int_equal(usg_ad_rnn(&out, &hn, net_x(&m), net_h0(&m), 2, net_w(&m), USG_RNN_TANH,
                                0, NULL, NULL), USG_OK);
    assert_non_null(out->grad_fn);
    assert_string_equal(usg_node_name(out->grad_fn), "rnn");
    assert_true(hn->requires_grad);
    usg_tensor_release(out); usg_tensor_release(hn);

    bool was = usg_set_grad_enabled(false);
    assert_int_equal(usg_ad_rnn(&out, &hn, net_x(&m), net_h0(&m), 2, net_w(&m), USG_RNN_TANH,
                                0, NULL, NULL), USG_OK);
    usg_set_grad_enabled(was);
    assert_null(out->grad_fn);
    assert_null(hn->grad_fn);
    assert_false(out->requires_grad);
    usg_tensor_release(out); usg_tensor_release(hn);
    net_free(&m);
}

/* Two backwards through two forwards add up: grad = 2 * one backward's. */
static void test_grads_accumulate(void **state)
{
    (void)state;
    net m;
    net_make(&m, USG_F64, 3, 2, 3, 4, 1, true, true, 2);
    usg_tensor *first[6] = {NULL};
    for (int pass = 0; pass < 2; pass++) {
        usg_tensor *out, *hn;
        assert_int_equal(usg_ad_rnn(&out, &hn, net_x(&m), net_h0(&m), 1, net_w(&m),
                                    USG_RNN_TANH, 0, NULL, NULL), USG_OK);
        backward_both(out, hn);
        usg_tensor_release(out); usg_tensor_release(hn);
        if (pass == 0)
            for (int k = 0; k < m.n; k++) assert_int_equal(usg_clone(&first[k], m.in[k]->grad), USG_OK);
    }
    for (int k = 0; k < m.n; k++) {
        usg_tensor *twice;
        assert_int_equal(usg_binary_scalar(&twice, USG_MUL, first[k], 2, false), USG_OK);
        all_near(m.in[k]->grad, twice, 1e-12);
        usg_tensor_release(twice);
        usg_tensor_release(first[k]);
    }
    net_free(&m);
}

/* ==== Errors ============================================================ */

/* A failing call leaves the outputs NULL and allocates nothing. */
static void fails(usg_status want, const char *msg, usg_tensor *x, usg_tensor *h0, int layers,
                  usg_tensor *const *w, double dropout)
{
    usg_tensor *out = (usg_tensor *)1, *hn = (usg_tensor *)1;
    usg_rng r;
    usg_rng_seed(&r, 1, 0);
    size_t live = usg_alloc_live_bytes();
    assert_int_equal(usg_ad_rnn(&out, &hn, x, h0, layers, w, USG_RNN_TANH, dropout, &r, NULL), want);
    assert_null(out);
    assert_null(hn);
    assert_int_equal(usg_alloc_live_bytes(), live);
    has_msg(msg);
}

static void test_errors(void **state)
{
    (void)state;
    usg_rng r;
    usg_rng_seed(&r, 1, 0);
    usg_tensor *x = rnd(&r, USG_F32, 3, SHAPE(5, 3, 8), 1);
    usg_tensor *h0 = rnd(&r, USG_F32, 3, SHAPE(2, 3, 4), 1);
    usg_tensor *w[8] = {rnd(&r, USG_F32, 2, SHAPE(4, 8), 1), rnd(&r, USG_F32, 2, SHAPE(4, 4), 1),
                        rnd(&r, USG_F32, 1, SHAPE(4), 1), rnd(&r, USG_F32, 1, SHAPE(4), 1),
                        rnd(&r, USG_F32, 2, SHAPE(4, 4), 1), rnd(&r, USG_F32, 2, SHAPE(4, 4), 1),
                        NULL, NULL};
    usg_tensor *bad3 = rnd(&r, USG_F32, 3, SHAPE(5, 3, 7), 1);
    usg_tensor *bad2 = rnd(&r, USG_F32, 2, SHAPE(5, 3), 1);
    usg_tensor *empty = rnd(&r, USG_F32, 3, SHAPE(0, 3, 8), 1);
    usg_tensor *x64 = rnd(&r, USG_F64, 3, SHAPE(5, 3, 8), 1);
    usg_tensor *xi = NULL, *h0bad = rnd(&r, USG_F32, 3, SHAPE(1, 3, 4), 1);
    usg_tensor *h064 = rnd(&r, USG_F64, 3, SHAPE(2, 3, 4), 1);
    assert_int_equal(usg_tensor_zeros(&xi, USG_I32, 3, SHAPE(5, 3, 8)), USG_OK);
    usg_tensor *wbad[8];
    memcpy(wbad, w, sizeof wbad);

    fails(USG_SHAPE, "rnn: input must be (T, B, 8), got (5, 3, 7)", bad3, NULL, 1, w, 0);
    fails(USG_SHAPE, "rnn: input must be 3-D (T, B, I), time-major, got (5, 3)", bad2, NULL, 1, w, 0);
    fails(USG_SHAPE, "rnn: input must have T >= 1 steps", empty, NULL, 1, w, 0);
    fails(USG_TYPE, "rnn: input must be f32 or f64, got i32", xi, NULL, 1, w, 0);
    fails(USG_TYPE, "rnn: weight_ih_l0 must be f64 like the input, got f32", x64, NULL, 1, w, 0);
    fails(USG_SHAPE, "rnn: h0 must be (2, 3, 4) (num_layers, B, H), got (1, 3, 4)", x, h0bad, 2, w, 0);
    fails(USG_TYPE, "rnn: h0 must be f32 like the input, got f64", x, h064, 2, w, 0);
    fails(USG_ARG, "rnn: num_layers must be >= 1, got 0", x, NULL, 0, w, 0);
    fails(USG_ARG, "rnn: dropout must be in [0, 1), got 1", x, NULL, 2, w, 1);
    fails(USG_ARG, "rnn: dropout must be in [0, 1), got -0.5", x, NULL, 2, w, -0.5);

    wbad[1] = bad2;                                            /* weight_hh (5, 3) */
    fails(USG_SHAPE, "rnn: weight_hh_l0 must be (4, 4), got (5, 3)", x, NULL, 1, wbad, 0);
    wbad[1] = w[1];
    wbad[3] = w[0];                                            /* bias_hh (4, 8) */
    fails(USG_SHAPE, "rnn: bias_hh_l0 must be (4,), got (4, 8)", x, NULL, 1, wbad, 0);
    wbad[3] = w[3];
    wbad[4] = w[0];                                            /* layer 1 reading 8 */
    fails(USG_SHAPE, "rnn: weight_ih_l1 must be (4, 4) (it reads layer 0's 4 outputs), got (4, 8)",
          x, NULL, 2, wbad, 0);
    wbad[4] = w[4];
    wbad[5] = NULL;
    fails(USG_ARG, "rnn: weight_hh_l1 is missing", x, NULL, 2, wbad, 0);
    wbad[5] = w[5];
    wbad[0] = bad2;                                            /* weight_ih (5, 3) */
    fails(USG_SHAPE, "rnn: input must be (T, B, 3), got (5, 3, 8)", x, NULL, 1, wbad, 0);
    wbad[0] = empty;                                           /* 3-D weight */
    fails(USG_SHAPE, "rnn: weight_ih_l0 must be (H, I) with H, I >= 1, got (0, 3, 8)", x, NULL, 1,
          wbad, 0);

    /* the single layer names its own h0 shape */
    usg_tensor *o = NULL, *hn = NULL, *h0l = rnd(&r, USG_F32, 2, SHAPE(3, 5), 1);
    assert_int_equal(usg_ad_rnn_layer(&o, &hn, x, h0l, w[0], w[1], w[2], w[3], USG_RNN_TANH, 0, NULL),
                     USG_SHAPE);
    has_msg("rnn: h0 must be (3, 4) (B, H), got (3, 5)");
    assert_null(o);

    usg_tensor *all[] = {x, h0, bad3, bad2, empty, x64, xi, h0bad, h064, h0l};
    for (int i = 0; i < 10; i++) usg_tensor_release(all[i]);
    for (int i = 0; i < 6; i++) usg_tensor_release(w[i]);
}

static void test_act_names(void **state)
{
    (void)state;
    usg_rnn_act f;
    assert_true(usg_rnn_act_parse("relu", &f));
    assert_int_equal(f, USG_RNN_RELU);
    assert_true(usg_rnn_act_parse("sigmoid", &f));
    assert_int_equal(f, USG_RNN_SIGMOID);
    assert_false(usg_rnn_act_parse("gelu", &f));
    assert_string_equal(usg_rnn_act_name(USG_RNN_TANH), "tanh");
}

/* ==== Allocation failure ================================================ */

/* Fail the k-th allocation of a forward (then of a backward) for every k
 * until the call succeeds: USG_NOMEM each time, outputs NULL, and once all
 * is released the live bytes are what they were. */
static void release_grads(net *m)
{
    for (int i = 0; i < m->n; i++) {
        if (!m->in[i]) continue;
        usg_tensor_release(m->in[i]->grad);
        m->in[i]->grad = NULL;
    }
}

static void test_nomem(void **state)
{
    (void)state;
    for (int dropout = 0; dropout < 2; dropout++) {
        net m;
        net_make(&m, USG_F32, 4, 2, 3, 4, 2, true, true, 4);
        usg_rng r;
        usg_rng_seed(&r, 1, 0);
        size_t live = usg_alloc_live_bytes();
        double p = dropout ? 0.3 : 0;
        usg_status s = USG_NOMEM;
        /* the forward */
        for (long k = 1; k < 400 && s != USG_OK; k++) {
            usg_tensor *out = NULL, *hn = NULL;
            usg_alloc_fail_after(k);
            s = usg_ad_rnn(&out, &hn, net_x(&m), net_h0(&m), 2, net_w(&m), USG_RNN_TANH, p, &r, NULL);
            usg_alloc_fail_after(0);
            if (s == USG_OK) { usg_tensor_release(out); usg_tensor_release(hn); }
            else { assert_int_equal(s, USG_NOMEM); assert_null(out); assert_null(hn); }
            assert_int_equal(usg_alloc_live_bytes(), live);
        }
        assert_int_equal(s, USG_OK);
        /* the backward, through both outputs */
        s = USG_NOMEM;
        for (long k = 1; k < 400 && s != USG_OK; k++) {
            usg_tensor *out, *hn, *a, *b, *L;
            assert_int_equal(usg_ad_rnn(&out, &hn, net_x(&m), net_h0(&m), 2, net_w(&m),
                                        USG_RNN_TANH, p, &r, NULL), USG_OK);
            assert_int_equal(usg_ad_sum(&a, out, USG_ALL_DIMS, false), USG_OK);
            assert_int_equal(usg_ad_sum(&b, hn, USG_ALL_DIMS, false), USG_OK);
            assert_int_equal(usg_ad_binary(&L, USG_ADD, a, b), USG_OK);
            usg_alloc_fail_after(k);
            s = usg_backward(L, NULL, false);
            usg_alloc_fail_after(0);
            if (s != USG_OK) assert_int_equal(s, USG_NOMEM);
            usg_tensor *ts[] = {out, hn, a, b, L};
            for (int i = 0; i < 5; i++) usg_tensor_release(ts[i]);
            release_grads(&m);
            assert_int_equal(usg_alloc_live_bytes(), live);
        }
        assert_int_equal(s, USG_OK);
        net_free(&m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_by_hand),
        cmocka_unit_test(test_values_orientation),
        cmocka_unit_test(test_f32_follows_f64),
        cmocka_unit_test(test_matches_composed),
        cmocka_unit_test(test_gradcheck_all_options),
        cmocka_unit_test(test_gradcheck_no_bias_dropout_views),
        cmocka_unit_test(test_gradcheck_one_step),
        cmocka_unit_test(test_records_only_with_grad),
        cmocka_unit_test(test_grads_accumulate),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_act_names),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

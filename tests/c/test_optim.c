/*
 * test_optim.c -- cmocka tests of host/core/optim.c: the first three steps
 * of every optimizer and option on a small quadratic against reference
 * values, in f64 and f32; state after the steps; the gradient norm and
 * clipping; every error path; non-contiguous gradients; allocation failure.
 *
 * The quadratic: L(p) = sum_i w_i (p_i - c_i)^2, so g_i = 2 w_i (p_i - c_i),
 * from p0 = (1, -2, 0.5), c = (0.5, 1, -1), w = (1, 0.5, 2). The reference
 * values come from a plain-Python transcription (in double) of PyTorch
 * 1.13's _single_tensor_sgd / adam / adamw / adagrad / rmsprop; the same
 * numbers are in tests/lua/optim_spec.lua. First steps checked by hand:
 * SGD lr 0.1: g = (1, -3, 6), p1 = (0.9, -1.7, -0.1); Adam: p1 = p0 - lr
 * sign(g) (up to eps).
 */
#include "testutil.h"
#include "usagi/optim.h"

static const double P0[3] = {1.0, -2.0, 0.5}, C[3] = {0.5, 1.0, -1.0}, W[3] = {1.0, 0.5, 2.0};

/* ==== Helpers =========================================================== */

static usg_tensor *zeros3(usg_dtype dt)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_zeros(&t, dt, 1, SHAPE(3)), USG_OK);
    return t;
}

static void expect_vals(const usg_tensor *t, const double *v, double tol)
{
    for (int64_t i = 0; i < usg_tensor_numel(t); i++) near(usg_tensor_get_flat(t, i), v[i], tol);
}

/* g = 2 w (p - c), a new tensor of p's dtype */
static usg_tensor *grad_of(const usg_tensor *p)
{
    double g[3];
    for (int i = 0; i < 3; i++) g[i] = 2 * W[i] * (usg_tensor_get_flat(p, i) - C[i]);
    return mk(p->dtype, 1, SHAPE(3), g);
}

static double tol_of(usg_dtype dt) { return dt == USG_F64 ? 1e-12 : 2e-6; }

static const usg_dtype FLOATS[] = {USG_F32, USG_F64};

/* One optimizer run: `step` does one update of p with its state. */
typedef struct runner {
    usg_tensor *s[3];
    usg_status (*step)(struct runner *r, usg_tensor *p, usg_tensor *g, int64_t t);
    const void *opts;
} runner;

static usg_status sgd_run(runner *r, usg_tensor *p, usg_tensor *g, int64_t t)
{ return usg_sgd_step(p, g, r->s[0], t, r->opts); }
static usg_status adam_run(runner *r, usg_tensor *p, usg_tensor *g, int64_t t)
{ return usg_adam_step(p, g, r->s[0], r->s[1], r->s[2], t, r->opts); }
static usg_status adagrad_run(runner *r, usg_tensor *p, usg_tensor *g, int64_t t)
{ return usg_adagrad_step(p, g, r->s[0], t, r->opts); }
static usg_status rmsprop_run(runner *r, usg_tensor *p, usg_tensor *g, int64_t t)
{ (void)t; return usg_rmsprop_step(p, g, r->s[0], r->s[1], r->s[2], r->opts); }

/* Three steps from P0 in dtype dt; want[k] is p after step k + 1. state0
 * (may be NULL) is the initial value of every state element; want_state
 * (may be NULL) the first state tensor after three steps. */
static void run3(runner r, usg_dtype dt, double state0, const double want[3][3],
                 const double *want_state)
{
    usg_tensor *p = mk(dt, 1, SHAPE(3), P0);
    for (int j = 0; j < 3; j++) {
        r.s[j] = zeros3(dt);
        assert_int_equal(usg_fill_(r.s[j], state0), USG_OK);
    }
    for (int k = 0; k < 3; k++) {
        usg_tensor *g = grad_of(p);
        long v = p->storage->version;
        assert_int_equal(r.step(&r, p, g, k + 1), USG_OK);
        assert_true(p->storage->version > v);
        expect_vals(p, want[k], tol_of(dt));
        usg_tensor_release(g);
    }
    if (want_state) expect_vals(r.s[0], want_state, tol_of(dt));
    for (int j = 0; j < 3; j++) usg_tensor_release(r.s[j]);
    usg_tensor_release(p);
}

/* ==== Update rules against the reference ================================ */

static void test_sgd(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        usg_sgd_opts plain = {.lr = 0.1};
        run3((runner){.step = sgd_run, .opts = &plain}, FLOATS[d], 0,
             (const double[3][3]){{0.9, -1.7, -0.1}, {0.82, -1.43, -0.46},
                                  {0.756, -1.187, -0.676}}, NULL);
        usg_sgd_opts mom = {.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.1};
        run3((runner){.step = sgd_run, .opts = &mom}, FLOATS[d], 0,
             (const double[3][3]){{0.89, -1.68, -0.105},
                                  {0.74754999999999994, -1.2495999999999998, -0.82797500000000002},
                                  {0.59085224999999997, -0.74351199999999984, -1.508917625}},
             VALS(1.5669775000000001, -5.06088, 6.8094262500000005));
        usg_sgd_opts nest = {.lr = 0.1, .momentum = 0.9, .nesterov = true};
        run3((runner){.step = sgd_run, .opts = &nest}, FLOATS[d], 0,
             (const double[3][3]){{0.81, -1.43, -0.64}, {0.6112, -0.7253, -1.3996},
                                  {0.445824, 0.018037000000000081, -1.6499440000000001}},
             VALS(1.5904, -6.3423, 4.5576));
    }
}

static void test_adam(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        usg_adam_opts plain = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
        run3((runner){.step = adam_run, .opts = &plain}, FLOATS[d], 0,
             (const double[3][3]){{0.90000000099999999, -1.9000000003333333, 0.4000000001666667},
                                  {0.80118742165916679, -1.8001027077505518, 0.30023906195422528},
                                  {0.70487125256029959, -1.7003815239578244, 0.20090287000446624}},
             VALS(0.2132374845118333, -0.78401027080505503, 1.5100956248416897));
        usg_adam_opts ams = {.lr = 0.1, .beta1 = 0.8, .beta2 = 0.5, .eps = 1e-8,
                             .weight_decay = 0.1, .amsgrad = true};
        run3((runner){.step = adam_run, .opts = &ams}, FLOATS[d], 0,
             (const double[3][3]){{0.90000000090909082, -1.9000000003124999, 0.40000000016528925},
                                  {0.7981097480786099, -1.7996229013541378, 0.29926775319825522},
                                  {0.70215124765958015, -1.6986398620174641, 0.19730321952898197}},
             VALS(0.41840609449847066, -1.4999170383529101, 2.722199557730999));
    }
}

static void test_adamw(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        usg_adam_opts plain = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                               .weight_decay = 1e-2, .decoupled = true};
        run3((runner){.step = adam_run, .opts = &plain}, FLOATS[d], 0,
             (const double[3][3]){{0.89900000099999999, -1.8980000003333333, 0.39950000016666665},
                                  {0.79930830337733527, -1.7962070949010098, 0.29934110594762653},
                                  {0.70225828735409168, -1.6946961380458634, 0.19970958351436735}},
             NULL);
        usg_adam_opts ams = {.lr = 0.1, .beta1 = 0.8, .beta2 = 0.5, .eps = 1e-8,
                             .weight_decay = 0.5, .amsgrad = true, .decoupled = true};
        run3((runner){.step = adam_run, .opts = &ams}, FLOATS[d], 0,
             (const double[3][3]){{0.85000000099999995, -1.8000000003333332, 0.37500000016666662},
                                  {0.70543792944795147, -1.6092792652337702, 0.25535684827640304},
                                  {0.58283044151062191, -1.4269416013094725, 0.14023117561535478}},
             VALS(0.32217517209918051, -1.353855853100087, 2.6522854787277885));
    }
}

static void test_adagrad(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        usg_adagrad_opts plain = {.lr = 0.1, .eps = 1e-10};
        run3((runner){.step = adagrad_run, .opts = &plain}, FLOATS[d], 0,
             (const double[3][3]){{0.90000000001000002, -1.9000000000033332, 0.40000000000166663},
                                  {0.83753049525848333, -1.8304977903202102, 0.33176817496645344},
                                  {0.79089917679624999, -1.7743593459421911, 0.27732453908112381}},
             VALS(2.0957073409497484, 25.421717741026924, 95.737703549730313));
        usg_adagrad_opts decay = {.lr = 0.1, .lr_decay = 0.5, .weight_decay = 0.1, .eps = 1e-10};
        run3((runner){.step = adagrad_run, .opts = &decay}, FLOATS[d], 0.2,
             (const double[3][3]){{0.90736328869048433, -1.9009624863086374, 0.40027209083991533},
                                  {0.86693919363902849, -1.8548775322145048, 0.35487442156193455},
                                  {0.84285965097734494, -1.8267638012927609, 0.3273760642945297}},
             VALS(2.9032019850224344, 29.23846517172985, 98.381547652774344));
    }
}

static void test_rmsprop(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        usg_rmsprop_opts plain = {.lr = 0.01, .alpha = 0.99, .eps = 1e-8};
        run3((runner){.step = rmsprop_run, .opts = &plain}, FLOATS[d], 0,
             (const double[3][3]){{0.90000000999999907, -1.9000000033333333, 0.40000000166666672},
                                  {0.83733917795749246, -1.8303174519233238, 0.33158511361963217},
                                  {0.7904332263210434, -1.7738885724144244, 0.27685149625274852}},
             VALS(0.020688909156201467, 0.25157496897801757, 0.94699902710934625));
        usg_rmsprop_opts all = {.lr = 0.01, .alpha = 0.9, .eps = 1e-8, .weight_decay = 0.1,
                                .momentum = 0.9, .centered = true};
        run3((runner){.step = rmsprop_run, .opts = &all}, FLOATS[d], 0,
             (const double[3][3]){{0.96666666767676768, -1.9666666670138888, 0.46666666685032138},
                                  {0.91198749619399622, -1.9113157421007276, 0.41145409728988475},
                                  {0.84244120249337162, -1.8393564876800477, 0.33997817123888446}},
             VALS(0.27724529819925398, 2.692558935265887, 9.3460319510032193));
    }
}

/* A transposed (non-contiguous) gradient gives the same step as its
 * contiguous copy; an empty parameter is a no-op. */
static void test_layouts(void **state)
{
    (void)state;
    usg_tensor *p = mk(USG_F64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    usg_tensor *gt = mk(USG_F64, 2, SHAPE(2, 2), VALS(10, 30, 20, 40)), *g;
    assert_int_equal(usg_transpose(&g, gt, 0, 1), USG_OK);      /* (10 20; 30 40) */
    assert_false(usg_tensor_is_contiguous(g));
    usg_sgd_opts o = {.lr = 0.1};
    assert_int_equal(usg_sgd_step(p, g, NULL, 1, &o), USG_OK);
    expect_vals(p, VALS(0, 0, 0, 0), 1e-12);
    usg_tensor_release(g);
    usg_tensor_release(gt);
    usg_tensor_release(p);

    usg_tensor *e, *eg;
    assert_int_equal(usg_tensor_zeros(&e, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    assert_int_equal(usg_tensor_zeros(&eg, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    usg_adam_opts a = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    expect_err(usg_adam_step(e, eg, e, eg, NULL, 1, &a), USG_ARG, "must not share memory");
    usg_tensor *m, *v;
    assert_int_equal(usg_tensor_zeros(&m, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    assert_int_equal(usg_tensor_zeros(&v, USG_F32, 2, SHAPE(0, 3)), USG_OK);
    assert_int_equal(usg_adam_step(e, eg, m, v, NULL, 1, &a), USG_OK);
    usg_tensor_release(m);
    usg_tensor_release(v);
    usg_tensor_release(e);
    usg_tensor_release(eg);
}

/* Plain Adam on contiguous f32 takes its own loop; a transposed gradient
 * takes the general one: the two must give the same bits, step after step. */
static void test_adam_f32_paths(void **state)
{
    (void)state;
    enum { R = 7, C = 9, N = R * C };
    double pv[N], gv[N];
    for (int i = 0; i < N; i++) pv[i] = sin(0.3 * i), gv[i] = cos(1.7 * i) * (1 + i % 5);
    usg_tensor *p1 = mk(USG_F32, 2, SHAPE(R, C), pv), *p2 = mk(USG_F32, 2, SHAPE(R, C), pv);
    usg_tensor *g1 = mk(USG_F32, 2, SHAPE(R, C), gv), *gt = NULL, *g2 = NULL, *st[4];
    assert_int_equal(usg_transpose(&gt, g1, 0, 1), USG_OK);
    assert_int_equal(usg_contiguous(&g2, gt), USG_OK);                      /* (C, R) */
    usg_tensor *g2t = NULL;
    assert_int_equal(usg_transpose(&g2t, g2, 0, 1), USG_OK);                /* (R, C) view */
    assert_false(usg_tensor_is_contiguous(g2t));
    for (int k = 0; k < 4; k++) assert_int_equal(usg_tensor_zeros(&st[k], USG_F32, 2, SHAPE(R, C)), USG_OK);
    usg_adam_opts a = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    for (int step = 1; step <= 5; step++) {
        assert_int_equal(usg_adam_step(p1, g1, st[0], st[1], NULL, step, &a), USG_OK);
        assert_int_equal(usg_adam_step(p2, g2t, st[2], st[3], NULL, step, &a), USG_OK);
    }
    assert_memory_equal(usg_tensor_data(p1), usg_tensor_data(p2), N * sizeof(float));
    assert_memory_equal(usg_tensor_data(st[1]), usg_tensor_data(st[3]), N * sizeof(float));
    for (int k = 0; k < 4; k++) usg_tensor_release(st[k]);
    usg_tensor_release(g2t);
    usg_tensor_release(g2);
    usg_tensor_release(gt);
    usg_tensor_release(g1);
    usg_tensor_release(p1);
    usg_tensor_release(p2);
}

/* ==== Gradient norm and clipping ======================================== */

static void test_grad_norm(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F32, 1, SHAPE(2), VALS(3, -4));
    usg_tensor *b = mk(USG_F64, 2, SHAPE(1, 2), VALS(12, 0));
    usg_tensor *gs[2] = {a, b};
    double total;
    assert_int_equal(usg_grad_norm(&total, 2, gs, 2), USG_OK);
    near(total, 13, 1e-12);                                   /* sqrt(9 + 16 + 144) */
    assert_int_equal(usg_grad_norm(&total, 2, gs, 1), USG_OK);
    near(total, 19, 1e-12);
    assert_int_equal(usg_grad_norm(&total, 2, gs, INFINITY), USG_OK);
    near(total, 12, 1e-12);
    assert_int_equal(usg_grad_norm(&total, 2, gs, 3), USG_OK);
    near(total, cbrt(27 + 64 + 1728), 1e-12);
    assert_int_equal(usg_grad_norm(&total, 0, gs, 2), USG_OK);
    near(total, 0, 0);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

static void test_clip(void **state)
{
    (void)state;
    usg_tensor *a = mk(USG_F64, 1, SHAPE(2), VALS(3, -4));
    usg_tensor *b = mk(USG_F64, 2, SHAPE(1, 2), VALS(12, 0));
    usg_tensor *gs[2] = {a, b};
    double total;
    /* below the threshold: untouched */
    assert_int_equal(usg_clip_grad_norm(&total, 2, gs, 20, 2), USG_OK);
    near(total, 13, 1e-12);
    expect_vals(a, VALS(3, -4), 0);
    /* above: scaled by c = 1.3 / (13 + 1e-6) */
    assert_int_equal(usg_clip_grad_norm(&total, 2, gs, 1.3, 2), USG_OK);
    near(total, 13, 1e-12);
    double c = 1.3 / (13 + 1e-6);
    expect_vals(a, VALS(3 * c, -4 * c), 1e-12);
    expect_vals(b, VALS(12 * c, 0), 1e-12);
    /* a transposed view is clipped in place through its strides */
    usg_tensor *m = mk(USG_F32, 2, SHAPE(2, 2), VALS(0, 6, 8, 0)), *mt;
    assert_int_equal(usg_transpose(&mt, m, 0, 1), USG_OK);
    assert_int_equal(usg_clip_grad_norm(&total, 1, &mt, 5, 2), USG_OK);
    near(total, 10, 1e-6);
    expect_vals(m, VALS(0, 3, 4, 0), 1e-6);
    usg_tensor_release(mt);
    usg_tensor_release(m);
    usg_tensor_release(a);
    usg_tensor_release(b);
}

/* ==== Errors ============================================================ */

static void test_errors(void **state)
{
    (void)state;
    usg_tensor *p = mk(USG_F32, 1, SHAPE(3), P0), *g = grad_of(p), *s = zeros3(USG_F32);
    usg_tensor *g64 = mk(USG_F64, 1, SHAPE(3), P0), *g2 = mk(USG_F32, 1, SHAPE(2), P0);
    usg_tensor *pi = mk(USG_I32, 1, SHAPE(3), P0), *gi = mk(USG_I32, 1, SHAPE(3), P0);
    usg_tensor *m = mk(USG_F32, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6)), *mt, *mtg;
    assert_int_equal(usg_transpose(&mt, m, 0, 1), USG_OK);
    assert_int_equal(usg_tensor_zeros(&mtg, USG_F32, 2, SHAPE(2, 3)), USG_OK);
    usg_sgd_opts o = {.lr = 0.1}, bad;

    expect_err(usg_sgd_step(pi, gi, NULL, 1, &o), USG_TYPE, "SGD: param must be f32 or f64");
    expect_err(usg_sgd_step(mt, mtg, NULL, 1, &o), USG_ARG, "SGD: param must be contiguous");
    expect_err(usg_sgd_step(p, g64, NULL, 1, &o), USG_TYPE, "SGD: grad must be f32 (3,) like the param, got f64 (3,)");
    expect_err(usg_sgd_step(p, g2, NULL, 1, &o), USG_SHAPE, "got f32 (2,)");
    expect_err(usg_sgd_step(p, g, NULL, 0, &o), USG_ARG, "SGD: step must be >= 1");
    bad = o; bad.lr = -1;
    expect_err(usg_sgd_step(p, g, NULL, 1, &bad), USG_ARG, "SGD: lr must be a finite number >= 0");
    bad = o; bad.lr = NAN;
    expect_err(usg_sgd_step(p, g, NULL, 1, &bad), USG_ARG, "SGD: lr must");
    bad = o; bad.momentum = 0.9;
    expect_err(usg_sgd_step(p, g, NULL, 1, &bad), USG_ARG, "SGD: momentum_buffer is required");
    expect_err(usg_sgd_step(p, g, g2, 1, &bad), USG_SHAPE, "SGD: momentum_buffer must be f32 (3,)");
    expect_err(usg_sgd_step(p, g, p, 1, &bad), USG_ARG, "must not share memory");
    bad.nesterov = true, bad.dampening = 0.1;
    expect_err(usg_sgd_step(p, g, s, 1, &bad), USG_ARG, "SGD: nesterov needs momentum > 0");
    bad = o; bad.weight_decay = -0.1;
    expect_err(usg_sgd_step(p, g, NULL, 1, &bad), USG_ARG, "SGD: weight_decay");

    usg_adam_opts a = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}, ab;
    ab = a; ab.beta1 = 1;
    expect_err(usg_adam_step(p, g, s, s, NULL, 1, &ab), USG_ARG, "Adam: betas[1] must be in [0, 1)");
    ab = a; ab.beta2 = -0.5; ab.decoupled = true;
    expect_err(usg_adam_step(p, g, s, s, NULL, 1, &ab), USG_ARG, "AdamW: betas[2]");
    ab = a; ab.amsgrad = true;
    expect_err(usg_adam_step(p, g, s, s, NULL, 1, &ab), USG_ARG, "Adam: max_exp_avg_sq is required");
    expect_err(usg_adam_step(p, g, mt, s, NULL, 1, &a), USG_SHAPE, "Adam: exp_avg must be");
    expect_err(usg_adam_step(p, g, s, g64, NULL, 1, &a), USG_TYPE, "Adam: exp_avg_sq must be");
    ab = a; ab.eps = -1;
    expect_err(usg_adam_step(p, g, s, s, NULL, 1, &ab), USG_ARG, "Adam: eps");

    usg_adagrad_opts ad = {.lr = 0.1, .eps = 1e-10};
    expect_err(usg_adagrad_step(p, g, NULL, 1, &ad), USG_ARG, "Adagrad: sum is required");
    ad.lr_decay = -1;
    expect_err(usg_adagrad_step(p, g, s, 1, &ad), USG_ARG, "Adagrad: lr_decay");

    usg_rmsprop_opts r = {.lr = 0.01, .alpha = 0.99, .eps = 1e-8, .centered = true};
    expect_err(usg_rmsprop_step(p, g, s, NULL, NULL, &r), USG_ARG, "RMSprop: grad_avg is required");
    r.centered = false, r.momentum = 0.5;
    expect_err(usg_rmsprop_step(p, g, s, NULL, NULL, &r), USG_ARG, "RMSprop: momentum_buffer");
    r.momentum = 0, r.alpha = -1;
    expect_err(usg_rmsprop_step(p, g, s, NULL, NULL, &r), USG_ARG, "RMSprop: alpha");
    /* nothing was written by the failures */
    expect_vals(p, P0, 1e-7);

    double total = -1;
    usg_tensor *gs[2] = {g, gi};
    expect_err(usg_grad_norm(&total, 2, gs, 2), USG_TYPE, "clip_grad_norm: grad 2 must be");
    expect_err(usg_grad_norm(&total, 1, gs, 0), USG_ARG, "clip_grad_norm: norm_type must be > 0");
    expect_err(usg_grad_norm(&total, 1, gs, NAN), USG_ARG, "norm_type");
    expect_err(usg_clip_grad_norm(&total, 1, gs, -1, 2), USG_ARG, "clip_grad_norm: max_norm");
    expect_err(usg_clip_grad_norm(&total, 1, gs, NAN, 2), USG_ARG, "max_norm");
    usg_tensor *one = mk(USG_F32, 1, SHAPE(1), VALS(1)), *ex;
    assert_int_equal(usg_expand(&ex, one, 1, SHAPE(4)), USG_OK);
    expect_err(usg_clip_grad_norm(&total, 1, &ex, 1, 2), USG_ARG, "clip_grad_norm: grad 1 is an expanded view");
    usg_tensor_release(ex);
    usg_tensor_release(one);

    usg_tensor *all[] = {p, g, s, g64, g2, pi, gi, m, mt, mtg};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) usg_tensor_release(all[i]);
}

/* A non-contiguous gradient is copied first: failing that allocation is
 * USG_NOMEM with param, state and memory as before. Clipping never
 * allocates. */
static void test_nomem(void **state)
{
    (void)state;
    usg_tensor *p = mk(USG_F64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    usg_tensor *gt = mk(USG_F64, 2, SHAPE(2, 2), VALS(1, 1, 1, 1)), *g, *buf;
    assert_int_equal(usg_transpose(&g, gt, 0, 1), USG_OK);
    assert_int_equal(usg_tensor_zeros(&buf, USG_F64, 2, SHAPE(2, 2)), USG_OK);
    size_t live = usg_alloc_live_bytes();
    usg_sgd_opts o = {.lr = 0.1, .momentum = 0.9};
    usg_alloc_fail_after(1);
    usg_status s = usg_sgd_step(p, g, buf, 1, &o);
    usg_alloc_fail_after(0);
    assert_int_equal(s, USG_NOMEM);
    assert_int_equal(usg_alloc_live_bytes(), live);
    expect_vals(p, VALS(1, 2, 3, 4), 0);
    expect_vals(buf, VALS(0, 0, 0, 0), 0);

    /* clipping allocates nothing: it succeeds with allocation failing */
    double total = -1;
    usg_alloc_fail_after(1);
    s = usg_clip_grad_norm(&total, 1, &g, 1, 2);
    usg_alloc_fail_after(0);
    assert_int_equal(s, USG_OK);
    near(total, 2, 1e-12);
    assert_int_equal(usg_alloc_live_bytes(), live);
    expect_vals(gt, VALS(0.5, 0.5, 0.5, 0.5), 1e-6);

    usg_tensor_release(buf);
    usg_tensor_release(g);
    usg_tensor_release(gt);
    usg_tensor_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),       cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adamw),     cmocka_unit_test(test_adagrad),
        cmocka_unit_test(test_rmsprop),   cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_adam_f32_paths),
        cmocka_unit_test(test_grad_norm), cmocka_unit_test(test_clip),
        cmocka_unit_test(test_errors),    cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

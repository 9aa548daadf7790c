/*
 * test_autograd.c -- cmocka tests of host/core/autograd.c beyond what the
 * ops' own tests (test_ad_*.c) walk through: usg_record's contract, and the
 * gradient-ready hook.
 *
 * usg_record: a node with every output, the saved tensors at their
 * indices once NULL entries are skipped, and a copy of the ctx; nothing
 * recorded, and nothing allocated, for an integer result, in no-grad mode
 * or when no input requires grad, with a handed-over ctx freed then; and
 * on any failure (each allocation in turn, too many saves) the outputs
 * released and NULL, the ctx freed, nothing leaked.
 *
 * The hook fires once per leaf of the graph, after the last edge into it
 * ran, so the gradient it sees is final, even for a leaf used twice at
 * different depths; leaves outside the graph never fire; with no hook the
 * backward is unchanged; and it is not called once removed.
 *
 *   w = a * b * a + c:  dw/da = 2ab = 12, dw/db = a^2 = 4, dw/dc = 1  (a = 2, b = 3)
 */
#include "testutil.h"

typedef struct seen { usg_tensor *leaf[8]; double grad[8]; int n; } seen;

static void record(usg_tensor *leaf, void *ud)
{
    seen *s = ud;
    assert_true(s->n < 8);
    s->leaf[s->n] = leaf;
    s->grad[s->n++] = leaf->grad ? usg_tensor_get_flat(leaf->grad, 0) : NAN;
}

static usg_tensor *leaf(double v)
{
    usg_tensor *t = mk(USG_F32, 1, SHAPE(1), VALS(v));
    t->requires_grad = true;
    return t;
}

/* w = a * b * a + c, then backward of its sum */
static void run(usg_tensor *a, usg_tensor *b, usg_tensor *c)
{
    usg_tensor *ab = NULL, *aba = NULL, *w = NULL;
    assert_int_equal(usg_ad_binary(&ab, USG_MUL, a, b), USG_OK);
    assert_int_equal(usg_ad_binary(&aba, USG_MUL, ab, a), USG_OK);
    assert_int_equal(usg_ad_binary(&w, USG_ADD, aba, c), USG_OK);
    usg_tensor_release(ab);
    usg_tensor_release(aba);
    backward_sum(w);
}

static int index_of(const seen *s, const usg_tensor *t)
{
    int at = -1;
    for (int i = 0; i < s->n; i++)
        if (s->leaf[i] == t) { assert_int_equal(at, -1); at = i; }   /* at most once */
    return at;
}

static void test_ready_once_with_final_grad(void **state)
{
    (void)state;
    usg_tensor *a = leaf(2), *b = leaf(3), *c = leaf(5), *unused = leaf(7);
    seen s = {0};
    usg_set_grad_ready_hook(record, &s);
    run(a, b, c);
    usg_set_grad_ready_hook(NULL, NULL);
    assert_int_equal(s.n, 3);
    int ia = index_of(&s, a), ib = index_of(&s, b), ic = index_of(&s, c);
    assert_true(ia >= 0 && ib >= 0 && ic >= 0);
    assert_int_equal(index_of(&s, unused), -1);
    near(s.grad[ia], 12, 0), near(s.grad[ib], 4, 0), near(s.grad[ic], 1, 0);
    /* the same as the final .grad */
    near(usg_tensor_get_flat(a->grad, 0), 12, 0);
    drop(a), drop(b), drop(c), drop(unused);
}

static void test_no_hook_and_removed(void **state)
{
    (void)state;
    usg_tensor *a = leaf(2), *b = leaf(3), *c = leaf(5);
    seen s = {0};
    usg_set_grad_ready_hook(record, &s);
    usg_set_grad_ready_hook(NULL, NULL);
    run(a, b, c);                                   /* removed: never called */
    assert_int_equal(s.n, 0);
    near(usg_tensor_get_flat(a->grad, 0), 12, 0);
    near(usg_tensor_get_flat(b->grad, 0), 4, 0);
    run(a, b, c);                                   /* and the grads accumulate as ever */
    near(usg_tensor_get_flat(a->grad, 0), 24, 0);
    drop(a), drop(b), drop(c);
}

/* Every allocation of a backward with the hook failing in turn (the seed
 * gradient, the leaf table, the gradients on the way): NOMEM each time,
 * nothing leaked (the ASan build checks), then a backward that succeeds. */
static void test_nomem_with_hook(void **state)
{
    (void)state;
    int failures = 0;
    for (long k = 1;; k++) {
        usg_tensor *a = leaf(2), *b = leaf(3), *c = leaf(5);
        usg_tensor *ab = NULL, *aba = NULL, *w = NULL, *loss = NULL;
        assert_int_equal(usg_ad_binary(&ab, USG_MUL, a, b), USG_OK);
        assert_int_equal(usg_ad_binary(&aba, USG_MUL, ab, a), USG_OK);
        assert_int_equal(usg_ad_binary(&w, USG_ADD, aba, c), USG_OK);
        assert_int_equal(usg_ad_sum(&loss, w, USG_ALL_DIMS, false), USG_OK);
        seen s = {0};
        usg_set_grad_ready_hook(record, &s);
        usg_alloc_fail_after(k);
        usg_status st = usg_backward(loss, NULL, false);
        usg_alloc_fail_after(0);
        usg_set_grad_ready_hook(NULL, NULL);
        usg_tensor_release(loss), usg_tensor_release(w), usg_tensor_release(aba), usg_tensor_release(ab);
        drop(a), drop(b), drop(c);
        if (st == USG_OK) { assert_int_equal(s.n, 3); break; }
        assert_int_equal(st, USG_NOMEM);
        failures++;
        assert_true(k < 100);
    }
    assert_true(failures >= 2);
}

/* ==== usg_record ========================================================= */

/* y = k x, two outputs y0 = k x and y1 = x, both from input 0; k comes
 * from the ctx and x from the saved slot 1 (slot 0 is saved too, so the
 * NULL between them is seen to be skipped). */
typedef struct scale_ctx { double k; } scale_ctx;

static int ctx_frees;

static void count_free(void *ctx)
{
    ctx_frees++;
    usg_free(ctx);
}

static usg_status scale_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const scale_ctx *c = usg_node_ctx(n);
    assert_non_null(usg_node_saved(n, 1));
    assert_null(usg_node_saved(n, 2));
    usg_tensor *a = NULL;
    usg_status s = USG_OK;
    if (gout[0]) s = usg_binary_scalar(&a, USG_MUL, gout[0], c->k, false);
    if (s == USG_OK && gout[1]) {
        if (!a) return usg_clone(&gin[0], gout[1]);
        s = usg_binary_(a, USG_ADD, gout[1]);
    }
    if (s == USG_OK) gin[0] = a;
    else usg_tensor_release(a);
    return s;
}

static const usg_op scale_op = {"scale", scale_backward, count_free};

/* Outputs of the right dtype and shape for x, as a forward would make. */
static void two_outputs(usg_tensor **out, const usg_tensor *x, usg_dtype dt)
{
    for (int i = 0; i < 2; i++)
        assert_int_equal(usg_tensor_zeros(&out[i], dt, x->ndim, x->shape), USG_OK);
}

static usg_status record_scale(usg_tensor **out, usg_tensor *x, usg_tensor *other, void *ctx,
                               size_t size)
{
    usg_tensor *save[3] = {other, NULL, x};
    return usg_record(&scale_op, 2, (usg_tensor *[]){x, NULL}, 2, out, 3, save, ctx, size);
}

static void test_record_links_outputs(void **state)
{
    (void)state;
    usg_tensor *x = leaf(2), *other = mk(USG_F32, 1, SHAPE(1), VALS(9)), *out[2];
    two_outputs(out, x, USG_F32);
    scale_ctx c = {3};
    ctx_frees = 0;
    assert_int_equal(record_scale(out, x, other, &c, sizeof c), USG_OK);
    c.k = 100;                                  /* the node has its own copy */
    for (int i = 0; i < 2; i++) {
        assert_non_null(out[i]->grad_fn);
        assert_ptr_equal(out[i]->grad_fn, out[0]->grad_fn);
        assert_int_equal(out[i]->output_nr, i);
        assert_true(out[i]->requires_grad);
    }
    usg_node *n = out[0]->grad_fn;
    assert_string_equal(usg_node_name(n), "scale");
    near(((const scale_ctx *)usg_node_ctx(n))->k, 3, 0);
    assert_true(usg_node_needs_grad(n, 0));
    assert_false(usg_node_needs_grad(n, 1));
    near(usg_tensor_get_flat(usg_node_saved(n, 0), 0), 9, 0);
    near(usg_tensor_get_flat(usg_node_saved(n, 1), 0), 2, 0);
    usg_tensor *sum = NULL;
    assert_int_equal(usg_ad_binary(&sum, USG_ADD, out[0], out[1]), USG_OK);
    assert_int_equal(usg_backward(sum, NULL, false), USG_OK);
    near(usg_tensor_get_flat(x->grad, 0), 4, 0);           /* d(3x + x)/dx */
    usg_tensor_release(sum), usg_tensor_release(out[0]), usg_tensor_release(out[1]);
    assert_int_equal(ctx_frees, 1);             /* freed once, with the node */
    drop(x), drop(other);
}

/* No node: an integer result, grad mode off, no input requiring grad. In
 * each case OK, the outputs untouched, nothing allocated by the copy form,
 * and a handed-over ctx freed through the op's free_ctx. */
static void test_record_nothing(void **state)
{
    (void)state;
    usg_tensor *x = leaf(2), *still = mk(USG_F32, 1, SHAPE(1), VALS(2)), *out[2];
    for (int c = 0; c < 3; c++) {
        usg_tensor *in = c == 2 ? still : x;
        two_outputs(out, in, c == 0 ? USG_I32 : USG_F32);
        bool mode = usg_set_grad_enabled(c != 1);
        for (int handed = 0; handed < 2; handed++) {
            size_t live = usg_alloc_live_bytes();        /* before the ctx */
            scale_ctx k = {3}, *p = NULL;
            if (handed) {
                p = usg_alloc(sizeof *p);
                assert_non_null(p);
            }
            ctx_frees = 0;
            usg_status s = handed ? record_scale(out, in, NULL, p, 0)
                                  : record_scale(out, in, NULL, &k, sizeof k);
            assert_int_equal(s, USG_OK);
            assert_int_equal(ctx_frees, handed);
            assert_int_equal(usg_alloc_live_bytes(), live);
            for (int i = 0; i < 2; i++) {
                assert_null(out[i]->grad_fn);
                assert_false(out[i]->requires_grad);
            }
        }
        usg_set_grad_enabled(mode);
        usg_tensor_release(out[0]), usg_tensor_release(out[1]);
    }
    drop(x), drop(still);
}

/* Each allocation of the recording failing in turn (the ctx's copy, the
 * node, each saved alias), in both ctx forms: NOMEM, both outputs released
 * and NULL, the ctx freed, the live bytes back to what they were before
 * the outputs were made; then a recording that succeeds. */
static void test_record_nomem_releases_outputs(void **state)
{
    (void)state;
    usg_tensor *x = leaf(2), *other = mk(USG_F32, 1, SHAPE(1), VALS(9));
    for (int handed = 0; handed < 2; handed++) {
        int failures = 0;
        for (long k = 1;; k++) {
            size_t live = usg_alloc_live_bytes();
            usg_tensor *out[2];
            two_outputs(out, x, USG_F32);
            scale_ctx c = {3}, *p = NULL;
            if (handed) {
                assert_non_null(p = usg_alloc(sizeof *p));
                *p = c;
            }
            ctx_frees = 0;
            usg_alloc_fail_after(k);
            usg_status s = handed ? record_scale(out, x, other, p, 0)
                                  : record_scale(out, x, other, &c, sizeof c);
            usg_alloc_fail_after(0);
            if (s == USG_OK) {
                assert_non_null(out[0]->grad_fn);
                usg_tensor_release(out[0]), usg_tensor_release(out[1]);
                assert_int_equal(ctx_frees, 1);
                assert_int_equal(usg_alloc_live_bytes(), live);
                break;
            }
            assert_int_equal(s, USG_NOMEM);
            assert_null(out[0]);
            assert_null(out[1]);
            /* the copy form fails first on the copy, which nobody frees */
            assert_int_equal(ctx_frees, handed || k > 1);
            assert_int_equal(usg_alloc_live_bytes(), live);
            failures++;
            assert_true(k < 20);
        }
        assert_int_equal(failures, 3 + !handed);        /* node, 2 aliases (, copy) */
    }
    drop(x), drop(other);
}

/* A failure after the node was made (more saves than a node holds): the
 * error names the op, the outputs are released and NULL, nothing leaks. */
static void test_record_error_releases_outputs(void **state)
{
    (void)state;
    usg_tensor *x = leaf(2), *out[2], *save[USG_NODE_MAX_SAVED + 1];
    for (int i = 0; i <= USG_NODE_MAX_SAVED; i++) save[i] = x;
    size_t live = usg_alloc_live_bytes();
    two_outputs(out, x, USG_F32);
    scale_ctx c = {3};
    ctx_frees = 0;
    usg_status s = usg_record(&scale_op, 1, &x, 2, out, USG_NODE_MAX_SAVED + 1, save, &c,
                              sizeof c);
    expect_err(s, USG_ARG, "scale: more than 16 saved tensors");
    assert_null(out[0]);
    assert_null(out[1]);
    assert_int_equal(ctx_frees, 1);
    assert_int_equal(usg_alloc_live_bytes(), live);
    drop(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_links_outputs),
        cmocka_unit_test(test_record_nothing),
        cmocka_unit_test(test_record_nomem_releases_outputs),
        cmocka_unit_test(test_record_error_releases_outputs),
        cmocka_unit_test(test_ready_once_with_final_grad),
        cmocka_unit_test(test_no_hook_and_removed),
        cmocka_unit_test(test_nomem_with_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

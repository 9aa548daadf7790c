/*
 * test_autograd.c -- cmocka tests of host/core/autograd.c's gradient-ready
 * hook (the walk itself is tested through the ops in test_ad_*.c): the
 * hook fires once per leaf of the graph, after the last edge into it ran,
 * so the gradient it sees is final, even for a leaf used twice at
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_once_with_final_grad),
        cmocka_unit_test(test_no_hook_and_removed),
        cmocka_unit_test(test_nomem_with_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

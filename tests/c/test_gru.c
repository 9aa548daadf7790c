/*
 * test_gru.c -- the GRU plugin's C side (modules/gru) under allocation
 * failure: the stacked op with h0, lengths and dropout, every allocation of
 * the forward and of the backward failing in turn (test_lstm_gru.h).
 * Values, gradients and messages are checked from Lua (tests/lua/gru_spec.lua,
 * lengths_spec.lua) against PyTorch.
 */
#include "../../modules/gru/gru.c"
#include "../../modules/gru/gru_ad.c"

#define RUN(f, out, fin, p, r) \
    usg_ad_gru((out), &(fin)[0], (f)->x, (f)->s0[0], 2, (f)->w, (p), (r), (f)->len)
#include "test_lstm_gru.h"

static void test_nomem(void **state)
{
    (void)state;
    nomem_sweep_stack(1, 3, 4, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_nomem)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

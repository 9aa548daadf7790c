/*
 * test_lstm.c -- the LSTM plugin's C side (modules/lstm) under allocation
 * failure: the stacked op with peepholes, initial states, lengths and
 * dropout, every allocation of the forward and of the backward failing in
 * turn (test_lstm_gru.h). Values, gradients and messages are checked from
 * Lua (tests/lua/lstm_spec.lua, lengths_spec.lua) against PyTorch.
 */
#include "../../modules/lstm/lstm.c"
#include "../../modules/lstm/lstm_ad.c"

#define RUN(f, out, fin, p, r) \
    usg_ad_lstm((out), &(fin)[0], &(fin)[1], (f)->x, (f)->s0[0], (f)->s0[1], 2, (f)->w, (p), (r), (f)->len)
#include "test_lstm_gru.h"

static void test_nomem(void **state)
{
    (void)state;
    nomem_sweep_stack(2, 4, USG_LSTM_WEIGHTS, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_nomem)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

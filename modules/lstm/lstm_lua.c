/*
 * lstm_lua.c -- the binding of the LSTM plugin: `require 'usagi.lstm'`
 * loads usagi/lstm.so, whose entry point registers lstm.lstm and runs the
 * Lua face (lstm.lua: nn.LSTM, nn.LSTMCell). The math is in lstm.c, the
 * autograd op in lstm_ad.c.
 *
 *   local lstm = require 'usagi.lstm'
 *   local out, h_n, c_n = lstm.lstm(x, h0, c0,
 *       { {w_ih, w_hh, b_ih, b_hh [, w_ci, w_cf, w_co]}, ... }, { dropout = 0 })
 */
#include "usagi/lua.h"
#include "lstm.h"

#define MAX_LAYERS 64

static usg_tensor *opt_tensor(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : usg_lua_checktensor(L, idx);
}

/* lstm.lstm(x, h0, c0, weights [, {dropout = 0, lengths}]) -> out, h_n, c_n
 * x (T, B, I); h0, c0 (L, B, H) or nil; out (T, B, H), h_n, c_n (L, B, H).
 * Dropout between layers draws from the run's generator. lengths (i32
 * (B), 1..T): out is zero past each length, h_n and c_n each sequence's
 * states at its own last step. */
static int l_lstm(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1), *h0 = opt_tensor(L, 2), *c0 = opt_tensor(L, 3);
    usg_tensor *w[USG_LSTM_WEIGHTS * MAX_LAYERS];
    static const char *const names[USG_LSTM_WEIGHTS] = {
        "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci", "weight_cf", "weight_co"};
    int layers = usg_lua_check_layers(L, 4, USG_LSTM_WEIGHTS, 2, names, w, MAX_LAYERS);
    double p;
    usg_tensor *lengths;
    usg_lua_rec_opts(L, 5, "lstm", NULL, &p, &lengths);
    usg_tensor *out, *h_n, *c_n;
    USG_LUA_TRY(L, usg_ad_lstm(&out, &h_n, &c_n, x, h0, c0, layers, w, p, usg_lua_rng(L), lengths));
    usg_lua_pushtensor(L, out);                 /* ownership passes to Lua */
    usg_lua_pushtensor(L, h_n);
    usg_lua_pushtensor(L, c_n);
    return 3;
}

static const luaL_Reg lstm_functions[] = {{"lstm", l_lstm}, {NULL, NULL}};

USG_API int luaopen_usagi_lstm(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "lstm", "0.1.0", lstm_functions);
}

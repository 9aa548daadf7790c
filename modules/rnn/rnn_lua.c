/*
 * rnn_lua.c -- the binding of the RNN plugin: `require 'usagi.rnn'` loads
 * usagi/rnn.so, whose entry point registers rnn.rnn and runs the Lua face
 * (rnn.lua: nn.RNN). The math is in rnn.c, the autograd op in rnn_ad.c.
 *
 *   local rnn = require 'usagi.rnn'
 *   local out, h_n = rnn.rnn(x, h0, { {w_ih, w_hh, b_ih, b_hh}, ... },
 *                            { nonlinearity = 'tanh', dropout = 0 })
 */
#include "usagi/lua.h"
#include "rnn.h"

#define MAX_LAYERS 64

/* rnn.rnn(x, h0, weights [, {nonlinearity = 'tanh', dropout = 0, lengths}]) -> out, h_n
 * x (T, B, I), h0 (L, B, H) or nil; out (T, B, H), h_n (L, B, H). Dropout
 * between layers draws from the run's generator; pass 0 when evaluating.
 * lengths (i32 (B), 1..T): out is zero past each sequence's length, and
 * h_n holds each one's state at its own last step. */
static int l_rnn(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1);
    usg_tensor *h0 = lua_isnoneornil(L, 2) ? NULL : usg_lua_checktensor(L, 2);
    usg_tensor *w[4 * MAX_LAYERS];
    static const char *const names[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    int layers = usg_lua_check_layers(L, 3, 4, 2, names, w, MAX_LAYERS);
    usg_rnn_act f = USG_RNN_TANH;
    double p;
    usg_tensor *lengths;
    usg_lua_rec_opts(L, 4, "rnn", (const char *[]){"nonlinearity", NULL}, &p, &lengths);
    if (!lua_isnoneornil(L, 4) && lua_getfield(L, 4, "nonlinearity") != LUA_TNIL) {
        const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        if (!usg_rnn_act_parse(name, &f))
            return luaL_argerror(L, 4, lua_pushfstring(L, "nonlinearity must be 'tanh', "
                                 "'relu' or 'sigmoid', got '%s'", name));
    }
    usg_tensor *out, *h_n;
    USG_LUA_TRY(L, usg_ad_rnn(&out, &h_n, x, h0, layers, w, f, p, usg_lua_rng(L), lengths));
    usg_lua_pushtensor(L, out);                 /* ownership passes to Lua */
    usg_lua_pushtensor(L, h_n);
    return 2;
}

static const luaL_Reg rnn_functions[] = {{"rnn", l_rnn}, {NULL, NULL}};

USG_API int luaopen_usagi_rnn(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "rnn", "0.1.0", rnn_functions);
}

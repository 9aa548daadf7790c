/*
 * gru_lua.c -- the binding of the GRU plugin: `require 'usagi.gru'` loads
 * usagi/gru.so, whose entry point registers gru.gru and runs the Lua face
 * (gru.lua: nn.GRU, nn.GRUCell). The math is in gru.c, the autograd op in
 * gru_ad.c.
 *
 *   local gru = require 'usagi.gru'
 *   local out, h_n = gru.gru(x, h0, { {w_ih, w_hh, b_ih, b_hh}, ... }, { dropout = 0 })
 */
#include "usagi/lua.h"
#include "gru.h"

#define MAX_LAYERS 64

/* gru.gru(x, h0, weights [, {dropout = 0, lengths}]) -> out, h_n
 * x (T, B, I), h0 (L, B, H) or nil; out (T, B, H), h_n (L, B, H). Dropout
 * between layers draws from the run's generator. lengths (i32 (B), 1..T):
 * out is zero past each length, h_n each sequence's own last state. */
static int l_gru(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1);
    usg_tensor *h0 = lua_isnoneornil(L, 2) ? NULL : usg_lua_checktensor(L, 2);
    static const char *const names[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    usg_tensor *w[4 * MAX_LAYERS];
    int layers = usg_lua_check_layers(L, 3, 4, 2, names, w, MAX_LAYERS);
    double p;
    usg_tensor *lengths;
    usg_lua_rec_opts(L, 4, "gru", NULL, &p, &lengths);
    usg_tensor *out, *h_n;
    USG_LUA_TRY(L, usg_ad_gru(&out, &h_n, x, h0, layers, w, p, usg_lua_rng(L), lengths));
    usg_lua_pushtensor(L, out);                 /* ownership passes to Lua */
    usg_lua_pushtensor(L, h_n);
    return 2;
}

static const luaL_Reg gru_functions[] = {{"gru", l_gru}, {NULL, NULL}};

USG_API int luaopen_usagi_gru(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "gru", "0.1.0", gru_functions);
}

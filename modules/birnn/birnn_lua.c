/*
 * birnn_lua.c -- the binding of the bidirectional plugin: `require
 * 'usagi.birnn'` loads usagi/birnn.so, whose entry point registers
 * birnn.reverse and runs the Lua face (birnn.lua).
 *
 *   y[t, b] = x[len_b - 1 - t, b]    for t < len_b
 *   y[t, b] = x[t, b]                 for t >= len_b (the padding stays put)
 *
 * The reversal itself is the core's usg_ad_reverse_padded (it is its own
 * inverse, so its backward is the same reversal of the gradient). The Lua
 * face runs a layer forward on x and on reverse(x), reverses the second
 * output back and joins the two.
 */
#include "usagi/autograd.h"
#include "usagi/lua.h"

/* birnn.reverse(x [, lengths]) -> y: each sequence of x (T, B, n) reversed
 * within its length (i32 (B) tensor, or nil for all T), differentiable. */
static int l_reverse(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1);
    usg_tensor *len = lua_isnoneornil(L, 2) ? NULL : usg_lua_checktensor(L, 2);
    usg_tensor *y;
    USG_LUA_TRY(L, usg_ad_reverse_padded(&y, x, len, "birnn.reverse"));
    usg_lua_pushtensor(L, y);
    return 1;
}

static const luaL_Reg birnn_functions[] = {{"reverse", l_reverse}, {NULL, NULL}};

USG_API int luaopen_usagi_birnn(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "birnn", "0.1.0", birnn_functions);
}

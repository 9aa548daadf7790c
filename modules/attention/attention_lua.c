/*
 * attention_lua.c -- the binding of the attention plugin: `require
 * 'usagi.attention'` loads usagi/attention.so, whose entry point registers
 * attention.attend and runs the Lua face (attention.lua: nn.Attention,
 * nn.MultiheadAttention and the mask helpers). The math is in attention.c,
 * the autograd op in attention_ad.c.
 *
 *   local A = require 'usagi.attention'
 *   local c, w = A.attend(q, k, v, { scale = 1 / math.sqrt(D), mask = m, causal = true })
 */
#include "usagi/lua.h"
#include "attention.h"

/* The tensor in field `key` of the table at idx, or NULL when absent. */
static usg_tensor *opt_tensor(lua_State *L, int idx, const char *key)
{
    usg_tensor *t = NULL;
    if (lua_getfield(L, idx, key) != LUA_TNIL && !(t = usg_lua_totensor(L, -1)))
        luaL_error(L, "attention: %s must be a tensor, got %s", key, luaL_typename(L, -1));
    lua_pop(L, 1);           /* the caller's table keeps the tensor alive */
    return t;
}

/* attention.attend(q, k, v [, {scale = 1, mask, causal = false, u}]) -> c, w
 * q (B, Lq, D), k (B, Lk, D), v (B, Lk, Dv); mask (Bm, 1 or Lq, Lk) added to
 * the scores (-inf: not allowed); causal: key j > query i not allowed; u
 * (D): the additive score sum_a u_a tanh(q_a + k_a) instead of q . k. */
static int l_attend(lua_State *L)
{
    static const char *const known[] = {"scale", "mask", "causal", "u", NULL};
    usg_tensor *q = usg_lua_checktensor(L, 1), *k = usg_lua_checktensor(L, 2);
    usg_tensor *v = usg_lua_checktensor(L, 3), *mask = NULL, *u = NULL;
    double scale = 1;
    bool causal = false;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        usg_lua_check_opts(L, 4, "attention", known);
        if (lua_getfield(L, 4, "scale") != LUA_TNIL) {
            if (!lua_isnumber(L, -1))
                luaL_error(L, "attention: scale must be a number, got %s", luaL_typename(L, -1));
            scale = lua_tonumber(L, -1);
        }
        lua_getfield(L, 4, "causal");
        causal = lua_toboolean(L, -1);
        lua_pop(L, 2);
        mask = opt_tensor(L, 4, "mask");
        u = opt_tensor(L, 4, "u");
    }
    usg_tensor *c, *w;
    USG_LUA_TRY(L, usg_ad_attention(&c, &w, q, k, v, u, mask, scale, causal));
    usg_lua_pushtensor(L, c);
    usg_lua_pushtensor(L, w);
    return 2;
}

static const luaL_Reg attention_functions[] = {{"attend", l_attend}, {NULL, NULL}};

USG_API int luaopen_usagi_attention(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "attention", "0.1.0", attention_functions);
}

/*
 * seq2seq_lua.c -- the binding of the seq2seq plugin: `require
 * 'usagi.seq2seq'` loads usagi/seq2seq.so, whose entry point registers
 * seq2seq.topk (the core's usg_topk, 1-based) and runs the Lua face
 * (seq2seq.lua: nn.Seq2Seq).
 *
 *   local S = require 'usagi.seq2seq'
 *   local values, indices = S.topk(x, k)     -- x (N, C); (N, k) best first, 1-based indices
 */
#include "usagi/lua.h"
#include "usagi/ops.h"

static int l_topk(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1), *v, *i;
    lua_Integer k = luaL_checkinteger(L, 2);
    USG_LUA_TRY(L, usg_topk(&v, &i, x, (int64_t)k, 1));
    usg_lua_pushtensor(L, v);
    usg_lua_pushtensor(L, i);
    return 2;
}

static const luaL_Reg seq2seq_functions[] = {{"topk", l_topk}, {NULL, NULL}};

USG_API int luaopen_usagi_seq2seq(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "seq2seq", "0.1.0", seq2seq_functions);
}

/*
 * hello.c -- the smallest usagi plugin: one function that makes a tensor
 * through libusagi and hands it to Lua. Used by tests/cli/install.sh.
 */
#include "usagi/lua.h"

/* hello.iota(n) -> the f32 tensor 1..n */
static int l_iota(lua_State *L)
{
    usg_tensor *t;
    lua_Integer n = luaL_checkinteger(L, 1);
    USG_LUA_TRY(L, usg_arange(&t, USG_F32, 1, (double)n + 1, 1));
    usg_lua_pushtensor(L, t);
    return 1;
}

int luaopen_usagi_hello(lua_State *L)
{
    static const luaL_Reg fns[] = {{"iota", l_iota}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

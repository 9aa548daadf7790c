/*
 * hello.c -- the smallest usagi plugin: one C function that makes a tensor
 * through libusagi and hands it to Lua, and a Lua face (hello.lua) built on
 * it. modules/README.md walks through it.
 */
#include "usagi/lua.h"

/* hello.iota(n) -> the f32 tensor 1, 2, ..., n */
static int l_hello_iota(lua_State *L)
{
    usg_tensor *t;
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "n must be >= 0");
    USG_LUA_TRY(L, usg_arange(&t, USG_F32, 1, (double)n + 1, 1));
    usg_lua_pushtensor(L, t);         /* ownership passes to Lua */
    return 1;
}

static const luaL_Reg hello_functions[] = {{"iota", l_hello_iota}, {NULL, NULL}};

USG_API int luaopen_usagi_hello(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "hello", "0.1.0", hello_functions);
}

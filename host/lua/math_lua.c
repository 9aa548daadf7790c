/*
 * math_lua.c -- the core's threads and what BLAS it uses. The tensor maths
 * (arithmetic, comparisons, unary maths, clamp, where, the products, the
 * reductions) is declared in the op tables of host/ops/ and its binding
 * generated from them (host/ops/gen.lua, ops_lua.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"
#include "usagi/autograd.h"

/* ==== OpenBLAS ========================================================== */

static int l_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 1024, 1, "threads must be between 1 and 1024");
    USG_LUA_TRY(L, usg_set_num_threads((int)n));
    return 0;
}

static int l_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, usg_get_num_threads());
    return 1;
}

/* {config = ..., core = ..., threads = n}: what BLAS this run uses */
static int l_blas_info(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, usg_blas_config());
    lua_setfield(L, -2, "config");
    lua_pushstring(L, usg_blas_core());
    lua_setfield(L, -2, "core");
    lua_pushinteger(L, usg_get_num_threads());        /* OpenBLAS's own is 1 (parallel.c) */
    lua_setfield(L, -2, "threads");
    return 1;
}

/* ==== Registration ====================================================== */

static const luaL_Reg module_fns[] = {
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads}, {"blas_info", l_blas_info}, {NULL, NULL}};

int usg_lua_open_math(lua_State *L)
{
    usg_lua_register(L, module_fns, 1, 0);
    return 0;
}

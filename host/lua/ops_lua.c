/*
 * ops_lua.c -- what the generated bindings of the op tables call
 * (host/ops/gen.lua writes them; host/ops/README.md describes the tables):
 * choosing among an op's overloads, the argument kinds that luaL has no
 * check for, options tables, index results, and the registry of the
 * declarations that help() and tests/lua/ops_spec.lua read
 * (usagi.op_table()).
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "binding.h"

/* ==== Overloads ========================================================= */

/* Does the value at idx fit the kind code c ('T' tensor, 'n' number, 'b'
 * boolean, 't' table, 'x' tensor or number, 'p' number or string)?
 * `optional`: none and nil fit too. */
static bool fits(lua_State *L, int idx, char c, bool optional)
{
    int t = lua_type(L, idx);
    if (optional && t <= LUA_TNIL) return true;
    switch (c) {
    case 'T': return usg_lua_totensor(L, idx) != NULL;
    case 'n': return t == LUA_TNUMBER;
    case 'b': return t == LUA_TBOOLEAN;
    case 't': return t == LUA_TTABLE;
    case 'x': return t == LUA_TNUMBER || usg_lua_totensor(L, idx) != NULL;
    case 'p': return t == LUA_TNUMBER || t == LUA_TSTRING;
    }
    return false;
}

static const char *kind_name(char c)
{
    switch (c) {
    case 'T': return USG_TENSOR_MT;
    case 'n': return "number";
    case 'b': return "boolean";
    case 't': return "table";
    case 'x': return USG_TENSOR_MT " or number";
    case 'p': return "number or string";
    }
    return "?";
}

/* The argument position where sig first fails, or 0 when it fits. */
static int first_misfit(lua_State *L, const char *sig)
{
    int idx = 1;
    for (const char *c = sig; *c; c++, idx++) {
        bool optional = c[1] == '?';
        if (!fits(L, idx, *c, optional)) return idx;
        if (optional) c++;
    }
    return 0;
}

/* The kind code sig expects at argument idx (0 when sig is shorter). */
static char kind_at(const char *sig, int idx)
{
    for (const char *c = sig; *c; c++) {
        if (--idx == 0) return *c;
        if (c[1] == '?') c++;
    }
    return 0;
}

int usg_lua_overload(lua_State *L, const char *fn, const char *const *sigs)
{
    int far = 0;
    for (int i = 0; sigs[i]; i++) {
        int at = first_misfit(L, sigs[i]);
        if (at == 0) return i;
        if (at > far) far = at;
    }
    /* Name what the overloads that got furthest would take there:
     * "bad argument #2 to 'add' (usagi.Tensor or number expected, got string)". */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char seen[8] = {0};
    int n = 0;
    for (int i = 0; sigs[i]; i++) {
        char c = first_misfit(L, sigs[i]) == far ? kind_at(sigs[i], far) : 0;
        if (!c || strchr(seen, c) || n == (int)sizeof seen - 1) continue;
        if (n > 0) luaL_addstring(&b, " or ");
        luaL_addstring(&b, kind_name(c));
        seen[n++] = c;
    }
    lua_pushfstring(L, " expected, got %s", luaL_typename(L, far));
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    (void)fn;
    return luaL_argerror(L, far, lua_tostring(L, -1));
}

/* ==== Argument kinds ==================================================== */

bool usg_lua_checkboolean(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TBOOLEAN);
    return lua_toboolean(L, idx);
}

double usg_lua_checknorm_p(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tostring(L, idx);
        if (strcmp(s, "inf") == 0) return HUGE_VAL;
        if (strcmp(s, "fro") == 0) return 2;
        return luaL_argerror(L, idx, lua_pushfstring(L, "p must be a number, 'inf' or 'fro', got '%s'", s));
    }
    return luaL_checknumber(L, idx);
}

void usg_lua_options(lua_State *L, int idx, const char *fn, const char *const *names,
                     const char *kinds, void *const *dst)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);                                  /* [.., nil] */
    while (lua_next(L, idx)) {                       /* [.., key, value] */
        int i = -1;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int k = 0; names[k] && i < 0; k++)
                if (strcmp(lua_tostring(L, -2), names[k]) == 0) i = k;
        if (i < 0) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int k = 0; names[k]; k++) {
                if (k > 0) luaL_addstring(&b, names[k + 1] ? ", " : " or ");
                luaL_addstring(&b, names[k]);
            }
            luaL_pushresult(&b);                     /* [.., key, value, names] */
            const char *key = luaL_tolstring(L, -3, NULL);
            luaL_error(L, "%s: unknown option '%s' (expected %s)", fn, key, lua_tostring(L, -2));
        }
        int isint;
        lua_Integer v;
        switch (kinds[i]) {
        case 'i':
            v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < INT_MIN || v > INT_MAX)
                luaL_error(L, "%s: option '%s' must be an integer, got %s", fn, names[i],
                           luaL_tolstring(L, -1, NULL));
            *(int *)dst[i] = (int)v;
            break;
        case 'b':
            if (lua_type(L, -1) != LUA_TBOOLEAN)
                luaL_error(L, "%s: option '%s' must be a boolean, got %s", fn, names[i],
                           luaL_typename(L, -1));
            *(bool *)dst[i] = lua_toboolean(L, -1);
            break;
        case 's':      /* the caller's table keeps the string alive */
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: option '%s' must be a string, got %s", fn, names[i],
                           luaL_typename(L, -1));
            *(const char **)dst[i] = lua_tostring(L, -1);
            break;
        case 'T':      /* the caller's table keeps the tensor alive */
            if (!(*(usg_tensor **)dst[i] = usg_lua_totensor(L, -1)))
                luaL_error(L, "%s: option '%s' must be a tensor, got %s", fn, names[i],
                           luaL_typename(L, -1));
            break;
        default:
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "%s: option '%s' must be a number, got %s", fn, names[i],
                           luaL_typename(L, -1));
            *(double *)dst[i] = lua_tonumber(L, -1);
        }
        lua_pop(L, 1);                               /* [.., key] */
    }
}

int usg_lua_choice(lua_State *L, const char *fn, const char *what, const char *value,
                   const char *const *choices, int def)
{
    if (!value) return def;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int k = 0; choices[k]; k++) {
        if (strcmp(value, choices[k]) == 0) return k;
        if (k > 0) luaL_addstring(&b, choices[k + 1] ? ", " : " or ");
        lua_pushfstring(L, "'%s'", choices[k]);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return luaL_error(L, "%s: %s must be %s, got '%s'", fn, what, lua_tostring(L, -1), value);
}

/* ==== Results =========================================================== */

void usg_lua_push_index(lua_State *L, usg_tensor *ix, int dim, bool keepdim)
{
    if (dim != USG_ALL_DIMS || keepdim) {
        usg_lua_pushtensor(L, ix);
        return;
    }
    double v = usg_tensor_get_flat(ix, 0);
    usg_dtype dt = ix->dtype;
    usg_tensor_release(ix);
    usg_lua_pushelem(L, dt, v);
}

/* ==== The registry of declarations ====================================== */

#define OPS_KEY "usagi.op_table"

void usg_lua_add_ops(lua_State *L, const char *module, const char *chunk, size_t len)
{
    if (luaL_loadbufferx(L, chunk, len, "=op table", "t") != LUA_OK) lua_error(L);
    lua_call(L, 0, 1);                               /* [family] */
    lua_getfield(L, -1, "ops");                      /* [family, ops] */
    lua_getfield(L, -2, "family");                   /* [family, ops, name] */
    if (luaL_getsubtable(L, LUA_REGISTRYINDEX, OPS_KEY)) {}   /* [family, ops, name, all] */
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; lua_geti(L, -3, i) != LUA_TNIL; i++) {  /* [.., all, op] */
        lua_pushstring(L, module);
        lua_setfield(L, -2, "module");
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "family");
        lua_seti(L, -2, ++n);                        /* [.., all] */
    }
    lua_pop(L, 5);
}

/* usagi.op_table() -> the declarations of every op made from an op table
 * so far (the core's, and those of the plugins loaded), in order. */
static int l_op_table(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, OPS_KEY);
    lua_Integer n = luaL_len(L, -1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -2, i);
        lua_seti(L, -2, i);
    }
    return 1;
}

int usg_lua_open_ops(lua_State *L)
{
    lua_pushcfunction(L, l_op_table);
    lua_setfield(L, -2, "op_table");
    usg_lua_open_math_ops(L);
    usg_lua_open_reduce_ops(L);
    usg_lua_open_nn_ops(L);
    usg_lua_open_index_ops(L);
    usg_lua_open_view_ops(L);
    return 0;
}

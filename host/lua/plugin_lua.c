/*
 * plugin_lua.c -- loading plugins: the ABI check, the registry behind
 * usagi.plugins(), running a plugin's embedded Lua face, and reading the
 * per-layer weight lists that the recurrent plugins' ops take.
 *
 * Lua's own loader finds usagi/<family>.so on package.cpath and calls
 * luaopen_usagi_<family> (a plugin without that symbol is refused by
 * require, which names the symbol); that function calls
 * usg_lua_plugin_open, which is where usagi's own checks live.
 */
#include <string.h>

#include "binding.h"

#define PLUGINS_KEY "usagi.plugins"

/* [] -> [plugins] (the registry's list, created on first use) */
static void push_plugins(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, PLUGINS_KEY) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, PLUGINS_KEY);
}

int usg_lua_plugin_open(lua_State *L, const char *name, const char *version, int abi,
                        const luaL_Reg *fns, const char *face, size_t face_size)
{
    if (abi != USG_ABI_VERSION)
        return luaL_error(L, "usagi.%s: plugin built for usagi ABI %d, but this usagi "
                          "(%s) has ABI %d; rebuild the plugin against it", name, abi,
                          USG_VERSION, USG_ABI_VERSION);
    luaL_requiref(L, "usagi", luaopen_usagi, 0);       /* the host module, for the face */
    lua_pop(L, 1);
    push_plugins(L);                                  /* [plugins] */
    lua_createtable(L, 0, 3);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, abi);
    lua_setfield(L, -2, "abi");
    lua_pushlstring(L, face ? face : "", face_size);  /* its source: help() reads the docs there */
    lua_setfield(L, -2, "face");
    lua_setfield(L, -2, name);                        /* plugins[name] = {...} */
    lua_pop(L, 1);                                    /* [] */
    lua_newtable(L);                                  /* [M] */
    if (fns) luaL_setfuncs(L, fns, 0);
    lua_pushstring(L, version);
    lua_setfield(L, -2, "version");
    if (face_size == 0) return 1;
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=usagi.%s (Lua face)", name);
    if (luaL_loadbuffer(L, face, face_size, chunk) != LUA_OK) return lua_error(L);
    lua_pushvalue(L, -2);                             /* [M, face, M] */
    lua_call(L, 1, 1);                                /* [M, ret] */
    if (lua_isnil(L, -1)) lua_pop(L, 1);
    return 1;
}

/* usagi.plugins() -> a list of {name, version, abi, face}, sorted by name
 * (face: the source of the plugin's Lua face, where help() finds docs) */
static int l_plugins(lua_State *L)
{
    push_plugins(L);                                  /* [plugins] */
    lua_newtable(L);                                  /* [plugins, list] */
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -3)) {                         /* [plugins, list, k, v] */
        lua_rawseti(L, -3, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    luaL_loadstring(L, "local a, b = ... return a.name < b.name");
    lua_call(L, 2, 0);
    lua_pop(L, 1);
    return 1;
}

static int l_abi_version(lua_State *L)
{
    lua_pushinteger(L, USG_ABI_VERSION);
    return 1;
}

/* The parts of usagi written in Lua (scripts/usagi/) load on first use:
 * usagi.nn is require 'usagi.nn', usagi.experiment is
 * require('usagi.experiment').experiment, and so on. */
static const struct { const char *key, *module, *field; } lazy[] = {
    {"nn", "usagi.nn", NULL},
    {"optim", "usagi.optim", NULL},
    {"gradcheck", "usagi.gradcheck", NULL},
    {"experiment", "usagi.experiment", "experiment"},
    {"save", "usagi.store", "save"},
    {"load", "usagi.store", "load"},
    {"plot", "usagi.plot", NULL},
    {"data", "usagi.data", NULL},
    {"help", "usagi.doc", "help"},
};

static int l_lazy_index(lua_State *L)                /* [usagi, key] */
{
    luaL_checktype(L, 1, LUA_TTABLE);                /* the cache below rawsets into it */
    lua_settop(L, 2);
    const char *key = lua_tostring(L, 2);
    for (size_t i = 0; key && i < sizeof lazy / sizeof *lazy; i++) {
        if (strcmp(key, lazy[i].key) != 0) continue;
        lua_getglobal(L, "require");
        lua_pushstring(L, lazy[i].module);
        lua_call(L, 1, 1);                           /* [usagi, key, mod] */
        if (lazy[i].field) lua_getfield(L, -1, lazy[i].field);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 1);                            /* cache: usagi[key] = value */
        return 1;
    }
    return 0;
}

int usg_lua_open_plugin(lua_State *L)
{
    static const luaL_Reg fns[] = {{"plugins", l_plugins}, {"abi_version", l_abi_version},
                                   {NULL, NULL}};
    usg_lua_register(L, fns, 1, 0);
    lua_createtable(L, 0, 1);                        /* [mod, mt] */
    lua_pushcfunction(L, l_lazy_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);                         /* [mod] */
    return 0;
}

int usg_lua_check_layers(lua_State *L, int idx, int per, int required,
                         const char *const *names, usg_tensor **w, int max)
{
    idx = lua_absindex(L, idx);
    luaL_Buffer b;                                   /* "{w1, w2 [, w3, ...]}" for messages */
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '{');
    for (int k = 0; k < per; k++) {
        luaL_addstring(&b, k == 0 ? "" : k == required ? " [, " : ", ");
        luaL_addstring(&b, names[k]);
    }
    luaL_addstring(&b, per > required ? "]}" : "}");
    luaL_pushresult(&b);
    const char *shape = lua_tostring(L, -1);
    luaL_checktype(L, idx, LUA_TTABLE);
    int layers = (int)luaL_len(L, idx);
    if (layers < 1 || layers > max)
        return luaL_argerror(L, idx, lua_pushfstring(L, "weights must list 1 to %d layers, each %s",
                                                     max, shape));
    for (int l = 0; l < layers; l++) {
        if (lua_rawgeti(L, idx, l + 1) != LUA_TTABLE)                /* [shape, layer] */
            return luaL_argerror(L, idx, lua_pushfstring(L, "layer %d must be a table %s", l + 1,
                                                         shape));
        for (int k = 0; k < per; k++) {
            lua_rawgeti(L, -1, k + 1);                               /* [shape, layer, w] */
            usg_tensor *t = usg_lua_totensor(L, -1);
            if (!t && (k < required || !lua_isnil(L, -1)))
                return luaL_argerror(L, idx, lua_pushfstring(L, "%s of layer %d must be a "
                                     "tensor, got %s", names[k], l + 1, luaL_typename(L, -1)));
            w[per * l + k] = t;
            lua_pop(L, 1);                                           /* [shape, layer] */
        }
        lua_pop(L, 1);                                               /* [shape] */
    }
    lua_pop(L, 1);                                                   /* [] */
    return layers;
}

void usg_lua_rec_opts(lua_State *L, int idx, const char *op, const char *const *extra,
                      double *p, usg_tensor **lengths)
{
    *p = 0;
    *lengths = NULL;
    if (lua_isnoneornil(L, idx)) return;
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    const char *known[16] = {"dropout", "lengths"};
    int n = 2;
    for (int k = 0; extra && extra[k] && n < 15; k++) known[n++] = extra[k];
    known[n] = NULL;
    usg_lua_check_opts(L, idx, op, known);
    if (lua_getfield(L, idx, "dropout") != LUA_TNIL) {
        if (!lua_isnumber(L, -1))
            luaL_error(L, "%s: dropout must be a number in [0, 1), got %s", op, luaL_typename(L, -1));
        *p = lua_tonumber(L, -1);
    }
    if (lua_getfield(L, idx, "lengths") != LUA_TNIL) {
        *lengths = usg_lua_totensor(L, -1);
        if (!*lengths)
            luaL_error(L, "%s: lengths must be an i32 tensor (one length per sequence), got %s", op,
                       luaL_typename(L, -1));
    }
    lua_pop(L, 2);
}

/*
 * fetch_lua.c -- the module usagi.fetch, which the usagi executable
 * preloads for `usagi data` (scripts/usagi/data_get.lua): SHA-256 of files
 * and resumable downloads. A stock lua5.4 loading the usagi binding does
 * not have it: the network belongs to the executable (DESIGN.md, layers).
 */
#include <lua.h>
#include <lauxlib.h>

#include <stdio.h>
#include <unistd.h>

#include "fetch.h"

/* usagi.fetch.sha256(path [, gunzip]) -> hex, size | nil, message */
static int l_sha256(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int gunzip = lua_toboolean(L, 2);
    char hex[65], err[512];
    uint64_t size = 0;
    if (usg_sha256_file(path, gunzip, hex, &size, err, sizeof err) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, hex);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

/* usagi.fetch.sha256_string(s) -> hex, for tests of the hash itself */
static int l_sha256_string(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    usg_sha256 c;
    unsigned char d[32];
    char hex[65];
    usg_sha256_init(&c);
    usg_sha256_update(&c, s, n);
    usg_sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    lua_pushstring(L, hex);
    return 1;
}

/* usagi.fetch.download(url, part [, {label =, progress = 'bar'|'lines'|'none',
 *   connect_timeout =, stall_timeout =}]) -> true | nil, message, kind, http
 * kind is 'http', 'network', 'local' or 'interrupted'. */
static int l_download(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    const char *part = luaL_checkstring(L, 2);
    usg_fetch_opts o = {.label = "", .progress = isatty(2) ? 1 : 2};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "label");                    /* [.., label] */
        if (lua_isstring(L, -1)) o.label = lua_tostring(L, -1);
        lua_getfield(L, 3, "progress");                 /* [.., label, progress] */
        if (lua_isstring(L, -1)) {
            static const char *const modes[] = {"none", "bar", "lines", NULL};
            o.progress = luaL_checkoption(L, -1, NULL, modes);
        }
        lua_getfield(L, 3, "connect_timeout");
        o.connect_timeout = (long)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 3, "stall_timeout");
        o.stall_timeout = (long)luaL_optinteger(L, -1, 0);
        lua_pop(L, 3);                                  /* [.., label]: kept alive for o.label */
    }
    long http = 0;
    char err[1024];
    int rc = usg_fetch(url, part, &o, &http, err, sizeof err);
    if (rc == USG_FETCH_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    static const char *const kinds[] = {"ok", "http", "network", "local", "interrupted"};
    luaL_pushfail(L);
    lua_pushstring(L, err);
    lua_pushstring(L, kinds[rc]);
    lua_pushinteger(L, http);
    return 4;
}

int luaopen_usagi_fetch(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sha256", l_sha256}, {"sha256_string", l_sha256_string}, {"download", l_download},
        {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/*
 * recurrent_lua.c -- the binding's side of the sequence plugins' support
 * library (usagi/recurrent.h): a recurrent op's weights list
 * { {w_ih, w_hh [, b_ih, b_hh, ...]}, ... } and its options table
 * {dropout, lengths, ...}, read with the project's messages. The op tables
 * of modules/rnn, lstm and gru call them through the `layers` and
 * `recopts` argument kinds (host/ops/README.md).
 */
#include "usagi/lua.h"
#include "usagi/recurrent.h"

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


/*
 * nn_lua.c -- the Lua face of the list ops of host/core/index.c: cat and
 * stack take a list of tensors (or the tensors themselves, as Torch7's
 * torch.cat), split and chunk give one back. The op-table generator knows
 * one tensor in and one or a few out; these four take or give lists whose
 * length is only known at run time, so they are written by hand. The rest
 * of the neural-net ops (linear, softmax, the losses, embedding, gather,
 * index_select, scatter_add, one_hot) are declared in host/ops/nn.lua.
 *
 * Dims are 1-based. The ops on one tensor are also Tensor methods
 * (t:split(3)).
 */
#include <limits.h>
#include <string.h>

#include "binding.h"
#include "usagi/ops.h"
#include "usagi/autograd.h"

/* ==== cat, stack ======================================================== */

typedef usg_status (*concat_fn)(usg_tensor **, int, usg_tensor *const *, int);

/* f({t1, t2, ...} [, dim]) or, as Torch7's torch.cat, f(t1, t2, ... [, dim]).
 * The array of pointers is a userdata, so an error cannot leak it; the
 * tensors stay referenced by the table or the stack meanwhile. */
static int concat(lua_State *L, concat_fn fn, int stack)
{
    int from_table = lua_istable(L, 1) && !usg_lua_totensor(L, 1);
    int n = 0, dim_arg;
    if (from_table) {
        lua_Integer len = luaL_len(L, 1);
        luaL_argcheck(L, len <= INT_MAX, 1, "too many tensors");
        n = (int)len;
        dim_arg = 2;
    } else {
        while (usg_lua_totensor(L, n + 1)) n++;
        luaL_argcheck(L, n > 0, 1, "expected a table of tensors or tensors");
        dim_arg = n + 1;
    }
    lua_settop(L, dim_arg);                         /* [args..., dim or nil] */
    usg_tensor **ts = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ts, 0);  /* [..., dim, ts] */
    for (int i = 0; i < n; i++) {
        if (from_table) {
            lua_geti(L, 1, i + 1);                                     /* [..., ts, t] */
            ts[i] = usg_lua_totensor(L, -1);
            if (!ts[i])
                luaL_argerror(L, 1, lua_pushfstring(L, "element %d is a %s, not a tensor",
                              i + 1, luaL_typename(L, -1)));
            lua_pop(L, 1);                                             /* [..., ts] */
        } else {
            ts[i] = usg_lua_totensor(L, i + 1);
        }
    }
    int dim = n == 0 || lua_isnoneornil(L, dim_arg) ? 0
            : usg_lua_checkdim(L, dim_arg, ts[0]->ndim, stack);
    usg_tensor *out;
    USG_LUA_TRY(L, fn(&out, n, ts, dim));
    usg_lua_pushtensor(L, out);
    return 1;
}

static int l_cat(lua_State *L) { return concat(L, usg_ad_cat, 0); }
static int l_stack(lua_State *L) { return concat(L, usg_ad_stack, 1); }

/* ==== split, chunk ====================================================== */

/* The core hands back an array of views; until each one is in the result
 * table it lives here, and __gc frees what an error left behind. */
#define PIECES_MT "usagi.nn.pieces"

typedef struct pieces {
    usg_tensor **ts;
    int n;
} pieces;

static int pieces_gc(lua_State *L)
{
    pieces *p = luaL_checkudata(L, 1, PIECES_MT);
    for (int i = 0; p->ts && i < p->n; i++) usg_tensor_release(p->ts[i]);
    usg_free(p->ts);
    p->ts = NULL;
    return 0;
}

static pieces *new_pieces(lua_State *L)
{
    pieces *p = lua_newuserdatauv(L, sizeof *p, 0);      /* [..., p] */
    p->ts = NULL;
    p->n = 0;
    if (luaL_newmetatable(L, PIECES_MT)) {               /* [..., p, mt] */
        lua_pushcfunction(L, pieces_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                             /* [..., p] */
    return p;
}

/* [..., p] -> [..., p, {views}]; ownership of each view passes to Lua. */
static int push_pieces(lua_State *L, pieces *p)
{
    lua_createtable(L, p->n, 0);
    for (int i = 0; i < p->n; i++) {
        usg_lua_pushtensor(L, p->ts[i]);
        p->ts[i] = NULL;                                 /* now Lua's */
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* split(x, size [, dim = 1]) -> {views of `size` along dim} */
static int l_split(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1);
    lua_Integer size = luaL_checkinteger(L, 2);
    int dim = lua_isnoneornil(L, 3) ? 0 : usg_lua_checkdim(L, 3, x->ndim, 0);
    pieces *p = new_pieces(L);
    USG_LUA_TRY(L, usg_ad_split(&p->ts, &p->n, x, size, dim));
    return push_pieces(L, p);
}

/* chunk(x, n [, dim = 1]) -> {at most n nearly equal views} */
static int l_chunk(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1);
    lua_Integer chunks = luaL_checkinteger(L, 2);
    luaL_argcheck(L, chunks >= INT_MIN && chunks <= INT_MAX, 2, "chunks out of range");
    int dim = lua_isnoneornil(L, 3) ? 0 : usg_lua_checkdim(L, 3, x->ndim, 0);
    pieces *p = new_pieces(L);
    USG_LUA_TRY(L, usg_ad_chunk(&p->ts, &p->n, x, (int)chunks, dim));
    return push_pieces(L, p);
}

/* ==== Registration ====================================================== */

static const luaL_Reg module_fns[] = {{"cat", l_cat}, {"stack", l_stack}, {NULL, NULL}};

static const luaL_Reg both_fns[] = {{"split", l_split}, {"chunk", l_chunk}, {NULL, NULL}};

int usg_lua_open_nn(lua_State *L)
{
    usg_lua_register(L, module_fns, 1, 0);
    usg_lua_register(L, both_fns, 1, 1);
    return 0;
}

/*
 * dist_lua.c -- the hand-written part of the binding of usagi/dist.h:
 * usagi.dist.rank(), size(), barrier(), broadcast_bytes(s [, root]),
 * allreduce_grads(params [, bucket_mb]), and reducer(params [, bucket_mb]),
 * the averaging overlapped with the backward (usagi.dist.Reducer: begin
 * before a backward, finish after it, buckets()), and set_timeout(seconds) /
 * timeout(), the deadline of every collective. The collectives that are
 * tensor ops, broadcast(t [, root]) and allreduce(t [, 'sum'|'mean']), are
 * declared in ops.lua and generated. Ranks are MPI's, 0-based (rank 0 is
 * the one that writes), not Lua indices. dist.lua adds what is easier in
 * Lua: numbers, strings, the replica check and the data-parallel reducer.
 *
 * What stays here is not a tensor op: the process's place among the ranks
 * and its deadline, a barrier, bytes of a string, lists of parameters, and
 * the reducer's userdata; an op table has neither the kinds nor a check for
 * them that would run in one process.
 */
#include "usagi/lua.h"
#include "usagi/dist.h"

#include <stdint.h>
#include <string.h>

/* Generated from ops.lua: broadcast and allreduce into the module table. */
int usg_dist_ops_open(lua_State *L, int module);

static int l_init(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_init());
    lua_pushboolean(L, usg_dist_active());
    return 1;
}

static int l_rank(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_init());
    lua_pushinteger(L, usg_dist_rank());
    return 1;
}

static int l_size(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_init());
    lua_pushinteger(L, usg_dist_size());
    return 1;
}

static int l_compiled(lua_State *L) { lua_pushboolean(L, usg_dist_compiled()); return 1; }
static int l_last_buckets(lua_State *L) { lua_pushinteger(L, usg_dist_last_buckets()); return 1; }

static int l_barrier(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_barrier());
    return 0;
}

/* broadcast_bytes(s [, root = 0]) -> root's string s on every rank, any
 * bytes and any length (the others pass nil): the length goes first, then
 * the bytes into a buffer of that size. */
static int l_broadcast_bytes(lua_State *L)
{
    lua_Integer root = luaL_optinteger(L, 2, 0);
    USG_LUA_TRY(L, usg_dist_init());
    if (root < 0 || root >= usg_dist_size())
        return luaL_error(L, "dist.broadcast_bytes: root must be a rank 0..%d, got %I",
                          usg_dist_size() - 1, root);
    bool mine = usg_dist_rank() == root;
    size_t len = 0;
    const char *s = NULL;
    if (mine) {
        if (lua_type(L, 1) != LUA_TSTRING)
            return luaL_error(L, "dist.broadcast_bytes: the root must give a string, got %s",
                              luaL_typename(L, 1));
        s = lua_tolstring(L, 1, &len);
    }
    uint64_t n = len;
    USG_LUA_TRY(L, usg_dist_broadcast_bytes(&n, sizeof n, (int)root));
    if (mine) {
        USG_LUA_TRY(L, usg_dist_broadcast_bytes((void *)s, len, (int)root));
        lua_settop(L, 1);
        return 1;
    }
    if (n > (uint64_t)SIZE_MAX / 2)
        return luaL_error(L, "dist.broadcast_bytes: rank %I sends %I bytes, more than this "
                          "process can hold", root, (lua_Integer)n);
    /* a userdata, not a malloc: an error below leaves nothing to free */
    char *buf = n > 0 ? lua_newuserdatauv(L, (size_t)n, 0) : NULL;
    if (n > 0) USG_LUA_TRY(L, usg_dist_broadcast_bytes(buf, (size_t)n, (int)root));
    lua_pushlstring(L, buf ? buf : "", (size_t)n);
    return 1;
}

/* Temporary C memory in a userdata, so an error cannot leak it. */
typedef struct tlist { int n; usg_tensor *t[]; } tlist;

static void tlist_release(tlist *l)
{
    for (int i = 0; i < l->n; i++) usg_tensor_release(l->t[i]);
    l->n = 0;
}

static int tlist_gc(lua_State *L) { tlist_release(lua_touserdata(L, 1)); return 0; }

/* allreduce_grads(params [, bucket_mb = 25]) -> buckets: the mean over the
 * ranks of every param's .grad, bucketed. A param without a grad gets a
 * zero one first, so that every rank sends the same tensors. */
static int l_allreduce_grads(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Number mb = luaL_optnumber(L, 2, 25);
    luaL_argcheck(L, mb > 0 && mb <= 1 << 20, 2, "bucket_mb must be in (0, 1048576]");
    int n = (int)luaL_len(L, 1);
    tlist *l = lua_newuserdatauv(L, sizeof *l + (size_t)n * sizeof l->t[0], 0);  /* [.., l] */
    l->n = 0;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, tlist_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    for (int i = 1; i <= n; i++) {
        lua_geti(L, 1, i);                                                   /* [.., l, p] */
        usg_tensor *p = usg_lua_totensor(L, -1);
        if (!p) return luaL_error(L, "dist.allreduce_grads: params[%d] must be a tensor, got %s",
                                  i, luaL_typename(L, -1));
        lua_pop(L, 1);
        if (!p->grad) {
            if (!usg_dtype_is_float(p->dtype))
                return luaL_error(L, "dist.allreduce_grads: params[%d] is %s; parameters are "
                                  "f32 or f64", i, usg_dtype_name(p->dtype));
            USG_LUA_TRY(L, usg_tensor_zeros(&p->grad, p->dtype, p->ndim, p->shape));
        }
        usg_tensor_retain(p->grad);
        l->t[l->n++] = p->grad;
    }
    usg_status s = usg_dist_allreduce_many(l->t, l->n, USG_DIST_MEAN, (size_t)(mb * (1 << 20)));
    tlist_release(l);
    if (s != USG_OK) return usg_lua_error(L);
    lua_pushinteger(L, usg_dist_last_buckets());
    return 1;
}

/* ==== Reducer: usagi.dist.Reducer ==== */

#define REDUCER_MT "usagi.dist.Reducer"

typedef struct lreducer { usg_dist_reducer *r; } lreducer;

static usg_dist_reducer *check_reducer(lua_State *L)
{
    lreducer *u = luaL_checkudata(L, 1, REDUCER_MT);
    if (!u->r) luaL_error(L, "dist.reducer: the reducer was closed");
    return u->r;
}

static int l_reducer_gc(lua_State *L)
{
    lreducer *u = luaL_checkudata(L, 1, REDUCER_MT);
    usg_dist_reducer_free(u->r);
    u->r = NULL;
    return 0;
}

/* reducer(params [, bucket_mb = 25]) -> a usagi.dist.Reducer (see dist.h) */
static int l_reducer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Number mb = luaL_optnumber(L, 2, 25);
    luaL_argcheck(L, mb > 0 && mb <= 1 << 20, 2, "bucket_mb must be in (0, 1048576]");
    int n = (int)luaL_len(L, 1);
    lreducer *u = lua_newuserdatauv(L, sizeof *u, 1);                /* [.., u] */
    u->r = NULL;
    luaL_setmetatable(L, REDUCER_MT);
    usg_tensor **ps = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *ps, 0);  /* [.., u, ps] */
    for (int i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        ps[i - 1] = usg_lua_totensor(L, -1);
        if (!ps[i - 1]) return luaL_error(L, "dist.reducer: params[%d] must be a tensor, got %s",
                                          i, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    USG_LUA_TRY(L, usg_dist_reducer_new(&u->r, ps, n, (size_t)(mb * (1 << 20))));
    lua_pop(L, 1);                                                   /* [.., u] */
    return 1;
}

static int l_reducer_begin(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_reducer_begin(check_reducer(L)));
    return 0;
}

static int l_reducer_finish(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_reducer_finish(check_reducer(L)));
    return 0;
}

static int l_reducer_buckets(lua_State *L)
{
    usg_dist_reducer *r = check_reducer(L);
    lua_pushinteger(L, usg_dist_reducer_buckets(r));
    lua_pushinteger(L, usg_dist_reducer_early(r));
    return 2;
}

static const luaL_Reg reducer_methods[] = {
    {"begin", l_reducer_begin}, {"finish", l_reducer_finish}, {"buckets", l_reducer_buckets},
    {"close", l_reducer_gc}, {NULL, NULL}};

/* set_timeout(seconds): every collective's deadline (0: none); timeout() */
static int l_set_timeout(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_set_timeout((double)luaL_checknumber(L, 1)));
    return 0;
}

static int l_timeout(lua_State *L)
{
    USG_LUA_TRY(L, usg_dist_init());
    lua_pushnumber(L, usg_dist_timeout());
    return 1;
}

/* abort([code = 1]): stop every rank now (MPI_Abort); returns without MPI */
static int l_abort(lua_State *L)
{
    usg_dist_abort((int)luaL_optinteger(L, 1, 1));
    return 0;
}

static const luaL_Reg dist_functions[] = {
    {"init", l_init}, {"rank", l_rank}, {"size", l_size}, {"compiled", l_compiled},
    {"barrier", l_barrier}, {"broadcast_bytes", l_broadcast_bytes},
    {"allreduce_grads", l_allreduce_grads}, {"last_buckets", l_last_buckets},
    {"reducer", l_reducer}, {"abort", l_abort}, {"set_timeout", l_set_timeout},
    {"timeout", l_timeout}, {NULL, NULL}};

USG_API int luaopen_usagi_dist(lua_State *L)
{
    if (luaL_newmetatable(L, REDUCER_MT)) {                          /* [mt] */
        luaL_newlib(L, reducer_methods);                             /* [mt, methods] */
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_reducer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    USG_PLUGIN_OPEN(L, "dist", "0.1.0", dist_functions);              /* [M] */
    usg_dist_ops_open(L, -1);           /* broadcast, allreduce: the face calls them, never before */
    return 1;
}

/*
 * optim_lua.c -- the Lua face of host/core/optim.c: one update step of one
 * parameter, and the global gradient norm with clipping, as the private
 * table usagi._optim that scripts/usagi/optim.lua drives.
 *
 *   usagi._optim.adam_step(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq|nil, step, group, adamw)
 *   usagi._optim.clip_grad_norm({g1, g2, ...}, max_norm [, norm_type = 2]) -> total
 *
 * The hyper-parameters are read from the param-group table (`group.lr`,
 * `group.betas = {b1, b2}`, ...), missing ones taking PyTorch's defaults.
 * Users call optim.Adam(...):step(), not these. No math.
 */
#include <math.h>
#include <string.h>

#include "binding.h"
#include "usagi/optim.h"

/* ==== Options =========================================================== */

static double opt_num(lua_State *L, int idx, const char *k, double def)
{
    lua_getfield(L, idx, k);                             /* [v] */
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return def; }
    int isnum;
    double v = lua_tonumberx(L, -1, &isnum);
    if (!isnum)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s must be a number, got %s", k,
                      luaL_typename(L, -1)));
    lua_pop(L, 1);                                       /* [] */
    return v;
}

static bool opt_bool(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* group.betas = {b1, b2} (default {0.9, 0.999}) */
static void opt_betas(lua_State *L, int idx, double *b1, double *b2)
{
    *b1 = 0.9, *b2 = 0.999;
    lua_getfield(L, idx, "betas");                       /* [betas] */
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1)) luaL_argerror(L, idx, "betas must be a table {beta1, beta2}");
        int top = lua_gettop(L);
        lua_rawgeti(L, top, 1);
        lua_rawgeti(L, top, 2);                          /* [betas, b1, b2] */
        if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1))
            luaL_argerror(L, idx, "betas must be a table of two numbers {beta1, beta2}");
        *b1 = lua_tonumber(L, -2), *b2 = lua_tonumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);                                       /* [] */
}

static usg_tensor *opttensor(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : usg_lua_checktensor(L, idx);
}

/* ==== Steps ============================================================= */

/* sgd_step(p, g, buf|nil, step, group) */
static int l_sgd_step(lua_State *L)
{
    usg_tensor *p = usg_lua_checktensor(L, 1), *g = usg_lua_checktensor(L, 2), *buf = opttensor(L, 3);
    lua_Integer step = luaL_checkinteger(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    usg_sgd_opts o = {opt_num(L, 5, "lr", NAN), opt_num(L, 5, "momentum", 0),
                      opt_num(L, 5, "dampening", 0), opt_num(L, 5, "weight_decay", 0),
                      opt_bool(L, 5, "nesterov")};
    USG_LUA_TRY(L, usg_sgd_step(p, g, buf, step, &o));
    return 0;
}

/* adam_step(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq|nil, step, group, decoupled);
 * decoupled = true is AdamW */
static int l_adam_step(lua_State *L)
{
    usg_tensor *p = usg_lua_checktensor(L, 1), *g = usg_lua_checktensor(L, 2);
    usg_tensor *m = usg_lua_checktensor(L, 3), *v = usg_lua_checktensor(L, 4), *vmax = opttensor(L, 5);
    lua_Integer step = luaL_checkinteger(L, 6);
    luaL_checktype(L, 7, LUA_TTABLE);
    usg_adam_opts o;
    o.decoupled = lua_toboolean(L, 8);
    o.lr = opt_num(L, 7, "lr", 1e-3);
    opt_betas(L, 7, &o.beta1, &o.beta2);
    o.eps = opt_num(L, 7, "eps", 1e-8);
    o.weight_decay = opt_num(L, 7, "weight_decay", o.decoupled ? 1e-2 : 0);
    o.amsgrad = opt_bool(L, 7, "amsgrad");
    USG_LUA_TRY(L, usg_adam_step(p, g, m, v, vmax, step, &o));
    return 0;
}

/* adagrad_step(p, g, sum, step, group) */
static int l_adagrad_step(lua_State *L)
{
    usg_tensor *p = usg_lua_checktensor(L, 1), *g = usg_lua_checktensor(L, 2);
    usg_tensor *sum = usg_lua_checktensor(L, 3);
    lua_Integer step = luaL_checkinteger(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    usg_adagrad_opts o = {opt_num(L, 5, "lr", 1e-2), opt_num(L, 5, "lr_decay", 0),
                          opt_num(L, 5, "weight_decay", 0), opt_num(L, 5, "eps", 1e-10)};
    USG_LUA_TRY(L, usg_adagrad_step(p, g, sum, step, &o));
    return 0;
}

/* rmsprop_step(p, g, square_avg, grad_avg|nil, buf|nil, group) */
static int l_rmsprop_step(lua_State *L)
{
    usg_tensor *p = usg_lua_checktensor(L, 1), *g = usg_lua_checktensor(L, 2);
    usg_tensor *sq = usg_lua_checktensor(L, 3), *ga = opttensor(L, 4), *buf = opttensor(L, 5);
    luaL_checktype(L, 6, LUA_TTABLE);
    usg_rmsprop_opts o = {opt_num(L, 6, "lr", 1e-2), opt_num(L, 6, "alpha", 0.99),
                          opt_num(L, 6, "eps", 1e-8), opt_num(L, 6, "weight_decay", 0),
                          opt_num(L, 6, "momentum", 0), opt_bool(L, 6, "centered")};
    USG_LUA_TRY(L, usg_rmsprop_step(p, g, sq, ga, buf, &o));
    return 0;
}

/* ==== Norms ============================================================= */

/* The tensors of the list at idx as a C array living in a userdata pushed
 * on the stack (so an error cannot leak it). */
static usg_tensor **check_list(lua_State *L, int idx, int *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len < 0 || len > 1 << 24) luaL_argerror(L, idx, "too many tensors");
    *n = (int)len;
    usg_tensor **ts = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *ts, 0);
    for (int i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, i + 1);                      /* [ud, t] */
        if (!(ts[i] = usg_lua_totensor(L, -1)))
            luaL_argerror(L, idx, lua_pushfstring(L, "element %d must be a tensor, got %s",
                          i + 1, luaL_typename(L, -1)));
        lua_pop(L, 1);                                   /* [ud] */
    }
    return ts;
}

static double opt_norm_type(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), "inf") == 0)
        return INFINITY;
    return luaL_optnumber(L, idx, 2);
}

/* clip_grad_norm(grads, max_norm [, norm_type]) -> total norm before clipping */
static int l_clip_grad_norm(lua_State *L)
{
    int n;
    double max_norm = luaL_checknumber(L, 2), p = opt_norm_type(L, 3), total;
    usg_tensor **gs = check_list(L, 1, &n);
    USG_LUA_TRY(L, usg_clip_grad_norm(&total, n, gs, max_norm, p));
    lua_pushnumber(L, total);
    return 1;
}

/* grad_norm(grads [, norm_type]) -> the norm of all of them as one vector */
static int l_grad_norm(lua_State *L)
{
    int n;
    double p = opt_norm_type(L, 2), total;
    usg_tensor **gs = check_list(L, 1, &n);
    USG_LUA_TRY(L, usg_grad_norm(&total, n, gs, p));
    lua_pushnumber(L, total);
    return 1;
}

/* ==== Registration ====================================================== */

static const luaL_Reg fns[] = {
    {"sgd_step", l_sgd_step}, {"adam_step", l_adam_step}, {"adagrad_step", l_adagrad_step},
    {"rmsprop_step", l_rmsprop_step}, {"clip_grad_norm", l_clip_grad_norm},
    {"grad_norm", l_grad_norm}, {NULL, NULL}};

/* [usagi] -> [usagi], with usagi._optim */
int usg_lua_open_optim(lua_State *L)
{
    luaL_newlib(L, fns);                                 /* [usagi, _optim] */
    lua_setfield(L, -2, "_optim");                       /* [usagi] */
    return 0;
}

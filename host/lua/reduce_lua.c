/*
 * reduce_lua.c -- the Lua face of host/core/reduce.c: sum, mean, prod, max,
 * min, argmax, argmin, var, std, logsumexp and norm, each both
 * `usagi.f(t, ...)` and `t:f(...)`. They call the differentiable forms
 * (ad_reduce.c), so a reduction of a tensor that requires grad is recorded.
 *
 * As in PyTorch, a reduction gives a tensor, 0-dim when every dim is
 * reduced away, so that `loss:backward()` works the same in training and
 * in evaluation; t:sum():item() is the Lua number. Indices are the one
 * exception: argmax/argmin without a dim, and the index that max/min give
 * without a dim, are Lua integers (1-based, into the flat tensor). max
 * and min give values and 1-based i32 indices; given two tensors they are the elementwise
 * maximum / minimum, as torch.max(a, b). Dims are 1-based and may be
 * negative; keepdim is an optional boolean after the dim. No math here.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "binding.h"
#include "usagi/autograd.h"

/* ==== Arguments and results ============================================= */

/* keepdim at idx: false when none or nil, else it must be a boolean. */
static bool opt_keepdim(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return false;
    luaL_checktype(L, idx, LUA_TBOOLEAN);
    return lua_toboolean(L, idx);
}

/* The tensor itself (ownership passes to Lua), or, unless `tensor`, the single
 * element as a Lua integer (indices with every dim reduced away). */
static void push_result(lua_State *L, usg_tensor *t, int dim, bool keepdim, bool tensor)
{
    if (dim != USG_ALL_DIMS || keepdim || tensor) {
        usg_lua_pushtensor(L, t);
        return;
    }
    double v = usg_tensor_get_flat(t, 0);
    usg_dtype dt = t->dtype;
    usg_tensor_release(t);
    usg_lua_pushelem(L, dt, v);
}

/* ==== sum, mean, prod, logsumexp ======================================== */

typedef usg_status (*reducer)(usg_tensor **, usg_tensor *, int, bool);

/* f(t [, dim [, keepdim]]) */
static int reduce_simple(lua_State *L, reducer fn)
{
    usg_tensor *t = usg_lua_checktensor(L, 1), *out;
    int dim = usg_lua_optdim(L, 2, t->ndim);
    bool keepdim = opt_keepdim(L, 3);
    USG_LUA_TRY(L, fn(&out, t, dim, keepdim));
    push_result(L, out, dim, keepdim, true);
    return 1;
}

static int l_sum(lua_State *L) { return reduce_simple(L, usg_ad_sum); }
static int l_mean(lua_State *L) { return reduce_simple(L, usg_ad_mean); }
static int l_prod(lua_State *L) { return reduce_simple(L, usg_ad_prod); }

/* logsumexp(t, dim [, keepdim]): the dim is required, as in PyTorch. */
static int l_logsumexp(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1), *out;
    int dim = usg_lua_checkdim(L, 2, t->ndim, 0);
    bool keepdim = opt_keepdim(L, 3);
    USG_LUA_TRY(L, usg_ad_logsumexp(&out, t, dim, keepdim));
    usg_lua_pushtensor(L, out);
    return 1;
}

/* ==== max, min, argmax, argmin ========================================== */

typedef usg_status (*extremer)(usg_tensor **, usg_tensor **, usg_tensor *, int, bool, int);

/* f(t [, dim [, keepdim]]) -> values, indices (or the indices alone). */
static int reduce_extreme(lua_State *L, extremer fn, bool values)
{
    usg_tensor *t = usg_lua_checktensor(L, 1), *v = NULL, *ix = NULL;
    int dim = usg_lua_optdim(L, 2, t->ndim);
    bool keepdim = opt_keepdim(L, 3);
    USG_LUA_TRY(L, fn(values ? &v : NULL, &ix, t, dim, keepdim, 1));
    if (values) push_result(L, v, dim, keepdim, true);   /* [v] */
    push_result(L, ix, dim, keepdim, false);                         /* [v, ix] */
    return values ? 2 : 1;
}

/* max(a, b) with two tensors: elementwise, broadcasting. */
static int elementwise(lua_State *L, usg_binop op)
{
    usg_tensor *a = usg_lua_checktensor(L, 1), *b = usg_lua_checktensor(L, 2), *out;
    USG_LUA_TRY(L, usg_ad_binary(&out, op, a, b));
    usg_lua_pushtensor(L, out);
    return 1;
}

static int l_max(lua_State *L)
{
    if (usg_lua_totensor(L, 2)) return elementwise(L, USG_MAXIMUM);
    return reduce_extreme(L, usg_ad_max, true);
}

static int l_min(lua_State *L)
{
    if (usg_lua_totensor(L, 2)) return elementwise(L, USG_MINIMUM);
    return reduce_extreme(L, usg_ad_min, true);
}

static int l_argmax(lua_State *L) { return reduce_extreme(L, usg_ad_max, false); }
static int l_argmin(lua_State *L) { return reduce_extreme(L, usg_ad_min, false); }

/* ==== var, std ========================================================== */

/* The options table at idx: { correction = 1 } (1 = unbiased, PyTorch's
 * default; 0 = biased). We take PyTorch's `correction` rather than
 * Torch7's boolean flag, whose meaning (true = biased) is easy to get
 * backwards. Unknown keys are errors, so a typo is not silently ignored. */
static int check_correction(lua_State *L, int idx)
{
    int correction = 1;
    lua_pushnil(L);                                  /* [nil] */
    while (lua_next(L, idx)) {                       /* [key, value] */
        if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "correction") != 0)
            return luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' "
                                 "(expected correction)", luaL_tolstring(L, -2, NULL)));
        int isint;
        lua_Integer c = lua_tointegerx(L, -1, &isint);
        if (!isint || c < INT_MIN || c > INT_MAX)
            return luaL_argerror(L, idx, "correction must be an integer");
        correction = (int)c;
        lua_pop(L, 1);                               /* [key] */
    }
    return correction;
}

typedef usg_status (*var_fn)(usg_tensor **, usg_tensor *, int, bool, int);

/* f(t [, dim [, keepdim]] [, opts]): the options table, when given, is the
 * last argument (t:var{correction = 0}, t:var(2, true, {correction = 0})). */
static int reduce_var(lua_State *L, var_fn fn)
{
    usg_tensor *t = usg_lua_checktensor(L, 1), *out;
    int top = lua_gettop(L), correction = 1;
    if (top >= 2 && lua_istable(L, top)) correction = check_correction(L, top--);
    int dim = top >= 2 ? usg_lua_optdim(L, 2, t->ndim) : USG_ALL_DIMS;
    bool keepdim = top >= 3 && opt_keepdim(L, 3);
    USG_LUA_TRY(L, fn(&out, t, dim, keepdim, correction));
    push_result(L, out, dim, keepdim, true);
    return 1;
}

static int l_var(lua_State *L) { return reduce_var(L, usg_ad_var); }
static int l_std(lua_State *L) { return reduce_var(L, usg_ad_std); }

/* ==== norm ============================================================== */

/* norm(t [, p [, dim [, keepdim]]]): p defaults to 2; math.huge or 'inf'
 * gives the max norm, 'fro' is 2. */
static int l_norm(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1), *out;
    double p = 2;
    const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (s && strcmp(s, "inf") == 0) p = HUGE_VAL;
    else if (!s || strcmp(s, "fro") != 0) p = luaL_optnumber(L, 2, 2);
    int dim = usg_lua_optdim(L, 3, t->ndim);
    bool keepdim = opt_keepdim(L, 4);
    USG_LUA_TRY(L, usg_ad_norm(&out, t, p, dim, keepdim));
    push_result(L, out, dim, keepdim, true);
    return 1;
}

/* ==== Registration ====================================================== */

static const luaL_Reg reduce_fns[] = {
    {"sum", l_sum},       {"mean", l_mean},     {"prod", l_prod},
    {"max", l_max},       {"min", l_min},       {"argmax", l_argmax},
    {"argmin", l_argmin}, {"var", l_var},       {"std", l_std},
    {"logsumexp", l_logsumexp},                 {"norm", l_norm},
    {NULL, NULL},
};

/* [usagi] -> [usagi]: module functions and Tensor methods. */
int usg_lua_open_reduce(lua_State *L)
{
    usg_lua_register(L, reduce_fns, 1, 1);
    return 0;
}

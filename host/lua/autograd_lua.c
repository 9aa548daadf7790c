/*
 * autograd_lua.c -- Lua face of autograd.c: requires_grad, .grad, backward,
 * detach and grad mode (no_grad). usagi.gradcheck is Lua (scripts/usagi).
 *
 *   local w = usagi.randn(3, 2):requires_grad(true)
 *   local loss = (x:mm(w) - y):square():mean()
 *   loss:backward()          -- w.grad now holds dloss/dw
 *   usagi.no_grad(function() w:sub_(w.grad * 0.1) end)
 */
#include "binding.h"
#include "usagi/autograd.h"

/* t:requires_grad(flag): set and return t; t:requires_grad() asks. */
static int l_tensor_requires_grad(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) { lua_pushboolean(L, t->requires_grad); return 1; }
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    int on = lua_toboolean(L, 2);
    if (on && !usg_dtype_is_float(t->dtype))
        return luaL_error(L, "requires_grad: only f32 and f64 tensors can require grad, this "
                          "one is %s", usg_dtype_name(t->dtype));
    if (!on && t->grad_fn)
        return luaL_error(L, "requires_grad: this tensor is the result of an op in a graph; "
                          "use t:detach() to get one without history");
    t->requires_grad = on;
    lua_settop(L, 1);
    return 1;
}

static int l_tensor_get_grad(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (!t->grad) { lua_pushnil(L); return 1; }
    usg_tensor_retain(t->grad);
    usg_lua_pushtensor(L, t->grad);
    return 1;
}

/* t.grad = nil (or a tensor of t's shape and dtype) */
static int l_tensor_set_grad(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1), *g = NULL;
    if (!lua_isnil(L, 2)) {
        g = usg_lua_checktensor(L, 2);
        if (!usg_same_shape(g, t) || g->dtype != t->dtype) {
            char b1[256], b2[256];
            return luaL_error(L, "grad: must be a %s %s tensor like the tensor, got %s %s",
                              usg_dtype_name(t->dtype), usg_shape_str(b1, sizeof b1, t->ndim, t->shape),
                              usg_dtype_name(g->dtype), usg_shape_str(b2, sizeof b2, g->ndim, g->shape));
        }
        usg_tensor_retain(g);
    }
    usg_tensor_release(t->grad);
    t->grad = g;
    return 0;
}

/* t:backward([grad] [, {retain_graph = false}]) */
static int l_tensor_backward(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    usg_tensor *g = usg_lua_totensor(L, 2);
    int opt = g ? 3 : 2;
    if (!g && !lua_isnoneornil(L, 2) && !lua_istable(L, 2))
        luaL_typeerror(L, 2, "usagi.Tensor or options table");
    int retain = 0;
    if (lua_istable(L, opt)) {
        lua_getfield(L, opt, "retain_graph");
        retain = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    USG_LUA_TRY(L, usg_backward(t, g, retain));
    return 0;
}

static int l_tensor_detach(lua_State *L)
{
    usg_tensor *r;
    USG_LUA_TRY(L, usg_detach(&r, usg_lua_checktensor(L, 1)));
    usg_lua_pushtensor(L, r);
    return 1;
}

static int l_tensor_is_leaf(lua_State *L)
{
    lua_pushboolean(L, usg_lua_checktensor(L, 1)->grad_fn == NULL);
    return 1;
}

/* the name of the op that made t ('mm', 'add', ...), or nil for a leaf */
static int l_tensor_grad_fn(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (!t->grad_fn) lua_pushnil(L);
    else lua_pushstring(L, usg_node_name(t->grad_fn));
    return 1;
}

/* ==== Grad mode ========================================================= */

/* Call f(...) with grad mode set to `on`, restoring the mode even when f
 * raises; returns f's results. */
static int with_grad_mode(lua_State *L, bool on)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 1;
    bool was = usg_set_grad_enabled(on);
    int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
    usg_set_grad_enabled(was);
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

static int l_no_grad(lua_State *L) { return with_grad_mode(L, false); }
static int l_enable_grad(lua_State *L) { return with_grad_mode(L, true); }

static int l_set_grad_enabled(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    lua_pushboolean(L, usg_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

static int l_is_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, usg_grad_enabled());
    return 1;
}

/* ==== Registration ====================================================== */

static const luaL_Reg methods[] = {
    {"requires_grad", l_tensor_requires_grad}, {"backward", l_tensor_backward},
    {"detach", l_tensor_detach}, {"is_leaf", l_tensor_is_leaf}, {"grad_fn", l_tensor_grad_fn},
    {NULL, NULL}};

static const luaL_Reg module_fns[] = {
    {"no_grad", l_no_grad}, {"enable_grad", l_enable_grad},
    {"set_grad_enabled", l_set_grad_enabled}, {"is_grad_enabled", l_is_grad_enabled},
    {"detach", l_tensor_detach}, {NULL, NULL}};

int usg_lua_open_autograd(lua_State *L)
{
    usg_lua_register(L, methods, 0, 1);
    usg_lua_register(L, module_fns, 1, 0);
    luaL_getmetatable(L, USG_TENSOR_MT);                 /* [mod, mt] */
    lua_newtable(L);
    lua_pushcfunction(L, l_tensor_get_grad);
    lua_setfield(L, -2, "grad");
    lua_setfield(L, -2, "__fields");
    lua_newtable(L);
    lua_pushcfunction(L, l_tensor_set_grad);
    lua_setfield(L, -2, "grad");
    lua_setfield(L, -2, "__setters");
    lua_pop(L, 1);                                       /* [mod] */
    return 0;
}

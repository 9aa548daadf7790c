/*
 * math_lua.c -- Lua face of elementwise.c and blas.c: arithmetic and
 * comparison (functions, methods and operators), unary maths, clamp, where,
 * allclose, matrix products, and the core's threads.
 *
 * Operators follow PyTorch: + - * / ^ are elementwise with broadcasting and
 * accept a number on either side; the matrix product is a:mm(b) or
 * usagi.matmul(a, b). Methods ending in _ work in place and return self.
 *
 * The differentiable ops call the usg_ad_* forms (host/core/ad_math.c), so
 * they record for autograd; the in-place methods refuse a tensor that
 * requires grad, except inside usagi.no_grad.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"
#include "usagi/autograd.h"

/* In-place methods refuse to write into a tensor that requires grad (outside
 * usagi.no_grad): the message names the method, e.g. "add_". */
static void check_inplace(lua_State *L, const usg_tensor *t, const char *name)
{
    char fn[32];
    snprintf(fn, sizeof fn, "%s_", name);
    USG_LUA_TRY(L, usg_check_inplace(t, fn));
}

/* ==== Binary ============================================================ */

static int binary(lua_State *L, usg_binop op)
{
    usg_tensor *a = usg_lua_totensor(L, 1), *b = usg_lua_totensor(L, 2), *r;
    usg_status s;
    if (a && b) s = usg_ad_binary(&r, op, a, b);
    else if (a) s = usg_ad_binary_scalar(&r, op, a, luaL_checknumber(L, 2), false);
    else if (b) s = usg_ad_binary_scalar(&r, op, b, luaL_checknumber(L, 1), true);
    else return luaL_typeerror(L, 1, USG_TENSOR_MT);
    USG_LUA_TRY(L, s);
    usg_lua_pushtensor(L, r);
    return 1;
}

static int binary_(lua_State *L, usg_binop op)
{
    usg_tensor *a = usg_lua_checktensor(L, 1), *b = usg_lua_totensor(L, 2);
    check_inplace(L, a, usg_binop_name(op));
    USG_LUA_TRY(L, b ? usg_binary_(a, op, b) : usg_binary_scalar_(a, op, luaL_checknumber(L, 2)));
    lua_settop(L, 1);
    return 1;
}

#define BINARY(name, op) \
    static int l_tensor_##name(lua_State *L) { return binary(L, op); } \
    static int l_tensor_##name##_(lua_State *L) { return binary_(L, op); }
BINARY(add, USG_ADD)
BINARY(sub, USG_SUB)
BINARY(mul, USG_MUL)
BINARY(div, USG_DIV)
BINARY(pow, USG_POW)
BINARY(maximum, USG_MAXIMUM)
BINARY(minimum, USG_MINIMUM)
BINARY(eq, USG_EQ)
BINARY(ne, USG_NE)
BINARY(lt, USG_LT)
BINARY(le, USG_LE)
BINARY(gt, USG_GT)
BINARY(ge, USG_GE)
#undef BINARY

/* ==== Unary ============================================================= */

static int unary(lua_State *L, usg_unop op)
{
    usg_tensor *r;
    USG_LUA_TRY(L, usg_ad_unary(&r, op, usg_lua_checktensor(L, 1)));
    usg_lua_pushtensor(L, r);
    return 1;
}

static int unary_(lua_State *L, usg_unop op)
{
    usg_tensor *a = usg_lua_checktensor(L, 1);
    check_inplace(L, a, usg_unop_name(op));
    USG_LUA_TRY(L, usg_unary_(a, op));
    lua_settop(L, 1);
    return 1;
}

#define UNARY(name, op) \
    static int l_tensor_##name(lua_State *L) { return unary(L, op); } \
    static int l_tensor_##name##_(lua_State *L) { return unary_(L, op); }
UNARY(neg, USG_NEG)
UNARY(abs, USG_ABS)
UNARY(exp, USG_EXP)
UNARY(log, USG_LOG)
UNARY(sqrt, USG_SQRT)
UNARY(tanh, USG_TANH)
UNARY(sigmoid, USG_SIGMOID)
UNARY(relu, USG_RELU)
UNARY(sign, USG_SIGN)
UNARY(floor, USG_FLOOR)
UNARY(ceil, USG_CEIL)
UNARY(round, USG_ROUND)
UNARY(log1p, USG_LOG1P)
UNARY(sin, USG_SIN)
UNARY(cos, USG_COS)
UNARY(square, USG_SQUARE)
UNARY(reciprocal, USG_RECIPROCAL)
#undef UNARY

/* __unm gets the operand twice; only the first matters. */
static int l_unm(lua_State *L) { lua_settop(L, 1); return unary(L, USG_NEG); }

/* ==== clamp, where, allclose ============================================ */

static double optbound(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NAN : luaL_checknumber(L, idx);
}

static int l_clamp(lua_State *L)
{
    usg_tensor *r;
    USG_LUA_TRY(L, usg_ad_clamp(&r, usg_lua_checktensor(L, 1), optbound(L, 2), optbound(L, 3)));
    usg_lua_pushtensor(L, r);
    return 1;
}

static int l_clamp_(lua_State *L)
{
    usg_tensor *a = usg_lua_checktensor(L, 1);
    check_inplace(L, a, "clamp");
    USG_LUA_TRY(L, usg_clamp_(a, optbound(L, 2), optbound(L, 3)));
    lua_settop(L, 1);
    return 1;
}

/* where(cond, a, b): a and b may be numbers */
static int l_where(lua_State *L)
{
    usg_tensor *cond = usg_lua_checktensor(L, 1), *oa, *ob, *r;
    usg_tensor *a = usg_lua_checktensor_or_number(L, 2, &oa);
    usg_tensor *b = usg_lua_checktensor_or_number(L, 3, &ob);
    usg_status s = usg_ad_where(&r, cond, a, b);
    usg_tensor_release(oa);
    usg_tensor_release(ob);
    USG_LUA_TRY(L, s);
    usg_lua_pushtensor(L, r);
    return 1;
}

static int l_allclose(lua_State *L)
{
    bool ok;
    USG_LUA_TRY(L, usg_allclose(&ok, usg_lua_checktensor(L, 1), usg_lua_checktensor(L, 2),
                                luaL_optnumber(L, 3, 1e-5), luaL_optnumber(L, 4, 1e-8)));
    lua_pushboolean(L, ok);
    return 1;
}

/* equal(a, b): same shape and exactly the same values */
static int l_equal(lua_State *L)
{
    usg_tensor *a = usg_lua_checktensor(L, 1), *b = usg_lua_checktensor(L, 2);
    bool ok = usg_same_shape(a, b);
    if (ok) USG_LUA_TRY(L, usg_allclose(&ok, a, b, 0, 0));
    lua_pushboolean(L, ok);
    return 1;
}

/* ==== Matrix products =================================================== */

static int product(lua_State *L, usg_status (*f)(usg_tensor **, usg_tensor *, usg_tensor *))
{
    usg_tensor *r;
    USG_LUA_TRY(L, f(&r, usg_lua_checktensor(L, 1), usg_lua_checktensor(L, 2)));
    usg_lua_pushtensor(L, r);
    return 1;
}
static int l_mm(lua_State *L) { return product(L, usg_ad_mm); }
static int l_bmm(lua_State *L) { return product(L, usg_ad_bmm); }
static int l_matmul(lua_State *L) { return product(L, usg_ad_matmul); }

/* addmm(c, a, b [, {beta = 1, alpha = 1}]) = beta c + alpha (a b); an
 * unknown option is an error, not a silent default. */
static int l_addmm(lua_State *L)
{
    double opt[2] = {1, 1};                          /* beta, alpha */
    static const char *const names[] = {"beta", "alpha"};
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_pushnil(L);                              /* [.., nil] */
        while (lua_next(L, 4)) {                     /* [.., key, value] */
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            int i = strcmp(k, "beta") == 0 ? 0 : strcmp(k, "alpha") == 0 ? 1 : -1;
            if (i < 0)
                return luaL_error(L, "addmm: unknown option '%s' (expected beta or alpha)",
                                  luaL_tolstring(L, -2, NULL));
            if (lua_type(L, -1) != LUA_TNUMBER)
                return luaL_error(L, "addmm: option '%s' must be a number, got %s", names[i],
                                  luaL_typename(L, -1));
            opt[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);                           /* [.., key] */
        }
    }
    usg_tensor *r;
    USG_LUA_TRY(L, usg_ad_addmm(&r, usg_lua_checktensor(L, 1), usg_lua_checktensor(L, 2),
                             usg_lua_checktensor(L, 3), opt[0], opt[1]));
    usg_lua_pushtensor(L, r);
    return 1;
}

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

static const luaL_Reg both_fns[] = {
    {"add", l_tensor_add}, {"sub", l_tensor_sub}, {"mul", l_tensor_mul}, {"div", l_tensor_div}, {"pow", l_tensor_pow},
    {"maximum", l_tensor_maximum}, {"minimum", l_tensor_minimum},
    {"eq", l_tensor_eq}, {"ne", l_tensor_ne}, {"lt", l_tensor_lt}, {"le", l_tensor_le}, {"gt", l_tensor_gt}, {"ge", l_tensor_ge},
    {"neg", l_tensor_neg}, {"abs", l_tensor_abs}, {"exp", l_tensor_exp}, {"log", l_tensor_log}, {"sqrt", l_tensor_sqrt},
    {"tanh", l_tensor_tanh}, {"sigmoid", l_tensor_sigmoid}, {"relu", l_tensor_relu}, {"sign", l_tensor_sign},
    {"floor", l_tensor_floor}, {"ceil", l_tensor_ceil}, {"round", l_tensor_round}, {"log1p", l_tensor_log1p},
    {"sin", l_tensor_sin}, {"cos", l_tensor_cos}, {"square", l_tensor_square}, {"reciprocal", l_tensor_reciprocal},
    {"clamp", l_clamp}, {"allclose", l_allclose}, {"equal", l_equal},
    {"mm", l_mm}, {"bmm", l_bmm}, {"matmul", l_matmul}, {NULL, NULL}};

static const luaL_Reg method_fns[] = {
    {"add_", l_tensor_add_}, {"sub_", l_tensor_sub_}, {"mul_", l_tensor_mul_}, {"div_", l_tensor_div_}, {"pow_", l_tensor_pow_},
    {"maximum_", l_tensor_maximum_}, {"minimum_", l_tensor_minimum_}, {"eq_", l_tensor_eq_}, {"ne_", l_tensor_ne_},
    {"lt_", l_tensor_lt_}, {"le_", l_tensor_le_}, {"gt_", l_tensor_gt_}, {"ge_", l_tensor_ge_},
    {"neg_", l_tensor_neg_}, {"abs_", l_tensor_abs_}, {"exp_", l_tensor_exp_}, {"log_", l_tensor_log_}, {"sqrt_", l_tensor_sqrt_},
    {"tanh_", l_tensor_tanh_}, {"sigmoid_", l_tensor_sigmoid_}, {"relu_", l_tensor_relu_}, {"sign_", l_tensor_sign_},
    {"floor_", l_tensor_floor_}, {"ceil_", l_tensor_ceil_}, {"round_", l_tensor_round_}, {"log1p_", l_tensor_log1p_},
    {"sin_", l_tensor_sin_}, {"cos_", l_tensor_cos_}, {"square_", l_tensor_square_}, {"reciprocal_", l_tensor_reciprocal_},
    {"clamp_", l_clamp_},
    {"__add", l_tensor_add}, {"__sub", l_tensor_sub}, {"__mul", l_tensor_mul}, {"__div", l_tensor_div}, {"__pow", l_tensor_pow},
    {"__unm", l_unm}, {NULL, NULL}};

static const luaL_Reg module_fns[] = {
    {"where", l_where}, {"addmm", l_addmm}, {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads}, {"blas_info", l_blas_info}, {NULL, NULL}};

int usg_lua_open_math(lua_State *L)
{
    usg_lua_register(L, both_fns, 1, 1);
    usg_lua_register(L, method_fns, 0, 1);
    usg_lua_register(L, module_fns, 1, 0);
    return 0;
}

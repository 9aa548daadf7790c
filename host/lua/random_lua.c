/*
 * random_lua.c -- the Lua face of host/core/random.c: the run's generator
 * and the random tensors drawn from it.
 *
 * One generator per Lua state, kept in the registry and made on first use
 * with seed 0, stream 0, so that a script that never seeds is still
 * reproducible. usagi.manual_seed(seed [, stream]) restarts it;
 * get_rng_state / set_rng_state move its eleven words in and out of a Lua
 * table (a checkpoint stores them). Plugins reach the same generator through
 * usg_lua_rng().
 *
 * Shapes are numbers or a table (`rand(2, 3)`, `rand{2, 3}`), options a
 * trailing table (`randn(4, {dtype = 'f64', std = 0.1})`); an unknown option
 * is an error, not a silent default. Indices (multinomial, randperm) are
 * 1-based. No math here.
 */
#include <string.h>

#include "binding.h"
#include "usagi/autograd.h"

/* ==== The run's generator =============================================== */

/* The generator and the seed it was last given (for initial_seed). */
typedef struct lrng {
    usg_rng r;              /* first, so a usg_rng * is also an lrng * */
    lua_Integer seed, stream;
} lrng;

static const char RNG_KEY = 'r';   /* its address is the registry key */

/* The generator userdata, anchored in the registry; Lua never moves a
 * userdata, so the pointer stays valid for the life of the state. */
static lrng *get_lrng(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &RNG_KEY) == LUA_TUSERDATA) {
        lrng *g = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return g;
    }
    lua_pop(L, 1);
    lrng *g = lua_newuserdatauv(L, sizeof *g, 0);   /* [ud] */
    usg_rng_seed(&g->r, 0, 0);
    g->seed = g->stream = 0;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &RNG_KEY);     /* [] */
    return g;
}

usg_rng *usg_lua_rng(lua_State *L) { return &get_lrng(L)->r; }

/* ==== Arguments ========================================================= */

/* The index of a trailing options table, or 0: a plain table (a usagi.Size
 * has a metatable) in the last slot, unless it is the only shape argument
 * and holds sizes ({2, 3}). An empty {} there means a 0-dim shape or no
 * options; both give the same call. */
static int opts_index(lua_State *L, int first)
{
    int top = lua_gettop(L);
    if (top < first || lua_type(L, top) != LUA_TTABLE) return 0;
    if (lua_getmetatable(L, top)) { lua_pop(L, 1); return 0; }
    return (top > first || lua_rawlen(L, top) == 0) ? top : 0;
}

void usg_lua_check_opts(lua_State *L, int idx, const char *fn, const char *const *known)
{
    lua_pushnil(L);                                     /* [.., nil] */
    while (lua_next(L, idx)) {                          /* [.., key, value] */
        bool ok = false;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int i = 0; known[i]; i++) ok = ok || strcmp(lua_tostring(L, -2), known[i]) == 0;
        if (!ok) {
            const char *k = luaL_tolstring(L, -2, NULL);
            luaL_error(L, "%s: unknown option '%s'", fn, k);
        }
        lua_pop(L, 1);                                  /* [.., key] */
    }
}

static double opt_number(lua_State *L, int idx, const char *fn, const char *name, double def)
{
    if (!idx) return def;
    double v = def;
    int t = lua_getfield(L, idx, name);                 /* [.., value] */
    if (t == LUA_TNUMBER) v = lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "%s: option '%s' must be a number, got %s", fn, name, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

static usg_dtype opt_dtype(lua_State *L, int idx, const char *fn, usg_dtype def)
{
    if (!idx) return def;
    usg_dtype dt = def;
    int t = lua_getfield(L, idx, "dtype");              /* [.., value] */
    if (t != LUA_TNIL && (t != LUA_TSTRING || !usg_dtype_parse(lua_tostring(L, -1), &dt)))
        luaL_error(L, "%s: option 'dtype' must be 'f32', 'f64' or 'i32', got %s", fn,
                   luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    return dt;
}

/* The shape in slots first..last (the options already read and dropped):
 * numbers, one table or one usagi.Size; nothing at all is 0-dim. */
static void shape_args(lua_State *L, int first, int last, int *ndim, int64_t *shape)
{
    *ndim = 0;
    if (last < first) return;
    int used = usg_lua_checkshape(L, first, ndim, shape);
    if (first + used <= last)
        luaL_argerror(L, first + used, "unexpected argument after the shape");
}

static bool opt_boolean(lua_State *L, int idx, bool def)
{
    if (lua_isnoneornil(L, idx)) return def;
    luaL_checktype(L, idx, LUA_TBOOLEAN);
    return lua_toboolean(L, idx);
}

/* ==== Seeding and state ================================================= */

/* manual_seed(seed [, stream]): any Lua integer; its 64 bits are the key. */
static int l_manual_seed(lua_State *L)
{
    lua_Integer seed = luaL_checkinteger(L, 1), stream = luaL_optinteger(L, 2, 0);
    lrng *g = get_lrng(L);
    usg_rng_seed(&g->r, (uint64_t)seed, (uint64_t)stream);
    g->seed = seed;
    g->stream = stream;
    return 0;
}

/* initial_seed() -> the seed last given to manual_seed (0 when none). */
static int l_initial_seed(lua_State *L)
{
    lua_pushinteger(L, get_lrng(L)->seed);
    return 1;
}

/* get_rng_state() -> {key0, key1, ctr0..3, buf0..3, pos}, words as integers. */
static int l_get_rng_state(lua_State *L)
{
    uint32_t s[USG_RNG_STATE_WORDS];
    usg_rng_get_state(usg_lua_rng(L), s);
    lua_createtable(L, USG_RNG_STATE_WORDS, 0);         /* [t] */
    for (int i = 0; i < USG_RNG_STATE_WORDS; i++) {
        lua_pushinteger(L, (lua_Integer)s[i]);          /* [t, w] */
        lua_rawseti(L, -2, i + 1);                      /* [t] */
    }
    return 1;
}

/* set_rng_state(t): eleven integers in 0 .. 2^32-1, and a state the core
 * accepts (a buffer that matches its counter). */
static int l_set_rng_state(lua_State *L)
{
    uint32_t s[USG_RNG_STATE_WORDS];
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_rawlen(L, 1) != USG_RNG_STATE_WORDS)
        return luaL_error(L, "set_rng_state: state must be a table of %d integers, got %d entries",
                          USG_RNG_STATE_WORDS, (int)lua_rawlen(L, 1));
    for (int i = 0; i < USG_RNG_STATE_WORDS; i++) {
        int isint = 0;
        lua_rawgeti(L, 1, i + 1);                       /* [t, w] */
        lua_Integer w = lua_tointegerx(L, -1, &isint);
        if (!isint || w < 0 || w > (lua_Integer)UINT32_MAX)
            return luaL_error(L, "set_rng_state: word %d must be an integer in 0..4294967295, got %s",
                              i + 1, luaL_tolstring(L, -1, NULL));
        s[i] = (uint32_t)w;
        lua_pop(L, 1);                                  /* [t] */
    }
    USG_LUA_TRY(L, usg_rng_set_state(usg_lua_rng(L), s));
    return 0;
}

/* ==== Random tensors ==================================================== */

/* rand(shape... [, {dtype = 'f32', lo = 0, hi = 1}]) */
static int l_rand(lua_State *L)
{
    static const char *const known[] = {"dtype", "lo", "hi", NULL};
    int o = opts_index(L, 1), ndim;
    int64_t shape[USG_MAX_DIMS];
    if (o) usg_lua_check_opts(L, o, "rand", known);
    usg_dtype dt = opt_dtype(L, o, "rand", USG_F32);
    double lo = opt_number(L, o, "rand", "lo", 0), hi = opt_number(L, o, "rand", "hi", 1);
    if (o) lua_settop(L, o - 1);
    shape_args(L, 1, lua_gettop(L), &ndim, shape);
    usg_tensor *out;
    USG_LUA_TRY(L, usg_rand(&out, usg_lua_rng(L), dt, ndim, shape, lo, hi));
    usg_lua_pushtensor(L, out);
    return 1;
}

/* randn(shape... [, {dtype = 'f32', mean = 0, std = 1}]) */
static int l_randn(lua_State *L)
{
    static const char *const known[] = {"dtype", "mean", "std", NULL};
    int o = opts_index(L, 1), ndim;
    int64_t shape[USG_MAX_DIMS];
    if (o) usg_lua_check_opts(L, o, "randn", known);
    usg_dtype dt = opt_dtype(L, o, "randn", USG_F32);
    double mean = opt_number(L, o, "randn", "mean", 0), std = opt_number(L, o, "randn", "std", 1);
    if (o) lua_settop(L, o - 1);
    shape_args(L, 1, lua_gettop(L), &ndim, shape);
    usg_tensor *out;
    USG_LUA_TRY(L, usg_randn(&out, usg_lua_rng(L), dt, ndim, shape, mean, std));
    usg_lua_pushtensor(L, out);
    return 1;
}

/* t:uniform_([lo = 0 [, hi = 1]]) -> t */
static int l_uniform_(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
    USG_LUA_TRY(L, usg_uniform_(t, usg_lua_rng(L), lo, hi));
    lua_pushvalue(L, 1);
    return 1;
}

/* t:normal_([mean = 0 [, std = 1]]) -> t */
static int l_normal_(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    double mean = luaL_optnumber(L, 2, 0), std = luaL_optnumber(L, 3, 1);
    USG_LUA_TRY(L, usg_normal_(t, usg_lua_rng(L), mean, std));
    lua_pushvalue(L, 1);
    return 1;
}

/* bernoulli(p_tensor) or bernoulli(p, shape... [, {dtype = 'f32'}]) */
static int l_bernoulli(lua_State *L)
{
    usg_tensor *p = usg_lua_totensor(L, 1), *out;
    if (p) {
        USG_LUA_TRY(L, usg_bernoulli(&out, usg_lua_rng(L), p));
        usg_lua_pushtensor(L, out);
        return 1;
    }
    static const char *const known[] = {"dtype", NULL};
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_argerror(L, 1, "usagi.Tensor or number expected");
    double prob = lua_tonumber(L, 1);
    int o = opts_index(L, 2), ndim;
    int64_t shape[USG_MAX_DIMS];
    if (o) usg_lua_check_opts(L, o, "bernoulli", known);
    usg_dtype dt = opt_dtype(L, o, "bernoulli", USG_F32);
    if (o) lua_settop(L, o - 1);
    shape_args(L, 2, lua_gettop(L), &ndim, shape);
    USG_LUA_TRY(L, usg_bernoulli_p(&out, usg_lua_rng(L), dt, ndim, shape, prob));
    usg_lua_pushtensor(L, out);
    return 1;
}

/* multinomial(weights, n [, replacement = false]) -> 1-based i32 indices,
 * (n) from (C) weights, (R, n) from (R, C). */
static int l_multinomial(lua_State *L)
{
    usg_tensor *w = usg_lua_checktensor(L, 1), *out;
    lua_Integer n = luaL_checkinteger(L, 2);
    bool replacement = opt_boolean(L, 3, false);
    USG_LUA_TRY(L, usg_multinomial(&out, usg_lua_rng(L), w, (int64_t)n, replacement, 1));
    usg_lua_pushtensor(L, out);
    return 1;
}

/* randperm(n) -> a permutation of 1..n (i32). */
static int l_randperm(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    usg_tensor *out;
    USG_LUA_TRY(L, usg_randperm(&out, usg_lua_rng(L), (int64_t)n, 1));
    usg_lua_pushtensor(L, out);
    return 1;
}

/* dropout(x, p [, train = true]) -> out, mask. Training: out = x m / (1 - p)
 * with the 0/1 mask m. Evaluation: a copy of x (never x itself, so writing
 * to out cannot change x) and no mask; nothing drawn. Both go through
 * usg_ad_dropout, so when x requires grad, out is recorded (evaluation is
 * then a recorded identity). The mask returned is the one the node keeps
 * for its backward (its first saved tensor; see ad_nn.c); writing into it in
 * place makes that backward refuse to run. */
static int l_dropout(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1), *out, *mask = NULL;
    double p = luaL_checknumber(L, 2);
    if (!opt_boolean(L, 3, true)) {
        if (!(p >= 0 && p < 1)) {   /* the same check as training, so a bad p never hides */
            usg_fail(USG_ARG, "dropout: p must be in [0, 1), got %g", p);
            return usg_lua_error(L);
        }
        USG_LUA_TRY(L, usg_ad_dropout(&out, usg_lua_rng(L), x, 0));
        usg_lua_pushtensor(L, out);
        lua_pushnil(L);
        return 2;
    }
    if (usg_grad_needed(1, &x)) {
        USG_LUA_TRY(L, usg_ad_dropout(&out, usg_lua_rng(L), x, p));
        usg_lua_pushtensor(L, out);                         /* [.., out] */
        mask = usg_node_saved(out->grad_fn, 0);
        usg_tensor_retain(mask);
    } else {
        /* the same draws as usg_ad_dropout; without a node, ask for the mask */
        USG_LUA_TRY(L, usg_dropout(&out, &mask, usg_lua_rng(L), x, p));
        usg_lua_pushtensor(L, out);                         /* [.., out] */
    }
    usg_lua_pushtensor(L, mask);                            /* [.., out, mask] */
    return 2;
}

/* ==== Registration ====================================================== */

static const luaL_Reg module_fns[] = {
    {"manual_seed", l_manual_seed}, {"initial_seed", l_initial_seed},
    {"get_rng_state", l_get_rng_state}, {"set_rng_state", l_set_rng_state},
    {"rand", l_rand}, {"randn", l_randn}, {"randperm", l_randperm},
    {NULL, NULL},
};

/* Both usagi.f(t, ...) and t:f(...). */
static const luaL_Reg tensor_fns[] = {
    {"uniform_", l_uniform_}, {"normal_", l_normal_}, {"bernoulli", l_bernoulli},
    {"multinomial", l_multinomial}, {"dropout", l_dropout},
    {NULL, NULL},
};

/* [usagi] -> [usagi] */
int usg_lua_open_random(lua_State *L)
{
    usg_lua_register(L, module_fns, 1, 0);
    usg_lua_register(L, tensor_fns, 1, 1);
    return 0;
}

/*
 * random_lua.c -- the run's generator: the state every random op draws
 * from (the ops themselves, rand, randn, bernoulli, dropout and the rest,
 * are declared in host/ops/random.lua).
 *
 * One generator per Lua state, kept in the registry and made on first use
 * with seed 0, stream 0, so that a script that never seeds is still
 * reproducible. usagi.manual_seed(seed [, stream]) restarts it;
 * get_rng_state / set_rng_state move its eleven words in and out of a Lua
 * table (a checkpoint stores them). These four stay written by hand: they
 * read and write the generator, not tensors, so an op table has nothing to
 * declare for them. Plugins and the generated ops reach the same generator
 * through usg_lua_rng(). No math here.
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

/* ==== Options ========================================================== */

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

/* ==== Dropout ========================================================== */

/* The call of dropout (host/ops/random.lua). Training: out = x m / (1 - p)
 * with the 0/1 mask m. Evaluation: a copy of x (never x itself, so writing
 * to out cannot change x) and no mask; nothing drawn. Both go through
 * usg_ad_dropout, so when x requires grad, out is recorded (evaluation is
 * then a recorded identity). The mask given back is the one the node keeps
 * for its backward (its first saved tensor; see ad_nn.c); writing into it
 * in place makes that backward refuse to run. */
usg_status usg_lua_dropout(usg_tensor **out, usg_tensor **mask, usg_rng *rng, usg_tensor *x,
                           double p, bool training)
{
    usg_status s;
    *mask = NULL;
    if (!training) {
        if (!(p >= 0 && p < 1))   /* the same check as training, so a bad p never hides */
            return usg_fail(USG_ARG, "dropout: p must be in [0, 1), got %g", p);
        return usg_ad_dropout(out, rng, x, 0);
    }
    if (!usg_grad_needed(1, &x))   /* the same draws as usg_ad_dropout; without a node, ask */
        return usg_dropout(out, mask, rng, x, p);
    if ((s = usg_ad_dropout(out, rng, x, p)) != USG_OK) return s;
    *mask = usg_node_saved((*out)->grad_fn, 0);
    usg_tensor_retain(*mask);
    return USG_OK;
}

/* ==== Registration ====================================================== */

static const luaL_Reg module_fns[] = {
    {"manual_seed", l_manual_seed}, {"initial_seed", l_initial_seed},
    {"get_rng_state", l_get_rng_state}, {"set_rng_state", l_set_rng_state},
    {NULL, NULL},
};

/* [usagi] -> [usagi] */
int usg_lua_open_random(lua_State *L)
{
    usg_lua_register(L, module_fns, 1, 0);
    return 0;
}

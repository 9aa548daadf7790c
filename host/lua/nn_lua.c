/*
 * nn_lua.c -- the Lua face of host/core/nn.c and index.c: linear, softmax,
 * the losses, embedding, gather / index_select / scatter_add, one_hot, cat,
 * stack, split and chunk.
 *
 * Ids, targets and indices are 1-based here (base = 1 to the core, no
 * copy), dims too. The losses take an options table
 * {reduction = 'mean' | 'sum' | 'none', ignore_index = id, mask = tensor}
 * and return 0-dim tensors, not numbers, since autograd attaches to them.
 * Unknown options are errors, so a typo is never silently ignored. The ops
 * on one tensor are also Tensor methods (t:softmax(2), t:split(3)). No math.
 *
 * The differentiable ops call their usg_ad_* forms (ad_nn.c, ad_index.c),
 * which record a node when an input requires grad. one_hot and the
 * scatter_adds are not differentiable; scatter_add_ refuses to write into a
 * tensor that requires grad.
 */
#include <limits.h>
#include <string.h>

#include "binding.h"
#include "usagi/ops.h"
#include "usagi/autograd.h"

/* ==== Options =========================================================== */

typedef struct loss_opts {
    usg_reduction red;
    int32_t ignore;        /* USG_NO_IGNORE when not given */
    usg_tensor *mask;      /* borrowed from the options table, or NULL */
} loss_opts;

static usg_reduction check_reduction(lua_State *L, int idx)
{
    static const char *const names[] = {"mean", "sum", "none", NULL};
    if (lua_type(L, -1) == LUA_TSTRING)
        for (int i = 0; names[i]; i++)
            if (strcmp(lua_tostring(L, -1), names[i]) == 0) return (usg_reduction)i;
    luaL_argerror(L, idx, lua_pushfstring(L, "reduction must be 'mean', 'sum' or 'none', "
                  "got %s", luaL_tolstring(L, -1, NULL)));
    return USG_REDUCE_MEAN;
}

/* The options table at idx (none or nil: the defaults). ignore_index and
 * mask are for the class losses only. */
static loss_opts check_opts(lua_State *L, int idx, int class_loss)
{
    loss_opts o = {USG_REDUCE_MEAN, USG_NO_IGNORE, NULL};
    if (lua_isnoneornil(L, idx)) return o;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);                                      /* [nil] */
    while (lua_next(L, idx)) {                           /* [key, value] */
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(k, "reduction") == 0) {
            o.red = check_reduction(L, idx);
        } else if (class_loss && strcmp(k, "ignore_index") == 0) {
            int isint;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (!isint || v <= INT32_MIN || v > INT32_MAX)
                luaL_argerror(L, idx, "ignore_index must be an integer id");
            o.ignore = (int32_t)v;
        } else if (class_loss && strcmp(k, "mask") == 0) {
            if (!(o.mask = usg_lua_totensor(L, -1)))
                luaL_argerror(L, idx, "mask must be a tensor");
        } else {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' (expected %s)",
                          luaL_tolstring(L, -2, NULL), class_loss ?
                          "reduction, ignore_index or mask" : "reduction"));
        }
        lua_pop(L, 1);                                   /* [key] */
    }
    return o;
}

/* ==== linear, softmax =================================================== */

/* linear(x, w [, b]): x w^T + b */
static int l_linear(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1), *w = usg_lua_checktensor(L, 2), *out;
    usg_tensor *b = lua_isnoneornil(L, 3) ? NULL : usg_lua_checktensor(L, 3);
    USG_LUA_TRY(L, usg_ad_linear(&out, x, w, b));
    usg_lua_pushtensor(L, out);
    return 1;
}

typedef usg_status (*softmax_fn)(usg_tensor **, usg_tensor *, int);

/* f(x [, dim]): the dim defaults to the last, as Torch7's nn.SoftMax. */
static int softmax_like(lua_State *L, softmax_fn fn)
{
    usg_tensor *x = usg_lua_checktensor(L, 1), *out;
    int dim = lua_isnoneornil(L, 2) ? -1 : usg_lua_checkdim(L, 2, x->ndim ? x->ndim : 1, 0);
    USG_LUA_TRY(L, fn(&out, x, dim));
    usg_lua_pushtensor(L, out);
    return 1;
}

static int l_softmax(lua_State *L) { return softmax_like(L, usg_ad_softmax); }
static int l_log_softmax(lua_State *L) { return softmax_like(L, usg_ad_log_softmax); }

/* ==== Losses ============================================================ */

typedef usg_status (*class_loss_fn)(usg_tensor **, usg_tensor *, usg_tensor *, usg_tensor *,
                                    int32_t, usg_reduction, int);

/* f(scores, target [, opts]) */
static int class_loss(lua_State *L, class_loss_fn fn)
{
    usg_tensor *x = usg_lua_checktensor(L, 1), *target = usg_lua_checktensor(L, 2), *out;
    loss_opts o = check_opts(L, 3, 1);
    USG_LUA_TRY(L, fn(&out, x, target, o.mask, o.ignore, o.red, 1));
    usg_lua_pushtensor(L, out);
    return 1;
}

static int l_nll_loss(lua_State *L) { return class_loss(L, usg_ad_nll_loss); }
static int l_cross_entropy(lua_State *L) { return class_loss(L, usg_ad_cross_entropy); }

typedef usg_status (*point_loss_fn)(usg_tensor **, usg_tensor *, usg_tensor *, usg_reduction);

/* f(prediction, target [, opts]) */
static int point_loss(lua_State *L, point_loss_fn fn)
{
    usg_tensor *a = usg_lua_checktensor(L, 1), *b = usg_lua_checktensor(L, 2), *out;
    loss_opts o = check_opts(L, 3, 0);
    USG_LUA_TRY(L, fn(&out, a, b, o.red));
    usg_lua_pushtensor(L, out);
    return 1;
}

static int l_mse_loss(lua_State *L) { return point_loss(L, usg_ad_mse_loss); }
static int l_bce_loss(lua_State *L) { return point_loss(L, usg_ad_bce_loss); }
static int l_bce_with_logits(lua_State *L) { return point_loss(L, usg_ad_bce_with_logits); }

/* ==== Index ops ========================================================= */

/* embedding(weight, ids) */
static int l_embedding(lua_State *L)
{
    usg_tensor *w = usg_lua_checktensor(L, 1), *ids = usg_lua_checktensor(L, 2), *out;
    USG_LUA_TRY(L, usg_ad_embedding(&out, w, ids, 1));
    usg_lua_pushtensor(L, out);
    return 1;
}

/* one_hot(ids, classes) -> f32 */
static int l_one_hot(lua_State *L)
{
    usg_tensor *ids = usg_lua_checktensor(L, 1), *out;
    lua_Integer classes = luaL_checkinteger(L, 2);
    USG_LUA_TRY(L, usg_one_hot(&out, ids, classes, 1));
    usg_lua_pushtensor(L, out);
    return 1;
}

typedef usg_status (*select_fn)(usg_tensor **, usg_tensor *, int, usg_tensor *, int);

/* f(x, dim, index) */
static int select_like(lua_State *L, select_fn fn)
{
    usg_tensor *x = usg_lua_checktensor(L, 1), *out;
    int dim = usg_lua_checkdim(L, 2, x->ndim, 0);
    usg_tensor *index = usg_lua_checktensor(L, 3);
    USG_LUA_TRY(L, fn(&out, x, dim, index, 1));
    usg_lua_pushtensor(L, out);
    return 1;
}

static int l_gather(lua_State *L) { return select_like(L, usg_ad_gather); }
static int l_index_select(lua_State *L) { return select_like(L, usg_ad_index_select); }

/* t:scatter_add_(dim, index, src) -> t, in place */
static int l_scatter_add_(lua_State *L)
{
    usg_tensor *dst = usg_lua_checktensor(L, 1);
    int dim = usg_lua_checkdim(L, 2, dst->ndim, 0);
    usg_tensor *index = usg_lua_checktensor(L, 3), *src = usg_lua_checktensor(L, 4);
    USG_LUA_TRY(L, usg_check_inplace(dst, "scatter_add_"));
    USG_LUA_TRY(L, usg_scatter_add_(dst, dim, index, src, 1));
    lua_settop(L, 1);
    return 1;
}

/* scatter_add(dst, dim, index, src) -> a new tensor, dst unchanged */
static int l_scatter_add(lua_State *L)
{
    usg_tensor *dst = usg_lua_checktensor(L, 1), *out;
    int dim = usg_lua_checkdim(L, 2, dst->ndim, 0);
    usg_tensor *index = usg_lua_checktensor(L, 3), *src = usg_lua_checktensor(L, 4);
    USG_LUA_TRY(L, usg_clone(&out, dst));
    usg_lua_pushtensor(L, out);              /* [..., out]: Lua owns it before we can fail */
    USG_LUA_TRY(L, usg_scatter_add_(out, dim, index, src, 1));
    return 1;
}

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

static const luaL_Reg module_fns[] = {
    {"linear", l_linear}, {"nll_loss", l_nll_loss}, {"cross_entropy", l_cross_entropy},
    {"mse_loss", l_mse_loss}, {"bce_loss", l_bce_loss}, {"bce_with_logits", l_bce_with_logits},
    {"embedding", l_embedding}, {"cat", l_cat}, {"stack", l_stack}, {NULL, NULL}};

static const luaL_Reg both_fns[] = {
    {"softmax", l_softmax}, {"log_softmax", l_log_softmax}, {"gather", l_gather},
    {"index_select", l_index_select}, {"scatter_add", l_scatter_add},
    {"scatter_add_", l_scatter_add_}, {"split", l_split}, {"chunk", l_chunk},
    {"one_hot", l_one_hot}, {NULL, NULL}};

int usg_lua_open_nn(lua_State *L)
{
    usg_lua_register(L, module_fns, 1, 0);
    usg_lua_register(L, both_fns, 1, 1);
    return 0;
}

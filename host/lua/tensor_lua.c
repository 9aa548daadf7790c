/*
 * tensor_lua.c -- the Tensor userdata and the `usagi` module: tensors from
 * nested tables and from bytes, 1-based indexing and slicing, the queries
 * (size, stride, item, totable), and the shared refcount with the Lua GC.
 *
 * What is written by hand here is what no op table can declare: a value of
 * any nesting (usagi.tensor{{1, 2}, {3, 4}}), an index that is a number, a
 * range or a list of them (__index, __newindex), the answers that are Lua
 * values rather than tensors, and the userdata itself. Every other op, the
 * constructors, views and fills included, is declared in the op tables of host/ops.
 *
 * A Tensor is a full userdata holding one usg_tensor* reference; __gc and
 * __close give it back. The Lua GC cannot see C memory, so pushes count the
 * bytes usagi holds and run a collection whenever they pass twice what was
 * live after the last one: a training loop stays at flat memory without
 * collectgarbage() in user code.
 *
 * Indexing calls the usg_ad_* forms (host/core/ad_view.c), so t[i] carries
 * gradients; index assignment refuses a tensor that requires grad, except
 * inside usagi.no_grad.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "binding.h"
#include "usagi/autograd.h"

/* ==== Userdata ========================================================== */

usg_tensor *usg_lua_totensor(lua_State *L, int idx)
{
    usg_tensor **p = luaL_testudata(L, idx, USG_TENSOR_MT);
    return p ? *p : NULL;
}

usg_tensor *usg_lua_checktensor(lua_State *L, int idx)
{
    usg_tensor **p = luaL_testudata(L, idx, USG_TENSOR_MT);
    if (!p || !*p) {
        if (!p) luaL_typeerror(L, idx, USG_TENSOR_MT);
        luaL_argerror(L, idx, "tensor already closed");
    }
    return *p;
}

/* A number at idx becomes a 0-dim tensor (i32 for an integer that fits,
 * else f32) that replaces the number in its stack slot, so Lua owns it and
 * an error raised later by the caller cannot leak it; *owned is always NULL
 * (kept for the callers' release). */
usg_tensor *usg_lua_checktensor_or_number(lua_State *L, int idx, usg_tensor **owned)
{
    *owned = NULL;
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TNUMBER) {
        usg_tensor *t;
        double v = lua_tonumber(L, idx);
        lua_Integer i = lua_tointeger(L, idx);
        int small = lua_isinteger(L, idx) && i >= INT32_MIN && i <= INT32_MAX;
        USG_LUA_TRY(L, usg_tensor_from_doubles(&t, small ? USG_I32 : USG_F32, 0, NULL, &v));
        usg_lua_pushtensor(L, t);                      /* [..., t] */
        lua_replace(L, idx);
        return t;
    }
    return usg_lua_checktensor(L, idx);
}

/* The GC sees an 8-byte handle per tensor, not the megabytes behind it, so
 * the binding steps it by the C bytes: every GC_STEP_BYTES of growth since
 * the last step runs one step of the (generational) collector, a minor
 * collection that frees the temporaries of the last few ops while their
 * memory is still warm in malloc's cache; a full collection runs when
 * what stays live doubles. Training loops run at flat memory with no
 * collectgarbage() in user code (tests/lua/gc_spec.lua). */
#define GC_STEP_BYTES ((size_t)16 << 20)
#define GC_FULL_MIN ((size_t)64 << 20)
static size_t gc_mark, gc_full = GC_FULL_MIN;

void usg_lua_pushtensor(lua_State *L, usg_tensor *t)
{
    size_t live = usg_alloc_live_bytes();
    if (live > gc_full) {
        lua_gc(L, LUA_GCCOLLECT);
        live = usg_alloc_live_bytes();
        gc_full = 2 * live > GC_FULL_MIN ? 2 * live : GC_FULL_MIN;
        gc_mark = live;
    } else if (live > gc_mark + GC_STEP_BYTES) {
        lua_gc(L, LUA_GCSTEP, 0);
        gc_mark = usg_alloc_live_bytes();
    } else if (live < gc_mark) {
        gc_mark = live;
    }
    usg_tensor **p = lua_newuserdatauv(L, sizeof *p, 0);       /* [ud] */
    *p = t;
    luaL_setmetatable(L, USG_TENSOR_MT);
}

int usg_lua_error(lua_State *L) { return luaL_error(L, "%s", usg_errmsg()); }

/* Raise the core's message as fn's own: a creation helper says
 * "full: shape (...) is too large", which from usagi.zeros should read
 * "zeros: shape (...) is too large". The leading "name: " of the message is
 * replaced (any name: the core's helpers have their own). */
int usg_lua_error_as(lua_State *L, const char *fn)
{
    const char *m = usg_errmsg(), *p = m;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_') p++;
    if (p > m && p[0] == ':' && p[1] == ' ') m = p + 2;
    return luaL_error(L, "%s: %s", fn, m);
}
#define TRY_AS(L, fn, call) \
    do { if ((call) != USG_OK) usg_lua_error_as(L, fn); } while (0)

static int l_tensor_gc(lua_State *L)
{
    usg_tensor **p = luaL_checkudata(L, 1, USG_TENSOR_MT);
    usg_tensor_release(*p);
    *p = NULL;
    return 0;
}

/* ==== Argument helpers ================================================== */

int usg_lua_checkdim(lua_State *L, int idx, int ndim, int ndim_plus)
{
    lua_Integer d = luaL_checkinteger(L, idx);
    int n = ndim + ndim_plus;
    if (d == 0 || d > n || d < -n)
        return luaL_argerror(L, idx, lua_pushfstring(L, "dim %I out of range for a %d-D tensor "
                             "(dims are 1..%d, or negative from the end)", d, ndim, n));
    return d > 0 ? (int)d - 1 : (int)(d + n);
}

int usg_lua_optdim(lua_State *L, int idx, int ndim)
{
    return lua_isnoneornil(L, idx) ? USG_ALL_DIMS : usg_lua_checkdim(L, idx, ndim, 0);
}

static int64_t checksize(lua_State *L, int arg, int isnum, lua_Number v)
{
    if (!isnum || v != floor(v) || v < 0 || v > 9.2e18)
        luaL_argerror(L, arg, "sizes must be non-negative integers");
    return (int64_t)v;
}

int usg_lua_checkshape(lua_State *L, int idx, int *ndim, int64_t *shape)
{
    *ndim = 0;
    if (lua_istable(L, idx)) {
        lua_Integer n = luaL_len(L, idx);
        if (n > USG_MAX_DIMS)
            luaL_argerror(L, idx, lua_pushfstring(L, "at most %d dims, got %d", USG_MAX_DIMS, (int)n));
        for (lua_Integer i = 1; i <= n; i++) {
            int isnum;
            lua_geti(L, idx, i);
            lua_Number v = lua_tonumberx(L, -1, &isnum);
            shape[i - 1] = checksize(L, idx, isnum, v);
            lua_pop(L, 1);
        }
        *ndim = (int)n;
        return 1;
    }
    int k = idx;
    while (lua_type(L, k) == LUA_TNUMBER) {
        if (*ndim == USG_MAX_DIMS)
            luaL_argerror(L, k, lua_pushfstring(L, "at most %d dims", USG_MAX_DIMS));
        shape[(*ndim)++] = checksize(L, k, 1, lua_tonumber(L, k));
        k++;
    }
    return k - idx;
}

usg_dtype usg_lua_optdtype(lua_State *L, int idx, usg_dtype def)
{
    if (lua_isnoneornil(L, idx)) return def;
    const char *name = luaL_checkstring(L, idx);
    usg_dtype dt;
    if (!usg_dtype_parse(name, &dt))
        luaL_argerror(L, idx, lua_pushfstring(L, "dtype must be 'f32', 'f64' or 'i32', got '%s'", name));
    return dt;
}

/* The dtype in an options table at idx ({dtype = 'f64'}), or def. */
static usg_dtype opt_dtype_field(lua_State *L, int idx, usg_dtype def)
{
    if (lua_type(L, idx) == LUA_TSTRING) return usg_lua_optdtype(L, idx, def);
    if (!lua_istable(L, idx)) return def;
    lua_getfield(L, idx, "dtype");
    usg_dtype dt = usg_lua_optdtype(L, lua_gettop(L), def);
    lua_pop(L, 1);
    return dt;
}

static int l_size_tostring(lua_State *L)
{
    char buf[256];
    int64_t shape[USG_MAX_DIMS];
    lua_Integer len = luaL_len(L, 1);
    int n = len < 0 ? 0 : len > USG_MAX_DIMS ? USG_MAX_DIMS : (int)len;   /* a user may grow it */
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        shape[i] = (int64_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pushstring(L, usg_shape_str(buf, sizeof buf, n, shape));
    return 1;
}

static int l_size_eq(lua_State *L)
{
    lua_Integer n = luaL_len(L, 1);
    int eq = n == luaL_len(L, 2);
    for (lua_Integer i = 1; eq && i <= n; i++) {
        lua_geti(L, 1, i);
        lua_geti(L, 2, i);
        eq = lua_compare(L, -1, -2, LUA_OPEQ);
        lua_pop(L, 2);
    }
    lua_pushboolean(L, eq);
    return 1;
}

void usg_lua_pushsize(lua_State *L, int ndim, const int64_t *shape)
{
    lua_createtable(L, ndim, 0);
    for (int d = 0; d < ndim; d++) {
        lua_pushinteger(L, shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
    if (luaL_newmetatable(L, "usagi.Size")) {
        lua_pushcfunction(L, l_size_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, l_size_eq);
        lua_setfield(L, -2, "__eq");
    }
    lua_setmetatable(L, -2);
}

void usg_lua_pushelem(lua_State *L, usg_dtype dt, double v)
{
    if (dt == USG_I32) lua_pushinteger(L, (lua_Integer)v);
    else lua_pushnumber(L, v);
}

/* ==== Creation ========================================================== */

/* Walk a nested table once to find its shape, checking it is rectangular. */
static void table_shape(lua_State *L, int idx, int depth, int *ndim, int64_t *shape)
{
    lua_Integer n = luaL_len(L, idx);
    if (depth >= USG_MAX_DIMS) luaL_error(L, "tensor: nesting deeper than %d", USG_MAX_DIMS);
    if (depth == *ndim) { shape[depth] = n; (*ndim)++; }
    else if (shape[depth] != n)
        luaL_error(L, "tensor: ragged nested table (a row of %d where %d was expected at depth %d)",
                   (int)n, (int)shape[depth], depth + 1);
    if (n == 0) return;
    lua_geti(L, idx, 1);
    int first_is_table = lua_istable(L, -1);
    lua_pop(L, 1);
    if (first_is_table) {
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, idx, i) != LUA_TTABLE)
                luaL_error(L, "tensor: element %d at depth %d is a %s, expected a table",
                           (int)i, depth + 1, luaL_typename(L, -1));
            table_shape(L, lua_gettop(L), depth + 1, ndim, shape);
            lua_pop(L, 1);
        }
    } else if (depth + 1 != *ndim) {
        luaL_error(L, "tensor: ragged nested table (numbers at depth %d)", depth + 1);
    }
}

/* Fill t from the nested table at idx, walking the shape table_shape found
 * (not the table's length again) and checking each entry's type, so that
 * {1, {2, 3}} is an error and never writes past the tensor. */
static void table_fill(lua_State *L, int idx, usg_tensor *t, int depth, int64_t *pos)
{
    int last = depth == t->ndim - 1;
    for (int64_t i = 1; i <= t->shape[depth]; i++) {
        int ty = lua_geti(L, idx, (lua_Integer)i);
        if (!last && ty == LUA_TTABLE && luaL_len(L, -1) == t->shape[depth + 1])
            table_fill(L, lua_gettop(L), t, depth + 1, pos);
        else if (last && ty == LUA_TNUMBER && t->dtype == USG_I32 && !usg_fits_i32(lua_tonumber(L, -1)))
            luaL_error(L, "tensor: the value %s (at depth %d) does not fit in i32 (-2147483648 .. "
                       "2147483647); compute in f64 instead (usagi has no int64)",
                       luaL_tolstring(L, -1, NULL), depth + 1);
        else if (last && ty == LUA_TNUMBER)
            usg_store(t->dtype, t->storage->data, (*pos)++, lua_tonumber(L, -1));
        else
            luaL_error(L, "tensor: ragged nested table (a %s at depth %d where %s was expected)",
                       luaL_typename(L, -1), depth + 1, last ? "a number" : "a row");
        lua_pop(L, 1);
    }
}

/* usagi.tensor({{1,2},{3,4}} [, {dtype=}]) or usagi.tensor(2, 3): a copy of
 * a nested table, or (Torch7's torch.Tensor(2, 3)) zeros of that shape. */
static int l_tensor(lua_State *L)
{
    int ndim = 0;
    int64_t shape[USG_MAX_DIMS];
    usg_tensor *t;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        int used = usg_lua_checkshape(L, 1, &ndim, shape);
        TRY_AS(L, "tensor", usg_tensor_zeros(&t, opt_dtype_field(L, 1 + used, USG_F32), ndim, shape));
    } else if (usg_lua_totensor(L, 1)) {
        USG_LUA_TRY(L, usg_to_dtype(&t, usg_lua_totensor(L, 1),
                                    opt_dtype_field(L, 2, usg_lua_totensor(L, 1)->dtype)));
        if (t == usg_lua_totensor(L, 1)) { usg_tensor *c; usg_status s = usg_clone(&c, t);
            usg_tensor_release(t); USG_LUA_TRY(L, s); t = c; }
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        table_shape(L, 1, 0, &ndim, shape);
        TRY_AS(L, "tensor", usg_tensor_empty(&t, opt_dtype_field(L, 2, USG_F32), ndim, shape));
        int64_t pos = 0;
        usg_lua_pushtensor(L, t);                 /* owned by Lua before anything can throw */
        if (ndim > 0) table_fill(L, 1, t, 0, &pos);
        return 1;
    }
    usg_lua_pushtensor(L, t);
    return 1;
}

/* frombytes(s, shape [, {offset = 0, dtype = 'f32', scale = 1}]) -- the
 * bytes of string s from byte `offset` on, each an unsigned 8-bit value,
 * times scale, as a tensor of the shape: how IDX files (MNIST) and other
 * raw byte images become tensors without a Lua loop per byte. */
static int l_frombytes(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    int used = usg_lua_checkshape(L, 2, &ndim, shape);
    int o = 2 + used;
    lua_Integer offset = 0;
    double scale = 1;
    usg_dtype dt = USG_F32;
    if (!lua_isnoneornil(L, o)) {
        static const char *const known[] = {"offset", "dtype", "scale", NULL};
        luaL_checktype(L, o, LUA_TTABLE);
        usg_lua_check_opts(L, o, "frombytes", known);
        if (lua_getfield(L, o, "offset") != LUA_TNIL) {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
                return luaL_error(L, "frombytes: offset must be an integer >= 0, got %s",
                                  luaL_tolstring(L, -1, NULL));
            offset = lua_tointeger(L, -1);
        }
        if (lua_getfield(L, o, "scale") != LUA_TNIL) {
            if (!lua_isnumber(L, -1))
                return luaL_error(L, "frombytes: scale must be a number, got %s", luaL_typename(L, -1));
            scale = lua_tonumber(L, -1);
        }
        lua_pop(L, 2);
        dt = opt_dtype_field(L, o, USG_F32);
    }
    /* the bytes the shape needs, each product checked against what the
     * string has from offset, so it cannot overflow */
    int64_t n = 1, have = (uint64_t)offset > len ? -1 : (int64_t)(len - (size_t)offset);
    for (int d = 0; d < ndim; d++) n = shape[d] == 0 ? 0 : n;
    for (int d = 0; d < ndim && n > 0 && have >= 0; d++)
        n = n > have / shape[d] ? have + 1 : n * shape[d];
    if (have < 0 || n > have)
        return luaL_error(L, "frombytes: the shape needs more bytes from offset %I than the string's %I",
                          offset, (lua_Integer)len);
    usg_tensor *t;
    TRY_AS(L, "frombytes", usg_tensor_from_bytes(&t, dt, ndim, shape,
                                                 (const unsigned char *)s + offset, scale));
    usg_lua_pushtensor(L, t);
    return 1;
}

/* ==== Queries =========================================================== */

static int l_size(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) { usg_lua_pushsize(L, t->ndim, t->shape); return 1; }
    lua_pushinteger(L, t->shape[usg_lua_checkdim(L, 2, t->ndim, 0)]);
    return 1;
}

static int l_stride(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, t->stride[usg_lua_checkdim(L, 2, t->ndim, 0)]);
        return 1;
    }
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) { lua_pushinteger(L, t->stride[d]); lua_rawseti(L, -2, d + 1); }
    return 1;
}

static int l_dim(lua_State *L) { lua_pushinteger(L, usg_lua_checktensor(L, 1)->ndim); return 1; }
static int l_numel(lua_State *L) { lua_pushinteger(L, usg_tensor_numel(usg_lua_checktensor(L, 1))); return 1; }
static int l_dtype(lua_State *L) { lua_pushstring(L, usg_dtype_name(usg_lua_checktensor(L, 1)->dtype)); return 1; }
static int l_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, usg_tensor_is_contiguous(usg_lua_checktensor(L, 1)));
    return 1;
}
/* usagi.memory() -> bytes held by usagi allocations now (all tensors,
 * whether Lua still sees them or not): for leak and flat-memory checks. */
static int l_memory(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)usg_alloc_live_bytes());
    return 1;
}

/* usagi.alloc_limit([bytes]) -> the cap on one allocation (before the
 * change, when bytes is given; 0 restores the default of 1 TiB). */
static int l_alloc_limit(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        size_t cur = usg_set_alloc_limit(0);
        usg_set_alloc_limit(cur);
        lua_pushinteger(L, (lua_Integer)cur);
        return 1;
    }
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "the limit must be >= 0 bytes");
    lua_pushinteger(L, (lua_Integer)usg_set_alloc_limit((size_t)n));
    return 1;
}

static int l_is_tensor(lua_State *L) { lua_pushboolean(L, usg_lua_totensor(L, 1) != NULL); return 1; }

/* Torch7's #t: the size, as a usagi.Size. */
static int l_len(lua_State *L) { lua_settop(L, 1); return l_size(L); }   /* __len gets (t, t) */

static int l_item(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (usg_tensor_numel(t) != 1) {
        char b[256];
        return luaL_error(L, "item: the tensor must have exactly one element, it is %s",
                          usg_shape_str(b, sizeof b, t->ndim, t->shape));
    }
    usg_lua_pushelem(L, t->dtype, usg_tensor_get_flat(t, 0));
    return 1;
}

static void push_table(lua_State *L, const usg_tensor *t, int d, int64_t off)
{
    luaL_checkstack(L, 4, "totable");
    if (t->ndim == 0) { usg_lua_pushelem(L, t->dtype, usg_load(t->dtype, t->storage->data, off)); return; }
    lua_createtable(L, (int)t->shape[d], 0);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        int64_t o = off + i * t->stride[d];
        if (d == t->ndim - 1) usg_lua_pushelem(L, t->dtype, usg_load(t->dtype, t->storage->data, o));
        else push_table(L, t, d + 1, o);
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_totable(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    int64_t n = usg_tensor_numel(t);
    if (n < 0 || n > INT_MAX) {       /* an expanded view can be that big; a Lua table cannot */
        char b[256];
        return luaL_error(L, "totable: a tensor of shape %s has too many elements for a Lua table",
                          usg_shape_str(b, sizeof b, t->ndim, t->shape));
    }
    push_table(L, t, 0, t->offset);
    return 1;
}

/* ==== Indexing ========================================================== */

/* Entry k of the {first, last} range at arg, which must be an integer;
 * releases *t before raising. */
static lua_Integer range_end(lua_State *L, int arg, int k, usg_tensor **t, int user_dim)
{
    int isint;
    lua_geti(L, arg, k);
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint) {
        usg_tensor_release(*t);
        luaL_error(L, "index: a range's ends must be integers, got %s at {...}[%d] for dim %d",
                   luaL_tolstring(L, -1, NULL), k, user_dim);
    }
    lua_pop(L, 1);
    return v;
}

/* Apply one index entry to dim d of *t (a view we own):
 * a number selects (dim goes away), {a, b} narrows to a..b inclusive, {a}
 * narrows to a..a, {} keeps the dim. Negative numbers count from the end.
 * Returns the next dim to index. */
static int index_one(lua_State *L, usg_tensor **t, int d, int arg, int user_dim)
{
    usg_tensor *r = NULL;
    usg_status s;
    if (d >= (*t)->ndim) {
        usg_tensor_release(*t);
        luaL_error(L, "index: too many indices for a %d-D tensor", d);
    }
    int64_t size = (*t)->shape[d];
    if (lua_type(L, arg) == LUA_TNUMBER) {
        int isint;
        lua_Integer i = lua_tointegerx(L, arg, &isint);
        if (!isint) {
            usg_tensor_release(*t);
            luaL_error(L, "index: an index must be an integer, got %s for dim %d",
                       luaL_tolstring(L, arg, NULL), user_dim);
        }
        if (i < 0) i += size + 1;
        if (i < 1 || i > size) {
            usg_tensor_release(*t);
            luaL_error(L, "index: %s is out of range for dim %d of size %I",
                       luaL_tolstring(L, arg, NULL), user_dim, (lua_Integer)size);
        }
        s = usg_ad_select(&r, *t, d, i - 1);
        d--;
    } else if (lua_istable(L, arg)) {
        lua_Integer n = luaL_len(L, arg), a = 1, b = size;
        if (n >= 1) { a = range_end(L, arg, 1, t, user_dim); b = a; }
        if (n >= 2) b = range_end(L, arg, 2, t, user_dim);
        if (a < 0) a += size + 1;
        if (b < 0) b += size + 1;
        if (a < 1 || b > size || b < a - 1) {
            usg_tensor_release(*t);
            luaL_error(L, "index: range {%I, %I} is out of range for dim %d of size %I",
                       a, b, user_dim, (lua_Integer)size);
        }
        s = usg_ad_narrow(&r, *t, d, a - 1, b - a + 1);
    } else {
        usg_tensor_release(*t);
        luaL_error(L, "index: expected a number or a {first, last} range, got %s", luaL_typename(L, arg));
        return 0;
    }
    usg_tensor_release(*t);
    *t = r;
    if (s != USG_OK) usg_lua_error(L);
    return d + 1;
}

/* The view t[key] as a new reference (NULL when key is not an index). */
static usg_tensor *index_view(lua_State *L, usg_tensor *t, int key)
{
    usg_tensor *v = t;
    usg_tensor_retain(v);
    if (lua_type(L, key) == LUA_TNUMBER) {
        if (t->ndim == 0) { usg_tensor_release(v); luaL_error(L, "index: a 0-dim tensor has no dims to index"); }
        index_one(L, &v, 0, key, 1);
        return v;
    }
    lua_Integer n = luaL_len(L, key);
    if (n > t->ndim) {
        usg_tensor_release(v);
        luaL_error(L, "index: %I indices for a %d-D tensor", n, t->ndim);
    }
    int d = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, key, i);
        d = index_one(L, &v, d, lua_gettop(L), (int)i);
        lua_pop(L, 1);
    }
    return v;
}

/* A field getter or setter runs through lua_call, where an argument error
 * could not name the field: say here that the tensor at 1 is closed. */
static void check_open(lua_State *L, const char *field)
{
    usg_tensor **p = luaL_testudata(L, 1, USG_TENSOR_MT);
    if (p && !*p)
        luaL_error(L, "t.%s: the tensor is closed (by a <close> variable or __close); "
                   "it has no fields any more", field);
}

/* Lua calls __index with (t, k); a user may call it with more or fewer
 * arguments (getmetatable(t).__index(t, k, x)), and the slots below count on
 * exactly two. */
static int l_index(lua_State *L)
{
    lua_settop(L, 2);
    int kt = lua_type(L, 2);
    if (kt == LUA_TSTRING) {
        luaL_getmetatable(L, USG_TENSOR_MT);            /* [t, k, mt] */
        lua_getfield(L, -1, "__methods");                /* [t, k, mt, methods] */
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) != LUA_TNIL) return 1;     /* a method */
        /* a field with a getter (t.grad): __fields[k](t) */
        lua_getfield(L, 3, "__fields");
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) == LUA_TNIL) return 1;
        check_open(L, lua_tostring(L, 2));
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        return 1;
    }
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (kt != LUA_TNUMBER && kt != LUA_TTABLE)
        return luaL_error(L, "index: expected a number, a table of indices or a method name, got %s",
                          luaL_typename(L, 2));
    usg_tensor *v = index_view(L, t, 2);
    if (v->ndim == 0) {        /* a single element: a Lua number, as Torch7 */
        double x = usg_tensor_get(v, NULL);
        usg_dtype dt = v->dtype;
        usg_tensor_release(v);
        usg_lua_pushelem(L, dt, x);
        return 1;
    }
    usg_lua_pushtensor(L, v);
    return 1;
}

/* Lua calls __newindex with (t, k, v); slot 3 must be v even when a user
 * calls it with fewer arguments. */
static int l_newindex(lua_State *L)
{
    lua_settop(L, 3);
    int kt = lua_type(L, 2);
    if (kt == LUA_TSTRING) check_open(L, lua_tostring(L, 2));
    usg_tensor *t = usg_lua_checktensor(L, 1);
    if (kt == LUA_TSTRING) {                             /* t.grad = nil: __setters[k](t, v) */
        luaL_getmetatable(L, USG_TENSOR_MT);
        lua_getfield(L, -1, "__setters");
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) == LUA_TNIL)
            return luaL_error(L, "tensor: cannot set field '%s' (tensors have no such field)",
                              lua_tostring(L, 2));
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 3);
        lua_call(L, 2, 0);
        return 0;
    }
    if (kt != LUA_TNUMBER && kt != LUA_TTABLE)
        return luaL_error(L, "index assignment: expected a number or a table of indices, got %s",
                          luaL_typename(L, 2));
    usg_tensor *src = usg_lua_totensor(L, 3);
    if (lua_type(L, 3) != LUA_TNUMBER && !src)
        return luaL_error(L, "index assignment: the value must be a number or a tensor, got %s",
                          luaL_typename(L, 3));
    USG_LUA_TRY(L, usg_check_inplace(t, "index assignment"));
    usg_tensor *v = index_view(L, t, 2);
    usg_status s = src ? usg_copy_(v, src) : usg_fill_(v, lua_tonumber(L, 3));
    usg_tensor_release(v);
    if (s != USG_OK) usg_lua_error_as(L, "index assignment");
    return 0;
}

/* ==== Registration ====================================================== */

void usg_lua_register(lua_State *L, const luaL_Reg *fns, int module, int method)
{
    luaL_getmetatable(L, USG_TENSOR_MT);                 /* [mod, mt] */
    lua_getfield(L, -1, "__methods");                    /* [mod, mt, methods] */
    for (; fns->name; fns++) {
        if (module) { lua_pushcfunction(L, fns->func); lua_setfield(L, -4, fns->name); }
        if (method) {
            lua_pushcfunction(L, fns->func);
            lua_setfield(L, strncmp(fns->name, "__", 2) == 0 ? -3 : -2, fns->name);
        }
    }
    lua_pop(L, 2);                                       /* [mod] */
}

static const luaL_Reg module_fns[] = {
    {"tensor", l_tensor}, {"Tensor", l_tensor}, {"frombytes", l_frombytes},
    {"is_tensor", l_is_tensor}, {"memory", l_memory}, {"alloc_limit", l_alloc_limit},
    {NULL, NULL}};

static const luaL_Reg both_fns[] = {
    {"size", l_size}, {"stride", l_stride}, {"dim", l_dim}, {"numel", l_numel}, {"dtype", l_dtype},
    {"is_contiguous", l_is_contiguous}, {"item", l_item}, {"totable", l_totable},
    {NULL, NULL}};

static const luaL_Reg method_fns[] = {
    {"nelement", l_numel},
    {"__gc", l_tensor_gc}, {"__close", l_tensor_gc}, {"__index", l_index},
    {"__newindex", l_newindex}, {"__len", l_len}, {"__tostring", usg_lua_tensor_tostring},
    {NULL, NULL}};

int usg_lua_open_tensor(lua_State *L)
{
    luaL_newmetatable(L, USG_TENSOR_MT);                 /* [mod, mt] */
    lua_newtable(L);
    lua_setfield(L, -2, "__methods");
    lua_pop(L, 1);                                       /* [mod] */
    usg_lua_register(L, module_fns, 1, 0);
    usg_lua_register(L, both_fns, 1, 1);
    usg_lua_register(L, method_fns, 0, 1);
    return 0;
}

int luaopen_usagi(lua_State *L)
{
    lua_newtable(L);                                     /* [mod] */
    lua_pushliteral(L, USG_VERSION);
    lua_setfield(L, -2, "version");
    usg_lua_open_tensor(L);
    usg_lua_open_math(L);
    usg_lua_open_ops(L);
    usg_lua_open_random(L);
    usg_lua_open_autograd(L);
    usg_lua_open_plugin(L);
    usg_lua_open_optim(L);
    usg_lua_open_h5(L);
    usg_lua_open_sys(L);
    usg_lua_open_image(L);
    return 1;
}

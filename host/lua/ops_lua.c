/*
 * ops_lua.c -- what the generated bindings of the op tables call
 * (host/ops/gen.lua writes them; host/ops/README.md describes the tables):
 * choosing among an op's overloads, the argument kinds that luaL has no
 * check for, options tables, index results, and the registry of the
 * declarations that help() and tests/lua/ops_spec.lua read
 * (usagi.op_table()), and the argument kinds that take the rest of the
 * arguments (a shape, dims, a list of tensors) with the list result.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "binding.h"

/* ==== Overloads ========================================================= */

/* Does the value at idx fit the kind code c ('T' tensor, 'n' number, 'b'
 * boolean, 't' table, 'x' tensor or number, 'p' number or string)?
 * `optional`: none and nil fit too. */
static bool fits(lua_State *L, int idx, char c, bool optional)
{
    int t = lua_type(L, idx);
    if (optional && t <= LUA_TNIL) return true;
    switch (c) {
    case 'T': return usg_lua_totensor(L, idx) != NULL;
    case 'n': return t == LUA_TNUMBER;
    case 'b': return t == LUA_TBOOLEAN;
    case 't': return t == LUA_TTABLE;
    case 'x': return t == LUA_TNUMBER || usg_lua_totensor(L, idx) != NULL;
    case 'p': return t == LUA_TNUMBER || t == LUA_TSTRING;
    case 'z': return t == LUA_TNUMBER || t == LUA_TTABLE;
    case 'd': return t == LUA_TSTRING || t == LUA_TTABLE;
    case 'L': return t == LUA_TTABLE || usg_lua_totensor(L, idx) != NULL;
    }
    return false;
}

static const char *kind_name(char c)
{
    switch (c) {
    case 'T': return USG_TENSOR_MT;
    case 'n': return "number";
    case 'b': return "boolean";
    case 't': return "table";
    case 'x': return USG_TENSOR_MT " or number";
    case 'p': return "number or string";
    case 'z': return "shape (sizes or a table)";
    case 'd': return "dtype";
    case 'L': return "table of tensors";
    }
    return "?";
}

/* The argument position where sig first fails, or 0 when it fits. */
static int first_misfit(lua_State *L, const char *sig)
{
    int idx = 1;
    for (const char *c = sig; *c; c++, idx++) {
        bool optional = c[1] == '?';
        if (!fits(L, idx, *c, optional)) return idx;
        if (optional) c++;
    }
    return 0;
}

/* The kind code sig expects at argument idx (0 when sig is shorter). */
static char kind_at(const char *sig, int idx)
{
    for (const char *c = sig; *c; c++) {
        if (--idx == 0) return *c;
        if (c[1] == '?') c++;
    }
    return 0;
}

int usg_lua_overload(lua_State *L, const char *const *sigs)
{
    int far = 0;
    for (int i = 0; sigs[i]; i++) {
        int at = first_misfit(L, sigs[i]);
        if (at == 0) return i;
        if (at > far) far = at;
    }
    /* Name what the overloads that got furthest would take there:
     * "bad argument #2 to 'add' (usagi.Tensor or number expected, got string)". */
    /* named before the buffer, which may take the empty slot `far` */
    const char *got = luaL_typename(L, far);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char seen[8] = {0};
    int n = 0;
    for (int i = 0; sigs[i]; i++) {
        char c = first_misfit(L, sigs[i]) == far ? kind_at(sigs[i], far) : 0;
        if (!c || strchr(seen, c) || n == (int)sizeof seen - 1) continue;
        if (n > 0) luaL_addstring(&b, " or ");
        luaL_addstring(&b, kind_name(c));
        seen[n++] = c;
    }
    lua_pushfstring(L, " expected, got %s", got);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    return luaL_argerror(L, far, lua_tostring(L, -1));
}

/* ==== Argument kinds ==================================================== */

bool usg_lua_checkboolean(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TBOOLEAN);
    return lua_toboolean(L, idx);
}

double usg_lua_checknorm_p(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tostring(L, idx);
        if (strcmp(s, "inf") == 0) return HUGE_VAL;
        if (strcmp(s, "fro") == 0) return 2;
        return luaL_argerror(L, idx, lua_pushfstring(L, "p must be a number, 'inf' or 'fro', got '%s'", s));
    }
    return luaL_checknumber(L, idx);
}

void usg_lua_options(lua_State *L, int idx, const char *fn, const char *const *names,
                     const char *kinds, void *const *dst)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);                                  /* [.., nil] */
    while (lua_next(L, idx)) {                       /* [.., key, value] */
        int i = -1;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int k = 0; names[k] && i < 0; k++)
                if (strcmp(lua_tostring(L, -2), names[k]) == 0) i = k;
        if (i < 0) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int k = 0; names[k]; k++) {
                if (k > 0) luaL_addstring(&b, names[k + 1] ? ", " : " or ");
                luaL_addstring(&b, names[k]);
            }
            luaL_pushresult(&b);                     /* [.., key, value, names] */
            const char *key = luaL_tolstring(L, -3, NULL);
            luaL_error(L, "%s: unknown option '%s' (expected %s)", fn, key, lua_tostring(L, -2));
        }
        int isint;
        lua_Integer v;
        switch (kinds[i]) {
        case 'i':
            v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < INT_MIN || v > INT_MAX)
                luaL_error(L, "%s: option '%s' must be an integer, got %s", fn, names[i],
                           luaL_tolstring(L, -1, NULL));
            *(int *)dst[i] = (int)v;
            break;
        case 'b':
            if (lua_type(L, -1) != LUA_TBOOLEAN)
                luaL_error(L, "%s: option '%s' must be a boolean, got %s", fn, names[i],
                           luaL_typename(L, -1));
            *(bool *)dst[i] = lua_toboolean(L, -1);
            break;
        case 's':      /* the caller's table keeps the string alive */
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: option '%s' must be a string, got %s", fn, names[i],
                           luaL_typename(L, -1));
            *(const char **)dst[i] = lua_tostring(L, -1);
            break;
        case 'd':
            if (lua_type(L, -1) != LUA_TSTRING || !usg_dtype_parse(lua_tostring(L, -1), (usg_dtype *)dst[i]))
                luaL_error(L, "%s: option '%s' must be 'f32', 'f64' or 'i32', got %s", fn, names[i],
                           luaL_tolstring(L, -1, NULL));
            break;
        case 'T':      /* the caller's table keeps the tensor alive */
            if (!(*(usg_tensor **)dst[i] = usg_lua_totensor(L, -1)))
                luaL_error(L, "%s: option '%s' must be a tensor, got %s", fn, names[i],
                           luaL_typename(L, -1));
            break;
        default:
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "%s: option '%s' must be a number, got %s", fn, names[i],
                           luaL_typename(L, -1));
            *(double *)dst[i] = lua_tonumber(L, -1);
        }
        lua_pop(L, 1);                               /* [.., key] */
    }
}

int usg_lua_choice(lua_State *L, const char *fn, const char *what, const char *value,
                   const char *const *choices, int def)
{
    if (!value) return def;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int k = 0; choices[k]; k++) {
        if (strcmp(value, choices[k]) == 0) return k;
        if (k > 0) luaL_addstring(&b, choices[k + 1] ? ", " : " or ");
        lua_pushfstring(L, "'%s'", choices[k]);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return luaL_error(L, "%s: %s must be %s, got '%s'", fn, what, lua_tostring(L, -1), value);
}

/* ==== Shapes, dims, lists of tensors, dtypes =========================== */

/* A size of a shape, from argument `arg`: a non-negative integer, or with
 * `neg` any integer (view's -1; the core says what is wrong with others). */
static int64_t size_value(lua_State *L, int arg, int valuetype, lua_Integer v, int isint, bool neg)
{
    if (valuetype != LUA_TNUMBER || !isint || (!neg && v < 0))
        luaL_argerror(L, arg, neg ? "sizes must be integers (-1: inferred from the rest)"
                                  : "sizes must be non-negative integers");
    return (int64_t)v;
}

int usg_lua_shape(lua_State *L, int idx, int last, int reserve, int flags, const char *fn,
                  int *ndim, int64_t *shape)
{
    bool neg = flags & USG_LUA_SHAPE_NEG;
    int next;
    *ndim = 0;
    if (idx <= last && lua_type(L, idx) == LUA_TTABLE) {    /* {2, 3} or a usagi.Size */
        lua_Integer n = luaL_len(L, idx);
        if (n > USG_MAX_DIMS)
            luaL_argerror(L, idx, lua_pushfstring(L, "at most %d dims, got %d", USG_MAX_DIMS, (int)n));
        for (lua_Integer i = 1; i <= n; i++) {
            int isint, ty = lua_geti(L, idx, i);             /* [.., size] */
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            shape[i - 1] = size_value(L, idx, ty, v, isint, neg);
            lua_pop(L, 1);
        }
        *ndim = (int)n;
        next = idx + 1;
    } else {                                                 /* 2, 3: all numbers but `reserve` */
        int n = 0;
        while (idx + n <= last && lua_type(L, idx + n) == LUA_TNUMBER) n++;
        n = n > reserve ? n - reserve : 0;
        for (int i = 0; i < n; i++) {
            if (i == USG_MAX_DIMS)
                luaL_argerror(L, idx + i, lua_pushfstring(L, "at most %d dims", USG_MAX_DIMS));
            int isint;
            lua_Integer v = lua_tointegerx(L, idx + i, &isint);
            shape[i] = size_value(L, idx + i, LUA_TNUMBER, v, isint, neg);
        }
        *ndim = n;
        next = idx + n;
    }
    /* A view's numel must fit in int64 (-1 entries aside): otherwise the
     * product wraps and a huge shape could pass as a small one, a view
     * reaching past its storage. */
    if (flags & USG_LUA_SHAPE_VIEW) {
        int64_t n = 1;
        for (int d = 0; d < *ndim; d++) {
            if (shape[d] < 0) continue;
            if (shape[d] && n > INT64_MAX / shape[d]) {
                char b[256];
                luaL_error(L, "%s: shape %s has too many elements", fn,
                           usg_shape_str(b, sizeof b, *ndim, shape));
            }
            n *= shape[d];
        }
    }
    return next;
}

/* Dim value v (1-based or negative) of an ndim-D tensor, given at argument arg. */
static int dim_value(lua_State *L, int arg, int ty, lua_Integer v, int isint, int ndim)
{
    if (ty != LUA_TNUMBER || !isint)
        luaL_argerror(L, arg, "dims must be integers");
    if (v == 0 || v > ndim || v < -ndim)
        luaL_argerror(L, arg, lua_pushfstring(L, "dim %I out of range for a %d-D tensor "
                      "(dims are 1..%d, or negative from the end)", v, ndim, ndim));
    return v > 0 ? (int)v - 1 : (int)(v + ndim);
}

int usg_lua_dims(lua_State *L, int idx, int last, int ndim, const char *fn, int *dims)
{
    int n, next, isint;
    bool from_table = idx <= last && lua_type(L, idx) == LUA_TTABLE;
    if (from_table) {
        lua_Integer len = luaL_len(L, idx);
        n = len < 0 || len > USG_MAX_DIMS ? USG_MAX_DIMS + 1 : (int)len;
        next = idx + 1;
    } else {
        n = 0;
        while (idx + n <= last && lua_type(L, idx + n) == LUA_TNUMBER) n++;
        next = idx + n;
    }
    if (n != ndim)
        luaL_error(L, "%s: expected %d dims for a %d-D tensor, got %d", fn, ndim, ndim, n);
    for (int i = 0; i < n; i++) {
        if (from_table) {
            int ty = lua_geti(L, idx, i + 1);                /* [.., dim] */
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            dims[i] = dim_value(L, idx, ty, v, isint, ndim);
            lua_pop(L, 1);
        } else {
            lua_Integer v = lua_tointegerx(L, idx + i, &isint);
            dims[i] = dim_value(L, idx + i, LUA_TNUMBER, v, isint, ndim);
        }
    }
    return next;
}

int usg_lua_tensors(lua_State *L, int idx, int after, usg_tensor ***ts, int *n)
{
    bool from_table = lua_type(L, idx) == LUA_TTABLE;
    int next;
    if (from_table) {
        lua_Integer len = luaL_len(L, idx);
        luaL_argcheck(L, len <= INT_MAX / (int)sizeof **ts, idx, "too many tensors");
        *n = (int)len;
        next = idx + 1;
    } else {                                  /* as Torch7's torch.cat(t1, t2 [, dim]) */
        *n = 0;
        while (usg_lua_totensor(L, idx + *n)) (*n)++;
        luaL_argcheck(L, *n > 0, idx, "expected a table of tensors or tensors");
        next = idx + *n;
    }
    /* The array is a userdata above every argument (so an error cannot leak
     * it), while the table or the stack keeps the tensors referenced. */
    if (lua_gettop(L) < next + after - 1) lua_settop(L, next + after - 1);
    *ts = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof **ts, 0);    /* [args.., array] */
    for (int i = 0; i < *n; i++) {
        if (from_table) {
            lua_geti(L, idx, i + 1);                                 /* [.., array, t] */
            if (!((*ts)[i] = usg_lua_totensor(L, -1)))
                luaL_argerror(L, idx, lua_pushfstring(L, "element %d is a %s, not a tensor",
                              i + 1, luaL_typename(L, -1)));
            lua_pop(L, 1);                                           /* [.., array] */
        } else {
            (*ts)[i] = usg_lua_totensor(L, idx + i);
        }
    }
    return next;
}

bool usg_lua_trailing_options(lua_State *L, int top, int rest)
{
    if (top < rest || lua_type(L, top) != LUA_TTABLE) return false;
    if (lua_getmetatable(L, top)) { lua_pop(L, 1); return false; }   /* a usagi.Size */
    return top > rest || lua_rawlen(L, top) == 0;
}

void usg_lua_check_end(lua_State *L, int next, int last, const char *after)
{
    if (next <= last && !lua_isnil(L, next))
        luaL_argerror(L, next, lua_pushfstring(L, "unexpected argument%s%s", *after ? " after the " : "",
                      after));
}

usg_dtype usg_lua_dtype_arg(lua_State *L, int idx, usg_dtype def, const char *fn)
{
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: return def;
    case LUA_TSTRING: return usg_lua_optdtype(L, idx, def);
    case LUA_TTABLE: {
        usg_dtype dt = def;
        usg_lua_options(L, idx, fn, (const char *const[]){"dtype", NULL}, "d", (void *const[]){&dt});
        return dt;
    }
    }
    return luaL_argerror(L, idx, lua_pushfstring(L, "a dtype ('f32', 'f64', 'i32' or {dtype = ...}) "
                         "expected, got %s", luaL_typename(L, idx)));
}

/* ==== Results =========================================================== */

/* The core hands back an array of views; until each one is in the result
 * table it lives in this userdata, and __gc frees what an error left. */
#define LIST_MT "usagi.list"

static int list_gc(lua_State *L)
{
    usg_lua_list *p = luaL_checkudata(L, 1, LIST_MT);
    for (int i = 0; p->ts && i < p->n; i++) usg_tensor_release(p->ts[i]);
    usg_free(p->ts);
    p->ts = NULL;
    return 0;
}

usg_lua_list *usg_lua_newlist(lua_State *L)
{
    usg_lua_list *p = lua_newuserdatauv(L, sizeof *p, 0);   /* [.., p] */
    p->ts = NULL;
    p->n = 0;
    if (luaL_newmetatable(L, LIST_MT)) {                     /* [.., p, mt] */
        lua_pushcfunction(L, list_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                                 /* [.., p] */
    return p;
}

int usg_lua_pushlist(lua_State *L, usg_lua_list *p)
{
    lua_createtable(L, p->n, 0);                             /* [.., p, {}] */
    for (int i = 0; i < p->n; i++) {
        usg_lua_pushtensor(L, p->ts[i]);
        p->ts[i] = NULL;                                     /* now Lua's */
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}


void usg_lua_push_index(lua_State *L, usg_tensor *ix, int dim, bool keepdim)
{
    if (dim != USG_ALL_DIMS || keepdim) {
        usg_lua_pushtensor(L, ix);
        return;
    }
    double v = usg_tensor_get_flat(ix, 0);
    usg_dtype dt = ix->dtype;
    usg_tensor_release(ix);
    usg_lua_pushelem(L, dt, v);
}

/* ==== The registry of declarations ====================================== */

#define OPS_KEY "usagi.op_table"

void usg_lua_add_ops(lua_State *L, const char *module, const char *chunk, size_t len)
{
    if (luaL_loadbufferx(L, chunk, len, "=op table", "t") != LUA_OK) lua_error(L);
    lua_call(L, 0, 1);                               /* [family] */
    lua_getfield(L, -1, "ops");                      /* [family, ops] */
    lua_getfield(L, -2, "family");                   /* [family, ops, name] */
    if (luaL_getsubtable(L, LUA_REGISTRYINDEX, OPS_KEY)) {}   /* [family, ops, name, all] */
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; lua_geti(L, -3, i) != LUA_TNIL; i++) {  /* [.., all, op] */
        lua_pushstring(L, module);
        lua_setfield(L, -2, "module");
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "family");
        lua_seti(L, -2, ++n);                        /* [.., all] */
    }
    lua_pop(L, 5);
}

/* usagi.op_table() -> the declarations of every op made from an op table
 * so far (the core's, and those of the plugins loaded), in order. */
static int l_op_table(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, OPS_KEY);
    lua_Integer n = luaL_len(L, -1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -2, i);
        lua_seti(L, -2, i);
    }
    return 1;
}

int usg_lua_open_ops(lua_State *L)
{
    lua_pushcfunction(L, l_op_table);
    lua_setfield(L, -2, "op_table");
    usg_lua_open_math_ops(L);
    usg_lua_open_reduce_ops(L);
    usg_lua_open_nn_ops(L);
    usg_lua_open_index_ops(L);
    usg_lua_open_view_ops(L);
    usg_lua_open_create_ops(L);
    usg_lua_open_random_ops(L);
    return 0;
}

/*
 * h5_lua.c -- usagi.h5, the Lua face of the store (host/store): HDF5 files
 * of tensors, groups, attributes and extendable datasets.
 *
 *   local f <close> = usagi.h5.open('run.h5', 'a')      -- 'r' (default), 'w', 'a'
 *   f:write('/params/w', w); f:read('/params/w')
 *   f:write_strings('/vocab', {'a', 'b'}); f:read_strings('/vocab')
 *   f:exists(p), f:kind(p) ('group'|'dataset'|'datatype'|nil), f:list([p]),
 *   f:group(p), f:remove(p), f:shape(p), f:dtype(p)
 *   f:attr(p, name) -> value|nil; f:attr(p, name, value) (nil deletes);
 *   f:attrs([p]) -> {name = value}
 *   f:append('/metrics/loss', 0.5) -> new length; f:flush([sync]); f:close()
 *   f.path, f.mode; usagi.h5.is_hdf5(path)
 *   usagi.h5.verify(path [, seconds]) -> true | nil, message (in a child)
 *
 * A File is a userdata holding the C handle; close, __close and __gc all
 * close it (once), and any method on a closed file is an error. Its path
 * lives in the userdata's user value, so f.path and tostring(f) still work
 * after close. Arguments are checked here, everything else is the store's.
 * Temporary C memory (name lists, attribute values) sits in a "box"
 * userdata with __gc, so a Lua error in the middle cannot leak it.
 */
#include <string.h>

#include "binding.h"
#include "usagi/store.h"

#define FILE_MT "usagi.h5.File"
#define BOX_MT "usagi.h5.box"

typedef struct lfile {
    usg_h5 *h;        /* NULL once closed */
    char mode[2];
} lfile;

/* ==== Arguments ========================================================= */

static const char *arg_string(lua_State *L, int idx, const char *fn, const char *what)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "%s: %s must be a string, got %s", fn, what, luaL_typename(L, idx));
    return lua_tostring(L, idx);
}

static lfile *to_file(lua_State *L, const char *fn)
{
    lfile *lf = luaL_testudata(L, 1, FILE_MT);
    if (!lf)
        luaL_error(L, "%s: self must be an h5.File, got %s (call it as f:%s(...))", fn,
                   luaL_typename(L, 1), fn + 3);
    return lf;
}

/* The open handle, or an error naming fn and the file. */
static usg_h5 *check_open(lua_State *L, const char *fn)
{
    lfile *lf = to_file(L, fn);
    if (!lf->h) {
        lua_getiuservalue(L, 1, 1);                          /* [.., path] */
        luaL_error(L, "%s: file is closed ('%s')", fn, lua_tostring(L, -1));
    }
    return lf->h;
}

/* ==== Boxes: C memory owned by a userdata =============================== */

typedef struct box {
    usg_h5_names names;
    usg_h5_value value;
} box;

static int l_box_gc(lua_State *L)
{
    box *b = luaL_checkudata(L, 1, BOX_MT);
    usg_h5_names_free(&b->names);
    usg_h5_value_clear(&b->value);
    return 0;
}

static box *new_box(lua_State *L)
{
    box *b = lua_newuserdatauv(L, sizeof *b, 0);             /* [.., box] */
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BOX_MT);
    return b;
}

/* Push the value of b (taking its tensor) and clear b. */
static void push_value(lua_State *L, box *b)
{
    usg_h5_value *v = &b->value;
    switch (v->type) {
    case USG_H5_VINT: lua_pushinteger(L, (lua_Integer)v->i); break;
    case USG_H5_VFLOAT: lua_pushnumber(L, v->d); break;
    case USG_H5_VBOOL: lua_pushboolean(L, v->b); break;
    case USG_H5_VSTRING: lua_pushstring(L, v->s); break;
    case USG_H5_VTENSOR: usg_lua_pushtensor(L, v->t); v->t = NULL; break;   /* Lua owns it */
    case USG_H5_VSTRINGS:
        lua_createtable(L, (int)v->strs.n, 0);               /* [.., list] */
        for (size_t i = 0; i < v->strs.n; i++) {
            lua_pushstring(L, v->strs.v[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    default: lua_pushnil(L); break;
    }
    usg_h5_value_clear(v);
}

/* The Lua value at idx as an attribute value in b (strings and tensors
 * stay anchored on the Lua stack while b is used); `where` starts the
 * messages ("h5.attr: 'x.h5' '/' attribute 'lr'"). */
static void to_value(lua_State *L, int idx, box *b, const char *where)
{
    usg_h5_value *v = &b->value;
    size_t len;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) { v->type = USG_H5_VINT; v->i = lua_tointeger(L, idx); }
        else { v->type = USG_H5_VFLOAT; v->d = lua_tonumber(L, idx); }
        return;
    case LUA_TBOOLEAN: v->type = USG_H5_VBOOL; v->b = lua_toboolean(L, idx); return;
    case LUA_TSTRING:
        v->s = (char *)lua_tolstring(L, idx, &len);
        if (strlen(v->s) != len) luaL_error(L, "%s: a string value must not contain '\\0'", where);
        v->type = USG_H5_VSTRING;
        return;
    case LUA_TTABLE: {
        size_t n = lua_rawlen(L, idx), keys = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) { keys++; lua_pop(L, 1); }
        if (keys != n) luaL_error(L, "%s: a table value must be an array of strings", where);
        /* the pointers live in a userdata so an error below frees them */
        char **ptrs = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ptrs, 0);   /* [.., ptrs] */
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: a table value must be an array of strings, element %d is %s",
                           where, (int)i + 1, luaL_typename(L, -1));
            ptrs[i] = (char *)lua_tolstring(L, -1, &len);
            if (strlen(ptrs[i]) != len)
                luaL_error(L, "%s: a string value must not contain '\\0'", where);
            lua_pop(L, 1);   /* still anchored by the table */
        }
        v->type = USG_H5_VSTRINGS;
        v->strs.n = n;
        v->strs.v = ptrs;
        return;
    }
    default:
        if ((v->t = usg_lua_totensor(L, idx))) { v->type = USG_H5_VTENSOR; return; }
        luaL_error(L, "%s: value must be a number, string, boolean, usagi.Tensor or array of "
                      "strings, got %s", where, luaL_typename(L, idx));
    }
}

/* ==== Module functions ================================================== */

/* usagi.h5.open(path [, mode = 'r']) -> File */
static int l_open(lua_State *L)
{
    const char *path = arg_string(L, 1, "h5.open", "path");
    const char *mode = lua_isnoneornil(L, 2) ? "r" : arg_string(L, 2, "h5.open", "mode");
    lfile *lf = lua_newuserdatauv(L, sizeof *lf, 1);         /* [.., ud] */
    lf->h = NULL;
    luaL_setmetatable(L, FILE_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    USG_LUA_TRY(L, usg_h5_open(&lf->h, path, mode));
    memcpy(lf->mode, mode, 2);
    return 1;
}

/* usagi.h5.is_hdf5(path) -> bool: never an error for a file that is not. */
static int l_is_hdf5(lua_State *L)
{
    lua_pushboolean(L, usg_h5_is_hdf5(arg_string(L, 1, "h5.is_hdf5", "path")));
    return 1;
}

/* usagi.h5.verify(path [, seconds = 60]) -> true, or nil and the message:
 * a damaged file is an answer, not an error; bad arguments raise. */
static int l_verify(lua_State *L)
{
    const char *path = arg_string(L, 1, "h5.verify", "path");
    if (!*path) return luaL_error(L, "h5.verify: path must be a non-empty string");
    lua_Number sec = 60;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TNUMBER)
            return luaL_error(L, "h5.verify: seconds must be a number, got %s",
                              luaL_typename(L, 2));
        sec = lua_tonumber(L, 2);
        if (!(sec > 0 && sec <= 86400))
            return luaL_error(L, "h5.verify: seconds must be in (0, 86400], got %f", sec);
    }
    int ms = (int)(sec * 1000);
    if (usg_h5_verify(path, ms > 0 ? ms : 1) == USG_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, usg_errmsg());
    return 2;
}

/* ==== File methods ====================================================== */

static int l_write(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.write");
    const char *path = arg_string(L, 2, "h5.write", "path");
    usg_tensor *t = usg_lua_totensor(L, 3);
    if (!t)
        return luaL_error(L, "h5.write: '%s' '%s': value must be a usagi.Tensor, got %s",
                          usg_h5_path(h), path, luaL_typename(L, 3));
    USG_LUA_TRY(L, usg_h5_write(h, path, t));
    return 0;
}

static int l_read(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.read");
    usg_tensor *t;
    USG_LUA_TRY(L, usg_h5_read(h, arg_string(L, 2, "h5.read", "path"), &t));
    usg_lua_pushtensor(L, t);
    return 1;
}

/* f:write_strings(path, {'a', 'b', ...}): a 1-D dataset of UTF-8 strings */
static int l_write_strings(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.write_strings");
    const char *path = arg_string(L, 2, "h5.write_strings", "path");
    if (!lua_istable(L, 3))
        return luaL_error(L, "h5.write_strings: '%s' '%s': strings must be a list of strings, got %s",
                          usg_h5_path(h), path, luaL_typename(L, 3));
    lua_Integer n = luaL_len(L, 3);
    if (n < 0 || n > ((lua_Integer)1 << 31))
        return luaL_error(L, "h5.write_strings: '%s' '%s': expected at most 2^31 strings", usg_h5_path(h), path);
    const char **v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);   /* [.., v] */
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 3, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "h5.write_strings: '%s' '%s': string %I is a %s", usg_h5_path(h), path,
                              i + 1, luaL_typename(L, -1));
        v[i] = lua_tostring(L, -1);                            /* the table keeps it alive */
        lua_pop(L, 1);
    }
    USG_LUA_TRY(L, usg_h5_write_strings(h, path, v, (size_t)n));
    return 0;
}

/* f:read_strings(path) -> {'a', 'b', ...} */
static int l_read_strings(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.read_strings");
    const char *path = arg_string(L, 2, "h5.read_strings", "path");
    box *b = new_box(L);                                       /* [.., box] */
    USG_LUA_TRY(L, usg_h5_read_strings(h, path, &b->names));
    lua_createtable(L, (int)b->names.n, 0);                    /* [.., box, list] */
    for (size_t i = 0; i < b->names.n; i++) {
        lua_pushstring(L, b->names.v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int l_exists(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.exists");
    bool ex;
    USG_LUA_TRY(L, usg_h5_exists(h, arg_string(L, 2, "h5.exists", "path"), &ex));
    lua_pushboolean(L, ex);
    return 1;
}

/* f:kind(path) -> 'group' | 'dataset' | 'datatype' | nil */
static int l_kind(lua_State *L)
{
    static const char *const names[] = {NULL, "group", "dataset", "datatype"};
    usg_h5 *h = check_open(L, "h5.kind");
    usg_h5_kind k;
    USG_LUA_TRY(L, usg_h5_kind_of(h, arg_string(L, 2, "h5.kind", "path"), &k));
    if (names[k]) lua_pushstring(L, names[k]);
    else lua_pushnil(L);
    return 1;
}

/* Push the names in b as an array and free them. */
static void push_names(lua_State *L, box *b)
{
    lua_createtable(L, (int)b->names.n, 0);                  /* [.., list] */
    for (size_t i = 0; i < b->names.n; i++) {
        lua_pushstring(L, b->names.v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    usg_h5_names_free(&b->names);
}

/* f:list([path = '/']) -> sorted names of the children */
static int l_list(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.list");
    const char *path = lua_isnoneornil(L, 2) ? "/" : arg_string(L, 2, "h5.list", "path");
    box *b = new_box(L);                                     /* [.., box] */
    USG_LUA_TRY(L, usg_h5_list(h, path, &b->names));
    push_names(L, b);
    return 1;
}

static int l_group(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.group");
    USG_LUA_TRY(L, usg_h5_group(h, arg_string(L, 2, "h5.group", "path")));
    return 0;
}

static int l_remove(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.remove");
    USG_LUA_TRY(L, usg_h5_remove(h, arg_string(L, 2, "h5.remove", "path")));
    return 0;
}

/* f:shape(path) -> {d1, d2, ...} (a plain array; {} for a scalar) */
static int l_shape(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.shape");
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    USG_LUA_TRY(L, usg_h5_shape(h, arg_string(L, 2, "h5.shape", "path"), &ndim, shape));
    lua_createtable(L, ndim, 0);
    for (int i = 0; i < ndim; i++) {
        lua_pushinteger(L, (lua_Integer)shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_dtype(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.dtype");
    char buf[32];
    USG_LUA_TRY(L, usg_h5_dtype(h, arg_string(L, 2, "h5.dtype", "path"), buf, sizeof buf));
    lua_pushstring(L, buf);
    return 1;
}

/* f:attr(path, name) -> value or nil; f:attr(path, name, value) sets it,
 * and an explicit nil deletes it. */
static int l_attr(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.attr");
    const char *path = arg_string(L, 2, "h5.attr", "path");
    const char *name = arg_string(L, 3, "h5.attr", "name");
    if (lua_gettop(L) >= 4 && lua_isnil(L, 4)) {
        USG_LUA_TRY(L, usg_h5_attr_delete(h, path, name));
        return 0;
    }
    bool set = lua_gettop(L) >= 4;
    box *b = new_box(L);                                     /* [.., box] */
    if (set) {
        const char *where = lua_pushfstring(L, "h5.attr: '%s' '%s' attribute '%s'",
                                            usg_h5_path(h), path, name);
        to_value(L, 4, b, where);
        usg_status s = usg_h5_attr_set(h, path, name, &b->value);
        memset(&b->value, 0, sizeof b->value);   /* borrowed from Lua, never freed */
        USG_LUA_TRY(L, s);
        return 0;
    }
    USG_LUA_TRY(L, usg_h5_attr_get(h, path, name, &b->value));
    push_value(L, b);
    return 1;
}

/* f:attrs([path = '/']) -> {name = value, ...} */
static int l_attrs(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.attrs");
    const char *path = lua_isnoneornil(L, 2) ? "/" : arg_string(L, 2, "h5.attrs", "path");
    box *b = new_box(L);                                     /* [.., box] */
    USG_LUA_TRY(L, usg_h5_attr_names(h, path, &b->names));
    lua_createtable(L, 0, (int)b->names.n);                  /* [.., box, t] */
    for (size_t i = 0; i < b->names.n; i++) {
        USG_LUA_TRY(L, usg_h5_attr_get(h, path, b->names.v[i], &b->value));
        push_value(L, b);                                    /* [.., box, t, v] */
        lua_setfield(L, -2, b->names.v[i]);
    }
    return 1;
}

/* f:append(path, number | tensor) -> the new length */
static int l_append(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.append");
    const char *path = arg_string(L, 2, "h5.append", "path");
    int64_t len = 0;
    usg_tensor *t = usg_lua_totensor(L, 3);
    if (t)
        USG_LUA_TRY(L, usg_h5_append(h, path, t, &len));
    else if (lua_type(L, 3) == LUA_TNUMBER)
        USG_LUA_TRY(L, usg_h5_append_number(h, path, lua_tonumber(L, 3), &len));
    else
        return luaL_error(L, "h5.append: '%s' '%s': value must be a number or a usagi.Tensor, "
                          "got %s", usg_h5_path(h), path, luaL_typename(L, 3));
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

/* f:flush([sync = false]): sync also fsyncs the file. */
static int l_flush(lua_State *L)
{
    usg_h5 *h = check_open(L, "h5.flush");
    USG_LUA_TRY(L, usg_h5_flush(h, lua_toboolean(L, 2)));
    return 0;
}

/* f:close(): idempotent; the handle is gone even when HDF5 reports an error. */
static int l_close(lua_State *L)
{
    lfile *lf = to_file(L, "h5.close");
    usg_h5 *h = lf->h;
    lf->h = NULL;
    USG_LUA_TRY(L, usg_h5_close(h));
    return 0;
}

static int l_gc(lua_State *L)
{
    lfile *lf = luaL_checkudata(L, 1, FILE_MT);
    usg_h5_close(lf->h);   /* nobody to tell about an error here */
    lf->h = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lfile *lf = luaL_checkudata(L, 1, FILE_MT);
    lua_getiuservalue(L, 1, 1);                              /* [ud, path] */
    lua_pushfstring(L, "h5.File('%s', '%s')%s", lua_tostring(L, -1), lf->mode,
                    lf->h ? "" : " (closed)");
    return 1;
}

/* f.path, f.mode, and the methods (the upvalue). */
static int l_index(lua_State *L)
{
    lfile *lf = luaL_checkudata(L, 1, FILE_MT);
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "path") == 0) { lua_getiuservalue(L, 1, 1); return 1; }
    if (k && strcmp(k, "mode") == 0) { lua_pushstring(L, lf->mode); return 1; }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

/* ==== Registration ====================================================== */

static const luaL_Reg file_methods[] = {
    {"write", l_write}, {"read", l_read}, {"write_strings", l_write_strings},
    {"read_strings", l_read_strings}, {"exists", l_exists}, {"kind", l_kind},
    {"list", l_list}, {"group", l_group}, {"remove", l_remove}, {"shape", l_shape},
    {"dtype", l_dtype}, {"attr", l_attr}, {"attrs", l_attrs}, {"append", l_append},
    {"flush", l_flush}, {"close", l_close},
    {NULL, NULL}};

static const luaL_Reg module_fns[] = {
    {"open", l_open}, {"is_hdf5", l_is_hdf5}, {"verify", l_verify}, {NULL, NULL}};

/* [usagi] -> [usagi], with usagi.h5 set */
int usg_lua_open_h5(lua_State *L)
{
    luaL_newmetatable(L, BOX_MT);                            /* [mod, bmt] */
    lua_pushcfunction(L, l_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);                                           /* [mod] */
    luaL_newmetatable(L, FILE_MT);                           /* [mod, mt] */
    luaL_newlib(L, file_methods);                            /* [mod, mt, methods] */
    lua_pushcclosure(L, l_index, 1);                         /* [mod, mt, index] */
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);                                           /* [mod] */
    luaL_newlib(L, module_fns);                              /* [mod, h5] */
    lua_setfield(L, -2, "h5");                               /* [mod] */
    return 0;
}

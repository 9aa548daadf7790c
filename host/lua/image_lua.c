/*
 * image_lua.c -- usagi.image, the Lua face of host/image/image.c: raster
 * canvases to draw figures on, and PNG files from canvases and tensors.
 *
 *   local c = usagi.image.canvas(640, 400)            -- white; or a colour
 *   c:line(10, 10.5, 200, 10.5, '#1f77b4', 1.5)
 *   c:text(320, 20, 'loss', {0, 0, 0}, {anchor = 'middle'})
 *   c:save_png('loss.png')
 *   usagi.image.save_png('digit.png', x)              -- (H, W) or (H, W, 3)
 *   local x = usagi.image.load_png('digit.png')       -- f32 in [0, 1]
 *
 * Coordinates are pixels from the top-left corner (SVG's rule, see
 * usagi/image.h): geometry, not indices, so they start at 0. Colours are
 * {r, g, b} with 0..255 or '#rrggbb'. This file only checks arguments and
 * writes files; the layout of charts is scripts/usagi/plot.lua's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"
#include "usagi/image.h"

#define CANVAS_MT "usagi.image.Canvas"

/* ==== Arguments ========================================================= */

/* The canvas at idx; an error once it was closed. */
static usg_image *check_canvas(lua_State *L, int idx)
{
    usg_image **p = luaL_checkudata(L, idx, CANVAS_MT);
    if (!*p) luaL_error(L, "usagi.image: the canvas was closed");
    return *p;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static bool parse_hex(const char *s, size_t n, usg_rgb *c)
{
    if (n != 7 || s[0] != '#') return false;
    int v[6];
    for (int i = 0; i < 6; i++)
        if ((v[i] = hexval(s[i + 1])) < 0) return false;
    *c = (usg_rgb){(uint8_t)(16 * v[0] + v[1]), (uint8_t)(16 * v[2] + v[3]),
                   (uint8_t)(16 * v[4] + v[5])};
    return true;
}

/* {r, g, b} in 0..255 (rounded) or '#rrggbb'; fn names the caller. */
static usg_rgb check_color(lua_State *L, int idx, const char *fn)
{
    usg_rgb c = {0, 0, 0};
    size_t n;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &n);
        if (parse_hex(s, n, &c)) return c;
    } else if (lua_type(L, idx) == LUA_TTABLE && lua_rawlen(L, idx) == 3) {
        uint8_t v[3];
        bool ok = true;
        for (int i = 0; i < 3; i++) {
            lua_rawgeti(L, idx, i + 1);                 /* [.., v] */
            double x = lua_tonumber(L, -1);
            ok = ok && lua_type(L, -1) == LUA_TNUMBER && x >= 0 && x <= 255;
            v[i] = ok ? (uint8_t)floor(x + 0.5) : 0;
            lua_pop(L, 1);                              /* [..] */
        }
        if (ok) return (usg_rgb){v[0], v[1], v[2]};
    }
    const char *got = luaL_tolstring(L, idx, NULL);
    luaL_error(L, "%s: color must be {r, g, b} with values in 0..255 or '#rrggbb', got %s%s%s",
               fn, lua_type(L, idx) == LUA_TSTRING ? "'" : "", got,
               lua_type(L, idx) == LUA_TSTRING ? "'" : "");
    return c;
}

/* Coordinates from a Lua array or a 1-D tensor into a scratch userdata
 * (collected with the call, so an error cannot leak it); *n gets the count. */
static double *check_coords(lua_State *L, int idx, const char *fn, const char *name, int64_t *n)
{
    usg_tensor *t = usg_lua_totensor(L, idx);
    if (t) {
        if (t->ndim != 1)
            luaL_error(L, "%s: %s must be a Lua array or a 1-D tensor, got a %d-D tensor", fn,
                       name, t->ndim);
        *n = t->shape[0];
    } else if (lua_type(L, idx) == LUA_TTABLE) {
        *n = (int64_t)lua_rawlen(L, idx);
    } else {
        luaL_error(L, "%s: %s must be a Lua array or a 1-D tensor, got %s", fn, name,
                   luaL_typename(L, idx));
    }
    double *v = lua_newuserdatauv(L, (size_t)(*n ? *n : 1) * sizeof *v, 0);   /* [.., buf] */
    for (int64_t i = 0; i < *n; i++) {
        if (t) { v[i] = usg_tensor_get_flat(t, i); continue; }
        lua_rawgeti(L, idx, (lua_Integer)i + 1);        /* [.., buf, x] */
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "%s: %s[%d] must be a number, got %s", fn, name, (int)(i + 1),
                       luaL_typename(L, -1));
        v[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);                                  /* [.., buf] */
    }
    return v;
}

/* Write n bytes to path; the error names fn, the path and the reason. */
static void write_file(lua_State *L, const char *fn, const char *path, uint8_t *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(buf, 1, n, f) == n;
    int err = errno;
    if (f && fclose(f) != 0 && ok) { ok = false; err = errno; }
    usg_free(buf);
    if (!ok) luaL_error(L, "%s: cannot write '%s': %s", fn, path, strerror(err));
}

/* ==== Canvas ============================================================ */

/* canvas(width, height [, color = white]) -> Canvas */
static int l_canvas(lua_State *L)
{
    lua_Integer w = luaL_checkinteger(L, 1), h = luaL_checkinteger(L, 2);
    usg_rgb bg = lua_isnoneornil(L, 3) ? (usg_rgb){255, 255, 255}
                                       : check_color(L, 3, "image.canvas");
    if (w < 1 || w > USG_IMAGE_MAX_SIDE)
        return luaL_error(L, "image.canvas: width must be in 1..%d, got %I", USG_IMAGE_MAX_SIDE, w);
    if (h < 1 || h > USG_IMAGE_MAX_SIDE)
        return luaL_error(L, "image.canvas: height must be in 1..%d, got %I", USG_IMAGE_MAX_SIDE, h);
    usg_image **p = lua_newuserdatauv(L, sizeof *p, 0);          /* [.., ud] */
    *p = NULL;
    luaL_setmetatable(L, CANVAS_MT);
    USG_LUA_TRY(L, usg_image_new(p, (int)w, (int)h, bg));        /* ownership passes to Lua */
    return 1;
}

static int l_canvas_gc(lua_State *L)
{
    usg_image **p = luaL_checkudata(L, 1, CANVAS_MT);
    usg_image_free(*p);
    *p = NULL;
    return 0;
}

/* c.width, c.height, then the methods. */
static int l_canvas_index(lua_State *L)
{
    usg_image *im = check_canvas(L, 1);
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "width") == 0) { lua_pushinteger(L, im->width); return 1; }
    if (k && strcmp(k, "height") == 0) { lua_pushinteger(L, im->height); return 1; }
    luaL_getmetatable(L, CANVAS_MT);                             /* [c, k, mt] */
    lua_getfield(L, -1, "__methods");                            /* [c, k, mt, methods] */
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);                                           /* [c, k, mt, methods, v] */
    return 1;
}

static int l_canvas_tostring(lua_State *L)
{
    usg_image **p = luaL_checkudata(L, 1, CANVAS_MT);
    if (!*p) lua_pushliteral(L, "usagi.image.Canvas (closed)");
    else lua_pushfstring(L, "usagi.image.Canvas %dx%d", (*p)->width, (*p)->height);
    return 1;
}

/* c:fill(color) -> c */
static int l_fill(lua_State *L)
{
    usg_image_fill(check_canvas(L, 1), check_color(L, 2, "canvas:fill"));
    lua_settop(L, 1);
    return 1;
}

/* c:line(x0, y0, x1, y1, color [, width = 1]) -> c */
static int l_line(lua_State *L)
{
    usg_image *im = check_canvas(L, 1);
    double x0 = luaL_checknumber(L, 2), y0 = luaL_checknumber(L, 3);
    double x1 = luaL_checknumber(L, 4), y1 = luaL_checknumber(L, 5);
    usg_rgb c = check_color(L, 6, "canvas:line");
    usg_image_line(im, x0, y0, x1, y1, c, luaL_optnumber(L, 7, 1));
    lua_settop(L, 1);
    return 1;
}

/* c:polyline(xs, ys, color [, width = 1]) -> c; NaN breaks the line. */
static int l_polyline(lua_State *L)
{
    usg_image *im = check_canvas(L, 1);
    int64_t nx, ny;
    double *xs = check_coords(L, 2, "canvas:polyline", "xs", &nx);
    double *ys = check_coords(L, 3, "canvas:polyline", "ys", &ny);
    if (nx != ny)
        return luaL_error(L, "canvas:polyline: xs and ys must have the same length, got %d and %d",
                          (int)nx, (int)ny);
    usg_rgb c = check_color(L, 4, "canvas:polyline");
    usg_image_polyline(im, xs, ys, nx, c, luaL_optnumber(L, 5, 1));
    lua_settop(L, 1);
    return 1;
}

/* c:rect(x, y, w, h, color) -> c, filled */
static int l_rect(lua_State *L)
{
    usg_image *im = check_canvas(L, 1);
    double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3);
    double w = luaL_checknumber(L, 4), h = luaL_checknumber(L, 5);
    usg_image_rect(im, x, y, w, h, check_color(L, 6, "canvas:rect"));
    lua_settop(L, 1);
    return 1;
}

/* c:marker(x, y, color [, {size = 6, shape = 'circle' | 'square'}]) -> c */
static int l_marker(lua_State *L)
{
    static const char *const known[] = {"size", "shape", NULL};
    static const char *const shapes[] = {"circle", "square", NULL};
    usg_image *im = check_canvas(L, 1);
    double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3), size = 6;
    usg_rgb c = check_color(L, 4, "canvas:marker");
    int shape = 0;
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        usg_lua_check_opts(L, 5, "canvas:marker", known);
        lua_getfield(L, 5, "size");                              /* [.., size] */
        size = luaL_optnumber(L, -1, 6);
        lua_getfield(L, 5, "shape");                             /* [.., size, shape] */
        shape = luaL_checkoption(L, -1, "circle", shapes);
        lua_pop(L, 2);
    }
    usg_image_marker(im, x, y, size, c, shape ? USG_MARKER_SQUARE : USG_MARKER_CIRCLE);
    lua_settop(L, 1);
    return 1;
}

/* The integer text scale at idx (nil: 1). */
static int check_scale(lua_State *L, int idx, const char *fn)
{
    if (lua_isnoneornil(L, idx)) return 1;
    int isint = 0;
    lua_Integer s = lua_tointegerx(L, idx, &isint);
    if (!isint || s < 1 || s > 64)
        luaL_error(L, "%s: scale must be an integer in 1..64, got %s", fn,
                   luaL_tolstring(L, idx, NULL));
    return (int)s;
}

/* c:text(x, y, str, color [, {scale = 1, anchor = 'start', rotate = false}])
 * -> c. (x, y) is on the baseline; rotate turns the text to read upwards. */
static int l_text(lua_State *L)
{
    static const char *const known[] = {"scale", "anchor", "rotate", NULL};
    static const char *const anchors[] = {"start", "middle", "end", NULL};
    usg_image *im = check_canvas(L, 1);
    double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3);
    const char *s = luaL_checkstring(L, 4);
    usg_rgb c = check_color(L, 5, "canvas:text");
    int scale = 1, anchor = 0;
    bool rotate = false;
    if (!lua_isnoneornil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        usg_lua_check_opts(L, 6, "canvas:text", known);
        lua_getfield(L, 6, "scale");                             /* [.., scale] */
        scale = check_scale(L, -1, "canvas:text");
        lua_getfield(L, 6, "anchor");                            /* [.., scale, anchor] */
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "canvas:text: anchor must be 'start', 'middle' or 'end', got %s",
                              luaL_typename(L, -1));
        anchor = luaL_checkoption(L, -1, "start", anchors);
        lua_getfield(L, 6, "rotate");                            /* [.., scale, anchor, rotate] */
        rotate = lua_toboolean(L, -1);
        lua_pop(L, 3);
    }
    usg_image_text(im, x, y, s, c, scale, (usg_anchor)anchor, rotate);
    lua_settop(L, 1);
    return 1;
}

/* text_width(str [, scale = 1]) -> pixels; also c:text_width(str, scale). */
static int l_text_width(lua_State *L)
{
    int base = luaL_testudata(L, 1, CANVAS_MT) ? 2 : 1;
    const char *s = luaL_checkstring(L, base);
    lua_pushinteger(L, (lua_Integer)usg_image_text_width(s, check_scale(L, base + 1, "text_width")));
    return 1;
}

/* c:get(x, y) -> r, g, b of the pixel whose top-left corner is (x, y)
 * (0-based like every canvas coordinate); nil outside. */
static int l_get(lua_State *L)
{
    usg_image *im = check_canvas(L, 1);
    lua_Integer x = luaL_checkinteger(L, 2), y = luaL_checkinteger(L, 3);
    if (x < 0 || y < 0 || x >= im->width || y >= im->height) return 0;
    usg_rgb c = usg_image_get(im, (int)x, (int)y);
    lua_pushinteger(L, c.r);
    lua_pushinteger(L, c.g);
    lua_pushinteger(L, c.b);
    return 3;
}

/* c:encode_png() -> the PNG file's bytes as a string */
static int l_encode_png(lua_State *L)
{
    uint8_t *buf;
    size_t n;
    USG_LUA_TRY(L, usg_image_encode_png(check_canvas(L, 1), &buf, &n));
    lua_pushlstring(L, (const char *)buf, n);   /* cannot fail short of memory */
    usg_free(buf);
    return 1;
}

/* c:save_png(path) -> c */
static int l_save_png(lua_State *L)
{
    usg_image *im = check_canvas(L, 1);
    const char *path = luaL_checkstring(L, 2);
    uint8_t *buf;
    size_t n;
    USG_LUA_TRY(L, usg_image_encode_png(im, &buf, &n));
    write_file(L, "canvas:save_png", path, buf, n);
    lua_settop(L, 1);
    return 1;
}

/* ==== Tensors =========================================================== */

/* save_png(path, tensor): (H, W) grey or (H, W, 3) RGB, floats in [0, 1]
 * (clamped) or i32 in 0..255. */
static int l_save_tensor_png(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    usg_tensor *t = usg_lua_checktensor(L, 2);
    uint8_t *buf;
    size_t n;
    USG_LUA_TRY(L, usg_tensor_encode_png(t, &buf, &n));
    write_file(L, "image.save_png", path, buf, n);
    return 0;
}

/* image.load_png(path) -> an f32 tensor in [0, 1]: (H, W) grey, (H, W, 2)
 * grey + alpha, (H, W, 3) RGB or palette, (H, W, 4) RGBA. */
static int l_load_png(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "rb");
    if (!f) return luaL_error(L, "image.load_png: cannot open '%s': %s", path, strerror(errno));
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    /* a PNG of the largest image usagi reads is far below 2 GiB */
    if (n < 0 || n > (1L << 31) || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return luaL_error(L, "image.load_png: cannot read '%s' (not a regular file, or over 2 GiB)", path);
    }
    uint8_t *buf = usg_alloc(n ? (size_t)n : 1);
    if (!buf) {
        fclose(f);
        return luaL_error(L, "image.load_png: out of memory for the %I bytes of '%s'", (lua_Integer)n, path);
    }
    bool ok = fread(buf, 1, (size_t)n, f) == (size_t)n;
    int err = errno;
    fclose(f);
    if (!ok) {
        usg_free(buf);
        return luaL_error(L, "image.load_png: cannot read '%s': %s", path, strerror(err));
    }
    usg_tensor *t = NULL;
    usg_status s = usg_image_decode_png(buf, (size_t)n, &t);
    usg_free(buf);
    USG_LUA_TRY(L, s);
    usg_lua_pushtensor(L, t);                    /* ownership passes to Lua */
    return 1;
}

/* ==== Registration ====================================================== */

static const luaL_Reg canvas_methods[] = {
    {"fill", l_fill}, {"line", l_line}, {"polyline", l_polyline}, {"rect", l_rect},
    {"marker", l_marker}, {"text", l_text}, {"text_width", l_text_width}, {"get", l_get},
    {"encode_png", l_encode_png}, {"save_png", l_save_png}, {"close", l_canvas_gc},
    {NULL, NULL}};

static const luaL_Reg canvas_meta[] = {
    {"__index", l_canvas_index}, {"__gc", l_canvas_gc}, {"__close", l_canvas_gc},
    {"__tostring", l_canvas_tostring}, {NULL, NULL}};

static const luaL_Reg module_fns[] = {
    {"canvas", l_canvas}, {"save_png", l_save_tensor_png}, {"load_png", l_load_png},
    {"text_width", l_text_width}, {NULL, NULL}};

/* [usagi] -> [usagi], with usagi.image */
int usg_lua_open_image(lua_State *L)
{
    luaL_newmetatable(L, CANVAS_MT);                             /* [mod, mt] */
    luaL_setfuncs(L, canvas_meta, 0);
    luaL_newlib(L, canvas_methods);                              /* [mod, mt, methods] */
    lua_setfield(L, -2, "__methods");                            /* [mod, mt] */
    lua_pop(L, 1);                                               /* [mod] */
    luaL_newlib(L, module_fns);                                  /* [mod, image] */
    lua_createtable(L, 0, 4);                                    /* [mod, image, font] */
    lua_pushinteger(L, USG_FONT_W);
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, USG_FONT_H);
    lua_setfield(L, -2, "height");
    lua_pushinteger(L, USG_FONT_ASCENT);
    lua_setfield(L, -2, "ascent");
    lua_pushinteger(L, USG_FONT_CAP);
    lua_setfield(L, -2, "cap");
    lua_setfield(L, -2, "font");                                 /* [mod, image] */
    lua_setfield(L, -2, "image");                                /* [mod] */
    return 0;
}

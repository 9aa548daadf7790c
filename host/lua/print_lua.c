/*
 * print_lua.c -- tostring(tensor): values in aligned columns with a footer
 * giving dtype and shape, as Torch7 did; tensors past 1000 elements show the
 * first and last three entries of each dim with "..." between.
 *
 *   1.0000  2.5000  3.0000
 *   4.0000  5.0000  6.0000
 *  [usagi.Tensor f32 (2, 3)]
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"

#define EDGE 3            /* entries kept at each end of an elided dim */
#define ELIDE_OVER 1000   /* elide tensors with more elements than this */

typedef struct fmt {
    char spec[16];
    int width;
    bool elide;
} fmt;

static int format_value(char *buf, size_t n, const fmt *f, usg_dtype dt, double v)
{
    if (dt == USG_I32) return snprintf(buf, n, "%d", (int)v);
    if (isnan(v)) return snprintf(buf, n, "nan");
    if (isinf(v)) return snprintf(buf, n, v > 0 ? "inf" : "-inf");
    return snprintf(buf, n, f->spec, v);
}

/* Indices of dim d to show: all, or the first and last EDGE (-1 = "..."). */
static int shown(const fmt *f, int64_t size, int64_t *idx)
{
    int k = 0;
    if (!f->elide || size <= 2 * EDGE) {
        for (int64_t i = 0; i < size; i++) idx[k++] = i;
        return k;
    }
    for (int i = 0; i < EDGE; i++) idx[k++] = i;
    idx[k++] = -1;
    for (int i = EDGE; i > 0; i--) idx[k++] = size - i;
    return k;
}

typedef struct stats {
    double amax, amin;
    bool integral;
} stats;

/* Visit the elements that will be printed -- all of them, or the first and
 * last EDGE of each dim when elided -- and never the whole of a huge (or
 * expanded, stride-0) tensor, which would take forever. Gathers the value
 * range into st, or the widest formatted value into f->width when st is NULL. */
static void visit(fmt *f, const usg_tensor *t, int d, int64_t off, stats *st)
{
    if (d == t->ndim) {
        double v = usg_load(t->dtype, t->storage->data, off), a = fabs(v);
        if (!st) {
            char buf[64];
            int w = format_value(buf, sizeof buf, f, t->dtype, v);
            if (w > f->width) f->width = w;
        } else if (isfinite(v)) {
            if (a > st->amax) st->amax = a;
            if (a > 0 && a < st->amin) st->amin = a;
            if (v != floor(v)) st->integral = false;
        }
        return;
    }
    int64_t idx[2 * EDGE + 1];
    int64_t n = f->elide ? shown(f, t->shape[d], idx) : t->shape[d];
    for (int64_t k = 0; k < n; k++) {
        int64_t i = f->elide ? idx[k] : k;
        if (i >= 0) visit(f, t, d + 1, off + i * t->stride[d], st);
    }
}

/* Pick one format for the whole tensor from the range of the values shown. */
static void choose_format(fmt *f, const usg_tensor *t)
{
    int64_t n = usg_tensor_numel(t);
    stats st = {0, INFINITY, true};
    f->elide = n < 0 || n > ELIDE_OVER;      /* n < 0: a shape whose numel overflows */
    f->width = 1;
    visit(f, t, 0, t->offset, &st);
    if (t->dtype == USG_I32 || (st.integral && st.amax < 1e9)) strcpy(f->spec, "%.0f");
    else if (st.amax < 1e5 && st.amin >= 1e-4) strcpy(f->spec, "%.4f");
    else strcpy(f->spec, "%.4e");
    visit(f, t, 0, t->offset, NULL);
}

static void add_row(luaL_Buffer *b, const fmt *f, const usg_tensor *t, int64_t off)
{
    int d = t->ndim - 1;
    int64_t cols[ELIDE_OVER + 1];          /* not elided: size <= ELIDE_OVER */
    int nc = shown(f, t->shape[d], cols);
    char buf[96];
    for (int j = 0; j < nc; j++) {
        if (cols[j] < 0) { snprintf(buf, sizeof buf, " %*s", f->width, "..."); luaL_addstring(b, buf); continue; }
        char v[64];
        format_value(v, sizeof v, f, t->dtype,
                     usg_load(t->dtype, t->storage->data, off + cols[j] * t->stride[d]));
        snprintf(buf, sizeof buf, " %*s", f->width, v);
        luaL_addstring(b, buf);
    }
    luaL_addchar(b, '\n');
}

static void add_matrix(luaL_Buffer *b, const fmt *f, const usg_tensor *t, int64_t off)
{
    int64_t rows[2 * EDGE + 1];
    int d = t->ndim - 2;
    if (!f->elide) {
        for (int64_t i = 0; i < t->shape[d]; i++) add_row(b, f, t, off + i * t->stride[d]);
        return;
    }
    int nr = shown(f, t->shape[d], rows);
    for (int i = 0; i < nr; i++) {
        if (rows[i] < 0) { luaL_addstring(b, " ...\n"); continue; }
        add_row(b, f, t, off + rows[i] * t->stride[d]);
    }
}

/* Dims before the last two: one "(i,j,.,.) =" block per matrix. */
static void add_blocks(luaL_Buffer *b, const fmt *f, const usg_tensor *t, int d, int64_t off,
                       int64_t *pos)
{
    if (d == t->ndim - 2) {
        char buf[32];
        luaL_addchar(b, '(');
        for (int i = 0; i < d; i++) {
            snprintf(buf, sizeof buf, "%lld,", (long long)pos[i] + 1);
            luaL_addstring(b, buf);
        }
        luaL_addstring(b, ".,.) =\n");
        add_matrix(b, f, t, off);
        luaL_addchar(b, '\n');
        return;
    }
    if (d >= USG_MAX_DIMS - 2) return;    /* never (ndim <= USG_MAX_DIMS); tells GCC's bounds check */
    int64_t idx[2 * EDGE + 1 + 1];
    if (!f->elide) {
        for (int64_t i = 0; i < t->shape[d]; i++) {
            pos[d] = i;
            add_blocks(b, f, t, d + 1, off + i * t->stride[d], pos);
        }
        return;
    }
    int n = shown(f, t->shape[d], idx);
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0) { luaL_addstring(b, "...\n\n"); continue; }
        pos[d] = idx[i];
        add_blocks(b, f, t, d + 1, off + idx[i] * t->stride[d], pos);
    }
}

int usg_lua_tensor_tostring(lua_State *L)
{
    usg_tensor *t = usg_lua_checktensor(L, 1);
    luaL_Buffer b;
    fmt f;
    char buf[300], shape[256];
    luaL_buffinit(L, &b);
    choose_format(&f, t);
    if (usg_tensor_numel(t) == 0) {
        luaL_addstring(&b, "[empty]\n");
    } else if (t->ndim == 0) {               /* a scalar reads on one line: 2.5000 [usagi.Tensor f32 ()] */
        format_value(buf, sizeof buf, &f, t->dtype, usg_tensor_get(t, NULL));
        luaL_addstring(&b, buf);
        luaL_addchar(&b, ' ');
    } else if (t->ndim == 1) {
        add_row(&b, &f, t, t->offset);
    } else if (t->ndim == 2) {
        add_matrix(&b, &f, t, t->offset);
    } else {
        int64_t pos[USG_MAX_DIMS] = {0};
        add_blocks(&b, &f, t, 0, t->offset, pos);
    }
    snprintf(buf, sizeof buf, "[usagi.Tensor %s %s]", usg_dtype_name(t->dtype),
             usg_shape_str(shape, sizeof shape, t->ndim, t->shape));
    luaL_addstring(&b, buf);
    luaL_pushresult(&b);
    return 1;
}

/*
 * birnn.c -- the one op bidirectional recurrent nets need beyond their
 * forward layers: each sequence reversed within its own length, as an
 * autograd op, so the reverse direction starts at each sequence's own end.
 *
 *   y[t, b] = x[len_b - 1 - t, b]    for t < len_b
 *   y[t, b] = x[t, b]                 for t >= len_b (the padding stays put)
 *
 * It is its own inverse, so its backward is the same reversal of the
 * gradient. With no lengths, every sequence is reversed whole. The Lua face
 * (birnn.lua) runs a layer forward on x and on reverse(x), reverses the
 * second output back and joins the two.
 */
#include <string.h>

#include "usagi/autograd.h"
#include "usagi/lua.h"

/* y (T, B, n) <- x reversed per sequence; both contiguous, len NULL or (B). */
static void reverse_padded(usg_tensor *y, const usg_tensor *x, const int32_t *len)
{
    int64_t T = x->shape[0], B = x->shape[1], n = x->shape[2];
    size_t row = (size_t)n * usg_dtype_size(x->dtype);
    const char *src = usg_tensor_data(x);
    char *dst = usg_tensor_data(y);
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) {
            int64_t lb = len ? len[b] : T, from = t < lb ? lb - 1 - t : t;
            memcpy(dst + (size_t)(t * B + b) * row, src + (size_t)(from * B + b) * row, row);
        }
}

typedef struct rev_ctx {
    bool has_len;
} rev_ctx;

/* dL/dx = reverse(dL/dy): the reversal is its own inverse */
static usg_status reverse_backward(usg_node *n, usg_tensor *const *gout, usg_tensor **gin)
{
    const rev_ctx *c = usg_node_ctx(n);
    usg_tensor *len = c->has_len ? usg_node_saved(n, 0) : NULL, *g = NULL;
    if (!gout[0] || !usg_node_needs_grad(n, 0)) return USG_OK;
    usg_status s = usg_contiguous(&g, gout[0]);
    if (s == USG_OK) s = usg_tensor_empty(&gin[0], g->dtype, 3, g->shape);
    if (s == USG_OK) reverse_padded(gin[0], g, len ? usg_tensor_data(len) : NULL);
    usg_tensor_release(g);
    return s;
}

static const usg_op reverse_op = {"birnn.reverse", reverse_backward, NULL};

/* usg_ad_reverse_padded(&y, x, lengths): x (T, B, n) any float or int
 * tensor, lengths NULL or i32 (B) in 1..T. */
static usg_status ad_reverse_padded(usg_tensor **y, usg_tensor *x, usg_tensor *lengths)
{
    char b1[256];
    *y = NULL;
    if (x->ndim != 3)
        return usg_fail(USG_SHAPE, "birnn.reverse: input must be 3-D (T, B, n), got %s",
                        usg_shape_str(b1, sizeof b1, x->ndim, x->shape));
    usg_status s = usg_rec_check_lengths("birnn.reverse", lengths, x);
    usg_tensor *xc = NULL, *len = NULL;
    if (s == USG_OK) s = usg_contiguous(&xc, x);
    if (s == USG_OK && lengths) s = usg_contiguous(&len, lengths);
    if (s == USG_OK) s = usg_tensor_empty(y, x->dtype, 3, x->shape);
    if (s == USG_OK) reverse_padded(*y, xc, len ? usg_tensor_data(len) : NULL);
    usg_node *n = NULL;
    rev_ctx *ctx = NULL;
    if (s == USG_OK && usg_grad_needed(1, &x)) {
        if (!(ctx = usg_alloc(sizeof *ctx))) s = USG_NOMEM;
        else {
            ctx->has_len = len != NULL;
            s = usg_node_begin(&n, &reverse_op, 1, &x, ctx);
            if (s == USG_OK && n) {
                if (len) s = usg_node_save(n, len);
                s = usg_node_finish(n, 1, y, s);
            }
        }
    }
    usg_tensor_release(xc);
    usg_tensor_release(len);
    if (s != USG_OK) {
        usg_tensor_release(*y);
        *y = NULL;
    }
    return s;
}

/* birnn.reverse(x [, lengths]) -> y: each sequence of x (T, B, n) reversed
 * within its length (i32 (B) tensor, or nil for all T), differentiable. */
static int l_reverse(lua_State *L)
{
    usg_tensor *x = usg_lua_checktensor(L, 1);
    usg_tensor *len = lua_isnoneornil(L, 2) ? NULL : usg_lua_checktensor(L, 2);
    usg_tensor *y;
    USG_LUA_TRY(L, ad_reverse_padded(&y, x, len));
    usg_lua_pushtensor(L, y);
    return 1;
}

static const luaL_Reg birnn_functions[] = {{"reverse", l_reverse}, {NULL, NULL}};

USG_API int luaopen_usagi_birnn(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "birnn", "0.1.0", birnn_functions);
}

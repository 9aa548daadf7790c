/*
 * binding.h -- what the binding's own files share and plugins need not see.
 */
#ifndef USAGI_BINDING_H
#define USAGI_BINDING_H

#include "usagi/lua.h"
#include "usagi/ops.h"

/* The Lua stack must have the usagi module table on top when a binding
 * file's opener runs; each one adds its functions and methods. */
int usg_lua_open_tensor(lua_State *L);
int usg_lua_open_math(lua_State *L);
/* usagi.op_table and the ops generated from the op tables of host/ops/ (ops_lua.c). */
int usg_lua_open_ops(lua_State *L);
int usg_lua_open_math_ops(lua_State *L);
int usg_lua_open_reduce_ops(lua_State *L);
int usg_lua_open_nn_ops(lua_State *L);
int usg_lua_open_index_ops(lua_State *L);
int usg_lua_open_view_ops(lua_State *L);
int usg_lua_open_create_ops(lua_State *L);
int usg_lua_open_random_ops(lua_State *L);
/* dropout's call (random_lua.c): out and, when training, the mask. */
usg_status usg_lua_dropout(usg_tensor **out, usg_tensor **mask, usg_rng *rng, usg_tensor *x,
                           double p, bool training);
/* Raise the core's last error with its function name replaced by fn
 * (t:int() reports as int, not as the core's 'to'). Never returns. */
int usg_lua_error_as(lua_State *L, const char *fn);
int usg_lua_open_random(lua_State *L);
int usg_lua_open_autograd(lua_State *L);
int usg_lua_open_plugin(lua_State *L);
int usg_lua_open_optim(lua_State *L);
int usg_lua_open_h5(lua_State *L);
int usg_lua_open_sys(lua_State *L);
int usg_lua_open_image(lua_State *L);

/* __tostring of a Tensor (print_lua.c). */
int usg_lua_tensor_tostring(lua_State *L);
/* Push element v of dtype dt as a Lua integer (i32) or float. */
void usg_lua_pushelem(lua_State *L, usg_dtype dt, double v);
/* The tensor at idx, or a 0-dim tensor made from the number there: i32 for
 * an integer that fits in 32 bits, else f32 (tests/lua/number_args_spec.lua).
 * The new tensor replaces the number on the stack, which owns it, so *owned
 * is always set to NULL; callers release it anyway, which keeps them right
 * should a caller's stack ever not hold it. */
usg_tensor *usg_lua_checktensor_or_number(lua_State *L, int idx, usg_tensor **owned);

#endif

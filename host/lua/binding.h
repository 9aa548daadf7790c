/*
 * binding.h -- what the binding's own files share and plugins need not see.
 */
#ifndef USAGI_BINDING_H
#define USAGI_BINDING_H

#include "usagi/lua.h"
#include "usagi/ops.h"

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

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
/* The tensor at idx, or a 0-dim f64 tensor made from the number there
 * (a new reference in *owned to release, or NULL). */
usg_tensor *usg_lua_checktensor_or_number(lua_State *L, int idx, usg_tensor **owned);

#endif

/*
 * usagi/lua.h -- the face of the Lua binding that plugins build on: getting
 * tensors in and out of Lua, raising errors, the run's generator, and
 * registering functions and Tensor methods.
 *
 * The binding (libusagi_lua) and plugins take lua_* from the process (the
 * usagi executable, or a stock lua5.4); they never link a Lua core.
 */
#ifndef USAGI_LUA_H
#define USAGI_LUA_H

#include <lua.h>
#include <lauxlib.h>
#include "usagi/core.h"
#include "usagi/random.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USG_TENSOR_MT "usagi.Tensor"

/* The tensor at idx, or a Lua error "bad argument #idx to 'fn' (usagi.Tensor
 * expected, got nil)". The reference stays with Lua. */
USG_API usg_tensor *usg_lua_checktensor(lua_State *L, int idx);
/* The tensor at idx, or NULL when it is not one. */
USG_API usg_tensor *usg_lua_totensor(lua_State *L, int idx);
/* Push t as a Lua value. Ownership of the caller's reference passes to Lua
 * (its __gc releases it). Tells the GC about the storage bytes, so memory
 * stays flat in training loops without collectgarbage(). */
USG_API void usg_lua_pushtensor(lua_State *L, usg_tensor *t);
/* Raise the core's last error (usg_errmsg) as a Lua error with the caller's
 * position. Never returns. */
USG_API int usg_lua_error(lua_State *L);
#define USG_LUA_TRY(L, call) \
    do { if ((call) != USG_OK) usg_lua_error(L); } while (0)

/* A 1-based (or negative) Lua dim at idx -> 0-based; argerror when out of
 * range for ndim (+ ndim_plus). */
USG_API int usg_lua_checkdim(lua_State *L, int idx, int ndim, int ndim_plus);
/* Optional dim: USG_ALL_DIMS when none/nil. */
USG_API int usg_lua_optdim(lua_State *L, int idx, int ndim);
/* A shape given as numbers from idx on (`zeros(2, 3)`), or as a table
 * (`zeros{2, 3}`), or a usagi.Size. Each size must be a non-negative
 * integer. Returns the number of stack slots consumed. */
USG_API int usg_lua_checkshape(lua_State *L, int idx, int *ndim, int64_t *shape);
/* 'f32' | 'f64' | 'i32' at idx (or a default when none/nil). */
USG_API usg_dtype usg_lua_optdtype(lua_State *L, int idx, usg_dtype def);
/* Push a shape as a usagi.Size table ({2, 3} that prints as "(2, 3)"). */
USG_API void usg_lua_pushsize(lua_State *L, int ndim, const int64_t *shape);

/* Make L raise the error msg (a string that outlives the call), with the
 * position of the code it stopped when `where`, at its next Lua step. Safe
 * in a signal handler: lua.c's way to stop running Lua code on Ctrl-C, for
 * the REPL and for a run's signals. */
USG_API void usg_lua_interrupt(lua_State *L, const char *msg, bool where);

/* The run's generator (seeded by usagi.manual_seed). */
USG_API usg_rng *usg_lua_rng(lua_State *L);
/* Every key of the options table at idx must be one of `known` (NULL-ended);
 * otherwise the error "fn: unknown option 'k'". */
USG_API void usg_lua_check_opts(lua_State *L, int idx, const char *fn, const char *const *known);

/* ==== What the generated bindings call (host/ops/gen.lua) ==============
 * A plugin's op table (host/ops/README.md) is turned into C that calls
 * these; hand-written bindings may call them too. */
/* The index of the first of sigs (NULL-ended) that the arguments fit, or a
 * Lua error naming the first argument no overload takes and what would do
 * there. A sig has one code per argument: T tensor, n number, b boolean,
 * t table, x tensor or number, p number or string, z a shape (number or
 * table), d a dtype (string or table), L a list of tensors (table or
 * tensor); '?' after a code makes
 * that argument optional (none or nil fit). Arguments past a sig are not
 * looked at. */
USG_API int usg_lua_overload(lua_State *L, const char *const *sigs);
/* The boolean at idx, or "bad argument (boolean expected, got ...)". */
USG_API bool usg_lua_checkboolean(lua_State *L, int idx);
/* The p of a norm at idx: a number, 'inf' (math.huge) or 'fro' (2). */
USG_API double usg_lua_checknorm_p(lua_State *L, int idx);
/* Read the options table at idx into *dst[k] for names[k] (NULL-ended),
 * which keep their defaults when absent. kinds[k] says what dst[k] points
 * to: 'n' a double, 'i' an int (the value an integer that fits), 'b' a
 * bool, 'd' a usg_dtype, 's' a const char *, 'T' a usg_tensor * (both
 * borrowed: the table keeps them). An unknown key
 * or a value of the wrong kind is the error "fn: unknown option 'k'
 * (expected a or b)" or "fn: option 'k' must be ...". */
USG_API void usg_lua_options(lua_State *L, int idx, const char *fn, const char *const *names,
                             const char *kinds, void *const *dst);
/* The index of value among choices (NULL-ended), def when value is NULL,
 * or the error "fn: what must be 'a', 'b' or 'c', got 'x'". */
USG_API int usg_lua_choice(lua_State *L, const char *fn, const char *what, const char *value,
                           const char *const *choices, int def);
/* Push an index result: the tensor ix, or, when every dim was reduced away
 * (dim USG_ALL_DIMS, no keepdim), its one element as a Lua integer. Takes
 * the caller's reference to ix. */
USG_API void usg_lua_push_index(lua_State *L, usg_tensor *ix, int dim, bool keepdim);
/* The argument kinds that take the rest of the arguments. */
/* A shape from argument idx on, no further than `last`: sizes as numbers
 * (all but the last `reserve` numbers, which are later arguments: full(2,
 * 3, value)), or one table or usagi.Size. Sizes are non-negative integers;
 * flags: USG_LUA_SHAPE_NEG allows negatives (view's -1), USG_LUA_SHAPE_VIEW
 * refuses a numel past int64 with "fn: shape (...) has too many elements".
 * Returns the index of the argument after the shape. */
#define USG_LUA_SHAPE_NEG 1
#define USG_LUA_SHAPE_VIEW 2
USG_API int usg_lua_shape(lua_State *L, int idx, int last, int reserve, int flags, const char *fn,
                          int *ndim, int64_t *shape);
/* All ndim dims of a tensor (permute's) from idx on: numbers or one table,
 * each 1-based or negative; "fn: expected 2 dims for a 2-D tensor, got 3".
 * Returns the index of the argument after them. */
USG_API int usg_lua_dims(lua_State *L, int idx, int last, int ndim, const char *fn, int *dims);
/* A list of tensors at idx: a table of them, or the tensors themselves
 * (Torch7's torch.cat(a, b)). *ts points into a userdata pushed above the
 * arguments (the `after` declared arguments that follow get their slots
 * first), so an error cannot leak it; the tensors stay referenced by the
 * table or the stack. Returns the index of the argument after the list. */
USG_API int usg_lua_tensors(lua_State *L, int idx, int after, usg_tensor ***ts, int *n);
/* Is the table at top the options that trail a rest at index `rest`, not
 * the rest's own table? Yes when it comes after the rest's first slot or
 * has no sizes in it ({dtype = 'f64'}); a usagi.Size never is. */
USG_API bool usg_lua_trailing_options(lua_State *L, int top, int rest);
/* "bad argument #next (unexpected argument after the <after>)" when an
 * argument other than nil is given at next <= last. */
USG_API void usg_lua_check_end(lua_State *L, int next, int last, const char *after);
/* A dtype at idx: 'f32', 'f64' or 'i32', or a table {dtype = ...}; def when
 * absent. A table with another key is "fn: unknown option 'k'". */
USG_API usg_dtype usg_lua_dtype_arg(lua_State *L, int idx, usg_dtype def, const char *fn);
/* A list result: the core fills ts (allocated with usg_malloc) and n;
 * usg_lua_pushlist hands each tensor to Lua in a table. Until then the
 * userdata owns them, so an error in between leaks nothing. */
typedef struct usg_lua_list {
    usg_tensor **ts;
    int n;
} usg_lua_list;
USG_API usg_lua_list *usg_lua_newlist(lua_State *L);
USG_API int usg_lua_pushlist(lua_State *L, usg_lua_list *p);
/* Add the op declarations of a generated binding (a Lua chunk returning
 * {family = name, ops = {...}}) to the list usagi.op_table() gives, each op
 * marked with its module (usagi, or the plugin's name). */
USG_API void usg_lua_add_ops(lua_State *L, const char *module, const char *chunk, size_t len);

/* Register fns into the table at the top of the stack (when `module`) and
 * as Tensor methods (when `method`); either may be false. */
USG_API void usg_lua_register(lua_State *L, const luaL_Reg *fns, int module, int method);

/* ==== Plugins ===========================================================
 * A plugin's entry point is one line:
 *
 *   USG_API int luaopen_usagi_rnn(lua_State *L)
 *   { return USG_PLUGIN_OPEN(L, "rnn", "0.1.0", rnn_functions); }
 *
 * It refuses to load when the plugin was built against another ABI (the
 * message prints both numbers; the loader has checked usg_plugin_abi,
 * below, before the opener runs), registers name and version for
 * usagi.plugins(), makes the module table from fns, and runs the plugin's
 * Lua face (embedded by usagi_add_plugin) as a chunk receiving that table;
 * what the chunk returns (or the table) is the module. */
USG_API int usg_lua_plugin_open(lua_State *L, const char *name, const char *version, int abi,
                                const luaL_Reg *fns, const char *face, size_t face_size);
/* The ABI a plugin was built for, exported by every plugin and read by the
 * loader (require, the REPL's :reload) before the plugin's opener runs: a
 * plugin without it, or with another number, is refused. usagi_add_plugin
 * defines it; a plugin built some other way writes `USG_PLUGIN_ABI;` at
 * file scope in one of its C files. */
#define USG_PLUGIN_ABI_SYMBOL "usg_plugin_abi"
USG_API extern const int usg_plugin_abi;
#define USG_PLUGIN_ABI const int usg_plugin_abi = USG_ABI_VERSION
extern const char usg_plugin_lua[];
extern const size_t usg_plugin_lua_size;
#define USG_PLUGIN_OPEN(L, name, version, fns) \
    usg_lua_plugin_open(L, name, version, USG_ABI_VERSION, fns, usg_plugin_lua, usg_plugin_lua_size)

USG_API int luaopen_usagi(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif

/* A plugin without its luaopen_usagi_no_entry symbol: require must fail
 * and name the symbol. */
#include "usagi/lua.h"

USG_PLUGIN_ABI;

USG_API int luaopen_usagi_something_else(lua_State *L)
{
    lua_pushboolean(L, 1);
    return 1;
}

/* A plugin built for another ABI: loading it must fail, naming both. */
#include "usagi/lua.h"

USG_API int luaopen_usagi_wrong_abi(lua_State *L)
{
    return usg_lua_plugin_open(L, "wrong_abi", "0.0.1", USG_ABI_VERSION + 1, NULL, NULL, 0);
}

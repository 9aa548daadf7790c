/* A plugin whose usg_plugin_abi is right but whose opener asks
 * usg_lua_plugin_open for another ABI: the opener's own check must refuse
 * it, naming both. */
#include "usagi/lua.h"

USG_PLUGIN_ABI;

USG_API int luaopen_usagi_open_abi(lua_State *L)
{
    return usg_lua_plugin_open(L, "open_abi", "0.0.1", USG_ABI_VERSION + 1, NULL, NULL, 0);
}

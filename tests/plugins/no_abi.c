/* A plugin built without usagi_add_plugin and without USG_PLUGIN_ABI, whose
 * opener skips USG_PLUGIN_OPEN: nothing would check its ABI, so the loader
 * must refuse it, say how to build it, and never run the opener (which
 * would set the global no_abi_opened). */
#include "usagi/lua.h"

USG_API int luaopen_usagi_no_abi(lua_State *L)
{
    lua_pushboolean(L, 1);
    lua_setglobal(L, "no_abi_opened");
    lua_newtable(L);
    return 1;
}

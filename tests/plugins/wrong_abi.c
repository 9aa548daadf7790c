/* A plugin built for another ABI whose opener skips USG_PLUGIN_OPEN: the
 * loader must refuse it from usg_plugin_abi alone, naming both ABIs,
 * before the opener runs (the opener would set the global
 * wrong_abi_opened). */
#include "usagi/lua.h"

const int usg_plugin_abi = USG_ABI_VERSION + 1;

USG_API int luaopen_usagi_wrong_abi(lua_State *L)
{
    lua_pushboolean(L, 1);
    lua_setglobal(L, "wrong_abi_opened");
    lua_newtable(L);
    return 1;
}

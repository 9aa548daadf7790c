/*
 * vae_lua.c -- the binding of the VAE plugin: `require 'usagi.vae'` loads
 * usagi/vae.so, whose entry point registers vae.gaussian and runs the Lua
 * face (vae.lua). The op is in vae.c.
 *
 *   local vae = require 'usagi.vae'
 *   local z, kl = vae.gaussian(mu, logvar, eps)                 -- prior N(0, I)
 *   local z, kl = vae.gaussian(mu, logvar, eps, mu_p, logvar_p) -- a learned prior
 */
#include "usagi/lua.h"

usg_status usg_ad_gaussian(usg_tensor **z, usg_tensor **kl, usg_tensor *mu, usg_tensor *lv,
                           usg_tensor *eps, usg_tensor *mup, usg_tensor *lvp);

static int l_gaussian(lua_State *L)
{
    usg_tensor *mu = usg_lua_checktensor(L, 1), *lv = usg_lua_checktensor(L, 2);
    usg_tensor *eps = usg_lua_checktensor(L, 3);
    usg_tensor *mup = lua_isnoneornil(L, 4) ? NULL : usg_lua_checktensor(L, 4);
    usg_tensor *lvp = lua_isnoneornil(L, 5) ? NULL : usg_lua_checktensor(L, 5);
    usg_tensor *z, *kl;
    USG_LUA_TRY(L, usg_ad_gaussian(&z, &kl, mu, lv, eps, mup, lvp));
    usg_lua_pushtensor(L, z);
    usg_lua_pushtensor(L, kl);
    return 2;
}

static const luaL_Reg vae_functions[] = {{"gaussian", l_gaussian}, {NULL, NULL}};

USG_API int luaopen_usagi_vae(lua_State *L)
{
    return USG_PLUGIN_OPEN(L, "vae", "0.1.0", vae_functions);
}

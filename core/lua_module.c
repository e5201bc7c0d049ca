/* lua_module.c — luaopen_lgrpc_core: assembles `lgrpc.core` from the binding files.
 * Holds no logic of its own: each part is opened by the file that owns it. */
#include <lauxlib.h>
#include "lua_bind.h"

#include "version.h"

int luaopen_lgrpc_core(lua_State *L)
{
  lua_newtable(L);
  lua_pushliteral(L, LGRPC_VERSION);
  lua_setfield(L, -2, "version");
  lgrpc_lua_open_codec(L);
  lua_setfield(L, -2, "codec");
  lgrpc_lua_open_net(L);
  lua_setfield(L, -2, "net");
  lgrpc_lua_open_json(L);
  lua_setfield(L, -2, "json");
  lgrpc_lua_open_tls(L);
  lua_setfield(L, -2, "tls");
  lgrpc_lua_open_auth(L);
  lua_setfield(L, -2, "auth");
  return 1;
}

/* lua_auth.c — placeholder until its owner lands it. */
#include "lua_bind.h"
int lgrpc_lua_open_auth(lua_State *L) { lua_newtable(L); return 1; }

/* lua_bind.h — the binding layer's internal entry points.
 * Only files named lua_*.c include lua.h; each opens one part of the `lgrpc.core` module and
 * leaves one table on the stack. The protocol and codec files never see a lua_State. */
#ifndef LGRPC_LUA_BIND_H
#define LGRPC_LUA_BIND_H
#include <lua.h>

int lgrpc_lua_open_codec(lua_State *L); /* lua_codec.c: schemas, encode, decode */
int lgrpc_lua_open_net(lua_State *L);   /* lua_net.c: sessions, loop, sockets */
int lgrpc_lua_open_json(lua_State *L);  /* lua_json.c: the C JSON reader and writer */
int lgrpc_lua_open_tls(lua_State *L);   /* lua_tls.c: TLS contexts and filters */
int lgrpc_lua_open_auth(lua_State *L);  /* lua_auth.c: JWT and bearer verification */

#endif

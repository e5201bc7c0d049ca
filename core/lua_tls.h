/* lua_tls.h — what the other binding files use of lua_tls.c: TLS context userdata given to
 * loop:listen / loop:connect, and the tables that describe a TLS connection. Binding layer
 * only (includes lua.h). */
#ifndef LGRPC_LUA_TLS_H
#define LGRPC_LUA_TLS_H
#include <lua.h>
#include "tls.h"

/* The context of the `lgrpc.core.tls` context userdata at idx; raises if it is something else. */
lgrpc_tls_ctx *lgrpc_lua_tls_checkcontext(lua_State *L, int idx);
/* Pushes { version, cipher, alpn, resumed, server_name, peer_identity = {...} | nil }. */
void lgrpc_lua_tls_push_info(lua_State *L, lgrpc_tls *t);

#endif

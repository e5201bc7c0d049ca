/* lua_tls.c — `lgrpc.core.tls`: Lua objects over core/tls.c. A context (credentials, trust,
 * versions) and sans-IO connections that turn socket bytes into plaintext and back through Lua
 * strings, so specs and other drivers (cosockets) can run TLS without the epoll loop.
 * Option checking and table building live here; the TLS work is all in tls.c. */
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "lua_bind.h"
#include "lua_tls.h"

#define MT_CONTEXT "lgrpc.tls.context"
#define MT_CONN "lgrpc.tls.connection"

typedef struct lcontext { lgrpc_tls_ctx *c; } lcontext;  /* one reference */
typedef struct lconn { lgrpc_tls *t; } lconn;             /* owned */

static void *checkud(lua_State *L, int i, const char *mt)
{
  void *p = lua_touserdata(L, i);
  if (p && lua_getmetatable(L, i)) {
    luaL_getmetatable(L, mt);
    int eq = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (eq) return p;
  }
  luaL_error(L, "bad argument #%d (%s expected, got %s)", i, mt + 10, luaL_typename(L, i));
  return NULL;
}

static int fail(lua_State *L, const char *msg)
{
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

/* ---- options ----------------------------------------------------------------------------- */

static const char *opt_string(lua_State *L, int t, const char *k)
{
  lua_getfield(L, t, k);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "tls option %s: string expected, got %s", k, luaL_typename(L, -1));
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays alive in the options table */
  return s;
}

static int opt_bool(lua_State *L, int t, const char *k)
{
  lua_getfield(L, t, k);
  int v = 0;
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1)) luaL_error(L, "tls option %s: boolean expected, got %s", k, luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* "1.2" | "1.3" (a number 1.2 / 1.3 also reads); 0 when absent, -1 when unknown */
static int opt_version(lua_State *L, int t, const char *k)
{
  lua_getfield(L, t, k);
  int v = 0;
  if (!lua_isnil(L, -1)) {
    if (!lua_isstring(L, -1)) luaL_error(L, "tls option %s: string expected, got %s", k, luaL_typename(L, -1));
    const char *s = lua_tostring(L, -1);
    v = strcmp(s, "1.2") == 0 ? 0x0303 : strcmp(s, "1.3") == 0 ? 0x0304 : -1;
  }
  lua_pop(L, 1);
  return v;
}

/* tls.context{ role = "server"|"client", cert=, key=, cert_file=, key_file=, ca=, ca_file=,
 *   client_auth = "none"|"request"|"require", insecure_skip_verify = bool,
 *   min_version = "1.2"|"1.3", max_version =, handshake_timeout = ms } */
static int tls_context(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lgrpc_tls_options o;
  memset(&o, 0, sizeof o);
  const char *role = opt_string(L, 1, "role");
  if (!role || (strcmp(role, "server") && strcmp(role, "client")))
    return luaL_error(L, "tls option role: \"server\" or \"client\" expected");
  o.server = role[0] == 's';
  o.cert = opt_string(L, 1, "cert");
  o.key = opt_string(L, 1, "key");
  o.ca = opt_string(L, 1, "ca");
  o.cert_file = opt_string(L, 1, "cert_file");
  o.key_file = opt_string(L, 1, "key_file");
  o.ca_file = opt_string(L, 1, "ca_file");
  o.insecure_skip_verify = opt_bool(L, 1, "insecure_skip_verify");
  const char *auth = opt_string(L, 1, "client_auth");
  if (!auth || strcmp(auth, "none") == 0) o.client_auth = LGRPC_TLS_AUTH_NONE;
  else if (strcmp(auth, "request") == 0) o.client_auth = LGRPC_TLS_AUTH_REQUEST;
  else if (strcmp(auth, "require") == 0) o.client_auth = LGRPC_TLS_AUTH_REQUIRE;
  else return fail(L, "client_auth: \"none\", \"request\" or \"require\" expected");
  if (!o.server && auth) return fail(L, "client_auth is a server option");
  if (o.server && o.insecure_skip_verify) return fail(L, "insecure_skip_verify is a client option");
  o.min_version = opt_version(L, 1, "min_version");
  o.max_version = opt_version(L, 1, "max_version");
  if (o.min_version < 0) return fail(L, "min_version: \"1.2\" or \"1.3\" expected");
  if (o.max_version < 0) return fail(L, "max_version: \"1.2\" or \"1.3\" expected");
  lua_getfield(L, 1, "handshake_timeout");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) return luaL_error(L, "tls option handshake_timeout: number expected, got %s", luaL_typename(L, -1));
    lua_Number ms = lua_tonumber(L, -1);
    if (ms < 0 || ms > 1e12) return fail(L, "handshake_timeout: out of range");
    o.handshake_timeout = (int64_t)ms;
  }
  lua_pop(L, 1);
  char err[512];
  lgrpc_tls_ctx *c = lgrpc_tls_ctx_new(&o, err, sizeof err);
  if (!c) return fail(L, err);
  lcontext *lc = lua_newuserdata(L, sizeof *lc);
  lc->c = c;
  luaL_getmetatable(L, MT_CONTEXT);
  lua_setmetatable(L, -2);
  return 1;
}

lgrpc_tls_ctx *lgrpc_lua_tls_checkcontext(lua_State *L, int idx)
{
  lcontext *lc = checkud(L, idx, MT_CONTEXT);
  if (!lc->c) luaL_error(L, "tls context is closed");
  return lc->c;
}

static int cx_gc(lua_State *L)
{
  lcontext *lc = lua_touserdata(L, 1);
  if (lc && lc->c) { lgrpc_tls_ctx_unref(lc->c); lc->c = NULL; }
  return 0;
}

static int cx_role(lua_State *L)
{
  lcontext *lc = checkud(L, 1, MT_CONTEXT);
  if (!lc->c) return luaL_error(L, "tls context is closed");
  lua_pushstring(L, lgrpc_tls_ctx_is_server(lc->c) ? "server" : "client");
  return 1;
}

/* ctx:connection(server_name?) -> connection */
static int cx_connection(lua_State *L)
{
  lcontext *lc = checkud(L, 1, MT_CONTEXT);
  if (!lc->c) return luaL_error(L, "tls context is closed");
  const char *name = luaL_optstring(L, 2, NULL);
  lconn *cn = lua_newuserdata(L, sizeof *cn);
  cn->t = NULL;
  luaL_getmetatable(L, MT_CONN);
  lua_setmetatable(L, -2);
  char err[300];
  cn->t = lgrpc_tls_new(lc->c, name, err, sizeof err);
  if (!cn->t) return fail(L, err);
  return 1;
}

/* ---- connections ------------------------------------------------------------------------- */

static lgrpc_tls *live_conn(lua_State *L)
{
  lconn *cn = checkud(L, 1, MT_CONN);
  if (!cn->t) luaL_error(L, "tls connection is closed");
  return cn->t;
}

static int cn_gc(lua_State *L)
{
  lconn *cn = lua_touserdata(L, 1);
  if (cn && cn->t) { lgrpc_tls_free(cn->t); cn->t = NULL; }
  return 0;
}

static int conn_error(lua_State *L, lgrpc_tls *t, int rc)
{
  const char *r = lgrpc_tls_error(t);
  return fail(L, *r ? r : lgrpc_tls_strerror(rc));
}

/* conn:decode(raw) -> plaintext | nil, reason */
static int cn_decode(lua_State *L)
{
  lgrpc_tls *t = live_conn(L);
  size_t n;
  const char *raw = luaL_checklstring(L, 2, &n);
  lgrpc_bytes plain = {0};
  int rc = lgrpc_tls_decode(t, raw, n, &plain);
  if (rc < 0) { lgrpc_bytes_free(&plain); return conn_error(L, t, rc); }
  lua_pushlstring(L, plain.data ? plain.data : "", plain.len);
  lgrpc_bytes_free(&plain);
  return 1;
}

/* conn:encode(plaintext?) -> raw | nil, reason (raw bytes, alerts included, come out even after
 * a failure when no plaintext is given) */
static int cn_encode(lua_State *L)
{
  lgrpc_tls *t = live_conn(L);
  size_t n = 0;
  const char *plain = luaL_optlstring(L, 2, "", &n);
  lgrpc_bytes raw = {0};
  int rc = lgrpc_tls_encode(t, plain, n, &raw);
  if (rc < 0 && (n || raw.len == 0)) { lgrpc_bytes_free(&raw); return conn_error(L, t, rc); }
  lua_pushlstring(L, raw.data ? raw.data : "", raw.len);
  lgrpc_bytes_free(&raw);
  return 1;
}

static int cn_want_write(lua_State *L)
{
  lua_pushboolean(L, lgrpc_tls_want_write(live_conn(L)));
  return 1;
}

static int cn_state(lua_State *L)
{
  static const char *names[] = {"", "handshake", "open", "failed", "closed"};
  lua_pushstring(L, names[lgrpc_tls_state(live_conn(L))]);
  return 1;
}

static int cn_error(lua_State *L)
{
  const char *r = lgrpc_tls_error(live_conn(L));
  if (*r) lua_pushstring(L, r); else lua_pushnil(L);
  return 1;
}

static int cn_close(lua_State *L)
{
  lgrpc_tls_close(live_conn(L));
  return 0;
}

static int cn_tick(lua_State *L)
{
  lgrpc_tls *t = live_conn(L);
  lgrpc_tls_tick(t, (int64_t)luaL_checknumber(L, 2));
  return 0;
}

static int cn_next_deadline(lua_State *L)
{
  int64_t when;
  if (lgrpc_tls_next_deadline(live_conn(L), &when)) lua_pushnumber(L, (lua_Number)when);
  else lua_pushnil(L);
  return 1;
}

static void setstr(lua_State *L, const char *k, const char *v)
{
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* conn:info() -> { version, cipher, alpn, resumed, server_name } */
static int cn_info(lua_State *L)
{
  lgrpc_tls *t = live_conn(L);
  lua_createtable(L, 0, 5);
  setstr(L, "version", lgrpc_tls_version(t));
  setstr(L, "cipher", lgrpc_tls_cipher(t));
  setstr(L, "alpn", lgrpc_tls_alpn(t));
  setstr(L, "server_name", lgrpc_tls_server_name(t));
  lua_pushboolean(L, lgrpc_tls_resumed(t));
  lua_setfield(L, -2, "resumed");
  return 1;
}

/* Pushes the peer identity table of a connection, or nil before the handshake ends or when the
 * peer sent no certificate. */
static void push_identity(lua_State *L, lgrpc_tls *t)
{
  const lgrpc_tls_identity *id = lgrpc_tls_peer(t);
  if (!id || !id->present) { lua_pushnil(L); return; }
  lua_createtable(L, 0, 9);
  setstr(L, "subject", id->subject);
  setstr(L, "issuer", id->issuer);
  setstr(L, "serial", id->serial);
  setstr(L, "not_before", id->not_before);
  setstr(L, "not_after", id->not_after);
  lua_pushboolean(L, id->verified);
  lua_setfield(L, -2, "verified");
  static const char *kinds[] = {"dns", "uri", "ip", "email"};
  lua_createtable(L, 0, 4);
  for (int k = 0; k < 4; k++) {
    lua_newtable(L);
    int n = 0;
    for (size_t i = 0; i < id->nsans; i++)
      if (strcmp(id->sans[i].kind, kinds[k]) == 0) {
        lua_pushstring(L, id->sans[i].value);
        lua_rawseti(L, -2, ++n);
      }
    lua_setfield(L, -2, kinds[k]);
  }
  lua_setfield(L, -2, "sans");
  lua_createtable(L, (int)id->nchain, 0);
  for (size_t i = 0; i < id->nchain; i++) {
    lua_pushstring(L, id->chain[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "chain");
}

void lgrpc_lua_tls_push_info(lua_State *L, lgrpc_tls *t)
{
  lua_createtable(L, 0, 6);
  setstr(L, "version", lgrpc_tls_version(t));
  setstr(L, "cipher", lgrpc_tls_cipher(t));
  setstr(L, "alpn", lgrpc_tls_alpn(t));
  setstr(L, "server_name", lgrpc_tls_server_name(t));
  lua_pushboolean(L, lgrpc_tls_resumed(t));
  lua_setfield(L, -2, "resumed");
  push_identity(L, t);
  lua_setfield(L, -2, "peer_identity");
}

static int cn_peer_identity(lua_State *L)
{
  push_identity(L, live_conn(L));
  return 1;
}

/* ---- module ------------------------------------------------------------------------------ */

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__close");
#endif
  lua_pop(L, 1);
}

int lgrpc_lua_open_tls(lua_State *L)
{
  static const luaL_Reg context_m[] = {
    {"connection", cx_connection}, {"role", cx_role}, {NULL, NULL}};
  static const luaL_Reg conn_m[] = {
    {"decode", cn_decode}, {"encode", cn_encode}, {"want_write", cn_want_write},
    {"state", cn_state}, {"error", cn_error}, {"close", cn_close}, {"tick", cn_tick},
    {"next_deadline", cn_next_deadline}, {"info", cn_info}, {"peer_identity", cn_peer_identity},
    {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"context", tls_context}, {NULL, NULL}};
  new_class(L, MT_CONTEXT, context_m, cx_gc);
  new_class(L, MT_CONN, conn_m, cn_gc);
  lua_newtable(L);
  luaL_setfuncs(L, funcs, 0);
  return 1;
}

/* lua_auth.c — `lgrpc.core.auth`: key sets (userdata over core/jwt.c's lgrpc_jwt_keyset), token
 * verification returning the verified JSON texts, and constant-time comparison. Holds no crypto
 * and no JSON of its own; lgrpc.auth (Lua) decodes the texts and maps failures to statuses. */
#include <string.h>
#include <lauxlib.h>
#include "lua_bind.h"
#include "jwt.h"

#define MT_KEYSET "lgrpc.auth.keyset"
#define MAX_NAMES 32
#define DEFAULT_MAX_TOKEN 16384

typedef struct keyset_ud {
  lgrpc_jwt_keyset ks; /* owned: freed by __gc / __close */
  int closed;
} keyset_ud;

static keyset_ud *check_keyset(lua_State *L)
{
  keyset_ud *u = luaL_checkudata(L, 1, MT_KEYSET);
  if (u->closed) luaL_error(L, "lgrpc.auth: key set is closed");
  return u;
}

static int push_failure(lua_State *L, int rc)
{
  lua_pushnil(L);
  lua_pushstring(L, lgrpc_jwt_strerror(rc));
  lua_pushstring(L, lgrpc_jwt_errname(rc));
  return 3;
}

/* optional kid (string) and alg (name) at idx, idx+1 */
static void opt_kid_alg(lua_State *L, int idx, const char **kid, int *alg)
{
  *kid = luaL_optstring(L, idx, NULL);
  *alg = 0;
  if (!lua_isnoneornil(L, idx + 1)) {
    size_t n;
    const char *name = luaL_checklstring(L, idx + 1, &n);
    *alg = lgrpc_jwt_alg_from_name(name, n);
    if (!*alg) luaL_argerror(L, idx + 1, "unknown algorithm");
  }
}

static int add_key(lua_State *L, keyset_ud *u, int rc, lgrpc_jwt_key *k)
{
  if (rc) return push_failure(L, rc);
  rc = lgrpc_jwt_keyset_add(&u->ks, k); /* takes k */
  if (rc) return push_failure(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* ks:add_oct(secret, kid?, alg?) -> true | nil, err, name */
static int ks_add_oct(lua_State *L)
{
  keyset_ud *u = check_keyset(L);
  size_t n;
  const char *secret = luaL_checklstring(L, 2, &n), *kid;
  int alg;
  opt_kid_alg(L, 3, &kid, &alg);
  lgrpc_jwt_key *k = NULL;
  int rc = lgrpc_jwt_key_oct((const unsigned char *)secret, n, kid, alg, &k);
  return add_key(L, u, rc, k);
}

/* ks:add_rsa(n_bytes, e_bytes, kid?, alg?) */
static int ks_add_rsa(lua_State *L)
{
  keyset_ud *u = check_keyset(L);
  size_t nl, el;
  const char *n = luaL_checklstring(L, 2, &nl), *e = luaL_checklstring(L, 3, &el), *kid;
  int alg;
  opt_kid_alg(L, 4, &kid, &alg);
  lgrpc_jwt_key *k = NULL;
  int rc = lgrpc_jwt_key_rsa((const unsigned char *)n, nl, (const unsigned char *)e, el, kid,
                             alg, &k);
  return add_key(L, u, rc, k);
}

/* ks:add_ec(crv, x_bytes, y_bytes, kid?, alg?) */
static int ks_add_ec(lua_State *L)
{
  keyset_ud *u = check_keyset(L);
  size_t xl, yl;
  const char *crv = luaL_checkstring(L, 2);
  const char *x = luaL_checklstring(L, 3, &xl), *y = luaL_checklstring(L, 4, &yl), *kid;
  int alg;
  opt_kid_alg(L, 5, &kid, &alg);
  lgrpc_jwt_key *k = NULL;
  int rc = lgrpc_jwt_key_ec(crv, (const unsigned char *)x, xl, (const unsigned char *)y, yl, kid,
                            alg, &k);
  return add_key(L, u, rc, k);
}

/* ks:add_pem(pem, kid?, alg?) */
static int ks_add_pem(lua_State *L)
{
  keyset_ud *u = check_keyset(L);
  size_t n;
  const char *pem = luaL_checklstring(L, 2, &n), *kid;
  int alg;
  opt_kid_alg(L, 3, &kid, &alg);
  lgrpc_jwt_key *k = NULL;
  int rc = lgrpc_jwt_key_pem(pem, n, kid, alg, &k);
  return add_key(L, u, rc, k);
}

static int ks_count(lua_State *L)
{
  keyset_ud *u = check_keyset(L);
  lua_pushinteger(L, (lua_Integer)u->ks.n);
  return 1;
}

/* opts[field]: nil, a string or an array of strings -> names[0..*n) (pointers into Lua strings
 * that opts keeps alive for the duration of the call). */
static void opt_names(lua_State *L, int opts, const char *field, const char **names, size_t *n)
{
  *n = 0;
  lua_getfield(L, opts, field);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
  if (lua_type(L, -1) == LUA_TSTRING) {
    names[(*n)++] = lua_tostring(L, -1);
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "lgrpc.auth: %s must be a string or an array of strings", field);
  for (int i = 1;; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
    if (lua_type(L, -1) != LUA_TSTRING || *n >= MAX_NAMES)
      luaL_error(L, "lgrpc.auth: %s must be an array of at most %d strings", field, MAX_NAMES);
    names[(*n)++] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static double opt_number(lua_State *L, int opts, const char *field, double dflt, int required)
{
  lua_getfield(L, opts, field);
  double v = dflt;
  if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1) || required)
    luaL_error(L, "lgrpc.auth: option %s must be a number", field);
  lua_pop(L, 1);
  return v;
}

/* ks:verify(token, opts) -> payload_json, { alg, kid, header } | nil, err, name.
 * opts: now (seconds, required), leeway, require_exp, algorithms, issuer, audience,
 * max_length (bytes, default 16384). */
static int ks_verify(lua_State *L)
{
  keyset_ud *u = check_keyset(L);
  size_t n;
  const char *token = luaL_checklstring(L, 2, &n);
  luaL_checktype(L, 3, LUA_TTABLE);
  lgrpc_jwt_policy p;
  memset(&p, 0, sizeof p);
  const char *issuers[MAX_NAMES], *audiences[MAX_NAMES], *algs[MAX_NAMES];
  size_t nalgs;
  p.now = opt_number(L, 3, "now", 0, 1);
  p.leeway = opt_number(L, 3, "leeway", 0, 0);
  double max_length = opt_number(L, 3, "max_length", DEFAULT_MAX_TOKEN, 0);
  lua_getfield(L, 3, "require_exp");
  p.require_exp = lua_toboolean(L, -1);
  lua_pop(L, 1);
  opt_names(L, 3, "issuer", issuers, &p.n_issuers);
  opt_names(L, 3, "audience", audiences, &p.n_audiences);
  p.issuers = issuers;
  p.audiences = audiences;
  opt_names(L, 3, "algorithms", algs, &nalgs);
  for (size_t i = 0; i < nalgs; i++) {
    int a = lgrpc_jwt_alg_from_name(algs[i], strlen(algs[i]));
    if (!a) luaL_error(L, "lgrpc.auth: unknown algorithm %s", algs[i]);
    p.algorithms |= 1u << a;
  }
  if ((double)n > max_length) {
    lua_pushnil(L);
    lua_pushfstring(L, "token longer than %d bytes", (int)max_length);
    lua_pushliteral(L, "FORMAT");
    return 3;
  }
  lgrpc_jwt_token t;
  int rc = lgrpc_jwt_verify(token, n, &u->ks, &p, &t);
  if (rc) return push_failure(L, rc);
  lua_pushlstring(L, t.payload, t.payload_len);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, lgrpc_jwt_alg_name(t.alg));
  lua_setfield(L, -2, "alg");
  if (t.kid) {
    lua_pushstring(L, t.kid);
    lua_setfield(L, -2, "kid");
  }
  lua_pushlstring(L, t.header, t.header_len);
  lua_setfield(L, -2, "header");
  lgrpc_jwt_token_free(&t);
  return 2;
}

static int ks_gc(lua_State *L)
{
  keyset_ud *u = luaL_checkudata(L, 1, MT_KEYSET);
  if (!u->closed) {
    u->closed = 1;
    lgrpc_jwt_keyset_free(&u->ks);
  }
  return 0;
}

static int l_keyset(lua_State *L)
{
  keyset_ud *u = lua_newuserdata(L, sizeof *u); /* owner: the Lua GC (__gc frees the keys) */
  memset(u, 0, sizeof *u);
  lgrpc_jwt_keyset_init(&u->ks);
  luaL_setmetatable(L, MT_KEYSET);
  return 1;
}

/* auth.parse(token) -> header_json, payload_json | nil, err, name  (nothing verified) */
static int l_parse(lua_State *L)
{
  size_t n;
  const char *token = luaL_checklstring(L, 1, &n);
  if (n > 1 << 20) return push_failure(L, LGRPC_EJWT_FORMAT);
  lgrpc_jwt_token t;
  int rc = lgrpc_jwt_parse(token, n, &t);
  if (rc) return push_failure(L, rc);
  lua_pushlstring(L, t.header, t.header_len);
  lua_pushlstring(L, t.payload, t.payload_len);
  lgrpc_jwt_token_free(&t);
  return 2;
}

/* auth.equal(a, b) -> bool, in time that depends only on the lengths */
static int l_equal(lua_State *L)
{
  size_t an, bn;
  const char *a = luaL_checklstring(L, 1, &an), *b = luaL_checklstring(L, 2, &bn);
  lua_pushboolean(L, lgrpc_jwt_equal(a, an, b, bn));
  return 1;
}

int lgrpc_lua_open_auth(lua_State *L)
{
  static const luaL_Reg keyset_m[] = {
    { "add_oct", ks_add_oct }, { "add_rsa", ks_add_rsa }, { "add_ec", ks_add_ec },
    { "add_pem", ks_add_pem }, { "count", ks_count }, { "verify", ks_verify },
    { "close", ks_gc }, { NULL, NULL }
  };
  static const luaL_Reg funcs[] = {
    { "keyset", l_keyset }, { "parse", l_parse }, { "equal", l_equal }, { NULL, NULL }
  };
  luaL_newmetatable(L, MT_KEYSET);
  lua_newtable(L);
  luaL_setfuncs(L, keyset_m, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ks_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, ks_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, funcs, 0);
  lua_createtable(L, LGRPC_JWT_ALG_COUNT - 1, 0);
  for (int a = 1; a < LGRPC_JWT_ALG_COUNT; a++) {
    lua_pushstring(L, lgrpc_jwt_alg_name(a));
    lua_rawseti(L, -2, a);
  }
  lua_setfield(L, -2, "algorithms");
  return 1;
}

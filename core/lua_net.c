/* lua_net.c — `lgrpc.core.net`: Lua objects over the transport core (h2.c sessions, loop.c).
 * Sessions, streams, loops, listeners and timers are userdata with __gc (and __close); events
 * are built here, in batches, from the queues the core fills. Never runs Lua from a core
 * callback: everything below is called from Lua and returns to it. See docs/transport.md. */
#include <string.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include "lua_bind.h"
#include "h2.h"
#include "loop.h"
#include "lua_tls.h"

#define MT_SESSION "lgrpc.net.session"
#define MT_STREAM "lgrpc.net.stream"
#define MT_LOOP "lgrpc.net.loop"
#define MT_LISTENER "lgrpc.net.listener"
#define MT_TIMER "lgrpc.net.timer"

#if LUA_VERSION_NUM >= 502
#define lua_objlen(L, i) lua_rawlen(L, i)
#define getuv(L, i) lua_getuservalue(L, i)
#define setuv(L, i) lua_setuservalue(L, i)
#else
#define getuv(L, i) lua_getfenv(L, i)
#define setuv(L, i) lua_setfenv(L, i)
#endif

typedef struct lsession {
  lgrpc_h2_session *s;  /* NULL once freed */
  lgrpc_conn *conn;     /* loop-owned sessions: the connection owning s */
  int coalesce;         /* deliver request + first message + half-close as one event */
} lsession;

typedef struct lstream {
  lsession *ls;         /* the session userdata (kept alive through the uservalue) */
  lgrpc_h2_stream *st;  /* valid while ls->s != NULL and st != NULL */
} lstream;

typedef struct lloop { lgrpc_loop *lp; } lloop;
typedef struct llistener { lgrpc_listener *l; } llistener;
typedef struct ltimer { lgrpc_timer *t; } ltimer;

static void *checkud(lua_State *L, int i, const char *mt)
{
  void *p = lua_touserdata(L, i);
  if (p && lua_getmetatable(L, i)) {
    luaL_getmetatable(L, mt);
    int eq = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (eq) return p;
  }
  const char *got = luaL_typename(L, i);
  luaL_error(L, "bad argument #%d (%s expected, got %s)", i, mt + 10, got);
  return NULL;
}

static lgrpc_h2_session *live_session(lua_State *L, int i)
{
  lsession *ls = checkud(L, i, MT_SESSION);
  return ls->s;
}

static int fail(lua_State *L, const char *msg)
{
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

/* ---- options ---------------------------------------------------------------------------- */

static lua_Integer opt_int(lua_State *L, int t, const char *k, lua_Integer def, lua_Integer lo, lua_Integer hi)
{
  lua_getfield(L, t, k);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "option %s: number expected, got %s", k, luaL_typename(L, -1));
    v = lua_tointeger(L, -1);
    if (v < lo || v > hi) luaL_error(L, "option %s: %d out of range", k, (int)v);
  }
  lua_pop(L, 1);
  return v;
}

static void opt_str(lua_State *L, int t, const char *k, char *out, size_t n)
{
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option %s: string expected, got %s", k, luaL_typename(L, -1));
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len >= n) luaL_error(L, "option %s: too long", k);
    memcpy(out, s, len + 1);
  }
  lua_pop(L, 1);
}

static void read_config(lua_State *L, int t, lgrpc_h2_config *cfg)
{
  lgrpc_h2_config_default(cfg);
  if (lua_isnoneornil(L, t)) return;
  luaL_checktype(L, t, LUA_TTABLE);
  const lua_Integer big = (lua_Integer)1 << 40;
  cfg->max_recv_message = (size_t)opt_int(L, t, "max_recv_message", (lua_Integer)cfg->max_recv_message, 0, big);
  cfg->max_send_message = (size_t)opt_int(L, t, "max_send_message", 0, 0, big);
  cfg->max_header_list = (size_t)opt_int(L, t, "max_header_list", 16384, 0, 0x7fffffff);
  cfg->max_concurrent_streams = (uint32_t)opt_int(L, t, "max_concurrent_streams", 1000, 0, 0x7fffffff);
  cfg->stream_window = (uint32_t)opt_int(L, t, "stream_window", 1 << 20, 1, 0x7fffffff);
  cfg->conn_window = (uint32_t)opt_int(L, t, "conn_window", 1 << 20, 65535, 0x7fffffff);
  cfg->idle_timeout = (int64_t)opt_int(L, t, "idle_timeout", 0, 0, big);
  cfg->first_stream_id = (uint32_t)opt_int(L, t, "first_stream_id", 0, 0, 0x7fffffff);
  if (cfg->first_stream_id && cfg->first_stream_id % 2 == 0)
    luaL_error(L, "first_stream_id: a client stream id is odd, got %d", (int)cfg->first_stream_id);
  opt_str(L, t, "encodings", cfg->encodings, sizeof cfg->encodings);
  opt_str(L, t, "authority", cfg->authority, sizeof cfg->authority);
  opt_str(L, t, "scheme", cfg->scheme, sizeof cfg->scheme);
  opt_str(L, t, "user_agent", cfg->user_agent, sizeof cfg->user_agent);
}

/* ---- metadata --------------------------------------------------------------------------- */

/* Reads a metadata table {key = value | {values}} at index t into a malloc'd array whose
 * pointers stay valid while the table is on the stack. Raises on wrong types. */
static lgrpc_h2_md *read_md(lua_State *L, int t, size_t *n)
{
  *n = 0;
  if (lua_isnoneornil(L, t)) return NULL;
  if (!lua_istable(L, t)) luaL_error(L, "metadata: table expected, got %s", luaL_typename(L, t));
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "metadata: keys must be strings");
    if (lua_type(L, -1) == LUA_TSTRING) count++;
    else if (lua_istable(L, -1)) {
      size_t k = lua_objlen(L, -1);
      for (size_t i = 1; i <= k; i++) {
        lua_rawgeti(L, -1, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING)
          luaL_error(L, "metadata '%s': values must be strings", lua_tostring(L, -3));
        lua_pop(L, 1);
      }
      count += k;
    } else luaL_error(L, "metadata '%s': string or array of strings expected", lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  if (count == 0) return NULL;
  lgrpc_h2_md *md = malloc(count * sizeof *md);
  if (!md) luaL_error(L, "out of memory");
  size_t j = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    size_t kl;
    const char *k = lua_tolstring(L, -2, &kl);
    if (lua_type(L, -1) == LUA_TSTRING) {
      md[j].name = k; md[j].namelen = kl;
      md[j].value = lua_tolstring(L, -1, &md[j].valuelen);
      j++;
    } else {
      size_t cnt = lua_objlen(L, -1);
      for (size_t i = 1; i <= cnt; i++) {
        lua_rawgeti(L, -1, (int)i);
        md[j].name = k; md[j].namelen = kl;
        md[j].value = lua_tolstring(L, -1, &md[j].valuelen); /* the table keeps the string alive */
        lua_pop(L, 1);
        j++;
      }
    }
    lua_pop(L, 1);
  }
  *n = j;
  return md;
}

static void push_value(lua_State *L, const lgrpc_h2_field *f, const char *v, size_t n)
{
  (void)f;
  lua_pushlstring(L, v, n);
}

/* Appends one value to md[key] (table at -1 is md; value on top after). */
static void md_append(lua_State *L, int md, const char *k, size_t kl)
{
  /* stack: value */
  lua_pushlstring(L, k, kl);
  lua_rawget(L, md);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, 1, 0);
    lua_pushlstring(L, k, kl);
    lua_pushvalue(L, -2);
    lua_rawset(L, md);
  }
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
  lua_pop(L, 2);
}

static void push_metadata(lua_State *L, const lgrpc_h2_field *f)
{
  lua_newtable(L);
  int md = lua_gettop(L);
  for (; f; f = f->next) {
    if (f->kind != LGRPC_HF_MD) continue;
    if (f->namelen > 4 && memcmp(f->name + f->namelen - 4, "-bin", 4) == 0) {
      /* comma-joined values, each base64 (padded or not) */
      const char *p = f->value, *end = f->value + f->valuelen;
      char *buf = malloc(f->valuelen + 1);
      if (!buf) continue;
      while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c) c = end;
        const char *a = p, *b = c;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        int ok;
        size_t n = lgrpc_h2_b64_decode(a, (size_t)(b - a), buf, &ok);
        if (ok) {
          lua_pushlstring(L, buf, n);
          md_append(L, md, f->name, f->namelen);
        }
        p = c + 1;
      }
      free(buf);
    } else {
      push_value(L, f, f->value, f->valuelen);
      md_append(L, md, f->name, f->namelen);
    }
  }
}

static void set_field_str(lua_State *L, const lgrpc_h2_field *f, int kind, const char *key)
{
  const lgrpc_h2_field *x = lgrpc_h2_field_find(f, kind);
  if (!x) return;
  lua_pushlstring(L, x->value, x->valuelen);
  lua_setfield(L, -2, key);
}

/* ---- streams ---------------------------------------------------------------------------- */

/* Pushes the handle of st (creating it), or nil if the stream was abandoned. sidx: session. */
static int push_stream(lua_State *L, int sidx, lgrpc_h2_stream *st)
{
  lsession *ls = lua_touserdata(L, sidx);
  getuv(L, sidx);
  lua_rawgeti(L, -1, 1); /* weak streams table */
  lua_pushlightuserdata(L, st);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1)) {
    lstream *h = lua_touserdata(L, -1);
    if (h && h->st == st) {
      lua_replace(L, -3);
      lua_pop(L, 1);
      return 1;
    }
  }
  lua_pop(L, 1);
  lstream *h = lua_newuserdata(L, sizeof *h);
  h->ls = ls;
  h->st = st;
  luaL_getmetatable(L, MT_STREAM);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -3); /* the session's own uservalue table, whose [3] is the session: keeps it alive */
  setuv(L, -2);
  lgrpc_h2_stream_attach(st);
  lua_pushlightuserdata(L, st);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

static lstream *check_stream(lua_State *L, int i)
{
  return checkud(L, i, MT_STREAM);
}

/* The stream's C struct if it is still usable, else pushes nil, err and returns NULL. */
static lgrpc_h2_stream *usable(lua_State *L, lstream *h)
{
  if (!h->ls->s || !h->st) return NULL;
  return h->st;
}

static int stream_err(lua_State *L, lstream *h, int rc)
{
  if (h->ls->s) {
    const char *e = lgrpc_h2_last_error(h->ls->s);
    if (e && *e) return fail(L, e);
  }
  return fail(L, lgrpc_net_strerror(rc));
}

static int st_id(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lua_pushinteger(L, h->st && h->ls->s ? lgrpc_h2_stream_id(h->st) : 0);
  return 1;
}

static int st_send_message(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  size_t n;
  const char *d = luaL_checklstring(L, 2, &n);
  int compressed = lua_toboolean(L, 3);
  lgrpc_h2_stream *st = usable(L, h);
  if (!st) return fail(L, "stream is closed");
  int rc = lgrpc_h2_send_message(st, d, n, compressed);
  if (rc) return stream_err(L, h, rc);
  lua_pushboolean(L, 1);
  lua_pushinteger(L, (lua_Integer)lgrpc_h2_stream_buffered(st));
  return 2;
}

static int st_close_send(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lgrpc_h2_stream *st = usable(L, h);
  if (!st) return fail(L, "stream is closed");
  int rc = lgrpc_h2_close_send(st);
  if (rc) return stream_err(L, h, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int st_send_headers(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  size_t nmd;
  lgrpc_h2_md *md = read_md(L, 2, &nmd);
  lgrpc_h2_stream *st = usable(L, h);
  if (!st) { free(md); return fail(L, "stream is closed"); }
  int rc = lgrpc_h2_send_headers(st, md, nmd);
  free(md);
  if (rc) return stream_err(L, h, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int st_send_status(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lua_Integer code = luaL_checkinteger(L, 2);
  size_t ml = 0, dl = 0;
  const char *msg = luaL_optlstring(L, 3, "", &ml);
  const char *details = luaL_optlstring(L, 5, NULL, &dl);
  if (code < 0 || code > 0x7fffffff) return luaL_argerror(L, 2, "status code out of range");
  size_t nmd;
  lgrpc_h2_md *md = read_md(L, 4, &nmd);
  lgrpc_h2_stream *st = usable(L, h);
  if (!st) { free(md); return fail(L, "stream is closed"); }
  int rc = lgrpc_h2_send_status(st, (int)code, msg, ml, md, nmd, details, details ? dl : 0);
  free(md);
  if (rc) return stream_err(L, h, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int st_reset(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lua_Integer code = luaL_optinteger(L, 2, 8);
  lgrpc_h2_stream *st = usable(L, h);
  if (st) lgrpc_h2_reset(st, (uint32_t)code);
  lua_pushboolean(L, 1);
  return 1;
}

static int st_pause(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lgrpc_h2_stream *st = usable(L, h);
  if (st) lgrpc_h2_pause(st, 1);
  return 0;
}

static int st_resume(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lgrpc_h2_stream *st = usable(L, h);
  if (st) lgrpc_h2_pause(st, 0);
  return 0;
}

static int st_buffered(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lgrpc_h2_stream *st = usable(L, h);
  lua_pushinteger(L, st ? (lua_Integer)lgrpc_h2_stream_buffered(st) : 0);
  return 1;
}

static int st_gc(lua_State *L)
{
  lstream *h = lua_touserdata(L, 1);
  if (h && h->st && h->ls && h->ls->s) lgrpc_h2_stream_detach(h->st);
  if (h) h->st = NULL;
  return 0;
}

static int st_tostring(lua_State *L)
{
  lstream *h = check_stream(L, 1);
  lua_pushfstring(L, "lgrpc.net.stream (%d)", h->st && h->ls->s ? (int)lgrpc_h2_stream_id(h->st) : -1);
  return 1;
}

/* ---- events ----------------------------------------------------------------------------- */

static void setint(lua_State *L, const char *k, lua_Integer v)
{
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void setstr(lua_State *L, const char *k, const char *s, size_t n)
{
  lua_pushlstring(L, s, n);
  lua_setfield(L, -2, k);
}

/* Whether an event gets a metadata table: always, except on a coalescing session when the
 * fields carry no custom metadata at all. */
static int want_metadata(lua_State *L, int sidx, const lgrpc_h2_field *f)
{
  if (!((lsession *)lua_touserdata(L, sidx))->coalesce) return 1;
  for (; f; f = f->next) if (f->kind == LGRPC_HF_MD) return 1;
  return 0;
}

/* Pushes one event record; returns 0 (pushing nothing) when it has nothing to say. */
static int push_event(lua_State *L, int sidx, lgrpc_h2_event *ev)
{
  static const char *names[] = {NULL, "request", "headers", "message", "half_close", "cancel",
                                "status", "deadline", "drain", "goaway", "closed"};
  /* a request carries up to ~12 fields once coalesced: sized once, never rehashed */
  lua_createtable(L, 0, ev->type == LGRPC_EV_REQUEST ? 12 : 6);
  lua_pushstring(L, names[ev->type]);
  lua_setfield(L, -2, "type");
  if (ev->stream) {
    push_stream(L, sidx, ev->stream);
    lua_setfield(L, -2, "stream");
  }
  switch (ev->type) {
  case LGRPC_EV_REQUEST:
    {
      /* one walk over the fields: the first of each well-known kind, and whether any is metadata */
      const lgrpc_h2_field *first[LGRPC_HF_RESERVED + 1] = {0};
      int has_md = 0;
      for (const lgrpc_h2_field *f = ev->fields; f; f = f->next) {
        if (f->kind == LGRPC_HF_MD) has_md = 1;
        else if (f->kind > 0 && f->kind <= LGRPC_HF_RESERVED && !first[f->kind]) first[f->kind] = f;
      }
      static const struct { int kind; const char *key; } keys[] = {
        {LGRPC_HF_PATH, "path"}, {LGRPC_HF_AUTHORITY, "authority"}, {LGRPC_HF_ENCODING, "encoding"},
        {LGRPC_HF_ACCEPT_ENCODING, "accept_encoding"}, {LGRPC_HF_CONTENT_TYPE, "content_type"},
        {LGRPC_HF_USER_AGENT, "user_agent"}};
      for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const lgrpc_h2_field *x = first[keys[i].kind];
        if (x) setstr(L, keys[i].key, x->value, x->valuelen);
      }
      if (ev->timeout >= 0) {
        setint(L, "timeout", ev->timeout);
        setint(L, "deadline", ev->deadline);
      }
      /* a coalescing session (the server's) gets no table when there is no metadata at all */
      if (has_md || !((lsession *)lua_touserdata(L, sidx))->coalesce) {
        push_metadata(L, ev->fields);
        lua_setfield(L, -2, "metadata");
      }
    }
    break;
  case LGRPC_EV_HEADERS:
    set_field_str(L, ev->fields, LGRPC_HF_ENCODING, "encoding");
    set_field_str(L, ev->fields, LGRPC_HF_ACCEPT_ENCODING, "accept_encoding");
    set_field_str(L, ev->fields, LGRPC_HF_CONTENT_TYPE, "content_type");
    if (want_metadata(L, sidx, ev->fields)) {
      push_metadata(L, ev->fields);
      lua_setfield(L, -2, "metadata");
    }
    break;
  case LGRPC_EV_MESSAGE:
    setstr(L, "data", ev->data ? ev->data : "", ev->len);
    lua_pushboolean(L, ev->compressed);
    lua_setfield(L, -2, "compressed");
    break;
  case LGRPC_EV_STATUS:
  case LGRPC_EV_CANCEL:
    setint(L, ev->type == LGRPC_EV_STATUS ? "code" : "status", ev->code);
    if (ev->type == LGRPC_EV_CANCEL && ev->h2code >= 0) setint(L, "code", ev->h2code);
    setstr(L, "message", ev->data ? ev->data : "", ev->data ? ev->len : 0);
    if (ev->type == LGRPC_EV_STATUS) {
      if (ev->details) setstr(L, "details", ev->details, ev->detailslen);
      set_field_str(L, ev->fields, LGRPC_HF_ACCEPT_ENCODING, "accept_encoding");
      if (want_metadata(L, sidx, ev->fields)) {
        push_metadata(L, ev->fields);
        lua_setfield(L, -2, "metadata");
      }
      lua_pushboolean(L, ev->trailers_only);
      lua_setfield(L, -2, "trailers_only");
      if (ev->http_status) setint(L, "http_status", ev->http_status);
      if (ev->h2code >= 0) setint(L, "reset", ev->h2code);
      lua_pushboolean(L, ev->refused);
      lua_setfield(L, -2, "refused");
    }
    break;
  case LGRPC_EV_GOAWAY:
    setint(L, "last_stream_id", ev->last_stream_id);
    setint(L, "error_code", ev->code);
    setstr(L, "debug", ev->data ? ev->data : "", ev->data ? ev->len : 0);
    break;
  case LGRPC_EV_CLOSED:
    if (ev->data) setstr(L, "error", ev->data, ev->len);
    break;
  default:
    break;
  }
  return 1;
}

/* Coalescing (session:coalesce): a request whose first message (uncompressed) and half-close
 * are in the same batch gets them inside its event (`data`, `half_close = true`), so a unary call
 * costs the call layer one event instead of three. Clients such as nghttp2 send the HEADERS of
 * many streams before their DATA, so the parts of one call are rarely adjacent: a first pass
 * pairs each request with the next events of its own stream (a small open-addressing table
 * keyed by stream); the second pass pushes the request with them and skips them where they
 * stood. Each stream's own events keep their order. */
#define COALESCE_SLOTS 512          /* largest table; at most half of it filled */
typedef struct coalesced {
  lgrpc_h2_stream *stream;
  lgrpc_h2_event *req, *msg, *half; /* server: request, message, half-close; client: response
                                     * headers, message, status */
  int open;                         /* still taking this stream's events into the request */
  int delivered;                    /* the request went out with msg (and half) inside */
} coalesced;

/* t has `size` slots, a power of two (bits = log2 size) */
static coalesced *coalesce_slot(coalesced *t, size_t size, int bits, lgrpc_h2_stream *st,
                                int insert)
{
  size_t h = (size_t)(((uintptr_t)st >> 4) * 0x9E3779B97F4A7C15ull >> (64 - bits));
  for (size_t i = 0; i < size; i++) {
    coalesced *c = &t[(h + i) & (size - 1)];
    if (c->stream == st) return c;
    if (!c->stream) {
      if (!insert) return NULL;
      c->stream = st;
      return c;
    }
  }
  return NULL;
}

/* Pass 1: pairs requests with their first message and half-close. Returns 1 if any. */
static int coalesce_pairs(coalesced *t, size_t size, int bits, lgrpc_h2_event *ev)
{
  int used = 0, any = 0;
  for (; ev; ev = ev->next) {
    if (!ev->stream) continue;
    if (ev->type == LGRPC_EV_REQUEST || ev->type == LGRPC_EV_HEADERS) {
      if ((size_t)used >= size / 2) continue;
      coalesced *c = coalesce_slot(t, size, bits, ev->stream, 1);
      if (!c || c->req) continue;    /* a second request on one stream cannot happen; ignore */
      c->req = ev;
      c->open = 1;
      used++;
      continue;
    }
    coalesced *c = coalesce_slot(t, size, bits, ev->stream, 0);
    if (!c || !c->open) continue;
    if (ev->type == LGRPC_EV_MESSAGE && !c->msg && !ev->compressed) {
      c->msg = ev;
      any = 1;
    } else if (c->msg && ((c->req->type == LGRPC_EV_REQUEST && ev->type == LGRPC_EV_HALF_CLOSE) ||
                          (c->req->type == LGRPC_EV_HEADERS && ev->type == LGRPC_EV_STATUS))) {
      c->half = ev;
      c->open = 0;
    } else {
      c->open = 0;                   /* anything else ends the pairing; it keeps its place */
    }
  }
  return any;
}

static int push_events(lua_State *L, int sidx, int arr, int n, int with_session, int *closed,
                       lgrpc_h2_event *ev);

/* Appends the session's events to the array at `arr`; n is its length so far. Sets *closed. */
static int drain_events(lua_State *L, int sidx, int arr, int n, int with_session, int *closed)
{
  lsession *ls = lua_touserdata(L, sidx);
  *closed = 0;
  if (!ls->s) return n;
  return push_events(L, sidx, arr, n, with_session, closed, lgrpc_h2_take_events(ls->s));
}

/* drain_events over events already taken from the session */
static int push_events(lua_State *L, int sidx, int arr, int n, int with_session, int *closed,
                       lgrpc_h2_event *ev)
{
  lsession *ls = lua_touserdata(L, sidx);
  *closed = 0;
  coalesced table[COALESCE_SLOTS];
  size_t size = 0;
  int bits = 0, pairs = 0;
  if (ls->coalesce && ev && ev->next) {
    /* a table twice the batch (capped), so a small batch clears a few slots, not 20 KiB */
    size_t nev = 0;
    for (lgrpc_h2_event *e = ev; e && nev < COALESCE_SLOTS / 2; e = e->next) nev++;
    for (size = 8, bits = 3; size < 2 * nev; size <<= 1) bits++;
    memset(table, 0, size * sizeof table[0]);
    pairs = coalesce_pairs(table, size, bits, ev);
  }
  while (ev) {
    lgrpc_h2_event *next = ev->next;
    if (ev->type == LGRPC_EV_CLOSED) *closed = 1;
    coalesced *c = pairs && ev->stream ? coalesce_slot(table, size, bits, ev->stream, 0) : NULL;
    if (c && c->delivered && (ev == c->msg || ev == c->half)) {
      /* already delivered inside its request or response */
    } else if (c && ev == c->req && ev->type == LGRPC_EV_HEADERS && c->msg && c->half) {
      /* a whole response (headers, one message, status): one `status` record carrying
       * `headers = true`, `headers_metadata` and `data` */
      luaL_checkstack(L, 24, "building transport events");
      push_event(L, sidx, c->half);
      if (with_session) {
        lua_pushvalue(L, sidx);
        lua_setfield(L, -2, "session");
      }
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "headers");
      if (want_metadata(L, sidx, ev->fields)) {
        push_metadata(L, ev->fields);
        lua_setfield(L, -2, "headers_metadata");
      }
      setstr(L, "data", c->msg->data ? c->msg->data : "", c->msg->len);
      c->delivered = 1;
      lua_rawseti(L, arr, ++n);
    } else {
      luaL_checkstack(L, 24, "building transport events");
      if (push_event(L, sidx, ev)) {
        if (with_session) {
          lua_pushvalue(L, sidx);
          lua_setfield(L, -2, "session");
        }
        if (c && ev == c->req && c->msg && ev->type == LGRPC_EV_REQUEST) {
          c->delivered = 1;
          setstr(L, "data", c->msg->data ? c->msg->data : "", c->msg->len);
          if (c->half) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "half_close");
          }
        }
        lua_rawseti(L, arr, ++n);
      }
    }
    lgrpc_h2_event_free(ls->s, ev);
    ev = next;
  }
  return n;
}

/* ---- sessions --------------------------------------------------------------------------- */

static lsession *new_session_ud(lua_State *L, lgrpc_h2_session *s, lgrpc_conn *conn, int loopidx)
{
  lsession *ls = lua_newuserdata(L, sizeof *ls);
  ls->s = s;
  ls->conn = conn;
  ls->coalesce = 0;
  luaL_getmetatable(L, MT_SESSION);
  lua_setmetatable(L, -2);
  lua_createtable(L, 3, 0);
  lua_newtable(L); /* weak: stream struct -> handle */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawseti(L, -2, 1);
  if (loopidx) {
    lua_pushvalue(L, loopidx);
    lua_rawseti(L, -2, 2);
  }
  lua_pushvalue(L, -2); /* [3]: the session, for its streams, which share this table */
  lua_rawseti(L, -2, 3);
  setuv(L, -2);
  return ls;
}

static int net_session(lua_State *L)
{
  const char *role = luaL_checkstring(L, 1);
  int server;
  if (strcmp(role, "client") == 0) server = 0;
  else if (strcmp(role, "server") == 0) server = 1;
  else return luaL_argerror(L, 1, "\"client\" or \"server\" expected");
  lgrpc_h2_config cfg;
  read_config(L, 2, &cfg);
  lgrpc_h2_session *s = lgrpc_h2_session_new(server, &cfg);
  if (!s) return fail(L, "ENOMEM: cannot create the HTTP/2 session");
  new_session_ud(L, s, NULL, 0);
  return 1;
}

static int se_recv(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  size_t n;
  const char *d = luaL_checklstring(L, 2, &n);
  if (ls->conn) return fail(L, "session is driven by its loop");
  if (!ls->s) return fail(L, "UNAVAILABLE: session closed");
  int rc = lgrpc_h2_recv(ls->s, (const uint8_t *)d, n);
  if (rc) return fail(L, lgrpc_h2_last_error(ls->s));
  lua_pushboolean(L, 1);
  return 1;
}

static int se_send_pending(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  if (ls->conn) return fail(L, "session is driven by its loop");
  if (!ls->s) { lua_pushliteral(L, ""); return 1; }
  lgrpc_bytes out = {0};
  int rc = lgrpc_h2_send(ls->s, &out);
  lua_pushlstring(L, out.data ? out.data : "", out.len);
  lgrpc_bytes_free(&out);
  if (rc == LGRPC_ENET_NOMEM) return luaL_error(L, "out of memory");
  return 1;
}

/* session:coalesce(on): a request's first message and half-close, or a whole response, come as
 * one event when they are in one batch (see coalesce_pairs); the server and the channel turn it
 * on for their connections. */
static int se_coalesce(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  ls->coalesce = lua_toboolean(L, 2);
  return 0;
}

static int se_events(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  if (ls->conn) return fail(L, "session is driven by its loop: its events come from loop:poll()");
  lua_settop(L, 1);
  lua_newtable(L);
  int closed;
  drain_events(L, 1, 2, 0, 0, &closed);
  return 1;
}

static int se_tick(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  lua_Integer now = luaL_checkinteger(L, 2);
  if (s) lgrpc_h2_tick(s, (int64_t)now);
  return 0;
}

static int se_next_deadline(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  int64_t when;
  if (s && lgrpc_h2_next_deadline(s, &when)) lua_pushinteger(L, (lua_Integer)when);
  else lua_pushnil(L);
  return 1;
}

static int se_want_write(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  lua_pushboolean(L, s && lgrpc_h2_want_write(s));
  return 1;
}

static int se_alive(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  lua_pushboolean(L, s && lgrpc_h2_alive(s));
  return 1;
}

static const char *opt_field_str(lua_State *L, int t, const char *k, size_t *len)
{
  lua_getfield(L, t, k);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return NULL; }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "request.%s: string expected, got %s", k, luaL_typename(L, -1));
  const char *s = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* the request table keeps it alive */
  return s;
}

static int se_request(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lgrpc_h2_request req;
  memset(&req, 0, sizeof req);
  size_t dummy;
  req.path = opt_field_str(L, 2, "path", &req.pathlen);
  if (!req.path) return luaL_error(L, "request.path: string expected");
  req.authority = opt_field_str(L, 2, "authority", &req.authoritylen);
  req.encoding = opt_field_str(L, 2, "encoding", &dummy);
  req.accept_encoding = opt_field_str(L, 2, "accept_encoding", &dummy);
  req.content_type = opt_field_str(L, 2, "content_type", &dummy);
  req.user_agent = opt_field_str(L, 2, "user_agent", &dummy);
  lua_getfield(L, 2, "timeout");
  req.timeout = -1;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) return luaL_error(L, "request.timeout: number (ms) expected");
    req.timeout = (int64_t)lua_tointeger(L, -1);
    if (req.timeout < 0) req.timeout = 0;
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "metadata"); /* index 3 */
  req.md = read_md(L, 3, &req.nmd);
  if (!ls->s) { free((void *)req.md); return fail(L, "UNAVAILABLE: session closed"); }
  /* a loop session's deadline counts from now, not from the last poll */
  if (ls->conn) lgrpc_h2_set_now(ls->s, lgrpc_loop_clock());
  int err = 0;
  lgrpc_h2_stream *st = lgrpc_h2_request_new(ls->s, &req, &err);
  free((void *)req.md);
  if (!st) return fail(L, lgrpc_h2_last_error(ls->s));
  push_stream(L, 1, st);
  return 1;
}

static int se_shutdown(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  lua_Integer grace = luaL_optinteger(L, 2, 1000);
  if (s) lgrpc_h2_shutdown(s, (int64_t)grace);
  return 0;
}

static int se_close(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  if (s) lgrpc_h2_close(s, !lua_isnoneornil(L, 2));
  return 0;
}

static int se_abort(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  const char *reason = luaL_optstring(L, 2, "connection aborted");
  if (!ls->s) return 0;
  if (ls->conn) lgrpc_conn_abort(ls->conn, reason);
  else lgrpc_h2_terminate(ls->s, reason);
  return 0;
}

static int se_stats(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  lgrpc_h2_stats st;
  memset(&st, 0, sizeof st);
  if (s) lgrpc_h2_stats_get(s, &st);
  lua_createtable(L, 0, 5);
  setint(L, "streams", (lua_Integer)st.streams);
  setint(L, "open_streams", (lua_Integer)st.open_streams);
  setint(L, "queued_events", (lua_Integer)st.queued_events);
  setint(L, "buffered_in", (lua_Integer)st.buffered_in);
  setint(L, "buffered_out", (lua_Integer)st.buffered_out);
  return 1;
}

static int se_role(lua_State *L)
{
  lgrpc_h2_session *s = live_session(L, 1);
  if (!s) lua_pushnil(L);
  else lua_pushstring(L, lgrpc_h2_is_server(s) ? "server" : "client");
  return 1;
}

/* session:tls() -> { version, cipher, alpn, resumed, server_name, peer_identity } | nil */
static int se_tls(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  lgrpc_tls *t = ls->s && ls->conn ? lgrpc_tls_from_filter(lgrpc_conn_filter(ls->conn)) : NULL;
  if (!t || !lgrpc_tls_peer(t)) { lua_pushnil(L); return 1; } /* no TLS, or no finished handshake */
  lgrpc_lua_tls_push_info(L, t);
  return 1;
}

static int se_peer(lua_State *L)
{
  lsession *ls = checkud(L, 1, MT_SESSION);
  if (ls->conn) lua_pushstring(L, lgrpc_conn_peer(ls->conn));
  else lua_pushnil(L);
  return 1;
}

static int se_gc(lua_State *L)
{
  lsession *ls = lua_touserdata(L, 1);
  if (!ls) return 0;
  if (ls->conn) lgrpc_conn_free(ls->conn);
  else if (ls->s) lgrpc_h2_session_free(ls->s);
  ls->conn = NULL;
  ls->s = NULL;
  return 0;
}

/* ---- loop ------------------------------------------------------------------------------- */

/* loop uservalue: { conns = {lud -> session}, listeners = {lud -> listener}, timers = {lud -> timer} } */
static void loop_table(lua_State *L, int lidx, const char *which)
{
  getuv(L, lidx);
  lua_getfield(L, -1, which);
  lua_remove(L, -2);
}

/* Keeps the handle on top of the stack alive in the loop's table `which`, keyed by its C object
 * (the loop finds the handle from the object when it has events for it). */
static void loop_keep(lua_State *L, int lidx, const char *which, void *obj)
{
  loop_table(L, lidx, which);
  lua_pushlightuserdata(L, obj);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static lloop *check_loop(lua_State *L, int i)
{
  lloop *ll = checkud(L, i, MT_LOOP);
  if (!ll->lp) luaL_error(L, "loop is closed");
  return ll;
}

static int net_loop(lua_State *L)
{
  int use_poll = 0;
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "backend");
    if (lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "poll") == 0) use_poll = 1;
    lua_pop(L, 1);
  }
  lloop *ll = lua_newuserdata(L, sizeof *ll);
  ll->lp = NULL;
  luaL_getmetatable(L, MT_LOOP);
  lua_setmetatable(L, -2);
  lua_createtable(L, 0, 3);
  lua_newtable(L); lua_setfield(L, -2, "conns");
  lua_newtable(L); lua_setfield(L, -2, "listeners");
  lua_newtable(L); lua_setfield(L, -2, "timers");
  setuv(L, -2);
  ll->lp = lgrpc_loop_new(use_poll);
  if (!ll->lp) return fail(L, "ESYS: cannot create the event loop");
  return 1;
}

static int lo_backend(lua_State *L)
{
  lloop *ll = check_loop(L, 1);
  lua_pushstring(L, lgrpc_loop_backend(ll->lp));
  return 1;
}

static int lo_now(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)lgrpc_loop_clock());
  return 1;
}

static int lo_listen(lua_State *L)
{
  lloop *ll = check_loop(L, 1);
  const char *addr = luaL_checkstring(L, 2);
  lgrpc_h2_config cfg;
  read_config(L, 3, &cfg);
  int backlog = 512;
  if (lua_istable(L, 3)) backlog = (int)opt_int(L, 3, "backlog", 512, 1, 65535);
  char err[256];
  lgrpc_tls_ctx *tls = NULL;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "tls");
    if (!lua_isnil(L, -1)) {
      tls = lgrpc_lua_tls_checkcontext(L, lua_gettop(L));
      if (!lgrpc_tls_ctx_is_server(tls)) return luaL_error(L, "option tls: a server context expected");
    }
    lua_pop(L, 1);
  }
  lgrpc_listener *l = lgrpc_loop_listen(ll->lp, addr, &cfg, backlog, err, sizeof err);
  if (!l) return fail(L, err);
  if (tls) lgrpc_listener_set_tls(l, tls);
  llistener *h = lua_newuserdata(L, sizeof *h);
  h->l = l;
  luaL_getmetatable(L, MT_LISTENER);
  lua_setmetatable(L, -2);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  setuv(L, -2);
  loop_keep(L, 1, "listeners", l);
  return 1;
}

static int lo_connect(lua_State *L)
{
  lloop *ll = check_loop(L, 1);
  const char *addr = luaL_checkstring(L, 2);
  lgrpc_h2_config cfg;
  read_config(L, 3, &cfg);
  lua_getfield(L, lua_istable(L, 3) ? 3 : LUA_REGISTRYINDEX, "authority");
  int explicit_authority = lua_isstring(L, -1);
  lua_pop(L, 1);
  if (!explicit_authority) cfg.authority[0] = 0;
  int64_t connect_timeout = 0;
  if (lua_istable(L, 3)) connect_timeout = (int64_t)opt_int(L, 3, "connect_timeout", 0, 0, (lua_Integer)1 << 40);
  /* TLS: a client context, and the name to verify (default: the address's host) */
  lgrpc_tls_ctx *tls = NULL;
  char server_name[256] = "";
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "tls");
    if (!lua_isnil(L, -1)) {
      tls = lgrpc_lua_tls_checkcontext(L, lua_gettop(L));
      if (lgrpc_tls_ctx_is_server(tls)) return luaL_error(L, "option tls: a client context expected");
    }
    lua_pop(L, 1);
    lua_getfield(L, 3, "server_name");
    if (lua_isstring(L, -1)) snprintf(server_name, sizeof server_name, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (tls && !server_name[0] && strncmp(addr, "unix:", 5) != 0) {
    const char *a = addr, *end;
    if (*a == '[') { a++; end = strchr(a, ']'); }
    else end = strrchr(a, ':');
    size_t n = end ? (size_t)(end - a) : strlen(a);
    if (n >= sizeof server_name) n = sizeof server_name - 1;
    memcpy(server_name, a, n);
    server_name[n] = 0;
  }
  if (tls) {
    lua_getfield(L, 3, "scheme");
    if (lua_isnil(L, -1)) snprintf(cfg.scheme, sizeof cfg.scheme, "https");
    lua_pop(L, 1);
  }
  char err[256];
  lgrpc_conn *c = lgrpc_loop_connect(ll->lp, addr, &cfg, connect_timeout, err, sizeof err);
  if (!c) return fail(L, err);
  if (tls && lgrpc_conn_set_tls(c, tls, server_name[0] ? server_name : NULL, err, sizeof err) != 0) {
    lgrpc_conn_free(c);
    return fail(L, err);
  }
  lsession *ls = new_session_ud(L, lgrpc_conn_session(c), c, 1);
  lgrpc_conn_adopt(c, ls);
  loop_keep(L, 1, "conns", c);
  return 1;
}

static int lo_timer(lua_State *L)
{
  lloop *ll = check_loop(L, 1);
  lua_Integer ms = luaL_checkinteger(L, 2);
  lgrpc_timer *t = lgrpc_timer_new(ll->lp, (int64_t)ms);
  if (!t) return luaL_error(L, "out of memory");
  ltimer *h = lua_newuserdata(L, sizeof *h);
  h->t = t;
  luaL_getmetatable(L, MT_TIMER);
  lua_setmetatable(L, -2);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  setuv(L, -2);
  /* armed timers are kept alive by the loop */
  loop_keep(L, 1, "timers", t);
  return 1;
}

static int lo_wakeup(lua_State *L)
{
  lloop *ll = check_loop(L, 1);
  lgrpc_loop_wakeup(ll->lp);
  return 0;
}

static int lo_poll(lua_State *L)
{
  lloop *ll = check_loop(L, 1);
  int64_t timeout = -1;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number t = luaL_checknumber(L, 2);
    timeout = t < 0 ? 0 : (int64_t)t;
  }
  /* poll(ms, into): the events go into the caller's table `into` (entries past the new ones are
   * cleared), so a driver polling in a loop reuses one array instead of growing a new one */
  int into = lua_istable(L, 3);
  lua_Integer old = into ? (lua_Integer)lua_objlen(L, 3) : 0;
  if (into) lua_replace(L, 2);
  lua_settop(L, into ? 2 : 1);
  if (lgrpc_loop_poll(ll->lp, timeout) != 0) return fail(L, "ESYS: poll failed");
  if (!into) lua_newtable(L);     /* 2: result */
  loop_table(L, 1, "conns");      /* 3 */
  loop_table(L, 1, "listeners");  /* 4 */
  loop_table(L, 1, "timers");     /* 5 */
  int n = 0;
  lgrpc_loop_event *ev = lgrpc_loop_take_events(ll->lp);
  while (ev) {
    lgrpc_loop_event *next = ev->next;
    if (ev->type == LGRPC_LEV_ACCEPT && ev->conn) {
      lua_createtable(L, 0, 4);
      lua_pushliteral(L, "accept");
      lua_setfield(L, -2, "type");
      lsession *ls = new_session_ud(L, lgrpc_conn_session(ev->conn), ev->conn, 1);
      lgrpc_conn_adopt(ev->conn, ls);
      lua_pushlightuserdata(L, ev->conn);
      lua_pushvalue(L, -2);
      lua_rawset(L, 3);
      lua_setfield(L, -2, "session");
      if (ev->listener) {
        lua_pushlightuserdata(L, ev->listener);
        lua_rawget(L, 4);
        lua_setfield(L, -2, "listener");
      }
      lua_pushstring(L, lgrpc_conn_peer(ev->conn));
      lua_setfield(L, -2, "peer");
      lua_rawseti(L, 2, ++n);
    } else if (ev->type == LGRPC_LEV_CONNECT && ev->conn) {
      lua_createtable(L, 0, 2);
      lua_pushliteral(L, "connect");
      lua_setfield(L, -2, "type");
      lua_pushlightuserdata(L, ev->conn);
      lua_rawget(L, 3);
      lua_setfield(L, -2, "session");
      lua_rawseti(L, 2, ++n);
    } else if (ev->type == LGRPC_LEV_TIMER && ev->timer) {
      lua_createtable(L, 0, 2);
      lua_pushliteral(L, "timer");
      lua_setfield(L, -2, "type");
      lua_pushlightuserdata(L, ev->timer);
      lua_rawget(L, 5);
      lua_setfield(L, -2, "timer");
      lua_pushlightuserdata(L, ev->timer);
      lua_pushnil(L);
      lua_rawset(L, 5);
      lua_rawseti(L, 2, ++n);
    }
    free(ev);
    ev = next;
  }
  lgrpc_conn *c = lgrpc_loop_first_conn(ll->lp);
  while (c) {
    lgrpc_conn *next = lgrpc_conn_next(c);
    /* only connections with events cost anything here (1000 idle ones: a pointer walk) */
    lgrpc_h2_session *cs = lgrpc_conn_session(c);
    lgrpc_h2_event *evs = cs ? lgrpc_h2_take_events(cs) : NULL;
    if (!evs) { c = next; continue; }
    lua_pushlightuserdata(L, c);
    lua_rawget(L, 3);
    lsession *cls = lua_isnil(L, -1) ? NULL : lua_touserdata(L, -1);
    if (!cls || cls->s != cs) {
      /* no Lua session for it (cannot happen while the conn is linked): drop the events */
      while (evs) { lgrpc_h2_event *nx = evs->next; lgrpc_h2_event_free(cs, evs); evs = nx; }
    } else {
      int sidx = lua_gettop(L), closed;
      n = push_events(L, sidx, 2, n, 1, &closed, evs);
      if (closed) {
        lgrpc_conn_unlink(c);
        lua_pushlightuserdata(L, c);
        lua_pushnil(L);
        lua_rawset(L, 3);
      }
    }
    lua_pop(L, 1);
    c = next;
  }
  for (lua_Integer i = old; i > n; i--) {
    lua_pushnil(L);
    lua_rawseti(L, 2, (int)i);
  }
  lua_settop(L, 2);
  return 1;
}

static int lo_close(lua_State *L)
{
  lloop *ll = checkud(L, 1, MT_LOOP);
  if (!ll->lp) return 0;
  lua_settop(L, 1);
  /* sessions and listeners stay valid objects; their sockets close with the loop */
  lgrpc_loop_free(ll->lp);
  ll->lp = NULL;
  getuv(L, 1);
  if (lua_istable(L, -1)) {
    lua_newtable(L); lua_setfield(L, -2, "conns");
    lua_newtable(L); lua_setfield(L, -2, "listeners");
    lua_newtable(L); lua_setfield(L, -2, "timers");
  }
  return 0;
}

/* ---- listeners and timers --------------------------------------------------------------- */

static int li_port(lua_State *L)
{
  llistener *h = checkud(L, 1, MT_LISTENER);
  if (!h->l) return fail(L, "listener is closed");
  lua_pushinteger(L, lgrpc_listener_port(h->l));
  return 1;
}

static int li_address(lua_State *L)
{
  llistener *h = checkud(L, 1, MT_LISTENER);
  if (!h->l) return fail(L, "listener is closed");
  lua_pushstring(L, lgrpc_listener_address(h->l));
  return 1;
}

static int li_close(lua_State *L)
{
  llistener *h = checkud(L, 1, MT_LISTENER);
  if (h->l) {
    getuv(L, 1);
    lua_rawgeti(L, -1, 1);
    lloop *ll = lua_touserdata(L, -1);
    if (ll && ll->lp) {
      loop_table(L, lua_gettop(L), "listeners");
      lua_pushlightuserdata(L, h->l);
      lua_pushnil(L);
      lua_rawset(L, -3);
    }
    lgrpc_listener_free(h->l);
    h->l = NULL;
  }
  return 0;
}

/* listener:set_tls(ctx | nil): new connections use this context; live ones keep theirs */
static int li_set_tls(lua_State *L)
{
  llistener *h = checkud(L, 1, MT_LISTENER);
  if (!h->l) return fail(L, "listener is closed");
  lgrpc_tls_ctx *tls = lua_isnoneornil(L, 2) ? NULL : lgrpc_lua_tls_checkcontext(L, 2);
  if (tls && !lgrpc_tls_ctx_is_server(tls)) return luaL_error(L, "listener:set_tls: a server context expected");
  lgrpc_listener_set_tls(h->l, tls);
  lua_pushboolean(L, 1);
  return 1;
}

static int li_gc(lua_State *L)
{
  llistener *h = lua_touserdata(L, 1);
  if (h && h->l) lgrpc_listener_free(h->l);
  if (h) h->l = NULL;
  return 0;
}

static int ti_cancel(lua_State *L)
{
  ltimer *h = checkud(L, 1, MT_TIMER);
  if (h->t && lgrpc_timer_armed(h->t)) {
    lgrpc_timer_cancel(h->t);
    getuv(L, 1);
    lua_rawgeti(L, -1, 1);
    lloop *ll = lua_touserdata(L, -1);
    if (ll && ll->lp) {
      loop_table(L, lua_gettop(L), "timers");
      lua_pushlightuserdata(L, h->t);
      lua_pushnil(L);
      lua_rawset(L, -3);
    }
  }
  return 0;
}

static int ti_armed(lua_State *L)
{
  ltimer *h = checkud(L, 1, MT_TIMER);
  lua_pushboolean(L, h->t && lgrpc_timer_armed(h->t));
  return 1;
}

static int ti_gc(lua_State *L)
{
  ltimer *h = lua_touserdata(L, 1);
  if (h && h->t) lgrpc_timer_free(h->t);
  if (h) h->t = NULL;
  return 0;
}

static int lo_gc(lua_State *L)
{
  lloop *ll = lua_touserdata(L, 1);
  if (ll && ll->lp) {
    lgrpc_loop_free(ll->lp);
    ll->lp = NULL;
  }
  return 0;
}

/* ---- module ----------------------------------------------------------------------------- */

static int net_counters(lua_State *L)
{
  long s, st, b;
  lgrpc_h2_counters(&s, &st, &b);
  lua_createtable(L, 0, 3);
  setint(L, "sessions", s);
  setint(L, "streams", st);
  setint(L, "buffered", b);
  return 1;
}

static int net_status_name(lua_State *L)
{
  lua_pushstring(L, lgrpc_h2_status_name((int)luaL_checkinteger(L, 1)));
  return 1;
}

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

int lgrpc_lua_open_net(lua_State *L)
{
  static const luaL_Reg session_m[] = {
    {"recv", se_recv}, {"send_pending", se_send_pending}, {"events", se_events}, {"coalesce", se_coalesce},
    {"tick", se_tick}, {"next_deadline", se_next_deadline}, {"want_write", se_want_write},
    {"alive", se_alive}, {"request", se_request}, {"shutdown", se_shutdown},
    {"close", se_close}, {"abort", se_abort}, {"stats", se_stats}, {"role", se_role}, {"peer", se_peer}, {"tls", se_tls},
    {NULL, NULL}};
  static const luaL_Reg stream_m[] = {
    {"id", st_id}, {"send_message", st_send_message}, {"close_send", st_close_send},
    {"send_headers", st_send_headers}, {"send_status", st_send_status}, {"reset", st_reset},
    {"pause", st_pause}, {"resume", st_resume}, {"buffered", st_buffered}, {NULL, NULL}};
  static const luaL_Reg loop_m[] = {
    {"listen", lo_listen}, {"connect", lo_connect}, {"poll", lo_poll}, {"timer", lo_timer},
    {"wakeup", lo_wakeup}, {"now", lo_now}, {"close", lo_close}, {"backend", lo_backend},
    {NULL, NULL}};
  static const luaL_Reg listener_m[] = {
    {"port", li_port}, {"address", li_address}, {"close", li_close}, {"set_tls", li_set_tls}, {NULL, NULL}};
  static const luaL_Reg timer_m[] = {{"cancel", ti_cancel}, {"armed", ti_armed}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {
    {"session", net_session}, {"loop", net_loop}, {"counters", net_counters},
    {"status_name", net_status_name}, {NULL, NULL}};

  new_class(L, MT_SESSION, session_m, se_gc);
  new_class(L, MT_STREAM, stream_m, st_gc);
  luaL_getmetatable(L, MT_STREAM);
  lua_pushcfunction(L, st_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  new_class(L, MT_LOOP, loop_m, lo_gc);
  new_class(L, MT_LISTENER, listener_m, li_gc);
  new_class(L, MT_TIMER, timer_m, ti_gc);
  lua_newtable(L);
  luaL_setfuncs(L, funcs, 0);
  return 1;
}

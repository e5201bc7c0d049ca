/* lua_codec.c — the Lua face of the codec (`lgrpc.core.codec`): compiles a plan built by
 * lua/lgrpc/proto/codec.lua into a schema userdata, and provides the Lua-table sink (decode)
 * and source (encode) that core/codec.c drives. Owns the Lua representation rules (int64
 * modes, enum names, defaults, "$unknown", required check after decode); the wire rules live
 * in codec.c. Memory: the schema userdata owns its lgrpc_schema, its reusable output buffer
 * and one registry ref (its aux table), all released by __gc / __close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <lua.h>
#include <lauxlib.h>
#include "lua_bind.h"
#include "codec.h"

#if LUA_VERSION_NUM < 502
#define lua_rawlen lua_objlen
#define LGRPC_GETGLOBAL(L, n) lua_getfield(L, LUA_GLOBALSINDEX, n)
#else
#define LGRPC_GETGLOBAL(L, n) lua_getglobal(L, n)
#endif
#if LUA_VERSION_NUM >= 503
#define LGRPC_NATIVE_INT64 1 /* lua_Integer holds 64 bits exactly */
#else
#define LGRPC_NATIVE_INT64 0 /* numbers are doubles: exact up to 2^53 */
#endif
#define LGRPC_TCDATA 10 /* LuaJIT's type tag for FFI cdata */
#if LUA_VERSION_NUM >= 503 /* raw gets return the type of the value they push */
#define rawget_type(L, t) lua_rawget(L, t)
#define rawgeti_type(L, t, i) lua_rawgeti(L, t, i)
#else
static inline int rawget_type(lua_State *L, int t) { lua_rawget(L, t); return lua_type(L, -1); }
static inline int rawgeti_type(lua_State *L, int t, int i) { lua_rawgeti(L, t, i); return lua_type(L, -1); }
#endif

#define SCHEMA_MT "lgrpc.codec.schema"
#define MAX_DEPTH_CAP 1000
#define FRAMES (2 * MAX_DEPTH_CAP + 8)

/* aux table slots (a Lua table per schema, held by registry ref) */
enum { AUX_NAMES = 1, AUX_MSGIDX = 2, AUX_ENUMS = 3, AUX_LAST_NAME = 4 };

typedef struct lschema {
  lgrpc_schema *s;  /* owned: lgrpc_schema_free in schema_close */
  int aux_ref;      /* owned: registry ref, released in schema_close */
  lgrpc_wbuf buf;   /* owned: reused across encodes */
  int busy;         /* buf in use (a cdata __tostring re-entering encode gets its own buffer) */
  void *scratch_src;  /* owned: an lsrc reused across encodes (malloc, freed in schema_close) */
  void *scratch_sink; /* owned: an lsink reused across decodes */
  const char *last_name; /* the message name last found (kept alive in aux[AUX_LAST_NAME], so
                          * the same pointer is the same string) and its index */
  int last_msg;
} lschema;

/* the schema at argument 1: the methods hold the metatable as upvalue 1, so the usual case
 * costs a metatable comparison instead of a registry lookup by name */
static lschema *check_schema(lua_State *L)
{
  lschema *S = NULL;
  if (lua_getmetatable(L, 1)) {
    if (lua_rawequal(L, -1, lua_upvalueindex(1))) S = lua_touserdata(L, 1);
    lua_pop(L, 1);
  }
  if (!S) S = luaL_checkudata(L, 1, SCHEMA_MT); /* raises the usual error */
  if (!S->s) luaL_error(L, "schema is closed");
  return S;
}

static int schema_close(lua_State *L)
{
  lschema *S = luaL_checkudata(L, 1, SCHEMA_MT);
  if (S->s) {
    lgrpc_schema_free(S->s);
    S->s = NULL;
    lgrpc_wbuf_free(&S->buf);
    free(S->scratch_src);
    free(S->scratch_sink);
    S->scratch_src = S->scratch_sink = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, S->aux_ref);
    S->aux_ref = LUA_NOREF;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* integers from Lua values */

typedef struct lint { int64_t i; int big; } lint; /* big: value = (uint64_t)i, at least 2^63 */

static int parse_decimal(const char *s, size_t n, int allow_suffix, int *is_unsigned, lint *out)
{
  size_t k = 0;
  int neg = 0;
  uint64_t mag = 0;
  if (k < n && (s[k] == '-' || s[k] == '+')) neg = s[k++] == '-';
  if (k >= n || s[k] < '0' || s[k] > '9') return 0;
  for (; k < n && s[k] >= '0' && s[k] <= '9'; k++) {
    uint64_t d = (uint64_t)(s[k] - '0');
    if (mag > (UINT64_MAX - d) / 10) return 0;
    mag = mag * 10 + d;
  }
  if (is_unsigned) *is_unsigned = 0;
  if (allow_suffix) { /* LuaJIT tostring(cdata): 123LL, 123ULL */
    if (n - k == 3 && (s[k] == 'U' || s[k] == 'u') && is_unsigned) { *is_unsigned = 1; k++; }
    if (n - k != 2 || (s[k] != 'L' && s[k] != 'l') || (s[k + 1] != 'L' && s[k + 1] != 'l')) return 0;
    k += 2;
  }
  if (k != n) return 0;
  if (neg) {
    if (mag > (uint64_t)INT64_MAX + 1) return 0;
    out->i = (int64_t)(0 - mag);
    out->big = 0;
  } else {
    out->i = (int64_t)mag;
    out->big = mag > (uint64_t)INT64_MAX;
  }
  return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* encode source */

enum { SF_MSG, SF_LIST, SF_MAP, SF_ENTRY };
typedef struct sframe { int kind, slot, keys, key_slot, val_slot, base; } sframe;

typedef struct lsrc {
  lua_State *L;
  const lgrpc_schema *s;
  lgrpc_codec_err *err;
  int names, enums, tostr; /* stack slots */
  int deterministic;
  int top;                 /* index of the current frame */
  sframe f[FRAMES];
} lsrc;

/* double to float without undefined behaviour: out of range becomes an infinity */
static float to_float(double d)
{
  if (d > 3.4028234663852886e38) return (float)INFINITY;
  if (d < -3.4028234663852886e38) return -(float)INFINITY;
  return (float)d;
}

static const char *type_name_at(lua_State *L, int idx)
{
  int t = lua_type(L, idx);
  return t == LGRPC_TCDATA ? "cdata" : lua_typename(L, t);
}

static int src_integer(lsrc *c, int idx, lint *out)
{
  lua_State *L = c->L;
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: {
#if LGRPC_NATIVE_INT64
    if (lua_isinteger(L, idx)) { out->i = (int64_t)lua_tointeger(L, idx); out->big = 0; return 0; }
#endif
    double d = (double)lua_tonumber(L, idx);
    if (d != floor(d) || isinf(d))
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected integer, got %.17g", d);
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) { out->i = (int64_t)d; out->big = 0; return 0; }
    if (d >= 0 && d < 18446744073709551616.0) { out->i = (int64_t)(uint64_t)d; out->big = 1; return 0; }
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "integer %.17g out of range", d);
  }
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (!parse_decimal(s, n, 0, NULL, out))
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected integer, got string '%.40s'", s);
    return 0;
  }
  case LGRPC_TCDATA: { /* through tostring: 123LL / 123ULL; any other cdata is refused */
    int uns = 0;
    lua_pushvalue(L, c->tostr);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != 0 || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected integer, got cdata");
    }
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    int ok = parse_decimal(s, n, 1, &uns, out);
    lua_pop(L, 1);
    if (!ok) return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected integer, got cdata");
    return 0;
  }
  default:
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected integer, got %s", type_name_at(L, idx));
  }
}

static const char *type_label(int type)
{
  static const char *const names[] = { "?", "double", "float", "int64", "uint64", "int32",
    "fixed64", "fixed32", "bool", "string", "group", "message", "bytes", "uint32", "enum",
    "sfixed32", "sfixed64", "sint32", "sint64" };
  return type >= 1 && type <= 18 ? names[type] : "?";
}

static int out_of_range(lsrc *c, const lgrpc_field *f, const lint *li)
{
  if (li->big)
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "value %llu out of range for %s",
                            (unsigned long long)li->i, type_label(f->type));
  return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "value %lld out of range for %s",
                          (long long)li->i, type_label(f->type));
}

/* the Lua value at idx as a value of f's type */
static int src_convert(lsrc *c, const lgrpc_field *f, int idx, lgrpc_value *v)
{
  lua_State *L = c->L;
  lint li;
  int rc;
  switch (f->type) {
  case LGRPC_TYPE_DOUBLE: case LGRPC_TYPE_FLOAT:
    if (lua_type(L, idx) != LUA_TNUMBER)
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected number, got %s", type_name_at(L, idx));
    if (f->type == LGRPC_TYPE_DOUBLE) v->v.d = (double)lua_tonumber(L, idx);
    else v->v.f = to_float((double)lua_tonumber(L, idx));
    return 0;
  case LGRPC_TYPE_BOOL:
    if (lua_type(L, idx) != LUA_TBOOLEAN)
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected boolean, got %s", type_name_at(L, idx));
    v->v.b = lua_toboolean(L, idx);
    return 0;
  case LGRPC_TYPE_STRING: case LGRPC_TYPE_BYTES:
    if (lua_type(L, idx) != LUA_TSTRING)
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected string, got %s", type_name_at(L, idx));
    v->s = lua_tolstring(L, idx, &v->n);
    return 0;
  case LGRPC_TYPE_ENUM: {
    const lgrpc_enumdef *e = &c->s->enums[f->sub];
    if (lua_type(L, idx) == LUA_TSTRING) {
      lua_rawgeti(L, c->enums, f->sub + 1);
      lua_pushvalue(L, idx);
      lua_rawget(L, -2);
      if (lua_type(L, -1) != LUA_TNUMBER) {
        lua_pop(L, 2);
        return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "unknown value '%.60s' of enum %s",
                                lua_tostring(L, idx), e->full_name);
      }
      v->v.i64 = (int64_t)lua_tonumber(L, -1);
      lua_pop(L, 2);
      return 0;
    }
    if ((rc = src_integer(c, idx, &li))) return rc;
    if (li.big || li.i < INT32_MIN || li.i > INT32_MAX) return out_of_range(c, f, &li);
    if (e->closed && lgrpc_schema_enum_find(e, (int32_t)li.i) < 0)
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "%lld is not a value of enum %s",
                              (long long)li.i, e->full_name);
    v->v.i64 = li.i;
    return 0;
  }
  default:
    if ((rc = src_integer(c, idx, &li))) return rc;
    switch (f->type) {
    case LGRPC_TYPE_INT32: case LGRPC_TYPE_SINT32: case LGRPC_TYPE_SFIXED32:
      if (li.big || li.i < INT32_MIN || li.i > INT32_MAX) return out_of_range(c, f, &li);
      break;
    case LGRPC_TYPE_UINT32: case LGRPC_TYPE_FIXED32:
      if (li.big || li.i < 0 || li.i > (int64_t)UINT32_MAX) return out_of_range(c, f, &li);
      break;
    case LGRPC_TYPE_INT64: case LGRPC_TYPE_SINT64: case LGRPC_TYPE_SFIXED64:
      if (li.big) return out_of_range(c, f, &li);
      break;
    default: break; /* uint64, fixed64: any 64 bits (negative = two's complement) */
    }
    v->v.i64 = li.i;
    return 0;
  }
}

static int src_push_frame(lsrc *c, int kind, int slot, int base)
{
  if (c->top + 1 >= FRAMES || !lua_checkstack(c->L, 8))
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_DEPTH, "nesting too deep");
  sframe *fr = &c->f[++c->top];
  fr->kind = kind;
  fr->slot = slot;
  fr->base = base;
  fr->keys = fr->key_slot = fr->val_slot = 0;
  return 0;
}

/* map keys sorted for deterministic output */
typedef struct skey { lgrpc_value v; int type; int pos; } skey;
static int cmp_key(const void *a, const void *b)
{
  const skey *x = a, *y = b;
  switch (x->type) {
  case LGRPC_TYPE_STRING: {
    size_t n = x->v.n < y->v.n ? x->v.n : y->v.n;
    int r = memcmp(x->v.s, y->v.s, n);
    return r ? r : (x->v.n < y->v.n ? -1 : x->v.n > y->v.n);
  }
  case LGRPC_TYPE_BOOL: return (x->v.v.b != 0) - (y->v.v.b != 0);
  case LGRPC_TYPE_UINT32: case LGRPC_TYPE_UINT64: case LGRPC_TYPE_FIXED32: case LGRPC_TYPE_FIXED64:
    return x->v.v.u64 < y->v.v.u64 ? -1 : x->v.v.u64 > y->v.v.u64;
  default: return x->v.v.i64 < y->v.v.i64 ? -1 : x->v.v.i64 > y->v.v.i64;
  }
}

/* Map table at map_idx: *n entries. Deterministic: push the array of its keys, sorted.
 * Otherwise push nil: the iteration key of lua_next, which src_item advances. */
static int src_map_keys(lsrc *c, const lgrpc_field *f, int map_idx, size_t *n)
{
  lua_State *L = c->L;
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, map_idx)) {
    lua_pop(L, 1);
    k++;
  }
  *n = k;
  lua_pushnil(L);
  if (!c->deterministic || k < 2) return 0;
  const lgrpc_field *kf = lgrpc_schema_find_field(&c->s->msgs[f->sub], 1);
  if (!kf) return 0;
  int keys = lua_gettop(L);
  lua_createtable(L, (int)k, 0);
  lua_replace(L, keys);
  k = 0;
  lua_pushnil(L);
  while (lua_next(L, map_idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, (int)++k);
  }
  skey *a = lua_newuserdata(L, k * sizeof *a); /* scratch, collected by Lua */
  for (size_t i = 0; i < k; i++) {
    lua_rawgeti(L, keys, (int)i + 1);
    int rc = src_convert(c, kf, lua_gettop(L), &a[i].v);
    lua_pop(L, 1);
    if (rc) return rc;
    a[i].type = kf->type == LGRPC_TYPE_SINT32 || kf->type == LGRPC_TYPE_SINT64 ||
                kf->type == LGRPC_TYPE_SFIXED32 || kf->type == LGRPC_TYPE_SFIXED64 ||
                kf->type == LGRPC_TYPE_INT32 || kf->type == LGRPC_TYPE_INT64 ? LGRPC_TYPE_INT64 : kf->type;
    a[i].pos = (int)i + 1;
  }
  qsort(a, k, sizeof *a, cmp_key);
  lua_createtable(L, (int)k, 0);
  for (size_t i = 0; i < k; i++) {
    lua_rawgeti(L, keys, a[i].pos);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_replace(L, keys);
  lua_pop(L, 1); /* scratch */
  return 0;
}

static int src_field(void *ud, const lgrpc_field *f, lgrpc_value *v, size_t *n)
{
  lsrc *c = ud;
  lua_State *L = c->L;
  sframe *fr = &c->f[c->top];
  if (fr->kind == SF_ENTRY) {
    lua_pushvalue(L, f->number == 1 ? fr->key_slot : fr->val_slot);
  } else {
    lua_rawgeti(L, c->names, f->name);
    lua_rawget(L, fr->slot);
  }
  int t = lua_type(L, -1);
  if (t == LUA_TNIL) { lua_pop(L, 1); return LGRPC_SRC_ABSENT; }
  int top = lua_gettop(L);
  if ((f->flags & LGRPC_F_REPEATED) || f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP) {
    if (t != LUA_TTABLE) {
      lua_pop(L, 1);
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "expected table, got %s", lua_typename(L, t));
    }
    int rc;
    if (f->flags & LGRPC_F_MAP) {
      if ((rc = src_map_keys(c, f, top, n))) { lua_settop(L, top - 1); return rc; }
      if ((rc = src_push_frame(c, SF_MAP, top, top))) { lua_settop(L, top - 1); return rc; }
      c->f[c->top].keys = top + 1;
      return LGRPC_SRC_LIST;
    }
    if (f->flags & LGRPC_F_REPEATED) {
      *n = lua_rawlen(L, top);
      if ((rc = src_push_frame(c, SF_LIST, top, top))) { lua_settop(L, top - 1); return rc; }
      return LGRPC_SRC_LIST;
    }
    if ((rc = src_push_frame(c, SF_MSG, top, top))) { lua_settop(L, top - 1); return rc; }
    return LGRPC_SRC_MESSAGE;
  }
  int rc = src_convert(c, f, top, v);
  lua_pop(L, 1); /* strings stay alive: the table (or the entry slot) still holds them */
  return rc ? rc : LGRPC_SRC_VALUE;
}

static int src_item(void *ud, const lgrpc_field *f, size_t i, lgrpc_value *v)
{
  lsrc *c = ud;
  lua_State *L = c->L;
  sframe *fr = &c->f[c->top];
  int rc;
  if (fr->kind == SF_MAP) {
    int base = lua_gettop(L) + 1;
    if (lua_istable(L, fr->keys)) { /* sorted keys */
      lua_rawgeti(L, fr->keys, (int)i + 1);
      lua_pushvalue(L, -1);
      lua_rawget(L, fr->slot);
    } else { /* table order: continue lua_next from the last key */
      lua_pushvalue(L, fr->keys);
      if (!lua_next(L, fr->slot))
        return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "map changed while encoding");
      lua_pushvalue(L, -2);
      lua_replace(L, fr->keys);
    }
    if ((rc = src_push_frame(c, SF_ENTRY, 0, base))) { lua_settop(L, base - 1); return rc; }
    c->f[c->top].key_slot = base;
    c->f[c->top].val_slot = base + 1;
    return LGRPC_SRC_MESSAGE;
  }
  lua_rawgeti(L, fr->slot, (int)i + 1);
  int top = lua_gettop(L);
  if (f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP) {
    if (!lua_istable(L, top)) {
      rc = lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "element %d: expected table, got %s",
                            (int)i + 1, type_name_at(L, top));
      lua_pop(L, 1);
      return rc;
    }
    if ((rc = src_push_frame(c, SF_MSG, top, top))) { lua_pop(L, 1); return rc; }
    return LGRPC_SRC_MESSAGE;
  }
  if (lua_isnil(L, top)) {
    lua_pop(L, 1);
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "element %d is nil", (int)i + 1);
  }
  rc = src_convert(c, f, top, v);
  if (rc) {
    lua_pop(L, 1);
    size_t len = strlen(c->err->problem);
    char tmp[sizeof c->err->problem];
    memcpy(tmp, c->err->problem, len + 1);
    return lgrpc_codec_fail(c->err, rc, "element %d: %s", (int)i + 1, tmp);
  }
  lua_pop(L, 1);
  return LGRPC_SRC_VALUE;
}

static void src_leave(void *ud)
{
  lsrc *c = ud;
  lua_settop(c->L, c->f[c->top].base - 1);
  c->top--;
}

static int src_unknown(void *ud, const uint8_t **p, size_t *n)
{
  lsrc *c = ud;
  lua_State *L = c->L;
  sframe *fr = &c->f[c->top];
  *n = 0;
  if (fr->kind != SF_MSG) return 0;
  lua_pushliteral(L, "$unknown");
  lua_rawget(L, fr->slot);
  if (lua_type(L, -1) == LUA_TSTRING) *p = (const uint8_t *)lua_tolstring(L, -1, n);
  else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_VALUE, "$unknown: expected string");
  }
  lua_pop(L, 1); /* the table keeps the string alive */
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* encode fast path: the schema walked straight over the Lua tables, without the source
 * callbacks. It handles what messages usually hold and gives up (returns 1) on anything else:
 * groups, cdata and other unusual values, deterministic maps, a missing required field, a
 * second oneof member, any invalid value, limits. The caller then runs the source path from
 * the start, which writes the same bytes or reports the error with its path. */

typedef struct fenc {
  lua_State *L;
  const lgrpc_schema *s;
  lgrpc_wbuf *out;
  int names, enums, unk_key; /* stack slots */
  int partial;
} fenc;

#define FE_GIVE_UP 1

/* an integer in range lo..hi of int64 (the Lua value at idx), as src_integer reads it */
static int fe_integer(fenc *e, int idx, int64_t *out)
{
  lua_State *L = e->L;
  int t = lua_type(L, idx);
  if (t == LUA_TNUMBER) {
#if LGRPC_NATIVE_INT64
    if (lua_isinteger(L, idx)) { *out = (int64_t)lua_tointeger(L, idx); return 0; }
#endif
    double d = (double)lua_tonumber(L, idx);
    if (d != floor(d) || !(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return FE_GIVE_UP;
    *out = (int64_t)d;
    return 0;
  }
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    lint li;
    if (!parse_decimal(s, n, 0, NULL, &li) || li.big) return FE_GIVE_UP;
    *out = li.i;
    return 0;
  }
  return FE_GIVE_UP;
}

/* the value at idx as f's type, with src_convert's checks (any failure: give up) */
static int fe_convert(fenc *e, const lgrpc_field *f, int idx, lgrpc_value *v)
{
  lua_State *L = e->L;
  int64_t i;
  switch (f->type) {
  case LGRPC_TYPE_DOUBLE:
    if (lua_type(L, idx) != LUA_TNUMBER) return FE_GIVE_UP;
    v->v.d = (double)lua_tonumber(L, idx);
    return 0;
  case LGRPC_TYPE_FLOAT:
    if (lua_type(L, idx) != LUA_TNUMBER) return FE_GIVE_UP;
    v->v.f = to_float((double)lua_tonumber(L, idx));
    return 0;
  case LGRPC_TYPE_BOOL:
    if (lua_type(L, idx) != LUA_TBOOLEAN) return FE_GIVE_UP;
    v->v.b = lua_toboolean(L, idx);
    return 0;
  case LGRPC_TYPE_STRING: case LGRPC_TYPE_BYTES:
    if (lua_type(L, idx) != LUA_TSTRING) return FE_GIVE_UP;
    v->s = lua_tolstring(L, idx, &v->n);
    if (f->type == LGRPC_TYPE_STRING && (f->flags & LGRPC_F_UTF8) &&
        !lgrpc_wire_utf8_valid((const uint8_t *)v->s, v->n))
      return FE_GIVE_UP;
    return 0;
  case LGRPC_TYPE_ENUM:
    if (lua_type(L, idx) == LUA_TSTRING) {
      lua_rawgeti(L, e->enums, f->sub + 1);
      lua_pushvalue(L, idx);
      lua_rawget(L, -2);
      int ok = lua_type(L, -1) == LUA_TNUMBER;
      if (ok) v->v.i64 = (int64_t)lua_tonumber(L, -1);
      lua_pop(L, 2);
      return ok ? 0 : FE_GIVE_UP;
    }
    if (fe_integer(e, idx, &i) || i < INT32_MIN || i > INT32_MAX) return FE_GIVE_UP;
    if (e->s->enums[f->sub].closed && lgrpc_schema_enum_find(&e->s->enums[f->sub], (int32_t)i) < 0)
      return FE_GIVE_UP;
    v->v.i64 = i;
    return 0;
  default:
    if (fe_integer(e, idx, &i)) return FE_GIVE_UP;
    switch (f->type) {
    case LGRPC_TYPE_INT32: case LGRPC_TYPE_SINT32: case LGRPC_TYPE_SFIXED32:
      if (i < INT32_MIN || i > INT32_MAX) return FE_GIVE_UP;
      break;
    case LGRPC_TYPE_UINT32: case LGRPC_TYPE_FIXED32:
      if (i < 0 || i > (int64_t)UINT32_MAX) return FE_GIVE_UP;
      break;
    default: break; /* 64-bit types: any int64 (uint64 takes negatives as their bits) */
    }
    v->v.i64 = i;
    return 0;
  }
}

static int fe_msg(fenc *e, const lgrpc_msgdef *m, int t, int depth);

static inline int fe_tag(fenc *e, const lgrpc_field *f, int wt)
{
  return lgrpc_wire_put_tag(e->out, f->number, wt) ? FE_GIVE_UP : 0;
}

/* tag, a reserved length byte, body from fe_msg, the length patched: the message table at t */
static int fe_sub(fenc *e, const lgrpc_field *f, int t, int depth)
{
  if (fe_tag(e, f, LGRPC_WT_LEN) || lgrpc_wbuf_reserve(e->out, 1)) return FE_GIVE_UP;
  size_t at = e->out->len++;
  if (fe_msg(e, &e->s->msgs[f->sub], t, depth + 1)) return FE_GIVE_UP;
  return lgrpc_wire_patch_length(e->out, at) ? FE_GIVE_UP : 0;
}

/* one scalar field value at idx: tag and value (no default check) */
static int fe_value(fenc *e, const lgrpc_field *f, int idx)
{
  lgrpc_value v;
  if (fe_convert(e, f, idx, &v) || fe_tag(e, f, f->wt) || lgrpc_codec_put_value(e->out, f, &v))
    return FE_GIVE_UP;
  return 0;
}

/* map field f: the table at t, entries in lua_next order, each at depth + 1 */
static int fe_map(fenc *e, const lgrpc_field *f, int t, int depth)
{
  lua_State *L = e->L;
  const lgrpc_msgdef *em = &e->s->msgs[f->sub];
  if (depth + 1 > e->s->limits.max_depth) return FE_GIVE_UP;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int k = lua_gettop(L) - 1;
    if (fe_tag(e, f, LGRPC_WT_LEN) || lgrpc_wbuf_reserve(e->out, 1)) return FE_GIVE_UP;
    size_t at = e->out->len++;
    for (uint32_t j = 0; j < em->nfields; j++) { /* key (1) and value (2), always written */
      const lgrpc_field *ef = &em->fields[j];
      int idx = ef->number == 1 ? k : ef->number == 2 ? k + 1 : 0;
      if (!idx) continue;
      if (ef->type == LGRPC_TYPE_MESSAGE) {
        if (!lua_istable(L, idx) || fe_sub(e, ef, idx, depth + 1)) return FE_GIVE_UP;
      } else if (ef->type == LGRPC_TYPE_GROUP || fe_value(e, ef, idx)) {
        return FE_GIVE_UP;
      }
    }
    if (lgrpc_wire_patch_length(e->out, at)) return FE_GIVE_UP;
    lua_pop(L, 1);
  }
  return 0;
}

/* repeated field f: the array at t */
static int fe_list(fenc *e, const lgrpc_field *f, int t, int depth)
{
  lua_State *L = e->L;
  size_t n = lua_rawlen(L, t), at = 0;
  if (n == 0) return 0;
  int packed = (f->flags & LGRPC_F_PACKED) != 0;
  if (packed) {
    if (fe_tag(e, f, LGRPC_WT_LEN) || lgrpc_wbuf_reserve(e->out, 1)) return FE_GIVE_UP;
    at = e->out->len++;
  }
  int idx = lua_gettop(L) + 1;
  for (size_t i = 1; i <= n; i++) {
    int type = rawgeti_type(L, t, (lua_Integer)i);
    if (f->type == LGRPC_TYPE_MESSAGE) {
      if (type != LUA_TTABLE || fe_sub(e, f, idx, depth)) return FE_GIVE_UP;
    } else if (f->type == LGRPC_TYPE_GROUP || type == LUA_TNIL) {
      return FE_GIVE_UP;
    } else if (packed) {
      lgrpc_value v;
      int64_t x = 0;
      int have = 0; /* an integral number: integer varints are written straight from it */
#if LGRPC_NATIVE_INT64
      if (type == LUA_TNUMBER) x = (int64_t)lua_tointegerx(L, idx, &have); /* floats too, as fe_integer */
#else
      if (type == LUA_TNUMBER) {
        double d = (double)lua_tonumber(L, idx);
        if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) { x = (int64_t)d; have = 1; }
      }
#endif
      if (have && f->type != LGRPC_TYPE_ENUM && f->wt == LGRPC_WT_VARINT && f->type != LGRPC_TYPE_BOOL) {
        int in32 = x >= INT32_MIN && x <= INT32_MAX;
        uint64_t w;
        switch (f->type) {
        case LGRPC_TYPE_INT32: if (!in32) return FE_GIVE_UP; w = (uint64_t)x; break;
        case LGRPC_TYPE_UINT32: if (x < 0 || x > (int64_t)UINT32_MAX) return FE_GIVE_UP; w = (uint64_t)x; break;
        case LGRPC_TYPE_SINT32: if (!in32) return FE_GIVE_UP; w = lgrpc_wire_zigzag32((int32_t)x); break;
        case LGRPC_TYPE_SINT64: w = lgrpc_wire_zigzag64(x); break;
        default: w = (uint64_t)x; break; /* int64, uint64 */
        }
        if (lgrpc_wire_put_varint(e->out, w)) return FE_GIVE_UP;
        lua_settop(L, idx - 1);
        continue;
      }
      if (fe_convert(e, f, idx, &v) || lgrpc_codec_put_value(e->out, f, &v)) return FE_GIVE_UP;
    } else if (fe_value(e, f, idx)) {
      return FE_GIVE_UP;
    }
    lua_settop(L, idx - 1);
  }
  if (packed && lgrpc_wire_patch_length(e->out, at)) return FE_GIVE_UP;
  return 0;
}

/* the message m from the table at t, at nesting depth (as enc_msg counts it) */
static int fe_msg(fenc *e, const lgrpc_msgdef *m, int t, int depth)
{
  lua_State *L = e->L;
  uint64_t oneofs = 0;
  if (depth > e->s->limits.max_depth || m->noneofs > 64 || !lua_checkstack(L, 12)) return FE_GIVE_UP;
  int top = lua_gettop(L);
  for (uint32_t j = 0; j < m->nfields; j++) {
    const lgrpc_field *f = &m->fields[j];
    lua_rawgeti(L, e->names, f->name);
    int v = top + 1, type = rawget_type(L, t);
    int rc = 0;
    if (type == LUA_TNIL) {
      lua_settop(L, top);
      if (f->label == LGRPC_LABEL_REQUIRED && !e->partial) return FE_GIVE_UP;
      continue;
    }
    if (f->oneof >= 0) {
      uint64_t bit = (uint64_t)1 << f->oneof;
      if (oneofs & bit) return FE_GIVE_UP;
      oneofs |= bit;
    }
    if (f->flags & (LGRPC_F_REPEATED | LGRPC_F_MAP)) {
      if (type != LUA_TTABLE) return FE_GIVE_UP;
      rc = (f->flags & LGRPC_F_MAP) ? fe_map(e, f, v, depth) : fe_list(e, f, v, depth);
    } else if (f->type == LGRPC_TYPE_MESSAGE) {
      rc = type != LUA_TTABLE || fe_sub(e, f, v, depth);
    } else if (f->type == LGRPC_TYPE_GROUP) {
      rc = FE_GIVE_UP;
    } else {
      lgrpc_value val;
      rc = fe_convert(e, f, v, &val);
      if (!rc && ((f->flags & LGRPC_F_PRESENCE) || (m->flags & LGRPC_M_MAP_ENTRY) ||
                  !lgrpc_codec_is_default(f, &val)))
        rc = fe_tag(e, f, f->wt) || lgrpc_codec_put_value(e->out, f, &val);
    }
    if (rc) return FE_GIVE_UP;
    lua_settop(L, top);
  }
  lua_pushvalue(L, e->unk_key);
  int type = rawget_type(L, t);
  if (type == LUA_TSTRING) {
    size_t n;
    const char *u = lua_tolstring(L, -1, &n);
    if (n && lgrpc_wire_put_bytes(e->out, u, n)) return FE_GIVE_UP;
  } else if (type != LUA_TNIL) {
    return FE_GIVE_UP;
  }
  lua_settop(L, top);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* decode sink */

enum { I64_NATIVE, I64_STRING };
typedef struct kframe {
  int kind, slot, key_slot, val_slot, unk_slot, base;
  const lgrpc_msgdef *m;
  /* the array of the repeated field that received the last value, held in one stack slot
   * (rep_slot, 0 until needed) so consecutive elements append without lookups */
  const lgrpc_field *rep_field;
  int rep_slot, rep_len;
} kframe;

typedef struct lsink {
  lua_State *L;
  const lgrpc_schema *s;
  lgrpc_codec_err *err;
  int names;
  int enum_names, int64_mode, defaults, keep_unknown;
  int top;
  /* size hints from the walk (sink_reserve), consumed when the table is created */
  const lgrpc_field *run_field; /* a run of run_len elements of this repeated field follows */
  int run_len;
  int body_hint;                /* distinct fields of the message that begins next */
  kframe f[MAX_DEPTH_CAP + 4];
} lsink;

/* push the decimal text of a 64-bit integer (neg: the magnitude u is of a negative number);
 * written backwards into a small buffer, without the printf machinery */
static void push_decimal(lua_State *L, uint64_t u, int neg)
{
  char b[24], *p = b + sizeof b;
  do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
  if (neg) *--p = '-';
  lua_pushlstring(L, p, (size_t)(b + sizeof b - p));
}

static void push_i64_text(lua_State *L, int64_t v)
{
  push_decimal(L, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

static void push_i64(lua_State *L, int64_t v, int mode)
{
  if (mode == I64_STRING) { push_i64_text(L, v); return; }
#if LGRPC_NATIVE_INT64
  lua_pushinteger(L, (lua_Integer)v);
#else
  if (v >= -9007199254740992LL && v <= 9007199254740992LL) lua_pushnumber(L, (lua_Number)v);
  else push_i64_text(L, v);
#endif
}

static void push_u64(lua_State *L, uint64_t v, int mode)
{
  if (mode == I64_STRING) { push_decimal(L, v, 0); return; }
#if LGRPC_NATIVE_INT64
  lua_pushinteger(L, (lua_Integer)v); /* above 2^63: the same 64 bits, a negative integer */
#else
  if (v <= 9007199254740992ULL) lua_pushnumber(L, (lua_Number)v);
  else push_decimal(L, v, 0);
#endif
}

static void push_small(lua_State *L, int64_t v)
{
#if LGRPC_NATIVE_INT64
  lua_pushinteger(L, (lua_Integer)v);
#else
  lua_pushnumber(L, (lua_Number)v);
#endif
}

static void push_value(lua_State *L, const lgrpc_schema *s, int names, const lgrpc_field *f,
                       const lgrpc_value *v, int enum_names, int int64_mode)
{
  switch (f->type) {
  case LGRPC_TYPE_DOUBLE: lua_pushnumber(L, (lua_Number)v->v.d); break;
  case LGRPC_TYPE_FLOAT: lua_pushnumber(L, (lua_Number)v->v.f); break;
  case LGRPC_TYPE_BOOL: lua_pushboolean(L, v->v.b); break;
  case LGRPC_TYPE_STRING: case LGRPC_TYPE_BYTES: lua_pushlstring(L, v->s, v->n); break;
  case LGRPC_TYPE_INT32: case LGRPC_TYPE_SINT32: case LGRPC_TYPE_SFIXED32: push_small(L, v->v.i64); break;
  case LGRPC_TYPE_UINT32: case LGRPC_TYPE_FIXED32: push_small(L, (int64_t)v->v.u64); break;
  case LGRPC_TYPE_INT64: case LGRPC_TYPE_SINT64: case LGRPC_TYPE_SFIXED64: push_i64(L, v->v.i64, int64_mode); break;
  case LGRPC_TYPE_UINT64: case LGRPC_TYPE_FIXED64: push_u64(L, v->v.u64, int64_mode); break;
  case LGRPC_TYPE_ENUM: {
    int k = enum_names ? lgrpc_schema_enum_find(&s->enums[f->sub], (int32_t)v->v.i64) : -1;
    if (k >= 0) lua_rawgeti(L, names, s->enums[f->sub].names[k]);
    else push_small(L, v->v.i64); /* open enum, unnamed number: kept as the number */
    break;
  }
  default: lua_pushnil(L);
  }
}

/* fill absent fields of the table at t with defaults (not oneof members, messages, extensions) */
static void fill_defaults(lua_State *L, const lgrpc_schema *s, int names, const lgrpc_msgdef *m,
                          int t, int enum_names, int int64_mode)
{
  for (uint32_t j = 0; j < m->nfields; j++) {
    const lgrpc_field *f = &m->fields[j];
    if ((f->flags & LGRPC_F_EXT) || f->oneof >= 0) continue;
    if (!(f->flags & LGRPC_F_REPEATED) && (f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP))
      continue;
    lua_rawgeti(L, names, f->name);
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (!lua_isnil(L, -1)) { lua_pop(L, 2); continue; }
    lua_pop(L, 1);
    if (f->flags & LGRPC_F_REPEATED) lua_newtable(L);
    else push_value(L, s, names, f, &f->def, enum_names, int64_mode);
    lua_rawset(L, t);
  }
}

static int sink_check(lsink *c)
{
  /* room for the new frame (3 slots), its cached array and unknown slots (2) and the few
   * temporaries of one value (at most 6): sink_value and sink_unknown check nothing */
  if (c->top + 1 >= (int)(sizeof c->f / sizeof c->f[0]) || !lua_checkstack(c->L, 16))
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_DEPTH, "nesting too deep");
  return 0;
}

/* oneof: setting f clears the other members of its oneof */
static void clear_oneof(lsink *c, const lgrpc_msgdef *m, const lgrpc_field *f, int t)
{
  for (uint32_t j = 0; j < m->nfields; j++) {
    const lgrpc_field *g = &m->fields[j];
    if (g->oneof != f->oneof || g == f) continue;
    lua_rawgeti(c->L, c->names, g->name);
    lua_pushnil(c->L);
    lua_rawset(c->L, t);
  }
}

/* push t[name of f], creating a table there (sized narr, nrec) when absent */
static void get_or_new_table(lsink *c, const lgrpc_field *f, int t, int narr, int nrec)
{
  lua_State *L = c->L;
  lua_rawgeti(L, c->names, f->name);
  lua_rawget(L, t);
  if (lua_istable(L, -1)) return;
  lua_pop(L, 1);
  lua_createtable(L, narr, nrec);
  lua_rawgeti(L, c->names, f->name);
  lua_pushvalue(L, -2);
  lua_rawset(L, t);
}

#define HINT_CAP (1 << 24) /* hints are bounded by the input anyway; keep them in an int */

static int sink_reserve(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m, size_t n)
{
  lsink *c = ud;
  if (n > HINT_CAP) n = HINT_CAP;
  if (m) c->body_hint = (int)n;
  else { c->run_field = f; c->run_len = (int)n; }
  return 0;
}

/* the size hint for the elements of f, once */
static int take_run(lsink *c, const lgrpc_field *f)
{
  if (c->run_field != f) return 0;
  c->run_field = NULL;
  return c->run_len;
}

static int take_body(lsink *c)
{
  int n = c->body_hint;
  c->body_hint = 0;
  return n;
}

/* push the table of repeated or map field f of frame fr, through the frame's cached slot */
static void push_rep_table(lsink *c, kframe *fr, const lgrpc_field *f, int is_map)
{
  lua_State *L = c->L;
  if (fr->rep_field != f) {
    int n = take_run(c, f);
    get_or_new_table(c, f, fr->slot, is_map ? 0 : n, is_map ? n : 0);
    fr->rep_len = is_map ? 0 : (int)lua_rawlen(L, -1);
    if (fr->rep_slot) lua_replace(L, fr->rep_slot);
    else fr->rep_slot = lua_gettop(L); /* the frame is on top: the slot stays until it ends */
    fr->rep_field = f;
  }
}

static int sink_value(void *ud, const lgrpc_field *f, const lgrpc_value *v)
{
  lsink *c = ud;
  lua_State *L = c->L;
  kframe *fr = &c->f[c->top];
  if (fr->kind == SF_ENTRY) {
    push_value(L, c->s, c->names, f, v, c->enum_names, c->int64_mode);
    lua_replace(L, f->number == 1 ? fr->key_slot : fr->val_slot);
    return 0;
  }
  if (f->flags & LGRPC_F_REPEATED) {
    push_rep_table(c, fr, f, 0);
    push_value(L, c->s, c->names, f, v, c->enum_names, c->int64_mode);
    lua_rawseti(L, fr->rep_slot, ++fr->rep_len);
    return 0;
  }
  if (f->oneof >= 0) clear_oneof(c, fr->m, f, fr->slot);
  lua_rawgeti(L, c->names, f->name);
  push_value(L, c->s, c->names, f, v, c->enum_names, c->int64_mode);
  lua_rawset(L, fr->slot);
  return 0;
}

static int sink_begin(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m)
{
  lsink *c = ud;
  lua_State *L = c->L;
  int rc;
  if ((rc = sink_check(c))) return rc;
  kframe *fr = &c->f[c->top];
  kframe *nf = &c->f[c->top + 1];
  nf->m = m;
  nf->unk_slot = 0;
  nf->rep_field = NULL;
  nf->rep_slot = nf->rep_len = 0;
  nf->kind = SF_MSG;
  int body = take_body(c);
  if (fr->kind == SF_ENTRY) { /* the entry's value is a message */
    if (!lua_istable(L, fr->val_slot)) {
      lua_createtable(L, 0, body);
      lua_replace(L, fr->val_slot);
    }
    lua_pushvalue(L, fr->val_slot);
    nf->slot = nf->base = lua_gettop(L);
  } else if (f->flags & LGRPC_F_MAP) {
    push_rep_table(c, fr, f, 1);
    lua_pushvalue(L, fr->rep_slot);
    nf->kind = SF_ENTRY;
    nf->slot = nf->base = lua_gettop(L);
    lua_pushnil(L);
    lua_pushnil(L);
    nf->key_slot = nf->slot + 1;
    nf->val_slot = nf->slot + 2;
  } else if (f->flags & LGRPC_F_REPEATED) {
    push_rep_table(c, fr, f, 0);
    lua_createtable(L, 0, body);
    lua_pushvalue(L, -1);
    lua_rawseti(L, fr->rep_slot, ++fr->rep_len);
    nf->slot = nf->base = lua_gettop(L);
  } else {
    if (f->oneof >= 0) clear_oneof(c, fr->m, f, fr->slot);
    get_or_new_table(c, f, fr->slot, 0, body); /* present already: the occurrences merge */
    nf->slot = nf->base = lua_gettop(L);
  }
  c->top++;
  return 0;
}

static void finish_msg(lsink *c, kframe *fr)
{
  lua_State *L = c->L;
  if (fr->unk_slot) {
    luaL_Buffer b;
    int n = (int)lua_rawlen(L, fr->unk_slot);
    lua_pushliteral(L, "$unknown");
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, fr->unk_slot, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_rawset(L, fr->slot);
    fr->unk_slot = 0;
  }
  if (c->defaults) fill_defaults(L, c->s, c->names, fr->m, fr->slot, c->enum_names, c->int64_mode);
}

static void push_default(lsink *c, const lgrpc_msgdef *entry, uint32_t number)
{
  const lgrpc_field *f = lgrpc_schema_find_field(entry, number);
  if (!f) lua_pushnil(c->L);
  else if (f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP) {
    lua_newtable(c->L);
    if (c->defaults)
      fill_defaults(c->L, c->s, c->names, &c->s->msgs[f->sub], lua_gettop(c->L), c->enum_names, c->int64_mode);
  } else push_value(c->L, c->s, c->names, f, &f->def, c->enum_names, c->int64_mode);
}

static int sink_end(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m)
{
  lsink *c = ud;
  lua_State *L = c->L;
  kframe *fr = &c->f[c->top];
  if (fr->kind == SF_ENTRY) {
    if (lua_isnil(L, fr->key_slot)) { push_default(c, m, 1); lua_replace(L, fr->key_slot); }
    if (lua_isnil(L, fr->val_slot)) { push_default(c, m, 2); lua_replace(L, fr->val_slot); }
    if (!lua_isnil(L, fr->key_slot)) {
      lua_pushvalue(L, fr->key_slot);
      lua_pushvalue(L, fr->val_slot);
      lua_rawset(L, fr->slot);
    }
  } else {
    finish_msg(c, fr);
  }
  lua_settop(L, fr->base - 1);
  c->top--;
  return 0;
}

static int sink_unknown(void *ud, const uint8_t *p, size_t n)
{
  lsink *c = ud;
  lua_State *L = c->L;
  kframe *fr = &c->f[c->top];
  if (!c->keep_unknown || fr->kind != SF_MSG) return 0;
  if (!fr->unk_slot) { /* pieces, joined once when the message ends */
    lua_newtable(L);
    fr->unk_slot = lua_gettop(L);
    lua_pushliteral(L, "$unknown");
    lua_rawget(L, fr->slot);
    if (lua_type(L, -1) == LUA_TSTRING) lua_rawseti(L, fr->unk_slot, 1);
    else lua_pop(L, 1);
  }
  lua_pushlstring(L, (const char *)p, n);
  lua_rawseti(L, fr->unk_slot, (int)lua_rawlen(L, fr->unk_slot) + 1);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* decode fast path: the bytes walked straight into Lua tables, without the sink callbacks,
 * frames or path bookkeeping. It handles what messages usually hold and gives up (returns 1)
 * on anything else: groups, unknown fields kept, a closed enum number the enum does not name,
 * any malformed or invalid input, limits. The caller then runs the general walk from the
 * start on a fresh table, which builds the same tables or reports the error with its path.
 * Tables, values, merges, oneofs, map defaults and decode{defaults} go through the same
 * helpers as the sink, so both paths build the same tables. */

#define FD_GIVE_UP 1

static int fd_msg(lsink *c, const lgrpc_msgdef *m, const uint8_t *p, const uint8_t *end, int t,
                  int depth);

/* push a new table for the body s[0..n) of message m, sized by its distinct fields (for a
 * message of at most 4 fields, by its fields: the hash part would round up to 4 anyway) */
static void fd_new_msg_table(lsink *c, const lgrpc_msgdef *m, const uint8_t *s, size_t n)
{
  size_t k = m->nfields <= 4 ? m->nfields
           : lgrpc_codec_count_fields(s, s + n, (size_t)m->nfields + 1, c->s->limits.max_depth);
  lua_createtable(c->L, 0, (int)k);
}

/* a scalar, enum, string or bytes value of f read at *pp and pushed; 0 or give up */
static int fd_push_scalar(lsink *c, const lgrpc_field *f, const uint8_t **pp, const uint8_t *end)
{
  lgrpc_value v;
  if (f->op >= LGRPC_OP_STRING) { /* string, bytes (messages and groups never come here) */
    const uint8_t *s;
    size_t n;
    if (lgrpc_wire_get_len(pp, end, &s, &n)) return FD_GIVE_UP;
    if (f->op == LGRPC_OP_STRING_UTF8 && !lgrpc_wire_utf8_valid(s, n)) return FD_GIVE_UP;
    lua_pushlstring(c->L, (const char *)s, n);
    return 0;
  }
  if (lgrpc_codec_read_scalar(f, pp, end, &v)) return FD_GIVE_UP;
  if (f->op == LGRPC_OP_ENUM_CLOSED && lgrpc_schema_enum_find(&c->s->enums[f->sub], (int32_t)v.v.i64) < 0)
    return FD_GIVE_UP; /* goes to the unknown fields */
  push_value(c->L, c->s, c->names, f, &v, c->enum_names, c->int64_mode);
  return 0;
}

/* one map entry (its length prefix at *pp) of map field f into the table at map. The usual
 * entry, a scalar key then a scalar value, is pushed as it is read; anything else (a missing,
 * repeated or reordered part, a message value) goes through the two slots */
static int fd_entry(lsink *c, const lgrpc_field *f, const uint8_t **pp, const uint8_t *end, int map,
                    int depth)
{
  lua_State *L = c->L;
  const lgrpc_msgdef *em = &c->s->msgs[f->sub];
  const uint8_t *p, *e;
  size_t n;
  if (lgrpc_wire_get_len(pp, end, &p, &n)) return FD_GIVE_UP;
  e = p + n;
  int key = lua_gettop(L) + 1, val = key + 1;
  int have_key = 0, have_val = 0, in_order = 1; /* in_order: the stack holds [key [val]] as read */
  while (p < e) {
    uint64_t tag;
    if (lgrpc_wire_get_varint(&p, e, &tag)) return FD_GIVE_UP;
    uint64_t num = tag >> 3;
    const lgrpc_field *g = num == 1 || num == 2 ? lgrpc_schema_find_field(em, (uint32_t)num) : NULL;
    if (!g || (int)(tag & 7) != g->wt || g->op == LGRPC_OP_GROUP || g->op == LGRPC_OP_MAP)
      return FD_GIVE_UP;
    int is_msg = g->op == LGRPC_OP_MESSAGE;
    if (in_order && !is_msg && (num == 1 ? !have_key && !have_val : have_key && !have_val)) {
      if (fd_push_scalar(c, g, &p, e)) return FD_GIVE_UP;
    } else {
      int slot = num == 1 ? key : val;
      if (in_order) { lua_settop(L, val); in_order = 0; } /* the slots not read yet: nil */
      if (is_msg) { /* the value is a message: occurrences merge */
        const uint8_t *s;
        size_t sn;
        if (depth + 2 > c->s->limits.max_depth || lgrpc_wire_get_len(&p, e, &s, &sn)) return FD_GIVE_UP;
        if (!lua_istable(L, slot)) {
          fd_new_msg_table(c, &c->s->msgs[g->sub], s, sn);
          lua_replace(L, slot);
        }
        if (fd_msg(c, &c->s->msgs[g->sub], s, s + sn, slot, depth + 2)) return FD_GIVE_UP;
      } else {
        if (fd_push_scalar(c, g, &p, e)) return FD_GIVE_UP;
        lua_replace(L, slot);
      }
    }
    if (num == 1) have_key = 1; else have_val = 1;
  }
  if (!have_key || !have_val) {
    lua_settop(L, val);
    if (!have_key) { push_default(c, em, 1); lua_replace(L, key); }
    if (!have_val) { push_default(c, em, 2); lua_replace(L, val); }
  }
  if (have_key || !lua_isnil(L, key)) lua_rawset(L, map);
  else lua_settop(L, key - 1);
  return 0;
}

/* the message m from p[0..end) into the table at t (merging into what it holds), at depth */
static int fd_msg(lsink *c, const lgrpc_msgdef *m, const uint8_t *p, const uint8_t *end, int t,
                  int depth)
{
  lua_State *L = c->L;
  if (!lua_checkstack(L, 12)) return FD_GIVE_UP;
  int rep = lua_gettop(L) + 1; /* the array (or map) of the repeated field last seen */
  const lgrpc_field *rep_field = NULL;
  int rep_len = 0;
  lua_pushnil(L);
  while (p < end) {
    const uint8_t *rec = p;
    uint64_t tag;
    if (lgrpc_wire_get_varint(&p, end, &tag)) return FD_GIVE_UP;
    uint64_t num = tag >> 3;
    int wt = (int)(tag & 7);
    const lgrpc_field *f = num - 1 < LGRPC_WIRE_MAX_FIELD ? lgrpc_schema_find_field(m, (uint32_t)num) : NULL;
    int packed = 0;
    if (!f || wt != f->wt) {
      if (f && wt == LGRPC_WT_LEN && (f->flags & LGRPC_F_REPEATED) && f->op <= LGRPC_OP_LAST_PACKABLE) {
        packed = 1;
      } else if (!c->keep_unknown && num - 1 < LGRPC_WIRE_MAX_FIELD && wt != LGRPC_WT_SGROUP &&
                 wt != LGRPC_WT_EGROUP && wt <= LGRPC_WT_I32) {
        if (lgrpc_wire_skip(&p, end, (uint32_t)num, wt, c->s->limits.max_depth - depth)) return FD_GIVE_UP;
        continue; /* unknown = "drop" */
      } else {
        return FD_GIVE_UP;
      }
    }
    if (f->op == LGRPC_OP_GROUP) return FD_GIVE_UP;
    if (f->flags & LGRPC_F_REPEATED) {
      if (rep_field != f) {
        int is_map = f->op == LGRPC_OP_MAP, hint;
        if (packed) {
          const uint8_t *q = p, *s;
          size_t n;
          hint = lgrpc_wire_get_len(&q, end, &s, &n) ? 0 : (int)lgrpc_codec_count_packed(f, s, n);
        } else {
          hint = (int)lgrpc_codec_count_run(rec, end, tag, c->s->limits.max_depth);
        }
        if (hint > HINT_CAP) hint = HINT_CAP;
        lua_rawgeti(L, c->names, f->name);
        if (rawget_type(L, t) != LUA_TTABLE) {
          lua_pop(L, 1);
          lua_createtable(L, is_map ? 0 : hint, is_map ? hint : 0);
          lua_rawgeti(L, c->names, f->name);
          lua_pushvalue(L, -2);
          lua_rawset(L, t);
        }
        lua_replace(L, rep);
        rep_len = is_map ? 0 : (int)lua_rawlen(L, rep);
        rep_field = f;
      }
      if (packed) {
        const uint8_t *s, *e;
        size_t n;
        if (lgrpc_wire_get_len(&p, end, &s, &n)) return FD_GIVE_UP;
        e = s + n;
        if (f->op == LGRPC_OP_INT32 || f->op == LGRPC_OP_UINT32 || f->op == LGRPC_OP_SINT32) {
          while (s < e) { /* the usual packed run: 32-bit integers pushed as they are read */
            uint64_t u;
            if (lgrpc_wire_get_varint(&s, e, &u)) return FD_GIVE_UP;
            int64_t x = f->op == LGRPC_OP_INT32 ? (int64_t)(int32_t)(uint32_t)u
                      : f->op == LGRPC_OP_UINT32 ? (int64_t)(uint32_t)u
                      : (int64_t)lgrpc_wire_unzigzag32((uint32_t)u);
            push_small(L, x);
            lua_rawseti(L, rep, ++rep_len);
          }
        }
        while (s < e) {
          if (fd_push_scalar(c, f, &s, e)) return FD_GIVE_UP;
          lua_rawseti(L, rep, ++rep_len);
        }
      } else if (f->op == LGRPC_OP_MAP) {
        if (depth + 1 > c->s->limits.max_depth || fd_entry(c, f, &p, end, rep, depth)) return FD_GIVE_UP;
      } else if (f->op == LGRPC_OP_MESSAGE) {
        const uint8_t *s;
        size_t n;
        if (depth + 1 > c->s->limits.max_depth || lgrpc_wire_get_len(&p, end, &s, &n)) return FD_GIVE_UP;
        const lgrpc_msgdef *sm = &c->s->msgs[f->sub];
        fd_new_msg_table(c, sm, s, n);
        lua_pushvalue(L, -1);
        lua_rawseti(L, rep, ++rep_len);
        if (fd_msg(c, sm, s, s + n, lua_gettop(L), depth + 1)) return FD_GIVE_UP;
        lua_pop(L, 1);
      } else {
        if (fd_push_scalar(c, f, &p, end)) return FD_GIVE_UP;
        lua_rawseti(L, rep, ++rep_len);
      }
      continue;
    }
    if (f->oneof >= 0) clear_oneof(c, m, f, t);
    if (f->op == LGRPC_OP_MESSAGE) { /* present already: the occurrences merge */
      const uint8_t *s;
      size_t n;
      if (depth + 1 > c->s->limits.max_depth || lgrpc_wire_get_len(&p, end, &s, &n)) return FD_GIVE_UP;
      const lgrpc_msgdef *sm = &c->s->msgs[f->sub];
      lua_rawgeti(L, c->names, f->name);
      if (rawget_type(L, t) != LUA_TTABLE) {
        lua_pop(L, 1);
        fd_new_msg_table(c, sm, s, n);
        lua_rawgeti(L, c->names, f->name);
        lua_pushvalue(L, -2);
        lua_rawset(L, t);
      }
      if (fd_msg(c, sm, s, s + n, lua_gettop(L), depth + 1)) return FD_GIVE_UP;
      lua_pop(L, 1);
      continue;
    }
    lua_rawgeti(L, c->names, f->name);
    if (fd_push_scalar(c, f, &p, end)) return FD_GIVE_UP;
    lua_rawset(L, t);
  }
  lua_settop(L, rep - 1);
  if (c->defaults) fill_defaults(L, c->s, c->names, m, t, c->enum_names, c->int64_mode);
  return 0;
}

/* after decode: every proto2 required field present, else "path: missing required field" */
static int check_required(lua_State *L, const lgrpc_schema *s, int names, const lgrpc_msgdef *m,
                          int t, char *path, size_t plen, size_t cap, int depth)
{
  if (!(m->flags & LGRPC_M_HAS_REQUIRED) || depth > MAX_DEPTH_CAP || !lua_checkstack(L, 6)) return 0;
  for (uint32_t j = 0; j < m->nfields; j++) {
    const lgrpc_field *f = &m->fields[j];
    int is_msg = f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP;
    if (f->label != LGRPC_LABEL_REQUIRED && !(is_msg && (s->msgs[f->sub].flags & LGRPC_M_HAS_REQUIRED)))
      continue;
    size_t n = plen + (size_t)snprintf(path + plen, cap - plen, ".%s", f->cname);
    if (n >= cap) n = cap - 1;
    lua_rawgeti(L, names, f->name);
    lua_rawget(L, t);
    int v = lua_gettop(L);
    if (lua_isnil(L, v)) {
      lua_pop(L, 1);
      if (f->label == LGRPC_LABEL_REQUIRED) { snprintf(path + n, cap - n, ": missing required field"); return 1; }
      continue;
    }
    if (is_msg && lua_istable(L, v)) {
      const lgrpc_msgdef *sm = &s->msgs[f->sub];
      if (f->flags & LGRPC_F_MAP) {
        lua_pushnil(L);
        while (lua_next(L, v)) {
          if (lua_istable(L, -1)) {
            const lgrpc_field *vf = lgrpc_schema_find_field(sm, 2);
            if (vf && vf->sub >= 0 && check_required(L, s, names, &s->msgs[vf->sub], lua_gettop(L), path, n, cap, depth + 1))
              return 1;
          }
          lua_pop(L, 1);
        }
      } else if (f->flags & LGRPC_F_REPEATED) {
        int len = (int)lua_rawlen(L, v);
        for (int i = 1; i <= len; i++) {
          lua_rawgeti(L, v, i);
          if (lua_istable(L, -1) && check_required(L, s, names, sm, lua_gettop(L), path, n, cap, depth + 1))
            return 1;
          lua_pop(L, 1);
        }
      } else if (check_required(L, s, names, sm, v, path, n, cap, depth + 1)) {
        return 1;
      }
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* methods */

/* frame scratch: the schema's own (allocated once), or for a re-entrant call a userdata */
static void *scratch(lua_State *L, lschema *S, void **slot, size_t size)
{
  if (!S->busy) {
    if (!*slot) *slot = malloc(size); /* owned by S */
    if (*slot) { lua_pushnil(L); return *slot; }
  }
  return lua_newuserdata(L, size);
}

/* the message index for the name at stack index idx, or -1 */
static int find_message(lua_State *L, lschema *S, int idx)
{
  const char *name = lua_tostring(L, idx);
  if (name && name == S->last_name) return S->last_msg;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aux_ref);
  lua_rawgeti(L, -1, AUX_MSGIDX);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  int i = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tonumber(L, -1) : -1;
  lua_pop(L, 2);
  if (i >= 0 && name) { /* remember it: the aux table anchors the string */
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, AUX_LAST_NAME);
    S->last_name = name;
    S->last_msg = i;
  }
  lua_pop(L, 1);
  return i;
}

static int opt_bool(lua_State *L, int opts, const char *name)
{
  if (lua_isnoneornil(L, opts)) return 0;
  lua_getfield(L, opts, name);
  int b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

/* an option among choices[] (first = default); a bad value is a programmer error */
static int opt_choice(lua_State *L, int opts, const char *name, const char *const choices[])
{
  if (lua_isnoneornil(L, opts)) return 0;
  lua_getfield(L, opts, name);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
  const char *v = lua_tostring(L, -1);
  for (int i = 0; v && choices[i]; i++)
    if (!strcmp(v, choices[i])) { lua_pop(L, 1); return i; }
  return luaL_error(L, "option %s: expected one of '%s', '%s'", name, choices[0], choices[1]);
}

static int fail_nil(lua_State *L, const char *msg)
{
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

static int unknown_message(lua_State *L)
{
  lua_pushnil(L);
  lua_pushfstring(L, "unknown message type '%s'", lua_tostring(L, 2));
  return 2;
}

/* schema:encode(name, tbl [, opts]) -> bytes | nil, err */
static int schema_encode(lua_State *L)
{
  lschema *S = check_schema(L);
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  int msg = find_message(L, S, 2);
  if (msg < 0) return unknown_message(L);
  lsrc *c = scratch(L, S, &S->scratch_src, sizeof *c); /* pushes slot 5 */
  lgrpc_codec_err err;
  c->L = L;
  c->s = S->s;
  c->err = &err;
  c->deterministic = opt_bool(L, 4, "deterministic");
  int partial = opt_bool(L, 4, "partial");
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aux_ref);
  lua_rawgeti(L, -1, AUX_NAMES);
  c->names = lua_gettop(L);
  lua_rawgeti(L, -2, AUX_ENUMS);
  c->enums = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(2));
  c->tostr = lua_gettop(L);
  c->top = 0;
  c->f[0].kind = SF_MSG;
  c->f[0].slot = 3;
  c->f[0].base = lua_gettop(L) + 1;
  lgrpc_codec_source src = { c, src_field, src_item, src_leave, src_unknown };
  lgrpc_wbuf local, *out = &S->buf;
  if (S->busy) { lgrpc_wbuf_init(&local, S->s->limits.max_size); out = &local; }
  S->busy++;
  out->len = 0;
  int rc = FE_GIVE_UP;
  if (!c->deterministic) { /* the fast path first; the source path when it gives up */
    lua_pushliteral(L, "$unknown");
    fenc e = { L, S->s, out, c->names, c->enums, lua_gettop(L), partial };
    rc = fe_msg(&e, &S->s->msgs[msg], 3, 0);
    if (!rc && out->len > S->s->limits.max_size) rc = FE_GIVE_UP;
    lua_settop(L, c->tostr);
    if (rc) out->len = 0;
  }
  if (rc) rc = lgrpc_codec_encode(S->s, (uint32_t)msg, &src, out, partial, &err);
  S->busy--;
  if (rc) lua_pushnil(L);
  else lua_pushlstring(L, (const char *)out->data, out->len);
  if (out == &local) lgrpc_wbuf_free(&local);
  else if (out->cap > (1u << 20)) lgrpc_wbuf_free(out); /* do not keep a huge buffer around */
  if (rc) { lua_pushstring(L, err.msg); return 2; }
  return 1;
}

static const char *const ENUM_CHOICES[] = { "name", "number", NULL };
static const char *const INT64_CHOICES[] = { "native", "string", NULL };
static const char *const UNKNOWN_CHOICES[] = { "keep", "drop", NULL };

/* schema:decode(name, bytes [, opts]) -> table | nil, err */
static int schema_decode(lua_State *L)
{
  lschema *S = check_schema(L);
  luaL_checkstring(L, 2);
  size_t n;
  const char *p = luaL_checklstring(L, 3, &n);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  int msg = find_message(L, S, 2);
  if (msg < 0) return unknown_message(L);
  lsink *c = scratch(L, S, &S->scratch_sink, sizeof *c); /* pushes slot 5 */
  lgrpc_codec_err err;
  c->L = L;
  c->s = S->s;
  c->err = &err;
  int partial = 0;
  c->enum_names = c->keep_unknown = 1;
  c->int64_mode = I64_NATIVE;
  c->defaults = 0;
  if (!lua_isnil(L, 4)) {
    c->enum_names = opt_choice(L, 4, "enums", ENUM_CHOICES) == 0;
    c->int64_mode = opt_choice(L, 4, "int64", INT64_CHOICES) == 1 ? I64_STRING : I64_NATIVE;
    c->keep_unknown = opt_choice(L, 4, "unknown", UNKNOWN_CHOICES) == 0;
    c->defaults = opt_bool(L, 4, "defaults");
    partial = opt_bool(L, 4, "partial");
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aux_ref);
  lua_rawgeti(L, -1, AUX_NAMES);
  c->names = lua_gettop(L);
  const lgrpc_msgdef *m = &S->s->msgs[msg];
  lua_createtable(L, 0, (int)(m->nfields < 64 ? m->nfields : 64));
  int root = lua_gettop(L);
  c->top = 0;
  c->f[0].kind = SF_MSG;
  c->f[0].slot = c->f[0].base = root;
  c->f[0].unk_slot = 0;
  c->f[0].m = m;
  c->f[0].rep_field = NULL;
  c->f[0].rep_slot = c->f[0].rep_len = 0;
  c->run_field = NULL;
  c->run_len = c->body_hint = 0;
  if (!lua_checkstack(L, 16)) return luaL_error(L, "Lua stack overflow"); /* see sink_check */
  S->busy++;
  int rc = fd_msg(c, m, (const uint8_t *)p, (const uint8_t *)p + n, root, 0);
  if (rc) { /* the general walk from the start, on a fresh table */
    lua_settop(L, root - 1);
    lua_createtable(L, 0, (int)(m->nfields < 64 ? m->nfields : 64));
    lgrpc_codec_sink sink = { c, sink_value, sink_begin, sink_end, sink_unknown, sink_reserve };
    rc = lgrpc_codec_decode(S->s, (uint32_t)msg, (const uint8_t *)p, n, &sink, &err);
    if (!rc) finish_msg(c, &c->f[0]);
  }
  S->busy--;
  if (rc) return fail_nil(L, err.msg);
  lua_settop(L, root);
  if (!partial && (m->flags & LGRPC_M_HAS_REQUIRED)) {
    char path[600];
    size_t plen = (size_t)snprintf(path, sizeof path, "%s", m->full_name);
    if (check_required(L, S->s, c->names, m, root, path, plen, sizeof path, 0)) return fail_nil(L, path);
    lua_settop(L, root);
  }
  return 1;
}

/* schema:new(name [, opts]) -> table with defaults | nil, err */
static int schema_new(lua_State *L)
{
  lschema *S = check_schema(L);
  luaL_checkstring(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  int msg = find_message(L, S, 2);
  if (msg < 0) return unknown_message(L);
  int enum_names = opt_choice(L, 3, "enums", ENUM_CHOICES) == 0;
  int mode = opt_choice(L, 3, "int64", INT64_CHOICES) == 1 ? I64_STRING : I64_NATIVE;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aux_ref);
  lua_rawgeti(L, -1, AUX_NAMES);
  int names = lua_gettop(L);
  const lgrpc_msgdef *m = &S->s->msgs[msg];
  lua_createtable(L, 0, (int)(m->nfields < 64 ? m->nfields : 64));
  fill_defaults(L, S->s, names, m, lua_gettop(L), enum_names, mode);
  return 1;
}

/* schema:has(name) -> boolean */
static int schema_has(lua_State *L)
{
  lschema *S = check_schema(L);
  luaL_checkstring(L, 2);
  lua_pushboolean(L, find_message(L, S, 2) >= 0);
  return 1;
}

static int schema_tostring(lua_State *L)
{
  lschema *S = luaL_checkudata(L, 1, SCHEMA_MT);
  if (S->s) lua_pushfstring(L, "lgrpc.codec.schema (%d messages, %d enums)", (int)S->s->nmsgs, (int)S->s->nenums);
  else lua_pushliteral(L, "lgrpc.codec.schema (closed)");
  return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* compile(plan [, limits]) -> schema | nil, err */

static int getfield_int(lua_State *L, int t, const char *k, int dflt)
{
  lua_getfield(L, t, k);
  int v = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tonumber(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

static int getfield_bool(lua_State *L, int t, const char *k)
{
  lua_getfield(L, t, k);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* name -> id in the names array (interning through the table at `index`) */
static int intern(lua_State *L, int names, int index, int str)
{
  lua_pushvalue(L, str);
  lua_rawget(L, index);
  if (lua_type(L, -1) == LUA_TNUMBER) {
    int id = (int)lua_tonumber(L, -1);
    lua_pop(L, 1);
    return id;
  }
  lua_pop(L, 1);
  int id = (int)lua_rawlen(L, names) + 1;
  lua_pushvalue(L, str);
  lua_rawseti(L, names, id);
  lua_pushvalue(L, str);
  lua_pushinteger(L, id);
  lua_rawset(L, index);
  return id;
}

/* a field default from its descriptor default_value text */
static int parse_default(lua_State *L, lgrpc_field *f, int idx, char *err, size_t errlen)
{
  size_t n;
  lint li;
  if (f->type == LGRPC_TYPE_ENUM) {
    if (lua_type(L, idx) != LUA_TNUMBER) {
      snprintf(err, errlen, "field %s: invalid enum default", f->cname);
      return -1;
    }
    f->def.v.i64 = (int64_t)lua_tonumber(L, idx);
    return 0;
  }
  const char *s = lua_tolstring(L, idx, &n);
  switch (f->type) {
  case LGRPC_TYPE_STRING: case LGRPC_TYPE_BYTES: f->def.s = s; f->def.n = n; return 0;
  case LGRPC_TYPE_BOOL: f->def.v.b = n == 4 && !memcmp(s, "true", 4); return 0;
  case LGRPC_TYPE_DOUBLE: case LGRPC_TYPE_FLOAT: {
    char *end;
    double d = strtod(s, &end);
    if (end == s) break;
    if (f->type == LGRPC_TYPE_DOUBLE) f->def.v.d = d; else f->def.v.f = to_float(d);
    return 0;
  }
  default:
    if (!parse_decimal(s, n, 0, NULL, &li)) break;
    f->def.v.i64 = li.i;
    return 0;
  }
  snprintf(err, errlen, "field %s: invalid default value '%s'", f->cname, s ? s : "?");
  return -1;
}

static int compile_fail(lua_State *L, lschema *S, const char *msg)
{
  lgrpc_schema_free(S->s);
  S->s = NULL;
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

static int codec_compile(lua_State *L)
{
  char err[300];
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_getfield(L, 1, "messages");
  lua_getfield(L, 1, "enums");
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  int nmsgs = (int)lua_rawlen(L, 3), nenums = (int)lua_rawlen(L, 4);
  lschema *S = lua_newuserdata(L, sizeof *S); /* 5 */
  S->s = NULL;
  S->aux_ref = LUA_NOREF;
  S->busy = 0;
  S->scratch_src = S->scratch_sink = NULL;
  S->last_name = NULL;
  S->last_msg = -1;
  lgrpc_wbuf_init(&S->buf, 0);
  luaL_getmetatable(L, SCHEMA_MT);
  lua_setmetatable(L, -2);
  S->s = lgrpc_schema_new((uint32_t)nmsgs, (uint32_t)nenums);
  if (!S->s) return luaL_error(L, "out of memory");
  if (!lua_isnil(L, 2)) {
    int d = getfield_int(L, 2, "max_depth", 100);
    int sz = getfield_int(L, 2, "max_size", 0x7fffffff);
    if (d < 1 || d > MAX_DEPTH_CAP) return luaL_error(L, "max_depth must be 1..%d", MAX_DEPTH_CAP);
    if (sz < 1) return luaL_error(L, "max_size must be positive");
    S->s->limits.max_depth = d;
    S->s->limits.max_size = (size_t)sz;
  }
  lgrpc_wbuf_init(&S->buf, S->s->limits.max_size);
  lua_createtable(L, 3, 0); /* 6: aux */
  lua_newtable(L);          /* 7: names */
  lua_newtable(L);          /* 8: msgidx */
  lua_createtable(L, nenums, 0); /* 9: enum name -> number tables */
  lua_newtable(L);          /* 10: interning index */
  int names = 7, msgidx = 8, enums = 9, index = 10;
  for (int i = 0; i < nenums; i++) {
    lua_rawgeti(L, 4, i + 1);
    int e = lua_gettop(L);
    lua_getfield(L, e, "name");
    lua_getfield(L, e, "values");
    if (!lua_isstring(L, e + 1) || !lua_istable(L, e + 2)) return compile_fail(L, S, "enum plan without name or values");
    int nv = (int)lua_rawlen(L, e + 2);
    if (lgrpc_schema_set_enum(S->s, (uint32_t)i, lua_tostring(L, e + 1), (uint32_t)nv, getfield_bool(L, e, "closed")))
      return compile_fail(L, S, "enum plan: out of memory");
    lua_newtable(L); /* e+3: name -> number */
    for (int j = 0; j < nv; j++) {
      lua_rawgeti(L, e + 2, j + 1);
      lua_getfield(L, -1, "name");
      int number = getfield_int(L, -2, "number", 0);
      int id = intern(L, names, index, lua_gettop(L));
      lgrpc_schema_set_enum_value(S->s, (uint32_t)i, (uint32_t)j, number, id);
      lua_pushinteger(L, number);
      lua_rawset(L, e + 3);
      lua_pop(L, 1);
    }
    lua_rawseti(L, enums, i + 1);
    lua_settop(L, e - 1);
  }
  for (int i = 0; i < nmsgs; i++) {
    lua_rawgeti(L, 3, i + 1);
    int m = lua_gettop(L);
    lua_getfield(L, m, "name");
    lua_getfield(L, m, "fields");
    if (!lua_isstring(L, m + 1) || !lua_istable(L, m + 2)) return compile_fail(L, S, "message plan without name or fields");
    int nf = (int)lua_rawlen(L, m + 2);
    uint32_t flags = getfield_bool(L, m, "map_entry") ? LGRPC_M_MAP_ENTRY : 0;
    if (lgrpc_schema_set_message(S->s, (uint32_t)i, lua_tostring(L, m + 1), (uint32_t)nf,
                                 (uint32_t)getfield_int(L, m, "noneofs", 0), flags))
      return compile_fail(L, S, "message plan: out of memory");
    lua_pushvalue(L, m + 1);
    lua_pushinteger(L, i);
    lua_rawset(L, msgidx);
    for (int j = 0; j < nf; j++) {
      lua_rawgeti(L, m + 2, j + 1);
      int fi = lua_gettop(L);
      lgrpc_field f;
      memset(&f, 0, sizeof f);
      lua_getfield(L, fi, "name");
      if (!lua_isstring(L, -1)) return compile_fail(L, S, "field plan without name");
      f.cname = lua_tostring(L, -1);
      f.name = intern(L, names, index, lua_gettop(L));
      f.number = (uint32_t)getfield_int(L, fi, "number", 0);
      f.type = (uint8_t)getfield_int(L, fi, "type", 0);
      f.label = (uint8_t)getfield_int(L, fi, "label", LGRPC_LABEL_OPTIONAL);
      f.sub = getfield_int(L, fi, "sub", -1);
      f.oneof = getfield_int(L, fi, "oneof", -1);
      f.flags = (uint8_t)((getfield_bool(L, fi, "packed") ? LGRPC_F_PACKED : 0) |
                          (getfield_bool(L, fi, "presence") ? LGRPC_F_PRESENCE : 0) |
                          (getfield_bool(L, fi, "utf8") ? LGRPC_F_UTF8 : 0) |
                          (getfield_bool(L, fi, "map") ? LGRPC_F_MAP : 0) |
                          (getfield_bool(L, fi, "ext") ? LGRPC_F_EXT : 0));
      if (f.type == LGRPC_TYPE_ENUM && f.sub >= 0 && f.sub < nenums)
        f.def.v.i64 = S->s->enums[f.sub].default_number;
      lua_getfield(L, fi, "default");
      if (!lua_isnil(L, -1) && parse_default(L, &f, lua_gettop(L), err, sizeof err))
        return compile_fail(L, S, err);
      if (lgrpc_schema_set_field(S->s, (uint32_t)i, (uint32_t)j, &f))
        return compile_fail(L, S, "field plan: out of memory");
      lua_settop(L, fi - 1);
    }
    lua_settop(L, m - 1);
  }
  if (lgrpc_schema_finish(S->s, err, sizeof err)) return compile_fail(L, S, err);
  lua_pushvalue(L, names);
  lua_rawseti(L, 6, AUX_NAMES);
  lua_pushvalue(L, msgidx);
  lua_rawseti(L, 6, AUX_MSGIDX);
  lua_pushvalue(L, enums);
  lua_rawseti(L, 6, AUX_ENUMS);
  lua_pushvalue(L, 6);
  S->aux_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 5);
  return 1;
}

int lgrpc_lua_open_codec(lua_State *L)
{
  static const luaL_Reg methods[] = {
    { "encode", schema_encode }, { "decode", schema_decode }, { "new", schema_new },
    { "has", schema_has }, { "close", schema_close }, { NULL, NULL }
  };
  if (luaL_newmetatable(L, SCHEMA_MT)) {
    lua_newtable(L);
    for (const luaL_Reg *r = methods; r->name; r++) { /* upvalues: the metatable (tostring) */
      lua_pushvalue(L, -2);
      if (r->func == schema_encode) { LGRPC_GETGLOBAL(L, "tostring"); lua_pushcclosure(L, r->func, 2); }
      else lua_pushcclosure(L, r->func, 1);
      lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, schema_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, schema_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, schema_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, codec_compile);
  lua_setfield(L, -2, "compile");
  return 1;
}

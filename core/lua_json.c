/* lua_json.c — `lgrpc.core.json`: Lua values from core/json.c's reader events, Lua values into
 * its writer, and its number/base64 helpers. Holds no JSON grammar of its own.
 * Value tree: objects are tables with the `object` metatable, keys in order at [1..n] and values
 * at t[key]; arrays are sequences with the `array` metatable; null is `null` (a light userdata);
 * numbers are Lua numbers when exact, else `number` boxes { text = source, value = double }. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "lua_bind.h"
#include "json.h"

#if LUA_VERSION_NUM == 501
#define rawlen(L, i) lua_objlen(L, i)
#else
#define rawlen(L, i) lua_rawlen(L, i)
#endif

#define MT_OBJECT "lgrpc.json.object"
#define MT_ARRAY "lgrpc.json.array"
#define MT_NUMBER "lgrpc.json.number"
#define MT_WRITER "lgrpc.json.writer"
#define DEFAULT_MAX_DEPTH 200
#define DEFAULT_OUTPUT_LIMIT ((size_t)1 << 30)

/* ---- numbers as Lua values ---- */

/* Pushes the exact integer -mag/mag: a Lua integer on 5.4 (uint64 beyond 2^63-1 wraps to the same
 * 64 bits when wrap is set), else a number when |v| <= 2^53 (LuaJIT), else its decimal string. */
static int push_integer(lua_State *L, int neg, uint64_t mag, int unsigned64)
{
#if LUA_VERSION_NUM >= 503
  if (neg) {
    if (mag > (uint64_t)1 << 63) return 0;
    lua_pushinteger(L, (lua_Integer)(0 - mag));
    return 1;
  }
  if (mag > (uint64_t)INT64_MAX && !unsigned64) return 0;
  lua_pushinteger(L, (lua_Integer)mag);
  return 1;
#else
  (void)unsigned64;
  if (mag <= (uint64_t)1 << 53) {
    lua_pushnumber(L, neg ? -(lua_Number)mag : (lua_Number)mag);
  } else {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%s%llu", neg ? "-" : "", (unsigned long long)mag);
    lua_pushstring(L, tmp);
  }
  return 1;
#endif
}

static void push_number_box(lua_State *L, const char *text, size_t n)
{
  char tmp[64];
  double v;
  lua_createtable(L, 0, 2);
  lua_pushlstring(L, text, n);
  lua_setfield(L, -2, "text");
  if (n < sizeof tmp) {
    memcpy(tmp, text, n);
    tmp[n] = '\0';
    v = strtod(tmp, NULL);
  } else {
    char *heap = malloc(n + 1); /* owner: this block */
    if (!heap) v = strtod(text, NULL); /* text is followed by a delimiter, never a digit */
    else {
      memcpy(heap, text, n);
      heap[n] = '\0';
      v = strtod(heap, NULL);
      free(heap);
    }
  }
  lua_pushnumber(L, v);
  lua_setfield(L, -2, "value");
  luaL_setmetatable(L, MT_NUMBER);
}

/* ---- reader sink: builds the tree on the Lua stack ---- */

typedef struct tree_sink {
  lua_State *L;
  int depth;
  char is_array[LGRPC_JSON_MAX_DEPTH + 1];
  lua_Integer count[LGRPC_JSON_MAX_DEPTH + 1];
} tree_sink;

/* The new value is on top; hang it on its container (or leave it as the root). */
static int attach(tree_sink *t)
{
  lua_State *L = t->L;
  if (t->depth == 0) return 0;
  if (t->is_array[t->depth]) {
    lua_rawseti(L, -2, (int)++t->count[t->depth]);
    return 0;
  }
  /* stack: object, key, value */
  lua_pushvalue(L, -2);
  lua_rawget(L, -4);
  int dup = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (dup) return LGRPC_EJSON_DUPKEY;
  lua_pushvalue(L, -2);
  lua_rawseti(L, -4, (int)++t->count[t->depth]);
  lua_rawset(L, -3);
  return 0;
}

static int sink_begin(void *ud, int kind)
{
  tree_sink *t = ud;
  if (!lua_checkstack(t->L, 4)) return LGRPC_EJSON_NOMEM;
  lua_newtable(t->L);
  luaL_setmetatable(t->L, kind == LGRPC_JSON_ARRAY ? MT_ARRAY : MT_OBJECT);
  t->depth++;
  t->is_array[t->depth] = kind == LGRPC_JSON_ARRAY;
  t->count[t->depth] = 0;
  return 0;
}

static int sink_end(void *ud, int kind)
{
  tree_sink *t = ud;
  (void)kind;
  t->depth--;
  return attach(t);
}

static int sink_key(void *ud, const char *s, size_t n)
{
  tree_sink *t = ud;
  lua_pushlstring(t->L, s, n);
  return 0;
}

static int sink_scalar(void *ud, int kind, const char *s, size_t n)
{
  tree_sink *t = ud;
  lua_State *L = t->L;
  switch (kind) {
  case LGRPC_JSON_STRING: lua_pushlstring(L, s, n); break;
  case LGRPC_JSON_TRUE: lua_pushboolean(L, 1); break;
  case LGRPC_JSON_FALSE: lua_pushboolean(L, 0); break;
  case LGRPC_JSON_NULL: lua_pushlightuserdata(L, NULL); break;
  case LGRPC_JSON_INTEGER: {
    int neg;
    uint64_t mag;
    if (lgrpc_json_number_integer(s, n, &neg, &mag) == 0) {
#if LUA_VERSION_NUM >= 503
      if (push_integer(L, neg, mag, 0)) break;
#else
      if (mag <= (uint64_t)1 << 53) { lua_pushnumber(L, neg ? -(lua_Number)mag : (lua_Number)mag); break; }
#endif
    }
    push_number_box(L, s, n);
    break;
  }
  default: push_number_box(L, s, n); break;
  }
  return attach(t);
}

static const lgrpc_json_sink tree_sink_fns = { sink_begin, sink_end, sink_key, sink_scalar };

/* decode(text [, max_depth]) -> value | nil, "$.path: message at byte N" */
static int l_decode(lua_State *L)
{
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  lua_Integer max_depth = luaL_optinteger(L, 2, DEFAULT_MAX_DEPTH);
  if (max_depth < 1 || max_depth > LGRPC_JSON_MAX_DEPTH)
    return luaL_argerror(L, 2, "max_depth out of range");
  lua_settop(L, 2);
  char *scratch = lua_newuserdata(L, n ? n : 1); /* owner: the Lua GC (stack slot 3) */
  tree_sink *t = lua_newuserdata(L, sizeof *t);  /* owner: the Lua GC (stack slot 4) */
  t->L = L;
  t->depth = 0;
  lgrpc_json_error err;
  int rc = lgrpc_json_parse(text, n, scratch, (int)max_depth, &tree_sink_fns, t, &err);
  if (rc) {
    lua_settop(L, 0);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s at byte %d", err.path, err.message, (int)err.offset + 1);
    return 2;
  }
  return 1;
}

/* ---- writer: walks a tree ---- */

static int writer_gc(lua_State *L)
{
  lgrpc_json_writer *w = luaL_checkudata(L, 1, MT_WRITER);
  lgrpc_json_writer_free(w);
  return 0;
}

static const char *write_value(lua_State *L, lgrpc_json_writer *w, int idx, int depth);

static const char *write_number(lua_State *L, lgrpc_json_writer *w, int idx)
{
  char tmp[48];
  int rc;
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    int k = snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
    rc = lgrpc_json_write_raw(w, tmp, (size_t)k);
    return rc ? lgrpc_json_strerror(rc) : NULL;
  }
#endif
  lua_Number v = lua_tonumber(L, idx);
  if (!isfinite(v)) return "number is not finite";
#if LUA_VERSION_NUM < 503
  if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
    int k = snprintf(tmp, sizeof tmp, "%.0f", (double)v);
    rc = lgrpc_json_write_raw(w, tmp, (size_t)k);
    return rc ? lgrpc_json_strerror(rc) : NULL;
  }
#endif
  rc = lgrpc_json_write_double(w, (double)v);
  return rc ? lgrpc_json_strerror(rc) : NULL;
}

static const char *write_value(lua_State *L, lgrpc_json_writer *w, int idx, int depth)
{
  int rc = 0;
  if (depth > LGRPC_JSON_MAX_DEPTH) return "nesting too deep (or a cycle)";
  if (!lua_checkstack(L, 6)) return "nesting too deep";
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    rc = lua_toboolean(L, idx) ? lgrpc_json_write_raw(w, "true", 4) : lgrpc_json_write_raw(w, "false", 5);
    break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) != NULL) return "unexpected light userdata";
    rc = lgrpc_json_write_raw(w, "null", 4);
    break;
  case LUA_TNUMBER: return write_number(L, w, idx);
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    rc = lgrpc_json_write_string(w, s, n);
    if (rc == LGRPC_EJSON_STRING) return "string is not valid UTF-8";
    break;
  }
  case LUA_TTABLE: {
    int kind = LGRPC_JSON_ARRAY;
    if (lua_getmetatable(L, idx)) {
      luaL_getmetatable(L, MT_OBJECT);
      luaL_getmetatable(L, MT_NUMBER);
      if (lua_rawequal(L, -3, -2)) kind = LGRPC_JSON_OBJECT;
      else if (lua_rawequal(L, -3, -1)) kind = LGRPC_JSON_NUMBER;
      lua_pop(L, 3);
    }
    if (kind == LGRPC_JSON_NUMBER) {
      size_t n;
      lua_getfield(L, idx, "text");
      const char *s = lua_tolstring(L, -1, &n);
      if (!s || lua_type(L, -1) != LUA_TSTRING || !lgrpc_json_is_number(s, n)) {
        lua_pop(L, 1);
        return "number box without a valid JSON number text";
      }
      rc = lgrpc_json_write_raw(w, s, n);
      lua_pop(L, 1);
      break;
    }
    if ((rc = lgrpc_json_write_begin(w, kind))) break;
    size_t len = rawlen(L, idx);
    for (size_t i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, (int)i);
      if (kind == LGRPC_JSON_OBJECT) {
        size_t kn;
        if (lua_type(L, -1) != LUA_TSTRING) { lua_pop(L, 1); return "object key is not a string"; }
        const char *k = lua_tolstring(L, -1, &kn);
        if ((rc = lgrpc_json_write_key(w, k, kn))) {
          lua_pop(L, 1);
          return rc == LGRPC_EJSON_STRING ? "object key is not valid UTF-8" : lgrpc_json_strerror(rc);
        }
        lua_rawget(L, idx);
        if (lua_isnil(L, -1)) { lua_pop(L, 1); return "object key without a value"; }
      }
      const char *e = write_value(L, w, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
      if (e) return e;
    }
    rc = lgrpc_json_write_end(w, kind);
    break;
  }
  default: return "cannot write a function, userdata or thread as JSON";
  }
  return rc ? lgrpc_json_strerror(rc) : NULL;
}

/* encode(value [, indent [, ascii]]) -> text | nil, err */
static int l_encode(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_Integer indent = luaL_optinteger(L, 2, 0);
  int ascii = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  if (indent < 0 || indent > 64) return luaL_argerror(L, 2, "indent out of range");
  lua_settop(L, 3);
  lgrpc_json_writer *w = lua_newuserdata(L, sizeof *w); /* owner: the Lua GC; __gc frees buf */
  lgrpc_json_writer_init(w, (int)indent, ascii, DEFAULT_OUTPUT_LIMIT);
  luaL_setmetatable(L, MT_WRITER);
  const char *e = write_value(L, w, 1, 0);
  if (e) {
    lua_pushnil(L);
    lua_pushstring(L, e);
    lgrpc_json_writer_free(w);
    return 2;
  }
  lua_pushlstring(L, w->buf ? w->buf : "", w->len);
  lgrpc_json_writer_free(w);
  return 1;
}

/* ---- helpers for the mapping ---- */

static const char *const kinds[] = { "int32", "uint32", "int64", "uint64", NULL };

static int check_range(int kind, int neg, uint64_t mag)
{
  switch (kind) {
  case 0: return (neg ? mag > 2147483648u : mag > 2147483647u) ? LGRPC_EJSON_RANGE : 0;
  case 1: return (neg || mag > 4294967295u) ? LGRPC_EJSON_RANGE : 0;
  case 2: return (neg ? mag > (uint64_t)1 << 63 : mag > (uint64_t)INT64_MAX) ? LGRPC_EJSON_RANGE : 0;
  default: return neg ? LGRPC_EJSON_RANGE : 0;
  }
}

static int push_reason(lua_State *L, int rc)
{
  lua_pushnil(L);
  lua_pushstring(L, rc == LGRPC_EJSON_NUMBER ? "not a number" : rc == LGRPC_EJSON_NOTINT ? "not an integer" : "out of range");
  return 2;
}

/* integer(text, kind) -> value | nil, reason. text: a JSON number's text (a quoted number too);
 * kind: "int32" | "uint32" | "int64" | "uint64". The value is in the codec's representation. */
static int l_integer(lua_State *L)
{
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  int kind = luaL_checkoption(L, 2, NULL, kinds);
  int neg;
  uint64_t mag;
  int rc = lgrpc_json_number_integer(text, n, &neg, &mag);
  if (rc == 0 && neg && mag == 0) neg = 0;
  if (rc == 0) rc = check_range(kind, neg, mag);
  if (rc) return push_reason(L, rc);
  if (kind >= 2) push_integer(L, neg, mag, kind == 3);
#if LUA_VERSION_NUM >= 503
  else lua_pushinteger(L, neg ? -(lua_Integer)mag : (lua_Integer)mag);
#else
  else lua_pushnumber(L, neg ? -(lua_Number)mag : (lua_Number)mag);
#endif
  return 1;
}

/* int_text(v, kind) -> canonical decimal text | nil, reason. v: a Lua integer (on 5.4 a negative
 * one stands for the same 64 bits when kind is "uint64"), an integral number, or decimal text. */
static int l_int_text(lua_State *L)
{
  int kind = luaL_checkoption(L, 2, NULL, kinds);
  int neg = 0, rc;
  uint64_t mag = 0;
  char tmp[48];
  if (lua_type(L, 1) == LUA_TNUMBER) {
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, 1)) {
      lua_Integer i = lua_tointeger(L, 1);
      if (i < 0 && kind == 3) mag = (uint64_t)i;
      else if (i < 0) { neg = 1; mag = 0 - (uint64_t)i; }
      else mag = (uint64_t)i;
      goto have;
    }
#endif
    double v = (double)lua_tonumber(L, 1);
    if (!isfinite(v)) return push_reason(L, LGRPC_EJSON_RANGE);
    if (v != floor(v)) return push_reason(L, LGRPC_EJSON_NOTINT);
    if (fabs(v) >= 18446744073709551616.0) return push_reason(L, LGRPC_EJSON_RANGE);
    neg = v < 0;
    mag = (uint64_t)fabs(v);
  } else {
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    rc = lgrpc_json_number_integer(text, n, &neg, &mag);
    if (rc) return push_reason(L, rc);
  }
  goto have; /* the 5.4 integer path joins here too */
have:
  if (neg && mag == 0) neg = 0;
  rc = check_range(kind, neg, mag);
  if (rc) return push_reason(L, rc);
  snprintf(tmp, sizeof tmp, "%s%llu", neg ? "-" : "", (unsigned long long)mag);
  lua_pushstring(L, tmp);
  return 1;
}

static int l_is_utf8(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, lgrpc_json_is_utf8(s, n));
  return 1;
}

/* is_number(text) -> boolean: strict JSON number syntax */
static int l_is_number(lua_State *L)
{
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, lgrpc_json_is_number(text, n));
  return 1;
}

/* format_double(v [, float32]) -> text (Python repr layout) | nil for NaN/Inf */
static int l_format_double(lua_State *L)
{
  double v = (double)luaL_checknumber(L, 1);
  char tmp[48];
  if (lua_toboolean(L, 2)) v = lgrpc_json_float32_shortest((float)v);
  int k = lgrpc_json_format_double(v, tmp);
  if (k < 0) { lua_pushnil(L); return 1; }
  lua_pushlstring(L, tmp, (size_t)k);
  return 1;
}

/* float32(v) -> the nearest float's value, or nil when v rounds to a float infinity (values a
 * little above FLT_MAX round down to it, as a C++ parser and the wire format would). */
static int l_float32(lua_State *L)
{
  double v = (double)luaL_checknumber(L, 1);
  const double overflow = (double)FLT_MAX + 0x1p103; /* FLT_MAX plus half an ulp: rounds to inf */
  if (isfinite(v) && fabs(v) >= overflow) { lua_pushnil(L); return 1; }
  if (isfinite(v) && fabs(v) > FLT_MAX) v = v < 0 ? -FLT_MAX : FLT_MAX;
  lua_pushnumber(L, (lua_Number)(float)v);
  return 1;
}

static int l_base64_encode(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  size_t out = lgrpc_json_base64_encoded_len(n);
  char *p = lua_newuserdata(L, out ? out : 1); /* owner: the Lua GC */
  lgrpc_json_base64_encode((const unsigned char *)s, n, p);
  lua_pushlstring(L, p, out);
  return 1;
}

static int l_base64_decode(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char *p = lua_newuserdata(L, n ? n : 1); /* owner: the Lua GC */
  long k = lgrpc_json_base64_decode(s, n, (unsigned char *)p);
  if (k < 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "invalid base64");
    return 2;
  }
  lua_pushlstring(L, p, (size_t)k);
  return 1;
}

static const luaL_Reg json_fns[] = {
  { "decode", l_decode },
  { "encode", l_encode },
  { "integer", l_integer },
  { "is_number", l_is_number },
  { "int_text", l_int_text },
  { "is_utf8", l_is_utf8 },
  { "format_double", l_format_double },
  { "float32", l_float32 },
  { "base64_encode", l_base64_encode },
  { "base64_decode", l_base64_decode },
  { NULL, NULL }
};

int lgrpc_lua_open_json(lua_State *L)
{
  luaL_newmetatable(L, MT_WRITER);
  lua_pushcfunction(L, writer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, json_fns, 0);
  luaL_newmetatable(L, MT_OBJECT);
  lua_setfield(L, -2, "object");
  luaL_newmetatable(L, MT_ARRAY);
  lua_setfield(L, -2, "array");
  luaL_newmetatable(L, MT_NUMBER);
  lua_setfield(L, -2, "number");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}

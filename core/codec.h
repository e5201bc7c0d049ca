/* codec.h — the protobuf binary codec walk over a compiled schema. Decode reads bytes and
 * reports what it finds to a sink; encode asks a source for field values and writes bytes.
 * Neither sees a lua_State: the Lua-table sink and source live in lua_codec.c. */
#ifndef LGRPC_CODEC_H
#define LGRPC_CODEC_H
#include "schema.h"
#include "wire.h"

/* Errors: code plus a message "pkg.Msg.field.sub: problem". Sinks and sources report their
 * problem with lgrpc_codec_fail (no path: the walk adds it). */
typedef struct lgrpc_codec_err {
  int code;
  char problem[200];
  char msg[600];
} lgrpc_codec_err;

int lgrpc_codec_fail(lgrpc_codec_err *e, int code, const char *fmt, ...);

/* Decode sink. Each returns 0 or a negative code (after lgrpc_codec_fail). */
typedef struct lgrpc_codec_sink {
  void *ud;
  /* a scalar, enum, string or bytes value of field f of the current message (or map entry);
   * repeated fields deliver one call per element */
  int (*value)(void *ud, const lgrpc_field *f, const lgrpc_value *v);
  /* field f (message, group or map entry) starts; its fields follow until end() */
  int (*begin)(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m);
  int (*end)(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m);
  /* one complete unknown record (tag included) of the current message */
  int (*unknown)(void *ud, const uint8_t *p, size_t n);
  /* optional (NULL: no hints), a size hint so a sink can allocate once. m NULL: at most n
   * elements of repeated field f arrive next, one after another; m set: the body of the
   * message m of field f that begins next holds at most n distinct fields */
  int (*reserve)(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m, size_t n);
} lgrpc_codec_sink;

/* Encode source: answers for the current message (or map entry). */
enum { LGRPC_SRC_ABSENT = 0, LGRPC_SRC_VALUE = 1, LGRPC_SRC_MESSAGE = 2, LGRPC_SRC_LIST = 3 };
typedef struct lgrpc_codec_source {
  void *ud;
  /* Field f of the current message: ABSENT; VALUE (in *v, converted for f's type);
   * MESSAGE (the source now stands in that message; leave() returns); LIST (*n elements: the
   * source stands in the list (for maps: the entries); leave() returns). Negative: error. */
  int (*field)(void *ud, const lgrpc_field *f, lgrpc_value *v, size_t *n);
  /* element i (0-based) of the current list: VALUE, or MESSAGE (entered, leave() returns) */
  int (*item)(void *ud, const lgrpc_field *f, size_t i, lgrpc_value *v);
  void (*leave)(void *ud);
  /* unknown bytes kept with the current message (n = 0 when none) */
  int (*unknown)(void *ud, const uint8_t **p, size_t *n);
} lgrpc_codec_source;

/* Decode bytes p[0..n) as message msg. */
int lgrpc_codec_decode(const lgrpc_schema *s, uint32_t msg, const uint8_t *p, size_t n,
                       const lgrpc_codec_sink *sink, lgrpc_codec_err *err);

/* Encode message msg from src, appending to out (the caller resets out->len). partial: do not
 * insist on proto2 required fields. */
int lgrpc_codec_encode(const lgrpc_schema *s, uint32_t msg, const lgrpc_codec_source *src,
                       lgrpc_wbuf *out, int partial, lgrpc_codec_err *err);

/* Pieces of the encode walk for a binding's own fast path: one value of f alone (no tag), and
 * whether it is the default that implicit presence leaves out. */
static inline int lgrpc_codec_is_default(const lgrpc_field *f, const lgrpc_value *v)
{
  switch (f->type) {
  case LGRPC_TYPE_DOUBLE: { uint64_t u; memcpy(&u, &v->v.d, 8); return u == 0; }
  case LGRPC_TYPE_FLOAT: { uint32_t u; memcpy(&u, &v->v.f, 4); return u == 0; }
  case LGRPC_TYPE_BOOL: return !v->v.b;
  case LGRPC_TYPE_STRING: case LGRPC_TYPE_BYTES: return v->n == 0;
  default: return v->v.u64 == 0;
  }
}

static inline int lgrpc_codec_put_value(lgrpc_wbuf *b, const lgrpc_field *f, const lgrpc_value *v)
{
  switch (f->type) {
  case LGRPC_TYPE_INT32: case LGRPC_TYPE_INT64: case LGRPC_TYPE_ENUM:
    return lgrpc_wire_put_varint(b, (uint64_t)v->v.i64);
  case LGRPC_TYPE_UINT32: case LGRPC_TYPE_UINT64: return lgrpc_wire_put_varint(b, v->v.u64);
  case LGRPC_TYPE_SINT32: return lgrpc_wire_put_varint(b, lgrpc_wire_zigzag32((int32_t)v->v.i64));
  case LGRPC_TYPE_SINT64: return lgrpc_wire_put_varint(b, lgrpc_wire_zigzag64(v->v.i64));
  case LGRPC_TYPE_BOOL: return lgrpc_wire_put_varint(b, v->v.b ? 1 : 0);
  case LGRPC_TYPE_FIXED32: return lgrpc_wire_put_fixed32(b, (uint32_t)v->v.u64);
  case LGRPC_TYPE_SFIXED32: return lgrpc_wire_put_fixed32(b, (uint32_t)(int32_t)v->v.i64);
  case LGRPC_TYPE_FIXED64: return lgrpc_wire_put_fixed64(b, v->v.u64);
  case LGRPC_TYPE_SFIXED64: return lgrpc_wire_put_fixed64(b, (uint64_t)v->v.i64);
  case LGRPC_TYPE_FLOAT: { uint32_t u; memcpy(&u, &v->v.f, 4); return lgrpc_wire_put_fixed32(b, u); }
  case LGRPC_TYPE_DOUBLE: { uint64_t u; memcpy(&u, &v->v.d, 8); return lgrpc_wire_put_fixed64(b, u); }
  case LGRPC_TYPE_STRING: case LGRPC_TYPE_BYTES: {
    int rc = lgrpc_wire_put_varint(b, v->n);
    return rc ? rc : lgrpc_wire_put_bytes(b, v->s, v->n);
  }
  }
  return LGRPC_ECODEC_VALUE;
}

/* Read one scalar value by f's op (the wire type was checked against f->wt, or the value sits
 * in a packed run). */
static inline int lgrpc_codec_read_scalar(const lgrpc_field *f, const uint8_t **pp, const uint8_t *end, lgrpc_value *v)
{
  uint64_t u;
  uint32_t u32;
  int rc;
  switch (f->op) {
  case LGRPC_OP_INT32: case LGRPC_OP_ENUM_OPEN: case LGRPC_OP_ENUM_CLOSED:
    if ((rc = lgrpc_wire_get_varint(pp, end, &u))) return rc;
    v->v.i64 = (int32_t)(uint32_t)u;
    return 0;
  case LGRPC_OP_INT64: case LGRPC_OP_UINT64:
    return lgrpc_wire_get_varint(pp, end, &v->v.u64);
  case LGRPC_OP_UINT32:
    if ((rc = lgrpc_wire_get_varint(pp, end, &u))) return rc;
    v->v.u64 = (uint32_t)u;
    return 0;
  case LGRPC_OP_SINT32:
    if ((rc = lgrpc_wire_get_varint(pp, end, &u))) return rc;
    v->v.i64 = lgrpc_wire_unzigzag32((uint32_t)u);
    return 0;
  case LGRPC_OP_SINT64:
    if ((rc = lgrpc_wire_get_varint(pp, end, &u))) return rc;
    v->v.i64 = lgrpc_wire_unzigzag64(u);
    return 0;
  case LGRPC_OP_BOOL:
    if ((rc = lgrpc_wire_get_varint(pp, end, &u))) return rc;
    v->v.b = u != 0;
    return 0;
  case LGRPC_OP_FIXED32:
    if ((rc = lgrpc_wire_get_fixed32(pp, end, &u32))) return rc;
    v->v.u64 = u32;
    return 0;
  case LGRPC_OP_SFIXED32:
    if ((rc = lgrpc_wire_get_fixed32(pp, end, &u32))) return rc;
    v->v.i64 = (int32_t)u32;
    return 0;
  case LGRPC_OP_FLOAT:
    if ((rc = lgrpc_wire_get_fixed32(pp, end, &u32))) return rc;
    memcpy(&v->v.f, &u32, 4);
    return 0;
  case LGRPC_OP_FIXED64: case LGRPC_OP_SFIXED64:
    return lgrpc_wire_get_fixed64(pp, end, &v->v.u64);
  case LGRPC_OP_DOUBLE:
    if ((rc = lgrpc_wire_get_fixed64(pp, end, &u))) return rc;
    memcpy(&v->v.d, &u, 8);
    return 0;
  }
  return LGRPC_ECODEC_WIRETYPE;
}

/* Size hints for a decoder that allocates once (each stops quietly at anything malformed):
 * records with this tag that follow one another from p; distinct fields (changes of field
 * number, at most cap) in the body p[0..end); elements in a packed run s[0..n) of f. */
size_t lgrpc_codec_count_run(const uint8_t *p, const uint8_t *end, uint64_t tag, int max_depth);
size_t lgrpc_codec_count_fields(const uint8_t *p, const uint8_t *end, size_t cap, int max_depth);
size_t lgrpc_codec_count_packed(const lgrpc_field *f, const uint8_t *s, size_t n);

#endif

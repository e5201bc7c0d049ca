/* schema.h — compiled message and enum tables the codec walks (in the spirit of upb's
 * mini-tables): per message, fields sorted by number with a dense prefix indexed directly.
 * Built once through the builder below; never sees a lua_State (names are integer ids the
 * binding resolves). Owner of every table: the lgrpc_schema, freed by lgrpc_schema_free. */
#ifndef LGRPC_SCHEMA_H
#define LGRPC_SCHEMA_H
#include <stddef.h>
#include <stdint.h>

/* Field types: the numbers of descriptor.proto's FieldDescriptorProto.Type. */
enum {
  LGRPC_TYPE_DOUBLE = 1, LGRPC_TYPE_FLOAT = 2, LGRPC_TYPE_INT64 = 3, LGRPC_TYPE_UINT64 = 4,
  LGRPC_TYPE_INT32 = 5, LGRPC_TYPE_FIXED64 = 6, LGRPC_TYPE_FIXED32 = 7, LGRPC_TYPE_BOOL = 8,
  LGRPC_TYPE_STRING = 9, LGRPC_TYPE_GROUP = 10, LGRPC_TYPE_MESSAGE = 11, LGRPC_TYPE_BYTES = 12,
  LGRPC_TYPE_UINT32 = 13, LGRPC_TYPE_ENUM = 14, LGRPC_TYPE_SFIXED32 = 15,
  LGRPC_TYPE_SFIXED64 = 16, LGRPC_TYPE_SINT32 = 17, LGRPC_TYPE_SINT64 = 18
};
enum { LGRPC_LABEL_OPTIONAL = 1, LGRPC_LABEL_REQUIRED = 2, LGRPC_LABEL_REPEATED = 3 };

/* Decode operations: what one value of a field is on the wire and how it becomes a value,
 * picked once from the field's type and flags when the schema is finished. Packable ops
 * (scalars) come first. */
enum {
  LGRPC_OP_INT32, LGRPC_OP_INT64, LGRPC_OP_UINT32, LGRPC_OP_UINT64, LGRPC_OP_SINT32,
  LGRPC_OP_SINT64, LGRPC_OP_BOOL, LGRPC_OP_ENUM_OPEN, LGRPC_OP_ENUM_CLOSED, LGRPC_OP_FIXED32,
  LGRPC_OP_SFIXED32, LGRPC_OP_FLOAT, LGRPC_OP_FIXED64, LGRPC_OP_SFIXED64, LGRPC_OP_DOUBLE,
  LGRPC_OP_LAST_PACKABLE = LGRPC_OP_DOUBLE,
  LGRPC_OP_STRING, LGRPC_OP_STRING_UTF8, LGRPC_OP_BYTES, LGRPC_OP_MESSAGE, LGRPC_OP_MAP,
  LGRPC_OP_GROUP
};

/* field flags */
#define LGRPC_F_PACKED   0x01u /* repeated scalar written packed */
#define LGRPC_F_PRESENCE 0x02u /* explicit presence (written when set, even if default) */
#define LGRPC_F_UTF8     0x04u /* string checked for UTF-8 (proto3) */
#define LGRPC_F_MAP      0x08u /* map field: repeated entry message */
#define LGRPC_F_EXT      0x10u /* extension field */
#define LGRPC_F_REPEATED 0x20u /* label repeated (set by the builder from label) */

/* message flags */
#define LGRPC_M_MAP_ENTRY    0x01u
#define LGRPC_M_HAS_REQUIRED 0x02u /* this message or one reachable from it has required fields */

typedef struct lgrpc_value {
  union { int64_t i64; uint64_t u64; double d; float f; int b; } v;
  const char *s; /* string and bytes */
  size_t n;
} lgrpc_value;

typedef struct lgrpc_field {
  uint32_t number;
  uint8_t type;   /* LGRPC_TYPE_* */
  uint8_t label;  /* LGRPC_LABEL_* */
  uint8_t flags;  /* LGRPC_F_* */
  uint8_t wt;     /* the wire type of one (unpacked) value of this type */
  uint8_t op;     /* LGRPC_OP_*: set by lgrpc_schema_finish */
  int32_t sub;    /* message index (MESSAGE, GROUP) or enum index (ENUM); -1 otherwise */
  int32_t oneof;  /* oneof index within the message; -1 when none */
  int32_t name;   /* name id, resolved by the binding */
  const char *cname; /* the name as C text, for error paths (schema-owned copy) */
  lgrpc_value def;/* default (strings point into schema-owned memory) */
} lgrpc_field;

typedef struct lgrpc_msgdef {
  char *full_name;         /* owned */
  lgrpc_field *fields;     /* owned; sorted by number after lgrpc_schema_finish */
  uint32_t nfields;
  uint32_t dense;          /* fields[i].number == i + 1 for every i < dense */
  uint32_t noneofs;
  uint32_t flags;          /* LGRPC_M_* */
} lgrpc_msgdef;

typedef struct lgrpc_enumdef {
  char *full_name;         /* owned */
  int32_t *numbers;        /* owned; sorted ascending, unique */
  int32_t *names;          /* owned; name id of each number (the first declared, for aliases) */
  uint32_t nvalues;
  int closed;              /* proto2 enum: unknown numbers go to the unknown fields */
  int32_t default_number;  /* the first declared value */
} lgrpc_enumdef;

typedef struct lgrpc_schema_limits {
  int max_depth;           /* message nesting (default 100, as protobuf) */
  size_t max_size;         /* encoded message size (default 2^31 - 1) */
} lgrpc_schema_limits;

typedef struct lgrpc_schema {
  lgrpc_msgdef *msgs;      /* owned */
  uint32_t nmsgs;
  lgrpc_enumdef *enums;    /* owned */
  uint32_t nenums;
  lgrpc_schema_limits limits;
} lgrpc_schema;

/* Builder: new, then set every message, field and enum, then finish. Strings are copied. */
lgrpc_schema *lgrpc_schema_new(uint32_t nmsgs, uint32_t nenums);
void lgrpc_schema_free(lgrpc_schema *s);
int lgrpc_schema_set_message(lgrpc_schema *s, uint32_t i, const char *full_name,
                             uint32_t nfields, uint32_t noneofs, uint32_t flags);
/* field j of message i; cname and a string default (def.s, def.n) are copied */
int lgrpc_schema_set_field(lgrpc_schema *s, uint32_t i, uint32_t j, const lgrpc_field *f);
int lgrpc_schema_set_enum(lgrpc_schema *s, uint32_t i, const char *full_name, uint32_t nvalues,
                          int closed);
/* value j of enum i in declaration order */
int lgrpc_schema_set_enum_value(lgrpc_schema *s, uint32_t i, uint32_t j, int32_t number,
                                int32_t name);
/* Sort, check and derive. On failure returns LGRPC_ECODEC_SCHEMA with a message in err. */
int lgrpc_schema_finish(lgrpc_schema *s, char *err, size_t errlen);

static inline const lgrpc_field *lgrpc_schema_find_field(const lgrpc_msgdef *m, uint32_t number)
{
  if (number - 1 < m->dense) return &m->fields[number - 1];
  uint32_t lo = m->dense, hi = m->nfields;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    uint32_t n = m->fields[mid].number;
    if (n == number) return &m->fields[mid];
    if (n < number) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

/* index of number in e, or -1 */
int lgrpc_schema_enum_find(const lgrpc_enumdef *e, int32_t number);

#endif

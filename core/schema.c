/* schema.c — builds and checks the compiled message/enum tables of schema.h: copies names and
 * string defaults, sorts fields by number, finds the dense prefix, derives wire types and the
 * transitive "has required" flag. Never sees a lua_State and never touches wire bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "schema.h"
#include "wire.h"

static char *dupn(const char *s, size_t n)
{
  char *d = malloc(n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = 0;
  return d;
}

lgrpc_schema *lgrpc_schema_new(uint32_t nmsgs, uint32_t nenums)
{
  lgrpc_schema *s = calloc(1, sizeof *s); /* owned by the caller: lgrpc_schema_free */
  if (!s) return NULL;
  s->msgs = calloc(nmsgs ? nmsgs : 1, sizeof *s->msgs);
  s->enums = calloc(nenums ? nenums : 1, sizeof *s->enums);
  if (!s->msgs || !s->enums) { lgrpc_schema_free(s); return NULL; }
  s->nmsgs = nmsgs;
  s->nenums = nenums;
  s->limits.max_depth = 100;
  s->limits.max_size = 0x7fffffff;
  return s;
}

void lgrpc_schema_free(lgrpc_schema *s)
{
  if (!s) return;
  for (uint32_t i = 0; i < s->nmsgs; i++) {
    lgrpc_msgdef *m = &s->msgs[i];
    free(m->full_name);
    if (m->fields)
      for (uint32_t j = 0; j < m->nfields; j++) {
        free((char *)m->fields[j].def.s);
        free((char *)m->fields[j].cname);
      }
    free(m->fields);
  }
  for (uint32_t i = 0; i < s->nenums; i++) {
    free(s->enums[i].full_name);
    free(s->enums[i].numbers);
    free(s->enums[i].names);
  }
  free(s->msgs);
  free(s->enums);
  free(s);
}

int lgrpc_schema_set_message(lgrpc_schema *s, uint32_t i, const char *full_name,
                             uint32_t nfields, uint32_t noneofs, uint32_t flags)
{
  if (i >= s->nmsgs || s->msgs[i].full_name) return LGRPC_ECODEC_SCHEMA;
  lgrpc_msgdef *m = &s->msgs[i];
  m->full_name = dupn(full_name, strlen(full_name));
  m->fields = calloc(nfields ? nfields : 1, sizeof *m->fields);
  if (!m->full_name || !m->fields) return LGRPC_ECODEC_NOMEM;
  m->nfields = nfields;
  m->noneofs = noneofs;
  m->flags = flags & LGRPC_M_MAP_ENTRY;
  return 0;
}

static int wire_type_of(int type)
{
  switch (type) {
  case LGRPC_TYPE_DOUBLE: case LGRPC_TYPE_FIXED64: case LGRPC_TYPE_SFIXED64: return LGRPC_WT_I64;
  case LGRPC_TYPE_FLOAT: case LGRPC_TYPE_FIXED32: case LGRPC_TYPE_SFIXED32: return LGRPC_WT_I32;
  case LGRPC_TYPE_STRING: case LGRPC_TYPE_BYTES: case LGRPC_TYPE_MESSAGE: return LGRPC_WT_LEN;
  case LGRPC_TYPE_GROUP: return LGRPC_WT_SGROUP;
  default: return LGRPC_WT_VARINT;
  }
}

int lgrpc_schema_set_field(lgrpc_schema *s, uint32_t i, uint32_t j, const lgrpc_field *f)
{
  if (i >= s->nmsgs || j >= s->msgs[i].nfields) return LGRPC_ECODEC_SCHEMA;
  lgrpc_field *d = &s->msgs[i].fields[j];
  *d = *f;
  d->def.s = NULL;
  d->def.n = 0;
  d->cname = dupn(f->cname ? f->cname : "?", f->cname ? strlen(f->cname) : 1); /* schema-owned */
  if (!d->cname) return LGRPC_ECODEC_NOMEM;
  if (f->type == LGRPC_TYPE_STRING || f->type == LGRPC_TYPE_BYTES) {
    d->def.s = dupn(f->def.s ? f->def.s : "", f->def.s ? f->def.n : 0); /* owned by the schema */
    if (!d->def.s) return LGRPC_ECODEC_NOMEM;
    d->def.n = f->def.s ? f->def.n : 0;
  }
  d->flags &= (uint8_t)~LGRPC_F_REPEATED;
  if (f->label == LGRPC_LABEL_REPEATED) d->flags |= LGRPC_F_REPEATED;
  d->wt = (uint8_t)wire_type_of(f->type);
  return 0;
}

int lgrpc_schema_set_enum(lgrpc_schema *s, uint32_t i, const char *full_name, uint32_t nvalues,
                          int closed)
{
  if (i >= s->nenums || s->enums[i].full_name) return LGRPC_ECODEC_SCHEMA;
  lgrpc_enumdef *e = &s->enums[i];
  e->full_name = dupn(full_name, strlen(full_name));
  e->numbers = calloc(nvalues ? nvalues : 1, sizeof *e->numbers);
  e->names = calloc(nvalues ? nvalues : 1, sizeof *e->names);
  if (!e->full_name || !e->numbers || !e->names) return LGRPC_ECODEC_NOMEM;
  e->nvalues = nvalues;
  e->closed = closed;
  return 0;
}

int lgrpc_schema_set_enum_value(lgrpc_schema *s, uint32_t i, uint32_t j, int32_t number,
                                int32_t name)
{
  if (i >= s->nenums || j >= s->enums[i].nvalues) return LGRPC_ECODEC_SCHEMA;
  s->enums[i].numbers[j] = number;
  s->enums[i].names[j] = name;
  if (j == 0) s->enums[i].default_number = number;
  return 0;
}

int lgrpc_schema_enum_find(const lgrpc_enumdef *e, int32_t number)
{
  uint32_t lo = 0, hi = e->nvalues;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (e->numbers[mid] == number) return (int)mid;
    if (e->numbers[mid] < number) lo = mid + 1; else hi = mid;
  }
  return -1;
}

static int cmp_field(const void *a, const void *b)
{
  uint32_t x = ((const lgrpc_field *)a)->number, y = ((const lgrpc_field *)b)->number;
  return x < y ? -1 : x > y;
}

/* sort values by number keeping the first declared name of each number (stable by index) */
static void sort_enum(lgrpc_enumdef *e)
{
  for (uint32_t i = 1; i < e->nvalues; i++) { /* insertion sort: stable, enums are small */
    int32_t n = e->numbers[i], nm = e->names[i];
    uint32_t k = i;
    while (k > 0 && e->numbers[k - 1] > n) {
      e->numbers[k] = e->numbers[k - 1];
      e->names[k] = e->names[k - 1];
      k--;
    }
    e->numbers[k] = n;
    e->names[k] = nm;
  }
  uint32_t w = 0;
  for (uint32_t i = 0; i < e->nvalues; i++) {
    if (w > 0 && e->numbers[w - 1] == e->numbers[i]) continue;
    e->numbers[w] = e->numbers[i];
    e->names[w] = e->names[i];
    w++;
  }
  e->nvalues = w;
}

static uint8_t op_of(const lgrpc_schema *s, const lgrpc_field *f)
{
  switch (f->type) {
  case LGRPC_TYPE_INT32: return LGRPC_OP_INT32;
  case LGRPC_TYPE_INT64: return LGRPC_OP_INT64;
  case LGRPC_TYPE_UINT32: return LGRPC_OP_UINT32;
  case LGRPC_TYPE_UINT64: return LGRPC_OP_UINT64;
  case LGRPC_TYPE_SINT32: return LGRPC_OP_SINT32;
  case LGRPC_TYPE_SINT64: return LGRPC_OP_SINT64;
  case LGRPC_TYPE_BOOL: return LGRPC_OP_BOOL;
  case LGRPC_TYPE_ENUM: return s->enums[f->sub].closed ? LGRPC_OP_ENUM_CLOSED : LGRPC_OP_ENUM_OPEN;
  case LGRPC_TYPE_FIXED32: return LGRPC_OP_FIXED32;
  case LGRPC_TYPE_SFIXED32: return LGRPC_OP_SFIXED32;
  case LGRPC_TYPE_FLOAT: return LGRPC_OP_FLOAT;
  case LGRPC_TYPE_FIXED64: return LGRPC_OP_FIXED64;
  case LGRPC_TYPE_SFIXED64: return LGRPC_OP_SFIXED64;
  case LGRPC_TYPE_DOUBLE: return LGRPC_OP_DOUBLE;
  case LGRPC_TYPE_STRING: return (f->flags & LGRPC_F_UTF8) ? LGRPC_OP_STRING_UTF8 : LGRPC_OP_STRING;
  case LGRPC_TYPE_BYTES: return LGRPC_OP_BYTES;
  case LGRPC_TYPE_GROUP: return LGRPC_OP_GROUP;
  default: return (f->flags & LGRPC_F_MAP) ? LGRPC_OP_MAP : LGRPC_OP_MESSAGE;
  }
}

int lgrpc_schema_finish(lgrpc_schema *s, char *err, size_t errlen)
{
  for (uint32_t i = 0; i < s->nenums; i++) {
    if (!s->enums[i].full_name) { snprintf(err, errlen, "enum %u not set", i); return LGRPC_ECODEC_SCHEMA; }
    sort_enum(&s->enums[i]);
  }
  for (uint32_t i = 0; i < s->nmsgs; i++) {
    lgrpc_msgdef *m = &s->msgs[i];
    if (!m->full_name) { snprintf(err, errlen, "message %u not set", i); return LGRPC_ECODEC_SCHEMA; }
    qsort(m->fields, m->nfields, sizeof *m->fields, cmp_field);
    m->dense = 0;
    for (uint32_t j = 0; j < m->nfields; j++) {
      lgrpc_field *f = &m->fields[j];
      if (f->number == 0 || f->number > LGRPC_WIRE_MAX_FIELD) {
        snprintf(err, errlen, "%s: invalid field number %u", m->full_name, f->number);
        return LGRPC_ECODEC_SCHEMA;
      }
      if (j > 0 && m->fields[j - 1].number == f->number) {
        snprintf(err, errlen, "%s: field number %u used twice", m->full_name, f->number);
        return LGRPC_ECODEC_SCHEMA;
      }
      if (f->type < LGRPC_TYPE_DOUBLE || f->type > LGRPC_TYPE_SINT64 ||
          f->label < LGRPC_LABEL_OPTIONAL || f->label > LGRPC_LABEL_REPEATED) {
        snprintf(err, errlen, "%s: field %u has an invalid type or label", m->full_name, f->number);
        return LGRPC_ECODEC_SCHEMA;
      }
      int is_msg = f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP;
      if ((is_msg && (f->sub < 0 || (uint32_t)f->sub >= s->nmsgs)) ||
          (f->type == LGRPC_TYPE_ENUM && (f->sub < 0 || (uint32_t)f->sub >= s->nenums))) {
        snprintf(err, errlen, "%s: field %u refers to no type", m->full_name, f->number);
        return LGRPC_ECODEC_SCHEMA;
      }
      if (!is_msg && f->type != LGRPC_TYPE_ENUM) f->sub = -1;
      if (f->oneof >= 0 && (uint32_t)f->oneof >= m->noneofs) {
        snprintf(err, errlen, "%s: field %u has an invalid oneof index", m->full_name, f->number);
        return LGRPC_ECODEC_SCHEMA;
      }
      if ((f->flags & LGRPC_F_MAP) && !(f->type == LGRPC_TYPE_MESSAGE &&
          f->label == LGRPC_LABEL_REPEATED && (s->msgs[f->sub].flags & LGRPC_M_MAP_ENTRY))) {
        snprintf(err, errlen, "%s: field %u is not a valid map", m->full_name, f->number);
        return LGRPC_ECODEC_SCHEMA;
      }
      if ((f->flags & LGRPC_F_PACKED) && (!(f->flags & LGRPC_F_REPEATED) || f->wt == LGRPC_WT_LEN ||
                                          f->wt == LGRPC_WT_SGROUP))
        f->flags &= (uint8_t)~LGRPC_F_PACKED;
      if (f->label == LGRPC_LABEL_REQUIRED) m->flags |= LGRPC_M_HAS_REQUIRED;
      f->op = op_of(s, f);
      if (f->number == j + 1 && m->dense == j) m->dense = j + 1;
    }
  }
  /* has-required is transitive: iterate to a fixed point (cycles are fine) */
  for (int changed = 1; changed;) {
    changed = 0;
    for (uint32_t i = 0; i < s->nmsgs; i++) {
      lgrpc_msgdef *m = &s->msgs[i];
      if (m->flags & LGRPC_M_HAS_REQUIRED) continue;
      for (uint32_t j = 0; j < m->nfields; j++) {
        const lgrpc_field *f = &m->fields[j];
        if ((f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP) &&
            (s->msgs[f->sub].flags & LGRPC_M_HAS_REQUIRED)) {
          m->flags |= LGRPC_M_HAS_REQUIRED;
          changed = 1;
          break;
        }
      }
    }
  }
  return 0;
}

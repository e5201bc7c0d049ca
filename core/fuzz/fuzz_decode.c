/* fuzz_decode.c — libFuzzer harness for the protobuf codec (core/wire.c, schema.c, codec.c),
 * plain C, no Lua. A fixed schema covers every field type, packed and unpacked repeated fields,
 * maps with message and closed-enum values, a group, a oneof, recursion and closed/open enums.
 *   1. the input is decoded as fz.All into a checking sink (begin/end balanced, strings inside
 *      the input, paths in error messages terminated);
 *   2. the input also drives an encode source (which fields are present, their values); when
 *      encoding succeeds, decoding its output must succeed too.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore core/fuzz/fuzz_decode.c \
 *        core/wire.c core/schema.c core/codec.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../codec.h"

enum { M_ALL, M_ENTRY, M_GROUP, M_ENUM_ENTRY, NMSGS };

static lgrpc_schema *S;

static void add(lgrpc_field *fs, uint32_t *n, uint32_t number, int type, int label, int sub,
                int oneof, unsigned flags)
{
  lgrpc_field f;
  memset(&f, 0, sizeof f);
  f.number = number;
  f.type = (uint8_t)type;
  f.label = (uint8_t)label;
  f.sub = sub;
  f.oneof = oneof;
  f.flags = (uint8_t)flags;
  f.cname = "f";
  fs[(*n)++] = f;
}

static int sub_of(int type, int enum_idx)
{
  if (type == LGRPC_TYPE_MESSAGE) return M_ALL;
  if (type == LGRPC_TYPE_GROUP) return M_GROUP;
  if (type == LGRPC_TYPE_ENUM) return enum_idx;
  return -1;
}

static void build(void)
{
  static lgrpc_field all[128];
  uint32_t n = 0;
  for (int t = 1; t <= 18; t++) { /* singular, repeated unpacked, repeated packed */
    int packable = t != LGRPC_TYPE_STRING && t != LGRPC_TYPE_BYTES && t != LGRPC_TYPE_MESSAGE &&
                   t != LGRPC_TYPE_GROUP;
    add(all, &n, (uint32_t)t, t, LGRPC_LABEL_OPTIONAL, sub_of(t, 0), -1,
        t == LGRPC_TYPE_STRING ? LGRPC_F_UTF8 : LGRPC_F_PRESENCE);
    add(all, &n, (uint32_t)(20 + t), t, LGRPC_LABEL_REPEATED, sub_of(t, 1), -1, 0);
    if (packable) add(all, &n, (uint32_t)(40 + t), t, LGRPC_LABEL_REPEATED, sub_of(t, 0), -1, LGRPC_F_PACKED);
  }
  add(all, &n, 60, LGRPC_TYPE_MESSAGE, LGRPC_LABEL_REPEATED, M_ENTRY, -1, LGRPC_F_MAP);
  add(all, &n, 61, LGRPC_TYPE_MESSAGE, LGRPC_LABEL_REPEATED, M_ENUM_ENTRY, -1, LGRPC_F_MAP);
  add(all, &n, 70, LGRPC_TYPE_INT32, LGRPC_LABEL_OPTIONAL, -1, 0, LGRPC_F_PRESENCE);
  add(all, &n, 71, LGRPC_TYPE_STRING, LGRPC_LABEL_OPTIONAL, -1, 0, LGRPC_F_PRESENCE);
  add(all, &n, 72, LGRPC_TYPE_MESSAGE, LGRPC_LABEL_OPTIONAL, M_ALL, 0, LGRPC_F_PRESENCE);
  add(all, &n, 80, LGRPC_TYPE_SINT64, LGRPC_LABEL_REQUIRED, -1, -1, LGRPC_F_PRESENCE);
  add(all, &n, 1000000, LGRPC_TYPE_INT32, LGRPC_LABEL_OPTIONAL, -1, -1, LGRPC_F_EXT | LGRPC_F_PRESENCE);
  S = lgrpc_schema_new(NMSGS, 2);
  lgrpc_schema_set_message(S, M_ALL, "fz.All", n, 1, 0);
  for (uint32_t j = 0; j < n; j++) lgrpc_schema_set_field(S, M_ALL, j, &all[j]);
  lgrpc_field e[2];
  uint32_t ne = 0;
  add(e, &ne, 2, LGRPC_TYPE_MESSAGE, LGRPC_LABEL_OPTIONAL, M_ALL, -1, 0); /* declared out of order */
  add(e, &ne, 1, LGRPC_TYPE_STRING, LGRPC_LABEL_OPTIONAL, -1, -1, 0);
  lgrpc_schema_set_message(S, M_ENTRY, "fz.All.Entry", ne, 0, LGRPC_M_MAP_ENTRY);
  for (uint32_t j = 0; j < ne; j++) lgrpc_schema_set_field(S, M_ENTRY, j, &e[j]);
  lgrpc_field g[2];
  uint32_t ng = 0;
  add(g, &ng, 1, LGRPC_TYPE_INT32, LGRPC_LABEL_OPTIONAL, -1, -1, LGRPC_F_PRESENCE);
  add(g, &ng, 2, LGRPC_TYPE_MESSAGE, LGRPC_LABEL_OPTIONAL, M_ALL, -1, LGRPC_F_PRESENCE);
  lgrpc_schema_set_message(S, M_GROUP, "fz.All.Group", ng, 0, 0);
  for (uint32_t j = 0; j < ng; j++) lgrpc_schema_set_field(S, M_GROUP, j, &g[j]);
  lgrpc_field ee[2];
  uint32_t nee = 0;
  add(ee, &nee, 1, LGRPC_TYPE_SINT64, LGRPC_LABEL_OPTIONAL, -1, -1, 0);
  add(ee, &nee, 2, LGRPC_TYPE_ENUM, LGRPC_LABEL_OPTIONAL, 0, -1, 0);
  lgrpc_schema_set_message(S, M_ENUM_ENTRY, "fz.All.EnumEntry", nee, 0, LGRPC_M_MAP_ENTRY);
  for (uint32_t j = 0; j < nee; j++) lgrpc_schema_set_field(S, M_ENUM_ENTRY, j, &ee[j]);
  lgrpc_schema_set_enum(S, 0, "fz.Closed", 3, 1);
  lgrpc_schema_set_enum_value(S, 0, 0, 0, 1);
  lgrpc_schema_set_enum_value(S, 0, 1, 5, 2);
  lgrpc_schema_set_enum_value(S, 0, 2, -1, 3);
  lgrpc_schema_set_enum(S, 1, "fz.Open", 1, 0);
  lgrpc_schema_set_enum_value(S, 1, 0, 0, 1);
  char err[200];
  if (lgrpc_schema_finish(S, err, sizeof err)) { fprintf(stderr, "schema: %s\n", err); abort(); }
}

/* ---- checking sink: pointers stay inside the input, nesting balances, and the decoder's size
 * hints (reserve) are upper bounds: a run of elements never outgrows its hint, a message body
 * never holds more distinct fields than announced */
#define MAXD 104
typedef struct level {
  const lgrpc_msgdef *msg;      /* the message being filled at this depth */
  size_t budget, distinct;      /* announced distinct fields (SIZE_MAX: none) and seen so far */
  const lgrpc_field *run;       /* a field announced by an element hint, and what is left of it */
  size_t run_left;
  uint8_t seen[256];            /* field indexes seen (messages of the fuzz schema are small) */
} level;
typedef struct csink {
  const uint8_t *lo, *hi; int depth; uint64_t sum;
  int pending; size_t next_budget;   /* a body hint for the next begin() */
  level lv[MAXD];
} csink;

static void csink_init(csink *c, const uint8_t *lo, const uint8_t *hi, uint32_t root)
{
  memset(c, 0, sizeof *c);
  c->lo = lo; c->hi = hi;
  c->lv[0].msg = &S->msgs[root];
  c->lv[0].budget = SIZE_MAX;
}

/* one element (value, or begin of a message) of field f at the current depth */
static void element(csink *c, const lgrpc_field *f)
{
  level *l = &c->lv[c->depth];
  if (l->run == f) {
    if (l->run_left == 0) abort();
    l->run_left--;
  } else {
    l->run = NULL;
  }
  size_t idx = (size_t)(f - l->msg->fields);
  if (idx >= l->msg->nfields) abort();
  if (idx < sizeof l->seen && !l->seen[idx]) {
    l->seen[idx] = 1;
    if (++l->distinct > l->budget) abort();
  }
}

static int c_value(void *ud, const lgrpc_field *f, const lgrpc_value *v)
{
  csink *c = ud;
  element(c, f);
  if (f->type == LGRPC_TYPE_STRING || f->type == LGRPC_TYPE_BYTES) {
    if (v->n && ((const uint8_t *)v->s < c->lo || (const uint8_t *)v->s + v->n > c->hi)) abort();
    c->sum += v->n;
  } else {
    c->sum += v->v.u64;
  }
  return 0;
}
static int c_begin(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m)
{
  csink *c = ud;
  element(c, f);
  if (c->depth + 1 >= MAXD || c->depth + 1 > 101 || m != &S->msgs[f->sub]) abort();
  level *l = &c->lv[++c->depth];
  memset(l, 0, sizeof *l);
  l->msg = m;
  l->budget = c->pending ? c->next_budget : SIZE_MAX;
  c->pending = 0;
  return 0;
}
static int c_end(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m)
{
  csink *c = ud;
  if (--c->depth < 0) abort();
  return 0;
}
static int c_unknown(void *ud, const uint8_t *p, size_t n)
{
  csink *c = ud;
  if (n == 0) abort();
  c->lv[c->depth].run = NULL;
  c->sum += p[0];
  return 0;
}
static int c_reserve(void *ud, const lgrpc_field *f, const lgrpc_msgdef *m, size_t n)
{
  csink *c = ud;
  if (m) {
    c->pending = 1;
    c->next_budget = n;
  } else {
    c->lv[c->depth].run = f;
    c->lv[c->depth].run_left = n;
  }
  return 0;
}

/* ---- source driven by the input bytes */
typedef struct fsrc { const uint8_t *p, *end; int depth; } fsrc;

static uint8_t next(fsrc *s) { return s->p < s->end ? *s->p++ : 0; }

static void fill(fsrc *s, const lgrpc_field *f, lgrpc_value *v)
{
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = (u << 8) | next(s);
  v->v.u64 = u;
  if (f->type == LGRPC_TYPE_BOOL) v->v.b = (int)(u & 1);
  if (f->type == LGRPC_TYPE_INT32 || f->type == LGRPC_TYPE_SINT32 || f->type == LGRPC_TYPE_SFIXED32 ||
      f->type == LGRPC_TYPE_ENUM)
    v->v.i64 = (int32_t)u;
  if (f->type == LGRPC_TYPE_UINT32 || f->type == LGRPC_TYPE_FIXED32) v->v.u64 = (uint32_t)u;
  if (f->type == LGRPC_TYPE_STRING || f->type == LGRPC_TYPE_BYTES) {
    size_t n = next(s) % 24;
    if ((size_t)(s->end - s->p) < n) n = (size_t)(s->end - s->p);
    v->s = (const char *)s->p;
    v->n = n;
    s->p += n;
  }
}

static int f_field(void *ud, const lgrpc_field *f, lgrpc_value *v, size_t *n)
{
  fsrc *s = ud;
  uint8_t b = next(s);
  if (b % 3 == 0) return LGRPC_SRC_ABSENT;
  if (f->flags & LGRPC_F_REPEATED) {
    *n = (b >> 2) % 4;
    if (s->depth > 6 && (f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP)) *n = 0;
    s->depth++;
    return LGRPC_SRC_LIST;
  }
  if (f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP) {
    if (s->depth > 6) return LGRPC_SRC_ABSENT;
    s->depth++;
    return LGRPC_SRC_MESSAGE;
  }
  fill(s, f, v);
  return LGRPC_SRC_VALUE;
}
static int f_item(void *ud, const lgrpc_field *f, size_t i, lgrpc_value *v)
{
  fsrc *s = ud;
  if (f->type == LGRPC_TYPE_MESSAGE || f->type == LGRPC_TYPE_GROUP) { s->depth++; return LGRPC_SRC_MESSAGE; }
  fill(s, f, v);
  return LGRPC_SRC_VALUE;
}
static void f_leave(void *ud) { ((fsrc *)ud)->depth--; }
static int f_unknown(void *ud, const uint8_t **p, size_t *n)
{
  static const uint8_t rec[] = { 0xf8, 0xff, 0x03, 0x01 }; /* field 8191, varint 1 */
  fsrc *s = ud;
  *n = 0;
  if (next(s) == 0x7f) { *p = rec; *n = sizeof rec; }
  return 0;
}

static const lgrpc_codec_sink SINK = { NULL, c_value, c_begin, c_end, c_unknown, c_reserve };
static const lgrpc_codec_source SRC = { NULL, f_field, f_item, f_leave, f_unknown };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!S) build();
  lgrpc_codec_err err;
  for (uint32_t m = 0; m < NMSGS; m++) {
    static csink c;
    csink_init(&c, data, data ? data + size : NULL, m);
    lgrpc_codec_sink sink = SINK;
    sink.ud = &c;
    int rc = lgrpc_codec_decode(S, m, data, size, &sink, &err);
    if (rc > 0 || (rc == 0 && c.depth != 0)) abort();
    if (rc && (err.code != rc || strlen(err.msg) >= sizeof err.msg || !strstr(err.msg, ": "))) abort();
  }
  /* encode from the input's answers; success must decode back */
  fsrc s = { data, data ? data + size : NULL, 0 };
  lgrpc_codec_source src = SRC;
  src.ud = &s;
  lgrpc_wbuf out;
  lgrpc_wbuf_init(&out, 1u << 20);
  int rc = lgrpc_codec_encode(S, M_ALL, &src, &out, (int)(size & 1), &err);
  if (rc == 0) {
    static csink c;
    csink_init(&c, out.data, out.data ? out.data + out.len : NULL, M_ALL);
    lgrpc_codec_sink sink = SINK;
    sink.ud = &c;
    int drc = lgrpc_codec_decode(S, M_ALL, out.data, out.len, &sink, &err);
    if (drc) { fprintf(stderr, "re-decode failed: %s\n", err.msg); abort(); }
  } else if (rc != LGRPC_ECODEC_UTF8 && rc != LGRPC_ECODEC_REQUIRED && rc != LGRPC_ECODEC_ONEOF &&
             rc != LGRPC_ECODEC_TOOBIG && rc != LGRPC_ECODEC_DEPTH) {
    fprintf(stderr, "unexpected encode error %d: %s\n", rc, err.msg);
    abort();
  }
  lgrpc_wbuf_free(&out);
  return 0;
}

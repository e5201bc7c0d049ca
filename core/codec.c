/* codec.c — the protobuf binary codec walk: decode (bytes -> sink events) and encode (source
 * answers -> bytes) over the compiled tables of schema.c, with wire.c for the primitives.
 * Owns the decoding rules (last one wins, packed or not, closed enums, groups, depth) and the
 * error path text. Never sees a lua_State and never allocates for the input's sake. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "codec.h"

#define PATH_MAX_DEPTH 1002
#define LGRPC_ENTRY_TO_UNKNOWN 1 /* internal: dec_sub consumed a map entry that is kept unknown */

int lgrpc_codec_fail(lgrpc_codec_err *e, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->problem, sizeof e->problem, fmt, ap);
  va_end(ap);
  e->code = code;
  return code;
}

/* e->msg = "Root.f1.f2: problem" */
static int with_path(lgrpc_codec_err *e, const lgrpc_msgdef *root, const lgrpc_field *const *path,
                     int npath)
{
  size_t len = (size_t)snprintf(e->msg, sizeof e->msg, "%s", root->full_name);
  for (int i = 0; i < npath && len < sizeof e->msg; i++)
    len += (size_t)snprintf(e->msg + len, sizeof e->msg - len, ".%s", path[i]->cname);
  if (len < sizeof e->msg) snprintf(e->msg + len, sizeof e->msg - len, ": %s", e->problem);
  return e->code;
}

/* ------------------------------------------------------------------------------------------ */
/* decode */

typedef struct dctx {
  const lgrpc_schema *s;
  const lgrpc_codec_sink *sink;
  lgrpc_codec_err *err;
  int npath;
  const lgrpc_field *path[PATH_MAX_DEPTH];
} dctx;

static int wire_fail(dctx *c, int rc, const char *what)
{
  switch (rc) {
  case LGRPC_ECODEC_TRUNCATED: return lgrpc_codec_fail(c->err, rc, "truncated %s", what);
  case LGRPC_ECODEC_OVERLONG: return lgrpc_codec_fail(c->err, rc, "varint longer than 10 bytes");
  case LGRPC_ECODEC_DEPTH:
    return lgrpc_codec_fail(c->err, rc, "nesting deeper than %d", c->s->limits.max_depth);
  case LGRPC_ECODEC_GROUP: return lgrpc_codec_fail(c->err, rc, "mismatched end-group tag");
  case LGRPC_ECODEC_FIELDNUM: return lgrpc_codec_fail(c->err, rc, "invalid field number 0");
  case LGRPC_ECODEC_WIRETYPE: return lgrpc_codec_fail(c->err, rc, "invalid wire type");
  default: return lgrpc_codec_fail(c->err, rc, "%s", lgrpc_codec_strerror(rc));
  }
}

static const char *scalar_what(const lgrpc_field *f)
{
  return f->wt == LGRPC_WT_VARINT ? "varint" : f->wt == LGRPC_WT_I64 ? "fixed64" : "fixed32";
}

/* deliver a decoded enum/scalar; a closed enum's unknown number becomes an unknown record */
static int emit_scalar(dctx *c, const lgrpc_field *f, const lgrpc_value *v)
{
  if (f->op == LGRPC_OP_ENUM_CLOSED) {
    if (lgrpc_schema_enum_find(&c->s->enums[f->sub], (int32_t)v->v.i64) < 0) {
      uint8_t rec[24];
      lgrpc_wbuf b = { rec, 0, sizeof rec, sizeof rec };
      lgrpc_wire_put_varint_raw(&b, (uint64_t)f->number << 3);
      lgrpc_wire_put_varint_raw(&b, (uint64_t)v->v.i64);
      return c->sink->unknown(c->sink->ud, rec, b.len);
    }
  }
  return c->sink->value(c->sink->ud, f, v);
}

static int dec_msg(dctx *c, const lgrpc_msgdef *m, const uint8_t **pp, const uint8_t *end,
                   int depth, uint32_t group);

/* skip one value of wire type wt (not a group); 0 when it is not there whole */
static inline int skip_value(const uint8_t **pp, const uint8_t *end, int wt)
{
  const uint8_t *s;
  size_t n;
  uint64_t v;
  switch (wt) {
  case LGRPC_WT_VARINT: return !lgrpc_wire_get_varint(pp, end, &v);
  case LGRPC_WT_LEN: return !lgrpc_wire_get_len(pp, end, &s, &n);
  case LGRPC_WT_I64: if (end - *pp < 8) return 0; *pp += 8; return 1;
  case LGRPC_WT_I32: if (end - *pp < 4) return 0; *pp += 4; return 1;
  default: return 0;
  }
}

/* Size hints (sink->reserve): how many records with this tag follow one another from p, and how
 * many distinct fields (changes of field number, at most cap) the body p[0..end) holds. Both stop
 * quietly at anything malformed: the walk itself reports it. */
/* skip the rest of a record whose tag was just read, groups included; 0 when malformed */
static int skip_record(const uint8_t **pp, const uint8_t *end, uint64_t tag, int max_depth)
{
  int wt = (int)(tag & 7);
  if (wt == LGRPC_WT_SGROUP)
    return (tag >> 3) != 0 && lgrpc_wire_skip(pp, end, (uint32_t)(tag >> 3), wt, max_depth) == 0;
  return skip_value(pp, end, wt);
}

size_t lgrpc_codec_count_run(const uint8_t *p, const uint8_t *end, uint64_t tag, int max_depth)
{
  size_t n = 0;
  while (p < end) {
    uint64_t t;
    if (lgrpc_wire_get_varint(&p, end, &t) || t != tag) break;
    n++; /* counted even when malformed: the walk may begin it before finding out */
    if (!skip_record(&p, end, tag, max_depth)) break;
  }
  return n;
}

size_t lgrpc_codec_count_fields(const uint8_t *p, const uint8_t *end, size_t cap, int max_depth)
{
  size_t n = 0;
  uint64_t last = 0;
  while (p < end && n < cap) {
    uint64_t t;
    if (lgrpc_wire_get_varint(&p, end, &t)) break;
    if ((t >> 3) != last) { n++; last = t >> 3; }
    if (!skip_record(&p, end, t, max_depth)) break;
  }
  return n;
}

/* elements in a packed run of f's op: varints end at bytes below 0x80 */
size_t lgrpc_codec_count_packed(const lgrpc_field *f, const uint8_t *s, size_t n)
{
  if (f->wt == LGRPC_WT_I64) return n / 8;
  if (f->wt == LGRPC_WT_I32) return n / 4;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += s[i] < 0x80;
  return k;
}

/* A map entry whose value is a closed enum number the enum does not name goes, whole, to the
 * unknown fields (as protobuf does); 1 when entry bytes s[0..n) are such an entry. */
static int entry_has_unknown_enum(dctx *c, const lgrpc_msgdef *entry, const uint8_t *s, size_t n)
{
  const lgrpc_field *vf = lgrpc_schema_find_field(entry, 2);
  if (!vf || vf->op != LGRPC_OP_ENUM_CLOSED) return 0;
  const uint8_t *p = s, *end = s + n;
  int unknown = 0;
  while (p < end) {
    uint64_t tag, v;
    if (lgrpc_wire_get_varint(&p, end, &tag)) return 0;
    int wt = (int)(tag & 7);
    if ((tag >> 3) == 2 && wt == LGRPC_WT_VARINT) {
      if (lgrpc_wire_get_varint(&p, end, &v)) return 0;
      unknown = lgrpc_schema_enum_find(&c->s->enums[vf->sub], (int32_t)(uint32_t)v) < 0;
    } else if ((tag >> 3) == 0 || wt > LGRPC_WT_I32 ||
               lgrpc_wire_skip(&p, end, (uint32_t)(tag >> 3), wt, c->s->limits.max_depth)) {
      return 0; /* malformed: the normal walk reports it */
    }
  }
  return unknown;
}

static int dec_sub(dctx *c, const lgrpc_field *f, const uint8_t **pp, const uint8_t *end, int depth)
{
  const lgrpc_msgdef *sm = &c->s->msgs[f->sub];
  int rc;
  if (f->op == LGRPC_OP_MAP) {
    const uint8_t *p = *pp, *s;
    size_t n;
    if (!lgrpc_wire_get_len(&p, end, &s, &n) && entry_has_unknown_enum(c, sm, s, n)) {
      *pp = p;
      return LGRPC_ENTRY_TO_UNKNOWN;
    }
  }
  if (depth + 1 > c->s->limits.max_depth) return wire_fail(c, LGRPC_ECODEC_DEPTH, "");
  if (f->op == LGRPC_OP_GROUP) {
    if ((rc = c->sink->begin(c->sink->ud, f, sm))) return rc;
    if ((rc = dec_msg(c, sm, pp, end, depth + 1, f->number))) return rc;
  } else {
    /* the length is checked before begin(), so a truncated record never opens a message */
    const uint8_t *s;
    size_t n;
    if ((rc = lgrpc_wire_get_len(pp, end, &s, &n))) return wire_fail(c, rc, "length-delimited field");
    if (c->sink->reserve && f->op == LGRPC_OP_MESSAGE &&
        (rc = c->sink->reserve(c->sink->ud, f, sm,
                               lgrpc_codec_count_fields(s, s + n, (size_t)sm->nfields + 1, c->s->limits.max_depth))))
      return rc;
    if ((rc = c->sink->begin(c->sink->ud, f, sm))) return rc;
    if ((rc = dec_msg(c, sm, &s, s + n, depth + 1, 0))) return rc;
  }
  c->npath = depth + 1;
  return c->sink->end(c->sink->ud, f, sm);
}

static int dec_packed(dctx *c, const lgrpc_field *f, const uint8_t **pp, const uint8_t *end)
{
  const uint8_t *s;
  size_t n;
  int rc;
  if ((rc = lgrpc_wire_get_len(pp, end, &s, &n))) return wire_fail(c, rc, "packed field");
  if (c->sink->reserve && (rc = c->sink->reserve(c->sink->ud, f, NULL, lgrpc_codec_count_packed(f, s, n))))
    return rc;
  const uint8_t *e = s + n;
  while (s < e) {
    lgrpc_value v;
    if ((rc = lgrpc_codec_read_scalar(f, &s, e, &v))) return wire_fail(c, rc, scalar_what(f));
    if ((rc = emit_scalar(c, f, &v))) return rc;
  }
  return 0;
}

static int dec_field(dctx *c, const lgrpc_field *f, const uint8_t **pp, const uint8_t *end, int depth)
{
  lgrpc_value v;
  int rc;
  switch (f->op) {
  case LGRPC_OP_MESSAGE: case LGRPC_OP_MAP: case LGRPC_OP_GROUP:
    return dec_sub(c, f, pp, end, depth);
  case LGRPC_OP_STRING: case LGRPC_OP_STRING_UTF8: case LGRPC_OP_BYTES: {
    const uint8_t *s;
    size_t n;
    if ((rc = lgrpc_wire_get_len(pp, end, &s, &n)))
      return wire_fail(c, rc, f->op == LGRPC_OP_BYTES ? "bytes" : "string");
    if (f->op == LGRPC_OP_STRING_UTF8 && !lgrpc_wire_utf8_valid(s, n))
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_UTF8, "string is not valid UTF-8");
    v.s = (const char *)s;
    v.n = n;
    return c->sink->value(c->sink->ud, f, &v);
  }
  default:
    if ((rc = lgrpc_codec_read_scalar(f, pp, end, &v))) return wire_fail(c, rc, scalar_what(f));
    return emit_scalar(c, f, &v);
  }
}

static int dec_msg(dctx *c, const lgrpc_msgdef *m, const uint8_t **pp, const uint8_t *end,
                   int depth, uint32_t group)
{
  const uint8_t *p = *pp;
  const lgrpc_field *run = NULL; /* the repeated field whose run was last announced */
  int rc;
  while (p < end) {
    const uint8_t *rec = p;
    uint64_t tag;
    c->npath = depth;
    if ((rc = lgrpc_wire_get_varint(&p, end, &tag))) return wire_fail(c, rc, "tag");
    uint64_t num = tag >> 3;
    int wt = (int)(tag & 7);
    if (num == 0 || num > LGRPC_WIRE_MAX_FIELD)
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_FIELDNUM, "invalid field number %llu",
                              (unsigned long long)num);
    if (wt > LGRPC_WT_I32)
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_WIRETYPE, "invalid wire type %d (field %u)",
                              wt, (unsigned)num);
    if (wt == LGRPC_WT_EGROUP) {
      if (group && num == group) { *pp = p; return 0; }
      return lgrpc_codec_fail(c->err, LGRPC_ECODEC_GROUP, "unexpected end-group tag (field %u)",
                              (unsigned)num);
    }
    const lgrpc_field *f = lgrpc_schema_find_field(m, (uint32_t)num);
    if (f) {
      c->path[depth] = f;
      c->npath = depth + 1;
      if (wt == f->wt) {
        if ((f->flags & LGRPC_F_REPEATED) && f != run && c->sink->reserve) {
          run = f;
          size_t k = lgrpc_codec_count_run(rec, end, tag, c->s->limits.max_depth);
          if ((rc = c->sink->reserve(c->sink->ud, f, NULL, k))) return rc;
        }
        rc = dec_field(c, f, &p, end, depth);
        if (rc == LGRPC_ENTRY_TO_UNKNOWN) {
          c->npath = depth;
          if ((rc = c->sink->unknown(c->sink->ud, rec, (size_t)(p - rec)))) return rc;
          continue;
        }
        if (rc) return rc;
        continue;
      }
      if (wt == LGRPC_WT_LEN && (f->flags & LGRPC_F_REPEATED) && f->op <= LGRPC_OP_LAST_PACKABLE) {
        if ((rc = dec_packed(c, f, &p, end))) return rc;
        continue;
      }
      c->npath = depth; /* wire type mismatch: kept as an unknown field, as protobuf does */
    }
    if ((rc = lgrpc_wire_skip(&p, end, (uint32_t)num, wt, c->s->limits.max_depth - depth)))
      return wire_fail(c, rc, "field");
    if ((rc = c->sink->unknown(c->sink->ud, rec, (size_t)(p - rec)))) return rc;
  }
  if (group) {
    c->npath = depth;
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_TRUNCATED, "truncated group (no end-group tag)");
  }
  *pp = p;
  return 0;
}

int lgrpc_codec_decode(const lgrpc_schema *s, uint32_t msg, const uint8_t *p, size_t n,
                       const lgrpc_codec_sink *sink, lgrpc_codec_err *err)
{
  dctx c;
  c.s = s;
  c.sink = sink;
  c.err = err;
  c.npath = 0;
  err->code = 0;
  if (msg >= s->nmsgs) return lgrpc_codec_fail(err, LGRPC_ECODEC_SCHEMA, "no such message");
  static const uint8_t empty[1];
  if (!p) p = empty, n = 0; /* NULL + 0 is undefined in C */
  int rc = dec_msg(&c, &s->msgs[msg], &p, p + n, 0, 0);
  if (rc) {
    if (!err->code) lgrpc_codec_fail(err, rc, "%s", lgrpc_codec_strerror(rc));
    return with_path(err, &s->msgs[msg], c.path, c.npath);
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* encode */

typedef struct ectx {
  const lgrpc_schema *s;
  const lgrpc_codec_source *src;
  lgrpc_wbuf *out;
  lgrpc_codec_err *err;
  int partial;
  int npath;
  const lgrpc_field *path[PATH_MAX_DEPTH];
  const lgrpc_field **oneofs; /* scratch, one slot per oneof of each open message: the inline
                                * array, or owned heap memory once that is too small */
  size_t noneofs, oneofs_cap;
  const lgrpc_field *oneofs_inline[32];
} ectx;

static int out_fail(ectx *c, int rc)
{
  if (rc == LGRPC_ECODEC_TOOBIG)
    return lgrpc_codec_fail(c->err, rc, "message larger than %zu bytes", c->s->limits.max_size);
  return lgrpc_codec_fail(c->err, rc, "%s", lgrpc_codec_strerror(rc));
}

static int enc_value(ectx *c, const lgrpc_field *f, const lgrpc_value *v)
{
  int rc;
  if (f->type == LGRPC_TYPE_STRING && (f->flags & LGRPC_F_UTF8) &&
      !lgrpc_wire_utf8_valid((const uint8_t *)v->s, v->n))
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_UTF8, "string is not valid UTF-8");
  if ((rc = lgrpc_wire_put_tag(c->out, f->number, f->wt)) || (rc = lgrpc_codec_put_value(c->out, f, v)))
    return out_fail(c, rc);
  return 0;
}

static int enc_msg(ectx *c, const lgrpc_msgdef *m, int depth);

/* the source already entered the sub-message */
static int enc_sub(ectx *c, const lgrpc_field *f, int depth)
{
  const lgrpc_msgdef *sm = &c->s->msgs[f->sub];
  int rc;
  if (f->type == LGRPC_TYPE_GROUP) {
    if ((rc = lgrpc_wire_put_tag(c->out, f->number, LGRPC_WT_SGROUP))) return out_fail(c, rc);
    if ((rc = enc_msg(c, sm, depth + 1))) return rc;
    if ((rc = lgrpc_wire_put_tag(c->out, f->number, LGRPC_WT_EGROUP))) return out_fail(c, rc);
    return 0;
  }
  if ((rc = lgrpc_wire_put_tag(c->out, f->number, LGRPC_WT_LEN)) || (rc = lgrpc_wbuf_reserve(c->out, 1)))
    return out_fail(c, rc);
  size_t at = c->out->len++;
  if ((rc = enc_msg(c, sm, depth + 1))) return rc;
  if ((rc = lgrpc_wire_patch_length(c->out, at))) return out_fail(c, rc);
  return 0;
}

static int enc_list(ectx *c, const lgrpc_field *f, size_t n, int depth)
{
  const lgrpc_codec_source *src = c->src;
  lgrpc_value v;
  int rc;
  size_t at = 0;
  if (n == 0) return 0;
  if (f->flags & LGRPC_F_PACKED) {
    if ((rc = lgrpc_wire_put_tag(c->out, f->number, LGRPC_WT_LEN)) || (rc = lgrpc_wbuf_reserve(c->out, 1)))
      return out_fail(c, rc);
    at = c->out->len++;
  }
  for (size_t i = 0; i < n; i++) {
    rc = src->item(src->ud, f, i, &v);
    if (rc < 0) return rc;
    if (rc == LGRPC_SRC_MESSAGE) {
      rc = enc_sub(c, f, depth);
      src->leave(src->ud);
      if (rc) return rc;
      c->npath = depth + 1;
    } else if (f->flags & LGRPC_F_PACKED) {
      if ((rc = lgrpc_codec_put_value(c->out, f, &v))) return out_fail(c, rc);
    } else if ((rc = enc_value(c, f, &v))) {
      return rc;
    }
  }
  if ((f->flags & LGRPC_F_PACKED) && (rc = lgrpc_wire_patch_length(c->out, at))) return out_fail(c, rc);
  return 0;
}

static int enc_msg(ectx *c, const lgrpc_msgdef *m, int depth)
{
  const lgrpc_codec_source *src = c->src;
  int rc;
  c->npath = depth;
  if (depth > c->s->limits.max_depth)
    return lgrpc_codec_fail(c->err, LGRPC_ECODEC_DEPTH, "nesting deeper than %d (a cycle?)",
                            c->s->limits.max_depth);
  size_t base = c->noneofs;
  if (m->noneofs) {
    if (base + m->noneofs > c->oneofs_cap) {
      size_t cap = (base + m->noneofs) * 2;
      const lgrpc_field **o = c->oneofs == c->oneofs_inline ? malloc(cap * sizeof *o)
                                                            : realloc(c->oneofs, cap * sizeof *o);
      if (!o) return out_fail(c, LGRPC_ECODEC_NOMEM);
      if (c->oneofs == c->oneofs_inline) memcpy(o, c->oneofs_inline, base * sizeof *o);
      c->oneofs = o;
      c->oneofs_cap = cap;
    }
    memset(c->oneofs + base, 0, m->noneofs * sizeof *c->oneofs);
    c->noneofs = base + m->noneofs;
  }
  for (uint32_t j = 0; j < m->nfields; j++) {
    const lgrpc_field *f = &m->fields[j];
    lgrpc_value v;
    size_t n = 0;
    c->path[depth] = f;
    c->npath = depth + 1;
    rc = src->field(src->ud, f, &v, &n);
    if (rc < 0) return rc;
    if (rc == LGRPC_SRC_ABSENT) {
      if (f->label == LGRPC_LABEL_REQUIRED && !c->partial)
        return lgrpc_codec_fail(c->err, LGRPC_ECODEC_REQUIRED, "missing required field");
      continue;
    }
    if (f->oneof >= 0) {
      const lgrpc_field **slot = &c->oneofs[base + (size_t)f->oneof];
      if (*slot) {
        if (rc != LGRPC_SRC_VALUE) src->leave(src->ud);
        return lgrpc_codec_fail(c->err, LGRPC_ECODEC_ONEOF, "oneof members '%s' and '%s' are both set",
                                (*slot)->cname, f->cname);
      }
      *slot = f;
    }
    if (rc == LGRPC_SRC_VALUE) {
      if (!(f->flags & LGRPC_F_PRESENCE) && !(m->flags & LGRPC_M_MAP_ENTRY) && lgrpc_codec_is_default(f, &v))
        continue;
      if ((rc = enc_value(c, f, &v))) return rc;
    } else {
      rc = rc == LGRPC_SRC_MESSAGE ? enc_sub(c, f, depth) : enc_list(c, f, n, depth);
      src->leave(src->ud);
      if (rc) return rc;
    }
  }
  c->npath = depth;
  c->noneofs = base;
  const uint8_t *u;
  size_t un = 0;
  if ((rc = src->unknown(src->ud, &u, &un))) return rc;
  if (un && (rc = lgrpc_wire_put_bytes(c->out, u, un))) return out_fail(c, rc);
  return 0;
}

int lgrpc_codec_encode(const lgrpc_schema *s, uint32_t msg, const lgrpc_codec_source *src,
                       lgrpc_wbuf *out, int partial, lgrpc_codec_err *err)
{
  ectx c;
  c.s = s;
  c.src = src;
  c.out = out;
  c.err = err;
  c.partial = partial;
  c.npath = 0;
  c.oneofs = c.oneofs_inline;
  c.noneofs = 0;
  c.oneofs_cap = sizeof c.oneofs_inline / sizeof c.oneofs_inline[0];
  err->code = 0;
  if (msg >= s->nmsgs) return lgrpc_codec_fail(err, LGRPC_ECODEC_SCHEMA, "no such message");
  int rc = enc_msg(&c, &s->msgs[msg], 0);
  if (c.oneofs != c.oneofs_inline) free(c.oneofs);
  if (!rc && out->len > s->limits.max_size) rc = out_fail(&c, LGRPC_ECODEC_TOOBIG);
  if (rc) {
    if (!err->code) lgrpc_codec_fail(err, rc, "%s", lgrpc_codec_strerror(rc));
    return with_path(err, &s->msgs[msg], c.path, c.npath);
  }
  return 0;
}

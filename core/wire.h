/* wire.h — protobuf wire primitives: varint/zigzag/fixed read and write, a growable output
 * buffer with a hard limit, and record skipping. Knows nothing of schemas or of Lua; every
 * reader is bounded by the end pointer it is given and never reads past it. */
#ifndef LGRPC_WIRE_H
#define LGRPC_WIRE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
  LGRPC_WT_VARINT = 0, LGRPC_WT_I64 = 1, LGRPC_WT_LEN = 2,
  LGRPC_WT_SGROUP = 3, LGRPC_WT_EGROUP = 4, LGRPC_WT_I32 = 5
};
#define LGRPC_WIRE_MAX_FIELD 536870911u /* 2^29 - 1 */

/* Error codes of the wire layer and the codec (negative, like every LGRPC_E* code). */
#define LGRPC_ECODEC_NOMEM      (-100) /* allocation failed */
#define LGRPC_ECODEC_TRUNCATED  (-101) /* input ended inside a record */
#define LGRPC_ECODEC_OVERLONG   (-102) /* varint longer than 10 bytes */
#define LGRPC_ECODEC_WIRETYPE   (-103) /* wire type 6 or 7 */
#define LGRPC_ECODEC_FIELDNUM   (-104) /* field number 0 or above 2^29-1 */
#define LGRPC_ECODEC_GROUP      (-105) /* end-group tag without its start, or the wrong one */
#define LGRPC_ECODEC_DEPTH      (-106) /* nesting deeper than the configured limit */
#define LGRPC_ECODEC_UTF8       (-107) /* proto3 string that is not UTF-8 */
#define LGRPC_ECODEC_REQUIRED   (-108) /* proto2 required field missing */
#define LGRPC_ECODEC_TOOBIG     (-109) /* output over the configured size limit */
#define LGRPC_ECODEC_VALUE      (-110) /* a value of the wrong type or out of range (encode) */
#define LGRPC_ECODEC_ONEOF      (-111) /* two members of one oneof set (encode) */
#define LGRPC_ECODEC_SCHEMA     (-112) /* an invalid schema description */

const char *lgrpc_codec_strerror(int code);

/* ---- output buffer. Owner: whoever calls lgrpc_wbuf_init (frees it with lgrpc_wbuf_free). */
typedef struct lgrpc_wbuf {
  uint8_t *data;
  size_t len, cap;
  size_t limit; /* hard cap on len; growing past it is LGRPC_ECODEC_TOOBIG */
} lgrpc_wbuf;

void lgrpc_wbuf_init(lgrpc_wbuf *b, size_t limit);
void lgrpc_wbuf_free(lgrpc_wbuf *b);
int lgrpc_wbuf_grow(lgrpc_wbuf *b, size_t extra); /* slow path of lgrpc_wbuf_reserve */

static inline int lgrpc_wbuf_reserve(lgrpc_wbuf *b, size_t extra)
{
  return (b->cap - b->len >= extra) ? 0 : lgrpc_wbuf_grow(b, extra);
}

static inline size_t lgrpc_wire_varint_size(uint64_t v)
{
  size_t n = 1;
  while (v >= 0x80) { v >>= 7; n++; }
  return n;
}

/* Writers assume lgrpc_wbuf_reserve succeeded for enough room (10 bytes per varint). */
static inline void lgrpc_wire_put_varint_raw(lgrpc_wbuf *b, uint64_t v)
{
  uint8_t *p = b->data + b->len;
  while (v >= 0x80) { *p++ = (uint8_t)(v | 0x80); v >>= 7; }
  *p++ = (uint8_t)v;
  b->len = (size_t)(p - b->data);
}

static inline int lgrpc_wire_put_varint(lgrpc_wbuf *b, uint64_t v)
{
  int rc = lgrpc_wbuf_reserve(b, 10);
  if (rc) return rc;
  lgrpc_wire_put_varint_raw(b, v);
  return 0;
}

static inline int lgrpc_wire_put_fixed32(lgrpc_wbuf *b, uint32_t v)
{
  int rc = lgrpc_wbuf_reserve(b, 4);
  if (rc) return rc;
  uint8_t *p = b->data + b->len;
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
  b->len += 4;
  return 0;
}

static inline int lgrpc_wire_put_fixed64(lgrpc_wbuf *b, uint64_t v)
{
  int rc = lgrpc_wbuf_reserve(b, 8);
  if (rc) return rc;
  uint8_t *p = b->data + b->len;
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
  b->len += 8;
  return 0;
}

static inline int lgrpc_wire_put_bytes(lgrpc_wbuf *b, const void *s, size_t n)
{
  int rc = lgrpc_wbuf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  return 0;
}

static inline int lgrpc_wire_put_tag(lgrpc_wbuf *b, uint32_t number, int wt)
{
  return lgrpc_wire_put_varint(b, ((uint64_t)number << 3) | (uint64_t)wt);
}

/* Replace the one byte reserved at `at` by the varint of the length of everything after it,
 * shifting the body when the varint needs more than one byte. */
int lgrpc_wire_patch_length(lgrpc_wbuf *b, size_t at);

static inline uint64_t lgrpc_wire_zigzag64(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline uint32_t lgrpc_wire_zigzag32(int32_t v) { return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31); }
static inline int64_t lgrpc_wire_unzigzag64(uint64_t v) { return (int64_t)((v >> 1) ^ (~(v & 1) + 1)); }
static inline int32_t lgrpc_wire_unzigzag32(uint32_t v) { return (int32_t)((v >> 1) ^ (~(v & 1) + 1)); }

/* ---- readers: *pp advances on success; on error it is left where the record began. */
static inline int lgrpc_wire_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
  const uint8_t *p = *pp;
  if (p < end && *p < 0x80) { *out = *p; *pp = p + 1; return 0; } /* one byte: most tags and values */
  uint64_t v = 0;
  for (int i = 0; i < 10; i++) {
    if (p >= end) return LGRPC_ECODEC_TRUNCATED;
    uint8_t c = *p++;
    v |= (uint64_t)(c & 0x7f) << (7 * i);
    if (!(c & 0x80)) { *out = v; *pp = p; return 0; }
  }
  return LGRPC_ECODEC_OVERLONG;
}

static inline int lgrpc_wire_get_fixed32(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
  const uint8_t *p = *pp;
  if (end - p < 4) return LGRPC_ECODEC_TRUNCATED;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(out, p, 4); /* the wire is little-endian: one load */
#else
  *out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
  *pp = p + 4;
  return 0;
}

static inline int lgrpc_wire_get_fixed64(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
  const uint8_t *p = *pp;
  if (end - p < 8) return LGRPC_ECODEC_TRUNCATED;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(out, p, 8);
#else
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  *out = v;
#endif
  *pp = p + 8;
  return 0;
}

/* A length prefix and the bytes it announces; checks the length against the input left before
 * anyone allocates for it. */
static inline int lgrpc_wire_get_len(const uint8_t **pp, const uint8_t *end, const uint8_t **s, size_t *n)
{
  const uint8_t *p = *pp;
  uint64_t len;
  int rc = lgrpc_wire_get_varint(&p, end, &len);
  if (rc) return rc;
  if (len > (uint64_t)(end - p)) return LGRPC_ECODEC_TRUNCATED;
  *s = p; *n = (size_t)len;
  *pp = p + len;
  return 0;
}

/* Skip the body of a record whose tag (number, wt) was just read; groups are skipped to their
 * matching end tag, nested at most max_depth deep. */
int lgrpc_wire_skip(const uint8_t **pp, const uint8_t *end, uint32_t number, int wt, int max_depth);

/* 1 when s[0..n) is well-formed UTF-8 (no surrogates, no overlongs, at most U+10FFFF). */
int lgrpc_wire_utf8_valid(const uint8_t *s, size_t n);

#endif

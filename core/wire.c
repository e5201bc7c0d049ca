/* wire.c — the slow paths of the wire layer: buffer growth, length back-patching, record
 * skipping, UTF-8 validation, error texts. Never sees a schema or a lua_State. */
#include <stdlib.h>
#include "wire.h"

const char *lgrpc_codec_strerror(int code)
{
  switch (code) {
  case 0: return "ok";
  case LGRPC_ECODEC_NOMEM: return "out of memory";
  case LGRPC_ECODEC_TRUNCATED: return "truncated input";
  case LGRPC_ECODEC_OVERLONG: return "varint longer than 10 bytes";
  case LGRPC_ECODEC_WIRETYPE: return "invalid wire type";
  case LGRPC_ECODEC_FIELDNUM: return "invalid field number";
  case LGRPC_ECODEC_GROUP: return "mismatched end-group tag";
  case LGRPC_ECODEC_DEPTH: return "nesting too deep";
  case LGRPC_ECODEC_UTF8: return "string is not valid UTF-8";
  case LGRPC_ECODEC_REQUIRED: return "missing required field";
  case LGRPC_ECODEC_TOOBIG: return "message larger than the size limit";
  case LGRPC_ECODEC_VALUE: return "invalid value";
  case LGRPC_ECODEC_ONEOF: return "two members of one oneof are set";
  case LGRPC_ECODEC_SCHEMA: return "invalid schema";
  default: return "unknown error";
  }
}

void lgrpc_wbuf_init(lgrpc_wbuf *b, size_t limit)
{
  b->data = NULL;
  b->len = b->cap = 0;
  b->limit = limit > SIZE_MAX / 4 ? SIZE_MAX / 4 : limit;
}

void lgrpc_wbuf_free(lgrpc_wbuf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int lgrpc_wbuf_grow(lgrpc_wbuf *b, size_t extra)
{
  /* writers reserve up to 16 bytes ahead of what they write: allow that slack; the real
   * length is checked against the limit when a message is finished */
  if (b->len > b->limit || extra > b->limit - b->len + 16) return LGRPC_ECODEC_TOOBIG;
  size_t need = b->len + extra;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) return LGRPC_ECODEC_NOMEM;
    cap *= 2;
  }
  uint8_t *d = realloc(b->data, cap); /* owned by b */
  if (!d) return LGRPC_ECODEC_NOMEM;
  b->data = d;
  b->cap = cap;
  return 0;
}

int lgrpc_wire_patch_length(lgrpc_wbuf *b, size_t at)
{
  size_t body = b->len - at - 1;
  size_t vs = lgrpc_wire_varint_size(body);
  if (vs > 1) {
    int rc = lgrpc_wbuf_reserve(b, vs - 1);
    if (rc) return rc;
    memmove(b->data + at + vs, b->data + at + 1, body);
  }
  if (b->len + vs - 1 > b->limit) return LGRPC_ECODEC_TOOBIG;
  uint8_t *p = b->data + at;
  uint64_t v = body;
  while (v >= 0x80) { *p++ = (uint8_t)(v | 0x80); v >>= 7; }
  *p = (uint8_t)v;
  b->len += vs - 1;
  return 0;
}

int lgrpc_wire_skip(const uint8_t **pp, const uint8_t *end, uint32_t number, int wt, int max_depth)
{
  const uint8_t *p = *pp, *s;
  uint64_t v;
  size_t n;
  int rc;
  switch (wt) {
  case LGRPC_WT_VARINT: rc = lgrpc_wire_get_varint(&p, end, &v); break;
  case LGRPC_WT_I64: rc = (end - p < 8) ? LGRPC_ECODEC_TRUNCATED : (p += 8, 0); break;
  case LGRPC_WT_I32: rc = (end - p < 4) ? LGRPC_ECODEC_TRUNCATED : (p += 4, 0); break;
  case LGRPC_WT_LEN: rc = lgrpc_wire_get_len(&p, end, &s, &n); break;
  case LGRPC_WT_SGROUP:
    if (max_depth <= 0) return LGRPC_ECODEC_DEPTH;
    for (;;) {
      uint64_t tag;
      if (p >= end) return LGRPC_ECODEC_TRUNCATED;
      rc = lgrpc_wire_get_varint(&p, end, &tag);
      if (rc) return rc;
      uint64_t num = tag >> 3;
      int w = (int)(tag & 7);
      if (num == 0 || num > LGRPC_WIRE_MAX_FIELD) return LGRPC_ECODEC_FIELDNUM;
      if (w == LGRPC_WT_EGROUP) {
        if (num != number) return LGRPC_ECODEC_GROUP;
        break;
      }
      rc = lgrpc_wire_skip(&p, end, (uint32_t)num, w, max_depth - 1);
      if (rc) return rc;
    }
    rc = 0;
    break;
  case LGRPC_WT_EGROUP: return LGRPC_ECODEC_GROUP;
  default: return LGRPC_ECODEC_WIRETYPE;
  }
  if (rc) return rc;
  *pp = p;
  return 0;
}

int lgrpc_wire_utf8_valid(const uint8_t *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8) { /* ASCII fast path: 8 bytes at a time */
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (!(w & 0x8080808080808080ull)) { i += 8; continue; }
    }
    uint8_t c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n - i < len) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;
    i += len;
  }
  return 1;
}

/* frame.c — gRPC message framing and reassembly, and the transport's error strings.
 * Owns the reassembly buffer of one stream; never allocates more than the announced length nor
 * much more than twice the bytes that really arrived; never touches nghttp2, Lua or the clock. */
#include <stdlib.h>
#include <string.h>
#include "frame.h"

const char *lgrpc_net_strerror(int code)
{
  switch (code) {
  case LGRPC_ENET_NOMEM: return "out of memory";
  case LGRPC_ENET_TOOBIG: return "message larger than the limit";
  case LGRPC_ENET_STATE: return "not allowed in this state";
  case LGRPC_ENET_ARG: return "invalid argument";
  case LGRPC_ENET_PROTO: return "protocol error";
  case LGRPC_ENET_CLOSED: return "closed";
  case LGRPC_ENET_SYS: return "system error";
  default: return "unknown error";
  }
}

int lgrpc_bytes_reserve(lgrpc_bytes *b, size_t extra)
{
  if (b->cap - b->len >= extra) return 0;
  size_t need = b->len + extra;
  if (need < b->len) return LGRPC_ENET_NOMEM;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) { cap = need; break; }
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) return LGRPC_ENET_NOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int lgrpc_bytes_append(lgrpc_bytes *b, const void *p, size_t n)
{
  if (n == 0) return 0;
  int rc = lgrpc_bytes_reserve(b, n);
  if (rc) return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void lgrpc_bytes_free(lgrpc_bytes *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void lgrpc_frame_reader_init(lgrpc_frame_reader *r, size_t max_message)
{
  memset(r, 0, sizeof *r);
  r->max_message = max_message;
}

void lgrpc_frame_reader_free(lgrpc_frame_reader *r)
{
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
  r->prefix_len = 0;
}

size_t lgrpc_frame_pending(const lgrpc_frame_reader *r)
{
  return r->prefix_len + r->len;
}

void lgrpc_frame_prefix(unsigned char out[LGRPC_FRAME_PREFIX], int compressed, uint32_t len)
{
  out[0] = compressed ? 1 : 0;
  out[1] = (unsigned char)(len >> 24);
  out[2] = (unsigned char)(len >> 16);
  out[3] = (unsigned char)(len >> 8);
  out[4] = (unsigned char)len;
}

size_t lgrpc_frame_whole(const lgrpc_frame_reader *r, const uint8_t *data, size_t len,
                         lgrpc_frame_msg *out)
{
  if (r->prefix_len || len < LGRPC_FRAME_PREFIX) return 0;
  uint32_t n = ((uint32_t)data[1] << 24) | ((uint32_t)data[2] << 16) | ((uint32_t)data[3] << 8) |
               (uint32_t)data[4];
  if ((r->max_message && n > r->max_message) || len - LGRPC_FRAME_PREFIX < n) return 0;
  out->data = (char *)data + LGRPC_FRAME_PREFIX;
  out->len = n;
  out->compressed = data[0] & 1;
  return LGRPC_FRAME_PREFIX + (size_t)n;
}

static void hand_out(lgrpc_frame_reader *r, lgrpc_frame_msg *out)
{
  out->data = r->buf;
  out->len = r->len;
  out->compressed = r->compressed;
  r->buf = NULL;
  r->len = r->cap = 0;
  r->prefix_len = 0;
}

int lgrpc_frame_feed(lgrpc_frame_reader *r, const uint8_t *data, size_t len, size_t *used,
                     lgrpc_frame_msg *out)
{
  size_t pos = 0;
  *used = 0;
  if (r->prefix_len < LGRPC_FRAME_PREFIX) {
    while (r->prefix_len < LGRPC_FRAME_PREFIX && pos < len) r->prefix[r->prefix_len++] = data[pos++];
    if (r->prefix_len < LGRPC_FRAME_PREFIX) { *used = pos; return 0; }
    r->compressed = r->prefix[0] & 1;
    r->msg_len = ((uint32_t)r->prefix[1] << 24) | ((uint32_t)r->prefix[2] << 16) |
                 ((uint32_t)r->prefix[3] << 8) | (uint32_t)r->prefix[4];
    if (r->max_message && r->msg_len > r->max_message) {
      *used = pos;
      out->data = NULL;
      out->len = r->msg_len;
      out->compressed = r->compressed;
      return LGRPC_ENET_TOOBIG;
    }
    r->len = 0;
    if (r->msg_len == 0) {
      /* an empty message still needs a non-NULL buffer to hand out */
      r->buf = malloc(1);
      if (!r->buf) return LGRPC_ENET_NOMEM;
      r->cap = 1;
      *used = pos;
      hand_out(r, out);
      return 1;
    }
  }
  size_t want = r->msg_len - r->len;
  size_t take = len - pos < want ? len - pos : want;
  if (r->cap - r->len < take) {
    /* twice what has arrived (at least 1 KiB), or the whole message when that is within an
     * eighth of it: a 64 KiB message in 16 KiB DATA frames is then reallocated once, not
     * once per doubling from 1 KiB and again for the last few bytes of the prefix's offset */
    size_t need = r->len + take, cap = need > 512 ? 2 * need : 1024;
    if (cap >= r->msg_len || r->msg_len - cap < cap / 8) cap = r->msg_len;
    char *p = realloc(r->buf, cap);
    if (!p) return LGRPC_ENET_NOMEM;
    r->buf = p;
    r->cap = cap;
  }
  if (take) memcpy(r->buf + r->len, data + pos, take);
  r->len += take;
  pos += take;
  *used = pos;
  if (r->len == r->msg_len) { hand_out(r, out); return 1; }
  return 0;
}

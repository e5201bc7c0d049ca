/* frame.h — gRPC length-prefixed message framing (1 flag byte, 4-byte big-endian length),
 * reassembly across arbitrary chunk boundaries with a size limit checked on the prefix, and
 * the transport's error codes. Plain C: no nghttp2, no Lua, no I/O. */
#ifndef LGRPC_FRAME_H
#define LGRPC_FRAME_H
#include <stddef.h>
#include <stdint.h>

/* Transport error codes (negative), text from lgrpc_net_strerror(). */
#define LGRPC_ENET_NOMEM   (-101) /* allocation failed */
#define LGRPC_ENET_TOOBIG  (-102) /* message over the configured limit */
#define LGRPC_ENET_STATE   (-103) /* operation not valid in the stream's/session's state */
#define LGRPC_ENET_ARG     (-104) /* bad argument (metadata key, value, path ...) */
#define LGRPC_ENET_PROTO   (-105) /* peer broke HTTP/2 or gRPC framing */
#define LGRPC_ENET_CLOSED  (-106) /* session or stream already closed */
#define LGRPC_ENET_SYS     (-107) /* system call failed (errno holds the reason) */
const char *lgrpc_net_strerror(int code);

#define LGRPC_FRAME_PREFIX 5

/* Growable byte buffer; grows geometrically. Owner: whoever embeds it. */
typedef struct lgrpc_bytes {
  char *data;
  size_t len, cap;
} lgrpc_bytes;
int lgrpc_bytes_reserve(lgrpc_bytes *b, size_t extra); /* 0 or LGRPC_ENET_NOMEM */
int lgrpc_bytes_append(lgrpc_bytes *b, const void *p, size_t n);
void lgrpc_bytes_free(lgrpc_bytes *b);

/* Reassembles messages from a byte stream. */
typedef struct lgrpc_frame_reader {
  unsigned char prefix[LGRPC_FRAME_PREFIX];
  size_t prefix_len;   /* bytes of prefix collected */
  uint32_t msg_len;    /* valid once prefix_len == 5 */
  int compressed;
  char *buf;           /* payload so far; owned by the reader until handed out */
  size_t len, cap;
  size_t max_message;  /* 0 = unlimited */
} lgrpc_frame_reader;

/* A complete message; `data` is malloc'd and owned by the receiver of the struct (free()). */
typedef struct lgrpc_frame_msg {
  char *data;
  size_t len;
  int compressed;
} lgrpc_frame_msg;

void lgrpc_frame_reader_init(lgrpc_frame_reader *r, size_t max_message);
void lgrpc_frame_reader_free(lgrpc_frame_reader *r);
/* Consumes up to `len` bytes (*used says how many). Returns 1 when `out` holds a complete
 * message (call again with the rest), 0 when every byte was taken and more are needed,
 * LGRPC_ENET_TOOBIG when a prefix announces more than max_message (out->len holds the size),
 * LGRPC_ENET_NOMEM. */
int lgrpc_frame_feed(lgrpc_frame_reader *r, const uint8_t *data, size_t len, size_t *used,
                     lgrpc_frame_msg *out);
/* When the reader holds nothing and `data` starts with a whole message within the size limit:
 * points out->data into `data` (borrowed, not owned) and returns the bytes the message spans,
 * prefix included, so the caller copies it once to where it goes. Otherwise 0: feed instead. */
size_t lgrpc_frame_whole(const lgrpc_frame_reader *r, const uint8_t *data, size_t len,
                         lgrpc_frame_msg *out);
/* Bytes held (prefix + partial payload). */
size_t lgrpc_frame_pending(const lgrpc_frame_reader *r);
/* Writes the 5-byte prefix. */
void lgrpc_frame_prefix(unsigned char out[LGRPC_FRAME_PREFIX], int compressed, uint32_t len);

#endif

/* filter.h — the transport filter slot between socket bytes and an HTTP/2 session.
 * Inbound: raw bytes from the socket become plaintext for the session; outbound: plaintext from
 * the session becomes raw bytes for the socket. Identity today; TLS (OpenSSL memory BIOs) later
 * fills the same slot. Never does I/O itself: the driver moves the bytes. */
#ifndef LGRPC_FILTER_H
#define LGRPC_FILTER_H
#include <stddef.h>
#include "frame.h"

typedef struct lgrpc_filter lgrpc_filter;
struct lgrpc_filter {
  const char *name;
  /* raw bytes in; appends the plaintext they yield to `plain`. 0 or negative LGRPC_ENET_*. */
  int (*decode)(lgrpc_filter *f, const char *raw, size_t n, lgrpc_bytes *plain);
  /* plaintext out; appends raw bytes to `raw`. */
  int (*encode)(lgrpc_filter *f, const char *plain, size_t n, lgrpc_bytes *raw);
  /* 1 when decode passes its input through unchanged (lets the driver skip a copy). */
  int passthrough;
  void (*destroy)(lgrpc_filter *f);
};

/* The identity filter (static, nothing to free). */
lgrpc_filter *lgrpc_filter_identity(void);

#endif

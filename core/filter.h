/* filter.h — the transport filter slot between socket bytes and an HTTP/2 session.
 * Inbound: raw bytes from the socket become plaintext for the session; outbound: plaintext from
 * the session becomes raw bytes for the socket. Identity today; TLS (OpenSSL memory BIOs) later
 * fills the same slot. Never does I/O itself: the driver moves the bytes. */
#ifndef LGRPC_FILTER_H
#define LGRPC_FILTER_H
#include <stddef.h>
#include <stdint.h>
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
  /* Optional, NULL in the identity filter. */
  int (*want_write)(lgrpc_filter *f);   /* raw bytes wait with no new plaintext (handshake, alerts) */
  int (*established)(lgrpc_filter *f);  /* 1 once plaintext flows (the handshake is done) */
  const char *(*error)(lgrpc_filter *f); /* why the filter failed ("TLS handshake failed: ..."), NULL if it has not */
  void (*tick)(lgrpc_filter *f, int64_t now);              /* the driver's clock (ms) */
  int (*next_deadline)(lgrpc_filter *f, int64_t *when);    /* 1 if the filter has a timer */
};

/* The identity filter (static, nothing to free). */
lgrpc_filter *lgrpc_filter_identity(void);

#endif

/* tls.h — TLS for one connection on OpenSSL 3 through memory BIOs, in the transport's filter
 * slot: socket bytes in -> plaintext out (decode), plaintext in -> socket bytes out (encode).
 * ALPN "h2", peer verification, client certificates, the peer's identity, a handshake deadline.
 * Sans-IO: never touches a socket (no SSL_set_fd) and never reads a clock; the driver feeds
 * bytes and the time. Knows nothing of Lua or HTTP/2. */
#ifndef LGRPC_TLS_H
#define LGRPC_TLS_H
#include <stddef.h>
#include <stdint.h>
#include "filter.h"

/* Error codes (negative), text from lgrpc_tls_strerror(); the reason of one failure from
 * lgrpc_tls_error(). */
#define LGRPC_ETLS_CONFIG    (-120) /* unusable certificate, key, CA or option */
#define LGRPC_ETLS_HANDSHAKE (-121) /* the handshake failed (verification, peer alert, ALPN, timeout) */
#define LGRPC_ETLS_PROTO     (-122) /* a TLS error after the handshake (bad record, peer alert) */
#define LGRPC_ETLS_STATE     (-123) /* plaintext after the connection failed or closed */
#define LGRPC_ETLS_NOMEM     (-124) /* allocation failed */
const char *lgrpc_tls_strerror(int code);

enum { LGRPC_TLS_AUTH_NONE = 0, LGRPC_TLS_AUTH_REQUEST, LGRPC_TLS_AUTH_REQUIRE };
enum { LGRPC_TLS_HANDSHAKE = 1, LGRPC_TLS_OPEN, LGRPC_TLS_FAILED, LGRPC_TLS_CLOSED };

/* Everything a context is built from; strings are borrowed for the call only.
 * Certificate and key: PEM strings (cert/key) or files (cert_file/key_file); cert may hold the
 * chain, leaf first. Trust: PEM string `ca`, file `ca_file`, or (client, neither given) the system
 * store. */
typedef struct lgrpc_tls_options {
  int server;
  const char *cert, *key, *ca;        /* PEM text, NUL-terminated, or NULL */
  const char *cert_file, *key_file, *ca_file;
  int client_auth;                    /* server: LGRPC_TLS_AUTH_* */
  int insecure_skip_verify;           /* client: do not verify the server at all */
  int min_version, max_version;       /* 0x0303 (1.2), 0x0304 (1.3); 0 = 1.2 / the highest */
  int64_t handshake_timeout;          /* ms from the first tick; 0 = none */
} lgrpc_tls_options;

/* A context: one SSL_CTX (credentials, trust, versions, client session cache). Reference
 * counted: each connection holds one reference, so a replaced context lives until its last
 * connection ends. */
typedef struct lgrpc_tls_ctx lgrpc_tls_ctx;
lgrpc_tls_ctx *lgrpc_tls_ctx_new(const lgrpc_tls_options *o, char *err, size_t errlen);
void lgrpc_tls_ctx_ref(lgrpc_tls_ctx *c);
void lgrpc_tls_ctx_unref(lgrpc_tls_ctx *c);
int lgrpc_tls_ctx_is_server(const lgrpc_tls_ctx *c);

/* One connection. `server_name` (client): sent as SNI (unless an IP address) and checked against
 * the certificate's SANs; NULL skips both. */
typedef struct lgrpc_tls lgrpc_tls;
lgrpc_tls *lgrpc_tls_new(lgrpc_tls_ctx *c, const char *server_name, char *err, size_t errlen);
void lgrpc_tls_free(lgrpc_tls *t);
/* The embedded filter: decode/encode below; its destroy frees the connection. */
lgrpc_filter *lgrpc_tls_filter(lgrpc_tls *t);
/* The connection behind a filter made by lgrpc_tls_filter, or NULL for any other filter. */
lgrpc_tls *lgrpc_tls_from_filter(lgrpc_filter *f);

/* Raw bytes from the peer; appends the plaintext they carry. Records that answer (handshake,
 * tickets, alerts) wait for the next encode. 0, or LGRPC_ETLS_HANDSHAKE / LGRPC_ETLS_PROTO with
 * the reason in lgrpc_tls_error(); a close_notify from the peer gives 0 and state CLOSED. */
int lgrpc_tls_decode(lgrpc_tls *t, const char *raw, size_t n, lgrpc_bytes *plain);
/* Plaintext to send (n may be 0); appends every raw byte ready for the socket, including
 * handshake records and a failure's alert. Plaintext given before the handshake ends is held and
 * sent once it does. LGRPC_ETLS_STATE for plaintext after a failure or close. */
int lgrpc_tls_encode(lgrpc_tls *t, const char *plain, size_t n, lgrpc_bytes *raw);
int lgrpc_tls_want_write(const lgrpc_tls *t); /* 1 when encode would produce raw bytes */
int lgrpc_tls_state(const lgrpc_tls *t);
const char *lgrpc_tls_error(const lgrpc_tls *t); /* the failure's reason, "" if none */
void lgrpc_tls_close(lgrpc_tls *t);              /* queues close_notify */
/* The clock in (any monotonic ms): the handshake deadline starts at the first tick. */
void lgrpc_tls_tick(lgrpc_tls *t, int64_t now);
int lgrpc_tls_next_deadline(const lgrpc_tls *t, int64_t *when); /* 1 if there is one */

/* After the handshake. Strings live as long as the connection. */
const char *lgrpc_tls_version(const lgrpc_tls *t);   /* "TLSv1.3" */
const char *lgrpc_tls_cipher(const lgrpc_tls *t);
const char *lgrpc_tls_alpn(const lgrpc_tls *t);      /* "h2" or "" */
const char *lgrpc_tls_server_name(const lgrpc_tls *t); /* client: asked for; server: SNI seen */
int lgrpc_tls_resumed(const lgrpc_tls *t);

/* The peer's certificate, as verified. kind of a SAN: "dns", "uri", "ip", "email". */
typedef struct lgrpc_tls_san { const char *kind; char *value; } lgrpc_tls_san;
typedef struct lgrpc_tls_identity {
  int present;          /* the peer sent a certificate */
  int verified;         /* and it verified against the trusted CAs */
  char *subject, *issuer, *serial, *not_before, *not_after; /* RFC 2253 names; hex serial */
  lgrpc_tls_san *sans;
  size_t nsans;
  char **chain;         /* PEM, leaf first */
  size_t nchain;
} lgrpc_tls_identity;
/* Computed once at the end of the handshake; NULL before. Owned by the connection. */
const lgrpc_tls_identity *lgrpc_tls_peer(const lgrpc_tls *t);

#endif

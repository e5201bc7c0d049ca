/* loop.h — the socket driver: an epoll loop (poll fallback) with a timer heap, non-blocking
 * listen/accept/connect on IPv4, IPv6 and unix sockets, and per-connection batched writes.
 * Moves bytes between sockets and h2 sessions through a filter; knows nothing of Lua. */
#ifndef LGRPC_LOOP_H
#define LGRPC_LOOP_H
#include <stddef.h>
#include <stdint.h>
#include "h2.h"
#include "filter.h"
#include "tls.h"

typedef struct lgrpc_loop lgrpc_loop;
typedef struct lgrpc_conn lgrpc_conn;
typedef struct lgrpc_listener lgrpc_listener;
typedef struct lgrpc_timer lgrpc_timer;

enum { LGRPC_LEV_ACCEPT = 1, LGRPC_LEV_CONNECT, LGRPC_LEV_TIMER };

/* Loop-level events; owned by the taker (free()). */
typedef struct lgrpc_loop_event {
  struct lgrpc_loop_event *next;
  int type;
  lgrpc_conn *conn;          /* ACCEPT, CONNECT */
  lgrpc_listener *listener;  /* ACCEPT */
  lgrpc_timer *timer;        /* TIMER */
} lgrpc_loop_event;

int64_t lgrpc_loop_clock(void); /* CLOCK_MONOTONIC in ms */

/* use_poll: 1 forces the poll(2) backend. Returns NULL (errno set) on failure. */
lgrpc_loop *lgrpc_loop_new(int use_poll);
/* Closes listeners and connections (sessions see CLOSED "loop closed"), frees unadopted
 * connections and the loop; adopted conns, listeners and timers stay for their owners to free. */
void lgrpc_loop_free(lgrpc_loop *lp);
const char *lgrpc_loop_backend(const lgrpc_loop *lp);
int lgrpc_loop_wakeup(lgrpc_loop *lp);

/* Waits at most timeout_ms (-1: no limit) for sockets, timers and session deadlines; flushes
 * every connection first. Returns 0 or LGRPC_ENET_SYS. */
int lgrpc_loop_poll(lgrpc_loop *lp, int64_t timeout_ms);
lgrpc_loop_event *lgrpc_loop_take_events(lgrpc_loop *lp);
/* Connections in the loop, for taking their sessions' events. */
lgrpc_conn *lgrpc_loop_first_conn(lgrpc_loop *lp);
lgrpc_conn *lgrpc_conn_next(lgrpc_conn *c);
size_t lgrpc_loop_nconns(const lgrpc_loop *lp);

/* Listeners: err receives "ENAME: text" on failure. */
lgrpc_listener *lgrpc_loop_listen(lgrpc_loop *lp, const char *addr, const lgrpc_h2_config *cfg,
                                  int backlog, char *err, size_t errlen);
int lgrpc_listener_port(const lgrpc_listener *l);
const char *lgrpc_listener_address(const lgrpc_listener *l);
void lgrpc_listener_close(lgrpc_listener *l);
void lgrpc_listener_free(lgrpc_listener *l);
void lgrpc_listener_set_ud(lgrpc_listener *l, void *ud);
void *lgrpc_listener_ud(const lgrpc_listener *l);
/* TLS for the connections accepted from now on (the listener holds one reference; NULL: plain
 * text). Live connections keep the context they started with. */
void lgrpc_listener_set_tls(lgrpc_listener *l, lgrpc_tls_ctx *ctx);

/* Connections. */
/* connect_timeout: ms per address tried (0: the kernel's own). */
lgrpc_conn *lgrpc_loop_connect(lgrpc_loop *lp, const char *addr, const lgrpc_h2_config *cfg,
                               int64_t connect_timeout, char *err, size_t errlen);
lgrpc_h2_session *lgrpc_conn_session(lgrpc_conn *c);
/* Client: TLS over this connection (before the next poll), verifying `server_name`. The CONNECT
 * event then waits for the end of the handshake. 0, or -1 with err set. */
int lgrpc_conn_set_tls(lgrpc_conn *c, lgrpc_tls_ctx *ctx, const char *server_name, char *err, size_t errlen);
lgrpc_filter *lgrpc_conn_filter(lgrpc_conn *c);
const char *lgrpc_conn_peer(const lgrpc_conn *c);
void lgrpc_conn_adopt(lgrpc_conn *c, void *ud); /* the binding owns it from now on */
void *lgrpc_conn_ud(const lgrpc_conn *c);
int lgrpc_conn_in_loop(const lgrpc_conn *c);
/* The owner saw CLOSED: the loop forgets the connection. */
void lgrpc_conn_unlink(lgrpc_conn *c);
void lgrpc_conn_free(lgrpc_conn *c); /* closes the socket, frees the session */
/* Closes the socket now, without a GOAWAY; the session ends every stream and queues CLOSED. */
void lgrpc_conn_abort(lgrpc_conn *c, const char *reason);

/* One-shot timers. */
lgrpc_timer *lgrpc_timer_new(lgrpc_loop *lp, int64_t ms);
void lgrpc_timer_cancel(lgrpc_timer *t);
void lgrpc_timer_free(lgrpc_timer *t);
void lgrpc_timer_set_ud(lgrpc_timer *t, void *ud);
void *lgrpc_timer_ud(const lgrpc_timer *t);
int lgrpc_timer_armed(const lgrpc_timer *t);

#endif

/* loop.c — the epoll (or poll) driver over h2 sessions: sockets, timers, batched writes.
 * Owns file descriptors, the timer heap and the loop event queue; a connection's session is
 * created here and owned by the connection. Never interprets HTTP/2 and never calls Lua. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include "loop.h"

#define READ_CHUNK (64 * 1024)
#define READS_PER_ITERATION 16
#define WRITE_HIGH (256 * 1024)

enum { C_CONNECTING = 1, C_OPEN, C_DONE };
enum { KIND_WAKE = 1, KIND_LISTENER, KIND_CONN };

typedef struct fd_tag { int kind; void *ptr; } fd_tag;

struct lgrpc_listener {
  fd_tag tag;
  lgrpc_loop *loop;
  lgrpc_listener *prev, *next;
  int fd, port;
  int64_t paused_until;  /* out of file descriptors: not polled until then (0: active) */
  char address[128];
  lgrpc_h2_config cfg;
  lgrpc_tls_ctx *tls;        /* one reference, or NULL */
  void *ud;
};

struct lgrpc_conn {
  fd_tag tag;
  lgrpc_loop *loop;
  lgrpc_conn *prev, *next;
  int fd, state, out_registered, adopted;
  int connect_held;          /* connected, CONNECT waits for the filter's handshake */
  lgrpc_h2_session *sess;
  lgrpc_filter *filter;
  lgrpc_bytes wbuf;          /* raw bytes waiting for the socket; released once drained while
                              * the session has no open stream (an idle connection holds none) */
  size_t woff;
  struct sockaddr_storage *cands;  /* connect: every resolved address */
  socklen_t *candlen;
  size_t ncands, cand;
  int64_t connect_timeout, connect_deadline; /* ms; 0: none */
  char peer[128];
  void *ud;
};

struct lgrpc_timer {
  lgrpc_loop *loop;
  int64_t when;
  size_t index;   /* position in the heap, SIZE_MAX when not armed */
  void *ud;
};

struct lgrpc_loop {
  int epfd, wakefd, use_poll;
  fd_tag waketag;
  lgrpc_listener *listeners;
  lgrpc_conn *conns;
  size_t nconns;
  lgrpc_timer **heap;
  size_t nheap, heapcap;
  lgrpc_loop_event *qhead, *qtail;
  int64_t now;
  struct pollfd *pfds;
  fd_tag **ptags;
  size_t pcap;
  lgrpc_bytes plain;         /* filter scratch (plaintext between filter and session), shared:
                              * each use starts and ends inside one conn_read or conn_flush */
};

int64_t lgrpc_loop_clock(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void errstr(char *err, size_t n, int e, const char *what)
{
  const char *name = e == ECONNREFUSED ? "ECONNREFUSED" : e == EADDRINUSE ? "EADDRINUSE"
                   : e == EACCES ? "EACCES" : e == ENOENT ? "ENOENT" : e == ETIMEDOUT ? "ETIMEDOUT"
                   : e == ENETUNREACH ? "ENETUNREACH" : e == EHOSTUNREACH ? "EHOSTUNREACH"
                   : e == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : e == ECONNRESET ? "ECONNRESET"
                   : e == EPIPE ? "EPIPE" : e == EAFNOSUPPORT ? "EAFNOSUPPORT" : "ESYS";
  char text[96];
  snprintf(text, sizeof text, "%s", strerror(e));
  if (text[0] >= 'A' && text[0] <= 'Z') text[0] = (char)(text[0] - 'A' + 'a');
  snprintf(err, n, "%s: %s (%s)", name, text, what);
}

static void queue(lgrpc_loop *lp, int type, lgrpc_conn *c, lgrpc_listener *l, lgrpc_timer *t)
{
  lgrpc_loop_event *ev = calloc(1, sizeof *ev);
  if (!ev) return;
  ev->type = type;
  ev->conn = c;
  ev->listener = l;
  ev->timer = t;
  if (lp->qtail) lp->qtail->next = ev; else lp->qhead = ev;
  lp->qtail = ev;
}

lgrpc_loop_event *lgrpc_loop_take_events(lgrpc_loop *lp)
{
  lgrpc_loop_event *ev = lp->qhead;
  lp->qhead = lp->qtail = NULL;
  return ev;
}

/* ---- fd registration -------------------------------------------------------------------- */

static void reg(lgrpc_loop *lp, int op, int fd, uint32_t events, fd_tag *tag)
{
  if (lp->use_poll) return;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.ptr = tag;
  epoll_ctl(lp->epfd, op, fd, &ev);
}

static void conn_want_out(lgrpc_conn *c, int on)
{
  if (!c->loop || c->fd < 0 || c->out_registered == on) return;
  c->out_registered = on;
  reg(c->loop, EPOLL_CTL_MOD, c->fd, EPOLLIN | (on ? EPOLLOUT : 0), &c->tag);
}

static void conn_close_fd(lgrpc_conn *c)
{
  if (c->fd < 0) return;
  if (c->loop && !c->loop->use_poll) epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  c->out_registered = 0;
}

/* ---- loop ------------------------------------------------------------------------------- */

lgrpc_loop *lgrpc_loop_new(int use_poll)
{
  lgrpc_loop *lp = calloc(1, sizeof *lp);
  if (!lp) return NULL;
  lp->epfd = -1;
  lp->use_poll = use_poll;
  if (!use_poll) {
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lp->epfd < 0) lp->use_poll = 1;
  }
  lp->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (lp->wakefd < 0) {
    if (lp->epfd >= 0) close(lp->epfd);
    free(lp);
    return NULL;
  }
  lp->waketag.kind = KIND_WAKE;
  reg(lp, EPOLL_CTL_ADD, lp->wakefd, EPOLLIN, &lp->waketag);
  lp->now = lgrpc_loop_clock();
  return lp;
}

const char *lgrpc_loop_backend(const lgrpc_loop *lp) { return lp->use_poll ? "poll" : "epoll"; }

int lgrpc_loop_wakeup(lgrpc_loop *lp)
{
  uint64_t one = 1;
  return write(lp->wakefd, &one, sizeof one) == sizeof one ? 0 : LGRPC_ENET_SYS;
}

void lgrpc_loop_free(lgrpc_loop *lp)
{
  if (!lp) return;
  while (lp->listeners) lgrpc_listener_close(lp->listeners);
  while (lp->conns) {
    lgrpc_conn *c = lp->conns;
    lgrpc_h2_terminate(c->sess, "loop closed");
    conn_close_fd(c);
    lgrpc_conn_unlink(c);
    if (!c->adopted) lgrpc_conn_free(c);
  }
  for (size_t i = 0; i < lp->nheap; i++) {
    lp->heap[i]->index = SIZE_MAX;
    lp->heap[i]->loop = NULL;
  }
  lgrpc_loop_event *ev = lgrpc_loop_take_events(lp);
  while (ev) {
    lgrpc_loop_event *n = ev->next;
    free(ev);
    ev = n;
  }
  free(lp->heap);
  lgrpc_bytes_free(&lp->plain);
  free(lp->pfds);
  free(lp->ptags);
  if (lp->epfd >= 0) close(lp->epfd);
  close(lp->wakefd);
  free(lp);
}

/* ---- timers ----------------------------------------------------------------------------- */

static void heap_set(lgrpc_loop *lp, size_t i, lgrpc_timer *t)
{
  lp->heap[i] = t;
  t->index = i;
}

static void heap_up(lgrpc_loop *lp, size_t i)
{
  lgrpc_timer *t = lp->heap[i];
  while (i > 0 && lp->heap[(i - 1) / 2]->when > t->when) {
    heap_set(lp, i, lp->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_set(lp, i, t);
}

static void heap_down(lgrpc_loop *lp, size_t i)
{
  lgrpc_timer *t = lp->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= lp->nheap) break;
    if (c + 1 < lp->nheap && lp->heap[c + 1]->when < lp->heap[c]->when) c++;
    if (lp->heap[c]->when >= t->when) break;
    heap_set(lp, i, lp->heap[c]);
    i = c;
  }
  heap_set(lp, i, t);
}

static void heap_remove(lgrpc_loop *lp, lgrpc_timer *t)
{
  size_t i = t->index;
  t->index = SIZE_MAX;
  lgrpc_timer *last = lp->heap[--lp->nheap];
  if (i == lp->nheap) return;
  heap_set(lp, i, last);
  heap_up(lp, i);
  heap_down(lp, last->index);
}

lgrpc_timer *lgrpc_timer_new(lgrpc_loop *lp, int64_t ms)
{
  if (lp->nheap == lp->heapcap) {
    size_t cap = lp->heapcap ? lp->heapcap * 2 : 16;
    lgrpc_timer **h = realloc(lp->heap, cap * sizeof *h);
    if (!h) return NULL;
    lp->heap = h;
    lp->heapcap = cap;
  }
  lgrpc_timer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->loop = lp;
  t->when = lgrpc_loop_clock() + (ms > 0 ? ms : 0);
  lp->heap[lp->nheap] = t;
  t->index = lp->nheap++;
  heap_up(lp, t->index);
  return t;
}

void lgrpc_timer_cancel(lgrpc_timer *t)
{
  if (t->loop && t->index != SIZE_MAX) heap_remove(t->loop, t);
  t->loop = NULL; /* one-shot: a cancelled timer never comes back */
}

void lgrpc_timer_free(lgrpc_timer *t)
{
  if (!t) return;
  lgrpc_timer_cancel(t);
  /* fired events are taken in the same poll that queues them, so none can point at t here */
  free(t);
}

void lgrpc_timer_set_ud(lgrpc_timer *t, void *ud) { t->ud = ud; }
void *lgrpc_timer_ud(const lgrpc_timer *t) { return t->ud; }
int lgrpc_timer_armed(const lgrpc_timer *t) { return t->loop && t->index != SIZE_MAX; }

/* ---- addresses -------------------------------------------------------------------------- */

/* Splits "host:port", "[v6]:port" or "unix:/path". Returns 1 for unix, 0 for inet, -1 bad. */
static int split_addr(const char *addr, char *host, size_t hn, char *port, size_t pn)
{
  if (strncmp(addr, "unix:", 5) == 0) {
    if (strlen(addr + 5) == 0 || strlen(addr + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) return -1;
    snprintf(host, hn, "%s", addr + 5);
    return 1;
  }
  const char *colon;
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (!close || close[1] != ':') return -1;
    size_t n = (size_t)(close - addr - 1);
    if (n == 0 || n >= hn) return -1;
    memcpy(host, addr + 1, n);
    host[n] = 0;
    colon = close + 1;
  } else {
    colon = strrchr(addr, ':');
    if (!colon) return -1;
    size_t n = (size_t)(colon - addr);
    if (n >= hn) return -1;
    memcpy(host, addr, n);
    host[n] = 0;
  }
  if (strlen(colon + 1) == 0 || strlen(colon + 1) >= pn) return -1;
  for (const char *p = colon + 1; *p; p++) if (*p < '0' || *p > '9') return -1;
  snprintf(port, pn, "%s", colon + 1);
  return 0;
}

static void format_sockaddr(const struct sockaddr *sa, char *out, size_t n)
{
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    snprintf(out, n, "%s:%d", host, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in = (const void *)sa;
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    snprintf(out, n, "[%s]:%d", host, ntohs(in->sin6_port));
  } else if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const void *)sa;
    snprintf(out, n, "unix:%s", un->sun_path);
  } else snprintf(out, n, "?");
}

static void set_nodelay(int fd, int family)
{
  if (family == AF_INET || family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

/* ---- listeners -------------------------------------------------------------------------- */

/* A socket file nobody listens on (left by a process that died) is removed before bind. */
static void unlink_stale_unix(const struct sockaddr_un *un)
{
  struct stat sb;
  if (lstat(un->sun_path, &sb) != 0 || !S_ISSOCK(sb.st_mode)) return;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (connect(fd, (const struct sockaddr *)un, sizeof *un) != 0 && errno == ECONNREFUSED)
    unlink(un->sun_path);
  close(fd);
}

lgrpc_listener *lgrpc_loop_listen(lgrpc_loop *lp, const char *addr, const lgrpc_h2_config *cfg,
                                  int backlog, char *err, size_t errlen)
{
  char host[256], port[16];
  int kind = split_addr(addr, host, sizeof host, port, sizeof port);
  if (kind < 0) {
    snprintf(err, errlen, "EINVAL: bad address '%s' (want host:port, [v6]:port or unix:/path)", addr);
    return NULL;
  }
  int fd = -1;
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  if (kind == 1) {
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path, host, strlen(host));
    unlink_stale_unix(&un);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) != 0 || listen(fd, backlog) != 0) {
      errstr(err, errlen, errno, addr);
      if (fd >= 0) close(fd);
      return NULL;
    }
  } else {
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
      snprintf(err, errlen, "EAI: %s (%s)", gai_strerror(rc), addr);
      return NULL;
    }
    int e = 0;
    for (ai = res; ai; ai = ai->ai_next) {
      fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) { e = errno; continue; }
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) break;
      e = errno;
      close(fd);
      fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
      errstr(err, errlen, e ? e : EADDRNOTAVAIL, addr);
      return NULL;
    }
  }
  lgrpc_listener *l = calloc(1, sizeof *l);
  if (!l) { close(fd); snprintf(err, errlen, "ENOMEM: out of memory"); return NULL; }
  l->tag.kind = KIND_LISTENER;
  l->tag.ptr = l;
  l->fd = fd;
  l->cfg = *cfg;
  l->loop = lp;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  format_sockaddr((struct sockaddr *)&bound, l->address, sizeof l->address);
  if (bound.ss_family == AF_INET) l->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  else if (bound.ss_family == AF_INET6) l->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  l->next = lp->listeners;
  if (lp->listeners) lp->listeners->prev = l;
  lp->listeners = l;
  reg(lp, EPOLL_CTL_ADD, fd, EPOLLIN, &l->tag);
  return l;
}

int lgrpc_listener_port(const lgrpc_listener *l) { return l->port; }
const char *lgrpc_listener_address(const lgrpc_listener *l) { return l->address; }
void lgrpc_listener_set_ud(lgrpc_listener *l, void *ud) { l->ud = ud; }
void *lgrpc_listener_ud(const lgrpc_listener *l) { return l->ud; }

void lgrpc_listener_close(lgrpc_listener *l)
{
  if (l->fd >= 0) {
    if (l->loop && !l->loop->use_poll && !l->paused_until) epoll_ctl(l->loop->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    close(l->fd);
    l->fd = -1;
    if (strncmp(l->address, "unix:", 5) == 0) unlink(l->address + 5);
  }
  if (l->loop) {
    lgrpc_loop *lp = l->loop;
    if (l->prev) l->prev->next = l->next; else lp->listeners = l->next;
    if (l->next) l->next->prev = l->prev;
    for (lgrpc_loop_event *ev = lp->qhead; ev; ev = ev->next)
      if (ev->listener == l) ev->listener = NULL;
    for (lgrpc_conn *c = lp->conns; c; c = c->next) (void)c;
    l->loop = NULL;
    l->prev = l->next = NULL;
  }
}

void lgrpc_listener_free(lgrpc_listener *l)
{
  if (!l) return;
  lgrpc_listener_close(l);
  lgrpc_tls_ctx_unref(l->tls);
  free(l);
}

void lgrpc_listener_set_tls(lgrpc_listener *l, lgrpc_tls_ctx *ctx)
{
  if (ctx) lgrpc_tls_ctx_ref(ctx);
  lgrpc_tls_ctx_unref(l->tls);
  l->tls = ctx;
}

/* ---- connections ------------------------------------------------------------------------ */

static lgrpc_conn *conn_new(lgrpc_loop *lp, int server, const lgrpc_h2_config *cfg)
{
  lgrpc_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->sess = lgrpc_h2_session_new(server, cfg);
  if (!c->sess) { free(c); return NULL; }
  c->tag.kind = KIND_CONN;
  c->tag.ptr = c;
  c->fd = -1;
  c->filter = lgrpc_filter_identity();
  c->loop = lp;
  c->next = lp->conns;
  if (lp->conns) lp->conns->prev = c;
  lp->conns = c;
  lp->nconns++;
  lgrpc_h2_tick(c->sess, lp->now);
  return c;
}

lgrpc_h2_session *lgrpc_conn_session(lgrpc_conn *c) { return c->sess; }
lgrpc_filter *lgrpc_conn_filter(lgrpc_conn *c) { return c->filter; }

/* Replaces the identity filter by a TLS connection of `ctx`. */
static int conn_start_tls(lgrpc_conn *c, lgrpc_tls_ctx *ctx, const char *server_name, char *err, size_t errlen)
{
  lgrpc_tls *t = lgrpc_tls_new(ctx, server_name, err, errlen);
  if (!t) return -1;
  c->filter = lgrpc_tls_filter(t); /* owned by the connection: destroy() in lgrpc_conn_free */
  if (c->filter->tick && c->loop) c->filter->tick(c->filter, c->loop->now);
  return 0;
}

int lgrpc_conn_set_tls(lgrpc_conn *c, lgrpc_tls_ctx *ctx, const char *server_name, char *err, size_t errlen)
{
  if (c->filter != lgrpc_filter_identity()) { snprintf(err, errlen, "the connection already has a filter"); return -1; }
  return conn_start_tls(c, ctx, server_name, err, errlen);
}
const char *lgrpc_conn_peer(const lgrpc_conn *c) { return c->peer; }
void lgrpc_conn_adopt(lgrpc_conn *c, void *ud) { c->adopted = 1; c->ud = ud; }
void *lgrpc_conn_ud(const lgrpc_conn *c) { return c->ud; }
int lgrpc_conn_in_loop(const lgrpc_conn *c) { return c->loop != NULL; }
lgrpc_conn *lgrpc_loop_first_conn(lgrpc_loop *lp) { return lp->conns; }
lgrpc_conn *lgrpc_conn_next(lgrpc_conn *c) { return c->next; }
size_t lgrpc_loop_nconns(const lgrpc_loop *lp) { return lp->nconns; }

void lgrpc_conn_unlink(lgrpc_conn *c)
{
  lgrpc_loop *lp = c->loop;
  if (!lp) return;
  /* last words (a final GOAWAY) still buffered: one more try before the socket goes */
  if (c->fd >= 0 && c->state == C_OPEN && c->wbuf.len > c->woff)
    (void)!send(c->fd, c->wbuf.data + c->woff, c->wbuf.len - c->woff, MSG_NOSIGNAL);
  conn_close_fd(c);
  if (c->prev) c->prev->next = c->next; else lp->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  lp->nconns--;
  for (lgrpc_loop_event *ev = lp->qhead; ev; ev = ev->next)
    if (ev->conn == c) ev->conn = NULL;
  c->prev = c->next = NULL;
  c->loop = NULL;
}

void lgrpc_conn_free(lgrpc_conn *c)
{
  if (!c) return;
  lgrpc_conn_unlink(c);
  conn_close_fd(c);
  lgrpc_h2_session_free(c->sess);
  if (c->filter && c->filter->destroy) c->filter->destroy(c->filter);
  lgrpc_bytes_free(&c->wbuf);
  free(c->cands);
  free(c->candlen);
  free(c);
}

/* The connection failed or ended below HTTP/2. */
static void conn_fail(lgrpc_conn *c, const char *error)
{
  conn_close_fd(c);
  c->state = C_DONE;
  lgrpc_h2_terminate(c->sess, error);
}

void lgrpc_conn_abort(lgrpc_conn *c, const char *reason)
{
  conn_fail(c, reason);
}

static int try_connect(lgrpc_conn *c, char *err, size_t errlen)
{
  int e = ECONNREFUSED;
  while (c->cand < c->ncands) {
    struct sockaddr *sa = (struct sockaddr *)&c->cands[c->cand];
    format_sockaddr(sa, c->peer, sizeof c->peer);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { e = errno; c->cand++; continue; }
    set_nodelay(fd, sa->sa_family);
    if (connect(fd, sa, c->candlen[c->cand]) == 0 || errno == EINPROGRESS) {
      c->fd = fd;
      c->state = C_CONNECTING;
      c->connect_deadline = c->connect_timeout > 0 ? lgrpc_loop_clock() + c->connect_timeout : 0;
      c->out_registered = 1;
      reg(c->loop, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, &c->tag);
      return 0;
    }
    e = errno;
    close(fd);
    c->cand++;
  }
  errstr(err, errlen, e, c->peer);
  return -1;
}

lgrpc_conn *lgrpc_loop_connect(lgrpc_loop *lp, const char *addr, const lgrpc_h2_config *cfg,
                               int64_t connect_timeout, char *err, size_t errlen)
{
  char host[256], port[16];
  int kind = split_addr(addr, host, sizeof host, port, sizeof port);
  if (kind < 0) {
    snprintf(err, errlen, "EINVAL: bad address '%s' (want host:port, [v6]:port or unix:/path)", addr);
    return NULL;
  }
  struct sockaddr_storage *cands = NULL;
  socklen_t *lens = NULL;
  size_t n = 0;
  if (kind == 1) {
    cands = calloc(1, sizeof *cands);
    lens = calloc(1, sizeof *lens);
    if (!cands || !lens) { free(cands); free(lens); snprintf(err, errlen, "ENOMEM: out of memory"); return NULL; }
    struct sockaddr_un *un = (struct sockaddr_un *)cands;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, host, strlen(host));
    lens[0] = sizeof *un;
    n = 1;
  } else {
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
      snprintf(err, errlen, "EAI: %s (%s)", gai_strerror(rc), addr);
      return NULL;
    }
    size_t cnt = 0;
    for (ai = res; ai; ai = ai->ai_next) cnt++;
    cands = calloc(cnt ? cnt : 1, sizeof *cands);
    lens = calloc(cnt ? cnt : 1, sizeof *lens);
    if (!cands || !lens) {
      freeaddrinfo(res); free(cands); free(lens);
      snprintf(err, errlen, "ENOMEM: out of memory");
      return NULL;
    }
    for (ai = res; ai; ai = ai->ai_next) {
      /* getaddrinfo may list an address once per protocol; keep one of each */
      int dup = 0;
      for (size_t i = 0; i < n; i++)
        if (lens[i] == ai->ai_addrlen && memcmp(&cands[i], ai->ai_addr, ai->ai_addrlen) == 0) dup = 1;
      if (dup) continue;
      memcpy(&cands[n], ai->ai_addr, ai->ai_addrlen);
      lens[n++] = (socklen_t)ai->ai_addrlen;
    }
    freeaddrinfo(res);
  }
  lgrpc_h2_config c2 = *cfg;
  if (!c2.authority[0] || strcmp(c2.authority, "localhost") == 0) {
    if (kind == 1) snprintf(c2.authority, sizeof c2.authority, "localhost");
    else snprintf(c2.authority, sizeof c2.authority, "%s", addr);
  }
  lgrpc_conn *c = conn_new(lp, 0, &c2);
  if (!c) {
    free(cands); free(lens);
    snprintf(err, errlen, "ENOMEM: out of memory");
    return NULL;
  }
  c->cands = cands;
  c->candlen = lens;
  c->ncands = n;
  c->connect_timeout = connect_timeout;
  char e[200];
  if (try_connect(c, e, sizeof e) != 0) conn_fail(c, e);
  return c;
}

/* The connect finished (or timed out: `timed_out`); on failure try the next address. */
static void conn_connected(lgrpc_conn *c, int timed_out)
{
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (timed_out) soerr = ETIMEDOUT;
  else getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (soerr == 0) {
    c->state = C_OPEN;
    if (c->filter->established && !c->filter->established(c->filter)) c->connect_held = 1;
    else queue(c->loop, LGRPC_LEV_CONNECT, c, NULL, NULL);
    return;
  }
  conn_close_fd(c);
  c->cand++;
  char e[200];
  if (c->cand < c->ncands) {
    if (try_connect(c, e, sizeof e) == 0) return;
  } else errstr(e, sizeof e, soerr, c->peer);
  conn_fail(c, e);
}

static void do_accept(lgrpc_loop *lp, lgrpc_listener *l)
{
  for (int i = 0; i < 64; i++) {
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    int fd = accept4(l->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        /* the pending connection stays readable: stop polling it for a while, or we spin */
        l->paused_until = lp->now + 100;
        if (!lp->use_poll) epoll_ctl(lp->epfd, EPOLL_CTL_DEL, l->fd, NULL);
      }
      return;
    }
    set_nodelay(fd, sa.ss_family);
    lgrpc_conn *c = conn_new(lp, 1, &l->cfg);
    if (!c) { close(fd); continue; }
    c->fd = fd;
    c->state = C_OPEN;
    char terr[200];
    if (l->tls && conn_start_tls(c, l->tls, NULL, terr, sizeof terr) != 0) {
      close(fd);
      c->fd = -1;
      lgrpc_conn_free(c);
      continue;
    }
    if (sa.ss_family == AF_UNIX) snprintf(c->peer, sizeof c->peer, "%s", l->address);
    else format_sockaddr((struct sockaddr *)&sa, c->peer, sizeof c->peer);
    reg(lp, EPOLL_CTL_ADD, fd, EPOLLIN, &c->tag);
    queue(lp, LGRPC_LEV_ACCEPT, c, l, NULL);
  }
}

/* The filter failed (TLS alert, verification, timeout): send what it has to say about it (one
 * best-effort write: the alert), then end the connection with its reason. */
static void conn_filter_failed(lgrpc_conn *c)
{
  const char *why = c->filter->error ? c->filter->error(c->filter) : NULL;
  char e[320];
  snprintf(e, sizeof e, "%s", why ? why : "transport filter failed");
  c->filter->encode(c->filter, NULL, 0, &c->wbuf);
  if (c->fd >= 0 && c->wbuf.len > c->woff)
    (void)!send(c->fd, c->wbuf.data + c->woff, c->wbuf.len - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
  c->wbuf.len = c->woff = 0;
  conn_fail(c, e);
}

static int filter_failed(lgrpc_conn *c)
{
  return c->filter->error && c->filter->error(c->filter) != NULL;
}

/* Pulls pending session output and writes it: one send per connection per iteration. */
static void conn_flush(lgrpc_conn *c)
{
  if (c->fd < 0 || c->state != C_OPEN) return;
  int filter_out = c->filter->want_write && c->filter->want_write(c->filter);
  if (c->wbuf.len - c->woff < WRITE_HIGH && (lgrpc_h2_want_write(c->sess) || filter_out)) {
    if (c->woff) {
      memmove(c->wbuf.data, c->wbuf.data + c->woff, c->wbuf.len - c->woff);
      c->wbuf.len -= c->woff;
      c->woff = 0;
    }
    if (c->filter->passthrough) lgrpc_h2_send(c->sess, &c->wbuf);
    else {
      lgrpc_bytes *plain = &c->loop->plain;
      plain->len = 0;
      lgrpc_h2_send(c->sess, plain);
      if (c->filter->encode(c->filter, plain->data, plain->len, &c->wbuf) < 0 || filter_failed(c)) {
        conn_filter_failed(c);
        return;
      }
    }
  }
  size_t left = c->wbuf.len - c->woff;
  if (left) {
    ssize_t n = send(c->fd, c->wbuf.data + c->woff, left, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      char e[200];
      errstr(e, sizeof e, errno, c->peer);
      conn_fail(c, e);
      return;
    }
    if (n > 0) c->woff += (size_t)n;
    if (c->woff == c->wbuf.len) c->wbuf.len = c->woff = 0;
  }
  if (c->wbuf.len == 0 && c->wbuf.cap) {
    /* drained: an idle connection keeps no buffer, a busy one keeps a normal-sized one */
    lgrpc_h2_stats st;
    lgrpc_h2_stats_get(c->sess, &st);
    if (st.open_streams == 0 || c->wbuf.cap > WRITE_HIGH) lgrpc_bytes_free(&c->wbuf);
  }
  conn_want_out(c, c->wbuf.len - c->woff > 0);
  /* the session is done and everything it said is out: close */
  if (!lgrpc_h2_alive(c->sess) && c->wbuf.len == c->woff) {
    conn_close_fd(c);
    c->state = C_DONE;
  }
}

static void conn_read(lgrpc_conn *c)
{
  char buf[READ_CHUNK];
  for (int i = 0; i < READS_PER_ITERATION && c->fd >= 0; i++) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n > 0) {
      int rc;
      if (c->filter->passthrough) rc = lgrpc_h2_recv(c->sess, (const uint8_t *)buf, (size_t)n);
      else {
        lgrpc_bytes *plain = &c->loop->plain;
        plain->len = 0;
        rc = c->filter->decode(c->filter, buf, (size_t)n, plain);
        if (rc < 0) { conn_filter_failed(c); return; }
        if (c->connect_held && c->filter->established(c->filter)) {
          c->connect_held = 0;
          queue(c->loop, LGRPC_LEV_CONNECT, c, NULL, NULL);
        }
        rc = lgrpc_h2_recv(c->sess, (const uint8_t *)plain->data, plain->len);
      }
      if (rc != 0) return; /* the session queued GOAWAY and will end */
      if ((size_t)n < sizeof buf) return;
      continue;
    }
    if (n == 0) {
      if (c->filter->established && !c->filter->established(c->filter))
        conn_fail(c, "EOF: connection closed by peer during the TLS handshake");
      else conn_fail(c, lgrpc_h2_alive(c->sess) ? "EOF: connection closed by peer" : NULL);
      return;
    }
    if (errno == EAGAIN || errno == EINTR) return;
    char e[200];
    errstr(e, sizeof e, errno, c->peer);
    conn_fail(c, e);
    return;
  }
}

static void handle(lgrpc_loop *lp, fd_tag *tag, int readable, int writable, int hup)
{
  if (tag->kind == KIND_CONN) {
    /* a request's grpc-timeout counts from now, not from before the wait */
    lgrpc_h2_set_now(((lgrpc_conn *)tag->ptr)->sess, lp->now);
  }
  if (tag->kind == KIND_WAKE) {
    uint64_t v;
    while (read(lp->wakefd, &v, sizeof v) > 0) {}
  } else if (tag->kind == KIND_LISTENER) {
    do_accept(lp, tag->ptr);
  } else {
    lgrpc_conn *c = tag->ptr;
    if (c->state == C_CONNECTING) {
      if (writable || hup) conn_connected(c, 0);
      return;
    }
    if (c->state != C_OPEN) return;
    if (readable || hup) conn_read(c);
    if (writable && c->fd >= 0) conn_flush(c);
  }
}

int lgrpc_loop_poll(lgrpc_loop *lp, int64_t timeout)
{
  lp->now = lgrpc_loop_clock();
  for (lgrpc_conn *c = lp->conns; c; c = c->next) conn_flush(c);
  /* how long may we sleep? */
  int64_t wait = timeout;
  for (lgrpc_listener *l = lp->listeners; l; l = l->next) {
    if (!l->paused_until) continue;
    if (l->paused_until <= lp->now) {
      l->paused_until = 0;
      reg(lp, EPOLL_CTL_ADD, l->fd, EPOLLIN, &l->tag);
    } else if (wait < 0 || l->paused_until - lp->now < wait) {
      wait = l->paused_until - lp->now;
    }
  }
  if (lp->qhead) wait = 0;
  if (lp->nheap) {
    int64_t d = lp->heap[0]->when - lp->now;
    if (wait < 0 || d < wait) wait = d < 0 ? 0 : d;
  }
  for (lgrpc_conn *c = lp->conns; c; c = c->next) {
    int64_t when;
    if (c->state == C_CONNECTING && c->connect_deadline) {
      int64_t d = c->connect_deadline - lp->now;
      if (wait < 0 || d < wait) wait = d < 0 ? 0 : d;
    }
    if (lgrpc_h2_has_ready_events(c->sess)) wait = 0; /* events held by a pause do not count */
    if (lgrpc_h2_next_deadline(c->sess, &when)) {
      int64_t d = when - lp->now;
      if (wait < 0 || d < wait) wait = d < 0 ? 0 : d;
    }
    if (c->filter->next_deadline && c->filter->next_deadline(c->filter, &when)) {
      int64_t d = when - lp->now;
      if (wait < 0 || d < wait) wait = d < 0 ? 0 : d;
    }
  }
  if (wait > 1000000000) wait = 1000000000;
  int ms = wait < 0 ? -1 : (int)wait;
  if (!lp->use_poll) {
    struct epoll_event evs[128];
    int n = epoll_wait(lp->epfd, evs, 128, ms);
    if (n < 0 && errno != EINTR) return LGRPC_ENET_SYS;
    lp->now = lgrpc_loop_clock();
    for (int i = 0; i < n; i++) {
      uint32_t e = evs[i].events;
      handle(lp, evs[i].data.ptr, (e & EPOLLIN) != 0, (e & EPOLLOUT) != 0, (e & (EPOLLHUP | EPOLLERR)) != 0);
    }
  } else {
    size_t need = 1 + lp->nconns;
    for (lgrpc_listener *l = lp->listeners; l; l = l->next) need++;
    if (need > lp->pcap) {
      struct pollfd *p = realloc(lp->pfds, need * sizeof *p);
      if (!p) return LGRPC_ENET_NOMEM;
      lp->pfds = p;
      fd_tag **t = realloc(lp->ptags, need * sizeof *t);
      if (!t) return LGRPC_ENET_NOMEM;
      lp->ptags = t;
      lp->pcap = need;
    }
    size_t n = 0;
    lp->pfds[n].fd = lp->wakefd; lp->pfds[n].events = POLLIN; lp->ptags[n++] = &lp->waketag;
    for (lgrpc_listener *l = lp->listeners; l; l = l->next) {
      if (l->paused_until) continue;
      lp->pfds[n].fd = l->fd; lp->pfds[n].events = POLLIN; lp->ptags[n++] = &l->tag;
    }
    for (lgrpc_conn *c = lp->conns; c; c = c->next) {
      if (c->fd < 0) continue;
      lp->pfds[n].fd = c->fd;
      lp->pfds[n].events = POLLIN | (c->out_registered ? POLLOUT : 0);
      lp->ptags[n++] = &c->tag;
    }
    int r = poll(lp->pfds, n, ms);
    if (r < 0 && errno != EINTR) return LGRPC_ENET_SYS;
    lp->now = lgrpc_loop_clock();
    for (size_t i = 0; r > 0 && i < n; i++) {
      short re = lp->pfds[i].revents;
      if (!re) continue;
      handle(lp, lp->ptags[i], (re & POLLIN) != 0, (re & POLLOUT) != 0, (re & (POLLHUP | POLLERR)) != 0);
    }
  }
  lp->now = lgrpc_loop_clock();
  while (lp->nheap && lp->heap[0]->when <= lp->now) {
    lgrpc_timer *t = lp->heap[0];
    heap_remove(lp, t);
    t->loop = NULL; /* a fired timer is done with the loop */
    queue(lp, LGRPC_LEV_TIMER, NULL, NULL, t);
  }
  for (lgrpc_conn *c = lp->conns; c; c = c->next) {
    if (c->state == C_CONNECTING && c->connect_deadline && c->connect_deadline <= lp->now)
      conn_connected(c, 1);
    if (c->filter->tick && c->state == C_OPEN) {
      c->filter->tick(c->filter, lp->now);
      if (filter_failed(c)) conn_filter_failed(c);
    }
    lgrpc_h2_tick(c->sess, lp->now);
    /* a session that ended without socket trouble (GOAWAY exchange, protocol error) */
    if (c->state == C_OPEN && !lgrpc_h2_alive(c->sess)) conn_flush(c);
  }
  return 0;
}

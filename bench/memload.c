/* bench/memload.c: the load behind the rpc section's memory rows (issue 11). It holds many idle
 * HTTP/2 connections, or many unary calls in flight, open against an Echo server while
 * bench/rpc.sh reads the server's RSS. One thread, epoll, nghttp2 client sessions fed through
 * mem_recv / mem_send; plaintext (h2c with prior knowledge).
 *   memload idle ADDR FRAME_FILE N [SETUP_CALLS]
 *       N connections; on each: the preface and SETTINGS exchange (both ACKed), one complete
 *       unary call (grpc-status 0, the echo of FRAME_FILE), one PING answered; then all are held
 *       open and idle
 *   memload inflight ADDR FRAME_FILE N [SETUP_CALLS]
 *       N unary calls in flight: connections set up as above, then on each up to min(100, the
 *       server's MAX_CONCURRENT_STREAMS) streams carrying the request HEADERS and the whole
 *       FRAME_FILE but no END_STREAM, then one PING answered
 * With SETUP_CALLS (default 1) every connection makes that many complete unary calls, one after
 * another, before it is held (what a connection that has served calls keeps).
 * ADDR is HOST:PORT (an IPv4 address), FRAME_FILE one gRPC frame (flag, length, message) posted
 * to /lgrpc.bench.Echo/Unary. Once the server has answered the PING on every connection (so it
 * has read everything sent), prints "READY conns=C calls=K early=E" and waits for SIGUSR1 (at
 * most 300 s); E counts in-flight calls the server answered before their half-close. Then idle
 * closes every connection; inflight half-closes every call and checks that each ends with
 * :status 200, grpc-status 0 and an echo as long as FRAME_FILE. Prints "DONE ok=K" and exits 0;
 * anything else (a connection closed early, a failed call, a timeout) is one line on stderr and
 * exit 1. Never more than 64 connections are being set up at once. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#define SETUP_AT_ONCE 64
#define STREAMS_PER_CONN 100
#define PHASE_TIMEOUT_MS 120000
#define HOLD_TIMEOUT_MS 300000

enum { MODE_IDLE, MODE_INFLIGHT };
enum { C_CONNECTING, C_SETUP, C_LOADING, C_READY };

typedef struct conn conn;

typedef struct call {
  conn *c;
  int32_t id;
  int setup;           /* the connection's first, complete call */
  int body_sent;       /* the request frame went into a DATA frame */
  int half_close;      /* the data provider may end the stream */
  int http_status;
  int grpc_status;     /* -1 until the trailers name it */
  int answered;        /* a response HEADERS frame arrived */
  int answered_early;  /* ... before the half-close was asked for */
  int closed;
  uint32_t close_error;
  size_t body;         /* DATA bytes received */
} call;

struct conn {
  int index, fd, state;
  nghttp2_session *ng;
  int settings_acked, ping_sent, ping_acked;
  int setup_calls_done;  /* complete setup calls before the one in calls[0] */
  int streams_wanted;
  call *calls;          /* the setup call is calls[0], then streams_wanted in-flight calls */
  uint8_t *out;         /* bytes from mem_send not yet written */
  size_t out_len, out_off, out_cap;
  int want_out;
};

static int mode, total_calls, nconns, nconns_known, setup_calls = 1;
static conn *conns;
static int launched, in_setup, ready;
static struct sockaddr_in peer;
static char authority[64];
static uint8_t *frame;
static size_t frame_len;
static int ep;
static volatile sig_atomic_t released;

static void fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("memload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_release(int sig) { (void)sig; released = 1; }

/* ---- writing ------------------------------------------------------------------------------ */

static void set_want_out(conn *c, int on)
{
  if (c->want_out == on) return;
  struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
  c->want_out = on;
}

static void append_out(conn *c, const uint8_t *p, size_t n)
{
  if (c->out_off > 0 && c->out_off == c->out_len) c->out_off = c->out_len = 0;
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    uint8_t *q = realloc(c->out, cap);
    if (!q) fail("out of memory");
    c->out = q;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
}

/* Everything nghttp2 has to send goes into the connection's buffer, then to the socket as far as
 * it takes it; the rest waits for EPOLLOUT. */
static void flush(conn *c)
{
  for (;;) {
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(c->ng, &p);
    if (n < 0) fail("conn %d: nghttp2_session_mem_send: %s", c->index, nghttp2_strerror((int)n));
    if (n == 0) break;
    append_out(c, p, (size_t)n);
  }
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { set_want_out(c, 1); return; }
    if (n < 0) fail("conn %d: write: %s", c->index, strerror(errno));
    c->out_off += (size_t)n;
  }
  set_want_out(c, 0);
}

/* ---- requests ----------------------------------------------------------------------------- */

/* The request body: the whole frame at once; END_STREAM only once half_close is set (until then
 * the provider defers, and nghttp2_session_resume_data wakes it). */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
  call *k = src->ptr;
  (void)ng; (void)id; (void)ud;
  if (!k->body_sent) {
    if (len < frame_len) return NGHTTP2_ERR_CALLBACK_FAILURE; /* the frame is far below 16 KiB */
    memcpy(buf, frame, frame_len);
    k->body_sent = 1;
    if (k->half_close) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)frame_len;
  }
  if (!k->half_close) return NGHTTP2_ERR_DEFERRED;
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return 0;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static void submit_call(conn *c, call *k, int half_close)
{
  nghttp2_nv nva[] = {
    NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/lgrpc.bench.Echo/Unary"),
    NV(":authority", authority), NV("content-type", "application/grpc"), NV("te", "trailers"),
  };
  nghttp2_data_provider body = { .source.ptr = k, .read_callback = read_body };
  k->c = c;
  k->grpc_status = -1;
  k->half_close = half_close;
  int32_t id = nghttp2_submit_request(c->ng, NULL, nva, sizeof nva / sizeof nva[0], &body, k);
  if (id < 0) fail("conn %d: nghttp2_submit_request: %s", c->index, nghttp2_strerror(id));
  k->id = id;
}

static int call_ok(const call *k)
{
  return k->closed && k->close_error == NGHTTP2_NO_ERROR && k->http_status == 200 &&
         k->grpc_status == 0 && k->body == frame_len;
}

static const char *call_problem(const call *k, char *buf, size_t len)
{
  snprintf(buf, len, "stream %d: closed %d (error %u), :status %d, grpc-status %d, %zu of %zu bytes echoed",
           k->id, k->closed, k->close_error, k->http_status, k->grpc_status, k->body, frame_len);
  return buf;
}

/* ---- connection life ---------------------------------------------------------------------- */

static void launch(void);

/* The setup call is done and the SETTINGS exchanged. inflight: the first connection tells how
 * many streams a connection may carry, hence how many connections; then the streams open. */
static void setup_done(conn *c)
{
  if (mode == MODE_INFLIGHT) {
    if (!nconns_known) {
      uint32_t max = nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
      uint32_t per = max < STREAMS_PER_CONN ? max : STREAMS_PER_CONN;
      if (per == 0) fail("the server allows no concurrent streams");
      nconns = (total_calls + (int)per - 1) / (int)per; /* conns has room for total_calls */
      nconns_known = 1;
      for (int i = 0; i < nconns; i++) /* at most per each, so conns[0].calls is big enough */
        conns[i].streams_wanted = total_calls / nconns + (i < total_calls % nconns);
    }
    for (int i = 1; i <= c->streams_wanted; i++) submit_call(c, &c->calls[i], 0);
  }
  c->state = C_LOADING;
}

/* Moves a connection on: setup call and SETTINGS ACK -> streams (inflight) -> once every body is
 * out, one PING -> its ACK: the server has read everything sent before it. The PING waits for
 * the bodies because nghttp2 sends control frames ahead of DATA. */
static void check_progress(conn *c)
{
  if (c->state == C_SETUP && c->calls[0].closed) {
    char why[200];
    if (!call_ok(&c->calls[0])) fail("conn %d: setup call failed: %s", c->index, call_problem(&c->calls[0], why, sizeof why));
    if (c->setup_calls_done + 1 < setup_calls) { /* the next one, on a new stream */
      c->setup_calls_done++;
      memset(&c->calls[0], 0, sizeof c->calls[0]);
      submit_call(c, &c->calls[0], 1);
      c->calls[0].setup = 1;
      flush(c);
      return;
    }
  }
  if (c->state == C_SETUP && c->settings_acked && c->calls[0].closed) {
    setup_done(c);
    flush(c);
  }
  if (c->state == C_LOADING && !c->ping_sent) {
    for (int i = 1; i <= c->streams_wanted; i++)
      if (!c->calls[i].body_sent) return;
    if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) != 0) fail("conn %d: nghttp2_submit_ping", c->index);
    c->ping_sent = 1;
    flush(c);
  }
  if (c->state == C_LOADING && c->ping_acked) {
    c->state = C_READY;
    in_setup--;
    ready++;
    launch();
  }
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
  (void)flags; (void)ud;
  call *k = nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id);
  if (!k || fr->hd.type != NGHTTP2_HEADERS) return 0;
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) k->http_status = atoi((const char *)value);
  if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
    char v[16];
    size_t n = valuelen < sizeof v - 1 ? valuelen : sizeof v - 1;
    memcpy(v, value, n);
    v[n] = 0;
    k->grpc_status = atoi(v);
  }
  return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
  conn *c = ud;
  if (fr->hd.type == NGHTTP2_SETTINGS && (fr->hd.flags & NGHTTP2_FLAG_ACK)) c->settings_acked = 1;
  if (fr->hd.type == NGHTTP2_PING && (fr->hd.flags & NGHTTP2_FLAG_ACK)) c->ping_acked = 1;
  if (fr->hd.type == NGHTTP2_HEADERS) {
    call *k = nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id);
    if (k && !k->answered) {
      k->answered = 1;
      if (!k->half_close) k->answered_early = 1;
    }
  }
  if (fr->hd.type == NGHTTP2_GOAWAY) fail("conn %d: GOAWAY from the server", c->index);
  return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
  (void)flags; (void)data; (void)ud;
  call *k = nghttp2_session_get_stream_user_data(ng, id);
  if (k) k->body += len;
  return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t error, void *ud)
{
  (void)ud;
  call *k = nghttp2_session_get_stream_user_data(ng, id);
  if (k) {
    k->closed = 1;
    k->close_error = error; /* NO_ERROR also when a server that answered before the half-close
                               resets the stream after its trailers (RFC 9113 8.1) */
  }
  return 0;
}

static void start_conn(conn *c, int index)
{
  c->index = index;
  c->state = C_CONNECTING;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&peer, sizeof peer) != 0 && errno != EINPROGRESS)
    fail("conn %d: connect: %s", index, strerror(errno));
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
  c->want_out = 1;
}

/* The socket is connected: a client session, SETTINGS (nghttp2's defaults, none sent
 * explicitly), and the setup call with its END_STREAM. */
static void connected(conn *c)
{
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
    fail("conn %d: connect: %s", c->index, strerror(err ? err : errno));
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0) fail("out of memory");
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  int rv = nghttp2_session_client_new(&c->ng, cb, c);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) fail("nghttp2_session_client_new: %s", nghttp2_strerror(rv));
  if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, NULL, 0) != 0) fail("nghttp2_submit_settings");
  c->state = C_SETUP;
  submit_call(c, &c->calls[0], 1);
  c->calls[0].setup = 1;
}

static void launch(void)
{
  int limit = mode == MODE_INFLIGHT && !nconns_known ? 1 : nconns;
  while (launched < limit && in_setup < SETUP_AT_ONCE) {
    conn *c = &conns[launched];
    if (!c->calls) {
      c->calls = calloc((size_t)c->streams_wanted + 1, sizeof(call));
      if (!c->calls) fail("out of memory");
    }
    start_conn(c, launched);
    launched++;
    in_setup++;
  }
}

static void on_event(conn *c, uint32_t events)
{
  if (c->state == C_CONNECTING) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    connected(c);
    flush(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    uint8_t buf[16384];
    for (;;) {
      ssize_t n = read(c->fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) fail("conn %d: read: %s", c->index, strerror(errno));
      if (n == 0) fail("conn %d: the server closed the connection", c->index);
      ssize_t used = nghttp2_session_mem_recv(c->ng, buf, (size_t)n);
      if (used < 0) fail("conn %d: nghttp2_session_mem_recv: %s", c->index, nghttp2_strerror((int)used));
      if ((size_t)n < sizeof buf) break;
    }
  }
  flush(c);
  check_progress(c);
}

/* Runs the loop until done() holds; fails after timeout_ms. */
static void run_until(int (*done)(void), int timeout_ms, const char *what, const sigset_t *mask)
{
  int64_t end = now_ms() + timeout_ms;
  struct epoll_event evs[256];
  while (!done()) {
    int64_t left = end - now_ms();
    if (left <= 0) fail("timed out %s", what);
    int n = epoll_pwait(ep, evs, 256, left > 1000 ? 1000 : (int)left, mask);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
  }
}

static int all_ready(void) { return nconns_known && ready == nconns; }
static int was_released(void) { return released; }
static int all_closed(void)
{
  for (int i = 0; i < nconns; i++)
    for (int j = 1; j <= conns[i].streams_wanted; j++)
      if (!conns[i].calls[j].closed) return 0;
  return 1;
}

/* ---- main --------------------------------------------------------------------------------- */

static void read_frame(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) fail("%s: %s", path, strerror(errno));
  frame = malloc(16384);
  if (!frame) fail("out of memory");
  frame_len = fread(frame, 1, 16384, f);
  int more = fgetc(f) != EOF;
  fclose(f);
  if (frame_len < 5 || more) fail("%s: want one gRPC frame of 5 bytes to 16 KiB", path);
}

int main(int argc, char **argv)
{
  if (argc < 5 || argc > 6 || (strcmp(argv[1], "idle") != 0 && strcmp(argv[1], "inflight") != 0)) {
    fprintf(stderr, "usage: memload idle|inflight HOST:PORT FRAME_FILE N [SETUP_CALLS]\n");
    return 2;
  }
  mode = strcmp(argv[1], "idle") == 0 ? MODE_IDLE : MODE_INFLIGHT;
  char host[64];
  const char *colon = strrchr(argv[2], ':');
  if (!colon || (size_t)(colon - argv[2]) >= sizeof host) fail("bad address %s", argv[2]);
  memcpy(host, argv[2], (size_t)(colon - argv[2]));
  host[colon - argv[2]] = 0;
  peer.sin_family = AF_INET;
  peer.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &peer.sin_addr) != 1) fail("bad address %s (want an IPv4 address)", argv[2]);
  snprintf(authority, sizeof authority, "%s", argv[2]);
  read_frame(argv[3]);
  total_calls = atoi(argv[4]);
  if (total_calls < 1) fail("N must be at least 1");
  if (argc == 6 && (setup_calls = atoi(argv[5])) < 1) fail("SETUP_CALLS must be at least 1");

  /* idle: N connections; inflight: decided once the first connection has the server's SETTINGS */
  nconns = mode == MODE_IDLE ? total_calls : 1;
  nconns_known = mode == MODE_IDLE;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)total_calls + 32) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)total_calls + 32 ? rl.rlim_max : (rlim_t)total_calls + 32;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)total_calls + 32)
      fail("open-file limit %lu is below the %d descriptors needed (raise ulimit -n)", (unsigned long)rl.rlim_cur, total_calls + 32);
  }
  conns = calloc((size_t)total_calls, sizeof *conns); /* inflight may need one per call */
  if (!conns) fail("out of memory");
  for (int i = 0; i < nconns; i++) conns[i].streams_wanted = mode == MODE_IDLE ? 0 : STREAMS_PER_CONN;

  /* SIGUSR1 is blocked except inside epoll_pwait, so a release never falls between the check of
   * the flag and the wait */
  sigset_t block, during;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, &during);
  sigdelset(&during, SIGUSR1);
  struct sigaction sa = { .sa_handler = on_release };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1: %s", strerror(errno));
  launch();
  run_until(all_ready, PHASE_TIMEOUT_MS, "setting up the connections", &during);
  int early = 0, calls = 0;
  for (int i = 0; i < nconns; i++)
    for (int j = 1; j <= conns[i].streams_wanted; j++, calls++) early += conns[i].calls[j].answered_early;
  printf("READY conns=%d calls=%d early=%d\n", nconns, calls, early);
  fflush(stdout);

  run_until(was_released, HOLD_TIMEOUT_MS, "waiting for SIGUSR1", &during);
  if (mode == MODE_IDLE) {
    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    printf("DONE ok=%d\n", nconns);
    return 0;
  }
  for (int i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    for (int j = 1; j <= c->streams_wanted; j++) {
      call *k = &c->calls[j];
      k->half_close = 1;
      if (!k->closed && nghttp2_session_resume_data(c->ng, k->id) != 0)
        fail("conn %d: nghttp2_session_resume_data on stream %d", i, k->id);
    }
    flush(c);
  }
  run_until(all_closed, PHASE_TIMEOUT_MS, "waiting for the calls to end", &during);
  int ok = 0;
  for (int i = 0; i < nconns; i++)
    for (int j = 1; j <= conns[i].streams_wanted; j++) {
      char why[200];
      if (call_ok(&conns[i].calls[j])) ok++;
      else fprintf(stderr, "memload: conn %d: %s\n", i, call_problem(&conns[i].calls[j], why, sizeof why));
    }
  if (ok != calls) fail("%d of %d calls failed", calls - ok, calls);
  printf("DONE ok=%d\n", ok);
  return 0;
}

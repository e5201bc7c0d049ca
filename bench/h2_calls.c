/* h2_calls.c — C-only driver for the transport's per-call cost: a client and a server
 * lgrpc_h2 session joined in memory (no sockets, no Lua) doing N unary calls, `inflight` at a time
 * (like h2load -m), each request and response a `size`-byte message. For instruction and
 * allocation counts per call:
 *   cc -O2 -g -Icore bench/h2_calls.c core/h2.c core/frame.c -lnghttp2 -o build/h2_calls
 *   valgrind --tool=callgrind build/h2_calls N [inflight] [size]
 *   valgrind build/h2_calls N ...   ("total heap usage: A allocs"; the difference between two N
 *                                    divided by the difference of N is allocations per call)
 *   build/h2_calls heap K         server heap (mallinfo2) per idle session, and per unary call
 *                                 in flight with K requests on one session (events taken and
 *                                 freed as the binding does, no answer yet)
 * Checks every reply (status OK, echoed bytes) and exits 1 on anything else, so it cannot
 * count a broken transport as a fast one. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "h2.h"

static lgrpc_h2_session *cli, *srv;
static long done, started, failed;
static char *payload;
static size_t size;

/* Moves every pending byte from one session to the other; 1 if anything moved. */
static int pump(lgrpc_h2_session *from, lgrpc_h2_session *to, lgrpc_bytes *wire)
{
  wire->len = 0;
  if (lgrpc_h2_send(from, wire) != 0) { fprintf(stderr, "send failed: %s\n", lgrpc_h2_last_error(from)); exit(1); }
  if (!wire->len) return 0;
  if (lgrpc_h2_recv(to, (const uint8_t *)wire->data, wire->len) != 0) {
    fprintf(stderr, "recv failed: %s\n", lgrpc_h2_last_error(to));
    exit(1);
  }
  return 1;
}

/* The server as the call layer drives it: echo the message, status OK after the half-close. */
static void serve(void)
{
  lgrpc_h2_event *ev = lgrpc_h2_take_events(srv);
  while (ev) {
    lgrpc_h2_event *next = ev->next;
    lgrpc_h2_stream *st = ev->stream;
    switch (ev->type) {
    case LGRPC_EV_REQUEST: {
      lgrpc_h2_stream_attach(st);
      const lgrpc_h2_field *p = lgrpc_h2_field_find(ev->fields, LGRPC_HF_PATH);
      const lgrpc_h2_field *a = lgrpc_h2_field_find(ev->fields, LGRPC_HF_AUTHORITY);
      const lgrpc_h2_field *u = lgrpc_h2_field_find(ev->fields, LGRPC_HF_USER_AGENT);
      if (!p || strcmp(p->value, "/lgrpc.bench.Echo/Unary") != 0 || !a || !u) { failed++; }
      break;
    }
    case LGRPC_EV_MESSAGE:
      if (lgrpc_h2_send_message(st, ev->data, ev->len, 0) != 0) failed++;
      break;
    case LGRPC_EV_HALF_CLOSE:
      if (lgrpc_h2_send_status(st, 0, NULL, 0, NULL, 0, NULL, 0) != 0) failed++;
      lgrpc_h2_stream_detach(st);
      break;
    case LGRPC_EV_CANCEL:
      failed++;
      lgrpc_h2_stream_detach(st);
      break;
    default:
      break;
    }
    lgrpc_h2_event_free(srv, ev);
    ev = next;
  }
}

static void start_call(void)
{
  lgrpc_h2_request req;
  memset(&req, 0, sizeof req);
  req.path = "/lgrpc.bench.Echo/Unary";
  req.pathlen = strlen(req.path);
  req.timeout = -1;
  int err;
  lgrpc_h2_stream *st = lgrpc_h2_request_new(cli, &req, &err);
  if (!st) { fprintf(stderr, "request: %s\n", lgrpc_h2_last_error(cli)); exit(1); }
  lgrpc_h2_stream_attach(st);
  if (lgrpc_h2_send_message(st, payload, size, 0) != 0 || lgrpc_h2_close_send(st) != 0) {
    fprintf(stderr, "client send: %s\n", lgrpc_h2_last_error(cli));
    exit(1);
  }
  started++;
}

static void client(void)
{
  lgrpc_h2_event *ev = lgrpc_h2_take_events(cli);
  while (ev) {
    lgrpc_h2_event *next = ev->next;
    switch (ev->type) {
    case LGRPC_EV_MESSAGE:
      if (ev->len != size || memcmp(ev->data, payload, size) != 0) failed++;
      break;
    case LGRPC_EV_STATUS:
      if (ev->code != 0) failed++;
      done++;
      lgrpc_h2_stream_detach(ev->stream);
      break;
    case LGRPC_EV_CLOSED:
      fprintf(stderr, "client session closed: %s\n", ev->data ? ev->data : "");
      exit(1);
    default:
      break;
    }
    lgrpc_h2_event_free(cli, ev);
    ev = next;
  }
}

static void drop_events(lgrpc_h2_session *s, int attach_requests, int *requests)
{
  lgrpc_h2_event *ev = lgrpc_h2_take_events(s);
  while (ev) {
    lgrpc_h2_event *next = ev->next;
    if (ev->type == LGRPC_EV_REQUEST && attach_requests) {
      lgrpc_h2_stream_attach(ev->stream);
      (*requests)++;
    }
    lgrpc_h2_event_free(s, ev);
    ev = next;
  }
}

/* Heap held by server sessions: idle ones, and one with k calls in flight. */
static int heap(int k)
{
  lgrpc_h2_config cfg;
  lgrpc_h2_config_default(&cfg);
  lgrpc_bytes w = {0};
  int n = 0, idle = 200;
  lgrpc_h2_session **srvs = calloc((size_t)idle, sizeof *srvs);
  size_t before = mallinfo2().uordblks;
  for (int i = 0; i < idle; i++) {
    /* the settings exchange, then the clock: the state of an idle accepted connection */
    lgrpc_h2_session *c = lgrpc_h2_session_new(0, &cfg);
    srvs[i] = lgrpc_h2_session_new(1, &cfg);
    for (int r = 0; r < 2; r++) { pump(c, srvs[i], &w); pump(srvs[i], c, &w); }
    drop_events(srvs[i], 0, &n);
    lgrpc_h2_tick(srvs[i], 1);
    lgrpc_h2_session_free(c);
  }
  printf("idle server session: %zu bytes of heap\n", (mallinfo2().uordblks - before) / (size_t)idle);
  for (int i = 0; i < idle; i++) lgrpc_h2_session_free(srvs[i]);
  free(srvs);
  cli = lgrpc_h2_session_new(0, &cfg);
  srv = lgrpc_h2_session_new(1, &cfg);
  for (int r = 0; r < 2; r++) { pump(cli, srv, &w); pump(srv, cli, &w); }
  lgrpc_h2_tick(srv, 1);
  for (int i = 0; i < k; i++) start_call();
  w.len = 0;
  lgrpc_h2_send(cli, &w);
  before = mallinfo2().uordblks;
  if (lgrpc_h2_recv(srv, (const uint8_t *)w.data, w.len) != 0) return 1;
  drop_events(srv, 1, &n);
  printf("%d calls in flight: %zu bytes of server heap per call\n", n, (mallinfo2().uordblks - before) / (size_t)(n ? n : 1));
  lgrpc_h2_session_free(cli);
  lgrpc_h2_session_free(srv);
  lgrpc_bytes_free(&w);
  return n != k;
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "heap") == 0) {
    size = 120;
    payload = calloc(1, size);
    int rc = heap(argc > 2 ? atoi(argv[2]) : 100);
    free(payload);
    return rc;
  }
  long n = argc > 1 ? atol(argv[1]) : 10000;
  long inflight = argc > 2 ? atol(argv[2]) : 32;
  size = argc > 3 ? (size_t)atol(argv[3]) : 120; /* the bench's small message is 120 bytes */
  payload = malloc(size + 1);
  for (size_t i = 0; i < size; i++) payload[i] = (char)('a' + i % 26);
  lgrpc_h2_config cfg;
  lgrpc_h2_config_default(&cfg);
  cli = lgrpc_h2_session_new(0, &cfg);
  srv = lgrpc_h2_session_new(1, &cfg);
  if (!cli || !srv) return 1;
  lgrpc_bytes wire = {0};
  while (done < n) {
    while (started < n && started - done < inflight) start_call();
    int moved = pump(cli, srv, &wire);
    serve();
    moved |= pump(srv, cli, &wire);
    client();
    if (!moved && started == done) break;
  }
  lgrpc_h2_session_free(cli);
  lgrpc_h2_session_free(srv);
  lgrpc_bytes_free(&wire);
  free(payload);
  long sessions, streams, buf;
  lgrpc_h2_counters(&sessions, &streams, &buf);
  printf("calls %ld failed %ld (inflight %ld, %zu-byte messages); left: sessions %ld streams %ld buffered %ld\n",
         done, failed, inflight, size, sessions, streams, buf);
  return failed || done != n || sessions || streams || buf;
}

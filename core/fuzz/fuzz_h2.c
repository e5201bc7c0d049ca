/* fuzz_h2.c — libFuzzer harness for the sans-IO gRPC session (core/h2.c over core/frame.c).
 * The input is a list of HTTP/2 frames (type, flags, stream and payload from the input; header
 * blocks optionally a canned valid one) fed to a server session and to a client session with
 * open calls; between chunks the harness takes events, answers requests,
 * sends messages, resets some streams and advances the clock, as a call layer would. Any crash,
 * leak or sanitizer report is a bug; so is a counter not back at zero when both sessions go.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined core/fuzz/fuzz_h2.c core/h2.c core/frame.c -lnghttp2 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../h2.h"

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* takes and answers events; returns how many streams it sent a status to */
static void drive(lgrpc_h2_session *s, uint8_t knob, int64_t *now)
{
  lgrpc_h2_event *ev = lgrpc_h2_take_events(s);
  while (ev) {
    lgrpc_h2_event *next = ev->next;
    lgrpc_h2_stream *st = ev->stream;
    if (st && !lgrpc_h2_stream_attached(st)) lgrpc_h2_stream_attach(st);
    switch (ev->type) {
    case LGRPC_EV_REQUEST:
      if (knob & 1) lgrpc_h2_send_headers(st, NULL, 0);
      if (knob & 2) lgrpc_h2_pause(st, 1);
      break;
    case LGRPC_EV_MESSAGE:
      lgrpc_h2_send_message(st, ev->data, ev->len, 0);
      if (knob & 4) lgrpc_h2_reset(st, 8);
      break;
    case LGRPC_EV_HALF_CLOSE:
    case LGRPC_EV_DEADLINE: {
      lgrpc_h2_md md = {"x-k", 3, "v", 1};
      lgrpc_h2_send_status(st, knob % 17, "m\n%", 3, &md, 1, "d", 1);
      break;
    }
    default:
      break;
    }
    lgrpc_h2_event_free(s, ev);
    ev = next;
  }
  *now += knob;
  lgrpc_h2_tick(s, *now);
}

static void release_streams(lgrpc_h2_stream **sts, size_t n)
{
  for (size_t i = 0; i < n; i++) if (sts[i]) lgrpc_h2_stream_detach(sts[i]);
}

/* HPACK literal-without-indexing field */
static size_t lit(uint8_t *o, const char *n, const char *v)
{
  size_t nl = strlen(n), vl = strlen(v), k = 0;
  o[k++] = 0;
  o[k++] = (uint8_t)nl;
  memcpy(o + k, n, nl);
  k += nl;
  o[k++] = (uint8_t)vl;
  memcpy(o + k, v, vl);
  return k + vl;
}

static size_t request_block(uint8_t *o)
{
  size_t k = 0;
  k += lit(o + k, ":method", "POST");
  k += lit(o + k, ":scheme", "http");
  k += lit(o + k, ":path", "/a.B/C");
  k += lit(o + k, ":authority", "x");
  k += lit(o + k, "te", "trailers");
  k += lit(o + k, "content-type", "application/grpc");
  k += lit(o + k, "grpc-timeout", "20m");
  k += lit(o + k, "x-bin", "AAE,/w=");
  return k;
}

static size_t response_block(uint8_t *o, int trailers)
{
  size_t k = 0;
  if (!trailers) {
    k += lit(o + k, ":status", "200");
    k += lit(o + k, "content-type", "application/grpc");
    k += lit(o + k, "grpc-encoding", "gzip");
  }
  k += lit(o + k, "grpc-status", "3");
  k += lit(o + k, "grpc-message", "a%20b%zz");
  k += lit(o + k, "grpc-status-details-bin", "AAE");
  return k;
}

static void frame(lgrpc_h2_session *s, uint8_t type, uint8_t flags, uint32_t sid,
                  const uint8_t *p, size_t n)
{
  uint8_t buf[9 + 512];
  if (n > 512) n = 512;
  buf[0] = 0; buf[1] = (uint8_t)(n >> 8); buf[2] = (uint8_t)n;
  buf[3] = type; buf[4] = flags;
  buf[5] = (uint8_t)(sid >> 24); buf[6] = (uint8_t)(sid >> 16); buf[7] = (uint8_t)(sid >> 8); buf[8] = (uint8_t)sid;
  if (n) memcpy(buf + 9, p, n);
  lgrpc_h2_recv(s, buf, 9 + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  lgrpc_h2_config cfg;
  lgrpc_h2_config_default(&cfg);
  cfg.max_recv_message = 1024;
  cfg.max_header_list = 2048;
  cfg.stream_window = 4096;
  cfg.idle_timeout = 500;
  lgrpc_h2_session *srv = lgrpc_h2_session_new(1, &cfg);
  lgrpc_h2_session *cli = lgrpc_h2_session_new(0, &cfg);
  if (!srv || !cli) abort();
  lgrpc_bytes out = {0};
  int64_t now = 0;
  lgrpc_h2_tick(srv, now);
  lgrpc_h2_tick(cli, now);
  lgrpc_h2_recv(srv, (const uint8_t *)PREFACE, sizeof PREFACE - 1);
  frame(srv, 4, 0, 0, NULL, 0); /* the client's SETTINGS */
  frame(cli, 4, 0, 0, NULL, 0); /* the server's SETTINGS */

  lgrpc_h2_stream *calls[4] = {0};
  for (int i = 0; i < 4; i++) {
    lgrpc_h2_request req;
    memset(&req, 0, sizeof req);
    req.path = "/a.B/C";
    req.pathlen = 6;
    req.timeout = i == 0 ? 100 : -1;
    int err;
    calls[i] = lgrpc_h2_request_new(cli, &req, &err);
    if (calls[i]) {
      lgrpc_h2_stream_attach(calls[i]);
      lgrpc_h2_send_message(calls[i], "hello", 5, 0);
    }
  }
  out.len = 0;
  lgrpc_h2_send(cli, &out);

  /* input: chunks of [knob][type][flags][sid][payload of knob & 0x3f bytes] */
  size_t pos = 0;
  while (pos + 4 <= size) {
    uint8_t knob = data[pos], type = data[pos + 1] % 10, flags = data[pos + 2], sid = data[pos + 3];
    pos += 4;
    size_t n = knob & 0x3f;
    if (n > size - pos) n = size - pos;
    int to_client = (knob & 0x80) != 0;
    lgrpc_h2_session *s = to_client ? cli : srv;
    uint8_t payload[600];
    size_t pl = 0;
    uint32_t stream = type == 4 || type == 6 || type == 7 ? 0 : (uint32_t)(sid % 8) * 2 + 1;
    if (type == 1 && (flags & 0x20)) {
      pl = to_client ? response_block(payload, flags & 0x10) : request_block(payload);
      flags = (uint8_t)((flags & 0x01) | 0x04);
    } else if (type == 4) {
      flags &= 1;
      n -= n % 6;
    }
    memcpy(payload + pl, data + pos, n);
    pl += n;
    pos += n;
    frame(s, type, flags, stream, payload, pl);
    drive(s, knob, &now);
    out.len = 0;
    lgrpc_h2_send(s, &out);
    if (knob & 0x40) {
      /* let the two sessions talk to each other for a moment */
      out.len = 0;
      lgrpc_h2_send(cli, &out);
      if (out.len) lgrpc_h2_recv(srv, (const uint8_t *)out.data, out.len);
      drive(srv, knob, &now);
      out.len = 0;
      lgrpc_h2_send(srv, &out);
      if (out.len) lgrpc_h2_recv(cli, (const uint8_t *)out.data, out.len);
      drive(cli, knob, &now);
    }
  }
  release_streams(calls, 4);
  lgrpc_h2_session_free(srv);
  lgrpc_h2_session_free(cli);
  lgrpc_bytes_free(&out);
  long sessions, streams, buffered;
  lgrpc_h2_counters(&sessions, &streams, &buffered);
  if (sessions || streams || buffered) abort();
  return 0;
}

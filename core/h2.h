/* h2.h — one gRPC-over-HTTP/2 session on nghttp2 (client or server role), sans-IO.
 * Bytes in (lgrpc_h2_recv), bytes out (lgrpc_h2_send), the clock in (lgrpc_h2_tick), and
 * "wake me at T" out (lgrpc_h2_next_deadline). nghttp2 callbacks only queue events; the driver
 * takes them in batches (lgrpc_h2_take_events). Never reads, writes, polls or reads a clock. */
#ifndef LGRPC_H2_H
#define LGRPC_H2_H
#include <stddef.h>
#include <stdint.h>
#include "frame.h"

typedef struct lgrpc_h2_session lgrpc_h2_session;
typedef struct lgrpc_h2_stream lgrpc_h2_stream;

typedef struct lgrpc_h2_config {
  size_t max_recv_message;        /* 0 = unlimited; default 4 MiB */
  size_t max_send_message;        /* 0 = unlimited (default) */
  size_t max_header_list;         /* default 16 KiB */
  uint32_t max_concurrent_streams; /* default 1000 */
  uint32_t stream_window;         /* default 1 MiB */
  uint32_t conn_window;           /* default 1 MiB */
  int64_t idle_timeout;           /* ms, 0 = none */
  uint32_t first_stream_id;       /* client: id of the first stream (odd); 0 = 1. Lets a spec
                                   * reach the end of the stream id space */
  char encodings[128];            /* accepted grpc-encoding values, comma separated */
  char authority[256];            /* client default :authority */
  char scheme[16];                /* client :scheme */
  char user_agent[200];           /* client user-agent prefix ("" = none) */
} lgrpc_h2_config;
void lgrpc_h2_config_default(lgrpc_h2_config *cfg);

/* What a received header field is: metadata, or one the transport understands. */
enum {
  LGRPC_HF_MD = 0, LGRPC_HF_PATH, LGRPC_HF_AUTHORITY, LGRPC_HF_METHOD, LGRPC_HF_SCHEME,
  LGRPC_HF_STATUS, LGRPC_HF_CONTENT_TYPE, LGRPC_HF_TE, LGRPC_HF_USER_AGENT, LGRPC_HF_TIMEOUT,
  LGRPC_HF_ENCODING, LGRPC_HF_ACCEPT_ENCODING, LGRPC_HF_GRPC_STATUS, LGRPC_HF_GRPC_MESSAGE,
  LGRPC_HF_DETAILS, LGRPC_HF_RESERVED
};

/* One received header field. A list holds one header block in arrival order; the whole block
 * (fields, names and values) is one allocation, and its first field carries `known`: the first
 * field of each kind, so lgrpc_h2_field_find on a list is one lookup. */
typedef struct lgrpc_h2_field {
  struct lgrpc_h2_field *next;
  int kind;
  size_t namelen, valuelen;
  char *name, *value;
  const struct lgrpc_h2_field *const *known; /* first field of a list only, else NULL */
} lgrpc_h2_field;

enum {
  LGRPC_EV_REQUEST = 1, LGRPC_EV_HEADERS, LGRPC_EV_MESSAGE, LGRPC_EV_HALF_CLOSE, LGRPC_EV_CANCEL,
  LGRPC_EV_STATUS, LGRPC_EV_DEADLINE, LGRPC_EV_DRAIN, LGRPC_EV_GOAWAY, LGRPC_EV_CLOSED
};

/* A queued event. Owned by the session until taken, then by the taker, who returns it with
 * lgrpc_h2_event_free (that is when a delivered message credits its stream window). */
typedef struct lgrpc_h2_event {
  struct lgrpc_h2_event *next;
  int type;
  lgrpc_h2_stream *stream;  /* NULL for connection events */
  lgrpc_h2_field *fields;   /* REQUEST, HEADERS, STATUS: every field received */
  char *data;               /* MESSAGE payload; STATUS/CANCEL message; GOAWAY debug; CLOSED error */
  size_t len;
  int compressed;
  int code;                 /* STATUS/CANCEL: gRPC status; GOAWAY: error code */
  int h2code;               /* STATUS/CANCEL: RST_STREAM code, -1 if none */
  int http_status;          /* STATUS: HTTP status seen, 0 if none */
  int trailers_only, refused;
  int64_t timeout, deadline; /* REQUEST: ms, -1 if none */
  int32_t last_stream_id;   /* GOAWAY */
  char *details;            /* STATUS: decoded grpc-status-details-bin */
  size_t detailslen;
} lgrpc_h2_event;

/* Metadata to send: raw values (-bin values are base64-encoded by the session). */
typedef struct lgrpc_h2_md {
  const char *name;
  size_t namelen;
  const char *value;
  size_t valuelen;
} lgrpc_h2_md;

typedef struct lgrpc_h2_request {
  const char *path; size_t pathlen;
  const char *authority; size_t authoritylen; /* NULL: config authority */
  int64_t timeout;                            /* ms, -1: none */
  const lgrpc_h2_md *md; size_t nmd;
  const char *encoding, *accept_encoding, *content_type, *user_agent; /* NUL-terminated or NULL */
} lgrpc_h2_request;

typedef struct lgrpc_h2_stats {
  size_t streams, open_streams, queued_events, buffered_in, buffered_out;
} lgrpc_h2_stats;

lgrpc_h2_session *lgrpc_h2_session_new(int server, const lgrpc_h2_config *cfg);
void lgrpc_h2_session_free(lgrpc_h2_session *s);
int lgrpc_h2_is_server(const lgrpc_h2_session *s);
const char *lgrpc_h2_last_error(const lgrpc_h2_session *s);

int lgrpc_h2_recv(lgrpc_h2_session *s, const uint8_t *data, size_t len);
int lgrpc_h2_send(lgrpc_h2_session *s, lgrpc_bytes *out); /* appends every pending byte */
int lgrpc_h2_want_write(const lgrpc_h2_session *s);
int lgrpc_h2_alive(const lgrpc_h2_session *s);
void lgrpc_h2_tick(lgrpc_h2_session *s, int64_t now);
/* Moves the clock without firing timers (so deadlines of what arrives next start from now). */
void lgrpc_h2_set_now(lgrpc_h2_session *s, int64_t now);
int lgrpc_h2_next_deadline(const lgrpc_h2_session *s, int64_t *when); /* 1 if there is one */
/* Ends the connection from below (EOF, socket error): every open stream gets its terminal
 * event, then CLOSED with `error` (NULL for a clean end). */
void lgrpc_h2_terminate(lgrpc_h2_session *s, const char *error);
void lgrpc_h2_close(lgrpc_h2_session *s, int error); /* GOAWAY now, then terminate */
void lgrpc_h2_shutdown(lgrpc_h2_session *s, int64_t grace_ms);

lgrpc_h2_event *lgrpc_h2_take_events(lgrpc_h2_session *s);
/* Whether take_events would return something: queued events not held back by a paused stream
 * (a driver waits without a timeout only when this is 0). */
int lgrpc_h2_has_ready_events(const lgrpc_h2_session *s);
void lgrpc_h2_event_free(lgrpc_h2_session *s, lgrpc_h2_event *ev);
void lgrpc_h2_stats_get(const lgrpc_h2_session *s, lgrpc_h2_stats *st);

/* Streams. Each Lua handle attaches once and detaches once (handles are counted: a collected
 * handle may be finalized after a new one was made); the last detach of an open stream resets it. */
lgrpc_h2_stream *lgrpc_h2_request_new(lgrpc_h2_session *s, const lgrpc_h2_request *req, int *err);
int32_t lgrpc_h2_stream_id(const lgrpc_h2_stream *st);
lgrpc_h2_session *lgrpc_h2_stream_session(const lgrpc_h2_stream *st);
void lgrpc_h2_stream_attach(lgrpc_h2_stream *st);
void lgrpc_h2_stream_detach(lgrpc_h2_stream *st);
int lgrpc_h2_stream_attached(const lgrpc_h2_stream *st);
int lgrpc_h2_send_message(lgrpc_h2_stream *st, const char *data, size_t len, int compressed);
int lgrpc_h2_close_send(lgrpc_h2_stream *st);
int lgrpc_h2_send_headers(lgrpc_h2_stream *st, const lgrpc_h2_md *md, size_t nmd);
int lgrpc_h2_send_status(lgrpc_h2_stream *st, int code, const char *msg, size_t msglen,
                         const lgrpc_h2_md *md, size_t nmd, const char *details, size_t detailslen);
int lgrpc_h2_reset(lgrpc_h2_stream *st, uint32_t h2code);
void lgrpc_h2_pause(lgrpc_h2_stream *st, int paused);
size_t lgrpc_h2_stream_buffered(const lgrpc_h2_stream *st);

/* Helpers shared with the binding. */
const lgrpc_h2_field *lgrpc_h2_field_find(const lgrpc_h2_field *f, int kind);
size_t lgrpc_h2_b64_decode(const char *in, size_t n, char *out, int *ok); /* out: n bytes */
const char *lgrpc_h2_status_name(int code);

/* Process-wide counters: live sessions, live streams, bytes in transport buffers. */
void lgrpc_h2_counters(long *sessions, long *streams, long *buffered);

#endif

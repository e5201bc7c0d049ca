/* h2.c — gRPC over HTTP/2 on one nghttp2 session: request/response headers, metadata rules,
 * message framing, status and its mappings, flow control, deadlines, GOAWAY and shutdown.
 * Owns the nghttp2 session, every stream struct and the event queue. Never does I/O, never
 * reads a clock, never calls Lua: callbacks queue events that the driver takes in batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include "h2.h"
#include "version.h"

#define LGRPC_UA "grpc-lua-lgrpc/" LGRPC_VERSION
#define DRAIN_MARK (64 * 1024)

/* gRPC status codes used by the transport */
enum { ST_OK = 0, ST_CANCELLED = 1, ST_UNKNOWN = 2, ST_DEADLINE = 4, ST_PERMISSION = 7,
       ST_RESOURCE = 8, ST_UNIMPLEMENTED = 12, ST_INTERNAL = 13, ST_UNAVAILABLE = 14,
       ST_UNAUTHENTICATED = 16 };

static long g_sessions, g_streams, g_buffered;
#define COUNT(var, d) __atomic_add_fetch(&(var), (long)(d), __ATOMIC_RELAXED)

typedef struct timer_entry { int64_t when; int32_t id; } timer_entry;

/* An event and room for a short payload (a small message, a status text) in one allocation. */
#define EV_SLOT_SIZE 256
#define EV_INLINE (EV_SLOT_SIZE - sizeof(lgrpc_h2_event))
typedef struct ev_slot {
  lgrpc_h2_event ev;
  char data[EV_INLINE];
} ev_slot;
#define SPARE_EVENTS 64
#define SPARE_STREAMS 32
#define SPARE_OUT_CAP 1024  /* a spare stream keeps its send and trailer buffers up to this size */
#define FIELD_BLOCK_SIZE 1024 /* header blocks up to this size are reused */
#define SPARE_BLOCKS 32

typedef struct nv_chunk { struct nv_chunk *next; } nv_chunk;
/* A header list being built; lives on the caller's stack (see nv_push). */
typedef struct nvlist {
  nghttp2_nv *nv;             /* nv0, or malloc'd past its size */
  size_t n, cap, used;
  nv_chunk *chunks;           /* heap space for made text that did not fit in mem0 */
  nghttp2_nv nv0[16];
  char mem0[512];
} nvlist;

struct lgrpc_h2_stream {
  lgrpc_h2_session *sess;
  lgrpc_h2_stream *prev, *next;   /* session's list of live stream structs */
  int32_t id;
  unsigned closed : 1;        /* nghttp2 closed it (or it never opened) */
  unsigned abandoned : 1;     /* the handle was collected: drop its events */
  unsigned paused : 1;
  unsigned headers_sent : 1;  /* server: response headers submitted */
  unsigned status_sent : 1;   /* server: final status submitted (no more sends) */
  unsigned send_closed : 1;   /* client: close_send done */
  unsigned eof_pending : 1;   /* end the data provider once the buffer is empty */
  unsigned deferred : 1;      /* data provider returned DEFERRED */
  unsigned recv_closed : 1;   /* END_STREAM received */
  unsigned ended : 1;         /* terminal event queued (or none will ever be owed) */
  unsigned delivered : 1;     /* server: REQUEST queued for Lua */
  unsigned got_headers : 1;   /* client: response headers seen */
  unsigned hoversize : 1;     /* header list over the limit */
  unsigned discard : 1;       /* ignore further DATA */
  unsigned want_drain : 1;
  unsigned local_reset : 1;
  unsigned encoded : 1;       /* peer named a grpc-encoding other than identity */
  unsigned nocopy : 1;        /* read_cb handed out a NO_COPY frame send_data_cb has not sent */
  int pending;                /* events referring to this struct */
  int handles;                /* Lua handles referring to it: a collected handle's finalizer may
                                 run after a new handle was made for the same stream */
  int http_status;
  /* receive */
  lgrpc_frame_reader reader;
  size_t undelivered;         /* complete messages queued, not yet taken */
  size_t unconsumed;          /* bytes not yet credited to the stream window */
  size_t held;                /* bytes of undelivered messages */
  lgrpc_h2_field *hfirst;      /* the last header block received, not yet taken (one allocation) */
  size_t hsize;
  /* send */
  lgrpc_bytes out;
  size_t out_off;
  size_t nocopy_off;          /* where the bytes of the NO_COPY DATA frame being sent start */
  nghttp2_nv *trailers;       /* server: submitted when the data provider reaches EOF; lives
                               * in trailer_mem (nv_keep) */
  size_t ntrailers;
  lgrpc_bytes trailer_mem;    /* owned by the stream; a spare stream keeps it */
};

struct lgrpc_h2_session {
  nghttp2_session *ng;
  lgrpc_h2_config cfg;
  int server;
  unsigned dead : 1;          /* CLOSED queued */
  unsigned freeing : 1;
  unsigned shutdown_pinged : 1;
  unsigned final_goaway : 1;
  unsigned goaway_received : 1;
  unsigned fatal : 1;         /* the connection failed: s->err says why */
  unsigned clock_set : 1;     /* tick has been called once */
  lgrpc_h2_stream *streams;
  size_t nstreams, nopen;
  lgrpc_h2_event *qhead, *qtail;
  size_t nevents;
  size_t nheld;      /* of those, kept back for paused streams by the last take */
  size_t buffered_in, buffered_out;
  int64_t now, idle_since, shutdown_deadline;
  timer_entry *timers;
  size_t ntimers, timers_cap;
  /* the header block being received (blocks never interleave): the text as the block will
   * hold it (name NUL value NUL ...) and a record per field; made into one allocation of
   * fields when the frame ends */
  lgrpc_bytes hblock, hrecs;
  lgrpc_h2_stream *hstream;   /* whose block it is (NULL: none being collected) */
  size_t hcount;
  /* spares kept for reuse while streams are open; all freed when the session is idle */
  struct ev_slot *spare_events;
  lgrpc_h2_stream *spare_streams;
  struct field_block *spare_blocks;
  size_t nspare_events, nspare_streams, nspare_blocks;
  lgrpc_bytes *send_out;      /* lgrpc_h2_send's output while it runs (send_data_cb appends) */
  char err[256];
  char conn_err[200];         /* nghttp2's last complaint about the peer */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void set_err(lgrpc_h2_session *s, const char *fmt, const char *a, long long b, long long c)
{
  snprintf(s->err, sizeof s->err, fmt, a, b, c);
}

const char *lgrpc_h2_last_error(const lgrpc_h2_session *s) { return s->err; }
int lgrpc_h2_is_server(const lgrpc_h2_session *s) { return s->server; }

static void buffered(lgrpc_h2_session *s, int in, long d)
{
  if (in) s->buffered_in += d; else s->buffered_out += d;
  COUNT(g_buffered, d);
}

void lgrpc_h2_counters(long *sessions, long *streams, long *buf)
{
  *sessions = __atomic_load_n(&g_sessions, __ATOMIC_RELAXED);
  *streams = __atomic_load_n(&g_streams, __ATOMIC_RELAXED);
  *buf = __atomic_load_n(&g_buffered, __ATOMIC_RELAXED);
}

const char *lgrpc_h2_status_name(int code)
{
  static const char *names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? names[code] : "UNKNOWN";
}

/* nv lists point at their names and values; nghttp2 copies the whole list when it is
 * submitted, so literals and the caller's buffers are used as they are, and only text the
 * session makes (base64, percent-encoding, numbers) is written into the list's own space: a
 * block on the caller's stack, then heap chunks that never move (nv entries point into them). */
static int nv_push(nvlist *l, const char *name, size_t nlen, const char *val, size_t vlen)
{
  if (l->n == l->cap) {
    size_t cap = l->cap * 2;
    nghttp2_nv *p;
    if (l->nv == l->nv0) {
      p = malloc(cap * sizeof *p);
      if (p) memcpy(p, l->nv0, sizeof l->nv0);
    } else p = realloc(l->nv, cap * sizeof *p);
    if (!p) return LGRPC_ENET_NOMEM;
    l->nv = p;
    l->cap = cap;
  }
  nghttp2_nv *nv = &l->nv[l->n++];
  nv->name = (uint8_t *)name;
  nv->namelen = nlen;
  nv->value = (uint8_t *)val;
  nv->valuelen = vlen;
  nv->flags = NGHTTP2_NV_FLAG_NONE;
  return 0;
}

static void nv_init(nvlist *l)
{
  l->nv = l->nv0;
  l->n = 0;
  l->cap = sizeof l->nv0 / sizeof l->nv0[0];
  l->used = 0;
  l->chunks = NULL;
}

/* n bytes of space that stay put until nv_free; NULL when out of memory. */
static char *nv_space(nvlist *l, size_t n)
{
  if (sizeof l->mem0 - l->used >= n) {
    char *p = l->mem0 + l->used;
    l->used += n;
    return p;
  }
  nv_chunk *c = malloc(sizeof *c + n);
  if (!c) return NULL;
  c->next = l->chunks;
  l->chunks = c;
  return (char *)(c + 1);
}

/* A name and value the list must keep (the caller's copy goes away before the submit). */
static int nv_add(nvlist *l, const char *name, size_t nlen, const char *val, size_t vlen)
{
  char *v = nv_space(l, vlen + 1);
  if (!v) return LGRPC_ENET_NOMEM;
  if (vlen) memcpy(v, val, vlen);
  v[vlen] = 0;
  return nv_push(l, name, nlen, v, vlen);
}

/* A literal name with a value that outlives the submit (a literal, config, the caller's). */
static int nv_adds(nvlist *l, const char *name, const char *val)
{
  return nv_push(l, name, strlen(name), val, strlen(val));
}

static void nv_free(nvlist *l)
{
  while (l->chunks) {
    nv_chunk *n = l->chunks->next;
    free(l->chunks);
    l->chunks = n;
  }
  if (l->nv != l->nv0) free(l->nv);
  nv_init(l);
}

/* A copy of the list in `mem` (array, then every name and value), for the trailers a stream
 * keeps until its data provider reaches the end. NULL when out of memory. */
static nghttp2_nv *nv_keep(const nvlist *l, lgrpc_bytes *mem)
{
  size_t bytes = l->n * sizeof(nghttp2_nv);
  for (size_t i = 0; i < l->n; i++) bytes += l->nv[i].namelen + l->nv[i].valuelen + 2;
  mem->len = 0;
  if (lgrpc_bytes_reserve(mem, bytes ? bytes : 1) != 0) return NULL;
  nghttp2_nv *out = (nghttp2_nv *)mem->data;
  char *p = (char *)(out + l->n);
  for (size_t i = 0; i < l->n; i++) {
    out[i] = l->nv[i];
    out[i].name = (uint8_t *)p;
    memcpy(p, l->nv[i].name, l->nv[i].namelen);
    p[l->nv[i].namelen] = 0;
    p += l->nv[i].namelen + 1;
    out[i].value = (uint8_t *)p;
    if (l->nv[i].valuelen) memcpy(p, l->nv[i].value, l->nv[i].valuelen);
    p[l->nv[i].valuelen] = 0;
    p += l->nv[i].valuelen + 1;
  }
  return out;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    out[o++] = B64[v >> 18]; out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63]; out[o++] = B64[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = B64[v >> 18]; out[o++] = B64[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
    out[o++] = B64[v >> 18]; out[o++] = B64[(v >> 12) & 63]; out[o++] = B64[(v >> 6) & 63];
  }
  return o;
}

static int b64_val(unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Decodes padded or unpadded base64 (standard or URL alphabet); *ok = 0 on bad input. */
size_t lgrpc_h2_b64_decode(const char *in, size_t n, char *out, int *ok)
{
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  *ok = 1;
  while (n > 0 && in[n - 1] == '=') n--;
  for (size_t i = 0; i < n; i++) {
    int v = b64_val((unsigned char)in[i]);
    if (v < 0) { *ok = 0; return o; }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) *ok = 0; /* a single dangling character */
  return o;
}

static int is_reserved_key(const char *k, size_t n)
{
  if (n >= 5 && memcmp(k, "grpc-", 5) == 0) return 1;
  return (n == 12 && memcmp(k, "content-type", 12) == 0) || (n == 2 && memcmp(k, "te", 2) == 0) ||
         (n == 10 && memcmp(k, "user-agent", 10) == 0) ||
         (n == 4 && memcmp(k, "host", 4) == 0) || (n == 10 && memcmp(k, "connection", 10) == 0);
}

/* Appends validated metadata to an nv list; -bin values are base64-encoded (unpadded). The
 * list points at md's names and values: they must stay valid until the list is submitted. */
static int nv_add_md(lgrpc_h2_session *s, nvlist *l, const lgrpc_h2_md *md, size_t nmd)
{
  for (size_t i = 0; i < nmd; i++) {
    const char *k = md[i].name;
    size_t kn = md[i].namelen;
    if (kn == 0) { set_err(s, "INTERNAL: empty metadata key%s", "", 0, 0); return LGRPC_ENET_ARG; }
    for (size_t j = 0; j < kn; j++) {
      unsigned char c = (unsigned char)k[j];
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
        set_err(s, "INTERNAL: invalid metadata key '%.100s' (lower-case letters, digits, - _ . only)", k, 0, 0);
        return LGRPC_ENET_ARG;
      }
    }
    if (is_reserved_key(k, kn)) {
      set_err(s, "INTERNAL: metadata key '%.100s' is reserved", k, 0, 0);
      return LGRPC_ENET_ARG;
    }
    int rc;
    if (kn > 4 && memcmp(k + kn - 4, "-bin", 4) == 0) {
      char *enc = nv_space(l, md[i].valuelen / 3 * 4 + 4);
      if (!enc) return LGRPC_ENET_NOMEM;
      size_t en = b64_encode((const unsigned char *)md[i].value, md[i].valuelen, enc);
      rc = nv_push(l, k, kn, enc, en);
    } else {
      for (size_t j = 0; j < md[i].valuelen; j++) {
        unsigned char c = (unsigned char)md[i].value[j];
        if (c < 0x20 || c > 0x7e) {
          set_err(s, "INTERNAL: metadata value of '%.100s' must be printable ASCII (use a -bin key for bytes)", k, 0, 0);
          return LGRPC_ENET_ARG;
        }
      }
      rc = nv_push(l, k, kn, md[i].value, md[i].valuelen);
    }
    if (rc) return rc;
  }
  return 0;
}

/* o: room for n * 3 bytes. Returns the encoded length. */
static size_t percent_encode(const char *m, size_t n, char *o)
{
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)m[i];
    if (c < 0x20 || c > 0x7e || c == '%') {
      o[j++] = '%';
      o[j++] = "0123456789ABCDEF"[c >> 4];
      o[j++] = "0123456789ABCDEF"[c & 15];
    } else o[j++] = (char)c;
  }
  return j;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes in place; malformed escapes stay as they are. Returns the new length. */
static size_t percent_decode(char *m, size_t n)
{
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (m[i] == '%' && i + 2 < n && hexval(m[i + 1]) >= 0 && hexval(m[i + 2]) >= 0) {
      m[j++] = (char)(hexval(m[i + 1]) * 16 + hexval(m[i + 2]));
      i += 2;
    } else m[j++] = m[i];
  }
  return j;
}

/* grpc-timeout: 1-8 digits and a unit (H M S m u n); ms rounded up. -1 on bad input. */
static int64_t parse_timeout(const char *v, size_t n)
{
  if (n < 2 || n > 9) return -1;
  int64_t x = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    x = x * 10 + (v[i] - '0');
  }
  switch (v[n - 1]) {
  case 'H': return x * 3600000;
  case 'M': return x * 60000;
  case 'S': return x * 1000;
  case 'm': return x;
  case 'u': return (x + 999) / 1000;
  case 'n': return (x + 999999) / 1000000;
  default: return -1;
  }
}

static void format_timeout(int64_t ms, char *buf, size_t n)
{
  if (ms < 0) ms = 0;
  if (ms <= 99999999) snprintf(buf, n, "%lldm", (long long)ms);
  else if ((ms + 999) / 1000 <= 99999999) snprintf(buf, n, "%lldS", (long long)((ms + 999) / 1000));
  else if ((ms + 59999) / 60000 <= 99999999) snprintf(buf, n, "%lldM", (long long)((ms + 59999) / 60000));
  else snprintf(buf, n, "%lldH", (long long)((ms + 3599999) / 3600000 > 99999999 ? 99999999 : (ms + 3599999) / 3600000));
}

static int http_to_grpc(int http)
{
  switch (http) {
  case 400: return ST_INTERNAL;
  case 401: return ST_UNAUTHENTICATED;
  case 403: return ST_PERMISSION;
  case 404: return ST_UNIMPLEMENTED;
  case 429: case 502: case 503: case 504: return ST_UNAVAILABLE;
  default: return ST_UNKNOWN;
  }
}

static int rst_to_grpc(uint32_t code)
{
  switch (code) {
  case NGHTTP2_REFUSED_STREAM: return ST_UNAVAILABLE;
  case NGHTTP2_CANCEL: return ST_CANCELLED;
  case NGHTTP2_ENHANCE_YOUR_CALM: return ST_RESOURCE;
  case NGHTTP2_INADEQUATE_SECURITY: return ST_PERMISSION;
  default: return ST_INTERNAL;
  }
}

/* content-type is application/grpc, alone or followed by '+' or ';' */
static int grpc_content_type(const char *v, size_t n)
{
  if (n < 16 || strncasecmp(v, "application/grpc", 16) != 0) return 0;
  return n == 16 || v[16] == '+' || v[16] == ';';
}

static int list_has(const char *list, const char *v, size_t n)
{
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > p && t[-1] == ' ') t--;
    if ((size_t)(t - p) == n && strncmp(p, v, n) == 0) return 1;
    p = e;
  }
  return 0;
}

/* ---- fields ----------------------------------------------------------------------------- */

/* A header block's fields live in one allocation: the index of the first field of each kind,
 * then the field structs (a list in arrival order), then the names and values. */
#define NKINDS (LGRPC_HF_RESERVED + 1)
typedef struct field_block {
  struct field_block *next;   /* in the session's spares */
  size_t size;                /* bytes allocated: FIELD_BLOCK_SIZE blocks are reused */
  const lgrpc_h2_field *known[NKINDS];
  lgrpc_h2_field fields[];
} field_block;

static void fields_free(lgrpc_h2_session *s, lgrpc_h2_field *f)
{
  /* every list the session hands out is a whole block, named by its first field */
  if (!f) return;
  field_block *b = (field_block *)((char *)f - offsetof(field_block, fields));
  if (b->size == FIELD_BLOCK_SIZE && s->nspare_blocks < SPARE_BLOCKS && !s->freeing) {
    b->next = s->spare_blocks;
    s->spare_blocks = b;
    s->nspare_blocks++;
  } else free(b);
}

const lgrpc_h2_field *lgrpc_h2_field_find(const lgrpc_h2_field *f, int kind)
{
  if (f && f->known && kind >= 0 && kind < NKINDS) return f->known[kind];
  for (; f; f = f->next) if (f->kind == kind) return f;
  return NULL;
}

typedef struct field_rec { uint32_t kind, namelen, valuelen; } field_rec;

static void hblock_reset(lgrpc_h2_session *s, lgrpc_h2_stream *st)
{
  s->hblock.len = 0;
  s->hrecs.len = 0;
  s->hcount = 0;
  s->hstream = st;
}

/* The collected block as one allocation of fields; NULL when it is empty or memory ran out. */
static lgrpc_h2_field *hblock_take(lgrpc_h2_session *s)
{
  size_t n = s->hcount, text = s->hblock.len;
  s->hstream = NULL;
  if (n == 0) return NULL;
  size_t size = sizeof(field_block) + n * sizeof(lgrpc_h2_field) + text;
  field_block *b = NULL;
  if (size <= FIELD_BLOCK_SIZE) {
    size = FIELD_BLOCK_SIZE;
    if ((b = s->spare_blocks) != NULL) {
      s->spare_blocks = b->next;
      s->nspare_blocks--;
    }
  }
  if (!b && !(b = malloc(size))) return NULL;
  b->size = size;
  memset(b->known, 0, sizeof b->known);
  char *out = (char *)&b->fields[n];
  memcpy(out, s->hblock.data, text);
  const field_rec *r = (const field_rec *)s->hrecs.data;
  for (size_t i = 0; i < n; i++, r++) {
    lgrpc_h2_field *f = &b->fields[i];
    f->next = i + 1 < n ? &b->fields[i + 1] : NULL;
    f->known = NULL;
    f->kind = (int)r->kind;
    f->namelen = r->namelen;
    f->valuelen = r->valuelen;
    f->name = out;
    f->value = out + r->namelen + 1;
    out += r->namelen + r->valuelen + 2;
    if (!b->known[r->kind]) b->known[r->kind] = f;
  }
  b->fields[0].known = b->known;
  s->hblock.len = 0;
  s->hrecs.len = 0;
  s->hcount = 0;
  return b->fields;
}

static int classify(const uint8_t *n, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(n, lit, len) == 0)
  if (len && n[0] == ':') {
    if (IS(":path")) return LGRPC_HF_PATH;
    if (IS(":authority")) return LGRPC_HF_AUTHORITY;
    if (IS(":method")) return LGRPC_HF_METHOD;
    if (IS(":scheme")) return LGRPC_HF_SCHEME;
    if (IS(":status")) return LGRPC_HF_STATUS;
    return LGRPC_HF_RESERVED;
  }
  if (IS("content-type")) return LGRPC_HF_CONTENT_TYPE;
  if (IS("te")) return LGRPC_HF_TE;
  if (IS("user-agent")) return LGRPC_HF_USER_AGENT;
  if (len >= 5 && memcmp(n, "grpc-", 5) == 0) {
    if (IS("grpc-timeout")) return LGRPC_HF_TIMEOUT;
    if (IS("grpc-encoding")) return LGRPC_HF_ENCODING;
    if (IS("grpc-accept-encoding")) return LGRPC_HF_ACCEPT_ENCODING;
    if (IS("grpc-status")) return LGRPC_HF_GRPC_STATUS;
    if (IS("grpc-message")) return LGRPC_HF_GRPC_MESSAGE;
    if (IS("grpc-status-details-bin")) return LGRPC_HF_DETAILS;
    return LGRPC_HF_RESERVED;
  }
  return LGRPC_HF_MD;
#undef IS
}

/* ---- events ----------------------------------------------------------------------------- */

static lgrpc_h2_event *ev_new(lgrpc_h2_session *s, int type, lgrpc_h2_stream *st)
{
  ev_slot *slot = s->spare_events;
  if (slot) {
    s->spare_events = (ev_slot *)slot->ev.next;
    s->nspare_events--;
    memset(&slot->ev, 0, sizeof slot->ev);
  } else {
    slot = malloc(sizeof *slot);
    if (!slot) return NULL;
    memset(&slot->ev, 0, sizeof slot->ev);
  }
  lgrpc_h2_event *ev = &slot->ev;
  ev->type = type;
  ev->stream = st;
  ev->h2code = -1;
  ev->timeout = ev->deadline = -1;
  if (st) st->pending++;
  if (s->qtail) s->qtail->next = ev; else s->qhead = ev;
  s->qtail = ev;
  s->nevents++;
  return ev;
}

/* Room for n bytes and a NUL in ev->data: inside the event's slot when it fits. */
static char *ev_data(lgrpc_h2_event *ev, size_t n)
{
  ev->data = n < EV_INLINE ? ((ev_slot *)ev)->data : malloc(n + 1);
  return ev->data;
}

/* Frees what the event owns and keeps its slot as a spare (or frees it). */
static void ev_release(lgrpc_h2_session *s, lgrpc_h2_event *ev)
{
  ev_slot *slot = (ev_slot *)ev;
  fields_free(s, ev->fields);
  if (ev->data != slot->data) free(ev->data);
  free(ev->details);
  if (s->nspare_events < SPARE_EVENTS && !s->freeing) {
    ev->next = (lgrpc_h2_event *)s->spare_events;
    s->spare_events = slot;
    s->nspare_events++;
  } else free(slot);
}

static void ev_text(lgrpc_h2_event *ev, const char *text, size_t n)
{
  if (!ev_data(ev, n)) return;
  if (n) memcpy(ev->data, text, n);
  ev->data[n] = 0;
  ev->len = n;
}

static void stream_maybe_free(lgrpc_h2_stream *st);

/* ---- streams ---------------------------------------------------------------------------- */

/* Frees the spare events and streams and the header block scratch: an idle session holds
 * nothing it does not need. */
static void spares_free(lgrpc_h2_session *s)
{
  while (s->spare_events) {
    ev_slot *n = (ev_slot *)s->spare_events->ev.next;
    free(s->spare_events);
    s->spare_events = n;
  }
  while (s->spare_streams) {
    lgrpc_h2_stream *n = s->spare_streams->next;
    lgrpc_bytes_free(&s->spare_streams->out);
    lgrpc_bytes_free(&s->spare_streams->trailer_mem);
    free(s->spare_streams);
    s->spare_streams = n;
  }
  while (s->spare_blocks) {
    struct field_block *n = s->spare_blocks->next;
    free(s->spare_blocks);
    s->spare_blocks = n;
  }
  s->nspare_events = s->nspare_streams = s->nspare_blocks = 0;
  if (!s->hstream) {
    lgrpc_bytes_free(&s->hblock);
    lgrpc_bytes_free(&s->hrecs);
  }
}

static lgrpc_h2_stream *stream_new(lgrpc_h2_session *s)
{
  lgrpc_h2_stream *st = s->spare_streams;
  if (st) {
    /* a spare keeps its send and trailer buffers */
    lgrpc_bytes out = st->out, tm = st->trailer_mem;
    s->spare_streams = st->next;
    s->nspare_streams--;
    memset(st, 0, sizeof *st);
    st->out = out;
    st->out.len = 0;
    st->trailer_mem = tm;
  } else {
    st = calloc(1, sizeof *st);
    if (!st) return NULL;
  }
  st->sess = s;
  lgrpc_frame_reader_init(&st->reader, s->cfg.max_recv_message);
  st->next = s->streams;
  if (s->streams) s->streams->prev = st;
  s->streams = st;
  s->nstreams++;
  s->nopen++;
  COUNT(g_streams, 1);
  return st;
}

static void stream_release(lgrpc_h2_stream *st)
{
  lgrpc_h2_session *s = st->sess;
  buffered(s, 1, -(long)lgrpc_frame_pending(&st->reader));
  buffered(s, 0, -(long)(st->out.len - st->out_off));
  lgrpc_frame_reader_free(&st->reader);
  fields_free(s, st->hfirst);
  if (s->hstream == st) s->hstream = NULL;
  if (st->prev) st->prev->next = st->next; else s->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  s->nstreams--;
  COUNT(g_streams, -1);
  if (s->nspare_streams < SPARE_STREAMS && !s->freeing && st->out.cap <= SPARE_OUT_CAP &&
      st->trailer_mem.cap <= SPARE_OUT_CAP) {
    st->next = s->spare_streams;
    s->spare_streams = st;
    s->nspare_streams++;
    return;
  }
  lgrpc_bytes_free(&st->out);
  lgrpc_bytes_free(&st->trailer_mem);
  free(st);
}

static void stream_maybe_free(lgrpc_h2_stream *st)
{
  if (st->closed && st->handles == 0 && st->pending == 0) stream_release(st);
}

static void mark_closed(lgrpc_h2_stream *st)
{
  if (st->closed) return;
  st->closed = 1;
  lgrpc_h2_session *s = st->sess;
  if (--s->nopen == 0) s->idle_since = s->now;
  /* what the reader still holds can never complete */
  buffered(s, 1, -(long)lgrpc_frame_pending(&st->reader));
  lgrpc_frame_reader_free(&st->reader);
}

static void timer_push(lgrpc_h2_session *s, int64_t when, int32_t id)
{
  if (s->ntimers == s->timers_cap) {
    size_t cap = s->timers_cap ? s->timers_cap * 2 : 16;
    timer_entry *p = realloc(s->timers, cap * sizeof *p);
    if (!p) return;
    s->timers = p;
    s->timers_cap = cap;
  }
  size_t i = s->ntimers++;
  while (i > 0 && s->timers[(i - 1) / 2].when > when) {
    s->timers[i] = s->timers[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->timers[i].when = when;
  s->timers[i].id = id;
}

static void timer_pop(lgrpc_h2_session *s)
{
  timer_entry last = s->timers[--s->ntimers];
  size_t i = 0, n = s->ntimers;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && s->timers[c + 1].when < s->timers[c].when) c++;
    if (s->timers[c].when >= last.when) break;
    s->timers[i] = s->timers[c];
    i = c;
  }
  if (n) s->timers[i] = last;
}

/* Client terminal event. */
static lgrpc_h2_event *client_status(lgrpc_h2_stream *st, int code, const char *msg)
{
  if (st->ended) return NULL;
  st->ended = 1;
  lgrpc_h2_event *ev = ev_new(st->sess, LGRPC_EV_STATUS, st);
  if (!ev) return NULL;
  ev->code = code;
  ev->http_status = st->http_status;
  if (msg) ev_text(ev, msg, strlen(msg));
  return ev;
}

/* Server: the stream ended without Lua's status; tell Lua if it knows the stream. */
static void server_cancel(lgrpc_h2_stream *st, int status, int h2code, const char *msg)
{
  if (st->ended) return;
  st->ended = 1;
  if (!st->delivered) return;
  lgrpc_h2_event *ev = ev_new(st->sess, LGRPC_EV_CANCEL, st);
  if (!ev) return;
  ev->code = status;
  ev->h2code = h2code;
  if (msg) ev_text(ev, msg, strlen(msg));
}

static void resume(lgrpc_h2_stream *st)
{
  if (st->deferred && !st->closed) {
    st->deferred = 0;
    nghttp2_session_resume_data(st->sess->ng, st->id);
  }
}

/* Everything queued was taken: the send buffer starts over (and a big one goes). */
static void out_reset(lgrpc_h2_stream *st)
{
  st->out.len = st->out_off = 0;
  if (st->out.cap > 1 << 20) lgrpc_bytes_free(&st->out);
}

/* The DATA frame read_cb marked NO_COPY: its header, then its bytes straight from st->out. */
static int send_data_cb(nghttp2_session *ng, nghttp2_frame *fr, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *ud)
{
  lgrpc_h2_session *s = ud;
  lgrpc_h2_stream *st = src->ptr;
  if (!st->nocopy || !s->send_out || fr->data.padlen) return NGHTTP2_ERR_CALLBACK_FAILURE;
  st->nocopy = 0;
  if (lgrpc_bytes_reserve(s->send_out, 9 + length) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
  lgrpc_bytes_append(s->send_out, framehd, 9);
  lgrpc_bytes_append(s->send_out, st->out.data + st->nocopy_off, length);
  if (st->out_off == st->out.len) out_reset(st);
  return 0;
}

static ssize_t read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
  lgrpc_h2_stream *st = src->ptr;
  lgrpc_h2_session *s = ud;
  size_t avail = st->out.len - st->out_off;
  size_t n = avail < length ? avail : length;
  if (n) {
    if (s->send_out) {
      /* send_data_cb appends these bytes to the output itself: no copy into nghttp2's frame
       * buffer. They stay in st->out (nothing runs between this and send_data_cb) */
      *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
      st->nocopy_off = st->out_off;
      st->nocopy = 1;
    } else memcpy(buf, st->out.data + st->out_off, n);
    st->out_off += n;
    buffered(s, 0, -(long)n);
    if (st->out_off == st->out.len) {
      if (!st->nocopy) out_reset(st);
      if (st->want_drain) {
        st->want_drain = 0;
        ev_new(s, LGRPC_EV_DRAIN, st);
      }
    }
  }
  if (st->out_off == st->out.len && st->eof_pending) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->server) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      if (nghttp2_submit_trailer(ng, id, st->trailers, st->ntrailers) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      st->trailers = NULL;
      st->ntrailers = 0;
    }
    return (ssize_t)n;
  }
  if (n == 0) {
    st->deferred = 1;
    return NGHTTP2_ERR_DEFERRED;
  }
  return (ssize_t)n;
}

/* ---- server responses ------------------------------------------------------------------- */

static int submit_headers(lgrpc_h2_stream *st, const lgrpc_h2_md *md, size_t nmd)
{
  lgrpc_h2_session *s = st->sess;
  nvlist l;
  nv_init(&l);
  int rc = nv_adds(&l, ":status", "200");
  if (!rc) rc = nv_adds(&l, "content-type", "application/grpc");
  if (!rc) rc = nv_add_md(s, &l, md, nmd);
  if (rc) { nv_free(&l); return rc; }
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = read_cb;
  rc = nghttp2_submit_response(s->ng, st->id, l.nv, l.n, &prd);
  nv_free(&l);
  if (rc != 0) {
    set_err(s, "INTERNAL: %s", nghttp2_strerror(rc), 0, 0);
    return LGRPC_ENET_STATE;
  }
  st->headers_sent = 1;
  return 0;
}

static int status_nv(lgrpc_h2_session *s, nvlist *l, int code, const char *msg, size_t msglen,
                     const lgrpc_h2_md *md, size_t nmd, const char *details, size_t dlen)
{
  char num[16];
  size_t nl = 0;
  unsigned u = (unsigned)code;
  do { num[sizeof num - 1 - nl++] = (char)('0' + u % 10); u /= 10; } while (u && nl < sizeof num);
  int rc = nv_add(l, "grpc-status", 11, num + sizeof num - nl, nl);
  if (!rc && msglen) {
    char *enc = nv_space(l, msglen * 3);
    if (!enc) return LGRPC_ENET_NOMEM;
    rc = nv_push(l, "grpc-message", 12, enc, percent_encode(msg, msglen, enc));
  }
  if (!rc && details && dlen) {
    char *enc = nv_space(l, dlen / 3 * 4 + 4);
    if (!enc) return LGRPC_ENET_NOMEM;
    size_t en = b64_encode((const unsigned char *)details, dlen, enc);
    rc = nv_push(l, "grpc-status-details-bin", 23, enc, en);
  }
  if (!rc) rc = nv_add_md(s, l, md, nmd);
  return rc;
}

/* The server's final status: trailers-only when no headers went out, else trailers after data. */
static int server_status(lgrpc_h2_stream *st, int code, const char *msg, size_t msglen,
                         const lgrpc_h2_md *md, size_t nmd, const char *details, size_t dlen,
                         const char *accept_encoding)
{
  lgrpc_h2_session *s = st->sess;
  int rc;
  if (!st->headers_sent) {
    nvlist l;
    nv_init(&l);
    rc = nv_adds(&l, ":status", "200");
    if (!rc) rc = nv_adds(&l, "content-type", "application/grpc");
    if (!rc && accept_encoding) rc = nv_adds(&l, "grpc-accept-encoding", accept_encoding);
    if (!rc) rc = status_nv(s, &l, code, msg, msglen, md, nmd, details, dlen);
    if (!rc && nghttp2_submit_response(s->ng, st->id, l.nv, l.n, NULL) != 0) rc = LGRPC_ENET_STATE;
    nv_free(&l);
    if (rc) return rc;
    st->headers_sent = 1;
  } else {
    nvlist l;
    nv_init(&l);
    rc = status_nv(s, &l, code, msg, msglen, md, nmd, details, dlen);
    if (rc) { nv_free(&l); return rc; }
    nghttp2_nv *keep = nv_keep(&l, &st->trailer_mem);
    size_t n = l.n;
    nv_free(&l);
    if (!keep) return LGRPC_ENET_NOMEM;
    st->trailers = keep;
    st->ntrailers = n;
    st->eof_pending = 1;
    resume(st);
  }
  st->status_sent = 1;
  return 0;
}

/* The transport answers a stream itself (limits, bad input); Lua hears of it as CANCEL. */
static void server_abort(lgrpc_h2_stream *st, int code, const char *msg)
{
  lgrpc_h2_session *s = st->sess;
  st->discard = 1;
  if (!st->status_sent && !st->closed) {
    /* drop unsent messages: the status replaces them */
    buffered(s, 0, -(long)(st->out.len - st->out_off));
    st->out.len = st->out_off = 0;
    if (server_status(st, code, msg, strlen(msg), NULL, 0, NULL, 0, NULL) != 0)
      nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
  }
  server_cancel(st, code, -1, msg);
}

static void server_http_error(lgrpc_h2_stream *st, const char *status)
{
  nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)status, 7, strlen(status), 0}};
  nghttp2_submit_response(st->sess->ng, st->id, nv, 1, NULL);
  st->headers_sent = st->status_sent = 1;
  st->ended = 1;
  st->discard = 1;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------ */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
  lgrpc_h2_session *s = ud;
  if (fr->hd.type != NGHTTP2_HEADERS) return 0;
  lgrpc_h2_stream *st = nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id);
  if (!st && s->server && fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
    st = stream_new(s);
    if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->id = fr->hd.stream_id;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
  }
  if (!st) return 0;
  fields_free(st->sess, st->hfirst);
  st->hfirst = NULL;
  st->hsize = 0;
  hblock_reset(s, st);
  return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
  lgrpc_h2_session *s = ud;
  lgrpc_h2_stream *st = nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id);
  if (!st || st->hoversize || s->hstream != st) return 0;
  st->hsize += namelen + valuelen + 32;
  if (s->cfg.max_header_list && st->hsize > s->cfg.max_header_list) {
    st->hoversize = 1;
    hblock_reset(s, st);
    return 0;
  }
  field_rec r = { (uint32_t)classify(name, namelen), (uint32_t)namelen, (uint32_t)valuelen };
  if ((s->hblock.cap - s->hblock.len < namelen + valuelen + 2 &&
       lgrpc_bytes_reserve(&s->hblock, namelen + valuelen + 2) != 0) ||
      (s->hrecs.cap - s->hrecs.len < sizeof r && lgrpc_bytes_reserve(&s->hrecs, sizeof r) != 0))
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  memcpy(s->hrecs.data + s->hrecs.len, &r, sizeof r);
  s->hrecs.len += sizeof r;
  char *p = s->hblock.data + s->hblock.len;
  memcpy(p, name, namelen);
  p[namelen] = 0;
  if (valuelen) memcpy(p + namelen + 1, value, valuelen);
  p[namelen + 1 + valuelen] = 0;
  s->hblock.len += namelen + valuelen + 2;
  s->hcount++;
  return 0;
}

static lgrpc_h2_field *take_fields(lgrpc_h2_stream *st)
{
  lgrpc_h2_field *f = st->hfirst;
  st->hfirst = NULL;
  st->hsize = 0;
  return f;
}

static void server_half_close(lgrpc_h2_stream *st)
{
  st->recv_closed = 1;
  if (st->ended || st->discard) return;
  if (lgrpc_frame_pending(&st->reader)) {
    server_abort(st, ST_INTERNAL, "incomplete message at end of stream");
    return;
  }
  if (st->delivered) ev_new(st->sess, LGRPC_EV_HALF_CLOSE, st);
}

static void server_request(lgrpc_h2_session *s, lgrpc_h2_stream *st, const nghttp2_frame *fr)
{
  if (st->hoversize) {
    st->ended = st->discard = 1;
    nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_ENHANCE_YOUR_CALM);
    return;
  }
  const lgrpc_h2_field *f = lgrpc_h2_field_find(st->hfirst, LGRPC_HF_METHOD);
  if (!f || strcmp(f->value, "POST") != 0) { server_http_error(st, "405"); return; }
  f = lgrpc_h2_field_find(st->hfirst, LGRPC_HF_CONTENT_TYPE);
  if (!f || !grpc_content_type(f->value, f->valuelen)) { server_http_error(st, "415"); return; }
  int64_t timeout = -1;
  f = lgrpc_h2_field_find(st->hfirst, LGRPC_HF_TIMEOUT);
  if (f) {
    timeout = parse_timeout(f->value, f->valuelen);
    if (timeout < 0) {
      server_abort(st, ST_INTERNAL, "invalid grpc-timeout");
      return;
    }
  }
  f = lgrpc_h2_field_find(st->hfirst, LGRPC_HF_ENCODING);
  if (f && strcmp(f->value, "identity") != 0 && !list_has(s->cfg.encodings, f->value, f->valuelen)) {
    char msg[200];
    snprintf(msg, sizeof msg, "grpc-encoding '%.100s' is not supported", f->value);
    st->discard = 1;
    server_status(st, ST_UNIMPLEMENTED, msg, strlen(msg), NULL, 0, NULL, 0, s->cfg.encodings);
    st->ended = 1;
    return;
  }
  st->encoded = f != NULL && strcmp(f->value, "identity") != 0;
  lgrpc_h2_event *ev = ev_new(s, LGRPC_EV_REQUEST, st);
  if (!ev) return;
  ev->fields = take_fields(st);
  ev->timeout = timeout;
  st->delivered = 1;
  if (timeout >= 0) {
    ev->deadline = s->now + timeout;
    timer_push(s, ev->deadline, st->id);
  }
  if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) server_half_close(st);
}

static void client_final(lgrpc_h2_stream *st, int trailers_only)
{
  lgrpc_h2_field *fields = take_fields(st);
  const lgrpc_h2_field *gs = lgrpc_h2_field_find(fields, LGRPC_HF_GRPC_STATUS);
  int code;
  const char *msg = NULL;
  if (gs) {
    code = 0;
    for (size_t i = 0; i < gs->valuelen; i++) {
      if (gs->value[i] < '0' || gs->value[i] > '9' || code > 100000) { code = ST_UNKNOWN; break; }
      code = code * 10 + (gs->value[i] - '0');
    }
    if (gs->valuelen == 0) code = ST_UNKNOWN;
  } else if (st->http_status != 200) {
    code = http_to_grpc(st->http_status);
    msg = "unexpected HTTP status";
  } else {
    code = ST_UNKNOWN;
    msg = "missing grpc-status in trailers";
  }
  if (st->ended) { fields_free(st->sess, fields); return; }
  lgrpc_h2_event *ev = client_status(st, code, NULL);
  if (!ev) { fields_free(st->sess, fields); return; }
  ev->fields = fields;
  ev->trailers_only = trailers_only;
  lgrpc_h2_field *gm = (lgrpc_h2_field *)lgrpc_h2_field_find(fields, LGRPC_HF_GRPC_MESSAGE);
  if (gm) {
    gm->valuelen = percent_decode(gm->value, gm->valuelen);
    ev_text(ev, gm->value, gm->valuelen);
  } else if (msg) {
    char buf[100];
    snprintf(buf, sizeof buf, "%s %d", msg, st->http_status);
    if (st->http_status == 200 || st->http_status == 0) ev_text(ev, msg, strlen(msg));
    else ev_text(ev, buf, strlen(buf));
  }
  const lgrpc_h2_field *d = lgrpc_h2_field_find(fields, LGRPC_HF_DETAILS);
  if (d) {
    ev->details = malloc(d->valuelen + 1);
    int ok;
    if (ev->details) ev->detailslen = lgrpc_h2_b64_decode(d->value, d->valuelen, ev->details, &ok);
  }
}

static void client_headers(lgrpc_h2_session *s, lgrpc_h2_stream *st, const nghttp2_frame *fr)
{
  int end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (st->hoversize) {
    fields_free(st->sess, take_fields(st));
    if (!st->closed) nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    st->discard = 1;
    client_status(st, ST_RESOURCE, "response header list exceeds max_header_list");
    return;
  }
  if (!st->got_headers) {
    st->got_headers = 1;
    const lgrpc_h2_field *f = lgrpc_h2_field_find(st->hfirst, LGRPC_HF_STATUS);
    st->http_status = f ? atoi(f->value) : 0;
    if (end) { client_final(st, 1); return; }
    if (st->http_status != 200) {
      char msg[64];
      snprintf(msg, sizeof msg, "unexpected HTTP status %d", st->http_status);
      fields_free(st->sess, take_fields(st));
      nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
      st->discard = 1;
      client_status(st, http_to_grpc(st->http_status), msg);
      return;
    }
    f = lgrpc_h2_field_find(st->hfirst, LGRPC_HF_CONTENT_TYPE);
    if (!f || !grpc_content_type(f->value, f->valuelen)) {
      fields_free(st->sess, take_fields(st));
      nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
      st->discard = 1;
      client_status(st, ST_UNKNOWN, "unexpected content-type in response");
      return;
    }
    f = lgrpc_h2_field_find(st->hfirst, LGRPC_HF_ENCODING);
    st->encoded = f != NULL && strcmp(f->value, "identity") != 0;
    if (st->ended) { fields_free(st->sess, take_fields(st)); return; }
    lgrpc_h2_event *ev = ev_new(s, LGRPC_EV_HEADERS, st);
    if (ev) ev->fields = take_fields(st);
    return;
  }
  client_final(st, 0);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
  lgrpc_h2_session *s = ud;
  lgrpc_h2_stream *st = fr->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id) : NULL;
  if (st && (fr->hd.type == NGHTTP2_HEADERS || fr->hd.type == NGHTTP2_DATA) &&
      (fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
    st->recv_closed = 1;
  switch (fr->hd.type) {
  case NGHTTP2_HEADERS:
    if (!st) return 0;
    if (s->hstream == st) {
      fields_free(st->sess, st->hfirst);
      st->hfirst = hblock_take(s);
      if (!st->hfirst && s->hcount) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (s->server) {
      if (fr->headers.cat == NGHTTP2_HCAT_REQUEST) server_request(s, st, fr);
      else {
        fields_free(st->sess, take_fields(st));
        if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) server_half_close(st);
      }
    } else {
      client_headers(s, st, fr);
    }
    break;
  case NGHTTP2_DATA:
    if (!st || !(fr->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    if (s->server) server_half_close(st);
    else if (!st->discard) {
      st->recv_closed = 1;
      client_status(st, ST_INTERNAL, "server closed the stream without sending trailers");
    }
    break;
  case NGHTTP2_GOAWAY: {
    s->goaway_received = 1;
    lgrpc_h2_event *ev = ev_new(s, LGRPC_EV_GOAWAY, NULL);
    if (ev) {
      ev->last_stream_id = fr->goaway.last_stream_id;
      ev->code = (int)fr->goaway.error_code;
      ev_text(ev, (const char *)fr->goaway.opaque_data, fr->goaway.opaque_data_len);
    }
    break;
  }
  case NGHTTP2_PING:
    if ((fr->hd.flags & NGHTTP2_FLAG_ACK) && memcmp(fr->ping.opaque_data, "lgrpc-sd", 8) == 0 &&
        s->shutdown_pinged && !s->final_goaway) {
      s->final_goaway = 1;
      nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng),
                            NGHTTP2_NO_ERROR, NULL, 0);
    }
    break;
  default:
    break;
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
  lgrpc_h2_session *s = ud;
  nghttp2_session_consume_connection(ng, len);
  lgrpc_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
  if (!st || st->discard || st->closed) return 0;
  size_t pos = 0;
  while (pos < len) {
    size_t used = 0;
    lgrpc_frame_msg m;
    size_t before = lgrpc_frame_pending(&st->reader);
    int waiting = st->undelivered > 0;
    /* a message wholly inside this chunk is copied once, from nghttp2's input to the event */
    int borrowed = (used = lgrpc_frame_whole(&st->reader, data + pos, len - pos, &m)) != 0;
    int rc = borrowed ? 1 : lgrpc_frame_feed(&st->reader, data + pos, len - pos, &used, &m);
    pos += used;
    if (waiting) st->unconsumed += used;
    else nghttp2_session_consume_stream(ng, id, used);
    if (rc == 0) {
      buffered(s, 1, (long)(lgrpc_frame_pending(&st->reader) - before));
      break;
    }
    buffered(s, 1, -(long)before);
    if (rc == LGRPC_ENET_TOOBIG) {
      char msg[128];
      snprintf(msg, sizeof msg, "received message of %zu bytes exceeds the limit %zu", m.len,
               s->cfg.max_recv_message);
      lgrpc_frame_reader_free(&st->reader);
      if (s->server) server_abort(st, ST_RESOURCE, msg);
      else {
        st->discard = 1;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        client_status(st, ST_RESOURCE, msg);
      }
      return 0;
    }
    if (rc < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    /* a complete message; the compressed flag needs a grpc-encoding other than identity */
    if (m.compressed && !st->encoded) {
      const char *msg = "compressed message received without grpc-encoding";
      if (!borrowed) free(m.data);
      lgrpc_frame_reader_free(&st->reader);
      if (s->server) server_abort(st, ST_INTERNAL, msg);
      else {
        st->discard = 1;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        client_status(st, ST_INTERNAL, msg);
      }
      return 0;
    }
    const char *from = NULL;
    if (borrowed) {
      /* short: into the event's slot; else a copy the event owns, as the reader's would be */
      from = m.data;
      m.data = NULL;
      if (m.len >= EV_INLINE && !(m.data = malloc(m.len + 1))) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    lgrpc_h2_event *ev = ev_new(s, LGRPC_EV_MESSAGE, st);
    if (!ev) { free(m.data); return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; }
    ev->data = m.data ? m.data : ((ev_slot *)ev)->data;
    if (from) {
      if (m.len) memcpy(ev->data, from, m.len);
      ev->data[m.len] = 0;
    }
    ev->len = m.len;
    ev->compressed = m.compressed;
    st->undelivered++;
    st->held += m.len;
    buffered(s, 1, (long)m.len);
  }
  return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
  lgrpc_h2_session *s = ud;
  if (fr->hd.type == NGHTTP2_GOAWAY && fr->goaway.error_code != NGHTTP2_NO_ERROR && !s->fatal) {
    /* nghttp2 ends the connection over the peer's bytes: say why in CLOSED */
    s->fatal = 1;
    if (s->conn_err[0]) set_err(s, "UNAVAILABLE: HTTP/2 error: %s", s->conn_err, 0, 0);
    else set_err(s, "UNAVAILABLE: HTTP/2 error: sent GOAWAY with %s", nghttp2_http2_strerror(fr->goaway.error_code), 0, 0);
    return 0;
  }
  if (!s->server || fr->hd.type != NGHTTP2_HEADERS || !(fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  lgrpc_h2_stream *st = nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id);
  /* the server finished before the client half-closed: trailers, then RST_STREAM(NO_ERROR) */
  if (st && !st->recv_closed)
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, fr->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

/* nghttp2 could not send a HEADERS frame (e.g. a header block over its 64 KiB send limit). */
static int on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *fr, int lib_error, void *ud)
{
  lgrpc_h2_session *s = ud;
  if (fr->hd.type != NGHTTP2_HEADERS) return 0;
  lgrpc_h2_stream *st = nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id);
  if (!st) return 0;
  char msg[160];
  snprintf(msg, sizeof msg, "cannot send %s headers: %s", s->server ? "response" : "request",
           nghttp2_strerror(lib_error));
  if (s->server) {
    /* the client must not wait for a status that will never come */
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    server_cancel(st, ST_INTERNAL, -1, msg);
  } else {
    st->discard = 1;
    client_status(st, ST_INTERNAL, msg);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
  lgrpc_h2_session *s = ud;
  if (s->freeing) return 0;
  lgrpc_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
  if (!st) return 0;
  nghttp2_session_set_stream_user_data(ng, id, NULL);
  if (!st->ended) {
    if (s->server) {
      server_cancel(st, st->local_reset ? ST_CANCELLED : (code == NGHTTP2_NO_ERROR ? ST_INTERNAL : rst_to_grpc(code)),
                    (int)code, "stream reset by the client");
    } else {
      char msg[96];
      if (st->local_reset) snprintf(msg, sizeof msg, "stream cancelled");
      else if (code == NGHTTP2_REFUSED_STREAM) snprintf(msg, sizeof msg, "stream refused by the server (not processed)");
      else snprintf(msg, sizeof msg, "stream reset by the server with HTTP/2 error code %u", code);
      lgrpc_h2_event *ev = client_status(st, st->local_reset ? ST_CANCELLED : rst_to_grpc(code), msg);
      if (ev) {
        ev->h2code = (int)code;
        ev->refused = code == NGHTTP2_REFUSED_STREAM;
      }
    }
  }
  mark_closed(st);
  stream_maybe_free(st);
  return 0;
}

static int on_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *ud)
{
  lgrpc_h2_session *s = ud;
  (void)ng; (void)code;
  snprintf(s->conn_err, sizeof s->conn_err, "%.*s", (int)(len > 190 ? 190 : len), msg);
  return 0;
}

/* ---- session ---------------------------------------------------------------------------- */

void lgrpc_h2_config_default(lgrpc_h2_config *c)
{
  memset(c, 0, sizeof *c);
  c->max_recv_message = 4u << 20;
  c->max_send_message = 0;
  c->max_header_list = 16384;
  c->max_concurrent_streams = 1000;
  c->stream_window = 1u << 20;
  c->conn_window = 1u << 20;
  c->idle_timeout = 0;
  strcpy(c->encodings, "identity,gzip,deflate");
  strcpy(c->authority, "localhost");
  strcpy(c->scheme, "http");
}

lgrpc_h2_session *lgrpc_h2_session_new(int server, const lgrpc_h2_config *cfg)
{
  lgrpc_h2_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->cfg = *cfg;
  s->server = server;
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0) { free(s); return NULL; }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
  nghttp2_session_callbacks_set_error_callback2(cb, on_error);
  nghttp2_session_callbacks_set_send_data_callback(cb, send_data_cb);
  nghttp2_option *opt;
  if (nghttp2_option_new(&opt) != 0) { nghttp2_session_callbacks_del(cb); free(s); return NULL; }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  /* nghttp2 keeps closed streams for the priority tree (up to max_concurrent_streams of them,
   * ~0.3 KiB each): gRPC does not use priorities, and a busy connection would hold ~300 KiB */
  nghttp2_option_set_no_closed_streams(opt, 1);
  int rc = server ? nghttp2_session_server_new2(&s->ng, cb, s, opt)
                  : nghttp2_session_client_new2(&s->ng, cb, s, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rc != 0) { free(s); return NULL; }
  nghttp2_settings_entry iv[4];
  size_t n = 0;
  iv[n].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE; iv[n++].value = cfg->stream_window;
  iv[n].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE; iv[n++].value = (uint32_t)cfg->max_header_list;
  if (server) {
    iv[n].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS; iv[n++].value = cfg->max_concurrent_streams;
  } else {
    iv[n].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH; iv[n++].value = 0;
  }
  nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, n);
  if (!server && cfg->first_stream_id > 1) nghttp2_session_set_next_stream_id(s->ng, (int32_t)cfg->first_stream_id);
  nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)cfg->conn_window);
  COUNT(g_sessions, 1);
  return s;
}

void lgrpc_h2_session_free(lgrpc_h2_session *s)
{
  if (!s) return;
  s->freeing = 1;
  lgrpc_h2_event *ev = s->qhead;
  while (ev) {
    lgrpc_h2_event *n = ev->next;
    if (ev->type == LGRPC_EV_MESSAGE) buffered(s, 1, -(long)ev->len);
    ev_release(s, ev);
    ev = n;
  }
  while (s->streams) stream_release(s->streams);
  nghttp2_session_del(s->ng);
  s->hstream = NULL;
  spares_free(s);
  free(s->timers);
  COUNT(g_sessions, -1);
  free(s);
}

static void check_done(lgrpc_h2_session *s)
{
  if (!s->dead && !nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng)) {
    char e[256];
    memcpy(e, s->err, sizeof e);
    lgrpc_h2_terminate(s, s->fatal ? e : NULL);
  }
}

int lgrpc_h2_recv(lgrpc_h2_session *s, const uint8_t *data, size_t len)
{
  if (s->dead) { set_err(s, "UNAVAILABLE: connection closed%s", "", 0, 0); return LGRPC_ENET_CLOSED; }
  ssize_t n = nghttp2_session_mem_recv(s->ng, data, len);
  if (n < 0) {
    set_err(s, "UNAVAILABLE: HTTP/2 error: %s", nghttp2_strerror((int)n), 0, 0);
    /* nghttp2 has queued GOAWAY where the protocol asks for one; flush it, then the end */
    if (!nghttp2_session_want_write(s->ng)) {
      char e[256];
      memcpy(e, s->err, sizeof e);
      lgrpc_h2_terminate(s, e);
    } else {
      nghttp2_session_terminate_session(s->ng, NGHTTP2_PROTOCOL_ERROR);
    }
    return LGRPC_ENET_PROTO;
  }
  check_done(s);
  return 0;
}

int lgrpc_h2_send(lgrpc_h2_session *s, lgrpc_bytes *out)
{
  if (s->dead) return 0;
  for (;;) {
    const uint8_t *p;
    s->send_out = out;
    ssize_t n = nghttp2_session_mem_send(s->ng, &p);
    s->send_out = NULL;
    if (n < 0) {
      set_err(s, "UNAVAILABLE: HTTP/2 error: %s", nghttp2_strerror((int)n), 0, 0);
      char e[256];
      memcpy(e, s->err, sizeof e);
      lgrpc_h2_terminate(s, e);
      return LGRPC_ENET_PROTO;
    }
    if (n == 0) break;
    int rc = lgrpc_bytes_append(out, p, (size_t)n);
    if (rc) return rc;
  }
  check_done(s);
  return 0;
}

int lgrpc_h2_want_write(const lgrpc_h2_session *s)
{
  return !s->dead && nghttp2_session_want_write(s->ng);
}

int lgrpc_h2_alive(const lgrpc_h2_session *s) { return !s->dead; }

void lgrpc_h2_terminate(lgrpc_h2_session *s, const char *error)
{
  if (s->dead) return;
  s->dead = 1;
  for (lgrpc_h2_stream *st = s->streams, *next; st; st = next) {
    next = st->next;
    if (!st->closed) {
      if (s->server) server_cancel(st, ST_UNAVAILABLE, -1, "connection closed");
      else client_status(st, ST_UNAVAILABLE, error ? error : "connection closed");
      nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
      mark_closed(st);
    }
  }
  lgrpc_h2_event *ev = ev_new(s, LGRPC_EV_CLOSED, NULL);
  if (ev && error) ev_text(ev, error, strlen(error));
  /* streams were marked closed; free those nobody refers to */
  for (lgrpc_h2_stream *st = s->streams, *next; st; st = next) {
    next = st->next;
    stream_maybe_free(st);
  }
}

void lgrpc_h2_close(lgrpc_h2_session *s, int error)
{
  if (s->dead) return;
  nghttp2_session_terminate_session(s->ng, error ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_NO_ERROR);
}

void lgrpc_h2_shutdown(lgrpc_h2_session *s, int64_t grace)
{
  if (s->dead) return;
  if (!s->server) {
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    s->final_goaway = 1;
    return;
  }
  if (s->shutdown_pinged) return;
  nghttp2_submit_shutdown_notice(s->ng);
  nghttp2_submit_ping(s->ng, NGHTTP2_FLAG_NONE, (const uint8_t *)"lgrpc-sd");
  s->shutdown_pinged = 1;
  s->shutdown_deadline = s->now + (grace > 0 ? grace : 1000);
}

void lgrpc_h2_set_now(lgrpc_h2_session *s, int64_t now)
{
  if (s->clock_set && now > s->now) s->now = now;
}

void lgrpc_h2_tick(lgrpc_h2_session *s, int64_t now)
{
  if (!s->clock_set) {
    /* the first tick starts the idle clock: until then the session has no notion of time */
    s->clock_set = 1;
    if (s->nopen == 0) s->idle_since = now;
  }
  s->now = now;
  if (s->nopen == 0 && (s->nspare_events || s->nspare_streams || s->nspare_blocks || s->hblock.cap))
    spares_free(s);
  if (s->dead) return;
  while (s->ntimers && s->timers[0].when <= now) {
    int32_t id = s->timers[0].id;
    timer_pop(s);
    lgrpc_h2_stream *st = nghttp2_session_get_stream_user_data(s->ng, id);
    if (st && !st->ended && !st->closed) ev_new(s, LGRPC_EV_DEADLINE, st);
  }
  if (s->shutdown_pinged && !s->final_goaway && now >= s->shutdown_deadline) {
    s->final_goaway = 1;
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
  }
  if (s->cfg.idle_timeout > 0 && s->nopen == 0 && now - s->idle_since >= s->cfg.idle_timeout)
    nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
}

int lgrpc_h2_next_deadline(const lgrpc_h2_session *s, int64_t *when)
{
  int have = 0;
  int64_t w = 0;
  if (s->dead) return 0;
  if (s->ntimers) { w = s->timers[0].when; have = 1; }
  if (s->shutdown_pinged && !s->final_goaway && (!have || s->shutdown_deadline < w)) {
    w = s->shutdown_deadline;
    have = 1;
  }
  if (s->cfg.idle_timeout > 0 && s->nopen == 0 && s->clock_set) {
    int64_t t = s->idle_since + s->cfg.idle_timeout;
    if (!have || t < w) { w = t; have = 1; }
  }
  *when = w;
  return have;
}

lgrpc_h2_event *lgrpc_h2_take_events(lgrpc_h2_session *s)
{
  lgrpc_h2_event *out = NULL, *otail = NULL, *keep = NULL, *ktail = NULL;
  lgrpc_h2_event *ev = s->qhead;
  size_t held = 0;
  while (ev) {
    lgrpc_h2_event *n = ev->next;
    ev->next = NULL;
    if (ev->stream && ev->stream->abandoned) {
      s->nevents--;
      lgrpc_h2_event_free(s, ev);
    } else if (ev->stream && ev->stream->paused && ev->type != LGRPC_EV_DRAIN &&
               ev->type != LGRPC_EV_CANCEL && ev->type != LGRPC_EV_DEADLINE) {
      /* a pause holds back what the stream receives, not word that its sending may go on
       * (drain) nor that the call is over (cancel, deadline): a handler waiting to send while
       * its unread requests pile up must still wake */
      if (ktail) ktail->next = ev; else keep = ev;
      ktail = ev;
      held++;
    } else {
      s->nevents--;
      if (otail) otail->next = ev; else out = ev;
      otail = ev;
    }
    ev = n;
  }
  s->qhead = keep;
  s->qtail = ktail;
  s->nheld = held;
  return out;
}

int lgrpc_h2_has_ready_events(const lgrpc_h2_session *s)
{
  return s->nevents > s->nheld;
}

void lgrpc_h2_event_free(lgrpc_h2_session *s, lgrpc_h2_event *ev)
{
  lgrpc_h2_stream *st = ev->stream;
  if (ev->type == LGRPC_EV_MESSAGE && st) {
    buffered(s, 1, -(long)ev->len);
    st->held -= ev->len;
    if (--st->undelivered == 0 && st->unconsumed) {
      if (!st->closed) nghttp2_session_consume_stream(s->ng, st->id, st->unconsumed);
      st->unconsumed = 0;
    }
  }
  ev_release(s, ev);
  if (st) {
    st->pending--;
    stream_maybe_free(st);
  }
}

void lgrpc_h2_stats_get(const lgrpc_h2_session *s, lgrpc_h2_stats *o)
{
  o->streams = s->nstreams;
  o->open_streams = s->nopen;
  o->queued_events = s->nevents;
  o->buffered_in = s->buffered_in;
  o->buffered_out = s->buffered_out;
}

/* ---- stream operations ------------------------------------------------------------------ */

lgrpc_h2_stream *lgrpc_h2_request_new(lgrpc_h2_session *s, const lgrpc_h2_request *req, int *err)
{
  if (s->server) { set_err(s, "request on a server session%s", "", 0, 0); *err = LGRPC_ENET_STATE; return NULL; }
  if (s->dead) { set_err(s, "UNAVAILABLE: connection closed%s", "", 0, 0); *err = LGRPC_ENET_CLOSED; return NULL; }
  if (s->goaway_received || s->final_goaway) {
    set_err(s, "UNAVAILABLE: connection is going away (GOAWAY)%s", "", 0, 0);
    *err = LGRPC_ENET_CLOSED;
    return NULL;
  }
  if (req->pathlen < 2 || req->path[0] != '/') {
    set_err(s, "INTERNAL: invalid method path '%.100s'", req->path, 0, 0);
    *err = LGRPC_ENET_ARG;
    return NULL;
  }
  const char *ct = req->content_type ? req->content_type : "application/grpc";
  if (!grpc_content_type(ct, strlen(ct))) {
    set_err(s, "INTERNAL: content_type must start with application/grpc, got '%.100s'", ct, 0, 0);
    *err = LGRPC_ENET_ARG;
    return NULL;
  }
  nvlist l;
  nv_init(&l);
  int rc = nv_adds(&l, ":method", "POST");
  if (!rc) rc = nv_adds(&l, ":scheme", s->cfg.scheme);
  if (!rc) rc = nv_push(&l, ":path", 5, req->path, req->pathlen);
  if (!rc) {
    if (req->authority) rc = nv_push(&l, ":authority", 10, req->authority, req->authoritylen);
    else rc = nv_adds(&l, ":authority", s->cfg.authority);
  }
  if (!rc) rc = nv_adds(&l, "te", "trailers");
  if (!rc) rc = nv_adds(&l, "content-type", ct);
  if (!rc) {
    const char *pre = req->user_agent ? req->user_agent : s->cfg.user_agent;
    if (!*pre) rc = nv_adds(&l, "user-agent", LGRPC_UA);
    else {
      char ua[512];
      snprintf(ua, sizeof ua, "%s%s%s", pre, *pre ? " " : "", LGRPC_UA);
      rc = nv_add(&l, "user-agent", 10, ua, strlen(ua));
    }
  }
  if (!rc && req->timeout >= 0) {
    char tb[32];
    format_timeout(req->timeout, tb, sizeof tb);
    rc = nv_add(&l, "grpc-timeout", 12, tb, strlen(tb));
  }
  if (!rc && req->encoding) rc = nv_adds(&l, "grpc-encoding", req->encoding);
  if (!rc && req->accept_encoding) rc = nv_adds(&l, "grpc-accept-encoding", req->accept_encoding);
  if (!rc) rc = nv_add_md(s, &l, req->md, req->nmd);
  if (rc) { nv_free(&l); *err = rc; return NULL; }
  lgrpc_h2_stream *st = stream_new(s);
  if (!st) { nv_free(&l); *err = LGRPC_ENET_NOMEM; return NULL; }
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = read_cb;
  int32_t id = nghttp2_submit_request(s->ng, NULL, l.nv, l.n, &prd, st);
  nv_free(&l);
  if (id < 0) {
    set_err(s, id == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ? "UNAVAILABLE: connection is going away (%s)"
                                                        : "UNAVAILABLE: %s", nghttp2_strerror(id), 0, 0);
    st->ended = 1;
    mark_closed(st);
    stream_release(st);
    *err = LGRPC_ENET_CLOSED;
    return NULL;
  }
  st->id = id; /* the caller attaches its handle */
  if (req->timeout >= 0) timer_push(s, s->now + req->timeout, id);
  return st;
}

int32_t lgrpc_h2_stream_id(const lgrpc_h2_stream *st) { return st->id; }
lgrpc_h2_session *lgrpc_h2_stream_session(const lgrpc_h2_stream *st) { return st->sess; }
void lgrpc_h2_stream_attach(lgrpc_h2_stream *st)
{
  st->handles++;
  st->abandoned = 0;
}
int lgrpc_h2_stream_attached(const lgrpc_h2_stream *st) { return st->handles > 0; }

void lgrpc_h2_stream_detach(lgrpc_h2_stream *st)
{
  if (st->handles > 0) st->handles--;
  if (st->handles == 0 && !st->closed) {
    st->abandoned = 1;
    if (st->paused) st->sess->nheld = 0; /* its held events are dropped at the next take */
    st->paused = 0;
    /* A server stream whose status is already submitted is finished, not abandoned: let
     * nghttp2 write its trailers (send_status has arranged the RST_STREAM(NO_ERROR) it may need). */
    if (!st->sess->dead && !(st->sess->server && st->status_sent)) {
      st->local_reset = 1;
      st->ended = 1;
      nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    }
  }
  stream_maybe_free(st);
}

size_t lgrpc_h2_stream_buffered(const lgrpc_h2_stream *st) { return st->out.len - st->out_off; }

static int send_check(lgrpc_h2_stream *st)
{
  lgrpc_h2_session *s = st->sess;
  if (s->server && st->status_sent) { set_err(s, "status already sent%s", "", 0, 0); return LGRPC_ENET_STATE; }
  if (st->closed || s->dead) { set_err(s, "stream is closed%s", "", 0, 0); return LGRPC_ENET_CLOSED; }
  if (!s->server && (st->send_closed || st->ended)) {
    set_err(s, st->ended ? "call already finished%s" : "send side already closed%s", "", 0, 0);
    return LGRPC_ENET_STATE;
  }
  return 0;
}

int lgrpc_h2_send_message(lgrpc_h2_stream *st, const char *data, size_t len, int compressed)
{
  lgrpc_h2_session *s = st->sess;
  int rc = send_check(st);
  if (rc) return rc;
  if ((s->cfg.max_send_message && len > s->cfg.max_send_message) || len > UINT32_MAX) {
    set_err(s, "RESOURCE_EXHAUSTED: message of %s%lld bytes exceeds the send limit %lld", "",
            (long long)len, (long long)(s->cfg.max_send_message ? s->cfg.max_send_message : UINT32_MAX));
    return LGRPC_ENET_TOOBIG;
  }
  if (s->server && !st->headers_sent && (rc = submit_headers(st, NULL, 0)) != 0) return rc;
  unsigned char pre[LGRPC_FRAME_PREFIX];
  lgrpc_frame_prefix(pre, compressed, (uint32_t)len);
  if (st->out_off && st->out_off == st->out.len) st->out.len = st->out_off = 0;
  else if (st->out_off > st->out.len / 2) {
    /* a slow peer: keep the buffer from creeping forward forever */
    memmove(st->out.data, st->out.data + st->out_off, st->out.len - st->out_off);
    st->out.len -= st->out_off;
    st->out_off = 0;
  }
  if ((rc = lgrpc_bytes_reserve(&st->out, len + LGRPC_FRAME_PREFIX)) != 0) return rc;
  lgrpc_bytes_append(&st->out, pre, LGRPC_FRAME_PREFIX);
  lgrpc_bytes_append(&st->out, data, len);
  buffered(s, 0, (long)(len + LGRPC_FRAME_PREFIX));
  if (st->out.len - st->out_off > DRAIN_MARK) st->want_drain = 1;
  resume(st);
  return 0;
}

int lgrpc_h2_close_send(lgrpc_h2_stream *st)
{
  lgrpc_h2_session *s = st->sess;
  if (s->server) { set_err(s, "close_send is for client streams%s", "", 0, 0); return LGRPC_ENET_STATE; }
  if (st->send_closed) return 0;
  int rc = send_check(st);
  if (rc) return rc;
  st->send_closed = 1;
  st->eof_pending = 1;
  resume(st);
  return 0;
}

int lgrpc_h2_send_headers(lgrpc_h2_stream *st, const lgrpc_h2_md *md, size_t nmd)
{
  lgrpc_h2_session *s = st->sess;
  if (!s->server) { set_err(s, "send_headers is for server streams%s", "", 0, 0); return LGRPC_ENET_STATE; }
  int rc = send_check(st);
  if (rc) return rc;
  if (st->headers_sent) { set_err(s, "headers already sent%s", "", 0, 0); return LGRPC_ENET_STATE; }
  return submit_headers(st, md, nmd);
}

int lgrpc_h2_send_status(lgrpc_h2_stream *st, int code, const char *msg, size_t msglen,
                         const lgrpc_h2_md *md, size_t nmd, const char *details, size_t dlen)
{
  lgrpc_h2_session *s = st->sess;
  if (!s->server) { set_err(s, "send_status is for server streams%s", "", 0, 0); return LGRPC_ENET_STATE; }
  int rc = send_check(st);
  if (rc) return rc;
  rc = server_status(st, code, msg, msglen, md, nmd, details, dlen, NULL);
  if (rc == 0) st->ended = 1;
  return rc;
}

int lgrpc_h2_reset(lgrpc_h2_stream *st, uint32_t code)
{
  lgrpc_h2_session *s = st->sess;
  if (st->closed || s->dead || st->local_reset) return 0;
  st->local_reset = 1;
  st->discard = 1;
  nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, code);
  return 0;
}

void lgrpc_h2_pause(lgrpc_h2_stream *st, int paused)
{
  if (!paused && st->paused && st->sess) st->sess->nheld = 0; /* held events may go now */
  st->paused = paused ? 1 : 0;
}

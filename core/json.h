/* json.h — a strict JSON reader (RFC 8259) that reports values through a small sink, a writer
 * into a growable buffer, and the exact number and base64 conversions the proto3 JSON mapping
 * needs. No Lua here: core/lua_json.c builds Lua values from the sink events. */
#ifndef LGRPC_JSON_H
#define LGRPC_JSON_H
#include <stddef.h>
#include <stdint.h>

#define LGRPC_JSON_MAX_DEPTH 1000 /* hard ceiling for nesting; callers pick a lower limit */

enum {
  LGRPC_EJSON_SYNTAX = -301,   /* not JSON: unexpected character, missing ',' ... */
  LGRPC_EJSON_END = -302,      /* input ended inside a value */
  LGRPC_EJSON_TRAILING = -303, /* characters after the top-level value */
  LGRPC_EJSON_STRING = -304,   /* bad escape, control character or invalid UTF-8 in a string */
  LGRPC_EJSON_NUMBER = -305,   /* malformed number */
  LGRPC_EJSON_DEPTH = -306,    /* nesting deeper than the limit */
  LGRPC_EJSON_DUPKEY = -307,   /* an object names the same key twice (reported by sinks) */
  LGRPC_EJSON_NOMEM = -308,    /* allocation failed or output limit reached */
  LGRPC_EJSON_RANGE = -309,    /* number out of range, or not finite where a number is needed */
  LGRPC_EJSON_NOTINT = -310,   /* number is not integral */
  LGRPC_EJSON_BASE64 = -311,   /* not base64 */
  LGRPC_EJSON_SINK = -312      /* a sink callback failed for its own reason */
};

const char *lgrpc_json_strerror(int code);

/* ---- reader ---- */
enum { LGRPC_JSON_OBJECT = 1, LGRPC_JSON_ARRAY, LGRPC_JSON_STRING, LGRPC_JSON_INTEGER,
       LGRPC_JSON_NUMBER, LGRPC_JSON_TRUE, LGRPC_JSON_FALSE, LGRPC_JSON_NULL };

/* Events, in document order. Strings and keys arrive decoded (UTF-8, escapes resolved) and stay
 * valid until parse returns; numbers arrive as their source text, LGRPC_JSON_INTEGER when the
 * text has no fraction and no exponent. A callback returns 0 or a negative code to stop. */
typedef struct lgrpc_json_sink {
  int (*begin)(void *ud, int kind);                              /* OBJECT or ARRAY */
  int (*end)(void *ud, int kind);
  int (*key)(void *ud, const char *s, size_t n);
  int (*scalar)(void *ud, int kind, const char *s, size_t n);
} lgrpc_json_sink;

typedef struct lgrpc_json_error {
  int code;
  const char *message; /* static text: what was wrong ("invalid escape in string") */
  size_t offset;   /* byte offset into the input where the problem was seen */
  char path[256];  /* JSONPath of the value being read: $, $.a, $.a[3] (truncated with ...) */
} lgrpc_json_error;

/* Parses text[0..n). scratch must hold n bytes (decoded strings are never longer than their
 * source); it is owned by the caller. max_depth <= LGRPC_JSON_MAX_DEPTH. Returns 0 or a negative
 * code with *err filled. */
int lgrpc_json_parse(const char *text, size_t n, char *scratch, int max_depth,
                     const lgrpc_json_sink *sink, void *ud, lgrpc_json_error *err);

/* ---- numbers ---- */
/* Reads text as one JSON number (whole text, strict grammar) and gives its exact integer value as
 * sign and magnitude. 0, LGRPC_EJSON_NUMBER (not a number), LGRPC_EJSON_NOTINT (has a non-zero
 * fractional part) or LGRPC_EJSON_RANGE (magnitude >= 2^64). "-0", "1e5", "1.50e1" are fine. */
int lgrpc_json_number_integer(const char *text, size_t n, int *negative, uint64_t *magnitude);
/* Strict JSON number syntax check of the whole text. 1 if it is one. */
int lgrpc_json_is_number(const char *text, size_t n);
/* Shortest text that reads back as v, laid out as Python's repr() does ("1.0", "1e-05",
 * "1.2345678901234568e+17"). out holds at least 32 bytes. Returns the length, or
 * LGRPC_EJSON_RANGE for NaN and infinities. */
int lgrpc_json_format_double(double v, char *out);
/* The double with the fewest significant digits (6 or more) that rounds to the same float as f:
 * what protobuf's Python runtime prints for float fields. */
double lgrpc_json_float32_shortest(float f);

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF). */
int lgrpc_json_is_utf8(const char *s, size_t n);

/* ---- base64 ---- */
size_t lgrpc_json_base64_encoded_len(size_t n);
/* Standard alphabet with padding; out holds lgrpc_json_base64_encoded_len(n) bytes. */
size_t lgrpc_json_base64_encode(const unsigned char *in, size_t n, char *out);
/* Standard or URL-safe alphabet, padded or not. out holds n bytes. Returns the decoded length
 * or LGRPC_EJSON_BASE64. */
long lgrpc_json_base64_decode(const char *in, size_t n, unsigned char *out);

/* ---- writer ---- */
typedef struct lgrpc_json_writer {
  char *buf;         /* owned by the writer: lgrpc_json_writer_free releases it */
  size_t len, cap;
  size_t limit;      /* hard cap on output size */
  int indent;        /* 0: compact, no spaces; n > 0: n spaces per level, Python's layout */
  int ascii;         /* 1: escape every non-ASCII character as \uXXXX */
  int depth;
  int after_key;
  unsigned char has_items[LGRPC_JSON_MAX_DEPTH + 1];
} lgrpc_json_writer;

void lgrpc_json_writer_init(lgrpc_json_writer *w, int indent, int ascii, size_t limit);
void lgrpc_json_writer_free(lgrpc_json_writer *w);
int lgrpc_json_write_begin(lgrpc_json_writer *w, int kind);     /* OBJECT or ARRAY */
int lgrpc_json_write_end(lgrpc_json_writer *w, int kind);
int lgrpc_json_write_key(lgrpc_json_writer *w, const char *s, size_t n);
int lgrpc_json_write_string(lgrpc_json_writer *w, const char *s, size_t n); /* UTF-8 checked */
int lgrpc_json_write_raw(lgrpc_json_writer *w, const char *s, size_t n);    /* number, literal */
int lgrpc_json_write_double(lgrpc_json_writer *w, double v);               /* finite only */

#endif

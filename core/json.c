/* json.c — the strict JSON reader, the writer, exact number conversions and base64.
 * Owns no Lua and no I/O: input is a byte range, output is events (reader) or a buffer it owns
 * (writer). Nesting is walked with an explicit stack, never by C recursion. */
#include "json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lgrpc_json_strerror(int code)
{
  switch (code) {
  case 0: return "ok";
  case LGRPC_EJSON_SYNTAX: return "syntax error";
  case LGRPC_EJSON_END: return "unexpected end of input";
  case LGRPC_EJSON_TRAILING: return "unexpected characters after the JSON value";
  case LGRPC_EJSON_STRING: return "invalid string";
  case LGRPC_EJSON_NUMBER: return "invalid number";
  case LGRPC_EJSON_DEPTH: return "nesting too deep";
  case LGRPC_EJSON_DUPKEY: return "duplicate key";
  case LGRPC_EJSON_NOMEM: return "out of memory or output limit reached";
  case LGRPC_EJSON_RANGE: return "number out of range";
  case LGRPC_EJSON_NOTINT: return "not an integer";
  case LGRPC_EJSON_BASE64: return "invalid base64";
  case LGRPC_EJSON_SINK: return "rejected by the consumer";
  default: return "unknown error";
  }
}

/* ------------------------------------------------------------------------------------------ */
/* reader */

typedef struct frame {
  int is_array;
  size_t index;     /* arrays: element index */
  const char *key;  /* objects: current key (decoded, in scratch) */
  size_t keylen;
} frame;

typedef struct reader {
  const unsigned char *s;
  size_t n, p;
  char *scratch;
  size_t sp;
  frame *frames;
  int depth;
  const char *detail; /* a more precise message than the code's, or NULL */
} reader;

static int is_ident_char(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '@' || c == '$' || c == '-';
}

static void path_append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
  if (*len + n + 4 >= cap) {
    if (*len + 4 < cap) { memcpy(out + *len, "...", 3); *len += 3; }
    *len = cap; /* mark full */
    return;
  }
  memcpy(out + *len, s, n);
  *len += n;
}

static void build_path(reader *r, char *out, size_t cap)
{
  size_t len = 0;
  out[len++] = '$';
  for (int i = 0; i < r->depth && len < cap; i++) {
    frame *f = &r->frames[i];
    char tmp[32];
    if (f->is_array) {
      int k = snprintf(tmp, sizeof tmp, "[%zu]", f->index);
      path_append(out, cap, &len, tmp, (size_t)k);
    } else if (f->key) {
      int plain = f->keylen > 0;
      for (size_t j = 0; j < f->keylen; j++)
        if (!is_ident_char((unsigned char)f->key[j])) plain = 0;
      if (plain) {
        path_append(out, cap, &len, ".", 1);
        path_append(out, cap, &len, f->key, f->keylen);
      } else {
        path_append(out, cap, &len, "[\"", 2);
        for (size_t j = 0; j < f->keylen && len < cap; j++) {
          unsigned char c = (unsigned char)f->key[j];
          char ch = (c < 0x20 || c == '"' || c == '\\') ? '?' : (char)c;
          path_append(out, cap, &len, &ch, 1);
        }
        path_append(out, cap, &len, "\"]", 2);
      }
    }
  }
  if (len >= cap) len = cap - 1;
  out[len] = '\0';
}

static void skip_ws(reader *r)
{
  while (r->p < r->n) {
    unsigned char c = r->s[r->p];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    r->p++;
  }
}

static int hexval(unsigned char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(reader *r, unsigned *out)
{
  if (r->p + 4 > r->n) { r->detail = "truncated \\u escape"; return LGRPC_EJSON_STRING; }
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(r->s[r->p + i]);
    if (h < 0) { r->detail = "invalid \\u escape"; return LGRPC_EJSON_STRING; }
    v = v << 4 | (unsigned)h;
  }
  r->p += 4;
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the valid UTF-8 sequence at s (n bytes available; lead byte 0x80 or more),
 * or 0 when invalid (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp_out)
{
  unsigned c = s[0], cp;
  size_t len;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  if (cp_out) *cp_out = cp;
  return len;
}

int lgrpc_json_is_utf8(const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) { i++; continue; }
    size_t len = utf8_seq(s + i, n - i, NULL);
    if (!len) return 0;
    i += len;
  }
  return 1;
}

/* r->p at the opening quote. Decodes into scratch and points out and outlen there. */
static int read_string(reader *r, const char **out, size_t *outlen)
{
  char *o = r->scratch + r->sp, *start = o;
  r->p++;
  for (;;) {
    size_t run = r->p;
    while (run < r->n) {
      unsigned char c = r->s[run];
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      run++;
    }
    memcpy(o, r->s + r->p, run - r->p);
    o += run - r->p;
    r->p = run;
    if (r->p >= r->n) { r->detail = "unterminated string"; return LGRPC_EJSON_END; }
    unsigned char c = r->s[r->p];
    if (c == '"') { r->p++; break; }
    if (c < 0x20) { r->detail = "control character in string"; return LGRPC_EJSON_STRING; }
    if (c >= 0x80) {
      size_t len = utf8_seq(r->s + r->p, r->n - r->p, NULL);
      if (!len) { r->detail = "invalid UTF-8 in string"; return LGRPC_EJSON_STRING; }
      memcpy(o, r->s + r->p, len);
      o += len;
      r->p += len;
      continue;
    }
    /* escape */
    if (r->p + 1 >= r->n) { r->detail = "unterminated string"; return LGRPC_EJSON_END; }
    unsigned char e = r->s[r->p + 1];
    r->p += 2;
    switch (e) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      int rc = read_hex4(r, &cp);
      if (rc) return rc;
      if (cp >= 0xDC00 && cp <= 0xDFFF) { r->detail = "unpaired surrogate in \\u escape"; return LGRPC_EJSON_STRING; }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (r->p + 2 > r->n || r->s[r->p] != '\\' || r->s[r->p + 1] != 'u') {
          r->detail = "unpaired surrogate in \\u escape";
          return LGRPC_EJSON_STRING;
        }
        r->p += 2;
        rc = read_hex4(r, &lo);
        if (rc) return rc;
        if (lo < 0xDC00 || lo > 0xDFFF) { r->detail = "unpaired surrogate in \\u escape"; return LGRPC_EJSON_STRING; }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      /* a \u escape is 6 source bytes (12 for a pair), never shorter than its UTF-8 */
      o += put_utf8(o, cp);
      break;
    }
    default: r->detail = "invalid escape in string"; return LGRPC_EJSON_STRING;
    }
  }
  *out = start;
  *outlen = (size_t)(o - start);
  r->sp += *outlen;
  return 0;
}

/* Strict number grammar from s[0..n); returns the length matched (0: none) and sets *integer. */
static size_t scan_number(const unsigned char *s, size_t n, int *integer)
{
  size_t p = 0;
  *integer = 1;
  if (p < n && s[p] == '-') p++;
  if (p >= n) return 0;
  if (s[p] == '0') p++;
  else if (s[p] >= '1' && s[p] <= '9') { while (p < n && s[p] >= '0' && s[p] <= '9') p++; }
  else return 0;
  if (p < n && s[p] == '.') {
    p++;
    if (p >= n || s[p] < '0' || s[p] > '9') return 0;
    while (p < n && s[p] >= '0' && s[p] <= '9') p++;
    *integer = 0;
  }
  if (p < n && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    if (p < n && (s[p] == '+' || s[p] == '-')) p++;
    if (p >= n || s[p] < '0' || s[p] > '9') return 0;
    while (p < n && s[p] >= '0' && s[p] <= '9') p++;
    *integer = 0;
  }
  return p;
}

int lgrpc_json_is_number(const char *text, size_t n)
{
  int integer;
  return n > 0 && scan_number((const unsigned char *)text, n, &integer) == n;
}

static int read_number(reader *r, const lgrpc_json_sink *sink, void *ud)
{
  int integer;
  size_t len = scan_number(r->s + r->p, r->n - r->p, &integer);
  if (!len) { r->detail = "invalid number"; return LGRPC_EJSON_NUMBER; }
  /* a number must not run into letters or digits ("01", "1x") */
  if (r->p + len < r->n) {
    unsigned char c = r->s[r->p + len];
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
        c == '+' || c == '-') {
      r->detail = "invalid number";
      return LGRPC_EJSON_NUMBER;
    }
  }
  const char *text = (const char *)r->s + r->p;
  r->p += len;
  return sink->scalar(ud, integer ? LGRPC_JSON_INTEGER : LGRPC_JSON_NUMBER, text, len);
}

static int read_literal(reader *r, const char *word, int kind, const lgrpc_json_sink *sink, void *ud)
{
  size_t len = strlen(word);
  if (r->n - r->p < len || memcmp(r->s + r->p, word, len) != 0) {
    r->detail = "unexpected character";
    return LGRPC_EJSON_SYNTAX;
  }
  if (r->p + len < r->n && is_ident_char(r->s[r->p + len])) {
    r->detail = "unexpected character";
    return LGRPC_EJSON_SYNTAX;
  }
  r->p += len;
  return sink->scalar(ud, kind, word, len);
}

int lgrpc_json_parse(const char *text, size_t n, char *scratch, int max_depth,
                     const lgrpc_json_sink *sink, void *ud, lgrpc_json_error *err)
{
  frame frames[LGRPC_JSON_MAX_DEPTH];
  reader r = { (const unsigned char *)text, n, 0, scratch, 0, frames, 0, NULL };
  int rc = 0;
  if (max_depth > LGRPC_JSON_MAX_DEPTH || max_depth <= 0) max_depth = LGRPC_JSON_MAX_DEPTH;

value:
  skip_ws(&r);
  if (r.p >= r.n) { rc = LGRPC_EJSON_END; goto fail; }
  switch (r.s[r.p]) {
  case '{':
  case '[': {
    int is_array = r.s[r.p] == '[';
    if (r.depth >= max_depth) { rc = LGRPC_EJSON_DEPTH; goto fail; }
    rc = sink->begin(ud, is_array ? LGRPC_JSON_ARRAY : LGRPC_JSON_OBJECT);
    if (rc) goto fail;
    frames[r.depth].is_array = is_array;
    frames[r.depth].index = 0;
    frames[r.depth].key = NULL;
    frames[r.depth].keylen = 0;
    r.depth++;
    r.p++;
    skip_ws(&r);
    if (r.p < r.n && r.s[r.p] == (is_array ? ']' : '}')) {
      r.p++;
      r.depth--;
      rc = sink->end(ud, is_array ? LGRPC_JSON_ARRAY : LGRPC_JSON_OBJECT);
      if (rc) goto fail;
      goto after_value;
    }
    if (is_array) goto value;
    goto key;
  }
  case '"': {
    const char *s;
    size_t len;
    rc = read_string(&r, &s, &len);
    if (rc) goto fail;
    rc = sink->scalar(ud, LGRPC_JSON_STRING, s, len);
    if (rc) goto fail;
    goto after_value;
  }
  case 't': rc = read_literal(&r, "true", LGRPC_JSON_TRUE, sink, ud); break;
  case 'f': rc = read_literal(&r, "false", LGRPC_JSON_FALSE, sink, ud); break;
  case 'n': rc = read_literal(&r, "null", LGRPC_JSON_NULL, sink, ud); break;
  default:
    if (r.s[r.p] == '-' || (r.s[r.p] >= '0' && r.s[r.p] <= '9')) rc = read_number(&r, sink, ud);
    else { r.detail = "unexpected character"; rc = LGRPC_EJSON_SYNTAX; }
  }
  if (rc) goto fail;
  goto after_value;

key:
  skip_ws(&r);
  if (r.p >= r.n) { rc = LGRPC_EJSON_END; goto fail; }
  if (r.s[r.p] != '"') { r.detail = "expected a string key"; rc = LGRPC_EJSON_SYNTAX; goto fail; }
  {
    frame *f = &frames[r.depth - 1];
    rc = read_string(&r, &f->key, &f->keylen);
    if (rc) goto fail;
    rc = sink->key(ud, f->key, f->keylen);
    if (rc) goto fail;
  }
  skip_ws(&r);
  if (r.p >= r.n) { rc = LGRPC_EJSON_END; goto fail; }
  if (r.s[r.p] != ':') { r.detail = "expected ':' after an object key"; rc = LGRPC_EJSON_SYNTAX; goto fail; }
  r.p++;
  goto value;

after_value:
  skip_ws(&r);
  if (r.depth == 0) {
    if (r.p != r.n) { rc = LGRPC_EJSON_TRAILING; goto fail; }
    return 0;
  }
  if (r.p >= r.n) { rc = LGRPC_EJSON_END; goto fail; }
  {
    frame *f = &frames[r.depth - 1];
    unsigned char c = r.s[r.p];
    if (c == ',') {
      r.p++;
      if (f->is_array) { f->index++; goto value; }
      f->key = NULL;
      goto key;
    }
    if (c == (f->is_array ? ']' : '}')) {
      r.p++;
      r.depth--;
      rc = sink->end(ud, f->is_array ? LGRPC_JSON_ARRAY : LGRPC_JSON_OBJECT);
      if (rc) goto fail;
      goto after_value;
    }
    r.detail = f->is_array ? "expected ',' or ']'" : "expected ',' or '}'";
    rc = LGRPC_EJSON_SYNTAX;
  }

fail:
  err->code = rc;
  err->message = r.detail && rc != LGRPC_EJSON_SINK && rc != LGRPC_EJSON_DUPKEY && rc != LGRPC_EJSON_NOMEM
                   ? r.detail : lgrpc_json_strerror(rc);
  err->offset = r.p;
  build_path(&r, err->path, sizeof err->path);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* numbers */

int lgrpc_json_number_integer(const char *text, size_t n, int *negative, uint64_t *magnitude)
{
  const unsigned char *s = (const unsigned char *)text;
  int integer;
  if (n == 0 || scan_number(s, n, &integer) != n) return LGRPC_EJSON_NUMBER;
  size_t p = 0;
  *negative = 0;
  *magnitude = 0;
  if (s[p] == '-') { *negative = 1; p++; }
  size_t int0 = p;
  while (p < n && s[p] >= '0' && s[p] <= '9') p++;
  size_t int1 = p, frac0 = p, frac1 = p;
  if (p < n && s[p] == '.') {
    frac0 = ++p;
    while (p < n && s[p] >= '0' && s[p] <= '9') p++;
    frac1 = p;
  }
  long exp = 0;
  if (p < n && (s[p] == 'e' || s[p] == 'E')) {
    int eneg = 0;
    p++;
    if (s[p] == '+' || s[p] == '-') eneg = s[p++] == '-';
    while (p < n) {
      if (exp < 100000) exp = exp * 10 + (s[p] - '0');
      p++;
    }
    if (eneg) exp = -exp;
  }
  /* digits: int part then fraction part; the decimal point sits after `point` digits */
  size_t nint = int1 - int0, nfrac = frac1 - frac0, total = nint + nfrac;
  long point = (long)nint + exp;
#define DIGIT(i) ((size_t)(i) < nint ? s[int0 + (i)] : s[frac0 + (i) - nint])
  /* everything at or after the point must be zero */
  for (long i = point < 0 ? 0 : point; i < (long)total; i++)
    if (DIGIT(i) != '0') return LGRPC_EJSON_NOTINT;
  uint64_t mag = 0;
  for (long i = 0; i < point; i++) {
    if (i >= (long)total && mag == 0) break;
    unsigned d = i < (long)total ? (unsigned)(DIGIT(i) - '0') : 0;
    if (mag == 0 && d == 0) continue;
    if (mag > (UINT64_MAX - d) / 10) return LGRPC_EJSON_RANGE;
    mag = mag * 10 + d;
  }
#undef DIGIT
  *magnitude = mag;
  return 0;
}

int lgrpc_json_format_double(double v, char *out)
{
  char tmp[40];
  int prec;
  if (!isfinite(v)) return LGRPC_EJSON_RANGE;
  /* the fewest significant digits that read back as v: reading back only gets closer as digits
   * are added, so the smallest working precision can be found by bisection */
  int lo = 1, hi = 17;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    snprintf(tmp, sizeof tmp, "%.*e", mid - 1, v);
    if (strtod(tmp, NULL) == v) hi = mid;
    else lo = mid + 1;
  }
  prec = lo;
  snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
  /* tmp: [-]d[.ddd]e(+|-)xx */
  char digits[24];
  int nd = 0, neg = 0;
  const char *q = tmp;
  if (*q == '-') { neg = 1; q++; }
  while (*q && *q != 'e') {
    if (*q != '.') digits[nd++] = *q;
    q++;
  }
  int exp = atoi(q + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  char *o = out;
  if (neg) *o++ = '-';
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      for (int i = 0; i <= exp; i++) *o++ = i < nd ? digits[i] : '0';
      *o++ = '.';
      if (nd > exp + 1) for (int i = exp + 1; i < nd; i++) *o++ = digits[i];
      else *o++ = '0';
    } else {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -exp - 1; i++) *o++ = '0';
      for (int i = 0; i < nd; i++) *o++ = digits[i];
    }
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      for (int i = 1; i < nd; i++) *o++ = digits[i];
    }
    o += sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  }
  *o = '\0';
  return (int)(o - out);
}

double lgrpc_json_float32_shortest(float f)
{
  char tmp[40];
  double orig = (double)f;
  if (!isfinite(orig)) return orig;
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, orig);
    double r = strtod(tmp, NULL);
    if ((float)r == f) return r;
  }
  return orig;
}

/* ------------------------------------------------------------------------------------------ */
/* base64 */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t lgrpc_json_base64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

size_t lgrpc_json_base64_encode(const unsigned char *in, size_t n, char *out)
{
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64_chars[v >> 18];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = b64_chars[v >> 6 & 63];
    out[o++] = b64_chars[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)in[i] << 16;
    out[o++] = b64_chars[v >> 18];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (n - i == 2) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
    out[o++] = b64_chars[v >> 18];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = b64_chars[v >> 6 & 63];
    out[o++] = '=';
  }
  return o;
}

static int b64_value(unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

long lgrpc_json_base64_decode(const char *in, size_t n, unsigned char *out)
{
  const unsigned char *s = (const unsigned char *)in;
  size_t pad = 0;
  if (n > 0 && s[n - 1] == '=') { pad++; if (n > 1 && s[n - 2] == '=') pad++; }
  if (pad && n % 4 != 0) return LGRPC_EJSON_BASE64;
  size_t m = n - pad; /* data characters */
  if (m % 4 == 1) return LGRPC_EJSON_BASE64;
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < m; i++) {
    int v = b64_value(s[i]);
    if (v < 0) return LGRPC_EJSON_BASE64;
    acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  return (long)o;
}

/* ------------------------------------------------------------------------------------------ */
/* writer */

void lgrpc_json_writer_init(lgrpc_json_writer *w, int indent, int ascii, size_t limit)
{
  w->buf = NULL;
  w->len = w->cap = 0;
  w->limit = limit;
  w->indent = indent < 0 ? 0 : indent;
  w->ascii = ascii;
  w->depth = 0;
  w->after_key = 0;
  w->has_items[0] = 0;
}

void lgrpc_json_writer_free(lgrpc_json_writer *w)
{
  free(w->buf);
  w->buf = NULL;
  w->len = w->cap = 0;
}

static int reserve(lgrpc_json_writer *w, size_t extra)
{
  if (w->len + extra <= w->cap) return 0;
  if (w->len + extra > w->limit) return LGRPC_EJSON_NOMEM;
  size_t cap = w->cap ? w->cap : 256;
  while (cap < w->len + extra) cap *= 2;
  if (cap > w->limit) cap = w->limit;
  char *nb = realloc(w->buf, cap);
  if (!nb) return LGRPC_EJSON_NOMEM;
  w->buf = nb;
  w->cap = cap;
  return 0;
}

static int put(lgrpc_json_writer *w, const char *s, size_t n)
{
  int rc = reserve(w, n);
  if (rc) return rc;
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  return 0;
}

static int newline(lgrpc_json_writer *w, int depth)
{
  size_t k = (size_t)w->indent * (size_t)depth;
  int rc = reserve(w, k + 1);
  if (rc) return rc;
  w->buf[w->len++] = '\n';
  memset(w->buf + w->len, ' ', k);
  w->len += k;
  return 0;
}

static int before_value(lgrpc_json_writer *w)
{
  int rc;
  if (w->after_key) { w->after_key = 0; return 0; }
  if (w->depth == 0) return 0;
  if (w->has_items[w->depth] && (rc = put(w, ",", 1))) return rc;
  w->has_items[w->depth] = 1;
  return w->indent ? newline(w, w->depth) : 0;
}

int lgrpc_json_write_begin(lgrpc_json_writer *w, int kind)
{
  int rc;
  if (w->depth >= LGRPC_JSON_MAX_DEPTH) return LGRPC_EJSON_DEPTH;
  if ((rc = before_value(w))) return rc;
  if ((rc = put(w, kind == LGRPC_JSON_ARRAY ? "[" : "{", 1))) return rc;
  w->has_items[++w->depth] = 0;
  return 0;
}

int lgrpc_json_write_end(lgrpc_json_writer *w, int kind)
{
  int rc;
  if (w->depth <= 0) return LGRPC_EJSON_SYNTAX;
  if (w->has_items[w->depth] && w->indent && (rc = newline(w, w->depth - 1))) return rc;
  w->depth--;
  return put(w, kind == LGRPC_JSON_ARRAY ? "]" : "}", 1);
}

static int put_u_escape(lgrpc_json_writer *w, unsigned v)
{
  char tmp[8];
  snprintf(tmp, sizeof tmp, "\\u%04x", v);
  return put(w, tmp, 6);
}

static int put_string(lgrpc_json_writer *w, const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  int rc = put(w, "\"", 1);
  size_t i = 0;
  while (!rc && i < n) {
    size_t run = i;
    while (run < n && s[run] >= 0x20 && s[run] < 0x7F && s[run] != '"' && s[run] != '\\') run++;
    if (run > i) { if ((rc = put(w, str + i, run - i))) return rc; i = run; continue; }
    unsigned char c = s[i];
    const char *esc = NULL;
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    }
    if (esc) { rc = put(w, esc, 2); i++; continue; }
    if (c < 0x20) { rc = put_u_escape(w, c); i++; continue; }
    if (c == 0x7F) { rc = w->ascii ? put_u_escape(w, c) : put(w, str + i, 1); i++; continue; }
    unsigned cp;
    size_t len = utf8_seq(s + i, n - i, &cp);
    if (!len) return LGRPC_EJSON_STRING;
    if (!w->ascii) rc = put(w, str + i, len);
    else if (cp < 0x10000) rc = put_u_escape(w, cp);
    else {
      cp -= 0x10000;
      rc = put_u_escape(w, 0xD800 + (cp >> 10));
      if (!rc) rc = put_u_escape(w, 0xDC00 + (cp & 0x3FF));
    }
    i += len;
  }
  return rc ? rc : put(w, "\"", 1);
}

int lgrpc_json_write_key(lgrpc_json_writer *w, const char *s, size_t n)
{
  int rc;
  if ((rc = before_value(w))) return rc;
  if ((rc = put_string(w, s, n))) return rc;
  if ((rc = put(w, w->indent ? ": " : ":", w->indent ? 2 : 1))) return rc;
  w->after_key = 1;
  return 0;
}

int lgrpc_json_write_string(lgrpc_json_writer *w, const char *s, size_t n)
{
  int rc = before_value(w);
  return rc ? rc : put_string(w, s, n);
}

int lgrpc_json_write_raw(lgrpc_json_writer *w, const char *s, size_t n)
{
  int rc = before_value(w);
  return rc ? rc : put(w, s, n);
}

int lgrpc_json_write_double(lgrpc_json_writer *w, double v)
{
  char tmp[40];
  int k = lgrpc_json_format_double(v, tmp);
  if (k < 0) return k;
  return lgrpc_json_write_raw(w, tmp, (size_t)k);
}

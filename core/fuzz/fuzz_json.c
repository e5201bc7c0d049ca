/* fuzz_json.c — libFuzzer harness for core/json.c. Every input goes through the reader; what it
 * accepts is written back by the writer and must read again (compact and indented, ASCII and
 * UTF-8 output). The number, base64 and double-formatting helpers see the same bytes.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined core/fuzz/fuzz_json.c core/json.c */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../json.h"

typedef struct echo {
  lgrpc_json_writer *w;
} echo;

static int echo_begin(void *ud, int kind) { return lgrpc_json_write_begin(((echo *)ud)->w, kind); }
static int echo_end(void *ud, int kind) { return lgrpc_json_write_end(((echo *)ud)->w, kind); }
static int echo_key(void *ud, const char *s, size_t n) { return lgrpc_json_write_key(((echo *)ud)->w, s, n); }
static int echo_scalar(void *ud, int kind, const char *s, size_t n)
{
  echo *e = ud;
  if (kind == LGRPC_JSON_STRING) return lgrpc_json_write_string(e->w, s, n);
  return lgrpc_json_write_raw(e->w, s, n);
}
static const lgrpc_json_sink echo_sink = { echo_begin, echo_end, echo_key, echo_scalar };

static int nop_begin(void *ud, int kind) { (void)ud; (void)kind; return 0; }
static int nop_key(void *ud, const char *s, size_t n) { (void)ud; (void)s; (void)n; return 0; }
static int nop_scalar(void *ud, int kind, const char *s, size_t n) { (void)ud; (void)kind; (void)s; (void)n; return 0; }
static const lgrpc_json_sink nop_sink = { nop_begin, nop_begin, nop_key, nop_scalar };

static void roundtrip(const char *data, size_t size, int indent, int ascii)
{
  char *scratch = malloc(size ? size : 1); /* owner: this function */
  lgrpc_json_writer w;
  lgrpc_json_error err;
  echo e = { &w };
  lgrpc_json_writer_init(&w, indent, ascii, (size_t)1 << 24);
  int rc = lgrpc_json_parse(data, size, scratch, 64, &echo_sink, &e, &err);
  if (rc == 0) {
    char *again = malloc(w.len ? w.len : 1); /* owner: this block */
    if (lgrpc_json_parse(w.buf, w.len, again, 64, &nop_sink, NULL, &err) != 0) {
      fprintf(stderr, "writer output does not read back: %s at %zu\n", err.message, err.offset);
      abort();
    }
    free(again);
  } else if (err.offset > size || !err.message || err.path[0] != '$') {
    abort();
  }
  lgrpc_json_writer_free(&w);
  free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  roundtrip(text, size, 0, 1);
  roundtrip(text, size, 2, 0);

  int neg;
  uint64_t mag;
  int rc = lgrpc_json_number_integer(text, size, &neg, &mag);
  if (rc == 0 && !lgrpc_json_is_number(text, size)) abort();

  unsigned char *out = malloc(size ? size : 1); /* owner: this function */
  long k = lgrpc_json_base64_decode(text, size, out);
  if (k >= 0) {
    char *enc = malloc(lgrpc_json_base64_encoded_len((size_t)k) + 1); /* owner: this block */
    lgrpc_json_base64_encode(out, (size_t)k, enc);
    free(enc);
  }
  free(out);

  if (size >= sizeof(double)) {
    double v;
    char buf[48];
    memcpy(&v, data, sizeof v);
    int len = lgrpc_json_format_double(v, buf);
    if (isfinite(v) && (len <= 0 || strtod(buf, NULL) != v)) abort();
    float f = (float)v;
    if (isfinite(f) && (float)lgrpc_json_float32_shortest(f) != f) abort();
  }
  return 0;
}

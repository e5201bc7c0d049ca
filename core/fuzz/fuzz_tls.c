/* fuzz_tls.c — libFuzzer harness for the TLS filter (core/tls.c) as a driver uses it.
 * A certificate is made once in memory; each input then drives one of three scenes:
 * 0: the input, cut into chunks, is what a client sends to a server (handshake parsing);
 * 1: the input is what a server answers to a real client's hello;
 * 2: a real client and server handshake through a channel that flips, drops and splits bytes
 *    as the input says, then exchange plaintext taken from the input.
 * Any crash, leak or sanitizer report is a bug; so is plaintext that differs from what was sent
 * over an undamaged channel.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined core/fuzz/fuzz_tls.c core/tls.c core/frame.c -lssl -lcrypto */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "../tls.h"

static lgrpc_tls_ctx *server_ctx, *client_ctx, *mtls_ctx;

static char *pem_of(int (*write)(BIO *, void *), void *obj)
{
  BIO *b = BIO_new(BIO_s_mem());
  write(b, obj);
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *s = malloc((size_t)n + 1);
  memcpy(s, p, (size_t)n);
  s[n] = 0;
  BIO_free(b);
  return s;
}

static int write_cert(BIO *b, void *x) { return PEM_write_bio_X509(b, x); }
static int write_key(BIO *b, void *k) { return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL); }

/* a self-signed CA certificate for localhost: the server's certificate and the client's trust */
static void make_identity(char **cert, char **key)
{
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
  X509_set_pubkey(x, k);
  X509_NAME *n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, n);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  const char *exts[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                           {"subjectAltName", "DNS:localhost,IP:127.0.0.1,URI:spiffe://fuzz/x"}};
  for (int i = 0; i < 2; i++) {
    X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  X509_sign(x, k, EVP_sha256());
  *cert = pem_of(write_cert, x);
  *key = pem_of(write_key, k);
  X509_free(x);
  EVP_PKEY_free(k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc; (void)argv;
  char *cert, *key, err[256];
  make_identity(&cert, &key);
  lgrpc_tls_options o;
  memset(&o, 0, sizeof o);
  o.server = 1; o.cert = cert; o.key = key; o.handshake_timeout = 1000;
  server_ctx = lgrpc_tls_ctx_new(&o, err, sizeof err);
  o.ca = cert; o.client_auth = LGRPC_TLS_AUTH_REQUIRE;
  mtls_ctx = lgrpc_tls_ctx_new(&o, err, sizeof err);
  memset(&o, 0, sizeof o);
  o.ca = cert; o.cert = cert; o.key = key;
  client_ctx = lgrpc_tls_ctx_new(&o, err, sizeof err);
  free(cert);
  free(key);
  if (!server_ctx || !client_ctx || !mtls_ctx) abort();
  return 0;
}

/* feeds `data` to t in chunks whose sizes come from the data itself; pumps encode between */
static void feed(lgrpc_tls *t, const uint8_t *data, size_t size)
{
  lgrpc_bytes plain = {0}, raw = {0};
  size_t off = 0;
  int64_t now = 0;
  while (off < size) {
    size_t chunk = 1 + (data[off] % 97) * 7;
    if (chunk > size - off) chunk = size - off;
    plain.len = 0;
    int rc = lgrpc_tls_decode(t, (const char *)data + off, chunk, &plain);
    raw.len = 0;
    lgrpc_tls_encode(t, plain.len ? "pong" : NULL, plain.len ? 4 : 0, &raw);
    lgrpc_tls_tick(t, now += 100);
    if (rc < 0 && lgrpc_tls_error(t)[0] == 0) abort(); /* a failure always has a reason */
    off += chunk;
  }
  (void)lgrpc_tls_peer(t);
  lgrpc_bytes_free(&plain);
  lgrpc_bytes_free(&raw);
}

/* moves `from`'s output to `to`, damaged as the knobs say */
static void carry(lgrpc_tls *from, lgrpc_tls *to, const uint8_t **knobs, size_t *left, lgrpc_bytes *got,
                  int *damaged)
{
  lgrpc_bytes raw = {0};
  lgrpc_tls_encode(from, NULL, 0, &raw);
  if (raw.len && *left >= 2) {
    uint8_t op = (*knobs)[0], arg = (*knobs)[1];
    *knobs += 2;
    *left -= 2;
    if (op % 8 == 1) { raw.data[arg % raw.len] ^= (char)(1 + op); *damaged = 1; }
    else if (op % 8 == 2 && raw.len > 1) { raw.len -= 1 + arg % (raw.len - 1); *damaged = 1; }
  }
  size_t off = 0;
  while (off < raw.len) {
    size_t chunk = raw.len - off > 300 ? 300 : raw.len - off;
    lgrpc_tls_decode(to, raw.data + off, chunk, got);
    off += chunk;
  }
  lgrpc_bytes_free(&raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  uint8_t scene = data[0] % 3, flags = size > 1 ? data[1] : 0;
  data += 1;
  size -= 1;
  char err[256];
  if (scene == 0) {
    lgrpc_tls *s = lgrpc_tls_new(flags & 1 ? mtls_ctx : server_ctx, NULL, err, sizeof err);
    feed(s, data, size);
    lgrpc_tls_free(s);
  } else if (scene == 1) {
    lgrpc_tls *c = lgrpc_tls_new(client_ctx, flags & 1 ? "127.0.0.1" : "localhost", err, sizeof err);
    lgrpc_bytes hello = {0};
    lgrpc_tls_encode(c, "ping", 4, &hello);
    lgrpc_bytes_free(&hello);
    feed(c, data, size);
    lgrpc_tls_free(c);
  } else {
    lgrpc_tls *c = lgrpc_tls_new(client_ctx, "localhost", err, sizeof err);
    lgrpc_tls *s = lgrpc_tls_new(flags & 1 ? mtls_ctx : server_ctx, NULL, err, sizeof err);
    const uint8_t *knobs = data;
    size_t left = size / 2;
    const uint8_t *text = data + left;
    size_t textlen = size - left;
    lgrpc_bytes to_s = {0}, to_c = {0}, raw = {0};
    int damaged = 0;
    lgrpc_tls_encode(c, (const char *)text, textlen, &raw); /* held until the handshake ends */
    lgrpc_tls_decode(s, raw.data, raw.len, &to_s);
    for (int round = 0; round < 8; round++) {
      carry(s, c, &knobs, &left, &to_c, &damaged);
      carry(c, s, &knobs, &left, &to_s, &damaged);
    }
    if (!damaged && lgrpc_tls_state(c) == LGRPC_TLS_OPEN && lgrpc_tls_state(s) == LGRPC_TLS_OPEN &&
        (to_s.len != textlen || (textlen && memcmp(to_s.data, text, textlen) != 0)))
      abort(); /* an undamaged channel must deliver exactly what was sent */
    if (!damaged && (lgrpc_tls_state(c) != LGRPC_TLS_OPEN || lgrpc_tls_state(s) != LGRPC_TLS_OPEN))
      abort(); /* and an undamaged handshake must succeed */
    lgrpc_tls_close(c);
    carry(c, s, &knobs, &left, &to_s, &damaged);
    lgrpc_bytes_free(&to_s);
    lgrpc_bytes_free(&to_c);
    lgrpc_bytes_free(&raw);
    lgrpc_tls_free(c);
    lgrpc_tls_free(s);
  }
  return 0;
}

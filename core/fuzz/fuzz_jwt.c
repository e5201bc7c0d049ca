/* fuzz_jwt.c — libFuzzer harness for core/jwt.c. The first byte picks a mode: the rest is a
 * token verified against a key set (oct, RSA, P-256, P-384); or a header and a payload (split at
 * the first NUL) that the harness signs itself with HS256 or ES256, and whose signature jwt.c
 * must then accept whenever it parses them; or key material (PEM, RSA n/e, EC x/y).
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined core/fuzz/fuzz_jwt.c core/jwt.c core/json.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include "../json.h"
#include "../jwt.h"

static const char secret[] = "the-harness-secret-no-seed-knows";
static lgrpc_jwt_keyset keys;
static EVP_PKEY *ec_private; /* owner: the process */

static void must(int ok, const char *what)
{
  if (!ok) { fprintf(stderr, "fuzz_jwt setup: %s\n", what); abort(); }
}

static void add_public(EVP_PKEY *priv, const char *kid, int p384)
{
  BIGNUM *x = NULL, *y = NULL;
  unsigned char xb[48], yb[48];
  size_t size = p384 ? 48 : 32;
  must(EVP_PKEY_get_bn_param(priv, "qx", &x) && EVP_PKEY_get_bn_param(priv, "qy", &y), "ec point");
  must(BN_bn2binpad(x, xb, (int)size) > 0 && BN_bn2binpad(y, yb, (int)size) > 0, "ec pad");
  lgrpc_jwt_key *k;
  must(lgrpc_jwt_key_ec(p384 ? "P-384" : "P-256", xb, size, yb, size, kid, 0, &k) == 0, "ec key");
  must(lgrpc_jwt_keyset_add(&keys, k) == 0, "add ec");
  BN_free(x);
  BN_free(y);
}

static void setup(void)
{
  lgrpc_jwt_key *k;
  lgrpc_jwt_keyset_init(&keys);
  must(lgrpc_jwt_key_oct((const unsigned char *)secret, sizeof secret - 1, "hs", 0, &k) == 0, "oct");
  must(lgrpc_jwt_keyset_add(&keys, k) == 0, "add oct");
  ec_private = EVP_EC_gen("P-256");
  must(ec_private != NULL, "P-256 key");
  add_public(ec_private, "ec256", 0);
  EVP_PKEY *p384 = EVP_EC_gen("P-384");
  must(p384 != NULL, "P-384 key");
  add_public(p384, "ec384", 1);
  EVP_PKEY_free(p384);
  EVP_PKEY *rsa = EVP_RSA_gen(2048);
  must(rsa != NULL, "RSA key");
  BIGNUM *n = NULL, *e = NULL;
  must(EVP_PKEY_get_bn_param(rsa, "n", &n) && EVP_PKEY_get_bn_param(rsa, "e", &e), "rsa params");
  unsigned char nb[256], eb[8];
  int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
  must(lgrpc_jwt_key_rsa(nb, (size_t)nl, eb, (size_t)el, "rsa", 0, &k) == 0, "rsa key");
  must(lgrpc_jwt_keyset_add(&keys, k) == 0, "add rsa");
  BN_free(n);
  BN_free(e);
  EVP_PKEY_free(rsa);
}

/* base64url without padding of in[0..n) into out (4 * n / 3 + 4 bytes); returns the length */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
  size_t len = lgrpc_json_base64_encode(in, n, out);
  while (len > 0 && out[len - 1] == '=') len--;
  for (size_t i = 0; i < len; i++) {
    if (out[i] == '+') out[i] = '-';
    else if (out[i] == '/') out[i] = '_';
  }
  return len;
}

/* Signs header.payload with HS256 (es = 0) or ES256 and checks that jwt.c agrees. */
static void sign_and_check(const unsigned char *data, size_t size, int es)
{
  const unsigned char *nul = memchr(data, 0, size);
  size_t hlen = nul ? (size_t)(nul - data) : size;
  const unsigned char *payload = nul ? nul + 1 : data + size;
  size_t plen = nul ? size - hlen - 1 : 0;
  char *token = malloc(2 * (size + 200) + 16); /* owner: this function */
  size_t n = b64url(data, hlen, token);
  token[n++] = '.';
  n += b64url(payload, plen, token + n);
  size_t signing_len = n;
  unsigned char sig[256];
  size_t siglen = 0;
  if (!es) {
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)sizeof secret - 1, (const unsigned char *)token, signing_len,
         sig, &len);
    siglen = len;
  } else {
    unsigned char der[128];
    size_t derlen = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    must(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ec_private) == 1 &&
         EVP_DigestSign(md, der, &derlen, (const unsigned char *)token, signing_len) == 1, "sign");
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    must(s != NULL, "der");
    BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32);
    ECDSA_SIG_free(s);
    siglen = 64;
  }
  token[n++] = '.';
  n += b64url(sig, siglen, token + n);
  lgrpc_jwt_token t;
  if (lgrpc_jwt_parse(token, n, &t) == 0) {
    int want = es ? LGRPC_JWT_ES256 : LGRPC_JWT_HS256;
    const char *kid = es ? "ec256" : "hs";
    if (t.alg == want && (!t.kid || strcmp(t.kid, kid) == 0)) {
      int rc = lgrpc_jwt_keyset_verify(&keys, &t, NULL);
      if (rc != 0) {
        fprintf(stderr, "a token the harness signed does not verify: %s\n", lgrpc_jwt_strerror(rc));
        abort();
      }
    }
    lgrpc_jwt_token_free(&t);
  }
  free(token);
}

static void keys_from(const unsigned char *data, size_t size)
{
  lgrpc_jwt_key *k = NULL;
  if (lgrpc_jwt_key_pem((const char *)data, size, "x", 0, &k) == 0) lgrpc_jwt_key_free(k);
  size_t half = size / 2;
  k = NULL;
  if (lgrpc_jwt_key_rsa(data, half, data + half, size - half, NULL, 0, &k) == 0)
    lgrpc_jwt_key_free(k);
  k = NULL;
  if (lgrpc_jwt_key_ec(size & 1 ? "P-384" : "P-256", data, half, data + half, size - half, NULL,
                       LGRPC_JWT_ES256, &k) == 0)
    lgrpc_jwt_key_free(k);
  k = NULL;
  if (lgrpc_jwt_key_oct(data, size, NULL, LGRPC_JWT_RS256, &k) == 0) abort(); /* alg/kty mismatch */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!keys.keys) setup();
  if (size < 1) return 0;
  int mode = data[0] % 4;
  data++;
  size--;
  if (mode == 0) {
    lgrpc_jwt_policy p = { .now = 1700000000, .leeway = 30 };
    lgrpc_jwt_token t;
    if (lgrpc_jwt_verify((const char *)data, size, &keys, &p, &t) == 0) {
      /* nobody can sign for these fresh keys but the harness itself */
      fprintf(stderr, "a token verified that nobody signed\n");
      abort();
    }
    const char *name = lgrpc_jwt_errname(lgrpc_jwt_parse((const char *)data, size, &t));
    if (!name) abort();
    lgrpc_jwt_token_free(&t);
  } else if (mode == 1 || mode == 2) {
    sign_and_check(data, size, mode == 2);
  } else {
    keys_from(data, size);
  }
  return 0;
}

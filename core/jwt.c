/* jwt.c — JWS compact tokens: base64url split, header and registered claims read through the
 * JSON reader (core/json.c), signatures checked with OpenSSL 3 (HMAC, RSA PKCS#1 v1.5, ECDSA
 * with raw r||s), keys from JWK parts or PEM. Never reads a clock or a file, never trusts a
 * header's choice of key type: every algorithm is bound to one kind of key. */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include "json.h"
#include "jwt.h"

struct lgrpc_jwt_key {
  int kty;
  int alg;               /* 0: any algorithm of the key type */
  char *kid;             /* owned, or NULL */
  unsigned char *secret; /* owned: oct keys */
  size_t secret_len;
  EVP_PKEY *pkey;        /* owned: RSA and EC keys */
};

/* ---- errors and names ---- */

const char *lgrpc_jwt_strerror(int code)
{
  switch (code) {
  case LGRPC_EJWT_FORMAT: return "malformed token: expected three base64url parts";
  case LGRPC_EJWT_HEADER: return "malformed token header";
  case LGRPC_EJWT_ALG: return "algorithm not accepted";
  case LGRPC_EJWT_CLAIMS: return "malformed token claims";
  case LGRPC_EJWT_NOKEY: return "no key for the token's key id and algorithm";
  case LGRPC_EJWT_SIGNATURE: return "signature does not verify";
  case LGRPC_EJWT_EXPIRED: return "token expired";
  case LGRPC_EJWT_NOTYET: return "token not valid yet";
  case LGRPC_EJWT_ISSUER: return "issuer not accepted";
  case LGRPC_EJWT_AUDIENCE: return "audience not accepted";
  case LGRPC_EJWT_KEY: return "unusable key";
  case LGRPC_EJWT_NOMEM: return "out of memory";
  case LGRPC_EJWT_MISSING: return "token has no expiry (exp)";
  default: return "unknown error";
  }
}

const char *lgrpc_jwt_errname(int code)
{
  switch (code) {
  case LGRPC_EJWT_FORMAT: return "FORMAT";
  case LGRPC_EJWT_HEADER: return "HEADER";
  case LGRPC_EJWT_ALG: return "ALG";
  case LGRPC_EJWT_CLAIMS: return "CLAIMS";
  case LGRPC_EJWT_NOKEY: return "NOKEY";
  case LGRPC_EJWT_SIGNATURE: return "SIGNATURE";
  case LGRPC_EJWT_EXPIRED: return "EXPIRED";
  case LGRPC_EJWT_NOTYET: return "NOTYET";
  case LGRPC_EJWT_ISSUER: return "ISSUER";
  case LGRPC_EJWT_AUDIENCE: return "AUDIENCE";
  case LGRPC_EJWT_KEY: return "KEY";
  case LGRPC_EJWT_NOMEM: return "NOMEM";
  case LGRPC_EJWT_MISSING: return "MISSING";
  default: return "UNKNOWN";
  }
}

static const char *const alg_names[LGRPC_JWT_ALG_COUNT] = {
  NULL, "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"
};

int lgrpc_jwt_alg_from_name(const char *name, size_t n)
{
  for (int a = 1; a < LGRPC_JWT_ALG_COUNT; a++)
    if (strlen(alg_names[a]) == n && memcmp(alg_names[a], name, n) == 0) return a;
  return 0;
}

const char *lgrpc_jwt_alg_name(int alg)
{
  return (alg > 0 && alg < LGRPC_JWT_ALG_COUNT) ? alg_names[alg] : NULL;
}

int lgrpc_jwt_alg_kty(int alg)
{
  switch (alg) {
  case LGRPC_JWT_HS256: case LGRPC_JWT_HS384: case LGRPC_JWT_HS512: return LGRPC_JWT_KTY_OCT;
  case LGRPC_JWT_RS256: case LGRPC_JWT_RS384: case LGRPC_JWT_RS512: return LGRPC_JWT_KTY_RSA;
  case LGRPC_JWT_ES256: return LGRPC_JWT_KTY_EC256;
  case LGRPC_JWT_ES384: return LGRPC_JWT_KTY_EC384;
  default: return 0;
  }
}

static const EVP_MD *alg_md(int alg)
{
  switch (alg) {
  case LGRPC_JWT_HS256: case LGRPC_JWT_RS256: case LGRPC_JWT_ES256: return EVP_sha256();
  case LGRPC_JWT_HS384: case LGRPC_JWT_RS384: case LGRPC_JWT_ES384: return EVP_sha384();
  default: return EVP_sha512();
  }
}

/* ---- keys ---- */

static int key_new(int kty, const char *kid, int alg, lgrpc_jwt_key **out)
{
  if (alg != 0 && lgrpc_jwt_alg_kty(alg) != kty) return LGRPC_EJWT_ALG;
  lgrpc_jwt_key *k = calloc(1, sizeof *k); /* owner: the caller, then a key set */
  if (!k) return LGRPC_EJWT_NOMEM;
  k->kty = kty;
  k->alg = alg;
  if (kid) {
    k->kid = strdup(kid);
    if (!k->kid) { free(k); return LGRPC_EJWT_NOMEM; }
  }
  *out = k;
  return 0;
}

void lgrpc_jwt_key_free(lgrpc_jwt_key *k)
{
  if (!k) return;
  if (k->secret) {
    OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
  }
  EVP_PKEY_free(k->pkey);
  free(k->kid);
  free(k);
}

int lgrpc_jwt_key_kty(const lgrpc_jwt_key *k) { return k->kty; }
const char *lgrpc_jwt_key_kid(const lgrpc_jwt_key *k) { return k->kid; }

int lgrpc_jwt_key_oct(const unsigned char *secret, size_t n, const char *kid, int alg,
                      lgrpc_jwt_key **out)
{
  if (n == 0) return LGRPC_EJWT_KEY;
  lgrpc_jwt_key *k;
  int rc = key_new(LGRPC_JWT_KTY_OCT, kid, alg, &k);
  if (rc) return rc;
  k->secret = malloc(n); /* owner: k */
  if (!k->secret) { lgrpc_jwt_key_free(k); return LGRPC_EJWT_NOMEM; }
  memcpy(k->secret, secret, n);
  k->secret_len = n;
  *out = k;
  return 0;
}

/* The key type of an RSA or EC public key; 0 for anything else. */
static int pkey_kty(EVP_PKEY *pkey)
{
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    return EVP_PKEY_get_bits(pkey) >= LGRPC_JWT_MIN_RSA_BITS ? LGRPC_JWT_KTY_RSA : 0;
  }
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64];
    size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &len))
      return 0;
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) return LGRPC_JWT_KTY_EC256;
    if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) return LGRPC_JWT_KTY_EC384;
  }
  return 0;
}

/* Builds a public EVP_PKEY of `type` from params; checks it. NULL on failure. */
static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM *params, int check)
{
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (!ctx) return NULL;
  if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
    EVP_PKEY_CTX_free(ctx);
    return NULL;
  }
  EVP_PKEY_CTX_free(ctx);
  if (check) {
    EVP_PKEY_CTX *cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = cctx && EVP_PKEY_public_check(cctx) == 1;
    EVP_PKEY_CTX_free(cctx);
    if (!ok) { EVP_PKEY_free(pkey); return NULL; }
  }
  return pkey;
}

int lgrpc_jwt_key_rsa(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
                      const char *kid, int alg, lgrpc_jwt_key **out)
{
  if (nlen == 0 || elen == 0 || elen > 8) return LGRPC_EJWT_KEY;
  int rc = LGRPC_EJWT_KEY;
  BIGNUM *bn_n = BN_bin2bn(n, (int)nlen, NULL), *bn_e = BN_bin2bn(e, (int)elen, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY *pkey = NULL;
  if (!bn_n || !bn_e || !bld) { rc = LGRPC_EJWT_NOMEM; goto done; }
  if (BN_num_bits(bn_n) < LGRPC_JWT_MIN_RSA_BITS || !BN_is_odd(bn_e) || BN_is_one(bn_e)) goto done;
  if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
      !(params = OSSL_PARAM_BLD_to_param(bld))) { rc = LGRPC_EJWT_NOMEM; goto done; }
  pkey = pkey_from_params("RSA", params, 0);
  if (!pkey) goto done;
  lgrpc_jwt_key *k;
  rc = key_new(LGRPC_JWT_KTY_RSA, kid, alg, &k);
  if (rc) goto done;
  k->pkey = pkey; /* owner: k */
  pkey = NULL;
  *out = k;
done:
  EVP_PKEY_free(pkey);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return rc;
}

int lgrpc_jwt_key_ec(const char *crv, const unsigned char *x, size_t xlen, const unsigned char *y,
                     size_t ylen, const char *kid, int alg, lgrpc_jwt_key **out)
{
  int kty;
  size_t size;
  const char *group;
  if (strcmp(crv, "P-256") == 0) { kty = LGRPC_JWT_KTY_EC256; size = 32; group = "prime256v1"; }
  else if (strcmp(crv, "P-384") == 0) { kty = LGRPC_JWT_KTY_EC384; size = 48; group = "secp384r1"; }
  else return LGRPC_EJWT_KEY;
  if (xlen != size || ylen != size) return LGRPC_EJWT_KEY; /* RFC 7518 6.2.1.2: full length */
  unsigned char point[1 + 2 * 48];
  point[0] = 0x04; /* uncompressed */
  memcpy(point + 1, x, size);
  memcpy(point + 1 + size, y, size);
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size);
  params[2] = OSSL_PARAM_construct_end();
  EVP_PKEY *pkey = pkey_from_params("EC", params, 1);
  if (!pkey) return LGRPC_EJWT_KEY;
  lgrpc_jwt_key *k;
  int rc = key_new(kty, kid, alg, &k);
  if (rc) { EVP_PKEY_free(pkey); return rc; }
  k->pkey = pkey; /* owner: k */
  *out = k;
  return 0;
}

int lgrpc_jwt_key_pem(const char *pem, size_t n, const char *kid, int alg, lgrpc_jwt_key **out)
{
  if (n > 1 << 20) return LGRPC_EJWT_KEY;
  BIO *bio = BIO_new_mem_buf(pem, (int)n);
  if (!bio) return LGRPC_EJWT_NOMEM;
  EVP_PKEY *pkey = NULL;
  if (memmem(pem, n, "-----BEGIN CERTIFICATE-----", 27)) {
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert) {
      pkey = X509_get_pubkey(cert);
      X509_free(cert);
    }
  } else {
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  }
  BIO_free(bio);
  ERR_clear_error();
  if (!pkey) return LGRPC_EJWT_KEY;
  int kty = pkey_kty(pkey);
  if (!kty) { EVP_PKEY_free(pkey); return LGRPC_EJWT_KEY; }
  lgrpc_jwt_key *k;
  int rc = key_new(kty, kid, alg, &k);
  if (rc) { EVP_PKEY_free(pkey); return rc; }
  k->pkey = pkey; /* owner: k */
  *out = k;
  return 0;
}

/* ---- key sets ---- */

void lgrpc_jwt_keyset_init(lgrpc_jwt_keyset *ks) { memset(ks, 0, sizeof *ks); }

int lgrpc_jwt_keyset_add(lgrpc_jwt_keyset *ks, lgrpc_jwt_key *k)
{
  if (ks->n == ks->cap) {
    size_t cap = ks->cap ? ks->cap * 2 : 4;
    lgrpc_jwt_key **keys = realloc(ks->keys, cap * sizeof *keys); /* owner: ks */
    if (!keys) { lgrpc_jwt_key_free(k); return LGRPC_EJWT_NOMEM; }
    ks->keys = keys;
    ks->cap = cap;
  }
  ks->keys[ks->n++] = k;
  return 0;
}

void lgrpc_jwt_keyset_free(lgrpc_jwt_keyset *ks)
{
  for (size_t i = 0; i < ks->n; i++) lgrpc_jwt_key_free(ks->keys[i]);
  free(ks->keys);
  memset(ks, 0, sizeof *ks);
}

/* ---- parsing ---- */

/* Strict base64url without padding: decodes s[0..n) into a fresh buffer (NUL-terminated). */
static int b64url(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
  if (n % 4 == 1) return LGRPC_EJWT_FORMAT;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_'))
      return LGRPC_EJWT_FORMAT;
  }
  /* the last character's unused bits must be zero: one encoding per byte string, so a token
   * cannot be altered without breaking its signature (deny lists may key on the text) */
  if (n % 4 != 0) {
    static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alphabet, s[n - 1]) - alphabet);
    if (v & (n % 4 == 2 ? 0x0f : 0x03)) return LGRPC_EJWT_FORMAT;
  }
  unsigned char *buf = malloc(n + 1); /* owner: the caller (n + 1: never malloc(0)) */
  if (!buf) return LGRPC_EJWT_NOMEM;
  long len = n ? lgrpc_json_base64_decode(s, n, buf) : 0;
  if (len < 0) { free(buf); return LGRPC_EJWT_FORMAT; }
  buf[len] = '\0';
  *out = buf;
  *outlen = (size_t)len;
  return 0;
}

enum { PART_HEADER, PART_PAYLOAD };

/* Reads the top-level members the verifier needs; everything else is skipped. */
typedef struct member_reader {
  lgrpc_jwt_token *t;
  int part;
  int depth;
  int rc;          /* our own reason for stopping */
  int in_aud;      /* inside the "aud" array */
  const char *key; /* current top-level key */
  size_t key_len;
  unsigned seen;   /* registered names already met (duplicates are refused) */
} member_reader;

static int key_is(const member_reader *r, const char *name)
{
  return strlen(name) == r->key_len && memcmp(r->key, name, r->key_len) == 0;
}

static int fail(member_reader *r, int rc)
{
  r->rc = rc;
  return LGRPC_EJSON_SINK;
}

static int bad(member_reader *r)
{
  return fail(r, r->part == PART_HEADER ? LGRPC_EJWT_HEADER : LGRPC_EJWT_CLAIMS);
}

static char *dup_text(const char *s, size_t n)
{
  if (memchr(s, '\0', n)) return NULL;
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static int add_aud(member_reader *r, const char *s, size_t n)
{
  lgrpc_jwt_token *t = r->t;
  if (t->n_aud >= 64) return bad(r);
  char **aud = realloc(t->aud, (t->n_aud + 1) * sizeof *aud); /* owner: t */
  if (!aud) return fail(r, LGRPC_EJWT_NOMEM);
  t->aud = aud;
  char *v = dup_text(s, n);
  if (!v) return memchr(s, '\0', n) ? bad(r) : fail(r, LGRPC_EJWT_NOMEM);
  t->aud[t->n_aud++] = v;
  return 0;
}

static int mr_begin(void *ud, int kind)
{
  member_reader *r = ud;
  r->depth++;
  if (r->depth == 1) return kind == LGRPC_JSON_OBJECT ? 0 : bad(r);
  if (r->in_aud) return bad(r); /* "aud" holds strings only */
  if (r->depth == 2 && r->part == PART_PAYLOAD && key_is(r, "aud")) {
    if (kind != LGRPC_JSON_ARRAY) return bad(r);
    r->in_aud = 1;
    return 0;
  }
  if (r->depth == 2 && r->part == PART_HEADER && (key_is(r, "alg") || key_is(r, "kid")))
    return bad(r);
  if (r->depth == 2 && r->part == PART_PAYLOAD &&
      (key_is(r, "exp") || key_is(r, "nbf") || key_is(r, "iat") || key_is(r, "iss")))
    return bad(r);
  return 0;
}

static int mr_end(void *ud, int kind)
{
  member_reader *r = ud;
  if (r->depth == 2) r->in_aud = 0;
  r->depth--;
  return 0;
}

static const char *const header_names[] = { "alg", "kid", "crit", NULL };
static const char *const claim_names[] = { "exp", "nbf", "iat", "iss", "aud", NULL };

static int mr_key(void *ud, const char *s, size_t n)
{
  member_reader *r = ud;
  if (r->depth != 1) return 0;
  r->key = s;
  r->key_len = n;
  const char *const *names = r->part == PART_HEADER ? header_names : claim_names;
  for (unsigned i = 0; names[i]; i++) {
    if (key_is(r, names[i])) {
      if (r->seen & (1u << i)) return bad(r); /* a second "alg" must not win silently */
      r->seen |= 1u << i;
    }
  }
  /* we implement no extension, so a critical one cannot be honoured (RFC 7515 4.1.11) */
  if (r->part == PART_HEADER && key_is(r, "crit")) return bad(r);
  return 0;
}

static int read_time(member_reader *r, int kind, const char *s, size_t n, double *v, int *has)
{
  char tmp[64];
  if (kind != LGRPC_JSON_INTEGER && kind != LGRPC_JSON_NUMBER) return bad(r);
  if (n >= sizeof tmp) return bad(r);
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  *v = strtod(tmp, NULL);
  *has = 1;
  return 0;
}

static int mr_scalar(void *ud, int kind, const char *s, size_t n)
{
  member_reader *r = ud;
  lgrpc_jwt_token *t = r->t;
  if (r->depth == 0) return bad(r); /* the top level must be an object */
  if (r->in_aud && r->depth == 2) {
    if (kind != LGRPC_JSON_STRING) return bad(r);
    return add_aud(r, s, n);
  }
  if (r->depth != 1) return 0;
  if (r->part == PART_HEADER) {
    if (key_is(r, "alg")) {
      if (kind != LGRPC_JSON_STRING) return bad(r);
      t->alg = lgrpc_jwt_alg_from_name(s, n);
      if (!t->alg) return fail(r, LGRPC_EJWT_ALG); /* "none" and everything we do not know */
    } else if (key_is(r, "kid")) {
      if (kind != LGRPC_JSON_STRING) return bad(r);
      t->kid = dup_text(s, n);
      if (!t->kid) return memchr(s, '\0', n) ? bad(r) : fail(r, LGRPC_EJWT_NOMEM);
    }
    return 0;
  }
  if (key_is(r, "exp")) return read_time(r, kind, s, n, &t->exp, &t->has_exp);
  if (key_is(r, "nbf")) return read_time(r, kind, s, n, &t->nbf, &t->has_nbf);
  if (key_is(r, "iat")) return read_time(r, kind, s, n, &t->iat, &t->has_iat);
  if (key_is(r, "iss")) {
    if (kind != LGRPC_JSON_STRING) return bad(r);
    t->iss = dup_text(s, n);
    if (!t->iss) return memchr(s, '\0', n) ? bad(r) : fail(r, LGRPC_EJWT_NOMEM);
    return 0;
  }
  if (key_is(r, "aud")) {
    if (kind != LGRPC_JSON_STRING) return bad(r);
    return add_aud(r, s, n);
  }
  return 0;
}

static const lgrpc_json_sink member_sink = { mr_begin, mr_end, mr_key, mr_scalar };

static int read_members(lgrpc_jwt_token *t, int part, const char *json, size_t n)
{
  member_reader r = { .t = t, .part = part };
  lgrpc_json_error err;
  char *scratch = malloc(n + 1); /* owner: this function */
  if (!scratch) return LGRPC_EJWT_NOMEM;
  int rc = lgrpc_json_parse(json, n, scratch, 64, &member_sink, &r, &err);
  free(scratch);
  if (rc == 0) return 0;
  if (r.rc) return r.rc;
  return part == PART_HEADER ? LGRPC_EJWT_HEADER : LGRPC_EJWT_CLAIMS;
}

void lgrpc_jwt_token_free(lgrpc_jwt_token *t)
{
  free(t->kid);
  free(t->header);
  free(t->payload);
  free(t->signature);
  free(t->signing_input);
  free(t->iss);
  for (size_t i = 0; i < t->n_aud; i++) free(t->aud[i]);
  free(t->aud);
  memset(t, 0, sizeof *t);
}

int lgrpc_jwt_parse(const char *text, size_t n, lgrpc_jwt_token *t)
{
  memset(t, 0, sizeof *t);
  const char *d1 = memchr(text, '.', n);
  if (!d1) return LGRPC_EJWT_FORMAT;
  const char *d2 = memchr(d1 + 1, '.', (size_t)(text + n - d1 - 1));
  if (!d2 || memchr(d2 + 1, '.', (size_t)(text + n - d2 - 1))) return LGRPC_EJWT_FORMAT;
  size_t hlen = (size_t)(d1 - text), plen = (size_t)(d2 - d1 - 1);
  size_t slen = (size_t)(text + n - d2 - 1);
  if (hlen == 0 || plen == 0) return LGRPC_EJWT_FORMAT; /* an empty signature fails later */
  int rc;
  if ((rc = b64url(text, hlen, (unsigned char **)&t->header, &t->header_len)) ||
      (rc = b64url(d1 + 1, plen, (unsigned char **)&t->payload, &t->payload_len)) ||
      (rc = b64url(d2 + 1, slen, &t->signature, &t->signature_len)))
    goto failed;
  t->signing_len = (size_t)(d2 - text);
  t->signing_input = malloc(t->signing_len); /* owner: t */
  if (!t->signing_input) { rc = LGRPC_EJWT_NOMEM; goto failed; }
  memcpy(t->signing_input, text, t->signing_len);
  if ((rc = read_members(t, PART_HEADER, t->header, t->header_len))) goto failed;
  if (!t->alg) { rc = LGRPC_EJWT_HEADER; goto failed; }
  if ((rc = read_members(t, PART_PAYLOAD, t->payload, t->payload_len))) goto failed;
  return 0;
failed:
  lgrpc_jwt_token_free(t);
  return rc;
}

/* ---- signatures ---- */

static int verify_hmac(const lgrpc_jwt_token *t, const lgrpc_jwt_key *k)
{
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (!HMAC(alg_md(t->alg), k->secret, (int)k->secret_len,
            (const unsigned char *)t->signing_input, t->signing_len, mac, &maclen))
    return LGRPC_EJWT_NOMEM;
  if (t->signature_len != maclen) return LGRPC_EJWT_SIGNATURE;
  return CRYPTO_memcmp(mac, t->signature, maclen) == 0 ? 0 : LGRPC_EJWT_SIGNATURE;
}

static int verify_digest(const lgrpc_jwt_token *t, const lgrpc_jwt_key *k,
                         const unsigned char *sig, size_t siglen)
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return LGRPC_EJWT_NOMEM;
  int rc = LGRPC_EJWT_SIGNATURE;
  if (EVP_DigestVerifyInit(md, NULL, alg_md(t->alg), NULL, k->pkey) == 1 &&
      EVP_DigestVerify(md, sig, siglen, (const unsigned char *)t->signing_input,
                       t->signing_len) == 1)
    rc = 0;
  EVP_MD_CTX_free(md);
  ERR_clear_error();
  return rc;
}

/* JWS carries ECDSA signatures as r||s, each the curve's size; OpenSSL wants DER. */
static int verify_ecdsa(const lgrpc_jwt_token *t, const lgrpc_jwt_key *k)
{
  size_t size = k->kty == LGRPC_JWT_KTY_EC256 ? 32 : 48;
  if (t->signature_len != 2 * size) return LGRPC_EJWT_SIGNATURE;
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(t->signature, (int)size, NULL);
  BIGNUM *s = BN_bin2bn(t->signature + size, (int)size, NULL);
  unsigned char *der = NULL;
  int rc = LGRPC_EJWT_NOMEM;
  if (!sig || !r || !s) goto done;
  if (!ECDSA_SIG_set0(sig, r, s)) goto done;
  r = s = NULL; /* owner: sig */
  int len = i2d_ECDSA_SIG(sig, &der);
  if (len <= 0) goto done;
  rc = verify_digest(t, k, der, (size_t)len);
done:
  OPENSSL_free(der);
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  return rc;
}

int lgrpc_jwt_verify_signature(const lgrpc_jwt_token *t, const lgrpc_jwt_key *k)
{
  if (lgrpc_jwt_alg_kty(t->alg) != k->kty || (k->alg && k->alg != t->alg))
    return LGRPC_EJWT_NOKEY;
  switch (k->kty) {
  case LGRPC_JWT_KTY_OCT: return verify_hmac(t, k);
  case LGRPC_JWT_KTY_RSA: return verify_digest(t, k, t->signature, t->signature_len);
  default: return verify_ecdsa(t, k);
  }
}

int lgrpc_jwt_keyset_verify(const lgrpc_jwt_keyset *ks, const lgrpc_jwt_token *t,
                            const lgrpc_jwt_key **used)
{
  int rc = LGRPC_EJWT_NOKEY;
  for (size_t i = 0; i < ks->n; i++) {
    const lgrpc_jwt_key *k = ks->keys[i];
    if (t->kid && k->kid && strcmp(k->kid, t->kid) != 0) continue;
    int r = lgrpc_jwt_verify_signature(t, k);
    if (r == 0) {
      if (used) *used = k;
      return 0;
    }
    if (r != LGRPC_EJWT_NOKEY) rc = r;
  }
  return rc;
}

/* ---- claims ---- */

int lgrpc_jwt_check_claims(const lgrpc_jwt_token *t, const lgrpc_jwt_policy *p)
{
  double leeway = p->leeway > 0 ? p->leeway : 0;
  if (t->has_exp) {
    if (!(p->now < t->exp + leeway)) return LGRPC_EJWT_EXPIRED; /* NaN counts as expired */
  } else if (p->require_exp) {
    return LGRPC_EJWT_MISSING;
  }
  if (t->has_nbf && !(p->now >= t->nbf - leeway)) return LGRPC_EJWT_NOTYET;
  if (p->n_issuers) {
    size_t i = 0;
    while (i < p->n_issuers && !(t->iss && strcmp(t->iss, p->issuers[i]) == 0)) i++;
    if (i == p->n_issuers) return LGRPC_EJWT_ISSUER;
  }
  if (p->n_audiences) {
    for (size_t i = 0; i < p->n_audiences; i++)
      for (size_t j = 0; j < t->n_aud; j++)
        if (strcmp(t->aud[j], p->audiences[i]) == 0) return 0;
    return LGRPC_EJWT_AUDIENCE;
  }
  return 0;
}

int lgrpc_jwt_verify(const char *text, size_t n, const lgrpc_jwt_keyset *ks,
                     const lgrpc_jwt_policy *p, lgrpc_jwt_token *t)
{
  int rc = lgrpc_jwt_parse(text, n, t);
  if (rc) return rc;
  if (p->algorithms && !(p->algorithms & (1u << t->alg))) rc = LGRPC_EJWT_ALG;
  if (!rc) rc = lgrpc_jwt_keyset_verify(ks, t, NULL);
  if (!rc) rc = lgrpc_jwt_check_claims(t, p);
  if (rc) lgrpc_jwt_token_free(t);
  return rc;
}

int lgrpc_jwt_equal(const void *a, size_t alen, const void *b, size_t blen)
{
  unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
  unsigned int la = 0, lb = 0;
  if (!EVP_Digest(a, alen, da, &la, EVP_sha256(), NULL) ||
      !EVP_Digest(b, blen, db, &lb, EVP_sha256(), NULL))
    return 0;
  return (CRYPTO_memcmp(da, db, sizeof da) == 0) & (alen == blen);
}

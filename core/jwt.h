/* jwt.h — JSON Web Token (JWS compact form) verification over OpenSSL 3: keys and key sets,
 * token parsing, signatures bound to their key type, and the registered-claim checks.
 * No Lua and no clock here: the caller passes "now"; core/lua_auth.c binds it. */
#ifndef LGRPC_JWT_H
#define LGRPC_JWT_H
#include <stddef.h>

enum {
  LGRPC_EJWT_FORMAT = -501,    /* not three base64url parts, or over the length limit */
  LGRPC_EJWT_HEADER = -502,    /* header not a JSON object, no "alg", "crit" present, duplicate */
  LGRPC_EJWT_ALG = -503,       /* algorithm unsupported ("none" included) or not allowed */
  LGRPC_EJWT_CLAIMS = -504,    /* payload not a JSON object, or a registered claim mistyped */
  LGRPC_EJWT_NOKEY = -505,     /* no key fits the token's kid and algorithm */
  LGRPC_EJWT_SIGNATURE = -506, /* the signature does not verify */
  LGRPC_EJWT_EXPIRED = -507,   /* now >= exp + leeway */
  LGRPC_EJWT_NOTYET = -508,    /* now < nbf - leeway */
  LGRPC_EJWT_ISSUER = -509,    /* iss missing or not an accepted issuer */
  LGRPC_EJWT_AUDIENCE = -510,  /* aud missing or names no accepted audience */
  LGRPC_EJWT_KEY = -511,       /* unusable key material (short RSA modulus, point off the curve) */
  LGRPC_EJWT_NOMEM = -512,     /* allocation failed */
  LGRPC_EJWT_MISSING = -513    /* exp required but absent */
};

const char *lgrpc_jwt_strerror(int code);
/* A short stable name for a code: "FORMAT", "EXPIRED" ... */
const char *lgrpc_jwt_errname(int code);

/* Algorithms (RFC 7518 names). Each is bound to one key type. */
enum { LGRPC_JWT_HS256 = 1, LGRPC_JWT_HS384, LGRPC_JWT_HS512, LGRPC_JWT_RS256, LGRPC_JWT_RS384,
       LGRPC_JWT_RS512, LGRPC_JWT_ES256, LGRPC_JWT_ES384, LGRPC_JWT_ALG_COUNT };
/* Key types. */
enum { LGRPC_JWT_KTY_OCT = 1, LGRPC_JWT_KTY_RSA, LGRPC_JWT_KTY_EC256, LGRPC_JWT_KTY_EC384 };

int lgrpc_jwt_alg_from_name(const char *name, size_t n); /* 0 when unknown */
const char *lgrpc_jwt_alg_name(int alg);
int lgrpc_jwt_alg_kty(int alg); /* the key type an algorithm needs */

#define LGRPC_JWT_MIN_RSA_BITS 2048

/* ---- keys ---- */
typedef struct lgrpc_jwt_key lgrpc_jwt_key;

/* Each constructor returns 0 with *out set (owned by the caller until added to a key set) or a
 * negative code. kid (may be NULL) names the key; alg 0 lets the key serve every algorithm of its
 * type, otherwise only that one (it must match the key type: LGRPC_EJWT_ALG otherwise). */
int lgrpc_jwt_key_oct(const unsigned char *k, size_t n, const char *kid, int alg,
                      lgrpc_jwt_key **out);
/* RSA public key from its big-endian modulus and exponent (JWK "n" and "e" decoded). */
int lgrpc_jwt_key_rsa(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
                      const char *kid, int alg, lgrpc_jwt_key **out);
/* EC public key: crv "P-256" or "P-384", x and y big-endian (JWK "x" and "y" decoded). The point
 * is checked to lie on the curve. */
int lgrpc_jwt_key_ec(const char *crv, const unsigned char *x, size_t xlen, const unsigned char *y,
                     size_t ylen, const char *kid, int alg, lgrpc_jwt_key **out);
/* A PEM public key ("BEGIN PUBLIC KEY") or certificate ("BEGIN CERTIFICATE"): RSA, P-256, P-384. */
int lgrpc_jwt_key_pem(const char *pem, size_t n, const char *kid, int alg, lgrpc_jwt_key **out);
void lgrpc_jwt_key_free(lgrpc_jwt_key *k);
int lgrpc_jwt_key_kty(const lgrpc_jwt_key *k);
const char *lgrpc_jwt_key_kid(const lgrpc_jwt_key *k); /* NULL when it has none */

/* ---- key sets ---- */
typedef struct lgrpc_jwt_keyset {
  lgrpc_jwt_key **keys; /* owned: lgrpc_jwt_keyset_free frees every key and the array */
  size_t n, cap;
} lgrpc_jwt_keyset;

void lgrpc_jwt_keyset_init(lgrpc_jwt_keyset *ks);
/* Takes ownership of k (also on failure, when it is freed). */
int lgrpc_jwt_keyset_add(lgrpc_jwt_keyset *ks, lgrpc_jwt_key *k);
void lgrpc_jwt_keyset_free(lgrpc_jwt_keyset *ks);

/* ---- tokens ---- */
typedef struct lgrpc_jwt_token {
  int alg;
  char *kid;                 /* NUL-terminated, or NULL */
  char *header;              /* decoded header JSON; header_len bytes (+ NUL) */
  size_t header_len;
  char *payload;             /* decoded payload JSON; payload_len bytes (+ NUL) */
  size_t payload_len;
  unsigned char *signature;  /* decoded signature */
  size_t signature_len;
  char *signing_input;       /* "header.payload" as received */
  size_t signing_len;
  /* registered claims, as read from the payload */
  int has_exp, has_nbf, has_iat;
  double exp, nbf, iat;
  char *iss;                 /* NULL when absent */
  char **aud;                /* n_aud strings: "aud" as a string or an array of strings */
  size_t n_aud;
} lgrpc_jwt_token;           /* every pointer owned by the token: lgrpc_jwt_token_free */

/* Splits and decodes a compact JWS, reads its header and registered claims. Nothing is trusted
 * yet. On failure the token holds nothing to free (freeing it anyway is safe). */
int lgrpc_jwt_parse(const char *text, size_t n, lgrpc_jwt_token *t);
void lgrpc_jwt_token_free(lgrpc_jwt_token *t);

/* The token's signature against one key: LGRPC_EJWT_NOKEY when the key cannot serve the token's
 * algorithm (wrong type, other alg), LGRPC_EJWT_SIGNATURE when it does not verify. HMACs are
 * compared in constant time. */
int lgrpc_jwt_verify_signature(const lgrpc_jwt_token *t, const lgrpc_jwt_key *k);

/* The token against a key set: every key that can serve the algorithm, except that a token
 * naming a kid skips keys that carry another kid (keys without a kid stay candidates). *used (may be NULL) gets the key that verified. */
int lgrpc_jwt_keyset_verify(const lgrpc_jwt_keyset *ks, const lgrpc_jwt_token *t,
                            const lgrpc_jwt_key **used);

typedef struct lgrpc_jwt_policy {
  double now;                    /* seconds since the epoch, from the caller's clock */
  double leeway;                 /* seconds of clock skew allowed on exp and nbf */
  int require_exp;               /* 1: a token without exp is refused */
  unsigned algorithms;           /* bit (1 << alg) per accepted algorithm; 0 accepts all */
  const char *const *issuers;    /* accepted iss values; n_issuers 0 skips the check */
  size_t n_issuers;
  const char *const *audiences;  /* at least one must appear in aud; 0 skips the check */
  size_t n_audiences;
} lgrpc_jwt_policy;

/* exp, nbf, iss, aud against the policy (the signature is not looked at). */
int lgrpc_jwt_check_claims(const lgrpc_jwt_token *t, const lgrpc_jwt_policy *p);

/* Everything: parse, algorithm allowed, signature by the key set, claims. On success *t holds
 * the verified token (free it); on failure nothing is left to free. */
int lgrpc_jwt_verify(const char *text, size_t n, const lgrpc_jwt_keyset *ks,
                     const lgrpc_jwt_policy *p, lgrpc_jwt_token *t);

/* Constant-time equality of two byte strings (the time depends only on their lengths). */
int lgrpc_jwt_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif

/* tls.c — the TLS filter: one SSL object between two memory BIOs per connection, contexts
 * (SSL_CTX) shared and reference counted, ALPN h2 offered and selected, verification failures
 * and peer alerts turned into readable reasons, the peer identity captured once.
 * Never calls SSL_set_fd, never reads a socket or a clock, never calls back into its driver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "tls.h"

#define READ_CHUNK 16384

struct lgrpc_tls_ctx {
  SSL_CTX *ssl_ctx;
  int refs;
  int server;
  int64_t handshake_timeout;
  SSL_SESSION *session;       /* client: the last session seen, for resumption; owned */
  char session_host[256];     /* the server name it belongs to */
};

struct lgrpc_tls {
  lgrpc_filter filter;        /* first member: lgrpc_tls_from_filter casts back */
  lgrpc_tls_ctx *ctx;         /* one reference */
  SSL *ssl;                   /* owns both BIOs */
  BIO *rbio, *wbio;
  int state;
  int64_t deadline;           /* -1: not armed */
  lgrpc_bytes held;           /* plaintext waiting for the end of the handshake; owned */
  char reason[256];
  char phrase[300];           /* the reason as a driver reports it: "TLS handshake failed: ..." */
  int failed_in_handshake;
  char server_name[256];
  lgrpc_tls_identity *peer;   /* owned; NULL until the handshake ends */
};

const char *lgrpc_tls_strerror(int code)
{
  switch (code) {
  case LGRPC_ETLS_CONFIG: return "unusable TLS configuration";
  case LGRPC_ETLS_HANDSHAKE: return "TLS handshake failed";
  case LGRPC_ETLS_PROTO: return "TLS error";
  case LGRPC_ETLS_STATE: return "TLS connection failed or closed";
  case LGRPC_ETLS_NOMEM: return "out of memory";
  default: return "unknown TLS error";
  }
}

/* The reason of the newest OpenSSL error, lower case as OpenSSL writes it. */
static void ssl_reason(char *buf, size_t n, const char *fallback)
{
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  snprintf(buf, n, "%s", r ? r : fallback);
  ERR_clear_error();
}

/* ---- contexts ---------------------------------------------------------------------------- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
  (void)ssl; (void)arg;
  for (unsigned int i = 0; i < inlen;) {
    unsigned int l = in[i];
    if (i + 1 + l > inlen) break;
    if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + l;
  }
  /* the client speaks ALPN but not h2: a gRPC server cannot serve it */
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
  lgrpc_tls *t = SSL_get_app_data(ssl);
  if (!t || !t->ctx || !t->server_name[0]) return 0;
  lgrpc_tls_ctx *c = t->ctx;
  if (c->session) SSL_SESSION_free(c->session);
  c->session = sess;  /* returning 1 hands us the reference */
  snprintf(c->session_host, sizeof c->session_host, "%s", t->server_name);
  return 1;
}

static int load_pem_chain(SSL_CTX *sc, const char *pem, char *err, size_t errlen)
{
  BIO *b = BIO_new_mem_buf(pem, -1);
  if (!b) { snprintf(err, errlen, "out of memory"); return -1; }
  X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
  int ok = leaf && SSL_CTX_use_certificate(sc, leaf) == 1;
  X509_free(leaf);
  if (ok) {
    SSL_CTX_clear_chain_certs(sc);
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
      if (SSL_CTX_add0_chain_cert(sc, x) != 1) { X509_free(x); ok = 0; break; }
    ERR_clear_error(); /* the end of the PEM text reads as an error */
  }
  BIO_free(b);
  if (!ok) {
    char r[160];
    ssl_reason(r, sizeof r, "no certificate");
    snprintf(err, errlen, "cert: no usable PEM certificate (%s)", r);
    return -1;
  }
  return 0;
}

static int load_pem_key(SSL_CTX *sc, const char *pem, char *err, size_t errlen)
{
  BIO *b = BIO_new_mem_buf(pem, -1);
  if (!b) { snprintf(err, errlen, "out of memory"); return -1; }
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  int ok = k && SSL_CTX_use_PrivateKey(sc, k) == 1;
  EVP_PKEY_free(k);
  if (!ok) {
    char r[160];
    ssl_reason(r, sizeof r, "no key");
    if (strstr(r, "mismatch")) snprintf(err, errlen, "the private key does not match the certificate");
    else snprintf(err, errlen, "key: no usable PEM private key (%s)", r);
    return -1;
  }
  return 0;
}

static int load_pem_trust(SSL_CTX *sc, const char *pem, int server, char *err, size_t errlen)
{
  BIO *b = BIO_new_mem_buf(pem, -1);
  if (!b) { snprintf(err, errlen, "out of memory"); return -1; }
  X509_STORE *store = SSL_CTX_get_cert_store(sc);
  STACK_OF(X509_NAME) *names = server ? sk_X509_NAME_new_null() : NULL;
  int n = 0;
  X509 *x;
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    X509_STORE_add_cert(store, x);
    if (names) {
      X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(x));
      if (nm && !sk_X509_NAME_push(names, nm)) X509_NAME_free(nm);
    }
    X509_free(x);
    n++;
  }
  ERR_clear_error();
  BIO_free(b);
  if (!n) {
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    snprintf(err, errlen, "ca: no PEM certificate found");
    return -1;
  }
  if (names) SSL_CTX_set_client_CA_list(sc, names); /* takes ownership */
  return 0;
}

/* A file option that cannot be read gets the system's reason, not OpenSSL's "system lib". */
static int readable(const char *what, const char *path, char *err, size_t errlen)
{
  if (!path || access(path, R_OK) == 0) return 1;
  snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
  return 0;
}

lgrpc_tls_ctx *lgrpc_tls_ctx_new(const lgrpc_tls_options *o, char *err, size_t errlen)
{
  ERR_clear_error();
  SSL_CTX *sc = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
  if (!sc) { snprintf(err, errlen, "out of memory"); return NULL; }
  int minv = o->min_version ? o->min_version : TLS1_2_VERSION;
  int maxv = o->max_version;
  if (minv != TLS1_2_VERSION && minv != TLS1_3_VERSION) {
    snprintf(err, errlen, "min_version: TLS 1.2 or 1.3 expected");
    goto fail;
  }
  if (maxv && ((maxv != TLS1_2_VERSION && maxv != TLS1_3_VERSION) || maxv < minv)) {
    snprintf(err, errlen, "max_version: TLS 1.2 or 1.3, not below min_version, expected");
    goto fail;
  }
  SSL_CTX_set_min_proto_version(sc, minv);
  SSL_CTX_set_max_proto_version(sc, maxv);
  /* TLS 1.2: forward secrecy and AEAD only (TLS 1.3's suites are all of that kind) */
  SSL_CTX_set_cipher_list(sc, "ECDHE+AESGCM:ECDHE+CHACHA20");
  SSL_CTX_set_options(sc, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                          SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* the chain sent is the one the certificate file or PEM holds, never one built from the CAs
   * trusted for verifying peers */
  SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);

  if (o->cert && o->cert_file) { snprintf(err, errlen, "cert and cert_file are exclusive"); goto fail; }
  if (o->key && o->key_file) { snprintf(err, errlen, "key and key_file are exclusive"); goto fail; }
  if (o->ca && o->ca_file) { snprintf(err, errlen, "ca and ca_file are exclusive"); goto fail; }
  int has_cert = o->cert || o->cert_file, has_key = o->key || o->key_file;
  if (has_cert != has_key) { snprintf(err, errlen, "a certificate needs its key (cert and key go together)"); goto fail; }
  if (o->server && !has_cert) { snprintf(err, errlen, "a TLS server needs cert_file/key_file or cert/key"); goto fail; }
  if (!readable("cert_file", o->cert_file, err, errlen) || !readable("key_file", o->key_file, err, errlen) ||
      !readable("ca_file", o->ca_file, err, errlen))
    goto fail;
  if (o->cert && load_pem_chain(sc, o->cert, err, errlen) < 0) goto fail;
  if (o->cert_file && SSL_CTX_use_certificate_chain_file(sc, o->cert_file) != 1) {
    char r[160];
    ssl_reason(r, sizeof r, "unreadable");
    snprintf(err, errlen, "cert_file %s: %s", o->cert_file, r);
    goto fail;
  }
  if (o->key && load_pem_key(sc, o->key, err, errlen) < 0) goto fail;
  if (o->key_file && SSL_CTX_use_PrivateKey_file(sc, o->key_file, SSL_FILETYPE_PEM) != 1) {
    char r[160];
    ssl_reason(r, sizeof r, "unreadable");
    if (strstr(r, "mismatch")) snprintf(err, errlen, "the private key does not match the certificate");
    else snprintf(err, errlen, "key_file %s: %s", o->key_file, r);
    goto fail;
  }
  if (has_cert && SSL_CTX_check_private_key(sc) != 1) {
    snprintf(err, errlen, "the private key does not match the certificate");
    goto fail;
  }
  if (o->ca && load_pem_trust(sc, o->ca, o->server, err, errlen) < 0) goto fail;
  if (o->ca_file) {
    if (SSL_CTX_load_verify_locations(sc, o->ca_file, NULL) != 1) {
      char r[160];
      ssl_reason(r, sizeof r, "unreadable");
      snprintf(err, errlen, "ca_file %s: %s", o->ca_file, r);
      goto fail;
    }
    if (o->server) {
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
      if (names) SSL_CTX_set_client_CA_list(sc, names);
      ERR_clear_error();
    }
  }
  if (o->server) {
    if (o->client_auth != LGRPC_TLS_AUTH_NONE && !o->ca && !o->ca_file) {
      snprintf(err, errlen, "client_auth needs client_ca_file or client_ca");
      goto fail;
    }
    int mode = o->client_auth == LGRPC_TLS_AUTH_REQUIRE ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
             : o->client_auth == LGRPC_TLS_AUTH_REQUEST ? SSL_VERIFY_PEER : SSL_VERIFY_NONE;
    SSL_CTX_set_verify(sc, mode, NULL);
    SSL_CTX_set_alpn_select_cb(sc, alpn_select, NULL);
    static const unsigned char sid[] = "lgrpc";
    SSL_CTX_set_session_id_context(sc, sid, sizeof sid - 1);
  } else {
    if (!o->ca && !o->ca_file && !o->insecure_skip_verify && SSL_CTX_set_default_verify_paths(sc) != 1) {
      snprintf(err, errlen, "the system CA store cannot be read");
      goto fail;
    }
    SSL_CTX_set_verify(sc, o->insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = "\x02h2";
    SSL_CTX_set_alpn_protos(sc, alpn, sizeof alpn - 1);
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(sc, new_session);
  }
  lgrpc_tls_ctx *c = calloc(1, sizeof *c);
  if (!c) { snprintf(err, errlen, "out of memory"); goto fail; }
  c->ssl_ctx = sc;
  c->refs = 1;
  c->server = o->server;
  c->handshake_timeout = o->handshake_timeout;
  ERR_clear_error();
  return c;
fail:
  ERR_clear_error();
  SSL_CTX_free(sc);
  return NULL;
}

void lgrpc_tls_ctx_ref(lgrpc_tls_ctx *c) { c->refs++; }

void lgrpc_tls_ctx_unref(lgrpc_tls_ctx *c)
{
  if (!c || --c->refs > 0) return;
  if (c->session) SSL_SESSION_free(c->session);
  SSL_CTX_free(c->ssl_ctx);
  free(c);
}

int lgrpc_tls_ctx_is_server(const lgrpc_tls_ctx *c) { return c->server; }

/* ---- connections ------------------------------------------------------------------------- */

static int f_decode(lgrpc_filter *f, const char *raw, size_t n, lgrpc_bytes *plain)
{
  return lgrpc_tls_decode((lgrpc_tls *)f, raw, n, plain);
}

static int f_encode(lgrpc_filter *f, const char *plain, size_t n, lgrpc_bytes *raw)
{
  return lgrpc_tls_encode((lgrpc_tls *)f, plain, n, raw);
}

static void f_destroy(lgrpc_filter *f) { lgrpc_tls_free((lgrpc_tls *)f); }
static int f_want_write(lgrpc_filter *f) { return lgrpc_tls_want_write((lgrpc_tls *)f); }
static int f_established(lgrpc_filter *f) { return ((lgrpc_tls *)f)->state != LGRPC_TLS_HANDSHAKE; }
static void f_tick(lgrpc_filter *f, int64_t now) { lgrpc_tls_tick((lgrpc_tls *)f, now); }
static int f_next_deadline(lgrpc_filter *f, int64_t *when) { return lgrpc_tls_next_deadline((lgrpc_tls *)f, when); }

static const char *f_error(lgrpc_filter *f)
{
  lgrpc_tls *t = (lgrpc_tls *)f;
  if (t->state != LGRPC_TLS_FAILED) return NULL;
  if (!t->phrase[0]) {
    if (!t->failed_in_handshake) snprintf(t->phrase, sizeof t->phrase, "TLS error: %s", t->reason);
    else if (strncmp(t->reason, "handshake ", 10) == 0) snprintf(t->phrase, sizeof t->phrase, "TLS %s", t->reason);
    else snprintf(t->phrase, sizeof t->phrase, "TLS handshake failed: %s", t->reason);
  }
  return t->phrase;
}

lgrpc_tls *lgrpc_tls_new(lgrpc_tls_ctx *c, const char *server_name, char *err, size_t errlen)
{
  lgrpc_tls *t = calloc(1, sizeof *t);
  if (!t) { snprintf(err, errlen, "out of memory"); return NULL; }
  ERR_clear_error();
  t->ssl = SSL_new(c->ssl_ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    SSL_free(t->ssl); BIO_free(t->rbio); BIO_free(t->wbio); free(t);
    ERR_clear_error();
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  BIO_set_mem_eof_return(t->rbio, -1); /* empty = "try again", not EOF */
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_app_data(t->ssl, t);
  t->filter.name = "tls";
  t->filter.decode = f_decode;
  t->filter.encode = f_encode;
  t->filter.passthrough = 0;
  t->filter.destroy = f_destroy;
  t->filter.want_write = f_want_write;
  t->filter.established = f_established;
  t->filter.error = f_error;
  t->filter.tick = f_tick;
  t->filter.next_deadline = f_next_deadline;
  t->ctx = c;
  lgrpc_tls_ctx_ref(c);
  t->state = LGRPC_TLS_HANDSHAKE;
  t->deadline = -1;
  if (c->server) SSL_set_accept_state(t->ssl);
  else {
    SSL_set_connect_state(t->ssl);
    if (server_name && *server_name) {
      snprintf(t->server_name, sizeof t->server_name, "%s", server_name);
      unsigned char ip[16];
      int is_ip = inet_pton(AF_INET, server_name, ip) == 1 || inet_pton(AF_INET6, server_name, ip) == 1;
      int ok = 1;
      if (is_ip) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name) == 1;
      else {
        ok = SSL_set_tlsext_host_name(t->ssl, server_name) == 1;
        if (ok) {
          SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
          ok = SSL_set1_host(t->ssl, server_name) == 1;
        }
      }
      if (!ok) {
        snprintf(err, errlen, "server name %s: not usable for TLS", server_name);
        lgrpc_tls_free(t);
        return NULL;
      }
      if (c->session && strcmp(c->session_host, t->server_name) == 0 &&
          SSL_SESSION_is_resumable(c->session))
        SSL_set_session(t->ssl, c->session);
    }
  }
  ERR_clear_error();
  return t;
}

static void identity_free(lgrpc_tls_identity *id)
{
  if (!id) return;
  free(id->subject); free(id->issuer); free(id->serial); free(id->not_before); free(id->not_after);
  for (size_t i = 0; i < id->nsans; i++) free(id->sans[i].value);
  free(id->sans);
  for (size_t i = 0; i < id->nchain; i++) free(id->chain[i]);
  free(id->chain);
  free(id);
}

void lgrpc_tls_free(lgrpc_tls *t)
{
  if (!t) return;
  if (t->ssl) SSL_set_app_data(t->ssl, NULL);
  SSL_free(t->ssl); /* frees both BIOs */
  lgrpc_tls_ctx_unref(t->ctx);
  lgrpc_bytes_free(&t->held);
  identity_free(t->peer);
  free(t);
}

lgrpc_filter *lgrpc_tls_filter(lgrpc_tls *t) { return &t->filter; }

lgrpc_tls *lgrpc_tls_from_filter(lgrpc_filter *f)
{
  return f && f->decode == f_decode ? (lgrpc_tls *)f : NULL;
}

/* ---- identity ---------------------------------------------------------------------------- */

static char *bio_text(BIO *b)
{
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
  if (!s) return NULL;
  if (n > 0) memcpy(s, p, (size_t)n);
  s[n > 0 ? n : 0] = 0;
  return s;
}

static char *name_text(const X509_NAME *nm)
{
  BIO *b = BIO_new(BIO_s_mem());
  if (!b) return NULL;
  X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char *s = bio_text(b);
  BIO_free(b);
  return s;
}

static char *time_text(const ASN1_TIME *tm)
{
  struct tm out;
  if (!tm || ASN1_TIME_to_tm(tm, &out) != 1) return strdup("");
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
  return strdup(buf);
}

static void add_san(lgrpc_tls_identity *id, const char *kind, const char *v, size_t n)
{
  lgrpc_tls_san *s = realloc(id->sans, (id->nsans + 1) * sizeof *s);
  if (!s) return;
  id->sans = s;
  char *copy = malloc(n + 1);
  if (!copy) return;
  memcpy(copy, v, n);
  copy[n] = 0;
  s[id->nsans].kind = kind;
  s[id->nsans].value = copy;
  id->nsans++;
}

static void capture_identity(lgrpc_tls *t)
{
  lgrpc_tls_identity *id = calloc(1, sizeof *id);
  if (!id) return;
  t->peer = id;
  X509 *x = SSL_get0_peer_certificate(t->ssl);
  if (!x) return;
  id->present = 1;
  id->verified = SSL_get_verify_result(t->ssl) == X509_V_OK &&
                 (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER);
  id->subject = name_text(X509_get_subject_name(x));
  id->issuer = name_text(X509_get_issuer_name(x));
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  if (bn) {
    char *hex = BN_bn2hex(bn);
    id->serial = hex ? strdup(hex) : NULL;
    OPENSSL_free(hex);
    BN_free(bn);
  }
  id->not_before = time_text(X509_get0_notBefore(x));
  id->not_after = time_text(X509_get0_notAfter(x));
  GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL) {
      const ASN1_IA5STRING *s = g->d.ia5;
      add_san(id, g->type == GEN_DNS ? "dns" : g->type == GEN_URI ? "uri" : "email",
              (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    } else if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING *s = g->d.iPAddress;
      char buf[64];
      int len = ASN1_STRING_length(s);
      const unsigned char *p = ASN1_STRING_get0_data(s);
      if ((len == 4 && inet_ntop(AF_INET, p, buf, sizeof buf)) ||
          (len == 16 && inet_ntop(AF_INET6, p, buf, sizeof buf)))
        add_san(id, "ip", buf, strlen(buf));
    }
  }
  GENERAL_NAMES_free(gens);
  STACK_OF(X509) *chain = id->verified ? SSL_get0_verified_chain(t->ssl) : NULL;
  int own_leaf = 0;
  if (!chain) {
    chain = SSL_get_peer_cert_chain(t->ssl); /* a server's copy lacks the leaf */
    own_leaf = t->ctx->server;
  }
  int n = chain ? sk_X509_num(chain) : 0;
  id->chain = calloc((size_t)n + 1, sizeof *id->chain);
  if (!id->chain) return;
  for (int i = -own_leaf; i < n; i++) {
    X509 *c = i < 0 ? x : sk_X509_value(chain, i);
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) break;
    PEM_write_bio_X509(b, c);
    char *pem = bio_text(b);
    BIO_free(b);
    if (pem) id->chain[id->nchain++] = pem;
  }
  ERR_clear_error();
}

/* ---- the byte pump ----------------------------------------------------------------------- */

static int fail(lgrpc_tls *t, int code, const char *reason)
{
  if (t->state != LGRPC_TLS_FAILED) {
    t->failed_in_handshake = t->state == LGRPC_TLS_HANDSHAKE;
    t->state = LGRPC_TLS_FAILED;
    snprintf(t->reason, sizeof t->reason, "%s", reason);
  }
  ERR_clear_error();
  return code;
}

/* Reads OpenSSL's error queue after a failed SSL call into a reason a user can act on. */
static int fail_ssl(lgrpc_tls *t, int code, int sslerr)
{
  char buf[256];
  unsigned long e = ERR_peek_last_error();
  long vr = SSL_get_verify_result(t->ssl);
  if (e && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK)
    snprintf(buf, sizeof buf, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
  else if (e) ssl_reason(buf, sizeof buf, "TLS error");
  else if (sslerr == SSL_ERROR_SYSCALL) snprintf(buf, sizeof buf, "unexpected end of TLS stream");
  else snprintf(buf, sizeof buf, "TLS error %d", sslerr);
  return fail(t, code, buf);
}

static int write_plain(lgrpc_tls *t, const char *p, size_t n)
{
  while (n) {
    int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
    int w = SSL_write(t->ssl, p, chunk);
    if (w <= 0) return fail_ssl(t, LGRPC_ETLS_PROTO, SSL_get_error(t->ssl, w));
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int handshake_step(lgrpc_tls *t)
{
  int rc = SSL_do_handshake(t->ssl);
  if (rc != 1) {
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) { ERR_clear_error(); return 0; }
    return fail_ssl(t, LGRPC_ETLS_HANDSHAKE, e);
  }
  t->deadline = -1;
  if (t->ctx->server) {
    const char *sni = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    if (sni) snprintf(t->server_name, sizeof t->server_name, "%s", sni);
  } else {
    const unsigned char *a;
    unsigned int alen;
    SSL_get0_alpn_selected(t->ssl, &a, &alen);
    if (alen != 2 || memcmp(a, "h2", 2) != 0) {
      SSL_shutdown(t->ssl); /* close_notify: the server sees the connection end */
      return fail(t, LGRPC_ETLS_HANDSHAKE, "no ALPN h2 from server");
    }
  }
  t->state = LGRPC_TLS_OPEN;
  capture_identity(t);
  if (t->held.len) {
    int w = write_plain(t, t->held.data, t->held.len);
    t->held.len = 0;
    if (w < 0) return w;
  }
  return 0;
}

int lgrpc_tls_decode(lgrpc_tls *t, const char *raw, size_t n, lgrpc_bytes *plain)
{
  if (t->state == LGRPC_TLS_FAILED) return LGRPC_ETLS_STATE;
  if (t->state == LGRPC_TLS_CLOSED) return 0;
  ERR_clear_error();
  for (size_t off = 0; off < n;) {
    int chunk = n - off > (1u << 30) ? 1 << 30 : (int)(n - off);
    if (BIO_write(t->rbio, raw + off, chunk) != chunk) return fail(t, LGRPC_ETLS_NOMEM, "out of memory");
    off += (size_t)chunk;
  }
  if (t->state == LGRPC_TLS_HANDSHAKE) {
    int rc = handshake_step(t);
    if (rc < 0) return rc;
    if (t->state != LGRPC_TLS_OPEN) return 0;
  }
  for (;;) {
    if (lgrpc_bytes_reserve(plain, READ_CHUNK) < 0) return fail(t, LGRPC_ETLS_NOMEM, "out of memory");
    int r = SSL_read(t->ssl, plain->data + plain->len, READ_CHUNK);
    if (r > 0) { plain->len += (size_t)r; continue; }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) { ERR_clear_error(); return 0; }
    if (e == SSL_ERROR_ZERO_RETURN) {
      t->state = LGRPC_TLS_CLOSED;
      ERR_clear_error();
      return 0;
    }
    return fail_ssl(t, LGRPC_ETLS_PROTO, e);
  }
}

int lgrpc_tls_encode(lgrpc_tls *t, const char *plain, size_t n, lgrpc_bytes *raw)
{
  int rc = 0;
  ERR_clear_error();
  if (n && (t->state == LGRPC_TLS_FAILED || t->state == LGRPC_TLS_CLOSED)) rc = LGRPC_ETLS_STATE;
  else if (t->state == LGRPC_TLS_HANDSHAKE) {
    if (n && lgrpc_bytes_append(&t->held, plain, n) < 0) rc = fail(t, LGRPC_ETLS_NOMEM, "out of memory");
    else if (!t->ctx->server || BIO_ctrl_pending(t->rbio)) rc = handshake_step(t);
  } else if (t->state == LGRPC_TLS_OPEN && n) rc = write_plain(t, plain, n);
  size_t pending = BIO_ctrl_pending(t->wbio);
  if (pending) {
    if (lgrpc_bytes_reserve(raw, pending) < 0) return fail(t, LGRPC_ETLS_NOMEM, "out of memory");
    int r = BIO_read(t->wbio, raw->data + raw->len, (int)pending);
    if (r > 0) raw->len += (size_t)r;
  }
  return rc;
}

int lgrpc_tls_want_write(const lgrpc_tls *t)
{
  if (BIO_ctrl_pending(t->wbio)) return 1;
  /* a client that has not said hello yet */
  return t->state == LGRPC_TLS_HANDSHAKE && !t->ctx->server && SSL_in_before(t->ssl);
}

int lgrpc_tls_state(const lgrpc_tls *t) { return t->state; }
const char *lgrpc_tls_error(const lgrpc_tls *t) { return t->reason; }

void lgrpc_tls_close(lgrpc_tls *t)
{
  if (t->state != LGRPC_TLS_OPEN) return;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
}

void lgrpc_tls_tick(lgrpc_tls *t, int64_t now)
{
  if (t->state != LGRPC_TLS_HANDSHAKE || t->ctx->handshake_timeout <= 0) return;
  if (t->deadline < 0) t->deadline = now + t->ctx->handshake_timeout;
  else if (now >= t->deadline) fail(t, LGRPC_ETLS_HANDSHAKE, "handshake timed out");
}

int lgrpc_tls_next_deadline(const lgrpc_tls *t, int64_t *when)
{
  if (t->state != LGRPC_TLS_HANDSHAKE || t->deadline < 0) return 0;
  *when = t->deadline;
  return 1;
}

const char *lgrpc_tls_version(const lgrpc_tls *t) { return t->state == LGRPC_TLS_HANDSHAKE ? "" : SSL_get_version(t->ssl); }

const char *lgrpc_tls_cipher(const lgrpc_tls *t)
{
  const char *c = t->state == LGRPC_TLS_HANDSHAKE ? NULL : SSL_get_cipher_name(t->ssl);
  return c && strcmp(c, "(NONE)") ? c : "";
}

const char *lgrpc_tls_alpn(const lgrpc_tls *t)
{
  const unsigned char *a;
  unsigned int alen;
  SSL_get0_alpn_selected(t->ssl, &a, &alen);
  return alen == 2 && memcmp(a, "h2", 2) == 0 ? "h2" : "";
}

const char *lgrpc_tls_server_name(const lgrpc_tls *t) { return t->server_name; }
int lgrpc_tls_resumed(const lgrpc_tls *t) { return SSL_session_reused(t->ssl); }
const lgrpc_tls_identity *lgrpc_tls_peer(const lgrpc_tls *t) { return t->peer; }

#!/bin/sh
# make_certs.sh DIR — a private CA, a server certificate for localhost and a client certificate,
# with the openssl command line (ECDSA P-256, one year). For trying TLS and mutual TLS:
# production certificates come from your PKI. Writes DIR/{ca,server,client}.{pem,key}.
set -e
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

key ca.key
openssl req -x509 -new -key ca.key -days 365 -subj "/O=lgrpc example/CN=Example CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

# sign NAME SUBJECT EXTENSIONS
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
sign server "/O=lgrpc example/CN=localhost" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
sign client "/O=lgrpc example/CN=alice" \
  "subjectAltName=URI:spiffe://example.org/alice
extendedKeyUsage=clientAuth"
rm -f ca.srl
echo "certificates in $dir"

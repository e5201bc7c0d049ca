#!/bin/sh
# Interop suite over TLS: tools/suites/interop.sh with every connection on TLS, certificates
# generated for this run (spec/support/certs.py; the test CA signs a server certificate for
# localhost and *.test.google.fr). Flags as grpc-go's interop binaries take them: servers
# --use_tls --tls_cert_file --tls_key_file, clients --use_tls --use_test_ca --ca_file
# --server_host_override=foo.test.google.fr. Prints one "SUITE interop-tls-<pair> <passed>
# <failed>" line per pair (grpcio-grpcio, lua-grpcio, grpcio-lua). LUA picks the interpreter.
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if ! env -u LD_PRELOAD /usr/bin/python3 spec/support/certs.py "$tmp/certs" >"$tmp/certs.log" 2>&1; then
  echo "interop-tls: certificates could not be made:"; cat "$tmp/certs.log"
  for p in grpcio-grpcio lua-grpcio grpcio-lua; do echo "SUITE interop-tls-$p 0 14"; done
  exit 0
fi
INTEROP_NAME=interop-tls \
INTEROP_SERVER_FLAGS="--use_tls=true --tls_cert_file=$tmp/certs/server.pem --tls_key_file=$tmp/certs/server.key" \
INTEROP_CLIENT_FLAGS="--use_tls=true --use_test_ca=true --ca_file=$tmp/certs/ca.pem --server_host_override=foo.test.google.fr" \
  sh "$top/tools/suites/interop.sh"

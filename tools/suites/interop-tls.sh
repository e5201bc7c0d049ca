#!/bin/sh
# Interop suite over TLS: the 14 cases of tools/suites/interop.sh with every connection on TLS,
# certificates generated for this run (spec/support/certs.py; the test CA signs a server
# certificate for localhost and *.test.google.fr). Flags as grpc-go's interop binaries take them:
# servers --use_tls --tls_cert_file --tls_key_file, clients --use_tls --use_test_ca --ca_file
# --server_host_override=foo.test.google.fr. Prints one "SUITE interop-tls-<pair> <passed>
# <failed>" line per pair (grpcio-grpcio, grpcio-lua, lua-grpcio). LUA picks the interpreter.
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
LUA=${LUA:-lua5.4}
build=$LUA; [ "$build" = luajit ] || build=lua5.4
PY=/usr/bin/python3
CASES="empty_unary large_unary client_streaming server_streaming ping_pong empty_stream
timeout_on_sleeping_server cancel_after_begin cancel_after_first_response
status_code_and_message special_status_message unimplemented_method unimplemented_service
custom_metadata"
tmp=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail_all() { for p in grpcio-grpcio grpcio-lua lua-grpcio; do echo "SUITE interop-tls-$p 0 14"; done; exit 0; }
if ! env -u LD_PRELOAD $PY spec/support/certs.py "$tmp/certs" >"$tmp/certs.log" 2>&1; then
  echo "interop-tls: certificates could not be made:"; cat "$tmp/certs.log"; fail_all
fi
SERVER_TLS="--use_tls=true --tls_cert_file=$tmp/certs/server.pem --tls_key_file=$tmp/certs/server.key"
CLIENT_TLS="--use_tls=true --use_test_ca=true --ca_file=$tmp/certs/ca.pem --server_host_override=foo.test.google.fr"

# start_server NAME CMD...: as in interop.sh
start_server() {
  name=$1; shift
  env -u LD_PRELOAD timeout 300 "$@" >"$tmp/$name.out" 2>&1 &
  pids="$pids $!"
  port=""
  i=0
  while [ $i -lt 100 ]; do
    port=$(sed -n 's/^listening on \([0-9]*\).*/\1/p' "$tmp/$name.out" | head -n 1)
    [ -n "$port" ] && return 0
    sleep 0.1; i=$((i + 1))
  done
  echo "interop-tls: $name server did not start:"; cat "$tmp/$name.out"
  return 1
}

run_pair() {
  pair=$1; shift
  passed=0; failed=0
  for c in $CASES; do
    # shellcheck disable=SC2086
    if env -u LD_PRELOAD timeout 30 "$@" --server_host=127.0.0.1 --server_port="$port" \
        $CLIENT_TLS --test_case="$c" >"$tmp/case.out" 2>&1; then
      passed=$((passed + 1)); echo "  tls $pair $c: ok"
    else
      failed=$((failed + 1)); echo "  tls $pair $c: FAILED"; sed 's/^/    /' "$tmp/case.out"
    fi
  done
  echo "SUITE interop-tls-$pair $passed $failed"
}


# shellcheck disable=SC2086
if start_server grpcio $PY spec/support/interop_server.py --port=0 $SERVER_TLS; then
  run_pair grpcio-grpcio $PY spec/support/interop_client.py
  run_pair lua-grpcio sh -c 'LGRPC_TOP="$0"; . "$0/tools/env.sh" "$1"; shift; exec "$@"' \
    "$top" "$build" "$LUA" examples/interop/client.lua
else
  echo "SUITE interop-tls-grpcio-grpcio 0 14"; echo "SUITE interop-tls-lua-grpcio 0 14"
fi

# shellcheck disable=SC2086
if start_server lua sh -c 'LGRPC_TOP="$0"; . "$0/tools/env.sh" "$1"; shift; exec "$@"' \
    "$top" "$build" "$LUA" examples/interop/server.lua --port=0 $SERVER_TLS; then
  run_pair grpcio-lua $PY spec/support/interop_client.py
else
  echo "SUITE interop-tls-grpcio-lua 0 14"
fi

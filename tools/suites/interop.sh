#!/bin/sh
# Interop suite: grpc's interop test cases (doc/interop-test-descriptions.md), 14 of them, run
# per pair of peers. Prints one "SUITE interop-<pair> <passed> <failed>" line per pair:
#   grpcio-grpcio   the grpcio client against the grpcio server (proves the peers themselves)
#   grpcio-lua      the grpcio client against examples/interop/server.lua
#   lua-grpcio      examples/interop/client.lua against the grpcio server
# Every process is bounded by timeout(1) and killed at the end. LUA picks the interpreter
# (lua5.4 by default; the build of the core follows it). interop-tls.sh runs this same script
# with INTEROP_NAME, INTEROP_SERVER_FLAGS and INTEROP_CLIENT_FLAGS (grpc-go's TLS flags) set.
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
LUA=${LUA:-lua5.4}
build=$LUA; [ "$build" = luajit ] || build=lua5.4
PY=/usr/bin/python3
NAME=${INTEROP_NAME:-interop}
SERVER_FLAGS=${INTEROP_SERVER_FLAGS:-}
CLIENT_FLAGS=${INTEROP_CLIENT_FLAGS:-}
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

# start_server NAME CMD...: runs CMD in the background, waits (10 s at most) for
# "listening on PORT" and sets $port; returns 1 when the server did not come up.
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
  echo "$NAME: $name server did not start:"; cat "$tmp/$name.out"
  return 1
}

# run_pair PAIR CLIENT-CMD...: runs each case with its own client process (30 s bound).
run_pair() {
  pair=$1; shift
  passed=0; failed=0
  for c in $CASES; do
    # shellcheck disable=SC2086
    if env -u LD_PRELOAD timeout 30 "$@" --server_host=127.0.0.1 --server_port="$port" \
        $CLIENT_FLAGS --test_case="$c" >"$tmp/case.out" 2>&1; then
      passed=$((passed + 1)); echo "  $pair $c: ok"
    else
      failed=$((failed + 1)); echo "  $pair $c: FAILED"; sed 's/^/    /' "$tmp/case.out"
    fi
  done
  echo "SUITE $NAME-$pair $passed $failed"
}

# shellcheck disable=SC2086
if start_server grpcio $PY spec/support/interop_server.py --port=0 $SERVER_FLAGS; then
  run_pair grpcio-grpcio $PY spec/support/interop_client.py
  grpcio_port=$port
  if [ -f examples/interop/client.lua ]; then
    port=$grpcio_port
    run_pair lua-grpcio sh -c 'LGRPC_TOP="$0"; . "$0/tools/env.sh" "$1"; shift; exec "$@"' \
      "$top" "$build" "$LUA" examples/interop/client.lua
  fi
else
  echo "SUITE $NAME-grpcio-grpcio 0 14"
fi

if [ -f examples/interop/server.lua ]; then
  if start_server lua sh -c 'LGRPC_TOP="$0"; . "$0/tools/env.sh" "$1"; shift; exec "$@"' \
      "$top" "$build" "$LUA" examples/interop/server.lua --port=0 $SERVER_FLAGS; then
    run_pair grpcio-lua $PY spec/support/interop_client.py
  else
    echo "SUITE $NAME-grpcio-lua 0 14"
  fi
fi

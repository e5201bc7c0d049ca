# bench/rpc.sh: the rpc section, sourced by bench/run.sh (uses its helpers and variables).
# Servers: the grpc++ async server (cpp), a grpc-go server (go) when Debian's Go packages build it
# offline, and lgrpc's server under lua5.4 and LuaJIT once the call layer exists. Each server is
# pinned to core $BENCH_CPU, every load generator to core $LOAD_CPU; all on 127.0.0.1.
# Client rows: the C++ client, and lgrpc's client under lua5.4 and LuaJIT, against the C++ server.
RPC_SECS=${BENCH_RPC_SECS:-3}
GRPC_CFLAGS=$(pkg-config --cflags grpc++ protobuf)
GRPC_LIBS=$(pkg-config --libs grpc++ protobuf)
started_pids=""
server_pid=""
server_port=""

rpc_cleanup() {
  for p in $started_pids; do kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in $started_pids; do kill -9 "$p" 2>/dev/null; done
  started_pids=""
}
trap rpc_cleanup EXIT INT TERM

# unavailable_rows IMPL REASON: every rpc row of a server that cannot run.
unavailable_rows() {
  for row in h2load-small.calls/s h2load-large.calls/s unary-small.calls/s unary-large.calls/s \
    latency-small.p50-us bidi-pipelined-small.msgs/s bidi-pingpong-small.msgs/s server-stream-small.msgs/s; do
    echo "UNAVAILABLE rpc.$row.$1 $2" >>"$results"
  done
}

# start_server IMPL CMD...: starts a server on 127.0.0.1:0, pinned; sets server_pid, server_port.
start_server() {
  impl=$1; shift
  : >"$out/server.$impl.txt"
  taskset -c "$BENCH_CPU" "$@" >"$out/server.$impl.txt" 2>>"$log" &
  server_pid=$!
  started_pids="$started_pids $server_pid"
  server_port=""
  i=0
  while [ $i -lt 100 ]; do
    server_port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$out/server.$impl.txt")
    [ -n "$server_port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
  done
  return 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=""
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# h2load_row IMPL SIZE: h2load -c 16 -m 32 for RPC_SECS against the current server, after one
# checked request with nghttp (grpc-status 0, the echoed body the size that was sent).
h2load_row() {
  impl=$1; size=$2; frame=$out/$size.grpc
  url=http://127.0.0.1:$server_port/lgrpc.bench.Echo/Unary
  key=rpc.h2load-$size.calls/s.$impl
  hdrs="-H content-type:application/grpc -H te:trailers"
  # shellcheck disable=SC2086
  timeout 10 nghttp $hdrs -d "$frame" "$url" >"$out/nghttp.body" 2>>"$log"
  # shellcheck disable=SC2086
  timeout 10 nghttp -v $hdrs -d "$frame" "$url" >"$out/nghttp.v" 2>>"$log"
  if ! grep -q 'grpc-status: 0' "$out/nghttp.v"; then
    echo "UNAVAILABLE $key nghttp check: no grpc-status: 0 in the trailers" >>"$results"; return
  fi
  if [ "$(wc -c <"$out/nghttp.body")" != "$(wc -c <"$frame")" ]; then
    echo "UNAVAILABLE $key nghttp check: echoed $(wc -c <"$out/nghttp.body") bytes, sent $(wc -c <"$frame")" >>"$results"; return
  fi
  t0=$(cpu_ticks "$server_pid")
  # shellcheck disable=SC2086
  timeout -k 5 $((RPC_SECS + 30)) taskset -c "$LOAD_CPU" h2load -c 16 -m 32 -t 1 -D "$RPC_SECS" \
    --warm-up-time=1 $hdrs -d "$frame" "$url" >"$out/h2load.txt" 2>>"$log"
  t1=$(cpu_ticks "$server_pid")
  rps=$(sed -n 's/^finished in [0-9.]*s, \([0-9.]*\) req\/s.*/\1/p' "$out/h2load.txt")
  ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2/p' "$out/h2load.txt")
  succeeded=${ok% *}; failed=${ok#* }
  if [ -z "$rps" ] || [ -z "$ok" ] || [ "$failed" != 0 ] || [ "$succeeded" = 0 ]; then
    echo "UNAVAILABLE $key h2load: $(grep -E '^(requests|status codes):' "$out/h2load.txt" | tr '\n' ' ')" >>"$results"
    return
  fi
  echo "RESULT $key $rps" >>"$results"
  hz=$(getconf CLK_TCK)
  awk -v a="$t0" -v b="$t1" -v n="$succeeded" -v hz="$hz" -v k="rpc.h2load-$size.server-cpu-us/call.$impl" \
    'BEGIN { if (n > 0) printf "RESULT %s %.2f\n", k, (b - a) / hz * 1e6 / n }' >>"$results"
}

# client_rows IMPL: the C++ client's measurements against the current server (column IMPL).
client_rows() {
  impl=$1; addr=127.0.0.1:$server_port; c="timeout -k 5 $((RPC_SECS * 2 + 30)) taskset -c $LOAD_CPU $out/echo_client"
  for size in small large; do
    if ! $c check "$addr" "$out/$size.bin" >"$out/check.$impl.$size" 2>>"$log"; then
      echo "UNAVAILABLE rpc.unary-$size.calls/s.$impl check: $(cat "$out/check.$impl.$size")" >>"$results"
      return
    fi
    echo "INFO rpc check $impl $size: $(cat "$out/check.$impl.$size")" >>"$results"
  done
  timed $((RPC_SECS * 3 + 30)) $c unary "$addr" "$out/small.bin" unary-small "$impl" "$RPC_SECS" 64 "$server_pid"
  timed $((RPC_SECS * 3 + 30)) $c unary "$addr" "$out/large.bin" unary-large "$impl" "$RPC_SECS" 64 "$server_pid"
  timed $((RPC_SECS * 3 + 30)) $c latency "$addr" "$out/small.bin" latency-small "$impl" "$RPC_SECS" 1000
  timed $((RPC_SECS * 3 + 30)) $c bidi-pipelined "$addr" "$out/small.bin" bidi-pipelined-small "$impl" "$RPC_SECS" 64
  timed $((RPC_SECS * 3 + 30)) $c bidi-pingpong "$addr" "$out/small.bin" bidi-pingpong-small "$impl" "$RPC_SECS" 1
  timed $((RPC_SECS * 3 + 30)) $c server-stream "$addr" "$out/small.bin" server-stream-small "$impl" "$RPC_SECS" 1000
}

# server_rows IMPL CMD...: start, measure with h2load and the C++ client, stop.
server_rows() {
  impl=$1; shift
  say "rpc: $impl server (server on core $BENCH_CPU, load on core $LOAD_CPU)"
  if ! start_server "$impl" "$@"; then
    reason=$(head -n 1 "$out/server.$impl.txt" | cut -c1-200)
    unavailable_rows "$impl" "${reason:-the server did not start (see $log)}"
    stop_server; return
  fi
  h2load_row "$impl" small
  h2load_row "$impl" large
  client_rows "$impl"
  stop_server
}

say "rpc: building the grpc++ reference programs"
if stale "$gen/bench.grpc.pb.cc" bench/bench.proto; then
  protoc -Ibench --grpc_out="$gen" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" bench/bench.proto ||
    say "grpc_cpp_plugin failed"
fi
# shellcheck disable=SC2086
build $out/echo_server "bench/echo_server.cc $gen/bench.grpc.pb.cc $gen/bench.pb.cc" \
  g++ -O2 -std=c++17 -I"$gen" -Ibench $GRPC_CFLAGS -o $out/echo_server bench/echo_server.cc \
  "$gen/bench.pb.cc" "$gen/bench.grpc.pb.cc" $GRPC_LIBS &&
# shellcheck disable=SC2086
build $out/echo_client "bench/echo_client.cc $gen/bench.grpc.pb.cc $gen/bench.pb.cc" \
  g++ -O2 -std=c++17 -I"$gen" -Ibench $GRPC_CFLAGS -o $out/echo_client bench/echo_client.cc \
  "$gen/bench.pb.cc" "$gen/bench.grpc.pb.cc" $GRPC_LIBS
rpc_built=$?

# gRPC frames (uncompressed flag, 4-byte big-endian length, message) for h2load and nghttp.
for size in small large; do
  $PY -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(b"\0"+struct.pack(">I",len(d))+d)' \
    "$out/$size.bin" "$out/$size.grpc"
done

if [ "$rpc_built" -ne 0 ]; then
  unavailable_rows cpp "the grpc++ reference did not build (see $log)"
  failures=$((failures + 1))
else
  server_rows cpp "$out/echo_server" 127.0.0.1:0
  # Lua clients against the C++ server.
  if start_server cpp-for-lua "$out/echo_server" 127.0.0.1:0; then
    lgrpc_rows=1
    for b in lua5.4 luajit; do
      say "rpc: lgrpc client under $b"
      timed $((RPC_SECS * 8 + 60)) env $(lua_env $b) taskset -c "$LOAD_CPU" $b bench/rpc_client.lua \
        "127.0.0.1:$server_port" "$out" "$RPC_SECS" "$server_pid"
    done
    lgrpc_rows=0
    stop_server
  fi
fi

# grpc-go: optional; a row with the reason when it cannot be built offline from Debian's packages.
if [ -f bench/go/build.sh ]; then
  if go_reason=$(sh bench/go/build.sh "$out" 2>>"$log"); then
    server_rows go "$out/echo_server_go" 127.0.0.1:0
  else
    unavailable_rows go "${go_reason:-the grpc-go server did not build (see $log)}"
  fi
elif ! command -v go >/dev/null 2>&1; then
  unavailable_rows go "no Go toolchain (Debian golang-go is not installed; golang-google-grpc-dev sources are)"
else
  unavailable_rows go "no grpc-go server in bench/ yet"
fi

lgrpc_rows=1
for b in lua5.4 luajit; do
  server_rows "$b" env $(lua_env $b) $b bench/rpc_server.lua 127.0.0.1:0
done
lgrpc_rows=0
rpc_cleanup
trap - EXIT INT TERM

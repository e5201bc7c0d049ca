# bench/rpc.sh: the rpc section, sourced by bench/run.sh (uses its helpers and variables).
# Servers: the grpc++ async server (cpp), a grpc-go server (go) when Debian's Go packages build it
# offline, and lgrpc's server under lua5.4 and LuaJIT once the call layer exists. Each server is
# pinned to core $BENCH_CPU, every load generator to core $LOAD_CPU; all on 127.0.0.1.
# Client rows: the C++ client, and lgrpc's client under lua5.4 and LuaJIT, against the C++ server.
# TLS rows: each server again with a throwaway P-256 certificate (made here into bench/out, never
# committed): h2load small unary over TLS 1.3 (ALPN h2), and connections per second where every
# connection does a full handshake and exactly one unary call (tls_connect_row), with the same
# measurement in plaintext beside it.
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
    latency-small.p50-us bidi-pipelined-small.msgs/s bidi-pingpong-small.msgs/s server-stream-small.msgs/s \
    connect-plain.conns/s; do
    echo "UNAVAILABLE rpc.$row.$1 $2" >>"$results"
  done
}
unavailable_tls_rows() {
  for row in h2load-tls-small.calls/s connect-tls.conns/s; do
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

# h2load_row IMPL SIZE [tls]: h2load -c 16 -m 32 for RPC_SECS against the current server, after one
# checked request with nghttp (grpc-status 0, the echoed body the size that was sent). With tls the
# URL is https (h2load and nghttp negotiate h2 by ALPN; neither verifies the certificate) and the
# rows are h2load-tls-SIZE.
h2load_row() {
  impl=$1; size=$2; frame=$out/$size.grpc
  if [ "${3:-}" = tls ]; then
    url=https://127.0.0.1:$server_port/lgrpc.bench.Echo/Unary; test=h2load-tls-$size
  else
    url=http://127.0.0.1:$server_port/lgrpc.bench.Echo/Unary; test=h2load-$size
  fi
  key=rpc.$test.calls/s.$impl
  hdrs="-H content-type:application/grpc -H te:trailers"
  # shellcheck disable=SC2086
  timeout 10 nghttp $hdrs -d "$frame" "$url" >"$out/nghttp.body" 2>>"$log"
  # shellcheck disable=SC2086
  timeout 10 nghttp -v $hdrs -d "$frame" "$url" >"$out/nghttp.v" 2>>"$log"
  if ! grep -aq 'grpc-status: 0' "$out/nghttp.v"; then
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
  awk -v a="$t0" -v b="$t1" -v n="$succeeded" -v hz="$hz" -v k="rpc.$test.server-cpu-us/call.$impl" \
    'BEGIN { if (n > 0) printf "RESULT %s %.2f\n", k, (b - a) / hz * 1e6 / n }' >>"$results"
}

# connect_row IMPL plain|tls: connections per second when each connection carries exactly one
# small unary call: h2load -c 64 -n 64 -m 1 (64 connections opened together, one request each,
# then closed), run again and again for RPC_SECS; the figure is all connections that succeeded
# divided by the sum of h2load's own "finished in" times (process start-up is outside them). Over
# TLS every connection is a full TLS 1.3 handshake: h2load keeps no session cache, so nothing is
# resumed. The first call on a fresh connection is included: that is what a new client pays.
connect_row() {
  impl=$1; frame=$out/small.grpc
  if [ "$2" = tls ]; then url=https://127.0.0.1:$server_port/lgrpc.bench.Echo/Unary
  else url=http://127.0.0.1:$server_port/lgrpc.bench.Echo/Unary; fi
  key=rpc.connect-$2.conns/s.$impl
  hdrs="-H content-type:application/grpc -H te:trailers"
  total=0; secs=0; runs=0; bad=""
  end=$(( $(date +%s) + RPC_SECS ))
  while [ "$(date +%s)" -lt "$end" ] || [ $runs -eq 0 ]; do
    # shellcheck disable=SC2086
    timeout -k 5 30 taskset -c "$LOAD_CPU" h2load -c 64 -n 64 -m 1 -t 1 $hdrs -d "$frame" "$url" \
      >"$out/h2load.txt" 2>>"$log"
    t=$(sed -n 's/^finished in \([0-9.]*\)\(m*s\), .*/\1 \2/p' "$out/h2load.txt")
    ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2/p' "$out/h2load.txt")
    if [ -z "$t" ] || [ "$ok" != "64 0" ]; then
      bad="h2load: $(grep -E '^(requests|status codes):' "$out/h2load.txt" | tr '\n' ' ')"; break
    fi
    secs=$(echo "$t" | awk -v s="$secs" '{ print s + ($2 == "ms" ? $1 / 1000 : $1) }')
    total=$((total + 64)); runs=$((runs + 1))
  done
  if [ -n "$bad" ]; then echo "UNAVAILABLE $key ${bad:-no h2load output}" >>"$results"; return; fi
  awk -v n="$total" -v s="$secs" -v k="$key" 'BEGIN { if (s > 0) printf "RESULT %s %.1f\n", k, n / s }' >>"$results"
}

# tls_rows IMPL CMD...: start the server with TLS (CMD already carries the certificate), measure
# h2load small unary and connections/s over TLS, stop.
tls_rows() {
  tls_impl=$1; shift # start_server sets impl (the server's output file name: IMPL-tls)
  [ "$RPC_ROWS" = mem ] && return
  say "rpc: $tls_impl server over TLS"
  if [ ! -s "$out/tls.cert.pem" ]; then unavailable_tls_rows "$tls_impl" "no test certificate (see $log)"; return; fi
  if ! start_server "$tls_impl-tls" "$@"; then
    reason=$(head -n 1 "$out/server.$tls_impl-tls.txt" | cut -c1-200)
    unavailable_tls_rows "$tls_impl" "${reason:-the TLS server did not start (see $log)}"
    stop_server; return
  fi
  h2load_row "$tls_impl" small tls
  connect_row "$tls_impl" tls
  stop_server
}

# The memory rows (issue 11): the server's RSS per idle connection and per in-flight unary call,
# with bench/out/memload as the load (see bench/memload.c). Each round has a server of its own,
# started by start_server with the server's command line, so nothing one round freed and the
# allocator kept is reused by the next: warm-up (memload idle 16: sixteen connections with one
# small call each; memload inflight 20: one connection holding 20 calls, then half-closed), RSS
# (Rss of /proc/PID/smaps_rollup) read 0.5 s later, then the measured memload round; RSS again
# 0.5 s after its READY.
#   mem-idle-conn bytes/conn      (RSS at READY - RSS before) / MEM_N, MEM_N connections
#   mem-inflight-call bytes/call  (RSS at READY - RSS before - C x the idle row) / MEM_N, where C
#                                 connections carry the MEM_N calls (min(100, the server's
#                                 MAX_CONCURRENT_STREAMS) each): the calls' own cost. Not
#                                 available when the server answered any call before its
#                                 half-close (grpc++ runs a unary handler as soon as the message
#                                 is in): those calls were not in flight
#   mem-used-conn bytes/conn      as mem-idle-conn, with MEM_USED_N connections that each made
#                                 MEM_USED_CALLS complete calls, one after another, before being
#                                 held: what an idle connection that has served calls keeps
# BENCH_RPC_ROWS=mem runs these rows alone (no h2load, no client rows, no TLS rows); BENCH_REPEAT
# repeats them (the report takes medians); BENCH_MEM_N changes N.
MEM_N=${BENCH_MEM_N:-1000}
MEM_USED_N=100
MEM_USED_CALLS=1000
RPC_ROWS=${BENCH_RPC_ROWS:-all}
# mem_rss PID: resident kB from /proc/PID/smaps_rollup (summed from the page tables; VmRSS in
# /proc/PID/status comes from per-CPU counters that may lag), VmRSS where there is no smaps_rollup.
mem_rss() {
  if [ -r "/proc/$1/smaps_rollup" ]; then sed -n 's/^Rss:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/smaps_rollup"
  else sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status"; fi 2>/dev/null
}

# mem_load MODE N CALLS [measure]: one memload round (CALLS complete calls per connection first)
# against the current server; with measure, sets mem_after (kB, 0.5 s after READY) and mem_ready
# (memload's READY line). Returns 1 with mem_why.
mem_load() {
  f=$out/memload.$1.txt
  : >"$f"
  taskset -c "$LOAD_CPU" "$out/memload" "$1" "127.0.0.1:$server_port" "$out/small.grpc" "$2" "$3" >"$f" 2>&1 &
  mpid=$!
  started_pids="$started_pids $mpid"
  i=0
  until grep -q '^READY' "$f"; do
    if ! kill -0 "$mpid" 2>/dev/null || [ $i -ge 1500 ]; then
      kill -9 "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null
      mem_why="memload $1 $2: $(grep -v '^READY' "$f" | tail -n 1 | cut -c1-200)"; return 1
    fi
    sleep 0.1; i=$((i + 1))
  done
  if [ "${4:-}" = measure ]; then sleep 0.5; mem_after=$(mem_rss "$server_pid"); mem_ready=$(grep '^READY' "$f"); fi
  kill -USR1 "$mpid"
  if ! wait "$mpid"; then mem_why="memload $1 $2: $(grep -v '^READY' "$f" | tail -n 1 | cut -c1-200)"; return 1; fi
  return 0
}

# mem_round IMPL MODE N CALLS CMD...: a fresh server, the warm-up, the measured round; sets
# mem_before and mem_after (kB) and mem_ready, or returns 1 with mem_why.
mem_round() {
  mimpl=$1; mmode=$2; mn=$3; mcalls=$4; shift 4
  mem_before=""; mem_after=""; mem_ready=""
  if ! start_server "$mimpl-mem" "$@"; then
    mem_why=$(head -n 1 "$out/server.$mimpl-mem.txt" | cut -c1-200)
    mem_why=${mem_why:-the server did not start (see $log)}; stop_server; return 1
  fi
  if ! mem_load idle 16 1 || ! mem_load inflight 20 1; then stop_server; mem_why="warm-up: $mem_why"; return 1; fi
  sleep 0.5
  mem_before=$(mem_rss "$server_pid")
  mem_load "$mmode" "$mn" "$mcalls" measure || { stop_server; return 1; }
  stop_server
  if [ -z "$mem_before" ] || [ -z "$mem_after" ]; then mem_why="no RSS in /proc/$server_pid"; return 1; fi
}

# mem_rows IMPL CMD...: both memory rows for one server command (impl is IMPL again afterwards:
# start_server sets it).
mem_rows() {
  mem_impl=$1
  mem_rows_of "$@"
  impl=$mem_impl
}
mem_rows_of() {
  shift
  need=$((MEM_N + 64)); why="" # descriptors: the server's (and memload's) MEM_N sockets and a margin
  # shellcheck disable=SC3045 # ulimit -n: dash and bash have it
  if [ ! -x "$out/memload" ]; then why="bench/memload.c did not build (see $log)"
  elif [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ] && ! ulimit -S -n "$need" 2>/dev/null; then
    why="cannot raise the open-file limit to $need (ulimit -n is $(ulimit -n), hard $(ulimit -H -n))"
  fi
  if [ -n "$why" ]; then
    for row in mem-idle-conn.bytes/conn mem-inflight-call.bytes/call mem-used-conn.bytes/conn; do
      echo "UNAVAILABLE rpc.$row.$mem_impl $why" >>"$results"
    done
    return
  fi
  say "rpc: $mem_impl server, memory: $MEM_N idle connections, $MEM_N calls in flight, $MEM_USED_N used connections"
  idle=""
  if mem_round "$mem_impl" idle "$MEM_N" 1 "$@"; then
    idle=$(( (mem_after - mem_before) * 1024 / MEM_N ))
    echo "RESULT rpc.mem-idle-conn.bytes/conn.$mem_impl $idle" >>"$results"
    info "mem $mem_impl idle: RSS $mem_before kB before, $mem_after kB at READY; $mem_ready"
  else
    echo "UNAVAILABLE rpc.mem-idle-conn.bytes/conn.$mem_impl $mem_why" >>"$results"
  fi
  if [ -z "$idle" ]; then
    echo "UNAVAILABLE rpc.mem-inflight-call.bytes/call.$mem_impl needs the idle row (the connections' cost is subtracted)" >>"$results"
  elif mem_round "$mem_impl" inflight "$MEM_N" 1 "$@"; then
    conns=$(echo "$mem_ready" | sed -n 's/.* conns=\([0-9]*\) .*/\1/p')
    early=$(echo "$mem_ready" | sed -n 's/.* early=\([0-9]*\).*/\1/p')
    per_call=$(( ((mem_after - mem_before) * 1024 - conns * idle) / MEM_N ))
    info "mem $mem_impl inflight: RSS $mem_before kB before, $mem_after kB at READY, minus $conns x $idle B of idle connections; $mem_ready"
    if [ "$early" = 0 ]; then
      echo "RESULT rpc.mem-inflight-call.bytes/call.$mem_impl $per_call" >>"$results"
    else
      echo "UNAVAILABLE rpc.mem-inflight-call.bytes/call.$mem_impl the server answered $early of $MEM_N calls before their half-close, so they were not in flight ($per_call B/call left)" >>"$results"
    fi
  else
    echo "UNAVAILABLE rpc.mem-inflight-call.bytes/call.$mem_impl $mem_why" >>"$results"
  fi
  if mem_round "$mem_impl" idle "$MEM_USED_N" "$MEM_USED_CALLS" "$@"; then
    echo "RESULT rpc.mem-used-conn.bytes/conn.$mem_impl $(( (mem_after - mem_before) * 1024 / MEM_USED_N ))" >>"$results"
    info "mem $mem_impl used: RSS $mem_before kB before, $mem_after kB at READY, $MEM_USED_CALLS calls made on each connection; $mem_ready"
  else
    echo "UNAVAILABLE rpc.mem-used-conn.bytes/conn.$mem_impl $mem_why" >>"$results"
  fi
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
  repeat mem_rows "$impl" "$@"
  [ "$RPC_ROWS" = mem ] && return
  if ! start_server "$impl" "$@"; then
    reason=$(head -n 1 "$out/server.$impl.txt" | cut -c1-200)
    unavailable_rows "$impl" "${reason:-the server did not start (see $log)}"
    stop_server; return
  fi
  h2load_row "$impl" small
  h2load_row "$impl" large
  connect_row "$impl" plain
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
build $out/echo_client "bench/echo_client.cc $gen/bench.grpc.pb.cc $gen/bench.pb.cc" \
  g++ -O2 -std=c++17 -I"$gen" -Ibench $GRPC_CFLAGS -o $out/echo_client bench/echo_client.cc \
  "$gen/bench.pb.cc" "$gen/bench.grpc.pb.cc" $GRPC_LIBS
rpc_built=$?
build $out/memload bench/memload.c cc -O2 -Wall -o $out/memload bench/memload.c -lnghttp2 || rm -f $out/memload

# gRPC frames (uncompressed flag, 4-byte big-endian length, message) for h2load and nghttp.
for size in small large; do
  $PY -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(b"\0"+struct.pack(">I",len(d))+d)' \
    "$out/$size.bin" "$out/$size.grpc"
done

# A throwaway certificate for the TLS rows: self-signed P-256, valid one day, for localhost and
# 127.0.0.1; made on every run into bench/out (ignored by git).
rm -f "$out/tls.cert.pem" "$out/tls.key.pem"
timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$out/tls.key.pem" -out "$out/tls.cert.pem" \
  >>"$log" 2>&1 || say "openssl could not make the test certificate"
tls_args="--tls_cert $out/tls.cert.pem --tls_key $out/tls.key.pem"

if [ "$rpc_built" -ne 0 ]; then
  unavailable_rows cpp "the grpc++ reference did not build (see $log)"
  unavailable_tls_rows cpp "the grpc++ reference did not build (see $log)"
  failures=$((failures + 1))
else
  server_rows cpp "$out/echo_server" 127.0.0.1:0
  # shellcheck disable=SC2086
  tls_rows cpp "$out/echo_server" 127.0.0.1:0 $tls_args
  # Lua clients against the C++ server.
  if [ "$RPC_ROWS" != mem ] && start_server cpp-for-lua "$out/echo_server" 127.0.0.1:0; then
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
  tls_rows "$b" env $(lua_env $b) $b bench/rpc_server.lua 127.0.0.1:0 "$out/tls.cert.pem" "$out/tls.key.pem"
done
lgrpc_rows=0
rpc_cleanup
trap - EXIT INT TERM

#!/bin/sh
# bench/go/instructions.sh [IMPL...]: server instructions per message under valgrind (cachegrind),
# the load-independent companion of the rpc table's msgs/s and calls/s (which swing by 2x on a
# busy 2-core machine). For each server (cpp, go, lua5.4, luajit; default all) and each kind of
# work in KINDS (default "stream bidi unary"; stream: ServerStream calls of 1000 small messages;
# bidi: one Bidi stream, at most 64 messages unanswered; unary: calls, 64 in flight; all driven by
# bench/go/drive.py with grpcio, every answer compared), the server runs under valgrind twice,
# with N = 2000 and N = 12000 messages after one warm-up call; the figure is
# (Ir(12000) - Ir(2000)) / 10000, so start-up, warm-up and shutdown cancel out. Counts every
# thread of the server process (grpc++'s and the Go runtime's included).
# Needs a finished `BENCH_SECTIONS=rpc sh bench/run.sh` (bench/out: servers, small.bin, generated
# Python) and both Lua builds. Server on core BENCH_CPU (1), driver on BENCH_LOAD_CPU (0).
# Prints "INSTR KIND IMPL n instructions/message"; the valgrind files stay in bench/out/instructions/.
# Cachegrind with --cache-sim=no counts the same Ir as callgrind but keeps no call stack: callgrind
# 3.19 aborts on the Go runtime's preemption signals (an assertion in its signal handling), and
# under LuaJIT its call-stack bookkeeping grows past a million frames (JIT traces are entered and
# left by jumps, not calls and returns).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
out=bench/out
dir=$out/instructions
mkdir -p "$dir"
BENCH_CPU=${BENCH_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
PY="env -u LD_PRELOAD /usr/bin/python3"
for f in "$out/small.bin" "$out/gen/bench_pb2.py"; do
  [ -e "$f" ] || { echo "instructions.sh: $f is missing: run BENCH_SECTIONS=\"codec rpc\" sh bench/run.sh first" >&2; exit 1; }
done
command -v valgrind >/dev/null 2>&1 || { echo "instructions.sh: valgrind is not installed" >&2; exit 1; }

# total IMPL KIND N: total Ir of one server run; empty when the server or the driver failed.
total() {
  impl=$1; kind=$2; n=$3; f=$dir/$impl.$kind.$n
  case $impl in
    cpp) set -- "$out/echo_server" 127.0.0.1:0 ;;
    go) set -- "$out/echo_server_go" 127.0.0.1:0 ;;
    lua5.4|luajit) # the module paths of that build, as bench/run.sh's lua_env
      # shellcheck disable=SC1091,SC2240
      paths=$(. tools/env.sh "$impl" && echo "LUA_PATH=$LUA_PATH LUA_CPATH=$LUA_CPATH LUA_PATH_5_4=$LUA_PATH_5_4 LUA_CPATH_5_4=$LUA_CPATH_5_4")
      # shellcheck disable=SC2086
      set -- env $paths "$impl" bench/rpc_server.lua 127.0.0.1:0 ;;
    *) echo "instructions.sh: unknown server $impl" >&2; return 1 ;;
  esac
  rm -f "$f.cg"
  : >"$f.out"
  # --trace-children: for the Lua servers valgrind starts env(1), which execs the interpreter.
  taskset -c "$BENCH_CPU" valgrind --tool=cachegrind --cache-sim=no --trace-children=yes \
    --cachegrind-out-file="$f.cg" "$@" >"$f.out" 2>"$f.err" &
  pid=$!
  echo $pid >"$dir/server.pid" # for the trap below: total runs in a subshell
  port=""; i=0
  while [ -z "$port" ] && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do
    sleep 0.1; i=$((i + 1)); port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$f.out")
  done
  ok=0
  if [ -n "$port" ]; then
    d="timeout 600 taskset -c $LOAD_CPU $PY bench/go/drive.py $out/gen $out/small.bin 127.0.0.1:$port"
    $d ping 1 >>"$f.err" 2>&1 && $d "$kind" "$n" >>"$f.err" 2>&1 && ok=1
  fi
  kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$dir/server.pid"
  [ $ok = 1 ] || { echo "instructions.sh: $impl $kind $n failed (see $f.err)" >&2; return 1; }
  sed -n 's/^summary: \([0-9]*\)$/\1/p' "$f.cg"
}

stop_server() { [ -s "$dir/server.pid" ] && kill "$(cat "$dir/server.pid")" 2>/dev/null; rm -f "$dir/server.pid"; }
trap 'stop_server; exit 1' INT TERM
trap stop_server EXIT
impls=${*:-cpp go lua5.4 luajit}
for impl in $impls; do
  for kind in ${KINDS:-stream bidi unary}; do
    a=$(total "$impl" "$kind" 2000) && b=$(total "$impl" "$kind" 12000) && [ -n "$a" ] && [ -n "$b" ] &&
      echo "INSTR $kind $impl $(( (b - a) / 10000 )) instructions/message"
  done
done

#!/bin/sh
# bench/run.sh: what `make bench` runs once both Lua builds exist. Builds the reference programs
# into bench/out (protoc, protoc-c, grpc_cpp_plugin output and binaries), checks that every
# implementation decodes the same bytes to the same values, measures each section, and prints the
# tables of docs/benchmarks.md through bench/report.lua.
#   BENCH_SECTIONS="codec compile rpc"   sections to run (default: all three)
#   BENCH_REPEAT=N                       run each timed program N times (default 1; medians taken)
# Everything is pinned with taskset (benchmarks on core 1; in the rpc section servers on core 1
# and load generators on core 0), bounded with timeout(1), and every process started is killed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
out=bench/out
gen=$out/gen
results=$out/results.txt
log=$out/run.log
mkdir -p "$gen"
: >"$results"
: >"$log"
SECTIONS=${BENCH_SECTIONS:-"codec compile rpc"}
REPEAT=${BENCH_REPEAT:-1}
BENCH_CPU=${BENCH_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
PY="env -u LD_PRELOAD /usr/bin/python3"
PB_CFLAGS=$(pkg-config --cflags protobuf)
PB_LIBS=$(pkg-config --libs protobuf)
failures=0

say() { echo "bench: $*" >&2; }
info() { echo "INFO $*" >>"$results"; }
# stale TARGET DEP...: true when TARGET is missing or older than a DEP.
stale() {
  t=$1; shift
  [ -e "$t" ] || return 0
  for d in "$@"; do [ "$d" -nt "$t" ] && return 0; done
  return 1
}
# timed SECONDS CMD...: runs a benchmark program, appends its output to the results.
# A failure measuring a reference fails the run; one measuring lgrpc (lgrpc_rows=1) is a row
# "not available" in the table, counted apart: the bench reports lgrpc's bugs, it does not hide them.
lgrpc_rows=0
lgrpc_failures=0
timed() {
  s=$1; shift
  timeout -k 5 "$s" "$@" >>"$results" 2>>"$log" && return 0
  say "failed ($?): $*"
  if [ "$lgrpc_rows" = 1 ]; then lgrpc_failures=$((lgrpc_failures + 1)); else failures=$((failures + 1)); fi
}
repeat() { i=0; while [ $i -lt "$REPEAT" ]; do "$@"; i=$((i + 1)); done; }
# lua_env BUILD: env(1) assignments for the module paths of one lgrpc build (tools/env.sh).
lua_env() {
  ( . tools/env.sh "$1" && echo "LUA_PATH=$LUA_PATH LUA_CPATH=$LUA_CPATH LUA_PATH_5_4=$LUA_PATH_5_4 LUA_CPATH_5_4=$LUA_CPATH_5_4 LGRPC_TOP=$LGRPC_TOP" )
}

info "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -sr)"
info "versions: $(lua5.4 -v 2>&1 | cut -d' ' -f1-2), $(luajit -v 2>&1 | cut -d' ' -f1-2), protobuf $(pkg-config --modversion protobuf), protobuf-c $(pkg-config --modversion libprotobuf-c), grpc++ $(pkg-config --modversion grpc++ 2>/dev/null || echo -)"

# Code generation and reference builds (only what changed).
if stale "$gen/bench.pb.cc" bench/bench.proto; then
  say "generating code from bench/bench.proto"
  protoc -Ibench --cpp_out="$gen" --python_out="$gen" bench/bench.proto &&
    protoc-c -Ibench --c_out="$gen" bench/bench.proto || { say "code generation failed"; exit 1; }
fi
build() { # build TARGET "DEPS" CMD...
  t=$1; d=$2; shift 2
  # shellcheck disable=SC2086
  if stale "$t" $d; then say "building $t"; "$@" || { say "build of $t failed"; return 1; }; fi
}

case " $SECTIONS " in *" codec "*|*" compile "*)
  build $out/codec_pbc "bench/codec_pbc.c bench/timing.h $gen/bench.pb-c.c" \
    cc -O2 -I"$gen" -Ibench -o $out/codec_pbc bench/codec_pbc.c "$gen/bench.pb-c.c" -lprotobuf-c || exit 1
  build $out/codec_cpp "bench/codec_cpp.cc bench/timing.h $gen/bench.pb.cc" \
    g++ -O2 -std=c++17 -I"$gen" -Ibench $PB_CFLAGS -o $out/codec_cpp bench/codec_cpp.cc "$gen/bench.pb.cc" $PB_LIBS || exit 1
  build $out/compile_cpp "bench/compile_cpp.cc bench/timing.h" \
    g++ -O2 -std=c++17 -Ibench $PB_CFLAGS -o $out/compile_cpp bench/compile_cpp.cc $PB_LIBS -lprotoc || exit 1
esac

# Section codec --------------------------------------------------------------------------------
case " $SECTIONS " in *" codec "*)
  say "codec: instances and cross-check"
  $PY bench/instances.py "$gen" "$out" | sed 's/^INSTANCE \([a-z]*\) \([0-9]*\) bytes/INFO size \1 \2/' >>"$results"
  check="$out/small.json $out/large.json"
  for size in small large; do
    $out/codec_pbc roundtrip $out/$size.bin $out/protobuf-c.$size.bin && check="$check $out/protobuf-c.$size.bin"
    $out/codec_cpp roundtrip $out/$size.bin $out/cpp.$size.bin && check="$check $out/cpp.$size.bin"
  done
  for b in lua5.4 luajit; do
    rm -f $out/$b.*.bin $out/$b.*.json $out/$b-from-json.*.bin
    env $(lua_env $b) timeout 60 $b bench/codec.lua roundtrip $out >>"$log" 2>&1
    for f in $out/$b.small.bin $out/$b.large.bin $out/$b.small.json $out/$b.large.json \
      $out/$b-from-json.small.bin $out/$b-from-json.large.bin; do
      [ -e "$f" ] && check="$check $f"
    done
  done
  # shellcheck disable=SC2086
  if ! $PY bench/instances.py "$gen" "$out" --check $check >$out/check.txt 2>&1; then
    say "cross-check FAILED:"; grep -v ' ok$' $out/check.txt >&2
    failures=$((failures + 1))
  fi
  sed 's/^CHECK/INFO check/' $out/check.txt >>"$results"
  grep '^CHECK.*FAILED' "$log" | sed 's/^CHECK/INFO check/' >>"$results"
  say "codec: timing (core $BENCH_CPU)"
  for size in small large; do
    repeat timed 120 taskset -c "$BENCH_CPU" $out/codec_pbc time $size $out/$size.bin
    repeat timed 120 taskset -c "$BENCH_CPU" $out/codec_cpp time $size $out/$size.bin
  done
  lgrpc_rows=1
  for b in lua5.4 luajit; do
    repeat timed 300 env $(lua_env $b) taskset -c "$BENCH_CPU" $b bench/codec.lua time $out
  done
  lgrpc_rows=0
  repeat timed 120 taskset -c "$BENCH_CPU" $PY bench/codec_py.py "$gen" "$out"
esac

# Section compile ------------------------------------------------------------------------------
case " $SECTIONS " in *" compile "*)
  say "compile: descriptor.proto (core $BENCH_CPU)"
  dp=/usr/include/google/protobuf/descriptor.proto
  repeat timed 60 taskset -c "$BENCH_CPU" $out/compile_cpp $dp google/protobuf/descriptor.proto
  lgrpc_rows=1
  for b in lua5.4 luajit; do
    repeat timed 120 env $(lua_env $b) taskset -c "$BENCH_CPU" $b bench/compile.lua $dp google/protobuf/descriptor.proto
  done
  lgrpc_rows=0
esac

# Section rpc ----------------------------------------------------------------------------------
case " $SECTIONS " in *" rpc "*)
  # the instances (small.bin, large.bin) come from the codec section; rpc alone makes them
  if [ ! -s "$out/small.bin" ] || [ ! -s "$out/large.bin" ]; then
    $PY bench/instances.py "$gen" "$out" >/dev/null || { say "rpc: bench/instances.py failed"; exit 1; }
  fi
  . bench/rpc.sh
esac

lua5.4 bench/report.lua "$results" || failures=$((failures + 1))
[ "$lgrpc_failures" -eq 0 ] || say "$lgrpc_failures lgrpc measurement(s) failed: see the not available rows and $log"
[ "$failures" -eq 0 ] || { say "$failures step(s) failed; see $log"; exit 1; }

#!/bin/sh
# bench/mem_breakdown.sh: where the memory rows' bytes go in lgrpc's server, for
# docs/benchmarks.md. Not part of make bench (it forces full collections and walks the Lua heap).
#   sh bench/mem_breakdown.sh lua5.4|luajit idle|inflight [N]
# after make, make LUA=luajit and one bench run (bench/out/memload, bench/out/small.grpc). Starts
# bench/mem_census.lua (rpc_server.lua plus a census task) on a fresh port, warms it up as
# bench/rpc.sh does (memload idle 16, memload inflight 20), takes a census, runs memload MODE N
# (default 1000), takes a census 0.5 s after its READY (and Rss from smaps_rollup at that moment), releases it,
# and prints, per connection (idle) or per call (inflight): RSS, the Lua heap found and after
# full collections (collectgarbage "count"), and the live Lua objects by type and label with
# estimated bytes (see bench/mem_census.lua), largest first.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
lua=${1:?usage: mem_breakdown.sh lua5.4|luajit idle|inflight [N]}
mode=${2:?usage: mem_breakdown.sh lua5.4|luajit idle|inflight [N]}
n=${3:-1000}
out=bench/out
dir=$out/census.$lua.$mode
if [ ! -x $out/memload ] || [ ! -s $out/small.grpc ]; then echo "mem_breakdown: run the rpc bench once first" >&2; exit 1; fi
# shellcheck disable=SC3045 # ulimit -n: dash and bash have it
[ "$(ulimit -n)" -ge $((n + 64)) ] || ulimit -S -n $((n + 64)) || exit 1
rm -rf "$dir"; mkdir -p "$dir"
LGRPC_BUILD=$lua; export LGRPC_BUILD
# shellcheck disable=SC1091
. tools/env.sh
: >"$dir/server.out"
$lua bench/mem_census.lua 127.0.0.1:0 "$dir" >"$dir/server.out" 2>"$dir/server.err" &
spid=$!
trap 'kill $spid 2>/dev/null' EXIT INT TERM
i=0
until grep -q '^PORT' "$dir/server.out"; do
  i=$((i + 1))
  if [ $i -ge 100 ] || ! kill -0 $spid 2>/dev/null; then cat "$dir/server.out" "$dir/server.err" >&2; exit 1; fi
  sleep 0.1
done
port=$(sed -n 's/^PORT //p' "$dir/server.out")
rss() { sed -n 's/^Rss:[[:space:]]*\([0-9]*\) kB$/\1/p' /proc/$spid/smaps_rollup; }
take() { # take N: asks for census N, waits for it
  : >"$dir/census.req"
  until [ -f "$dir/census.$1" ]; do kill -0 $spid 2>/dev/null || exit 1; sleep 0.05; done
}
load() { # load MODE N [measure]
  : >"$dir/memload.txt" # emptied here: the redirection below happens in the child, maybe late
  $out/memload "$1" "127.0.0.1:$port" $out/small.grpc "$2" >"$dir/memload.txt" 2>&1 &
  m=$!
  until grep -q '^READY' "$dir/memload.txt"; do kill -0 $m 2>/dev/null || { cat "$dir/memload.txt" >&2; exit 1; }; sleep 0.1; done
  if [ "${3:-}" = measure ]; then sleep 0.5; rss >"$dir/rss.after"; take 2; fi
  kill -USR1 $m; wait $m || { cat "$dir/memload.txt" >&2; exit 1; }
}
load idle 16; load inflight 20
sleep 0.5; rss >"$dir/rss.before"; take 1
load "$mode" "$n" measure
echo "$lua $mode, N=$n: $(grep '^READY' "$dir/memload.txt")"
lua5.4 - "$dir" "$n" "$mode" <<'EOF'
local dir, n, mode = arg[1], tonumber(arg[2]), arg[3]
local unit = mode == "idle" and "conn" or "call"
local function read(f)
  local t, counts = {}, {}
  for line in io.lines(dir .. "/" .. f) do
    local k, v = line:match("^(%S+) ([%d.]+)$")
    if k then t[k] = tonumber(v) end
    local key, c, b = line:match("^COUNTS (.-) (%d+) (%d+)$")
    if key then counts[key] = { tonumber(c), tonumber(b) } end
  end
  return t, counts
end
local a, ca = read("census.1")
local b, cb = read("census.2")
local rss0 = tonumber(io.open(dir .. "/rss.before"):read("l"))
local rss1 = tonumber(io.open(dir .. "/rss.after"):read("l"))
print(string.format("RSS              %8.0f B/%s", (rss1 - rss0) * 1024 / n, unit))
print(string.format("Lua heap found   %8.0f B/%s  (collectgarbage count: live objects and garbage)",
  (b["count-before-gc"] - a["count-before-gc"]) * 1024 / n, unit))
print(string.format("Lua heap live    %8.0f B/%s  (after two full collections)", (b.count - a.count) * 1024 / n, unit))
local rows, est = {}, 0
for k, v in pairs(cb) do
  local o = ca[k] or { 0, 0 }
  local dc, db = v[1] - o[1], v[2] - o[2]
  if dc ~= 0 then rows[#rows + 1] = { k, dc / n, db / n }; est = est + db / n end
end
for k, o in pairs(ca) do
  if not cb[k] then rows[#rows + 1] = { k, -o[1] / n, -o[2] / n }; est = est - o[2] / n end
end
table.sort(rows, function(x, y) return x[3] > y[3] end)
print(string.format("estimated        %8.0f B/%s  in the objects below (coroutine stacks and userdata payloads not seen)", est, unit))
print(string.format("%-8s %8s %8s  %s", "type", "objs/" .. unit, "B/" .. unit, "label"))
for _, r in ipairs(rows) do
  if math.abs(r[3]) >= 4 or math.abs(r[2]) >= 0.5 then
    local ty, label = r[1]:match("^(%S+) (.*)$")
    print(string.format("%-8s %8.2f %8.0f  %s", ty, r[2], r[3], label))
  end
end
EOF

#!/bin/sh
# make demo: the route guide server and client on 127.0.0.1, all four kinds of call.
# Expects tools/env.sh to be sourced (tools/demo.sh does it). Every process is bounded.
dir=$(cd "$(dirname "$0")" && pwd)
LUA=${LUA:-lua5.4}
out=$(mktemp)
timeout 60 "$LUA" "$dir/server.lua" --port=0 --serve_for=30 >"$out" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$out"' EXIT INT TERM
port=""
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
  port=$(sed -n 's/^listening on \([0-9]*\).*/\1/p' "$out")
  [ -n "$port" ] || { sleep 0.1; i=$((i + 1)); }
done
if [ -z "$port" ]; then
  echo "route guide server did not start:"; cat "$out"; exit 1
fi
echo "route guide server listening on 127.0.0.1:$port"
timeout 30 "$LUA" "$dir/client.lua" --server=127.0.0.1:"$port"

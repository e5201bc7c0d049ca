#!/bin/sh
# The interop suite again with the Lua peers under LuaJIT (the grpcio-grpcio pair, which has no
# Lua in it, is run by interop.sh and left out here). Prints "SUITE interop-luajit-<pair> ..." lines.
top=$(cd "$(dirname "$0")/../.." && pwd)
LUA=luajit sh "$top/tools/suites/interop.sh" 2>&1 |
  grep -v '^SUITE interop-grpcio-grpcio ' | sed 's/^SUITE interop-/SUITE interop-luajit-/'

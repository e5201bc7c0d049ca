#!/bin/sh
# The rock installs into a fresh luarocks tree for Lua 5.4 and for LuaJIT, and loads from
# another directory. Prints "SUITE rock <passed> <failed>".
top=${LGRPC_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
unset LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4 LD_PRELOAD
# try NAME INTERP LUAROCKS-ARGS...
try() {
  name=$1; interp=$2; shift 2
  tree=$tmp/$name
  if (cd "$top" && luarocks "$@" --tree="$tree" make --deps-mode=none lgrpc-scm-1.rockspec $extra) >"$tmp/$name.log" 2>&1 &&
     (cd "$tmp" && eval "$(luarocks "$@" --tree="$tree" path)" &&
      "$interp" -e '
        local lgrpc_proto = require "lgrpc.proto"
        assert(require("lgrpc.core").version)
        local pool = assert(lgrpc_proto.pool{})
        assert(pool:load_string("t.proto", "syntax = \"proto3\"; message T { int64 id = 1; }"))
        local b = assert(pool:encode("T", { id = 7 }))
        assert(pool:decode("T", b).id == 7)
        print("ok")') >>"$tmp/$name.log" 2>&1 &&
     [ -x "$tree/bin/lgrpc" ]; then
    passed=$((passed + 1)); echo "rock $name: installed and loaded"
  else
    failed=$((failed + 1)); echo "rock $name: FAILED"; cat "$tmp/$name.log"
  fi
}
extra=
try lua5.4 lua5.4 --lua-version=5.4
# LuaJIT is Lua 5.1 to luarocks; its headers are not where a 5.1 tree looks for them.
extra=LUA_INCDIR=/usr/include/luajit-2.1
try luajit luajit --lua-version=5.1
echo "SUITE rock $passed $failed"

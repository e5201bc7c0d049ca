# Sourced by the tools and by hand (`. tools/env.sh luajit` from the top of the tree): module
# paths for one build ($1: lua5.4 | luajit | asan). Lua 5.4 reads LUA_PATH_5_4 before LUA_PATH.
# POSIX sh does not pass arguments to a sourced file: scripts set LGRPC_BUILD instead of $1.
top=${LGRPC_TOP:-$(pwd)}
[ -f "$top/tools/env.sh" ] || { echo "tools/env.sh: source it from the top of the tree" >&2; return 1; }
build=${LGRPC_BUILD:-${1:-lua5.4}}
unset LGRPC_BUILD
LUA_PATH="$top/lua/?.lua;$top/lua/?/init.lua;$top/spec/support/?.lua;;"
LUA_CPATH="$top/build/$build/?.so;;"
LUA_PATH_5_4=$LUA_PATH
LUA_CPATH_5_4=$LUA_CPATH
LGRPC_TOP=$top
export LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4 LGRPC_TOP

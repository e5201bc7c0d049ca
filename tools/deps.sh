#!/bin/sh
# Installs the Debian 12 packages lgrpc needs to build, test and benchmark.
# Silent no-op when everything is present; otherwise apt-get update, then install the missing ones.
# LuaJIT comes as OpenResty's luajit2 (Debian luajit2, libluajit2-5.1-dev): Debian's plain luajit
# conflicts with libnginx-mod-http-lua, which the OpenResty driver tests need.
set -e
PKGS="lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev lua-lpeg lua-busted luarocks
libnghttp2-dev libssl-dev libprotobuf-c-dev zlib1g-dev libprotobuf-dev
grpc-proto python3-grpcio python3-protobuf python3-cryptography protobuf-compiler
protobuf-c-compiler libprotoc-dev libgrpc++-dev protobuf-compiler-grpc nghttp2-client
openssl ca-certificates gcc make pkg-config clang libclang-rt-14-dev
golang-github-gogo-googleapis-dev nginx libnginx-mod-http-lua"
missing=""
for p in $PKGS; do
  s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$s" in *"ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "make deps: installing$missing"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nginx's post-install tries to start the service; policy-rc.d keeps it from doing so.
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

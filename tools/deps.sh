#!/bin/sh
# Installs the Debian 12 packages lgrpc needs to build, test and benchmark.
#   sh tools/deps.sh         what make deps / make check need (PKGS)
#   sh tools/deps.sh bench   that and what only make bench needs (BENCH_PKGS)
# Silent no-op when everything is present; otherwise apt-get update, then install the missing ones.
# LuaJIT comes as OpenResty's luajit2 (Debian luajit2, libluajit2-5.1-dev): Debian's plain luajit
# conflicts with libnginx-mod-http-lua, which the OpenResty driver tests need.
set -e
PKGS="lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev lua-lpeg lua-busted luarocks
libnghttp2-dev libssl-dev libprotobuf-c-dev zlib1g-dev libprotobuf-dev
grpc-proto python3-grpcio python3-protobuf python3-cryptography protobuf-compiler
protobuf-c-compiler libprotoc-dev libgrpc++-dev protobuf-compiler-grpc nghttp2-client
openssl ca-certificates gcc make pkg-config clang libclang-rt-14-dev
golang-github-gogo-googleapis-dev nginx libnginx-mod-http-lua valgrind
libignition-msgs-dev golang-google-protobuf-dev golang-github-grpc-ecosystem-grpc-gateway-dev
golang-gitaly-proto-dev golang-github-openshift-api-dev bazel-bootstrap-source
librust-quick-protobuf-dev golang-github-lightstep-lightstep-tracer-common-dev
golang-github-gogo-protobuf-dev golang-github-golang-protobuf-1-3-dev golang-google-grpc-dev"
# The last eleven ship the real .proto files of the descriptor corpus (spec/support/corpus.lua);
# valgrind is for the benchmarks' instruction-count profiles.
# The grpc-go reference server (bench/go/build.sh): the Go toolchain and protoc's Go plugin of the
# golang/protobuf 1.3 generation, the one grpc-go 1.33's sources above compile against (it
# conflicts with Debian's protoc-gen-go 1.28, which nothing here uses).
BENCH_PKGS="golang-go protoc-gen-go-1-3"
case "${1:-}" in
  "") ;;
  bench) PKGS="$PKGS $BENCH_PKGS" ;;
  *) echo "usage: sh tools/deps.sh [bench]" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
  s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$s" in *"ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "make ${1:-deps}: installing$missing"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nginx's post-install tries to start the service; policy-rc.d keeps it from doing so.
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

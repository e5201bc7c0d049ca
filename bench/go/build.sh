#!/bin/sh
# bench/go/build.sh OUT: builds the grpc-go Echo server into OUT/echo_server_go, offline, from
# Debian packages only: golang-go (1.19), grpc-go 1.33 and golang/protobuf 1.3 sources in
# /usr/share/gocode (golang-google-grpc-dev, golang-github-golang-protobuf-1-3-dev) and protoc's Go
# plugin of that same generation (protoc-gen-go-1-3, whose plugins=grpc also writes the Echo
# service glue). `sh tools/deps.sh bench` installs them. GOPATH mode: the generated package is
# written to OUT/go/src/lgrpc/bench (never committed), the build cache is OUT/go/cache, and
# nothing is fetched (GOPROXY=off, GOFLAGS empty, the user's go env file ignored).
# On failure prints one line, the reason, on stdout and exits 1 (bench/rpc.sh shows it in the go
# column); the tools' own messages go to stderr.
set -u
out=${1:?usage: build.sh OUT}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
mkdir -p "$out/go/src/lgrpc/bench" || { echo "cannot create $out/go"; exit 1; }
gopath=$(cd "$out/go" && pwd)
gocode=/usr/share/gocode

fail() { echo "$*"; exit 1; }
command -v go >/dev/null 2>&1 || fail "no Go toolchain (Debian golang-go; sh tools/deps.sh bench)"
command -v protoc-gen-go >/dev/null 2>&1 || fail "no protoc-gen-go (Debian protoc-gen-go-1-3 is not installed)"
[ -d "$gocode/src/google.golang.org/grpc" ] || fail "no grpc-go sources in $gocode (Debian golang-google-grpc-dev)"
[ -d "$gocode/src/github.com/golang/protobuf/proto" ] ||
  fail "no golang/protobuf sources in $gocode (Debian golang-github-golang-protobuf-1-3-dev)"

# Messages and service glue. plugins=grpc exists only in the 1.3 plugin (the 1.2x one refuses
# it), and only its messages match the golang/protobuf 1.3 runtime grpc-go compiles against here.
rm -f "$out/go/src/lgrpc/bench/bench.pb.go"
if ! protoc -Ibench --go_out=plugins=grpc:"$out/go/src/lgrpc/bench" bench/bench.proto >&2; then
  fail "protoc --go_out=plugins=grpc failed (needs Debian's protoc-gen-go-1-3; see the log)"
fi

# The first build compiles grpc-go and its dependencies (about half a minute); later ones reuse
# the cache.
if ! env GO111MODULE=off GOPATH="$gopath:$gocode" GOFLAGS= GOPROXY=off GOENV=off GOTOOLCHAIN=local \
  GOCACHE="$gopath/cache" CGO_ENABLED=0 \
  timeout 600 go build -o "$out/echo_server_go" bench/go/echo_server.go >"$out/go/build.log" 2>&1; then
  cat "$out/go/build.log" >&2
  fail "go build failed: $(grep -v '^#' "$out/go/build.log" | head -n 1 | cut -c1-160)"
fi

rockspec_format = "3.0"
package = "lgrpc"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "gRPC for Lua with a compact C core",
  detailed = [[
Servers and clients for gRPC in plain Lua. .proto files are compiled at run time (an LPeg grammar,
no code generation); HTTP/2 (nghttp2), TLS (OpenSSL) and the protobuf codec are C.]],
  license = "MIT",
}
dependencies = { "lua >= 5.1", "lpeg" }
external_dependencies = {
  NGHTTP2 = { header = "nghttp2/nghttp2.h" },
  OPENSSL = { header = "openssl/ssl.h" },
  ZLIB = { header = "zlib.h" },
  -- google/protobuf/*.proto (Debian libprotobuf-dev): descriptor.proto and the well-known types
  PROTOBUF = { header = "google/protobuf/descriptor.proto" },
}
build = {
  type = "make",
  build_target = "rock",
  install_target = "rock-install",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install = { bin = { lgrpc = "bin/lgrpc" } },
}

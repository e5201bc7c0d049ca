-- bench/rpc_server.lua: lgrpc's Echo server for the rpc section, run under lua5.4 and LuaJIT.
--   rpc_server.lua ADDRESS [CERT_FILE KEY_FILE]
--                             listens (127.0.0.1:0 picks a port), prints "PORT n", serves until
--                             killed; with a PEM certificate and key it serves TLS. When the call layer is missing it prints one line
--                             "not available: <reason>" and exits 1; bench/rpc.sh shows that line
--                             in the server's rows.
-- The handlers mirror bench/echo_server.cc: Unary echoes, ClientStream answers the last message,
-- ServerStream sends `count` copies, Bidi echoes each message.
package.path = (arg[0]:match("^(.-)[^/]*$") or "") .. "?.lua;" .. package.path
local address = arg[1] or "127.0.0.1:0"
local cert_file, key_file = arg[2], arg[3]

local function unavailable(reason)
  io.write("not available: ", (tostring(reason):gsub("%s+", " ")), "\n")
  io.flush()
  os.exit(1)
end

local ok, lgrpc = pcall(require, "lgrpc")
if not ok then unavailable("require \"lgrpc\": " .. tostring(lgrpc):match("^[^\n]*")) end
if type(lgrpc) ~= "table" or type(lgrpc.server) ~= "function" then unavailable("lgrpc.server is missing") end
local proto = require "lgrpc.proto"
local here = arg[0]:match("^(.-)[^/]*$")
if here == "" then here = "." end
local pool, err = proto.load{ "bench.proto", include = { here } }
if not pool then unavailable("bench.proto: " .. tostring(err)) end

local server
ok, err = pcall(function()
  server = lgrpc.server{ pool = pool,
    tls = cert_file and { cert_file = cert_file, key_file = key_file } or nil }
  server:add("lgrpc.bench.Echo", {
    Unary = function(request) return request end,
    ClientStream = function(stream)
      local last = {}
      for msg in stream:iter() do last = msg end
      return last
    end,
    ServerStream = function(request, stream)
      local sample = request.sample or {}
      for _ = 1, request.count or 0 do
        local sent, st = stream:send(sample)
        if not sent then return nil, st end
      end
    end,
    Bidi = function(stream)
      for msg in stream:iter() do
        local sent, st = stream:send(msg)
        if not sent then return nil, st end
      end
    end,
  })
end)
if not ok then unavailable("server setup: " .. tostring(err)) end
local where, lerr = server:listen(address)
if not where then unavailable("listen: " .. tostring(lerr)) end
local port = type(where) == "number" and where or tostring(where):match(":(%d+)$")
if not port then unavailable("listen returned " .. tostring(where) .. ", not an address with a port") end
io.write("PORT ", port, "\n")
io.flush()
server:run()

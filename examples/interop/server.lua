-- The gRPC interop test server (grpc.testing.TestService, grpc's interop-test-descriptions.md)
-- on lgrpc. Flags as grpc-go's interop server takes them: --port=N (0 picks one), --use_tls,
-- --tls_cert_file, --tls_key_file.
-- Prints "listening on PORT" once it accepts calls.
local lgrpc = require "lgrpc"
local status = lgrpc.status

local flags = { port = "10000", use_tls = "false", tls_cert_file = "", tls_key_file = "",
  proto_root = "/usr/share/grpc-proto" }
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-([%w_]+)=(.*)$")
  if not k then k = a:match("^%-%-([%w_]+)$") v = "true" end
  if not k or flags[k] == nil then
    io.stderr:write("interop server: unknown argument ", a, "\n")
    os.exit(2)
  end
  flags[k] = v
end
local tls
if flags.use_tls ~= "false" then
  if flags.tls_cert_file == "" or flags.tls_key_file == "" then
    io.stderr:write("interop server: --use_tls needs --tls_cert_file and --tls_key_file\n")
    os.exit(2)
  end
  tls = { cert_file = flags.tls_cert_file, key_file = flags.tls_key_file }
end

local pool = assert(lgrpc.proto.load{ "grpc/testing/test.proto", include = { flags.proto_root } })
local server = lgrpc.server{ pool = pool, max_recv_msg_size = 64 * 1024 * 1024, tls = tls }

local function zeros(n) return { body = string.rep("\0", n) } end

-- Echo Metadata: x-grpc-test-echo-initial back in the headers, -trailing-bin in the trailers
local function echo_metadata(ctx)
  local initial = ctx.metadata:get_all("x-grpc-test-echo-initial")
  if #initial > 0 then ctx:set_header{ ["x-grpc-test-echo-initial"] = initial } end
  local trailing = ctx.metadata:get_all("x-grpc-test-echo-trailing-bin")
  if #trailing > 0 then ctx:set_trailer{ ["x-grpc-test-echo-trailing-bin"] = trailing } end
end

-- Echo Status: a request's response_status ends the call with that code and message
local function echo_status(req)
  local rs = req.response_status
  if rs and rs.code and rs.code ~= 0 then
    return status.new(rs.code, rs.message or "")
  end
end

local function responses(req, send)
  for _, p in ipairs(req.response_parameters or {}) do
    if p.interval_us and p.interval_us > 0 then lgrpc.sleep(p.interval_us / 1e6) end
    local ok, st = send{ payload = zeros(p.size or 0) }
    if not ok then return st end
  end
end

server:add("grpc.testing.TestService", {
  EmptyCall = function(_, ctx)
    echo_metadata(ctx)
    return {}
  end,
  UnaryCall = function(req, ctx)
    echo_metadata(ctx)
    local st = echo_status(req)
    if st then return nil, st end
    local rt = req.response_type
    if rt ~= nil and rt ~= "COMPRESSABLE" and rt ~= 0 then
      return nil, status.invalid_argument("unsupported response_type " .. tostring(rt))
    end
    return { payload = zeros(req.response_size or 0) }
  end,
  CacheableUnaryCall = function(_, ctx)
    ctx:set_header{ ["cache-control"] = "max-age=60" }
    return { payload = { body = string.format("%.0f", lgrpc.now() * 1e9) } }
  end,
  StreamingOutputCall = function(req, stream, ctx)
    echo_metadata(ctx)
    local st = echo_status(req)
    if st then return nil, st end
    st = responses(req, function(m) return stream:send(m) end)
    if st then return nil, st end
  end,
  StreamingInputCall = function(stream, ctx)
    echo_metadata(ctx)
    local total = 0
    for req in stream:iter() do
      total = total + #((req.payload and req.payload.body) or "")
    end
    local cancelled, st = ctx:cancelled()
    if cancelled then return nil, st end
    return { aggregated_payload_size = total }
  end,
  FullDuplexCall = function(stream, ctx)
    echo_metadata(ctx)
    for req in stream:iter() do
      local st = echo_status(req)
      if st then return nil, st end
      st = responses(req, function(m) return stream:send(m) end)
      if st then return nil, st end
    end
  end,
  HalfDuplexCall = function(stream, ctx)
    echo_metadata(ctx)
    local reqs = {}
    for req in stream:iter() do
      local st = echo_status(req)
      if st then return nil, st end
      reqs[#reqs + 1] = req
    end
    for _, req in ipairs(reqs) do
      local st = responses(req, function(m) return stream:send(m) end)
      if st then return nil, st end
    end
  end,
})

local port = assert(server:listen("127.0.0.1:" .. flags.port))
io.stdout:write("listening on ", port, "\n")
io.stdout:flush()
server:run()

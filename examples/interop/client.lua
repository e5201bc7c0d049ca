-- The gRPC interop test client (grpc's interop-test-descriptions.md) on lgrpc.
-- Flags as grpc-go's interop client takes them: --server_host, --server_port, --test_case (a
-- case name or "all"), --use_tls, --use_test_ca, --ca_file, --server_host_override. Prints "PASS case" / "FAIL case: reason" per case and
-- exits 0 only when every case passed.
local lgrpc = require "lgrpc"
local status = lgrpc.status

local flags = { server_host = "127.0.0.1", server_port = "10000", test_case = "all",
  use_tls = "false", use_test_ca = "false", ca_file = "", server_host_override = "",
  proto_root = "/usr/share/grpc-proto" }
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-([%w_]+)=(.*)$")
  if not k then k = a:match("^%-%-([%w_]+)$") v = "true" end
  if not k or flags[k] == nil then
    io.stderr:write("interop client: unknown argument ", a, "\n")
    os.exit(2)
  end
  flags[k] = v
end
-- TLS: the test CA is the one --ca_file names (lgrpc ships no CA of its own); without
-- --use_test_ca the system store decides
local tls
if flags.use_tls ~= "false" then
  if flags.use_test_ca ~= "false" and flags.ca_file == "" then
    io.stderr:write("interop client: --use_test_ca needs --ca_file\n")
    os.exit(2)
  end
  tls = {
    ca_file = flags.ca_file ~= "" and flags.ca_file or nil,
    server_host_override = flags.server_host_override ~= "" and flags.server_host_override or nil,
  }
end

local pool = assert(lgrpc.proto.load{ "grpc/testing/test.proto", include = { flags.proto_root } })
local ch = lgrpc.channel(flags.server_host .. ":" .. flags.server_port, {
  pool = pool, max_recv_msg_size = 64 * 1024 * 1024, timeout = 10,
  authority = flags.server_host_override ~= "" and flags.server_host_override or nil,
  tls = tls,
})
local test = ch:stub("grpc.testing.TestService")
local unimplemented = ch:stub("grpc.testing.UnimplementedService")

local SPECIAL = "\t\ntest with whitespace\r\nand Unicode BMP \226\152\186 and non-BMP \240\159\152\136\t\n"
local REQ_SIZES = { 27182, 8, 1828, 45904 }
local RESP_SIZES = { 31415, 9, 2653, 58979 }

local function zeros(n) return { body = string.rep("\0", n) } end
local function fail(fmt, ...) error({ fail = string.format(fmt, ...) }, 0) end
local function check(cond, fmt, ...) if not cond then fail(fmt, ...) end end
local function body_len(m) return #((m and m.payload and m.payload.body) or "") end
local function expect_ok(resp, st)
  check(resp ~= nil, "call failed: %s", tostring(st))
  return resp
end
local function expect_code(code, resp, st)
  check(resp == nil and st, "call succeeded, expected code %d", code)
  check(st.code == code, "got %s, expected code %d", tostring(st), code)
  return st
end

local cases = {}
local order = {}
local function case(name, fn) cases[name] = fn order[#order + 1] = name end

case("empty_unary", function()
  local resp = expect_ok(test:EmptyCall({}))
  check(next(resp) == nil, "response is not empty")
end)

case("large_unary", function()
  local resp = expect_ok(test:UnaryCall{ response_size = 314159, payload = zeros(271828) })
  check(resp.payload.body == string.rep("\0", 314159), "payload is %d bytes", body_len(resp))
end)

case("client_streaming", function()
  local call = test:StreamingInputCall()
  for _, n in ipairs(REQ_SIZES) do assert(call:send{ payload = zeros(n) }) end
  local resp = expect_ok(call:close_and_recv())
  check(resp.aggregated_payload_size == 74922, "aggregated %s", tostring(resp.aggregated_payload_size))
end)

case("server_streaming", function()
  local params = {}
  for i, n in ipairs(RESP_SIZES) do params[i] = { size = n } end
  local call = test:StreamingOutputCall{ response_parameters = params }
  local sizes = {}
  for m in call:iter() do sizes[#sizes + 1] = body_len(m) end
  check(call:status().code == 0, "status %s", tostring(call:status()))
  check(table.concat(sizes, ",") == table.concat(RESP_SIZES, ","), "sizes %s", table.concat(sizes, ","))
end)

case("ping_pong", function()
  local call = test:FullDuplexCall()
  for i, n in ipairs(REQ_SIZES) do
    assert(call:send{ response_parameters = { { size = RESP_SIZES[i] } }, payload = zeros(n) })
    local m, st = call:recv()
    check(m ~= nil, "no response %d: %s", i, tostring(st))
    check(body_len(m) == RESP_SIZES[i], "response %d is %d bytes", i, body_len(m))
  end
  call:close_send()
  local m, st = call:recv()
  check(m == nil, "an extra response")
  check(st.code == 0, "status %s", tostring(st))
end)

case("empty_stream", function()
  local call = test:FullDuplexCall()
  call:close_send()
  local m, st = call:recv()
  check(m == nil, "a response on an empty stream")
  check(st.code == 0, "status %s", tostring(st))
end)

case("timeout_on_sleeping_server", function()
  local call = test:FullDuplexCall{ timeout = 0.001 }
  call:send{ payload = zeros(27182) }
  local m, st = call:recv()
  while m do m, st = call:recv() end
  check(st.code == status.DEADLINE_EXCEEDED, "status %s", tostring(st))
end)

case("cancel_after_begin", function()
  local call = test:StreamingInputCall()
  call:cancel()
  local st = call:status()
  check(st.code == status.CANCELLED, "status %s", tostring(st))
end)

case("cancel_after_first_response", function()
  local call = test:FullDuplexCall()
  assert(call:send{ response_parameters = { { size = 31415 } }, payload = zeros(27182) })
  local m, st = call:recv()
  check(m and body_len(m) == 31415, "first response: %s", tostring(m and body_len(m) or st))
  call:cancel()
  st = call:status()
  check(st.code == status.CANCELLED, "status %s", tostring(st))
end)

case("status_code_and_message", function()
  local msg = "test status message"
  local st = expect_code(2, test:UnaryCall{ response_status = { code = 2, message = msg } })
  check(st.message == msg, "UnaryCall message %q", st.message)
  local call = test:FullDuplexCall()
  call:send{ response_status = { code = 2, message = msg } }
  call:close_send()
  local m
  m, st = call:recv()
  check(m == nil and st.code == 2, "FullDuplexCall status %s", tostring(st))
  check(st.message == msg, "FullDuplexCall message %q", st.message)
end)

case("special_status_message", function()
  local st = expect_code(2, test:UnaryCall{ response_status = { code = 2, message = SPECIAL } })
  check(st.message == SPECIAL, "message %q", st.message)
end)

case("unimplemented_method", function()
  expect_code(status.UNIMPLEMENTED, test:UnimplementedCall({}))
end)

case("unimplemented_service", function()
  expect_code(status.UNIMPLEMENTED, unimplemented:UnimplementedCall({}))
end)

case("custom_metadata", function()
  local md = { ["x-grpc-test-echo-initial"] = "test_initial_metadata_value",
    ["x-grpc-test-echo-trailing-bin"] = "\171\171\171" }
  local function verify(what, call)
    check(call:headers():get("x-grpc-test-echo-initial") == "test_initial_metadata_value",
      "%s: initial metadata %s", what, tostring(call:headers()))
    check(call:trailers():get("x-grpc-test-echo-trailing-bin") == "\171\171\171",
      "%s: trailing metadata %s", what, tostring(call:trailers()))
  end
  local resp, st, call = test:UnaryCall({ response_size = 314159, payload = zeros(271828) },
    { metadata = md })
  expect_ok(resp, st)
  check(body_len(resp) == 314159, "UnaryCall payload %d", body_len(resp))
  verify("UnaryCall", call)
  call = test:FullDuplexCall{ metadata = md }
  call:send{ response_parameters = { { size = 314159 } }, payload = zeros(271828) }
  call:close_send()
  local sizes = {}
  for m in call:iter() do sizes[#sizes + 1] = body_len(m) end
  check(#sizes == 1 and sizes[1] == 314159, "FullDuplexCall sizes %s", table.concat(sizes, ","))
  check(call:status().code == 0, "FullDuplexCall status %s", tostring(call:status()))
  verify("FullDuplexCall", call)
end)

local run
if flags.test_case == "all" then
  run = order
elseif cases[flags.test_case] then
  run = { flags.test_case }
else
  io.stderr:write("interop client: unknown test case ", flags.test_case, "\n")
  os.exit(2)
end

local failed = 0
for _, name in ipairs(run) do
  local ok, err = pcall(cases[name])
  if ok then
    print("PASS " .. name)
  else
    failed = failed + 1
    print("FAIL " .. name .. ": " .. (type(err) == "table" and err.fail or tostring(err)))
  end
end
ch:close()
os.exit(failed == 0 and 0 or 1)

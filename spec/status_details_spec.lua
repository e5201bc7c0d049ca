-- The rich error model (lgrpc.status details): google.rpc.Status in grpc-status-details-bin,
-- both ways against grpcio (spec/support/status_peer.py decodes with protoc-generated Python),
-- lgrpc to lgrpc with pool types, unknown types, malformed and inconsistent trailers, and the
-- examples of docs/errors.md, run as they are.
local lgrpc = require "lgrpc"
local status = lgrpc.status
local kit = require "spec.support.callkit"
local json = require("lgrpc.core").json

local PY = "env -u LD_PRELOAD /usr/bin/python3 " .. kit.top .. "/spec/support/status_peer.py"

-- Runs fn in a task until it ends; the server (if any) is shut down whatever happens, so a
-- failed assertion never leaves the loop running.
local function run(fn, srv)
  local task = lgrpc.spawn(function()
    local ok, err = pcall(fn)
    if srv then srv:shutdown(0) end
    if not ok then error(err, 0) end
  end)
  lgrpc.run()
  local ok, err = task:wait()
  assert(ok, err)
end

-- Runs a command in the background and waits (running the loop) until it exits; its output.
local function background(cmd, limit)
  local out = os.tmpname()
  local done = out .. ".done"
  os.execute(string.format("(timeout %d %s > %s 2>&1; touch %s) &", limit or 60, cmd, out, done))
  local t0 = lgrpc.now()
  while lgrpc.now() - t0 < (limit or 60) + 5 do
    local f = io.open(done, "r")
    if f then f:close() break end
    lgrpc.sleep(0.05)
  end
  local f = assert(io.open(out, "rb"))
  local text = f:read("a") or ""
  f:close()
  os.remove(out)
  os.remove(done)
  return text
end

local function plain(v)
  -- a decoded JSON tree as plain tables (keys and values only)
  -- (objects list their keys at [1..n], arrays hold values there)
  if type(v) ~= "table" then return v end
  local t = {}
  if type(v[1]) == "string" and v[v[1]] ~= nil then
    for _, k in ipairs(v) do t[k] = plain(v[k]) end
  else
    for i, x in ipairs(v) do t[i] = plain(x) end
  end
  return t
end

describe("status details", function()
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local c = kit.settle(base)
    for _, k in ipairs({ "client_calls", "server_calls", "tasks", "holds", "sessions", "streams" }) do
      assert.are.equal(base[k], c[k], "counter " .. k .. " back to baseline")
    end
  end)

  it("are read by a grpcio client, for every standard detail type and a pool type", function()
    local srv, port = kit.server({
      Unary = function(req)
        if req.n == 1 then
          return nil, status.invalid_argument("name is empty", {
            status.bad_request{ { field = "name", description = "must not be empty" } },
            status.error_info{ reason = "EMPTY", domain = "lgrpc.test", metadata = { k = "v" } },
          })
        elseif req.n == 2 then
          return nil, status.unavailable("busy", {
            status.retry_info(1.25),
            status.quota_failure{ { subject = "user:1", description = "too many" } },
          })
        elseif req.n == 3 then
          return nil, status.failed_precondition("not yet", {
            status.precondition_failure{ { type = "TOS", subject = "user:1", description = "sign" } },
            status.resource_info{ resource_type = "book", resource_name = "b/1", owner = "me" },
            status.help{ { description = "docs", url = "https://example.com/help" } },
            status.localized_message("fr-FR", "pas encore"),
            status.debug_info{ detail = "trace", stack_entries = { "a", "b" } },
          })
        end
        return nil, status.not_found("custom", {
          { ["@type"] = "lgrpctest.Msg", n = 42, text = "mine" },
        })
      end,
    })
    run(function()
      local text = background(PY .. " client " .. port .. " 4")
      local lines = {}
      for line in text:gmatch("[^\n]+") do
        local v = json.decode(line)
        assert(v, "python said: " .. text)
        v = plain(v)
        lines[v.n] = v
      end
      assert(lines[4], text)
      local l = lines[1]
      assert.are.equal(3, l.code)
      assert.are.equal("name is empty", l.message)
      assert.are.equal(3, l.status_code)
      assert.are.equal("name is empty", l.status_message)
      assert.are.same({ ["@type"] = "type.googleapis.com/google.rpc.BadRequest",
        field_violations = { { field = "name", description = "must not be empty" } } }, l.details[1])
      assert.are.same({ ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo",
        reason = "EMPTY", domain = "lgrpc.test", metadata = { k = "v" } }, l.details[2])
      l = lines[2]
      assert.are.equal(14, l.status_code)
      assert.are.same({ ["@type"] = "type.googleapis.com/google.rpc.RetryInfo",
        retry_delay = "1.250s" }, l.details[1])
      assert.are.same({ { subject = "user:1", description = "too many" } }, l.details[2].violations)
      l = lines[3]
      assert.are.equal(5, #l.details)
      assert.are.same({ { type = "TOS", subject = "user:1", description = "sign" } },
        l.details[1].violations)
      assert.are.equal("b/1", l.details[2].resource_name)
      assert.are.equal("https://example.com/help", l.details[3].links[1].url)
      assert.are.equal("pas encore", l.details[4].message)
      assert.are.same({ "a", "b" }, l.details[5].stack_entries)
      l = lines[4]
      assert.are.equal("type.googleapis.com/lgrpctest.Msg", l.details[1]["@type"])
      local bytes = assert(kit.pool():encode("lgrpctest.Msg", { n = 42, text = "mine" }))
      assert.are.equal((bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end)),
        l.details[1].value_hex)
    end, srv)
  end)

  it("sent by a grpcio server are read by lgrpc, without googleapis in the channel's pool", function()
    run(function()
      local peer = kit.child({ PY, "server" })
      local ch = lgrpc.channel("127.0.0.1:" .. peer.port)
      local function call(n)
        local resp, st = ch:call("/lgrpctest.Echo/Unary", "unary", "\16" .. string.char(n),
          { timeout = 10 })
        assert.is_nil(resp)
        return st
      end
      local st = call(1)
      assert.are.equal(status.INVALID_ARGUMENT, st.code)
      assert.are.equal("bad request from grpcio", st.message)
      assert.is_nil(st.details_error)
      assert.are.equal("type.googleapis.com/google.rpc.BadRequest", st.details[1]["@type"])
      assert.are.same({ { field = "name", description = "empty" } }, st.details[1].field_violations)
      local info = st:detail("google.rpc.ErrorInfo")
      assert.are.equal("EMPTY_NAME", info.reason)
      assert.are.equal("example.com", info.domain)
      assert.are.same({ field = "name" }, info.metadata)

      st = call(2)
      assert.are.equal(status.UNAVAILABLE, st.code)
      local delay = st:detail("type.googleapis.com/google.rpc.RetryInfo").retry_delay
      assert.are.equal(3, delay.seconds)
      assert.are.equal(500000000, delay.nanos)
      assert.are.equal("project:7", st:detail("google.rpc.QuotaFailure").violations[1].subject)

      -- an unknown type stays a raw Any, next to a decoded standard one
      st = call(3)
      assert.are.equal(status.NOT_FOUND, st.code)
      assert.are.same({ type_url = "type.googleapis.com/acme.Custom", value = "\8\42" }, st.details[1])
      assert.are.equal("shelves/1", st.details[2].resource_name)

      -- the trailer disagrees with grpc-status: the status stays what grpc-status says
      st = call(4)
      assert.are.equal(status.INTERNAL, st.code)
      assert.are.equal("real message", st.message)
      assert.is_nil(st.details)
      assert.are.equal("grpc-status-details-bin disagrees with grpc-status: code 5 (NOT_FOUND) " ..
        "in the details, 13 (INTERNAL) in grpc-status", st.details_error)

      -- a malformed trailer: code and message still arrive
      st = call(5)
      assert.are.equal(status.ABORTED, st.code)
      assert.are.equal("malformed details", st.message)
      assert.is_nil(st.details)
      assert.matches("^malformed grpc%-status%-details%-bin", st.details_error)
      assert.are.equal("\255\255\255", st.details_bin)
      ch:close()
      peer.kill()
    end)
  end)

  it("of a type the server's pool does not know are left out, code and message still sent", function()
    local logged = {}
    local srv, port = kit.server({
      Unary = function()
        return nil, status.aborted("conflict", { { ["@type"] = "nowhere.Thing", x = 1 } })
      end,
    }, { log = function(m) logged[#logged + 1] = m end })
    run(function()
      local ch = kit.channel(port)
      local _, st = ch:stub("lgrpctest.Echo"):Unary{}
      assert.are.equal(status.ABORTED, st.code)
      assert.are.equal("conflict", st.message)
      assert.is_nil(st.details)
      assert.is_nil(st.details_bin)
      assert.matches("status details not sent: status detail 1: unknown detail type nowhere.Thing",
        logged[1])
      ch:close()
    end, srv)
  end)

  it("builders refuse fields their type does not have the shape of", function()
    local ok, err = pcall(status.bad_request, "x")
    assert.is_false(ok)
    assert.matches("lgrpc.status.bad_request: array of field violations expected", err)
    ok, err = pcall(status.retry_info, -1)
    assert.is_false(ok)
    assert.matches("seconds >= 0 expected", err)
    ok, err = pcall(status.error_info, { reason = {} })
    assert.is_false(ok)
    assert.matches("lgrpc.status.error_info: .*reason", err)
    local d = status.retry_info(0.5)
    assert.are.same({ ["@type"] = "type.googleapis.com/google.rpc.RetryInfo",
      retry_delay = { seconds = 0, nanos = 500000000 } }, d)
  end)

  it("docs/errors.md examples run as written", function()
    local f = assert(io.open(kit.top .. "/docs/errors.md", "rb"))
    local doc = f:read("a") or f:read("*a")
    f:close()
    local n = 0
    for code in doc:gmatch("```lua\n(.-)```") do
      n = n + 1
      local chunk = assert(load(code, "=docs/errors.md example " .. n))
      chunk()
    end
    assert.are.equal(3, n)
  end)
end)

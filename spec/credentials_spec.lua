-- Call credentials (lgrpc.channel / stub options `credentials`): metadata from a function run
-- in the calling task before each call, per channel and per call; refused on plaintext
-- channels unless allowed; token refreshers that call through lgrpc themselves; end to end
-- against lgrpc.interceptors.auth on a real server.
local lgrpc = require "lgrpc"
local status = lgrpc.status
local auth = require "lgrpc.auth"
local interceptors = require "lgrpc.interceptors"
local kit = require "spec.support.callkit"

-- Runs fn in a task until it ends; the servers are shut down whatever happens.
local function run(fn, ...)
  local servers = { ... }
  local task = lgrpc.spawn(function()
    local ok, err = pcall(fn)
    for _, s in ipairs(servers) do s:shutdown(0) end
    if not ok then error(err, 0) end
  end)
  lgrpc.run()
  local ok, err = task:wait()
  assert(ok, err)
end

-- An Echo server whose Unary answers with the metadata it received.
local function echo_md()
  local calls = { n = 0 }
  local srv, port = kit.server({
    Unary = function(_, ctx)
      calls.n = calls.n + 1
      local md = ctx.metadata
      return { text = table.concat(md:get_all("authorization"), "|") .. ";" ..
        (md:get("x-chan") or "-") .. ";" .. (md:get("x-call") or "-") }
    end,
    ServerStream = function(_, stream, ctx)
      stream:send{ text = ctx.metadata:get("authorization") }
    end,
  })
  return srv, port, calls
end

describe("call credentials", function()
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local c = kit.settle(base)
    for _, k in ipairs({ "client_calls", "server_calls", "tasks", "holds", "sessions", "streams" }) do
      assert.are.equal(base[k], c[k], "counter " .. k .. " back to baseline")
    end
  end)

  it("are refused on a plaintext channel unless explicitly allowed", function()
    local srv, port, calls = echo_md()
    run(function()
      local bearer = function() return { authorization = "Bearer t" } end
      local ch = kit.channel(port, { credentials = bearer })
      local resp, st = ch:stub("lgrpctest.Echo"):Unary{}
      assert.is_nil(resp)
      assert.are.equal(status.UNAUTHENTICATED, st.code)
      assert.matches("call credentials need a secure %(TLS%) channel", st.message)
      assert.matches("allow_insecure_credentials", st.message)
      ch:close()
      -- per call too
      ch = kit.channel(port)
      _, st = ch:stub("lgrpctest.Echo"):Unary({}, { credentials = bearer })
      assert.are.equal(status.UNAUTHENTICATED, st.code)
      assert.are.equal(0, calls.n)   -- nothing reached the server
      -- allowed per call, and per channel
      resp = assert(ch:stub("lgrpctest.Echo"):Unary({},
        { credentials = bearer, allow_insecure_credentials = true }))
      assert.are.equal("Bearer t;-;-", resp.text)
      ch:close()
      ch = kit.channel(port, { credentials = bearer, allow_insecure_credentials = true })
      resp = assert(ch:stub("lgrpctest.Echo"):Unary{})
      assert.are.equal("Bearer t;-;-", resp.text)
      -- a streaming call carries them as well
      local call = ch:stub("lgrpctest.Echo"):ServerStream{}
      assert.are.equal("Bearer t", call:recv().text)
      assert.is_true(call:status():ok())
      assert.are.equal(2, calls.n)
      ch:close()
    end, srv)
  end)

  it("get the method, service URL and authority, and may yield to fetch a token through lgrpc", function()
    -- the token service: another lgrpc server
    local issued = 0
    local tsrv, tport = kit.server({
      Unary = function(req)
        issued = issued + 1
        lgrpc.sleep(0.02)
        return { text = "tok-" .. issued .. "-for-" .. req.text }
      end,
    })
    local srv, port = echo_md()
    run(function()
      local tokens = kit.channel(tport):stub("lgrpctest.Echo")
      local cached, seen = nil, {}
      local function refresher(info)
        seen[#seen + 1] = info
        if not cached then
          local resp, st = tokens:Unary{ text = info.service_url }
          if not resp then return nil, st end
          cached = resp.text
        end
        return { authorization = "Bearer " .. cached }
      end
      local ch = kit.channel(port, { credentials = refresher, allow_insecure_credentials = true })
      local stub = ch:stub("lgrpctest.Echo")
      -- three calls at once, each in its own task
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = lgrpc.spawn(function() return assert(stub:Unary{}).text end)
      end
      local texts = {}
      for i = 1, 3 do
        local ok, text = tasks[i]:wait()
        assert(ok, text)
        texts[#texts + 1] = text
      end
      local want = "Bearer tok-1-for-http://127.0.0.1:" .. port .. "/lgrpctest.Echo;-;-"
      -- each started before the first token arrived, so some fetched their own: all valid
      for _, t in ipairs(texts) do assert.matches("^Bearer tok%-%d%-for%-http://127%.0%.0%.1:%d+/lgrpctest%.Echo;%-;%-$", t) end
      local later = assert(stub:Unary{}).text
      assert.are.equal(want, (later:gsub("tok%-%d", "tok-1")))
      assert.is_true(issued <= 3)
      assert.are.equal("/lgrpctest.Echo/Unary", seen[1].method)
      assert.are.equal("127.0.0.1:" .. port, seen[1].authority)
      assert.are.equal("http://127.0.0.1:" .. port .. "/lgrpctest.Echo", seen[1].service_url)
      ch:close()
    end, srv, tsrv)
  end)

  it("of a call replace the channel's for the same keys; other keys of both are sent", function()
    local srv, port = echo_md()
    run(function()
      local ch = kit.channel(port, {
        allow_insecure_credentials = true,
        credentials = function() return { authorization = "Bearer chan", ["x-chan"] = "1" } end,
        metadata = { ["x-call"] = "static" },
      })
      local stub = ch:stub("lgrpctest.Echo")
      assert.are.equal("Bearer chan;1;static", assert(stub:Unary{}).text)
      local resp = assert(stub:Unary({}, { credentials = function()
        return { authorization = "Bearer call" }
      end }))
      assert.are.equal("Bearer call;1;static", resp.text)
      -- credentials = false: the channel's are not used for this call
      resp = assert(stub:Unary({}, { credentials = false }))
      assert.are.equal(";-;static", resp.text)
      ch:close()
    end, srv)
  end)

  it("that fail end the call UNAVAILABLE, or with the status they return", function()
    local srv, port, calls = echo_md()
    run(function()
      local ch = kit.channel(port, { allow_insecure_credentials = true })
      local stub = ch:stub("lgrpctest.Echo")
      local _, st = stub:Unary({}, { credentials = function() error("token store down", 0) end })
      assert.are.equal(status.UNAVAILABLE, st.code)
      assert.are.equal("call credentials failed: token store down", st.message)
      _, st = stub:Unary({}, { credentials = function() return nil, "no token" end })
      assert.are.equal(status.UNAVAILABLE, st.code)
      assert.are.equal("call credentials failed: no token", st.message)
      _, st = stub:Unary({}, { credentials = function()
        return nil, status.permission_denied("account locked")
      end })
      assert.are.equal("rpc error: code = PermissionDenied desc = account locked", tostring(st))
      _, st = stub:Unary({}, { credentials = function() error(status.unauthenticated("expired")) end })
      assert.are.equal("rpc error: code = Unauthenticated desc = expired", tostring(st))
      _, st = stub:Unary({}, { credentials = function() return { ["grpc-x"] = "1" } end })
      assert.are.equal(status.UNAVAILABLE, st.code)
      assert.matches("call credentials returned bad metadata: .*reserved", st.message)
      assert.are.equal(0, calls.n)
      -- the call's deadline covers its credentials: a slow token source ends it in time
      local t0 = lgrpc.now()
      _, st = stub:Unary({}, { timeout = 0.1, credentials = function()
        lgrpc.sleep(0.3)
        return { authorization = "Bearer late" }
      end })
      assert.are.equal(status.DEADLINE_EXCEEDED, st.code)
      assert.is_true(lgrpc.now() - t0 < 1)
      local ok, err = pcall(stub.Unary, stub, {}, { credentials = "Bearer x" })
      assert.is_false(ok)
      assert.matches("credentials must be a function", err)
      ch:close()
    end, srv)
  end)

  it("work end to end with lgrpc.interceptors.auth: UNAUTHENTICATED and PERMISSION_DENIED on the wire", function()
    local srv, port = kit.server({
      Unary = function(_, ctx) return { text = "hello " .. ctx.auth.sub } end,
    })
    srv:use(interceptors.auth{
      verifier = auth.tokens{ good = { sub = "alice", admin = true }, weak = { sub = "bob" } },
      require = function(id) return id.admin == true, "admins only" end,
    })
    run(function()
      local function token(t) return function() return { authorization = "Bearer " .. t } end end
      local ch = kit.channel(port, { allow_insecure_credentials = true })
      local stub = ch:stub("lgrpctest.Echo")
      local _, st = stub:Unary{}
      assert.are.equal("rpc error: code = Unauthenticated desc = missing bearer token", tostring(st))
      _, st = stub:Unary({}, { credentials = token("forged") })
      assert.are.equal(status.UNAUTHENTICATED, st.code)
      assert.matches("^invalid token", st.message)
      _, st = stub:Unary({}, { credentials = token("weak") })
      assert.are.equal("rpc error: code = PermissionDenied desc = admins only", tostring(st))
      local resp = assert(stub:Unary({}, { credentials = token("good") }))
      assert.are.equal("hello alice", resp.text)
      ch:close()
    end, srv)
  end)
end)

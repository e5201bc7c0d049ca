-- Interceptors: server:use(...) and lgrpc.channel(target, { interceptors = ... }), chained in
-- order for all four kinds of call; unary ones may short-circuit, streaming ones wrap send/recv.
local lgrpc = require "lgrpc"
local kit = require "callkit"
local status = lgrpc.status

describe("interceptors", function()
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local c = kit.settle(base)
    for _, k in ipairs{ "client_calls", "server_calls", "tasks", "timers", "holds", "sessions",
      "streams", "buffered" } do
      assert.are.equal(base[k], c[k], "counter " .. k .. " back to baseline")
    end
  end)

  local handlers = {
    Unary = function(req, ctx)
      return { n = req.n, text = (req.text or "") .. "|handler" .. (ctx.tag or "") }
    end,
    ServerStream = function(req, stream)
      for i = 1, req.n do stream:send{ n = i } end
    end,
    ClientStream = function(stream)
      local sum = 0
      for m in stream:iter() do sum = sum + m.n end
      return { n = sum }
    end,
    Bidi = function(stream)
      for m in stream:iter() do stream:send{ n = m.n * 10 } end
    end,
  }

  it("chains server interceptors in order around unary handlers", function()
    local log = {}
    local function named(name)
      return function(req, ctx, info, next)
        log[#log + 1] = name .. ">" .. info.method .. ":" .. info.kind
        req.text = (req.text or "") .. "|" .. name
        local resp, st = next(req, ctx)
        log[#log + 1] = "<" .. name
        if resp then resp.text = resp.text .. "|" .. name .. "-after" end
        return resp, st
      end
    end
    local srv, port = kit.server(handlers)
    srv:use(named("a")):use(named("b"))
    local ch = kit.channel(port)
    local resp = assert(ch:stub("lgrpctest.Echo"):Unary{ text = "req", n = 1 })
    assert.are.equal("req|a|b|handler|b-after|a-after", resp.text)
    assert.are.same({ "a>/lgrpctest.Echo/Unary:unary", "b>/lgrpctest.Echo/Unary:unary", "<b", "<a" }, log)
    ch:close()
    srv:shutdown(0)
  end)

  it("lets a server interceptor short-circuit with a status, and see the context", function()
    local called = false
    local srv, port = kit.server{ Unary = function() called = true return {} end }
    srv:use{ unary = function(req, ctx, info, next)
      if ctx.metadata:get("authorization") ~= "Bearer ok" then
        return nil, status.unauthenticated("missing token")
      end
      return next(req, ctx)
    end }
    local ch = kit.channel(port)
    local stub = ch:stub("lgrpctest.Echo")
    local resp, st = stub:Unary{}
    assert.is_nil(resp)
    assert.are.equal("rpc error: code = Unauthenticated desc = missing token", tostring(st))
    assert.is_false(called)
    assert(stub:Unary({}, { metadata = { authorization = "Bearer ok" } }))
    assert.is_true(called)
    ch:close()
    srv:shutdown(0)
  end)

  it("wraps the stream of every streaming kind on the server", function()
    local seen = {}
    local srv, port = kit.server(handlers)
    srv:use{ stream = function(stream, ctx, info, next)
      local rec = { kind = info.kind, sent = 0, received = 0 }
      seen[#seen + 1] = rec
      local send, recv = stream.send, stream.recv
      stream.send = function(self, m) rec.sent = rec.sent + 1 return send(self, m) end
      stream.recv = function(self)
        local m, st = recv(self)
        if m then rec.received = rec.received + 1 end
        return m, st
      end
      local resp, st = next(stream, ctx)
      if resp then rec.response = resp.n end
      return resp, st
    end }
    local ch = kit.channel(port)
    local stub = ch:stub("lgrpctest.Echo")
    local call = stub:ServerStream{ n = 3 }
    for _ in call:iter() do end
    call = stub:ClientStream()
    for i = 1, 4 do call:send{ n = i } end
    assert.are.equal(10, assert(call:close_and_recv()).n)
    call = stub:Bidi()
    call:send{ n = 1 } call:send{ n = 2 }
    call:close_send()
    for _ in call:iter() do end
    assert(stub:Unary{ n = 1 }) -- a stream-only interceptor leaves unary calls alone
    assert.are.same({
      { kind = "server_stream", sent = 3, received = 1 },
      { kind = "client_stream", sent = 0, received = 4, response = 10 },
      { kind = "bidi", sent = 2, received = 2 },
    }, seen)
    ch:close()
    srv:shutdown(0)
  end)

  it("turns an error raised in a server interceptor into UNKNOWN", function()
    local srv, port = kit.server(handlers, { log = function() end })
    srv:use(function() error("interceptor bug") end)
    local ch = kit.channel(port)
    local _, st = ch:stub("lgrpctest.Echo"):Unary{}
    assert.are.equal(status.UNKNOWN, st.code)
    assert.are.equal("unexpected error in handler", st.message)
    ch:close()
    srv:shutdown(0)
  end)

  it("chains client interceptors in order, adding metadata on the way", function()
    local log = {}
    local function named(name)
      return { unary = function(req, opts, info, next)
        log[#log + 1] = name .. ">" .. info.method
        local md = opts.metadata or {}
        md["x-" .. name] = "1"
        opts.metadata = md
        local resp, st, call = next(req, opts)
        log[#log + 1] = "<" .. name
        return resp, st, call
      end }
    end
    local got
    local srv, port = kit.server{ Unary = function(req, ctx)
      got = { a = ctx.metadata:get("x-a"), b = ctx.metadata:get("x-b") }
      return req
    end }
    local ch = kit.channel(port, { interceptors = { named("a"), named("b") } })
    assert(ch:stub("lgrpctest.Echo"):Unary{ n = 2 })
    assert.are.same({ "a>/lgrpctest.Echo/Unary", "b>/lgrpctest.Echo/Unary", "<b", "<a" }, log)
    assert.are.same({ a = "1", b = "1" }, got)
    ch:close()
    srv:shutdown(0)
  end)

  it("lets a client interceptor answer without touching the network", function()
    local cache = { [7] = { n = 7, text = "cached" } }
    local ch = kit.channel(kit.free_port(), { interceptors = { function(req, opts, info, next)
      if info.kind == "unary" and cache[req.n] then return cache[req.n], status.ok() end
      return next(req, opts)
    end } })
    local resp, st = ch:stub("lgrpctest.Echo"):Unary{ n = 7 }
    assert.are.equal("cached", resp.text)
    assert.is_true(st:ok())
    local _, st2 = ch:stub("lgrpctest.Echo"):Unary({ n = 8 }, { timeout = 2 })
    assert.are.equal(status.UNAVAILABLE, st2.code)
    ch:close()
  end)

  it("wraps client streams of every streaming kind", function()
    local seen = {}
    local srv, port = kit.server(handlers)
    local ch = kit.channel(port, { interceptors = { { stream = function(_, opts, info, next)
      local call = next(nil, opts)
      local rec = { kind = info.kind, sent = 0, received = 0 }
      seen[#seen + 1] = rec
      local send, recv = call.send, call.recv
      call.send = function(self, m) rec.sent = rec.sent + 1 return send(self, m) end
      call.recv = function(self)
        local m, st = recv(self)
        if m then rec.received = rec.received + 1 end
        return m, st
      end
      return call
    end } } })
    local stub = ch:stub("lgrpctest.Echo")
    local call = stub:ServerStream{ n = 2 }
    for _ in call:iter() do end
    call = stub:ClientStream()
    for i = 1, 3 do call:send{ n = i } end
    assert.are.equal(6, assert(call:close_and_recv()).n)
    call = stub:Bidi()
    call:send{ n = 1 }
    assert.are.equal(10, call:recv().n)
    call:close_send()
    assert.is_nil(call:recv())
    assert.are.same({
      { kind = "server_stream", sent = 1, received = 2 },
      { kind = "client_stream", sent = 3, received = 1 },
      { kind = "bidi", sent = 1, received = 1 },
    }, seen)
    ch:close()
    srv:shutdown(0)
  end)

  it("refuses things that are not interceptors", function()
    assert.has_error(function() kit.channel(1, { interceptors = { 42 } }) end)
    assert.has_error(function() lgrpc.server{ pool = kit.pool() }:use({}) end)
  end)
end)

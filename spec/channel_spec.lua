-- lgrpc.channel and client calls: connecting, failing, reconnecting, deadlines, cancellation,
-- context propagation, backpressure. Servers run in-process or as child processes.
local lgrpc = require "lgrpc"
local kit = require "callkit"
local status = lgrpc.status

local testing_pool
local function interop_pool()
  testing_pool = testing_pool or
    assert(lgrpc.proto.load{ "grpc/testing/test.proto", include = { "/usr/share/grpc-proto" } })
  return testing_pool
end

local FAST = { initial = 0.1, multiplier = 1.6, jitter = 0.2, max = 1, min_connect_timeout = 2 }

describe("lgrpc.channel", function()
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local c = kit.settle(base)
    for _, k in ipairs{ "client_calls", "server_calls", "tasks", "timers", "holds", "sessions",
      "streams", "buffered" } do
      assert.are.equal(base[k], c[k], "counter " .. k .. " back to baseline")
    end
  end)

  it("connects lazily and reports its connectivity state", function()
    local srv, port = kit.server{ Unary = function(req) return req end }
    local ch = kit.channel(port)
    assert.are.equal("IDLE", ch:state())
    local resp = assert(ch:stub("lgrpctest.Echo"):Unary{ n = 3 })
    assert.are.equal(3, resp.n)
    assert.are.equal("READY", ch:state())
    ch:close()
    assert.are.equal("SHUTDOWN", ch:state())
    local _, st = ch:stub("lgrpctest.Echo"):Unary{ n = 3 }
    assert.are.equal(status.CANCELLED, st.code)
    srv:shutdown(0)
  end)

  it("closes an idle connection after idle_timeout and reconnects on the next call", function()
    local srv, port = kit.server{ Unary = function(req) return req end }
    local ch = kit.channel(port, { idle_timeout = 0.2 })
    local stub = ch:stub("lgrpctest.Echo")
    local sessions = kit.counters().sessions
    assert(stub:Unary{ n = 1 })
    assert.are.equal("READY", ch:state())
    assert.is_true(ch:wait_for_state_change("READY", 3))
    assert.are.equal("IDLE", ch:state())
    -- both ends of the connection are gone
    local t0 = lgrpc.now()
    while kit.counters().sessions ~= sessions and lgrpc.now() - t0 < 2 do lgrpc.sleep(0.02) end
    assert.are.equal(sessions, kit.counters().sessions)
    assert.are.equal(2, assert(stub:Unary{ n = 2 }).n)
    ch:close()
    srv:shutdown(0)
  end)

  it("fails UNAVAILABLE with the reason when the connection is refused", function()
    local port = kit.free_port()
    local ch = kit.channel(port, { backoff = FAST })
    local t0 = lgrpc.now()
    local resp, st = ch:stub("lgrpctest.Echo"):Unary({}, { timeout = 5 })
    assert.is_nil(resp)
    assert.are.equal(status.UNAVAILABLE, st.code)
    assert.matches("ECONNREFUSED", st.message)
    assert.matches("127.0.0.1:" .. port, st.message, 1, true)
    assert.is_true(lgrpc.now() - t0 < 1, "failed fast")
    assert.are.equal("TRANSIENT_FAILURE", ch:state())
    local ok, st2 = ch:connect(1)
    assert.is_nil(ok)
    assert.are.equal(status.UNAVAILABLE, st2.code)
    ch:close()
  end)

  it("waits for a server with wait_for_ready, backing off between attempts", function()
    local port = kit.free_port()
    local ch = kit.channel(port, { backoff = FAST })
    local srv
    local starter = lgrpc.spawn(function()
      lgrpc.sleep(0.4)
      srv = kit.server({ Unary = function(req) return req end })
      srv:shutdown(0)
      srv = lgrpc.server{ pool = kit.pool() }
      srv:add("lgrpctest.Echo", { Unary = function(req) return req end })
      assert(srv:listen("127.0.0.1:" .. port))
    end)
    local resp, st = ch:stub("lgrpctest.Echo"):Unary({ n = 5 }, { timeout = 5, wait_for_ready = true })
    assert.is_table(resp, tostring(st))
    assert.are.equal(5, resp.n)
    assert(starter:wait())
    ch:close()
    srv:shutdown(0)
  end)

  it("ends a call DEADLINE_EXCEEDED when its timeout passes", function()
    local srv, port = kit.server{ Unary = function() lgrpc.sleep(2) return {} end,
      Bidi = function(stream) for _ in stream:iter() do end end }
    local ch = kit.channel(port)
    local stub = ch:stub("lgrpctest.Echo")
    local t0 = lgrpc.now()
    local resp, st = stub:Unary({}, { timeout = 0.15 })
    assert.is_nil(resp)
    assert.are.equal(status.DEADLINE_EXCEEDED, st.code)
    local took = lgrpc.now() - t0
    assert.is_true(took >= 0.14 and took < 1, "took " .. took)
    local call = stub:Bidi{ timeout = 0.1 }
    local m, st2 = call:recv()
    assert.is_nil(m)
    assert.are.equal(status.DEADLINE_EXCEEDED, st2.code)
    local _, st3 = stub:Unary({}, { timeout = -1 })
    assert.are.equal(status.DEADLINE_EXCEEDED, st3.code)
    ch:close()
    srv:shutdown(0)
  end)

  it("ends unary and client-streaming calls UNIMPLEMENTED on zero or several responses", function()
    local bidi_pool = assert(lgrpc.proto.load{ "call_test_bidi.proto",
      include = { kit.top .. "/spec/support" } })
    local function answer(stream)
      local m = stream:recv()
      while stream:recv() do end
      for i = 1, m.n or 0 do stream:send{ n = i } end
    end
    local srv, port = kit.server({ Unary = answer, ClientStream = answer }, { pool = bidi_pool })
    local ch = kit.channel(port)
    local stub = ch:stub("lgrpctest.Echo")
    local resp, st = stub:Unary{ n = 0 }
    assert.is_nil(resp)
    assert.are.equal(status.UNIMPLEMENTED, st.code)
    assert.matches("no response message", st.message)
    resp, st = stub:Unary{ n = 2 }
    assert.is_nil(resp)
    assert.are.equal(status.UNIMPLEMENTED, st.code)
    assert.matches("more than one response", st.message)
    assert.are.equal(1, assert(stub:Unary{ n = 1 }).n)
    local call = stub:ClientStream()
    call:send{ n = 2 }
    resp, st = call:close_and_recv()
    assert.is_nil(resp)
    assert.are.equal(status.UNIMPLEMENTED, st.code)
    ch:close()
    srv:shutdown(0)
  end)

  it("returns response headers as they arrive, before any message, to a task waiting for them", function()
    local srv, port = kit.server{
      ServerStream = function(req, stream)
        assert(stream:send_headers{ ["x-first"] = "early" })
        lgrpc.sleep(0.5)
        stream:send{ n = req.n }
      end,
    }
    local ch = kit.channel(port)
    local c = ch:stub("lgrpctest.Echo"):ServerStream{ n = 7 }
    -- one task reads the messages (and so waits on the call too), this one waits for headers
    local reader = lgrpc.spawn(function() return c:recv().n end)
    local t0 = lgrpc.now()
    assert.are.equal("early", c:headers():get("x-first"))
    assert.is_true(lgrpc.now() - t0 < 0.4, "headers waited for the first message")
    assert.is_false(c:done())
    assert.are.same({ true, 7 }, { reader:wait() })
    assert.is_true(c:status():ok())
    ch:close()
    srv:shutdown(0)
  end)

  it("runs call:on_done once with the final status and counts messages and bytes", function()
    local srv, port = kit.server({
      Unary = function(req) return { text = req.text .. "!" } end,
      ServerStream = function(req, stream)
        for i = 1, req.n do stream:send{ n = i } end
        return nil, status.aborted("enough")
      end,
    })
    local types = {}
    local ch = kit.channel(port, { interceptors = { function(r, o, info, next)
      types[info.method] = info.input_type .. ">" .. info.output_type
      return next(r, o)
    end } })
    local stub = ch:stub("lgrpctest.Echo")
    local _, _, call = stub:Unary{ text = "hey" }
    assert.are.same({ messages_sent = 1, bytes_sent = 5, messages_received = 1,
      bytes_received = 6 }, call:stats())
    local late
    call:on_done(function(st) late = st end)        -- already done: runs at once
    assert.is_true(late:ok())
    local c = stub:ServerStream{ n = 3 }
    local seen = {}
    c:on_done(function(st) seen[#seen + 1] = st end)
    c:on_done(function() error("a broken hook is logged, not raised") end)
    assert.are.equal(0, #seen)
    local st = c:status()
    assert.are.equal(status.ABORTED, st.code)
    assert.are.equal(1, #seen)
    assert.are.equal(st, seen[1])
    -- received counts what arrived, read or not
    assert.are.same({ messages_sent = 1, bytes_sent = 2, messages_received = 3,
      bytes_received = 6 }, c:stats())
    assert.are.equal("lgrpctest.Msg>lgrpctest.Msg", types["/lgrpctest.Echo/ServerStream"])
    ch:close()
    srv:shutdown(0)
  end)

  it("refuses bad call arguments with errors that blame the caller", function()
    local ch = kit.channel(1)
    local stub = ch:stub("lgrpctest.Echo")
    assert.has_error(function() stub:Unary({}, { metadata = { ["grpc-timeout"] = "1S" } }) end)
    assert.has_error(function() stub:Unary({}, { metadata = { ["bad key"] = "v" } }) end)
    assert.has_error(function() stub:Unary({}, { timeout = "soon" }) end)
    assert.has_error(function() ch:stub("lgrpctest.Nope") end, "lgrpc: unknown service lgrpctest.Nope")
    assert.has_error(function() lgrpc.channel("127.0.0.1:1"):stub("lgrpctest.Echo") end)
    assert.has_error(function() lgrpc.channel(42) end)
    assert.has_error(function() ch:call("no-slash", "unary", "") end)
    local _, st = stub:Unary("not a table", { timeout = 1 })
    assert.are.equal(status.INTERNAL, st.code)
    ch:close()
  end)

  it("raises instead of hanging when blocked from a coroutine lgrpc does not own", function()
    local srv, port = kit.server{ Unary = function(req) return req end }
    local ch = kit.channel(port)
    local stub = ch:stub("lgrpctest.Echo")
    local task = lgrpc.spawn(function()
      local co = coroutine.create(function() return stub:Unary({ n = 1 }, { timeout = 1 }) end)
      return coroutine.resume(co)
    end)
    local ok, resumed, err = task:wait()
    assert.is_true(ok)
    assert.is_false(resumed)
    assert.matches("blocking call from a coroutine lgrpc does not own", err)
    ch:close()
    srv:shutdown(0)
  end)

  it("passes a handler's deadline and cancellation on to the calls it makes", function()
    local seen = {}
    local back, back_port = kit.server{
      Unary = function(_, ctx) seen.remaining = ctx:time_remaining() return {} end,
      Bidi = function(stream, ctx)
        local _, st = stream:recv()
        seen.back_st = st
        seen.back_cancelled = ctx:cancelled()
      end,
    }
    local back_ch = kit.channel(back_port)
    local back_stub = back_ch:stub("lgrpctest.Echo")
    local front, front_port = kit.server{
      Unary = function(req, ctx) return back_stub:Unary(req, { ctx = ctx }) end,
      Bidi = function(stream, ctx)
        local call = back_stub:Bidi{ ctx = ctx }
        local _, st = call:recv()
        seen.inner = st
      end,
    }
    local ch = kit.channel(front_port)
    local stub = ch:stub("lgrpctest.Echo")
    assert(stub:Unary({}, { timeout = 3 }))
    assert.is_true(seen.remaining > 2 and seen.remaining <= 3, tostring(seen.remaining))
    local call = stub:Bidi()
    lgrpc.sleep(0.2)
    call:cancel()
    local t0 = lgrpc.now()
    while (seen.inner == nil or seen.back_st == nil) and lgrpc.now() - t0 < 3 do lgrpc.sleep(0.01) end
    assert.are.equal(status.CANCELLED, seen.inner.code)
    assert.are.equal(status.CANCELLED, seen.back_st.code)
    assert.is_true(seen.back_cancelled)
    ch:close()
    back_ch:close()
    front:shutdown(0)
    back:shutdown(0)
  end)

  it("reports UNAVAILABLE when the server is killed mid-call", function()
    local child = kit.lua_server("examples/interop/server.lua")
    local ch = lgrpc.channel("127.0.0.1:" .. child.port, { pool = interop_pool() })
    local stub = ch:stub("grpc.testing.TestService")
    local call = stub:StreamingOutputCall({ response_parameters = {
      { size = 10 }, { size = 10, interval_us = 5000000 } } }, { timeout = 10 })
    local first = call:recv()
    assert.is_table(first)
    child.kill("KILL")
    local m, st = call:recv()
    assert.is_nil(m)
    assert.are.equal(status.UNAVAILABLE, st.code)
    ch:close()
  end)

  it("reconnects when the server is restarted under it", function()
    local child = kit.lua_server("examples/interop/server.lua")
    local port = child.port
    local ch = lgrpc.channel("127.0.0.1:" .. port, { pool = interop_pool(), backoff = FAST })
    local stub = ch:stub("grpc.testing.TestService")
    assert(stub:EmptyCall({}, { timeout = 5 }))
    child.kill()
    child = kit.lua_server("examples/interop/server.lua", port)
    local resp, st = stub:EmptyCall({}, { timeout = 5, wait_for_ready = true })
    assert.is_table(resp, tostring(st))
    assert(stub:UnaryCall({ response_size = 10 }, { timeout = 5 }))
    assert.are.equal("READY", ch:state())
    child.kill()
    ch:close()
  end)

  it("moves to a new connection after the server's GOAWAY", function()
    local srv1, port = kit.server{ Unary = function() return { n = 1 } end }
    local ch = kit.channel(port, { backoff = FAST })
    local stub = ch:stub("lgrpctest.Echo")
    assert.are.equal(1, assert(stub:Unary{}).n)
    srv1:shutdown(1)
    local srv2 = lgrpc.server{ pool = kit.pool() }
    srv2:add("lgrpctest.Echo", { Unary = function() return { n = 2 } end })
    assert(srv2:listen("127.0.0.1:" .. port))
    local resp, st = stub:Unary({}, { timeout = 3, wait_for_ready = true })
    assert.is_table(resp, tostring(st))
    assert.are.equal(2, resp.n)
    ch:close()
    srv2:shutdown(0)
  end)

  it("moves to a new connection when its stream ids run out", function()
    local peers = {}
    local srv, port = kit.server{ Unary = function(req, ctx)
      peers[ctx.peer] = true
      return { n = 1 }
    end }
    local ch = kit.channel(port)
    -- start the connection two streams before the end of the id space (2^31-1): there is no
    -- user option for this, the session option exists for specs
    ch.session_opts.first_stream_id = 2147483645
    local stub = ch:stub("lgrpctest.Echo")
    for _ = 1, 5 do
      local resp, st = stub:Unary({}, { timeout = 3 })
      assert.is_table(resp, tostring(st))
    end
    local n = 0
    for _ in pairs(peers) do n = n + 1 end
    assert.is_true(n >= 2, "calls went over " .. n .. " connection(s)")
    ch:close()
    srv:shutdown(0)
  end)

  it("runs calls past the server's stream limit, retrying those it refused", function()
    local active, peak = 0, 0
    local srv, port = kit.server({ Unary = function(req)
      active = active + 1
      if active > peak then peak = active end
      lgrpc.sleep(0.02)
      active = active - 1
      return req
    end }, { max_concurrent_streams = 2 })
    local ch = kit.channel(port)
    local stub = ch:stub("lgrpctest.Echo")
    local tasks = {}
    for i = 1, 30 do
      tasks[i] = lgrpc.spawn(function() return stub:Unary({ n = i }, { timeout = 10 }) end)
    end
    for i = 1, 30 do
      local ok, resp, st = tasks[i]:wait()
      assert.is_true(ok)
      assert.is_table(resp, tostring(st))
      assert.are.equal(i, resp.n)
    end
    assert.is_true(peak <= 2, "peak " .. peak)
    ch:close()
    srv:shutdown(0)
  end)

  it("keeps buffered bytes bounded while streaming 100 MiB to a slow reader #heavy", function()
    local chunk = string.rep("d", 64 * 1024)
    local peak_buffered, peak_inbox = 0, 0
    local srv, port = kit.server{ ServerStream = function(req, stream)
      for _ = 1, req.n do
        local ok, st = stream:send{ data = chunk }
        if not ok then return nil, st end
      end
    end }
    local ch = kit.channel(port)
    local call = ch:stub("lgrpctest.Echo"):ServerStream({ n = 1600 }, { timeout = 120 })
    local got, i = 0, 0
    for m in call:iter() do
      got = got + #m.data
      i = i + 1
      if i % 50 == 0 then lgrpc.sleep(0.002) end
      local b = lgrpc.counters().buffered
      if b > peak_buffered then peak_buffered = b end
      local inbox = call.inbox_bytes
      if inbox > peak_inbox then peak_inbox = inbox end
    end
    assert.is_true(call:status():ok())
    assert.are.equal(100 * 1024 * 1024, got)
    -- the transport holds at most the 1 MiB receive window, a message being sent and a
    -- message being reassembled; the call layer pauses the stream past 256 KiB / 16 messages
    assert.is_true(peak_buffered <= 1024 * 1024 + 3 * (64 * 1024 + 5) + 64 * 1024,
      "transport buffered " .. peak_buffered)
    assert.is_true(peak_inbox <= 16 * (64 * 1024 + 16), "inbox " .. peak_inbox)
    ch:close()
    srv:shutdown(0)
  end)
end)

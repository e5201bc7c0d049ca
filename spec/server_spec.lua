-- lgrpc.server: what handlers see and what clients get back, over real sockets on 127.0.0.1.
local lgrpc = require "lgrpc"
local kit = require "callkit"
local status = lgrpc.status

describe("lgrpc.server", function()
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local c = kit.settle(base)
    for _, k in ipairs{ "client_calls", "server_calls", "tasks", "timers", "holds", "sessions", "streams",
      "buffered" } do
      assert.are.equal(base[k], c[k], "counter " .. k .. " back to baseline")
    end
  end)

  local function with(handlers, fn, opts)
    local srv, port = kit.server(handlers, opts)
    local ch = kit.channel(port, opts and opts.channel)
    local ok, err = pcall(fn, ch:stub("lgrpctest.Echo"), ch, port, srv)
    ch:close()
    srv:shutdown(0)
    if not ok then error(err, 0) end
  end

  it("answers unary calls and shows the handler the call context", function()
    local seen
    with({ Unary = function(req, ctx)
      seen = { method = ctx.method, peer = ctx.peer, id = ctx.metadata:get("x-id"),
        tags = ctx.metadata:get_all("x-tag"), remaining = ctx:time_remaining() }
      ctx:set_header{ ["x-h"] = "head" }
      ctx:set_trailer{ ["x-t-bin"] = "\0\1" }
      return { text = "echo " .. req.text, n = req.n + 1 }
    end }, function(stub)
      local resp, st, call = stub:Unary({ text = "hi", n = 41 },
        { timeout = 5, metadata = { ["x-id"] = "7", ["x-tag"] = { "a", "b" } } })
      assert.are.equal("echo hi", resp.text)
      assert.are.equal(42, resp.n)
      assert.is_true(st:ok())
      assert.are.equal("head", call:headers():get("x-h"))
      assert.are.equal("\0\1", call:trailers():get("x-t-bin"))
    end)
    assert.are.equal("/lgrpctest.Echo/Unary", seen.method)
    assert.matches("^127%.0%.0%.1:%d+$", seen.peer)
    assert.are.equal("7", seen.id)
    assert.are.same({ "a", "b" }, seen.tags)
    assert.is_true(seen.remaining > 3 and seen.remaining <= 5)
  end)

  it("keeps 64-bit integers exact both ways", function()
    if math.type then
      with({ Unary = function(req) return { big = req.big } end }, function(stub)
        for _, v in ipairs{ 9007199254740993, math.mininteger, math.maxinteger } do
          assert.are.equal(v, assert(stub:Unary{ big = v }).big)
        end
      end)
    else
      -- LuaJIT: 64-bit values travel as decimal strings with decode = { int64 = "string" }
      local seen
      with({ Unary = function(req) seen = req.big return { big = req.big } end }, function(stub)
        for _, v in ipairs{ "9007199254740993", "-9223372036854775808", "9223372036854775807" } do
          assert.are.equal(v, assert(stub:Unary{ big = v }).big)
          assert.are.equal(v, seen)
        end
      end, { decode = { int64 = "string" }, channel = { decode = { int64 = "string" } } })
    end
  end)

  it("sends a status returned or raised by the handler", function()
    with({
      Unary = function(req)
        if req.n == 1 then return nil, status.not_found("no such thing") end
        if req.n == 2 then error(status.permission_denied("go away")) end
        if req.n == 3 then return nil, "plain error text" end
        return nil, status.new(status.INVALID_ARGUMENT, "bad", "\8\3")
      end,
    }, function(stub)
      local resp, st = stub:Unary{ n = 1 }
      assert.is_nil(resp)
      assert.are.equal("rpc error: code = NotFound desc = no such thing", tostring(st))
      _, st = stub:Unary{ n = 2 }
      assert.are.equal(status.PERMISSION_DENIED, st.code)
      assert.are.equal("go away", st.message)
      _, st = stub:Unary{ n = 3 }
      assert.are.equal(status.UNKNOWN, st.code)
      assert.are.equal("plain error text", st.message)
      _, st = stub:Unary{ n = 4 }
      assert.are.equal(status.INVALID_ARGUMENT, st.code)
      assert.are.equal("\8\3", st.details_bin)
      -- raw bytes go out as given; these say message "" where grpc-message says "bad"
      assert.is_nil(st.details)
      assert.matches("disagrees with grpc%-message", st.details_error)
    end)
  end)

  it("turns a Lua error into UNKNOWN without sending the traceback, and logs it", function()
    local logged = {}
    local function deep_helper() local t = nil; return t.field end
    with({ Unary = function() return deep_helper() end }, function(stub)
      local resp, st = stub:Unary{}
      assert.is_nil(resp)
      assert.are.equal(status.UNKNOWN, st.code)
      assert.are.equal("unexpected error in handler", st.message)
    end, { log = function(m) logged[#logged + 1] = m end })
    assert.are.equal(1, #logged)
    assert.matches("attempt to index", logged[1])
    assert.matches("stack traceback", logged[1])
    assert.matches("server_spec%.lua:%d+: in ", logged[1]) -- where the handler failed
  end)

  it("answers UNIMPLEMENTED for unknown services and methods, and unregistered handlers", function()
    with({ Unary = function() return {} end }, function(_, ch)
      local _, st = ch:call("/lgrpctest.Nope/Unary", "unary", "")
      assert.are.equal(status.UNIMPLEMENTED, st.code)
      assert.matches("unknown service lgrpctest.Nope", st.message)
      _, st = ch:call("/lgrpctest.Echo/Missing", "unary", "")
      assert.are.equal(status.UNIMPLEMENTED, st.code)
      assert.matches("unknown method Missing", st.message)
      _, st = ch:call("/lgrpctest.Echo/Bidi", "unary", "")
      assert.are.equal(status.UNIMPLEMENTED, st.code)
    end)
  end)

  it("answers INTERNAL to an undecodable request", function()
    with({ Unary = function() return {} end }, function(_, ch)
      local _, st = ch:call("/lgrpctest.Echo/Unary", "unary", "\255\255\255")
      assert.are.equal(status.INTERNAL, st.code)
      assert.matches("cannot decode request", st.message)
    end)
  end)

  it("answers UNIMPLEMENTED when a unary or server-streaming method gets zero or two requests", function()
    with({ Unary = function() return {} end, ServerStream = function() end }, function(_, ch)
      for _, path in ipairs{ "/lgrpctest.Echo/Unary", "/lgrpctest.Echo/ServerStream" } do
        local call = ch:call(path, "bidi")
        call:close_send()
        local st = call:status()
        assert.are.equal(status.UNIMPLEMENTED, st.code, path)
        assert.matches("no request message", st.message)
        call = ch:call(path, "bidi")
        call:send("")
        call:send("")
        call:close_send()
        st = call:status()
        assert.are.equal(status.UNIMPLEMENTED, st.code, path)
        assert.matches("more than one request", st.message)
      end
    end)
  end)

  it("streams in every direction", function()
    with({
      ServerStream = function(req, stream)
        for i = 1, req.n do assert(stream:send{ n = i }) end
      end,
      ClientStream = function(stream)
        local sum = 0
        for m in stream:iter() do sum = sum + m.n end
        return { n = sum }
      end,
      Bidi = function(stream, ctx)
        stream:set_header{ ["x-bidi"] = "yes" }
        for m in stream:iter() do assert(stream:send{ text = m.text:upper() }) end
        ctx:set_trailer{ ["x-end"] = "done" }
      end,
    }, function(stub)
      local call = stub:ServerStream{ n = 5 }
      local got = {}
      for m in call:iter() do got[#got + 1] = m.n end
      assert.are.same({ 1, 2, 3, 4, 5 }, got)
      assert.is_true(call:status():ok())

      call = stub:ClientStream()
      for i = 1, 10 do assert(call:send{ n = i }) end
      local resp = assert(call:close_and_recv())
      assert.are.equal(55, resp.n)

      call = stub:Bidi()
      for _, w in ipairs{ "a", "b", "c" } do
        assert(call:send{ text = w })
        assert.are.equal(w:upper(), call:recv().text)
      end
      call:close_send()
      local m, st = call:recv()
      assert.is_nil(m)
      assert.is_true(st:ok())
      assert.are.equal("yes", call:headers():get("x-bidi"))
      assert.are.equal("done", call:trailers():get("x-end"))
    end)
  end)

  it("enforces the deadline itself and cancels the handler's context", function()
    local seen = {}
    with({ Unary = function(_, ctx)
      local ok, st = lgrpc.sleep(5)
      seen.slept, seen.st = ok, st
      seen.cancelled = ctx:cancelled()
      return {}
    end }, function(stub)
      local t0 = lgrpc.now()
      local resp, st = stub:Unary({}, { timeout = 0.2 })
      assert.is_nil(resp)
      assert.are.equal(status.DEADLINE_EXCEEDED, st.code)
      assert.is_true(lgrpc.now() - t0 < 2)
      local t1 = lgrpc.now()
      while seen.cancelled == nil and lgrpc.now() - t1 < 2 do lgrpc.sleep(0.01) end
    end)
    assert.is_nil(seen.slept)
    assert.are.equal(status.DEADLINE_EXCEEDED, seen.st.code)
    assert.is_true(seen.cancelled)
  end)

  it("enforces the deadline even when the client does not", function()
    local rt = lgrpc.runtime.default()
    local srv, port = kit.server{ Unary = function() lgrpc.sleep(5) return {} end }
    -- a bare transport session as the client: it sends grpc-timeout but never resets
    local session = assert(rt.driver.connect("127.0.0.1:" .. port, {}))
    local got = {}
    rt:own(session, { event = function(_, ev) got[#got + 1] = ev end })
    local stream = assert(session:request{ path = "/lgrpctest.Echo/Unary", timeout = 150 })
    assert(stream:send_message(assert(kit.pool():encode("lgrpctest.Msg", {}))))
    stream:close_send()
    local t0 = lgrpc.now()
    local st
    while not st and lgrpc.now() - t0 < 3 do
      for _, ev in ipairs(got) do if ev.type == "status" then st = ev end end
      if not st then lgrpc.sleep(0.01) end
    end
    assert.is_table(st)
    assert.are.equal(status.DEADLINE_EXCEEDED, st.code)
    assert.is_true(lgrpc.now() - t0 < 1)
    session:close()
    t0 = lgrpc.now()
    local closed = false
    while not closed and lgrpc.now() - t0 < 2 do
      for _, ev in ipairs(got) do if ev.type == "closed" then closed = true end end
      if not closed then lgrpc.sleep(0.01) end
    end
    rt:disown(session)
    stream, session, got = nil, nil, nil
    srv:shutdown(0)
  end)

  -- A bare transport session as the client, to send a request in pieces: the server runs a
  -- unary handler only once the message and the half-close are in, in whatever batches they come.
  local function bare_client(port)
    local rt = lgrpc.runtime.default()
    local session = assert(rt.driver.connect("127.0.0.1:" .. port, {}))
    local got = {}
    rt:own(session, { event = function(_, ev) got[#got + 1] = ev end })
    local function wait_for(kind, limit)
      local t0 = lgrpc.now()
      while lgrpc.now() - t0 < (limit or 3) do
        for _, ev in ipairs(got) do if ev.type == kind then return ev end end
        lgrpc.sleep(0.01)
      end
    end
    local function close()
      session:close()
      wait_for("closed", 2)
      rt:disown(session)
    end
    return session, got, wait_for, close
  end

  it("runs a unary handler once its request is complete, sent in separate pieces", function()
    local runs, seen = 0, nil
    local srv, port = kit.server{ Unary = function(req, ctx)
      runs = runs + 1
      seen = { text = req.text, x = ctx.metadata:get("x-piece") }
      return { text = req.text .. "!" }
    end }
    local session, got, wait_for, close = bare_client(port)
    local stream = assert(session:request{ path = "/lgrpctest.Echo/Unary",
      metadata = { ["x-piece"] = "yes" } })
    lgrpc.sleep(0.05)
    assert.are.equal(0, runs)          -- headers alone: nothing runs yet
    assert(stream:send_message(assert(kit.pool():encode("lgrpctest.Msg", { text = "late" }))))
    lgrpc.sleep(0.05)
    assert.are.equal(0, runs)          -- the message without the half-close: still waiting
    stream:close_send()
    local st = wait_for("status")
    assert.is_table(st)
    assert.are.equal(0, st.code)
    assert.are.equal(1, runs)
    assert.are.same({ text = "late", x = "yes" }, seen)
    local msg
    for _, ev in ipairs(got) do if ev.type == "message" then msg = ev.data end end
    assert.are.equal("late!", kit.pool():decode("lgrpctest.Msg", msg).text)
    close()
    srv:shutdown(0)
  end)

  it("ends a unary call cancelled before its request is complete without running the handler", function()
    local runs = 0
    local srv, port = kit.server{ Unary = function() runs = runs + 1 return {} end }
    local session, _, _, close = bare_client(port)
    local stream = assert(session:request{ path = "/lgrpctest.Echo/Unary" })
    assert(stream:send_message(assert(kit.pool():encode("lgrpctest.Msg", { text = "x" }))))
    lgrpc.sleep(0.05)
    assert.are.equal(1, srv.ncalls)
    stream:reset(8)
    local t0 = lgrpc.now()
    while srv.ncalls > 0 and lgrpc.now() - t0 < 2 do lgrpc.sleep(0.01) end
    assert.are.equal(0, srv.ncalls)
    assert.are.equal(0, runs)
    close()
    srv:shutdown(0)
  end)

  it("answers UNIMPLEMENTED when a unary request carries two messages", function()
    local runs = 0
    local srv, port = kit.server{ Unary = function() runs = runs + 1 return {} end }
    local session, _, wait_for, close = bare_client(port)
    local stream = assert(session:request{ path = "/lgrpctest.Echo/Unary" })
    local bytes = assert(kit.pool():encode("lgrpctest.Msg", { text = "x" }))
    assert(stream:send_message(bytes))
    assert(stream:send_message(bytes))
    local st = wait_for("status")
    assert.is_table(st)
    assert.are.equal(status.UNIMPLEMENTED, st.code)
    assert.are.equal(0, runs)
    stream:close_send()
    close()
    srv:shutdown(0)
  end)

  it("shows the handler a client that cancels mid-stream", function()
    local seen = {}
    with({ Bidi = function(stream, ctx)
      for m in stream:iter() do stream:send(m) end
      local _, st = stream:recv()
      seen.st = st
      seen.cancelled = ctx:cancelled()
    end }, function(stub)
      local call = stub:Bidi()
      assert(call:send{ n = 1 })
      assert.are.equal(1, call:recv().n)
      call:cancel()
      assert.are.equal(status.CANCELLED, call:status().code)
      local t0 = lgrpc.now()
      while seen.cancelled == nil and lgrpc.now() - t0 < 2 do lgrpc.sleep(0.01) end
    end)
    assert.is_true(seen.cancelled)
    assert.are.equal(status.CANCELLED, seen.st.code)
  end)

  it("shows the handler a client that disconnects mid-stream", function()
    local seen = {}
    local srv, port = kit.server{ Bidi = function(stream, ctx)
      local first = stream:recv()
      seen.first = first and first.n
      stream:send{ n = 1 }
      local m, st = stream:recv()
      seen.m, seen.st = m, st
      seen.cancelled = ctx:cancelled()
    end }
    local ch = kit.channel(port)
    local call = ch:stub("lgrpctest.Echo"):Bidi()
    assert(call:send{ n = 5 })
    assert.are.equal(1, call:recv().n)
    ch:close()        -- the connection goes away under the call
    local t0 = lgrpc.now()
    while seen.cancelled == nil and lgrpc.now() - t0 < 2 do lgrpc.sleep(0.01) end
    assert.are.equal(5, seen.first)
    assert.is_nil(seen.m)
    assert.is_true(seen.cancelled)
    assert.is_table(seen.st)
    assert.are_not.equal(status.OK, seen.st.code)
    srv:shutdown(0)
  end)

  it("carries 16 MiB messages with raised limits and refuses over-limit ones both ways", function()
    local big = string.rep("x", 16 * 1024 * 1024)
    with({ Unary = function(req) return { data = req.data, n = #req.data } end },
      function(stub)
        local resp = assert(stub:Unary({ data = big }, { timeout = 30 }))
        assert.are.equal(#big, resp.n)
        assert.is_true(resp.data == big)
      end,
      { max_recv_msg_size = 17 * 1024 * 1024, channel = { max_recv_msg_size = 17 * 1024 * 1024 } })
    -- default 4 MiB limits: the server refuses a big request, the client a big response
    with({ Unary = function(req) return { data = string.rep("y", req.n) } end }, function(stub)
      local resp, st = stub:Unary{ data = string.rep("z", 5 * 1024 * 1024) }
      assert.is_nil(resp)
      assert.are.equal(status.RESOURCE_EXHAUSTED, st.code)
      resp, st = stub:Unary{ n = 5 * 1024 * 1024 }
      assert.is_nil(resp)
      assert.are.equal(status.RESOURCE_EXHAUSTED, st.code)
      resp = assert(stub:Unary{ n = 1000 })
      assert.are.equal(1000, #resp.data)
    end)
  end)

  it("serves calls from many tasks at once in one thread", function()
    with({ Unary = function(req) lgrpc.sleep(0.05) return { n = req.n * 2 } end }, function(stub)
      local tasks = {}
      local t0 = lgrpc.now()
      for i = 1, 50 do
        tasks[i] = lgrpc.spawn(function() return assert(stub:Unary{ n = i }).n end)
      end
      for i = 1, 50 do
        local ok, n = tasks[i]:wait()
        assert.is_true(ok)
        assert.are.equal(2 * i, n)
      end
      assert.is_true(lgrpc.now() - t0 < 2, "calls ran concurrently")
    end)
  end)

  it("completes every call while the garbage collector runs between them", function()
    with({ Unary = function(req)
      if req.n % 7 == 0 then collectgarbage() end
      return { n = req.n }
    end }, function(stub)
      local tasks = {}
      for t = 1, 20 do
        tasks[t] = lgrpc.spawn(function()
          for i = 1, 50 do
            local resp, st = stub:Unary({ n = t * 1000 + i }, { timeout = 10 })
            if not resp then return nil, tostring(st) end
            if i % 5 == 0 then collectgarbage() end
          end
          return true
        end)
      end
      for t = 1, 20 do
        local ok, done, err = tasks[t]:wait()
        assert.is_true(ok)
        assert.is_true(done, err)
      end
    end)
  end)

  it("holds 1000 concurrent streams on one connection", function()
    local active, peak, release = 0, 0, false
    with({ Unary = function(req)
      active = active + 1
      if active > peak then peak = active end
      while not release do lgrpc.sleep(0.01) end
      return { n = req.n }
    end }, function(stub, ch)
      assert(ch:connect(5))
      local tasks = {}
      for i = 1, 1000 do
        tasks[i] = lgrpc.spawn(function() return assert(stub:Unary({ n = i }, { timeout = 20 })).n end)
      end
      local t0 = lgrpc.now()
      while active < 1000 and lgrpc.now() - t0 < 15 do lgrpc.sleep(0.01) end
      assert.are.equal(1000, active, "a server-side counter reaches 1000 before any reply")
      release = true
      for i = 1, 1000 do
        local ok, n = tasks[i]:wait()
        assert.is_true(ok)
        assert.are.equal(i, n)
      end
      assert.are.equal(1, #(function() local l = {} for c in pairs(ch.conns) do l[#l + 1] = c end return l end)())
    end, { max_concurrent_streams = 1000 })
    assert.are.equal(1000, peak)
  end)

  it("takes 200 connections at once", function()
    with({ Unary = function(req) return { n = req.n } end }, function(_, _, port)
      local chans, tasks = {}, {}
      for i = 1, 200 do
        chans[i] = kit.channel(port)
        local stub = chans[i]:stub("lgrpctest.Echo")
        tasks[i] = lgrpc.spawn(function() return assert(stub:Unary({ n = i }, { timeout = 20 })).n end)
      end
      for i = 1, 200 do
        local ok, n = tasks[i]:wait()
        assert.is_true(ok)
        assert.are.equal(i, n)
      end
      for i = 1, 200 do chans[i]:close() end
    end)
  end)

  it("finishes calls in flight on graceful shutdown, and refuses new ones", function()
    local srv, port = kit.server{ Unary = function(req) lgrpc.sleep(0.3) return { n = req.n } end }
    local ch = kit.channel(port)
    local stub = ch:stub("lgrpctest.Echo")
    local inflight = lgrpc.spawn(function() return stub:Unary({ n = 9 }, { timeout = 5 }) end)
    lgrpc.sleep(0.1)
    local t0 = lgrpc.now()
    srv:shutdown(5)
    assert.is_true(lgrpc.now() - t0 < 2, "shutdown returned once the call finished")
    local ok, resp, st0 = inflight:wait()
    assert.is_true(ok)
    assert.is_table(resp, tostring(st0))
    assert.are.equal(9, resp.n)
    local resp2, st = stub:Unary({ n = 1 }, { timeout = 2 })
    assert.is_nil(resp2)
    assert.are.equal(status.UNAVAILABLE, st.code)
    ch:close()
  end)

  it("cancels a stuck stream when the grace period ends", function()
    local seen = {}
    local srv, port = kit.server{ Bidi = function(stream, ctx)
      local m, st = stream:recv()   -- the client never sends
      seen.m, seen.st = m, st
      seen.cancelled = ctx:cancelled()
    end }
    local ch = kit.channel(port)
    local call = ch:stub("lgrpctest.Echo"):Bidi()
    assert.are.equal("READY", (function() assert(ch:connect(2)) return ch:state() end)())
    lgrpc.sleep(0.1)
    local t0 = lgrpc.now()
    srv:shutdown(0.3)
    local took = lgrpc.now() - t0
    assert.is_true(took >= 0.25 and took < 2, "took " .. took)
    assert.is_true(seen.cancelled)
    assert.is_nil(seen.m)
    local st = call:status()
    assert.are_not.equal(status.OK, st.code)
    ch:close()
  end)

  it("tells ctx:on_done the status actually sent, with message and byte counts", function()
    local done, stats, types = {}, {}, {}
    local function track(ctx, key)
      ctx:on_done(function(st) done[key] = st stats[key] = ctx:stats() end)
    end
    with({
      Unary = function(req, ctx)
        track(ctx, "unary" .. req.n)
        if req.n == 1 then return { n = "not a number" } end   -- fails to encode
        return { text = "ok" }
      end,
      Bidi = function(stream, ctx)
        track(ctx, "bidi")
        for m in stream:iter() do assert(stream:send{ text = m.text .. "!" }) end
      end,
    }, function(stub)
      local _, st = stub:Unary{ n = 1 }
      assert.are.equal(status.INTERNAL, st.code)
      assert.are.equal(st.code, done.unary1.code)
      assert.matches("cannot encode response", done.unary1.message)
      assert.are.same({ messages_received = 1, bytes_received = 2, messages_sent = 0,
        bytes_sent = 0 }, stats.unary1)
      assert(stub:Unary{ n = 2 })
      assert.is_true(done.unary2:ok())
      assert.are.same({ messages_received = 1, bytes_received = 2, messages_sent = 1,
        bytes_sent = 4 }, stats.unary2)
      local call = stub:Bidi()
      for _, t in ipairs{ "a", "bb", "ccc" } do
        assert(call:send{ text = t })
        assert(call:recv())
      end
      call:close_send()
      assert.is_true(call:status():ok())
      assert.is_true(done.bidi:ok())
      assert.are.same({ messages_received = 3, bytes_received = 12, messages_sent = 3,
        bytes_sent = 15 }, stats.bidi)
    end, { interceptors = { function(x, ctx, info, next)
      types[info.method] = info.input_type .. ">" .. info.output_type
      return next(x, ctx)
    end } })
    assert.are.equal("lgrpctest.Msg>lgrpctest.Msg", types["/lgrpctest.Echo/Unary"])
    assert.are.equal("lgrpctest.Msg>lgrpctest.Msg", types["/lgrpctest.Echo/Bidi"])
  end)

  it("tells ctx:on_done when the client cancels", function()
    local got
    with({ Unary = function(_, ctx)
      ctx:on_done(function(st) got = st end)
      lgrpc.sleep(5)
      return {}
    end }, function(stub)
      local _, st = stub:Unary({}, { timeout = 0.1 })
      assert.are.equal(status.DEADLINE_EXCEEDED, st.code)
      local t0 = lgrpc.now()
      while not got and lgrpc.now() - t0 < 3 do lgrpc.sleep(0.02) end
      assert.is_not_nil(got)
      assert.are.equal(status.DEADLINE_EXCEEDED, got.code)
    end)
  end)

  it("refuses bad arguments with errors that blame the caller", function()
    local srv = lgrpc.server{ pool = kit.pool() }
    assert.has_error(function() srv:add("lgrpctest.Nope", {}) end, "lgrpc.server:add: unknown service lgrpctest.Nope")
    assert.has_error(function() srv:add("lgrpctest.Echo", { Nope = function() end }) end,
      "lgrpc.server:add: service lgrpctest.Echo has no method Nope")
    assert.has_error(function() srv:add("lgrpctest.Echo", { Unary = 1 }) end)
    assert.has_error(function() srv:use(42) end)
    assert.has_error(function() lgrpc.server{ }:add("x", {}) end)
    local port, err = srv:listen("256.0.0.1:1")
    assert.is_nil(port)
    assert.is_string(err)
    srv:shutdown(0)
  end)
end)

-- net_loop_spec.lua — lgrpc.core.net's loop driver on real sockets (127.0.0.1, [::1], unix),
-- timers, and a real grpcio peer both ways (spec/support/net_grpc_peer.py, raw bytes).
local net = require("lgrpc.core").net

local top = os.getenv("LGRPC_TOP") or "."
local PEER = top .. "/spec/support/net_grpc_peer.py"

local function tmpname(tag)
  local n = os.tmpname()
  os.remove(n)
  return n .. "-" .. tag
end

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- python3 never runs under the sanitizers
local function spawn(args, log)
  os.execute("env -u LD_PRELOAD /usr/bin/python3 " .. args .. " >" .. log .. " 2>&1 &")
end

-- polls until done() is true or ms pass; every event goes to handle(ev)
local function run(loop, handle, done, ms)
  local t0 = loop:now()
  while not done() do
    if loop:now() - t0 > ms then return false end
    for _, ev in ipairs(loop:poll(50)) do handle(ev) end
  end
  return true
end

local function parse_report(text)
  local r = {}
  for k, v in text:gmatch("([^\t\n]+)\t([^\n]*)\n") do r[k] = v end
  return r
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- The tiny echo service, written against the binding (what the call layer will do for real).
local function echo_service()
  local calls = {}
  local svc = { calls = calls, accepted = 0 }
  function svc.handle(ev)
    local st = ev.stream
    if ev.type == "accept" then svc.accepted = svc.accepted + 1
    elseif ev.type == "request" then
      local call = { path = ev.path, md = ev.metadata, msgs = {} }
      calls[st] = call
      if ev.path == "/lgrpc.test.Echo/Fail" then
        assert(st:send_status(9, "nope: 100% \226\156\147\nsecond line"))
      elseif ev.path == "/lgrpc.test.Echo/Bidi" then
        assert(st:send_headers({ ["x-initial"] = "i" }))
      elseif ev.path ~= "/lgrpc.test.Echo/Unary" and ev.path ~= "/lgrpc.test.Echo/Slow" then
        assert(st:send_status(12, "unknown method " .. ev.path))
      end
    elseif ev.type == "message" and calls[st] then
      local call = calls[st]
      if call.path == "/lgrpc.test.Echo/Bidi" then assert(st:send_message(ev.data:upper()))
      else call.msgs[#call.msgs + 1] = ev.data end
    elseif ev.type == "half_close" and calls[st] then
      local call = calls[st]
      if call.path == "/lgrpc.test.Echo/Unary" then
        assert(st:send_headers({ ["x-initial"] = "i" }))
        assert(st:send_message(call.msgs[1]:reverse()))
        local trailing = {}
        for k, v in pairs(call.md) do
          if k:match("^x%-") then trailing["x-echo-" .. k] = v end
        end
        assert(st:send_status(0, "", trailing))
      elseif call.path == "/lgrpc.test.Echo/Bidi" then
        assert(st:send_status(0))
      end
    elseif ev.type == "deadline" then
      svc.deadlines = (svc.deadlines or 0) + 1
      assert(st:send_status(4, "deadline exceeded"))
    end
  end
  return svc
end

-- one unary call through our own client; returns the client's events for that stream
local function call_unary(loop, svc, sess, payload, md)
  local st = assert(sess:request { path = "/lgrpc.test.Echo/Unary", metadata = md })
  assert(st:send_message(payload))
  assert(st:close_send())
  local got, status = {}, nil
  assert.is_true(run(loop, function(ev)
    if ev.stream == st then
      got[#got + 1] = ev
      if ev.type == "status" then status = ev end
    else svc.handle(ev) end
  end, function() return status ~= nil end, 5000))
  return got, status
end

describe("net loop", function()
  local baseline
  before_each(function()
    if jit then jit.flush() end
    collectgarbage(); collectgarbage()
    baseline = net.counters()
  end)

  for _, backend in ipairs { "epoll", "poll" } do
    for _, where in ipairs { "127.0.0.1:0", "[::1]:0", "unix" } do
      it("serves a unary call over " .. where .. " (" .. backend .. ")", function()
        -- in a function of its own, so no stack slot keeps a session alive for the GC check
        (function()
          local loop = net.loop { backend = backend }
          assert.equal(backend, loop:backend())
          local addr = where
          if where == "unix" then addr = "unix:" .. tmpname("sock") end
          local l = assert(loop:listen(addr))
          local target
          if where == "unix" then
            target = addr
            assert.equal(addr, l:address())
          else
            assert.is_true(l:port() > 0)
            target = (where:match("^%[") and "[::1]:" or "127.0.0.1:") .. l:port()
          end
          local svc = echo_service()
          local sess = assert(loop:connect(target))
          local got, status = call_unary(loop, svc, sess, "\0abc\255", { ["x-k"] = "v", ["x-b-bin"] = "\1\0" })
          assert.equal(0, status.code)
          local msg
          for _, e in ipairs(got) do if e.type == "message" then msg = e.data end end
          assert.equal("\255cba\0", msg)
          assert.same({ "v" }, status.metadata["x-echo-x-k"])
          assert.same({ "\1\0" }, status.metadata["x-echo-x-b-bin"])
          assert.equal(1, svc.accepted)
          -- a second call on the same connection
          got, status = call_unary(loop, svc, sess, string.rep("z", 300000))
          assert.equal(0, status.code)
          sess:close()
          local closed = 0
          run(loop, function(ev) if ev.type == "closed" then closed = closed + 1 end end,
              function() return closed == 2 end, 3000)
          assert.equal(2, closed)
          l:close()
          loop:close()
          if where == "unix" then assert.is_nil(io.open(addr:sub(6))) end
        end)()
        -- LuaJIT traces keep the closures they specialised on (and so their upvalues) alive
        if jit then jit.flush() end
        collectgarbage(); collectgarbage()
        assert.same(baseline, net.counters())
      end)
    end
  end

  it("reuses a stale unix socket path but not a live one", function()
    local path = tmpname("stale")
    os.execute("env -u LD_PRELOAD /usr/bin/python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('"
               .. path .. "')\"")
    local function is_socket()
      local r = os.execute("test -S " .. path)
      return r == true or r == 0
    end
    assert.is_true(is_socket(), "python left a socket file")
    local loop = net.loop()
    local l = assert(loop:listen("unix:" .. path))
    local ok, err = loop:listen("unix:" .. path)
    assert.is_nil(ok)
    assert.matches("^EADDRINUSE", err)
    l:close()
    assert.is_false(is_socket())
    loop:close()
  end)

  it("does not spin when out of file descriptors, and accepts again after", function()
    local interp = jit and "luajit" or "lua5.4"
    for _, backend in ipairs { "epoll", "poll" } do
      local p = assert(io.popen("ulimit -n 32; " .. interp .. " " .. top
                                .. "/spec/support/net_emfile.lua x " .. backend .. " 2>&1"))
      local out = p:read("*a")
      p:close()
      local cpu, after = out:match("cpu=([%d.]+) accepted_after=(%d+)")
      assert(cpu, out)
      assert.is_true(tonumber(cpu) < 0.1, backend .. ": spun for " .. cpu .. " s of CPU")
      assert.is_true(tonumber(after) > 0, backend .. ": accepted nothing once descriptors were free")
    end
  end)

  it("connects to localhost whichever family answers", function()
    local loop = net.loop()
    local l = assert(loop:listen("127.0.0.1:0"))
    local sess = assert(loop:connect("localhost:" .. l:port()))
    local svc = echo_service()
    local _, status = call_unary(loop, svc, sess, "hi")
    assert.equal(0, status.code)
    -- a loop session's bytes and events belong to the loop
    local ok, err = sess:events()
    assert.is_nil(ok); assert.matches("loop", err)
    ok, err = sess:recv("x")
    assert.is_nil(ok); assert.matches("loop", err)
    ok, err = sess:send_pending()
    assert.is_nil(ok); assert.matches("loop", err)
    loop:close()
  end)

  it("reports a refused connection clearly", function()
    local loop = net.loop()
    -- a port nobody listens on: bind one, note it, close it
    local l = assert(loop:listen("127.0.0.1:0"))
    local port = l:port()
    l:close()
    local sess = assert(loop:connect("127.0.0.1:" .. port))
    local st = assert(sess:request { path = "/a.B/C" })
    local closed, status
    run(loop, function(ev)
      if ev.type == "closed" then closed = ev end
      if ev.type == "status" then status = ev end
    end, function() return closed ~= nil end, 3000)
    assert.equal(sess, closed.session)
    assert.equal("ECONNREFUSED: connection refused (127.0.0.1:" .. port .. ")", closed.error)
    assert.equal(14, status.code)
    assert.matches("ECONNREFUSED", status.message)
    local ok, err = loop:connect("no-such-host.invalid:80")
    assert.is_nil(ok)
    assert.matches("^EAI", err)
    ok, err = loop:listen("127.0.0.1")
    assert.is_nil(ok)
    assert.matches("^EINVAL: bad address", err)
    local l1 = assert(loop:listen("127.0.0.1:0"))
    ok, err = loop:listen("127.0.0.1:" .. l1:port())
    assert.is_nil(ok)
    assert.matches("^EADDRINUSE", err)
    loop:close()
  end)

  it("gives up a connect that hangs after connect_timeout", function()
    local loop = net.loop()
    local portfile, log = tmpname("hole"), tmpname("log")
    spawn(top .. "/spec/support/net_blackhole.py " .. portfile, log)
    assert(run(loop, function() end, function() return readfile(portfile) ~= nil end, 20000),
           "blackhole did not start: " .. tostring(readfile(log)))
    local port, pid = readfile(portfile):match("(%d+) (%d+)")
    os.remove(portfile); os.remove(log)
    local t0 = loop:now()
    local sess = assert(loop:connect("127.0.0.1:" .. port, { connect_timeout = 200 }))
    local closed
    run(loop, function(ev) if ev.type == "closed" then closed = ev end end,
        function() return closed ~= nil end, 5000)
    os.execute("kill " .. pid .. " 2>/dev/null")
    assert.is_table(closed)
    assert.equal(sess, closed.session)
    assert.equal("ETIMEDOUT: connection timed out (127.0.0.1:" .. port .. ")", closed.error)
    assert.is_true(loop:now() - t0 >= 190)
    assert.is_true(loop:now() - t0 < 3000)
    loop:close()
  end)

  it("fires timers, cancels them, and wakes up", function()
    local loop = net.loop()
    local t0 = loop:now()
    local t1 = loop:timer(60)
    local t2 = loop:timer(20)
    local t3 = loop:timer(40)
    t3:cancel()
    assert.is_false(t3:armed())
    local fired = {}
    run(loop, function(ev) if ev.type == "timer" then fired[#fired + 1] = ev.timer end end,
        function() return #fired == 2 end, 2000)
    assert.equal(t2, fired[1])
    assert.equal(t1, fired[2])
    assert.is_true(loop:now() - t0 >= 60)
    -- a poll with nothing to wait for returns at its timeout
    local t = loop:now()
    assert.same({}, loop:poll(30))
    assert.is_true(loop:now() - t >= 29)
    -- wakeup makes a long poll return at once
    loop:wakeup()
    t = loop:now()
    loop:poll(5000)
    assert.is_true(loop:now() - t < 1000)
    loop:close()
  end)

  it("ends open calls UNAVAILABLE when the peer drops the connection", function()
    local loop = net.loop()
    local l = assert(loop:listen("127.0.0.1:0"))
    local sess = assert(loop:connect("127.0.0.1:" .. l:port()))
    local st = assert(sess:request { path = "/lgrpc.test.Echo/Slow" })
    local server_sess, status
    run(loop, function(ev)
      if ev.type == "accept" then server_sess = ev.session end
      if ev.type == "status" then status = ev end
    end, function() return server_sess ~= nil end, 3000)
    -- the server goes away without a word
    server_sess:close(true)
    server_sess = nil
    collectgarbage()
    assert.is_true(run(loop, function(ev) if ev.type == "status" then status = ev end end,
                       function() return status ~= nil end, 3000))
    assert.equal(14, status.code)
    loop:close()
  end)

  it("keeps going when a peer resets the socket under a stream of writes (no SIGPIPE)", function()
    local loop = net.loop()
    local l = assert(loop:listen("127.0.0.1:0"))
    local sess = assert(loop:connect("127.0.0.1:" .. l:port(), { stream_window = 65535 }))
    local st = assert(sess:request { path = "/lgrpc.test.Echo/Flood" })
    local server_stream, server_closed, cancel, got = nil, nil, nil, 0
    local chunk = string.rep("f", 60000)
    assert(run(loop, function(ev)
      if ev.type == "request" then
        server_stream = ev.stream
        for _ = 1, 40 do assert(server_stream:send_message(chunk)) end
      elseif ev.type == "message" and ev.stream == st then got = got + 1
      end
    end, function() return got >= 1 end, 5000))
    -- the client vanishes with bytes unread: the kernel answers the next writes with RST
    sess:abort("gone")
    local client_closed
    assert(run(loop, function(ev)
      if ev.type == "closed" and ev.session == sess then client_closed = ev end
      if ev.type == "closed" and ev.session ~= sess then server_closed = ev end
      if ev.type == "cancel" then cancel = ev end
      if ev.type == "drain" and ev.stream == server_stream then
        for _ = 1, 10 do server_stream:send_message(chunk) end
      end
    end, function() return server_closed ~= nil end, 5000))
    assert.equal("gone", client_closed.error)
    assert.matches("^E[A-Z]+: ", server_closed.error)
    assert.equal(14, cancel.status)
    loop:close()
  end)

  it("answers a plain HTTP/2 client with the wrong content-type with 415 (nghttp)", function()
    local loop = net.loop()
    local l = assert(loop:listen("127.0.0.1:0"))
    local out = tmpname("nghttp")
    os.execute("(env -u LD_PRELOAD timeout 10 nghttp -v -H 'content-type: text/plain' -d /dev/null "
      .. "http://127.0.0.1:" .. l:port() .. "/a.B/C >" .. out .. " 2>&1; echo done >" .. out .. ".done) &")
    local svc = echo_service()
    assert(run(loop, svc.handle, function() return readfile(out .. ".done") ~= nil end, 15000))
    local text = readfile(out)
    os.remove(out); os.remove(out .. ".done")
    assert.matches(":status: 415", text)
    assert.is_nil(next(svc.calls))
    loop:close()
  end)

  it("counts a request's grpc-timeout from its arrival, even after a long wait", function()
    local loop = net.loop()
    local l = assert(loop:listen("127.0.0.1:0"))
    local log = tmpname("slow")
    -- connects at once, sends its request 400 ms later: in the middle of one long poll
    spawn(top .. "/spec/support/net_slow_request.py " .. l:port() .. " 0.4 300m", log)
    local sess
    assert(run(loop, function(ev) if ev.type == "accept" then sess = ev.session end end,
               function() return sess ~= nil end, 10000))
    -- let the SETTINGS exchange finish, so that the next poll waits for the request alone
    local quiet = loop:now() + 150
    run(loop, function() end, function() return loop:now() >= quiet end, 1000)
    local req, arrived, fired
    for _, ev in ipairs(loop:poll(3000)) do
      if ev.type == "request" then req, arrived = ev, loop:now() end
    end
    assert(run(loop, function(ev)
      if ev.type == "request" then req, arrived = ev, loop:now() end
      if ev.type == "deadline" then
        fired = loop:now()
        assert(ev.stream:send_status(4, "deadline exceeded"))
      end
    end, function() return fired ~= nil end, 10000))
    os.remove(log)
    assert.equal(300, req.timeout)
    assert.is_true(req.deadline >= arrived - 50, "deadline counted from before the request came")
    assert.is_true(fired - arrived >= 250)
    loop:close()
  end)

  it("serves a real grpcio client: unary, bidi, errors, deadlines", function()
    local loop = net.loop()
    local l = assert(loop:listen("127.0.0.1:0"))
    local svc = echo_service()
    local out, log = tmpname("report"), tmpname("log")
    spawn(PEER .. " client 127.0.0.1:" .. l:port() .. " " .. out, log)
    local ok = run(loop, svc.handle, function() return readfile(out) ~= nil end, 30000)
    local text = readfile(out)
    assert(ok, "grpcio client did not finish: " .. tostring(readfile(log)))
    local r = parse_report(text)
    os.remove(out); os.remove(log)
    assert.equal("OK", r["unary.code"])
    assert.equal(hex("\255olleh\0"), r["unary.response"])
    assert.equal("x-initial", r["unary.initial.1.1"])
    local trailing = {}
    for i = 1, tonumber(r["unary.trailing.n"]) do
      trailing[r["unary.trailing." .. i .. ".1"]] = (trailing[r["unary.trailing." .. i .. ".1"]] or "")
        .. r["unary.trailing." .. i .. ".2"] .. ";"
    end
    assert.equal("v1;v2;", trailing["x-echo-x-key"])
    assert.equal("0001fe;", trailing["x-echo-x-blob-bin"])
    assert.equal("4", r["bidi.n"])
    assert.equal(hex("ONE"), r["bidi.1"])
    assert.equal("", r["bidi.2"])
    assert.equal("len:100000", r["bidi.3"])
    assert.equal(hex("FOUR"), r["bidi.4"])
    assert.equal("FAILED_PRECONDITION", r["fail.code"])
    assert.equal("nope: 100% \226\156\147\\nsecond line", r["fail.details"])
    assert.equal("DEADLINE_EXCEEDED", r["slow.code"])
    assert.equal("UNIMPLEMENTED", r["missing.code"])
    assert.matches("unknown method", r["missing.details"])
    loop:close()
  end)

  it("calls a real grpcio server: unary, bidi, errors, deadlines", function()
    local loop = net.loop()
    local portfile, log = tmpname("port"), tmpname("log")
    spawn(PEER .. " server " .. portfile, log)
    assert(run(loop, function() end, function() return readfile(portfile) ~= nil end, 30000),
           "grpcio server did not start: " .. tostring(readfile(log)))
    local port, pid = readfile(portfile):match("(%d+) (%d+)")
    os.remove(portfile)
    local ok, err = pcall(function()
      local sess = assert(loop:connect("127.0.0.1:" .. port))
      local function call(path, msgs, opts)
        opts = opts or {}
        local st = assert(sess:request { path = path, metadata = opts.metadata, timeout = opts.timeout })
        for _, m in ipairs(msgs) do assert(st:send_message(m)) end
        assert(st:close_send())
        local r = { msgs = {} }
        assert(run(loop, function(ev)
          if ev.stream ~= st then return end
          if ev.type == "headers" then r.headers = ev.metadata
          elseif ev.type == "message" then r.msgs[#r.msgs + 1] = ev.data
          elseif ev.type == "deadline" then r.deadline = true; st:reset()
          elseif ev.type == "status" then r.status = ev end
        end, function() return r.status ~= nil end, 10000))
        return r
      end
      local r = call("/lgrpc.test.Echo/Unary", { "\0hello\255" },
                     { metadata = { ["x-a"] = { "1", "2" }, ["x-z-bin"] = "\0\255" } })
      assert.equal(0, r.status.code)
      assert.same({ "\255olleh\0" }, r.msgs)
      assert.same({ "i" }, r.headers["x-initial"])
      assert.same({ "1", "2" }, r.status.metadata["x-echo-x-a"])
      assert.same({ "\0\255" }, r.status.metadata["x-echo-x-z-bin"])
      r = call("/lgrpc.test.Echo/Bidi", { "a", "bb", string.rep("c", 200000) })
      assert.equal(0, r.status.code)
      assert.same({ "A", "BB", string.rep("C", 200000) }, r.msgs)
      r = call("/lgrpc.test.Echo/Fail", { "" })
      assert.equal(9, r.status.code)
      assert.equal("nope: 100% \226\156\147\nsecond line", r.status.message)
      r = call("/lgrpc.test.Echo/Nope", { "" })
      assert.equal(12, r.status.code)
      local t0 = loop:now()
      r = call("/lgrpc.test.Echo/Slow", { "" }, { timeout = 200 })
      -- the server answers after 1 s; our deadline (200 ms) ends the call first
      assert.is_true(r.deadline or r.status.code == 4)
      assert.are_not.equal(0, r.status.code)
      assert.is_true(loop:now() - t0 < 5000)
      sess:close()
    end)
    os.execute("kill " .. pid .. " 2>/dev/null")
    loop:close()
    assert(ok, err)
  end)
end)

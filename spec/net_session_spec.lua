-- net_session_spec.lua — lgrpc.core.net sessions, sans-IO: a client and a server session
-- joined over Lua strings, and hand-built HTTP/2 peers (spec/support/net_h2raw.lua) for what
-- a well-behaved peer never sends.
local net = require("lgrpc.core").net
local pair = require("net_pair")
local raw = require("net_h2raw")

local baseline

local function counters_back()
  local c = pair.settle()
  assert.same(baseline, c)
end

-- a client session talking to a raw server: returns the client, the stream, and a function that
-- feeds raw server frames and returns the client's events
local function raw_server(req, client_opts)
  local c = net.session("client", client_opts)
  local st = assert(c:request(req or { path = "/pkg.S/M" }))
  local out = c:send_pending()
  local frames = raw.parse(out)
  local feed = function(bytes)
    assert(c:recv(bytes))
    return c:events()
  end
  assert(c:recv(raw.settings()))
  return c, st, feed, frames
end

-- a server session talking to a raw client
local function raw_client(server_opts)
  local s = net.session("server", server_opts)
  assert(s:recv(raw.PREFACE .. raw.settings()))
  local feed = function(bytes)
    assert(s:recv(bytes))
    return s:events()
  end
  return s, feed
end

local function frames_of(bytes, ftype)
  local t = {}
  for _, f in ipairs(raw.parse(bytes)) do if f.type == ftype then t[#t + 1] = f end end
  return t
end

describe("net session", function()
  before_each(function() baseline = pair.settle() end)

  describe("unary round trip", function()
    it("carries path, authority, timeout, user-agent, metadata and messages both ways", function()
      local p = pair.new({ authority = "svc.example:443", user_agent = "myapp/2" })
      local st = assert(p.client:request {
        path = "/pkg.Echo/Say", timeout = 1500,
        metadata = { ["x-one"] = "1", ["x-many"] = { "a", "b", "c" }, ["blob-bin"] = { "\0\1\2\255", "" } },
      })
      assert.is_true((st:send_message("ping")))
      assert.is_true(st:close_send())
      local _, se = p.run()
      assert.same({ "request", "message", "half_close" }, pair.types(se))
      local req = se[1]
      assert.equal("/pkg.Echo/Say", req.path)
      assert.equal("svc.example:443", req.authority)
      assert.equal("application/grpc", req.content_type)
      assert.equal(1500, req.timeout)
      assert.matches("^myapp/2 grpc%-lua%-lgrpc/", req.user_agent)
      assert.same({ "1" }, req.metadata["x-one"])
      assert.same({ "a", "b", "c" }, req.metadata["x-many"])
      assert.same({ "\0\1\2\255", "" }, req.metadata["blob-bin"])
      -- reserved headers never show up as metadata
      for k in pairs(req.metadata) do
        assert.is_nil(k:match("^:"))
        assert.is_nil(k:match("^grpc%-"))
        assert.is_true(k ~= "content-type" and k ~= "te" and k ~= "user-agent")
      end
      assert.equal("ping", se[2].data)
      assert.is_false(se[2].compressed)
      assert.equal(req.stream, se[2].stream)

      local sst = req.stream
      assert.is_true(sst:send_headers({ ["x-hdr"] = "h" }))
      assert.is_true((sst:send_message("pong")))
      assert.is_true(sst:send_status(0, "", { ["x-trailer"] = { "t1", "t2" }, ["tb-bin"] = "\255" }))
      local ce = p.run()
      assert.same({ "headers", "message", "status" }, pair.types(ce))
      assert.same({ "h" }, ce[1].metadata["x-hdr"])
      assert.equal("pong", ce[2].data)
      assert.equal(st, ce[2].stream)
      assert.equal(0, ce[3].code)
      assert.is_false(ce[3].trailers_only)
      assert.same({ "t1", "t2" }, ce[3].metadata["x-trailer"])
      assert.same({ "\255" }, ce[3].metadata["tb-bin"])
      assert.equal(200, ce[3].http_status)
      st, sst, req, se, ce, p = nil
      counters_back()
    end)

    it("sends a trailers-only response when the status comes first", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      st:close_send()
      local _, se = p.run()
      assert(se[1].stream:send_status(5, "no such thing", { ["why-bin"] = "\1\2" }))
      local ce = p.run()
      assert.same({ "status" }, pair.types(ce))
      assert.equal(5, ce[1].code)
      assert.equal("no such thing", ce[1].message)
      assert.is_true(ce[1].trailers_only)
      assert.same({ "\1\2" }, ce[1].metadata["why-bin"])
    end)

    it("percent-encodes grpc-message and carries status details", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      st:close_send()
      local _, se = p.run()
      local msg = "100% broken\n\t\226\156\147 caf\195\169 %41"
      assert(se[1].stream:send_status(13, msg, nil, "\8\13\18\3abc"))
      local ce = p.run()
      assert.equal(13, ce[1].code)
      assert.equal(msg, ce[1].message)
      assert.equal("\8\13\18\3abc", ce[1].details)
    end)

    it("puts a percent-encoded grpc-message on the wire and decodes a peer's", function()
      local s, feed = raw_client()
      feed(raw.headers(1, raw.grpc_request_headers(), true))
      local ev = s:events()
      local _ = ev
      local c, st, cfeed = raw_server()
      local ce = cfeed(raw.headers(1, raw.grpc_response_headers {
        { "grpc-status", "3" }, { "grpc-message", "bad %E2%9C%93 100%25 %zz%" } }, true))
      assert.equal(3, ce[1].code)
      assert.equal("bad \226\156\147 100% %zz%", ce[1].message)
    end)
  end)

  describe("coalescing (the server's request events)", function()
    local function request(p, path, msgs, half, opts)
      local st = assert(p.client:request(opts or { path = path }))
      for _, m in ipairs(msgs) do assert.is_true((st:send_message(m[1], m[2]))) end
      if half then assert.is_true(st:close_send()) end
      return st
    end

    it("folds each request's first message and half-close into it, across interleaved streams", function()
      local p = pair.new({}, {})
      p.server:coalesce(true)
      -- three calls submitted before any byte moves: the client sends every HEADERS first
      request(p, "/pkg.S/A", { { "a1" } }, true)
      request(p, "/pkg.S/B", { { "b1" }, { "b2" } }, true)
      request(p, "/pkg.S/C", { { "c1" } }, false)
      local _, se = p.run()
      local by = {}
      for _, e in ipairs(se) do
        local id = e.stream:id()
        by[id] = by[id] or {}
        local t = by[id]
        t[#t + 1] = e.type .. (e.data and ":" .. e.data or "") .. (e.half_close and "+half" or "")
      end
      assert.same({ "request:a1+half" }, by[1])
      assert.same({ "request:b1", "message:b2", "half_close" }, by[3])
      assert.same({ "request:c1" }, by[5])
      for _, e in ipairs(se) do
        if e.type == "request" then assert.is_nil(e.metadata) end  -- none was sent
      end
    end)

    it("folds a whole response (headers, one message, status) into the status on a client", function()
      local p = pair.new({}, {})
      p.client:coalesce(true)
      local a = request(p, "/pkg.S/A", { { "a" } }, true)
      local b = request(p, "/pkg.S/B", { { "b" } }, true)
      local _, se = p.run()
      local srv = {}
      for _, e in ipairs(se) do if e.type == "request" then srv[e.path] = e.stream end end
      -- A: one message and the status; B: two messages (not folded), with trailer metadata
      assert(srv["/pkg.S/A"]:send_message("ra"))
      assert(srv["/pkg.S/A"]:send_status(0, ""))
      assert(srv["/pkg.S/B"]:send_headers({ ["x-h"] = "1" }))
      assert(srv["/pkg.S/B"]:send_message("rb1"))
      assert(srv["/pkg.S/B"]:send_message("rb2"))
      assert(srv["/pkg.S/B"]:send_status(5, "gone", { ["x-t"] = "2" }))
      local ce = p.run()
      local by = {}
      for _, e in ipairs(ce) do
        local k = e.stream == a and "a" or e.stream == b and "b"
        by[k] = by[k] or {}
        by[k][#by[k] + 1] = e
      end
      assert.are.equal(1, #by.a)
      assert.are.equal("status", by.a[1].type)
      assert.is_true(by.a[1].headers)
      assert.are.equal("ra", by.a[1].data)
      assert.are.equal(0, by.a[1].code)
      assert.is_nil(by.a[1].metadata)           -- no trailer metadata: no table
      assert.is_nil(by.a[1].headers_metadata)
      assert.same({ "headers", "message", "message", "status" }, pair.types(by.b))
      assert.same({ "1" }, by.b[1].metadata["x-h"])
      assert.same({ "2" }, by.b[4].metadata["x-t"])
      assert.are.equal(5, by.b[4].code)
    end)

    it("keeps metadata, and leaves compressed messages and other sessions' events alone", function()
      local p = pair.new({}, {})
      p.server:coalesce(true)
      request(p, nil, { { "\1\2", true } }, true,
        { path = "/pkg.S/Z", encoding = "gzip", metadata = { ["x-k"] = "v" } })
      local _, se = p.run()
      assert.same({ "request", "message", "half_close" }, pair.types(se))
      assert.same({ "v" }, se[1].metadata["x-k"])
      assert.is_true(se[2].compressed)
      local q = pair.new({}, {})          -- coalescing is off by default
      request(q, "/pkg.S/A", { { "a1" } }, true)
      local _, qe = q.run()
      assert.same({ "request", "message", "half_close" }, pair.types(qe))
      assert.is_table(qe[1].metadata)
    end)
  end)

  describe("metadata rules", function()
    it("refuses reserved and malformed keys and non-ASCII values", function()
      local c = net.session("client")
      local ok, err = c:request { path = "/a.B/C", metadata = { ["grpc-status"] = "0" } }
      assert.is_nil(ok); assert.matches("reserved", err)
      ok, err = c:request { path = "/a.B/C", metadata = { ["content-type"] = "x" } }
      assert.is_nil(ok); assert.matches("reserved", err)
      ok, err = c:request { path = "/a.B/C", metadata = { ["Upper"] = "x" } }
      assert.is_nil(ok); assert.matches("invalid metadata key", err)
      ok, err = c:request { path = "/a.B/C", metadata = { ["x-v"] = "caf\195\169" } }
      assert.is_nil(ok); assert.matches("printable ASCII", err)
      ok, err = c:request { path = "no-slash" }
      assert.is_nil(ok); assert.matches("invalid method path", err)
      assert.has_error(function() c:request { path = "/a.B/C", metadata = { ["x"] = 5 } } end)
      assert.has_error(function() c:request { path = 5 } end)
      assert.equal(0, c:stats().streams)
    end)

    it("splits comma-joined -bin values and decodes padded and unpadded base64", function()
      local c, st, feed = raw_server()
      local ce = feed(raw.headers(1, raw.grpc_response_headers {
        { "multi-bin", "AAE=,/w, YWJj" }, { "plain", "a,b" }, { "plain", "c" } }, false))
      assert.equal("headers", ce[1].type)
      assert.same({ "\0\1", "\255", "abc" }, ce[1].metadata["multi-bin"])
      assert.same({ "a,b", "c" }, ce[1].metadata["plain"])
    end)
  end)

  describe("message framing", function()
    it("reassembles messages split at every byte boundary", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      local msgs = { "", "x", string.rep("abc", 50), "\0\1\2\3\4\5" }
      for _, m in ipairs(msgs) do assert(st:send_message(m)) end
      st:close_send()
      local wire = p.client:send_pending()
      for cut = 1, #wire - 1 do
        local s = net.session("server")
        assert(s:recv(wire:sub(1, cut)))
        assert(s:recv(wire:sub(cut + 1)))
        local got = {}
        for _, e in ipairs(s:events()) do if e.type == "message" then got[#got + 1] = e.data end end
        assert.same(msgs, got)
      end
      -- and one byte at a time
      local s = net.session("server")
      for i = 1, #wire do assert(s:recv(wire:sub(i, i))) end
      local got = {}
      for _, e in ipairs(s:events()) do if e.type == "message" then got[#got + 1] = e.data end end
      assert.same(msgs, got)
    end)

    it("reassembles a message split across DATA frames of any size", function()
      local s, feed = raw_client()
      feed(raw.headers(1, raw.grpc_request_headers(), false))
      local m = raw.message(string.rep("q", 1000))
      local evs = {}
      for i = 1, #m, 7 do
        for _, e in ipairs(feed(raw.data(1, m:sub(i, i + 6), i + 7 > #m))) do evs[#evs + 1] = e end
      end
      assert.same({ "message", "half_close" }, pair.types(evs))
      assert.equal(string.rep("q", 1000), evs[1].data)
    end)
  end)

  describe("status rules", function()
    it("answers a wrong content-type with HTTP 415 without bothering Lua", function()
      local s, feed = raw_client()
      local evs = feed(raw.headers(1, {
        { ":method", "POST" }, { ":scheme", "http" }, { ":path", "/a.B/C" }, { ":authority", "x" },
        { "content-type", "text/plain" } }, true))
      assert.same({}, evs)
      local out = s:send_pending()
      local hs = frames_of(out, raw.TYPE.HEADERS)
      -- the client had half-closed already: no RST_STREAM after the answer
      assert.same({}, frames_of(out, raw.TYPE.RST_STREAM))
      assert.equal(1, #hs)
      assert.equal(1, hs[1].stream)
      assert.equal(raw.END_STREAM, hs[1].flags % 2)
      assert.truthy(hs[1].payload:find("\003415", 1, true), "HTTP status 415 on the wire")
    end)

    it("maps non-200 HTTP statuses on the client", function()
      local cases = { [400] = 13, [401] = 16, [403] = 7, [404] = 12, [429] = 14, [502] = 14,
                      [503] = 14, [504] = 14, [500] = 2, [418] = 2 }
      for http, code in pairs(cases) do
        local c, st, feed = raw_server()
        local ce = feed(raw.headers(1, { { ":status", tostring(http) }, { "content-type", "text/html" } }, false))
        assert.equal("status", ce[1].type)
        assert.equal(code, ce[1].code, "HTTP " .. http)
        assert.equal(http, ce[1].http_status)
        assert.matches(tostring(http), ce[1].message)
        -- the client resets the stream
        local rs = frames_of(c:send_pending(), raw.TYPE.RST_STREAM)
        assert.equal(1, #rs)
      end
    end)

    it("maps RST_STREAM codes on the client", function()
      local cases = { [0] = 13, [1] = 13, [2] = 13, [3] = 13, [4] = 13, [6] = 13, [7] = 14, [8] = 1,
                      [9] = 13, [10] = 13, [11] = 8, [12] = 7 }
      for h2code, code in pairs(cases) do
        local c, st, feed = raw_server()
        local ce = feed(raw.headers(1, raw.grpc_response_headers(), false) .. raw.rst(1, h2code))
        local status = pair.find(ce, "status")
        assert.equal(code, status.code, "RST_STREAM " .. h2code)
        assert.equal(h2code, status.reset)
        assert.equal(h2code == 7, status.refused)
        local ok, err = st:send_message("late")
        assert.is_nil(ok)
        assert.is_string(err)
      end
    end)

    it("reports a response without trailers or without grpc-status", function()
      local c, st, feed = raw_server()
      local ce = feed(raw.headers(1, raw.grpc_response_headers(), false) .. raw.data(1, raw.message("x"), true))
      assert.same({ "headers", "message", "status" }, pair.types(ce))
      assert.equal(13, ce[3].code)
      c, st, feed = raw_server()
      ce = feed(raw.headers(1, raw.grpc_response_headers(), true))
      assert.equal(2, ce[1].code)
      assert.is_true(ce[1].trailers_only)
    end)

    it("rejects a compressed flag without grpc-encoding with INTERNAL, both sides", function()
      local c, st, feed = raw_server()
      local ce = feed(raw.headers(1, raw.grpc_response_headers(), false) .. raw.data(1, raw.message("zz", true)))
      assert.same({ "headers", "status" }, pair.types(ce))
      assert.equal(13, ce[2].code)

      local s, sfeed = raw_client()
      local se = sfeed(raw.headers(1, raw.grpc_request_headers(), false) .. raw.data(1, raw.message("zz", true)))
      assert.same({ "request", "cancel" }, pair.types(se))
      assert.equal(13, se[2].status)
      assert.equal(1, #frames_of(s:send_pending(), raw.TYPE.HEADERS))

      -- grpc-encoding: identity is no encoding either
      s, sfeed = raw_client()
      se = sfeed(raw.headers(1, raw.grpc_request_headers(nil, { { "grpc-encoding", "identity" } }), false)
                 .. raw.data(1, raw.message("zz", true)))
      assert.same({ "request", "cancel" }, pair.types(se))
      assert.equal(13, se[2].status)

      -- with an encoding the flag is fine and reported
      s, sfeed = raw_client()
      se = sfeed(raw.headers(1, raw.grpc_request_headers(nil, { { "grpc-encoding", "gzip" } }), false)
                 .. raw.data(1, raw.message("zz", true)))
      assert.same({ "request", "message" }, pair.types(se))
      assert.equal("gzip", se[1].encoding)
      assert.is_true(se[2].compressed)
    end)

    it("answers an unknown grpc-encoding with UNIMPLEMENTED and grpc-accept-encoding", function()
      local p = pair.new(nil, { encodings = "identity,gzip" })
      local st = assert(p.client:request { path = "/a.B/C", encoding = "snappy" })
      assert(st:send_message("x", true))
      st:close_send()
      local ce, se = p.run()
      assert.same({}, se)
      assert.equal("status", ce[1].type)
      assert.equal(12, ce[1].code)
      assert.matches("snappy", ce[1].message)
      assert.equal("identity,gzip", ce[1].accept_encoding)
    end)

    it("parses grpc-timeout in every unit and refuses a malformed one", function()
      local cases = { ["2H"] = 7200000, ["3M"] = 180000, ["5S"] = 5000, ["250m"] = 250,
                      ["1500u"] = 2, ["1u"] = 1, ["5000000n"] = 5, ["99999999m"] = 99999999 }
      for v, ms in pairs(cases) do
        local s, feed = raw_client()
        local se = feed(raw.headers(1, raw.grpc_request_headers(nil, { { "grpc-timeout", v } }), true))
        assert.equal(ms, se[1].timeout, v)
      end
      for _, v in ipairs { "5", "S", "123456789S", "1x", "-1S" } do
        local s, feed = raw_client()
        local se = feed(raw.headers(1, raw.grpc_request_headers(nil, { { "grpc-timeout", v } }), true))
        assert.same({}, se, v)
        assert.equal(1, #frames_of(s:send_pending(), raw.TYPE.HEADERS))
      end
    end)
  end)

  describe("limits", function()
    it("refuses over-limit received messages with RESOURCE_EXHAUSTED on both sides", function()
      local p = pair.new(nil, { max_recv_message = 100 })
      local st = assert(p.client:request { path = "/a.B/C" })
      assert(st:send_message(string.rep("a", 100)))
      assert(st:send_message(string.rep("b", 101)))
      st:close_send()
      local ce, se = p.run()
      assert.same({ "request", "message", "cancel" }, pair.types(se))
      assert.equal(8, se[3].status)
      assert.matches("101 bytes", se[3].message)
      assert.equal("status", ce[#ce].type)
      assert.equal(8, ce[#ce].code)
      se, ce = nil
      local s = p.server:stats()
      assert.equal(0, s.buffered_in)

      -- client side limit
      p = pair.new({ max_recv_message = 10 })
      st = assert(p.client:request { path = "/a.B/C" })
      st:close_send()
      ce, se = p.run()
      assert(se[1].stream:send_message(string.rep("z", 11)))
      ce, se = p.run()
      local status = pair.find(ce, "status")
      assert.equal(8, status.code)
      p.run()
      local cancel = pair.find(p.sev, "cancel")
      assert.equal(1, cancel.status)
    end)

    it("refuses over-limit sends with nil, err", function()
      local c = net.session("client", { max_send_message = 8 })
      local st = assert(c:request { path = "/a.B/C" })
      local ok, err = st:send_message("123456789")
      assert.is_nil(ok)
      assert.matches("^RESOURCE_EXHAUSTED: message of 9 bytes exceeds the send limit 8", err)
      assert.is_true((st:send_message("12345678")))
    end)

    it("resets a stream whose header list is over the limit", function()
      local p = pair.new(nil, { max_header_list = 1024 })
      local st = assert(p.client:request { path = "/a.B/C", metadata = { ["x-big"] = string.rep("v", 1200) } })
      st:close_send()
      local ce, se = p.run()
      assert.same({}, se)
      assert.equal(8, ce[1].code)
      assert.equal(11, ce[1].reset)
      -- just under the limit passes
      p = pair.new(nil, { max_header_list = 1024 })
      st = assert(p.client:request { path = "/a.B/C", metadata = { ["x-big"] = string.rep("v", 600) } })
      ce, se = p.run()
      assert.equal("request", se[1].type)
    end)

    it("ends a call whose own header block is too large to send", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C", metadata = { ["x-huge"] = string.rep("a", 100000) } })
      st:close_send()
      local ce, se = p.run()
      assert.same({}, se)
      assert.equal(13, ce[1].code)
      assert.matches("cannot send request headers", ce[1].message)
      assert.is_false(ce[1].refused)
      -- a server whose trailers cannot go out resets the stream: the client does not hang
      st = assert(p.client:request { path = "/a.B/C" })
      st:close_send()
      ce, se = p.run()
      assert.is_true(se[1].stream:send_status(0, "", { ["x-huge"] = string.rep("b", 100000) }))
      ce = p.run()
      assert.equal("status", ce[1].type)
      assert.equal(13, ce[1].code)
      assert.equal(2, ce[1].reset)
      assert.is_true(p.client:alive())
    end)

    it("enforces max_concurrent_streams on the server", function()
      (function()
        local s, feed = raw_client({ max_concurrent_streams = 2 })
        s:send_pending()
        -- before our SETTINGS are acknowledged, nghttp2 refuses the extra stream (after, a
        -- peer that ignores the limit is a connection error)
        local se = feed(raw.headers(1, raw.grpc_request_headers(), false)
                        .. raw.headers(3, raw.grpc_request_headers(), false)
                        .. raw.headers(5, raw.grpc_request_headers(), false))
        assert.equal(2, #pair.all(se, "request"))
        local rst = frames_of(s:send_pending(), raw.TYPE.RST_STREAM)
        assert.equal(1, #rst)
        assert.equal(5, rst[1].stream)
        assert.equal(7, raw.be32(rst[1].payload, 1)) -- REFUSED_STREAM
      end)()
      counters_back()
    end)

    it("queues client streams beyond the server's limit until one finishes", function()
      local p = pair.new(nil, { max_concurrent_streams = 2 })
      p.run()
      local streams = {}
      for i = 1, 3 do
        streams[i] = assert(p.client:request { path = "/a.B/C" })
        streams[i]:close_send()
      end
      local _, se = p.run()
      assert.equal(2, #pair.all(se, "request"))
      assert(se[1].stream:send_status(0))
      _, se = p.run()
      assert.equal("request", se[1].type)
      assert.equal(5, se[1].stream:id())
    end)
  end)

  describe("flow control", function()
    it("delivers a message larger than both windows", function()
      local p = pair.new({ stream_window = 65535, conn_window = 65535 },
                         { stream_window = 16384, conn_window = 65535 })
      local st = assert(p.client:request { path = "/a.B/C" })
      local big = string.rep("0123456789abcdef", 20000) -- 320000 bytes
      assert(st:send_message(big))
      st:close_send()
      local _, se = p.run()
      assert.same({ "request", "message", "half_close" }, pair.types(se))
      assert.equal(big, se[2].data)
      assert(se[1].stream:send_message(big))
      assert(se[1].stream:send_status(0))
      local ce = p.run()
      assert.same({ "headers", "message", "status" }, pair.types(ce))
      assert.equal(#big, #ce[2].data)
    end)

    it("stops the sender while a complete message waits unread", function()
      local p = pair.new(nil, { stream_window = 16384, conn_window = 1048576 })
      local st = assert(p.client:request { path = "/a.B/C" })
      local m = string.rep("m", 100000)
      for _ = 1, 3 do assert(st:send_message(m)) end
      p.pump()
      -- the server has not taken any event: one message complete, the rest held back
      assert.is_true(st:buffered() > 150000)
      local got = 0
      for _ = 1, 10 do
        for _, e in ipairs(p.server:events()) do if e.type == "message" then got = got + 1 end end
        p.pump()
      end
      assert.equal(3, got)
      assert.equal(0, st:buffered())
    end)

    it("holds a paused stream's messages and window until resumed", function()
      local p = pair.new(nil, { stream_window = 16384 })
      local st = assert(p.client:request { path = "/a.B/C" })
      p.run()
      local sst = p.sev[1].stream
      sst:pause()
      for _ = 1, 3 do assert(st:send_message(string.rep("p", 30000))) end
      st:close_send()
      local _, se = p.run()
      assert.same({}, se)
      assert.is_true(st:buffered() > 30000)
      assert.is_true(p.server:stats().queued_events >= 1)
      sst:resume()
      local got = {}
      for _ = 1, 10 do
        local _, evs = p.run()
        for _, e in ipairs(evs) do got[#got + 1] = e.type end
      end
      assert.same({ "message", "message", "message", "half_close" }, got)
    end)

    it("sends drain when a large send buffer empties", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      local ok, buffered = st:send_message(string.rep("d", 200000))
      assert.is_true(ok)
      assert.equal(200005, buffered)
      local ce = p.run()
      assert.equal("drain", ce[1].type)
      assert.equal(st, ce[1].stream)
    end)
  end)

  describe("stream ends", function()
    it("server finishing first sends trailers then RST_STREAM(NO_ERROR); later sends fail", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      assert(st:send_message("one"))
      local _, se = p.run()
      local sst = se[1].stream
      assert(sst:send_status(0, "early"))
      local out = p.server:send_pending()
      local types = {}
      for _, f in ipairs(raw.parse(out)) do types[#types + 1] = f.type end
      assert.same({ raw.TYPE.HEADERS, raw.TYPE.RST_STREAM }, { types[#types - 1], types[#types] })
      local rst = frames_of(out, raw.TYPE.RST_STREAM)[1]
      assert.equal(0, raw.be32(rst.payload, 1))
      assert(p.client:recv(out))
      local ce = p.client:events()
      assert.equal("status", ce[#ce].type)
      assert.equal(0, ce[#ce].code)
      assert.equal("early", ce[#ce].message)
      local ok, err = st:send_message("two")
      assert.is_nil(ok); assert.is_string(err)
      ok, err = sst:send_message("after")
      assert.is_nil(ok); assert.matches("status already sent", err)
      ok, err = sst:send_status(0)
      assert.is_nil(ok)
    end)

    it("delivers the status of a server stream whose handle is collected before the trailers go out", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      assert(st:send_message("one"))
      assert(st:close_send())
      local _, se = p.run()
      local sst = pair.find(se, "request").stream
      assert(sst:send_message("reply"))
      assert(sst:send_status(0, "done"))
      sst, se, p.sev = nil, nil, {}
      pair.settle()          -- the handle is gone before nghttp2 has written the trailers
      local ce = p.run()
      local status = pair.find(ce, "status")
      assert.equal(0, status.code)
      assert.equal("done", status.message)
      assert.equal("reply", pair.find(ce, "message").data)
    end)

    it("refuses new streams once the client's stream ids run out", function()
      local p = pair.new({ first_stream_id = 2147483645 })
      local a = assert(p.client:request { path = "/a.B/C" })
      local b = assert(p.client:request { path = "/a.B/C" })
      assert.equal(2147483645, a:id())
      assert.equal(2147483647, b:id())
      local c, err = p.client:request { path = "/a.B/C" }
      assert.is_nil(c)
      assert.matches("^UNAVAILABLE: ", err)
      assert.has_error(function() net.session("client", { first_stream_id = 4 }) end)
    end)

    it("tells the server when the client cancels", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      p.run()
      st:reset()
      local ce, se = p.run()
      assert.equal("cancel", se[1].type)
      assert.equal(1, se[1].status)
      assert.equal(8, se[1].code)
      assert.equal("status", ce[1].type)
      assert.equal(1, ce[1].code)
    end)

    it("resets an abandoned stream when its handle is collected", function()
      local p = pair.new()
      do
        local st = assert(p.client:request { path = "/a.B/C" })
        st:send_message("x")
      end
      p.run()
      assert.equal(1, p.server:stats().open_streams)
      collectgarbage(); collectgarbage()
      local _, se = p.run()
      assert.equal("cancel", se[#se].type)
      assert.equal(0, p.client:stats().streams)
    end)

    it("keeps a stream whose old handle is finalized after a new handle was made", function()
      -- regression: a collected handle's finalizer can run after the weak handle table already
      -- forgot it and events made a second handle for the same stream; it must not reset the
      -- stream (nor free it under the new handle)
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      assert(st:send_message("m1"))
      local got = {}
      local function body()
        local se = p.server:events()
        p.pump()
        se = p.server:events()
        assert.equal("request", se[1].type)
        assert(st:send_message("m2"))
        p.pump()
        -- made after the stream's first handle, so finalized before it
        local probe_mt = { __gc = function() got.events = p.server:events() end }
        if newproxy then
          local probe = newproxy(true)
          getmetatable(probe).__gc = probe_mt.__gc
          got.probe = probe
        else
          got.probe = setmetatable({}, probe_mt)
        end
      end
      body()
      got.probe = nil
      if jit then jit.flush() end
      collectgarbage(); collectgarbage()
      assert.is_table(got.events)
      local ev = got.events[1]
      assert.equal("message", ev.type)
      assert.equal("m2", ev.data)
      collectgarbage(); collectgarbage()
      assert.is_true(ev.stream:send_status(0, "fine"))
      local ce = p.run()
      local status = pair.find(ce, "status")
      assert.equal(0, status.code)
      assert.equal("fine", status.message)
    end)

    it("fires deadline timers from grpc-timeout on both sides", function()
      local p = pair.new()
      p.client:tick(1000)
      p.server:tick(5000)
      local st = assert(p.client:request { path = "/a.B/C", timeout = 250 })
      local _, se = p.run()
      assert.equal(250, se[1].timeout)
      assert.equal(5250, se[1].deadline)
      assert.equal(5250, p.server:next_deadline())
      assert.equal(1250, p.client:next_deadline())
      p.server:tick(5249)
      assert.same({}, p.server:events())
      p.server:tick(5250)
      local d = p.server:events()
      assert.equal("deadline", d[1].type)
      assert.equal(se[1].stream, d[1].stream)
      assert(d[1].stream:send_status(4, "deadline exceeded"))
      p.client:tick(1300)
      local ce = p.run()
      assert.same({ "deadline", "status" }, pair.types(ce))
      assert.equal(4, ce[2].code)
      assert.is_nil(p.server:next_deadline())
    end)
  end)

  describe("connection", function()
    it("shuts down gracefully: notice, ping, final GOAWAY; open streams finish", function()
      local p = pair.new()
      local st = assert(p.client:request { path = "/a.B/C" })
      p.run()
      p.server:shutdown(5000)
      local ce = p.run()
      local gs = pair.all(ce, "goaway")
      assert.equal(2, #gs)
      assert.equal(2147483647, gs[1].last_stream_id)
      assert.equal(1, gs[2].last_stream_id)
      assert.equal(0, gs[2].error_code)
      local ok, err = p.client:request { path = "/a.B/C" }
      assert.is_nil(ok)
      assert.matches("^UNAVAILABLE", err)
      assert(p.sev[1].stream:send_status(0))
      st:close_send()
      ce = p.run()
      assert.equal(0, pair.find(ce, "status").code)
      local _, se = p.run()
      assert.is_false(p.server:alive())
      assert.is_false(p.client:alive())
    end)

    it("refuses streams above a GOAWAY's last stream id so they can be retried", function()
      local c = net.session("client")
      local s1 = assert(c:request { path = "/a.B/C" })
      local s2 = assert(c:request { path = "/a.B/C" })
      c:send_pending()
      assert(c:recv(raw.settings() .. raw.goaway(1, 0)))
      local ce = c:events()
      assert.equal("goaway", ce[1].type)
      assert.equal(1, ce[1].last_stream_id)
      local st = pair.find(ce, "status")
      assert.equal(s2, st.stream)
      assert.equal(14, st.code)
      assert.is_true(st.refused)
    end)

    it("reports a broken peer and ends every stream", function()
      local c = net.session("client")
      local st = assert(c:request { path = "/a.B/C" })
      c:send_pending()
      c:recv("this is not http/2 at all, not even close")
      local goaway = frames_of(c:send_pending(), raw.TYPE.GOAWAY)
      assert.equal(1, #goaway)
      local ce = c:events()
      local status = pair.find(ce, "status")
      assert.equal(14, status.code)
      assert.matches("HTTP/2 error", status.message)
      assert.equal("closed", ce[#ce].type)
      assert.matches("^UNAVAILABLE: HTTP/2 error", ce[#ce].error)
      assert.is_false(c:alive())
      local ok, err = c:request { path = "/a.B/C" }
      assert.is_nil(ok)
      assert.matches("^UNAVAILABLE", err)
      -- a server fed a bad preface fails at once
      local s = net.session("server")
      ok, err = s:recv("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.is_nil(ok)
      assert.matches("^UNAVAILABLE: HTTP/2 error", err)
      s:send_pending()
      assert.is_false(s:alive())
    end)

    it("closes an idle connection after idle_timeout", function()
      local p = pair.new(nil, { idle_timeout = 100 })
      assert.is_nil(p.server:next_deadline())
      p.server:tick(1000000)
      p.run()
      assert.equal(1000100, p.server:next_deadline())
      p.server:tick(1000099)
      assert.is_true(p.server:alive())
      p.server:tick(1000100)
      local ce = p.run()
      assert.equal("goaway", ce[1].type)
      assert.is_false(p.server:alive())
    end)

    it("frees everything at once with __close (Lua 5.4) and leaves stream handles harmless", function()
      if _VERSION ~= "Lua 5.4" then return end
      local keep = {}
      local chunk = assert(load([[
        local net, keep = ...
        local s <close> = net.session("client")
        keep.stream = assert(s:request { path = "/a.B/C" })
        keep.stream:send_message("x")
        keep.session = s
      ]]))
      chunk(net, keep)
      assert.is_false(keep.session:alive())
      local ok, err = keep.stream:send_message("y")
      assert.is_nil(ok); assert.matches("closed", err)
      assert.equal("", keep.session:send_pending())
      assert.same({}, keep.session:events())
      keep = nil
      counters_back()
    end)

    it("returns counters to baseline after many calls", function()
      do
        local p = pair.new()
        for i = 1, 50 do
          local st = assert(p.client:request { path = "/a.B/C" })
          st:send_message("m" .. i)
          st:close_send()
        end
        for _ = 1, 5 do
          local _, se = p.run()
          pair.echo(se)
        end
        assert.equal(50, #pair.all(p.cev, "status"))
        assert.equal(0, p.client:stats().open_streams)
        assert.equal(0, p.server:stats().buffered_in)
      end
      counters_back()
    end)
  end)
end)

-- lgrpc.interceptors: the built-in access log, recovery and auth interceptors through a real
-- server and channel on 127.0.0.1, for all four kinds of call. JWTs are the ones python3 signs
-- (spec/support/jwt_tokens.py): statuses are checked as the client receives them.
local lgrpc = require "lgrpc"
local kit = require "callkit"
local auth = require "lgrpc.auth"
local interceptors = require "lgrpc.interceptors"
local core = require "lgrpc.core"
local status = lgrpc.status

local NOW = 1700000000

local function plain(v)
  local mt = getmetatable(v)
  if mt ~= core.json.object and mt ~= core.json.array then return v end
  local t = {}
  for i = 1, #v do
    if mt == core.json.object then t[v[i]] = plain(v[v[i]]) else t[i] = plain(v[i]) end
  end
  return t
end

local F
local function fixtures()
  if not F then
    local p = assert(io.popen("env -u LD_PRELOAD /usr/bin/python3 " .. kit.top ..
      "/spec/support/jwt_tokens.py " .. NOW))
    local text = p:read("*a")
    p:close()
    F = plain(assert(core.json.decode(text)))
  end
  return F
end

local function jwt_verifier()
  local f = fixtures()
  return auth.jwt{ keys = f.jwks, issuer = f.issuer, audience = f.audience,
    clock = function() return NOW end }
end

local function bearer(token) return { metadata = { authorization = "Bearer " .. token } } end

local handlers = {
  Unary = function(req, ctx)
    return { n = req.n, text = ctx.auth and ctx.auth.sub or "anonymous" }
  end,
  ServerStream = function(req, stream)
    for i = 1, req.n do stream:send{ n = i } end
  end,
  ClientStream = function(stream)
    local sum = 0
    for m in stream:iter() do sum = sum + m.n end
    return { n = sum }
  end,
  Bidi = function(stream, ctx)
    for m in stream:iter() do stream:send{ n = m.n * 10, text = ctx.auth and ctx.auth.sub } end
  end,
}

-- runs one call of each kind; returns the final statuses by kind and what came back
local function call_all(stub, opts)
  local out = {}
  local resp, st = stub:Unary({ n = 1 }, opts)
  out.unary = { st = st, resp = resp }
  local call = stub:ServerStream({ n = 3 }, opts)
  local got = {}
  for m in call:iter() do got[#got + 1] = m.n end
  out.server_stream = { st = call:status(), got = got }
  call = stub:ClientStream(opts)
  for i = 1, 4 do call:send{ n = i } end
  local r, cst = call:close_and_recv()
  out.client_stream = { st = cst, resp = r }
  call = stub:Bidi(opts)
  call:send{ n = 1 }
  call:send{ n = 2 }
  call:close_send()
  got = {}
  for m in call:iter() do got[#got + 1] = m.n end
  out.bidi = { st = call:status(), got = got }
  return out
end

local KINDS = { "unary", "server_stream", "client_stream", "bidi" }

describe("built-in interceptors", function()
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local c = kit.settle(base)
    for _, k in ipairs{ "client_calls", "server_calls", "tasks", "timers", "holds", "sessions",
      "streams", "buffered" } do
      assert.are.equal(base[k], c[k], "counter " .. k .. " back to baseline")
    end
  end)

  describe("auth", function()
    it("answers every bad JWT UNAUTHENTICATED on the wire and lets good ones in", function()
      local T = fixtures().tokens
      local srv, port = kit.server(handlers)
      srv:use(interceptors.auth{ verifier = jwt_verifier() })
      local ch = kit.channel(port)
      local stub = ch:stub("lgrpctest.Echo")
      for _, alg in ipairs{ "HS256", "RS384", "ES256", "ES384" } do
        local resp, st = stub:Unary({ n = 1 }, bearer(T[alg]))
        assert.is_table(resp, alg .. ": " .. tostring(st))
        assert.are.equal("ann", resp.text)
      end
      local cases = {
        expired = "invalid token: token expired",
        not_yet_valid = "invalid token: token not valid yet",
        wrong_key_hs = "invalid token: signature does not verify",
        wrong_key_rs = "invalid token: signature does not verify",
        hs_with_rsa_public_key = "invalid token: no key for the token's key id and algorithm",
        rs_naming_ec_key = "invalid token: no key for the token's key id and algorithm",
        alg_none = "invalid token: algorithm not accepted",
        alg_None = "invalid token: algorithm not accepted",
        tampered_payload = "invalid token: signature does not verify",
        tampered_payload_es = "invalid token: signature does not verify",
        wrong_audience = "invalid token: audience not accepted",
        wrong_issuer = "invalid token: issuer not accepted",
        no_exp = "invalid token: token has no expiry (exp)",
        two_parts = "invalid token: malformed token: expected three base64url parts",
      }
      for name, text in pairs(cases) do
        local resp, st = stub:Unary({ n = 1 }, bearer(T[name]))
        assert.is_nil(resp, name)
        assert.are.equal(status.UNAUTHENTICATED, st.code, name)
        assert.are.equal(text, st.message, name)
      end
      local resp, st = stub:Unary{ n = 1 }
      assert.is_nil(resp)
      assert.are.equal("rpc error: code = Unauthenticated desc = missing bearer token", tostring(st))
      _, st = stub:Unary({ n = 1 }, { metadata = { authorization = "Basic YTpi" } })
      assert.are.equal(status.UNAUTHENTICATED, st.code)
      ch:close()
      srv:shutdown(0)
    end)

    it("guards all four kinds and gives handlers the verified claims as ctx.auth", function()
      local T = fixtures().tokens
      local seen = {}
      local srv, port = kit.server{
        Unary = function(req, ctx) seen.unary = ctx.auth return { n = req.n } end,
        ServerStream = function(req, stream, ctx)
          seen.server_stream = ctx.auth
          for i = 1, req.n do stream:send{ n = i } end
        end,
        ClientStream = function(stream, ctx)
          seen.client_stream = ctx.auth
          local sum = 0
          for m in stream:iter() do sum = sum + m.n end
          return { n = sum }
        end,
        Bidi = function(stream, ctx)
          seen.bidi = ctx.auth
          for m in stream:iter() do stream:send{ n = m.n * 10 } end
        end,
      }
      srv:use(interceptors.auth{ verifier = jwt_verifier() })
      local ch = kit.channel(port)
      local stub = ch:stub("lgrpctest.Echo")
      local bad = call_all(stub, bearer(T.expired))
      for _, k in ipairs(KINDS) do
        assert.are.equal(status.UNAUTHENTICATED, bad[k].st.code, k)
        assert.is_nil(seen[k], k .. " handler must not run")
      end
      local good = call_all(stub, bearer(T.RS256))
      for _, k in ipairs(KINDS) do
        assert.is_true(good[k].st:ok(), k .. ": " .. tostring(good[k].st))
        assert.are.equal("ann", seen[k].sub, k)
        assert.are.same({ "reader" }, seen[k].roles)
      end
      assert.are.same({ 1, 2, 3 }, good.server_stream.got)
      assert.are.equal(10, good.client_stream.resp.n)
      assert.are.same({ 10, 20 }, good.bidi.got)
      -- int64 claims arrive exact
      if math.type then
        assert.are.equal(9007199254740993, seen.unary.big)
      else
        assert.are.equal("9007199254740993", seen.unary.big)
      end
      ch:close()
      srv:shutdown(0)
    end)

    it("answers PERMISSION_DENIED to valid tokens that lack a scope or a role", function()
      local T = fixtures().tokens
      local srv, port = kit.server(handlers)
      srv:use(interceptors.auth{
        verifier = jwt_verifier(),
        scopes = { ["/lgrpctest.Echo/Unary"] = { "read" }, ["lgrpctest.Echo"] = { "write" } },
        require = function(claims, ctx, info)
          if info.kind == "bidi" then
            for _, r in ipairs(claims.roles or {}) do if r == "admin" then return true end end
            return false, "bidi needs the admin role"
          end
          return true
        end,
      })
      local ch = kit.channel(port)
      local stub = ch:stub("lgrpctest.Echo")
      local out = call_all(stub, bearer(T.no_scope))
      assert.are.equal("rpc error: code = PermissionDenied desc = missing scope read",
        tostring(out.unary.st))
      assert.are.equal("missing scope write", out.server_stream.st.message)
      assert.are.equal(status.PERMISSION_DENIED, out.client_stream.st.code)
      out = call_all(stub, bearer(T.HS256))
      assert.is_true(out.unary.st:ok())
      assert.is_true(out.server_stream.st:ok())
      assert.is_true(out.client_stream.st:ok())
      assert.are.equal("rpc error: code = PermissionDenied desc = bidi needs the admin role",
        tostring(out.bidi.st))
      -- still UNAUTHENTICATED, not PERMISSION_DENIED, for a bad token
      local _, st = stub:Unary({ n = 1 }, bearer(T.wrong_key_es))
      assert.are.equal(status.UNAUTHENTICATED, st.code)
      ch:close()
      srv:shutdown(0)
    end)

    it("checks static tokens, skips listed methods and honours another header", function()
      local srv, port = kit.server(handlers)
      srv:use(interceptors.auth{
        verifier = auth.tokens{ ["s3cret"] = { sub = "svc" } },
        header = "x-api-key",
        skip = { ["/lgrpctest.Echo/ServerStream"] = true },
      })
      local ch = kit.channel(port)
      local stub = ch:stub("lgrpctest.Echo")
      local resp = assert(stub:Unary({ n = 1 }, { metadata = { ["x-api-key"] = "Bearer s3cret" } }))
      assert.are.equal("svc", resp.text)
      local _, st = stub:Unary({ n = 1 }, { metadata = { ["x-api-key"] = "Bearer s3cre" } })
      assert.are.equal("invalid token: unknown token", st.message)
      _, st = stub:Unary({ n = 1 }, bearer("s3cret"))
      assert.are.equal("missing bearer token", st.message)
      local call = stub:ServerStream{ n = 2 }
      for _ in call:iter() do end
      assert.is_true(call:status():ok())
      ch:close()
      srv:shutdown(0)
    end)

    it("gives a grpcio client the same statuses", function()
      local T = fixtures().tokens
      local srv, port = kit.server(handlers)
      srv:use(interceptors.auth{ verifier = jwt_verifier(),
        scopes = { ["/lgrpctest.Echo/Bidi"] = { "admin" } } })
      local calls = {
        { name = "valid", token = T.ES256 },
        { name = "missing" },
        { name = "expired", token = T.expired },
        { name = "wrong_key", token = T.wrong_key_rs },
        { name = "alg_none", token = T.alg_none },
        { name = "confused", token = T.hs_with_rsa_public_key },
        { name = "tampered", token = T.tampered_payload_rs },
        { name = "audience", token = T.wrong_audience },
        { name = "bidi_denied", token = T.HS256, method = "Bidi" },
        { name = "bidi_unauthenticated", token = T.not_yet_valid, method = "Bidi" },
      }
      local tree = setmetatable({ "calls", calls = setmetatable({}, core.json.array) }, core.json.object)
      for i, c in ipairs(calls) do
        local o = setmetatable({ "name", name = c.name }, core.json.object)
        if c.token then o[#o + 1] = "token" o.token = c.token end
        if c.method then o[#o + 1] = "method" o.method = c.method end
        tree.calls[i] = o
      end
      local inp, out = os.tmpname(), os.tmpname()
      local f = assert(io.open(inp, "wb"))
      local body = assert(core.json.encode(tree))
      f:write(body)
      f:close()
      os.execute(("env -u LD_PRELOAD timeout 60 /usr/bin/python3 %s/spec/support/jwt_grpcio_client.py " ..
        "127.0.0.1:%d %s %s > %s.log 2>&1 &"):format(kit.top, port, inp, out, out))
      local text = ""
      local t0 = lgrpc.now()
      while lgrpc.now() - t0 < 30 do
        local r = io.open(out, "rb")
        text = r and r:read("*a") or ""
        if r then r:close() end
        if text:find("DONE") then break end
        lgrpc.sleep(0.05)
      end
      local lf = io.open(out .. ".log", "rb")
      local log = lf and lf:read("*a") or ""
      if lf then lf:close() end
      os.remove(inp) os.remove(out) os.remove(out .. ".log")
      assert(text:find("DONE"), "grpcio client did not finish: " .. log)
      local got = plain(assert(core.json.decode(text:match("^[^\n]+"))))
      assert.are.same({ code = "OK", details = "" }, got.valid)
      assert.are.same({ code = "UNAUTHENTICATED", details = "missing bearer token" }, got.missing)
      assert.are.same({ code = "UNAUTHENTICATED", details = "invalid token: token expired" }, got.expired)
      for _, name in ipairs{ "wrong_key", "alg_none", "confused", "tampered", "audience",
        "bidi_unauthenticated" } do
        assert.are.equal("UNAUTHENTICATED", got[name].code, name)
      end
      assert.are.same({ code = "PERMISSION_DENIED", details = "missing scope admin" }, got.bidi_denied)
      srv:shutdown(0)
    end)

    it("refuses bad options and client-side use", function()
      assert.has_error(function() interceptors.auth{} end,
        "lgrpc.interceptors.auth: verifier (auth.jwt, auth.tokens) or verify function expected")
      assert.has_error(function() interceptors.auth{ verifier = {} } end,
        "lgrpc.interceptors.auth: verifier must have a :verify(token) method")
      local ch = kit.channel(kit.free_port(), { interceptors = {
        interceptors.recovery(),
        interceptors.auth{ verify = function() return true end },
      } })
      local _, st = ch:stub("lgrpctest.Echo"):Unary{ n = 1 }
      assert.are.equal(status.UNKNOWN, st.code)
      assert.matches("server interceptor", st.message)
      ch:close()
    end)
  end)

  describe("access_log", function()
    local function sink_into(lines)
      return function(line) lines[#lines + 1] = assert(core.json.decode(line)) end
    end

    local function size(tn, msg) return #assert(kit.pool():encode(tn, msg)) end

    it("writes one JSON line per server call of every kind with its fields", function()
      local T = fixtures().tokens
      local lines = {}
      local srv, port = kit.server(handlers)
      srv:use(interceptors.access_log{ sink = sink_into(lines) })
      srv:use(interceptors.auth{ verifier = jwt_verifier() })
      local ch = kit.channel(port)
      local out = call_all(ch:stub("lgrpctest.Echo"), bearer(T.HS256))
      for _, k in ipairs(KINDS) do assert.is_true(out[k].st:ok(), k) end
      lgrpc.sleep(0.05)
      assert.are.equal(4, #lines)
      local by = {}
      for _, l in ipairs(lines) do by[l.kind] = l end
      local M = ".lgrpctest.Msg"
      local u = by.unary
      -- the keys come in a fixed order
      assert.are.same({ "time", "side", "method", "kind", "peer", "code", "status",
        "duration_ms", "recv_messages", "recv_bytes", "sent_messages", "sent_bytes", "subject",
        "user_agent" }, { (table.unpack or unpack)(u) })
      assert.are.equal("server", u.side)
      assert.are.equal("/lgrpctest.Echo/Unary", u.method)
      assert.matches("^127%.0%.0%.1:%d+$", u.peer)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", u.time)
      assert.are.equal(0, u.code)
      assert.are.equal("OK", u.status)
      -- a fractional number of milliseconds (the JSON reader boxes non-integral numbers)
      local ms = type(u.duration_ms) == "table" and u.duration_ms.value or u.duration_ms
      assert.is_true(ms >= 0 and ms < 5000)
      assert.are.equal("ann", u.subject)
      assert.matches("lgrpc", u.user_agent)
      assert.are.same({ 1, size(M, { n = 1 }), 1, size(M, { n = 1, text = "ann" }) },
        { u.recv_messages, u.recv_bytes, u.sent_messages, u.sent_bytes })
      local ss = by.server_stream
      assert.are.same({ 1, size(M, { n = 3 }), 3, size(M, { n = 1 }) * 3 },
        { ss.recv_messages, ss.recv_bytes, ss.sent_messages, ss.sent_bytes })
      local cs = by.client_stream
      assert.are.same({ 4, 2 * 4, 1, size(M, { n = 10 }) },
        { cs.recv_messages, cs.recv_bytes, cs.sent_messages, cs.sent_bytes })
      local bd = by.bidi
      assert.are.same({ 2, 4, 2, size(M, { n = 10, text = "ann" }) + size(M, { n = 20, text = "ann" }) },
        { bd.recv_messages, bd.recv_bytes, bd.sent_messages, bd.sent_bytes })
      ch:close()
      srv:shutdown(0)
    end)

    it("logs short-circuited and failed calls with their status and message", function()
      local lines = {}
      local srv, port = kit.server({
        Unary = function(req) if req.n == 5 then return nil, status.not_found("no five") end
          return req end,
        ServerStream = function() error(status.resource_exhausted("slow down")) end,
        ClientStream = function() return nil, "plain text failure" end,
        Bidi = function() error("bug") end,
      }, { log = function() end })
      srv:use(interceptors.access_log{ sink = sink_into(lines), fields = function(rec, ctx)
        rec.request_id = ctx.metadata:get("x-request-id")
      end })
      srv:use(interceptors.auth{ verifier = auth.tokens{ ok = "someone" } })
      local ch = kit.channel(port)
      local stub = ch:stub("lgrpctest.Echo")
      local md = { metadata = { authorization = "Bearer ok", ["x-request-id"] = "r-1" } }
      stub:Unary({ n = 5 }, md)
      stub:Unary({ n = 1 }, { metadata = { ["x-request-id"] = "r-2" } })
      local call = stub:ServerStream({ n = 1 }, md)
      assert.are.equal(status.RESOURCE_EXHAUSTED, call:status().code)
      call = stub:ClientStream(md)
      assert.are.equal("plain text failure", select(2, call:close_and_recv()).message)
      call = stub:Bidi(md)
      call:close_send()
      assert.are.equal(status.UNKNOWN, call:status().code)
      lgrpc.sleep(0.05)
      assert.are.equal(5, #lines)
      local function find(pred) for _, l in ipairs(lines) do if pred(l) then return l end end end
      local nf = find(function(l) return l.request_id == "r-1" and l.kind == "unary" end)
      assert.are.same({ 5, "NOT_FOUND", "no five", "someone", 0 },
        { nf.code, nf.status, nf.message, nf.subject, nf.sent_messages })
      local un = find(function(l) return l.request_id == "r-2" end)
      assert.are.same({ 16, "UNAUTHENTICATED", "missing bearer token" },
        { un.code, un.status, un.message })
      assert.is_nil(un.subject)
      assert.are.equal("RESOURCE_EXHAUSTED", find(function(l) return l.kind == "server_stream" end).status)
      local cs = find(function(l) return l.kind == "client_stream" end)
      assert.are.same({ "UNKNOWN", "plain text failure" }, { cs.status, cs.message })
      local bd = find(function(l) return l.kind == "bidi" end)
      assert.are.same({ "UNKNOWN", "unexpected error in handler" }, { bd.status, bd.message })
      -- the extra field comes after the fixed ones
      assert.are.equal("request_id", nf[#nf])
      ch:close()
      srv:shutdown(0)
    end)

    it("writes client lines for every kind, with the target as peer", function()
      local lines = {}
      local srv, port = kit.server(handlers)
      local ch = kit.channel(port, { interceptors = { interceptors.access_log{
        sink = sink_into(lines) } } })
      local stub = ch:stub("lgrpctest.Echo")
      local out = call_all(stub)
      for _, k in ipairs(KINDS) do assert.is_true(out[k].st:ok(), k) end
      -- a call that fails: raw call to a method nobody serves
      local _, st = ch:call("/lgrpctest.Echo/Nope", "unary", "")
      assert.are.equal(status.UNIMPLEMENTED, st.code)
      local call = ch:call("/lgrpctest.Nope/Stream", "bidi", nil)
      call:close_send()
      assert.are.equal(status.UNIMPLEMENTED, call:status().code)
      assert.are.equal(6, #lines)
      local by = {}
      for _, l in ipairs(lines) do by[l.method] = l end
      local M = ".lgrpctest.Msg"
      local u = by["/lgrpctest.Echo/Unary"]
      assert.are.same({ "client", "unary", "127.0.0.1:" .. port, "OK", 1, size(M, { n = 1 }), 1,
        size(M, { n = 1, text = "anonymous" }) },
        { u.side, u.kind, u.peer, u.status, u.sent_messages, u.sent_bytes, u.recv_messages,
          u.recv_bytes })
      local ss = by["/lgrpctest.Echo/ServerStream"]
      assert.are.same({ 1, 3, "OK" }, { ss.sent_messages, ss.recv_messages, ss.status })
      local cs = by["/lgrpctest.Echo/ClientStream"]
      assert.are.same({ 4, 1, size(M, { n = 10 }) }, { cs.sent_messages, cs.recv_messages, cs.recv_bytes })
      local bd = by["/lgrpctest.Echo/Bidi"]
      assert.are.same({ 2, 2 }, { bd.sent_messages, bd.recv_messages })
      local nope = by["/lgrpctest.Echo/Nope"]
      assert.are.same({ "UNIMPLEMENTED", 12 }, { nope.status, nope.code })
      assert.matches("Nope", nope.message)
      assert.are.equal("UNIMPLEMENTED", by["/lgrpctest.Nope/Stream"].status)
      ch:close()
      srv:shutdown(0)
    end)

    it("logs calls that never reach a server, and writes to files", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      local ch = kit.channel(kit.free_port(), { interceptors = { interceptors.access_log{ sink = f } } })
      local stub = ch:stub("lgrpctest.Echo")
      local _, st = stub:Unary({ n = 1 }, { timeout = 2 })
      assert.are.equal(status.UNAVAILABLE, st.code)
      local call = stub:Bidi{ timeout = 2 }
      assert.are.equal(status.UNAVAILABLE, call:status().code)
      ch:close()
      f:close()
      local lines = {}
      for line in io.lines(path) do lines[#lines + 1] = assert(core.json.decode(line)) end
      os.remove(path)
      assert.are.equal(2, #lines)
      for _, l in ipairs(lines) do
        assert.are.equal("UNAVAILABLE", l.status)
        assert.matches("ECONNREFUSED", l.message)
      end
    end)

    it("survives a failing sink and unencodable extra fields", function()
      local lines = {}
      local srv, port = kit.server(handlers)
      srv:use(interceptors.access_log{ sink = function() error("disk full") end })
      srv:use(interceptors.access_log{ sink = sink_into(lines), sizes = false,
        fields = function(rec) rec.fn = print end })
      local ch = kit.channel(port)
      local resp = assert(ch:stub("lgrpctest.Echo"):Unary{ n = 3 })
      assert.are.equal(3, resp.n)
      assert.are.equal(1, #lines)
      assert.is_nil(lines[1].fn)
      assert.is_string(lines[1].log_error)
      assert.are.equal(0, lines[1].recv_bytes)
      assert.has_error(function() interceptors.access_log{ sink = 42 } end,
        "lgrpc.interceptors.access_log: sink must be a function or a file")
      ch:close()
      srv:shutdown(0)
    end)
  end)

  describe("recovery", function()
    local boom = {
      Unary = function(req) if req.n == 1 then error("boom") end return req end,
      ServerStream = function(req, stream) stream:send{ n = 1 } error("stream boom") end,
      ClientStream = function(stream) stream:recv() local x = nil return x.field end,
      Bidi = function() error({ message = "table error" }) end,
    }

    it("turns handler errors into UNKNOWN without position or traceback, logging both", function()
      local logged = {}
      local srv, port = kit.server(boom, { log = function(m) logged[#logged + 1] = m end })
      srv:use(interceptors.recovery())
      local ch = kit.channel(port)
      local out = call_all(ch:stub("lgrpctest.Echo"))
      assert.are.equal("rpc error: code = Unknown desc = boom", tostring(out.unary.st))
      assert.are.equal("stream boom", out.server_stream.st.message)
      assert.are.same({ 1 }, out.server_stream.got)
      assert.are.equal(status.UNKNOWN, out.client_stream.st.code)
      assert.matches("attempt to index", out.client_stream.st.message)
      assert.not_matches("stack traceback", out.client_stream.st.message)
      assert.not_matches("%.lua:%d+", out.client_stream.st.message)
      assert.are.equal("table error", out.bidi.st.message)
      assert.are.equal(4, #logged)
      for _, m in ipairs(logged) do assert.matches("stack traceback", m) end
      assert.matches("recovered in /lgrpctest.Echo/Unary: .*boom", logged[1])
      ch:close()
      srv:shutdown(0)
    end)

    it("uses the configured code, message and handler, and lets raised statuses through", function()
      local srv, port = kit.server({
        Unary = function(req)
          if req.n == 1 then error("secret detail") end
          if req.n == 2 then error(status.already_exists("dup")) end
          if req.n == 3 then error("teapot") end
          return req
        end,
      }, { log = function() end })
      srv:use(interceptors.recovery{ code = "INTERNAL", message = "internal error",
        handler = function(err, ctx, info)
          if tostring(err):match("teapot") then return status.unavailable("try " .. info.name) end
        end })
      local ch = kit.channel(port)
      local stub = ch:stub("lgrpctest.Echo")
      local _, st = stub:Unary{ n = 1 }
      assert.are.equal("rpc error: code = Internal desc = internal error", tostring(st))
      _, st = stub:Unary{ n = 2 }
      assert.are.equal("rpc error: code = AlreadyExists desc = dup", tostring(st))
      _, st = stub:Unary{ n = 3 }
      assert.are.equal("rpc error: code = Unavailable desc = try Unary", tostring(st))
      assert.are.equal(4, assert(stub:Unary{ n = 4 }).n)
      assert.has_error(function() interceptors.recovery{ code = "OK" } end,
        "lgrpc.interceptors.recovery: code must be a non-OK status code")
      ch:close()
      srv:shutdown(0)
    end)

    it("recovers errors of later client interceptors, and the log sees the replaced status", function()
      local lines = {}
      local srv, port = kit.server(handlers)
      local ch = kit.channel(port, { interceptors = {
        interceptors.access_log{ sink = function(l) lines[#lines + 1] = core.json.decode(l) end },
        interceptors.recovery{ code = status.FAILED_PRECONDITION },
        function(req, opts, info, next)
          if opts.metadata and opts.metadata["x-fail"] then error("no credentials") end
          return next(req, opts)
        end,
      } })
      local stub = ch:stub("lgrpctest.Echo")
      local resp, st = stub:Unary({ n = 1 }, { metadata = { ["x-fail"] = "1" } })
      assert.is_nil(resp)
      assert.are.equal("rpc error: code = FailedPrecondition desc = no credentials", tostring(st))
      local call, cst = stub:Bidi{ metadata = { ["x-fail"] = "1" } }
      assert.is_nil(call)
      assert.are.equal(status.FAILED_PRECONDITION, cst.code)
      assert(stub:Unary{ n = 2 })
      assert.are.same({ "FAILED_PRECONDITION", "FAILED_PRECONDITION", "OK" },
        { lines[1].status, lines[2].status, lines[3].status })
      ch:close()
      srv:shutdown(0)
    end)
  end)

  describe("docs/auth.md", function()
    local function examples()
      local f = assert(io.open(kit.top .. "/docs/auth.md", "rb"))
      local text = f:read("*a")
      f:close()
      local found = {}
      for name, body in text:gmatch("```lua\n%-%- example: (%w+)\n(.-)```") do found[name] = body end
      return found
    end

    -- runs an example with print and io.stderr captured; every print must show what the
    -- `-->` comment on its line says
    local function run(src, files)
      for name, path in pairs(files or {}) do
        src = src:gsub('"' .. name:gsub("%p", "%%%0") .. '"', function() return '"' .. path .. '"' end)
      end
      local printed, expected, stderr = {}, {}, {}
      for line in src:gmatch("[^\n]+") do
        local want = line:match("^.*print%(.*%-%-> (.-)%s*$")
        if want then expected[#expected + 1] = want end
      end
      local err_file = { write = function(self, ...)
        for _, s in ipairs{ ... } do stderr[#stderr + 1] = s end
        return self
      end, flush = function() end }
      local env = setmetatable({
        print = function(...)
          local parts = {}
          for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
          printed[#printed + 1] = table.concat(parts, "\t")
        end,
        io = setmetatable({ stderr = err_file }, { __index = io }),
      }, { __index = _G })
      local chunk = assert(load(src, "=docs/auth.md", "t", env))
      chunk()
      assert.is_true(#expected > 0)
      assert.are.same(expected, printed)
      local lines = {}
      for line in table.concat(stderr):gmatch("[^\n]+") do lines[#lines + 1] = assert(core.json.decode(line)) end
      return lines
    end

    it("runs the static token example as written", function()
      local ex = examples()
      assert.is_string(ex.tokens)
      local log = run(ex.tokens)
      assert.are.equal(4, #log)
      assert.are.same({ "OK", "UNAUTHENTICATED", "UNAUTHENTICATED", "UNKNOWN" },
        { log[1].status, log[2].status, log[3].status, log[4].status })
      assert.are.equal("build-bot", log[1].subject)
      assert.are.equal("/hello.Greeter/Hello", log[1].method)
    end)

    it("runs the JWT example as written, with tokens made now", function()
      local ex = examples()
      assert.is_string(ex.jwt)
      local p = assert(io.popen("env -u LD_PRELOAD /usr/bin/python3 " .. kit.top ..
        "/spec/support/jwt_tokens.py " .. os.time()))
      local tree = assert(core.json.decode(p:read("*a")))
      p:close()
      local files = {}
      local function put(name, content)
        local path = os.tmpname()
        local f = assert(io.open(path, "wb"))
        f:write(content, "\n")
        f:close()
        files[name] = path
      end
      put("jwks.json", assert(core.json.encode(tree.jwks)))
      put("token.jwt", tree.tokens.RS256)
      put("read-only.jwt", tree.tokens.no_scope)
      put("expired.jwt", tree.tokens.expired)
      local ok, err = pcall(run, ex.jwt, files)
      for _, path in pairs(files) do os.remove(path) end
      assert(ok, err)
    end)
  end)

  it("orders log, recovery and auth: each sees what the inner ones decided", function()
    local T = fixtures().tokens
    local lines, order = {}, {}
    local srv, port = kit.server({
      Unary = function(req, ctx)
        order[#order + 1] = "handler"
        if req.n == 7 then error("zero") end
        return { n = req.n, text = ctx.metadata:get("x-added") }
      end,
    }, { log = function() end })
    srv:use(function(req, ctx, info, next)
      order[#order + 1] = "outer"
      local resp, st = next(req, ctx)
      -- a status replaced on the way out
      if st and st.code == status.UNAUTHENTICATED then
        return nil, status.unauthenticated("please log in")
      end
      return resp, st
    end)
    srv:use(interceptors.access_log{ sink = function(l) lines[#lines + 1] = core.json.decode(l) end })
    srv:use(interceptors.recovery())
    srv:use(interceptors.auth{ verifier = jwt_verifier() })
    local ch = kit.channel(port, { interceptors = { function(req, opts, info, next)
      opts.metadata = opts.metadata or {}
      opts.metadata["x-added"] = "by-client"
      return next(req, opts)
    end } })
    local stub = ch:stub("lgrpctest.Echo")
    local resp = assert(stub:Unary({ n = 1 }, bearer(T.ES384)))
    assert.are.equal("by-client", resp.text)
    local _, st = stub:Unary({ n = 7 }, bearer(T.ES384))
    assert.are.equal("rpc error: code = Unknown desc = zero", tostring(st))
    _, st = stub:Unary{ n = 1 }
    assert.are.equal("rpc error: code = Unauthenticated desc = please log in", tostring(st))
    assert.are.same({ "outer", "handler", "outer", "handler", "outer" }, order)
    assert.are.same({ "OK", "UNKNOWN", "UNAUTHENTICATED" },
      { lines[1].status, lines[2].status, lines[3].status })
    assert.are.equal("zero", lines[2].message)
    assert.are.equal("missing bearer token", lines[3].message)
    ch:close()
    srv:shutdown(0)
  end)
end)

-- tls_spec.lua — lgrpc.core.tls, sans-IO: a client and a server TLS connection exchanging bytes
-- through Lua strings (no sockets). Handshakes under TLS 1.2 and 1.3, ALPN h2, verification
-- failures with their reasons on both sides, mutual TLS and the peer identity, alerts, the
-- handshake deadline, session resumption, configuration errors. Certificates: spec/support/certs.py.
local tls = require("lgrpc.core").tls
local certs = require("certs")

local c -- the run's certificates

local function server_ctx(extra)
  local o = { role = "server", cert_file = c.path("server.pem"), key_file = c.path("server.key") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(tls.context(o))
end

local function client_ctx(extra)
  local o = { role = "client", ca_file = c.path("ca.pem") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(tls.context(o))
end

-- moves bytes both ways until both sides are quiet; records the first error of each side
local function pump(p, csend, ssend)
  for _ = 1, 50 do
    local moved = false
    local a = p.c:encode(csend)
    csend = nil
    if a and a ~= "" then
      moved = true
      local plain, err = p.s:decode(a)
      if plain then p.sdata = p.sdata .. plain elseif not p.serr then p.serr = err end
    end
    local b = p.s:encode(ssend)
    ssend = nil
    if b and b ~= "" then
      moved = true
      local plain, err = p.c:decode(b)
      if plain then p.cdata = p.cdata .. plain elseif not p.cerr then p.cerr = err end
    end
    if not moved then break end
  end
  return p
end

local function connect(cctx, sctx, name, csend, ssend)
  local p = { c = assert(cctx:connection(name or "localhost")), s = assert(sctx:connection()),
              cdata = "", sdata = "" }
  return pump(p, csend, ssend)
end

local mtls_server = function(auth, extra)
  local o = { ca_file = c.path("ca.pem"), client_auth = auth or "require" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return server_ctx(o)
end

local function client_with(stem, extra)
  local o = { cert_file = c.path(stem .. ".pem"), key_file = c.path(stem .. ".key") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return client_ctx(o)
end

describe("tls (sans-IO)", function()
  setup(function() c = certs.get() end)
  teardown(function() certs.cleanup() end)

  for _, v in ipairs({ "1.2", "1.3" }) do
    describe("TLS " .. v, function()
      local pin = { min_version = v, max_version = v }

      it("handshakes with ALPN h2 and carries data both ways", function()
        local p = connect(client_ctx(pin), server_ctx(), "localhost", "hello from client", "hello from server")
        assert.is_nil(p.cerr); assert.is_nil(p.serr)
        assert.equal("open", p.c:state()); assert.equal("open", p.s:state())
        assert.equal("hello from client", p.sdata)
        assert.equal("hello from server", p.cdata)
        local ci, si = p.c:info(), p.s:info()
        assert.equal("TLSv" .. v, ci.version); assert.equal("TLSv" .. v, si.version)
        assert.equal("h2", ci.alpn); assert.equal("h2", si.alpn)
        assert.equal("localhost", si.server_name) -- SNI reached the server
        if v == "1.2" then assert.matches("^ECDHE%-", ci.cipher) end
      end)

      it("gives the client the server's verified identity; no client identity without mTLS", function()
        local p = connect(client_ctx(pin), server_ctx(), "localhost", "x")
        local id = p.c:peer_identity()
        assert.equal("CN=localhost,O=lgrpc tests", id.subject)
        assert.equal("CN=lgrpc Test CA,O=lgrpc tests", id.issuer)
        assert.is_true(id.verified)
        assert.same({ "localhost", "*.test.google.fr" }, id.sans.dns)
        assert.same({ "127.0.0.1", "::1" }, id.sans.ip)
        assert.equal(2, #id.chain)
        assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE", id.chain[1])
        assert.matches("Z$", id.not_after)
        assert.is_nil(p.s:peer_identity())
      end)

      it("refuses a server from an unknown CA, both sides saying why", function()
        local p = connect(client_ctx(pin), server_ctx(), "localhost", "x")
        assert.is_nil(p.cerr)
        p = connect(client_ctx({ ca_file = c.path("other-ca.pem"), min_version = v, max_version = v }),
          server_ctx(), "localhost", "secret")
        assert.equal("certificate verify failed: unable to get local issuer certificate", p.cerr)
        assert.equal("tlsv1 alert unknown ca", p.serr)
        assert.equal("failed", p.c:state()); assert.equal("failed", p.s:state())
        assert.equal("", p.sdata) -- nothing the client queued leaked
        assert.equal("certificate verify failed: unable to get local issuer certificate", p.c:error())
      end)

      it("refuses a wrong host name and a wrong IP address", function()
        local p = connect(client_ctx(pin), server_ctx(), "wrong.example", "x")
        assert.equal("certificate verify failed: hostname mismatch", p.cerr)
        assert.equal("sslv3 alert bad certificate", p.serr)
        p = connect(client_ctx(pin), server_ctx(), "10.0.0.1", "x")
        assert.equal("certificate verify failed: IP address mismatch", p.cerr)
        p = connect(client_ctx(pin), server_ctx(), "127.0.0.1", "ok")
        assert.is_nil(p.cerr); assert.equal("ok", p.sdata)
        p = connect(client_ctx(pin), server_ctx(), "foo.test.google.fr", "ok")
        assert.is_nil(p.cerr); assert.equal("ok", p.sdata)
        p = connect(client_ctx(pin), server_ctx(), "a.b.test.google.fr", "x")
        assert.equal("certificate verify failed: hostname mismatch", p.cerr)
      end)

      it("refuses an expired server certificate", function()
        local p = connect(client_ctx(pin),
          server_ctx({ cert_file = c.path("server-expired.pem"), key_file = c.path("server-expired.key") }),
          "localhost", "x")
        assert.equal("certificate verify failed: certificate has expired", p.cerr)
        assert.equal("sslv3 alert certificate expired", p.serr)
      end)

      it("serves a client with a valid certificate and shows its identity to the server", function()
        local p = connect(client_with("client", pin), mtls_server("require"), "localhost", "hi", "yo")
        assert.is_nil(p.cerr); assert.is_nil(p.serr)
        assert.equal("hi", p.sdata); assert.equal("yo", p.cdata)
        local id = p.s:peer_identity()
        assert.equal("CN=client-1,O=lgrpc tests", id.subject)
        assert.is_true(id.verified)
        assert.same({ "spiffe://lgrpc.test/client-1" }, id.sans.uri)
        assert.same({ "client-1.test" }, id.sans.dns)
        assert.equal(2, #id.chain)
      end)

      it("refuses a client without a certificate when one is required", function()
        local p = connect(client_ctx(pin), mtls_server("require"), "localhost", "x")
        assert.equal("peer did not return a certificate", p.serr)
        if v == "1.3" then
          -- the client's handshake ends before the server looks at its certificate: the refusal
          -- arrives as an alert on the client's next read
          assert.equal("tlsv13 alert certificate required", p.cerr)
        else
          assert.equal("sslv3 alert handshake failure", p.cerr)
        end
        assert.equal("", p.sdata)
        assert.equal("failed", p.c:state())
      end)

      it("refuses a client certificate from another CA", function()
        local p = connect(client_with("client-other", pin), mtls_server("require"), "localhost", "x")
        assert.equal("certificate verify failed: unable to get local issuer certificate", p.serr)
        assert.equal("tlsv1 alert unknown ca", p.cerr)
        assert.equal("", p.sdata)
      end)

      it("refuses an expired client certificate", function()
        local p = connect(client_with("client-expired", pin), mtls_server("require"), "localhost", "x")
        assert.equal("certificate verify failed: certificate has expired", p.serr)
        assert.equal("sslv3 alert certificate expired", p.cerr)
      end)

      it("client_auth = request: serves clients with and without a certificate", function()
        local p = connect(client_ctx(pin), mtls_server("request"), "localhost", "anon")
        assert.is_nil(p.serr); assert.equal("anon", p.sdata)
        assert.is_nil(p.s:peer_identity())
        p = connect(client_with("client", pin), mtls_server("request"), "localhost", "named")
        assert.equal("named", p.sdata)
        assert.equal("CN=client-1,O=lgrpc tests", p.s:peer_identity().subject)
        -- a certificate that is offered must still verify
        p = connect(client_with("client-other", pin), mtls_server("request"), "localhost", "x")
        assert.equal("certificate verify failed: unable to get local issuer certificate", p.serr)
      end)

      it("resumes sessions on the client", function()
        local cc, sc = client_ctx(pin), server_ctx()
        local first = connect(cc, sc, "localhost", "a", "b")
        assert.is_false(first.c:info().resumed)
        local second = connect(cc, sc, "localhost", "a", "b")
        assert.is_true(second.c:info().resumed); assert.is_true(second.s:info().resumed)
        assert.equal("a", second.sdata)
        -- a session is only offered to the host it came from
        local other = connect(cc, sc, "127.0.0.1", "a", "b")
        assert.is_false(other.c:info().resumed)
      end)
    end)
  end

  it("defaults to TLS 1.3 and never goes below the configured minimum", function()
    local p = connect(client_ctx(), server_ctx(), "localhost", "x")
    assert.equal("TLSv1.3", p.c:info().version)
    p = connect(client_ctx({ max_version = "1.2" }), server_ctx({ min_version = "1.3" }), "localhost", "x")
    assert.equal("failed", p.c:state()); assert.equal("failed", p.s:state())
    assert.equal("unsupported protocol", p.serr)
    assert.equal("tlsv1 alert protocol version", p.cerr)
  end)

  it("holds plaintext queued before the handshake and sends it after", function()
    local p = { c = client_ctx():connection("localhost"), s = server_ctx():connection(), cdata = "", sdata = "" }
    assert.is_true(p.c:want_write()) -- a client has a ClientHello to say
    assert.is_false(p.s:want_write())
    local hello = p.c:encode("early words")
    assert.is_nil(hello:find("early words", 1, true))
    assert.equal("handshake", p.c:state())
    assert(p.s:decode(hello))
    assert.is_true(p.s:want_write())
    pump(p)
    assert.equal("early words", p.sdata)
    assert.is_false(p.c:want_write())
  end)

  it("verifies a chain the server sends through an intermediate", function()
    local p = connect(client_ctx(), server_ctx({ cert_file = c.path("server-chain.pem"),
      key_file = c.path("server-chain.key") }), "localhost", "x")
    assert.is_nil(p.cerr)
    local id = p.c:peer_identity()
    assert.equal(3, #id.chain)
    assert.equal("CN=lgrpc Intermediate CA,O=lgrpc tests", id.issuer)
  end)

  it("takes certificates, keys and CAs as PEM strings", function()
    local sc = assert(tls.context({ role = "server", cert = c.pem("server.pem"), key = c.pem("server.key"),
      ca = c.pem("ca.pem"), client_auth = "require" }))
    local cc = assert(tls.context({ role = "client", ca = c.pem("ca.pem"), cert = c.pem("client.pem"),
      key = c.pem("client.key") }))
    local p = connect(cc, sc, "localhost", "pem")
    assert.equal("pem", p.sdata)
    assert.equal("CN=client-1,O=lgrpc tests", p.s:peer_identity().subject)
    -- a chain in a PEM string: leaf then intermediate
    sc = assert(tls.context({ role = "server", cert = c.pem("server-chain.pem"), key = c.pem("server-chain.key") }))
    p = connect(client_ctx(), sc, "localhost", "x")
    assert.is_nil(p.cerr)
    assert.equal(3, #p.c:peer_identity().chain)
  end)

  it("insecure_skip_verify accepts any server and says the identity is unverified", function()
    local cc = client_ctx({ ca_file = c.path("other-ca.pem"), insecure_skip_verify = true })
    local p = connect(cc, server_ctx(), "wrong.example", "x")
    assert.is_nil(p.cerr)
    assert.equal("x", p.sdata)
    assert.is_false(p.c:peer_identity().verified)
  end)

  it("trusts the system CA store by default (and so not the test CA)", function()
    local p = connect(assert(tls.context({ role = "client" })), server_ctx(), "localhost", "x")
    assert.equal("certificate verify failed: unable to get local issuer certificate", p.cerr)
  end)

  it("fails a handshake that does not finish in time", function()
    local s = server_ctx({ handshake_timeout = 100 }):connection()
    assert.is_nil(s:next_deadline())
    s:tick(5000)
    assert.equal(5100, s:next_deadline())
    s:tick(5099)
    assert.equal("handshake", s:state())
    s:tick(5100)
    assert.equal("failed", s:state())
    assert.equal("handshake timed out", s:error())
    assert.is_nil(s:next_deadline())
    local plain, err = s:decode("\22\3\1\0\1")
    assert.is_nil(plain); assert.equal("handshake timed out", err)
    -- a finished handshake has no deadline
    local p = { c = client_ctx():connection("localhost"), s = server_ctx({ handshake_timeout = 100 }):connection(),
                cdata = "", sdata = "" }
    p.s:tick(0)
    pump(p, "x")
    assert.equal("open", p.s:state())
    assert.is_nil(p.s:next_deadline())
    p.s:tick(1000)
    assert.equal("open", p.s:state())
  end)

  it("reports close_notify as a clean close", function()
    local p = connect(client_ctx(), server_ctx(), "localhost", "x", "y")
    p.c:close()
    assert.is_true(p.c:want_write())
    assert.equal("", assert(p.s:decode(p.c:encode())))
    assert.equal("closed", p.s:state())
    assert.is_nil(p.s:error())
    local raw, err = p.s:encode("more")
    assert.is_nil(raw); assert.matches("closed", err)
  end)

  it("turns garbage from the peer into an error, never a crash", function()
    local s = server_ctx():connection()
    local plain, err = s:decode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert.is_nil(plain)
    assert.equal("wrong version number", err)
    assert.equal("failed", s:state())
    -- a record damaged after the handshake
    local p = connect(client_ctx(), server_ctx(), "localhost", "x", "y")
    local rec = p.c:encode("some data")
    local bad = rec:sub(1, -3) .. string.char((rec:byte(-2) + 1) % 256) .. rec:sub(-1)
    plain, err = p.s:decode(bad)
    assert.is_nil(plain)
    assert.equal("decryption failed or bad record mac", err)
    -- and the server has an alert to send about it
    local alert = p.s:encode()
    assert.is_true(#alert > 0)
    plain, err = p.c:decode(alert)
    assert.is_nil(plain)
    assert.equal("sslv3 alert bad record mac", err)
  end)

  it("explains unusable configurations", function()
    local function err_of(o) local ctx, e = tls.context(o); assert.is_nil(ctx); return e end
    assert.equal("a TLS server needs cert_file/key_file or cert/key", err_of({ role = "server" }))
    assert.equal("cert_file /nonexistent.pem: No such file or directory",
      err_of({ role = "server", cert_file = "/nonexistent.pem", key_file = c.path("server.key") }))
    assert.equal("the private key does not match the certificate",
      err_of({ role = "server", cert_file = c.path("server.pem"), key_file = c.path("client.key") }))
    assert.equal("the private key does not match the certificate",
      err_of({ role = "server", cert = c.pem("server.pem"), key = c.pem("client.key") }))
    assert.matches("^cert: no usable PEM certificate", err_of({ role = "server", cert = "garbage", key = "garbage" }))
    assert.equal("a certificate needs its key (cert and key go together)",
      err_of({ role = "client", cert_file = c.path("client.pem") }))
    assert.equal("min_version: \"1.2\" or \"1.3\" expected", err_of({ role = "client", min_version = "1.1" }))
    assert.equal("max_version: TLS 1.2 or 1.3, not below min_version, expected",
      err_of({ role = "client", min_version = "1.3", max_version = "1.2" }))
    assert.equal("client_auth needs client_ca_file or client_ca",
      err_of({ role = "server", cert_file = c.path("server.pem"), key_file = c.path("server.key"), client_auth = "require" }))
    assert.equal("client_auth: \"none\", \"request\" or \"require\" expected",
      err_of({ role = "server", cert_file = c.path("server.pem"), key_file = c.path("server.key"), client_auth = "maybe" }))
    assert.equal("ca: no PEM certificate found", err_of({ role = "client", ca = "not a pem" }))
    assert.has_error(function() tls.context({ role = "client", ca_file = 7 }) end,
      "tls option ca_file: string expected, got number")
    assert.has_error(function() tls.context({ role = "peer" }) end)
    assert.has_error(function() tls.context() end)
  end)

  it("frees connections and contexts in any order", function()
    local sc = server_ctx()
    local conns = {}
    for i = 1, 20 do conns[i] = sc:connection() end
    sc = nil
    collectgarbage(); collectgarbage()
    local p = { c = client_ctx():connection("localhost"), s = conns[20], cdata = "", sdata = "" }
    pump(p, "still works")
    assert.equal("still works", p.sdata)
  end)
end)

-- lgrpc.tls: the option tables of servers and channels.
describe("lgrpc.tls", function()
  local ltls = require("lgrpc.tls")
  setup(function() c = certs.get() end)
  teardown(function() certs.cleanup() end)

  it("builds server and client contexts from option tables", function()
    local sctx = assert(ltls.server_context({ cert_file = c.path("server.pem"), key_file = c.path("server.key"),
      client_ca_file = c.path("ca.pem"), handshake_timeout = 0.25 }))
    assert.equal("server", sctx:role())
    local conn = sctx:connection()
    conn:tick(1000)
    assert.equal(1250, conn:next_deadline()) -- seconds became ms
    local cctx = assert(ltls.client_context({ ca_file = c.path("ca.pem"), cert_file = c.path("client.pem"),
      key_file = c.path("client.key"), server_host_override = "foo.test.google.fr" }))
    assert.equal("client", cctx:role())
    -- a client CA alone means "require"
    local p = connect(client_ctx(), sctx, "localhost", "x")
    assert.equal("peer did not return a certificate", p.serr)
    p = connect(cctx, sctx, "localhost", "x")
    assert.equal("x", p.sdata)
    assert.equal("client", assert(ltls.client_context(true)):role())
  end)

  it("raises on misspelt options and wrong types, returns nil, err on unusable files", function()
    assert.has_error(function() ltls.server_context({ certfile = "x" }) end,
      "lgrpc.tls.server_context: unknown tls option certfile")
    assert.has_error(function() ltls.client_context({ insecure_skip_verify = "yes" }) end,
      "lgrpc.tls.client_context: tls option insecure_skip_verify: boolean expected, got string")
    assert.has_error(function() ltls.client_context("x") end,
      "lgrpc.tls.client_context: tls options table expected, got string")
    local ctx, err = ltls.server_context({ cert_file = c.path("server.pem"), key_file = "/nonexistent.key" })
    assert.is_nil(ctx)
    assert.equal("key_file /nonexistent.key: No such file or directory", err)
    ctx, err = ltls.server_context({ cert_file = c.path("server.pem"), key_file = c.path("server.key"),
      handshake_timeout = -1 })
    assert.is_nil(ctx)
    assert.equal("handshake_timeout: seconds >= 0 expected", err)
  end)

  it("describes a connection as grpc's auth context does", function()
    local p = connect(client_with("client"), mtls_server("require"), "localhost", "x")
    local info = p.s:info()
    info.peer_identity = p.s:peer_identity()
    local ac = ltls.auth_context(info)
    assert.equal("ssl", ac.transport_security_type)
    assert.equal("client-1", ac.x509_common_name)
    assert.same({ "client-1.test", "spiffe://lgrpc.test/client-1" }, ac.x509_subject_alternative_name)
    assert.equal(info.peer_identity.chain[1], ac.x509_pem_cert)
    assert.is_true(ac.peer_verified)
    assert.equal("insecure", ltls.auth_context(nil).transport_security_type)
  end)
end)

-- lgrpc.server and lgrpc.channel over TLS: real sockets on 127.0.0.1, the epoll loop running
-- the TLS filter, certificates from certs.py, odd peers from tls_peer.py.
describe("lgrpc over TLS", function()
  local lgrpc = require("lgrpc")
  local kit = require("callkit")
  local st = lgrpc.status
  local logs

  setup(function() c = certs.get() end)
  teardown(function() certs.cleanup() end)
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local now = kit.settle(base)
    for _, k in ipairs({ "client_calls", "server_calls", "tasks", "timers", "holds", "sessions", "streams" }) do
      assert.are.equal(base[k], now[k], "counter " .. k .. " back to baseline")
    end
  end)

  local function server_tls(extra)
    local o = { cert_file = c.path("server.pem"), key_file = c.path("server.key") }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  local function mtls(extra)
    local o = server_tls({ client_ca_file = c.path("ca.pem"), client_auth = "require" })
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  local function client_tls(stem, extra)
    local o = { ca_file = c.path("ca.pem") }
    if stem then o.cert_file, o.key_file = c.path(stem .. ".pem"), c.path(stem .. ".key") end
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  local seen
  local handlers = {
    Unary = function(req, ctx)
      seen = { identity = ctx.peer_identity, tls = ctx.tls, auth = ctx:auth_context(), peer = ctx.peer }
      return { text = "echo " .. req.text }
    end,
  }

  -- a TLS server; returns server, port
  local function start(tls_opts, opts)
    logs = {}
    opts = opts or {}
    opts.tls = tls_opts
    opts.log = function(msg) logs[#logs + 1] = msg end
    return kit.server(handlers, opts)
  end

  local function call(port, tls_opts, extra)
    local o = { tls = tls_opts }
    for k, v in pairs(extra or {}) do o[k] = v end
    local ch = kit.channel(port, o)
    local resp, s = ch:stub("lgrpctest.Echo"):Unary({ text = "hi" }, { timeout = 5 })
    ch:close()
    return resp, s
  end

  -- waits until the server logged a line matching pat
  local function logged(pat)
    local t0 = lgrpc.now()
    repeat
      for _, l in ipairs(logs) do if l:find(pat) then return l end end
      lgrpc.sleep(0.02)
    until lgrpc.now() - t0 > 3
    return nil, table.concat(logs, "\n")
  end

  for _, v in ipairs({ "1.2", "1.3" }) do
    describe("TLS " .. v, function()
      local pin = { min_version = v, max_version = v }

      it("serves unary calls; the handler sees the TLS connection", function()
        local srv, port = start(server_tls(pin))
        seen = nil
        local resp, s = call(port, client_tls())
        assert.is_true(s:ok(), tostring(s))
        assert.equal("echo hi", resp.text)
        assert.equal("TLSv" .. v, seen.tls.version)
        assert.equal("h2", seen.tls.alpn)
        assert.is_nil(seen.identity)
        assert.equal("ssl", seen.auth.transport_security_type)
        srv:shutdown(0)
      end)

      it("mTLS: a client with a valid certificate is served and its identity is in ctx", function()
        local srv, port = start(mtls(pin))
        local in_interceptor
        srv:use(function(req, ctx, info, next)
          in_interceptor = ctx.peer_identity and ctx.peer_identity.subject
          return next(req, ctx)
        end)
        seen = nil
        local resp, s = call(port, client_tls("client"))
        assert.is_true(s:ok(), tostring(s))
        assert.equal("echo hi", resp.text)
        assert.equal("CN=client-1,O=lgrpc tests", seen.identity.subject)
        assert.is_true(seen.identity.verified)
        assert.same({ "spiffe://lgrpc.test/client-1" }, seen.identity.sans.uri)
        assert.equal("client-1", seen.auth.x509_common_name)
        assert.same({ "client-1.test", "spiffe://lgrpc.test/client-1" }, seen.auth.x509_subject_alternative_name)
        assert.equal("CN=client-1,O=lgrpc tests", in_interceptor)
        srv:shutdown(0)
      end)

      it("mTLS: refuses a client without a certificate, with the reason on both sides", function()
        local srv, port = start(mtls(pin))
        local resp, s = call(port, client_tls())
        assert.is_nil(resp)
        assert.equal(st.UNAVAILABLE, s.code)
        if v == "1.3" then
          assert.matches("tlsv13 alert certificate required", s.message, 1, true)
        else
          assert.matches("sslv3 alert handshake failure", s.message, 1, true)
        end
        assert(logged("TLS handshake failed: peer did not return a certificate"))
        -- and it keeps serving others
        local ok = call(port, client_tls("client"))
        assert.equal("echo hi", ok.text)
        srv:shutdown(0)
      end)

      it("mTLS: refuses a certificate from another CA and an expired one", function()
        local srv, port = start(mtls(pin))
        local resp, s = call(port, client_tls("client-other"))
        assert.is_nil(resp)
        assert.equal(st.UNAVAILABLE, s.code)
        assert.matches("tlsv1 alert unknown ca", s.message, 1, true)
        assert(logged("TLS handshake failed: certificate verify failed: unable to get local issuer certificate"))
        resp, s = call(port, client_tls("client-expired"))
        assert.is_nil(resp)
        assert.equal(st.UNAVAILABLE, s.code)
        assert.matches("sslv3 alert certificate expired", s.message, 1, true)
        assert(logged("TLS handshake failed: certificate verify failed: certificate has expired"))
        srv:shutdown(0)
      end)

      it("refuses a server whose name does not match, or that nobody trusts", function()
        local srv, port = start(server_tls(pin))
        local resp, s = call(port, client_tls(nil, { server_host_override = "wrong.example" }))
        assert.is_nil(resp)
        assert.equal(st.UNAVAILABLE, s.code)
        assert.matches("TLS handshake failed: certificate verify failed: hostname mismatch", s.message, 1, true)
        assert(logged("TLS handshake failed: sslv3 alert bad certificate"))
        resp, s = call(port, { ca_file = c.path("other-ca.pem") })
        assert.equal(st.UNAVAILABLE, s.code)
        assert.matches("certificate verify failed: unable to get local issuer certificate", s.message, 1, true)
        assert(logged("tlsv1 alert unknown ca"))
        -- the override names the host the certificate must carry (and the :authority)
        resp, s = call(port, client_tls(nil, { server_host_override = "foo.test.google.fr" }))
        assert.is_true(s:ok(), tostring(s))
        srv:shutdown(0)
      end)
    end)
  end

  it("carries call credentials, which need a secure channel, with the service URL as https", function()
    local got
    local srv = lgrpc.server({ pool = kit.pool(), tls = server_tls(), log = function() end })
    srv:add("lgrpctest.Echo", { Unary = function(req, ctx)
      got = ctx.metadata:get("authorization")
      return { text = "ok" }
    end })
    local port = assert(srv:listen("127.0.0.1:0"))
    local url
    local ch = kit.channel(port, { tls = client_tls(), credentials = function(info)
      url = info.service_url
      return { authorization = "Bearer secret" }
    end })
    local resp, s = ch:stub("lgrpctest.Echo"):Unary({ text = "x" }, { timeout = 5 })
    assert.is_true(s:ok(), tostring(s))
    assert.equal("ok", resp.text)
    assert.equal("Bearer secret", got)
    assert.matches("^https://", url)
    ch:close()
    srv:shutdown(0)
  end)

  it("reload_tls: new handshakes use the new pair, live connections continue", function()
    local srv, port = start(mtls())
    local old = kit.channel(port, { tls = client_tls("client") })
    local stub = old:stub("lgrpctest.Echo")
    assert.is_true(select(2, stub:Unary({ text = "a" })):ok())
    -- from now on: a new certificate (with its intermediate), and only clients of other-ca
    assert(srv:reload_tls({ cert_file = c.path("server-chain.pem"), key_file = c.path("server-chain.key"),
      client_ca_file = c.path("other-ca.pem"), client_auth = "require" }))
    local resp, s = stub:Unary({ text = "still" })
    assert.is_true(s:ok(), tostring(s))
    assert.equal("echo still", resp.text)
    resp, s = call(port, client_tls("client"))
    assert.equal(st.UNAVAILABLE, s.code)
    assert.matches("unknown ca", s.message, 1, true)
    seen = nil
    resp, s = call(port, client_tls("client-other"))
    assert.is_true(s:ok(), tostring(s))
    assert.equal("CN=intruder,O=lgrpc tests", seen.identity.subject)
    -- a reload that cannot work changes nothing
    local ok, err = srv:reload_tls({ cert_file = "/nonexistent.pem", key_file = c.path("server.key") })
    assert.is_nil(ok)
    assert.equal("cert_file /nonexistent.pem: No such file or directory", err)
    resp, s = call(port, client_tls("client-other"))
    assert.is_true(s:ok(), tostring(s))
    old:close()
    srv:shutdown(0)
  end)

  it("resumes the TLS session when a channel reconnects", function()
    local srv, port = start(server_tls())
    local ch = kit.channel(port, { tls = client_tls(), idle_timeout = 0.5 })
    local stub = ch:stub("lgrpctest.Echo")
    seen = nil
    local _, s1 = stub:Unary({ text = "1" })
    assert.is_true(s1:ok(), tostring(s1))
    assert.is_false(seen.tls.resumed)
    -- the idle connection closes; the next call connects again and resumes
    local t0 = lgrpc.now()
    while ch:state() ~= "IDLE" and lgrpc.now() - t0 < 3 do lgrpc.sleep(0.05) end
    assert.equal("IDLE", ch:state())
    local first = seen
    local _, s2 = stub:Unary({ text = "2" })
    assert.is_true(s2:ok(), tostring(s2))
    assert.is_true(seen.tls.resumed, "second connection not resumed: " .. tostring(seen.tls.version) .. " " .. tostring(first.peer) .. " -> " .. tostring(seen.peer))
    ch:close()
    srv:shutdown(0)
  end)

  it("ends a handshake that does not come (a client that sends nothing)", function()
    local srv, port = start(server_tls({ handshake_timeout = 0.3 }))
    local p = io.popen(("env -u LD_PRELOAD /usr/bin/python3 %s/spec/support/tls_peer.py silent %d"):format(kit.top, port))
    local t0 = lgrpc.now()
    assert(logged("TLS handshake timed out"))
    local waited = lgrpc.now() - t0
    assert.is_true(waited >= 0.25 and waited < 2, "timed out after " .. waited)
    local out = p:read("a") or p:read("*a")
    p:close()
    assert.matches("^eof after", out)
    -- the server is fine
    local resp = call(port, client_tls())
    assert.equal("echo hi", resp.text)
    srv:shutdown(0)
  end)

  it("a client refuses a server that does not select h2", function()
    for _, alpn in ipairs({ "", "http/1.1" }) do
      local peer = kit.child({ "env -u LD_PRELOAD /usr/bin/python3", kit.top .. "/spec/support/tls_peer.py", "server",
        c.path("server.pem"), c.path("server.key"), alpn }, 30)
      local resp, s = call(peer.port, client_tls())
      assert.is_nil(resp)
      assert.equal(st.UNAVAILABLE, s.code)
      assert.matches("TLS handshake failed: no ALPN h2 from server", s.message, 1, true)
      peer.kill()
    end
  end)

  it("a server refuses a client that offers ALPN without h2", function()
    local srv, port = start(server_tls())
    local out = os.tmpname()
    os.execute(("env -u LD_PRELOAD /usr/bin/python3 %s/spec/support/tls_peer.py client %d %s http/1.1 > %s 2>&1 &")
      :format(kit.top, port, c.path("ca.pem"), out))
    assert(logged("TLS handshake failed: no application protocol"))
    local text = ""
    local t0 = lgrpc.now()
    repeat
      lgrpc.sleep(0.02)
      local f = io.open(out, "rb")
      text = f and (f:read("a") or f:read("*a")) or ""
      if f then f:close() end
    until text ~= "" or lgrpc.now() - t0 > 5
    os.remove(out)
    assert.matches("^error=.*no application protocol", text)
    srv:shutdown(0)
  end)

  it("plaintext and TLS do not mix, and say so", function()
    local srv, port = start(server_tls())
    local resp, s = call(port, nil)
    assert.is_nil(resp)
    assert.equal(st.UNAVAILABLE, s.code)
    assert(logged("TLS handshake failed: wrong version number"))
    srv:shutdown(0)
    local plain, pport = kit.server(handlers)
    resp, s = call(pport, client_tls())
    assert.equal(st.UNAVAILABLE, s.code)
    assert.matches("TLS handshake failed: ", s.message, 1, true)
    plain:shutdown(0)
  end)

  it("runs the example of docs/security.md (openssl-made certificates, mutual TLS)", function()
    local dir = c.dir .. "/example"
    local h = io.popen(("env -u LD_PRELOAD sh %s/examples/tls/make_certs.sh %s 2>&1"):format(kit.top, dir))
    local made = h:read("a") or h:read("*a")
    h:close()
    assert.matches("certificates in", made)
    local srv = kit.child({ kit.lua, kit.top .. "/examples/tls/server.lua", "--port=0",
      "--cert=" .. dir .. "/server.pem", "--key=" .. dir .. "/server.key", "--client_ca=" .. dir .. "/ca.pem",
      "--serve_for=20" }, 30)
    local function client(extra)
      local p = io.popen(("%s %s/examples/tls/client.lua --target=127.0.0.1:%d --ca=%s/ca.pem %s 2>&1; echo rc=$?")
        :format(kit.lua, kit.top, srv.port, dir, extra))
      local out = p:read("a") or p:read("*a")
      p:close()
      return out
    end
    local out = client(("--cert=%s/client.pem --key=%s/client.key"):format(dir, dir))
    assert.matches("server saw: CN=alice,O=lgrpc example over TLSv1.3", out, 1, true)
    assert.matches("san: spiffe://example.org/alice", out, 1, true)
    assert.matches("rc=0", out, 1, true)
    out = client("")
    assert.matches("rpc error: code = Unavailable desc = ", out, 1, true)
    assert.matches("tlsv13 alert certificate required", out, 1, true)
    assert.matches("rc=1", out, 1, true)
    srv.kill()
  end)

  it("checks its options", function()
    assert.has_error(function() lgrpc.server({ tls = { cert_file = 1 } }) end,
      "lgrpc.server: tls option cert_file: string expected, got number")
    assert.has_error(function() lgrpc.server({ tls = { certfile = "x" } }) end,
      "lgrpc.server: unknown tls option certfile")
    assert.has_error(function() lgrpc.server({ tls = { cert_file = "/nonexistent.pem", key_file = "/x" } }) end,
      "lgrpc.server: tls: cert_file /nonexistent.pem: No such file or directory")
    assert.has_error(function() lgrpc.channel("localhost:1", { tls = { verify = false } }) end,
      "lgrpc.channel: unknown tls option verify")
    assert.has_error(function() lgrpc.channel("localhost:1", { tls = { ca = "nope" } }) end,
      "lgrpc.channel: tls: ca: no PEM certificate found")
  end)
end)

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

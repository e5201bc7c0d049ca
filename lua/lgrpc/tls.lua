-- lgrpc.tls — TLS credentials for servers and channels: the `tls = { ... }` option tables of
-- lgrpc.server and lgrpc.channel, checked and turned into lgrpc.core.tls contexts.
-- Wrong option names or types raise (the caller's mistake); files and PEM text that cannot be
-- used return nil, err. Times are in seconds, as everywhere in the Lua API. See docs/security.md.
local core = require("lgrpc.core").tls

local tls = {}

local SERVER_KEYS = {
  cert_file = "string", key_file = "string", cert = "string", key = "string",
  client_ca_file = "string", client_ca = "string", client_auth = "string",
  min_version = "string", max_version = "string", handshake_timeout = "number",
}
local CLIENT_KEYS = {
  ca_file = "string", ca = "string", cert_file = "string", key_file = "string", cert = "string",
  key = "string", server_host_override = "string", insecure_skip_verify = "boolean",
  min_version = "string", max_version = "string",
}

local function check(opts, keys, where, level)
  if type(opts) ~= "table" then error(where .. ": tls options table expected, got " .. type(opts), level) end
  for k, v in pairs(opts) do
    local want = keys[k]
    if not want then error(where .. ": unknown tls option " .. tostring(k), level) end
    if type(v) ~= want then
      error(where .. ": tls option " .. k .. ": " .. want .. " expected, got " .. type(v), level)
    end
  end
end

--- tls.server_context(opts) -> context | nil, err. opts: cert_file + key_file or cert + key (PEM
-- text; the certificate may carry its chain), client_ca_file | client_ca, client_auth =
-- "none" | "request" | "require" (default "none", or "require" when a client CA is given),
-- min_version = "1.2" | "1.3" (default "1.2"), max_version, handshake_timeout (s, default 10).
function tls.server_context(opts, where)
  where = where or "lgrpc.tls.server_context"
  check(opts, SERVER_KEYS, where, 3)
  local auth = opts.client_auth
  if auth == nil then auth = (opts.client_ca_file or opts.client_ca) and "require" or "none" end
  local timeout = opts.handshake_timeout
  if timeout == nil then timeout = 10 end
  if timeout < 0 then return nil, "handshake_timeout: seconds >= 0 expected" end
  return core.context({
    role = "server", cert_file = opts.cert_file, key_file = opts.key_file, cert = opts.cert,
    key = opts.key, ca_file = opts.client_ca_file, ca = opts.client_ca, client_auth = auth,
    min_version = opts.min_version, max_version = opts.max_version,
    handshake_timeout = math.floor(timeout * 1000),
  })
end

--- tls.client_context(opts) -> context | nil, err. opts: ca_file | ca (default: the system CA
-- store), cert_file + key_file or cert + key (mutual TLS), insecure_skip_verify = true (no
-- verification at all: tests only), min_version, max_version. `server_host_override` is
-- accepted here and used by the channel (the name verified, sent as SNI and as :authority).
-- `true` stands for {} (the system CAs).
function tls.client_context(opts, where)
  where = where or "lgrpc.tls.client_context"
  if opts == true then opts = {} end
  check(opts, CLIENT_KEYS, where, 3)
  return core.context({
    role = "client", ca_file = opts.ca_file, ca = opts.ca, cert_file = opts.cert_file,
    key_file = opts.key_file, cert = opts.cert, key = opts.key,
    insecure_skip_verify = opts.insecure_skip_verify,
    min_version = opts.min_version, max_version = opts.max_version,
  })
end

--- The grpc-style auth context of a TLS connection info table (session:tls()), for ctx:auth_context().
function tls.auth_context(info)
  if not info then return { transport_security_type = "insecure" } end
  local id = info.peer_identity
  local ac = {
    transport_security_type = "ssl",
    security_level = "TSI_PRIVACY_AND_INTEGRITY",
    ssl_session_reused = info.resumed,
    tls_version = info.version, tls_cipher = info.cipher, alpn = info.alpn,
    peer_identity = id,
  }
  if id then
    ac.x509_subject = id.subject
    ac.x509_common_name = id.subject and id.subject:match("CN=([^,]*)")
    local sans = {}
    for _, kind in ipairs({ "dns", "uri", "ip", "email" }) do
      for _, v in ipairs(id.sans[kind]) do sans[#sans + 1] = v end
    end
    ac.x509_subject_alternative_name = sans
    ac.x509_pem_cert = id.chain[1]
    ac.peer_verified = id.verified
  end
  return ac
end

return tls

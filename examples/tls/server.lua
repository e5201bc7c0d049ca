-- A TLS server (mutual TLS with --client_ca): `lua5.4 examples/tls/server.lua --cert=server.pem
-- --key=server.key [--client_ca=ca.pem] [--port=N] [--serve_for=SECONDS]`.
-- Answers WhoAmI with the client's certificate identity. Prints "listening on PORT".
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local lgrpc = require "lgrpc"

local flags = { port = "50443", cert = "", key = "", client_ca = "", serve_for = "" }
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-([%w_]+)=(.*)$")
  if not k or flags[k] == nil then io.stderr:write("tls server: unknown argument ", a, "\n") os.exit(2) end
  flags[k] = v
end

local tls = { cert_file = flags.cert, key_file = flags.key }
if flags.client_ca ~= "" then
  tls.client_ca_file = flags.client_ca -- and client_auth = "require" (the default with a CA)
end

local pool = assert(lgrpc.proto.load{ "whoami.proto", include = { dir } })
local server = lgrpc.server{ pool = pool, tls = tls }
server:add("whoami.WhoAmI", {
  WhoAmI = function(_, ctx)
    local id = ctx.peer_identity -- nil without a client certificate
    local sans = {}
    for _, kind in ipairs({ "dns", "uri", "ip", "email" }) do
      for _, v in ipairs(id and id.sans[kind] or {}) do sans[#sans + 1] = v end
    end
    return { subject = id and id.subject or "", sans = sans, tls_version = ctx.tls.version }
  end,
})
local port = assert(server:listen("127.0.0.1:" .. flags.port))
io.stdout:write("listening on ", port, "\n")
io.stdout:flush()
if flags.serve_for ~= "" then
  lgrpc.spawn(function()
    lgrpc.sleep(tonumber(flags.serve_for))
    server:shutdown(1)
  end)
end
server:run()

-- A TLS client: `lua5.4 examples/tls/client.lua --target=localhost:50443 --ca=ca.pem
-- [--cert=client.pem --key=client.key] [--server_host_override=NAME]`.
-- Calls WhoAmI and prints what the server saw; on failure prints the status and exits 1.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local lgrpc = require "lgrpc"

local flags = { target = "localhost:50443", ca = "", cert = "", key = "", server_host_override = "" }
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-([%w_]+)=(.*)$")
  if not k or flags[k] == nil then io.stderr:write("tls client: unknown argument ", a, "\n") os.exit(2) end
  flags[k] = v
end
local function opt(v) return v ~= "" and v or nil end

local pool = assert(lgrpc.proto.load{ "whoami.proto", include = { dir } })
local ch = lgrpc.channel(flags.target, {
  pool = pool,
  tls = {
    ca_file = opt(flags.ca),            -- nil: the system's CA store
    cert_file = opt(flags.cert), key_file = opt(flags.key),
    server_host_override = opt(flags.server_host_override),
  },
})
local reply, st = ch:stub("whoami.WhoAmI"):WhoAmI({}, { timeout = 5 })
ch:close()
if not reply then
  print(tostring(st))
  os.exit(1)
end
print("server saw: " .. (reply.subject ~= "" and reply.subject or "(no client certificate)") ..
  " over " .. reply.tls_version)
for _, san in ipairs(reply.sans) do print("  san: " .. san) end

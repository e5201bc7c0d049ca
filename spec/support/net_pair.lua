-- net_pair.lua — a client and a server lgrpc session joined over Lua strings (no sockets),
-- plus helpers to move bytes until both are quiet and to collect events by type.
local net = require("lgrpc.core").net
local M = {}

function M.new(client_opts, server_opts)
  local p = { client = net.session("client", client_opts), server = net.session("server", server_opts) }
  p.cev, p.sev = {}, {}
  -- moves bytes both ways until nobody has anything to say (or `rounds` is reached)
  function p.pump(rounds)
    for _ = 1, rounds or 1000 do
      local a, b = p.client:send_pending(), p.server:send_pending()
      if a == "" and b == "" then return end
      if a ~= "" then p.server:recv(a) end
      if b ~= "" then p.client:recv(b) end
    end
  end
  -- pumps, then takes the events of both sides (appending to p.cev / p.sev)
  function p.run(rounds)
    p.pump(rounds)
    local ce, se = p.client:events(), p.server:events()
    for _, e in ipairs(ce) do p.cev[#p.cev + 1] = e end
    for _, e in ipairs(se) do p.sev[#p.sev + 1] = e end
    return ce, se
  end
  return p
end

function M.types(events)
  local t = {}
  for i, e in ipairs(events) do t[i] = e.type end
  return t
end

function M.find(events, etype)
  for _, e in ipairs(events) do if e.type == etype then return e end end
end

function M.all(events, etype)
  local t = {}
  for _, e in ipairs(events) do if e.type == etype then t[#t + 1] = e end end
  return t
end

-- A server that echoes every message and finishes with OK on half-close.
function M.echo(events, status_md)
  for _, e in ipairs(events) do
    if e.type == "message" then assert(e.stream:send_message(e.data))
    elseif e.type == "half_close" then assert(e.stream:send_status(0, "", status_md)) end
  end
end

function M.settle()
  -- LuaJIT traces keep the closures they specialised on (and so their upvalues) alive
  if jit then jit.flush() end
  for _ = 1, 3 do collectgarbage("collect") end
  return net.counters()
end

return M

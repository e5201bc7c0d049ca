-- net_emfile.lua — run under a low `ulimit -n` by spec/net_loop_spec.lua: a listener whose
-- pending connections cannot be accepted (EMFILE) must not make the loop spin, and must accept
-- again once descriptors are free. Prints "cpu=SECONDS accepted=N".
local net = require("lgrpc.core").net
local loop = assert(net.loop { backend = arg[2] })
local l = assert(loop:listen("127.0.0.1:0"))
local sessions = {}
local spare = {}
-- eat descriptors up to the limit, keeping a few to give back later
while true do
  local t = loop:connect("127.0.0.1:" .. l:port())
  if not t then break end
  spare[#spare + 1] = t
  if #spare > 200 then break end
end
local accepted = 0
local c0 = os.clock()
local t0 = loop:now()
while loop:now() - t0 < 600 do
  for _, ev in ipairs(loop:poll(50)) do
    if ev.type == "accept" then accepted = accepted + 1; sessions[#sessions + 1] = ev.session end
  end
end
local cpu = os.clock() - c0
-- free descriptors: the listener works again
for i = 1, #spare do spare[i]:abort("freed") end
local before = accepted
t0 = loop:now()
while loop:now() - t0 < 600 and accepted == before do
  for _, ev in ipairs(loop:poll(50)) do
    if ev.type == "accept" then accepted = accepted + 1 end
  end
end
print(string.format("cpu=%.3f accepted_after=%d", cpu, accepted - before))

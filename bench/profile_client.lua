-- bench/profile_client.lua: the client's unary call path alone, for instruction counts. Not part
-- of `make bench`; a tool for work on lgrpc's call layer (issue 11).
--   profile_client.lua ADDRESS CALLS [small|large] [DIR]
-- Makes CALLS Echo.Unary calls with 64 in flight (tasks via lgrpc.spawn, as rpc_client.lua's
-- client-unary rows) against an Echo server at ADDRESS, with the message DIR/SIZE.bin (DIR:
-- bench/out). Prints the client CPU us per call. Instructions per call: run it under
-- `valgrind --tool=callgrind` for two values of CALLS and divide the difference, so that start-up
-- (loading bench.proto, connecting) cancels out:
--   valgrind --tool=callgrind lua5.4 bench/profile_client.lua 127.0.0.1:PORT 1000
--   valgrind --tool=callgrind lua5.4 bench/profile_client.lua 127.0.0.1:PORT 3000
--   (refs(3000) - refs(1000)) / 2000
local here = arg[0]:match("^(.-)[^/]*$")
if here == "" then here = "./" end
package.path = here .. "?.lua;" .. package.path
local timing = require "timing"
local lgrpc = require "lgrpc"

local address, calls = arg[1], tonumber(arg[2] or "")
local size, dir = arg[3] or "small", arg[4] or (here .. "out")
if not address or not calls then
  io.stderr:write("usage: profile_client.lua ADDRESS CALLS [small|large] [DIR]\n")
  os.exit(2)
end
local INFLIGHT = 64

local pool = assert(lgrpc.proto.load{ "bench.proto", include = { here } })
local msg = assert(pool:decode("lgrpc.bench.Sample", assert(timing.read(dir .. "/" .. size .. ".bin"))))
local ch = lgrpc.channel(address, { pool = pool })
local stub = ch:stub("lgrpc.bench.Echo")
assert(stub:Unary(msg, { timeout = 10 }))

local left, done = calls, 0
local c0 = os.clock()
local tasks = {}
for i = 1, INFLIGHT do
  tasks[i] = lgrpc.spawn(function()
    while left > 0 do
      left = left - 1
      local reply, st = stub:Unary(msg)
      if not reply then error(tostring(st)) end
      done = done + 1
    end
  end)
end
for _, t in ipairs(tasks) do assert(t:wait()) end
io.write(string.format("%d %s calls, client CPU %.1f us/call\n", done, size, (os.clock() - c0) * 1e6 / done))
ch:close()

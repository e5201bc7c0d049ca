-- bench/rpc_client.lua: lgrpc's client rows of the rpc section, against the C++ server, run under
-- lua5.4 and LuaJIT; the same measurements as bench/echo_client.cc, in tasks (lgrpc.spawn).
--   rpc_client.lua ADDRESS OUT_DIR SECS [SERVER_PID]
-- Rows (column = this interpreter): client-unary-{small,large} (64 calls in flight: calls/s, client
-- and server CPU us/call), client-latency-small (open loop at 1000 calls/s: p50, p99 us from each
-- call's scheduled start), client-bidi-pipelined-small (one Bidi stream, up to 64 unanswered),
-- client-bidi-pingpong-small, client-server-stream-small (ServerStream calls of 1000): msgs/s.
-- One checked call first (the echo must decode to what was sent). When the call layer is missing
-- every row prints "not available: <reason>".
package.path = (arg[0]:match("^(.-)[^/]*$") or "") .. "?.lua;" .. package.path
local timing = require "timing"

local address, dir, secs, server_pid = arg[1], arg[2], tonumber(arg[3] or "3"), arg[4]
local impl = timing.impl
local ROWS = { "client-unary-small.calls/s", "client-unary-large.calls/s", "client-latency-small.p50-us",
  "client-bidi-pipelined-small.msgs/s", "client-bidi-pingpong-small.msgs/s", "client-server-stream-small.msgs/s" }
local INFLIGHT, RATE, WINDOW, STREAM_COUNT = 64, 1000, 64, 1000

local function unavailable(reason, rows)
  for _, row in ipairs(rows or ROWS) do timing.unavailable("rpc." .. row .. "." .. impl, reason) end
end
local function result(row, metric, v) timing.result("rpc." .. row .. "." .. metric .. "." .. impl, v) end

local ok, lgrpc = pcall(require, "lgrpc")
if not ok then unavailable("require \"lgrpc\": " .. tostring(lgrpc):match("^[^\n]*")); os.exit(0) end
if type(lgrpc) ~= "table" or type(lgrpc.channel) ~= "function" then unavailable("lgrpc.channel is missing"); os.exit(0) end
local here = arg[0]:match("^(.-)[^/]*$")
if here == "" then here = "." end
local pool, err = lgrpc.proto.load{ "bench.proto", include = { here } }
if not pool then unavailable("bench.proto: " .. tostring(err)); os.exit(0) end
local ch = lgrpc.channel(address, { pool = pool })
local stub = ch:stub("lgrpc.bench.Echo")
local TYPE = "lgrpc.bench.Sample"

-- CPU seconds (utime + stime) of another process, from /proc/PID/stat; nil when unreadable.
local ticks_per_s = 100
do
  local p = io.popen("getconf CLK_TCK")
  if p then ticks_per_s = tonumber(p:read("*l")) or 100; p:close() end
end
local function proc_cpu(pid)
  if not pid then return nil end
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  local fields = {}
  for w in s:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = w end
  -- fields[1] is field 3 of stat(5): utime is field 14, stime 15
  return (tonumber(fields[12]) + tonumber(fields[13])) / ticks_per_s
end

-- Deep equality of decoded messages (map order is not preserved by encoding, so bytes may differ).
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local msgs = {}
for _, size in ipairs{ "small", "large" } do
  msgs[size] = assert(pool:decode(TYPE, assert(timing.read(dir .. "/" .. size .. ".bin"))))
  local reply, st = stub:Unary(msgs[size], { timeout = 10 })
  if not reply then
    unavailable("checked Unary call (" .. size .. "): " .. tostring(st)); os.exit(0)
  elseif not same(reply, msgs[size]) then
    unavailable("checked Unary call (" .. size .. "): the echo differs from what was sent"); os.exit(0)
  end
  io.write(string.format("INFO rpc check lgrpc client (%s) %s: grpc-status 0, echo equal\n", impl, size))
end
-- lgrpc.now() is the loop's millisecond clock: the client-latency rows are whole milliseconds.
io.write(string.format("INFO rpc lgrpc client (%s): latencies measured with lgrpc.now(), 1 ms resolution\n", impl))

local function unary_load(size)
  local row = "client-unary-" .. size
  local msg, stop, counting, n, failed, last_err = msgs[size], false, false, 0, 0, nil
  local tasks = {}
  for i = 1, INFLIGHT do
    tasks[i] = lgrpc.spawn(function()
      while not stop do
        local reply, st = stub:Unary(msg)
        if reply then
          if counting then n = n + 1 end
        else
          failed, last_err = failed + 1, st
        end
      end
    end)
  end
  lgrpc.sleep(secs / 10)
  counting = true
  local t0, c0, s0 = lgrpc.now(), os.clock(), proc_cpu(server_pid)
  lgrpc.sleep(secs)
  counting = false
  local t1, c1, s1 = lgrpc.now(), os.clock(), proc_cpu(server_pid)
  stop = true
  for _, t in ipairs(tasks) do t:wait() end
  if failed > 0 or n == 0 then
    return unavailable(string.format("%d calls failed (%s), %d succeeded", failed, tostring(last_err), n), { row .. ".calls/s" })
  end
  result(row, "calls/s", n / (t1 - t0))
  result(row, "client-cpu-us/call", (c1 - c0) * 1e6 / n)
  if s0 and s1 then result(row, "server-cpu-us/call", (s1 - s0) * 1e6 / n) end
end

local function latency()
  local row, msg = "client-latency-small", msgs.small
  local lat, failed, outstanding = {}, 0, 0
  local t0 = lgrpc.now()
  local stop_at, warm = t0 + secs, t0 + secs / 10
  local driver = lgrpc.spawn(function()
    local nxt = t0
    while nxt < stop_at do
      local now = lgrpc.now()
      if now < nxt then lgrpc.sleep(nxt - now) end
      while nxt <= lgrpc.now() and nxt < stop_at do
        local scheduled = nxt
        outstanding = outstanding + 1
        lgrpc.spawn(function()
          local reply = stub:Unary(msg)
          outstanding = outstanding - 1
          if not reply then failed = failed + 1
          elseif scheduled >= warm then lat[#lat + 1] = (lgrpc.now() - scheduled) * 1e6 end
        end)
        nxt = nxt + 1 / RATE
      end
    end
  end)
  driver:wait()
  local give_up = lgrpc.now() + 10
  while outstanding > 0 and lgrpc.now() < give_up do lgrpc.sleep(0.01) end
  if failed > 0 or #lat == 0 then return unavailable(failed .. " calls failed", { row .. ".p50-us" }) end
  table.sort(lat)
  result(row, "p50-us", lat[math.floor(#lat / 2) + 1])
  result(row, "p99-us", lat[math.min(#lat, math.floor(#lat * 99 / 100) + 1)])
end

-- One Bidi stream, one message at a time: send, then wait for its echo.
local function pingpong(row)
  local msg, call = msgs.small, stub:Bidi()
  local t0 = lgrpc.now()
  local warm, stop_at = t0 + secs / 10, t0 + secs * 1.1
  local n, start_t, err = 0, nil, nil
  while true do
    local oks, st = call:send(msg)
    if not oks then err = st; break end
    local reply, rst = call:recv()
    if not reply then err = rst; break end
    local now = lgrpc.now()
    if start_t then n = n + 1 elseif now >= warm then start_t = now end
    if now >= stop_at then
      result(row, "msgs/s", n / (now - start_t))
      break
    end
  end
  call:close_send()
  for _ in call:iter() do end
  local st = call:status()
  if err or (st and st.code ~= 0) then unavailable("stream failed: " .. tostring(err or st), { row .. ".msgs/s" }) end
end

-- One Bidi stream, up to `window` messages sent and not yet answered.
local function bidi(row, window)
  local msg = msgs.small
  local call = stub:Bidi()
  local sent, received, stop, err = 0, 0, false, nil
  local sender = lgrpc.spawn(function()
    while not stop do
      if sent - received < window then
        local oks, st = call:send(msg)
        if not oks then err = st; break end
        sent = sent + 1
      else
        lgrpc.sleep(0) -- yield until the reader catches up
      end
    end
    call:close_send()
  end)
  local t0 = lgrpc.now()
  local warm, stop_at = t0 + secs / 10, t0 + secs * 1.1
  local start_n, start_t
  for _ in call:iter() do
    received = received + 1
    local now = lgrpc.now()
    if not start_t and now >= warm then start_n, start_t = received, now end
    if now >= stop_at and not stop then
      stop = true
      result(row, "msgs/s", (received - (start_n or received)) / (now - (start_t or now)))
    end
  end
  sender:wait()
  local st = call:status()
  if err or (st and st.code ~= 0) or not stop then
    unavailable("stream failed: " .. tostring(err or st), { row .. ".msgs/s" })
  end
end

local function server_stream()
  local row = "client-server-stream-small"
  local req = { sample = msgs.small, count = STREAM_COUNT }
  local t0 = lgrpc.now()
  local received = 0
  while lgrpc.now() < t0 + secs do
    local call = stub:ServerStream(req)
    for _ in call:iter() do received = received + 1 end
    local st = call:status()
    if st.code ~= 0 then return unavailable("ServerStream: " .. tostring(st), { row .. ".msgs/s" }) end
  end
  result(row, "msgs/s", received / (lgrpc.now() - t0))
end

for _, step in ipairs{
  function() unary_load("small") end, function() unary_load("large") end, latency,
  function() bidi("client-bidi-pipelined-small", WINDOW) end,
  function() pingpong("client-bidi-pingpong-small") end, server_stream,
} do
  local okr, e = pcall(step)
  if not okr then io.stderr:write("rpc_client.lua: ", tostring(e), "\n") end
end
ch:close()

-- bench/timing.lua: the timing rule of bench/timing.h, for Lua. An operation runs in batches; a
-- batch grows until it takes at least 0.1 s of process CPU time (os.clock); RUNS batches are
-- timed and the median ns/op is returned. A full GC runs before each batch so one batch does not
-- pay for the garbage of another.
local timing = {}

timing.MIN_BATCH = 0.1
timing.RUNS = 7

-- The interpreter's name as the table prints it.
timing.impl = (type(jit) == "table" and "luajit") or _VERSION:gsub("Lua ", "lua")

function timing.median_ns(op, runs)
  runs = runs or timing.RUNS
  local n = 1
  while true do
    collectgarbage("collect")
    local t0 = os.clock()
    for _ = 1, n do op() end
    local dt = os.clock() - t0
    if dt >= timing.MIN_BATCH / 4 then
      n = math.floor(n * timing.MIN_BATCH / math.max(dt, 1e-6)) + 1
      break
    end
    n = n * 4
  end
  local per = {}
  for r = 1, runs do
    collectgarbage("collect")
    local t0 = os.clock()
    for _ = 1, n do op() end
    per[r] = (os.clock() - t0) * 1e9 / n
  end
  table.sort(per)
  return per[math.floor((runs + 1) / 2)]
end

function timing.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

function timing.write(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return true
end

-- One result line for bench/report.lua.
function timing.result(key, ns)
  io.write(string.format("RESULT %s %.1f\n", key, ns))
  io.flush()
end

-- A row that cannot be measured, with the reason shown in the table.
function timing.unavailable(key, reason)
  reason = tostring(reason):gsub("%s+", " ")
  if #reason > 160 then reason = reason:sub(1, 157) .. "..." end
  io.write(string.format("UNAVAILABLE %s %s\n", key, reason))
  io.flush()
end

return timing

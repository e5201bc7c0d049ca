-- callkit: helpers for the call-layer specs (server, channel, interceptor): the spec proto,
-- in-process servers, child processes with bounded waits, and the live-counter baseline.
local lgrpc = require "lgrpc"

local kit = {}
kit.top = os.getenv("LGRPC_TOP") or "."
kit.lua = rawget(_G, "jit") and "luajit" or "lua5.4"

local pool
function kit.pool()
  if not pool then
    pool = assert(lgrpc.proto.load{ "call_test.proto", include = { kit.top .. "/spec/support" } })
  end
  return pool
end

--- An in-process server for lgrpctest.Echo: returns server, port.
function kit.server(handlers, opts)
  opts = opts or {}
  opts.pool = opts.pool or kit.pool()
  local s = lgrpc.server(opts)
  s:add("lgrpctest.Echo", handlers)
  for _, i in ipairs(opts.interceptors or {}) do s:use(i) end
  local port = assert(s:listen("127.0.0.1:0"))
  return s, port
end

function kit.channel(port, opts)
  opts = opts or {}
  opts.pool = opts.pool or kit.pool()
  return lgrpc.channel("127.0.0.1:" .. port, opts)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a") or f:read("*a")
  f:close()
  return s
end

--- True while process pid runs (a zombie nobody reaped counts as gone).
function kit.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("l") or f:read("*l") or ""
  f:close()
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

--- Starts `interp script args...` as a child (bounded by timeout(1) to `limit` seconds) and
-- waits (at most 10 s, running the loop) for its "listening on PORT" line.
-- Returns { pid, port, kill = fn, output = fn }.
function kit.child(args, limit)
  local out = os.tmpname()
  local cmd = string.format("timeout %d %s > %s 2>&1 & echo $!", limit or 60,
    table.concat(args, " "), out)
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("l") or p:read("*l"))
  p:close()
  local child = { pid = pid, out = out }
  function child.output() return read_file(out) end
  -- the program itself runs under timeout(1): KILL must reach it, not the timeout process
  function child.inner()
    local f = io.open(string.format("/proc/%d/task/%d/children", child.pid, child.pid), "r")
    local text = f and (f:read("a") or f:read("*a")) or ""
    if f then f:close() end
    return tonumber(text:match("%d+"))
  end
  function child.kill(sig)
    if child.pid then
      local target = child.pid
      if sig == "KILL" then target = child.inner() or child.pid end
      os.execute(string.format("kill -%s %d 2>/dev/null", sig or "TERM", target))
      -- the timeout process forwards TERM; wait (bounded) for it to go
      for _ = 1, 100 do
        if not kit.alive(child.pid) then break end
        lgrpc.sleep(0.02)
      end
      child.pid = nil
      os.remove(out)
    end
  end
  local t0 = lgrpc.now()
  while lgrpc.now() - t0 < 10 do
    local port = child.output():match("listening on (%d+)")
    if port then child.port = tonumber(port) return child end
    lgrpc.sleep(0.05)
  end
  local text = child.output()
  child.kill()
  error("child did not start: " .. table.concat(args, " ") .. "\n" .. text)
end

--- A Lua child running an example server on a given port (0: any).
function kit.lua_server(script, port, extra)
  return kit.child({ kit.lua, kit.top .. "/" .. script, "--port=" .. (port or 0), extra or "" })
end

--- The live counters (calls, tasks, timers, holds, sessions, streams, buffered bytes).
function kit.counters()
  -- LuaJIT's compiled traces keep the closures (and so the handles) they specialised on alive
  if jit then jit.flush() end
  collectgarbage()
  collectgarbage()
  return lgrpc.counters()
end

--- Waits (at most `limit` seconds, running the loop) until the counters equal `base`;
-- returns the last counters seen.
function kit.settle(base, limit)
  local t0 = lgrpc.now()
  local c
  repeat
    c = kit.counters()
    local same = true
    for k, v in pairs(base) do if c[k] ~= v then same = false end end
    if same then return c end
    lgrpc.sleep(0.02)
  until lgrpc.now() - t0 > (limit or 5)
  return c
end

--- A port nothing listens on (bound, then closed again).
function kit.free_port()
  local s = lgrpc.server{ pool = kit.pool() }
  local port = assert(s:listen("127.0.0.1:0"))
  s:shutdown(0)
  return port
end

return kit

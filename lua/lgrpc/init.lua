-- lgrpc — gRPC for Lua. `require "lgrpc"` gathers the public API: schema pools, servers,
-- channels, status, metadata, and the loop (run, stop, spawn, sleep) of the default runtime.
local runtime = require "lgrpc.runtime"

local lgrpc = {
  status = require "lgrpc.status",
  metadata = require "lgrpc.metadata",
  runtime = runtime,
}

local lazy = { proto = "lgrpc.proto", auth = "lgrpc.auth", interceptors = "lgrpc.interceptors" }
setmetatable(lgrpc, {
  __index = function(t, k)
    local mod = lazy[k]
    if mod then
      local v = require(mod)
      rawset(t, k, v)
      return v
    end
  end,
})

--- lgrpc.server(opts) -> server (see lgrpc.server)
function lgrpc.server(opts) return require("lgrpc.server").new(opts) end

--- lgrpc.channel(target, opts) -> channel (see lgrpc.channel)
function lgrpc.channel(target, opts)
  if type(target) ~= "string" then error("lgrpc.channel: target \"host:port\" expected", 2) end
  return require("lgrpc.channel").new(target, opts)
end

--- Runs every server and call until no work is left or lgrpc.stop().
function lgrpc.run() return runtime.default():run() end

--- Makes lgrpc.run() (and server:run()) return.
function lgrpc.stop() return runtime.default():stop() end

--- Runs fn(...) in a task: calls made there yield, so many proceed at once in one thread.
-- Returns the task; task:wait() -> true, results... | nil, err.
function lgrpc.spawn(fn, ...)
  if type(fn) ~= "function" then error("lgrpc.spawn: function expected, got " .. type(fn), 2) end
  return runtime.default():spawn(fn, ...)
end

--- Sleeps (yields in a task; runs the loop underneath outside one). In a handler whose call is
-- cancelled, returns nil, status early.
function lgrpc.sleep(seconds)
  if type(seconds) ~= "number" then error("lgrpc.sleep: seconds expected", 2) end
  return runtime.default():sleep(seconds)
end

--- The runtime clock, in seconds (monotonic).
function lgrpc.now() return runtime.default():now() end

--- Live counters: calls (client and server), tasks, timers, plus the transport's sessions,
--- streams and buffered bytes. Each returns to its baseline once everything is closed.
function lgrpc.counters()
  local rt = runtime.default()
  local ntimers = 0
  for _ in pairs(rt.timers) do ntimers = ntimers + 1 end
  local c = {
    client_calls = require("lgrpc.call").live(),
    server_calls = require("lgrpc.server").live_calls(),
    tasks = rt.tasks,
    timers = ntimers,
    holds = rt.holds,
  }
  local ok, core = pcall(require, "lgrpc.core")
  if ok and core.net and core.net.counters then
    for k, v in pairs(core.net.counters()) do c[k] = v end
  end
  return c
end

return lgrpc

-- lgrpc's loop as users see it: lgrpc.spawn, lgrpc.sleep, lgrpc.run, lgrpc.stop, server:run.
local lgrpc = require "lgrpc"
local kit = require "callkit"

describe("lgrpc runtime", function()
  local base
  before_each(function() base = kit.counters() end)
  after_each(function()
    local c = kit.settle(base)
    for _, k in ipairs{ "client_calls", "server_calls", "tasks", "timers", "holds", "sessions" } do
      assert.are.equal(base[k], c[k], "counter " .. k .. " back to baseline")
    end
  end)

  it("runs spawned tasks concurrently until no work is left", function()
    local order = {}
    local t0 = lgrpc.now()
    for i = 1, 3 do
      lgrpc.spawn(function(d)
        lgrpc.sleep(d)
        order[#order + 1] = d
      end, 0.3 - i * 0.1)
    end
    assert.is_true(lgrpc.run())
    assert.are.same({ 0.0, 0.1, 0.2 }, (function()
      local r = {} for i, v in ipairs(order) do r[i] = math.floor(v * 10 + 0.5) / 10 end return r end)())
    assert.is_true(lgrpc.now() - t0 < 0.6)
  end)

  it("returns task results and errors through task:wait()", function()
    local ok_task = lgrpc.spawn(function(a, b) lgrpc.sleep(0.01) return a + b, "x" end, 2, 3)
    local bad_task = lgrpc.spawn(function() error("boom") end)
    local ok, err = bad_task:wait()
    assert.is_nil(ok)
    assert.matches("boom", err)
    assert.are.same({ true, 5, "x" }, { ok_task:wait() })
    assert.is_false(ok_task:alive())
  end)

  it("sleeps outside any task by running the loop underneath", function()
    local ran = false
    lgrpc.spawn(function() ran = true end)
    local t0 = lgrpc.now()
    assert.is_true(lgrpc.sleep(0.05))
    assert.is_true(lgrpc.now() - t0 >= 0.045)
    assert.is_true(ran)
  end)

  it("stops lgrpc.run() and server:run() on lgrpc.stop()", function()
    local srv, port = kit.server{ Unary = function(req)
      lgrpc.spawn(function() lgrpc.sleep(0.01) lgrpc.stop() end)
      return req
    end }
    local ch = kit.channel(port)
    lgrpc.spawn(function() assert(ch:stub("lgrpctest.Echo"):Unary{ n = 1 }) end)
    local t0 = lgrpc.now()
    assert.is_true(srv:run())
    assert.is_true(lgrpc.now() - t0 < 2)
    lgrpc.spawn(function() lgrpc.sleep(0.01) lgrpc.stop() end)
    assert.is_true(lgrpc.run())  -- a listening server would keep it going: stop() ends it
    ch:close()
    srv:shutdown(0)
  end)

  it("lets a plain coroutine.yield() in a task give way to others", function()
    local log = {}
    lgrpc.spawn(function() for i = 1, 3 do log[#log + 1] = "a" .. i coroutine.yield() end end)
    lgrpc.spawn(function() for i = 1, 3 do log[#log + 1] = "b" .. i coroutine.yield() end end)
    lgrpc.run()
    assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
  end)

  it("refuses misuse with clear errors", function()
    assert.has_error(function() lgrpc.spawn(42) end, "lgrpc.spawn: function expected, got number")
    assert.has_error(function() lgrpc.sleep("1") end, "lgrpc.sleep: seconds expected")
    local t = lgrpc.spawn(function() lgrpc.run() end)
    local ok, err = t:wait()
    assert.is_nil(ok)
    assert.matches("the loop is already running", err)
  end)

  it("runs task after task, each with its own arguments, results and errors", function()
    local rt = lgrpc.runtime.default()
    local log, logged = rt.log, {}
    rt.log = function(msg) logged[#logged + 1] = msg end
    local tasks = {}
    for i = 1, 300 do
      if i % 50 == 0 then
        tasks[i] = lgrpc.spawn(function(n) error("task " .. n .. " fails") end, i)
      elseif i % 7 == 0 then
        tasks[i] = lgrpc.spawn(function(...) return select("#", ...) end)
      else
        tasks[i] = lgrpc.spawn(function(a, b, c)
          if a % 3 == 0 then lgrpc.sleep(0) end
          return a, b, c
        end, i, nil, "c" .. i)
      end
      -- a few finish before the next is spawned, the rest together
      if i % 10 == 0 then lgrpc.run() end
    end
    lgrpc.run()
    rt.log = log
    assert.are.equal(6, #logged)
    assert.matches("lgrpc: task failed: .*task 50 fails", logged[1])
    for i = 1, 300 do
      if i % 50 == 0 then
        local ok, err = tasks[i]:wait()
        assert.is_nil(ok)
        assert.matches("task " .. i .. " fails", err)
      elseif i % 7 == 0 then
        assert.are.same({ true, 0 }, { tasks[i]:wait() })
      else
        assert.are.same({ true, i, nil, "c" .. i, n = 4 }, table.pack(tasks[i]:wait()))
      end
      assert.is_false(tasks[i]:alive())
    end
    -- a finished task's arguments are not kept by the runtime
    local weak = setmetatable({}, { __mode = "k" })
    lgrpc.spawn(function(arg) weak[arg] = true end, {})
    lgrpc.run()
    if jit then jit.flush() end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)
end)

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
end)

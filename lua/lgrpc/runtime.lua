-- lgrpc.runtime — the coroutine scheduler under every lgrpc call, over a small driver.
-- Owns: tasks (coroutines lgrpc resumes, always from Lua), parking and waking, timers, the
-- dispatch of driver events to their owners, and the "blocking call outside the loop" rule.
-- Never runs user Lua from a C callback: events only mark state and queue tasks.
--
-- A driver is a table with now() -> seconds, poll(timeout_s | nil) -> array of events,
-- timer(seconds) -> handle (handle:cancel(); fires an event { type = "timer", timer = handle }),
-- wakeup(). `runtime.loop_driver()` is the epoll one over lgrpc.core.net; an OpenResty driver
-- provides the same four functions over cosockets and ngx.timer.
local runtime = {}

local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end
runtime.pack, runtime.unpack = pack, unpack

local PARK = setmetatable({}, { __tostring = function() return "lgrpc.park" end })
-- task.parker of a task blocked in wait_change (it has no values to receive, and is not
-- cancellable like a sleep's)
local CHANGE = setmetatable({}, { __tostring = function() return "lgrpc.wait_change" end })
local NOVALS = { n = 0 }
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_running, co_status = coroutine.running, coroutine.status

---------------------------------------------------------------------------------------------
-- the epoll driver

function runtime.loop_driver()
  local net = require("lgrpc.core").net
  local loop = assert(net.loop())
  local d = { loop = loop, net = net }
  local events = {}   -- one array refilled by every poll (the loop dispatches it before polling again)
  function d.now() return loop:now() / 1000 end
  function d.poll(timeout)
    if timeout then
      local ms = math.ceil(timeout * 1000)
      if ms < 0 then ms = 0 end
      return loop:poll(ms, events)
    end
    return loop:poll(nil, events)
  end
  function d.timer(seconds)
    local ms = math.ceil(seconds * 1000)
    if ms < 0 then ms = 0 end
    return loop:timer(ms)
  end
  function d.wakeup() loop:wakeup() end
  function d.listen(addr, opts) return loop:listen(addr, opts) end
  function d.connect(addr, opts) return loop:connect(addr, opts) end
  function d.close() loop:close() end
  return d
end

---------------------------------------------------------------------------------------------
-- runtimes

local RT = {}
RT.__index = RT

function runtime.new(driver)
  return setmetatable({
    driver = driver,
    queue = {}, qhead = 1, qtail = 0,        -- ready tasks
    owned = setmetatable({}, { __mode = "k" }), -- coroutine -> task
    workers = {},                            -- idle worker coroutines
    tasks = 0,                               -- live tasks
    holds = 0,                               -- other work that keeps run() going
    running = false,
    stopping = false,
    owners = {},                             -- session or listener -> object with :event(ev)
    timers = {},                             -- driver timer handle -> function
    log = function(msg) io.stderr:write(msg, "\n") end,
    iteration = 0,                           -- polls so far
  }, RT)
end

local default
--- The runtime lgrpc.run/spawn/sleep and servers and channels use unless given another.
function runtime.default()
  if not default then default = runtime.new(runtime.loop_driver()) end
  return default
end

function RT:now() return self.driver.now() end

--- Keeps run() going while held (listeners, live calls); release once each.
function RT:hold() self.holds = self.holds + 1 end
function RT:release() self.holds = self.holds - 1 end

function RT:busy()
  return self.qhead <= self.qtail or self.tasks > 0 or self.holds > 0
end

--- Registers the object that receives the events of a session or listener.
function RT:own(handle, owner) self.owners[handle] = owner end
function RT:disown(handle) self.owners[handle] = nil end

local function push(self, task)
  local n = self.qtail + 1
  self.qtail = n
  self.queue[n] = task
end

---------------------------------------------------------------------------------------------
-- tasks

local Task = {}
Task.__index = Task

-- Tasks run in worker coroutines: a worker runs one task's function, keeps its results in
-- task.result, yields DONE and, back in the runtime's pool of idle workers, waits for the next
-- task. A task that fails kills its worker (the traceback is taken from it).
local DONE = setmetatable({}, { __tostring = function() return "lgrpc.task_done" end })
local WORKERS_MAX = 128 -- idle workers kept

local function worker(task)
  while true do
    local fn, args = task.fn, task.args
    task.fn, task.args = nil, nil
    if args then
      task.result = pack(true, fn(unpack(args, 1, args.n)))
    else
      task.result = pack(true, fn())
    end
    -- hold nothing of this task while idle
    task, fn, args = nil, nil, nil
    task = co_yield(DONE)
  end
end

--- Runs fn(...) in a new task (a coroutine the runtime owns); returns the task.
-- task:wait() blocks until it ends and returns true, results... or nil, error.
function RT:spawn(fn, ...)
  if type(fn) ~= "function" then error("lgrpc.spawn: function expected, got " .. type(fn), 2) end
  local co
  local idle = self.workers
  local n = #idle
  if n > 0 then
    co = idle[n]
    idle[n] = nil
  else
    co = co_create(worker)
  end
  local task = setmetatable({ rt = self, done = false, co = co, fn = fn, args = nil,
    result = nil, parker = nil, waiting = nil }, Task)
  if select("#", ...) > 0 then task.args = pack(...) end
  self.owned[co] = task
  self.tasks = self.tasks + 1
  push(self, task)
  return task
end

local function current(self)
  local co = co_running()
  return co and self.owned[co] or nil
end

--- The task running now, or nil outside lgrpc's coroutines.
function RT:current() return current(self) end

local function finish(self, task, res)
  task.done = true
  task.result = res
  self.owned[task.co] = nil
  self.tasks = self.tasks - 1
  if not res[1] then
    task.error = res[2]
    if not task.error_handled then
      self.log("lgrpc: task failed: " .. tostring(res[2]))
    end
  end
  local ws = task.waiters
  if ws then
    task.waiters = nil
    for _, p in ipairs(ws) do self:unpark(p) end
  end
end

local function resume(self, task)
  local co = task.co
  local ok, r
  if task.fn then
    -- the first resume hands the worker its task
    ok, r = co_resume(co, task)
  else
    ok, r = co_resume(co)
  end
  if r == DONE and ok then
    finish(self, task, task.result)
    local idle = self.workers
    local n = #idle
    if n < WORKERS_MAX and co_status(co) == "suspended" then idle[n + 1] = co end
  elseif not ok then
    if task.traceback ~= false then r = debug.traceback(co, tostring(r)) end
    finish(self, task, { false, r, n = 2 })
  elseif co_status(co) == "dead" then
    -- a coroutine that returned: a detached run_now worker whose function has ended
    finish(self, task, task.result or { true, n = 1 })
  elseif r ~= PARK then
    -- a plain coroutine.yield() from user code: let others run, then continue
    push(self, task)
  end
end

-- Pooled workers for run_now: a coroutine that runs fn(a, b), then yields IDLE to wait for
-- the next one. A worker whose fn had to park is "detached": it becomes an ordinary task,
-- returns when fn ends, and is not reused. A pool apart from spawn's workers because a run that
-- ends without waiting must cost no task record, argument pack or result pack: each worker keeps
-- one task record, reused while the worker is idle.
local IDLE = setmetatable({}, { __tostring = function() return "lgrpc.idle" end })
local MAX_IDLE_WORKERS = 64

local function worker_main(w, fn, a, b)
  while true do
    fn(a, b)
    if w.detached then return end
    fn, a, b = nil, nil, nil        -- an idle worker keeps nothing alive
    fn, a, b = coroutine.yield(IDLE)
  end
end

--- Runs fn(a, b) now, in a task (so it may park), reusing an idle coroutine. Returns nil when
-- fn ended without waiting (the common case: no task or coroutine was created for it), or the
-- task it became when it had to wait (the runtime resumes it like any other).
function RT:run_now(fn, a, b)
  local idle = self.idle_workers
  if not idle then idle = {} self.idle_workers = idle end
  local n = #idle
  local w, ok, r
  if n > 0 then
    w = idle[n]
    idle[n] = nil
  else
    w = {}
    w.co = coroutine.create(worker_main)
  end
  local task = w.task
  if not task then
    task = setmetatable({ rt = self, done = false, waiters = {}, co = w.co, traceback = false }, Task)
    w.task = task
  end
  local co = w.co
  self.owned[co] = task
  self.tasks = self.tasks + 1
  if w.started then
    ok, r = coroutine.resume(co, fn, a, b)
  else
    w.started = true
    ok, r = coroutine.resume(co, w, fn, a, b)
  end
  if ok and r == IDLE then
    self.owned[co] = nil
    self.tasks = self.tasks - 1
    if #idle < MAX_IDLE_WORKERS then idle[#idle + 1] = w end
    return nil
  end
  w.detached = true
  if coroutine.status(co) == "dead" then
    finish(self, task, pack(ok, r))
  elseif r ~= PARK then
    push(self, task, pack())       -- a plain coroutine.yield(): continue later
  end
  return task
end

function Task:wait()
  if not self.done then
    self.error_handled = true
    local p = {}
    local ws = self.waiters
    if not ws then ws = {} self.waiters = ws end
    ws[#ws + 1] = p
    self.rt:park(p)
  end
  local r = self.result
  if r[1] then return true, unpack(r, 2, r.n) end
  return nil, r[2]
end

function Task:alive() return not self.done end

---------------------------------------------------------------------------------------------
-- parking: the one blocking primitive

--- Blocks the caller until rt:unpark(p, ...) and returns those values. deadline: absolute
-- runtime seconds, after which p is unparked with (nil, "timeout").
-- In a task: yields. Outside the loop (main thread or any coroutine while the loop is not
-- running): runs the loop underneath until p is unparked. In a foreign coroutine while the loop
-- runs: raises, since nothing would ever resume it.
function RT:park(p, deadline)
  if not p.done then
    local task = current(self)
    if not task and self.running then
      error("lgrpc: blocking call from a coroutine lgrpc does not own " ..
        "(run it with lgrpc.spawn, or in a handler)", 3)
    end
    local timer
    if deadline then
      timer = self:at(deadline, function() self:unpark(p, nil, "timeout") end)
    end
    if task then
      p.task = task
      task.parker = p
      co_yield(PARK)
      task.parker = nil
    else
      self:run_until(function() return p.done end)
    end
    if timer then self:cancel_timer(timer) end
  end
  local v = p.vals
  if not v then return nil, "stopped" end
  return unpack(v, 1, v.n)
end

--- Blocks until rt:changed(obj) is called: the wait/notify of calls and server calls, whose
-- waiters live in obj.waiters (an array, made on the first wait). Callers check their
-- condition again afterwards.
function RT:wait_change(obj)
  local ws = obj.waiters
  if not ws then ws = {} obj.waiters = ws end
  local task = current(self)
  if task then
    -- a task waits as itself: no parking record
    ws[#ws + 1] = task
    task.parker, task.waiting = CHANGE, obj
    co_yield(PARK)
    task.parker, task.waiting = nil, nil
    return
  end
  local p = {}
  ws[#ws + 1] = p
  self:park(p)
end

--- Wakes everything waiting on obj (see wait_change).
function RT:changed(obj)
  local ws = obj.waiters
  if not ws then return end
  local n = #ws
  if n == 0 then return end
  for i = 1, n do
    local w = ws[i]
    ws[i] = nil
    if w.co then
      -- a task in wait_change, unless something else woke it since
      if w.waiting == obj then
        w.waiting = nil
        push(self, w)
      end
    else
      self:unpark(w)
    end
  end
end

--- Wakes what waits on p (at most once; later calls are ignored).
function RT:unpark(p, ...)
  if p.done then return false end
  p.done = true
  if select("#", ...) == 0 then p.vals = NOVALS else p.vals = pack(...) end
  if p.task then push(self, p.task) end
  return true
end

---------------------------------------------------------------------------------------------
-- timers

--- Calls fn (call-layer code, never user Lua) at absolute runtime time t; returns a handle.
function RT:at(t, fn)
  local h = self.driver.timer(t - self:now())
  self.timers[h] = fn
  return h
end

function RT:after(seconds, fn) return self:at(self:now() + seconds, fn) end

function RT:cancel_timer(h)
  if self.timers[h] then
    self.timers[h] = nil
    h:cancel()
  end
end

--- Sleeps seconds (yielding in a task, running the loop outside one). In a handler whose call
-- is cancelled, returns early with nil, status.
function RT:sleep(seconds)
  if type(seconds) ~= "number" then error("lgrpc.sleep: seconds expected", 2) end
  local p = { cancellable = true }
  self:hold()
  local ok, a, b = pcall(self.park, self, p, self:now() + math.max(seconds, 0))
  self:release()
  if not ok then error(a, 2) end
  if a == nil and b == "timeout" then return true end
  return a, b
end

---------------------------------------------------------------------------------------------
-- the loop

local function dispatch(self, ev)
  if ev.type == "timer" then
    local fn = self.timers[ev.timer]
    if fn then
      self.timers[ev.timer] = nil
      fn()
    end
    return
  end
  local owner = (ev.listener and self.owners[ev.listener]) or (ev.session and self.owners[ev.session])
  if owner then owner:event(ev) end
end

local function run_ready(self)
  while self.qhead <= self.qtail do
    local queue, i = self.queue, self.qhead
    local task = queue[i]
    queue[i] = nil
    self.qhead = i + 1
    resume(self, task)
  end
  self.qhead, self.qtail = 1, 0
end

--- Runs the loop until pred() is true (pred nil: until no work is left or stop()).
function RT:run_until(pred)
  local was = self.running
  self.running = true
  local ok, err = pcall(function()
    while true do
      run_ready(self)
      if pred then
        if pred() then return end
        if not self:busy() then
          -- nothing runnable, no call, timer or server left: the wait could never end
          error("lgrpc: blocked waiting with nothing left that could wake it", 0)
        end
      else
        if self.stopping or not self:busy() then return end
      end
      local events = self.driver.poll(self.qhead <= self.qtail and 0 or nil)
      self.iteration = self.iteration + 1
      for i = 1, #events do dispatch(self, events[i]) end
    end
  end)
  self.running = was
  if not ok then error(err, 0) end
end

--- lgrpc.run(): runs every server and call until no work is left or lgrpc.stop().
function RT:run()
  if self.running then error("lgrpc.run: the loop is already running", 2) end
  self.stopping = false
  self:run_until(nil)
  self.stopping = false
  return true
end

function RT:stop()
  self.stopping = true
  self.driver.wakeup()
end

return runtime

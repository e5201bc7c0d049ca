-- lgrpc.channel — a client channel to one target: lazy connection, grpc's connection backoff,
-- connectivity state, new connections after GOAWAY or when stream ids run out, stubs built
-- from a pool's service descriptors, and the client interceptor chain.
-- Never blocks while starting a call; the blocking happens in lgrpc.call's user methods.
local runtime = require "lgrpc.runtime"
local status = require "lgrpc.status"
local metadata = require "lgrpc.metadata"
local call = require "lgrpc.call"
local tlsmod = require "lgrpc.tls"

local channel = {}

local Channel = {}
Channel.__index = Channel
Channel.__name = "lgrpc.channel"

local Conn = {}
Conn.__index = Conn

-- connection-backoff.md
local BACKOFF = { initial = 1.0, multiplier = 1.6, jitter = 0.2, max = 120, min_connect_timeout = 20 }

local KINDS = { unary = true, server_stream = true, client_stream = true, bidi = true }

local function method_kind(m)
  if m.client_streaming and m.server_streaming then return "bidi" end
  if m.client_streaming then return "client_stream" end
  if m.server_streaming then return "server_stream" end
  return "unary"
end
channel.method_kind = method_kind

local function check_interceptor(i, where)
  if type(i) == "function" then return { unary = i, stream = i } end
  if type(i) == "table" and (type(i.unary) == "function" or type(i.stream) == "function") then
    return i
  end
  error(where .. ": an interceptor is a function or a table { unary = fn, stream = fn }", 3)
end

--- lgrpc.channel(target, opts): target "host:port", "[v6]:port", "unix:/path" (a "dns:///"
-- prefix is accepted). opts: pool, interceptors, timeout (default per call), metadata
-- (sent with every call), wait_for_ready, max_recv_msg_size, max_send_msg_size, user_agent,
-- authority, idle_timeout (s, default 1800), backoff = { initial, multiplier, jitter, max,
-- min_connect_timeout }, runtime, credentials (fn(info) -> metadata, run before every call),
-- allow_insecure_credentials (send credentials on a plaintext channel), tls
-- (lgrpc.tls.client_context's options, or true for the system CAs: docs/security.md).
function channel.new(target, opts)
  if type(target) ~= "string" or target == "" then
    error("lgrpc.channel: target \"host:port\" expected", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("lgrpc.channel: options table expected", 2) end
  local addr = target:gsub("^dns:///", ""):gsub("^dns:", "")
  local ch = setmetatable({
    target = target, addr = addr, opts = opts, pool = opts.pool,
    rt = opts.runtime or runtime.default(),
    state_name = "IDLE",
    conn = nil, conns = {},
    pending = {},             -- calls waiting for a ready connection
    state_waiters = {},
    interceptors = {},
    backoff = {},
  }, Channel)
  for k, v in pairs(BACKOFF) do
    ch.backoff[k] = (opts.backoff and opts.backoff[k]) or v
  end
  for _, i in ipairs(opts.interceptors or {}) do
    ch.interceptors[#ch.interceptors + 1] = check_interceptor(i, "lgrpc.channel")
  end
  if opts.metadata ~= nil then
    local md, err = metadata.new(opts.metadata)
    if not md then error("lgrpc.channel: bad metadata: " .. err, 2) end
    ch.default_md = md
  end
  local tls_ctx, server_name
  if opts.tls ~= nil and opts.tls ~= false then
    local err
    tls_ctx, err = tlsmod.client_context(opts.tls, "lgrpc.channel")
    if not tls_ctx then error("lgrpc.channel: tls: " .. err, 2) end
    server_name = type(opts.tls) == "table" and opts.tls.server_host_override or nil
    ch.secure = true
  end
  ch.session_opts = {
    tls = tls_ctx,
    server_name = server_name,
    max_recv_message = opts.max_recv_msg_size,
    max_send_message = opts.max_send_msg_size,
    user_agent = opts.user_agent,
    authority = opts.authority or server_name,
    max_header_list = opts.max_header_list,
    stream_window = opts.stream_window,
    conn_window = opts.conn_window,
    -- an idle connection closes after this long (grpc's channel idle timeout, 30 minutes),
    -- so a channel nobody closes does not keep a socket forever
    idle_timeout = math.floor((opts.idle_timeout or 1800) * 1000),
  }
  return ch
end

---------------------------------------------------------------------------------------------
-- connectivity

local function set_state(ch, s)
  if ch.state_name == s then return end
  ch.state_name = s
  local ws = ch.state_waiters
  ch.state_waiters = {}
  for _, p in ipairs(ws) do ch.rt:unpark(p) end
end

--- "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE" or "SHUTDOWN"; try_to_connect starts
-- connecting an idle channel.
function Channel:state(try_to_connect)
  if try_to_connect and self.state_name == "IDLE" then self:_connect() end
  return self.state_name
end

--- Waits until the state differs from `from` or `timeout` seconds pass: true | false.
function Channel:wait_for_state_change(from, timeout)
  if self.state_name ~= from then return true end
  local p = {}
  self.state_waiters[#self.state_waiters + 1] = p
  self.rt:hold()
  local ok, a, b = pcall(self.rt.park, self.rt, p, timeout and (self.rt:now() + timeout) or nil)
  self.rt:release()
  if not ok then error(a, 2) end
  return not (a == nil and b == "timeout")
end

--- Connects now and waits until READY: true | nil, status (UNAVAILABLE with the reason).
function Channel:connect(timeout)
  local deadline = timeout and (self.rt:now() + timeout)
  while true do
    local s = self:state(true)
    if s == "READY" then return true end
    if s == "SHUTDOWN" then return nil, status.cancelled("channel closed") end
    if s == "TRANSIENT_FAILURE" then
      return nil, status.unavailable(self.last_error or "connection failed")
    end
    local left = deadline and (deadline - self.rt:now())
    if left and left <= 0 then return nil, status.deadline_exceeded("connect timed out") end
    self:wait_for_state_change(s, left)
  end
end

function Channel:_connect()
  if self.state_name == "SHUTDOWN" or (self.conn and not self.conn.draining) then return end
  local rt = self.rt
  local session, err = rt.driver.connect(self.addr, self.session_opts)
  if not session then
    self:_connect_failed(tostring(err))
    return
  end
  -- a whole unary response arrives as one event (transport.md, session:coalesce)
  if session.coalesce then session:coalesce(true) end
  local conn = setmetatable({ ch = self, session = session, calls = {}, ready = false }, Conn)
  self.conn = conn
  self.conns[conn] = true
  rt:own(session, conn)
  set_state(self, "CONNECTING")
  local b = self.backoff
  conn.connect_timer = rt:after(math.max(b.min_connect_timeout, self.backoff_cur or b.initial),
    function()
      conn.connect_timer = nil
      if not conn.ready then
        conn.timed_out = true
        session:close()
      end
    end)
end

function Channel:_connect_failed(reason)
  self.last_error = reason
  local b = self.backoff
  local cur = self.backoff_cur
  if not cur then cur = b.initial else cur = math.min(cur * b.multiplier, b.max) end
  self.backoff_cur = cur
  local wait = cur * (1 + b.jitter * (2 * math.random() - 1))
  set_state(self, "TRANSIENT_FAILURE")
  -- calls that do not wait for ready fail now, with the reason
  local keep = {}
  for _, c in ipairs(self.pending) do
    if c.wait_for_ready then keep[#keep + 1] = c
    else c:_fail(status.unavailable("failed to connect to " .. self.addr .. ": " .. reason)) end
  end
  self.pending = keep
  if self.backoff_timer then self.rt:cancel_timer(self.backoff_timer) end
  self.backoff_timer = self.rt:after(wait, function()
    self.backoff_timer = nil
    if self.state_name ~= "TRANSIENT_FAILURE" then return end
    if #self.pending > 0 then
      self:_connect()
    else
      set_state(self, "IDLE")
    end
  end)
end

--- Whether the channel's connections are secure (TLS): the one place call credentials ask.
function Channel:_secure() return self.secure == true end

--- The authority calls carry (:authority), for call credentials' info.
function Channel:_authority() return self.opts.authority or self.addr end

--- A call wants a stream: open it now, or queue it until the connection is ready.
function Channel:_acquire(c)
  local s = self.state_name
  if s == "SHUTDOWN" then
    c:_fail(status.cancelled("channel closed"))
    return
  end
  if self.conn and self.conn.ready and not self.conn.draining then
    c:_open(self.conn)
    return
  end
  if s == "TRANSIENT_FAILURE" and not c.wait_for_ready then
    c:_fail(status.unavailable("failed to connect to " .. self.addr .. ": " ..
      (self.last_error or "connection failed")))
    return
  end
  self.pending[#self.pending + 1] = c
  if s == "IDLE" or (self.conn and self.conn.draining) then self:_connect() end
end

--- A call is over: drop it from the queue of waiting calls.
function Channel:_forget(c)
  local pending = self.pending
  if pending[1] == nil then return end
  for i, p in ipairs(pending) do
    if p == c then table.remove(self.pending, i) return end
  end
end

--- This connection takes no new streams (GOAWAY received, stream ids exhausted).
function Channel:_retire(conn)
  if conn.draining then return end
  conn.draining = true
  if self.conn == conn then
    self.conn = nil
    if self.state_name ~= "SHUTDOWN" then set_state(self, "IDLE") end
  end
  if next(conn.calls) == nil then conn.session:shutdown() end
end

function Conn:event(ev)
  local ch, t = self.ch, ev.type
  if ev.stream then
    local c = self.calls[ev.stream]
    if c then c:_event(ev) end
    if self.draining and next(self.calls) == nil and not self.shut then
      self.shut = true
      self.session:shutdown()
    end
    return
  end
  if t == "connect" then
    self.ready = true
    if self.connect_timer then ch.rt:cancel_timer(self.connect_timer) self.connect_timer = nil end
    ch.backoff_cur = nil
    ch.last_error = nil
    if ch.conn == self then
      set_state(ch, "READY")
      local pending = ch.pending
      ch.pending = {}
      for _, c in ipairs(pending) do c:_open(self) end
    end
  elseif t == "goaway" then
    ch:_retire(self)
  elseif t == "closed" then
    if self.connect_timer then ch.rt:cancel_timer(self.connect_timer) self.connect_timer = nil end
    ch.rt:disown(self.session)
    ch.conns[self] = nil
    local reason = ev.error or "connection closed"
    if self.timed_out then reason = "connect timed out" end
    for _, c in pairs(self.calls) do
      c:_cancel(status.unavailable("connection to " .. ch.addr .. " closed: " .. reason))
    end
    self.calls = {}
    if ch.conn == self then
      ch.conn = nil
      if ch.state_name == "SHUTDOWN" then return end
      if not self.ready then
        ch:_connect_failed(reason)
      else
        set_state(ch, "IDLE")
        if #ch.pending > 0 then ch:_connect() end
      end
    end
  end
end

--- Closes every connection; calls in flight end CANCELLED. The channel cannot be used again.
function Channel:close()
  if self.state_name == "SHUTDOWN" then return true end
  set_state(self, "SHUTDOWN")
  if self.backoff_timer then self.rt:cancel_timer(self.backoff_timer) self.backoff_timer = nil end
  local pending = self.pending
  self.pending = {}
  for _, c in ipairs(pending) do c:_fail(status.cancelled("channel closed")) end
  for conn in pairs(self.conns) do
    for _, c in pairs(conn.calls) do c:_cancel(status.cancelled("channel closed")) end
    conn.calls = {}
    conn.session:close()
  end
  self.conn = nil
  return true
end
Channel.__close = Channel.close

---------------------------------------------------------------------------------------------
-- calls, interceptors and stubs

local RAW_CODEC = {
  encode = function(msg)
    if type(msg) ~= "string" then return nil, "raw call: message must be a string" end
    return msg
  end,
  decode = function(bytes) return bytes end,
}

local function pool_codec(pool, input_type, output_type, dopts)
  return {
    input_type = (input_type:gsub("^%.", "")), output_type = (output_type:gsub("^%.", "")),
    encode = function(msg)
      if type(msg) ~= "table" then return nil, "message table expected, got " .. type(msg) end
      return pool:encode(input_type, msg)
    end,
    decode = function(bytes) return pool:decode(output_type, bytes, dopts) end,
  }
end

local function call_opts(ch, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("lgrpc: call options must be a table", 3) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.timeout == nil then o.timeout = ch.opts.timeout end
  if o.wait_for_ready == nil then o.wait_for_ready = ch.opts.wait_for_ready end
  if ch.default_md then
    local md = ch.default_md:copy()
    if o.metadata ~= nil then
      local extra, err = metadata.new(o.metadata)
      if not extra then error("lgrpc: bad call metadata: " .. err, 3) end
      md:merge(extra)
    end
    o.metadata = md
  end
  return o
end

local NO_OPTS = {}

-- The options a call without interceptors runs with: the caller's own table (call.new only
-- reads it) unless the channel has defaults to merge into a copy.
local function direct_opts(ch, opts)
  local co = ch.opts
  if co.timeout == nil and co.wait_for_ready == nil and not ch.default_md then
    if opts == nil then return NO_OPTS end
    if type(opts) ~= "table" then error("lgrpc: call options must be a table", 3) end
    return opts
  end
  return call_opts(ch, opts)
end

-- The unary call at the end of the interceptor chain (or the whole of it without interceptors).
local function unary(ch, path, codec, r, o)
  local c = call.new(ch, path, "unary", codec, o)
  local ok, st = c:send(r)
  if not ok and c:done() then return nil, c:status(), c end
  if not ok then c:cancel() return nil, st, c end
  c:close_send()
  local msg
  msg, st = c:recv()
  if msg == nil then return nil, st, c end
  st = c:status()
  if st.code ~= status.OK then return nil, st, c end
  return msg, st, c
end

-- Sends the request of a server-streaming call; returns the call (and an error).
local function start_stream(c, kind, req)
  if kind == "server_stream" then
    local ok, err = c:send(req)
    if not ok and not c:done() then c:cancel() return c, err end
    c:close_send()
  end
  return c
end

-- Runs the interceptor chain: each gets (request, opts, info, next).
local function invoke_chain(list, which, info, final, req, opts)
  local n = #list
  local function step(i, r, o)
    while i <= n and not list[i][which] do i = i + 1 end
    if i > n then return final(r, o) end
    return list[i][which](r, o, info, function(r2, o2) return step(i + 1, r2, o2 or o) end)
  end
  return step(1, req, opts)
end

local intercepted

--- The call every stub method makes. kind: "unary" | "server_stream" | "client_stream" | "bidi".
-- unary: returns response, status, call (nil, status, call on failure); server_stream: sends the
-- request and returns the call; the streaming kinds return the call for send/recv.
function Channel:_invoke(path, kind, codec, req, opts)
  if self.interceptors[1] ~= nil then return intercepted(self, path, kind, codec, req, opts) end
  -- no chain: no info record, no closures, no copy of the options (and nothing LuaJIT cannot
  -- compile: this function makes no closure)
  opts = direct_opts(self, opts)
  if kind == "unary" then return unary(self, path, codec, req, opts) end
  return start_stream(call.new(self, path, kind, codec, opts), kind, req)
end

-- _invoke through the channel's interceptors.
function intercepted(self, path, kind, codec, req, opts)
  opts = call_opts(self, opts)
  local info = { method = path, kind = kind, channel = self,
    input_type = codec.input_type, output_type = codec.output_type }
  if kind == "unary" then
    return invoke_chain(self.interceptors, "unary", info, function(r, o)
      return unary(self, path, codec, r, o)
    end, req, opts)
  end
  local c, st = invoke_chain(self.interceptors, "stream", info, function(_, o)
    return call.new(self, path, kind, codec, o)
  end, nil, opts)
  if c == nil then return nil, st end
  return start_stream(c, kind, req)
end

--- A raw call by full method path with byte-string messages: ch:call("/pkg.S/M", kind, req, opts)
function Channel:call(path, kind, req, opts)
  if type(path) ~= "string" or not path:match("^/[^/]+/[^/]+$") then
    error("lgrpc: method path \"/package.Service/Method\" expected", 2)
  end
  kind = kind or "unary"
  if not KINDS[kind] then error("lgrpc: unknown call kind " .. tostring(kind), 2) end
  return self:_invoke(path, kind, RAW_CODEC, req, opts)
end

--- ch:stub("pkg.Service") -> stub with one method per rpc:
-- unary `stub:M(req, opts)` -> resp, status, call; server streaming `stub:M(req, opts)` -> call;
-- client streaming and bidi `stub:M(opts)` -> call.
function Channel:stub(service_name)
  local pool = self.pool
  if not pool then error("lgrpc: channel:stub needs a channel created with { pool = ... }", 2) end
  if type(service_name) ~= "string" then error("lgrpc: service name expected", 2) end
  local svc = pool:service(service_name)
  if not svc then error("lgrpc: unknown service " .. service_name, 2) end
  local full = service_name:gsub("^%.", "")
  local stub = { channel = self, service = full }
  for _, m in ipairs(svc.method or {}) do
    local path = "/" .. full .. "/" .. m.name
    local kind = method_kind(m)
    local codec = pool_codec(pool, m.input_type, m.output_type, self.opts.decode)
    if kind == "unary" or kind == "server_stream" then
      stub[m.name] = function(_, req, opts) return self:_invoke(path, kind, codec, req, opts) end
    else
      stub[m.name] = function(_, opts) return self:_invoke(path, kind, codec, nil, opts) end
    end
  end
  return stub
end

return channel

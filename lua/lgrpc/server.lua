-- lgrpc.server — a gRPC server: services from a pool's descriptors, one task per call, the
-- server interceptor chain, request cardinality, deadlines, cancellation, graceful shutdown.
-- Handlers and interceptors run only in tasks the runtime owns; transport events only mark
-- call state and wake those tasks.
local runtime = require "lgrpc.runtime"
local status = require "lgrpc.status"
local metadata = require "lgrpc.metadata"
local tlsmod = require "lgrpc.tls"

local server = {}

local Server = {}
Server.__index = Server
Server.__name = "lgrpc.server"

local SCall = {}       -- one server call (internal)
SCall.__index = SCall
local Ctx = {}         -- the handler's context
-- ctx.metadata is built on first use: most handlers never read it
Ctx.__index = function(ctx, k)
  if k == "metadata" then
    local raw = rawget(ctx, "_raw_md")
    local md = raw and metadata.from_table(raw) or metadata.new()
    rawset(ctx, "metadata", md)
    return md
  end
  return Ctx[k]
end
local WEAK_KEYS = { __mode = "k" }
local Stream = {}      -- what streaming handlers get
Stream.__index = Stream
local Conn = {}
Conn.__index = Conn

local INBOX_PAUSE_BYTES = 256 * 1024
local INBOX_PAUSE_COUNT = 16
local SEND_HIGH_WATER = 64 * 1024

local live_calls = 0
function server.live_calls() return live_calls end

local function method_kind(m)
  if m.client_streaming and m.server_streaming then return "bidi" end
  if m.client_streaming then return "client_stream" end
  if m.server_streaming then return "server_stream" end
  return "unary"
end

local function check_interceptor(i)
  if type(i) == "function" then return { unary = i, stream = i } end
  if type(i) == "table" and (type(i.unary) == "function" or type(i.stream) == "function") then
    return i
  end
  error("lgrpc.server:use: an interceptor is a function or a table { unary = fn, stream = fn }", 3)
end

--- lgrpc.server(opts): opts: pool, decode (options for pool:decode, e.g. { int64 = "string" }),
-- max_recv_msg_size (default 4 MiB), max_send_msg_size,
-- max_concurrent_streams, stream_window, conn_window, idle_timeout (s), runtime,
-- log (function(msg), default stderr), tls (lgrpc.tls.server_context's options: docs/security.md).
function server.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("lgrpc.server: options table expected", 2) end
  local rt = opts.runtime or runtime.default()
  local tls_ctx
  if opts.tls ~= nil then
    local err
    tls_ctx, err = tlsmod.server_context(opts.tls, "lgrpc.server")
    if not tls_ctx then error("lgrpc.server: tls: " .. err, 2) end
  end
  return setmetatable({
    tls_ctx = tls_ctx,
    opts = opts, pool = opts.pool, rt = rt,
    methods = {},          -- "/pkg.Svc/M" -> { kind, codec, handler, info }
    services = {},
    interceptors = {},
    listeners = {},
    conns = {},
    calls = {},            -- live SCall -> true
    ncalls = 0,
    log = opts.log or rt.log,
    session_opts = {
      max_recv_message = opts.max_recv_msg_size,
      max_send_message = opts.max_send_msg_size,
      max_concurrent_streams = opts.max_concurrent_streams,
      stream_window = opts.stream_window,
      conn_window = opts.conn_window,
      max_header_list = opts.max_header_list,
      idle_timeout = opts.idle_timeout and math.floor(opts.idle_timeout * 1000),
    },
  }, Server)
end

--- server:add("pkg.Service", { Method = handler, ... }): handlers by rpc name.
-- unary fn(req, ctx) -> resp | nil, status; server streaming fn(req, stream, ctx);
-- client streaming fn(stream, ctx) -> resp | nil, status; bidi fn(stream, ctx).
function Server:add(service_name, impl)
  if type(service_name) ~= "string" then error("lgrpc.server:add: service name expected", 2) end
  if type(impl) ~= "table" then error("lgrpc.server:add: table of handlers expected", 2) end
  local pool = self.pool
  if not pool then error("lgrpc.server:add: the server needs { pool = ... }", 2) end
  local svc = pool:service(service_name)
  if not svc then error("lgrpc.server:add: unknown service " .. service_name, 2) end
  local full = service_name:gsub("^%.", "")
  local known = {}
  for _, m in ipairs(svc.method or {}) do known[m.name] = m end
  for name, fn in pairs(impl) do
    if not known[name] then
      error("lgrpc.server:add: service " .. full .. " has no method " .. tostring(name), 2)
    end
    if type(fn) ~= "function" then
      error("lgrpc.server:add: handler for " .. name .. " must be a function", 2)
    end
  end
  self.services[full] = true
  for name, m in pairs(known) do
    local path = "/" .. full .. "/" .. name
    local kind = method_kind(m)
    local it, ot = m.input_type, m.output_type
    local dopts = self.opts.decode
    self.methods[path] = {
      kind = kind, handler = impl[name], path = path,
      streaming_in = kind == "client_stream" or kind == "bidi",
      info = { method = path, service = full, name = name, kind = kind, server = self,
        input_type = (it:gsub("^%.", "")), output_type = (ot:gsub("^%.", "")) },
      decode = function(bytes) return pool:decode(it, bytes, dopts) end,
      encode = function(msg)
        if type(msg) ~= "table" then return nil, "message table expected, got " .. type(msg) end
        return pool:encode(ot, msg)
      end,
    }
  end
  return self
end

--- Adds a server interceptor: fn(request_or_stream, ctx, info, next) or { unary =, stream = }.
-- unary: fn(request, ctx, info, next) where next(request, ctx) -> response, status;
-- streaming: fn(stream, ctx, info, next) where next(stream, ctx) runs the handler (wrap
-- stream:send / stream:recv to see the messages).
function Server:use(i)
  self.interceptors[#self.interceptors + 1] = check_interceptor(i)
  return self
end

--- server:listen("host:port") -> port | nil, err. Port 0 picks a free one.
function Server:listen(addr, opts)
  if type(addr) ~= "string" then error("lgrpc.server:listen: address \"host:port\" expected", 2) end
  if self.closing then return nil, "server is shut down" end
  local o = {}
  for k, v in pairs(self.session_opts) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  o.tls = self.tls_ctx
  local l, err = self.rt.driver.listen(addr, o)
  if not l then return nil, err end
  self.listeners[#self.listeners + 1] = l
  self.rt:own(l, self)
  self.rt:hold()
  return l:port()
end

--- server:reload_tls(tls_opts) -> true | nil, err: new connections use the new certificate,
-- key and client CAs; connections already up continue with the old ones.
function Server:reload_tls(opts)
  if not self.tls_ctx then error("lgrpc.server:reload_tls: the server was not started with tls", 2) end
  local ctx, err = tlsmod.server_context(opts, "lgrpc.server:reload_tls")
  if not ctx then return nil, err end
  self.tls_ctx = ctx
  for _, l in ipairs(self.listeners) do
    if l.set_tls then l:set_tls(ctx) end
  end
  return true
end

--- The port of the first listener.
function Server:port()
  return self.listeners[1] and self.listeners[1]:port()
end

--- Runs the loop until this server is shut down (or lgrpc.stop()).
function Server:run()
  local rt = self.rt
  if rt.running then error("lgrpc.server:run: the loop is already running", 2) end
  rt.stopping = false
  rt:run_until(function() return self.closed or rt.stopping end)
  rt.stopping = false
  return true
end

-- listener events: new connections
function Server:event(ev)
  if ev.type ~= "accept" then return end
  local conn = setmetatable({ server = self, session = ev.session, peer = ev.peer, calls = {} },
    Conn)
  self.conns[conn] = true
  self.rt:own(ev.session, conn)
  if ev.session.coalesce then ev.session:coalesce(true) end   -- one event per unary request
  if self.closing then ev.session:shutdown(0) end
end

---------------------------------------------------------------------------------------------
-- connections and call events

function Conn:event(ev)
  local t = ev.type
  if t == "request" then
    self.server:_start(self, ev)
  elseif ev.stream then
    local c = self.calls[ev.stream:id()]
    if c then c:_event(ev) end
  elseif t == "closed" then
    local srv = self.server
    if ev.error and ev.error:find("^TLS") then
      -- a refused handshake (bad or missing client certificate, timeout) or a TLS failure
      srv.log("lgrpc.server: connection from " .. tostring(self.peer) .. ": " .. ev.error)
    end
    srv.rt:disown(self.session)
    srv.conns[self] = nil
    for _, c in pairs(self.calls) do
      c:_cancelled(status.unavailable("connection closed"))
    end
    self.calls = {}
    srv:_changed()
  end
end

function Server:_changed()
  local ws = self.waiters
  if ws then
    self.waiters = nil
    for _, p in ipairs(ws) do self.rt:unpark(p) end
  end
end

function Server:_start(conn, ev)
  local stream = ev.stream
  local m = self.methods[ev.path]
  if not m then
    local svc, name = tostring(ev.path):match("^/([^/]+)/([^/]+)$")
    local msg
    if svc and self.services[svc] then
      msg = "unknown method " .. name .. " for service " .. svc
    elseif svc then
      msg = "unknown service " .. svc
    else
      msg = "malformed method name " .. tostring(ev.path)
    end
    stream:send_status(status.UNIMPLEMENTED, msg)
    return
  end
  if not m.handler then
    stream:send_status(status.UNIMPLEMENTED, "method " .. m.path .. " is not implemented")
    return
  end
  local rt = self.rt
  if conn.tls_info == nil then conn.tls_info = self.tls_ctx and conn.session.tls and conn.session:tls() or false end
  -- A server call. Kept within 16 fields for a unary call (one hash allocation): the inbox
  -- (inbox, ihead, itail, inbox_bytes) and `waiters` are made when first needed.
  local data = ev.data   -- the transport coalesced the first message (and maybe the half-close)
  local c = setmetatable({
    server = self, conn = conn, stream = stream, id = stream:id(), m = m,
    first = data, nrecv = data and 1 or 0, recv_bytes = data and #data or 0,
    half_closed = ev.half_close, nsent = 0, sent_bytes = 0,
  }, SCall)
  local tls_info = conn.tls_info
  local ctx = setmetatable({
    method = m.path, service = m.info.service, method_name = m.info.name,
    peer = conn.peer, authority = ev.authority, user_agent = ev.user_agent,
    _raw_md = ev.metadata,
    encoding = ev.encoding,
    tls = tls_info or nil,
    peer_identity = tls_info and tls_info.peer_identity or nil,
    _call = c,
  }, Ctx)
  if ev.timeout then ctx.deadline = rt:now() + ev.timeout / 1000 end
  c.ctx = ctx
  conn.calls[c.id] = c
  self.calls[c] = true
  self.ncalls = self.ncalls + 1
  live_calls = live_calls + 1
  -- The call runs in a pooled coroutine, at once when it can run to the end: a unary or
  -- server-streaming call waits (without a task) until its request message and half-close are
  -- in, or it ends. Only a call that has to wait while running (a streaming request, a handler
  -- that sleeps or calls out) becomes a task the runtime resumes later.
  if (m.kind == "unary" or m.kind == "server_stream") and not c.half_closed and c.nrecv < 2 then
    c.deferred = true
  else
    c.task = rt:run_now(SCall._run, c)
  end
end

-- starts a deferred call once its request is complete or the call has ended
local function start_deferred(c)
  if c.half_closed or c.nrecv >= 2 or c.finished or c.cancel_status then
    c.deferred = nil
    c.task = c.server.rt:run_now(SCall._run, c)
  end
end

-- the call's wait/notify (rt:wait_change / rt:changed over c.waiters, made on first wait)
local function wait_change(c)
  if not c.waiters then c.waiters = {} end
  c.server.rt:wait_change(c)
end
local function changed(c)
  if c.waiters then c.server.rt:changed(c) end
end

function SCall:_event(ev)
  local t = ev.type
  if t == "message" then
    self.nrecv = self.nrecv + 1
    self.recv_bytes = self.recv_bytes + #ev.data
    if not self.inbox then self.inbox, self.ihead, self.itail, self.inbox_bytes = {}, 1, 0, 0 end
    self.itail = self.itail + 1
    self.inbox[self.itail] = ev.data
    self.inbox_bytes = self.inbox_bytes + #ev.data
    -- backpressure for streaming requests only: a unary request must let its half-close in
    local waiting = self.itail - self.ihead + 1
    if not self.paused and not self.finished and self.m.streaming_in and
        (waiting >= INBOX_PAUSE_COUNT or (waiting >= 2 and self.inbox_bytes >= INBOX_PAUSE_BYTES)) then
      self.paused = true
      self.stream:pause()
    end
    if self.deferred then return start_deferred(self) end
  elseif t == "half_close" then
    self.half_closed = true
    if self.deferred then return start_deferred(self) end
  elseif t == "cancel" then
    self.finished = true
    local code = status.code_number(ev.status) or status.CANCELLED
    local d = self.ctx.deadline
    if code == status.CANCELLED and d and d - self.server.rt:now() < 0.01 then
      -- the client gave up at the deadline (its timer and ours race): that is the deadline
      self:_cancelled(status.deadline_exceeded("deadline exceeded"))
      return
    end
    self:_cancelled(status.new(code, ev.message or "call cancelled by the client"))
    return
  elseif t == "deadline" then
    if not self.finished then
      self.finished = true
      self.stream:send_status(status.DEADLINE_EXCEEDED, "deadline exceeded")
    end
    self:_cancelled(status.deadline_exceeded("deadline exceeded"))
    return
  end
  changed(self)
end

-- the call ended without the handler's status: wake everything that waits on it
function SCall:_cancelled(st)
  if not self.cancel_status then
    self.cancel_status = st
    self.finished = true
    self.ctx:_cancel(st)
  end
  if self.deferred then return start_deferred(self) end
  changed(self)
end

-- Sends the final status (once), with pending headers and trailers. Details that cannot be
-- encoded (a type the pool does not know) are logged and left out: code and message still go.
function SCall:_status(st)
  if self.finished then return end
  self.finished = true
  if self.header_md and not self.headers_sent then
    self.headers_sent = true
    self.stream:send_headers(self.header_md:to_table())
  end
  local trailers = self.trailer_md and self.trailer_md:to_table() or nil
  local bin, err = status.encode_details(st, self.server.pool)
  if err then
    self.server.log("lgrpc: " .. self.m.path .. ": status details not sent: " .. err)
    st = status.new(st.code, st.message)
  end
  self.sent_status = st
  self.stream:send_status(st.code, st.message, trailers, bin)
end

local function flush_headers(c)
  if not c.headers_sent then
    c.headers_sent = true
    if c.header_md then c.stream:send_headers(c.header_md:to_table()) end
  end
end

function SCall:_send(msg)
  if self.finished then
    return nil, self.cancel_status or status.failed_precondition("the call has already ended")
  end
  local bytes, err = self.m.encode(msg)
  if not bytes then return nil, status.internal("cannot encode response: " .. tostring(err)) end
  flush_headers(self)
  local ok, buffered = self.stream:send_message(bytes)
  if not ok then
    local st = require("lgrpc.call").status_from_error(buffered)
    return nil, st
  end
  self.nsent = self.nsent + 1
  self.sent_bytes = self.sent_bytes + #bytes
  while buffered and buffered > SEND_HIGH_WATER and not self.finished do
    wait_change(self)
    buffered = self.stream:buffered()
  end
  if self.cancel_status then return nil, self.cancel_status end
  return true
end

function SCall:_undecodable(err)
  local st = status.internal("cannot decode request: " .. tostring(err))
  self:_status(st)
  self:_cancelled(st)
  return nil, st
end

-- msg | nil (end of requests) | nil, status (cancelled, undecodable)
function SCall:_recv()
  while true do
    local bytes = self.first
    if bytes then
      self.first = nil
      local msg, err = self.m.decode(bytes)
      if msg == nil then return self:_undecodable(err) end
      return msg
    end
    if self.inbox and self.ihead <= self.itail then
      bytes = self.inbox[self.ihead]
      self.inbox[self.ihead] = nil
      self.ihead = self.ihead + 1
      self.inbox_bytes = self.inbox_bytes - #bytes
      if self.paused and self.ihead > self.itail then
        self.paused = false
        if not self.finished then self.stream:resume() end
      end
      local msg, err = self.m.decode(bytes)
      if msg == nil then return self:_undecodable(err) end
      return msg
    end
    if self.cancel_status then return nil, self.cancel_status end
    if self.half_closed then return nil end
    wait_change(self)
  end
end

local function invoke_chain(list, which, info, final, a, ctx)
  local n = #list
  local function step(i, x, cx)
    while i <= n and not list[i][which] do i = i + 1 end
    if i > n then return final(x, cx) end
    return list[i][which](x, cx, info, function(x2, c2) return step(i + 1, x2, c2 or cx) end)
  end
  return step(1, a, ctx)
end

-- Error handler for handlers and interceptors: a raised status passes through; any other error
-- keeps the traceback of where it was raised, for the server's log.
local RAISED = {}
local function on_error(e)
  if status.is(e) then return e end
  return setmetatable({ text = debug.traceback(tostring(e), 2) }, RAISED)
end

-- How a handler's results (or raised value) become the call's status.
local function result_status(c, ok, r1, r2)
  if not ok then
    if status.is(r1) then return r1 end
    local text = getmetatable(r1) == RAISED and r1.text or tostring(r1)
    c.server.log("lgrpc: handler " .. c.m.path .. " failed: " .. text)
    return status.unknown("unexpected error in handler")
  end
  if status.is(r1) then return r1 end
  if r1 == nil and r2 ~= nil then
    if status.is(r2) then return r2 end
    return status.unknown(tostring(r2))
  end
  return nil
end

function SCall:_run()
  local m, ctx, srv = self.m, self.ctx, self.server
  local kind = m.kind
  local st
  if kind == "unary" or kind == "server_stream" then
    -- exactly one request message, then the half-close
    while not self.cancel_status and not self.half_closed and self.nrecv < 2 do
      wait_change(self)
    end
    if self.cancel_status then return self:_done() end
    if self.nrecv ~= 1 then
      self:_status(status.unimplemented((self.nrecv == 0 and "no request message" or
        "more than one request message") .. " for " .. kind .. " method " .. m.path))
      return self:_done()
    end
  end
  local ok, r1, r2
  if kind == "unary" then
    local req, err = self:_recv()
    if req == nil then return self:_done(err) end
    local ics = srv.interceptors
    if ics[1] == nil then
      ok, r1, r2 = xpcall(m.handler, on_error, req, ctx)
    else
      ok, r1, r2 = xpcall(invoke_chain, on_error, ics, "unary", m.info, function(rq, cx)
        return m.handler(rq, cx)
      end, req, ctx)
    end
    st = result_status(self, ok, r1, r2)
    if not st then
      if r1 == nil then
        st = status.internal("handler for " .. m.path .. " returned no response")
      else
        local sent, e = self:_send(r1)
        if not sent then st = e else st = status.ok() end
      end
    end
  else
    local stream = setmetatable({ _call = self, ctx = ctx }, Stream)
    ok, r1, r2 = xpcall(invoke_chain, on_error, srv.interceptors, "stream", m.info, function(s, cx)
      if kind == "server_stream" then
        local req, err = s:recv()
        if req == nil then return nil, err or status.unimplemented("no request message") end
        return m.handler(req, s, cx)
      end
      return m.handler(s, cx)
    end, stream, ctx)
    st = result_status(self, ok, r1, r2)
    if not st then
      if kind == "client_stream" then
        if r1 == nil then
          st = status.internal("handler for " .. m.path .. " returned no response")
        else
          local sent, e = self:_send(r1)
          if not sent then st = e else st = status.ok() end
        end
      else
        st = status.ok()
      end
    end
  end
  self:_status(st)
  return self:_done()
end

function SCall:_done()
  if not self.finished then self.finished = true self.stream:reset(8) end
  if self.conn.calls[self.id] == self then self.conn.calls[self.id] = nil end
  local srv = self.server
  if srv.calls[self] then
    srv.calls[self] = nil
    srv.ncalls = srv.ncalls - 1
    live_calls = live_calls - 1
  end
  local ctx = self.ctx
  if not ctx._cancel_status then ctx:_end() end
  self.inbox, self.first = nil, nil
  srv:_changed()
  local hooks = self.ctx._on_done
  if hooks then
    self.ctx._on_done = nil
    local final = self.sent_status or self.cancel_status or status.cancelled("the call has ended")
    for _, fn in ipairs(hooks) do
      local ok, e = pcall(fn, final)
      if not ok then srv.log("lgrpc: " .. self.m.path .. ": on_done hook failed: " .. tostring(e)) end
    end
  end
end

---------------------------------------------------------------------------------------------
-- the handler's context

--- The connection's security, as grpc's AuthContext names it: transport_security_type
-- ("ssl" | "insecure"), x509_common_name, x509_subject_alternative_name, x509_pem_cert,
-- peer_identity (the table of ctx.peer_identity), tls_version ...
function Ctx:auth_context()
  return tlsmod.auth_context(self.tls)
end

--- Adds response header metadata (sent before the first response message).
function Ctx:set_header(md)
  local c = self._call
  if c.headers_sent then return nil, "headers already sent" end
  c.header_md = c.header_md or metadata.new()
  local ok, err = c.header_md:merge(md)
  if not ok then error("lgrpc: ctx:set_header: " .. err, 2) end
  return true
end

--- Sends the response headers now.
function Ctx:send_headers(md)
  if md then self:set_header(md) end
  local c = self._call
  if c.finished then return nil, c.cancel_status or status.cancelled("call ended") end
  flush_headers(c)
  return true
end

--- Adds trailer metadata (sent with the status).
function Ctx:set_trailer(md)
  local c = self._call
  c.trailer_md = c.trailer_md or metadata.new()
  local ok, err = c.trailer_md:merge(md)
  if not ok then error("lgrpc: ctx:set_trailer: " .. err, 2) end
  return true
end

--- Runs fn(status) once the call is over, with the status actually sent to the client (or
-- the cancellation: client reset, deadline, connection gone). Hooks run in the handler's task,
-- after the status is out; an error in one is logged.
function Ctx:on_done(fn)
  if type(fn) ~= "function" then error("lgrpc: ctx:on_done: function expected", 2) end
  local hooks = self._on_done
  if not hooks then hooks = {} self._on_done = hooks end
  hooks[#hooks + 1] = fn
  return true
end

--- Message and byte counts so far (bytes of encoded messages, without gRPC framing):
-- { messages_received, bytes_received, messages_sent, bytes_sent }.
function Ctx:stats()
  local c = self._call
  return { messages_received = c.nrecv, bytes_received = c.recv_bytes,
    messages_sent = c.nsent, bytes_sent = c.sent_bytes }
end

--- Seconds left before the deadline (nil without one; 0 once passed).
function Ctx:time_remaining()
  if not self.deadline then return nil end
  return math.max(0, self.deadline - self._call.server.rt:now())
end

--- true, status once the call is cancelled (client reset, deadline, connection gone).
function Ctx:cancelled()
  local st = self._cancel_status
  if st and not self._ended then return true, st end
  return false
end

-- propagation: outgoing calls made with { ctx = ctx } inherit the cancellation
function Ctx:_attach(child)
  if self._ended then return status.cancelled("the parent call has ended") end
  if self._cancel_status then return self._cancel_status end
  local children = self._children
  if not children then
    children = setmetatable({}, WEAK_KEYS)
    self._children = children
  end
  children[child] = true
  child.ctx_parent = self
  return nil
end

function Ctx:_detach(child)
  local children = self._children
  if children then children[child] = nil end
end

-- cancels what was started with { ctx = ctx } (children) with st
local function cancel_children(ctx, st)
  local children = ctx._children
  if children then
    ctx._children = nil
    for child in pairs(children) do child:_cancel(st) end
  end
end

function Ctx:_cancel(st)
  if self._cancel_status or self._ended then return end
  self._cancel_status = st
  cancel_children(self, st)
  -- a sleeping handler wakes with the status
  local task = self._call.task
  if task and task.parker and task.parker.cancellable then
    self._call.server.rt:unpark(task.parker, nil, st)
  end
end

-- the call ended with its own status: children started under it are cancelled
function Ctx:_end()
  self._ended = true
  if self._children then cancel_children(self, status.cancelled("the call has ended")) end
end

---------------------------------------------------------------------------------------------
-- the stream streaming handlers get

function Stream:send(msg) return self._call:_send(msg) end
function Stream:recv() return self._call:_recv() end
function Stream:iter()
  return function() return (self:recv()) end
end
function Stream:set_header(md) return self.ctx:set_header(md) end
function Stream:send_headers(md) return self.ctx:send_headers(md) end
function Stream:set_trailer(md) return self.ctx:set_trailer(md) end

---------------------------------------------------------------------------------------------
-- shutdown

--- Graceful shutdown: stops accepting, tells clients (GOAWAY), lets calls in flight finish
-- for `grace` seconds (default 10), then cancels the rest. Blocks (yields) until done.
function Server:shutdown(grace)
  grace = grace or 10
  local rt = self.rt
  if not self.closing then
    self.closing = true
    for _, l in ipairs(self.listeners) do
      rt:disown(l)
      l:close()
      rt:release()
    end
    self.listeners = {}
    for conn in pairs(self.conns) do conn.session:shutdown(math.floor(grace * 1000)) end
  end
  local deadline = rt:now() + grace
  while self.ncalls > 0 and rt:now() < deadline do
    local p = {}
    self.waiters = self.waiters or {}
    self.waiters[#self.waiters + 1] = p
    rt:hold()
    local ok, err = pcall(rt.park, rt, p, deadline)
    rt:release()
    if not ok then error(err, 2) end
  end
  -- past the grace: cancel what is left and close the connections that still carry calls
  -- (the others end by themselves once the final GOAWAY is out)
  for c in pairs(self.calls) do
    c:_cancelled(status.unavailable("server shutting down"))
    c.conn.session:close()
  end
  -- give the handlers of cancelled calls and the closing connections a moment to end
  local until_t = rt:now() + 1
  while (self.ncalls > 0 or next(self.conns)) and rt:now() < until_t do
    local p = {}
    self.waiters = self.waiters or {}
    self.waiters[#self.waiters + 1] = p
    rt:hold()
    local ok, err = pcall(rt.park, rt, p, until_t)
    rt:release()
    if not ok then error(err, 2) end
  end
  for conn in pairs(self.conns) do conn.session:close() end
  self.closed = true
  return true
end

--- Immediate shutdown: every call is cancelled at once.
function Server:stop() return self:shutdown(0) end

Server.__close = function(self) if not self.closed then self:shutdown(0) end end

return server

-- lgrpc.call — one client call: its stream on a channel connection, the messages both ways,
-- response headers, trailers and the final status. Starting never blocks: messages sent before
-- the connection is ready are queued, and a call the server never saw (REFUSED_STREAM, above a
-- GOAWAY's last stream id) is replayed on a new connection. Never touches sockets directly.
local status = require "lgrpc.status"
local metadata = require "lgrpc.metadata"

local call = {}

local Call = {}
Call.__index = Call
Call.__name = "lgrpc.call"

-- receive-side backpressure: pause the stream while this much waits unread in Lua
local INBOX_PAUSE_BYTES = 256 * 1024
local INBOX_PAUSE_COUNT = 16
-- a send that leaves more than this buffered waits for the transport's drain event
local SEND_HIGH_WATER = 64 * 1024
-- requests kept for a transparent retry, at most this many bytes
local RETRY_BUFFER = 1024 * 1024
local MAX_ATTEMPTS = 5

local live = 0
function call.live() return live end

--- Maps a transport error string ("RESOURCE_EXHAUSTED: ...") to a status.
function call.status_from_error(err, default_code)
  err = tostring(err)
  local name, msg = err:match("^([A-Z_]+): (.*)$")
  if name and type(status.codes[name]) == "number" then
    return status.new(status.codes[name], msg)
  end
  return status.new(default_code or status.INTERNAL, err)
end

local function wrap_md(t)
  if t == nil then return metadata.new() end
  return metadata.from_table(t)
end

-- The request record handed to session:request, which reads it before returning: one for all
-- calls.
local request = {}

-- The timer that ends the call at its deadline (a closure kept out of call.new, which LuaJIT
-- then compiles).
local function deadline_timer(self, deadline)
  return self.rt:at(deadline, function()
    self.deadline_timer = nil
    self:_deadline()
  end)
end

--- call.new(channel, path, kind, codec, opts): kind is "unary", "server_stream",
-- "client_stream" or "bidi"; codec { encode = fn(msg) -> bytes|nil,err, decode = fn(bytes) };
-- opts: timeout (s), deadline (absolute runtime s), metadata, wait_for_ready, ctx, authority.
function call.new(ch, path, kind, codec, opts)
  local rt = ch.rt
  local creds = call.credentials_of(ch, opts)
  -- inbox (received messages, ihead..itail), sent (requests kept for a replay) and waiters
  -- (tasks in wait_change) are made when first needed. The fields every call sets later are
  -- named here too, so the table is made at its final size.
  local self = setmetatable({
    ch = ch, rt = rt, path = path, kind = kind, codec = codec,
    wait_for_ready = opts.wait_for_ready,
    authority = opts.authority,
    ihead = 1, itail = 0, inbox_bytes = 0,
    nrecv = 0, recv_bytes = 0, nsent = 0, sent_bytes_total = 0,
    sent_bytes = 0, replayable = true, attempts = 0, headers_waiting = 0,
    conn = nil, stream = nil, st = nil, committed = nil, half_closed = nil, inbox = nil,
    sent = nil, waiters = nil, headers_raw = nil, trailers_raw = nil, deadline = nil,
  }, Call)
  local md = opts.metadata
  local m
  if md ~= nil then
    local err
    m, err = metadata.new(md)
    if not m then error("lgrpc: bad call metadata: " .. err, 4) end
    self.md = m:to_table()
  end
  local deadline = opts.deadline
  if opts.timeout ~= nil then
    if type(opts.timeout) ~= "number" then error("lgrpc: timeout must be a number of seconds", 4) end
    local d = rt:now() + opts.timeout
    if not deadline or d < deadline then deadline = d end
  end
  local ctx = opts.ctx
  if ctx ~= nil then
    if type(ctx) ~= "table" or type(ctx._attach) ~= "function" then
      error("lgrpc: opts.ctx must be a server call context", 4)
    end
    if ctx.deadline and (not deadline or ctx.deadline < deadline) then
      deadline = ctx.deadline
      self.inherited_deadline = true
    end
  end
  self.deadline = deadline
  live = live + 1
  rt:hold()
  if ctx then
    local cancelled_st = ctx:_attach(self)
    if cancelled_st then
      self:_finish(cancelled_st)
      return self
    end
  end
  if deadline then
    if deadline <= rt:now() then
      self:_finish(status.deadline_exceeded("deadline exceeded before the call started"))
      return self
    end
    self.deadline_timer = deadline_timer(self, deadline)
  end
  if creds then
    local st = self:_credentials(creds, m or metadata.new(), opts)
    if st then
      self:_finish(st)
      return self
    end
    if self.st then return self end
  end
  ch:_acquire(self)
  return self
end

--- The credentials functions for a call: the channel's, then the call's (false: none).
function call.credentials_of(ch, opts)
  local cc, oc = ch.opts.credentials, opts.credentials
  if oc == false or (cc == nil and oc == nil) then return nil end
  local list = {}
  if cc ~= nil then list[#list + 1] = cc end
  if oc ~= nil then list[#list + 1] = oc end
  for _, fn in ipairs(list) do
    if type(fn) ~= "function" then error("lgrpc: credentials must be a function(info) -> metadata", 5) end
  end
  if #list == 0 then return nil end
  return list
end

-- Runs the credentials functions in the calling task and adds what they return to the call's
-- metadata (a later function's keys replace an earlier one's). Returns a status that ends the
-- call, or nil.
function Call:_credentials(creds, md, opts)
  local ch = self.ch
  local allow = opts.allow_insecure_credentials
  if allow == nil then allow = ch.opts.allow_insecure_credentials end
  if not ch:_secure() and not allow then
    return status.unauthenticated("call credentials need a secure (TLS) channel; " ..
      "set allow_insecure_credentials = true to send them in plaintext")
  end
  local authority = self.authority or ch:_authority()
  local service = self.path:match("^/([^/]+)/") or ""
  local info = { method = self.path, authority = authority,
    service_url = (ch:_secure() and "https://" or "http://") .. authority .. "/" .. service }
  for _, fn in ipairs(creds) do
    local ok, r, e = pcall(fn, info)
    if self.st then return nil end
    if not ok then
      if status.is(r) then return r end
      return status.unavailable("call credentials failed: " .. tostring(r))
    end
    if r == nil then
      if status.is(e) then return e end
      return status.unavailable("call credentials failed: " .. tostring(e or "no metadata"))
    end
    if status.is(r) then return r end
    local got, err = metadata.new(r)
    if not got then return status.unavailable("call credentials returned bad metadata: " .. err) end
    for _, k in ipairs(got:keys()) do md:set(k, got:get_all(k)) end
  end
  self.md = md:to_table()
  return nil
end

--- Opens the stream on a ready connection (channel code calls this) and replays what was sent.
function Call:_open(conn)
  if self.st then return end
  self.attempts = self.attempts + 1
  local req = request
  req.path, req.metadata, req.authority, req.timeout = self.path, self.md, self.authority, nil
  if self.deadline then
    local ms = math.ceil((self.deadline - self.rt:now()) * 1000)
    if ms < 1 then ms = 1 end
    req.timeout = ms
  end
  local stream, err = conn.session:request(req)
  req.path, req.metadata, req.authority = nil, nil, nil
  if not stream then
    local st = call.status_from_error(err, status.UNAVAILABLE)
    if st.code == status.UNAVAILABLE and self.attempts < MAX_ATTEMPTS then
      -- this connection can take no more streams (GOAWAY, ids exhausted): use a new one
      self.ch:_retire(conn)
      self.ch:_acquire(self)
      return
    end
    self:_finish(st)
    return
  end
  self.conn, self.stream = conn, stream
  conn.calls[stream] = self
  local sent = self.sent
  if sent then
    for i = 1, #sent do
      local ok, e = stream:send_message(sent[i])
      if not ok then
        self:_cancel(call.status_from_error(e))
        return
      end
    end
    if not self.replayable then self.sent = nil end
  end
  if self.half_closed then stream:close_send() end
  self.rt:changed(self)
end

--- Fails a call that never got a stream (channel code: connect failure, channel closed).
function Call:_fail(st) self:_finish(st) end

function Call:_finish(st)
  if self.st then return end
  if st.code == status.OK and self.nrecv == 0 and
      (self.kind == "unary" or self.kind == "client_stream") then
    st = status.unimplemented("the server sent no response message for " .. self.path)
  end
  self.st = st
  if self.conn and self.stream then self.conn.calls[self.stream] = nil end
  if self.deadline_timer then
    self.rt:cancel_timer(self.deadline_timer)
    self.deadline_timer = nil
  end
  if self.ctx_parent then self.ctx_parent:_detach(self) end
  self.ch:_forget(self)
  self.sent = nil
  live = live - 1
  self.rt:release()
  self.rt:changed(self)
  local hooks = self.on_done_hooks
  if hooks then
    self.on_done_hooks = nil
    for _, fn in ipairs(hooks) do self:_hook(fn) end
  end
end

function Call:_hook(fn)
  local ok, e = pcall(fn, self.st)
  if not ok then
    local log = self.rt.log or function(m) io.stderr:write(m, "\n") end
    log("lgrpc: " .. self.path .. ": on_done hook failed: " .. tostring(e))
  end
end

function Call:_deadline()
  if self.st then return end
  self:_cancel(status.deadline_exceeded("deadline exceeded"))
end

--- Ends the call locally with st, resetting its stream.
function Call:_cancel(st)
  if self.st then return end
  if self.stream then self.stream:reset(8) end
  self:_finish(st)
end

--- Stream events, from the channel's connection.
-- a response message (its bytes) arrived
function Call:_event_message(data)
  self.committed = true
  if self.replayable then self.sent, self.replayable = nil, false end
  if self.nrecv >= 1 and (self.kind == "unary" or self.kind == "client_stream") then
    self:_cancel(status.unimplemented("the server sent more than one response message for " ..
      self.path))
    return
  end
  self.nrecv = self.nrecv + 1
  self.recv_bytes = self.recv_bytes + #data
  local itail = self.itail + 1
  self.itail = itail
  local inbox = self.inbox
  if not inbox then self.inbox = { [itail] = data } else inbox[itail] = data end
  self.inbox_bytes = self.inbox_bytes + #data
  -- backpressure for streaming responses only (a single response must let the status in)
  local waiting = self.itail - self.ihead + 1
  if not self.paused and (self.kind == "server_stream" or self.kind == "bidi") and
      (waiting >= INBOX_PAUSE_COUNT or (waiting >= 2 and self.inbox_bytes >= INBOX_PAUSE_BYTES)) then
    self.paused = true
    self.stream:pause()
  end
  self.rt:changed(self)
end

-- the response headers (their raw metadata table, or nil) arrived
function Call:_event_headers(md)
  self.committed = true
  if self.replayable then self.sent, self.replayable = nil, false end
  -- the metadata object is made when asked for (Call:headers); only a task waiting there
  -- wakes (a unary call's task, waiting for the response, sleeps on)
  self.headers_raw = md or false
  if self.headers_waiting > 0 then self.rt:changed(self) end
end

function Call:_event(ev)
  if self.st then return end
  local t = ev.type
  if t == "status" and ev.headers then
    -- a coalesced response (session:coalesce): its headers and one message, then this status
    self:_event_headers(ev.headers_metadata)
    self:_event_message(ev.data)
    if self.st then return end
  end
  if t == "message" then
    self:_event_message(ev.data)
  elseif t == "headers" then
    self:_event_headers(ev.metadata)
  elseif t == "status" then
    if ev.refused and not self.committed and self.replayable and self.attempts < MAX_ATTEMPTS then
      -- the server never processed this stream: run it again on another connection
      if self.conn then self.conn.calls[self.stream] = nil end
      self.stream, self.conn = nil, nil
      self.ch:_acquire(self)
      return
    end
    self.trailers_raw = ev.metadata or false
    if ev.trailers_only and self.headers_raw == nil then self.headers_raw = false end
    local code = ev.code
    if type(code) ~= "number" or code < 0 or code > 16 then code = status.UNKNOWN end
    self:_finish(status.from_trailer(code, ev.message or "", ev.details, self.ch.pool,
      self.ch.opts.decode))
  elseif t == "deadline" then
    self:_deadline()
  elseif t == "drain" then
    self.rt:changed(self)
  end
end

---------------------------------------------------------------------------------------------
-- the user's side

--- call:send(msg) -> true | nil, status. Waits (yields) while the transport holds more than
-- 64 KiB of this call's output.
function Call:send(msg)
  if self.half_closed then error("lgrpc: send after close_send", 2) end
  if self.st then return nil, self.st end
  local bytes, err = self.codec.encode(msg)
  if not bytes then return nil, status.internal("cannot encode request: " .. tostring(err)) end
  self.nsent = self.nsent + 1
  self.sent_bytes_total = self.sent_bytes_total + #bytes
  if self.replayable then
    local sent = self.sent
    if not sent then self.sent = { bytes } else sent[#sent + 1] = bytes end
    self.sent_bytes = self.sent_bytes + #bytes
    if self.sent_bytes > RETRY_BUFFER and self.stream then
      self.sent, self.replayable = nil, false
    end
  end
  if not self.stream then
    if self.sent_bytes > RETRY_BUFFER then self.replayable = false end
    return true
  end
  local ok, buffered = self.stream:send_message(bytes)
  if not ok then
    local st = call.status_from_error(buffered)
    if st.code == status.RESOURCE_EXHAUSTED then
      -- over the send limit: the call cannot continue
      self:_cancel(st)
      return nil, st
    end
    if self.st then return nil, self.st end
    return nil, st
  end
  while buffered and buffered > SEND_HIGH_WATER and not self.st do
    self.rt:wait_change(self)
    if self.stream then buffered = self.stream:buffered() else break end
  end
  if self.st and self.st.code ~= status.OK then return nil, self.st end
  return true
end

--- Half-closes the request side.
function Call:close_send()
  if self.half_closed then return true end
  self.half_closed = true
  if self.stream and not self.st then self.stream:close_send() end
  return true
end

--- call:recv() -> msg | nil, status (the final status: OK at a clean end of stream).
function Call:recv()
  while true do
    local i = self.ihead
    if i <= self.itail then
      local inbox = self.inbox
      local bytes = inbox[i]
      inbox[i] = nil
      self.inbox_bytes = self.inbox_bytes - #bytes
      if i == self.itail then
        -- drained: the next message goes to inbox[1] again
        self.ihead, self.itail = 1, 0
        if self.paused then
          self.paused = false
          if self.stream and not self.st then self.stream:resume() end
        end
      else
        self.ihead = i + 1
      end
      local msg, err = self.codec.decode(bytes)
      if msg == nil then
        local st = status.internal("cannot decode response: " .. tostring(err))
        self:_cancel(st)
        return nil, st
      end
      return msg
    end
    if self.st then return nil, self.st end
    self.rt:wait_change(self)
  end
end

--- for msg in call:iter() do ... end; afterwards call:status() tells how the stream ended.
function Call:iter()
  return function()
    local msg = self:recv()
    return msg
  end
end

--- Closes the request side and returns the single response (client streaming): msg, status.
function Call:close_and_recv()
  self:close_send()
  local msg, st = self:recv()
  if msg == nil then return nil, st end
  st = self:status()
  if st.code ~= status.OK then return nil, st end
  return msg, st
end

--- Response headers (waits for them); an empty metadata object for a trailers-only response.
function Call:headers()
  while self.headers_raw == nil and not self.st do
    self.headers_waiting = self.headers_waiting + 1
    self.rt:wait_change(self)
    self.headers_waiting = self.headers_waiting - 1
  end
  local md = self.headers_md
  if not md then
    md = wrap_md(self.headers_raw or nil)
    self.headers_md = md
  end
  return md
end

-- Waiting for the end without reading every message: stop holding the stream back.
local function unpause(self)
  if self.paused and self.stream and not self.st then
    self.paused = false
    self.stream:resume()
  end
end

--- Trailers (waits for the end of the call).
function Call:trailers()
  unpause(self)
  while not self.st do self.rt:wait_change(self) end
  local md = self.trailers_md
  if not md then
    md = wrap_md(self.trailers_raw or nil)
    self.trailers_md = md
  end
  return md
end

--- The final status (waits for the end of the call).
function Call:status()
  unpause(self)
  while not self.st do self.rt:wait_change(self) end
  return self.st
end

--- Runs fn(status) once the call has its final status (at once if it already has). An error
-- in fn is logged, never raised into the call.
function Call:on_done(fn)
  if type(fn) ~= "function" then error("lgrpc: call:on_done: function expected", 2) end
  if self.st then self:_hook(fn) return true end
  local hooks = self.on_done_hooks
  if not hooks then hooks = {} self.on_done_hooks = hooks end
  hooks[#hooks + 1] = fn
  return true
end

--- Message and byte counts so far (encoded message bytes, without gRPC framing):
-- { messages_sent, bytes_sent, messages_received, bytes_received }. Received counts what the
-- transport delivered, read or not.
function Call:stats()
  return { messages_sent = self.nsent, bytes_sent = self.sent_bytes_total,
    messages_received = self.nrecv, bytes_received = self.recv_bytes }
end

--- True once the call has its final status.
function Call:done() return self.st ~= nil end

--- Cancels the call: the stream is reset and the status is CANCELLED.
function Call:cancel(message)
  if self.st then return false end
  self:_cancel(status.cancelled(message or "cancelled by the client"))
  return true
end

Call.__close = function(self) if not self.st then self:cancel() end end

function Call:__tostring()
  return "lgrpc.call(" .. self.path .. (self.st and (", " .. tostring(self.st)) or "") .. ")"
end

return call

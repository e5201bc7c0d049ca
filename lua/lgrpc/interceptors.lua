-- lgrpc.interceptors — the built-in interceptors: structured access logging (one JSON line per
-- call, server and client), recovery (a handler's Lua error becomes a chosen status, the
-- traceback goes to a log and never to the peer) and bearer/JWT authentication (server).
-- Each returns a { unary = fn, stream = fn } table for server:use or a channel's interceptors;
-- they only wrap `next` and the stream or call object, as any user interceptor could.
local status = require "lgrpc.status"
local auth = require "lgrpc.auth"
local json = require("lgrpc.core").json

local interceptors = {}

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local function is_server(info) return info.server ~= nil end

local function clock_of(info)
  local rt = (info.server or info.channel or {}).rt
  if rt then return function() return rt:now() end end
  return os.clock
end

-- What a server handler's results mean for the call's status (as lgrpc.server reads them).
local function server_outcome(kind, r1, r2, ctx)
  local cancelled, cst = false, nil
  if ctx and type(ctx.cancelled) == "function" then cancelled, cst = ctx:cancelled() end
  if cancelled and cst then return cst end
  if status.is(r1) then return r1 end
  if r1 == nil then
    if status.is(r2) then return r2 end
    if r2 ~= nil then return status.unknown(tostring(r2)) end
    if kind == "unary" or kind == "client_stream" then
      return status.internal("handler returned no response")
    end
  end
  return status.ok()
end

local function raised_status(err)
  if status.is(err) then return err end
  return status.unknown("unexpected error in handler")
end

---------------------------------------------------------------------------------------------
-- access log

-- message sizes: the encoded length of a message table (byte strings of raw calls count as
-- they are), through the pool of the server or channel
local function sizer(info, enabled)
  if not enabled then return function() return 0 end end
  local owner = info.server or info.channel
  local pool = owner and owner.pool
  local input, output
  if pool then
    local svc, name = info.method:match("^/([^/]+)/([^/]+)$")
    local desc = svc and pool:service(svc)
    for _, m in ipairs(desc and desc.method or {}) do
      if m.name == name then input, output = m.input_type, m.output_type end
    end
  end
  -- dir "in": what the server receives (requests); "out": responses
  return function(msg, dir)
    if type(msg) == "string" then return #msg end
    local t = dir == "in" and input or output
    if type(msg) ~= "table" or not t then return 0 end
    local bytes = pool:encode(t, msg)
    return bytes and #bytes or 0
  end
end

local FIELDS = { "time", "side", "method", "kind", "peer", "code", "status", "message",
  "duration_ms", "recv_messages", "recv_bytes", "sent_messages", "sent_bytes", "subject",
  "user_agent" }

local function clean(s)
  s = tostring(s)
  if json.is_utf8(s) then return s end
  return (s:gsub("[\128-\255]", "?"))
end

local function make_emitter(opts)
  local sink = opts.sink or io.stderr
  local write
  if type(sink) == "function" then
    write = sink
  elseif (type(sink) == "userdata" or type(sink) == "table") and sink.write then
    write = function(line) sink:write(line, "\n") if sink.flush then sink:flush() end end
  else
    error("lgrpc.interceptors.access_log: sink must be a function or a file", 3)
  end
  local extra = opts.fields
  if extra ~= nil and type(extra) ~= "function" then
    error("lgrpc.interceptors.access_log: fields must be a function(record, ctx, info)", 3)
  end
  return function(rec, ctx, info)
    if extra then
      local ok, err = pcall(extra, rec, ctx, info)
      if not ok then rec.log_error = clean(err) end
    end
    local obj = setmetatable({}, json.object)
    local seen = {}
    for _, k in ipairs(FIELDS) do
      if rec[k] ~= nil then
        obj[#obj + 1] = k
        obj[k] = type(rec[k]) == "string" and clean(rec[k]) or rec[k]
        seen[k] = true
      end
    end
    local more = {}
    for k in pairs(rec) do
      if not seen[k] and type(k) == "string" then more[#more + 1] = k end
    end
    table.sort(more)
    for _, k in ipairs(more) do
      obj[#obj + 1] = k
      obj[k] = rec[k]
    end
    local line, err = json.encode(obj)
    if not line then
      for _, k in ipairs(more) do obj[k] = nil end
      for i = #obj, 1, -1 do if not seen[obj[i]] then table.remove(obj, i) end end
      obj[#obj + 1] = "log_error"
      obj.log_error = clean(err)
      line = json.encode(obj)
    end
    -- a failing sink must not fail the call
    pcall(write, line, rec)
  end
end

local function new_record(side, info, peer)
  return {
    time = os.date("!%Y-%m-%dT%H:%M:%SZ"), side = side, method = info.method, kind = info.kind,
    peer = peer, recv_messages = 0, recv_bytes = 0, sent_messages = 0, sent_bytes = 0,
  }
end

local function finish_record(rec, st, t0, now)
  rec.code = st.code
  rec.status = st:name()
  if st.code ~= status.OK and st.message ~= "" then rec.message = st.message end
  rec.duration_ms = math.floor((now() - t0) * 1e6 + 0.5) / 1e3
end

local function server_identity(rec, ctx)
  local who = ctx.auth
  if type(who) == "table" and type(who.sub) == "string" then rec.subject = who.sub
  elseif type(who) == "string" then rec.subject = who end
  rec.user_agent = ctx.user_agent
end

--- interceptors.access_log{ sink = fn(line, record) | file, fields = fn(record, ctx, info),
-- sizes = true } -> interceptor for servers and channels alike. One JSON line per call:
-- time, side, method, kind, peer, code, status, message (when not OK), duration_ms,
-- recv_messages, recv_bytes, sent_messages, sent_bytes, subject (ctx.auth.sub), user_agent,
-- then what `fields` adds. Sizes are the encoded message lengths (sizes = false skips the work).
function interceptors.access_log(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("lgrpc.interceptors.access_log: options table expected", 2) end
  local emit = make_emitter(opts)
  local sizes = opts.sizes ~= false

  local function unary(req, cx, info, next)
    local now = clock_of(info)
    local t0 = now()
    local size = sizer(info, sizes)
    if is_server(info) then
      local rec = new_record("server", info, cx.peer)
      rec.recv_messages, rec.recv_bytes = 1, size(req, "in")
      local ok, resp, st = pcall(next, req, cx)
      local final = ok and server_outcome("unary", resp, st, cx) or raised_status(resp)
      if ok and final.code == status.OK and resp ~= nil then
        rec.sent_messages, rec.sent_bytes = 1, size(resp, "out")
      end
      finish_record(rec, final, t0, now)
      server_identity(rec, cx)
      emit(rec, cx, info)
      if not ok then error(resp, 0) end
      return resp, st
    end
    local rec = new_record("client", info, info.channel and info.channel.target)
    rec.sent_messages, rec.sent_bytes = 1, size(req, "in")
    local ok, resp, st, call = pcall(next, req, cx)
    local final = ok and (status.is(st) and st or (resp ~= nil and status.ok() or
      status.unknown("no status"))) or status.unknown(tostring(resp))
    if ok and resp ~= nil then rec.recv_messages, rec.recv_bytes = 1, size(resp, "out") end
    finish_record(rec, final, t0, now)
    emit(rec, cx, info)
    if not ok then error(resp, 0) end
    return resp, st, call
  end

  local function stream(s, cx, info, next)
    local now = clock_of(info)
    local t0 = now()
    local size = sizer(info, sizes)
    if is_server(info) then
      local rec = new_record("server", info, cx.peer)
      local send, recv = s.send, s.recv
      s.send = function(self, m)
        local ok, err = send(self, m)
        if ok then
          rec.sent_messages = rec.sent_messages + 1
          rec.sent_bytes = rec.sent_bytes + size(m, "out")
        end
        return ok, err
      end
      s.recv = function(self)
        local m, err = recv(self)
        if m ~= nil then
          rec.recv_messages = rec.recv_messages + 1
          rec.recv_bytes = rec.recv_bytes + size(m, "in")
        end
        return m, err
      end
      local ok, r1, r2 = pcall(next, s, cx)
      local final = ok and server_outcome(info.kind, r1, r2, cx) or raised_status(r1)
      if ok and final.code == status.OK and r1 ~= nil and info.kind == "client_stream" then
        rec.sent_messages = rec.sent_messages + 1
        rec.sent_bytes = rec.sent_bytes + size(r1, "out")
      end
      finish_record(rec, final, t0, now)
      server_identity(rec, cx)
      emit(rec, cx, info)
      if not ok then error(r1, 0) end
      return r1, r2
    end
    -- client: the call object lives on after next returns; log when its status is known
    local rec = new_record("client", info, info.channel and info.channel.target)
    local ok, call, st = pcall(next, s, cx)
    if not ok or call == nil then
      finish_record(rec, ok and (status.is(st) and st or status.unknown(tostring(st)))
        or status.unknown(tostring(call)), t0, now)
      emit(rec, cx, info)
      if not ok then error(call, 0) end
      return call, st
    end
    -- count what goes out as the codec encodes it and what arrives as the transport delivers
    -- it (messages may still sit unread when the status comes in)
    local codec = call.codec
    if type(codec) == "table" then
      call.codec = {
        encode = function(m)
          local bytes, err = codec.encode(m)
          if bytes then
            rec.sent_messages = rec.sent_messages + 1
            rec.sent_bytes = rec.sent_bytes + #bytes
          end
          return bytes, err
        end,
        decode = codec.decode,
      }
    end
    local on_event = call._event
    call._event = function(self, ev)
      if ev.type == "message" and not self.st then
        rec.recv_messages = rec.recv_messages + 1
        rec.recv_bytes = rec.recv_bytes + #ev.data
      end
      return on_event(self, ev)
    end
    local logged = false
    local function done()
      if logged or not call:done() then return end
      logged = true
      finish_record(rec, call:status(), t0, now)
      emit(rec, cx, info)
    end
    -- lgrpc.call ends every call through _finish (codec, _event and _finish are the hooks
    -- this interceptor needs from lgrpc.call until it offers public ones)
    local finish = call._finish
    call._finish = function(self, fst)
      finish(self, fst)
      done()
    end
    done()
    return call, st
  end

  return { unary = unary, stream = stream }
end

---------------------------------------------------------------------------------------------
-- recovery

-- "file.lua:12: boom" -> "boom": the peer learns what went wrong, not where
local function error_text(err)
  if type(err) ~= "string" then
    if type(err) == "table" and type(err.message) == "string" then return err.message end
    return "unexpected error"
  end
  return (err:gsub("^[^:\n]+:%d+: ", ""))
end

--- interceptors.recovery{ code = status.UNKNOWN, message = string | fn(err) -> string,
-- handler = fn(err, ctx_or_opts, info) -> status | string | nil, log = fn(text) } ->
-- interceptor (server and client). A Lua error raised below it (interceptors after it, the
-- handler) becomes `code` with `message` (default: the error text without its position);
-- `handler` may pick another status. The error and its traceback go to `log` (default: the
-- server's log; nothing on a client). Raised statuses pass through unchanged.
function interceptors.recovery(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("lgrpc.interceptors.recovery: options table expected", 2) end
  local code = status.UNKNOWN
  if opts.code ~= nil then
    code = status.code_number(opts.code)
    if not code or code == status.OK then
      error("lgrpc.interceptors.recovery: code must be a non-OK status code", 2)
    end
  end
  local message, handler, log = opts.message, opts.handler, opts.log
  if message ~= nil and type(message) ~= "string" and type(message) ~= "function" then
    error("lgrpc.interceptors.recovery: message must be a string or a function", 2)
  end
  if handler ~= nil and type(handler) ~= "function" then
    error("lgrpc.interceptors.recovery: handler must be a function", 2)
  end

  local function traceback(e)
    if status.is(e) then return e end
    return { err = e, trace = debug.traceback(tostring(e), 2) }
  end

  local function recovered(caught, cx, info)
    local err = caught.err
    local where = log or (info.server and info.server.log)
    if where then pcall(where, "lgrpc: recovered in " .. info.method .. ": " .. caught.trace) end
    if handler then
      local ok, st = pcall(handler, err, cx, info)
      if ok and status.is(st) then return st end
      if ok and type(st) == "string" then return status.new(code, st) end
      if not ok and where then pcall(where, "lgrpc: recovery handler failed: " .. tostring(st)) end
    end
    local text
    if type(message) == "function" then
      local ok, m = pcall(message, err)
      text = ok and type(m) == "string" and m or "unexpected error"
    else
      text = message or error_text(err)
    end
    return status.new(code, text)
  end

  local function run(a, cx, info, next)
    local res = pack(xpcall(next, traceback, a, cx))
    if res[1] then return unpack(res, 2, res.n) end
    local caught = res[2]
    if status.is(caught) then return nil, caught end
    return nil, recovered(caught, cx, info)
  end

  return { unary = run, stream = run }
end

---------------------------------------------------------------------------------------------
-- authentication

local function scopes_for(scopes, info)
  if scopes == nil then return nil end
  if scopes[1] ~= nil then return scopes end
  return scopes[info.method] or scopes[info.service]
end

--- interceptors.auth{ verifier = v | verify = fn(token, ctx, info) -> identity | nil, err,
-- header = "authorization", scopes = { "read" } | { ["/pkg.S/M"] = {...}, ["pkg.S"] = {...} },
-- require = fn(identity, ctx, info) -> true | false, reason,
-- skip = { ["/pkg.S/M"] = true } | fn(info, ctx) -> bool } -> server interceptor.
-- A missing or invalid bearer token ends the call UNAUTHENTICATED; a valid one that lacks a
-- required scope or fails `require` ends it PERMISSION_DENIED. The verified identity (the
-- claims of a JWT) is ctx.auth for the handler and later interceptors.
function interceptors.auth(opts)
  if type(opts) ~= "table" then error("lgrpc.interceptors.auth: options table expected", 2) end
  local verify = opts.verify
  if verify == nil and opts.verifier ~= nil then
    local v = opts.verifier
    if type(v) ~= "table" or type(v.verify) ~= "function" then
      error("lgrpc.interceptors.auth: verifier must have a :verify(token) method", 2)
    end
    verify = function(token) return v:verify(token) end
  end
  if type(verify) ~= "function" then
    error("lgrpc.interceptors.auth: verifier (auth.jwt, auth.tokens) or verify function expected", 2)
  end
  local header = opts.header or "authorization"
  local require_fn, scopes, skip = opts.require, opts.scopes, opts.skip
  if require_fn ~= nil and type(require_fn) ~= "function" then
    error("lgrpc.interceptors.auth: require must be a function", 2)
  end
  if scopes ~= nil and type(scopes) ~= "table" then
    error("lgrpc.interceptors.auth: scopes must be a list or a table by method", 2)
  end
  if skip ~= nil and type(skip) ~= "table" and type(skip) ~= "function" then
    error("lgrpc.interceptors.auth: skip must be a set of methods or a function", 2)
  end

  local function check(ctx, info)
    if not is_server(info) then
      error("lgrpc.interceptors.auth is a server interceptor (use call metadata on clients)", 0)
    end
    if skip then
      local skipped
      if type(skip) == "function" then skipped = skip(info, ctx) else skipped = skip[info.method] end
      if skipped then return nil end
    end
    local token, err = auth.bearer(ctx.metadata, header)
    if not token then return status.unauthenticated(err) end
    local who, why = verify(token, ctx, info)
    if who == nil or who == false then
      return status.unauthenticated("invalid token: " .. tostring(why or "rejected"))
    end
    ctx.auth = who
    local need = scopes_for(scopes, info)
    if need then
      local have = auth.scopes(who)
      for _, s in ipairs(need) do
        if not have[s] then return status.permission_denied("missing scope " .. s) end
      end
    end
    if require_fn then
      local ok, reason = require_fn(who, ctx, info)
      if not ok then return status.permission_denied(reason or "permission denied") end
    end
    return nil
  end

  local function run(a, ctx, info, next)
    local st = check(ctx, info)
    if st then return nil, st end
    return next(a, ctx)
  end
  return { unary = run, stream = run }
end

return interceptors

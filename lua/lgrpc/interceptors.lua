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

  -- counts from the call's own stats (encoded message bytes; sizes = false leaves bytes at 0)
  local function fill(rec, stats)
    rec.recv_messages, rec.sent_messages = stats.messages_received, stats.messages_sent
    if sizes then rec.recv_bytes, rec.sent_bytes = stats.bytes_received, stats.bytes_sent end
  end

  -- server: one line once the status is out (ctx:on_done gives the status actually sent)
  local function server_side(a, cx, info, next)
    local now = clock_of(info)
    local t0 = now()
    local rec = new_record("server", info, cx.peer)
    local inner
    cx:on_done(function(st)
      -- the code is the one actually sent (INTERNAL when a response failed to encode, ...);
      -- when the inner chain decided that same code, its message is kept: an outer
      -- interceptor that rewrites the text for the client does not hide the cause from the log
      if inner and inner.code == st.code then st = inner end
      fill(rec, cx:stats())
      finish_record(rec, st, t0, now)
      server_identity(rec, cx)
      emit(rec, cx, info)
    end)
    local res = pack(pcall(next, a, cx))
    if not res[1] then
      inner = raised_status(res[2])
      error(res[2], 0)
    end
    inner = server_outcome(info.kind, res[2], res[3], cx)
    return unpack(res, 2, res.n)
  end

  local function unary(req, cx, info, next)
    if is_server(info) then return server_side(req, cx, info, next) end
    local now = clock_of(info)
    local t0 = now()
    local rec = new_record("client", info, info.channel and info.channel.target)
    local ok, resp, st, call = pcall(next, req, cx)
    local final = ok and (status.is(st) and st or (resp ~= nil and status.ok() or
      status.unknown("no status"))) or status.unknown(tostring(resp))
    if ok and type(call) == "table" and type(call.stats) == "function" then
      fill(rec, call:stats())
    end
    finish_record(rec, final, t0, now)
    emit(rec, cx, info)
    if not ok then error(resp, 0) end
    return resp, st, call
  end

  local function stream(s, cx, info, next)
    if is_server(info) then return server_side(s, cx, info, next) end
    local now = clock_of(info)
    local t0 = now()
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
    call:on_done(function(fst)
      fill(rec, call:stats())
      finish_record(rec, fst, t0, now)
      emit(rec, cx, info)
    end)
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

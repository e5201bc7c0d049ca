-- lgrpc.status — gRPC status codes and status objects.
-- Owns the 17 codes (by name and number), status values and their grpc-go style text.
-- Never touches the wire: grpc-message percent-encoding lives in lgrpc.metadata.
local status = {}

-- name, number, grpc-go's CamelCase spelling (used by tostring)
local CODES = {
  { "OK", 0, "OK" },
  { "CANCELLED", 1, "Canceled" },
  { "UNKNOWN", 2, "Unknown" },
  { "INVALID_ARGUMENT", 3, "InvalidArgument" },
  { "DEADLINE_EXCEEDED", 4, "DeadlineExceeded" },
  { "NOT_FOUND", 5, "NotFound" },
  { "ALREADY_EXISTS", 6, "AlreadyExists" },
  { "PERMISSION_DENIED", 7, "PermissionDenied" },
  { "RESOURCE_EXHAUSTED", 8, "ResourceExhausted" },
  { "FAILED_PRECONDITION", 9, "FailedPrecondition" },
  { "ABORTED", 10, "Aborted" },
  { "OUT_OF_RANGE", 11, "OutOfRange" },
  { "UNIMPLEMENTED", 12, "Unimplemented" },
  { "INTERNAL", 13, "Internal" },
  { "UNAVAILABLE", 14, "Unavailable" },
  { "DATA_LOSS", 15, "DataLoss" },
  { "UNAUTHENTICATED", 16, "Unauthenticated" },
}

-- status.codes.NOT_FOUND == 5 and status.codes[5] == "NOT_FOUND"
status.codes = {}
local go_name = {}
for _, c in ipairs(CODES) do
  status[c[1]] = c[2]
  status.codes[c[1]] = c[2]
  status.codes[c[2]] = c[1]
  go_name[c[2]] = c[3]
end

local Status = {}
Status.__index = Status
Status.__name = "lgrpc.status"

-- Accepts a number 0..16 or a code name ("NOT_FOUND", any case); returns the number or nil.
local function code_number(code)
  if math.type and math.type(code) == "float" then
    if code ~= math.floor(code) then return nil end
    code = math.tointeger(code)
  end
  if type(code) == "number" then
    if code >= 0 and code <= 16 and code == math.floor(code) then return code end
    return nil
  end
  if type(code) == "string" then
    local n = status.codes[code:upper()]
    if type(n) == "number" then return n end
  end
  return nil
end
status.code_number = code_number

-- details: nil, the raw bytes of a google.rpc.Status (sent as they are), or an array of detail
-- tables, each naming its type: { ["@type"] = "type.googleapis.com/google.rpc.BadRequest", ... }
-- (a bare "google.rpc.BadRequest" gets the type.googleapis.com/ prefix) or a raw Any
-- { type_url = ..., value = bytes }.
local function check_details(details, where)
  if details == nil or type(details) == "string" then return nil end
  if type(details) ~= "table" then
    return where .. ": details must be an array of detail tables or bytes, got " .. type(details)
  end
  for i, d in ipairs(details) do
    if type(d) ~= "table" then return where .. ": detail " .. i .. " is not a table" end
    local t = d["@type"]
    if t == nil then
      if type(d.type_url) ~= "string" or type(d.value) ~= "string" then
        return where .. ": detail " .. i .. ' has no ["@type"] (nor type_url and value)'
      end
    elseif type(t) ~= "string" or t == "" then
      return where .. ": detail " .. i .. ' has a bad ["@type"]'
    end
  end
  return nil
end

local function make(n, message, details)
  local st = { code = n, message = message or "" }
  if type(details) == "string" then
    st.details_bin = details
  elseif details ~= nil then
    st.details = details
  end
  return setmetatable(st, Status)
end

--- status.new(code, message, details) -> status object.
-- code: number 0..16 or a name; message: string (default ""); details: an array of detail
-- tables (see check_details above), or the raw bytes of a google.rpc.Status, or nil.
function status.new(code, message, details)
  local n = code_number(code)
  if n == nil then
    error("lgrpc.status.new: unknown status code " .. tostring(code), 2)
  end
  if message ~= nil and type(message) ~= "string" then
    error("lgrpc.status.new: message must be a string, got " .. type(message), 2)
  end
  local err = check_details(details, "lgrpc.status.new")
  if err then error(err, 2) end
  return make(n, message, details)
end

--- Builds a status from what arrived on the wire: grpc-status text and an already decoded
-- message. A missing or unparseable code becomes UNKNOWN (as gRPC requires of clients).
function status.from_wire(code_text, message, details)
  local n = code_text and tonumber(code_text)
  local msg = message or ""
  if n == nil or n ~= math.floor(n) or n < 0 or n > 16 or not tostring(code_text):match("^%d+$") then
    if code_text == nil then
      msg = msg ~= "" and msg or "missing grpc-status"
    else
      msg = msg ~= "" and msg or ("invalid grpc-status: " .. tostring(code_text))
    end
    n = 2
  end
  return make(math.floor(n), msg, details)
end

function status.is(x)
  return getmetatable(x) == Status
end

function Status:ok() return self.code == 0 end
function Status:name() return status.codes[self.code] end

function Status:__tostring()
  return "rpc error: code = " .. (go_name[self.code] or tostring(self.code)) ..
    " desc = " .. self.message
end
Status.tostring = Status.__tostring

function Status.__eq(a, b)
  return a.code == b.code and a.message == b.message and a.details_bin == b.details_bin and
    a.details == b.details
end

-- status.not_found(msg, details), status.ok(), ... one helper for every code.
for _, c in ipairs(CODES) do
  local n = c[2]
  local where = "lgrpc.status." .. c[1]:lower()
  status[c[1]:lower()] = function(message, details)
    if message ~= nil and type(message) ~= "string" then
      error(where .. ": message must be a string", 2)
    end
    local err = check_details(details, where)
    if err then error(err, 2) end
    return make(n, message, details)
  end
end

---------------------------------------------------------------------------------------------
-- the rich error model: google.rpc.Status in grpc-status-details-bin

local TYPE_PREFIX = "type.googleapis.com/"

local function field(name, number, ftype, label, type_name)
  return { name = name, number = number, type = ftype, label = label or "LABEL_OPTIONAL",
    type_name = type_name, json_name = name }
end

-- google.rpc.Status and google.protobuf.Any, built in: the trailer decodes whatever the
-- user's pool holds. (Schemas are immutable, so this one is shared.)
local builtin
local function builtin_schema()
  if builtin then return builtin end
  local any = {
    name = "google/protobuf/any.proto", package = "google.protobuf", syntax = "proto3",
    message_type = { { name = "Any", field = {
      field("type_url", 1, "TYPE_STRING"), field("value", 2, "TYPE_BYTES") } } },
  }
  local st = {
    name = "google/rpc/status.proto", package = "google.rpc", syntax = "proto3",
    dependency = { "google/protobuf/any.proto" },
    message_type = { { name = "Status", field = {
      field("code", 1, "TYPE_INT32"), field("message", 2, "TYPE_STRING"),
      field("details", 3, "TYPE_MESSAGE", "LABEL_REPEATED", ".google.protobuf.Any") } } },
  }
  builtin = assert(require("lgrpc.proto.codec").schema({ any, st }))
  return builtin
end

-- The standard detail types, from googleapis' google/rpc/error_details.proto (Debian:
-- golang-github-gogo-googleapis-dev), in a private pool loaded on first use.
status.googleapis_include = "/usr/share/gocode/src/github.com/gogo/googleapis"
local std_pool, std_err
local function standard_pool()
  if std_pool or std_err then return std_pool, std_err end
  local proto = require "lgrpc.proto"
  local pool, err = proto.load{ "google/rpc/error_details.proto",
    include = { status.googleapis_include } }
  if not pool then
    std_err = "google/rpc/error_details.proto: " .. tostring(err) ..
      " (install golang-github-gogo-googleapis-dev)"
  end
  std_pool = pool
  return std_pool, std_err
end

local function type_name_of(url)
  return (url:match("([^/]+)$")) or url
end

local function full_url(t)
  if t:find("/", 1, true) then return t end
  return TYPE_PREFIX .. t
end

-- The pool that knows `name`: the user's first, then the standard one for google.rpc.*.
local function pool_for(name, pool)
  if pool and pool:message(name) then return pool end
  if name:match("^google%.rpc%.") then
    local p = standard_pool()
    if p and p:message(name) then return p end
  end
  return nil
end

--- One detail table as an Any { type_url, value }, or nil, err.
function status.pack_detail(d, pool)
  if d["@type"] == nil then return { type_url = d.type_url, value = d.value } end
  local url = full_url(d["@type"])
  local name = type_name_of(url)
  local p = pool_for(name, pool)
  if not p then return nil, "unknown detail type " .. name end
  local bytes, err = p:encode(name, d)
  if not bytes then return nil, name .. ": " .. tostring(err) end
  return { type_url = url, value = bytes }
end

--- An Any { type_url, value } as a detail table: decoded (with ["@type"]) when the type is
-- known to `pool` or is a standard google.rpc one, else the raw Any itself.
function status.unpack_detail(any, pool, dopts)
  local url = any.type_url or ""
  local name = type_name_of(url)
  local p = name ~= "" and pool_for(name, pool)
  if p then
    local msg = p:decode(name, any.value or "", dopts)
    if msg then
      msg["@type"] = url
      return msg
    end
  end
  return { type_url = url, value = any.value or "" }
end

--- The bytes of google.rpc.Status for st (its code, message and details), or nil, err.
-- Raw bytes given to status.new are returned as they are.
function status.encode_details(st, pool)
  if st.details_bin then return st.details_bin end
  if st.details == nil then return nil end
  local anys = {}
  for i, d in ipairs(st.details) do
    local any, err = status.pack_detail(d, pool)
    if not any then return nil, "status detail " .. i .. ": " .. err end
    anys[i] = any
  end
  return builtin_schema():encode("google.rpc.Status",
    { code = st.code, message = st.message, details = anys })
end

--- The status a client reports: grpc-status code and grpc-message text (already decoded), and
-- the grpc-status-details-bin bytes (or nil). The details are trusted only when the trailer
-- decodes and agrees with code and message; otherwise st.details_error says why.
function status.from_trailer(code, message, bin, pool, dopts)
  local st = make(code, message, nil)
  if bin == nil then return st end
  st.details_bin = bin
  local s, err = builtin_schema():decode("google.rpc.Status", bin)
  if not s then
    st.details_error = "malformed grpc-status-details-bin: " .. tostring(err)
    return st
  end
  local scode, smsg = s.code or 0, s.message or ""
  if scode ~= code then
    st.details_error = string.format(
      "grpc-status-details-bin disagrees with grpc-status: code %s (%s) in the details, %d (%s) in grpc-status",
      tostring(scode), tostring(status.codes[scode] or "?"), code, tostring(status.codes[code]))
    return st
  end
  if smsg ~= st.message then
    st.details_error = string.format(
      "grpc-status-details-bin disagrees with grpc-message: %q in the details, %q in grpc-message",
      smsg, st.message)
    return st
  end
  local details = {}
  for i, any in ipairs(s.details or {}) do details[i] = status.unpack_detail(any, pool, dopts) end
  st.details = details
  return st
end

--- The first detail of a type ("google.rpc.BadRequest" or its full type URL), or nil.
function Status:detail(t)
  local want = type_name_of(t)
  for _, d in ipairs(self.details or {}) do
    if type_name_of(d["@type"] or d.type_url or "") == want then return d end
  end
  return nil
end

---------------------------------------------------------------------------------------------
-- builders for the standard detail types (google/rpc/error_details.proto)

-- Checks t against the standard type (by encoding it) and returns it as a detail table.
local function standard(name, t, where)
  local p, err = standard_pool()
  if not p then error(where .. ": " .. err, 3) end
  t["@type"] = TYPE_PREFIX .. "google.rpc." .. name
  local ok, e = p:encode("google.rpc." .. name, t)
  if not ok then error(where .. ": " .. tostring(e), 3) end
  return t
end

local function list_arg(v, where, what)
  if type(v) ~= "table" then error(where .. ": array of " .. what .. " expected", 3) end
  local out = {}
  for i, x in ipairs(v) do
    if type(x) ~= "table" then error(where .. ": " .. what .. " " .. i .. " must be a table", 3) end
    local c = {}
    for k, vv in pairs(x) do c[k] = vv end
    out[i] = c
  end
  return out
end

local function copy_arg(v, where)
  if type(v) ~= "table" then error(where .. ": table expected, got " .. type(v), 3) end
  local c = {}
  for k, vv in pairs(v) do c[k] = vv end
  return c
end

--- status.bad_request{ { field = "name", description = "must not be empty" }, ... }
function status.bad_request(violations)
  return standard("BadRequest",
    { field_violations = list_arg(violations, "lgrpc.status.bad_request", "field violations") },
    "lgrpc.status.bad_request")
end

--- status.retry_info(seconds): RetryInfo with retry_delay (fractions become nanos).
function status.retry_info(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error("lgrpc.status.retry_info: seconds >= 0 expected", 2)
  end
  local whole = math.floor(seconds)
  local nanos = math.floor((seconds - whole) * 1e9 + 0.5)
  if nanos >= 1000000000 then whole, nanos = whole + 1, 0 end
  if math.tointeger then whole, nanos = math.tointeger(whole), math.tointeger(nanos) end
  return standard("RetryInfo", { retry_delay = { seconds = whole, nanos = nanos } },
    "lgrpc.status.retry_info")
end

--- status.error_info{ reason =, domain =, metadata = { k = v } }
function status.error_info(t)
  return standard("ErrorInfo", copy_arg(t, "lgrpc.status.error_info"), "lgrpc.status.error_info")
end

--- status.quota_failure{ { subject =, description = }, ... }
function status.quota_failure(violations)
  return standard("QuotaFailure",
    { violations = list_arg(violations, "lgrpc.status.quota_failure", "violations") },
    "lgrpc.status.quota_failure")
end

--- status.precondition_failure{ { type =, subject =, description = }, ... }
function status.precondition_failure(violations)
  return standard("PreconditionFailure",
    { violations = list_arg(violations, "lgrpc.status.precondition_failure", "violations") },
    "lgrpc.status.precondition_failure")
end

--- status.resource_info{ resource_type =, resource_name =, owner =, description = }
function status.resource_info(t)
  return standard("ResourceInfo", copy_arg(t, "lgrpc.status.resource_info"),
    "lgrpc.status.resource_info")
end

--- status.help{ { description =, url = }, ... }
function status.help(links)
  return standard("Help", { links = list_arg(links, "lgrpc.status.help", "links") },
    "lgrpc.status.help")
end

--- status.localized_message(locale, message)
function status.localized_message(locale, message)
  if type(locale) ~= "string" or type(message) ~= "string" then
    error("lgrpc.status.localized_message: locale and message strings expected", 2)
  end
  return standard("LocalizedMessage", { locale = locale, message = message },
    "lgrpc.status.localized_message")
end

--- status.debug_info{ detail =, stack_entries = { ... } }
function status.debug_info(t)
  return standard("DebugInfo", copy_arg(t, "lgrpc.status.debug_info"), "lgrpc.status.debug_info")
end

return status

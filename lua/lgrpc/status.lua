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

--- status.new(code, message, details) -> status object.
-- code: number 0..16 or a name; message: string (default ""); details: raw bytes of a
-- google.rpc.Status (sent as grpc-status-details-bin) or nil.
function status.new(code, message, details)
  local n = code_number(code)
  if n == nil then
    error("lgrpc.status.new: unknown status code " .. tostring(code), 2)
  end
  if message ~= nil and type(message) ~= "string" then
    error("lgrpc.status.new: message must be a string, got " .. type(message), 2)
  end
  if details ~= nil and type(details) ~= "string" then
    error("lgrpc.status.new: details must be a string of bytes, got " .. type(details), 2)
  end
  return setmetatable({ code = n, message = message or "", details = details }, Status)
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
  return setmetatable({ code = math.floor(n), message = msg, details = details }, Status)
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
  return a.code == b.code and a.message == b.message and a.details == b.details
end

-- status.not_found(msg, details), status.ok(), ... one helper for every code.
for _, c in ipairs(CODES) do
  local n = c[2]
  status[c[1]:lower()] = function(message, details)
    if message ~= nil and type(message) ~= "string" then
      error("lgrpc.status." .. c[1]:lower() .. ": message must be a string", 2)
    end
    if details ~= nil and type(details) ~= "string" then
      error("lgrpc.status." .. c[1]:lower() .. ": details must be a string of bytes", 2)
    end
    return setmetatable({ code = n, message = message or "", details = details }, Status)
  end
end

return status

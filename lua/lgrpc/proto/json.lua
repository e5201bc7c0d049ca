-- lgrpc.proto.json — the proto3 JSON mapping, driven by descriptor tables.
-- encode: message table -> JSON value tree -> text (the C writer in lgrpc.core.json);
-- decode: text -> JSON value tree (the C reader) -> message table. Owns no JSON syntax of its own
-- and never loops over characters in Lua. Output matches python3-protobuf's json_format.
local cj = require("lgrpc.core").json

local null, OBJECT, ARRAY, NUMBER = cj.null, cj.object, cj.array, cj.number
local int_text, integer, is_number, format_double = cj.int_text, cj.integer, cj.is_number, cj.format_double
local float32, is_utf8 = cj.float32, cj.is_utf8
local getmetatable, setmetatable, type, pairs, ipairs, tostring, tonumber, error, pcall, next =
  getmetatable, setmetatable, type, pairs, ipairs, tostring, tonumber, error, pcall, next
local floor, huge, math_type = math.floor, math.huge, math.type
local sort, concat, fmt = table.sort, table.concat, string.format

local json = {}

local MAX_MESSAGE_DEPTH = 100
local FLT_MAX = 3.4028234663852886e+38
local INT_KIND = {
  TYPE_INT32 = "int32", TYPE_SINT32 = "int32", TYPE_SFIXED32 = "int32",
  TYPE_UINT32 = "uint32", TYPE_FIXED32 = "uint32",
  TYPE_INT64 = "int64", TYPE_SINT64 = "int64", TYPE_SFIXED64 = "int64",
  TYPE_UINT64 = "uint64", TYPE_FIXED64 = "uint64",
}
local WRAPPERS = {
  ["google.protobuf.DoubleValue"] = true, ["google.protobuf.FloatValue"] = true,
  ["google.protobuf.Int64Value"] = true, ["google.protobuf.UInt64Value"] = true,
  ["google.protobuf.Int32Value"] = true, ["google.protobuf.UInt32Value"] = true,
  ["google.protobuf.BoolValue"] = true, ["google.protobuf.StringValue"] = true,
  ["google.protobuf.BytesValue"] = true,
}
local SPECIAL = { -- message types with their own JSON form
  ["google.protobuf.Any"] = "Any", ["google.protobuf.Duration"] = "Duration",
  ["google.protobuf.Timestamp"] = "Timestamp", ["google.protobuf.FieldMask"] = "FieldMask",
  ["google.protobuf.Struct"] = "Struct", ["google.protobuf.Value"] = "Value",
  ["google.protobuf.ListValue"] = "ListValue",
}

-- ---------------------------------------------------------------------------------------------
-- errors: raised inside, returned as nil, err at the entry points

local Failure = {}
local function fail(path, msg)
  error(setmetatable({ msg = path .. ": " .. msg }, Failure), 0)
end

local function run(fn, ctx, ...)
  local ok, res = pcall(fn, ctx, ...)
  if ok then return res end
  if getmetatable(res) == Failure and not ctx.paths then
    ctx.paths = true
    ok, res = pcall(fn, ctx, ...)
    if ok then return nil, "internal error: a second pass succeeded" end
  end
  if getmetatable(res) == Failure then return nil, res.msg end
  return nil, "internal error: " .. tostring(res)
end

-- Paths are built only when ctx.paths is set: the entry points run without them and, when
-- something fails, run again with them to name the JSON path in the error.
local function key_path(ctx, path, key)
  if not ctx.paths then return path end
  if key:find("^[%w_@%$%-]+$") then return path .. "." .. key end
  return path .. '["' .. key:gsub('[%c"\\]', "?") .. '"]'
end

local function index_path(ctx, path, i)
  if not ctx.paths then return path end
  return path .. "[" .. (i - 1) .. "]"
end

-- ---------------------------------------------------------------------------------------------
-- schema information, computed once per pool and type

local caches = setmetatable({}, { __mode = "k" })

local function strip(name) return (name:gsub("^%.", "")) end

local function lower_camel(name)
  -- protoc's json_name: drop each '_' and upper-case the letter after it
  return (name:gsub("_(%l?)", function(c) return c:upper() end))
end

local message_info

local function enum_info(pool, cache, full)
  local key = "enum:" .. full
  local info = cache[key]
  if info then return info end
  local desc = pool:enum(full)
  if not desc then error("enum type " .. full .. " is not in the pool", 0) end
  local file = pool:file_of(full)
  info = { name = full, by_name = {}, by_number = {}, closed = not (file and file.syntax == "proto3"),
           null = full == "google.protobuf.NullValue" }
  for _, v in ipairs(desc.value or {}) do
    info.by_name[v.name] = v.number
    if info.by_number[v.number] == nil then info.by_number[v.number] = v.name end
    if not info.first then info.first = v.name end
  end
  cache[key] = info
  return info
end

local function field_info(pool, cache, fd, syntax, oneof_names)
  local f = {
    name = fd.name, number = fd.number, json_name = fd.json_name or lower_camel(fd.name),
    repeated = fd.label == "LABEL_REPEATED", type = fd.type,
    int_kind = INT_KIND[fd.type], oneof = fd.oneof_index, default = fd.default_value,
  }
  if fd.oneof_index and not fd.proto3_optional and oneof_names then
    f.oneof_name = oneof_names[fd.oneof_index + 1]
  end
  f.in_oneof = fd.oneof_index ~= nil
  local t = fd.type
  if t == "TYPE_MESSAGE" or t == "TYPE_GROUP" then
    f.kind = "message"
    f.type_name = strip(fd.type_name)
  elseif t == "TYPE_ENUM" then
    f.kind = "enum"
    f.type_name = strip(fd.type_name)
  elseif f.int_kind then
    f.kind = "int"
  elseif t == "TYPE_FLOAT" or t == "TYPE_DOUBLE" then
    f.kind = "float"
    f.float32 = t == "TYPE_FLOAT"
  elseif t == "TYPE_BOOL" then
    f.kind = "bool"
  elseif t == "TYPE_STRING" then
    f.kind = "string"
  elseif t == "TYPE_BYTES" then
    f.kind = "bytes"
  else
    error("field " .. fd.name .. " has an unknown type " .. tostring(t), 0)
  end
  -- presence: explicit for messages, oneof members, proto3 optional and everything in proto2
  f.explicit = not f.repeated and (f.kind == "message" or f.in_oneof or syntax ~= "proto3")
  -- resolved lazily (types may refer to each other)
  f.pool, f.cache = pool, cache
  return f
end

local function resolve(f)
  if f.resolved then return f end
  f.resolved = true
  if f.kind == "message" then
    f.msg = message_info(f.pool, f.cache, f.type_name)
    if f.msg.map_entry and f.repeated then
      f.map = true
      f.key_field = resolve(f.msg.by_number[1])
      f.value_field = resolve(f.msg.by_number[2])
    end
  elseif f.kind == "enum" then
    f.enum = enum_info(f.pool, f.cache, f.type_name)
  end
  return f
end

message_info = function(pool, cache, full)
  local info = cache[full]
  if info then return info end
  local desc = pool:message(full)
  if not desc then error("message type " .. full .. " is not in the pool", 0) end
  local file = pool:file_of(full)
  local syntax = file and file.syntax or "proto2"
  if syntax == "" then syntax = "proto2" end
  info = {
    name = full, desc = desc, syntax = syntax, by_json = {}, by_name = {}, by_number = {},
    decl = {}, sorted = {}, map_entry = desc.options and desc.options.map_entry or false,
    special = SPECIAL[full] or (WRAPPERS[full] and "Wrapper") or nil,
    extendable = desc.extension_range ~= nil and #desc.extension_range > 0,
  }
  cache[full] = info
  local oneof_names = {}
  for i, o in ipairs(desc.oneof_decl or {}) do oneof_names[i] = o.name end
  for i, fd in ipairs(desc.field or {}) do
    local f = field_info(pool, cache, fd, syntax, oneof_names)
    info.decl[i] = f
    info.sorted[i] = f
    info.by_json[f.json_name] = f
    info.by_name[f.name] = f
    info.by_number[f.number] = f
  end
  sort(info.sorted, function(a, b) return a.number < b.number end)
  return info
end

local function extension_info(pool, cache, info, full)
  local key = "ext:" .. full
  local f = cache[key]
  if f ~= nil then return f or nil end
  local fd = pool.extension and pool:extension(full)
  if not fd or strip(fd.extendee or "") ~= info.name then
    cache[key] = false
    return nil
  end
  local file = pool:file_of(full)
  f = field_info(pool, cache, fd, file and file.syntax or "proto2", nil)
  f.extension_key = "[" .. full .. "]"
  f.explicit = not f.repeated
  cache[key] = f
  return f
end

local function get_cache(pool)
  local c = caches[pool]
  if not c then
    c = {}
    caches[pool] = c
  end
  return c
end

-- ---------------------------------------------------------------------------------------------
-- JSON trees

local function new_object() return setmetatable({}, OBJECT) end
local function new_array() return setmetatable({}, ARRAY) end
local function put(obj, key, value)
  obj[#obj + 1] = key
  obj[key] = value
end
local function raw_number(text) return setmetatable({ text = text }, NUMBER) end

-- ---------------------------------------------------------------------------------------------
-- integers in the codec's representation (int64: Lua integers on 5.4; numbers up to 2^53 or
-- decimal strings on LuaJIT; LuaJIT int64/uint64 cdata accepted on encode)

local function cdata_text(v)
  return (tostring(v):gsub("U?LL$", ""))
end

local function canonical_int(v, kind, path)
  local tv = type(v)
  if tv == "cdata" then v = cdata_text(v); tv = "string" end
  if tv ~= "number" and tv ~= "string" then fail(path, "expected an integer, got " .. tv) end
  local text, why = int_text(v, kind)
  if not text then fail(path, why == "out of range" and ("integer out of range for " .. kind) or "expected an integer") end
  return text
end

local function is_zero_number(v)
  return v == 0 and 1 / v > 0
end

-- ---------------------------------------------------------------------------------------------
-- timestamps and durations

local function days_from_civil(y, m, d)
  -- days since 1970-01-01 in the proleptic Gregorian calendar
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local TS_MIN, TS_MAX = -62135596800, 253402300799 -- 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z
local DUR_MAX = 315576000000

local function as_number(v, kind, path)
  if v == nil then return 0 end
  return tonumber(canonical_int(v, kind, path))
end

local function fraction(nanos, suffix)
  if nanos == 0 then return suffix end
  if nanos % 1000000 == 0 then return fmt(".%03d", floor(nanos / 1000000)) .. suffix end
  if nanos % 1000 == 0 then return fmt(".%06d", floor(nanos / 1000)) .. suffix end
  return fmt(".%09d", nanos) .. suffix
end

local function timestamp_text(msg, path)
  local s = as_number(msg.seconds, "int64", path .. ".seconds")
  local n = as_number(msg.nanos, "int32", path .. ".nanos")
  if s < TS_MIN or s > TS_MAX then fail(path, "Timestamp seconds out of range (years 1 to 9999)") end
  if n < 0 or n > 999999999 then fail(path, "Timestamp nanos out of range") end
  local days = floor(s / 86400)
  local rem = s - days * 86400
  local y, m, d = civil_from_days(days)
  return fmt("%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, floor(rem / 3600), floor(rem % 3600 / 60), rem % 60)
    .. fraction(n, "Z")
end

local function parse_nanos(frac, path, what)
  if frac == "" then return 0 end
  if #frac > 9 then fail(path, what .. " has more than 9 fractional digits") end
  return tonumber(frac .. ("0"):rep(9 - #frac))
end

local DAYS_IN_MONTH = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function timestamp_parse(v, path)
  if type(v) ~= "string" then fail(path, "expected an RFC 3339 timestamp string") end
  local y, mo, d, h, mi, s, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$")
  if not y then fail(path, 'invalid timestamp "' .. v .. '"') end
  local frac = ""
  if rest:sub(1, 1) == "." then
    frac, rest = rest:match("^%.(%d*)(.*)$")
    if frac == "" then fail(path, 'invalid timestamp "' .. v .. '"') end
  end
  local offset
  if rest == "Z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then fail(path, 'invalid timestamp "' .. v .. '": expected Z or an offset +hh:mm') end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then fail(path, 'invalid timestamp offset in "' .. v .. '"') end
    offset = (oh * 60 + om) * 60
    if sign == "-" then offset = -offset end
  end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  if y < 1 or mo < 1 or mo > 12 or d < 1 or d > DAYS_IN_MONTH[mo] or (mo == 2 and d == 29 and not leap)
    or h > 23 or mi > 59 or s > 59 then
    fail(path, 'invalid timestamp "' .. v .. '"')
  end
  local nanos = parse_nanos(frac, path, "timestamp")
  local secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
  if secs < TS_MIN or secs > TS_MAX then fail(path, 'timestamp "' .. v .. '" out of range (years 1 to 9999)') end
  return { seconds = secs, nanos = nanos }
end

local function duration_text(msg, path)
  local s = as_number(msg.seconds, "int64", path .. ".seconds")
  local n = as_number(msg.nanos, "int32", path .. ".nanos")
  if s < -DUR_MAX or s > DUR_MAX then fail(path, "Duration seconds out of range") end
  if n < -999999999 or n > 999999999 then fail(path, "Duration nanos out of range") end
  if (s < 0 and n > 0) or (s > 0 and n < 0) then fail(path, "Duration seconds and nanos have different signs") end
  local sign = (s < 0 or n < 0) and "-" or ""
  if s < 0 then s = -s end
  if n < 0 then n = -n end
  return sign .. fmt("%d", s) .. fraction(n, "s")
end

local function duration_parse(v, path)
  if type(v) ~= "string" then fail(path, 'expected a duration string like "1.5s"') end
  local sign, secs, frac = v:match("^(%-?)(%d+)%.?(%d*)s$")
  if not sign or v:find("%.s$") or #secs > 12 then fail(path, 'invalid duration "' .. v .. '"') end
  local s = tonumber(secs)
  local n = parse_nanos(frac, path, "duration")
  if s > DUR_MAX then fail(path, 'duration "' .. v .. '" out of range') end
  if sign == "-" then s, n = -s, -n end
  return { seconds = s, nanos = n }
end

local function field_mask_text(msg, path)
  local out = {}
  for i, p in ipairs(msg.paths or {}) do
    if type(p) ~= "string" then fail(path, "FieldMask path is not a string") end
    if p:find("%u") or p:find("_[^%l]") or p:find("_$") then
      fail(path, 'FieldMask path "' .. p .. '" has no lowerCamel form (it must be lower_snake_case)')
    end
    out[i] = p:gsub("_(%l)", string.upper)
  end
  return concat(out, ",")
end

local function field_mask_parse(v, path)
  if type(v) ~= "string" then fail(path, "expected a FieldMask string") end
  local paths = {}
  if v ~= "" then
    for p in (v .. ","):gmatch("([^,]*),") do
      if p:find("_") or not p:find("^[%w%.]+$") then fail(path, 'invalid FieldMask path "' .. p .. '"') end
      paths[#paths + 1] = p:gsub("%u", function(c) return "_" .. c:lower() end)
    end
  end
  return { paths = paths }
end

-- ---------------------------------------------------------------------------------------------
-- encode

local enc_message, enc_value

local function enc_float(f, v, path)
  if type(v) ~= "number" then fail(path, "expected a number, got " .. type(v)) end
  if v ~= v then return "NaN" end
  if v == huge then return "Infinity" end
  if v == -huge then return "-Infinity" end
  return raw_number(format_double(v, f.float32))
end

local function enc_enum(ctx, f, v, path)
  local e = f.enum
  local number, name
  if type(v) == "string" then
    number = e.by_name[v]
    if number == nil then fail(path, 'unknown value "' .. v .. '" for enum ' .. e.name) end
    name = e.by_number[number] -- an alias prints as the first name declared for its number
  elseif type(v) == "number" then
    if v ~= floor(v) then fail(path, "expected an enum value name or number") end
    number, name = v, e.by_number[v]
    if name == nil and e.closed then fail(path, "value " .. fmt("%d", v) .. " is not in closed enum " .. e.name) end
  else
    fail(path, "expected an enum value name or number, got " .. type(v))
  end
  if ctx.enum_numbers then return number end
  if e.null then return null end
  return name or number
end

enc_value = function(ctx, f, v, path, depth)
  local kind = f.kind
  if kind == "message" then return enc_message(ctx, f.msg, v, path, depth + 1) end
  if kind == "int" then
    local ik = f.int_kind
    if type(v) == "number" and (ik == "int32" or ik == "uint32") and v == floor(v)
      and v >= (ik == "int32" and -2147483648 or 0) and v <= (ik == "int32" and 2147483647 or 4294967295) then
      return math_type and math.tointeger(v) or v -- the writer prints integers as integers
    end
    local text = canonical_int(v, ik, path)
    if ik == "int64" or ik == "uint64" then return text end
    return tonumber(text)
  end
  if kind == "float" then
    -- the writer prints a non-integral Lua float the way Python's repr does
    if not f.float32 and type(v) == "number" and v == v and v ~= floor(v) then return v + 0.0 end
    return enc_float(f, v, path)
  end
  if kind == "enum" then return enc_enum(ctx, f, v, path) end
  if kind == "bool" then
    if type(v) ~= "boolean" then fail(path, "expected a boolean, got " .. type(v)) end
    return v
  end
  if type(v) ~= "string" then fail(path, "expected a string, got " .. type(v)) end
  if kind == "bytes" then return cj.base64_encode(v) end
  if not is_utf8(v) then fail(path, "string field holds invalid UTF-8") end
  return v
end

local function is_default(f, v)
  local kind = f.kind
  if kind == "int" then
    if type(v) == "number" then return is_zero_number(v) end
    if type(v) == "string" then return v == "0" end
    if type(v) == "cdata" then return cdata_text(v) == "0" end
    return false
  elseif kind == "float" then
    return type(v) == "number" and is_zero_number(v)
  elseif kind == "bool" then
    return v == false
  elseif kind == "string" or kind == "bytes" then
    return v == ""
  elseif kind == "enum" then
    return v == 0 or (type(v) == "string" and f.enum.by_name[v] == 0)
  end
  return false
end

local function map_key_text(f, k, path)
  local kf = f.key_field
  if kf.kind == "string" then
    if type(k) ~= "string" then fail(path, "map key must be a string") end
    return k
  elseif kf.kind == "bool" then
    if type(k) ~= "boolean" then fail(path, "map key must be a boolean") end
    return k and "true" or "false"
  end
  return canonical_int(k, kf.int_kind, path)
end

local function int_text_less(a, b)
  -- numeric order of canonical decimal texts
  local na, nb = a:sub(1, 1) == "-", b:sub(1, 1) == "-"
  if na ~= nb then return na end
  if #a ~= #b then return (#a < #b) ~= na end
  if na then return a > b end
  return a < b
end

local function enc_field(ctx, f, v, path, depth)
  resolve(f)
  if f.map then
    if type(v) ~= "table" then fail(path, "expected a table for map field " .. f.name) end
    if next(v) == nil then return nil end
    local keys, texts = {}, {}
    for k in pairs(v) do
      local t = map_key_text(f, k, path)
      keys[#keys + 1] = t
      texts[t] = k
    end
    if f.key_field.kind == "int" then sort(keys, int_text_less) else sort(keys) end
    local obj = new_object()
    for _, t in ipairs(keys) do
      local kp = key_path(ctx, path, t)
      local item = v[texts[t]]
      if item == nil then fail(kp, "map value is nil") end
      put(obj, t, enc_value(ctx, f.value_field, item, kp, depth))
    end
    return obj
  elseif f.repeated then
    if type(v) ~= "table" then fail(path, "expected an array for repeated field " .. f.name) end
    local n = #v
    if n == 0 then return nil end
    local arr = new_array()
    for i = 1, n do
      arr[i] = enc_value(ctx, f, v[i], index_path(ctx, path, i), depth)
    end
    return arr
  end
  if not f.explicit and is_default(f, v) then return nil end
  return enc_value(ctx, f, v, path, depth)
end

local function default_json(ctx, f, path)
  resolve(f)
  if f.map then return new_object() end
  if f.repeated then return new_array() end
  local d = f.default
  local kind = f.kind
  if kind == "int" then
    local text = d and canonical_int(d, f.int_kind, path) or "0"
    if f.int_kind == "int64" or f.int_kind == "uint64" then return text end
    return tonumber(text)
  elseif kind == "float" then
    local v = 0.0
    if d == "inf" then v = huge elseif d == "-inf" then v = -huge elseif d == "nan" then v = 0 / 0
    elseif d then v = tonumber(d) end
    return enc_float(f, v, path)
  elseif kind == "bool" then
    return d == "true"
  elseif kind == "string" then
    return d or ""
  elseif kind == "bytes" then
    -- default_value holds bytes C-escaped, as protoc writes them
    return cj.base64_encode(d and require("lgrpc.proto.codec").unescape_default(d) or "")
  elseif kind == "enum" then
    local name = d or f.enum.by_number[0] or f.enum.first
    return enc_enum(ctx, f, name, path)
  end
end

local function enc_fields(ctx, info, msg, path, obj, depth)
  local present = {}
  for _, f in ipairs(info.sorted) do
    local v = msg[f.name]
    if v ~= nil then present[#present + 1] = f end
  end
  -- extensions, "[full.name]" keys, merged in field-number order
  if info.extendable then
    local n = #present
    for k in pairs(msg) do
      if type(k) == "string" and k:sub(1, 1) == "[" and k:sub(-1) == "]" then
        local f = extension_info(ctx.pool, ctx.cache, info, k:sub(2, -2))
        if not f then fail(path, "unknown extension " .. k .. " for " .. info.name) end
        present[#present + 1] = f
      end
    end
    if #present > n then sort(present, function(a, b) return a.number < b.number end) end
  end
  for _, f in ipairs(present) do
    local name = f.extension_key or (ctx.proto_names and f.name or f.json_name)
    local kp = key_path(ctx, path, name)
    local j = enc_field(ctx, f, msg[f.extension_key or f.name], kp, depth)
    if j ~= nil then put(obj, name, j) end
  end
  if ctx.emit_defaults then
    for _, f in ipairs(info.decl) do
      resolve(f)
      if not ((not f.repeated and f.kind == "message") or f.in_oneof) then
        local name = ctx.proto_names and f.name or f.json_name
        if obj[name] == nil then put(obj, name, default_json(ctx, f, key_path(ctx, path, name))) end
      end
    end
  end
  return obj
end

local WKT_ENCODE = {}

enc_message = function(ctx, info, msg, path, depth)
  if type(msg) ~= "table" then fail(path, "expected a table for message " .. info.name .. ", got " .. type(msg)) end
  if depth > ctx.max_depth then fail(path, "messages nested too deep") end
  local special = info.special
  if special then return WKT_ENCODE[special](ctx, info, msg, path, depth) end
  return enc_fields(ctx, info, msg, path, new_object(), depth)
end

function WKT_ENCODE.Wrapper(ctx, info, msg, path, depth)
  local f = resolve(info.by_name.value)
  local v = msg.value
  if v == nil then return default_json(ctx, f, path) end
  return enc_value(ctx, f, v, path, depth)
end

function WKT_ENCODE.Timestamp(ctx, info, msg, path) return timestamp_text(msg, path) end
function WKT_ENCODE.Duration(ctx, info, msg, path) return duration_text(msg, path) end
function WKT_ENCODE.FieldMask(ctx, info, msg, path) return field_mask_text(msg, path) end

local function enc_struct(ctx, info, msg, path, depth)
  local fields = msg.fields or {}
  if type(fields) ~= "table" then fail(path, "Struct fields must be a table") end
  local keys = {}
  for k in pairs(fields) do
    if type(k) ~= "string" then fail(path, "Struct keys must be strings") end
    keys[#keys + 1] = k
  end
  sort(keys)
  local obj = new_object()
  local vinfo = message_info(ctx.pool, ctx.cache, "google.protobuf.Value")
  for _, k in ipairs(keys) do
    local kp = key_path(ctx, path, k)
    if not is_utf8(k) then fail(kp, "Struct key holds invalid UTF-8") end
    put(obj, k, enc_message(ctx, vinfo, fields[k], kp, depth + 1))
  end
  return obj
end
WKT_ENCODE.Struct = enc_struct

local function enc_list(ctx, info, msg, path, depth)
  local values = msg.values or {}
  local arr = new_array()
  local vinfo = message_info(ctx.pool, ctx.cache, "google.protobuf.Value")
  for i = 1, #values do
    arr[i] = enc_message(ctx, vinfo, values[i], index_path(ctx, path, i), depth + 1)
  end
  return arr
end
WKT_ENCODE.ListValue = enc_list

local VALUE_KINDS = { "null_value", "number_value", "string_value", "bool_value", "struct_value", "list_value" }

function WKT_ENCODE.Value(ctx, info, msg, path, depth)
  local which
  for _, k in ipairs(VALUE_KINDS) do
    if msg[k] ~= nil then
      if which then fail(path, "Value has both " .. which .. " and " .. k .. " set") end
      which = k
    end
  end
  if which == nil or which == "null_value" then return null end
  local v = msg[which]
  if which == "number_value" then
    if type(v) ~= "number" then fail(path, "number_value must be a number") end
    -- JSON has no NaN or Infinity numbers, and a string would read back as string_value
    if v ~= v or v == huge or v == -huge then fail(path, "Value number_value cannot be NaN or Infinity in JSON") end
    return raw_number(format_double(v))
  elseif which == "string_value" then
    if type(v) ~= "string" then fail(path, "string_value must be a string") end
    if not is_utf8(v) then fail(path, "string_value holds invalid UTF-8") end
    return v
  elseif which == "bool_value" then
    if type(v) ~= "boolean" then fail(path, "bool_value must be a boolean") end
    return v
  elseif which == "struct_value" then
    if type(v) ~= "table" then fail(path, "struct_value must be a table") end
    return enc_struct(ctx, info, v, path, depth + 1)
  end
  if type(v) ~= "table" then fail(path, "list_value must be a table") end
  return enc_list(ctx, info, v, path, depth + 1)
end

local function any_type(ctx, url, path)
  if type(url) ~= "string" then fail(path, "Any type_url must be a string") end
  local name = url:match("([^/]*)$")
  local ok, sub = pcall(message_info, ctx.pool, ctx.cache, name)
  if not ok or name == "" then fail(path, 'Any type "' .. url .. '" is not in the pool') end
  return name, sub
end

function WKT_ENCODE.Any(ctx, info, msg, path, depth)
  local url, value = msg.type_url, msg.value
  if (url == nil or url == "") and (value == nil or value == "") then return new_object() end
  local name, sub = any_type(ctx, url, path)
  if value ~= nil and type(value) ~= "string" then fail(path, "Any value must be a string of bytes") end
  local inner, err = ctx.pool:decode(name, value or "")
  if not inner then fail(path, "cannot decode the Any's " .. name .. ": " .. tostring(err)) end
  local obj = new_object()
  put(obj, "@type", url)
  if sub.special then
    put(obj, "value", enc_message(ctx, sub, inner, key_path(ctx, path, "value"), depth + 1))
    return obj
  end
  return enc_fields(ctx, sub, inner, path, obj, depth + 1)
end

-- ---------------------------------------------------------------------------------------------
-- decode

local SKIP = {} -- an unknown enum name under ignore_unknown: the value is left out
local dec_message

local function number_text(v)
  -- the text of a JSON number the reader handed over unboxed (exact by construction)
  if math_type and math_type(v) == "integer" then return tostring(v) end
  return fmt("%.0f", v)
end

local function dec_int(f, v, path, kind)
  local text
  local mt = getmetatable(v)
  if type(v) == "number" then
    text = number_text(v)
  elseif mt == NUMBER then
    text = v.text
  elseif type(v) == "string" then
    text = v
  else
    fail(path, "expected an integer")
  end
  local r, why = integer(text, kind)
  if r == nil then
    if why == "out of range" then fail(path, "integer out of range for " .. kind) end
    if why == "not an integer" then fail(path, "expected an integer, got " .. text) end
    fail(path, 'expected an integer, got "' .. text .. '"')
  end
  return r
end

local function dec_float(f, v, path)
  local d
  if type(v) == "number" then
    d = v + 0.0
  elseif getmetatable(v) == NUMBER then
    d = v.value
    if d ~= d or d == huge or d == -huge then fail(path, "number out of range") end
  elseif type(v) == "string" then
    if v == "NaN" then d = 0 / 0
    elseif v == "Infinity" then d = huge
    elseif v == "-Infinity" then d = -huge
    elseif is_number(v) then
      d = tonumber(v) + 0.0
      if d == huge or d == -huge then fail(path, "number out of range") end
    else
      fail(path, 'expected a number, got "' .. v .. '"')
    end
  else
    fail(path, "expected a number")
  end
  if f.float32 then
    local r = float32(d)
    if r == nil then fail(path, "number out of range for float") end
    d = r
  end
  return d
end

local function dec_enum(ctx, f, v, path)
  local e = f.enum
  if type(v) == "string" then
    local number = e.by_name[v]
    if number ~= nil then return e.by_number[number] end -- aliases read as the first name
    if ctx.ignore_unknown then return SKIP end
    fail(path, 'unknown value "' .. v .. '" for enum ' .. e.name)
  end
  if type(v) == "number" or getmetatable(v) == NUMBER then
    local n = dec_int(f, v, path, "int32")
    local name = e.by_number[n]
    if name then return name end
    if not e.closed then return n end
    if ctx.ignore_unknown then return SKIP end
    fail(path, "value " .. fmt("%d", n) .. " is not in closed enum " .. e.name)
  end
  fail(path, "expected an enum value name or number")
end

local function dec_value(ctx, f, v, path, depth)
  local kind = f.kind
  if kind == "message" then return dec_message(ctx, f.msg, v, path, depth + 1) end
  if kind == "int" then return dec_int(f, v, path, f.int_kind) end
  if kind == "float" then return dec_float(f, v, path) end
  if kind == "enum" then return dec_enum(ctx, f, v, path) end
  if kind == "bool" then
    if type(v) ~= "boolean" then fail(path, "expected true or false") end
    return v
  end
  if type(v) ~= "string" then fail(path, "expected a string") end
  if kind == "bytes" then
    local b = cj.base64_decode(v)
    if not b then fail(path, "invalid base64") end
    return b
  end
  return v
end

local function is_value_type(f)
  return f.kind == "message" and f.type_name == "google.protobuf.Value"
end

local function null_of(f)
  -- what JSON null means for one element of field f, or nil when it means "absent"
  if is_value_type(f) then return { null_value = "NULL_VALUE" } end
  if f.kind == "enum" and f.type_name == "google.protobuf.NullValue" then return "NULL_VALUE" end
  return nil
end

local function dec_map_key(f, k, path)
  local kf = f.key_field
  if kf.kind == "string" then return k end
  if kf.kind == "bool" then
    if k == "true" then return true elseif k == "false" then return false end
    fail(path, 'map key "' .. k .. '" is not true or false')
  end
  local r, why = integer(k, kf.int_kind)
  if r == nil then
    fail(path, 'map key "' .. k .. '" is not ' .. (why == "out of range" and ("in range for " .. kf.int_kind) or "an integer"))
  end
  return r
end

local function dec_field(ctx, f, v, path, depth)
  resolve(f)
  if f.map then
    if getmetatable(v) ~= OBJECT then fail(path, "expected an object for map field " .. f.name) end
    local out = {}
    for i = 1, #v do
      local k = v[i]
      local kp = key_path(ctx, path, k)
      local item = v[k]
      local key = dec_map_key(f, k, kp)
      if out[key] ~= nil then fail(kp, "duplicate map key") end
      local val
      if item == null then
        val = null_of(f.value_field)
        if val == nil then fail(kp, "null is not allowed as a map value") end
      else
        val = dec_value(ctx, f.value_field, item, kp, depth)
      end
      if val ~= SKIP then out[key] = val end
    end
    return out
  elseif f.repeated then
    if getmetatable(v) ~= ARRAY then fail(path, "expected an array for repeated field " .. f.name) end
    local out, n = {}, 0
    for i = 1, #v do
      local ip = index_path(ctx, path, i)
      local item = v[i]
      local val
      if item == null then
        val = null_of(f)
        if val == nil then fail(ip, "null is not allowed in a repeated field") end
      else
        val = dec_value(ctx, f, item, ip, depth)
      end
      if val ~= SKIP then
        n = n + 1
        out[n] = val
      end
    end
    return out
  end
  return dec_value(ctx, f, v, path, depth)
end

local function dec_fields(ctx, info, node, path, msg, depth, skip_key)
  local seen, oneofs = {}, {}
  for i = 1, #node do
    local key = node[i]
    if key ~= skip_key then
      local v = node[key]
      local kp = key_path(ctx, path, key)
      local f = info.by_json[key] or info.by_name[key]
      if not f and key:sub(1, 1) == "[" and key:sub(-1) == "]" then
        f = extension_info(ctx.pool, ctx.cache, info, key:sub(2, -2))
      end
      if not f then
        if not ctx.ignore_unknown then fail(path, 'message ' .. info.name .. ' has no field named "' .. key .. '"') end
      else
        local id = f.extension_key or f.number
        if seen[id] then fail(kp, 'field given twice (also as "' .. seen[id] .. '")') end
        seen[id] = key
        if f.oneof_name and v ~= null then
          if oneofs[f.oneof_name] then
            fail(kp, 'oneof ' .. f.oneof_name .. ' already set by "' .. oneofs[f.oneof_name] .. '"')
          end
          oneofs[f.oneof_name] = key
        end
        local store = f.extension_key or f.name
        if v == null then
          resolve(f)
          if not f.repeated then msg[store] = null_of(f) end
        else
          local val = dec_field(ctx, f, v, kp, depth)
          if val ~= SKIP then msg[store] = val end
        end
      end
    end
  end
  return msg
end

local WKT_DECODE = {}

dec_message = function(ctx, info, node, path, depth)
  if depth > ctx.max_depth then fail(path, "messages nested too deep") end
  local special = info.special
  if special then return WKT_DECODE[special](ctx, info, node, path, depth) end
  if getmetatable(node) ~= OBJECT then fail(path, "expected an object for message " .. info.name) end
  return dec_fields(ctx, info, node, path, {}, depth)
end

function WKT_DECODE.Wrapper(ctx, info, node, path, depth)
  local f = resolve(info.by_name.value)
  local v = dec_value(ctx, f, node, path, depth)
  return { value = v }
end

function WKT_DECODE.Timestamp(ctx, info, node, path) return timestamp_parse(node, path) end
function WKT_DECODE.Duration(ctx, info, node, path) return duration_parse(node, path) end
function WKT_DECODE.FieldMask(ctx, info, node, path) return field_mask_parse(node, path) end

local dec_json_value

local function dec_struct(ctx, node, path, depth)
  if getmetatable(node) ~= OBJECT then fail(path, "expected an object for google.protobuf.Struct") end
  local fields = {}
  for i = 1, #node do
    local k = node[i]
    fields[k] = dec_json_value(ctx, node[k], key_path(ctx, path, k), depth + 1)
  end
  return { fields = fields }
end

local function dec_list(ctx, node, path, depth)
  if getmetatable(node) ~= ARRAY then fail(path, "expected an array for google.protobuf.ListValue") end
  local values = {}
  for i = 1, #node do
    values[i] = dec_json_value(ctx, node[i], index_path(ctx, path, i), depth + 1)
  end
  return { values = values }
end

dec_json_value = function(ctx, node, path, depth)
  if depth > ctx.max_depth then fail(path, "values nested too deep") end
  local t = type(node)
  if node == null then return { null_value = "NULL_VALUE" } end
  if t == "boolean" then return { bool_value = node } end
  if t == "string" then return { string_value = node } end
  if t == "number" then return { number_value = node + 0.0 } end
  local mt = getmetatable(node)
  if mt == NUMBER then
    local d = node.value
    if d == huge or d == -huge then fail(path, "number out of range") end
    return { number_value = d }
  end
  if mt == OBJECT then return { struct_value = dec_struct(ctx, node, path, depth) } end
  return { list_value = dec_list(ctx, node, path, depth) }
end

function WKT_DECODE.Value(ctx, info, node, path, depth) return dec_json_value(ctx, node, path, depth) end
function WKT_DECODE.Struct(ctx, info, node, path, depth) return dec_struct(ctx, node, path, depth) end
function WKT_DECODE.ListValue(ctx, info, node, path, depth) return dec_list(ctx, node, path, depth) end

function WKT_DECODE.Any(ctx, info, node, path, depth)
  if getmetatable(node) ~= OBJECT then fail(path, "expected an object for google.protobuf.Any") end
  if #node == 0 then return {} end
  local url = node["@type"]
  if url == nil then fail(path, "Any without @type") end
  if type(url) ~= "string" then fail(key_path(ctx, path, "@type"), "expected a type URL string") end
  local name, sub = any_type(ctx, url, key_path(ctx, path, "@type"))
  local inner
  if sub.special then
    for i = 1, #node do
      local k = node[i]
      if k ~= "@type" and k ~= "value" then
        fail(path, 'unexpected member "' .. k .. '" in an Any holding ' .. name .. ' (expected "value")')
      end
    end
    if node.value == nil then fail(path, 'Any holding ' .. name .. ' needs a "value" member') end
    inner = dec_message(ctx, sub, node.value, key_path(ctx, path, "value"), depth + 1)
  else
    inner = dec_fields(ctx, sub, node, path, {}, depth + 1, "@type")
  end
  local bytes, err = ctx.pool:encode(name, inner)
  if not bytes then fail(path, "cannot encode the Any's " .. name .. ": " .. tostring(err)) end
  return { type_url = url, value = bytes }
end

-- ---------------------------------------------------------------------------------------------
-- entry points

local function type_of(pool, type_name)
  local cache = get_cache(pool)
  local name = strip(type_name)
  local ok, info = pcall(message_info, pool, cache, name)
  if not ok then return nil, nil, 'unknown message type "' .. name .. '"' end
  return info, cache
end

--- json.encode(pool, type_name, msg [, opts]) -> text | nil, err
--- opts: emit_defaults (false), proto_names (false), enums ("name" | "number"),
---       indent (2; 0 for compact output), ascii (true: \uXXXX for non-ASCII), max_depth (100)
function json.encode(pool, type_name, msg, opts)
  if type(type_name) ~= "string" then error("json.encode: type name expected", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("json.encode: options table expected", 2) end
  local enums = opts.enums or "name"
  if enums ~= "name" and enums ~= "number" then error('json.encode: enums must be "name" or "number"', 2) end
  local indent = opts.indent
  if indent == nil then indent = 2 elseif indent == false then indent = 0 end
  if type(indent) ~= "number" or indent < 0 or indent > 64 or indent ~= floor(indent) then
    error("json.encode: indent must be an integer from 0 to 64", 2)
  end
  if type(msg) ~= "table" then error("json.encode: message table expected", 2) end
  local info, cache, err = type_of(pool, type_name)
  if not info then return nil, err end
  local ctx = {
    pool = pool, cache = cache, emit_defaults = opts.emit_defaults and true or false,
    proto_names = opts.proto_names and true or false, enum_numbers = enums == "number",
    max_depth = opts.max_depth or MAX_MESSAGE_DEPTH,
  }
  local tree; tree, err = run(enc_message, ctx, info, msg, "$", 1)
  if tree == nil then return nil, err end
  local text; text, err = cj.encode(tree, math_type and math.tointeger(indent) or indent, opts.ascii ~= false)
  if not text then return nil, "$: " .. err end
  return text
end

--- json.decode(pool, type_name, text [, opts]) -> msg | nil, err
--- opts: ignore_unknown (false: unknown fields and enum names are errors), max_depth (100)
function json.decode(pool, type_name, text, opts)
  if type(type_name) ~= "string" then error("json.decode: type name expected", 2) end
  if type(text) ~= "string" then error("json.decode: JSON text expected", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("json.decode: options table expected", 2) end
  local info, cache, err = type_of(pool, type_name)
  if not info then return nil, err end
  local max_depth = opts.max_depth or MAX_MESSAGE_DEPTH
  local tree; tree, err = cj.decode(text, math.min(2 * max_depth + 10, 1000))
  if tree == nil then return nil, err end
  local ctx = { pool = pool, cache = cache, ignore_unknown = opts.ignore_unknown and true or false, max_depth = max_depth }
  return run(dec_message, ctx, info, tree, "$", 1)
end

--- Exposed for tools that print JSON values themselves.
json.null = null

return json

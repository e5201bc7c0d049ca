-- lgrpc.proto.options: option statements -> the `options` tables of descriptors, as protoc's
-- OptionInterpreter leaves them: standard options (fields of google.protobuf.*Options) as plain
-- keys with typed values; custom options (extensions of those messages) as wire records appended
-- to options["$unknown"], one record per statement in source order, aggregate values ({...} in
-- text format) encoded as protoc's DynamicMessage serializes them. Owns the small wire encoder
-- this needs; never reads files.
local numbers = require "lgrpc.proto.numbers"

local M = {}

-- the absent list, for `ipairs(list or EMPTY)`; never written to
local EMPTY = setmetatable({}, { __newindex = function() error("EMPTY is read-only", 2) end })

local function raise(pos, msg) error({ lgrpc_compile = true, pos = pos, msg = msg }, 0) end

---------------------------------------------------------------------------------------------
-- Wire encoding
local TWO32 = 4294967296
local char, floor = string.char, math.floor

local function varint_u64(hi, lo)
  local out = {}
  while true do
    local b = lo % 128
    -- shift (hi, lo) right by 7
    lo = floor(lo / 128) + (hi % 128) * 33554432
    hi = floor(hi / 128)
    if hi == 0 and lo == 0 then
      out[#out + 1] = char(b)
      return table.concat(out)
    end
    out[#out + 1] = char(b + 128)
  end
end
local function varint(n) -- 0 <= n < 2^53
  return varint_u64(floor(n / TWO32), n % TWO32)
end
M.varint = varint
local function key(number, wt) return varint(number * 8 + wt) end
local function fixed32(lo)
  return char(lo % 256, floor(lo / 256) % 256, floor(lo / 65536) % 256, floor(lo / 16777216) % 256)
end

local pack_float, pack_double
-- NaN is written as C++'s quiet_NaN (sign clear), whatever sign Lua's 0/0 carries
if string.pack then
  pack_float = function(x) if x ~= x then return "\0\0\192\127" end return string.pack("<f", x) end
  pack_double = function(x) if x ~= x then return "\0\0\0\0\0\0\248\127" end return string.pack("<d", x) end
else
  local ffi = require "ffi"
  local fbox, dbox = ffi.new("float[1]"), ffi.new("double[1]")
  pack_float = function(x) if x ~= x then return "\0\0\192\127" end fbox[0] = x; return ffi.string(fbox, 4) end
  pack_double = function(x) if x ~= x then return "\0\0\0\0\0\0\248\127" end dbox[0] = x; return ffi.string(dbox, 8) end
end

local wire_type = {
  TYPE_DOUBLE = 1, TYPE_FLOAT = 5, TYPE_INT64 = 0, TYPE_UINT64 = 0, TYPE_INT32 = 0, TYPE_FIXED64 = 1,
  TYPE_FIXED32 = 5, TYPE_BOOL = 0, TYPE_STRING = 2, TYPE_GROUP = 3, TYPE_MESSAGE = 2, TYPE_BYTES = 2,
  TYPE_UINT32 = 0, TYPE_ENUM = 0, TYPE_SFIXED32 = 5, TYPE_SFIXED64 = 1, TYPE_SINT32 = 0, TYPE_SINT64 = 0,
}

-- an integer value {neg, {hi, lo}} -> two's complement {hi, lo}
local function twos(v)
  if v.neg and (v.mag[1] ~= 0 or v.mag[2] ~= 0) then return numbers.negate(v.mag) end
  return v.mag
end

-- payload of one scalar (no key); value already converted to the field's type
local function scalar_payload(t, v)
  if t == "TYPE_INT32" or t == "TYPE_INT64" or t == "TYPE_ENUM" then
    local w = twos(v)
    return varint_u64(w[1], w[2])
  elseif t == "TYPE_UINT32" or t == "TYPE_UINT64" then
    return varint_u64(v.mag[1], v.mag[2])
  elseif t == "TYPE_SINT32" or t == "TYPE_SINT64" then
    -- zigzag: 2m for m >= 0, 2m - 1 for -m
    local hi, lo = v.mag[1] * 2 + floor(v.mag[2] * 2 / TWO32), (v.mag[2] * 2) % TWO32
    if v.neg and (v.mag[1] ~= 0 or v.mag[2] ~= 0) then
      if lo == 0 then lo = TWO32 - 1; hi = hi - 1 else lo = lo - 1 end
    end
    return varint_u64(hi % TWO32, lo)
  elseif t == "TYPE_BOOL" then
    return v and "\1" or "\0"
  elseif t == "TYPE_FIXED32" or t == "TYPE_SFIXED32" then
    return fixed32(twos(v)[2])
  elseif t == "TYPE_FIXED64" or t == "TYPE_SFIXED64" then
    local w = twos(v)
    return fixed32(w[2]) .. fixed32(w[1])
  elseif t == "TYPE_FLOAT" then
    return pack_float(v)
  elseif t == "TYPE_DOUBLE" then
    return pack_double(v)
  elseif t == "TYPE_STRING" or t == "TYPE_BYTES" then
    return varint(#v) .. v
  end
  error("no scalar payload for " .. tostring(t))
end

-- one record: key + payload (messages: length-delimited; groups: start .. end)
local function record(fd, payload_or_bytes)
  local t = fd.type
  if t == "TYPE_MESSAGE" then
    return key(fd.number, 2) .. varint(#payload_or_bytes) .. payload_or_bytes
  elseif t == "TYPE_GROUP" then
    return key(fd.number, 3) .. payload_or_bytes .. key(fd.number, 4)
  end
  return key(fd.number, wire_type[t]) .. scalar_payload(t, payload_or_bytes)
end

---------------------------------------------------------------------------------------------
-- Value conversion, with OptionInterpreter's messages (name: the option field's full name)
local int_types = {
  TYPE_INT32 = { "int32", numbers.INT32_MAX, numbers.INT32_MIN_ABS },
  TYPE_SINT32 = { "int32", numbers.INT32_MAX, numbers.INT32_MIN_ABS },
  TYPE_SFIXED32 = { "int32", numbers.INT32_MAX, numbers.INT32_MIN_ABS },
  TYPE_INT64 = { "int64", numbers.INT64_MAX, numbers.INT64_MIN_ABS },
  TYPE_SINT64 = { "int64", numbers.INT64_MAX, numbers.INT64_MIN_ABS },
  TYPE_SFIXED64 = { "int64", numbers.INT64_MAX, numbers.INT64_MIN_ABS },
  TYPE_UINT32 = { "uint32", numbers.UINT32_MAX }, TYPE_FIXED32 = { "uint32", numbers.UINT32_MAX },
  TYPE_UINT64 = { "uint64", numbers.UINT64_MAX }, TYPE_FIXED64 = { "uint64", numbers.UINT64_MAX },
}

-- option statement value -> Lua value of the field's type (ints as {neg, mag}); enum_values:
-- the enum's values (array of {name, number}), for TYPE_ENUM
local function option_value(fd, v, name, enum_desc, enum_name)
  local t = fd.type
  local pos = v.pos
  local it = int_types[t]
  if it then
    if v.kind ~= "int" then raise(pos, "Value must be integer for " .. it[1] .. ' option "' .. name .. '".') end
    local mag = numbers.parse_u64(v.text)
    if v.neg and not it[3] then
      raise(pos, "Value must be non-negative integer for " .. it[1] .. ' option "' .. name .. '".')
    end
    if not mag or numbers.cmp(mag, v.neg and it[3] or it[2]) > 0 then
      raise(pos, "Value out of range for " .. it[1] .. ' option "' .. name .. '".')
    end
    return { neg = v.neg, mag = mag }
  elseif t == "TYPE_FLOAT" or t == "TYPE_DOUBLE" then
    local tn = t == "TYPE_FLOAT" and "float" or "double"
    if v.kind ~= "int" and v.kind ~= "float" then raise(pos, "Value must be number for " .. tn .. ' option "' .. name .. '".') end
    local x = numbers.token_double(v.kind, v.text)
    if v.neg then x = -x end
    return x
  elseif t == "TYPE_BOOL" then
    if v.kind ~= "ident" then raise(pos, 'Value must be identifier for boolean option "' .. name .. '".') end
    if v.text ~= "true" and v.text ~= "false" then
      raise(pos, 'Value must be "true" or "false" for boolean option "' .. name .. '".')
    end
    return v.text == "true"
  elseif t == "TYPE_ENUM" then
    if v.kind ~= "ident" then raise(pos, 'Value must be identifier for enum-valued option "' .. name .. '".') end
    for _, ev in ipairs(enum_desc.value or EMPTY) do
      if ev.name == v.text then return { neg = ev.number < 0, mag = { 0, math.abs(ev.number) }, name = ev.name } end
    end
    raise(pos, 'Enum type "' .. enum_name .. '" has no value named "' .. v.text .. '" for option "' .. name .. '".')
  elseif t == "TYPE_STRING" or t == "TYPE_BYTES" then
    if v.kind ~= "string" then raise(pos, 'Value must be quoted string for string option "' .. name .. '".') end
    return v.value
  end
  raise(pos, 'Option "' .. name .. '" has an unsupported type.')
end

---------------------------------------------------------------------------------------------
-- Type lookup across the pool: visible files first, then any loaded file
local function find(b, full)
  local s = b:find_symbol(full)
  if s then return s end
  if b.env.symbol and b.env.file then
    local info = b.env.symbol(full)
    if info and info.file then
      local f = b.env.file(info.file)
      if f then return b.index_file(f)[full] end
    end
  end
end

local function file_syntax(b, filename)
  if filename == b.name then return b.fdp.syntax end
  local f = b.env.file and b.env.file(filename)
  return f and f.syntax
end

local packable = {
  TYPE_DOUBLE = true, TYPE_FLOAT = true, TYPE_INT64 = true, TYPE_UINT64 = true, TYPE_INT32 = true,
  TYPE_FIXED64 = true, TYPE_FIXED32 = true, TYPE_BOOL = true, TYPE_UINT32 = true, TYPE_ENUM = true,
  TYPE_SFIXED32 = true, TYPE_SFIXED64 = true, TYPE_SINT32 = true, TYPE_SINT64 = true,
}

---------------------------------------------------------------------------------------------
-- Aggregate values: protobuf text format -> serialized message
local encode_message

-- A cursor over the aggregate's tokens (from the grammar: k kind, t text, v string value).
local Tokens = {}
Tokens.__index = Tokens
local function tokens(list) return setmetatable({ list = list, i = 1 }, Tokens) end
function Tokens:peek() return self.list[self.i] end
function Tokens:text() local t = self.list[self.i]; return t and t.t or "" end
function Tokens:looking_at(text) local t = self.list[self.i]; return t ~= nil and t.t == text and t.k ~= "string" end
function Tokens:try(text)
  if self:looking_at(text) then self.i = self.i + 1; return true end
  return false
end
function Tokens:expect(text, err)
  if not self:try(text) then err('Expected "' .. text .. '", found "' .. self:text() .. '".') end
end
function Tokens:next() local t = self.list[self.i]; self.i = self.i + 1; return t end

-- a scalar value in text format, as protoc's TextFormat parser reads it for field fd
local function text_scalar(b, fd, ts, err)
  local t = fd.type
  local it = int_types[t]
  if it then
    local neg = false
    if it[3] and ts:try("-") then neg = true end
    local tk = ts:peek()
    if not tk or tk.k ~= "int" then err("Expected integer, got: " .. ts:text()) end
    ts:next()
    local mag = numbers.parse_u64(tk.t)
    if not mag or numbers.cmp(mag, neg and it[3] or it[2]) > 0 then
      err("Integer out of range (" .. (neg and "-" or "") .. tk.t .. ")")
    end
    return { neg = neg, mag = mag }
  elseif t == "TYPE_FLOAT" or t == "TYPE_DOUBLE" then
    local neg = ts:try("-")
    local tk = ts:peek()
    local x
    if tk and (tk.k == "int" or tk.k == "float") then
      x = numbers.token_double(tk.k, tk.t)
    elseif tk and tk.k == "ident" then
      local l = tk.t:lower()
      if l == "inf" or l == "infinity" then x = math.huge
      elseif l == "nan" then x = 0 / 0
      else err("Expected double, got: " .. tk.t) end
    else
      err("Expected double, got: " .. ts:text())
    end
    ts:next()
    if neg then x = -x end
    return x
  elseif t == "TYPE_BOOL" then
    local tk = ts:peek()
    if tk and tk.k == "int" then
      ts:next()
      if tk.t == "0" then return false end
      if tk.t == "1" then return true end
      err("Integer out of range (" .. tk.t .. ")")
    elseif tk and tk.k == "ident" then
      ts:next()
      if tk.t == "true" or tk.t == "True" or tk.t == "t" then return true end
      if tk.t == "false" or tk.t == "False" or tk.t == "f" then return false end
      err('Invalid value for boolean field "' .. fd.name .. '". Value: "' .. tk.t .. '".')
    end
    err("Expected identifier, got: " .. ts:text())
  elseif t == "TYPE_ENUM" then
    local s = find(b, fd.type_name:sub(2))
    local e = s and s.desc
    local tk = ts:peek()
    if tk and tk.k == "ident" then
      ts:next()
      for _, ev in ipairs(e and e.value or EMPTY) do
        if ev.name == tk.t then return { neg = ev.number < 0, mag = { 0, math.abs(ev.number) } } end
      end
      err('Unknown enumeration value of "' .. tk.t .. '" for field "' .. fd.name .. '".')
    end
    local neg = ts:try("-")
    tk = ts:peek()
    if tk and tk.k == "int" then
      ts:next()
      local mag = numbers.parse_u64(tk.t)
      if not mag or numbers.cmp(mag, neg and numbers.INT32_MIN_ABS or numbers.INT32_MAX) > 0 then
        err("Integer out of range (" .. tk.t .. ")")
      end
      local n = numbers.to_number(mag, neg)
      local known = false
      for _, ev in ipairs(e and e.value or EMPTY) do if ev.number == n then known = true break end end
      if not known and file_syntax(b, s and s.file) ~= "proto3" then
        err('Unknown enumeration value of "' .. tk.t .. '" for field "' .. fd.name .. '".')
      end
      return { neg = neg, mag = mag }
    end
    err("Expected integer or identifier, got: " .. ts:text())
  elseif t == "TYPE_STRING" or t == "TYPE_BYTES" then
    local tk = ts:peek()
    if not tk or tk.k ~= "string" then err("Expected string, got: " .. ts:text()) end
    local parts = {}
    while ts:peek() and ts:peek().k == "string" do parts[#parts + 1] = ts:next().v end
    return table.concat(parts)
  end
end

local function type_name_tokens(ts, err)
  local parts = {}
  local tk = ts:peek()
  if not tk or tk.k ~= "ident" then err("Expected identifier, got: " .. ts:text()) end
  parts[1] = ts:next().t
  while ts:looking_at(".") or ts:looking_at("/") do
    parts[#parts + 1] = ts:next().t
    tk = ts:peek()
    if not tk or tk.k ~= "ident" then err("Expected identifier, got: " .. ts:text()) end
    parts[#parts + 1] = ts:next().t
  end
  return table.concat(parts)
end

local function find_field(b, msg, ts, scope, err)
  if ts:try("[") then
    local name = type_name_tokens(ts, err)
    ts:expect("]", err)
    local s = b:lookup(name, scope)
    if not s then s = find(b, name) end
    if not s or s.kind ~= "extension" or s.desc.extendee ~= "." .. msg.full then
      err('Extension "' .. name .. '" is not defined or is not an extension of "' .. msg.full .. '".')
    end
    return s.desc, s.file
  end
  local tk = ts:peek()
  if not tk or tk.k ~= "ident" then err("Expected identifier, got: " .. ts:text()) end
  ts:next()
  local name = tk.t
  for _, f in ipairs(msg.desc.field or EMPTY) do
    if f.name == name and f.type ~= "TYPE_GROUP" then return f, msg.file end
  end
  -- groups are named by their type name
  for _, f in ipairs(msg.desc.field or EMPTY) do
    if f.type == "TYPE_GROUP" and f.type_name:match("[^.]+$") == name then return f, msg.file end
  end
  err('Message type "' .. msg.full .. '" has no field named "' .. name .. '".')
end

local function is_default(t, v)
  if type(v) == "table" then return v.mag[1] == 0 and v.mag[2] == 0 end
  if type(v) == "number" then return v == 0 and 1 / v > 0 end
  if type(v) == "boolean" then return v == false end
  if type(v) == "string" then return v == "" end
  return false
end

-- parses fields until `close` (nil: the end of the tokens) and serializes the message as
-- protoc's DynamicMessage does: fields by number, repeated values in order, packed where the
-- field is packed. msg: { desc, full, file }.
function encode_message(b, msg, ts, scope, err, close)
  local order, per_field = {}, {}
  while true do
    if close then
      if ts:looking_at(close) then break end
      if not ts:peek() then err('Expected "' .. close .. '", found "".') end
    elseif not ts:peek() then
      break
    end
    local any_url
    if msg.full == "google.protobuf.Any" and ts:looking_at("[") then
      -- [type.googleapis.com/pkg.Msg] { ... }: an expanded Any
      local save = ts.i
      ts:next()
      local name = type_name_tokens(ts, err)
      if name:find("/", 1, true) then any_url = name else ts.i = save end
    end
    local fd, ffile
    if any_url then
      ts:expect("]", err)
      ts:try(":")
      local type_name = any_url:match("[^/]+$")
      local s = find(b, type_name)
      if not s or s.kind ~= "message" then err('Could not find type "' .. any_url .. '" stored in google.protobuf.Any.') end
      local closer
      if ts:try("{") then closer = "}" elseif ts:try("<") then closer = ">" else
        err('Expected "{", found "' .. ts:text() .. '".')
      end
      local body = encode_message(b, { desc = s.desc, full = type_name, file = s.file }, ts, scope, err, closer)
      ts:expect(closer, err)
      if per_field.any then err("Expect only one Any type specified.") end
      per_field.any = true
      order[#order + 1] = { fd = { name = "type_url", number = 1, type = "TYPE_STRING", label = "LABEL_OPTIONAL" },
        values = { any_url }, file = msg.file }
      order[#order + 1] = { fd = { name = "value", number = 2, type = "TYPE_BYTES", label = "LABEL_OPTIONAL" },
        values = { body }, file = msg.file }
      if not ts:try(";") then ts:try(",") end
      goto continue
    end
    fd, ffile = find_field(b, msg, ts, scope, err)
    local slot = per_field[fd]
    if not slot then
      slot = { fd = fd, file = ffile, values = {} }
      per_field[fd] = slot
      order[#order + 1] = slot
    elseif fd.label ~= "LABEL_REPEATED" then
      err('Non-repeated field "' .. fd.name .. '" is specified multiple times.')
    end
    local function one_message()
      local open = ts:peek()
      local closer
      if ts:try("{") then closer = "}" elseif ts:try("<") then closer = ">" else
        err('Expected "{", found "' .. ts:text() .. '".')
      end
      local s = find(b, fd.type_name:sub(2))
      local body = encode_message(b, { desc = s.desc, full = fd.type_name:sub(2), file = s.file }, ts, scope, err, closer)
      ts:expect(closer, err)
      slot.values[#slot.values + 1] = body
      return open
    end
    if fd.type == "TYPE_MESSAGE" or fd.type == "TYPE_GROUP" then
      ts:try(":")
      if fd.label == "LABEL_REPEATED" and ts:try("[") then
        if not ts:try("]") then
          repeat one_message() until not ts:try(",")
          ts:expect("]", err)
        end
      else
        one_message()
      end
    else
      ts:expect(":", err)
      if fd.label == "LABEL_REPEATED" and ts:try("[") then
        if not ts:try("]") then
          while true do
            slot.values[#slot.values + 1] = text_scalar(b, fd, ts, err)
            if ts:try("]") then break end
            ts:expect(",", err)
          end
        end
      else
        slot.values[#slot.values + 1] = text_scalar(b, fd, ts, err)
      end
    end
    if not ts:try(";") then ts:try(",") end
    ::continue::
  end
  table.sort(order, function(x, y) return x.fd.number < y.fd.number end)
  local out = {}
  for _, slot in ipairs(order) do
    local fd = slot.fd
    local packed = false
    -- proto3 fields without presence are not written when they hold their default
    if fd.label ~= "LABEL_REPEATED" and not fd.proto3_optional and fd.oneof_index == nil and
      fd.type ~= "TYPE_MESSAGE" and fd.type ~= "TYPE_GROUP" and not fd.extendee and
      file_syntax(b, slot.file) == "proto3" and is_default(fd.type, slot.values[1]) then
      slot.values = {}
    end
    if fd.label == "LABEL_REPEATED" and packable[fd.type] then
      if fd.options and fd.options.packed ~= nil then packed = fd.options.packed
      else packed = file_syntax(b, slot.file) == "proto3" end
    end
    if packed and #slot.values > 0 then
      local parts = {}
      for i, v in ipairs(slot.values) do parts[i] = scalar_payload(fd.type, v) end
      local body = table.concat(parts)
      out[#out + 1] = key(fd.number, 2) .. varint(#body) .. body
    else
      for _, v in ipairs(slot.values) do out[#out + 1] = record(fd, v) end
    end
  end
  return table.concat(out)
end

---------------------------------------------------------------------------------------------
-- Interpretation of every option statement of a file
local function option_debug_name(parts, upto)
  local out = {}
  for i = 1, upto or #parts do
    local p = parts[i]
    out[#out + 1] = p.ext and ("(" .. p.name .. ")") or p.name
  end
  return table.concat(out, ".")
end

local function plain_value(fd, v)
  local t = fd.type
  if int_types[t] then return numbers.to_number(v.mag, v.neg) end
  if t == "TYPE_ENUM" then return v.name end
  return v
end

function M.interpret(b, env)
  if #b.option_order == 0 then return end
  local dfdp = env.descriptor
  if not dfdp and b.name == "google/protobuf/descriptor.proto" then dfdp = b.fdp end
  local dindex = dfdp and b.index_file(dfdp)
  for _, desc in ipairs(b.option_order) do
    local stmts = b.option_statements[desc]
    local opts_full = "google.protobuf." .. stmts.kind
    local opts_sym = dindex and dindex[opts_full]
    local opts = desc.options or {}
    local unknown = {}
    local set = {}
    for _, st in ipairs(stmts) do
      local parts = st.name
      local first = parts[1]
      local name_pos = first.pos
      local v = st.value
      local fd, fd_full, ffile
      if not first.ext then
        -- a field of the options message itself
        if opts_sym then
          for _, f in ipairs(opts_sym.desc.field or EMPTY) do
            if f.name == first.name then fd = f; break end
          end
        end
        if not fd or first.name == "uninterpreted_option" then
          raise(name_pos, 'Option "' .. first.name .. '" unknown. Ensure that your proto definition file ' ..
            "imports the proto which defines the option.")
        end
        fd_full = opts_full .. "." .. fd.name
        ffile = dfdp.name
        if #parts > 1 then
          raise(name_pos, 'Option "' .. first.name .. '" is an atomic type, not a message.')
        end
        if fd.type == "TYPE_MESSAGE" or fd.type == "TYPE_GROUP" then
          raise(v.pos, 'Option "' .. first.name .. '" is a message. To set the entire message, use syntax like "' ..
            first.name .. ' = { <proto text format> }". To set fields within it, use syntax like "' ..
            first.name .. '.foo = value".')
        end
        if set[first.name] and fd.label ~= "LABEL_REPEATED" then
          raise(name_pos, 'Option "' .. first.name .. '" was already set.')
        end
        set[first.name] = true
        local enum_desc, enum_name
        if fd.type == "TYPE_ENUM" then
          enum_name = fd.type_name:sub(2)
          local s = dindex[enum_name]
          enum_desc = s and s.desc
        end
        local val = option_value(fd, v, fd_full, enum_desc, enum_name)
        if fd.label == "LABEL_REPEATED" then
          opts[fd.name] = opts[fd.name] or {}
          table.insert(opts[fd.name], plain_value(fd, val))
        else
          opts[fd.name] = plain_value(fd, val)
        end
      else
        -- custom option: an extension of the options message, then sub-fields
        local chain = {}
        local s, sfull = b:lookup(first.name, stmts.scope or "")
        local debug1 = "(" .. first.name .. ")"
        if not s then
          raise(name_pos, 'Option "' .. debug1 .. '" unknown. Ensure that your proto definition file ' ..
            "imports the proto which defines the option.")
        end
        if s.kind ~= "extension" then
          raise(name_pos, 'Option "' .. debug1 .. '" unknown. Ensure that your proto definition file ' ..
            "imports the proto which defines the option.")
        end
        if s.desc.extendee ~= "." .. opts_full then
          raise(name_pos, 'Option field "' .. debug1 .. '" is not a field or extension of message "' ..
            stmts.kind .. '".')
        end
        chain[1] = s.desc
        fd = s.desc
        fd_full = sfull
        ffile = s.file
        for i = 2, #parts do
          local p = parts[i]
          if fd.type ~= "TYPE_MESSAGE" and fd.type ~= "TYPE_GROUP" then
            raise(name_pos, 'Option "' .. option_debug_name(parts, i - 1) .. '" is an atomic type, not a message.')
          end
          local ms = find(b, fd.type_name:sub(2))
          local nextfd
          if p.ext then
            local es = b:lookup(p.name, stmts.scope or "")
            if es and es.kind == "extension" and es.desc.extendee == fd.type_name then nextfd = es.desc; ffile = es.file end
          else
            for _, f in ipairs(ms.desc.field or EMPTY) do
              if f.name == p.name then nextfd = f; ffile = ms.file; break end
            end
          end
          if not nextfd then
            raise(name_pos, 'Option field "' .. option_debug_name(parts, i) .. '" is not a field or extension of message "' ..
              ms.desc.name .. '".')
          end
          chain[i] = nextfd
          fd = nextfd
        end
        local debug = option_debug_name(parts)
        if set[debug] and fd.label ~= "LABEL_REPEATED" then
          raise(name_pos, 'Option "' .. debug .. '" was already set.')
        end
        set[debug] = true
        -- the innermost value
        local bytes
        local last = chain[#chain]
        local last_name = #parts == 1 and fd_full or option_debug_name(parts)
        if last.type == "TYPE_MESSAGE" or last.type == "TYPE_GROUP" then
          if v.kind ~= "aggregate" then
            raise(v.pos, 'Option "' .. last.name .. '" is a message. To set the entire message, use syntax like "' ..
              last.name .. ' = { <proto text format> }". To set fields within it, use syntax like "' ..
              last.name .. '.foo = value".')
          end
          local ms = find(b, last.type_name:sub(2))
          local function err(msg)
            raise(v.pos, 'Error while parsing option value for "' .. last.name .. '": ' .. msg)
          end
          local body = encode_message(b, { desc = ms.desc, full = last.type_name:sub(2), file = ms.file },
            tokens(v.value), stmts.scope or "", err)
          bytes = record(last, body)
        else
          if v.kind == "ident" and v.neg then raise(v.text_pos, "Invalid '-' symbol before identifier.") end
          local enum_desc, enum_name
          if last.type == "TYPE_ENUM" then
            enum_name = last.type_name:sub(2)
            local es = find(b, enum_name)
            enum_desc = es and es.desc
          end
          local val = option_value(last, v, #parts == 1 and sfull or last.name, enum_desc, enum_name)
          bytes = record(last, val)
        end
        -- wrap in the enclosing sub-messages
        for i = #chain - 1, 1, -1 do bytes = record(chain[i], bytes) end
        unknown[#unknown + 1] = bytes
      end
    end
    if #unknown > 0 then opts["$unknown"] = (opts["$unknown"] or "") .. table.concat(unknown) end
    if next(opts) then desc.options = opts end
  end
end

return M

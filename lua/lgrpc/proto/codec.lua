-- lgrpc.proto.codec — turns descriptor tables (FileDescriptorProto, in the representation of
-- docs/design.md) into a C schema: resolves type names, numbers messages and enums, derives
-- presence, packing, UTF-8 checks and defaults, then hands a flat plan to lgrpc.core.codec.
-- Encoding and decoding themselves run in C (core/codec.c); nothing here runs per message.
--
--   local schema, err = codec.schema(files [, { max_depth = 100, max_size = 2^31-1 }])
--   schema:encode(name, tbl [, { deterministic = true, partial = true }]) -> bytes | nil, err
--   schema:decode(name, bytes [, { enums = "name"|"number", defaults = bool,
--                                  int64 = "native"|"string", unknown = "keep"|"drop",
--                                  partial = bool }])                    -> table | nil, err
--   schema:new(name [, { enums =, int64 = }]) -> table with defaults | nil, err
--   schema:has(name) -> boolean
--
-- 64-bit integers: Lua 5.4 decodes them as integers (uint64/fixed64 at or above 2^63 as the
-- negative integer with the same 64 bits); LuaJIT decodes them as numbers up to 2^53 in
-- magnitude and as decimal strings beyond. int64 = "string" gives decimal strings everywhere
-- (unsigned types as unsigned decimals). Encoding accepts integers, integral floats, decimal
-- strings, and LuaJIT int64_t/uint64_t cdata (read through tostring: "123LL", "123ULL"; any
-- other cdata is refused). uint64/fixed64 also take -2^63..-1 as their two's-complement bits.
--
-- Tables are read with rawget (metatables are not consulted); keys that name no field are
-- ignored. Extensions are keyed "[full.name]", unknown fields are the raw records in "$unknown".
-- new() and decode{defaults = true} fill every absent scalar outside a oneof, explicit-presence
-- ones included, so encoding such a table writes those fields.
local core = require "lgrpc.core"
local C = core.codec

local codec = {}

local TYPES = {
  TYPE_DOUBLE = 1, TYPE_FLOAT = 2, TYPE_INT64 = 3, TYPE_UINT64 = 4, TYPE_INT32 = 5,
  TYPE_FIXED64 = 6, TYPE_FIXED32 = 7, TYPE_BOOL = 8, TYPE_STRING = 9, TYPE_GROUP = 10,
  TYPE_MESSAGE = 11, TYPE_BYTES = 12, TYPE_UINT32 = 13, TYPE_ENUM = 14, TYPE_SFIXED32 = 15,
  TYPE_SFIXED64 = 16, TYPE_SINT32 = 17, TYPE_SINT64 = 18,
}
local LABELS = { LABEL_OPTIONAL = 1, LABEL_REQUIRED = 2, LABEL_REPEATED = 3 }
local T_GROUP, T_MESSAGE, T_ENUM, T_STRING, T_BYTES = 10, 11, 14, 9, 12
local L_REPEATED = 3

-- protoc writes bytes defaults C-escaped (CEscape: \n \r \t \" \' \\ and octal \NNN); undo it
-- in one pass (hex \xHH and the other C escapes are read too)
local ESC = { n = "\n", r = "\r", t = "\t", a = "\a", b = "\b", f = "\f", v = "\v",
              ["\\"] = "\\", ["'"] = "'", ['"'] = '"', ["?"] = "?" }
local function unescape(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local j = s:find("\\", i, true)
    if not j then out[#out + 1] = s:sub(i) break end
    out[#out + 1] = s:sub(i, j - 1)
    local oct = s:match("^[0-7][0-7]?[0-7]?", j + 1)
    local hex = not oct and s:match("^[xX](%x%x?)", j + 1)
    if oct then
      out[#out + 1] = string.char(tonumber(oct, 8) % 256)
      i = j + 1 + #oct
    elseif hex then
      out[#out + 1] = string.char(tonumber(hex, 16))
      i = j + 2 + #hex
    else
      local c = s:sub(j + 1, j + 1)
      out[#out + 1] = ESC[c] or c
      i = j + 2
    end
  end
  return table.concat(out)
end

local function enum_code(map, v, what)
  if type(v) == "number" then return v end
  if v == nil then return nil end
  local n = map[v]
  if not n then error(("invalid %s '%s'"):format(what, tostring(v)), 0) end
  return n
end

-- Collect every message and enum (full names without the leading dot) and every extension.
local function collect(files)
  local msgs, enums, exts, index = {}, {}, {}, {}
  local function add(kind, list, full, rec)
    if index[full] then error(("duplicate symbol '%s'"):format(full), 0) end
    list[#list + 1] = rec
    index[full] = { kind = kind, i = #list - 1 }
  end
  local function walk_enums(list, prefix, file)
    for _, e in ipairs(list or {}) do
      local full = prefix .. e.name
      add("enum", enums, full, { full = full, desc = e, file = file })
    end
  end
  local function walk_msgs(list, prefix, file)
    for _, m in ipairs(list or {}) do
      local full = prefix .. m.name
      add("message", msgs, full, { full = full, desc = m, file = file })
      walk_enums(m.enum_type, full .. ".", file)
      walk_msgs(m.nested_type, full .. ".", file)
      for _, x in ipairs(m.extension or {}) do
        exts[#exts + 1] = { desc = x, scope = full, file = file }
      end
    end
  end
  for _, f in ipairs(files) do
    if type(f) ~= "table" then error("files: expected an array of FileDescriptorProto tables", 0) end
    local pkg = f.package or ""
    local prefix = pkg ~= "" and pkg .. "." or ""
    walk_enums(f.enum_type, prefix, f)
    walk_msgs(f.message_type, prefix, f)
    for _, x in ipairs(f.extension or {}) do exts[#exts + 1] = { desc = x, scope = pkg, file = f } end
  end
  return msgs, enums, exts, index
end

-- a type name as written in a descriptor: ".pkg.Msg", or relative to the scope (C++ rules)
local function resolve(index, name, scope)
  if name:sub(1, 1) == "." then return index[name:sub(2)] end
  while true do
    local cand = scope ~= "" and scope .. "." .. name or name
    if index[cand] then return index[cand] end
    if scope == "" then return nil end
    scope = scope:match("^(.*)%.[^.]*$") or ""
  end
end

local function is_proto3(file) return file.syntax == "proto3" end

local function field_plan(fd, scope, file, index, msgs, enums, is_ext, full_ext)
  local where = full_ext or (scope .. "." .. tostring(fd.name))
  local t = enum_code(TYPES, fd.type, "field type")
  local label = enum_code(LABELS, fd.label, "field label") or 1
  local sub = -1
  if fd.type_name and fd.type_name ~= "" then
    local r = resolve(index, fd.type_name, scope)
    if not r then error(("%s: unknown type '%s'"):format(where, fd.type_name), 0) end
    if t == nil then t = r.kind == "enum" and T_ENUM or T_MESSAGE end
    local want = (t == T_ENUM) and "enum" or "message"
    if r.kind ~= want then error(("%s: '%s' is not %s"):format(where, fd.type_name, want), 0) end
    sub = r.i
  end
  if not t then error(("%s: no type"):format(where), 0) end
  if type(fd.number) ~= "number" then error(("%s: no field number"):format(where), 0) end
  local proto3 = is_proto3(file)
  local opts = fd.options or {}
  local repeated = label == L_REPEATED
  local is_msg = t == T_MESSAGE or t == T_GROUP
  local packable = not is_msg and t ~= T_STRING and t ~= T_BYTES
  local synthetic = fd.proto3_optional == true
  local oneof = (fd.oneof_index ~= nil and not synthetic and not is_ext) and fd.oneof_index or -1
  local p = {
    name = is_ext and ("[" .. full_ext .. "]") or fd.name,
    number = fd.number, type = t, label = label, sub = sub, oneof = oneof,
    packed = repeated and packable and (proto3 and opts.packed ~= false or (not proto3 and opts.packed == true)),
    presence = not repeated and (is_msg or not proto3 or synthetic or oneof >= 0 or is_ext),
    utf8 = proto3 and t == T_STRING,
    map = repeated and t == T_MESSAGE and sub >= 0 and (((msgs[sub + 1].desc.options or {}).map_entry) == true),
    ext = is_ext,
  }
  local dv = fd.default_value
  if dv ~= nil then
    if t == T_BYTES then dv = unescape(dv)
    elseif t == T_ENUM then
      local found
      for _, v in ipairs(enums[sub + 1].desc.value or {}) do
        if v.name == dv then found = v.number break end
      end
      if not found then error(("%s: default '%s' is not a value of the enum"):format(where, dv), 0) end
      dv = found
    end
    p.default = dv
  end
  return p
end

local function build_plan(files)
  local msgs, enums, exts, index = collect(files)
  local plan = { messages = {}, enums = {} }
  for i, e in ipairs(enums) do
    local values = {}
    for j, v in ipairs(e.desc.value or {}) do values[j] = { name = v.name, number = v.number } end
    plan.enums[i] = { name = e.full, closed = not is_proto3(e.file), values = values }
  end
  for i, m in ipairs(msgs) do
    local fields = {}
    for j, fd in ipairs(m.desc.field or {}) do
      fields[j] = field_plan(fd, m.full, m.file, index, msgs, enums, false)
    end
    plan.messages[i] = {
      name = m.full, fields = fields, noneofs = #(m.desc.oneof_decl or {}),
      map_entry = (m.desc.options or {}).map_entry == true,
    }
  end
  for _, x in ipairs(exts) do
    local fd = x.desc
    local full = (x.scope ~= "" and x.scope .. "." or "") .. tostring(fd.name)
    local r = fd.extendee and resolve(index, fd.extendee, x.scope)
    if not r or r.kind ~= "message" then
      error(("%s: unknown extendee '%s'"):format(full, tostring(fd.extendee)), 0)
    end
    local fields = plan.messages[r.i + 1].fields
    fields[#fields + 1] = field_plan(fd, x.scope, x.file, index, msgs, enums, true, full)
  end
  return plan
end

--- Compile descriptor tables into a schema. Returns the schema, or nil and an error.
--- protoc's C-escaped text of a bytes default_value, as the bytes it stands for.
codec.unescape_default = unescape

function codec.schema(files, limits)
  if type(files) ~= "table" then error("codec.schema: files must be an array of descriptor tables", 2) end
  if limits ~= nil and type(limits) ~= "table" then error("codec.schema: limits must be a table", 2) end
  local ok, plan = pcall(build_plan, files)
  if not ok then return nil, tostring(plan) end
  return C.compile(plan, limits)
end

return codec

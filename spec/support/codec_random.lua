-- codec_random.lua — random messages for spec/codec_crosscheck_spec.lua, generated from
-- descriptor tables: every field type and presence kind, maps, oneofs, recursion (bounded),
-- groups, extensions, unknown fields and edge values. Values are in lgrpc's representation
-- with int64 = "string" (64-bit integers as canonical decimal strings).
local R = {}

local rnd = math.random

local function pick(list) return list[rnd(#list)] end

local function digits(n)
  local t = { tostring(rnd(1, 9)) }
  for i = 2, n do t[i] = tostring(rnd(0, 9)) end
  return table.concat(t)
end

local INT32 = { 0, 1, -1, 127, 128, 2147483647, -2147483648, 300, -300 }
local UINT32 = { 0, 1, 127, 128, 4294967295, 2147483648, 65535 }
local INT64 = { "0", "1", "-1", "9223372036854775807", "-9223372036854775808", "9007199254740993",
  "-9007199254740993", "4294967296" }
local UINT64 = { "0", "1", "18446744073709551615", "9223372036854775808", "9007199254740993", "4294967296" }
-- floats exactly representable in 32 bits
local FLOAT = { 0.5, -1.25, 1e10, 1 / 0, -1 / 0, -0.0, 0 / 0, 3.4028234663852886e38,
  1.401298464324817e-45, -1.1754943508222875e-38, 16777216, 0.0 }
local DOUBLE = { 0.1, -1e308, 1.7976931348623157e308, 4.9406564584124654e-324, 1 / 0, -1 / 0,
  -0.0, 0 / 0, 2 ^ 53 + 2, -123456.789, 0.0 }
local STRINGS = { "", "a", "h\195\169llo", "\230\151\165\230\156\172\232\170\158", "\0nul",
  "\240\159\152\128 emoji", "plain ascii text" }

local function rand_int(kind)
  local r = rnd()
  if kind == "int32" then return r < 0.5 and pick(INT32) or rnd(-2147483647, 2147483647) end
  if kind == "uint32" then return r < 0.5 and pick(UINT32) or rnd(0, 2147483647) * 2 end
  if kind == "int64" then
    if r < 0.5 then return pick(INT64) end
    return (rnd() < 0.5 and "-" or "") .. digits(rnd(1, 18))
  end
  if r < 0.5 then return pick(UINT64) end
  return digits(rnd(1, 19))
end

local function rand_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(rnd(0, 255)) end
  return table.concat(t)
end

local function varint(v)
  local t = {}
  repeat
    local b = v % 128
    v = (v - b) / 128
    t[#t + 1] = string.char(v > 0 and b + 128 or b)
  until v == 0
  return table.concat(t)
end

-- unknown records on numbers 1000..1099 (no fixture uses them)
local function rand_unknown()
  local t = {}
  for _ = 1, rnd(1, 3) do
    local num = rnd(1000, 1099)
    local k = rnd(5)
    if k == 1 then t[#t + 1] = varint(num * 8) .. varint(rnd(0, 2 ^ 40))
    elseif k == 2 then t[#t + 1] = varint(num * 8 + 5) .. rand_bytes(4)
    elseif k == 3 then t[#t + 1] = varint(num * 8 + 1) .. rand_bytes(8)
    elseif k == 4 then local b = rand_bytes(rnd(0, 20)) t[#t + 1] = varint(num * 8 + 2) .. varint(#b) .. b
    else t[#t + 1] = varint(num * 8 + 3) .. varint(1001 * 8) .. varint(rnd(0, 1000)) .. varint(num * 8 + 4) end
  end
  return table.concat(t)
end

function R.index(files)
  local ix = { msgs = {}, enums = {}, exts = {} }
  local function enums(list, prefix, proto3)
    for _, e in ipairs(list or {}) do ix.enums[prefix .. e.name] = { desc = e, proto3 = proto3 } end
  end
  local function msgs(list, prefix, proto3)
    for _, m in ipairs(list or {}) do
      local full = prefix .. m.name
      ix.msgs[full] = { desc = m, proto3 = proto3, full = full }
      enums(m.enum_type, full .. ".", proto3)
      msgs(m.nested_type, full .. ".", proto3)
      for _, x in ipairs(m.extension or {}) do
        local l = ix.exts[x.extendee:sub(2)] or {}
        l[#l + 1] = { fd = x, full = full .. "." .. x.name }
        ix.exts[x.extendee:sub(2)] = l
      end
    end
  end
  for _, f in ipairs(files) do
    local prefix = (f.package and f.package ~= "") and f.package .. "." or ""
    local p3 = f.syntax == "proto3"
    enums(f.enum_type, prefix, p3)
    msgs(f.message_type, prefix, p3)
    for _, x in ipairs(f.extension or {}) do
      local l = ix.exts[x.extendee:sub(2)] or {}
      l[#l + 1] = { fd = x, full = prefix .. x.name }
      ix.exts[x.extendee:sub(2)] = l
    end
  end
  return ix
end

local gen_message

local function gen_scalar(ix, fd, depth, key)
  local t = fd.type
  if t == "TYPE_INT32" or t == "TYPE_SINT32" or t == "TYPE_SFIXED32" then return rand_int("int32") end
  if t == "TYPE_UINT32" or t == "TYPE_FIXED32" then return rand_int("uint32") end
  if t == "TYPE_INT64" or t == "TYPE_SINT64" or t == "TYPE_SFIXED64" then return rand_int("int64") end
  if t == "TYPE_UINT64" or t == "TYPE_FIXED64" then return rand_int("uint64") end
  if t == "TYPE_BOOL" then return rnd() < 0.5 end
  if t == "TYPE_FLOAT" then return rnd() < 0.5 and pick(FLOAT) or rnd(-100000, 100000) / 64 end
  if t == "TYPE_DOUBLE" then return rnd() < 0.4 and pick(DOUBLE) or (rnd() - 0.5) * 10 ^ rnd(-30, 30) end
  if t == "TYPE_STRING" then return rnd() < 0.7 and pick(STRINGS) or ("s" .. rnd(1, 1e6)) end
  if t == "TYPE_BYTES" then
    local r = rnd()
    if r < 0.02 and not key then return rand_bytes(70000) end
    return r < 0.2 and "" or rand_bytes(rnd(1, 40))
  end
  if t == "TYPE_ENUM" then
    local e = ix.enums[fd.type_name:sub(2)]
    if e.proto3 and rnd() < 0.1 then return rnd(100, 200) end -- unnamed value of an open enum
    return pick(e.desc.value).name
  end
  return gen_message(ix, fd.type_name:sub(2), depth + 1)
end

local function is_default(v)
  return v == 0 and 1 / v > 0 or v == "0" or v == "" or v == false
end

function gen_message(ix, name, depth)
  local m = ix.msgs[name]
  local desc = m.desc
  local t = {}
  local oneofs = {}
  for _, fd in ipairs(desc.field or {}) do
    local is_msg = fd.type == "TYPE_MESSAGE" or fd.type == "TYPE_GROUP"
    local sub = is_msg and ix.msgs[fd.type_name:sub(2)]
    if fd.oneof_index ~= nil and not fd.proto3_optional then
      local l = oneofs[fd.oneof_index] or {}
      l[#l + 1] = fd
      oneofs[fd.oneof_index] = l
    elseif fd.label == "LABEL_REPEATED" then
      if sub and sub.desc.options and sub.desc.options.map_entry then
        if rnd() < 0.5 and (depth < 3 or sub.desc.field[2].type ~= "TYPE_MESSAGE") then
          local map = {}
          for _ = 1, rnd(1, 4) do
            local k = gen_scalar(ix, sub.desc.field[1], depth, true)
            map[k] = gen_scalar(ix, sub.desc.field[2], depth)
          end
          t[fd.name] = map
        end
      elseif rnd() < 0.5 and (not is_msg or depth < 3) then
        local l = {}
        for i = 1, rnd(1, 5) do l[i] = gen_scalar(ix, fd, depth) end
        t[fd.name] = l
      end
    elseif fd.label == "LABEL_REQUIRED" then
      t[fd.name] = gen_scalar(ix, fd, depth)
    elseif is_msg then
      if depth < 4 and rnd() < 0.4 then t[fd.name] = gen_scalar(ix, fd, depth) end
    elseif rnd() < 0.6 then
      local v = gen_scalar(ix, fd, depth)
      -- proto3 implicit presence: a default value is not written, so it is not kept either
      local zero = is_default(v)
      if fd.type == "TYPE_ENUM" and type(v) == "string" then
        for _, ev in ipairs(ix.enums[fd.type_name:sub(2)].desc.value) do
          if ev.name == v then zero = ev.number == 0 end
        end
      end
      if not (m.proto3 and not fd.proto3_optional and zero) then t[fd.name] = v end
    end
  end
  for _, members in pairs(oneofs) do
    if rnd() < 0.7 then
      local fd = pick(members)
      if not ((fd.type == "TYPE_MESSAGE") and depth >= 4) then t[fd.name] = gen_scalar(ix, fd, depth) end
    end
  end
  for _, x in ipairs(ix.exts[name] or {}) do
    if rnd() < 0.4 then
      if x.fd.label == "LABEL_REPEATED" then
        local l = {}
        for i = 1, rnd(1, 3) do l[i] = gen_scalar(ix, x.fd, depth) end
        t["[" .. x.full .. "]"] = l
      else
        t["[" .. x.full .. "]"] = gen_scalar(ix, x.fd, depth)
      end
    end
  end
  if not (desc.options and desc.options.map_entry) and rnd() < 0.2 then t["$unknown"] = rand_unknown() end
  return t
end

function R.message(ix, name) return gen_message(ix, name, 0) end

-- deep equality for decoded values: NaN equals NaN, -0.0 differs from 0.0; returns ok, path
function R.equal(a, b, path)
  path = path or ""
  if type(a) ~= type(b) then return false, path .. (": %s vs %s"):format(tostring(a), tostring(b)) end
  if type(a) == "number" then
    if a ~= a and b ~= b then return true end
    if a == b and (a ~= 0 or 1 / a == 1 / b) then return true end
    return false, path .. (": %.17g vs %.17g"):format(a, b)
  end
  if type(a) ~= "table" then
    if a == b then return true end
    return false, path .. (": %q vs %q"):format(tostring(a), tostring(b))
  end
  for k, v in pairs(a) do
    local ok, p = R.equal(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, p end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing on the left" end
  end
  return true
end

function R.strip_unknown(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do if k ~= "$unknown" then c[k] = R.strip_unknown(v) end end
  return c
end

return R

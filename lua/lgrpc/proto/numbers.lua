-- lgrpc.proto.numbers: exact integer and float text handling for the .proto compiler, identical
-- on Lua 5.4 and LuaJIT (whose numbers are doubles): 64-bit values travel as {hi, lo} pairs of
-- 32-bit halves, decimal text is produced digit by digit, floats are printed as protoc's
-- SimpleDtoa/SimpleFtoa print them. Never raises on input: bad text gives nil.
local M = {}

local TWO32 = 4294967296

-- "123", "0x7f", "017" (no sign) -> {hi, lo} or nil when it does not fit in 64 bits
local find, tonumber_ = string.find, tonumber
function M.parse_u64(text)
  -- the common case: a short decimal without leading zero fits in the low half as it is
  if #text < 10 and find(text, "^[1-9]%d*$") then return { 0, tonumber_(text) } end
  local base, digits = 10, text
  if text:match("^0[xX]") then base, digits = 16, text:sub(3)
  elseif text:match("^0%d") then base, digits = 8, text:sub(2) end
  local hi, lo = 0, 0
  for i = 1, #digits do
    local d = tonumber(digits:sub(i, i), base)
    if not d then return nil end
    lo = lo * base + d
    local carry = math.floor(lo / TWO32)
    lo = lo - carry * TWO32
    hi = hi * base + carry
    if hi >= TWO32 then return nil end
  end
  return { hi, lo }
end

-- compare {hi,lo} with {hi,lo}: -1, 0, 1
function M.cmp(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] and -1 or 1 end
  if a[2] ~= b[2] then return a[2] < b[2] and -1 or 1 end
  return 0
end

M.INT32_MAX = { 0, 0x7fffffff }
M.INT32_MIN_ABS = { 0, 0x80000000 }
M.UINT32_MAX = { 0, 0xffffffff }
M.INT64_MAX = { 0x7fffffff, 0xffffffff }
M.INT64_MIN_ABS = { 0x80000000, 0 }
M.UINT64_MAX = { 0xffffffff, 0xffffffff }

-- {hi, lo} -> decimal text
function M.u64_decimal(v)
  local hi, lo = v[1], v[2]
  if hi == 0 then return string.format("%d", lo) end
  local digits = {}
  while hi > 0 or lo > 0 do
    -- divide (hi * 2^32 + lo) by 10
    local qh = math.floor(hi / 10)
    local r = hi - qh * 10
    local cur = r * TWO32 + lo -- < 10 * 2^32, exact in a double
    local ql = math.floor(cur / 10)
    digits[#digits + 1] = string.char(48 + (cur - ql * 10))
    hi, lo = qh, ql
  end
  return string.reverse(table.concat(digits))
end

-- two's complement negation of {hi, lo}
function M.negate(v)
  local hi, lo = TWO32 - 1 - v[1], TWO32 - 1 - v[2]
  lo = lo + 1
  if lo >= TWO32 then lo = lo - TWO32; hi = hi + 1 end
  if hi >= TWO32 then hi = hi - TWO32 end
  return { hi, lo }
end

-- a value that fits in 53 bits as a plain Lua number (integer on 5.4)
function M.to_number(v, neg)
  local n = v[1] * TWO32 + v[2]
  if math.type then n = math.tointeger(n) or n end
  if neg then n = -n end
  return n
end

---------------------------------------------------------------------------------------------
-- floats as protoc prints them
local to_float32
if string.pack then
  to_float32 = function(x) return (string.unpack("<f", string.pack("<f", x))) end
else
  local ffi = require "ffi"
  local box = ffi.new("float[1]")
  to_float32 = function(x) box[0] = x; return tonumber(box[0]) end
end
M.to_float32 = to_float32

local function special(x)
  if x ~= x then return "nan" end
  if x == math.huge then return "inf" end
  if x == -math.huge then return "-inf" end
end

-- protoc's SimpleDtoa: %.15g when it reads back exactly, else %.17g
function M.dtoa(x)
  local s = special(x)
  if s then return s end
  s = string.format("%.15g", x)
  if tonumber(s) ~= x then s = string.format("%.17g", x) end
  return s
end

-- protoc's SimpleFtoa: %.6g when it reads back as the same float, else %.9g
function M.ftoa(x)
  x = to_float32(x)
  local s = special(x)
  if s then return s end
  s = string.format("%.6g", x)
  -- protoc's safe_strtof refuses denormals (ERANGE), so they always take the long form
  if to_float32(tonumber(s)) ~= x or (x ~= 0 and math.abs(x) < 1.17549435e-38) then
    s = string.format("%.9g", x)
  end
  return s
end

-- number token text (int or float, no sign) -> double, as protoc's tokenizer reads it
function M.token_double(kind, text)
  if kind == "int" then
    local v = M.parse_u64(text)
    if not v then return tonumber(text) end
    return v[1] * 4294967296.0 + v[2] -- float arithmetic: Lua 5.4 integers would wrap

  end
  return tonumber(text)
end

return M

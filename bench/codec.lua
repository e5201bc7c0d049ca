-- bench/codec.lua: the lgrpc side of the codec section, run under lua5.4 and LuaJIT.
--   codec.lua roundtrip OUT_DIR   decode OUT_DIR/{small,large}.bin, encode again into
--                                 OUT_DIR/IMPL.SIZE.bin and json_encode into OUT_DIR/IMPL.SIZE.json
--                                 (bench/instances.py checks them against the instances), and
--                                 json_decode OUT_DIR/SIZE.json (python's) back to the same bytes
--   codec.lua time OUT_DIR        RESULT codec.SIZE.{encode,decode,json_encode,json_decode}.IMPL NS
-- Decode builds complete plain tables from the bytes; encode walks one table decoded once.
-- Run from the top of the tree after `. tools/env.sh lua5.4` (or luajit).
package.path = (arg[0]:match("^(.-)[^/]*$") or "") .. "?.lua;" .. package.path
local timing = require "timing"

local mode, dir = arg[1], arg[2]
if (mode ~= "roundtrip" and mode ~= "time") or not dir then
  io.stderr:write("usage: codec.lua roundtrip|time OUT_DIR\n")
  os.exit(2)
end

local impl = timing.impl
local TYPE = "lgrpc.bench.Sample"
local SIZES = { "small", "large" }
local OPS = { "encode", "decode", "json_encode", "json_decode" }

local function all_unavailable(reason)
  for _, size in ipairs(SIZES) do
    for _, op in ipairs(OPS) do timing.unavailable("codec." .. size .. "." .. op .. "." .. impl, reason) end
  end
  os.exit(0)
end

local ok, proto = pcall(require, "lgrpc.proto")
if not ok then all_unavailable("require lgrpc.proto: " .. tostring(proto)) end
local pool, err
ok, pool, err = pcall(proto.load, { "bench.proto", include = { "bench" } })
if not ok then all_unavailable("proto.load raised: " .. tostring(pool)) end
if not pool then all_unavailable("proto.load: " .. tostring(err)) end

-- pcall so a codec that is not there yet (or raises) gives a reason instead of a traceback.
local function try(f, ...)
  local okc, a, b = pcall(f, ...)
  if not okc then return nil, "raised: " .. tostring(a) end
  return a, b
end

local failed = false
for _, size in ipairs(SIZES) do
  local bytes = assert(timing.read(dir .. "/" .. size .. ".bin"))
  local json_in = assert(timing.read(dir .. "/" .. size .. ".json"))
  local msg, derr = try(pool.decode, pool, TYPE, bytes)
  local key = "codec." .. size .. ".%s." .. impl
  if mode == "roundtrip" then
    if not msg then
      print(string.format("CHECK %s.%s.bin FAILED (decode: %s)", impl, size, derr)); failed = true
    else
      local out, eerr = try(pool.encode, pool, TYPE, msg)
      if out then
        timing.write(string.format("%s/%s.%s.bin", dir, impl, size), out)
      else
        print(string.format("CHECK %s.%s.bin FAILED (encode: %s)", impl, size, eerr)); failed = true
      end
      local text, jerr = try(pool.json_encode, pool, TYPE, msg)
      if text then
        timing.write(string.format("%s/%s.%s.json", dir, impl, size), text)
      else
        print(string.format("CHECK %s.%s.json FAILED (json_encode: %s)", impl, size, jerr))
      end
      -- python's JSON, decoded by us and encoded to binary: checked like the others.
      local back, berr = try(pool.json_decode, pool, TYPE, json_in)
      if back then back, berr = try(pool.encode, pool, TYPE, back) end
      if back then
        timing.write(string.format("%s/%s-from-json.%s.bin", dir, impl, size), back)
      else
        print(string.format("CHECK %s-from-json.%s.bin FAILED (json_decode: %s)", impl, size, berr))
      end
    end
  else
    if not msg then
      for _, op in ipairs(OPS) do timing.unavailable(key:format(op), "decode: " .. derr) end
    else
      local ok_e, eerr = try(pool.encode, pool, TYPE, msg)
      if ok_e then
        timing.result(key:format("encode"), timing.median_ns(function() pool:encode(TYPE, msg) end))
      else
        timing.unavailable(key:format("encode"), "encode: " .. eerr)
      end
      timing.result(key:format("decode"), timing.median_ns(function() pool:decode(TYPE, bytes) end))
      local text, jerr = try(pool.json_encode, pool, TYPE, msg)
      if text then
        timing.result(key:format("json_encode"), timing.median_ns(function() pool:json_encode(TYPE, msg) end))
      else
        timing.unavailable(key:format("json_encode"), "json_encode: " .. jerr)
      end
      local back, berr = try(pool.json_decode, pool, TYPE, json_in)
      if back then
        timing.result(key:format("json_decode"), timing.median_ns(function() pool:json_decode(TYPE, json_in) end))
      else
        timing.unavailable(key:format("json_decode"), "json_decode: " .. berr)
      end
    end
  end
end
os.exit(failed and 1 or 0)

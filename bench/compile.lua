-- bench/compile.lua: the lgrpc side of the compiler section, run under lua5.4 and LuaJIT.
--   compile.lua FILE VIRTUAL_NAME   RESULT compile.IMPL NS
-- The .proto text is read once; each iteration parses and compiles it into a fresh pool
-- (proto.pool + pool:load_string: grammar, compiler, symbol index; nothing cached between
-- iterations), as bench/compile_cpp.cc does with Parser + BuildFile into a fresh DescriptorPool.
package.path = (arg[0]:match("^(.-)[^/]*$") or "") .. "?.lua;" .. package.path
local timing = require "timing"

local file, name = arg[1], arg[2]
if not file or not name then
  io.stderr:write("usage: compile.lua FILE VIRTUAL_NAME\n")
  os.exit(2)
end
local key = "compile." .. timing.impl
local text = assert(timing.read(file))

local ok, proto = pcall(require, "lgrpc.proto")
if not ok then timing.unavailable(key, "require lgrpc.proto: " .. tostring(proto)); os.exit(0) end

local function compile_once()
  local pool = proto.pool{ include = {}, system_include = false }
  return pool:load_string(name, text)
end

local okc, res, err = pcall(compile_once)
if not okc then timing.unavailable(key, "load_string raised: " .. tostring(res)); os.exit(0) end
if not res then timing.unavailable(key, "load_string: " .. tostring(err)); os.exit(0) end
-- The compiled file must hold what protoc finds in it (the message count is a cheap sanity check).
local pool = proto.pool{ include = {}, system_include = false }
pool:load_string(name, text)
local fdp = pool:file(name)
if not fdp or not fdp.message_type or #fdp.message_type == 0 then
  timing.unavailable(key, "load_string gave a file without messages")
  os.exit(0)
end
timing.result(key, timing.median_ns(compile_once))

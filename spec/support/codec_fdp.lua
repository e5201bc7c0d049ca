-- codec_fdp.lua — descriptor tables from protoc, for the codec specs: runs
-- `protoc --descriptor_set_out --include_imports` and converts the set with codec_fdp.py
-- (python3 + google.protobuf) into Lua descriptor tables (docs/design.md representation).
--   local fdp = require "codec_fdp"
--   local files = fdp.load(dir, "file.proto")        -- array of FileDescriptorProto tables
--   local raw = fdp.descriptor_set(dir, "file.proto") -- protoc's bytes
local fdp = {}

local top = os.getenv("LGRPC_TOP") or "."
local ENV = "env -u LD_PRELOAD "

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  if ok == true or (ok == 0) or code == 0 then return out end
  return nil, out
end

local function tmpname()
  local n = os.tmpname()
  return n
end

function fdp.descriptor_set(dir, file, extra)
  local out = tmpname()
  local ok, err = sh(ENV .. ("protoc --descriptor_set_out=%s --include_imports %s -I %s %s")
    :format(out, extra or "", dir, file))
  if not ok then os.remove(out) error("protoc failed: " .. tostring(err)) end
  local f = assert(io.open(out, "rb"))
  local data = f:read("*a")
  f:close()
  os.remove(out)
  return data, out
end

function fdp.load(dir, file, extra)
  local out = tmpname()
  local ok, err = sh(ENV .. ("protoc --descriptor_set_out=%s --include_imports %s -I %s %s")
    :format(out, extra or "", dir, file))
  if not ok then os.remove(out) error("protoc failed: " .. tostring(err)) end
  local src, perr = sh(ENV .. ("/usr/bin/python3 %s/spec/support/codec_fdp.py %s"):format(top, out))
  os.remove(out)
  if not src then error("codec_fdp.py failed: " .. tostring(perr)) end
  local chunk = assert((loadstring or load)(src, "=fdp"))
  return chunk()
end

-- hex helpers shared by the codec specs
function fdp.hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

function fdp.unhex(h)
  h = h:gsub("%s", "")
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

return fdp

-- certs.lua — the TLS specs' certificates, generated for this run by certs.py into a fresh
-- temporary directory (removed at exit of the Lua state by the caller's `certs.cleanup`).
-- `certs.get()` returns { dir = ..., path = function(stem_ext), pem = function(stem_ext) },
-- e.g. c.path("server.pem"), c.pem("ca.pem"). One set per Lua state.
local M = {}
local cached

local function top()
  return os.getenv("LGRPC_TOP") or "."
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function M.get()
  if cached then return cached end
  local p = io.popen("mktemp -d /tmp/lgrpc-certs.XXXXXX")
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp failed")
  -- the child must not inherit the sanitizer preload of an ASan run
  local cmd = string.format("env -u LD_PRELOAD /usr/bin/python3 %s/spec/support/certs.py %s 2>&1",
    top(), dir)
  local h = io.popen(cmd)
  local out = h:read("a")
  h:close() -- LuaJIT's close does not report the exit status: look for the last file instead
  local last = io.open(dir .. "/client-expired.key", "rb")
  assert(last, "certs.py failed: " .. out)
  last:close()
  local pems = {}
  cached = {
    dir = dir,
    path = function(name) return dir .. "/" .. name end,
    pem = function(name)
      pems[name] = pems[name] or read(dir .. "/" .. name)
      return pems[name]
    end,
  }
  return cached
end

function M.cleanup()
  if cached then
    os.execute("rm -rf '" .. cached.dir .. "'")
    cached = nil
  end
end

return M

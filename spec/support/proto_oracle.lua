-- proto_oracle: helpers for the proto_* specs. protoc's own output as the reference, in lgrpc's
-- descriptor-table shape (spec/support/proto_protoc_dump.py turns protoc's FileDescriptorSet into
-- a Lua literal); a table-to-table comparison that names the first difference by path; a small
-- in-spec file loader over grammar + compiler for specs that must not depend on a pool.
local oracle = {}

local function top()
  return os.getenv("LGRPC_TOP") or "."
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
oracle.q = q

function oracle.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function oracle.write(path, text)
  os.execute("mkdir -p " .. q(path:match("^(.*)/") or "."))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function oracle.tmpdir()
  local p = io.popen("mktemp -d /tmp/lgrpc-proto-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

function oracle.rmdir(d)
  if d and d:match("^/tmp/lgrpc%-proto%-") then os.execute("rm -rf " .. q(d)) end
end

-- runs protoc over files; returns the array of descriptor tables (imports included) or nil, stderr
function oracle.protoc(includes, files)
  local out = os.tmpname()
  local errf = os.tmpname()
  local cmd = { "env -u LD_PRELOAD protoc --include_imports --descriptor_set_out=" .. q(out) }
  for _, d in ipairs(includes) do cmd[#cmd + 1] = "-I" .. q(d) end
  for _, f in ipairs(files) do cmd[#cmd + 1] = q(f) end
  local ok = os.execute(table.concat(cmd, " ") .. " 2>" .. q(errf))
  local err = oracle.read(errf) or ""
  os.remove(errf)
  if ok ~= true and ok ~= 0 then
    os.remove(out)
    return nil, err
  end
  local p = io.popen("env -u LD_PRELOAD /usr/bin/python3 " .. q(top() .. "/spec/support/proto_protoc_dump.py") ..
    " " .. q(out))
  local text = p:read("a")
  p:close()
  os.remove(out)
  local chunk = assert((loadstring or load)(text))
  return chunk()
end

-- first difference between two descriptor tables, as "path: mine vs protoc's", or nil
function oracle.diff(mine, theirs, path)
  path = path or ""
  if type(mine) ~= type(theirs) then
    return string.format("%s: %s vs protoc's %s", path, tostring(mine), tostring(theirs))
  end
  if type(mine) ~= "table" then
    if mine ~= theirs and not (mine ~= mine and theirs ~= theirs) then
      local function show(v)
        if type(v) == "string" then return string.format("%q", v) end
        return tostring(v)
      end
      return string.format("%s: %s vs protoc's %s", path, show(mine), show(theirs))
    end
    return nil
  end
  local keys = {}
  for k in pairs(mine) do keys[#keys + 1] = k end
  for k in pairs(theirs) do if mine[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local d = oracle.diff(mine[k], theirs[k], path .. "." .. tostring(k))
    if d then return d end
  end
  return nil
end

-- grammar + compiler over files found in include dirs (then /usr/include), imports first;
-- returns { [virtual name] = descriptor table } or nil, err
function oracle.compile_files(includes, names)
  local grammar = require "lgrpc.proto.grammar"
  local compiler = require "lgrpc.proto.compiler"
  local files = {}
  local dirs = {}
  for i, d in ipairs(includes) do dirs[i] = d end
  dirs[#dirs + 1] = "/usr/include"
  local desc
  local function load(name)
    if files[name] then return files[name] end
    local src
    for _, d in ipairs(dirs) do
      src = oracle.read(d .. "/" .. name)
      if src then break end
    end
    if not src then return nil, name .. ": File not found." end
    local tree, err = grammar.parse(src, name)
    if not tree then return nil, err end
    for _, el in ipairs(tree.body) do
      if el.tag == "import" then
        local ok, ierr = load(el.path)
        if not ok then return nil, ierr end
      end
    end
    local fdp
    fdp, err = compiler.compile(tree, { name = name, descriptor = desc, file = function(n) return files[n] end })
    if not fdp then return nil, err end
    files[name] = fdp
    return fdp
  end
  local err
  desc, err = load("google/protobuf/descriptor.proto")
  if not desc then return nil, err end
  for _, n in ipairs(names) do
    local ok, lerr = load(n)
    if not ok then return nil, lerr end
  end
  return files
end

-- compiles and compares every file protoc outputs for `names`; returns nil or the first difference
function oracle.compare_with_protoc(includes, names)
  local theirs, perr = oracle.protoc(includes, names)
  if not theirs then return "protoc failed: " .. perr end
  local mine, err = oracle.compile_files(includes, names)
  if not mine then return "lgrpc failed: " .. err end
  for _, t in ipairs(theirs) do
    local m = mine[t.name]
    if not m then return t.name .. ": not compiled by lgrpc" end
    local d = oracle.diff(m, t, t.name)
    if d then return d end
  end
  return nil
end

return oracle

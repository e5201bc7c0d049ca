-- lgrpc.proto.loader: finds and reads .proto files through a pool's include paths, maps disk
-- paths to virtual names as protoc does, and drives lgrpc.proto.grammar and
-- lgrpc.proto.compiler over a file and its imports, depth first, registering each compiled
-- file in the pool. Owns import errors (missing files, cycles) at the import statement's
-- position. Holds one shared value: the compiled descriptor.proto, immutable once built.
local grammar = require "lgrpc.proto.grammar"
local compiler = require "lgrpc.proto.compiler"

local M = {}

local SYSTEM_DESCRIPTOR = "/usr/include/google/protobuf/descriptor.proto"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  -- a directory opens on Linux but does not read
  return s
end

-- protoc's CanonicalizePath: drop "." segments and doubled slashes
local function canonical(path)
  local absolute = path:sub(1, 1) == "/"
  local parts = {}
  for seg in path:gmatch("[^/]+") do
    if seg ~= "." then parts[#parts + 1] = seg end
  end
  local s = table.concat(parts, "/")
  if absolute then s = "/" .. s end
  return s
end

local function disk_path(dir, virtual)
  dir = canonical(dir)
  if dir == "" then return virtual end
  if dir == "/" then return "/" .. virtual end
  return dir .. "/" .. virtual
end

-- a virtual name -> the first include dir's file that reads, and its content
local function find_virtual(pool, name)
  for _, dir in ipairs(pool._include or {}) do
    local path = disk_path(dir, name)
    local src = read_file(path)
    if src then return path, src end
  end
end

local TOO_DUMB = "File does not reside within any path specified using --proto_path (or -I).  You must " ..
  "specify a --proto_path which encompasses this file.  Note that the proto_path must be an exact prefix " ..
  "of the .proto file names -- protoc is too dumb to figure out when two paths (e.g. absolute and relative) " ..
  "are equivalent (it's harder than you think)."

-- a path as the user names it -> its virtual name (protoc's MakeProtoPathRelative)
local function virtual_name(pool, path)
  if not read_file(path) then
    if find_virtual(pool, path) then return path end
    return nil, "Could not make proto path relative: " .. path .. ": No such file or directory"
  end
  local cpath = canonical(path)
  for _, dir in ipairs(pool._include or {}) do
    local cdir = canonical(dir)
    local virtual
    if cdir == "" then
      if cpath:sub(1, 1) ~= "/" then virtual = cpath end
    elseif cdir == "/" then
      if cpath:sub(1, 1) == "/" then virtual = cpath:sub(2) end
    elseif cpath:sub(1, #cdir + 1) == cdir .. "/" then
      virtual = cpath:sub(#cdir + 2)
    end
    if virtual then
      -- an earlier include dir holding the same virtual name shadows this file
      local first = find_virtual(pool, virtual)
      if first and canonical(first) ~= cpath then
        return nil, path .. ': Input is shadowed in the --proto_path by "' .. first .. '".  Either use the ' ..
          "latter file as your input or reorder the --proto_path so that the former file's location comes first."
      end
      return virtual
    end
  end
  if find_virtual(pool, path) then return path end
  return nil, path .. ": " .. TOO_DUMB
end

local function position(src, pos)
  local line, col = grammar.position(src, pos)
  return line .. ":" .. col
end

-- compile one parsed file whose imports are all in the pool
local function compile(pool, tree, name)
  local env = {
    name = name,
    file = function(n) return pool:_file(n) end,
    symbol = function(full) return pool:_symbol(full) end,
    symbols = pool._symbols, -- the same, as a table: full name (no leading dot) -> symbol
  }
  if name ~= "google/protobuf/descriptor.proto" then
    local d, err = M.descriptor_proto()
    if not d then return nil, err end
    env.descriptor = d
  end
  local fdp, err = compiler.compile(tree, env)
  if not fdp then return nil, err end
  local ok, aerr = pool:_add_file(fdp)
  if not ok then return nil, aerr end
  return fdp
end

-- loads name (virtual) with its imports; stack: files being loaded, for cycles
local function load_tree(pool, name, src, stack)
  local tree, err = grammar.parse(src, name)
  if not tree then return nil, err end
  local entry = { name = name, src = src }
  stack[#stack + 1] = entry
  stack[name] = #stack
  local function fail(e)
    stack[name] = nil
    stack[#stack] = nil
    return nil, e
  end
  for _, el in ipairs(tree.body) do
    if el.tag == "import" then
      entry.current = el
      local here = name .. ":" .. position(src, el.pos) .. ': Import "' .. el.path .. '" was not found or had errors.'
      local j = stack[el.path]
      if j then
        local chain = {}
        for i = j, #stack do chain[#chain + 1] = stack[i].name end
        chain[#chain + 1] = el.path
        local root = stack[j]
        local msg = root.name .. ":" .. position(root.src, root.current.pos) ..
          ": File recursively imports itself: " .. table.concat(chain, " -> ")
        return fail(msg .. "\n" .. here)
      end
      local bad = el.path:find("\\", 1, true) or el.path:find("//", 1, true)
      for seg in (el.path .. "/"):gmatch("([^/]*)/") do
        if seg == "." or seg == ".." then bad = true end
      end
      if bad then
        return fail(el.path .. ': Backslashes, consecutive slashes, ".", or ".." are not allowed in the virtual path\n' .. here)
      end
      if not pool:_file(el.path) then
        local path, dsrc = find_virtual(pool, el.path)
        if not path then return fail(el.path .. ": File not found.\n" .. here) end
        local ok, ierr = load_tree(pool, el.path, dsrc, stack)
        if not ok then return fail(ierr .. "\n" .. here) end
      end
    end
  end
  stack[name] = nil
  stack[#stack] = nil
  return compile(pool, tree, name)
end

--- loader.load(pool, paths) -> array of virtual names | nil, err
function M.load(pool, paths)
  if type(paths) == "string" then paths = { paths } end
  local names = {}
  for i, path in ipairs(paths) do
    local name, err = virtual_name(pool, path)
    if not name then return nil, err end
    names[i] = name
  end
  for _, name in ipairs(names) do
    if not pool:_file(name) then
      local _, src = find_virtual(pool, name)
      if not src then return nil, name .. ": File not found." end
      local ok, err = load_tree(pool, name, src, {})
      if not ok then return nil, err end
    end
  end
  return names
end

--- loader.load_string(pool, name, source) -> name | nil, err
function M.load_string(pool, name, source)
  if pool:_file(name) then return nil, name .. ': A file with this name is already in the pool.' end
  local ok, err = load_tree(pool, name, source, {})
  if not ok then return nil, err end
  return name
end

-- The bootstrap copy of descriptor.proto, compiled once from the system include directory.
local descriptor_cache, descriptor_err
function M.descriptor_proto()
  if descriptor_cache then return descriptor_cache end
  if descriptor_err then return nil, descriptor_err end
  local src = read_file(SYSTEM_DESCRIPTOR)
  if not src then
    descriptor_err = SYSTEM_DESCRIPTOR .. ": File not found (install libprotobuf-dev)."
    return nil, descriptor_err
  end
  local name = "google/protobuf/descriptor.proto"
  local tree, err = grammar.parse(src, name)
  local fdp
  if tree then fdp, err = compiler.compile(tree, { name = name, file = function() end }) end
  if not fdp then descriptor_err = err; return nil, err end
  descriptor_cache = fdp
  return fdp
end

return M

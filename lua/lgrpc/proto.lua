-- lgrpc.proto: schema pools. A pool holds compiled .proto files (descriptor tables, see
-- docs/design.md), indexes their symbols, and encodes and decodes messages of any type it holds.
-- Pools are values: two pools in one Lua state never see each other. The only shared state is the
-- immutable bootstrap copy of descriptor.proto the loader keeps for descriptor sets.
local loader = require "lgrpc.proto.loader"
local compiler = require "lgrpc.proto.compiler"

local proto = {}

-- the absent list, for `ipairs(list or EMPTY)`; never written to
local EMPTY = setmetatable({}, { __newindex = function() error("EMPTY is read-only", 2) end })

local SYSTEM_INCLUDE = "/usr/include"

local Pool = {}
Pool.__index = Pool
Pool.__name = "lgrpc.proto.pool"

local function strip_dot(name)
  if type(name) ~= "string" then
    error("type name expected, got " .. type(name), 3)
  end
  if name:byte(1) == 46 then return name:sub(2) end   -- "."
  return name
end

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- Calls fn(full_name, kind, desc) for every symbol a file defines, the way protoc's pool
-- names them: enum values are siblings of their enum (C++ scoping), fields and oneofs live
-- inside their message, extensions where they are declared.
local function each_symbol(fdp, fn)
  local pkg = fdp.package or ""
  if pkg ~= "" then
    local acc = ""
    for part in pkg:gmatch("[^.]+") do
      acc = join(acc, part)
      fn(acc, "package", fdp)
    end
  end
  local function enums(scope, list)
    for _, e in ipairs(list or EMPTY) do
      fn(join(scope, e.name), "enum", e)
      for _, v in ipairs(e.value or EMPTY) do fn(join(scope, v.name), "enum_value", v) end
    end
  end
  local function extensions(scope, list)
    for _, x in ipairs(list or EMPTY) do fn(join(scope, x.name), "extension", x) end
  end
  local function messages(scope, list)
    for _, m in ipairs(list or EMPTY) do
      local full = join(scope, m.name)
      fn(full, "message", m)
      for _, f in ipairs(m.field or EMPTY) do fn(join(full, f.name), "field", f) end
      for _, o in ipairs(m.oneof_decl or EMPTY) do fn(join(full, o.name), "oneof", o) end
      messages(full, m.nested_type)
      enums(full, m.enum_type)
      extensions(full, m.extension)
    end
  end
  messages(pkg, fdp.message_type)
  enums(pkg, fdp.enum_type)
  extensions(pkg, fdp.extension)
  for _, s in ipairs(fdp.service or EMPTY) do
    local full = join(pkg, s.name)
    fn(full, "service", s)
    for _, m in ipairs(s.method or EMPTY) do fn(join(full, m.name), "method", m) end
  end
end

--- A new, empty pool. opts.include: array of include directories (searched in order, then the
--- system directory for google/protobuf/*.proto). opts.max_depth (message nesting, default 100)
--- and opts.max_size (largest encoded message, default 2^31-1) bound the codec.
function proto.pool(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("options table expected", 2) end
  local include = {}
  for _, dir in ipairs(opts.include or EMPTY) do
    if type(dir) ~= "string" then error("include: directory names must be strings", 2) end
    include[#include + 1] = dir
  end
  if opts.system_include ~= false then include[#include + 1] = SYSTEM_INCLUDE end
  return setmetatable({
    _include = include,
    _files = {},      -- descriptor tables in load order
    _by_name = {},    -- virtual file name -> descriptor table
    _symbols = {},    -- full name -> { kind, desc, file }
    _schema = nil,    -- C schema over all files, built on first use
    _checked = {},    -- type names as callers spell them -> checked full names
    _limits = (opts.max_depth or opts.max_size)
      and { max_depth = opts.max_depth, max_size = opts.max_size } or nil,
  }, Pool)
end

--- Loads .proto files with their imports into a new pool.
--- proto.load{ "a.proto", "b.proto", include = { "protos" } } -> pool | nil, err
function proto.load(spec)
  if type(spec) == "string" then spec = { spec } end
  if type(spec) ~= "table" then error("proto.load: table of file names expected", 2) end
  local pool = proto.pool{ include = spec.include or { "." }, system_include = spec.system_include,
                           max_depth = spec.max_depth, max_size = spec.max_size }
  local ok, err = pool:load(spec)
  if not ok then return nil, err end
  return pool
end

--- Loads more files into this pool; returns their virtual names, or nil, err.
function Pool:load(files)
  if type(files) == "string" then files = { files } end
  if type(files) ~= "table" then error("table of file names expected", 2) end
  local list = {}
  for i = 1, #files do
    if type(files[i]) ~= "string" then error("file names must be strings", 2) end
    list[i] = files[i]
  end
  return loader.load(self, list)
end

--- Compiles an in-memory source under the given virtual file name.
function Pool:load_string(name, source)
  if type(name) ~= "string" or type(source) ~= "string" then
    error("load_string(name, source): two strings expected", 2)
  end
  return loader.load_string(self, name, source)
end

local function bootstrap_schema()
  local codec = require "lgrpc.proto.codec"
  local s = proto._bootstrap
  if not s then
    local fdp = assert(loader.descriptor_proto())
    s = assert(codec.schema({ fdp }))
    proto._bootstrap = s
  end
  return s
end

--- Adds the files of a serialized FileDescriptorSet (from protoc, or from a server's
--- reflection). Files already in the pool under the same name are kept as they are.
function Pool:load_descriptor_set(bytes)
  if type(bytes) ~= "string" then error("load_descriptor_set: bytes expected", 2) end
  local set, err = bootstrap_schema():decode("google.protobuf.FileDescriptorSet", bytes)
  if not set then return nil, "descriptor set: " .. err end
  local pending, order = {}, {}
  for _, fdp in ipairs(set.file or EMPTY) do
    if not fdp.name then return nil, "descriptor set: a file has no name" end
    if not self._by_name[fdp.name] and not pending[fdp.name] then
      pending[fdp.name] = fdp
      order[#order + 1] = fdp.name
    end
  end
  local added = {}
  local visiting = {}
  local function add(name, from)
    if self._by_name[name] then return true end
    local fdp = pending[name]
    if not fdp then
      return nil, string.format('descriptor set: "%s" imports "%s", which is neither in the set nor in the pool', from, name)
    end
    if visiting[name] then return nil, 'descriptor set: import cycle through "' .. name .. '"' end
    visiting[name] = true
    for _, dep in ipairs(fdp.dependency or EMPTY) do
      local ok, e = add(dep, name)
      if not ok then return nil, e end
    end
    local ok, e = self:_add_file(fdp)
    if not ok then return nil, "descriptor set: " .. e end
    added[#added + 1] = name
    return true
  end
  for _, name in ipairs(order) do
    local ok, e = add(name, name)
    if not ok then return nil, e end
  end
  return added
end

--- Serializes files of this pool as a FileDescriptorSet, like protoc --descriptor_set_out.
--- names: virtual file names (default: every file); opts.include_imports adds their imports,
--- each file after the files it imports, as protoc orders them.
function Pool:descriptor_set(names, opts)
  opts = opts or {}
  if names == nil then
    names = {}
    for i, f in ipairs(self._files) do names[i] = f.name end
  elseif type(names) == "string" then
    names = { names }
  end
  -- protoc orders the output so that a file follows the files it imports, with or without
  -- --include_imports; without it, imports that were not asked for are left out.
  local wanted = {}
  for _, name in ipairs(names) do wanted[name] = true end
  local out, seen = {}, {}
  local function add(name)
    if seen[name] then return true end
    local fdp = self._by_name[name]
    if not fdp then return nil, 'no file "' .. tostring(name) .. '" in this pool' end
    seen[name] = true
    for _, dep in ipairs(fdp.dependency or EMPTY) do
      local ok, err = add(dep)
      if not ok then return nil, err end
    end
    if opts.include_imports or wanted[name] then out[#out + 1] = fdp end
    return true
  end
  for _, name in ipairs(names) do
    local ok, err = add(name)
    if not ok then return nil, err end
  end
  return bootstrap_schema():encode("google.protobuf.FileDescriptorSet", { file = out })
end

--- Descriptor tables by fully-qualified name (a leading dot is accepted).
local function lookup(self, name, kind)
  local sym = self._symbols[strip_dot(name)]
  if sym and sym.kind == kind then return sym.desc end
  return nil
end

function Pool:message(name) return lookup(self, name, "message") end
function Pool:enum(name) return lookup(self, name, "enum") end
function Pool:service(name) return lookup(self, name, "service") end
function Pool:extension(name) return lookup(self, name, "extension") end

--- The descriptor table of a loaded file, by virtual name.
function Pool:file(name) return self._by_name[name] end

--- The file that defines a symbol.
function Pool:file_of(name)
  local sym = self._symbols[strip_dot(name)]
  return sym and self._by_name[sym.file] or nil
end

--- Iterator over the files in load order: for name, fdp in pool:files() do ... end
function Pool:files()
  local i = 0
  return function()
    i = i + 1
    local f = self._files[i]
    if f then return f.name, f end
  end
end

local function schema(self)
  local s = self._schema
  if not s then
    local codec = require "lgrpc.proto.codec"
    local err
    s, err = codec.schema(self._files, self._limits)
    if not s then return nil, err end
    self._schema = s
  end
  return s
end

-- The message type a caller names, checked once: names that resolved are remembered (a pool
-- only ever gains types), so encode and decode cost one table lookup on the way in.
local function check_type(self, name, level)
  local n = self._checked[name]
  if n then return n end
  if type(name) ~= "string" then error("message type name expected", level + 1) end
  n = strip_dot(name)
  if not lookup(self, n, "message") then return nil, 'unknown message type "' .. n .. '"' end
  self._checked[name] = n
  return n
end

-- encode and decode on their first use of a type name, and on every error: the checks in full
local function encode_slow(self, name, msg, opts)
  local n, err = check_type(self, name, 2)
  if not n then return nil, err end
  if type(msg) ~= "table" then error("encode: message table expected", 2) end
  local s; s, err = schema(self)
  if not s then return nil, err end
  return s:encode(n, msg, opts)
end

local function decode_slow(self, name, bytes, opts)
  local n, err = check_type(self, name, 2)
  if not n then return nil, err end
  if type(bytes) ~= "string" then error("decode: bytes expected", 2) end
  local s; s, err = schema(self)
  if not s then return nil, err end
  return s:decode(n, bytes, opts)
end

-- The hot path: a type name checked before and a schema already built cost two table lookups,
-- a type check and the C call. The slow functions are tail calls, so their error level 2 is
-- still the caller's line.

--- Binary encoding: pool:encode(type, tbl [, opts]) -> bytes | nil, err
function Pool:encode(name, msg, opts)
  local s, n = self._schema, self._checked[name]
  if s and n and type(msg) == "table" then return s:encode(n, msg, opts) end
  return encode_slow(self, name, msg, opts)
end

--- Binary decoding: pool:decode(type, bytes [, opts]) -> tbl | nil, err
function Pool:decode(name, bytes, opts)
  local s, n = self._schema, self._checked[name]
  if s and n and type(bytes) == "string" then return s:decode(n, bytes, opts) end
  return decode_slow(self, name, bytes, opts)
end

--- A new message table with defaults filled.
function Pool:new(name, opts)
  local n, err = check_type(self, name, 2)
  if not n then return nil, err end
  local s; s, err = schema(self)
  if not s then return nil, err end
  return s:new(n, opts)
end

--- proto3 JSON mapping.
function Pool:json_encode(name, msg, opts)
  local n, err = check_type(self, name, 2)
  if not n then return nil, err end
  return require("lgrpc.proto.json").encode(self, n, msg, opts)
end

function Pool:json_decode(name, text, opts)
  local n, err = check_type(self, name, 2)
  if not n then return nil, err end
  if type(text) ~= "string" then error("json_decode: string expected", 2) end
  return require("lgrpc.proto.json").decode(self, n, text, opts)
end

-- Internals for the loader and compiler (docs/design.md, "The compiler's boundary").

function Pool:_file(name) return self._by_name[name] end

function Pool:_symbol(name)
  return self._symbols[strip_dot(name)]
end

--- Registers a compiled file and indexes its symbols; refuses a symbol another file defines.
function Pool:_add_file(fdp)
  local name = fdp.name
  if type(name) ~= "string" then return nil, "file has no name" end
  if self._by_name[name] then return nil, 'file "' .. name .. '" is already in the pool' end
  -- the compiler's index of the file (built while compiling it, or here for a descriptor set):
  -- full name -> { kind, desc, file }, the first definition of a name in protoc's order
  local symbols = self._symbols
  local index = compiler.index_file(fdp)
  local conflict
  for full, sym in pairs(index) do
    local old = symbols[full]
    if not old then
      symbols[full] = sym
    elseif not (sym.kind == "package" and old.kind == "package") then
      conflict = true
      break
    end
  end
  if conflict then
    -- take back what this file added, then report the first conflict in declaration order, as
    -- protoc would
    for full, sym in pairs(index) do
      if symbols[full] == sym then symbols[full] = nil end
    end
    each_symbol(fdp, function(full, kind)
      local old = symbols[full]
      if old and conflict == true and not (kind == "package" and old.kind == "package") then
        conflict = string.format('"%s" is already defined in file "%s".', full, old.file)
      end
    end)
    return nil, name .. ": " .. conflict
  end
  self._files[#self._files + 1] = fdp
  self._by_name[name] = fdp
  self._schema = nil
  return true
end

--- An encoder over a closed set of descriptor tables (the file being compiled and its imports),
--- used to encode custom option values.
function Pool:_encoder(files)
  local codec = require "lgrpc.proto.codec"
  local list, seen = {}, {}
  for _, f in ipairs(files) do
    if not seen[f.name] then
      seen[f.name] = true
      list[#list + 1] = f
    end
  end
  local s, err = codec.schema(list)
  if not s then return function() return nil, err end end
  return function(type_name, tbl) return s:encode(strip_dot(type_name), tbl) end
end

proto.Pool = Pool
return proto

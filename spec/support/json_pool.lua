-- A small schema pool for the JSON specs, independent of lgrpc's own .proto compiler: protoc
-- compiles the files, spec/support/json_pool.py turns the descriptor set into Lua tables, and
-- this module indexes them with the pool methods lgrpc.proto.json uses (message, enum, file_of,
-- extension, and encode/decode through lgrpc.proto.codec when it is available).
local M = {}

local Pool = {}
Pool.__index = Pool

local function top()
  return os.getenv("LGRPC_TOP") or "."
end

--- Runs a command with the sanitizer preload removed (protoc and python must not load ASan).
function M.run(cmd)
  local p = assert(io.popen("env -u LD_PRELOAD " .. cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

--- files: .proto names relative to spec/fixtures/json (or absolute with opts.include).
function M.load(files)
  local dir = top() .. "/spec/fixtures/json"
  local out = M.run(("/usr/bin/python3 %s/spec/support/json_pool.py -I %s %s"):format(
    top(), dir, table.concat(files, " ")))
  local chunk = assert(load(out, "=descriptors"))
  return M.new(chunk())
end

function M.new(fdps)
  local self = setmetatable({ _files = fdps, _symbols = {} }, Pool)
  for _, f in ipairs(fdps) do
    local function add(prefix, msgs, enums, exts)
      for _, e in ipairs(enums or {}) do
        self._symbols[prefix .. e.name] = { kind = "enum", desc = e, file = f }
      end
      for _, x in ipairs(exts or {}) do
        self._symbols[prefix .. x.name] = { kind = "extension", desc = x, file = f }
      end
      for _, m in ipairs(msgs or {}) do
        local full = prefix .. m.name
        self._symbols[full] = { kind = "message", desc = m, file = f }
        add(full .. ".", m.nested_type, m.enum_type, m.extension)
      end
    end
    add(f.package and (f.package .. ".") or "", f.message_type, f.enum_type, f.extension)
  end
  return self
end

local function sym(self, name, kind)
  local s = self._symbols[(name:gsub("^%.", ""))]
  if s and (kind == nil or s.kind == kind) then return s end
end

function Pool:message(name) local s = sym(self, name, "message"); return s and s.desc end
function Pool:enum(name) local s = sym(self, name, "enum"); return s and s.desc end
function Pool:extension(name) local s = sym(self, name, "extension"); return s and s.desc end
function Pool:file_of(name) local s = sym(self, name); return s and s.file end

local function schema(self)
  if self._schema == nil then
    -- the binary codec is another module; without a working one the Any specs stay pending
    local ok, codec = pcall(require, "lgrpc.proto.codec")
    local built, s = false, nil
    if ok and type(codec) == "table" and codec.schema then built, s = pcall(codec.schema, self._files) end
    self._schema = built and s or false
  end
  return self._schema
end

--- True when binary encode/decode (needed for Any) works in this tree.
function Pool:has_codec() return schema(self) and true or false end

function Pool:encode(name, msg, opts)
  local s = schema(self)
  if not s then return nil, "no binary codec in this tree" end
  return s:encode((name:gsub("^%.", "")), msg, opts)
end

function Pool:decode(name, bytes, opts)
  local s = schema(self)
  if not s then return nil, "no binary codec in this tree" end
  return s:decode((name:gsub("^%.", "")), bytes, opts)
end

return M

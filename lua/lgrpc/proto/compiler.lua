-- lgrpc.proto.compiler: one parse tree (lgrpc.proto.grammar) plus the compiled tables of its
-- imports -> one FileDescriptorProto table, field for field as protoc 3.21 writes it (names
-- resolved as protoc scopes them, json_name, canonical default_value, map entries, synthetic
-- oneofs, groups, options), or nil and protoc's "file:line:col: message". Never reads files
-- (lgrpc.proto.loader does) and never touches a pool beyond the lookups it is handed.
local grammar = require "lgrpc.proto.grammar"
local numbers = require "lgrpc.proto.numbers"
local options = require "lgrpc.proto.options"

local M = {}

-- the absent list, for `local list = t.list or EMPTY`; never written to
-- (lists are walked with numeric loops: in Lua 5.4 each step of ipairs is a call into C)
local EMPTY = setmetatable({}, { __newindex = function() error("EMPTY is read-only", 2) end })

local function raise(pos, msg) error({ lgrpc_compile = true, pos = pos, msg = msg }, 0) end
M.raise = raise

local function push(t, key, v)
  local a = t[key]
  if not a then a = {}; t[key] = a end
  a[#a + 1] = v
  return #a
end

local byte = string.byte

local function join(scope, name)
  if scope == nil or scope == "" then return name end
  return scope .. "." .. name
end

local scalar_types = {
  double = "TYPE_DOUBLE", float = "TYPE_FLOAT", int64 = "TYPE_INT64", uint64 = "TYPE_UINT64",
  int32 = "TYPE_INT32", fixed64 = "TYPE_FIXED64", fixed32 = "TYPE_FIXED32", bool = "TYPE_BOOL",
  string = "TYPE_STRING", bytes = "TYPE_BYTES", uint32 = "TYPE_UINT32", sfixed32 = "TYPE_SFIXED32",
  sfixed64 = "TYPE_SFIXED64", sint32 = "TYPE_SINT32", sint64 = "TYPE_SINT64",
}
M.scalar_types = scalar_types
local labels = { optional = "LABEL_OPTIONAL", required = "LABEL_REQUIRED", repeated = "LABEL_REPEATED" }

-- protoc's ToJsonName: drop underscores, upper-case the letter after one
-- an underscore run is dropped and the character after it upper-cased (any trailing run vanishes)
-- (a table replacement: gsub looks the captured character up instead of calling a function)
local upper_next = { [""] = "" }
for b = 0, 255 do upper_next[string.char(b)] = string.char(b):upper() end
local find, gsub, sub = string.find, string.gsub, string.sub
function M.json_name(name)
  if not find(name, "_", 1, true) then return name end
  return (gsub(name, "_+(.?)", upper_next))
end
-- protoc's MapEntryName: "my_field" -> "MyFieldEntry"
local function map_entry_name(name) return (gsub("_" .. name, "_+(.?)", upper_next)) .. "Entry" end

-- protoc's CEscape, used for bytes defaults
local cescape_map = { [10] = "\\n", [13] = "\\r", [9] = "\\t", [34] = '\\"', [39] = "\\'", [92] = "\\\\" }
function M.cescape(s)
  return (s:gsub("[%z\1-\31\34\39\92\127-\255]", function(c)
    local b = c:byte()
    return cescape_map[b] or string.format("\\%03o", b)
  end))
end

---------------------------------------------------------------------------------------------
-- Symbol index of one compiled file: full name (no dot) -> { kind, desc, file, parent }.
local index_cache = setmetatable({}, { __mode = "k" })

local function index_file(fdp)
  local idx = index_cache[fdp]
  if idx then return idx end
  idx = {}
  local file = fdp.name
  local pkg = fdp.package or ""
  if pkg ~= "" then
    local acc
    for part in pkg:gmatch("[^.]+") do
      acc = join(acc, part)
      if not idx[acc] then idx[acc] = { kind = "package", file = file } end
    end
  end
  local function add(full, kind, desc)
    if not idx[full] then idx[full] = { kind = kind, desc = desc, file = file } end
  end
  local function add_enum(scope, e)
    local full = join(scope, e.name)
    add(full, "enum", e)
    local v_list = e.value or EMPTY
    for ix = 1, #v_list do local v = v_list[ix] add(join(scope, v.name), "enum_value", v, e) end
  end
  local function add_message(scope, m)
    local full = join(scope, m.name)
    add(full, "message", m)
    local f_list = m.field or EMPTY
    for ix = 1, #f_list do local f = f_list[ix] add(join(full, f.name), "field", f, m) end
    local o_list = m.oneof_decl or EMPTY
    for ix = 1, #o_list do local o = o_list[ix] add(join(full, o.name), "oneof", o, m) end
    local n_list = m.nested_type or EMPTY
    for ix = 1, #n_list do local n = n_list[ix] add_message(full, n) end
    local e_list = m.enum_type or EMPTY
    for ix = 1, #e_list do local e = e_list[ix] add_enum(full, e) end
    local x_list = m.extension or EMPTY
    for ix = 1, #x_list do local x = x_list[ix] add(join(full, x.name), "extension", x, m) end
  end
  local m_list = fdp.message_type or EMPTY
  for ix = 1, #m_list do local m = m_list[ix] add_message(pkg, m) end
  local e_list = fdp.enum_type or EMPTY
  for ix = 1, #e_list do local e = e_list[ix] add_enum(pkg, e) end
  local x_list = fdp.extension or EMPTY
  for ix = 1, #x_list do local x = x_list[ix] add(join(pkg, x.name), "extension", x) end
  local s_list = fdp.service or EMPTY
  for ix = 1, #s_list do local s = s_list[ix]
    local full = join(pkg, s.name)
    add(full, "service", s)
    local m_list = s.method or EMPTY
    for ix = 1, #m_list do local m = m_list[ix] add(join(full, m.name), "method", m, s) end
  end
  index_cache[fdp] = idx
  return idx
end
M.index_file = index_file

local aggregate_kinds = { message = true, enum = true, package = true, service = true }
local type_kinds = { message = true, enum = true }

---------------------------------------------------------------------------------------------
-- Phase 1: the tree to descriptor tables, with the checks protoc's parser makes.
local Builder = {}
Builder.__index = Builder

function Builder:pos_of(desc, what)
  local n = self.nodes[desc]
  return n and (n[what] or n.name_pos or n.pos)
end

function Builder:number(text, pos, what)
  local first = byte(text, 1)
  if first == 45 then first = byte(text, 2) end -- "-"
  if #text < 10 and first ~= 48 then return tonumber(text) end -- plain short decimal (no leading "0")
  local neg = text:sub(1, 1) == "-"
  local body = neg and text:sub(2) or text
  local v = numbers.parse_u64(body)
  if not v or v[1] ~= 0 or v[2] > 0x7fffffff + (neg and 1 or 0) then
    raise(pos, "Integer out of range.")
  end
  local n = numbers.to_number(v, neg)
  return n
end

function Builder:field_number(node)
  local text = node.number
  if #text < 10 and byte(text, 1) ~= 48 then return tonumber(text) end -- plain short decimal
  local v = numbers.parse_u64(node.number)
  if not v or v[1] ~= 0 or v[2] > 0x7fffffff then raise(node.number_pos, "Integer out of range.") end
  return numbers.to_number(v)
end

function Builder:options_list(desc, list, kind, relative_to)
  -- statement options are collected in source order; interpreted later
  local o_list = list
  for ix = 1, #o_list do local o = o_list[ix]
    if o.value.kind == "ident" and o.value.neg then
      raise(o.value.text_pos, "Invalid '-' symbol before identifier.")
    end
    local rec = self.option_statements[desc]
    if not rec then
      rec = { kind = kind, scope = relative_to }
      self.option_statements[desc] = rec
      self.option_order[#self.option_order + 1] = desc
    end
    rec[#rec + 1] = o
  end
end

-- [default = x, json_name = "y", other options...] on a field
function Builder:field_options(fd, node, list, field_scope, node_is_extension)
  local rest = {}
  local seen = {}
  local o_list = list or EMPTY
  for ix = 1, #o_list do local o = o_list[ix]
    local simple = #o.name == 1 and not o.name[1].ext and o.name[1].name
    if simple == "default" or simple == "json_name" then
      if seen[simple] then raise(o.name[1].pos, 'Already set option "' .. simple .. '".') end
      seen[simple] = true
      if simple == "default" then
        self.defaults[fd] = o.value
      else
        if node_is_extension then raise(o.name[1].pos, "option json_name is not allowed on extension fields.") end
        if o.value.kind ~= "string" then raise(o.value.pos, "Expected string for JSON name.") end
        fd.json_name = o.value.value
        self.explicit_json[fd] = true
      end
    else
      rest[#rest + 1] = o
    end
  end
  if #rest > 0 then self:options_list(fd, rest, "FieldOptions", field_scope) end
end

function Builder:field(node, msg, scope, in_oneof, extendee_node, container)
  local fname = node.tag == "group" and node.name:lower() or node.name
  local field_full = scope == "" and fname or scope .. "." .. fname
  local proto3 = self.proto3
  -- the keys a field usually gets, so that the table is made at its final size (a nil in a
  -- constructor sizes the table and stores nothing)
  local fd = { name = node.name, number = nil, label = nil, type = nil, type_name = nil, json_name = nil,
    oneof_index = nil, options = nil }
  self.nodes[fd] = node
  self.full_names[fd] = field_full
  if node.tag ~= "group" and node.tag ~= "map" then
    if in_oneof then
      if node.label then raise(node.pos, "Fields in oneofs must not have labels (required / optional / repeated).") end
    elseif not node.label and not proto3 then
      raise(node.type_pos, 'Expected "required", "optional", or "repeated".')
    end
  end
  if node.label == "required" and proto3 then raise(node.type_pos, "Required fields are not allowed in proto3.") end
  fd.number = self:field_number(node)
  fd.label = labels[node.label or "optional"]
  if node.label == "optional" and proto3 and node.tag == "field" then fd.proto3_optional = true end
  if node.tag == "group" then
    if proto3 then raise(node.type_pos, "Groups are not supported in proto3 syntax.") end
    if in_oneof and node.label then
      raise(node.pos, "Fields in oneofs must not have labels (required / optional / repeated).")
    end
    if not node.label and not in_oneof then
      raise(node.pos, 'Expected "required", "optional", or "repeated".')
    end
    if not node.name:match("^[A-Z]") then raise(node.name_pos, "Group names must start with a capital letter.") end
    fd.name = node.name:lower()
    fd.type = "TYPE_GROUP"
    local nested = self:message(node, scope, node.name)
    push(container, container == self.fdp and "message_type" or "nested_type", nested)
    fd.type_name = "." .. join(scope, node.name)
  elseif node.tag == "map" then
    if in_oneof then raise(node.lt_pos, "Map fields are not allowed in oneofs.") end
    if node.label then raise(node.lt_pos, "Field labels (required/optional/repeated) are not allowed on map fields.") end
    if extendee_node then raise(node.lt_pos, "Map fields are not allowed to be extensions.") end
    fd.label = "LABEL_REPEATED"
    local entry_name = map_entry_name(node.name)
    local entry = { name = entry_name, options = { map_entry = true } }
    self.nodes[entry] = node
    local key = { name = "key", number = 1, label = "LABEL_OPTIONAL", json_name = "key" }
    local value = { name = "value", number = 2, label = "LABEL_OPTIONAL", json_name = "value" }
    self.nodes[key] = { name_pos = node.key_pos, type_pos = node.key_pos, pos = node.key_pos }
    self.nodes[value] = { name_pos = node.type_pos, type_pos = node.type_pos, pos = node.type_pos }
    local entry_full = join(scope, entry_name)
    self:set_type(key, node.key_type, node.key_pos, entry_full .. ".key", entry_full)
    self:set_type(value, node.type, node.type_pos, entry_full .. ".value", entry_full)
    entry.field = { key, value }
    self.map_keys[key] = node
    push(msg, "nested_type", entry)
    fd.type = "TYPE_MESSAGE"
    fd.type_name = "." .. entry_full
  else
    self:set_type(fd, node.type, node.type_pos, field_full, scope)
  end
  if node.options then self:field_options(fd, node, node.options, field_full, extendee_node ~= nil) end
  -- json_name has no errors to order after resolution: set it now unless given
  if not fd.json_name then fd.json_name = M.json_name(fd.name) end
  if extendee_node then
    fd.extendee = extendee_node.extendee
    local unresolved = self.unresolved
    unresolved[#unresolved + 1] = { fd, extendee_node.extendee, extendee_node.extendee_pos, field_full, scope,
      "extendee" }
  end
  return fd
end

-- A name to resolve is { desc, name, pos, scope, in_scope, field } (positional, so that the
-- constructor stores it in one step): the descriptor and its key ("type_name", "extendee",
-- "input_type" or "output_type") the resolved name goes to, the name as written and its
-- position, the full name of what uses it and the scope it is declared in (where lookup starts).
local U_DESC, U_NAME, U_POS, U_SCOPE, U_IN_SCOPE, U_FIELD = 1, 2, 3, 4, 5, 6

-- full: the field's full name; in_scope: the scope it is declared in (where lookup starts)
function Builder:set_type(fd, type_name, pos, full, in_scope)
  local t = scalar_types[type_name]
  if t then fd.type = t; return end
  fd.type_name = type_name
  local unresolved = self.unresolved
  unresolved[#unresolved + 1] = { fd, type_name, pos, full, in_scope, "type_name" }
end

function Builder:ranges(node, list_key, is_enum, msg)
  local out = {}
  local r_list = node.ranges
  for ix = 1, #r_list do local r = r_list[ix]
    local from = self:number(r.from, r.from_pos)
    local to
    local is_max = r.to == "max"
    if is_max then
      to = is_enum and 0x7fffffff or 536870911
    elseif r.to then
      to = self:number(r.to, r.to_pos)
    else
      to = from
    end
    out[#out + 1] = { start = from, ["end"] = is_enum and to or to + 1, pos = r.from_pos, max = is_max }
  end
  return out
end

-- message (or group) body -> DescriptorProto
function Builder:message(node, scope, name)
  local msg = { name = name or node.name }
  self.nodes[msg] = node
  local full = join(scope, msg.name)
  self.full_names[msg] = full
  local saved_scope = self.cur_scope
  self.cur_scope = full
  local max_ranges = EMPTY -- replaced by a list when a range reaches "max"
  local el_list = node.body
  for ix = 1, #el_list do local el = el_list[ix]
    local tag = el.tag
    if tag == "field" or tag == "map" or tag == "group" then
      local fd = self:field(el, msg, full, false, nil, msg)
      local fields = msg.field
      if not fields then fields = {}; msg.field = fields end
      fields[#fields + 1] = fd
    elseif tag == "oneof" then
      local oneof = { name = el.name }
      self.nodes[oneof] = el
      local idx = push(msg, "oneof_decl", oneof) - 1
      local count = 0
      local f_list = el.body
      for ix = 1, #f_list do local f = f_list[ix]
        if f.tag == "option" then
          self:options_list(oneof, { f }, "OneofOptions", join(full, el.name))
        else
          local fd = self:field(f, msg, full, true, nil, msg)
          fd.oneof_index = idx
          push(msg, "field", fd)
          count = count + 1
        end
      end
      if #el.body == 0 then raise(el.close_pos, "Expected type name.") end
      if count == 0 then raise(el.name_pos, "Oneof must have at least one field.") end
    elseif tag == "message" then
      push(msg, "nested_type", self:message(el, full))
    elseif tag == "enum" then
      push(msg, "enum_type", self:enum(el, full))
    elseif tag == "extend" then
      local f_list = el.body
      for ix = 1, #f_list do local f = f_list[ix]
        push(msg, "extension", self:field(f, msg, full, false, el, msg))
      end
    elseif tag == "extensions" then
      local r_list = self:ranges(el, "extension_range", false, msg)
      for ix = 1, #r_list do local r = r_list[ix]
        local er = { start = r.start, ["end"] = r["end"] }
        if r.max then
          if max_ranges == EMPTY then max_ranges = {} end
          max_ranges[#max_ranges + 1] = er
        end
        self.nodes[er] = { pos = r.pos, number_pos = r.pos }
        if el.options then self:options_list(er, el.options, "ExtensionRangeOptions", full) end
        push(msg, "extension_range", er)
      end
    elseif tag == "reserved" then
      if el.names then
        local n_list = el.names
        for ix = 1, #n_list do local n = n_list[ix] push(msg, "reserved_name", n.name); self.reserved_name_pos[msg] = self.reserved_name_pos[msg] or {}; self.reserved_name_pos[msg][n.name] = n.pos end
      else
        local r_list = self:ranges(el, "reserved_range", false, msg)
        for ix = 1, #r_list do local r = r_list[ix]
          local rr = { start = r.start, ["end"] = r["end"] }
          self.nodes[rr] = { pos = r.pos }
          if r.max then
            if max_ranges == EMPTY then max_ranges = {} end
            max_ranges[#max_ranges + 1] = rr
          end
          push(msg, "reserved_range", rr)
        end
      end
    elseif tag == "option" then
      self:options_list(msg, { el }, "MessageOptions", full)
    end
  end
  -- "max" in a message set's ranges reaches to INT32_MAX (protoc's parser looks for the option)
  if #max_ranges > 0 then
    local el_list = node.body
    for ix = 1, #el_list do local el = el_list[ix]
      if el.tag == "option" and #el.name == 1 and not el.name[1].ext and
        el.name[1].name == "message_set_wire_format" and el.value.kind == "ident" and el.value.text == "true" then
        local r_list = max_ranges
        for ix = 1, #r_list do local r = r_list[ix] r["end"] = 0x7fffffff end
        break
      end
    end
  end
  -- proto3 optional: one synthetic oneof per field, after the real ones (protoc's parser)
  if msg.field then
    local names
    local fd_list = msg.field
    for ix = 1, #fd_list do local fd = fd_list[ix]
      if fd.proto3_optional then
        if not names then
          names = {}
          local f_list = msg.field
          for ix = 1, #f_list do local f = f_list[ix] names[f.name] = true end
          local o_list = msg.oneof_decl or EMPTY
          for ix = 1, #o_list do local o = o_list[ix] names[o.name] = true end
        end
        local oname = fd.name
        if oname:sub(1, 1) ~= "_" then oname = "_" .. oname end
        while names[oname] do oname = "X" .. oname end
        names[oname] = true
        fd.oneof_index = push(msg, "oneof_decl", { name = oname }) - 1
      end
    end
  end
  self.cur_scope = saved_scope
  return msg
end

function Builder:enum(node, scope)
  local e = { name = node.name }
  self.nodes[e] = node
  local el_list = node.body
  for ix = 1, #el_list do local el = el_list[ix]
    if el.tag == "value" then
      local v = { name = el.name, number = self:number(el.number, el.number_pos) }
      self.nodes[v] = el
      if el.options then self:options_list(v, el.options, "EnumValueOptions", join(scope, el.name)) end
      push(e, "value", v)
    elseif el.tag == "reserved" then
      if el.names then
        local n_list = el.names
        for ix = 1, #n_list do local n = n_list[ix] push(e, "reserved_name", n.name); self.reserved_name_pos[e] = self.reserved_name_pos[e] or {}; self.reserved_name_pos[e][n.name] = n.pos end
      else
        local r_list = self:ranges(el, "reserved_range", true)
        for ix = 1, #r_list do local r = r_list[ix]
          local rr = { start = r.start, ["end"] = r["end"] }
          self.nodes[rr] = { pos = r.pos }
          push(e, "reserved_range", rr)
        end
      end
    elseif el.tag == "option" then
      self:options_list(e, { el }, "EnumOptions", join(scope, node.name))
    end
  end
  if not e.value then raise(node.name_pos, "Enums must contain at least one value.") end
  return e
end

function Builder:service(node, scope)
  local s = { name = node.name }
  self.nodes[s] = node
  local el_list = node.body
  for ix = 1, #el_list do local el = el_list[ix]
    if el.tag == "rpc" then
      local m = { name = el.name, input_type = el.input, output_type = el.output }
      self.nodes[m] = el
      local service_full = join(scope, s.name)
      local full = service_full .. "." .. el.name
      local unresolved = self.unresolved
      unresolved[#unresolved + 1] = { m, el.input, el.input_pos, full, service_full, "input_type" }
      unresolved[#unresolved + 1] = { m, el.output, el.output_pos, full, service_full, "output_type" }
      if el.client_streaming then m.client_streaming = true end
      if el.server_streaming then m.server_streaming = true end
      if el.body then
        m.options = {} -- protoc gives a method with a { } block an (empty) options message
        local o_list = el.body
        for ix = 1, #o_list do local o = o_list[ix] self:options_list(m, { o }, "MethodOptions", full) end
      end
      push(s, "method", m)
    elseif el.tag == "option" then
      self:options_list(s, { el }, "ServiceOptions", join(scope, node.name))
    end
  end
  return s
end

function Builder:file(tree)
  local fdp = { name = self.name }
  self.fdp = fdp
  self.nodes[fdp] = { pos = 1 }
  local syntax = tree.syntax_stmt
  if syntax then
    if syntax.value ~= "proto2" and syntax.value ~= "proto3" then
      raise(syntax.value_pos, 'Unrecognized syntax identifier "' .. syntax.value ..
        '".  This parser only recognizes "proto2" and "proto3".')
    end
    if syntax.value == "proto3" then fdp.syntax = "proto3"; self.proto3 = true end
  end
  local body = tree.body
  -- the package first: every scope depends on it
  local package_seen
  local el_list = body
  for ix = 1, #el_list do local el = el_list[ix]
    if el.tag == "package" then
      if package_seen then raise(el.pos, "Multiple package definitions.") end
      package_seen = true
      fdp.package = el.name
    end
  end
  local scope = fdp.package or ""
  self.cur_scope = scope
  local el_list = body
  for ix = 1, #el_list do local el = el_list[ix]
    local tag = el.tag
    if tag == "import" then
      if self.import_seen[el.path] then raise(el.pos, 'Import "' .. el.path .. '" was listed twice.') end
      self.import_seen[el.path] = true
      local idx = push(fdp, "dependency", el.path) - 1
      self.import_nodes[#self.import_nodes + 1] = el
      if el.kind == "public" then push(fdp, "public_dependency", idx) end
      if el.kind == "weak" then push(fdp, "weak_dependency", idx) end
    elseif tag == "message" then
      push(fdp, "message_type", self:message(el, scope))
    elseif tag == "enum" then
      push(fdp, "enum_type", self:enum(el, scope))
    elseif tag == "service" then
      push(fdp, "service", self:service(el, scope))
    elseif tag == "extend" then
      local f_list = el.body
      for ix = 1, #f_list do local f = f_list[ix]
        push(fdp, "extension", self:field(f, fdp, scope, false, el, fdp))
      end
    elseif tag == "option" then
      self:options_list(fdp, { el }, "FileOptions", join(fdp.package or "", "dummy"))
    end
  end
  return fdp
end

---------------------------------------------------------------------------------------------
-- Phase 2: symbols, resolution, checks

-- the files whose symbols this file sees: itself, its imports, their public imports (transitively)
function Builder:visible_files()
  local list, seen = { self.fdp }, { [self.name] = true }
  local function add_public(f)
    local i_list = f.public_dependency or EMPTY
    for ix = 1, #i_list do local i = i_list[ix]
      local dep = self.env.file(f.dependency[i + 1])
      if dep and not seen[dep.name] then
        seen[dep.name] = true
        list[#list + 1] = dep
        add_public(dep)
      end
    end
  end
  local dname_list = self.fdp.dependency or EMPTY
  for ix = 1, #dname_list do local dname = dname_list[ix]
    local dep = self.env.file(dname)
    if dep and not seen[dep.name] then
      seen[dep.name] = true
      list[#list + 1] = dep
      add_public(dep)
    end
  end
  return list
end

-- the symbol indexes of the visible files; the only one when the file imports nothing
function Builder:indexes()
  local indexes = self.visible_indexes
  if not indexes then
    indexes = {}
    local f_list = self.visible
    for i = 1, #f_list do local f = f_list[i] indexes[i] = index_file(f) end
    self.visible_indexes = indexes
    if #indexes == 1 then self.only_index = indexes[1] end
  end
  return indexes
end

function Builder:find_symbol(full)
  local indexes = self.visible_indexes or self:indexes()
  local package
  for i = 1, #indexes do
    local s = indexes[i][full]
    if s then
      if s.kind ~= "package" then return s end
      -- a package is found in any file that declares it; keep looking for a definition
      package = s
    end
  end
  return package
end

-- "a.b.c" -> { "a.b.c", "a.b", "a" }: the scopes a name is looked up in, innermost first
function Builder:scope_chain(scope)
  local chains = self.scope_chains
  if not chains then chains = {}; self.scope_chains = chains end
  local chain = chains[scope]
  if chain then return chain end
  chain = {}
  if scope ~= "" then
    -- the prefixes before each dot, longest first (plain finds: no pattern matching)
    local dots, n = {}, 0
    local dot = find(scope, ".", 1, true)
    while dot do n = n + 1; dots[n] = dot; dot = find(scope, ".", dot + 1, true) end
    chain[1] = scope
    for k = n, 1, -1 do chain[n - k + 2] = sub(scope, 1, dots[k] - 1) end
  end
  chains[scope] = chain
  return chain
end

-- protoc's LookupSymbol: innermost scope outward; a dotted name resolves its first component,
-- then the rest inside it. scope: where the name is used ("" at the top of a file without package).
function Builder:lookup_in(name, scope, types_only)
  if byte(name, 1) == 46 then -- "."
    local full = sub(name, 2)
    return self:find_symbol(full), full
  end
  local dot = find(name, ".", 1, true)
  local first = dot and sub(name, 1, dot - 1) or name
  local chains = self.scope_chains
  local chain = chains and chains[scope] or self:scope_chain(scope)
  if not self.visible_indexes then self:indexes() end
  local only = self.only_index -- one file to look in: index it directly
  for i = 1, #chain do
    local sc = chain[i]
    local try = sc .. "." .. first
    local s
    if only then s = only[try] else s = self:find_symbol(try) end
    if s then
      if dot then
        if aggregate_kinds[s.kind] then
          local full = sc .. "." .. name
          local r = self:find_symbol(full)
          return r, full, not r and full
        end
      elseif not types_only or type_kinds[s.kind] then
        return s, try
      end
    end
  end
  return self:find_symbol(name), name
end

-- the same, relative_to being a name declared in the scope ("pkg.Msg.field" looks in "pkg.Msg")
function Builder:lookup(name, relative_to, types_only)
  local dot = relative_to:match("^.*()%.")
  return self:lookup_in(name, dot and relative_to:sub(1, dot - 1) or "", types_only)
end

function Builder:not_found(u, full_tried, resolved_name)
  if resolved_name then
    raise(u[U_POS], '"' .. u[U_NAME] .. '" is resolved to "' .. resolved_name .. '", which is not defined. ' ..
      "The innermost scope is searched first in name resolution. Consider using a leading '.'(i.e., \"." ..
      u[U_NAME] .. '") to start from the outermost scope.')
  end
  -- defined in a file of the pool this one does not import?
  if self.env.symbol then
    local candidates = {}
    if u[U_NAME]:sub(1, 1) == "." then candidates[1] = u[U_NAME]:sub(2)
    else
      local scope = u[U_SCOPE]
      while true do
        local dot = scope:match("^.*()%.")
        if not dot then candidates[#candidates + 1] = u[U_NAME]; break end
        scope = scope:sub(1, dot - 1)
        candidates[#candidates + 1] = scope .. "." .. u[U_NAME]
      end
    end
    local c_list = candidates
    for ix = 1, #c_list do local c = c_list[ix]
      local s = self.env.symbol(c)
      if s and s.file and s.file ~= self.name and s.kind ~= "package" then
        raise(u[U_POS], '"' .. u[U_NAME] .. '" seems to be defined in "' .. s.file .. '", which is not imported by "' ..
          self.name .. '".  To use it here, please add the necessary import.')
      end
    end
  end
  raise(u[U_POS], '"' .. u[U_NAME] .. '" is not defined.')
end

-- the unresolved names in protoc's CrossLink order: per message its nested types, then its
-- fields, then its extensions; per file messages, extensions, services; extendee before type
function Builder:crosslink_order()
  local by_desc = {}
  local u_list = self.unresolved
  for ix = 1, #u_list do local u = u_list[ix]
    local list = by_desc[u[U_DESC]]
    if not list then list = {}; by_desc[u[U_DESC]] = list end
    if u[U_FIELD] == "extendee" then table.insert(list, 1, u) else list[#list + 1] = u end
  end
  local out = {}
  local function add(desc)
    local u_list = by_desc[desc] or EMPTY
    for ix = 1, #u_list do local u = u_list[ix] out[#out + 1] = u end
  end
  local function message(m)
    local n_list = m.nested_type or EMPTY
    for ix = 1, #n_list do local n = n_list[ix] message(n) end
    local f_list = m.field or EMPTY
    for ix = 1, #f_list do local f = f_list[ix] add(f) end
    local x_list = m.extension or EMPTY
    for ix = 1, #x_list do local x = x_list[ix] add(x) end
  end
  local fdp = self.fdp
  local m_list = fdp.message_type or EMPTY
  for ix = 1, #m_list do local m = m_list[ix] message(m) end
  local x_list = fdp.extension or EMPTY
  for ix = 1, #x_list do local x = x_list[ix] add(x) end
  local sv_list = fdp.service or EMPTY
  for ix = 1, #sv_list do local sv = sv_list[ix]
    local m_list = sv.method or EMPTY
    for ix = 1, #m_list do local m = m_list[ix] add(m) end
  end
  return out
end

-- Resolution gives the same result in any order; only which error comes first depends on it.
-- So names are resolved in the order they were met, and only when one fails is the whole list
-- done again in protoc's CrossLink order, to raise the error protoc reports first.
function Builder:resolve()
  local ok, err = pcall(self.resolve_list, self, self.unresolved)
  if not ok then
    if type(err) ~= "table" or not err.lgrpc_compile then error(err, 0) end
    self:resolve_list(self:crosslink_order())
    error(err, 0) -- not reached: the ordered pass meets a failing name too
  end
end

function Builder:resolve_list(list)
  local type_desc, type_file = self.type_desc, self.type_file
  for i = 1, #list do
    local u = list[i]
    local desc, name, field = u[U_DESC], u[U_NAME], u[U_FIELD]
    local s, full, resolved_name = self:lookup_in(name, u[U_IN_SCOPE], field ~= "extendee")
    if not s then self:not_found(u, full, resolved_name) end
    local kind = s.kind
    if field == "type_name" then
      if kind ~= "message" and kind ~= "enum" then raise(u[U_POS], '"' .. name .. '" is not a type.') end
      desc.type_name = "." .. full
      desc.type = kind == "message" and "TYPE_MESSAGE" or "TYPE_ENUM"
      type_desc[desc] = s.desc
      type_file[desc] = s.file
    elseif field == "extendee" then
      if kind ~= "message" then raise(u[U_POS], '"' .. name .. '" is not a message type.') end
      desc.extendee = "." .. full
      self.extendee_desc[desc] = s.desc
    else -- a method's input or output
      if kind ~= "message" then raise(u[U_POS], '"' .. name .. '" is not a message type.') end
      desc[field] = "." .. full
    end
  end
end

-- duplicate symbols within this file and against the other files of the pool
function Builder:check_symbols()
  local seen = {}
  local fdp = self.fdp
  local file = self.name
  -- the pool's symbol table when the loader hands it over (names without a leading dot)
  local symbols, env_symbol = self.env.symbols, self.env.symbol
  local function define(full, desc, kind, scope_desc_name)
    local prev = seen[full]
    if prev and not (prev.kind == "package" and kind == "package") then
      local pos = self:pos_of(desc, "name_pos")
      local dot = full:match("^.*()%.")
      local msg
      if dot then
        msg = '"' .. full:sub(dot + 1) .. '" is already defined in "' .. full:sub(1, dot - 1) .. '".'
      else
        msg = '"' .. full .. '" is already defined.'
      end
      raise(pos, msg)
    end
    if kind ~= "package" and (symbols or env_symbol) then
      local other
      if symbols then other = symbols[full] else other = env_symbol(full) end
      if other and other.file and other.file ~= self.name then
        if other.kind == "package" then
          raise(self:pos_of(desc, "name_pos"), '"' .. full .. '" is already defined (as something else) in file "' .. other.file .. '".')
        end
        raise(self:pos_of(desc, "name_pos"), '"' .. full .. '" is already defined in file "' .. other.file .. '".')
      end
    end
    seen[full] = { kind = kind, desc = desc, file = file }
  end
  local pkg = fdp.package or ""
  if pkg ~= "" then
    local acc
    for part in pkg:gmatch("[^.]+") do acc = join(acc, part); seen[acc] = { kind = "package", file = file } end
  end
  -- protoc's DescriptorBuilder adds a message's, enum's or service's own name after its members
  local function enum(scope, e)
    local v_list = e.value or EMPTY
    for ix = 1, #v_list do local v = v_list[ix] define(join(scope, v.name), v, "enum_value") end
    define(join(scope, e.name), e, "enum")
  end
  local full_names = self.full_names
  local function message(scope, m)
    local full = full_names[m] or join(scope, m.name)
    -- protoc's BuildMessage order: oneofs, fields, nested types, enums, extensions
    local o_list = m.oneof_decl or EMPTY
    for ix = 1, #o_list do local o = o_list[ix]
      if self.nodes[o] then define(full .. "." .. o.name, o, "oneof")
      else seen[full .. "." .. o.name] = { kind = "oneof", desc = o, file = file } end
    end
    local f_list = m.field or EMPTY
    for ix = 1, #f_list do local f = f_list[ix] define(full_names[f] or full .. "." .. f.name, f, "field") end
    local n_list = m.nested_type or EMPTY
    for ix = 1, #n_list do local n = n_list[ix] message(full, n) end
    local e_list = m.enum_type or EMPTY
    for ix = 1, #e_list do local e = e_list[ix] enum(full, e) end
    local x_list = m.extension or EMPTY
    for ix = 1, #x_list do local x = x_list[ix] define(full_names[x] or full .. "." .. x.name, x, "extension") end
    define(full, m, "message")
  end
  local m_list = fdp.message_type or EMPTY
  for ix = 1, #m_list do local m = m_list[ix] message(pkg, m) end
  local e_list = fdp.enum_type or EMPTY
  for ix = 1, #e_list do local e = e_list[ix] enum(pkg, e) end
  local s_list = fdp.service or EMPTY
  for ix = 1, #s_list do local s = s_list[ix]
    local full = join(pkg, s.name)
    local m_list = s.method or EMPTY
    for ix = 1, #m_list do local m = m_list[ix] define(join(full, m.name), m, "method") end
    define(full, s, "service")
  end
  local x_list = fdp.extension or EMPTY
  for ix = 1, #x_list do local x = x_list[ix] define(full_names[x] or join(pkg, x.name), x, "extension") end
  -- every name is defined once now (packages aside): this is the file's symbol index
  index_cache[fdp] = seen
end

local unsigned = { TYPE_UINT32 = true, TYPE_UINT64 = true, TYPE_FIXED32 = true, TYPE_FIXED64 = true }
local int_limits = {
  TYPE_INT32 = numbers.INT32_MAX, TYPE_SINT32 = numbers.INT32_MAX, TYPE_SFIXED32 = numbers.INT32_MAX,
  TYPE_INT64 = numbers.INT64_MAX, TYPE_SINT64 = numbers.INT64_MAX, TYPE_SFIXED64 = numbers.INT64_MAX,
  TYPE_UINT32 = numbers.UINT32_MAX, TYPE_FIXED32 = numbers.UINT32_MAX,
  TYPE_UINT64 = numbers.UINT64_MAX, TYPE_FIXED64 = numbers.UINT64_MAX,
}

-- [default = ...] -> default_value in protoc's canonical text
function Builder:default_value(fd, v)
  local t = fd.type
  if self.proto3 then raise(v.pos, "Explicit default values are not allowed in proto3.") end
  if fd.label == "LABEL_REPEATED" then raise(v.pos, "Repeated fields can't have default values.") end
  if t == "TYPE_MESSAGE" or t == "TYPE_GROUP" then raise(v.pos, "Messages can't have default values.") end
  local limit = int_limits[t]
  if limit then
    if v.kind ~= "int" then raise(v.neg and v.text_pos or v.pos, "Expected integer for field default value.") end
    if v.neg and unsigned[t] then raise(v.text_pos or v.pos, "Unsigned field can't have negative default value.") end
    local n = numbers.parse_u64(v.text)
    local max = limit
    if v.neg then max = (limit == numbers.INT32_MAX) and numbers.INT32_MIN_ABS or numbers.INT64_MIN_ABS end
    if not n or numbers.cmp(n, max) > 0 then raise(v.text_pos or v.pos, "Integer out of range.") end
    local s = numbers.u64_decimal(n)
    if v.neg and s ~= "0" then s = "-" .. s end
    fd.default_value = s
  elseif t == "TYPE_FLOAT" or t == "TYPE_DOUBLE" then
    local x
    if v.kind == "int" or v.kind == "float" then
      x = numbers.token_double(v.kind, v.text)
    elseif v.kind == "ident" and (v.text == "inf" or v.text == "nan") then
      x = v.text == "inf" and math.huge or 0 / 0
    else
      raise(v.text_pos or v.pos, "Expected number.")
    end
    if v.neg then x = -x end
    fd.default_value = t == "TYPE_FLOAT" and numbers.ftoa(x) or numbers.dtoa(x)
  elseif t == "TYPE_BOOL" then
    if v.kind ~= "ident" or v.neg or (v.text ~= "true" and v.text ~= "false") then
      raise(v.pos, 'Expected "true" or "false".')
    end
    fd.default_value = v.text
  elseif t == "TYPE_STRING" then
    if v.kind ~= "string" then raise(v.pos, "Expected string for field default value.") end
    fd.default_value = v.value
  elseif t == "TYPE_BYTES" then
    if v.kind ~= "string" then raise(v.pos, "Expected string.") end
    fd.default_value = M.cescape(v.value)
  elseif t == "TYPE_ENUM" then
    if v.kind ~= "ident" or v.neg then raise(v.pos, "Default value for an enum field must be an identifier.") end
    local e = self.type_desc[fd]
    local found
    local ev_list = e.value or EMPTY
    for ix = 1, #ev_list do local ev = ev_list[ix] if ev.name == v.text then found = true break end end
    if not found then
      raise(v.pos, 'Enum type "' .. fd.type_name:sub(2) .. '" has no value named "' .. v.text .. '".')
    end
    fd.default_value = v.text
  end
end

function Builder:fields_pass()
  local b = self
  if next(b.defaults) == nil then return end
  local function field(fd, owner)
    local v = b.defaults[fd]
    if v then b:default_value(fd, v) end
  end
  local function message(m)
    local f_list = m.field or EMPTY
    for ix = 1, #f_list do local f = f_list[ix] field(f, m) end
    local f_list = m.extension or EMPTY
    for ix = 1, #f_list do local f = f_list[ix] field(f, m) end
    local n_list = m.nested_type or EMPTY
    for ix = 1, #n_list do local n = n_list[ix] message(n) end
  end
  local m_list = self.fdp.message_type or EMPTY
  for ix = 1, #m_list do local m = m_list[ix] message(m) end
  local f_list = self.fdp.extension or EMPTY
  for ix = 1, #f_list do local f = f_list[ix] field(f) end
end

-- the validation protoc's DescriptorBuilder makes after cross-linking
function Builder:validate()
  local b = self
  local proto3 = self.proto3
  local function check_number(fd)
    local n = fd.number
    if n > 0 and n <= 536870911 and (n < 19000 or n > 19999) then return end
    local pos = b:pos_of(fd, "number_pos")
    if n <= 0 then raise(pos, "Field numbers must be positive integers.") end
    if n > 536870911 then raise(pos, "Field numbers cannot be greater than 536870911.") end
    raise(pos, "Field numbers 19000 through 19999 are reserved for the protocol buffer library implementation.")
  end
  local function field_common(fd, m, full)
    local fopts = fd.options
    if not fopts and not (proto3 and fd.type == "TYPE_ENUM") then return end
    local node = b.nodes[fd]
    if fd.options and fd.options.packed ~= nil and fd.options.packed ~= false then
      local packable = fd.label == "LABEL_REPEATED" and fd.type ~= "TYPE_STRING" and fd.type ~= "TYPE_BYTES"
        and fd.type ~= "TYPE_MESSAGE" and fd.type ~= "TYPE_GROUP"
      if not packable then raise(node.type_pos or node.pos, "[packed = true] can only be specified for repeated primitive fields.") end
    end
    if fd.options and fd.options.lazy and fd.type ~= "TYPE_MESSAGE" then
      raise(node.type_pos or node.pos, "[lazy = true] can only be specified for submessage fields.")
    end
    if proto3 and fd.type == "TYPE_ENUM" and b.type_file[fd] then
      -- proto3 messages cannot use proto2 enums
      local owner = b.type_file[fd] == b.name and b.fdp or b.env.file(b.type_file[fd])
      if owner and owner.syntax ~= "proto3" then
        raise(node.type_pos, 'Enum type "' .. fd.type_name:sub(2) .. '" is not a proto3 enum, but is used in "' ..
          full .. '" which is a proto3 message type.')
      end
    end
  end
  local function message(m, scope)
    local full = join(scope, m.name)
    local by_number = {}
    local fd_list = m.field or EMPTY
    for ix = 1, #fd_list do local fd = fd_list[ix]
      local n = fd.number
      if not (n > 0 and n <= 536870911 and (n < 19000 or n > 19999)) then check_number(fd) end
      local prev = by_number[n]
      if prev then
        raise(b:pos_of(fd, "number_pos"), "Field number " .. fd.number .. ' has already been used in "' .. full ..
          '" by field "' .. prev.name .. '".')
      end
      by_number[n] = fd
      if fd.options or (proto3 and fd.type == "TYPE_ENUM") then field_common(fd, m, full) end
    end
    -- map entries: key types
    local n_list = m.nested_type or EMPTY
    for ix = 1, #n_list do local n = n_list[ix]
      if n.options and n.options.map_entry and n.field then
        local key = n.field[1]
        if key.type == "TYPE_FLOAT" or key.type == "TYPE_DOUBLE" or key.type == "TYPE_BYTES" or
          key.type == "TYPE_MESSAGE" or key.type == "TYPE_ENUM" or key.type == "TYPE_GROUP" then
          local node = b.nodes[n]
          if key.type == "TYPE_ENUM" then
            raise(node.pos, "Key in map fields cannot be enum types.")
          end
          raise(node.pos, "Key in map fields cannot be float/double, bytes or message types.")
        end
      end
    end
    -- reserved
    local rr_list = m.reserved_range or EMPTY
    for i = 1, #rr_list do local rr = rr_list[i]
      for j = 1, i - 1 do
        local o = m.reserved_range[j]
        if rr.start < o["end"] and o.start < rr["end"] then
          raise(b:pos_of(rr, "pos"), "Reserved range " .. rr.start .. " to " .. (rr["end"] - 1) ..
            " overlaps with already-defined range " .. o.start .. " to " .. (o["end"] - 1) .. ".")
        end
      end
    end
    local er_list = m.extension_range or EMPTY
    for ix = 1, #er_list do local er = er_list[ix]
      if er.start <= 0 then raise(b:pos_of(er, "pos"), "Extension numbers must be positive integers.") end
      if er["end"] <= er.start then raise(b:pos_of(er, "pos"), "Extension range end number must be greater than start number.") end
      if er["end"] > 536870912 and not (m.options and m.options.message_set_wire_format) then raise(b:pos_of(er, "pos"), "Extension numbers cannot be greater than 536870911.") end
    end
    local er_list = m.extension_range or EMPTY
    for i = 1, #er_list do local er = er_list[i]
      for j = 1, i - 1 do
        local o = m.extension_range[j]
        if er.start < o["end"] and o.start < er["end"] then
          raise(b:pos_of(o, "pos"), "Extension range " .. er.start .. " to " .. (er["end"] - 1) ..
            " overlaps with already-defined range " .. o.start .. " to " .. (o["end"] - 1) .. ".")
        end
      end
      local rr_list = m.reserved_range or EMPTY
      for ix = 1, #rr_list do local rr = rr_list[ix]
        if er.start < rr["end"] and rr.start < er["end"] then
          raise(b:pos_of(er, "pos"), "Extension range " .. er.start .. " to " .. (er["end"] - 1) ..
            " overlaps with reserved range " .. rr.start .. " to " .. (rr["end"] - 1) .. ".")
        end
      end
    end
    local reserved_names = {}
    local n_list = m.reserved_name or EMPTY
    for ix = 1, #n_list do local n = n_list[ix] reserved_names[n] = true end
    local fields = (m.reserved_range or m.reserved_name or m.extension_range) and m.field or EMPTY
    local fd_list = fields
    for ix = 1, #fd_list do local fd = fd_list[ix]
      local rr_list = m.reserved_range or EMPTY
      for ix = 1, #rr_list do local rr = rr_list[ix]
        if fd.number >= rr.start and fd.number < rr["end"] then
          -- protoc prints no position here; ours is the field number's
          raise(b:pos_of(fd, "number_pos"), 'Field "' .. fd.name .. '" uses reserved number ' .. fd.number .. ".")
        end
      end
      if reserved_names[fd.name] then raise(b:pos_of(fd, "name_pos"), 'Field name "' .. fd.name .. '" is reserved.') end
      local er_list = m.extension_range or EMPTY
      for ix = 1, #er_list do local er = er_list[ix]
        if fd.number >= er.start and fd.number < er["end"] then
          raise(b:pos_of(er, "pos"), "Extension range " .. er.start .. " to " .. (er["end"] - 1) ..
            ' includes field "' .. fd.name .. '" (' .. fd.number .. ").")
        end
      end
    end
    -- proto3: json name conflicts; extension ranges not allowed
    if proto3 then
      if m.extension_range and not (m.options and m.options.message_set_wire_format) then
        raise(b:pos_of(m.extension_range[1], "pos"), "Extension ranges are not allowed in proto3.")
      end
      local lower = {}
      local fd_list = m.field or EMPTY
      for ix = 1, #fd_list do local fd = fd_list[ix]
        local j = M.json_name(fd.name):lower()
        local prev = lower[j]
        if prev then
          raise(b:pos_of(fd, "name_pos"), 'The JSON camel-case name of field "' .. fd.name ..
            '" conflicts with field "' .. prev.name .. '". This is not allowed in proto3.')
        end
        lower[j] = fd
      end
    end
    local x_list = m.extension or EMPTY
    for ix = 1, #x_list do local x = x_list[ix] b:check_extension(x, full) end
    local n_list = m.nested_type or EMPTY
    for ix = 1, #n_list do local n = n_list[ix] message(n, full) end
    local e_list = m.enum_type or EMPTY
    for ix = 1, #e_list do local e = e_list[ix] b:check_enum(e, full) end
  end
  local pkg = self.fdp.package or ""
  local m_list = self.fdp.message_type or EMPTY
  for ix = 1, #m_list do local m = m_list[ix] message(m, pkg) end
  local e_list = self.fdp.enum_type or EMPTY
  for ix = 1, #e_list do local e = e_list[ix] self:check_enum(e, pkg) end
  local x_list = self.fdp.extension or EMPTY
  for ix = 1, #x_list do local x = x_list[ix] self:check_extension(x, pkg) end
end

-- extension numbers already taken, per extendee: "extendee#number" -> full name of the extension
function Builder:extension_numbers()
  if self.ext_numbers then return self.ext_numbers end
  local taken = {}
  local f_list = self.visible
  for ix = 1, #f_list do local f = f_list[ix]
    if f ~= self.fdp then
      for full, sym in pairs(index_file(f)) do
        if sym.kind == "extension" and sym.desc.extendee then
          taken[sym.desc.extendee .. "#" .. tostring(sym.desc.number)] = full
        end
      end
    end
  end
  self.ext_numbers = taken
  return taken
end

function Builder:check_extension(x, scope)
  local node = self.nodes[x]
  local pos = node.number_pos
  local taken = self:extension_numbers()
  local k = tostring(x.extendee) .. "#" .. tostring(x.number)
  if taken[k] then
    raise(pos, "Extension number " .. x.number .. ' has already been used in "' .. x.extendee:sub(2) ..
      '" by extension "' .. taken[k] .. '".')
  end
  taken[k] = join(scope, x.name)
  if x.number <= 0 then raise(pos, "Field numbers must be positive integers.") end
  if x.number >= 19000 and x.number <= 19999 then
    raise(pos, "Field numbers 19000 through 19999 are reserved for the protocol buffer library implementation.")
  end
  local target = self.extendee_desc[x]
  if target then
    local ok = false
    local er_list = target.extension_range or EMPTY
    for ix = 1, #er_list do local er = er_list[ix]
      if x.number >= er.start and x.number < er["end"] then ok = true break end
    end
    if not ok then
      raise(pos, '"' .. x.extendee:sub(2) .. '" does not declare ' .. x.number .. " as an extension number.")
    end
  end
  if x.label == "LABEL_REQUIRED" then raise(node.type_pos or node.pos, "The extension " .. x.name .. " cannot be required.") end
  if self.proto3 and not (x.extendee or ""):match("^%.google%.protobuf%.%a+Options$") then
    raise(node.extendee_pos or pos, "Extensions in proto3 are only allowed for defining options.")
  end
end

function Builder:check_enum(e, scope)
  local node = self.nodes[e]
  if self.proto3 and e.value[1].number ~= 0 then
    raise(self:pos_of(e.value[1], "number_pos"), "The first enum value must be zero in proto3.")
  end
  local allow_alias = e.options and e.options.allow_alias
  local by_number = {}
  local v_list = e.value
  for ix = 1, #v_list do local v = v_list[ix]
    local prev = by_number[v.number]
    if prev and not allow_alias then
      raise(self:pos_of(v, "number_pos"), '"' .. v.name .. '" uses the same enum value as "' .. prev.name ..
        "\". If this is intended, set 'option allow_alias = true;' to the enum definition.")
    end
    by_number[v.number] = by_number[v.number] or v
  end
  if allow_alias then
    local any = false
    for n, _ in pairs(by_number) do
      local count = 0
      local v_list = e.value
      for ix = 1, #v_list do local v = v_list[ix] if v.number == n then count = count + 1 end end
      if count > 1 then any = true end
    end
    if not any then
      raise(self:pos_of(e, "name_pos"), '"' .. join(scope, e.name) .. '" declares support for enum aliases but no enum values share field numbers. Please remove the unnecessary \'option allow_alias = true;\' declaration.')
    end
  end
  if self.proto3 then
    -- values equal after dropping the enum-name prefix and case collide (protoc's EnumValue check)
    local prefix = e.name:gsub("_", ""):lower()
    local seen = {}
    local v_list = e.value
    for ix = 1, #v_list do local v = v_list[ix]
      local stripped = v.name:gsub("_", ""):lower()
      if stripped:sub(1, #prefix) == prefix and #stripped > #prefix then stripped = stripped:sub(#prefix + 1) end
      local prev = seen[stripped]
      if prev and prev.number ~= v.number then
        raise(self:pos_of(v, "name_pos"), "Enum name " .. v.name .. " has the same name as " .. prev.name ..
          " if you ignore case and strip out the enum name prefix (if any). This is error-prone and can lead to " ..
          "undefined behavior. Please avoid doing this. If you are using allow_alias, please assign the same " ..
          "numeric value to both enums.")
      end
      seen[stripped] = seen[stripped] or v
    end
  end
  local rr_list = e.reserved_range or EMPTY
  for i = 1, #rr_list do local rr = rr_list[i]
    if rr["end"] < rr.start then raise(self:pos_of(rr, "pos"), "Reserved range end number must be greater than start number.") end
    for j = 1, i - 1 do
      local o = e.reserved_range[j]
      if rr.start <= o["end"] and o.start <= rr["end"] then
        raise(self:pos_of(rr, "pos"), "Reserved range " .. rr.start .. " to " .. rr["end"] ..
          " overlaps with already-defined range " .. o.start .. " to " .. o["end"] .. ".")
      end
    end
  end
  local reserved_names = {}
  local n_list = e.reserved_name or EMPTY
  for ix = 1, #n_list do local n = n_list[ix] reserved_names[n] = true end
  local v_list = e.value
  for ix = 1, #v_list do local v = v_list[ix]
    local rr_list = e.reserved_range or EMPTY
    for ix = 1, #rr_list do local rr = rr_list[ix]
      if v.number >= rr.start and v.number <= rr["end"] then
        raise(self:pos_of(v, "number_pos"), 'Enum value "' .. v.name .. '" uses reserved number ' .. v.number .. ".")
      end
    end
    if reserved_names[v.name] then raise(self:pos_of(v, "name_pos"), 'Enum value "' .. v.name .. '" is reserved.') end
  end
end

---------------------------------------------------------------------------------------------
-- compile(tree, env) -> fdp | nil, err
-- env.name: the virtual file name; env.file(name): a compiled file of the pool (imports);
-- env.symbol(full_name): optional pool-wide lookup { kind, file } for cross-file checks;
-- env.symbols: optional, the same lookup as a table (full name without a leading dot), faster;
-- env.descriptor: the compiled google/protobuf/descriptor.proto (nil while compiling itself).
function M.compile(tree, env)
  local b = setmetatable({
    env = env, name = env.name or tree.name or "input.proto", nodes = {}, unresolved = {},
    defaults = {}, explicit_json = {}, type_desc = {}, extendee_desc = {}, map_keys = {},
    option_statements = {}, option_order = {}, reserved_name_pos = {}, import_nodes = {},
    type_file = {}, full_names = {}, import_seen = {}, ext_numbers = nil,
  }, Builder)
  local src = tree.source or ""
  local ok, res = pcall(function()
    local fdp = b:file(tree)
    b.visible = b:visible_files()
    b:check_symbols()
    b:resolve()
    b:fields_pass()
    options.interpret(b, env)
    b:validate()
    return fdp
  end)
  if ok then return res end
  if type(res) == "table" and res.lgrpc_compile then
    if not res.pos then return nil, b.name .. ": " .. res.msg end
    local line, col = grammar.position(src, res.pos)
    return nil, string.format("%s:%d:%d: %s", b.name, line, col, res.msg)
  end
  return nil, b.name .. ": internal compiler error: " .. tostring(res)
end

Builder.index_file = index_file
M.Builder = Builder
return M

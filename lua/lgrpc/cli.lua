-- lgrpc.cli: the `lgrpc` command-line tool. Each command parses its flags, does its work through
-- the public modules, and returns an exit status; errors go to stderr as protoc prints them.
local cli = {}

local USAGE = [[
Usage: lgrpc COMMAND [OPTIONS]

Commands:
  descriptor-set   compile .proto files into a FileDescriptorSet (like protoc -o)
  encode           a message from text (stdin) to protobuf binary (stdout)
  decode           a message from protobuf binary (stdin) to text (stdout)
  help [COMMAND]   this help, or a command's

Run 'lgrpc help COMMAND' or 'lgrpc COMMAND --help' for a command's options.
]]

local HELP = {
  ["descriptor-set"] = [[
Usage: lgrpc descriptor-set [OPTIONS] PROTO_FILES...
Parses and compiles PROTO_FILES and writes a FileDescriptorSet, as protoc --descriptor_set_out
does (without source info). Flags take protoc's names and meaning:
  -IPATH, --proto_path=PATH   A directory in which to search for imports; may be repeated, searched
                              in order. Without any, the current directory. google/protobuf/*.proto
                              are found in /usr/include after these.
  -oFILE, --descriptor_set_out=FILE
                              Where to write the FileDescriptorSet.
  --include_imports           Also include every file the inputs import, dependencies first.
Errors are printed as FILE:LINE:COLUMN: message, and the exit status is 1.
]],
  encode = [[
Usage: lgrpc encode [OPTIONS] MESSAGE_TYPE < text > binary
Reads one message on stdin, in proto3 JSON (default) or as a Lua table literal such as
{ latitude = 1, name = "x" }, and writes it in protobuf binary on stdout.
  -IPATH, --proto_path=PATH   Import search path (repeatable), as protoc.
  --proto=FILE                A .proto file defining the type (repeatable).
  --descriptor_set_in=FILE    A FileDescriptorSet defining the type (repeatable).
  --input=json|lua            Form of the input (default json).
  --output=binary|hex|base64  Form of the output (default binary).
  --ignore_unknown            JSON input: skip fields and enum names the type does not know.
]],
  decode = [[
Usage: lgrpc decode [OPTIONS] MESSAGE_TYPE < binary > text
Reads one protobuf binary message on stdin and prints it in proto3 JSON (default) or as a Lua
table literal.
  -IPATH, --proto_path=PATH   Import search path (repeatable), as protoc.
  --proto=FILE                A .proto file defining the type (repeatable).
  --descriptor_set_in=FILE    A FileDescriptorSet defining the type (repeatable).
  --input=binary|hex|base64   Form of the input (default binary).
  --output=json|lua           Form of the output (default json).
  --enums=name|number         How enum values are printed (default name).
  --defaults                  Also print fields that are absent, with their default values.
  --proto_names               JSON output: proto field names instead of lowerCamelCase.
]],
}

local function perr(...)
  io.stderr:write(...)
  io.stderr:write("\n")
end

-- Splits protoc-style flags. spec maps a flag name to "value" (takes a value) or "flag".
-- Accepts --name=value, --name value, -Xvalue, -X value. Returns opts (values as arrays),
-- positionals, or nil, err.
local function parse_flags(args, spec)
  local opts, pos = {}, {}
  local i = 1
  local function put(name, v)
    opts[name] = opts[name] or {}
    table.insert(opts[name], v)
  end
  while i <= #args do
    local a = args[i]
    local name, value
    if a == "--" then
      for j = i + 1, #args do pos[#pos + 1] = args[j] end
      break
    elseif a:sub(1, 2) == "--" then
      name, value = a:match("^%-%-([^=]+)=(.*)$")
      if not name then name = a:sub(3) end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      name = a:sub(2, 2)
      if #a > 2 then value = a:sub(3) end
    else
      pos[#pos + 1] = a
    end
    if name then
      local kind = spec[name]
      if not kind then return nil, "Unknown flag: " .. a end
      if type(kind) == "string" and kind:sub(1, 1) == "=" then
        name, kind = kind:sub(2), spec[kind:sub(2)]
      end
      if kind == "flag" then
        if value then return nil, "Flag " .. a .. " does not take a value" end
        put(name, true)
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then return nil, "Missing value for flag: " .. a end
        end
        put(name, value)
      end
    end
    i = i + 1
  end
  return opts, pos
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

local function write_file(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(data)
  f:close()
  if not ok then return nil, werr end
  return true
end

local PROTO_FLAGS = {
  I = "=proto_path", proto_path = "value", help = "flag", h = "=help",
}

local function with_common(extra)
  local t = {}
  for k, v in pairs(PROTO_FLAGS) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

function cli.descriptor_set(args)
  local opts, files = parse_flags(args, with_common{
    o = "=descriptor_set_out", descriptor_set_out = "value", include_imports = "flag",
    include_source_info = "flag",
  })
  if not opts then perr(files); return 1 end
  if opts.help then io.stdout:write(HELP["descriptor-set"]); return 0 end
  if opts.include_source_info then
    perr("--include_source_info: source info is not produced by lgrpc yet.")
    return 1
  end
  if #files == 0 then perr("Missing input file."); return 1 end
  local out = opts.descriptor_set_out
  if not out then perr("Missing output directives."); return 1 end
  if #out > 1 then perr("--descriptor_set_out may only be passed once."); return 1 end
  local proto = require "lgrpc.proto"
  local pool = proto.pool{ include = opts.proto_path or { "." } }
  local names, err = pool:load(files)
  if not names then perr(err); return 1 end
  local bytes; bytes, err = pool:descriptor_set(names, { include_imports = opts.include_imports ~= nil })
  if not bytes then perr(err); return 1 end
  local ok; ok, err = write_file(out[1], bytes)
  if not ok then perr(out[1], ": ", err); return 1 end
  return 0
end

-- Loads the pool for encode/decode from --proto and --descriptor_set_in.
local function message_pool(opts)
  local proto = require "lgrpc.proto"
  local pool = proto.pool{ include = opts.proto_path or { "." } }
  for _, path in ipairs(opts.descriptor_set_in or {}) do
    local data, err = read_file(path)
    if not data then return nil, err end
    local ok; ok, err = pool:load_descriptor_set(data)
    if not ok then return nil, path .. ": " .. err end
  end
  if opts.proto then
    local ok, err = pool:load(opts.proto)
    if not ok then return nil, err end
  end
  if not opts.proto and not opts.descriptor_set_in then
    return nil, "no schema: give --proto=FILE or --descriptor_set_in=FILE"
  end
  return pool
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function to_hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function from_hex(s)
  s = s:gsub("%s", "")
  if #s % 2 ~= 0 or s:find("[^%x]") then return nil, "input is not hex" end
  return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local function to_base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for k = 3, 0, -1 do
      local idx = math.floor(n / 64 ^ k) % 64 + 1
      q[#q + 1] = B64:sub(idx, idx)
    end
    if not b then q[3], q[4] = "=", "="
    elseif not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local function from_base64(s)
  s = s:gsub("%s", ""):gsub("-", "+"):gsub("_", "/"):gsub("=+$", "")
  if s:find("[^%w%+/]") or #s % 4 == 1 then return nil, "input is not base64" end
  local out = {}
  for i = 1, #s, 4 do
    local chunk = s:sub(i, i + 3)
    local n, bits = 0, 0
    for j = 1, #chunk do
      n = n * 64 + (B64:find(chunk:sub(j, j), 1, true) - 1)
      bits = bits + 6
    end
    local bytes = math.floor(bits / 8)
    n = math.floor(n / 2 ^ (bits - bytes * 8))
    local b = {}
    for k = bytes, 1, -1 do
      b[k] = string.char(n % 256)
      n = math.floor(n / 256)
    end
    out[#out + 1] = table.concat(b)
  end
  return table.concat(out)
end

cli._to_base64, cli._from_base64 = to_base64, from_base64

-- A Lua literal for a decoded message: keys sorted, strings escaped to printable ASCII.
local function quote(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t"
    elseif c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\%03d", c:byte())
  end) .. '"'
end

local function number_literal(v)
  if math.type and math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "0/0" end
  if v == math.huge then return "1/0" end
  if v == -math.huge then return "-1/0" end
  if v == math.floor(v) and math.abs(v) < 2 ^ 63 then
    if v == 0 and 1 / v < 0 then return "-0.0" end
    if not math.type then return string.format("%.17g", v) end
    return string.format("%.1f", v)
  end
  local s = string.format("%.17g", v)
  for p = 15, 17 do
    local t = string.format("%." .. p .. "g", v)
    if tonumber(t) == v then s = t; break end
  end
  return s
end

local function is_ident(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function to_lua(v, indent)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "number" then return number_literal(v) end
  if t == "boolean" then return tostring(v) end
  if t ~= "table" then return tostring(v) end
  local n = #v
  local keys = {}
  for k in pairs(v) do
    if not (math.type and math.type(k) == "integer" or type(k) == "number" and k % 1 == 0)
       or k < 1 or k > n then
      keys[#keys + 1] = k
    end
  end
  if n == 0 and #keys == 0 then return "{}" end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local pad = indent .. "  "
  local parts = {}
  for i = 1, n do parts[#parts + 1] = pad .. to_lua(v[i], pad) end
  for _, k in ipairs(keys) do
    local key = is_ident(k) and k or "[" .. to_lua(k, pad) .. "]"
    parts[#parts + 1] = pad .. key .. " = " .. to_lua(v[k], pad)
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

cli._to_lua = to_lua

local function read_lua_literal(text)
  local env = { math = { huge = math.huge } }
  local chunk, err = load("return " .. text, "=stdin", "t", env)
  if not chunk then return nil, err end
  if setfenv then setfenv(chunk, env) end
  local ok, v = pcall(chunk)
  if not ok then return nil, tostring(v) end
  if type(v) ~= "table" then return nil, "stdin: a table literal was expected" end
  return v
end

local CODEC_FLAGS = {
  proto = "value", descriptor_set_in = "value", output = "value", input = "value",
  enums = "value", defaults = "flag", proto_names = "flag", ignore_unknown = "flag",
}

local function one(opts, name, default, allowed)
  local v = opts[name] and opts[name][#opts[name]] or default
  for _, a in ipairs(allowed) do
    if v == a then return v end
  end
  return nil, "--" .. name .. ": one of " .. table.concat(allowed, ", ") .. " expected, got " .. tostring(v)
end

local function codec_command(args, which)
  local opts, pos = parse_flags(args, with_common(CODEC_FLAGS))
  if not opts then perr(pos); return 1 end
  if opts.help then io.stdout:write(HELP[which]); return 0 end
  if #pos ~= 1 then perr("Expected exactly one MESSAGE_TYPE. See 'lgrpc help ", which, "'."); return 1 end
  local pool, err = message_pool(opts)
  if not pool then perr(err); return 1 end
  local type_name = pos[1]
  if not pool:message(type_name) then perr('Unknown message type "', type_name, '".'); return 1 end
  local input = io.stdin:read("a") or ""
  if which == "encode" then
    local from; from, err = one(opts, "input", "json", { "json", "lua" })
    if not from then perr(err); return 1 end
    local to; to, err = one(opts, "output", "binary", { "binary", "hex", "base64" })
    if not to then perr(err); return 1 end
    local msg
    if from == "lua" then msg, err = read_lua_literal(input)
    else msg, err = pool:json_decode(type_name, input, { ignore_unknown = opts.ignore_unknown ~= nil }) end
    if not msg then perr(err); return 1 end
    local bytes; bytes, err = pool:encode(type_name, msg)
    if not bytes then perr(err); return 1 end
    if to == "hex" then bytes = to_hex(bytes) .. "\n"
    elseif to == "base64" then bytes = to_base64(bytes) .. "\n" end
    io.stdout:write(bytes)
  else
    local from; from, err = one(opts, "input", "binary", { "binary", "hex", "base64" })
    if not from then perr(err); return 1 end
    local to; to, err = one(opts, "output", "json", { "json", "lua" })
    if not to then perr(err); return 1 end
    local enums; enums, err = one(opts, "enums", "name", { "name", "number" })
    if not enums then perr(err); return 1 end
    if from == "hex" then input, err = from_hex(input)
    elseif from == "base64" then input, err = from_base64(input) end
    if not input then perr(err); return 1 end
    local defaults = opts.defaults ~= nil
    local msg; msg, err = pool:decode(type_name, input, { enums = enums, defaults = defaults and to == "lua" })
    if not msg then perr(err); return 1 end
    if to == "lua" then
      io.stdout:write(to_lua(msg, ""), "\n")
    else
      local text; text, err = pool:json_encode(type_name, msg, {
        emit_defaults = defaults, proto_names = opts.proto_names ~= nil, enums = enums })
      if not text then perr(err); return 1 end
      io.stdout:write(text, "\n")
    end
  end
  return 0
end

local COMMANDS = {
  ["descriptor-set"] = cli.descriptor_set,
  encode = function(args) return codec_command(args, "encode") end,
  decode = function(args) return codec_command(args, "decode") end,
}

function cli.main(argv)
  local args = {}
  for i = 1, #(argv or {}) do args[i] = argv[i] end
  local cmd = table.remove(args, 1)
  if cmd == nil or cmd == "--help" or cmd == "-h" then
    io.stdout:write(USAGE)
    return cmd and 0 or 1
  end
  if cmd == "help" then
    local topic = args[1]
    if topic and HELP[topic] then io.stdout:write(HELP[topic]); return 0 end
    if topic then perr("Unknown command: ", topic); return 1 end
    io.stdout:write(USAGE)
    return 0
  end
  local fn = COMMANDS[cmd]
  if not fn then
    perr("Unknown command: ", cmd, ". Run 'lgrpc --help'.")
    return 1
  end
  local ok, status = xpcall(fn, debug.traceback, args)
  if not ok then
    perr("lgrpc: internal error: ", tostring(status))
    return 70
  end
  return status
end

return cli

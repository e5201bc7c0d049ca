-- lgrpc.proto.grammar: the .proto language (proto2 and proto3, as protoc 3.21 accepts it) as one
-- LPeg grammar. Owns lexing and syntax: one rule per production of the protobuf language spec,
-- an explicit skip rule between tokens, captures that build the parse tree during the match, and
-- a byte position on every node for error messages. It never resolves names or checks meaning
-- (that is lgrpc.proto.compiler) and never reads files (lgrpc.proto.loader).
local lpeg = require "lpeg"
local numbers = require "lgrpc.proto.numbers"

local P, R, S, V = lpeg.P, lpeg.R, lpeg.S, lpeg.V
local C, Cc, Cp, Ct, Cg, Cmt, Cs, Cb = lpeg.C, lpeg.Cc, lpeg.Cp, lpeg.Ct, lpeg.Cg, lpeg.Cmt, lpeg.Cs, lpeg.Cb

local M = {}

-- protoc 3.21 accepts 31 nested messages (groups included) and refuses the 32nd, without a
-- line number in its message.
M.max_depth = 31
-- Aggregate (text-format) option values: protoc's text parser stops at 100 levels.
M.max_aggregate_depth = 100

-- Deeply nested input needs call entries on LPeg's own (heap) stack; the depth checks below
-- stop well before this.
lpeg.setmaxstack(10000)

---------------------------------------------------------------------------------------------
-- Positions: byte offset -> line, column as protoc counts them (1-based; a tab advances the
-- column to the next multiple of 8).
function M.position(src, pos)
  local line, line_start = 1, 1
  local i = 1
  while true do
    local nl = src:find("\n", i, true)
    if not nl or nl >= pos then break end
    line = line + 1
    line_start = nl + 1
    i = nl + 1
  end
  local col = 0
  for k = line_start, math.min(pos, #src + 1) - 1 do
    if src:byte(k) == 9 then col = col + 8 - col % 8 else col = col + 1 end
  end
  return line, col + 1
end

-- A syntax error raised inside the match; parse() turns it into "name:line:col: msg".
local function raise(pos, msg)
  error({ lgrpc_syntax = true, pos = pos, msg = msg }, 0)
end

---------------------------------------------------------------------------------------------
-- Lexical elements
local digit, hexdigit, octdigit = R"09", R("09", "af", "AF"), R"07"
local letter = R("az", "AZ") + P"_"
local idchar = letter + digit

local newline = P"\n"
-- a NUL byte ends protoc's text wherever it stands
local nul = Cmt(Cp() * P"\0", function(_, _, p) raise(p, "Invalid control characters encountered in text.") end)
local line_comment = P"//" * (1 - S"\n\0") ^ 0 * nul ^ -1
local block_comment = P"/*" * (1 - P"*/" - P"\0" - P"/*") ^ 0 *
  (P"*/" + nul + Cmt(Cp() * P"/*", function(_, _, p)
    raise(p + 1, '"/*" inside block comment.  Block comments cannot be nested.')
  end) + Cmt(Cp(), function(_, _, p) raise(p, "End-of-file inside block comment.") end))
local whitespace = S" \t\r\n\v\f"
local skip = (whitespace ^ 1 + line_comment + block_comment) ^ 0

-- raising alternative: the last resort after a committed choice, as protoc reports it
local function fail(msg)
  return Cmt(Cp(), function(_, _, p) raise(p, type(msg) == "function" and msg() or msg) end)
end
local function expect(patt, msg, ctx)
  -- at end of input inside a block protoc names the block instead
  if ctx then
    return patt + Cmt(Cp(), function(s, _, p)
      if p > #s then raise(p, "Reached end of input in " .. ctx .. " definition (missing '}').") end
      raise(p, type(msg) == "function" and msg() or msg)
    end)
  end
  return patt + fail(msg)
end

local function sym(s) return P(s) * skip end
local function kw(w) return P(w) * -idchar * skip end

local ident = C(letter * idchar ^ 0) * skip
local identp = Cp() * ident -- position, name

-- numbers, as protoc's tokenizer reads them (text kept; the compiler converts)
local exponent = S"eE" * S"+-" ^ -1 * (digit ^ 1 +
  Cmt(Cp(), function(_, _, p) raise(p, '"e" must be followed by exponent.') end))
local number_end = -idchar +
  S"eE" * S"+-" ^ -1 * -digit * Cmt(Cp(), function(_, _, p) raise(p, '"e" must be followed by exponent.') end) +
  Cmt(Cp(), function(_, _, p) raise(p, "Need space between number and identifier.") end)
local float_lit = (digit ^ 1 * P"." * digit ^ 0 * exponent ^ -1 + P"." * digit ^ 1 * exponent ^ -1 +
  digit ^ 1 * exponent) * number_end
local hex_lit = P"0" * S"xX" * hexdigit ^ 1
local oct_lit = P"0" * octdigit ^ 1
local dec_lit = R"19" * digit ^ 0 + P"0"
-- tokenizer errors protoc reports inside a number
local bad_hex = P"0" * S"xX" * Cmt(Cp(), function(_, _, p) raise(p, '"0x" must be followed by hex digits.') end)
local bad_octal = P"0" * octdigit ^ 0 * Cmt(Cp() * R"89", function(_, _, p)
  raise(p, "Numbers starting with leading zero must be in octal.")
end)
local int_lit = (hex_lit + bad_hex + #(P"0" * octdigit ^ 0 * R"89") * bad_octal + oct_lit + dec_lit) * -P"." * number_end

-- strings: every escape protoc's tokenizer knows, decoded to bytes here
local simple_escapes = {
  a = "\a", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", v = "\v",
  ["\\"] = "\\", ["?"] = "?", ["'"] = "'", ['"'] = '"',
}
local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end
-- each alternative is one capture spanning the backslash too, so that Cs replaces the whole
-- escape with its bytes
local bs = P"\\"
local escape =
  bs * C(S"abfnrtv\\?'\"") / simple_escapes +
  bs * C(octdigit * octdigit ^ -2) / function(o) return string.char(tonumber(o, 8) % 256) end +
  bs * S"xX" * C(hexdigit * hexdigit ^ -1) / function(h) return string.char(tonumber(h, 16)) end +
  bs * P"u" * C(hexdigit * hexdigit * hexdigit * hexdigit) / function(h) return utf8_char(tonumber(h, 16)) end +
  bs * P"U" * C(P"00" * hexdigit * hexdigit * hexdigit * hexdigit * hexdigit * hexdigit) /
    function(h) return utf8_char(tonumber(h, 16)) end +
  bs * Cmt(Cp(), function(_, _, p) raise(p, "Invalid escape sequence in string literal.") end)
local function quoted(q)
  local plain = (1 - S(q .. "\\\n\0")) ^ 1
  return P(q) * Cs((plain + escape) ^ 0) *
    (P(q) + Cmt(Cp(), function(s, _, p)
      if s:sub(p, p) == "\n" then raise(p, "String literals cannot cross line boundaries.") end
      raise(p, "Unexpected end of string.")
    end))
end
local string_piece = (quoted('"') + quoted("'")) * skip
-- adjacent literals concatenate ("a" "b" == "ab"); usually there is one piece
local function concat_pieces(a, b, ...)
  if not b then return a end
  return table.concat({ a, b, ... })
end
local strlit = string_piece ^ 1 / concat_pieces

---------------------------------------------------------------------------------------------
-- Depth accounting for nested blocks (messages and aggregates); reset by parse().
local current_type      -- the type of the field whose options are being read
local default_context   -- reading the value of [default = ...]
local default_expected  -- message for a missing default value, by field type (set below)
local depth, agg_depth = 0, 0
local syntax_seen = "proto2"
local function field_expected()
  if syntax_seen == "proto3" then return "Expected type name." end
  return 'Expected "required", "optional", or "repeated".'
end
-- protoc prints this one without a position; ours names the message keyword that crossed the limit
local function enter_message(_, i, start)
  depth = depth + 1
  if depth > M.max_depth then
    raise(start, "Reached maximum recursion limit for nested messages.")
  end
  return true
end
local function leave_message(_, i) depth = depth - 1; return true end
local function enter_agg(_, i)
  agg_depth = agg_depth + 1
  if agg_depth > M.max_aggregate_depth then raise(i, "Message is too deep (nesting limit of aggregate option values).") end
  return true
end
local function leave_agg() agg_depth = agg_depth - 1; return true end

---------------------------------------------------------------------------------------------
-- Tree helpers
local function node(tag, patt) return Ct(Cg(Cc(tag), "tag") * Cg(Cp(), "pos") * patt) end
local function field(patt, name) return Cg(patt, name) end

-- "a . b . c" as protoc reads it (whitespace allowed around dots) -> "a.b.c"
local function dotted(a, b, ...)
  if not b then return a end
  return table.concat({ a, b, ... }, ".")
end
local full_ident = ident * (sym"." * expect(ident, "Expected identifier.")) ^ 0 / dotted
local function leading_dot(name) return "." .. name end
-- type references may start with a dot (fully qualified)
local message_or_enum_type = P"." * skip * full_ident / leading_dot + full_ident

local scalar_keyword = C(P"double" + P"float" + P"int32" + P"int64" + P"uint32" + P"uint64" + P"sint32" +
  P"sint64" + P"fixed32" + P"fixed64" + P"sfixed32" + P"sfixed64" + P"bool" + P"string" + P"bytes") * -idchar * skip
local field_type = scalar_keyword + message_or_enum_type
-- extendees and method types: protoc refuses a scalar keyword there
local user_type = #scalar_keyword * fail("Expected message type.") + message_or_enum_type
local scalar_type = {}
for _, t in ipairs{ "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
  "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes" } do scalar_type[t] = true end
M.scalar_types = scalar_type

-- A top-level statement's captures are turned into its node as soon as it has matched, and the
-- node goes straight into the file's body, so LPeg's capture list holds one statement at a time
-- rather than the whole file (it grows by doubling, and the copies are garbage), and no value
-- waits on the Lua stack for the end of the match.
local file_body, syntax_node -- of the file being parsed; set by parse()
local function keep_statement(_, _, node) file_body[#file_body + 1] = node; return true end
local function keep_syntax(_, _, node) syntax_node = node; return true end

-- the rules, named as the language spec names them
local G = { "proto" }

G.proto = skip * Cmt(V"syntax", keep_syntax) ^ -1 *
  (Cmt(V"import" + V"package" + V"option" + V"topLevelDef", keep_statement) + V"emptyStatement") ^ 0 *
  (-P(1) + V"topLevelError")

G.topLevelError = Cmt(Cp(), function(s, _, p)
  if s:find("^edition[%s=]", p) then
    raise(p, 'Expected top-level statement (e.g. "message"). Editions ("edition = ...") are not ' ..
      'supported: protoc 3.21 knows only syntax = "proto2" and "proto3".')
  end
  raise(p, 'Expected top-level statement (e.g. "message").')
end)

G.syntax = node("syntax", kw"syntax" * expect(sym"=", 'Expected "=".') *
  field(Cp(), "value_pos") * field(expect(Cmt(Cp() * strlit, function(_, _, p, v)
    if v ~= "proto2" and v ~= "proto3" then
      raise(p, 'Unrecognized syntax identifier "' .. v .. '".  This parser only recognizes "proto2" and "proto3".')
    end
    syntax_seen = v
    return true, v
  end), "Expected syntax identifier."), "value") *
  expect(sym";", 'Expected ";".'))

G.emptyStatement = sym";"

G.import = node("import", kw"import" *
  (field(kw"public" * Cc"public", "kind") + field(kw"weak" * Cc"weak", "kind")) ^ -1 *
  field(Cp(), "path_pos") * field(expect(strlit, "Expected a string naming the file to import."), "path") *
  expect(sym";", 'Expected ";".'))

local package_seen = false
local function one_package(_, _, p)
  if package_seen then raise(p, "Multiple package definitions.") end
  package_seen = true
  return true
end
G.package = node("package", Cmt(Cp() * kw"package", one_package) * field(Cp(), "name_pos") *
  field(expect(full_ident, "Expected identifier."), "name") * expect(sym";", 'Expected ";".'))

-- option name: (ext.name).field.(other) ...
-- Frequent nodes are built by one function capture each (a table constructor of known size)
-- rather than Ct over named groups, which grows the table field by field.
local function option_ext_part(pos, name) return { pos = pos, ext = true, name = name } end
local function option_part(pos, name) return { pos = pos, name = name } end
G.optionNamePart = Cp() * sym"(" * (
    -- "()" passes protoc's parser and fails when interpreted, without a position
    #P")" * Cmt(Cp(), function(_, _, p) raise(p - 1, "Uninterpreted option is missing name or value.") end) +
    P"." * skip * expect(full_ident, "Expected identifier.") / leading_dot +
    expect(full_ident, 'Expected ")".')) *
    expect(sym")", 'Expected ")".') / option_ext_part +
  Cp() * ident / option_part
G.optionName = Ct(V"optionNamePart" * (sym"." * expect(V"optionNamePart", "Expected identifier.")) ^ 0)

local function option_value_expected()
  return default_context and default_expected[current_type] or "Expected option value."
end
-- kind, text
local number_or_ident = Cc"float" * C(float_lit) * skip + Cc"int" * C(int_lit) * skip + Cc"ident" * ident
G.constant =
  Cp() * strlit / function(pos, value) return { pos = pos, kind = "string", value = value } end +
  Cp() * sym"-" * Cp() * (number_or_ident + fail(option_value_expected)) /
    function(pos, text_pos, kind, text) return { pos = pos, neg = true, text_pos = text_pos, kind = kind, text = text } end +
  Cp() * Cp() * number_or_ident /
    function(pos, text_pos, kind, text) return { pos = pos, text_pos = text_pos, kind = kind, text = text } end +
  Cp() * V"aggregate" / function(pos, value) return { pos = pos, kind = "aggregate", value = value } end

G.option = Cp() * kw"option" * expect(V"optionName", "Expected identifier.") *
  expect(sym"=", 'Expected "=".') * expect(V"constant", "Expected option value.") *
  expect(sym";", 'Expected ";".') / function(pos, name, value) return { tag = "option", pos = pos, name = name, value = value } end

-- [a = 1, (b).c = "x"]
default_expected = {
  double = "Expected number.", float = "Expected number.", bool = 'Expected "true" or "false".',
  string = "Expected string for field default value.", bytes = "Expected string.",
}
for _, t in ipairs{ "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64",
  "sfixed32", "sfixed64" } do default_expected[t] = "Expected integer for field default value." end
-- protoc's parser checks a default value against the field's scalar type as it reads it
local int_max = {
  int32 = numbers.INT32_MAX, sint32 = numbers.INT32_MAX, sfixed32 = numbers.INT32_MAX,
  int64 = numbers.INT64_MAX, sint64 = numbers.INT64_MAX, sfixed64 = numbers.INT64_MAX,
  uint32 = numbers.UINT32_MAX, fixed32 = numbers.UINT32_MAX, uint64 = numbers.UINT64_MAX, fixed64 = numbers.UINT64_MAX,
}
local unsigned = { uint32 = true, fixed32 = true, uint64 = true, fixed64 = true }
local function check_default(_, _, v)
  local t = current_type
  local at = v.text_pos or v.pos
  if int_max[t] then
    if unsigned[t] and v.neg then raise(at, "Unsigned field can't have negative default value.") end
    if v.kind ~= "int" then raise(at, "Expected integer for field default value.") end
    local max = int_max[t]
    if v.neg then max = max == numbers.INT32_MAX and numbers.INT32_MIN_ABS or numbers.INT64_MIN_ABS end
    local n = numbers.parse_u64(v.text)
    if not n or numbers.cmp(n, max) > 0 then raise(at, "Integer out of range.") end
  elseif t == "float" or t == "double" then
    if not (v.kind == "int" or v.kind == "float" or (v.kind == "ident" and (v.text == "inf" or v.text == "nan"))) then
      raise(at, "Expected number.")
    end
  elseif t == "bool" then
    if v.kind ~= "ident" or v.neg or (v.text ~= "true" and v.text ~= "false") then
      raise(v.pos, 'Expected "true" or "false".')
    end
  elseif t == "string" then
    if v.kind ~= "string" then raise(v.pos, "Expected string for field default value.") end
  elseif t == "bytes" then
    if v.kind ~= "string" then raise(v.pos, "Expected string.") end
  elseif t == "group" then
    raise(v.pos, "Messages can't have default values.")
  elseif t == "map" then
    return true, v -- the compiler refuses defaults on repeated fields
  elseif v.neg then
    -- a named type: protoc's parser takes one token as the value, here the "-" alone
    raise(v.text_pos, 'Expected "]".')
  end
  return true, v
end
local function enter_default() default_context = true; return true end
local function leave_default() default_context = false; return true end
-- an option name that is "default" alone
local default_name = #(P"default" * -idchar * skip * -P".")
local function option_node(pos, name, value) return { pos = pos, name = name, value = value } end
-- [default = x] is checked against the field's type as it is read; any other option needs no
-- match-time work.
G.fieldOption = Cp() * (
  default_name * Cmt(Cp(), enter_default) * V"optionName" * expect(sym"=", 'Expected "=".') *
    expect(Cmt(V"constant", check_default), option_value_expected) * Cmt(Cp(), leave_default) +
  expect(V"optionName", "Expected identifier.") * expect(sym"=", 'Expected "=".') *
    expect(V"constant", option_value_expected)) / option_node
G.fieldOptions = sym"[" * Ct(V"fieldOption" * (sym"," * V"fieldOption") ^ 0) *
  expect(sym"]", 'Expected "]".')
-- enum values and extension ranges: "default" is an option name like any other there
G.plainOption = Cp() * expect(V"optionName", "Expected identifier.") * expect(sym"=", 'Expected "=".') *
  expect(V"constant", "Expected option value.") / option_node
G.plainOptions = sym"[" * Ct(V"plainOption" * (sym"," * V"plainOption") ^ 0) *
  expect(sym"]", 'Expected "]".')

G.topLevelDef = V"message" + V"enum" + V"extend" + V"service"

-- field number as text and position
-- protoc's parser takes integers up to INT32_MAX (one more after "-"), else "Integer out of range."
-- the usual number (up to nine decimal digits, no leading zero, followed by no digit, letter or
-- ".") fits and is taken by a plain pattern; anything else goes through the checks
local short_decimal = C(R"19" * digit ^ -8 * -(idchar + P".")) * skip
local function int32_text(neg)
  return short_decimal + Cmt(Cp() * C(int_lit), function(_, _, p, text)
    local v = numbers.parse_u64(text)
    if not v or v[1] ~= 0 or v[2] > 0x7fffffff + (neg and 1 or 0) then raise(p, "Integer out of range.") end
    return true, text
  end) * skip
end
local field_number = field(Cp(), "number_pos") * field(expect(int32_text(false), "Expected field number."), "number")

G.label = C(P"required" + P"optional" + P"repeated") * -idchar * skip

-- proto2 needs a label on every field outside oneofs; protoc's parser says so at the type
local function label_required(s, _, p)
  if syntax_seen ~= "proto3" then
    -- "map" not followed by "<" is a type name, which protoc has consumed by then
    if s:sub(p, p + 2) == "map" and not s:sub(p + 3, p + 3):match("[%w_]") then p = lpeg.match(skip, s, p + 3) end
    raise(p, 'Expected "required", "optional", or "repeated".')
  end
  return true
end
local field_rest = field(Cp(), "name_pos") * field(expect(ident, "Expected field name."), "name") *
  (sym"=" + fail("Missing field number.")) * field_number *
  field(V"fieldOptions", "options") ^ -1 * expect(sym";", 'Expected ";".')
-- fields, the most frequent node: positional captures, one constructor
local function field_node(pos, label, type_pos, type, name_pos, name, number_pos, number, options)
  return { tag = "field", pos = pos, label = label or nil, type_pos = type_pos, type = type,
    name_pos = name_pos, name = name, number_pos = number_pos, number = number, options = options or nil }
end
-- name_pos, name, number_pos, number, options or false
-- A field's type is kept as a named group and fetched back: as a value for the node, and at match
-- time for the checks of [default = ...] only when options follow (no match-time function runs
-- for the usual field, and none hands a value back to LPeg).
local field_type_kept = Cg(field_type, "field_type") * Cb"field_type"
local function note_field_type(_, _, t) current_type = t; return true end
local noted_options = #P"[" * Cmt(Cb"field_type", note_field_type) * V"fieldOptions"
local field_rest_values = Cp() * expect(ident, "Expected field name.") *
  (sym"=" + fail("Missing field number.")) * Cp() * expect(int32_text(false), "Expected field number.") *
  (noted_options + Cc(false)) * expect(sym";", 'Expected ";".')
local labelled_type = V"label" * Cp() * expect(field_type_kept, "Expected type name.")
-- without a label: proto2 wants one, which protoc's parser reports at the type once it has read it
local unlabelled_type = Cc(false) * Cg(Cp(), "type_pos") * Cb"type_pos" * Cg(field_type, "field_type") *
  Cmt(Cb"type_pos", label_required) * Cb"field_type"
G.field = Cp() * (labelled_type + unlabelled_type) * field_rest_values / field_node
-- in a oneof, labels are an error the compiler reports
G.oneofField = Cp() * (labelled_type + Cc(false) * Cp() * field_type_kept) * field_rest_values / field_node

-- protoc checks a group's proto3-ness and capital letter after its number and options
local group_kw_pos, group_name_pos, group_name
local group_rest = Cmt(Cp() * kw"group", function(s, i, p)
    group_kw_pos, current_type = p, "group"
    return enter_message(s, i, p)
  end) * field(Cp(), "name_pos") *
  field(expect(Cmt(Cp() * ident, function(_, _, p, name)
    group_name_pos, group_name = p, name
    return true, name
  end), "Expected field name."), "name") *
  (sym"=" + fail("Missing field number.")) * field_number *
  field(V"fieldOptions", "options") ^ -1 *
  Cmt(Cp(), function()
    if not group_name:match("^[A-Z]") then raise(group_name_pos, "Group names must start with a capital letter.") end
    if syntax_seen == "proto3" then raise(group_kw_pos, "Groups are not supported in proto3 syntax.") end
    return true
  end) *
  expect(sym"{", "Missing group body.") * field(V"messageBody", "body") *
  Cmt(Cp(), leave_message)
G.group = node("group", field(V"label", "label") * field(Cp(), "type_pos") * group_rest +
  field(Cp(), "type_pos") * Cmt(Cp() * #kw"group", label_required) * group_rest)
G.oneofGroup = node("group", field(V"label", "label") ^ -1 * field(Cp(), "type_pos") * group_rest)

-- map<K, V> name = N [options]; after the optional label
local map_body = P"map" * skip * field(Cp(), "lt_pos") * sym"<" *
  Cmt(Cp(), function() current_type = "map"; return true end) *
  field(Cp(), "key_pos") * field(expect(field_type, "Expected type name."), "key_type") *
  expect(sym",", 'Expected ",".') *
  field(Cp(), "type_pos") * field(expect(field_type, "Expected type name."), "type") *
  expect(sym">", 'Expected ">".') *
  field(Cp(), "name_pos") * field(expect(ident, "Expected field name."), "name") *
  (sym"=" + fail("Missing field number.")) * field_number *
  field(V"fieldOptions", "options") ^ -1 * expect(sym";", 'Expected ";".')
G.mapField = node("map", field(V"label", "label") ^ -1 * map_body)

-- The usual statement of a message body starts with a label: read the label once, then the
-- map, group or field it belongs to (once a label has matched, one of the three matches or
-- raises, as the unlabelled rules below would after reading the label again).
local map_tail = Ct(map_body)
local group_tail = #kw"group" * Ct(field(Cp(), "type_pos") * group_rest)
-- pos, label, then the map's or group's node or the field's type_pos .. options
local function labelled_node(pos, label, a, type_name, name_pos, name, number_pos, number, options)
  if type_name then
    return { tag = "field", pos = pos, label = label, type_pos = a, type = type_name, name_pos = name_pos,
      name = name, number_pos = number_pos, number = number, options = options or nil }
  end
  a.tag = a.lt_pos and "map" or "group"
  a.pos, a.label = pos, label
  return a
end
G.labelledField = Cp() * V"label" * (map_tail + group_tail +
  Cp() * expect(field_type_kept, "Expected type name.") * field_rest_values) / labelled_node

G.oneof = node("oneof", kw"oneof" * field(Cp(), "name_pos") * field(expect(ident, "Expected oneof name."), "name") *
  expect(sym"{", 'Expected "{".') *
  -- at least one statement, and no empty ones (protoc parses a field before looking for "}")
  field(expect(Ct((V"option" + V"oneofGroup" + V"mapField" + V"oneofField") ^ 1), "Expected type name.", "oneof"), "body") *
  field(Cp(), "close_pos") * expect(sym"}", 'Expected type name.', "oneof"))

-- ranges: 1, 5 to 10, 100 to max
local signed_int = C(P"-") * skip * expect(int32_text(true), "Expected integer.") / function(s, n) return s .. n end +
  int32_text(false)
local range_end = field(Cp(), "to_pos") * (field(C(P"max") * -idchar * skip, "to") +
  field(signed_int, "to"))
local range_start = field(Cp(), "from_pos") * field(signed_int, "from")
G.range = Ct(expect(range_start, "Expected field number range.") * (kw"to" * expect(range_end, "Expected integer.")) ^ -1)
G.ranges = Ct(V"range" * (sym"," * V"range") ^ 0)
-- the first item of a reserved statement decides between names and numbers
local function reserved_rule(first_msg)
  return node("reserved", kw"reserved" * (
    field(Ct(Ct(field(Cp(), "pos") * field(strlit, "name")) * (sym"," * expect(Ct(field(Cp(), "pos") *
      field(strlit, "name")), "Expected string.")) ^ 0), "names") +
    #range_start * field(Ct(V"range" * (sym"," * V"range") ^ 0), "ranges") + fail(first_msg)) *
    expect(sym";", 'Expected ";".'))
end
G.reserved = reserved_rule("Expected field name or number range.")
G.enumReserved = reserved_rule("Expected enum value or number range.")

G.extensions = node("extensions", kw"extensions" * field(V"ranges", "ranges") *
  field(V"plainOptions", "options") ^ -1 * expect(sym";", 'Expected ";".'))


G.messageElement = V"labelledField" + V"option" + V"message" + V"enum" + V"extend" + V"extensions" + V"reserved" +
  V"oneof" + V"emptyStatement" + V"mapField" + V"group" + V"field"
G.messageBody = Ct(V"messageElement" ^ 0) * expect(sym"}", field_expected, "message")

G.message = Cp() * Cmt(Cp() * kw"message", enter_message) * Cp() *
  expect(ident, "Expected message name.") *
  expect(sym"{", 'Expected "{".') * V"messageBody" *
  Cmt(Cp(), leave_message) / function(pos, name_pos, name, body)
    return { tag = "message", pos = pos, name_pos = name_pos, name = name, body = body }
  end

local function negative(n) return "-" .. n end
G.enumValue = Cp() * ident *
  expect(sym"=", "Missing numeric value for enum constant.") * Cp() *
  (P"-" * skip * expect(int32_text(true), "Expected integer.") / negative +
    expect(int32_text(false), "Expected integer.")) *
  (V"plainOptions" + Cc(false)) * expect(sym";", 'Expected ";".') /
  function(pos, name, number_pos, number, options)
    return { tag = "value", pos = pos, name_pos = pos, name = name, number_pos = number_pos, number = number,
      options = options or nil }
  end
G.enum = Cp() * kw"enum" * Cp() * expect(ident, "Expected enum name.") *
  expect(sym"{", 'Expected "{".') *
  Ct((V"option" + V"enumReserved" + V"emptyStatement" + V"enumValue") ^ 0) *
  expect(sym"}", "Expected enum constant name.", "enum") / function(pos, name_pos, name, body)
    return { tag = "enum", pos = pos, name_pos = name_pos, name = name, body = body }
  end

G.extend = node("extend", kw"extend" * field(Cp(), "extendee_pos") *
  field(expect(user_type, "Expected type name."), "extendee") *
  expect(sym"{", 'Expected "{".') *
  -- an extend block holds at least one field, and no empty statements
  field(expect(Ct((V"mapField" + V"group" + V"field") ^ 1), field_expected, "extend"), "body") *
  expect(sym"}", field_expected, "extend"))

G.rpc = node("rpc", kw"rpc" * field(Cp(), "name_pos") * field(expect(ident, "Expected method name."), "name") *
  expect(sym"(", 'Expected "(".') * field(kw"stream" * Cc(true), "client_streaming") ^ -1 *
  field(Cp(), "input_pos") * field(expect(user_type, "Expected type name."), "input") *
  expect(sym")", 'Expected ")".') * expect(kw"returns", 'Expected "returns".') *
  expect(sym"(", 'Expected "(".') * field(kw"stream" * Cc(true), "server_streaming") ^ -1 *
  field(Cp(), "output_pos") * field(expect(user_type, "Expected type name."), "output") *
  expect(sym")", 'Expected ")".') *
  (sym"{" * field(Ct((V"option" + V"emptyStatement") ^ 0), "body") *
    expect(sym"}", 'Expected "option".', "method") + expect(sym";", 'Expected ";".')))
G.service = node("service", kw"service" * field(Cp(), "name_pos") * field(expect(ident, "Expected service name."), "name") *
  expect(sym"{", 'Expected "{".') *
  field(Ct((V"option" + V"rpc" + V"emptyStatement") ^ 0), "body") *
  expect(sym"}", 'Expected "rpc".', "service"))

-- Aggregate option values: as protoc's parser does, only the braces are matched here; the
-- tokens between them are kept (kind k, text t, string value v) and read as protobuf text
-- format by lgrpc.proto.textformat once the option's type is known.
local function tok(kind, patt) return Ct(Cg(Cc(kind), "k") * Cg(patt, "t")) * skip end
local agg_string = Cmt(Cp() * (quoted('"') + quoted("'")) * Cp(), function(s, _, a, v, b)
  return true, { k = "string", t = s:sub(a, b - 1), v = v }
end) * skip
G.aggToken = agg_string + tok("float", C(float_lit)) + tok("int", C(int_lit)) +
  tok("ident", C(letter * idchar ^ 0)) + tok("sym", C(1 - S"{}"))
G.aggInner = (V"aggToken" + tok("sym", C"{") * Cmt(Cp(), enter_agg) * V"aggInner" *
  (tok("sym", C"}") + fail("Unexpected end of stream while parsing aggregate value.")) * Cmt(Cp(), leave_agg)) ^ 0
G.aggregate = sym"{" * Ct(V"aggInner") *
  (sym"}" + fail("Unexpected end of stream while parsing aggregate value."))

local proto_grammar = P(G)

-- The tokenizer alone, run only when the grammar fails: protoc reads one token ahead of its
-- parser, so a lexical error in a token up to the one the parser stopped at is reported first.
local lex_token_start
local function mark(_, _, p) lex_token_start = p; return true end
local symbol_char = R"\33\126" - (letter + digit + S"\"'")
local control = Cmt(Cp() * (R"\0\8" + R"\14\31" + P"\127"), function(_, _, p)
  raise(p, "Invalid control characters encountered in text.")
end)
local non_ascii = Cmt(Cp() * C(R"\128\255"), function(_, _, p, c)
  raise(p, "Interpreting non ascii codepoint " .. c:byte() .. ".")
end)
local lex_skip = (whitespace + Cmt(Cp(), mark) * (line_comment + block_comment)) ^ 0
local lexer = lex_skip * (Cmt(Cp(), mark) * (quoted('"') + quoted("'") + float_lit + int_lit +
  letter * idchar ^ 0 + symbol_char + control + non_ascii) * lex_skip) ^ 0

---------------------------------------------------------------------------------------------
-- parse(source, name) -> tree | nil, "name:line:col: message"
function M.parse(src, name)
  name = name or "input.proto"
  if type(src) ~= "string" then return nil, name .. ": source is not a string" end
  depth, agg_depth, syntax_seen, package_seen = 0, 0, "proto2", false
  current_type, default_context = nil, false
  file_body, syntax_node = {}, nil
  local ok, tree = pcall(lpeg.match, proto_grammar, src)
  if ok then
    if not tree then return nil, name .. ":1:1: Parse error." end
    tree = { syntax_stmt = syntax_node, body = file_body, source = src, name = name }
    file_body, syntax_node = nil, nil
    return tree
  end
  file_body, syntax_node = nil, nil
  if type(tree) == "table" and tree.lgrpc_syntax then
    if not tree.pos then return nil, string.format("%s: %s", name, tree.msg) end
    lex_token_start = nil
    local lok, lerr = pcall(lpeg.match, lexer, src)
    if not lok and type(lerr) == "table" and lerr.lgrpc_syntax and lex_token_start and
      lex_token_start <= tree.pos then
      tree = lerr
    end
    local line, col = M.position(src, tree.pos)
    return nil, string.format("%s:%d:%d: %s", name, line, col, tree.msg)
  end
  local msg = tostring(tree)
  if msg:find("stack overflow") or msg:find("too complex") or msg:find("C stack") then
    return nil, name .. ":1:1: Input is nested too deeply to parse."
  end
  return nil, name .. ":1:1: Parse error: " .. msg
end

return M

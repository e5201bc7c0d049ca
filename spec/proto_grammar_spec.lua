-- lgrpc.proto.grammar: what a user sees from the parser: trees for valid files, protoc's
-- "file:line:col: message" for invalid ones (positions and texts taken from protoc 3.21).
local grammar = require "lgrpc.proto.grammar"

local function system_protos()
  local list = {}
  local p = io.popen("find /usr/include/google/protobuf /usr/share/grpc-proto -name '*.proto' | sort")
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("lgrpc.proto.grammar", function()
  it("parses every .proto file of the system include dirs", function()
    local files = system_protos()
    assert.is_true(#files > 20)
    for _, path in ipairs(files) do
      local tree, err = grammar.parse(read(path), path)
      assert.is_nil(err)
      assert.is_table(tree)
    end
  end)

  it("builds a tree with names, numbers and positions", function()
    local src = 'syntax = "proto3";\npackage a.b;\nmessage M {\n  map<string, int32> m = 1;\n' ..
      '  optional .a.b.M x = 2 [deprecated = true];\n}\n'
    local tree = assert(grammar.parse(src, "t.proto"))
    assert.equal("proto3", tree.syntax_stmt.value)
    assert.equal("package", tree.body[1].tag)
    assert.equal("a.b", tree.body[1].name)
    local msg = tree.body[2]
    assert.equal("message", msg.tag)
    assert.equal("M", msg.name)
    assert.same({ 3, 9 }, { grammar.position(src, msg.name_pos) })
    local map, fld = msg.body[1], msg.body[2]
    assert.equal("map", map.tag)
    assert.equal("string", map.key_type)
    assert.equal("int32", map.type)
    assert.equal("field", fld.tag)
    assert.equal("optional", fld.label)
    assert.equal(".a.b.M", fld.type)
    assert.equal("2", fld.number)
    assert.equal("deprecated", fld.options[1].name[1].name)
  end)

  it("decodes every string escape and joins adjacent literals", function()
    local src = [[option java_package = "a\tb\n\x41\101\u00e9\U0001F600\\\"\'\?" 'c' "d";]]
    local tree = assert(grammar.parse(src, "s.proto"))
    assert.equal("a\tb\nAA\195\169\240\159\152\128\\\"'?cd", tree.body[1].value.value)
  end)

  it("keeps an aggregate option value as the tokens between its braces, as protoc does", function()
    local src = 'option (o) = { a: 1 b { c: "x\\ty" } // note\n d: [1, -2.5] [p.ext]: E };'
    local tree = assert(grammar.parse(src, "a.proto"))
    local agg = tree.body[1].value
    assert.equal("aggregate", agg.kind)
    local texts, kinds = {}, {}
    for i, t in ipairs(agg.value) do texts[i] = t.t; kinds[i] = t.k end
    assert.same({ "a", ":", "1", "b", "{", "c", ":", '"x\\ty"', "}", "d", ":", "[", "1", ",", "-", "2.5", "]",
      "[", "p", ".", "ext", "]", ":", "E" }, texts)
    assert.equal("string", kinds[8])
    assert.equal("x\ty", agg.value[8].v)
    assert.equal("float", kinds[16])
    local _, err = grammar.parse("option (o) = { a { b: 1 };", "a.proto")
    assert.equal("a.proto:1:27: Unexpected end of stream while parsing aggregate value.", err)
  end)

  -- each case: source, protoc 3.21's message for it
  local cases = {
    { 'syntax = "proto3"; message A { int32 x = 1 }', 'a.proto:1:44: Expected ";".' },
    { 'syntax = "proto3"; message A { int32 = 1; }', "a.proto:1:38: Expected field name." },
    { 'syntax = "proto3"; message A { int32 x 1; }', "a.proto:1:40: Missing field number." },
    { 'syntax = "proto3"; message A { int32 x = ; }', "a.proto:1:42: Expected field number." },
    { 'syntax = "proto3"; message A { int32 x = 1;\n', "a.proto:2:1: Reached end of input in message definition (missing '}')." },
    { 'syntax = "proto3"; foo', 'a.proto:1:20: Expected top-level statement (e.g. "message").' },
    { 'syntax = "proto3"; message { }', "a.proto:1:28: Expected message name." },
    { 'syntax = "proto3"; message A  int32 ', 'a.proto:1:31: Expected "{".' },
    { 'message A { 123 }', 'a.proto:1:13: Expected "required", "optional", or "repeated".' },
    { 'syntax = "proto3"; message A { 123 }', "a.proto:1:32: Expected type name." },
    { 'message A { optional string s = 1 [default = "a\\q"]; }', "a.proto:1:49: Invalid escape sequence in string literal." },
    { 'syntax = "proto3";\nmessage A {\n\tint32\tx = 1\n}\n', 'a.proto:4:1: Expected ";".' },
    -- lexical errors come first when protoc's one-token lookahead has read them
    { 'syntax = "proto3";\n// a \0 b\nmessage A {}\n', "a.proto:2:6: Invalid control characters encountered in text." },
    { 'syntax = "proto3";\nmessage A { $ }\n', "a.proto:2:13: Expected type name." },
    { 'syntax = "proto3";\nmessage A { \195\169 }\n', "a.proto:2:13: Interpreting non ascii codepoint 195." },
    { 'syntax = "proto3";\nmessage A { int32 x = 1; } \1\n', "a.proto:2:28: Invalid control characters encountered in text." },
    { 'syntax = "proto3";\nmessage A { string x = 1 [default="a\0b"]; }\n', "a.proto:2:37: Unexpected end of string." },
    { 'syntax = "proto3";\nservice S { rpc F(A\' returns (B); }\n', "a.proto:2:36: String literals cannot cross line boundaries." },
    { 'syntax = "proto3";\nmessage A { oneof o { } }\n', "a.proto:2:23: Expected type name." },
    { 'syntax = "proto2";\nmessage A { group optional int32 x = 1; }\n', 'a.proto:2:13: Expected "required", "optional", or "repeated".' },
    { 'syntax = "proto2";\nmessage A { optional group g = 1 }\n', "a.proto:2:28: Group names must start with a capital letter." },
    { 'syntax = "proto3";\nmessage A { int32 . x = 1; }\n', "a.proto:2:19: Expected field name." },
    { 'syntax = "proto3";\nextend string { int32 x = 1; }\n', "a.proto:2:8: Expected message type." },
    { 'syntax = "proto3";\nenum E { A = -; }\n', "a.proto:2:15: Expected integer." },
    { 'syntax = "proto3";\nmessage A { int32 x = 1f; }\n', "a.proto:2:24: Need space between number and identifier." },
    { 'syntax = "proto3";\nmessage A { int32 x = 0x; }\n', '"0x" must be followed by hex digits.' },
    { 'syntax = "";\n', 'a.proto:1:10: Unrecognized syntax identifier "".  This parser only recognizes "proto2" and "proto3".' },
    { 'package a;\npackage b;\n', "a.proto:2:1: Multiple package definitions." },
    { 'syntax = "proto2";\n/* a /* b */\nmessage M {}\n', 'a.proto:2:7: "/*" inside block comment.  Block comments cannot be nested.' },
  }
  for _, c in ipairs(cases) do
    it("reports protoc's position and text for " .. c[1]:gsub("\n", " "), function()
      local tree, err = grammar.parse(c[1], "a.proto")
      assert.is_nil(tree)
      if c[2]:match("^a%.proto:") then assert.equal(c[2], err) else assert.matches(c[2], err, 1, true) end
    end)
  end

  it("rejects editions on the line of the edition statement", function()
    local tree, err = grammar.parse('\nedition = "2023";\nmessage A {}\n', "e.proto")
    assert.is_nil(tree)
    assert.matches("^e%.proto:2:1: Expected top%-level statement", err)
    assert.matches("[Ee]dition", err)
  end)

  it("counts a tab as advancing to the next multiple of 8", function()
    local _, err = grammar.parse('syntax = "proto3";\nmessage A {\n\t  \tint32 x 1;\n}', "t.proto")
    assert.equal("t.proto:3:25: Missing field number.", err)
  end)

  it("accepts 31 nested messages and refuses 32 as protoc does", function()
    local function nest(n)
      return ("message M {\n"):rep(n) .. ("}\n"):rep(n)
    end
    assert.is_table(grammar.parse(nest(31), "d.proto"))
    local tree, err = grammar.parse(nest(32), "d.proto")
    assert.is_nil(tree)
    -- protoc names no position; lgrpc names the 32nd "message" keyword
    assert.equal("d.proto:32:1: Reached maximum recursion limit for nested messages.", err)
  end)

  it("survives hostile nesting without a traceback", function()
    local _, err = grammar.parse("option (x) = " .. ("{a"):rep(100000), "h.proto")
    assert.is_string(err)
    assert.matches("^h%.proto:", err)
    _, err = grammar.parse(("message M {"):rep(100000), "h.proto")
    assert.matches("^h%.proto", err)
    _, err = grammar.parse("/* never closed", "h.proto")
    assert.equal("h.proto:1:16: End-of-file inside block comment.", err)
  end)

  it("returns an error for a non-string source", function()
    local tree, err = grammar.parse(nil, "n.proto")
    assert.is_nil(tree)
    assert.is_string(err)
  end)
end)

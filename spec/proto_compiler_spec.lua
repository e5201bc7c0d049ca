-- lgrpc.proto.compiler: descriptor tables field for field as protoc 3.21 writes them (protoc run
-- live, its FileDescriptorSet decoded by python into the same table shape), and protoc's
-- "file:line:col: message" for invalid input.
local grammar = require "lgrpc.proto.grammar"
local compiler = require "lgrpc.proto.compiler"
local oracle = require "proto_oracle"

local FIXTURES = (os.getenv("LGRPC_TOP") or ".") .. "/spec/fixtures/proto"

-- compiles one in-memory file (imports from /usr/include only)
local function compile(src, name)
  name = name or "t.proto"
  local deps = assert(oracle.compile_files({}, { "google/protobuf/descriptor.proto", "google/protobuf/any.proto" }))
  local tree, err = grammar.parse(src, name)
  if not tree then return nil, err end
  return compiler.compile(tree, { name = name, descriptor = deps["google/protobuf/descriptor.proto"],
    file = function(n) return deps[n] end })
end

-- writes src to a temp dir as t.proto, compiles it with lgrpc and protoc, compares
local function same_as_protoc(src)
  local dir = oracle.tmpdir()
  oracle.write(dir .. "/t.proto", src)
  local d = oracle.compare_with_protoc({ dir }, { "t.proto" })
  oracle.rmdir(dir)
  return d
end

describe("lgrpc.proto.compiler", function()
  describe("matches protoc's descriptors", function()
    it("for every file of google/protobuf and grpc-proto", function()
      local p = io.popen("cd /usr/include && ls google/protobuf/*.proto google/protobuf/compiler/*.proto")
      for name in p:lines() do
        assert.is_nil(oracle.compare_with_protoc({ "/usr/include" }, { name }))
      end
      p:close()
      p = io.popen("cd /usr/share/grpc-proto && find grpc -name '*.proto' | sort")
      local count = 0
      for name in p:lines() do
        local src = oracle.read("/usr/share/grpc-proto/" .. name)
        -- a few import files grpc-proto does not ship (googleapis, envoy): protoc fails on them too
        local missing = false
        for imp in src:gmatch('import%s+"([^"]+)"') do
          if not oracle.read("/usr/share/grpc-proto/" .. imp) and not oracle.read("/usr/include/" .. imp) then
            missing = true
          end
        end
        if not missing then
          assert.is_nil(oracle.compare_with_protoc({ "/usr/share/grpc-proto" }, { name }))
          count = count + 1
        end
      end
      p:close()
      assert.is_true(count >= 20)
    end)

    it("for the fixtures: options everywhere, aggregates, groups, maps, defaults, proto3", function()
      assert.is_nil(oracle.compare_with_protoc({ FIXTURES }, { "rich/opts.proto" }))
      assert.is_nil(oracle.compare_with_protoc({ FIXTURES }, { "rich/use.proto" }))
      assert.is_nil(oracle.compare_with_protoc({ FIXTURES }, { "rich/p3.proto" }))
    end)

    it("for name resolution from inner scopes outward", function()
      assert.is_nil(same_as_protoc([[
syntax = "proto2";
package a.b;
message T { optional int32 v = 1; }
message Outer {
  message T { optional string w = 1; }
  message Mid {
    optional T inner_first = 1;   // Outer.T
    optional b.T via_package = 2; // a.b.T
    optional .a.b.T absolute = 3;
    optional Outer.T qualified = 4;
  }
}
]]))
    end)

    it("for json_name, map entry names and synthetic oneof names", function()
      assert.is_nil(same_as_protoc([[
syntax = "proto3";
message M {
  int32 foo_bar = 1;
  int32 __x__y = 2;
  int32 Caps_Name = 3;
  map<string, M> my_map_field = 4;
  map<int32, bytes> _lead = 5;
  optional int32 opt = 6;
  optional int32 _opt2 = 7;
  int32 X_opt2 = 8;
  oneof real { int32 r = 9; }
  int32 j = 10 [json_name = "JAY"];
}
]]))
    end)

    it("for default values in protoc's canonical text", function()
      assert.is_nil(same_as_protoc([[
syntax = "proto2";
enum E { A = 0; B = 1; }
message M {
  optional double d1 = 1 [default = 1e10];
  optional double d2 = 2 [default = -inf];
  optional double d3 = 3 [default = nan];
  optional double d4 = 4 [default = 1.0];
  optional double d5 = 5 [default = 0x1F];
  optional float f1 = 6 [default = 3.14159];
  optional float f2 = 7 [default = 1e-45];
  optional float f3 = 8 [default = 16777217];
  optional int64 i1 = 9 [default = -9223372036854775808];
  optional uint64 u1 = 10 [default = 18446744073709551615];
  optional int32 i2 = 11 [default = 0x7fffffff];
  optional sint32 i3 = 12 [default = -010];
  optional bytes b1 = 13 [default = "\0\r\n\t\"'\\\x80abc"];
  optional string s1 = 14 [default = "tab\there"];
  optional E e = 15 [default = B];
  optional bool t = 16 [default = false];
}
]]))
    end)

    it("for expanded Any values in aggregates and proto3 optional extensions", function()
      assert.is_nil(same_as_protoc([[
syntax = "proto3";
import "google/protobuf/any.proto";
import "google/protobuf/descriptor.proto";
message P { int32 x = 1; repeated int32 r = 2; string s = 3; bool b = 4; }
extend google.protobuf.FileOptions {
  optional google.protobuf.Any a = 50000;
  optional P p = 50001;
  optional int32 plain = 50002;
}
option (a) = { [type.googleapis.com/P] { x: 5 r: [1, 2] } };
option (p) = { x: 0 s: "" b: false r: [] };
option (plain) = 7;
]]))
    end)

    it("keeps int64 values exact on this interpreter", function()
      local fdp = assert(compile('message M { optional int64 x = 1 [default = 9007199254740993]; }'))
      assert.equal("9007199254740993", fdp.message_type[1].field[1].default_value)
    end)
  end)

  describe("rejects what protoc rejects, at protoc's position", function()
    -- source, protoc 3.21's first line of output for it
    local cases = {
      { 'message A { int32 x = 1; }', 't.proto:1:13: Expected "required", "optional", or "repeated".' },
      { 'syntax = "proto3"; message A { int32 x = 0; }', "t.proto:1:42: Field numbers must be positive integers." },
      { 'syntax = "proto3"; message A { int32 x = 536870912; }', "t.proto:1:42: Field numbers cannot be greater than 536870911." },
      { 'syntax = "proto3"; message A { int32 x = 19000; }', "t.proto:1:42: Field numbers 19000 through 19999 are reserved for the protocol buffer library implementation." },
      { 'syntax = "proto3"; message A { reserved "x"; int32 x = 5; }', 't.proto:1:52: Field name "x" is reserved.' },
      { 'syntax = "proto3"; message A { int32 x = 1; int32 x = 2; }', 't.proto:1:51: "x" is already defined in "A".' },
      { 'syntax = "proto3"; message A {} message A {}', 't.proto:1:41: "A" is already defined.' },
      { 'syntax = "proto3"; package p; message A {} enum A {X=0;}', 't.proto:1:49: "A" is already defined in "p".' },
      { 'syntax = "proto3"; message A { Foo x = 1; }', 't.proto:1:32: "Foo" is not defined.' },
      { 'syntax = "proto3"; message A { required int32 x = 1; }', "t.proto:1:41: Required fields are not allowed in proto3." },
      { 'syntax = "proto3"; message A { optional group G = 1 {} }', "t.proto:1:41: Groups are not supported in proto3 syntax." },
      { 'syntax = "proto3"; message A { map<float, int32> m = 1; }', "t.proto:1:32: Key in map fields cannot be float/double, bytes or message types." },
      { 'syntax = "proto3"; enum E { A = 0; } message M { map<E, int32> m = 1; }', "t.proto:1:50: Key in map fields cannot be enum types." },
      { 'syntax = "proto3"; message A { oneof o { repeated int32 x = 1; } }', "t.proto:1:42: Fields in oneofs must not have labels (required / optional / repeated)." },
      { 'syntax = "proto2"; message A { extensions 10 to 5; }', "t.proto:1:43: Extension range end number must be greater than start number." },
      { 'syntax = "proto2"; message A { extensions 10 to 20; optional int32 x = 15; }', 't.proto:1:43: Extension range 10 to 20 includes field "x" (15).' },
      { 'syntax = "proto2"; message A { optional int32 x = 1; } message B { extensions 5 to 10, 8 to 12; }', "t.proto:1:79: Extension range 8 to 12 overlaps with already-defined range 5 to 10." },
      { 'syntax = "proto2"; enum E { A = 1; B = 1; }', "t.proto:1:40: \"B\" uses the same enum value as \"A\". If this is intended, set 'option allow_alias = true;' to the enum definition." },
      { 'syntax = "proto2"; enum E { A = 1; } enum F { A = 2; }', 't.proto:1:47: "A" is already defined.' },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [default = 2147483648]; }', "t.proto:1:64: Integer out of range." },
      { 'syntax = "proto2"; message A { optional uint32 x = 1 [default = -1]; }', "t.proto:1:66: Unsigned field can't have negative default value." },
      { 'syntax = "proto2"; message A { optional bool x = 1 [default = 1]; }', 't.proto:1:63: Expected "true" or "false".' },
      { 'syntax = "proto2"; enum E { A = 1; } message M { optional E x = 1 [default = B]; }', 't.proto:1:78: Enum type "E" has no value named "B".' },
      { 'syntax = "proto2"; enum E { A = 0; } message M { optional E x = 1 [default = 0]; }', "t.proto:1:78: Default value for an enum field must be an identifier." },
      { 'syntax = "proto2"; message M { optional M x = 1 [default = B]; }', "t.proto:1:60: Messages can't have default values." },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [default = 1]; repeated int32 y = 2 [default = 1]; }', "t.proto:1:100: Repeated fields can't have default values." },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [default = 1.5]; }', "t.proto:1:64: Expected integer for field default value." },
      { 'syntax="proto3"; message A { string s = 1 [default="x"]; }', "t.proto:1:52: Explicit default values are not allowed in proto3." },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [foo = 1]; }', 't.proto:1:54: Option "foo" unknown. Ensure that your proto definition file imports the proto which defines the option.' },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [default = 1, (foo) = 2]; }', 't.proto:1:67: Option "(foo)" unknown. Ensure that your proto definition file imports the proto which defines the option.' },
      { 'syntax = "proto2"; option java_package = 5;', 't.proto:1:42: Value must be quoted string for string option "google.protobuf.FileOptions.java_package".' },
      { 'syntax = "proto2"; option optimize_for = FAST;', 't.proto:1:42: Enum type "google.protobuf.FileOptions.OptimizeMode" has no value named "FAST" for option "google.protobuf.FileOptions.optimize_for".' },
      { 'syntax = "proto2"; option java_package = "a"; option java_package = "b";', 't.proto:1:54: Option "java_package" was already set.' },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [packed = true]; }', "t.proto:1:41: [packed = true] can only be specified for repeated primitive fields." },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [ctype = CORD, lazy = true]; }', "t.proto:1:41: [lazy = true] can only be specified for submessage fields." },
      { 'syntax = "proto2"; message A { extend B { optional int32 x = 1; } }', 't.proto:1:39: "B" is not defined.' },
      { 'syntax = "proto2"; message A { optional int32 x = 1; } extend A { optional int32 y = 2; }', 't.proto:1:86: "A" does not declare 2 as an extension number.' },
      { 'syntax = "proto2"; message A { extensions 5 to 10; } extend A { required int32 x = 5; }', "t.proto:1:74: The extension x cannot be required." },
      { 'syntax = "proto2"; message A { optional group g = 1 {} }', "t.proto:1:47: Group names must start with a capital letter." },
      { 'syntax = "proto3"; message A { int32 foo_bar = 1; int32 fooBar = 2; }', 't.proto:1:57: The JSON camel-case name of field "fooBar" conflicts with field "foo_bar". This is not allowed in proto3.' },
      { 'syntax = "proto3"; enum E { A = 0; a = 1; }', "t.proto:1:36: Enum name a has the same name as A if you ignore case and strip out the enum name prefix (if any). This is error-prone and can lead to undefined behavior. Please avoid doing this. If you are using allow_alias, please assign the same numeric value to both enums." },
      { 'syntax = "proto3"; message A { int32 x = 1 [json_name = 5]; }', "t.proto:1:57: Expected string for JSON name." },
      { 'syntax = "proto2"; message A { optional int32 x = 1; } service S { rpc F(A) returns (B); }', 't.proto:1:86: "B" is not defined.' },
      { 'syntax = "proto2"; message A { optional int32 x = 1; } service S { rpc F(A) returns (A); rpc F(A) returns (A); }', 't.proto:1:94: "F" is already defined in "S".' },
      { 'syntax = "proto2"; package p; message A { message B {} } message C { message A {} optional A.B x = 1; }', "t.proto:1:92: \"A.B\" is resolved to \"p.C.A.B\", which is not defined. The innermost scope is searched first in name resolution. Consider using a leading '.'(i.e., \".A.B\") to start from the outermost scope." },
      { 'syntax="proto3"; message A { optional int32 x = 1; } message B { A.x y = 1; }', 't.proto:1:66: "A.x" is not a type.' },
      { 'syntax = "proto2"; package p; message M { optional int32 x = 1; } service S { rpc R(M.x) returns (M); }', 't.proto:1:85: "M.x" is not a message type.' },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [default = 1, default = 2]; }', 't.proto:1:67: Already set option "default".' },
      { 'syntax = "proto2"; message A { optional int32 x = 1 [json_name = "a", json_name = "b"]; }', 't.proto:1:71: Already set option "json_name".' },
      { 'syntax = "proto3"; message A { extensions 5 to 10; }', "t.proto:1:43: Extension ranges are not allowed in proto3." },
      { 'syntax = "proto2"; message A { oneof o { } }', "t.proto:1:42: Expected type name." },
      { 'syntax = "proto2"; enum E { }', "t.proto:1:25: Enums must contain at least one value." },
      { 'syntax = "proto2"; package p; package q;', "t.proto:1:31: Multiple package definitions." },
      { 'syntax = "proto3"; enum E { A = 1; }', "t.proto:1:33: The first enum value must be zero in proto3." },
      { 'syntax = "proto2"; message M { extensions 1 to 10; extensions 3; }', "t.proto:1:43: Extension range 3 to 3 overlaps with already-defined range 1 to 10." },
      { 'syntax = "proto4";', 't.proto:1:10: Unrecognized syntax identifier "proto4".  This parser only recognizes "proto2" and "proto3".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; extend google.protobuf.FieldOptions { optional int32 foo = 50000; } message A { optional int32 x = 1 [(foo) = "a"]; }', 't.proto:1:173: Value must be integer for int32 option "foo".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; extend google.protobuf.FieldOptions { optional int32 foo = 50000; } message A { optional int32 y = 2 [(foo) = 3000000000]; }', 't.proto:1:173: Value out of range for int32 option "foo".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; extend google.protobuf.MessageOptions { optional int32 foo = 50000; } message A { option (foo) = 1; option (foo) = 2; }', 't.proto:1:170: Option "(foo)" was already set.' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; extend google.protobuf.MessageOptions { optional int32 foo = 50000; } message A { option (foo).x = 1; }', 't.proto:1:152: Option "(foo)" is an atomic type, not a message.' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { y: 1 }; }', 't.proto:1:192: Error while parsing option value for "foo": Message type "O" has no field named "y".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { x: 1 x: 2 }; }', 't.proto:1:192: Error while parsing option value for "foo": Non-repeated field "x" is specified multiple times.' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo).x = 1; option (foo).x = 2; }', 't.proto:1:204: Option "(foo).x" was already set.' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; extend google.protobuf.FieldOptions { optional int32 foo = 50000; } message A { option (foo) = 1; }', 't.proto:1:150: Option field "(foo)" is not a field or extension of message "MessageOptions".' },
      { 'syntax="proto3"; message A { int32 s = 1 [(foo) = -inf]; }', "t.proto:1:52: Invalid '-' symbol before identifier." },
      { 'syntax = "proto2"; message B { extensions 1 to 10; } extend B { optional int32 a = 1; } extend B { optional int32 b = 1; }', 't.proto:1:119: Extension number 1 has already been used in "B" by extension "a".' },
      { 'syntax = "proto2"; message M { optional int32 x = 1 [deprecated=true, deprecated=false]; }', 't.proto:1:71: Option "deprecated" was already set.' },
      { 'syntax = "proto2";\nmessage M {\n  enum E { FOO = 1; }\n  enum E { FOO = 1; }\n}\n', 't.proto:4:12: "FOO" is already defined in "M".' },
      { 'syntax = "proto2";\nenum E { FOO = 1; }\nenum E { FOO = 1; }\nmessage M {}\nmessage M {}\n', 't.proto:5:9: "M" is already defined.' },
      { 'syntax = "proto2";\nmessage M { optional int32 a = 1; }\nmessage M { optional int32 a = 1; }\n', 't.proto:3:28: "a" is already defined in "M".' },
      { 'syntax = "proto2";\nenum E { A = 0; }\nmessage M { optional E e = 1 [default = -1]; }\n', 't.proto:3:42: Expected "]".' },
      { 'syntax = "proto2";\nmessage M { optional group G = 1 [default = 1] {} }\n', "t.proto:2:45: Messages can't have default values." },
      { 'syntax = "proto2";\nmessage M { map<int32,int32> m = 1 [default = -1]; }\n', "t.proto:2:47: Repeated fields can't have default values." },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { x 1 }; }', 't.proto:1:210: Error while parsing option value for "foo": Expected ":", found "1".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { x: }; }', 't.proto:1:210: Error while parsing option value for "foo": Expected integer, got: ' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { x: "a" }; }', 't.proto:1:210: Error while parsing option value for "foo": Expected integer, got: "a"' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { o: 5 }; }', 't.proto:1:210: Error while parsing option value for "foo": Expected "{", found "5".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { [nope]: 5 }; }', 't.proto:1:210: Error while parsing option value for "foo": Extension "nope" is not defined or is not an extension of "O".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { x: 99999999999 }; }', 't.proto:1:210: Error while parsing option value for "foo": Integer out of range (99999999999)' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = { x: 1 ; ; }; }', 't.proto:1:210: Error while parsing option value for "foo": Expected identifier, got: ;' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; message O { optional int32 x = 1; repeated O o = 2; } extend google.protobuf.MessageOptions { optional O foo = 50000; } message A { option (foo) = 5; }', 't.proto:1:210: Option "foo" is a message. To set the entire message, use syntax like "foo = { <proto text format> }". To set fields within it, use syntax like "foo.foo = value".' },
      { 'syntax = "proto2"; message A { option deprecated = { x: 1 }; }', 't.proto:1:52: Value must be identifier for boolean option "google.protobuf.MessageOptions.deprecated".' },
      { 'syntax = "proto2"; import "google/protobuf/descriptor.proto"; extend google.protobuf.MessageOptions { optional int32 foo = 50000; } message A { option (foo) = { x: 1 }; }', 't.proto:1:160: Value must be integer for int32 option "foo".' },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local fdp, err = compile(c[1])
        assert.is_nil(fdp)
        assert.equal(c[2], err)
      end)
    end
  end)

  it("gives nil, err (never raises) for any prefix of a valid file", function()
    local src = oracle.read(FIXTURES .. "/rich/use.proto")
    for cut = 1, #src, 97 do
      local ok, fdp, err = pcall(compile, src:sub(1, cut), "cut.proto")
      assert.is_true(ok, fdp)
      assert.is_true(fdp ~= nil or type(err) == "string")
    end
  end)
end)

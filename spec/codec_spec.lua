-- spec/codec_spec.lua — lgrpc.proto.codec: the protobuf binary codec between Lua tables and the
-- wire. Descriptors come from protoc (spec/support/codec_fdp.lua); expected bytes are the ones
-- protobuf documents and protoc-generated code writes.
local codec = require "lgrpc.proto.codec"
local fdp = require "codec_fdp"
local hex, unhex = fdp.hex, fdp.unhex

local NATIVE64 = math.type ~= nil -- Lua 5.3+: 64-bit integers; LuaJIT: doubles
local FIX = "spec/fixtures/codec"

describe("lgrpc.proto.codec", function()
  local p3, p2
  setup(function()
    p3 = assert(codec.schema(fdp.load(FIX, "p3.proto")))
    p2 = assert(codec.schema(fdp.load(FIX, "p2.proto")))
  end)

  local function roundtrip(s, name, t, opts)
    local b = assert(s:encode(name, t))
    return assert(s:decode(name, b, opts)), b
  end

  describe("schema", function()
    it("knows the messages of its files", function()
      assert.is_true(p3:has("codec.p3.Scalars"))
      assert.is_true(p3:has("codec.p3.Maps.MInt32Entry"))
      assert.is_false(p3:has("codec.p3.Nope"))
      assert.is_false(p3:has("Scalars"))
    end)

    it("reports an unresolved type with nil, err", function()
      local s, err = codec.schema({ { name = "x.proto", package = "x", message_type = {
        { name = "A", field = { { name = "b", number = 1, label = "LABEL_OPTIONAL",
          type = "TYPE_MESSAGE", type_name = ".x.Missing" } } } } } })
      assert.is_nil(s)
      assert.matches("x.A.b: unknown type '.x.Missing'", err, 1, true)
    end)

    it("reports duplicate field numbers and bad types", function()
      local s, err = codec.schema({ { name = "x.proto", package = "x", message_type = {
        { name = "A", field = {
          { name = "a", number = 1, label = "LABEL_OPTIONAL", type = "TYPE_INT32" },
          { name = "b", number = 1, label = "LABEL_OPTIONAL", type = "TYPE_INT32" } } } } } })
      assert.is_nil(s)
      assert.matches("x.A: field number 1 used twice", err, 1, true)
      s, err = codec.schema({ { name = "x.proto", message_type = {
        { name = "A", field = { { name = "a", number = 1, type = "TYPE_WHAT" } } } } } })
      assert.is_nil(s)
      assert.matches("invalid field type 'TYPE_WHAT'", err, 1, true)
    end)

    it("resolves relative type names the way protoc scopes them", function()
      local s = assert(codec.schema({ { name = "x.proto", package = "x.y", message_type = {
        { name = "A", field = { { name = "b", number = 1, label = "LABEL_OPTIONAL", type_name = "B" } },
          nested_type = { { name = "B", field = { { name = "v", number = 1, type = "TYPE_INT32" } } } } } } } }))
      assert.equal("0a020801", hex(assert(s:encode("x.y.A", { b = { v = 1 } }))))
    end)

    it("returns nil, err for an unknown message name", function()
      local b, err = p3:encode("codec.p3.Nope", {})
      assert.is_nil(b)
      assert.equal("unknown message type 'codec.p3.Nope'", err)
      assert.same({ nil, "unknown message type 'codec.p3.Nope'" }, { p3:decode("codec.p3.Nope", "") })
    end)

    it("can be closed, after which it refuses work", function()
      local s = assert(codec.schema(fdp.load(FIX, "p3.proto")))
      s:close()
      assert.has_error(function() s:encode("codec.p3.Scalars", {}) end, "schema is closed")
    end)
  end)

  describe("encode", function()
    it("writes the documented bytes for each scalar type", function()
      local cases = {
        { { f_int32 = 150 }, "289601" },
        { { f_int32 = -1 }, "28ffffffffffffffffff01" },
        { { f_sint32 = -1 }, "7801" },
        { { f_sint64 = -2 }, "800103" },
        { { f_uint32 = 4294967295 }, "58ffffffff0f" },
        { { f_fixed32 = 1 }, "3d01000000" },
        { { f_sfixed32 = -2 }, "6dfeffffff" },
        { { f_fixed64 = 1 }, "310100000000000000" },
        { { f_sfixed64 = -1 }, "71ffffffffffffffff" },
        { { f_double = 1.5 }, "09000000000000f83f" },
        { { f_float = 1.5 }, "150000c03f" },
        { { f_bool = true }, "4001" },
        { { f_string = "hé" }, "4a0368c3a9" },
        { { f_bytes = "\0\255" }, "520200ff" },
        { { f_enum = "GREEN" }, "6002" },
        { { f_enum = "BLUE" }, "60fdffffffffffffffff01" },
        { { f_int64 = "-9223372036854775808" }, "18" .. "80808080808080808001" },
        { { f_uint64 = "18446744073709551615" }, "20" .. "ffffffffffffffffff01" },
      }
      for _, c in ipairs(cases) do
        assert.equal(c[2], hex(assert(p3:encode("codec.p3.Scalars", c[1]))))
      end
      -- 150 is 08 96 01 as field 1 of an int32: check the field-number order too
      assert.equal("089601", hex(assert(p3:encode("codec.p3.Node", { value = 150 }))))
    end)

    it("writes fields in field-number order, then the unknown bytes", function()
      local b = assert(p3:encode("codec.p3.Scalars",
        { f_sint64 = 1, f_double = 0.5, f_bool = true, ["$unknown"] = unhex("f80601") }))
      assert.equal("09000000000000e03f" .. "4001" .. "8001" .. "02" .. "f80601", hex(b))
    end)

    it("skips proto3 implicit-presence fields equal to their default, but keeps -0.0", function()
      assert.equal("", hex(assert(p3:encode("codec.p3.Scalars", {
        f_int32 = 0, f_string = "", f_bytes = "", f_bool = false, f_enum = "COLOR_UNSPECIFIED",
        f_double = 0.0, f_float = 0, f_uint64 = 0 }))))
      assert.equal("090000000000000080", hex(assert(p3:encode("codec.p3.Scalars", { f_double = -0.0 }))))
    end)

    it("writes explicit-presence fields even when they hold the default", function()
      assert.equal("0800", hex(assert(p3:encode("codec.p3.Presence", { o_int32 = 0 }))))
      assert.equal("1200", hex(assert(p3:encode("codec.p3.Presence", { o_string = "" }))))
      assert.equal("3000", hex(assert(p3:encode("codec.p3.Presence", { c_int32 = 0 }))))
      assert.equal("2a00", hex(assert(p3:encode("codec.p3.Presence", { sub = {} }))))
      assert.equal("0800", hex(assert(p2:encode("codec.p2.Defaults", { d_int32 = 0 }))))
    end)

    it("packs proto3 repeated scalars unless [packed=false]; proto2 only with [packed=true]", function()
      assert.equal("2a03010203", hex(assert(p3:encode("codec.p3.Repeated", { r_int32 = { 1, 2, 3 } }))))
      assert.equal("880101880102", hex(assert(p3:encode("codec.p3.Repeated", { unpacked_int32 = { 1, 2 } }))))
      assert.equal("4a0161" .. "4a00", hex(assert(p3:encode("codec.p3.Repeated", { r_string = { "a", "" } }))))
      assert.equal("20012002", hex(assert(p2:encode("codec.p2.Closed", { plain = { 1, 2 } }))))
      assert.equal("2a020102", hex(assert(p2:encode("codec.p2.Closed", { packed = { 1, 2 } }))))
      assert.equal("", hex(assert(p3:encode("codec.p3.Repeated", { r_int32 = {} }))))
    end)

    it("writes long packed and nested bodies with multi-byte lengths", function()
      local big = {}
      for i = 1, 200 do big[i] = i end
      local b = assert(p3:encode("codec.p3.Repeated", { r_int32 = big }))
      assert.equal("2a9102", hex(b:sub(1, 3))) -- 127 one-byte + 73 two-byte varints = 273
      assert.equal(3 + 273, #b)
      local t = assert(p3:decode("codec.p3.Repeated", b))
      assert.same(big, t.r_int32)
      local s = string.rep("x", 300)
      local n = assert(p3:encode("codec.p3.Big", { scalars = { f_string = s } }))
      assert.equal("0aaf024aac02", hex(n:sub(1, 6)))
      assert.equal(s, assert(p3:decode("codec.p3.Big", n)).scalars.f_string)
    end)

    it("writes the same bytes for every accepted spelling of a value, at any depth", function()
      local want = assert(p3:encode("codec.p3.Big", {
        scalars = { f_int64 = -5, f_int32 = 7, f_enum = 2, f_uint32 = 4000000000, f_sint64 = -3 },
        tree = { value = 1, left = { value = 2, right = { value = 3 } } },
        repeated = { r_int32 = { 1, -1, 300 }, r_enum = { 1, 2 }, r_msg = { { f_bool = true }, {} } },
      }))
      local spelled = {
        scalars = { f_int64 = "-5", f_int32 = 7.0, f_enum = "GREEN", f_uint32 = "4000000000", f_sint64 = -3.0 },
        tree = { value = "1", left = { value = 2.0, right = { value = 3 } } },
        repeated = { r_int32 = { "1", -1.0, 300 }, r_enum = { "RED", 2 }, r_msg = { { f_bool = true }, {} } },
      }
      assert.equal(hex(want), hex(assert(p3:encode("codec.p3.Big", spelled))))
      assert.equal(hex(want), hex(assert(p3:encode("codec.p3.Big", spelled, { deterministic = true }))))
      -- uint64 at and above 2^63 given as decimal text, next to values read the usual way
      local u = assert(p3:encode("codec.p3.Scalars", { f_uint64 = "18446744073709551615", f_int32 = 1 }))
      assert.equal("20ffffffffffffffffff012801", hex(u))
    end)

    it("checks UTF-8 past long ASCII runs, in fields, lists and map entries", function()
      local ok = "abcdefghijklmnopqrstuvwxyz \195\169\240\159\152\128 end of text, plain ASCII again"
      local t = roundtrip(p3, "codec.p3.Maps", { m_string = { [ok] = ok } })
      assert.equal(ok, t.m_string[ok])
      local cases = {
        { "codec.p3.Scalars", { f_string = "abcdefghijklmnop\255" }, "codec.p3.Scalars.f_string" },
        { "codec.p3.Scalars", { f_string = "abcdefgh\237\160\128abcdefgh" }, "codec.p3.Scalars.f_string" },
        { "codec.p3.Repeated", { r_string = { "fine", "01234567890123456789\192\128" } }, "codec.p3.Repeated.r_string" },
        { "codec.p3.Maps", { m_string = { k = "0123456789abcdef\244\144\128\128" } }, "codec.p3.Maps.m_string.value" },
      }
      for _, c in ipairs(cases) do
        local b, err = p3:encode(c[1], c[2])
        assert.is_nil(b)
        assert.equal(c[3] .. ": string is not valid UTF-8", err)
      end
      local b, err = p3:decode("codec.p3.Scalars", "\74\18" .. ("a"):rep(16) .. "\192\175")
      assert.is_nil(b)
      assert.equal("codec.p3.Scalars.f_string: string is not valid UTF-8", err)
    end)

    it("sorts map entries by key with deterministic = true, writing key and value always", function()
      local b = assert(p3:encode("codec.p3.Maps", { m_int32 = { [3] = "c", [-1] = "", [2] = "b" } },
        { deterministic = true }))
      assert.equal("0a0d08ffffffffffffffffff011200" .. "0a0508021201" .. "62" .. "0a0508031201" .. "63", hex(b))
      local s = assert(p3:encode("codec.p3.Maps", { m_string = { b = "2", a = "1", [""] = "0" } },
        { deterministic = true }))
      assert.equal("62050a00120130" .. "62060a01611201" .. "31" .. "62060a01621201" .. "32", hex(s):gsub("^", ""))
      local u = assert(p3:encode("codec.p3.Maps", { m_bool = { [true] = "t", [false] = "f" } },
        { deterministic = true }))
      assert.equal("5a050800120166" .. "5a050801120174", hex(u))
    end)

    it("encodes enums from names or numbers; open enums take any int32", function()
      assert.equal("6002", hex(assert(p3:encode("codec.p3.Scalars", { f_enum = 2 }))))
      assert.equal("6063", hex(assert(p3:encode("codec.p3.Scalars", { f_enum = 99 }))))
      local b, err = p3:encode("codec.p3.Scalars", { f_enum = "PURPLE" })
      assert.is_nil(b)
      assert.equal("codec.p3.Scalars.f_enum: unknown value 'PURPLE' of enum codec.p3.Color", err)
      b, err = p2:encode("codec.p2.Closed", { kind = 3 })
      assert.is_nil(b)
      assert.equal("codec.p2.Closed.kind: 3 is not a value of enum codec.p2.Kind", err)
    end)

    it("refuses values of the wrong type or out of range, naming the field path", function()
      local cases = {
        { "codec.p3.Scalars", { f_int32 = "x" }, "codec.p3.Scalars.f_int32: expected integer, got string 'x'" },
        { "codec.p3.Scalars", { f_int32 = 2 ^ 31 }, "codec.p3.Scalars.f_int32: value 2147483648 out of range for int32" },
        { "codec.p3.Scalars", { f_uint32 = -1 }, "codec.p3.Scalars.f_uint32: value -1 out of range for uint32" },
        { "codec.p3.Scalars", { f_int32 = 1.5 }, "codec.p3.Scalars.f_int32: expected integer, got 1.5" },
        { "codec.p3.Scalars", { f_int64 = "9223372036854775808" }, "codec.p3.Scalars.f_int64: value 9223372036854775808 out of range for int64" },
        { "codec.p3.Scalars", { f_uint64 = "18446744073709551616" }, "codec.p3.Scalars.f_uint64: expected integer, got string '18446744073709551616'" },
        { "codec.p3.Scalars", { f_bool = 1 }, "codec.p3.Scalars.f_bool: expected boolean, got number" },
        { "codec.p3.Scalars", { f_string = 5 }, "codec.p3.Scalars.f_string: expected string, got number" },
        { "codec.p3.Scalars", { f_double = "1" }, "codec.p3.Scalars.f_double: expected number, got string" },
        { "codec.p3.Scalars", { f_string = "\255" }, "codec.p3.Scalars.f_string: string is not valid UTF-8" },
        { "codec.p3.Big", { scalars = 5 }, "codec.p3.Big.scalars: expected table, got number" },
        { "codec.p3.Big", { tree = { left = { right = { value = "v" } } } }, "codec.p3.Big.tree.left.right.value: expected integer, got string 'v'" },
        { "codec.p3.Repeated", { r_int32 = { 1, "z" } }, "codec.p3.Repeated.r_int32: element 2: expected integer, got string 'z'" },
        { "codec.p3.Repeated", { r_msg = { {}, 7 } }, "codec.p3.Repeated.r_msg: element 2: expected table, got number" },
        { "codec.p3.Maps", { m_int32 = { a = "x" } }, "codec.p3.Maps.m_int32.key: expected integer, got string 'a'" },
        { "codec.p3.Maps", { m_msg = { a = { f_int32 = {} } } }, "codec.p3.Maps.m_msg.value.f_int32: expected integer, got table" },
      }
      for _, c in ipairs(cases) do
        local b, err = p3:encode(c[1], c[2])
        assert.is_nil(b)
        assert.equal(c[3], err)
      end
    end)

    it("refuses two members of one oneof, naming both", function()
      local b, err = p3:encode("codec.p3.Presence", { c_int32 = 1, c_string = "x" })
      assert.is_nil(b)
      assert.equal("codec.p3.Presence.c_string: oneof members 'c_int32' and 'c_string' are both set", err)
    end)

    it("refuses a missing proto2 required field unless partial", function()
      local b, err = p2:encode("codec.p2.Holder", { reqs = { { id = 1 }, { name = "x" } } })
      assert.is_nil(b)
      assert.equal("codec.p2.Holder.reqs.id: missing required field", err)
      assert.equal("1203120178", hex(assert(p2:encode("codec.p2.Holder", { reqs = { { name = "x" } } }, { partial = true }))))
    end)

    it("stops a cyclic table at the depth limit", function()
      local t = { value = 1 }
      t.left = t
      local b, err = p3:encode("codec.p3.Node", t)
      assert.is_nil(b)
      assert.matches("nesting deeper than 100", err, 1, true)
    end)

    it("honours max_size", function()
      local s = assert(codec.schema(fdp.load(FIX, "p3.proto"), { max_size = 10 }))
      assert.equal(10, #assert(s:encode("codec.p3.Scalars", { f_string = "12345678" })))
      local b, err = s:encode("codec.p3.Scalars", { f_string = "123456789" })
      assert.is_nil(b)
      assert.matches("message larger than 10 bytes", err, 1, true)
    end)

    it("raises for programmer errors", function()
      assert.has_error(function() p3:encode("codec.p3.Scalars", "x") end)
      assert.has_error(function() p3:decode("codec.p3.Scalars", {}) end)
      assert.has_error(function() p3:decode("codec.p3.Scalars", "", { enums = "bogus" }) end)
      assert.has_error(function() codec.schema("x") end)
    end)
  end)

  describe("decode", function()
    it("round-trips every scalar type with edge values", function()
      local t = {
        f_double = -1e308, f_float = 3.5, f_int32 = -2147483648, f_uint32 = 4294967295,
        f_sint32 = -2147483648, f_fixed32 = 4294967295, f_sfixed32 = -2147483648,
        f_bool = true, f_string = "日本語", f_bytes = "\0\1\2\255", f_enum = "BLUE",
        f_int64 = -9007199254740992, f_sint64 = 9007199254740992, f_sfixed64 = -5,
        f_uint64 = 9007199254740992, f_fixed64 = 1,
      }
      assert.same(t, (roundtrip(p3, "codec.p3.Scalars", t)))
    end)

    it("keeps all 64 bits of 64-bit integers", function()
      local t = { f_int64 = "-9223372036854775808", f_sint64 = "9223372036854775807",
        f_sfixed64 = "-9223372036854775807", f_uint64 = "18446744073709551615",
        f_fixed64 = "9223372036854775808" }
      local d = roundtrip(p3, "codec.p3.Scalars", t, { int64 = "string" })
      assert.same(t, d)
      local n = roundtrip(p3, "codec.p3.Scalars", t)
      if NATIVE64 then
        assert.equal(math.mininteger, n.f_int64)
        assert.equal(math.maxinteger, n.f_sint64)
        assert.equal(-1, n.f_uint64) -- uint64 above 2^63: the same 64 bits
        assert.equal(math.mininteger, n.f_fixed64)
        -- and the native form encodes back to the same bytes
        assert.equal(hex(assert(p3:encode("codec.p3.Scalars", t))), hex(assert(p3:encode("codec.p3.Scalars", n))))
      else
        assert.same(t, n) -- beyond 2^53: decimal strings
        local small = roundtrip(p3, "codec.p3.Scalars", { f_int64 = 2 ^ 53, f_uint64 = 12 })
        assert.equal(2 ^ 53, small.f_int64)
        assert.equal(12, small.f_uint64)
      end
    end)

    it("accepts LuaJIT int64/uint64 cdata when encoding", function()
      local ok, ffi = pcall(require, "ffi")
      if not ok then return end
      -- LL/ULL literals are LuaJIT syntax: compile them only there
      local mk = assert((loadstring or load)("local ffi = ...; return { f_int64 = ffi.new('int64_t', -9223372036854775807LL) - 1, f_uint64 = 18446744073709551615ULL, f_int32 = 7LL }"))
      local b = assert(p3:encode("codec.p3.Scalars", mk(ffi)))
      local d = assert(p3:decode("codec.p3.Scalars", b, { int64 = "string" }))
      assert.equal("-9223372036854775808", d.f_int64)
      assert.equal("18446744073709551615", d.f_uint64)
      assert.equal(7, d.f_int32)
      local _, err = p3:encode("codec.p3.Scalars", { f_int64 = ffi.new("double[1]") })
      assert.equal("codec.p3.Scalars.f_int64: expected integer, got cdata", err)
    end)

    it("preserves NaN, infinities and -0.0", function()
      local d = roundtrip(p3, "codec.p3.Repeated", { r_double = { 0 / 0, 1 / 0, -1 / 0, -0.0 },
        r_float = { 0 / 0, -1 / 0, -0.0 } })
      assert.is_true(d.r_double[1] ~= d.r_double[1])
      assert.equal(1 / 0, d.r_double[2])
      assert.equal(-1 / 0, d.r_double[3])
      assert.equal(-1 / 0, 1 / d.r_double[4])
      assert.is_true(d.r_float[1] ~= d.r_float[1])
      assert.equal(-1 / 0, d.r_float[2])
      assert.equal(-1 / 0, 1 / d.r_float[3])
    end)

    it("writes a double beyond float range into a float field as an infinity", function()
      assert.equal("150000807f", hex(assert(p3:encode("codec.p3.Scalars", { f_float = 1e300 }))))
      assert.equal("15000080ff", hex(assert(p3:encode("codec.p3.Scalars", { f_float = -1e39 }))))
    end)

    it("decodes enums as names, or numbers on request; unnamed open values as numbers", function()
      assert.same({ f_enum = "GREEN" }, p3:decode("codec.p3.Scalars", unhex("6002")))
      assert.same({ f_enum = 2 }, p3:decode("codec.p3.Scalars", unhex("6002"), { enums = "number" }))
      local d = assert(p3:decode("codec.p3.Scalars", unhex("6063")))
      assert.same({ f_enum = 99 }, d)
      assert.equal("6063", hex(assert(p3:encode("codec.p3.Scalars", d))))
    end)

    it("sends unknown values of a closed enum to the unknown fields", function()
      local d = assert(p2:decode("codec.p2.Closed", unhex("0803" .. "1001" .. "1004" .. "1a03010702")))
      assert.is_nil(d.kind)
      assert.same({ "KIND_A" }, d.kinds)
      assert.same({ "KIND_A", "KIND_B" }, d.packed_kinds)
      assert.equal("0803" .. "1004" .. "1807", hex(d["$unknown"]))
      assert.equal("1001" .. "1a020102" .. "0803" .. "1004" .. "1807", hex(assert(p2:encode("codec.p2.Closed", d))))
    end)

    it("keeps a map entry whose closed-enum value is unnamed as an unknown field, whole", function()
      local d = assert(p2:decode("codec.p2.Holder", unhex("2205" .. "0a0161" .. "1002" .. "2205" .. "0a0162" .. "1003")))
      assert.same({ a = "LEVEL_TWO" }, d.levels)
      assert.equal("22050a01621003", hex(d["$unknown"]))
      assert.equal("22050a01611002" .. "22050a01621003", hex(assert(p2:encode("codec.p2.Holder", d))))
    end)

    it("leaves absent fields nil, or fills defaults on request", function()
      assert.same({}, p3:decode("codec.p3.Scalars", ""))
      local d = assert(p3:decode("codec.p3.Presence", "", { defaults = true }))
      assert.same({ o_int32 = 0, o_string = "", o_enum = "COLOR_UNSPECIFIED", i_int32 = 0, o_double = 0 }, d)
      local r = assert(p3:decode("codec.p3.Repeated", unhex("2a0101"), { defaults = true }))
      assert.same({ 1 }, r.r_int32)
      assert.same({}, r.r_string)
      local mv = assert(p3:decode("codec.p3.Maps", unhex("6a030a0161" .. "6a050a01621200"), { defaults = true }))
      assert.equal(0, mv.m_msg.a.f_int32)
      assert.equal("COLOR_UNSPECIFIED", mv.m_msg.b.f_enum)
      assert.same({}, mv.m_int32)
      local q = assert(p2:decode("codec.p2.Defaults", unhex("0801"), { defaults = true }))
      assert.equal(1, q.d_int32)
      assert.equal("KIND_C", q.d_enum)
      assert.equal("\0\1\255x", q.d_bytes)
    end)

    it("fills proto2 default_value defaults in new()", function()
      local d = p2:new("codec.p2.Defaults")
      assert.equal(-42, d.d_int32)
      assert.equal(1 / 0, d.d_double)
      assert.equal(-1.5, d.d_float)
      assert.is_true(d.d_bool)
      assert.equal("h\195\169llo", d.d_string)
      assert.equal("\0\1\255x", d.d_bytes)
      assert.equal("q\\x41\"'\n\t\1\255", d.d_escapes)
      assert.equal("KIND_C", d.d_enum)
      assert.equal("KIND_A", d.d_enum_first)
      assert.is_true(d.d_nan ~= d.d_nan)
      assert.equal("", d.d_plain)
      local s = p2:new("codec.p2.Defaults", { int64 = "string", enums = "number" })
      assert.equal("-9223372036854775808", s.d_int64)
      assert.equal("18446744073709551615", s.d_uint64)
      assert.equal(5, s.d_enum)
      local n = p3:new("codec.p3.Big")
      assert.same({}, n)
      local m = p3:new("codec.p3.Maps")
      assert.same({}, m.m_int32)
      local pr = p3:new("codec.p3.Presence")
      assert.is_nil(pr.c_int32)
      assert.is_nil(pr.sub)
      assert.equal(0, pr.i_int32)
      assert.same({ nil, "unknown message type 'x'" }, { p3:new("x") })
    end)

    it("keeps unknown fields in arrival order and writes them back unchanged", function()
      local unknown = "f80601" .. "fa0603616263" .. "fd0601020304" .. "f9060102030405060708" .. "fb06" .. "f806" .. "01" .. "fc06"
      local bytes = unhex("0801" .. unknown:sub(1, 6) .. "0802" .. unknown:sub(7))
      local d = assert(p3:decode("codec.p3.Node", bytes))
      assert.equal(unknown, hex(d["$unknown"]))
      assert.equal(2, d.value)
      assert.equal("0802" .. unknown, hex(assert(p3:encode("codec.p3.Node", d))))
      local dropped = assert(p3:decode("codec.p3.Node", bytes, { unknown = "drop" }))
      assert.is_nil(dropped["$unknown"])
      -- a known field with the wrong wire type is kept as unknown, as protobuf does
      local w = assert(p3:decode("codec.p3.Node", unhex("0d01000000")))
      assert.equal("0d01000000", hex(w["$unknown"]))
    end)

    it("reads and writes extensions under [full.name] and groups under their field name", function()
      local t = { kind = "KIND_A", ["[codec.p2.ext_int]"] = -3, ["[codec.p2.ext_strs]"] = { "a", "b" },
        ["[codec.p2.ext_msg]"] = { id = 4 }, ["[codec.p2.Scope.scoped]"] = "KIND_B" }
      local d, b = roundtrip(p2, "codec.p2.Closed", t)
      assert.same(t, d)
      assert.equal("0801" .. "a006fdffffffffffffffff01" .. "aa060161aa060162" .. "b20602" .. "0804" .. "b00902", hex(b))
      local g = { a = 1, data = { x = 3, y = "q" }, item = { { z = 1 }, {} }, b = 7 }
      local gd, gb = roundtrip(p2, "codec.p2.WithGroup", g)
      assert.same(g, gd)
      assert.equal("0801" .. "13" .. "1803" .. "220171" .. "14" .. "2b30012c" .. "2b2c" .. "3807", hex(gb))
    end)

    it("applies last-one-wins to scalars and oneofs, and merges repeated message occurrences", function()
      assert.same({ f_int32 = 2 }, p3:decode("codec.p3.Scalars", unhex("28012802")))
      local d = assert(p3:decode("codec.p3.Presence", unhex("3001" .. "3a0178")))
      assert.same({ c_string = "x" }, d)
      d = assert(p3:decode("codec.p3.Presence", unhex("3a0178" .. "4202" .. "2801")))
      assert.same({ c_msg = { f_int32 = 1 } }, d)
      d = assert(p3:decode("codec.p3.Big", unhex("0a022801" .. "0a021801" .. "0a022803")))
      assert.same({ scalars = { f_int32 = 3, f_int64 = 1 } }, d)
      d = assert(p3:decode("codec.p3.Presence", unhex("4202" .. "2801" .. "4202" .. "1802")))
      assert.same({ c_msg = { f_int32 = 1, f_int64 = 2 } }, d)
    end)

    it("accepts packed and unpacked encodings of every packable repeated type", function()
      local t = { r_double = { 1.5, -2 }, r_float = { 0.5 }, r_int64 = { -1, 5 }, r_uint64 = { 7 },
        r_int32 = { -7, 8 }, r_fixed64 = { 9 }, r_fixed32 = { 10 }, r_bool = { true, false },
        r_uint32 = { 11 }, r_enum = { "RED", "BLUE" }, r_sfixed32 = { -12 }, r_sfixed64 = { -13 },
        r_sint32 = { -14 }, r_sint64 = { -15 }, unpacked_int32 = { 1, 2, 3 } }
      local packed = assert(p3:encode("codec.p3.Repeated", t))
      -- rewrite every packed record as unpacked records and the unpacked ones as packed
      local s = assert(codec.schema({ (function()
        local f = fdp.load(FIX, "p3.proto")[1]
        for _, m in ipairs(f.message_type) do
          if m.name == "Repeated" then
            for _, fd in ipairs(m.field) do
              fd.options = fd.options or {}
              fd.options.packed = not (fd.options.packed ~= false)
            end
          end
        end
        return f
      end)() }))
      local unpacked = assert(s:encode("codec.p3.Repeated", t))
      assert.are_not.equal(hex(packed), hex(unpacked))
      assert.same(t, p3:decode("codec.p3.Repeated", packed))
      assert.same(t, p3:decode("codec.p3.Repeated", unpacked))
      assert.same({ r_int32 = { 1, 2, 3, 4 } }, p3:decode("codec.p3.Repeated", unhex("2801" .. "2a020203" .. "2804")))
    end)

    it("appends interleaved elements of repeated fields in order, however many", function()
      local parts = {}
      for i = 1, 50000 do parts[i] = "\136\1" .. string.char(i % 100) .. "\74\1" .. string.char(65 + i % 26) end
      local d = assert(p3:decode("codec.p3.Repeated", table.concat(parts)))
      assert.equal(50000, #d.unpacked_int32)
      assert.equal(50000, #d.r_string)
      assert.equal(7, d.unpacked_int32[7])
      assert.equal("H", d.r_string[7])
      -- and a later run of the same field continues the same array
      d = assert(p3:decode("codec.p3.Repeated", unhex("2a020102" .. "4a0178" .. "2a0103" .. "4a0179" .. "2804")))
      assert.same({ 1, 2, 3, 4 }, d.r_int32)
      assert.same({ "x", "y" }, d.r_string)
    end)

    it("reads map entries in any field order with defaults for a missing key or value", function()
      local d = assert(p3:decode("codec.p3.Maps", unhex("0a051201780805")))
      assert.same({ m_int32 = { [5] = "x" } }, d)
      d = assert(p3:decode("codec.p3.Maps", unhex("0a03120179" .. "0a020807")))
      assert.same({ m_int32 = { [0] = "y", [7] = "" } }, d)
      d = assert(p3:decode("codec.p3.Maps", unhex("6a030a0161")))
      assert.same({ m_msg = { a = {} } }, d)
      d = assert(p3:decode("codec.p3.Maps", unhex("72030a0161")))
      assert.same({ m_enum = { a = "COLOR_UNSPECIFIED" } }, d)
    end)

    it("replaces the whole value when a map key repeats", function()
      local d = assert(p3:decode("codec.p3.Maps", unhex("6a070a016112022801" .. "6a070a016112021802")))
      assert.same({ m_msg = { a = { f_int64 = 2 } } }, d)
      d = assert(p3:decode("codec.p3.Maps", unhex("0a0508011201" .. "61" .. "0a0508011201" .. "62")))
      assert.same({ m_int32 = { [1] = "b" } }, d)
    end)

    it("round-trips every map key type", function()
      local t = { m_int32 = { [-1] = "a" }, m_int64 = { [-5] = "b" }, m_uint32 = { [4294967295] = "c" },
        m_uint64 = { [7] = "d" }, m_sint32 = { [-9] = "e" }, m_sint64 = { [9] = "f" },
        m_fixed32 = { [1] = "g" }, m_fixed64 = { [2] = "h" }, m_sfixed32 = { [-3] = "i" },
        m_sfixed64 = { [-4] = "j" }, m_bool = { [true] = "k", [false] = "l" }, m_string = { [""] = "m" },
        m_msg = { x = { f_int32 = 1 } }, m_enum = { y = "RED" }, m_bytes = { z = "\0" }, m_double = { [1] = 0.5 } }
      assert.same(t, (roundtrip(p3, "codec.p3.Maps", t)))
    end)

    it("checks UTF-8 in proto3 strings only", function()
      local b, err = p3:decode("codec.p3.Scalars", unhex("4a02c328"))
      assert.is_nil(b)
      assert.equal("codec.p3.Scalars.f_string: string is not valid UTF-8", err)
      assert.same({ f_bytes = "\195\40" }, p3:decode("codec.p3.Scalars", unhex("5202c328")))
      assert.same({ s = "\195\40" }, p2:decode("codec.p2.Closed", unhex("3202c328")))
      for _, bad in ipairs({ "eda080", "c0af", "f4908080", "e282" }) do
        assert.is_nil((p3:decode("codec.p3.Scalars", unhex("4a" .. ("%02x"):format(#bad / 2) .. bad))))
      end
    end)

    it("refuses malformed input with nil and an error naming the field path", function()
      local cases = {
        { "codec.p3.Scalars", "0001", "codec.p3.Scalars: invalid field number 0" },
        { "codec.p3.Scalars", "0e", "codec.p3.Scalars: invalid wire type 6 (field 1)" },
        { "codec.p3.Scalars", "0f", "codec.p3.Scalars: invalid wire type 7 (field 1)" },
        { "codec.p3.Scalars", "2896", "codec.p3.Scalars.f_int32: truncated varint" },
        { "codec.p3.Scalars", "28ffffffffffffffffffff01", "codec.p3.Scalars.f_int32: varint longer than 10 bytes" },
        { "codec.p3.Scalars", "80", "codec.p3.Scalars: truncated tag" },
        { "codec.p3.Scalars", "4a0561", "codec.p3.Scalars.f_string: truncated string" },
        { "codec.p3.Scalars", "0900", "codec.p3.Scalars.f_double: truncated fixed64" },
        { "codec.p3.Scalars", "150000", "codec.p3.Scalars.f_float: truncated fixed32" },
        { "codec.p3.Scalars", "4affffffff0f", "codec.p3.Scalars.f_string: truncated string" },
        { "codec.p3.Big", "0a0428", "codec.p3.Big.scalars: truncated length-delimited field" },
        { "codec.p3.Big", "0a022896", "codec.p3.Big.scalars.f_int32: truncated varint" },
        { "codec.p3.Repeated", "2a0196", "codec.p3.Repeated.r_int32: truncated varint" },
        { "codec.p3.Repeated", "2a0396", "codec.p3.Repeated.r_int32: truncated packed field" },
        { "codec.p3.Repeated", "2a050102", "codec.p3.Repeated.r_int32: truncated packed field" },
        { "codec.p3.Repeated", "0a03000000", "codec.p3.Repeated.r_double: truncated fixed64" },
        { "codec.p3.Scalars", "fc06", "codec.p3.Scalars: unexpected end-group tag (field 111)" },
        { "codec.p3.Scalars", "fb06fc07", "codec.p3.Scalars: mismatched end-group tag" },
        { "codec.p3.Scalars", "fb060801", "codec.p3.Scalars: truncated field" },
        { "codec.p3.Scalars", "f806", "codec.p3.Scalars: truncated field" },
        { "codec.p3.Scalars", "fa0605", "codec.p3.Scalars: truncated field" },
        { "codec.p2.WithGroup", "1318031c", "codec.p2.WithGroup.data: unexpected end-group tag (field 3)" },
        { "codec.p2.WithGroup", "131803", "codec.p2.WithGroup.data: truncated group (no end-group tag)" },
      }
      for _, c in ipairs(cases) do
        local d, err = (c[1]:find("p2", 1, true) and p2 or p3):decode(c[1], unhex(c[2]))
        assert.is_nil(d, c[2])
        assert.equal(c[3], err)
      end
      local d, err = p3:decode("codec.p3.Scalars", unhex("808080801001"))
      assert.is_nil(d)
      assert.equal("codec.p3.Scalars: invalid field number 536870912", err)
    end)

    it("limits nesting to 100 levels, like protobuf", function()
      -- build with real lengths
      local function nested(n)
        local t = {}
        local cur = t
        for _ = 1, n - 1 do cur.left = {} cur = cur.left end
        return t
      end
      -- 100 nested messages decode; the 101st is refused (upb and protobuf C++ count the same way)
      local ok = assert(p3:encode("codec.p3.Node", nested(101)))
      assert.is_table(p3:decode("codec.p3.Node", ok))
      local deep = "\18" .. string.char(#ok % 128 + 128, math.floor(#ok / 128)) .. ok
      local d, err = p3:decode("codec.p3.Node", deep)
      assert.is_nil(d)
      assert.matches("nesting deeper than 100$", err)
      assert.matches("^codec%.p3%.Node%.left%.left%.left", err)
      assert.is_nil((p3:encode("codec.p3.Node", nested(102))))
      -- unknown groups count towards the limit as well
      local g = string.rep("\251\6", 150) .. string.rep("\252\6", 150)
      d, err = p3:decode("codec.p3.Node", g)
      assert.is_nil(d)
      assert.equal("codec.p3.Node: nesting deeper than 100", err)
      local s = assert(codec.schema(fdp.load(FIX, "p3.proto"), { max_depth = 3 }))
      assert.is_table(s:decode("codec.p3.Node", assert(s:encode("codec.p3.Node", nested(4)))))
      assert.is_nil((s:decode("codec.p3.Node", assert(p3:encode("codec.p3.Node", nested(5))))))
    end)

    it("requires proto2 required fields after decoding, unless partial", function()
      local d, err = p2:decode("codec.p2.Holder", unhex("0a00"))
      assert.is_nil(d)
      assert.equal("codec.p2.Holder.req.id: missing required field", err)
      d, err = p2:decode("codec.p2.Holder", unhex("1a050a01781200"))
      assert.is_nil(d)
      assert.equal("codec.p2.Holder.by_name.id: missing required field", err)
      assert.same({ req = {} }, p2:decode("codec.p2.Holder", unhex("0a00"), { partial = true }))
      -- the required field may come in a later occurrence of the same message
      assert.same({ req = { id = 1, name = "x" } }, p2:decode("codec.p2.Holder", unhex("0a03120178" .. "0a020801")))
      d, err = p2:decode("codec.p2.Req", unhex("1a021a00"), { partial = false })
      assert.is_nil(d)
      assert.equal("codec.p2.Req.id: missing required field", err)
    end)

    it("never allocates what the input did not pay for", function()
      -- a 2 GiB length prefix with 3 bytes behind it fails at once
      local d, err = p3:decode("codec.p3.Scalars", unhex("52ffffffff07616263"))
      assert.is_nil(d)
      assert.equal("codec.p3.Scalars.f_bytes: truncated bytes", err)
    end)
  end)
  -- Decoding goes straight into tables when the input holds nothing unusual, and through the
  -- general walk otherwise (one unknown field kept is enough to send it there). The same bytes
  -- with one more unknown record must decode to the same tables plus that record, whichever
  -- path each decode took, for valid, repeated, spliced and damaged inputs alike.
  describe("decode paths", function()
    local R = require "codec_random"
    local SEED = tonumber(os.getenv("CODEC_SEED") or "") or os.time()
    local KEEP = unhex("f8ffffff0f00")         -- field 2^29-1 = 0: a kept unknown record
    local DROP = unhex("fbffffff0ffcffffff0f") -- the same number as an empty group
    local OPTS = { {}, { int64 = "string" }, { enums = "number" }, { defaults = true }, { partial = true } }

    local function with(o, k, v)
      local c = {}
      for a, b in pairs(o) do c[a] = b end
      c[k] = v
      return c
    end

    local function damaged(b)
      local out = { b, b .. b } -- the whole message twice: last one wins, messages merge
      if #b > 0 then
        local i = math.random(#b)
        out[#out + 1] = b:sub(1, i - 1)                                                  -- truncated
        out[#out + 1] = b:sub(1, i - 1) .. string.char(math.random(0, 255)) .. b:sub(i + 1) -- one byte changed
        out[#out + 1] = b:sub(1, i - 1) .. b:sub(i + 1)                                 -- one byte gone
      end
      return out
    end

    local function agree(schema, files, names, count)
      math.randomseed(SEED)
      local ix = R.index(files)
      local compared = 0
      for _, name in ipairs(names) do
        for n = 1, count do
          local t = R.message(ix, name)
          local b = assert(schema:encode(name, n % 2 == 0 and R.strip_unknown(t) or t))
          for _, x in ipairs(damaged(b)) do
            for _, o in ipairs(OPTS) do
              local where = ("seed %d, %s #%d, input %s, opts %s"):format(SEED, name, n, fdp.hex(x),
                (next(o)) or "-")
              local r1 = schema:decode(name, x, o)
              if r1 then
                local r2, err = schema:decode(name, x .. KEEP, o)
                assert(r2, where .. ": " .. tostring(err))
                assert.equal((r1["$unknown"] or "") .. KEEP, r2["$unknown"], where)
                r2["$unknown"] = r1["$unknown"]
                local ok, path = R.equal(r1, r2)
                assert(ok, where .. ": tables differ at " .. tostring(path))
                local d = with(o, "unknown", "drop")
                local d1 = assert(schema:decode(name, x, d))
                local d2 = assert(schema:decode(name, x .. DROP, d))
                ok, path = R.equal(d1, d2)
                assert(ok, where .. ": dropping, tables differ at " .. tostring(path))
                ok, path = R.equal(R.strip_unknown(r1), d1)
                assert(ok, where .. ": dropping differs from keeping at " .. tostring(path))
                compared = compared + 1
              end
            end
          end
        end
      end
      return compared
    end

    it("build the same tables from the same bytes (proto3)", function()
      local n = agree(p3, fdp.load(FIX, "p3.proto"),
        { "codec.p3.Big", "codec.p3.Node", "codec.p3.Maps", "codec.p3.Presence", "codec.p3.Repeated" }, 40)
      assert.is_true(n > 400, "too few inputs decoded: " .. n)
    end)

    it("build the same tables from the same bytes (proto2: closed enums, required, groups, extensions)", function()
      local n = agree(p2, fdp.load(FIX, "p2.proto"),
        { "codec.p2.Defaults", "codec.p2.Holder", "codec.p2.Closed", "codec.p2.WithGroup" }, 40)
      assert.is_true(n > 300, "too few inputs decoded: " .. n)
    end)
  end)

  describe("descriptor sets", function()
    local desc
    setup(function()
      desc = assert(codec.schema(fdp.load("/usr/include", "google/protobuf/descriptor.proto")))
    end)

    local function same_bytes(schema, dir, file)
      local raw = fdp.descriptor_set(dir, file, "--include_source_info")
      local t = assert(schema:decode("google.protobuf.FileDescriptorSet", raw))
      local b = assert(schema:encode("google.protobuf.FileDescriptorSet", t))
      assert.equal(#raw, #b)
      assert.is_true(raw == b, file .. ": re-encoded descriptor set differs from protoc's")
      return t
    end

    it("re-encodes protoc's --descriptor_set_out byte for byte", function()
      same_bytes(desc, FIX, "p2.proto")
      same_bytes(desc, FIX, "p3.proto")
      same_bytes(desc, "/usr/include", "google/protobuf/descriptor.proto")
      local t = same_bytes(desc, "/usr/share/grpc-proto", "grpc/health/v1/health.proto")
      local f = t.file[#t.file]
      assert.equal("grpc/health/v1/health.proto", f.name)
      assert.equal("HealthCheckResponse", f.message_type[2].name)
      assert.equal("TYPE_ENUM", f.message_type[2].field[1].type)
      assert.equal("LABEL_OPTIONAL", f.message_type[2].field[1].label)
    end)

    it("keeps custom options as unknown bytes, or reads them as known extensions", function()
      local t = same_bytes(desc, FIX, "opts.proto")
      local thing = t.file[2].message_type[2]
      assert.equal("Thing", thing.name)
      assert.is_true(thing.options.deprecated)
      assert.equal("92b518130a017210fbffffffffffffffff011a030a016e98b5180198b51802", hex(thing.options["$unknown"]))
      local withopts = assert(codec.schema(fdp.load(FIX, "opts.proto")))
      t = same_bytes(withopts, FIX, "opts.proto")
      thing = t.file[2].message_type[2]
      assert.is_nil(thing.options["$unknown"])
      assert.same({ name = "r", limit = -5, nested = { { name = "n" } } }, thing.options["[codec.opts.rule]"])
      assert.same({ 1, 2 }, thing.options["[codec.opts.codes]"])
      local fo = thing.field[1].options
      assert.is_true(fo["[codec.opts.sensitive]"])
      assert.is_true(fo.deprecated)
      assert.equal(-1 / 0, 1 / thing.field[2].options["[codec.opts.weight]"])
      assert.equal("zero", thing.enum_type[1].value[1].options["[codec.opts.alias]"])
      -- what the compiler does with an option value: encode it through an extension name
      local b = assert(withopts:encode("google.protobuf.MessageOptions",
        { ["[codec.opts.rule]"] = { name = "r", limit = -5, nested = { { name = "n" } } },
          ["[codec.opts.codes]"] = { 1, 2 } }))
      assert.equal("92b518130a017210fbffffffffffffffff011a030a016e98b5180198b51802", hex(b))
    end)
  end)
end)

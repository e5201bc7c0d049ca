-- Specs for the JSON layer: the C reader/writer (lgrpc.core.json) and the proto3 JSON mapping
-- (lgrpc.proto.json) driven by descriptors from protoc (spec/support/json_pool.lua).
local cj = require("lgrpc.core").json
local null = cj.null
local is54 = math.type ~= nil

describe("lgrpc.core.json reader", function()
  local function keys(obj)
    local out = {}
    for i = 1, #obj do out[i] = obj[i] end
    return out
  end

  it("reads objects in key order, arrays, literals and strings", function()
    local v = assert(cj.decode(' { "b" : [true, false, null], "a": "x", "":{} } '))
    assert.equal(cj.object, getmetatable(v))
    assert.same({ "b", "a", "" }, keys(v))
    assert.equal(cj.array, getmetatable(v.b))
    assert.equal(true, v.b[1]); assert.equal(false, v.b[2]); assert.equal(null, v.b[3])
    assert.equal("x", v.a)
    assert.equal(cj.object, getmetatable(v[""]))
    assert.equal(0, #v[""])
    assert.equal(cj.array, getmetatable(assert(cj.decode("[]"))))
  end)

  it("resolves every escape, surrogate pairs included", function()
    local v = assert(cj.decode([["\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00"]]))
    assert.equal('"\\/\b\f\n\r\tA\195\169\226\130\172\240\159\152\128', v)
    assert.equal("h\195\169", assert(cj.decode('"h\195\169"')))
  end)

  it("keeps integers exact and hands other numbers over as text", function()
    local v = assert(cj.decode("[0, -0, 9007199254740993, -9223372036854775808, 18446744073709551615, 1.5, 1e5]"))
    assert.equal(0, v[1])
    if is54 then
      assert.equal(math.tointeger(9007199254740993), v[3])
      assert.equal(math.mininteger, v[4])
    else
      assert.equal(cj.number, getmetatable(v[3]))
      assert.equal("9007199254740993", v[3].text)
    end
    assert.equal(cj.number, getmetatable(v[5]))
    assert.equal("18446744073709551615", v[5].text)
    assert.equal("1.5", v[6].text); assert.equal(1.5, v[6].value)
    assert.equal("1e5", v[7].text); assert.equal(100000, v[7].value)
  end)

  local bad = {
    { "", "$: unexpected end of input at byte 1" },
    { "{", "$: unexpected end of input at byte 2" },
    { "[1,]", "$[1]: unexpected character at byte 4" },
    { '{"a":1,}', "$: expected a string key at byte 8" },
    { '{"a" 1}', "$.a: expected ':' after an object key at byte 6" },
    { '{"a":1 "b":2}', "$.a: expected ',' or '}' at byte 8" },
    { "[1 2]", "$[0]: expected ',' or ']' at byte 4" },
    { '{"a":1,"a":2}', "$.a: duplicate key at byte 13" },
    { '{"x":{"a":[1,{"b":1,"b":2}]}}', "$.x.a[1].b: duplicate key at byte 26" },
    { "01", "$: invalid number at byte 1" },
    { "-", "$: invalid number at byte 1" },
    { "1.", "$: invalid number at byte 1" },
    { ".5", "$: unexpected character at byte 1" },
    { "+1", "$: unexpected character at byte 1" },
    { "1e", "$: invalid number at byte 1" },
    { "0x10", "$: invalid number at byte 1" },
    { "NaN", "$: unexpected character at byte 1" },
    { "Infinity", "$: unexpected character at byte 1" },
    { "tru", "$: unexpected character at byte 1" },
    { "truex", "$: unexpected character at byte 1" },
    { "nul", "$: unexpected character at byte 1" },
    { "'a'", "$: unexpected character at byte 1" },
    { "[1] x", "$: unexpected characters after the JSON value at byte 5" },
    { "{} {}", "$: unexpected characters after the JSON value at byte 4" },
    { '"abc', "$: unterminated string at byte 5" },
    { '"a\tb"', "$: control character in string at byte 3" },
    { '"\\x"', "$: invalid escape in string at byte 4" },
    { '"\\u12"', "$: truncated \\u escape at byte 4" },
    { '"\\ud800"', "$: unpaired surrogate in \\u escape at byte 8" },
    { '"\\udc00"', "$: unpaired surrogate in \\u escape at byte 8" },
    { '"\\ud800\\u0041"', "$: unpaired surrogate in \\u escape at byte 14" },
    { '"\255"', "$: invalid UTF-8 in string at byte 2" },
    { '"\192\128"', "$: invalid UTF-8 in string at byte 2" },     -- overlong NUL
    { '"\237\160\128"', "$: invalid UTF-8 in string at byte 2" }, -- encoded surrogate
    { '"\244\144\128\128"', "$: invalid UTF-8 in string at byte 2" }, -- above U+10FFFF
    { '{"k\255":1}', "$: invalid UTF-8 in string at byte 4" },
    { '{"a b":[1,tru]}', '$["a b"][1]: unexpected character at byte 11' },
  }
  for _, case in ipairs(bad) do
    it("rejects " .. ("%q"):format(case[1]), function()
      local v, err = cj.decode(case[1])
      assert.is_nil(v)
      assert.equal(case[2], err)
    end)
  end

  it("limits nesting without recursion in C", function()
    local deep = ("["):rep(300) .. ("]"):rep(300)
    local v, err = cj.decode(deep)
    assert.is_nil(v)
    assert.matches("nesting too deep", err)
    assert.truthy(cj.decode(deep, 300))
    assert.is_nil(cj.decode(("["):rep(100000)))
  end)
end)

describe("lgrpc.core.json writer", function()
  local function obj(...)
    local t = setmetatable({}, cj.object)
    local args = { ... }
    for i = 1, #args, 2 do t[#t + 1] = args[i]; t[args[i]] = args[i + 1] end
    return t
  end
  local function arr(...) return setmetatable({ ... }, cj.array) end

  it("writes Python's json.dumps(indent=2) layout, and compact output", function()
    local v = obj("a", arr(1, 2, obj()), "b", obj("c", null, "d", true), "e", arr(), "f", "x")
    assert.equal('{\n  "a": [\n    1,\n    2,\n    {}\n  ],\n  "b": {\n    "c": null,\n    "d": true\n  },\n  "e": [],\n  "f": "x"\n}',
      cj.encode(v, 2))
    assert.equal('{"a":[1,2,{}],"b":{"c":null,"d":true},"e":[],"f":"x"}', cj.encode(v))
  end)

  it("escapes like Python with ensure_ascii, or keeps UTF-8", function()
    local s = '"\\/\b\f\n\r\t\1\127h\195\169\240\159\152\128'
    assert.equal([["\"\\/\b\f\n\r\t\u0001\u007fh\u00e9\ud83d\ude00"]], cj.encode(s))
    assert.equal('"\\"\\\\/\\b\\f\\n\\r\\t\\u0001\127h\195\169\240\159\152\128"', cj.encode(s, 0, false))
  end)

  it("refuses invalid UTF-8, non-finite numbers and cycles", function()
    assert.same({ nil, "string is not valid UTF-8" }, { cj.encode("\255") })
    assert.same({ nil, "number is not finite" }, { cj.encode(arr(1 / 0)) })
    local t = arr(); t[1] = t
    local v, err = cj.encode(t)
    assert.is_nil(v)
    assert.matches("nesting too deep", err)
  end)

  it("formats doubles as Python's repr", function()
    local cases = {
      { 1.0, "1.0" }, { 0.1, "0.1" }, { -0.0, "-0.0" }, { 1e16, "1e+16" }, { 1e15, "1000000000000000.0" },
      { 1e-5, "1e-05" }, { 0.0001, "0.0001" }, { 123456789012345678, "1.2345678901234568e+17" },
      { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" }, { 2.5, "2.5" },
      { -1.5e-7, "-1.5e-07" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], cj.format_double(c[1])) end
    assert.is_nil(cj.format_double(0 / 0))
    -- float fields: the shortest text that reads back as the same float
    assert.equal("0.1", cj.format_double(cj.float32(0.1), true))
    assert.equal("3.4028235e+38", cj.format_double(cj.float32(3.4028234663852886e38), true))
    assert.equal("1.4013e-45", cj.format_double(cj.float32(1.401298464324817e-45), true))
    assert.is_nil(cj.float32(1e39))
  end)

  it("converts integers exactly", function()
    assert.equal(100000, cj.integer("1e5", "int32"))
    assert.equal(100000, cj.integer("100000.000", "int32"))
    assert.equal(-2147483648, cj.integer("-2147483648", "int32"))
    assert.same({ nil, "out of range" }, { cj.integer("2147483648", "int32") })
    assert.same({ nil, "out of range" }, { cj.integer("-1", "uint32") })
    assert.same({ nil, "not an integer" }, { cj.integer("1.5", "int64") })
    assert.same({ nil, "not a number" }, { cj.integer(" 1", "int64") })
    assert.same({ nil, "out of range" }, { cj.integer("18446744073709551616", "uint64") })
    assert.equal("18446744073709551615", cj.int_text("18446744073709551615", "uint64"))
    assert.equal("-9223372036854775808", cj.int_text("-9223372036854775808", "int64"))
    if is54 then
      assert.equal(-1, cj.integer("18446744073709551615", "uint64"))
      assert.equal("18446744073709551615", cj.int_text(-1, "uint64"))
      assert.equal(math.maxinteger, cj.integer("9223372036854775807", "int64"))
    else
      assert.equal("18446744073709551615", cj.integer("18446744073709551615", "uint64"))
      assert.equal(9007199254740992, cj.integer("9007199254740992", "int64"))
      assert.equal("9007199254740993", cj.integer("9007199254740993", "int64"))
    end
  end)

  it("encodes and decodes base64 (standard, URL-safe, unpadded)", function()
    assert.equal("", cj.base64_encode(""))
    assert.equal("/+8=", cj.base64_encode("\255\239"))
    assert.equal("\255\239", cj.base64_decode("/+8="))
    assert.equal("\255\239", cj.base64_decode("_-8"))
    assert.equal("hello", cj.base64_decode("aGVsbG8"))
    for _, bad in ipairs { "a", "aGVsbG8=x", "a===", "aG$s", "aG Vs" } do
      assert.same({ nil, "invalid base64" }, { cj.base64_decode(bad) })
    end
  end)
end)

describe("lgrpc.proto.json", function()
  local json = require "lgrpc.proto.json"
  local pool = require("json_pool").load { "jsontest.proto", "jsontest2.proto" }
  local K, W, L = "lgrpc.jsontest.Kitchen", "lgrpc.jsontest.Wkt", "lgrpc.jsontest2.Legacy"
  local function enc(t, msg, opts)
    opts = opts or {}
    if opts.indent == nil then opts.indent = 0 end
    return json.encode(pool, t, msg, opts)
  end
  local function dec(t, text, opts) return json.decode(pool, t, text, opts) end
  local function int64(s) return assert(cj.integer(s, "int64")) end
  local function uint64(s) return assert(cj.integer(s, "uint64")) end
  local function fails(t, text, expected, opts)
    local msg, err = dec(t, text, opts)
    assert.is_nil(msg)
    assert.equal(expected, err)
  end

  describe("encode", function()
    it("writes the routeguide example as python's MessageToJson does", function()
      assert.equal('{\n  "name": "x",\n  "location": {\n    "latitude": 409146138,\n    "longitude": -746188906\n  }\n}',
        json.encode(pool, "lgrpc.jsontest.Feature", { name = "x", location = { latitude = 409146138, longitude = -746188906 } }))
    end)

    it("uses json names, or proto names on request", function()
      local m = { snake_case_name = 1, x__double__underscore = 2, trailing_ = 3, digit_9after = 4, Capitalized_Name = 5, renamed = 6 }
      assert.equal('{"snakeCaseName":1,"xDoubleUnderscore":2,"trailing":3,"digit9after":4,"CapitalizedName":5,"otherName":6}', enc(K, m))
      assert.equal('{"snake_case_name":1,"x__double__underscore":2,"trailing_":3,"digit_9after":4,"Capitalized_Name":5,"renamed":6}',
        enc(K, m, { proto_names = true }))
    end)

    it("writes 64-bit integers as strings, exactly, from every representation", function()
      assert.equal('{"fInt64":"-9223372036854775808","fUint64":"18446744073709551615"}',
        enc(K, { f_int64 = int64("-9223372036854775808"), f_uint64 = uint64("18446744073709551615") }))
      assert.equal('{"fInt64":"9007199254740993","fUint64":"1"}', enc(K, { f_int64 = "9007199254740993", f_uint64 = "1" }))
      if not is54 then
        local i, u = load("return -2LL, 18446744073709551615ULL")() -- LuaJIT cdata literals
        assert.equal('{"fInt64":"-2","fUint64":"18446744073709551615"}', enc(K, { f_int64 = i, f_uint64 = u }))
      end
      assert.same({ nil, "$.fInt32: integer out of range for int32" }, { enc(K, { f_int32 = 2 ^ 31 }) })
      assert.same({ nil, "$.fUint32: integer out of range for uint32" }, { enc(K, { f_uint32 = -1 }) })
      assert.same({ nil, "$.fInt64: expected an integer" }, { enc(K, { f_int64 = 1.5 }) })
      assert.same({ nil, "$.fInt64: expected an integer" }, { enc(K, { f_int64 = "12x" }) })
    end)

    it("writes floats the way python does, with NaN and infinities as strings", function()
      assert.equal('{"fFloat":0.1,"fDouble":1.0}', enc(K, { f_float = 0.1, f_double = 1 }))
      assert.equal('{"rFloat":["NaN","Infinity","-Infinity",3.4028235e+38],"rDouble":[1e+16,-0.0,5e-324]}',
        enc(K, { r_float = { 0 / 0, 1 / 0, -1 / 0, 3.4028234663852886e38 }, r_double = { 1e16, -0.0, 5e-324 } }))
    end)

    it("writes bytes as standard base64 and enums by name or number", function()
      assert.equal('{"fBytes":"/+8=","fColor":"INFRARED","rColor":["RED",7]}',
        enc(K, { f_bytes = "\255\239", f_color = -1, r_color = { "RED", 7 } }))
      assert.equal('{"fColor":-1,"rColor":[1,7]}', enc(K, { f_color = "INFRARED", r_color = { "RED", 7 } }, { enums = "number" }))
      assert.same({ nil, '$.fColor: unknown value "BLUE" for enum lgrpc.jsontest.Color' }, { enc(K, { f_color = "BLUE" }) })
      assert.same({ nil, "$.e: value 9 is not in closed enum lgrpc.jsontest2.Closed" }, { enc(L, { e = 9 }) })
    end)

    it("skips proto3 defaults unless emit_defaults, and keeps explicit presence", function()
      assert.equal("{}", enc(K, { f_int32 = 0, f_string = "", f_bool = false, f_color = "COLOR_UNSPECIFIED", r_int32 = {}, m_bool_bool = {} }))
      assert.equal('{"oInt32":0,"cUint32":0}', enc(K, { o_int32 = 0, c_uint32 = 0 }))
      assert.equal('{"latitude":0,"longitude":0}', enc("lgrpc.jsontest.Point", {}, { emit_defaults = true }))
      assert.equal('{"a":7,"e":"TWO","s":"hi","r":[],"d":1.5,"big":"-9007199254740993"}', enc(L, {}, { emit_defaults = true }))
      assert.equal('{"a":0}', enc(L, { a = 0 }))
    end)

    it("sorts map keys and writes them as strings", function()
      assert.equal('{"mInt32Int32":{"-10":3,"-1":2,"3":0,"10":1},"mBoolBool":{"false":true,"true":false}}',
        enc(K, { m_int32_int32 = { [10] = 1, [3] = 0, [-1] = 2, [-10] = 3 }, m_bool_bool = { [true] = false, [false] = true } }))
      assert.equal('{"mStringString":{"":"e","B":"b","a":"a"}}', enc(K, { m_string_string = { a = "a", B = "b", [""] = "e" } }))
    end)

    it("writes groups and extensions", function()
      assert.equal('{"a":1,"grp":{"x":2},"[lgrpc.jsontest2.ext_int]":5,"[lgrpc.jsontest2.ext_enum]":"ONE"}',
        enc(L, { a = 1, grp = { x = 2 }, ["[lgrpc.jsontest2.ext_int]"] = 5, ["[lgrpc.jsontest2.ext_enum]"] = "ONE" }))
    end)

    it("ignores unknown wire fields", function()
      assert.equal('{"fInt32":1}', enc(K, { f_int32 = 1, ["$unknown"] = "\8\1" }))
    end)

    it("escapes non-ASCII unless ascii = false, and refuses invalid UTF-8 with its path", function()
      assert.equal('{"fString":"\\u00e9\\ud83d\\ude00"}', enc(K, { f_string = "\195\169\240\159\152\128" }))
      assert.equal('{"fString":"\195\169"}', enc(K, { f_string = "\195\169" }, { ascii = false }))
      assert.same({ nil, "$.rString[1]: string field holds invalid UTF-8" }, { enc(K, { r_string = { "a", "\255" } }) })
    end)

    it("reports wrong Lua types with the JSON path", function()
      assert.same({ nil, "$.fPoint.latitude: expected an integer, got boolean" }, { enc(K, { f_point = { latitude = true } }) })
      assert.same({ nil, "$.fPoint: expected a table for message lgrpc.jsontest.Point, got string" }, { enc(K, { f_point = "x" }) })
      assert.same({ nil, "$.rInt32: expected an array for repeated field r_int32" }, { enc(K, { r_int32 = 5 }) })
      assert.same({ nil, "$.fBool: expected a boolean, got number" }, { enc(K, { f_bool = 1 }) })
      assert.same({ nil, 'unknown message type "no.Such"' }, { enc("no.Such", {}) })
      assert.has_error(function() json.encode(pool, K, "x") end, "json.encode: message table expected")
      assert.has_error(function() json.decode(pool, K, {}) end, "json.decode: JSON text expected")
      local loop = {}
      loop.child = loop
      local text, err = enc("lgrpc.jsontest.Node", loop)
      assert.is_nil(text)
      assert.matches("nested too deep", err)
    end)
  end)

  describe("decode", function()
    it("accepts json names and proto names", function()
      assert.same({ snake_case_name = 1, renamed = 2, trailing_ = 3 },
        dec(K, '{"snakeCaseName": 1, "otherName": 2, "trailing_": 3}'))
      assert.same({ f_point = { latitude = 5 } }, dec(K, '{"f_point": {"latitude": 5}}'))
      assert.same({ f_int32 = 1 }, dec(K, '{"f\\u0049nt32": 1}'))
    end)

    it("reads integers exactly from numbers and strings", function()
      local m = assert(dec(K, '{"fInt32": "-2147483648", "fInt64": "-9223372036854775808", "fUint64": 18446744073709551615, '
        .. '"fUint32": 1e5, "fSint32": 100000.000, "fSfixed32": "1e2", "fFixed64": "9007199254740993", "fSint64": -0}'))
      assert.equal(-2147483648, m.f_int32)
      assert.equal(int64("-9223372036854775808"), m.f_int64)
      assert.equal(uint64("18446744073709551615"), m.f_uint64)
      assert.equal(100000, m.f_uint32)
      assert.equal(100000, m.f_sint32)
      assert.equal(100, m.f_sfixed32)
      assert.equal(uint64("9007199254740993"), m.f_fixed64)
      assert.equal(0, m.f_sint64)
    end)

    it("reads floats, with NaN, Infinity and quoted numbers", function()
      local m = assert(dec(K, '{"rDouble": ["NaN", "Infinity", "-Infinity", "1.5", 2, 1e308], "fFloat": 3.4028235e+38}'))
      assert.is_true(m.r_double[1] ~= m.r_double[1])
      assert.equal(1 / 0, m.r_double[2]); assert.equal(-1 / 0, m.r_double[3])
      assert.equal(1.5, m.r_double[4]); assert.equal(2, m.r_double[5]); assert.equal(1e308, m.r_double[6])
      assert.equal(3.4028234663852886e38, m.f_float)
      if is54 then assert.equal("float", math.type(m.r_double[5])) end
      assert.equal(cj.float32(0.1), dec(K, '{"fFloat": 0.1}').f_float)
    end)

    it("reads bytes in standard or URL-safe base64, padded or not", function()
      assert.same({ f_bytes = "\255\239", r_bytes = { "\255\239", "\255\239", "" } },
        dec(K, '{"fBytes": "/+8=", "rBytes": ["_-8", "/+8", ""]}'))
    end)

    it("reads enums by name or number", function()
      assert.same({ f_color = "RED", r_color = { "GREEN", 7, "INFRARED" } }, dec(K, '{"fColor": "RED", "rColor": [2, 7, -1]}'))
      assert.same({ e = "ONE" }, dec(L, '{"e": 1}'))
    end)

    it("reads enum aliases as the first name declared for the number", function()
      assert.same({ a = "ALIAS_TWO", r = { "ALIAS_TWO", "ALIAS_TWO", "ALIAS_ZERO" } },
        dec("lgrpc.jsontest.WithAlias", '{"a": "deux", "r": ["DEUX", 2, "ALIAS_ZERO"]}'))
      assert.equal('{"a":"ALIAS_TWO","r":["ALIAS_TWO","ALIAS_TWO"]}', enc("lgrpc.jsontest.WithAlias", { a = "deux", r = { "DEUX", 2 } }))
    end)

    it("reads maps with typed keys", function()
      local m = assert(dec(K, '{"mInt64Int64": {"-5": "6"}, "mBoolBool": {"true": false}, "mUint64Uint64": {"18446744073709551615": 1}, '
        .. '"mStringPoint": {"a": {"latitude": 1}}}'))
      assert.equal(6, m.m_int64_int64[-5])
      assert.equal(false, m.m_bool_bool[true])
      assert.equal(1, m.m_uint64_uint64[uint64("18446744073709551615")])
      assert.same({ a = { latitude = 1 } }, m.m_string_point)
    end)

    it("treats null as absent, except for Value and NullValue", function()
      assert.same({}, dec(K, '{"fInt32": null, "fPoint": null, "rInt32": null, "mBoolBool": null, "cString": null, "fColor": null}'))
      assert.same({ value = { null_value = "NULL_VALUE" }, null_value = "NULL_VALUE", r_value = { { null_value = "NULL_VALUE" } },
        m_value = { k = { null_value = "NULL_VALUE" } } },
        dec(W, '{"value": null, "nullValue": null, "rValue": [null], "mValue": {"k": null}, "int32Value": null}'))
      assert.same({ c_uint32 = 1 }, dec(K, '{"cString": null, "cUint32": 1}'))
    end)

    it("skips unknown fields and enum names with ignore_unknown", function()
      local opts = { ignore_unknown = true }
      assert.same({ f_int32 = 1 }, dec(K, '{"fInt32": 1, "nope": {"deep": [1]}, "fColor": "BLUE"}', opts))
      assert.same({ r_color = { "RED" }, m_string_color = { b = "GREEN" } },
        dec(K, '{"rColor": ["BLUE", "RED"], "mStringColor": {"a": "BLUE", "b": "GREEN"}}', opts))
      assert.same({}, dec(L, '{"e": 9}', opts))
    end)

    it("reads extensions and groups", function()
      assert.same({ grp = { x = 1 }, ["[lgrpc.jsontest2.ext_int]"] = 4 }, dec(L, '{"grp": {"x": 1}, "[lgrpc.jsontest2.ext_int]": 4}'))
    end)

    local cases = {
      -- syntax, reported by the C reader with the path it was reading
      { K, '{"fInt32": 1,}', "$: expected a string key at byte 14" },
      { K, '{"fPoint": {"latitude": 01}}', "$.fPoint.latitude: invalid number at byte 25" },
      { K, '{"fString": "\\ud800"}', "$.fString: unpaired surrogate in \\u escape at byte 20" },
      { K, '{"fString": "a\255"}', "$.fString: invalid UTF-8 in string at byte 15" },
      { K, '{"fInt32": 1} x', "$: unexpected characters after the JSON value at byte 15" },
      { K, '{"fInt32": 1, "fInt32": 2}', "$.fInt32: duplicate key at byte 26" },
      { K, "[]", "$: expected an object for message lgrpc.jsontest.Kitchen" },
      -- duplicates across names and oneofs
      { K, '{"fInt32": 1, "f_int32": 2}', '$.f_int32: field given twice (also as "fInt32")' },
      { K, '{"cString": "a", "cUint32": 2}', '$.cUint32: oneof choice already set by "cString"' },
      { K, '{"nope": 1}', '$: message lgrpc.jsontest.Kitchen has no field named "nope"' },
      -- wrong types
      { "lgrpc.jsontest.Feature", '{"location": {"latitude": "x"}}', '$.location.latitude: expected an integer, got "x"' },
      { "lgrpc.jsontest.Feature", '{"location": {"latitude": true}}', "$.location.latitude: expected an integer" },
      { K, '{"fInt32": 1.5}', "$.fInt32: expected an integer, got 1.5" },
      { K, '{"fInt32": " 1"}', '$.fInt32: expected an integer, got " 1"' },
      { K, '{"fInt32": "0x10"}', '$.fInt32: expected an integer, got "0x10"' },
      { K, '{"fInt32": 2147483648}', "$.fInt32: integer out of range for int32" },
      { K, '{"fUint32": -1}', "$.fUint32: integer out of range for uint32" },
      { K, '{"fInt64": "9223372036854775808"}', "$.fInt64: integer out of range for int64" },
      { K, '{"fUint64": "18446744073709551616"}', "$.fUint64: integer out of range for uint64" },
      { K, '{"fFloat": 3.5e38}', "$.fFloat: number out of range for float" },
      { K, '{"fDouble": 1e309}', "$.fDouble: number out of range" },
      { K, '{"fDouble": "nan"}', '$.fDouble: expected a number, got "nan"' },
      { K, '{"fDouble": true}', "$.fDouble: expected a number" },
      { K, '{"fBool": "true"}', "$.fBool: expected true or false" },
      { K, '{"fString": 1}', "$.fString: expected a string" },
      { K, '{"fBytes": "a"}', "$.fBytes: invalid base64" },
      { K, '{"fBytes": "ab$="}', "$.fBytes: invalid base64" },
      { K, '{"fColor": "BLUE"}', '$.fColor: unknown value "BLUE" for enum lgrpc.jsontest.Color' },
      { K, '{"fColor": true}', "$.fColor: expected an enum value name or number" },
      { L, '{"e": 9}', "$.e: value 9 is not in closed enum lgrpc.jsontest2.Closed" },
      { K, '{"rInt32": 1}', "$.rInt32: expected an array for repeated field r_int32" },
      { K, '{"rInt32": [1, null]}', "$.rInt32[1]: null is not allowed in a repeated field" },
      { K, '{"rPoint": [null]}', "$.rPoint[0]: null is not allowed in a repeated field" },
      { K, '{"mInt32Int32": []}', "$.mInt32Int32: expected an object for map field m_int32_int32" },
      { K, '{"mInt32Int32": {"a": 1}}', '$.mInt32Int32.a: map key "a" is not an integer' },
      { K, '{"mInt32Int32": {"1": null}}', "$.mInt32Int32.1: null is not allowed as a map value" },
      { K, '{"mInt32Int32": {"0": 1, "-0": 2}}', "$.mInt32Int32.-0: duplicate map key" },
      { K, '{"mBoolBool": {"True": true}}', '$.mBoolBool.True: map key "True" is not true or false' },
      { K, '{"mUint32Uint32": {"4294967296": 1}}', '$.mUint32Uint32.4294967296: map key "4294967296" is not in range for uint32' },
      { K, '{"fPoint": 1}', "$.fPoint: expected an object for message lgrpc.jsontest.Point" },
      { K, "null", "$: expected an object for message lgrpc.jsontest.Kitchen" },
      { K, '{"mStringPoint": {"ok": {}, "a b": {"latitude": "x"}}}', '$.mStringPoint["a b"].latitude: expected an integer, got "x"' },
      { K, '{"rPoint": [{}, {"latitude": [1]}]}', "$.rPoint[1].latitude: expected an integer" },
      { W, '{"rTimestamp": ["1970-01-01T00:00:00Z", "bad"]}', '$.rTimestamp[1]: invalid timestamp "bad"' },
      { W, '{"mValue": {"k": {"x": [1, 1e400]}}}', "$.mValue.k.x[1]: number out of range" },
    }
    for _, c in ipairs(cases) do
      it("rejects " .. c[2], function() fails(c[1], c[2], c[3]) end)
    end

    it("limits message nesting", function()
      local deep = ('{"child":'):rep(150) .. "{}" .. ("}"):rep(150)
      local m, err = dec("lgrpc.jsontest.Node", deep)
      assert.is_nil(m)
      assert.matches("nested too deep", err)
      assert.truthy(dec("lgrpc.jsontest.Node", deep, { max_depth = 200 }))
    end)
  end)

  describe("well-known types", function()
    local function wkt(field, text) return assert(dec(W, '{"' .. field .. '": ' .. text .. "}")) end
    local function wkt_text(msg) return assert(enc(W, msg)) end

    it("Timestamp: RFC 3339, any offset in, Z and 0/3/6/9 digits out", function()
      assert.same({ seconds = 1, nanos = 0 }, wkt("timestamp", '"1970-01-01T08:00:01+08:00"').timestamp)
      assert.same({ seconds = 1, nanos = 0 }, wkt("timestamp", '"1969-12-31T16:00:01-08:00"').timestamp)
      assert.same({ seconds = -62135596800, nanos = 0 }, wkt("timestamp", '"0001-01-01T00:00:00Z"').timestamp)
      assert.same({ seconds = 253402300799, nanos = 999999999 }, wkt("timestamp", '"9999-12-31T23:59:59.999999999Z"').timestamp)
      assert.same({ seconds = -2, nanos = 999999999 }, wkt("timestamp", '"1969-12-31T23:59:58.999999999Z"').timestamp)
      assert.same({ seconds = 253402300739, nanos = 0 }, wkt("timestamp", '"9999-12-31T23:59:59+00:01"').timestamp)
      assert.same({ seconds = 729302400, nanos = 10000000 }, wkt("timestamp", '"1993-02-10T00:00:00.01Z"').timestamp)
      assert.equal('{"timestamp":"1970-01-01T00:00:00Z"}', wkt_text { timestamp = { seconds = 0 } })
      assert.equal('{"timestamp":"1970-01-01T00:00:00.010Z"}', wkt_text { timestamp = { nanos = 10000000 } })
      assert.equal('{"timestamp":"1970-01-01T00:00:00.000010Z"}', wkt_text { timestamp = { nanos = 10000 } })
      assert.equal('{"timestamp":"1969-12-31T23:59:59.000000001Z"}', wkt_text { timestamp = { seconds = -1, nanos = 1 } })
      assert.equal('{"timestamp":"0001-01-01T00:00:00Z"}', wkt_text { timestamp = { seconds = -62135596800 } })
      assert.equal('{"timestamp":"2000-02-29T12:00:00Z"}', wkt_text { timestamp = { seconds = 951825600 } })
      for _, bad in ipairs { "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "0001-01-01T00:00:00", "0001-01-01 00:00:00Z",
        "0001-01-01T00:00:00z", "0001-01-01t00:00:00Z", "1970-01-01T08:00:01+0800", "1970-02-30T00:00:00Z",
        "1970-01-01T24:00:00Z", "1970-01-01T00:00:00.Z", "1970-01-01T00:00:00.1234567890Z", "0001-01-01T00:00:00+00:01" } do
        local m, err = dec(W, '{"timestamp": "' .. bad .. '"}')
        assert.is_nil(m, bad)
        assert.matches("^%$%.timestamp: ", err)
      end
      assert.same({ nil, "$.timestamp: expected an RFC 3339 timestamp string" }, { dec(W, '{"timestamp": 0}') })
      assert.same({ nil, "$.timestamp: Timestamp seconds out of range (years 1 to 9999)" }, { enc(W, { timestamp = { seconds = 253402300800 } }) })
      assert.same({ nil, "$.timestamp: Timestamp nanos out of range" }, { enc(W, { timestamp = { seconds = 1, nanos = -1 } }) })
    end)

    it("Duration: decimal seconds with an s", function()
      assert.same({ seconds = -1, nanos = -500000000 }, wkt("duration", '"-1.5s"').duration)
      assert.same({ seconds = 0, nanos = -1000 }, wkt("duration", '"-0.000001s"').duration)
      assert.same({ seconds = 315576000000, nanos = 999999999 }, wkt("duration", '"315576000000.999999999s"').duration)
      assert.same({ seconds = -315576000000, nanos = -999999999 }, wkt("duration", '"-315576000000.999999999s"').duration)
      assert.equal('{"duration":"-1.500s"}', wkt_text { duration = { seconds = -1, nanos = -500000000 } })
      assert.equal('{"duration":"-0.000000001s"}', wkt_text { duration = { nanos = -1 } })
      assert.equal('{"duration":"0s"}', wkt_text { duration = {} })
      assert.equal('{"duration":"315576000000s"}', wkt_text { duration = { seconds = 315576000000 } })
      for _, bad in ipairs { "1", "315576000001s", "-315576000001s", "1.s", ".5s", "+1s", "1.0000000001s", "1 s", "1e3s" } do
        local m, err = dec(W, '{"duration": "' .. bad .. '"}')
        assert.is_nil(m, bad)
        assert.matches("^%$%.duration: ", err)
      end
      assert.same({ nil, "$.duration: Duration seconds out of range" }, { enc(W, { duration = { seconds = 315576000001 } }) })
      assert.same({ nil, "$.duration: Duration seconds and nanos have different signs" }, { enc(W, { duration = { seconds = 1, nanos = -1 } }) })
    end)

    it("FieldMask: comma-separated lowerCamel paths", function()
      assert.same({ paths = { "foo", "bar_baz.qux_quux" } }, wkt("fieldMask", '"foo,barBaz.quxQuux"').field_mask)
      assert.same({ paths = {} }, wkt("fieldMask", '""').field_mask)
      assert.equal('{"fieldMask":"foo,barBaz.quxQuux"}', wkt_text { field_mask = { paths = { "foo", "bar_baz.qux_quux" } } })
      for _, p in ipairs { "fooBar", "foo_3_bar", "foo__bar", "foo_" } do
        local t, err = enc(W, { field_mask = { paths = { p } } })
        assert.is_nil(t, p)
        assert.matches("^%$%.fieldMask: FieldMask path", err)
      end
      assert.same({ nil, '$.fieldMask: invalid FieldMask path "foo_bar"' }, { dec(W, '{"fieldMask": "foo_bar"}') })
    end)

    it("wrappers: bare values, null meaning absent", function()
      local m = wkt("int64Value", '"5", "boolValue": false, "stringValue": "", "bytesValue": "AA==", "floatValue": "NaN", "uint32Value": null')
      assert.same({ value = 5 }, m.int64_value)
      assert.same({ value = false }, m.bool_value)
      assert.same({ value = "" }, m.string_value)
      assert.same({ value = "\0" }, m.bytes_value)
      assert.is_nil(m.uint32_value)
      assert.equal('{"int64Value":"0","boolValue":false,"stringValue":""}',
        wkt_text { int64_value = {}, bool_value = { value = false }, string_value = {} })
      assert.equal('{"rInt64Value":["1","-2"]}', wkt_text { r_int64_value = { { value = 1 }, { value = -2 } } })
      assert.equal('{"mInt32Value":{"a":0}}', wkt_text { m_int32_value = { a = {} } })
      assert.same({ nil, "$.int32Value: expected an integer" }, { dec(W, '{"int32Value": {"value": 1}}') })
    end)

    it("Struct, Value and ListValue: JSON as it is", function()
      local text = '{"struct": {"a": [1, "x", null, true, {"b": {}}], "c": 1.5}, "value": "s", "listValue": [[], {}]}'
      local m = assert(dec(W, text))
      assert.same({ fields = {
        a = { list_value = { values = { { number_value = 1 }, { string_value = "x" }, { null_value = "NULL_VALUE" }, { bool_value = true },
          { struct_value = { fields = { b = { struct_value = { fields = {} } } } } } } } },
        c = { number_value = 1.5 } } }, m.struct)
      assert.same({ string_value = "s" }, m.value)
      assert.same({ values = { { list_value = { values = {} } }, { struct_value = { fields = {} } } } }, m.list_value)
      assert.equal('{"struct":{"a":[1.0,"x",null,true,{"b":{}}],"c":1.5},"value":"s","listValue":[[],{}]}', wkt_text(m))
      assert.equal('{"value":null}', wkt_text { value = {} })
      -- as protobuf's conformance suite requires (python's json_format would write "Infinity")
      assert.same({ nil, "$.value: Value number_value cannot be NaN or Infinity in JSON" }, { enc(W, { value = { number_value = 1 / 0 } }) })
      assert.same({ nil, "$.struct.n: Value number_value cannot be NaN or Infinity in JSON" },
        { enc(W, { struct = { fields = { n = { number_value = 0 / 0 } } } }) })
      assert.same({ nil, "$.struct: expected an object for google.protobuf.Struct" }, { dec(W, '{"struct": [1]}') })
      assert.same({ nil, "$.listValue: expected an array for google.protobuf.ListValue" }, { dec(W, '{"listValue": {}}') })
      assert.same({ nil, "$.value.a[0]: number out of range" }, { dec(W, '{"value": {"a": [1e999]}}') })
      assert.same({ nil, "$.value: Value has both number_value and string_value set" },
        { enc(W, { value = { number_value = 1, string_value = "x" } }) })
    end)

    it("Empty: {}", function()
      assert.equal('{"empty":{}}', wkt_text { empty = {} })
      assert.same({ empty = {} }, dec(W, '{"empty": {}}'))
      assert.same({ nil, '$.empty: message google.protobuf.Empty has no field named "x"' }, { dec(W, '{"empty": {"x": 1}}') })
    end)

    describe("Any", function()
      local function any_ok()
        if not pool:has_codec() then pending("needs lgrpc.proto.codec for the packed bytes") return false end
        return true
      end

      it("packs a message: @type anywhere, then its fields", function()
        if not any_ok() then return end
        local m = assert(dec(W, '{"any": {"latitude": 1, "@type": "type.googleapis.com/lgrpc.jsontest.Point", "longitude": 2}}'))
        assert.equal("type.googleapis.com/lgrpc.jsontest.Point", m.any.type_url)
        assert.same({ latitude = 1, longitude = 2 }, pool:decode("lgrpc.jsontest.Point", m.any.value))
        assert.equal('{"any":{"@type":"type.googleapis.com/lgrpc.jsontest.Point","latitude":1,"longitude":2}}', wkt_text(m))
      end)

      it("packs well-known types under value, and nests", function()
        if not any_ok() then return end
        local text = '{"any":{"@type":"type.googleapis.com/google.protobuf.Any","value":'
          .. '{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1.500s"}}}'
        local m = assert(dec(W, text))
        assert.equal(text, wkt_text(m))
        local e = assert(dec(W, '{"any": {"@type": "type.googleapis.com/google.protobuf.Empty"}}'))
        assert.equal('{"any":{"@type":"type.googleapis.com/google.protobuf.Empty"}}', wkt_text(e))
        assert.equal('{"any":{}}', wkt_text(assert(dec(W, '{"any": {}}'))))
      end)

      it("rejects what it cannot resolve", function()
        if not any_ok() then return end
        assert.same({ nil, "$.any: Any without @type" }, { dec(W, '{"any": {"latitude": 1}}') })
        assert.same({ nil, '$.any.@type: Any type "type.googleapis.com/no.Such" is not in the pool' },
          { dec(W, '{"any": {"@type": "type.googleapis.com/no.Such"}}') })
        assert.same({ nil, '$.any: message lgrpc.jsontest.Point has no field named "x"' },
          { dec(W, '{"any": {"@type": "type.googleapis.com/lgrpc.jsontest.Point", "x": 1}}') })
        assert.same({ nil, '$.any: unexpected member "x" in an Any holding google.protobuf.Duration (expected "value")' },
          { dec(W, '{"any": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s", "x": 1}}') })
      end)
    end)
  end)

  describe("through lgrpc.proto pools", function()
    it("pool:json_encode and pool:json_decode use this mapping", function()
      local proto = require "lgrpc.proto"
      local p = proto.pool { include = { (os.getenv("LGRPC_TOP") or ".") .. "/spec/fixtures/json" } }
      assert(p:load { "jsontest.proto" })
      local text = assert(p:json_encode("lgrpc.jsontest.Feature", { name = "n", location = { latitude = 1 } }, { indent = 0 }))
      assert.equal('{"name":"n","location":{"latitude":1}}', text)
      assert.same({ name = "n", location = { latitude = 1 } }, p:json_decode("lgrpc.jsontest.Feature", text))
      assert.same({ nil, "$.location.latitude: expected an integer" },
        { p:json_decode("lgrpc.jsontest.Feature", '{"location": {"latitude": true}}') })
      local m = assert(p:json_decode("lgrpc.jsontest.Wkt", '{"any": {"@type": "type.googleapis.com/lgrpc.jsontest.Point", "latitude": 3}}'))
      assert.equal('{"any":{"@type":"type.googleapis.com/lgrpc.jsontest.Point","latitude":3}}', p:json_encode("lgrpc.jsontest.Wkt", m, { indent = 0 }))
    end)

    it("prints a proto2 bytes default with escapes as the bytes it stands for", function()
      local p = require("lgrpc.proto").pool {}
      assert(p:load_string("d.proto", 'syntax = "proto2"; message D { optional bytes b = 1 [default = "a\\000\\377\\n"]; }'))
      assert.equal('{"b":"YQD/Cg=="}', p:json_encode("D", {}, { indent = 0, emit_defaults = true }))
    end)
  end)
end)

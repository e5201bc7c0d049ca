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

-- bin/lgrpc: help, and encode/decode between JSON or Lua literals and binary (hex, base64).
-- descriptor-set has its own spec beside protoc (cli_descriptor_set_spec.lua).
local corpus = require "corpus"

local q = corpus.q
local LGRPC = corpus.interpreter() .. " " .. q(corpus.top() .. "/bin/lgrpc")

local PROTO = [[
syntax = "proto3";
package demo;
enum Kind { KIND_UNSET = 0; KIND_BIG = 1; }
message Point { int32 latitude = 1; int32 longitude = 2; }
message Thing {
  string name = 1;
  int64 id = 2;
  Kind kind = 3;
  repeated Point path = 4;
  bytes blob = 5;
  map<string, string> labels = 6;
}
]]

-- Runs `lgrpc ARGS` with INPUT on stdin; returns exit status, stdout, stderr.
local function lgrpc(args, input)
  local inp = os.tmpname()
  corpus.write_file(inp, input or "")
  local status, out, err = corpus.run(LGRPC .. " " .. args .. " <" .. q(inp), true)
  os.remove(inp)
  return status, out, err
end

describe("bin/lgrpc", function()
  local dir, schema
  setup(function()
    dir = corpus.tmpdir()
    corpus.write_file(dir .. "/demo.proto", PROTO)
    schema = "-I " .. q(dir) .. " --proto=demo.proto"
  end)
  teardown(function() corpus.rmdir(dir) end)

  it("prints help, per-command help, and refuses unknown commands", function()
    local st, out = lgrpc("--help")
    assert.equal(0, st)
    assert.matches("descriptor%-set", out)
    assert.matches("encode", out)
    st, out = lgrpc("help encode")
    assert.equal(0, st)
    assert.matches("Usage: lgrpc encode", out)
    st, out = lgrpc("decode --help")
    assert.equal(0, st)
    assert.matches("Usage: lgrpc decode", out)
    local err
    st, out, err = lgrpc("frobnicate")
    assert.equal(1, st)
    assert.matches("Unknown command: frobnicate", err)
  end)

  it("encodes JSON to binary, hex and base64", function()
    local json = '{"name": "x", "id": "9007199254740993", "kind": "KIND_BIG", "path": [{"latitude": 1}]}'
    local st, hex, err = lgrpc("encode " .. schema .. " demo.Thing --output=hex", json)
    assert.equal(0, st, err)
    assert.equal("0a0178108180808080808010180122020801", (hex:gsub("%s", "")))
    local st2, bin = lgrpc("encode " .. schema .. " demo.Thing", json)
    assert.equal(0, st2)
    assert.equal(hex:gsub("%s", ""), (bin:gsub(".", function(c) return ("%02x"):format(c:byte()) end)))
    local st3, b64 = lgrpc("encode " .. schema .. " demo.Thing --output=base64", json)
    assert.equal(0, st3)
    assert.equal("CgF4EIGAgICAgIAQGAEiAggB", (b64:gsub("%s", "")))
  end)

  it("decodes binary to JSON by default, exactly, and to a Lua literal on request", function()
    local st, out, err = lgrpc("decode " .. schema .. " demo.Thing --input=base64", "CgF4EIGAgICAgIAQGAEiAggB\n")
    assert.equal(0, st, err)
    assert.equal('{\n  "name": "x",\n  "id": "9007199254740993",\n  "kind": "KIND_BIG",\n' ..
      '  "path": [\n    {\n      "latitude": 1\n    }\n  ]\n}\n', out)
    st, out = lgrpc("decode " .. schema .. " demo.Thing --input=hex --output=lua --enums=number",
      "0a 01 78 18 01")
    assert.equal(0, st)
    assert.equal('{\n  kind = 1,\n  name = "x"\n}\n', out)
  end)

  it("round-trips a Lua literal, bytes and maps included", function()
    local lit = '{ name = "\\195\\169", blob = "\\0\\255", labels = { a = "1", b = "2" }, kind = "KIND_BIG" }'
    local st, hex, err = lgrpc("encode " .. schema .. " demo.Thing --input=lua --output=hex", lit)
    assert.equal(0, st, err)
    local out
    st, out, err = lgrpc("decode " .. schema .. " demo.Thing --input=hex --output=lua", hex)
    assert.equal(0, st, err)
    local back = assert(load("return " .. out))()
    assert.same({ name = "\195\169", blob = "\0\255", labels = { a = "1", b = "2" }, kind = "KIND_BIG" }, back)
  end)

  it("reports bad input with a clear message and exit status 1, never a traceback", function()
    local cases = {
      { "encode " .. schema .. " demo.Thing", '{"name": 5}', "name" },
      { "encode " .. schema .. " demo.Thing", '{"nope": 1}', "nope" },
      { "encode " .. schema .. " demo.Thing --input=lua", "{ name = ", "" },
      { "decode " .. schema .. " demo.Thing --input=hex", "0a05", "truncated" },
      { "decode " .. schema .. " demo.Thing --input=hex", "zz", "not hex" },
      { "decode " .. schema .. " demo.Nope", "", 'Unknown message type "demo.Nope"' },
      { "decode " .. schema .. " demo.Thing --output=xml", "", "%-%-output" },
      { "decode -I " .. q(dir) .. " --proto=missing.proto demo.Thing", "", "missing%.proto" },
      { "encode demo.Thing", "{}", "no schema" },
    }
    for _, c in ipairs(cases) do
      local st, out, err = lgrpc(c[1], c[2])
      assert.equal(1, st, c[1] .. " <<< " .. c[2])
      assert.equal("", out)
      assert.matches(c[3], err)
      assert.is_false(corpus.has_traceback(err), err)
    end
  end)

  it("takes the schema from a descriptor set", function()
    local pb = dir .. "/demo.pb"
    local st, _, err = corpus.run(LGRPC .. " descriptor-set -I " .. q(dir) .. " -o " .. q(pb) .. " demo.proto", true)
    assert.equal(0, st, err)
    local out
    st, out, err = lgrpc("decode --descriptor_set_in=" .. q(pb) .. " demo.Point --input=hex", "0801")
    assert.equal(0, st, err)
    assert.equal('{\n  "latitude": 1\n}\n', out)
  end)
end)

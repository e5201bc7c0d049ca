-- lgrpc.proto: schema pools as values — loading, lookups, descriptor sets in and out, and the
-- codec entry points with their errors.
local proto = require "lgrpc.proto"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p))
  return p
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function protoc(args)
  local out = os.tmpname()
  local cmd = "env -u LD_PRELOAD protoc " .. args .. " --descriptor_set_out=" .. out .. " 2>/dev/null"
  local ok = os.execute(cmd)
  assert(ok == true or ok == 0, "protoc failed: " .. cmd)
  local bytes = read(out)
  os.remove(out)
  return bytes
end

local ROUTE = [[
syntax = "proto3";
package routeguide;
import "google/protobuf/timestamp.proto";
message Point { int32 latitude = 1; int32 longitude = 2; }
message Feature { string name = 1; Point location = 2; google.protobuf.Timestamp seen = 3; }
service RouteGuide {
  rpc GetFeature(Point) returns (Feature);
  rpc ListFeatures(Point) returns (stream Feature);
  rpc RecordRoute(stream Point) returns (Feature);
  rpc RouteChat(stream Point) returns (stream Feature);
}
]]

describe("lgrpc.proto", function()
  local dir
  setup(function()
    dir = tmpdir()
    write(dir .. "/route.proto", ROUTE)
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("loads a file with its imports and finds messages, services and files", function()
    local pool = assert(proto.load{ "route.proto", include = { dir } })
    local point = pool:message("routeguide.Point")
    assert.equal("Point", point.name)
    assert.equal("latitude", point.field[1].name)
    assert.equal("TYPE_INT32", point.field[1].type)
    assert.equal(point, pool:message(".routeguide.Point"))
    local svc = pool:service("routeguide.RouteGuide")
    assert.equal(4, #svc.method)
    assert.equal(".routeguide.Point", svc.method[2].input_type)
    assert.is_true(svc.method[2].server_streaming)
    assert.is_true(svc.method[4].client_streaming)
    assert.equal("route.proto", pool:file_of("routeguide.Feature").name)
    assert.truthy(pool:file("google/protobuf/timestamp.proto"))
    assert.is_nil(pool:message("routeguide.RouteGuide"))
    assert.is_nil(pool:message("nope.Nothing"))
    local names = {}
    for name in pool:files() do names[#names + 1] = name end
    assert.same({ "google/protobuf/timestamp.proto", "route.proto" }, names)
  end)

  it("returns nil and a positioned error for a bad file", function()
    write(dir .. "/bad.proto", 'syntax = "proto3";\nmessage A {\n  Missing m = 1;\n}\n')
    local pool, err = proto.load{ "bad.proto", include = { dir } }
    assert.is_nil(pool)
    assert.matches("^bad%.proto:3:3: ", err)
    assert.matches('"Missing" is not defined', err)
  end)

  it("keeps pools independent", function()
    local a = proto.pool{}
    local b = proto.pool{}
    assert(a:load_string("x.proto", 'syntax = "proto3"; package p; message M { int32 v = 1; }'))
    assert(b:load_string("x.proto", 'syntax = "proto3"; package p; message M { string v = 1; }'))
    assert.equal("TYPE_INT32", a:message("p.M").field[1].type)
    assert.equal("TYPE_STRING", b:message("p.M").field[1].type)
    assert.equal("hi", b:decode("p.M", assert(b:encode("p.M", { v = "hi" }))).v)
    assert.equal(5, a:decode("p.M", assert(a:encode("p.M", { v = 5 }))).v)
  end)

  it("refuses a symbol that another file of the pool defines", function()
    local pool = proto.pool{}
    assert(pool:load_string("one.proto", 'syntax = "proto3"; package p; message M {}'))
    local ok, err = pool:load_string("two.proto", 'syntax = "proto3"; package p; message M {}')
    assert.is_nil(ok)
    assert.matches('"p%.M" is already defined in file "one%.proto"', err)
  end)

  it("writes descriptor sets identical to protoc's", function()
    local pool = assert(proto.load{ "route.proto", include = { dir } })
    local ours = assert(pool:descriptor_set({ "route.proto" }, { include_imports = true }))
    assert.equal(protoc("--include_imports -I " .. dir .. " " .. dir .. "/route.proto"), ours)
    local just = assert(pool:descriptor_set({ "route.proto" }))
    assert.equal(protoc("-I " .. dir .. " " .. dir .. "/route.proto"), just)
  end)

  it("loads protoc's descriptor sets, and writes them back unchanged", function()
    local bytes = protoc("--include_imports -I " .. dir .. " " .. dir .. "/route.proto")
    local pool = proto.pool{}
    local added = assert(pool:load_descriptor_set(bytes))
    assert.same({ "google/protobuf/timestamp.proto", "route.proto" }, added)
    assert.equal(bytes, pool:descriptor_set({ "route.proto" }, { include_imports = true }))
    local msg = { name = "x", location = { latitude = -1 }, seen = { seconds = 7 } }
    assert.same(msg, pool:decode("routeguide.Feature", assert(pool:encode("routeguide.Feature", msg))))
    -- loading the same set again adds nothing
    assert.same({}, assert(pool:load_descriptor_set(bytes)))
  end)

  it("reports a descriptor set whose imports are missing", function()
    local bytes = protoc("-I " .. dir .. " " .. dir .. "/route.proto")
    local ok, err = proto.pool{}:load_descriptor_set(bytes)
    assert.is_nil(ok)
    assert.matches('"route%.proto" imports "google/protobuf/timestamp%.proto"', err)
    local bad; bad, err = proto.pool{}:load_descriptor_set("\255\255\255")
    assert.is_nil(bad)
    assert.matches("^descriptor set: ", err)
  end)

  it("encodes, decodes and builds messages, with clear errors", function()
    local pool = assert(proto.load{ "route.proto", include = { dir } })
    local bytes = assert(pool:encode("routeguide.Point", { latitude = 1, longitude = -2 }))
    assert.equal("\8\1\16\254\255\255\255\255\255\255\255\255\1", bytes)
    assert.same({ latitude = 1, longitude = -2 }, pool:decode("routeguide.Point", bytes))
    assert.same({ latitude = 0, longitude = 0 }, pool:new("routeguide.Point"))
    local ok, err = pool:encode("routeguide.Nope", {})
    assert.is_nil(ok)
    assert.equal('unknown message type "routeguide.Nope"', err)
    ok, err = pool:decode("routeguide.Point", "\8")
    assert.is_nil(ok)
    assert.matches("routeguide%.Point%.latitude: truncated", err)
    assert.has_error(function() pool:encode("routeguide.Point", 5) end)
    assert.has_error(function() pool:decode(7, "") end)
  end)

  it("bounds nesting with max_depth", function()
    local pool = proto.pool{ max_depth = 3 }
    assert(pool:load_string("r.proto", 'syntax = "proto3"; message R { R r = 1; int32 v = 2; }'))
    assert(pool:encode("R", { r = { r = { v = 1 } } }))
    local deep = "\10\2\10\0"
    deep = "\10" .. string.char(#deep) .. deep
    deep = "\10" .. string.char(#deep) .. deep
    local ok, err = pool:decode("R", deep)
    assert.is_nil(ok)
    assert.matches("R%.r%.r%.r", err)
  end)

  it("maps proto3 JSON both ways", function()
    local pool = assert(proto.load{ "route.proto", include = { dir } })
    local text = assert(pool:json_encode("routeguide.Feature",
      { name = "n", location = { latitude = 3 }, seen = { seconds = 0, nanos = 5000000 } }, { indent = 0 }))
    assert.equal('{"name":"n","location":{"latitude":3},"seen":"1970-01-01T00:00:00.005Z"}', text)
    local back = assert(pool:json_decode("routeguide.Feature", text))
    assert.same({ name = "n", location = { latitude = 3 }, seen = { seconds = 0, nanos = 5000000 } }, back)
  end)
end)

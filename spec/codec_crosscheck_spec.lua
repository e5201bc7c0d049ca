-- spec/codec_crosscheck_spec.lua — lgrpc's codec against python3-protobuf (the C++ backend of
-- Debian's python3-protobuf) on seeded random messages of spec/fixtures/codec/*.proto: lgrpc's
-- bytes must parse in python to the same values, python's deterministic serialization of them
-- must be byte-identical to lgrpc's deterministic encoding, and lgrpc must decode python's bytes
-- back to the original table (unknown fields included). Set CODEC_SEED to replay a run.
local codec = require "lgrpc.proto.codec"
local fdp = require "codec_fdp"
local R = require "codec_random"

local FIX = "spec/fixtures/codec"
local top = os.getenv("LGRPC_TOP") or "."
local SEED = tonumber(os.getenv("CODEC_SEED") or "") or os.time()
local COUNT = tonumber(os.getenv("CODEC_COUNT") or "") or 150

local function run_python(set_path, records)
  local inp, out = os.tmpname(), os.tmpname()
  local f = assert(io.open(inp, "w"))
  for _, r in ipairs(records) do f:write(r.name, " ", fdp.hex(r.bytes) ~= "" and fdp.hex(r.bytes) or "", "\n") end
  f:close()
  local cmd = ("env -u LD_PRELOAD /usr/bin/python3 %s/spec/support/codec_crosscheck.py %s %s %s 2>&1")
    :format(top, set_path, inp, out)
  local p = io.popen(cmd)
  local msg = p:read("*a")
  p:close()
  local lines = {}
  local h = io.open(out)
  if h then for l in h:lines() do lines[#lines + 1] = l end h:close() end
  os.remove(inp)
  os.remove(out)
  assert(#lines == #records, "python helper failed: " .. msg)
  return lines
end

local function crosscheck(file, names)
  math.randomseed(SEED)
  local files = fdp.load(FIX, file)
  local schema = assert(codec.schema(files))
  local ix = R.index(files)
  local raw = fdp.descriptor_set(FIX, file)
  local set_path = os.tmpname()
  local f = assert(io.open(set_path, "wb"))
  f:write(raw)
  f:close()
  local records = {}
  for _, name in ipairs(names) do
    for _ = 1, COUNT do
      local t = R.message(ix, name)
      local bytes, err = schema:encode(name, t, { deterministic = true })
      assert(bytes, ("seed %d: %s encode: %s"):format(SEED, name, tostring(err)))
      records[#records + 1] = { name = name, t = t, bytes = bytes }
    end
  end
  local lines = run_python(set_path, records)
  os.remove(set_path)
  for i, r in ipairs(records) do
    local line = lines[i]
    local where = ("seed %d, %s #%d"):format(SEED, r.name, i)
    assert(line:sub(1, 3) == "OK ", where .. ": python: " .. line)
    local phex, lit = line:match("^OK (%S+) (.*)$")
    local pvals = assert((loadstring or load)("return " .. lit))()
    -- 1. python read lgrpc's bytes as the values lgrpc was given
    local ok, path = R.equal(R.strip_unknown(r.t), pvals)
    assert(ok, where .. ": python read differently at " .. tostring(path))
    -- 2. both deterministic serializations are the same bytes
    if phex == "-" then phex = "" end
    assert(phex == fdp.hex(r.bytes), where .. ": bytes differ\n lgrpc  " .. fdp.hex(r.bytes) .. "\n python " .. phex)
    -- 3. lgrpc reads python's bytes back to the original table, unknown fields included
    local back, err = schema:decode(r.name, fdp.unhex(phex), { int64 = "string" })
    assert(back, where .. ": decode of python's bytes: " .. tostring(err))
    ok, path = R.equal(r.t, back)
    assert(ok, where .. ": lgrpc read python's bytes differently at " .. tostring(path))
  end
  return #records
end

describe("codec crosscheck with python3-protobuf", function()
  it("agrees on proto3 messages: scalars, repeated, maps, presence, oneofs, recursion, unknowns", function()
    assert.equal(3 * COUNT, crosscheck("p3.proto", { "codec.p3.Big", "codec.p3.Node", "codec.p3.Maps" }))
  end)

  it("agrees on proto2 messages: defaults, required, closed enums, groups, extensions", function()
    assert.equal(4 * COUNT, crosscheck("p2.proto",
      { "codec.p2.Closed", "codec.p2.WithGroup", "codec.p2.Holder", "codec.p2.Defaults" }))
  end)
end)

-- Cross-checks lgrpc.proto.json against python3-protobuf's json_format, both ways, over random
-- messages (every field type, maps, oneofs, nesting, proto2, well-known types with edge cases).
-- One python process generates a batch; another parses everything we wrote. The seed is printed
-- on failure; LGRPC_JSON_SEED=<n> replays it.
local P = require "json_pool"
local json = require "lgrpc.proto.json"
local cj = require("lgrpc.core").json

local pool = P.load { "jsontest.proto", "jsontest2.proto" }
local SEED = tonumber(os.getenv("LGRPC_JSON_SEED")) or os.time() % 1000000
local COUNT = tonumber(os.getenv("LGRPC_JSON_COUNT")) or 240
local top = os.getenv("LGRPC_TOP") or "."
local OPTS = {
  default = {}, defaults = { emit_defaults = true }, proto_names = { proto_names = true },
  enum_numbers = { enums = "number" },
}
local OPT_NAMES = { "default", "defaults", "proto_names", "enum_numbers" }

local function python(args, env)
  return P.run((env or "") .. " /usr/bin/python3 " .. top .. "/spec/support/json_crosscheck.py " .. args)
end

local function load_chunk(text, what)
  local env = {
    I = function(s) return assert(cj.integer(s, "int64")) end,
    U = function(s) return assert(cj.integer(s, "uint64")) end,
    math = math,
  }
  local chunk, err = load(text, "=" .. what, "t", env)
  assert(chunk, "cannot load the python output (" .. tostring(err) .. "):\n" .. text:sub(1, 2000))
  return chunk()
end

-- Deep equality where an absent key equals a zero value (python lists only fields it would
-- serialize; a decoded Timestamp keeps seconds = 0) and NaN equals NaN.
local function is_empty(v)
  if v == 0 or v == "" or v == false or v == "NULL_VALUE" then return true end
  if type(v) == "table" then
    for _, x in pairs(v) do if not is_empty(x) then return false end end
    return true
  end
  return false
end

local function same(a, b, path)
  path = path or "msg"
  if a == b then
    if a == 0 and b == 0 and 1 / a ~= 1 / b then return false, path .. ": 0.0 vs -0.0" end
    return true
  end
  if type(a) == "number" and type(b) == "number" and a ~= a and b ~= b then return true end
  if type(a) == "table" and type(b) == "table" and type(a.type_url) == "string" and a.type_url == b.type_url then
    -- Any: the packed bytes may order map entries differently; compare what they hold
    local name = a.type_url:match("[^/]*$")
    local x, y = pool:decode(name, a.value or ""), pool:decode(name, b.value or "")
    if x and y then return same(x, y, path .. "<" .. name .. ">") end
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false, ("%s: %s vs %s"):format(path, tostring(a), tostring(b))
  end
  for k, v in pairs(a) do
    if b[k] == nil then
      if not is_empty(v) then return false, path .. "." .. tostring(k) .. " only on the left" end
    else
      local ok, why = same(v, b[k], path .. "." .. tostring(k))
      if not ok then return false, why end
    end
  end
  for k, v in pairs(b) do
    if a[k] == nil and not is_empty(v) then return false, path .. "." .. tostring(k) .. " only on the right" end
  end
  return true
end

-- Python prints map entries in its own hash order; we print them sorted. Texts that differ only
-- in the order of members compare equal here after sorting every object's members.
local function sorted_tree(v)
  if type(v) ~= "table" or getmetatable(v) == cj.number then return v end
  if getmetatable(v) == cj.object then
    local keys = {}
    for i = 1, #v do keys[i] = v[i] end
    table.sort(keys)
    local out = setmetatable({}, cj.object)
    for i, k in ipairs(keys) do out[i] = k; out[k] = sorted_tree(v[k]) end
    return out
  end
  local out = setmetatable({}, cj.array)
  for i = 1, #v do out[i] = sorted_tree(v[i]) end
  return out
end

local function same_text(ours, theirs)
  if ours == theirs then return true end
  local a, b = cj.decode(ours), cj.decode(theirs)
  if not a or not b then return false end
  return cj.encode(sorted_tree(a), 2) == cj.encode(sorted_tree(b), 2)
end

local function report(fmt, ...)
  return ("seed %d (replay: LGRPC_JSON_SEED=%d): " .. fmt):format(SEED, SEED, ...)
end

describe("lgrpc.proto.json against python3-protobuf json_format", function()
  local any_env = pool:has_codec() and "LGRPC_JSON_ANY=1" or ""
  local records = load_chunk(python(("gen %d %d"):format(SEED, COUNT), any_env), "gen")

  it("generated a batch", function()
    assert.equal(COUNT, #records)
  end)

  it("writes exactly what json_format writes, for every option set", function()
    local failures = {}
    for i, r in ipairs(records) do
      for _, o in ipairs(OPT_NAMES) do
        local theirs = r.json[o]
        local ours, err = json.encode(pool, r.type, r.msg, OPTS[o])
        if theirs == false then
          if ours ~= nil then failures[#failures + 1] = ("#%d %s %s: python refused, we wrote %s"):format(i, r.type, o, ours) end
        elseif not ours then
          failures[#failures + 1] = ("#%d %s %s: %s"):format(i, r.type, o, err)
        elseif not same_text(ours, theirs) then
          failures[#failures + 1] = ("#%d %s %s:\nours:   %s\npython: %s"):format(i, r.type, o, ours, theirs)
        end
        if #failures > 5 then break end
      end
      if #failures > 5 then break end
    end
    assert(#failures == 0, report("%d mismatches\n%s", #failures, table.concat(failures, "\n")))
  end)

  it("reads json_format's text back to the same message", function()
    local failures = {}
    for i, r in ipairs(records) do
      for _, o in ipairs(OPT_NAMES) do
        local text = r.json[o]
        if text then
          local msg, err = json.decode(pool, r.type, text)
          if not msg then
            failures[#failures + 1] = ("#%d %s %s: %s\n%s"):format(i, r.type, o, err, text)
          elseif o ~= "defaults" then -- (defaults adds zero enums by name: not comparable)
            local ok, why = same(msg, r.msg)
            if not ok then failures[#failures + 1] = ("#%d %s %s: %s\n%s"):format(i, r.type, o, why, text) end
          end
        end
      end
      if #failures > 5 then break end
    end
    assert(#failures == 0, report("%d mismatches\n%s", #failures, table.concat(failures, "\n")))
  end)

  it("writes text that json_format parses and prints back unchanged", function()
    local items = setmetatable({}, cj.array)
    for _, r in ipairs(records) do
      for _, o in ipairs(OPT_NAMES) do
        local ours = json.encode(pool, r.type, r.msg, OPTS[o])
        if ours then
          local item = setmetatable({ "type", "text", "opts" }, cj.object)
          item.type, item.text, item.opts = r.type, ours, o
          items[#items + 1] = item
        end
      end
    end
    local path = os.tmpname()
    local fh = assert(io.open(path, "wb"))
    local payload, perr = cj.encode(items)
    assert(payload, perr)
    fh:write(payload)
    fh:close()
    local results = load_chunk(python("check " .. path), "check")
    os.remove(path)
    local failures = {}
    for i, res in ipairs(results) do
      local item = items[i]
      if not res.ok and tostring(res.err):find("Float value too large", 1, true) and item.text:find("3.4028235e+38", 1, true) then
        -- json_format prints FLT_MAX as 3.4028235e+38 and then refuses to read it back (its
        -- check compares the double); lgrpc reads it as FLT_MAX, as protobuf's C++ parser does.
      elseif not res.ok then
        failures[#failures + 1] = ("%s %s: python rejected our text: %s\n%s"):format(item.type, item.opts, tostring(res.err), item.text)
      elseif not same_text(item.text, res.text) then
        failures[#failures + 1] = ("%s %s:\nours:   %s\npython: %s"):format(item.type, item.opts, item.text, res.text)
      end
      if #failures > 5 then break end
    end
    assert.equal(#items, #results)
    assert(#failures == 0, report("%d mismatches\n%s", #failures, table.concat(failures, "\n")))
  end)

  it("answers mutated json_format text with a message or a clear error, never a Lua error", function()
    math.randomseed(SEED)
    local pieces = { "{", "}", "[", "]", ",", ":", '"', "\\", "null", "1e999", "-", "0", "\\u", "\255", "@type", " " }
    local internal = {}
    for i, r in ipairs(records) do
      local text = r.json.default
      if text then
        for _ = 1, 8 do
          local at = math.random(1, #text)
          local cut = math.random(0, 3)
          local mutated = text:sub(1, at - 1) .. pieces[math.random(#pieces)] .. text:sub(at + cut)
          local ok, msg, err = pcall(json.decode, pool, r.type, mutated)
          if not ok or (msg == nil and (type(err) ~= "string" or err:find("internal error", 1, true))) then
            internal[#internal + 1] = ("#%d %s: %s\n%s"):format(i, r.type, tostring(ok and err or msg), mutated)
          elseif msg ~= nil then
            local again, eerr = json.encode(pool, r.type, msg)
            if again == nil and (type(eerr) ~= "string" or eerr:find("internal error", 1, true)) then
              internal[#internal + 1] = ("#%d %s re-encode: %s\n%s"):format(i, r.type, tostring(eerr), mutated)
            end
          end
        end
      end
      if #internal > 3 then break end
    end
    assert(#internal == 0, report("%d crashes\n%s", #internal, table.concat(internal, "\n")))
  end)
end)

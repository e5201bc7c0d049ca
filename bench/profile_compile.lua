-- bench/profile_compile.lua: where the compiler's time goes on one file (descriptor.proto by
-- default). Not part of `make bench`; a tool for work on lgrpc.proto's speed.
--   profile_compile.lua [FILE [VIRTUAL_NAME]] [--phases] [--samples] [--loop=N]
-- --phases: median time per phase (parse; compile's steps; the pool's symbol index), each run
--   into a fresh pool as bench/compile.lua does.
-- --samples: a debug.sethook count-sampling profile of whole iterations; prints the functions
--   (self) and lines seen most often.
-- --loop=N: N iterations and nothing else, for instruction counts: the difference between two
--   runs under `valgrind --tool=callgrind` (say N=22 and N=2) over 20 is the cost of one.
package.path = (arg[0]:match("^(.-)[^/]*$") or "") .. "?.lua;" .. package.path
local timing = require "timing"
local proto = require "lgrpc.proto"
local grammar = require "lgrpc.proto.grammar"
local compiler = require "lgrpc.proto.compiler"
local options = require "lgrpc.proto.options"

local file, name = "/usr/include/google/protobuf/descriptor.proto", "google/protobuf/descriptor.proto"
local want = {}
local pos = {}
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-([%w]+)=(.*)$")
  if k then want[k] = v
  elseif a:sub(1, 2) == "--" then want[a:sub(3)] = true else pos[#pos + 1] = a end
end
file, name = pos[1] or file, pos[2] or name
if not want.phases and not want.samples and not want.loop then want.phases = true end
local text = assert(timing.read(file))

local function once()
  local pool = proto.pool{ include = {}, system_include = false }
  assert(pool:load_string(name, text))
end

if want.loop then
  for _ = 1, assert(tonumber(want.loop), "--loop=N") do once() end
end

if want.phases then
  timing.RUNS = 9
  local B = compiler.Builder
  local function step(label, fn) io.write(string.format("%-14s %9.1f us\n", label, timing.median_ns(fn) / 1e3)) end
  step("total", once)
  step("parse", function() grammar.parse(text, name) end)
  local tree = grammar.parse(text, name)
  local env = { name = name, file = function() end, symbol = function() end }
  step("compile", function() assert(compiler.compile(tree, env)) end)
  local function builder()
    return setmetatable({
      env = env, name = name, nodes = {}, unresolved = {},
      defaults = {}, explicit_json = {}, type_desc = {}, extendee_desc = {}, map_keys = {},
      option_statements = {}, option_order = {}, reserved_name_pos = {}, import_nodes = {},
      type_file = {}, full_names = {}, import_seen = {}, ext_numbers = nil,
    }, B)
  end
  local steps = {
    { "file", function(b) b:file(tree) end },
    { "visible", function(b) b.visible = b:visible_files() end },
    { "check_symbols", function(b) b:check_symbols() end },
    { "resolve", function(b) b:resolve() end },
    { "fields_pass", function(b) b:fields_pass() end },
    { "options", function(b) options.interpret(b, env) end },
    { "validate", function(b) b:validate() end },
  }
  -- each step timed as the cost of steps 1..k minus steps 1..k-1
  local prev = 0
  for k = 1, #steps do
    local t = timing.median_ns(function()
      local b = builder()
      for i = 1, k do steps[i][2](b) end
    end)
    io.write(string.format("  %-12s %9.1f us\n", steps[k][1], (t - prev) / 1e3))
    prev = t
  end
  local fdp = assert(compiler.compile(tree, env))
  step("pool add", function()
    local pool = proto.pool{ include = {}, system_include = false }
    fdp.name = name
    pool:_add_file(fdp)
  end)
end

if want.samples then
  local fn_counts, line_counts, total = {}, {}, 0
  local getinfo = debug.getinfo
  debug.sethook(function()
    local info = getinfo(2, "Sl")
    if info then
      local k = info.short_src .. ":" .. (info.currentline or 0)
      line_counts[k] = (line_counts[k] or 0) + 1
    end
    local f = getinfo(2, "Sn")
    if f then
      local k = f.short_src .. ":" .. (f.linedefined or 0) .. " " .. tostring(f.name)
      fn_counts[k] = (fn_counts[k] or 0) + 1
    end
    total = total + 1
  end, "", 1000)
  local t0 = os.clock()
  while os.clock() - t0 < 5 do once() end
  debug.sethook()
  local function top(counts, n, title)
    local list = {}
    for k, v in pairs(counts) do list[#list + 1] = { k, v } end
    table.sort(list, function(a, b) return a[2] > b[2] end)
    print(title)
    for i = 1, math.min(n, #list) do
      print(string.format("%6.2f%%  %s", 100 * list[i][2] / total, list[i][1]))
    end
  end
  top(fn_counts, 30, "functions (self):")
  top(line_counts, 40, "lines:")
end

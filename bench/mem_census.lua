-- bench/mem_census.lua: where an lgrpc server's Lua heap goes, for the memory rows' breakdown in
-- docs/benchmarks.md. Runs bench/rpc_server.lua in this process with one more task: whenever
-- the file DIR/census.req appears it removes it and writes DIR/census.N (N = 1, 2, ...):
--   count-before-gc KB    collectgarbage("count") as found (live objects and garbage)
--   count KB              after two full collections: the live Lua heap
--   COUNTS  TYPE LABEL N BYTES   live objects by type and label, BYTES an estimate (below)
-- A label is the metatable's name (the upvalue or field it is known by in an lgrpc module, e.g.
-- server.SCall), else the field of the labelled table it was first reached from
-- (server.SCall.inbox). Sizes are estimates for 64-bit Lua 5.4 (LuaJIT's objects are of similar
-- size): table 56 + 16 per array slot + 24 per hash node (a power of two), Lua closure 32 + 8
-- per upvalue plus 40 per distinct open or closed upvalue, userdata 40 + 16 per user value (its
-- payload is not visible from Lua), string 25 + length, coroutine 200 (its stack is not visible
-- from Lua: the rest of `count` once the others are summed). Analysis only: the full collections
-- and the walk change what they measure, so the RSS rows never run this.
--   lua5.4 bench/mem_census.lua ADDRESS DIR       (after . tools/env.sh lua5.4; luajit alike)
local address, dir = arg[1] or "127.0.0.1:0", assert(arg[2], "usage: mem_census.lua ADDRESS DIR")
local here = arg[0]:match("^(.-)[^/]*$")
if here == "" then here = "./" end
local lgrpc = require "lgrpc"

local function nextpow2(n) local p = 1 while p < n do p = p * 2 end return p end

-- Names for metatables and module-level tables: "module.Name" from each loaded lgrpc module's
-- fields and the upvalues of its functions, two levels deep (server.Server's methods name
-- server.SCall).
local function name_tables()
  local names, todo = {}, {}
  local function name(v, n)
    if type(v) == "table" and not names[v] then names[v] = n; todo[#todo + 1] = v end
  end
  for mod, m in pairs(package.loaded) do
    if type(mod) == "string" and mod:match("^lgrpc") then name(m, (mod:gsub("^lgrpc%.", ""))) end
  end
  for _ = 1, 2 do
    local list = todo
    todo = {}
    for _, t in ipairs(list) do
      local short = names[t]:match("^[^.]*")
      for k, v in pairs(t) do
        if type(k) == "string" then name(v, short .. "." .. k) end
        if type(v) == "function" then
          for i = 1, 255 do
            local un, uv = debug.getupvalue(v, i)
            if not un then break end
            name(uv, short .. "." .. un)
          end
        end
      end
    end
  end
  return names
end

local function census()
  local names = name_tables()
  local seen, counts = {}, {}
  local upvals = {}
  local function add(kind, label, bytes)
    local key = kind .. " " .. label
    local c = counts[key]
    if not c then c = { 0, 0 }; counts[key] = c end
    c[1] = c[1] + 1
    c[2] = c[2] + bytes
  end
  local stack = { { debug.getregistry(), "registry" } }
  local function push(v, label)
    local t = type(v)
    if (t == "table" or t == "function" or t == "thread" or t == "userdata" or t == "string")
        and not seen[v] then
      seen[v] = true
      stack[#stack + 1] = { v, label }
    end
  end
  seen[seen] = true; seen[counts] = true; seen[stack] = true; seen[upvals] = true; seen[names] = true
  while #stack > 0 do
    local top = table.remove(stack)
    local v, label = top[1], top[2]
    local t = type(v)
    if t == "string" then
      add("string", label, 25 + #v)
    elseif t == "table" then
      local mt = debug.getmetatable(v)
      local own = names[v] or (mt and names[mt] and names[mt]) or label
      local n, narr = 0, 0
      for k, x in next, v do
        if math.type and math.type(k) == "integer" and k >= 1 and k == narr + 1 then narr = narr + 1
        elseif not math.type and type(k) == "number" and k == narr + 1 then narr = narr + 1
        else n = n + 1 end
        local sub = type(k) == "string" and own .. "." .. k or own .. "[]"
        push(k, own .. "[key]")
        push(x, sub)
      end
      add("table", own, 56 + 16 * narr + (n > 0 and 24 * nextpow2(n) or 0))
      if mt then push(mt, own .. "<mt>") end
    elseif t == "function" then
      local info = debug.getinfo(v, "Su")
      local where = info.what == "C" and "C" or (info.short_src:match("[^/]*$") .. ":" .. info.linedefined)
      local nup = info.nups or 0
      local bytes = info.what == "C" and (nup > 0 and 32 + 16 * nup or 0) or 32 + 8 * nup
      for i = 1, nup do
        local un, uv = debug.getupvalue(v, i)
        if info.what ~= "C" and debug.upvalueid then
          local id = debug.upvalueid(v, i)
          if not upvals[id] then upvals[id] = true; bytes = bytes + 40 end
        end
        push(uv, label .. "^" .. tostring(un))
      end
      add("function", label .. " (" .. where .. ")", bytes)
    elseif t == "thread" then
      add("thread", label, 200)
      local level = 0
      while true do
        local info = debug.getinfo(v, level, "f")
        if not info then break end
        push(info.func, label .. "@stack")
        for i = 1, 255 do
          local ln, lv = debug.getlocal(v, level, i)
          if not ln then break end
          push(lv, label .. "@stack")
        end
        level = level + 1
      end
    elseif t == "userdata" then
      local mt = debug.getmetatable(v)
      local tname = mt and (rawget(mt, "__name") or names[mt]) or "?"
      add("userdata", label .. " <" .. tostring(tname) .. ">", 40)
      if mt then push(mt, "userdata-mt") end
      if debug.getuservalue then
        for i = 1, 8 do
          local uv, ok = debug.getuservalue(v, i)
          if ok == false then break end
          push(uv, label .. " <" .. tostring(tname) .. ">.uv" .. i)
          if ok == nil then break end -- LuaJIT: one environment table
        end
      end
    end
  end
  return counts
end

local serial = 0
lgrpc.spawn(function()
  while true do
    lgrpc.sleep(0.05)
    local req = io.open(dir .. "/census.req")
    if req then
      req:close()
      os.remove(dir .. "/census.req")
      serial = serial + 1
      local before = collectgarbage("count")
      collectgarbage(); collectgarbage()
      local after = collectgarbage("count")
      local counts = census()
      local out = assert(io.open(dir .. "/census." .. serial .. ".tmp", "w"))
      out:write(string.format("count-before-gc %.1f\ncount %.1f\n", before, after))
      for key, c in pairs(counts) do out:write("COUNTS ", key, " ", c[1], " ", c[2], "\n") end
      out:close()
      os.rename(dir .. "/census." .. serial .. ".tmp", dir .. "/census." .. serial)
    end
  end
end)
arg = { [0] = here .. "rpc_server.lua", address }
dofile(here .. "rpc_server.lua")

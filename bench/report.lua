-- bench/report.lua: reads the RESULT / UNAVAILABLE / INFO lines bench/run.sh collected and prints
-- the plain tables of docs/benchmarks.md: medians, ratios lgrpc / reference, and the goals.
--   lua5.4 bench/report.lua RESULTS_FILE
-- Keys are SECTION.ROW.OP.IMPL (codec.small.decode.luajit, rpc.h2load-small.calls/s.cpp) or
-- compile.IMPL. A key seen several times (BENCH_REPEAT > 1) reports the median of its values.
local path = assert(arg[1], "usage: report.lua RESULTS_FILE")

local values, missing, info = {}, {}, {}
for line in io.lines(path) do
  local key, v = line:match("^RESULT (%S+) (%S+)")
  if key and tonumber(v) then
    values[key] = values[key] or {}
    table.insert(values[key], tonumber(v))
  else
    local mkey, reason = line:match("^UNAVAILABLE (%S+) (.*)$")
    if mkey then
      missing[mkey] = reason
    else
      local text = line:match("^INFO (.*)$")
      if text then info[#info + 1] = text end
    end
  end
end

local function get(key)
  local list = values[key]
  if not list then return nil end
  table.sort(list)
  local n = #list
  if n % 2 == 1 then return list[(n + 1) / 2] end
  return (list[n / 2] + list[n / 2 + 1]) / 2
end

local function fmt(v)
  if v == nil then return "-" end
  if v >= 100000 then return string.format("%.0f", v) end
  if v >= 100 then return string.format("%.0f", v) end
  if v >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

local function ratio(a, b)
  if not a or not b or b == 0 then return "-" end
  return string.format("%.2f", a / b)
end
local function times(a, b)
  if not a or not b or b == 0 then return "-" end
  return string.format("%.2fx", a / b)
end

-- Prints rows of cells with columns padded to their widest cell.
local function print_table(rows)
  local width = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do width[i] = math.max(width[i] or 0, #cell) end
  end
  for r, row in ipairs(rows) do
    local out = {}
    for i, cell in ipairs(row) do
      out[i] = (i == 1 and cell .. string.rep(" ", width[i] - #cell))
        or string.rep(" ", width[i] - #cell) .. cell
    end
    print(table.concat(out, "  "))
    if r == 1 then
      local rule = {}
      for i = 1, #width do rule[i] = string.rep("-", width[i]) end
      print(table.concat(rule, "  "))
    end
  end
end

local reasons = {}
local function note_missing(key)
  if missing[key] then reasons[#reasons + 1] = key .. ": not available: " .. missing[key] end
end

-- Codec ---------------------------------------------------------------------------------------
print("== codec: ns/op (process CPU time, median of several batches); ratio = lgrpc / reference ==")
local rows = { { "op", "lua5.4", "luajit", "protobuf-c", "C++", "python",
  "lua5.4/pb-c", "luajit/pb-c", "lua5.4/C++", "luajit/C++", "luajit/lua5.4" } }
for _, size in ipairs{ "small", "large" } do
  for _, op in ipairs{ "encode", "decode" } do
    local k = "codec." .. size .. "." .. op .. "."
    local l54, ljt, pbc, cpp, py = get(k .. "lua5.4"), get(k .. "luajit"), get(k .. "protobuf-c"),
      get(k .. "cpp"), get(k .. "python")
    note_missing(k .. "lua5.4"); note_missing(k .. "luajit")
    rows[#rows + 1] = { size .. " " .. op, fmt(l54), fmt(ljt), fmt(pbc), fmt(cpp), fmt(py),
      ratio(l54, pbc), ratio(ljt, pbc), ratio(l54, cpp), ratio(ljt, cpp), ratio(ljt, l54) }
  end
end
print_table(rows)
print()
print("== JSON: ns/op; ratio = lgrpc / python3-protobuf json_format ==")
rows = { { "op", "lua5.4", "luajit", "python", "lua5.4/python", "luajit/python" } }
for _, size in ipairs{ "small", "large" } do
  for _, op in ipairs{ "json_encode", "json_decode" } do
    local k = "codec." .. size .. "." .. op .. "."
    local l54, ljt, py = get(k .. "lua5.4"), get(k .. "luajit"), get(k .. "python")
    note_missing(k .. "lua5.4"); note_missing(k .. "luajit")
    rows[#rows + 1] = { size .. " " .. op, fmt(l54), fmt(ljt), fmt(py), ratio(l54, py), ratio(ljt, py) }
  end
end
print_table(rows)
print()
print("== compiler: descriptor.proto parse + compile into a fresh pool, ns/op; ratio = lgrpc / C++ ==")
local c54, cjt, ccpp = get("compile.lua5.4"), get("compile.luajit"), get("compile.cpp")
note_missing("compile.lua5.4"); note_missing("compile.luajit")
print_table{ { "impl", "ns/op", "ratio" },
  { "lua5.4", fmt(c54), ratio(c54, ccpp) }, { "luajit", fmt(cjt), ratio(cjt, ccpp) },
  { "C++ Parser+BuildFile", fmt(ccpp), "1.00" } }
print()

-- Goals ---------------------------------------------------------------------------------------
local function verdict(ok) if ok == nil then return "n/a" end return ok and "met" or "NOT MET" end
local goals = { { "goal", "measured", "verdict" } }
-- ok: true / false, or nil when a side is missing (both() gives nil then, so `both(a, b) and a < b`
-- stays nil instead of turning false into nil the way `x and y or nil` would).
local function goal(text, measured, ok) goals[#goals + 1] = { text, measured, verdict(ok) } end
local function both(a, b) if a == nil or b == nil then return nil end return true end
for _, op in ipairs{ "encode", "decode" } do
  local a, b = get("codec.small." .. op .. ".lua5.4"), get("codec.small." .. op .. ".protobuf-c")
  goal("lua5.4 small " .. op .. " <= 2x protobuf-c", times(a, b), both(a, b) and a <= 2 * b)
end
for _, size in ipairs{ "small", "large" } do
  for _, op in ipairs{ "encode", "decode" } do
    local a, b = get("codec." .. size .. "." .. op .. ".luajit"), get("codec." .. size .. "." .. op .. ".lua5.4")
    goal("luajit " .. size .. " " .. op .. " no slower than lua5.4", times(a, b),
      both(a, b) and a <= b * 1.05) -- 5% noise allowance on a 2-core shared machine
  end
end
local large
for _, t in ipairs(info) do large = large or tonumber(t:match("^size large (%d+)")) end
for _, impl in ipairs{ "lua5.4", "luajit" } do
  local ns = get("codec.large.decode." .. impl)
  local gbs = (ns and large) and large / ns or nil
  goal(impl .. " large decode >= 1 GB/s of input", gbs and string.format("%.2f GB/s", gbs) or "-",
    both(gbs, 1) and gbs >= 1)
end
goal("lua5.4 descriptor.proto compile faster than C++", times(c54, ccpp), both(c54, ccpp) and c54 < ccpp)
goal("luajit descriptor.proto compile faster than C++", times(cjt, ccpp), both(cjt, ccpp) and cjt < ccpp)
-- Issue 11's throughput goals: lgrpc's server against C++ and grpc-go, its client against C++'s.
dofile((arg[0]:match("^(.-)[^/]*$") or "") .. "rpc_goals.lua")(get, missing, goal)
-- TLS cost: plaintext calls/s / TLS calls/s (h2load small unary, same server, same load), per
-- implementation; 1.00 would be free TLS.
local function tls_cost(impl)
  local plain, tls = get("rpc.h2load-small.calls/s." .. impl), get("rpc.h2load-tls-small.calls/s." .. impl)
  if not plain or not tls or tls == 0 then return nil end
  return plain / tls
end
local cpp_cost = tls_cost("cpp")
for _, impl in ipairs{ "lua5.4", "luajit" } do
  local c = tls_cost(impl)
  goal(impl .. " TLS cost no larger than C++'s (plain/TLS calls/s)",
    (c and cpp_cost) and string.format("%.2fx vs %.2fx", c, cpp_cost) or "-",
    both(c, cpp_cost) and c <= cpp_cost)
end
-- Memory (issue 11): server RSS per idle connection and per in-flight unary call (the mem-* rows,
-- bench/memload.c), with the C++ server's figure beside for scale.
local function kib(v) return v and string.format("%.1f KiB", v / 1024) or "n/a" end
for _, m in ipairs{ { "mem-idle-conn.bytes/conn", "idle connection < 32 KiB", 32 * 1024 },
  { "mem-inflight-call.bytes/call", "in-flight unary call < 4 KiB", 4 * 1024 },
  { "mem-used-conn.bytes/conn", "idle connection after 1000 calls < 32 KiB", 32 * 1024 } } do
  local cpp = get("rpc." .. m[1] .. ".cpp")
  for _, impl in ipairs{ "lua5.4", "luajit" } do
    local v = get("rpc." .. m[1] .. "." .. impl)
    goal(impl .. " " .. m[2], v and kib(v) .. " (cpp " .. kib(cpp) .. ")" or "-", both(v, m[3]) and v < m[3])
  end
end
print("== goals ==")
print_table(goals)
print()

-- RPC -----------------------------------------------------------------------------------------
-- Rows in the order bench/run.sh measures them; columns: every implementation that reported.
local rpc_rows, rpc_seen, impls, impl_seen = {}, {}, {}, {}
local IMPL_ORDER = { cpp = 1, go = 2, ["lua5.4"] = 3, luajit = 4 }
-- rpc.TEST.METRIC.IMPL, where IMPL may hold a dot (lua5.4) and TEST, METRIC hold none.
local function split_rpc(key)
  local rest, impl = key:match("^rpc%.(.+)%.(lua5%.4)$")
  if not rest then rest, impl = key:match("^rpc%.(.+)%.([^.]+)$") end
  if not rest then return nil end
  local test, metric = rest:match("^([^.]+)%.([^.]+)$")
  return test, metric, impl
end
local function add_rpc(key)
  local test, metric, impl = split_rpc(key)
  if not test then return end
  local row = test .. " " .. metric
  if not rpc_seen[row] then rpc_seen[row] = { test, metric }; rpc_rows[#rpc_rows + 1] = row end
  if not impl_seen[impl] then impl_seen[impl] = true; impls[#impls + 1] = impl end
end
local order = {}
for line in io.lines(path) do
  local key = line:match("^RESULT (%S+)") or line:match("^UNAVAILABLE (%S+)")
  if key and key:match("^rpc%.") and not order[key] then order[key] = true; add_rpc(key) end
end
table.sort(impls, function(a, b) return (IMPL_ORDER[a] or 9) < (IMPL_ORDER[b] or 9) end)
if #rpc_rows > 0 then
  print("== rpc: columns are the implementation under test (server rows: the server; client rows: the")
  print("   client, against the C++ server); ratio = lgrpc / C++ (throughput: higher is better;")
  print("   latency and CPU time: lower is better) ==")
  local head = { "test" }
  for _, impl in ipairs(impls) do head[#head + 1] = impl end
  for _, impl in ipairs(impls) do
    if impl == "lua5.4" or impl == "luajit" then head[#head + 1] = impl .. "/cpp" end
  end
  rows = { head }
  for _, row in ipairs(rpc_rows) do
    local test, metric = rpc_seen[row][1], rpc_seen[row][2]
    local cells = { row }
    for _, impl in ipairs(impls) do
      local key = "rpc." .. test .. "." .. metric .. "." .. impl
      local v = get(key)
      if impl == "cpp" and v == nil and test:match("^client%-") then
        v = get("rpc." .. test:gsub("^client%-", "") .. "." .. metric .. ".cpp")
      end
      if v == nil and missing[key] and impl ~= "lua5.4" and impl ~= "luajit" then
        cells[#cells + 1] = "n/a"
      else
        cells[#cells + 1] = fmt(v)
      end
      note_missing(key)
    end
    -- client-* rows (an lgrpc client against the C++ server) compare with the C++ client's row.
    local ref = get("rpc." .. test:gsub("^client%-", "") .. "." .. metric .. ".cpp")
    for _, impl in ipairs(impls) do
      if impl == "lua5.4" or impl == "luajit" then
        cells[#cells + 1] = ratio(get("rpc." .. test .. "." .. metric .. "." .. impl), ref)
      end
    end
    rows[#rows + 1] = cells
  end
  print_table(rows)
  print()
end

-- TLS beside plaintext, per server implementation.
local tls_impls = {}
for _, impl in ipairs{ "cpp", "go", "lua5.4", "luajit" } do
  if get("rpc.h2load-tls-small.calls/s." .. impl) or missing["rpc.h2load-tls-small.calls/s." .. impl]
    or get("rpc.connect-tls.conns/s." .. impl) then
    tls_impls[#tls_impls + 1] = impl
  end
end
if #tls_impls > 0 then
  print("== rpc TLS: h2load small unary (-c 16 -m 32) plaintext and TLS 1.3, cost = plain / TLS;")
  print("   conns/s: new connections each carrying one unary call (-c 64 -n 64 -m 1, repeated),")
  print("   over TLS each a full handshake; ratio = lgrpc / C++ ==")
  rows = { { "server", "plain calls/s", "TLS calls/s", "TLS cost", "plain conns/s", "TLS conns/s",
    "handshake cost", "TLS calls/s /cpp", "TLS conns/s /cpp" } }
  local function cost(a, b) if not a or not b or b == 0 then return "-" end return string.format("%.2fx", a / b) end
  for _, impl in ipairs(tls_impls) do
    local pc, tc = get("rpc.h2load-small.calls/s." .. impl), get("rpc.h2load-tls-small.calls/s." .. impl)
    local pn, tn = get("rpc.connect-plain.conns/s." .. impl), get("rpc.connect-tls.conns/s." .. impl)
    local cpp = impl == "cpp"
    rows[#rows + 1] = { impl, fmt(pc), fmt(tc), cost(pc, tc), fmt(pn), fmt(tn), cost(pn, tn),
      cpp and "1.00" or ratio(tc, get("rpc.h2load-tls-small.calls/s.cpp")),
      cpp and "1.00" or ratio(tn, get("rpc.connect-tls.conns/s.cpp")) }
  end
  print_table(rows)
  print()
end

if #info > 0 then
  print("== notes ==")
  for _, t in ipairs(info) do print(t) end
  print()
end
if #reasons > 0 then
  -- One line per distinct reason, with the keys it covers counted.
  local by_reason, list = {}, {}
  for _, r in ipairs(reasons) do
    local key, why = r:match("^(%S+): not available: (.*)$")
    local id = why
    if not by_reason[id] then by_reason[id] = { n = 0, first = key }; list[#list + 1] = id end
    by_reason[id].n = by_reason[id].n + 1
  end
  print("== not available ==")
  for _, id in ipairs(list) do
    local e = by_reason[id]
    print(string.format("%s%s: %s", e.first, e.n > 1 and (" (+" .. (e.n - 1) .. " more)") or "", id))
  end
end

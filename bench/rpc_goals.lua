-- bench/rpc_goals.lua: issue 11's throughput goal lines for bench/report.lua, from the rpc rows of
-- the same run, for lgrpc under lua5.4 and LuaJIT:
--   server: small unary calls/s >= 2x the C++ server's, 64 KiB unary >= 1.5x (h2load rows);
--           pipelined bidi and server streaming msgs/s >= the grpc-go server's (C++ client rows);
--   client: CPU per small unary call <= 2/3 of the C++ async client's, both against the C++ server.
-- report.lua calls it with its get(key) (median or nil), missing (key -> reason) and
-- goal(text, measured, ok) (ok nil: n/a). A goal whose row is missing says n/a, with the row's
-- reason in the measured column when the run gave one (e.g. no grpc-go server).
return function(get, missing, goal)
  -- One goal: a = row of IMPL, b = row of REF; ok when a >= factor * b (at_most: a <= factor * b).
  local function compare(text, impl, a_key, ref, b_key, factor, at_most)
    local ka, kb = "rpc." .. a_key .. "." .. impl, "rpc." .. b_key .. "." .. ref
    local a, b = get(ka), get(kb)
    if a == nil or b == nil or b == 0 then
      local why = (a == nil and missing[ka] and impl .. ": " .. missing[ka])
        or (b == nil and missing[kb] and ref .. ": " .. missing[kb])
      if why and #why > 60 then why = why:sub(1, 57) .. "..." end
      goal(text, why or "-", nil)
      return
    end
    local r = a / b
    goal(text, string.format("%.2fx", r), (at_most and r <= factor) or (not at_most and r >= factor))
  end
  for _, impl in ipairs{ "lua5.4", "luajit" } do
    compare(impl .. " small unary (h2load) >= 2x C++", impl, "h2load-small.calls/s", "cpp",
      "h2load-small.calls/s", 2)
    compare(impl .. " 64 KiB unary (h2load) >= 1.5x C++", impl, "h2load-large.calls/s", "cpp",
      "h2load-large.calls/s", 1.5)
    compare(impl .. " pipelined bidi >= grpc-go", impl, "bidi-pipelined-small.msgs/s", "go",
      "bidi-pipelined-small.msgs/s", 1)
    compare(impl .. " server streaming >= grpc-go", impl, "server-stream-small.msgs/s", "go",
      "server-stream-small.msgs/s", 1)
    compare(impl .. " client CPU/unary call <= 2/3 of C++ client", impl,
      "client-unary-small.client-cpu-us/call", "cpp", "unary-small.client-cpu-us/call", 2 / 3, true)
  end
end

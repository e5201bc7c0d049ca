-- The route guide client: `lua5.4 examples/route_guide/client.lua --server=127.0.0.1:50051`.
-- Runs each kind of call once and prints what came back.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local lgrpc = require "lgrpc"

local target = "127.0.0.1:50051"
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-([%w_]+)=(.*)$")
  if k == "server" then target = v
  else io.stderr:write("route_guide client: unknown argument ", a, "\n") os.exit(2) end
end

local pool = assert(lgrpc.proto.load{ "route_guide.proto", include = { dir } })
local features = dofile(dir .. "/features.lua")
local ch = lgrpc.channel(target, { pool = pool, timeout = 10 })
local guide = ch:stub("routeguide.RouteGuide")

local function where(p)
  return string.format("(%.4f, %.4f)", (p.latitude or 0) / 1e7, (p.longitude or 0) / 1e7)
end
local function check(v, st)
  if v == nil then
    io.stderr:write("route_guide client: ", tostring(st), "\n")
    os.exit(1)
  end
  return v
end

-- unary
for _, p in ipairs{ features[2].location, { latitude = 0, longitude = 0 } } do
  local f = check(guide:GetFeature(p))
  if (f.name or "") ~= "" then
    print("GetFeature " .. where(p) .. ": " .. f.name)
  else
    print("GetFeature " .. where(p) .. ": nothing there")
  end
end

-- server streaming
local call = guide:ListFeatures{ lo = { latitude = 465500000, longitude = 79000000 },
  hi = { latitude = 466000000, longitude = 80100000 } }
for f in call:iter() do print("ListFeatures: " .. f.name .. " at " .. where(f.location)) end
check(call:status().code == 0 or nil, call:status())

-- client streaming: a walk over a few features
call = guide:RecordRoute()
for i = 1, 6 do check(call:send(features[i].location)) end
local summary = check(call:close_and_recv())
print(string.format("RecordRoute: %d points, %d features, %d m", summary.point_count or 0,
  summary.feature_count or 0, summary.distance or 0))

-- bidi streaming, from tasks: one sends, the main flow receives
call = guide:RouteChat()
local spot = features[1].location
local sender = lgrpc.spawn(function()
  for i = 1, 3 do check(call:send{ location = spot, message = "note " .. i }) end
  call:close_send()
end)
for note in call:iter() do print("RouteChat: got " .. note.message .. " at " .. where(note.location)) end
check(sender:wait())
check(call:status().code == 0 or nil, call:status())
ch:close()

-- The route guide server: `lua5.4 examples/route_guide/server.lua [--port=N]`.
-- Prints "listening on PORT"; serves until interrupted (or --serve_for=SECONDS).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local lgrpc = require "lgrpc"

local port, serve_for = "50051", nil
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-([%w_]+)=(.*)$")
  if k == "port" then port = v
  elseif k == "serve_for" then serve_for = tonumber(v)
  else io.stderr:write("route_guide server: unknown argument ", a, "\n") os.exit(2) end
end

local pool = assert(lgrpc.proto.load{ "route_guide.proto", include = { dir } })
local features = dofile(dir .. "/features.lua")

local function same_point(a, b)
  return (a.latitude or 0) == (b.latitude or 0) and (a.longitude or 0) == (b.longitude or 0)
end

local function feature_at(p)
  for _, f in ipairs(features) do
    if same_point(f.location, p) then return f end
  end
end

local function inside(p, rect)
  local lo, hi = rect.lo or {}, rect.hi or {}
  local lat0, lat1 = math.min(lo.latitude or 0, hi.latitude or 0), math.max(lo.latitude or 0, hi.latitude or 0)
  local lon0, lon1 = math.min(lo.longitude or 0, hi.longitude or 0), math.max(lo.longitude or 0, hi.longitude or 0)
  return p.latitude >= lat0 and p.latitude <= lat1 and p.longitude >= lon0 and p.longitude <= lon1
end

-- great-circle distance in metres (haversine)
local function distance(a, b)
  local r, f = 6371000, math.pi / 180 / 1e7
  local lat1, lat2 = (a.latitude or 0) * f, (b.latitude or 0) * f
  local dlat, dlon = lat2 - lat1, ((b.longitude or 0) - (a.longitude or 0)) * f
  local h = math.sin(dlat / 2) ^ 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ^ 2
  return math.floor(2 * r * math.atan(math.sqrt(h), math.sqrt(1 - h)) + 0.5)
end

local notes = {}   -- "lat,lon" -> notes left there

local server = lgrpc.server{ pool = pool }
server:add("routeguide.RouteGuide", {
  GetFeature = function(point)
    return feature_at(point) or { name = "", location = point }
  end,
  ListFeatures = function(rect, stream)
    for _, f in ipairs(features) do
      if inside(f.location, rect) then
        local ok, st = stream:send(f)
        if not ok then return nil, st end
      end
    end
  end,
  RecordRoute = function(stream)
    local start = lgrpc.now()
    local count, found, dist, last = 0, 0, 0, nil
    for p in stream:iter() do
      count = count + 1
      if feature_at(p) then found = found + 1 end
      if last then dist = dist + distance(last, p) end
      last = p
    end
    return { point_count = count, feature_count = found, distance = dist,
      elapsed_time = math.floor(lgrpc.now() - start) }
  end,
  RouteChat = function(stream)
    for note in stream:iter() do
      local loc = note.location or {}
      local key = (loc.latitude or 0) .. "," .. (loc.longitude or 0)
      local here = notes[key] or {}
      notes[key] = here
      for _, earlier in ipairs(here) do
        local ok, st = stream:send(earlier)
        if not ok then return nil, st end
      end
      here[#here + 1] = note
    end
  end,
})

local bound = assert(server:listen("127.0.0.1:" .. port))
io.stdout:write("listening on ", bound, "\n")
io.stdout:flush()
if serve_for then
  lgrpc.spawn(function()
    lgrpc.sleep(serve_for)
    server:shutdown(1)
  end)
end
server:run()

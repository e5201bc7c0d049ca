-- lgrpc.metadata — gRPC custom metadata and the header encodings gRPC defines.
-- Owns: key validation, multi-valued metadata objects, -bin base64, grpc-timeout text and
-- grpc-message percent-encoding. Never sees a socket; headers are arrays of { name, value }.
local metadata = {}

---------------------------------------------------------------------------------------------
-- base64 (standard alphabet); encode unpadded, as gRPC implementations send it;
-- decode accepts padded and unpadded input.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local enc_tab, dec_tab = {}, {}
for i = 1, 64 do
  local ch = B64:sub(i, i)
  enc_tab[i - 1] = ch
  dec_tab[ch:byte()] = i - 1
end
-- URL-safe letters are accepted on receive too
dec_tab[("-"):byte()] = 62
dec_tab[("_"):byte()] = 63

local floor = math.floor
local concat, byte, char = table.concat, string.byte, string.char

function metadata.base64_encode(s, pad)
  local out, n = {}, 0
  local len = #s
  for i = 1, len - 2, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a * 65536 + b * 256 + c
    n = n + 1
    out[n] = enc_tab[floor(v / 262144)] .. enc_tab[floor(v / 4096) % 64] ..
      enc_tab[floor(v / 64) % 64] .. enc_tab[v % 64]
  end
  local rest = len % 3
  if rest == 1 then
    local v = byte(s, len) * 65536
    n = n + 1
    out[n] = enc_tab[floor(v / 262144)] .. enc_tab[floor(v / 4096) % 64] .. (pad and "==" or "")
  elseif rest == 2 then
    local a, b = byte(s, len - 1, len)
    local v = a * 65536 + b * 256
    n = n + 1
    out[n] = enc_tab[floor(v / 262144)] .. enc_tab[floor(v / 4096) % 64] ..
      enc_tab[floor(v / 64) % 64] .. (pad and "=" or "")
  end
  return concat(out)
end

--- Decodes base64 with or without padding; returns nil, err on bad input.
function metadata.base64_decode(s)
  s = s:gsub("%s", "")
  s = s:gsub("=+$", "")
  local len = #s
  if len % 4 == 1 then return nil, "invalid base64: bad length" end
  local out, n = {}, 0
  local i = 1
  while i <= len do
    local c1, c2, c3, c4 = byte(s, i, i + 3)
    local d1, d2 = dec_tab[c1], dec_tab[c2]
    local d3, d4 = c3 and dec_tab[c3], c4 and dec_tab[c4]
    if not d1 or not d2 or (c3 and not d3) or (c4 and not d4) then
      return nil, "invalid base64 character near position " .. i
    end
    local v = d1 * 262144 + d2 * 4096 + (d3 or 0) * 64 + (d4 or 0)
    n = n + 1
    if c4 then
      out[n] = char(floor(v / 65536), floor(v / 256) % 256, v % 256)
    elseif c3 then
      out[n] = char(floor(v / 65536), floor(v / 256) % 256)
    else
      out[n] = char(floor(v / 65536))
    end
    i = i + 4
  end
  return concat(out)
end

---------------------------------------------------------------------------------------------
-- keys and values

-- Headers that belong to HTTP/2 or to gRPC itself: a user may neither send nor see them as
-- custom metadata.
local RESERVED = {
  ["content-type"] = true, ["te"] = true, ["host"] = true, ["connection"] = true,
  ["keep-alive"] = true, ["proxy-connection"] = true, ["transfer-encoding"] = true,
  ["upgrade"] = true, ["user-agent"] = false,
}

function metadata.is_reserved(key)
  return key:sub(1, 1) == ":" or key:sub(1, 5) == "grpc-" or RESERVED[key] == true
end

function metadata.is_binary(key)
  return #key > 4 and key:sub(-4) == "-bin"
end

--- Returns the lowercased key, or nil, err when the key is not a legal custom metadata key.
function metadata.check_key(key)
  if type(key) ~= "string" then return nil, "metadata key must be a string, got " .. type(key) end
  if key == "" then return nil, "metadata key is empty" end
  local k = key:lower()
  if k:find("[^%w%-_%.]") then
    return nil, "metadata key " .. string.format("%q", key) .. " has characters outside [0-9a-z-_.]"
  end
  if metadata.is_reserved(k) then
    return nil, "metadata key " .. string.format("%q", key) .. " is reserved"
  end
  return k
end

--- Returns the value, or nil, err when it cannot be sent under key (ASCII values: printable only).
function metadata.check_value(key, value)
  if type(value) == "number" then value = tostring(value) end
  if type(value) ~= "string" then
    return nil, "metadata value for " .. key .. " must be a string, got " .. type(value)
  end
  if not metadata.is_binary(key) and value:find("[^\32-\126]") then
    return nil, "metadata value for " .. key .. " has non-printable characters (use a -bin key)"
  end
  return value
end

---------------------------------------------------------------------------------------------
-- metadata objects: key -> array of values, keys kept in first-insertion order

local MD = {}
MD.__index = MD
MD.__name = "lgrpc.metadata"

function metadata.is(x) return getmetatable(x) == MD end

local function new_md()
  return setmetatable({ _keys = {}, _vals = {} }, MD)
end

function MD:add(key, value)
  local k, err = metadata.check_key(key)
  if not k then return nil, err end
  local v
  v, err = metadata.check_value(k, value)
  if not v then return nil, err end
  local vals = self._vals[k]
  if not vals then
    vals = {}
    self._vals[k] = vals
    self._keys[#self._keys + 1] = k
  end
  vals[#vals + 1] = v
  return self
end

function MD:set(key, value)
  local k, err = metadata.check_key(key)
  if not k then return nil, err end
  self:remove(k)
  if type(value) == "table" then
    for _, v in ipairs(value) do
      local ok, e = self:add(k, v)
      if not ok then return nil, e end
    end
    return self
  end
  return self:add(k, value)
end

function MD:remove(key)
  local k = type(key) == "string" and key:lower() or key
  if self._vals[k] then
    self._vals[k] = nil
    for i, kk in ipairs(self._keys) do
      if kk == k then table.remove(self._keys, i) break end
    end
  end
  return self
end

--- First value of key, or nil.
function MD:get(key)
  local vals = self._vals[type(key) == "string" and key:lower() or key]
  return vals and vals[1]
end

--- All values of key (a fresh array, empty when absent).
function MD:get_all(key)
  local out = {}
  local vals = self._vals[type(key) == "string" and key:lower() or key]
  if vals then for i, v in ipairs(vals) do out[i] = v end end
  return out
end

function MD:keys()
  local out = {}
  for i, k in ipairs(self._keys) do out[i] = k end
  return out
end

--- Iterates (key, value) once per value, keys in insertion order.
function MD:pairs()
  local ki, vi = 1, 0
  return function()
    while true do
      local k = self._keys[ki]
      if not k then return nil end
      vi = vi + 1
      local v = self._vals[k][vi]
      if v ~= nil then return k, v end
      ki, vi = ki + 1, 0
    end
  end
end

function MD:len()
  local n = 0
  for _, k in ipairs(self._keys) do n = n + #self._vals[k] end
  return n
end

--- Plain table: key -> value (one value) or array (several).
function MD:to_table()
  local t = {}
  for _, k in ipairs(self._keys) do
    local vals = self._vals[k]
    if #vals == 1 then t[k] = vals[1] else t[k] = self:get_all(k) end
  end
  return t
end

function MD:copy()
  local c = new_md()
  for k, v in self:pairs() do c:add(k, v) end
  return c
end

--- Appends all values of other (a metadata object or plain table) to self.
function MD:merge(other)
  local src, err = metadata.new(other)
  if not src then return nil, err end
  for k, v in src:pairs() do self:add(k, v) end
  return self
end

--- HTTP/2 header fields for this metadata: array of { name, value }; -bin values base64.
function MD:to_headers(out)
  out = out or {}
  for k, v in self:pairs() do
    if metadata.is_binary(k) then v = metadata.base64_encode(v) end
    out[#out + 1] = { k, v }
  end
  return out
end

function MD:__tostring()
  local parts = {}
  for k, v in self:pairs() do parts[#parts + 1] = k .. "=" .. string.format("%q", v) end
  return "metadata{" .. concat(parts, ", ") .. "}"
end

--- metadata.new(t): t is nil, a metadata object (copied), or a table
-- { key = value | { value, ... } } or an array of { key, value } pairs.
-- Returns a metadata object, or nil, err for an illegal or reserved key or value.
function metadata.new(t)
  if t == nil then return new_md() end
  if metadata.is(t) then return t:copy() end
  if type(t) ~= "table" then return nil, "metadata must be a table, got " .. type(t) end
  local md = new_md()
  local ok, err
  if #t > 0 then
    for _, pair in ipairs(t) do
      if type(pair) ~= "table" then return nil, "metadata array entries must be { key, value }" end
      ok, err = md:add(pair[1], pair[2])
      if not ok then return nil, err end
    end
    return md
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then
      if #v == 0 then
        ok, err = metadata.check_key(k)
        if not ok then return nil, err end
      end
      for _, vv in ipairs(v) do
        ok, err = md:add(k, vv)
        if not ok then return nil, err end
      end
    else
      ok, err = md:add(k, v)
      if not ok then return nil, err end
    end
  end
  return md
end

--- Wraps a table the transport produced (key -> array of strings, keys already checked) in a
-- metadata object without validating it again.
function metadata.from_table(t)
  local md = new_md()
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v, vals = t[k], {}
    if type(v) == "table" then
      for i, x in ipairs(v) do vals[i] = x end
    else
      vals[1] = v
    end
    md._vals[k] = vals
    md._keys[#md._keys + 1] = k
  end
  return md
end

local function trim(s) return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")) end

--- Custom metadata from received header fields (array of { name, value }): reserved and
-- pseudo headers are skipped; -bin values are base64-decoded (padded or not); values joined
-- with commas (as HTTP intermediaries combine repeated fields) are split back into several.
-- opts.split_ascii = false keeps ASCII values whole. Undecodable -bin values are dropped and
-- reported as the second result.
function metadata.from_headers(headers, opts)
  local md = new_md()
  local bad
  local split_ascii = not (opts and opts.split_ascii == false)
  for _, h in ipairs(headers) do
    local k, v = h[1]:lower(), h[2]
    if not metadata.is_reserved(k) and not k:find("[^%w%-_%.]") and k ~= "" then
      local vals = {}
      if metadata.is_binary(k) or split_ascii then
        for part in (v .. ","):gmatch("([^,]*),") do vals[#vals + 1] = trim(part) end
      else
        vals[1] = v
      end
      for _, p in ipairs(vals) do
        if metadata.is_binary(k) then
          local d, err = metadata.base64_decode(p)
          if d then
            md:add(k, d)
          else
            bad = bad or (k .. ": " .. err)
          end
        elseif not p:find("[^\32-\126]") then
          md:add(k, p)
        end
      end
    end
  end
  return md, bad
end

---------------------------------------------------------------------------------------------
-- grpc-timeout: TimeoutValue (1..8 ASCII digits) followed by a unit H M S m u n

local UNITS = { H = 3600, M = 60, S = 1, m = 1e-3, u = 1e-6, n = 1e-9 }
local UNIT_ORDER = { "n", "u", "m", "S", "M", "H" }

--- Text for a timeout of `seconds` (> 0): the finest unit whose value fits 8 digits,
-- rounded up so the peer never sees a shorter deadline than ours. Non-positive timeouts
-- become "1n" (already expired).
function metadata.encode_timeout(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds then
    error("lgrpc.metadata.encode_timeout: seconds must be a number", 2)
  end
  if seconds <= 0 then return "1n" end
  for _, u in ipairs(UNIT_ORDER) do
    local v = math.ceil(seconds / UNITS[u] - 1e-9)
    if v < 1 then v = 1 end
    if v <= 99999999 then return string.format("%d%s", v, u) end
  end
  return "99999999H"
end

--- Seconds for a grpc-timeout text, or nil, err.
function metadata.parse_timeout(text)
  if type(text) ~= "string" then return nil, "grpc-timeout missing" end
  local digits, unit = text:match("^(%d+)([HMSmun])$")
  if not digits or #digits > 8 then
    return nil, "invalid grpc-timeout " .. string.format("%q", text)
  end
  return tonumber(digits) * UNITS[unit]
end

---------------------------------------------------------------------------------------------
-- grpc-message: percent-encoding of bytes outside 0x20..0x7E and of '%' itself

function metadata.encode_message(msg)
  return (msg:gsub("[^\32-\36\38-\126]", function(c)
    return string.format("%%%02X", byte(c))
  end))
end

--- Decodes %XX sequences; malformed ones are kept as they are (gRPC requires that a bad
-- encoding never loses the message).
function metadata.decode_message(text)
  return (text:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

return metadata

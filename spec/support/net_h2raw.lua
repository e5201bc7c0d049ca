-- net_h2raw.lua — hand-built HTTP/2 frames for the transport specs: a peer that says exactly
-- what a test wants (odd statuses, resets, GOAWAYs, bad encodings) to a real lgrpc session.
-- HPACK output is literal-without-indexing only, which every decoder must accept.
local M = {}

local char, byte = string.char, string.byte

local function u32(n)
  return char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
              math.floor(n / 256) % 256, n % 256)
end
M.u32 = u32

function M.frame(ftype, flags, stream, payload)
  local n = #payload
  return char(math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256, ftype, flags)
    .. u32(stream) .. payload
end

local function hint(n, prefix_bits)
  local max = 2 ^ prefix_bits - 1
  if n < max then return char(n) end
  local out = { char(max) }
  n = n - max
  while n >= 128 do
    out[#out + 1] = char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = char(n)
  return table.concat(out)
end

-- fields: array of {name, value}
function M.hpack(fields)
  local out = {}
  for _, f in ipairs(fields) do
    out[#out + 1] = "\0" .. hint(#f[1], 7) .. f[1] .. hint(#f[2], 7) .. f[2]
  end
  return table.concat(out)
end

M.PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
M.END_STREAM, M.END_HEADERS, M.ACK = 1, 4, 1

function M.settings() return M.frame(4, 0, 0, "") end
function M.settings_ack() return M.frame(4, 1, 0, "") end
function M.headers(stream, fields, end_stream)
  return M.frame(1, M.END_HEADERS + (end_stream and M.END_STREAM or 0), stream, M.hpack(fields))
end
function M.data(stream, bytes, end_stream)
  return M.frame(0, end_stream and M.END_STREAM or 0, stream, bytes)
end
function M.rst(stream, code) return M.frame(3, 0, stream, u32(code)) end
function M.goaway(last, code) return M.frame(7, 0, 0, u32(last) .. u32(code)) end
function M.message(bytes, compressed)
  return char(compressed and 1 or 0) .. u32(#bytes) .. bytes
end

-- Splits a byte string into frames: { {type=, flags=, stream=, payload=} ... }
function M.parse(bytes)
  local frames, pos = {}, 1
  if bytes:sub(1, #M.PREFACE) == M.PREFACE then pos = #M.PREFACE + 1 end
  while pos + 8 <= #bytes do
    local a, b, c, t, f, s1, s2, s3, s4 = byte(bytes, pos, pos + 8)
    local len = a * 65536 + b * 256 + c
    frames[#frames + 1] = {
      type = t, flags = f, stream = ((s1 % 128) * 16777216) + s2 * 65536 + s3 * 256 + s4,
      payload = bytes:sub(pos + 9, pos + 8 + len),
    }
    pos = pos + 9 + len
  end
  return frames
end

M.TYPE = { DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8 }

function M.be32(s, i)
  local a, b, c, d = byte(s, i, i + 3)
  return ((a % 128) * 16777216) + b * 65536 + c * 256 + d
end

-- The response headers a gRPC client expects.
function M.grpc_response_headers(extra)
  local f = { { ":status", "200" }, { "content-type", "application/grpc" } }
  for _, x in ipairs(extra or {}) do f[#f + 1] = x end
  return f
end

function M.grpc_request_headers(path, extra)
  local f = { { ":method", "POST" }, { ":scheme", "http" }, { ":path", path or "/pkg.S/M" },
              { ":authority", "test" }, { "te", "trailers" }, { "content-type", "application/grpc" } }
  for _, x in ipairs(extra or {}) do f[#f + 1] = x end
  return f
end

return M

-- lgrpc.auth — credentials a server checks: JWT verifiers (keys from JWKS tables, JWKS files,
-- HMAC secrets and PEM public keys; signatures and claims checked in C, core/jwt.c), static
-- bearer tokens compared in constant time, and the bearer-token reader for request metadata.
-- Never talks to the network and never decides a status: lgrpc.interceptors does that.
local core = require "lgrpc.core"
local cauth, json = core.auth, core.json

local auth = {}

auth.algorithms = cauth.algorithms
auth.null = json.null

local Verifier = {}
Verifier.__index = Verifier
Verifier.__name = "lgrpc.auth.jwt"

local Tokens = {}
Tokens.__index = Tokens
Tokens.__name = "lgrpc.auth.tokens"

local OBJECT, ARRAY, NUMBER = json.object, json.array, json.number

-- A JSON tree (lgrpc.core.json.decode) as plain Lua values: objects become key -> value tables,
-- arrays sequences, null auth.null; integers beyond the interpreter's exact range keep their
-- decimal text (so no int64 claim loses precision on LuaJIT).
local function plain(v)
  local mt = getmetatable(v)
  if mt == OBJECT then
    local t = {}
    for i = 1, #v do
      local k = v[i]
      t[k] = plain(v[k])
    end
    return t
  elseif mt == ARRAY then
    local t = {}
    for i = 1, #v do t[i] = plain(v[i]) end
    return t
  elseif mt == NUMBER then
    if v.text:match("^%-?%d+$") then return v.text end
    return v.value
  end
  return v
end

local function decode_object(text, what)
  local tree, err = json.decode(text, 64)
  if tree == nil then return nil, what .. " is not JSON: " .. err end
  if getmetatable(tree) ~= OBJECT then return nil, what .. " is not a JSON object" end
  return plain(tree)
end

local function b64url(s, what)
  if type(s) ~= "string" or s == "" then return nil, what .. " missing" end
  local bytes = json.base64_decode(s)
  if not bytes then return nil, what .. " is not base64url" end
  return bytes
end

-- Adds one JWK (a table) to a core key set. Keys meant for encryption, of unknown types or
-- algorithms, are skipped (RFC 7517 5: ignore what cannot be used): returns false for those.
local function add_jwk(ks, jwk, where)
  if type(jwk) ~= "table" then return nil, where .. ": a JWK must be an object" end
  if jwk.use ~= nil and jwk.use ~= "sig" then return false end
  local kid = jwk.kid
  if kid ~= nil and type(kid) ~= "string" then return nil, where .. ": kid must be a string" end
  local alg = jwk.alg
  if alg ~= nil then
    local known = false
    for _, a in ipairs(cauth.algorithms) do if a == alg then known = true end end
    if not known then return false end
  end
  local kty = jwk.kty
  local ok, err
  if kty == "oct" then
    local k, e = b64url(jwk.k, "k")
    if not k then return nil, where .. ": " .. e end
    ok, err = ks:add_oct(k, kid, alg)
  elseif kty == "RSA" then
    local n, e1 = b64url(jwk.n, "n")
    if not n then return nil, where .. ": " .. e1 end
    local e, e2 = b64url(jwk.e, "e")
    if not e then return nil, where .. ": " .. e2 end
    ok, err = ks:add_rsa(n, e, kid, alg)
  elseif kty == "EC" then
    if jwk.crv ~= "P-256" and jwk.crv ~= "P-384" then return false end
    local x, e1 = b64url(jwk.x, "x")
    if not x then return nil, where .. ": " .. e1 end
    local y, e2 = b64url(jwk.y, "y")
    if not y then return nil, where .. ": " .. e2 end
    ok, err = ks:add_ec(jwk.crv, x, y, kid, alg)
  else
    return false
  end
  if not ok then return nil, where .. ": " .. err end
  return true
end

local function add_jwks(ks, src, where)
  if type(src) == "string" then
    local t, err = decode_object(src, where)
    if not t then return nil, err end
    src = t
  end
  if type(src) ~= "table" then return nil, where .. ": JWKS table or JSON text expected" end
  local keys = src.keys
  if keys == nil and src.kty ~= nil then keys = { src } end -- a single JWK
  if type(keys) ~= "table" then return nil, where .. ": no \"keys\" array" end
  local added = 0
  for i, jwk in ipairs(keys) do
    local ok, err = add_jwk(ks, jwk, where .. ": key " .. i)
    if ok == nil then return nil, err end
    if ok then added = added + 1 end
  end
  return added
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  if not text then return nil, path .. ": cannot read" end
  return text
end

--- auth.keyset(jwks) -> keyset | nil, err: a JWKS ({ keys = { ... } }, as a table or JSON
-- text) or a single JWK. RSA (n, e), EC P-256/P-384 (crv, x, y) and oct (k) keys are used;
-- keys with `use` other than "sig" or an unknown kty, crv or alg are skipped.
function auth.keyset(jwks)
  local ks = cauth.keyset()
  local n, err = add_jwks(ks, jwks, "jwks")
  if not n then return nil, err end
  if n == 0 then return nil, "jwks: no usable key" end
  return ks
end

--- auth.jwks_file(path) -> keyset | nil, err
function auth.jwks_file(path)
  if type(path) ~= "string" then error("lgrpc.auth.jwks_file: path expected", 2) end
  local text, err = read_file(path)
  if not text then return nil, err end
  local ks = cauth.keyset()
  local n
  n, err = add_jwks(ks, text, path)
  if not n then return nil, err end
  if n == 0 then return nil, path .. ": no usable key" end
  return ks
end

local function list_of_strings(v, name)
  if v == nil then return nil end
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" then error("lgrpc.auth.jwt: " .. name .. " must be a string or a list", 3) end
  for _, s in ipairs(v) do
    if type(s) ~= "string" then error("lgrpc.auth.jwt: " .. name .. " must hold strings", 3) end
  end
  if #v > 32 then error("lgrpc.auth.jwt: at most 32 " .. name .. " values", 3) end
  return v
end

--- auth.jwt(opts) -> verifier. Keys (at least one source): `keys` (a JWKS table or text, or a
-- keyset from auth.keyset), `jwks_file`, `secret` (HMAC secret), `pem` (a public key or
-- certificate PEM, or a list). Checks: `issuer`, `audience` (a string or a list: one must
-- match), `algorithms` (accepted names, default all), `leeway` (seconds, default 0),
-- `require_exp` (default true), `max_length` (bytes, default 16384), `clock` (function
-- returning Unix seconds, default os.time). Bad options raise.
function auth.jwt(opts)
  if type(opts) ~= "table" then error("lgrpc.auth.jwt: options table expected", 2) end
  local sets = {}
  local ks = cauth.keyset()
  if opts.keys ~= nil then
    if type(opts.keys) == "userdata" then
      sets[#sets + 1] = opts.keys
    else
      local n, err = add_jwks(ks, opts.keys, "keys")
      if not n then error("lgrpc.auth.jwt: " .. err, 2) end
    end
  end
  if opts.jwks_file ~= nil then
    local text, err = read_file(opts.jwks_file)
    if not text then error("lgrpc.auth.jwt: " .. err, 2) end
    local n
    n, err = add_jwks(ks, text, opts.jwks_file)
    if not n then error("lgrpc.auth.jwt: " .. err, 2) end
  end
  if opts.secret ~= nil then
    if type(opts.secret) ~= "string" then error("lgrpc.auth.jwt: secret must be a string", 2) end
    local ok, err = ks:add_oct(opts.secret)
    if not ok then error("lgrpc.auth.jwt: secret: " .. err, 2) end
  end
  if opts.pem ~= nil then
    local pems = type(opts.pem) == "table" and opts.pem or { opts.pem }
    for i, p in ipairs(pems) do
      if type(p) ~= "string" then error("lgrpc.auth.jwt: pem must be a string or a list", 2) end
      local ok, err = ks:add_pem(p)
      if not ok then error("lgrpc.auth.jwt: pem " .. i .. ": " .. err, 2) end
    end
  end
  if ks:count() > 0 then sets[#sets + 1] = ks end
  if #sets == 0 then error("lgrpc.auth.jwt: no key (keys, jwks_file, secret or pem)", 2) end
  local clock = opts.clock or os.time
  if type(clock) ~= "function" then error("lgrpc.auth.jwt: clock must be a function", 2) end
  local policy = {
    issuer = list_of_strings(opts.issuer, "issuer"),
    audience = list_of_strings(opts.audience, "audience"),
    algorithms = list_of_strings(opts.algorithms, "algorithms"),
    leeway = opts.leeway or 0,
    require_exp = opts.require_exp ~= false,
    max_length = opts.max_length,
  }
  if type(policy.leeway) ~= "number" then error("lgrpc.auth.jwt: leeway must be seconds", 2) end
  for _, a in ipairs(policy.algorithms or {}) do
    local known = false
    for _, b in ipairs(cauth.algorithms) do if a == b then known = true end end
    if not known then error("lgrpc.auth.jwt: unknown algorithm " .. a, 2) end
  end
  return setmetatable({ sets = sets, policy = policy, clock = clock }, Verifier)
end

--- verifier:verify(token) -> claims, header | nil, err, reason. claims and header are plain
-- Lua tables; reason is a stable name ("EXPIRED", "SIGNATURE", "AUDIENCE", ...).
function Verifier:verify(token)
  if type(token) ~= "string" then return nil, "token must be a string", "FORMAT" end
  local p = self.policy
  p.now = self.clock()
  local payload, info, reason
  local sig_err
  for _, ks in ipairs(self.sets) do
    payload, info, reason = ks:verify(token, p)
    if payload then break end
    -- another set may hold the key; a signature failure outranks "no key"
    if reason == "SIGNATURE" then sig_err = info
    elseif reason ~= "NOKEY" then break end
  end
  if not payload then
    if sig_err and (reason == "NOKEY" or reason == "SIGNATURE") then
      return nil, sig_err, "SIGNATURE"
    end
    return nil, info, reason
  end
  local claims, err = decode_object(payload, "claims")
  if not claims then return nil, err, "CLAIMS" end
  local header
  header, err = decode_object(info.header, "header")
  if not header then return nil, err, "HEADER" end
  return claims, header
end

--- auth.tokens{ [token] = identity, ... } -> verifier whose :verify(token) returns the
-- identity (any non-nil value) of a known token, comparing every token in constant time.
function auth.tokens(map)
  if type(map) ~= "table" then error("lgrpc.auth.tokens: table { [token] = identity } expected", 2) end
  local list = {}
  for tok, who in pairs(map) do
    if type(tok) ~= "string" or tok == "" then error("lgrpc.auth.tokens: tokens are strings", 2) end
    list[#list + 1] = { tok, who }
  end
  return setmetatable({ list = list }, Tokens)
end

function Tokens:verify(token)
  if type(token) ~= "string" then return nil, "token must be a string", "FORMAT" end
  local found
  for _, e in ipairs(self.list) do
    -- no early exit: the time spent does not tell which entry matched
    if cauth.equal(token, e[1]) and found == nil then found = e[2] end
  end
  if found == nil then return nil, "unknown token", "SIGNATURE" end
  return found
end

--- auth.bearer(md, header?) -> token | nil, err: the token of an `authorization: Bearer <token>`
-- entry of a metadata object (or a server ctx); `header` names another key.
function auth.bearer(md, header)
  if type(md) == "table" and md.metadata ~= nil and type(md.get) ~= "function" then
    md = md.metadata
  end
  if type(md) ~= "table" or type(md.get_all) ~= "function" then
    error("lgrpc.auth.bearer: metadata or ctx expected", 2)
  end
  local values = md:get_all(header or "authorization") or {}
  if #values == 0 then return nil, "missing bearer token" end
  if #values > 1 then return nil, "more than one authorization value" end
  local scheme, token = values[1]:match("^(%S+) +(%S+)%s*$")
  if not scheme or scheme:lower() ~= "bearer" then
    return nil, "authorization is not a Bearer token"
  end
  return token
end

--- auth.equal(a, b) -> bool, comparing in time that depends only on the lengths.
auth.equal = cauth.equal

--- auth.scopes(claims) -> set of the scopes a token grants: "scope" (space-separated, RFC 8693)
-- or "scp" (a list or a string).
function auth.scopes(claims)
  local set = {}
  if type(claims) ~= "table" then return set end
  for _, field in ipairs({ "scope", "scp" }) do
    local v = claims[field]
    if type(v) == "string" then
      for s in v:gmatch("%S+") do set[s] = true end
    elseif type(v) == "table" then
      for _, s in ipairs(v) do if type(s) == "string" then set[s] = true end end
    end
  end
  return set
end

--- auth.parse(token) -> header, claims | nil, err: the token's contents, NOT verified
-- (for logging or picking an issuer's keys; never for decisions).
function auth.parse(token)
  if type(token) ~= "string" then error("lgrpc.auth.parse: token string expected", 2) end
  local h, p = cauth.parse(token)
  if not h then return nil, p end
  local header, err = decode_object(h, "header")
  if not header then return nil, err end
  local claims
  claims, err = decode_object(p, "claims")
  if not claims then return nil, err end
  return header, claims
end

return auth

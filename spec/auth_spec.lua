-- lgrpc.auth (and lgrpc.core.auth under it): JWT verification against tokens python3 signs with
-- hmac and python3-cryptography (spec/support/jwt_tokens.py): every algorithm, key sources
-- (JWKS table, text and file, secret, PEM key and certificate), kid selection, claims checks
-- with leeway, and every kind of bad token; static bearer tokens and the bearer reader.
local auth = require "lgrpc.auth"
local core = require "lgrpc.core"
local metadata = require "lgrpc.metadata"

local top = os.getenv("LGRPC_TOP") or "."
local NOW = 1700000000

-- the fixture document as plain Lua tables
local function plain(v)
  local mt = getmetatable(v)
  if mt ~= core.json.object and mt ~= core.json.array then return v end
  local t = {}
  for i = 1, #v do
    if mt == core.json.object then t[v[i]] = plain(v[v[i]]) else t[i] = plain(v[i]) end
  end
  return t
end

local function fixtures()
  local p = assert(io.popen("env -u LD_PRELOAD /usr/bin/python3 " .. top ..
    "/spec/support/jwt_tokens.py " .. NOW))
  local text = p:read("*a")
  p:close()
  return plain(assert(core.json.decode(text)))
end

local F = fixtures()
local T = F.tokens
local function clock() return NOW end

local function verifier(extra)
  local o = { keys = F.jwks, issuer = F.issuer, audience = F.audience, clock = clock }
  for k, v in pairs(extra or {}) do o[k] = v end
  return auth.jwt(o)
end

local function fails(v, token, reason, text)
  local claims, err, why = v:verify(token)
  assert.is_nil(claims)
  assert.are.equal(reason, why, "reason for " .. tostring(err))
  if text then assert.matches(text, err, 1, true) end
end

describe("lgrpc.auth JWT verification", function()
  it("accepts a token of every algorithm and returns plain claims and header", function()
    local v = verifier()
    for _, alg in ipairs{ "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384" } do
      local claims, header = v:verify(T[alg])
      assert.is_table(claims, alg .. ": " .. tostring(header))
      assert.are.equal("ann", claims.sub)
      assert.are.equal(alg, header.alg)
      assert.are.same({ "reader" }, claims.roles)
      assert.are.equal("read write", claims.scope)
    end
    assert.are.same({ "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384" },
      auth.algorithms)
  end)

  it("keeps int64 claims exact on both interpreters, and null as auth.null", function()
    local claims = verifier():verify(T.HS256)
    assert.are.equal(auth.null, claims.nothing)
    if math.type then
      assert.are.equal(9007199254740993, claims.big)
      assert.are.equal("integer", math.type(claims.big))
    else
      assert.are.equal("9007199254740993", claims.big)
    end
  end)

  it("refuses expired and not-yet-valid tokens, with leeway for clock skew", function()
    fails(verifier(), T.expired, "EXPIRED", "token expired")
    fails(verifier(), T.expired_recently, "EXPIRED")
    assert.is_table(verifier{ leeway = 10 }:verify(T.expired_recently))
    fails(verifier{ leeway = 10 }, T.expired, "EXPIRED")
    fails(verifier(), T.not_yet_valid, "NOTYET", "not valid yet")
    assert.is_table(verifier{ leeway = 200 }:verify(T.not_yet_valid))
    -- exp is the first instant the token is invalid
    local at_exp = verifier{ clock = function() return NOW + 3600 end }
    fails(at_exp, T.HS256, "EXPIRED")
    local before = verifier{ clock = function() return NOW + 3599 end }
    assert.is_table(before:verify(T.HS256))
  end)

  it("requires exp unless told otherwise", function()
    fails(verifier(), T.no_exp, "MISSING", "exp")
    assert.is_table(verifier{ require_exp = false }:verify(T.no_exp))
  end)

  it("checks issuer and audience (a string or a list on either side)", function()
    fails(verifier(), T.wrong_audience, "AUDIENCE", "audience")
    fails(verifier(), T.wrong_issuer, "ISSUER", "issuer")
    assert.is_table(verifier():verify(T.aud_array))
    assert.is_table(verifier{ audience = { "x", "someone-else" } }:verify(T.wrong_audience))
    assert.is_table(verifier{ issuer = { "https://evil.test" } }:verify(T.wrong_issuer))
    fails(verifier{ audience = "other-service" }, T.HS256, "AUDIENCE")
    -- no issuer/audience configured: not checked
    assert.is_table(auth.jwt{ keys = F.jwks, clock = clock }:verify(T.wrong_audience))
  end)

  it("refuses tokens signed with another key", function()
    fails(verifier(), T.wrong_key_hs, "SIGNATURE", "signature does not verify")
    fails(verifier(), T.wrong_key_rs, "SIGNATURE")
    fails(verifier(), T.wrong_key_es, "SIGNATURE")
    -- the other key set verifies its own token, and not ours
    local other = auth.jwt{ keys = F.other_jwks, clock = clock }
    assert.is_table(other:verify(T.wrong_key_rs))
    fails(other, T.RS256, "SIGNATURE")
  end)

  it("refuses tampered payloads for every key type", function()
    fails(verifier(), T.tampered_payload, "SIGNATURE")
    fails(verifier(), T.tampered_payload_rs, "SIGNATURE")
    fails(verifier(), T.tampered_payload_es, "SIGNATURE")
    fails(verifier(), T.es256_der_signature, "SIGNATURE")
  end)

  it("refuses alg none in every spelling and unsupported algorithms", function()
    fails(verifier(), T.alg_none, "ALG", "algorithm")
    fails(verifier(), T.alg_none_sig, "ALG")
    fails(verifier(), T.alg_None, "ALG")
    fails(verifier(), T.alg_ps256, "ALG")
    fails(verifier{ require_exp = false }, T.alg_none, "ALG")
  end)

  it("binds the algorithm to the key type (no HS256 keyed with an RSA public key)", function()
    fails(verifier(), T.hs_with_rsa_public_key, "NOKEY")
    -- a verifier that only knows the RSA key as PEM must not use the PEM text as a secret
    local pem_only = auth.jwt{ pem = F.pem.rsa, clock = clock }
    fails(pem_only, T.hs_with_rsa_public_key, "NOKEY")
    fails(pem_only, T.hs_with_rsa_public_key_no_kid, "NOKEY")
    fails(verifier(), T.rs_naming_ec_key, "NOKEY")
    fails(verifier(), T.es256_naming_p384_key, "NOKEY")
  end)

  it("selects keys by kid, and by algorithm when the token names none", function()
    fails(verifier(), T.unknown_kid, "NOKEY", "no key")
    assert.is_table(verifier():verify(T.no_kid_rs256))
    assert.is_table(verifier():verify(T.no_kid_es384))
  end)

  it("restricts algorithms when asked", function()
    local v = verifier{ algorithms = { "ES256", "ES384" } }
    assert.is_table(v:verify(T.ES256))
    fails(v, T.RS256, "ALG")
    fails(v, T.HS256, "ALG")
    assert.has_error(function() verifier{ algorithms = { "none" } } end,
      "lgrpc.auth.jwt: unknown algorithm none")
  end)

  it("refuses malformed tokens with a reason", function()
    local v = verifier()
    fails(v, T.crit_header, "HEADER")
    fails(v, T.duplicate_alg, "HEADER")
    fails(v, T.header_not_json, "HEADER")
    fails(v, T.payload_not_object, "CLAIMS")
    fails(v, T.exp_is_string, "CLAIMS")
    fails(v, T.empty_signature, "SIGNATURE")
    for _, name in ipairs{ "two_parts", "four_parts", "padded", "bad_base64" } do
      fails(v, T[name], "FORMAT")
    end
    fails(v, "", "FORMAT")
    fails(v, "..", "FORMAT")
    fails(v, "a.b.c", "FORMAT")
    fails(v, string.rep("a", 20000) .. ".b.c", "FORMAT", "longer than")
    fails(v, 42, "FORMAT")
  end)

  it("reads keys from PEM public keys, certificates and secrets", function()
    local rsa = auth.jwt{ pem = F.pem.rsa, clock = clock }
    assert.is_table(rsa:verify(T.RS256))
    assert.is_table(rsa:verify(T.RS512))
    fails(rsa, T.ES256, "NOKEY")
    local cert = auth.jwt{ pem = F.pem.cert, clock = clock }
    assert.is_table(cert:verify(T.RS384))
    local ecs = auth.jwt{ pem = { F.pem.ec256, F.pem.ec384 }, clock = clock }
    assert.is_table(ecs:verify(T.ES256))
    assert.is_table(ecs:verify(T.ES384))
    local hs = auth.jwt{ secret = F.secret, clock = clock }
    assert.is_table(hs:verify(T.HS512))
    fails(hs, T.wrong_key_hs, "SIGNATURE")
    assert.has_error(function() auth.jwt{ pem = "not a pem" } end)
  end)

  it("reads a JWKS from text, from a file and from a key set", function()
    local text = core.json.encode(core.json.decode(
      '{"keys":[' ..
      '{"kty":"oct","kid":"hs","k":"' .. F.jwks.keys[1].k .. '"},' ..
      '{"kty":"RSA","kid":"rsa","n":"' .. F.jwks.keys[2].n .. '","e":"' .. F.jwks.keys[2].e .. '"},' ..
      '{"kty":"RSA","use":"enc","kid":"enc","n":"AQAB","e":"AQAB"},' ..
      '{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},' ..
      '{"kty":"RSA","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}]}'))
    local v = auth.jwt{ keys = text, clock = clock }
    assert.is_table(v:verify(T.HS256))
    assert.is_table(v:verify(T.RS256))
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
    local ks = assert(auth.jwks_file(path))
    assert.are.equal(2, ks:count())
    assert.is_table(auth.jwt{ jwks_file = path, clock = clock }:verify(T.RS256))
    assert.is_table(auth.jwt{ keys = ks, clock = clock }:verify(T.HS384))
    os.remove(path)
    local missing, err = auth.jwks_file(path)
    assert.is_nil(missing)
    assert.matches("No such file", err)
  end)

  it("refuses unusable JWKS with the key named", function()
    local function bad(jwks, text)
      local ks, err = auth.keyset(jwks)
      assert.is_nil(ks)
      assert.matches(text, err, 1, true)
    end
    bad({ keys = { { kty = "RSA", n = "AQAB", e = "AQAB" } } }, "key 1: unusable key")
    bad({ keys = { F.jwks.keys[1], { kty = "RSA", e = "AQAB" } } }, "key 2: n missing")
    local ec = {}
    for k, v in pairs(F.jwks.keys[3]) do ec[k] = v end
    ec.y = ec.x -- (x, x) is not on P-256
    bad({ keys = { ec } }, "key 1: unusable key")
    bad({ keys = { { kty = "oct", k = "***" } } }, "k is not base64url")
    bad({ keys = { { kty = "oct", k = "" } } }, "k missing")
    bad({ keys = { { kty = "OKP" } } }, "no usable key")
    bad({ keys = { { kty = "oct", k = "c2VjcmV0", alg = "RS256" } } }, "algorithm")
    bad("{not json", "jwks is not JSON")
    bad({}, "no \"keys\" array")
    assert.has_error(function() auth.jwt{ clock = clock } end,
      "lgrpc.auth.jwt: no key (keys, jwks_file, secret or pem)")
  end)

  it("tries every key source: a key set given as keys, then secret and pem", function()
    local other_oct = assert(auth.keyset{ keys = { { kty = "oct", k = "b3RoZXItc2VjcmV0" } } })
    local v = auth.jwt{ keys = other_oct, secret = F.secret, pem = F.pem.rsa, clock = clock }
    assert.is_table(v:verify(T.HS256))
    assert.is_table(v:verify(T.RS256))
    fails(v, T.wrong_key_hs, "SIGNATURE")
    fails(v, T.ES256, "NOKEY")
    fails(v, T.expired, "EXPIRED")
  end)

  it("honours a key's own alg", function()
    local v = auth.jwt{ keys = { keys = { { kty = "oct", k = F.jwks.keys[1].k, alg = "HS384" } } },
      clock = clock }
    assert.is_table(v:verify(T.HS384))
    fails(v, T.HS256, "NOKEY")
  end)

  it("refuses non-canonical base64url (set unused bits in a part's last character)", function()
    local v = verifier()
    local h, p, sig = T.HS256:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    assert.is_table(v:verify(h .. "." .. p .. "." .. sig))
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    local function bump(part)
      local last = part:sub(-1)
      local i = alphabet:find(last, 1, true)
      return part:sub(1, -2) .. alphabet:sub(i + 1, i + 1)
    end
    -- an HS256 signature is 32 bytes: 43 characters, the last one with 2 unused bits
    assert.are.equal(3, #sig % 4)
    fails(v, h .. "." .. p .. "." .. bump(sig), "FORMAT")
  end)

  it("never accepts a mutated token and never crashes on one", function()
    local v = verifier()
    local seed = 7
    local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n + 1 end
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \0{}\""
    for _, name in ipairs{ "HS256", "RS256", "ES256", "ES384" } do
      local good = T[name]
      for _ = 1, 150 do
        local pos = rand(#good)
        local k = rand(#alphabet)
        local c = alphabet:sub(k, k)
        local mutated = good:sub(1, pos - 1) .. c .. good:sub(pos + 1)
        if mutated ~= good then
          local claims, err, why = v:verify(mutated)
          assert.is_nil(claims, mutated)
          assert.is_string(err)
          assert.is_string(why)
        end
      end
    end
  end)
end)

describe("lgrpc.core.auth", function()
  it("raises on wrong arguments and returns nil, err, reason on bad input", function()
    local ks = core.auth.keyset()
    assert.are.equal(0, ks:count())
    assert.has_error(function() ks:add_oct("secret", "kid", "XS256") end)
    assert.has_error(function() ks:add_oct() end)
    assert.has_error(function() ks:verify(T.HS256) end)
    assert.has_error(function() ks:verify(T.HS256, {}) end, "lgrpc.auth: option now must be a number")
    assert.has_error(function() ks:verify(T.HS256, { now = 1, issuer = 5 }) end)
    assert.has_error(function() ks:verify(T.HS256, { now = 1, algorithms = { "none" } }) end,
      "lgrpc.auth: unknown algorithm none")
    local ok, err, why = ks:add_oct("", "k")
    assert.is_nil(ok)
    assert.are.same({ "unusable key", "KEY" }, { err, why })
    ok, err, why = ks:add_oct("secret", "k", "RS256")
    assert.are.same({ "algorithm not accepted", "ALG" }, { err, why })
    ok, err = ks:add_ec("P-521", "x", "y")
    assert.are.equal("unusable key", err)
    ok, err = ks:add_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert.are.equal("unusable key", err)
    assert.is_true(ks:add_oct(F.secret, "hs"))
    local payload, info = ks:verify(T.HS256, { now = NOW })
    assert.matches('"sub":"ann"', payload, 1, true)
    assert.are.same({ "HS256", "hs" }, { info.alg, info.kid })
    assert.matches('"alg":"HS256"', info.header, 1, true)
    ks:close()
    assert.has_error(function() ks:count() end, "lgrpc.auth: key set is closed")
    local too_many = {}
    for i = 1, 33 do too_many[i] = "aud" .. i end
    assert.has_error(function() auth.jwt{ secret = "s", audience = too_many } end,
      "lgrpc.auth.jwt: at most 32 audience values")
  end)
end)

describe("lgrpc.auth bearer tokens", function()
  it("reads Bearer tokens from metadata and contexts", function()
    assert.are.equal("abc", auth.bearer(metadata.new{ authorization = "Bearer abc" }))
    assert.are.equal("abc", auth.bearer(metadata.new{ authorization = "bearer  abc" }))
    assert.are.equal("xyz", auth.bearer({ metadata = metadata.new{ ["x-token"] = "Bearer xyz" } },
      "x-token"))
    local function no(md, text)
      local tok, err = auth.bearer(metadata.new(md))
      assert.is_nil(tok)
      assert.are.equal(text, err)
    end
    no({}, "missing bearer token")
    no({ authorization = "Basic YTpi" }, "authorization is not a Bearer token")
    no({ authorization = "Bearer" }, "authorization is not a Bearer token")
    no({ authorization = "Bearer a b" }, "authorization is not a Bearer token")
    no({ authorization = { "Bearer a", "Bearer b" } }, "more than one authorization value")
    assert.has_error(function() auth.bearer("x") end, "lgrpc.auth.bearer: metadata or ctx expected")
  end)

  it("checks static tokens in constant time and returns the identity", function()
    local v = auth.tokens{ ["t-ann"] = { user = "ann" }, ["t-bob"] = "bob" }
    assert.are.same({ user = "ann" }, v:verify("t-ann"))
    assert.are.equal("bob", v:verify("t-bob"))
    local who, err, why = v:verify("t-an")
    assert.is_nil(who)
    assert.are.equal("unknown token", err)
    assert.are.equal("SIGNATURE", why)
    assert.is_nil(v:verify("t-ann\0"))
    assert.is_true(auth.equal("abc", "abc"))
    assert.is_false(auth.equal("abc", "abd"))
    assert.is_false(auth.equal("abc", "abcd"))
    assert.is_false(auth.equal("", "a"))
    assert.is_true(auth.equal("", ""))
  end)

  it("parses a token without trusting it", function()
    local header, claims = auth.parse(T.RS256)
    assert.are.equal("rsa", header.kid)
    assert.are.equal("ann", claims.sub)
    local h, err = auth.parse("nope")
    assert.is_nil(h)
    assert.matches("malformed", err)
  end)
end)

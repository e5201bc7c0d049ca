-- Malformed .proto files (spec/fixtures/bad, one per validation rule) through
-- `bin/lgrpc descriptor-set` and through proto.load, against protoc run live on the same file:
-- the same exit status, the error at protoc's FILE:LINE:COL (or, where protoc prints no position,
-- at the offending token), nothing written, no Lua traceback.
local corpus = require "corpus"

local proto = require "lgrpc.proto"
local BAD = corpus.top() .. "/spec/fixtures/bad"

-- rule: what is wrong. at: "LINE:COL" of the offending token, for the files where protoc prints
-- no position. mentions: words the error must contain so a user can find the problem.
local CASES = {
  { "syntax_missing_semicolon.proto", "syntax: missing ';'" },
  { "syntax_bad_token.proto", "syntax: a character that starts no token" },
  { "syntax_unterminated_string.proto", "syntax: unterminated string" },
  { "syntax_bad_escape.proto", "syntax: bad escape in a string" },
  { "syntax_unterminated_comment.proto", "syntax: unterminated block comment" },
  { "syntax_bad_number.proto", "syntax: bad number (0x without digits)" },
  { "syntax_bad_octal.proto", "syntax: bad number (9 in an octal literal)" },
  { "syntax_unexpected_eof.proto", "syntax: end of file inside a message" },
  { "nested_block_comment.proto", "syntax: '/*' inside a block comment" },
  { "syntax_missing_field_number.proto", "syntax: field without a number" },
  { "undefined_type.proto", "undefined type", mentions = { "Missing" } },
  { "type_wrong_scope.proto", "nested type named outside its scope", mentions = { "Inner" } },
  { "type_ambiguous_scope.proto", "innermost scope shadows the intended type",
    mentions = { "foo.Bar" } },
  { "duplicate_message.proto", "duplicate message name" },
  { "duplicate_field_name.proto", "duplicate field name" },
  { "duplicate_enum_value.proto", "duplicate enum value name", mentions = { "ONE" } },
  { "duplicate_enum_with_values.proto", "an enum defined twice, values and all",
    mentions = { "E_ZERO" } },
  { "enum_value_cpp_scope.proto", "enum values are siblings of their enum (C++ scoping)",
    mentions = { "SHARED" } },
  { "duplicate_field_number.proto", "duplicate field number" },
  { "reserved_number_used.proto", "reserved number used", at = "5:13" },
  { "reserved_name_used.proto", "reserved name used", mentions = { "old" } },
  { "field_number_zero.proto", "field number 0" },
  { "field_number_too_large.proto", "field number above 536870911" },
  { "field_number_implementation_reserved.proto", "field number in 19000-19999" },
  { "nesting_too_deep.proto", "messages nested deeper than protoc's limit", at = "34:63" },
  { "proto3_first_enum_value_not_zero.proto", "proto3: first enum value not zero" },
  { "proto3_required.proto", "proto3: required" },
  { "proto3_default.proto", "proto3: default value" },
  { "proto3_group.proto", "proto3: group" },
  { "map_key_float.proto", "map key: float" },
  { "map_key_bytes.proto", "map key: bytes" },
  { "map_key_message.proto", "map key: message" },
  { "map_key_enum.proto", "map key: enum" },
  { "map_in_oneof.proto", "map field in a oneof" },
  { "repeated_in_oneof.proto", "repeated field in a oneof" },
  { "cycle/a.proto", "import cycle", mentions = { "cycle/b.proto" }, with = { "cycle/b.proto" } },
  { "importer/main.proto", "an error inside an imported file", mentions = { "Nope" },
    with = { "importer/broken.proto" } },
  { "import_public_missing.proto", "missing `import public`",
    mentions = { "nowhere/public.proto" } },
  { "missing_import.proto", "missing import", mentions = { "nowhere/absent.proto" } },
  { "unknown_custom_option.proto", "unknown custom option", mentions = { "no_such_option" } },
  { "unknown_builtin_option.proto", "unknown standard option", mentions = { "java_pakage" } },
  { "option_string_for_int.proto", "option type mismatch: string for int32" },
  { "option_int_out_of_range.proto", "option type mismatch: int32 out of range" },
  { "option_unknown_enum_value.proto", "option type mismatch: unknown enum value",
    mentions = { "SLOW" } },
  { "builtin_option_type_mismatch.proto", "standard option type mismatch: string for bool" },
  { "edition_2023.proto", "edition = \"2023\"" },
  { "duplicate_option.proto", "option set twice", mentions = { "java_package" } },
  { "json_name_conflict.proto", "proto3 JSON name conflict" },
  -- positions as protoc counts them
  { "column_after_tabs.proto", "column after tabs (next multiple of 8)" },
  { "crlf_line_ends.proto", "CRLF line ends" },
  { "column_after_utf8.proto", "column after non-ASCII text (bytes)" },
  -- more of protoc's rules
  { "syntax_unknown_version.proto", "syntax = \"proto4\"" },
  { "proto2_missing_label.proto", "proto2: field without a label" },
  { "package_twice.proto", "two package statements" },
  { "group_lowercase_name.proto", "group name not capitalised" },
  { "extension_out_of_range.proto", "extension number outside the extendee's ranges" },
  { "extend_non_message.proto", "extend of an enum", mentions = { "E" } },
  { "extension_ranges_overlap.proto", "overlapping extension ranges" },
  { "reserved_ranges_overlap.proto", "overlapping reserved ranges", at = "5:12" },
  { "enum_reserved_ranges_overlap.proto", "overlapping reserved ranges in an enum", at = "6:12" },
  { "field_number_not_an_int.proto", "field number beyond integer range" },
  { "number_out_of_range_then_no_semicolon.proto",
    "number out of range reported before a later syntax error" },
  { "default_on_repeated.proto", "default on a repeated field" },
  { "default_on_message.proto", "default on a message field" },
  { "default_wrong_type.proto", "default of the wrong type" },
  { "default_unknown_enum_value.proto", "default naming no enum value", mentions = { "B" } },
  { "default_int_out_of_range.proto", "default out of range" },
  { "default_negative_number_for_enum.proto", "negative number as an enum default" },
  { "default_on_enum_value.proto", "a 'default' option on an enum value (not a field's default)",
    mentions = { "default" } },
  { "default_on_extension_range.proto", "a 'default' option on an extension range (not a field's default)",
    mentions = { "default" } },
  { "packed_non_repeated.proto", "[packed] on a singular field" },
  { "packed_string.proto", "[packed] on repeated strings" },
  { "json_name_on_extension.proto", "json_name on an extension" },
  { "duplicate_oneof_name.proto", "oneof named like a field", mentions = { "choice" } },
  { "map_entry_name_conflict.proto", "nested message named like a map entry",
    mentions = { "CountsEntry" } },
  { "enum_value_out_of_range.proto", "enum value outside int32" },
  { "enum_duplicate_number.proto", "enum number reused without allow_alias",
    mentions = { "UNO" } },
  { "rpc_undefined_input.proto", "rpc input type not defined", mentions = { "Request" } },
  { "rpc_scalar_input.proto", "rpc input type a scalar" },
  { "field_type_is_service.proto", "field type naming a service" },
  { "option_on_wrong_target.proto", "field option on a message", mentions = { "field_only" } },
  { "option_aggregate_unknown_field.proto", "aggregate option naming no field",
    mentions = { "b" } },
  { "option_subfield_of_scalar.proto", "sub-field of a scalar option", mentions = { "weight" } },
}

local function expected_position(case, protoc_err)
  local p = corpus.first_error(protoc_err)
  if p and p.line then return p.file .. ":" .. p.line .. ":" .. p.col, p.text end
  assert(case.at, "protoc printed no position for " .. case[1] .. " and the case gives none:\n" ..
    protoc_err)
  return case[1] .. ":" .. case.at, protoc_err:match("[^\n]*") .. " (no position: the offending token's)"
end

local function position_of(text)
  local p = corpus.position(text)
  return p and p.file .. ":" .. p.line .. ":" .. p.col
end

describe("proto errors: malformed files", function()
  it("covers every fixture in spec/fixtures/bad", function()
    local listed = {}
    for _, c in ipairs(CASES) do
      listed[c[1]] = true
      for _, f in ipairs(c.with or {}) do listed[f] = true end -- files a case imports
    end
    local p = io.popen("cd " .. corpus.q(BAD) .. " && find . -name '*.proto' | sed 's|^./||'")
    for f in p:lines() do
      assert(listed[f], "no case for spec/fixtures/bad/" .. f)
    end
    p:close()
  end)

  for _, case in ipairs(CASES) do
    local file, rule = case[1], case[2]
    describe(rule .. " (" .. file .. ")", function()
      local protoc_status, protoc_err, want, want_text

      setup(function()
        local ok
        ok, protoc_err, protoc_status = corpus.protoc({ BAD }, { file })
        assert(not ok, "protoc accepts " .. file)
        want, want_text = expected_position(case, protoc_err)
      end)

      -- A case marked `known` is a failure already reported to the compiler's owner: while it
      -- fails it shows as pending with the failure; once fixed it passes like the others.
      local function check(fn)
        return function()
          if not case.known then return fn() end
          local ok, e = pcall(fn)
          if not ok then pending("known failure (" .. case.known .. "): " .. tostring(e)) end
        end
      end

      it("fails in the CLI with protoc's exit status and position, writing nothing", check(function()
        local status, bytes, err = corpus.lgrpc({ BAD }, { file })
        assert(not corpus.has_traceback(err), "a Lua traceback:\n" .. err)
        assert(status ~= 0, "exit status 0 (protoc: " .. protoc_status .. ")\n" .. err)
        assert.equal(protoc_status, status, err)
        assert.is_nil(bytes, "an output file was written")
        assert(position_of(err) == want, "protoc: " .. want_text .. "\nlgrpc:  " .. err)
        for _, word in ipairs(case.mentions or {}) do
          assert(err:find(word, 1, true), "the error does not mention " .. word .. ":\n" .. err)
        end
      end))

      it("fails in proto.load with nil and the same position", check(function()
        local ok, pool, err = pcall(proto.load, { file, include = { BAD } })
        assert(ok, "proto.load raised: " .. tostring(pool))
        assert(pool == nil, "proto.load accepted it (protoc: " .. want_text .. ")")
        assert.is_string(err)
        assert(position_of(err) == want, "protoc: " .. want_text .. "\nlgrpc:  " .. err)
      end))
    end)
  end
end)

-- Real files, damaged in small ways chosen by a fixed pseudo-random sequence (the same on every
-- interpreter): cut short, a byte deleted, a byte replaced, a line doubled, two lines swapped.
-- Whatever protoc makes of each, lgrpc must agree: reject at protoc's first FILE:LINE:COL, or
-- accept and write protoc's exact set. Each compile runs under an instruction budget, so a hang
-- is a failure, not a stuck suite.
local function damaged_files(title, SOURCES, PER_FILE, seed, mode)
describe(title, function()
  local BYTES = { ";", "{", "}", "\"", "'", "=", "/", "*", "\n", "0", "9", "x", ".", "-", "\\",
    "<", ">", "[", "]", "(", ")", "\t", " ", "a", "_", ",", ":", "\0", "\255", "\r" }

  -- Park-Miller: exact in doubles and in integers alike
  local function rand(n)
    seed = (seed * 16807) % 2147483647
    return seed % n + 1
  end

  local function lines_of(s)
    local t = {}
    for line in (s .. "\n"):gmatch("([^\n]*)\n") do t[#t + 1] = line end
    if t[#t] == "" then t[#t] = nil end
    return t
  end

  -- What changed, readable: the line and a few bytes either side, before and after.
  local function around(text, damaged, k)
    local line = select(2, text:sub(1, k - 1):gsub("\n", "")) + 1
    return string.format("line %d: %q became %q", line, text:sub(k - 12, k + 12),
      damaged:sub(k - 12, k + 11))
  end

  local function mutate(text)
    local kind = rand(5)
    if kind == 1 then
      local k = rand(#text)
      local damaged = text:sub(1, k - 1)
      return damaged, "cut at byte " .. k, around(text, damaged, k)
    elseif kind == 2 then
      local k = rand(#text)
      local damaged = text:sub(1, k - 1) .. text:sub(k + 1)
      return damaged, "byte " .. k .. " deleted", around(text, damaged, k)
    elseif kind == 3 then
      local k, b = rand(#text), BYTES[rand(#BYTES)]
      local damaged = text:sub(1, k - 1) .. b .. text:sub(k + 1)
      return damaged, string.format("byte %d replaced by %q", k, b), around(text, damaged, k)
    end
    local lines = lines_of(text)
    local i = rand(#lines - 1)
    if kind == 4 then
      local doubled = lines[i]
      table.insert(lines, i, doubled)
      return table.concat(lines, "\n") .. "\n", "line " .. i .. " doubled",
        string.format("line %d doubled: %q", i, doubled)
    end
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return table.concat(lines, "\n") .. "\n", "lines " .. i .. " and " .. (i + 1) .. " swapped",
      string.format("lines %d and %d swapped: %q, %q", i, i + 1, lines[i + 1], lines[i])
  end

  -- Token-level damage, aimed at the semantic rules rather than the grammar: an identifier,
  -- number or string replaced by another of the same file (or a number by a boundary value), or
  -- an identifier dropped.
  local NUMBERS = { "0", "1", "-1", "19000", "19999", "536870911", "536870912", "2147483647",
    "2147483648", "-2147483649", "4294967296", "18446744073709551616", "0x7FFFFFFF", "1.5" }
  local function tokens_of(text)
    local t = { ident = {}, number = {}, string = {} }
    for a, tok, b in text:gmatch("()([%a_][%w_]*)()") do
      local before = text:sub(a - 1, a - 1)
      if not before:match("[%w_]") then t.ident[#t.ident + 1] = { a, b - 1, tok } end
    end
    for a, tok, b in text:gmatch("()(%-?%d[%w%.]*)()") do
      local before = text:sub(a - 1, a - 1)
      if not before:match("[%w_%.]") then t.number[#t.number + 1] = { a, b - 1, tok } end
    end
    for a, tok, b in text:gmatch('()("[^"\n]*")()') do t.string[#t.string + 1] = { a, b - 1, tok } end
    return t
  end

  local function mutate_tokens(text, toks)
    local kinds = {}
    if #toks.ident > 1 then kinds[#kinds + 1] = "ident"; kinds[#kinds + 1] = "drop" end
    if #toks.number > 0 then kinds[#kinds + 1] = "number" end
    if #toks.string > 1 then kinds[#kinds + 1] = "string" end
    local kind = kinds[rand(#kinds)]
    local list = toks[kind == "drop" and "ident" or kind]
    local victim = list[rand(#list)]
    local new
    if kind == "drop" then
      new = ""
    elseif kind == "number" and rand(2) == 1 then
      new = NUMBERS[rand(#NUMBERS)]
    else
      new = list[rand(#list)][3]
    end
    local a, b, old = victim[1], victim[2], victim[3]
    local line = select(2, text:sub(1, a - 1):gsub("\n", "")) + 1
    local damaged = text:sub(1, a - 1) .. new .. text:sub(b + 1)
    local how = kind == "drop" and string.format("%q dropped", old)
      or string.format("%s %q became %q", kind, old, new)
    return damaged, how, string.format("line %d: %s", line, how)
  end

  local cases = {}
  for _, src in ipairs(SOURCES) do
    local text = assert(corpus.read_file(src.roots[1] .. "/" .. src.file))
    local toks = mode == "tokens" and tokens_of(text)
    for n = 1, PER_FILE do
      local damaged, how, detail
      if toks then damaged, how, detail = mutate_tokens(text, toks)
      else damaged, how, detail = mutate(text) end
      cases[#cases + 1] = { src = src, text = damaged, how = how, detail = detail, n = n }
    end
  end

  -- Runs lgrpc in-process with an instruction budget (the JIT off under LuaJIT: compiled
  -- code runs no hooks).
  local BUDGET = 3000 -- hook calls of 1e6 instructions each
  local function load_budgeted(spec)
    local calls = 0
    debug.sethook(function()
      calls = calls + 1
      if calls > BUDGET then error("lgrpc did not finish within the instruction budget", 2) end
    end, "", 1000000)
    local ok, pool, err = pcall(proto.load, spec)
    local ok2, fds, err2
    if ok and pool then
      ok2, fds, err2 = pcall(pool.descriptor_set, pool, { spec[1] }, { include_imports = true })
    end
    debug.sethook()
    if not ok then return nil, "proto.load raised: " .. tostring(pool) end
    if not pool then return nil, err end
    if not ok2 then return nil, "descriptor_set raised: " .. tostring(fds) end
    return fds, err2
  end

  local results
  local function run_all()
    if results then return results end
    local jit = rawget(_G, "jit")
    if jit then jit.off(); jit.flush() end
    local dir = corpus.tmpdir()
    local to_compare, mkdirs = {}, {}
    for i, c in ipairs(cases) do
      mkdirs[i] = corpus.q((dir .. "/" .. i .. "/" .. c.src.file):match("^(.*)/"))
    end
    os.execute("mkdir -p " .. table.concat(mkdirs, " ")) -- one process: each is slow under ASan
    for i, c in ipairs(cases) do
      local root = dir .. "/" .. i
      local path = root .. "/" .. c.src.file
      corpus.write_file(path, c.text)
      local roots = { root }
      for _, r in ipairs(c.src.roots) do roots[#roots + 1] = r end
      local ok, res = corpus.protoc(roots, { c.src.file }, { include_imports = true })
      if ok then c.expected = res else c.protoc_error = res end
      c.actual, c.lgrpc_error = load_budgeted({ c.src.file, include = roots })
      if c.expected and c.actual then
        local e, a = dir .. "/" .. i .. ".protoc.pb", dir .. "/" .. i .. ".lgrpc.pb"
        corpus.write_file(e, c.expected)
        corpus.write_file(a, c.actual)
        to_compare[#to_compare + 1] = { name = tostring(i), expected = e, actual = a }
      end
    end
    if jit then jit.on() end
    if #to_compare > 0 then
      for name, r in pairs(corpus.compare_many(to_compare)) do cases[tonumber(name)].compare = r end
    end
    corpus.rmdir(dir)
    results = cases
    return results
  end

  -- Divergences already reported to the compiler's owner, recognised by protoc's message (or the
  -- compare report): while a case still fails with one of these it shows as pending with its
  -- failure; once fixed it passes like the others.
  local KNOWN = {}

  local function known(r, failure)
    local text = (r.protoc_error or "") .. (r.compare and r.compare.report or "")
    for _, k in ipairs(KNOWN) do
      local hit
      if type(k[1]) == "function" then hit = k[1](r, failure) else hit = text:find(k[1], 1, true) end
      if hit then pending("known failure (" .. k[2] .. "): " .. failure) end
    end
  end

  local function check(r)
    local err = tostring(r.lgrpc_error)
    if r.expected then
      assert(r.actual, "protoc accepts it, lgrpc rejects it:\n" .. err)
      assert(r.compare and r.compare.ok, "sets differ:\n" .. (r.compare and r.compare.report or "?"))
      return
    end
    assert(not r.actual, "protoc rejects it, lgrpc accepts it:\n" .. r.protoc_error)
    assert(not corpus.has_traceback(err), "a Lua traceback:\n" .. err)
    assert(not err:find("raised:", 1, true) and not err:find("instruction budget", 1, true), err)
    -- protoc's first error: its position, or (when it has none) the name it quotes
    local want = corpus.first_error(r.protoc_error)
    if want and want.line then
      assert(position_of(err) == want.file .. ":" .. want.line .. ":" .. want.col,
        "protoc: " .. want.text .. "\nlgrpc:  " .. err)
    elseif want and want.quoted then
      assert(err:find(want.quoted, 1, true), "protoc: " .. want.text .. "\nlgrpc:  " .. err)
    end
  end

  for i, c in ipairs(cases) do
    it(c.src.file .. " #" .. c.n .. ": " .. c.how, function()
      local r = run_all()[i]
      local ok, failure = pcall(check, r)
      if not ok then
        failure = c.src.file .. ", " .. c.detail .. "\n" .. tostring(failure)
        known(r, failure)
        assert(false, failure)
      end
    end)
  end
end)
end

local OPTIONS = corpus.top() .. "/spec/fixtures/options"
damaged_files("proto errors: damaged real files", {
  { roots = { OPTIONS }, file = "targets.proto" },
  { roots = { OPTIONS }, file = "values.proto" },
  { roots = { OPTIONS }, file = "local.proto" },
  { roots = { OPTIONS }, file = "names.proto" },
  { roots = { OPTIONS }, file = "shapes.proto" },
  { roots = { OPTIONS }, file = "proto3_shapes.proto" },
  { roots = { "/usr/share/grpc-proto" }, file = "grpc/testing/messages.proto" },
  { roots = { "/usr/share/grpc-proto" }, file = "grpc/channelz/v1/channelz.proto" },
}, 25, 20240601)

-- The same over every 20th file of the Debian corpus (spec/support/corpus.lua) that protoc
-- accepts as it is.
local function corpus_sample(every)
  local sources, n = {}, 0
  for _, g in ipairs(corpus.groups()) do
    for _, f in ipairs(g.files) do
      n = n + 1
      if n % every == 0 then sources[#sources + 1] = { roots = g.roots, file = f } end
    end
  end
  return sources
end
damaged_files("proto errors: damaged corpus files #heavy", corpus_sample(20), 8, 7)

damaged_files("proto errors: real files with a token changed", {
  { roots = { OPTIONS }, file = "targets.proto" },
  { roots = { OPTIONS }, file = "values.proto" },
  { roots = { OPTIONS }, file = "local.proto" },
  { roots = { OPTIONS }, file = "names.proto" },
  { roots = { OPTIONS }, file = "shapes.proto" },
  { roots = { OPTIONS }, file = "proto3_shapes.proto" },
  { roots = { OPTIONS }, file = "defs.proto" },
  { roots = { "/usr/share/grpc-proto" }, file = "grpc/testing/messages.proto" },
}, 25, 4242, "tokens")

damaged_files("proto errors: corpus files with a token changed #heavy", corpus_sample(23), 6, 99,
  "tokens")

-- Malformed .proto files (spec/fixtures/bad, one per validation rule) through
-- `bin/lgrpc descriptor-set` and through proto.load, against protoc run live on the same file:
-- the same exit status, the error at protoc's FILE:LINE:COL (or, where protoc prints no position,
-- at the offending token), nothing written, no Lua traceback.
local corpus = require "corpus"

local has_loader, proto = pcall(require, "lgrpc.proto")
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
  { "syntax_missing_field_number.proto", "syntax: field without a number" },
  { "undefined_type.proto", "undefined type", mentions = { "Missing" } },
  { "type_wrong_scope.proto", "nested type named outside its scope", mentions = { "Inner" } },
  { "type_ambiguous_scope.proto", "innermost scope shadows the intended type",
    mentions = { "foo.Bar" } },
  { "duplicate_message.proto", "duplicate message name" },
  { "duplicate_field_name.proto", "duplicate field name" },
  { "duplicate_enum_value.proto", "duplicate enum value name", mentions = { "ONE" } },
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
  { "cycle/a.proto", "import cycle", mentions = { "cycle/b.proto" } },
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
}

local function expected_position(case, protoc_err)
  local p = corpus.position(protoc_err)
  if p then return p.file .. ":" .. p.line .. ":" .. p.col, p.text end
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
    for _, c in ipairs(CASES) do listed[c[1]] = true end
    local p = io.popen("cd " .. corpus.q(BAD) .. " && find . -name '*.proto' | sed 's|^./||'")
    for f in p:lines() do
      -- files imported by a case (cycle/b.proto) are part of that case
      assert(listed[f] or f:match("^cycle/"), "no case for spec/fixtures/bad/" .. f)
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

      it("fails in the CLI with protoc's exit status and position, writing nothing", function()
        if not has_loader then pending("waiting for the loader") end
        local status, bytes, err = corpus.lgrpc({ BAD }, { file })
        assert(not corpus.has_traceback(err), "a Lua traceback:\n" .. err)
        assert(status ~= 0, "exit status 0 (protoc: " .. protoc_status .. ")\n" .. err)
        assert.equal(protoc_status, status, err)
        assert.is_nil(bytes, "an output file was written")
        assert(position_of(err) == want, "protoc: " .. want_text .. "\nlgrpc:  " .. err)
        for _, word in ipairs(case.mentions or {}) do
          assert(err:find(word, 1, true), "the error does not mention " .. word .. ":\n" .. err)
        end
      end)

      it("fails in proto.load with nil and the same position", function()
        if not has_loader then pending("waiting for the loader") end
        local ok, pool, err = pcall(proto.load, { file, include = { BAD } })
        assert(ok, "proto.load raised: " .. tostring(pool))
        assert.is_nil(pool)
        assert.is_string(err)
        assert(position_of(err) == want, "protoc: " .. want_text .. "\nlgrpc:  " .. err)
      end)
    end)
  end
end)

-- The examples in README.md and docs/ run as written: every ```lua block that starts with
-- `-- example: NAME`, its prints checked against the `-->` comments on their lines.
-- (docs/auth.md's examples need tokens made at run time: spec/interceptors_builtin_spec.lua.)
local examples = require "doc_examples"

for _, page in ipairs { "README.md", "docs/guide.md" } do
  local f = io.open((os.getenv("LGRPC_TOP") or ".") .. "/" .. page)
  if f then
    f:close()
    describe(page, function()
      local found, order = examples.load(page)
      for _, name in ipairs(order) do
        it("runs the example '" .. name .. "' as written", function()
          local printed, expected = examples.run(found[name], page .. ":" .. name)
          assert.is_true(#expected > 0, "the example checks nothing")
          assert.same(expected, printed)
        end)
      end
    end)
  end
end

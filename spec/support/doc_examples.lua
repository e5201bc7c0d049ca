-- doc_examples.lua — the runnable examples of a Markdown page: ```lua blocks whose first line is
-- `-- example: NAME`. run() executes one with print captured; every print must show what the
-- `-->` comment on its line says, so a page's examples are checked as written.
local M = {}

local top = os.getenv("LGRPC_TOP") or "."

--- All examples of a page (path relative to the top of the tree): { name = source }, and their
--- names in page order.
function M.load(page)
  local f = assert(io.open(top .. "/" .. page, "rb"))
  local text = f:read("*a")
  f:close()
  local found, order = {}, {}
  for name, body in text:gmatch("```lua\n%-%- example: ([%w_%-]+)\n(.-)```") do
    found[name] = body
    order[#order + 1] = name
  end
  return found, order
end

--- Runs an example from the top of the tree; returns the printed lines and the expected ones.
function M.run(src, chunkname)
  local printed, expected = {}, {}
  for line in src:gmatch("[^\n]+") do
    -- a print's line, or a line holding nothing but a further `-->` for the print above
    local want = line:match("^.*print%(.*%-%-> (.-)%s*$") or line:match("^%s*%-%-> (.-)%s*$")
    if want then expected[#expected + 1] = want end
  end
  local env = setmetatable({
    print = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      printed[#printed + 1] = table.concat(parts, "\t")
    end,
  }, { __index = _G })
  local chunk = assert(load(src, "=" .. chunkname, "t", env))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return printed, expected
end

return M

-- corpus: the real .proto files installed by Debian packages, with the include roots each needs,
-- and the helpers the descriptor specs share for running protoc, the lgrpc CLI and the compare
-- script. Files are found by walking the package directories at run time: nothing here lists
-- individual files. Never loads lgrpc itself (the specs do), so it works before the loader lands.
local corpus = {}

local SRC = "/usr/share/gocode/src"
local GOGO = SRC .. "/github.com/gogo/protobuf"

-- One group per package (or per part of a package that has its own import root). A file belongs
-- to the first group whose dir contains it; its virtual name is its path under roots[1].
-- `std` marks the groups the issue names first (google/protobuf and grpc-proto); every other
-- group counts toward the "at least 200 other real files". `package` is the Debian package
-- that installs the directory (docs/testing.md lists them; tools/deps.sh installs them).
corpus.GROUPS = {
  { name = "google-protobuf", std = true, package = "libprotobuf-dev",
    dir = "/usr/include/google/protobuf", roots = { "/usr/include" } },
  { name = "grpc-proto", std = true, package = "grpc-proto",
    dir = "/usr/share/grpc-proto", roots = { "/usr/share/grpc-proto" } },
  { name = "protobuf-c", package = "libprotobuf-c-dev",
    dir = "/usr/include/protobuf-c", roots = { "/usr/include" } },
  { name = "protoc-examples", package = "protobuf-compiler",
    dir = "/usr/share/doc/protobuf-compiler/examples",
    roots = { "/usr/share/doc/protobuf-compiler/examples" } },
  -- gogo: its own older copy of google/protobuf, its generator testdata (imports relative to
  -- testdata/), and everything else importing github.com/gogo/protobuf/gogoproto/gogo.proto.
  { name = "gogo-wkt", package = "golang-github-gogo-protobuf-dev",
    dir = GOGO .. "/protobuf", roots = { GOGO .. "/protobuf" } },
  { name = "gogo-testdata", package = "golang-github-gogo-protobuf-dev",
    dir = GOGO .. "/protoc-gen-gogo/testdata", roots = { GOGO .. "/protoc-gen-gogo/testdata" } },
  { name = "gogo", package = "golang-github-gogo-protobuf-dev",
    dir = GOGO, roots = { SRC, GOGO .. "/protobuf", GOGO, GOGO .. "/proto" } },
  { name = "gogo-googleapis", package = "golang-github-gogo-googleapis-dev",
    dir = SRC .. "/github.com/gogo/googleapis", roots = { SRC .. "/github.com/gogo/googleapis" } },
  { name = "golang-protobuf-testdata", package = "golang-github-golang-protobuf-1-3-dev",
    dir = SRC .. "/github.com/golang/protobuf/protoc-gen-go/testdata",
    roots = { SRC .. "/github.com/golang/protobuf/protoc-gen-go/testdata" } },
  { name = "golang-protobuf", package = "golang-github-golang-protobuf-1-3-dev",
    dir = SRC .. "/github.com/golang/protobuf",
    roots = { SRC .. "/github.com/golang/protobuf", SRC .. "/github.com/golang/protobuf/proto" } },
  { name = "protobuf-go", package = "golang-google-protobuf-dev",
    dir = SRC .. "/google.golang.org/protobuf", roots = { SRC .. "/google.golang.org/protobuf" } },
  { name = "grpc-go", package = "golang-google-grpc-dev",
    dir = SRC .. "/google.golang.org/grpc",
    roots = { SRC .. "/google.golang.org/grpc", "/usr/share/grpc-proto",
              SRC .. "/google.golang.org/grpc/debian/missing-sources/googleapis/googleapis/master" } },
  { name = "grpc-gateway", package = "golang-github-grpc-ecosystem-grpc-gateway-dev",
    dir = SRC .. "/github.com/grpc-ecosystem/grpc-gateway",
    roots = { SRC .. "/github.com/grpc-ecosystem/grpc-gateway",
              SRC .. "/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis" } },
  { name = "openshift-api", package = "golang-github-openshift-api-dev",
    dir = SRC .. "/github.com/openshift/api",
    roots = { SRC, SRC .. "/github.com/openshift/api/vendor" } },
  { name = "gitaly-proto", package = "golang-gitaly-proto-dev",
    dir = SRC .. "/gitlab.com/gitlab-org/gitaly-proto",
    roots = { SRC .. "/gitlab.com/gitlab-org/gitaly-proto" } },
  { name = "ignition-msgs", package = "libignition-msgs-dev",
    dir = "/usr/include/ignition/msgs8", roots = { "/usr/include/ignition/msgs8" } },
  -- bazel's copy of googleapis: google.api http/field_behavior/resource/client options
  { name = "bazel-googleapis", package = "bazel-bootstrap-source",
    dir = "/usr/src/bazel-bootstrap/third_party/googleapis", roots = { "$DIR" } },
  { name = "bazel", package = "bazel-bootstrap-source",
    dir = "/usr/src/bazel-bootstrap",
    roots = { "$DIR", "$DIR/third_party/googleapis", "$DIR/third_party/remoteapis" } },
  { name = "lightstep", package = "golang-github-lightstep-lightstep-tracer-common-dev",
    dir = SRC .. "/github.com/lightstep/lightstep-tracer-common",
    roots = { "$DIR", "$DIR/third_party/googleapis", SRC, GOGO .. "/protobuf" } },
  -- rust-protobuf and quick-protobuf test files import their siblings
  { name = "quick-protobuf", package = "librust-quick-protobuf-dev", per_dir = true,
    dir = "/usr/share/cargo/registry/quick-protobuf-*", roots = {} },
}

-- Single-quotes a string for /bin/sh.
function corpus.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local q = corpus.q

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
corpus.read_file = read_all

function corpus.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

-- A fresh temporary directory (removed by corpus.rmdir).
function corpus.tmpdir()
  local p = io.popen("mktemp -d /tmp/lgrpc-spec.XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

function corpus.rmdir(d)
  if d and d:match("^/tmp/lgrpc%-spec%.") then os.execute("rm -rf " .. q(d)) end
end

local function exit_code(ok, how, code)
  if type(ok) == "number" then -- LuaJIT without 5.2 compat: a wait status, as system() gives
    if ok % 256 == 0 then return ok / 256 end
    return 128 + ok % 128
  end
  if how == "exit" then return code end
  return 128 + (code or 0)
end

-- The environment for a child process: tools that are not lgrpc (protoc, python3) never run
-- under the sanitizers; lgrpc does when the suite set LGRPC_ASAN_PRELOAD.
local function env_prefix(under_asan)
  local pre = os.getenv("LGRPC_ASAN_PRELOAD")
  if under_asan and pre and pre ~= "" then
    return "export LD_PRELOAD=" .. q(pre) .. "; "
  end
  return "unset LD_PRELOAD; "
end

-- Runs a shell command line; returns exit status, stdout, stderr.
-- (Temporary names come from os.tmpname, not from mktemp: under the asan suite every extra
-- process starts under the sanitizer, which is slow.)
function corpus.run(cmdline, under_asan)
  local out, err = os.tmpname(), os.tmpname()
  local status = exit_code(os.execute("(" .. env_prefix(under_asan) .. cmdline .. ") >" ..
    q(out) .. " 2>" .. q(err) .. " </dev/null"))
  local o, e = read_all(out) or "", read_all(err) or ""
  os.remove(out)
  os.remove(err)
  return status, o, e
end

-- A fresh path for an output file that does not exist yet.
local function fresh_path(suffix)
  local name = os.tmpname()
  os.remove(name)
  return name .. suffix
end

-- The interpreter running this spec, so the CLI runs under the same one busted does.
function corpus.interpreter()
  if rawget(_G, "jit") then return "luajit" end
  return "lua5.4"
end

function corpus.top()
  return os.getenv("LGRPC_TOP") or "."
end

local function include_flags(roots, style)
  local t = {}
  for i, r in ipairs(roots or {}) do
    if style == "long" or (style == "mixed" and i % 2 == 0) then
      t[#t + 1] = "--proto_path=" .. q(r)
    else
      t[#t + 1] = "-I " .. q(r)
    end
  end
  return table.concat(t, " ")
end

local function file_args(files)
  local t = {}
  for i, f in ipairs(files) do t[i] = q(f) end
  return table.concat(t, " ")
end

-- protoc --descriptor_set_out. opts: include_imports. Returns ok, bytes | stderr, status.
function corpus.protoc(roots, files, opts)
  opts = opts or {}
  local out = fresh_path(".protoc.pb")
  local status, _, err = corpus.run("protoc " .. include_flags(roots) ..
    (opts.include_imports and " --include_imports" or "") ..
    " --descriptor_set_out=" .. q(out) .. " " .. file_args(files))
  local bytes = read_all(out)
  os.remove(out)
  if status == 0 then return true, bytes, status end
  return false, err, status
end

-- The command line that runs `lgrpc descriptor-set`: the tree's bin/lgrpc under this spec's
-- interpreter, or $LGRPC_SPEC_CLI (e.g. an installed `lgrpc descriptor-set`, or `protoc` to check
-- the specs themselves against protoc).
function corpus.cli_command()
  local override = os.getenv("LGRPC_SPEC_CLI")
  if override and override ~= "" then return override end
  return corpus.interpreter() .. " " .. q(corpus.top() .. "/bin/lgrpc") .. " descriptor-set"
end

-- bin/lgrpc descriptor-set, under this spec's interpreter (and under ASan in the asan suite).
-- opts: include_imports, style ("short" -I, "long" --proto_path=, "mixed"), cwd.
-- Returns status, bytes (or nil), stderr, stdout.
function corpus.lgrpc(roots, files, opts)
  opts = opts or {}
  local out = fresh_path(".lgrpc.pb")
  local cmd = corpus.cli_command() .. " " .. include_flags(roots, opts.style or "short") ..
    (opts.include_imports and " --include_imports" or "") ..
    " -o " .. q(out) .. " " .. file_args(files)
  if opts.cwd then cmd = "cd " .. q(opts.cwd) .. " && " .. cmd end
  local status, stdout, err = corpus.run(cmd, true)
  local bytes = read_all(out)
  os.remove(out)
  return status, bytes, err, stdout
end

-- The first "FILE:LINE:COL: message" line of an error output, parsed; or nil.
function corpus.position(stderr)
  for line in (stderr or ""):gmatch("[^\n]+") do
    local file, l, c, msg = line:match("^(.-):(%d+):(%d+):%s*(.*)$")
    if file then return { file = file, line = tonumber(l), col = tonumber(c), message = msg,
      text = line } end
  end
  return nil
end

-- protoc's first error (warnings skipped, and "X.proto: File not found.", which protoc prints
-- before the error at the import statement): { text, quoted = first "..." in it, and file, line,
-- col, message when it has a position }; or nil when stderr holds no error line.
function corpus.first_error(stderr)
  for line in (stderr or ""):gmatch("[^\n]+") do
    if not line:match("^%[libprotobuf") and not line:match(": warning: ") and
        not line:match("^[^:]*: File not found%.$") then
      local e = corpus.position(line) or { text = line }
      e.quoted = line:match('"(.-)"')
      return e
    end
  end
  return nil
end

-- True when text looks like a Lua traceback or an uncaught Lua error.
function corpus.has_traceback(text)
  return text:find("stack traceback:", 1, true) ~= nil
    or text:find("%.lua:%d+: ") ~= nil and text:find("lgrpc/", 1, true) ~= nil
end

-- Every .proto file under dir, sorted, as absolute paths.
local function walk(dir)
  local files = {}
  local p = io.popen("find " .. q(dir) .. " -name '*.proto' -type f 2>/dev/null | LC_ALL=C sort")
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

local function under(path, dir)
  return path:sub(1, #dir + 1) == dir .. "/"
end

-- A group's directory with a glob (a version in the path) expanded: the newest match.
local function expand(dir)
  if not dir:find("*", 1, true) then return dir end
  local p = io.popen("for d in " .. dir .. "; do [ -d \"$d\" ] && echo \"$d\"; done | LC_ALL=C sort")
  local last
  for line in p:lines() do last = line end
  p:close()
  return last or dir
end

-- The corpus: groups with their files as virtual names. A group whose directory is missing has
-- `missing = true` (its package is not installed) and no files. In roots, "$DIR" stands for the
-- group's (expanded) directory. A `per_dir` group becomes one group per directory holding
-- .proto files, each directory its own first root (for files that import their siblings).
function corpus.groups()
  local dirs = {}
  for i, g in ipairs(corpus.GROUPS) do dirs[i] = expand(g.dir) end
  local groups, seen = {}, {}
  for i, g in ipairs(corpus.GROUPS) do
    local dir = dirs[i]
    local roots = {}
    for j, r in ipairs(g.roots or {}) do roots[j] = (r:gsub("%$DIR", dir)) end
    local all = walk(dir)
    local mine = {}
    for _, path in ipairs(all) do
      -- a more general group never takes a file a more specific group owns
      local owned = false
      for k, other in ipairs(dirs) do
        if k ~= i and under(path, other) and #other > #dir then owned = true end
      end
      if not owned and not seen[path] then
        seen[path] = true
        mine[#mine + 1] = path
      end
    end
    local function new_group(name, group_roots)
      local group = { name = name, std = g.std, package = g.package, dir = dir,
        roots = group_roots, files = {}, missing = #all == 0 }
      groups[#groups + 1] = group
      return group
    end
    if g.per_dir then
      local by_dir, order = {}, {}
      for _, path in ipairs(mine) do
        local d = path:match("^(.*)/[^/]*$")
        if not by_dir[d] then
          local r = { d }
          for _, extra in ipairs(roots) do r[#r + 1] = extra end
          by_dir[d] = new_group(g.name .. ":" .. d:sub(#dir + 2), r)
          order[#order + 1] = d
        end
        local grp = by_dir[d]
        grp.files[#grp.files + 1] = path:sub(#d + 2)
      end
      if #order == 0 then new_group(g.name, roots) end
    else
      local group = new_group(g.name, roots)
      for _, path in ipairs(mine) do
        if under(path, roots[1]) then group.files[#group.files + 1] = path:sub(#roots[1] + 2) end
      end
    end
  end
  return groups
end

-- The compare script: python3 spec/support/fds_compare.py --manifest FILE, one line per pair
-- "name<TAB>expected.pb<TAB>actual.pb"; returns a table name -> { ok = bool, report = text }.
function corpus.compare_many(pairs_list)
  local dir = corpus.tmpdir()
  local manifest = dir .. "/manifest"
  local lines = {}
  for _, p in ipairs(pairs_list) do
    lines[#lines + 1] = table.concat({ p.name, p.expected, p.actual }, "\t")
  end
  corpus.write_file(manifest, table.concat(lines, "\n") .. "\n")
  local status, out, err = corpus.run("/usr/bin/python3 " ..
    q(corpus.top() .. "/spec/support/fds_compare.py") .. " --manifest " .. q(manifest))
  corpus.rmdir(dir)
  if status ~= 0 and status ~= 1 then
    error("fds_compare.py failed (exit " .. status .. "): " .. err .. out)
  end
  local results = {}
  -- Output: blocks starting "== NAME: OK" or "== NAME: DIFF", report lines until the next block.
  local current
  for line in (out .. "\n"):gmatch("([^\n]*)\n") do
    local name, verdict = line:match("^== (.-): (%u+)$")
    if name then
      current = { ok = verdict == "OK", report = {} }
      results[name] = current
    elseif current then
      current.report[#current.report + 1] = line
    end
  end
  for _, r in pairs(results) do r.report = table.concat(r.report, "\n") end
  return results
end

-- Compares two FileDescriptorSet byte strings; returns ok, report.
function corpus.compare(expected, actual)
  local dir = corpus.tmpdir()
  corpus.write_file(dir .. "/e.pb", expected)
  corpus.write_file(dir .. "/a.pb", actual)
  local r = corpus.compare_many({ { name = "set", expected = dir .. "/e.pb", actual = dir .. "/a.pb" } })
  corpus.rmdir(dir)
  local res = r.set or { ok = false, report = "fds_compare.py printed nothing" }
  return res.ok, res.report
end

return corpus

-- `bin/lgrpc descriptor-set` beside `protoc --descriptor_set_out`: the flags protoc users type
-- (-I DIR, -IDIR, --proto_path=DIR, -o FILE, -oFILE, --descriptor_set_out=FILE, --include_imports),
-- input files named by virtual name or by disk path under an include root, several roots, several
-- inputs, and the usage errors, each with protoc's exit status. Output sets are compared file by
-- file with spec/support/fds_compare.py.
local corpus = require "corpus"

local TOP = corpus.top()
local OPTIONS = TOP .. "/spec/fixtures/options"
local q = corpus.q


-- Runs `protoc ARGS` and `lgrpc descriptor-set ARGS` in cwd; OUT in args is replaced by an output
-- path of each one's own. Returns { status, bytes, stderr } for protoc and for lgrpc.
local function both(args, cwd)
  local dir = corpus.tmpdir()
  local function one(cmd, out, under_asan)
    local line = "cd " .. q(cwd or TOP) .. " && " .. cmd .. " " .. args:gsub("OUT", (out:gsub("%%", "%%%%")))
    local status, _, err = corpus.run(line, under_asan)
    return { status = status, bytes = corpus.read_file(out), stderr = err }
  end
  local p = one("protoc", dir .. "/protoc.pb", false)
  local l = one(corpus.cli_command(), dir .. "/lgrpc.pb", true)
  corpus.rmdir(dir)
  return p, l
end

local function assert_same_set(p, l, what)
  assert(p.status == 0 and p.bytes, "protoc failed on " .. what .. ":\n" .. p.stderr)
  assert(not corpus.has_traceback(l.stderr), "a Lua traceback:\n" .. l.stderr)
  assert(l.status == 0, "lgrpc exited " .. l.status .. " on " .. what .. ":\n" .. l.stderr)
  assert(l.bytes, "lgrpc wrote no output for " .. what)
  local ok, report = corpus.compare(p.bytes, l.bytes)
  assert(ok, what .. ":\n" .. report)
end

local function assert_same_failure(p, l, what, mention)
  assert(p.status ~= 0, "protoc succeeds on " .. what)
  assert(not corpus.has_traceback(l.stderr), "a Lua traceback:\n" .. l.stderr)
  assert(l.status == p.status, what .. ": lgrpc exited " .. l.status .. ", protoc " .. p.status ..
    "\nlgrpc: " .. l.stderr .. "\nprotoc: " .. p.stderr)
  assert(l.stderr:match("%S"), what .. ": lgrpc printed no error")
  assert.is_nil(l.bytes, what .. ": an output file was written")
  if mention then
    assert(l.stderr:find(mention, 1, true), what .. ": the error does not mention " .. mention ..
      ":\n" .. l.stderr)
  end
end

describe("lgrpc descriptor-set", function()
  local opts_dir = q(OPTIONS)

  it("-I DIR --include_imports -o FILE writes protoc's set, silently", function()
    local p, l = both("-I " .. opts_dir .. " --include_imports -o OUT targets.proto")
    assert_same_set(p, l, "targets.proto")
    assert.equal(p.stderr, l.stderr)
  end)

  it("takes --proto_path=DIR, -IDIR, -oFILE and --descriptor_set_out=FILE", function()
    local p, l = both("--proto_path=" .. opts_dir .. " --include_imports --descriptor_set_out=OUT local.proto")
    assert_same_set(p, l, "--proto_path= and --descriptor_set_out=")
    p, l = both("-I" .. opts_dir .. " -oOUT --include_imports local.proto")
    assert_same_set(p, l, "-IDIR and -oFILE")
  end)

  it("without --include_imports writes only the named files, in order", function()
    local p, l = both("-I " .. opts_dir .. " -o OUT targets.proto defs.proto local.proto")
    assert_same_set(p, l, "three inputs without imports")
  end)

  it("puts shared imports once, dependencies first, over several inputs", function()
    local p, l = both("-I " .. opts_dir .. " --include_imports -o OUT local.proto targets.proto")
    assert_same_set(p, l, "two inputs sharing defs.proto")
  end)

  it("searches several roots in order", function()
    local gw = "/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway"
    local p, l = both("-I " .. q(gw) .. " --proto_path=" .. q(gw .. "/third_party/googleapis") ..
      " --include_imports -o OUT examples/proto/examplepb/a_bit_of_everything.proto")
    assert_same_set(p, l, "grpc-gateway's a_bit_of_everything.proto over two roots")
  end)

  it("maps an input named by its path on disk to its name under the include root", function()
    local p, l = both("-I spec/fixtures/options --include_imports -o OUT " ..
      "spec/fixtures/options/targets.proto")
    assert_same_set(p, l, "a disk path under a relative root")
    p, l = both("-I . -o OUT local.proto", OPTIONS)
    assert_same_set(p, l, "-I . from the root itself")
  end)

  it("finds google/protobuf/*.proto without being told where", function()
    local p, l = both("-I " .. opts_dir .. " --include_imports -o OUT google/protobuf/descriptor.proto " ..
      "google/protobuf/compiler/plugin.proto")
    assert_same_set(p, l, "google/protobuf from the system include directory")
  end)

  it("goes on past an include directory that does not exist, as protoc does", function()
    local p, l = both("-I /nonexistent/lgrpc-spec -I " .. opts_dir .. " -o OUT defs.proto")
    assert_same_set(p, l, "a missing include directory")
  end)

  describe("usage errors", function()
    it("an input file that does not exist", function()
      local p, l = both("-I " .. opts_dir .. " -o OUT no_such_file.proto")
      assert_same_failure(p, l, "a missing input", "no_such_file.proto")
    end)

    it("an input file outside every include root", function()
      local p, l = both("-I " .. opts_dir .. " -o OUT spec/fixtures/bad/undefined_type.proto")
      assert_same_failure(p, l, "an input outside the roots", "spec/fixtures/bad/undefined_type.proto")
    end)

    it("no output file", function()
      local p, l = both("-I " .. opts_dir .. " targets.proto")
      assert_same_failure(p, l, "no -o")
    end)

    it("no input file", function()
      local p, l = both("-I " .. opts_dir .. " -o OUT")
      assert_same_failure(p, l, "no inputs")
    end)

    it("an unknown flag", function()
      local p, l = both("--bogus -I " .. opts_dir .. " -o OUT targets.proto")
      assert_same_failure(p, l, "an unknown flag", "--bogus")
    end)

    it("an output file that cannot be written", function()
      local p, l = both("-I " .. opts_dir .. " -o /nonexistent/lgrpc-spec/out.pb targets.proto")
      assert_same_failure(p, l, "an unwritable output", "/nonexistent/lgrpc-spec/out.pb")
    end)

    it("a compile error: FILE:LINE:COL on stderr, protoc's status", function()
      local p, l = both("-I spec/fixtures/bad -o OUT undefined_type.proto")
      assert_same_failure(p, l, "an undefined type", "undefined_type.proto:5:3:")
    end)
  end)
end)

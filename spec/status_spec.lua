-- lgrpc.status: codes, status objects, grpc-go style text.
local status = require "lgrpc.status"

describe("lgrpc.status", function()
  it("knows all 17 codes by name and by number", function()
    local names = { "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
      "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" }
    for i, name in ipairs(names) do
      assert.are.equal(i - 1, status[name])
      assert.are.equal(i - 1, status.codes[name])
      assert.are.equal(name, status.codes[i - 1])
    end
  end)

  it("builds status objects with code, message and details", function()
    local st = status.new(status.NOT_FOUND, "no such feature", "\8\5")
    assert.are.equal(5, st.code)
    assert.are.equal("no such feature", st.message)
    assert.are.equal("\8\5", st.details_bin)
    assert.is_nil(st.details)
    local d = { ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo", reason = "R" }
    st = status.not_found("gone", { d })
    assert.are.equal(d, st.details[1])
    assert.are.equal(d, st:detail("google.rpc.ErrorInfo"))
    assert.is_nil(st:detail("google.rpc.BadRequest"))
    assert.is_true(status.is(st))
    assert.is_false(status.is({ code = 5 }))
    assert.is_false(status.is("x"))
  end)

  it("accepts code names in any case", function()
    assert.are.equal(14, status.new("UNAVAILABLE").code)
    assert.are.equal(4, status.new("deadline_exceeded", "late").code)
    assert.are.equal("", status.new(0).message)
  end)

  it("reads like grpc-go when printed", function()
    assert.are.equal("rpc error: code = NotFound desc = no such feature",
      tostring(status.not_found("no such feature")))
    assert.are.equal("rpc error: code = Canceled desc = ", tostring(status.cancelled()))
    assert.are.equal("rpc error: code = DeadlineExceeded desc = x",
      status.deadline_exceeded("x"):tostring())
  end)

  it("has a helper for every code", function()
    for n = 0, 16 do
      local name = status.codes[n]
      local st = status[name:lower()]("m")
      assert.are.equal(n, st.code)
      assert.are.equal("m", st.message)
      assert.are.equal(name, st:name())
    end
    assert.is_true(status.ok():ok())
    assert.is_false(status.internal("x"):ok())
  end)

  it("compares by value", function()
    assert.are.equal(status.not_found("a"), status.new(5, "a"))
    assert.are_not.equal(status.not_found("a"), status.not_found("b"))
  end)

  it("raises for programmer errors, blaming the caller", function()
    local ok, err = pcall(status.new, 17, "x")
    assert.is_false(ok)
    assert.matches("unknown status code 17", err)
    ok, err = pcall(status.new, "NOPE")
    assert.is_false(ok)
    assert.matches("unknown status code NOPE", err)
    ok, err = pcall(status.new, 1.5)
    assert.is_false(ok)
    ok, err = pcall(status.new, 1, {})
    assert.is_false(ok)
    assert.matches("message must be a string", err)
    ok, err = pcall(status.not_found, 12)
    assert.is_false(ok)
    ok, err = pcall(status.new, 3, "x", { { reason = "no type" } })
    assert.is_false(ok)
    assert.matches('detail 1 has no %["@type"%]', err)
    ok, err = pcall(status.invalid_argument, "x", 7)
    assert.is_false(ok)
    assert.matches("details must be an array of detail tables or bytes", err)
  end)

  it("maps what arrives on the wire, unknown codes to UNKNOWN", function()
    assert.are.equal(status.not_found("x"), status.from_wire("5", "x"))
    local st = status.from_wire("99", "")
    assert.are.equal(status.UNKNOWN, st.code)
    assert.matches("invalid grpc%-status: 99", st.message)
    st = status.from_wire(nil, nil)
    assert.are.equal(status.UNKNOWN, st.code)
    assert.matches("missing grpc%-status", st.message)
    assert.are.equal(status.UNKNOWN, status.from_wire("-1", "m").code)
    assert.are.equal(status.UNKNOWN, status.from_wire("1.0", "m").code)
  end)
end)

-- lgrpc.metadata: keys, values, -bin base64, grpc-timeout, grpc-message.
local metadata = require "lgrpc.metadata"

describe("lgrpc.metadata", function()
  describe("objects", function()
    it("lowercases keys and keeps several values per key", function()
      local md = assert(metadata.new{ ["X-Id"] = "7", ["x-tag"] = { "a", "b" } })
      assert.are.equal("7", md:get("x-id"))
      assert.are.equal("7", md:get("X-ID"))
      assert.are.same({ "a", "b" }, md:get_all("x-tag"))
      assert.are.same({}, md:get_all("absent"))
      assert.is_nil(md:get("absent"))
      assert.are.equal(3, md:len())
      assert.are.same({ ["x-id"] = "7", ["x-tag"] = { "a", "b" } }, md:to_table())
    end)

    it("accepts arrays of pairs and keeps their order", function()
      local md = assert(metadata.new{ { "b", "1" }, { "a", "2" }, { "b", "3" } })
      local seen = {}
      for k, v in md:pairs() do seen[#seen + 1] = k .. "=" .. v end
      assert.are.same({ "b=1", "b=3", "a=2" }, seen)
      assert.are.same({ "b", "a" }, md:keys())
    end)

    it("adds, sets, removes, copies and merges", function()
      local md = metadata.new()
      assert(md:add("k", "1"))
      assert(md:add("k", "2"))
      assert(md:set("k", "3"))
      assert.are.same({ "3" }, md:get_all("k"))
      local c = md:copy()
      md:remove("k")
      assert.is_nil(md:get("k"))
      assert.are.equal("3", c:get("k"))
      assert(c:merge{ k = "4", j = "5" })
      assert.are.same({ "3", "4" }, c:get_all("k"))
      assert.are.equal("5", c:get("j"))
      assert.matches('metadata{k="3"', tostring(c))
    end)

    it("refuses illegal keys and values with nil, err", function()
      local md, err = metadata.new{ ["bad key"] = "x" }
      assert.is_nil(md)
      assert.matches("characters outside", err)
      md, err = metadata.new{ ["x-v"] = "line\nbreak" }
      assert.is_nil(md)
      assert.matches("non%-printable", err)
      md, err = metadata.new{ [""] = "x" }
      assert.is_nil(md)
      assert.matches("empty", err)
      md, err = metadata.new{ ["x"] = {} }
      assert.is_truthy(md)
      md, err = metadata.new("x")
      assert.is_nil(md)
      md, err = metadata.new{ ["x"] = true }
      assert.is_nil(md)
      assert.matches("must be a string", err)
    end)

    it("refuses reserved and pseudo headers", function()
      for _, k in ipairs{ ":path", ":authority", "grpc-timeout", "grpc-status", "grpc-message",
        "Grpc-Encoding", "content-type", "te", "connection", "transfer-encoding", "host" } do
        local md, err = metadata.new{ [k] = "v" }
        assert.is_nil(md, k)
        assert.is_string(err)
      end
      assert.is_truthy(metadata.new{ ["user-agent"] = "me" })
      assert.is_truthy(metadata.new{ ["x-grpc-test"] = "ok" })
    end)

    it("takes any bytes under -bin keys", function()
      local md = assert(metadata.new{ ["trace-bin"] = "\0\1\255\n" })
      assert.are.equal("\0\1\255\n", md:get("trace-bin"))
      assert.is_true(metadata.is_binary("trace-bin"))
      assert.is_false(metadata.is_binary("-bin"))
      assert.is_false(metadata.is_binary("binary"))
    end)
  end)

  describe("headers", function()
    it("base64-encodes -bin values on the wire", function()
      local md = assert(metadata.new{ { "x-bin", "\0\1\2\3" }, { "x-a", "plain" } })
      assert.are.same({ { "x-bin", "AAECAw" }, { "x-a", "plain" } }, md:to_headers())
    end)

    it("decodes -bin values padded or not, and splits comma-joined values", function()
      local md = metadata.from_headers{
        { "x-bin", "AAECAw==" }, { "x-bin", "AAECAw" }, { "y-bin", "YQ,YmM=" },
        { "x-tag", "a, b" }, { "x-tag", "c" },
      }
      assert.are.same({ "\0\1\2\3", "\0\1\2\3" }, md:get_all("x-bin"))
      assert.are.same({ "a", "bc" }, md:get_all("y-bin"))
      assert.are.same({ "a", "b", "c" }, md:get_all("x-tag"))
      local whole = metadata.from_headers({ { "x-tag", "a, b" } }, { split_ascii = false })
      assert.are.same({ "a, b" }, whole:get_all("x-tag"))
    end)

    it("skips reserved headers and reports undecodable -bin values", function()
      local md, bad = metadata.from_headers{
        { ":status", "200" }, { "content-type", "application/grpc" },
        { "grpc-status", "0" }, { "x-bin", "!!!" }, { "X-Ok", "1" },
      }
      assert.are.same({ "x-ok" }, md:keys())
      assert.matches("x%-bin", bad)
    end)

    it("round-trips every byte through base64", function()
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      for len = 0, 7 do
        local s = all:sub(1, 250 + len)
        assert.are.equal(s, metadata.base64_decode(metadata.base64_encode(s)))
        assert.are.equal(s, metadata.base64_decode(metadata.base64_encode(s, true)))
      end
      assert.are.equal("Zm9vYg==", metadata.base64_encode("foob", true))
      assert.are.equal("Zm9vYg", metadata.base64_encode("foob"))
      assert.is_nil(metadata.base64_decode("Z"))
    end)
  end)

  describe("grpc-timeout", function()
    it("encodes in the finest unit that fits eight digits, rounding up", function()
      assert.are.equal("1000000n", metadata.encode_timeout(0.001))
      assert.are.equal("1500000u", metadata.encode_timeout(1.5))
      assert.are.equal("2000000u", metadata.encode_timeout(2))
      assert.are.equal("100000m", metadata.encode_timeout(100))
      assert.are.equal("1000000S", metadata.encode_timeout(1e6))
      assert.are.equal("1666667M", metadata.encode_timeout(1e8))
      assert.are.equal("16666667M", metadata.encode_timeout(1e9))
      assert.are.equal("2777778H", metadata.encode_timeout(1e10))
      assert.are.equal("1n", metadata.encode_timeout(0))
      assert.are.equal("1n", metadata.encode_timeout(-3))
      assert.has_error(function() metadata.encode_timeout("1") end)
    end)

    it("parses every unit", function()
      assert.are.equal(7200, metadata.parse_timeout("2H"))
      assert.are.equal(180, metadata.parse_timeout("3M"))
      assert.are.equal(4, metadata.parse_timeout("4S"))
      assert.are.near(0.005, metadata.parse_timeout("5m"), 1e-12)
      assert.are.near(6e-6, metadata.parse_timeout("6u"), 1e-15)
      assert.are.near(7e-9, metadata.parse_timeout("7n"), 1e-18)
      assert.are.equal(99999999, metadata.parse_timeout("99999999S"))
    end)

    it("refuses malformed values", function()
      for _, t in ipairs{ "", "5", "S", "1s", "-1S", "1.5S", "123456789S", " 1S", "1S " } do
        local v, err = metadata.parse_timeout(t)
        assert.is_nil(v, t)
        assert.matches("invalid grpc%-timeout", err)
      end
      assert.is_nil(metadata.parse_timeout(nil))
    end)

    it("round-trips through its own encoding without getting shorter", function()
      for _, s in ipairs{ 1e-9, 3e-7, 0.25, 1, 59.9, 3601, 86400 * 30 } do
        local back = metadata.parse_timeout(metadata.encode_timeout(s))
        assert.is_true(back >= s - 1e-12, tostring(s))
        assert.is_true(back <= s * 1.001 + 1e-9, tostring(s))
      end
    end)
  end)

  describe("grpc-message", function()
    it("percent-encodes non-printable bytes and % itself", function()
      assert.are.equal("plain text ok", metadata.encode_message("plain text ok"))
      assert.are.equal("100%25 sure", metadata.encode_message("100% sure"))
      assert.are.equal("a%0Ab%00", metadata.encode_message("a\nb\0"))
      assert.are.equal("%E2%82%AC", metadata.encode_message("\226\130\172"))
    end)

    it("decodes, keeping malformed sequences as they are", function()
      assert.are.equal("\226\130\172 100% ok", metadata.decode_message("%E2%82%AC 100%25 ok"))
      assert.are.equal("bad %G1 and %4", metadata.decode_message("bad %G1 and %4"))
      local s = "\t\ntest with whitespace\r\nand Unicode BMP \226\152\186 and non-BMP \240\159\152\136\t\n"
      assert.are.equal(s, metadata.decode_message(metadata.encode_message(s)))
    end)
  end)
end)

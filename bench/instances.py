"""Writes the two codec instances (small, large) as protobuf bytes, and checks round trips.

  instances.py GEN_DIR OUT_DIR            write OUT_DIR/small.bin and OUT_DIR/large.bin
  instances.py GEN_DIR OUT_DIR --check F...  each F must decode to the instance its name says
                                          (F is NAME.small.bin / NAME.large.bin / NAME.small.json ...)
The instances are built here, with python3-protobuf's generated code (GEN_DIR/bench_pb2.py), so
every implementation starts from the same bytes and is judged against the same values.
"""
import os
import sys

sys.path.insert(0, sys.argv[1])
import bench_pb2  # noqa: E402
from google.protobuf import json_format  # noqa: E402


def small():
    m = bench_pb2.Sample()
    m.id = 9007199254740993          # 2^53 + 1: a double cannot hold it
    m.name = "bench-sample"
    m.values.extend([1, 150, 300, 70000, -1, 2147483647])
    m.origin.x = 1.5
    m.origin.y = -2.25
    m.origin.valid = True
    m.labels["env"] = "prod"
    m.labels["region"] = "eu-west-1"
    m.labels["tier"] = "gold"
    m.kind = bench_pb2.KIND_SMALL
    return m


def large():
    m = small()
    m.kind = bench_pb2.KIND_LARGE
    del m.values[:]
    # 1000 values of mixed varint widths (1 to 5 bytes, a few negative ones at 10 bytes).
    x = 12345
    for i in range(1000):
        x = (x * 1103515245 + 12345) % 2147483648
        width = i % 5
        v = x >> (31 - 7 * (width + 1)) if width < 4 else x
        m.values.append(-v if i % 97 == 0 else v)
    # 64 KiB of deterministic pseudo-random bytes.
    buf = bytearray(65536)
    y = 0x9E3779B9
    for i in range(65536):
        y = (y * 1664525 + 1013904223) & 0xFFFFFFFF
        buf[i] = y >> 24
    m.payload = bytes(buf)
    return m


def main():
    out = sys.argv[2]
    want = {"small": small(), "large": large()}
    if len(sys.argv) > 3 and sys.argv[3] == "--check":
        bad = 0
        for path in sys.argv[4:]:
            base = os.path.basename(path)
            parts = base.split(".")
            size, kind = parts[-2], parts[-1]
            got = bench_pb2.Sample()
            try:
                with open(path, "rb") as f:
                    data = f.read()
                if kind == "json":
                    json_format.Parse(data.decode("utf-8"), got)
                else:
                    got.ParseFromString(data)
                ok = got == want[size]
                why = "values differ" if not ok else ""
            except Exception as e:  # a malformed output is a failed check, not a crash
                ok, why = False, "%s: %s" % (type(e).__name__, e)
            print("CHECK %s %s%s" % (base, "ok" if ok else "FAILED", "" if ok else " (" + why + ")"))
            bad += 0 if ok else 1
        sys.exit(1 if bad else 0)
    for name, m in want.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(m.SerializeToString(deterministic=True))
        with open(os.path.join(out, name + ".json"), "w") as f:
            f.write(json_format.MessageToJson(m))
        print("INSTANCE %s %d bytes" % (name, m.ByteSize()))


if __name__ == "__main__":
    main()

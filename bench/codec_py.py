"""bench/codec_py.py: python3-protobuf beside lgrpc, for scale: binary and JSON (json_format).

  codec_py.py GEN_DIR OUT_DIR   RESULT codec.SIZE.{encode,decode,json_encode,json_decode}.python NS
Same timing rule as bench/timing.h (process CPU time, batches of >= 0.1 s, median of 7).
"""
import os
import sys
import time

sys.path.insert(0, sys.argv[1])
import bench_pb2  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from google.protobuf.internal import api_implementation  # noqa: E402

MIN_BATCH = 0.1
RUNS = 7


def median_ns(op):
    n = 1
    while True:
        t0 = time.process_time()
        for _ in range(n):
            op()
        dt = time.process_time() - t0
        if dt >= MIN_BATCH / 4:
            n = int(n * MIN_BATCH / max(dt, 1e-6)) + 1
            break
        n *= 4
    per = []
    for _ in range(RUNS):
        t0 = time.process_time()
        for _ in range(n):
            op()
        per.append((time.process_time() - t0) * 1e9 / n)
    per.sort()
    return per[RUNS // 2]


def main():
    out = sys.argv[2]
    print("INFO python3-protobuf implementation: %s" % api_implementation.Type())
    for size in ("small", "large"):
        with open(os.path.join(out, size + ".bin"), "rb") as f:
            data = f.read()
        with open(os.path.join(out, size + ".json")) as f:
            text = f.read()
        msg = bench_pb2.Sample()
        msg.ParseFromString(data)

        def decode():
            bench_pb2.Sample().ParseFromString(data)

        def json_decode():
            json_format.Parse(text, bench_pb2.Sample())

        key = "codec.%s.%%s.python" % size
        print("RESULT %s %.1f" % (key % "encode", median_ns(msg.SerializeToString)))
        print("RESULT %s %.1f" % (key % "decode", median_ns(decode)))
        print("RESULT %s %.1f" % (key % "json_encode", median_ns(lambda: json_format.MessageToJson(msg))))
        print("RESULT %s %.1f" % (key % "json_decode", median_ns(json_decode)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()

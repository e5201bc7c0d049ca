"""bench/go/drive.py: a fixed amount of Echo work for bench/go/instructions.sh, with grpcio.
  drive.py GEN_DIR SAMPLE_FILE ADDRESS KIND N
    ping    one Unary call (connection set up, first-call costs paid)
    stream  N / 1000 ServerStream calls of 1000 messages each
    bidi    one Bidi stream carrying N messages, at most 64 unanswered (as echo_client's
            bidi-pipelined)
    unary   N Unary calls, 64 in flight
Every answer is compared with the message sent; exits 1 on any difference or failed call.
"""
import sys
import threading

import grpc

gen, sample_file, address, kind, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path.insert(0, gen)
import bench_pb2 as pb  # noqa: E402  (generated into GEN_DIR by bench/run.sh)

with open(sample_file, "rb") as f:
    sample = pb.Sample.FromString(f.read())
channel = grpc.insecure_channel(address)


def method(kind_of, name, request_type):
    return getattr(channel, kind_of)("/lgrpc.bench.Echo/" + name,
                                     request_serializer=request_type.SerializeToString,
                                     response_deserializer=pb.Sample.FromString)


received = 0
if kind in ("ping", "unary"):
    unary = method("unary_unary", "Unary", pb.Sample)
    total = 1 if kind == "ping" else n
    pending = []
    for i in range(total):
        pending.append(unary.future(sample))
        if len(pending) == 64 or i == total - 1:
            for call in pending:
                if call.result() != sample:
                    sys.exit("unary: echo differs")
                received += 1
            pending = []
elif kind == "stream":
    server_stream = method("unary_stream", "ServerStream", pb.StreamRequest)
    for _ in range(n // 1000):
        for msg in server_stream(pb.StreamRequest(sample=sample, count=1000)):
            if msg != sample:
                sys.exit("stream: message differs")
            received += 1
elif kind == "bidi":
    bidi = method("stream_stream", "Bidi", pb.Sample)
    window = threading.Semaphore(64)

    def requests():
        for _ in range(n):
            window.acquire()
            yield sample

    for msg in bidi(requests()):
        if msg != sample:
            sys.exit("bidi: message differs")
        received += 1
        window.release()
else:
    sys.exit("unknown KIND " + kind)
if received != (1 if kind == "ping" else n):
    sys.exit("%s: %d answers for %d" % (kind, received, n))

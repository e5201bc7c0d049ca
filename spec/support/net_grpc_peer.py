#!/usr/bin/python3
"""net_grpc_peer.py: a real grpcio peer for spec/net_loop_spec.lua, passing raw bytes
(no serializers).

  net_grpc_peer.py client ADDR OUT   calls lgrpc.test.Echo on ADDR, writes "path<TAB>value" lines to OUT
  net_grpc_peer.py server PORTFILE   serves lgrpc.test.Echo on 127.0.0.1:0, writes "PORT PID"
"""
import os
import sys
import time

import grpc

SERVICE = "lgrpc.test.Echo"


def hexs(b):
    return b.hex() if isinstance(b, bytes) else b


def md_list(md):
    return [[k, hexs(v)] for k, v in (md or ())]


def run_client(addr, out):
    report = {}
    with grpc.insecure_channel(addr) as ch:
        unary = ch.unary_unary("/%s/Unary" % SERVICE)
        resp, call = unary.with_call(
            b"\x00hello\xff", metadata=[("x-key", "v1"), ("x-key", "v2"), ("x-blob-bin", b"\x00\x01\xfe")],
            timeout=10)
        report["unary"] = {
            "response": resp.hex(),
            "initial": md_list(call.initial_metadata()),
            "trailing": md_list(call.trailing_metadata()),
            "code": call.code().name,
        }
        bidi = ch.stream_stream("/%s/Bidi" % SERVICE)
        msgs = [b"one", b"", b"x" * 100000, b"four"]
        got = [m.hex() if len(m) < 64 else "len:%d" % len(m) for m in bidi(iter(msgs), timeout=10)]
        report["bidi"] = got
        fail = ch.unary_unary("/%s/Fail" % SERVICE)
        try:
            fail(b"", timeout=10)
            report["fail"] = "no error"
        except grpc.RpcError as e:
            report["fail"] = {"code": e.code().name, "details": e.details()}
        slow = ch.unary_unary("/%s/Slow" % SERVICE)
        t0 = time.monotonic()
        try:
            slow(b"", timeout=0.3)
            report["slow"] = "no error"
        except grpc.RpcError as e:
            report["slow"] = {"code": e.code().name, "elapsed": time.monotonic() - t0}
        missing = ch.unary_unary("/%s/Missing" % SERVICE)
        try:
            missing(b"", timeout=10)
            report["missing"] = "no error"
        except grpc.RpcError as e:
            report["missing"] = {"code": e.code().name, "details": e.details()}
    with open(out + ".tmp", "w") as f:
        for k, v in flatten("", report):
            f.write("%s\t%s\n" % (k, str(v).replace("\n", "\\n")))
    os.rename(out + ".tmp", out)


def flatten(prefix, v):
    """Yields (dotted.path, scalar) pairs; lists are indexed from 1 as Lua sees them."""
    if isinstance(v, dict):
        for k in v:
            yield from flatten(prefix + "." + k if prefix else k, v[k])
    elif isinstance(v, list):
        yield (prefix + ".n", len(v))
        for i, x in enumerate(v):
            yield from flatten("%s.%d" % (prefix, i + 1), x)
    else:
        yield (prefix, v)


def run_server(portfile):
    from concurrent import futures

    def unary(request, context):
        md = context.invocation_metadata()
        context.send_initial_metadata([("x-initial", "i")])
        context.set_trailing_metadata(
            [("x-echo-" + k[:-4] + "-bin" if k.endswith("-bin") else "x-echo-" + k, v)
             for k, v in md if k.startswith("x-")])
        return request[::-1]

    def bidi(request_iterator, context):
        for m in request_iterator:
            yield m.upper()

    def fail(request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nope: 100% \u2713\nsecond line")

    def slow(request, context):
        time.sleep(1.0)
        return b"late"

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(portfile + ".tmp", "w") as f:
        f.write("%d %d\n" % (port, os.getpid()))
    os.rename(portfile + ".tmp", portfile)
    server.wait_for_termination(timeout=60)


if __name__ == "__main__":
    if sys.argv[1] == "client":
        run_client(sys.argv[2], sys.argv[3])
    else:
        run_server(sys.argv[2])

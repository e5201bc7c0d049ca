#!/usr/bin/python3
"""status_peer.py: a grpcio peer for spec/status_details_spec.lua (the rich error model).

  status_peer.py server        grpcio server; /lgrpctest.Echo/Unary fails with details chosen
                               by the request's n field; prints "listening on PORT"
  status_peer.py client PORT   calls lgrpc's /lgrpctest.Echo/Unary with n = 1..4 and prints one
                               JSON line per call: code, message, the decoded details

google.rpc.Status and the detail types come from protoc-generated Python (status.proto and
error_details.proto from googleapis, as Debian ships them), generated into a temporary
directory at start: the grpc_status package is not needed.
"""
import atexit
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent import futures

import grpc
from google.protobuf import any_pb2, json_format

GOOGLEAPIS = os.environ.get("LGRPC_GOOGLEAPIS", "/usr/share/gocode/src/github.com/gogo/googleapis")


def load_rpc():
    out = tempfile.mkdtemp(prefix="lgrpc-status-py-")
    atexit.register(shutil.rmtree, out, True)
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    subprocess.run(["protoc", "-I" + GOOGLEAPIS, "-I/usr/include", "--python_out=" + out,
                    "google/rpc/status.proto", "google/rpc/error_details.proto"],
                   check=True, env=env)
    # the generated package google.rpc must not hide the installed google.protobuf: import
    # the two modules by path under names of their own
    spec_status = importlib.util.spec_from_file_location(
        "lgrpc_rpc_status_pb2", os.path.join(out, "google/rpc/status_pb2.py"))
    spec_details = importlib.util.spec_from_file_location(
        "lgrpc_rpc_error_details_pb2", os.path.join(out, "google/rpc/error_details_pb2.py"))
    st = importlib.util.module_from_spec(spec_status)
    spec_status.loader.exec_module(st)
    ed = importlib.util.module_from_spec(spec_details)
    spec_details.loader.exec_module(ed)
    return st, ed


status_pb2, details_pb2 = load_rpc()


def packed(msg):
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def request_n(data):
    # lgrpctest.Msg: field 2 (n) is a varint; the spec sends small values only
    i = 0
    while i < len(data):
        tag = data[i]
        if tag == 0x10:
            return data[i + 1]
        i += 1
    return 0


def serve():
    def unary(request, context):
        n = request_n(request)
        if n == 1:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, "bad request from grpcio"
            details = [
                packed(details_pb2.BadRequest(field_violations=[
                    details_pb2.BadRequest.FieldViolation(field="name", description="empty")])),
                packed(details_pb2.ErrorInfo(reason="EMPTY_NAME", domain="example.com",
                                             metadata={"field": "name"})),
            ]
        elif n == 2:
            code, message = grpc.StatusCode.UNAVAILABLE, "try later"
            ri = details_pb2.RetryInfo()
            ri.retry_delay.seconds = 3
            ri.retry_delay.nanos = 500000000
            details = [packed(ri), packed(details_pb2.QuotaFailure(violations=[
                details_pb2.QuotaFailure.Violation(subject="project:7", description="daily")]))]
        elif n == 3:
            code, message = grpc.StatusCode.NOT_FOUND, "gone"
            unknown = any_pb2.Any(type_url="type.googleapis.com/acme.Custom", value=b"\x08\x2a")
            details = [unknown, packed(details_pb2.ResourceInfo(resource_type="book",
                                                                resource_name="shelves/1"))]
        elif n == 4:
            # inconsistent: the details say NOT_FOUND while grpc-status says INTERNAL
            st = status_pb2.Status(code=5, message="other text")
            context.set_trailing_metadata((("grpc-status-details-bin", st.SerializeToString()),))
            context.abort(grpc.StatusCode.INTERNAL, "real message")
        else:
            context.set_trailing_metadata((("grpc-status-details-bin", b"\xff\xff\xff"),))
            context.abort(grpc.StatusCode.ABORTED, "malformed details")
        st = status_pb2.Status(code=code.value[0], message=message, details=details)
        context.set_trailing_metadata((("grpc-status-details-bin", st.SerializeToString()),))
        context.abort(code, message)

    handler = grpc.method_handlers_generic_handler("lgrpctest.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("listening on %d" % port, flush=True)
    server.wait_for_termination(60)


TYPES = {
    "google.rpc.BadRequest": "BadRequest", "google.rpc.ErrorInfo": "ErrorInfo",
    "google.rpc.RetryInfo": "RetryInfo", "google.rpc.QuotaFailure": "QuotaFailure",
    "google.rpc.PreconditionFailure": "PreconditionFailure",
    "google.rpc.ResourceInfo": "ResourceInfo", "google.rpc.Help": "Help",
    "google.rpc.LocalizedMessage": "LocalizedMessage", "google.rpc.DebugInfo": "DebugInfo",
}


def client(port, count):
    ch = grpc.insecure_channel("127.0.0.1:%d" % port)
    call = ch.unary_unary("/lgrpctest.Echo/Unary")
    for n in range(1, count + 1):
        out = {"n": n}
        try:
            call(bytes([0x10, n]), timeout=10)
            out["code"] = 0
        except grpc.RpcError as e:
            out["code"] = e.code().value[0]
            out["message"] = e.details()
            for k, v in e.trailing_metadata() or ():
                if k == "grpc-status-details-bin":
                    st = status_pb2.Status()
                    st.ParseFromString(v)
                    out["status_code"] = st.code
                    out["status_message"] = st.message
                    ds = []
                    for a in st.details:
                        name = a.type_url.split("/")[-1]
                        if name in TYPES:
                            m = getattr(details_pb2, TYPES[name])()
                            a.Unpack(m)
                            d = json_format.MessageToDict(m, preserving_proto_field_name=True)
                        else:
                            d = {"value_hex": a.value.hex()}
                        d["@type"] = a.type_url
                        ds.append(d)
                    out["details"] = ds
        print(json.dumps(out, sort_keys=True), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    else:
        client(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 4)

#!/usr/bin/python3
"""interop_server.py: grpc.testing.TestService on grpcio, as interop-test-descriptions.md
describes the server side (EmptyCall, UnaryCall, CacheableUnaryCall, StreamingOutputCall,
StreamingInputCall, FullDuplexCall, HalfDuplexCall; Echo Status, Echo Metadata,
interval_us). Flags: --port (0 picks one), --use_tls, --tls_cert_file, --tls_key_file. Prints
"listening on PORT".
"""
import os
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
import interop_common  # noqa: E402

empty_pb2, messages_pb2 = interop_common.load_messages()
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def echo_metadata(context):
    initial, trailing = [], []
    for k, v in context.invocation_metadata():
        if k == ECHO_INITIAL:
            initial.append((k, v))
        elif k == ECHO_TRAILING:
            trailing.append((k, v))
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


def echo_status(request, context):
    if request.HasField("response_status") and request.response_status.code != 0:
        context.abort(grpc.StatusCode(_code_by_number[request.response_status.code]),
                      request.response_status.message)


_code_by_number = {c.value[0]: c.value for c in grpc.StatusCode}


def empty_call(request, context):
    echo_metadata(context)
    return empty_pb2.Empty()


def unary_call(request, context):
    echo_metadata(context)
    echo_status(request, context)
    if request.response_type != messages_pb2.COMPRESSABLE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")
    return messages_pb2.SimpleResponse(payload=payload(request.response_size))


def cacheable_unary_call(request, context):
    context.send_initial_metadata([("cache-control", "max-age=60")])
    body = str(time.time_ns()).encode()
    return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(body=body))


def streaming_output_call(request, context):
    echo_metadata(context)
    echo_status(request, context)
    for p in request.response_parameters:
        if p.interval_us > 0:
            time.sleep(p.interval_us / 1e6)
        yield messages_pb2.StreamingOutputCallResponse(payload=payload(p.size))


def streaming_input_call(request_iterator, context):
    echo_metadata(context)
    total = 0
    for req in request_iterator:
        total += len(req.payload.body)
    return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)


def full_duplex_call(request_iterator, context):
    echo_metadata(context)
    for req in request_iterator:
        echo_status(req, context)
        for p in req.response_parameters:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            yield messages_pb2.StreamingOutputCallResponse(payload=payload(p.size))


def half_duplex_call(request_iterator, context):
    echo_metadata(context)
    reqs = list(request_iterator)
    for req in reqs:
        echo_status(req, context)
    for req in reqs:
        for p in req.response_parameters:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            yield messages_pb2.StreamingOutputCallResponse(payload=payload(p.size))


def handlers():
    m = messages_pb2
    e = empty_pb2.Empty
    uu, us, su, ss = (grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler,
                      grpc.stream_unary_rpc_method_handler, grpc.stream_stream_rpc_method_handler)
    table = {
        "EmptyCall": uu(empty_call, e.FromString, e.SerializeToString),
        "UnaryCall": uu(unary_call, m.SimpleRequest.FromString,
                        m.SimpleResponse.SerializeToString),
        "CacheableUnaryCall": uu(cacheable_unary_call, m.SimpleRequest.FromString,
                                 m.SimpleResponse.SerializeToString),
        "StreamingOutputCall": us(streaming_output_call, m.StreamingOutputCallRequest.FromString,
                                  m.StreamingOutputCallResponse.SerializeToString),
        "StreamingInputCall": su(streaming_input_call, m.StreamingInputCallRequest.FromString,
                                 m.StreamingInputCallResponse.SerializeToString),
        "FullDuplexCall": ss(full_duplex_call, m.StreamingOutputCallRequest.FromString,
                             m.StreamingOutputCallResponse.SerializeToString),
        "HalfDuplexCall": ss(half_duplex_call, m.StreamingOutputCallRequest.FromString,
                             m.StreamingOutputCallResponse.SerializeToString),
    }
    return grpc.method_handlers_generic_handler("grpc.testing.TestService", table)


def main():
    flags = interop_common.parse_flags(sys.argv[1:], {"port": "0", "use_tls": "false",
                                                      "tls_cert_file": "", "tls_key_file": ""})
    creds = None
    if flags["use_tls"] not in ("false", "0"):
        if not flags["tls_cert_file"] or not flags["tls_key_file"]:
            raise SystemExit("interop_server.py: --use_tls needs --tls_cert_file and --tls_key_file")
        with open(flags["tls_key_file"], "rb") as f:
            key = f.read()
        with open(flags["tls_cert_file"], "rb") as f:
            chain = f.read()
        creds = grpc.ssl_server_credentials([(key, chain)])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    server.add_generic_rpc_handlers((handlers(),))
    if creds:
        port = server.add_secure_port("127.0.0.1:" + flags["port"], creds)
    else:
        port = server.add_insecure_port("127.0.0.1:" + flags["port"])
    if port == 0:
        raise SystemExit("interop_server.py: cannot listen on port " + flags["port"])
    server.start()
    print("listening on %d" % port, flush=True)
    done = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait()
    server.stop(0.5).wait()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""interop_client.py: the client side of grpc's interop-test-descriptions.md on grpcio.
Flags as grpc-go's client takes them: --server_host, --server_port, --test_case (a case
name, or "all"), --use_tls, --use_test_ca, --ca_file, --server_host_override. Prints "PASS case"
or "FAIL case: reason" per case and exits 0 only when every case passed.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
import interop_common  # noqa: E402

empty_pb2, m = interop_common.load_messages()
SVC = "/grpc.testing.TestService/"
SPECIAL = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
REQ_SIZES = [27182, 8, 1828, 45904]
RESP_SIZES = [31415, 9, 2653, 58979]
DEADLINE = 10  # every call here is bounded


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def zeros(n):
    return m.Payload(body=b"\0" * n)


class Stub:
    def __init__(self, channel):
        e = empty_pb2.Empty

        def uu(name, req, resp, svc=SVC):
            return channel.unary_unary(svc + name, request_serializer=req.SerializeToString,
                                       response_deserializer=resp.FromString)
        self.EmptyCall = uu("EmptyCall", e, e)
        self.UnaryCall = uu("UnaryCall", m.SimpleRequest, m.SimpleResponse)
        self.UnimplementedCall = uu("UnimplementedCall", e, e)
        self.UnimplementedServiceCall = uu("UnimplementedCall", e, e,
                                           "/grpc.testing.UnimplementedService/")
        self.StreamingOutputCall = channel.unary_stream(
            SVC + "StreamingOutputCall",
            request_serializer=m.StreamingOutputCallRequest.SerializeToString,
            response_deserializer=m.StreamingOutputCallResponse.FromString)
        self.StreamingInputCall = channel.stream_unary(
            SVC + "StreamingInputCall",
            request_serializer=m.StreamingInputCallRequest.SerializeToString,
            response_deserializer=m.StreamingInputCallResponse.FromString)
        self.FullDuplexCall = channel.stream_stream(
            SVC + "FullDuplexCall",
            request_serializer=m.StreamingOutputCallRequest.SerializeToString,
            response_deserializer=m.StreamingOutputCallResponse.FromString)


class Requests:
    """A request iterator the test feeds one message at a time (ping-pong)."""

    def __init__(self):
        self._cv = threading.Condition()
        self._q = []
        self._closed = False

    def send(self, msg):
        with self._cv:
            self._q.append(msg)
            self._cv.notify()

    def close(self):
        with self._cv:
            self._closed = True
            self._cv.notify()

    def __iter__(self):
        return self

    def __next__(self):
        with self._cv:
            while not self._q and not self._closed:
                self._cv.wait()
            if self._q:
                return self._q.pop(0)
            raise StopIteration


def empty_unary(s):
    r = s.EmptyCall(empty_pb2.Empty(), timeout=DEADLINE)
    check(r == empty_pb2.Empty(), "response is not empty")


def large_unary(s):
    r = s.UnaryCall(m.SimpleRequest(response_size=314159, payload=zeros(271828)),
                    timeout=DEADLINE)
    check(r.payload.body == b"\0" * 314159, "payload is %d bytes" % len(r.payload.body))


def client_streaming(s):
    r = s.StreamingInputCall(iter([m.StreamingInputCallRequest(payload=zeros(n))
                                   for n in REQ_SIZES]), timeout=DEADLINE)
    check(r.aggregated_payload_size == 74922, "aggregated %d" % r.aggregated_payload_size)


def server_streaming(s):
    req = m.StreamingOutputCallRequest(
        response_parameters=[m.ResponseParameters(size=n) for n in RESP_SIZES])
    sizes = [len(r.payload.body) for r in s.StreamingOutputCall(req, timeout=DEADLINE)]
    check(sizes == RESP_SIZES, "sizes %r" % sizes)


def ping_pong(s):
    reqs = Requests()
    call = s.FullDuplexCall(reqs, timeout=DEADLINE)
    sizes = []
    for req_n, resp_n in zip(REQ_SIZES, RESP_SIZES):
        reqs.send(m.StreamingOutputCallRequest(
            response_parameters=[m.ResponseParameters(size=resp_n)], payload=zeros(req_n)))
        sizes.append(len(next(call).payload.body))
    reqs.close()
    rest = list(call)
    check(sizes == RESP_SIZES and not rest, "sizes %r, %d extra" % (sizes, len(rest)))
    check(call.code() == grpc.StatusCode.OK, "status %s" % call.code())


def empty_stream(s):
    call = s.FullDuplexCall(iter([]), timeout=DEADLINE)
    rest = list(call)
    check(not rest, "%d responses" % len(rest))
    check(call.code() == grpc.StatusCode.OK, "status %s" % call.code())


def expect_code(fn, code, what):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, "%s: got %s %r" % (what, e.code(), e.details()))
        return e
    raise Fail(what + ": call succeeded")


def timeout_on_sleeping_server(s):
    reqs = Requests()

    def run():
        call = s.FullDuplexCall(reqs, timeout=0.001)
        reqs.send(m.StreamingOutputCallRequest(payload=zeros(27182)))
        for _ in call:
            pass
    try:
        expect_code(run, grpc.StatusCode.DEADLINE_EXCEEDED, "timeout_on_sleeping_server")
    finally:
        reqs.close()


def cancel_after_begin(s):
    reqs = Requests()
    fut = s.StreamingInputCall.future(reqs, timeout=DEADLINE)
    fut.cancel()
    reqs.close()
    check(fut.cancelled(), "not cancelled")
    check(fut.code() == grpc.StatusCode.CANCELLED, "status %s" % fut.code())


def cancel_after_first_response(s):
    reqs = Requests()
    call = s.FullDuplexCall(reqs, timeout=DEADLINE)
    reqs.send(m.StreamingOutputCallRequest(
        response_parameters=[m.ResponseParameters(size=31415)], payload=zeros(27182)))
    r = next(call)
    check(len(r.payload.body) == 31415, "first response %d bytes" % len(r.payload.body))
    call.cancel()
    reqs.close()
    check(call.code() == grpc.StatusCode.CANCELLED, "status %s" % call.code())


def status_code_and_message(s, msg="test status message"):
    st = m.EchoStatus(code=2, message=msg)
    e = expect_code(lambda: s.UnaryCall(m.SimpleRequest(response_status=st), timeout=DEADLINE),
                    grpc.StatusCode.UNKNOWN, "UnaryCall")
    check(e.details() == msg, "UnaryCall message %r" % e.details())

    def duplex():
        for _ in s.FullDuplexCall(iter([m.StreamingOutputCallRequest(response_status=st)]),
                                  timeout=DEADLINE):
            pass
    e = expect_code(duplex, grpc.StatusCode.UNKNOWN, "FullDuplexCall")
    check(e.details() == msg, "FullDuplexCall message %r" % e.details())


def special_status_message(s):
    st = m.EchoStatus(code=2, message=SPECIAL)
    e = expect_code(lambda: s.UnaryCall(m.SimpleRequest(response_status=st), timeout=DEADLINE),
                    grpc.StatusCode.UNKNOWN, "UnaryCall")
    check(e.details() == SPECIAL, "message %r" % e.details())


def unimplemented_method(s):
    expect_code(lambda: s.UnimplementedCall(empty_pb2.Empty(), timeout=DEADLINE),
                grpc.StatusCode.UNIMPLEMENTED, "unimplemented_method")


def unimplemented_service(s):
    expect_code(lambda: s.UnimplementedServiceCall(empty_pb2.Empty(), timeout=DEADLINE),
                grpc.StatusCode.UNIMPLEMENTED, "unimplemented_service")


def custom_metadata(s):
    md = (("x-grpc-test-echo-initial", "test_initial_metadata_value"),
          ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"))

    def verify(what, initial, trailing):
        initial, trailing = dict(initial or ()), dict(trailing or ())
        check(initial.get("x-grpc-test-echo-initial") == "test_initial_metadata_value",
              what + ": initial metadata %r" % (initial,))
        check(trailing.get("x-grpc-test-echo-trailing-bin") == b"\xab\xab\xab",
              what + ": trailing metadata %r" % (trailing,))

    r, call = s.UnaryCall.with_call(
        m.SimpleRequest(response_size=314159, payload=zeros(271828)), metadata=md,
        timeout=DEADLINE)
    check(len(r.payload.body) == 314159, "UnaryCall payload %d" % len(r.payload.body))
    verify("UnaryCall", call.initial_metadata(), call.trailing_metadata())
    call = s.FullDuplexCall(iter([m.StreamingOutputCallRequest(
        response_parameters=[m.ResponseParameters(size=314159)], payload=zeros(271828))]),
        metadata=md, timeout=DEADLINE)
    sizes = [len(x.payload.body) for x in call]
    check(sizes == [314159], "FullDuplexCall sizes %r" % sizes)
    verify("FullDuplexCall", call.initial_metadata(), call.trailing_metadata())


CASES = [empty_unary, large_unary, client_streaming, server_streaming, ping_pong,
         empty_stream, timeout_on_sleeping_server, cancel_after_begin,
         cancel_after_first_response, status_code_and_message, special_status_message,
         unimplemented_method, unimplemented_service, custom_metadata]


def main():
    flags = interop_common.parse_flags(sys.argv[1:], {
        "server_host": "127.0.0.1", "server_port": "10000", "test_case": "all",
        "use_tls": "false", "server_host_override": "", "use_test_ca": "false", "ca_file": ""})
    creds = None
    if flags["use_tls"] not in ("false", "0"):
        root = None
        if flags["use_test_ca"] not in ("false", "0"):
            if not flags["ca_file"]:
                raise SystemExit("interop_client.py: --use_test_ca needs --ca_file")
        if flags["ca_file"]:
            with open(flags["ca_file"], "rb") as f:
                root = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=root)
    by_name = {f.__name__: f for f in CASES}
    if flags["test_case"] == "all":
        cases = CASES
    elif flags["test_case"] in by_name:
        cases = [by_name[flags["test_case"]]]
    else:
        raise SystemExit("interop_client.py: unknown test case " + flags["test_case"])
    target = "%s:%s" % (flags["server_host"], flags["server_port"])
    failed = 0
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if flags["server_host_override"]:
        options.append(("grpc.ssl_target_name_override", flags["server_host_override"]))
    channel = (grpc.secure_channel(target, creds, options=options) if creds
               else grpc.insecure_channel(target, options=options))
    with channel:
        stub = Stub(channel)
        for case in cases:
            try:
                case(stub)
                print("PASS " + case.__name__, flush=True)
            except Fail as e:
                failed += 1
                print("FAIL %s: %s" % (case.__name__, e), flush=True)
            except grpc.RpcError as e:
                failed += 1
                print("FAIL %s: %s %r" % (case.__name__, e.code(), e.details()), flush=True)
            except Exception as e:  # a bug in the peer still reports, not crashes
                failed += 1
                print("FAIL %s: %s: %s" % (case.__name__, type(e).__name__, e), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

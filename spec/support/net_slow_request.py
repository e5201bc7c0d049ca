#!/usr/bin/python3
"""net_slow_request.py PORT DELAY TIMEOUT: opens an HTTP/2 connection to 127.0.0.1:PORT at once,
then after DELAY seconds sends one gRPC request with grpc-timeout TIMEOUT (raw frames, HPACK
literals), and reads until the server closes or 5 s pass. For spec/net_loop_spec.lua."""
import socket
import sys
import time


def frame(ftype, flags, stream, payload):
    n = len(payload)
    return bytes([n >> 16 & 255, n >> 8 & 255, n & 255, ftype, flags]) + stream.to_bytes(4, "big") + payload


def literal(name, value):
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


port, delay, timeout = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
time.sleep(delay)
block = b"".join(literal(n, v) for n, v in [
    (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/a.B/C"), (b":authority", b"x"),
    (b"te", b"trailers"), (b"content-type", b"application/grpc"), (b"grpc-timeout", timeout)])
s.sendall(frame(1, 4, 1, block) + frame(0, 1, 1, b"\x00\x00\x00\x00\x02hi"))
s.settimeout(5)
try:
    while s.recv(65536):
        pass
except OSError:
    pass

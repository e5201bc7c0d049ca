#!/usr/bin/python3
"""A grpcio client for spec/interceptors_builtin_spec.lua: calls lgrpctest.Echo on an lgrpc
server guarded by the auth interceptor, once per token, and reports the status grpcio saw.

usage: jwt_grpcio_client.py ADDR IN OUT
  IN:  JSON { "calls": [ { "name": str, "token": str | null, "method": "Unary" | "Bidi" } ] }
  OUT: JSON { name: { "code": "OK" | "UNAUTHENTICATED" | ..., "details": str } }, then a line DONE
Messages are raw bytes (an empty lgrpctest.Msg), so no generated code is needed."""
import json
import sys

import grpc


def main():
    addr, inp, out = sys.argv[1:4]
    with open(inp) as f:
        calls = json.load(f)["calls"]
    report = {}
    with grpc.insecure_channel(addr) as ch:
        for c in calls:
            md = [("authorization", "Bearer " + c["token"])] if c.get("token") else []
            try:
                if c.get("method") == "Bidi":
                    bidi = ch.stream_stream("/lgrpctest.Echo/Bidi")
                    list(bidi(iter([b"", b""]), metadata=md, timeout=10))
                else:
                    ch.unary_unary("/lgrpctest.Echo/Unary")(b"", metadata=md, timeout=10)
                report[c["name"]] = {"code": "OK", "details": ""}
            except grpc.RpcError as e:
                report[c["name"]] = {"code": e.code().name, "details": e.details()}
    with open(out, "w") as f:
        json.dump(report, f)
        f.write("\nDONE\n")


if __name__ == "__main__":
    main()

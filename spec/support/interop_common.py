"""interop_common.py: loads grpc.testing messages for the grpcio interop peers.

Generates the Python message modules from /usr/share/grpc-proto with protoc at run time
(into a temporary directory removed at exit); the service wiring is done by hand with
grpcio's generic handlers and channel.unary_unary & co, so grpc_tools is not needed.
"""
import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

PROTO_ROOT = os.environ.get("LGRPC_GRPC_PROTO", "/usr/share/grpc-proto")
FILES = ["grpc/testing/empty.proto", "grpc/testing/messages.proto"]


def load_messages():
    out = tempfile.mkdtemp(prefix="lgrpc-interop-py-")
    atexit.register(shutil.rmtree, out, True)
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    subprocess.run(["protoc", "-I" + PROTO_ROOT, "--python_out=" + out] + FILES,
                   check=True, env=env)
    # the generated modules live in package grpc.testing, which would shadow grpcio's own
    # `grpc` package: load them by file path instead

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    empty = load("grpc_testing_empty_pb2", os.path.join(out, "grpc/testing/empty_pb2.py"))
    messages = load("grpc_testing_messages_pb2",
                    os.path.join(out, "grpc/testing/messages_pb2.py"))
    return empty, messages


def parse_flags(argv, defaults):
    """Flags as grpc-go's interop binaries take them: --name=value or --name value."""
    flags = dict(defaults)
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--"):
            raise SystemExit("unexpected argument: " + a)
        a = a[2:]
        if "=" in a:
            k, v = a.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            k, v = a, argv[i + 1]
            i += 1
        else:
            k, v = a, "true"
        if k not in flags:
            raise SystemExit("unknown flag --" + k)
        flags[k] = v
        i += 1
    return flags

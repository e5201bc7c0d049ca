#!/usr/bin/python3
# Compiles .proto files with protoc (--include_imports) and prints the FileDescriptorSet as a Lua
# chunk returning an array of descriptor tables in lgrpc's shape (docs/design.md): field names of
# descriptor.proto as keys, enum values as names, repeated fields as arrays.
# usage: json_pool.py -I DIR [-I DIR...] FILE.proto...
import subprocess
import sys
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor as FD


def lua_string(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return '"' + "".join(
        "\\" + chr(c) if c in (0x22, 0x5C) else chr(c) if 0x20 <= c < 0x7F else "\\%03d" % c
        for c in b) + '"'


def lua_value(fd, v):
    if fd.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        return lua_message(v)
    if fd.type == FD.TYPE_ENUM:
        return lua_string(fd.enum_type.values_by_number[v].name)
    if fd.type == FD.TYPE_BOOL:
        return "true" if v else "false"
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return lua_string(v)
    return repr(v)


def lua_message(msg):
    parts = []
    for fd, v in msg.ListFields():
        if fd.label == FD.LABEL_REPEATED:
            val = "{" + ", ".join(lua_value(fd, x) for x in v) + "}"
        else:
            val = lua_value(fd, v)
        parts.append("[%s] = %s" % (lua_string(fd.name), val))
    return "{" + ", ".join(parts) + "}"


def main(argv):
    args = ["protoc", "--include_imports", "--descriptor_set_out=/dev/stdout"] + argv
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE).stdout
    fds = descriptor_pb2.FileDescriptorSet.FromString(out)
    print("return {")
    for f in fds.file:
        print(lua_message(f) + ",")
    print("}")


if __name__ == "__main__":
    main(sys.argv[1:])

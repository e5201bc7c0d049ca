#!/usr/bin/python3
"""codec_fdp.py — reads a FileDescriptorSet (protoc --descriptor_set_out) and prints a Lua chunk
returning its files as Lua descriptor tables in lgrpc's representation (docs/design.md): keys are
descriptor.proto field names, enums as NAME strings, repeated fields as arrays, options as tables;
unknown fields (custom options) are left out. Used by spec/support/codec_fdp.lua."""
import sys
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor as FD


def lua_str(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    out = []
    for c in b:
        if 32 <= c < 127 and c not in (34, 92):
            out.append(chr(c))
        else:
            out.append("\\%03d" % c)
    return '"' + "".join(out) + '"'


def lua_value(fd, v):
    if fd.type == FD.TYPE_MESSAGE or fd.type == FD.TYPE_GROUP:
        return lua_msg(v)
    if fd.type == FD.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(v)
        return lua_str(ev.name) if ev else str(v)
    if fd.type == FD.TYPE_BOOL:
        return "true" if v else "false"
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return lua_str(v)
    if fd.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return repr(float(v))
    return str(int(v))


def lua_msg(m):
    parts = []
    for fd, v in m.ListFields():
        if fd.label == FD.LABEL_REPEATED:
            val = "{" + ", ".join(lua_value(fd, x) for x in v) + "}"
        else:
            val = lua_value(fd, v)
        parts.append("[%s] = %s" % (lua_str(fd.name), val))
    return "{" + ", ".join(parts) + "}"


def main():
    fds = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as f:
        fds.ParseFromString(f.read())
    sys.stdout.write("return {\n" + ",\n".join(lua_msg(f) for f in fds.file) + "\n}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# Reads a FileDescriptorSet written by protoc (--descriptor_set_out) and prints it as a Lua table
# literal in lgrpc's descriptor-table shape (docs/design.md): descriptor.proto field names as keys,
# enums as value names, repeated as arrays, unknown fields (custom options) as raw wire bytes at
# key "$unknown". Used by the proto specs to compare lgrpc's compiler with protoc, table to table.
import sys
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor as FD


def lua_string(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    out = ['"']
    for c in b:
        if c in (0x22, 0x5c):
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7f:
            out.append(chr(c))
        else:
            out.append("\\%03d" % c)
    out.append('"')
    return "".join(out)


def unknown_bytes(msg):
    full = msg.SerializeToString()
    known = type(msg)()
    known.CopyFrom(msg)
    known.DiscardUnknownFields()
    k = known.SerializeToString()
    # known fields come first, unknown ones after them, as protoc writes them
    return full[len(k):] if full.startswith(k) else b""


LUA_KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}


def lua_key(name):
    return '["%s"]' % name if name in LUA_KEYWORDS else name


def value(fd, v):
    if fd.type == FD.TYPE_MESSAGE or fd.type == FD.TYPE_GROUP:
        return message(v)
    if fd.type == FD.TYPE_ENUM:
        return lua_string(fd.enum_type.values_by_number[v].name)
    if fd.type == FD.TYPE_BOOL:
        return "true" if v else "false"
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return lua_string(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def message(msg):
    parts = []
    for fd, v in msg.ListFields():
        if fd.label == FD.LABEL_REPEATED:
            parts.append("%s={%s}" % (lua_key(fd.name), ",".join(value(fd, x) for x in v)))
        else:
            parts.append("%s=%s" % (lua_key(fd.name), value(fd, v)))
    u = unknown_bytes(msg)
    if u:
        parts.append('["$unknown"]=%s' % lua_string(u))
    return "{" + ",".join(parts) + "}"


def main():
    fds = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as f:
        fds.ParseFromString(f.read())
    sys.stdout.write("return {\n")
    for fdp in fds.file:
        sys.stdout.write(message(fdp) + ",\n")
    sys.stdout.write("}\n")


main()

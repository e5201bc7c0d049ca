#!/usr/bin/python3
"""codec_crosscheck.py — the python3-protobuf side of spec/codec_crosscheck_spec.lua.

usage: codec_crosscheck.py DESCRIPTOR_SET IN OUT
IN holds one record per line: "pkg.Message HEX" (bytes written by lgrpc). For each, OUT gets
one line: "OK HEX LUA" where HEX is python-protobuf's deterministic serialization of what it
parsed and LUA a Lua table literal of the parsed values in lgrpc's representation with
int64 = "string" (64-bit integers as decimal strings, enums as names, extensions under
"[full.name]", maps as tables); or "ERR message". One process serves a whole batch."""
import math
import sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor as FD

INT64 = (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64, FD.TYPE_UINT64, FD.TYPE_FIXED64)


def lua_str(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else "\\%03d" % c for c in b) + '"'


def lua_float(x):
    if math.isnan(x):
        return "(0/0)"
    if math.isinf(x):
        return "(1/0)" if x > 0 else "(-1/0)"
    if x == 0:
        return "(-0.0)" if math.copysign(1, x) < 0 else "0.0"
    return "(" + repr(x) + ")"


def scalar(fd, v):
    t = fd.type
    if t in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        return msg(v)
    if t == FD.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(v)
        return lua_str(ev.name) if ev else str(v)
    if t == FD.TYPE_BOOL:
        return "true" if v else "false"
    if t in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return lua_str(v)
    if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return lua_float(v)
    if t in INT64:
        return '"%d"' % v
    return str(v)


def msg(m):
    parts = []
    for fd, v in m.ListFields():
        name = "[" + fd.full_name + "]" if fd.is_extension else fd.name
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            kf = fd.message_type.fields_by_name["key"]
            vf = fd.message_type.fields_by_name["value"]
            val = "{" + ", ".join("[%s] = %s" % (scalar(kf, k), scalar(vf, v[k])) for k in v) + "}"
        elif fd.label == FD.LABEL_REPEATED:
            val = "{" + ", ".join(scalar(fd, x) for x in v) + "}"
        else:
            val = scalar(fd, v)
        parts.append("[%s] = %s" % (lua_str(name), val))
    return "{" + ", ".join(parts) + "}"


def main():
    fds = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    factory = message_factory.MessageFactory(pool)
    factory.GetMessages([f.name for f in fds.file])  # also registers the extensions
    out = open(sys.argv[3], "w")
    for line in open(sys.argv[2]):
        parts = line.split()
        name, hexdata = parts[0], parts[1] if len(parts) > 1 else ""
        try:
            cls = factory.GetPrototype(pool.FindMessageTypeByName(name))
            m = cls()
            m.ParseFromString(bytes.fromhex(hexdata))
            data = m.SerializeToString(deterministic=True)
            out.write("OK %s %s\n" % (data.hex() or "-", msg(m)))
        except Exception as e:  # reported to the spec, which prints the seed
            out.write("ERR %s\n" % str(e).replace("\n", " "))
    out.close()


if __name__ == "__main__":
    main()

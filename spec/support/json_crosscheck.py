#!/usr/bin/python3
# The python3-protobuf side of spec/json_crosscheck_spec.lua. Compiles the fixture protos with
# protoc --python_out into a temporary directory, then:
#   gen SEED COUNT      random messages (every field type, maps, oneofs, nesting, well-known types
#                       with their edge cases), printed as a Lua chunk: each message as a Lua
#                       literal in lgrpc's codec representation plus json_format's text for it
#                       under each option set.
#   check FILE          FILE is a JSON array of {type, text, opts}: parses each text with
#                       json_format.Parse and prints (as a Lua chunk) MessageToJson of the result
#                       under the same options, or the parse error.
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import json as pyjson

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "json")
tmp = tempfile.mkdtemp(prefix="lgrpc_json_")
subprocess.run(["protoc", "-I", FIXTURES, "--python_out=" + tmp, "jsontest.proto", "jsontest2.proto"], check=True)
sys.path.insert(0, tmp)

from google.protobuf import json_format  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor as FD  # noqa: E402
from google.protobuf import any_pb2, struct_pb2  # noqa: E402
import jsontest_pb2  # noqa: E402
import jsontest2_pb2  # noqa: E402

TYPES = {
    "lgrpc.jsontest.Kitchen": jsontest_pb2.Kitchen,
    "lgrpc.jsontest.Wkt": jsontest_pb2.Wkt,
    "lgrpc.jsontest.Node": jsontest_pb2.Node,
    "lgrpc.jsontest.Point": jsontest_pb2.Point,
    "lgrpc.jsontest2.Legacy": jsontest2_pb2.Legacy,
}
OPTION_SETS = {
    "default": {},
    "defaults": {"including_default_value_fields": True},
    "proto_names": {"preserving_proto_field_name": True},
    "enum_numbers": {"use_integers_for_enums": True},
}

# ---------------------------------------------------------------------------------------------
# Lua literals


def lua_string(b):
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogatepass")
    return '"' + "".join(
        "\\" + chr(c) if c in (0x22, 0x5C) else chr(c) if 0x20 <= c < 0x7F else "\\%03d" % c
        for c in b) + '"'


def lua_float(v):
    if math.isnan(v):
        return "(0/0)"
    if math.isinf(v):
        return "math.huge" if v > 0 else "-math.huge"
    return repr(v)


INT64 = (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64)
UINT64 = (FD.TYPE_UINT64, FD.TYPE_FIXED64)


def lua_scalar(fd, v):
    t = fd.type
    if t in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        return lua_message(v)
    if t == FD.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(v)
        return lua_string(ev.name) if ev else str(v)
    if t == FD.TYPE_BOOL:
        return "true" if v else "false"
    if t in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return lua_string(v)
    if t in INT64:
        return 'I("%d")' % v
    if t in UINT64:
        return 'U("%d")' % v
    if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return lua_float(v)
    return str(v)


def lua_message(msg):
    parts = []
    for fd, v in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            kf = fd.message_type.fields_by_name["key"]
            vf = fd.message_type.fields_by_name["value"]
            items = ["[%s] = %s" % (lua_scalar(kf, k), lua_scalar(vf, v[k])) for k in v]
            val = "{" + ", ".join(items) + "}"
        elif fd.label == FD.LABEL_REPEATED:
            val = "{" + ", ".join(lua_scalar(fd, x) for x in v) + "}"
        else:
            val = lua_scalar(fd, v)
        name = "[%s]" % fd.full_name if fd.is_extension else fd.name
        parts.append("[%s] = %s" % (lua_string(name), val))
    return "{" + ", ".join(parts) + "}"

# ---------------------------------------------------------------------------------------------
# random messages


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def chance(self, p=0.5):
        return self.r.random() < p

    def int_value(self, t):
        r = self.r
        if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
            lo, hi = -2**31, 2**31 - 1
        elif t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
            lo, hi = 0, 2**32 - 1
        elif t in INT64:
            lo, hi = -2**63, 2**63 - 1
        else:
            lo, hi = 0, 2**64 - 1
        edges = [0, 1, lo, hi, hi - 1, 2**53, 2**53 + 1, -2**53 - 1, 127, 128, -1]
        v = r.choice(edges) if self.chance(0.5) else r.randint(lo, hi)
        return min(max(v, lo), hi)

    def float_value(self, t):
        r = self.r
        edges = [0.0, -0.0, 1.0, -1.5, 0.1, 1e-5, 1e16, 1e22, 123456789.125, 5e-324, 1.7976931348623157e308,
                 3.4028234663852886e38, 1.401298464324817e-45, float("nan"), float("inf"), float("-inf"), 1e-7]
        if self.chance(0.5):
            v = r.choice(edges)
        elif self.chance(0.5):
            v = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
        else:
            v = r.uniform(-1e6, 1e6)
        if t == FD.TYPE_FLOAT:
            if not math.isnan(v) and not math.isinf(v) and abs(v) > 3.4028234663852886e38:
                v = 3.4028234663852886e38
            v = f32(v)
        return v

    def text(self):
        r = self.r
        pieces = ["a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x7f", "é", "€", "😀", "\u2028", "中", "<", "&"]
        return "".join(r.choice(pieces) for _ in range(r.randint(0, 6)))

    def scalar(self, fd, depth):
        t = fd.type
        if t in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
            return None
        if t == FD.TYPE_ENUM:
            if fd.enum_type.full_name == "google.protobuf.NullValue":
                return 0
            vals = [v.number for v in fd.enum_type.values]
            if fd.file.syntax == "proto3" and self.chance(0.2):
                return self.r.choice([7, -5, 1000])
            return self.r.choice(vals)
        if t == FD.TYPE_BOOL:
            return self.chance()
        if t == FD.TYPE_STRING:
            return self.text()
        if t == FD.TYPE_BYTES:
            return bytes(self.r.getrandbits(8) for _ in range(self.r.randint(0, 7)))
        if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
            return self.float_value(t)
        return self.int_value(t)

    def fill(self, msg, depth=0):
        d = msg.DESCRIPTOR
        full = d.full_name
        if full in WKT_FILL:
            WKT_FILL[full](self, msg, depth)
            return
        oneofs_done = set()
        for fd in d.fields:
            if fd.containing_oneof is not None and not fd.containing_oneof.name.startswith("_"):
                if fd.containing_oneof.name in oneofs_done or not self.chance(0.3):
                    continue
                oneofs_done.add(fd.containing_oneof.name)
            elif not self.chance(0.45):
                continue
            self.fill_field(msg, fd, depth)

    def fill_field(self, msg, fd, depth):
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            kf = fd.message_type.fields_by_name["key"]
            vf = fd.message_type.fields_by_name["value"]
            m = getattr(msg, fd.name)
            for _ in range(self.r.randint(0, 3)):
                k = self.scalar(kf, depth)
                if vf.message_type is not None:
                    self.fill(m[k], depth + 1)
                else:
                    m[k] = self.scalar(vf, depth)
        elif fd.label == FD.LABEL_REPEATED:
            rep = getattr(msg, fd.name)
            for _ in range(self.r.randint(0, 3)):
                if fd.message_type is not None:
                    self.fill(rep.add(), depth + 1)
                else:
                    rep.append(self.scalar(fd, depth))
        elif fd.message_type is not None:
            if depth > 4:
                return
            sub = getattr(msg, fd.name)
            sub.SetInParent()
            self.fill(sub, depth + 1)
        else:
            setattr(msg, fd.name, self.scalar(fd, depth))


def fill_duration(g, msg, depth):
    r = g.r
    s = r.choice([0, 1, -1, 315576000000, -315576000000, r.randint(-315576000000, 315576000000)])
    n = r.choice([0, 1, 999999999, 500000000, 1000, 123000000, r.randint(0, 999999999)])
    if s < 0 or (s == 0 and g.chance()):
        n = -n
    msg.seconds, msg.nanos = s, n


def fill_timestamp(g, msg, depth):
    r = g.r
    msg.seconds = r.choice([0, -1, -62135596800, 253402300799, 951782400, r.randint(-62135596800, 253402300799)])
    msg.nanos = r.choice([0, 1, 999999999, 10000000, 123456000, r.randint(0, 999999999)])


def fill_field_mask(g, msg, depth):
    for _ in range(g.r.randint(0, 3)):
        msg.paths.append(g.r.choice(["a", "foo_bar", "x.y_z", "f_int32", "deep.er.path_name"]))


def fill_value(g, msg, depth):
    r = g.r
    k = r.choice(["null", "number", "string", "bool", "struct", "list"] if depth < 4 else ["number", "string"])
    if k == "null":
        msg.null_value = 0
    elif k == "number":
        v = g.float_value(FD.TYPE_DOUBLE)
        msg.number_value = 0.5 if (math.isnan(v) or math.isinf(v)) else v
    elif k == "string":
        msg.string_value = g.text()
    elif k == "bool":
        msg.bool_value = g.chance()
    elif k == "struct":
        fill_struct(g, msg.struct_value, depth + 1)
    else:
        fill_list(g, msg.list_value, depth + 1)


def fill_struct(g, msg, depth):
    for _ in range(g.r.randint(0, 3)):
        fill_value(g, msg.fields[g.text()], depth + 1)


def fill_list(g, msg, depth):
    for _ in range(g.r.randint(0, 3)):
        fill_value(g, msg.values.add(), depth + 1)


def fill_any(g, msg, depth):
    if depth > 3 or not ANY_OK:
        return
    inner = g.r.choice([jsontest_pb2.Point, jsontest_pb2.Feature, struct_pb2.Value, jsontest_pb2.Wkt])()
    g.fill(inner, depth + 1)
    msg.Pack(inner)


def fill_wrapper(g, msg, depth):
    fd = msg.DESCRIPTOR.fields_by_name["value"]
    if g.chance(0.8):
        msg.value = g.scalar(fd, depth)


WKT_FILL = {
    "google.protobuf.Duration": fill_duration,
    "google.protobuf.Timestamp": fill_timestamp,
    "google.protobuf.FieldMask": fill_field_mask,
    "google.protobuf.Value": fill_value,
    "google.protobuf.Struct": fill_struct,
    "google.protobuf.ListValue": fill_list,
    "google.protobuf.Any": fill_any,
    "google.protobuf.Empty": lambda g, m, d: None,
}
for _w in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"):
    WKT_FILL["google.protobuf.%sValue" % _w] = fill_wrapper
ANY_OK = os.environ.get("LGRPC_JSON_ANY") == "1"

# ---------------------------------------------------------------------------------------------


def to_json(msg, opts):
    try:
        return True, json_format.MessageToJson(msg, **opts)
    except Exception as e:  # noqa: BLE001 - any refusal is reported back as text
        return False, "%s: %s" % (type(e).__name__, e)


def gen(seed, count):
    g = Gen(seed)
    out = ["return {"]
    names = ["lgrpc.jsontest.Kitchen", "lgrpc.jsontest.Wkt", "lgrpc.jsontest.Node", "lgrpc.jsontest2.Legacy"]
    for i in range(count):
        name = names[i % len(names)]
        msg = TYPES[name]()
        g.fill(msg)
        texts = []
        for key, opts in OPTION_SETS.items():
            ok, text = to_json(msg, opts)
            texts.append("[%s] = %s" % (lua_string(key), lua_string(text) if ok else "false"))
        out.append("{ type = %s, msg = %s, json = { %s } }," % (lua_string(name), lua_message(msg), ", ".join(texts)))
    out.append("}")
    print("\n".join(out))


def check(path):
    with open(path, encoding="utf-8") as fh:
        items = pyjson.load(fh)
    out = ["return {"]
    for item in items:
        msg = TYPES[item["type"]]()
        try:
            json_format.Parse(item["text"], msg)
        except Exception as e:  # noqa: BLE001
            out.append("{ ok = false, err = %s }," % lua_string("%s: %s" % (type(e).__name__, e)))
            continue
        ok, text = to_json(msg, OPTION_SETS[item["opts"]])
        out.append("{ ok = %s, text = %s }," % ("true" if ok else "false", lua_string(text)))
    out.append("}")
    print("\n".join(out))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(int(sys.argv[2]), int(sys.argv[3]))
    else:
        check(sys.argv[2])

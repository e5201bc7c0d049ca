#!/usr/bin/python3
# Compares two FileDescriptorSets file by file: the reference (protoc --descriptor_set_out) and the
# one under test (lgrpc descriptor-set). Each FileDescriptorProto must be byte-identical once
# source_code_info is dropped; the files must be the same, in the same order. On a difference it
# names the first differing field by path (message_type[1].field[0].json_name), shows both values
# and a text-format diff of the enclosing message. Custom options, which descriptor.proto does not
# know, are compared as encoded, record by record.
#
#   fds_compare.py EXPECTED.pb ACTUAL.pb
#   fds_compare.py --manifest FILE      (lines "NAME<TAB>EXPECTED.pb<TAB>ACTUAL.pb")
#
# Prints "== NAME: OK" or "== NAME: DIFF" and the report under it for each pair. Exit status 0 when
# all pairs are identical, 1 when some differ, 2 on bad usage or unreadable input.
import difflib
import struct
import sys

from google.protobuf import descriptor_pb2, text_format
from google.protobuf.descriptor import FieldDescriptor as FD

SOURCE_CODE_INFO = 9  # FileDescriptorProto.source_code_info
MAX_TEXT_DIFF_LINES = 40


class WireError(Exception):
    pass


def read_varint(buf, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def records(buf):
    """Splits an encoded message into records: (number, wire_type, payload, raw)."""
    out, pos = [], 0
    while pos < len(buf):
        start = pos
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            body = pos
            _, pos = read_varint(buf, pos)
            payload = buf[body:pos]
        elif wt == 1:
            pos += 8
            payload = buf[pos - 8:pos]
        elif wt == 5:
            pos += 4
            payload = buf[pos - 4:pos]
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            pos += n
            payload = buf[pos - n:pos]
        elif wt == 3:
            depth = 1
            body = pos
            while depth:
                k, pos = read_varint(buf, pos)
                w = k & 7
                if w == 3:
                    depth += 1
                elif w == 4:
                    depth -= 1
                elif w == 0:
                    _, pos = read_varint(buf, pos)
                elif w == 1:
                    pos += 8
                elif w == 5:
                    pos += 4
                elif w == 2:
                    n, pos = read_varint(buf, pos)
                    pos += n
                else:
                    raise WireError("bad wire type %d in group" % w)
            payload = buf[body:pos]
        else:
            raise WireError("bad wire type %d at offset %d" % (wt, start))
        if pos > len(buf):
            raise WireError("record at offset %d runs past the end" % start)
        out.append((num, wt, payload, buf[start:pos]))
    return out


def set_files(data):
    """The FileDescriptorProtos of a FileDescriptorSet, as bytes, source_code_info removed."""
    files = []
    for num, wt, payload, _ in records(data):
        if num != 1 or wt != 2:
            raise WireError("FileDescriptorSet has a record other than field 1 (field %d)" % num)
        kept = [raw for n, _, _, raw in records(payload) if n != SOURCE_CODE_INFO]
        files.append(b"".join(kept))
    return files


def file_name(fdp_bytes):
    m = descriptor_pb2.FileDescriptorProto()
    m.ParseFromString(fdp_bytes)
    return m.name


def signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def show(field, wt, payload):
    """A record's value, readable: by its field's type when known, else by wire type."""
    if field is None:
        if wt == 0:
            v = read_varint(payload, 0)[0]
            return "varint %d%s" % (v, " (%d as int64)" % signed(v, 64) if v >> 63 else "")
        if wt == 1:
            return "fixed64 0x%016x" % struct.unpack("<Q", payload)[0]
        if wt == 5:
            return "fixed32 0x%08x" % struct.unpack("<I", payload)[0]
        return "bytes %r" % bytes(payload)
    t = field.type
    try:
        if t == FD.TYPE_STRING:
            return repr(bytes(payload).decode("utf-8"))
        if t == FD.TYPE_BYTES:
            return repr(bytes(payload))
        if t in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
            m = descriptor_pb2_class(field.message_type)()
            m.ParseFromString(bytes(payload))
            return "{ " + text_format.MessageToString(m, as_one_line=True,
                                                       print_unknown_fields=True) + " }"
        if wt == 0:
            v = read_varint(payload, 0)[0]
            if t == FD.TYPE_ENUM:
                ev = field.enum_type.values_by_number.get(signed(v, 32))
                return ev.name if ev else "%d (not a value of %s)" % (signed(v, 32),
                                                                       field.enum_type.name)
            if t == FD.TYPE_BOOL:
                return "true" if v else "false"
            if t in (FD.TYPE_INT32, FD.TYPE_INT64):
                return str(signed(v, 64))
            if t in (FD.TYPE_SINT32, FD.TYPE_SINT64):
                return str((v >> 1) ^ -(v & 1))
            return str(v)
        if t == FD.TYPE_DOUBLE and wt == 1:
            return repr(struct.unpack("<d", payload)[0])
        if t == FD.TYPE_FLOAT and wt == 5:
            return repr(struct.unpack("<f", payload)[0])
    except Exception as e:  # a value that does not decode as its type is itself the difference
        return "undecodable %s (%s): %r" % (field.name, e, bytes(payload))
    return "wire type %d: %r" % (wt, bytes(payload))


def descriptor_pb2_class(msg_desc):
    """The descriptor_pb2 class of a descriptor.proto message (nested ones included)."""
    cls = descriptor_pb2
    for part in msg_desc.full_name[len("google.protobuf."):].split("."):
        cls = getattr(cls, part)
    return cls


def record_label(msg_desc, num):
    if msg_desc is None:  # inside an unknown (custom option) message: numbers only
        return "[%d]" % num, None
    f = msg_desc.fields_by_number.get(num)
    return (f.name if f else "[unknown field %d]" % num), f


def as_records(payload):
    """The records of a length-delimited payload, or None when it is not a message."""
    try:
        recs = records(payload)
    except (WireError, IndexError):
        return None
    return recs if recs and all(r[0] > 0 for r in recs) else None


def text_of(msg_desc, data):
    m = descriptor_pb2_class(msg_desc)()
    try:
        m.ParseFromString(bytes(data))
    except Exception as e:
        return ["(does not parse as %s: %s)" % (msg_desc.full_name, e)]
    return text_format.MessageToString(m, print_unknown_fields=True).splitlines()


def text_diff(msg_desc, a, b, label):
    lines = list(difflib.unified_diff(text_of(msg_desc, a), text_of(msg_desc, b),
                                      "protoc " + label, "lgrpc " + label, lineterm="", n=2))
    if len(lines) > MAX_TEXT_DIFF_LINES:
        lines = lines[:MAX_TEXT_DIFF_LINES] + ["... (%d more lines)" % (len(lines) -
                                                                        MAX_TEXT_DIFF_LINES)]
    return lines


def first_difference(msg_desc, a, b, path, context=None):
    """Report lines for the first record where the encodings a and b differ (None if equal).
    msg_desc is None inside a custom option's value, whose type descriptor.proto does not know;
    context is then the innermost known message, for the text-format diff."""
    if a == b:
        return None
    if msg_desc is not None:
        context = (msg_desc, a, b, path or "(file)")
    ra, rb = records(a), records(b)
    counts = {}
    for i in range(max(len(ra), len(rb))):
        x = ra[i] if i < len(ra) else None
        y = rb[i] if i < len(rb) else None
        ref = x or y
        name, field = record_label(msg_desc, ref[0])
        index = counts.get(ref[0], 0)
        counts[ref[0]] = index + 1
        repeated = field is not None and field.label == FD.LABEL_REPEATED
        here = (path + "." if path else "") + name + ("[%d]" % index if repeated else "")
        if x is not None and y is not None and x[3] == y[3]:
            continue
        if x is not None and y is not None and x[0] == y[0] and x[1] == y[1] == 2:
            sub = None
            if field is not None and field.type == FD.TYPE_MESSAGE:
                sub = first_difference(field.message_type, x[2], y[2], here, context)
            elif field is None and as_records(x[2]) and as_records(y[2]):
                sub = first_difference(None, x[2], y[2], here + "#%d" % index, context)
            if sub:
                return sub
        out = ["first difference at %s" % here]
        if x is None:
            yn, yf = record_label(msg_desc, y[0])
            out.append("  protoc: (nothing: lgrpc has an extra record)")
            out.append("  lgrpc:  %s = %s" % (yn, show(yf, y[1], y[2])))
        elif y is None:
            out.append("  protoc: %s = %s" % (name, show(field, x[1], x[2])))
            out.append("  lgrpc:  (missing)")
        else:
            yn, yf = record_label(msg_desc, y[0])
            out.append("  protoc: %s = %s" % (name, show(field, x[1], x[2])))
            out.append("  lgrpc:  %s = %s" % (yn, show(yf, y[1], y[2])))
        cdesc, ca, cb, clabel = context
        out.append("text-format diff of %s (%s):" % (clabel, cdesc.name))
        out.extend("  " + l for l in text_diff(cdesc, ca, cb, clabel))
        return out
    return None


def semantic_note(a, b):
    ma, mb = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
    try:
        ma.ParseFromString(a)
        mb.ParseFromString(b)
    except Exception as e:
        return "lgrpc's FileDescriptorProto does not parse: %s" % e
    ta = text_format.MessageToString(ma, print_unknown_fields=True)
    tb = text_format.MessageToString(mb, print_unknown_fields=True)
    if ta == tb:
        return "(same fields and values: only the encoding differs, e.g. record order)"
    return None


def compare(expected, actual):
    """Report lines; empty when the two sets are identical."""
    try:
        exp = set_files(expected)
    except WireError as e:
        return ["protoc's set does not parse: %s" % e]
    try:
        act = set_files(actual)
    except WireError as e:
        return ["lgrpc's set is not a well-formed FileDescriptorSet: %s" % e]
    names_e = [file_name(f) for f in exp]
    try:
        names_a = [file_name(f) for f in act]
    except Exception as e:
        return ["lgrpc's set has a FileDescriptorProto that does not parse: %s" % e]
    out = []
    if names_e != names_a:
        out.append("files differ:")
        out.append("  protoc: %s" % ", ".join(names_e))
        out.append("  lgrpc:  %s" % ", ".join(names_a))
    by_name = dict(zip(names_a, act))
    fdp_desc = descriptor_pb2.FileDescriptorProto.DESCRIPTOR
    for name, data in zip(names_e, exp):
        other = by_name.get(name)
        if other is None or other == data:
            continue
        out.append("in %s:" % name)
        try:
            diff = first_difference(fdp_desc, data, other, "")
        except WireError as e:
            diff = ["lgrpc's encoding is malformed: %s" % e]
        out.extend(diff or ["(bytes differ)"])
        note = semantic_note(data, other)
        if note:
            out.append(note)
        break  # the first differing file is the one to fix first
    return out


def main(argv):
    if len(argv) == 3 and argv[1] == "--manifest":
        with open(argv[2]) as f:
            pairs = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    elif len(argv) == 3:
        pairs = [["set", argv[1], argv[2]]]
    else:
        sys.stderr.write("usage: fds_compare.py EXPECTED.pb ACTUAL.pb | --manifest FILE\n")
        return 2
    status = 0
    for fields in pairs:
        if len(fields) != 3:
            sys.stderr.write("fds_compare.py: bad manifest line: %r\n" % "\t".join(fields))
            return 2
        name, e, a = fields
        try:
            with open(e, "rb") as f:
                expected = f.read()
        except OSError as err:
            sys.stderr.write("fds_compare.py: %s\n" % err)
            return 2
        try:
            with open(a, "rb") as f:
                actual = f.read()
        except OSError as err:
            print("== %s: DIFF" % name)
            print("  no output from lgrpc: %s" % err)
            status = 1
            continue
        report = compare(expected, actual)
        print("== %s: %s" % (name, "DIFF" if report else "OK"))
        for line in report:
            print("  " + line)
        if report:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))

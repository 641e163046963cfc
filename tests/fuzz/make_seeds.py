#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/ (run once by a person; the
seeds are committed, so CI does not run this).

    tests/fuzz/make_seeds.py BUILD/api.pb

Requests are encoded by hand from the descriptor set (python3-protobuf's
descriptor_pb2 reads it): for each herald.v1 method an empty request, one
with every field set to a plausible value, and hostile variants (invalid
UTF-8, an embedded NUL, an unknown enum number, many repeated items). The
other corpora are small hand-written inputs of each format.
"""
import os
import sys

from google.protobuf import descriptor_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

F = descriptor_pb2.FieldDescriptorProto


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wt):
    return varint(num << 3 | wt)


def ld(num, payload):
    return key(num, 2) + varint(len(payload)) + payload


class Index:
    def __init__(self, fds):
        self.msgs = {}
        self.enums = {}
        self.files = fds
        for f in fds.file:
            pkg = "." + f.package if f.package else ""
            for m in f.message_type:
                self._add_msg(pkg, m)
            for e in f.enum_type:
                self.enums[pkg + "." + e.name] = e

    def _add_msg(self, prefix, m):
        name = prefix + "." + m.name
        self.msgs[name] = m
        for n in m.nested_type:
            self._add_msg(name, n)
        for e in m.enum_type:
            self.enums[name + "." + e.name] = e


def encode(idx, type_name, mode, depth=0):
    """A message of type_name with every field set; mode picks the string."""
    m = idx.msgs[type_name]
    out = bytearray()
    if depth > 3:
        return bytes(out)
    for f in m.field:
        rep = 2 if f.label == F.LABEL_REPEATED else 1
        for _ in range(rep):
            out += field_value(idx, f, mode, depth)
    return bytes(out)


def field_value(idx, f, mode, depth):
    t = f.type
    if t == F.TYPE_STRING:
        s = {"plain": b"abc-123_x", "utf8": b"\xff\xfeA", "nul": b"ab\x00cd",
             "sql": b"'; DROP TABLE profiles; --", "long": b"x" * 300}[mode]
        if f.name == "profile_id" and mode == "plain":
            s = b"fuzz-profile"
        if f.name == "request_id" and mode == "plain":
            s = b"6f1c2a9e-8d7b-4c3a-9e2f-1a2b3c4d5e6f"
        return ld(f.number, s)
    if t == F.TYPE_BYTES:
        return ld(f.number, b"\x00\x01\x02")
    if t == F.TYPE_MESSAGE:
        if f.type_name in (".google.protobuf.Timestamp",):
            return ld(f.number, key(1, 0) + varint(1767225600) + key(2, 0) + varint(5))
        if f.type_name == ".google.protobuf.FieldMask":
            return ld(f.number, ld(1, b"display_name"))
        if f.type_name not in idx.msgs:
            return b""
        return ld(f.number, encode(idx, f.type_name, mode, depth + 1))
    if t == F.TYPE_ENUM:
        e = idx.enums.get(f.type_name)
        v = e.value[-1].number if e and e.value else 1
        if mode == "utf8":
            v = 999  # unknown enum number
        return key(f.number, 0) + varint(v)
    if t == F.TYPE_BOOL:
        return key(f.number, 0) + varint(1)
    if t in (F.TYPE_DOUBLE, F.TYPE_FIXED64, F.TYPE_SFIXED64):
        return key(f.number, 1) + b"\x00\x00\x00\x00\x00\x00\xf0\x3f"
    if t in (F.TYPE_FLOAT, F.TYPE_FIXED32, F.TYPE_SFIXED32):
        return key(f.number, 5) + b"\x00\x00\x80\x3f"
    # the varint integers
    v = -1 if mode == "utf8" else 7
    return key(f.number, 0) + varint(v)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def request_seeds(idx):
    methods = []
    order = ["ContentService", "SchedulingService", "LearningService", "OpsService"]
    svcs = {}
    for f in idx.files.file:
        if f.package == "herald.v1":
            for s in f.service:
                svcs[s.name] = s
    for sname in order:
        for m in svcs[sname].method:
            methods.append((sname, m))
    for i, (sname, m) in enumerate(methods):
        tag = bytes([i])
        base = "%02d_%s" % (i, m.name)
        write("fuzz_request", base + "_empty", tag)
        for mode in ("plain", "utf8", "nul", "sql", "long"):
            write("fuzz_request", base + "_" + mode, tag + encode(idx, m.input_type, mode))
    # amplification: many empty repeated strings in CreateProfile.profile.topics
    for i, (sname, m) in enumerate(methods):
        if m.name == "CreateProfile":
            prof = ld(1, b"amp") + ld(12, b"") * 4000
            write("fuzz_request", "%02d_CreateProfile_amplify" % i, bytes([i]) + ld(2, prof))


def reflection_seeds():
    reqs = {
        "list": ld(7, b"*"),
        "file": ld(3, b"herald/v1/ops.proto"),
        "symbol": ld(4, b"herald.v1.OpsService"),
        "method": ld(4, b"herald.v1.OpsService.GetProfile"),
        "enum_value": ld(4, b"herald.v1.PLATFORM_X"),
        "unknown": ld(4, b"no.such.Symbol"),
        "extension": ld(5, ld(1, b"herald.v1.Profile") + key(2, 0) + varint(100)),
        "ext_numbers": ld(6, b"herald.v1.Profile"),
        "host": ld(1, b"localhost") + ld(7, b""),
    }
    for n, r in reqs.items():
        write("fuzz_reflection", n, len(r).to_bytes(2, "big") + r)
    stream = b"".join(len(r).to_bytes(2, "big") + r for r in reqs.values())
    write("fuzz_reflection", "stream_all", stream)


def pbjson_seeds(idx):
    # byte 0 picks the message among the registry's (sorted by full name);
    # any index works as a seed, the fuzzer explores the rest.
    samples = [
        b'{"profile":{"profileId":"p1","displayName":"Ana","platform":"PLATFORM_X",'
        b'"topics":["sleep","hydration"],"topicCooldownHours":24}}',
        b'{"requestId":"6f1c2a9e-8d7b-4c3a-9e2f-1a2b3c4d5e6f","profileId":"p1"}',
        b'{"time":"2026-11-28T17:21:38.412Z","duration":"1.5s","mask":"a,b.c"}',
        b'{"value":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"3s"}}',
        b'{"pageSize":500,"pageToken":"","state":"PROFILE_STATE_PAUSED"}',
        b'{"a":null,"b":[1,2,3],"c":{"d":"\\u00e9\\ud83d\\ude00"},"e":1e308,"f":"-0"}',
        b'{"count":"9223372036854775807","ratio":"NaN","flag":true}',
        b"[]",
        b"null",
        b'"\\u0000"',
    ]
    for i, s in enumerate(samples):
        for sel in (0, 17, 40, 77, 120):
            write("fuzz_pbjson", "json_%02d_%03d" % (i, sel), bytes([sel, 0]) + s)
    # wire -> JSON
    write("fuzz_pbjson", "wire_profile", bytes([0, 0x80]) + ld(1, b"p1") + ld(2, b"\xff"))
    write("fuzz_pbjson", "wire_ts", bytes([5, 0x81]) + key(1, 0) + varint(-62135596801))


def llm_seeds():
    samples = {
        "ok": b'{"id":"x","model":"m1","choices":[{"index":0,"message":{"role":"assistant",'
              b'"content":"Post: \\"Drink water.\\""},"finish_reason":"stop"}]}',
        "parts": b'{"choices":[{"message":{"content":[{"type":"text","text":"a"},'
                 b'{"type":"text","text":"b"}]}}]}',
        "empty": b'{"choices":[{"message":{"content":""}}]}',
        "error_obj": b'{"error":{"message":"bad key sk-fuzz-SECRET-9f8e7d\\u0001","type":"x"}}',
        "error_str": b'{"error":"rate limited"}',
        "message": b'{"message":"\\ud800 broken surrogate"}',
        "deep": b"[" * 40 + b"]" * 40,
        "truncated": b'{"choices":[{"message":{"content":"abc',
        "nul": b'{"choices":[{"message":{"content":"a\\u0000b"}}]}',
        "curly": "{\"choices\":[{\"message\":{\"content\":\"\u201cquoted\u201d\"}}]}".encode(),
    }
    for n, s in samples.items():
        write("fuzz_llm_parse", n, s)


def config_seeds():
    samples = {
        "basic": b"workers = 4\nlog.level = debug\nlisten = \"127.0.0.1:0\"\n",
        "sizes": b"max_recv_bytes = 4MiB\ncall_arena_bytes=512KiB\ndefault_deadline_ms = 20s\n",
        "secret": b"llm.api_key = sk-live-abcdefghijklmnop\ndatabase_url = "
                  b"postgresql://u:hunter2secret@db/herald\n",
        "bad": b"workers = -1\n",
        "unknown": b"no.such.key = 1\n",
        "comments": b"# comment\n\n   \n# workers = 2\nreflection = off\n",
        "tls": b"tls.cert = /nonexistent/cert.pem\ntls.key = /nonexistent/key.pem\n",
        "auth": b"auth.tokens = \"ci:read:abcdefghijklmnopqrstuvwxyz\"\nauth.reflection = token\n",
        "crlf": b"workers = 2\r\nlog.format = text\r\n",
        "quotes": b'health_listen = "\nadmin_listen = ""\n',
    }
    for n, s in samples.items():
        write("fuzz_config", n, s)


def auth_seeds():
    lst = (b"# tokens\nreader:read:read-token-AAAAAAAAAAAAAAAAAAAA\n"
           b"writer:write+executor:write-token-BBBBBBBBBBBBBBBB\n"
           b"ops:admin:admin-token-DDDDDDDDDDDDDDDDDDD==\n")
    write("fuzz_auth", "ok_read", b"\x00" + lst[1:] + b"\x00Bearer read-token-AAAAAAAAAAAAAAAAAAAA")
    write("fuzz_auth", "denied", b"\x01" + lst[1:] + b"\x00bearer  read-token-AAAAAAAAAAAAAAAAAAAA ")
    write("fuzz_auth", "missing", b"\x02" + lst[1:])
    write("fuzz_auth", "basic", b"\x03" + lst[1:] + b"\x00Basic dXNlcjpwYXNz")
    write("fuzz_auth", "path", b"\x04" + lst[1:] + b"\x00Bearer admin-token-DDDDDDDDDDDDDDDDDDD=="
          b"\x00/herald.v1.OpsService/CreateProfile")
    write("fuzz_auth", "bad_list", b"\x05x:reed:short,y::\x00Bearer x")
    write("fuzz_auth", "off", b"\x80\x00Bearer anything")


def descset_seeds(api_pb):
    with open(api_pb, "rb") as f:
        data = f.read()
    write("fuzz_descset", "api", data)
    fds = descriptor_pb2.FileDescriptorSet()
    f = fds.file.add()
    f.name = "herald/v1/tiny.proto"
    f.package = "herald.v1"
    m = f.message_type.add()
    m.name = "Empty"
    s = f.service.add()
    s.name = "TinyService"
    meth = s.method.add()
    meth.name = "Ping"
    meth.input_type = ".herald.v1.Empty"
    meth.output_type = ".herald.v1.Empty"
    meth.server_streaming = True
    loc = f.source_code_info.location.add()
    loc.path.extend([6, 0, 2, 0])
    loc.leading_comments = " Pings.\n Scope: read\n"
    write("fuzz_descset", "tiny", fds.SerializeToString())
    g = fds.file.add()
    g.name = "b.proto"
    g.dependency.append("herald/v1/tiny.proto")
    f.dependency.append("b.proto")  # an import cycle
    write("fuzz_descset", "cycle", fds.SerializeToString())


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py BUILD/api.pb")
    fds = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as f:
        fds.ParseFromString(f.read())
    idx = Index(fds)
    request_seeds(idx)
    reflection_seeds()
    pbjson_seeds(idx)
    llm_seeds()
    config_seeds()
    auth_seeds()
    descset_seeds(sys.argv[1])


if __name__ == "__main__":
    main()

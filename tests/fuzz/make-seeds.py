#!/usr/bin/env python3
"""make-seeds.py: write the dispatch and data seed corpora (corpus/dispatch,
corpus/data). Requests are protobuf encoded by hand (proto/memtrain.proto's
field numbers) so no protobuf module is needed. Rerun after a proto change:
    python3 tests/fuzz/make-seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def request(rid, verb, body=b"", version=1):
    return field(1, version) + field(2, rid) + field(verb, body)


def frame(msg):
    return struct.pack(">I", len(msg)) + msg


SPEC = ("dataset: {name: synthetic, synthetic_train: 32}\nmodel: {input: 16, hidden: [8], classes: 3, activation: relu}\n"
        "rule: dfa\nbatch: 4\nepochs: 1\nseed: 1\nmemory_limit: 64MiB\n")
SUBMIT, LIST, SHOW, CANCEL, WATCH, METRICS, CKPTS, PLAN, PING, LOGS = range(10, 20)


def session(*reqs):
    return b"".join(frame(r) for r in reqs)


def write(dirname, name, data):
    d = os.path.join(HERE, "corpus", dirname)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def dispatch_seeds():
    submit = field(2, SPEC) + field(3, "s.yaml") + field(5, "fuzz")
    seeds = {
        "ping": session(request(1, PING)),
        "bad-version": session(request(1, PING, version=9)),
        "plan": session(request(1, PLAN, field(2, SPEC))),
        "plan-bad-yaml": session(request(1, PLAN, field(2, "model: [") + field(3, "x.yaml"))),
        "submit-list-show-cancel": session(
            request(1, SUBMIT, submit), request(2, LIST, field(1, 1)),
            request(3, SHOW, field(1, 1)), request(4, METRICS, field(1, 1) + field(2, 1)),
            request(5, CKPTS, field(1, 1)), request(6, CKPTS, field(1, 1) + field(2, 1)),
            request(7, CANCEL, field(1, 1)), request(8, SHOW, field(1, 1))),
        "watch-logs": session(
            request(1, SUBMIT, submit), request(2, WATCH, field(1, 0) + field(2, 1)),
            request(3, WATCH, field(1, 1)), request(4, LOGS, field(1, 1) + field(2, 1)),
            request(5, LOGS, field(1, 1)), request(6, CANCEL, field(1, 1))),
        "list-states": session(request(1, LIST, field(2, 1) + field(2, 3) + field(3, 5))),
        "unknown-verb": session(field(1, 1) + field(2, 1) + field(25, b"")),
        "not-a-request": session(b"\xff\xff\xff"),
    }
    for name, data in seeds.items():
        write("dispatch", name, b"\x00" + data)       # uid 1000
    write("dispatch", "root-submit-cancel", b"\x01" + seeds["submit-list-show-cancel"])


def piece(data):
    return struct.pack("<I", len(data)) + data


def idx(magic_type, dims, body):
    return struct.pack(">BBBB", 0, 0, magic_type, len(dims)) + \
        b"".join(struct.pack(">I", d) for d in dims) + body


def data_seeds():
    # IDX: 3 training and 2 test images of 2x2 pixels, labels 0..2
    tri = idx(8, [3, 2, 2], bytes(range(12)))
    trl = idx(8, [3], bytes([0, 1, 2]))
    tei = idx(8, [2, 2, 2], bytes(range(8)))
    tel = idx(8, [2], bytes([1, 0]))
    write("data", "idx", b"\x00\x00" + piece(tri) + piece(trl) + piece(tei) + piece(tel))
    write("data", "idx-limits", b"\x00\x12" + piece(tri) + piece(trl) + piece(tei) + piece(tel))
    write("data", "idx-mismatch", b"\x00\x00" + piece(tri) + piece(tel) + piece(tei) + piece(trl))
    # CIFAR-10: one record (label + 3072 pixels) per training batch, two test
    rec = lambda label: bytes([label]) + bytes(i % 256 for i in range(3072))
    cifar = b"\x01\x00" + b"".join(piece(rec(i)) for i in range(5)) + piece(rec(1) + rec(9))
    write("data", "cifar", cifar)
    write("data", "cifar-truncated", b"\x01\x00" + piece(rec(3)[:100]))


dispatch_seeds()
data_seeds()

#!/usr/bin/env python3
"""Write the seed corpus of the fuzz harnesses (tests/fuzz/corpus/NAME).

The seeds are small valid (and a few deliberately broken) inputs in each
harness's input format, so that fuzzing starts from every operation,
ABI and key instead of having to discover the formats.  Run from
anywhere; it rewrites the generated seeds and leaves other files alone.
Usage: make-seeds.py [TOP_SRCDIR]
"""
import os
import struct
import sys

TOP = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
CORPUS = os.path.join(TOP, "tests", "fuzz", "corpus")

OP_READ, OP_WRITE, OP_BARRIER, OP_FLUSH, OP_DISCARD, OP_INDIRECT = 0, 1, 2, 3, 5, 6
# ABI: (code in the header, entry size, id, sector, seg/nr_sectors, indirect grefs)
ABIS = {
    "native": (0, 112, 8, 16, 24, 28),
    "x86_32": (1, 108, 4, 12, 20, 24),
    "x86_64": (2, 112, 8, 16, 24, 28),
}


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def rw(abi, op, rid, sector, segs):
    _, size, o_id, o_sec, o_seg, _ = ABIS[abi]
    e = bytearray(size)
    e[0], e[1] = op, len(segs)
    struct.pack_into("<H", e, 2, 0x33)
    struct.pack_into("<Q", e, o_id, rid)
    struct.pack_into("<Q", e, o_sec, sector)
    for i, (g, first, last) in enumerate(segs[:11]):
        struct.pack_into("<IBB", e, o_seg + 8 * i, g, first, last)
    return bytes(e)


def discard(abi, rid, sector, nr, flag=0):
    _, size, o_id, o_sec, o_nr, _ = ABIS[abi]
    e = bytearray(size)
    e[0], e[1] = OP_DISCARD, flag
    struct.pack_into("<Q", e, o_id, rid)
    struct.pack_into("<Q", e, o_sec, sector)
    struct.pack_into("<Q", e, o_nr, nr)
    return bytes(e)


def indirect(abi, op, rid, sector, nseg, grefs):
    _, size, o_id, o_sec, _, o_gr = ABIS[abi]
    e = bytearray(size)
    e[0], e[1] = OP_INDIRECT, op
    struct.pack_into("<H", e, 2, nseg)
    struct.pack_into("<Q", e, o_id, rid)
    struct.pack_into("<Q", e, o_sec, sector)
    struct.pack_into("<H", e, o_gr - 4, 0x33)
    for i, g in enumerate(grefs):
        struct.pack_into("<I", e, o_gr + 4 * i, g)
    return bytes(e)


def segpage(n, first=0, last=7):
    return b"".join(struct.pack("<IBBH", 1000 + i, first, last, 0) for i in range(n))


def ring(abi, order, flags, max_ind, sectors, entries, rsp=0, req=None, pages=b""):
    code = ABIS[abi][0]
    req = rsp + len(entries) if req is None else req
    nents = 32 << order  # a page holds 32 entries in every ABI
    img = bytearray(64 + ABIS[abi][1] * nents)
    struct.pack_into("<IIII", img, 0, req & 0xffffffff, 1, rsp & 0xffffffff, 1)
    for k, e in enumerate(entries):
        i = (rsp + k) % nents
        img[64 + ABIS[abi][1] * i: 64 + ABIS[abi][1] * (i + 1)] = e
    img = bytes(img).rstrip(b"\0")
    hdr = struct.pack("<BBBHQH", code, order, flags, max_ind, sectors, len(img))
    return hdr + img + pages


def request_seeds():
    for abi in ABIS:
        mixed = [
            rw(abi, OP_READ, 1, 0, [(10, 0, 7), (11, 0, 3)]),
            rw(abi, OP_WRITE, 2, 8, [(12, 0, 7)]),
            rw(abi, OP_FLUSH, 3, 0, []),
            rw(abi, OP_BARRIER, 4, 16, [(13, 0, 7)]),
            discard(abi, 5, 64, 128),
            indirect(abi, OP_WRITE, 6, 128, 20, [0]),
            indirect(abi, OP_READ, 7, 256, 256, [1]),
            indirect(abi, OP_READ, 11, 0, 300, [1]),
            rw(abi, 99, 8, 0, []),
            rw(abi, OP_READ, 9, 0, [(14, 5, 2)]),
            rw(abi, OP_READ, 10, 4095, [(15, 0, 7)]),
        ]
        pages = segpage(20) + bytes(4096 - 160) + segpage(256)
        write("request", f"{abi}-mixed", ring(abi, 0, 2 | 4, 256, 4096, mixed, pages=pages))
        write("request", f"{abi}-wrap", ring(abi, 0, 0, 11, 1 << 20,
              [rw(abi, OP_READ, 20 + i, 8 * i, [(i, 0, 7)]) for i in range(4)], rsp=0xfffffffe))
        write("request", f"{abi}-overflow", ring(abi, 0, 0, 0, 100, [rw(abi, OP_READ, 1, 0, [(1, 0, 7)])],
              req=1000))
        write("request", f"{abi}-4k-ro", ring(abi, 2, 1 | 2 | 8 | 16, 64, 1 << 16,
              [rw(abi, OP_WRITE, 1, 8, [(1, 0, 7)]), rw(abi, OP_READ, 2, 8, [(1, 0, 7), (2, 0, 7)]),
               discard(abi, 3, 8, 8, 1), indirect(abi, OP_READ, 4, 0, 64, [0]),
               rw(abi, OP_READ, 5, 4, [(1, 4, 7)])], pages=segpage(64)))


def xenstore_seeds():
    def fe(limits, kv):
        return bytes(limits) + "\n".join(f"{k}={v}" for k, v in kv).encode() + b"\n"
    write("xenstore", "single-page", fe([4, 3, 1], [
        ("protocol", "x86_64-abi"), ("ring-ref", "8"), ("event-channel", "5"),
        ("feature-persistent", "1")]))
    write("xenstore", "order2", fe([4, 3, 1], [
        ("protocol", "x86_32-abi"), ("ring-page-order", "2"), ("ring-ref0", "8"),
        ("ring-ref1", "9"), ("ring-ref2", "10"), ("ring-ref3", "11"), ("event-channel", "5")]))
    write("xenstore", "multi-queue", fe([4, 3, 0], [
        ("protocol", "native"), ("multi-queue-num-queues", "2"), ("ring-page-order", "1"),
        ("queue-0/ring-ref0", "8"), ("queue-0/ring-ref1", "9"), ("queue-0/event-channel", "5"),
        ("queue-1/ring-ref0", "10"), ("queue-1/ring-ref1", "11"), ("queue-1/event-channel", "6")]))
    write("xenstore", "order0-plain-ref", fe([0, 0, 1], [
        ("ring-page-order", "0"), ("ring-ref", "4294967295"), ("event-channel", "1")]))
    write("xenstore", "bad-values", fe([2, 7, 1], [
        ("protocol", "x86_64-abi"), ("feature-persistent", "2"), ("multi-queue-num-queues", "65"),
        ("ring-page-order", "01"), ("ring-ref", "-1"), ("event-channel", "0"),
        ("state", "4"), ("junk", "\x1b[31m\x7f")]))
    write("xenstore", "bad-protocol", fe([4, 3, 1], [("protocol", "x86_128-abi\ttab")]))


CONF = """# a full configuration
[daemon]
kinds = vbd3, qdisk
domid = auto
state-directory = /run/xenblkd

[log]
level = debug
target = stderr

[control]
socket = /run/xenblkd/control.sock
group = 0

[disks]
direct-io = no
discard = yes
max-queues = auto
max-ring-page-order = 4
max-indirect-segments = 256
persistent-grants = 1056
persistent-grant-idle = 60
"""


def config_seeds():
    write("config", "full", CONF)
    with open(os.path.join(TOP, "conf", "xenblkd.conf"), "rb") as f:
        write("config", "installed", f.read())
    write("config", "empty", "")
    write("config", "crlf", "; comment\r\n[disks]\r\nmax-queues = 4\r\n")
    write("config", "errors", "[daemon]\nkinds = vbd3,vbd3,x\n[nope]\nkey\n")
    write("config", "outside", "max-queues = 2\n")
    write("config", "duplicate", "[log]\nlevel = info\nlevel = warn\n")
    write("config", "nul", b"[log]\nlevel = in\0fo\n")


def control_seeds():
    lines = [
        '{"version":1,"command":"ping"}',
        '{"version":1,"command":"version"}',
        '{"version":1,"command":"list"}',
        '{"version":1,"command":"stats","domid":3,"devid":51712}',
        '{"version":1,"command":"stats"}',
        '{"version":1,"command":"reload"}',
        '{"version":1,"command":"shutdown","close":true}',
        # While stopping: the other kind is refused (stopping), the same ok.
        '{"version":1,"command":"shutdown"}',
        '{"version":1,"command":"shutdown","close":true}',
    ]
    write("control", "all-commands", b"\x00" + "\n".join(lines).encode() + b"\n")
    write("control", "crlf-noeol", b"\x05" + b'{"version":1,"command":"ping"}\r\n{"version":1,"command":"list"}')
    write("control", "errors", b"\x01" + "\n".join([
        "not json", "[]", '{"command":"ping"}', '{"version":2,"command":"ping"}',
        '{"version":1,"command":"nope"}', '{"version":1,"command":"ping","x":1}',
        '{"version":1,"command":"stats","domid":-5}', '{"version":"1","command":"ping"}',
        '{"version":1,"command":"shutdown","close":"yes"}', '{"version":1,"command":"st\\u00e9"}',
        "\xff\xfe", "",
    ]).encode("utf-8", "surrogateescape") + b"\n")
    write("control", "budget", b"\x10" + ('{"version":1,"command":"ping"}\n' * 20).encode())
    # (A line over 65536 bytes, too_long, is left to tests/daemon: seeds
    # stay small, and libFuzzer's input size follows the largest seed.)


def gcache_seeds():
    # fuzz-gcache.c: [max - 1, headroom, reserve limit (0xff: none)], then
    # steps.  A request in slot s: [8*s, flags, n-1, ref index per
    # segment, (ref index of the indirect page if flags & 1)]; the same
    # op byte again releases it.  Ref indexes name fuzz-gcache.c's
    # palette: 0..2 writable refs 0..2, 3 read-only ref 3, 5 never
    # granted, 12..15 the largest refs.
    def req(slot, idx, flags=0, ind=None):
        return bytes([8 * slot, flags, (len(idx) - 1) % 256] + idx +
                     ([ind] if ind is not None else []))
    write("gcache", "basic",
          bytes([15, 2, 0xff]) + req(0, [0, 1, 0, 2], 1, 1) + b"\x00" +
          req(0, [0, 1, 0, 2]) + req(1, [3, 4, 6]) + b"\x04\x64\x00\x08\x06\x00\x05\x05\x00")
    # Room for 3 of 8 new refs, named in descending order: the 3 lowest
    # are mapped, the others copied.
    write("gcache", "room-short-unsorted",
          bytes([3, 1, 0xff]) + req(0, [15, 14, 12, 0, 1, 2, 4, 9]) + b"\x00" +
          req(1, [9, 15, 0]) + b"\x08")
    # 256 segments (every palette ref), a failed map call, the reserve.
    write("gcache", "large-reserve-fault",
          bytes([63, 4, 10]) + req(0, [i % 16 for i in range(256)], 2) +
          b"\x07\x01" + req(1, [0, 1, 2, 4]) + b"\x00\x08\x07\x02\x28" +
          req(2, [(7 * i) % 16 for i in range(256)], 2) + b"\x10")
    # A never-granted ref fails the new pages' call; the cached one stays.
    write("gcache", "bad-ref-batch",
          bytes([15, 0, 0xff]) + req(0, [0]) + b"\x00" + req(0, [0, 5, 1, 0]) +
          b"\x04\x10\x00\x04\x10")
    # Purges through the unmap worker (headroom byte | 8): pending pages
    # keep their room until completed (7, 4), in any order with requests.
    write("gcache", "worker-pending",
          bytes([5, 8 | 1, 8]) + req(0, [0, 1, 2, 4]) + b"\x00\x06\x00" +
          req(0, [6, 7, 9, 12]) + b"\x07\x04" + req(1, [6, 7, 9, 12, 14]) +
          b"\x00\x08\x04\x01\x07\x04\x07\x04" + req(2, [0, 1]))
    # A read-only indirect page named as data in the same request.
    write("gcache", "indirect-ro-as-data",
          bytes([15, 1, 0xff]) + req(0, [3, 3, 0], 1, 3) + req(1, [8, 3], 1, 8) +
          b"\x00\x08\x06\x00")


def nbd_seeds():
    # fuzz-nbd.c: [chunk, bits (1 read-only, 2 trim, 4 4096-byte sectors,
    # 8 gated, 0x10 hang up, 0x20 cut off), export sectors - 1, ungate or
    # cut off after N chunks], then
    # the client's bytes: flags, options, requests (big-endian).
    IHAVEOPT, REQ = 0x49484156454f5054, 0x25609513
    OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
    READ, WRITE, DISC, FLUSH, TRIM = 0, 1, 2, 3, 4

    def hdr(chunk=0, bits=0, sectors=63, ungate=0):
        return bytes([chunk, bits, sectors, ungate])

    def opt(t, data=b""):
        return struct.pack(">QII", IHAVEOPT, t, len(data)) + data

    def go(t=OPT_GO, name=b"", infos=(3,)):
        return opt(t, struct.pack(">I", len(name)) + name +
                   struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos))

    def req(t, cookie, off=0, length=0, flags=0, payload=b""):
        return struct.pack(">IHHQQI", REQ, flags, t, cookie, off, length) + payload

    flags = struct.pack(">I", 3)         # fixed newstyle, no zeroes
    session = (req(READ, 1, 0, 4096) + req(WRITE, 2, 4096, 512, 0, bytes(range(256)) * 2) +
               req(FLUSH, 3) + req(READ, 4, 4096, 1024) + req(WRITE, 5, 8192, 512, 1, b"\xa5" * 512) +
               req(TRIM, 6, 16384, 4096) + req(DISC, 7))
    write("nbd", "go-rw-flush-disc", hdr(0, 2) + flags + opt(99, b"x") + go(OPT_INFO) + go() + session)
    write("nbd", "hang-up", hdr(0, 2 | 0x10) + flags + go() + session)
    write("nbd", "cut-off", hdr(9, 2 | 0x20, 127, 2) + flags + go() + session)
    write("nbd", "go-gated-chunks", hdr(5, 2 | 8, 127, 3) + flags + go(name=b"disk") + session)
    write("nbd", "go-readonly-4k", hdr(7, 1 | 2 | 4, 15) + flags + go(infos=(0, 3)) +
          req(READ, 1, 0, 4096) + req(WRITE, 2, 0, 4096, 0, b"\x11" * 4096) +
          req(TRIM, 3, 0, 4096) + req(READ, 4, 512, 512) + req(DISC, 5))
    write("nbd", "export-name-zeroes", hdr(3, 0, 15) + struct.pack(">I", 1) +
          opt(OPT_LIST) + opt(OPT_EXPORT_NAME, b"any") +
          req(READ, 9, 0, 512) + req(WRITE, 10, 512, 512, 0, b"\x22" * 512) + req(DISC, 11))
    write("nbd", "unknown-option-abort", hdr(1) + flags + opt(5, b"tls?") + opt(OPT_LIST, b"bad") +
          opt(OPT_GO, struct.pack(">I", 1) + b"n" + struct.pack(">HH", 2, 3)) + opt(OPT_ABORT))
    write("nbd", "bad-go-lengths", hdr() + flags + opt(OPT_GO, struct.pack(">I", 0xffffffff) + b"\0\0") +
          opt(OPT_GO, b"\0") + opt(OPT_INFO, struct.pack(">IH", 2, 0) + b"ab\0") + opt(OPT_ABORT))
    write("nbd", "truncated-header", hdr() + flags + go() + req(READ, 1, 0, 512)[:20])
    write("nbd", "huge-write", hdr() + flags + go() + req(WRITE, 1, 0, 0xffffffff) + b"\0" * 64)
    write("nbd", "refused-writes", hdr(2, 0, 7) + flags + go() +
          req(WRITE, 1, 4096 - 512, 1024, 0, b"\x33" * 1024) +          # past the end
          req(WRITE, 2, 1, 512, 0, b"\x44" * 512) +                     # unaligned
          req(WRITE, 3, 0, 512, 0x80, b"\x55" * 512) +                  # unknown flag
          req(WRITE, 4, 0, 0) + req(READ, 5, 0, 8 << 20) + req(9, 6, 0, 512) +
          req(TRIM, 7, 0, 512) + req(FLUSH, 8, 512, 0) + req(DISC, 9))
    write("nbd", "bad-magic", hdr() + flags + go() + req(READ, 1, 0, 512)[:4][::-1] + bytes(24))


request_seeds()
gcache_seeds()
xenstore_seeds()
config_seeds()
control_seeds()
nbd_seeds()

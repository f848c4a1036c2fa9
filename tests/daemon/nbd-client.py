#!/usr/bin/python3
"""nbd-client.py - a raw NBD client for the tests of xenblkd's local-attach
server, doing what libnbd will not: break the protocol on purpose, or
stall.

usage: nbd-client.py SOCKET MODE [ARG]
  garbage          send bytes that are no handshake; expect the server to
                   close the connection
  silent           read the greeting and say nothing; expect the server to
                   close the connection (handshake time limit)
  bad-request      handshake with GO, then a request with a bad magic;
                   expect the close
  stall FILE       handshake, then send 64 reads of 4 MiB and read no
                   reply until FILE exists; then read every reply and check
                   them (the server must have stopped reading, not failed)
  oversize         handshake, then a 64 MiB write header: expect the close
  ro-write         handshake, then a 4 KiB write at 0: print the error
                   number of the reply (EPERM = 1 on a read-only disk)
  cut-write OFF    handshake, then a 4 MiB write at byte OFF, then hang up
                   in the middle of a second write's payload (a client
                   that dies with a write in flight); exit 0
  hold-write OFF FILE  handshake, then a 4 MiB write at byte OFF and a
                   bad request; once that is refused (the write was taken
                   in before it), print "ready"; when FILE exists, hang
                   up in the middle of a request header; exit 0
  eof-write OFF FILE   as hold-write, but hang up cleanly between
                   requests (the write still unanswered)
  refused          expect the server to close the connection before its
                   greeting (no room for another client)
Exit status 0 when the server did what is expected, 1 otherwise.
"""
import os
import socket
import struct
import sys
import time

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454f5054
REPLY_MAGIC = 0x3e889045565a9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


def closed_by_server(s):
    """True once the server closed (EOF or reset), reading what it sends."""
    s.settimeout(30)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def handshake(s):
    magic, opt, flags = struct.unpack(">QQH", recv_exact(s, 18))
    assert magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting"
    s.sendall(struct.pack(">I", 3))             # fixed newstyle, no zeroes
    data = struct.pack(">I", 0) + struct.pack(">H", 0)   # name "", no info requests
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, len(data)) + data)
    size = tflags = None
    while True:
        magic, opt, rtype, length = struct.unpack(">QIII", recv_exact(s, 20))
        assert magic == REPLY_MAGIC, "bad option reply magic"
        payload = recv_exact(s, length)
        if rtype == 3 and struct.unpack(">H", payload[:2])[0] == 0:
            size, tflags = struct.unpack(">QH", payload[2:12])
        elif rtype == 1:
            return size, tflags
        elif rtype & 0x80000000:
            raise RuntimeError("GO refused: %#x" % rtype)


def request(s, typ, cookie, offset, length, data=b""):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, typ, cookie, offset, length) + data)


def reply(s, length):
    magic, err, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == SIMPLE_MAGIC, "bad reply magic"
    data = recv_exact(s, length) if err == 0 else b""
    return err, cookie, data


def main():
    path, mode = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    if mode == "silent":
        recv_exact(s, 18)
        return 0 if closed_by_server(s) else 1
    if mode == "garbage":
        recv_exact(s, 18)
        s.sendall(b"\xff" * 4 + os.urandom(60))
        return 0 if closed_by_server(s) else 1
    if mode == "refused":
        try:
            recv_exact(s, 18)
        except (EOFError, ConnectionResetError):
            return 0
        return 1
    size, _ = handshake(s)
    if mode == "bad-request":
        s.sendall(struct.pack(">IHHQQI", 0xdeadbeef, 0, 0, 1, 0, 512))
        return 0 if closed_by_server(s) else 1
    if mode == "oversize":
        s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, 1, 0, 64 << 20))
        return 0 if closed_by_server(s) else 1
    if mode == "ro-write":
        request(s, 1, 7, 0, 4096, b"\x5a" * 4096)
        err, cookie, _ = reply(s, 0)
        print(err)
        return 0 if cookie == 7 else 1
    if mode == "cut-write":
        bs, off = 4 << 20, int(sys.argv[3])
        request(s, 1, 1, off, bs, b"\xee" * bs)
        s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, 2, 0, bs) + b"\x11" * 4096)
        s.close()
        return 0
    if mode in ("hold-write", "eof-write"):
        bs, off = 4 << 20, int(sys.argv[3])
        request(s, 1, 1, off, bs, b"\xee" * bs)
        # A read with an unknown flag: refused at once, no I/O (the
        # store may hold reads behind the write), answered only once the
        # write before it has been taken in.
        s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0x8000, 0, 2, 0, 4096))
        err, cookie, _ = reply(s, 0)
        if err != 22 or cookie != 2:
            return 1
        print("ready", flush=True)
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.05)
        if mode == "hold-write":
            s.sendall(struct.pack(">I", REQ_MAGIC))   # then EOF mid-request
        s.close()                                     # eof-write: between requests
        return 0
    if mode == "stall":
        n, bs = 64, 4 << 20
        for i in range(n):
            request(s, 0, i, (i * bs) % (size - bs + 1) // 4096 * 4096, bs)
        print("sent", flush=True)
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.05)
        got = set()
        for _ in range(n):
            err, cookie, data = reply(s, bs)
            if err or len(data) != bs:
                print("reply %d: error %d" % (cookie, err), file=sys.stderr)
                return 1
            got.add(cookie)
        return 0 if got == set(range(n)) else 1
    print("unknown mode " + mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Minimal client of xenblkd's control socket for the tests (protocol v1:
one JSON object per line each way; see include/xenblkd/control.h).

As a program: ctl.py SOCKET REQUEST-JSON... sends each request on one
connection and prints each reply line as received (exit 0 if every reply
was valid JSON, 1 otherwise, 2 if the socket cannot be reached).
As a module: Client(path).call({"command": ...}) -> reply dict.
"""
import json
import socket
import sys


class Client:
    def __init__(self, path, timeout=20.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        """One reply line (bytes, without the newline); b"" at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def call_raw(self, line):
        self.send_raw(line + b"\n")
        return json.loads(self.read_line())

    def call(self, req, version=1):
        msg = dict(req)
        msg.setdefault("version", version)
        return self.call_raw(json.dumps(msg).encode())

    def at_eof(self):
        """True once the daemon closed the connection (after any data)."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def close(self):
        self.sock.close()


def main(argv):
    if len(argv) < 3:
        print("usage: ctl.py SOCKET REQUEST-JSON...", file=sys.stderr)
        return 2
    try:
        c = Client(argv[1])
    except OSError as e:
        print("ctl.py: cannot connect to %s: %s" % (argv[1], e.strerror), file=sys.stderr)
        return 2
    rc = 0
    for req in argv[2:]:
        c.send_raw(req.encode() + b"\n")
        line = c.read_line()
        try:
            json.loads(line)
        except ValueError:
            rc = 1
        print(line.decode(errors="replace"), flush=True)
    c.close()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))

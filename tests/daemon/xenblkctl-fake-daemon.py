#!/usr/bin/env python3
"""A scripted peer for xenblkctl's client side (tests/daemon/xenblkctl-client.sh).

It answers on a Unix socket the way xenblkd's control protocol v1 does
(one JSON object per line each way), but with replies the test chose, so
that xenblkctl's arithmetic (rates between samples, means, percentiles)
and its handling of the daemon's errors are checked against exact
numbers.  The real daemon is exercised by the other xenblkctl-*.sh tests.

usage: xenblkctl-fake-daemon.py SOCKET SCRIPT LOG

SCRIPT holds lines "COMMAND REPLY": the first unused line whose COMMAND
matches a request's "command" is its reply (REPLY is sent verbatim: it
may be invalid JSON on purpose); the last line of a command is reused
once the others are used up.  "ping" is always answered {"ok":true}.
Every request line is appended to LOG.  SIGTERM stops it.
"""
import json
import os
import signal
import socket
import sys


def main():
    path, script, log = sys.argv[1:4]
    replies = {}
    with open(script) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cmd, reply = line.split(" ", 1)
            replies.setdefault(cmd, []).append(reply)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    with open(path + ".ready", "w"):
        pass
    while True:
        conn, _ = srv.accept()
        with conn:
            buf = b""
            while b"\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
            if b"\n" not in buf:
                continue
            line = buf.split(b"\n", 1)[0].decode()
            with open(log, "a") as f:
                f.write(line + "\n")
            try:
                cmd = json.loads(line).get("command", "")
            except ValueError:
                cmd = ""
            queue = replies.get(cmd, [])
            if cmd == "ping" and not queue:
                reply = '{"ok":true}'
            elif not queue:
                reply = '{"ok":false,"error":"unknown command","code":"unknown_command"}'
            else:
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
            conn.sendall(reply.encode() + b"\n")


if __name__ == "__main__":
    os.umask(0o077)
    main()

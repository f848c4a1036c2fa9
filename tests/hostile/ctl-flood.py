#!/usr/bin/env python3
"""A control-socket flood for tests/hostile/ctl-flood-neighbour.sh.

ctl-flood.py SOCKET CLIENTS UID GID STOPFILE

Drops to UID:GID (no supplementary groups), opens CLIENTS connections
and keeps each of them asking for a full "stats", two requests in
flight per connection, until STOPFILE exists.  Prints "flood under way"
once every connection is open and the daemon has answered at least 2
stats in all.  At the end prints one line, "replies N
bytes B", and exits 0, or 1 if a connection was closed or refused or a
reply was not {"ok":true,...}.
"""
import json
import os
import selectors
import socket
import sys

path, nclients, uid, gid, stopfile = sys.argv[1:6]
nclients, uid, gid = int(nclients), int(uid), int(gid)
os.setgroups([])
os.setgid(gid)
os.setuid(uid)

REQ = b'{"version":1,"command":"stats"}\n'
INFLIGHT = 2
sel = selectors.DefaultSelector()
state = {}
for _ in range(nclients):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(REQ * INFLIGHT)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    state[s] = b""

replies = nbytes = 0
ready = False
while not os.path.exists(stopfile):
    for key, _ in sel.select(0.2):
        s = key.fileobj
        try:
            data = s.recv(1 << 20)
        except BlockingIOError:
            continue
        if not data:
            print("flood: a connection was closed", file=sys.stderr)
            sys.exit(1)
        nbytes += len(data)
        buf = state[s] + data
        *lines, state[s] = buf.split(b"\n")
        for line in lines:
            rep = json.loads(line)
            if rep.get("ok") is not True:
                print("flood: refused: %s" % line[:200], file=sys.stderr)
                sys.exit(1)
            replies += 1
            s.setblocking(True)
            s.sendall(REQ)
            s.setblocking(False)
    if not ready and replies >= 2:
        print("flood under way", flush=True)
        ready = True
print("replies %d bytes %d" % (replies, nbytes))

#!/usr/bin/env python3
"""Abuse xenblkd's control socket (run by control-abuse.sh while a guest's
verified workload runs): an idle client, one more client than allowed and
then some, over-long lines, a client that never reads its replies,
malformed requests, a connect/close storm.  Every case checks the
daemon's answer; the script ends with the daemon answering, its memory
within a bound and no connection left over.

ctl-abuse.py SOCKET DAEMON-PID RSS-BOUND-BYTES DONE-FILE
(DONE-FILE is created once the active abuse is over, before the wait for
the idle client's timeout.)
"""
import fcntl
import json
import os
import select
import socket
import struct
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctl import Client  # noqa: E402

SOCK, PID, RSS_BOUND, DONE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
MAX_CLIENTS = 64
MAX_LINE = 65536
fails = []


def log(msg):
    print("[abuse %s] %s" % (time.strftime("%T"), msg), flush=True)


def check(what, cond, detail=""):
    if cond:
        log("ok: " + what)
    else:
        log("FAIL: %s %s" % (what, detail))
        fails.append(what)


def rss():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def connections():
    """Sockets bound to our path: the listener plus one per client."""
    n = 0
    with open("/proc/net/unix") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == SOCK:
                n += 1
    return n


def wait_for(what, pred, timeout=20.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            check(what, False, "(timed out)")
            return False
        time.sleep(0.02)
    check(what, True)
    return True


def fresh():
    """A client the daemon accepted (retries while slots are being freed:
    the daemon learns of closed clients on its next loop turns)."""
    end = time.monotonic() + 20
    while True:
        c = Client(SOCK)
        try:
            r = c.call({"command": "ping"})
        except (BrokenPipeError, ConnectionResetError, ValueError) as e:
            r = {"error": str(e)}
        if r.get("ok"):
            return c
        c.close()
        if time.monotonic() > end:
            raise RuntimeError("no free client slot: %r" % r)
        time.sleep(0.02)


def stats_rings():
    c = fresh()
    r = c.call({"command": "stats"})
    c.close()
    return sum(sum(ring["requests"].values()) for d in r["devices"] for ring in d["rings"])


rss0 = rss()
rss_flood = 0
log("daemon RSS at start: %d KiB, %d socket(s) on the path" % (rss0 // 1024, connections()))
wait_for("the guest's workload is running", lambda: stats_rings() > 0)
served0 = stats_rings()

# --- an idle client: closed by the daemon after 60 s (checked at the end) ---
idle = Client(SOCK, timeout=120)
idle_since = time.monotonic()
wait_for("idle client accepted", lambda: connections() == 2)

# --- one hundred clients at once: 63 more fit, the others get an error ---
many = [Client(SOCK) for _ in range(100)]
# The refused ones say so unasked and hang up; wait for those lines.
refused, hung_up = [], 0
deadline = time.monotonic() + 20
while len(refused) < 100 - (MAX_CLIENTS - 1) and time.monotonic() < deadline:
    ready, _, _ = select.select([c.sock for c in many if c not in refused], [], [], 0.2)
    for c in [c for c in many if c.sock in ready]:
        r = json.loads(c.read_line() or b"{}")
        if r.get("code") != "failed" or "too many clients" not in r.get("error", ""):
            check("refused with a reason", False, r)
        refused.append(c)
        hung_up += c.at_eof()
accepted = 0
for c in many:
    if c not in refused:
        accepted += c.call({"command": "ping"}) == {"ok": True}
check("%d of 100 clients served, %d refused" % (accepted, len(refused)),
      accepted == MAX_CLIENTS - 1 and len(refused) == 100 - (MAX_CLIENTS - 1))
check("every refused client is hung up on", hung_up == len(refused))
for c in many:
    c.close()
wait_for("the hundred clients are gone", lambda: connections() == 2)

# --- line length: exactly the limit is read; one byte more is too long ---
c = fresh()
req = {"version": 1, "command": "ping", "pad": ""}
req["pad"] = "x" * (MAX_LINE - len(json.dumps(req)))
line = json.dumps(req).encode()
assert len(line) == MAX_LINE
r = c.call_raw(line)
check("a %d-byte line is parsed (unknown argument)" % MAX_LINE,
      r.get("code") == "bad_request" and "pad" in r.get("error", ""), r)
check("the connection goes on", c.call({"command": "ping"}) == {"ok": True})
c.send_raw(line + b"y\n")
r = json.loads(c.read_line())
check("a %d-byte line is too_long" % (MAX_LINE + 1), r.get("code") == "too_long", r)
check("and the connection is closed", c.at_eof())
c.close()
c = fresh()
try:
    c.send_raw(b"z" * (2 * MAX_LINE))       # no newline at all
except (BrokenPipeError, ConnectionResetError):
    pass                                    # closed before we were done: fine
r = json.loads(c.read_line())
check("a line without end is too_long", r.get("code") == "too_long", r)
check("and the connection is closed", c.at_eof())
c.close()

# --- malformed requests, all answered, the connection stays usable ---
c = fresh()
cases = [
    (b'{"version":1,', "bad_json"),
    (b'{"version":1,"command":"ping"} trailing', "bad_json"),
    (b'{"version":1,"command":"pi\xffng"}', "bad_json"),           # not UTF-8
    (b'{"version":1,"command":"ping"}\x00', "bad_json"),
    (b"[" * 5000 + b"]" * 5000, "bad_json"),                        # too deep
    (b"", "bad_json"),
    (b"null", "bad_json"),
    (b'"ping"', "bad_request"),
    (b"[1,2,3]", "bad_request"),
    (b'{"command":"ping"}', "bad_request"),
    (b'{"version":"1","command":"ping"}', "bad_request"),
    (b'{"version":1.5,"command":"ping"}', "bad_request"),
    (b'{"version":1}', "bad_request"),
    (b'{"version":1,"command":42}', "bad_request"),
    (b'{"version":2,"command":"ping"}', "unsupported_version"),
    (b'{"version":0,"command":"ping"}', "unsupported_version"),
    (b'{"version":99999999999999999999,"command":"ping"}', "unsupported_version"),
    (b'{"version":1,"command":"format-disks"}', "unknown_command"),
    (b'{"version":1,"command":"\\u0000\\u001b[2J"}', "unknown_command"),
    (b'{"version":1,"command":"stats","domid":1e3}', "bad_request"),
    (b'{"version":1,"command":"stats","devid":{"a":1}}', "bad_request"),
]
for raw, code in cases:
    r = c.call_raw(raw)
    check("%.40r -> %s" % (raw, code), r.get("ok") is False and r.get("code") == code
          and isinstance(r.get("error"), str) and r["error"], r)
check("still answering on that connection", c.call({"command": "ping"}) == {"ok": True})
c.close()

# --- a client that sends requests and never reads its replies ---
# Unbounded, 20000 stats replies would be tens of MiB in the daemon.
c = Client(SOCK, timeout=60)
batch = b'{"version":1,"command":"stats"}\n' * 100
sent = 0
dropped = False
try:
    for _ in range(200):
        c.send_raw(batch)
        sent += 100
except (BrokenPipeError, ConnectionResetError):
    dropped = True
check("a client that never reads is dropped (after %d requests)" % sent, dropped)
if not dropped:
    # Let the daemon take in all of it (nothing of ours left unread in
    # the socket: SIOCOUTQ) before its memory is looked at below.
    outq = lambda: struct.unpack("i", fcntl.ioctl(c.sock, termios.TIOCOUTQ, b"\0" * 4))[0]
    wait_for("the daemon read every request", lambda: outq() == 0, timeout=60)
    rss_flood = rss()
c.close()

# --- a storm of connections opened and closed at once ---
for _ in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    s.close()
wait_for("no connection left over but the idle one", lambda: connections() == 2)

# --- afterwards ---
c = fresh()
check("the daemon answers", c.call({"command": "ping"}) == {"ok": True})
r = c.call({"command": "stats"})
c.close()
check("stats still work", r.get("ok") is True, r)
served1 = sum(sum(ring["requests"].values()) for d in r["devices"] for ring in d["rings"])
log("requests served by the ring now: %d (before the abuse: %d)" % (served1, served0))
rss1 = max(rss(), rss_flood)
log("daemon RSS after the abuse: %d KiB (+%d KiB)" % (rss1 // 1024, (rss1 - rss0) // 1024))
check("RSS grew by less than %d KiB" % (RSS_BOUND // 1024), rss1 - rss0 < RSS_BOUND)

open(DONE, "w").close()

# The idle client: nothing sent, nothing to read; closed after 60 s.
idle.sock.settimeout(max(1.0, 90 - (time.monotonic() - idle_since)))
try:
    closed = idle.at_eof()
except socket.timeout:
    closed = False
check("the idle client is closed by the daemon", closed)
check("not before 60 s (%.1f s)" % (time.monotonic() - idle_since),
      time.monotonic() - idle_since >= 59.5)
idle.close()
wait_for("only the listening socket is left", lambda: connections() == 1)

if fails:
    log("%d check(s) failed: %s" % (len(fails), ", ".join(fails)))
    sys.exit(1)

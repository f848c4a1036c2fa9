#!/bin/bash
# xenblkctl list and stats against the production daemon after a known
# workload of the reference frontend (two queues, mixed reads, writes,
# flushes and discards), everything compared with what the frontend itself
# counted (its --stats-json):
# - stats --json (Python's json): requests per operation, bytes, every
#   latency histogram's count equal to its operation's requests;
# - list and stats tables: the same figures, the mean and p99 recomputed
#   here from the histograms; --queues; a filter; rates while idle;
# - --prometheus: promtool check metrics and prometheus_client's parser,
#   histogram _count and +Inf equal to the request counts, cumulative
#   buckets, bytes.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
source "$top_srcdir/tests/daemon/xenblkctl-lib.sh"
o=$XSIM_TMP/out

# A Python that has prometheus_client (Debian's python3-prometheus-client
# lives in /usr/lib/python3, which another python3 first in PATH lacks).
prom_py=
for py in python3 /usr/bin/python3; do
    if "$py" -c 'import prometheus_client.parser' 2>/dev/null; then prom_py=$py; break; fi
done
have_promtool=0
command -v promtool >/dev/null && have_promtool=1
[ -n "$prom_py" ] || [ "$have_promtool" = 1 ] ||
    xsim_skip "neither promtool (prometheus) nor python3-prometheus-client is installed (tests/deps/xenblkctl.txt)"

xsim_add_domain 5
img=$(make_disk a.img 64)
ctl_daemon --kinds vbd3
ctl_expect 0 "$o" attach 5 xvda "$img"

# --- before the guest connects --------------------------------------------
ctl_expect 0 "$o" list
row=$(awk '$1 == 5' "$o")
[[ $row =~ ^\ *5\ +51712\ +xvda\ +vbd3\ +InitWait\ +w\ +64M\ +-\ +-\ +$img$ ]] ||
    { cat "$o" >&2; xsim_fail "list before connecting: '$row'"; }
xsim_log "ok: list: $row"
ctl_expect 0 "$o" stats --totals
expect_q=$(awk '$1 == 5 { print $4 }' "$o")
[ "$expect_q" = - ] || { cat "$o" >&2; xsim_fail "stats of a device without rings: Q is '$expect_q'"; }

# --- the workload -----------------------------------------------------------
fe_hold g1 5 --vdev xvda --queues 2 --workload mixed --count 400 --qd 8 --hold 600
ctl_expect 0 "$XSIM_TMP/list.txt" list
ctl_expect 0 "$XSIM_TMP/list.json" list --json
ctl_expect 0 "$XSIM_TMP/totals.txt" stats --totals
ctl_expect 0 "$XSIM_TMP/queues.txt" stats --totals --queues
ctl_expect 0 "$XSIM_TMP/stats.json" stats --json
ctl_expect 0 "$XSIM_TMP/filter.json" stats 5/xvda --json
ctl_expect 0 "$XSIM_TMP/m.prom" stats --prometheus
ctl_expect 0 "$XSIM_TMP/rates.txt" stats
ctl_expect 0 "$XSIM_TMP/watch.txt" stats --watch 0.2 --count 2 --queues
ctl_expect 5 "$o" stats 7
ctl_says "$o.err" "no device"
ctl_expect 5 "$o" stats 5/xvdb
# The frontend writes what it counted when it ends.
xsim_kill g1 TERM >/dev/null || true
[ -s "$XSIM_TMP/g1.json" ] || xsim_fail "the frontend wrote no statistics"
for f in list.txt totals.txt queues.txt rates.txt watch.txt; do
    xsim_log "$f:"
    sed 's/^/    /' "$XSIM_TMP/$f" >&2
done

# --- JSON and tables against the frontend's own counts ----------------------
python3 - "$XSIM_TMP" "$img" <<'EOF' || xsim_fail "xenblkctl's figures differ from the workload's (above)"
import json, math, sys
d, img = sys.argv[1], sys.argv[2]
fe = json.load(open(d + "/g1.json"))["disks"][0]
st = json.load(open(d + "/stats.json"))
bad = []
def want(what, got, exp):
    if got != exp:
        bad.append("%s: %r, want %r" % (what, got, exp))

OPS = ("read", "write", "flush", "barrier", "discard")
assert st["ok"] is True
want("devices", len(st["devices"]), 1)
dev = st["devices"][0]
rings = dev["rings"]
nq = fe["negotiated"]["queues"]
want("state", dev["state"], "Connected")
want("queues", dev["queues"], nq)
want("rings", len(rings), nq)
want("persistent", dev["persistent"], True)
want("size_bytes", dev["size_bytes"], 64 << 20)
want("backing", dev["backing"]["path"], img)
want("daemon rings", st["daemon"]["rings"], nq)
tot = {op: sum(r["requests"][op] for r in rings) for op in OPS}
for op in OPS:
    want("requests." + op, tot[op], fe["requests"][op])
want("requests.indirect", sum(r["requests"]["indirect"] for r in rings), fe["requests"]["indirect"])
rd = sum(r["sectors"]["read"] for r in rings) * 512
wr = sum(r["sectors"]["written"] for r in rings) * 512
want("bytes read", rd, fe["bytes_read"])
want("bytes written", wr, fe["bytes_written"])
if min(tot["read"], tot["write"], tot["flush"] + tot["barrier"], tot["discard"]) == 0:
    bad.append("the mixed workload lacks an operation: %r" % tot)
for r in rings:
    q = r["queue"]
    want("q%d in_flight" % q, r["in_flight"], 0)
    want("q%d errors" % q, r["errors"], {"io": 0, "protocol": 0, "grant": 0, "eopnotsupp": 0})
    if r["evtchn"]["received"] == 0 or r["evtchn"]["sent"] == 0:
        bad.append("q%d: no event channel traffic counted" % q)
    for op in OPS:
        h = r["latency"][op]
        want("q%d latency.%s.count" % (q, op), h["count"], r["requests"][op])
        want("q%d latency.%s buckets" % (q, op), sum(h["buckets"]), h["count"])

# Mean and p99 recomputed here (bucket i: below 2^i us, at least 2^(i-1)).
def merged(op):
    b = [sum(r["latency"][op]["buckets"][i] for r in rings) for i in range(32)]
    return b, sum(r["latency"][op]["sum_us"] for r in rings)
def p99(b):
    n = sum(b); rank = 0.99 * n; below = 0
    for i, c in enumerate(b):
        if c and below + c >= rank:
            lo = 0 if i == 0 else 2 ** (i - 1)
            return lo + (2 ** i - lo) * (rank - below) / c
        below += c
def ms(us):
    return "%.3f" % (us / 1000)

def row(path, key):
    head = None
    for line in open(path):
        f = line.split()
        if f and f[0] == "DOMID":
            head = f
        elif head and f and f[0] == "5" and f[3] == key:
            return dict(zip(head, f))
    bad.append("%s: no row for queue %s" % (path, key))
    return {}

t = row(d + "/totals.txt", "all")
want("totals reads", t.get("reads"), str(tot["read"]))
want("totals writes", t.get("writes"), str(tot["write"]))
want("totals flushes", t.get("flushes"), str(tot["flush"] + tot["barrier"]))
want("totals discards", t.get("discards"), str(tot["discard"]))
want("totals rMiB", t.get("rMiB"), "%.2f" % (rd / 2**20))
want("totals wMiB", t.get("wMiB"), "%.2f" % (wr / 2**20))
for op, col in (("read", "r"), ("write", "w")):
    b, s = merged(op)
    want("totals %s_await" % col, t.get(col + "_await"), ms(s / sum(b)))
    want("totals %s_p99" % col, t.get(col + "_p99"), ms(p99(b)))
want("totals inflight", t.get("inflight"), "0")
want("totals errors", t.get("errors"), "0")
for r in rings:
    qr = row(d + "/queues.txt", str(r["queue"]))
    want("queue %d reads" % r["queue"], qr.get("reads"), str(r["requests"]["read"]))
    want("queue %d writes" % r["queue"], qr.get("writes"), str(r["requests"]["write"]))

lst = json.load(open(d + "/list.json"))
want("list --json state", lst["devices"][0]["state"], "Connected")
want("list --json has no rings", "rings" in lst["devices"][0], False)
for line in open(d + "/list.txt"):
    f = line.split()
    if f[0] == "5":
        want("list row", f, ["5", "51712", "xvda", "vbd3", "Connected", "w", "64M", str(nq), "yes", img])
flt = json.load(open(d + "/filter.json"))
want("filtered devices", [(x["domid"], x["devid"]) for x in flt["devices"]], [(5, 51712)])

# Idle while held: the 1 s rates are zero.
r1 = row(d + "/rates.txt", "all")
want("idle r/s", r1.get("r/s"), "0.0")
want("idle w/s", r1.get("w/s"), "0.0")
watch = open(d + "/watch.txt").read()
want("watch reports", watch.count("rates over the last"), 2)
want("watch queue rows", sum(1 for l in watch.splitlines() if l.split()[:1] == ["5"]), 2 * nq)
if bad:
    print("\n".join(bad))
    sys.exit(1)
print("%d requests, %d bytes read, %d written over %d queue(s): all figures agree" %
      (sum(tot.values()), rd, wr, nq))
EOF
xsim_log "ok: stats --json, list, stats tables agree with the frontend's counts"

# --- Prometheus ---------------------------------------------------------------
if [ "$have_promtool" = 1 ]; then
    promtool check metrics <"$XSIM_TMP/m.prom" >"$o" 2>&1 ||
        { cat "$o" >&2; xsim_fail "promtool check metrics refused the output"; }
    xsim_log "ok: promtool check metrics: $(wc -l <"$XSIM_TMP/m.prom") lines, no problem"
fi
if [ -n "$prom_py" ]; then
    "$prom_py" - "$XSIM_TMP" <<'EOF' || xsim_fail "--prometheus does not match --json"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
d = sys.argv[1]
text = open(d + "/m.prom").read()
st = json.load(open(d + "/stats.json"))
fams = {f.name: f for f in text_string_to_metric_families(text)}
bad = []
def want(what, got, exp):
    if got != exp:
        bad.append("%s: %r, want %r" % (what, got, exp))
for line in text.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, typ = line.split()
        if not name.startswith("xenblkd_"):
            bad.append("%s lacks the xenblkd_ prefix" % name)
        if typ == "counter" and not name.endswith("_total"):
            bad.append("counter %s does not end in _total" % name)
dev = st["devices"][0]
def samples(fam, name, **labels):
    return [s for s in fams[fam].samples if s.name == name and
            all(s.labels.get(k) == v for k, v in labels.items())]
for r in dev["rings"]:
    q = str(r["queue"])
    lab = {"domid": "5", "devid": "51712", "kind": "vbd3", "queue": q}
    for op, n in r["requests"].items():
        if op == "indirect":
            continue
        s = samples("xenblkd_requests", "xenblkd_requests_total", op=op, **lab)
        want("requests_total q%s %s" % (q, op), [x.value for x in s], [n])
        h = r["latency"][op]
        cnt = samples("xenblkd_request_duration_seconds", "xenblkd_request_duration_seconds_count", op=op, **lab)
        want("_count q%s %s" % (q, op), [x.value for x in cnt], [n])
        bk = samples("xenblkd_request_duration_seconds", "xenblkd_request_duration_seconds_bucket", op=op, **lab)
        vals = [x.value for x in bk]
        les = [float(x.labels["le"]) for x in bk]
        want("+Inf q%s %s" % (q, op), (les[-1], vals[-1]), (float("inf"), n))
        if vals != sorted(vals) or les != sorted(les):
            bad.append("buckets of q%s %s are not cumulative: %r" % (q, op, list(zip(les, vals))))
        # le = 2^i us holds exactly the daemon's buckets 0..i.
        for le, v in zip(les[:-1], vals[:-1]):
            i = round(le * 1e6).bit_length() - 1
            want("le=%g q%s %s" % (le, q, op), v, sum(h["buckets"][:i + 1]))
        sm = samples("xenblkd_request_duration_seconds", "xenblkd_request_duration_seconds_sum", op=op, **lab)
        if abs(sm[0].value - h["sum_us"] / 1e6) > 1e-6:
            bad.append("_sum q%s %s: %r, want %r" % (q, op, sm[0].value, h["sum_us"] / 1e6))
    rb = samples("xenblkd_read_bytes", "xenblkd_read_bytes_total", **lab)
    want("read_bytes_total q%s" % q, [x.value for x in rb], [r["sectors"]["read"] * 512])
    for fam, key in (("xenblkd_notifications_received", "received"),
                     ("xenblkd_notifications_sent", "sent"),
                     ("xenblkd_notification_storm_delays", "storm_delays")):
        ev = samples(fam, fam + "_total", **lab)
        want("%s_total q%s" % (fam, q), [x.value for x in ev], [r["evtchn"][key]])
    fl = samples("xenblkd_requests_in_flight", "xenblkd_requests_in_flight", **lab)
    want("in_flight q%s" % q, [x.value for x in fl], [0])
want("devices gauge", [s.value for s in fams["xenblkd_devices"].samples], [1])
want("size", [s.value for s in fams["xenblkd_device_size_bytes"].samples], [64 << 20])
if bad:
    print("\n".join(bad))
    sys.exit(1)
print("%d metric families parsed" % len(fams))
EOF
    xsim_log "ok: prometheus_client parses --prometheus, histograms match the request counts"
fi
exit 0

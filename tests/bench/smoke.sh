#!/bin/bash
# make check's view of make bench: the harness in its quickest mode (two
# workloads, 0.2 s each, tmpfs) produces well-formed output: one JSON record
# per workload x backend with every figure the table needs, the Markdown
# table with a row per workload, and the counting harness of the hot path
# runs (natively: callgrind is for make bench).  Never a timing assertion.
set -euo pipefail
: "${top_srcdir:?run through make check}" "${top_builddir:?}"
out=$(mktemp -d "${TMPDIR:-/tmp}/xbd-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
command -v fio >/dev/null || { echo "SKIP: fio is not installed (tests/deps/bench.txt)"; exit 77; }

backends="fio xenblkd"
[ -x "${QEMU_XEN:-/usr/libexec/xen-qemu-system-i386}" ] && backends+=" qdisk"
BENCH_QUICK=1 BENCH_SECONDS=0.2 BENCH_OUT=$out BENCH_BACKENDS=$backends BENCH_WORKLOADS="
rr4k-qd32  qd     randread  4096  32 1 1 1
g2-rr4k    guests randwrite 4096  32 1 0 2
sr64k-noind -     read      65536 32 0 1 1
" bash "$top_srcdir/tests/bench/bench.sh" > "$out/bench.log" 2>&1 || { tail -n 60 "$out/bench.log"; exit 1; }

/usr/bin/python3 - "$out" $backends <<'PY'
import json, sys
d, backends = sys.argv[1], sys.argv[2:]
j = json.load(open(d + "/results.json"))
recs = j["records"]
need = {"fio": ["iops", "mib_s", "lat_p50_us", "lat_p99_us", "backend_cpu_us_per_req"],
        "xenblkd": ["iops", "mib_s", "lat_p50_us", "lat_p99_us", "backend_cpu_us_per_req",
                    "frontend_cpu_us_per_req", "grant_map_calls_per_req", "grant_copy_calls_per_req",
                    "evtchn_rx_per_req", "evtchn_tx_per_req", "rss_per_device_kib", "host_cpu_busy_pct"],
        "qdisk": ["iops", "mib_s", "lat_p50_us", "lat_p99_us", "backend_cpu_us_per_req"]}
need["fio-shape"] = need["fio"] + ["req_bytes"]
fail = []
for w in ("rr4k-qd32", "g2-rr4k", "sr64k-noind"):
    for b in backends:
        r = [x for x in recs if x["workload"] == w and x["backend"] == b]
        if len(r) != 1:
            fail.append("%s/%s: %d records" % (w, b, len(r)))
            continue
        for k in need[b]:
            v = r[0].get(k)
            if not isinstance(v, (int, float)) or v < 0:
                fail.append("%s/%s: %s = %r" % (w, b, k, v))
        if r[0].get("requests", 0) <= 0:
            fail.append("%s/%s: no request completed" % (w, b))
# fio again at the request size xenblkd receives only where the guest
# splits the job's I/O (64 KiB without indirect descriptors: 44 KiB).
sh = [r for r in recs if r["backend"] == "fio-shape"]
if [(r["workload"], r.get("req_bytes"), r.get("qd")) for r in sh] != [("sr64k-noind", 45056, 32)]:
    fail.append("fio at xenblkd's request size: %r" % [(r["workload"], r.get("req_bytes"), r.get("qd")) for r in sh])
for r in sh:
    for k in need["fio-shape"]:
        if not isinstance(r.get(k), (int, float)) or r[k] < 0:
            fail.append("sr64k-noind/fio-shape: %s = %r" % (k, r.get(k)))
x = [r for r in recs if r["backend"] == "xenblkd" and r["workload"] == "g2-rr4k"]
if x and x[0]["grant_copy_calls_per_req"] <= 0:
    fail.append("g2-rr4k without persistent grants made no grant copy")
md = open(d + "/results.md").read().splitlines()
rows = [l for l in md if l.startswith("| tmpfs |")]
if not any(l.startswith("| storage | workload |") for l in md) or len(rows) != 3:
    fail.append("results.md: header or rows missing:\n" + "\n".join(md))
import re
shape_col = {l.split("|")[2].strip(): l.split("|")[8].strip() for l in rows}
if shape_col.get("rr4k-qd32") != "same" or not re.fullmatch(r"\d+\.\d\d \(\d+\.\d\)", shape_col.get("sr64k-noind", "")):
    fail.append("results.md: column of fio at xenblkd's request size: %r" % shape_col)
for l in rows:
    if len(l.split("|")) != len(md[[i for i, l2 in enumerate(md) if l2.startswith("| storage")][0]].split("|")):
        fail.append("results.md: ragged row " + l)
if fail:
    print("FAIL:\n  " + "\n  ".join(fail))
    sys.exit(1)
print("bench output well formed: %d records, %d table rows" % (len(recs), len(rows)))
PY
grep -A4 '^| storage' "$out/results.md"

"$top_builddir/tests/bench/ring-insns" 256 32 read persistent
echo PASS

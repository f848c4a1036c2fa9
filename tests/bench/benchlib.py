#!/usr/bin/python3
"""Helpers of tests/bench/bench.sh (see tests/bench/README.md).

  benchlib.py fio-record OUT.jsonl KEY=VALUE... FIO.json
      one record from fio's JSON output (the limit)
  benchlib.py backend-record OUT.jsonl KEY=VALUE... -- FRONTEND.json...
      one record from the frontends' results and the measurements of the
      backend taken by bench.sh (env: see backend_record)
  benchlib.py sum-stats STATS.json DOMID...
      sum the ring counters of the given guests' devices (xenblkd's
      control socket "stats" reply) and print them as one JSON object
  benchlib.py report DIR
      DIR/records.jsonl -> DIR/results.json, DIR/results.md, DIR/*.png

Every record is one workload x backend x storage.  Nothing here judges
speed: the numbers and ratios are printed, never asserted.
"""
import json
import os
import sys

COUNTERS = [
    ("requests", "read"), ("requests", "write"), ("requests", "indirect"),
    ("persistent_grants", "map_calls"), ("persistent_grants", "mapped"),
    ("persistent_grants", "hits"), ("persistent_grants", "misses"),
    ("grant_copy", "calls"), ("grant_copy", "segments"),
    ("evtchn", "received"), ("evtchn", "sent"),
]


def kv(args):
    out = {}
    for a in args:
        k, _, v = a.partition("=")
        try:
            v = int(v)
        except ValueError:
            try:
                v = float(v)
            except ValueError:
                pass
        out[k] = v
    return out


def append(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")


def fio_record(out, args):
    rec = kv(args[:-1])
    with open(args[-1]) as f:
        text = f.read()
    # fio may print warnings before its JSON.
    j = json.loads(text[text.index("{"):])
    iops = mib = cpu = reqs = 0.0
    p50 = []
    p99 = []
    runtime = 0.0
    for job in j["jobs"]:
        for d in ("read", "write"):
            s = job[d]
            if not s["total_ios"]:
                continue
            iops += s["iops"]
            mib += s["bw_bytes"] / 1048576.0
            reqs += s["total_ios"]
            pct = s["clat_ns"].get("percentile", {})
            p50.append(pct.get("50.000000", 0) / 1000.0)
            p99.append(pct.get("99.000000", 0) / 1000.0)
        rt = job["job_runtime"] / 1000.0
        runtime = max(runtime, rt)
        cpu += (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * rt
    rec.setdefault("backend", "fio")   # "fio-shape": at xenblkd's request size
    rec.update(iops=iops, mib_s=mib, requests=reqs, seconds=runtime,
               lat_p50_us=sum(p50) / len(p50) if p50 else None,
               lat_p99_us=max(p99) if p99 else None,
               backend_cpu_us_per_req=cpu * 1e6 / reqs if reqs else None,
               direct=j["global options"].get("direct", rec.get("direct")))
    append(out, rec)


def sum_stats(path, domids):
    with open(path) as f:
        j = json.load(f)
    want = {int(d) for d in domids}
    tot = {"%s.%s" % c: 0 for c in COUNTERS}
    for dev in j.get("devices", []):
        if dev.get("domid") not in want:
            continue
        for ring in dev.get("rings", []):
            for g, k in COUNTERS:
                tot["%s.%s" % (g, k)] += ring.get(g, {}).get(k, 0) or 0
    tot["rss_bytes"] = j.get("daemon", {}).get("rss_bytes")
    print(json.dumps(tot))


def host_cpu(rec, v, reqs):
    """B_HOST_CPU = "BUSY0 TOTAL0 BUSY1 TOTAL1 HZ" (/proc/stat ticks around
    the timed phase): how busy the whole machine was, and the CPU per
    request not accounted to the backend or the load generator
    (xenstored, other processes on a shared machine)."""
    b0, t0, b1, t1, hz = v
    if t1 <= t0:
        return
    rec["host_cpu_busy_pct"] = 100.0 * (b1 - b0) / (t1 - t0)
    rec["host_cpu_us_per_req"] = (b1 - b0) * 1e6 / hz / reqs
    rest = rec["host_cpu_us_per_req"] - (rec.get("frontend_cpu_us_per_req") or 0)
    if rec.get("backend_cpu_us_per_req") is not None:
        rest -= rec["backend_cpu_us_per_req"]
    rec["other_cpu_us_per_req"] = rest


def backend_record(out, args):
    """Environment from bench.sh: B_CPU_NS (backend CPU in the timed
    phase), B_SYSCALLS (perf's raw_syscalls:sys_enter count, or ''),
    B_STATS0/B_STATS1 (sum-stats before/after, xenblkd only), B_RSS0/B_RSS1
    (backend RSS in bytes before the disks were added / while held)."""
    i = args.index("--")
    rec = kv(args[:i])
    fronts = []
    for p in args[i + 1:]:
        with open(p) as f:
            fronts.append(json.loads(f.read()))
    reqs = sum(f["requests"] for f in fronts)
    secs = max(f["seconds"] for f in fronts)
    rec.update(
        requests=reqs, seconds=secs,
        iops=sum(f["iops"] for f in fronts),
        mib_s=sum(f["mib_s"] for f in fronts),
        # Guests run at once: the median of each, weighted; the worst p99.
        lat_p50_us=sum(f["lat_p50_us"] * f["requests"] for f in fronts) / reqs if reqs else None,
        lat_p99_us=max(f["lat_p99_us"] for f in fronts),
        req_bytes=fronts[0]["bs"],
        frontend_cpu_us_per_req=sum(f["frontend_cpu_s"] for f in fronts) * 1e6 / reqs if reqs else None,
    )
    env = os.environ
    if reqs and env.get("B_CPU_NS"):
        rec["backend_cpu_us_per_req"] = int(env["B_CPU_NS"]) / 1000.0 / reqs
    if reqs and env.get("B_SYSCALLS"):
        rec["syscalls_per_req"] = int(env["B_SYSCALLS"]) / reqs
    if env.get("B_STATS0") and env.get("B_STATS1"):
        s0, s1 = json.loads(env["B_STATS0"]), json.loads(env["B_STATS1"])
        d = {k: (s1.get(k) or 0) - (s0.get(k) or 0) for k in s1 if k != "rss_bytes"}
        if reqs:
            rec["grant_map_calls_per_req"] = d["persistent_grants.map_calls"] / reqs
            rec["grant_copy_calls_per_req"] = d["grant_copy.calls"] / reqs
            rec["evtchn_rx_per_req"] = d["evtchn.received"] / reqs
            rec["evtchn_tx_per_req"] = d["evtchn.sent"] / reqs
        rec["pgrants_mapped"] = s1.get("persistent_grants.mapped")
    if env.get("B_FE_KICKS"):
        rec["frontend_kicks_per_req"] = int(env["B_FE_KICKS"]) / reqs if reqs else None
    if reqs and env.get("B_HOST_CPU"):
        host_cpu(rec, [int(x) for x in env["B_HOST_CPU"].split()], reqs)
    if env.get("B_WAIT_NS") and int(env.get("B_WALL_NS") or 0) > 0:
        # Share of the timed phase the backend was runnable but waited for
        # a CPU (summed over its threads: can exceed 100 with several).
        rec["backend_cpu_wait_pct"] = 100.0 * int(env["B_WAIT_NS"]) / int(env["B_WALL_NS"])
        if env.get("B_CPU_NS"):
            rec["backend_cpu_run_pct"] = 100.0 * int(env["B_CPU_NS"]) / int(env["B_WALL_NS"])
    if env.get("B_RSS0") and env.get("B_RSS1"):
        delta = int(env["B_RSS1"]) - int(env["B_RSS0"])
        g = int(rec.get("guests", 1)) or 1
        rec["rss_per_device_kib"] = delta / g / 1024.0
        if rec.get("pgrants_mapped"):
            rec["rss_per_pgrant_kib"] = delta / rec["pgrants_mapped"] / 1024.0
    append(out, rec)


# ---- report ------------------------------------------------------------------

def fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def ratio(a, b):
    if a is None or not b:
        return "-"
    return "%.2f" % (a / b)


def shape_ratio(g):
    """xenblkd over fio at the request size xenblkd receives ("fio-shape":
    the guest split the job's I/O), with that fio's MiB/s; "same" where
    the limit's shape is already xenblkd's."""
    s, x = g.get("fio-shape"), g.get("xenblkd")
    if not s:
        return "same" if g.get("fio") else "-"
    return "%s (%.1f)" % (ratio(x and x.get("mib_s"), s.get("mib_s")), s["mib_s"])


def report(d):
    recs = []
    with open(os.path.join(d, "records.jsonl")) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    meta = {}
    mp = os.path.join(d, "meta.json")
    if os.path.exists(mp):
        with open(mp) as f:
            meta = json.load(f)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump({"meta": meta, "records": recs}, f, indent=1, sort_keys=True)
        f.write("\n")

    def key(r):
        return (r["storage"], r["order"], r["workload"])
    by = {}
    for r in recs:
        by.setdefault(key(r), {})[r["backend"]] = r
    lines = []
    if meta:
        lines.append("Run: %s, %s s per job, %s; storage: %s." % (
            meta.get("date", "?"), meta.get("seconds", "?"), meta.get("host", "?"),
            "; ".join("%s = %s (%s)" % (k, v.get("path"), v.get("io")) for k, v in
                      sorted(meta.get("storage", {}).items()))))
        lines.append("")
    lines.append("| storage | workload | fio IOPS | xenblkd IOPS | qdisk IOPS | xenblkd/limit | xenblkd/qdisk "
                 "| xenblkd / fio at xenblkd's request size (that fio's MiB/s) "
                 "| xenblkd MiB/s | p50/p99 µs (xenblkd) | p50/p99 µs (qdisk) | xenblkd CPU µs/req "
                 "| qdisk CPU µs/req | fio CPU µs/req | syscalls/req (xenblkd) | syscalls/req (qdisk) "
                 "| map/req | copy/req | evtchn rx+tx/req | fe CPU µs/req | host busy % / other CPU µs/req "
                 "| xenblkd ran / waited for a CPU % |")
    lines.append("|" + "---|" * 22)
    # Ratios are of throughput (MiB/s): equal to the IOPS ratio where the
    # request sizes are equal, and still right where a guest splits a large
    # I/O into smaller requests (no indirect descriptors, 32 segments).
    for k in sorted(by):
        g = by[k]
        f, x, q = g.get("fio"), g.get("xenblkd"), g.get("qdisk")

        def v(r, name, nd=0):
            return fmt(r.get(name), nd) if r else "-"

        def lat(r):
            return "%s/%s" % (v(r, "lat_p50_us"), v(r, "lat_p99_us")) if r else "-"
        ev = "-"
        if x and x.get("evtchn_rx_per_req") is not None:
            ev = "%.2f+%.2f" % (x["evtchn_rx_per_req"], x["evtchn_tx_per_req"])
        host = "-"
        if x and x.get("host_cpu_busy_pct") is not None:
            host = "%.0f / %.1f" % (x["host_cpu_busy_pct"], x["other_cpu_us_per_req"])
        sched = "-"
        if x and x.get("backend_cpu_wait_pct") is not None:
            sched = "%s / %.0f" % (fmt(x.get("backend_cpu_run_pct")), x["backend_cpu_wait_pct"])
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            k[0], k[2], v(f, "iops"), v(x, "iops"), v(q, "iops"),
            ratio(x and x.get("mib_s"), f and f.get("mib_s")),
            ratio(x and x.get("mib_s"), q and q.get("mib_s")),
            shape_ratio(g), v(x, "mib_s", 1), lat(x), lat(q),
            v(x, "backend_cpu_us_per_req", 1), v(q, "backend_cpu_us_per_req", 1),
            v(f, "backend_cpu_us_per_req", 1),
            v(x, "syscalls_per_req", 2), v(q, "syscalls_per_req", 2),
            v(x, "grant_map_calls_per_req", 3), v(x, "grant_copy_calls_per_req", 2), ev,
            v(x, "frontend_cpu_us_per_req", 1), host, sched))
    lines.append("")
    lines.append("host busy %: the whole machine's CPU use in xenblkd's timed phase (100 = every CPU busy); "
                 "other: CPU per request neither xenblkd's nor the load generator's (xenstored, other "
                 "processes on the machine); ran / waited: share of the timed phase xenblkd ran on a CPU / was "
                 "runnable but waited for one (schedstat).  fio at xenblkd's request size: the job's "
                 "I/O split as the guest splits it (44 KiB without indirect descriptors, 128 KiB with "
                 "32 segments), same depth; \"same\" where the limit already has that shape.")
    rss = [r for r in recs if r["backend"] == "xenblkd" and r.get("rss_per_device_kib") is not None]
    if rss:
        lines.append("")
        lines.append("xenblkd RSS growth while serving (KiB per device / per mapped persistent grant): " +
                     ", ".join("%s %s: %.0f / %s" % (r["storage"], r["workload"], r["rss_per_device_kib"],
                                                     fmt(r.get("rss_per_pgrant_kib"), 2)) for r in rss[:6]))
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    short(d, by)
    plots(d, recs)


def short(d, by):
    """results-short.md: the columns the README shows."""
    lines = ["| storage | workload | fio MiB/s | xenblkd MiB/s | qdisk MiB/s | xenblkd/limit "
             "| xenblkd / fio at its request size | xenblkd/qdisk "
             "| xenblkd CPU µs/req | fio CPU µs/req | xenblkd syscalls/req |",
             "|" + "---|" * 11]
    for k in sorted(by):
        g = by[k]
        f, x, q = g.get("fio"), g.get("xenblkd"), g.get("qdisk")

        def v(r, name, nd=0):
            return fmt(r.get(name), nd) if r else "-"
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            k[0], k[2], v(f, "mib_s", 1), v(x, "mib_s", 1), v(q, "mib_s", 1),
            ratio(x and x.get("mib_s"), f and f.get("mib_s")), shape_ratio(g),
            ratio(x and x.get("mib_s"), q and q.get("mib_s")),
            v(x, "backend_cpu_us_per_req", 1), v(f, "backend_cpu_us_per_req", 1),
            v(x, "syscalls_per_req", 2)))
    with open(os.path.join(d, "results-short.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def plots(d, recs):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("benchlib: matplotlib missing (Debian: python3-matplotlib): no plots", file=sys.stderr)
        return
    for storage in sorted({r["storage"] for r in recs}):
        fig, ax = plt.subplots(1, 2, figsize=(11, 4))
        for backend in ("fio", "xenblkd", "qdisk"):
            for rw, style in (("randread", "-o"), ("randwrite", "--s")):
                pts = sorted((r["qd"], r["iops"]) for r in recs
                             if r["storage"] == storage and r["backend"] == backend and r.get("rw") == rw
                             and r.get("bs") == 4096 and r.get("guests") == 1 and r.get("persistent", 1) == 1
                             and r.get("sweep") == "qd")
                if pts:
                    ax[0].plot([p[0] for p in pts], [p[1] for p in pts], style, label="%s %s" % (backend, rw))
            pts = sorted((r["guests"], r["iops"]) for r in recs
                         if r["storage"] == storage and r["backend"] == backend and r.get("sweep") == "guests")
            if pts:
                ax[1].plot([p[0] for p in pts], [p[1] for p in pts], "-o", label=backend)
        ax[0].set_xscale("log", base=2)
        ax[0].set_xlabel("queue depth (4 KiB random, 1 guest)")
        ax[0].set_ylabel("IOPS")
        ax[0].legend(fontsize=7)
        ax[0].set_title("IOPS vs queue depth (%s)" % storage)
        ax[1].set_xlabel("guests (4 KiB random read, QD 32 each)")
        ax[1].set_ylabel("aggregate IOPS")
        ax[1].legend(fontsize=7)
        ax[1].set_title("aggregate IOPS vs guests (%s)" % storage)
        fig.tight_layout()
        fig.savefig(os.path.join(d, "iops-%s.png" % storage), dpi=80)
        plt.close(fig)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = sys.argv[1]
    if cmd == "fio-record":
        fio_record(sys.argv[2], sys.argv[3:])
    elif cmd == "backend-record":
        backend_record(sys.argv[2], sys.argv[3:])
    elif cmd == "sum-stats":
        sum_stats(sys.argv[2], sys.argv[3:])
    elif cmd == "report":
        report(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

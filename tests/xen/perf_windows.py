#!/usr/bin/env python3
"""The same-guest tables of tests/xen/backends.sh (results/perf-table.md).

Usage: perf_windows.py RESULTS_DIR GUEST SECS

Reads what backends.dom0 and the guest (domU-init.sh, bench) left in
RESULTS_DIR and prints Markdown:

1. per timed job each backend's IOPS, mean (lowest-highest) over the
   repetitions, and xenblkd's ratios to each other backend taken
   repetition by repetition (the runs of one repetition are neighbours:
   TCG drifts);
2. the completion latency p50 / p99 of every job (fio's clat percentiles),
   the QD 1 job first;
3. dom0's CPU per guest I/O counted two ways:
   - "own threads": each backend's own threads (blkback's ring threads,
     QEMU, xenblkd) over the guest's life, per I/O the guest issued (the
     figure of earlier runs; blkback's loop device is not in it);
   - "dom0 total per window": all of dom0's busy time (/proc/stat: user,
     nice, system, irq, softirq; not idle, iowait or steal) in the
     intervals where that backend alone was serving a timed job, per I/O
     of those intervals; which backend was busy is read in dom0's own
     clock from counters that move only when that backend serves I/O
     (cpu-raw.txt, see backends.dom0); the guest's run start and end
     (t0, t1 on each XBD-PERF line) only name the interval runs.
     Edges: the first and last interval of each busy run are dropped
     (fio starting or stopping inside them).  dom0's own background (the
     sampler, xenconsoled, the scenario's polling) is measured in the
     intervals of the bench where no disk was busy and shown; the "net"
     table subtracts it.
4. where xenblkd's CPU went: user vs system time, per thread; and its own
   statistics of the devices at the end (xenblkctl stats).
"""
import json
import os
import re
import statistics
import sys

NAMES = {"xvda": "blkback", "xvdd": "blkback-dio", "xvdb": "qdisk", "xvdc": "xenblkd"}
ORDER = ["blkback", "blkback-dio", "qdisk", "xenblkd"]
JOB_ORDER = ["rr4k", "rw4k", "sr1m", "sw1m", "rr4kqd1"]
JOB_TEXT = {"rr4k": "4 KiB random read, QD 16", "rw4k": "4 KiB random write, QD 16",
            "sr1m": "1 MiB sequential read, QD 4", "sw1m": "1 MiB sequential write, QD 4",
            "rr4kqd1": "4 KiB random read, QD 1"}
# An interval is a backend's when its activity counter moved by more than
# this: blkback counts requests; QEMU and xenblkd bytes, where eventfd and
# xenstore reads add a few bytes while idle.
ACT_MIN = {"blkback": 0, "blkback-dio": 0, "qdisk": 32768, "xenblkd": 32768}


def kv(line):
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def guest_lines(res, guest):
    ev = os.path.join(res, guest, "events.txt")
    if os.path.exists(ev):
        with open(ev) as f:
            return [l.rstrip("\n") for l in f]
    # the boot ended before dom0 collected the guest: its console log
    try:
        with open(os.path.join(res, "console", "guest-%s.log" % guest)) as f:
            return [l.replace("\r", "").rstrip("\n") for l in f if l.startswith("XBD-")]
    except OSError:
        return []


def perf_runs(lines):
    runs = []
    for l in lines:
        if not l.startswith("XBD-PERF "):
            continue
        v = kv(l)
        if v.get("disk") not in NAMES:
            continue
        r = {"backend": NAMES[v["disk"]], "disk": v["disk"], "job": v.get("job", "?"),
             "rc": int(v.get("rc", 99)), "iops": int(v.get("iops", 0)),
             "kib": int(v.get("kib_s", 0)), "rep": v.get("rep", "?"),
             "p50": int(v.get("p50_us", -1)), "p99": int(v.get("p99_us", -1))}
        try:
            r["t0"], r["t1"] = float(v["t0"]), float(v["t1"])
        except (KeyError, ValueError):
            r["t0"] = r["t1"] = None
        runs.append(r)
    return runs


def jobs_of(runs):
    seen = {r["job"] for r in runs}
    return [j for j in JOB_ORDER if j in seen] + sorted(seen - set(JOB_ORDER))


def mean_lo_hi(xs, fmt="%.0f"):
    if not xs:
        return "-"
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.mean(xs), min(xs), max(xs))


def iops_table(runs, out):
    ok = [r for r in runs if r["rc"] == 0]
    by = {}
    for r in ok:
        by.setdefault((r["backend"], r["job"]), {})[r["rep"]] = r
    present = [b for b in ORDER if any(k[0] == b for k in by)]
    others = [b for b in present if b != "xenblkd"]
    out.append("| job | " + " | ".join("%s IOPS (low-high)" % b for b in present) + " | " +
               " | ".join("xenblkd / %s" % b for b in others) + " |")
    out.append("|---|" + "---|" * (len(present) + len(others)))
    for j in jobs_of(runs):
        cells = []
        for b in present:
            rs = by.get((b, j), {})
            xs = [r["iops"] for r in rs.values()]
            bad = sum(1 for r in runs if r["backend"] == b and r["job"] == j and r["rc"] != 0)
            c = "%s, %.1f MiB/s" % (mean_lo_hi(xs), statistics.mean(r["kib"] for r in rs.values()) / 1024) if xs else "failed"
            if bad:
                c += " (%d failed)" % bad
            cells.append(c)
        for b in others:
            x, y = by.get(("xenblkd", j), {}), by.get((b, j), {})
            rat = [x[k]["iops"] / y[k]["iops"] for k in x if k in y and y[k]["iops"] > 0]
            cells.append(mean_lo_hi(rat, "%.2f"))
        out.append("| %s | %s |" % (j, " | ".join(cells)))


def latency_table(runs, out):
    ok = [r for r in runs if r["rc"] == 0 and r["p50"] >= 0]
    present = [b for b in ORDER if any(r["backend"] == b for r in ok)]
    if not ok:
        out.append("(no completion-latency figures)")
        return
    out.append("Completion latency (fio clat) p50 / p99 in µs, mean over the repetitions:")
    out.append("")
    out.append("| job | " + " | ".join("%s p50 / p99" % b for b in present) + " |")
    out.append("|---|" + "---|" * len(present))
    jobs = jobs_of(ok)
    if "rr4kqd1" in jobs:
        jobs = ["rr4kqd1"] + [j for j in jobs if j != "rr4kqd1"]
    for j in jobs:
        cells = []
        for b in present:
            rs = [r for r in ok if r["backend"] == b and r["job"] == j]
            cells.append("%.0f / %.0f" % (statistics.mean(r["p50"] for r in rs),
                                          statistics.mean(r["p99"] for r in rs)) if rs else "-")
        out.append("| %s | %s |" % (j, " | ".join(cells)))


def read_samples(path):
    samples = []
    try:
        f = open(path)
    except OSError:
        return samples
    with f:
        for l in f:
            v = kv(l)
            try:
                c = [int(x) for x in v["cpu"].split(",")]
                s = {"w": float(v["w"]), "busy": c[0] + c[1] + c[2] + c[5] + c[6],
                     "irq": c[5] + c[6], "steal": c[7] if len(c) > 7 else 0,
                     "ticks": {k[6:]: int(x) for k, x in v.items() if k.startswith("ticks:")},
                     "act": {k[4:]: int(x) for k, x in v.items() if k.startswith("act:")}}
            except (KeyError, ValueError, IndexError):
                continue  # a line cut short when the sampler was stopped
            samples.append(s)
    return samples


def intervals(samples):
    """One entry per pair of neighbouring samples: its length, dom0's busy
    ticks in it, and which backends served I/O in it."""
    iv = []
    for a, b in zip(samples, samples[1:]):
        busy = [n for n in ORDER if n in a["act"] and n in b["act"]
                and b["act"][n] - a["act"][n] > ACT_MIN[n]]
        iv.append({"t0": a["w"], "t1": b["w"], "dt": b["w"] - a["w"],
                   "busy": b["busy"] - a["busy"], "steal": b["steal"] - a["steal"],
                   "who": busy[0] if len(busy) == 1 else ("none" if not busy else "several")})
    return iv


def busy_runs(iv):
    runs, cur = [], None
    for i, x in enumerate(iv):
        if cur and cur["who"] == x["who"]:
            cur["last"] = i
        else:
            cur = {"who": x["who"], "first": i, "last": i}
            runs.append(cur)
    for r in runs:
        r["t0"], r["t1"] = iv[r["first"]]["t0"], iv[r["last"]]["t1"]
    return [r for r in runs if r["who"] in ORDER]


def match_windows(runs, bruns):
    """Each timed run of the guest -> dom0's busy run of that backend that
    overlaps its window most, after shifting the guest's clock by the
    median offset found by a first, nearest-midpoint pass."""
    timed = [r for r in runs if r["rc"] == 0 and r["t0"] is not None]
    offs = []
    for r in timed:
        cands = [b for b in bruns if b["who"] == r["backend"]]
        if not cands:
            continue
        mid = (r["t0"] + r["t1"]) / 2
        b = min(cands, key=lambda b: abs((b["t0"] + b["t1"]) / 2 - mid))
        offs.append(b["t1"] - r["t1"])
    off = statistics.median(offs) if offs else 0.0
    for r in timed:
        w0, w1 = r["t0"] + off, r["t1"] + off
        best, bo = None, 0.0
        for b in bruns:
            if b["who"] != r["backend"]:
                continue
            o = min(w1, b["t1"]) - max(w0, b["t0"])
            if o > bo:
                best, bo = b, o
        r["brun"] = best
    return off, len(offs)


def cpu_window_tables(runs, res, hz, out):
    samples = read_samples(os.path.join(res, "cpu-raw.txt"))
    if len(samples) < 3:
        out.append("dom0 total per window: no samples (cpu-raw.txt missing or short).")
        return
    iv = intervals(samples)
    bruns = busy_runs(iv)
    off, n = match_windows(runs, bruns)
    used = []
    for r in runs:
        b = r.get("brun")
        if not b:
            continue
        inner = iv[b["first"] + 1:b["last"]]   # edges dropped
        if len(inner) < 2:
            r["brun"] = None
            continue
        r["cpu_s"] = sum(x["busy"] for x in inner) / hz
        r["win_s"] = sum(x["dt"] for x in inner)
        r["ios"] = r["iops"] * r["win_s"]
        used.append(r)
    # dom0's background: intervals of the bench with no disk busy
    if used:
        lo = min(r["brun"]["t0"] for r in used)
        hi = max(r["brun"]["t1"] for r in used)
        idle = [x for x in iv if x["who"] == "none" and x["t0"] >= lo and x["t1"] <= hi]
    else:
        idle = []
    idle_s = sum(x["dt"] for x in idle)
    idle_rate = sum(x["busy"] for x in idle) / hz / idle_s if idle_s else 0.0
    ncpu_hint = max((x["busy"] / hz / x["dt"]) for x in iv if x["dt"] > 0)
    timed = [r for r in runs if r["rc"] == 0]
    out.append("dom0 total per window: %d samples, median spacing %.2f s; %d of %d timed runs matched to a "
               "busy run of their disk (guest clock - dom0 clock: %.2f s, median of %d); dom0 busy with no "
               "disk busy during the bench: %.3f CPUs over %.0f s (subtracted in the net table); highest "
               "busy seen in an interval %.2f CPUs; steal over the sampling %.1f s."
               % (len(samples), statistics.median(x["dt"] for x in iv), len(used), len(timed), -off, n,
                  idle_rate, idle_s, ncpu_hint, sum(x["steal"] for x in iv) / hz))
    out.append("")
    present = [b for b in ORDER if any(r["backend"] == b for r in used)]
    out.append("dom0 busy (CPUs, of its vCPUs) while each backend alone served the job, mean over the repetitions:")
    out.append("")
    out.append("| job | " + " | ".join(present) + " |")
    out.append("|---|" + "---|" * len(present))
    for j in jobs_of(used):
        cells = []
        for b in present:
            rs = [r for r in used if r["backend"] == b and r["job"] == j]
            cells.append("%.2f" % statistics.mean(r["cpu_s"] / r["win_s"] for r in rs) if rs else "-")
        out.append("| %s | %s |" % (j, " | ".join(cells)))
    out.append("")
    for title, net in (("dom0 total CPU µs per I/O, per window (all of dom0's busy time)", False),
                       ("net of dom0's background (busy minus the no-disk rate, per I/O)", True)):
        out.append("%s: mean over the repetitions (lowest-highest); xenblkd / blkback-dio in the last column:" % title)
        out.append("")
        out.append("| job | " + " | ".join(present) + " | xenblkd / blkback-dio |")
        out.append("|---|" + "---|" * (len(present) + 1))
        for j in jobs_of(used) + ["all"]:
            cells, per = [], {}
            for b in present:
                rs = [r for r in used if r["backend"] == b and (j == "all" or r["job"] == j)]
                xs = [((r["cpu_s"] - (idle_rate * r["win_s"] if net else 0)) / r["ios"] * 1e6)
                      for r in rs if r["ios"] > 0]
                if j == "all" and rs:
                    tot = sum(r["cpu_s"] - (idle_rate * r["win_s"] if net else 0) for r in rs)
                    ios = sum(r["ios"] for r in rs)
                    per[b] = tot / ios * 1e6 if ios else None
                    cells.append("%.0f (I/O-weighted)" % per[b] if per[b] is not None else "-")
                else:
                    per[b] = statistics.mean(xs) if xs else None
                    cells.append(mean_lo_hi(xs))
            x, y = per.get("xenblkd"), per.get("blkback-dio")
            cells.append("%.2f" % (x / y) if x and y else "-")
            out.append("| %s | %s |" % (j, " | ".join(cells)))
        out.append("")


def guest_ios(res, guest, disk, runs, secs):
    """I/Os the guest issued to DISK over its life: fio's issued counts of
    the verify plus IOPS x seconds of every timed run."""
    n = 0
    try:
        with open(os.path.join(res, guest, "fio-verify-%s.txt" % disk)) as f:
            for m in re.finditer(r"issued rwts: total=(\d+),(\d+),", f.read()):
                n += int(m.group(1)) + int(m.group(2))
    except OSError:
        pass
    return n + sum(r["iops"] * secs for r in runs if r["disk"] == disk and r["rc"] == 0)


def own_threads_table(runs, res, guest, hz, secs, out):
    samples = read_samples(os.path.join(res, "cpu-raw.txt"))
    out.append("dom0 CPU of each backend's own threads over the guest's life (the earlier runs' figure):")
    out.append("")
    out.append("| backend | own threads' CPU s | guest I/Os (verify + bench) | µs per I/O |")
    out.append("|---|---:|---:|---:|")
    all_ios = 0
    for disk, b in sorted(NAMES.items(), key=lambda kv: ORDER.index(kv[1])):
        ios = guest_ios(res, guest, disk, runs, secs)
        all_ios += ios
        have = [s["ticks"][b] for s in samples if b in s["ticks"]]
        if not have:
            out.append("| %s | not found | %d | - |" % (b, ios))
            continue
        # blkback's threads are born with the connection and serve only
        # this disk: all their time counts
        t = (have[-1] - (0 if b.startswith("blkback") else have[0])) / hz
        out.append("| %s | %.2f | %d | %s |" % (b, t, ios, "%.0f" % (t * 1e6 / ios) if ios else "-"))
    if len(samples) > 1:
        t = (samples[-1]["irq"] - samples[0]["irq"]) / hz
        out.append("| dom0-irq (all disks) | %.2f | %d | %s |" % (t, all_ios, "%.0f" % (t * 1e6 / all_ios) if all_ios else "-"))
    out.append("")
    out.append("blkback: its ring threads (DOMID.DEV-RING) only: the loop device under it (its workers, the "
               "file system, the page cache) is not counted, so this is a lower bound; qdisk: the guest's "
               "QEMU; xenblkd: its process (all threads, the kernel work it enters by system calls included). "
               "dom0-irq: dom0's hard and soft interrupt time (bio completions, event-channel upcalls), not "
               "split by backend.  The per-window table above counts all of dom0 for every backend.")


def xenblkd_where(res, hz, out):
    try:
        with open(os.path.join(res, "xenblkd-threads.txt")) as f:
            lines = f.readlines()
    except OSError:
        return
    proc = next((kv(l) for l in lines if l.startswith("process ")), None)
    thr = [kv(l) for l in lines if l.startswith("thread ")]
    if proc:
        u, s = int(proc["utime"]) / hz, int(proc["stime"]) / hz
        out.append("xenblkd's CPU at the end of the bench: %.2f s user, %.2f s system (%.0f%% system)."
                   % (u, s, 100 * s / (u + s) if u + s else 0))
        out.append("")
    groups = {}
    for v in thr:
        g = re.sub(r"\d+$", "N", v.get("comm", "?"))
        a = groups.setdefault(g, [0, 0, 0])
        a[0] += 1
        a[1] += int(v["utime"])
        a[2] += int(v["stime"])
    if groups:
        out.append("| xenblkd thread | count | user s | system s |")
        out.append("|---|---:|---:|---:|")
        for g, (n, u, s) in sorted(groups.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
            out.append("| %s | %d | %.2f | %.2f |" % (g, n, u / hz, s / hz))
        out.append("")
        out.append("(live threads only: a pool thread that exited is in the process total, not here)")
        out.append("")
    try:
        with open(os.path.join(res, "xenblkctl-stats.json")) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return
    tot = {}

    def add(prefix, o):
        for k, x in o.items():
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                tot[prefix + k] = tot.get(prefix + k, 0) + x
    for d in st.get("devices", []):
        for ring in d.get("rings", []):
            for grp in ("requests", "engine", "grant_copy", "persistent_grants", "evtchn"):
                if isinstance(ring.get(grp), dict):
                    add(grp + ".", ring[grp])
    if tot:
        out.append("xenblkctl stats at the end (xvdc, all queues): " +
                   ", ".join("%s=%d" % (k, v) for k, v in sorted(tot.items())))


def clocksource_line(res):
    """dom0's clock source at the scenario's start and end (dom0-init.sh):
    every clock read of a user-space backend is a system call through Xen
    unless it is `tsc` (the vDSO)."""
    try:
        seen = dict(l.split(None, 1) for l in open(os.path.join(res, "dom0-clocksource.txt"))
                    if len(l.split(None, 1)) == 2)
    except OSError:
        return "dom0 clocksource: not recorded."
    start, end = seen.get("start", "?").strip(), seen.get("end", "?").strip()
    how = "clock reads in the vDSO" if start == end == "tsc" else \
        "user-space clock reads are system calls through Xen for at least part of the run"
    return "dom0 clocksource at the scenario's start / end: %s / %s (%s)." % (start, end, how)


def main():
    res, guest, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    try:
        hz = int(open(os.path.join(res, "clk-tck.txt")).read().strip())
    except (OSError, ValueError):
        hz = 100
    runs = perf_runs(guest_lines(res, guest))
    reps = len({r["rep"] for r in runs})
    out = ["Same guest (%s), backends alternated job by job, %d repetitions of %g s; TCG, so compare "
           "ratios, not absolute numbers.  blkback: xl's default for a file (a loop device through dom0's "
           "page cache); blkback-dio: the same on a direct-I/O loop device (results/cache-modes.txt)." % (guest, reps, secs), ""]
    out += [clocksource_line(res), ""]
    iops_table(runs, out)
    out.append("")
    latency_table(runs, out)
    out.append("")
    cpu_window_tables(runs, res, hz, out)
    own_threads_table(runs, res, guest, hz, secs, out)
    out.append("")
    xenblkd_where(res, hz, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()

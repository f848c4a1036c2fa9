#!/usr/bin/env python3
"""Where dom0's CPU goes per I/O, per backend and job: the host side of the
profile mode of tests/xen/backends.sh (XENBLKD_XEN_PROFILE=1).

Usage: perf_profile.py RESULTS_DIR GUEST SECS

Reads results/profile/ (dom0-profile.sh: perf.data recorded with
`perf record -a -g -e cpu-clock -k CLOCK_REALTIME`, perf's build-id cache,
kallsyms, counters.txt, strace-*.txt) and the files perf_windows.py reads,
and writes into results/profile/:

  summary.md            the tables (also printed on stdout)
  top-BACKEND-JOB.txt   per backend and job: the top 30 symbols (self time,
                        kernel and user) and the callers of the top 5
  samples-by-window.txt which perf samples fell into which window

The windows are perf_windows.py's: the intervals, in dom0's clock, in which
one backend alone served a timed job (its first and last interval dropped),
matched to the guest's runs.  The repetition strace ran in is left out.
perf's samples carry CLOCK_REALTIME timestamps, the sampler's w= is dom0's
EPOCHREALTIME: the same clock.  Each sample stands for 1/F s of one vCPU.
"""
import collections
import os
import re
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_windows as pw  # noqa: E402

# Where a kernel stack says the work came from, looked for from the leaf
# up: the first match names the sample's context.
CONTEXTS = [
    (re.compile(r"^(xen_evtchn_do_upcall|__xen_evtchn_do_upcall|xen_pv_evtchn_do_upcall|"
                r"exc_xen_hypervisor_callback|asm_exc_xen_hypervisor_callback)$"), "irq: event-channel upcall"),
    (re.compile(r"^(__do_softirq|handle_softirqs|do_softirq)$"), "softirq"),
    (re.compile(r"^(asm_)?sysvec_"), "irq: other"),
    (re.compile(r"^(asm_)?exc_page_fault$"), "page fault"),
]
# System calls: the sys_* wrappers are often inlined into do_syscall_64, so
# a call is named by the kernel function just below the entry and the
# user-space function that made it (the libc or libaio wrapper).
SYSCALL_ENTRY = re.compile(r"^(do_syscall_64|entry_SYSCALL_64\w*|xen_entry_SYSCALL_64\w*|x64_sys_call)$")


def syscall_name(frames, i):
    below = [s for s, _ in frames[:i] if not SYSCALL_ENTRY.match(s)]
    k = re.sub(r"^(__x64_sys_|__ia32_sys_|__do_sys_|__se_sys_|ksys_|do_sys_|__sys_)", "", below[-1]) if below else "entry/exit"
    user = next((s for s, d in frames[i:] if not is_kernel(d)), "?")
    return "syscall %s (%s)" % (k, user)


# Idle: the vCPU halted (a PV vCPU blocks in Xen: the leaf is then the
# hypercall page under xen_safe_halt).  Interrupt work that runs on the idle
# task's stack is not idle: its leaf is elsewhere.
IDLE = re.compile(r"^(xen_safe_halt|pv_native_safe_halt|native_safe_halt|arch_safe_halt|default_idle|"
                  r"default_idle_call|cpuidle_idle_call|do_idle|cpu_startup_entry)$")
HYPERCALL = re.compile(r"^(hypercall_page|xen_hypercall_\w+|__xen_hypercall\w*)$")

# Mechanisms the brief asks about: a sample counts for each one whose
# function appears anywhere in its kernel stack (they overlap), or, for
# "in Xen", whose leaf is the hypercall page (the vCPU came back from Xen
# there: the time Xen spent on the hypercall lands on that address).
MECHANISMS = [
    ("in Xen (leaf: hypercall page)", "leaf", HYPERCALL),
    ("GUP: pinning user pages (O_DIRECT)", "any", re.compile(
        r"^(__get_user_pages|get_user_pages\w*|pin_user_pages\w*|internal_get_user_pages_fast|"
        r"lockless_pages_from_mm|gup_\w+|__gup_longterm_locked|follow_page_mask|"
        r"iov_iter_get_pages\w*|bio_iov_iter_get_pages\w*|__bio_iov_iter_get_pages)$")),
    ("gntdev (map, unmap, notify)", "any", re.compile(r"^gntdev_\w+|^gnttab_\w+")),
    ("evtchn device (read, write, ioctl)", "any", re.compile(r"^evtchn_(read|write|ioctl|bind\w*|unmask\w*|interrupt)$")),
    ("epoll", "any", re.compile(r"^(do_epoll_wait|ep_poll|ep_\w+|__x64_sys_epoll_\w+)$")),
    ("eventfd", "any", re.compile(r"^eventfd_\w+")),
    ("aio (io_submit, completions)", "any", re.compile(r"^(aio_\w+|io_submit_one|__x64_sys_io_\w+|__do_sys_io_\w+)$")),
    ("scheduler: switches and wake-ups", "any", re.compile(
        r"^(__schedule|schedule|finish_task_switch\S*|try_to_wake_up|__switch_to\w*|xen_end_context_switch|"
        r"ttwu_\w+|pick_next_task\w*|dequeue_task\w*|enqueue_task\w*)$")),
    ("PV page tables / TLB", "any", re.compile(
        r"^(xen_set_pte\w*|xen_ptep_\w+|xen_pte_\w+|xen_mmu_\w+|xen_flush_tlb\w*|xen_pgd_\w+|"
        r"xen_set_pmd\w*|flush_tlb_\w+|zap_pte_range|unmap_page_range|apply_to_page_range|"
        r"xen_mc_flush|xen_alloc_pte\w*)$")),
    ("block layer + loop + ext4 + iomap", "any", re.compile(
        r"^(blk_mq_\w+|submit_bio\w*|loop_\w+|lo_rw_aio|ext4_\w+|iomap_\w+|__blockdev_direct_IO)$")),
    ("kernel blkback", "any", re.compile(r"^(xen_blkbk_\w+|xen_blkif_\w+|dispatch_rw_block_io|__do_block_io_op|do_block_io_op)$")),
    ("copies (copy_user, memcpy)", "leaf", re.compile(r"^(copy_user\w*|rep_movs\w*|memcpy\w*|__memcpy\w*|copy_page\w*|memmove\w*)$")),
]


def owner(comm):
    """Whose thread a sample ran in (perf's comm is the thread's name)."""
    if comm == "xenblkd" or comm.startswith("xbd-"):
        return "xenblkd"
    if re.match(r"^\d+\.xvd[a-z]-\d+$", comm):
        return "blkback ring thread"
    if comm.startswith("qemu-system"):
        return "qemu"
    if comm.startswith("loop") or "loop" in comm and comm.startswith("kworker"):
        return "loop worker"
    if comm.startswith("kworker"):
        return "kworker"
    if comm.startswith("ksoftirqd"):
        return "ksoftirqd"
    if comm == "perf":
        return "perf (the profiler)"
    if comm in ("swapper",):
        return "idle task"
    return "other: " + comm


def is_kernel(dso):
    return dso.startswith("[kernel") or dso.endswith(".ko") or dso.endswith(".ko.xz") or dso == "[unknown]"


def context(frames):
    """frames: [(sym, dso)] from the leaf.  The sample's context."""
    if not frames:
        return "unknown"
    if not is_kernel(frames[0][1]):
        return "user: " + os.path.basename(frames[0][1])
    for i, (sym, dso) in enumerate(frames):
        if not is_kernel(dso):
            break
        if SYSCALL_ENTRY.match(sym):
            return syscall_name(frames, i)
        for rx, name in CONTEXTS:
            if rx.match(sym):
                return name
        if sym == "kthread":
            below = [s for s, _ in frames[:i]]
            if "process_one_work" in below:
                j = below.index("process_one_work")
                return "kworker: " + (below[j - 1] if j > 0 else "?")
            return "kthread: " + (below[-1] if below else "?")
    return "kernel: other (" + frames[0][0] + ")"


def parse_script(lines):
    """perf script -F comm,pid,tid,time,ip,sym,dso: (comm, time, frames)."""
    head = re.compile(r"^(\S.*?)\s+(\d+)/(\d+)\s+(\d+\.\d+):")
    frame = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$")
    cur = None
    for l in lines:
        l = l.rstrip("\n")
        if not l.strip():
            if cur:
                yield cur
            cur = None
            continue
        m = head.match(l)
        if m:
            if cur:
                yield cur
            cur = (m.group(1), float(m.group(4)), [])
            continue
        m = frame.match(l)
        if m and cur:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            cur[2].append((sym, m.group(2)))
    if cur:
        yield cur


def windows(res, guest, skip_rep):
    runs = pw.perf_runs(pw.guest_lines(res, guest))
    samples = pw.read_samples(os.path.join(res, "cpu-raw.txt"))
    if len(samples) < 3:
        return runs, []
    iv = pw.intervals(samples)
    pw.match_windows(runs, pw.busy_runs(iv))
    wins = []
    for r in runs:
        b = r.get("brun")
        if not b or r["rep"] == skip_rep:
            continue
        inner = iv[b["first"] + 1:b["last"]]
        if len(inner) < 2:
            continue
        w = {"backend": r["backend"], "job": r["job"], "rep": r["rep"], "t0": inner[0]["t0"],
             "t1": inner[-1]["t1"], "iops": r["iops"]}
        w["ios"] = w["iops"] * (w["t1"] - w["t0"])
        wins.append(w)
    return runs, sorted(wins, key=lambda w: w["t0"])


class Acc:
    """What the samples of one (backend, job) add up to."""

    def __init__(self):
        self.n = self.busy = 0
        self.owner = collections.Counter()
        self.ctx = collections.Counter()
        self.ctx_of = collections.defaultdict(collections.Counter)  # owner -> contexts
        self.mech = collections.Counter()
        self.self_sym = collections.Counter()
        self.callers = collections.defaultdict(collections.Counter)

    def add(self, comm, frames):
        self.n += 1
        syms = [s for s, _ in frames]
        first = next((s for s in syms if not HYPERCALL.match(s)), "")
        if IDLE.match(first):
            return
        self.busy += 1
        o = owner(comm)
        c = context(frames)
        self.owner[o] += 1
        self.ctx[c] += 1
        self.ctx_of[o][c] += 1
        kern = [s for s, d in frames if is_kernel(d)]
        for name, where, rx in MECHANISMS:
            if (where == "leaf" and syms and rx.match(syms[0])) or \
               (where == "any" and any(rx.match(s) for s in kern)):
                self.mech[name] += 1
        if frames:
            leaf = "%s [%s]" % (frames[0][0], os.path.basename(frames[0][1]))
            self.self_sym[leaf] += 1
            self.callers[leaf][" <- ".join(syms[1:7])] += 1


def load(res, prof, freq, wins):
    bid = os.path.join(prof, "buildid")
    tgz = os.path.join(prof, "buildid-cache.tgz")
    if not os.path.isdir(bid) and os.path.exists(tgz):
        with tarfile.open(tgz) as t:
            t.extractall(bid)
    cmd = ["perf", "--buildid-dir", os.path.join(bid, ".debug"), "script", "-i", os.path.join(prof, "perf.data"),
           "-F", "comm,pid,tid,time,ip,sym,dso", "--kallsyms", os.path.join(prof, "kallsyms"),
           "--time", "%.6f,%.6f" % (wins[0]["t0"], wins[-1]["t1"])]
    accs = collections.defaultdict(Acc)
    seen = collections.Counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(prof, "perf-script.err"), "w"),
                         text=True, errors="replace")
    i = 0
    for comm, t, frames in parse_script(p.stdout):
        while i < len(wins) and wins[i]["t1"] <= t:
            i += 1
        if i < len(wins) and wins[i]["t0"] <= t:
            w = wins[i]
            accs[(w["backend"], w["job"])].add(comm, frames)
            seen[(w["backend"], w["job"], w["rep"])] += 1
    p.wait()
    return accs, seen


def us_per_io(n, freq, ios):
    return n / freq / ios * 1e6 if ios else 0.0


def tables(accs, wins, freq, out):
    jobs = pw.jobs_of([{"job": w["job"]} for w in wins])
    present = [b for b in pw.ORDER if any(w["backend"] == b for w in wins)]
    ios = collections.Counter()
    secs = collections.Counter()
    for w in wins:
        ios[(w["backend"], w["job"])] += w["ios"]
        secs[(w["backend"], w["job"])] += w["t1"] - w["t0"]
    out.append("### dom0 CPU per I/O (all of dom0, busy samples in the windows; µs)")
    out.append("")
    out.append("| job | " + " | ".join(present) + " | xenblkd / blkback-dio |")
    out.append("|---|" + "---:|" * (len(present) + 1))
    for j in jobs:
        v = {b: us_per_io(accs[(b, j)].busy, freq, ios[(b, j)]) for b in present}
        cells = ["%.0f (%d samples, %.1f s, %.0f I/Os)" % (v[b], accs[(b, j)].busy, secs[(b, j)], ios[(b, j)])
                 for b in present]
        x, y = v.get("xenblkd"), v.get("blkback-dio")
        cells.append("%.2f" % (x / y) if x and y else "-")
        out.append("| %s | %s |" % (j, " | ".join(cells)))
    out.append("")
    for b in present:
        out.append("### %s: µs of dom0 CPU per I/O by thread and by context" % b)
        out.append("")
        rows = collections.Counter()
        for j in jobs:
            for o, by in accs[(b, j)].ctx_of.items():
                for c, n in by.items():
                    rows[(o, c)] += n
        top = [k for k, _ in rows.most_common(14)]
        out.append("| thread | context | " + " | ".join(jobs) + " |")
        out.append("|---|---|" + "---:|" * len(jobs))
        for o, c in top:
            out.append("| %s | %s | %s |" % (o, c, " | ".join(
                "%.0f" % us_per_io(accs[(b, j)].ctx_of[o][c], freq, ios[(b, j)]) for j in jobs)))
        rest = ["%.0f" % us_per_io(accs[(b, j)].busy - sum(accs[(b, j)].ctx_of[o][c] for o, c in top), freq,
                                   ios[(b, j)]) for j in jobs]
        out.append("| (the rest) | | %s |" % " | ".join(rest))
        out.append("| **all of dom0** | | %s |" % " | ".join(
            "**%.0f**" % us_per_io(accs[(b, j)].busy, freq, ios[(b, j)]) for j in jobs))
        out.append("")
    out.append("### Mechanisms: µs per I/O of the busy samples whose kernel stack holds them (they overlap)")
    out.append("")
    for j in jobs:
        out.append("%s (%s):" % (j, pw.JOB_TEXT.get(j, j)))
        out.append("")
        out.append("| mechanism | " + " | ".join(present) + " |")
        out.append("|---|" + "---:|" * len(present))
        for name, _, _ in MECHANISMS:
            out.append("| %s | %s |" % (name, " | ".join(
                "%.0f" % us_per_io(accs[(b, j)].mech[name], freq, ios[(b, j)]) for b in present)))
        out.append("")


def top_files(accs, prof, freq, wins):
    ios = collections.Counter()
    for w in wins:
        ios[(w["backend"], w["job"])] += w["ios"]
    for (b, j), a in sorted(accs.items()):
        lines = ["%s, job %s: %d samples in the windows, %d busy (not idle), %.0f I/Os; %d Hz"
                 % (b, j, a.n, a.busy, ios[(b, j)], freq), "",
                 "Top 30 symbols, self (the leaf of the sample), share of the busy samples, µs per I/O:"]
        for s, n in a.self_sym.most_common(30):
            lines.append("  %6.2f%%  %6.1f µs  %s" % (100.0 * n / a.busy, us_per_io(n, freq, ios[(b, j)]), s))
        lines += ["", "Threads (share of busy):"]
        for o, n in a.owner.most_common():
            lines.append("  %6.2f%%  %s" % (100.0 * n / a.busy, o))
        lines += ["", "Contexts (share of busy):"]
        for c, n in a.ctx.most_common(25):
            lines.append("  %6.2f%%  %s" % (100.0 * n / a.busy, c))
        lines += ["", "Callers of the top 5 symbols (the 4 commonest stacks above each, 6 frames):"]
        for s, n in a.self_sym.most_common(5):
            lines.append("  %s  (%d samples)" % (s, n))
            for chain, m in a.callers[s].most_common(4):
                lines.append("      %5d  <- %s" % (m, chain))
        with open(os.path.join(prof, "top-%s-%s.txt" % (b, j)), "w") as f:
            f.write("\n".join(lines) + "\n")


def strace_table(res, guest, secs, prof, rep, out):
    runs = [r for r in pw.perf_runs(pw.guest_lines(res, guest)) if r["disk"] == "xvdc" and r["rep"] == rep]
    per = {}
    for r in runs:
        path = os.path.join(prof, "strace-%s.txt" % r["job"])
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        ios = r["iops"] * secs
        calls = {}
        for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", text, re.M):
            if m.group(2) != "total":
                calls[m.group(2)] = int(m.group(1))
        per[r["job"]] = (ios, r["iops"], calls)
    if not per:
        out.append("(no strace -c figures)")
        return
    jobs = [j for j in pw.JOB_ORDER if j in per]
    names = sorted({n for _, _, c in per.values() for n in c}, key=lambda n: -sum(per[j][2].get(n, 0) for j in jobs))
    out.append("### xenblkd's system calls per I/O (strace -c -f, repetition %s; strace slows it: IOPS shown)" % rep)
    out.append("")
    out.append("| system call | " + " | ".join("%s (%d IOPS)" % (j, per[j][1]) for j in jobs) + " |")
    out.append("|---|" + "---:|" * len(jobs))
    for n in names:
        out.append("| %s | %s |" % (n, " | ".join(
            "%.2f" % (per[j][2].get(n, 0) / per[j][0]) if per[j][0] else "-" for j in jobs)))
    out.append("| **all** | %s |" % " | ".join(
        "**%.2f**" % (sum(per[j][2].values()) / per[j][0]) if per[j][0] else "-" for j in jobs))
    out.append("")


def counters_table(res, guest, secs, prof, rep, out):
    """Deltas of the rep-REP snapshots (dom0-profile.sh, prof_snap) over
    each run, per I/O: the snapshot after the run before it to its own."""
    try:
        with open(os.path.join(prof, "counters.txt")) as f:
            text = f.read()
    except OSError:
        return
    snaps = []
    for block in text.split("SNAP ")[1:]:
        lines = block.splitlines()
        v = pw.kv(lines[0])
        c = collections.Counter()
        for l in lines[1:]:
            f = l.split()
            if not f:
                continue
            if f[0] in ("ctxt", "intr"):
                c[f[0]] = int(f[1])
            elif f[0] == "interrupts" and len(f) > 3 and f[1].rstrip(":").isdigit():
                nums = [int(x) for x in f[2:] if x.isdigit()]
                c["irq " + f[-1]] += sum(nums)
            elif f[0] == "task":
                kvs = pw.kv(l)
                c["xenblkd voluntary switches"] += int(kvs.get("voluntary_ctxt_switches", 0))
                c["xenblkd involuntary switches"] += int(kvs.get("nonvoluntary_ctxt_switches", 0))
            elif f[0].startswith("syscr"):
                kvs = dict(zip(f[::2], f[1::2]))
                c["xenblkd read+write calls"] = int(kvs.get("syscr:", 0)) + int(kvs.get("syscw:", 0))
            elif f[0] == "kthread":
                kvs = pw.kv(l)
                c["blkback threads' switches (%s)" % f[1].split(".")[1][:4]] += \
                    int(kvs.get("voluntary_ctxt_switches", 0)) + int(kvs.get("nonvoluntary_ctxt_switches", 0))
        snaps.append((v, c))
    runs = {(r["disk"], r["job"]): r for r in pw.perf_runs(pw.guest_lines(res, guest)) if r["rep"] == rep}
    cols = []
    for (va, a), (vb, b) in zip(snaps, snaps[1:]):
        r = runs.get((vb.get("disk"), vb.get("job")))
        if not r or not r["iops"]:
            continue
        ios = r["iops"] * secs
        cols.append(("%s %s" % (r["backend"], r["job"]), {k: (b[k] - a[k]) / ios for k in b}))
    if not cols:
        return
    keys = ["ctxt", "intr", "xenblkd voluntary switches", "xenblkd involuntary switches", "xenblkd read+write calls"]
    irqs = collections.Counter()
    for _, d in cols:
        for k, x in d.items():
            if k.startswith("irq ") or k.startswith("blkback"):
                irqs[k] = max(irqs[k], x)
    keys += [k for k, x in irqs.most_common(12) if x >= 0.05]
    out.append("### Counters per I/O over each run of repetition %s (snapshots at the run boundaries; the run's "
               "fio start-up included: upper bounds)" % rep)
    out.append("")
    out.append("| counter | " + " | ".join(c for c, _ in cols) + " |")
    out.append("|---|" + "---:|" * len(cols))
    for k in keys:
        out.append("| %s | %s |" % (k, " | ".join("%.2f" % d.get(k, 0) for _, d in cols)))
    out.append("")


def main():
    res, guest, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    prof = os.path.join(res, "profile")
    freq = 250
    try:
        with open(os.path.join(res, "events.txt")) as f:
            for l in f:
                m = re.search(r"cpu-clock at (\d+) Hz", l)
                if m:
                    freq = int(m.group(1))
    except OSError:
        pass
    runs = pw.perf_runs(pw.guest_lines(res, guest))
    reps = sorted({r["rep"] for r in runs})
    strace_rep = reps[-1] if reps and any(n.startswith("strace-") for n in os.listdir(prof)) else None
    out = ["## Profile of dom0 per backend and job (tests/xen/backends.sh, XENBLKD_XEN_PROFILE=1)", "",
           "perf record -a -g -e cpu-clock at %d Hz in dom0 (PV, under TCG: no PMU; a sample is 1/%d s of a "
           "vCPU, time Xen spends on a hypercall lands on the hypercall page); windows: where one backend alone "
           "served a timed job (perf_windows.py), repetition %s left out (strace ran in it).  µs per I/O = "
           "samples / %d Hz / the guest's I/Os in the windows.  TCG: compare backends, not absolutes."
           % (freq, freq, strace_rep or "none", freq), ""]
    wins = []
    if os.path.exists(os.path.join(prof, "perf.data")):
        runs, wins = windows(res, guest, strace_rep)
    if wins:
        accs, seen = load(res, prof, freq, wins)
        with open(os.path.join(prof, "samples-by-window.txt"), "w") as f:
            for w in wins:
                f.write("%s %s rep=%s %.3f-%.3f %.1f s %d samples\n" % (
                    w["backend"], w["job"], w["rep"], w["t0"], w["t1"], w["t1"] - w["t0"],
                    seen[(w["backend"], w["job"], w["rep"])]))
        if accs:
            tables(accs, wins, freq, out)
            top_files(accs, prof, freq, wins)
        else:
            out.append("(no perf sample fell into a window: see profile/perf-script.err)")
    else:
        out.append("(no perf recording or no matched window)")
    out.append("")
    if strace_rep:
        strace_table(res, guest, secs, prof, strace_rep, out)
    counters_table(res, guest, secs, prof, "2", out)
    text = "\n".join(out) + "\n"
    with open(os.path.join(prof, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()

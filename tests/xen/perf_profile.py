#!/usr/bin/env python3
"""Where dom0's CPU goes per I/O, per backend and job: the host side of the
profile mode of tests/xen/backends.sh (XENBLKD_XEN_PROFILE=1).

Usage: perf_profile.py RESULTS_DIR GUEST SECS

Reads results/profile/ (dom0-profile.sh: perf.data recorded with
`perf record -a -g -e cpu-clock -k CLOCK_REALTIME`, perf's build-id cache,
kallsyms, counters.txt, pstat-*.txt, strace-*.txt) and the files
perf_windows.py reads,
and writes into results/profile/:

  summary.md            the tables (also printed on stdout)
  top-BACKEND-JOB.txt   per backend and job: the top 30 symbols (self time,
                        kernel and user) and the callers of the top 5
  samples-by-window.txt which perf samples fell into which window

summary.md: dom0's CPU per I/O per backend and job (own threads, kernel
and others, the test's harness; net without the harness), by thread and
context (system call named by its user-space wrapper, interrupt, kernel
thread), the mechanisms (GUP, gntdev, epoll, aio, ...), xenblkd's system
calls per I/O (perf stat on the tracepoints, and strace -c) and the
counters per I/O (context switches, interrupts per event channel).

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
IRQ_ON_MECH = "of which: taken at an interrupt re-enable (time with interrupts off before it)"
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


HARNESS = {"bash", "sh", "tr", "grep", "sed", "cat", "date", "sleep", "tail", "perf", "strace", "ps", "awk",
           "xl", "xenstore-read", "xenstore-ls", "xenstore-write", "losetup", "pgrep", "timeout", "cut"}


def owner(comm):
    """Whose thread a sample ran in (perf's comm is the thread's name)."""
    if comm == "xenblkd" or comm.startswith("xbd-"):
        return "xenblkd"
    if re.match(r"^\d+\.xvd[a-z]-\d+$", comm):
        return "blkback ring thread"
    if comm.startswith("qemu-system") or comm.startswith("xen-qemu-syste"):
        return "qemu"
    if comm.startswith("kworker") or comm.startswith("loop"):
        return "kworker"
    if comm == "swapper":
        return "idle task (interrupts)"
    if comm in HARNESS:
        return "harness: " + comm
    return "other: " + comm


# The groups of the first table: the backend's own threads, what the
# kernel does for it elsewhere (workers, interrupts, the block layer under
# a loop device) with dom0's other daemons, and the test's harness (the
# 0.5 s sampler of backends.dom0, the scenario shell, perf itself, the
# counters' snapshots), whose cost per second does not depend on the
# backend: it is left out of the "net" figure.
def group(o):
    if o in ("xenblkd", "blkback ring thread", "qemu"):
        return "own threads"
    if o.startswith("harness: "):
        return "harness"
    return "kernel and others"


USER_DSO = ("[vdso]", "[vsyscall]", "[unknown]", "[heap]", "[stack]")


def is_kernel(dso):
    return (dso.startswith("[") and dso not in USER_DSO) or dso.endswith(".ko") or dso.endswith(".ko.xz")


# A PV vCPU takes its timer interrupt, and so perf's sample, only when it
# re-enables event delivery: time spent with interrupts off, and Xen's
# handling of the pending event, land on the hypercall that
# xen_irq_enable's check_events makes (xen_force_evtchn_callback).  The
# function that re-enabled them says where that time was spent.
IRQ_ON = {"xen_hypercall_pv", "hypercall_page", "xen_force_evtchn_callback", "check_events",
          "xen_irq_enable_direct", "xen_restore_fl_direct", "xen_irq_enable", "xen_restore_fl",
          "arch_local_irq_enable", "arch_local_irq_restore", "_raw_spin_unlock_irqrestore",
          "_raw_spin_unlock_irq"}


def irq_on_point(frames):
    syms = [s for s, _ in frames]
    if len(syms) < 2 or not HYPERCALL.match(syms[0]) or syms[1] != "xen_force_evtchn_callback":
        return None
    return next((s for s in syms if s not in IRQ_ON), "?")


def wrapper(sym):
    """The user-space function that made a system call, tidied."""
    sym = re.sub(r"@.*$", "", sym)
    sym = re.sub(r"^(__GI___|__GI_|__libc_|__)", "", sym)
    return {"vdso_clock_gettime": "clock_gettime (vDSO fell back to the system call)",
            "fcntl64_nocancel_adjusted": "fcntl"}.get(sym, sym)


def syscall_name(frames, i):
    """(context, phase) of a sample in a system call: the call named by the
    user-space wrapper (libaio's io_submit is the generic `syscall`: then by
    the kernel function under the entry); phase entry, exit or body."""
    below = [s for s, _ in frames[:i] if not SYSCALL_ENTRY.match(s)]
    k = re.sub(r"^(__x64_sys_|__ia32_sys_|__do_sys_|__se_sys_|ksys_|do_sys_|__sys_)", "", below[-1]) if below else ""
    user = wrapper(next((s for s, d in frames[i:] if not is_kernel(d)), "?"))
    if user in ("syscall", "?", "[unknown]") and k:
        user = k
    if "syscall_enter_from_user_mode" in below:
        phase = "entry"
    elif any(x in below for x in ("syscall_exit_to_user_mode", "exit_to_user_mode_prepare",
                                  "exit_to_user_mode_loop", "syscall_exit_to_user_mode_prepare")):
        phase = "exit"
    else:
        phase = "body"
    return "syscall " + user, phase


def context(frames):
    """frames: [(sym, dso)] from the leaf.  (context, syscall phase or None)."""
    if not frames:
        return "unknown", None
    if not is_kernel(frames[0][1]):
        return "user: " + os.path.basename(frames[0][1]), None
    for i, (sym, dso) in enumerate(frames):
        if not is_kernel(dso):
            break
        if SYSCALL_ENTRY.match(sym):
            return syscall_name(frames, i)
        for rx, name in CONTEXTS:
            if rx.match(sym):
                return name, None
        if sym == "kthread":
            below = [s for s, _ in frames[:i]]
            if "process_one_work" in below:
                j = below.index("process_one_work")
                return "kworker: " + (below[j - 1] if j > 0 else "?"), None
            return "kthread: " + (below[-1] if below else "?"), None
    return "kernel: other (" + frames[0][0] + ")", None


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
        self.group = collections.Counter()
        self.ctx = collections.Counter()
        self.ctx_of = collections.defaultdict(collections.Counter)  # owner -> contexts
        self.phase = collections.defaultdict(collections.Counter)   # owner -> entry/exit/body
        self.irq_on = collections.defaultdict(collections.Counter)  # owner -> re-enabling function
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
        c, ph = context(frames)
        self.owner[o] += 1
        self.group[group(o)] += 1
        self.ctx[c] += 1
        self.ctx_of[o][c] += 1
        if ph:
            self.phase[o][ph] += 1
        on = irq_on_point(frames)
        if on:
            self.irq_on[o][on] += 1
            self.mech[IRQ_ON_MECH] += 1
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

    def u(n, b, j):
        return us_per_io(n, freq, ios[(b, j)])

    def net(b, j):
        a = accs[(b, j)]
        return u(a.busy - a.group["harness"], b, j)

    out.append("### dom0 CPU per I/O, µs: all of dom0 = the backend's own threads + kernel and others "
               "(workers, interrupts, daemons) + the test's harness; net = without the harness")
    out.append("")
    out.append("| job | " + " | ".join("%s all (own + kernel + harness)" % b for b in present) + " | " +
               " | ".join("%s net" % b for b in present) + " | xenblkd / blkback-dio, net |")
    out.append("|---|" + "---:|" * (2 * len(present) + 1))
    for j in jobs:
        cells = []
        for b in present:
            a = accs[(b, j)]
            cells.append("%.0f (%.0f + %.0f + %.0f)" % (u(a.busy, b, j), u(a.group["own threads"], b, j),
                                                        u(a.group["kernel and others"], b, j),
                                                        u(a.group["harness"], b, j)))
        cells += ["%.0f" % net(b, j) for b in present]
        x, y = (net("xenblkd", j) if "xenblkd" in present else 0), (net("blkback-dio", j) if "blkback-dio" in present else 0)
        cells.append("%.2f" % (x / y) if x and y else "-")
        out.append("| %s | %s |" % (j, " | ".join(cells)))
    out.append("")
    out.append("Samples (busy, in the windows), window seconds and the guest's I/Os in them: " + "; ".join(
        "%s %s %d, %.1f s, %.0f" % (b, j, accs[(b, j)].busy, secs[(b, j)], ios[(b, j)]) for b in present for j in jobs))
    out.append("")
    for b in present:
        out.append("### %s: µs of dom0 CPU per I/O by thread and context (the harness apart)" % b)
        out.append("")
        rows = collections.Counter()
        for j in jobs:
            for o, by in accs[(b, j)].ctx_of.items():
                if group(o) == "harness":
                    continue
                for c, n in by.items():
                    rows[(o, c)] += n
        top = [k for k, _ in rows.most_common(16)]
        out.append("| thread | context | " + " | ".join(jobs) + " |")
        out.append("|---|---|" + "---:|" * len(jobs))
        for o, c in top:
            out.append("| %s | %s | %s |" % (o, c, " | ".join(
                "%.0f" % u(accs[(b, j)].ctx_of[o][c], b, j) for j in jobs)))
        rest = ["%.0f" % u(accs[(b, j)].busy - accs[(b, j)].group["harness"] -
                           sum(accs[(b, j)].ctx_of[o][c] for o, c in top), b, j) for j in jobs]
        out.append("| (the rest but the harness) | | %s |" % " | ".join(rest))
        out.append("| **net** | | %s |" % " | ".join("**%.0f**" % net(b, j) for j in jobs))
        out.append("| harness | | %s |" % " | ".join("%.0f" % u(accs[(b, j)].group["harness"], b, j) for j in jobs))
        out.append("")
        own = {"xenblkd": ["xenblkd"], "blkback": ["blkback ring thread", "kworker"],
               "blkback-dio": ["blkback ring thread", "kworker"], "qdisk": ["qemu"]}.get(b, [])
        for o in own:
            ph = collections.Counter()
            on = collections.Counter()
            for j in jobs:
                ph.update(accs[(b, j)].phase[o])
                on.update(accs[(b, j)].irq_on[o])
            allo = sum(accs[(b, j)].owner[o] for j in jobs)
            if not allo:
                continue
            line = "%s (%s): %d samples" % (b, o, allo)
            if sum(ph.values()):
                line += "; in system calls %.0f%% (entry %.0f%%, body %.0f%%, exit %.0f%% of those)" % (
                    100.0 * sum(ph.values()) / allo, *(100.0 * ph[k] / sum(ph.values()) for k in ("entry", "body", "exit")))
            if on:
                line += "; taken at an interrupt re-enable %.0f%%, in: %s" % (
                    100.0 * sum(on.values()) / allo,
                    ", ".join("%s %.0f%%" % (f, 100.0 * n / allo) for f, n in on.most_common(5)))
            out.append(line + ".")
            out.append("")
    out.append("### Mechanisms: µs per I/O of the busy samples (harness included) whose kernel stack holds them "
               "(they overlap)")
    out.append("")
    for j in jobs:
        out.append("%s (%s):" % (j, pw.JOB_TEXT.get(j, j)))
        out.append("")
        out.append("| mechanism | " + " | ".join(present) + " |")
        out.append("|---|" + "---:|" * len(present))
        names = [MECHANISMS[0][0], IRQ_ON_MECH] + [m[0] for m in MECHANISMS[1:]]
        for name in names:
            out.append("| %s | %s |" % (name, " | ".join(
                "%.0f" % u(accs[(b, j)].mech[name], b, j) for b in present)))
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
        lines += ["", "Samples taken at an interrupt re-enable, by the function that re-enabled (share of busy):"]
        for o, by in sorted(a.irq_on.items()):
            for f, n in by.most_common(6):
                lines.append("  %6.2f%%  %s: %s" % (100.0 * n / a.busy, o, f))
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


def read_snapshots(path):
    """counters.txt (dom0-profile.sh, prof_snap): [(labels, Counter)]."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    snaps = []
    for block in text.split("SNAP ")[1:]:
        lines = block.splitlines()
        c = collections.Counter()
        names = {}
        vals = collections.defaultdict(dict)
        for l in lines[1:]:
            path, _, rest = l.partition(":")
            if path == "/proc/stat" and rest.startswith("ctxt "):
                c["context switches (all of dom0)"] = int(rest.split()[1])
            elif path == "/proc/interrupts":
                f = rest.split(":", 1)[-1].split()
                n = sum(int(x) for x in f if x.isdigit())
                if f:
                    c["interrupts: " + f[-1]] += n
                    c["interrupts (all of dom0)"] += n
            elif path.endswith("/io") and rest.startswith("sysc"):
                c["xenblkd read+write system calls"] += int(rest.split(":")[1])
            elif path.endswith("/status"):
                k, _, v = rest.partition(":")
                v = v.strip()
                if k == "Name":
                    names[path] = v
                elif k.endswith("ctxt_switches"):
                    vals[path][k] = int(v)
        for path, v in vals.items():
            if "/task/" in path:
                key = "xenblkd's threads: context switches"
            else:
                key = "blkback %s thread: context switches" % names.get(path, "?").split(".")[-1].split("-")[0]
            c[key] += sum(v.values())
        snaps.append((pw.kv(lines[0]), c))
    return snaps


def counters_table(res, guest, secs, prof, rep, out):
    """Deltas of the rep-REP snapshots over each run, per I/O: from the
    snapshot after the run before it to its own."""
    snaps = read_snapshots(os.path.join(prof, "counters.txt"))
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
    cols.sort(key=lambda c: (pw.ORDER.index(c[0].split()[0]), c[0]))
    first = ["context switches (all of dom0)", "interrupts (all of dom0)", "xenblkd's threads: context switches",
             "xenblkd read+write system calls"]
    other = collections.Counter()
    for _, d in cols:
        for k, x in d.items():
            if k not in first:
                other[k] = max(other[k], x)
    keys = first + [k for k, x in other.most_common(14) if x >= 0.05]
    out.append("### Counters per I/O over each run of repetition %s (snapshots at the run boundaries; the run's "
               "fio start-up included: upper bounds)" % rep)
    out.append("")
    out.append("| counter | " + " | ".join(c for c, _ in cols) + " |")
    out.append("|---|" + "---:|" * len(cols))
    for k in keys:
        out.append("| %s | %s |" % (k, " | ".join("%.2f" % d.get(k, 0) for _, d in cols)))
    out.append("")


def pstat_table(res, guest, secs, prof, rep, out):
    """xenblkd's system calls counted on the tracepoints (perf stat -p)
    over its run of each job of repetition REP, per I/O."""
    runs = {r["job"]: r for r in pw.perf_runs(pw.guest_lines(res, guest)) if r["disk"] == "xvdc" and r["rep"] == rep}
    per = {}
    for j, r in runs.items():
        try:
            with open(os.path.join(prof, "pstat-%s.txt" % j)) as f:
                text = f.read()
        except OSError:
            continue
        n = {m.group(2): int(m.group(1).replace(",", ""))
             for m in re.finditer(r"^\s*([\d,]+)\s+(?:raw_)?syscalls:(\w+)", text, re.M)}
        if n and r["iops"]:
            per[j] = (n, r["iops"] * secs)
    if not per:
        return
    jobs = [j for j in pw.JOB_ORDER if j in per]
    keys = ["sys_enter"] + sorted({k for n, _ in per.values() for k in n if k != "sys_enter"},
                                  key=lambda k: -sum(per[j][0].get(k, 0) for j in jobs))
    out.append("### xenblkd's system calls per I/O, counted in the kernel (perf stat -p on the syscall "
               "tracepoints, its runs of repetition %s; the run's start-up included)" % rep)
    out.append("")
    out.append("| system call | " + " | ".join(jobs) + " |")
    out.append("|---|" + "---:|" * len(jobs))
    for k in keys:
        name = "**all**" if k == "sys_enter" else k.replace("sys_enter_", "")
        out.append("| %s | %s |" % (name, " | ".join("%.2f" % (per[j][0].get(k, 0) / per[j][1]) for j in jobs)))
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
    pstat_table(res, guest, secs, prof, "2", out)
    counters_table(res, guest, secs, prof, "2", out)
    text = "\n".join(out) + "\n"
    with open(os.path.join(prof, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()

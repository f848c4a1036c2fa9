#!/bin/bash
# Real Xen: Linux blkfront in ONE PV guest with four disks, xvda served by
# kernel blkback as xl sets it up for a file (a loop device through dom0's
# page cache), xvdd by blkback on a direct-I/O loop device (xenblkd's cache
# mode), xvdb by QEMU qdisk and xvdc by xenblkd (kind vbd3, attached with
# xenblkctl), in one boot: every disk passes fio crc32c verify (sequential
# and random writes, 4 KiB to 1 MiB), blkfront reports the features each
# backend offers, and one table compares the backends job by job,
# alternated in the same guest, with the spread over the repetitions, the
# completion latency, and dom0's CPU per I/O of each backend.
source "$top_srcdir/tests/xen/lib.sh"
G="g-all"
SECS=${XBD_BENCH_SECS:-4}
# qdisk_verified: QEMU's qdisk (xvdb) is only a yardstick: Debian's QEMU
# process was seen to die of heap corruption under TCG ("malloc():
# corrupted top size"), so its verify is reported, not judged.
qdisk_verified() {
    if has "$G/events.txt" '^XBD-VERIFY disk=xvdb rc=0'; then
        echo "INFO: fio verify of the qdisk xvdb passed"
    else
        echo "INFO: fio verify of the qdisk xvdb did not pass (not judged): $(grep -h '^XBD-VERIFY disk=xvdb' "$XEN_RES/$G/events.txt" 2>/dev/null)"
    fi
}

# same_guest_table: results/perf-table.md, made by perf_windows.py from
# the guest's XBD-PERF lines and dom0's samples (cpu-raw.txt): per job
# each backend's IOPS with the spread, xenblkd's ratios to blkback,
# blkback-dio and qdisk repetition by repetition, the completion latency
# p50/p99, dom0's CPU per I/O counted per backend's own threads and as all
# of dom0 in each backend's busy windows, and where xenblkd's time went.
# Figures only: nothing here is judged.
same_guest_table() {
    local out=$XEN_RES/perf-table.md
    if ! command -v python3 >/dev/null; then
        echo "NOTE: no python3 (tests/deps/xen.txt): no perf-table.md"
        return
    fi
    python3 "$top_srcdir/tests/xen/perf_windows.py" "$XEN_RES" "$G" "$SECS" >"$out" 2>"$out.err" ||
        { echo "NOTE: perf_windows.py failed:"; sed 's/^/    /' "$out.err"; }
    echo "--- perf-table.md"
    sed 's/^/    /' "$out"
}

# profile_tables: the profile mode's tables (XENBLKD_XEN_PROFILE=1, README
# "Profile mode"): perf_profile.py cuts dom0's perf recording into the
# windows perf_windows.py finds and writes results/profile/summary.md and
# the per backend and job top-symbol files.  Figures only, not judged.
profile_tables() {
    local out=$XEN_RES/profile/summary.md
    if [ ! -s "$XEN_RES/profile/perf.data" ]; then
        echo "NOTE: profile mode, but dom0 saved no perf recording: $(ls "$XEN_RES/profile" 2>/dev/null | tr '\n' ' ')"
        grep -h 'profile:' "$XEN_RES/events.txt" 2>/dev/null | sed 's/^/    /'
        return
    fi
    if ! command -v perf >/dev/null; then
        echo "NOTE: no perf on the host (Debian linux-perf): the profile is in $XEN_RES/profile, unread"
        return
    fi
    python3 "$top_srcdir/tests/xen/perf_profile.py" "$XEN_RES" "$G" "$SECS" >/dev/null 2>"$out.err" ||
        { echo "NOTE: perf_profile.py failed:"; sed 's/^/    /' "$out.err"; }
    echo "--- profile/summary.md"
    sed 's/^/    /' "$out" 2>/dev/null
}

xen_setup backends
xen_boot "${XENBLKD_XEN_TIMEOUT:-2700}"
check_boot

show $G/events.txt
echo "blkback xvda: $(blkfront_line $G xvda)"
echo "qdisk   xvdb: $(blkfront_line $G xvdb)"
echo "xenblkd xvdc: $(blkfront_line $G xvdc)"
echo "blkback-dio xvdd: $(blkfront_line $G xvdd)"
check "guest with the blkback and qdisk disks created" has $G/xl-create.rc '^0$'
check_verified $G xvda
check_verified $G xvdd
qdisk_verified
check "blkback: persistent grants and indirect descriptors enabled" \
    has $G/describe-xvda.txt 'xvda: .*persistent grants: enabled; indirect descriptors: enabled'
check "qdisk: blkfront connected (persistent grants disabled, as QEMU offers none)" \
    has $G/describe-xvdb.txt 'xvdb: .*persistent grants: disabled'

# Scenario 1: the same guest workload on xenblkd's disk, beside blkback's
# (blkback stays loaded: xenblkd serves vbd3, not vbd).
echo "--- xenblkctl attach"; sed 's/^/    /' "$XEN_RES/xenblkctl-attach.log" 2>/dev/null
check "xenblkd was installed from the build tree" test -s "$XEN_RES/xenblkd.path"
check "xenblkctl attach of xvdc (kind vbd3) succeeded" has events.txt 'xenblkctl attach rc=0 '
check_verified $G xvdc
check "xenblkd: blkfront got persistent grants and indirect descriptors" \
    has $G/describe-xvdc.txt 'xvdc: .*persistent grants: enabled; indirect descriptors: enabled'
check "xenblkd kept running while the guest came and went" has events.txt "xenblkd alive after $G"
check "xenblkd exited 0 on SIGTERM" has xenblkd.exit '^0$'
echo "--- xenblkd log (last 30 lines)"; tail -30 "$XEN_RES/xenblkd.log" 2>/dev/null | sed 's/^/    /'

# Scenario 3: the backends in the same guest, alternated.
echo "--- cache modes (cache-modes.txt)"; sed 's/^/    /' "$XEN_RES/cache-modes.txt" 2>/dev/null
same_guest_table
[ "$XEN_PROFILE" = 1 ] && profile_tables
# xvdb (QEMU qdisk) is only the yardstick: its failures are reported, not
# judged.
for d in xvda xvdc xvdd; do
    check "$d: every benchmark run completed" hasnt $G/events.txt "^XBD-PERF disk=$d .* rc=[1-9]"
    check "$d: benchmark ran" has $G/events.txt "^XBD-PERF disk=$d .* rc=0 "
done
check "dom0 sampled its CPU time and the backends' activity" has cpu-raw.txt ' act:xenblkd=[0-9]'
check "the guest held its disks until dom0 had read the backends (released by its sysrq)" \
    has $G/events.txt '^XBD-RELEASED after=[0-9]+s by=sysrq$'
check "the guest powered off by itself (dom0 did not destroy it: $(cat "$XEN_RES/$G/status" 2>/dev/null || echo no status))" \
    test ! -e "$XEN_RES/$G/status"
# blkback's threads are looked for by name: a kernel that names them
# otherwise is reported here, not failed (the figure is not a check).
grep -q 'ticks:blkback=' "$XEN_RES/cpu-raw.txt" 2>/dev/null ||
    echo "NOTE: no blkback kernel thread (DOMID.DEV-RING) was sampled: blkback's CPU is not in perf-table.md (threads in ps-connected.txt)"
grep -h '^XBD-PERF disk=xvdb .* rc=[1-9]' "$XEN_RES/$G/events.txt" 2>/dev/null | sed 's/^/    qdisk run failed: /'
xen_finish

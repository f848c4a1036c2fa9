#!/bin/bash
# Real Xen: the 2-guest aggregate (issue 11, section 2).  One boot, TWO PV
# guests, g-a and g-b, each with xvda on kernel blkback, xvdb on QEMU qdisk
# and xvdc on xenblkd (kind vbd3, attached with xenblkctl); both verify
# their disks (fio crc32c), then run the same job on the same backend at
# the same time, backend after backend, alternated, XBD_AGG_REPS
# repetitions, each pair run preceded by a solo run of one guest (the
# single-guest figure of the same boot).  A barrier in dom0 releases each
# step once both guests are ready for it (aggregate.dom0, domU-init.sh
# agg_step).  results/agg-table.md: per job and backend each guest's IOPS,
# the aggregate, aggregate / solo, and xenblkd's aggregate against
# blkback's and qdisk's, with how well the two guests' windows overlapped.
# The figures are reported, never judged: under TCG only ratios mean
# anything.  Checked: every verify, every run of blkback and xenblkd, every
# step released, xenblkd alive and nothing mapped once the guests are gone.
XEN_NAME=aggregate
# Two guests with four disks each, whose 8 backends all live in dom0:
# more room than the 512 MiB dom0 of the one-guest tests.
: "${XENBLKD_XEN_DOM0_MEM:=768M}"
export XENBLKD_XEN_DOM0_MEM
source "$top_srcdir/tests/xen/lib.sh"
GUESTS="g-a g-b"
SECS=${XBD_BENCH_SECS:-4}
REPS=${XBD_AGG_REPS:-3}
# The schedule of domU-init.sh's agg job: per repetition 2 jobs x 3 disks x
# (solo, pair).
STEPS=$(( REPS * 2 * 3 * 2 ))

# agg_lines: every XBD-AGG line of both guests (their events.txt, or the
# console log when dom0 did not get to collect a guest).
agg_lines() {
    local g
    for g in $GUESTS; do
        if [ -f "$XEN_RES/$g/events.txt" ]; then
            grep -h '^XBD-AGG ' "$XEN_RES/$g/events.txt"
        else
            tr -d '\r' <"$XEN_RES/console/guest-$g.log" 2>/dev/null | grep -E '^XBD-AGG '
        fi
    done
}

# agg_table: results/agg-table.md from the XBD-AGG lines.
# - Each guest's clock offset from dom0's: the smallest (seen - go) over
#   the steps, seen being the guest's clock when it read dom0's GO, go
#   dom0's clock when it wrote it (the smallest poll delay, a few tens of
#   ms, stays in it, for both guests alike).
# - Overlap of a pair run: the two windows [from, to] moved to dom0's
#   clock, their intersection over their union (1 = the same window); the
#   start skew, |from(g-a) - from(g-b)|, on dom0's clock and raw.
# - Per job and backend: each guest's IOPS in the pair runs, the aggregate
#   (their sum), the solo run, aggregate / solo and xenblkd's aggregate
#   over blkback's and qdisk's, repetition by repetition (TCG drifts:
#   only neighbours are compared), mean (lowest-highest).
agg_table() {
    local out=$XEN_RES/agg-table.md
    {
    echo "Two guests (g-a, g-b) on the same backend at the same time, one disk each per backend, backends alternated; $REPS repetitions of $SECS s; per repetition and backend first one guest alone (g-a in odd repetitions, g-b in even ones), then both.  TCG: compare ratios, not absolute numbers."
    echo
    agg_lines | awk -v reps="$REPS" -v secs="$SECS" '
        BEGIN { name["xvda"] = "blkback"; name["xvdb"] = "qdisk"; name["xvdc"] = "xenblkd" }
        { delete v
          # values that look like numbers are numbers (+ 0): compared as
          # strings, 128 < 6.
          for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); x = $i; sub(/^[^=]*=/, "", x); v[k] = x ~ /^[-+0-9.]+$/ ? x + 0 : x }
          g = v["role"]; s = v["step"]
          d = v["seen"] - v["go"]
          if (!(g in off) || d < off[g]) off[g] = d
          if (v["run"] != "yes") next
          b = name[v["disk"]]; j = v["job"]; r = v["rep"]
          jobs[j] = 1; bes[b] = 1
          if (v["rc"] != 0) { failed[b, j]++; next }
          if (v["mode"] == "solo") { solo[b, j, r] = v["iops"]; next }
          iops[g, b, j, r] = v["iops"]; kib[g, b, j, r] = v["kib_s"]
          from[g, s] = v["from"]; to[g, s] = v["to"]; seen[g, s] = v["seen"]; pstep[s] = b SUBSEP j }
        function stat(arr, b, j, fmt,   r, n, sum, lo, hi, x) {
            for (r = 1; r <= reps; r++) if ((b, j, r) in arr) {
                x = arr[b, j, r]; sum += x; n++
                if (n == 1 || x < lo) lo = x; if (n == 1 || x > hi) hi = x }
            return n ? sprintf(fmt " (" fmt "-" fmt ")", sum / n, lo, hi) : "-"
        }
        END {
            # per (b, j, r): each guest, aggregate, MiB/s, agg/solo
            for (k in iops) {
                split(k, p, SUBSEP); g = p[1]; b = p[2]; j = p[3]; r = p[4]
                if (g == "a") ga[b, j, r] = iops[k]; else gb[b, j, r] = iops[k]
                if ((("a", b, j, r) in iops) && (("b", b, j, r) in iops)) {
                    agg[b, j, r] = iops["a", b, j, r] + iops["b", b, j, r]
                    mib[b, j, r] = (kib["a", b, j, r] + kib["b", b, j, r]) / 1024
                    if (solo[b, j, r] > 0) aos[b, j, r] = agg[b, j, r] / solo[b, j, r]
                }
            }
            for (k in agg) {
                split(k, p, SUBSEP); b = p[1]; j = p[2]; r = p[3]
                if (b != "xenblkd") continue
                if (agg["blkback", j, r] > 0) xb[j, r] = agg[k] / agg["blkback", j, r]
                if (agg["qdisk", j, r] > 0) xq[j, r] = agg[k] / agg["qdisk", j, r]
            }
            print "| job | backend | g-a IOPS | g-b IOPS | aggregate IOPS | aggregate MiB/s | solo IOPS | aggregate / solo |"
            print "|---|---|---|---|---|---|---|---|"
            n = split("rr4k sr1m", jl, " "); m = split("blkback qdisk xenblkd", bl, " ")
            for (a = 1; a <= n; a++) for (c = 1; c <= m; c++) {
                j = jl[a]; b = bl[c]
                if (!(j in jobs)) continue
                printf "| %s | %s | %s | %s | %s | %s | %s | %s |%s\n", j, b,
                    stat(ga, b, j, "%d"), stat(gb, b, j, "%d"), stat(agg, b, j, "%d"),
                    stat(mib, b, j, "%.1f"), stat(solo, b, j, "%d"), stat(aos, b, j, "%.2f"),
                    failed[b, j] ? " " failed[b, j] " run(s) failed" : ""
            }
            print ""
            print "| job | xenblkd / blkback (aggregate) | xenblkd / qdisk (aggregate) |"
            print "|---|---|---|"
            for (a = 1; a <= n; a++) {
                j = jl[a]
                if (!(j in jobs)) continue
                sum1 = sum2 = c1 = c2 = 0
                for (r = 1; r <= reps; r++) {
                    if ((j, r) in xb) { x = xb[j, r]; sum1 += x; c1++; if (c1 == 1 || x < lo1) lo1 = x; if (c1 == 1 || x > hi1) hi1 = x }
                    if ((j, r) in xq) { x = xq[j, r]; sum2 += x; c2++; if (c2 == 1 || x < lo2) lo2 = x; if (c2 == 1 || x > hi2) hi2 = x }
                }
                printf "| %s | %s | %s |\n", j,
                    c1 ? sprintf("%.2f (%.2f-%.2f)", sum1 / c1, lo1, hi1) : "-",
                    c2 ? sprintf("%.2f (%.2f-%.2f)", sum2 / c2, lo2, hi2) : "-"
            }
            # Every repetition, for the reader to see the drift.
            print ""
            print "| rep | job | backend | solo (guest) | g-a | g-b | aggregate | aggregate / solo |"
            print "|---|---|---|---|---|---|---|---|"
            for (r = 1; r <= reps; r++) for (a = 1; a <= n; a++) for (c = 1; c <= m; c++) {
                j = jl[a]; b = bl[c]
                if (!(j in jobs)) continue
                printf "| %d | %s | %s | %s (%s) | %s | %s | %s | %s |\n", r, j, b,
                    ((b, j, r) in solo) ? solo[b, j, r] : "-", r % 2 ? "g-a" : "g-b",
                    ((b, j, r) in ga) ? ga[b, j, r] : "-", ((b, j, r) in gb) ? gb[b, j, r] : "-",
                    ((b, j, r) in agg) ? agg[b, j, r] : "-", ((b, j, r) in aos) ? sprintf("%.2f", aos[b, j, r]) : "-"
            }
            # Overlap of the two guests windows in the pair runs.
            np = 0
            for (s in pstep) {
                if (!(("a", s) in from) || !(("b", s) in from)) continue
                fa = from["a", s] - off["a"]; ta = to["a", s] - off["a"]
                fb = from["b", s] - off["b"]; tb = to["b", s] - off["b"]
                inter = (ta < tb ? ta : tb) - (fa > fb ? fa : fb); if (inter < 0) inter = 0
                uni = (ta > tb ? ta : tb) - (fa < fb ? fa : fb)
                ov = uni > 0 ? inter / uni : 0
                sk = fa - fb; if (sk < 0) sk = -sk
                raw = from["a", s] - from["b", s]; if (raw < 0) raw = -raw
                # Per step, as if both guests saw GO at the same moment
                # (true within a poll while their vCPUs are not starved).
                fa = from["a", s] - seen["a", s]; ta = to["a", s] - seen["a", s]
                fb = from["b", s] - seen["b", s]; tb = to["b", s] - seen["b", s]
                inter = (ta < tb ? ta : tb) - (fa > fb ? fa : fb); if (inter < 0) inter = 0
                uni = (ta > tb ? ta : tb) - (fa < fb ? fa : fb)
                sk2 = fa - fb; if (sk2 < 0) sk2 = -sk2
                np++; ovs[np] = ov; sks[np] = sk; raws[np] = raw; ov2s[np] = uni > 0 ? inter / uni : 0; sk2s[np] = sk2
                len = ta - fa; if (tb - fb > len) len = tb - fb; if (len > maxlen) maxlen = len
            }
            print ""
            if (!np) { print "Overlap: no pair run with both guests reported."; exit }
            asort_n(ovs, np); asort_n(sks, np); asort_n(raws, np); asort_n(ov2s, np); asort_n(sk2s, np)
            h = int((np + 1) / 2)
            print "Overlap of the two guests fio windows (process start to exit, fio start-up included) over " np " pair runs, intersection / union (1 = the same window), and start skew:"
            print ""
            print "| clocks | overlap lowest | overlap median | skew median | skew highest |"
            print "|---|---|---|---|---|"
            printf "| moved to dom0 clock by each guest offset (smallest seen - go: g-a %+.3f s, g-b %+.3f s) | %.3f | %.3f | %.3f s | %.3f s |\n", off["a"], off["b"], ovs[1], ovs[h], sks[h], sks[np]
            printf "| per step, from when each guest saw GO | %.3f | %.3f | %.3f s | %.3f s |\n", ov2s[1], ov2s[h], sk2s[h], sk2s[np]
            printf "| the guests own clocks, uncorrected | - | - | %.3f s | %.3f s |\n", raws[h], raws[np]
            print ""
            printf "Longest window %.2f s for %s-second jobs.\n", maxlen, secs
        }
        # insertion sort of arr[1..n], ascending (no gawk asort in mawk)
        function asort_n(arr, n,   i, k, x) {
            for (i = 2; i <= n; i++) { x = arr[i]; for (k = i - 1; k >= 1 && arr[k] > x; k--) arr[k + 1] = arr[k]; arr[k + 1] = x }
        }'
    echo
    echo "aggregate = g-a + g-b in the same pair run; aggregate / solo and the xenblkd ratios are taken repetition by repetition (neighbouring runs), mean (lowest-highest).  Each guest has its own image file per backend: blkback serves them through dom0's loop devices (results/backends-mode.txt says whether with direct I/O), qdisk through dom0's one QEMU (started by xencommons with -xen-domid 0 -xen-attach, it serves every PV guest's qdisk), xenblkd through one process for both."
    } >"$out"
    echo "--- agg-table.md"
    sed 's/^/    /' "$out"
}

# xenblkd_runs: results/xenblkd-runs.md, what xenblkd's counters did during
# each of its runs: the difference between the snapshots dom0 took before
# that step's GO and before the next one (results/stats/step-N.json), per
# guest's ring: requests, segments sent by grant copy, grant-cache purges,
# map calls.  A report, never a check (python3 reads the JSON).
xenblkd_runs() {
    local out=$XEN_RES/xenblkd-runs.md
    command -v python3 >/dev/null || return 0
    [ -d "$XEN_RES/stats" ] || return 0
    agg_lines | python3 -c '
import json, re, sys
res, reps = sys.argv[1], int(sys.argv[2])
runs = {}
for line in sys.stdin:
    v = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    if v.get("disk") == "xvdc":
        runs[int(v["step"])] = (v["rep"], v["mode"], v["job"])
def load(step):
    try:
        d = json.load(open("%s/stats/step-%d.json" % (res, step)))
    except (OSError, ValueError):
        return None
    out = {}
    for dev in d.get("devices", []):
        # a device closing (its guest powering off) has no ring left
        if dev.get("kind") != "vbd3" or not dev.get("rings"): continue
        r = dev["rings"][0]
        out[dev["domid"]] = (sum(r["requests"].values()) - r["requests"]["indirect"],
                             r["grant_copy"]["segments"], r["persistent_grants"]["purges"],
                             r["persistent_grants"]["map_calls"], r["persistent_grants"]["budget_full"])
    return out
print("| step | rep | mode | job | domid: requests, copied segments, purges, map calls |")
print("|---|---|---|---|---|")
for s in sorted(runs):
    a, b = load(s), load(s + 1)
    if a is None or b is None:
        cell = "no snapshot"
    else:
        cell = "; ".join("%d: %d, %d, %d, %d" % ((dom,) + tuple(b[dom][i] - a[dom][i] for i in range(4)))
                         for dom in sorted(b) if dom in a)
    print("| %d | %s | %s | %s | %s |" % ((s,) + runs[s] + (cell,)))
' "$XEN_RES" "$REPS" >"$out" 2>&1
    echo "--- xenblkd-runs.md (xenblkd's counters per run of its disk)"
    sed 's/^/    /' "$out"
}

xen_setup aggregate
xen_boot "${XENBLKD_XEN_TIMEOUT:-1500}"
check_boot

show events.txt
for g in $GUESTS; do
    show $g/events.txt
    echo "$g blkback xvda: $(blkfront_line $g xvda)"
    echo "$g qdisk   xvdb: $(blkfront_line $g xvdb)"
    echo "$g xenblkd xvdc: $(blkfront_line $g xvdc)"
    check "$g created with its blkback, qdisk and control disks" has $g/xl-create.rc '^0$'
    check "xenblkctl attach of $g's xvdc (kind vbd3) succeeded" has events.txt "xenblkctl attach $g rc=0 "
    check_verified $g xvda
    check_verified $g xvdc
    # qdisk is the yardstick (Debian's QEMU died of heap corruption under
    # TCG in earlier boots): its verify and runs are reported, not judged.
    has $g/events.txt '^XBD-VERIFY disk=xvdb rc=0' ||
        echo "INFO: $g: fio verify of the qdisk xvdb did not pass (not judged)"
    check "$g xenblkd: persistent grants and indirect descriptors" \
        has $g/describe-xvdc.txt 'xvdc: .*persistent grants: enabled; indirect descriptors: enabled'
    check "$g: no step of the aggregate went without dom0's GO" hasnt $g/events.txt '^XBD-AGG-FAIL'
    check "$g went through all $STEPS steps of the aggregate" has $g/events.txt "^XBD-AGG-END role=${g#g-} steps=$STEPS "
    for d in xvda xvdc; do
        check "$g $d: every aggregate run completed (rc=0)" \
            hasnt $g/events.txt "^XBD-AGG .* run=yes .* disk=$d .* rc=[1-9]"
        check "$g $d: $((REPS * 2)) pair runs" \
            test "$(grep -cE "^XBD-AGG .* mode=pair .* run=yes .* disk=$d .* rc=0 " "$XEN_RES/$g/events.txt" 2>/dev/null)" = $((REPS * 2))
    done
    grep -hE '^XBD-AGG .* disk=xvdb .* rc=[1-9]' "$XEN_RES/$g/events.txt" 2>/dev/null | sed 's/^/    qdisk run failed (not judged): /'
    check "$g powered off by itself (dom0 did not destroy it: $(cat "$XEN_RES/$g/status" 2>/dev/null || echo no status))" \
        test ! -e "$XEN_RES/$g/status"
done
check "dom0 released all $STEPS steps to both guests" \
    has events.txt "^XBD-DOM0 agg end after $STEPS steps: XBDEND $STEPS, XBDEND $STEPS "
check "xenblkd kept running while both guests came and went" has events.txt 'xenblkd alive after both guests'
check "xenblkd held no grant mapping once both guests were gone" \
    has events.txt '^XBD-DOM0 gntdev maps with no guest left: 0 '
check "xenblkd exited 0 on SIGTERM" has xenblkd.exit '^0$'
show backends-mode.txt
echo "--- xenblkd log (last 20 lines)"; tail -20 "$XEN_RES/xenblkd.log" 2>/dev/null | sed 's/^/    /'
agg_table
xenblkd_runs
xen_finish

#!/bin/bash
# A request's new persistent grants are mapped by one map call, as one
# gntdev mapping, and each mapping is unmapped whole by one call
# (src/grant_cache.c).  On Xen every map and unmap call is a hypercall,
# every unmap also a TLB flush over dom0's vCPUs: counting them per
# request and per close is what the simulation can show of that cost.
# Counted by the simulated hypervisor (tests/sim/CONTRACT.md, stats) for
# guests that make R = 600 requests of one size through 8 request slots,
# each slot reusing its own pages (K distinct grants in all):
#   - map calls: one per slot's first request (each brings all its pages),
#     none after: 1 + 8 with the ring's, not 1 + K;
#   - at disconnect: one unmap call per mapping (1 + 8, not 1 + K), every
#     page released, and the daemon's own report of the ring's close names
#     as many mappings;
#   - with indirect descriptors the indirect page is a mapping of its own
#     (granted read-only: a refused writable map call, then a read-only
#     one): 1 + 3 x 8 map calls, 1 + 2 x 8 unmap calls.
# Per-page mapping (before grant_cache.c grouped) made 1 + K of each.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3
img=$(make_disk groups.img 8)
imgi=$(make_disk groups-ind.img 8)
vbd3_disk 5 51712 "$img"
vbd3_disk 6 51712 "$imgi"

# report NAME: print the counters of run NAME (for the log and the report).
report() {
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1])); g = j["grant_stats"]; d = j["disks"][0]
r = sum(d["requests"].get(k, 0) for k in ("read", "write"))
print("%s: %d requests, %d pages mapped by %d map calls (%.3f per request), "
      "%d unmap calls for %d pages at close" % (sys.argv[2], r, g["pages_mapped"],
      g["map_calls"], g["map_calls"] / r, g["unmap_calls"], g["pages_unmapped"]))
' "$XSIM_TMP/$1.json" "$1" | tee -a "$XSIM_LOGDIR/figures.log"
}

# mappings_closed DOMID: the mappings the daemon reported for the ring's close.
mappings_closed() {
    sed -nE "s/.*domain $1 vbd3\/51712 q0: [0-9]+ persistent grant\(s\) in ([0-9]+) mapping\(s\) unmapped after the ring stopped.*/\1/p" \
        "$XSIM_LOGDIR/xenblkd.log" | tail -n 1
}

# Without indirect descriptors: every request writes 40 KiB, 10 pages of
# its slot, the same 10 each time.
fe flat 5 --vdev 51712 --bench write --bs 40k --bench-count 600 --qd 8 --no-indirect --close
report flat
expect_js flat "d['requests']['write']" 600 "g['copy_segs']" 0 \
    "g['pages_mapped']" $((1 + 8 * 10)) \
    "g['map_calls']" $((1 + 8)) \
    "g['unmap_calls']" $((1 + 8)) \
    "g['pages_unmapped'] == g['pages_mapped']" True
wait_log "domain 5 vbd3/51712 q0: [0-9]+ persistent grant\(s\) in [0-9]+ mapping\(s\) unmapped"
n=$(mappings_closed 5)
u=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grant_stats"]["unmap_calls"])' \
    "$XSIM_TMP/flat.json")
[ "$n" = $((u - 1)) ] ||
    xsim_fail "the daemon reports $n mappings at close, the hypervisor saw $u unmap calls (ring included)"
xsim_log "ok: $n mappings unmapped at close, one call each"

# With indirect descriptors: 64 KiB, 16 data pages and one indirect page.
fe ind 6 --vdev 51712 --bench write --bs 64k --bench-count 600 --qd 8 --close
report ind
expect_js ind "d['requests']['write']" 600 "g['copy_segs']" 0 \
    "d['requests']['indirect'] > 0" True \
    "g['pages_mapped']" $((1 + 8 * 17)) \
    "g['map_calls']" $((1 + 3 * 8)) \
    "g['unmap_calls']" $((1 + 2 * 8)) \
    "g['pages_unmapped'] == g['pages_mapped']" True
wait_log "domain 6 vbd3/51712 q0: [0-9]+ persistent grant\(s\) in [0-9]+ mapping\(s\) unmapped"
n=$(mappings_closed 6)
u=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grant_stats"]["unmap_calls"])' \
    "$XSIM_TMP/ind.json")
[ "$n" = $((u - 1)) ] ||
    xsim_fail "the daemon reports $n mappings at close, the hypervisor saw $u unmap calls (ring included)"
xsim_log "ok: $n mappings unmapped at close, one call each"
exit 0

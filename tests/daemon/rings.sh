#!/bin/bash
# Ring geometry through the reference frontend: every ring-page-order from 0
# to the maximum we offer (4) with 1 to N queues (N = online CPUs, at most
# 4), as Linux blkfront writes them: ring-page-order once at the top of the
# frontend directory, ring-refN and event-channel under queue-N/ (Linux
# blkback's connect_ring reads them from exactly there).  Each combination
# runs a verified workload deep enough to fill more than one ring page,
# alternately with and without persistent grants; without them the backend
# must map exactly the ring pages and nothing else.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3 --max-queues 4
img=$(make_disk rings.img 16)
vbd3_disk 5 51712 "$img"
be=$(be_dir vbd3 5 51712)
nq=$(queues_max)
expect_key "$be/max-ring-page-order" 4
expect_key "$be/multi-queue-max-queues" "$nq"

run=0
for ((q = 1; q <= nq; q++)); do
    for ((o = 0; o <= 4; o++)); do
        run=$((run + 1))
        name=q$q-o$o
        # 48 in flight per queue overflows a one-page ring (32 slots in
        # the x86_64 layout), so orders >= 1 really use their extra pages.
        depth=48
        [ "$o" = 0 ] && depth=32
        pers=()
        [ $((run % 2)) = 0 ] && pers=(--no-persistent)
        fe "$name" 5 --vdev 51712 --queues "$q" --ring-order "$o" "${pers[@]}" \
            --workload verify --count 160 --qd $((depth * q)) --bs 8k --seed "$run" --close
        if [ ${#pers[@]} -gt 0 ]; then
            # Per-request grants are copied: only the rings are mapped, one
            # map call per queue.
            grants=("(g['map_calls'], g['pages_mapped'])" "($q, $((q << o)))"
                    "g['copy_segs'] >= 320" True)
        else
            grants=("g['pages_mapped'] > $((q << o))" True)
        fi
        js_defer "$name" "d['negotiated']['queues']" "$q" \
            "d['negotiated']['ring_order']" "$o" \
            "d['requests']['read'] == d['requests']['write'] == 160" True \
            "d['responses']['okay']" 320 \
            "g['pages_mapped'] == g['pages_unmapped']" True "${grants[@]}"
        s=""
        [ "$q" -gt 1 ] && s=s
        wait_log "domain 5 vbd3/51712: connected $q queue$s, ring order $o, x86_64 protocol, persistent grants $([ ${#pers[@]} -gt 0 ] && echo off || echo on)"
    done
done
xsim_remove_disk vbd3 5 51712 || xsim_fail "the device did not close"
wait_fds_to "$img" 0
js_check_all
exit 0

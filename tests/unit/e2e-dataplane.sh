#!/bin/bash
# The data plane end to end through the real daemon: the reference
# frontend (xsim-blkfront) connects over a private xenstored and runs
# verified workloads in the three ring ABIs, with and without persistent
# grants, indirect descriptors, a multi-page ring and several queues, plus
# raw invalid requests that must come back ERROR / EOPNOTSUPP; every run
# ends with --close, which checks that no grant is still in use.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start
fe="$top_builddir/tests/frontend/xsim-blkfront"
[ -x "$fe" ] || xsim_skip "xsim-blkfront not built"

truncate -s 64M "$XSIM_TMP/disk.img"
xsim_add_disk vbd3 5 51712 "aio:$XSIM_TMP/disk.img"
xsim_daemon --kinds vbd3 --max-queues 4
be=/local/domain/0/backend/vbd3/5/51712
xsim_wait_key "$be/state" 2
xsim_hotplug_connected vbd3 5 51712     # what block-tap would write

run() {  # run NAME ARGS...: one frontend session, stats in NAME.json
    local name=$1; shift
    # After the previous session closed, the guest restarts its frontend:
    # Initialising brings the backend back to InitWait.
    if [ "$(xenstore-read "$be/state")" != 2 ]; then
        xenstore-write /local/domain/5/device/vbd/51712/state 1
        xsim_wait_key "$be/state" 2 || xsim_fail "backend did not return to InitWait"
    fi
    xsim_log "workload $name: $*"
    "$fe" --domid 5 --vdev 51712 --timeout 30 --close \
        --stats-json "$XSIM_TMP/$name.json" "$@" \
        >"$XSIM_LOGDIR/fe-$name.log" 2>&1 ||
        { cat "$XSIM_LOGDIR/fe-$name.log" >&2; xsim_fail "workload $name failed"; }
}

jnum() {  # jnum FILE KEY: the number after "KEY": in a stats file
    grep -o "\"$2\": [0-9]*" "$1" | head -n1 | grep -o '[0-9]*$'
}

run native   --protocol native     --workload verify --count 200 --qd 16
run x86_32   --protocol x86_32-abi --workload verify --count 200 --qd 16
run x86_64   --protocol x86_64-abi --workload verify --count 200 --qd 16
run noproto  --protocol none       --workload verify --count 100
run copy     --no-persistent       --workload verify --count 200 --qd 32
run noind    --no-indirect         --workload verify --count 200 --bs 45056
run bigring  --ring-order 4 --workload mixed --count 400 --qd 64
run multiq   --queues 2 --workload mixed --count 400 --qd 64
run indirect --max-indirect 256    --workload verify --count 100 --bs 1048576
run flush    --workload flush --count 50
run discard  --workload discard --count 50

# Raw requests: every invalid class gets the status blkif.h prescribes.
run invalid --workload none \
    --raw op=4,expect=eopnotsupp \
    --raw op=200,expect=eopnotsupp \
    --raw op=read,nr_segments=0,expect=error \
    --raw op=read,nr_segments=12,expect=error \
    --raw op=read,sector=131072,expect=error \
    --raw op=write,sector=131071,nr_segments=2,expect=error \
    --raw op=read,first=3,last=2,expect=error \
    --raw op=read,first=0,last=8,expect=error \
    --raw op=indirect,indirect_op=5,nr_segments=4,expect=error \
    --raw op=indirect,indirect_op=read,nr_segments=257,expect=error \
    --raw op=discard,sector=131064,nr_sectors=16,expect=error \
    --raw op=read,expect=okay

# Without persistent grants the frontend grants each request's pages: a
# READ into a page granted read-only must fail, a WRITE from one is fine.
run readonly --no-persistent --workload none \
    --raw op=read,ro=1,expect=error \
    --raw op=write,ro=1,expect=okay \
    --raw op=read,ro=0,expect=okay

# Grant traffic seen by the simulated hypervisor for the guest.
# Persistent without indirect: data pages mapped once each, never copied.
[ "$(jnum "$XSIM_TMP/noind.json" copy_calls)" = 0 ] ||
    xsim_fail "persistent run copied grants: $(cat "$XSIM_TMP/noind.json")"
m=$(jnum "$XSIM_TMP/noind.json" pages_mapped)
[ "$m" -gt 1 ] && [ "$m" -le $((1 + 32 * 11)) ] ||
    xsim_fail "persistent run mapped $m pages (more than one per grant?)"
# Copy path: the ring is the only page ever mapped.
[ "$(jnum "$XSIM_TMP/copy.json" map_calls)" = 1 ] ||
    xsim_fail "copy run mapped data pages: $(cat "$XSIM_TMP/copy.json")"
[ "$(jnum "$XSIM_TMP/copy.json" copy_segs)" -gt 0 ] ||
    xsim_fail "copy run did not copy"

xsim_remove_disk vbd3 5 51712
exit 0

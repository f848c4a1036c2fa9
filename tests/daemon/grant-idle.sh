#!/bin/bash
# --persistent-grant-idle: a guest that stops doing I/O keeps its ring
# connected, but the daemon unmaps the data pages it mapped persistently
# once they have been unused that long (the guest's grant table shows them
# released), and the next requests map them again and still verify.
# While the guest is busy, nothing is unmapped.  The idle purge's unmaps
# go through the unmap worker, not the loop: with every unmap held
# (XENSIM_GNTTAB_UNMAP_HOLD, tests/sim/CONTRACT.md: on Xen an unmap is a
# hypercall and a TLB flush each), the purge takes the grants out of the
# ring's cache (control socket: mapped 0) and another guest's I/O is
# served meanwhile; released, the grants are unmapped.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
daemon_unmaps_held --kinds vbd3 --persistent-grant-idle 2
wait_log "persistent grants idle out after 2 s"
img=$(make_disk idle.img 8)
vbd3_disk 5 51712 "$img"

# wait_in_use DOMID WANT TIMEOUT: until DOMID has exactly WANT grants mapped.
wait_in_use() {
    local end n
    end=$(xsim_deadline "$3")
    until n=$(in_use "$1") && [ "$n" -eq "$2" ]; do
        xsim_past "$end" && xsim_fail "domain $1 has $n grant(s) in use after ${3}s, want $2"
        sleep 0.1
    done
}

# Writes then reads (verified), then stays connected until released, then closes.
fe_hold guest 5 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --hold 300 --close
# Idle 2 s plus one check period (0.5 s): only the ring page stays.
wait_in_use 5 1 5
xsim_log "ok: unused persistent grants unmapped, the ring stays mapped"
# The data pages stayed mapped after their requests ended (the ring page
# is one grant; 8 slots of 64 KiB requests map up to 16 pages each) until
# the idle purge unmapped them: the daemon counts them, however long the
# test takes to look (their number in use right after the workload, 2 s
# before the purge, would depend on the test being quick).
purged=$(ctl_stats_sum 5 'r["persistent_grants"]["purges"]')
check "the idle purge unmapped the data pages kept mapped after the workload ($purged)" [ "$purged" -gt 0 ]
fe_end guest

# Connected again and busy again: pages are mapped anew and data verifies
# (--close also checks that every grant ended).
fe again 5 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --seed 2 --close
expect_js again "g['pages_mapped'] > 1" True

# The idle purge with every unmap held.
ctl() { python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" "$@"; }
mapped5() {
    ctl '{"version":1,"command":"stats","domid":5}' |
        python3 -c 'import json,sys; print(sum(r["persistent_grants"]["mapped"] for r in json.load(sys.stdin)["devices"][0]["rings"]))'
}
imgb=$(make_disk idle-b.img 8)
vbd3_disk 6 51712 "$imgb"
# Held from before the workload: whenever the purge comes (2 s after it),
# its grants stay mapped, so what is in use after the workload does not
# depend on the test being quick.
touch "$hold"
fe_hold held 5 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --seed 3 --hold 300
busy=$(in_use 5)
[ "$busy" -gt 1 ] || xsim_fail "only $busy grant(s) in use after the workload"
end=$(xsim_deadline 10)
until [ "$(mapped5)" = 0 ]; do
    xsim_past "$end" && xsim_fail "the idle purge did not take the grants out of the cache"
    sleep 0.1
done
[ "$(in_use 5)" = "$busy" ] || xsim_fail "grants unmapped while every unmap is held"
xsim_log "ok: the idle purge took $((busy - 1)) grants out of the cache, their unmaps held"
fe_hold other 6 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --hold 300
xsim_log "ok: guest 6 was served while the purge's unmaps were held"
rm -f "$hold"
wait_in_use 5 1 10
xsim_log "ok: released, the purged grants were unmapped"
fe_end held
fe_end other
exit 0

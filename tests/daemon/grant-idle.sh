#!/bin/bash
# --persistent-grant-idle: a guest that stops doing I/O keeps its ring
# connected, but the daemon unmaps the data pages it mapped persistently
# once they have been unused that long (the guest's grant table shows them
# released), and the next requests map them again and still verify.
# While the guest is busy, nothing is unmapped.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3 --persistent-grant-idle 2
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
# Just after the workload: the data pages are still mapped (the ring page
# is one grant; 8 slots of 64 KiB requests map up to 16 pages each).
busy=$(in_use 5)
[ "$busy" -gt 1 ] || xsim_fail "right after the workload only $busy grant(s) in use: persistent grants not kept"
xsim_log "ok: $busy grants mapped right after the workload"
# Idle 2 s plus one check period (0.5 s): only the ring page stays.
wait_in_use 5 1 5
xsim_log "ok: unused persistent grants unmapped, the ring stays mapped"
fe_end guest

# Connected again and busy again: pages are mapped anew and data verifies
# (--close also checks that every grant ended).
fe again 5 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --seed 2 --close
expect_js again "g['pages_mapped'] > 1" True
exit 0

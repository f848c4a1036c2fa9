#!/bin/bash
# Online resize: the administrator grows a disk's image while its guest is
# connected and sends SIGHUP; xenblkd logs the new size, publishes
# "sectors" and rewrites its state, and the connected frontend sees the new
# capacity without reconnecting.  Requests beyond the old end then work
# (a full verified workload over the grown disk), and after a shrink,
# requests past the new end get ERROR.  A disk not yet connected (InitWait)
# publishes its new size when the frontend connects.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3
img=$(make_disk resize.img 8)
vbd3_disk 5 51712 "$img"
img2=$(make_disk waiting.img 4)
vbd3_disk 6 51712 "$img2"

# A frontend of domain 5 that writes a little, holds the disk until released, closes.
HOLD="--vdev 51712 --workload write --count 32 --bs 64k --hold 300 --close"

# 1. Connected, idle after a workload: grow 8 -> 16 MiB, SIGHUP.
fe_hold guest 5 $HOLD
truncate -s 16M "$img"
truncate -s 6M "$img2"
kill -HUP "$(xsim_pid xenblkd)"
wait_log "domain 5 vbd3/51712: .*resize.img changed size: 16384 -> 32768 sectors$"
wait_log "domain 5 vbd3/51712: told the connected frontend: sectors 32768"
wait_log "domain 6 vbd3/51712: .*waiting.img changed size: 8192 -> 12288 sectors$"
expect_key "$(be_dir vbd3 5 51712)/sectors" 32768
fe_end guest
# Seen while connected (one connection, one resize; -v logs it).
expect_js guest "d['resizes']" 1 "d['negotiated']['sectors']" 32768 "d['connects']" 1
xsim_log "ok: the connected frontend saw 8 -> 16 MiB online"

# 2. The grown disk serves its whole new size (the workload spans it all).
fe grown 5 --vdev 51712 --workload verify --count 128 --bs 128k --seed 3 --close
expect_js grown "d['negotiated']['sectors']" 32768 "d['errors']" 0
fe tail 5 --vdev 51712 --raw op=write,sector=32760,expect=okay --raw op=read,sector=32760,expect=okay \
    --raw op=read,sector=32768,expect=error --close
xsim_log "ok: sectors up to the new end served, past it refused"

# 3. The disk that was waiting in InitWait connects at its new size.
fe waiting 6 --vdev 51712 --workload verify --count 32 --bs 64k --close
expect_js waiting "d['negotiated']['sectors']" 12288

# 4. Shrink back to 8 MiB while connected: past the new end is refused at
# once, and the frontend learns the new size.
fe_hold shrinking 5 $HOLD --span 4194304
truncate -s 8M "$img"
kill -HUP "$(xsim_pid xenblkd)"
wait_log "resize.img changed size: 32768 -> 16384 sectors$"
wait_log "domain 5 vbd3/51712: told the connected frontend: sectors 16384"
fe_end shrinking
expect_js shrinking "d['resizes']" 1 "d['negotiated']['sectors']" 16384
fe shrunk 5 --vdev 51712 --raw op=read,sector=16376,expect=okay --raw op=read,sector=16384,expect=error \
    --raw op=write,sector=20000,expect=error --close
expect_js shrunk "d['negotiated']['sectors']" 16384
exit 0

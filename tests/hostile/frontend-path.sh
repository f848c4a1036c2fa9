#!/bin/bash
# The backend's "frontend" key must name a directory of the frontend
# domain itself (/local/domain/<frontend-id>/...): that is where the
# domain whose grant table we map writes its ring refs and event channel.
# A backend directory of domain 5 whose "frontend" names domain 6's
# directory (or domain 50's: "/local/domain/5" is a string prefix of
# "/local/domain/50/") would let another domain choose what we map in
# domain 5's name.  Same for a frontend-id that is not the path's domain.  Such devices are ignored with a log line, while
# correct devices of the same domains are served.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
xsim_start

img=$(make_disk d.img 8)
# Legitimate devices of domains 5, 6 and 50.
xsim_add_disk qdisk 5 51712 "aio:$img"
xsim_add_disk qdisk 6 51712 "aio:$img"
xsim_add_disk qdisk 50 51728 "aio:$img"
# Domain 5's disks 51728 and 51744 point at the other domains' directories.
xsim_add_disk qdisk 5 51728 "aio:$img" frontend=/local/domain/6/device/vbd/51712
xsim_add_disk qdisk 5 51744 "aio:$img" frontend=/local/domain/50/device/vbd/51728
# And one whose frontend-id is not the domain of its path.
xsim_add_disk qdisk 5 51760 "aio:$img" frontend-id=6
xsim_daemon --kinds qdisk

for d in "5 51712" "6 51712" "50 51728"; do
    # shellcheck disable=SC2086
    xsim_wait_key "$(be_dir qdisk $d)/state" 2
done
wait_log "domain 5 qdisk/51728: ignoring device with inconsistent frontend '/local/domain/6/device/vbd/51712'"
wait_log "domain 5 qdisk/51744: ignoring device with inconsistent frontend '/local/domain/50/device/vbd/51728'"
wait_log "domain 5 qdisk/51760: ignoring device with inconsistent frontend '/local/domain/5/device/vbd/51760'"
# Ignored means untouched: still the toolstack's Initialising, no
# features published.
for v in 51728 51744 51760; do
    expect_key "$(be_dir qdisk 5 $v)/state" 1
    expect_absent "$(be_dir qdisk 5 $v)/feature-persistent"
done
! grep -Eq "domain 5 qdisk/517(28|44|60): new device" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "a device with a foreign frontend directory was created"

# A later write (the watch fires again) changes nothing.
xenstore-write "$(be_dir qdisk 5 51728)/online" 1
settle
expect_key "$(be_dir qdisk 5 51728)/state" 1
xsim_running xenblkd || xsim_fail "daemon died"
xsim_log "ok: foreign frontend directories refused"

#!/bin/bash
# SIGHUP reloads the configuration file: a broken file is rejected with
# its FILE:LINE: reason in the log and changes nothing (the log level, the
# limits offered to a device that appears afterwards), while the size
# check of SIGHUP still runs; a fixed file then takes effect: the log
# level at once, the [disks] limits for devices that appear later, while
# a device offered the old limits before the reload may still connect with
# them; a restart-only key is logged as such and not applied.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/config-lib.sh"
xsim_start
conf=$XSIM_TMP/xenblkd.conf
cat >"$conf" <<'CONF'
[daemon]
kinds = qdisk
[log]
level = info
target = stderr
[disks]
max-ring-page-order = 3
direct-io = no
CONF
da=$(make_disk a.img 16)
db=$(make_disk b.img 16)
dc=$(make_disk c.img 16)
# Not xsim_daemon: it sets the log level on the command line.
# Its own state directory and control socket, as xsim_daemon gives: the
# host's /run/xenblkd may be another test's (or a real daemon's).
xsim_bg xenblkd "$top_builddir/src/xenblkd" --config "$conf" \
    --state-dir "$XSIM_TMP/state" --control-socket "$XSIM_TMP/control.sock"
pid=$(xsim_pid xenblkd)
log=$XSIM_LOGDIR/xenblkd.log

xsim_add_disk qdisk 5 xvda "aio:$da"
bea=$(be_dir qdisk 5 51712)
xsim_wait_key "$bea/state" 2 || xsim_fail "device A: no InitWait"
wait_fds_to "$da" 1
expect_key "$bea/max-ring-page-order" 3
check "device A opened without O_DIRECT" [ "$(daemon_fd_direct "$da")" = no ]

# ---- a broken file: rejected, the running configuration stays ----
cat >"$conf" <<'CONF'
[daemon]
kinds = qdisk
[log]
level = debug
target = stderr
[disks]
max-ring-page-order = 1
direct-io = yes
max-queues = lots
CONF
truncate -s 32M "$da"
kill -HUP "$pid"
wait_log_text "reload: $conf:9: max-queues: 'lots' is not a number or auto (1..64); keeping the running configuration"
# SIGHUP's online resize still ran.
wait_log "domain 5 qdisk/51712: $da changed size: 32768 -> 65536 sectors"
grep -q 'configuration reloaded' "$log" && xsim_fail "a broken file was reported as reloaded"
xsim_add_disk qdisk 6 xvda "aio:$db"
beb=$(be_dir qdisk 6 51712)
xsim_wait_key "$beb/state" 2 || xsim_fail "device B: no InitWait"
wait_fds_to "$db" 1
expect_key "$beb/max-ring-page-order" 3
check "device B opened without O_DIRECT (old direct-io kept)" [ "$(daemon_fd_direct "$db")" = no ]
# The broken file's level = debug was not applied: device B's creation
# logged nothing at debug level.
grep -q ' xenblkd debug: ' "$log" && xsim_fail "the broken file's log level was applied"
xsim_log "ok: broken file rejected, old log level and limits kept"

# ---- the fixed file takes effect ----
sed -i -e 's/^max-queues = lots$/max-queues = 1/' -e 's/^kinds = qdisk$/kinds = qdisk,vbd3/' "$conf"
kill -HUP "$pid"
wait_log_text "configuration reloaded from $conf: 4 settings changed"
wait_log_text "reload: [log] level: info -> debug"
wait_log_text "reload: [disks] max-ring-page-order: 3 -> 1 (for devices that connect from now on)"
wait_log_text "reload: [daemon] kinds changed (qdisk -> qdisk,vbd3): takes effect only when xenblkd restarts; still using qdisk"
xsim_add_disk qdisk 7 xvda "aio:$dc"
bec=$(be_dir qdisk 7 51712)
xsim_wait_key "$bec/state" 2 || xsim_fail "device C: no InitWait"
wait_fds_to "$dc" 1
expect_key "$bec/max-ring-page-order" 1
expect_key "$bec/multi-queue-max-queues" 1
check "device C opened with O_DIRECT (direct-io = yes)" [ "$(daemon_fd_direct "$dc")" = yes ]
# level = debug at once: device C's creation is logged at debug level.
wait_log "xenblkd debug: domain 7 qdisk/51712: params "
# Devices offered before the reload keep their offer.
expect_key "$bea/max-ring-page-order" 3
guest_start 5 --order 3
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$bea/state" 4 || xsim_fail "device A, offered order 3 before the reload, was refused"
guest_start 7 --order 2
fe_write_rings 7 51712
fe_state 7 51712 3
xsim_wait_key "$bec/state" 5 || xsim_fail "device C accepted order 2, offered 1"
wait_log "domain 7 qdisk/51712: refusing to connect: ring-page-order = '2' is not a number in 0\.\.1"
# kinds needs a restart: no vbd3 watch was added.
grep -q 'watching /local/domain/0/backend/vbd3' "$log" && xsim_fail "kinds changed without a restart"
check "daemon still running" xsim_running xenblkd
exit 0

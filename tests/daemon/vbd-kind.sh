#!/bin/bash
# The kernel's kind "vbd" is claimed only when xen-blkback is not loaded
# (/sys/module/xen_blkback absent), and the log says which way it went.
# For vbd the block hotplug script may hand over a device through
# physical-device-path; otherwise params is opened.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
bin=$top_builddir/src/xenblkd

# A private /sys/module in which xen_blkback may or may not exist, so the
# test does not depend on the host's modules (needs root and mount
# namespaces; skipped where they are not available).
fake_sysfs=1
unshare -m true 2>/dev/null || fake_sysfs=0
# with_blkback yes|no CMD...: exec CMD (same pid) seeing
# /sys/module/xen_blkback or not.
with_blkback() {
    local want=$1
    shift
    if [ "$fake_sysfs" = 1 ]; then
        exec unshare -m bash -c 'mount -t tmpfs xsim /sys/module &&
            { [ "$0" = no ] || mkdir /sys/module/xen_blkback; } && exec "$@"' "$want" "$@"
    else
        exec "$@"
    fi
}
# xsim_bg runs its command in a new bash.
export fake_sysfs
export -f with_blkback

if [ "$fake_sysfs" = 1 ] || [ ! -e /sys/module/xen_blkback ]; then
    disk=$(make_disk disk.img 8)
    xsim_add_disk vbd 5 xvda "$disk"
    xsim_bg xenblkd with_blkback no "$bin" --config /dev/null --foreground --log-level debug --state-dir "$XSIM_TMP/state" --kinds vbd \
        --control-socket "$XSIM_TMP/control.sock"
    wait_log "serving backend kind vbd: the kernel's xen-blkback is not loaded"
    be=$(be_dir vbd 5 51712)
    # The block script runs after InitWait; then the store is opened.
    xsim_wait_key "$be/state" 2
    check "not opened before the hotplug script" [ "$(daemon_fds_to "$disk")" = 0 ]
    # What Debian's block script writes for a file: a loop device; here a
    # path outside /dev is ignored and params is used.
    xsim_write "$be/physical-device-path" "$XSIM_TMP/elsewhere" "$be/hotplug-status" connected
    wait_fds_to "$disk" 1
    guest_start 5
    fe_write_rings 5 51712
    fe_state 5 51712 3
    xsim_wait_key "$be/state" 4
    fe_answer_closing closer5 vbd 5 51712
    xsim_remove_disk vbd 5 xvda || xsim_fail "vbd device did not close"
    wait_guest_released 5
    st=$(xsim_kill xenblkd TERM)
    check "clean exit (got $st)" [ "$st" = 0 ]
else
    xsim_log "xen-blkback is loaded here and mount namespaces are unavailable: part 1 skipped"
fi

if [ "$fake_sysfs" = 1 ] || [ -e /sys/module/xen_blkback ]; then
    # blkback present and vbd the only kind: nothing to serve, refuse to start.
    rc=0
    (with_blkback yes "$bin" --config /dev/null --foreground --state-dir "$XSIM_TMP/state" --kinds vbd --control-socket "$XSIM_TMP/control.sock") >"$XSIM_TMP/out" 2>&1 || rc=$?
    cat "$XSIM_TMP/out" >&2
    check "refuses to start with only vbd while blkback is loaded (exit $rc)" [ "$rc" -ne 0 ]
    grep -q "not serving backend kind vbd: the kernel's xen-blkback is loaded" "$XSIM_TMP/out" ||
        xsim_fail "no log line saying why vbd is not served"
    grep -q "no backend kind left to serve" "$XSIM_TMP/out" || xsim_fail "no start-up failure message"
    # With another kind it runs, and leaves vbd devices to the kernel.
    disk2=$(make_disk disk2.img 8)
    xsim_add_disk vbd 6 xvda "$disk2"
    xsim_add_disk qdisk 6 xvdb "$disk2"
    xsim_bg xenblkd2 with_blkback yes "$bin" --config /dev/null --foreground --log-level debug --state-dir "$XSIM_TMP/state2" --kinds vbd,qdisk \
        --control-socket "$XSIM_TMP/control2.sock"
    xsim_wait_key "$(be_dir qdisk 6 51728)/state" 2
    settle --socket "$XSIM_TMP/control2.sock"
    expect_key "$(be_dir vbd 6 51712)/state" 1
    grep -q "not serving backend kind vbd" "$XSIM_LOGDIR/xenblkd2.log" || xsim_fail "no log line about vbd"
else
    xsim_log "xen-blkback is not loaded here and mount namespaces are unavailable: part 2 skipped"
fi
exit 0

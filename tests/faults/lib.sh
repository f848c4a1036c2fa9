# tests/faults/lib.sh - helpers for the fault-injection tests (bash).
# shellcheck shell=bash
#
# Sourced after tests/harness/env.sh, tests/daemon/lib.sh and
# tests/daemon/matrix-lib.sh.  The faults are real: a FUSE file
# (tests/daemon/fuse-hold.py) under a loop device fails or holds the I/O
# a test chooses, a full filesystem refuses to grow a sparse image.

FUSE_HOLD=$top_srcdir/tests/daemon/fuse-hold.py

# fuse_requirements: skip unless FUSE and loop devices can be used here.
fuse_requirements() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import fusepy' 2>/dev/null ||
        xsim_skip "python3-fusepy is not installed (tests/deps/faults.txt)"
    [ -c /dev/fuse ] || xsim_skip "no /dev/fuse"
    command -v losetup >/dev/null || xsim_skip "losetup is not installed"
}

# fuse_disk NAME SIZE_MIB [HOLD_OFFSET]: a SIZE_MIB disk stored in
# $XSIM_TMP/NAME.store, served through fuse-hold.py (process fuse-NAME,
# control directory $XSIM_TMP/NAME.ctl) and a loop device; sets FUSE_DEV
# to the loop device.  HOLD_OFFSET: the byte offset of the write that
# CTL/hold holds (default none).
fuse_disk() {
    local name=$1 mnt=$XSIM_TMP/$1.mnt ctl=$XSIM_TMP/$1.ctl end i
    mkdir -p "$mnt" "$ctl"
    truncate -s "$2M" "$XSIM_TMP/$name.store"
    xsim_bg "fuse-$name" /usr/bin/python3 "$FUSE_HOLD" "$mnt" "$XSIM_TMP/$name.store" "${3:--1}" "$ctl"
    xsim_on_exit "umount -l '$mnt' 2>/dev/null || true"
    end=$(xsim_deadline 20)
    until [ -f "$mnt/disk.img" ]; do
        xsim_past "$end" && xsim_skip "cannot mount the FUSE filesystem: $(tail -3 "$XSIM_LOGDIR/fuse-$name.log")"
        xsim_running "fuse-$name" || xsim_skip "fuse-hold.py exited: $(tail -3 "$XSIM_LOGDIR/fuse-$name.log")"
        sleep 0.05
    done
    FUSE_DEV=
    for ((i = 0; i < 5; i++)); do
        FUSE_DEV=$(losetup -f --show "$mnt/disk.img" 2>"$XSIM_LOGDIR/losetup-$name.log") && break
        FUSE_DEV=
        sleep 0.2     # another test took the free device first: try again
    done
    [ -n "$FUSE_DEV" ] || xsim_skip "cannot set up a loop device: $(cat "$XSIM_LOGDIR/losetup-$name.log")"
    xsim_on_exit "losetup -d $FUSE_DEV"
}

# ctl_state DOMID: the daemon's state name for the first device of DOMID.
ctl_state() {
    python3 - "$XSIM_TMP/control.sock" "$1" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["top_srcdir"] + "/tests/daemon")
import ctl
rep = ctl.Client(sys.argv[1]).call({"command": "list"})
print([d["state"] for d in rep["devices"] if d["domid"] == int(sys.argv[2])][0])
PY
}

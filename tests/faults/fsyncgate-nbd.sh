#!/bin/bash
# The disk's NBD export (local attach: an HVM guest's device model,
# nbdcopy, qemu-img) shares the write-back-lost state of its rings
# (tests/faults/fsyncgate.sh, man xenblkd WRITE-BACK ERRORS).  Its clients
# work on a duplicate of the rings' fd, one open file, so Linux reports a
# write-back error to whichever of them syncs first, and once only.  The
# store is a FUSE file under a loop device failing the write-back of
# sectors 128..135, opened without O_DIRECT (--no-direct-io).
# 1. Guest 5 writes sector 128 (OKAY, page cache) and its flush meets the
#    write-back error (ERROR): an NBD flush of the disk then fails (EIO),
#    and so does an NBD write with FUA elsewhere on the disk.
# 2. A new connection of the guest starts clean.  An NBD client writes
#    sector 128 and its flush meets the error (EIO, logged once, by the
#    NBD connection); the daemon is killed (SIGKILL) before the guest
#    flushes, and the next one resumes the ring: the guest's next flush is
#    ERROR, not OKAY (the journal learnt of the loss when the NBD client
#    met it).
# 3. An NBD client that met the error keeps its connection while a
#    frontend connects (which starts the disk's state afresh): its next
#    flush is still EIO.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/faults/lib.sh"
fuse_requirements
/usr/bin/python3 -c 'import nbd' 2>/dev/null ||
    xsim_skip "no nbd module for /usr/bin/python3 (Debian: python3-libnbd)"
xsim_start
fuse_disk d5 16
ctl=$XSIM_TMP/d5.ctl go=$XSIM_TMP/go
be5=$(be_dir vbd3 5 51712)
uri="nbd+unix:///?socket=$XSIM_TMP/state/nbd/vbd3-5-51712.sock"
xsim_daemon --kinds vbd3 --no-direct-io
vbd3_disk 5 51712 "$FUSE_DEV"
echo "65536 4096" > "$ctl/eio-write"

# nbd_expect_eio WHAT PYTHON: run PYTHON (nbdsh, handle h) on the disk's
# socket; it must raise nbd.Error with EIO.
nbd_expect_eio() {
    local out
    out=$(/usr/bin/python3 -m nbd -u "$uri" -c "
import errno
try:
    $2
except nbd.Error as e:
    print('errno', errno.errorcode.get(e.errno, e.errno))
else:
    print('success')
" 2>&1) || xsim_fail "nbdsh failed: $out"
    check "NBD $1 answers EIO: $out" [ "$out" = "errno EIO" ]
}

# 1. The ring meets the error first.
fe_hold a5 5 --vdev 51712 --workload none --raw op=write,sector=128,expect=okay \
    --raw op=flush,nr_segments=0,expect=error --hold 600 --close
check "the storage failed the write-back itself" grep -q '^write 65536 ' "$ctl/eio-log"
nbd_expect_eio "flush after the ring's flush failed" 'h.flush()'
nbd_expect_eio "FUA write after the ring's flush failed" \
    'h.pwrite(b"\x5a" * 4096, 1 << 20, nbd.CMD_FLAG_FUA)'
n=$(grep -c "flushing $FUSE_DEV failed" "$XSIM_LOGDIR/xenblkd.log" || true)
check "the write-back error is logged once: $n" [ "$n" = 1 ]
fe_end a5
xsim_wait_key "$be5/state" 6 20 || xsim_fail "guest 5's backend did not reach Closed"

# 2. An NBD client meets it first.  The guest's flush waits for $go.
xsim_bg b5 "$XBD_FE" --domid 5 --vdev 51712 --workload none --timeout 60 \
    --raw "op=flush,nr_segments=0,expect=error,after=$go" --close
xsim_wait_key "$be5/state" 4 20 || xsim_fail "guest 5 did not connect again"
nlog=$({ cat "$ctl/eio-log" 2>/dev/null || true; } | grep -c '^write 65536 ' || true)
nbd_expect_eio "flush meeting the write-back error" \
    'h.pwrite(b"\xa5" * 4096, 65536); h.flush()'
check "the storage failed the NBD client's write-back" \
    [ "$(grep -c '^write 65536 ' "$ctl/eio-log")" -gt "$nlog" ]
check "the NBD connection logs the write-back error" \
    grep -Eq "domain 5 vbd3/51712 nbd #[0-9]+: flushing $FUSE_DEV failed: Input/output error" \
    "$XSIM_LOGDIR/xenblkd.log"
# The daemon dies before the guest's next flush: the journal must already
# say the write-back was lost (a new daemon's fdatasync reports nothing).
kill -KILL "$(xsim_pid xenblkd)"
st=$(xsim_wait_exit xenblkd 30) || true
[ "$st" = 137 ] || xsim_fail "the daemon was not killed by SIGKILL (status $st)"
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds vbd3 --no-direct-io
wait_log "a flush of $FUSE_DEV failed before the restart" 20 xenblkd2
touch "$go"
st=$(xsim_wait_exit b5 60) || true
[ "$st" = 0 ] || { tail -n 20 "$XSIM_LOGDIR/b5.log" >&2
    xsim_fail "guest 5's flush after the NBD client's failed was not ERROR (status $st)"; }
check "guest 5's flush is ERROR" grep -q '^raw vdev=.*(error)' "$XSIM_LOGDIR/b5.log"
n=$(grep -c "flushing $FUSE_DEV failed" "$XSIM_LOGDIR/xenblkd.log" || true)
check "each connection logs the write-back error once: $n" [ "$n" = 2 ]
xsim_wait_key "$be5/state" 6 20 || xsim_fail "guest 5's backend did not reach Closed"

# 3. The NBD client meets the error with no frontend connected, keeps its
# connection, and flushes again once a frontend has connected.  The
# export is open again once the backend is back at InitWait.
rm -f "$go"
fe_state 5 51712 1
xsim_wait_key "$be5/state" 2 20 || xsim_fail "guest 5's backend did not go back to InitWait"
end=$(xsim_deadline 20)
until [ -S "$XSIM_TMP/state/nbd/vbd3-5-51712.sock" ]; do
    xsim_past "$end" && xsim_fail "the NBD export did not open again at InitWait"
    sleep 0.05
done
xsim_bg nbdc /usr/bin/python3 -c "
import nbd, os, time, errno
h = nbd.NBD(); h.connect_uri('$uri')
def fl(tag):
    try:
        h.flush(); print(tag, 'success', flush=True)
    except nbd.Error as e:
        print(tag, 'errno', errno.errorcode.get(e.errno, e.errno), flush=True)
h.pwrite(b'\xa5' * 4096, 65536); fl('first')
while not os.path.exists('$go'):
    time.sleep(0.05)
fl('second')
"
end=$(xsim_deadline 20)
until grep -q '^first' "$XSIM_LOGDIR/nbdc.log" 2>/dev/null; do
    xsim_past "$end" && xsim_fail "the NBD client's first flush was not answered"
    sleep 0.05
done
check "the NBD client's flush meets the error: $(grep '^first' "$XSIM_LOGDIR/nbdc.log")" \
    grep -q '^first errno EIO' "$XSIM_LOGDIR/nbdc.log"
fe_hold c5 5 --vdev 51712 --workload none --hold 600 --close
touch "$go"
st=$(xsim_wait_exit nbdc 30) || true
check "after a frontend connected, the same NBD connection's flush is still EIO: $(tail -n 1 "$XSIM_LOGDIR/nbdc.log")" \
    grep -q '^second errno EIO' "$XSIM_LOGDIR/nbdc.log"
fe_end c5
xsim_log PASS

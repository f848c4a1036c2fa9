#!/bin/bash
# Local attach over NBD: every disk is served on
# <state-dir>/nbd/<kind>-<domid>-<devid>.sock while its backing store is
# open, and a vbd3 disk publishes that socket as physical-device-path (what
# libxl turns into nbd+unix:///?socket=...).  Checked with Debian's libnbd
# tools: the size and read-only flag (nbdinfo), the bytes (nbdcopy), a
# write that lands and one refused on a read-only disk (nbdsh); a client
# that breaks the protocol or stalls is cut off or held back without
# disturbing the guest's ring; the socket goes when the device closes.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
for t in nbdinfo nbdcopy; do
    command -v "$t" >/dev/null || xsim_skip "$t not installed (Debian: libnbd-bin)"
done
# nbdsh is "python3 -m nbd": Debian's python3, whatever is first in PATH.
/usr/bin/python3 -c 'import nbd' 2>/dev/null || xsim_skip "no nbd module for /usr/bin/python3 (Debian: python3-libnbd)"
nbdsh() { /usr/bin/python3 -m nbd "$@"; }
xsim_start
fe=$top_builddir/tests/frontend/xsim-blkfront
client="python3 $top_srcdir/tests/daemon/nbd-client.py"
nbddir=$XSIM_TMP/state/nbd
sock=$nbddir/vbd3-5-51712.sock
rosock=$nbddir/vbd3-5-51728.sock
uri="nbd+unix:///?socket=$sock"

disk=$XSIM_TMP/disk.img
head -c $((16 << 20)) /dev/urandom >"$disk"
ro=$XSIM_TMP/ro.img
head -c $((8 << 20)) /dev/urandom >"$ro"
xsim_add_disk vbd3 5 xvda "aio:$disk"
xsim_add_disk vbd3 5 xvdb "aio:$ro" r
xsim_daemon --kinds vbd3
be=$(be_dir vbd3 5 51712)
robe=$(be_dir vbd3 5 51728)
xsim_wait_key "$be/state" 2
xsim_wait_key "$robe/state" 2
# Before the hotplug script ran, the disk is not open: no socket yet.
check "no socket before the hotplug script" [ ! -e "$sock" ]
expect_absent "$be/physical-device-path"
xsim_hotplug_connected vbd3 5 xvda
xsim_hotplug_connected vbd3 5 xvdb
xsim_wait_key "$be/physical-device-path" "$sock"
xsim_wait_key "$robe/physical-device-path" "$rosock"
check "socket exists" [ -S "$sock" ]
check "socket is root's only (0600)" [ "$(stat -c %a "$sock")" = 600 ]
check "socket directory is private (0700)" [ "$(stat -c %a "$nbddir")" = 700 ]

# Size and flags.
nbdinfo --json "$uri" >"$XSIM_TMP/info.json" 2>"$XSIM_LOGDIR/nbdinfo.log" ||
    xsim_fail "nbdinfo failed: $(cat "$XSIM_LOGDIR/nbdinfo.log")"
cat "$XSIM_TMP/info.json" >&2
jq_() { python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["exports"][0]; print(e[sys.argv[2]])' "$@"; }
check "nbdinfo: size 16 MiB" [ "$(jq_ "$XSIM_TMP/info.json" export-size)" = $((16 << 20)) ]
check "nbdinfo: read-write" [ "$(jq_ "$XSIM_TMP/info.json" is_read_only)" = False ]
check "nbdinfo: flush offered" [ "$(jq_ "$XSIM_TMP/info.json" can_flush)" = True ]
nbdinfo --json "nbd+unix:///?socket=$rosock" >"$XSIM_TMP/roinfo.json" ||
    xsim_fail "nbdinfo failed on the read-only disk"
check "nbdinfo: read-only disk is read-only" [ "$(jq_ "$XSIM_TMP/roinfo.json" is_read_only)" = True ]
check "nbdinfo: size 8 MiB" [ "$(jq_ "$XSIM_TMP/roinfo.json" export-size)" = $((8 << 20)) ]

# The bytes, whole disk.
nbdcopy "$uri" "$XSIM_TMP/copy.img" || xsim_fail "nbdcopy failed"
check "nbdcopy's copy equals the backing file" cmp "$disk" "$XSIM_TMP/copy.img"

# A write lands in the file (then a flush, and a write with FUA).
nbdsh -u "$uri" -c '
h.pwrite(b"\xab" * 8192, 1 << 20)
h.flush()
h.pwrite(b"\xcd" * 4096, 3 << 20, nbd.CMD_FLAG_FUA)
' || xsim_fail "nbdsh write failed"
check "written bytes are in the file" \
    cmp <(head -c 8192 /dev/zero | tr '\0' '\253') <(dd if="$disk" bs=4096 skip=256 count=2 status=none)
check "FUA write is in the file" \
    cmp <(head -c 4096 /dev/zero | tr '\0' '\315') <(dd if="$disk" bs=4096 skip=768 count=1 status=none)
# An unaligned request is refused cleanly (the store is read with
# O_DIRECT), the connection carries on.
DISK=$disk nbdsh -u "$uri" -c '
import errno, os, sys
h.set_strict_mode(0)
try:
    h.pread(100, 1)
    sys.exit("unaligned read accepted")
except nbd.Error as e:
    assert e.errnum == errno.EINVAL, e
assert h.pread(512, 0) == open(os.environ["DISK"], "rb").read(512)
' || xsim_fail "unaligned request not refused with EINVAL"

# A read-only disk refuses writes: libnbd would not even send one to a
# read-only export, so strict mode off, and our own raw client too.
nbdsh -u "nbd+unix:///?socket=$rosock" -c '
import errno, sys
h.set_strict_mode(0)
try:
    h.pwrite(b"x" * 4096, 0)
    sys.exit("write accepted")
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e
' || xsim_fail "write to a read-only disk not refused with EPERM"
check "raw write to the read-only disk: EPERM (1)" [ "$($client "$rosock" ro-write)" = 1 ]
check "read-only file unchanged" cmp <(dd if="$ro" bs=4096 count=1 status=none) \
    <(nbdsh -u "nbd+unix:///?socket=$rosock" -c 'import sys; sys.stdout.buffer.write(h.pread(4096, 0))')

wait_file() {
    local end
    end=$(xsim__deadline 10)
    until [ -s "$1" ]; do
        xsim__past "$end" && xsim_fail "$1 never appeared"
        sleep 0.05
    done
}

# One client stalls with 64 reads of 4 MiB whose replies it does not
# read, others break the protocol: each bad one is disconnected (log), and
# meanwhile the guest connects its ring and runs a verified workload to
# the end; the staller then gets every reply once it reads.
$client "$sock" stall "$XSIM_TMP/stall.release" >"$XSIM_TMP/stall.out" 2>"$XSIM_LOGDIR/stall.log" &
staller=$!
wait_file "$XSIM_TMP/stall.out"
# The daemon holds two of its reads (8 MiB of buffers per connection),
# has parsed the third's header and reads no further: the other 61
# requests (28 bytes each) stay in its socket's receive queue.
end=$(xsim__deadline 10)
until [ "$(ss -xH state connected src "$sock" | awk '{q += $3} END {print q + 0}')" = $((61 * 28)) ]; do
    xsim__past "$end" && xsim_fail "the daemon's receive queue holds $(ss -xH state connected src "$sock" | awk '{q += $3} END {print q + 0}') bytes, want $((61 * 28))"
    sleep 0.05
done
xsim_log "ok: the daemon stopped reading the stalled client at its 8 MiB bound"
$client "$sock" silent >"$XSIM_LOGDIR/silent.log" 2>&1 &
silent=$!
check "garbage client is disconnected" $client "$sock" garbage
wait_log "client does not speak the fixed newstyle handshake|unknown client flags"
check "bad request magic: disconnected" $client "$sock" bad-request
wait_log "bad request magic: disconnecting the client"
check "64 MiB write: disconnected" $client "$sock" oversize
wait_log "write payload too large: disconnecting the client"
wait $silent || xsim_fail "a client silent after the greeting was not disconnected"
wait_log "no complete handshake in time: disconnecting the client" 20
"$fe" --domid 5 --vdev 51712 --workload verify --count 200 --span 8M --hold 300 \
    --hold-until "$XSIM_TMP/fe.release" --close >"$XSIM_LOGDIR/fe.log" 2>&1 &
feh=$!
wait_log "workload done, holding" 60 fe
xsim_wait_key "$be/state" 4
xsim_log "ok: the guest's verified workload completed while an NBD client stalled"
touch "$XSIM_TMP/stall.release"
wait $staller || { cat "$XSIM_LOGDIR/stall.log"; xsim_fail "the stalled client did not get its replies"; }
xsim_log "ok: the stalled client got its 64 replies"
nbdinfo "$uri" >/dev/null || xsim_fail "no new client served after the bad ones"

# A fifth client at once is turned away, the four others stay served.
for i in 1 2 3 4; do
    HELD=$XSIM_TMP/held$i RELEASE=$XSIM_TMP/holders.release nbdsh -u "$uri" -c '
import os, time
h.pread(4096, 0)
open(os.environ["HELD"], "w").write("x")
while not os.path.exists(os.environ["RELEASE"]):
    time.sleep(0.05)
h.pread(4096, 0)
' >"$XSIM_LOGDIR/holder$i.log" 2>&1 &
    holders[i]=$!
done
for i in 1 2 3 4; do wait_file "$XSIM_TMP/held$i"; done
if nbdinfo "$uri" >/dev/null 2>&1; then xsim_fail "a fifth client was served"; fi
wait_log "4 clients already: refusing more"
touch "$XSIM_TMP/holders.release"
for i in 1 2 3 4; do
    wait "${holders[i]}" || { cat "$XSIM_LOGDIR/holder$i.log"; xsim_fail "holder $i failed"; }
done

# The socket goes with the open disk: when the frontend closes, back when
# it starts again, and for good when the toolstack removes the device.
touch "$XSIM_TMP/fe.release"
wait $feh || { cat "$XSIM_LOGDIR/fe.log"; xsim_fail "guest workload failed"; }
xsim_wait_key "$be/state" 6
check "socket removed while the device is Closed" [ ! -e "$sock" ]
fe_state 5 51712 1
xsim_wait_key "$be/state" 2
end=$(xsim__deadline 10)
until [ -S "$sock" ]; do
    xsim__past "$end" && xsim_fail "socket not back after the frontend restarted"
    sleep 0.05
done
nbdinfo "$uri" >/dev/null || xsim_fail "socket not back after the frontend restarted"
xsim_remove_disk vbd3 5 xvda || xsim_fail "removal did not close"
wait_log "domain 5 vbd3/51712: backend directory removed, device freed"
check "socket removed with the device" [ ! -e "$sock" ]
check "read-only disk's socket still there" [ -S "$rosock" ]

# A client connected before its disk shrinks (SIGHUP) gets nothing past
# the new end: a write there would grow the file again.  Inside, it is
# served as before.
shrink=$XSIM_TMP/shrink.img
head -c $((16 << 20)) /dev/urandom >"$shrink"
xsim_add_disk vbd3 6 xvda "aio:$shrink"
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 2
xsim_hotplug_connected vbd3 6 xvda
ssock=$nbddir/vbd3-6-51712.sock
xsim_wait_key "$(be_dir vbd3 6 51712)/physical-device-path" "$ssock"
READY=$XSIM_TMP/shrink.ready SHRUNK=$XSIM_TMP/shrunk nbdsh -u "nbd+unix:///?socket=$ssock" -c '
import os, sys, time
h.pwrite(b"\x11" * 4096, 12 << 20)
open(os.environ["READY"], "w").write("x")
while not os.path.exists(os.environ["SHRUNK"]):
    time.sleep(0.05)
try:
    h.pwrite(b"\x22" * 4096, 12 << 20)
    sys.exit("a write past the new end was accepted")
except nbd.Error as e:
    print("past the new end: refused:", e)
h.pwrite(b"\x33" * 4096, 4 << 20)
' >"$XSIM_LOGDIR/shrink.log" 2>&1 &
shrinker=$!
wait_file "$XSIM_TMP/shrink.ready"
truncate -s 8M "$shrink"
kill -HUP "$(xsim_pid xenblkd)"
wait_log "domain 6 vbd3/51712: .*shrink.img changed size: 32768 -> 16384 sectors"
touch "$XSIM_TMP/shrunk"
wait $shrinker || { cat "$XSIM_LOGDIR/shrink.log"; xsim_fail "the client connected before the shrink was not refused past the new end, or not served inside"; }
check "the shrunk file stays 8 MiB" [ "$(stat -c %s "$shrink")" = $((8 << 20)) ]
check "the write inside landed" cmp -s -n 4096 -i $((4 << 20)):0 "$shrink" <(head -c 4096 /dev/zero | tr '\0' '\063')
exit 0

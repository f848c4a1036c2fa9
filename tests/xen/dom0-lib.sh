# Helpers for the dom0 side of the real-Xen scenarios (sourced by
# dom0-init.sh before share/scenario.dom0).  They start guests with xl, wait
# for what the guest prints on its console (logged by xenconsoled), and cut
# the guest's reports into files under $R/<guest>/ for the host-side test.
S=${S:-/mnt/share}
R=${R:-$S/results}
DISKDIR=/var/lib/xbd
CONSOLE_DIR=$R/console   # xenconsoled logs there (dom0-init.sh)
GUEST_MEM=${GUEST_MEM:-512}
# Every wait of a scenario is for an event; its bound only stops a hang,
# and must let a host whose CPUs are busy with other work pass: under TCG
# the boot then runs 3-4 times slower than on an idle machine
# (tests/xen/README.md, "Timeouts").  TSCALE multiplies the short bounds
# sized from idle runs.
TSCALE=${XBD_TSCALE:-4}

now() { cut -d' ' -f1 /proc/uptime; }
note() { echo "XBD-DOM0 $* t=$(now)" | tee -a "$R/events.txt" >/dev/console; }

# make_disk NAME MIB: a sparse raw image on dom0's root filesystem.
make_disk() {
    mkdir -p "$DISKDIR"
    rm -f "$DISKDIR/$1.img"
    truncate -s "${2}M" "$DISKDIR/$1.img"
    echo "$DISKDIR/$1.img"
}

# The hotplug script for xenblkd disks: the project's own when installed
# (make install puts it in Xen's script directory, /etc/xen/scripts),
# else a stub doing only what libxl needs (hotplug-status=connected).
xenblkd_script() {
    local s=/etc/xen/scripts/block-xenblkd
    [ -x "$s" ] && { echo "$s"; return; }
    s=/usr/local/lib/xbd-hotplug-stub
    if [ ! -x "$s" ]; then
        printf '#!/bin/sh\n[ "$1" = add ] && xenstore-write "$XENBUS_PATH/hotplug-status" connected\nexit 0\n' >"$s"
        chmod 755 "$s"
    fi
    echo "$s"
}

# make_boot_disk NAME MIB "KERNEL ARGS": a disk image pygrub can boot: an
# MBR partition table with one Linux partition at 1 MiB holding an ext4
# file system (mkfs.ext4 -d, no mount) with the guest's kernel and
# initramfs and a /boot/grub/grub.cfg naming them.
make_boot_disk() {
    local img=$DISKDIR/$1.img dir=/tmp/$1.root sectors=$(( $2 * 2048 - 2048 ))
    rm -rf "$dir"
    mkdir -p "$dir/boot/grub" "$DISKDIR"
    cp /var/lib/xbd/domU-kernel "$dir/boot/vmlinuz-xbd"
    cp /var/lib/xbd/domU-initrd "$dir/boot/initrd-xbd"
    cat >"$dir/boot/grub/grub.cfg" <<EOF
set default=0
set timeout=0
menuentry 'xenblkd pygrub test' {
    linux /boot/vmlinuz-xbd $3
    initrd /boot/initrd-xbd
}
EOF
    rm -f "$img"
    mkfs.ext4 -q -F -L xbdboot -E offset=1048576 -d "$dir" "$img" "$(( $2 - 1 ))M" >&2 || return 1
    # The partition entry: bootable, type 0x83, LBA start 2048, the length
    # in sectors (little-endian), then the 0x55AA signature.
    printf "\\200\\000\\000\\000\\203\\000\\000\\000$(le32 2048)$(le32 "$sectors")" |
        dd of="$img" bs=1 seek=446 conv=notrunc status=none
    printf '\125\252' | dd of="$img" bs=1 seek=510 conv=notrunc status=none
    rm -rf "$dir"
    echo "$img"
}
# le32 N: N as 4 little-endian bytes, in printf's octal escapes.
le32() {
    local i
    for i in 0 8 16 24; do printf '\\%03o' $(( ($1 >> i) & 255 )); done
}

# Disk lines, one per backend under comparison.
disk_blkback() { echo "format=raw,vdev=$2,access=rw,backendtype=phy,target=$1"; }
disk_qdisk()   { echo "format=raw,vdev=$2,access=rw,backendtype=qdisk,target=$1"; }
disk_xenblkd() { echo "format=raw,vdev=$2,access=rw,backendtype=phy,script=$(xenblkd_script),target=$1"; }
# Xen >= 4.19: backendtype=tap is the vbd3 kind, xenblkd's default, beside
# a loaded kernel blkback.  disk_tap_aio: the positional "aio:" form; xl
# drops a positional target's aio: (or tap:aio:) prefix without choosing
# the backend, so backendtype=tap must still be given: "tap:aio:" alone
# went to blkback (backend/vbd) in the first 4.20 boot.
disk_tap()     { echo "format=raw,vdev=$2,access=rw,backendtype=tap,script=$(xenblkd_script),target=$1"; }
disk_tap_aio() { echo "backendtype=tap,script=$(xenblkd_script),aio:$1,$2,w"; }

console_log() { echo "$CONSOLE_DIR/guest-$1.log"; }

# guest_start NAME JOBS "EXTRA KERNEL ARGS" DISKLINE...
guest_start() {
    local name=$1 jobs=$2 extra=$3 d list=""
    shift 3
    for d in "$@"; do list="$list${list:+, }'$d'"; done
    mkdir -p "$R/$name"
    # GUEST_BOOTLOADER=pygrub: the kernel, initramfs and command line come
    # from the first disk's grub.cfg (see make_boot_disk), not from here.
    local boot="kernel = \"/var/lib/xbd/domU-kernel\"
ramdisk = \"/var/lib/xbd/domU-initrd\"
extra = \"console=hvc0 loglevel=1 xbd.job=$jobs $extra\""
    [ -n "${GUEST_BOOTLOADER:-}" ] && boot="bootloader = \"$GUEST_BOOTLOADER\""
    cat >"/tmp/$name.cfg" <<EOF
name = "$name"
type = "pv"
$boot
memory = $GUEST_MEM
vcpus = ${GUEST_VCPUS:-1}
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
disk = [ $list ]
EOF
    cp "/tmp/$name.cfg" "$R/$name/xl.cfg"
    note "create $name"
    # -e: no xl monitor process per guest.  Debian's 4.17 xl monitor was
    # seen to segfault when its guest powered off (and dom0 to wedge after
    # it); guest_wait_gone destroys a guest that shut down instead.
    timeout 480 xl -v create -e "/tmp/$name.cfg" >"$R/$name/xl-create.log" 2>&1
    local rc=$?
    echo "$rc" >"$R/$name/xl-create.rc"
    note "created $name rc=$rc"
    return $rc
}

# guest_wait_line NAME EXTENDED-REGEX SECONDS [MIN-COUNT]: wait until the
# guest's console shows the pattern (at least MIN-COUNT times).
guest_wait_line() {
    local log end n
    log=$(console_log "$1")
    end=$(( $(date +%s) + $3 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        n=$(tr -d '\r' <"$log" 2>/dev/null | grep -cE "$2")
        [ "$n" -ge "${4:-1}" ] && return 0
        guest_running "$1" || { note "$1 gone or shut down while waiting for /$2/"; return 1; }
        sleep 1
    done
    note "timeout waiting for /$2/ from $1"
    return 1
}

# guest_running NAME: the domain exists and has neither shut down nor crashed.
guest_running() {
    local state
    state=$(xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }')
    case "$state" in ''|*s*|*c*) return 1 ;; esac
}

# guest_count NAME EXTENDED-REGEX: how many console lines match.
guest_count() { tr -d '\r' <"$(console_log "$1")" 2>/dev/null | grep -cE "$2"; }

# guest_wait_gone NAME SECONDS: wait for the guest to power off; destroy it
# (and say so) when it does not.
guest_wait_gone() {
    local end=$(( $(date +%s) + $2 )) state size last_size=-1 since
    since=$(date +%s)
    while xl domid "$1" >/dev/null 2>&1; do
        # A guest whose console stays silent for GUEST_STALL seconds is
        # stuck (seen: fio on a QEMU qdisk disk whose QEMU had died): destroy
        # it now rather than at the deadline.  Measured in seconds, not
        # loop turns: under TCG one turn (xl domid + xl list) takes 2-3 s.
        # Longer than the guest's own deadline for a round (VERIFY_SECS,
        # 600 s, domU-init.sh), during which it prints nothing: the guest
        # abandons a hung disk and says so before it is destroyed.
        size=$(stat -c %s "$(console_log "$1")" 2>/dev/null || echo 0)
        [ "$size" = "$last_size" ] || { since=$(date +%s); last_size=$size; }
        if [ $(( $(date +%s) - since )) -ge "${GUEST_STALL:-720}" ]; then
            note "stalled: $1 printed nothing for ${GUEST_STALL:-720} s: destroying it"
            echo stalled >"$R/$1/status"
            timeout 60 xl destroy "$1" >>"$R/$1/xl-destroy.log" 2>&1
            return 1
        fi
        # Shut down (poweroff) or crashed: there is no xl monitor to apply
        # on_poweroff (xl create -e), so destroy it here.
        state=$(xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }')
        case "$state" in
        *s*|*c*)
            note "$1 has shut down (state $state): destroying it"
            timeout 60 xl destroy "$1" >>"$R/$1/xl-destroy.log" 2>&1
            ;;
        esac
        if [ "$(date +%s)" -ge "$end" ]; then
            note "timeout: destroying $1 (state $state)"
            echo timeout >"$R/$1/status"
            xl destroy "$1" >>"$R/$1/xl-destroy.log" 2>&1
            return 1
        fi
        sleep 1
    done
    note "gone $1"
    return 0
}

# guest_collect NAME: the console log, the guest's events (XBD-* lines) and
# each XBD-BEGIN/XBD-END block as its own file, under $R/NAME/.
guest_collect() {
    local log dir
    log=$(console_log "$1")
    dir=$R/$1
    mkdir -p "$dir"
    tr -d '\r' <"$log" >"$dir/console.log" 2>/dev/null
    cp /var/log/xen/xl-"$1".log "$dir/xl-monitor.log" 2>/dev/null
    grep -E '^XBD-' "$dir/console.log" | grep -vE '^XBD-(BEGIN|END)' >"$dir/events.txt"
    awk -v dir="$dir" '
        /^XBD-BEGIN / { f = dir "/" $2; printf "" > f; next }
        /^XBD-END / { if (f != "") { print "# " $2 >> f; close(f) }; f = ""; next }
        f != "" { sub(/^  /, ""); print >> f }' "$dir/console.log"
}

# guest_run NAME JOBS "EXTRA" SECONDS DISKLINE...: a whole guest lifetime.
guest_run() {
    local name=$1 jobs=$2 extra=$3 secs=$4
    shift 4
    guest_start "$name" "$jobs" "$extra" "$@" || { guest_collect "$name"; return 1; }
    # What both ends published once the guest's disks are up.
    guest_wait_line "$name" '^XBD-BEGIN describe' 120 && snapshot "$name" xenstore-connected.txt
    guest_wait_gone "$name" "$secs"
    local rc=$?
    guest_collect "$name"
    return $rc
}

# snapshot NAME FILE: the backend and frontend directories in xenstore, as
# they are now.
snapshot() {
    local d
    mkdir -p "$R/$1"
    { xenstore-ls -fp /local/domain/0/backend
      for d in $(xenstore-list /local/domain); do
          [ "$d" = 0 ] || xenstore-ls -fp "/local/domain/$d/device" 2>/dev/null
      done; } >"$R/$1/$2" 2>&1
}

# --- xenblkd -----------------------------------------------------------------
XENBLKD_PID=
xenblkd_start() {  # xenblkd_start KINDS [more args]
    local kinds=$1
    shift
    note "xenblkd start --kinds $kinds $*"
    command -v xenblkd >"$R/xenblkd.path" 2>&1
    xenblkd --foreground --kinds "$kinds" --log-level debug "$@" >>"$R/xenblkd.log" 2>&1 &
    XENBLKD_PID=$!
    # Up once its control socket answers (xenblkd opens it after it has
    # set its xenstore watches), or gone: events, where a fixed pause let
    # a slow start-up pass as a good one and a late failure go unseen.
    local i
    for i in $(seq $((60 * TSCALE))); do
        kill -0 "$XENBLKD_PID" 2>/dev/null || break
        xenblkctl ping >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    if ! kill -0 "$XENBLKD_PID" 2>/dev/null; then
        wait "$XENBLKD_PID"
        note "xenblkd exited at start-up with status $?"
        XENBLKD_PID=
        return 1
    fi
    note "xenblkd (pid $XENBLKD_PID) not answering on its control socket after $((15 * TSCALE)) s"
    return 1
}
# gntdev_maps [PID]: how many grant mappings the running xenblkd (or PID)
# holds: one mmap of /dev/xen/gntdev per group of persistent grants and
# one per ring; gntdev's VMAs never merge.  Prints "gone" and fails when
# there is no process to count on: a count of a process that is not
# there is no 0.
gntdev_maps() {
    local maps pid=${1:-$XENBLKD_PID}
    if [ -z "$pid" ] || ! maps=$(cat "/proc/$pid/maps" 2>/dev/null) || [ -z "$maps" ]; then
        echo gone
        return 1
    fi
    printf '%s\n' "$maps" | grep -c '/dev/xen/gntdev'
    return 0
}
# domain_freed DOMID SECONDS: wait until Xen has freed a destroyed domain.
# A domain whose pages dom0 still maps (a grant mapping xenblkd leaked)
# stays listed, dying, as "(null)": `xl list` shows it by its id.
domain_freed() {
    local i
    for i in $(seq "$2"); do
        xl list 2>/dev/null | awk -v id="$1" 'NR > 1 && $2 == id { f = 1 } END { exit !f }' || return 0
        sleep 1
    done
    xl list >"$R/xl-list-dying-$1.txt" 2>&1
    return 1
}
# xenblkd_io_wait DOMID SECONDS: wait until xenblkd is serving the
# guest's I/O: a stats read shows a request of the guest in flight, or the
# guest's request count grew since the read before (it is inside a fio
# run, not between two).  Prints what it saw ("in_flight=N requests=N",
# "moved=N" when the count grew); fails, printing "idle", when neither
# happened within SECONDS.
xenblkd_io_wait() {
    local end=$(( $(date +%s) + $2 )) js inf req prev=
    while [ "$(date +%s)" -lt "$end" ]; do
        js=$(xenblkctl stats "$1" --totals --json 2>/dev/null)
        inf=$(echo "$js" | grep -o '"in_flight":[0-9]*' | awk -F: '{ n += $2 } END { print n + 0 }')
        req=$(echo "$js" | grep -o '"requests":{"read":[0-9]*,"write":[0-9]*' |
              awk -F'[:,]' '{ n += $3 + $5 } END { print n + 0 }')
        if [ "$inf" -gt 0 ]; then
            echo "in_flight=$inf requests=$req"
            return 0
        fi
        if [ -n "$prev" ] && [ "$req" -gt "$prev" ]; then
            echo "in_flight=0 requests=$req moved=$((req - prev))"
            return 0
        fi
        prev=$req
        sleep 0.2
    done
    echo "idle requests=${req:-none}"
    return 1
}
# fe_state DOMID DEVID: the frontend's xenbus state of a vbd.
fe_state() { xenstore-read "/local/domain/$1/device/vbd/$2/state" 2>/dev/null || echo none; }
# ring_maps DOMID: rings of the guest's vbd 51712 (one per queue).
ring_maps() { xenstore-read "/local/domain/$1/device/vbd/51712/multi-queue-num-queues" 2>/dev/null || echo 1; }
xenblkd_alive() { [ -n "$XENBLKD_PID" ] && kill -0 "$XENBLKD_PID" 2>/dev/null; }
# XENBLKD_STOP_SECS: how long a stop may take.  xenblkd documents 40 s at
# worst for SIGTERM (in-flight I/O 15 s, grant unmaps 15 s, xenstore 5 s;
# man/xenblkd.8, systemd's TimeoutStopSec=60s): a shorter bound would
# SIGKILL a daemon still doing what it documents on a slow host.
XENBLKD_STOP_SECS=60
# xenblkd_stop [SIGNAL]: signal it, wait up to XENBLKD_STOP_SECS, record
# the exit status.
xenblkd_stop() {
    [ -n "$XENBLKD_PID" ] || return 0
    local i rc
    note "xenblkd stop (${1:-TERM})"
    kill -"${1:-TERM}" "$XENBLKD_PID" 2>/dev/null
    for i in $(seq $((XENBLKD_STOP_SECS * 10))); do
        kill -0 "$XENBLKD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$XENBLKD_PID" 2>/dev/null; then
        note "xenblkd did not exit within $XENBLKD_STOP_SECS s: SIGKILL"
        kill -KILL "$XENBLKD_PID"
        echo still-running >>"$R/xenblkd.exit"
    fi
    wait "$XENBLKD_PID"
    rc=$?
    echo "$rc" >>"$R/xenblkd.exit"
    note "xenblkd exited status $rc"
    XENBLKD_PID=
}

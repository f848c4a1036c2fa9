#!/bin/bash
# Runs as PID 1 in the test dom0, exec'ed by /sbin/xbd-init from the 9p share
# (/mnt/share).  Brings up what /etc/init.d/xen needs without systemd,
# installs the xenblkd under test from share/root, runs share/scenario.dom0,
# copies the logs into share/results and powers off.  The host-side test
# judges the files in share/results; nothing here decides pass or fail.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
S=/mnt/share
R=$S/results
mkdir -p "$R"
exec >"$R/dom0.log" 2>&1
set -x
t0=$(cut -d' ' -f1 /proc/uptime)
mark() { echo "XBD-DOM0 $* t=$(cut -d' ' -f1 /proc/uptime)" | tee /dev/console; }
mark init-start

mount -o remount,rw /
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
# Without udev there is no /dev/fd or /dev/std*: Xen's hotplug scripts spin
# forever in their locking code without them.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /run/lock /run/xen /var/lib/xen /var/log/xen/console /var/run/xen

for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd loop; do
    modprobe "$m"
done
mount -t xenfs xenfs /proc/xen
# Guest consoles are logged straight into the share, where a person can
# follow them from the host while the test runs.
mkdir -p "$R/console"
cat >/etc/default/xen <<EOF
XENCONSOLED_ARGS="--log=guest --log-dir=$R/console"
EOF
/etc/init.d/xen start
mark xen-started

# The daemon under test, exactly as `make install` laid it out.
# tar, not cp -a: on a merged-/usr dom0 (Debian 13) /lib is a symlink, and
# cp refuses to put the install's lib/ directory over it.
if [ -d "$S/root" ]; then
    tar -C "$S/root" -cf - . | tar -C / -xf - --keep-directory-symlink --no-same-owner
    ldconfig
fi

# The guest's initramfs: the base baked into dom0's image (build-image.sh)
# and the test's /init from the share.  xl's domain builder mmaps the
# kernel and ramdisk; mmapped from the cache-less 9p mount, guests came up
# with corrupted pages (an initramfs with "invalid magic", busybox dying in
# malloc at the same address), and reading the images over 9p took 88 s
# under Linux 6.12: they stay on dom0's own disk.
cat /var/lib/xbd/domU-base.cpio "$S/domU-init.cpio" >/var/lib/xbd/domU-initrd
mark "guest-initrd-ready"

# dom0's clock source when the scenario starts and ends: `tsc` means clock
# reads in the vDSO, `xen` a system call each (tests/xen/lib.sh, XEN_QEMU_CPU).
CS=/sys/devices/system/clocksource/clocksource0/current_clocksource
echo "start $(cat $CS 2>&1)" >"$R/dom0-clocksource.txt"
source "$S/dom0-lib.sh"
mark scenario-start
( source "$S/scenario.dom0" )
echo "$?" >"$R/scenario.rc"
mark scenario-end
echo "end $(cat $CS 2>&1)" >>"$R/dom0-clocksource.txt"

cp -a /var/log/xen "$R/xen-logs" 2>/dev/null
dmesg >"$R/dom0-dmesg.txt"
xl dmesg >"$R/xen-dmesg.txt" 2>&1
free -m >"$R/dom0-free.txt"
echo "$t0 $(cut -d' ' -f1 /proc/uptime)" >"$R/dom0-times"
mark done
sync
busybox poweroff -f

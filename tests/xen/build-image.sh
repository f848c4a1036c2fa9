#!/bin/bash
# Build (or find in the cache) everything a real-Xen test boots:
#   xen             the Xen hypervisor (ELF, multiboot1), from Debian
#   vmlinuz, initrd.img   the Debian dom0 kernel and its initramfs
#   rootfs.ext4     the dom0 root filesystem (debootstrap + packages)
#   domU-kernel     the same kernel for the PV domU, uncompressed when possible
#   domU-base.cpio  the domU initramfs without its /init: Debian's busybox,
#                   xen-blkfront.ko, fio and the libraries ldd lists
# Two tiers (XENBLKD_XEN_TIER): 4.17 = Debian 12 (bookworm, Xen 4.17, Linux
# 6.1, package list dom0-packages.txt), 4.20 = Debian 13 (trixie, Xen 4.20,
# Linux 6.12, dom0-packages-4.20.txt).
# The cache entry <tier>-<key> is keyed on a hash of this script and the
# tier's package list, so it is rebuilt only when one of them changes; the
# other tier's entry is left alone.  xenblkd itself is never in
# the image: the tests install it into dom0 at boot time through 9p.
#
# Usage: build-image.sh CACHE_DIR
# Prints the directory of the ready entry as its last line of stdout.
# Exit status: 0 ready, 77 cannot be built here (not root, no archive), 1 error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: build-image.sh CACHE_DIR}
mirror=${XENBLKD_XEN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${XENBLKD_XEN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
tier=${XENBLKD_XEN_TIER:-4.17}
case "$tier" in
4.17) suite=bookworm; xenver=4.17; pkglist=$here/dom0-packages.txt ;;
4.20) suite=trixie; xenver=4.20; pkglist=$here/dom0-packages-4.20.txt ;;
*) echo "build-image: unknown tier '$tier' (known: 4.17 4.20)" >&2; exit 1 ;;
esac

log() { echo "build-image: $*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

mkdir -p "$cache"
key=$(cat "$here/build-image.sh" "$pkglist" | sha256sum | cut -c1-16)
entry=$cache/$tier-$key
if [ -f "$entry/ready" ]; then
    echo "$entry"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || skip "building the dom0 image needs root (debootstrap, chroot); run as root or point XENBLKD_XEN_CACHE at a cache holding entry $key"
for tool in debootstrap mkfs.ext4 cpio apt-get dpkg chroot; do
    command -v "$tool" >/dev/null || skip "$tool is missing: run tests/install-deps.sh"
done

# The build needs about 2.5 GB (debootstrap tree, packages, the ext4 image
# and the initramfs) before the tree is removed; say so up front rather
# than fail half way through with ENOSPC.
free_mb=$(df -Pm "$cache" | awk 'NR == 2 {print $4}')
[ "${free_mb:-0}" -ge 4096 ] ||
    { log "only ${free_mb:-?} MB free under $cache: building the dom0 image needs 4 GB"; exit 1; }

# One builder at a time; a second one waits and then finds the entry ready.
exec 9>"$cache/.build.lock"
flock 9
if [ -f "$entry/ready" ]; then
    echo "$entry"
    exit 0
fi

work=$entry.tmp
root=$work/rootfs
cleanup() {
    # Never leave a mount behind, even when the build fails half way.
    for m in "$root/proc" "$root/sys" "$root/dev/pts" "$root/dev"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
    return 0
}
trap cleanup EXIT
cleanup
rm -rf "$work"
mkdir -p "$work/dl"
t0=$(date +%s)

# --- the dom0 root filesystem
log "debootstrap $suite from $mirror"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    grep -qiE 'Failed getting release file|Couldn.t download|Unable to fetch|Could not resolve' "$work/debootstrap.log" &&
        skip "debootstrap could not reach the Debian archive at $mirror"
    exit 1
}
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
# No service may start inside the chroot while packages are configured.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
pkgs=$(sed -e 's/#.*//' "$pkglist" | tr -s ' \t\n' '\n' | grep -v '^$')
log "installing $(echo "$pkgs" | wc -l) packages into the dom0 root"
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $(echo $pkgs)" >"$work/apt.log" 2>&1 || {
    tail -30 "$work/apt.log" >&2
    exit 1
}
# The hypervisor: the same build Debian ships, downloaded by the dom0's own
# apt (the host's archive may be an older suite: Debian 12 has no 4.20) and
# unpacked without installing (its package would pull in grub).
log "fetching xen-hypervisor-$xenver-amd64"
chroot "$root" /bin/sh -c "cd /tmp && apt-get download -q xen-hypervisor-$xenver-amd64" >&2 ||
    skip "apt-get download xen-hypervisor-$xenver-amd64 failed: no access to the Debian archive"
dpkg -x "$root"/tmp/xen-hypervisor-"$xenver"-amd64_*.deb "$work/dl/xen"
rm -f "$root"/tmp/xen-hypervisor-*.deb
gunzip -c "$work/dl/xen/boot/xen-$xenver-amd64.gz" >"$work/xen"

# xenblkd is built on the host (Debian 12) and linked to libaio.so.1;
# Debian 13's libaio1t64 renamed the SONAME to libaio.so.1t64 with the same
# ABI on amd64 (time_t was already 64-bit there).
for d in "$root/usr/lib/x86_64-linux-gnu"; do
    if [ ! -e "$d/libaio.so.1" ] && [ -e "$d/libaio.so.1t64" ]; then
        ln -s libaio.so.1t64 "$d/libaio.so.1"
    fi
done

kver=$(ls "$root/lib/modules" | sort -V | tail -1)
[ -n "$kver" ] || { log "no kernel installed in the dom0 root"; exit 1; }
# The guest gets Debian's dynamic busybox, not busybox-static: the static
# build's ash was seen to segfault in malloc as the guest's shell under TCG.
fio_libs=$(chroot "$root" ldd /usr/bin/fio /bin/busybox | awk '/=> \//{print $3} /^\t\//{print $1}' | sort -u)
cleanup
rm -f "$root/usr/sbin/policy-rc.d"

# The dom0 init baked into the image only brings up the 9p share and hands
# over to the test's own script there, so scenario changes need no rebuild.
cat >"$root/sbin/xbd-init" <<'EOF'
#!/bin/sh
# xenblkd real-Xen test: minimal dom0 init (see tests/xen/dom0-init.sh).
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
modprobe 9pnet_virtio
modprobe 9p
mkdir -p /mnt/share
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /mnt/share &&
   [ -f /mnt/share/dom0-init.sh ]; then
    exec /bin/bash /mnt/share/dom0-init.sh
fi
echo "xbd-init: no 9p share with dom0-init.sh; powering off" >/dev/console
busybox poweroff -f
EOF
chmod 755 "$root/sbin/xbd-init"
echo xbd-dom0 >"$root/etc/hostname"
: >"$root/etc/fstab"
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"

# --- the domU initramfs (without /init, which the test appends)
log "assembling the domU initramfs for kernel $kver"
u=$work/domU
mkdir -p "$u/bin" "$u/sbin" "$u/dev" "$u/proc" "$u/sys" "$u/tmp" "$u/lib/modules"
cp "$root/bin/busybox" "$u/bin/busybox"
ko=$(find "$root/lib/modules/$kver" -name 'xen-blkfront.ko*' | head -1)
[ -n "$ko" ] || { log "xen-blkfront.ko not found under lib/modules/$kver"; exit 1; }
case "$ko" in
    *.xz) xz -dc "$ko" >"$u/lib/modules/xen-blkfront.ko" ;;
    *.zst) zstd -qdc "$ko" >"$u/lib/modules/xen-blkfront.ko" ;;
    *) cp "$ko" "$u/lib/modules/xen-blkfront.ko" ;;
esac
mkdir -p "$u/usr/bin"
cp "$root/usr/bin/fio" "$u/usr/bin/fio"
for lib in $fio_libs; do
    mkdir -p "$u$(dirname "$lib")"
    cp -L "$root$lib" "$u$lib"
done
# The loader is found through /lib64 on amd64; usrmerge makes /lib64 a link.
[ -e "$u/lib64" ] || ln -s usr/lib64 "$u/lib64" 2>/dev/null || true
( cd "$u" && find . | cpio -o -H newc --quiet ) >"$work/domU-base.cpio"

# An uncompressed kernel saves seconds per xl create under TCG: the payload of
# Debian's bzImage is xz, found by its magic.
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$work/vmlinuz" | head -1 | cut -d: -f1 || true)
if [ -n "$off" ]; then
    # xz complains about the trailing bytes after the stream: judge by result.
    tail -c +"$((off + 1))" "$work/vmlinuz" | xz -dc >"$work/domU-kernel" 2>/dev/null || true
fi
# Debian 13's kernel (6.12) is zstd-compressed.
if [ ! -s "$work/domU-kernel" ]; then
    off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$work/vmlinuz" | head -1 | cut -d: -f1 || true)
    if [ -n "$off" ] && command -v zstd >/dev/null; then
        tail -c +"$((off + 1))" "$work/vmlinuz" | zstd -qdc >"$work/domU-kernel" 2>/dev/null || true
    fi
fi
if [ -s "$work/domU-kernel" ] && [ "$(head -c 4 "$work/domU-kernel" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
    log "domU kernel: uncompressed vmlinux"
else
    cp "$work/vmlinuz" "$work/domU-kernel"
    log "domU kernel: compressed vmlinuz"
fi

# The guest's kernel and initramfs base go into dom0's own disk: read over
# 9p at every boot they cost 88 s under Linux 6.12 (0.8 MB/s, versus a few
# seconds under 6.1), and xl must not mmap them from 9p anyway (see
# dom0-init.sh).  The test appends its /init to the base in dom0.
mkdir -p "$root/var/lib/xbd"
cp "$work/domU-kernel" "$work/domU-base.cpio" "$root/var/lib/xbd/"

# --- pack the dom0 root; the test attaches it with snapshot=on
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/* \
       "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale"
mkfs.ext4 -q -F -L xbdroot -d "$root" "$work/rootfs.ext4" 3G
rm -rf "$root" "$u" "$work/dl"
echo "$kver" >"$work/kernel-version"
date -u +%FT%TZ >"$work/ready"
log "built in $(( $(date +%s) - t0 )) s"

# Keep only the current entry of this tier: old ones are ~1 GB each.  (A
# bare 16-digit entry is a 4.17 one from before the tiers.)
for old in "$cache/$tier"-* $( [ "$tier" = 4.17 ] && ls -d "$cache"/* | grep -E '/[0-9a-f]{16}$'); do
    [ -d "$old" ] && [ "$old" != "$work" ] && [ "$old" != "$entry" ] && rm -rf "$old"
done
mv "$work" "$entry"
echo "$entry"

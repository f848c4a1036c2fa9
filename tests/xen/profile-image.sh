#!/bin/bash
# The dom0 image of the profile mode (XENBLKD_XEN_PROFILE=1, see
# tests/xen/README.md, "Profile mode"): a ready entry of build-image.sh
# plus the packages of dom0-packages-profile.txt (perf, strace).
#
# A layer over build-image.sh rather than an option of it: build-image.sh
# keys its cache entry on a hash of its own text, so any change there
# would rebuild the image CI boots.  This script leaves that entry alone:
# it copies its root image, installs the extra packages into the copy and
# hard-links the other files (which it does not change).  The derived
# entry, prof-<base entry>-<key>, is keyed on the base entry and a hash of
# this script and the package list.
#
# Usage: profile-image.sh CACHE_DIR BASE_ENTRY
# Prints the derived entry's directory as its last line of stdout.
# Exit status: 0 ready, 77 cannot be built here (not root, no archive), 1 error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: profile-image.sh CACHE_DIR BASE_ENTRY}
base=${2:?usage: profile-image.sh CACHE_DIR BASE_ENTRY}
list=$here/dom0-packages-profile.txt
log() { echo "profile-image: $*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

[ -f "$base/ready" ] || { log "$base is not a ready image entry"; exit 1; }
key=$(cat "$here/profile-image.sh" "$list" | sha256sum | cut -c1-16)
entry=$cache/prof-$(basename "$base")-$key
if [ -f "$entry/ready" ]; then
    echo "$entry"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || skip "adding the profile packages to the dom0 image needs root (mount, chroot)"

exec 9>"$cache/.build.lock"
flock 9
if [ -f "$entry/ready" ]; then
    echo "$entry"
    exit 0
fi

work=$entry.tmp
mnt=$work/mnt
cleanup() {
    for m in "$mnt/proc" "$mnt/dev" "$mnt"; do
        mountpoint -q "$m" 2>/dev/null && umount "$m"
    done
    return 0
}
trap cleanup EXIT
rm -rf "$work"
mkdir -p "$mnt"
t0=$(date +%s)
for f in xen vmlinuz initrd.img domU-kernel domU-base.cpio kernel-version; do
    ln "$base/$f" "$work/$f" 2>/dev/null || cp "$base/$f" "$work/$f"
done
cp --sparse=always "$base/rootfs.ext4" "$work/rootfs.ext4"
mount -o loop "$work/rootfs.ext4" "$mnt"
mount -t proc proc "$mnt/proc"
mount --bind /dev "$mnt/dev"
# build-image.sh emptied the package lists; the chroot needs a resolver.
[ -s "$mnt/etc/resolv.conf" ] || cp /etc/resolv.conf "$mnt/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$mnt/usr/sbin/policy-rc.d"
chmod 755 "$mnt/usr/sbin/policy-rc.d"
pkgs=$(sed -e 's/#.*//' "$list" | tr -s ' \t\n' '\n' | grep -v '^$')
log "installing $(echo $pkgs) into a copy of $(basename "$base")"
chroot "$mnt" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $(echo $pkgs)" >"$work/apt-profile.log" 2>&1 || {
    tail -30 "$work/apt-profile.log" >&2
    grep -qiE 'Could not resolve|Unable to fetch|Failed to fetch' "$work/apt-profile.log" &&
        skip "apt-get could not reach the Debian archive"
    exit 1
}
rm -f "$mnt/usr/sbin/policy-rc.d"
rm -rf "$mnt/var/cache/apt/archives"/*.deb "$mnt/var/lib/apt/lists"/*
cleanup
rmdir "$mnt"
date -u +%FT%TZ >"$work/ready"
log "built in $(( $(date +%s) - t0 )) s"
# Only the current derived entry of this base: each holds a 3 GB (sparse) root.
for old in "$cache/prof-$(basename "$base")"-*; do
    [ -d "$old" ] && [ "$old" != "$work" ] && [ "$old" != "$entry" ] && rm -rf "$old"
done
mv "$work" "$entry"
echo "$entry"

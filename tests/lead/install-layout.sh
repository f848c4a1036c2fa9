#!/bin/bash
# make install honours DESTDIR, prefix and sysconfdir, and make uninstall
# removes everything it installed.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
# The systemd unit directory comes from pkg-config (an absolute
# /lib/systemd/system), not from prefix: put it under the prefix here.
vars=(prefix=/opt/xb sysconfdir=/etc/xb)
unit=
if grep -q '^systemdsystemunitdir = ' "$top_builddir/Makefile"; then
    vars+=(systemdsystemunitdir=/opt/xb/lib/systemd/system)
    unit=/opt/xb/lib/systemd/system/xenblkd.service
fi
make -s -C "$top_builddir" install DESTDIR="$dest" "${vars[@]}" >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log"; exit 1; }
fail=0
for f in /opt/xb/sbin/xenblkd /etc/xb/xen/scripts/block-xenblkd $unit; do
    if [ -e "$dest$f" ]; then echo "ok: $f"; else echo "FAIL: $f not installed"; fail=1; fi
done
[ -x "$dest/etc/xb/xen/scripts/block-xenblkd" ] || { echo "FAIL: hotplug script not executable"; fail=1; }
# Nothing may escape DESTDIR/prefix/sysconfdir.
stray=$(cd "$dest" && find . -type f | grep -v -E '^\./(opt/xb|etc/xb)/' || true)
[ -z "$stray" ] || { echo "FAIL: installed outside prefix/sysconfdir: $stray"; fail=1; }
make -s -C "$top_builddir" uninstall DESTDIR="$dest" "${vars[@]}" >"$tmp/uninstall.log" 2>&1 \
    || { cat "$tmp/uninstall.log"; exit 1; }
left=$(find "$dest" -type f)
[ -z "$left" ] || { echo "FAIL: left after uninstall: $left"; fail=1; }
exit $fail

#!/bin/bash
# make install honours DESTDIR, prefix and sysconfdir, and make uninstall
# removes everything it installed.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
make -s -C "$top_builddir" install DESTDIR="$dest" prefix=/opt/xb sysconfdir=/etc/xb >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log"; exit 1; }
fail=0
for f in /opt/xb/sbin/xenblkd /etc/xb/xen/scripts/block-xenblkd; do
    if [ -e "$dest$f" ]; then echo "ok: $f"; else echo "FAIL: $f not installed"; fail=1; fi
done
[ -x "$dest/etc/xb/xen/scripts/block-xenblkd" ] || { echo "FAIL: hotplug script not executable"; fail=1; }
# Nothing may escape DESTDIR/prefix/sysconfdir.
stray=$(cd "$dest" && find . -type f | grep -v -E '^\./(opt/xb|etc/xb)/' || true)
[ -z "$stray" ] || { echo "FAIL: installed outside prefix/sysconfdir: $stray"; fail=1; }
make -s -C "$top_builddir" uninstall DESTDIR="$dest" prefix=/opt/xb sysconfdir=/etc/xb >"$tmp/uninstall.log" 2>&1 \
    || { cat "$tmp/uninstall.log"; exit 1; }
left=$(find "$dest" -type f)
[ -z "$left" ] || { echo "FAIL: left after uninstall: $left"; fail=1; }
exit $fail

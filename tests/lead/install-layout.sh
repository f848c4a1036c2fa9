#!/bin/bash
# make install honours DESTDIR, prefix and sysconfdir, puts the hotplug
# script where libxl runs it from (/etc/xen/scripts, whatever the prefix
# and sysconfdir), and make uninstall removes everything it installed
# (but a configuration file the administrator changed).
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
# libxl turns script=block-xenblkd into a path under the script directory
# compiled into it, /etc/xen/scripts on Linux: a default configure installs
# the script there, not under prefix or sysconfdir.  A build configured
# with --with-xen-scriptdir has its own directory: put it under sysconfdir.
script=/etc/xen/scripts/block-xenblkd
if "$top_builddir/config.status" --config | grep -q -e '--with-xen-scriptdir'; then
    echo "note: configured with --with-xen-scriptdir: its default is not checked"
    vars+=(xenscriptdir=/etc/xb/xen/scripts)
    script=/etc/xb/xen/scripts/block-xenblkd
fi
make -s -C "$top_builddir" install DESTDIR="$dest" "${vars[@]}" >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log"; exit 1; }
fail=0
for f in /opt/xb/sbin/xenblkd "$script" /etc/xb/xenblkd.conf \
         /opt/xb/share/man/man5/xenblkd.conf.5 $unit; do
    if [ -e "$dest$f" ]; then echo "ok: $f"; else echo "FAIL: $f not installed"; fail=1; fi
done
[ -x "$dest$script" ] || { echo "FAIL: hotplug script $script not executable"; fail=1; }
# The configuration file: installed as shipped, never overwritten, and
# removed by uninstall only while unmodified.
conf=$dest/etc/xb/xenblkd.conf
if cmp -s "$conf" "$top_srcdir/conf/xenblkd.conf"; then echo "ok: xenblkd.conf installed as shipped"
else echo "FAIL: $conf missing or not the shipped conf/xenblkd.conf"; fail=1; fi
echo "# the administrator's edit" >>"$conf"
make -s -C "$top_builddir" install DESTDIR="$dest" "${vars[@]}" >"$tmp/install2.log" 2>&1 \
    || { cat "$tmp/install2.log"; exit 1; }
if [ "$(tail -n 1 "$conf")" = "# the administrator's edit" ]; then echo "ok: make install keeps an existing xenblkd.conf"
else echo "FAIL: make install overwrote an existing xenblkd.conf"; fail=1; fi
make -s -C "$top_builddir" uninstall DESTDIR="$dest" "${vars[@]}" >"$tmp/uninstall1.log" 2>&1 \
    || { cat "$tmp/uninstall1.log"; exit 1; }
if [ -e "$conf" ]; then echo "ok: make uninstall keeps a modified xenblkd.conf"
else echo "FAIL: make uninstall removed a modified xenblkd.conf"; fail=1; fi
rm -f "$conf"
make -s -C "$top_builddir" install DESTDIR="$dest" "${vars[@]}" >"$tmp/install3.log" 2>&1 \
    || { cat "$tmp/install3.log"; exit 1; }
# Nothing may escape DESTDIR/prefix/sysconfdir but the hotplug script.
stray=$(cd "$dest" && find . -type f | grep -v -x -F ".$script" | grep -v -E '^\./(opt/xb|etc/xb)/' || true)
[ -z "$stray" ] || { echo "FAIL: installed outside prefix/sysconfdir: $stray"; fail=1; }
make -s -C "$top_builddir" uninstall DESTDIR="$dest" "${vars[@]}" >"$tmp/uninstall.log" 2>&1 \
    || { cat "$tmp/uninstall.log"; exit 1; }
left=$(find "$dest" -type f)
[ -z "$left" ] || { echo "FAIL: left after uninstall: $left"; fail=1; }
exit $fail

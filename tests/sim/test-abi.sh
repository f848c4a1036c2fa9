#!/bin/bash
# The simulated libxengnttab.so.1/libxenevtchn.so.1 must be drop-in ABI
# replacements for Debian's: same soname, same version nodes with the same
# parents, every symbol under the same node; and Debian's Xen QEMU (plus
# the libxenctrl & co. it links) must load and bind on them.
set -u
: "${top_builddir:?}"
lib="$top_builddir/tests/sim/lib"
sys=/usr/lib/x86_64-linux-gnu
fail=0
command -v objdump >/dev/null || { echo "objdump missing (binutils)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xsim-abi.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# "symbol node" for every symbol a library defines.
defined() { objdump -T "$1" | awk '$2 == "g" && $4 != "*UND*" && $NF !~ /^VERS_/ {print $NF, $(NF-1)}' | sort; }
# The "Version definitions" block: node names and their parents.
verdefs() { objdump -p "$1" | sed -n '/^Version definitions:/,/^$/p' | sed 1d | awk '{print $NF}'; }

for l in libxengnttab.so.1 libxenevtchn.so.1; do
    [ -e "$sys/$l" ] || { echo "$sys/$l missing (libxen-dev/libxenmisc)"; exit 77; }
    [ -e "$lib/$l" ] || { echo "FAIL: $lib/$l not built"; exit 1; }
    so=$(objdump -p "$lib/$l" | awk '$1 == "SONAME" {print $2}')
    [ "$so" = "$l" ] || { echo "FAIL: $l: soname is '$so'"; fail=1; }
    defined "$sys/$l" > "$tmp/want"
    defined "$lib/$l" > "$tmp/have"
    if ! diff -u "$tmp/want" "$tmp/have"; then
        echo "FAIL: $l: exported symbols/version nodes differ from Debian's"; fail=1
    fi
    verdefs "$sys/$l" | sed 1d > "$tmp/want"     # first line: the soname
    verdefs "$lib/$l" | sed 1d > "$tmp/have"
    if ! diff -u "$tmp/want" "$tmp/have"; then
        echo "FAIL: $l: version node inheritance differs"; fail=1
    fi
    [ -s "$tmp/have" ] || { echo "FAIL: $l: no version definitions"; fail=1; }
done

# Every import of libxengnttab/libxenevtchn by Xen's own libraries and QEMU
# must be found under the same node in ours.
qemu=${QEMU_XEN:-/usr/libexec/xen-qemu-system-i386}
objs=$(ls $sys/libxenctrl.so.* $sys/libxendevicemodel.so.1 $sys/libxenforeignmemory.so.1 \
           $sys/libxenstore.so.4 $sys/libxenguest.so.* $sys/libxenlight.so.* 2>/dev/null)
[ -x "$qemu" ] && objs="$objs $qemu"
{ defined "$lib/libxengnttab.so.1"; defined "$lib/libxenevtchn.so.1"; } > "$tmp/ours"
for o in $objs; do
    objdump -T "$o" | awk '$3 == "*UND*" && $NF ~ /^(xengnttab|xengntshr|xenevtchn)_/ {
        v = $(NF-1); gsub(/[()]/, "", v); print $NF, v}' |
    while read -r sym ver; do
        grep -qx "$sym $ver" "$tmp/ours" || { echo "FAIL: $o imports $sym@$ver, not provided"; exit 1; }
    done || fail=1
done

if [ -x "$qemu" ]; then
    out=$(LD_LIBRARY_PATH="$lib" ldd "$qemu" 2>&1)
    echo "$out" | grep -E 'not found' && { echo "FAIL: ldd $qemu"; fail=1; }
    for l in libxengnttab.so.1 libxenevtchn.so.1; do
        echo "$out" | grep -q "$l => $lib/$l" || { echo "FAIL: $qemu does not resolve $l to the simulation"; fail=1; }
    done
    # Really load it, binding every symbol now (a missing symbol or version
    # node is fatal here even if no code path would call it).
    if ! LD_BIND_NOW=1 LD_LIBRARY_PATH="$lib" "$qemu" -version > "$tmp/qemu.out" 2>&1; then
        cat "$tmp/qemu.out"; echo "FAIL: $qemu does not start on the simulated libraries"; fail=1
    fi
else
    echo "note: $qemu not installed, QEMU part skipped"
fi
[ $fail -eq 0 ] && echo "test-abi: ok"
exit $fail
